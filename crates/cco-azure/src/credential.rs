//! Where the Resource Manager token comes from: the credential chain of the reference `ccoctl`
//! (Go `azidentity.NewDefaultAzureCredential`), built from the Azure SDK for Rust's credential types
//! (`azure_identity`), after our own `AZURE_ACCESS_TOKEN`.
//!
//! Order, as the reference's default chain (azidentity 1.13):
//! 1. `AZURE_ACCESS_TOKEN`: an already issued bearer token, used as is (ours; not in the reference).
//! 2. Environment (`EnvironmentCredential`): `AZURE_TENANT_ID` (else `--tenant-id`), `AZURE_CLIENT_ID`
//!    and `AZURE_CLIENT_SECRET` → `ClientSecretCredential`. `AZURE_CLIENT_CERTIFICATE_PATH` is
//!    refused with an error: the SDK's certificate credential needs OpenSSL, which this build avoids.
//! 3. Workload identity (`WorkloadIdentityCredential`): `AZURE_TENANT_ID` (else `--tenant-id`),
//!    `AZURE_CLIENT_ID`, `AZURE_FEDERATED_TOKEN_FILE` → a `client_assertion` grant with the file.
//! 4. Managed identity (`ManagedIdentityCredential`, user-assigned when `AZURE_CLIENT_ID` is set):
//!    App Service / Azure Arc / Cloud Shell style when `IDENTITY_ENDPOINT` or `MSI_ENDPOINT` is set,
//!    else the VM's IMDS endpoint if it answers a probe within a second (as the reference probes).
//! 5. Azure CLI (`AzureCliCredential`: `az account get-access-token`), then the Azure Developer CLI.
//!    Their failures only mark them unavailable, as in the reference's chain. (The reference's last
//!    source, Azure PowerShell, has no Rust counterpart.)
//!
//! `AZURE_TOKEN_CREDENTIALS` selects sources as in the reference: `dev` (the CLIs), `prod`
//! (environment, workload identity, managed identity) or one credential's name. The authority is
//! `AZURE_AUTHORITY_HOST` and must be https (the SDK refuses anything else). Tokens are requested for
//! `<Resource Manager endpoint>/.default`, cached, and renewed five minutes before they expire, so
//! long runs keep working. The first source that yields a token is used for the rest of the run. A
//! source that is configured but fails (a wrong secret) stops the chain with its error; when no
//! source is configured, the error names each one and what it needs.
//!
//! Every credential sends its requests through our own `reqwest` client (rustls on aws-lc-rs, the
//! platform's roots plus `SSL_CERT_FILE`), passed to the SDK as its transport.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, Transport};
use azure_core::time::{Duration, OffsetDateTime};
use azure_identity::{
    AzureCliCredential, AzureDeveloperCliCredential, ClientAssertionCredentialOptions,
    ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};

use crate::{AzureError, Endpoints};

/// The IMDS token endpoint of Azure VMs, probed before the VM managed identity is used.
const IMDS: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
/// A token is renewed when it has less than this left.
const RENEW_BEFORE: i64 = 300;

const ENV: &str = "EnvironmentCredential";
const WORKLOAD: &str = "WorkloadIdentityCredential";
const MANAGED: &str = "ManagedIdentityCredential";
const CLI: &str = "AzureCLICredential";
const AZD: &str = "AzureDeveloperCLICredential";
const PWSH: &str = "AzurePowerShellCredential";

/// What the error says to do when nothing worked.
const WHAT_TO_SET: &str = "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (a service principal), or AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE (workload identity), or run on Azure with a managed identity, or log in with `az login`; or set AZURE_ACCESS_TOKEN to a Resource Manager token";

