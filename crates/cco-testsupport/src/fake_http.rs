//! A tiny HTTP/1.1 server for the stateful cloud fakes (IBM IAM, GCP IAM, Azure Resource Manager):
//! the services for which no emulator exists.
//!
//! Data model: a fake is a synchronous function from a fully read [`Request`] (method, percent-decoded
//! path segments, query, lower-cased headers, body) to a [`Response`]; it keeps its state behind its
//! own mutex. [`FakeServer`] runs it on a loopback port in a thread of its own (with its own tokio
//! runtime), so the same fake serves synchronous tests that run the `ccoctl` binary and async tests
//! alike. Every request is recorded with the status it was answered with, so a test can assert that
//! a dry run made no call at all, or count the writes that succeeded; [`FakeServer::exchanges`] keeps
//! the bodies too, for the schema checks against the official API descriptions.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

/// A request as the fakes see it.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Upper-case method, e.g. `GET`.
    pub method: String,
    /// The raw path, e.g. `/v1/projects/p/serviceAccounts/a%40b`.
    pub path: String,
    /// Percent-decoded, non-empty path segments.
    pub segments: Vec<String>,
    /// Decoded query parameters (the last value wins).
    pub query: BTreeMap<String, String>,
    /// Headers with lower-case names.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    /// A header value by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// A query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// The body as JSON (`null` when empty).
    pub fn json(&self) -> Result<serde_json::Value, String> {
        if self.body.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| format!("request body is not JSON: {e}"))
    }

    /// The body as `application/x-www-form-urlencoded` fields.
    pub fn form(&self) -> BTreeMap<String, String> {
        url::form_urlencoded::parse(&self.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// The bearer token of the `Authorization` header.
    pub fn bearer(&self) -> Option<&str> {
        self.header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
    }

    /// The path segments as `&str`s, for matching.
    pub fn segs(&self) -> Vec<&str> {
        self.segments.iter().map(String::as_str).collect()
    }
}

/// A response.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, v: &serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(v).unwrap_or_default(),
        }
    }

    /// An empty response.
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// The sentinel a proxying fake returns for requests its upstream serves.
    pub fn forward() -> Response {
        Response::empty(0)
    }

    /// Like [`Response::forward`], to another path (and query) of the upstream.
    pub fn forward_to(path_and_query: &str) -> Response {
        Response::empty(0).with_header(FORWARD_PATH, path_and_query)
    }

    /// Adds a header.
    pub fn with_header(mut self, k: &str, v: &str) -> Response {
        self.headers.push((k.into(), v.into()));
        self
    }
}

const FORWARD_PATH: &str = "x-fake-forward-path";

/// What a fake does with a request.
pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// Told the status of every forwarded request, so a proxying fake can follow the upstream's state.
pub type Observer = Arc<dyn Fn(&Request, u16) + Send + Sync>;

/// Where [`Response::forward`]ed requests go, and who hears of their outcome.
#[derive(Clone)]
pub struct Upstream {
    /// `http://host:port` of the upstream server.
    pub endpoint: String,
    pub observer: Observer,
}

/// One request and its answer, bodies included (what the schema checks validate).
#[derive(Clone, Debug)]
pub struct Exchange {
    /// Upper-case method.
    pub method: String,
    /// The raw path (percent-encoded as sent).
    pub path: String,
    /// The raw query string (empty when none).
    pub query: String,
    pub request_body: Vec<u8>,
    pub status: u16,
    pub response_body: Vec<u8>,
}

type Log = Arc<Mutex<Vec<(String, u16)>>>;
type ExchangeLog = Arc<Mutex<Vec<Exchange>>>;

