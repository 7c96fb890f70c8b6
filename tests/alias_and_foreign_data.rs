//! One alias, one link; data the plugin did not write is never changed; link then unlink returns
//! every object to exactly what it was (issue 13, items 4 and 5), end to end.

mod common;

use std::time::Duration;

use common::{World, es, stderr_of};
use remote_cluster_sandbox::elasticsearch::EsRequest;
use remote_cluster_sandbox::{Fault, ResourceKey, Sub};
use serde_json::{Value, json};

const BOTH: &[&str] = &["east", "west"];

/// `search/catalog`, `search/products` and `search/reports` in east; `shop/products` and
/// `shop/reports` in west; settled.
fn world() -> World {
    World::settled(
        common::east_and_west(
            [
                es("search", "catalog"),
                es("search", "products"),
                es("search", "reports"),
            ],
            [es("shop", "products"), es("shop", "reports")],
        )
        .operator_delay(Duration::from_millis(100)),
    )
}

/// Same-operator `link` of search/catalog to search/`remote`, then `extra`.
fn link_here<'a>(remote: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    [
        &[
            "link",
            "catalog",
            remote,
            "-n",
            "search",
            "--context",
            "east",
            "--yes",
            "--timeout",
            "60s",
        ][..],
        extra,
    ]
    .concat()
}

/// `link` of east/search/catalog to west/shop/`remote`, then `extra`.
fn link_across<'a>(remote: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    common::east_to_west(
        "link",
        remote,
        &[&["--yes", "--timeout", "90s"][..], extra].concat(),
    )
}

/// `unlink` of `alias` from east/search/catalog, turning the server off where the plugin did.
fn unlink(alias: &str) -> Vec<&str> {
    vec![
        "unlink",
        "catalog",
        alias,
        "-n",
        "search",
        "--context",
        "east",
        "--disable-server",
        "--yes",
        "--timeout",
        "90s",
    ]
}

const USE_FIRST: &str =
    "run `kubectl remote-cluster unlink catalog metrics -n search --context east` first";

#[test]
fn a_same_operator_alias_is_never_re_pointed() {
    let world = world();
    let before = world.snapshot(BOTH);
    world.ok(link_here("products", &["--alias", "metrics"]));
    // Another remote under the alias.
    world.refused(link_here("reports", &["--alias", "metrics"]), USE_FIRST);
    // The same remote under the other security model.
    world.refused(
        link_here(
            "products",
            &["--alias", "metrics", "--security", "certificate"],
        ),
        USE_FIRST,
    );
    // A cross-cluster link under an alias a same-operator link holds.
    world.refused(link_across("products", &["--alias", "metrics"]), USE_FIRST);
    // The link is untouched: unlink takes it all away.
    world.ok(unlink("metrics"));
    world.assert_unchanged(BOTH, &before);
}

#[test]
fn a_cross_cluster_alias_is_never_re_pointed_nor_switched_to_another_model() {
    let world = world();
    let before = world.snapshot(BOTH);
    world.ok(link_across("products", &["--alias", "metrics"]));
    world.refused(link_across("reports", &["--alias", "metrics"]), USE_FIRST);
    world.refused(
        link_across(
            "products",
            &["--alias", "metrics", "--security", "certificate"],
        ),
        USE_FIRST,
    );
    world.refused(link_here("products", &["--alias", "metrics"]), USE_FIRST);
    // Nothing of the first link became unreachable: unlink removes its key, exposure, records.
    world.ok(unlink("metrics"));
    world.assert_unchanged(BOTH, &before);
    let keys = common::api_keys(
        &world.sandbox.cluster("west"),
        "shop",
        "products",
        "kubectl-rc-",
    );
    assert!(keys.iter().all(|(_, invalidated)| *invalidated), "{keys:?}");
}

