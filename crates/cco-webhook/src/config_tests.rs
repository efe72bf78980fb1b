//! Flag parsing and profile resolution, including every reference Deployment's argument list.

use super::*;
use rstest::rstest;
use serde_json::Value;

fn parse(argv: &[&str]) -> Args {
    Args::try_parse_go(argv.iter().map(|s| s.to_string()))
        .expect("arguments parse")
        .0
}

fn resolve(argv: &[&str], env: &[(&str, &str)]) -> Settings {
    let args = parse(argv);
    let profile = args
        .profile
        .unwrap_or_else(|| Profile::from_program(argv[0]));
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::resolve(&args, profile, &|k| {
        env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    })
    .expect("settings resolve")
}

fn reference_deployments() -> Vec<Value> {
    let data: Value =
        serde_json::from_str(include_str!("../tests/data/reference-deployments.json"))
            .expect("json");
    data["deployments"].as_array().expect("list").clone()
}

#[test]
fn every_reference_argument_list_parses_under_its_profile() {
    for d in reference_deployments() {
        let argv: Vec<String> = d["command"]
            .as_array()
            .expect("command")
            .iter()
            .map(|a| a.as_str().expect("string").to_string())
            .collect();
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = d["env"]
            .as_object()
            .expect("env")
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().expect("string")))
            .collect();
        let s = resolve(&argv, &env);
        let name = d["name"].as_str().expect("name");
        assert_eq!(
            format!("{:?}", s.profile).to_lowercase(),
            d["profile"].as_str().expect("profile"),
            "{name}"
        );
        assert_eq!(
            u64::from(s.server.webhook_addr.port()),
            d["webhook_port"].as_u64().expect("port"),
            "{name}"
        );
        let dir = PathBuf::from(d["cert_dir"].as_str().expect("dir"));
        assert_eq!(
            s.server.certs,
            CertSource::Files {
                cert: dir.join("tls.crt"),
                key: dir.join("tls.key")
            },
            "{name}"
        );
        if let Some(p) = d["health_port"].as_u64() {
            assert_eq!(s.server.health_addr.map(|a| u64::from(a.port())), Some(p));
        }
        if let Some(p) = d["metrics_port"].as_u64() {
            assert_eq!(s.server.metrics_addr.map(|a| u64::from(a.port())), Some(p));
        }
    }
}

#[test]
fn openshift_aws_arguments_configure_aws_only() {
    let s = resolve(
        &[
            "/usr/bin/aws-pod-identity-webhook",
            "--aws-default-region=us-east-1",
            "--in-cluster=false",
            "--namespace=openshift-cloud-credential-operator",
            "--port=9443",
            "--logtostderr",
            "--tls-min-version=VersionTLS12",
            "--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_AES_128_GCM_SHA256",
        ],
        &[],
    );
    assert_eq!(s.webhook.clouds, BTreeSet::from([Cloud::Aws]));
    assert_eq!(s.webhook.aws.region.as_deref(), Some("us-east-1"));
    assert_eq!(s.server.tls_min_version, TlsVersion::Tls12);
    assert_eq!(
        s.server.tls12_cipher_suites,
        Some(vec![
            rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        ])
    );
    assert!(s.log.file.is_none());
}

#[test]
fn the_aws_profile_defaults_to_in_cluster_certificates() {
    let s = resolve(
        &[
            "webhook",
            "--namespace",
            "eks",
            "-tls-secret",
            "my-secret",
            "--csr-signer-name=example.com/serving",
        ],
        &[],
    );
    assert_eq!(
        s.server.certs,
        CertSource::Csr(crate::csr::CsrConfig {
            namespace: "eks".into(),
            service_name: "pod-identity-webhook".into(),
            secret_name: "my-secret".into(),
            signer_name: "example.com/serving".into(),
        })
    );
}

#[test]
fn azure_reads_its_tenant_and_cloud_from_the_environment() {
    let s = resolve(
        &[
            "/usr/bin/azure-workload-identity-webhook",
            "--log-level=info",
        ],
        &[
            ("AZURE_TENANT_ID", "t-1"),
            ("AZURE_ENVIRONMENT", "AzureUSGovernmentCloud"),
        ],
    );
    assert_eq!(s.webhook.clouds, BTreeSet::from([Cloud::Azure]));
    assert_eq!(s.webhook.azure.tenant_id.as_deref(), Some("t-1"));
    assert_eq!(
        s.webhook.azure.authority_host,
        "https://login.microsoftonline.us/"
    );
    assert_eq!(s.server.tls_min_version, TlsVersion::Tls13);
    assert!(s.log.json);
    assert_eq!(s.log.level, "info");
}

