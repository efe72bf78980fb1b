//! The AWS plan: plain data naming every object `ccoctl aws` creates and every file it writes.
//!
//! [`IdentityProviderPlan`] covers the issuer (bucket, documents, optional CloudFront front and the IAM
//! OIDC provider); [`RolePlan`] covers one request's role. Dry runs render both with
//! [`dry_run_identity_provider_files`] and [`dry_run_role_files`]; the adapter executes them.

use std::collections::BTreeMap;

use cco_api::ProviderSpec;
use serde_json::{json, Value};

use super::{
    bucket_issuer_url, bucket_name, cloudfront_read_bucket_policy, dry_run_secret_manifest,
    issuer_host_path, owned_tags, parse_provider_arn, permission_policy, role_name,
    secret_manifest, secret_manifest_path, trust_policy, validate_iam_name, validate_name,
    Partition, ACCOUNT_PLACEHOLDER, CLIENT_IDS, CLOUDFRONT_PLACEHOLDER,
    DISTRIBUTION_ID_PLACEHOLDER, THUMBPRINT_PLACEHOLDER,
};
use crate::oidc::{discovery_document, to_pretty, Flavour};
use crate::reader::{LoadedRequest, Source};

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    InvalidName(#[from] super::InvalidName),
    #[error("{source_} (CredentialsRequest {request}): field `spec.serviceAccountNames` is missing or empty; list the ServiceAccounts that will assume the role")]
    MissingServiceAccounts { source_: Source, request: String },
    #[error("{first} and {second} both map to IAM role {role} (role names are cut to 64 characters); use a shorter --name or distinct secretRef names")]
    RoleNameCollision {
        first: Source,
        second: Source,
        role: String,
    },
    #[error("--identity-provider-arn {arn:?} is not an IAM OIDC provider ARN (expected arn:<partition>:iam::<account>:oidc-provider/<issuer host>)")]
    BadProviderArn { arn: String },
}

/// How the issuer documents are served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Front {
    /// A bucket readable by anyone; the issuer is the bucket's URL.
    PublicBucket,
    /// A private bucket behind a CloudFront distribution with origin access control.
    CloudFront,
}

/// The issuer side of `create-identity-provider`.
#[derive(Clone, Debug)]
pub struct IdentityProviderPlan {
    pub name: String,
    pub region: String,
    pub partition: Partition,
    pub bucket: String,
    pub front: Front,
    /// The issuer; for CloudFront this is known only once the distribution exists.
    pub bucket_issuer: String,
    pub jwks: Value,
    pub tags: Vec<(String, String)>,
}

impl IdentityProviderPlan {
    /// Plans the issuer for `name` in `region`, publishing `jwks`.
    pub fn new(name: &str, region: &str, private: bool, jwks: Value) -> Result<Self, PlanError> {
        validate_name(name)?;
        Ok(IdentityProviderPlan {
            name: name.to_string(),
            region: region.to_string(),
            partition: Partition::for_region(region),
            bucket: bucket_name(name),
            front: if private {
                Front::CloudFront
            } else {
                Front::PublicBucket
            },
            bucket_issuer: bucket_issuer_url(name, region),
            jwks,
            tags: owned_tags(name),
        })
    }

    /// The issuer a dry run names everywhere (documents, provider, roles, Authentication manifest):
    /// the bucket URL, or for CloudFront the reference tool's placeholder, which stands for the whole
    /// `https://…` URL of the distribution.
    pub fn dry_run_issuer(&self) -> String {
        match self.front {
            Front::PublicBucket => self.bucket_issuer.clone(),
            Front::CloudFront => CLOUDFRONT_PLACEHOLDER.to_string(),
        }
    }

    /// The name of the origin access control (one per issuer, found again by this name).
    pub fn oac_name(&self) -> String {
        self.bucket.clone()
    }

    /// The S3 regional domain CloudFront reads from.
    pub fn bucket_regional_domain(&self) -> String {
        format!(
            "{}.s3.{}.{}",
            self.bucket, self.region, self.partition.dns_suffix
        )
    }

    /// The discovery document for `issuer`.
    pub fn discovery(&self, issuer: &str) -> Value {
        discovery_document(issuer, Flavour::AwsGcp)
    }

    /// Input of CreateOpenIDConnectProvider.
    pub fn provider_input(&self, issuer: &str, thumbprint: &str) -> Value {
        json!({
            "Url": issuer,
            "ClientIDList": CLIENT_IDS,
            "ThumbprintList": [thumbprint],
            "Tags": tags_json(&self.tags),
        })
    }

