//! Benchmark: round trips and wall time of `link`, a repeated `link`, `describe` and `unlink`,
//! within one Kubernetes cluster and across two, and of a certificate-model `export` to a
//! deployment on Elastic Cloud Hosted (restricted trust), each API server answering every
//! request 50 ms late. The simulated operator takes 100 ms per rolling restart.
//!
//! Run with `cargo bench --bench link_and_describe`; record the figures in docs/benchmarks.md.

use std::process::Command;
use std::time::{Duration, Instant};

use remote_cluster_sandbox::{ClusterConfig, EsSeed, Sandbox};

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

fn main() {
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
    println!("| command | wall time | API requests | writes | access reviews |");
    println!("|---|---|---|---|---|");
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
            "| {name} | {:.0} ms | {} | {writes} | {reviews} |",
            wall.as_secs_f64() * 1000.0,
            requests.len()
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
