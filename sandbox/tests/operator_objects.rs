//! The fake ECK operator: the objects it creates, rollouts, keystore, licence gate.

use std::time::{Duration, Instant};

use remote_cluster_sandbox::elasticsearch::EsRequest;
use remote_cluster_sandbox::{ClusterConfig, ClusterHandle, EsSeed, ResourceKey, Sandbox, Sub};
use serde_json::{Value, json};

const IDLE: Duration = Duration::from_secs(20);
const ES: ResourceKey = ResourceKey::ELASTICSEARCHES;

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

fn label<'a>(o: &'a Value, k: &str) -> &'a str {
    o["metadata"]["labels"][k].as_str().unwrap_or("")
}

/// Cluster `east` with Elasticsearch `s/<name>` of `nodes` nodes, restarts taking `delay`, once
/// the operator is idle.
fn one_es(delay: Duration, name: &str, nodes: u32) -> (Sandbox, ClusterHandle) {
    let sb = Sandbox::builder()
        .operator_delay(delay)
        .cluster(
            ClusterConfig::new("east").elasticsearch(EsSeed::new("s", name, "9.1.0").nodes(nodes)),
        )
        .start()
        .unwrap();
    let east = sb.cluster("east");
    east.wait_idle(IDLE).unwrap();
    (sb, east)
}

/// Merge-patches the main resource `key` `s/<name>`.
fn patch(east: &ClusterHandle, key: &ResourceKey, name: &str, patch: Value) -> Value {
    east.merge_patch(key, Some("s"), name, &patch, Sub::Main)
        .unwrap()
}

#[test]
fn eck_named_services_secrets_and_pods_appear() {
    let sb = Sandbox::builder()
        .cluster(
            ClusterConfig::new("east")
                .elasticsearch(EsSeed::new("search", "products", "9.1.0").nodes(2))
                .elasticsearch(
                    EsSeed::new("search", "fresh", "8.19.0")
                        .nodes(1)
                        .without_status(),
                ),
        )
        .start()
        .unwrap();
    let east = sb.cluster("east");
    east.wait_idle(IDLE).unwrap();

    let lic = east
        .get(
            &ResourceKey::CONFIGMAPS,
            Some("elastic-system"),
            "elastic-licensing",
        )
        .unwrap();
    assert_eq!(lic["data"]["eck_license_level"], "enterprise");
    assert_eq!(label(&lic, "common.k8s.elastic.co/type"), "elastic-usage");
    assert_eq!(label(&lic, "eck.k8s.elastic.co/watched"), "true");

    let svcs = names(&east.list(&ResourceKey::SERVICES, Some("search")));
    for s in [
        "products-es-http",
        "products-es-internal-http",
        "products-es-transport",
        "products-es-default",
    ] {
        assert!(svcs.contains(&s.to_string()), "{s} in {svcs:?}");
    }
    assert!(!svcs.contains(&"products-es-remote-cluster".to_string()));
    let http = east
        .get(&ResourceKey::SERVICES, Some("search"), "products-es-http")
        .unwrap();
    assert_eq!(http["spec"]["ports"][0]["port"], 9200);
    assert_eq!(http["spec"]["ports"][0]["name"], "https");
    let transport = east
        .get(
            &ResourceKey::SERVICES,
            Some("search"),
            "products-es-transport",
        )
        .unwrap();
    assert_eq!(transport["spec"]["clusterIP"], "None");
    assert_eq!(transport["spec"]["ports"][0]["port"], 9300);
    assert_eq!(transport["spec"]["ports"][0]["name"], "tls-transport");
    assert_eq!(
        label(&transport, "elasticsearch.k8s.elastic.co/cluster-name"),
        "products"
    );

    let password = east
        .secret_text("search", "products-es-elastic-user", "elastic")
        .unwrap();
    assert!(password.len() >= 20);
    let ca = east
        .secret_text("search", "products-es-http-certs-public", "ca.crt")
        .unwrap();
    let tls = east
        .secret_text("search", "products-es-http-certs-public", "tls.crt")
        .unwrap();
    assert!(tls.ends_with(&ca));
    let transport_ca = east
        .secret_text("search", "products-es-transport-certs-public", "ca.crt")
        .unwrap();
    assert!(transport_ca.starts_with("-----BEGIN CERTIFICATE-----"));
    // No remote CA yet: the aggregate holds the cluster's own transport CA.
    assert_eq!(
        east.secret_text("search", "products-es-remote-ca", "ca.crt")
            .unwrap(),
        transport_ca
    );

    let pods = east.list(&ResourceKey::PODS, Some("search"));
    assert_eq!(
        names(&pods),
        [
            "fresh-es-default-0",
            "products-es-default-0",
            "products-es-default-1"
        ]
    );
    let p = &pods[1];
    assert_eq!(label(p, "common.k8s.elastic.co/type"), "elasticsearch");
    assert_eq!(
        label(p, "elasticsearch.k8s.elastic.co/cluster-name"),
        "products"
    );
    assert_eq!(
        label(p, "elasticsearch.k8s.elastic.co/statefulset-name"),
        "products-es-default"
    );
    assert_eq!(label(p, "elasticsearch.k8s.elastic.co/version"), "9.1.0");
    assert_eq!(
        label(p, "elasticsearch.k8s.elastic.co/node-remote_cluster_client"),
        "true"
    );
    assert_eq!(p["status"]["phase"], "Running");
    assert_eq!(
        p["status"]["conditions"][0],
        json!({"type": "Ready", "status": "True", "lastTransitionTime": p["status"]["conditions"][0]["lastTransitionTime"]})
    );

    // The ES created without status was brought up by the operator.
    let fresh = east.get(&ES, Some("search"), "fresh").unwrap();
    assert_eq!(fresh["status"]["phase"], "Ready");
    assert_eq!(fresh["status"]["health"], "green");
    assert_eq!(fresh["status"]["version"], "8.19.0");
    assert_eq!(fresh["status"]["availableNodes"], 1);
    assert_eq!(
        fresh["status"]["observedGeneration"],
        fresh["metadata"]["generation"]
    );
    // The node answers with the Secret's password.
    let root = east.es_request(
        "search",
        "fresh",
        &EsRequest::new("GET", "/").basic(
            "elastic",
            &east
                .secret_text("search", "fresh-es-elastic-user", "elastic")
                .unwrap(),
        ),
    );
    assert_eq!(root.status, 200);
    assert_eq!(root.body["version"]["number"], "8.19.0");
}