/// A fake running on `127.0.0.1`; stopped on drop.
pub struct FakeServer {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    log: Log,
    exchanges: ExchangeLog,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeServer {
    /// Starts serving `handler` on a free loopback port.
    pub fn start(handler: Handler) -> anyhow::Result<FakeServer> {
        Self::start_with(handler, None)
    }

    /// Like [`FakeServer::start`], forwarding the requests `handler` answers with
    /// [`Response::forward`] to `upstream`.
    pub fn start_with(handler: Handler, upstream: Option<Upstream>) -> anyhow::Result<FakeServer> {
        Self::start_full(handler, upstream, None)
    }

    /// Like [`FakeServer::start_with`], served over TLS with `tls` when given (the endpoint is then
    /// `https://127.0.0.1:<port>`).
    pub fn start_full(
        handler: Handler,
        upstream: Option<Upstream>,
        tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    ) -> anyhow::Result<FakeServer> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding a port")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let log: Log = Arc::new(Mutex::new(Vec::new()));
        let log2 = log.clone();
        let exchanges: ExchangeLog = Arc::new(Mutex::new(Vec::new()));
        let exchanges2 = exchanges.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fake-http-{port}"))
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    loop {
                        tokio::select! {
                            _ = &mut rx => break,
                            accepted = listener.accept() => {
                                let Ok((stream, _)) = accepted else { continue };
                                let handler = handler.clone();
                                let log = (log2.clone(), exchanges2.clone());
                                let upstream = upstream.clone();
                                let acceptor = acceptor.clone();
                                tokio::spawn(async move {
                                    let svc = hyper::service::service_fn(move |req| {
                                        let handler = handler.clone();
                                        let log = log.clone();
                                        let upstream = upstream.clone();
                                        async move { Ok::<_, Infallible>(serve(req, &handler, upstream.as_ref(), &log.0, &log.1).await) }
                                    });
                                    let builder = hyper::server::conn::http1::Builder::new();
                                    match acceptor {
                                        Some(a) => {
                                            let Ok(tls) = a.accept(stream).await else { return };
                                            let _ = builder
                                                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                                                .await;
                                        }
                                        None => {
                                            let _ = builder
                                                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                                                .await;
                                        }
                                    }
                                });
                            }
                        }
                    }
                });
            })
            .context("spawning the fake's thread")?;
        Ok(FakeServer {
            endpoint: format!("{scheme}://127.0.0.1:{port}"),
            log,
            exchanges,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// Every request served so far, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.calls().into_iter().map(|(r, _)| r).collect()
    }

    /// Every request served so far with the status it was answered with.
    pub fn calls(&self) -> Vec<(String, u16)> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Every request served so far with its answer, bodies included.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    req: hyper::Request<hyper::body::Incoming>,
    handler: &Handler,
    upstream: Option<&Upstream>,
    log: &Mutex<Vec<(String, u16)>>,
    exchanges: &Mutex<Vec<Exchange>>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let segments = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let query = url::form_urlencoded::parse(raw_query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let headers = parts
        .headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_ascii_lowercase(),
                v.to_str().ok()?.to_string(),
            ))
        })
        .collect();
    let request = Request {
        method: parts.method.as_str().to_string(),
        path: path.clone(),
        segments,
        query,
        headers,
        body,
    };
    let line = if raw_query.is_empty() {
        format!("{} {path}", request.method)
    } else {
        format!("{} {path}?{raw_query}", request.method)
    };
    let mut resp = handler(&request);
    if resp.status == 0 {
        resp = match upstream {
            Some(u) => {
                let target = resp
                    .headers
                    .iter()
                    .find(|(k, _)| k == FORWARD_PATH)
                    .map(|(_, v)| v.clone());
                forward(u, &request, &raw_query, target.as_deref()).await
            }
            None => Response::json(
                501,
                &serde_json::json!({"error": {"code": 501, "message": "no upstream"}}),
            ),
        };
    }
    if let Ok(mut l) = log.lock() {
        l.push((line, resp.status));
    }
    if let Ok(mut l) = exchanges.lock() {
        l.push(Exchange {
            method: request.method.clone(),
            path: request.path.clone(),
            query: raw_query.clone(),
            request_body: request.body.clone(),
            status: resp.status,
            response_body: resp.body.clone(),
        });
    }
    let mut b = hyper::Response::builder().status(resp.status);
    for (k, v) in &resp.headers {
        b = b.header(k, v);
    }
    b.body(Full::new(Bytes::from(resp.body)))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
}

async fn forward(u: &Upstream, r: &Request, raw_query: &str, target: Option<&str>) -> Response {
    let url = if let Some(t) = target {
        format!("{}{t}", u.endpoint)
    } else if raw_query.is_empty() {
        format!("{}{}", u.endpoint, r.path)
    } else {
        format!("{}{}?{raw_query}", u.endpoint, r.path)
    };
    let headers: Vec<(&str, &str)> = r
        .headers
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "content-type" | "authorization" | "accept"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    match raw(&r.method, &url, &headers, &r.body).await {
        Ok((status, hdrs, body)) => {
            (u.observer)(r, status);
            let mut resp = Response {
                status,
                headers: Vec::new(),
                body,
            };
            if let Some(ct) = hdrs.get("content-type") {
                resp.headers.push(("content-type".into(), ct.clone()));
            }
            resp
        }
        Err(e) => Response::json(
            502,
            &serde_json::json!({"error": {"code": 502, "message": format!("upstream: {e}")}}),
        ),
    }
}

/// A small HTTP/1.1 client for the fakes' own raw-HTTP tests: `(status, headers, body)`.
pub async fn raw(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<(u16, BTreeMap<String, String>, Vec<u8>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let u = url::Url::parse(url)?;
    let host = u.host_str().context("host")?.to_string();
    let port = u.port_or_known_default().context("port")?;
    let mut target = u.path().to_string();
    if let Some(q) = u.query() {
        target.push('?');
        target.push_str(q);
    }
    let mut s = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no header end")?;
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut rest = buf[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .context("status line")?;
    let hdrs: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if hdrs.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        rest = dechunk(&rest);
    }
    Ok((status, hdrs, rest))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
        if n == 0 || b.len() < i + 2 + n {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + n]);
        b = &b[(i + 4 + n).min(b.len())..];
    }
    out
}
