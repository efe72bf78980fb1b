//! The reconcile decision for one CredentialsRequest, as plain data.
//!
//! [`decide`] is pure: it takes the request, the [`ClusterView`], the cached root Secret and what the
//! reconciler observed about the target namespace and Secret, and returns a [`Decision`] naming
//! every write to make. The reconciler executes it and maps the result to an
//! [`Outcome`](crate::conditions::Outcome). The order of checks follows the reference operator:
//! stale requests, deletion (finalizer), Manual mode, platform match, finalizer, target namespace,
//! "already in sync", then the mode's way of producing the Secret.

use std::time::Duration;

use cco_api::{
    AwsProviderSpec, Cloud, CredentialsRequest, GcpProviderSpec, ProviderSpec, StatementEntry,
    ANNOTATION_DELETE,
};
use cco_core::secrets::{self, PassthroughError, SecretData};
use cco_core::DEFAULT_TOKEN_PATH;
use kube::ResourceExt;

use crate::cluster::{supports_passthrough, ClusterView, Effective, RootSecret};
use crate::conditions::has_failure;

/// Finalizer that guards cloud cleanup.
pub const FINALIZER: &str = "cloudcredential.openshift.io/deprovision";
/// Annotation on a target Secret naming its request (`<namespace>/<name>`).
pub const ANNOTATION_CREDENTIALS_REQUEST: &str = "cloudcredential.openshift.io/credentials-request";
/// Label on every target Secret (the operator watches Secrets by it).
pub const LABEL_CREDENTIALS_REQUEST: &str = "cloudcredential.openshift.io/credentials-request";
/// Annotation on a minted AWS Secret with the policy last applied.
pub const ANNOTATION_AWS_POLICY: &str = "cloudcredential.openshift.io/aws-policy-last-applied";

/// The target Secret as observed (its metadata: the decision never needs its data).
#[derive(Clone, Debug, PartialEq)]
pub struct TargetSecret {
    /// Value of [`ANNOTATION_CREDENTIALS_REQUEST`].
    pub owner: Option<String>,
}

/// Everything [`decide`] looks at.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub cr: &'a CredentialsRequest,
    pub cluster: &'a ClusterView,
    pub effective: &'a Effective,
    pub root: Option<&'a RootSecret>,
    /// The operator's own read-only credential of this cloud, when its Secret exists: with the
    /// root credential removed, minted identities are still checked (reads only).
    pub readonly: Option<&'a RootSecret>,
    pub target_namespace_exists: bool,
    pub target: Option<&'a TargetSecret>,
    /// Seconds since `status.lastSyncTimestamp`, if it parses.
    pub since_last_sync: Option<Duration>,
    pub sync_period: Duration,
    /// Random suffix for a new IAM user name (5 lowercase alphanumerics).
    pub random_suffix: &'a str,
}

/// Why provisioning cannot happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    Provision(String),
    Insufficient(String),
}

/// A request for an AWS IAM user, as the mint planner needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct AwsMint {
    pub user: String,
    pub policy_name: String,
    /// The user name was just generated and must be recorded in `status.providerStatus` first.
    pub user_is_new: bool,
    pub statements: Vec<StatementEntry>,
    pub tags: Vec<(String, String)>,
    /// The root credential changed since the last sync: issue a new key, remove the old ones.
    pub rotate: bool,
    pub region: String,
    pub root_fingerprint: String,
}

/// A request for a GCP service account, as the GCP mint executor needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct GcpMint {
    /// The project of the root credential (`project_id` of its key file).
    pub project: String,
    /// Service account id (`<infra≤12>-<request≤11>-<suffix>`, at most 30 characters).
    pub account_id: String,
    /// The id was just generated and must be recorded in `status.providerStatus` first.
    pub account_is_new: bool,
    /// `<infra≤50>-<request≤49>`, as `ccoctl gcp` names service accounts: a service account with
    /// this display name and [`GcpMint::description`] is adopted instead of creating another.
    pub display_name: String,
    pub description: String,
    /// Custom role holding `permissions`, when the request lists any.
    pub role_id: Option<String>,
    /// A custom role recorded earlier that the request no longer needs (to delete).
    pub stale_role_id: Option<String>,
    /// Sorted, unique.
    pub permissions: Vec<String>,
    /// Sorted, unique.
    pub predefined_roles: Vec<String>,
    /// The root credential changed since the last sync: issue a new key, remove the old ones.
    pub rotate: bool,
    pub root_fingerprint: String,
}

impl GcpMint {
    /// The service account's email.
    pub fn email(&self) -> String {
        cco_core::gcp::service_account_email(&self.account_id, &self.project)
    }

