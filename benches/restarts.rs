//! Benchmark: rolling restarts per Elasticsearch cluster caused by each command, per security
//! model: first link, second link from the same local, key change, unlink. A rolling restart
//! is counted from the pods the simulated operator replaces (each pod gets a new UID once per
//! rollout), so the figures follow ECK's rules (pods restart when their template changes), not
//! what the plugin announces.
//!
//! Run with `cargo bench --bench restarts`; `REMOTE_CLUSTER_PLUGIN=<binary>` measures another
//! build of the plugin (an older commit) against the same sandbox. Record the figures in
//! docs/benchmarks.md.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use remote_cluster_sandbox::elasticsearch::EsRequest;
use remote_cluster_sandbox::{ClusterConfig, EsSeed, ResourceKey, Sandbox, WatchEvent};
use serde_json::json;
use tokio::sync::broadcast;

#[path = "../tests/common/mod.rs"]
mod common;

const CLUSTER_NAME: &str = "elasticsearch.k8s.elastic.co/cluster-name";

struct Bench {
    sandbox: Sandbox,
    dir: tempfile::TempDir,
    plugin: String,
}

impl Bench {
    fn new(sandbox: Sandbox) -> Self {
        let dir = tempfile::tempdir().unwrap();
        sandbox
            .write_kubeconfig(&dir.path().join("kubeconfig"))
            .unwrap();
        let plugin = std::env::var("REMOTE_CLUSTER_PLUGIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_kubectl-remote_cluster").to_string());
        let bench = Self {
            sandbox,
            dir,
            plugin,
        };
        bench.settle();
        bench
    }

    fn settle(&self) {
        for cluster in self.sandbox.clusters() {
            cluster.wait_idle(Duration::from_secs(60)).unwrap();
        }
    }

    /// Pods per Elasticsearch (`context/namespace/name`).
    fn pods(&self) -> BTreeMap<String, usize> {
        let mut pods = BTreeMap::new();
        for cluster in self.sandbox.clusters() {
            for pod in cluster.list(&ResourceKey::PODS, None) {
                *pods.entry(owner(cluster.name(), &pod)).or_default() += 1;
            }
        }
        pods
    }

    /// Runs the plugin with `args` until the operators are idle again: the rolling restarts
    /// of each Elasticsearch, or why the command failed.
    fn restarts<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> String {
        let pods = self.pods();
        let mut receivers: Vec<(String, broadcast::Receiver<WatchEvent>)> = self
            .sandbox
            .clusters()
            .iter()
            .map(|c| (c.name().to_string(), c.subscribe()))
            .collect();
        let output = Command::new(&self.plugin)
            .args(args)
            .env_clear()
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .env("HOME", self.dir.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .output()
            .unwrap();
        self.settle();
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr.lines().last().unwrap_or_default().to_string();
            return format!("failed: {last}");
        }
        let mut replaced: BTreeMap<String, usize> = BTreeMap::new();
        for (context, rx) in &mut receivers {
            while let Ok(event) = rx.try_recv() {
                if event.event_type == "DELETED" && event.resource == ResourceKey::PODS {
                    *replaced.entry(owner(context, &event.object)).or_default() += 1;
                }
            }
        }
        let announced = announced(&String::from_utf8_lossy(&output.stderr));
        let shown: Vec<String> = pods
            .iter()
            .map(|(es, count)| {
                let rollouts = replaced.get(es).copied().unwrap_or(0).div_ceil(*count);
                let name = es.rsplit('/').next().unwrap_or_default();
                format!("{name} {rollouts}")
            })
            .collect();
        format!("{} | {}", shown.join(", "), announced.join(", "))
    }
}

