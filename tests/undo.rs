//! A failed command takes back exactly what it applied: someone else's writes made meanwhile
//! (another link, an annotation, a key added to a Secret or ConfigMap) survive, and the message
//! says what is left. Also: `--dry-run=server` of every link kind, and earlier attempts' writes
//! undone after a conflict.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{World, es, stderr_of};
use remote_cluster_sandbox::{ClusterHandle, Fault, ResourceKey, Sub};
use serde_json::{Value, json};

const PROPAGATE: &str = "eck.k8s.alpha.elastic.co/propagate-annotations";
const BOTH: &[&str] = &["east", "west"];
const FOREIGN: &str = "example.com/foreign";
const SECRET: &str = "catalog-remote-cluster-credentials";
const BUNDLE: &str = "catalog-remote-cluster-cas";
const LINKS: &str = "remote-cluster.kubectl-plugin.dev/links";
const INCOMING: &str = "remote-cluster.kubectl-plugin.dev/incoming";
const ES_PATH: &str = "/apis/elasticsearch.k8s.elastic.co/v1/namespaces";

/// east: `search/catalog`; west: `shop/products` and `sales/orders`; settled.
fn world(delay: Duration) -> World {
    World::settled(
        common::east_and_west(
            [es("search", "catalog")],
            [es("shop", "products"), es("sales", "orders")],
        )
        .operator_delay(delay),
    )
}

/// `link` of east/search/catalog to `west/<namespace>/<remote>`, confirmed, then `extra`.
fn link<'a>(remote: &'a str, namespace: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    common::east_to_west_in("link", remote, namespace, &[&["--yes"][..], extra].concat())
}

fn spawn(world: &World, args: &[&str]) -> std::thread::JoinHandle<Output> {
    let mut command = world.plugin();
    command.args(args);
    std::thread::spawn(move || command.output().unwrap())
}

fn annotation(object: &Value, key: &str) -> Option<String> {
    object["metadata"]["annotations"][key]
        .as_str()
        .map(str::to_string)
}

fn records(object: &Value, key: &str) -> Value {
    annotation(object, key)
        .map(|text| serde_json::from_str(&text).unwrap())
        .unwrap_or(json!({}))
}

fn object(cluster: &ClusterHandle, resource: &ResourceKey, ns: &str, name: &str) -> Value {
    cluster.get(resource, Some(ns), name).unwrap_or(Value::Null)
}

fn active_keys(world: &World, namespace: &str, name: &str) -> usize {
    world.active_plugin_keys("west", namespace, name)
}

/// Polls `done` every 20 ms for up to `limit`.
fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Writes of someone else made through the sandbox: an annotation on both Elasticsearch
/// resources, a key in the keystore Secret and one in the CA bundle.
fn foreign_writes(world: &World) {
    let (east, west) = (world.sandbox.cluster("east"), world.sandbox.cluster("west"));
    let annotate = json!({"metadata": {"annotations": {FOREIGN: "kept"}}});
    east.merge_patch(
        &ResourceKey::ELASTICSEARCHES,
        Some("search"),
        "catalog",
        &annotate,
        Sub::Main,
    )
    .unwrap();
    west.merge_patch(
        &ResourceKey::ELASTICSEARCHES,
        Some("shop"),
        "products",
        &annotate,
        Sub::Main,
    )
    .unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode("kept");
    east.merge_patch(
        &ResourceKey::SECRETS,
        Some("search"),
        SECRET,
        &json!({"data": {"foreign.setting": encoded}}),
        Sub::Main,
    )
    .unwrap();
    east.merge_patch(
        &ResourceKey::CONFIGMAPS,
        Some("search"),
        BUNDLE,
        &json!({"data": {"foreign.txt": "kept"}}),
        Sub::Main,
    )
    .unwrap();
}

