//! `kubectl remote-cluster trust`: the transport CA exchange across Kubernetes clusters.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{World, es, stderr_of};
use remote_cluster_sandbox::ResourceKey;

const BOTH: &[&str] = &["east", "west"];

/// `search/catalog` and `search/local-peer` in east, `shop/products` in west; settled.
fn world() -> World {
    World::settled(common::east_and_west(
        [es("search", "catalog"), es("search", "local-peer")],
        [es("shop", "products")],
    ))
}

/// `trust` between east/search/catalog and west/shop/products, confirmed, then `extra`.
fn trust<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    common::east_to_west("trust", "products", &[&["--yes"][..], extra].concat())
}

fn bundle(world: &World, cluster: &str, namespace: &str, name: &str) -> String {
    world
        .sandbox
        .cluster(cluster)
        .get(&ResourceKey::CONFIGMAPS, Some(namespace), name)
        .map(|c| c["data"]["ca.crt"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

/// The transport CAs east/search/catalog trusts through the plugin.
fn catalog_trusts(world: &World) -> String {
    bundle(
        world,
        "east",
        "search",
        "catalog-remote-cluster-transport-cas",
    )
}

fn published_ca(world: &World, cluster: &str, namespace: &str, es: &str) -> String {
    let secret = world
        .sandbox
        .cluster(cluster)
        .get(
            &ResourceKey::SECRETS,
            Some(namespace),
            &format!("{es}-es-transport-certs-public"),
        )
        .unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["ca.crt"].as_str().unwrap())
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

/// The ConfigMap of trusted CAs `namespace/name` of `cluster` names in its spec.
fn trusted_configmap(world: &World, cluster: &str, namespace: &str, name: &str) -> String {
    let es = world.elasticsearch(cluster, namespace, name);
    es["spec"]["transport"]["tls"]["certificateAuthorities"]["configMapName"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn trust_exchanges_cas_both_ways_and_is_idempotent() {
    let world = world();
    world.ok(trust(&[]));
    assert!(
        world.plugin_writes(&["east"]) > 0 && world.plugin_writes(&["west"]) > 0,
        "both sides are written"
    );
    let east_trusts = catalog_trusts(&world);
    let west_trusts = bundle(
        &world,
        "west",
        "shop",
        "products-remote-cluster-transport-cas",
    );
    assert!(
        east_trusts.contains("# kubectl-remote-cluster: west/shop/products sha256:"),
        "{east_trusts}"
    );
    assert!(
        west_trusts.contains("# kubectl-remote-cluster: east/search/catalog sha256:"),
        "{west_trusts}"
    );
    assert_eq!(
        trusted_configmap(&world, "east", "search", "catalog"),
        "catalog-remote-cluster-transport-cas"
    );
    assert_eq!(
        trusted_configmap(&world, "west", "shop", "products"),
        "products-remote-cluster-transport-cas"
    );
    // ECK re-publishes the CAs a cluster trusts with its own (eck-remote-clusters.md 2.4).
    world.settle(BOTH);
    for (cluster, namespace, es) in [("east", "search", "catalog"), ("west", "shop", "products")] {
        let public = published_ca(&world, cluster, namespace, es);
        assert_eq!(
            public.matches("BEGIN CERTIFICATE").count(),
            2,
            "{cluster}: {public}"
        );
    }

    world.again(BOTH, trust(&[]), "nothing to change");
}

#[test]
fn after_a_rotation_refresh_replaces_the_stale_copy() {
    let world = world();
    let one_way = trust(&["--one-way"]);
    world.ok(&one_way);
    let west_trusts = || {
        world.sandbox.cluster("west").get(
            &ResourceKey::CONFIGMAPS,
            Some("shop"),
            "products-remote-cluster-transport-cas",
        )
    };
    assert!(
        west_trusts().is_none(),
        "one way: the remote does not trust the local"
    );
    let before = catalog_trusts(&world);

    let west = world.sandbox.cluster("west");
    let published = published_ca(&world, "west", "shop", "products");
    west.rotate_transport_ca("shop", "products").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while published_ca(&world, "west", "shop", "products") == published {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }

    world.clear_requests(BOTH);
    let stale = world.ok(&one_way);
    assert!(
        stderr_of(&stale).contains("--refresh"),
        "{}",
        stderr_of(&stale)
    );
    assert_eq!(catalog_trusts(&world), before);
    assert_eq!(
        world.plugin_writes(BOTH),
        0,
        "without --refresh, nothing changes"
    );

    world.ok(trust(&["--one-way", "--refresh"]));
    let after = catalog_trusts(&world);
    assert_ne!(after, before);
    assert_eq!(
        after.matches("BEGIN CERTIFICATE").count(),
        1,
        "the old copy is replaced, not kept"
    );
    assert!(west_trusts().is_none(), "still one way");
}

#[test]
fn clusters_of_one_operator_need_no_trust() {
    let world = world();
    world.clear_requests(BOTH);
    let output = world.ok(["trust", "catalog", "local-peer", "-n", "search", "--yes"]);
    assert!(
        stderr_of(&output).contains("nothing to do"),
        "{}",
        stderr_of(&output)
    );
    assert_eq!(world.write_count(BOTH), 0);
}
