//! The restarts a plan announces are the restarts that happen: for every kind of plan, the
//! Elasticsearch clusters whose pods get new UIDs are exactly those the plan's steps mark
//! `restartsNodes` (as `--dry-run=client -o json` prints them), and none restarts twice.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use common::{World, es, stderr_of};
use remote_cluster_sandbox::elasticsearch::EsRequest;
use remote_cluster_sandbox::{EsSeed, ResourceKey, WatchEvent};
use serde_json::{Value, json};
use tokio::sync::broadcast;

const BOTH: &[&str] = &["east", "west"];
const CLUSTER_NAME: &str = "elasticsearch.k8s.elastic.co/cluster-name";

/// `context/namespace/name` of the Elasticsearch a pod belongs to.
fn owner(context: &str, pod: &Value) -> String {
    format!(
        "{context}/{}/{}",
        pod["metadata"]["namespace"].as_str().unwrap_or_default(),
        pod["metadata"]["labels"][CLUSTER_NAME]
            .as_str()
            .unwrap_or_default()
    )
}

/// Every Elasticsearch pod of `contexts`: pod (`context/namespace/name`) to its UID.
fn pod_uids(world: &World, contexts: &[&str]) -> BTreeMap<(String, String), String> {
    contexts
        .iter()
        .flat_map(|context| {
            world
                .sandbox
                .cluster(context)
                .list(&ResourceKey::PODS, None)
                .into_iter()
                .filter(|p| p["metadata"]["labels"][CLUSTER_NAME].is_string())
                .map(move |p| {
                    (
                        (
                            owner(context, &p),
                            p["metadata"]["name"].as_str().unwrap().to_string(),
                        ),
                        p["metadata"]["uid"].as_str().unwrap().to_string(),
                    )
                })
        })
        .collect()
}

/// The Elasticsearch clusters with a pod whose UID changed.
fn restarted(
    before: &BTreeMap<(String, String), String>,
    after: &BTreeMap<(String, String), String>,
) -> BTreeSet<String> {
    before
        .iter()
        .filter(|(pod, uid)| after.get(*pod) != Some(*uid))
        .map(|((es, _), _)| es.clone())
        .collect()
}

