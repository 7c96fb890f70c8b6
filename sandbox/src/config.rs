//! What a test or the binary asks the sandbox for: clusters, users and their RBAC rules,
//! kubeconfig contexts, seeded Elasticsearch objects, faults.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::schema::{EckFeatures, LATEST_ECK_VERSION};

/// One fake Kubernetes cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub(crate) name: String,
    /// `None`: ECK (its CRD) is not installed.
    pub(crate) eck_version: Option<String>,
    pub(crate) latency: Duration,
    pub(crate) users: Vec<(String, Vec<Rule>)>,
    pub(crate) elasticsearches: Vec<EsSeed>,
    pub(crate) namespaces: Vec<String>,
    pub(crate) watch_history: usize,
    pub(crate) webhook: bool,
    /// The ECK licence level of this cluster's operator, over the sandbox's.
    pub(crate) license: Option<String>,
}

/// Default number of past changes a cluster keeps for watches that resume from a
/// resourceVersion ([`ClusterConfig::watch_history`]).
pub const DEFAULT_WATCH_HISTORY: usize = 4096;

impl ClusterConfig {
    pub fn new(name: &str) -> ClusterConfig {
        ClusterConfig {
            name: name.to_string(),
            eck_version: Some(LATEST_ECK_VERSION.to_string()),
            latency: Duration::ZERO,
            users: Vec::new(),
            elasticsearches: Vec::new(),
            namespaces: Vec::new(),
            watch_history: DEFAULT_WATCH_HISTORY,
            webhook: true,
            license: None,
        }
    }

    /// ECK installed without its validating webhook (a supported setup): the API server
    /// accepts what the webhook would refuse, and ECK's controller marks such a resource with
    /// phase `Invalid` and a Warning event `Validation` instead.
    pub fn without_webhook(mut self) -> Self {
        self.webhook = false;
        self
    }

    /// The ECK licence level of this cluster's operator (default: the sandbox's, see
    /// [`crate::SandboxBuilder::license`]).
    pub fn license(mut self, level: &str) -> Self {
        self.license = Some(level.to_string());
        self
    }

    /// How many past changes (of all types together) the cluster keeps for watches that
    /// resume from a resourceVersion; older ones get `410 Expired` (the real server's watch
    /// cache and etcd compaction). At least 1. Default [`DEFAULT_WATCH_HISTORY`].
    pub fn watch_history(mut self, events: usize) -> Self {
        self.watch_history = events.max(1);
        self
    }

    /// No ECK CRD: the `elasticsearch.k8s.elastic.co` group is absent from discovery and its
    /// URLs answer 404 like any unknown group.
    pub fn without_eck(mut self) -> Self {
        self.eck_version = None;
        self
    }

    /// Pretend the installed ECK CRD is the one of this ECK version (fields newer than it are
    /// missing from the schema, hence pruned). Default: [`LATEST_ECK_VERSION`].
    pub fn eck_version(mut self, version: &str) -> Self {
        self.eck_version = Some(version.to_string());
        self
    }

    /// Added to every request this cluster's API server answers.
    pub fn latency(mut self, d: Duration) -> Self {
        self.latency = d;
        self
    }

    /// An RBAC user (client certificate CN = `name`) with these rules. Every cluster also has
    /// the user `admin` (group `system:masters`) with all rights.
    pub fn user(mut self, name: &str, rules: Vec<Rule>) -> Self {
        self.users.push((name.to_string(), rules));
        self
    }

    /// A pre-created Elasticsearch object (its namespace is created too).
    pub fn elasticsearch(mut self, es: EsSeed) -> Self {
        self.elasticsearches.push(es);
        self
    }

    /// An extra namespace (besides `default`, `kube-system`, `kube-public`, `kube-node-lease`).
    pub fn namespace(mut self, ns: &str) -> Self {
        self.namespaces.push(ns.to_string());
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn eck_features(&self) -> Option<EckFeatures> {
        self.eck_version.as_deref().map(EckFeatures::for_version)
    }
}

/// An extra kubeconfig context. `cluster` is a sandbox cluster name (or a dead context name);
/// `user` is an RBAC user of that cluster (`admin` or one declared with
/// [`ClusterConfig::user`]); the kubeconfig user entry is named `<cluster>-<user>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextConfig {
    pub name: String,
    pub cluster: String,
    pub user: String,
    pub namespace: Option<String>,
}

impl ContextConfig {
    pub fn new(name: &str, cluster: &str, user: &str) -> ContextConfig {
        ContextConfig {
            name: name.into(),
            cluster: cluster.into(),
            user: user.into(),
            namespace: None,
        }
    }

    pub fn namespace(mut self, ns: &str) -> Self {
        self.namespace = Some(ns.into());
        self
    }
}

/// One RBAC rule (a `PolicyRule` bound to the user). `namespaces: None` = bound by a
/// ClusterRoleBinding (cluster-wide); `Some(list)` = bound by a RoleBinding in each namespace.
/// `"*"` is a wildcard in verbs, groups and resources, as in real RBAC. A resource may name a
/// subresource (`elasticsearches/status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub namespaces: Option<Vec<String>>,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

