//! Same-operator links end to end: the plugin writes, the simulated ECK operator reconciles,
//! the simulated Elasticsearch connects, and `describe` reads it back over a port-forward.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{World, stderr_of, stdout_of};
use remote_cluster_sandbox::{ClusterConfig, EsSeed, Fault, ResourceKey, Sandbox};
use serde_json::{Value, json};

fn world(license: &str) -> World {
    World::start(
        Sandbox::builder()
            .operator_delay(Duration::from_millis(150))
            .license(license)
            .cluster(
                ClusterConfig::new("east")
                    .elasticsearch(EsSeed::new("search", "catalog", "9.1.0").nodes(1))
                    .elasticsearch(EsSeed::new("search", "products", "9.1.0").nodes(2))
                    .elasticsearch(EsSeed::new("shop", "orders", "8.19.2").nodes(1)),
            ),
    )
}

fn secret_text(world: &World, namespace: &str, name: &str, key: &str) -> Option<String> {
    let secret = world
        .sandbox
        .cluster("east")
        .get(&ResourceKey::SECRETS, Some(namespace), name)?;
    let encoded = secret["data"][key].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok()
}

fn assert_no_secrets(world: &World, known: &[String], outputs: &[&std::process::Output]) {
    let mut secrets = known.to_vec();
    for name in ["catalog", "products", "orders"] {
        let ns = if name == "orders" { "shop" } else { "search" };
        if let Some(password) =
            secret_text(world, ns, &format!("{name}-es-elastic-user"), "elastic")
        {
            secrets.push(password);
        }
    }
    if let Some(key) = secret_text(
        world,
        "search",
        "catalog-es-remote-api-keys",
        "cluster.remote.products.credentials",
    ) {
        secrets.push(key);
    }
    assert!(
        !secrets.is_empty(),
        "the test must know the secrets it looks for"
    );
    for secret in &secrets {
        common::assert_not_shown(secret, outputs);
    }
}

/// `link` of search/catalog to search/products, then `extra`.
fn link<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    common::catalog_products("link", extra)
}

/// `unlink` of `products` from search/catalog, then `extra`.
fn unlink<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    common::catalog_products("unlink", extra)
}

#[test]
fn api_key_link_waits_until_connected_then_describe_and_unlink() {
    let world = world("enterprise");
    let east = world.sandbox.cluster("east");
    let before = world.elasticsearch("east", "search", "catalog");
    let link = world.ok(link(&["--yes", "--timeout", "60s"]));
    assert!(
        stderr_of(&link).contains("Remote cluster \"products\" is connected."),
        "{}",
        stderr_of(&link)
    );
    let info = east.remote_info("search", "catalog");
    assert_eq!(info["products"]["connected"], true, "{info}");
    let api_key = secret_text(
        &world,
        "search",
        "catalog-es-remote-api-keys",
        "cluster.remote.products.credentials",
    )
    .expect("ECK stored the API key in the local keystore");
    assert_eq!(info["products"]["cluster_credentials"], "::es_redacted::");

    east.clear_requests();
    let describe = world.ok(["describe", "catalog", "-n", "search", "-o", "json"]);
    let report: Value = serde_json::from_slice(&describe.stdout).unwrap();
    assert_eq!(report["live"], true);
    assert_eq!(
        report["outgoing"][0],
        json!({"alias": "products", "remote": "search/products", "security": "api-key",
               "mode": "sniff", "managedBy": "eck-added-by-plugin", "connected": true})
    );
    let remote_side = world.ok(["describe", "products", "-n", "search"]);
    let text = stdout_of(&remote_side);
    assert!(text.contains("Remote cluster server:  on"), "{text}");
    assert!(
        text.contains("search/catalog   products   api-key"),
        "{text}"
    );
    assert_eq!(common::plugin_writes(&east), 0, "describe never writes");

    let unlink = world.ok(unlink(&["--disable-server", "--yes", "--timeout", "60s"]));
    east.wait_idle(Duration::from_secs(30)).unwrap();
    let info = east.remote_info("search", "catalog");
    assert!(info.get("products").is_none(), "{info}");
    assert_eq!(
        world.elasticsearch("east", "search", "catalog")["spec"],
        before["spec"]
    );
    assert!(
        east.get(
            &ResourceKey::SERVICES,
            Some("search"),
            "products-es-remote-cluster"
        )
        .is_none(),
        "ECK deletes the remote cluster service when the server is off"
    );
    let copies = east
        .list(&ResourceKey::SECRETS, Some("search"))
        .into_iter()
        .filter(|s| {
            s["metadata"]["name"]
                .as_str()
                .unwrap()
                .ends_with("-es-remote-ca")
                && s["metadata"]["labels"]["common.k8s.elastic.co/type"] == "remote-ca"
        })
        .count();
    assert_eq!(copies, 0, "no CA copies left behind");
    let keys = east
        .es_node("search", "products", |node| {
            node.api_keys()
                .iter()
                .filter(|k| k.name == "eck-search-catalog-products")
                .map(|k| k.invalidated)
                .collect::<Vec<_>>()
        })
        .unwrap();
    assert!(
        !keys.is_empty() && keys.iter().all(|invalidated| *invalidated),
        "ECK's key is invalidated: {keys:?}"
    );
    assert_no_secrets(
        &world,
        &[api_key],
        &[&link, &describe, &remote_side, &unlink],
    );
}

