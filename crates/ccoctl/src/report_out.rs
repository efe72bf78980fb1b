//! Printing `verify` and `plan` reports, shared by every cloud.
//!
//! A command builds a [`VerifyReport`] or [`PlanReport`] (pure data from `cco_core::report`), then
//! calls [`emit_verify`] or [`emit_plan`], which prints it in the `--output` format and returns the
//! report's exit code as an error of type [`ExitWith`] when it is not 0. [`crate::run`] turns an
//! [`ExitWith`] into the process exit code without printing anything more, so a failed check (1) or a
//! non-empty plan (2) is not mistaken for an error message.

use cco_core::report::{PlanReport, VerifyReport};
use clap::{Args, ValueEnum};

/// How a report is printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// One line per check or change, for people.
    #[default]
    Text,
    /// The stable JSON document described in the README (`"version": 1`).
    Json,
}

/// The `--output` flag of `verify` and `plan`.
#[derive(Clone, Copy, Debug, Args)]
pub struct ReportOutputArgs {
    /// Output format: text for people, json (stable, versioned schema) for monitoring jobs.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text, value_name = "FORMAT")]
    pub output: ReportFormat,
}

/// Ends the process with this exit code, printing nothing more (the report was printed).
#[derive(Debug, thiserror::Error)]
#[error("exit status {0}")]
pub struct ExitWith(pub u8);

fn finish(code: i32) -> anyhow::Result<()> {
    match u8::try_from(code) {
        Ok(0) => Ok(()),
        Ok(c) => Err(ExitWith(c).into()),
        Err(_) => Err(ExitWith(1).into()),
    }
}

/// Prints a verify report to stdout; `Err(ExitWith(1))` when a check failed.
pub fn emit_verify(report: &VerifyReport, format: ReportFormat) -> anyhow::Result<()> {
    match format {
        ReportFormat::Text => print!("{}", report.to_text()),
        ReportFormat::Json => print!("{}", report.to_json()),
    }
    finish(report.exit_code())
}

/// Prints a plan to stdout; `Err(ExitWith(2))` when it has changes.
pub fn emit_plan(report: &PlanReport, format: ReportFormat) -> anyhow::Result<()> {
    match format {
        ReportFormat::Text => print!("{}", report.to_text()),
        ReportFormat::Json => print!("{}", report.to_json()),
    }
    finish(report.exit_code())
}