#[test]
fn seeded_statuses_are_kept() {
    let sb = Sandbox::builder()
        .cluster(
            ClusterConfig::new("east")
                .elasticsearch(EsSeed::new("a", "yellow", "9.1.0").health("yellow"))
                .elasticsearch(EsSeed::new("a", "busy", "9.1.0").phase("ApplyingChanges")),
        )
        .start()
        .unwrap();
    let east = sb.cluster("east");
    east.wait_idle(IDLE).unwrap();
    assert_eq!(
        east.get(&ES, Some("a"), "yellow").unwrap()["status"]["health"],
        "yellow"
    );
    assert_eq!(
        east.get(&ES, Some("a"), "busy").unwrap()["status"]["phase"],
        "ApplyingChanges"
    );
}

#[test]
fn remote_cluster_server_service_follows_the_spec() {
    let (_sb, east) = one_es(Duration::ZERO, "r", 3);
    let rcs = || east.get(&ResourceKey::SERVICES, Some("s"), "r-es-remote-cluster");
    assert!(rcs().is_none());
    patch(
        &east,
        &ES,
        "r",
        json!({"spec": {"remoteClusterServer": {"enabled": true}}}),
    );
    east.wait_idle(IDLE).unwrap();
    let svc = rcs().expect("created on enable");
    assert_eq!(
        svc["spec"]["ports"][0],
        json!({"name": "rcs", "port": 9443, "protocol": "TCP", "targetPort": 9443})
    );
    assert_eq!(svc["spec"]["clusterIP"], "None");
    // Exposed through a LoadBalancer: an ingress hostname that never resolves.
    patch(
        &east,
        &ES,
        "r",
        json!({"spec": {"remoteClusterServer": {"service": {"spec": {"type": "LoadBalancer"}}}}}),
    );
    east.wait_idle(IDLE).unwrap();
    let svc = rcs().unwrap();
    assert_eq!(svc["spec"]["type"], "LoadBalancer");
    let host = svc["status"]["loadBalancer"]["ingress"][0]["hostname"]
        .as_str()
        .unwrap();
    assert!(host.ends_with(".invalid"), "{host}");
    patch(
        &east,
        &ES,
        "r",
        json!({"spec": {"remoteClusterServer": {"enabled": false}}}),
    );
    east.wait_idle(IDLE).unwrap();
    assert!(rcs().is_none(), "deleted on disable");
}

