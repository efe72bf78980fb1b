//! `cloud-credential-operator`: the reference's command line — `operator` runs the controller
//! ([`cco_operator::operator::run`]) and `render` writes the installer's bootstrap manifests
//! ([`cco_operator::render`]). Without a command it runs the operator.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// OpenShift cloud credential operator: reconciles CredentialsRequests into cloud credentials
/// Secrets.
#[derive(Debug, Parser)]
#[command(
    name = "cloud-credential-operator",
    version,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run cloud credential operator.
    Operator(Box<RunArgs>),
    /// Render operator manifests for use as a bootstrap static pod (the installer's bootstrap
    /// step).
    Render(RenderArgs),
}

/// logrus's levels, as the reference's `--log-level` takes them (case-insensitive).
fn log_level(s: &str) -> Result<String, String> {
    let l = s.to_ascii_lowercase();
    match l.as_str() {
        "panic" | "fatal" | "error" | "warn" | "warning" | "info" | "debug" | "trace" => Ok(l),
        _ => Err(format!(
            "not a valid logrus Level: {s:?} (panic, fatal, error, warn, info, debug, trace)"
        )),
    }
}

/// Flags of `cloud-credential-operator render`.
#[derive(Debug, Args)]
struct RenderArgs {
    /// The directory where the install-time manifests are located.
    #[arg(long)]
    manifests_dir: Option<PathBuf>,
    /// The destination directory where CCO writes the manifests.
    #[arg(long)]
    dest_dir: PathBuf,
    /// Image for Cloud Credential Operator.
    #[arg(long)]
    cloud_credential_operator_image: String,
    /// Logging verbosity.
    #[arg(long, default_value = "info", value_parser = log_level)]
    log_level: String,
}

/// Flags of `cloud-credential-operator operator`.
#[derive(Debug, Args)]
struct RunArgs {
    /// Log level until CloudCredential `cluster` asks for a more verbose one (panic, fatal, error,
    /// warn, info, debug, trace). `RUST_LOG` pins the filter instead.
    #[arg(long, default_value = "info", value_parser = log_level)]
    log_level: String,
    /// Path to the kubeconfig to use [default: KUBECONFIG, ~/.kube/config, then in-cluster].
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Address of the HTTPS metrics endpoint ("" disables it).
    #[arg(long, env = "CCO_METRICS_ADDR", default_value = "0.0.0.0:8443")]
    metrics_addr: String,
    /// Directory holding the metrics serving certificate `tls.crt` and key `tls.key`, reloaded when
    /// they change ("" or missing files = a self-signed certificate made at start).
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
    /// glog's flags, which the reference's command line accepts (`-v`, `--logtostderr`, …):
    /// accepted for drop-in compatibility, without effect (logs go to stderr).
    #[command(flatten)]
    glog: GlogArgs,
}

/// The Go `flag` set glog registers, accepted and ignored.
#[derive(Debug, Args)]
struct GlogArgs {
    #[arg(short = 'v', long = "v", hide = true)]
    v: Option<String>,
    #[arg(long = "vmodule", hide = true)]
    vmodule: Option<String>,
    #[arg(long = "log_dir", hide = true)]
    log_dir: Option<String>,
    #[arg(long = "log_backtrace_at", hide = true)]
    log_backtrace_at: Option<String>,
    #[arg(long = "stderrthreshold", hide = true)]
    stderrthreshold: Option<String>,
    #[arg(long = "logtostderr", hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    logtostderr: Option<String>,
    #[arg(long = "alsologtostderr", hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    alsologtostderr: Option<String>,
}

/// The tracing filter for a logrus level.
fn level_directives(level: &str) -> String {
    match level {
        "trace" => cco_operator::loglevel::directives("Trace"),
        "debug" => cco_operator::loglevel::directives("Debug"),
        "info" => "info".to_string(),
        "warn" | "warning" => "warn".to_string(),
        _ => "error".to_string(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Render(r)) => render(r),
        Some(Command::Operator(args)) => run(*args).await,
        None => run(cli.run).await,
    }
}

/// `render`: plans the bootstrap files from the install-time manifests and writes them.
fn render(r: RenderArgs) -> anyhow::Result<()> {
    let _ = init_logs("text", &level_directives(&r.log_level));
    let plan = cco_operator::render::plan(
        r.manifests_dir.as_deref(),
        &r.cloud_credential_operator_image,
    )?;
    if plan.files.is_empty() {
        tracing::info!("the CloudCredential capability is disabled; nothing rendered");
        return Ok(());
    }
    tracing::info!(dest = %r.dest_dir.display(), mode = %plan.mode, "rendering files");
    cco_operator::render::write(&plan, &r.dest_dir)?;
    Ok(())
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let log_control = init_logs(&args.log_format, &level_directives(&args.log_level));
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
    let client = match &args.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| anyhow::anyhow!("--kubeconfig {}: {e}", path.display()))?;
            let config = kube::Config::from_custom_kubeconfig(
                kc,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("--kubeconfig {}: {e}", path.display()))?;
            kube::Client::try_from(config)?
        }
        None => kube::Client::try_default().await?,
    };
    let metrics = Arc::new(cco_operator::metrics::Metrics::new());
    cco_operator::operator::run(client, settings, metrics, shutdown_signal()).await?;
    Ok(())
}

/// JSON or text logs. With `RUST_LOG` set, it alone decides; otherwise the filter starts at
/// `initial` (from `--log-level`) and follows CloudCredential `spec.logLevel` through the returned
/// control.
fn init_logs(format: &str, initial: &str) -> Option<cco_operator::loglevel::LogControl> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let fixed = tracing_subscriber::EnvFilter::try_from_default_env().ok();
    let follow = fixed.is_none();
    let (filter, handle) = tracing_subscriber::reload::Layer::new(
        fixed.unwrap_or_else(|| tracing_subscriber::EnvFilter::new(initial)),
    );
    let json = format == "json";
    tracing_subscriber::registry()
        .with(filter)
        // To stderr, as the reference's logrus and klog write.
        .with(json.then(|| {
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::stderr)
        }))
        .with((!json).then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr)))
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