/// How many of [`foreign_writes`] are gone.
fn foreign_writes_lost(world: &World) -> usize {
    let east = world.sandbox.cluster("east");
    let catalog = world.elasticsearch("east", "search", "catalog");
    let products = world.elasticsearch("west", "shop", "products");
    let secret = object(&east, &ResourceKey::SECRETS, "search", SECRET);
    let bundle = object(&east, &ResourceKey::CONFIGMAPS, "search", BUNDLE);
    [
        annotation(&catalog, FOREIGN).as_deref() == Some("kept"),
        annotation(&products, FOREIGN).as_deref() == Some("kept"),
        secret["data"]["foreign.setting"].is_string(),
        bundle["data"]["foreign.txt"] == "kept",
    ]
    .iter()
    .filter(|kept| !**kept)
    .count()
}

/// A link to `shop/products` that times out while waiting for the local restart, racing a link
/// to `sales/orders` started 0.4 s later that succeeds, with foreign edits made while the first
/// runs: the first takes back only its own changes, the second link and every foreign write
/// stay, and the first says so with exit 1.
#[test]
fn a_failing_link_racing_a_succeeding_one_takes_back_only_its_own_changes() {
    // Rollouts take 4 s: the first link writes the local side after its remote's rollout, at
    // about 4.5 s, and gives up at 7 s while the local rollout runs.
    let world = world(Duration::from_secs(4));
    let products_before = world.elasticsearch("west", "shop", "products");
    let east = world.sandbox.cluster("east");

    let first = spawn(&world, &link("products", "shop", &["--timeout", "7s"]));
    std::thread::sleep(Duration::from_millis(400));
    let second = spawn(&world, &link("orders", "sales", &["--timeout", "90s"]));

    // Once the first link wrote the local side (its CA block is in the bundle), someone else
    // edits every object it touched.
    let block = "# kubectl-remote-cluster: products ";
    let wrote_local = wait_for(Duration::from_secs(20), || {
        object(&east, &ResourceKey::CONFIGMAPS, "search", BUNDLE)["data"]["ca.crt"]
            .as_str()
            .is_some_and(|text| text.contains(block))
            && object(&east, &ResourceKey::SECRETS, "search", SECRET).is_object()
    });
    assert!(wrote_local, "the first link reaches the local side");
    foreign_writes(&world);

    let first = first.join().unwrap();
    let second = second.join().unwrap();
    let (first_err, second_err) = (stderr_of(&first), stderr_of(&second));
    assert_eq!(second.status.code(), Some(0), "{second_err}");
    assert_eq!(first.status.code(), Some(1), "{first_err}");
    assert_eq!(
        first_err
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1,
        "{first_err}"
    );
    assert!(first_err.contains("undone"), "{first_err}");
    assert!(
        !first_err.contains("Linked "),
        "no success line for a failed link: {first_err}"
    );
    world.settle(BOTH);

    // Every foreign write survives.
    assert_eq!(foreign_writes_lost(&world), 0, "{first_err}");

    // The second link is whole.
    let catalog = world.elasticsearch("east", "search", "catalog");
    let links = records(&catalog, LINKS);
    assert!(links.get("orders").is_some(), "{links}");
    let secret = object(&east, &ResourceKey::SECRETS, "search", SECRET);
    assert!(secret["data"]["cluster.remote.orders.credentials"].is_string());
    let bundle = object(&east, &ResourceKey::CONFIGMAPS, "search", BUNDLE);
    let ca = bundle["data"]["ca.crt"].as_str().unwrap_or_default();
    assert!(ca.contains("# kubectl-remote-cluster: orders "), "{ca}");
    assert_eq!(active_keys(&world, "sales", "orders"), 1);
    assert_eq!(
        east.remote_info("search", "catalog")["orders"]["connected"],
        true
    );

    // The first link's own changes are gone.
    assert!(links.get("products").is_none(), "{links}");
    assert!(secret["data"]["cluster.remote.products.credentials"].is_null());
    assert!(!ca.contains(block), "{ca}");
    assert_eq!(active_keys(&world, "shop", "products"), 0, "{first_err}");
    let products = world.elasticsearch("west", "shop", "products");
    assert_eq!(products["spec"], products_before["spec"], "{first_err}");
    assert_eq!(records(&products, INCOMING), json!({}));
    assert!(
        east.remote_info("search", "catalog")
            .get("products")
            .is_none(),
        "{first_err}"
    );
}

