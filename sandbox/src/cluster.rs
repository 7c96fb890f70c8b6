//! One fake cluster: its object store and the API semantics of every verb, independent of HTTP
//! (the HTTP layer in `server.rs` and [`crate::ClusterHandle`] both call these).
//!
//! Behaviour follows `kubernetes-api-behaviour.md` in the shared docs (observed on a real
//! apiextensions-apiserver) and k8s.io/apiserver's generic registry
//! (`pkg/registry/generic/registry/store.go`, `pkg/endpoints/handlers/{create,update,patch,delete}.go`).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::admission;
use crate::config::{Fault, FaultAction, RequestRecord, Rule};
use crate::resources::{ResourceInfo, ResourceKey};
use crate::schema::{EckFeatures, Schema};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{ApiError, Cause};

/// A change to the store, for in-process watchers (the fake ECK operator, tests) and `?watch`.
#[derive(Debug, Clone, Serialize)]
pub struct WatchEvent {
    /// `ADDED`, `MODIFIED` or `DELETED`.
    #[serde(rename = "type")]
    pub event_type: &'static str,
    #[serde(skip)]
    pub resource: ResourceKey,
    pub object: Value,
}

/// `?fieldValidation=` (`Ignore`, `Warn` — the server default since Kubernetes 1.27 — or `Strict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

/// Options of a write request.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOpts {
    /// `?dryRun=All`: everything runs (validation, admission), nothing is persisted.
    pub dry_run: bool,
    pub field_validation: FieldValidation,
}

/// Main resource or the `/status` subresource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    Main,
    Status,
}

/// A successful answer: HTTP code, body, `Warning` headers.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub code: u16,
    pub body: Value,
    pub warnings: Vec<String>,
}

/// Query parameters of a list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

/// Patch body types the API server knows (`Content-Type` of a PATCH).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

#[derive(Default)]
pub(crate) struct Store {
    rv: u64,
    objects: BTreeMap<ResourceKey, BTreeMap<(String, String), Value>>,
    next_cluster_ip: u32,
}

fn rv_of(obj: &Value) -> u64 {
    meta_str(obj, "resourceVersion").parse().unwrap_or(0)
}

/// Which events a watch wants.
pub(crate) struct WatchFilter {
    key: ResourceKey,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl WatchFilter {
    pub(crate) fn matches(&self, ev: &WatchEvent) -> bool {
        ev.resource == self.key
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| meta_str(&ev.object, "namespace") == ns)
            && self
                .labels
                .matches(meta(&ev.object).and_then(|m| m.get("labels")))
            && self.fields.matches(&ev.object)
    }
}

/// A started watch.
pub(crate) struct Watch {
    pub initial: Vec<WatchEvent>,
    pub receiver: broadcast::Receiver<WatchEvent>,
    pub filter: WatchFilter,
    /// The resourceVersion the watch is at once `initial` is sent: live events up to it are
    /// skipped.
    pub position: u64,
}

pub(crate) struct FaultSlot {
    fault: Fault,
    seen: usize,
    fired: usize,
}

/// Everything a cluster holds.
pub(crate) struct ClusterState {
    pub name: String,
    pub eck: Option<EckFeatures>,
    pub es_schema: Option<Schema>,
    pub latency: Duration,
    pub users: HashMap<String, Vec<Rule>>,
    pub(crate) store: Mutex<Store>,
    pub events: broadcast::Sender<WatchEvent>,
    history: Mutex<std::collections::VecDeque<WatchEvent>>,
    /// How many past events `history` keeps for watches that resume from a resourceVersion.
    history_len: usize,
    pub log: Mutex<Vec<RequestRecord>>,
    pub log_file: Option<Mutex<std::fs::File>>,
    pub(crate) faults: Mutex<Vec<FaultSlot>>,
    subresources: Mutex<HashMap<(ResourceKey, String), crate::SubresourceHandler>>,
    webhook: std::sync::atomic::AtomicBool,
}

pub(crate) fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    meta(obj)
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
}

/// ObjectMeta fields (`k8s.io/apimachinery/pkg/apis/meta/v1/types.go`); others are unknown.
const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Top-level fields of the built-in types (anything else is an unknown field).
fn builtin_fields(key: &ResourceKey) -> &'static [&'static str] {
    match key.plural {
        "secrets" => &["data", "stringData", "type", "immutable"],
        "configmaps" => &["data", "binaryData", "immutable"],
        "services" | "pods" | "namespaces" => &["spec", "status"],
        "customresourcedefinitions" => &["spec", "status"],
        "events" => &[
            "involvedObject",
            "reason",
            "message",
            "source",
            "firstTimestamp",
            "lastTimestamp",
            "count",
            "type",
            "eventTime",
            "series",
            "action",
            "related",
            "reportingComponent",
            "reportingInstance",
        ],
        _ => &[],
    }
}

/// DNS-1123 subdomain (`IsDNS1123Subdomain`): most object names.
fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// DNS-1123 label (`IsDNS1123Label`): namespace names.
fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && !s.contains('.') && is_dns1123_subdomain(s)
}

/// DNS-1035 label: Service names.
fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
}

fn valid_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && v.chars().last().is_some_and(|c| c.is_ascii_alphanumeric()))
}

fn random_suffix() -> String {
    // generateName: 5 random characters from the same alphabet as utilrand.String.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// What must hold for objects to be equal "for real": everything but resourceVersion.
fn same_content(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        v
    };
    strip(a) == strip(b)
}

