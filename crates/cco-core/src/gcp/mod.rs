//! GCP workload identity federation: naming rules, the plan, Secret manifests and dry-run scripts.
//!
//! Data model: the issuer is either a public bucket `<name>-oidc` serving the discovery document and
//! JWKS, or (`pool-jwk-file`) the JWKS embedded in the provider; in both cases the issuer URL is
//! `https://storage.googleapis.com/<name>-oidc`. A workload identity pool and an OIDC provider trust
//! it. Each request becomes a [`ServiceAccountPlan`]: a service account found again by its display
//! name `<name≤50>-<request≤49>`, an optional custom role with the request's permissions, project
//! bindings for its roles, and `roles/iam.workloadIdentityUser` on the service account for each
//! Kubernetes service account's principal. Everything `ccoctl` creates carries the description
//! [`CREATED_BY`]; `delete` removes only what carries it.

mod changes;
mod converge;
mod plan;
mod script;
mod verify;

pub use changes::*;
pub use converge::*;
pub use plan::*;
pub use script::*;
pub use verify::*;

/// Description put on every pool, provider, service account and custom role `ccoctl` creates.
pub const CREATED_BY: &str = "Created By OpenShift ccoctl";
/// The only audience the cluster's tokens carry for GCP.
pub const AUDIENCE: &str = "openshift";
/// Role that lets a federated principal impersonate a service account.
pub const WORKLOAD_IDENTITY_USER: &str = "roles/iam.workloadIdentityUser";
/// Role that makes the issuer bucket's objects public.
pub const OBJECT_VIEWER: &str = "roles/storage.objectViewer";
/// Longest `--name`.
pub const MAX_NAME: usize = 32;

/// Where the provider finds the signing keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStorage {
    /// A public bucket serves the discovery document and `keys.json` (the default).
    PublicBucket,
    /// The JWKS is stored in the provider itself; no bucket is made.
    PoolJwkFile,
}

impl KeyStorage {
    /// Parses the flag value (`public-bucket` or `pool-jwk-file`).
    pub fn parse(s: &str) -> Option<KeyStorage> {
        match s {
            "public-bucket" => Some(KeyStorage::PublicBucket),
            "pool-jwk-file" => Some(KeyStorage::PoolJwkFile),
            _ => None,
        }
    }
}

/// Why a `--name` (or pool / provider flag) cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{flag} {value:?} is not valid: {why}")]
pub struct NameError {
    pub flag: &'static str,
    pub value: String,
    pub why: String,
}

fn name_error(flag: &'static str, value: &str, why: impl Into<String>) -> Result<(), NameError> {
    Err(NameError {
        flag,
        value: value.to_string(),
        why: why.into(),
    })
}

/// The reference tool's only rule for `--name`, on every command: at most 32 characters.
pub fn validate_name_length(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return name_error("--name", name, "it is empty");
    }
    if name.len() > MAX_NAME {
        return name_error("--name", name, "Name can be at most 32 characters long");
    }
    Ok(())
}

/// A workload identity pool or provider id (`flag` says which flag gives it): GCP takes 4 to 32
/// characters of `[a-z0-9-]`, not starting with the reserved prefix `gcp-`.
pub fn validate_pool_id(flag: &'static str, id: &str) -> Result<(), NameError> {
    let what = "it names a workload identity pool or provider, whose id GCP wants 4 to 32 characters of lower-case letters, digits and hyphens, not starting with gcp-";
    if !(4..=32).contains(&id.len()) {
        return name_error(
            flag,
            id,
            format!("it is {} characters long; {what}", id.len()),
        );
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return name_error(flag, id, format!("it contains {c:?}; {what}"));
    }
    if id.starts_with("gcp-") {
        return name_error(
            flag,
            id,
            format!("the prefix gcp- is reserved by Google; {what}"),
        );
    }
    Ok(())
}

/// `--name` of the public issuer bucket `<name>-oidc`: on top of the pool id rule, a bucket name
/// starts with a letter or digit and may neither start with `goog` nor contain `google`.
pub fn validate_bucket_name(name: &str) -> Result<(), NameError> {
    let bucket = bucket_name(name);
    let why = if !bucket.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        "the issuer bucket <name>-oidc must start with a letter or digit"
    } else if bucket.starts_with("goog") || bucket.contains("google") {
        "GCP refuses bucket names (here <name>-oidc) that start with goog or contain google"
    } else {
        return Ok(());
    };
    name_error("--name", name, why)
}

