//! The pure planning core: observed state in, ordered changes out. No I/O here.
//!
//! Every mutating command reads the clusters involved into [`EsState`]s, asks a `plan_*`
//! function for a [`Plan`], shows it, and hands it to `apply`. Re-planning after a conflict
//! starts again from fresh state, so planning must be idempotent: a change already made plans
//! nothing.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::versions::{self, EsVersion};

mod cross_environment;
mod same_operator;

pub use cross_environment::*;
pub use same_operator::*;

/// Annotation on a local Elasticsearch recording the links this plugin made, by alias.
pub const LINKS_ANNOTATION: &str = "remote-cluster.kubectl-plugin.dev/links";
/// ECK copies the annotations this lists (comma-separated, `*` for all) into pod templates.
pub const PROPAGATE_ANNOTATIONS: &str = "eck.k8s.alpha.elastic.co/propagate-annotations";
/// Why a step that writes only the plugin's annotations restarts the nodes.
pub const PROPAGATED_RESTART: &str = "ECK copies the plugin's annotations into the pods";
/// ECK 3.5+ with Elasticsearch 9.5+: secure settings applied in place, no keystore at start.
pub const FILE_BASED_SECURE_SETTINGS: &str = "eck.k8s.elastic.co/file-based-secure-settings";
/// Annotation on a remote Elasticsearch when this plugin turned its remote cluster server on.
pub const SERVER_ANNOTATION: &str = "remote-cluster.kubectl-plugin.dev/remote-cluster-server";
pub const SERVER_ENABLED_BY_PLUGIN: &str = "enabled";

/// ECK's annotation listing the aliases it put into the cluster settings.
pub const ECK_MANAGED_REMOTES: &str = "elasticsearch.k8s.elastic.co/managed-remote-clusters";
pub const ECK_MANAGED: &str = "eck.k8s.elastic.co/managed";
pub const ECK_PAUSED: &str = "eck.k8s.elastic.co/pause-orchestration";

/// One Elasticsearch resource: where it is and what it looked like when read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ClusterId {
    pub context: String,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ClusterId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} (context {})",
            self.namespace, self.name, self.context
        )
    }
}

#[derive(Debug, Clone)]
pub struct EsState {
    pub id: ClusterId,
    /// The whole object as the API server returned it.
    pub object: Value,
}

impl EsState {
    pub fn resource_version(&self) -> String {
        self.object
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    pub fn version(&self) -> Option<EsVersion> {
        self.object
            .pointer("/spec/version")
            .and_then(Value::as_str)
            .and_then(EsVersion::parse)
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.object
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
    }

    /// Whether ECK copies annotation `key` into the pod template, so that writing it restarts
    /// the nodes: listed (or `*`) in `eck.k8s.alpha.elastic.co/propagate-annotations`, and not
    /// one of ECK's own `*.k8s.*elastic.co/` (`common/annotation/metadata_propagation.go`).
    pub fn propagates_annotation(&self, key: &str) -> bool {
        let eck_own = key
            .split_once('/')
            .is_some_and(|(prefix, _)| prefix.contains(".k8s.") && prefix.ends_with("elastic.co"));
        !eck_own
            && self
                .annotation(PROPAGATE_ANNOTATIONS)
                .is_some_and(|list| list.split(',').map(str::trim).any(|k| k == "*" || k == key))
    }

    /// Whether writing these annotations restarts the nodes (see [`Self::propagates_annotation`]).
    pub fn annotations_restart(&self, changes: &[(&str, Option<String>)]) -> bool {
        changes.iter().any(|(key, value)| {
            self.annotation(key) != value.as_deref() && self.propagates_annotation(key)
        })
    }

    /// ECK writes this cluster's secure settings into file-based settings that Elasticsearch
    /// applies in place, without a restart (real-behaviour.md 9: ECK 3.5+, Elasticsearch 9.5+,
    /// annotation `eck.k8s.elastic.co/file-based-secure-settings`). The ECK version is not
    /// checked: the annotation is taken as the user's statement that the operator supports it.
    pub fn file_based_secure_settings(&self) -> bool {
        self.annotation(FILE_BASED_SECURE_SETTINGS) == Some("true")
            && self
                .version()
                .is_some_and(|v| v >= versions::FILE_BASED_SECURE_SETTINGS)
    }

    pub fn remote_clusters(&self) -> Vec<Value> {
        self.object
            .pointer("/spec/remoteClusters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// Where ECK is with this resource (real-behaviour.md 6: rolled out when the observed
    /// generation caught up, the phase is Ready and ReconciliationComplete is True).
    pub fn rollout(&self) -> Rollout {
        let number = |pointer: &str| self.object.pointer(pointer).and_then(Value::as_i64);
        let mut rollout = Rollout {
            generation: number("/metadata/generation"),
            observed_generation: number("/status/observedGeneration"),
            phase: self
                .object
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string(),
            reconciliation_complete: self
                .object
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "ReconciliationComplete")
                .and_then(|c| c["status"].as_str())
                .map(|status| status == "True"),
            error: self
                .object
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "ReconciliationComplete" && c["status"] == "False")
                .and_then(|c| c["message"].as_str())
                .filter(|m| !m.trim().is_empty())
                .map(str::to_string),
        };
        if rollout.phase == INVALID_PHASE && rollout.error.is_none() {
            rollout.error = Some(INVALID_SPEC.to_string());
        }
        rollout
    }

    pub fn remote_cluster_server_enabled(&self) -> bool {
        self.object
            .pointer("/spec/remoteClusterServer/enabled")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// The links this plugin recorded on this cluster, by alias.
    pub fn plugin_links(&self) -> BTreeMap<String, LinkRecord> {
        self.annotation(LINKS_ANNOTATION)
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default()
    }

    pub fn eck_managed_aliases(&self) -> Vec<String> {
        split_aliases(self.annotation(ECK_MANAGED_REMOTES))
    }

    /// Whether an entry of `spec.remoteClusters` points at `remote` (same namespace by default).
    pub fn entry_points_at(&self, entry: &Value, remote: &ClusterId) -> bool {
        let name = entry
            .pointer("/elasticsearchRef/name")
            .and_then(Value::as_str);
        let namespace = entry
            .pointer("/elasticsearchRef/namespace")
            .and_then(Value::as_str)
            .filter(|ns| !ns.is_empty())
            .unwrap_or(&self.id.namespace);
        name == Some(remote.name.as_str()) && namespace == remote.namespace
    }
}

/// The phase ECK's controller sets when its own validation refuses a spec, which happens when
/// ECK runs without its validating webhook (the API server then accepted the write, and
/// `--dry-run=server` cannot catch it).
pub const INVALID_PHASE: &str = "Invalid";
const INVALID_SPEC: &str = "phase Invalid: ECK's validation refused this spec (ECK runs without its validating webhook, so the API server accepted it); its Validation event says why";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    pub generation: Option<i64>,
    pub observed_generation: Option<i64>,
    pub phase: String,
    /// The `ReconciliationComplete` condition; `None` on ECK versions without it.
    pub reconciliation_complete: Option<bool>,
    /// The message of `ReconciliationComplete=False`: the errors of ECK's last reconcile
    /// (`elasticsearch_controller.go` reports them there, with phase `ApplyingChanges`).
    pub error: Option<String>,
}

impl Rollout {
    /// ECK's error about the current spec: reported by a reconcile that saw this generation.
    pub fn eck_error(&self) -> Option<&str> {
        self.error.as_deref().filter(|_| self.caught_up())
    }

