//! Ready-made worlds shared by the sandbox binary (`--scenario`) and the tests.
//!
//! `broken`: links of Elasticsearch clusters in namespace `shop`, each broken for one reason
//! (plus two healthy ones), for `kubectl remote-cluster check`. The first cluster (`kind-east`)
//! has an Enterprise operator; the second (`kind-west`) a Basic one.

use anyhow::{Context, Result};
use base64::Engine;
use serde_json::{Value, json};

use crate::{ClusterConfig, ClusterHandle, EsSeed, ResourceKey, Sandbox, elasticsearch::EsRequest};

/// The namespace of every Elasticsearch of the `broken` scenario.
pub const BROKEN_NAMESPACE: &str = "shop";

/// One link of the `broken` scenario: where it is, and why it does (not) work.
#[derive(Debug, Clone, Copy)]
pub struct ScenarioLink {
    /// Index of the sandbox cluster (0: the first, `kind-east` with two clusters).
    pub cluster: usize,
    pub local: &'static str,
    pub alias: &'static str,
    /// `None`: healthy.
    pub broken_because: Option<&'static str>,
}

/// The links of the `broken` scenario, healthy first.
pub const BROKEN_LINKS: &[ScenarioLink] = &[
    link(0, "hub", "healthy-api", None),
    link(0, "hub", "healthy-cert", None),
    link(
        0,
        "hub",
        "rcs-off",
        Some("API-key link to a cluster whose remote cluster server is off"),
    ),
    link(
        0,
        "hub",
        "ghost",
        Some("the referenced Elasticsearch does not exist"),
    ),
    link(
        0,
        "hub",
        "legacy",
        Some("versions that cannot connect (9.1.3 to 8.17.0)"),
    ),
    link(
        0,
        "hub",
        "nowhere",
        Some("proxy address where nothing answers (set by hand)"),
    ),
    link(
        0,
        "hub",
        "untrusted",
        Some("proxy address to a transport whose CA is not trusted (set by hand)"),
    ),
    link(
        0,
        "hub",
        "nokey",
        Some("remote cluster server port without credentials in the keystore (set by hand)"),
    ),
    link(
        0,
        "hub",
        "revoked",
        Some("a cross-cluster key the remote invalidated (set by hand)"),
    ),
    link(
        0,
        "hub",
        "restkey",
        Some("a REST API key instead of a cross-cluster one (set by hand)"),
    ),
    link(
        0,
        "hub",
        "wrongport",
        Some("API key, but the address is the remote's transport port 9300 (set by hand)"),
    ),
    link(
        0,
        "hub",
        "badname",
        Some("an address whose name is not in the remote's certificate (set by hand)"),
    ),
    link(
        0,
        "stray",
        "stray",
        Some("spec.remoteClusters entry without elasticsearchRef"),
    ),
    link(
        0,
        "orders",
        "spoke",
        Some("ECK cannot reconcile orders: its transport CA ConfigMap is missing"),
    ),
    link(
        1,
        "reports",
        "metrics",
        Some("the ECK operator's licence is Basic"),
    ),
];

const fn link(
    cluster: usize,
    local: &'static str,
    alias: &'static str,
    broken_because: Option<&'static str>,
) -> ScenarioLink {
    ScenarioLink {
        cluster,
        local,
        alias,
        broken_because,
    }
}

/// The Elasticsearch seeds of cluster `index` in the `broken` scenario.
pub fn broken_cluster(index: usize, config: ClusterConfig) -> ClusterConfig {
    let ns = BROKEN_NAMESPACE;
    match index {
        0 => config
            .elasticsearch(
                EsSeed::new(ns, "hub", "9.1.3")
                    .nodes(1)
                    .remote_cluster_server(true)
                    .remote_cluster("healthy-api", ns, "spoke", true)
                    .remote_cluster("healthy-cert", ns, "spoke", false)
                    .remote_cluster("rcs-off", ns, "billing", true)
                    .remote_cluster("ghost", ns, "ghost", false)
                    .remote_cluster("legacy", ns, "legacy", false),
            )
            .elasticsearch(
                EsSeed::new(ns, "spoke", "9.1.3")
                    .nodes(1)
                    .remote_cluster_server(true),
            )
            .elasticsearch(EsSeed::new(ns, "billing", "9.1.3").nodes(1))
            .elasticsearch(EsSeed::new(ns, "legacy", "8.17.0").nodes(1))
            .elasticsearch(EsSeed::new(ns, "lonely", "9.1.3").nodes(1)),
        1 => config
            .license("basic")
            .elasticsearch(
                EsSeed::new(ns, "reports", "9.1.3")
                    .nodes(1)
                    .remote_cluster("metrics", ns, "metrics", true),
            )
            .elasticsearch(
                EsSeed::new(ns, "metrics", "9.1.3")
                    .nodes(1)
                    .remote_cluster_server(true),
            ),
        _ => config,
    }
}