/// Spec-ish content: everything but metadata and status (generation rule of custom resources,
/// `apiextensions-apiserver/pkg/registry/customresource/strategy.go PrepareForUpdate`).
fn generation_content(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

impl Store {
    fn bucket(&self, key: &ResourceKey) -> Option<&BTreeMap<(String, String), Value>> {
        self.objects.get(key)
    }

    pub(crate) fn get(&self, key: &ResourceKey, ns: &str, name: &str) -> Option<&Value> {
        self.bucket(key)?.get(&(ns.to_string(), name.to_string()))
    }

    fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    pub(crate) fn current_rv(&self) -> String {
        self.rv.to_string()
    }

    fn put(&mut self, key: &ResourceKey, ns: &str, name: &str, obj: Value) {
        self.objects
            .entry(*key)
            .or_default()
            .insert((ns.to_string(), name.to_string()), obj);
    }

    fn remove(&mut self, key: &ResourceKey, ns: &str, name: &str) -> Option<Value> {
        self.objects
            .get_mut(key)?
            .remove(&(ns.to_string(), name.to_string()))
    }

    fn namespace_exists(&self, ns: &str) -> bool {
        self.get(&ResourceKey::NAMESPACES, "", ns).is_some()
    }
}

impl ClusterState {
    pub(crate) fn new(
        name: &str,
        eck: Option<EckFeatures>,
        latency: Duration,
        users: HashMap<String, Vec<Rule>>,
        log_file: Option<std::fs::File>,
        history_len: usize,
    ) -> ClusterState {
        let (events, _) = broadcast::channel(4096);
        ClusterState {
            name: name.to_string(),
            eck,
            es_schema: eck.map(|f| crate::schema::elasticsearch_schema(&f)),
            latency,
            users,
            store: Mutex::new(Store::default()),
            events,
            history: Mutex::new(std::collections::VecDeque::new()),
            history_len,
            log: Mutex::new(Vec::new()),
            log_file: log_file.map(Mutex::new),
            faults: Mutex::new(Vec::new()),
            subresources: Mutex::new(HashMap::new()),
            webhook: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Whether ECK's validating webhook is installed (when not, the controller validates and
    /// marks an invalid resource with phase `Invalid`).
    pub(crate) fn webhook(&self) -> bool {
        self.webhook.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn set_webhook(&self, installed: bool) {
        self.webhook
            .store(installed, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether a resource type is served by this cluster.
    pub(crate) fn serves(&self, key: &ResourceKey) -> bool {
        *key != ResourceKey::ELASTICSEARCHES || self.eck.is_some()
    }

    fn info(&self, key: &ResourceKey) -> Result<&'static ResourceInfo, ApiError> {
        match key.info() {
            Some(i) if self.serves(key) => Ok(i),
            _ => Err(ApiError::no_route()),
        }
    }

    /// Writes a change: stamps the next resourceVersion on `obj`, stores it (removes it for
    /// `DELETED`) and publishes the event. Called with the store lock held.
    fn commit(
        &self,
        store: &mut Store,
        event_type: &'static str,
        key: &ResourceKey,
        ns: &str,
        name: &str,
        obj: &mut Value,
    ) {
        let rv = store.next_rv();
        meta_mut(obj).insert("resourceVersion".into(), rv.into());
        if event_type == "DELETED" {
            store.remove(key, ns, name);
        } else {
            store.put(key, ns, name, obj.clone());
        }
        self.emit(event_type, key, obj);
    }

    /// Publishes a change. Called with the store lock held, so events are in resourceVersion
    /// order and a watcher that subscribes under the lock misses none.
    fn emit(&self, event_type: &'static str, key: &ResourceKey, obj: &Value) {
        let ev = WatchEvent {
            event_type,
            resource: *key,
            object: obj.clone(),
        };
        {
            let mut h = self.history.lock().expect("history lock");
            if h.len() >= self.history_len {
                h.pop_front();
            }
            h.push_back(ev.clone());
        }
        let _ = self.events.send(ev);
    }

    /// Starts a watch: the events to send first, the live receiver, and the selectors.
    /// `resource_version` unset or "0" (or `send_initial_events` true): synthetic ADDED events
    /// for the current objects (what the real server does); otherwise every change after it, or 410
    /// Expired if it is older than the remembered history (the real server's compaction window;
    /// `storage/cacher/watch_cache.go` `getAllEventsSinceLocked`). A resourceVersion newer than
    /// the cluster's is accepted: changes up to it are skipped (`cacheWatcher.process`).
    pub(crate) fn watch(
        &self,
        key: &ResourceKey,
        ns: Option<&str>,
        q: &ListQuery,
        resource_version: Option<&str>,
        send_initial_events: Option<bool>,
    ) -> Result<Watch, ApiError> {
        let info = self.info(key)?;
        let labels = LabelSelector::parse(q.label_selector.as_deref().unwrap_or(""))?;
        let fields = FieldSelector::parse(
            q.field_selector.as_deref().unwrap_or(""),
            info.field_selectors,
            info.key == ResourceKey::ELASTICSEARCHES,
        )?;
        let filter = WatchFilter {
            key: *key,
            namespace: if key.namespaced() {
                ns.map(str::to_string)
            } else {
                None
            },
            labels,
            fields,
        };
        let from =
            match resource_version.filter(|rv| !rv.is_empty()) {
                None => None,
                Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid resource version: {rv:?}"))
                })?),
            };
        // Under the store lock: every event up to `store.rv` is in the history, every later one
        // reaches the new receiver.
        let store = self.store.lock().expect("store lock");
        let receiver = self.events.subscribe();
        let mut initial = Vec::new();
        let mut position = store.rv;
        let from = match (send_initial_events, from) {
            // Streaming list: the current state whatever the resourceVersion.
            (Some(true), _) => None,
            // `sendInitialEvents=false` from "" or "0": from now on, no initial state
            // (`watch_cache.go`: "start watching from Any resourceVersion").
            (Some(false), None | Some(0)) => Some(store.rv),
            (_, Some(0)) => None,
            (_, rv) => rv,
        };
        match from {
            None => {
                if let Some(bucket) = store.bucket(key) {
                    for obj in bucket.values() {
                        let ev = WatchEvent {
                            event_type: "ADDED",
                            resource: *key,
                            object: obj.clone(),
                        };
                        if filter.matches(&ev) {
                            initial.push(ev);
                        }
                    }
                }
            }
            Some(from) => {
                let history = self.history.lock().expect("history lock");
                let oldest = history
                    .front()
                    .map(|e| rv_of(&e.object))
                    .unwrap_or(store.rv + 1);
                if from + 1 < oldest && from < store.rv {
                    return Err(ApiError {
                        code: 410,
                        reason: "Expired",
                        message: format!("too old resource version: {from} ({})", oldest - 1),
                        details: None,
                    });
                }
                initial.extend(
                    history
                        .iter()
                        .filter(|e| rv_of(&e.object) > from && filter.matches(e))
                        .cloned(),
                );
                position = position.max(from);
            }
        }
        drop(store);
        Ok(Watch {
            initial,
            receiver,
            filter,
            position,
        })
    }

    /// The cluster's current resourceVersion as a number, read under the store lock: every
    /// event up to it has been published.
    pub(crate) fn current_rv_number(&self) -> u64 {
        self.store.lock().expect("store lock").rv
    }

    pub(crate) fn record(&self, rec: RequestRecord) {
        if let Some(f) = &self.log_file
            && let Ok(line) = serde_json::to_string(&rec)
        {
            let mut f = f.lock().expect("log file lock");
            let _ = writeln!(f, "{line}");
        }
        self.log.lock().expect("log lock").push(rec);
    }

    pub(crate) fn set_subresource_handler(
        &self,
        key: ResourceKey,
        sub: &str,
        handler: crate::SubresourceHandler,
    ) {
        self.subresources
            .lock()
            .expect("subresources lock")
            .insert((key, sub.to_string()), handler);
    }

    pub(crate) fn subresource_handler(
        &self,
        key: &ResourceKey,
        sub: &str,
    ) -> Option<crate::SubresourceHandler> {
        self.subresources
            .lock()
            .expect("subresources lock")
            .get(&(*key, sub.to_string()))
            .cloned()
    }

    /// The cluster's current resourceVersion (last write).
    pub(crate) fn resource_version(&self) -> String {
        self.store.lock().expect("store lock").current_rv()
    }

    pub(crate) fn add_fault(&self, fault: Fault) {
        self.faults.lock().expect("faults lock").push(FaultSlot {
            fault,
            seen: 0,
            fired: 0,
        });
    }

    /// The fault that hits this request, if any (counts matches).
    pub(crate) fn take_fault(&self, method: &str, path: &str) -> Option<FaultAction> {
        let mut faults = self.faults.lock().expect("faults lock");
        let mut hit = None;
        for slot in faults.iter_mut() {
            if !slot.fault.matches(method, path) || slot.fired >= slot.fault.times {
                continue;
            }
            slot.seen += 1;
            if hit.is_none() && slot.seen >= slot.fault.nth {
                slot.fired += 1;
                hit = Some(slot.fault.action.clone());
            }
        }
        faults.retain(|s| s.fired < s.fault.times);
        hit
    }

    // ---------------------------------------------------------------- reads

    pub(crate) fn get(
        &self,
        key: &ResourceKey,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.info(key)?;
        let store = self.store.lock().expect("store lock");
        let ns = self.effective_ns(key, ns);
        store
            .get(key, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(key, name))
    }

    /// The type of a write: served, and not one of the read-only CRDs.
    fn writable(&self, key: &ResourceKey) -> Result<&'static ResourceInfo, ApiError> {
        if *key == ResourceKey::CUSTOM_RESOURCE_DEFINITIONS {
            return Err(crd_read_only());
        }
        self.info(key)
    }

    fn effective_ns<'a>(&self, key: &ResourceKey, ns: Option<&'a str>) -> &'a str {
        if key.namespaced() {
            ns.unwrap_or("")
        } else {
            ""
        }
    }

    pub(crate) fn list(
        &self,
        key: &ResourceKey,
        ns: Option<&str>,
        q: &ListQuery,
    ) -> Result<Value, ApiError> {
        let info = self.info(key)?;
        let labels = LabelSelector::parse(q.label_selector.as_deref().unwrap_or(""))?;
        let is_custom = info.key == ResourceKey::ELASTICSEARCHES;
        let fields = FieldSelector::parse(
            q.field_selector.as_deref().unwrap_or(""),
            info.field_selectors,
            is_custom,
        )?;
        let after: Option<(String, String)> = match &q.continue_token {
            Some(t) if !t.is_empty() => {
                let raw = B64
                    .decode(t)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<(String, String)>(&b).ok());
                Some(raw.ok_or_else(|| {
                    ApiError::bad_request("continue key is not valid: illegal base64 data")
                })?)
            }
            _ => None,
        };
        let store = self.store.lock().expect("store lock");
        let mut items = Vec::new();
        let mut last_key = None;
        let mut remaining = 0usize;
        if let Some(bucket) = store.bucket(key) {
            for ((ons, oname), obj) in bucket {
                if let Some(n) = ns
                    && key.namespaced()
                    && ons != n
                {
                    continue;
                }
                if let Some(a) = &after
                    && (ons, oname) <= (&a.0, &a.1)
                {
                    continue;
                }
                if !labels.matches(meta(obj).and_then(|m| m.get("labels"))) || !fields.matches(obj)
                {
                    continue;
                }
                if let Some(limit) = q.limit
                    && limit > 0
                    && items.len() >= limit
                {
                    remaining += 1;
                    continue;
                }
                last_key = Some((ons.clone(), oname.clone()));
                items.push(list_item(info, obj));
            }
        }
        let mut metadata = json!({"resourceVersion": store.current_rv()});
        if remaining > 0
            && let Some(k) = last_key
        {
            metadata["continue"] = B64
                .encode(serde_json::to_vec(&k).unwrap_or_default())
                .into();
            metadata["remainingItemCount"] = remaining.into();
        }
        Ok(json!({
            "kind": format!("{}List", info.kind),
            "apiVersion": key.api_version(),
            "metadata": metadata,
            "items": items,
        }))
    }

    // ---------------------------------------------------------------- writes

    pub(crate) fn create(
        &self,
        key: &ResourceKey,
        ns: Option<&str>,
        mut body: Value,
        opts: WriteOpts,
    ) -> Result<Outcome, ApiError> {
        let info = self.writable(key)?;
        check_type_meta(info, &body, true)?;
        let url_ns = self.effective_ns(key, ns).to_string();
        check_namespace(info, &body, &url_ns)?;
        if !meta_str(&body, "resourceVersion").is_empty() {
            // storage.ErrResourceVersionSetOnCreate, answered as an unclassified (500) error.
            return Err(ApiError {
                code: 500,
                reason: "",
                message: "resourceVersion should not be set on objects to be created".into(),
                details: None,
            });
        }
        let mut store = self.store.lock().expect("store lock");
        {
            let m = meta_mut(&mut body);
            if m.get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
                && let Some(g) = m.get("generateName").and_then(Value::as_str)
                && !g.is_empty()
            {
                let name = format!("{g}{}", random_suffix());
                m.insert("name".into(), name.into());
            }
        }
        let name = meta_str(&body, "name").to_string();
        if name.is_empty() {
            return Err(ApiError::invalid(
                key,
                "",
                vec![Cause {
                    reason: "FieldValueRequired",
                    message: "Required value: name or generateName is required".into(),
                    field: "metadata.name".into(),
                }],
            ));
        }
        if info.namespaced && !store.namespace_exists(&url_ns) {
            return Err(ApiError::not_found(&ResourceKey::NAMESPACES, &url_ns));
        }
        let warnings = self.normalize(info, &mut body, None, Sub::Main, opts, &mut store)?;
        {
            let now = now_rfc3339();
            let m = meta_mut(&mut body);
            for f in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "selfLink",
            ] {
                m.remove(f);
            }
            m.insert("uid".into(), uuid::Uuid::new_v4().to_string().into());
            m.insert("creationTimestamp".into(), now.into());
            if info.namespaced {
                m.insert("namespace".into(), url_ns.clone().into());
            } else {
                m.remove("namespace");
            }
            if info.has_generation {
                m.insert("generation".into(), 1.into());
            }
        }
        self.validate(info, &body, None)?;
        if store.get(key, &url_ns, &name).is_some() {
            return Err(ApiError::already_exists(key, &name));
        }
        if !opts.dry_run {
            self.commit(&mut store, "ADDED", key, &url_ns, &name, &mut body);
        }
        Ok(Outcome {
            code: 201,
            body,
            warnings,
        })
    }

    /// PUT.
    pub(crate) fn update(
        &self,
        key: &ResourceKey,
        ns: Option<&str>,
        name: &str,
        body: Value,
        sub: Sub,
        opts: WriteOpts,
    ) -> Result<Outcome, ApiError> {
        let info = self.writable(key)?;
        check_type_meta(info, &body, true)?;
        let url_ns = self.effective_ns(key, ns).to_string();
        check_name(&body, name)?;
        check_namespace(info, &body, &url_ns)?;
        let rv = meta_str(&body, "resourceVersion").to_string();
        let store = self.store.lock().expect("store lock");
        let Some(old) = store.get(key, &url_ns, name).cloned() else {
            // Creating through PUT is allowed for few types only (not these).
            return Err(ApiError::not_found(key, name));
        };
        drop(store);
        if rv.is_empty() {
            if !info.allow_unconditional_update {
                return Err(ApiError::invalid(
                    key,
                    name,
                    vec![Cause {
                        reason: "FieldValueInvalid",
                        message: "Invalid value: 0x0: must be specified for an update".into(),
                        field: "metadata.resourceVersion".into(),
                    }],
                ));
            }
        } else if rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::modified_conflict(key, name));
        }
        self.replace(info, &url_ns, name, &old, body, sub, opts)
    }

    /// PATCH.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn patch(
        &self,
        key: &ResourceKey,
        ns: Option<&str>,
        name: &str,
        patch_type: PatchType,
        patch: &[u8],
        sub: Sub,
        opts: WriteOpts,
    ) -> Result<Outcome, ApiError> {
        let info = self.writable(key)?;
        let is_custom = *key == ResourceKey::ELASTICSEARCHES;
        match patch_type {
            PatchType::Merge | PatchType::Json => {}
            PatchType::Strategic if is_custom => {
                // apiextensions-apiserver: custom resources accept no strategic merge patch.
                return Err(unknown_patch_format());
            }
            // Secrets, ConfigMaps and Namespaces hold only maps and scalars (besides
            // metadata lists), where a strategic merge patch means what a merge patch means;
            // one carrying `$patch`/`$retainKeys`/`$setElementOrder...` directives is refused.
            PatchType::Strategic
                if matches!(key.plural, "secrets" | "configmaps" | "namespaces")
                    && !has_directive(&serde_json::from_slice(patch).unwrap_or(Value::Null)) => {}
            PatchType::Strategic => {
                return Err(ApiError::unsupported_media_type(
                    "the sandbox API server implements strategic merge patch only for Secrets, ConfigMaps and Namespaces, without $-directives; use application/merge-patch+json or application/json-patch+json",
                ));
            }
            PatchType::Apply => {
                return Err(ApiError::unsupported_media_type(
                    "the sandbox API server does not implement server-side apply (application/apply-patch+yaml); use application/merge-patch+json or application/json-patch+json",
                ));
            }
        }
        let url_ns = self.effective_ns(key, ns).to_string();
        let store = self.store.lock().expect("store lock");
        let Some(old) = store.get(key, &url_ns, name).cloned() else {
            return Err(ApiError::not_found(key, name));
        };
        drop(store);
        let mut patched = old.clone();
        match patch_type {
            PatchType::Merge | PatchType::Strategic => {
                let p: Value = serde_json::from_slice(patch)
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
                if !p.is_object() {
                    return Err(ApiError::bad_request(
                        "json: cannot unmarshal into Go value of type map[string]interface {}",
                    ));
                }
                json_patch::merge(&mut patched, &p);
            }
            PatchType::Json => {
                let p: json_patch::Patch = serde_json::from_slice(patch)
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
                if let Err(e) = json_patch::patch(&mut patched, &p.0) {
                    return Err(json_patch_error(&p, e));
                }
            }
            _ => unreachable!("refused above"),
        }
        // A resourceVersion carried by the patch is a precondition.
        let rv = meta_str(&patched, "resourceVersion").to_string();
        if !rv.is_empty() && rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::modified_conflict(key, name));
        }
        check_name(&patched, name)?;
        check_type_meta(info, &patched, false)?;
        self.replace(info, &url_ns, name, &old, patched, sub, opts)
    }

    /// Shared end of update and patch: `body` is the proposed whole object.
    #[allow(clippy::too_many_arguments)]
    fn replace(
        &self,
        info: &'static ResourceInfo,
        ns: &str,
        name: &str,
        old: &Value,
        mut body: Value,
        sub: Sub,
        opts: WriteOpts,
    ) -> Result<Outcome, ApiError> {
        let key = &info.key;
        let mut store = self.store.lock().expect("store lock");
        // Re-check under the lock: another writer may have won since the read.
        let current = store
            .get(key, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(key, name))?;
        if meta_str(&current, "resourceVersion") != meta_str(old, "resourceVersion") {
            return Err(ApiError::modified_conflict(key, name));
        }
        if sub == Sub::Status {
            // Status strategy: only status is taken from the request.
            let status = body.get("status").cloned();
            body = old.clone();
            match status {
                Some(s) => body["status"] = s,
                None => {
                    if let Some(m) = body.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        let warnings = self.normalize(info, &mut body, Some(old), sub, opts, &mut store)?;
        {
            let m = meta_mut(&mut body);
            let om = meta(old).cloned().unwrap_or_default();
            for f in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "namespace",
                "generation",
            ] {
                match om.get(f) {
                    Some(v) => {
                        m.insert(f.into(), v.clone());
                    }
                    None => {
                        m.remove(f);
                    }
                }
            }
            m.insert(
                "resourceVersion".into(),
                om.get("resourceVersion").cloned().unwrap_or(Value::Null),
            );
        }
        if info.has_generation && generation_content(&body) != generation_content(old) {
            let g = meta(old)
                .and_then(|m| m.get("generation"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut body).insert("generation".into(), (g + 1).into());
        }
        self.validate(info, &body, Some(old))?;
        if same_content(&body, old) {
            // No real change: nothing written, resourceVersion unchanged (etcd3 GuaranteedUpdate).
            return Ok(Outcome {
                code: 200,
                body: old.clone(),
                warnings,
            });
        }
        if !opts.dry_run {
            // The last finalizer removed from an object marked for deletion: it goes.
            let finalized = meta(&body).is_some_and(|m| m.contains_key("deletionTimestamp"))
                && !has_finalizers(&body);
            let event = if finalized { "DELETED" } else { "MODIFIED" };
            self.commit(&mut store, event, key, ns, name, &mut body);
        }
        Ok(Outcome {
            code: 200,
            body,
            warnings,
        })
    }

    pub(crate) fn delete(
        &self,
        key: &ResourceKey,
        ns: Option<&str>,
        name: &str,
        options: Option<&Value>,
        opts: WriteOpts,
    ) -> Result<Outcome, ApiError> {
        let info = self.writable(key)?;
        let url_ns = self.effective_ns(key, ns).to_string();
        let mut store = self.store.lock().expect("store lock");
        let Some(mut obj) = store.get(key, &url_ns, name).cloned() else {
            return Err(ApiError::not_found(key, name));
        };
        let preconditions = options.and_then(|o| o.get("preconditions"));
        for (field, what) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
            if let Some(wanted) = preconditions.and_then(|p| p.get(field)?.as_str())
                && wanted != meta_str(&obj, field)
            {
                return Err(ApiError::conflict(
                    key,
                    name,
                    &format!(
                        "Precondition failed: {what} in precondition: {wanted}, {what} in object meta: {}",
                        meta_str(&obj, field)
                    ),
                ));
            }
        }
        let now = now_rfc3339();
        if has_finalizers(&obj) {
            // Graceful: mark for deletion, the finalizers' owners remove it.
            if meta(&obj).is_some_and(|m| m.contains_key("deletionTimestamp")) {
                return Ok(Outcome {
                    code: 200,
                    body: obj,
                    warnings: vec![],
                });
            }
            let m = meta_mut(&mut obj);
            m.insert("deletionTimestamp".into(), now.into());
            m.insert("deletionGracePeriodSeconds".into(), 0.into());
            if info.has_generation {
                let g = m.get("generation").and_then(Value::as_i64).unwrap_or(0);
                m.insert("generation".into(), (g + 1).into());
            }
            if !opts.dry_run {
                self.commit(&mut store, "MODIFIED", key, &url_ns, name, &mut obj);
            }
            return Ok(Outcome {
                code: 200,
                body: obj,
                warnings: vec![],
            });
        }
        if opts.dry_run {
            return Ok(Outcome {
                code: 200,
                body: delete_answer(info, &obj),
                warnings: vec![],
            });
        }
        if *key == ResourceKey::NAMESPACES {
            // The namespace controller empties a terminating namespace; done at once here.
            let content: Vec<(ResourceKey, String, Value)> = store
                .objects
                .iter()
                .filter(|(k, _)| k.namespaced())
                .flat_map(|(k, bucket)| {
                    bucket
                        .iter()
                        .filter(|((ns, _), _)| ns == name)
                        .map(|((_, o), v)| (*k, o.clone(), v.clone()))
                })
                .collect();
            for (k, o, mut v) in content {
                self.commit(&mut store, "DELETED", &k, name, &o, &mut v);
            }
            meta_mut(&mut obj).insert("deletionTimestamp".into(), now.into());
            obj["status"] = json!({"phase": "Terminating"});
        }
        self.commit(&mut store, "DELETED", key, &url_ns, name, &mut obj);
        Ok(Outcome {
            code: 200,
            body: delete_answer(info, &obj),
            warnings: vec![],
        })
    }

    // ---------------------------------------------------------------- internals

    /// Field pruning, unknown-field handling, defaults and per-type normalisation; returns the
    /// `Warning`s (unknown fields with `fieldValidation=Warn`).
    fn normalize(
        &self,
        info: &'static ResourceInfo,
        body: &mut Value,
        old: Option<&Value>,
        sub: Sub,
        opts: WriteOpts,
        store: &mut Store,
    ) -> Result<Vec<String>, ApiError> {
        let key = &info.key;
        let mut dropped = Vec::new();
        if let Some(obj) = body.as_object_mut() {
            let keys: Vec<String> = obj.keys().cloned().collect();
            for k in keys {
                let known = matches!(k.as_str(), "apiVersion" | "kind" | "metadata")
                    || if *key == ResourceKey::ELASTICSEARCHES {
                        matches!(k.as_str(), "spec" | "status")
                    } else {
                        builtin_fields(key).contains(&k.as_str())
                    };
                if !known {
                    obj.remove(&k);
                    dropped.push(k);
                }
            }
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                let keys: Vec<String> = m.keys().cloned().collect();
                for k in keys {
                    if !OBJECT_META_FIELDS.contains(&k.as_str()) {
                        m.remove(&k);
                        dropped.push(format!("metadata.{k}"));
                    }
                }
                // ObjectMeta's labels and annotations are `omitempty` maps
                // (k8s.io/apimachinery/pkg/apis/meta/v1/types.go): an empty one is not stored.
                for k in ["labels", "annotations"] {
                    if m.get(k)
                        .and_then(Value::as_object)
                        .is_some_and(|o| o.is_empty())
                    {
                        m.remove(k);
                    }
                }
            }
        }
        check_metadata(key, body)?;
        if *key == ResourceKey::ELASTICSEARCHES
            && let Some(schema) = &self.es_schema
        {
            for part in ["spec", "status"] {
                if let Some(v) = body.get_mut(part)
                    && let Some(s) = schema.property(part)
                {
                    if v.is_null() {
                        if let Some(o) = body.as_object_mut() {
                            o.remove(part);
                        }
                        continue;
                    }
                    s.prune(v, part, &mut dropped);
                }
            }
        }
        let unknown: Vec<String> = dropped
            .iter()
            .map(|d| format!("unknown field \"{d}\""))
            .collect();
        let warnings = match opts.field_validation {
            FieldValidation::Strict if !unknown.is_empty() => {
                return Err(ApiError::bad_request(format!(
                    "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
                    unknown.join(", "),
                    kind = info.kind,
                    v = info.key.version,
                )));
            }
            FieldValidation::Warn => unknown,
            _ => Vec::new(),
        };
        // Status handling of the main resource: status comes from the stored object.
        if info.status_subresource && sub == Sub::Main {
            let old_status = old.and_then(|o| o.get("status")).cloned();
            if let Some(o) = body.as_object_mut() {
                match old_status {
                    Some(s) => {
                        o.insert("status".into(), s);
                    }
                    None => {
                        o.remove("status");
                    }
                }
            }
        }
        match key.plural {
            "secrets" => normalize_secret(body, old)?,
            "configmaps" => {
                if let Some(d) = body.get("data")
                    && !d.is_null()
                    && !d
                        .as_object()
                        .is_some_and(|m| m.values().all(Value::is_string))
                {
                    return Err(ApiError::bad_request(
                        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: data values must be strings",
                    ));
                }
            }
            "namespaces" => {
                if old.is_none() {
                    body["spec"] = json!({"finalizers": ["kubernetes"]});
                    body["status"] = json!({"phase": "Active"});
                }
                let name = meta_str(body, "name").to_string();
                let labels = meta_mut(body).entry("labels").or_insert_with(|| json!({}));
                if let Some(l) = labels.as_object_mut() {
                    l.insert("kubernetes.io/metadata.name".into(), name.into());
                }
            }
            "services" if old.is_none() => {
                if body.get("spec").is_none() {
                    body["spec"] = json!({});
                }
                let spec = &mut body["spec"];
                if spec.get("type").is_none() {
                    spec["type"] = "ClusterIP".into();
                }
                let ty = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
                if spec.get("clusterIP").is_none() && ty != "ExternalName" {
                    store.next_cluster_ip += 1;
                    let n = store.next_cluster_ip;
                    let ip = format!("10.96.{}.{}", n / 250, n % 250 + 2);
                    spec["clusterIP"] = ip.clone().into();
                    spec["clusterIPs"] = json!([ip]);
                }
                if sub == Sub::Main {
                    body["status"] = json!({"loadBalancer": {}});
                }
            }
            "pods" if old.is_none() && sub == Sub::Main => {
                body["status"] = json!({"phase": "Pending"});
            }
            _ => {}
        }
        Ok(warnings)
    }

    fn validate(
        &self,
        info: &'static ResourceInfo,
        body: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let key = &info.key;
        let name = meta_str(body, "name");
        let mut causes = Vec::new();
        if old.is_none() {
            let ok = match key.plural {
                "namespaces" => is_dns1123_label(name),
                "services" => is_dns1035_label(name),
                _ => is_dns1123_subdomain(name),
            };
            if !ok {
                let what = match key.plural {
                    "namespaces" => {
                        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
                    }
                    "services" => {
                        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
                    }
                    _ => {
                        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
                    }
                };
                causes.push(Cause::invalid(
                    "metadata.name",
                    &Value::String(name.into()),
                    what,
                ));
            }
        }
        if let Some(labels) = meta(body)
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
        {
            for v in labels.values() {
                let v = v.as_str().unwrap_or("");
                if !valid_label_value(v) {
                    causes.push(Cause::invalid(
                        "metadata.labels",
                        &Value::String(v.into()),
                        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                    ));
                }
            }
        }
        if *key == ResourceKey::ELASTICSEARCHES
            && let Some(schema) = &self.es_schema
        {
            // `spec` is not in the top-level `required`, so an absent spec passes the schema;
            // ECK's webhook then refuses it (no version).
            for part in ["spec", "status"] {
                if let (Some(s), Some(v)) = (schema.property(part), body.get(part)) {
                    s.validate(v, part, &mut causes);
                }
            }
        }
        if !causes.is_empty() {
            return Err(ApiError::invalid(key, name, causes));
        }
        if *key == ResourceKey::ELASTICSEARCHES && self.eck.is_some() && self.webhook() {
            admission::validate_elasticsearch(body, old)?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- seeding

    /// Writes an object as the system would (no validation): namespaces, the CRD.
    pub(crate) fn seed_raw(&self, key: &ResourceKey, mut obj: Value) {
        let mut store = self.store.lock().expect("store lock");
        let info = key.info().expect("known resource");
        let ns = if info.namespaced {
            meta_str(&obj, "namespace").to_string()
        } else {
            String::new()
        };
        let name = meta_str(&obj, "name").to_string();
        let m = meta_mut(&mut obj);
        m.insert("uid".into(), uuid::Uuid::new_v4().to_string().into());
        m.insert("creationTimestamp".into(), now_rfc3339().into());
        if info.has_generation {
            m.insert("generation".into(), 1.into());
        }
        // Through the one commit path, so watches and the history see seeded objects too.
        self.commit(&mut store, "ADDED", key, &ns, &name, &mut obj);
    }

    pub(crate) fn ensure_namespace(&self, ns: &str) {
        let exists = self.store.lock().expect("store lock").namespace_exists(ns);
        if !exists {
            self.seed_raw(
                &ResourceKey::NAMESPACES,
                json!({
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                }),
            );
        }
    }
}

/// Whether `metadata.finalizers` holds any finalizer.
fn has_finalizers(obj: &Value) -> bool {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
}

/// Whether a strategic merge patch uses `$`-directives (keys starting with `$`).
fn has_directive(v: &Value) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| k.starts_with('$') || has_directive(v)),
        Value::Array(a) => a.iter().any(has_directive),
        _ => false,
    }
}