/// A failing link alone, with the same foreign edits made while it runs: all of them survive,
/// the link's changes are gone, and the message says nothing changed only because a re-read
/// shows it.
#[test]
fn foreign_edits_during_a_failing_link_survive_its_undo() {
    let world = world(Duration::from_secs(2));
    let before_products = world.elasticsearch("west", "shop", "products");
    let before_catalog = world.elasticsearch("east", "search", "catalog");
    let east = world.sandbox.cluster("east");
    // The local spec patch never answers: the Secret and the bundle were written just before,
    // and someone else edits them while the plugin waits for the answer.
    world.sandbox.cluster("east").inject_fault(
        Fault::new(
            "PATCH",
            &format!("{ES_PATH}/search/elasticsearches/catalog"),
        )
        .timeout(),
    );
    let run = spawn(
        &world,
        &link(
            "products",
            "shop",
            &["--timeout", "60s", "--request-timeout", "4s"],
        ),
    );
    let wrote_local = wait_for(Duration::from_secs(30), || {
        object(&east, &ResourceKey::CONFIGMAPS, "search", BUNDLE).is_object()
    });
    assert!(wrote_local);
    foreign_writes(&world);
    let output = run.join().unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    world.settle(BOTH);
    // The foreign annotation survives; the bundle and Secret hold a foreign key, so they stay,
    // without the link's own keys.
    assert_eq!(foreign_writes_lost(&world), 0, "{stderr}");
    let secret = object(&east, &ResourceKey::SECRETS, "search", SECRET);
    assert_eq!(
        secret["data"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["foreign.setting"]
    );
    let bundle = object(&east, &ResourceKey::CONFIGMAPS, "search", BUNDLE);
    assert_eq!(
        bundle["data"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["foreign.txt"]
    );
    let products = world.elasticsearch("west", "shop", "products");
    assert_eq!(products["spec"], before_products["spec"]);
    assert_eq!(records(&products, INCOMING), json!({}));
    let catalog = world.elasticsearch("east", "search", "catalog");
    assert_eq!(catalog["spec"], before_catalog["spec"]);
    assert_eq!(records(&catalog, LINKS), json!({}));
    assert_eq!(active_keys(&world, "shop", "products"), 0);
    // Kept objects are reported: the message does not claim that nothing changed.
    assert!(stderr.contains("undone"), "{stderr}");
    assert!(!stderr.contains("nothing changed"), "{stderr}");
    assert!(stderr.contains("foreign.setting"), "{stderr}");
}

/// A concurrent spec edit makes the first attempt re-plan after six writes; the second attempt
/// fails: the first attempt's writes are undone too, the concurrent edit stays.
#[test]
fn a_failure_after_a_conflict_undoes_the_earlier_attempts_writes() {
    let world = world(Duration::from_millis(100));
    let before = world.snapshot(BOTH);
    let catalog = format!("{ES_PATH}/search/elasticsearches/catalog");
    let east = world.sandbox.cluster("east");
    east.inject_fault(Fault::new("PATCH", &catalog).concurrent_merge_patch(
        json!({"spec": {"updateStrategy": {"changeBudget": {"maxUnavailable": 1}}}}),
    ));
    east.inject_fault(Fault::new("PATCH", &catalog).nth(2).status(500));
    let output = world
        .plugin()
        .args(link("products", "shop", &["--timeout", "90s"]))
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("re-planning"), "{stderr}");
    assert!(
        stderr.contains("steps already applied were undone: nothing changed"),
        "{stderr}"
    );
    assert_eq!(active_keys(&world, "shop", "products"), 0, "{stderr}");
    // The concurrent edit is someone else's: it stays.
    let catalog_now = world.elasticsearch("east", "search", "catalog");
    assert_eq!(
        catalog_now["spec"]["updateStrategy"]["changeBudget"]["maxUnavailable"],
        1
    );
    // Take the concurrent edit back once the operator is idle (it may still be rolling out).
    world.settle(BOTH);
    east.merge_patch(
        &ResourceKey::ELASTICSEARCHES,
        Some("search"),
        "catalog",
        &json!({"spec": {"updateStrategy": null}}),
        Sub::Main,
    )
    .unwrap_or_else(|err| panic!("taking the concurrent edit back: {err}"));
    world.assert_unchanged(BOTH, &before);
}

/// A plan re-made after a conflict ends in a user error (here: the alias was taken meanwhile):
/// what was applied is undone, and the exit code is 1, not 2 (2 means nothing was written).
#[test]
fn a_refusal_after_writes_undoes_them_and_exits_1() {
    let world = world(Duration::from_millis(100));
    let before = world.snapshot(BOTH);
    let catalog = format!("{ES_PATH}/search/elasticsearches/catalog");
    // Someone else configures alias "products" while the plugin writes the local spec.
    world.sandbox.cluster("east").inject_fault(
        Fault::new("PATCH", &catalog).concurrent_merge_patch(json!({"spec": {"remoteClusters": [
            {"name": "products", "elasticsearchRef": {"name": "elsewhere"}}
        ]}})),
    );
    let output = world
        .plugin()
        .args(link("products", "shop", &["--timeout", "90s"]))
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("undone"), "{stderr}");
    assert_eq!(active_keys(&world, "shop", "products"), 0, "{stderr}");
    world
        .sandbox
        .cluster("east")
        .merge_patch(
            &ResourceKey::ELASTICSEARCHES,
            Some("search"),
            "catalog",
            &json!({"spec": {"remoteClusters": null}}),
            Sub::Main,
        )
        .unwrap();
    world.assert_unchanged(BOTH, &before);
}

