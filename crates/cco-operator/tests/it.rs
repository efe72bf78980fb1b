//! Every integration test of this crate in one test binary (`cargo test -p cco-operator --test it`;
//! one module per file, as they were separate binaries before): one link instead of 18, and a
//! target/ several gigabytes smaller. `log_level` and `mint_aws` install a global tracing
//! subscriber, so each keeps a binary of its own.

mod common;

mod default_mode;
mod deploy;
mod double_reconcile;
mod e2e_sts_token_mode;
mod label_backfill;
mod leader;
mod mint_aws_tags;
mod mint_crash;
mod mint_gcp;
mod monitoring;
mod passthrough;
mod pod_identity_webhook;
mod pod_identity_webhook_e2e;
mod rbac;
mod readonly_creds;
mod render_bootstrap;
mod token_mode;
mod upgrade_gate;