    pub fn caught_up(&self) -> bool {
        self.generation.is_some() && self.observed_generation >= self.generation
    }

    /// ECK finished reconciling the current spec. ECK sets `observedGeneration` when a
    /// reconcile starts (`reconcile/state.go`), so a caught-up generation alone says nothing of
    /// the rollout: phase `Ready` and `ReconciliationComplete` do. The pods are checked apart.
    pub fn done(&self) -> bool {
        self.caught_up() && self.phase == "Ready" && self.reconciliation_complete != Some(false)
    }
}

/// Whether an error ECK reports stays until someone changes something (real-behaviour.md
/// section 4): a spec ECK's controller found invalid, the `certificateAuthorities` ConfigMap missing or without `ca.crt`
/// (`transport.ReconcileAdditionalCAs`), secure-settings entries that cannot be read
/// (`keystore.retrieveUserSecrets`), and Elasticsearch refusing ECK's request (a 4xx answer,
/// such as its remote-cluster settings update). Others (Elasticsearch not reachable yet, a
/// conflict) clear when ECK retries.
pub fn eck_error_is_lasting(message: &str) -> bool {
    message == INVALID_SPEC
        || message.contains("specified in spec.transport.tls.certificateAuthorities")
        || message.contains("in secure settings secret")
        || ["400 ", "401 ", "403 ", "404 "].iter().any(|status| {
            message.trim_start_matches('[').starts_with(status)
                || message.contains(&format!(", {status}"))
        })
}

/// What makes a cluster older than 8.13 (no `_resolve/cluster`) attempt the connection to
/// `alias` again: a cross-cluster request, here the cheapest one, `_resolve/index` (7.9+).
/// Elasticsearch does not reconnect by itself after a failed attempt, so `_remote/info` alone
/// can say `connected: false` for good.
pub fn reconnect_path(alias: &str) -> String {
    format!("/_resolve/index/{alias}:*")
}

/// How a cluster running `version` is asked whether `alias` connects: `_resolve/cluster`, which
/// attempts a connection (Elasticsearch does not reconnect by itself after a failed attempt, so
/// `_remote/info` can say `connected: false` for good) and reports security errors, from 8.13
/// (bounded by `timeout` from 8.18); `None`: only `_remote/info` answers.
pub fn resolve_cluster_path(version: Option<&EsVersion>, alias: &str) -> Option<String> {
    let version = version?;
    if *version < versions::RESOLVE_CLUSTER {
        return None;
    }
    let timeout = if *version >= versions::RESOLVE_CLUSTER_TIMEOUT {
        "?timeout=5s"
    } else {
        ""
    };
    Some(format!("/_resolve/cluster/{alias}:*{timeout}"))
}

/// What `_resolve/cluster` says of `alias`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Connected, no error.
    Connected,
    /// Its `error` (a security error comes with `connected: true`).
    Error(String),
    NotConnected,
    /// The alias is not in the answer.
    Unknown,
}

pub fn resolved(answer: &Value, alias: &str) -> Resolved {
    let Some(entry) = answer.get(alias) else {
        return Resolved::Unknown;
    };
    match (entry["connected"].as_bool(), entry["error"].as_str()) {
        (_, Some(error)) => Resolved::Error(error.to_string()),
        (Some(true), None) => Resolved::Connected,
        _ => Resolved::NotConnected,
    }
}

/// The aliases of ECK's comma-separated `managed-remote-clusters` annotation.
pub fn split_aliases(annotation: Option<&str>) -> Vec<String> {
    annotation
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A plan together with what was decided while making it.
pub trait Planned {
    fn plan(&self) -> &Plan;
}

/// Who a Kubernetes cluster is, whatever a kubeconfig calls it: the UID of its `kube-system`
/// namespace (created with the cluster, never renamed or deleted), and the API server URL, the
/// fallback when the UID cannot be read (the caller may not `get namespaces`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterIdentity {
    pub uid: Option<String>,
    pub server: String,
}

/// What the plugin remembers about a link it made (kept in [`LINKS_ANNOTATION`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkRecord {
    pub remote_context: String,
    pub remote_namespace: String,
    pub remote_name: String,
    pub security: SecurityModel,
    /// Across Kubernetes clusters: the id of the cross-cluster API key created on the remote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Across Kubernetes clusters: SHA-256 fingerprint of the remote CA the local trusts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_fingerprint: Option<String>,
    /// Across Kubernetes clusters: the address the local connects to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_address: Option<String>,
    /// A cluster outside Kubernetes: the URL where the plugin created the key (it invalidates
    /// it on unlink when given the credentials again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_created_at: Option<String>,
    /// Across Kubernetes clusters: the remote cluster's `kube-system` UID, so that a kubeconfig
    /// naming the remote's context differently still finds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_cluster_uid: Option<String>,
    /// Across Kubernetes clusters: the remote's API server URL when the link was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_server: Option<String>,
}