    /// The CloudFront distribution config (GET/HEAD, https only, caching disabled).
    pub fn distribution_config(&self, oac_id: &str) -> Value {
        let origin_id = format!("S3-{}", self.bucket);
        json!({
            "CallerReference": self.bucket,
            "Comment": format!("OIDC issuer for {}", self.name),
            "Enabled": true,
            "Origins": {"Quantity": 1, "Items": [{
                "Id": origin_id,
                "DomainName": self.bucket_regional_domain(),
                "OriginAccessControlId": oac_id,
                "S3OriginConfig": {"OriginAccessIdentity": ""}
            }]},
            "DefaultCacheBehavior": {
                "TargetOriginId": origin_id,
                "ViewerProtocolPolicy": "https-only",
                "AllowedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"],
                    "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]}},
                "CachePolicyId": CACHING_DISABLED_POLICY_ID
            }
        })
    }
}

/// AWS's managed cache policy "CachingDisabled".
pub const CACHING_DISABLED_POLICY_ID: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";

fn tags_json(tags: &[(String, String)]) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect(),
    )
}

/// One request's IAM role.
#[derive(Clone, Debug)]
pub struct RolePlan {
    pub source: Source,
    pub request: String,
    /// The role's name: [`RolePlan::full_name`] cut to 64 characters.
    pub role_name: String,
    /// `<name>-<namespace>-<secret>` before the cut; dry-run file names use it, as the reference does.
    pub full_name: String,
    /// `OpenShift role for <namespace>/<secret>`, as the reference tool describes its roles.
    pub description: String,
    pub role_arn: String,
    pub namespace: String,
    pub secret_name: String,
    pub trust_policy: Value,
    pub policy_name: String,
    pub policy: Value,
    pub permissions_boundary: Option<String>,
    pub tags: Vec<(String, String)>,
    pub secret_path: String,
    pub secret_manifest: String,
    /// The manifest a dry run writes instead: no ARN, and a last line that keeps it from being applied.
    pub dry_run_secret_manifest: String,
    /// Explicitly handled oddities of the request (merged duplicate actions).
    pub notes: Vec<String>,
}

/// Plans one role per AWS request. `provider_arn` may hold the account placeholder in a dry run.
pub fn plan_roles(
    requests: &[LoadedRequest],
    name: &str,
    provider_arn: &str,
    permissions_boundary: Option<&str>,
) -> Result<Vec<RolePlan>, PlanError> {
    validate_iam_name(name)?;
    let (partition, account, host) =
        parse_provider_arn(provider_arn).ok_or_else(|| PlanError::BadProviderArn {
            arn: provider_arn.to_string(),
        })?;
    let mut by_role: BTreeMap<String, Source> = BTreeMap::new();
    let mut plans = Vec::new();
    for r in requests {
        let ProviderSpec::Aws(spec) = &r.provider else {
            continue;
        };
        let sec = &r.request.spec.secret_ref;
        if r.request.spec.service_account_names.is_empty() {
            return Err(PlanError::MissingServiceAccounts {
                source_: r.source.clone(),
                request: r.name().to_string(),
            });
        }
        let role = role_name(name, &sec.namespace, &sec.name);
        if let Some(first) = by_role.insert(role.clone(), r.source.clone()) {
            return Err(PlanError::RoleNameCollision {
                first,
                second: r.source.clone(),
                role,
            });
        }
        let role_arn = format!("arn:{partition}:iam::{account}:role/{role}");
        let (policy, notes) = permission_policy(&spec.statement_entries);
        let token_path = r
            .request
            .spec
            .cloud_token_path
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(crate::DEFAULT_TOKEN_PATH);
        plans.push(RolePlan {
            source: r.source.clone(),
            request: r.name().to_string(),
            trust_policy: trust_policy(
                provider_arn,
                host,
                &sec.namespace,
                &r.request.spec.service_account_names,
            ),
            policy_name: role.clone(),
            policy,
            permissions_boundary: permissions_boundary.map(str::to_owned),
            tags: owned_tags(name),
            secret_path: secret_manifest_path(&sec.namespace, &sec.name),
            secret_manifest: secret_manifest(&sec.namespace, &sec.name, &role_arn, token_path),
            dry_run_secret_manifest: dry_run_secret_manifest(&sec.namespace, &sec.name, token_path),
            full_name: format!("{name}-{}-{}", sec.namespace, sec.name),
            description: format!("OpenShift role for {}/{}", sec.namespace, sec.name),
            notes: notes
                .into_iter()
                .map(|n| format!("statementEntries[{}]: {}", n.statement, n.message))
                .collect(),
            role_name: role,
            role_arn,
            namespace: sec.namespace.clone(),
            secret_name: sec.name.clone(),
        });
    }
    Ok(plans)
}

/// A file a dry run writes: its name below the output dir and its contents.
pub type DryRunFile = (String, String);

