//! `remote-cluster-sandbox`: starts fake clusters, writes their kubeconfig, prints `ready`,
//! runs until SIGINT/SIGTERM; or, with `--shell`, runs a shell pointed at them and stops with it.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use remote_cluster_sandbox::{ClusterConfig, ContextConfig, EsSeed, Rule, Sandbox, scenarios};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Two clusters with a few Elasticsearch objects, an extra context and a restricted user.
    Demo,
    /// Clusters with the ECK CRD and no Elasticsearch.
    Empty,
    /// `--es-per-cluster` Elasticsearch objects per cluster across 5 namespaces.
    Bench,
    /// Links in namespace `shop` each broken for one reason, for `kubectl remote-cluster check`.
    Broken,
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
    /// Where to write the kubeconfig for the fake clusters (with --shell: a new temporary
    /// directory unless given).
    #[arg(long, required_unless_present = "shell")]
    kubeconfig: Option<PathBuf>,
    /// Run $SHELL (else /bin/sh) with KUBECONFIG set and the plugin's directory first on PATH;
    /// stop the clusters when it exits, and exit with its exit code. Without a terminal the
    /// shell reads its commands from stdin.
    #[arg(long)]
    shell: bool,
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
            Scenario::Broken => c = scenarios::broken_cluster(i, c),
        }
        b = b.cluster(c);
    }
    let sandbox = b.start()?;
    if args.scenario == Scenario::Broken {
        scenarios::break_links(&sandbox)?;
    }
    Ok(sandbox)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<ExitCode> {
    let args = Args::parse();
    let sandbox = build(&args)?;
    // With --shell and no --kubeconfig: a private directory, removed when the shell exits.
    let temp = match (&args.kubeconfig, args.shell) {
        (None, true) => Some(TempDir::new()?),
        _ => None,
    };
    let kubeconfig = match (&args.kubeconfig, &temp) {
        (Some(path), _) => path.clone(),
        (None, Some(dir)) => dir.path().join("kubeconfig"),
        (None, None) => unreachable!("clap requires --kubeconfig without --shell"),
    };
    sandbox.write_kubeconfig(&kubeconfig)?;
    for c in sandbox.clusters() {
        eprintln!("cluster {} at {}", c.name(), c.url());
    }
    eprintln!("kubeconfig written to {}", kubeconfig.display());
    if args.shell {
        let code = run_shell(&kubeconfig, args.scenario).await;
        eprintln!("stopping");
        sandbox.stop();
        drop(temp);
        return code;
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready")?;
        out.flush()?;
    }
    wait_for_signal().await?;
    eprintln!("stopping");
    sandbox.stop();
    Ok(ExitCode::SUCCESS)
}

/// A directory under the system's temporary directory, only for this user, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let path = std::env::temp_dir().join(format!(
            "remote-cluster-sandbox-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&path)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
        Ok(TempDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The plugin's executable name, as cargo builds it next to this one.
const PLUGIN: &str = "kubectl-remote_cluster";

/// Runs `$SHELL` (else `/bin/sh`) on the inherited stdin, stdout and stderr, with `KUBECONFIG`
/// and the directory of this executable (where cargo also puts the plugin) first on `PATH`;
/// returns its exit code (128 + the signal when a signal ended it).
async fn run_shell(kubeconfig: &Path, scenario: Scenario) -> Result<ExitCode> {
    let exe = std::env::current_exe()?;
    let bin_dir = exe
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no directory for {}", exe.display()))?;
    let plugin = bin_dir.join(format!("{PLUGIN}{}", std::env::consts::EXE_SUFFIX));
    if !plugin.is_file() {
        eprintln!(
            "warning: {PLUGIN} is not in {}, so `kubectl remote-cluster` will not find it; \
             build it with `cargo build --bin {PLUGIN}` (or `cargo build --workspace`)",
            bin_dir.display()
        );
    }
    let mut path = vec![bin_dir.to_path_buf()];
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let path = std::env::join_paths(path)?;
    let shell = std::env::var_os("SHELL")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| OsString::from("/bin/sh"));

    eprintln!("try (exit the shell to stop the clusters):");
    if scenario == Scenario::Demo {
        eprintln!("  kubectl remote-cluster list --all-contexts");
        eprintln!("  kubectl remote-cluster describe reports -n analytics --context kind-west");
        eprintln!("  kubectl remote-cluster link products catalog -n search --dry-run=client");
    } else if scenario == Scenario::Broken {
        eprintln!("  kubectl remote-cluster check -n shop");
        eprintln!("  kubectl remote-cluster check hub nowhere -n shop -o yaml");
        eprintln!("  kubectl remote-cluster check -n shop --all-contexts --junit check.xml");
    } else {
        eprintln!("  kubectl remote-cluster list --all-contexts");
    }

    // Ctrl-C belongs to the shell: the sandbox keeps running until the shell exits.
    #[cfg(unix)]
    let mut stop = StopSignals::new()?;
    let mut child = std::process::Command::new(&shell)
        .env("KUBECONFIG", kubeconfig)
        .env("PATH", &path)
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", Path::new(&shell).display()))?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        #[cfg(unix)]
        let stopped = stop.poll(Duration::from_millis(50)).await;
        #[cfg(not(unix))]
        let stopped = {
            tokio::time::sleep(Duration::from_millis(50)).await;
            false
        };
        if stopped {
            eprintln!("stopping the shell");
            let _ = child.kill();
            break child.wait()?;
        }
    };
    let code = status.code().unwrap_or_else(|| {
        #[cfg(unix)]
        {
            128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
        }
        #[cfg(not(unix))]
        {
            1
        }
    });
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// SIGTERM and SIGHUP end the shell (and then the sandbox); SIGINT is ignored, it is for the
/// shell's commands.
#[cfg(unix)]
struct StopSignals {
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl StopSignals {
    fn new() -> Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits up to `wait`; true when a stop signal came.
    async fn poll(&mut self, wait: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(wait) => false,
            _ = self.term.recv() => true,
            _ = self.hup.recv() => true,
            _ = self.int.recv() => false,
        }
    }
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
