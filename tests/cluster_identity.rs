//! Kubernetes clusters are recognised by who they are (the `kube-system` namespace UID), not by
//! how a kubeconfig names or spells them: a second spelling of one server is the same cluster,
//! and a teammate whose kubeconfig names the remote's context differently can still unlink.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{World, es, stderr_of};
use serde_json::Value;

const BOTH: &[&str] = &["east", "west"];

/// Runs the real kubectl on `kubeconfig` and returns its stdout.
fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs");
    assert!(
        output.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn jsonpath(kubeconfig: &Path, path: &str) -> String {
    kubectl(
        kubeconfig,
        &["config", "view", "--raw", "-o", &format!("jsonpath={path}")],
    )
}

/// Adds context `name` on `context`'s cluster and user, its server URL spelled
/// `https://localhost:PORT/` instead of `https://127.0.0.1:PORT`.
fn add_second_spelling(kubeconfig: &Path, context: &str, name: &str) {
    let cluster = jsonpath(
        kubeconfig,
        &format!("{{.contexts[?(@.name==\"{context}\")].context.cluster}}"),
    );
    let user = jsonpath(
        kubeconfig,
        &format!("{{.contexts[?(@.name==\"{context}\")].context.user}}"),
    );
    let server = jsonpath(
        kubeconfig,
        &format!("{{.clusters[?(@.name==\"{cluster}\")].cluster.server}}"),
    );
    let ca = jsonpath(
        kubeconfig,
        &format!("{{.clusters[?(@.name==\"{cluster}\")].cluster.certificate-authority-data}}"),
    );
    let respelled = format!("{}/", server.replace("127.0.0.1", "localhost"));
    assert_ne!(respelled, server);
    let spelling = format!("{name}-cluster");
    kubectl(
        kubeconfig,
        &["config", "set-cluster", &spelling, "--server", &respelled],
    );
    kubectl(
        kubeconfig,
        &[
            "config",
            "set",
            &format!("clusters.{spelling}.certificate-authority-data"),
            &ca,
        ],
    );
    kubectl(
        kubeconfig,
        &[
            "config",
            "set-context",
            name,
            "--cluster",
            &spelling,
            "--user",
            &user,
        ],
    );
}

#[test]
fn a_second_spelling_of_the_same_server_is_the_same_cluster() {
    let world = World::settled(common::east([
        es("search", "catalog"),
        es("search", "products"),
    ]));
    add_second_spelling(&world.kubeconfig, "east", "east-again");

    let output = world.run(
        0,
        [
            "link",
            "catalog",
            "products",
            "-n",
            "search",
            "--context",
            "east",
            "--remote-context",
            "east-again",
            "--yes",
            "--wait=false",
        ],
    );

    let catalog = world.elasticsearch("east", "search", "catalog");
    let entries = catalog["spec"]["remoteClusters"].as_array().cloned();
    let entries = entries.unwrap_or_default();
    assert_eq!(entries.len(), 1, "{}", stderr_of(&output));
    assert_eq!(
        entries[0]["elasticsearchRef"],
        serde_json::json!({"name": "products"}),
        "linked as two clusters of one operator (ECK connects them): {}",
        stderr_of(&output)
    );
    let links = catalog["metadata"]["annotations"]["remote-cluster.kubectl-plugin.dev/links"]
        .as_str()
        .unwrap_or_default();
    assert!(
        !links.contains("proxyAddress"),
        "no proxy address, as there would be across Kubernetes clusters: {links}"
    );
}

/// `search/catalog` in east linked to `shop/products` in west across clusters; settled.
fn linked_across() -> World {
    let world = World::settled(
        common::east_and_west([es("search", "catalog")], [es("shop", "products")])
            .operator_delay(Duration::from_millis(100)),
    );
    world.ok(common::east_to_west(
        "link",
        "products",
        &["--yes", "--timeout", "90s"],
    ));
    world
}

fn unlink_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    [
        &[
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
        ][..],
        extra,
    ]
    .concat()
}

fn active_keys(world: &World) -> usize {
    world.active_plugin_keys("west", "shop", "products")
}

#[test]
fn the_link_records_who_the_remote_cluster_is() {
    let world = linked_across();
    let catalog = world.elasticsearch("east", "search", "catalog");
    let links: Value = serde_json::from_str(
        catalog["metadata"]["annotations"]["remote-cluster.kubectl-plugin.dev/links"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let record = &links["products"];
    let uid = kubectl(
        &world.kubeconfig,
        &[
            "--context",
            "west",
            "get",
            "namespace",
            "kube-system",
            "-o",
            "jsonpath={.metadata.uid}",
        ],
    );
    assert_eq!(record["remoteClusterUid"], Value::String(uid), "{record}");
    assert!(
        record["remoteServer"]
            .as_str()
            .is_some_and(|s| s.starts_with("https://127.0.0.1:")),
        "{record}"
    );
    assert_eq!(record["remoteContext"], "west");
}

#[test]
fn unlink_finds_the_remote_when_the_kubeconfig_names_its_context_differently() {
    let world = linked_across();
    let before_unlink_keys = active_keys(&world);
    assert_eq!(before_unlink_keys, 1);
    kubectl(
        &world.kubeconfig,
        &["config", "rename-context", "west", "prod-west"],
    );

    world.clear_requests(BOTH);
    let output = world.run(0, unlink_args(&[]));

    assert!(
        stderr_of(&output).contains("using context \"prod-west\""),
        "{}",
        stderr_of(&output)
    );
    assert!(
        world.plugin_writes(&["west"]) > 0,
        "the remote is cleaned too"
    );
    assert_eq!(active_keys(&world), 0, "the link's key is invalidated");
    let catalog = world.elasticsearch("east", "search", "catalog");
    assert!(
        catalog.pointer("/spec/remoteClusters").is_none()
            || catalog["spec"]["remoteClusters"]
                .as_array()
                .unwrap()
                .is_empty(),
        "{catalog}"
    );
}

#[test]
fn unlink_refuses_a_remote_context_that_reaches_another_cluster() {
    let world = linked_across();
    world.clear_requests(BOTH);

    let output = world.refused(
        unlink_args(&["--remote-context", "east"]),
        "does not reach the cluster the link was made with",
    );

    assert_eq!(world.plugin_writes(BOTH), 0, "{}", stderr_of(&output));
    assert_eq!(active_keys(&world), 1);
}

#[test]
fn unlink_without_any_context_for_the_remote_says_what_to_pass() {
    let world = linked_across();
    kubectl(&world.kubeconfig, &["config", "delete-context", "west"]);
    world.clear_requests(BOTH);

    world.refused(unlink_args(&[]), "no context reaches that cluster");

    assert_eq!(world.plugin_writes(BOTH), 0);
    assert_eq!(active_keys(&world), 1);
}

#[test]
fn describe_reads_the_remote_when_the_kubeconfig_names_its_context_differently() {
    let world = linked_across();
    kubectl(
        &world.kubeconfig,
        &["config", "rename-context", "west", "prod-west"],
    );
    let report: serde_json::Value = serde_json::from_slice(
        &world
            .plugin()
            .args([
                "describe",
                "catalog",
                "-n",
                "search",
                "--context",
                "east",
                "-o",
                "json",
            ])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let trust = &report["outgoing"][0]["trust"];
    assert!(
        trust["currentFingerprint"].as_str().is_some(),
        "the remote's CA is read through the context that reaches it: {report}"
    );
    assert_eq!(trust["currentFingerprint"], trust["trustedFingerprint"]);
}
