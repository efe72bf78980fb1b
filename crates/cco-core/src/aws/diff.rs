//! The AWS change plan: what exists ([`ObservedIssuer`], [`ObservedRole`]) against what the requests
//! ask for ([`IdentityProviderPlan`], [`RolePlan`]), as executable steps and readable changes.
//!
//! Each step is exactly one mutating AWS call ([`IssuerStep::api_call`], [`RoleStep::api_call`],
//! [`RoleDeletion::api_calls`]). `ccoctl aws plan` renders the [`Change`]s computed beside the steps;
//! `create-all`, `create-identity-provider` and `create-iam-roles` observe, compute the same
//! [`AwsChangePlan`] with the same functions, and execute its steps, so what `plan` shows is what
//! they do. Nothing that already matches is written again.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::compare::{
    normalize_policy, permission_diff, permission_summary, policies_equivalent, trust_diff,
    trust_subjects,
};
use super::{
    cloudfront_read_bucket_policy, origin_access_identity_bucket_policy, owned_tag_key,
    provider_arn, public_read_bucket_policy, Front, IdentityProviderPlan, RolePlan, CLIENT_IDS,
    DISTRIBUTION_ID_PLACEHOLDER, OWNED_TAG_VALUE,
};
use crate::keys::merge_jwks;
use crate::oidc::{to_pretty, DISCOVERY_PATH, KEYS_PATH};
use crate::report::{Change, ChangeAction, DiffItem, PlanReport};

/// An S3 public access block configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// What the issuer bucket needs: ACLs always blocked; public policies allowed only for a
    /// public bucket.
    pub fn for_front(front: &Front) -> Self {
        let block_all = *front == Front::CloudFront;
        PublicAccessBlock {
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: block_all,
            restrict_public_buckets: block_all,
        }
    }

    fn fields(&self) -> [(&'static str, bool); 4] {
        [
            ("BlockPublicAcls", self.block_public_acls),
            ("IgnorePublicAcls", self.ignore_public_acls),
            ("BlockPublicPolicy", self.block_public_policy),
            ("RestrictPublicBuckets", self.restrict_public_buckets),
        ]
    }
}

/// The issuer bucket as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedBucket {
    pub tags: Vec<(String, String)>,
    /// `None` when the bucket has no public access block configuration.
    pub public_access_block: Option<PublicAccessBlock>,
    /// `None` when the bucket has no policy.
    pub policy: Option<Value>,
    /// The discovery document's text, `None` when the object does not exist.
    pub discovery: Option<String>,
    /// `keys.json`'s text, `None` when the object does not exist.
    pub keys: Option<String>,
    /// The tags of the discovery document and of `keys.json` (empty when absent).
    pub discovery_tags: Vec<(String, String)>,
    pub keys_tags: Vec<(String, String)>,
}

/// A CloudFront distribution whose origin is the issuer bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedDistribution {
    pub id: String,
    pub domain: String,
    /// The legacy origin access identity it reads through (a distribution the reference tool made);
    /// `None` for an origin access control.
    pub origin_access_identity: Option<String>,
}

/// The IAM OIDC provider of the issuer as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedProvider {
    pub arn: String,
    pub client_ids: Vec<String>,
    pub thumbprints: Vec<String>,
    pub tags: Vec<(String, String)>,
}

/// Everything of the issuer side that exists today.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedIssuer {
    /// The account the calls run in.
    pub account: String,
    pub bucket: Option<ObservedBucket>,
    pub origin_access_control: Option<String>,
    pub distribution: Option<ObservedDistribution>,
    pub provider: Option<ObservedProvider>,
}

impl ObservedIssuer {
    /// The issuer URL, when it is known: the bucket's URL, or the distribution's once it exists.
    pub fn issuer(&self, plan: &IdentityProviderPlan) -> Option<String> {
        match plan.front {
            Front::PublicBucket => Some(plan.bucket_issuer.clone()),
            Front::CloudFront => self
                .distribution
                .as_ref()
                .map(|d| format!("https://{}", d.domain)),
        }
    }
}

/// One mutating call of `create-identity-provider`.
#[derive(Clone, Debug, PartialEq)]
pub enum IssuerStep {
    CreateBucket,
    /// Replaces the bucket's tags with the plan's.
    TagBucket,
    PutPublicAccessBlock(PublicAccessBlock),
    PutBucketPolicy(Value),
    CreateOriginAccessControl,
    /// Needs the origin access control's id, read when the step runs. The steps after it depend on
    /// the distribution's domain: the executor re-observes and re-plans after it.
    CreateDistribution,
    PutObject {
        key: String,
        body: String,
    },
    CreateProvider {
        issuer: String,
        thumbprint: String,
    },
    AddClientId {
        arn: String,
        client_id: String,
    },
    UpdateThumbprint {
        arn: String,
        thumbprint: String,
    },
    TagProvider {
        arn: String,
    },
}

