//! Two fake Elasticsearch clusters served over HTTPS on TCP, sharing one world the way the
//! sandbox should: every node under one lock, the asking node taken out of the map while it
//! answers, so `_remote/info` on one reads the other's API keys.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use remote_cluster_sandbox::elasticsearch::{
    ElasticsearchNode, Endpoint, EsBackend, EsHttpCerts, EsId, EsRequest, EsResponse, Interface,
    NodeLocation, RemoteWorld, serve_https,
};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

mod common;

const PW: &str = "pw-elastic";

/// Services and trust: the part of the world that is not Elasticsearch state.
#[derive(Default)]
struct Net {
    /// (kube cluster of the caller, address) -> endpoint.
    services: HashMap<(String, String), Endpoint>,
    trust: HashMap<(EsId, Interface), Vec<String>>,
}

/// All nodes behind one lock.
struct World {
    nodes: Mutex<HashMap<EsId, ElasticsearchNode>>,
    net: Net,
}

/// What a node sees while it handles a request: the other nodes, lent immutably.
struct View<'a> {
    others: &'a HashMap<EsId, ElasticsearchNode>,
    net: &'a Net,
}

impl RemoteWorld for View<'_> {
    fn resolve(&self, from: &NodeLocation, address: &str) -> Option<Endpoint> {
        self.net
            .services
            .get(&(from.cluster.clone(), address.to_string()))
            .cloned()
    }
    fn trusted_cas(&self, local: &EsId, interface: Interface) -> Vec<String> {
        self.net
            .trust
            .get(&(local.clone(), interface))
            .cloned()
            .unwrap_or_default()
    }
    fn with_node(&self, id: &EsId, f: &mut dyn FnMut(&ElasticsearchNode)) {
        if let Some(n) = self.others.get(id) {
            f(n);
        }
    }
    fn pending_keystore(&self, _local: &EsId) -> Option<BTreeMap<String, String>> {
        None
    }
}

impl World {
    fn handle(&self, id: &EsId, req: EsRequest) -> EsResponse {
        let mut nodes = self.nodes.lock().unwrap();
        let mut node = nodes.remove(id).expect("known node");
        let resp = node.handle(
            &req,
            &View {
                others: &nodes,
                net: &self.net,
            },
        );
        nodes.insert(id.clone(), node);
        resp
    }
}

async fn serve(world: Arc<World>, id: EsId, certs: &EsHttpCerts) -> u16 {
    let tls = certs.server_config().unwrap();
    let backend: Arc<dyn EsBackend> = Arc::new(move |req| world.handle(&id, req));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(serve_https(tcp, tls.clone(), backend.clone()));
        }
    });
    port
}

/// `method path` on a new HTTPS connection to `port`, the HTTP CA verified.
async fn call(
    port: u16,
    certs: &EsHttpCerts,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut es = common::https(tcp, &certs.ca_pem, &certs.server_name())
        .await
        .unwrap();
    let (status, _, body) = common::request(&mut es, method, "es", path, PW, body.as_ref()).await;
    (status, body)
}

