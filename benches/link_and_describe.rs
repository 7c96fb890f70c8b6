//! Benchmark: round trips and wall time of `link`, a repeated `link`, `describe` and `unlink`,
//! within one Kubernetes cluster and across two, and of a certificate-model `export` to a
//! deployment on Elastic Cloud Hosted (restricted trust), each API server answering every
//! request 50 ms late. The simulated operator takes 100 ms per rolling restart.
//!
//! A second section runs a cross-cluster API-key `link` and `unlink` (with and without
//! `--wait=false`) against a sandbox whose operator takes 2000 ms per rolling restart, with no
//! added latency, and reports how late the plugin notices each rollout's end (see
//! docs/benchmarks.md, "Elasticsearch connections and waits").
//!
//! Run with `cargo bench --bench link_and_describe`; record the figures in docs/benchmarks.md.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use remote_cluster_sandbox::{
    ClusterConfig, ClusterHandle, EsSeed, RequestRecord, ResourceKey, Sandbox,
};
use tokio::sync::broadcast::error::TryRecvError;

const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-remote_cluster");
const LATENCY: Duration = Duration::from_millis(50);

/// `command` of search/catalog and search/products within east, then `extra`.
fn same<'a>(command: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    [&[command, "catalog", "products", "-n", "search"][..], extra].concat()
}

/// `command` of east/search/catalog and west/shop/orders, then `extra`.
fn across<'a>(command: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    [
        &[
            command,
            "catalog",
            "orders",
            "-n",
            "search",
            "--context",
            "east",
        ][..],
        extra,
    ]
    .concat()
}

/// `command` of east/search/products for the deployment `ech`, confirmed, then `extra`.
fn for_ech<'a>(command: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let head = [
        command,
        "products",
        "-n",
        "search",
        "--context",
        "east",
        "--for",
        "ech",
        "--yes",
    ];
    [&head[..], extra].concat()
}

/// Kubernetes API requests that open a port-forward (`.../pods/<pod>/portforward`).
fn port_forwards(requests: &[RequestRecord]) -> usize {
    requests
        .iter()
        .filter(|r| r.path.ends_with("/portforward"))
        .count()
}

fn main() {
    latency_section();
    operator_delay_section();
}

