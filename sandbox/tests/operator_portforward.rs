//! A real kube-rs client port-forwards to an operator-made pod and talks HTTPS to its fake
//! Elasticsearch as the plugin does; the concurrent-writer fault; the external Elasticsearch.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use remote_cluster_sandbox::{ClusterConfig, EsSeed, Fault, ResourceKey, Sandbox};
use serde_json::{Value, json};

mod common;

const IDLE: Duration = Duration::from_secs(20);

async fn kube_client(sb: &Sandbox, context: &str) -> kube::Client {
    let kc = Kubeconfig::from_yaml(&sb.kubeconfig_yaml()).unwrap();
    let opts = KubeConfigOptions {
        context: Some(context.into()),
        ..Default::default()
    };
    let cfg = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

/// `GET path` as `elastic` with `password`: the status and the body.
async fn get(es: &mut common::Es, path: &str, password: &str) -> (u16, Value) {
    let (status, _, body) = common::request(es, "GET", "localhost", path, password, None).await;
    (status, body)
}

fn data(secret: &Secret, key: &str) -> String {
    String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_port_forward_reaches_remote_info() {
    let sb = Sandbox::builder()
        .cluster(
            ClusterConfig::new("east")
                .elasticsearch(
                    EsSeed::new("search", "catalog", "9.1.0")
                        .nodes(1)
                        .remote_cluster("prod", "shop", "products", true),
                )
                .elasticsearch(
                    EsSeed::new("shop", "products", "9.1.0")
                        .nodes(1)
                        .remote_cluster_server(true),
                ),
        )
        .start()
        .unwrap();
    let east = sb.cluster("east");
    tokio::task::block_in_place(|| east.wait_idle(IDLE)).unwrap();
    let client = kube_client(&sb, "east").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "search");
    let password = data(
        &secrets.get("catalog-es-elastic-user").await.unwrap(),
        "elastic",
    );
    let ca = data(
        &secrets.get("catalog-es-http-certs-public").await.unwrap(),
        "ca.crt",
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "search");
    let mut pf = pods
        .portforward("catalog-es-default-0", &[9200])
        .await
        .unwrap();
    let stream = pf.take_stream(9200).unwrap();
    let mut es = common::https(stream, &ca, "catalog-es-http.search.svc")
        .await
        .expect("TLS verified against the published CA");
    let (status, body) = get(&mut es, "/_remote/info", &password).await;
    assert_eq!(status, 200);
    assert_eq!(body["prod"]["connected"], true, "{body}");
    assert_eq!(
        body["prod"]["seeds"],
        json!(["products-es-remote-cluster.shop.svc:9443"])
    );
    let (status, _) = get(&mut es, "/", "wrong").await;
    assert_eq!(status, 401);
    drop(es);
    drop(pf);

    // Other ports are refused by the "kubelet".
    let mut pf = pods
        .portforward("catalog-es-default-0", &[9300])
        .await
        .unwrap();
    let err = pf.take_error(9300).unwrap();
    let mut stream = pf.take_stream(9300).unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut buf),
    )
    .await;
    assert!(buf.is_empty());
    let msg = tokio::time::timeout(Duration::from_secs(5), err)
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        msg.starts_with("error forwarding port 9300 to pod ") && msg.contains("connection refused"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_writer_makes_a_guarded_write_fail_and_a_retry_succeed() {
    let sb = Sandbox::builder()
        .cluster(ClusterConfig::new("east").elasticsearch(EsSeed::new("s", "r", "9.1.0")))
        .start()
        .unwrap();
    let east = sb.cluster("east");
    tokio::task::block_in_place(|| east.wait_idle(IDLE)).unwrap();
    let path = "/apis/elasticsearch.k8s.elastic.co/v1/namespaces/s/elasticsearches/r";
    let client = east.client("admin", false).unwrap();
    let read = client.get(path).await.unwrap().json();
    let rv = read["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    east.inject_fault(
        Fault::new("PATCH", path)
            .concurrent_merge_patch(json!({"metadata": {"labels": {"team": "other"}}})),
    );
    let ops = |rv: &str| {
        json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
            {"op": "add", "path": "/spec/remoteClusterServer", "value": {"enabled": true}},
        ])
    };
    let r = client
        .patch(path, "application/json-patch+json", &ops(&rv))
        .await
        .unwrap();
    assert_eq!(r.status, 422, "{}", r.json());
    let now = east
        .get(&ResourceKey::ELASTICSEARCHES, Some("s"), "r")
        .unwrap();
    assert_eq!(now["metadata"]["labels"]["team"], "other");
    assert_ne!(now["metadata"]["resourceVersion"], rv);
    assert_eq!(now["spec"].get("remoteClusterServer"), None);

    // A merge patch with a resourceVersion precondition: 409.
    east.inject_fault(
        Fault::new("PATCH", path)
            .concurrent_merge_patch(json!({"metadata": {"labels": {"team": "third"}}})),
    );
    let stale = now["metadata"]["resourceVersion"].as_str().unwrap();
    let r = client
        .patch(path, "application/merge-patch+json", &json!({"metadata": {"resourceVersion": stale}, "spec": {"remoteClusterServer": {"enabled": true}}}))
        .await
        .unwrap();
    assert_eq!(r.status, 409);

    // Re-read and retry: the fault fired once.
    let read = client.get(path).await.unwrap().json();
    let r = client
        .patch(
            path,
            "application/json-patch+json",
            &ops(read["metadata"]["resourceVersion"].as_str().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let now = east
        .get(&ResourceKey::ELASTICSEARCHES, Some("s"), "r")
        .unwrap();
    assert_eq!(now["metadata"]["labels"]["team"], "third");
    assert_eq!(now["spec"]["remoteClusterServer"]["enabled"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_elasticsearch_serves_https_with_its_own_ca() {
    let sb = Sandbox::builder()
        .cluster(ClusterConfig::new("east"))
        .external_elasticsearch("ech", "9.1.0")
        .start()
        .unwrap();
    let ext = sb.external("ech");
    assert!(ext.url.starts_with("https://127.0.0.1:"));
    let port: u16 = ext.url.rsplit(':').next().unwrap().parse().unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut es = common::https(tcp, &ext.ca_pem, "localhost")
        .await
        .expect("TLS verified against the published CA");
    let (status, body) = get(&mut es, "/", &ext.password).await;
    assert_eq!(status, 200);
    assert_eq!(body["version"]["number"], "9.1.0");
    let (status, body) = get(&mut es, "/_remote/info", &ext.password).await;
    assert_eq!((status, body), (200, json!({})));
}
