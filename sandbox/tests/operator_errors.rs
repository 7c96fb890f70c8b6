//! ECK's failures in the Elasticsearch controller show where users look: a Warning event, phase
//! `ApplyingChanges` and `ReconciliationComplete=False` with the error, and the steps after a
//! stopping error are not taken (real-behaviour.md section 4).

use std::time::Duration;

use remote_cluster_sandbox::elasticsearch::EsRequest;
use remote_cluster_sandbox::{ClusterConfig, ClusterHandle, EsSeed, ResourceKey, Sandbox, Sub};
use serde_json::{Value, json};

const IDLE: Duration = Duration::from_secs(20);
const ES: ResourceKey = ResourceKey::ELASTICSEARCHES;

fn sandbox() -> (Sandbox, ClusterHandle) {
    let sb = Sandbox::builder()
        .operator_delay(Duration::from_millis(50))
        .cluster(
            ClusterConfig::new("east")
                .elasticsearch(EsSeed::new("s", "l", "9.1.0").nodes(1))
                .elasticsearch(EsSeed::new("s", "r", "9.1.0").nodes(1)),
        )
        .start()
        .unwrap();
    let east = sb.cluster("east");
    east.wait_idle(IDLE).unwrap();
    (sb, east)
}

fn patch_es(east: &ClusterHandle, name: &str, patch: Value) {
    east.merge_patch(&ES, Some("s"), name, &patch, Sub::Main)
        .unwrap();
    east.wait_idle(IDLE).unwrap();
}