#[test]
fn azure_rotates_its_certificate_unless_disabled() {
    let s = resolve(
        &["/usr/bin/azure-workload-identity-webhook"],
        &[("AZURE_TENANT_ID", "t-1"), ("POD_NAMESPACE", "azwi")],
    );
    assert_eq!(
        s.server.certs,
        CertSource::Rotate(crate::certrotate::RotatorConfig {
            namespace: "azwi".into(),
            secret_name: "azure-wi-webhook-server-cert".into(),
            webhook_config_name: "azure-wi-webhook-mutating-webhook-configuration".into(),
            dns_name: "azure-wi-webhook-webhook-service.azwi.svc".into(),
        })
    );
    let s = resolve(
        &["/usr/bin/azure-workload-identity-webhook"],
        &[("AZURE_TENANT_ID", "t-1")],
    );
    assert!(
        matches!(&s.server.certs, CertSource::Rotate(r) if r.namespace == "azure-workload-identity-system")
    );
    let s = resolve(
        &[
            "/usr/bin/azure-workload-identity-webhook",
            "--disable-cert-rotation=true",
        ],
        &[("AZURE_TENANT_ID", "t-1")],
    );
    assert!(matches!(s.server.certs, CertSource::Files { .. }));
    assert!(s.notices.is_empty(), "{:?}", s.notices);
}

#[test]
fn azure_without_a_tenant_refuses_to_start() {
    let args = parse(&["azure-workload-identity-webhook"]);
    let err = Settings::resolve(&args, Profile::Azure, &|_| None).expect_err("needs a tenant");
    assert!(err.0.contains("AZURE_TENANT_ID"), "{err}");
}

#[test]
fn gcp_reads_its_flags_with_their_gcp_meaning() {
    let s = resolve(
        &[
            "gcp-workload-identity-federation-webhook",
            "--token-audience=openshift",
            "--token-expiration=2h",
            "--annotation-prefix=example.com",
            "--token-default-mode=0400",
            "--gcp-default-region=europe-west1",
            "--zap-log-level=info",
            "--zap-encoder=json",
            "--setup-container-resources",
            r#"{"requests":{"cpu":"100m"}}"#,
        ],
        &[("TMPDIR", "/var/tmp")],
    );
    assert_eq!(s.webhook.clouds, BTreeSet::from([Cloud::Gcp]));
    assert_eq!(s.webhook.gcp.audience, "openshift");
    assert_eq!(s.webhook.gcp.token_expiration, 7200);
    assert_eq!(s.webhook.gcp.annotation_prefix, "example.com");
    assert_eq!(s.webhook.gcp.default_mode, Some(0o400));
    assert_eq!(s.webhook.aws.annotation_prefix, "eks.amazonaws.com");
    assert!(s.log.json);
    assert_eq!(
        s.server.certs,
        CertSource::Files {
            cert: "/var/tmp/k8s-webhook-server/serving-certs/tls.crt".into(),
            key: "/var/tmp/k8s-webhook-server/serving-certs/tls.key".into(),
        }
    );
}

#[test]
fn gcp_defaults_match_the_reference() {
    let s = resolve(&["gcp-workload-identity-federation-webhook"], &[]);
    assert_eq!(s.webhook.gcp.audience, "sts.googleapis.com");
    assert_eq!(s.webhook.gcp.token_expiration, 86400);
    assert_eq!(s.webhook.gcp.default_mode, None);
    assert_eq!(s.webhook.gcp.gcloud_image, "google/cloud-sdk:slim");
    assert_eq!(s.log.level, "debug", "zap development mode");
}

#[test]
fn klog_flags_map_onto_logging() {
    let dir = "/var/log/x";
    let s = resolve(
        &[
            "webhook",
            "-v=4",
            "--logtostderr=false",
            "--alsologtostderr",
            "--log_dir",
            dir,
            "--skip_headers",
            "--stderrthreshold=INFO",
            "--in-cluster=false",
        ],
        &[],
    );
    assert_eq!(s.log.level, "debug");
    assert_eq!(
        s.log.file,
        Some(PathBuf::from(dir).join("cco-pod-identity-webhook.log"))
    );
    assert!(s.log.also_stderr);
}

