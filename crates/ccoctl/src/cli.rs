//! Command-line definitions. Flag names and defaults follow the reference `ccoctl`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Creates and deletes the cloud resources that give OpenShift components short-lived credentials:
/// service-account signing keys, the OIDC issuer and its documents, one least-privilege cloud identity
/// per CredentialsRequest, and the Secret manifests that point components at them.
#[derive(Debug, Parser)]
#[command(name = "ccoctl", version, propagate_version = true)]
pub struct Cli {
    /// Log level (error, warn, info, debug, trace); the CCOCTL_LOG environment variable overrides it.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage credentials objects for AWS.
    Aws(AwsArgs),
    /// Manage shared credentials objects for Nutanix.
    Nutanix(crate::nutanix_cmd::NutanixArgs),
    /// Manage long-term credentials objects (service IDs) for IBM Cloud and Power VS.
    Ibmcloud(crate::ibm_cmd::IbmArgs),
    /// Manage credentials objects for Google Cloud (workload identity federation).
    Gcp(crate::gcp_cmd::GcpArgs),
    /// Manage credentials objects for Azure (workload identity federation).
    Azure(crate::azure_cmd::AzureArgs),
}

#[derive(Debug, Args)]
pub struct AwsArgs {
    #[command(subcommand)]
    pub command: AwsCommand,
}

#[derive(Debug, Subcommand)]
pub enum AwsCommand {
    /// Create the service-account signing key pair (reuses an existing private key).
    CreateKeyPair(KeyPairArgs),
    /// Create the OIDC issuer (S3 bucket, optionally behind CloudFront) and the IAM OIDC identity provider.
    CreateIdentityProvider(IdentityProviderArgs),
    /// Create one IAM role per CredentialsRequest and write its Secret manifest.
    CreateIamRoles(IamRolesArgs),
    /// Create the key pair, the identity provider and the IAM roles in one go.
    CreateAll(CreateAllArgs),
    /// Delete everything the create commands made for --name (found by its ownership tag).
    Delete(DeleteArgs),
    /// Show what create-all (or create-iam-roles) would change, without changing anything.
    /// Exit 0: nothing to do; 2: changes; 1: error.
    Plan(AwsPlanArgs),
    /// Check, reading only, that the issuer, keys, identity provider, roles and Secrets work
    /// together. Exit 0: every check passes; 1: a check fails.
    Verify(AwsVerifyArgs),
}

/// Flags shared by the commands that talk to AWS.
#[derive(Debug, Args, Clone)]
pub struct AwsCommon {
    /// Region of the issuer bucket (and of the SDK clients).
    #[arg(long)]
    pub region: String,
    #[command(flatten)]
    pub concurrency: Concurrency,
}

/// How many AWS calls run at once.
#[derive(Debug, Args, Clone)]
pub struct Concurrency {
    /// How many independent AWS calls run at once. The SDK backs off on throttling.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
}

#[derive(Debug, Args, Clone)]
pub struct KeyPairArgs {
    /// Directory to write the keys to.
    #[arg(long, default_value = ".")]
    pub output_dir: PathBuf,
}

#[derive(Debug, Args, Clone)]
pub struct IssuerArgs {
    /// Serve the issuer from a private S3 bucket behind a CloudFront distribution (origin access
    /// control) instead of a public bucket.
    #[arg(long)]
    pub create_private_s3_bucket: bool,
    /// Use this SHA-1 thumbprint (hex) for the identity provider instead of fetching the issuer's TLS
    /// certificate. Needed when the issuer is not served over public TLS, e.g. with a local emulator.
    #[arg(long, value_name = "HEX", value_parser = parse_thumbprint)]
    pub issuer_thumbprint: Option<String>,
    /// Extra CA certificate (PEM) to trust when fetching the issuer's certificate chain.
    #[arg(long, value_name = "FILE")]
    pub issuer_ca_file: Option<PathBuf>,
    /// Publish only the current signing key. By default keys already published in keys.json are kept
    /// beside the new one, so tokens signed before a key rotation stay valid.
    #[arg(long)]
    pub prune_old_keys: bool,
}

