//! `ccoctl`, the command-line tool.
//!
//! [`cli`] holds the clap definitions (flags compatible with the reference tool); one module per cloud
//! implements its subcommands as: read inputs → compute the plan (`cco_core`) → either render it
//! (`--dry-run`) or execute it through the cloud adapter, writing files atomically as results arrive.

pub mod aws_cmd;
pub mod aws_plan;
pub mod aws_verify;
pub mod azure_cmd;
pub mod azure_verify;
pub mod cli;
pub mod gcp_cmd;
pub mod gcp_verify;
pub mod ibm_cmd;
pub mod keypair;
pub mod nutanix_cmd;
pub mod output;
pub mod report_out;
pub mod verify_support;

use std::process::ExitCode;

use clap::Parser;

/// Parses arguments, runs the command, prints errors. Exit codes: 0 success, 1 failure, 2 usage;
/// `verify` exits 1 when a check fails and `plan` exits 2 when there are changes
/// ([`report_out::ExitWith`]).
pub fn run() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging(cli.log_level.as_deref());
    // kube and the AWS SDK must agree on one rustls provider; install it once, first.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<report_out::ExitWith>().is_some() => {
            ExitCode::from(e.downcast_ref::<report_out::ExitWith>().map_or(1, |x| x.0))
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cmd: cli::Command) -> anyhow::Result<()> {
    match cmd {
        cli::Command::Aws(a) => aws_cmd::run(a).await,
        cli::Command::Nutanix(a) => nutanix_cmd::run(a).await,
        cli::Command::Ibmcloud(a) => ibm_cmd::run(a).await,
        cli::Command::Gcp(a) => gcp_cmd::run(a).await,
        cli::Command::Azure(a) => azure_cmd::run(a).await,
    }
}

fn init_logging(level: Option<&str>) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CCOCTL_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "{},aws_config=warn,aws_smithy_runtime=warn,aws_sdk_sts=warn,hyper=warn,azure_identity=warn,azure_core=warn",
            level.unwrap_or("info")
        ))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(colour_logs())
        .try_init();
}

/// Colour only for a person watching: stderr is a terminal and `NO_COLOR` is unset or empty
/// (<https://no-color.org>). A log redirected to a file or a pipe gets no escape codes.
fn colour_logs() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