#[test]
fn a_spec_change_is_a_rolling_restart_taking_the_operator_delay() {
    let delay = Duration::from_millis(600);
    let (_sb, east) = one_es(delay, "r", 3);
    let start = Instant::now();
    let patched = patch(
        &east,
        &ES,
        "r",
        json!({"spec": {"remoteClusterServer": {"enabled": true}}}),
    );
    assert_eq!(patched["metadata"]["generation"], 2);
    std::thread::sleep(Duration::from_millis(150));
    let es = east.get(&ES, Some("s"), "r").unwrap();
    assert_eq!(es["status"]["phase"], "ApplyingChanges");
    assert_eq!(
        es["status"]["observedGeneration"], 2,
        "set when the reconcile starts, as ECK does"
    );
    assert_eq!(
        es["status"]["conditions"][0]["type"],
        "ReconciliationComplete"
    );
    assert_eq!(es["status"]["conditions"][0]["status"], "False");
    assert_eq!(es["status"]["availableNodes"], 2);
    let not_ready = east
        .list(&ResourceKey::PODS, Some("s"))
        .iter()
        .filter(|p| p["status"]["conditions"][0]["status"] == "False")
        .count();
    assert_eq!(not_ready, 1, "one pod at a time restarts");
    east.wait_idle(IDLE).unwrap();
    assert!(start.elapsed() >= delay, "{:?}", start.elapsed());
    let es = east.get(&ES, Some("s"), "r").unwrap();
    assert_eq!(es["status"]["phase"], "Ready");
    assert_eq!(es["status"]["observedGeneration"], 2);
    assert_eq!(es["status"]["availableNodes"], 3);
    assert!(
        east.list(&ResourceKey::PODS, Some("s"))
            .iter()
            .all(|p| p["status"]["conditions"][0]["status"] == "True")
    );
}

