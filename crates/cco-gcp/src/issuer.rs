//! The issuer side: workload identity pool, OIDC provider, and the public bucket with the discovery
//! document and JWKS. Each step looks first and converges: a soft-deleted pool or provider is
//! undeleted, a provider whose issuer, audiences, mapping or keys differ is patched, and keys already
//! published are kept beside the new one unless pruning is asked for.

use cco_core::gcp::{pool_resource, CREATED_BY, OBJECT_VIEWER};
use cco_core::keys::merge_jwks;
use cco_core::oidc::{DISCOVERY_PATH, KEYS_PATH};
use reqwest::Method;
use serde_json::{json, Value};

use crate::{enc, set_role_members, Gcp, GcpError, PolicyTarget};

/// The content type of the uploaded issuer documents: the reference tool sets none, so its storage
/// client sniffs one from the bytes (Go's `http.DetectContentType`), which for a JSON document is
/// plain text.
pub const ISSUER_DOCUMENT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// What a converging step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Created,
    Undeleted,
    Updated,
    Unchanged,
}

impl Change {
    /// For messages.
    pub fn verb(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Undeleted => "restored from its soft-deleted state",
            Change::Updated => "updated",
            Change::Unchanged => "already up to date",
        }
    }
}

/// The desired OIDC provider.
#[derive(Clone, Debug)]
pub struct ProviderSpec {
    pub issuer: String,
    /// `Some` with `pool-jwk-file`: the JWKS to embed.
    pub jwks: Option<Value>,
}

impl Gcp {
    fn pools_url(&self) -> String {
        format!(
            "{}/v1/projects/{}/locations/global/workloadIdentityPools",
            self.endpoints.iam,
            enc(&self.project)
        )
    }