/// `cluster.remote.metrics.*` on east/search/catalog, set by hand (not by the plugin).
fn hand_made_settings(world: &World) {
    let east = world.sandbox.cluster("east");
    let password = east
        .secret_text("search", "catalog-es-elastic-user", "elastic")
        .unwrap();
    let response = east.es_request(
        "search",
        "catalog",
        &EsRequest::new("PUT", "/_cluster/settings")
            .basic("elastic", &password)
            .json(&json!({"persistent": {
                "cluster.remote.metrics.mode": "proxy",
                "cluster.remote.metrics.proxy_address": "10.0.0.1:9443"
            }})),
    );
    assert_eq!(response.status, 200, "{}", response.body);
}

#[test]
fn when_the_local_settings_cannot_be_read_link_waits_then_refuses_without_writing() {
    let world = world();
    // Hand-made settings of the alias, which the plugin must not take over.
    hand_made_settings(&world);
    let before = world.snapshot(BOTH);
    // The local Elasticsearch cannot be reached (restarting) for longer than --timeout.
    world.sandbox.cluster("east").inject_fault(
        Fault::new("GET", "/api/v1/namespaces/search/pods/")
            .times(10_000)
            .status(503),
    );
    let writes = world.plugin_writes(BOTH);
    let args = common::east_to_west(
        "link",
        "products",
        &["--alias", "metrics", "--yes", "--timeout", "12s"],
    );
    let output = world.run(1, &args);
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("cannot read the cluster settings of search/catalog")
            && stderr.contains("whether alias \"metrics\" is set there is unknown"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Waiting for the cluster settings"),
        "{stderr}"
    );
    assert!(!stderr.contains("assuming"), "{stderr}");
    assert_eq!(world.plugin_writes(BOTH), writes, "no write: {stderr}");
    world.assert_unchanged(BOTH, &before);
}

#[test]
fn when_the_local_settings_come_back_the_hand_made_alias_is_refused() {
    let world = world();
    let east = world.sandbox.cluster("east");
    hand_made_settings(&world);
    let before = world.snapshot(BOTH);
    // Unreachable for a moment only: the read is retried, then finds the settings.
    east.inject_fault(
        Fault::new("GET", "/api/v1/namespaces/search/pods/")
            .times(3)
            .status(503),
    );
    world.refused(
        common::east_to_west(
            "link",
            "products",
            &["--alias", "metrics", "--yes", "--timeout", "60s"],
        ),
        "cluster settings kubectl remote-cluster did not make",
    );
    world.assert_unchanged(BOTH, &before);
}

/// Sets `spec.remoteClusterServer` of west/shop/products as its user would.
fn users_server(world: &World, server: Value) {
    world
        .sandbox
        .cluster("west")
        .merge_patch(
            &ResourceKey::ELASTICSEARCHES,
            Some("shop"),
            "products",
            &json!({"spec": {"remoteClusterServer": server}}),
            Sub::Main,
        )
        .unwrap();
    world.settle(BOTH);
}

#[test]
fn a_users_node_port_or_cluster_ip_is_refused_for_a_load_balancer_and_kept_with_an_address() {
    for user_type in ["NodePort", "ClusterIP"] {
        let world = world();
        users_server(
            &world,
            json!({"enabled": true, "service": {
                "metadata": {"annotations": {"team": "search"}},
                "spec": {"type": user_type}
            }}),
        );
        let before = world.snapshot(BOTH);
        world.refused(
            link_across("products", &[]),
            &format!("already sets spec.remoteClusterServer.service.spec.type: {user_type}"),
        );
        // With the address the user's Service is reached at, it is used as it is.
        world.ok(link_across(
            "products",
            &[
                "--proxy-address",
                "products.example.com:30443",
                "--wait=false",
            ],
        ));
        let products = world.elasticsearch("west", "shop", "products");
        assert_eq!(
            products["spec"]["remoteClusterServer"]["service"],
            json!({"metadata": {"annotations": {"team": "search"}}, "spec": {"type": user_type}}),
            "{user_type}"
        );
        world.ok(unlink("products"));
        world.assert_unchanged(BOTH, &before);
    }
}

