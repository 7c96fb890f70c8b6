//! Benchmark: round trips and wall time of `link --wait=false`, a repeated `link`, `describe`
//! and `unlink --wait=false` against one sandbox cluster answering every request 50 ms late.
//!
//! Run with `cargo bench --bench link_and_describe`; record the figures in docs/benchmarks.md.

use std::process::Command;
use std::time::{Duration, Instant};

use remote_cluster_sandbox::{ClusterConfig, EsSeed, Sandbox};

const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-remote_cluster");
const LATENCY: Duration = Duration::from_millis(50);

fn main() {
    let sandbox = Sandbox::builder()
        .operator_delay(Duration::from_millis(100))
        .cluster(
            ClusterConfig::new("east")
                .latency(LATENCY)
                .elasticsearch(EsSeed::new("search", "catalog", "9.1.0").nodes(1))
                .elasticsearch(EsSeed::new("search", "products", "9.1.0").nodes(1)),
        )
        .start()
        .expect("sandbox starts");
    let east = sandbox.cluster("east");
    east.wait_idle(Duration::from_secs(30)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sandbox.write_kubeconfig(&kubeconfig).unwrap();

    let run = |args: &[&str]| {
        east.clear_requests();
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
        let requests = east.requests();
        let writes = requests.iter().filter(|r| r.method != "GET").count();
        (wall, requests.len(), writes)
    };

    println!(
        "One cluster, {} ms added latency per API request; the plugin's requests only\n",
        LATENCY.as_millis()
    );
    println!("| command | wall time | API requests | of which writes |");
    println!("|---|---|---|---|");
    let row = |name: &str, args: &[&str]| {
        let (wall, requests, writes) = run(args);
        println!(
            "| {name} | {:.0} ms | {requests} | {writes} |",
            wall.as_secs_f64() * 1000.0
        );
    };
    row(
        "`link catalog products --yes --wait=false`",
        &[
            "link",
            "catalog",
            "products",
            "-n",
            "search",
            "--yes",
            "--wait=false",
        ],
    );
    east.wait_idle(Duration::from_secs(30)).unwrap();
    row(
        "`link` again (nothing to do)",
        &[
            "link",
            "catalog",
            "products",
            "-n",
            "search",
            "--yes",
            "--wait=false",
        ],
    );
    row(
        "`describe catalog`",
        &["describe", "catalog", "-n", "search"],
    );
    row(
        "`unlink catalog products --yes --wait=false`",
        &[
            "unlink",
            "catalog",
            "products",
            "-n",
            "search",
            "--yes",
            "--wait=false",
        ],
    );
}