/// A body's `metadata.name` must be the URL's.
fn check_name(body: &Value, name: &str) -> Result<(), ApiError> {
    let body_name = meta_str(body, "name");
    if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    Ok(())
}

/// A body's `metadata.namespace`, when set on a namespaced type, must be the URL's.
fn check_namespace(info: &ResourceInfo, body: &Value, url_ns: &str) -> Result<(), ApiError> {
    let body_ns = meta_str(body, "namespace");
    if info.namespaced && !body_ns.is_empty() && body_ns != url_ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

fn crd_read_only() -> ApiError {
    ApiError::method_not_allowed(
        "the sandbox serves CustomResourceDefinitions read-only (its CRDs are built in)",
    )
}

/// The answer of apiextensions-apiserver to a patch type it does not accept.
pub(crate) fn unknown_patch_format() -> ApiError {
    ApiError::unsupported_media_type(
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
    )
}

/// A JSON patch that does not apply: 422 (`patch.go`: `NewGenericServerResponse(422, ...)`).
fn json_patch_error(p: &json_patch::Patch, e: json_patch::PatchError) -> ApiError {
    let message = match e.kind {
        json_patch::PatchErrorKind::TestFailed => {
            format!("testing value {} failed: test failed", e.path)
        }
        _ => {
            let op =
                p.0.get(e.operation)
                    .map(|o| serde_json::to_value(o).ok())
                    .and_then(|v| v)
                    .and_then(|v| v.get("op").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_default();
            format!(
                "{op} operation does not apply: doc is missing path: \"{}\": missing value",
                e.path
            )
        }
    };
    ApiError {
        code: 422,
        reason: "Invalid",
        message,
        details: Some(json!({})),
    }
}

fn delete_answer(info: &ResourceInfo, obj: &Value) -> Value {
    if info.delete_returns_object {
        return obj.clone();
    }
    let mut details = json!({
        "name": meta_str(obj, "name"),
        "kind": info.key.plural,
        "uid": meta_str(obj, "uid"),
    });
    if !info.key.group.is_empty() {
        details["group"] = info.key.group.into();
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

/// Items of typed (built-in) lists carry no apiVersion/kind; unstructured ones do.
fn list_item(info: &ResourceInfo, obj: &Value) -> Value {
    if info.key == ResourceKey::ELASTICSEARCHES || info.key.plural == "customresourcedefinitions" {
        return obj.clone();
    }
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
    }
    o
}

fn check_type_meta(info: &ResourceInfo, body: &Value, required: bool) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: the body must be a JSON object",
            info.kind, info.key.version, info.kind
        )));
    }
    let kind = body.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = body.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if required
        && (kind.is_empty() || api_version.is_empty())
        && info.key == ResourceKey::ELASTICSEARCHES
    {
        return Err(ApiError::bad_request(format!(
            "Object 'Kind' is missing in '{}'",
            serde_json::to_string(body).unwrap_or_default()
        )));
    }
    if !kind.is_empty() && kind != info.kind {
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: no kind \"{kind}\" is registered for version \"{api_version}\"",
            info.kind, info.key.version, info.kind
        )));
    }
    if !api_version.is_empty() && api_version != info.key.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            info.key.api_version()
        )));
    }
    Ok(())
}

