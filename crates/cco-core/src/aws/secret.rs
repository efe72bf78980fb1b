//! The Secret manifest `ccoctl aws` writes for each request.

/// Path of the manifest below the output dir: `manifests/<ns>-<name>-credentials.yaml`.
pub fn secret_manifest_path(namespace: &str, name: &str) -> String {
    format!("manifests/{namespace}-{name}-credentials.yaml")
}

/// The `credentials` value: an AWS shared-config profile that assumes `role_arn` with the projected
/// token at `token_path`.
pub fn credentials_file(role_arn: &str, token_path: &str) -> String {
    format!(
        "[default]\nsts_regional_endpoints = regional\nrole_arn = {role_arn}\nweb_identity_token_file = {token_path}"
    )
}

/// Last line of a dry run's Secret manifest: it keeps the manifest from being applied before the
/// role ARN is filled in (the reference tool's marker, byte for byte).
pub const POPULATE_ROLE_ARN: &str = "POPULATE ROLE ARN AND DELETE THIS LINE";

/// The Secret manifest, byte for byte in the reference tool's layout (no final newline).
pub fn secret_manifest(namespace: &str, name: &str, role_arn: &str, token_path: &str) -> String {
    let creds = credentials_file(role_arn, token_path)
        .lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "apiVersion: v1\nstringData:\n  credentials: |-\n{creds}\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\ntype: Opaque"
    )
}

/// The Secret manifest a dry run writes: an empty `role_arn`, then [`POPULATE_ROLE_ARN`] on a line of
/// its own, so that the file is not valid YAML until someone fills it in.
pub fn dry_run_secret_manifest(namespace: &str, name: &str, token_path: &str) -> String {
    format!(
        "{}\n{POPULATE_ROLE_ARN}",
        secret_manifest(namespace, name, "", token_path)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_manifest_parses_back_to_the_credentials_string() {
        let m = secret_manifest(
            "ns",
            "s",
            "arn:aws:iam::1:role/r",
            crate::DEFAULT_TOKEN_PATH,
        );
        let v: serde_yaml::Value = serde_yaml::from_str(&m).expect("yaml");
        assert_eq!(
            v["stringData"]["credentials"].as_str(),
            Some("[default]\nsts_regional_endpoints = regional\nrole_arn = arn:aws:iam::1:role/r\nweb_identity_token_file = /var/run/secrets/openshift/serviceaccount/token")
        );
        assert_eq!(v["metadata"]["namespace"].as_str(), Some("ns"));
        assert_eq!(v["type"].as_str(), Some("Opaque"));
    }

    #[test]
    fn dry_run_manifest_has_an_empty_arn_and_the_marker_line_last() {
        let m = dry_run_secret_manifest("ns", "s", crate::DEFAULT_TOKEN_PATH);
        assert!(m.contains("    role_arn = \n"), "{m}");
        assert!(
            m.ends_with("type: Opaque\nPOPULATE ROLE ARN AND DELETE THIS LINE"),
            "{m}"
        );
    }
}
