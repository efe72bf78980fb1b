//! Every integration test of this crate in one test binary (`cargo test -p ccoctl --test it`;
//! one module per file, as they were separate binaries before): one link instead of 22, and a
//! target/ several gigabytes smaller.

mod azure_env;
mod common;
mod gcp_env;
mod snapshot;

mod aws_compat_live;
mod aws_live;
mod aws_offline;
mod aws_plan;
mod aws_snapshots;
mod aws_verify;
mod azure_compat;
mod azure_credentials;
mod azure_live;
mod azure_resources;
mod azure_schema;
mod azure_verify;
mod e2e_sts;
mod gcp_compat;
mod gcp_live;
mod gcp_schema;
mod gcp_verify;
mod ibm_live;
mod nutanix_secrets;
mod output_dir;
mod proxy;
mod report_once;
