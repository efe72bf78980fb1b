//! `--dry-run`: the files the reference tool writes instead of calling GCP, byte for byte — names,
//! contents and their quirks included. Every script is `#!/bin/sh\n` followed by the reference's
//! command templates joined with `\n` (no final newline); values are inserted as they are, unquoted,
//! as the reference inserts them. `01-…` (pool), `02-…` to `05-…` (issuer), and per request `i`
//! (counted from 0 in reading order) `06-<i>-create-<sa>-sa.sh`, `07-<i>-create-<sa>-role.sh` (only
//! with permissions), `08-<i>-add-iam-policy-binding-for-<sa>-sa.sh` and
//! `09-<i>-generate-credentials-config-for-<sa>-sa.sh`, where `<sa>` is the display name.
//!
//! What the reference's templates leave to the user is left so: the service account's email is the
//! placeholder `<POPULATE_SERVICE_ACCOUNT_EMAIL>` (a dry run creates nothing, so no email exists),
//! the custom-role script passes `---permissions=` (three hyphens, the reference's typo), and the
//! paths in script 09 and in the Secret manifests are the output directory as given, joined as Go's
//! `filepath.Join` joins. The only value read from GCP is the project number in the federated
//! principals of script 08, which the reference looks up in a dry run too.

use super::{
    account_id, bucket_name, principal, role_name, ServiceAccountPlan, AUDIENCE, CREATED_BY,
    WORKLOAD_IDENTITY_USER,
};
use super::{discovery, KeyStorage};

/// The reference's placeholder for the email of a service account a dry run did not create.
pub const EMAIL_PLACEHOLDER: &str = "<POPULATE_SERVICE_ACCOUNT_EMAIL>";
/// The pool script's description: the reference's template spells it with a lower-case "by",
/// unlike the description it gives the pool it creates ([`CREATED_BY`]).
pub const POOL_SCRIPT_DESCRIPTION: &str = "Created by OpenShift ccoctl";
/// Script 01.
pub const POOL_SCRIPT: &str = "01-create-workload-identity-pool.sh";
/// Script 02 (public bucket only).
pub const BUCKET_SCRIPT: &str = "02-create-oidc-bucket.sh";
/// The discovery document (public bucket only).
pub const DISCOVERY_FILE: &str = "03-openid-configuration";
/// The JWKS.
pub const JWKS_FILE: &str = "04-keys.json";
/// Script 05.
pub const PROVIDER_SCRIPT: &str = "05-create-workload-identity-provider.sh";
/// Mode of every dry-run script and document, as the reference writes them.
pub const DRY_RUN_FILE_MODE: u32 = 0o744;
/// The token path script 09 always names (the reference ignores `cloudTokenPath` there).
const SCRIPT_TOKEN_PATH: &str = "/var/run/secrets/openshift/serviceaccount/token";

/// The reference's `createShellScript`: a `#!/bin/sh` line, then the commands, one per line, with
/// no final newline.
pub fn shell_script(commands: &[String]) -> String {
    format!("#!/bin/sh\n{}", commands.join("\n"))
}

/// Go's `filepath.Join(dir, name)`: joined with `/`, then cleaned lexically (`.` and `..`
/// resolved, repeated and trailing slashes dropped); an empty `dir` is left out.
pub fn go_join(dir: &str, name: &str) -> String {
    let joined = if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    };
    path_clean::clean(joined).to_string_lossy().into_owned()
}

/// Files of `create-workload-identity-pool --dry-run`.
pub fn pool_files(pool: &str) -> Vec<(String, String)> {
    vec![(
        POOL_SCRIPT.into(),
        shell_script(&[format!(
            "gcloud iam workload-identity-pools create {pool} --location=global --description=\"{POOL_SCRIPT_DESCRIPTION}\" --display-name={pool}"
        )]),
    )]
}

/// Files of `create-workload-identity-provider --dry-run`, in the order the reference writes them:
/// the bucket script, the discovery document and the JWKS (public bucket), or only the JWKS
/// (`pool-jwk-file`), then the provider script. `jwks` is the JWKS text ([`super::jwks_text`]),
/// `issuer` the issuer URL.
pub fn provider_files(
    name: &str,
    project: &str,
    region: &str,
    pool: &str,
    issuer: &str,
    jwks: &str,
    storage: KeyStorage,
) -> Vec<(String, String)> {
    let bucket = bucket_name(name);
    let mut files = Vec::new();
    if storage == KeyStorage::PublicBucket {
        files.push((
            BUCKET_SCRIPT.into(),
            shell_script(&[
                format!("gsutil mb -b on -l {region} -p {project} gs://{bucket}"),
                format!("gsutil iam ch allUsers:objectViewer gs://{bucket}"),
            ]),
        ));
        files.push((DISCOVERY_FILE.into(), discovery(issuer)));
    }
    files.push((JWKS_FILE.into(), jwks.to_string()));
    let mut cmd = format!(
        "gcloud iam workload-identity-pools providers create-oidc {name} --location=global --workload-identity-pool={pool} --display-name={name} --description=\"{CREATED_BY}\" --issuer-uri={issuer} --allowed-audiences={AUDIENCE} --attribute-mapping=\"google.subject=assertion.sub\""
    );
    if storage == KeyStorage::PoolJwkFile {
        cmd.push_str(&format!(" --jwk-json-path={JWKS_FILE}"));
    }
    files.push((PROVIDER_SCRIPT.into(), shell_script(&[cmd])));
    files
}