impl LinkRecord {
    /// Why this record cannot be acted on, when a hand edit (or another tool) left names in it
    /// that the API server or Elasticsearch would never have given: they would reach request
    /// paths (`?`, `#`, `/` in a name) and address something else.
    pub fn problem(&self) -> Option<String> {
        // A cluster outside Kubernetes is recorded by its alias alone.
        let named = if self.remote_context.is_empty() && self.remote_namespace.is_empty() {
            vec![("remoteName", crate::input::alias(&self.remote_name))]
        } else {
            vec![
                ("remoteContext", crate::input::context(&self.remote_context)),
                (
                    "remoteNamespace",
                    crate::input::namespace(&self.remote_namespace),
                ),
                (
                    "remoteName",
                    crate::input::elasticsearch_name(&self.remote_name),
                ),
            ]
        };
        if let Some((field, Err(reason))) = named.into_iter().find(|(_, r)| r.is_err()) {
            return Some(format!("its {field} is {reason}"));
        }
        let key_id_ok = |id: &String| {
            !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if self.key_id.as_ref().is_some_and(|id| !key_id_ok(id)) {
            return Some("its keyId is not an API key id".to_string());
        }
        None
    }

    /// The identity of the remote Kubernetes cluster as recorded (links made before the plugin
    /// recorded it carry none).
    pub fn remote_identity(&self) -> Option<ClusterIdentity> {
        self.remote_server.as_ref().map(|server| ClusterIdentity {
            uid: self.remote_cluster_uid.clone(),
            server: server.clone(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecurityModel {
    ApiKey,
    Certificate,
}

impl std::fmt::Display for SecurityModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecurityModel::ApiKey => "api-key",
            SecurityModel::Certificate => "certificate",
        })
    }
}

/// Facts about the ECK operator of a Kubernetes cluster.
#[derive(Debug, Clone, Default)]
pub struct Operator {
    /// `elastic-licensing` `eck_license_level`, when it could be read.
    pub license_level: Option<String>,
    /// The installed CRD has `remoteClusters[].apiKey` (ECK >= 2.16).
    pub crd_has_api_key: bool,
    /// The installed CRD has `remoteClusterServer` (ECK >= 2.16).
    pub crd_has_remote_cluster_server: bool,
    /// The installed CRD has `remoteClusterServer.service` (ECK >= 3.3).
    pub crd_has_server_service: bool,
}

/// What the user asked `link` for.
#[derive(Debug, Clone, Default)]
pub struct LinkRequest {
    pub alias: Option<String>,
    pub security: Option<SecurityModel>,
    pub search_indices: Vec<String>,
    pub replication_indices: Vec<String>,
    pub skip_unavailable: bool,
}

/// An ordered list of changes, per cluster.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn restarts(&self) -> Vec<&ClusterId> {
        self.steps
            .iter()
            .filter(|s| s.restarts_nodes)
            .map(|s| &s.cluster)
            .collect()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub cluster: ClusterId,
    /// One line saying what the step does.
    pub summary: String,
    /// Elasticsearch nodes of `cluster` restart (rolling) when this step is applied.
    pub restarts_nodes: bool,
    pub change: Change,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Change {
    /// A JSON patch on the Elasticsearch resource, guarded by a `test` of the resourceVersion
    /// that was read, so that any edit in between makes it fail (422) instead of overwriting.
    #[serde(rename_all = "camelCase")]
    PatchElasticsearch {
        resource_version: String,
        patch: Vec<Value>,
        diff: Vec<String>,
    },
    /// Creates (no resourceVersion) or patches a Secret or ConfigMap of this plugin's; values
    /// may name outputs of earlier steps, so the plan never holds a secret.
    #[serde(rename_all = "camelCase")]
    ApplyObject {
        object: ObjectKind,
        namespace: String,
        name: String,
        resource_version: Option<String>,
        labels: BTreeMap<String, String>,
        data: BTreeMap<String, DataValue>,
        /// Keys to remove from an existing object.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        remove: Vec<String>,
        diff: Vec<String>,
    },
    /// Deletes an object of this plugin's, guarded by the resourceVersion read.
    #[serde(rename_all = "camelCase")]
    DeleteObject {
        object: ObjectKind,
        namespace: String,
        name: String,
        resource_version: String,
    },
    /// Invalidates a cross-cluster API key by id on this step's cluster.
    #[serde(rename_all = "camelCase")]
    InvalidateApiKey { id: String },
    /// Creates a Service of this plugin's.
    #[serde(rename_all = "camelCase")]
    CreateService {
        namespace: String,
        name: String,
        manifest: Value,
    },
    /// Waits for a LoadBalancer Service's address; its host and the Service's `port` become
    /// the output `output` (`HOST:PORT`).
    #[serde(rename_all = "camelCase")]
    WaitForAddress {
        namespace: String,
        service: String,
        port: ServicePort,
        output: String,
    },
    /// Creates a cross-cluster API key on this step's cluster; outputs `apiKey.id` and
    /// `apiKey.encoded`.
    #[serde(rename_all = "camelCase")]
    CreateApiKey { name: String, body: Value },
    /// Waits until ECK has rolled the cluster out (observedGeneration, phase Ready).
    WaitForRollout,
    /// `PUT /_cluster/settings` (persistent) on this step's cluster; values may name outputs.
    #[serde(rename_all = "camelCase")]
    PutClusterSettings { settings: Value },
    /// `cluster.remote.<alias>.skip_unavailable` on this step's cluster: set (once ECK has
    /// configured the alias, which Elasticsearch requires first) or removed.
    #[serde(rename_all = "camelCase")]
    SetSkipUnavailable { alias: String, value: Option<bool> },
}

/// Kubernetes objects of the plugin's own besides Elasticsearch resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ObjectKind {
    Secret,
    ConfigMap,
    Service,
}

/// A value in a planned object: given, or the output of an earlier step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DataValue {
    Literal(String),
    Output(String),
}

