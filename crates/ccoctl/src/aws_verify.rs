//! `ccoctl aws verify`: reads the issuer, keys, identity provider, roles and Secrets, and reports
//! one [`Check`] per fact. Only read calls are made (AWS `Get*`/`List*`/`Head*`, anonymous HTTPS
//! GETs, Kubernetes GETs).
//!
//! AWS-specific check ids, beside the cloud-neutral ones of `cco_core::oidc_checks` (`issuer.*`,
//! `keys.*`, `cluster.authentication`, `manifest.authentication`):
//!
//! | id | what |
//! |---|---|
//! | `issuer.bucket` | the bucket `<name>-oidc` exists and carries the ownership tag |
//! | `issuer.bucket_access` | the bucket lets anyone (public) or only the CloudFront distribution read |
//! | `provider.exists` | the IAM OIDC provider of the issuer exists |
//! | `provider.client_ids` | it accepts the audiences `openshift` and `sts.amazonaws.com` |
//! | `provider.thumbprint` | it records the thumbprint of the certificate the issuer serves today |
//! | `request.role` | the request's role exists |
//! | `request.trust` | its trust names exactly the request's ServiceAccounts through this provider |
//! | `request.policy` | its inline policy grants exactly the request's statements, conditions included |
//! | `request.boundary` | it carries `--permissions-boundary-arn` (when given) |
//! | `request.extra_policies` | (warning) other inline or attached policies grant more |
//! | `request.secret` | the Secret (manifest, or in the cluster) names the role and the token path |

use std::path::{Path, PathBuf};

use anyhow::Context;
use cco_api::Cloud;
use cco_aws::observe::{observe_bucket, observe_provider, observe_role};
use cco_aws::{find_distributions, Aws, AwsError, OriginAccess};
use cco_core::aws::compare::{permission_diff, policies_equivalent, string_list, trust_diff};
use cco_core::aws::{
    bucket_issuer_url, bucket_name, cloudfront_read_bucket_policy,
    origin_access_identity_bucket_policy, owned_tag_key, plan_roles, provider_arn, validate_name,
    Front, Partition, PublicAccessBlock, RolePlan, CLIENT_IDS, OWNED_TAG_VALUE,
};
use cco_core::oidc_checks::{discovery_checks, jwks_checks, key_checks, SigningKey};
use cco_core::reader::{read_dir, ReadOptions};
use cco_core::report::{summarize, Check, VerifyReport};
use serde_json::Value;

use crate::cli::AwsVerifyArgs;
use crate::report_out::emit_verify;
use crate::verify_support::{
    local_signing_key, manifest_authentication, manifest_secret, sh_quote, Cluster, Prober,
    SecretRead, CURRENT_KEY_SECRET, NEXT_KEY_SECRET,
};

/// Runs `ccoctl aws verify`.
pub async fn run(a: AwsVerifyArgs) -> anyhow::Result<()> {
    let report = verify(&a).await?;
    emit_verify(&report, a.report.output)
}

/// The commands a failed check points to.
struct Fixes<'a> {
    a: &'a AwsVerifyArgs,
    private: bool,
}

