//! Shared set-up for the integration tests: a sandbox, its kubeconfig, and the plugin binary
//! run with a scrubbed environment.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use remote_cluster_sandbox::{Sandbox, SandboxBuilder};
use tempfile::TempDir;

pub const BIN: &str = "kubectl-remote_cluster";

/// A running sandbox with its kubeconfig written to a temporary directory.
pub struct World {
    pub sandbox: Sandbox,
    pub dir: TempDir,
    pub kubeconfig: PathBuf,
}

impl World {
    pub fn start(builder: SandboxBuilder) -> World {
        let sandbox = builder.start().expect("sandbox starts");
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        sandbox.write_kubeconfig(&kubeconfig).unwrap();
        World {
            sandbox,
            dir,
            kubeconfig,
        }
    }

    /// The plugin, pointed at this world's kubeconfig through `KUBECONFIG`.
    pub fn plugin(&self) -> Command {
        let mut cmd = plugin(self.dir.path());
        cmd.env("KUBECONFIG", &self.kubeconfig);
        cmd
    }

    /// Requests that changed something, across every cluster.
    pub fn write_count(&self, clusters: &[&str]) -> usize {
        clusters
            .iter()
            .map(|c| {
                self.sandbox
                    .cluster(c)
                    .requests()
                    .iter()
                    .filter(|r| r.method != "GET")
                    .count()
            })
            .sum()
    }

    pub fn request_count(&self, cluster: &str) -> usize {
        self.sandbox.cluster(cluster).requests().len()
    }
}

/// The plugin binary with an environment that cannot leak the developer's own kubeconfig or
/// colour settings into a test.
pub fn plugin(home: &Path) -> Command {
    let mut cmd = Command::cargo_bin(BIN).unwrap();
    cmd.env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .timeout(std::time::Duration::from_secs(60));
    cmd
}

pub fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// The rows of a table output, split on runs of spaces.
pub fn table_rows(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .map(|line| line.split_whitespace().map(str::to_string).collect())
        .collect()
}