/// The placeholder for an output inside planned JSON strings, replaced at apply time.
pub fn output_placeholder(name: &str) -> String {
    format!("${{{name}}}")
}

/// The Secret in which ECK publishes an Elasticsearch's transport CA (`ca.crt`).
pub fn transport_ca_secret(es_name: &str) -> String {
    format!("{es_name}-es-transport-certs-public")
}

/// Why a plan cannot be made. Each is a user error: exit 2, nothing written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("cannot link {0} to itself; name a different remote cluster")]
    SameCluster(ClusterId),
    #[error(
        "alias {0:?} is not valid: use lowercase letters, digits, '-' and '_' only (Elasticsearch remote cluster alias rules)"
    )]
    InvalidAlias(String),
    #[error("alias {alias:?} is already used on {local} by {holder}; choose another with --alias")]
    AliasTaken {
        alias: String,
        local: ClusterId,
        holder: String,
    },
    #[error(
        "alias {alias:?} on {local} already links to {current}; one alias is one link: run `kubectl remote-cluster unlink {name} {alias} -n {namespace} --context {context}` first, or choose another --alias",
        name = .local.name, namespace = .local.namespace, context = .local.context
    )]
    AliasInUse {
        alias: String,
        local: ClusterId,
        current: String,
    },
    #[error(
        "{remote} already sets {field}: {service_type}, and the plugin will not change it to LoadBalancer; pass --proxy-address HOST:PORT with the address your {service_type} Service is reached at, or change the type yourself"
    )]
    ServiceTypeTaken {
        remote: Box<ClusterId>,
        field: &'static str,
        service_type: String,
    },
    #[error(
        "{local} runs Elasticsearch {local_version} and {remote} runs {remote_version}: these versions cannot be connected (same major, 7.17 with 8.x, 8.18 with 9.0, 8.19 with 9.x); upgrade one side"
    )]
    IncompatibleVersions {
        local: Box<ClusterId>,
        local_version: String,
        remote: Box<ClusterId>,
        remote_version: String,
    },
    #[error(
        "the API-key security model needs Elasticsearch 8.10 or later on both sides (Elastic recommends 8.14); {cluster} runs {version}; use --security certificate or upgrade"
    )]
    ApiKeyUnsupported { cluster: ClusterId, version: String },
    #[error("{0} has no valid spec.version; fix the resource before linking")]
    UnknownVersion(ClusterId),
    #[error(
        "the ECK licence in context {context} is {level:?}: remote clusters need an Enterprise licence or trial, and without one ECK does nothing with the link but emit a warning event; start a trial or install a licence"
    )]
    LicenseNotEnterprise { context: String, level: String },
    #[error(
        "the ECK licence in context {context} is {level:?}: Elastic's terms make remote clusters on ECK an Enterprise feature; ECK itself does not block a link across operators, which the plugin sets up without ECK's remote-cluster automation; start a trial or install an Enterprise licence"
    )]
    LicenseTermsNotEnterprise { context: String, level: String },
    #[error(
        "the ECK operator in context {context} is too old for the {feature} (the installed Elasticsearch CRD lacks it; ECK {minimum} or later needed); upgrade ECK"
    )]
    OperatorTooOld {
        context: String,
        feature: &'static str,
        minimum: &'static str,
    },
    #[error(
        "ECK marks {0} Invalid: its validation refused the current spec (ECK runs without its validating webhook), so it would not act on the link; fix the spec first (`kubectl describe es {name} -n {namespace}` shows the Validation event)",
        name = .0.name, namespace = .0.namespace
    )]
    InvalidSpec(ClusterId),
    #[error(
        "{cluster} is not managed by ECK ({annotation}: {value:?}), so ECK would not act on the link; remove the annotation first"
    )]
    NotManaged {
        cluster: ClusterId,
        annotation: &'static str,
        value: String,
    },
    #[error("an interrupted {operation} of alias {alias:?} on {local} (remote {remote}) is not finished; run `kubectl remote-cluster unlink {name} {alias}` to remove what it left, then try again", name = .local.name)]
    PendingOperation {
        local: Box<ClusterId>,
        alias: String,
        operation: String,
        remote: Box<str>,
    },
    #[error("{local} has no remote cluster with alias {alias:?}; `kubectl remote-cluster describe {name}` lists its links", name = .local.name)]
    NoSuchAlias { local: ClusterId, alias: String },
    #[error(
        "alias {alias:?} on {local} was not added by kubectl remote-cluster, so it is left alone; edit the resource yourself to remove it"
    )]
    NotOurs { local: ClusterId, alias: String },
    #[error(
        "--search-indices and --replication-indices are for the API-key model; drop them or use --security api-key"
    )]
    IndicesWithCertificate,
    #[error(
        "{remote} must be reachable from {local}'s Kubernetes cluster: pass --expose loadbalancer, or --proxy-address HOST:PORT if you expose it yourself"
    )]
    NotExposed {
        local: Box<ClusterId>,
        remote: Box<ClusterId>,
    },
    #[error("--proxy-address {0:?} is not HOST:PORT")]
    InvalidAddress(String),
    #[error(
        "{0} has no CA in Secret {1}; ECK has not finished setting the cluster up, try again when it is Ready"
    )]
    NoRemoteCa(Box<ClusterId>, String),
    #[error(
        "{0} accepts transport peers by node name only (a restricted trust for Elastic Cloud Hosted or ECE), so this peer's nodes would be refused: name them with --trust-subject PATTERN"
    )]
    RestrictedNeedsSubjects(Box<ClusterId>),
    #[error(
        "nodeSet {node_set:?} of {cluster} already restricts its transport trust with {path}; one file applies per node, so add the other side's node names to that file and its CA yourself"
    )]
    ForeignTrustRestrictions {
        cluster: Box<ClusterId>,
        node_set: String,
        path: String,
    },
}