/// Pod name to UID: a restarted pod is a new pod.
fn pod_uids(east: &ClusterHandle) -> std::collections::BTreeMap<String, String> {
    east.list(&ResourceKey::PODS, Some("s"))
        .iter()
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap().to_string(),
                p["metadata"]["uid"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// How many pods of `before` have another UID in `after`.
fn restarted(
    before: &std::collections::BTreeMap<String, String>,
    after: &std::collections::BTreeMap<String, String>,
) -> usize {
    before
        .iter()
        .filter(|(name, uid)| after.get(*name) != Some(*uid))
        .count()
}

/// Patches `s/r` and waits for the operator; the number of pods restarted.
fn restarts_after(east: &ClusterHandle, change: Value) -> usize {
    let before = pod_uids(east);
    patch(east, &ES, "r", change);
    east.wait_idle(IDLE).unwrap();
    let after = pod_uids(east);
    assert_eq!(
        east.get(&ES, Some("s"), "r").unwrap()["status"]["phase"],
        "Ready"
    );
    restarted(&before, &after)
}

#[test]
fn only_pod_template_changes_restart_pods() {
    let (_sb, east) = one_es(Duration::from_millis(300), "r", 2);
    east.create(
        &ES,
        json!({"apiVersion": "elasticsearch.k8s.elastic.co/v1", "kind": "Elasticsearch",
               "metadata": {"name": "other", "namespace": "s"},
               "spec": {"version": "9.1.0", "nodeSets": [{"name": "default", "count": 1}]}}),
    )
    .unwrap();
    east.create(
        &ResourceKey::CONFIGMAPS,
        json!({"metadata": {"name": "cas", "namespace": "s"}, "data": {"ca.crt": ""}}),
    )
    .unwrap();
    east.wait_idle(IDLE).unwrap();
    let no_restart = [
        json!({"spec": {"remoteClusters": [{"name": "o", "elasticsearchRef": {"name": "other"}}]}}),
        json!({"spec": {"transport": {"tls": {"certificateAuthorities": {"configMapName": "cas"}}}}}),
        json!({"spec": {"transport": {"service": {"spec": {"type": "LoadBalancer"}}}}}),
        json!({"metadata": {"annotations": {"example.com/owner": "team-a"}}}),
    ];
    for change in no_restart {
        assert_eq!(restarts_after(&east, change.clone()), 0, "{change}");
    }
    let generation = east.get(&ES, Some("s"), "r").unwrap()["metadata"]["generation"].clone();
    assert_eq!(
        east.get(&ES, Some("s"), "r").unwrap()["status"]["observedGeneration"],
        generation
    );
    let every_pod = [
        json!({"spec": {"nodeSets": [{"name": "default", "count": 2, "config": {"node.attr.zone": "a"}}]}}),
        json!({"spec": {"remoteClusterServer": {"enabled": true}}}),
        json!({"spec": {"nodeSets": [{"name": "default", "count": 2, "config": {"node.attr.zone": "a"},
            "podTemplate": {"metadata": {"labels": {"team": "a"}}}}]}}),
    ];
    for change in every_pod {
        assert_eq!(restarts_after(&east, change.clone()), 2, "{change}");
    }
}

#[test]
fn propagated_annotations_restart_pods() {
    let (_sb, east) = one_es(Duration::from_millis(200), "r", 2);
    let propagate = "eck.k8s.alpha.elastic.co/propagate-annotations";
    assert_eq!(
        restarts_after(
            &east,
            json!({"metadata": {"annotations": {propagate: "example.com/owner"}}})
        ),
        0,
        "nothing to propagate yet"
    );
    assert_eq!(
        restarts_after(
            &east,
            json!({"metadata": {"annotations": {"example.com/owner": "a"}}})
        ),
        2
    );
    assert_eq!(
        restarts_after(
            &east,
            json!({"metadata": {"annotations": {"example.com/other": "a"}}})
        ),
        0,
        "not listed"
    );
    assert_eq!(
        restarts_after(
            &east,
            json!({"metadata": {"annotations": {propagate: "*"}}})
        ),
        2,
        "every annotation now"
    );
    assert_eq!(
        restarts_after(
            &east,
            json!({"metadata": {"annotations": {"elasticsearch.k8s.elastic.co/managed-remote-clusters": "x"}}})
        ),
        0,
        "ECK's own are never propagated"
    );
}

#[test]
fn file_based_secure_settings_apply_in_place_and_the_toggle_restarts() {
    let sb = Sandbox::builder()
        .operator_delay(Duration::from_millis(200))
        .cluster(ClusterConfig::new("east").elasticsearch(EsSeed::new("s", "r", "9.5.0").nodes(2)))
        .start()
        .unwrap();
    let east = sb.cluster("east");
    east.wait_idle(IDLE).unwrap();
    let keystore = || east.es_node("s", "r", |n| n.keystore.clone()).unwrap();
    east.create(
        &ResourceKey::SECRETS,
        json!({"metadata": {"name": "creds", "namespace": "s"}, "stringData": {"cluster.remote.x.credentials": "one"}}),
    )
    .unwrap();
    assert_eq!(
        restarts_after(
            &east,
            json!({"metadata": {"annotations": {"eck.k8s.elastic.co/file-based-secure-settings": "true"}}})
        ),
        2,
        "the toggle removes the keystore init container"
    );
    assert_eq!(
        restarts_after(
            &east,
            json!({"spec": {"secureSettings": [{"secretName": "creds"}]}})
        ),
        0
    );
    assert_eq!(keystore()["cluster.remote.x.credentials"], "one");
    let before = pod_uids(&east);
    patch(
        &east,
        &ResourceKey::SECRETS,
        "creds",
        json!({"stringData": {"cluster.remote.x.credentials": "two"}}),
    );
    east.wait_idle(IDLE).unwrap();
    assert_eq!(
        keystore()["cluster.remote.x.credentials"],
        "two",
        "no reload call"
    );
    assert_eq!(restarted(&before, &pod_uids(&east)), 0);
}

#[test]
fn keystore_changes_take_effect_only_after_the_restart() {
    let (_sb, east) = one_es(Duration::from_millis(500), "l", 1);
    let keystore = || east.es_node("s", "l", |n| n.keystore.clone()).unwrap();
    east.create(
        &ResourceKey::SECRETS,
        json!({"metadata": {"name": "creds", "namespace": "s"}, "stringData": {"cluster.remote.x.credentials": "one"}}),
    )
    .unwrap();
    patch(
        &east,
        &ES,
        "l",
        json!({"spec": {"secureSettings": [{"secretName": "creds"}]}}),
    );
    std::thread::sleep(Duration::from_millis(150));
    assert!(keystore().is_empty(), "not before the restart");
    east.wait_idle(IDLE).unwrap();
    assert_eq!(
        keystore()
            .get("cluster.remote.x.credentials")
            .map(String::as_str),
        Some("one")
    );

    // A content change of the referenced Secret restarts too (no generation change).
    let generation = east.get(&ES, Some("s"), "l").unwrap()["metadata"]["generation"].clone();
    patch(
        &east,
        &ResourceKey::SECRETS,
        "creds",
        json!({"stringData": {"cluster.remote.x.credentials": "two"}}),
    );
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(
        east.get(&ES, Some("s"), "l").unwrap()["status"]["phase"],
        "ApplyingChanges"
    );
    assert_eq!(keystore()["cluster.remote.x.credentials"], "one");
    east.wait_idle(IDLE).unwrap();
    assert_eq!(keystore()["cluster.remote.x.credentials"], "two");
    let es = east.get(&ES, Some("s"), "l").unwrap();
    assert_eq!(es["metadata"]["generation"], generation);
    assert_eq!(es["status"]["phase"], "Ready");

    // A reload does not read a keystore that was not rebuilt (ECK builds it at pod start).
    patch(
        &east,
        &ResourceKey::SECRETS,
        "creds",
        json!({"stringData": {"cluster.remote.x.credentials": "three"}}),
    );
    std::thread::sleep(Duration::from_millis(100));
    let pw = east
        .secret_text("s", "l-es-elastic-user", "elastic")
        .unwrap();
    let r = east.es_request(
        "s",
        "l",
        &EsRequest::new("POST", "/_nodes/reload_secure_settings").basic("elastic", &pw),
    );
    assert_eq!(r.status, 200);
    assert_eq!(keystore()["cluster.remote.x.credentials"], "two");
    east.wait_idle(IDLE).unwrap();
    assert_eq!(keystore()["cluster.remote.x.credentials"], "three");
}

#[test]
fn ca_bundle_content_changes_do_not_restart() {
    let (_sb, east) = one_es(Duration::from_millis(300), "l", 1);
    let other = remote_cluster_sandbox::pki::Ca::new("other").unwrap();
    east.create(
        &ResourceKey::CONFIGMAPS,
        json!({"metadata": {"name": "cas", "namespace": "s"}, "data": {"ca.crt": ""}}),
    )
    .unwrap();
    patch(
        &east,
        &ES,
        "l",
        json!({"spec": {"transport": {"tls": {"certificateAuthorities": {"configMapName": "cas"}}}}}),
    );
    east.wait_idle(IDLE).unwrap();
    patch(
        &east,
        &ResourceKey::CONFIGMAPS,
        "cas",
        json!({"data": {"ca.crt": other.cert.cert_pem}}),
    );
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        east.get(&ES, Some("s"), "l").unwrap()["status"]["phase"],
        "Ready"
    );
    let bundle = east
        .secret_text("s", "l-es-transport-certs-public", "ca.crt")
        .unwrap();
    assert!(bundle.ends_with(&other.cert.cert_pem), "re-exported");
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2);
}

