//! The pod identity webhook, deployed and kept running by the operator (seeds/001 option 2), as the
//! reference operator's `pod-identity` controller does.
//!
//! On AWS and GCP, and on Azure when the Secret `openshift-cloud-credential-operator/azure-credentials`
//! carries `azure_tenant_id`, the operator runs our webhook (`cco-pod-identity-webhook`, started
//! under the reference webhook's program name so that it takes that webhook's arguments) with the
//! image of `AWS_POD_IDENTITY_WEBHOOK_IMAGE`, `AZURE_POD_IDENTITY_WEBHOOK_IMAGE` or
//! `GCP_POD_IDENTITY_WEBHOOK_IMAGE`. Nothing is deployed when the platform's variable is unset or
//! the control plane is external (as in the reference).
//!
//! Layout, from pure to effectful:
//! - [`target`] decides whether and for which cloud the webhook is wanted;
//! - [`tls`] turns the APIServer TLS profile into the webhook's `--tls-*` arguments;
//! - [`manifests`] renders the objects (ServiceAccount, RBAC, Service, Deployment,
//!   MutatingWebhookConfiguration, PodDisruptionBudget) from `assets/podidentity/`;
//! - [`health`] derives the ClusterOperator conditions from the Deployment, with the grace period
//!   before Degraded, and lists the related objects;
//! - [`controller`] applies the objects, repairs drift, removes them when no longer wanted and
//!   publishes the health.

pub mod controller;
pub mod health;
pub mod manifests;
pub mod tls;

use crate::cluster::ClusterView;

/// Name of every object of the webhook.
pub const NAME: &str = "pod-identity-webhook";

/// The clouds the webhook serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WebhookCloud {
    Aws,
    Azure,
    Gcp,
}

impl WebhookCloud {
    /// Lower-case name, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookCloud::Aws => "aws",
            WebhookCloud::Azure => "azure",
            WebhookCloud::Gcp => "gcp",
        }
    }

    /// The operator's environment variable holding the webhook image for this cloud.
    pub fn image_env(self) -> &'static str {
        match self {
            WebhookCloud::Aws => "AWS_POD_IDENTITY_WEBHOOK_IMAGE",
            WebhookCloud::Azure => "AZURE_POD_IDENTITY_WEBHOOK_IMAGE",
            WebhookCloud::Gcp => "GCP_POD_IDENTITY_WEBHOOK_IMAGE",
        }
    }
}

/// Webhook images per cloud (from the operator's environment).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebhookImages {
    pub aws: Option<String>,
    pub azure: Option<String>,
    pub gcp: Option<String>,
}

impl WebhookImages {
    /// Reads the three variables (empty values count as unset).
    pub fn from_env() -> WebhookImages {
        let get = |c: WebhookCloud| std::env::var(c.image_env()).ok().filter(|v| !v.is_empty());
        WebhookImages {
            aws: get(WebhookCloud::Aws),
            azure: get(WebhookCloud::Azure),
            gcp: get(WebhookCloud::Gcp),
        }
    }

    fn get(&self, c: WebhookCloud) -> Option<&str> {
        match c {
            WebhookCloud::Aws => self.aws.as_deref(),
            WebhookCloud::Azure => self.azure.as_deref(),
            WebhookCloud::Gcp => self.gcp.as_deref(),
        }
        .filter(|s| !s.is_empty())
    }
}

/// Infrastructure topology facts that shape the webhook.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topology {
    /// `status.controlPlaneTopology == External` (hosted control plane): no webhook here.
    pub external_control_plane: bool,
    /// `status.infrastructureTopology == SingleReplica`: one replica, no PodDisruptionBudget.
    pub single_replica: bool,
}

