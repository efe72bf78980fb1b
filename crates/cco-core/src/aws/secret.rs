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

/// The Secret manifest, in the reference tool's layout.
pub fn secret_manifest(namespace: &str, name: &str, role_arn: &str, token_path: &str) -> String {
    let creds = credentials_file(role_arn, token_path)
        .lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "apiVersion: v1\nstringData:\n  credentials: |-\n{creds}\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\ntype: Opaque\n"
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
}
