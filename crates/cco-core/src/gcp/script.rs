//! `--dry-run`: the numbered gcloud/gsutil scripts and documents the reference tool writes instead of
//! calling GCP, with the same file names (`01-…` to `05-…` for the issuer; per request `06-<i>-…-sa.sh`,
//! `07-<i>-…-role.sh` when it has permissions, `08-<i>-…`, `09-<i>-…`), written mode 0744 as the
//! reference writes them. Unlike the reference tool's, the scripts run as they are: the project number
//! is looked up by the script itself, and the service account email is known in advance (the random
//! id suffix is drawn when the scripts are written).

use super::{
    account_id, bucket_name, issuer_url, principal, service_account_email, service_account_member,
    ServiceAccountPlan, AUDIENCE, CREATED_BY, WORKLOAD_IDENTITY_USER,
};
use super::{discovery, KeyStorage};

/// Single-quotes `s` for POSIX sh.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn script(lines: &[String]) -> String {
    format!("#!/bin/sh\nset -e\n{}\n", lines.join("\n"))
}

const PROJECT_NUMBER_LINE: &str =
    "PROJECT_NUMBER=\"$(gcloud projects describe \"$PROJECT\" --format='value(projectNumber)')\"";

/// Files of `create-workload-identity-pool --dry-run`.
pub fn pool_files(project: &str, pool: &str) -> Vec<(String, String)> {
    vec![(
        "01-create-workload-identity-pool.sh".into(),
        script(&[format!(
            "gcloud iam workload-identity-pools create {} --project={} --location=global --description={} --display-name={}",
            sh_quote(pool),
            sh_quote(project),
            sh_quote(CREATED_BY),
            sh_quote(pool)
        )]),
    )]
}

/// Files of `create-workload-identity-provider --dry-run`: the bucket script and documents
/// (public-bucket only), the JWKS and the provider script.
pub fn provider_files(
    name: &str,
    project: &str,
    region: &str,
    pool: &str,
    jwks: &str,
    storage: KeyStorage,
    out_dir: &str,
) -> Vec<(String, String)> {
    let bucket = bucket_name(name);
    let issuer = issuer_url(name);
    let mut files = Vec::new();
    if storage == KeyStorage::PublicBucket {
        files.push((
            "02-create-oidc-bucket.sh".into(),
            script(&[
                format!(
                    "gsutil mb -b on -l {} -p {} gs://{bucket}",
                    sh_quote(region),
                    sh_quote(project)
                ),
                format!("gsutil iam ch allUsers:objectViewer gs://{bucket}"),
                format!("gsutil cp \"$(dirname \"$0\")/03-openid-configuration\" gs://{bucket}/.well-known/openid-configuration"),
                format!("gsutil cp \"$(dirname \"$0\")/04-keys.json\" gs://{bucket}/keys.json"),
            ]),
        ));
        files.push(("03-openid-configuration".into(), discovery(&issuer)));
    }
    files.push(("04-keys.json".into(), jwks.to_string()));
    let mut cmd = format!(
        "gcloud iam workload-identity-pools providers create-oidc {} --project={} --location=global --workload-identity-pool={} --display-name={} --description={} --issuer-uri={} --allowed-audiences={AUDIENCE} --attribute-mapping=google.subject=assertion.sub",
        sh_quote(name),
        sh_quote(project),
        sh_quote(pool),
        sh_quote(name),
        sh_quote(CREATED_BY),
        sh_quote(&issuer)
    );
    if storage == KeyStorage::PoolJwkFile {
        cmd.push_str(&format!(
            " --jwk-json-path={}",
            sh_quote(&format!("{out_dir}/04-keys.json"))
        ));
    }
    files.push((
        "05-create-workload-identity-provider.sh".into(),
        script(&[cmd]),
    ));
    files
}