    /// Every project role the service account holds: predefined ones, then the custom role.
    pub fn project_roles(&self) -> Vec<String> {
        let mut roles = self.predefined_roles.clone();
        if let Some(id) = &self.role_id {
            roles.push(cco_core::gcp::role_name(&self.project, id));
        }
        roles
    }
}

/// How the target Secret gets its content.
#[derive(Clone, Debug, PartialEq)]
pub enum Provision {
    /// Write exactly this data (passthrough and short-term tokens).
    Write(SecretData),
    /// Make sure the IAM user exists, then write its key.
    MintAws(AwsMint),
    /// Make sure the GCP service account, its role and bindings exist, then write its key.
    MintGcp(GcpMint),
    /// Minted earlier; the root credential was removed, so nothing can be checked or changed.
    KeepMinted,
    Fail(Failure),
}

/// Cloud cleanup on deletion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deprovision {
    AwsUser {
        user: String,
    },
    /// A minted GCP service account, with its project bindings and custom role.
    GcpServiceAccount {
        account_id: String,
        role_id: Option<String>,
    },
}

/// What to do with one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Not ours to touch.
    LeaveAlone,
    /// Manual mode and the request is marked for deletion: report it.
    MarkStale,
    /// The request is marked for deletion: delete it (the finalizer cleans up).
    DeleteStale,
    /// Being deleted: clean up, then drop the finalizer.
    Finalize {
        deprovision: Option<Deprovision>,
        delete_secret: bool,
    },
    /// For another platform.
    Ignore {
        platform: String,
    },
    WaitForNamespace {
        add_finalizer: bool,
    },
    /// Synced recently and nothing changed.
    UpToDate,
    Provision {
        add_finalizer: bool,
        how: Provision,
    },
}

