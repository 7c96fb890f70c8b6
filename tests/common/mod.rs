//! Shared set-up for the integration tests: a sandbox, its kubeconfig, and the plugin binary
//! run with a scrubbed environment.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use std::time::Duration;

use assert_cmd::Command;
use remote_cluster_sandbox::{ClusterHandle, ResourceKey, Sandbox, SandboxBuilder};
use serde_json::Value;
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

    /// Runs the plugin with `args` and requires success (exit code 0), showing stderr if not.
    pub fn ok<I, S>(&self, args: I) -> std::process::Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let output = self.plugin().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
        output
    }

    /// Runs the plugin successfully and parses its stdout as the JSON document asked for.
    pub fn json<I, S>(&self, args: I) -> Value
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        serde_json::from_slice(&self.ok(args).stdout).unwrap()
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

    /// Waits until the simulated operator of every cluster has nothing left to do.
    pub fn settle(&self, clusters: &[&str]) {
        for cluster in clusters {
            self.sandbox
                .cluster(cluster)
                .wait_idle(Duration::from_secs(30))
                .unwrap();
        }
    }

    /// Every object of the clusters that a link may touch, without what the servers and the
    /// operator maintain on their own (versions, status, ECK's CA copies and annotation).
    pub fn snapshot(&self, clusters: &[&str]) -> Vec<(String, Value)> {
        let mut objects = Vec::new();
        for cluster in clusters {
            let handle = self.sandbox.cluster(cluster);
            for resource in [
                ResourceKey::ELASTICSEARCHES,
                ResourceKey::SECRETS,
                ResourceKey::CONFIGMAPS,
                ResourceKey::SERVICES,
            ] {
                for mut object in handle.list(&resource, None) {
                    let name = format!(
                        "{cluster}/{}/{}/{}",
                        resource.plural,
                        object["metadata"]["namespace"].as_str().unwrap_or_default(),
                        object["metadata"]["name"].as_str().unwrap_or_default()
                    );
                    // Objects the operator maintains change on their own (status, CA copies).
                    if name.contains("elastic-licensing")
                        || object["metadata"]["labels"]["common.k8s.elastic.co/type"] == "remote-ca"
                    {
                        continue;
                    }
                    let metadata = object["metadata"].as_object_mut().unwrap();
                    for key in [
                        "resourceVersion",
                        "generation",
                        "managedFields",
                        "uid",
                        "creationTimestamp",
                    ] {
                        metadata.remove(key);
                    }
                    if let Some(annotations) = metadata
                        .get_mut("annotations")
                        .and_then(Value::as_object_mut)
                    {
                        annotations.remove("elasticsearch.k8s.elastic.co/managed-remote-clusters");
                        if annotations.is_empty() {
                            metadata.remove("annotations");
                        }
                    }
                    object.as_object_mut().unwrap().remove("status");
                    objects.push((name, object));
                }
            }
        }
        objects.sort_by(|a, b| a.0.cmp(&b.0));
        objects
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

/// Two snapshots hold the same objects with the same content; the differences are named.
pub fn assert_same_objects(before: &[(String, Value)], after: &[(String, Value)]) {
    let names =
        |objects: &[(String, Value)]| objects.iter().map(|o| o.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(before), names(after), "objects left or missing");
    let differences: Vec<String> = before
        .iter()
        .zip(after)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("{}:\n  before {}\n  after  {}", a.0, a.1, b.1))
        .collect();
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// Writes the plugin sent, leaving out SelfSubjectAccessReviews (questions, not changes).
pub fn plugin_writes(cluster: &ClusterHandle) -> usize {
    cluster
        .requests()
        .iter()
        .filter(|r| r.is_write() && !r.path.ends_with("selfsubjectaccessreviews"))
        .count()
}

/// Cross-cluster API keys named with `prefix` on an Elasticsearch: (id, invalidated).
pub fn api_keys(
    cluster: &ClusterHandle,
    namespace: &str,
    name: &str,
    prefix: &str,
) -> Vec<(String, bool)> {
    cluster
        .es_node(namespace, name, |node| {
            node.api_keys()
                .iter()
                .filter(|k| k.name.starts_with(prefix))
                .map(|k| (k.id.clone(), k.invalidated))
                .collect()
        })
        .unwrap_or_default()
}