    async fn get_opt(
        &self,
        op: &'static str,
        resource: &str,
        url: &str,
    ) -> Result<Option<Value>, GcpError> {
        match self.call(op, resource, Method::GET, url, None).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The pool, if it exists (soft-deleted ones included, `state: DELETED`).
    pub async fn get_pool(&self, pool: &str) -> Result<Option<Value>, GcpError> {
        let url = format!("{}/{}", self.pools_url(), enc(pool));
        self.get_opt("iam.workloadIdentityPools.get", pool, &url)
            .await
    }

    /// Creates the pool, or undeletes it.
    pub async fn ensure_pool(&self, pool: &str) -> Result<Change, GcpError> {
        let res = pool_resource(&self.project, pool);
        match self.get_pool(pool).await? {
            Some(p) if p["state"] == "DELETED" => {
                let url = format!("{}/{}:undelete", self.pools_url(), enc(pool));
                let op = self
                    .call(
                        "iam.workloadIdentityPools.undelete",
                        &res,
                        Method::POST,
                        &url,
                        Some(&json!({})),
                    )
                    .await?;
                self.wait("iam.workloadIdentityPools.undelete", &res, op)
                    .await?;
                Ok(Change::Undeleted)
            }
            Some(_) => Ok(Change::Unchanged),
            None => {
                let url = format!("{}?workloadIdentityPoolId={}", self.pools_url(), enc(pool));
                let body =
                    json!({"displayName": pool, "description": CREATED_BY, "disabled": false});
                match self
                    .call(
                        "iam.workloadIdentityPools.create",
                        &res,
                        Method::POST,
                        &url,
                        Some(&body),
                    )
                    .await
                {
                    Ok(op) => {
                        self.wait("iam.workloadIdentityPools.create", &res, op)
                            .await?;
                        Ok(Change::Created)
                    }
                    // Created concurrently (or by an interrupted run): converge on the next look.
                    Err(e) if e.code() == Some(409) => Box::pin(self.ensure_pool(pool)).await,
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// The provider, if it exists.
    pub async fn get_provider(
        &self,
        pool: &str,
        provider: &str,
    ) -> Result<Option<Value>, GcpError> {
        let url = format!(
            "{}/{}/providers/{}",
            self.pools_url(),
            enc(pool),
            enc(provider)
        );
        match self
            .get_opt("iam.workloadIdentityPoolProviders.get", provider, &url)
            .await
        {
            Err(GcpError::Api { code: 400, .. }) => Ok(None), // the pool itself is deleted
            other => other,
        }
    }

    /// Creates, undeletes or patches the provider until it matches `want`.
    pub async fn ensure_provider(
        &self,
        pool: &str,
        provider: &str,
        want: &ProviderSpec,
    ) -> Result<Change, GcpError> {
        let res = format!(
            "{}/providers/{provider}",
            pool_resource(&self.project, pool)
        );
        let base = format!("{}/{}/providers", self.pools_url(), enc(pool));
        let mut jwks = want.jwks.clone();
        let existing = self.get_provider(pool, provider).await?;
        // Keys embedded earlier stay beside the new one (rotation), as in the bucket.
        if let (Some(new), Some(old)) = (
            &jwks,
            existing
                .as_ref()
                .and_then(|p| p["oidc"]["jwksJson"].as_str()),
        ) {
            if let Ok(old) = serde_json::from_str::<Value>(old) {
                jwks = Some(merge_jwks(new, &old));
            }
        }
        let mut oidc =
            json!({"issuerUri": want.issuer, "allowedAudiences": [cco_core::gcp::AUDIENCE]});
        if let Some(j) = &jwks {
            // The text the reference tool embeds (its JWKS file's bytes).
            oidc["jwksJson"] = Value::String(cco_core::gcp::jwks_text(j));
        }
        let body = json!({"displayName": provider, "description": CREATED_BY, "disabled": false,
            "attributeMapping": {"google.subject": "assertion.sub"}, "oidc": oidc});
        let mut change = Change::Unchanged;
        let current = match existing {
            None => {
                let url = format!("{base}?workloadIdentityPoolProviderId={}", enc(provider));
                let op = self
                    .call(
                        "iam.workloadIdentityPoolProviders.create",
                        &res,
                        Method::POST,
                        &url,
                        Some(&body),
                    )
                    .await?;
                self.wait("iam.workloadIdentityPoolProviders.create", &res, op)
                    .await?;
                return Ok(Change::Created);
            }
            Some(p) if p["state"] == "DELETED" => {
                let url = format!("{base}/{}:undelete", enc(provider));
                let op = self
                    .call(
                        "iam.workloadIdentityPoolProviders.undelete",
                        &res,
                        Method::POST,
                        &url,
                        Some(&json!({})),
                    )
                    .await?;
                change = Change::Undeleted;
                self.wait("iam.workloadIdentityPoolProviders.undelete", &res, op)
                    .await?
            }
            Some(p) => p,
        };
        let mut mask = Vec::new();
        if current["oidc"]["issuerUri"] != body["oidc"]["issuerUri"] {
            mask.push("oidc.issuerUri");
        }
        if current["oidc"]["allowedAudiences"] != body["oidc"]["allowedAudiences"] {
            mask.push("oidc.allowedAudiences");
        }
        let cur_jwks = current["oidc"]["jwksJson"]
            .as_str()
            .filter(|s| !s.is_empty());
        let want_jwks = body["oidc"]["jwksJson"].as_str();
        let same_jwks = match (cur_jwks, want_jwks) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                serde_json::from_str::<Value>(a).ok() == serde_json::from_str::<Value>(b).ok()
            }
            _ => false,
        };
        let mut patch = body.clone();
        if !same_jwks {
            mask.push("oidc.jwksJson");
            if want_jwks.is_none() {
                patch["oidc"]["jwksJson"] = Value::String(String::new());
            }
        }
        if current["attributeMapping"] != body["attributeMapping"] {
            mask.push("attributeMapping");
        }
        if current["disabled"] == true {
            mask.push("disabled");
        }
        if mask.is_empty() {
            return Ok(change);
        }
        let url = format!("{base}/{}?updateMask={}", enc(provider), mask.join(","));
        let op = self
            .call(
                "iam.workloadIdentityPoolProviders.patch",
                &res,
                Method::PATCH,
                &url,
                Some(&patch),
            )
            .await?;
        self.wait("iam.workloadIdentityPoolProviders.patch", &res, op)
            .await?;
        Ok(if change == Change::Unchanged {
            Change::Updated
        } else {
            change
        })
    }

    /// Deletes the pool (and with it its providers) if `ccoctl` made it. Returns `Some(true)` when
    /// deleted, `Some(false)` when it is not ours and was left alone, `None` when absent.
    pub async fn delete_pool(&self, pool: &str, dry_run: bool) -> Result<Option<bool>, GcpError> {
        let res = pool_resource(&self.project, pool);
        match self.get_pool(pool).await? {
            None => Ok(None),
            Some(p) if p["state"] == "DELETED" => Ok(None),
            Some(p) if p["description"] != CREATED_BY => Ok(Some(false)),
            Some(_) if dry_run => Ok(Some(true)),
            Some(_) => {
                let url = format!("{}/{}", self.pools_url(), enc(pool));
                let op = self
                    .call(
                        "iam.workloadIdentityPools.delete",
                        &res,
                        Method::DELETE,
                        &url,
                        None,
                    )
                    .await?;
                self.wait("iam.workloadIdentityPools.delete", &res, op)
                    .await?;
                Ok(Some(true))
            }
        }
    }

    fn bucket_url(&self, bucket: &str) -> String {
        format!("{}/storage/v1/b/{}", self.endpoints.storage, enc(bucket))
    }

    /// The bucket's metadata, if it exists.
    pub async fn get_bucket(&self, bucket: &str) -> Result<Option<Value>, GcpError> {
        self.get_opt("storage.buckets.get", bucket, &self.bucket_url(bucket))
            .await
    }

    /// Creates the issuer bucket as the reference tool creates it: name, location and uniform
    /// bucket-level access, nothing else (no labels). A 409 is fine when the bucket turns out to be
    /// ours (created concurrently); otherwise its name is taken.
    pub async fn create_bucket(&self, bucket: &str, region: &str) -> Result<(), GcpError> {
        let url = format!(
            "{}/storage/v1/b?project={}",
            self.endpoints.storage,
            enc(&self.project)
        );
        let body = json!({"name": bucket, "location": region,
            "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": true}}});
        match self
            .call(
                "storage.buckets.insert",
                bucket,
                Method::POST,
                &url,
                Some(&body),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(409) => {
                if self.get_bucket(bucket).await?.is_none() {
                    return Err(GcpError::Local(format!(
                        "bucket {bucket} exists and belongs to someone else; bucket names are global, so choose another --name"
                    )));
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Creates the issuer bucket (uniform access) unless it exists, and lets `allUsers` read its
    /// objects.
    pub async fn ensure_public_bucket(
        &self,
        bucket: &str,
        region: &str,
    ) -> Result<Change, GcpError> {
        let change = if self.get_bucket(bucket).await?.is_some() {
            Change::Unchanged
        } else {
            self.create_bucket(bucket, region).await?;
            Change::Created
        };
        let target = PolicyTarget::Bucket(bucket.to_string());
        let public = self
            .modify_policy(&target, |p| {
                set_role_members(p, OBJECT_VIEWER, "allUsers", &["allUsers".into()])
            })
            .await?;
        Ok(if change == Change::Unchanged && public {
            Change::Updated
        } else {
            change
        })
    }

    /// Uploads an object.
    pub async fn put_object(
        &self,
        bucket: &str,
        name: &str,
        data: &[u8],
        content_type: &str,
    ) -> Result<(), GcpError> {
        let url = format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=media&name={}",
            self.endpoints.storage,
            enc(bucket),
            enc(name)
        );
        self.send(
            "storage.objects.insert",
            &format!("gs://{bucket}/{name}"),
            Method::POST,
            &url,
            Some((data.to_vec(), content_type)),
        )
        .await
        .map(|_| ())
    }

    /// An object's content, if it exists.
    pub async fn get_object(&self, bucket: &str, name: &str) -> Result<Option<Vec<u8>>, GcpError> {
        let url = format!("{}/o/{}?alt=media", self.bucket_url(bucket), enc(name));
        self.get_bytes(
            "storage.objects.get",
            &format!("gs://{bucket}/{name}"),
            &url,
        )
        .await
    }

    /// Names of the bucket's objects.
    pub async fn list_objects(&self, bucket: &str) -> Result<Vec<String>, GcpError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = format!("{}/o?maxResults=1000", self.bucket_url(bucket));
            if let Some(t) = &token {
                url.push_str(&format!("&pageToken={}", enc(t)));
            }
            let v = self
                .call("storage.objects.list", bucket, Method::GET, &url, None)
                .await?;
            out.extend(
                v["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|o| o["name"].as_str().map(str::to_owned)),
            );
            token = v["nextPageToken"].as_str().map(str::to_owned);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// Deletes an object; absent is success.
    pub async fn delete_object(&self, bucket: &str, name: &str) -> Result<(), GcpError> {
        let url = format!("{}/o/{}", self.bucket_url(bucket), enc(name));
        match self
            .call(
                "storage.objects.delete",
                &format!("gs://{bucket}/{name}"),
                Method::DELETE,
                &url,
                None,
            )
            .await
        {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Uploads the discovery document and the JWKS (in the reference tool's layout, see
    /// `cco_core::gcp::jwks_text`), keeping keys already published unless `prune`.
    pub async fn publish_documents(
        &self,
        bucket: &str,
        discovery: &str,
        jwks: &Value,
        prune: bool,
    ) -> Result<Value, GcpError> {
        let mut jwks = jwks.clone();
        if !prune {
            if let Some(old) = self.get_object(bucket, KEYS_PATH).await? {
                if let Ok(old) = serde_json::from_slice::<Value>(&old) {
                    jwks = merge_jwks(&jwks, &old);
                }
            }
        }
        self.put_object(
            bucket,
            DISCOVERY_PATH,
            discovery.as_bytes(),
            ISSUER_DOCUMENT_CONTENT_TYPE,
        )
        .await?;
        self.put_object(
            bucket,
            KEYS_PATH,
            cco_core::gcp::jwks_text(&jwks).as_bytes(),
            ISSUER_DOCUMENT_CONTENT_TYPE,
        )
        .await?;
        Ok(jwks)
    }

    /// Removes the two issuer documents, then the bucket if nothing else is in it. Returns what was
    /// (or, in a dry run, would be) removed, and what was left and why.
    pub async fn delete_issuer_bucket(
        &self,
        bucket: &str,
        dry_run: bool,
    ) -> Result<(Vec<String>, Vec<String>), GcpError> {
        let mut done = Vec::new();
        let mut kept = Vec::new();
        if self.get_bucket(bucket).await?.is_none() {
            return Ok((done, kept));
        }
        let objects = self.list_objects(bucket).await?;
        for name in [DISCOVERY_PATH, KEYS_PATH] {
            if objects.iter().any(|o| o == name) {
                if !dry_run {
                    self.delete_object(bucket, name).await?;
                }
                done.push(format!("object gs://{bucket}/{name}"));
            }
        }
        let others: Vec<&String> = objects
            .iter()
            .filter(|o| *o != DISCOVERY_PATH && *o != KEYS_PATH)
            .collect();
        if !others.is_empty() {
            kept.push(format!(
                "bucket {bucket}: it holds {} objects ccoctl did not write",
                others.len()
            ));
            return Ok((done, kept));
        }
        if !dry_run {
            match self
                .call(
                    "storage.buckets.delete",
                    bucket,
                    Method::DELETE,
                    &self.bucket_url(bucket),
                    None,
                )
                .await
            {
                Err(e) if e.is_not_found() => {}
                other => {
                    other?;
                }
            }
        }
        done.push(format!("bucket {bucket}"));
        Ok((done, kept))
    }
}
