//! Benchmark: `kubectl remote-cluster list --all-contexts` over 20 simulated clusters, against
//! what a user would run without the plugin (a shell loop of `kubectl get elasticsearches`).
//!
//! Run with `cargo bench --bench list_across_contexts`; it prints a Markdown table of figures.
//! It measures, it does not assert: record the figures in docs/benchmarks.md.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use remote_cluster_sandbox::{ClusterConfig, EsSeed, Sandbox};

const CLUSTERS: usize = 20;
const ES_PER_CLUSTER: usize = 50;
const LATENCY: Duration = Duration::from_millis(50);
const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-remote_cluster");

struct Run {
    wall: Duration,
    max_rss_kib: u64,
}

/// Runs a command to completion under GNU time, which reports the child's own peak RSS
/// (`wait4` from this process would not: a spawned child starts from this process's high-water
/// mark, which holds the whole in-process sandbox).
fn run(program: &str, args: &[&str], env: &[(&str, &Path)]) -> Run {
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut command = Command::new("/usr/bin/time");
    command
        .args(["-f", "%M", "-o"])
        .arg(report.path())
        .arg(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let start = Instant::now();
    let status = command
        .status()
        .expect("/usr/bin/time runs (Debian package `time`)");
    let wall = start.elapsed();
    assert!(status.success(), "{program} {args:?} failed: {status}");
    let max_rss_kib = std::fs::read_to_string(report.path())
        .unwrap()
        .trim()
        .parse()
        .unwrap_or_default();
    Run { wall, max_rss_kib }
}

fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by_key(|r| r.wall);
    let max_rss_kib = runs.iter().map(|r| r.max_rss_kib).max().unwrap_or_default();
    let middle = runs.swap_remove(runs.len() / 2);
    Run {
        wall: middle.wall,
        max_rss_kib,
    }
}

fn repeat(times: usize, mut once: impl FnMut() -> Run) -> Run {
    median((0..times).map(|_| once()).collect())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let mut builder = Sandbox::builder();
    let mut contexts = Vec::new();
    for c in 1..=CLUSTERS {
        let name = format!("cluster-{c:02}");
        let mut cluster = ClusterConfig::new(&name).latency(LATENCY);
        for e in 0..ES_PER_CLUSTER {
            let namespace = format!("team-{}", e % 5);
            cluster =
                cluster.elasticsearch(EsSeed::new(&namespace, &format!("es-{e:02}"), "9.1.0"));
        }
        builder = builder.cluster(cluster);
        contexts.push(name);
    }
    let sandbox = builder.start().expect("sandbox starts");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sandbox.write_kubeconfig(&kubeconfig).unwrap();
    let env = [("KUBECONFIG", kubeconfig.as_path()), ("HOME", dir.path())];

    let loop_script = format!(
        "for c in {}; do kubectl get elasticsearches -A -o json --context \"$c\" >/dev/null; done",
        contexts.join(" ")
    );
    // Warm-up: kubectl fills its discovery cache under HOME, so the loop is measured at its best.
    run("bash", &["-c", &loop_script], &env);
    run(PLUGIN, &["list", "--all-contexts", "-o", "json"], &env);

    let all = repeat(7, || {
        run(PLUGIN, &["list", "--all-contexts", "-o", "json"], &env)
    });
    let single = repeat(7, || {
        run(
            PLUGIN,
            &["list", "--context", &contexts[0], "-o", "json"],
            &env,
        )
    });
    let kubectl_loop = repeat(3, || run("bash", &["-c", &loop_script], &env));
    let version = repeat(51, || run(PLUGIN, &["version"], &env));
    let kubectl_version = repeat(21, || run("kubectl", &["version", "--client"], &env));

    println!(
        "{CLUSTERS} clusters, {ES_PER_CLUSTER} Elasticsearch each, {} ms added latency per request; medians\n",
        LATENCY.as_millis()
    );
    println!("| measurement | wall time | peak RSS |");
    println!("|---|---|---|");
    let row = |name: &str, r: &Run| {
        println!(
            "| {name} | {} | {:.1} MiB |",
            ms(r.wall),
            r.max_rss_kib as f64 / 1024.0
        );
    };
    row("plugin `list --all-contexts -o json` (20 contexts)", &all);
    row(
        "plugin `list --context cluster-01 -o json` (1 context)",
        &single,
    );
    row("kubectl loop over 20 contexts", &kubectl_loop);
    row("plugin `version`", &version);
    row("`kubectl version --client`", &kubectl_version);
    println!();
    println!(
        "20 contexts / 1 context: {:.2}x (target < 3x)",
        all.wall.as_secs_f64() / single.wall.as_secs_f64()
    );
    println!(
        "kubectl loop / plugin: {:.1}x faster (target >= 8x)",
        kubectl_loop.wall.as_secs_f64() / all.wall.as_secs_f64()
    );
    println!(
        "requests served: {}",
        contexts
            .iter()
            .map(|c| sandbox.cluster(c).requests().len())
            .sum::<usize>()
    );
}
