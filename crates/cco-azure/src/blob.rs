//! The Blob service with Shared Key authorization: just what the issuer needs (create a public
//! container, put and get a blob, delete a container).
//!
//! The account name used in signatures is read from the endpoint: the first path segment for a
//! path-style endpoint (`http://127.0.0.1:10000/devstoreaccount1/`, the emulator's form), otherwise
//! the first label of the host (`https://acct.blob.core.windows.net/`).

use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::AzureError;

const VERSION: &str = "2021-12-02";

/// The header that sets a container's anonymous access level.
const PUBLIC_ACCESS_HEADER: &str = "x-ms-blob-public-access";
/// The issuer container's anonymous access level, the reference tool's (`PublicAccessContainer`).
pub const PUBLIC_ACCESS: &str = cco_core::azure::CONTAINER_PUBLIC_ACCESS;

/// The content type of the uploaded issuer documents: the reference tool's blob client sets none,
/// so the Blob service stores its default.
pub const ISSUER_DOCUMENT_CONTENT_TYPE: &str = "application/octet-stream";

/// A Blob service client for one account.
pub struct BlobClient {
    http: reqwest::Client,
    endpoint: url::Url,
    account: String,
    key: Vec<u8>,
}

/// The account name in a blob endpoint.
pub fn account_of(endpoint: &url::Url) -> Option<String> {
    match endpoint.path_segments().and_then(|mut s| s.next()) {
        Some(first) if !first.is_empty() => Some(first.to_string()),
        _ => endpoint
            .host_str()
            .and_then(|h| h.split('.').next())
            .map(str::to_string),
    }
}

impl BlobClient {
    /// A client for `endpoint` (the account's `primaryEndpoints.blob`) with base64 `key`.
    pub fn new(http: reqwest::Client, endpoint: &str, key: &str) -> Result<BlobClient, AzureError> {
        let mut e = endpoint.to_string();
        if !e.ends_with('/') {
            e.push('/');
        }
        let endpoint = url::Url::parse(&e)
            .map_err(|err| AzureError::Local(format!("bad blob endpoint {e}: {err}")))?;
        let account = account_of(&endpoint)
            .ok_or_else(|| AzureError::Local(format!("no account name in blob endpoint {e}")))?;
        let key = STANDARD
            .decode(key)
            .map_err(|_| AzureError::Local("the storage account key is not base64".into()))?;
        Ok(BlobClient {
            http,
            endpoint,
            account,
            key,
        })
    }