const READ: &[&str] = &["get", "list", "watch"];

impl Rule {
    /// A cluster-wide rule.
    pub fn new(verbs: &[&str], api_groups: &[&str], resources: &[&str]) -> Rule {
        Rule {
            verbs: strings(verbs),
            api_groups: strings(api_groups),
            resources: strings(resources),
            namespaces: None,
        }
    }

    /// Restricts the rule to these namespaces (RoleBindings).
    pub fn in_namespaces(mut self, namespaces: &[&str]) -> Rule {
        self.namespaces = Some(strings(namespaces));
        self
    }

    /// get/list/watch on `group`/`resource` in namespace `ns` only.
    pub fn read_only_in(ns: &str, group: &str, resource: &str) -> Rule {
        Rule::new(READ, &[group], &[resource]).in_namespaces(&[ns])
    }

    /// get/list/watch on `group`/`resource` everywhere.
    pub fn read_only(group: &str, resource: &str) -> Rule {
        Rule::new(READ, &[group], &[resource])
    }

    /// Whether this rule grants `verb` on `group`/`resource` (with `/subresource`) for a request
    /// in `namespace` (`None` = cluster scope). Same semantics as
    /// `k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac` `RuleAllows`.
    pub fn allows(&self, verb: &str, group: &str, resource: &str, namespace: Option<&str>) -> bool {
        let scope_ok = match (&self.namespaces, namespace) {
            (None, _) => true,
            (Some(list), Some(ns)) => list.iter().any(|n| n == ns),
            (Some(_), None) => false,
        };
        let any = |list: &[String], v: &str| list.iter().any(|x| x == "*" || x == v);
        let resource_ok = self.resources.iter().any(|r| {
            r == "*"
                || r == resource
                || r.strip_suffix("/*").is_some_and(|base| {
                    resource.split('/').next() == Some(base) && resource.contains('/')
                })
        });
        scope_ok && any(&self.verbs, verb) && any(&self.api_groups, group) && resource_ok
    }
}

/// A pre-created Elasticsearch object, shaped as ECK's (`apiVersion elasticsearch.k8s.elastic.co/v1`)
/// with a status as ECK writes it once the cluster is up.
#[derive(Debug, Clone, PartialEq)]
pub struct EsSeed {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) nodes: u32,
    pub(crate) health: String,
    pub(crate) phase: String,
    pub(crate) remote_cluster_server: bool,
    pub(crate) remote_clusters: Vec<(String, String, String, bool)>,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) annotations: Vec<(String, String)>,
    pub(crate) with_status: bool,
}

impl EsSeed {
    pub fn new(namespace: &str, name: &str, version: &str) -> EsSeed {
        EsSeed {
            namespace: namespace.into(),
            name: name.into(),
            version: version.into(),
            nodes: 3,
            health: "green".into(),
            phase: "Ready".into(),
            remote_cluster_server: false,
            remote_clusters: Vec::new(),
            labels: Vec::new(),
            annotations: Vec::new(),
            with_status: true,
        }
    }