impl Topology {
    /// Reads `status.controlPlaneTopology` and `status.infrastructureTopology` of Infrastructure.
    pub fn from_infrastructure(infra: Option<&crate::openshift::Infrastructure>) -> Topology {
        let field = |name: &str| {
            infra
                .and_then(|i| i.status.as_ref())
                .and_then(|s| s.rest.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        Topology {
            external_control_plane: field("controlPlaneTopology").as_deref() == Some("External"),
            single_replica: field("infrastructureTopology").as_deref() == Some("SingleReplica"),
        }
    }
}

/// What the webhook should look like, when it is wanted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub cloud: WebhookCloud,
    pub image: String,
    /// AWS: Infrastructure `status.platformStatus.aws.region`.
    pub region: Option<String>,
    pub tls: tls::TlsArgs,
    pub single_replica: bool,
}

/// Why the webhook is not deployed (for logs), or what to deploy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Want {
    Deploy(Box<Target>),
    /// Not wanted on this cluster: existing objects are removed.
    Remove(&'static str),
    /// Unknown (configuration unreadable): leave everything as it is.
    Wait(&'static str),
}

/// Decides whether the webhook is wanted (pure).
pub fn target(
    view: &ClusterView,
    topology: &Topology,
    images: &WebhookImages,
    azure_tenant_id_present: bool,
    tls: tls::TlsArgs,
) -> Want {
    if view.platform.is_empty() {
        return Want::Wait("Infrastructure platform unknown");
    }
    let cloud = match view.platform.as_str() {
        "AWS" => WebhookCloud::Aws,
        "GCP" => WebhookCloud::Gcp,
        "Azure" if azure_tenant_id_present => WebhookCloud::Azure,
        "Azure" => return Want::Remove("azure-credentials has no azure_tenant_id"),
        _ => return Want::Remove("platform without a pod identity webhook"),
    };
    if topology.external_control_plane {
        return Want::Remove("control plane topology is External");
    }
    let Some(image) = images.get(cloud) else {
        return Want::Remove("no webhook image configured for this platform");
    };
    Want::Deploy(Box::new(Target {
        cloud,
        image: image.to_string(),
        region: (cloud == WebhookCloud::Aws)
            .then(|| view.aws_region.clone())
            .flatten(),
        tls,
        single_replica: topology.single_replica,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::CredentialsMode;

    fn view(platform: &str) -> ClusterView {
        ClusterView {
            mode: CredentialsMode::Manual,
            platform: platform.into(),
            service_account_issuer: None,
            infrastructure_name: None,
            cluster_id: None,
            aws_region: Some("eu-west-2".into()),
            aws_resource_tags: vec![],
            infrastructure_resource_version: None,
            config_error: None,
        }
    }

    fn images() -> WebhookImages {
        WebhookImages {
            aws: Some("aws:1".into()),
            azure: Some("azure:1".into()),
            gcp: Some("gcp:1".into()),
        }
    }

    #[test]
    fn aws_and_gcp_always_azure_only_with_a_tenant() {
        let t = Topology::default();
        let tls = tls::TlsArgs::default();
        let Want::Deploy(a) = target(&view("AWS"), &t, &images(), false, tls.clone()) else {
            panic!("aws")
        };
        assert_eq!(
            (a.cloud, a.image.as_str(), a.region.as_deref()),
            (WebhookCloud::Aws, "aws:1", Some("eu-west-2"))
        );
        let Want::Deploy(g) = target(&view("GCP"), &t, &images(), false, tls.clone()) else {
            panic!("gcp")
        };
        assert_eq!((g.cloud, g.region), (WebhookCloud::Gcp, None));
        assert!(matches!(
            target(&view("Azure"), &t, &images(), false, tls.clone()),
            Want::Remove(_)
        ));
        assert!(matches!(
            target(&view("Azure"), &t, &images(), true, tls.clone()),
            Want::Deploy(_)
        ));
        assert!(matches!(
            target(&view("VSphere"), &t, &images(), true, tls.clone()),
            Want::Remove(_)
        ));
        assert!(matches!(
            target(&view(""), &t, &images(), true, tls.clone()),
            Want::Wait(_)
        ));
    }

    #[test]
    fn no_image_or_external_control_plane_means_no_webhook() {
        let tls = tls::TlsArgs::default();
        let none = WebhookImages::default();
        assert!(matches!(
            target(
                &view("AWS"),
                &Topology::default(),
                &none,
                false,
                tls.clone()
            ),
            Want::Remove(_)
        ));
        let ext = Topology {
            external_control_plane: true,
            single_replica: false,
        };
        assert!(matches!(
            target(&view("AWS"), &ext, &images(), false, tls),
            Want::Remove(_)
        ));
    }

    #[test]
    fn topology_is_read_from_infrastructure_status() {
        let infra: crate::openshift::Infrastructure = serde_json::from_value(serde_json::json!({
            "apiVersion": "config.openshift.io/v1", "kind": "Infrastructure",
            "metadata": {"name": "cluster"}, "spec": {},
            "status": {"controlPlaneTopology": "External", "infrastructureTopology": "SingleReplica"}
        }))
        .expect("parses");
        let t = Topology::from_infrastructure(Some(&infra));
        assert!(t.external_control_plane && t.single_replica);
        assert_eq!(Topology::from_infrastructure(None), Topology::default());
    }
}