/// `--dry-run=server` validates every write of the API-key and the certificate links across
/// Kubernetes clusters, saves none, and exits 0.
#[test]
fn server_dry_run_of_cross_cluster_links_validates_and_saves_nothing() {
    let world = world(Duration::from_millis(100));
    let before = world.snapshot(BOTH);
    for extra in [&[][..], &["--security", "certificate"][..]] {
        world.clear_requests(BOTH);
        let args = [&["--dry-run=server"][..], extra].concat();
        let output = world.ok(link("products", "shop", &args));
        let stderr = stderr_of(&output);
        let writes: Vec<_> = BOTH
            .iter()
            .flat_map(|c| world.sandbox.cluster(c).requests())
            .filter(|r| r.is_write() && !r.path.ends_with("selfsubjectaccessreviews"))
            .collect();
        assert!(
            !writes.is_empty(),
            "{extra:?}: writes are validated: {stderr}"
        );
        assert!(
            writes.iter().all(|w| w.query.contains("dryRun=All")),
            "{extra:?}: {writes:?}"
        );
        assert!(
            writes.iter().all(|w| w.status < 300),
            "{extra:?}: {writes:?}"
        );
        world.assert_unchanged(BOTH, &before);
    }
    assert_eq!(active_keys(&world, "shop", "products"), 0);
}