impl Fixes<'_> {
    fn base(&self, cmd: &str) -> String {
        format!(
            "ccoctl aws {cmd} --name {} --region {}",
            sh_quote(&self.a.name),
            sh_quote(&self.a.common.region)
        )
    }

    fn identity_provider_with(&self, key: Option<&str>) -> String {
        let mut s = self.base("create-identity-provider");
        match (key, &self.a.public_key_file, &self.a.output_dir) {
            (Some(k), _, _) => s.push_str(&format!(" --public-key-file {}", sh_quote(k))),
            (None, Some(f), _) => s.push_str(&format!(
                " --public-key-file {}",
                sh_quote(&f.display().to_string())
            )),
            (None, None, Some(o)) => s.push_str(&format!(
                " --output-dir {}",
                sh_quote(&o.display().to_string())
            )),
            (None, None, None) => s.push_str(" --public-key-file serviceaccount-signer.public"),
        }
        if self.private {
            s.push_str(" --create-private-s3-bucket");
        }
        if let Some(ca) = &self.a.issuer_ca_file {
            s.push_str(&format!(
                " --issuer-ca-file {}",
                sh_quote(&ca.display().to_string())
            ));
        }
        s
    }

    fn identity_provider(&self) -> String {
        self.identity_provider_with(None)
    }

    fn publish(&self, key: &SigningKey) -> String {
        for (ns, name, field) in [CURRENT_KEY_SECRET, NEXT_KEY_SECRET] {
            if key.source == format!("Secret {ns}/{name}") {
                return format!(
                    "oc get secret -n {ns} {name} -o jsonpath='{{.data.{}}}' | base64 -d > {name}.pub && {}",
                    field.replace('.', "\\."),
                    self.identity_provider_with(Some(&format!("{name}.pub")))
                );
            }
        }
        match key.source.strip_prefix("--public-key-file ") {
            Some(file) => self.identity_provider_with(Some(file)),
            // A key of the output dir (possibly its private key): create-identity-provider reads
            // it from there.
            None => self.identity_provider(),
        }
    }

    fn roles(&self, arn: &str) -> String {
        let mut s = self.base("create-iam-roles");
        if let Some(d) = &self.a.credentials_requests_dir {
            s.push_str(&format!(
                " --credentials-requests-dir {}",
                sh_quote(&d.display().to_string())
            ));
        }
        s.push_str(&format!(" --identity-provider-arn {}", sh_quote(arn)));
        if let Some(b) = &self.a.permissions_boundary_arn {
            s.push_str(&format!(" --permissions-boundary-arn {}", sh_quote(b)));
        }
        if self.a.enable_tech_preview {
            s.push_str(" --enable-tech-preview");
        }
        if let Some(o) = &self.a.output_dir {
            s.push_str(&format!(
                " --output-dir {}",
                sh_quote(&o.display().to_string())
            ));
        }
        s
    }

    fn apply_secret(&self, plan: &RolePlan, arn: &str) -> String {
        let out = self
            .a
            .output_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("."));
        format!(
            "{} && oc apply -f {}",
            self.roles(arn),
            sh_quote(&out.join(&plan.secret_path).display().to_string())
        )
    }
}

/// `role_arn` and `web_identity_token_file` of an AWS credentials file.
fn parse_credentials(text: &str) -> (Option<String>, Option<String>) {
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    (field("role_arn"), field("web_identity_token_file"))
}

/// The `credentials` value of a Secret read from the cluster or a manifest.
fn credentials_of(read: SecretRead) -> Result<Option<String>, String> {
    match read? {
        None => Ok(None),
        Some(data) => data
            .get("credentials")
            .map(|b| Some(String::from_utf8_lossy(b).to_string()))
            .ok_or_else(|| "has no `credentials` key".to_string()),
    }
}

/// True when a bucket policy lets anyone read objects.
fn grants_anonymous_read(policy: &Value, bucket: &str) -> bool {
    let statements = match policy.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(s) => vec![s.clone()],
        None => return false,
    };
    statements.iter().any(|s| {
        let allow = s.get("Effect").and_then(Value::as_str) == Some("Allow");
        let principal = s.get("Principal");
        let anyone = principal.and_then(Value::as_str) == Some("*")
            || string_list(principal.and_then(|p| p.get("AWS"))).contains(&"*".to_string());
        let actions = string_list(s.get("Action"));
        let reads = actions
            .iter()
            .any(|a| a == "s3:GetObject" || a == "s3:*" || a == "*");
        let resources = string_list(s.get("Resource"));
        let covers = resources
            .iter()
            .any(|r| r.ends_with(&format!(":::{bucket}/*")) || r == "*");
        allow && anyone && reads && covers && s.get("Condition").is_none()
    })
}

