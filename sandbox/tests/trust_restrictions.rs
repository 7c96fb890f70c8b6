//! Transport trust restrictions (`xpack.security.transport.ssl.trust_restrictions.path`) in the
//! certificate security model, as Elastic documents it for connecting an Elastic Cloud Hosted
//! deployment with an ECK cluster: the ECK side trusts the regional CA and restricts which node
//! names it accepts, the hosted side does the same, and a restriction that leaves out the ECK
//! cluster's own nodes keeps them from forming a cluster.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use remote_cluster_sandbox::elasticsearch::{
    ClusterFormation, EsId, EsRequest, NotConnectedReason,
};
use remote_cluster_sandbox::{
    ClusterConfig, ClusterHandle, EsSeed, ExternalElasticsearch, ResourceKey, Sandbox, Sub,
};
use serde_json::{Value, json};

mod common;

const IDLE: Duration = Duration::from_secs(20);
const ES: ResourceKey = ResourceKey::ELASTICSEARCHES;
const NS: &str = "search";
const NAME: &str = "products";
const CONFIG: &str = "/usr/share/elasticsearch/config";
/// The `node_set` argument for both settings, with the two files of `ech-trust`.
const TRUST: Option<(&str, &str)> = Some(("ca.crt", "trust.yml"));
/// The pattern of `products`' own nodes, which the downloaded `trust.yml` lacks.
const ECK_PATTERN: &str = "*.node.products.search.es.local";
/// The ECH console's scope id for an ECK namespace (Elastic's ECH-to-ECK page).
const SCOPE_ID: &str = "search.es.local";
const ORG: &str = "1053523734";
const OTHER_ORG: &str = "2718281828";

fn sandbox(nodes: u32) -> Sandbox {
    Sandbox::builder()
        .operator_delay(Duration::from_millis(50))
        .cluster(
            ClusterConfig::new("east").elasticsearch(EsSeed::new(NS, NAME, "9.1.0").nodes(nodes)),
        )
        .hosted_external_elasticsearch("ech", "9.1.0", ORG)
        .hosted_external_elasticsearch("intruder", "9.1.0", OTHER_ORG)
        .start()
        .unwrap()
}

/// The downloaded `trust.yml` with its second entry replaced by the ECK cluster's own pattern,
/// as the documentation tells.
fn corrected_trust_yml(sb: &Sandbox) -> String {
    let downloaded = sb.external("ech").hosted_trust_yml(SCOPE_ID);
    let wrong = format!("*.node.*.cluster.{SCOPE_ID}.account");
    assert!(downloaded.contains(&wrong), "{downloaded}");
    downloaded.replace(&wrong, ECK_PATTERN)
}

/// ConfigMap `ech-trust` with the regional CA (`ca.crt`) and `trust.yml`.
fn trust_config_map(east: &ClusterHandle, ca: &str, trust_yml: &str) {
    let cm = json!({"metadata": {"name": "ech-trust", "namespace": NS},
        "data": {"ca.crt": ca, "trust.yml": trust_yml}});
    if east
        .get(&ResourceKey::CONFIGMAPS, Some(NS), "ech-trust")
        .is_some()
    {
        east.merge_patch(
            &ResourceKey::CONFIGMAPS,
            Some(NS),
            "ech-trust",
            &cm,
            Sub::Main,
        )
        .unwrap();
    } else {
        east.create(&ResourceKey::CONFIGMAPS, cm).unwrap();
    }
}

/// Writes `ech-trust` with `ech`'s regional CA and `trust_yml`, then applies `sets`.
fn roll_out_trust(
    east: &ClusterHandle,
    ech: &ExternalElasticsearch,
    trust_yml: &str,
    sets: Vec<Value>,
) {
    trust_config_map(east, &ech.transport_ca_pem, trust_yml);
    apply_node_sets(east, sets);
}

/// A nodeSet; with `trust`, the ConfigMap mounted at `config/ech-trust` and both settings.
fn node_set(name: &str, count: u32, trust: Option<(&str, &str)>) -> Value {
    let mut set = json!({"name": name, "count": count, "config": {"node.store.allow_mmap": false}});
    if let Some((ca_file, restrictions_file)) = trust {
        set["config"]["xpack.security.transport.ssl.certificate_authorities"] =
            json!([format!("{CONFIG}/ech-trust/{ca_file}")]);
        if !restrictions_file.is_empty() {
            set["config"]["xpack.security.transport.ssl.trust_restrictions.path"] =
                json!(format!("{CONFIG}/ech-trust/{restrictions_file}"));
        }
        set["podTemplate"] = json!({"spec": {
            "volumes": [{"name": "ech-trust", "configMap": {"name": "ech-trust"}}],
            "containers": [{"name": "elasticsearch", "volumeMounts": [
                {"name": "ech-trust", "mountPath": format!("{CONFIG}/ech-trust"), "readOnly": true}]}]}});
    }
    set
}