impl PlanError {
    /// ECK has not published `es`'s transport CA yet.
    pub fn no_transport_ca(es: &ClusterId) -> PlanError {
        PlanError::NoRemoteCa(Box::new(es.clone()), transport_ca_secret(&es.name))
    }
}

/// The alias a link uses: the one asked for, or the remote's name; checked against
/// Elasticsearch's rule.
pub(crate) fn link_alias(asked: Option<&String>, remote: &ClusterId) -> Result<String, PlanError> {
    let alias = asked.cloned().unwrap_or_else(|| remote.name.clone());
    if !valid_alias(&alias) {
        return Err(PlanError::InvalidAlias(alias));
    }
    Ok(alias)
}

/// One alias, one link: a link record the plugin keeps for `alias` must describe the same remote
/// and security model as `wanted`, or the link is refused (never re-pointed silently). A
/// same remote asked again (other indices, a new key, another address of an external remote)
/// is an update, not a re-pointing.
pub(crate) fn check_alias_record(
    local: &EsState,
    alias: &str,
    wanted: &LinkRecord,
) -> Result<(), PlanError> {
    let Some(current) = local.plugin_links().get(alias).cloned() else {
        return Ok(());
    };
    let same_cluster = current.remote_context == wanted.remote_context
        || (current.remote_cluster_uid.is_some()
            && current.remote_cluster_uid == wanted.remote_cluster_uid);
    let same_remote = same_cluster
        && current.remote_namespace == wanted.remote_namespace
        && current.remote_name == wanted.remote_name;
    if same_remote && current.security == wanted.security {
        return Ok(());
    }
    let target = if current.remote_context.is_empty() {
        format!(
            "the external cluster at {}",
            current
                .proxy_address
                .as_deref()
                .unwrap_or("an unknown address")
        )
    } else {
        format!(
            "{}/{} (context {})",
            current.remote_namespace, current.remote_name, current.remote_context
        )
    };
    Err(PlanError::AliasInUse {
        alias: alias.to_string(),
        local: local.id.clone(),
        current: format!("{target} with the {} security model", current.security),
    })
}

/// The bare record of a link to `remote` with `security` (what [`check_alias_record`] compares).
pub(crate) fn model_record(remote: &EsState, security: SecurityModel) -> LinkRecord {
    LinkRecord {
        remote_context: remote.id.context.clone(),
        remote_namespace: remote.id.namespace.clone(),
        remote_name: remote.id.name.clone(),
        security,
        key_id: None,
        ca_fingerprint: None,
        proxy_address: None,
        key_created_at: None,
        remote_cluster_uid: None,
        remote_server: None,
    }
}

/// Elasticsearch's rule for remote cluster aliases, as ECK's keystore pattern also expects.
pub fn valid_alias(alias: &str) -> bool {
    !alias.is_empty()
        && alias
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Both versions, when they parse and can be connected (Elastic's compatibility table).
pub(crate) fn connectable_versions(
    local: &EsState,
    remote: &EsState,
) -> Result<(EsVersion, EsVersion), PlanError> {
    let local_version = local
        .version()
        .ok_or_else(|| PlanError::UnknownVersion(local.id.clone()))?;
    let remote_version = remote
        .version()
        .ok_or_else(|| PlanError::UnknownVersion(remote.id.clone()))?;
    if !versions::can_connect(&local_version, &remote_version) {
        return Err(PlanError::IncompatibleVersions {
            local: Box::new(local.id.clone()),
            local_version: local_version.to_string(),
            remote: Box::new(remote.id.clone()),
            remote_version: remote_version.to_string(),
        });
    }
    Ok((local_version, remote_version))
}

/// The `access` of a cross-cluster API key as Elasticsearch takes it (arrays); all indices
/// searchable when no pattern is given at all.
pub fn cross_cluster_access(search_indices: &[String], replication_indices: &[String]) -> Value {
    let search: Vec<&str> = if search_indices.is_empty() && replication_indices.is_empty() {
        vec!["*"]
    } else {
        search_indices.iter().map(String::as_str).collect()
    };
    let mut access = serde_json::Map::new();
    if !search.is_empty() {
        access.insert("search".into(), json!([{ "names": search }]));
    }
    if !replication_indices.is_empty() {
        access.insert(
            "replication".into(),
            json!([{ "names": replication_indices }]),
        );
    }
    Value::Object(access)
}

/// A step that waits for ECK to roll `cluster` out, saying why.
pub(crate) fn rollout_wait_step(cluster: &ClusterId, why: &str) -> Step {
    Step {
        cluster: cluster.clone(),
        summary: format!("wait for the rolling restart ({why})"),
        restarts_nodes: false,
        change: Change::WaitForRollout,
    }
}

/// A step that waits for the LoadBalancer address of a Service of `cluster`; the host becomes
/// the output [`OUTPUT_ADDRESS`], and the returned address names it with `port`.
pub(crate) fn address_wait_step(
    cluster: &ClusterId,
    service: String,
    port: ServicePort,
) -> (Step, String) {
    let step = Step {
        cluster: cluster.clone(),
        summary: format!("wait for the LoadBalancer address of Service {service}"),
        restarts_nodes: false,
        change: Change::WaitForAddress {
            namespace: cluster.namespace.clone(),
            service,
            port,
            output: OUTPUT_ADDRESS.to_string(),
        },
    };
    (step, output_placeholder(OUTPUT_ADDRESS))
}

/// The port of a Service that reaches a listener of Elasticsearch: the one named `name`, else
/// the Service's only port, else `default` (ECK's port, when the Service has none yet).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    pub name: String,
    pub default: u16,
}

impl ServicePort {
    /// ECK's remote cluster server port, `rcs` (9443).
    pub fn remote_cluster_server() -> Self {
        Self {
            name: "rcs".to_string(),
            default: REMOTE_CLUSTER_PORT,
        }
    }

    /// ECK's transport port, `tls-transport` (9300).
    pub fn transport() -> Self {
        Self {
            name: "tls-transport".to_string(),
            default: TRANSPORT_PORT,
        }
    }

    /// The port among a Service's `(name, port)`s.
    pub fn of(&self, ports: &[(Option<&str>, i32)]) -> u16 {
        let named = ports.iter().find(|(n, _)| *n == Some(self.name.as_str()));
        let only = match ports {
            [one] => Some(one),
            _ => None,
        };
        named
            .or(only)
            .and_then(|(_, p)| u16::try_from(*p).ok())
            .unwrap_or(self.default)
    }
}

/// `HOST:PORT`, an IPv6 address in brackets.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Removes every `cluster.remote.<alias>.*` setting read, by setting it to `null`.
pub(crate) fn clear_alias_settings_step(
    cluster: &ClusterId,
    alias: &str,
    settings: &BTreeMap<String, Value>,
) -> Option<Step> {
    if settings.is_empty() {
        return None;
    }
    let nulls = settings.keys().map(|k| (k.clone(), Value::Null)).collect();
    Some(Step {
        cluster: cluster.clone(),
        summary: format!("remove alias {alias:?} from the cluster settings"),
        restarts_nodes: false,
        change: Change::PutClusterSettings {
            settings: Value::Object(nulls),
        },
    })
}

/// The checks a remote cluster server to be exposed needs: an operator that has it, and a
/// `--proxy-address` (when given) with a port.
pub(crate) fn check_server_exposure(
    remote: &EsState,
    operator: &Operator,
    proxy_address: Option<&String>,
) -> Result<(), PlanError> {
    if !operator.crd_has_remote_cluster_server {
        return Err(PlanError::OperatorTooOld {
            context: remote.id.context.clone(),
            feature: "remote cluster server",
            minimum: "2.16",
        });
    }
    check_address(proxy_address)
}

pub(crate) fn check_address(proxy_address: Option<&String>) -> Result<(), PlanError> {
    match proxy_address {
        Some(address) if !cross_environment::valid_address(address) => {
            Err(PlanError::InvalidAddress(address.clone()))
        }
        _ => Ok(()),
    }
}

pub(crate) fn check_managed(es: &EsState) -> Result<(), PlanError> {
    if let Some(value) = es.annotation(ECK_MANAGED).filter(|v| *v == "false") {
        return Err(PlanError::NotManaged {
            cluster: es.id.clone(),
            annotation: ECK_MANAGED,
            value: value.to_string(),
        });
    }
    if let Some(value) = es.annotation(ECK_PAUSED).filter(|v| *v == "true") {
        return Err(PlanError::NotManaged {
            cluster: es.id.clone(),
            annotation: ECK_PAUSED,
            value: value.to_string(),
        });
    }
    let rollout = es.rollout();
    if rollout.phase == INVALID_PHASE && rollout.caught_up() {
        return Err(PlanError::InvalidSpec(es.id.clone()));
    }
    Ok(())
}

/// Who requires the Enterprise licence a link needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LicenceGate {
    /// ECK's same-operator automation checks it in code and does nothing without it.
    Eck,
    /// Links the plugin sets up across operators: only Elastic's terms require it
    /// (`real-behaviour.md` section 12).
    Terms,
}