/// ECK's `NewTransportService`/`NewRemoteClusterService` start from the user's template and
/// default only what it leaves unset; both Services publish not-ready addresses whatever their
/// type; the per-nodeSet headless Services carry no transport port (`nodespec.HeadlessService`).
#[test]
fn service_templates_keep_user_ports_and_selectors() {
    let (_sb, east) = one_es(Duration::ZERO, "r", 2);
    let svc = |name: &str| east.get(&ResourceKey::SERVICES, Some("s"), name).unwrap();
    // Defaults: headless, ECK's port and selector, published while not ready.
    let transport = svc("r-es-transport");
    assert_eq!(transport["spec"]["publishNotReadyAddresses"], true);
    assert_eq!(
        transport["spec"]["selector"],
        json!({"common.k8s.elastic.co/type": "elasticsearch", "elasticsearch.k8s.elastic.co/cluster-name": "r"})
    );
    let headless = svc("r-es-default");
    let ports: Vec<&str> = headless["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(ports, ["https"], "no transport port on {headless}");

    // User templates: LoadBalancers with their own ports (443 to the RCS's 9443 by number,
    // 9400 to the transport by the pods' port name) and, on the transport, its own selector.
    let user_selector = json!({"elasticsearch.k8s.elastic.co/cluster-name": "r", "elasticsearch.k8s.elastic.co/node-master": "true"});
    patch(
        &east,
        &ES,
        "r",
        json!({"spec": {
            "remoteClusterServer": {"enabled": true, "service": {
                "metadata": {"labels": {"team": "search"}},
                "spec": {"type": "LoadBalancer", "ports": [{"name": "rcs", "port": 443, "targetPort": 9443, "protocol": "TCP"}]}}},
            "transport": {"service": {"spec": {
                "type": "LoadBalancer",
                "selector": user_selector,
                "ports": [{"name": "tls-transport", "port": 9400, "targetPort": "transport", "protocol": "TCP"}]}}},
        }}),
    );
    east.wait_idle(IDLE).unwrap();
    let rcs = svc("r-es-remote-cluster");
    assert_eq!(
        rcs["spec"]["ports"],
        json!([{"name": "rcs", "port": 443, "targetPort": 9443, "protocol": "TCP"}])
    );
    assert_eq!(rcs["spec"]["publishNotReadyAddresses"], true);
    assert_eq!(rcs["metadata"]["labels"]["team"], "search");
    assert_eq!(
        rcs["metadata"]["labels"]["elasticsearch.k8s.elastic.co/cluster-name"],
        "r"
    );
    let transport = svc("r-es-transport");
    assert_eq!(transport["spec"]["type"], "LoadBalancer");
    assert_eq!(transport["spec"]["ports"][0]["port"], 9400);
    assert_eq!(transport["spec"]["selector"], user_selector);
    assert_eq!(transport["spec"]["publishNotReadyAddresses"], true);
    assert_ne!(transport["spec"]["clusterIP"], "None");

    // The LoadBalancers answer on the template's ports, and only there.
    let pw = east
        .secret_text("s", "r-es-elastic-user", "elastic")
        .unwrap();
    let lb = |svc_name: &str| {
        svc(svc_name)["status"]["loadBalancer"]["ingress"][0]["hostname"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (rcs_lb, transport_lb) = (lb("r-es-remote-cluster"), lb("r-es-transport"));
    let put = |alias: &str, address: String| {
        let r = east.es_request(
            "s",
            "r",
            &EsRequest::new("PUT", "/_cluster/settings")
                .basic("elastic", &pw)
                .json(&json!({"persistent": {"cluster": {"remote": {alias: {"mode": "proxy", "proxy_address": address}}}}})),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    };
    use remote_cluster_sandbox::elasticsearch::{Interface, NotConnectedReason as R};
    // Without credentials the alias is a certificate-model link: the transport connects (the
    // cluster trusts its own CA), the remote cluster server is the wrong listener.
    let reached = |alias: &str| match east.diagnose("s", "r", alias) {
        Ok(_) => Some(Interface::Transport),
        Err(R::Unresolvable { .. }) => None,
        Err(R::WrongInterface { found, .. }) => Some(found),
        other => panic!("{alias}: {other:?}"),
    };
    put("rcs443", format!("{rcs_lb}:443"));
    put("rcs9443", format!("{rcs_lb}:9443"));
    put("t9400", format!("{transport_lb}:9400"));
    put("t9300", format!("{transport_lb}:9300"));
    assert_eq!(reached("rcs443"), Some(Interface::RemoteClusterServer));
    assert_eq!(reached("rcs9443"), None);
    assert_eq!(reached("t9400"), Some(Interface::Transport));
    assert_eq!(reached("t9300"), None);

    // Ports taken out of the template: ECK's defaults come back, the user's selector goes.
    patch(
        &east,
        &ES,
        "r",
        json!({"spec": {
            "remoteClusterServer": {"service": {"spec": {"ports": null}}},
            "transport": {"service": {"spec": {"selector": null, "ports": null}}},
        }}),
    );
    east.wait_idle(IDLE).unwrap();
    assert_eq!(svc("r-es-remote-cluster")["spec"]["ports"][0]["port"], 9443);
    let transport = svc("r-es-transport");
    assert_eq!(transport["spec"]["ports"][0]["port"], 9300);
    assert_eq!(
        transport["spec"]["selector"],
        json!({"common.k8s.elastic.co/type": "elasticsearch", "elasticsearch.k8s.elastic.co/cluster-name": "r"})
    );
}

/// Without ECK's webhook the API server takes what the webhook refuses; ECK's controller then
/// marks the resource `Invalid` with a `Validation` Warning event and reconciles nothing else.
#[test]
fn without_the_webhook_the_controller_marks_an_invalid_spec() {
    let sb = Sandbox::builder()
        .cluster(
            ClusterConfig::new("east")
                .without_webhook()
                .elasticsearch(EsSeed::new("s", "old", "8.9.0").nodes(1)),
        )
        .start()
        .unwrap();
    let east = sb.cluster("east");
    east.wait_idle(IDLE).unwrap();
    let accepted = patch(
        &east,
        &ES,
        "old",
        json!({"spec": {"remoteClusterServer": {"enabled": true}}}),
    );
    assert_eq!(accepted["spec"]["remoteClusterServer"]["enabled"], true);
    east.wait_idle(IDLE).unwrap();
    let es = east.get(&ES, Some("s"), "old").unwrap();
    assert_eq!(es["status"]["phase"], "Invalid");
    assert_eq!(
        es["status"]["observedGeneration"],
        es["metadata"]["generation"]
    );
    let events = east.list(&ResourceKey::EVENTS, Some("s"));
    let validation: Vec<&Value> = events
        .iter()
        .filter(|e| e["reason"] == "Validation")
        .collect();
    assert_eq!(validation.len(), 1, "{events:?}");
    assert_eq!(validation[0]["type"], "Warning");
    assert!(
        validation[0]["message"]
            .as_str()
            .unwrap()
            .contains("minimum required version for remote cluster server is 8.10.0-1"),
        "{}",
        validation[0]["message"]
    );
    assert!(
        east.list(&ResourceKey::SERVICES, Some("s"))
            .iter()
            .all(|s| s["metadata"]["name"] != "old-es-remote-cluster"),
        "nothing of the invalid spec is reconciled"
    );

    patch(
        &east,
        &ES,
        "old",
        json!({"spec": {"remoteClusterServer": null}}),
    );
    east.wait_idle(IDLE).unwrap();
    assert_eq!(
        east.get(&ES, Some("s"), "old").unwrap()["status"]["phase"],
        "Ready",
        "a valid spec is reconciled again"
    );
}

/// ECK sees a Secret's change late (informer, work queue): until then the status stays Ready
/// and the pods stay; then the restart runs as usual.
#[test]
fn a_secure_settings_change_is_seen_after_the_reaction_delay() {
    let sb = Sandbox::builder()
        .operator_delay(Duration::from_millis(200))
        .operator_reaction_delay(Duration::from_millis(600))
        .cluster(ClusterConfig::new("east").elasticsearch(EsSeed::new("s", "r", "9.1.0").nodes(2)))
        .start()
        .unwrap();
    let east = sb.cluster("east");
    east.create(
        &ResourceKey::SECRETS,
        json!({"metadata": {"name": "creds", "namespace": "s"}, "stringData": {"cluster.remote.x.credentials": "one"}}),
    )
    .unwrap();
    patch(
        &east,
        &ES,
        "r",
        json!({"spec": {"secureSettings": [{"secretName": "creds"}]}}),
    );
    east.wait_idle(IDLE).unwrap();
    let before = pod_uids(&east);
    patch(
        &east,
        &ResourceKey::SECRETS,
        "creds",
        json!({"stringData": {"cluster.remote.x.credentials": "two"}}),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        east.get(&ES, Some("s"), "r").unwrap()["status"]["phase"],
        "Ready",
        "not seen yet"
    );
    assert_eq!(restarted(&before, &pod_uids(&east)), 0);
    east.wait_idle(IDLE).unwrap();
    assert_eq!(restarted(&before, &pod_uids(&east)), 2);
    assert_eq!(
        east.es_node("s", "r", |n| n.keystore.clone()).unwrap()["cluster.remote.x.credentials"],
        "two"
    );
}
