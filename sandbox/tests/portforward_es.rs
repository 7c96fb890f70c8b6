//! End to end: a real kube-rs client port-forwards to a pod through a small HTTPS API server that
//! routes `pods/{name}/portforward` to `upgrade_portforward`, then talks HTTPS to the fake
//! Elasticsearch through the tunnel, verifying the ES HTTP CA as the plugin will.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use remote_cluster_sandbox::elasticsearch::{
    ElasticsearchNode, EsBackend, EsHttpCerts, EsId, NoRemotes, SharedNode, connect_https,
};
use remote_cluster_sandbox::pki;
use remote_cluster_sandbox::portforward::{PortConnector, PortForwardTarget, upgrade_portforward};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpListener;

mod common;

const PASSWORD: &str = "changeme-123";

/// A CA and a server certificate for 127.0.0.1, for the test API server.
fn api_server_tls() -> (Vec<u8>, Arc<rustls::ServerConfig>) {
    let ca = pki::Ca::new("test-apiserver-ca").unwrap();
    let cert = ca.server_cert().unwrap();
    let tls = pki::http1_server_config(&[&cert.cert_der], &cert.key_der).unwrap();
    (ca.cert.cert_der.clone(), tls)
}

struct Harness {
    client: kube::Client,
    es_certs: EsHttpCerts,
}

/// Starts the API server and returns a kube client pointed at it.
async fn start() -> Harness {
    let es_certs = EsHttpCerts::generate("logs", "prod").unwrap();
    let node = ElasticsearchNode::new(EsId::new("east", "prod", "logs"), "8.15.0", PASSWORD);
    let backend: Arc<dyn EsBackend> = Arc::new(SharedNode {
        node: Arc::new(Mutex::new(node)),
        world: Arc::new(NoRemotes),
    });
    let es_tls = es_certs.server_config().unwrap();
    let connect: PortConnector = Arc::new(move |port| {
        (port == 9200).then(|| connect_https(es_tls.clone(), backend.clone()))
    });

    let (ca_der, tls) = api_server_tls();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let tls = tls.clone();
            let connect = connect.clone();
            tokio::spawn(async move {
                let Ok(stream) = tokio_rustls::TlsAcceptor::from(tls).accept(tcp).await else {
                    return;
                };
                let svc = service_fn(move |req: http::Request<Incoming>| {
                    let connect = connect.clone();
                    async move { Ok::<_, Infallible>(route(req, connect).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });

    let mut config = kube::Config::new(format!("https://127.0.0.1:{port}").parse().unwrap());
    config.root_cert = Some(vec![ca_der]);
    let client = kube::Client::try_from(config).unwrap();
    Harness { client, es_certs }
}

/// The API server's router, reduced to the one route.
async fn route(
    req: http::Request<Incoming>,
    connect: PortConnector,
) -> http::Response<Full<Bytes>> {
    let segments: Vec<String> = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    match segments.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["api", "v1", "namespaces", ns, "pods", name, "portforward"] => {
            let target = PortForwardTarget::new(ns, name, "0b7a5c1e-uid");
            upgrade_portforward(req, target, connect).await
        }
        _ => http::Response::builder()
            .status(404)
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap(),
    }
}

/// HTTP/1.1 over TLS on `io`, verifying the ES HTTP CA for `<es>-es-http.<ns>.svc`.
async fn es_client<S>(io: S, certs: &EsHttpCerts) -> common::Es
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    common::https(io, &certs.ca_pem, &certs.server_name())
        .await
        .expect("TLS handshake with the ES HTTP certificate")
}

async fn get(es: &mut common::Es, path: &str, password: &str) -> (u16, http::HeaderMap, Value) {
    common::request(
        es,
        "GET",
        "logs-es-http.prod.svc:9200",
        path,
        password,
        None,
    )
    .await
}

#[tokio::test]
async fn kube_portforward_reaches_elasticsearch_over_https() {
    let h = start().await;
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "prod");
    let mut pf = pods
        .portforward("logs-es-default-0", &[9200])
        .await
        .expect("port-forward upgrade");
    let stream = pf.take_stream(9200).unwrap();
    let mut es = es_client(stream, &h.es_certs).await;

    let (status, headers, body) = get(&mut es, "/_remote/info", PASSWORD).await;
    assert_eq!((status, body), (200, json!({})));
    assert_eq!(headers["x-elastic-product"], "Elasticsearch");
    assert_eq!(headers["content-type"], "application/json");

    let (status, _, body) = get(&mut es, "/", PASSWORD).await;
    assert_eq!(status, 200);
    assert_eq!(body["cluster_name"], "logs");
    assert_eq!(body["version"]["number"], "8.15.0");

    // Same connection, wrong password.
    let (status, headers, body) = get(&mut es, "/_remote/info", "wrong").await;
    assert_eq!(status, 401);
    assert_eq!(
        body["error"]["reason"],
        "unable to authenticate user [elastic] for REST request [/_remote/info]"
    );
    let challenges: Vec<&str> = headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        challenges,
        [
            "Basic realm=\"security\", charset=\"UTF-8\"",
            "Bearer realm=\"security\"",
            "ApiKey"
        ]
    );
    drop(es);
    pf.join().await.expect("port-forward ends cleanly");
}

#[tokio::test]
async fn unknown_port_reports_on_the_error_channel() {
    let h = start().await;
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "prod");
    let mut pf = pods
        .portforward("logs-es-default-0", &[9201])
        .await
        .expect("port-forward upgrade");
    let mut stream = pf.take_stream(9201).unwrap();
    let err = pf
        .take_error(9201)
        .unwrap()
        .await
        .expect("an error message");
    assert!(
        err.starts_with("error forwarding port 9201 to pod "),
        "{err}"
    );
    assert!(err.contains("connect: connection refused"), "{err}");
    // The data stream ends.
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.unwrap();
    assert!(buf.is_empty());
}

#[tokio::test]
async fn two_ports_one_refused_one_served() {
    let h = start().await;
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "prod");
    let mut pf = pods
        .portforward("logs-es-default-0", &[9201, 9200])
        .await
        .expect("port-forward upgrade");
    let err = pf
        .take_error(9201)
        .unwrap()
        .await
        .expect("an error message");
    assert!(err.contains("9201"));
    let stream = pf.take_stream(9200).unwrap();
    let mut es = es_client(stream, &h.es_certs).await;
    let (status, _, body) = get(&mut es, "/_remote/info", PASSWORD).await;
    assert_eq!((status, body), (200, json!({})));
}

#[tokio::test]
async fn non_websocket_request_is_refused() {
    let h = start().await;
    let req =
        http::Request::get("/api/v1/namespaces/prod/pods/logs-es-default-0/portforward?ports=9200")
            .body(Vec::new())
            .unwrap();
    let err = h.client.request_text(req).await.unwrap_err();
    match err {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 400);
            assert!(status.message.contains("Upgrade request required"));
        }
        other => panic!("unexpected {other:?}"),
    }
}