pub(crate) fn check_license(
    context: &str,
    operator: &Operator,
    gate: LicenceGate,
    warnings: &mut Vec<String>,
) -> Result<(), PlanError> {
    match (operator.license_level.as_deref(), gate) {
        (Some("enterprise" | "enterprise_trial" | "enterprise-trial"), _) => Ok(()),
        (Some(level), LicenceGate::Eck) => Err(PlanError::LicenseNotEnterprise {
            context: context.to_string(),
            level: level.to_string(),
        }),
        (Some(level), LicenceGate::Terms) => Err(PlanError::LicenseTermsNotEnterprise {
            context: context.to_string(),
            level: level.to_string(),
        }),
        (None, LicenceGate::Eck) => {
            warnings.push(format!(
                "could not read the ECK licence in context {context} (ConfigMap elastic-licensing); ECK ignores remote clusters without an Enterprise licence or trial"
            ));
            Ok(())
        }
        (None, LicenceGate::Terms) => {
            warnings.push(format!(
                "could not read the ECK licence in context {context} (ConfigMap elastic-licensing); Elastic's terms make remote clusters on ECK an Enterprise feature"
            ));
            Ok(())
        }
    }
}

pub(crate) fn choose_security(
    asked: Option<SecurityModel>,
    local: (&EsState, &EsVersion),
    remote: (&EsState, &EsVersion),
    operator: &Operator,
    warnings: &mut Vec<String>,
) -> Result<SecurityModel, PlanError> {
    let oldest = if local.1 <= remote.1 { local } else { remote };
    let operator_ready = operator.crd_has_api_key && operator.crd_has_remote_cluster_server;
    match asked {
        Some(SecurityModel::ApiKey) => {
            if !versions::supports_api_key(oldest.1) {
                return Err(PlanError::ApiKeyUnsupported {
                    cluster: oldest.0.id.clone(),
                    version: oldest.1.to_string(),
                });
            }
            if !operator_ready {
                return Err(PlanError::OperatorTooOld {
                    context: local.0.id.context.clone(),
                    feature: "API-key security model",
                    minimum: "2.16",
                });
            }
            if !versions::api_key_recommended(oldest.1) {
                warnings.push(format!(
                    "{} runs {}: Elastic documents the API-key model from 8.14 on",
                    oldest.0.id, oldest.1
                ));
            }
            Ok(SecurityModel::ApiKey)
        }
        Some(SecurityModel::Certificate) => {
            warnings.push(certificate_deprecation());
            Ok(SecurityModel::Certificate)
        }
        None if operator_ready && versions::api_key_recommended(oldest.1) => {
            Ok(SecurityModel::ApiKey)
        }
        None => {
            warnings.push(format!(
                "using the certificate security model because {}; {}",
                if operator_ready {
                    format!("{} runs {} (API keys need 8.14)", oldest.0.id, oldest.1)
                } else {
                    "the ECK operator is older than 2.16".to_string()
                },
                certificate_deprecation()
            ));
            Ok(SecurityModel::Certificate)
        }
    }
}