fn bucket_checks(
    r: &mut VerifyReport,
    bucket: &str,
    observed: Result<Option<cco_core::aws::ObservedBucket>, AwsError>,
    front: &Front,
    want_cloudfront_policy: Option<Value>,
    name: &str,
    fix: &str,
) {
    let b = match observed {
        Err(e) => {
            r.push(Check::fail(
                "issuer.bucket",
                bucket,
                e.to_string(),
                Some(fix.into()),
            ));
            return;
        }
        Ok(None) => {
            r.push(Check::fail(
                "issuer.bucket",
                bucket,
                "the issuer bucket does not exist",
                Some(fix.into()),
            ));
            return;
        }
        Ok(Some(b)) => b,
    };
    let key = owned_tag_key(name);
    if b.tags
        .iter()
        .any(|(k, v)| *k == key && v == OWNED_TAG_VALUE)
    {
        r.push(Check::pass(
            "issuer.bucket",
            bucket,
            format!("exists, tagged {key}=owned"),
        ));
    } else {
        r.push(Check::warn(
            "issuer.bucket",
            bucket,
            format!("exists but is not tagged {key}=owned; delete will not remove it"),
            Some(fix.into()),
        ));
    }
    let mut problems = Vec::new();
    let want_pab = PublicAccessBlock::for_front(front);
    match (front, b.public_access_block) {
        (Front::PublicBucket, Some(p)) if p.block_public_policy || p.restrict_public_buckets => {
            problems.push("its public access block blocks public bucket policies".to_string())
        }
        (Front::CloudFront, p) if p != Some(want_pab) => {
            problems.push("its public access block does not block all public access".to_string())
        }
        _ => {}
    }
    match (front, &b.policy) {
        (_, None) => problems.push("it has no bucket policy".into()),
        (Front::PublicBucket, Some(p)) if !grants_anonymous_read(p, bucket) => {
            problems.push("its policy does not let anyone read the issuer documents".into())
        }
        (Front::CloudFront, Some(p))
            if !want_cloudfront_policy
                .as_ref()
                .is_some_and(|w| policies_equivalent(p, w)) =>
        {
            problems.push("its policy does not let the CloudFront distribution read".into())
        }
        _ => {}
    }
    if problems.is_empty() {
        let who = match front {
            Front::PublicBucket => "anyone may read the issuer documents",
            Front::CloudFront => "only the CloudFront distribution may read; the public may not",
        };
        r.push(Check::pass("issuer.bucket_access", bucket, who));
    } else {
        r.push(Check::fail(
            "issuer.bucket_access",
            bucket,
            problems.join("; "),
            Some(fix.into()),
        ));
    }
}

