//! [`Settings::resolve`]: from the parsed flags (and the environment) to the plain configuration,
//! with each reference profile's defaults, and the checks that name the flag at fault.

use super::*;

pub(super) fn parse_tls_version(
    s: &str,
    notices: &mut Vec<String>,
) -> Result<TlsVersion, ConfigError> {
    match s.trim() {
        "1.2" | "VersionTLS12" => Ok(TlsVersion::Tls12),
        "1.3" | "VersionTLS13" => Ok(TlsVersion::Tls13),
        "1.0" | "1.1" | "VersionTLS10" | "VersionTLS11" => {
            notices.push(format!(
                "--tls-min-version={s}: TLS 1.0 and 1.1 are not offered; serving TLS 1.2 and 1.3"
            ));
            Ok(TlsVersion::Tls12)
        }
        other => Err(ConfigError(format!(
            "--tls-min-version={other:?} is not a TLS version; use 1.2, 1.3, VersionTLS12 or VersionTLS13"
        ))),
    }
}

/// The Azure authority host of an `AZURE_ENVIRONMENT` name (go-autorest's environments).
pub fn azure_authority_host(environment: &str) -> Result<&'static str, ConfigError> {
    match environment.trim().to_ascii_uppercase().as_str() {
        "" | "AZUREPUBLICCLOUD" | "AZURECLOUD" => Ok("https://login.microsoftonline.com/"),
        "AZURECHINACLOUD" => Ok("https://login.chinacloudapi.cn/"),
        "AZUREUSGOVERNMENTCLOUD" | "AZUREUSGOVERNMENT" => Ok("https://login.microsoftonline.us/"),
        "AZUREGERMANCLOUD" => Ok("https://login.microsoftonline.de/"),
        _ => Err(ConfigError(format!(
            "AZURE_ENVIRONMENT={environment:?} is not a known Azure cloud; use AzurePublicCloud, \
             AzureChinaCloud or AzureUSGovernmentCloud"
        ))),
    }
}

/// Registry and version of azure-workload-identity's proxy images (v1.6 release defaults).
pub const AZWI_REGISTRY: &str = "mcr.microsoft.com/oss/azure/workload-identity";
/// See [`AZWI_REGISTRY`].
pub const AZWI_VERSION: &str = "v1.6.0";

pub(super) fn azure_custom_endpoint(a: &Args) -> Result<Option<CustomTokenEndpoint>, ConfigError> {
    let suffix = a.custom_token_endpoint_annotation_suffix.as_str();
    let audience = a.custom_token_endpoint_audience.as_str();
    match (suffix.is_empty(), audience.is_empty()) {
        (true, true) => Ok(None),
        (true, false) => Err(ConfigError(
            "--custom-token-endpoint-annotation-suffix cannot be empty when \
             --custom-token-endpoint-audience is set"
                .into(),
        )),
        (false, true) => Err(ConfigError(
            "--custom-token-endpoint-audience cannot be empty when \
             --custom-token-endpoint-annotation-suffix is set"
                .into(),
        )),
        (false, false) => {
            if audience.eq_ignore_ascii_case(crate::azure::AUDIENCE) {
                return Err(ConfigError(format!(
                    "--custom-token-endpoint-audience cannot be the default audience {}",
                    crate::azure::AUDIENCE
                )));
            }
            let annotation = format!("azure.workload.identity/use-{suffix}");
            let name = annotation.rsplit('/').next().unwrap_or("");
            let valid = !name.is_empty()
                && name.len() <= 63
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                && name.ends_with(|c: char| c.is_ascii_alphanumeric());
            if !valid {
                return Err(ConfigError(format!(
                    "--custom-token-endpoint-annotation-suffix: annotation key {annotation:?} is not valid"
                )));
            }
            Ok(Some(CustomTokenEndpoint {
                annotation,
                audience: audience.to_string(),
            }))
        }
    }
}

