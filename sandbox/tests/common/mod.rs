//! The HTTPS client the tests talk to a fake Elasticsearch with, as the plugin does: TLS
//! verified against a CA given in PEM, HTTP/1.1, the `elastic` user's basic credentials.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};

/// A connection to send requests on.
pub type Es = SendRequest<Full<Bytes>>;

/// A client configuration that trusts the certificates in `ca_pem`.
pub fn client_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for p in x509_parser::pem::Pem::iter_from_buffer(ca_pem.as_bytes()) {
        roots
            .add(CertificateDer::from(p.unwrap().contents))
            .unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(cfg)
}

/// HTTP/1.1 over TLS on `io`, the server verified as `server_name` against `ca_pem`; the TLS
/// handshake's error, if it fails.
pub async fn https<S>(io: S, ca_pem: &str, server_name: &str) -> std::io::Result<Es>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    let tls = tokio_rustls::TlsConnector::from(client_config(ca_pem))
        .connect(name, io)
        .await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    Ok(sender)
}

/// `method path` as user `elastic` with `password`, with header `Host: host` and `body` as
/// JSON, sent once the connection is ready: the status, the headers and the body (`Null` when
/// it is not JSON).
pub async fn request(
    es: &mut Es,
    method: &str,
    host: &str,
    path: &str,
    password: &str,
    body: Option<&Value>,
) -> (u16, http::HeaderMap, Value) {
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("elastic:{password}"));
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", host)
        .header("authorization", format!("Basic {auth}"));
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let bytes = body.map(Value::to_string).unwrap_or_default();
    es.ready().await.unwrap();
    let resp = es
        .send_request(req.body(Full::new(Bytes::from(bytes))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}
