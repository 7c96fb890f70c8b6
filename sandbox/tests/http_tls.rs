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
    let err = common::https(stream, &user_ca.cert.cert_pem, "products-es-http.shop.svc")
        .await
        .err()
        .expect("the user's certificate does not carry the Service name");
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