pub(crate) fn certificate_deprecation() -> String {
    "the certificate security model is deprecated since Elasticsearch 9.0; prefer --security api-key"
        .to_string()
}

pub(crate) fn resource_version_guard(es: &EsState) -> Value {
    json!({"op": "test", "path": "/metadata/resourceVersion", "value": es.resource_version()})
}

/// The guard of a spec edit: the generation read. The API server bumps it on every spec change
/// and on nothing else, so ECK's constant status updates do not make the edit fail, while any
/// concurrent spec edit does.
pub(crate) fn spec_guard(es: &EsState) -> Value {
    let generation = es
        .object
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(Value::Null);
    json!({"op": "test", "path": "/metadata/generation", "value": generation})
}

pub(crate) fn enable_remote_cluster_server(remote: &EsState) -> Step {
    let mut patch = vec![spec_guard(remote)];
    if remote.object.pointer("/spec/remoteClusterServer").is_some() {
        patch
            .push(json!({"op": "add", "path": "/spec/remoteClusterServer/enabled", "value": true}));
    } else {
        patch.push(
            json!({"op": "add", "path": "/spec/remoteClusterServer", "value": {"enabled": true}}),
        );
    }
    patch.extend(annotation_ops(
        remote,
        &[(
            SERVER_ANNOTATION,
            Some(SERVER_ENABLED_BY_PLUGIN.to_string()),
        )],
    ));
    remote_cluster_server_step(
        remote,
        true,
        patch,
        "enable the remote cluster server (port 9443)",
    )
}

pub(crate) fn disable_remote_cluster_server(remote: &EsState) -> Step {
    let mut patch = vec![spec_guard(remote), server_spec_op(remote, false, true)];
    patch.extend(annotation_ops(remote, &[(SERVER_ANNOTATION, None)]));
    remote_cluster_server_step(
        remote,
        false,
        patch,
        "disable the remote cluster server (no other cluster uses it)",
    )
}

/// Turning the server on or off changes the pod template: a rolling restart (2.7).
fn remote_cluster_server_step(
    remote: &EsState,
    on: bool,
    patch: Vec<Value>,
    summary: &str,
) -> Step {
    Step {
        cluster: remote.id.clone(),
        summary: summary.to_string(),
        restarts_nodes: true,
        change: Change::PatchElasticsearch {
            resource_version: remote.resource_version(),
            patch,
            diff: vec![
                "  spec.remoteClusterServer.enabled:".to_string(),
                format!("-   {}", !on),
                format!("+   {on}"),
            ],
        },
    }
}

/// JSON patch operations that set (Some) or remove (None) annotations, keeping all others.
pub(crate) fn annotation_ops(es: &EsState, changes: &[(&str, Option<String>)]) -> Vec<Value> {
    annotation_ops_after(es, &[], changes)
}

/// [`annotation_ops`] for a patch that runs after `earlier` steps of the same plan, which may
/// have created the annotations map of the object already.
pub(crate) fn annotation_ops_after(
    es: &EsState,
    earlier: &[Step],
    changes: &[(&str, Option<String>)],
) -> Vec<Value> {
    let created_earlier = earlier.iter().any(|step| {
        step.cluster == es.id
            && matches!(&step.change, Change::PatchElasticsearch { patch, .. }
                if patch.iter().any(|op| op["path"] == "/metadata/annotations"))
    });
    let has_annotations = es.object.pointer("/metadata/annotations").is_some() || created_earlier;
    if !created_earlier
        && let Some(current) = es
            .object
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
        && !current.is_empty()
        && changes.iter().all(|(_, value)| value.is_none())
        && current
            .keys()
            .all(|key| changes.iter().any(|(removed, _)| removed == key))
    {
        // Removing the last annotations: the map goes too, so the object returns to its shape
        // before the plugin added any (no `annotations: {}` left). The whole map is tested, so
        // an annotation written meanwhile makes the patch fail instead of being dropped.
        return vec![
            json!({"op": "test", "path": "/metadata/annotations", "value": current}),
            json!({"op": "remove", "path": "/metadata/annotations"}),
        ];
    }
    let mut ops = Vec::new();
    let mut created = false;
    for (key, value) in changes {
        let path = format!(
            "/metadata/annotations/{}",
            key.replace('~', "~0").replace('/', "~1")
        );
        let present = es.annotation(key).is_some();
        match value {
            Some(value) if !has_annotations && !created => {
                // A new annotations map would replace one written meanwhile: guard it with the
                // resourceVersion, which any write moves on.
                ops.push(resource_version_guard(es));
                ops.push(
                    json!({"op": "add", "path": "/metadata/annotations", "value": {*key: value}}),
                );
                created = true;
            }
            Some(value) => ops.push(json!({"op": "add", "path": path, "value": value})),
            None if present => ops.push(json!({"op": "remove", "path": path})),
            None => {}
        }
    }
    ops
}

pub(crate) fn links_annotation_value(links: &BTreeMap<String, LinkRecord>) -> Option<String> {
    if links.is_empty() {
        None
    } else {
        Some(serde_json::to_string(links).expect("link records serialize"))
    }
}

pub(crate) fn yaml_lines(prefix: &str, value: &Value) -> Vec<String> {
    serde_saphyr::to_string(value)
        .unwrap_or_default()
        .lines()
        .map(|line| format!("{prefix}{line}"))
        .collect()
}

