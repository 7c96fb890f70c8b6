//! The fake ECK operator: one per simulated Kubernetes cluster with ECK installed, a tokio task
//! that reconciles every Elasticsearch on each store change and on a timer.
//!
//! What it does, with ECK's names (`eck-remote-clusters.md` in the shared docs, sections 2, 3):
//! - Services `<es>-es-http`, `-es-internal-http`, `-es-transport` (headless unless
//!   `spec.transport.service.spec.type`), one headless `<es>-es-<nodeSet>` per nodeSet, and
//!   `<es>-es-remote-cluster` only while `spec.remoteClusterServer.enabled` (deleted otherwise),
//!   from the user's Service templates (ports and selector defaulted only when unset).
//!   LoadBalancer Services get `status.loadBalancer.ingress[0].hostname` under `.invalid`.
//! - ECK's errors (transport CA ConfigMap, secure-settings entries, a refused remote-settings
//!   update): Warning events, phase `ApplyingChanges`, `ReconciliationComplete=False` with them.
//! - Secrets `<es>-es-elastic-user`, `-es-http-certs-public`, `-es-transport-certs-public`
//!   (ECK CA + the PEMs of `spec.transport.tls.certificateAuthorities`), `-es-remote-ca`.
//! - Pods `<es>-es-<nodeSet>-<i>` with ECK's labels and a Ready condition the rollout sets.
//! - Rollouts: a change of the pod template ([`pod_template_hash`]: version, nodeSets' config
//!   and podTemplate, the remote cluster server's config, the keystore hash of the secure
//!   settings and `<es>-es-remote-api-keys` unless file-based, the file-based toggle and the
//!   propagated annotations) is a rolling restart lasting the operator delay, each pod recreated
//!   with a new UID; the node's keystore, version and remote cluster server listener change when
//!   it completes. Other spec changes (certificate-model `remoteClusters`, transport CAs,
//!   Service templates) do not restart. `status.observedGeneration` is the generation of the
//!   last reconcile, set at its start as ECK does; the rollout shows as `ApplyingChanges`.
//! - With an Enterprise licence (a licence Secret, see `licence.rs`), same-operator
//!   remote clusters (section 3): CA copies, `eck-*` cross-cluster API keys, the remote API keys
//!   Secret, seeds and the `managed-remote-clusters` annotation, and cleanup. Without it, a
//!   Warning Event `AssociationError` on each Elasticsearch that has `remoteClusters`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, watch};

use crate::cluster::{ClusterState, PatchType, Sub, WriteOpts, now_rfc3339};
use crate::elasticsearch::{
    ClusterFormation, ElasticsearchNode, EsId, EsRequest, EsVersion,
    eck_transport_node_name_with_suffix, now_millis, sha256_fingerprint, subject_name_matches,
};
use crate::licence;
use crate::resources::ResourceKey;
use crate::status::ApiError;
use crate::world::{LABEL_CLUSTER_NAME, LABEL_STATEFULSET, LABEL_TYPE, World, list, secret_key};

pub(crate) use crate::licence::{LICENSING_CM, OPERATOR_NS};
const LABEL_REMOTE_NAME: &str = "elasticsearch.k8s.elastic.co/remote-cluster-name";
const LABEL_REMOTE_NAMESPACE: &str = "elasticsearch.k8s.elastic.co/remote-cluster-namespace";
const ANN_MANAGED_REMOTES: &str = "elasticsearch.k8s.elastic.co/managed-remote-clusters";
const ANN_API_KEYS: &str = "elasticsearch.k8s.elastic.co/remote-cluster-api-keys";
const ANN_FILE_BASED: &str = "eck.k8s.elastic.co/file-based-secure-settings";
const ANN_PROPAGATE: &str = "eck.k8s.alpha.elastic.co/propagate-annotations";
/// The StatefulSet controller's label naming the pod template revision a pod runs.
pub(crate) const LABEL_REVISION: &str = "controller-revision-hash";
const LICENSE_MESSAGE: &str =
    "Remote cluster is an enterprise feature. Enterprise features are disabled";

/// What tests can see of an operator (for `ClusterHandle::wait_idle`).
#[derive(Default)]
pub(crate) struct OperatorStatus {
    /// The cluster resourceVersion after the last pass that changed nothing.
    pub settled_rv: Mutex<Option<String>>,
    /// Rollouts in progress, and secure-settings changes not seen yet.
    pub rollouts: AtomicUsize,
}

struct Rollout {
    /// The pod template being rolled out.
    template: String,
    keystore: BTreeMap<String, String>,
    /// The hash of `keystore`.
    keystore_hash: String,
    started: Instant,
    /// First start of the cluster: every pod is down until the end.
    initial: bool,
}

/// Which pods of an Elasticsearch are Ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PodsReady {
    All,
    /// First start, or nodes that cannot form a cluster: none.
    Zero,
    /// A rolling restart: all but the i-th pod (counted across nodeSets).
    AllBut(usize),
}

/// A Secret as the operator last saw it: its resourceVersion and data (`None`: missing).
type SeenSecret = (String, Option<BTreeMap<String, String>>);

#[derive(Default)]
struct EsRuntime {
    /// The pod template the pods run.
    applied_template: String,
    /// The keystore hash the nodes read (in place with file-based secure settings).
    applied_keystore: String,
    rollout: Option<Rollout>,
}