/// The clusters the steps of a plan document mark as restarting, wherever its plans are.
fn marked_restarting(doc: &Value, out: &mut BTreeSet<String>) {
    match doc {
        Value::Object(map) => {
            if map.get("restartsNodes") == Some(&json!(true)) {
                let c = &map["cluster"];
                out.insert(format!(
                    "{}/{}/{}",
                    c["context"].as_str().unwrap_or_default(),
                    c["namespace"].as_str().unwrap_or_default(),
                    c["name"].as_str().unwrap_or_default()
                ));
            }
            map.values().for_each(|v| marked_restarting(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| marked_restarting(v, out)),
        _ => {}
    }
}

/// The clusters a plan shown on stderr marks as restarting: step lines
/// `N. <namespace>/<name> (context <context>): <summary>  [restarts Elasticsearch nodes]`.
fn shown_restarting(stderr: &str) -> BTreeSet<String> {
    stderr
        .lines()
        .filter(|l| l.ends_with("[restarts Elasticsearch nodes]"))
        .filter_map(|l| {
            let (_, rest) = l.split_once(". ")?;
            let (es, rest) = rest.split_once(" (context ")?;
            let (context, _) = rest.split_once("):")?;
            Some(format!("{context}/{es}"))
        })
        .collect()
}

/// The restarts the plan of `args` announces: its `-o json` document, or the plan on stderr
/// for commands whose dry run prints no document (`export`, `unexport`).
fn announced(world: &World, args: &[OsString]) -> BTreeSet<String> {
    let mut dry = args.to_vec();
    dry.extend(["--dry-run=client", "-o", "json"].map(OsString::from));
    let output = world.ok(&dry);
    let mut restarting = BTreeSet::new();
    match serde_json::from_slice::<Value>(&output.stdout) {
        Ok(doc) => marked_restarting(&doc, &mut restarting),
        Err(_) => {
            let stderr = stderr_of(&output);
            assert!(
                stderr.lines().any(|l| l.starts_with("Plan")),
                "no plan to read: {stderr}"
            );
            restarting = shown_restarting(&stderr);
        }
    }
    restarting
}

/// Counts pod replacements (deletions) per Elasticsearch while a command runs.
struct Deletions {
    receivers: Vec<(String, broadcast::Receiver<WatchEvent>)>,
}

impl Deletions {
    fn watch(world: &World, contexts: &[&str]) -> Self {
        Self {
            receivers: contexts
                .iter()
                .map(|c| (c.to_string(), world.sandbox.cluster(c).subscribe()))
                .collect(),
        }
    }

    /// Pod deletions per Elasticsearch since [`Deletions::watch`].
    fn per_cluster(mut self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for (context, rx) in &mut self.receivers {
            while let Ok(event) = rx.try_recv() {
                if event.event_type == "DELETED" && event.resource == ResourceKey::PODS {
                    *counts.entry(owner(context, &event.object)).or_default() += 1;
                }
            }
        }
        counts
    }
}

/// Runs `args` in dry run to read the restarts its plan announces, then for real; asserts the
/// clusters whose pods restarted are those, each rolled once (one replacement per pod).
fn restarts_as_planned<S: AsRef<str>>(
    world: &World,
    contexts: &[&str],
    args: &[S],
) -> std::process::Output {
    let args: Vec<OsString> = args.iter().map(|a| a.as_ref().into()).collect();
    let predicted = announced(world, &args);

    world.settle(contexts);
    let before = pod_uids(world, contexts);
    let deletions = Deletions::watch(world, contexts);
    let output = world.ok(&args);
    world.settle(contexts);
    let after = pod_uids(world, contexts);
    let actual = restarted(&before, &after);
    assert_eq!(
        actual,
        predicted,
        "{args:?}: restarted vs announced\n{}",
        stderr_of(&output)
    );
    let pods_per_cluster = |es: &str| before.keys().filter(|(e, _)| e == es).count();
    for (es, deleted) in deletions.per_cluster() {
        assert_eq!(
            deleted,
            pods_per_cluster(&es),
            "{args:?}: {es} rolled more than once"
        );
    }
    output
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[test]
fn same_operator_links_restart_as_planned() {
    let world = World::settled(common::east([
        es("search", "catalog"),
        EsSeed::new("search", "products", "9.1.0").nodes(2),
        es("search", "orders"),
    ]));
    let east = &["east"];
    let link = |remote: &str, extra: &[&str]| {
        strings(
            &[
                &["link", "catalog", remote, "-n", "search", "--yes"][..],
                extra,
            ]
            .concat(),
        )
    };
    // API key: the remote's server on (restart), the local's keystore (restart).
    restarts_as_planned(&world, east, &link("products", &[]));
    // A certificate-model entry next to it: no pod-template input changes.
    restarts_as_planned(
        &world,
        east,
        &link("orders", &["--security", "certificate"]),
    );
    let unlink = |alias: &str| strings(&["unlink", "catalog", alias, "-n", "search", "--yes"]);
    restarts_as_planned(&world, east, &unlink("orders"));
    restarts_as_planned(&world, east, &unlink("products"));
}

#[test]
fn propagated_annotations_restart_as_planned() {
    let world = World::settled(common::east([
        es("search", "catalog"),
        es("search", "products"),
    ]));
    world
        .sandbox
        .cluster("east")
        .annotate_elasticsearch(
            "search",
            "catalog",
            "eck.k8s.alpha.elastic.co/propagate-annotations",
            "*",
        )
        .unwrap();
    // The link record on catalog is copied into its pods: its certificate link restarts it.
    let args = strings(&[
        "link",
        "catalog",
        "products",
        "-n",
        "search",
        "--security",
        "certificate",
        "--yes",
    ]);
    let os_args: Vec<OsString> = args.iter().map(OsString::from).collect();
    let predicted = announced(&world, &os_args);
    assert!(predicted.contains("east/search/catalog"), "{predicted:?}");
    restarts_as_planned(&world, &["east"], &args);
}

/// `search/catalog` in east, `shop/products` (2 nodes) and `shop/orders` in west; settled.
fn two_clusters() -> World {
    World::settled(
        common::east_and_west(
            [es("search", "catalog")],
            [
                EsSeed::new("shop", "products", "9.1.0").nodes(2),
                es("shop", "orders"),
            ],
        )
        .operator_delay(Duration::from_millis(100)),
    )
}

fn cross<'a>(command: &'a str, remote: &'a str, extra: &[&'a str]) -> Vec<String> {
    strings(&common::east_to_west(
        command,
        remote,
        &[&["--yes", "--timeout", "90s"][..], extra].concat(),
    ))
}

fn cross_unlink(alias: &str) -> Vec<String> {
    strings(&[
        "unlink",
        "catalog",
        alias,
        "-n",
        "search",
        "--context",
        "east",
        "--yes",
        "--timeout",
        "90s",
    ])
}

#[test]
fn cross_environment_api_key_links_restart_as_planned() {
    let world = two_clusters();
    // First link: remote's server, the local's keystore, CA mount: one restart each.
    restarts_as_planned(&world, BOTH, &cross("link", "products", &[]));
    // Second link from the same local: the Secret's content changes (keystore), the mount
    // stays.
    restarts_as_planned(&world, BOTH, &cross("link", "orders", &[]));
    restarts_as_planned(&world, BOTH, &cross_unlink("orders"));
    restarts_as_planned(&world, BOTH, &cross_unlink("products"));
}

#[test]
fn cross_environment_certificate_links_restart_as_planned() {
    let world = two_clusters();
    restarts_as_planned(
        &world,
        BOTH,
        &cross("link", "products", &["--security", "certificate"]),
    );
    restarts_as_planned(&world, BOTH, &cross_unlink("products"));
}

#[test]
fn trust_restarts_as_planned() {
    let world = two_clusters();
    restarts_as_planned(&world, BOTH, &cross("trust", "products", &[]));
}

#[test]
fn export_and_unexport_restart_as_planned() {
    let world = World::settled(common::east([es("search", "products")]));
    let handover = world.dir.path().join("handover");
    let export = strings(&common::products_for(
        "export",
        "selfmanaged",
        &["--output-dir", path(&handover)],
    ));
    restarts_as_planned(&world, &["east"], &export);
    let unexport = strings(&common::products_for("unexport", "selfmanaged", &[]));
    restarts_as_planned(&world, &["east"], &unexport);
}

fn path(file: &Path) -> &str {
    file.to_str().unwrap()
}

#[test]
fn external_links_restart_as_planned() {
    let world = World::settled(
        common::east([es("search", "catalog")]).external_elasticsearch("cloud", "9.1.0"),
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
    let link = strings(&[
        "link",
        "catalog",
        "-n",
        "search",
        "--external",
        "cloud",
        "--proxy-address",
        &cloud.remote_cluster_address,
        "--yes",
        "--timeout",
        "60s",
        "--ca-file",
        path(&dir.join("remote-ca.pem")),
        "--api-key-file",
        path(&dir.join("key.txt")),
    ]);
    restarts_as_planned(&world, &["east"], &link);
    let unlink = strings(&[
        "unlink",
        "catalog",
        "cloud",
        "-n",
        "search",
        "--yes",
        "--timeout",
        "60s",
    ]);
    restarts_as_planned(&world, &["east"], &unlink);
}

/// With file-based secure settings on the local (ECK 3.5+, Elasticsearch 9.5+), a second link
/// from it restarts nothing there: the key applies in place, the CA mount is there already.
#[test]
fn file_based_secure_settings_links_restart_as_planned() {
    let world = World::settled(
        common::east_and_west(
            [EsSeed::new("search", "catalog", "9.5.0").nodes(2)],
            [
                EsSeed::new("shop", "products", "9.5.0").nodes(1),
                EsSeed::new("shop", "orders", "9.5.0").nodes(1),
            ],
        )
        .operator_delay(Duration::from_millis(100)),
    );
    world
        .sandbox
        .cluster("east")
        .annotate_elasticsearch(
            "search",
            "catalog",
            "eck.k8s.elastic.co/file-based-secure-settings",
            "true",
        )
        .unwrap();
    world.settle(BOTH);
    restarts_as_planned(&world, BOTH, &cross("link", "products", &[]));
    let second = cross("link", "orders", &[]);
    let os_args: Vec<OsString> = second.iter().map(OsString::from).collect();
    assert_eq!(
        announced(&world, &os_args),
        BTreeSet::from(["west/shop/orders".to_string()]),
        "only the remote's server restarts"
    );
    let output = restarts_as_planned(&world, BOTH, &second);
    assert!(
        stderr_of(&output).contains("Remote cluster \"orders\" is connected."),
        "the key works without a reload call: {}",
        stderr_of(&output)
    );
    // Removing one key while the other link stays: in place too.
    let unlink = cross_unlink("orders");
    let os_args: Vec<OsString> = unlink.iter().map(OsString::from).collect();
    assert_eq!(announced(&world, &os_args), BTreeSet::new());
    restarts_as_planned(&world, BOTH, &unlink);
    restarts_as_planned(&world, BOTH, &cross_unlink("products"));
}

/// Propagation on the local of links across Kubernetes clusters: the certificate link, which
/// otherwise restarts nothing, restarts it once for its record; the API-key link's record goes
/// in the same patch as its keystore reference, so that is still one restart.
#[test]
fn propagated_annotations_across_environments_restart_as_planned() {
    let world = two_clusters();
    world
        .sandbox
        .cluster("east")
        .annotate_elasticsearch(
            "search",
            "catalog",
            "eck.k8s.alpha.elastic.co/propagate-annotations",
            "*",
        )
        .unwrap();
    let certificate = cross("link", "orders", &["--security", "certificate"]);
    let os_args: Vec<OsString> = certificate.iter().map(OsString::from).collect();
    assert_eq!(
        announced(&world, &os_args),
        BTreeSet::from(["east/search/catalog".to_string()])
    );
    restarts_as_planned(&world, BOTH, &certificate);
    restarts_as_planned(&world, BOTH, &cross("link", "products", &[]));
    restarts_as_planned(&world, BOTH, &cross_unlink("orders"));
    restarts_as_planned(&world, BOTH, &cross_unlink("products"));
}

/// A key stored in a Secret leaves the generation alone: the link still returns only once every
/// pod of the local was replaced and is Ready (`--wait=false` skips the connection wait, not
/// the rollout's), although ECK sees the Secret's change late (its informer and queue) and,
/// until then, shows the status of a cluster rolled out.
#[test]
fn a_keystore_restart_is_waited_for_until_every_pod_is_replaced() {
    let world = World::settled(
        common::east_and_west(
            [EsSeed::new("search", "catalog", "9.1.0").nodes(3)],
            [es("shop", "products"), es("shop", "orders")],
        )
        .operator_delay(Duration::from_millis(1500))
        .operator_reaction_delay(Duration::from_millis(700)),
    );
    world.ok(cross("link", "products", &[]));
    world.settle(BOTH);
    let before = pod_uids(&world, &["east"]);
    let generation =
        world.elasticsearch("east", "search", "catalog")["metadata"]["generation"].clone();
    world.ok(cross("link", "orders", &["--wait=false"]));
    let catalog = world.elasticsearch("east", "search", "catalog");
    assert_eq!(
        catalog["metadata"]["generation"], generation,
        "no spec change"
    );
    assert_eq!(catalog["status"]["phase"], "Ready");
    let after = pod_uids(&world, &["east"]);
    assert_eq!(after.len(), 3);
    assert!(
        before.values().all(|uid| !after.values().any(|u| u == uid)),
        "returned before the rollout ended: {before:?} {after:?}"
    );
    let ready = world
        .sandbox
        .cluster("east")
        .list(&ResourceKey::PODS, Some("search"))
        .iter()
        .all(|p| p["status"]["conditions"][0]["status"] == "True");
    assert!(ready);
}
