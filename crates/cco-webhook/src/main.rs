//! `cco-pod-identity-webhook`: parse flags (Go syntax, profile from the program name), set up
//! logging, run [`cco_webhook::run`].

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

/// mimalloc: the default glibc allocator was a quarter of the CPU time of an admission.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let (args, profile, ignored) = cco_webhook::Args::parse_compat();
    let settings = match cco_webhook::Settings::resolve(&args, profile, &|k| std::env::var(k).ok())
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = init_logging(&settings.log) {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    for arg in ignored {
        tracing::warn!(argument = %arg, "positional argument ignored (booleans take --flag=value)");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cco_webhook::run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "webhook stopped");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(log: &cco_webhook::config::LogConfig) -> anyhow::Result<()> {
    use tracing_subscriber::fmt::writer::MakeWriterExt as _;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match &log.file {
        None => {
            let b = builder.with_writer(std::io::stderr);
            if log.json {
                b.json().init();
            } else {
                b.init();
            }
        }
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("opening log file {}: {e}", path.display()))?;
            let file = std::sync::Mutex::new(file);
            if log.also_stderr {
                let b = builder.with_writer(file.and(std::io::stderr));
                if log.json {
                    b.json().init();
                } else {
                    b.init();
                }
            } else {
                let b = builder.with_writer(file);
                if log.json {
                    b.json().init();
                } else {
                    b.init();
                }
            }
        }
    }
    Ok(())
}