/// `status.providerStatus` of a minted AWS request.
pub fn aws_provider_status(
    cr: &CredentialsRequest,
) -> (Option<String>, Option<String>, Option<String>) {
    let ps = cr.status.as_ref().and_then(|s| s.provider_status.as_ref());
    let get = |k: &str| {
        ps.and_then(|p| p.get(k))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    (get("user"), get("policy"), get("rootCredentialFingerprint"))
}

/// `status.providerStatus` of a minted GCP request: service account id, custom role id, root
/// credential fingerprint.
pub fn gcp_provider_status(
    cr: &CredentialsRequest,
) -> (Option<String>, Option<String>, Option<String>) {
    let ps = cr.status.as_ref().and_then(|s| s.provider_status.as_ref());
    let get = |k: &str| {
        ps.and_then(|p| p.get(k))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    (
        get("serviceAccountID"),
        get("roleID"),
        get("rootCredentialFingerprint"),
    )
}

/// `<infra≤12>-<name≤11>-<suffix>` in `[a-z0-9-]`, starting with a letter: a GCP service account id
/// (6 to 30 characters).
pub fn gcp_account_id(infra: Option<&str>, cr_name: &str, suffix: &str) -> String {
    let clean = |s: &str, n: usize| -> String {
        s.chars()
            .map(|c| c.to_ascii_lowercase())
            .map(|c| {
                if c.is_ascii_lowercase() || c.is_ascii_digit() {
                    c
                } else {
                    '-'
                }
            })
            .take(n)
            .collect()
    };
    let mut prefix = clean(infra.filter(|i| !i.is_empty()).unwrap_or("cco"), 12);
    if !prefix.starts_with(|c: char| c.is_ascii_lowercase()) {
        prefix = format!("c{}", clean(&prefix, 11));
    }
    format!("{prefix}-{}-{suffix}", clean(cr_name, 11))
}

/// `<infra[..20]>-<name[..37]>-<suffix>`, the reference operator's user naming.
pub fn aws_user_name(infra: Option<&str>, cr_name: &str, suffix: &str) -> String {
    let cut = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    match infra {
        Some(i) if !i.is_empty() => format!("{}-{}-{suffix}", cut(i, 20), cut(cr_name, 37)),
        _ => format!("{}-{suffix}", cut(cr_name, 37)),
    }
}

/// Tags every minted user carries: `kubernetes.io/cluster/<infra>=owned`, or on a cluster without
/// an infrastructure name the legacy `openshiftClusterID=<ClusterVersion spec.clusterID>` (as the
/// reference, whose cleanup still finds users by it), then the Infrastructure resource tags.
pub fn aws_user_tags(cluster: &ClusterView) -> Vec<(String, String)> {
    let mut tags = Vec::new();
    if let Some(i) = &cluster.infrastructure_name {
        tags.push((format!("kubernetes.io/cluster/{i}"), "owned".to_string()));
    } else if let Some(id) = &cluster.cluster_id {
        tags.push(("openshiftClusterID".to_string(), id.clone()));
    }
    tags.extend(cluster.aws_resource_tags.iter().cloned());
    tags
}

fn token_path(cr: &CredentialsRequest) -> String {
    cr.spec
        .cloud_token_path
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_TOKEN_PATH.to_string())
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// The short-term-token Secret for a request, when it carries its cloud's fields.
pub fn token_secret(cr: &CredentialsRequest, spec: &ProviderSpec) -> Option<SecretData> {
    let path = token_path(cr);
    match spec {
        ProviderSpec::Aws(a) => {
            nonempty(&a.sts_iam_role_arn).map(|arn| secrets::aws_sts_data(arn, &path))
        }
        ProviderSpec::Gcp(g) => match (nonempty(&g.service_account_email), nonempty(&g.audience)) {
            (Some(email), Some(aud)) => {
                Some(secrets::gcp_workload_identity_data(aud, email, &path))
            }
            _ => None,
        },
        ProviderSpec::Azure(z) => match (
            nonempty(&z.azure_client_id),
            nonempty(&z.azure_tenant_id),
            nonempty(&z.azure_region),
            nonempty(&z.azure_subscription_id),
        ) {
            (Some(c), Some(t), Some(r), Some(s)) => {
                Some(secrets::azure_workload_identity_data(c, t, r, s, &path))
            }
            _ => None,
        },
        _ => None,
    }
}

/// Requests the reference's cleanup controller removes by name (`constants.StaleCredentialsRequests`):
/// ones older releases shipped and newer ones no longer need.
pub const STALE_REQUESTS: &[(&str, &str)] = &[(
    crate::status::OPERATOR_NAMESPACE,
    "cloud-credential-operator-s3",
)];

/// A request no release wants any more: annotated `release.openshift.io/delete: "true"`, or one of
/// [`STALE_REQUESTS`].
fn is_stale(cr: &CredentialsRequest) -> bool {
    cr.annotations().get(ANNOTATION_DELETE).map(String::as_str) == Some("true")
        || STALE_REQUESTS.iter().any(|(ns, name)| {
            cr.metadata.namespace.as_deref() == Some(*ns)
                && cr.metadata.name.as_deref() == Some(*name)
        })
}

fn has_finalizer(cr: &CredentialsRequest) -> bool {
    cr.finalizers().iter().any(|f| f == FINALIZER)
}

fn cr_ref(cr: &CredentialsRequest) -> String {
    format!("{}/{}", cr.namespace().unwrap_or_default(), cr.name_any())
}

/// Decides what to do with `inp.cr`.
pub fn decide(inp: &Inputs<'_>) -> Decision {
    let cr = inp.cr;
    let deleting = cr.metadata.deletion_timestamp.is_some();
    let manual = matches!(inp.effective, Effective::Manual | Effective::Token);

    if deleting {
        if !has_finalizer(cr) {
            return Decision::LeaveAlone;
        }
        let (user, _, _) = aws_provider_status(cr);
        let (account, role, _) = gcp_provider_status(cr);
        // In Manual mode there is no root credential to clean up with: let the request go.
        let deprovision = match (user, account, manual) {
            (_, _, true) => None,
            (Some(user), _, false) => Some(Deprovision::AwsUser { user }),
            (None, Some(account_id), false) => Some(Deprovision::GcpServiceAccount {
                account_id,
                role_id: role,
            }),
            (None, None, false) => None,
        };
        let delete_secret = inp
            .target
            .is_some_and(|t| t.owner.as_deref() == Some(cr_ref(cr).as_str()));
        return Decision::Finalize {
            deprovision,
            delete_secret,
        };
    }
    if is_stale(cr) {
        return if manual {
            Decision::MarkStale
        } else {
            Decision::DeleteStale
        };
    }
    if *inp.effective == Effective::Manual {
        return Decision::LeaveAlone;
    }

    // Platform match. A request whose kind we do not know is never for this platform.
    let cloud = inp.cluster.cloud();
    let kind_cloud = cr.spec.provider_kind().and_then(Cloud::from_kind);
    if cloud.is_none() || kind_cloud != cloud {
        return Decision::Ignore {
            platform: inp.cluster.platform.clone(),
        };
    }
    let Some(cloud) = cloud else {
        return Decision::LeaveAlone;
    };
    let spec = match cr.spec.provider() {
        Ok(s) => s,
        Err(e) => {
            return Decision::Provision {
                add_finalizer: !has_finalizer(cr),
                how: Provision::Fail(Failure::Provision(format!("invalid providerSpec: {e}"))),
            }
        }
    };

    let how = match inp.effective {
        Effective::Token => match token_secret(cr, &spec) {
            Some(data) => Provision::Write(data),
            // Without its token fields a request is the administrator's business (Manual mode).
            None => return Decision::LeaveAlone,
        },
        Effective::Passthrough => passthrough(cloud, inp.root, inp.cluster),
        Effective::Mint => mint(cloud, &spec, inp),
        Effective::Insufficient => Provision::Fail(Failure::Insufficient(
            "the root credential can neither mint nor be passed through".into(),
        )),
        Effective::Undetermined => Provision::Fail(Failure::Provision(
            "waiting for the root credential's permissions to be classified".into(),
        )),
        Effective::Manual => return Decision::LeaveAlone,
    };
    let add_finalizer = !has_finalizer(cr);

    if !inp.target_namespace_exists {
        return Decision::WaitForNamespace { add_finalizer };
    }
    if !add_finalizer && in_sync(inp) {
        return Decision::UpToDate;
    }
    Decision::Provision { add_finalizer, how }
}

/// Provisioned, same generation, same root credential, synced within the period, no failure, and
/// the Secret still there.
fn in_sync(inp: &Inputs<'_>) -> bool {
    let Some(status) = inp.cr.status.as_ref() else {
        return false;
    };
    let root_same = match inp.root {
        Some(r) => {
            status
                .last_sync_cloud_creds_secret_resource_version
                .as_deref()
                == Some(r.resource_version.as_str())
        }
        None => true,
    };
    // Infrastructure changed (e.g. its resource tags): sync again, as the reference does.
    let infra_same = match inp.cluster.infrastructure_resource_version.as_deref() {
        Some(rv) => status.last_sync_infrastructure_resource_version.as_deref() == Some(rv),
        None => true,
    };
    status.provisioned
        && status.last_sync_generation == inp.cr.metadata.generation.unwrap_or(0)
        && root_same
        && infra_same
        && inp.since_last_sync.is_some_and(|d| d < inp.sync_period)
        && !has_failure(status)
        && inp.target.is_some()
}

fn passthrough(cloud: Cloud, root: Option<&RootSecret>, cluster: &ClusterView) -> Provision {
    if !supports_passthrough(cloud) {
        return Provision::Fail(Failure::Provision(format!(
            "platform {} supports only Manual mode",
            cluster.platform
        )));
    }
    let Some(root) = root else {
        return Provision::Fail(Failure::Provision(format!(
            "root credential {}/{} not found",
            crate::cluster::ROOT_SECRET_NAMESPACE,
            cluster.root_secret_name().unwrap_or("<none>")
        )));
    };
    match secrets::passthrough_data(cloud, &root.data) {
        Ok(d) => Provision::Write(d),
        Err(e @ PassthroughError::Unsupported { .. }) => {
            Provision::Fail(Failure::Provision(e.to_string()))
        }
        Err(e) => Provision::Fail(Failure::Insufficient(e.to_string())),
    }
}

fn mint(cloud: Cloud, spec: &ProviderSpec, inp: &Inputs<'_>) -> Provision {
    match (cloud, spec) {
        (Cloud::Aws, ProviderSpec::Aws(a)) => mint_aws(a, inp),
        (Cloud::Gcp, ProviderSpec::Gcp(g)) => mint_gcp(g, inp),
        _ => Provision::Fail(Failure::Provision(format!(
            "Mint mode is not supported on platform {}",
            inp.cluster.platform
        ))),
    }
}

/// The root credential changed since the last sync (a new resourceVersion alone, e.g. an
/// annotation, is not a new credential: the contents are compared too).
fn root_changed(inp: &Inputs<'_>, root: &RootSecret, fingerprint: Option<&str>) -> bool {
    let last_rv = inp
        .cr
        .status
        .as_ref()
        .and_then(|s| s.last_sync_cloud_creds_secret_resource_version.clone());
    last_rv.is_some_and(|rv| rv != root.resource_version)
        && fingerprint != Some(root.fingerprint().as_str())
}

/// Minted earlier and the root credential is gone: keep what exists, refuse anything new.
fn without_root(inp: &Inputs<'_>, minted: bool) -> Provision {
    let provisioned = inp.cr.status.as_ref().is_some_and(|s| s.provisioned);
    if minted && provisioned && inp.target.is_some() {
        Provision::KeepMinted
    } else {
        Provision::Fail(Failure::Provision(format!(
            "root credential {}/{} not found: cannot mint (mint mode with the root credential removed keeps existing credentials only)",
            crate::cluster::ROOT_SECRET_NAMESPACE,
            inp.cluster.root_secret_name().unwrap_or("<none>")
        )))
    }
}

/// The `project_id` of a GCP root credential's key file.
pub fn gcp_root_project(root: &RootSecret) -> Result<String, String> {
    let raw = root
        .data
        .get_str(secrets::GCP_SERVICE_ACCOUNT_JSON)
        .ok_or_else(|| {
            format!(
                "root credential {} lacks key {}",
                root.name,
                secrets::GCP_SERVICE_ACCOUNT_JSON
            )
        })?;
    let v: serde_json::Value = serde_json::from_str(raw).map_err(|e| {
        format!(
            "root credential {}: {} is not JSON (line {} column {})",
            root.name,
            secrets::GCP_SERVICE_ACCOUNT_JSON,
            e.line(),
            e.column()
        )
    })?;
    v["project_id"]
        .as_str()
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            format!(
                "root credential {}: {} has no project_id",
                root.name,
                secrets::GCP_SERVICE_ACCOUNT_JSON
            )
        })
}