/// Runs every check and returns the report (the exit code is the report's).
pub async fn verify(a: &AwsVerifyArgs) -> anyhow::Result<VerifyReport> {
    validate_name(&a.name)?;
    let region = a.common.region.as_str();
    // Inputs first, so that bad input fails before any call.
    let reqs = match &a.credentials_requests_dir {
        Some(d) => Some(read_dir(
            d,
            ReadOptions {
                cloud: Cloud::Aws,
                enable_tech_preview: a.enable_tech_preview,
            },
        )?),
        None => None,
    };
    let mut signing: Vec<SigningKey> = match (&a.public_key_file, &a.output_dir) {
        (None, None) => None,
        (f, d) => local_signing_key(f.as_deref(), d.as_deref().unwrap_or(Path::new(".")))?,
    }
    .into_iter()
    .collect();
    let ca_pem = match &a.issuer_ca_file {
        Some(p) => Some(
            std::fs::read(p)
                .with_context(|| format!("cannot read --issuer-ca-file {}", p.display()))?,
        ),
        None => None,
    };
    let prober = Prober::new(a.issuer_ca_file.as_deref())?;
    let cluster = match &a.kubeconfig {
        Some(p) => Some(Cluster::connect(p).await?),
        None => None,
    };
    let aws = Aws::connect(region, a.common.concurrency.concurrency.into()).await;
    let account = aws.preflight().await?;
    let mut r = VerifyReport::new("aws", &a.name);
    let partition = Partition::for_region(region);
    let bucket = bucket_name(&a.name);

    // The issuer: the bucket, behind a CloudFront distribution when one reads from it.
    let regional = format!("{bucket}.s3.{region}.{}", partition.dns_suffix);
    let dist = find_distributions(&aws, &regional)
        .await?
        .into_iter()
        .next();
    let front = if dist.is_some() {
        Front::CloudFront
    } else {
        Front::PublicBucket
    };
    let issuer = dist
        .as_ref()
        .map(|d| format!("https://{}", d.domain))
        .unwrap_or_else(|| bucket_issuer_url(&a.name, region));
    let fixes = Fixes {
        a,
        private: front == Front::CloudFront,
    };
    let idp_fix = fixes.identity_provider();
    let cf_policy = dist.as_ref().map(|d| match &d.access {
        OriginAccess::Identity(oai) => {
            origin_access_identity_bucket_policy(&partition, &bucket, oai)
        }
        _ => cloudfront_read_bucket_policy(&partition, &bucket, &account, &d.id),
    });
    bucket_checks(
        &mut r,
        &bucket,
        observe_bucket(&aws, &bucket).await,
        &front,
        cf_policy,
        &a.name,
        &idp_fix,
    );
    let discovery = prober
        .get(&format!("{issuer}/{}", cco_core::oidc::DISCOVERY_PATH))
        .await;
    let mut found = discovery_checks(&issuer, &discovery, &idp_fix);
    if let Some(uri) = found.jwks_uri.clone() {
        let fetched = prober.get(&uri).await;
        jwks_checks(&mut found, &uri, &fetched, &idp_fix);
    }
    r.checks.append(&mut found.checks);

    // The keys.
    if let Some(c) = &cluster {
        let (keys, warnings) = c.signing_keys().await;
        signing.extend(keys);
        r.checks.extend(warnings);
    }
    if let (Some(jwks_uri), Some(jwks)) = (&found.jwks_uri, &found.jwks) {
        // Publish the first signing key alone, then add the others (the cluster's next key…).
        let prune = match signing.split_first() {
            Some((first, rest)) => {
                std::iter::once(format!("{} --prune-old-keys", fixes.publish(first)))
                    .chain(rest.iter().map(|k| fixes.publish(k)))
                    .collect::<Vec<_>>()
                    .join(" && ")
            }
            None => format!(
                "{} --prune-old-keys   # publishes only the key given",
                fixes.identity_provider()
            ),
        };
        r.checks.extend(key_checks(
            jwks_uri,
            jwks,
            &signing,
            &|k| fixes.publish(k),
            &prune,
        ));
    }

    // The identity provider.
    let arn = provider_arn(&partition, &account, &issuer);
    match observe_provider(&aws, &arn).await? {
        None => r.push(Check::fail(
            "provider.exists",
            &arn,
            format!("no IAM OIDC provider for {issuer}"),
            Some(idp_fix.clone()),
        )),
        Some(p) => {
            r.push(Check::pass(
                "provider.exists",
                &arn,
                format!("trusts {issuer}"),
            ));
            let missing: Vec<&str> = CLIENT_IDS
                .iter()
                .copied()
                .filter(|id| !p.client_ids.iter().any(|c| c == id))
                .collect();
            if missing.is_empty() {
                r.push(Check::pass(
                    "provider.client_ids",
                    &arn,
                    format!("client IDs include {}", CLIENT_IDS.join(", ")),
                ));
            } else {
                r.push(Check::fail(
                    "provider.client_ids",
                    &arn,
                    format!(
                        "client IDs {:?} lack {}; tokens for that audience are rejected",
                        p.client_ids,
                        missing.join(", ")
                    ),
                    Some(idp_fix.clone()),
                ));
            }
            match cco_aws::tls::issuer_thumbprint(&issuer, ca_pem.as_deref()).await {
                Ok(t) if p.thumbprints.iter().any(|x| x.eq_ignore_ascii_case(&t)) => {
                    r.push(Check::pass(
                        "provider.thumbprint",
                        &arn,
                        format!("records {t}, the issuer's certificate today"),
                    ))
                }
                Ok(t) => r.push(Check::fail(
                    "provider.thumbprint",
                    &arn,
                    format!(
                        "records {}, but the issuer's certificate today has thumbprint {t}",
                        p.thumbprints.join(", ")
                    ),
                    Some(format!("{idp_fix} --issuer-thumbprint {t}")),
                )),
                Err(e) => r.push(Check::warn(
                    "provider.thumbprint",
                    &arn,
                    format!("cannot compare: {e}"),
                    None,
                )),
            }
        }
    }

    // Each request.
    if let Some(reqs) = &reqs {
        let plans = plan_roles(reqs, &a.name, &arn, a.permissions_boundary_arn.as_deref())?;
        for plan in &plans {
            request_checks(&mut r, &aws, plan, &fixes, &arn, cluster.as_ref()).await?;
        }
    }

    // The cluster's and the installer's idea of the issuer.
    if let Some(c) = &cluster {
        r.push(c.authentication(&issuer).await);
    }
    if let Some(check) = a
        .output_dir
        .as_deref()
        .and_then(|out| manifest_authentication(out, &issuer, &idp_fix))
    {
        r.push(check);
    }
    Ok(r)
}

