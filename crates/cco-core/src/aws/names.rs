//! `--name` against AWS's own rules, per use: every command tags with
//! `openshift.io/cloud-credential-operator/<name>` and names roles `<name>-…`; the commands that make
//! the issuer also name the S3 bucket `<name>-oidc`. The reference tool checks nothing, so everything
//! AWS accepts is accepted here, and what AWS would refuse is refused up front with AWS's reason.

use super::{bucket_name, OWNED_TAG_PREFIX};

/// Why `--name` cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("--name {name:?} is invalid: {why}")]
pub struct InvalidName {
    pub name: String,
    pub why: String,
}

/// IAM tag keys are at most 128 characters.
const MAX_TAG_KEY: usize = 128;

/// Checks `--name` for commands that only tag and name IAM resources (`create-iam-roles`, `delete`).
///
/// IAM role names allow letters, digits and `+=,.@_-`; tag keys allow letters, digits, spaces and
/// `_.:/=+-@`. A name must fit both, and the ownership tag key built from it must fit 128 characters.
pub fn validate_iam_name(name: &str) -> Result<(), InvalidName> {
    let bad = |why: String| {
        Err(InvalidName {
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() {
        return bad("it must not be empty".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+=.@_-".contains(*c)))
    {
        return bad(format!(
            "{c:?} is not allowed: IAM role names and tag keys share only letters, digits and '+=.@_-'"
        ));
    }
    let key_len = OWNED_TAG_PREFIX.len() + 1 + name.len();
    if key_len > MAX_TAG_KEY {
        return bad(format!(
            "it must be at most {} characters, so that the ownership tag key {OWNED_TAG_PREFIX}/<name> fits IAM's {MAX_TAG_KEY}",
            MAX_TAG_KEY - OWNED_TAG_PREFIX.len() - 1
        ));
    }
    Ok(())
}

/// Checks `--name` for commands that also create the issuer bucket `<name>-oidc`
/// (`create-identity-provider`, `create-all`): the IAM rules, and S3's general-purpose bucket
/// naming rules for the bucket name.
pub fn validate_name(name: &str) -> Result<(), InvalidName> {
    validate_iam_name(name)?;
    bucket_name_problem(&bucket_name(name)).map_or(Ok(()), |why| {
        Err(InvalidName {
            name: name.to_string(),
            why: format!("the S3 bucket name {:?} {why}", bucket_name(name)),
        })
    })
}

/// What S3 would object to in a general-purpose bucket name, if anything.
pub fn bucket_name_problem(bucket: &str) -> Option<String> {
    if bucket.len() < 3 || bucket.len() > 63 {
        return Some(format!(
            "has {} characters; S3 allows 3 to 63 (so --name may have at most 58)",
            bucket.len()
        ));
    }
    if let Some(c) = bucket
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        return Some(format!(
            "contains {c:?}; S3 bucket names allow only lowercase letters, digits, '.' and '-'"
        ));
    }
    if !bucket.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Some("must start with a lowercase letter or a digit".into());
    }
    if bucket.contains("..") {
        return Some("must not contain two adjacent periods".into());
    }
    if let Some(p) = ["xn--", "sthree-", "amzn-s3-demo-"]
        .iter()
        .find(|p| bucket.starts_with(*p))
    {
        return Some(format!("must not start with {p:?} (reserved by S3)"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_commands_accept_what_iam_accepts() {
        for ok in ["Upper_Case.Name", "a", "x@y+z=w", &"n".repeat(89)] {
            assert!(validate_iam_name(ok).is_ok(), "{ok}");
        }
        let long = validate_iam_name(&"n".repeat(90)).expect_err("too long");
        assert!(long.to_string().contains("at most 89"), "{long}");
        let comma = validate_iam_name("a,b").expect_err("comma");
        assert!(comma.to_string().contains("tag keys"), "{comma}");
        assert!(validate_iam_name("").is_err());
        assert!(validate_iam_name("a/b").is_err());
    }

    #[test]
    fn bucket_commands_follow_s3_rules_with_the_reason() {
        assert!(validate_name("ok-name-1").is_ok());
        assert!(validate_name("dotted.name").is_ok());
        assert!(validate_name(&"a".repeat(58)).is_ok());
        for (bad, why) in [
            ("Bad", "lowercase"),
            ("under_score", "lowercase"),
            (&"a".repeat(59) as &str, "3 to 63"),
            ("-x", "start with"),
            ("a..b", "adjacent periods"),
            ("xn--abc", "reserved"),
            ("", "empty"),
        ] {
            let e = validate_name(bad).expect_err(bad).to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