#[derive(Debug, Args, Clone)]
pub struct IdentityProviderArgs {
    /// Name prefix of the created resources (bucket `<name>-oidc`); must be globally unique.
    #[arg(long)]
    pub name: String,
    #[command(flatten)]
    pub common: AwsCommon,
    /// Public key of the service-account signer [default: <output-dir>/serviceaccount-signer.public].
    #[arg(long)]
    pub public_key_file: Option<PathBuf>,
    /// Directory for the generated manifests (and dry-run files).
    #[arg(long, default_value = ".")]
    pub output_dir: PathBuf,
    #[command(flatten)]
    pub issuer: IssuerArgs,
    /// Write the API inputs as numbered JSON files instead of calling AWS.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args, Clone)]
pub struct RequestsArgs {
    /// Directory of CredentialsRequest manifests (top-level .yaml, .yml and .json files).
    #[arg(long)]
    pub credentials_requests_dir: PathBuf,
    /// Include requests of the TechPreviewNoUpgrade feature set.
    #[arg(long)]
    pub enable_tech_preview: bool,
    /// ARN of a managed policy to set as permissions boundary on every role.
    #[arg(long)]
    pub permissions_boundary_arn: Option<String>,
    /// Also delete the IAM roles owned by --name (ownership tag) that no request in the directory
    /// asks for any more. Without it they are kept, and `plan` lists them as notes.
    #[arg(long)]
    pub delete_unrequested: bool,
}

#[derive(Debug, Args, Clone)]
pub struct IamRolesArgs {
    /// Name prefix of the roles (`<name>-<namespace>-<secret>`, cut to 64 characters).
    #[arg(long)]
    pub name: String,
    /// AWS region endpoint, only required for GovCloud. IAM is global: without it the region comes
    /// from the standard configuration (AWS_REGION, the profile), or else from the partition of
    /// --identity-provider-arn.
    #[arg(long)]
    pub region: Option<String>,
    #[command(flatten)]
    pub concurrency: Concurrency,
    /// ARN of the IAM OIDC identity provider the roles trust.
    #[arg(long)]
    pub identity_provider_arn: String,
    #[command(flatten)]
    pub requests: RequestsArgs,
    /// Directory for the Secret manifests (and dry-run files).
    #[arg(long, default_value = ".")]
    pub output_dir: PathBuf,
    /// Write the API inputs as numbered JSON files instead of calling AWS.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args, Clone)]
pub struct CreateAllArgs {
    /// Name prefix of every created resource; the bucket `<name>-oidc` must be globally unique.
    #[arg(long)]
    pub name: String,
    #[command(flatten)]
    pub common: AwsCommon,
    #[command(flatten)]
    pub requests: RequestsArgs,
    /// Directory for keys, manifests and dry-run files.
    #[arg(long, default_value = ".")]
    pub output_dir: PathBuf,
    /// Public key of an existing service-account signer (e.g. a cluster's). With it no key pair is
    /// created: the issuer publishes this key.
    #[arg(long)]
    pub public_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub issuer: IssuerArgs,
    /// Write the API inputs as numbered JSON files instead of calling AWS.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args, Clone)]
pub struct DeleteArgs {
    /// Name prefix the resources were created with.
    #[arg(long)]
    pub name: String,
    #[command(flatten)]
    pub common: AwsCommon,
    /// List what would be deleted without deleting anything.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args, Clone)]
pub struct AwsPlanArgs {
    /// Name prefix of the resources, as given to create-all.
    #[arg(long)]
    pub name: String,
    #[command(flatten)]
    pub common: AwsCommon,
    #[command(flatten)]
    pub requests: RequestsArgs,
    /// Plan only the roles, as create-iam-roles with this provider ARN would; without it, plan
    /// everything create-all would do.
    #[arg(long)]
    pub identity_provider_arn: Option<String>,
    /// Public key to publish, as create-all --public-key-file [default: the output dir's key pair,
    /// or the key create-all would generate].
    #[arg(long)]
    pub public_key_file: Option<PathBuf>,
    /// Output directory create-all would use (its key pair is read, nothing is written).
    #[arg(long, default_value = ".")]
    pub output_dir: PathBuf,
    #[command(flatten)]
    pub issuer: IssuerArgs,
    #[command(flatten)]
    pub report: crate::report_out::ReportOutputArgs,
}

#[derive(Debug, Args, Clone)]
pub struct AwsVerifyArgs {
    /// Name prefix the resources were created with.
    #[arg(long)]
    pub name: String,
    #[command(flatten)]
    pub common: AwsCommon,
    /// CredentialsRequests whose roles and Secrets to check.
    #[arg(long)]
    pub credentials_requests_dir: Option<PathBuf>,
    /// Include requests of the TechPreviewNoUpgrade feature set.
    #[arg(long)]
    pub enable_tech_preview: bool,
    /// Permissions boundary the roles must carry.
    #[arg(long)]
    pub permissions_boundary_arn: Option<String>,
    /// Public key whose kid must be published [default: <output-dir>/serviceaccount-signer.public].
    #[arg(long)]
    pub public_key_file: Option<PathBuf>,
    /// Output directory of create-all: its public key, Secret manifests and Authentication manifest
    /// are checked.
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// Check the cluster too: its current and next signing keys, Authentication
    /// spec.serviceAccountIssuer, and the Secrets in it.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Extra CA certificate (PEM) to trust when fetching the issuer over HTTPS.
    #[arg(long, value_name = "FILE")]
    pub issuer_ca_file: Option<PathBuf>,
    #[command(flatten)]
    pub report: crate::report_out::ReportOutputArgs,
}

fn parse_thumbprint(s: &str) -> Result<String, String> {
    let t = s.trim().replace(':', "");
    if t.len() == 40 && t.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(t.to_ascii_lowercase())
    } else {
        Err("expected 40 hexadecimal digits (a SHA-1 fingerprint)".into())
    }
}
