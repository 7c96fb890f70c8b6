//! `kubectl remote-cluster trust`: the transport CA exchange across Kubernetes clusters.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{World, stderr_of};
use remote_cluster_sandbox::{ClusterConfig, EsSeed, ResourceKey, Sandbox};

fn world() -> World {
    World::start(
        Sandbox::builder()
            .operator_delay(Duration::from_millis(50))
            .cluster(
                ClusterConfig::new("east")
                    .elasticsearch(EsSeed::new("search", "catalog", "9.1.0").nodes(1))
                    .elasticsearch(EsSeed::new("search", "local-peer", "9.1.0").nodes(1)),
            )
            .cluster(
                ClusterConfig::new("west")
                    .elasticsearch(EsSeed::new("shop", "products", "9.1.0").nodes(1)),
            ),
    )
}

const TRUST: &[&str] = &[
    "trust",
    "catalog",
    "products",
    "-n",
    "search",
    "--context",
    "east",
    "--remote-context",
    "west",
    "--remote-namespace",
    "shop",
    "--yes",
];

fn bundle(world: &World, cluster: &str, namespace: &str, name: &str) -> String {
    world
        .sandbox
        .cluster(cluster)
        .get(&ResourceKey::CONFIGMAPS, Some(namespace), name)
        .map(|c| c["data"]["ca.crt"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
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

#[test]
fn trust_exchanges_cas_both_ways_and_is_idempotent() {
    let world = world();
    for c in ["east", "west"] {
        world
            .sandbox
            .cluster(c)
            .wait_idle(Duration::from_secs(30))
            .unwrap();
    }
    world.ok(TRUST);
    let east_trusts = bundle(
        &world,
        "east",
        "search",
        "catalog-remote-cluster-transport-cas",
    );
    let west_trusts = bundle(
        &world,
        "west",
        "shop",
        "products-remote-cluster-transport-cas",
    );
    assert!(east_trusts.contains("# kubectl-remote-cluster: west/shop/products sha256:"));
    assert!(west_trusts.contains("# kubectl-remote-cluster: east/search/catalog sha256:"));
    let catalog = world
        .sandbox
        .cluster("east")
        .get(&ResourceKey::ELASTICSEARCHES, Some("search"), "catalog")
        .unwrap();
    assert_eq!(
        catalog["spec"]["transport"]["tls"]["certificateAuthorities"]["configMapName"],
        "catalog-remote-cluster-transport-cas"
    );
    // ECK re-publishes the CAs a cluster trusts with its own (eck-remote-clusters.md 2.4).
    for c in ["east", "west"] {
        world
            .sandbox
            .cluster(c)
            .wait_idle(Duration::from_secs(30))
            .unwrap();
    }
    let east_public = published_ca(&world, "east", "search", "catalog");
    assert_eq!(
        east_public.matches("BEGIN CERTIFICATE").count(),
        2,
        "{east_public}"
    );

    for c in ["east", "west"] {
        world.sandbox.cluster(c).clear_requests();
    }
    let again = world.ok(TRUST);
    assert!(
        stderr_of(&again).contains("nothing to change"),
        "{}",
        stderr_of(&again)
    );
    let writes: usize = ["east", "west"]
        .iter()
        .map(|c| {
            world
                .sandbox
                .cluster(c)
                .requests()
                .iter()
                .filter(|r| r.is_write())
                .count()
        })
        .sum();
    assert_eq!(writes, 0);
}

#[test]
fn after_a_rotation_refresh_replaces_the_stale_copy() {
    let world = world();
    for c in ["east", "west"] {
        world
            .sandbox
            .cluster(c)
            .wait_idle(Duration::from_secs(30))
            .unwrap();
    }
    let mut one_way: Vec<&str> = TRUST.to_vec();
    one_way.push("--one-way");
    world.ok(&one_way);
    assert!(
        world
            .sandbox
            .cluster("west")
            .get(
                &ResourceKey::CONFIGMAPS,
                Some("shop"),
                "products-remote-cluster-transport-cas"
            )
            .is_none(),
        "one way: the remote does not trust the local"
    );
    let before = bundle(
        &world,
        "east",
        "search",
        "catalog-remote-cluster-transport-cas",
    );

    let west = world.sandbox.cluster("west");
    let published = published_ca(&world, "west", "shop", "products");
    west.rotate_transport_ca("shop", "products").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while published_ca(&world, "west", "shop", "products") == published {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }

    let stale = world.ok(&one_way);
    assert!(
        stderr_of(&stale).contains("--refresh"),
        "{}",
        stderr_of(&stale)
    );
    assert_eq!(
        bundle(
            &world,
            "east",
            "search",
            "catalog-remote-cluster-transport-cas"
        ),
        before
    );

    let mut refresh = one_way.clone();
    refresh.push("--refresh");
    world.ok(&refresh);
    let after = bundle(
        &world,
        "east",
        "search",
        "catalog-remote-cluster-transport-cas",
    );
    assert_ne!(after, before);
    assert_eq!(
        after.matches("BEGIN CERTIFICATE").count(),
        1,
        "the old copy is replaced, not kept"
    );
}

#[test]
fn clusters_of_one_operator_need_no_trust() {
    let world = world();
    let output = world.ok(["trust", "catalog", "local-peer", "-n", "search", "--yes"]);
    assert!(stderr_of(&output).contains("nothing to do"));
    let writes = world
        .sandbox
        .cluster("east")
        .requests()
        .iter()
        .filter(|r| r.is_write())
        .count();
    assert_eq!(writes, 0);
}