    fn sign(&self, method: &str, url: &url::Url, headers: &[(&str, String)], len: usize) -> String {
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        let mut ms: Vec<(String, &str)> = headers
            .iter()
            .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-ms-"))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
            .collect();
        ms.sort();
        let canon_headers: String = ms.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let mut resource = format!("/{}{}", self.account, url.path());
        let mut q: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
            .collect();
        q.sort();
        for (k, v) in q {
            resource.push_str(&format!("\n{k}:{v}"));
        }
        let length = if len == 0 {
            String::new()
        } else {
            len.to_string()
        };
        let sts = format!(
            "{method}\n{}\n{}\n{length}\n{}\n{}\n\n{}\n{}\n{}\n{}\n{}\n{canon_headers}{resource}",
            get("content-encoding"),
            get("content-language"),
            get("content-md5"),
            get("content-type"),
            get("if-modified-since"),
            get("if-match"),
            get("if-none-match"),
            get("if-unmodified-since"),
            get("range"),
        );
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.key);
        let sig = aws_lc_rs::hmac::sign(&key, sts.as_bytes());
        format!(
            "SharedKey {}:{}",
            self.account,
            STANDARD.encode(sig.as_ref())
        )
    }

    async fn send(
        &self,
        op: &str,
        method: reqwest::Method,
        path: &str,
        headers: Vec<(&str, String)>,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), AzureError> {
        self.send_full(op, method, path, headers, body)
            .await
            .map(|(status, _, body)| (status, body))
    }

    /// [`Self::send`], also returning the response headers.
    async fn send_full(
        &self,
        op: &str,
        method: reqwest::Method,
        path: &str,
        mut headers: Vec<(&str, String)>,
        body: Vec<u8>,
    ) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>), AzureError> {
        let url = self
            .endpoint
            .join(path)
            .map_err(|e| AzureError::Local(format!("bad blob path {path}: {e}")))?;
        headers.push(("x-ms-date", httpdate::fmt_http_date(SystemTime::now())));
        headers.push(("x-ms-version", VERSION.to_string()));
        let auth = self.sign(method.as_str(), &url, &headers, body.len());
        let mut req = self
            .http
            .request(method, url.clone())
            .header("authorization", auth);
        for (k, v) in &headers {
            req = req.header(*k, v);
        }
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| AzureError::Transport {
                op: op.to_string(),
                url: url.to_string(),
                message: e.to_string(),
            })?;
        let status = resp.status().as_u16();
        let code = resp
            .headers()
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let resp_headers = resp.headers().clone();
        let bytes = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        if status >= 400 {
            return Err(AzureError::Api {
                op: op.to_string(),
                status,
                code,
                message: String::from_utf8_lossy(&bytes).chars().take(400).collect(),
            });
        }
        Ok((status, resp_headers, bytes))
    }

    /// The anonymous access level of a container (`x-ms-blob-public-access`: `blob` or
    /// `container`, `None` when private); `Ok(None)` when the container does not exist.
    pub async fn container_public_access(
        &self,
        container: &str,
    ) -> Result<Option<Option<String>>, AzureError> {
        match self
            .send_full(
                &format!("reading blob container {container}"),
                reqwest::Method::GET,
                &format!("{container}?restype=container"),
                Vec::new(),
                Vec::new(),
            )
            .await
        {
            Ok((_, h, _)) => Ok(Some(
                h.get("x-ms-blob-public-access")
                    .and_then(|v| v.to_str().ok())
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned),
            )),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates `container` with container-level anonymous read access (`x-ms-blob-public-access:
    /// container`: blobs and the container's listing, as the reference tool's `PublicAccessContainer`
    /// sets it), or makes an existing one so.
    pub async fn ensure_public_container(&self, container: &str) -> Result<bool, AzureError> {
        let op = format!("creating blob container {container}");
        match self
            .send(
                &op,
                reqwest::Method::PUT,
                &format!("{container}?restype=container"),
                vec![(PUBLIC_ACCESS_HEADER, PUBLIC_ACCESS.into())],
                Vec::new(),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ContainerAlreadyExists") => {
                self.set_public_access(container, Some(PUBLIC_ACCESS))
                    .await?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Sets the anonymous access level of an existing container (`blob`, `container`, or `None`:
    /// private). The container's stored access policies are cleared.
    pub async fn set_public_access(
        &self,
        container: &str,
        level: Option<&str>,
    ) -> Result<(), AzureError> {
        let headers = level
            .map(|l| vec![(PUBLIC_ACCESS_HEADER, l.to_string())])
            .unwrap_or_default();
        self.send(
            &format!("setting the public access of blob container {container}"),
            reqwest::Method::PUT,
            &format!("{container}?restype=container&comp=acl"),
            headers,
            Vec::new(),
        )
        .await?;
        Ok(())
    }

    /// Uploads a block blob.
    pub async fn put_blob(
        &self,
        container: &str,
        name: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<(), AzureError> {
        self.put_blob_tagged(container, name, content_type, body, &[])
            .await
    }

    /// Uploads a block blob carrying blob index `tags` (as the reference tool tags the issuer
    /// documents with the resource tags).
    pub async fn put_blob_tagged(
        &self,
        container: &str,
        name: &str,
        content_type: &str,
        body: &[u8],
        tags: &[(String, String)],
    ) -> Result<(), AzureError> {
        let mut headers = vec![
            ("content-type", content_type.to_string()),
            ("x-ms-blob-type", "BlockBlob".into()),
        ];
        if !tags.is_empty() {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in tags {
                q.append_pair(k, v);
            }
            headers.push(("x-ms-tags", q.finish()));
        }
        self.send(
            &format!("uploading {container}/{name}"),
            reqwest::Method::PUT,
            &format!("{container}/{name}"),
            headers,
            body.to_vec(),
        )
        .await
        .map(|_| ())
    }

    /// The blob index tags of a blob, in the order the service lists them.
    pub async fn get_blob_tags(
        &self,
        container: &str,
        name: &str,
    ) -> Result<Vec<(String, String)>, AzureError> {
        let (_, body) = self
            .send(
                &format!("reading the tags of {container}/{name}"),
                reqwest::Method::GET,
                &format!("{container}/{name}?comp=tags"),
                vec![],
                Vec::new(),
            )
            .await?;
        Ok(parse_tags_xml(&String::from_utf8_lossy(&body)))
    }

    /// Downloads a blob; `None` when it or its container does not exist.
    pub async fn get_blob(
        &self,
        container: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, AzureError> {
        match self
            .send(
                &format!("reading {container}/{name}"),
                reqwest::Method::GET,
                &format!("{container}/{name}"),
                Vec::new(),
                Vec::new(),
            )
            .await
        {
            Ok((_, b)) => Ok(Some(b)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes a container; false when it did not exist.
    pub async fn delete_container(&self, container: &str) -> Result<bool, AzureError> {
        match self
            .send(
                &format!("deleting blob container {container}"),
                reqwest::Method::DELETE,
                &format!("{container}?restype=container"),
                Vec::new(),
                Vec::new(),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<(&'a str, &'a str)> {
    let start = s.find(open)? + open.len();
    let end = start + s[start..].find(close)?;
    Some((&s[start..end], &s[end + close.len()..]))
}

/// `<Tags><TagSet><Tag><Key>k</Key><Value>v</Value></Tag>…</TagSet></Tags>` as pairs.
fn parse_tags_xml(xml: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some((tag, after)) = between(rest, "<Tag>", "</Tag>") {
        let key = between(tag, "<Key>", "</Key>").map(|(k, _)| xml_unescape(k));
        let value = between(tag, "<Value>", "</Value>").map(|(v, _)| xml_unescape(v));
        if let Some(k) = key {
            out.push((k, value.unwrap_or_default()));
        }
        rest = after;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_sets_parse() {
        let xml = "<?xml version=\"1.0\"?><Tags><TagSet><Tag><Key>a_b</Key><Value>owned</Value></Tag><Tag><Key>t</Key><Value>x&amp;y</Value></Tag></TagSet></Tags>";
        assert_eq!(
            parse_tags_xml(xml),
            vec![
                ("a_b".to_string(), "owned".to_string()),
                ("t".into(), "x&y".into())
            ]
        );
    }

    #[test]
    fn account_comes_from_the_path_or_the_host() {
        let u = |s: &str| url::Url::parse(s).expect("url");
        assert_eq!(
            account_of(&u("http://127.0.0.1:10000/devstoreaccount1/")).as_deref(),
            Some("devstoreaccount1")
        );
        assert_eq!(
            account_of(&u("https://acct.blob.core.windows.net/")).as_deref(),
            Some("acct")
        );
    }
}
