//! `ccoctl gcp` and `ccoctl azure` (and so the `cco-gcp` client the operator mints with) honour the
//! proxy and trusted CA bundle as a cluster provides them: `HTTPS_PROXY` through a real HTTP proxy
//! (pproxy, `CONNECT`), `NO_PROXY` to go direct, and the CA of the fakes (served over TLS, in no
//! system store) only in the bundle `SSL_CERT_FILE` names. Each run is `plan`, which reads every
//! API the command uses (token endpoint, IAM / Resource Manager, storage) without changing anything.

use crate::azure_env;

use std::path::Path;
use std::process::{Command, Output};

use cco_testsupport::fake_gcs::FakeGcs;
use cco_testsupport::gcp_fake::{GcpFake, PROJECT_ID};
use cco_testsupport::proxy::HttpProxy;
use cco_testsupport::tls::TestCa;

/// Proxy variables of the host, removed so that only the test's own apply.
const PROXY_VARS: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

fn with_proxy(cmd: &mut Command, proxy: &str, no_proxy: Option<&str>) {
    for k in PROXY_VARS {
        cmd.env_remove(k);
    }
    cmd.env("HTTPS_PROXY", proxy);
    if let Some(n) = no_proxy {
        cmd.env("NO_PROXY", n);
    }
}

/// `plan` ran: exit 0 (nothing to do) or 2 (changes planned), a JSON plan on stdout.
fn planned(o: &Output) {
    assert!(
        matches!(o.status.code(), Some(0 | 2)) && o.stdout.starts_with(b"{"),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `host:port` of an `https://host:port` endpoint.
fn authority(endpoint: &str) -> String {
    endpoint.trim_start_matches("https://").to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

#[test]
fn gcp_calls_go_through_the_proxy_and_trust_the_bundle() {
    let gcs = FakeGcs::start().expect("fake-gcs-server");
    let ca = TestCa::generate().expect("ca");
    let fake = GcpFake::start_tls(&gcs.endpoint, &ca).expect("gcp fake");
    let tmp = tempfile::tempdir().expect("tmp");
    let bundle = ca.write(tmp.path()).expect("bundle");
    let key = tmp.path().join("key.json");
    std::fs::write(&key, fake.service_account_key_json()).expect("key");
    let proxy = HttpProxy::start().expect("pproxy");
    let corpus = cco_testsupport::corpus_dir().join("credreqs/gcp");
    let out = tmp.path().join("out");
    let run = |no_proxy: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccoctl"));
        cmd.args([
            "gcp",
            "plan",
            "--name",
            "ccoproxy",
            "--project",
            PROJECT_ID,
            "--credentials-requests-dir",
            s(&corpus),
            "--output-dir",
            s(&out),
            "--output",
            "json",
        ])
        .env("HOME", tmp.path())
        .env_remove("GOOGLE_OAUTH_ACCESS_TOKEN")
        .env_remove("GOOGLE_CREDENTIALS")
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
        .env("GCP_IAM_ENDPOINT", fake.endpoint())
        .env("GCP_RESOURCEMANAGER_ENDPOINT", fake.endpoint())
        .env("STORAGE_EMULATOR_HOST", fake.endpoint())
        .env("SSL_CERT_FILE", &bundle);
        with_proxy(&mut cmd, &proxy.url, no_proxy);
        cmd.output().expect("ccoctl runs")
    };
    let target = authority(fake.endpoint());

    planned(&run(None));
    let carried = proxy.connections().expect("proxy log");
    assert!(
        carried.contains(&target),
        "the proxy carried {carried:?}, not {target}"
    );
    assert!(
        !fake.calls().is_empty(),
        "no authenticated call reached the fake"
    );

    // NO_PROXY names the host: straight to it, the proxy carries nothing more.
    let before = carried.len();
    planned(&run(Some("127.0.0.1")));
    assert_eq!(proxy.connections().expect("proxy log").len(), before);
}

#[test]
fn azure_calls_go_through_the_proxy_and_trust_the_bundle() {
    let env = azure_env::start();
    let proxy = HttpProxy::start().expect("pproxy");
    let corpus = azure_env::corpus();
    let out = env.out();
    let run = |no_proxy: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccoctl"));
        cmd.args(azure_env::azure_cmd(
            "ccoproxy",
            "plan",
            &[
                "--credentials-requests-dir",
                s(&corpus),
                "--output-dir",
                s(&out),
                "--output",
                "json",
            ],
        ))
        .env("HOME", env.tmp.path())
        .env_remove("AZURE_ACCESS_TOKEN");
        // The fake's endpoints, credentials and CA bundle (`SSL_CERT_FILE`).
        for (k, v) in env.fake.env() {
            cmd.env(k, v);
        }
        with_proxy(&mut cmd, &proxy.url, no_proxy);
        cmd.output().expect("ccoctl runs")
    };
    let target = authority(&env.fake.env()[0].1);

    planned(&run(None));
    let carried = proxy.connections().expect("proxy log");
    assert!(
        carried.contains(&target),
        "the proxy carried {carried:?}, not {target}"
    );

    let before = carried.len();
    planned(&run(Some("127.0.0.1")));
    assert_eq!(proxy.connections().expect("proxy log").len(), before);
}