enum Source {
    /// `AZURE_ACCESS_TOKEN`.
    Fixed(Secret),
    /// A credential of the SDK; `soft`: its failure only makes it unavailable.
    Sdk {
        name: &'static str,
        cred: Arc<dyn TokenCredential>,
        soft: bool,
    },
    /// The VM managed identity, used if IMDS answers.
    Imds(Option<UserAssignedId>),
    /// Configured in a way this build cannot honour: trying it is an error.
    Refused { name: &'static str, why: String },
    /// Not configured: skipped, named in the final error.
    Unavailable { name: &'static str, why: String },
}

struct Cached {
    token: Secret,
    /// `None`: no known expiry (`AZURE_ACCESS_TOKEN`).
    expires_on: Option<OffsetDateTime>,
}

/// The credential chain for Resource Manager tokens (see the module header).
pub struct ArmCredential {
    sources: Vec<Source>,
    scope: String,
    options: ClientOptions,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The source that worked, once one did.
    chosen: Option<(&'static str, Arc<dyn TokenCredential>)>,
    fixed: bool,
    cached: Option<Cached>,
}

fn var(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

fn sdk_err(name: &str, e: azure_core::Error) -> AzureError {
    AzureError::Credentials(format!("{name}: {e}"))
}

/// Which sources `AZURE_TOKEN_CREDENTIALS` selects (all when unset).
fn selected() -> Result<Vec<&'static str>, AzureError> {
    let all = [ENV, WORKLOAD, MANAGED, CLI, AZD, PWSH];
    let Some(v) = var("AZURE_TOKEN_CREDENTIALS") else {
        return Ok(all.to_vec());
    };
    match v.as_str() {
        "dev" => Ok(vec![CLI, AZD, PWSH]),
        "prod" => Ok(vec![ENV, WORKLOAD, MANAGED]),
        _ => all
            .iter()
            .find(|n| n.eq_ignore_ascii_case(&v))
            .map(|n| vec![*n])
            .ok_or_else(|| {
                AzureError::Credentials(format!(
                    "invalid AZURE_TOKEN_CREDENTIALS value {v:?}: use \"dev\", \"prod\" or one of {}",
                    all.join(", ")
                ))
            }),
    }
}

impl ArmCredential {
    /// Builds the chain from the environment; `tenant` (`--tenant-id`) is used when
    /// `AZURE_TENANT_ID` is not set.
    pub fn from_env(
        http: &reqwest::Client,
        endpoints: &Endpoints,
        tenant: &str,
    ) -> Result<ArmCredential, AzureError> {
        let mut cloud = CustomConfiguration::default();
        cloud.authority_host = endpoints.authority.clone();
        let options = ClientOptions {
            transport: Some(Transport::new(Arc::new(http.clone()))),
            cloud: Some(Arc::new(CloudConfiguration::Custom(cloud))),
            ..Default::default()
        };
        let tenant =
            var("AZURE_TENANT_ID").or_else(|| Some(tenant.to_string()).filter(|t| !t.is_empty()));
        let client_id = var("AZURE_CLIENT_ID");
        let mut sources = Vec::new();
        match var("AZURE_ACCESS_TOKEN") {
            Some(t) => sources.push(Source::Fixed(Secret::new(t))),
            None => sources.push(Source::Unavailable {
                name: "AZURE_ACCESS_TOKEN",
                why: "not set".into(),
            }),
        }
        let chosen = selected()?;
        for name in chosen {
            let source = match name {
                ENV => env_source(&options, tenant.as_deref(), client_id.as_deref())?,
                WORKLOAD => workload_source(&options, tenant.as_deref(), client_id.as_deref())?,
                MANAGED => managed_source(&options, client_id.as_deref())?,
                CLI => Source::Sdk {
                    name,
                    cred: AzureCliCredential::new(None).map_err(|e| sdk_err(name, e))?,
                    soft: true,
                },
                AZD => Source::Sdk {
                    name,
                    cred: AzureDeveloperCliCredential::new(None).map_err(|e| sdk_err(name, e))?,
                    soft: true,
                },
                _ => Source::Unavailable {
                    name,
                    why: "not available in the Azure SDK for Rust".into(),
                },
            };
            sources.push(source);
        }
        Ok(ArmCredential {
            sources,
            scope: format!("{}/.default", endpoints.resource_manager),
            options,
            state: tokio::sync::Mutex::new(State::default()),
        })
    }

    /// The name of the source in use, once a token was obtained.
    pub async fn source(&self) -> Option<&'static str> {
        let st = self.state.lock().await;
        if st.fixed {
            return Some("AZURE_ACCESS_TOKEN");
        }
        st.chosen.as_ref().map(|(n, _)| *n)
    }

    /// A Resource Manager token, renewed when it has less than five minutes left.
    pub async fn token(&self) -> Result<String, AzureError> {
        let mut st = self.state.lock().await;
        if let Some(c) = &st.cached {
            let fresh = match c.expires_on {
                None => true,
                Some(t) => t - OffsetDateTime::now_utc() > Duration::seconds(RENEW_BEFORE),
            };
            if fresh {
                return Ok(c.token.secret().to_string());
            }
        }
        let scopes = [self.scope.as_str()];
        if let Some((name, cred)) = st.chosen.clone() {
            let t = cred
                .get_token(&scopes, None)
                .await
                .map_err(|e| sdk_err(name, e))?;
            let out = t.token.secret().to_string();
            st.cached = Some(Cached {
                token: t.token,
                expires_on: Some(t.expires_on),
            });
            return Ok(out);
        }
        let mut tried = Vec::new();
        for s in &self.sources {
            match s {
                Source::Fixed(t) => {
                    st.fixed = true;
                    st.cached = Some(Cached {
                        token: t.clone(),
                        expires_on: None,
                    });
                    return Ok(t.secret().to_string());
                }
                Source::Unavailable { name, why } => tried.push(format!("{name}: {why}")),
                Source::Refused { name, why } => {
                    return Err(AzureError::Credentials(format!("{name}: {why}")))
                }
                Source::Imds(id) => {
                    if !self.imds_answers().await {
                        tried.push(format!("{MANAGED}: IDENTITY_ENDPOINT and MSI_ENDPOINT are not set and no IMDS endpoint answered at {IMDS} (not on an Azure VM)"));
                        continue;
                    }
                    let cred =
                        ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                            user_assigned_id: id.clone(),
                            client_options: self.options.clone(),
                        }))
                        .map_err(|e| sdk_err(MANAGED, e))?;
                    let t = cred
                        .get_token(&scopes, None)
                        .await
                        .map_err(|e| sdk_err(MANAGED, e))?;
                    let out = t.token.secret().to_string();
                    st.chosen = Some((MANAGED, cred));
                    st.cached = Some(Cached {
                        token: t.token,
                        expires_on: Some(t.expires_on),
                    });
                    return Ok(out);
                }
                Source::Sdk { name, cred, soft } => match cred.get_token(&scopes, None).await {
                    Ok(t) => {
                        tracing::debug!(source = name, "Azure credential");
                        let out = t.token.secret().to_string();
                        st.chosen = Some((name, cred.clone()));
                        st.cached = Some(Cached {
                            token: t.token,
                            expires_on: Some(t.expires_on),
                        });
                        return Ok(out);
                    }
                    Err(e) if *soft => tried.push(format!("{name}: {}", reason(&e.to_string()))),
                    Err(e) => return Err(sdk_err(name, e)),
                },
            }
        }
        Err(AzureError::Credentials(format!(
            "no credential worked; tried, in order:\n  {}\n{WHAT_TO_SET}",
            tried.join("\n  ")
        )))
    }

    /// Whether the VM's IMDS endpoint answers within a second. The probe omits the `Metadata`
    /// header, as the reference's does; IMDS answers that with a JSON error. Anything else (an HTTP
    /// proxy or a sandbox answering for the link-local address with its own page) is not IMDS, as the
    /// reference also concludes when the answer is not IMDS's JSON.
    async fn imds_answers(&self) -> bool {
        let Ok(direct) = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(StdDuration::from_secs(1))
            .timeout(StdDuration::from_secs(1))
            .build()
        else {
            return false;
        };
        let probe = async {
            let resp = direct.get(IMDS).send().await.ok()?;
            let body: serde_json::Value = resp.json().await.ok()?;
            Some(body.get("error").is_some())
        };
        matches!(
            tokio::time::timeout(StdDuration::from_secs(1), probe).await,
            Ok(Some(true))
        )
    }
}

