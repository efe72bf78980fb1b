//! API types for the cloud credential system.
//!
//! The data model is the `CredentialsRequest` custom resource
//! (`cloudcredential.openshift.io/v1`, namespaced): a request, made by a component, for a credential
//! with a given set of permissions, to be written into the Secret `spec.secretRef`. The cloud-specific
//! part lives in `spec.providerSpec`, a free-form object whose `kind` selects the cloud. We keep that
//! object as raw JSON in the resource (exactly as the upstream CRD, which preserves unknown fields) and
//! decode it on demand into [`ProviderSpec`]; unknown kinds decode to [`ProviderSpec::Unknown`] rather
//! than failing, because such requests exist in the wild.

mod credentials_request;
mod provider;

pub use credentials_request::*;
pub use provider::*;

/// The API group of CredentialsRequest and of every provider spec.
pub const GROUP: &str = "cloudcredential.openshift.io";
/// `apiVersion` of CredentialsRequest and of every provider spec.
pub const API_VERSION: &str = "cloudcredential.openshift.io/v1";
/// Annotation that marks a request as removed from the release payload.
pub const ANNOTATION_DELETE: &str = "release.openshift.io/delete";
/// Annotation that marks a request as belonging to a feature set.
pub const ANNOTATION_FEATURE_SET: &str = "release.openshift.io/feature-set";
/// Feature-set value that `--enable-tech-preview` admits.
pub const FEATURE_SET_TECH_PREVIEW: &str = "TechPreviewNoUpgrade";
