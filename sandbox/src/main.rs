//! `remote-cluster-sandbox`: starts fake clusters, writes their kubeconfig, prints `ready`,
//! runs until SIGINT/SIGTERM.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use remote_cluster_sandbox::{ClusterConfig, ContextConfig, EsSeed, Rule, Sandbox};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Two clusters with a few Elasticsearch objects, an extra context and a restricted user.
    Demo,
    /// Clusters with the ECK CRD and no Elasticsearch.
    Empty,
    /// `--es-per-cluster` Elasticsearch objects per cluster across 5 namespaces.
    Bench,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum License {
    Enterprise,
    Basic,
}

/// Fake Kubernetes clusters with ECK's Elasticsearch resource, for trying and testing
/// `kubectl remote-cluster`.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where to write the kubeconfig for the fake clusters.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Number of clusters (2 are named kind-east and kind-west; more are cluster-01, ...).
    #[arg(long, default_value_t = 2)]
    clusters: usize,
    #[arg(long, value_enum, default_value_t = Scenario::Demo)]
    scenario: Scenario,
    /// Latency added to every API request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// How long a rolling restart takes for the fake ECK operator, in milliseconds.
    #[arg(long, default_value_t = 0)]
    operator_delay_ms: u64,
    /// ECK operator licence level; `basic` disables the remote-cluster automation.
    #[arg(long, value_enum, default_value_t = License::Enterprise)]
    license: License,
    /// Write one JSON line per request to DIR/<cluster>.jsonl.
    #[arg(long, value_name = "DIR")]
    request_log: Option<PathBuf>,
    /// Elasticsearch objects per cluster in the bench scenario.
    #[arg(long, default_value_t = 50)]
    es_per_cluster: usize,
}

/// Cluster names: `kind-east`, `kind-west` for up to two, `cluster-01`... beyond.
fn cluster_names(n: usize) -> Vec<String> {
    match n {
        0 => vec![],
        1 => vec!["kind-east".into()],
        2 => vec!["kind-east".into(), "kind-west".into()],
        _ => (1..=n).map(|i| format!("cluster-{i:02}")).collect(),
    }
}

const ES: &str = "elasticsearch.k8s.elastic.co";

fn build(args: &Args) -> Result<Sandbox> {
    anyhow::ensure!(args.clusters >= 1, "--clusters must be at least 1");
    let names = cluster_names(args.clusters);
    let latency = Duration::from_millis(args.latency_ms);
    let mut b = Sandbox::builder()
        .operator_delay(Duration::from_millis(args.operator_delay_ms))
        .license(match args.license {
            License::Enterprise => "enterprise",
            License::Basic => "basic",
        });
    if let Some(dir) = &args.request_log {
        b = b.request_log_dir(dir);
    }
    for (i, name) in names.iter().enumerate() {
        let mut c = ClusterConfig::new(name).latency(latency);
        match args.scenario {
            Scenario::Empty => {}
            Scenario::Bench => {
                for j in 0..args.es_per_cluster {
                    let ns = format!("bench-{}", j % 5);
                    let version = if j % 2 == 0 { "9.1.3" } else { "8.19.4" };
                    c = c.elasticsearch(
                        EsSeed::new(&ns, &format!("es-{j:04}"), version)
                            .nodes(1 + (j % 3) as u32)
                            .remote_cluster_server(j % 2 == 0),
                    );
                }
            }
            Scenario::Demo if i == 0 => {
                c = c
                    .elasticsearch(
                        EsSeed::new("search", "products", "9.1.3").remote_cluster_server(true),
                    )
                    .elasticsearch(
                        EsSeed::new("search", "catalog", "8.19.4")
                            .nodes(1)
                            .remote_cluster_server(true),
                    )
                    .elasticsearch(
                        EsSeed::new("logging", "logs", "8.17.0")
                            .nodes(2)
                            .health("yellow"),
                    )
                    .user(
                        "viewer",
                        vec![Rule::read_only_in("search", ES, "elasticsearches")],
                    );
                b = b
                    .context(
                        ContextConfig::new(&format!("{name}-search"), name, "admin")
                            .namespace("search"),
                    )
                    .context(
                        ContextConfig::new(&format!("{name}-viewer"), name, "viewer")
                            .namespace("search"),
                    );
            }
            Scenario::Demo if i == 1 => {
                c = c
                    .elasticsearch(
                        EsSeed::new("analytics", "metrics", "9.1.3").remote_cluster_server(true),
                    )
                    .elasticsearch(EsSeed::new("analytics", "reports", "9.1.3").remote_cluster(
                        "metrics",
                        "analytics",
                        "metrics",
                        true,
                    ))
                    .elasticsearch(EsSeed::new("ml", "archive", "8.18.2").nodes(1));
            }
            Scenario::Demo => {}
        }
        b = b.cluster(c);
    }
    b.start()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let sandbox = build(&args)?;
    sandbox.write_kubeconfig(&args.kubeconfig)?;
    for c in sandbox.clusters() {
        eprintln!("cluster {} at {}", c.name(), c.url());
    }
    eprintln!("kubeconfig written to {}", args.kubeconfig.display());
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready")?;
        out.flush()?;
    }
    wait_for_signal().await?;
    eprintln!("stopping");
    sandbox.stop();
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> Result<()> {
    tokio::signal::ctrl_c().await?;
    Ok(())
}