/// `--name` of the commands that create service accounts: their ids start with the first 12
/// characters of the name, and GCP wants an id to start with a lower-case letter and hold only
/// lower-case letters, digits and hyphens.
pub fn validate_account_prefix(name: &str) -> Result<(), NameError> {
    validate_name_length(name)?;
    let head = cut(name, 12);
    let what = "the service account ids are <first 12 characters of the name>-<request>-<random>, which GCP wants to start with a lower-case letter and hold only lower-case letters, digits and hyphens";
    if !head.starts_with(|c: char| c.is_ascii_lowercase()) {
        return name_error(
            "--name",
            name,
            format!("it does not start with a lower-case letter; {what}"),
        );
    }
    if let Some(c) = head
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return name_error(
            "--name",
            name,
            format!("it contains {c:?} in its first 12 characters; {what}"),
        );
    }
    Ok(())
}

/// `--name` of `delete`: what the reference tool checks, plus no character that would change the
/// meaning of the URLs it is put in.
pub fn validate_delete_name(name: &str) -> Result<(), NameError> {
    validate_name_length(name)?;
    if let Some(c) = name
        .chars()
        .find(|c| matches!(c, '/' | '?' | '#' | '%') || c.is_whitespace() || c.is_control())
    {
        return name_error(
            "--name",
            name,
            format!("it contains {c:?}, which no GCP resource name holds"),
        );
    }
    Ok(())
}

/// `<name>-oidc`.
pub fn bucket_name(name: &str) -> String {
    format!("{name}-oidc")
}

/// `https://storage.googleapis.com/<name>-oidc`.
pub fn issuer_url(name: &str) -> String {
    format!("https://storage.googleapis.com/{}", bucket_name(name))
}

/// `projects/<project>/locations/global/workloadIdentityPools/<pool>`.
pub fn pool_resource(project: &str, pool: &str) -> String {
    format!("projects/{project}/locations/global/workloadIdentityPools/{pool}")
}

/// `projects/<project>/locations/global/workloadIdentityPools/<pool>/providers/<provider>`.
pub fn provider_resource(project: &str, pool: &str, provider: &str) -> String {
    format!("{}/providers/{provider}", pool_resource(project, pool))
}

/// The audience of the `external_account` credential.
pub fn credential_audience(project_number: &str, pool: &str, provider: &str) -> String {
    format!(
        "//iam.googleapis.com/{}",
        provider_resource(project_number, pool, provider)
    )
}

/// The federated principal of a Kubernetes service account.
pub fn principal(project_number: &str, pool: &str, namespace: &str, sa: &str) -> String {
    format!(
        "principal://iam.googleapis.com/{}/subject/system:serviceaccount:{namespace}:{sa}",
        pool_resource(project_number, pool)
    )
}

/// The member string of a GCP service account.
pub fn service_account_member(email: &str) -> String {
    format!("serviceAccount:{email}")
}

/// The email of service account `account_id` in `project`.
pub fn service_account_email(account_id: &str, project: &str) -> String {
    format!("{account_id}@{project}.iam.gserviceaccount.com")
}