fn latency_section() {
    let sandbox = Sandbox::builder()
        .operator_delay(Duration::from_millis(100))
        .cluster(
            ClusterConfig::new("east")
                .latency(LATENCY)
                .elasticsearch(EsSeed::new("search", "catalog", "9.1.0").nodes(1))
                .elasticsearch(EsSeed::new("search", "products", "9.1.0").nodes(1)),
        )
        .cluster(
            ClusterConfig::new("west")
                .latency(LATENCY)
                .elasticsearch(EsSeed::new("shop", "orders", "9.1.0").nodes(1)),
        )
        .hosted_external_elasticsearch("ech", "9.1.0", "1075999151")
        .start()
        .expect("sandbox starts");
    let clusters = [sandbox.cluster("east"), sandbox.cluster("west")];
    let settle = || {
        for cluster in &clusters {
            cluster.wait_idle(Duration::from_secs(60)).unwrap();
        }
    };
    settle();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sandbox.write_kubeconfig(&kubeconfig).unwrap();

    println!(
        "{} ms added latency per API request, 100 ms per simulated rolling restart; requests are the plugin's only\n",
        LATENCY.as_millis()
    );
    println!("| command | wall time | API requests | writes | access reviews | port-forwards |");
    println!("|---|---|---|---|---|---|");
    let row = |name: &str, args: &[&str]| {
        settle();
        for cluster in &clusters {
            cluster.clear_requests();
        }
        let start = Instant::now();
        let output = Command::new(PLUGIN)
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", dir.path())
            .output()
            .unwrap();
        let wall = start.elapsed();
        assert!(
            matches!(output.status.code(), Some(0 | 3)),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let requests: Vec<_> = clusters.iter().flat_map(|c| c.requests()).collect();
        let reviews = requests
            .iter()
            .filter(|r| r.path.ends_with("selfsubjectaccessreviews"))
            .count();
        let writes = requests.iter().filter(|r| r.is_write()).count() - reviews;
        println!(
            "| {name} | {:.0} ms | {} | {writes} | {reviews} | {} |",
            wall.as_secs_f64() * 1000.0,
            requests.len(),
            port_forwards(&requests)
        );
        writes
    };
    let nothing_to_do = |writes: usize| assert_eq!(writes, 0, "a repeated command writes nothing");
    let link = same("link", &["--yes", "--wait=false"]);
    row("same cluster: `link --wait=false`", &link);
    nothing_to_do(row("same cluster: `link` again (nothing to do)", &link));
    row(
        "`describe catalog`",
        &["describe", "catalog", "-n", "search"],
    );
    row(
        "same cluster: `unlink --wait=false`",
        &same("unlink", &["--yes", "--wait=false"]),
    );
    let link = across(
        "link",
        &[
            "--remote-context",
            "west",
            "--remote-namespace",
            "shop",
            "--yes",
            "--wait=false",
        ],
    );
    row("across clusters: `link --wait=false`", &link);
    nothing_to_do(row("across clusters: `link` again (nothing to do)", &link));
    row(
        "across clusters: `unlink --wait=false`",
        &across("unlink", &["--yes", "--wait=false"]),
    );

    let ech = sandbox.external("ech");
    std::fs::write(dir.path().join("ech-ca.crt"), &ech.transport_ca_pem).unwrap();
    std::fs::write(
        dir.path().join("trust.yml"),
        ech.hosted_trust_yml("search.es.local"),
    )
    .unwrap();
    let ca = dir.path().join("ech-ca.crt").display().to_string();
    let trust = dir.path().join("trust.yml").display().to_string();
    let handover = dir.path().join("handover").display().to_string();
    let export = for_ech(
        "export",
        &[
            "--security",
            "certificate",
            "--ca-file",
            &ca,
            "--trust-file",
            &trust,
            "--output-dir",
            &handover,
        ],
    );
    row(
        "Elastic Cloud Hosted: `export --security certificate --trust-file` (one restart)",
        &export,
    );
    nothing_to_do(row(
        "Elastic Cloud Hosted: `export` again (nothing to do)",
        &export,
    ));
    row(
        "Elastic Cloud Hosted: `unexport` (one restart)",
        &for_ech("unexport", &[]),
    );
}

/// One rolling restart seen during a command: the Elasticsearch's status phase went to
/// `ApplyingChanges` at `started` and back to `Ready` at `ended` (times from the command's start;
/// `None` when outside the command).
struct Restart {
    es: String,
    started: Option<Duration>,
    ended: Option<Duration>,
}

/// What the harness saw while one command ran.
struct Timeline {
    wall: Duration,
    code: i32,
    /// When each Kubernetes API request appeared in a request log, sorted.
    request_times: Vec<Duration>,
    requests: Vec<RequestRecord>,
    restarts: Vec<Restart>,
}

fn phase(es: &serde_json::Value) -> String {
    es.pointer("/status/phase")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn es_key(cluster: &ClusterHandle, es: &serde_json::Value) -> String {
    let meta = |f: &str| {
        es.pointer(&format!("/metadata/{f}"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    format!("{}/{}/{}", cluster.name(), meta("namespace"), meta("name"))
}

/// Runs the plugin with `args` once the operators have settled, while a thread polls (every
/// millisecond) the request logs and the store's change stream of `clusters` and timestamps
/// each new request and each Elasticsearch phase change.
fn observe(clusters: &[ClusterHandle], kubeconfig: &Path, home: &Path, args: &[&str]) -> Timeline {
    for cluster in clusters {
        cluster.wait_idle(Duration::from_secs(60)).unwrap();
        cluster.clear_requests();
    }
    let mut phases: HashMap<String, String> = HashMap::new();
    for cluster in clusters {
        for es in cluster.list(&ResourceKey::ELASTICSEARCHES, None) {
            phases.insert(es_key(cluster, &es), phase(&es));
        }
    }
    let mut receivers: Vec<_> = clusters.iter().map(|c| c.subscribe()).collect();
    let done = AtomicBool::new(false);
    let start = Instant::now();
    let (output, wall, (request_times, restarts)) = std::thread::scope(|scope| {
        let poller = scope.spawn(|| {
            let mut seen = vec![0; clusters.len()];
            let mut request_times = Vec::new();
            let mut restarts: Vec<Restart> = Vec::new();
            loop {
                let last = done.load(Ordering::SeqCst);
                let now = start.elapsed();
                for (i, cluster) in clusters.iter().enumerate() {
                    let n = cluster.requests().len();
                    request_times.extend((seen[i]..n).map(|_| now));
                    seen[i] = seen[i].max(n);
                    let rx = &mut receivers[i];
                    loop {
                        let ev = match rx.try_recv() {
                            Ok(ev) => ev,
                            Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                            Err(TryRecvError::Lagged(n)) => {
                                panic!("the harness missed {n} store changes")
                            }
                        };
                        if ev.resource != ResourceKey::ELASTICSEARCHES {
                            continue;
                        }
                        let key = es_key(cluster, &ev.object);
                        let new = phase(&ev.object);
                        let old = phases.insert(key.clone(), new.clone()).unwrap_or_default();
                        if old != "ApplyingChanges" && new == "ApplyingChanges" {
                            restarts.push(Restart {
                                es: key,
                                started: Some(now),
                                ended: None,
                            });
                        } else if old == "ApplyingChanges" && new == "Ready" {
                            match restarts
                                .iter_mut()
                                .find(|r| r.es == key && r.ended.is_none())
                            {
                                Some(r) => r.ended = Some(now),
                                None => restarts.push(Restart {
                                    es: key,
                                    started: None,
                                    ended: Some(now),
                                }),
                            }
                        }
                    }
                }
                if last {
                    return (request_times, restarts);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let output = Command::new(PLUGIN)
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("HOME", home)
            .output()
            .unwrap();
        let wall = start.elapsed();
        done.store(true, Ordering::SeqCst);
        (output, wall, poller.join().unwrap())
    });
    check(args, &output);
    let requests = clusters.iter().flat_map(|c| c.requests()).collect();
    Timeline {
        wall,
        code: output.status.code().unwrap_or(-1),
        request_times,
        requests,
        restarts,
    }
}

/// Exit code 0, or 3 (changes made, but the link is not confirmed yet; `--wait=false`).
fn check(args: &[&str], output: &Output) {
    assert!(
        matches!(output.status.code(), Some(0 | 3)),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

impl Timeline {
    /// Ends of rolling restarts before the plugin exited, in order.
    fn ends(&self) -> Vec<(&str, Duration)> {
        let mut ends: Vec<_> = self
            .restarts
            .iter()
            .filter_map(|r| Some((r.es.as_str(), r.ended?)))
            .filter(|(_, end)| *end <= self.wall)
            .collect();
        ends.sort_by_key(|(_, end)| *end);
        ends
    }

    /// Whether some rolling restart is still running at `t`.
    fn rollout_running(&self, t: Duration) -> bool {
        self.restarts
            .iter()
            .any(|r| r.started.is_none_or(|s| s <= t) && r.ended.is_none_or(|e| e > t))
    }

    /// Time during which at least one rolling restart ran, within the command.
    fn rollout_time(&self) -> Duration {
        let mut spans: Vec<_> = self
            .restarts
            .iter()
            .map(|r| {
                (
                    r.started.unwrap_or(Duration::ZERO),
                    r.ended.unwrap_or(self.wall).min(self.wall),
                )
            })
            .collect();
        spans.sort();
        let mut total = Duration::ZERO;
        let mut reached = Duration::ZERO;
        for (from, to) in spans {
            let from = from.max(reached);
            if to > from {
                total += to - from;
                reached = to;
            }
        }
        total
    }

    /// For each rolling restart that ended while no other one was running: time from its end to
    /// the plugin's next Kubernetes API request, or to its exit when it made none.
    fn reactions(&self) -> Vec<(&str, Duration)> {
        self.ends()
            .into_iter()
            .filter(|(_, end)| !self.rollout_running(*end))
            .map(|(es, end)| {
                let next = self
                    .request_times
                    .iter()
                    .copied()
                    .find(|t| *t > end)
                    .unwrap_or(self.wall)
                    .min(self.wall);
                (es, next - end)
            })
            .collect()
    }
}

/// Cross-cluster API-key `link` and `unlink` with an operator taking 2000 ms per rolling
/// restart and no added latency: how late the plugin's waits notice each rollout's end.
fn operator_delay_section() {
    const DELAY: Duration = Duration::from_millis(2000);
    const ROUNDS: usize = 3;
    let sandbox = Sandbox::builder()
        .operator_delay(DELAY)
        .cluster(
            ClusterConfig::new("east")
                .elasticsearch(EsSeed::new("search", "catalog", "9.1.0").nodes(1))
                .elasticsearch(EsSeed::new("search", "products", "9.1.0").nodes(1)),
        )
        .cluster(
            ClusterConfig::new("west")
                .elasticsearch(EsSeed::new("shop", "orders", "9.1.0").nodes(1)),
        )
        .start()
        .expect("sandbox starts");
    let clusters = [sandbox.cluster("east"), sandbox.cluster("west")];
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sandbox.write_kubeconfig(&kubeconfig).unwrap();

    println!(
        "\n{} ms per simulated rolling restart, no added latency; API-key model across clusters; requests and port-forwards are the plugin's only\n",
        DELAY.as_millis()
    );
    println!(
        "| command | wall time | API requests | port-forwards | rolling restarts | time with a restart running | wall time outside restarts | reaction after each restart's end | exit after the last restart's end |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let link_args = [
        "--remote-context",
        "west",
        "--remote-namespace",
        "shop",
        "--security",
        "api-key",
        "--yes",
    ];
    let no_wait = [&link_args[..], &["--wait=false"]].concat();
    let runs = [
        ("`link --wait=false`", across("link", &no_wait)),
        (
            "`unlink --wait=false`",
            across("unlink", &["--yes", "--wait=false"]),
        ),
        ("`link` (waits)", across("link", &link_args)),
        ("`unlink` (waits)", across("unlink", &["--yes"])),
    ];
    let mut details = Vec::new();
    // The poll's phase against the rollout's end varies from run to run: three rounds.
    for (round, (name, args)) in (1..=ROUNDS).flat_map(|n| runs.iter().map(move |r| (n, r))) {
        let name = format!("{name}, round {round}");
        let t = observe(&clusters, &kubeconfig, dir.path(), args);
        let reactions = t.reactions();
        let shown = reactions
            .iter()
            .map(|(es, d)| format!("{es} {}", ms(*d)))
            .collect::<Vec<_>>()
            .join("; ");
        let tail = t
            .ends()
            .last()
            .map(|(_, end)| ms(t.wall - *end))
            .unwrap_or_else(|| "-".into());
        let rollout = t.rollout_time();
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {tail} |",
            ms(t.wall),
            t.requests.len(),
            port_forwards(&t.requests),
            t.restarts.len(),
            ms(rollout),
            ms(t.wall - rollout),
            if shown.is_empty() { "-".into() } else { shown },
        );
        let spans = t
            .restarts
            .iter()
            .map(|r| {
                let at = |d: Option<Duration>| d.map(ms).unwrap_or_else(|| "outside".into());
                format!("{} {} → {}", r.es, at(r.started), at(r.ended))
            })
            .collect::<Vec<_>>()
            .join("; ");
        details.push(format!(
            "- {name}: restarts {spans}; exit {} with code {}",
            ms(t.wall),
            t.code
        ));
    }
    println!();
    for line in details {
        println!("{line}");
    }
}
