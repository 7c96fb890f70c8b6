//! The ECK licence as the plugin reads it: ECK's report (`elastic-licensing`) of the operator
//! that manages the cluster, and what a missing Enterprise licence means for each kind of link.

mod common;

use std::time::Duration;

use common::{World, es, stderr_of};
use remote_cluster_sandbox::ResourceKey;
use serde_json::json;

const BOTH: &[&str] = &["east", "west"];

/// `search/catalog` in east; `shop/products` and `tenant/orders` in west, where a second ECK
/// operator in `eck-tenant` manages `tenant` with a basic licence.
fn world() -> World {
    let world = World::settled(
        common::east_and_west(
            [es("search", "catalog")],
            [es("shop", "products"), es("tenant", "orders")],
        )
        .operator_delay(Duration::from_millis(100)),
    );
    let west = world.sandbox.cluster("west");
    west.create(
        &ResourceKey::NAMESPACES,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "eck-tenant"}}),
    )
    .unwrap();
    west.create(
        &ResourceKey::CONFIGMAPS,
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "elastic-operator", "namespace": "eck-tenant"},
            "data": {"eck.yaml": "log-verbosity: 0\nnamespaces: [tenant]\noperator-namespace: eck-tenant\n"}
        }),
    )
    .unwrap();
    west.create(
        &ResourceKey::CONFIGMAPS,
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": "elastic-licensing", "namespace": "eck-tenant",
                "labels": {"common.k8s.elastic.co/type": "elastic-usage"}
            },
            "data": {"eck_license_level": "basic"}
        }),
    )
    .unwrap();
    world
}

fn link_to<'a>(namespace: &'a str, remote: &'a str) -> Vec<&'a str> {
    vec![
        "link",
        "catalog",
        remote,
        "-n",
        "search",
        "--context",
        "east",
        "--remote-context",
        "west",
        "--remote-namespace",
        namespace,
        "--yes",
        "--timeout",
        "90s",
    ]
}

#[test]
fn the_licence_of_the_operator_managing_the_remote_decides() {
    let world = world();
    let before = world.snapshot(BOTH);
    let refused = world.refused(
        link_to("tenant", "orders"),
        "the ECK licence in context west is \"basic\"",
    );
    assert!(
        stderr_of(&refused).contains("Elastic's terms make remote clusters on ECK an Enterprise feature; ECK itself does not block"),
        "across operators the refusal says the requirement is Elastic's terms: {}",
        stderr_of(&refused)
    );
    world.assert_unchanged(BOTH, &before);

    // The operator of `elastic-system` manages every other namespace, with an Enterprise licence.
    world.ok(link_to("shop", "products"));
    assert_eq!(world.active_plugin_keys("west", "shop", "products"), 1);
}
