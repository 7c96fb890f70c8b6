//! `link` between two Kubernetes clusters (different ECK operators), API-key model, end to end.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{World, stderr_of, stdout_of};
use remote_cluster_sandbox::{ClusterConfig, EsSeed, ResourceKey, Sandbox};
use serde_json::Value;

fn world() -> World {
    World::start(
        Sandbox::builder()
            .operator_delay(Duration::from_millis(100))
            .cluster(
                ClusterConfig::new("east")
                    .elasticsearch(EsSeed::new("search", "catalog", "9.1.0").nodes(1)),
            )
            .cluster(
                ClusterConfig::new("west")
                    .elasticsearch(EsSeed::new("shop", "products", "9.1.0").nodes(1))
                    .elasticsearch(EsSeed::new("shop", "legacy", "8.17.0").nodes(1)),
            ),
    )
}

const LINK: &[&str] = &[
    "link",
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
    "--timeout",
    "90s",
];

fn decoded(secret: &Value, key: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(secret["data"][key].as_str().unwrap())
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn api_key_link_across_clusters_connects_and_is_idempotent() {
    let world = world();
    let (east, west) = (world.sandbox.cluster("east"), world.sandbox.cluster("west"));
    world.settle(&["east", "west"]);

    let output = world.ok(LINK);
    assert!(stderr_of(&output).contains("Remote cluster \"products\" is connected."));

    let products = west
        .get(&ResourceKey::ELASTICSEARCHES, Some("shop"), "products")
        .unwrap();
    assert_eq!(products["spec"]["remoteClusterServer"]["enabled"], true);
    assert_eq!(
        products["spec"]["remoteClusterServer"]["service"]["spec"]["type"],
        "LoadBalancer"
    );
    let service = west
        .get(
            &ResourceKey::SERVICES,
            Some("shop"),
            "products-es-remote-cluster",
        )
        .unwrap();
    let host = service["status"]["loadBalancer"]["ingress"][0]["hostname"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(host.ends_with(".invalid"), "{host}");

    let credentials = east
        .get(
            &ResourceKey::SECRETS,
            Some("search"),
            "catalog-remote-cluster-credentials",
        )
        .expect("the keystore Secret of ours");
    assert_eq!(
        credentials["metadata"]["labels"]["eck.k8s.elastic.co/watched"],
        "true"
    );
    assert_eq!(
        credentials["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "kubectl-remote-cluster"
    );
    let encoded = decoded(&credentials, "cluster.remote.products.credentials");
    let bundle = east
        .get(
            &ResourceKey::CONFIGMAPS,
            Some("search"),
            "catalog-remote-cluster-cas",
        )
        .expect("the CA bundle of ours");
    assert!(
        bundle["data"]["ca.crt"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );

    let catalog = east
        .get(&ResourceKey::ELASTICSEARCHES, Some("search"), "catalog")
        .unwrap();
    assert_eq!(
        catalog["spec"]["secureSettings"][0]["secretName"],
        "catalog-remote-cluster-credentials"
    );
    let node_set = &catalog["spec"]["nodeSets"][0];
    assert_eq!(
        node_set["config"]["xpack.security.remote_cluster_client.ssl.enabled"],
        true
    );
    assert_eq!(
        node_set["podTemplate"]["spec"]["volumes"][0]["configMap"]["name"],
        "catalog-remote-cluster-cas"
    );

    let info = east.remote_info("search", "catalog");
    assert_eq!(info["products"]["connected"], true, "{info}");
    assert_eq!(info["products"]["mode"], "proxy");
    assert_eq!(info["products"]["proxy_address"], format!("{host}:9443"));
    assert_eq!(
        info["products"]["server_name"],
        "products-es-remote-cluster.shop.svc"
    );

    let links: Value = serde_json::from_str(
        catalog["metadata"]["annotations"]["remote-cluster.kubectl-plugin.dev/links"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let key_id = links["products"]["keyId"].as_str().unwrap().to_string();
    assert!(!key_id.is_empty() && !key_id.starts_with('$'));

    let describe = world.ok([
        "describe",
        "catalog",
        "-n",
        "search",
        "--context",
        "east",
        "-o",
        "json",
    ]);
    let report: Value = serde_json::from_slice(&describe.stdout).unwrap();
    let link = &report["outgoing"][0];
    assert_eq!(link["alias"], "products");
    assert_eq!(link["managedBy"], "plugin");
    assert_eq!(link["mode"], "proxy");
    assert_eq!(link["connected"], true);
    assert_eq!(
        link["remote"],
        format!("west/shop/products via {host}:9443")
    );

    east.clear_requests();
    west.clear_requests();
    let again = world.ok(LINK);
    assert!(
        stderr_of(&again).contains("already linked"),
        "{}",
        stderr_of(&again)
    );
    assert_eq!(
        common::plugin_writes(&east) + common::plugin_writes(&west),
        0,
        "the second link writes nothing"
    );

    for out in [&output, &again, &describe] {
        let text = format!("{}{}", stdout_of(out), stderr_of(out));
        assert!(!text.contains(&encoded), "the API key reached the output");
    }
}

#[test]
fn bad_input_across_clusters_is_refused_without_writes() {
    let world = world();
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "link",
                "catalog",
                "legacy",
                "-n",
                "search",
                "--context",
                "east",
                "--remote-context",
                "west",
                "--remote-namespace",
                "shop",
            ],
            "cannot be connected",
        ),
        (
            &[
                "link",
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
                "--security",
                "certificate",
                "--search-indices",
                "logs-*",
            ],
            "for the API-key model",
        ),
        (
            &[
                "link",
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
                "--expose",
                "none",
            ],
            "must be reachable",
        ),
        (
            &[
                "link",
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
                "--proxy-address",
                "rcs.example.com",
            ],
            "is not HOST:PORT",
        ),
        (
            &[
                "link",
                "catalog",
                "products",
                "-n",
                "search",
                "--context",
                "east",
                "--remote-context",
                "north",
            ],
            "context \"north\" not found",
        ),
    ];
    for (args, expected) in cases {
        let output = world.plugin().args(*args).output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr_of(&output)
        );
        assert!(
            stderr_of(&output).contains(expected),
            "{args:?}: {}",
            stderr_of(&output)
        );
    }
    for cluster in ["east", "west"] {
        // Refused before the plan is even shown: not even an access review is sent.
        let requests = world.sandbox.cluster(cluster).requests();
        assert!(
            !requests.iter().any(|r| r.is_write()),
            "{cluster}: {requests:?}"
        );
    }
}

#[test]
fn unlink_across_clusters_restores_both_and_invalidates_the_key() {
    let world = world();
    let (east, west) = (world.sandbox.cluster("east"), world.sandbox.cluster("west"));
    world.settle(&["east", "west"]);
    let before = world.snapshot(&["east", "west"]);

    world.ok(LINK);
    let catalog = east
        .get(&ResourceKey::ELASTICSEARCHES, Some("search"), "catalog")
        .unwrap();
    let links: Value = serde_json::from_str(
        catalog["metadata"]["annotations"]["remote-cluster.kubectl-plugin.dev/links"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let key_id = links["products"]["keyId"].as_str().unwrap().to_string();

    world.ok([
        "unlink",
        "catalog",
        "products",
        "-n",
        "search",
        "--context",
        "east",
        "--disable-server",
        "--yes",
        "--timeout",
        "90s",
    ]);
    world.settle(&["east", "west"]);

    let after = world.snapshot(&["east", "west"]);
    common::assert_same_objects(&before, &after);
    let info = east.remote_info("search", "catalog");
    assert!(info.get("products").is_none(), "{info}");
    let invalidated = west.es_node("shop", "products", |node| {
        node.api_key(&key_id).map(|k| k.invalidated)
    });
    assert_eq!(
        invalidated,
        Some(Some(true)),
        "the key is invalidated by id"
    );
}

#[test]
fn local_only_unlink_cleans_this_side_and_says_what_is_left() {
    let world = world();
    let (east, west) = (world.sandbox.cluster("east"), world.sandbox.cluster("west"));
    world.settle(&["east", "west"]);
    world.ok(LINK);
    west.clear_requests();

    let unlink = world.ok([
        "unlink",
        "catalog",
        "products",
        "-n",
        "search",
        "--context",
        "east",
        "--local-only",
        "--yes",
        "--wait=false",
    ]);
    let stderr = stderr_of(&unlink);
    assert!(
        stderr.contains("left on the remote: the cross-cluster API key"),
        "{stderr}"
    );
    assert!(
        east.get(
            &ResourceKey::SECRETS,
            Some("search"),
            "catalog-remote-cluster-credentials"
        )
        .is_none()
    );
    assert!(
        west.requests().is_empty(),
        "unlink --local-only does not contact the remote"
    );
}

#[test]
fn a_failure_after_the_key_is_created_invalidates_it_and_a_rerun_completes() {
    let world = world();
    let (east, west) = (world.sandbox.cluster("east"), world.sandbox.cluster("west"));
    world.settle(&["east", "west"]);
    // The keystore Secret cannot be created: the API server fails the request.
    east.inject_fault(
        remote_cluster_sandbox::Fault::new("POST", "/api/v1/namespaces/search/secrets").status(500),
    );
    let failed = world.plugin().args(LINK).output().unwrap();
    assert_eq!(failed.status.code(), Some(1), "{}", stderr_of(&failed));
    let stderr = stderr_of(&failed);
    assert!(stderr.contains("invalidated the API key"), "{stderr}");
    assert!(
        stderr.contains("error: store the API key in Secret catalog-remote-cluster-credentials (keystore) on search/catalog (context east)"),
        "{stderr}"
    );
    let keys: Vec<bool> = common::api_keys(&west, "shop", "products", "kubectl-rc-")
        .into_iter()
        .map(|(_, invalidated)| invalidated)
        .collect();
    assert_eq!(
        keys,
        [true],
        "the one key created is invalidated, none is left active"
    );

    world.ok(LINK);
    assert_eq!(
        east.remote_info("search", "catalog")["products"]["connected"],
        true
    );
    let active = active_keys(&world);
    assert_eq!(active, 1, "exactly one active key once linked");
}

#[test]
fn a_rotated_remote_ca_shows_as_stale_and_linking_again_refreshes_it() {
    let world = world();
    let (east, west) = (world.sandbox.cluster("east"), world.sandbox.cluster("west"));
    world.settle(&["east", "west"]);
    world.ok(LINK);

    let published = || {
        west.get(
            &ResourceKey::SECRETS,
            Some("shop"),
            "products-es-transport-certs-public",
        )
        .unwrap()["data"]["ca.crt"]
            .clone()
    };
    let before = published();
    west.rotate_transport_ca("shop", "products").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while published() == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the operator publishes the new CA"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        east.remote_info("search", "catalog")["products"]["connected"],
        false
    );

    let describe = world
        .plugin()
        .args(["describe", "catalog", "-n", "search", "--context", "east"])
        .output()
        .unwrap();
    assert_eq!(describe.status.code(), Some(3), "{}", stderr_of(&describe));
    let text = stdout_of(&describe);
    assert!(
        text.contains("STALE: the remote's CA is now sha256:"),
        "{text}"
    );
    assert!(
        text.contains("the remote's CA changed (rotation)"),
        "{text}"
    );

    let refresh = world.ok(LINK);
    let plan = stderr_of(&refresh);
    assert!(
        plan.contains("add the remote's CA to ConfigMap catalog-remote-cluster-cas"),
        "{plan}"
    );
    assert!(
        !plan.contains("create a cross-cluster API key"),
        "the key is kept: {plan}"
    );
    assert_eq!(
        east.remote_info("search", "catalog")["products"]["connected"],
        true
    );
    let after = world.ok([
        "describe",
        "catalog",
        "-n",
        "search",
        "--context",
        "east",
        "-o",
        "json",
    ]);
    let report: Value = serde_json::from_slice(&after.stdout).unwrap();
    assert_eq!(report["outgoing"][0]["trust"]["stale"], false);
    assert!(report["outgoing"][0]["trust"]["currentNotAfter"].is_string());
}

#[test]
fn certificate_link_across_clusters_connects_and_unlink_restores_both() {
    let world = world();
    let (east, west) = (world.sandbox.cluster("east"), world.sandbox.cluster("west"));
    world.settle(&["east", "west"]);
    let before = world.snapshot(&["east", "west"]);
    let mut args: Vec<&str> = LINK.to_vec();
    args.extend(["--security", "certificate"]);
    let link = world.ok(&args);
    assert!(
        stderr_of(&link).contains("deprecated"),
        "the certificate model warns"
    );
    let info = east.remote_info("search", "catalog");
    assert_eq!(info["products"]["connected"], true, "{info}");
    assert!(info["products"].get("cluster_credentials").is_none());
    assert!(
        info["products"]["proxy_address"]
            .as_str()
            .unwrap()
            .ends_with(":9300"),
        "{info}"
    );
    let transport = west
        .get(
            &ResourceKey::SERVICES,
            Some("shop"),
            "products-es-transport",
        )
        .unwrap();
    assert_eq!(transport["spec"]["type"], "LoadBalancer");

    let again = world.plugin().args(&args).output().unwrap();
    assert!(
        stderr_of(&again).contains("already linked"),
        "{}",
        stderr_of(&again)
    );

    world.ok([
        "unlink",
        "catalog",
        "products",
        "-n",
        "search",
        "--context",
        "east",
        "--yes",
        "--timeout",
        "90s",
    ]);
    world.settle(&["east", "west"]);
    let after = world.snapshot(&["east", "west"]);
    common::assert_same_objects(&before, &after);
    assert!(
        east.remote_info("search", "catalog")
            .get("products")
            .is_none()
    );
}

/// Every write of an API-key link across clusters, failed once: the steps already done are
/// undone (both clusters as before, no key left active), and the same command then links.
#[test]
fn a_failure_at_any_step_is_undone_and_the_same_command_then_links() {
    use remote_cluster_sandbox::Fault;
    let faults: Vec<(&str, Fault)> = vec![
        (
            "expose the remote",
            Fault::new(
                "PATCH",
                "/apis/elasticsearch.k8s.elastic.co/v1/namespaces/shop/elasticsearches/products",
            )
            .status(500),
        ),
        (
            "record on the remote",
            Fault::new(
                "PATCH",
                "/apis/elasticsearch.k8s.elastic.co/v1/namespaces/shop/elasticsearches/products",
            )
            .nth(2)
            .status(500),
        ),
        (
            "reach the remote Elasticsearch",
            Fault::new("GET", "/api/v1/namespaces/shop/pods/").status(500),
        ),
        (
            "keystore Secret",
            Fault::new("POST", "/api/v1/namespaces/search/secrets").status(500),
        ),
        (
            "CA bundle",
            Fault::new("POST", "/api/v1/namespaces/search/configmaps").status(500),
        ),
        (
            "local spec",
            Fault::new(
                "PATCH",
                "/apis/elasticsearch.k8s.elastic.co/v1/namespaces/search/elasticsearches/catalog",
            )
            .status(500),
        ),
        (
            "reach the local Elasticsearch",
            Fault::new("GET", "/api/v1/namespaces/search/pods/")
                .times(2)
                .status(500),
        ),
    ];
    for (name, fault) in faults {
        let world = world();
        let (east, west) = (world.sandbox.cluster("east"), world.sandbox.cluster("west"));
        world.settle(&["east", "west"]);
        let before = world.snapshot(&["east", "west"]);
        let target = if fault_is_on_west(&fault) {
            &west
        } else {
            &east
        };
        target.inject_fault(fault);
        let failed = world.plugin().args(LINK).output().unwrap();
        if name.starts_with("reach") {
            // Reaching Elasticsearch is retried while pods restart: a passing fault is absorbed.
            assert_eq!(
                failed.status.code(),
                Some(0),
                "{name}: {}",
                stderr_of(&failed)
            );
            assert_eq!(
                east.remote_info("search", "catalog")["products"]["connected"],
                true
            );
            continue;
        }
        assert_eq!(
            failed.status.code(),
            Some(1),
            "{name}: {}",
            stderr_of(&failed)
        );
        let stderr = stderr_of(&failed);
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{name}: {stderr}"
        );
        if name != "expose the remote" {
            assert!(
                stderr.contains("steps already applied were undone: nothing changed"),
                "{name}: {stderr}"
            );
        }
        world.settle(&["east", "west"]);
        let after = world.snapshot(&["east", "west"]);
        common::assert_same_objects(&before, &after);
        let active_after_failure = active_keys(&world);
        assert_eq!(active_after_failure, 0, "{name}: no key left active");

        let rerun = world.plugin().args(LINK).output().unwrap();
        assert_eq!(
            rerun.status.code(),
            Some(0),
            "{name}: {}",
            stderr_of(&rerun)
        );
        assert_eq!(
            east.remote_info("search", "catalog")["products"]["connected"],
            true,
            "{name}"
        );
        let active = active_keys(&world);
        assert_eq!(active, 1, "{name}: exactly one active key, none orphaned");
    }
}

/// Active keys of the plugin's on the remote.
fn active_keys(world: &World) -> usize {
    common::api_keys(
        &world.sandbox.cluster("west"),
        "shop",
        "products",
        "kubectl-rc-",
    )
    .iter()
    .filter(|(_, invalidated)| !invalidated)
    .count()
}

fn fault_is_on_west(fault: &remote_cluster_sandbox::Fault) -> bool {
    format!("{fault:?}").contains("/shop/")
}

/// The certificate model, each write failed once: what was done is undone, and the same command
/// then links.
#[test]
fn certificate_model_a_failure_at_any_step_is_undone_and_the_same_command_then_links() {
    use remote_cluster_sandbox::Fault;
    let faults: Vec<(&str, Fault)> = vec![
        (
            "remote CA ConfigMap",
            Fault::new("POST", "/api/v1/namespaces/shop/configmaps").status(500),
        ),
        (
            "remote spec",
            Fault::new(
                "PATCH",
                "/apis/elasticsearch.k8s.elastic.co/v1/namespaces/shop/elasticsearches/products",
            )
            .status(500),
        ),
        (
            "local CA ConfigMap",
            Fault::new("POST", "/api/v1/namespaces/search/configmaps").status(500),
        ),
        (
            "local spec",
            Fault::new(
                "PATCH",
                "/apis/elasticsearch.k8s.elastic.co/v1/namespaces/search/elasticsearches/catalog",
            )
            .status(500),
        ),
    ];
    let mut args: Vec<&str> = LINK.to_vec();
    args.extend(["--security", "certificate"]);
    for (name, fault) in faults {
        let world = world();
        let (east, west) = (world.sandbox.cluster("east"), world.sandbox.cluster("west"));
        world.settle(&["east", "west"]);
        let before = world.snapshot(&["east", "west"]);
        let target = if fault_is_on_west(&fault) {
            &west
        } else {
            &east
        };
        target.inject_fault(fault);
        let failed = world.plugin().args(&args).output().unwrap();
        assert_eq!(
            failed.status.code(),
            Some(1),
            "{name}: {}",
            stderr_of(&failed)
        );
        world.settle(&["east", "west"]);
        let after = world.snapshot(&["east", "west"]);
        common::assert_same_objects(&before, &after);
        let rerun = world.plugin().args(&args).output().unwrap();
        assert_eq!(
            rerun.status.code(),
            Some(0),
            "{name}: {}",
            stderr_of(&rerun)
        );
        assert_eq!(
            east.remote_info("search", "catalog")["products"]["connected"],
            true,
            "{name}"
        );
    }
}

#[test]
fn describe_finds_incoming_links_in_other_contexts() {
    let world = world();
    let west = world.sandbox.cluster("west");
    world.settle(&["east", "west"]);
    let mut args: Vec<&str> = LINK.to_vec();
    args.push("--wait=false");
    world.ok(&args);
    // Without the remote's own record, only looking in the other contexts finds the link.
    west.merge_patch(
        &ResourceKey::ELASTICSEARCHES,
        Some("shop"),
        "products",
        &serde_json::json!({"metadata": {"annotations": {"remote-cluster.kubectl-plugin.dev/incoming": null}}}),
        remote_cluster_sandbox::Sub::Main,
    )
    .unwrap();
    let describe = |extra: &[&str]| {
        let output = world
            .plugin()
            .args([
                "describe",
                "products",
                "-n",
                "shop",
                "--context",
                "west",
                "-o",
                "json",
            ])
            .args(extra)
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        report["incoming"].clone()
    };
    assert_eq!(describe(&[]), serde_json::json!([]));
    let found = describe(&["--all-contexts"]);
    assert_eq!(
        found,
        serde_json::json!([{"from": "east/search/catalog", "alias": "products", "security": "api-key"}])
    );
    assert_eq!(
        describe(&["--context", "east"]),
        found,
        "a further --context is looked in too"
    );
}
