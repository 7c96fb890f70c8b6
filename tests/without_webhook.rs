//! ECK running without its validating webhook: the API server accepts what the webhook would
//! refuse (so `--dry-run=server` catches nothing), and ECK's controller marks such a resource
//! `Invalid` instead. The plugin refuses to link a resource in that state.

mod common;

use std::time::Duration;

use common::{World, es};
use remote_cluster_sandbox::{ClusterConfig, ResourceKey, Sandbox, Sub};
use serde_json::json;

#[test]
fn a_resource_eck_marked_invalid_is_refused_before_any_write() {
    let world = World::settled(
        Sandbox::builder()
            .operator_delay(Duration::from_millis(50))
            .cluster(
                ClusterConfig::new("east")
                    .without_webhook()
                    .elasticsearch(es("search", "catalog"))
                    .elasticsearch(es("search", "products")),
            ),
    );
    let east = world.sandbox.cluster("east");
    // Duplicate nodeSet names: refused by ECK's webhook, accepted without it.
    east.merge_patch(
        &ResourceKey::ELASTICSEARCHES,
        Some("search"),
        "catalog",
        &json!({"spec": {"nodeSets": [{"name": "default", "count": 1}, {"name": "default", "count": 1}]}}),
        Sub::Main,
    )
    .unwrap();
    world.settle(&["east"]);
    assert_eq!(
        world.elasticsearch("east", "search", "catalog")["status"]["phase"],
        "Invalid"
    );
    let before = world.snapshot(&["east"]);
    for dry_run in [&[][..], &["--dry-run=server"][..]] {
        world.refused(
            common::catalog_products("link", &[&["--yes"][..], dry_run].concat()),
            "ECK marks search/catalog (context east) Invalid: its validation refused the current spec",
        );
    }
    world.assert_unchanged(&["east"], &before);
}
