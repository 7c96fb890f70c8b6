//! `spec.http.tls` as ECK reads it: a user's certificate is served and published in
//! `<es>-es-http-certs-public`; with the self-signed certificate disabled, port 9200 speaks plain
//! HTTP and the pods say so in `elasticsearch.k8s.elastic.co/http-scheme`.

use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use remote_cluster_sandbox::pki::Ca;
use remote_cluster_sandbox::{ClusterConfig, EsSeed, ResourceKey, Sandbox, Sub};
use serde_json::json;

mod common;

const IDLE: Duration = Duration::from_secs(20);

async fn kube_client(sb: &Sandbox) -> kube::Client {
    let kc = Kubeconfig::from_yaml(&sb.kubeconfig_yaml()).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

fn sandbox() -> Sandbox {
    Sandbox::builder()
        .cluster(
            ClusterConfig::new("east")
                .elasticsearch(EsSeed::new("shop", "products", "9.1.0").nodes(1))
                .elasticsearch(EsSeed::new("shop", "orders", "9.1.0").nodes(1)),
        )
        .start()
        .unwrap()
}

/// Port 9200 of `pod` in `shop`, as a byte stream.
async fn forward(
    client: &kube::Client,
    pod: &str,
) -> (
    kube::api::Portforwarder,
    impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let mut pf = pods.portforward(pod, &[9200]).await.unwrap();
    let stream = pf.take_stream(9200).unwrap();
    (pf, stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_certificate_is_served_and_published_with_its_ca_only_when_given() {
    let sb = sandbox();
    let east = sb.cluster("east");
    // The user's certificate names only `localhost` and 127.0.0.1, not the Service.
    let user_ca = Ca::new("user-http-ca").unwrap();
    let user_cert = user_ca.server_cert().unwrap();
    east.create(
        &ResourceKey::SECRETS,
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "products-http", "namespace": "shop"},
               "stringData": {"tls.crt": user_cert.cert_pem, "tls.key": user_cert.key_pem,
                              "ca.crt": user_ca.cert.cert_pem}}),
    )
    .unwrap();
    east.create(
        &ResourceKey::SECRETS,
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "orders-http", "namespace": "shop"},
               "stringData": {"tls.crt": user_cert.cert_pem, "tls.key": user_cert.key_pem}}),
    )
    .unwrap();
    for (es, secret) in [("products", "products-http"), ("orders", "orders-http")] {
        east.merge_patch(
            &ResourceKey::ELASTICSEARCHES,
            Some("shop"),
            es,
            &json!({"spec": {"http": {"tls": {"certificate": {"secretName": secret}}}}}),
            Sub::Main,
        )
        .unwrap();
    }
    tokio::task::block_in_place(|| east.wait_idle(IDLE)).unwrap();

    assert_eq!(
        east.secret_text("shop", "products-es-http-certs-public", "tls.crt")
            .as_deref(),
        Some(user_cert.cert_pem.as_str())
    );
    assert_eq!(
        east.secret_text("shop", "products-es-http-certs-public", "ca.crt")
            .as_deref(),
        Some(user_ca.cert.cert_pem.as_str())
    );
    assert_eq!(
        east.secret_text("shop", "orders-es-http-certs-public", "tls.crt")
            .as_deref(),
        Some(user_cert.cert_pem.as_str())
    );
    assert_eq!(
        east.secret_text("shop", "orders-es-http-certs-public", "ca.crt"),
        None,
        "no ca.crt is published when the user's Secret has none"
    );

    let client = kube_client(&sb).await;
    let password = east
        .secret_text("shop", "products-es-elastic-user", "elastic")
        .unwrap();
    let (_pf, stream) = forward(&client, "products-es-default-0").await;
    let mut es = common::https(stream, &user_ca.cert.cert_pem, "localhost")
        .await
        .expect("the user's certificate, verified against the user's CA");
    let (status, _, _) = common::request(&mut es, "GET", "localhost", "/", &password, None).await;
    assert_eq!(status, 200);

    // ECK's own certificate is no longer what the pod presents.
    let (_pf, stream) = forward(&client, "products-es-default-0").await;
    let Err(err) = common::https(stream, &user_ca.cert.cert_pem, "products-es-http.shop.svc").await
    else {
        panic!("the user's certificate does not carry the Service name");
    };
    assert!(err.to_string().contains("certificate"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_self_signed_certificate_serves_plain_http_and_labels_the_pods() {
    let sb = sandbox();
    let east = sb.cluster("east");
    east.merge_patch(
        &ResourceKey::ELASTICSEARCHES,
        Some("shop"),
        "products",
        &json!({"spec": {"http": {"tls": {"selfSignedCertificate": {"disabled": true}}}}}),
        Sub::Main,
    )
    .unwrap();
    tokio::task::block_in_place(|| east.wait_idle(IDLE)).unwrap();
    let scheme = |pod: &str| {
        east.get(&ResourceKey::PODS, Some("shop"), pod)
            .unwrap()
            .pointer("/metadata/labels/elasticsearch.k8s.elastic.co~1http-scheme")
            .and_then(|v| v.as_str().map(str::to_string))
    };
    assert_eq!(scheme("products-es-default-0").as_deref(), Some("http"));
    assert_eq!(scheme("orders-es-default-0").as_deref(), Some("https"));

    let client = kube_client(&sb).await;
    let password = east
        .secret_text("shop", "products-es-elastic-user", "elastic")
        .unwrap();
    let (_pf, stream) = forward(&client, "products-es-default-0").await;
    let (mut es, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let (status, _, body) =
        common::request(&mut es, "GET", "products-es-http", "/", &password, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["version"]["number"].is_string(), "{body}");
}

/// A self-signed client certificate (as ECK makes them: CN, `clientAuth`): PEM certificate and
/// the rustls identity to present it.
fn client_certificate(
    cn: &str,
) -> (
    String,
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.self_signed(&key).unwrap();
    (
        cert.pem(),
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
}

/// TLS then `GET /` over port 9200 of `pod`, presenting `identity` when given: the status, or
/// the error of the handshake or of the request.
async fn get_root(
    client: &kube::Client,
    pod: &str,
    ca_pem: &str,
    server_name: &str,
    identity: Option<(
        Vec<rustls::pki_types::CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    )>,
    password: &str,
) -> Result<u16, String> {
    use http_body_util::Full;
    let (_pf, stream) = forward(client, pod).await;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    use rustls::pki_types::pem::PemObject;
    let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(
            rustls::pki_types::ServerName::try_from(server_name.to_string()).unwrap(),
            stream,
        )
        .await
        .map_err(|e| e.to_string())?;
    let (mut es, conn): (common::Es, _) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("elastic:{password}"));
    let req = http::Request::builder()
        .uri("/")
        .header("host", "products-es-http")
        .header("authorization", format!("Basic {auth}"))
        .body(Full::new(bytes::Bytes::new()))
        .unwrap();
    es.ready().await.map_err(|e| e.to_string())?;
    let resp = es.send_request(req).await.map_err(|e| e.to_string())?;
    Ok(resp.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_authentication_requires_a_certificate_from_a_labelled_eck_owned_secret() {
    let sb = sandbox();
    let east = sb.cluster("east");
    east.merge_patch(
        &ResourceKey::ELASTICSEARCHES,
        Some("shop"),
        "products",
        &json!({"spec": {"http": {"tls": {"client": {"authentication": true}}}}}),
        Sub::Main,
    )
    .unwrap();
    tokio::task::block_in_place(|| east.wait_idle(IDLE)).unwrap();
    let client = kube_client(&sb).await;
    let ca = east
        .secret_text("shop", "products-es-http-certs-public", "ca.crt")
        .unwrap();
    let password = east
        .secret_text("shop", "products-es-elastic-user", "elastic")
        .unwrap();
    let pod = "products-es-default-0";
    let name = "products-es-http.shop.svc";

    // No client certificate: refused.
    let refused = get_root(&client, pod, &ca, name, None, &password).await;
    assert!(refused.is_err(), "{refused:?}");

    let (pem, chain, key) = client_certificate("kubectl-remote-cluster");
    let labels = json!({
        "eck.k8s.elastic.co/client-certificate": "true",
        "eck.k8s.elastic.co/owner-name": "products",
        "eck.k8s.elastic.co/owner-namespace": "shop",
        "eck.k8s.elastic.co/owner-kind": "Elasticsearch",
    });
    // Labelled but owned by no ECK resource: ECK leaves it out of the trust bundle.
    east.create(
        &ResourceKey::SECRETS,
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "unowned-client", "namespace": "shop", "labels": labels},
               "stringData": {"tls.crt": pem}}),
    )
    .unwrap();
    let refused = get_root(
        &client,
        pod,
        &ca,
        name,
        Some((chain.clone(), key.clone_key())),
        &password,
    )
    .await;
    assert!(refused.is_err(), "{refused:?}");

    // Owned by the Elasticsearch (its UID): trusted.
    let uid = east
        .get(&ResourceKey::ELASTICSEARCHES, Some("shop"), "products")
        .unwrap()["metadata"]["uid"]
        .clone();
    east.create(
        &ResourceKey::SECRETS,
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "owned-client", "namespace": "shop", "labels": labels,
                            "ownerReferences": [{"apiVersion": "elasticsearch.k8s.elastic.co/v1",
                                                 "kind": "Elasticsearch", "name": "products",
                                                 "uid": uid}]},
               "stringData": {"tls.crt": pem}}),
    )
    .unwrap();
    let ok = get_root(&client, pod, &ca, name, Some((chain, key)), &password).await;
    assert_eq!(ok, Ok(200));

    // Another Elasticsearch without client authentication needs none.
    let ca = east
        .secret_text("shop", "orders-es-http-certs-public", "ca.crt")
        .unwrap();
    let password = east
        .secret_text("shop", "orders-es-elastic-user", "elastic")
        .unwrap();
    let ok = get_root(
        &client,
        "orders-es-default-0",
        &ca,
        "orders-es-http.shop.svc",
        None,
        &password,
    )
    .await;
    assert_eq!(ok, Ok(200));
}