/// The Elasticsearch names the plan shown on stderr marks `[restarts Elasticsearch nodes]`
/// (`N. <namespace>/<name> (context <context>): ...`), once each.
fn announced(stderr: &str) -> Vec<String> {
    let mut names: Vec<String> = stderr
        .lines()
        .filter(|l| l.ends_with("[restarts Elasticsearch nodes]"))
        .filter_map(|l| {
            let (_, rest) = l.split_once(". ")?;
            let (es, _) = rest.split_once(" (context ")?;
            Some(es.rsplit('/').next()?.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        names.push("none".to_string());
    }
    names
}

fn owner(context: &str, pod: &serde_json::Value) -> String {
    format!(
        "{context}/{}/{}",
        pod["metadata"]["namespace"].as_str().unwrap_or_default(),
        pod["metadata"]["labels"][CLUSTER_NAME]
            .as_str()
            .unwrap_or_default()
    )
}

fn sandbox(clusters: Vec<ClusterConfig>) -> Sandbox {
    clusters
        .into_iter()
        .fold(
            Sandbox::builder().operator_delay(Duration::from_millis(100)),
            |b, c| b.cluster(c),
        )
        .external_elasticsearch("cloud", "9.1.0")
        .start()
        .unwrap()
}

fn row(model: &str, operation: &str, restarts: String) {
    println!("| {model} | {operation} | {restarts} |");
}

fn same_operator() {
    let model = "same operator, API key";
    let bench = Bench::new(sandbox(vec![
        ClusterConfig::new("east")
            .elasticsearch(EsSeed::new("search", "catalog", "9.1.0").nodes(3))
            .elasticsearch(EsSeed::new("search", "products", "9.1.0").nodes(3))
            .elasticsearch(EsSeed::new("search", "orders", "9.1.0").nodes(3)),
    ]));
    let link = |remote: &str, extra: &[&str]| {
        owned(
            &[
                &["link", "catalog", remote, "-n", "search", "--yes"][..],
                extra,
            ]
            .concat(),
        )
    };
    row(model, "first link", bench.restarts(&link("products", &[])));
    row(model, "second link", bench.restarts(&link("orders", &[])));
    row(
        model,
        "key change (new access)",
        bench.restarts(&link("products", &["--search-indices", "logs-*"])),
    );
    row(
        model,
        "unlink",
        bench.restarts(&["unlink", "catalog", "products", "-n", "search", "--yes"]),
    );
    row(
        "same operator, certificate",
        "link next to the API-key link to orders",
        bench.restarts(&link("products", &["--security", "certificate"])),
    );
    bench
        .sandbox
        .cluster("east")
        .annotate_elasticsearch(
            "search",
            "catalog",
            "eck.k8s.alpha.elastic.co/propagate-annotations",
            "*",
        )
        .unwrap();
    bench.settle();
    row(
        "same operator, certificate, annotations propagated",
        "unlink",
        bench.restarts(&["unlink", "catalog", "products", "-n", "search", "--yes"]),
    );
}

/// Links from east/search/catalog to west/shop/products and orders, all running `version`;
/// with `file_based`, catalog has file-based secure settings.
fn across(model: &str, security: &[&str], version: &str, file_based: bool) {
    let bench = Bench::new(sandbox(vec![
        ClusterConfig::new("east")
            .elasticsearch(EsSeed::new("search", "catalog", version).nodes(3)),
        ClusterConfig::new("west")
            .elasticsearch(EsSeed::new("shop", "products", version).nodes(3))
            .elasticsearch(EsSeed::new("shop", "orders", version).nodes(3)),
    ]));
    if file_based {
        bench
            .sandbox
            .cluster("east")
            .annotate_elasticsearch(
                "search",
                "catalog",
                "eck.k8s.elastic.co/file-based-secure-settings",
                "true",
            )
            .unwrap();
        bench.settle();
    }
    let link = |remote: &str, extra: &[&str]| {
        owned(&common::east_to_west(
            "link",
            remote,
            &[&["--yes"][..], security, extra].concat(),
        ))
    };
    row(model, "first link", bench.restarts(&link("products", &[])));
    row(model, "second link", bench.restarts(&link("orders", &[])));
    if security.is_empty() {
        row(
            model,
            "key change (new access)",
            bench.restarts(&link("products", &["--search-indices", "logs-*"])),
        );
    }
    row(
        model,
        "unlink",
        bench.restarts(&[
            "unlink",
            "catalog",
            "products",
            "-n",
            "search",
            "--context",
            "east",
            "--yes",
        ]),
    );
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn external() {
    let model = "external, API key";
    let bench =
        Bench::new(sandbox(vec![ClusterConfig::new("east").elasticsearch(
            EsSeed::new("search", "catalog", "9.1.0").nodes(3),
        )]));
    let cloud = bench.sandbox.external("cloud");
    let dir = bench.dir.path();
    std::fs::write(dir.join("ca.pem"), &cloud.remote_cluster_ca_pem).unwrap();
    let new_key = |file: &str| {
        let response = bench.sandbox.external_request(
            "cloud",
            &EsRequest::new("POST", "/_security/cross_cluster/api_key")
                .basic("elastic", &cloud.password)
                .json(&json!({"name": file, "access": {"search": [{"names": ["*"]}]}})),
        );
        std::fs::write(
            dir.join(file),
            format!("{}\n", response.body["encoded"].as_str().unwrap()),
        )
        .unwrap();
    };
    let link = |key_file: &str| {
        vec![
            "link".to_string(),
            "catalog".into(),
            "-n".into(),
            "search".into(),
            "--external".into(),
            "cloud".into(),
            "--proxy-address".into(),
            cloud.remote_cluster_address.clone(),
            "--yes".into(),
            "--ca-file".into(),
            path(&dir.join("ca.pem")).into(),
            "--api-key-file".into(),
            path(&dir.join(key_file)).into(),
        ]
    };
    new_key("first");
    row(model, "first link", bench.restarts(&link("first")));
    new_key("second");
    row(
        model,
        "key change (new key file)",
        bench.restarts(&link("second")),
    );
    row(
        model,
        "unlink",
        bench.restarts(&["unlink", "catalog", "cloud", "-n", "search", "--yes"]),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter is not supported.
    println!("| model | operation | rolling restarts per cluster | announced by the plan |");
    println!("|---|---|---|---|");
    same_operator();
    across("across clusters, API key", &[], "9.1.0", false);
    across(
        "across clusters, API key, file-based secure settings (9.5)",
        &[],
        "9.5.0",
        true,
    );
    across(
        "across clusters, certificate",
        &["--security", "certificate"],
        "9.1.0",
        false,
    );
    external();
}