/// The plan as people read it: one block per step, with the diff and restart warnings.
fn step_details(change: &Change) -> Vec<String> {
    match change {
        Change::PatchElasticsearch { diff, .. } | Change::ApplyObject { diff, .. } => diff.clone(),
        Change::CreateService { manifest, .. } => yaml_lines("+   ", manifest),
        Change::DeleteObject { object, name, .. } => vec![format!("-   {object:?} {name}")],
        Change::InvalidateApiKey { id } => {
            vec![format!(
                "  DELETE /_security/api_key {{\"ids\": [\"{id}\"]}}"
            )]
        }
        Change::WaitForAddress { service, port, .. } => {
            vec![format!(
                "  until Service {service} has a LoadBalancer address; {} is its host and port {:?}",
                output_placeholder(OUTPUT_ADDRESS),
                port.name
            )]
        }
        Change::CreateApiKey { name, body } => {
            let mut lines = vec![format!(
                "  POST /_security/cross_cluster/api_key (name {name:?})"
            )];
            lines.extend(yaml_lines("+   ", &body["access"]));
            lines
        }
        Change::WaitForRollout => {
            vec!["  until observedGeneration catches up and phase is Ready".to_string()]
        }
        Change::SetSkipUnavailable { alias, value } => vec![format!(
            "  PUT /_cluster/settings (persistent) cluster.remote.{alias}.skip_unavailable: {}",
            value.map_or("null".to_string(), |v| v.to_string())
        )],
        Change::PutClusterSettings { settings } => {
            let mut lines = vec!["  PUT /_cluster/settings (persistent)".to_string()];
            lines.extend(yaml_lines("+   ", settings));
            lines
        }
    }
}

pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    for (number, step) in plan.steps.iter().enumerate() {
        out.push_str(&format!(
            "{}. {}: {}",
            number + 1,
            step.cluster,
            step.summary
        ));
        if step.restarts_nodes {
            out.push_str("  [restarts Elasticsearch nodes]");
        }
        out.push('\n');
        for line in step_details(&step.change) {
            out.push_str(&format!("   {line}\n"));
        }
    }
    out
}

#[cfg(test)]
mod resolve_cluster_tests {
    use super::{Resolved, resolve_cluster_path, resolved};
    use crate::versions::EsVersion;
    use serde_json::json;

    #[test]
    fn resolve_cluster_from_8_13_with_a_timeout_from_8_18() {
        let v = |s: &str| EsVersion::parse(s).unwrap();
        assert_eq!(resolve_cluster_path(Some(&v("8.12.2")), "a"), None);
        assert_eq!(resolve_cluster_path(None, "a"), None);
        assert_eq!(
            resolve_cluster_path(Some(&v("8.13.0")), "a").as_deref(),
            Some("/_resolve/cluster/a:*")
        );
        assert_eq!(
            resolve_cluster_path(Some(&v("9.1.0")), "a").as_deref(),
            Some("/_resolve/cluster/a:*?timeout=5s")
        );
        let answer = json!({"a": {"connected": true, "skip_unavailable": true},
                            "b": {"connected": true, "skip_unavailable": true, "error": "unable to authenticate"},
                            "c": {"connected": false, "skip_unavailable": false}});
        assert_eq!(resolved(&answer, "a"), Resolved::Connected);
        assert_eq!(
            resolved(&answer, "b"),
            Resolved::Error("unable to authenticate".into())
        );
        assert_eq!(resolved(&answer, "c"), Resolved::NotConnected);
        assert_eq!(resolved(&answer, "d"), Resolved::Unknown);
    }
}

#[cfg(test)]
mod eck_error_tests {
    use super::eck_error_is_lasting;

    #[test]
    fn lasting_errors_are_those_a_retry_does_not_clear() {
        for lasting in [
            "could not retrieve config map s/cas specified in spec.transport.tls.certificateAuthorities: configmaps \"cas\" not found",
            "config map s/cas specified in spec.transport.tls.certificateAuthorities must contain ca.crt file",
            "set is empty in secure settings secret k",
            "key b not found in secure settings secret k",
            "400 Bad Request: {Status:400 Error:{Reason:x}}",
            "[Get \"https://x\": dial tcp: refused, 400 Bad Request: {Status:400}]",
        ] {
            assert!(eck_error_is_lasting(lasting), "{lasting}");
        }
        for passing in [
            "503 Service Unavailable: {Status:503}",
            "Get \"https://l-es-internal-http.s.svc:9200/_cluster/settings\": dial tcp: connection refused",
            "Operation cannot be fulfilled on elasticsearches: the object has been modified",
        ] {
            assert!(!eck_error_is_lasting(passing), "{passing}");
        }
    }

    #[test]
    fn a_spec_eck_marked_invalid_is_a_lasting_error_and_refused_before_writing() {
        use super::{ClusterId, EsState, PlanError, check_managed};
        let es = |phase: &str, observed: i64| EsState {
            id: ClusterId {
                context: "east".into(),
                namespace: "search".into(),
                name: "catalog".into(),
            },
            object: serde_json::json!({"metadata": {"name": "catalog", "generation": 3},
                "status": {"phase": phase, "observedGeneration": observed}}),
        };
        let invalid = es("Invalid", 3);
        let error = invalid.rollout().eck_error().map(str::to_string).unwrap();
        assert!(error.starts_with("phase Invalid"), "{error}");
        assert!(eck_error_is_lasting(&error));
        assert_eq!(
            check_managed(&invalid),
            Err(PlanError::InvalidSpec(invalid.id.clone()))
        );
        assert_eq!(check_managed(&es("Invalid", 2)), Ok(()), "not judged yet");
        assert_eq!(check_managed(&es("Ready", 3)), Ok(()));
        assert_eq!(es("Ready", 3).rollout().eck_error(), None);
    }
}

#[cfg(test)]
mod service_port_tests {
    use super::{ServicePort, host_port};

    #[test]
    fn the_named_port_else_the_only_one_else_ecks_default() {
        let rcs = ServicePort::remote_cluster_server();
        assert_eq!(rcs.of(&[(Some("https"), 9200), (Some("rcs"), 443)]), 443);
        assert_eq!(rcs.of(&[(None, 8443)]), 8443);
        assert_eq!(rcs.of(&[(Some("a"), 1), (Some("b"), 2)]), 9443);
        assert_eq!(rcs.of(&[]), 9443);
        assert_eq!(
            ServicePort::transport().of(&[(Some("tls-transport"), 9400)]),
            9400
        );
        assert_eq!(host_port("lb.example", 443), "lb.example:443");
        assert_eq!(host_port("2001:db8::7", 443), "[2001:db8::7]:443");
    }
}