    /// `nodeSets[0].count` and `status.availableNodes` (default 3).
    pub fn nodes(mut self, n: u32) -> Self {
        self.nodes = n;
        self
    }
    /// `status.health` (default `green`).
    pub fn health(mut self, h: &str) -> Self {
        self.health = h.into();
        self
    }
    /// `status.phase` (default `Ready`).
    pub fn phase(mut self, p: &str) -> Self {
        self.phase = p.into();
        self
    }
    /// `spec.remoteClusterServer.enabled`.
    pub fn remote_cluster_server(mut self, enabled: bool) -> Self {
        self.remote_cluster_server = enabled;
        self
    }
    /// A `spec.remoteClusters` entry pointing at `es_namespace/es_name`; with `api_key`, an
    /// `apiKey.access.search.names: ["*"]` block (API-key security model).
    pub fn remote_cluster(
        mut self,
        alias: &str,
        es_namespace: &str,
        es_name: &str,
        api_key: bool,
    ) -> Self {
        self.remote_clusters
            .push((alias.into(), es_namespace.into(), es_name.into(), api_key));
        self
    }
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.push((key.into(), value.into()));
        self
    }
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.push((key.into(), value.into()));
        self
    }
    /// No status at all (as right after `kubectl apply`, before ECK reconciled it).
    pub fn without_status(mut self) -> Self {
        self.with_status = false;
        self
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The object as a user would create it (no status, no server-set metadata).
    pub fn to_object(&self) -> Value {
        let mut metadata = json!({"name": self.name, "namespace": self.namespace});
        for (field, pairs) in [("labels", &self.labels), ("annotations", &self.annotations)] {
            if !pairs.is_empty() {
                let m: Map<String, Value> = pairs
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                metadata[field] = Value::Object(m);
            }
        }
        let mut spec = json!({
            "version": self.version,
            "nodeSets": [{
                "name": "default",
                "count": self.nodes,
                "config": {"node.store.allow_mmap": false},
            }],
        });
        if self.remote_cluster_server {
            spec["remoteClusterServer"] = json!({"enabled": true});
        }
        if !self.remote_clusters.is_empty() {
            let entries: Vec<Value> = self
                .remote_clusters
                .iter()
                .map(|(alias, ns, name, api_key)| {
                    let mut e = json!({
                        "name": alias,
                        "elasticsearchRef": {"name": name, "namespace": ns},
                    });
                    if *api_key {
                        e["apiKey"] = json!({"access": {"search": {"names": ["*"]}}});
                    }
                    e
                })
                .collect();
            spec["remoteClusters"] = Value::Array(entries);
        }
        json!({
            "apiVersion": "elasticsearch.k8s.elastic.co/v1",
            "kind": "Elasticsearch",
            "metadata": metadata,
            "spec": spec,
        })
    }

    /// The status ECK would have written (`observedGeneration` = `generation`).
    pub(crate) fn status(&self, generation: i64, now: &str) -> Option<Value> {
        if !self.with_status {
            return None;
        }
        let ready = self.phase == "Ready";
        let flag = |b: bool| if b { "True" } else { "False" };
        Some(json!({
            "availableNodes": self.nodes,
            "health": self.health,
            "phase": self.phase,
            "version": self.version,
            "observedGeneration": generation,
            "conditions": [
                {"type": "ReconciliationComplete", "status": flag(ready), "lastTransitionTime": now},
                {"type": "RunningDesiredVersion", "status": "True", "lastTransitionTime": now},
                {"type": "ElasticsearchIsReachable", "status": flag(self.health != "unknown"), "lastTransitionTime": now},
            ],
        }))
    }
}

/// What an injected fault does to the request it hits.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Answer this HTTP status with a `Status` body.
    Status(u16),
    /// Never answer (the client times out).
    Timeout,
    /// Close the connection without answering.
    DropConnection,
    /// A concurrent writer: right before the request is processed, this JSON merge patch is
    /// applied to the object the request addresses (as another client would, bumping its
    /// `resourceVersion`); the request itself is then served normally, so a write guarded by
    /// a `resourceVersion` (precondition, JSON patch `test`, PUT) fails with 409/422.
    ConcurrentMergePatch(Value),
}

/// A fault: the `nth` (1-based) request whose method and path match fails, then `times - 1`
/// following matching ones too.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub(crate) method: String,
    pub(crate) path_prefix: String,
    pub(crate) nth: usize,
    pub(crate) times: usize,
    pub(crate) action: FaultAction,
}

impl Fault {
    /// `method` is an HTTP method (`GET`, `PATCH`...) or `*`; `path_prefix` is matched against
    /// the request path (without query). Default: first match answers 500.
    pub fn new(method: &str, path_prefix: &str) -> Fault {
        Fault {
            method: method.to_ascii_uppercase(),
            path_prefix: path_prefix.into(),
            nth: 1,
            times: 1,
            action: FaultAction::Status(500),
        }
    }
    pub fn nth(mut self, n: usize) -> Self {
        self.nth = n.max(1);
        self
    }
    /// How many consecutive matching requests fail, starting at the nth (default 1).
    pub fn times(mut self, n: usize) -> Self {
        self.times = n.max(1);
        self
    }
    pub fn status(mut self, code: u16) -> Self {
        self.action = FaultAction::Status(code);
        self
    }
    pub fn timeout(mut self) -> Self {
        self.action = FaultAction::Timeout;
        self
    }
    pub fn drop_connection(mut self) -> Self {
        self.action = FaultAction::DropConnection;
        self
    }
    /// "A concurrent writer that changes an object between a client's read and its write":
    /// before the matching request is served, `patch` (RFC 7386) is applied to the object
    /// that request addresses (`path_prefix` should be the object's URL, e.g.
    /// `/apis/elasticsearch.k8s.elastic.co/v1/namespaces/ns/elasticsearches/name`). The write
    /// is done in-process, not logged as a request.
    pub fn concurrent_merge_patch(mut self, patch: Value) -> Self {
        self.action = FaultAction::ConcurrentMergePatch(patch);
        self
    }

    pub(crate) fn matches(&self, method: &str, path: &str) -> bool {
        (self.method == "*" || self.method == method) && path.starts_with(&self.path_prefix)
    }
}

/// One request as the API server saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    pub cluster: String,
    /// Authenticated user (client certificate CN).
    pub user: String,
    pub method: String,
    pub path: String,
    /// Raw query string ("" when none).
    pub query: String,
    pub content_type: Option<String>,
    /// HTTP status answered; 0 when the connection was dropped or the request hung (fault).
    pub status: u16,
}

impl RequestRecord {
    /// Not a read (GET/HEAD).
    pub fn is_write(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD")
    }
}
