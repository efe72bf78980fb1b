//! The thin HTTP layer around [`crate::handler::admit`].
//!
//! - TLS port: `POST /mutate` (AdmissionReview in, AdmissionReview out) and `GET /healthz`,
//!   HTTP/1.1 and HTTP/2 through hyper-util's auto builder on tokio-rustls.
//! - Metrics port (plain HTTP): `GET /metrics` and `GET /healthz`; with
//!   `--enable-debugging-handlers`, as the EKS webhook: `/debug/alpha/cache` (the ServiceAccount
//!   cache as JSON) and `/debug/alpha/cache/clear` (empties it until the next resync), and on
//!   the TLS port `/debug/alpha/deny` and `/debug/alpha/500`.
//!
//! [`App::review`] is the whole per-request path: parse, look the ServiceAccount up, call the
//! pure handler, record metrics, log one structured line (namespace, pod, ServiceAccount,
//! verdict, clouds — never the pod spec, environment values or tokens) and serialize.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::core::DynamicObject;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::config::WebhookConfig;
use crate::dynamic::Dynamic;
use crate::handler::{
    admit, admit_with, pod_service_account, Inputs, Outcome, ServiceAccountState, Verdict,
};
use crate::metrics::Metrics;
use crate::patch::Cloud;
use crate::sa_cache::Lookup;
use crate::sa_cache::ServiceAccountSource;

/// Largest AdmissionReview body accepted (the API server caps objects at 3 MiB).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

type Body = Full<Bytes>;

/// Everything a request needs.
#[derive(Debug)]
pub struct App<S> {
    /// Handler configuration.
    pub config: WebhookConfig,
    /// ServiceAccount lookup.
    pub service_accounts: S,
    /// Metrics sink.
    pub metrics: Arc<Metrics>,
    /// ConfigMap roles and Pod Identity associations.
    pub dynamic: Arc<Dynamic>,
    /// Serve `/debug/alpha/deny` and `/debug/alpha/500`.
    pub debugging_handlers: bool,
}

impl<S: ServiceAccountSource> App<S> {
    /// An app with no dynamic inputs and no debugging handlers.
    pub fn new(config: WebhookConfig, service_accounts: S, metrics: Arc<Metrics>) -> Self {
        Self {
            config,
            service_accounts,
            metrics,
            dynamic: Arc::new(Dynamic::default()),
            debugging_handlers: false,
        }
    }

    /// Answer one AdmissionReview body with a serialized AdmissionReview.
    pub async fn review(&self, body: &[u8]) -> Vec<u8> {
        let started = Instant::now();
        let outcome = match serde_json::from_slice::<AdmissionReview<DynamicObject>>(body)
            .map_err(|e| e.to_string())
            .and_then(|r| {
                let req: Result<AdmissionRequest<DynamicObject>, _> = r.try_into();
                req.map_err(|_| "AdmissionReview without request".to_string())
            }) {
            Ok(req) => self.decide(&req).await,
            Err(e) => {
                warn!(error = %e, "unreadable AdmissionReview");
                Outcome {
                    response: AdmissionResponse::invalid(format!(
                        "unreadable AdmissionReview: {e}"
                    )),
                    verdict: Verdict::Invalid,
                    mutated: Default::default(),
                }
            }
        };
        self.metrics.admission(
            outcome.verdict,
            started.elapsed().as_secs_f64(),
            outcome.mutated.iter().copied(),
        );
        encode_review(outcome.response).unwrap_or_else(|e| {
            warn!(error = %e, "serializing AdmissionReview failed");
            b"{}".to_vec()
        })
    }

