//! The operator's log level from CloudCredential `cluster`, applied without a restart.
//!
//! As the reference's loglevel controller: the more verbose of `spec.logLevel` and
//! `spec.operatorLogLevel` wins; `Normal` (or unset) logs at info, `Debug` adds the operator's own
//! debug messages, `Trace` its trace messages, `TraceAll` everything, libraries included. The
//! binary installs a reloadable filter and hands the operator a [`LogControl`]; when `RUST_LOG` is
//! set it decides alone and no control is installed.

use std::sync::Arc;

use tokio::sync::watch;
use tracing::info;

use crate::state::ClusterState;

/// Applies a filter directive string, or says why not.
type SetFilter = dyn Fn(&str) -> Result<(), String> + Send + Sync;

/// Sets the process's log filter (a `tracing_subscriber::EnvFilter` directive string).
#[derive(Clone)]
pub struct LogControl(Arc<SetFilter>);

impl LogControl {
    pub fn new(f: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static) -> LogControl {
        LogControl(Arc::new(f))
    }

    /// Applies `directives`.
    pub fn set(&self, directives: &str) -> Result<(), String> {
        (self.0)(directives)
    }
}

impl std::fmt::Debug for LogControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogControl")
    }
}

/// Verbosity order of the API's levels; unknown values count as `Normal`.
fn rank(level: &str) -> u8 {
    match level {
        "Debug" => 1,
        "Trace" => 2,
        "TraceAll" => 3,
        _ => 0,
    }
}

/// The more verbose of `logLevel` and `operatorLogLevel`.
pub fn effective_level<'a>(
    log_level: Option<&'a str>,
    operator_log_level: Option<&'a str>,
) -> &'a str {
    let a = log_level.unwrap_or("Normal");
    let b = operator_log_level.unwrap_or("Normal");
    let best = if rank(b) > rank(a) { b } else { a };
    if rank(best) == 0 {
        "Normal"
    } else {
        best
    }
}

const OURS: [&str; 6] = [
    "cco_operator",
    "cco_core",
    "cco_aws",
    "cco_gcp",
    "cco_azure",
    "cco_api",
];

/// The filter directives for an API log level.
pub fn directives(level: &str) -> String {
    let ours = |l: &str| {
        OURS.iter()
            .map(|c| format!("{c}={l}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    match level {
        "Debug" => format!("info,{}", ours("debug")),
        "Trace" => format!("info,{}", ours("trace")),
        "TraceAll" => "trace".to_string(),
        _ => "info".to_string(),
    }
}

/// The level CloudCredential `cluster` asks for now.
pub fn current(state: &ClusterState) -> String {
    let cc = state.cloud_credential();
    let field = |name: &str| {
        cc.as_ref()
            .and_then(|c| c.spec.rest.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let (a, b) = (field("logLevel"), field("operatorLogLevel"));
    effective_level(a.as_deref(), b.as_deref()).to_string()
}

/// Applies the level now and after every change of the cluster configuration, until `stop`.
pub async fn run(
    state: ClusterState,
    control: LogControl,
    mut changes: watch::Receiver<u64>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    // As the reference (whose klog level starts at Normal whatever `--log-level` says), `Normal`
    // counts as applied at start: a `Normal` cluster keeps the level of `--log-level`.
    let mut applied: Option<String> = Some("Normal".to_string());
    loop {
        let level = current(&state);
        if applied.as_deref() != Some(level.as_str()) {
            match control.set(&directives(&level)) {
                Ok(()) => {
                    // Logged after the change so that it shows at every level.
                    info!(level = %level, "log level changed");
                    applied = Some(level);
                }
                Err(error) => {
                    tracing::warn!(%error, level = %level, "could not change the log level")
                }
            }
        }
        tokio::select! {
            _ = &mut stop => return,
            r = changes.changed() => if r.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_more_verbose_level_wins() {
        assert_eq!(effective_level(None, None), "Normal");
        assert_eq!(effective_level(Some("Debug"), None), "Debug");
        assert_eq!(effective_level(Some("Debug"), Some("TraceAll")), "TraceAll");
        assert_eq!(effective_level(Some("Trace"), Some("Debug")), "Trace");
        assert_eq!(effective_level(Some("Loud"), Some("")), "Normal");
    }

    #[test]
    fn levels_map_to_filters() {
        assert_eq!(directives("Normal"), "info");
        assert!(directives("Debug").contains("cco_operator=debug"));
        assert!(directives("Debug").starts_with("info,"));
        assert!(directives("Trace").contains("cco_aws=trace"));
        assert_eq!(directives("TraceAll"), "trace");
        for l in ["Normal", "Debug", "Trace", "TraceAll"] {
            assert!(
                tracing_subscriber::EnvFilter::try_new(directives(l)).is_ok(),
                "{l}"
            );
        }
    }
}