impl IssuerStep {
    /// The AWS API call this step makes.
    pub fn api_call(&self) -> &'static str {
        match self {
            IssuerStep::CreateBucket => "s3:CreateBucket",
            IssuerStep::TagBucket => "s3:PutBucketTagging",
            IssuerStep::PutPublicAccessBlock(_) => "s3:PutPublicAccessBlock",
            IssuerStep::PutBucketPolicy(_) => "s3:PutBucketPolicy",
            IssuerStep::CreateOriginAccessControl => "cloudfront:CreateOriginAccessControl",
            IssuerStep::CreateDistribution => "cloudfront:CreateDistributionWithTags",
            IssuerStep::PutObject { .. } => "s3:PutObject",
            IssuerStep::CreateProvider { .. } => "iam:CreateOpenIDConnectProvider",
            IssuerStep::AddClientId { .. } => "iam:AddClientIDToOpenIDConnectProvider",
            IssuerStep::UpdateThumbprint { .. } => "iam:UpdateOpenIDConnectProviderThumbprint",
            IssuerStep::TagProvider { .. } => "iam:TagOpenIDConnectProvider",
        }
    }
}

/// The issuer side of a change plan.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IssuerDiff {
    /// The issuer URL; `None` while the CloudFront distribution does not exist.
    pub issuer: Option<String>,
    /// The provider's ARN; `None` while the issuer is unknown.
    pub provider_arn: Option<String>,
    pub steps: Vec<IssuerStep>,
    pub changes: Vec<Change>,
}

/// Text standing for the CloudFront domain before the distribution exists.
pub const UNKNOWN_CLOUDFRONT_ISSUER: &str = "https://<CloudFront domain, known once created>";