fn mint_gcp(spec: &GcpProviderSpec, inp: &Inputs<'_>) -> Provision {
    let (account, recorded_role, fingerprint) = gcp_provider_status(inp.cr);
    // Without the root credential, a minted account is still checked with the read-only one.
    let root = match (inp.root, inp.readonly, account.is_some()) {
        (Some(r), _, _) => r,
        (None, Some(ro), true) => ro,
        (None, _, minted) => return without_root(inp, minted),
    };
    let project = match gcp_root_project(root) {
        Ok(p) => p,
        Err(e) => return Provision::Fail(Failure::Insufficient(e)),
    };
    let infra = inp.cluster.infrastructure_name.as_deref();
    let name = inp.cr.name_any();
    let account_is_new = account.is_none();
    let account_id = account.unwrap_or_else(|| gcp_account_id(infra, &name, inp.random_suffix));
    let permissions: Vec<String> = spec
        .permissions
        .iter()
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let predefined_roles: Vec<String> = spec
        .predefined_roles
        .iter()
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let infra_or = infra.unwrap_or("cco");
    let role_id = (!permissions.is_empty()).then(|| {
        recorded_role
            .clone()
            .unwrap_or_else(|| cco_core::gcp::legacy_role_id(infra_or, &name).replace('.', "_"))
    });
    let stale_role_id = recorded_role.filter(|_| role_id.is_none());
    let rotate =
        inp.root.is_some() && !account_is_new && root_changed(inp, root, fingerprint.as_deref());
    let root_fingerprint = match inp.root {
        Some(r) => r.fingerprint(),
        None => fingerprint.clone().unwrap_or_default(),
    };
    Provision::MintGcp(GcpMint {
        project,
        account_id,
        account_is_new,
        display_name: cco_core::gcp::display_name(infra_or, &name),
        description: format!(
            "Created by cloud-credential-operator for CredentialsRequest {}",
            cr_ref(inp.cr)
        ),
        role_id,
        stale_role_id,
        permissions,
        predefined_roles,
        rotate,
        root_fingerprint,
    })
}

