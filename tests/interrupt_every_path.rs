//! Signals sent to the real binary at each step boundary of every other command that writes:
//! a link within one operator and its unlink, links to a cluster outside Kubernetes (key handed
//! over as a file, or created through the remote's URL), `export`/`unexport` and `trust`.
//! For each: SIGINT undoes the run (both clusters exactly as before, Elasticsearch settings and
//! keys included) or finds it complete; SIGKILL leaves a state the same command completes, and
//! the inverse command then restores everything (`tests/interrupt.rs` covers the links and
//! unlinks across Kubernetes clusters).

mod common;

use std::ffi::OsString;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Snapshot, World, es};
use remote_cluster_sandbox::elasticsearch::EsRequest;
use remote_cluster_sandbox::{ClusterConfig, EsSeed, Sandbox};
use serde_json::{Value, json};

/// One command that writes, the command that takes it back, and what to compare besides the
/// Kubernetes objects.
struct Path {
    name: &'static str,
    world: fn() -> World,
    clusters: &'static [&'static str],
    /// Run once on a fresh world before `forward` (an unlink needs its link).
    setup: fn(&World) -> Vec<OsString>,
    forward: fn(&World) -> Vec<OsString>,
    /// Takes `forward` back; `None` when there is no such command (`trust`).
    inverse: Option<fn(&World) -> Vec<OsString>>,
    /// `forward` takes the setup back (an unlink): once complete, everything is as before the
    /// setup, and running it again has nothing to act on.
    undoes_setup: bool,
    elasticsearch: fn(&World) -> Value,
}

fn args(list: &[&str]) -> Vec<OsString> {
    list.iter().map(OsString::from).collect()
}

fn no_setup(_: &World) -> Vec<OsString> {
    Vec::new()
}

/// Every API request 60 ms late, so that the test sees each write land before the next, and
/// ECK taking 300 ms per rollout.
fn slow(name: &str, seeds: Vec<EsSeed>) -> ClusterConfig {
    seeds.into_iter().fold(
        ClusterConfig::new(name).latency(Duration::from_millis(60)),
        ClusterConfig::elasticsearch,
    )
}

fn one_cluster() -> World {
    World::settled(
        Sandbox::builder()
            .operator_delay(Duration::from_millis(300))
            .cluster(slow(
                "east",
                vec![es("search", "catalog"), es("search", "products")],
            )),
    )
}

fn with_external() -> World {
    World::settled(
        Sandbox::builder()
            .operator_delay(Duration::from_millis(300))
            .cluster(slow(
                "east",
                vec![es("search", "catalog"), es("search", "products")],
            ))
            .external_elasticsearch("cloud", "9.1.0"),
    )
}

fn two_clusters() -> World {
    World::settled(
        Sandbox::builder()
            .operator_delay(Duration::from_millis(300))
            .cluster(slow("east", vec![es("search", "catalog")]))
            .cluster(slow("west", vec![es("shop", "products")])),
    )
}

/// `cluster.remote.*` persistent settings of an Elasticsearch of east.
fn remote_settings(world: &World, name: &str) -> Value {
    world
        .sandbox
        .cluster("east")
        .es_node("search", name, |node| {
            node.persistent_settings()
                .iter()
                .filter(|(key, _)| key.starts_with("cluster.remote."))
                .map(|(key, value)| (key.clone(), value.to_json()))
                .collect::<serde_json::Map<_, _>>()
        })
        .map(Value::Object)
        .unwrap()
}

/// Active keys named `kubectl-rc-…` on an Elasticsearch of east.
fn active_keys_on_east(world: &World, name: &str) -> usize {
    world.active_plugin_keys("east", "search", name)
}

/// Active keys the plugin made on the external cluster `cloud`.
fn active_keys_on_cloud(world: &World) -> usize {
    let cloud = world.sandbox.external("cloud");
    let found = world.sandbox.external_request(
        "cloud",
        &EsRequest::new(
            "GET",
            "/_security/api_key?name=kubectl-rc-*&active_only=true",
        )
        .basic("elastic", &cloud.password),
    );
    found.body["api_keys"]
        .as_array()
        .map(|keys| keys.iter().filter(|k| k["invalidated"] == false).count())
        .unwrap_or(0)
}

