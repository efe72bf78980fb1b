//! `cloud-credential-operator`: parses flags, sets up JSON logs and runs [`cco_operator::operator::run`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

/// Reconciles CredentialsRequests into cloud credentials Secrets.
#[derive(Debug, Parser)]
#[command(name = "cloud-credential-operator", version)]
struct Args {
    /// `operator`, as the reference's command line names it (the only command; may be omitted).
    #[arg(value_parser = ["operator"], hide = true)]
    command: Option<String>,
    /// Address of the HTTPS metrics endpoint ("" disables it).
    #[arg(long, env = "CCO_METRICS_ADDR", default_value = "0.0.0.0:8443")]
    metrics_addr: String,
    /// Directory holding the metrics serving certificate `tls.crt` and key `tls.key`, reloaded when
    /// they change ("" = a self-signed certificate made at start).
    #[arg(long, env = "CCO_METRICS_CERT_DIR", default_value = cco_operator::metrics_server::DEFAULT_CERT_DIR)]
    metrics_cert_dir: String,
    /// Minimum TLS version of the metrics endpoint (VersionTLS12, VersionTLS13; 1.0/1.1 serve
    /// 1.2). With this or --tls-cipher-suites the APIServer TLS profile is not followed.
    #[arg(long)]
    tls_min_version: Option<String>,
    /// TLS 1.2 cipher suites of the metrics endpoint, comma-separated Go/IANA names.
    #[arg(long, value_delimiter = ',')]
    tls_cipher_suites: Vec<String>,
    /// Take part in leader election on a Lease.
    #[arg(long, env = "CCO_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Namespace of the Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = cco_operator::status::OPERATOR_NAMESPACE)]
    lease_namespace: String,
    /// Identity in the Lease (defaults to the pod name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Seconds between periodic resyncs of each request.
    #[arg(long, env = "CCO_RESYNC_SECONDS", default_value_t = 600)]
    resync_seconds: u64,
    /// Concurrent reconciles.
    #[arg(long, env = "CCO_CONCURRENCY", default_value_t = 16)]
    concurrency: u16,
    /// IAM/STS endpoint override (e.g. an emulator). Defaults to AWS_ENDPOINT_URL.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    aws_endpoint: Option<String>,
    /// Endpoint for iam:SimulatePrincipalPolicy only.
    #[arg(long, env = "CCO_AWS_SIMULATE_ENDPOINT")]
    aws_simulate_endpoint: Option<String>,
    /// Log format: json or text. The level follows CloudCredential `spec.logLevel` (Normal, Debug,
    /// Trace, TraceAll) unless RUST_LOG is set.
    #[arg(long, env = "CCO_LOG_FORMAT", default_value = "json")]
    log_format: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let log_control = init_logs(&args.log_format);
    cco_operator::install_crypto_provider();
    let metrics_addr: Option<SocketAddr> = if args.metrics_addr.is_empty() {
        None
    } else {
        Some(args.metrics_addr.parse()?)
    };
    let metrics_cert = if args.metrics_cert_dir.is_empty() {
        cco_operator::metrics_server::ServingCert::SelfSigned
    } else {
        cco_operator::metrics_server::ServingCert::Dir(args.metrics_cert_dir.into())
    };
    let metrics_tls =
        (args.tls_min_version.is_some() || !args.tls_cipher_suites.is_empty()).then(|| {
            cco_operator::podidentity::tls::TlsArgs {
                min_version: args.tls_min_version.clone(),
                ciphers: args.tls_cipher_suites.clone(),
            }
        });
    let mut settings = cco_operator::Settings {
        metrics_addr,
        metrics_cert,
        metrics_tls,
        leader_election: args.leader_elect,
        lease_namespace: args.lease_namespace,
        resync: Duration::from_secs(args.resync_seconds),
        concurrency: args.concurrency,
        aws_endpoint: args.aws_endpoint.filter(|s| !s.is_empty()),
        aws_simulate_endpoint: args.aws_simulate_endpoint.filter(|s| !s.is_empty()),
        ..Default::default()
    };
    if let Some(id) = args.identity {
        settings.identity = id;
    }
    settings.webhook_images = cco_operator::podidentity::WebhookImages::from_env();
    settings.log_control = log_control;
    if let Ok(v) = std::env::var("RELEASE_VERSION") {
        settings.version = v;
    }
    let client = kube::Client::try_default().await?;
    let metrics = Arc::new(cco_operator::metrics::Metrics::new());
    cco_operator::operator::run(client, settings, metrics, shutdown_signal()).await?;
    Ok(())
}

/// JSON or text logs. With `RUST_LOG` set, it alone decides; otherwise the filter starts at info
/// and follows CloudCredential `spec.logLevel` through the returned control.
fn init_logs(format: &str) -> Option<cco_operator::loglevel::LogControl> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let fixed = tracing_subscriber::EnvFilter::try_from_default_env().ok();
    let follow = fixed.is_none();
    let (filter, handle) = tracing_subscriber::reload::Layer::new(
        fixed.unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info")),
    );
    let json = format == "json";
    tracing_subscriber::registry()
        .with(filter)
        .with(json.then(|| tracing_subscriber::fmt::layer().json()))
        .with((!json).then(tracing_subscriber::fmt::layer))
        .init();
    follow.then(|| {
        cco_operator::loglevel::LogControl::new(move |directives| {
            let f =
                tracing_subscriber::EnvFilter::try_new(directives).map_err(|e| e.to_string())?;
            handle.reload(f).map_err(|e| e.to_string())
        })
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
