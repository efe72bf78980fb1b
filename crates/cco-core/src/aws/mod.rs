//! AWS: naming rules, partitions, tags, IAM policy documents, Secret manifests and the plan.
//!
//! Everything is computed from the inputs alone; the adapter crate executes the plan.

pub mod compare;
mod diff;
mod names;
mod plan;
mod policy;
mod secret;

pub use diff::*;
pub use names::*;
pub use plan::*;
pub use policy::*;
pub use secret::*;

/// Longest IAM role name AWS accepts.
pub const MAX_ROLE_NAME: usize = 64;
/// Client IDs (audiences) registered on the IAM OIDC provider.
pub const CLIENT_IDS: [&str; 2] = ["openshift", "sts.amazonaws.com"];
/// Prefix of the ownership tag key.
pub const OWNED_TAG_PREFIX: &str = "openshift.io/cloud-credential-operator";
/// Value of the ownership tag.
pub const OWNED_TAG_VALUE: &str = "owned";
/// Placeholder for the account id in a dry run, where no AWS call is made.
pub const ACCOUNT_PLACEHOLDER: &str = "<enter_aws_account_id_here>";
/// Placeholder for the TLS thumbprint in a dry run.
pub const THUMBPRINT_PLACEHOLDER: &str = "<enter_tls_fingerprint_for_issuer_url_here>";
/// Placeholder for the CloudFront domain in a dry run.
pub const CLOUDFRONT_PLACEHOLDER: &str = "<enter_cloudfront_distribution_url_here>";
/// Placeholder for the CloudFront distribution id in a dry run.
pub const DISTRIBUTION_ID_PLACEHOLDER: &str = "<enter_cloudfront_distribution_id_here>";

/// An AWS partition: its ARN name and its DNS suffix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    pub id: &'static str,
    pub dns_suffix: &'static str,
}

impl Partition {
    /// The partition a region belongs to.
    pub fn for_region(region: &str) -> Partition {
        if region.starts_with("cn-") {
            Partition {
                id: "aws-cn",
                dns_suffix: "amazonaws.com.cn",
            }
        } else if region.starts_with("us-gov-") {
            Partition {
                id: "aws-us-gov",
                dns_suffix: "amazonaws.com",
            }
        } else if region.starts_with("eusc-") {
            Partition {
                id: "aws-eusc",
                dns_suffix: "amazonaws.eu",
            }
        } else if region.starts_with("us-isob-") {
            Partition {
                id: "aws-iso-b",
                dns_suffix: "sc2s.sgov.gov",
            }
        } else if region.starts_with("us-iso-") {
            Partition {
                id: "aws-iso",
                dns_suffix: "c2s.ic.gov",
            }
        } else {
            Partition {
                id: "aws",
                dns_suffix: "amazonaws.com",
            }
        }
    }
}

impl Partition {
    /// A region of the partition named `id` (as in an ARN), where its global IAM endpoint is reached
    /// when no region is configured. `None` for a partition this tool does not know.
    pub fn home_region(id: &str) -> Option<&'static str> {
        Some(match id {
            "aws" => "us-east-1",
            "aws-us-gov" => "us-gov-west-1",
            "aws-cn" => "cn-north-1",
            "aws-eusc" => "eusc-de-east-1",
            "aws-iso" => "us-iso-east-1",
            "aws-iso-b" => "us-isob-east-1",
            _ => return None,
        })
    }
}

/// The tags put on everything `ccoctl aws` creates for `name`.
pub fn owned_tags(name: &str) -> Vec<(String, String)> {
    vec![
        (owned_tag_key(name), OWNED_TAG_VALUE.to_string()),
        ("Name".to_string(), name.to_string()),
    ]
}

/// `openshift.io/cloud-credential-operator/<name>`.
pub fn owned_tag_key(name: &str) -> String {
    format!("{OWNED_TAG_PREFIX}/{name}")
}

/// `<name>-oidc`.
pub fn bucket_name(name: &str) -> String {
    format!("{name}-oidc")
}

/// `https://<name>-oidc.s3.<region>.<dns suffix>`.
pub fn bucket_issuer_url(name: &str, region: &str) -> String {
    let p = Partition::for_region(region);
    format!("https://{}.s3.{region}.{}", bucket_name(name), p.dns_suffix)
}

/// `<name>-<namespace>-<secret>` cut to 64 characters.
pub fn role_name(name: &str, namespace: &str, secret: &str) -> String {
    let mut s = format!("{name}-{namespace}-{secret}");
    if s.len() > MAX_ROLE_NAME {
        let mut cut = MAX_ROLE_NAME;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// Host and path of an issuer URL: what IAM uses as the provider's identity and condition-key prefix.
pub fn issuer_host_path(issuer: &str) -> &str {
    issuer
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
}

/// The ARN IAM gives an OIDC provider for `issuer` in `account`.
pub fn provider_arn(partition: &Partition, account: &str, issuer: &str) -> String {
    format!(
        "arn:{}:iam::{account}:oidc-provider/{}",
        partition.id,
        issuer_host_path(issuer)
    )
}

/// Parts of an OIDC provider ARN: partition, account and issuer host+path.
pub fn parse_provider_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let rest = arn.strip_prefix("arn:")?;
    let mut it = rest.splitn(5, ':');
    let partition = it.next()?;
    let service = it.next()?;
    let _region = it.next()?;
    let account = it.next()?;
    let resource = it.next()?;
    let host = resource.strip_prefix("oidc-provider/")?;
    (service == "iam" && !host.is_empty() && !account.is_empty())
        .then_some((partition, account, host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_name_is_cut_to_64_characters() {
        let n = role_name("cluster", &"n".repeat(40), &"s".repeat(40));
        assert_eq!(n.len(), 64);
        assert!(n.starts_with("cluster-nnnn"));
        assert_eq!(role_name("a", "b", "c"), "a-b-c");
    }

    #[test]
    fn issuer_is_partition_aware() {
        assert_eq!(
            bucket_issuer_url("x", "us-east-2"),
            "https://x-oidc.s3.us-east-2.amazonaws.com"
        );
        assert_eq!(
            bucket_issuer_url("x", "cn-north-1"),
            "https://x-oidc.s3.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(Partition::for_region("us-gov-west-1").id, "aws-us-gov");
        for id in [
            "aws",
            "aws-us-gov",
            "aws-cn",
            "aws-eusc",
            "aws-iso",
            "aws-iso-b",
        ] {
            let home = Partition::home_region(id).expect("known partition");
            assert_eq!(Partition::for_region(home).id, id);
        }
    }

    #[test]
    fn provider_arn_round_trips() {
        let p = Partition::for_region("us-east-1");
        let arn = provider_arn(
            &p,
            "123456789012",
            "https://x-oidc.s3.us-east-1.amazonaws.com",
        );
        assert_eq!(
            arn,
            "arn:aws:iam::123456789012:oidc-provider/x-oidc.s3.us-east-1.amazonaws.com"
        );
        assert_eq!(
            parse_provider_arn(&arn),
            Some(("aws", "123456789012", "x-oidc.s3.us-east-1.amazonaws.com"))
        );
        assert_eq!(parse_provider_arn("arn:aws:iam::1:role/x"), None);
        assert_eq!(parse_provider_arn("nonsense"), None);
    }
}