fn missing_tags(want: &[(String, String)], have: &[(String, String)]) -> Vec<String> {
    want.iter()
        .filter(|t| !have.contains(t))
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

fn kids(jwks: &Value) -> BTreeSet<String> {
    jwks.get("keys")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|k| k.get("kid").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Keys of a JWKS as a kid-ordered map, so that order does not count as a difference.
fn keys_by_kid(jwks: &Value) -> BTreeMap<String, Value> {
    jwks.get("keys")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|k| {
                    let kid = k
                        .get("kid")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    (kid, k.clone())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Compares the issuer side with the plan. `thumbprint` is the issuer certificate's thumbprint (or
/// the one given on the command line); it is needed whenever the issuer is known.
pub fn diff_issuer(
    plan: &IdentityProviderPlan,
    observed: &ObservedIssuer,
    thumbprint: Option<&str>,
    prune_old_keys: bool,
) -> IssuerDiff {
    let mut d = IssuerDiff {
        issuer: observed.issuer(plan),
        ..Default::default()
    };
    let bucket = observed.bucket.as_ref();
    let obj = |key: &str| format!("{}/{key}", plan.bucket);

    // The bucket and its tags.
    match bucket {
        None => {
            d.steps
                .extend([IssuerStep::CreateBucket, IssuerStep::TagBucket]);
            d.changes.push(
                Change::new(ChangeAction::Create, "s3-bucket", &plan.bucket)
                    .with_diff([DiffItem::add("tags", missing_tags(&plan.tags, &[]))]),
            );
        }
        Some(b) => {
            let missing = missing_tags(&plan.tags, &b.tags);
            if !missing.is_empty() {
                d.steps.push(IssuerStep::TagBucket);
                d.changes.push(
                    Change::new(ChangeAction::Update, "s3-bucket", &plan.bucket)
                        .with_diff([DiffItem::add("tags", missing)]),
                );
            }
        }
    }

    // Who may read it.
    let want_pab = PublicAccessBlock::for_front(&plan.front);
    let have_pab = bucket.and_then(|b| b.public_access_block);
    if have_pab != Some(want_pab) {
        d.steps.push(IssuerStep::PutPublicAccessBlock(want_pab));
        let items = want_pab
            .fields()
            .iter()
            .zip(have_pab.map(|p| p.fields()).unwrap_or_default().iter())
            .filter(|((_, want), (_, have))| have_pab.is_none() || want != have)
            .map(|((k, want), (_, have))| {
                DiffItem::change(
                    *k,
                    have_pab.map(|_| have.to_string()),
                    Some(want.to_string()),
                )
            })
            .collect::<Vec<_>>();
        let action = if have_pab.is_some() {
            ChangeAction::Update
        } else {
            ChangeAction::Create
        };
        d.changes
            .push(Change::new(action, "s3-public-access-block", &plan.bucket).with_diff(items));
    }
    if plan.front == Front::CloudFront {
        // An origin access control is made only for a distribution still to be made.
        if observed.distribution.is_none() && observed.origin_access_control.is_none() {
            d.steps.push(IssuerStep::CreateOriginAccessControl);
            d.changes.push(Change::new(
                ChangeAction::Create,
                "cloudfront-origin-access-control",
                plan.oac_name(),
            ));
        }
        if observed.distribution.is_none() {
            d.steps.push(IssuerStep::CreateDistribution);
            d.changes.push(
                Change::new(
                    ChangeAction::Create,
                    "cloudfront-distribution",
                    format!("origin {}", plan.bucket_regional_domain()),
                )
                .with_diff([DiffItem::note(
                    "GET/HEAD, https only, caching disabled; its domain becomes the issuer",
                )]),
            );
        }
    }
    let want_policy = match plan.front {
        Front::PublicBucket => public_read_bucket_policy(&plan.partition, &plan.bucket),
        Front::CloudFront => match &observed.distribution {
            // A distribution the reference tool made reads through an origin access identity: keep
            // granting that identity, or the issuer would stop being served.
            Some(ObservedDistribution {
                origin_access_identity: Some(oai),
                ..
            }) => origin_access_identity_bucket_policy(&plan.partition, &plan.bucket, oai),
            other => cloudfront_read_bucket_policy(
                &plan.partition,
                &plan.bucket,
                &observed.account,
                other
                    .as_ref()
                    .map_or(DISTRIBUTION_ID_PLACEHOLDER, |x| x.id.as_str()),
            ),
        },
    };
    let have_policy = bucket.and_then(|b| b.policy.as_ref());
    if !have_policy.is_some_and(|p| policies_equivalent(p, &want_policy)) {
        let action = if have_policy.is_some() {
            ChangeAction::Update
        } else {
            ChangeAction::Create
        };
        let reader = match plan.front {
            Front::PublicBucket => "anyone may read the issuer documents",
            Front::CloudFront => "only the CloudFront distribution may read the issuer documents",
        };
        d.changes.push(
            Change::new(action, "s3-bucket-policy", &plan.bucket).with_diff([
                DiffItem::change(
                    "document",
                    have_policy.map(|p| normalize_policy(p).to_string()),
                    Some(normalize_policy(&want_policy).to_string()),
                ),
                DiffItem::note(reader),
            ]),
        );
        d.steps.push(IssuerStep::PutBucketPolicy(want_policy));
    }

    // The documents.
    let issuer = d
        .issuer
        .clone()
        .unwrap_or_else(|| UNKNOWN_CLOUDFRONT_ISSUER.to_string());
    let want_disc = plan.discovery(&issuer);
    let have_disc = bucket
        .and_then(|b| b.discovery.as_deref())
        .map(|t| serde_json::from_str::<Value>(t).ok());
    let disc_tags = missing_tags(
        &plan.tags,
        bucket
            .map(|b| b.discovery_tags.as_slice())
            .unwrap_or_default(),
    );
    if have_disc.as_ref().and_then(|v| v.as_ref()) != Some(&want_disc) || !disc_tags.is_empty() {
        let mut items = Vec::new();
        match &have_disc {
            Some(Some(have)) => {
                for field in ["issuer", "jwks_uri"] {
                    if have.get(field) != want_disc.get(field) {
                        items.push(DiffItem::change(
                            field,
                            have.get(field).and_then(Value::as_str).map(str::to_owned),
                            want_disc
                                .get(field)
                                .and_then(Value::as_str)
                                .map(str::to_owned),
                        ));
                    }
                }
                if items.is_empty() && have != &want_disc {
                    items.push(DiffItem::note("other fields differ; it will be rewritten"));
                }
            }
            Some(None) => items.push(DiffItem::note("the current object is not valid JSON")),
            None => items.push(DiffItem::change("issuer", None, Some(issuer.clone()))),
        }
        if have_disc.is_some() && !disc_tags.is_empty() {
            items.push(DiffItem::add("tags", disc_tags));
        }
        let action = if have_disc.is_some() {
            ChangeAction::Update
        } else {
            ChangeAction::Create
        };
        d.changes
            .push(Change::new(action, "s3-object", obj(DISCOVERY_PATH)).with_diff(items));
        d.steps.push(IssuerStep::PutObject {
            key: DISCOVERY_PATH.to_string(),
            body: to_pretty(&want_disc),
        });
    }
    let have_keys = bucket
        .and_then(|b| b.keys.as_deref())
        .map(|t| serde_json::from_str::<Value>(t).ok());
    let want_keys = match (&have_keys, prune_old_keys) {
        (Some(Some(old)), false) => merge_jwks(&plan.jwks, old),
        _ => plan.jwks.clone(),
    };
    let same_keys = have_keys
        .as_ref()
        .and_then(|v| v.as_ref())
        .is_some_and(|have| keys_by_kid(have) == keys_by_kid(&want_keys));
    let key_tags = missing_tags(
        &plan.tags,
        bucket.map(|b| b.keys_tags.as_slice()).unwrap_or_default(),
    );
    if !same_keys || (have_keys.is_some() && !key_tags.is_empty()) {
        let before = have_keys
            .as_ref()
            .and_then(|v| v.as_ref())
            .map(kids)
            .unwrap_or_default();
        let mut items = DiffItem::set_diff("kids", before, kids(&want_keys));
        if items.is_empty() && !same_keys {
            items.push(DiffItem::note("key material differs for a published kid"));
        }
        if have_keys.is_some() && !key_tags.is_empty() {
            items.push(DiffItem::add("tags", key_tags));
        }
        if matches!(have_keys, Some(None)) {
            items.push(DiffItem::note("the current object is not valid JSON"));
        }
        let action = if have_keys.is_some() {
            ChangeAction::Update
        } else {
            ChangeAction::Create
        };
        d.changes
            .push(Change::new(action, "s3-object", obj(KEYS_PATH)).with_diff(items));
        d.steps.push(IssuerStep::PutObject {
            key: KEYS_PATH.to_string(),
            body: to_pretty(&want_keys),
        });
    }

    // The IAM OIDC provider.
    let Some(known_issuer) = d.issuer.clone() else {
        d.changes.push(
            Change::new(ChangeAction::Create, "iam-oidc-provider", &issuer).with_diff([
                DiffItem::add(
                    "client_ids",
                    CLIENT_IDS.iter().map(|s| s.to_string()).collect(),
                ),
                DiffItem::note("thumbprint of the distribution's certificate, read once it exists"),
            ]),
        );
        // The executor stops after creating the distribution and re-plans with its domain; this
        // step stands for the provider that plan creates.
        d.steps.push(IssuerStep::CreateProvider {
            issuer,
            thumbprint: String::new(),
        });
        return d;
    };
    let arn = provider_arn(&plan.partition, &observed.account, &known_issuer);
    d.provider_arn = Some(arn.clone());
    let thumbprint = thumbprint.unwrap_or_default().to_ascii_lowercase();
    match &observed.provider {
        None => {
            d.changes.push(
                Change::new(ChangeAction::Create, "iam-oidc-provider", &arn).with_diff([
                    DiffItem::add(
                        "client_ids",
                        CLIENT_IDS.iter().map(|s| s.to_string()).collect(),
                    ),
                    DiffItem::change("thumbprint", None, Some(thumbprint.clone())),
                ]),
            );
            d.steps.push(IssuerStep::CreateProvider {
                issuer: known_issuer,
                thumbprint,
            });
        }
        Some(p) => {
            let mut items = Vec::new();
            for id in CLIENT_IDS {
                if !p.client_ids.iter().any(|c| c == id) {
                    d.steps.push(IssuerStep::AddClientId {
                        arn: arn.clone(),
                        client_id: id.to_string(),
                    });
                    items.push(DiffItem::add("client_ids", vec![id.to_string()]));
                }
            }
            if !p
                .thumbprints
                .iter()
                .any(|t| t.eq_ignore_ascii_case(&thumbprint))
            {
                d.steps.push(IssuerStep::UpdateThumbprint {
                    arn: arn.clone(),
                    thumbprint: thumbprint.clone(),
                });
                items.push(DiffItem::change(
                    "thumbprint",
                    Some(p.thumbprints.join(", ")),
                    Some(thumbprint),
                ));
            }
            let missing = missing_tags(&plan.tags, &p.tags);
            if !missing.is_empty() {
                d.steps.push(IssuerStep::TagProvider { arn: arn.clone() });
                items.push(DiffItem::add("tags", missing));
            }
            if !items.is_empty() {
                d.changes.push(
                    Change::new(ChangeAction::Update, "iam-oidc-provider", &arn).with_diff(items),
                );
            }
        }
    }
    d
}

/// A role as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedRole {
    pub name: String,
    pub trust: Value,
    pub tags: Vec<(String, String)>,
    pub permissions_boundary: Option<String>,
    /// The inline policy named as the plan names it (the role's name), `None` when absent.
    pub policy: Option<Value>,
    /// Names of every inline policy.
    pub inline_policies: Vec<String>,
    /// ARNs of every attached managed policy.
    pub attached_policies: Vec<String>,
}

impl ObservedRole {
    /// True when the role carries the ownership tag of `name`.
    pub fn owned_by(&self, name: &str) -> bool {
        let key = owned_tag_key(name);
        self.tags
            .iter()
            .any(|(k, v)| *k == key && v == OWNED_TAG_VALUE)
    }
}

/// One mutating call of `create-iam-roles` for one role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleStep {
    /// With trust policy, tags and boundary.
    CreateRole,
    UpdateTrust,
    TagRole,
    PutBoundary,
    PutPolicy,
}

impl RoleStep {
    /// The AWS API call this step makes.
    pub fn api_call(&self) -> &'static str {
        match self {
            RoleStep::CreateRole => "iam:CreateRole",
            RoleStep::UpdateTrust => "iam:UpdateAssumeRolePolicy",
            RoleStep::TagRole => "iam:TagRole",
            RoleStep::PutBoundary => "iam:PutRolePermissionsBoundary",
            RoleStep::PutPolicy => "iam:PutRolePolicy",
        }
    }
}

/// The steps for one requested role (index into the role plans), possibly none.
#[derive(Clone, Debug, PartialEq)]
pub struct RoleDiff {
    pub index: usize,
    pub steps: Vec<RoleStep>,
    pub changes: Vec<Change>,
}

/// Compares one role with its plan.
pub fn diff_role(index: usize, plan: &RolePlan, observed: Option<&ObservedRole>) -> RoleDiff {
    let mut d = RoleDiff {
        index,
        steps: Vec::new(),
        changes: Vec::new(),
    };
    let Some(have) = observed else {
        d.steps.extend([RoleStep::CreateRole, RoleStep::PutPolicy]);
        let (_, subjects) = trust_subjects(&plan.trust_policy);
        let mut items = vec![DiffItem::add("subjects", subjects.into_iter().collect())];
        if let Some(b) = &plan.permissions_boundary {
            items.push(DiffItem::change(
                "permissions boundary",
                None,
                Some(b.clone()),
            ));
        }
        d.changes
            .push(Change::new(ChangeAction::Create, "iam-role", &plan.role_name).with_diff(items));
        d.changes.push(
            Change::new(ChangeAction::Create, "iam-role-policy", &plan.role_name)
                .with_diff(permission_summary(&plan.policy)),
        );
        return d;
    };
    let mut role_items = Vec::new();
    if !policies_equivalent(&have.trust, &plan.trust_policy) {
        d.steps.push(RoleStep::UpdateTrust);
        role_items.extend(trust_diff(&have.trust, &plan.trust_policy));
    }
    let missing = missing_tags(&plan.tags, &have.tags);
    if !missing.is_empty() {
        d.steps.push(RoleStep::TagRole);
        role_items.push(DiffItem::add("tags", missing));
    }
    if let Some(b) = &plan.permissions_boundary {
        if have.permissions_boundary.as_deref() != Some(b) {
            d.steps.push(RoleStep::PutBoundary);
            role_items.push(DiffItem::change(
                "permissions boundary",
                have.permissions_boundary.clone(),
                Some(b.clone()),
            ));
        }
    }
    if !role_items.is_empty() {
        d.changes.push(
            Change::new(ChangeAction::Update, "iam-role", &plan.role_name).with_diff(role_items),
        );
    }
    match &have.policy {
        None => {
            d.steps.push(RoleStep::PutPolicy);
            d.changes.push(
                Change::new(ChangeAction::Create, "iam-role-policy", &plan.role_name)
                    .with_diff(permission_summary(&plan.policy)),
            );
        }
        Some(p) if !policies_equivalent(p, &plan.policy) => {
            d.steps.push(RoleStep::PutPolicy);
            d.changes.push(
                Change::new(ChangeAction::Update, "iam-role-policy", &plan.role_name)
                    .with_diff(permission_diff(p, &plan.policy)),
            );
        }
        Some(_) => {}
    }
    d
}

/// An owned role no request asks for, to delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleDeletion {
    pub role: String,
    pub inline_policies: Vec<String>,
    pub attached_policies: Vec<String>,
}