/// What [`service_account_files`] needs besides the plans.
#[derive(Clone, Copy, Debug)]
pub struct ServiceAccountScripts<'a> {
    /// `--name`.
    pub name: &'a str,
    /// `--project` (the project id).
    pub project: &'a str,
    /// The project number, which the federated principals name.
    pub project_number: &'a str,
    pub pool: &'a str,
    pub provider: &'a str,
    /// `--output-dir` as given (the reference's target directory: the current directory, absolute,
    /// when the flag is left out).
    pub target_dir: &'a str,
}

/// Files of `create-service-accounts --dry-run`: per request (numbered `i` from 0, in reading
/// order), scripts 06, 07 (only when the request has permissions), 08 and 09, and the placeholder
/// Secret manifest naming script 09. Account ids get `suffixes[i]`.
pub fn service_account_files(
    plans: &[ServiceAccountPlan],
    a: &ServiceAccountScripts<'_>,
    suffixes: &[String],
) -> Vec<(String, String)> {
    let project = a.project;
    let mut files = Vec::new();
    for (i, (p, suffix)) in plans.iter().zip(suffixes).enumerate() {
        let id = account_id(a.name, &p.request, suffix);
        let d = &p.display_name;
        files.push((
            format!("06-{i}-create-{d}-sa.sh"),
            shell_script(&[format!(
                "gcloud iam service-accounts create {id} --display-name={d}"
            )]),
        ));
        let mut roles = p.listed_predefined_roles.clone();
        if let Some(r) = &p.custom_role {
            files.push((
                format!("07-{i}-create-{d}-role.sh"),
                shell_script(&[format!(
                    "gcloud iam roles create {} --project={project} --title={} ---permissions={}",
                    r.id,
                    r.title,
                    r.listed_permissions.join(",")
                )]),
            ));
            roles.push(role_name(project, &r.id));
        }
        let member = format!("serviceAccount:{EMAIL_PLACEHOLDER}");
        let mut bind: Vec<String> = roles
            .iter()
            .map(|role| {
                format!(
                    "gcloud projects add-iam-policy-binding {project} --member={member} --role={role}"
                )
            })
            .collect();
        for sa in &p.listed_service_accounts {
            let who = principal(a.project_number, a.pool, &p.secret_namespace, sa);
            bind.push(format!(
                "gcloud iam service-accounts add-iam-policy-binding {EMAIL_PLACEHOLDER} --member={who} --role={WORKLOAD_IDENTITY_USER}"
            ));
        }
        files.push((
            format!("08-{i}-add-iam-policy-binding-for-{d}-sa.sh"),
            shell_script(&bind),
        ));
        let config_path = go_join(
            a.target_dir,
            &format!("credentials_configurations/{d}_credentials_config.json"),
        );
        let gen_name = format!("09-{i}-generate-credentials-config-for-{d}-sa.sh");
        files.push((
            gen_name.clone(),
            shell_script(&[format!(
                "gcloud iam workload-identity-pools create-cred-config projects/{project}/locations/global/workloadIdentityPools/{}/providers/{} --service-account={EMAIL_PLACEHOLDER} --output-file={config_path} --credential-source-file={SCRIPT_TOKEN_PATH} --credential-source-type=text",
                a.pool, a.provider
            )]),
        ));
        files.push((
            p.secret_path.clone(),
            super::dry_run_secret_manifest(
                &p.secret_namespace,
                &p.secret_name,
                &go_join(a.target_dir, &gen_name),
            ),
        ));
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_joined_as_go_joins_them() {
        assert_eq!(go_join("out/", "x.sh"), "out/x.sh");
        assert_eq!(go_join("./out//a/../b", "x.sh"), "out/b/x.sh");
        assert_eq!(go_join(".", "x.sh"), "x.sh");
        assert_eq!(go_join("", "x.sh"), "x.sh");
        assert_eq!(go_join("/abs/dir", "c/x.json"), "/abs/dir/c/x.json");
    }

    // The expected texts below are the reference's templates (pkg/cmd/provisioning/gcp/*.go) with
    // the values filled in.
    #[test]
    fn the_pool_and_provider_scripts_are_the_reference_templates() {
        assert_eq!(
            pool_files("c1-x"),
            [(
                "01-create-workload-identity-pool.sh".to_string(),
                "#!/bin/sh\ngcloud iam workload-identity-pools create c1-x --location=global --description=\"Created by OpenShift ccoctl\" --display-name=c1-x".to_string()
            )]
        );
        let issuer = "https://storage.googleapis.com/c1-x-oidc";
        let f = provider_files(
            "c1-x",
            "proj",
            "us",
            "pool1",
            issuer,
            "{}",
            KeyStorage::PoolJwkFile,
        );
        let names: Vec<&str> = f.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["04-keys.json", "05-create-workload-identity-provider.sh"]
        );
        assert_eq!(
            f[1].1,
            "#!/bin/sh\ngcloud iam workload-identity-pools providers create-oidc c1-x --location=global --workload-identity-pool=pool1 --display-name=c1-x --description=\"Created By OpenShift ccoctl\" --issuer-uri=https://storage.googleapis.com/c1-x-oidc --allowed-audiences=openshift --attribute-mapping=\"google.subject=assertion.sub\" --jwk-json-path=04-keys.json"
        );
        let f = provider_files(
            "c1-x",
            "proj",
            "us",
            "pool1",
            issuer,
            "{}",
            KeyStorage::PublicBucket,
        );
        assert_eq!(f.len(), 4);
        assert_eq!(
            f[0].1,
            "#!/bin/sh\ngsutil mb -b on -l us -p proj gs://c1-x-oidc\ngsutil iam ch allUsers:objectViewer gs://c1-x-oidc"
        );
        assert!(f[3]
            .1
            .ends_with("--attribute-mapping=\"google.subject=assertion.sub\""));
    }
}