/// The dry-run files of `create-identity-provider`: 01–04, and 05–08 for the CloudFront variant.
pub fn dry_run_identity_provider_files(plan: &IdentityProviderPlan) -> Vec<DryRunFile> {
    let issuer = plan.dry_run_issuer();
    let mut bucket = json!({"ACL": "private", "Bucket": plan.bucket});
    if plan.region != "us-east-1" {
        bucket["CreateBucketConfiguration"] = json!({"LocationConstraint": plan.region});
    }
    let mut files = vec![
        ("01-oidc-bucket.json".to_string(), to_pretty(&bucket)),
        (
            "02-openid-configuration".to_string(),
            to_pretty(&plan.discovery(&issuer)),
        ),
        ("03-keys.json".to_string(), to_pretty(&plan.jwks)),
        (
            "04-iam-identity-provider.json".to_string(),
            to_pretty(&plan.provider_input(&issuer, THUMBPRINT_PLACEHOLDER)),
        ),
    ];
    if plan.front == Front::CloudFront {
        let oac = json!({"OriginAccessControlConfig": {
            "Name": plan.oac_name(),
            "Description": format!("OIDC issuer bucket of {}", plan.name),
            "SigningProtocol": "sigv4",
            "SigningBehavior": "always",
            "OriginAccessControlOriginType": "s3"
        }});
        let policy = cloudfront_read_bucket_policy(
            &plan.partition,
            &plan.bucket,
            ACCOUNT_PLACEHOLDER,
            DISTRIBUTION_ID_PLACEHOLDER,
        );
        let block = json!({"Bucket": plan.bucket, "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": true, "IgnorePublicAcls": true,
            "BlockPublicPolicy": true, "RestrictPublicBuckets": true}});
        let dist = json!({"DistributionConfigWithTags": {
            "DistributionConfig": plan.distribution_config("<enter_origin_access_control_id_here>"),
            "Tags": {"Items": tags_json(&plan.tags)}
        }});
        files.extend([
            (
                "05-cloudfront-origin-access-control.json".to_string(),
                to_pretty(&oac),
            ),
            (
                "06-put-bucket-policy-to-allow-origin-access-control.json".to_string(),
                to_pretty(&json!({"Bucket": plan.bucket, "Policy": policy.to_string()})),
            ),
            (
                "07-block-public-access-to-oidc-bucket.json".to_string(),
                to_pretty(&block),
            ),
            (
                "08-cloudfront-distribution.json".to_string(),
                to_pretty(&dist),
            ),
        ]);
    }
    files
}

/// The dry-run files of `create-iam-roles`: `05-<i>-<full role name>-role.json` and
/// `06-<i>-<full role name>-policy.json` (mode 0644). The name in the file name is the one before the
/// 64-character cut, as in the reference tool; the cut name is inside.
pub fn dry_run_role_files(roles: &[RolePlan]) -> Vec<DryRunFile> {
    let mut files = Vec::new();
    for (i, r) in roles.iter().enumerate() {
        let mut role = json!({
            "RoleName": r.role_name,
            "AssumeRolePolicyDocument": r.trust_policy.to_string(),
            "Description": r.description,
            "Tags": tags_json(&r.tags),
        });
        if let Some(b) = &r.permissions_boundary {
            role["PermissionsBoundary"] = json!(b);
        }
        let policy = json!({
            "RoleName": r.role_name,
            "PolicyName": r.policy_name,
            "PolicyDocument": r.policy.to_string(),
        });
        files.push((
            format!("05-{i}-{}-role.json", r.full_name),
            to_pretty(&role),
        ));
        files.push((
            format!("06-{i}-{}-policy.json", r.full_name),
            to_pretty(&policy),
        ));
    }
    files
}

/// The Secret manifests a dry run writes (mode 0600): `manifests/<ns>-<secret>-credentials.yaml`
/// with an empty role ARN and the reference tool's marker line.
pub fn dry_run_secret_files(roles: &[RolePlan]) -> Vec<DryRunFile> {
    roles
        .iter()
        .map(|r| (r.secret_path.clone(), r.dry_run_secret_manifest.clone()))
        .collect()
}

/// The provider ARN a dry run uses when none is given: the account is a placeholder.
pub fn dry_run_provider_arn(partition: &Partition, issuer: &str) -> String {
    super::provider_arn(partition, ACCOUNT_PLACEHOLDER, issuer)
}

