//! Pure core logic shared by `ccoctl`, the operator and the webhook.
//!
//! Nothing here talks to a cloud. The data flows one way: [`reader`] turns a directory of manifests into
//! [`reader::LoadedRequest`]s (each remembering its file and document index for error messages);
//! [`keys`] and [`oidc`] produce the issuer's key material and documents; the per-cloud modules
//! ([`aws`]) turn requests into a *plan*, plain data that names every cloud object to create and every
//! file to write. The plan is what `--dry-run` renders and what the adapters execute.

pub mod aws;
pub mod azure;
pub mod fsutil;
pub mod gcp;
pub mod ibm;
pub mod keys;
pub mod nutanix;
pub mod oidc;
pub mod oidc_checks;
pub mod reader;
pub mod report;
pub mod secrets;
pub mod yaml;

/// Where ServiceAccount tokens are projected unless a request says otherwise.
pub const DEFAULT_TOKEN_PATH: &str = "/var/run/secrets/openshift/serviceaccount/token";
/// The audience the cluster's projected tokens carry for cloud exchange.
pub const DEFAULT_AUDIENCE: &str = "openshift";
