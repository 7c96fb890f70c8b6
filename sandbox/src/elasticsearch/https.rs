//! Serving an [`ElasticsearchNode`](super::ElasticsearchNode) over HTTPS (HTTP/1.1) on any byte
//! stream: a TCP socket, or the `DuplexStream` behind a pod port-forward.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream};
use tokio_rustls::TlsAcceptor;

use super::{ElasticsearchNode, EsRequest, EsResponse, RemoteWorld};

/// Something that answers Elasticsearch requests. Closures `Fn(EsRequest) -> EsResponse` qualify,
/// so the sandbox can lock its world however it likes.
pub trait EsBackend: Send + Sync {
    fn handle(&self, req: EsRequest) -> EsResponse;
}

impl<F> EsBackend for F
where
    F: Fn(EsRequest) -> EsResponse + Send + Sync,
{
    fn handle(&self, req: EsRequest) -> EsResponse {
        self(req)
    }
}

/// The simple backend: one node behind a mutex and a world.
///
/// The node stays locked while it consults the world, so a world whose `with_node` locks other
/// nodes' mutexes can deadlock when two clusters query each other at once. A sandbox with
/// several clusters should rather keep them all under one lock and take the asking node out of
/// the map while it handles a request (see the module docs of `crate::elasticsearch`).
pub struct SharedNode {
    pub node: Arc<Mutex<ElasticsearchNode>>,
    pub world: Arc<dyn RemoteWorld + Send + Sync>,
}

impl EsBackend for SharedNode {
    fn handle(&self, req: EsRequest) -> EsResponse {
        let mut node = self.node.lock().unwrap_or_else(|e| e.into_inner());
        node.handle(&req, &*self.world)
    }
}

/// Turn a hyper request (body collected) into an [`EsRequest`].
pub async fn es_request<B>(req: http::Request<B>) -> EsRequest
where
    B: hyper::body::Body,
{
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes().to_vec())
        .unwrap_or_default();
    let header = |name: http::header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    EsRequest {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        authorization: header(http::header::AUTHORIZATION),
        content_type: header(http::header::CONTENT_TYPE),
        body,
    }
}

/// Turn an [`EsResponse`] into a hyper response (`pretty` indents the JSON).
pub fn http_response(resp: EsResponse, pretty: bool) -> http::Response<Full<Bytes>> {
    let body = if resp.body.is_null() {
        Vec::new()
    } else if pretty {
        let mut v = serde_json::to_vec_pretty(&resp.body).unwrap_or_default();
        v.push(b'\n');
        v
    } else {
        serde_json::to_vec(&resp.body).unwrap_or_default()
    };
    let mut builder = http::Response::builder().status(resp.status);
    if !resp.body.is_null() {
        builder = builder.header(http::header::CONTENT_TYPE, "application/json");
    }
    for (name, value) in &resp.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| http::Response::new(Full::new(Bytes::new())))
}

async fn answer(
    req: http::Request<Incoming>,
    backend: Arc<dyn EsBackend>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let es = es_request(req).await;
    let pretty = es
        .params()
        .iter()
        .any(|(k, v)| k == "pretty" && v != "false");
    let resp = backend.handle(es);
    Ok(http_response(resp, pretty))
}

/// Terminate TLS on `stream` and serve HTTP/1.1 requests with `backend` until the client closes.
pub async fn serve_https<S>(
    stream: S,
    tls: Arc<rustls::ServerConfig>,
    backend: Arc<dyn EsBackend>,
) -> anyhow::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let tls_stream = TlsAcceptor::from(tls).accept(stream).await?;
    let service = service_fn(move |req| answer(req, backend.clone()));
    hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tls_stream), service)
        .await?;
    Ok(())
}

/// Serve HTTP/1.1 requests in clear text on `stream` with `backend` (an Elasticsearch whose HTTP
/// TLS is disabled) until the client closes.
pub async fn serve_http<S>(stream: S, backend: Arc<dyn EsBackend>) -> anyhow::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| answer(req, backend.clone()));
    hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await?;
    Ok(())
}

/// A new in-memory connection to an Elasticsearch that serves plain HTTP (see
/// [`connect_https`]).
pub fn connect_http(backend: Arc<dyn EsBackend>) -> DuplexStream {
    let (client, server) = tokio::io::duplex(256 * 1024);
    tokio::spawn(async move {
        let _ = serve_http(server, backend).await;
    });
    client
}

/// A new in-memory connection to an HTTPS Elasticsearch: returns the client end and serves the
/// other end on a spawned task. Must be called inside a Tokio runtime. This is what a
/// port-forward `connect(9200)` hands back.
pub fn connect_https(tls: Arc<rustls::ServerConfig>, backend: Arc<dyn EsBackend>) -> DuplexStream {
    let (client, server) = tokio::io::duplex(256 * 1024);
    tokio::spawn(async move {
        // A client that goes away mid-handshake is not an error worth reporting.
        let _ = serve_https(server, tls, backend).await;
    });
    client
}