impl RoleDeletion {
    /// The calls deleting it makes: each inline policy, each attachment, then the role.
    pub fn api_calls(&self) -> Vec<&'static str> {
        let mut calls = vec!["iam:DeleteRolePolicy"; self.inline_policies.len()];
        calls.extend(vec!["iam:DetachRolePolicy"; self.attached_policies.len()]);
        calls.push("iam:DeleteRole");
        calls
    }
}

/// Every step of a run: the issuer side (when the command creates it), each requested role, and the
/// deletion of owned roles no request asks for (when asked to).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AwsChangePlan {
    pub issuer: Option<IssuerDiff>,
    pub roles: Vec<RoleDiff>,
    pub deletions: Vec<RoleDeletion>,
    /// Remarks that are not changes (owned roles kept because deletion was not asked for).
    pub notes: Vec<String>,
}

/// Compares every requested role with what exists, and finds the owned roles no request asks for.
/// `existing` holds the requested roles that exist; `unrequested` the roles named `<name>-…` that
/// no plan names (ownership is checked here).
pub fn diff_roles(
    name: &str,
    plans: &[RolePlan],
    existing: &BTreeMap<String, ObservedRole>,
    unrequested: &[ObservedRole],
    delete_unrequested: bool,
) -> (Vec<RoleDiff>, Vec<RoleDeletion>, Vec<String>) {
    let roles = plans
        .iter()
        .enumerate()
        .map(|(i, p)| diff_role(i, p, existing.get(&p.role_name)))
        .collect();
    let mut deletions = Vec::new();
    let mut notes = Vec::new();
    let requested: BTreeSet<&str> = plans.iter().map(|p| p.role_name.as_str()).collect();
    for r in unrequested {
        if requested.contains(r.name.as_str()) || !r.owned_by(name) {
            continue;
        }
        if delete_unrequested {
            deletions.push(RoleDeletion {
                role: r.name.clone(),
                inline_policies: r.inline_policies.clone(),
                attached_policies: r.attached_policies.clone(),
            });
        } else {
            notes.push(format!(
                "IAM role {} is owned by {name} but no request asks for it; it is kept (--delete-unrequested deletes it)",
                r.name
            ));
        }
    }
    deletions.sort_by(|a, b| a.role.cmp(&b.role));
    (roles, deletions, notes)
}