pub(crate) struct Operator {
    state: Arc<ClusterState>,
    world: Arc<World>,
    delay: Duration,
    runtime: HashMap<(String, String), EsRuntime>,
    pod_ips: HashMap<(String, String), String>,
    next_ip: u32,
    cluster_index: usize,
    pub(crate) status: Arc<OperatorStatus>,
    /// ECK's resource reporter, which rewrites the `elastic-licensing` ConfigMap.
    licence_report: licence::Reporter,
    /// A reconcile of this pass asked for another (ECK's requeue): the pass is not idle.
    requeue: bool,
    /// How long a secure-settings Secret change takes to reach the operator.
    pub(crate) reaction_delay: Duration,
    /// Secure-settings Secrets as the operator last saw them: resourceVersion and data.
    seen_secrets: HashMap<(String, String), SeenSecret>,
    /// Secrets changed since: the resourceVersion and when the change was first noticed.
    unseen_changes: HashMap<(String, String), (String, Instant)>,
    /// Errors of the Elasticsearch being reconciled (ECK's `reconciler.Results`): when any,
    /// its status says phase `ApplyingChanges` and `ReconciliationComplete=False` with them.
    errors: Vec<String>,
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn labels_of(pairs: &[(&str, &str)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect(),
    )
}

/// ECK's labels on the objects of Elasticsearch `es` (`type=elasticsearch`, `cluster-name`),
/// then `extra`.
fn es_labels(es: &str, extra: &[(&str, &str)]) -> Value {
    let mut pairs = vec![(LABEL_TYPE, "elasticsearch"), (LABEL_CLUSTER_NAME, es)];
    pairs.extend_from_slice(extra);
    labels_of(&pairs)
}

/// `metadata.annotations[key]`.
fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// `metadata.labels[key]`, "" when absent.
fn label<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Secret `data`: every value base64-encoded.
fn encoded(data: &BTreeMap<String, String>) -> Map<String, Value> {
    data.iter()
        .map(|(k, v)| (k.clone(), Value::String(STANDARD.encode(v))))
        .collect()
}

/// The `remote-cluster-api-keys` annotation of a remote API keys Secret: alias to
/// `{namespace, name, id}` of the key.
fn api_keys_annotation(secret: Option<&Value>) -> Map<String, Value> {
    secret
        .and_then(|x| annotation(x, ANN_API_KEYS))
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

fn random_password() -> String {
    let alphabet: Vec<char> = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        .chars()
        .collect();
    let mut bytes = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("random bytes");
    bytes
        .iter()
        .map(|b| alphabet[*b as usize % alphabet.len()])
        .collect()
}

/// A `spec.remoteClusters[]` entry that references an Elasticsearch.
struct RemoteRef {
    alias: String,
    namespace: String,
    name: String,
    /// `apiKey` (API-key model), `None` for the certificate model.
    api_key: Option<Value>,
}

/// `spec.remoteClusters[]` entries that reference an Elasticsearch.
fn remote_refs(es: &Value) -> Vec<RemoteRef> {
    let own_ns = s(es, "/metadata/namespace");
    let mut out: Vec<RemoteRef> = Vec::new();
    for e in es
        .pointer("/spec/remoteClusters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(r) = e.get("elasticsearchRef") else {
            continue;
        };
        let name = s(r, "/name");
        if name.is_empty() {
            continue;
        }
        let ns = match s(r, "/namespace") {
            "" => own_ns,
            n => n,
        };
        let alias = s(e, "/name").to_string();
        // A later entry with the same name overwrites an earlier one (the code keys on it).
        out.retain(|x| x.alias != alias);
        out.push(RemoteRef {
            alias,
            namespace: ns.into(),
            name: name.into(),
            api_key: e.get("apiKey").cloned(),
        });
    }
    out
}

fn rcs_enabled(es: &Value) -> bool {
    es.pointer("/spec/remoteClusterServer/enabled")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Whether ECK writes the secure settings into file-based settings instead of a keystore built
/// at pod start (ECK >= 3.5 with Elasticsearch >= 9.5 and the annotation).
fn file_based_secure_settings(es: &Value) -> bool {
    annotation(es, ANN_FILE_BASED) == Some("true")
        && EsVersion::parse(s(es, "/spec/version")).is_some_and(|v| v.at_least(9, 5, 0))
}

/// The annotations ECK copies into the pod template: those listed (comma-separated, `*` for
/// all) in `eck.k8s.alpha.elastic.co/propagate-annotations`, except ECK's own
/// `*.k8s.*elastic.co/` ones (`common/annotation/metadata_propagation.go`).
fn propagated_annotations(es: &Value) -> BTreeMap<String, Value> {
    let Some(wanted) = annotation(es, ANN_PROPAGATE) else {
        return BTreeMap::new();
    };
    let wanted: Vec<&str> = wanted.split(',').map(str::trim).collect();
    let eck_own = |key: &str| {
        key.split_once('/')
            .is_some_and(|(prefix, _)| prefix.contains(".k8s.") && prefix.ends_with("elastic.co"))
    };
    es.pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(k, _)| !eck_own(k) && wanted.iter().any(|w| *w == "*" || w == k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A digest of what ECK puts in the pods' template, the only inputs whose change makes the
/// StatefulSets roll the pods (`nodespec/podspec.go` `BuildPodTemplateSpec`: the merged config
/// hash, with what ECK adds for the remote cluster server; the user's podTemplate; the image of
/// `spec.version`; the keystore hash, `common/keystore/user_secret.go`, replaced by file-based
/// settings with no init container, `driver/stateful/keystore.go`; propagated annotations).
/// The nodeSet counts are in it too: the sandbox models a scale as a rollout.
pub(crate) fn pod_template_hash(es: &Value, keystore_hash: &str, file_based: bool) -> String {
    let sets: Vec<Value> = crate::world::node_sets(es)
        .iter()
        .map(|n| {
            json!({
                "name": n.get("name"),
                "count": n.get("count"),
                "config": n.get("config"),
                "podTemplate": n.get("podTemplate"),
            })
        })
        .collect();
    let inputs = json!({
        "version": s(es, "/spec/version"),
        "nodeSets": sets,
        "remoteClusterServer": rcs_enabled(es),
        "keystore": if file_based { "" } else { keystore_hash },
        "fileBasedSecureSettings": file_based,
        "annotations": propagated_annotations(es),
    });
    sha256_fingerprint(&serde_json::to_vec(&inputs).unwrap_or_default())
}

/// `spec.nodeSets[]`: (name, count, config).
fn node_sets(es: &Value) -> Vec<(String, u64, Value)> {
    crate::world::node_sets(es)
        .iter()
        .map(|n| {
            (
                s(n, "/name").to_string(),
                n.get("count").and_then(Value::as_u64).unwrap_or(1),
                n.get("config").cloned().unwrap_or(Value::Null),
            )
        })
        .collect()
}

impl Operator {
    pub(crate) fn new(
        state: Arc<ClusterState>,
        world: Arc<World>,
        delay: Duration,
        cluster_index: usize,
    ) -> Operator {
        Operator {
            state,
            world,
            delay,
            runtime: HashMap::new(),
            pod_ips: HashMap::new(),
            next_ip: 0,
            cluster_index,
            status: Arc::new(OperatorStatus::default()),
            licence_report: licence::Reporter::new(licence::REPORT_INTERVAL),
            requeue: false,
            reaction_delay: Duration::ZERO,
            seen_secrets: HashMap::new(),
            unseen_changes: HashMap::new(),
            errors: Vec::new(),
        }
    }

    /// The data of Secret `ns/name` as the operator sees it: a change reaches it only
    /// `reaction_delay` after it was first noticed.
    fn secure_settings_secret(&mut self, ns: &str, name: &str) -> Option<BTreeMap<String, String>> {
        let current = self.secret_data(ns, name);
        if self.reaction_delay.is_zero() {
            return current;
        }
        let key = (ns.to_string(), name.to_string());
        let version = self
            .state
            .get(&ResourceKey::SECRETS, Some(ns), name)
            .ok()
            .map(|secret| s(&secret, "/metadata/resourceVersion").to_string())
            .unwrap_or_default();
        let Some((seen_version, seen_data)) = self.seen_secrets.get(&key).cloned() else {
            self.seen_secrets.insert(key, (version, current.clone()));
            return current;
        };
        if seen_version == version {
            self.unseen_changes.remove(&key);
            return seen_data;
        }
        let noticed = match self.unseen_changes.get(&key) {
            Some((v, at)) if *v == version => *at,
            _ => {
                let now = Instant::now();
                self.unseen_changes
                    .insert(key.clone(), (version.clone(), now));
                now
            }
        };
        if noticed.elapsed() < self.reaction_delay {
            return seen_data;
        }
        self.unseen_changes.remove(&key);
        self.seen_secrets.insert(key, (version, current.clone()));
        current
    }

    /// Installs the licence of `level` (see [`crate::licence`]) and writes the first report.
    pub(crate) fn install(&mut self, level: &str) {
        licence::install(&self.state, level);
        self.licence_report.tick(&self.state);
    }

    fn enterprise(&self) -> bool {
        licence::enterprise_enabled(&self.state)
    }

    // ------------------------------------------------------------------ store writes

    /// Creates `obj` or merge-patches it onto the existing one (a no-op patch is not stored);
    /// its `status` goes through the status subresource.
    fn apply(&self, key: &ResourceKey, mut obj: Value) {
        let ns = s(&obj, "/metadata/namespace").to_string();
        let name = s(&obj, "/metadata/name").to_string();
        let status = obj.as_object_mut().and_then(|m| m.remove("status"));
        let written = if self.state.get(key, Some(&ns), &name).is_ok() {
            self.merge_patch(key, &ns, &name, &obj, Sub::Main)
        } else {
            let created = self.state.create(key, Some(&ns), obj, WriteOpts::default());
            self.report(key, &ns, &name, created.map(|_| ()))
        };
        if written && let Some(st) = status {
            self.merge_patch(key, &ns, &name, &json!({ "status": st }), Sub::Status);
        }
    }

    /// Merge-patches the main resource or its status; whether it worked.
    fn merge_patch(
        &self,
        key: &ResourceKey,
        ns: &str,
        name: &str,
        patch: &Value,
        sub: Sub,
    ) -> bool {
        let patched = self.state.patch(
            key,
            Some(ns),
            name,
            PatchType::Merge,
            &serde_json::to_vec(patch).unwrap_or_default(),
            sub,
            WriteOpts::default(),
        );
        self.report(key, ns, name, patched.map(|_| ()))
    }

    /// Logs a failed write (the operator goes on, as ECK requeues); whether it worked.
    fn report(&self, key: &ResourceKey, ns: &str, name: &str, r: Result<(), ApiError>) -> bool {
        if let Err(e) = &r {
            eprintln!(
                "sandbox operator {}: writing {}/{ns}/{name}: {e}",
                self.state.name, key.plural
            );
        }
        r.is_ok()
    }

    fn delete(&self, key: &ResourceKey, ns: &str, name: &str) {
        let _ = self
            .state
            .delete(key, Some(ns), name, None, WriteOpts::default());
    }

    fn secret(&self, ns: &str, name: &str, labels: Value, data: &BTreeMap<String, String>) {
        self.apply(
            &ResourceKey::SECRETS,
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": name, "namespace": ns, "labels": labels},
                "type": "Opaque",
                "data": encoded(data),
            }),
        );
    }

    /// [`Self::secret`], and the keys outside `data` removed: ECK replaces the data of the
    /// Secrets it reconciles (`reconciler.ReconcileSecret`), where a merge keeps old keys.
    fn secret_replacing(
        &self,
        ns: &str,
        name: &str,
        labels: Value,
        data: &BTreeMap<String, String>,
    ) {
        self.secret(ns, name, labels, data);
        let stale: serde_json::Map<String, Value> = self
            .secret_data(ns, name)
            .unwrap_or_default()
            .into_keys()
            .filter(|k| !data.contains_key(k))
            .map(|k| (k, Value::Null))
            .collect();
        if !stale.is_empty() {
            self.merge_patch(
                &ResourceKey::SECRETS,
                ns,
                name,
                &json!({ "data": stale }),
                Sub::Main,
            );
        }
    }

    /// Secret data, decoded.
    fn secret_data(&self, ns: &str, name: &str) -> Option<BTreeMap<String, String>> {
        let sec = self.state.get(&ResourceKey::SECRETS, Some(ns), name).ok()?;
        Some(
            sec.get("data")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| crate::world::decode_b64(v).map(|d| (k.clone(), d)))
                .collect(),
        )
    }

    /// Elasticsearch's file-based settings (operator mode): the `settings.json` of Secret
    /// `<es>-es-file-settings`, which ECK's StackConfigPolicy controller writes and every node
    /// mounts, applies without a restart; its cluster settings become reserved. The sandbox has
    /// no StackConfigPolicy controller: tests write that Secret as the controller would.
    fn file_settings(&self, id: &EsId) {
        let name = format!("{}-es-file-settings", id.name);
        let Some(data) = self.secret_data(&id.namespace, &name) else {
            return;
        };
        let Some(file) = data
            .get("settings.json")
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
        else {
            return;
        };
        let cluster_settings = file
            .pointer("/state/cluster_settings")
            .cloned()
            .unwrap_or(Value::Null);
        self.world
            .with_node_mut(id, |n| n.apply_file_settings(&cluster_settings));
    }

    // ------------------------------------------------------------------ the loop

    /// One reconciliation of every Elasticsearch; records in [`OperatorStatus`] whether it
    /// changed the store and how many rollouts run.
    pub(crate) fn pass(&mut self) {
        self.licence_report.tick(&self.state);
        self.requeue = false;
        let rv_before = self.state.resource_version();
        let all = list(&self.state, &ResourceKey::ELASTICSEARCHES, None, None);
        let enterprise = self.enterprise();
        let mut live = BTreeSet::new();
        for es in &all {
            let key = (
                s(es, "/metadata/namespace").to_string(),
                s(es, "/metadata/name").to_string(),
            );
            live.insert(key.clone());
            if es.pointer("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            self.reconcile_es(es, &all, enterprise);
        }
        if enterprise {
            self.remote_ca_cleanup(&all);
        }
        // Deleted Elasticsearch: their objects and node go too (owner references / GC).
        let gone: Vec<(String, String)> = self
            .runtime
            .keys()
            .filter(|k| !live.contains(*k))
            .cloned()
            .collect();
        for (ns, name) in gone {
            self.runtime.remove(&(ns.clone(), name.clone()));
            let sel = format!("{LABEL_CLUSTER_NAME}={name}");
            for key in [
                ResourceKey::PODS,
                ResourceKey::SERVICES,
                ResourceKey::SECRETS,
            ] {
                for o in list(&self.state, &key, Some(&ns), Some(&sel)) {
                    self.delete(&key, &ns, s(&o, "/metadata/name"));
                }
            }
            self.world
                .remove_node(&EsId::new(&self.state.name, &ns, &name));
        }
        // A Secret change the operator has not seen yet is work ahead, like a rollout.
        let rollouts = self
            .runtime
            .values()
            .filter(|r| r.rollout.is_some())
            .count()
            + self.unseen_changes.len();
        self.status.rollouts.store(rollouts, Ordering::SeqCst);
        let rv_after = self.state.resource_version();
        *self.status.settled_rv.lock().expect("settled") =
            (rv_before == rv_after && !self.requeue).then_some(rv_after);
    }

    /// When the next timed step is due (a rollout moving on).
    fn next_deadline(&self) -> Option<Instant> {
        let reactions = self
            .unseen_changes
            .values()
            .map(|(_, noticed)| *noticed + self.reaction_delay);
        self.runtime
            .values()
            .filter_map(|r| r.rollout.as_ref())
            .map(|r| {
                let elapsed = r.started.elapsed();
                let step = self.delay / 4;
                let next = if step.is_zero() {
                    self.delay
                } else {
                    ((elapsed.as_nanos() / step.as_nanos()) as u32 + 1) * step
                };
                r.started + next.min(self.delay)
            })
            .chain(reactions)
            .min()
    }

    pub(crate) fn events(&self) -> broadcast::Receiver<crate::cluster::WatchEvent> {
        self.state.events.subscribe()
    }

    pub(crate) async fn run(
        mut self,
        mut events: broadcast::Receiver<crate::cluster::WatchEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        self.pass();
        loop {
            let wait = self
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(1));
            tokio::select! {
                r = events.recv() => {
                    if let Err(broadcast::error::RecvError::Closed) = r {
                        break;
                    }
                    // Coalesce a burst of changes into one pass.
                    while events.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
            self.pass();
        }
    }

    // ------------------------------------------------------------------ one Elasticsearch

    fn reconcile_es(&mut self, es: &Value, all: &[Value], enterprise: bool) {
        let ns = s(es, "/metadata/namespace").to_string();
        let name = s(es, "/metadata/name").to_string();
        let id = EsId::new(&self.state.name, &ns, &name);
        if !self.state.webhook()
            && let Some(invalid) = crate::admission::invalid_message(es, None)
        {
            self.mark_invalid(es, &invalid);
            return;
        }
        let certs = match self.world.certs(&id) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("sandbox operator: certificates for {id}: {e}");
                return;
            }
        };

        // Secrets: elastic user, public certificates.
        let disable_elastic = es
            .pointer("/spec/auth/disableElasticUser")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let user_secret = format!("{name}-es-elastic-user");
        let password = if disable_elastic {
            self.delete(&ResourceKey::SECRETS, &ns, &user_secret);
            None
        } else {
            let pw = secret_key(&self.state, &ns, &user_secret, "elastic")
                .unwrap_or_else(random_password);
            self.secret(
                &ns,
                &user_secret,
                es_labels(&name, &[("eck.k8s.elastic.co/credentials", "true")]),
                &BTreeMap::from([("elastic".to_string(), pw.clone())]),
            );
            Some(pw)
        };
        self.secret_replacing(
            &ns,
            &format!("{name}-es-http-certs-public"),
            es_labels(&name, &[]),
            &crate::http_tls::public_secret_data(&self.state, &ns, es, &certs.http),
        );
        self.errors.clear();
        // ECK reconciles the Services before the transport certificates.
        self.services(es, &ns, &name);
        let mut transport_bundle = certs.transport_ca_pem.clone();
        if let Some(cm) = es
            .pointer("/spec/transport/tls/certificateAuthorities/configMapName")
            .and_then(Value::as_str)
        {
            // `transport.ReconcileAdditionalCAs`: a missing ConfigMap or one without `ca.crt`
            // stops this reconcile (`certificates.ReconcileTransport` emits the Warning event,
            // `driver/shared/reconcile.go` returns before the license, remote settings and
            // node specs).
            let configmap = self.state.get(&ResourceKey::CONFIGMAPS, Some(&ns), cm).ok();
            let extra = configmap
                .as_ref()
                .map(|c| c.pointer("/data/ca.crt").and_then(Value::as_str));
            let failure = match extra {
                None => Some(format!(
                    "could not retrieve config map {ns}/{cm} specified in spec.transport.tls.certificateAuthorities: configmaps \"{cm}\" not found"
                )),
                Some(None) => Some(format!(
                    "config map {ns}/{cm} specified in spec.transport.tls.certificateAuthorities must contain ca.crt file"
                )),
                Some(Some(extra)) => {
                    if !transport_bundle.ends_with('\n') {
                        transport_bundle.push('\n');
                    }
                    transport_bundle.push_str(extra);
                    None
                }
            };
            if let Some(failure) = failure {
                self.warning_event(es, "Unexpected", "GetSecret", &failure);
                self.errors.push(failure);
                if enterprise {
                    // The remotecluster controller is another controller: it goes on.
                    self.remote_server(es, all);
                }
                self.error_status(es);
                return;
            }
        }
        self.secret(
            &ns,
            &format!("{name}-es-transport-certs-public"),
            es_labels(&name, &[]),
            &BTreeMap::from([("ca.crt".to_string(), transport_bundle)]),
        );

        // The node.
        let version = s(es, "/spec/version").to_string();
        if !self.world.has_node(&id) {
            let mut node = ElasticsearchNode::new(id.clone(), &version, "");
            node.elastic_password = password.clone();
            node.transport_ca_fingerprint = certs.transport_ca_fingerprint.clone();
            self.world.insert_node(node);
        } else {
            self.world.with_node_mut(&id, |n| {
                n.elastic_password = password.clone();
                n.transport_ca_fingerprint = certs.transport_ca_fingerprint.clone();
            });
        }

        self.file_settings(&id);
        // Remote clusters (remotecluster controller, this ES as the server), licence-gated.
        if enterprise {
            self.remote_server(es, all);
        }
        self.aggregate_remote_cas(&ns, &name, &certs.transport_ca_pem);
        // `remotecluster.UpdateSettings`, only while Elasticsearch is reachable
        // (`driver/shared/reconcile.go` l.293-305); without a licence only an alias cleanup
        // runs (no spec entries, the annotation still naming some).
        let in_spec = es
            .pointer("/spec/remoteClusters")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        let reachable = self
            .world
            .read_node(&id, |n| n.is_formed())
            .unwrap_or(false);
        if reachable && in_spec && !enterprise {
            self.license_event(es);
        } else if reachable && (in_spec || annotation(es, ANN_MANAGED_REMOTES).is_some()) {
            self.remote_settings(es);
        }

        // Rollout, once the secure settings could be read (`reconcileSecureSettings` returns
        // before the node specs otherwise).
        let keystore = match self.keystore(es) {
            Ok(keystore) => keystore,
            Err(failure) => {
                self.errors.push(failure);
                self.error_status(es);
                return;
            }
        };
        let hash = sha256_fingerprint(&serde_json::to_vec(&keystore).unwrap_or_default());
        self.rollout(es, &id, keystore, hash);
    }

    /// ECK's Services of `es`. The HTTP, transport and remote cluster server Services start from
    /// the user's template (`spec.<http|transport|remoteClusterServer>.service`: metadata and the
    /// whole spec, as `NewTransportService`/`NewRemoteClusterService` copy it); ECK fills in only
    /// what the template leaves unset (`defaults.SetServiceDefaults`: ports and selector when
    /// nil, labels and annotations by key), makes an untyped transport or RCS Service headless,
    /// and sets `publishNotReadyAddresses: true` on both whatever their type. The per-nodeSet
    /// headless Services carry the HTTP port and, with the RCS on, `rcs` (`nodespec.HeadlessService`).
    fn services(&self, es: &Value, ns: &str, name: &str) {
        let selector = es_labels(name, &[]);
        let lbl = selector.clone();
        let port = |pname: &str, p: u16| json!({"name": pname, "port": p, "protocol": "TCP", "targetPort": p});
        let template = |ptr: &str| es.pointer(ptr).cloned().unwrap_or(Value::Null);
        let http = ServiceOf {
            name: format!("{name}-es-http"),
            template: template("/spec/http/service"),
            ports: json!([port("https", 9200)]),
            selector: selector.clone(),
            headless_when_untyped: false,
            publish_not_ready: false,
        };
        let internal = ServiceOf {
            name: format!("{name}-es-internal-http"),
            // Not from the user's template (`NewInternalService`).
            template: Value::Null,
            ports: json!([port("https", 9200)]),
            selector: selector.clone(),
            headless_when_untyped: false,
            publish_not_ready: false,
        };
        let transport = ServiceOf {
            name: format!("{name}-es-transport"),
            template: template("/spec/transport/service"),
            ports: json!([port("tls-transport", 9300)]),
            selector: selector.clone(),
            headless_when_untyped: true,
            publish_not_ready: true,
        };
        for svc in [http, internal, transport] {
            self.service(ns, &lbl, svc);
        }
        let rcs = rcs_enabled(es);
        let rcs_name = format!("{name}-es-remote-cluster");
        if rcs {
            self.service(
                ns,
                &lbl,
                ServiceOf {
                    name: rcs_name.clone(),
                    template: template("/spec/remoteClusterServer/service"),
                    ports: json!([port("rcs", 9443)]),
                    selector: selector.clone(),
                    headless_when_untyped: true,
                    publish_not_ready: true,
                },
            );
        } else {
            self.delete(&ResourceKey::SERVICES, ns, &rcs_name);
        }
        let mut wanted_sets = BTreeSet::new();
        for (set, _, _) in node_sets(es) {
            let sts = format!("{name}-es-{set}");
            wanted_sets.insert(sts.clone());
            let mut ports = vec![port("https", 9200)];
            if rcs {
                ports.push(port("rcs", 9443));
            }
            let sel = labels_of(&[(LABEL_CLUSTER_NAME, name), (LABEL_STATEFULSET, &sts)]);
            self.service(
                ns,
                &lbl,
                ServiceOf {
                    name: sts,
                    template: Value::Null,
                    ports: Value::Array(ports),
                    selector: sel,
                    headless_when_untyped: true,
                    publish_not_ready: true,
                },
            );
        }
        // Headless Services of removed nodeSets.
        let fixed = [
            format!("{name}-es-http"),
            format!("{name}-es-internal-http"),
            format!("{name}-es-transport"),
            rcs_name,
        ];
        let sel = format!("{LABEL_CLUSTER_NAME}={name}");
        for o in list(&self.state, &ResourceKey::SERVICES, Some(ns), Some(&sel)) {
            let n = s(&o, "/metadata/name").to_string();
            if !fixed.contains(&n) && !wanted_sets.contains(&n) {
                self.delete(&ResourceKey::SERVICES, ns, &n);
            }
        }
    }

    /// Creates or updates one Service as ECK's `ReconcileService` does: the expected spec
    /// replaces the stored one (fields the template no longer sets go), except what the API
    /// server assigned (`clusterIP`, `clusterIPs`); a change between headless and not is a
    /// re-creation (`clusterIP` is immutable).
    fn service(&self, ns: &str, default_labels: &Value, svc: ServiceOf) {
        let ServiceOf {
            name,
            template,
            ports,
            selector,
            headless_when_untyped,
            publish_not_ready,
        } = svc;
        let mut spec = match template.get("spec") {
            Some(Value::Object(m)) => Value::Object(m.clone()),
            _ => json!({}),
        };
        let untyped = spec
            .get("type")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if untyped {
            spec["type"] = json!("ClusterIP");
        }
        let headless = untyped && headless_when_untyped;
        if headless {
            spec["clusterIP"] = json!("None");
        }
        if publish_not_ready {
            spec["publishNotReadyAddresses"] = json!(true);
        }
        // Go's nil: an absent or null field; an empty list or map is the user's.
        if spec.get("ports").is_none_or(Value::is_null) {
            spec["ports"] = ports;
        }
        if spec.get("selector").is_none_or(Value::is_null) {
            spec["selector"] = selector;
        }
        let ty = s(&spec, "/type").to_string();
        let merged = |key: &str, defaults: &Value| {
            // The template's keys win (`MergePreservingExistingKeys`).
            let mut m = defaults.as_object().cloned().unwrap_or_default();
            if let Some(user) = template
                .pointer(&format!("/metadata/{key}"))
                .and_then(Value::as_object)
            {
                m.extend(user.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            Value::Object(m)
        };
        let labels = merged("labels", default_labels);
        let annotations = merged("annotations", &json!({}));
        let existing = self.state.get(&ResourceKey::SERVICES, Some(ns), &name).ok();
        let existing = existing.filter(|ex| {
            let is_none = s(ex, "/spec/clusterIP") == "None";
            if is_none != headless {
                self.delete(&ResourceKey::SERVICES, ns, &name);
                return false;
            }
            true
        });
        let status = if ty == "LoadBalancer" {
            json!({"loadBalancer": {"ingress": [{"hostname": format!("{name}-{ns}.{}.lb.invalid", self.state.name)}]}})
        } else {
            json!({"loadBalancer": {}})
        };
        let mut metadata = json!({"name": name, "namespace": ns, "labels": labels});
        if annotations.as_object().is_some_and(|a| !a.is_empty()) {
            metadata["annotations"] = annotations;
        }
        let mut obj = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": metadata,
            "spec": spec,
            "status": status,
        });
        if let Some(ex) = existing {
            // What the stored spec has and the expected one does not goes (nested maps such
            // as the selector too); the API server's assignments stay.
            let old_spec = ex.get("spec").cloned().unwrap_or(Value::Null);
            removals(&old_spec, &mut obj["spec"], &["clusterIP", "clusterIPs"]);
        }
        self.apply(&ResourceKey::SERVICES, obj);
    }

    /// Union of the `spec.secureSettings` Secrets and `<es>-es-remote-api-keys`
    /// (`<es>-es-secure-settings`).
    /// ECK's `retrieveUserSecrets` (`common/keystore/user_secret.go`): a missing Secret is a
    /// Warning event and is skipped; `entries: []`, an entry without key and a key the Secret
    /// lacks are errors.
    fn keystore(&mut self, es: &Value) -> Result<BTreeMap<String, String>, String> {
        let ns = s(es, "/metadata/namespace");
        let name = s(es, "/metadata/name");
        let mut out = BTreeMap::new();
        for src in es
            .pointer("/spec/secureSettings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let secret_name = s(src, "/secretName");
            let Some(data) = self.secure_settings_secret(ns, secret_name) else {
                self.warning_event(
                    es,
                    "Unexpected",
                    "GetSecret",
                    &format!("Secure settings secret not found: {ns}/{secret_name}"),
                );
                continue;
            };
            match src.get("entries") {
                None | Some(Value::Null) => out.extend(data),
                Some(entries) => {
                    let entries = entries.as_array().map(Vec::as_slice).unwrap_or_default();
                    if entries.is_empty() {
                        return Err(format!(
                            "set is empty in secure settings secret {secret_name}"
                        ));
                    }
                    for e in entries {
                        let key = s(e, "/key");
                        if key.is_empty() {
                            return Err(format!(
                                "key is empty in secure settings secret {secret_name}"
                            ));
                        }
                        let Some(v) = data.get(key) else {
                            return Err(format!(
                                "key {key} not found in secure settings secret {secret_name}"
                            ));
                        };
                        let path = match s(e, "/path") {
                            "" => key,
                            p => p,
                        };
                        out.insert(path.to_string(), v.clone());
                    }
                }
            }
        }
        if let Some(data) = self.secure_settings_secret(ns, &format!("{name}-es-remote-api-keys")) {
            out.extend(data);
        }
        Ok(out)
    }

    fn rollout(&mut self, es: &Value, id: &EsId, keystore: BTreeMap<String, String>, hash: String) {
        let ns = id.namespace.clone();
        let name = id.name.clone();
        let generation = es
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let observed = es
            .pointer("/status/observedGeneration")
            .and_then(Value::as_i64);
        let key = (ns.clone(), name.clone());
        let version = s(es, "/spec/version").to_string();
        let file_based = file_based_secure_settings(es);
        let template = pod_template_hash(es, &hash, file_based);
        if !self.runtime.contains_key(&key) {
            // First sight: a seeded status that is caught up is the truth (pods were running).
            let rt = if observed == Some(generation) {
                self.finish_node(id, es, &keystore);
                EsRuntime {
                    applied_template: template.clone(),
                    applied_keystore: hash.clone(),
                    rollout: None,
                }
            } else {
                EsRuntime {
                    applied_template: String::new(),
                    applied_keystore: String::new(),
                    rollout: Some(Rollout {
                        template: template.clone(),
                        keystore: keystore.clone(),
                        keystore_hash: hash.clone(),
                        started: Instant::now(),
                        initial: true,
                    }),
                }
            };
            self.runtime.insert(key.clone(), rt);
        }
        let delay = self.delay;
        let rt = self.runtime.get_mut(&key).expect("runtime entry");
        if rt.rollout.is_none() && file_based && rt.applied_keystore != hash {
            // ECK >= 3.5 with ES >= 9.5 writes the secrets into the file-based settings, which
            // Elasticsearch applies in place: no restart, no reload call (real-behaviour.md 9).
            rt.applied_keystore = hash.clone();
            self.world
                .with_node_mut(id, |n| n.keystore = keystore.clone());
            self.world.set_pending_keystore(id, None);
        }
        if rt.rollout.is_none() && rt.applied_template != template {
            rt.rollout = Some(Rollout {
                template: template.clone(),
                keystore: keystore.clone(),
                keystore_hash: hash.clone(),
                started: Instant::now(),
                initial: false,
            });
        }
        let total: u64 = node_sets(es).iter().map(|x| x.1).sum();
        let mut finished = None;
        let mut restarting = None;
        if let Some(r) = &rt.rollout {
            let elapsed = r.started.elapsed();
            if elapsed >= delay {
                finished = rt.rollout.take();
            } else if r.initial {
                restarting = Some(PodsReady::Zero);
            } else {
                let step = delay.as_nanos() / total.max(1) as u128;
                let i = (elapsed.as_nanos() / step.max(1)) as usize;
                restarting = Some(PodsReady::AllBut(i.min(total.saturating_sub(1) as usize)));
            }
        }
        if let Some(r) = &finished {
            rt.applied_template = r.template.clone();
            // The keystore the restarted nodes read, not one changed since it began.
            rt.applied_keystore = r.keystore_hash.clone();
        }
        let status_now = es.get("status").cloned().unwrap_or(Value::Null);
        let formed = self.world.read_node(id, |n| n.is_formed()).unwrap_or(true);
        if let Some(r) = finished {
            let formed = self.finish_node(id, es, &r.keystore);
            if formed {
                self.formed_status(es, total, generation, &version);
            } else {
                self.not_formed_status(es, Some(generation), &version);
            }
        } else if let Some(ready) = restarting {
            // Nodes that cannot form a cluster stay not Ready while others restart.
            let ready = if formed { ready } else { PodsReady::Zero };
            self.pods(es, ready);
            let one_down = matches!(ready, PodsReady::AllBut(_));
            let (avail, health) = if one_down {
                let health = match s(&status_now, "/health") {
                    "" => "green",
                    h => h,
                };
                (total.saturating_sub(1), health.to_string())
            } else {
                (0, "unknown".to_string())
            };
            let shown_version = match s(&status_now, "/version") {
                "" if one_down => version.clone(),
                "" => String::new(),
                v => v.to_string(),
            };
            // ECK sets observedGeneration when a reconcile starts, not when the rollout ends
            // (`reconcile/state.go`): only the phase and `ReconciliationComplete` show it.
            self.write_status(
                es,
                "ApplyingChanges",
                &health,
                avail,
                Some(generation),
                &shown_version,
            );
        } else if !formed {
            // Until a rollout brings another configuration, the nodes stay apart.
            let shown_version = match s(&status_now, "/version") {
                "" => version.clone(),
                v => v.to_string(),
            };
            self.not_formed_status(es, Some(generation), &shown_version);
        } else {
            self.hot_reload_transport_certificates(id, es);
            self.pods(es, PodsReady::All);
            if !self.errors.is_empty() || reported_error(es) || observed != Some(generation) {
                self.steady_status(es, total, "Ready");
            }
        }
    }

    /// ECK reissues the transport certificates (a Secret, reloaded by Elasticsearch without a
    /// restart) when `otherNameSuffix` changes: the nodes present the new names.
    fn hot_reload_transport_certificates(&self, id: &EsId, es: &Value) {
        let names: Vec<String> = pods_of(es)
            .iter()
            .map(|p| transport_node_name(es, &p.name))
            .collect();
        let changed = self
            .world
            .read_node(id, |n| n.transport_node_names != names)
            .unwrap_or(false);
        if changed {
            self.world
                .with_node_mut(id, |n| n.transport_node_names = names);
            let formation = self.formation(id, es);
            self.world.with_node_mut(id, |n| n.formation = formation);
        }
    }

    /// The status of a reconcile that stopped on an error: what it said, with the error.
    fn error_status(&mut self, es: &Value) {
        let available = es
            .pointer("/status/availableNodes")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let phase = match s(es, "/status/phase") {
            "" => "ApplyingChanges",
            p => p,
        }
        .to_string();
        self.steady_status(es, available, &phase);
    }

    /// Writes the status as it stands (health, version) with `phase`, the errors of this
    /// reconcile and, as ECK at every status update, the generation observed.
    fn steady_status(&mut self, es: &Value, available: u64, phase: &str) {
        let health = match s(es, "/status/health") {
            "" => "unknown",
            h => h,
        }
        .to_string();
        let version = s(es, "/status/version").to_string();
        let generation = es.pointer("/metadata/generation").and_then(Value::as_i64);
        self.write_status(es, phase, &health, available, generation, &version);
    }

    /// ECK's aggregate of this reconcile's errors (`k8s.io/apimachinery` `NewAggregate`): one
    /// error as it is, several as `[a, b]`.
    fn errors_message(&self) -> Option<String> {
        match self.errors.as_slice() {
            [] => None,
            [one] => Some(one.clone()),
            many => Some(format!("[{}]", many.join(", "))),
        }
    }

    /// Every pod Ready, phase `Ready`, health kept (green when it was unknown), the rolled out
    /// generation observed.
    fn formed_status(&mut self, es: &Value, total: u64, generation: i64, version: &str) {
        self.pods(es, PodsReady::All);
        let health = match s(es, "/status/health") {
            "" | "unknown" => "green",
            h => h,
        }
        .to_string();
        self.write_status(es, "Ready", &health, total, Some(generation), version);
    }

    /// The pods run but none is Ready; ECK cannot reach Elasticsearch: `ApplyingChanges`,
    /// health `unknown`, no available node. `observed`: `None` keeps the current one.
    fn not_formed_status(&mut self, es: &Value, observed: Option<i64>, version: &str) {
        self.pods(es, PodsReady::Zero);
        self.write_status(es, "ApplyingChanges", "unknown", 0, observed, version);
    }

    /// Whether the nodes of `es` form a cluster with the transport trust restrictions of their
    /// nodeSets: a nodeSet whose file cannot be read or parsed does not start; otherwise every
    /// node must accept the transport certificate of every other node (each connection is
    /// mutual TLS). A node does not connect to itself, so a single node always forms.
    fn formation(&self, id: &EsId, es: &Value) -> ClusterFormation {
        if let Some(reason) = self.world.node_set_start_failure(id) {
            return ClusterFormation::NodesNotStarted { reason };
        }
        let restrictions = self.world.node_set_restrictions(id);
        for (set, r) in &restrictions {
            if let Some(Err(e)) = r {
                return ClusterFormation::NodesNotStarted {
                    reason: format!("nodeSet [{set}]: {e}"),
                };
            }
        }
        let members = pods_of(es);
        for (xi, x) in members.iter().enumerate() {
            let Some((set_name, Some(Ok(patterns)))) = restrictions.get(x.set_index) else {
                continue;
            };
            let xpod = &x.name;
            for (yi, y) in members.iter().enumerate() {
                let ypod = &y.name;
                if xi == yi {
                    continue;
                }
                let cert = transport_node_name(es, ypod);
                if !patterns.iter().any(|p| subject_name_matches(p, &cert)) {
                    return ClusterFormation::NoMaster {
                        reason: format!(
                            "node [{xpod}] of nodeSet [{set_name}] rejects the transport certificate of [{cert}], which matches none of its trust restrictions {patterns:?}"
                        ),
                    };
                }
            }
        }
        ClusterFormation::Formed
    }

    /// The node as it runs after a (re)start: keystore, version, nodes, listeners, and whether
    /// its nodes form a cluster (returned).
    fn finish_node(&self, id: &EsId, es: &Value, keystore: &BTreeMap<String, String>) -> bool {
        let version = s(es, "/spec/version").to_string();
        let pods = pods_of(es);
        let names: Vec<String> = pods.iter().map(|p| p.name.clone()).collect();
        let rcs = rcs_enabled(es);
        let ns = id.namespace.clone();
        self.world.with_node_mut(id, |n| {
            n.keystore = keystore.clone();
            if let Some(v) = EsVersion::parse(&version) {
                n.version = v;
            }
            if n.node_names != names {
                n.set_nodes(&names);
            }
            // ECK reissues the transport certificates when `otherNameSuffix` changes.
            n.transport_node_names = names.iter().map(|p| transport_node_name(es, p)).collect();
            // ECK: remote_cluster.publish_host = <pod>.<headless>.<ns>.svc; transport publishes
            // the pod IP (filled in by `pods`).
            n.publish_addresses.remote_cluster = if rcs {
                pods.iter()
                    .map(|p| format!("{}.{}.{ns}.svc:9443", p.name, p.statefulset))
                    .collect()
            } else {
                Vec::new()
            };
        });
        self.world.set_rcs_running(id, rcs);
        let formation = self.formation(id, es);
        let formed = formation == ClusterFormation::Formed;
        self.world.with_node_mut(id, |n| n.formation = formation);
        self.world.restart_connections(id);
        formed
    }

    /// Merge-patches the status of `es` with ECK's conditions derived from the other fields
    /// (a condition keeps its `lastTransitionTime` while its status stays). `observed: None`
    /// and an empty `version` leave those fields as they are.
    fn write_status(
        &self,
        es: &Value,
        phase: &str,
        health: &str,
        available: u64,
        observed: Option<i64>,
        version: &str,
    ) {
        let now = now_rfc3339();
        let cond = |ty: &str, st: bool| {
            let st = if st { "True" } else { "False" };
            let existing = es
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|l| l.iter().find(|c| s(c, "/type") == ty));
            let ltt = match existing {
                Some(c) if s(c, "/status") == st => s(c, "/lastTransitionTime").to_string(),
                _ => now.clone(),
            };
            json!({"type": ty, "status": st, "lastTransitionTime": ltt})
        };
        // An error of this reconcile: not reconciled, whatever the rollout says
        // (`elasticsearch_controller.go`, `results.IsReconciled()`).
        let phase = if self.errors.is_empty() {
            phase
        } else {
            "ApplyingChanges"
        };
        let ready = phase == "Ready";
        let spec_version = s(es, "/spec/version");
        let mut reconciled = cond("ReconciliationComplete", ready);
        if let Some(message) = self.errors_message() {
            reconciled["message"] = json!(message);
        }
        let mut st = json!({
            "availableNodes": available,
            "health": health,
            "phase": phase,
            "conditions": [
                reconciled,
                cond("RunningDesiredVersion", version == spec_version),
                cond("ElasticsearchIsReachable", available > 0),
            ],
        });
        if !version.is_empty() {
            st["version"] = json!(version);
        }
        if let Some(o) = observed {
            st["observedGeneration"] = json!(o);
        }
        self.merge_patch(
            &ResourceKey::ELASTICSEARCHES,
            s(es, "/metadata/namespace"),
            s(es, "/metadata/name"),
            &json!({ "status": st }),
            Sub::Status,
        );
    }

