//! A small HTTPS client for tests: mutual TLS with a sandbox user's certificate, HTTP/1.1 or
//! h2, one connection per request. Not a Kubernetes client: it sends exactly what it is given.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;

use crate::pki::{self, CertKey};

/// Raw answer of the API server.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ApiResponse {
    /// The body as JSON (`Value::Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// `reason` of a `Status` body.
    pub fn reason(&self) -> String {
        self.json()
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    }

    pub fn message(&self) -> String {
        self.json()
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    }
}

/// A streamed answer of the API server (a watch): one JSON document per line.
pub struct ApiStream {
    pub status: u16,
    pub headers: HeaderMap,
    body: Incoming,
    buf: Vec<u8>,
    _connection: Box<dyn std::any::Any + Send>,
}

impl ApiStream {
    /// The next line of the body as JSON; `None` once the server has ended the body.
    pub async fn next_json(&mut self) -> Result<Option<Value>> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Ok(Some(
                    serde_json::from_slice(&line).context("a line of the stream is not JSON")?,
                ));
            }
            match self.body.frame().await {
                None => {
                    if self.buf.iter().all(u8::is_ascii_whitespace) {
                        return Ok(None);
                    }
                    let rest = std::mem::take(&mut self.buf);
                    return Ok(Some(serde_json::from_slice(&rest)?));
                }
                Some(frame) => {
                    if let Ok(data) = frame?.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }

    /// [`Self::next_json`], failing when nothing comes within `wait`.
    pub async fn next_json_within(&mut self, wait: std::time::Duration) -> Result<Option<Value>> {
        tokio::time::timeout(wait, self.next_json())
            .await
            .map_err(|_| anyhow!("nothing streamed within {wait:?}"))?
    }
}

/// Client for one cluster as one user.
#[derive(Clone)]
pub struct ApiClient {
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    h2: bool,
}

impl ApiClient {
    pub(crate) fn new(url: &str, ca_pem: &str, identity: &CertKey, h2: bool) -> Result<ApiClient> {
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow!("no port in {url}"))?;
        Ok(ApiClient {
            port,
            tls: Arc::new(pki::client_config(ca_pem, identity, h2)?),
            h2,
        })
    }

    /// Sends one request. `path` includes the query string.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<ApiResponse> {
        let (resp, _connection) = self.send(method, path, content_type, body).await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(ApiResponse {
            status,
            headers,
            body,
        })
    }

    /// `GET path` whose body is read as it comes (a watch): the status and headers at once,
    /// then [`ApiStream::next_json`] line by line.
    pub async fn stream(&self, path: &str) -> Result<ApiStream> {
        let (resp, connection) = self.send("GET", path, None, None).await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        Ok(ApiStream {
            status,
            headers,
            body: resp.into_body(),
            buf: Vec::new(),
            _connection: connection,
        })
    }

    /// The response head; the body is still to be read. The second value keeps the
    /// connection's request sender alive as long as the body is read.
    async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<(http::Response<Incoming>, Box<dyn std::any::Any + Send>)> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .context("connecting to the sandbox API server")?;
        let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
        let server_name =
            rustls::pki_types::ServerName::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]).into());
        let tls = connector
            .connect(server_name, tcp)
            .await
            .context("TLS handshake")?;
        let io = TokioIo::new(tls);
        let mut builder = Request::builder()
            .method(Method::from_bytes(method.as_bytes())?)
            .uri(format!("https://127.0.0.1:{}{path}", self.port))
            .header("accept", "application/json");
        if let Some(ct) = content_type {
            builder = builder.header("content-type", ct);
        }
        let req = builder.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        if self.h2 {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(conn);
            sender.ready().await?;
            let resp = sender.send_request(req).await?;
            Ok((resp, Box::new(sender)))
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
            tokio::spawn(conn);
            sender.ready().await?;
            let resp = sender.send_request(req).await?;
            Ok((resp, Box::new(sender)))
        }
    }

    pub async fn get(&self, path: &str) -> Result<ApiResponse> {
        self.request("GET", path, None, None).await
    }

    /// Sends `body` as JSON with the content type `content_type`.
    async fn send_json(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &Value,
    ) -> Result<ApiResponse> {
        let bytes = serde_json::to_vec(body)?;
        self.request(method, path, Some(content_type), Some(bytes))
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<ApiResponse> {
        self.send_json("POST", path, "application/json", body).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<ApiResponse> {
        self.send_json("PUT", path, "application/json", body).await
    }

    /// PATCH with an explicit content type (`application/merge-patch+json`...).
    pub async fn patch(&self, path: &str, content_type: &str, body: &Value) -> Result<ApiResponse> {
        self.send_json("PATCH", path, content_type, body).await
    }

    pub async fn delete(&self, path: &str) -> Result<ApiResponse> {
        self.request("DELETE", path, None, None).await
    }
}
