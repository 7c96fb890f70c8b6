//! Same-operator remote clusters through the fake ECK operator, and `connected` computed from
//! the simulated world.

use std::time::Duration;

use remote_cluster_sandbox::elasticsearch::{EsRequest, NotConnectedReason};
use remote_cluster_sandbox::{ClusterConfig, ClusterHandle, EsSeed, ResourceKey, Sandbox, Sub};
use serde_json::{Value, json};

const IDLE: Duration = Duration::from_secs(20);
const ES: ResourceKey = ResourceKey::ELASTICSEARCHES;
const ES_PATH: &str = "/apis/elasticsearch.k8s.elastic.co/v1/namespaces";

/// `req` to `ns/name` as `elastic`: the status and the body.
fn es_call(c: &ClusterHandle, ns: &str, name: &str, req: EsRequest) -> (u16, Value) {
    let pw = c
        .secret_text(ns, &format!("{name}-es-elastic-user"), "elastic")
        .unwrap();
    let r = c.es_request(ns, name, &req.basic("elastic", &pw));
    (r.status, r.body)
}

/// `PUT _cluster/settings` with these `persistent` settings on `ns/name`, which must succeed.
#[track_caller]
fn put_settings(c: &ClusterHandle, ns: &str, name: &str, persistent: Value) {
    let (status, body) = es_call(
        c,
        ns,
        name,
        EsRequest::new("PUT", "/_cluster/settings").json(&json!({ "persistent": persistent })),
    );
    assert_eq!(status, 200, "{body}");
}

/// The flat persistent cluster settings of `ns/name`.
fn persistent_settings(c: &ClusterHandle, ns: &str, name: &str) -> Value {
    let (status, settings) = es_call(
        c,
        ns,
        name,
        EsRequest::new("GET", "/_cluster/settings?flat_settings=true"),
    );
    assert_eq!(status, 200, "{settings}");
    settings["persistent"].clone()
}

/// `GET _resolve/cluster/<alias>:*` on `ns/name`: Elasticsearch attempts the connection again
/// (it does not reconnect by itself after a failed attempt).
fn resolve(c: &ClusterHandle, ns: &str, name: &str, alias: &str) -> Value {
    let (status, body) = es_call(
        c,
        ns,
        name,
        EsRequest::new("GET", &format!("/_resolve/cluster/{alias}:*")),
    );
    assert_eq!(status, 200, "{body}");
    body[alias].clone()
}

/// The ingress host name of LoadBalancer Service `ns/svc`.
fn lb_hostname(c: &ClusterHandle, ns: &str, svc: &str) -> String {
    c.get(&ResourceKey::SERVICES, Some(ns), svc).unwrap()["status"]["loadBalancer"]["ingress"]
        [0]["hostname"]
        .as_str()
        .unwrap()
        .to_string()
}

fn has_secret(c: &ClusterHandle, ns: &str, name: &str) -> bool {
    c.get(&ResourceKey::SECRETS, Some(ns), name).is_some()
}

/// The `managed-remote-clusters` annotation ECK keeps on `ns/name` (`None` when absent).
fn managed_remotes(c: &ClusterHandle, ns: &str, name: &str) -> Option<Value> {
    c.get(&ES, Some(ns), name).unwrap()["metadata"]["annotations"]
        .get("elasticsearch.k8s.elastic.co/managed-remote-clusters")
        .cloned()
}

/// `diagnose(..)` is the refusal `$reason`.
macro_rules! assert_refused {
    ($diagnosis:expr, $reason:pat) => {{
        let diagnosis = $diagnosis;
        assert!(
            matches!(diagnosis, Err($reason)),
            "{diagnosis:?} is not {}",
            stringify!($reason)
        );
    }};
}

fn two_es(license: &str) -> Sandbox {
    Sandbox::builder()
        .license(license)
        .cluster(
            ClusterConfig::new("east")
                .elasticsearch(EsSeed::new("search", "catalog", "9.1.0").nodes(1))
                .elasticsearch(EsSeed::new("shop", "products", "9.1.0").nodes(2)),
        )
        .start()
        .unwrap()
}