pub(super) fn azure_custom_env(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<CustomTokenEnv, ConfigError> {
    let get = |k: &str| env(k).unwrap_or_default();
    let c = CustomTokenEnv {
        token_proxy: get("AZURE_KUBERNETES_TOKEN_PROXY"),
        sni_name: get("AZURE_KUBERNETES_SNI_NAME"),
        ca_data: get("AZURE_KUBERNETES_CA_DATA"),
        ca_configmap_name: get("AZURE_KUBERNETES_CA_CONFIGMAP_NAME"),
        ca_ctb_signer_name: get("AZURE_KUBERNETES_CA_CTB_SIGNER_NAME"),
        ca_ctb_label_selector: match get("AZURE_KUBERNETES_CA_CTB_LABEL_SELECTOR").trim() {
            "" => None,
            s => Some(serde_json::from_str(s).map_err(|e| {
                ConfigError(format!(
                    "AZURE_KUBERNETES_CA_CTB_LABEL_SELECTOR is not a JSON label selector: {e}"
                ))
            })?),
        },
    };
    let set = [&c.ca_data, &c.ca_configmap_name, &c.ca_ctb_signer_name]
        .iter()
        .filter(|v| !v.is_empty())
        .count();
    if set > 1 {
        return Err(ConfigError(
            "only one of AZURE_KUBERNETES_CA_DATA, AZURE_KUBERNETES_CA_CONFIGMAP_NAME or \
             AZURE_KUBERNETES_CA_CTB_SIGNER_NAME can be set"
                .into(),
        ));
    }
    if c.ca_ctb_label_selector.is_some() && c.ca_ctb_signer_name.is_empty() {
        return Err(ConfigError(
            "AZURE_KUBERNETES_CA_CTB_SIGNER_NAME needs to be set when \
             AZURE_KUBERNETES_CA_CTB_LABEL_SELECTOR is set"
                .into(),
        ));
    }
    Ok(c)
}

/// Prefix an absolute path with `root` (see [`FS_ROOT_ENV`]).
pub fn rebase(root: Option<&Path>, path: PathBuf) -> PathBuf {
    match root {
        Some(root) if path.is_absolute() => {
            root.join(path.strip_prefix("/").unwrap_or(path.as_path()))
        }
        _ => path,
    }
}

pub(super) fn listen(flag: &str, value: &str) -> Result<Option<SocketAddr>, ConfigError> {
    flags::parse_go_listen_addr(value).map_err(|e| ConfigError(format!("--{flag}: {e}")))
}

impl Settings {
    /// Resolve `args` under `profile`; `env` reads environment variables (`TMPDIR`,
    /// `CCO_WEBHOOK_FS_ROOT`).
    pub fn resolve(
        a: &Args,
        profile: Profile,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut notices = Vec::new();
        let fs_root = env(FS_ROOT_ENV)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        let fs_root = fs_root.as_deref();

        // ---- handler configuration ----
        let is_gcp = profile == Profile::Gcp;
        let aws_expiration = if is_gcp {
            86400
        } else {
            match a.token_expiration.as_deref() {
                None => 86400,
                Some(s) => s.trim().parse::<i64>().map_err(|_| {
                    ConfigError(format!(
                        "--token-expiration={s:?} is not a whole number of seconds"
                    ))
                })?,
            }
        };
        let gcp_expiration = match (
            is_gcp,
            a.token_expiration.as_deref(),
            a.gcp_token_expiration,
        ) {
            (true, Some(s), _) => i64::try_from(
                parse_go_duration(s)
                    .map_err(|e| ConfigError(format!("--token-expiration: {e}")))?
                    .as_secs(),
            )
            .unwrap_or(i64::MAX),
            (_, _, Some(secs)) => secs,
            _ => 86400,
        };
        let trim = |s: &str| s.trim_end_matches('/').to_string();
        let aws = AwsConfig {
            annotation_prefix: trim(
                a.annotation_prefix
                    .as_deref()
                    .filter(|_| !is_gcp)
                    .unwrap_or("eks.amazonaws.com"),
            ),
            token_audience: a
                .token_audience
                .clone()
                .filter(|_| !is_gcp)
                .unwrap_or_else(|| "sts.amazonaws.com".into()),
            token_mount_path: trim(&a.token_mount_path),
            token_expiration: aws_expiration.max(MIN_TOKEN_EXPIRATION),
            region: Some(a.aws_default_region.trim().to_string()).filter(|r| !r.is_empty()),
            sts_regional_endpoints: a.sts_regional_endpoint,
            container_credentials: ContainerCredentials {
                audience: a.container_credentials_audience.clone(),
                mount_path: trim(&a.container_credentials_token_mount_path),
                volume_name: a.container_credentials_token_volume_name.clone(),
                token_path: a.container_credentials_token_path.clone(),
                full_uri: a.container_credentials_full_uri.clone(),
            },
            compose_role_arn: None,
        };
        let authority_host = match &a.azure_authority_host {
            Some(h) => h.clone(),
            None => azure_authority_host(
                &a.azure_environment
                    .clone()
                    .or_else(|| env("AZURE_ENVIRONMENT"))
                    .unwrap_or_default(),
            )?
            .into(),
        };
        let tenant_id = a
            .azure_tenant_id
            .clone()
            .or_else(|| env("AZURE_TENANT_ID"))
            .filter(|t| !t.trim().is_empty());
        if profile == Profile::Azure && tenant_id.is_none() {
            return Err(ConfigError(
                "AZURE_TENANT_ID is required: set the environment variable (or --azure-tenant-id)"
                    .into(),
            ));
        }
        let custom_token_endpoint = azure_custom_endpoint(a)?;
        let custom_env = azure_custom_env(env)?;
        let image = |var: &str, name: &str| {
            env(var)
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| format!("{AZWI_REGISTRY}/{name}:{AZWI_VERSION}"))
        };
        let azure = AzureConfig {
            tenant_id,
            authority_host,
            audience: a
                .audience
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| crate::azure::AUDIENCE.into()),
            proxy_image: image("PROXY_IMAGE", "proxy"),
            proxy_init_image: image("PROXY_INIT_IMAGE", "proxy-init"),
            proxy_log_level: a.log_level.clone().unwrap_or_else(|| "info".into()),
            native_sidecar: true,
            custom_token_endpoint,
            custom_env,
        };
        let setup_container_resources = match a.setup_container_resources.trim() {
            "" => None,
            s => Some(serde_json::from_str(s).map_err(|e| {
                ConfigError(format!("--setup-container-resources is not JSON: {e}"))
            })?),
        };
        let gcp = GcpConfig {
            annotation_prefix: trim(
                a.annotation_prefix
                    .as_deref()
                    .filter(|_| is_gcp)
                    .unwrap_or("cloud.google.com"),
            ),
            audience: a
                .token_audience
                .clone()
                .filter(|_| is_gcp)
                .unwrap_or_else(|| "sts.googleapis.com".into()),
            token_expiration: gcp_expiration,
            default_region: a.gcp_default_region.clone(),
            gcloud_image: a.gcloud_image.clone(),
            default_mode: a.token_default_mode,
            setup_container_resources,
        };
        let webhook = WebhookConfig {
            clouds: profile.clouds(),
            aws,
            azure,
            gcp,
        };

        // ---- listeners ----
        let port = a.port.unwrap_or(match profile {
            Profile::Cco | Profile::Aws => 443,
            Profile::Azure | Profile::Gcp => 9443,
        });
        let webhook_addr = SocketAddr::new(a.bind_address, port);
        let aws_metrics = a.metrics_port.map(|p| SocketAddr::new(a.bind_address, p));
        let (metrics_addr, health_addr) = match profile {
            Profile::Cco | Profile::Aws => (
                Some(aws_metrics.unwrap_or(SocketAddr::new(a.bind_address, 9999))),
                match (&a.health_addr, &a.health_probe_bind_address) {
                    (Some(h), _) => listen("health-addr", h)?,
                    (None, Some(h)) => listen("health-probe-bind-address", h)?,
                    (None, None) => None,
                },
            ),
            Profile::Azure => (
                match (aws_metrics, &a.metrics_addr) {
                    (Some(m), _) => Some(m),
                    (None, m) => listen("metrics-addr", m.as_deref().unwrap_or(":8095"))?,
                },
                listen("health-addr", a.health_addr.as_deref().unwrap_or(":9440"))?,
            ),
            Profile::Gcp => (
                match (aws_metrics, &a.metrics_bind_address) {
                    (Some(m), _) => Some(m),
                    (None, m) => listen("metrics-bind-address", m.as_deref().unwrap_or(":8080"))?,
                },
                listen(
                    "health-probe-bind-address",
                    a.health_probe_bind_address.as_deref().unwrap_or(":8081"),
                )?,
            ),
        };
        if a.metrics_backend != "prometheus" {
            return Err(ConfigError(format!(
                "--metrics-backend={:?} is not supported; use prometheus",
                a.metrics_backend
            )));
        }

        // ---- certificates ----
        let cert_dir = match profile {
            Profile::Azure => a
                .webhook_cert_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("/certs")),
            Profile::Gcp => a.webhook_cert_dir.clone().unwrap_or_else(|| {
                PathBuf::from(
                    env("TMPDIR")
                        .filter(|t| !t.is_empty())
                        .unwrap_or("/tmp".into()),
                )
                .join("k8s-webhook-server/serving-certs")
            }),
            Profile::Cco | Profile::Aws => a
                .webhook_cert_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("/etc/webhook/certs")),
        };
        let in_cluster = a.in_cluster.unwrap_or(profile == Profile::Aws);
        let rotate = profile == Profile::Azure
            && !a.disable_cert_rotation
            && a.tls_cert.is_none()
            && a.tls_key.is_none();
        let certs = if rotate {
            let namespace = env("POD_NAMESPACE")
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| crate::certrotate::DEFAULT_NAMESPACE.into());
            CertSource::Rotate(crate::certrotate::RotatorConfig::azure(&namespace))
        } else if in_cluster {
            CertSource::Csr(crate::csr::CsrConfig {
                namespace: a.namespace.clone(),
                service_name: a.service_name.clone(),
                secret_name: a.tls_secret.clone(),
                signer_name: a.csr_signer_name.clone(),
            })
        } else {
            CertSource::Files {
                cert: rebase(
                    fs_root,
                    a.tls_cert
                        .clone()
                        .unwrap_or_else(|| cert_dir.join("tls.crt")),
                ),
                key: rebase(
                    fs_root,
                    a.tls_key
                        .clone()
                        .unwrap_or_else(|| cert_dir.join("tls.key")),
                ),
            }
        };
        let default_min = if profile == Profile::Azure {
            "1.3"
        } else {
            "1.2"
        };
        let tls_min_version = parse_tls_version(
            a.tls_min_version.as_deref().unwrap_or(default_min),
            &mut notices,
        )?;
        let tls12_cipher_suites = match a.tls_cipher_suites.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(list) => Some(crate::tls::cipher_suites_from_names(list, &mut notices)?),
        };
        for (set, name) in [
            (a.vmodule.is_some(), "--vmodule"),
            (a.log_backtrace_at.is_some(), "--log_backtrace_at"),
        ] {
            if set {
                notices.push(format!(
                    "{name} is accepted for compatibility and has no effect"
                ));
            }
        }

        let server = ServerConfig {
            webhook_addr,
            metrics_addr,
            health_addr,
            certs,
            tls_min_version,
            tls12_cipher_suites,
            grace_period: a.service_account_lookup_grace_period,
            resync_period: a.resync_period,
            kubeconfig: a.kubeconfig.clone(),
            kube_api: a.kube_api.clone().filter(|s| !s.is_empty()),
            debugging_handlers: a.enable_debugging_handlers,
        };
        let log = log_config(a, profile)?;
        Ok(Self {
            profile,
            webhook,
            server,
            log,
            notices,
            container_credentials_config: a
                .watch_container_credentials_config
                .clone()
                .filter(|p| !p.as_os_str().is_empty())
                .map(|p| rebase(fs_root, p)),
            config_map_namespace: a.watch_config_map.then(|| a.namespace.clone()),
            compose_role_arn: a.compose_role_arn,
        })
    }
}