/// Files of `create-service-accounts --dry-run`: per request (numbered `i` from 0, in reading
/// order), scripts 06 (service account), 07 (custom role, only when the request has permissions), 08
/// (bindings) and 09 (credentials config), and the placeholder Secret manifest naming script 09. The
/// account ids get `suffixes[i]`.
pub fn service_account_files(
    plans: &[ServiceAccountPlan],
    name: &str,
    project: &str,
    pool: &str,
    provider: &str,
    suffixes: &[String],
    out_dir: &str,
) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for (i, (p, suffix)) in plans.iter().zip(suffixes).enumerate() {
        let id = account_id(name, &p.request, suffix);
        let email = service_account_email(&id, project);
        let d = &p.display_name;
        files.push((
            format!("06-{i}-create-{d}-sa.sh"),
            script(&[format!(
                "gcloud iam service-accounts create {} --project={} --display-name={} --description={}",
                sh_quote(&id),
                sh_quote(project),
                sh_quote(d),
                sh_quote(&p.description)
            )]),
        ));
        if let Some(r) = &p.custom_role {
            files.push((
                format!("07-{i}-create-{d}-role.sh"),
                script(&[format!(
                    "gcloud iam roles create {} --project={} --title={} --description={} --stage=GA --permissions={}",
                    sh_quote(&r.id),
                    sh_quote(project),
                    sh_quote(&r.title),
                    sh_quote(&r.description),
                    sh_quote(&r.permissions.join(","))
                )]),
            ));
        }
        let mut bind = vec![
            format!("PROJECT={}", sh_quote(project)),
            PROJECT_NUMBER_LINE.to_string(),
        ];
        for role in p.project_roles(project) {
            bind.push(format!(
                "gcloud projects add-iam-policy-binding \"$PROJECT\" --member={} --role={} --condition=None",
                sh_quote(&service_account_member(&email)),
                sh_quote(&role)
            ));
        }
        for (ns, sa) in &p.kubernetes_service_accounts {
            let member = principal("${PROJECT_NUMBER}", pool, ns, sa);
            bind.push(format!(
                "gcloud iam service-accounts add-iam-policy-binding {} --project=\"$PROJECT\" --member=\"{member}\" --role={WORKLOAD_IDENTITY_USER}",
                sh_quote(&email)
            ));
        }
        files.push((
            format!("08-{i}-add-iam-policy-binding-for-{d}-sa.sh"),
            script(&bind),
        ));
        let config_path =
            format!("{out_dir}/credentials_configurations/{d}_credentials_config.json");
        let gen_name = format!("09-{i}-generate-credentials-config-for-{d}-sa.sh");
        files.push((
            gen_name.clone(),
            script(&[
                format!("PROJECT={}", sh_quote(project)),
                PROJECT_NUMBER_LINE.to_string(),
                format!("mkdir -p {}", sh_quote(&format!("{out_dir}/credentials_configurations"))),
                format!(
                    "gcloud iam workload-identity-pools create-cred-config \"projects/${{PROJECT_NUMBER}}/locations/global/workloadIdentityPools/{pool}/providers/{provider}\" --service-account={} --output-file={} --credential-source-file={} --credential-source-type=text",
                    sh_quote(&email),
                    sh_quote(&config_path),
                    sh_quote(&p.token_path)
                ),
            ]),
        ));
        files.push((
            p.secret_path.clone(),
            super::dry_run_secret_manifest(
                &p.secret_namespace,
                &p.secret_name,
                &format!("{out_dir}/{gen_name}"),
            ),
        ));
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
    }

    #[test]
    fn the_provider_script_embeds_the_jwks_path_only_for_pool_jwk_file() {
        let f = provider_files(
            "c1-x",
            "proj",
            "us",
            "c1-x",
            "{}",
            KeyStorage::PoolJwkFile,
            "/out",
        );
        let names: Vec<&str> = f.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["04-keys.json", "05-create-workload-identity-provider.sh"]
        );
        assert!(f[1].1.contains("--jwk-json-path='/out/04-keys.json'"));
        let f = provider_files(
            "c1-x",
            "proj",
            "us",
            "c1-x",
            "{}",
            KeyStorage::PublicBucket,
            "/out",
        );
        assert_eq!(f.len(), 4);
        assert!(f[0]
            .1
            .contains("gsutil mb -b on -l 'us' -p 'proj' gs://c1-x-oidc"));
        assert!(!f[3].1.contains("jwk-json-path"));
    }
}
