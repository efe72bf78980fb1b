//! Unit tests of [`super::plan`]: the reference render command's cases (default, Manual, the
//! deprecated ConfigMap, conflicts, invalid modes, capabilities, proxy) and the static pod's bytes.

use super::*;

fn install_config(body: &str) -> String {
    let indented: String = body.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cluster-config-v1\n  namespace: kube-system\ndata:\n  install-config: |\n    baseDomain: test.openshift.io\n{indented}"
    )
}

const DISABLING_CONFIG_MAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cloud-credential-operator-config\n  namespace: openshift-cloud-credential-operator\ndata:\n  disabled: \"true\"\n";

fn manifests(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tmp");
    for (name, body) in files {
        std::fs::write(d.path().join(name), body).expect("write");
    }
    d
}

fn file<'a>(p: &'a RenderPlan, rel: &str) -> Option<&'a str> {
    p.files
        .iter()
        .find(|(r, _)| r == Path::new(rel))
        .map(|(_, d)| std::str::from_utf8(d).expect("utf8"))
}

const POD: &str = "bootstrap-manifests/cloud-credential-operator-pod.yaml";
const CONFIG: &str = "manifests/cco-operator-config.yaml";

fn mode_of(p: &RenderPlan) -> String {
    let v: serde_yaml::Value =
        serde_yaml::from_str(file(p, CONFIG).expect("config")).expect("yaml");
    v["spec"]["credentialsMode"]
        .as_str()
        .expect("mode")
        .to_string()
}

