//! Shared set-up for the integration tests: a sandbox, its kubeconfig, and the plugin binary
//! run with a scrubbed environment.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;
use remote_cluster_sandbox::{
    ClusterConfig, ClusterHandle, EsSeed, ResourceKey, Sandbox, SandboxBuilder,
};
use serde_json::Value;
use tempfile::TempDir;

pub const BIN: &str = "kubectl-remote_cluster";

/// The objects of some clusters, as [`World::snapshot`] takes them.
pub type Snapshot = Vec<(String, Value)>;

/// A one-node Elasticsearch 9.1.0 `namespace/name`, the seed most tests need.
pub fn es(namespace: &str, name: &str) -> EsSeed {
    EsSeed::new(namespace, name, "9.1.0").nodes(1)
}

/// A sandbox whose simulated operator takes 50 ms a rollout, with one Kubernetes cluster (and
/// context) `east` that runs the Elasticsearch `seeds`.
pub fn east(seeds: impl IntoIterator<Item = EsSeed>) -> SandboxBuilder {
    Sandbox::builder()
        .operator_delay(Duration::from_millis(50))
        .cluster(cluster("east", seeds))
}

/// [`east`] running `east`, and a second cluster `west` running `west`: the two Kubernetes
/// clusters of a link across environments.
pub fn east_and_west(
    east: impl IntoIterator<Item = EsSeed>,
    west: impl IntoIterator<Item = EsSeed>,
) -> SandboxBuilder {
    self::east(east).cluster(cluster("west", west))
}

fn cluster(name: &str, seeds: impl IntoIterator<Item = EsSeed>) -> ClusterConfig {
    seeds
        .into_iter()
        .fold(ClusterConfig::new(name), ClusterConfig::elasticsearch)
}

/// `command`, then the arguments that name both sides of a link within one Kubernetes cluster
/// (`search/catalog` and `search/products` of the current context), then `extra`.
pub fn catalog_products<'a>(command: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    [&[command, "catalog", "products", "-n", "search"][..], extra].concat()
}

/// `command` (`export` or `unexport`) of `search/products` for the remote-cluster alias `alias`,
/// confirmed, then `extra`.
pub fn products_for<'a>(command: &'a str, alias: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    [
        &[command, "products", "-n", "search", "--for", alias, "--yes"][..],
        extra,
    ]
    .concat()
}

/// `command`, then the arguments that name both sides of a link across Kubernetes clusters
/// (`search/catalog` of context `east`, `shop/<remote>` of context `west`), then `extra`.
pub fn east_to_west<'a>(command: &'a str, remote: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    east_to_west_in(command, remote, "shop", extra)
}

