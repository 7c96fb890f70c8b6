//! Signals sent to the real binary at each step boundary of a link across Kubernetes clusters.
//! SIGINT and SIGTERM stop at the boundary, undo what the run applied and exit 128 + the signal;
//! SIGKILL cannot be caught, so the same command run again must complete the link, and `unlink`
//! must then restore both clusters (Elasticsearch settings and keys included).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Snapshot, World, es};
use remote_cluster_sandbox::{ClusterConfig, Sandbox};
use serde_json::Value;

const BOTH: &[&str] = &["east", "west"];

/// east/search/catalog and west/shop/products, every API request 60 ms late so that the test
/// sees each write land before the next, and ECK taking 300 ms per rollout.
fn world() -> World {
    World::settled(
        Sandbox::builder()
            .operator_delay(Duration::from_millis(300))
            .cluster(
                ClusterConfig::new("east")
                    .latency(Duration::from_millis(60))
                    .elasticsearch(es("search", "catalog")),
            )
            .cluster(
                ClusterConfig::new("west")
                    .latency(Duration::from_millis(60))
                    .elasticsearch(es("shop", "products")),
            ),
    )
}

fn link_args() -> Vec<&'static str> {
    common::east_to_west("link", "products", &["--yes", "--timeout", "90s"])
}

fn unlink_args() -> Vec<&'static str> {
    vec![
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
    ]
}