pub(super) fn log_config(a: &Args, profile: Profile) -> Result<LogConfig, ConfigError> {
    let mut level = match profile {
        Profile::Gcp if a.zap_devel.unwrap_or(true) => "debug",
        Profile::Azure => "warn",
        _ => "info",
    }
    .to_string();
    if let Some(v) = a.v {
        level = match v {
            0 | 1 => "info",
            2..=4 => "debug",
            _ => "trace",
        }
        .into();
    }
    if let Some(l) = &a.log_level {
        level = match l.as_str() {
            "" => "warn",
            "info" => "info",
            "debug" => "debug",
            "trace" | "all" => "trace",
            other => {
                return Err(ConfigError(format!(
                    "--log-level={other:?}: use info, debug, trace or all"
                )))
            }
        }
        .into();
    }
    if let Some(l) = &a.zap_log_level {
        level = match l.as_str() {
            "debug" => "debug".to_string(),
            "info" => "info".to_string(),
            "error" | "panic" | "dpanic" | "fatal" => "error".to_string(),
            n => match n.parse::<u32>() {
                Ok(0) => "info".to_string(),
                Ok(1..=4) => "debug".to_string(),
                Ok(_) => "trace".to_string(),
                Err(_) => {
                    return Err(ConfigError(format!(
                        "--zap-log-level={n:?}: use debug, info, error, panic or a number"
                    )))
                }
            },
        };
    }
    let json = match (a.log_json, a.zap_encoder.as_deref()) {
        (Some(j), _) => j,
        (None, Some("json")) => true,
        (None, Some("console")) => false,
        (None, Some(other)) => {
            return Err(ConfigError(format!(
                "--zap-encoder={other:?}: use json or console"
            )))
        }
        (None, None) => match profile {
            Profile::Azure => true,
            Profile::Gcp => !a.zap_devel.unwrap_or(true),
            _ => false,
        },
    };
    let file = if a.logtostderr {
        None
    } else {
        match (&a.log_file, &a.log_dir) {
            (Some(f), _) => Some(f.clone()),
            (None, Some(d)) => Some(d.join("cco-pod-identity-webhook.log")),
            (None, None) => None,
        }
    };
    Ok(LogConfig {
        level,
        json,
        also_stderr: file.is_none() || a.alsologtostderr,
        file,
    })
}