async fn request_checks(
    r: &mut VerifyReport,
    aws: &Aws,
    plan: &RolePlan,
    fixes: &Fixes<'_>,
    provider: &str,
    cluster: Option<&Cluster>,
) -> anyhow::Result<()> {
    let role = &plan.role_name;
    let fix = fixes.roles(provider);
    let observed = observe_role(aws, role, Some(&plan.policy_name), true).await?;
    let exists = observed.is_some();
    match &observed {
        None => r.push(Check::fail(
            "request.role",
            role,
            format!(
                "role for {}/{} (CredentialsRequest {}) does not exist",
                plan.namespace, plan.secret_name, plan.request
            ),
            Some(fix.clone()),
        )),
        Some(have) => {
            r.push(Check::pass("request.role", role, "exists"));
            if policies_equivalent(&have.trust, &plan.trust_policy) {
                r.push(Check::pass(
                    "request.trust",
                    role,
                    "trusts exactly the request's ServiceAccounts through this provider",
                ));
            } else {
                r.push(Check::fail(
                    "request.trust",
                    role,
                    format!(
                        "stale trust policy: {}",
                        summarize(&trust_diff(&have.trust, &plan.trust_policy))
                    ),
                    Some(fix.clone()),
                ));
            }
            match &have.policy {
                None => r.push(Check::fail(
                    "request.policy",
                    role,
                    format!("inline policy {} does not exist", plan.policy_name),
                    Some(fix.clone()),
                )),
                Some(p) if policies_equivalent(p, &plan.policy) => r.push(Check::pass(
                    "request.policy",
                    role,
                    "grants exactly the request's statements",
                )),
                Some(p) => r.push(Check::fail(
                    "request.policy",
                    role,
                    format!(
                        "policy differs from the request: {}",
                        summarize(&permission_diff(p, &plan.policy))
                    ),
                    Some(fix.clone()),
                )),
            }
            if let Some(b) = &plan.permissions_boundary {
                if have.permissions_boundary.as_deref() == Some(b.as_str()) {
                    r.push(Check::pass(
                        "request.boundary",
                        role,
                        format!("boundary {b}"),
                    ));
                } else {
                    r.push(Check::fail(
                        "request.boundary",
                        role,
                        format!(
                            "permissions boundary is {}, expected {b}",
                            have.permissions_boundary.as_deref().unwrap_or("absent")
                        ),
                        Some(fix.clone()),
                    ));
                }
            }
            let extra: Vec<String> = have
                .inline_policies
                .iter()
                .filter(|p| **p != plan.policy_name)
                .map(|p| format!("inline {p}"))
                .chain(
                    have.attached_policies
                        .iter()
                        .map(|p| format!("attached {p}")),
                )
                .collect();
            if !extra.is_empty() {
                r.push(Check::warn(
                    "request.extra_policies",
                    role,
                    format!(
                        "also has {}; the role may grant more than the request asks for",
                        extra.join(", ")
                    ),
                    None,
                ));
            }
        }
    }

    // The Secret: in the cluster with --kubeconfig, else the manifest in the output dir.
    let (want_arn, want_token) = manifest_credentials_of(plan);
    let (subject, got) = match (cluster, &fixes.a.output_dir) {
        (Some(c), _) => {
            let subject = format!("Secret {}/{}", plan.namespace, plan.secret_name);
            let got = credentials_of(c.secret(&plan.namespace, &plan.secret_name).await);
            (subject, got)
        }
        (None, Some(out)) => {
            let path = out.join(&plan.secret_path);
            (
                path.display().to_string(),
                credentials_of(manifest_secret(&path)),
            )
        }
        (None, None) => return Ok(()),
    };
    let secret_fix = if cluster.is_some() {
        fixes.apply_secret(plan, provider)
    } else {
        fix.clone()
    };
    match got {
        Err(e) => r.push(Check::fail("request.secret", &subject, e, Some(secret_fix))),
        Ok(None) => r.push(Check::fail(
            "request.secret",
            &subject,
            "does not exist",
            Some(secret_fix),
        )),
        Ok(Some(creds)) => {
            let (arn, token) = parse_credentials(&creds);
            let mut problems = Vec::new();
            if arn != want_arn {
                problems.push(format!(
                    "role_arn is {}, expected {}",
                    arn.as_deref().unwrap_or("missing"),
                    want_arn.as_deref().unwrap_or("?")
                ));
            } else if !exists {
                problems.push(format!(
                    "points at role {}, which does not exist",
                    arn.as_deref().unwrap_or("?")
                ));
            }
            if token != want_token {
                problems.push(format!(
                    "web_identity_token_file is {}, expected {}",
                    token.as_deref().unwrap_or("missing"),
                    want_token.as_deref().unwrap_or("?")
                ));
            }
            if problems.is_empty() {
                r.push(Check::pass(
                    "request.secret",
                    &subject,
                    format!(
                        "points at {} with token {}",
                        plan.role_arn,
                        want_token.as_deref().unwrap_or("")
                    ),
                ));
            } else {
                r.push(Check::fail(
                    "request.secret",
                    &subject,
                    problems.join("; "),
                    Some(secret_fix),
                ));
            }
        }
    }
    Ok(())
}