fn spawn(world: &World, args: &[&str]) -> Child {
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

fn signal(child: &Child, name: &str) {
    let number = match name {
        "INT" => libc::SIGINT,
        "TERM" => libc::SIGTERM,
        "HUP" => libc::SIGHUP,
        "KILL" => libc::SIGKILL,
        other => panic!("no signal {other}"),
    };
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: sends a signal to a child this test spawned and has not yet waited for.
    let sent = unsafe { libc::kill(pid, number) };
    assert_eq!(sent, 0, "kill -{name} {pid}");
}

/// Waits (up to 60 s) until the plugin has sent `writes` writes to the two clusters.
fn until_writes(world: &World, child: &mut Child, writes: usize) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if world.plugin_writes(BOTH) >= writes {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

fn finish(child: Child) -> (Option<i32>, String) {
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// What Elasticsearch holds for the link: the local's `cluster.remote.*` settings and the
/// plugin's active keys on the remote.
fn elasticsearch_state(world: &World) -> (Value, usize) {
    let remote_settings: serde_json::Map<String, Value> = world
        .sandbox
        .cluster("east")
        .es_node("search", "catalog", |node| {
            node.persistent_settings()
                .iter()
                .filter(|(key, _)| key.starts_with("cluster.remote."))
                .map(|(key, value)| (key.clone(), value.to_json()))
                .collect()
        })
        .unwrap();
    let active = world.active_plugin_keys("west", "shop", "products");
    (Value::Object(remote_settings), active)
}

struct Before {
    objects: Snapshot,
    elasticsearch: (Value, usize),
}

fn before(world: &World) -> Before {
    Before {
        objects: world.snapshot(BOTH),
        elasticsearch: elasticsearch_state(world),
    }
}

fn assert_as_before(world: &World, before: &Before, context: &str) {
    world.settle(BOTH);
    world.assert_unchanged(BOTH, &before.objects);
    assert_eq!(
        elasticsearch_state(world),
        before.elasticsearch,
        "Elasticsearch settings and keys after {context}"
    );
}

/// The writes of an uninterrupted link, on a world of its own.
fn writes_of_a_link() -> usize {
    let world = world();
    world.clear_requests(BOTH);
    world.ok(link_args());
    world.plugin_writes(BOTH)
}

#[test]
fn sigint_and_sigterm_at_each_step_boundary_undo_the_link_or_leave_it_complete() {
    let total = writes_of_a_link();
    assert!(total >= 3, "a link across clusters writes several times");
    let mut undone = 0;
    for (writes, name, code) in (1..=total)
        .map(|w| (w, "INT", 130))
        .chain([(2, "TERM", 143), (1, "HUP", 129)])
    {
        let world = world();
        let before = before(&world);
        world.clear_requests(BOTH);
        let mut child = spawn(&world, &link_args());
        let reached = until_writes(&world, &mut child, writes);
        assert!(reached, "the link reached {writes} writes");
        signal(&child, name);
        let (exit, stderr) = finish(child);
        let context = format!("SIG{name} after {writes} of {total} writes");
        // After the last write the command may finish before the signal lands.
        let finished_first = exit == Some(0) && writes == total;
        assert!(
            exit == Some(code) || finished_first,
            "{context}: {exit:?} {stderr}"
        );
        eprintln!(
            "{context}: exit {exit:?}, {}",
            stderr.lines().last().unwrap_or_default()
        );
        if stderr.contains("were undone: nothing changed") {
            undone += 1;
            assert_as_before(&world, &before, &context);
        } else {
            // The signal came after the last step (during the final wait, or as it ended):
            // the link is whole, and says so.
            assert!(
                stderr.contains("every change is applied and stays")
                    || stderr.contains("is connected"),
                "{context}: {stderr}"
            );
            world.settle(BOTH);
            world.clear_requests(BOTH);
            world.ok(link_args());
            assert_eq!(
                world.plugin_writes(BOTH),
                0,
                "{context}: nothing left to do"
            );
            world.ok(unlink_args());
            assert_as_before(&world, &before, &format!("{context}, then unlink"));
        }
    }
    assert!(
        undone >= total - 1,
        "{undone} of {total} interrupted links were undone"
    );
}

/// A link killed after `writes` writes, on a world of its own, and the snapshot before it.
fn killed_link(writes: usize) -> (World, Before) {
    let world = world();
    let before = before(&world);
    world.clear_requests(BOTH);
    let mut child = spawn(&world, &link_args());
    assert!(until_writes(&world, &mut child, writes));
    signal(&child, "KILL");
    let (exit, _) = finish(child);
    assert_eq!(exit, None, "killed by the signal");
    world.settle(BOTH);
    (world, before)
}

#[test]
fn sigkill_at_each_step_boundary_leaves_what_unlink_removes() {
    let total = writes_of_a_link();
    for writes in 1..total {
        let (world, before) = killed_link(writes);
        let context = format!("SIGKILL after {writes} of {total} writes, then unlink");
        let describe = world
            .plugin()
            .args(["describe", "catalog", "-n", "search", "--context", "east"])
            .output()
            .unwrap();
        assert!(
            common::stdout_of(&describe).contains(
                "a link of alias \"products\" to shop/products (context west) was interrupted"
            ),
            "{context}: describe tells: {}",
            common::stdout_of(&describe)
        );
        let unlink = world.plugin().args(unlink_args()).output().unwrap();
        eprintln!(
            "{context}: exit {:?}, {}",
            unlink.status.code(),
            common::stderr_of(&unlink)
                .lines()
                .last()
                .unwrap_or_default()
        );
        assert_eq!(
            unlink.status.code(),
            Some(0),
            "{context}: {}",
            common::stderr_of(&unlink)
        );
        assert_as_before(&world, &before, &context);
    }
}

#[test]
fn sigkill_at_each_step_boundary_leaves_a_link_the_same_command_completes() {
    let total = writes_of_a_link();
    for writes in 1..total {
        let world = world();
        let before = before(&world);
        world.clear_requests(BOTH);
        let mut child = spawn(&world, &link_args());
        assert!(until_writes(&world, &mut child, writes));
        signal(&child, "KILL");
        let (exit, _) = finish(child);
        assert_eq!(exit, None, "killed by the signal");
        let context = format!("SIGKILL after {writes} of {total} writes");
        eprintln!("{context}: re-running the same command");

        world.settle(BOTH);
        let again = world.plugin().args(link_args()).output().unwrap();
        assert_eq!(
            again.status.code(),
            Some(0),
            "{context}: the same command completes: {}",
            common::stderr_of(&again)
        );
        world.ok(unlink_args());
        assert_as_before(&world, &before, &format!("{context}, re-run, then unlink"));
    }
}

#[test]
fn a_signal_before_any_write_ends_the_command_at_once() {
    let world = world();
    let before = before(&world);
    world.clear_requests(BOTH);
    let mut child = spawn(&world, &link_args());
    // The first request answered: the plugin is reading (each read takes 60 ms), long before
    // its first write.
    let started = Instant::now();
    while world.request_count("east") + world.request_count("west") == 0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the link ended before reading"
        );
        assert!(started.elapsed() < Duration::from_secs(30), "no request");
        std::thread::sleep(Duration::from_millis(2));
    }
    signal(&child, "INT");
    let (exit, stderr) = finish(child);
    assert_eq!(exit, Some(130), "{stderr}");
    assert!(stderr.contains("stopped before any write"), "{stderr}");
    assert_eq!(world.plugin_writes(BOTH), 0, "{stderr}");
    assert_as_before(&world, &before, "a signal while reading");
}

fn certificate_link_args() -> Vec<&'static str> {
    common::east_to_west(
        "link",
        "products",
        &["--security", "certificate", "--yes", "--timeout", "90s"],
    )
}

/// Runs `args` on `world` and sends `name` once the plugin has sent `writes` writes; returns
/// the exit code and stderr.
fn interrupted(world: &World, args: &[&str], writes: usize, name: &str) -> (Option<i32>, String) {
    world.clear_requests(BOTH);
    let mut child = spawn(world, args);
    assert!(
        until_writes(world, &mut child, writes),
        "{args:?} reached {writes} writes"
    );
    signal(&child, name);
    finish(child)
}