#[test]
fn the_users_service_template_fields_are_kept_through_link_and_unlink() {
    let world = world();
    users_server(
        &world,
        json!({"service": {
            "metadata": {"annotations": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}},
            "spec": {"loadBalancerSourceRanges": ["10.0.0.0/8"]}
        }}),
    );
    let before = world.snapshot(BOTH);
    world.ok(link_across("products", &[]));
    let server =
        world.elasticsearch("west", "shop", "products")["spec"]["remoteClusterServer"].clone();
    assert_eq!(server["service"]["spec"]["type"], "LoadBalancer");
    assert_eq!(
        server["service"]["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-internal"],
        "true"
    );
    assert_eq!(
        server["service"]["spec"]["loadBalancerSourceRanges"],
        json!(["10.0.0.0/8"])
    );
    world.ok(unlink("products"));
    world.assert_unchanged(BOTH, &before);
}

#[test]
fn same_operator_link_and_unlink_return_every_object_exactly() {
    for security in ["api-key", "certificate"] {
        let world = world();
        let before = world.snapshot(BOTH);
        world.ok(link_here("products", &["--security", security]));
        world.ok(unlink("products"));
        world.assert_unchanged(BOTH, &before);
    }
}

#[test]
fn cross_cluster_api_key_link_and_unlink_return_every_object_exactly() {
    let world = world();
    let before = world.snapshot(BOTH);
    world.ok(link_across("products", &[]));
    world.ok(unlink("products"));
    world.assert_unchanged(BOTH, &before);
}

#[test]
fn a_users_transport_ca_configmap_is_byte_identical_after_certificate_link_and_unlink() {
    let world = world();
    let east = world.sandbox.cluster("east");
    // The user's own trusted CAs, without a final newline, named by the local's spec.
    let corporate = "-----BEGIN CERTIFICATE-----\nMIIBcorporate\n-----END CERTIFICATE-----";
    east.create(
        &ResourceKey::CONFIGMAPS,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "corporate-cas", "namespace": "search", "labels": {"team": "search"}},
            "data": {"ca.crt": corporate, "README": "ours\n"}
        }),
    )
    .unwrap();
    east.merge_patch(
        &ResourceKey::ELASTICSEARCHES,
        Some("search"),
        "catalog",
        &json!({"spec": {"transport": {"tls": {"certificateAuthorities": {"configMapName": "corporate-cas"}}}}}),
        Sub::Main,
    )
    .unwrap();
    world.settle(BOTH);
    let before = world.snapshot(BOTH);
    world.ok(link_across("products", &["--security", "certificate"]));
    let during = east
        .get(&ResourceKey::CONFIGMAPS, Some("search"), "corporate-cas")
        .unwrap();
    assert!(
        during["data"]["ca.crt"]
            .as_str()
            .unwrap()
            .starts_with(corporate)
    );
    world.ok(unlink("products"));
    let after = east
        .get(&ResourceKey::CONFIGMAPS, Some("search"), "corporate-cas")
        .unwrap();
    assert_eq!(after["data"]["ca.crt"], corporate, "not one byte added");
    world.assert_unchanged(BOTH, &before);
}

#[test]
fn a_users_transport_service_type_is_never_replaced() {
    let world = world();
    world
        .sandbox
        .cluster("west")
        .merge_patch(
            &ResourceKey::ELASTICSEARCHES,
            Some("shop"),
            "products",
            &json!({"spec": {"transport": {"service": {"spec": {"type": "NodePort"}}}}}),
            Sub::Main,
        )
        .unwrap();
    world.settle(BOTH);
    let before = world.snapshot(BOTH);
    world.refused(
        link_across("products", &["--security", "certificate"]),
        "already sets spec.transport.service.spec.type: NodePort",
    );
    world.ok(link_across(
        "products",
        &[
            "--security",
            "certificate",
            "--proxy-address",
            "products.example.com:30300",
            "--wait=false",
        ],
    ));
    assert_eq!(
        world.elasticsearch("west", "shop", "products")["spec"]["transport"]["service"],
        json!({"spec": {"type": "NodePort"}})
    );
    world.ok(unlink("products"));
    world.assert_unchanged(BOTH, &before);
}