fn same_operator_state(world: &World) -> Value {
    json!({
        "catalog": remote_settings(world, "catalog"),
        "keys": active_keys_on_east(world, "products"),
    })
}

fn same_operator_link(_: &World) -> Vec<OsString> {
    args(&common::catalog_products(
        "link",
        &["--yes", "--timeout", "90s"],
    ))
}

fn same_operator_unlink(_: &World) -> Vec<OsString> {
    args(&common::catalog_products(
        "unlink",
        &["--disable-server", "--yes", "--timeout", "90s"],
    ))
}

/// The files a link to `cloud` is handed: the remote cluster server's CA, and a key made there
/// by its administrator (written once per world).
fn handover(world: &World) -> (String, String) {
    let dir = world.dir.path();
    let ca = dir.join("remote-ca.pem");
    let key = dir.join("key.txt");
    if !key.exists() {
        let cloud = world.sandbox.external("cloud");
        std::fs::write(&ca, &cloud.remote_cluster_ca_pem).unwrap();
        let made = world.sandbox.external_request(
            "cloud",
            &EsRequest::new("POST", "/_security/cross_cluster/api_key")
                .basic("elastic", &cloud.password)
                .json(&json!({"name": "for-eck", "access": {"search": [{"names": ["logs-*"]}]}})),
        );
        assert_eq!(made.status, 200, "{}", made.body);
        std::fs::write(&key, made.body["encoded"].as_str().unwrap()).unwrap();
    }
    (
        ca.to_str().unwrap().to_string(),
        key.to_str().unwrap().to_string(),
    )
}

/// `link` of east/search/catalog to `cloud` with its remote cluster server's CA, then `extra`.
fn external_link(world: &World, extra: &[&str]) -> Vec<OsString> {
    let (ca, _) = handover(world);
    let address = world.sandbox.external("cloud").remote_cluster_address;
    let base = [
        "link",
        "catalog",
        "-n",
        "search",
        "--external",
        "cloud",
        "--proxy-address",
        &address,
        "--ca-file",
        &ca,
        "--yes",
        "--timeout",
        "90s",
    ];
    args(&[&base[..], extra].concat())
}

fn external_link_with_files(world: &World) -> Vec<OsString> {
    let (_, key) = handover(world);
    external_link(world, &["--api-key-file", &key])
}

/// The flags that let the plugin use `cloud`'s REST API (files written once per world).
fn remote_api(world: &World) -> Vec<String> {
    let cloud = world.sandbox.external("cloud");
    let dir = world.dir.path();
    std::fs::write(dir.join("http-ca.pem"), &cloud.ca_pem).unwrap();
    std::fs::write(dir.join("password"), &cloud.password).unwrap();
    vec![
        "--remote-url".into(),
        cloud.url,
        "--remote-password-file".into(),
        dir.join("password").to_str().unwrap().into(),
        "--remote-ca-file".into(),
        dir.join("http-ca.pem").to_str().unwrap().into(),
    ]
}

fn external_link_through_url(world: &World) -> Vec<OsString> {
    let remote_api = remote_api(world);
    let remote_api: Vec<&str> = remote_api.iter().map(String::as_str).collect();
    external_link(world, &remote_api)
}

fn external_unlink(_: &World) -> Vec<OsString> {
    args(&[
        "unlink",
        "catalog",
        "cloud",
        "-n",
        "search",
        "--yes",
        "--timeout",
        "90s",
    ])
}

fn external_unlink_through_url(world: &World) -> Vec<OsString> {
    let mut list = external_unlink(world);
    list.extend(remote_api(world).into_iter().map(OsString::from));
    list
}

fn external_state(world: &World) -> Value {
    json!({
        "catalog": remote_settings(world, "catalog"),
        "cloud keys": active_keys_on_cloud(world),
    })
}