/// Patches through the HTTP API as the plugin does (JSON patch guarded by a `test`).
async fn json_patch(c: &ClusterHandle, ns: &str, name: &str, ops: Value) -> u16 {
    let client = c.client("admin", false).unwrap();
    let path = format!("{ES_PATH}/{ns}/elasticsearches/{name}");
    let cur = client.get(&path).await.unwrap().json();
    let mut all = vec![
        json!({"op": "test", "path": "/metadata/resourceVersion", "value": cur["metadata"]["resourceVersion"]}),
    ];
    all.extend(ops.as_array().unwrap().iter().cloned());
    client
        .patch(&path, "application/json-patch+json", &Value::Array(all))
        .await
        .unwrap()
        .status
}

/// Removes `search/catalog`'s `spec.remoteClusters`, as an unlink within one operator does.
async fn unlink(c: &ClusterHandle) {
    assert_eq!(
        json_patch(
            c,
            "search",
            "catalog",
            json!([{"op": "remove", "path": "/spec/remoteClusters"}])
        )
        .await,
        200
    );
}

async fn link(c: &ClusterHandle, api_key: bool) {
    assert_eq!(
        json_patch(
            c,
            "shop",
            "products",
            json!([{"op": "add", "path": "/spec/remoteClusterServer", "value": {"enabled": true}}])
        )
        .await,
        200
    );
    let mut entry =
        json!({"name": "prod", "elasticsearchRef": {"name": "products", "namespace": "shop"}});
    if api_key {
        entry["apiKey"] = json!({"access": {"search": {"names": ["logs-*"]}}});
    }
    assert_eq!(
        json_patch(
            c,
            "search",
            "catalog",
            json!([{"op": "add", "path": "/spec/remoteClusters", "value": [entry]}])
        )
        .await,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_link_end_to_end() {
    let sb = two_es("enterprise");
    let east = sb.cluster("east");
    link(&east, true).await;
    east.wait_idle(IDLE).unwrap();

    // The key on the remote, with ECK's name and metadata.
    let keys = east
        .es_node("shop", "products", |n| n.api_keys().to_vec())
        .unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key.name, "eck-search-catalog-prod");
    assert_eq!(
        key.metadata["elasticsearch.k8s.elastic.co/managed-by"],
        "eck"
    );
    assert_eq!(key.metadata["elasticsearch.k8s.elastic.co/name"], "catalog");
    assert_eq!(
        key.metadata["elasticsearch.k8s.elastic.co/namespace"],
        "search"
    );
    assert!(
        key.metadata
            .contains_key("elasticsearch.k8s.elastic.co/config-hash")
    );

    // The client's remote API keys Secret, and the keystore after the restart.
    let s = east
        .get(
            &ResourceKey::SECRETS,
            Some("search"),
            "catalog-es-remote-api-keys",
        )
        .unwrap();
    assert_eq!(
        s["metadata"]["labels"]["common.k8s.elastic.co/type"],
        "remote-cluster-api-keys"
    );
    assert_eq!(
        s["metadata"]["labels"]["eck.k8s.elastic.co/credentials"],
        "true"
    );
    let ann: Value = serde_json::from_str(
        s["metadata"]["annotations"]["elasticsearch.k8s.elastic.co/remote-cluster-api-keys"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        ann,
        json!({"prod": {"namespace": "shop", "name": "products", "id": key.id}})
    );
    let encoded = east
        .secret_text(
            "search",
            "catalog-es-remote-api-keys",
            "cluster.remote.prod.credentials",
        )
        .unwrap();
    assert_eq!(encoded, key.encoded());
    assert_eq!(
        east.es_node("search", "catalog", |n| n
            .keystore
            .get("cluster.remote.prod.credentials")
            .cloned())
            .unwrap(),
        Some(encoded)
    );

    // CA copies both ways, aggregated.
    let copy = east
        .get(
            &ResourceKey::SECRETS,
            Some("search"),
            "catalog-shop-products-es-remote-ca",
        )
        .unwrap();
    let l = &copy["metadata"]["labels"];
    assert_eq!(l["common.k8s.elastic.co/type"], "remote-ca");
    assert_eq!(l["elasticsearch.k8s.elastic.co/cluster-name"], "catalog");
    assert_eq!(
        l["elasticsearch.k8s.elastic.co/remote-cluster-name"],
        "products"
    );
    assert_eq!(
        l["elasticsearch.k8s.elastic.co/remote-cluster-namespace"],
        "shop"
    );
    assert!(!has_secret(
        &east,
        "shop",
        "products-shop-search-catalog-es-remote-ca"
    ));
    assert!(has_secret(
        &east,
        "shop",
        "products-search-catalog-es-remote-ca"
    ));
    assert_eq!(
        east.secret_text("search", "catalog-es-remote-ca", "ca.crt")
            .unwrap(),
        east.secret_text("shop", "products-es-transport-certs-public", "ca.crt")
            .unwrap()
    );

    // Seeds and annotation.
    assert_eq!(
        persistent_settings(&east, "search", "catalog")["cluster.remote.prod.seeds"],
        json!(["products-es-remote-cluster.shop.svc:9443"])
    );
    assert_eq!(
        managed_remotes(&east, "search", "catalog"),
        Some(json!("prod"))
    );

    let info = east.remote_info("search", "catalog");
    assert_eq!(info["prod"]["connected"], true, "{info}");
    assert_eq!(info["prod"]["mode"], "sniff");
    assert_eq!(info["prod"]["cluster_credentials"], "::es_redacted::");
    assert_eq!(info["prod"]["num_nodes_connected"], 2);

    // Unlink: remove the entry.
    unlink(&east).await;
    east.wait_idle(IDLE).unwrap();
    let key = east
        .es_node("shop", "products", |n| n.api_keys()[0].clone())
        .unwrap();
    assert!(key.invalidated, "key invalidated");
    assert_eq!(
        persistent_settings(&east, "search", "catalog"),
        json!({}),
        "seeds nulled"
    );
    assert_eq!(managed_remotes(&east, "search", "catalog"), None);
    assert!(!has_secret(&east, "search", "catalog-es-remote-api-keys"));
    assert!(
        east.es_node("search", "catalog", |n| n.keystore.is_empty())
            .unwrap(),
        "alias pruned after restart"
    );
    assert!(!has_secret(
        &east,
        "search",
        "catalog-shop-products-es-remote-ca"
    ));
    assert!(!has_secret(
        &east,
        "shop",
        "products-search-catalog-es-remote-ca"
    ));
    assert_eq!(east.remote_info("search", "catalog"), json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_model_link_connects() {
    let sb = two_es("enterprise");
    let east = sb.cluster("east");
    link(&east, false).await;
    east.wait_idle(IDLE).unwrap();
    assert_eq!(
        persistent_settings(&east, "search", "catalog")["cluster.remote.prod.seeds"],
        json!(["products-es-transport.shop.svc:9300"])
    );
    // ECK set the seeds before the remote trusted the local CA copy: the first attempt failed
    // and stays failed until something asks again.
    assert_eq!(
        resolve(&east, "search", "catalog", "prod")["connected"],
        true
    );
    let info = east.remote_info("search", "catalog");
    assert_eq!(info["prod"]["connected"], true, "{info}");
    assert_eq!(info["prod"].get("cluster_credentials"), None);
    assert!(
        east.es_node("shop", "products", |n| n.api_keys().is_empty())
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_license_gives_only_a_warning_event() {
    let sb = two_es("basic");
    let east = sb.cluster("east");
    link(&east, true).await;
    east.wait_idle(IDLE).unwrap();
    let events = east.list(&ResourceKey::EVENTS, Some("search"));
    assert_eq!(events.len(), 1, "{events:?}");
    let ev = &events[0];
    assert_eq!(ev["type"], "Warning");
    assert_eq!(ev["reason"], "AssociationError");
    assert_eq!(
        ev["message"],
        "Remote cluster is an enterprise feature. Enterprise features are disabled"
    );
    assert_eq!(ev["involvedObject"]["kind"], "Elasticsearch");
    assert_eq!(ev["involvedObject"]["name"], "catalog");
    let remote_cas = east
        .list(&ResourceKey::SECRETS, None)
        .into_iter()
        .filter(|s| s["metadata"]["labels"]["common.k8s.elastic.co/type"] == "remote-ca")
        .count();
    assert_eq!(remote_cas, 0);
    assert!(!has_secret(&east, "search", "catalog-es-remote-api-keys"));
    assert!(
        east.es_node("shop", "products", |n| n.api_keys().is_empty())
            .unwrap()
    );
    assert_eq!(
        east.remote_info("search", "catalog"),
        json!({}),
        "no seeds, so no remote"
    );
    assert_eq!(managed_remotes(&east, "search", "catalog"), None);
}

/// ECK's remote-settings loop: the annotation is written before the settings, and an alias
/// whose removal Elasticsearch refuses stays in it, its removal retried on every reconcile
/// (with the error on the status) until it goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_alias_removal_is_retried_until_elasticsearch_drops_it() {
    let sb = two_es("enterprise");
    let east = sb.cluster("east");
    link(&east, false).await;
    east.wait_idle(IDLE).unwrap();
    put_settings(
        &east,
        "search",
        "catalog",
        json!({"cluster.remote.prod.skip_unavailable": true}),
    );
    unlink(&east).await;
    east.wait_idle(IDLE).unwrap();
    assert_eq!(
        managed_remotes(&east, "search", "catalog"),
        Some(json!("prod")),
        "kept while Elasticsearch still has it"
    );
    let settings = persistent_settings(&east, "search", "catalog");
    assert!(
        settings.get("cluster.remote.prod.seeds").is_some(),
        "{settings}"
    );
    let catalog = east.get(&ES, Some("search"), "catalog").unwrap();
    assert_eq!(catalog["status"]["phase"], "ApplyingChanges");
    let reconciled = catalog["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "ReconciliationComplete")
        .unwrap()
        .clone();
    assert_eq!(reconciled["status"], "False");
    assert!(
        reconciled["message"]
            .as_str()
            .unwrap()
            .contains("if remote cluster is not enabled"),
        "{reconciled}"
    );

    put_settings(
        &east,
        "search",
        "catalog",
        json!({"cluster.remote.prod.skip_unavailable": null}),
    );
    // An Elasticsearch-only change wakes no watch: the operator retries on its next pass
    // (at least once a second), then drops the alias from the annotation on the one after.
    let deadline = std::time::Instant::now() + IDLE;
    while managed_remotes(&east, "search", "catalog").is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the alias is never dropped"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    east.wait_idle(IDLE).unwrap();
    let settings = persistent_settings(&east, "search", "catalog");
    assert!(
        settings.get("cluster.remote.prod.seeds").is_none(),
        "{settings}"
    );
    assert_eq!(
        east.get(&ES, Some("search"), "catalog").unwrap()["status"]["phase"],
        "Ready"
    );
}

/// `eck-*` keys whose metadata does not name a client are a reconcile error for ECK, never
/// invalidated; keys of a client that left are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eck_keys_without_a_client_in_their_metadata_are_left_alone() {
    let sb = two_es("enterprise");
    let east = sb.cluster("east");
    let (status, stray) = es_call(
        &east,
        "shop",
        "products",
        EsRequest::new("POST", "/_security/cross_cluster/api_key")
            .json(&json!({"name": "eck-made-by-hand", "access": {"search": [{"names": ["*"]}]}})),
    );
    assert_eq!(status, 200, "{stray}");
    link(&east, true).await;
    east.wait_idle(IDLE).unwrap();
    let active = |name: &str| {
        east.es_node("shop", "products", |n| {
            n.api_keys()
                .iter()
                .any(|k| k.name == name && !k.invalidated)
        })
        .unwrap()
    };
    assert!(active("eck-search-catalog-prod"), "the link's key");
    assert!(active("eck-made-by-hand"), "left alone");
    unlink(&east).await;
    east.wait_idle(IDLE).unwrap();
    assert!(
        !active("eck-search-catalog-prod"),
        "the key of a link that left"
    );
    assert!(active("eck-made-by-hand"), "still left alone");
}

/// The licence Secret is what ECK checks; `elastic-licensing` only reports it, every two
/// minutes: deleting the Secret stops the automation at once while the report still says
/// `enterprise`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_licence_secret_gates_and_the_configmap_only_reports_it() {
    let sb = two_es("enterprise");
    let east = sb.cluster("east");
    let licences = east.list(&ResourceKey::SECRETS, Some("elastic-system"));
    let names: Vec<&str> = licences
        .iter()
        .filter(|s| s["metadata"]["labels"]["license.k8s.elastic.co/scope"] == "operator")
        .map(|s| s["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["eck-license"]);
    east.delete(&ResourceKey::SECRETS, Some("elastic-system"), "eck-license")
        .unwrap();
    link(&east, true).await;
    east.wait_idle(IDLE).unwrap();
    let report = east
        .get(
            &ResourceKey::CONFIGMAPS,
            Some("elastic-system"),
            "elastic-licensing",
        )
        .unwrap();
    assert_eq!(
        report["data"]["eck_license_level"], "enterprise",
        "the report lags behind the licence"
    );
    let events = east.list(&ResourceKey::EVENTS, Some("search"));
    assert!(
        events.iter().any(|e| e["reason"] == "AssociationError"),
        "{events:?}"
    );
    assert!(!has_secret(&east, "search", "catalog-es-remote-api-keys"));
    assert_eq!(managed_remotes(&east, "search", "catalog"), None);
}

/// Two clusters, a manual API-key link east/l -> west/r over a LoadBalancer, set up the way
/// the plugin does it for scenario 2; each ingredient removed in turn.
#[test]
fn connected_needs_every_ingredient() {
    let sb = Sandbox::builder()
        .operator_delay(Duration::from_millis(50))
        .cluster(ClusterConfig::new("east").elasticsearch(EsSeed::new("a", "l", "9.1.0").nodes(1)))
        .cluster(ClusterConfig::new("west").elasticsearch(EsSeed::new("b", "r", "9.1.0").nodes(2)))
        .start()
        .unwrap();
    let east = sb.cluster("east");
    let west = sb.cluster("west");
    let diag = |alias: &str| east.diagnose("a", "l", alias);

    // The remote: RCS behind a LoadBalancer; a cross-cluster key.
    west.merge_patch(&ES, Some("b"), "r", &json!({"spec": {"remoteClusterServer": {"enabled": true, "service": {"spec": {"type": "LoadBalancer"}}}}}), Sub::Main)
        .unwrap();
    west.wait_idle(IDLE).unwrap();
    let lb = lb_hostname(&west, "b", "r-es-remote-cluster");
    let (st, key) = es_call(
        &west,
        "b",
        "r",
        EsRequest::new("POST", "/_security/cross_cluster/api_key")
            .json(&json!({"name": "kplug-l", "access": {"search": [{"names": ["*"]}]}})),
    );
    assert_eq!(st, 200, "{key}");
    let west_ca = west
        .secret_text("b", "r-es-transport-certs-public", "ca.crt")
        .unwrap();

    // The local side: the key in a Secret named by secureSettings, the remote CA in a
    // ConfigMap mounted in the pods and named by remote_cluster_client.ssl.certificate_authorities.
    east.create(&ResourceKey::SECRETS, json!({"metadata": {"name": "l-remote-credentials", "namespace": "a"}, "stringData": {"cluster.remote.west.credentials": key["encoded"]}}))
        .unwrap();
    // A CA file must hold a certificate or the node does not start: at first, east's own CA.
    let east_ca = east
        .secret_text("a", "l-es-transport-certs-public", "ca.crt")
        .unwrap();
    east.create(
        &ResourceKey::CONFIGMAPS,
        json!({"metadata": {"name": "l-remote-cas", "namespace": "a"}, "data": {"ca.crt": east_ca}}),
    )
    .unwrap();
    east.merge_patch(&ES, Some("a"), "l", &json!({"spec": {
        "secureSettings": [{"secretName": "l-remote-credentials"}],
        "nodeSets": [{"name": "default", "count": 1, "config": {
            "xpack.security.remote_cluster_client.ssl.certificate_authorities": ["remote-cas/ca.crt"]},
            "podTemplate": {"spec": {
                "volumes": [{"name": "remote-cas", "configMap": {"name": "l-remote-cas"}}],
                "containers": [{"name": "elasticsearch", "volumeMounts": [{"name": "remote-cas", "mountPath": "/usr/share/elasticsearch/config/remote-cas"}]}]}}}]}}), Sub::Main)
        .unwrap();
    east.wait_idle(IDLE).unwrap();
    let put = |body: Value| {
        put_settings(
            &east,
            "a",
            "l",
            json!({"cluster": {"remote": {"west": body}}}),
        )
    };
    put(
        json!({"mode": "proxy", "proxy_address": format!("{lb}:9443"), "server_name": "r-es-remote-cluster.b.svc"}),
    );

    // 1. CA not trusted yet.
    assert_refused!(
        diag("west"),
        NotConnectedReason::UntrustedCertificate { .. }
    );
    // Trust: content only, no restart needed.
    east.merge_patch(
        &ResourceKey::CONFIGMAPS,
        Some("a"),
        "l-remote-cas",
        &json!({"data": {"ca.crt": west_ca}}),
        Sub::Main,
    )
    .unwrap();
    assert_eq!(diag("west").map(|c| c.target.name), Ok("r".to_string()));
    assert_eq!(
        east.remote_info("a", "l")["west"]["connected"],
        false,
        "a failed attempt stays failed: trusting the CA later does not reconnect"
    );
    assert_eq!(resolve(&east, "a", "l", "west")["connected"], true);
    assert_eq!(east.remote_info("a", "l")["west"]["connected"], true);

    // 2. Wrong server_name (the LB name is not in ECK's certificate).
    put(json!({"server_name": lb.clone()}));
    assert_refused!(diag("west"), NotConnectedReason::HostnameMismatch { .. });
    put(json!({"server_name": "r-es-remote-cluster.b.svc"}));
    assert!(diag("west").is_ok(), "{:?}", diag("west"));

    // 3. A cluster-internal name does not resolve from another cluster.
    put(json!({"proxy_address": "r-es-remote-cluster.b.svc:9443"}));
    assert_refused!(diag("west"), NotConnectedReason::Unresolvable { .. });
    put(json!({"proxy_address": format!("{lb}:9443")}));
    assert!(diag("west").is_ok(), "{:?}", diag("west"));

    // 4. Invalidated key.
    let id = key["id"].as_str().unwrap();
    let (st, _) = es_call(
        &west,
        "b",
        "r",
        EsRequest::new("DELETE", "/_security/api_key").json(&json!({"ids": [id]})),
    );
    assert_eq!(st, 200);
    assert_refused!(diag("west"), NotConnectedReason::ApiKeyInvalidated { .. });
    assert_eq!(
        east.remote_info("a", "l")["west"]["connected"],
        true,
        "the open connection stays"
    );
    let resolved = resolve(&east, "a", "l", "west");
    assert_eq!(resolved["connected"], true, "{resolved}");
    assert!(
        resolved["error"]
            .as_str()
            .is_some_and(|e| e.contains("invalidated")),
        "each request is refused: {resolved}"
    );

    // 5. No remote cluster server: the LB Service goes with it.
    west.merge_patch(
        &ES,
        Some("b"),
        "r",
        &json!({"spec": {"remoteClusterServer": {"enabled": false}}}),
        Sub::Main,
    )
    .unwrap();
    west.wait_idle(IDLE).unwrap();
    assert_refused!(diag("west"), NotConnectedReason::Unresolvable { .. });
}

/// Within one cluster: the API-key model needs the remote cluster server listener and trust.
#[test]
fn same_cluster_missing_ingredients() {
    let sb = Sandbox::builder()
        .cluster(
            ClusterConfig::new("east")
                .elasticsearch(EsSeed::new("a", "l", "9.1.0").nodes(1))
                .elasticsearch(EsSeed::new("a", "r", "9.1.0").nodes(1)),
        )
        .start()
        .unwrap();
    let east = sb.cluster("east");
    east.wait_idle(IDLE).unwrap();
    let (st, key) = es_call(
        &east,
        "a",
        "r",
        EsRequest::new("POST", "/_security/cross_cluster/api_key")
            .json(&json!({"name": "k", "access": {"search": [{"names": ["*"]}]}})),
    );
    assert_eq!(st, 200, "{key}");
    east.create(&ResourceKey::SECRETS, json!({"metadata": {"name": "creds", "namespace": "a"}, "stringData": {"cluster.remote.r.credentials": key["encoded"]}}))
        .unwrap();
    east.merge_patch(
        &ES,
        Some("a"),
        "l",
        &json!({"spec": {"secureSettings": [{"secretName": "creds"}]}}),
        Sub::Main,
    )
    .unwrap();
    east.wait_idle(IDLE).unwrap();
    let seeds =
        |seed: &str| put_settings(&east, "a", "l", json!({"cluster.remote.r.seeds": [seed]}));
    seeds("r-es-remote-cluster:9443");
    let diag = || east.diagnose("a", "l", "r");
    // No RCS: no such Service.
    assert_refused!(diag(), NotConnectedReason::Unresolvable { .. });
    // The transport port is the wrong listener for the API-key model.
    seeds("r-es-transport:9300");
    assert_refused!(diag(), NotConnectedReason::WrongInterface { .. });
    seeds("r-es-remote-cluster:9443");
    east.merge_patch(
        &ES,
        Some("a"),
        "r",
        &json!({"spec": {"remoteClusterServer": {"enabled": true}}}),
        Sub::Main,
    )
    .unwrap();
    east.wait_idle(IDLE).unwrap();
    // RCS on, but l has no apiKey remote and no client CA setting: nothing trusted.
    assert_refused!(diag(), NotConnectedReason::UntrustedCertificate { .. });
    // The hand-made remote CA (type=remote-ca, no peer labels) plus the client CA setting
    // pointing at ECK's files.
    let r_ca = east
        .secret_text("a", "r-es-transport-certs-public", "ca.crt")
        .unwrap();
    east.create(&ResourceKey::SECRETS, json!({"metadata": {"name": "l-hand-remote-ca", "namespace": "a", "labels": {"elasticsearch.k8s.elastic.co/cluster-name": "l", "common.k8s.elastic.co/type": "remote-ca"}}, "stringData": {"ca.crt": r_ca}}))
        .unwrap();
    east.merge_patch(&ES, Some("a"), "l", &json!({"spec": {"nodeSets": [{"name": "default", "count": 1, "config": {"xpack.security.remote_cluster_client.ssl.certificate_authorities": ["/usr/share/elasticsearch/config/transport-remote-certs/ca.crt"]}}]}}), Sub::Main)
        .unwrap();
    east.wait_idle(IDLE).unwrap();
    // Trusted now, but sniff mode checks the seed's host name: the short Service name is not
    // in ECK's certificate; `<svc>.<ns>.svc` is.
    assert_refused!(diag(), NotConnectedReason::HostnameMismatch { .. });
    seeds("r-es-remote-cluster.a.svc:9443");
    assert!(diag().is_ok(), "{:?}", diag());
    assert_eq!(resolve(&east, "a", "l", "r")["connected"], true);
    assert_eq!(east.remote_info("a", "l")["r"]["connected"], true);
}

/// Certificate model across clusters: proxy mode to the transport LoadBalancer needs trust in
/// both directions; sniff mode fails because pod IPs are not reachable from another cluster.
#[test]
fn certificate_model_needs_mutual_trust() {
    let sb = Sandbox::builder()
        .cluster(ClusterConfig::new("east").elasticsearch(EsSeed::new("a", "l", "9.1.0").nodes(1)))
        .cluster(ClusterConfig::new("west").elasticsearch(EsSeed::new("b", "r", "9.1.0").nodes(1)))
        .start()
        .unwrap();
    let (east, west) = (sb.cluster("east"), sb.cluster("west"));
    west.merge_patch(
        &ES,
        Some("b"),
        "r",
        &json!({"spec": {"transport": {"service": {"spec": {"type": "LoadBalancer"}}}}}),
        Sub::Main,
    )
    .unwrap();
    west.wait_idle(IDLE).unwrap();
    let lb = lb_hostname(&west, "b", "r-es-transport");
    let trust = |c: &ClusterHandle, ns: &str, es: &str, pem: String| {
        c.create(&ResourceKey::CONFIGMAPS, json!({"metadata": {"name": format!("{es}-cas"), "namespace": ns}, "data": {"ca.crt": pem}}))
            .unwrap();
        c.merge_patch(&ES, Some(ns), es, &json!({"spec": {"transport": {"tls": {"certificateAuthorities": {"configMapName": format!("{es}-cas")}}}}}), Sub::Main)
            .unwrap();
        c.wait_idle(IDLE).unwrap();
    };
    trust(
        &east,
        "a",
        "l",
        west.secret_text("b", "r-es-transport-certs-public", "ca.crt")
            .unwrap(),
    );
    put_settings(
        &east,
        "a",
        "l",
        json!({"cluster.remote.w.mode": "proxy", "cluster.remote.w.proxy_address": format!("{lb}:9300")}),
    );
    let diag = || east.diagnose("a", "l", "w");
    assert_refused!(diag(), NotConnectedReason::RemoteDoesNotTrustLocal { .. });
    let l_ca = east
        .secret_text("a", "l-es-transport-certs-public", "ca.crt")
        .unwrap();
    // Only ECK's own CA of l, not what l re-exports.
    let own = l_ca
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .unwrap()
        .to_string();
    trust(&west, "b", "r", own);
    assert!(diag().is_ok(), "{:?}", diag());
    assert_eq!(resolve(&east, "a", "l", "w")["connected"], true);
    assert_eq!(east.remote_info("a", "l")["w"]["connected"], true);
    // Sniff to the same address: the seed answers, the publish addresses (pod IPs) do not.
    put_settings(
        &east,
        "a",
        "l",
        json!({"cluster.remote.w.mode": null, "cluster.remote.w.proxy_address": null, "cluster.remote.w.seeds": [format!("{lb}:9300")]}),
    );
    assert_refused!(diag(), NotConnectedReason::PublishAddressUnreachable { .. });
}

/// An ECK cluster to a remote whose certificate comes from a public CA (Elastic Cloud Hosted):
/// the JVM's public CAs are trusted on the remote cluster client only while no
/// `certificate_authorities` list is set there (`ssl.enabled` defaults to true).
#[test]
fn public_cas_are_trusted_only_without_a_client_ca_list() {
    let sb = Sandbox::builder()
        .operator_delay(Duration::from_millis(50))
        .cluster(
            ClusterConfig::new("east")
                .elasticsearch(EsSeed::new("a", "l", "9.1.0").nodes(1))
                .elasticsearch(EsSeed::new("a", "other", "9.1.0").nodes(1)),
        )
        .external_elasticsearch_with_public_ca("cloud", "9.1.0")
        .start()
        .unwrap();
    let east = sb.cluster("east");
    east.wait_idle(IDLE).unwrap();
    let cloud = sb.external("cloud");
    let created = sb.external_request(
        "cloud",
        &EsRequest::new("POST", "/_security/cross_cluster/api_key")
            .basic("elastic", &cloud.password)
            .json(&json!({"name": "for-eck", "access": {"search": [{"names": ["*"]}]}})),
    );
    assert_eq!(created.status, 200, "{}", created.body);
    east.create(
        &ResourceKey::SECRETS,
        json!({"metadata": {"name": "l-keys", "namespace": "a"},
        "stringData": {"cluster.remote.cloud.credentials": created.body["encoded"]}}),
    )
    .unwrap();
    let own_ca = east
        .secret_text("a", "l-es-transport-certs-public", "ca.crt")
        .unwrap();
    east.create(
        &ResourceKey::CONFIGMAPS,
        json!({"metadata": {"name": "cas", "namespace": "a"},
            "data": {"own.crt": own_ca, "public.crt": cloud.remote_cluster_ca_pem}}),
    )
    .unwrap();
    let spec = |config: Value, remotes: Value| {
        json!({"spec": {
            "secureSettings": [{"secretName": "l-keys"}],
            "remoteClusters": remotes,
            "nodeSets": [{"name": "default", "count": 1, "config": config,
                "podTemplate": {"spec": {
                    "volumes": [{"name": "cas", "configMap": {"name": "cas"}}],
                    "containers": [{"name": "elasticsearch", "volumeMounts": [
                        {"name": "cas", "mountPath": "/usr/share/elasticsearch/config/cas"}]}]}}}]}})
    };
    let roll = |config: Value, remotes: Value| {
        east.merge_patch(&ES, Some("a"), "l", &spec(config, remotes), Sub::Main)
            .unwrap();
        east.wait_idle(IDLE).unwrap();
    };
    let diag = || east.diagnose("a", "l", "cloud");

    // Nothing configured: ssl.enabled defaults to true and the JVM's trust store applies.
    roll(json!({"node.store.allow_mmap": false}), json!(null));
    put_settings(
        &east,
        "a",
        "l",
        json!({"cluster.remote.cloud": {"mode": "proxy", "proxy_address": cloud.remote_cluster_address}}),
    );
    assert!(diag().is_ok(), "{:?}", diag());

    // A CA list of the user's (another CA): the public CAs are no longer trusted.
    roll(
        json!({"xpack.security.remote_cluster_client.ssl.enabled": true,
            "xpack.security.remote_cluster_client.ssl.certificate_authorities": ["cas/own.crt"]}),
        json!(null),
    );
    assert_refused!(diag(), NotConnectedReason::UntrustedCertificate { .. });

    // ECK's own list, set for any API-key remote, has the same effect.
    roll(
        json!({"node.store.allow_mmap": false}),
        json!([{"name": "o", "elasticsearchRef": {"name": "other"}, "apiKey": {"access": {"search": {"names": ["*"]}}}}]),
    );
    assert_refused!(diag(), NotConnectedReason::UntrustedCertificate { .. });

    // The public root in the list: trusted again.
    roll(
        json!({"xpack.security.remote_cluster_client.ssl.certificate_authorities": ["cas/public.crt"]}),
        json!([{"name": "o", "elasticsearchRef": {"name": "other"}, "apiKey": {"access": {"search": {"names": ["*"]}}}}]),
    );
    assert!(diag().is_ok(), "{:?}", diag());

    // Client SSL off: a remote cluster server cannot be reached at all.
    roll(
        json!({"xpack.security.remote_cluster_client.ssl.enabled": false}),
        json!(null),
    );
    assert_refused!(diag(), NotConnectedReason::UntrustedCertificate { .. });
}