    /// Pods of every nodeSet, `ready` as the rollout has it.
    fn pods(&mut self, es: &Value, ready: PodsReady) {
        let ns = s(es, "/metadata/namespace").to_string();
        let name = s(es, "/metadata/name").to_string();
        let id = EsId::new(&self.state.name, &ns, &name);
        let running_version = self
            .world
            .read_node(&id, |n| n.version.to_string())
            .unwrap_or_else(|| s(es, "/spec/version").to_string());
        let sets = node_sets(es);
        let revision_of = self.pod_revisions(&ns, &name, ready);
        let mut wanted = BTreeSet::new();
        let mut publish = Vec::new();
        for (index, p) in pods_of(es).into_iter().enumerate() {
            let (pod, sts) = (p.name, p.statefulset);
            let roles = crate::world::flatten_config(&sets[p.set_index].2)
                .get("node.roles")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                });
            let has = |r: &str| roles.as_ref().is_none_or(|l| l.iter().any(|x| x == r));
            wanted.insert(pod.clone());
            let ready = match ready {
                PodsReady::All => true,
                PodsReady::Zero => false,
                PodsReady::AllBut(d) => d != index,
            };
            let ip = self
                .pod_ips
                .entry((ns.clone(), pod.clone()))
                .or_insert_with(|| {
                    self.next_ip += 1;
                    format!(
                        "10.{}.{}.{}",
                        244 + self.cluster_index % 10,
                        self.next_ip / 250,
                        self.next_ip % 250 + 2
                    )
                })
                .clone();
            publish.push(format!("{ip}:9300"));
            let revision = format!("{sts}-{}", revision_of(index));
            let mut extra: Vec<(String, String)> = vec![
                (LABEL_STATEFULSET.into(), sts.clone()),
                (LABEL_REVISION.into(), revision.clone()),
                (
                    "elasticsearch.k8s.elastic.co/version".into(),
                    running_version.clone(),
                ),
                (
                    "elasticsearch.k8s.elastic.co/http-scheme".into(),
                    crate::http_tls::scheme(es).into(),
                ),
            ];
            for role in [
                "master",
                "data",
                "ingest",
                "ml",
                "transform",
                "remote_cluster_client",
            ] {
                extra.push((
                    format!("elasticsearch.k8s.elastic.co/node-{role}"),
                    has(role).to_string(),
                ));
            }
            let extra: Vec<(&str, &str)> = extra
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let labels = es_labels(&name, &extra);
            let rs = if ready { "True" } else { "False" };
            let mut ports = vec![
                json!({"containerPort": 9200, "name": "https", "protocol": "TCP"}),
                json!({"containerPort": 9300, "name": "transport", "protocol": "TCP"}),
            ];
            if rcs_enabled(es) {
                ports.push(json!({"containerPort": 9443, "name": "rcs", "protocol": "TCP"}));
            }
            let mut existing = self.state.get(&ResourceKey::PODS, Some(&ns), &pod).ok();
            if existing
                .as_ref()
                .is_some_and(|p| runs_another_revision(p, &revision))
            {
                // The StatefulSet controller replaces the pod: a new pod, with a new UID.
                self.delete(&ResourceKey::PODS, &ns, &pod);
                existing = None;
            }
            let now = now_rfc3339();
            let ltt = |ty: &str| {
                existing
                    .as_ref()
                    .and_then(|p| p.pointer("/status/conditions"))
                    .and_then(Value::as_array)
                    .and_then(|l| l.iter().find(|c| s(c, "/type") == ty))
                    .filter(|c| s(c, "/status") == rs)
                    .map(|c| s(c, "/lastTransitionTime").to_string())
                    .unwrap_or_else(|| now.clone())
            };
            let started = existing
                .as_ref()
                .map(|p| s(p, "/status/startTime").to_string())
                .filter(|x| !x.is_empty())
                .unwrap_or_else(|| now.clone());
            self.apply(
                    &ResourceKey::PODS,
                    json!({
                        "apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": pod, "namespace": ns, "labels": labels},
                        "spec": {
                            "hostname": pod,
                            "subdomain": sts,
                            "containers": [{
                                "name": "elasticsearch",
                                "image": format!("docker.elastic.co/elasticsearch/elasticsearch:{running_version}"),
                                "ports": ports,
                            }],
                        },
                        "status": {
                            "phase": "Running",
                            "podIP": ip,
                            "podIPs": [{"ip": ip}],
                            "startTime": started,
                            "conditions": [
                                {"type": "Ready", "status": rs, "lastTransitionTime": ltt("Ready")},
                                {"type": "ContainersReady", "status": rs, "lastTransitionTime": ltt("ContainersReady")},
                            ],
                        },
                    }),
                );
        }
        self.world
            .with_node_mut(&id, |n| n.publish_addresses.transport = publish);
        let sel = format!("{LABEL_CLUSTER_NAME}={name}");
        for p in list(&self.state, &ResourceKey::PODS, Some(&ns), Some(&sel)) {
            let n = s(&p, "/metadata/name").to_string();
            if !wanted.contains(&n) {
                self.delete(&ResourceKey::PODS, &ns, &n);
                self.pod_ips.remove(&(ns.clone(), n));
            }
        }
    }

    /// The revision (short pod template digest) each pod of `ns/name` runs, by pod index: during
    /// a rolling restart the pods up to the one restarting run the new template.
    fn pod_revisions(
        &self,
        ns: &str,
        name: &str,
        ready: PodsReady,
    ) -> impl Fn(usize) -> String + use<> {
        let rt = self.runtime.get(&(ns.to_string(), name.to_string()));
        let short = |t: &str| t.chars().take(10).collect::<String>();
        let applied = rt.map(|r| short(&r.applied_template)).unwrap_or_default();
        let rolling = rt
            .and_then(|r| r.rollout.as_ref())
            .map(|r| short(&r.template));
        move |index| match (ready, &rolling) {
            (PodsReady::AllBut(restarting), Some(new)) if index <= restarting => new.clone(),
            (PodsReady::Zero, Some(new)) => new.clone(),
            _ => applied.clone(),
        }
    }

    // ------------------------------------------------------------------ remote clusters

    /// `<es>-es-remote-ca`: every `type=remote-ca` Secret of this ES sorted by name, or its own
    /// transport CA when there is none (`certificates/remoteca/reconcile.go`).
    fn aggregate_remote_cas(&self, ns: &str, name: &str, own_ca: &str) {
        let sel = format!("{LABEL_CLUSTER_NAME}={name},{LABEL_TYPE}=remote-ca");
        let mut items = list(&self.state, &ResourceKey::SECRETS, Some(ns), Some(&sel));
        items.sort_by(|a, b| s(a, "/metadata/name").cmp(s(b, "/metadata/name")));
        let mut bundle = String::new();
        for it in &items {
            if let Some(pem) = it
                .pointer("/data/ca.crt")
                .and_then(crate::world::decode_b64)
            {
                bundle.push_str(&pem);
                if !bundle.ends_with('\n') {
                    bundle.push('\n');
                }
            }
        }
        if items.is_empty() {
            bundle = own_ca.to_string();
        }
        self.secret(
            ns,
            &format!("{name}-es-remote-ca"),
            es_labels(name, &[]),
            &BTreeMap::from([("ca.crt".to_string(), bundle)]),
        );
    }

    /// The remotecluster controller for `server`: CA copies both ways and API keys for its
    /// clients (section 3.1).
    fn remote_server(&self, server: &Value, all: &[Value]) {
        let sns = s(server, "/metadata/namespace");
        let sname = s(server, "/metadata/name");
        let sid = EsId::new(&self.state.name, sns, sname);
        let server_ca = secret_key(
            &self.state,
            sns,
            &format!("{sname}-es-transport-certs-public"),
            "ca.crt",
        );
        let mut clients = Vec::new();
        for c in all {
            for r in remote_refs(c) {
                if r.namespace == sns && r.name == sname {
                    clients.push((c.clone(), r.alias, r.api_key));
                }
            }
        }
        // CA exchange.
        for (c, _, _) in &clients {
            let cns = s(c, "/metadata/namespace");
            let cname = s(c, "/metadata/name");
            let client_ca = secret_key(
                &self.state,
                cns,
                &format!("{cname}-es-transport-certs-public"),
                "ca.crt",
            );
            for (owner_ns, owner, peer_ns, peer, ca) in [
                (cns, cname, sns, sname, &server_ca),
                (sns, sname, cns, cname, &client_ca),
            ] {
                let Some(ca) = ca else { continue };
                self.secret(
                    owner_ns,
                    &format!("{owner}-{peer_ns}-{peer}-es-remote-ca"),
                    labels_of(&[
                        (LABEL_CLUSTER_NAME, owner),
                        (LABEL_TYPE, "remote-ca"),
                        (LABEL_REMOTE_NAME, peer),
                        (LABEL_REMOTE_NAMESPACE, peer_ns),
                    ]),
                    &BTreeMap::from([("ca.crt".to_string(), ca.clone())]),
                );
            }
        }
        // API keys: when the server's status.version >= 8.10 and its HTTP service has endpoints
        // (eck-remote-clusters.md 3.1, step 4: `HasEndpoints()` of the Elasticsearch URL
        // provider). The remote cluster server being on is not a condition: ECK also cleans up
        // keys of a server whose remote cluster server was just turned off.
        let status_version = EsVersion::parse(s(server, "/status/version"));
        let keys_enabled = status_version.is_some_and(|v| v.at_least(8, 10, 0));
        // `HasEndpoints()`: without a Ready pod behind its HTTP Service the reconcile stops here
        // and is requeued (`remotecluster/controller.go` l.186-190).
        if keys_enabled && !self.has_ready_pod(sns, sname) {
            return;
        }
        let Some(password) = secret_key(
            &self.state,
            sns,
            &format!("{sname}-es-elastic-user"),
            "elastic",
        ) else {
            return;
        };
        let call = |method: &str, path: &str, body: Option<Value>| {
            let mut req = EsRequest::new(method, path).basic("elastic", &password);
            if let Some(b) = body {
                req = req.json(&b);
            }
            self.world.handle(&sid, &req)
        };
        let now = now_millis();
        let existing: Vec<crate::elasticsearch::ApiKey> = self
            .world
            .read_node(&sid, |n| {
                n.api_keys()
                    .iter()
                    .filter(|k| k.name.starts_with("eck-") && k.is_active(now))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let mut expected = BTreeSet::new();
        if keys_enabled {
            for (c, alias, api_key) in &clients {
                let Some(api_key) = api_key else { continue };
                // A client whose `status.version` is not known yet, or is below 8.10, is skipped
                // (l.248-262): its keys are not expected, so the cleanup below invalidates them.
                let client_supports_keys =
                    EsVersion::parse(s(c, "/status/version")).is_some_and(|v| v.at_least(8, 10, 0));
                if !client_supports_keys {
                    continue;
                }
                let cns = s(c, "/metadata/namespace");
                let cname = s(c, "/metadata/name");
                let key_name = format!("eck-{cns}-{cname}-{alias}");
                expected.insert(key_name.clone());
                let hash = sha256_fingerprint(&serde_json::to_vec(api_key).unwrap_or_default());
                let metadata = json!({
                    "elasticsearch.k8s.elastic.co/config-hash": hash,
                    "elasticsearch.k8s.elastic.co/name": cname,
                    "elasticsearch.k8s.elastic.co/namespace": cns,
                    "elasticsearch.k8s.elastic.co/uid": s(c, "/metadata/uid"),
                    "elasticsearch.k8s.elastic.co/managed-by": "eck",
                });
                let secret_name = format!("{cname}-es-remote-api-keys");
                let secret = self
                    .state
                    .get(&ResourceKey::SECRETS, Some(cns), &secret_name)
                    .ok();
                let ann = api_keys_annotation(secret.as_ref());
                let setting = format!("cluster.remote.{alias}.credentials");
                let in_secret = secret
                    .as_ref()
                    .and_then(|x| x.pointer("/data"))
                    .and_then(|d| d.get(&setting))
                    .is_some();
                let known_id = ann.get(alias.as_str()).map(|x| s(x, "/id").to_string());
                match existing.iter().find(|k| k.name == key_name) {
                    Some(k) if known_id.as_deref() != Some(k.id.as_str()) || !in_secret => {
                        // The key in ES is not the one in the keystore: invalidate, recreate next.
                        call(
                            "DELETE",
                            "/_security/api_key",
                            Some(json!({"name": key_name})),
                        );
                    }
                    Some(k) => {
                        let current = k
                            .metadata
                            .get("elasticsearch.k8s.elastic.co/config-hash")
                            .and_then(Value::as_str);
                        if current != Some(hash.as_str()) {
                            call(
                                "PUT",
                                &format!("/_security/cross_cluster/api_key/{}", k.id),
                                Some(
                                    json!({"access": api_key.get("access").cloned().unwrap_or(json!({})), "metadata": metadata}),
                                ),
                            );
                        }
                    }
                    None => {
                        let resp = call(
                            "POST",
                            "/_security/cross_cluster/api_key",
                            Some(
                                json!({"name": key_name, "access": api_key.get("access").cloned().unwrap_or(json!({})), "metadata": metadata}),
                            ),
                        );
                        if resp.status != 200 {
                            eprintln!(
                                "sandbox operator: creating {key_name} on {sid}: {} {}",
                                resp.status, resp.body
                            );
                            continue;
                        }
                        let encoded = s(&resp.body, "/encoded").to_string();
                        let id = s(&resp.body, "/id").to_string();
                        let mut data = self.secret_data(cns, &secret_name).unwrap_or_default();
                        data.insert(setting, encoded);
                        let mut ann = ann.clone();
                        ann.insert(
                            alias.clone(),
                            json!({"namespace": sns, "name": sname, "id": id}),
                        );
                        self.remote_api_keys_secret(cns, cname, &data, &ann);
                    }
                }
            }
        }
        // Keys no client expects any more: removed entries, clients back to certificates,
        // deleted clients, and `eck-*` keys whose metadata names an unknown cluster.
        if keys_enabled {
            // A key without the client's name and namespace in its metadata is a reconcile
            // error (`GetElasticsearchName`), never invalidated (l.276-281).
            let names_a_client = |k: &crate::elasticsearch::ApiKey| {
                [
                    "elasticsearch.k8s.elastic.co/name",
                    "elasticsearch.k8s.elastic.co/namespace",
                ]
                .iter()
                .all(|field| k.metadata.get(*field).and_then(Value::as_str).is_some())
            };
            for k in existing
                .iter()
                .filter(|k| !expected.contains(&k.name) && names_a_client(k))
            {
                call(
                    "DELETE",
                    "/_security/api_key",
                    Some(json!({"name": k.name})),
                );
            }
        }
    }

    /// Whether a pod of Elasticsearch `ns/name` is Ready (its HTTP Service has endpoints).
    fn has_ready_pod(&self, ns: &str, name: &str) -> bool {
        list(
            &self.state,
            &ResourceKey::PODS,
            Some(ns),
            Some(&format!("{LABEL_CLUSTER_NAME}={name}")),
        )
        .iter()
        .any(|pod| {
            pod.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        })
    }

    fn remote_api_keys_secret(
        &self,
        ns: &str,
        es: &str,
        data: &BTreeMap<String, String>,
        ann: &Map<String, Value>,
    ) {
        let name = format!("{es}-es-remote-api-keys");
        if data.is_empty() {
            self.delete(&ResourceKey::SECRETS, ns, &name);
            return;
        }
        let obj = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {
                "name": name, "namespace": ns,
                "labels": {
                    LABEL_TYPE: "remote-cluster-api-keys",
                    "eck.k8s.elastic.co/credentials": "true",
                    LABEL_CLUSTER_NAME: es,
                },
                "annotations": {ANN_API_KEYS: serde_json::to_string(ann).unwrap_or_default()},
            },
            "type": "Opaque",
            "data": encoded(data),
        });
        if self
            .state
            .get(&ResourceKey::SECRETS, Some(ns), &name)
            .is_ok()
        {
            // Replace the data map (keys removed must go): JSON merge patch with nulls.
            let mut patch = obj.clone();
            if let Some(old) = self.secret_data(ns, &name) {
                for k in old.keys() {
                    if !data.contains_key(k) {
                        patch["data"][k] = Value::Null;
                    }
                }
            }
            self.merge_patch(&ResourceKey::SECRETS, ns, &name, &patch, Sub::Main);
        } else {
            self.apply(&ResourceKey::SECRETS, obj);
        }
    }

    /// The ES controller's settings step for `client` (section 3.2), plus pruning of its
    /// remote API keys Secret.
    fn remote_settings(&mut self, client: &Value) {
        let ns = s(client, "/metadata/namespace");
        let name = s(client, "/metadata/name");
        let id = EsId::new(&self.state.name, ns, name);
        let refs = remote_refs(client);
        // Keystore pruning: aliases no longer expected with an API key, only once this cluster
        // runs 8.10+ (`remotecluster/controller.go` l.280-322).
        let secret_name = format!("{name}-es-remote-api-keys");
        let prunes =
            EsVersion::parse(s(client, "/status/version")).is_some_and(|v| v.at_least(8, 10, 0));
        if let Some(data) = self.secret_data(ns, &secret_name).filter(|_| prunes) {
            let expected: BTreeSet<String> = refs
                .iter()
                .filter(|r| r.api_key.is_some())
                .map(|r| format!("cluster.remote.{}.credentials", r.alias))
                .collect();
            if data.keys().any(|k| !expected.contains(k)) {
                let kept: BTreeMap<String, String> = data
                    .into_iter()
                    .filter(|(k, _)| expected.contains(k))
                    .collect();
                let secret = self
                    .state
                    .get(&ResourceKey::SECRETS, Some(ns), &secret_name)
                    .ok();
                let ann: Map<String, Value> = api_keys_annotation(secret.as_ref())
                    .into_iter()
                    .filter(|(a, _)| expected.contains(&format!("cluster.remote.{a}.credentials")))
                    .collect();
                self.remote_api_keys_secret(ns, name, &kept, &ann);
            }
        }
        // `updateSettingsInternal` (remotecluster/elasticsearch.go l.76-152): every reconcile
        // PUTs the seeds of every spec alias, plus `seeds: null` for an alias the annotation
        // names that left the spec but is still in the settings; the annotation (spec aliases
        // and those still to remove) is written first, so an alias whose removal Elasticsearch
        // refuses stays in it and the removal is retried on every reconcile.
        let Some(current) = self
            .world
            .read_node(&id, |n| n.persistent_settings().clone())
        else {
            return;
        };
        let in_settings = |alias: &str| {
            let prefix = format!("cluster.remote.{alias}.");
            current.keys().any(|k| k.starts_with(&prefix))
        };
        let current_ann = annotation(client, ANN_MANAGED_REMOTES);
        let mut tracked: BTreeSet<String> = current_ann
            .unwrap_or("")
            .split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .filter(|alias| refs.iter().any(|r| &r.alias == alias) || in_settings(alias))
            .collect();
        let to_delete: Vec<String> = tracked
            .iter()
            .filter(|alias| !refs.iter().any(|r| &r.alias == *alias))
            .cloned()
            .collect();
        let mut remote = Map::new();
        for RemoteRef {
            alias,
            namespace: rns,
            name: rname,
            api_key,
        } in &refs
        {
            let seed = if api_key.is_some() {
                format!("{rname}-es-remote-cluster.{rns}.svc:9443")
            } else {
                format!("{rname}-es-transport.{rns}.svc:9300")
            };
            remote.insert(alias.clone(), json!({"seeds": [seed]}));
            tracked.insert(alias.clone());
        }
        for alias in &to_delete {
            remote.insert(alias.clone(), json!({"seeds": null}));
        }
        let value = tracked.into_iter().collect::<Vec<_>>().join(",");
        let wanted = (!value.is_empty()).then_some(value.as_str());
        if current_ann != wanted {
            self.merge_patch(
                &ResourceKey::ELASTICSEARCHES,
                ns,
                name,
                &json!({"metadata": {"annotations": {ANN_MANAGED_REMOTES: wanted}}}),
                Sub::Main,
            );
        }
        if !remote.is_empty()
            && let Some(pw) = secret_key(
                &self.state,
                ns,
                &format!("{name}-es-elastic-user"),
                "elastic",
            )
        {
            let req = EsRequest::new("PUT", "/_cluster/settings")
                .basic("elastic", &pw)
                .json(&json!({"persistent": {"cluster": {"remote": remote}}}));
            let resp = self.world.handle(&id, &req);
            if resp.status != 200 {
                // `driver/shared/reconcile.go`: a Warning event, and the error keeps the
                // reconcile from completing; the rest of it goes on.
                self.warning_event(
                    client,
                    "Unexpected",
                    "RemoteClusterConfiguration",
                    "Could not update remote clusters in Elasticsearch settings, re-queuing",
                );
                self.errors.push(es_api_error(resp.status, &resp.body));
            } else if !to_delete.is_empty() {
                // The next reconcile drops the removed aliases from the annotation.
                self.requeue = true;
            }
        }
    }

    /// Removes `*-es-remote-ca` copies of pairs that no longer have a relation either way.
    fn remote_ca_cleanup(&self, all: &[Value]) {
        let mut relations = BTreeSet::new();
        for c in all {
            let cns = s(c, "/metadata/namespace").to_string();
            let cname = s(c, "/metadata/name").to_string();
            for r in remote_refs(c) {
                let exists = all.iter().any(|e| {
                    s(e, "/metadata/namespace") == r.namespace && s(e, "/metadata/name") == r.name
                });
                if exists {
                    relations.insert((
                        cns.clone(),
                        cname.clone(),
                        r.namespace.clone(),
                        r.name.clone(),
                    ));
                    relations.insert((r.namespace, r.name, cns.clone(), cname.clone()));
                }
            }
        }
        let sel = format!("{LABEL_TYPE}=remote-ca,{LABEL_REMOTE_NAME}");
        for sec in list(&self.state, &ResourceKey::SECRETS, None, Some(&sel)) {
            let ns = s(&sec, "/metadata/namespace").to_string();
            let key = (
                ns.clone(),
                label(&sec, LABEL_CLUSTER_NAME).to_string(),
                label(&sec, LABEL_REMOTE_NAMESPACE).to_string(),
                label(&sec, LABEL_REMOTE_NAME).to_string(),
            );
            if !relations.contains(&key) {
                self.delete(&ResourceKey::SECRETS, &ns, s(&sec, "/metadata/name"));
            }
        }
    }

    /// Without the webhook, ECK's controller validates each reconcile and, for an invalid spec,
    /// sets phase `Invalid` with a Warning event `Validation` and reconciles nothing else
    /// (`elasticsearch_controller.go` `internalReconcile`, `reconcile/state.go`
    /// `UpdateElasticsearchInvalidWithEvent`); the status's other fields stay, the observed
    /// generation is this one.
    fn mark_invalid(&self, es: &Value, message: &str) {
        self.warning_event(es, "Validation", "Validation", message);
        let generation = es.pointer("/metadata/generation").and_then(Value::as_i64);
        let mut status = json!({"phase": "Invalid"});
        if let Some(generation) = generation {
            status["observedGeneration"] = json!(generation);
        }
        let ns = s(es, "/metadata/namespace").to_string();
        let name = s(es, "/metadata/name").to_string();
        self.merge_patch(
            &ResourceKey::ELASTICSEARCHES,
            &ns,
            &name,
            &json!({ "status": status }),
            Sub::Status,
        );
    }

    /// The Warning Event ECK emits when the licence does not allow remote clusters.
    fn license_event(&self, es: &Value) {
        self.warning_event(es, "AssociationError", "LicenseCheck", LICENSE_MESSAGE);
    }

    /// A Warning Event of the elasticsearch-controller on `es`, created once per reason,
    /// action and message (the recorder's later `count`/`lastTimestamp` updates are not
    /// simulated).
    fn warning_event(&self, es: &Value, reason: &str, action: &str, message: &str) {
        let ns = s(es, "/metadata/namespace");
        let name = s(es, "/metadata/name");
        let uid = s(es, "/metadata/uid");
        let key = if reason == "AssociationError" {
            format!("{uid}/AssociationError")
        } else {
            format!("{uid}/{reason}/{action}/{message}")
        };
        let ev_name = format!("{name}.{}", &sha256_fingerprint(key.as_bytes())[..16]);
        if self
            .state
            .get(&ResourceKey::EVENTS, Some(ns), &ev_name)
            .is_ok()
        {
            return;
        }
        let now = now_rfc3339();
        self.apply(
            &ResourceKey::EVENTS,
            json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": ev_name, "namespace": ns},
                "involvedObject": {
                    "apiVersion": "elasticsearch.k8s.elastic.co/v1", "kind": "Elasticsearch",
                    "namespace": ns, "name": name, "uid": uid,
                },
                "type": "Warning",
                "reason": reason,
                "action": action,
                "message": message,
                "source": {"component": "elasticsearch-controller"},
                "reportingComponent": "elasticsearch-controller",
                "count": 1,
                "firstTimestamp": now,
                "lastTimestamp": now,
            }),
        );
    }
}