/// What the planned Secret says: role ARN and token path.
fn manifest_credentials_of(plan: &RolePlan) -> (Option<String>, Option<String>) {
    let v: serde_yaml::Value = serde_yaml::from_str(&plan.secret_manifest).unwrap_or_default();
    v["stringData"]["credentials"]
        .as_str()
        .map(parse_credentials)
        .unwrap_or((Some(plan.role_arn.clone()), None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credentials_fields_are_read_from_the_profile() {
        let (arn, token) = parse_credentials(
            "[default]\nsts_regional_endpoints = regional\nrole_arn = arn:aws:iam::1:role/r\nweb_identity_token_file = /t",
        );
        assert_eq!(arn.as_deref(), Some("arn:aws:iam::1:role/r"));
        assert_eq!(token.as_deref(), Some("/t"));
    }

    #[test]
    fn anonymous_read_is_recognised_in_either_form() {
        let p = json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": ["arn:aws:s3:::b-oidc/*"]}]});
        assert!(grants_anonymous_read(&p, "b-oidc"));
        let p = json!({"Statement": {"Effect": "Allow", "Principal": {"AWS": ["*"]},
            "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::b-oidc/*"}});
        assert!(grants_anonymous_read(&p, "b-oidc"));
        let p = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"},
            "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b-oidc/*"}]});
        assert!(!grants_anonymous_read(&p, "b-oidc"));
    }
}