/// [`east_to_west`] with the remote in `namespace` of context `west`.
pub fn east_to_west_in<'a>(
    command: &'a str,
    remote: &'a str,
    namespace: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let sides = [
        "catalog",
        remote,
        "-n",
        "search",
        "--context",
        "east",
        "--remote-context",
        "west",
        "--remote-namespace",
        namespace,
    ];
    [&[command][..], &sides, extra].concat()
}

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

    /// [`World::start`], then waits until the simulated operator of every cluster is idle.
    pub fn settled(builder: SandboxBuilder) -> World {
        let world = World::start(builder);
        for cluster in world.sandbox.clusters() {
            cluster.wait_idle(Duration::from_secs(30)).unwrap();
        }
        world
    }

    /// The plugin, pointed at this world's kubeconfig through `KUBECONFIG`.
    pub fn plugin(&self) -> Command {
        let mut cmd = plugin(self.dir.path());
        cmd.env("KUBECONFIG", &self.kubeconfig);
        cmd
    }

    /// Runs the plugin with `args` and requires exit code `code`, showing stderr if not.
    pub fn run<I, S>(&self, code: i32, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let output = self.plugin().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(code), "{}", stderr_of(&output));
        output
    }

    /// Runs the plugin with `args` and requires success (exit code 0), showing stderr if not.
    pub fn ok<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run(0, args)
    }

    /// Runs the plugin with `args` and requires it refused (see [`assert_refused`]) before a
    /// write to any cluster of the sandbox (access reviews are questions, not writes).
    pub fn refused<I, S>(&self, args: I, message: &str) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let clusters = self.sandbox.clusters();
        let writes = || clusters.iter().map(plugin_writes).collect::<Vec<_>>();
        let before = writes();
        let output = self.plugin().args(args).output().unwrap();
        assert_refused(&output, message);
        assert_eq!(
            writes(),
            before,
            "writes while refusing: {}",
            stderr_of(&output)
        );
        output
    }

    /// Runs the plugin successfully and parses its stdout as the JSON document asked for.
    pub fn json<I, S>(&self, args: I) -> Value
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
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
    pub fn snapshot(&self, clusters: &[&str]) -> Snapshot {
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

    /// The plugin's cross-cluster API keys on Elasticsearch `namespace/name` of `cluster` that
    /// are still active.
    pub fn active_plugin_keys(&self, cluster: &str, namespace: &str, name: &str) -> usize {
        api_keys(
            &self.sandbox.cluster(cluster),
            namespace,
            name,
            "kubectl-rc-",
        )
        .iter()
        .filter(|(_, invalidated)| !invalidated)
        .count()
    }

    /// Settles the clusters and requires their objects to be those of `before`.
    pub fn assert_unchanged(&self, clusters: &[&str], before: &[(String, Value)]) {
        self.settle(clusters);
        assert_same_objects(before, &self.snapshot(clusters));
    }

    /// Runs `args` a second time, which must succeed, say `message` on stderr and send not a
    /// single write (nor an access review) to `clusters`.
    pub fn again<I, S>(&self, clusters: &[&str], args: I, message: &str) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.clear_requests(clusters);
        let output = self.ok(args);
        let stderr = stderr_of(&output);
        assert!(stderr.contains(message), "{stderr}");
        assert_eq!(
            self.write_count(clusters),
            0,
            "a second run writes nothing: {stderr}"
        );
        output
    }

    /// The Elasticsearch resource `namespace/name` of `cluster`.
    pub fn elasticsearch(&self, cluster: &str, namespace: &str, name: &str) -> Value {
        self.sandbox
            .cluster(cluster)
            .get(&ResourceKey::ELASTICSEARCHES, Some(namespace), name)
            .unwrap_or_else(|| panic!("{cluster}/{namespace}/{name} exists"))
    }

    /// [`plugin_writes`] across the clusters.
    pub fn plugin_writes(&self, clusters: &[&str]) -> usize {
        clusters
            .iter()
            .map(|c| plugin_writes(&self.sandbox.cluster(c)))
            .sum()
    }

    pub fn clear_requests(&self, clusters: &[&str]) {
        for cluster in clusters {
            self.sandbox.cluster(cluster).clear_requests();
        }
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

pub fn stdout_of(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub fn stderr_of(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// `secret` is in neither stdout nor stderr of any of `outputs`.
pub fn assert_not_shown(secret: &str, outputs: &[&Output]) {
    assert!(
        !secret.trim().is_empty(),
        "the test knows the secret it looks for"
    );
    for output in outputs {
        let text = format!("{}{}", stdout_of(output), stderr_of(output));
        assert!(!text.contains(secret), "a secret reached the output");
    }
}

/// A refusal: exit code 2, nothing on stdout, one `error:` line on stderr and `message` there.
pub fn assert_refused(output: &Output, message: &str) {
    let stderr = stderr_of(output);
    assert_eq!(output.status.code(), Some(2), "{message}: {stderr}");
    assert_eq!(stdout_of(output), "", "{message}: nothing on stdout");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{message}: one error line: {stderr}"
    );
    assert!(stderr.contains(message), "{message}: {stderr}");
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

/// Every subcommand a user can run, `man` included.
pub const COMMANDS: [&str; 10] = [
    "list",
    "link",
    "trust",
    "export",
    "unexport",
    "unlink",
    "describe",
    "version",
    "completion",
    "man",
];
