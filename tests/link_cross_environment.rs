//! `link` between two Kubernetes clusters (different ECK operators), API-key model, end to end.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{Snapshot, World, es, stderr_of, stdout_of};
use remote_cluster_sandbox::elasticsearch::EsRequest;
use remote_cluster_sandbox::{EsSeed, Fault, ResourceKey};
use serde_json::Value;

const BOTH: &[&str] = &["east", "west"];

/// `search/catalog` in east; `shop/products` and the too old `shop/legacy` in west; settled.
fn world() -> World {
    World::settled(
        common::east_and_west(
            [es("search", "catalog")],
            [
                es("shop", "products"),
                EsSeed::new("shop", "legacy", "8.17.0").nodes(1),
            ],
        )
        .operator_delay(Duration::from_millis(100)),
    )
}

/// `link` of east/search/catalog to west/shop/products, confirmed, then `extra`.
fn link<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    common::east_to_west(
        "link",
        "products",
        &[&["--yes", "--timeout", "90s"][..], extra].concat(),
    )
}

/// `unlink` of `products` from east/search/catalog, then `extra`.
fn unlink<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    [
        &[
            "unlink",
            "catalog",
            "products",
            "-n",
            "search",
            "--context",
            "east",
        ][..],
        extra,
    ]
    .concat()
}

/// `describe` of east/search/catalog, then `extra`.
fn describe<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    [
        &["describe", "catalog", "-n", "search", "--context", "east"][..],
        extra,
    ]
    .concat()
}

