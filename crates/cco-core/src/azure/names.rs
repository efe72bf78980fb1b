//! Azure's naming rules for what `--name` and the resource-group, storage-account and container
//! flags become, checked before any call so that a refusal names the flag, the value and the rule.
//!
//! `--name` is not one Azure name but the root of several: the default resource groups
//! (`<name>-oidc`, `<name>`), the managed identities (`<name>-<ns>-<secret>`), the ownership tag key
//! (`openshift.io_cloud-credential-operator_<name>`) and, by default, the storage account and blob
//! container. Each command checks only the rules of what it makes, so a name the reference tool and
//! Azure accept is never refused (upper case, `.`, `(`, `)` and long names are fine for the issuer's
//! resource group, for instance).

/// Why a flag value cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("--storage-account-name {0:?} is not valid: Azure storage account names must be between 3 and 24 characters in length and may contain numbers and lowercase letters only (the name is also the account's public DNS name); pass --storage-account-name explicitly when --name does not qualify")]
    StorageAccount(String),
    #[error("--name must not be empty")]
    EmptyName,
    #[error("--name {name:?} is not valid: {why}")]
    Name { name: String, why: String },
    #[error("{flag} {value:?} is not valid: {why}")]
    ResourceGroup {
        flag: String,
        value: String,
        why: String,
    },
    #[error("--blob-container-name {0:?} is not valid: a blob container name is 3 to 63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit; pass --blob-container-name explicitly when --name does not qualify")]
    Container(String),
    #[error("--user-tags {0:?} is not valid: expected key=value pairs separated by commas")]
    Tags(String),
}

/// Checks `^[a-z0-9]{3,24}$`, the storage account rule.
pub fn validate_storage_account(s: &str) -> Result<(), NameError> {
    let ok = (3..=24).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(NameError::StorageAccount(s.to_string()))
    }
}

/// Checks a blob container name (3–63 lower-case letters, digits and single hyphens).
pub fn validate_container(s: &str) -> Result<(), NameError> {
    let ok = (3..=63).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--");
    if ok {
        Ok(())
    } else {
        Err(NameError::Container(s.to_string()))
    }
}

/// Characters Azure refuses in tag names.
const TAG_KEY_FORBIDDEN: &[char] = &['<', '>', '%', '&', '\\', '?', '/'];

/// Checks what every command needs of `--name`: not empty, and usable in the ownership tag key
/// `openshift.io_cloud-credential-operator_<name>` (at most 512 characters, none of `<>%&\?/`).
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::EmptyName);
    }
    let fail = |why: &str| {
        Err(NameError::Name {
            name: name.to_string(),
            why: why.to_string(),
        })
    };
    if let Some(c) = name
        .chars()
        .find(|c| TAG_KEY_FORBIDDEN.contains(c) || c.is_control())
    {
        return fail(&format!(
            "it contains {c:?}, which Azure refuses in the ownership tag key openshift.io_cloud-credential-operator_<name>"
        ));
    }
    if name.len() + super::owner_tag_key("").len() > 512 {
        return fail("the ownership tag key openshift.io_cloud-credential-operator_<name> would be longer than Azure's 512 characters");
    }
    Ok(())
}

/// Checks `--name` for the commands that make managed identities `<name>-<ns>-<secret>`: Azure
/// allows letters, digits, hyphens and underscores there, starting with a letter or digit.
pub fn validate_identity_prefix(name: &str) -> Result<(), NameError> {
    validate_name(name)?;
    let fail = |why: String| {
        Err(NameError::Name {
            name: name.to_string(),
            why,
        })
    };
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return fail("it starts the managed identity names <name>-<namespace>-<secret>, which must start with a letter or digit".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return fail(format!("it contains {c:?}, but it starts the managed identity names <name>-<namespace>-<secret>, which may hold only letters, digits, hyphens and underscores"));
    }
    Ok(())
}

/// Checks a resource group name given by `flag` (or derived from `--name` when the flag is not
/// given, `derived` saying how): 1 to 90 letters, digits, `_`, `-`, `.`, `(`, `)`, not ending in `.`.
pub fn validate_resource_group(
    flag: &str,
    value: &str,
    derived: Option<&str>,
) -> Result<(), NameError> {
    let why = if value.is_empty() {
        Some("a resource group name cannot be empty".to_string())
    } else if value.chars().count() > 90 {
        Some("a resource group name is at most 90 characters".to_string())
    } else if value.ends_with('.') {
        Some("a resource group name cannot end with a period".to_string())
    } else {
        value
            .chars()
            .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '(' | ')')))
            .map(|c| format!("a resource group name may hold only letters, digits, underscores, hyphens, periods and parentheses, not {c:?}"))
    };
    match why {
        None => Ok(()),
        Some(why) => Err(NameError::ResourceGroup {
            flag: flag.to_string(),
            value: value.to_string(),
            why: match derived {
                Some(d) => format!("{why} (it is {d}; pass {flag} explicitly)"),
                None => why,
            },
        }),
    }
}

/// Parses `--user-tags k=v,k2=v2`.
pub fn parse_tags(s: &str) -> Result<Vec<(String, String)>, NameError> {
    let mut out = Vec::new();
    for pair in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| NameError::Tags(s.to_string()))?;
        if k.trim().is_empty() {
            return Err(NameError::Tags(s.to_string()));
        }
        out.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_account_names_follow_the_azure_rule() {
        for ok in ["abc", "mycluster01", &"a".repeat(24)] {
            assert!(validate_storage_account(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "my-cluster", "MyCluster", &"a".repeat(25), ""] {
            assert!(validate_storage_account(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_azure_accepts_are_not_refused() {
        // Upper case, periods, underscores and long names are fine for a resource group and a tag.
        for ok in [
            "MyCluster",
            "my.cluster",
            "my_cluster",
            "c(1)",
            &"n".repeat(80),
        ] {
            assert!(validate_name(ok).is_ok(), "{ok}");
            assert!(
                validate_resource_group("--oidc-resource-group-name", &format!("{ok}-oidc"), None)
                    .is_ok(),
                "{ok}"
            );
        }
        for ok in ["MyCluster", "my_cluster-1", &"n".repeat(100)] {
            assert!(validate_identity_prefix(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refusals_say_which_rule_and_why() {
        let e = validate_identity_prefix("my.cluster").expect_err("period");
        assert!(e.to_string().contains("managed identity names"), "{e}");
        let e = validate_identity_prefix("-c").expect_err("hyphen first");
        assert!(
            e.to_string().contains("start with a letter or digit"),
            "{e}"
        );
        let e = validate_name("a/b").expect_err("slash");
        assert!(e.to_string().contains("tag key"), "{e}");
        assert_eq!(validate_name(""), Err(NameError::EmptyName));
        let e = validate_resource_group(
            "--oidc-resource-group-name",
            &format!("{}-oidc", "n".repeat(90)),
            Some("<name>-oidc"),
        )
        .expect_err("long");
        assert!(e.to_string().contains("at most 90"), "{e}");
        assert!(
            e.to_string()
                .contains("pass --oidc-resource-group-name explicitly"),
            "{e}"
        );
        assert!(validate_resource_group("--x", "rg.", None).is_err());
        assert!(validate_resource_group("--x", "rg#1", None).is_err());
    }

    #[test]
    fn user_tags_parse() {
        assert_eq!(
            parse_tags("a=1, b=two").expect("tags"),
            vec![
                ("a".to_string(), "1".to_string()),
                ("b".into(), "two".into())
            ]
        );
        assert!(parse_tags("novalue").is_err());
        assert!(parse_tags("=v").is_err());
    }
}
