//! No input makes any cloud's command write outside `--output-dir`: names taken from a
//! CredentialsRequest (`metadata.name`, `spec.secretRef`) that Kubernetes would refuse are refused
//! before anything is written, naming the file, the document and the field. Dry runs, so no cloud is
//! needed (the endpoints point at a closed port: any call would fail the command).

use std::path::Path;
use std::process::{Command, Output};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ccoctl"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("GCP_IAM_ENDPOINT", "http://127.0.0.1:9")
        .env("GCP_RESOURCEMANAGER_ENDPOINT", "http://127.0.0.1:9")
        .env("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
        .output()
        .expect("ccoctl runs")
}

const REQ: &str = "apiVersion: cloudcredential.openshift.io/v1\nkind: CredentialsRequest\nmetadata: {name: NAME, namespace: x}\nspec:\n  secretRef: {name: SECRET, namespace: NS}\n  serviceAccountNames: [sa]\n  providerSpec: PROVIDER\n";

fn request(provider: &str, name: &str, secret: &str, ns: &str) -> String {
    REQ.replace("PROVIDER", provider)
        .replace("NAME", name)
        .replace("SECRET", secret)
        .replace("NS", ns)
}

/// Every file and directory below `root`.
fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let p = e.expect("entry").path();
            out.push(p.strip_prefix(root).expect("inside").display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn names_from_requests_never_leave_the_output_dir() {
    let aws = "{kind: AWSProviderSpec, statementEntries: [{effect: Allow, action: ['s3:*'], resource: '*'}]}";
    let gcp = "{kind: GCPProviderSpec, predefinedRoles: [roles/viewer]}";
    let cases = [
        (aws, "'../../../escape'", "s", "ns", "metadata.name"),
        (aws, "r", "'../../../escape'", "ns", "spec.secretRef.name"),
        (aws, "r", "s", "'../..'", "spec.secretRef.namespace"),
        (gcp, "'../../../escape'", "s", "ns", "metadata.name"),
        (gcp, "'a/b'", "s", "ns", "metadata.name"),
        (gcp, "r", "'../../../escape'", "ns", "spec.secretRef.name"),
    ];
    for (provider, name, secret, ns, field) in cases {
        let tmp = tempfile::tempdir().expect("tmp");
        let work = tmp.path().join("a/b/c");
        let reqs = work.join("reqs");
        std::fs::create_dir_all(&reqs).expect("mkdir");
        std::fs::write(reqs.join("bad.yaml"), request(provider, name, secret, ns)).expect("write");
        let out = work.join("out");
        let before = tree(tmp.path());
        let res = if provider == aws {
            run(&[
                "aws",
                "create-all",
                "--name",
                "n",
                "--region",
                "us-east-1",
                "--credentials-requests-dir",
                s(&reqs),
                "--output-dir",
                s(&out),
                "--dry-run",
            ])
        } else {
            run(&[
                "gcp",
                "create-all",
                "--name",
                "name",
                "--project",
                "project-1",
                "--credentials-requests-dir",
                s(&reqs),
                "--output-dir",
                s(&out),
                "--dry-run",
            ])
        };
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert!(!res.status.success(), "{name} {secret} {ns}: accepted");
        assert!(
            stderr.contains("bad.yaml (document 0)") && stderr.contains(field),
            "{stderr}"
        );
        assert_eq!(tree(tmp.path()), before, "nothing was written: {stderr}");
    }
}