#[test]
fn certificate_link_connects() {
    let world = world("enterprise");
    let output = world.ok([
        "link",
        "orders",
        "products",
        "-n",
        "shop",
        "--remote-namespace",
        "search",
        "--security",
        "certificate",
        "--yes",
        "--timeout",
        "60s",
    ]);
    assert!(
        stderr_of(&output).contains("Remote cluster \"products\" is connected."),
        "{}",
        stderr_of(&output)
    );
    let east = world.sandbox.cluster("east");
    let info = east.remote_info("shop", "orders");
    assert_eq!(info["products"]["connected"], true, "{info}");
    assert!(info["products"].get("cluster_credentials").is_none());
    let products = world.elasticsearch("east", "search", "products");
    assert_eq!(
        products["spec"]["remoteClusterServer"],
        Value::Null,
        "no server for the certificate model"
    );
}

#[test]
fn describe_exits_3_with_the_reason_when_a_link_is_down() {
    let world = World::settled(
        Sandbox::builder().cluster(
            ClusterConfig::new("east")
                .elasticsearch(
                    EsSeed::new("search", "catalog", "9.1.0")
                        .remote_cluster("products", "search", "products", true),
                )
                .elasticsearch(EsSeed::new("search", "products", "9.1.0")),
        ),
    );
    let output = world.run(3, ["describe", "catalog", "-n", "search"]);
    let text = stdout_of(&output);
    assert!(
        text.contains("the remote cluster server of search/products is off: API-key links need it"),
        "{text}"
    );
    assert_eq!(world.write_count(&["east"]), 0, "describe never writes");
}

#[test]
fn a_basic_licence_is_refused_before_any_write() {
    let world = world("basic");
    world.refused(
        link(&["--yes"]),
        "the ECK licence in context east is \"basic\"",
    );
    let writes = world
        .sandbox
        .cluster("east")
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && r.user == "admin")
        .count();
    assert_eq!(writes, 0);
}

#[test]
fn a_concurrent_edit_is_kept_and_the_link_re_planned() {
    let world = world("enterprise");
    world.sandbox.cluster("east").inject_fault(
        Fault::new(
            "PATCH",
            "/apis/elasticsearch.k8s.elastic.co/v1/namespaces/search/elasticsearches/catalog",
        )
        .concurrent_merge_patch(json!({"metadata": {"labels": {"team": "search"}},
                                       "spec": {"remoteClusters": [{"name": "theirs", "elasticsearchRef": {"name": "orders", "namespace": "shop"}}]}})),
    );
    let output = world.ok(link(&["--yes", "--wait=false"]));
    assert!(
        stderr_of(&output)
            .contains("changed while the plan was applied; reading it again and re-planning"),
        "{}",
        stderr_of(&output)
    );
    let catalog = world.elasticsearch("east", "search", "catalog");
    assert_eq!(
        catalog["metadata"]["labels"]["team"], "search",
        "the other edit is kept"
    );
    let names: Vec<&str> = catalog["spec"]["remoteClusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["theirs", "products"],
        "their entry first, ours appended"
    );
}

#[test]
fn skip_unavailable_is_set_after_eck_configures_the_alias_and_cleared_on_unlink() {
    let world = world("enterprise");
    world.ok(link(&["--skip-unavailable", "--yes", "--timeout", "60s"]));
    let east = world.sandbox.cluster("east");
    let info = east.remote_info("search", "catalog");
    assert_eq!(info["products"]["connected"], true, "{info}");
    let skip = || {
        east.es_node("search", "catalog", |node| {
            node.persistent_settings()
                .get("cluster.remote.products.skip_unavailable")
                .and_then(|v| v.as_str().map(str::to_string))
        })
        .unwrap()
    };
    assert_eq!(
        skip().as_deref(),
        Some("true"),
        "set explicitly, not a default"
    );

    let doc = world.json(unlink(&["--yes", "--timeout", "60s", "-o", "json"]));
    assert_eq!(doc["kind"], "UnlinkResult");
    assert_eq!(doc["local"]["name"], "catalog");
    east.wait_idle(Duration::from_secs(30)).unwrap();
    let info = east.remote_info("search", "catalog");
    assert!(
        info.get("products").is_none(),
        "ECK could remove the seeds: {info}"
    );
    assert_eq!(skip(), None, "cleared");
}

/// "Unlinked" is said once ECK has dropped the alias: when the command returns, neither ECK's
/// `managed-remote-clusters` annotation nor Elasticsearch's settings know it any more.
#[test]
fn unlink_returns_once_eck_has_dropped_the_alias() {
    let world = world("enterprise");
    let east = world.sandbox.cluster("east");
    world.ok(link(&["--yes", "--timeout", "60s"]));
    let unlinked = world.ok(unlink(&["--yes", "--timeout", "60s"]));
    let info = east.remote_info("search", "catalog");
    assert!(info.get("products").is_none(), "{info}");
    let catalog = world.elasticsearch("east", "search", "catalog");
    let managed =
        catalog["metadata"]["annotations"]["elasticsearch.k8s.elastic.co/managed-remote-clusters"]
            .as_str()
            .unwrap_or_default()
            .to_string();
    assert!(!managed.contains("products"), "{managed}");
    assert!(
        stderr_of(&unlinked).contains("Unlinked remote cluster \"products\""),
        "{}",
        stderr_of(&unlinked)
    );
}