fn export(world: &World) -> Vec<OsString> {
    let dir = world.dir.path().join("handover");
    let mut list = args(&common::products_for(
        "export",
        "eck-products",
        &["--timeout", "90s"],
    ));
    list.extend([OsString::from("--output-dir"), dir.into()]);
    list
}

fn unexport(_: &World) -> Vec<OsString> {
    args(&common::products_for(
        "unexport",
        "eck-products",
        &["--disable-server", "--timeout", "90s"],
    ))
}

fn export_state(world: &World) -> Value {
    json!({"keys": active_keys_on_east(world, "products")})
}

/// Links east/search/catalog to west/shop/products, then returns `unlink --local-only`: the
/// remote keeps its half, for `unlink --remote-only` to remove.
fn linked_then_local_only(world: &World) -> Vec<OsString> {
    world.ok(common::east_to_west(
        "link",
        "products",
        &["--yes", "--timeout", "90s"],
    ));
    args(&[
        "unlink",
        "catalog",
        "products",
        "-n",
        "search",
        "--context",
        "east",
        "--local-only",
        "--yes",
        "--timeout",
        "90s",
    ])
}

fn remote_only_unlink(_: &World) -> Vec<OsString> {
    args(&[
        "unlink",
        "catalog",
        "products",
        "-n",
        "search",
        "--context",
        "east",
        "--remote-only",
        "--remote-context",
        "west",
        "--disable-server",
        "--yes",
        "--timeout",
        "90s",
    ])
}

fn west_keys(world: &World) -> Value {
    json!({"keys": world.active_plugin_keys("west", "shop", "products")})
}

fn trust(_: &World) -> Vec<OsString> {
    args(&common::east_to_west(
        "trust",
        "products",
        &["--yes", "--timeout", "90s"],
    ))
}

fn no_elasticsearch_state(_: &World) -> Value {
    Value::Null
}

fn paths() -> Vec<Path> {
    vec![
        Path {
            name: "link within one operator",
            world: one_cluster,
            clusters: &["east"],
            setup: no_setup,
            forward: same_operator_link,
            inverse: Some(same_operator_unlink),
            undoes_setup: false,
            elasticsearch: same_operator_state,
        },
        Path {
            name: "unlink within one operator",
            world: one_cluster,
            clusters: &["east"],
            setup: same_operator_link,
            forward: same_operator_unlink,
            inverse: None,
            undoes_setup: true,
            elasticsearch: same_operator_state,
        },
        Path {
            name: "link to an external cluster with a key file",
            world: with_external,
            clusters: &["east"],
            setup: no_setup,
            forward: external_link_with_files,
            inverse: Some(external_unlink),
            undoes_setup: false,
            elasticsearch: external_state,
        },
        Path {
            name: "link to an external cluster through its URL",
            world: with_external,
            clusters: &["east"],
            setup: no_setup,
            forward: external_link_through_url,
            inverse: Some(external_unlink_through_url),
            undoes_setup: false,
            elasticsearch: external_state,
        },
        Path {
            name: "unlink of an external cluster linked through its URL",
            world: with_external,
            clusters: &["east"],
            setup: external_link_through_url,
            forward: external_unlink_through_url,
            inverse: None,
            undoes_setup: true,
            elasticsearch: external_state,
        },
        Path {
            name: "export",
            world: one_cluster,
            clusters: &["east"],
            setup: no_setup,
            forward: export,
            inverse: Some(unexport),
            undoes_setup: false,
            elasticsearch: export_state,
        },
        Path {
            name: "unexport",
            world: one_cluster,
            clusters: &["east"],
            setup: export,
            forward: unexport,
            inverse: None,
            undoes_setup: true,
            elasticsearch: export_state,
        },
        Path {
            name: "unlink --remote-only after unlink --local-only",
            world: two_clusters,
            clusters: &["west"],
            setup: linked_then_local_only,
            forward: remote_only_unlink,
            inverse: None,
            undoes_setup: true,
            elasticsearch: west_keys,
        },
        Path {
            name: "trust",
            world: two_clusters,
            clusters: &["east", "west"],
            setup: no_setup,
            forward: trust,
            inverse: None,
            undoes_setup: false,
            elasticsearch: no_elasticsearch_state,
        },
    ]
}