/// Whether the status of `es` reports an error of ECK's (`ReconciliationComplete` False with a
/// message), which a reconcile without errors clears.
fn reported_error(es: &Value) -> bool {
    es.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            s(c, "/type") == "ReconciliationComplete"
                && s(c, "/status") == "False"
                && !s(c, "/message").is_empty()
        })
}

/// ECK's `esclient.APIError` text for an Elasticsearch error answer: the HTTP status line and
/// the parsed `ErrorResponse` as Go's `%+v` prints it.
fn es_api_error(status: u16, body: &Value) -> String {
    let text = http_status_text(status);
    let e = |p: &str| s(body, p).to_string();
    let root: Vec<String> = body
        .pointer("/error/root_cause")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| format!("{{Reason:{} Type:{}}}", s(r, "/reason"), s(r, "/type")))
        .collect();
    format!(
        "{status} {text}: {{Status:{status} Error:{{CausedBy:{{Reason:{} Type:{}}} Reason:{} Type:{} StackTrace: RootCause:[{}]}}}}",
        e("/error/caused_by/reason"),
        e("/error/caused_by/type"),
        e("/error/reason"),
        e("/error/type"),
        root.join(" ")
    )
}

fn http_status_text(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// A Service ECK reconciles: its name, the user's template (`{metadata, spec}`, `Null` when
/// none) and ECK's defaults.
struct ServiceOf {
    name: String,
    template: Value,
    ports: Value,
    selector: Value,
    /// `clusterIP: None` when the template sets no type (transport, RCS).
    headless_when_untyped: bool,
    /// `publishNotReadyAddresses: true` whatever the template says.
    publish_not_ready: bool,
}

/// Adds to the merge patch `new` a `null` for every key of `old` that `new` lacks (recursing
/// into maps present in both), so that applying it leaves `new`; `keep` keys are left alone.
fn removals(old: &Value, new: &mut Value, keep: &[&str]) {
    let (Some(old), Some(new)) = (old.as_object(), new.as_object_mut()) else {
        return;
    };
    for (k, v) in old {
        if keep.contains(&k.as_str()) {
            continue;
        }
        match new.get_mut(k) {
            None => {
                new.insert(k.clone(), Value::Null);
            }
            Some(n) if v.is_object() && n.is_object() => removals(v, n, &[]),
            Some(_) => {}
        }
    }
}

/// Whether `pod` was made from another pod template than `revision` (a pod without the label,
/// seeded before the operator ran, is adopted).
fn runs_another_revision(pod: &Value, revision: &str) -> bool {
    match pod.pointer(&format!("/metadata/labels/{LABEL_REVISION}")) {
        Some(Value::String(current)) => current != revision,
        _ => false,
    }
}

/// One pod of an Elasticsearch.
struct PodOf {
    /// Index of its nodeSet in `spec.nodeSets`.
    set_index: usize,
    /// `<es>-es-<nodeSet>-<i>`.
    name: String,
    /// `<es>-es-<nodeSet>`, also its headless Service (the pod's `subdomain`).
    statefulset: String,
}

/// The pods of every nodeSet, in order.
/// The otherName commonName of `pod`'s transport certificate, from
/// `spec.transport.tls.otherNameSuffix` (ECK `buildCertificateCommonName`).
fn transport_node_name(es: &Value, pod: &str) -> String {
    eck_transport_node_name_with_suffix(
        pod,
        s(es, "/metadata/name"),
        s(es, "/metadata/namespace"),
        s(es, "/spec/transport/tls/otherNameSuffix"),
    )
}

fn pods_of(es: &Value) -> Vec<PodOf> {
    let name = s(es, "/metadata/name");
    node_sets(es)
        .into_iter()
        .enumerate()
        .flat_map(|(set_index, (set, count, _))| {
            let sts = format!("{name}-es-{set}");
            (0..count).map(move |i| PodOf {
                set_index,
                name: format!("{sts}-{i}"),
                statefulset: sts.clone(),
            })
        })
        .collect()
}