#[tokio::test]
async fn api_key_link_between_two_clusters_over_https() {
    let l_id = EsId::new("east", "prod", "logs");
    let r_id = EsId::new("west", "dr", "archive");
    let mut net = Net::default();
    net.services.insert(
        ("east".into(), "198.51.100.9:9443".into()),
        Endpoint {
            target: r_id.clone(),
            interface: Interface::RemoteClusterServer,
            tls_names: vec!["archive-es-remote-cluster.dr.svc".into()],
            ca_fingerprint: "archive-transport-ca".into(),
        },
    );
    net.trust.insert(
        (l_id.clone(), Interface::RemoteClusterServer),
        vec!["archive-transport-ca".into()],
    );
    let world = Arc::new(World {
        nodes: Mutex::new(HashMap::from([
            (
                l_id.clone(),
                ElasticsearchNode::new(l_id.clone(), "9.1.0", PW),
            ),
            (
                r_id.clone(),
                ElasticsearchNode::new(r_id.clone(), "9.1.0", PW),
            ),
        ])),
        net,
    });
    let l_certs = EsHttpCerts::generate("logs", "prod").unwrap();
    let r_certs = EsHttpCerts::generate("archive", "dr").unwrap();
    let l_port = serve(world.clone(), l_id.clone(), &l_certs).await;
    let r_port = serve(world.clone(), r_id.clone(), &r_certs).await;

    // On the remote: create the cross-cluster key.
    let (status, key) = call(
        r_port,
        &r_certs,
        "POST",
        "/_security/cross_cluster/api_key",
        Some(
            json!({"name":"kplug-east-prod-logs-archive","access":{"search":{"names":["logs-*"]}}}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{key}");
    // The operator would restart L with the key in its keystore; here we load it directly.
    world
        .nodes
        .lock()
        .unwrap()
        .get_mut(&l_id)
        .unwrap()
        .keystore
        .insert(
            "cluster.remote.archive.credentials".into(),
            key["encoded"].as_str().unwrap().into(),
        );

    // On the local: add the alias in proxy mode.
    let (status, body) = call(
        l_port,
        &l_certs,
        "PUT",
        "/_cluster/settings",
        Some(json!({"persistent":{"cluster":{"remote":{"archive":{"mode":"proxy",
            "proxy_address":"198.51.100.9:9443","server_name":"archive-es-remote-cluster.dr.svc"}}}}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["acknowledged"], true);

    let (status, info) = call(l_port, &l_certs, "GET", "/_remote/info", None).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["archive"]["connected"], true, "{info}");
    assert_eq!(info["archive"]["cluster_credentials"], "::es_redacted::");

    // Invalidate the key on the remote: the open connection stays (`_remote/info` still says
    // connected), but each request is refused, which `_resolve/cluster` shows.
    let (status, body) = call(
        r_port,
        &r_certs,
        "DELETE",
        "/_security/api_key",
        Some(json!({"ids":[key["id"]]})),
    )
    .await;
    assert_eq!((status, body["error_count"].clone()), (200, json!(0)));
    let (status, info) = call(l_port, &l_certs, "GET", "/_remote/info", None).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["archive"]["connected"], true, "{info}");
    let (status, resolved) =
        call(l_port, &l_certs, "GET", "/_resolve/cluster/archive:*", None).await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["archive"]["connected"], true, "{resolved}");
    assert!(
        resolved["archive"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("has been invalidated")),
        "{resolved}"
    );
    let why = {
        let nodes = world.nodes.lock().unwrap();
        let others: HashMap<EsId, ElasticsearchNode> = nodes
            .iter()
            .filter(|(k, _)| **k != l_id)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        nodes[&l_id].diagnose(
            "archive",
            &View {
                others: &others,
                net: &world.net,
            },
        )
    };
    assert!(
        why.unwrap_err()
            .to_string()
            .contains("has been invalidated")
    );

    // Remove the alias with nulls.
    let (status, body) = call(
        l_port,
        &l_certs,
        "PUT",
        "/_cluster/settings?flat_settings=true",
        Some(json!({"persistent":{"cluster.remote.archive.mode":null,
            "cluster.remote.archive.proxy_address":null,"cluster.remote.archive.server_name":null}})),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"acknowledged":true,"persistent":{},"transient":{}})
        )
    );
    let info = call(l_port, &l_certs, "GET", "/_remote/info?pretty", None).await;
    assert_eq!(info, (200, json!({})));
}

#[tokio::test]
async fn wrong_server_name_is_a_tls_failure() {
    let id = EsId::new("east", "prod", "logs");
    let world = Arc::new(World {
        nodes: Mutex::new(HashMap::from([(
            id.clone(),
            ElasticsearchNode::new(id.clone(), "8.15.0", PW),
        )])),
        net: Net::default(),
    });
    let certs = EsHttpCerts::generate("logs", "prod").unwrap();
    let port = serve(world, id, &certs).await;
    for good in [
        "logs-es-http.prod.svc",
        "logs-es-http.prod",
        "logs-es-http",
        "logs-es-http.prod.es.local",
    ] {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        common::https(tcp, &certs.ca_pem, good)
            .await
            .unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let err = common::https(tcp, &certs.ca_pem, "logs-es-http.other.svc")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not valid for name"), "{err}");
}