#[test]
fn eks_only_flags_are_accepted() {
    let a = parse(&[
        "webhook",
        "--kube-api=https://127.0.0.1:6443",
        "--resync-period=30s",
        "--watch-config-map",
        "--compose-role-arn=false",
        "--enable-debugging-handlers",
        "--watch-container-credentials-config=/etc/cc.json",
        "--container-credentials-full-uri=http://169.254.170.23/v1/credentials",
        "--service-account-lookup-grace-period=0",
        "--token-mount-path=/var/run/secrets/eks.amazonaws.com/serviceaccount",
        "--sts-regional-endpoint=T",
        "--token-expiration",
        "3600",
    ]);
    assert!(a.watch_config_map);
    assert!(!a.compose_role_arn);
    assert!(a.enable_debugging_handlers);
    assert!(a.sts_regional_endpoint);
    assert_eq!(a.resync_period, Duration::from_secs(30));
    let s = resolve(&["webhook", "--token-expiration", "3600"], &[]);
    assert_eq!(s.webhook.aws.token_expiration, 3600);
}

#[rstest]
#[case::unknown_flag(&["webhook", "--no-such-flag=1"])]
#[case::bad_bool(&["webhook", "--in-cluster=yes"])]
#[case::missing_value(&["webhook", "--namespace"])]
fn bad_arguments_are_refused(#[case] argv: &[&str]) {
    assert!(Args::try_parse_go(argv.iter().map(|s| s.to_string())).is_err());
}

#[test]
fn bad_values_name_the_flag() {
    for (argv, flag) in [
        (
            &["webhook", "--token-expiration=soon"][..],
            "--token-expiration",
        ),
        (
            &["webhook", "--tls-min-version=2.0"][..],
            "--tls-min-version",
        ),
        (
            &["webhook", "--tls-cipher-suites=NOPE"][..],
            "--tls-cipher-suites",
        ),
    ] {
        let args = parse(argv);
        let err = Settings::resolve(&args, Profile::Aws, &|_| None).expect_err("refused");
        assert!(err.0.contains(flag), "{err}");
    }
}

#[test]
fn cco_defaults_are_unchanged() {
    let s = resolve(&["cco-pod-identity-webhook"], &[]);
    assert_eq!(s.profile, Profile::Cco);
    assert_eq!(s.server.webhook_addr.port(), 443);
    assert_eq!(s.server.metrics_addr.map(|a| a.port()), Some(9999));
    assert_eq!(
        s.server.certs,
        CertSource::Files {
            cert: "/etc/webhook/certs/tls.crt".into(),
            key: "/etc/webhook/certs/tls.key".into()
        }
    );
    assert_eq!(s.server.grace_period, Duration::from_millis(100));
    let c = s.webhook;
    assert_eq!(c.clouds.len(), 3);
    assert_eq!(c.aws.annotation_prefix, "eks.amazonaws.com");
    assert_eq!(c.aws.token_audience, "sts.amazonaws.com");
    assert_eq!(c.aws.token_expiration, 86400);
    assert_eq!(c.aws.region, None);
    assert!(!c.aws.sts_regional_endpoints);
    assert_eq!(c.azure.authority_host, "https://login.microsoftonline.com/");
}

#[test]
fn fs_root_rebases_absolute_certificate_paths() {
    let s = resolve(
        &["webhook", "--in-cluster=false", "--tls-cert=/a/tls.crt"],
        &[(FS_ROOT_ENV, "/sandbox")],
    );
    assert_eq!(
        s.server.certs,
        CertSource::Files {
            cert: "/sandbox/a/tls.crt".into(),
            key: "/sandbox/etc/webhook/certs/tls.key".into()
        }
    );
}

#[test]
fn version_flag_in_go_form_is_accepted() {
    let err = Args::try_parse_go(["webhook", "-version"].map(String::from))
        .expect_err("prints the version");
    assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
}

fn is_go_bool(arg: &clap::Arg) -> bool {
    arg.get_num_args()
        .is_some_and(|r| r.min_values() == 0 && r.max_values() == 1)
}

#[test]
fn the_boolean_list_matches_the_clap_model() {
    use clap::CommandFactory as _;
    let cmd = Args::command();
    for name in BOOL_FLAGS.iter().filter(|n| **n != "version") {
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(*name))
            .unwrap_or_else(|| panic!("{name} is not a flag"));
        assert!(is_go_bool(arg), "{name} must be a Go boolean");
    }
    for arg in cmd.get_arguments() {
        if is_go_bool(arg) {
            let long = arg.get_long().unwrap_or_default();
            assert!(BOOL_FLAGS.contains(&long), "{long} missing from BOOL_FLAGS");
        }
    }
}