    async fn decide(&self, req: &AdmissionRequest<DynamicObject>) -> Outcome {
        let Some((namespace, sa_name)) = pod_service_account(req) else {
            return admit(req, &self.config, None);
        };
        let started = Instant::now();
        let lookup = self.service_accounts.lookup(&namespace, &sa_name).await;
        self.metrics.lookup(lookup.source());
        let state = match &lookup {
            Lookup::Cached(m) | Lookup::Fetched(m) => ServiceAccountState::Found(m),
            Lookup::NotFound => ServiceAccountState::NotFound,
            Lookup::Failed(e) => ServiceAccountState::Failed(e),
        };
        let role = self.dynamic.role(&namespace, &sa_name);
        let associated = self.dynamic.associated(&namespace, &sa_name);
        let inputs = Inputs {
            service_account: state,
            config_map_role: role.as_ref(),
            pod_identity_association: associated,
        };
        let outcome = admit_with(req, &self.config, &inputs);
        let compat = &self.metrics.compat;
        if lookup.metadata().is_none() {
            compat.missing_service_account();
        }
        if outcome.mutated.contains(&Cloud::Aws) {
            compat.pod(if associated {
                "container_credentials"
            } else {
                "sts_web_identity"
            });
        }
        let azure_pod = req
            .object
            .as_ref()
            .and_then(|o| o.metadata.labels.as_ref())
            .and_then(|l| l.get(crate::azure::USE_LABEL))
            .is_some_and(|v| v == "true");
        if azure_pod && self.config.clouds.contains(&Cloud::Azure) {
            compat.azure_request(&namespace, started.elapsed().as_secs_f64());
        }
        let pod = req
            .object
            .as_ref()
            .and_then(|o| o.metadata.name.clone().or(o.metadata.generate_name.clone()))
            .unwrap_or_default();
        let clouds: Vec<&str> = outcome.mutated.iter().map(|c: &Cloud| c.as_str()).collect();
        let message =
            (!outcome.response.allowed).then_some(outcome.response.result.message.as_str());
        match outcome.verdict {
            Verdict::Allowed => debug!(
                uid = %req.uid, %namespace, %pod, service_account = %sa_name,
                service_account_source = lookup.source(), "pod admitted unchanged"
            ),
            _ => info!(
                uid = %req.uid, %namespace, %pod, service_account = %sa_name,
                service_account_source = lookup.source(), verdict = outcome.verdict.as_str(),
                clouds = ?clouds, reason = message, "pod admission"
            ),
        }
        outcome
    }
}

#[derive(serde::Serialize)]
struct OutReview<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    response: OutResponse<'a>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct OutResponse<'a> {
    uid: &'a str,
    allowed: bool,
    status: &'a kube::core::Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty")]
    audit_annotations: &'a std::collections::HashMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<&'a Vec<String>>,
}

/// Serialize `response` as an AdmissionReview, in one pass. The patch is base64, Kubernetes'
/// encoding of `[]byte` (kube-core would write it as an array of numbers, one JSON value per
/// byte, which was the largest single cost of an admission).
pub fn encode_review(response: AdmissionResponse) -> Result<Vec<u8>, serde_json::Error> {
    let out = OutReview {
        api_version: if response.types.api_version.is_empty() {
            "admission.k8s.io/v1"
        } else {
            &response.types.api_version
        },
        kind: "AdmissionReview",
        response: OutResponse {
            uid: &response.uid,
            allowed: response.allowed,
            status: &response.result,
            patch: response
                .patch
                .as_ref()
                .map(|p| base64::engine::general_purpose::STANDARD.encode(p)),
            patch_type: response.patch.as_ref().map(|_| "JSONPatch"),
            audit_annotations: &response.audit_annotations,
            warnings: response.warnings.as_ref(),
        },
    };
    serde_json::to_vec(&out)
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn route<S: ServiceAccountSource>(
    req: Request<Incoming>,
    app: Arc<App<S>>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let verb = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let response = route_inner(req, &app).await?;
    app.metrics.compat.http(
        &verb,
        &path,
        response.status().as_u16(),
        started.elapsed().as_secs_f64() * 1e6,
    );
    Ok(response)
}

async fn route_inner<S: ServiceAccountSource>(
    req: Request<Incoming>,
    app: &Arc<App<S>>,
) -> Result<Response<Body>, Infallible> {
    match (req.method(), req.uri().path()) {
        (&Method::POST, "/debug/alpha/deny") if app.debugging_handlers => {
            let body = Limited::new(req.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let uid = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    v.pointer("/request/uid")
                        .and_then(|u| u.as_str())
                        .map(String::from)
                })
                .unwrap_or_default();
            let review = serde_json::json!({
                "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "response": {"uid": uid, "allowed": false,
                             "status": {"message": "Test deny message"}}
            });
            let mut r = Response::new(Full::new(Bytes::from(review.to_string())));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            Ok(r)
        }
        (_, "/debug/alpha/500") if app.debugging_handlers => {
            Ok(text(StatusCode::INTERNAL_SERVER_ERROR, "test error\n"))
        }
        (&Method::GET, "/healthz" | "/readyz") => Ok(text(StatusCode::OK, "ok")),
        (&Method::POST, "/mutate" | "/mutate-v1-pod") => {
            let json = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            if !json {
                return Ok(text(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "expected Content-Type: application/json",
                ));
            }
            let body = match Limited::new(req.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
            {
                Ok(b) => b.to_bytes(),
                Err(_) => {
                    return Ok(text(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body too large or unreadable",
                    ))
                }
            };
            let out = app.review(&body).await;
            let mut r = Response::new(Full::new(Bytes::from(out)));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            Ok(r)
        }
        _ => Ok(text(StatusCode::NOT_FOUND, "not found")),
    }
}

