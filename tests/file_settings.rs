//! Cluster settings owned by file-based settings (ECK's StackConfigPolicy): Elasticsearch
//! refuses API writes to them, so a command that would write one is refused before any write,
//! naming the policy and the settings to put there instead.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{World, es, stderr_of};
use remote_cluster_sandbox::ResourceKey;
use serde_json::{Value, json};

const BOTH: &[&str] = &["east", "west"];
const POLICY: &str = "StackConfigPolicy elastic-system/fleet-remotes";

/// `search/catalog` and `search/products` in east, `shop/products` in west; settled.
fn world() -> World {
    World::settled(
        common::east_and_west(
            [es("search", "catalog"), es("search", "products")],
            [es("shop", "products")],
        )
        .operator_delay(Duration::from_millis(100)),
    )
}

/// What ECK's StackConfigPolicy controller writes for `elastic-system/fleet-remotes`
/// selecting east/search/catalog: the file-settings Secret, soft-owned by the policy.
fn policy_sets(world: &World, cluster_settings: Value) {
    let file = json!({
        "metadata": {"version": "1", "compatibility": "8.6.1"},
        "state": {"cluster_settings": cluster_settings}
    });
    let encoded = base64::engine::general_purpose::STANDARD.encode(file.to_string());
    let east = world.sandbox.cluster("east");
    east.create(
        &ResourceKey::SECRETS,
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "catalog-es-file-settings",
                "namespace": "search",
                "labels": {
                    "eck.k8s.elastic.co/owner-kind": "StackConfigPolicy",
                    "eck.k8s.elastic.co/owner-namespace": "elastic-system",
                    "eck.k8s.elastic.co/owner-name": "fleet-remotes"
                }
            },
            "data": {"settings.json": encoded}
        }),
    )
    .unwrap();
    world.settle(&["east"]);
    let reserved = east
        .es_node("search", "catalog", |n| n.settings().reserved().len())
        .unwrap();
    assert!(reserved > 0, "the file-based settings are applied");
}

fn catalog_settings(world: &World) -> Value {
    world
        .sandbox
        .cluster("east")
        .es_node("search", "catalog", |n| {
            Value::Object(n.settings().render(true))
        })
        .unwrap()
}

fn cross_link<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    common::east_to_west(
        "link",
        "products",
        &[&["--yes", "--timeout", "90s"][..], extra].concat(),
    )
}

#[test]
fn a_cross_cluster_link_to_an_alias_a_policy_sets_is_refused_before_any_write() {
    let world = world();
    policy_sets(
        &world,
        json!({"cluster.remote.products.mode": "proxy",
               "cluster.remote.products.proxy_address": "fleet.example:9443"}),
    );
    let before = world.snapshot(BOTH);
    let settings = catalog_settings(&world);

    for dry_run in [&[][..], &["--dry-run=server"][..]] {
        // The alias's settings are not the plugin's: refused when observed, before the plan.
        world.refused(
            cross_link(dry_run),
            "alias \"products\" is already used on search/catalog (context east) by cluster settings",
        );
    }

    world.assert_unchanged(BOTH, &before);
    assert_eq!(catalog_settings(&world), settings);
    assert_eq!(world.active_plugin_keys("west", "shop", "products"), 0);
}

#[test]
fn an_alias_the_policy_does_not_set_still_links() {
    let world = world();
    policy_sets(
        &world,
        json!({"cluster.remote.products.mode": "proxy",
               "cluster.remote.products.proxy_address": "fleet.example:9443"}),
    );
    world.ok(cross_link(&["--alias", "shop-products"]));
    let settings = catalog_settings(&world);
    assert_eq!(
        settings["persistent"]["cluster.remote.shop-products.mode"],
        "proxy"
    );
    assert_eq!(
        settings["persistent"]["cluster.remote.products.proxy_address"], "fleet.example:9443",
        "the policy's alias is left as it is"
    );
}

#[test]
fn a_same_operator_link_to_an_alias_a_policy_sets_is_refused() {
    let world = world();
    policy_sets(
        &world,
        json!({"cluster.remote.products.seeds": ["fleet.example:9300"]}),
    );
    let before = world.snapshot(&["east"]);
    for dry_run in [&[][..], &["--dry-run=server"][..]] {
        let refused = world.refused(
            common::catalog_products("link", &[&["--yes"][..], dry_run].concat()),
            POLICY,
        );
        assert!(
            stderr_of(&refused).contains(
                "refuses API writes to cluster.remote.products.seeds: StackConfigPolicy \
                 elastic-system/fleet-remotes (file-based settings) sets them"
            ),
            "{}",
            stderr_of(&refused)
        );
    }
    world.assert_unchanged(&["east"], &before);
}

#[test]
fn an_unlink_of_settings_a_policy_took_over_is_refused() {
    let world = world();
    world.ok(cross_link(&[]));
    policy_sets(
        &world,
        json!({"cluster.remote.products.skip_unavailable": "true"}),
    );
    let before = world.snapshot(BOTH);
    let refused = world.refused(
        [
            "unlink",
            "catalog",
            "products",
            "-n",
            "search",
            "--context",
            "east",
            "--yes",
        ],
        POLICY,
    );
    assert!(
        stderr_of(&refused).contains("cluster.remote.products.skip_unavailable: null"),
        "{}",
        stderr_of(&refused)
    );
    world.assert_unchanged(BOTH, &before);
    assert_eq!(world.active_plugin_keys("west", "shop", "products"), 1);
}