fn check_metadata(key: &ResourceKey, body: &Value) -> Result<(), ApiError> {
    let Some(m) = body.get("metadata") else {
        return Ok(());
    };
    if !m.is_object() {
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: metadata must be an object",
            key.kind(),
            key.version,
            key.kind()
        )));
    }
    for f in ["labels", "annotations"] {
        if let Some(v) = m.get(f)
            && !v.is_null()
            && !v
                .as_object()
                .is_some_and(|o| o.values().all(Value::is_string))
        {
            return Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: json: cannot unmarshal into Go struct field ObjectMeta.metadata.{f} of type map[string]string",
                key.kind(),
                key.version,
                key.kind()
            )));
        }
    }
    Ok(())
}

/// Secrets: `stringData` is merged into base64 `data` and dropped; `data` must be base64;
/// `type` defaults to Opaque and is immutable (`pkg/registry/core/secret/strategy.go`).
fn normalize_secret(body: &mut Value, old: Option<&Value>) -> Result<(), ApiError> {
    let obj = body.as_object_mut().expect("object checked");
    let mut data = match obj.remove("data") {
        Some(Value::Object(m)) => m,
        Some(Value::Null) | None => Map::new(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "Secret in version \"v1\" cannot be handled as a Secret: json: cannot unmarshal into Go struct field Secret.data of type map[string][]uint8",
            ));
        }
    };
    for (k, v) in &data {
        let ok = v.as_str().is_some_and(|s| B64.decode(s).is_ok());
        if !ok {
            return Err(ApiError::bad_request(format!(
                "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data in key {k:?}"
            )));
        }
    }
    match obj.remove("stringData") {
        Some(Value::Object(sd)) => {
            for (k, v) in sd {
                let s = v.as_str().ok_or_else(|| {
                    ApiError::bad_request(
                        "Secret in version \"v1\" cannot be handled as a Secret: stringData values must be strings",
                    )
                })?;
                data.insert(k, B64.encode(s.as_bytes()).into());
            }
        }
        Some(Value::Null) | None => {}
        Some(_) => {
            return Err(ApiError::bad_request(
                "Secret in version \"v1\" cannot be handled as a Secret: stringData must be an object",
            ));
        }
    }
    if !data.is_empty() {
        obj.insert("data".into(), Value::Object(data));
    }
    let ty = obj
        .get("type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .unwrap_or("Opaque")
        .to_string();
    if let Some(old_ty) = old.and_then(|o| o.get("type")).and_then(Value::as_str)
        && old_ty != ty
    {
        let name = obj
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        return Err(ApiError::invalid(
            &ResourceKey::SECRETS,
            &name,
            vec![Cause::invalid(
                "type",
                &Value::String(ty),
                "field is immutable",
            )],
        ));
    }
    obj.insert("type".into(), ty.into());
    Ok(())
}