fn cut(s: &str, n: usize) -> &str {
    let mut end = s.len().min(n);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `<name≤50>-<request≤49>`: how a service account (and custom role title) is found again.
pub fn display_name(name: &str, request: &str) -> String {
    format!("{}-{}", cut(name, 50), cut(request, 49))
}

/// `<name≤12>-<request≤11>-<suffix>`: a service account id (at most 30 characters), `suffix` being
/// 5 random lower-case letters and digits.
pub fn account_id(name: &str, request: &str, suffix: &str) -> String {
    format!("{}-{}-{suffix}", cut(name, 12), cut(request, 11))
}

fn alphanumeric(s: &str) -> String {
    s.chars().filter(char::is_ascii_alphanumeric).collect()
}

/// A custom role id as the reference tool makes it: `<project≤32>_<request≤31>`, both with every
/// character other than a letter or digit removed. `None` when either part is left empty.
pub fn role_id(project: &str, request: &str) -> Option<String> {
    let (p, r) = (alphanumeric(project), alphanumeric(request));
    if p.is_empty() || r.is_empty() {
        return None;
    }
    Some(format!("{}_{}", cut(&p, 32), cut(&r, 31)))
}

/// A custom role's title as the reference tool makes it: `<project≤50>-<request≤49>` (the
/// reference tool finds its roles again by this title).
pub fn role_title(project: &str, request: &str) -> String {
    format!("{}-{}", cut(project, 50), cut(request, 49))
}

/// The custom role id earlier versions of this tool used: `<name>_<request>` with `-` turned into
/// `_`, cut to 64 characters. `delete --force-delete-custom-roles` still finds roles made so.
pub fn legacy_role_id(name: &str, request: &str) -> String {
    let id = format!("{name}_{request}").replace('-', "_");
    cut(&id, 64).to_string()
}

/// `projects/<project>/roles/<id>`.
pub fn role_name(project: &str, id: &str) -> String {
    format!("projects/{project}/roles/{id}")
}

/// A random 5-character suffix for [`account_id`], drawn as the reference tool draws it (Kubernetes'
/// `utilrand.String`: consonants and digits without vowels or look-alikes).
pub fn random_suffix() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::thread_rng();
    (0..5)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_ids_follow_the_documented_rule() {
        for ok in ["my-cluster-1", "1abc", "abcd-", &"a".repeat(32)] {
            assert!(validate_pool_id("--name", ok).is_ok(), "{ok}");
        }
        for bad in ["abc", "Abcd", "ab_cd", "ab.cd", "gcp-abcd", &"a".repeat(33)] {
            assert!(validate_pool_id("--name", bad).is_err(), "{bad}");
        }
        let e = validate_pool_id("--workload-identity-pool", "ab_cd").expect_err("underscore");
        assert!(
            e.to_string()
                .starts_with("--workload-identity-pool \"ab_cd\" is not valid: it contains '_'"),
            "{e}"
        );
    }

    #[test]
    fn other_names_follow_their_own_rules() {
        assert!(validate_bucket_name("-abc").is_err());
        assert!(validate_bucket_name("googly").is_err());
        assert!(validate_bucket_name("my-google-x").is_err());
        assert!(validate_bucket_name("abcd").is_ok());
        // Only the first 12 characters reach the service account ids.
        assert!(validate_account_prefix("mycluster-ab_CD.x").is_ok());
        assert!(validate_account_prefix("My-cluster").is_err());
        assert!(validate_account_prefix("1cluster").is_err());
        let e = validate_account_prefix(&"a".repeat(33)).expect_err("long");
        assert!(e.to_string().contains("at most 32 characters"), "{e}");
        assert!(validate_delete_name("Any_Name.1").is_ok());
        assert!(validate_delete_name("a/b").is_err());
    }

    #[test]
    fn service_account_ids_fit_in_30_characters() {
        let id = account_id(
            &"n".repeat(32),
            "openshift-cloud-network-config-controller-gcp",
            "ab1c2",
        );
        assert_eq!(id, "nnnnnnnnnnnn-openshift-c-ab1c2");
        assert!(id.len() <= 30);
        assert_eq!(
            display_name("c", "openshift-gcp-ccm"),
            "c-openshift-gcp-ccm"
        );
        assert_eq!(display_name(&"x".repeat(60), "r").len(), 52);
        for _ in 0..50 {
            let s = random_suffix();
            assert_eq!(s.len(), 5);
            assert!(
                s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
                "{s}"
            );
        }
    }

    #[test]
    fn role_ids_follow_the_reference_scheme() {
        assert_eq!(
            role_id("my-project-1", "openshift-gcp-ccm").as_deref(),
            Some("myproject1_openshiftgcpccm")
        );
        let long = role_id(&"p".repeat(40), &"r".repeat(40)).expect("id");
        assert_eq!(long, format!("{}_{}", "p".repeat(32), "r".repeat(31)));
        assert_eq!(role_id("---", "x"), None);
        assert_eq!(role_title("proj", "req"), "proj-req");
        assert_eq!(role_title(&"p".repeat(60), &"r".repeat(60)).len(), 100);
        assert_eq!(
            legacy_role_id("my-c", "openshift-gcp-ccm"),
            "my_c_openshift_gcp_ccm"
        );
    }

    #[test]
    fn federation_names_match_the_documented_formats() {
        assert_eq!(
            credential_audience("123", "pool", "prov"),
            "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/prov"
        );
        assert_eq!(
            principal("123", "pool", "ns", "sa"),
            "principal://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/subject/system:serviceaccount:ns:sa"
        );
        assert_eq!(issuer_url("c1"), "https://storage.googleapis.com/c1-oidc");
    }
}
