//! The installer's bootstrap flow with our binary in the reference's place: `bootkube.sh` runs
//! `cloud-credential-operator render --dest-dir … --manifests-dir … --cloud-credential-operator-image
//! …`, applies `<dest>/manifests/*` to the bootstrap control plane and starts the static pod of
//! `<dest>/bootstrap-manifests/`. Here: render from an install-config (Mint, with a proxy), apply
//! what was rendered to a real API server, then run the binary with exactly the static pod's
//! arguments (`operator --log-level=debug --kubeconfig=…`, only the kubeconfig path pointing at the
//! test server's) and no serving certificate: it must start, log at debug and publish the
//! ClusterOperator.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::process::{Command, Stdio};
use std::time::Duration;

use cco_testsupport::kube_env::{parse_manifests, KubeEnv, KubeEnvOptions};
use common::wait_until;
use kube::api::Api;

const IMAGE: &str = "quay.io/example/cloud-credential-operator:4.20";

fn install_config() -> String {
    "apiVersion: v1
kind: ConfigMap
metadata:
  name: cluster-config-v1
  namespace: kube-system
data:
  install-config: |
    baseDomain: example.com
    credentialsMode: Mint
    proxy:
      httpsProxy: http://proxy.example.com:3128
      noProxy: .cluster.local
"
    .to_string()
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_then_the_static_pods_command_line_runs_the_operator() -> anyhow::Result<()> {
    let bin = env!("CARGO_BIN_EXE_cloud-credential-operator");
    let tmp = tempfile::tempdir()?;
    let manifests = tmp.path().join("manifests");
    std::fs::create_dir(&manifests)?;
    std::fs::write(manifests.join("cluster-config.yaml"), install_config())?;
    let dest = tmp.path().join("cco-bootstrap");

    let out = Command::new(bin)
        .args([
            "render",
            &format!("--dest-dir={}", dest.display()),
            &format!("--manifests-dir={}", manifests.display()),
            &format!("--cloud-credential-operator-image={IMAGE}"),
        ])
        .output()?;
    assert!(
        out.status.success(),
        "render failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rendered: Vec<_> = std::fs::read_dir(dest.join("manifests"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    rendered.sort();
    assert_eq!(
        rendered,
        [
            "cco-cloudcredential_v1_credentialsrequest_crd.yaml",
            "cco-cloudcredential_v1_operator_config_custresdef.yaml",
            "cco-namespace.yaml",
            "cco-operator-config.yaml",
        ]
    );
    let pod: serde_json::Value = serde_yaml::from_str(&std::fs::read_to_string(
        dest.join("bootstrap-manifests/cloud-credential-operator-pod.yaml"),
    )?)?;
    let container = &pod["spec"]["containers"][0];
    assert_eq!(container["image"], IMAGE);
    assert_eq!(
        container["env"],
        serde_json::json!([{"name": "HTTPS_PROXY", "value": "http://proxy.example.com:3128"},
                           {"name": "NO_PROXY", "value": ".cluster.local"}])
    );

    // What bootkube applies: every rendered manifest, accepted by a real API server.
    let kube = KubeEnv::start(KubeEnvOptions::default()).await?;
    kube.install_corpus_crds().await?;
    let admin = kube.client().await?;
    let mut objects = Vec::new();
    for f in &rendered {
        objects.extend(parse_manifests(&std::fs::read_to_string(
            dest.join("manifests").join(f),
        )?)?);
    }
    cco_testsupport::kube_env::apply_objects(&admin, objects).await?;
    let gvk = kube::core::GroupVersionKind::gvk("operator.openshift.io", "v1", "CloudCredential");
    let (ar, _) = kube::discovery::pinned_kind(&admin, &gvk).await?;
    let cc = Api::<kube::api::DynamicObject>::all_with(admin.clone(), &ar)
        .get("cluster")
        .await?;
    assert_eq!(cc.data["spec"]["credentialsMode"], "Mint");

    // The static pod's command line, its kubeconfig path swapped for the test server's.
    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        args,
        [
            "operator",
            "--log-level=debug",
            "--kubeconfig=/etc/kubernetes/secrets/kubeconfig"
        ]
    );
    let args: Vec<String> = args
        .into_iter()
        .map(|a| {
            if a.starts_with("--kubeconfig=") {
                format!("--kubeconfig={}", kube.kubeconfig_path().display())
            } else {
                a
            }
        })
        .collect();
    let log = tmp.path().join("operator.log");
    let _op = Killed(
        Command::new(bin)
            .args(&args)
            .env_remove("KUBECONFIG")
            .env_remove("RUST_LOG")
            // The pod's port 8443 may be taken on a test machine; the address is not what is tested.
            .env("CCO_METRICS_ADDR", "127.0.0.1:0")
            .env("POD_NAME", "bootstrap-test")
            .env("HOME", tmp.path())
            // The reference logs to stderr; so do we.
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?,
    );
    let cos: Api<cco_operator::openshift::ClusterOperator> = Api::all(admin.clone());
    wait_until(Duration::from_secs(60), || async {
        Ok(cos
            .get_opt("cloud-credential")
            .await?
            .and_then(|c| c.status)
            .is_some_and(|s| !s.conditions.is_empty()))
    })
    .await?;
    let text = std::fs::read_to_string(&log)?;
    assert!(
        text.contains("\"level\":\"DEBUG\""),
        "no debug logs with --log-level=debug:\n{text}"
    );
    assert!(
        text.contains("self-signed"),
        "no fallback to a self-signed metrics certificate:\n{text}"
    );
    Ok(())
}