fn spawn(world: &World, args: &[OsString]) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin(BIN))
        .env_clear()
        .env("HOME", world.dir.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KUBECONFIG", &world.kubeconfig)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, number: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: sends a signal to a child this test spawned and has not yet waited for.
    let sent = unsafe { libc::kill(pid, number) };
    assert_eq!(sent, 0, "kill -{number} {pid}");
}

/// A prepared world of `path`: set up, settled, and what it holds before `forward`.
struct Prepared {
    world: World,
    objects: Snapshot,
    elasticsearch: Value,
    /// Before the setup: what an undo of the setup (an unlink's link) comes back to.
    baseline: (Snapshot, Value),
}

fn prepare(path: &Path) -> Prepared {
    let world = (path.world)();
    let baseline = (world.snapshot(path.clusters), (path.elasticsearch)(&world));
    let setup = (path.setup)(&world);
    if !setup.is_empty() {
        world.ok(&setup);
    }
    world.settle(path.clusters);
    let objects = world.snapshot(path.clusters);
    let elasticsearch = (path.elasticsearch)(&world);
    world.clear_requests(path.clusters);
    Prepared {
        world,
        objects,
        elasticsearch,
        baseline,
    }
}

fn assert_as_before(path: &Path, prepared: &Prepared, context: &str) {
    let world = &prepared.world;
    world.settle(path.clusters);
    world.assert_unchanged(path.clusters, &prepared.objects);
    assert_eq!(
        (path.elasticsearch)(world),
        prepared.elasticsearch,
        "Elasticsearch settings and keys after {context}"
    );
}