#[test]
fn a_certificate_link_interrupted_at_each_boundary_is_undone_or_removed_by_unlink() {
    let total = {
        let world = world();
        world.clear_requests(BOTH);
        world.ok(certificate_link_args());
        world.plugin_writes(BOTH)
    };
    assert!(total >= 3);
    for writes in 1..=total {
        let world = world();
        let before = before(&world);
        let (exit, stderr) = interrupted(&world, &certificate_link_args(), writes, "INT");
        let context = format!("certificate link, SIGINT after {writes} of {total} writes");
        eprintln!(
            "{context}: exit {exit:?}, {}",
            stderr.lines().last().unwrap_or_default()
        );
        let finished_first = exit == Some(0) && writes == total;
        assert!(
            exit == Some(130) || finished_first,
            "{context}: {exit:?} {stderr}"
        );
        if !stderr.contains("were undone: nothing changed") {
            world.settle(BOTH);
            let unlink = world.ok(unlink_args());
            eprintln!("{context}, then unlink:\n{}", common::stderr_of(&unlink));
        }
        assert_as_before(&world, &before, &context);
    }
    for writes in 1..total {
        let world = world();
        let before = before(&world);
        let (exit, _) = interrupted(&world, &certificate_link_args(), writes, "KILL");
        assert_eq!(exit, None);
        world.settle(BOTH);
        let context =
            format!("certificate link, SIGKILL after {writes} of {total} writes, then unlink");
        world.ok(unlink_args());
        assert_as_before(&world, &before, &context);
    }
}

#[test]
fn an_unlink_interrupted_at_each_boundary_is_finished_by_unlink_again() {
    let linked = || {
        let world = world();
        let before = before(&world);
        world.ok(link_args());
        world.settle(BOTH);
        (world, before)
    };
    let total = {
        let (world, _) = linked();
        world.clear_requests(BOTH);
        world.ok(unlink_args());
        world.plugin_writes(BOTH)
    };
    assert!(total >= 3);
    for writes in 1..total {
        for (name, code) in [("INT", Some(130)), ("KILL", None)] {
            let (world, before) = linked();
            let (exit, stderr) = interrupted(&world, &unlink_args(), writes, name);
            let context = format!("unlink, SIG{name} after {writes} of {total} writes");
            eprintln!(
                "{context}: exit {exit:?}, {}",
                stderr.lines().last().unwrap_or_default()
            );
            assert_eq!(exit, code, "{context}: {stderr}");
            world.settle(BOTH);
            if stderr.contains("the plan was applied") {
                // Only the final wait was cut short: the unlink is complete.
                assert_as_before(&world, &before, &context);
                continue;
            }
            let again = world.plugin().args(unlink_args()).output().unwrap();
            assert_eq!(
                again.status.code(),
                Some(0),
                "{context}, unlink again: {}",
                common::stderr_of(&again)
            );
            assert_as_before(&world, &before, &format!("{context}, unlink again"));
        }
    }
}

/// An `unlink` started while a `link` of the same alias is under way (its pending record
/// written, its writes in flight): whichever wins, nothing is orphaned, and a final `unlink`
/// brings both clusters back exactly (no active plugin key left).
#[test]
fn an_unlink_racing_a_link_in_flight_leaves_nothing_behind() {
    let total = writes_of_a_link();
    for writes in [1, total / 2, total - 1] {
        let world = world();
        let before = before(&world);
        world.clear_requests(BOTH);
        let mut link = spawn(&world, &link_args());
        assert!(until_writes(&world, &mut link, writes), "the link writes");
        let unlink = world.plugin().args(unlink_args()).output().unwrap();
        let (link_exit, link_stderr) = finish(link);
        let context = format!("unlink after {writes} of {total} writes of a link");
        eprintln!(
            "{context}: link exit {link_exit:?} ({}), unlink exit {:?} ({})",
            link_stderr.lines().last().unwrap_or_default(),
            unlink.status.code(),
            common::stderr_of(&unlink)
                .lines()
                .last()
                .unwrap_or_default()
        );
        assert!(
            matches!(unlink.status.code(), Some(0..=2)),
            "{context}: {}",
            common::stderr_of(&unlink)
        );
        world.settle(BOTH);
        let last = world.plugin().args(unlink_args()).output().unwrap();
        let said = common::stderr_of(&last);
        assert!(
            last.status.code() == Some(0)
                || (last.status.code() == Some(2) && said.contains("has no remote cluster")),
            "{context}, then unlink: {said}"
        );
        assert_as_before(&world, &before, &format!("{context}, then unlink"));
    }
}