/// Whether the webhook can serve admissions (a certificate is available).
pub type Readiness = Arc<dyn Fn() -> bool + Send + Sync>;

/// Renders the ServiceAccount cache as JSON (`/debug/alpha/cache`).
pub type DebugDump = Arc<dyn Fn() -> String + Send + Sync>;

/// Empties the ServiceAccount cache (`/debug/alpha/cache/clear`).
pub type DebugClear = Arc<dyn Fn() + Send + Sync>;

/// What a plain-HTTP listener serves.
#[derive(Clone)]
pub struct PlainRoutes {
    /// `/debug/alpha/cache` when set (`--enable-debugging-handlers`, metrics port).
    pub debug_cache: Option<DebugDump>,
    /// `/debug/alpha/cache/clear` when set (any method, as the EKS webhook).
    pub debug_clear: Option<DebugClear>,
    /// `/metrics` when set.
    pub metrics: Option<Arc<Metrics>>,
    /// `/healthz` and `/readyz`.
    pub health: bool,
    /// Readiness for `/readyz`.
    pub ready: Readiness,
}

impl std::fmt::Debug for PlainRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainRoutes")
            .field("metrics", &self.metrics.is_some())
            .field("health", &self.health)
            .finish()
    }
}

async fn plain_route(
    req: Request<Incoming>,
    routes: PlainRoutes,
) -> Result<Response<Body>, Infallible> {
    if let (&Method::GET, "/debug/alpha/cache", Some(dump)) =
        (req.method(), req.uri().path(), &routes.debug_cache)
    {
        let mut r = Response::new(Full::new(Bytes::from(dump())));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        return Ok(r);
    }
    if let ("/debug/alpha/cache/clear", Some(clear)) = (req.uri().path(), &routes.debug_clear) {
        clear();
        return Ok(Response::new(Full::new(Bytes::new())));
    }
    match (req.method(), req.uri().path(), &routes.metrics) {
        (&Method::GET, "/metrics", Some(metrics)) => {
            let mut r = Response::new(Full::new(Bytes::from(metrics.render())));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            Ok(r)
        }
        (&Method::GET, "/healthz", _) if routes.health => Ok(text(StatusCode::OK, "ok")),
        (&Method::GET, "/readyz", _) if routes.health => Ok(if (routes.ready)() {
            text(StatusCode::OK, "ok")
        } else {
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "no serving certificate yet",
            )
        }),
        _ => Ok(text(StatusCode::NOT_FOUND, "not found")),
    }
}

/// Serve the admission endpoint over TLS on `listener` until `shutdown` resolves, then drain
/// open connections for up to 10 s.
pub async fn serve_tls<S: ServiceAccountSource>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Arc<App<S>>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(error) => {
                    warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            {
                Ok(Ok(s)) => s,
                Ok(Err(error)) => {
                    debug!(%error, %peer, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let service = service_fn(move |req| route(req, app.clone()));
            let conn = builder.serve_connection(TokioIo::new(tls), service);
            if let Err(error) = watcher.watch(conn.into_owned()).await {
                debug!(%error, %peer, "connection closed with error");
            }
        });
    }
    drain(graceful).await;
}

/// Serve `/metrics` and `/healthz` over plain HTTP until `shutdown` resolves.
pub async fn serve_metrics(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    let routes = PlainRoutes {
        metrics: Some(metrics),
        health: true,
        ready: Arc::new(|| true),
        debug_cache: None,
        debug_clear: None,
    };
    serve_plain(listener, routes, shutdown).await;
}

/// Serve `routes` over plain HTTP until `shutdown` resolves.
pub async fn serve_plain(
    listener: TcpListener,
    routes: PlainRoutes,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let routes = routes.clone();
        let service = service_fn(move |req| plain_route(req, routes.clone()));
        let conn = builder
            .serve_connection(TokioIo::new(tcp), service)
            .into_owned();
        let fut = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(error) = fut.await {
                debug!(%error, "plain HTTP connection closed with error");
            }
        });
    }
    drain(graceful).await;
}

async fn drain(graceful: GracefulShutdown) {
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("connections still open after {DRAIN_TIMEOUT:?}; closing");
    }
}