/// Phase, `ReconciliationComplete` status and its message.
fn reconciled(east: &ClusterHandle, name: &str) -> (String, String, Option<String>) {
    let es = east.get(&ES, Some("s"), name).unwrap();
    let cond = es["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "ReconciliationComplete")
        .unwrap()
        .clone();
    (
        es["status"]["phase"].as_str().unwrap().to_string(),
        cond["status"].as_str().unwrap().to_string(),
        cond["message"].as_str().map(str::to_string),
    )
}

/// `(reason, action, message)` of the Warning events on Elasticsearch `s/name`.
fn warnings(east: &ClusterHandle, name: &str) -> Vec<(String, String, String)> {
    east.list(&ResourceKey::EVENTS, Some("s"))
        .iter()
        .filter(|e| e["type"] == "Warning" && e["involvedObject"]["name"] == name)
        .map(|e| {
            let f = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (f("reason"), f("action"), f("message"))
        })
        .collect()
}

fn not_reconciled(message: &str) -> (String, String, Option<String>) {
    (
        "ApplyingChanges".into(),
        "False".into(),
        Some(message.to_string()),
    )
}

fn done() -> (String, String, Option<String>) {
    ("Ready".into(), "True".into(), None)
}

#[test]
fn a_missing_transport_ca_configmap_stops_the_reconcile() {
    let (_sb, east) = sandbox();
    let ca_before = east
        .secret_text("s", "l-es-transport-certs-public", "ca.crt")
        .unwrap();
    let pod_uid = |e: &ClusterHandle| {
        e.get(&ResourceKey::PODS, Some("s"), "l-es-default-0")
            .unwrap()["metadata"]["uid"]
            .clone()
    };
    let uid_before = pod_uid(&east);
    // A spec change that would restart the nodes, with a ConfigMap that does not exist.
    patch_es(
        &east,
        "l",
        json!({"spec": {"transport": {"tls": {"certificateAuthorities": {"configMapName": "cas"}}},
                        "nodeSets": [{"name": "default", "count": 1, "config": {"x": "y"}}]}}),
    );
    let missing = "could not retrieve config map s/cas specified in spec.transport.tls.certificateAuthorities: configmaps \"cas\" not found";
    assert_eq!(reconciled(&east, "l"), not_reconciled(missing));
    assert!(
        warnings(&east, "l").contains(&("Unexpected".into(), "GetSecret".into(), missing.into())),
        "{:?}",
        warnings(&east, "l")
    );
    let es = east.get(&ES, Some("s"), "l").unwrap();
    assert_eq!(
        es["status"]["observedGeneration"], es["metadata"]["generation"],
        "ECK observes the generation it failed on"
    );
    // Stopped before the node specs: no restart, nothing published.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(pod_uid(&east), uid_before);
    assert_eq!(
        east.get(&ResourceKey::PODS, Some("s"), "l-es-default-0")
            .unwrap()["status"]["conditions"][0]["status"],
        "True"
    );

    // A ConfigMap without ca.crt.
    east.create(
        &ResourceKey::CONFIGMAPS,
        json!({"metadata": {"name": "cas", "namespace": "s"}, "data": {"other": "x"}}),
    )
    .unwrap();
    east.wait_idle(IDLE).unwrap();
    let no_file = "config map s/cas specified in spec.transport.tls.certificateAuthorities must contain ca.crt file";
    assert_eq!(reconciled(&east, "l"), not_reconciled(no_file));
    assert_eq!(
        east.secret_text("s", "l-es-transport-certs-public", "ca.crt")
            .unwrap(),
        ca_before
    );

    // Fixed: the reconcile goes on, the rollout happens, the error goes.
    let r_ca = east
        .secret_text("s", "r-es-transport-certs-public", "ca.crt")
        .unwrap();
    east.merge_patch(
        &ResourceKey::CONFIGMAPS,
        Some("s"),
        "cas",
        &json!({"data": {"ca.crt": r_ca}}),
        Sub::Main,
    )
    .unwrap();
    east.wait_idle(IDLE).unwrap();
    assert_eq!(reconciled(&east, "l"), done());
    assert!(
        east.secret_text("s", "l-es-transport-certs-public", "ca.crt")
            .unwrap()
            .ends_with(&r_ca)
    );
}

#[test]
fn secure_settings_entries_that_cannot_be_read_stop_the_reconcile() {
    let (_sb, east) = sandbox();
    east.create(
        &ResourceKey::SECRETS,
        json!({"metadata": {"name": "k", "namespace": "s"}, "stringData": {"a": "1"}}),
    )
    .unwrap();
    patch_es(
        &east,
        "l",
        json!({"spec": {"secureSettings": [{"secretName": "k", "entries": []}]}}),
    );
    assert_eq!(
        reconciled(&east, "l"),
        not_reconciled("set is empty in secure settings secret k")
    );
    patch_es(
        &east,
        "l",
        json!({"spec": {"secureSettings": [{"secretName": "k", "entries": [{"key": "b"}]}]}}),
    );
    assert_eq!(
        reconciled(&east, "l"),
        not_reconciled("key b not found in secure settings secret k")
    );
    // A Secret that does not exist: a Warning event, and the reconcile completes without it.
    patch_es(
        &east,
        "l",
        json!({"spec": {"secureSettings": [{"secretName": "gone"}]}}),
    );
    assert_eq!(reconciled(&east, "l"), done());
    assert!(warnings(&east, "l").contains(&(
        "Unexpected".into(),
        "GetSecret".into(),
        "Secure settings secret not found: s/gone".into()
    )));
}

#[test]
fn a_refused_remote_settings_update_is_an_error_of_the_reconcile() {
    let (_sb, east) = sandbox();
    let pw = east
        .secret_text("s", "l-es-elastic-user", "elastic")
        .unwrap();
    // The alias is already in proxy mode: ECK's seeds are refused.
    let put = east.es_request(
        "s",
        "l",
        &EsRequest::new("PUT", "/_cluster/settings")
            .basic("elastic", &pw)
            .json(&json!({"persistent": {"cluster.remote.prod.mode": "proxy", "cluster.remote.prod.proxy_address": "h:9300"}})),
    );
    assert_eq!(put.status, 200, "{}", put.body);
    patch_es(
        &east,
        "l",
        json!({"spec": {"remoteClusters": [{"name": "prod", "elasticsearchRef": {"name": "r"}}]}}),
    );
    let (phase, status, message) = reconciled(&east, "l");
    assert_eq!(
        (phase.as_str(), status.as_str()),
        ("ApplyingChanges", "False")
    );
    let message = message.unwrap();
    assert!(
        message.starts_with("400 Bad Request: {Status:400 Error:{")
            && message.contains("Setting \"cluster.remote.prod.seeds\" cannot be used with the configured \"cluster.remote.prod.mode\" [required=SNIFF, configured=PROXY]")
            && message.contains("Type:illegal_argument_exception"),
        "{message}"
    );
    assert!(warnings(&east, "l").contains(&(
        "Unexpected".into(),
        "RemoteClusterConfiguration".into(),
        "Could not update remote clusters in Elasticsearch settings, re-queuing".into()
    )));
    // The alias's own settings taken out: ECK's next PUT works and the error goes.
    let put = east.es_request(
        "s",
        "l",
        &EsRequest::new("PUT", "/_cluster/settings")
            .basic("elastic", &pw)
            .json(&json!({"persistent": {"cluster.remote.prod.mode": null, "cluster.remote.prod.proxy_address": null}})),
    );
    assert_eq!(put.status, 200, "{}", put.body);
    // A change of the resource makes the operator pass again.
    patch_es(&east, "l", json!({"metadata": {"labels": {"retry": "1"}}}));
    assert_eq!(reconciled(&east, "l"), done());
}
