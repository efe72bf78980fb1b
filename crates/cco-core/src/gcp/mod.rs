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

mod converge;
mod plan;
mod script;
mod verify;

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

/// Why `--name` cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("--name {name:?} is not valid: {why}. It names the workload identity pool and provider, so it must be 4 to 32 characters of lower-case letters, digits and hyphens, start with a letter, not end with a hyphen and not start with \"gcp-\"")]
pub struct NameError {
    pub name: String,
    pub why: &'static str,
}

/// Checks a `--name` (also used for `--workload-identity-pool` and `--workload-identity-provider`).
pub fn validate_name(name: &str) -> Result<(), NameError> {
    let fail = |why| {
        Err(NameError {
            name: name.to_string(),
            why,
        })
    };
    if name.len() > MAX_NAME {
        return fail("it is longer than 32 characters");
    }
    if name.len() < 4 {
        return fail("it is shorter than 4 characters");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return fail("it does not start with a lower-case letter");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return fail("it has characters other than a-z, 0-9 and -");
    }
    if name.ends_with('-') {
        return fail("it ends with a hyphen");
    }
    if name.starts_with("gcp-") {
        return fail("the prefix gcp- is reserved by Google");
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

/// `<name>_<request>` with `-` turned into `_`, cut to 64 characters: a custom role id.
pub fn role_id(name: &str, request: &str) -> String {
    let id = format!("{name}_{request}").replace('-', "_");
    cut(&id, 64).to_string()
}

/// `projects/<project>/roles/<id>`.
pub fn role_name(project: &str, id: &str) -> String {
    format!("projects/{project}/roles/{id}")
}

/// A random 5-character suffix for [`account_id`].
pub fn random_suffix() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..5)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_pool_id_rules() {
        assert!(validate_name("my-cluster-1").is_ok());
        assert!(validate_name(&"a".repeat(32)).is_ok());
        for bad in [
            "abc",
            "1abc",
            "Abcd",
            "ab_cd",
            "abcd-",
            "gcp-abcd",
            &"a".repeat(33),
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        let e = validate_name(&"a".repeat(33)).expect_err("long");
        assert!(e.to_string().contains("longer than 32"));
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
        assert_eq!(random_suffix().len(), 5);
    }

    #[test]
    fn role_ids_use_underscores_and_fit_in_64_characters() {
        assert_eq!(
            role_id("my-c", "openshift-gcp-ccm"),
            "my_c_openshift_gcp_ccm"
        );
        assert_eq!(role_id(&"a".repeat(32), &"b".repeat(60)).len(), 64);
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