/// The SDK's error without its "XCredential authentication failed." prefix and troubleshooting link.
fn reason(s: &str) -> String {
    let s = s.split_once("authentication failed.").map_or(s, |(_, r)| r);
    let s = s.split_once("To troubleshoot, visit").map_or(s, |(r, _)| r);
    one_line(s)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn env_source(
    options: &ClientOptions,
    tenant: Option<&str>,
    client_id: Option<&str>,
) -> Result<Source, AzureError> {
    let secret = var("AZURE_CLIENT_SECRET");
    let cert = var("AZURE_CLIENT_CERTIFICATE_PATH");
    let missing: Vec<&str> = [
        ("AZURE_TENANT_ID (or --tenant-id)", tenant.is_none()),
        ("AZURE_CLIENT_ID", client_id.is_none()),
    ]
    .into_iter()
    .filter_map(|(k, m)| m.then_some(k))
    .collect();
    let (Some(tenant), Some(client_id)) = (tenant, client_id) else {
        return Ok(Source::Unavailable {
            name: ENV,
            why: format!("{} not set", missing.join(" and ")),
        });
    };
    if let Some(secret) = secret {
        let cred = ClientSecretCredential::new(
            tenant,
            client_id.to_string(),
            Secret::new(secret),
            Some(ClientSecretCredentialOptions {
                client_options: options.clone(),
            }),
        )
        .map_err(|e| sdk_err(ENV, e))?;
        return Ok(Source::Sdk {
            name: ENV,
            cred,
            soft: false,
        });
    }
    if cert.is_some() {
        return Ok(Source::Refused {
            name: ENV,
            why: "AZURE_CLIENT_CERTIFICATE_PATH is set, but client certificates are not supported by this build (the Azure SDK for Rust needs OpenSSL for them); use AZURE_CLIENT_SECRET or workload identity (AZURE_FEDERATED_TOKEN_FILE) instead".into(),
        });
    }
    Ok(Source::Unavailable {
        name: ENV,
        why: "AZURE_CLIENT_SECRET not set".into(),
    })
}

fn workload_source(
    options: &ClientOptions,
    tenant: Option<&str>,
    client_id: Option<&str>,
) -> Result<Source, AzureError> {
    let file = var("AZURE_FEDERATED_TOKEN_FILE");
    let missing: Vec<&str> = [
        ("AZURE_TENANT_ID (or --tenant-id)", tenant.is_none()),
        ("AZURE_CLIENT_ID", client_id.is_none()),
        ("AZURE_FEDERATED_TOKEN_FILE", file.is_none()),
    ]
    .into_iter()
    .filter_map(|(k, m)| m.then_some(k))
    .collect();
    let (Some(tenant), Some(client_id), Some(file)) = (tenant, client_id, file) else {
        return Ok(Source::Unavailable {
            name: WORKLOAD,
            why: format!("{} not set", missing.join(" and ")),
        });
    };
    let cred = WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
        credential_options: ClientAssertionCredentialOptions {
            client_options: options.clone(),
        },
        client_id: Some(client_id.to_string()),
        tenant_id: Some(tenant.to_string()),
        token_file_path: Some(file.into()),
        ..Default::default()
    }))
    .map_err(|e| sdk_err(WORKLOAD, e))?;
    Ok(Source::Sdk {
        name: WORKLOAD,
        cred,
        soft: false,
    })
}

fn managed_source(options: &ClientOptions, client_id: Option<&str>) -> Result<Source, AzureError> {
    let id = client_id.map(|c| UserAssignedId::ClientId(c.to_string()));
    if var("IDENTITY_ENDPOINT").is_none() && var("MSI_ENDPOINT").is_none() {
        return Ok(Source::Imds(id));
    }
    match ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
        user_assigned_id: id,
        client_options: options.clone(),
    })) {
        Ok(cred) => Ok(Source::Sdk {
            name: MANAGED,
            cred,
            soft: false,
        }),
        // E.g. Cloud Shell or Service Fabric endpoints, which the Rust SDK does not support.
        Err(e) => Ok(Source::Unavailable {
            name: MANAGED,
            why: one_line(&e.to_string()),
        }),
    }
}
