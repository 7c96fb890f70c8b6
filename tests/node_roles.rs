//! Clusters whose first pods lack the `remote_cluster_client` role: such a node knows no
//! remote clusters (`_remote/info` and `_resolve/cluster` are refused there), so the plugin
//! talks to a pod labelled `elasticsearch.k8s.elastic.co/node-remote_cluster_client=true`.

mod common;

use common::{World, es, stdout_of};
use remote_cluster_sandbox::{ResourceKey, Sub};
use serde_json::json;

#[test]
fn links_and_describes_through_a_node_with_the_remote_cluster_client_role() {
    let world = World::settled(common::east([
        es("search", "catalog"),
        es("search", "products"),
    ]));
    let east = world.sandbox.cluster("east");
    // Dedicated masters first (pods are listed by name), then the nodes that search.
    east.merge_patch(
        &ResourceKey::ELASTICSEARCHES,
        Some("search"),
        "catalog",
        &json!({"spec": {"nodeSets": [
            {"name": "a-masters", "count": 1, "config": {"node.roles": ["master"]}},
            {"name": "data", "count": 1, "config": {"node.roles": ["data", "ingest", "remote_cluster_client"]}}
        ]}}),
        Sub::Main,
    )
    .unwrap();
    world.settle(&["east"]);
    let pods = east.list(&ResourceKey::PODS, Some("search"));
    let master = pods
        .iter()
        .find(|p| p["metadata"]["name"] == "catalog-es-a-masters-0")
        .expect("the master pod");
    assert_eq!(
        master["metadata"]["labels"]["elasticsearch.k8s.elastic.co/node-remote_cluster_client"],
        "false"
    );

    world.ok(common::catalog_products(
        "link",
        &["--yes", "--timeout", "60s"],
    ));
    let described = world.ok(["describe", "catalog", "-n", "search"]);
    let text = stdout_of(&described);
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("products"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(row.contains("yes"), "connected: {text}");
}