#[test]
fn the_reference_cases() {
    // (install-config mode, deprecated ConfigMap disables, expected mode or error, static pod)
    let cases: [(&str, bool, Result<&str, &str>, bool); 6] = [
        ("", false, Ok(""), true),
        ("Manual", false, Ok("Manual"), false),
        ("", true, Ok("Manual"), false),
        ("Mint", false, Ok("Mint"), true),
        (
            "Mint",
            true,
            Err("config map asking for CCO to be disabled, and install-config asking for \"Mint\" mode"),
            false,
        ),
        ("Manual", true, Ok("Manual"), false),
    ];
    for (mode, disabled, want, pod) in cases {
        let ic = install_config(&format!("credentialsMode: {mode}"));
        let mut files = vec![("install-config.yaml", ic.as_str())];
        if disabled {
            files.push(("cm.yaml", DISABLING_CONFIG_MAP));
        }
        let dir = manifests(&files);
        match (plan(Some(dir.path()), "testCCOImage"), want) {
            (Ok(p), Ok(m)) => {
                assert_eq!(mode_of(&p), m, "{mode} {disabled}");
                assert_eq!(file(&p, POD).is_some(), pod, "{mode} {disabled}");
                for f in [
                    "manifests/cco-cloudcredential_v1_operator_config_custresdef.yaml",
                    "manifests/cco-cloudcredential_v1_credentialsrequest_crd.yaml",
                    "manifests/cco-namespace.yaml",
                ] {
                    assert!(file(&p, f).is_some(), "{f}");
                }
            }
            (Err(e), Err(m)) => assert_eq!(e.to_string(), m),
            (got, want) => panic!("{mode} {disabled}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn the_operator_config_is_the_reference_template() {
    let dir = manifests(&[("ic.yaml", &install_config("credentialsMode: Passthrough"))]);
    let p = plan(Some(dir.path()), "img").expect("plan");
    assert_eq!(
        file(&p, CONFIG),
        Some("apiVersion: operator.openshift.io/v1\nkind: CloudCredential\nmetadata:\n  name: cluster\nspec:\n  credentialsMode: \"Passthrough\"")
    );
}

#[test]
fn the_static_pod_is_what_the_reference_writes() {
    let dir = manifests(&[(
        "ic.yaml",
        &install_config(
            "proxy:\n  httpProxy: http://proxy.example.com:3128\n  httpsProxy: http://proxy.example.com:3129\n  noProxy: .cluster.local,10.0.0.0/16",
        ),
    )]);
    let p = plan(Some(dir.path()), "quay.io/openshift/cco:4.20").expect("plan");
    assert_eq!(
        file(&p, POD),
        Some(
            "apiVersion: v1
kind: Pod
metadata:
  name: cloud-credential-operator
  namespace: openshift-cloud-credential-operator
spec:
  containers:
  - args:
    - operator
    - --log-level=debug
    - --kubeconfig=/etc/kubernetes/secrets/kubeconfig
    command:
    - /usr/bin/cloud-credential-operator
    env:
    - name: HTTP_PROXY
      value: http://proxy.example.com:3128
    - name: HTTPS_PROXY
      value: http://proxy.example.com:3129
    - name: NO_PROXY
      value: .cluster.local,10.0.0.0/16
    image: quay.io/openshift/cco:4.20
    imagePullPolicy: IfNotPresent
    name: cloud-credential-operator
    resources: {}
    securityContext:
      readOnlyRootFilesystem: true
    volumeMounts:
    - mountPath: /etc/pki/ca-trust/extracted/pem
      name: cco-trusted-ca
      readOnly: true
    - mountPath: /etc/kubernetes/secrets
      name: secrets
      readOnly: true
  hostNetwork: true
  volumes:
  - hostPath:
      path: /etc/pki/ca-trust/extracted/pem
    name: cco-trusted-ca
  - hostPath:
      path: /etc/kubernetes/bootstrap-secrets
    name: secrets
status: {}
"
        )
    );
}

#[test]
fn without_manifests_the_default_mode_is_rendered() {
    let p = plan(None, "img").expect("plan");
    assert_eq!(mode_of(&p), "");
    assert!(file(&p, POD).is_some());
}

#[test]
fn bad_install_configs_name_the_file_and_field() {
    let dir = manifests(&[("ic.yaml", &install_config("credentialsMode: Sometimes"))]);
    let e = plan(Some(dir.path()), "img").expect_err("invalid mode");
    let msg = e.to_string();
    assert!(
        msg.contains("ic.yaml") && msg.contains("invalid mode defined: Sometimes"),
        "{msg}"
    );

    let dir = manifests(&[(
        "other.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n",
    )]);
    let e = plan(Some(dir.path()), "img").expect_err("no install-config");
    assert!(
        e.to_string().contains("kube-system/cluster-config-v1"),
        "{e}"
    );
}

#[test]
fn without_the_cloud_credential_capability_nothing_is_rendered() {
    for (caps, enabled) in [
        ("capabilities:\n  baselineCapabilitySet: None", false),
        ("capabilities:\n  baselineCapabilitySet: v4.14", false),
        ("capabilities:\n  baselineCapabilitySet: v4.15", true),
        (
            "capabilities:\n  baselineCapabilitySet: None\n  additionalEnabledCapabilities:\n  - CloudCredential",
            true,
        ),
        ("capabilities: {}", true),
    ] {
        let dir = manifests(&[("ic.yaml", &install_config(caps))]);
        let p = plan(Some(dir.path()), "img").expect("plan");
        assert_eq!(!p.files.is_empty(), enabled, "{caps}");
    }
}

#[test]
fn write_puts_the_plan_under_the_destination_and_a_rerun_completes() {
    use std::os::unix::fs::PermissionsExt;
    let dest = tempfile::tempdir().expect("tmp");
    let p = plan(None, "img").expect("plan");
    write(&p, dest.path()).expect("first");
    write(&p, dest.path()).expect("again");
    let pod = dest.path().join(POD);
    assert_eq!(
        std::fs::metadata(&pod).expect("pod").permissions().mode() & 0o777,
        0o644
    );
    assert_eq!(
        std::fs::metadata(dest.path().join("bootstrap-manifests"))
            .expect("dir")
            .permissions()
            .mode()
            & 0o777,
        0o775
    );
}