impl AwsChangePlan {
    /// Every mutating call, in the order they are made.
    pub fn api_calls(&self) -> Vec<&'static str> {
        let mut calls: Vec<&'static str> = self
            .issuer
            .iter()
            .flat_map(|i| i.steps.iter().map(IssuerStep::api_call))
            .collect();
        calls.extend(
            self.roles
                .iter()
                .flat_map(|r| r.steps.iter().map(RoleStep::api_call)),
        );
        calls.extend(self.deletions.iter().flat_map(RoleDeletion::api_calls));
        calls
    }

    /// True when nothing would be changed.
    pub fn is_empty(&self) -> bool {
        self.issuer
            .as_ref()
            .is_none_or(|i| i.steps.is_empty() && i.changes.is_empty())
            && self.roles.iter().all(|r| r.steps.is_empty())
            && self.deletions.is_empty()
    }

    /// The readable plan.
    pub fn report(&self, name: &str) -> PlanReport {
        let mut r = PlanReport::new("aws", name);
        if let Some(i) = &self.issuer {
            r.changes.extend(i.changes.iter().cloned());
        }
        for role in &self.roles {
            r.changes.extend(role.changes.iter().cloned());
        }
        for del in &self.deletions {
            let mut items = vec![DiffItem::note("owned, and no request asks for it any more")];
            if !del.inline_policies.is_empty() {
                items.push(DiffItem::remove(
                    "inline policies",
                    del.inline_policies.clone(),
                ));
            }
            if !del.attached_policies.is_empty() {
                items.push(DiffItem::remove(
                    "attached policies",
                    del.attached_policies.clone(),
                ));
            }
            r.changes
                .push(Change::new(ChangeAction::Delete, "iam-role", &del.role).with_diff(items));
        }
        r.notes = self.notes.clone();
        r
    }
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