/// `unlink` deletes the keystore Secret and the CA bundle only once the rollout that stops
/// using them has finished: when each is deleted, the local resource is rolled out.
#[test]
fn unlink_deletes_the_secret_and_bundle_after_the_rollout_that_stops_using_them() {
    let world = world(Duration::from_millis(500));
    world.ok(link("products", "shop", &["--timeout", "90s"]));
    world.settle(BOTH);
    let generation_linked =
        world.elasticsearch("east", "search", "catalog")["metadata"]["generation"]
            .as_i64()
            .unwrap();
    let mut events = world.sandbox.cluster("east").subscribe();
    let output = world.ok([
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
    let stderr = stderr_of(&output);
    let mut catalog: Option<Value> = None;
    let mut deleted = Vec::new();
    loop {
        let event = match events.try_recv() {
            Ok(event) => event,
            // Events missed by a slow reader: read on; an empty channel ends the list.
            Err(err) if format!("{err:?}").contains("Lagged") => continue,
            Err(_) => break,
        };
        let name = event.object["metadata"]["name"]
            .as_str()
            .unwrap_or_default();
        if event.resource == ResourceKey::ELASTICSEARCHES && name == "catalog" {
            catalog = Some(event.object.clone());
        } else if event.event_type == "DELETED" && [SECRET, BUNDLE].contains(&name) {
            let at = catalog.clone().expect("the resource changed before");
            let generation = at["metadata"]["generation"].as_i64().unwrap();
            assert!(
                generation > generation_linked,
                "{name}: the spec was reverted first"
            );
            assert_eq!(
                at["status"]["observedGeneration"].as_i64(),
                Some(generation),
                "{name} deleted before the rollout: {stderr}"
            );
            assert_eq!(at["status"]["phase"], "Ready", "{name}: {stderr}");
            deleted.push(name.to_string());
        }
    }
    deleted.sort();
    assert_eq!(deleted, [BUNDLE, SECRET], "{stderr}");
}

/// A plan re-made after a conflict that now restarts nodes (someone added an API-key remote
/// meanwhile) is not applied unconfirmed: without a terminal and without `--yes` it is refused.
#[test]
fn a_re_made_plan_that_restarts_nodes_is_confirmed_again() {
    let world = World::settled(common::east([
        es("search", "catalog"),
        es("search", "products"),
    ]));
    let catalog = format!("{ES_PATH}/search/elasticsearches/catalog");
    // The concurrent edit also makes ECK copy the plugin's record into the pods: the re-made
    // plan's write of it restarts catalog, which the first plan's did not.
    world.sandbox.cluster("east").inject_fault(
        Fault::new("PATCH", &catalog).concurrent_merge_patch(json!({
            "metadata": {"annotations": {PROPAGATE: "*"}},
            "spec": {"remoteClusters": [
                {"name": "other", "elasticsearchRef": {"name": "products"}, "apiKey": {"access": {"search": {"names": ["*"]}}}}
            ]}
        })),
    );
    let output = world
        .plugin()
        .args(common::catalog_products(
            "link",
            &["--security", "certificate", "--wait=false"],
        ))
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert!(stderr.contains("re-planning"), "{stderr}");
    common::assert_refused(&output, "no terminal to confirm it on");
    let entries =
        world.elasticsearch("east", "search", "catalog")["spec"]["remoteClusters"].clone();
    assert_eq!(
        entries,
        json!([{"name": "other", "elasticsearchRef": {"name": "products"}, "apiKey": {"access": {"search": {"names": ["*"]}}}}]),
        "nothing of the re-made plan applied: {stderr}"
    );
}

/// A final wait that times out after the plan was applied: no "Linked" line, exit 1, and the
/// message says the plan was applied and what is still pending.
#[test]
fn a_wait_that_fails_after_the_writes_says_what_was_applied_and_what_is_pending() {
    // ECK copies the plugin's record into catalog's pods: writing it restarts them, slowly.
    let world = World::settled(
        common::east([
            es("search", "catalog").annotation(PROPAGATE, "*"),
            es("search", "products"),
        ])
        .operator_delay(Duration::from_secs(10)),
    );
    let output = world
        .plugin()
        .args(common::catalog_products(
            "link",
            &["--security", "certificate", "--yes", "--timeout", "2s"],
        ))
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("Linked "), "{stderr}");
    assert!(
        stderr.contains(
            "the plan was applied (1 steps: add remote cluster \"products\" to spec.remoteClusters"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("is still pending"), "{stderr}");
    // The writes stay: the link is recorded, and the same command finishes it.
    let catalog = world.elasticsearch("east", "search", "catalog");
    assert!(records(&catalog, LINKS).get("products").is_some());
}
