//! The files `ccoctl azure` writes, byte for byte as the reference tool writes them: the Secret of
//! each managed identity, its dry-run placeholder, the `azure-credentials` Secret that tells the
//! cluster to run the Azure workload identity webhook, and the local copies of the issuer documents.

/// Where the pod identity webhook's configuration Secret goes, relative to the output dir.
pub const WEBHOOK_CONFIG_FILE: &str = "manifests/azure-ad-pod-identity-webhook-config.yaml";
/// The local copy of the discovery document, in the output dir (live and dry runs).
pub const DISCOVERY_FILE: &str = "openid-configuration";
/// The local copy of the JWKS, in the output dir (live and dry runs).
pub const JWKS_FILE: &str = "jwks";
/// The last line of a dry-run Secret, so that it cannot be applied by accident.
pub const DRY_RUN_MARKER: &str = "POPULATE CLIENT ID AND TENANT ID AND DELETE THIS LINE";

/// `manifests/<ns>-<secret>-credentials.yaml`.
pub fn secret_file(namespace: &str, name: &str) -> String {
    format!("manifests/{namespace}-{name}-credentials.yaml")
}

/// The Secret of one managed identity (`stringData` with the five `azure_*` keys).
pub fn secret_manifest(
    namespace: &str,
    name: &str,
    client_id: &str,
    tenant: &str,
    region: &str,
    subscription: &str,
    token_path: &str,
) -> String {
    format!(
        "apiVersion: v1\nstringData:\n  azure_client_id: {client_id}\n  azure_tenant_id: {tenant}\n  azure_region: {region}\n  azure_subscription_id: {subscription}\n  azure_federated_token_file: {token_path}\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\ntype: Opaque"
    )
}

/// The dry-run Secret: client and tenant ids empty (only known once the identity exists) and a last
/// line that makes the file invalid YAML until someone fills them in.
pub fn dry_run_secret_manifest(
    namespace: &str,
    name: &str,
    region: &str,
    subscription: &str,
    token_path: &str,
) -> String {
    format!(
        "{}\n{DRY_RUN_MARKER}",
        secret_manifest(namespace, name, "", "", region, subscription, token_path)
    )
}

/// `azure-credentials` in `openshift-cloud-credential-operator` holding `azure_tenant_id`: the
/// cluster runs the Azure workload identity webhook when it finds this Secret.
pub fn webhook_config_manifest(tenant: &str) -> String {
    format!(
        "apiVersion: v1\nstringData:\n  azure_tenant_id: {tenant}\nkind: Secret\nmetadata:\n  name: azure-credentials\n  namespace: openshift-cloud-credential-operator\ntype: Opaque"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_manifest_has_the_five_string_fields() {
        let m = secret_manifest("ns", "s", "cid", "tid", "eastus", "sub", "/t");
        let v: serde_yaml::Value = serde_yaml::from_str(&m).expect("yaml");
        let d = &v["stringData"];
        assert_eq!(d["azure_client_id"].as_str(), Some("cid"));
        assert_eq!(d["azure_tenant_id"].as_str(), Some("tid"));
        assert_eq!(d["azure_region"].as_str(), Some("eastus"));
        assert_eq!(d["azure_subscription_id"].as_str(), Some("sub"));
        assert_eq!(d["azure_federated_token_file"].as_str(), Some("/t"));
        assert_eq!(v["metadata"]["namespace"].as_str(), Some("ns"));
    }

    #[test]
    fn dry_run_secret_cannot_be_applied() {
        let m = dry_run_secret_manifest("ns", "s", "eastus", "sub", "/t");
        assert!(m.ends_with(&format!("type: Opaque\n{DRY_RUN_MARKER}")));
        assert!(m.contains("  azure_client_id: \n  azure_tenant_id: \n"));
        assert!(serde_yaml::from_str::<serde_yaml::Value>(&m).is_err());
    }

    #[test]
    fn webhook_config_names_the_tenant() {
        let v: serde_yaml::Value =
            serde_yaml::from_str(&webhook_config_manifest("t-1")).expect("yaml");
        assert_eq!(v["stringData"]["azure_tenant_id"].as_str(), Some("t-1"));
        assert_eq!(v["metadata"]["name"].as_str(), Some("azure-credentials"));
        assert_eq!(
            v["metadata"]["namespace"].as_str(),
            Some("openshift-cloud-credential-operator")
        );
    }
}