fn decoded(secret: &Value, key: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(secret["data"][key].as_str().unwrap())
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

/// The id of the API key the plugin recorded on east/search/catalog for `products`.
fn key_id(world: &World) -> String {
    let catalog = world.elasticsearch("east", "search", "catalog");
    let links: Value = serde_json::from_str(
        catalog["metadata"]["annotations"]["remote-cluster.kubectl-plugin.dev/links"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    links["products"]["keyId"].as_str().unwrap().to_string()
}

/// Whether east/search/catalog connects to `products` when asked to try (`_resolve/cluster`,
/// as a search would: Elasticsearch keeps an open connection, or a failed attempt, until then).
fn connected(world: &World) -> Value {
    let east = world.sandbox.cluster("east");
    let password = east
        .secret_text("search", "catalog-es-elastic-user", "elastic")
        .unwrap();
    let resolved = east.es_request(
        "search",
        "catalog",
        &EsRequest::new("GET", "/_resolve/cluster/products:*").basic("elastic", &password),
    );
    if resolved.status == 404 {
        return Value::Null;
    }
    let products = &resolved.body["products"];
    Value::Bool(products["connected"] == true && products.get("error").is_none())
}

#[test]
fn api_key_link_across_clusters_connects_and_is_idempotent() {
    let world = world();
    let (east, west) = (world.sandbox.cluster("east"), world.sandbox.cluster("west"));

    let output = world.ok(link(&[]));
    assert!(
        stderr_of(&output).contains("Remote cluster \"products\" is connected."),
        "{}",
        stderr_of(&output)
    );
    assert!(
        world.plugin_writes(&["east"]) > 0 && world.plugin_writes(&["west"]) > 0,
        "both sides are written"
    );

    let products = world.elasticsearch("west", "shop", "products");
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

    let catalog = world.elasticsearch("east", "search", "catalog");
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

    let key_id = key_id(&world);
    assert!(!key_id.is_empty() && !key_id.starts_with('$'));
    assert_eq!(
        common::api_keys(&west, "shop", "products", "kubectl-rc-"),
        [(key_id, false)],
        "the recorded key is the one active key"
    );

    let describe = world.ok(describe(&["-o", "json"]));
    let report: Value = serde_json::from_slice(&describe.stdout).unwrap();
    let link_report = &report["outgoing"][0];
    assert_eq!(link_report["alias"], "products");
    assert_eq!(link_report["managedBy"], "plugin");
    assert_eq!(link_report["mode"], "proxy");
    assert_eq!(link_report["connected"], true);
    assert_eq!(
        link_report["remote"],
        format!("west/shop/products via {host}:9443")
    );

    let again = world.again(BOTH, link(&[]), "already linked");
    common::assert_not_shown(&encoded, &[&output, &again, &describe]);
}

#[test]
fn bad_input_across_clusters_is_refused_without_writes() {
    let world = world();
    world.clear_requests(BOTH);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            common::east_to_west("link", "legacy", &[]),
            "cannot be connected",
        ),
        (
            common::east_to_west(
                "link",
                "products",
                &["--security", "certificate", "--search-indices", "logs-*"],
            ),
            "for the API-key model",
        ),
        (
            common::east_to_west("link", "products", &["--expose", "none"]),
            "must be reachable",
        ),
        (
            common::east_to_west("link", "products", &["--proxy-address", "rcs.example.com"]),
            "not HOST:PORT",
        ),
        (
            vec![
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
        world.refused(&args, expected);
    }
    for cluster in BOTH {
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
    let before = world.snapshot(BOTH);

    world.ok(link(&[]));
    let key_id = key_id(&world);

    world.clear_requests(BOTH);
    world.ok(unlink(&["--disable-server", "--yes", "--timeout", "90s"]));
    assert!(
        world.plugin_writes(&["east"]) > 0 && world.plugin_writes(&["west"]) > 0,
        "both sides are written"
    );

    world.assert_unchanged(BOTH, &before);
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
    assert_eq!(
        active_keys(&world),
        0,
        "no key of the plugin's is left active"
    );
}

#[test]
fn local_only_unlink_cleans_this_side_and_says_what_is_left() {
    let world = world();
    let (east, west) = (world.sandbox.cluster("east"), world.sandbox.cluster("west"));
    let before = world.snapshot(&["east"]);
    world.ok(link(&[]));
    west.clear_requests();

    let local_only = world.ok(unlink(&["--local-only", "--yes", "--wait=false"]));
    let stderr = stderr_of(&local_only);
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
    let pending = east
        .get(
            &ResourceKey::CONFIGMAPS,
            Some("search"),
            "catalog-remote-cluster-products-pending",
        )
        .expect("the way back to the remote is kept");
    assert!(
        pending["data"]["operation.json"]
            .as_str()
            .is_some_and(|text| text.contains("\"operation\":\"unlink\"")),
        "{pending}"
    );
    assert_eq!(active_keys(&world), 1, "the key is left, as said");

    // Once the remote is reachable again, unlink (no record left on the local) finishes there.
    let after = world.ok(unlink(&["--disable-server", "--yes", "--timeout", "90s"]));
    assert!(
        stderr_of(&after).contains("has no link record, but an interrupted unlink"),
        "{}",
        stderr_of(&after)
    );
    world.assert_unchanged(&["east"], &before);
    assert_eq!(active_keys(&world), 0, "the key is invalidated then");
    let incoming = world.elasticsearch("west", "shop", "products");
    assert!(
        incoming["metadata"]["annotations"]
            .get("remote-cluster.kubectl-plugin.dev/incoming")
            .is_none(),
        "{incoming}"
    );
}

#[test]
fn a_failure_after_the_key_is_created_invalidates_it_and_a_rerun_completes() {
    let world = world();
    let west = world.sandbox.cluster("west");
    // The keystore Secret cannot be created: the API server fails the request.
    world
        .sandbox
        .cluster("east")
        .inject_fault(Fault::new("POST", "/api/v1/namespaces/search/secrets").status(500));
    let failed = world.run(1, link(&[]));
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

    world.ok(link(&[]));
    assert_eq!(connected(&world), true);
    let active = active_keys(&world);
    assert_eq!(active, 1, "exactly one active key once linked");
}

#[test]
fn a_rotated_remote_ca_shows_as_stale_and_linking_again_refreshes_it() {
    let world = world();
    let west = world.sandbox.cluster("west");
    world.ok(link(&[]));

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
    // Open connections survive the rotation; any new one is refused.
    assert!(
        world
            .sandbox
            .cluster("east")
            .diagnose("search", "catalog", "products")
            .is_err(),
        "a new connection does not trust the rotated CA"
    );

    // Still connected (exit 0), but the copy is named stale: the next connection would fail.
    let stale = world.run(0, describe(&[]));
    let text = stdout_of(&stale);
    assert!(
        text.contains("STALE: the remote's CA is now sha256:"),
        "{text}"
    );

    world.clear_requests(BOTH);
    let refresh = world.ok(link(&[]));
    let plan = stderr_of(&refresh);
    assert!(
        plan.contains("add the remote's CA to ConfigMap catalog-remote-cluster-cas"),
        "{plan}"
    );
    assert!(
        !plan.contains("create a cross-cluster API key"),
        "the key is kept: {plan}"
    );
    assert!(world.plugin_writes(&["east"]) > 0, "{plan}");
    assert_eq!(
        world.plugin_writes(&["west"]),
        0,
        "nothing to change on the remote"
    );
    assert_eq!(connected(&world), true);
    assert_eq!(active_keys(&world), 1, "the key is kept");
    let report = world.json(describe(&["-o", "json"]));
    assert_eq!(report["outgoing"][0]["trust"]["stale"], false);
    assert!(report["outgoing"][0]["trust"]["currentNotAfter"].is_string());
}

#[test]
fn certificate_link_across_clusters_connects_and_unlink_restores_both() {
    let world = world();
    let (east, west) = (world.sandbox.cluster("east"), world.sandbox.cluster("west"));
    let before = world.snapshot(BOTH);
    let args = link(&["--security", "certificate"]);
    let linked = world.ok(&args);
    assert!(
        stderr_of(&linked).contains("deprecated"),
        "the certificate model warns"
    );
    assert!(
        world.plugin_writes(&["east"]) > 0 && world.plugin_writes(&["west"]) > 0,
        "both sides trust the other"
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
    assert_eq!(
        active_keys(&world),
        0,
        "no API key in the certificate model"
    );

    world.again(BOTH, &args, "already linked");

    world.ok(unlink(&["--yes", "--timeout", "90s"]));
    world.assert_unchanged(BOTH, &before);
    assert!(
        east.remote_info("search", "catalog")
            .get("products")
            .is_none()
    );
}

/// A fresh world, its objects, and `fault` set to fail a request to `cluster`.
fn world_failing(cluster: &str, fault: Fault) -> (World, Snapshot) {
    let world = world();
    let before = world.snapshot(BOTH);
    world.sandbox.cluster(cluster).inject_fault(fault);
    (world, before)
}

/// After a link `args` that failed at step `name`: one error, saying the steps before were
/// undone unless it was the `first`; both clusters as `before` and no key of the plugin's active.
/// Then the same command links, leaving `keys` active keys.
fn assert_undone_then_linked(
    world: &World,
    before: &Snapshot,
    (name, first): (&str, bool),
    args: &[&str],
    failed: &std::process::Output,
    keys: usize,
) {
    let stderr = stderr_of(failed);
    assert_eq!(failed.status.code(), Some(1), "{name}: {stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{name}: {stderr}"
    );
    if !first {
        assert!(
            stderr.contains("steps already applied were undone: nothing changed"),
            "{name}: {stderr}"
        );
    }
    world.assert_unchanged(BOTH, before);
    assert_eq!(active_keys(world), 0, "{name}: no key left active");

    let rerun = world.plugin().args(args).output().unwrap();
    assert_eq!(
        rerun.status.code(),
        Some(0),
        "{name}: {}",
        stderr_of(&rerun)
    );
    assert_eq!(connected(world), true, "{name}");
    assert_eq!(
        active_keys(world),
        keys,
        "{name}: active keys, none orphaned"
    );
}

const LINKS_PATH: &str = "/apis/elasticsearch.k8s.elastic.co/v1/namespaces";

/// Every write of an API-key link across clusters, failed once: the steps already done are
/// undone (both clusters as before, no key left active), and the same command then links.
#[test]
fn a_failure_at_any_step_is_undone_and_the_same_command_then_links() {
    let products = format!("{LINKS_PATH}/shop/elasticsearches/products");
    let catalog = format!("{LINKS_PATH}/search/elasticsearches/catalog");
    let faults = [
        (
            "expose the remote",
            "west",
            Fault::new("PATCH", &products).status(500),
        ),
        (
            "record on the remote",
            "west",
            Fault::new("PATCH", &products).nth(2).status(500),
        ),
        (
            "reach the remote Elasticsearch",
            "west",
            Fault::new("GET", "/api/v1/namespaces/shop/pods/").status(500),
        ),
        (
            "keystore Secret",
            "east",
            Fault::new("POST", "/api/v1/namespaces/search/secrets").status(500),
        ),
        (
            "CA bundle",
            "east",
            // The first ConfigMap created is the pending record; the second the CA bundle.
            Fault::new("POST", "/api/v1/namespaces/search/configmaps")
                .nth(2)
                .status(500),
        ),
        (
            "local spec",
            "east",
            Fault::new("PATCH", &catalog).status(500),
        ),
        (
            "reach the local Elasticsearch",
            "east",
            Fault::new("GET", "/api/v1/namespaces/search/pods/")
                .times(2)
                .status(500),
        ),
    ];
    let args = link(&[]);
    for (name, cluster, fault) in faults {
        let (world, before) = world_failing(cluster, fault);
        let failed = world.plugin().args(&args).output().unwrap();
        if name.starts_with("reach") {
            // Reaching Elasticsearch is retried while pods restart: a passing fault is absorbed.
            assert_eq!(
                failed.status.code(),
                Some(0),
                "{name}: {}",
                stderr_of(&failed)
            );
            assert_eq!(connected(&world), true, "{name}");
            assert_eq!(active_keys(&world), 1, "{name}: one active key");
            continue;
        }
        let step = (name, name == "expose the remote");
        assert_undone_then_linked(&world, &before, step, &args, &failed, 1);
    }
}

/// Active keys of the plugin's on the remote.
fn active_keys(world: &World) -> usize {
    world.active_plugin_keys("west", "shop", "products")
}

/// The certificate model, each write failed once: what was done is undone, and the same command
/// then links.
#[test]
fn certificate_model_a_failure_at_any_step_is_undone_and_the_same_command_then_links() {
    let faults = [
        (
            "remote CA ConfigMap",
            "west",
            Fault::new("POST", "/api/v1/namespaces/shop/configmaps").status(500),
        ),
        (
            "remote spec",
            "west",
            Fault::new(
                "PATCH",
                &format!("{LINKS_PATH}/shop/elasticsearches/products"),
            )
            .status(500),
        ),
        (
            "local CA ConfigMap",
            "east",
            // The first ConfigMap created on east is the pending record; the second the CA bundle.
            Fault::new("POST", "/api/v1/namespaces/search/configmaps")
                .nth(2)
                .status(500),
        ),
        (
            "local spec",
            "east",
            Fault::new(
                "PATCH",
                &format!("{LINKS_PATH}/search/elasticsearches/catalog"),
            )
            .status(500),
        ),
    ];
    let args = link(&["--security", "certificate"]);
    for (name, cluster, fault) in faults {
        let (world, before) = world_failing(cluster, fault);
        let failed = world.plugin().args(&args).output().unwrap();
        let step = (name, name == "remote CA ConfigMap");
        assert_undone_then_linked(&world, &before, step, &args, &failed, 0);
    }
}

#[test]
fn describe_finds_incoming_links_in_other_contexts() {
    let world = world();
    let west = world.sandbox.cluster("west");
    world.ok(link(&["--wait=false"]));
    // Without the remote's own record, only looking in the other contexts finds the link.
    west.merge_patch(
        &ResourceKey::ELASTICSEARCHES,
        Some("shop"),
        "products",
        &serde_json::json!({"metadata": {"annotations": {"remote-cluster.kubectl-plugin.dev/incoming": null}}}),
        remote_cluster_sandbox::Sub::Main,
    )
    .unwrap();
    world.clear_requests(BOTH);
    let describe = |extra: &[&str]| {
        let args = [
            &[
                "describe",
                "products",
                "-n",
                "shop",
                "--context",
                "west",
                "-o",
                "json",
            ][..],
            extra,
        ]
        .concat();
        world.json(args)["incoming"].clone()
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
    assert_eq!(world.write_count(BOTH), 0, "describe never writes");
}

/// ECK keeps the ports of a user's Service template: the remote cluster server behind port 443
/// and the transport behind 9400 are linked on those ports, read from the Services, not on
/// ECK's defaults (9443, 9300), which nothing answers on.
#[test]
fn links_use_the_ports_of_the_users_service_templates() {
    let world = world();
    let (east, west) = (world.sandbox.cluster("east"), world.sandbox.cluster("west"));
    west.merge_patch(
        &ResourceKey::ELASTICSEARCHES,
        Some("shop"),
        "products",
        &serde_json::json!({"spec": {
            "remoteClusterServer": {"enabled": true, "service": {"spec": {
                "type": "LoadBalancer",
                "ports": [{"name": "rcs", "port": 443, "targetPort": 9443, "protocol": "TCP"}]}}},
            "transport": {"service": {"spec": {
                "type": "LoadBalancer",
                "ports": [{"name": "tls-transport", "port": 9400, "targetPort": 9300, "protocol": "TCP"}]}}},
        }}),
        remote_cluster_sandbox::Sub::Main,
    )
    .unwrap();
    world.settle(BOTH);
    let lb = |service: &str| {
        west.get(&ResourceKey::SERVICES, Some("shop"), service)
            .unwrap()["status"]["loadBalancer"]["ingress"][0]["hostname"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let proxy_address = |alias: &str| {
        east.remote_info("search", "catalog")[alias]["proxy_address"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    let linked = world.ok(link(&[]));
    assert!(
        stderr_of(&linked).contains("Remote cluster \"products\" is connected."),
        "{}",
        stderr_of(&linked)
    );
    assert_eq!(
        proxy_address("products"),
        format!("{}:443", lb("products-es-remote-cluster"))
    );
    assert_eq!(connected(&world), true);

    let linked = world.ok(link(&[
        "--security",
        "certificate",
        "--alias",
        "products-t",
    ]));
    assert!(
        stderr_of(&linked).contains("Remote cluster \"products-t\" is connected."),
        "{}",
        stderr_of(&linked)
    );
    assert_eq!(
        proxy_address("products-t"),
        format!("{}:9400", lb("products-es-transport"))
    );
    assert_eq!(
        east.remote_info("search", "catalog")["products-t"]["connected"],
        true
    );
}

/// Elasticsearch refuses API-key names over 256 characters; a link from a context with a long
/// name (an EKS ARN) gets a key whose name is cut to the limit with a hash, and later commands
/// find that key by the same name.
#[test]
fn a_long_context_name_gives_a_key_name_elasticsearch_accepts() {
    let arn = format!(
        "arn:aws:eks:eu-west-1:123456789012:cluster/{}",
        "platform-".repeat(24)
    );
    let world = World::settled(
        common::east_and_west([es("search", "catalog")], [es("shop", "products")])
            .operator_delay(Duration::from_millis(100))
            .context(remote_cluster_sandbox::ContextConfig::new(
                &arn, "east", "admin",
            )),
    );
    let west = world.sandbox.cluster("west");
    let sides = [
        "catalog",
        "products",
        "-n",
        "search",
        "--context",
        arn.as_str(),
        "--remote-context",
        "west",
        "--remote-namespace",
        "shop",
        "--yes",
        "--timeout",
        "90s",
    ];
    let full = format!("kubectl-rc-{arn}-search-catalog-products");
    assert!(full.len() > 256, "the test needs a name over the limit");

    let linked = world.ok([&["link"][..], &sides].concat());
    assert!(
        stderr_of(&linked).contains("Remote cluster \"products\" is connected."),
        "{}",
        stderr_of(&linked)
    );
    let names: Vec<String> = west
        .es_node("shop", "products", |n| {
            n.api_keys().iter().map(|k| k.name.clone()).collect()
        })
        .unwrap();
    assert_eq!(names.len(), 1, "{names:?}");
    let name = &names[0];
    assert_eq!(name.len(), 256, "{name}");
    assert!(full.starts_with(&name[..239]), "{name}");
    assert!(name[240..].chars().all(|c| c.is_ascii_hexdigit()), "{name}");

    world.again(BOTH, [&["link"][..], &sides].concat(), "already linked");
    world.ok([&["unlink"][..], &sides[..8], &sides[10..]].concat());
    assert_eq!(world.active_plugin_keys("west", "shop", "products"), 0);
}

/// A link whose wait meets an error ECK keeps reporting for the local (`patch` on
/// east/search/catalog, plus `objects`): the wait shows ECK's error (and `event`, a Warning
/// event of ECK's) and stops with it, long before --timeout, and the link's writes are taken
/// back.
fn assert_link_stops_on_ecks_error(
    objects: &[Value],
    patch: Value,
    error: &str,
    event: Option<&str>,
) {
    let world = world();
    let east = world.sandbox.cluster("east");
    for object in objects {
        east.create(&ResourceKey::SECRETS, object.clone()).unwrap();
    }
    east.merge_patch(
        &ResourceKey::ELASTICSEARCHES,
        Some("search"),
        "catalog",
        &patch,
        remote_cluster_sandbox::Sub::Main,
    )
    .unwrap();
    world.settle(BOTH);
    let before = world.snapshot(BOTH);

    let started = std::time::Instant::now();
    let failed = world.run(1, link(&[]));
    let elapsed = started.elapsed();
    let stderr = stderr_of(&failed);
    assert!(
        elapsed < Duration::from_secs(45),
        "stopped long before the 90s timeout: {elapsed:?}\n{stderr}"
    );
    let cluster = "search/catalog (context east)";
    assert!(
        stderr.contains(&format!("ECK reports on {cluster}: {error}")),
        "{stderr}"
    );
    if let Some(event) = event {
        assert!(
            stderr.contains(&format!("ECK event on {cluster}: {event}")),
            "{stderr}"
        );
    }
    assert!(
        stderr.contains(&format!("ECK cannot roll out {cluster}: {error}")),
        "{stderr}"
    );
    assert!(!stderr.contains("timed out"), "{stderr}");
    world.assert_unchanged(BOTH, &before);
}

/// A secure-settings entry of the user's that names a key its Secret lacks: ECK stops before
/// the rollout (no event, only the condition).
#[test]
fn an_eck_error_that_lasts_ends_the_wait_with_ecks_message() {
    assert_link_stops_on_ecks_error(
        &[
            serde_json::json!({"metadata": {"name": "tokens", "namespace": "search"}, "stringData": {"a": "1"}}),
        ],
        serde_json::json!({"spec": {"secureSettings": [{"secretName": "tokens", "entries": [{"key": "b"}]}]}}),
        "key b not found in secure settings secret tokens",
        None,
    );
}

/// A `certificateAuthorities` ConfigMap that does not exist: ECK's Warning event is shown too.
#[test]
fn a_missing_transport_ca_configmap_ends_the_wait_with_ecks_event() {
    let error = "could not retrieve config map search/user-cas specified in spec.transport.tls.certificateAuthorities: configmaps \"user-cas\" not found";
    assert_link_stops_on_ecks_error(
        &[],
        serde_json::json!({"spec": {"transport": {"tls": {"certificateAuthorities": {"configMapName": "user-cas"}}}}}),
        error,
        Some(&format!("Unexpected (GetSecret): {error}")),
    );
}