/// Host+path of an issuer, for callers that hold only the URL.
pub fn issuer_key(issuer: &str) -> &str {
    issuer_host_path(issuer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::{parse_documents, ReadOptions};
    use cco_api::Cloud;
    use std::path::Path;

    fn reqs(text: &str) -> Vec<LoadedRequest> {
        parse_documents(
            Path::new("f.yaml"),
            text,
            ReadOptions {
                cloud: Cloud::Aws,
                enable_tech_preview: false,
            },
        )
        .expect("parses")
    }

    const REQ: &str = r#"
kind: CredentialsRequest
apiVersion: cloudcredential.openshift.io/v1
metadata: {name: r, namespace: openshift-cloud-credential-operator}
spec:
  secretRef: {name: SECRET, namespace: NS}
  serviceAccountNames: [sa]
  providerSpec:
    kind: AWSProviderSpec
    statementEntries: [{effect: Allow, action: ["s3:*"], resource: "*"}]
"#;
    const ARN: &str = "arn:aws:iam::123456789012:oidc-provider/c-oidc.s3.us-east-1.amazonaws.com";

    #[test]
    fn role_plan_names_role_secret_and_trust() {
        let r = reqs(&REQ.replace("SECRET", "s").replace("NS", "ns"));
        let plans = plan_roles(&r, "c", ARN, Some("arn:aws:iam::aws:policy/B")).expect("plans");
        let p = &plans[0];
        assert_eq!(p.role_name, "c-ns-s");
        assert_eq!(p.role_arn, "arn:aws:iam::123456789012:role/c-ns-s");
        assert_eq!(p.secret_path, "manifests/ns-s-credentials.yaml");
        assert_eq!(
            p.trust_policy["Statement"][0]["Condition"]["StringEquals"]
                ["c-oidc.s3.us-east-1.amazonaws.com:sub"],
            json!(["system:serviceaccount:ns:sa"])
        );
        assert_eq!(
            p.permissions_boundary.as_deref(),
            Some("arn:aws:iam::aws:policy/B")
        );
    }

    #[test]
    fn missing_service_accounts_is_an_error_naming_the_request() {
        let r = reqs(
            &REQ.replace("SECRET", "s")
                .replace("NS", "ns")
                .replace("  serviceAccountNames: [sa]\n", ""),
        );
        let err = plan_roles(&r, "c", ARN, None)
            .expect_err("fails")
            .to_string();
        assert!(
            err.contains("f.yaml (document 0)") && err.contains("serviceAccountNames"),
            "{err}"
        );
    }

    #[test]
    fn truncated_role_names_that_collide_are_reported() {
        let long = "n".repeat(63);
        let a = REQ.replace("SECRET", "s1").replace("NS", &long);
        let b = REQ.replace("SECRET", "s2").replace("NS", &long);
        let r = reqs(&format!("{a}\n---\n{b}"));
        let err = plan_roles(&r, "c", ARN, None)
            .expect_err("fails")
            .to_string();
        assert!(err.contains("both map to IAM role"), "{err}");
    }

    #[test]
    fn file_names_carry_the_full_role_name_and_the_cut_name_is_inside() {
        let ns = "n".repeat(63);
        let r = reqs(&REQ.replace("SECRET", "secret").replace("NS", &ns));
        let plans = plan_roles(&r, "c", ARN, None).expect("plans");
        let full = format!("c-{ns}-secret");
        let files = dry_run_role_files(&plans);
        assert_eq!(files[0].0, format!("05-0-{full}-role.json"));
        assert_eq!(files[1].0, format!("06-0-{full}-policy.json"));
        let role: Value = serde_json::from_str(&files[0].1).expect("json");
        assert_eq!(role["RoleName"], json!(&full[..64]));
        let secrets = dry_run_secret_files(&plans);
        assert_eq!(
            secrets[0].0,
            format!("manifests/{ns}-secret-credentials.yaml")
        );
        assert!(secrets[0]
            .1
            .ends_with("\nPOPULATE ROLE ARN AND DELETE THIS LINE"));
    }

    #[test]
    fn roles_accept_names_iam_accepts() {
        let r = reqs(&REQ.replace("SECRET", "s").replace("NS", "ns"));
        let plans = plan_roles(&r, "My_Cluster.1", ARN, None).expect("IAM accepts this name");
        assert_eq!(plans[0].role_name, "My_Cluster.1-ns-s");
        assert!(plan_roles(&r, "a,b", ARN, None).is_err());
    }

    #[test]
    fn private_dry_run_writes_eight_files_with_placeholders() {
        let plan =
            IdentityProviderPlan::new("c", "us-west-2", true, json!({"keys": []})).expect("plan");
        let files = dry_run_identity_provider_files(&plan);
        let names: Vec<_> = files.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(names.len(), 8);
        assert!(names[4].starts_with("05-cloudfront"));
        assert!(files[1]
            .1
            .contains(&format!("\"issuer\": \"{CLOUDFRONT_PLACEHOLDER}\"")));
        assert!(files[3].1.contains(THUMBPRINT_PLACEHOLDER));
        let public =
            IdentityProviderPlan::new("c", "us-west-2", false, json!({"keys": []})).expect("plan");
        assert_eq!(dry_run_identity_provider_files(&public).len(), 4);
    }
}