/// What the `broken` scenario sets once the clusters run: the hand-made settings of `hub`, and
/// the clusters created with what seeds cannot express (`stray`, `orders`).
pub fn break_links(sandbox: &Sandbox) -> Result<()> {
    let east = sandbox
        .clusters()
        .into_iter()
        .next()
        .context("the broken scenario needs a cluster")?;
    let ns = BROKEN_NAMESPACE;
    hand_made_keys(&east, ns)?;
    set_by_hand(&east, ns)?;
    let mut stray = EsSeed::new(ns, "stray", "9.1.3").nodes(1).to_object();
    stray["spec"]["remoteClusters"] = json!([{"name": "stray"}]);
    east.create(&ResourceKey::ELASTICSEARCHES, stray)?;
    let mut orders = EsSeed::new(ns, "orders", "9.1.3")
        .nodes(1)
        .remote_cluster("spoke", ns, "spoke", false)
        .to_object();
    orders["spec"]["transport"] =
        json!({"tls": {"certificateAuthorities": {"configMapName": "orders-extra-ca"}}});
    east.create(&ResourceKey::ELASTICSEARCHES, orders)?;
    Ok(())
}

/// Keys made on `spoke` by hand and put into `hub`'s keystore through `spec.secureSettings`
/// (a rolling restart of `hub`): an invalidated cross-cluster key (`revoked`), a REST key
/// (`restkey`), and a valid cross-cluster key for the links broken otherwise (`wrongport`,
/// `badname`).
fn hand_made_keys(east: &ClusterHandle, ns: &str) -> Result<()> {
    let password = east
        .secret_text(ns, "spoke-es-elastic-user", "elastic")
        .context("spoke has no elastic user yet")?;
    let call = |method: &str, path: &str, body: Value| -> Result<Value> {
        let response = east.es_request(
            ns,
            "spoke",
            &EsRequest::new(method, path)
                .basic("elastic", &password)
                .json(&body),
        );
        anyhow::ensure!(
            response.status == 200,
            "{method} {path} on spoke: {}",
            response.body
        );
        Ok(response.body)
    };
    let cross_cluster = |name: &str| -> Result<String> {
        let created = call(
            "POST",
            "/_security/cross_cluster/api_key",
            json!({"name": name, "access": {"search": [{"names": ["*"]}]}}),
        )?;
        Ok(created["encoded"].as_str().unwrap_or_default().to_string())
    };
    let revoked = cross_cluster("hand-made-revoked")?;
    call(
        "DELETE",
        "/_security/api_key",
        json!({"name": "hand-made-revoked"}),
    )?;
    let valid = cross_cluster("hand-made")?;
    let rest = call(
        "POST",
        "/_security/api_key",
        json!({"name": "hand-made-rest"}),
    )?;
    let rest = rest["encoded"].as_str().unwrap_or_default().to_string();
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    east.create(
        &ResourceKey::SECRETS,
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "hub-hand-made-keys", "namespace": ns},
        "data": {
            "cluster.remote.revoked.credentials": b64(&revoked),
            "cluster.remote.restkey.credentials": b64(&rest),
            "cluster.remote.wrongport.credentials": b64(&valid),
            "cluster.remote.badname.credentials": b64(&valid),
        }}),
    )?;
    east.merge_patch(
        &ResourceKey::ELASTICSEARCHES,
        Some(ns),
        "hub",
        &json!({"spec": {"secureSettings": [{"secretName": "hub-hand-made-keys"}]}}),
        crate::Sub::Main,
    )?;
    Ok(())
}

/// `cluster.remote.*` of `hub` set by hand (not by ECK, not by the plugin), each wrong.
fn set_by_hand(east: &ClusterHandle, ns: &str) -> Result<()> {
    let password = east
        .secret_text(ns, "hub-es-elastic-user", "elastic")
        .context("hub has no elastic user yet")?;
    let settings: Value = json!({"persistent": {
        "cluster.remote.nowhere.mode": "proxy",
        "cluster.remote.nowhere.proxy_address": format!("search.{ns}.svc:9443"),
        "cluster.remote.untrusted.mode": "proxy",
        "cluster.remote.untrusted.proxy_address": format!("lonely-es-transport.{ns}.svc:9300"),
        "cluster.remote.nokey.mode": "proxy",
        "cluster.remote.nokey.proxy_address": format!("spoke-es-remote-cluster.{ns}.svc:9443"),
        "cluster.remote.nokey.server_name": format!("spoke-es-remote-cluster.{ns}.svc"),
        "cluster.remote.revoked.mode": "proxy",
        "cluster.remote.revoked.proxy_address": format!("spoke-es-remote-cluster.{ns}.svc:9443"),
        "cluster.remote.restkey.mode": "proxy",
        "cluster.remote.restkey.proxy_address": format!("spoke-es-remote-cluster.{ns}.svc:9443"),
        "cluster.remote.wrongport.mode": "proxy",
        "cluster.remote.wrongport.proxy_address": format!("spoke-es-transport.{ns}.svc:9300"),
        "cluster.remote.badname.mode": "proxy",
        "cluster.remote.badname.proxy_address":
            format!("spoke-es-remote-cluster.{ns}.svc.cluster.local:9443"),
    }});
    let response = east.es_request(
        ns,
        "hub",
        &EsRequest::new("PUT", "/_cluster/settings")
            .basic("elastic", &password)
            .json(&settings),
    );
    anyhow::ensure!(
        response.status == 200,
        "cannot set hub's cluster settings: {}",
        response.body
    );
    Ok(())
}