/// Runs `forward` and sends `number` once it has sent `writes` writes; exit code and stderr.
fn interrupted(
    path: &Path,
    prepared: &Prepared,
    writes: usize,
    number: libc::c_int,
) -> (Option<i32>, String) {
    let world = &prepared.world;
    let mut child = spawn(world, &(path.forward)(world));
    let started = Instant::now();
    loop {
        if world.plugin_writes(path.clusters) >= writes {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "{}: ended before {writes} writes",
            path.name
        );
        assert!(started.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(2));
    }
    signal(&child, number);
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Unless `complete` already, the same command again completes the work; a link-like command
/// run a third time has nothing left to do, and the inverse command then brings back the state
/// before; an unlink-like one leaves the state before its setup.
fn complete_then_take_back(path: &Path, prepared: &Prepared, context: &str, complete: bool) {
    let world = &prepared.world;
    world.settle(path.clusters);
    if !complete {
        let again = world.plugin().args((path.forward)(world)).output().unwrap();
        assert_eq!(
            again.status.code(),
            Some(0),
            "{context}: the same command completes: {}",
            common::stderr_of(&again)
        );
        world.settle(path.clusters);
    }
    if path.undoes_setup {
        world.assert_unchanged(path.clusters, &prepared.baseline.0);
        assert_eq!(
            (path.elasticsearch)(world),
            prepared.baseline.1,
            "{context}: Elasticsearch settings and keys as before the setup"
        );
        return;
    }
    world.clear_requests(path.clusters);
    let third = world.ok((path.forward)(world));
    assert_eq!(
        world.plugin_writes(path.clusters),
        0,
        "{context}: nothing left after completing: {}",
        common::stderr_of(&third)
    );
    if let Some(inverse) = path.inverse {
        world.ok(inverse(world));
        assert_as_before(path, prepared, &format!("{context}, completed, taken back"));
    }
}

fn writes_of(path: &Path) -> usize {
    let prepared = prepare(path);
    prepared.world.ok((path.forward)(&prepared.world));
    prepared.world.plugin_writes(path.clusters)
}

/// SIGINT after each write: undone exactly, or (after the last write) complete.
fn sigint_at_each_boundary(path: &Path, total: usize) -> (usize, usize) {
    let (mut tried, mut clean) = (0, 0);
    for writes in 1..=total {
        let prepared = prepare(path);
        let (exit, stderr) = interrupted(path, &prepared, writes, libc::SIGINT);
        let context = format!("{}: SIGINT after {writes} of {total} writes", path.name);
        eprintln!(
            "{context}: exit {exit:?}, {}",
            stderr.lines().last().unwrap_or_default()
        );
        if std::env::var_os("SHOW_STDERR").is_some() {
            eprintln!("{stderr}");
        }
        tried += 1;
        let finished_first = exit == Some(0) && writes == total;
        assert!(
            exit == Some(130) || finished_first,
            "{context}: {exit:?} {stderr}"
        );
        if stderr.contains("nothing changed") || stderr.contains("stopped before any write") {
            assert_as_before(path, &prepared, &context);
        } else {
            // Interrupted in its final wait: every change is applied.
            // (Or the command ended before the signal came.)
            let complete = finished_first
                || stderr.contains("the plan was applied")
                || stderr.contains("the command completed, every change is applied");
            complete_then_take_back(path, &prepared, &context, complete);
        }
        clean += 1;
    }
    (tried, clean)
}

/// SIGKILL after each write but the last: the same command completes it; and, on a world of
/// its own, the inverse command alone removes what the killed run left.
fn sigkill_at_each_boundary(path: &Path, total: usize) -> (usize, usize) {
    let (mut tried, mut clean) = (0, 0);
    for writes in 1..total {
        let context = format!("{}: SIGKILL after {writes} of {total} writes", path.name);
        let prepared = prepare(path);
        let (exit, _) = interrupted(path, &prepared, writes, libc::SIGKILL);
        assert_eq!(exit, None, "{context}: killed");
        complete_then_take_back(path, &prepared, &context, false);
        tried += 1;
        clean += 1;
        let Some(inverse) = path.inverse else {
            continue;
        };
        let prepared = prepare(path);
        let (exit, _) = interrupted(path, &prepared, writes, libc::SIGKILL);
        assert_eq!(exit, None, "{context}: killed");
        prepared.world.settle(path.clusters);
        let taken_back = prepared
            .world
            .plugin()
            .args(inverse(&prepared.world))
            .output()
            .unwrap();
        assert_eq!(
            taken_back.status.code(),
            Some(0),
            "{context}, then the inverse command: {}",
            common::stderr_of(&taken_back)
        );
        assert_as_before(path, &prepared, &format!("{context}, then the inverse"));
        tried += 1;
        clean += 1;
    }
    (tried, clean)
}

fn check(name: &str) {
    let path = paths().into_iter().find(|p| p.name == name).unwrap();
    let total = writes_of(&path);
    assert!(total >= 1, "{name} writes");
    let (a, b) = sigint_at_each_boundary(&path, total);
    let (c, d) = sigkill_at_each_boundary(&path, total);
    eprintln!(
        "{name}: {total} writes; {} interruptions tried, {} exactly as before or completed",
        a + c,
        b + d
    );
}

#[test]
fn a_link_within_one_operator() {
    check("link within one operator");
}

#[test]
fn an_unlink_within_one_operator() {
    check("unlink within one operator");
}

#[test]
fn a_link_to_an_external_cluster_with_a_key_file() {
    check("link to an external cluster with a key file");
}

#[test]
fn a_link_to_an_external_cluster_through_its_url() {
    check("link to an external cluster through its URL");
}

#[test]
fn an_unlink_of_an_external_cluster_linked_through_its_url() {
    check("unlink of an external cluster linked through its URL");
}

#[test]
fn an_export() {
    check("export");
}

#[test]
fn an_unexport() {
    check("unexport");
}

#[test]
fn a_trust() {
    check("trust");
}

#[test]
fn an_unlink_of_the_remote_side_only() {
    check("unlink --remote-only after unlink --local-only");
}