/// [`world`] plus `cloud`, an Elasticsearch outside Kubernetes, and the files a link to it
/// needs: its remote cluster CA and a cross-cluster API key made there by its administrator.
fn world_with_cloud() -> (World, Vec<String>) {
    let world = World::settled(
        common::east_and_west([es("search", "catalog")], [es("shop", "products")])
            .operator_delay(Duration::from_millis(100))
            .external_elasticsearch("cloud", "9.1.0"),
    );
    let cloud = world.sandbox.external("cloud");
    let response = world.sandbox.external_request(
        "cloud",
        &EsRequest::new("POST", "/_security/cross_cluster/api_key")
            .basic("elastic", &cloud.password)
            .json(&json!({"name": "for-eck", "access": {"search": [{"names": ["logs-*"]}]}})),
    );
    assert_eq!(response.status, 200, "{}", response.body);
    let dir = world.dir.path();
    std::fs::write(dir.join("remote-ca.pem"), &cloud.remote_cluster_ca_pem).unwrap();
    std::fs::write(
        dir.join("key.txt"),
        format!("{}\n", response.body["encoded"].as_str().unwrap()),
    )
    .unwrap();
    let files = vec![
        "--proxy-address".to_string(),
        cloud.remote_cluster_address.clone(),
        "--ca-file".to_string(),
        dir.join("remote-ca.pem").to_str().unwrap().to_string(),
        "--api-key-file".to_string(),
        dir.join("key.txt").to_str().unwrap().to_string(),
        "--yes".to_string(),
        "--timeout".to_string(),
        "60s".to_string(),
    ];
    (world, files)
}

/// `link` of east/search/catalog to the external cluster under `alias`, with `files`.
fn link_external<'a>(alias: &'a str, files: &'a [String]) -> Vec<&'a str> {
    let mut args = vec![
        "link",
        "catalog",
        "-n",
        "search",
        "--context",
        "east",
        "--external",
        alias,
    ];
    args.extend(files.iter().map(String::as_str));
    args
}

#[test]
fn external_link_and_unlink_return_every_object_exactly_and_keep_their_alias() {
    let (world, files) = world_with_cloud();
    let before = world.snapshot(BOTH);
    world.ok(link_external("metrics", &files));
    // Neither a Kubernetes link nor another external link takes the alias over.
    world.refused(link_across("products", &["--alias", "metrics"]), USE_FIRST);
    // The same external cluster with the other security model: the key file is not for it.
    let mut certificate: Vec<String> = files[..4].to_vec();
    certificate.extend(["--security", "certificate", "--yes"].map(String::from));
    world.refused(link_external("metrics", &certificate), USE_FIRST);
    world.ok(unlink("metrics"));
    world.assert_unchanged(BOTH, &before);
}

#[test]
fn an_external_link_does_not_take_over_a_kubernetes_alias() {
    let (world, files) = world_with_cloud();
    let before = world.snapshot(BOTH);
    world.ok(link_across("products", &["--alias", "metrics"]));
    world.refused(link_external("metrics", &files), USE_FIRST);
    world.ok(unlink("metrics"));
    world.assert_unchanged(BOTH, &before);
}

#[test]
fn unlink_does_not_guess_the_settings_of_an_unreadable_local_either() {
    let world = world();
    world.ok(link_across("products", &["--alias", "metrics"]));
    world.settle(BOTH);
    let linked = world.snapshot(BOTH);
    world.sandbox.cluster("east").inject_fault(
        Fault::new("GET", "/api/v1/namespaces/search/pods/")
            .times(10_000)
            .status(503),
    );
    let writes = world.plugin_writes(BOTH);
    let mut args = unlink("metrics");
    *args.last_mut().unwrap() = "6s";
    let output = world.run(1, &args);
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("whether alias \"metrics\" is set there is unknown"),
        "{stderr}"
    );
    assert_eq!(world.plugin_writes(BOTH), writes, "no write: {stderr}");
    world.assert_unchanged(BOTH, &linked);
}