/// `set` with a pod template annotation, which makes the operator roll its pods out again.
fn restarted(mut set: Value, annotation: &str, value: &str) -> Value {
    set["podTemplate"]["metadata"]["annotations"][annotation] = json!(value);
    set
}

/// The documented setup on every nodeSet, the transport behind a LoadBalancer.
fn apply_node_sets(east: &ClusterHandle, sets: Vec<Value>) {
    east.merge_patch(
        &ES,
        Some(NS),
        NAME,
        &json!({"spec": {"nodeSets": sets, "transport": {"service": {"spec": {"type": "LoadBalancer"}}}}}),
        Sub::Main,
    )
    .unwrap();
    east.wait_idle(IDLE).unwrap();
}

fn es(east: &ClusterHandle) -> Value {
    east.get(&ES, Some(NS), NAME).unwrap()
}

/// `products` has formed: Ready and green.
#[track_caller]
fn assert_green(east: &ClusterHandle) -> Value {
    let now = es(east);
    assert_eq!(now["status"]["phase"], "Ready", "{}", now["status"]);
    assert_eq!(now["status"]["health"], "green");
    now
}

fn condition(es: &Value, ty: &str) -> String {
    es["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == ty)
        .map(|c| c["status"].as_str().unwrap().to_string())
        .unwrap()
}

fn pods_ready(east: &ClusterHandle) -> Vec<(String, String)> {
    east.list(&ResourceKey::PODS, Some(NS))
        .iter()
        .map(|p| {
            let ready = p["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == "Ready")
                .unwrap()["status"]
                .as_str()
                .unwrap()
                .to_string();
            (p["metadata"]["name"].as_str().unwrap().to_string(), ready)
        })
        .collect()
}

fn transport_lb(east: &ClusterHandle) -> String {
    let host = east
        .get(&ResourceKey::SERVICES, Some(NS), "products-es-transport")
        .unwrap()["status"]["loadBalancer"]["ingress"][0]["hostname"]
        .as_str()
        .unwrap()
        .to_string();
    format!("{host}:9300")
}

/// `PUT _cluster/settings` on an external: alias `eck` in proxy mode to `address`.
fn external_remote(sb: &Sandbox, external: &str, address: &str) {
    let ext = sb.external(external);
    let r = sb.external_request(
        external,
        &EsRequest::new("PUT", "/_cluster/settings")
            .basic("elastic", &ext.password)
            .json(&json!({"persistent": {"cluster": {"remote": {"eck": {"mode": "proxy", "proxy_address": address}}}}})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

/// `external`'s administrator trusts the ECK cluster's CA and node names.
fn external_trusts_eck(sb: &Sandbox, east: &ClusterHandle, external: &str) {
    sb.external_admin_trust_transport(external, &eck_ca(east), &[ECK_PATTERN])
        .unwrap();
}

/// `external` trusts the ECK cluster, then adds it as remote `eck` through `lb`.
fn external_links_eck(sb: &Sandbox, east: &ClusterHandle, external: &str, lb: &str) {
    external_trusts_eck(sb, east, external);
    external_remote(sb, external, lb);
}

/// Once `external` trusts the ECK cluster's CA for the node names `patterns` alone, which leave
/// out `products-es-default-0`, it refuses its link `eck` through `lb`.
#[track_caller]
fn assert_external_restricts(
    sb: &Sandbox,
    east: &ClusterHandle,
    external: &str,
    patterns: &[&str],
    lb: &str,
) {
    sb.external_admin_trust_transport(external, &eck_ca(east), patterns)
        .unwrap();
    assert_eq!(
        sb.external_diagnose(external, "eck"),
        Err(NotConnectedReason::TrustRestricted {
            address: lb.to_string(),
            rejected_by: sb.external(external).id,
            node_name: "products-es-default-0.node.products.search.es.local".into(),
        })
    );
}

/// Whether external `external` is connected to alias `eck` once asked to try again
/// (`_resolve/cluster`: Elasticsearch keeps a failed attempt until something asks).
fn external_connected(sb: &Sandbox, external: &str) -> Value {
    let ext = sb.external(external);
    let resolved = sb.external_request(
        external,
        &EsRequest::new("GET", "/_resolve/cluster/eck:*").basic("elastic", &ext.password),
    );
    assert_eq!(resolved.status, 200, "{}", resolved.body);
    let r = sb.external_request(
        external,
        &EsRequest::new("GET", "/_remote/info").basic("elastic", &ext.password),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["eck"]["connected"].clone()
}

/// `_remote/info` of `products` once it was asked to connect `alias` again (`_resolve/cluster`).
fn eck_remote_info(east: &ClusterHandle, alias: &str) -> Value {
    let pw = east
        .secret_text(NS, &format!("{NAME}-es-elastic-user"), "elastic")
        .unwrap();
    let resolved = east.es_request(
        NS,
        NAME,
        &EsRequest::new("GET", &format!("/_resolve/cluster/{alias}:*")).basic("elastic", &pw),
    );
    assert_eq!(resolved.status, 200, "{}", resolved.body);
    east.remote_info(NS, NAME)
}

/// `PUT _cluster/settings` on `products`: alias `alias` in proxy mode to `address`.
fn eck_remote(east: &ClusterHandle, alias: &str, address: &str) {
    let pw = east
        .secret_text(NS, "products-es-elastic-user", "elastic")
        .unwrap();
    let r = east.es_request(
        NS,
        NAME,
        &EsRequest::new("PUT", "/_cluster/settings")
            .basic("elastic", &pw)
            .json(&json!({"persistent": {"cluster": {"remote": {alias: {"mode": "proxy", "proxy_address": address}}}}})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

fn eck_id() -> EsId {
    EsId::new("east", NS, NAME)
}

fn eck_ca(east: &ClusterHandle) -> String {
    east.secret_text(NS, "products-es-transport-certs-public", "ca.crt")
        .unwrap()
}

/// `east` once the operator is idle, and the hosted deployment `ech`.
fn east_and_ech(sb: &Sandbox) -> (ClusterHandle, ExternalElasticsearch) {
    let east = sb.cluster("east");
    east.wait_idle(IDLE).unwrap();
    (east, sb.external("ech"))
}

/// The sandbox of `products` with `nodes` nodes, then `sets` with ECH's CA and the corrected
/// `trust.yml` rolled out; `east` and `ech`.
fn with_corrected_trust(
    nodes: u32,
    sets: Vec<Value>,
) -> (Sandbox, ClusterHandle, ExternalElasticsearch) {
    let sb = sandbox(nodes);
    let (east, ech) = east_and_ech(&sb);
    roll_out_trust(&east, &ech, &corrected_trust_yml(&sb), sets);
    (sb, east, ech)
}

#[test]
fn hosted_externals_share_a_regional_transport_ca_and_name_their_nodes_like_ech() {
    let sb = sandbox(1);
    let ech = sb.external("ech");
    let intruder = sb.external("intruder");
    let dep = ech.deployment_id.clone().unwrap();
    assert_eq!(dep.len(), 32);
    assert!(dep.chars().all(|c| c.is_ascii_hexdigit()), "{dep}");
    assert_eq!(ech.organization_id.as_deref(), Some(ORG));
    assert_ne!(intruder.deployment_id, ech.deployment_id);
    // Stable: derived from the name, not random.
    let again = sandbox(1).external("ech");
    assert_eq!(again.deployment_id, ech.deployment_id);
    assert_eq!(
        ech.transport_node_names,
        [
            format!("instance-0000000000.node.{dep}.cluster.{ORG}.account"),
            format!("instance-0000000001.node.{dep}.cluster.{ORG}.account"),
        ]
    );
    assert_eq!(
        ech.transport_subject_pattern,
        format!("*.node.{dep}.cluster.{ORG}.account")
    );
    assert_eq!(
        ech.hosted_trust_yml(SCOPE_ID),
        format!(
            "trust.subject_name:\n  - \"*.node.{dep}.cluster.{ORG}.account\"\n  - \"*.node.*.cluster.search.es.local.account\"\n"
        )
    );
    // One regional CA signs every hosted deployment's transport; the remote cluster server
    // keeps a CA of its own.
    assert_eq!(ech.transport_ca_pem, intruder.transport_ca_pem);
    assert_ne!(ech.transport_ca_pem, ech.remote_cluster_ca_pem);
    assert!(
        ech.transport_address.ends_with(":9400"),
        "{}",
        ech.transport_address
    );
    assert!(ech.remote_cluster_address.ends_with(":9443"));
}

#[test]
fn hosted_deployment_connects_to_eck_with_the_ca_and_corrected_restrictions_on_every_node_set() {
    let (sb, east, ech) = with_corrected_trust(
        2,
        vec![node_set("default", 2, TRUST), node_set("warm", 1, TRUST)],
    );
    let now = assert_green(&east);
    assert_eq!(now["status"]["availableNodes"], 3);
    assert!(pods_ready(&east).iter().all(|(_, r)| r == "True"));
    assert_eq!(
        east.es_node(NS, NAME, |n| n.transport_node_names.clone())
            .unwrap(),
        [
            "products-es-default-0.node.products.search.es.local",
            "products-es-default-1.node.products.search.es.local",
            "products-es-warm-0.node.products.search.es.local",
        ]
    );

    // ECH -> ECK: the deployment reaches the LoadBalancer of the transport.
    let lb = transport_lb(&east);
    external_remote(&sb, "ech", &lb);
    assert_eq!(
        external_connected(&sb, "ech"),
        false,
        "ECH does not trust ECK's CA yet"
    );
    assert!(matches!(
        sb.external_diagnose("ech", "eck"),
        Err(NotConnectedReason::UntrustedCertificate { .. })
    ));
    // Trusting the CA is not enough: ECH restricts transport trust to the names it was given.
    assert_external_restricts(&sb, &east, "ech", &[], &lb);
    external_trusts_eck(&sb, &east, "ech");
    assert_eq!(external_connected(&sb, "ech"), true);
    let connection = sb.external_diagnose("ech", "eck").unwrap();
    assert_eq!(connection.target, eck_id());

    // ECK -> ECH through the deployment's proxy (transport port 9400), the same trust both ways.
    eck_remote(&east, "ech", &ech.transport_address);
    let info = eck_remote_info(&east, "ech");
    assert_eq!(info["ech"]["connected"], true, "{info}");
}

#[test]
fn another_organization_signed_by_the_same_regional_ca_is_refused_by_the_restrictions() {
    let (sb, east, _) = with_corrected_trust(1, vec![node_set("default", 1, TRUST)]);
    let intruder = sb.external("intruder");
    let lb = transport_lb(&east);
    // The intruder's administrator trusts the ECK cluster fully: only the ECK side can refuse.
    external_links_eck(&sb, &east, "intruder", &lb);
    assert_eq!(external_connected(&sb, "intruder"), false);
    let refused = sb.external_diagnose("intruder", "eck").unwrap_err();
    assert_eq!(
        refused,
        NotConnectedReason::TrustRestricted {
            address: lb.clone(),
            rejected_by: eck_id(),
            node_name: intruder.transport_node_names[0].clone(),
        }
    );
    assert_eq!(
        refused.to_string(),
        format!(
            "the transport connection through [{lb}] is refused: [east/search/products] does not accept the certificate of node [{}], whose name matches none of its trust restrictions",
            intruder.transport_node_names[0]
        )
    );
    // The other direction: the ECK cluster does not accept the intruder's proxy either.
    eck_remote(&east, "intruder", &intruder.transport_address);
    assert_eq!(
        east.diagnose(NS, NAME, "intruder"),
        Err(NotConnectedReason::TrustRestricted {
            address: intruder.transport_address.clone(),
            rejected_by: eck_id(),
            node_name: intruder.transport_node_names[0].clone(),
        })
    );
    // The deployment that the restrictions name connects.
    external_links_eck(&sb, &east, "ech", &lb);
    assert_eq!(external_connected(&sb, "ech"), true);
}

#[test]
fn without_restrictions_any_deployment_signed_by_the_regional_ca_is_accepted() {
    let sb = sandbox(1);
    let (east, ech) = east_and_ech(&sb);
    // Only the CA: what trusting ECH's CA alone amounts to.
    roll_out_trust(
        &east,
        &ech,
        "",
        vec![node_set("default", 1, Some(("ca.crt", "")))],
    );
    assert_eq!(es(&east)["status"]["phase"], "Ready");
    let lb = transport_lb(&east);
    external_links_eck(&sb, &east, "intruder", &lb);
    assert_eq!(
        external_connected(&sb, "intruder"),
        true,
        "a deployment of another organization in the same region gets in"
    );
    eck_remote(
        &east,
        "intruder",
        &sb.external("intruder").transport_address,
    );
    assert_eq!(
        eck_remote_info(&east, "intruder")["intruder"]["connected"],
        true
    );
}

#[test]
fn settings_on_one_node_set_only_do_not_connect() {
    let (sb, east, ech) = with_corrected_trust(
        2,
        vec![node_set("default", 2, TRUST), node_set("warm", 1, None)],
    );
    // The cluster forms (the restrictions name its own nodes), but `warm` does not trust the
    // regional CA: connections that land there fail.
    assert_eq!(es(&east)["status"]["phase"], "Ready");
    let lb = transport_lb(&east);
    external_links_eck(&sb, &east, "ech", &lb);
    assert_eq!(external_connected(&sb, "ech"), false);
    assert!(
        matches!(
            sb.external_diagnose("ech", "eck"),
            Err(NotConnectedReason::RemoteDoesNotTrustLocal { .. })
        ),
        "{:?}",
        sb.external_diagnose("ech", "eck")
    );
    eck_remote(&east, "ech", &ech.transport_address);
    assert!(matches!(
        east.diagnose(NS, NAME, "ech"),
        Err(NotConnectedReason::UntrustedCertificate { .. })
    ));

    // Both settings and the mount on every nodeSet, as documented: both directions connect.
    apply_node_sets(
        &east,
        vec![node_set("default", 2, TRUST), node_set("warm", 1, TRUST)],
    );
    assert_eq!(external_connected(&sb, "ech"), true);
    assert_eq!(eck_remote_info(&east, "ech")["ech"]["connected"], true);
}

#[test]
fn a_single_node_forms_even_when_its_own_name_is_not_in_the_restrictions() {
    // A node does not open a transport connection to itself, so the downloaded file only
    // breaks clusters of several nodes.
    let sb = sandbox(1);
    let (east, ech) = east_and_ech(&sb);
    roll_out_trust(
        &east,
        &ech,
        &ech.hosted_trust_yml(SCOPE_ID),
        vec![node_set("default", 1, TRUST)],
    );
    assert_eq!(es(&east)["status"]["phase"], "Ready");
    // ECH connects to it (the file names ECH), but the ECK node would refuse a second node.
    external_links_eck(&sb, &east, "ech", &transport_lb(&east));
    assert_eq!(external_connected(&sb, "ech"), true);
}

async fn kube_client(sb: &Sandbox) -> kube::Client {
    let kc = Kubeconfig::from_yaml(&sb.kubeconfig_yaml()).unwrap();
    let opts = KubeConfigOptions {
        context: Some("east".into()),
        ..Default::default()
    };
    let cfg = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

/// `GET path` on pod `products-es-default-0` port 9200 through a kube-rs port-forward, over
/// HTTPS verified with the published HTTP CA; `None` when the kubelet refuses the port.
async fn es_through_port_forward(
    sb: &Sandbox,
    east: &ClusterHandle,
    path: &str,
) -> Option<(u16, Value)> {
    let pods: Api<Pod> = Api::namespaced(kube_client(sb).await, NS);
    let mut pf = pods
        .portforward("products-es-default-0", &[9200])
        .await
        .unwrap();
    let errors = pf.take_error(9200).unwrap();
    let stream = pf.take_stream(9200).unwrap();
    let ca = east
        .secret_text(NS, "products-es-http-certs-public", "ca.crt")
        .unwrap();
    let connect = common::https(stream, &ca, "products-es-http.search.svc");
    let Ok(Ok(mut es)) = tokio::time::timeout(Duration::from_secs(5), connect).await else {
        let msg = tokio::time::timeout(Duration::from_secs(5), errors)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        assert!(msg.contains("9200"), "{msg}");
        return None;
    };
    let password = east
        .secret_text(NS, "products-es-elastic-user", "elastic")
        .unwrap();
    let (status, _, body) =
        common::request(&mut es, "GET", "localhost", path, &password, None).await;
    Some((status, body))
}

/// `products` has not formed although its rollout finished: what its nodes make of it.
fn assert_not_formed(east: &ClusterHandle) -> ClusterFormation {
    let now = es(east);
    let st = &now["status"];
    assert_eq!(st["phase"], "ApplyingChanges", "{st}");
    assert_eq!(st["health"], "unknown");
    assert_eq!(st["availableNodes"], 0);
    assert_eq!(condition(&now, "ElasticsearchIsReachable"), "False");
    assert_eq!(condition(&now, "ReconciliationComplete"), "False");
    // The rollout itself finished: the operator saw this generation.
    assert_eq!(st["observedGeneration"], now["metadata"]["generation"]);
    let pods = pods_ready(east);
    assert!(!pods.is_empty());
    assert!(pods.iter().all(|(_, r)| r == "False"), "{pods:?}");
    east.es_node(NS, NAME, |n| n.formation.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_downloaded_trust_yml_keeps_eck_nodes_apart_until_a_fixed_one_rolls_out() {
    let sb = sandbox(2);
    let (east, ech) = tokio::task::block_in_place(|| east_and_ech(&sb));
    external_trusts_eck(&sb, &east, "ech");
    // The file as downloaded: its second entry does not match ECK's node names.
    let downloaded = ech.hosted_trust_yml(SCOPE_ID);
    let sets = vec![node_set("default", 2, TRUST)];
    tokio::task::block_in_place(|| roll_out_trust(&east, &ech, &downloaded, sets));
    let formation = assert_not_formed(&east);
    assert!(
        matches!(&formation, ClusterFormation::NoMaster { reason } if reason.contains("products-es-default-1.node.products.search.es.local")),
        "{formation:?}"
    );
    // Still so on later passes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::block_in_place(|| east.wait_idle(IDLE)).unwrap();
    assert_not_formed(&east);

    // The nodes run: the port-forward reaches one, which has no master.
    let (status, body) = es_through_port_forward(&sb, &east, "/_cluster/settings")
        .await
        .expect("the HTTP server of a node without master answers");
    assert_eq!(
        (status, body),
        (
            503,
            json!({"error":{"root_cause":[{"type":"master_not_discovered_exception","reason":null}],"type":"master_not_discovered_exception","reason":null},"status":503})
        )
    );
    let (status, root) = es_through_port_forward(&sb, &east, "/").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(root["cluster_uuid"], "_na_");

    // Nobody can use it as a remote.
    let lb = transport_lb(&east);
    external_remote(&sb, "ech", &lb);
    assert_eq!(external_connected(&sb, "ech"), false);
    assert_eq!(
        sb.external_diagnose("ech", "eck"),
        Err(NotConnectedReason::RemoteUnavailable {
            address: lb.clone(),
            remote: eck_id(),
        })
    );

    // Fix the file and roll the pods out again.
    let before = es(&east)["metadata"]["generation"].as_i64().unwrap();
    let fixed = restarted(
        node_set("default", 2, TRUST),
        "kubectl.kubernetes.io/restartedAt",
        "2025-01-01T00:00:00Z",
    );
    let corrected = corrected_trust_yml(&sb);
    tokio::task::block_in_place(|| roll_out_trust(&east, &ech, &corrected, vec![fixed]));
    let now = assert_green(&east);
    assert_eq!(now["metadata"]["generation"], before + 1);
    assert_eq!(now["status"]["availableNodes"], 2);
    assert_eq!(condition(&now, "ElasticsearchIsReachable"), "True");
    assert!(pods_ready(&east).iter().all(|(_, r)| r == "True"));
    let (status, _) = es_through_port_forward(&sb, &east, "/_cluster/settings")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(external_connected(&sb, "ech"), true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_trust_restrictions_file_keeps_the_nodes_from_starting() {
    let sb = sandbox(2);
    let (east, ech) = tokio::task::block_in_place(|| east_and_ech(&sb));
    let corrected = corrected_trust_yml(&sb);

    // A file name that is not in the ConfigMap.
    let sets = vec![node_set("default", 2, Some(("ca.crt", "trust.yaml")))];
    tokio::task::block_in_place(|| roll_out_trust(&east, &ech, &corrected, sets));
    let formation = assert_not_formed(&east);
    assert!(
        matches!(&formation, ClusterFormation::NodesNotStarted { reason } if reason.contains("NoSuchFileException")),
        "{formation:?}"
    );
    // Nothing listens: the kubelet refuses the port, the API answers nothing.
    assert_eq!(
        es_through_port_forward(&sb, &east, "/").await,
        None,
        "no HTTP server"
    );
    let pw = east
        .secret_text(NS, "products-es-elastic-user", "elastic")
        .unwrap();
    let r = east.es_request(NS, NAME, &EsRequest::new("GET", "/").basic("elastic", &pw));
    assert_eq!(r.status, 503);

    // The right name, but the content is not YAML.
    let not_yaml = "trust.subject_name: [\"*.account\"\n";
    let sets = vec![node_set("default", 2, TRUST)];
    tokio::task::block_in_place(|| roll_out_trust(&east, &ech, not_yaml, sets));
    let formation = assert_not_formed(&east);
    assert!(
        matches!(&formation, ClusterFormation::NodesNotStarted { reason } if reason.contains("invalid YAML")),
        "{formation:?}"
    );

    // A valid file and another rollout.
    let fixed = restarted(node_set("default", 2, TRUST), "fix", "1");
    tokio::task::block_in_place(|| roll_out_trust(&east, &ech, &corrected, vec![fixed]));
    assert_green(&east);
    let r = east.es_request(NS, NAME, &EsRequest::new("GET", "/").basic("elastic", &pw));
    assert_eq!(r.status, 200);
}

#[test]
fn a_self_managed_external_restricts_only_once_it_names_patterns() {
    let sb = Sandbox::builder()
        .operator_delay(Duration::from_millis(50))
        .cluster(ClusterConfig::new("east").elasticsearch(EsSeed::new(NS, NAME, "9.1.0").nodes(1)))
        .external_elasticsearch("selfmanaged", "9.1.0")
        .start()
        .unwrap();
    let east = sb.cluster("east");
    east.wait_idle(IDLE).unwrap();
    let ext = sb.external("selfmanaged");
    assert_eq!(ext.transport_ca_pem, ext.remote_cluster_ca_pem);
    assert_eq!(
        ext.transport_node_names,
        ["selfmanaged-0.node.selfmanaged.external.es.local"]
    );
    assert_eq!(
        ext.transport_subject_pattern,
        "*.node.selfmanaged.external.es.local"
    );
    assert_eq!(ext.deployment_id, None);
    // ECK trusts its CA through spec.transport.tls.certificateAuthorities.
    east.create(
        &ResourceKey::CONFIGMAPS,
        json!({"metadata": {"name": "their-ca", "namespace": NS}, "data": {"ca.crt": ext.transport_ca_pem}}),
    )
    .unwrap();
    east.merge_patch(
        &ES,
        Some(NS),
        NAME,
        &json!({"spec": {"transport": {
            "tls": {"certificateAuthorities": {"configMapName": "their-ca"}},
            "service": {"spec": {"type": "LoadBalancer"}}}}}),
        Sub::Main,
    )
    .unwrap();
    east.wait_idle(IDLE).unwrap();
    let lb = transport_lb(&east);
    external_remote(&sb, "selfmanaged", &lb);
    sb.external_admin_trust_transport("selfmanaged", &eck_ca(&east), &[])
        .unwrap();
    assert_eq!(
        external_connected(&sb, "selfmanaged"),
        true,
        "no restriction"
    );
    assert_external_restricts(
        &sb,
        &east,
        "selfmanaged",
        &["*.node.other.search.es.local"],
        &lb,
    );
    external_trusts_eck(&sb, &east, "selfmanaged");
    assert_eq!(external_connected(&sb, "selfmanaged"), true);
    // A CA that is not PEM is refused.
    assert!(
        sb.external_admin_trust_transport("selfmanaged", "not a certificate", &[])
            .is_err()
    );
}

#[test]
fn other_name_suffix_names_the_transport_certificates_that_restrictions_must_match() {
    const SUFFIX: &str = "products.transport.example.org";
    let sb = sandbox(2);
    let (east, ech) = east_and_ech(&sb);
    east.merge_patch(
        &ES,
        Some(NS),
        NAME,
        &json!({"spec": {"transport": {"tls": {"otherNameSuffix": SUFFIX}}}}),
        Sub::Main,
    )
    .unwrap();
    east.wait_idle(IDLE).unwrap();
    assert_green(&east);
    assert_eq!(
        east.es_node(NS, NAME, |n| n.transport_node_names.clone())
            .unwrap(),
        [
            format!("products-es-default-0.{SUFFIX}"),
            format!("products-es-default-1.{SUFFIX}"),
        ],
        "ECK names the certificates <pod>.<otherNameSuffix>"
    );

    // The documented restriction names the default pattern, which these nodes no longer carry.
    roll_out_trust(
        &east,
        &ech,
        &corrected_trust_yml(&sb),
        vec![node_set("default", 2, TRUST)],
    );
    let formation = assert_not_formed(&east);
    assert!(
        matches!(&formation, ClusterFormation::NoMaster { reason }
            if reason.contains(&format!("products-es-default-1.{SUFFIX}"))),
        "{formation:?}"
    );

    // The pattern derived from the suffix lets them form.
    let own = format!("*.{SUFFIX}");
    let fixed = corrected_trust_yml(&sb).replace(ECK_PATTERN, &own);
    let sets = vec![restarted(node_set("default", 2, TRUST), "fix", "1")];
    roll_out_trust(&east, &ech, &fixed, sets);
    assert_green(&east);

    // A peer matches its restrictions against the suffixed names too.
    let lb = transport_lb(&east);
    external_remote(&sb, "ech", &lb);
    sb.external_admin_trust_transport("ech", &eck_ca(&east), &[ECK_PATTERN])
        .unwrap();
    assert_eq!(
        sb.external_diagnose("ech", "eck"),
        Err(NotConnectedReason::TrustRestricted {
            address: lb.clone(),
            rejected_by: ech.id.clone(),
            node_name: format!("products-es-default-0.{SUFFIX}"),
        })
    );
    sb.external_admin_trust_transport("ech", &eck_ca(&east), &[&own])
        .unwrap();
    assert_eq!(external_connected(&sb, "ech"), true);
}

#[test]
fn a_missing_or_empty_ca_file_or_a_missing_volume_source_keeps_the_nodes_from_starting() {
    let sb = sandbox(2);
    let (east, ech) = east_and_ech(&sb);
    let not_started = |east: &ClusterHandle, needle: &str| {
        let formation = assert_not_formed(east);
        assert!(
            matches!(&formation, ClusterFormation::NodesNotStarted { reason } if reason.contains(needle)),
            "{formation:?}"
        );
    };

    // The volume's ConfigMap does not exist: the pods never start.
    apply_node_sets(&east, vec![node_set("default", 2, Some(("ca.crt", "")))]);
    not_started(
        &east,
        "MountVolume.SetUp failed for volume \"ech-trust\" : configmap \"ech-trust\" not found",
    );

    // A transport CA file that is not in the ConfigMap.
    trust_config_map(&east, &ech.transport_ca_pem, "");
    let sets = vec![restarted(
        node_set("default", 2, Some(("missing.crt", ""))),
        "try",
        "1",
    )];
    apply_node_sets(&east, sets);
    not_started(
        &east,
        "[xpack.security.transport.ssl] - cannot read configured PEM certificate_authorities [/usr/share/elasticsearch/config/ech-trust/missing.crt] because the file does not exist",
    );

    // A CA file without a certificate.
    trust_config_map(&east, "", "");
    let sets = vec![restarted(
        node_set("default", 2, Some(("ca.crt", ""))),
        "try",
        "2",
    )];
    apply_node_sets(&east, sets);
    not_started(&east, "failed to parse any certificates from");

    // The same for the remote cluster client's list.
    trust_config_map(&east, &ech.transport_ca_pem, "");
    let mut set = restarted(node_set("default", 2, None), "try", "3");
    set["config"]["xpack.security.remote_cluster_client.ssl.certificate_authorities"] =
        json!(["ech-trust/ca.crt"]);
    apply_node_sets(&east, vec![set]);
    not_started(
        &east,
        "[xpack.security.remote_cluster_client.ssl] - cannot read configured PEM certificate_authorities [ech-trust/ca.crt]",
    );

    // A mounted file with a certificate, and another rollout: the nodes start.
    let sets = vec![restarted(
        node_set("default", 2, Some(("ca.crt", ""))),
        "try",
        "4",
    )];
    apply_node_sets(&east, sets);
    assert_green(&east);
}

#[test]
fn an_optional_volume_source_may_be_missing() {
    let sb = sandbox(1);
    let (east, _) = east_and_ech(&sb);
    let mut set = node_set("default", 1, None);
    set["podTemplate"] = json!({"spec": {"volumes": [
        {"name": "extra", "secret": {"secretName": "nowhere", "optional": true}}]}});
    apply_node_sets(&east, vec![set]);
    assert_green(&east);
}