fn mint_aws(aws: &AwsProviderSpec, inp: &Inputs<'_>) -> Provision {
    let (user, policy, fingerprint) = aws_provider_status(inp.cr);
    if inp.root.is_none() && !(inp.readonly.is_some() && user.is_some()) {
        // Nothing to read with, or nothing minted yet: keep what exists, refuse anything new.
        return without_root(inp, user.is_some());
    }
    let user_is_new = user.is_none();
    let user = user.unwrap_or_else(|| {
        aws_user_name(
            inp.cluster.infrastructure_name.as_deref(),
            &inp.cr.name_any(),
            inp.random_suffix,
        )
    });
    let (rotate, root_fingerprint) = match inp.root {
        Some(root) => (
            !user_is_new && root_changed(inp, root, fingerprint.as_deref()),
            root.fingerprint(),
        ),
        // Checked with the read-only credential; nothing can be rotated.
        None => (false, fingerprint.unwrap_or_default()),
    };
    Provision::MintAws(AwsMint {
        policy_name: policy.unwrap_or_else(|| format!("{user}-policy")),
        user,
        user_is_new,
        statements: aws.statement_entries.clone(),
        tags: aws_user_tags(inp.cluster),
        rotate,
        region: inp.cluster.region(),
        root_fingerprint,
    })
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
