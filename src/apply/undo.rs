//! The journal of a plan being applied: for each step done, how to take exactly that step back.
//!
//! An undo never restores a whole map or a whole `data`: it reverts the operations its step
//! applied, one field (or Secret/ConfigMap key, or link record) at a time, and only where the
//! value is still the one the step wrote. The object is re-read before each undo and the undo is
//! sent with a `test` of that read's resourceVersion and of every value it takes back; on a
//! conflict it re-reads and checks again. A value someone else changed since stops the undo of
//! that object: it is left as it is, and the report says which object and which field.
//!
//! The journal outlives one attempt: after a conflict the command re-plans and carries on with
//! the same journal, so a final failure takes back the earlier attempts' steps too.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use serde_json::{Value, json};

use crate::es::EsClient;
use crate::k8s::clients::ContextClient;
use crate::k8s::eck::elasticsearch_resource;
use crate::plan::{CA_BLOCK_MARKER, ClusterId, INCOMING_ANNOTATION, LINKS_ANNOTATION, ObjectKind};

/// How many times an undo re-reads its object after a conflict before it gives up.
const UNDO_ATTEMPTS: usize = 5;

/// One operation a step applied, and what to put back. Deliberately not `Debug`: a Secret's
/// values may be in it.
#[derive(Clone, PartialEq)]
pub struct Inverse {
    /// The JSON pointer the step wrote (an array element by its real index).
    pub path: String,
    /// What the step left there; `None` when it removed the value.
    pub wrote: Option<Value>,
    /// What was there before; `None` when the step created it.
    pub before: Option<Value>,
    /// An array element inserted or removed: taken back by position.
    pub positional: bool,
}

/// The object an undo works on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Elasticsearch,
    Object(ObjectKind),
}

/// How to take one applied step back. Deliberately not `Debug`: Secret data may be in it.
#[derive(Clone)]
pub enum Undo {
    /// Revert the operations of a JSON patch, newest first. On an Elasticsearch resource,
    /// `records_before` are the link records it held before the step: records added since by
    /// someone else mean another link uses what this step set up, so only this step's own
    /// records are taken back then.
    Patch {
        cluster: ClusterId,
        target: Target,
        name: String,
        inverses: Vec<Inverse>,
        records_before: BTreeSet<String>,
    },
    /// Delete a Secret or ConfigMap this run created, if it holds only what the run wrote;
    /// with keys someone else added, only this run's keys are removed.
    DeleteCreated {
        cluster: ClusterId,
        object: ObjectKind,
        name: String,
        data: serde_json::Map<String, Value>,
    },
    /// Delete a Service this run created.
    Delete {
        cluster: ClusterId,
        object: ObjectKind,
        name: String,
    },
    /// Put back persistent cluster settings (`null` for those that were not set), each only if
    /// it still has the value this run wrote.
    Settings {
        cluster: ClusterId,
        previous: serde_json::Map<String, Value>,
        wrote: serde_json::Map<String, Value>,
    },
    /// Invalidate an API key this run created.
    InvalidateKey { cluster: ClusterId, id: String },
    /// A step that cannot be taken back (a deletion, an invalidation, an unusual patch).
    Irreversible { cluster: ClusterId, what: String },
}

/// How one undo ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undone {
    /// Taken back, and a re-read shows the values the step changed are back to their
    /// before-values. `kept` names what was deliberately left (used by a link made since).
    Done { kept: Vec<String> },
    /// Not taken back, or only partly: the text says what is left and why.
    Left(String),
}

impl Undo {
    pub fn cluster(&self) -> &ClusterId {
        match self {
            Undo::Patch { cluster, .. }
            | Undo::DeleteCreated { cluster, .. }
            | Undo::Delete { cluster, .. }
            | Undo::Settings { cluster, .. }
            | Undo::InvalidateKey { cluster, .. }
            | Undo::Irreversible { cluster, .. } => cluster,
        }
    }

    /// The object an undo works on, to stop undoing it once one undo of it was left.
    pub fn object(&self) -> String {
        match self {
            Undo::Patch {
                cluster,
                target,
                name,
                ..
            } => match target {
                Target::Elasticsearch => format!("Elasticsearch {cluster}"),
                Target::Object(kind) => object_name(cluster, *kind, name),
            },
            Undo::DeleteCreated {
                cluster,
                object,
                name,
                ..
            }
            | Undo::Delete {
                cluster,
                object,
                name,
            } => object_name(cluster, *object, name),
            Undo::Settings { cluster, .. } => format!("the cluster settings of {cluster}"),
            Undo::InvalidateKey { cluster, id } => format!("API key {id} on {cluster}"),
            Undo::Irreversible { what, .. } => what.clone(),
        }
    }

    pub fn needs_elasticsearch(&self) -> bool {
        matches!(self, Undo::Settings { .. } | Undo::InvalidateKey { .. })
    }

    /// Takes the step back. `es` reaches the step's Elasticsearch when it needs one.
    pub async fn run(&self, client: &ContextClient, es: Option<&EsClient>) -> Undone {
        match self.try_run(client, es).await {
            Ok(undone) => undone,
            Err(err) => Undone::Left(format!("{}: could not undo ({err})", self.object())),
        }
    }

    async fn try_run(
        &self,
        client: &ContextClient,
        es: Option<&EsClient>,
    ) -> anyhow::Result<Undone> {
        match self {
            Undo::Patch {
                cluster,
                target,
                name,
                inverses,
                records_before,
            } => {
                let api = dynamic_api(client, cluster, *target);
                let check_files = matches!(target, Target::Elasticsearch);
                let object = self.object();
                let undo = UndoPatch {
                    object: &object,
                    inverses,
                    records_before,
                    check_files,
                };
                undo_patch(client, &api, name, undo).await
            }
            Undo::DeleteCreated {
                cluster,
                object,
                name,
                data,
            } => {
                let api = dynamic_api(client, cluster, Target::Object(*object));
                undo_create(client, &api, name, &self.object(), data).await
            }
            Undo::Delete {
                cluster,
                object,
                name,
            } => {
                let params = DeleteParams::default();
                let c = client.client.clone();
                let ns = &cluster.namespace;
                let result = match object {
                    ObjectKind::Secret => client
                        .call(Api::<Secret>::namespaced(c, ns).delete(name, &params))
                        .await
                        .map(|_| ()),
                    ObjectKind::ConfigMap => client
                        .call(Api::<ConfigMap>::namespaced(c, ns).delete(name, &params))
                        .await
                        .map(|_| ()),
                    ObjectKind::Service => client
                        .call(Api::<Service>::namespaced(c, ns).delete(name, &params))
                        .await
                        .map(|_| ()),
                };
                match result {
                    Err(f) if f.http_status != Some(404) => Err(anyhow::anyhow!("{}", f.message)),
                    _ => Ok(Undone::Done { kept: Vec::new() }),
                }
            }
            Undo::Settings {
                cluster,
                previous,
                wrote,
            } => {
                let es = es.ok_or_else(|| anyhow::anyhow!("Elasticsearch cannot be reached"))?;
                let current = es.get("/_cluster/settings?flat_settings=true").await?;
                let mut restore = serde_json::Map::new();
                let mut moved = Vec::new();
                for (key, value) in wrote {
                    if same_setting(current["persistent"].get(key), value) {
                        restore.insert(key.clone(), previous.get(key).cloned().unwrap_or_default());
                    } else {
                        moved.push(key.clone());
                    }
                }
                if !restore.is_empty() {
                    es.put("/_cluster/settings", &json!({ "persistent": restore }))
                        .await?;
                }
                if moved.is_empty() {
                    Ok(Undone::Done { kept: Vec::new() })
                } else {
                    Ok(Undone::Left(format!(
                        "the cluster settings of {cluster}: {} changed by someone else since, left as they are",
                        moved.join(", ")
                    )))
                }
            }
            Undo::InvalidateKey { cluster, id } => {
                let es = es.ok_or_else(|| anyhow::anyhow!("Elasticsearch cannot be reached"))?;
                es.delete("/_security/api_key", &json!({ "ids": [id] }))
                    .await?;
                crate::output::warning(&format!(
                    "invalidated the API key {id} created on {cluster}, since the command could not be completed"
                ));
                Ok(Undone::Done { kept: Vec::new() })
            }
            Undo::Irreversible { what, .. } => {
                Ok(Undone::Left(format!("{what} cannot be taken back")))
            }
        }
    }
}

fn object_name(cluster: &ClusterId, kind: ObjectKind, name: &str) -> String {
    format!(
        "{kind:?} {}/{name} (context {})",
        cluster.namespace, cluster.context
    )
}

fn dynamic_api(client: &ContextClient, cluster: &ClusterId, target: Target) -> Api<DynamicObject> {
    let resource = match target {
        Target::Elasticsearch => elasticsearch_resource(),
        Target::Object(ObjectKind::Secret) => ApiResource::erase::<Secret>(&()),
        Target::Object(ObjectKind::ConfigMap) => ApiResource::erase::<ConfigMap>(&()),
        Target::Object(ObjectKind::Service) => ApiResource::erase::<Service>(&()),
    };
    Api::namespaced_with(client.client.clone(), &cluster.namespace, &resource)
}

async fn read(
    client: &ContextClient,
    api: &Api<DynamicObject>,
    name: &str,
) -> anyhow::Result<Option<Value>> {
    match client.call(api.get(name)).await {
        Ok(object) => Ok(Some(serde_json::to_value(object)?)),
        Err(f) if f.http_status == Some(404) => Ok(None),
        Err(f) => Err(anyhow::anyhow!("{}", f.message)),
    }
}

fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(crate::apply::FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    }
}

fn resource_version(object: &Value) -> Value {
    object
        .pointer("/metadata/resourceVersion")
        .cloned()
        .unwrap_or(Value::Null)
}

/// Sends `ops` behind a `test` of the resourceVersion read; `Ok(false)` on a conflict.
async fn guarded_patch(
    client: &ContextClient,
    api: &Api<DynamicObject>,
    name: &str,
    current: &Value,
    ops: Vec<Value>,
) -> anyhow::Result<bool> {
    let mut all = vec![
        json!({"op": "test", "path": "/metadata/resourceVersion", "value": resource_version(current)}),
    ];
    all.extend(ops);
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(all))?;
    match client
        .call(api.patch(name, &params(), &Patch::Json::<()>(patch)))
        .await
    {
        Ok(_) => Ok(true),
        Err(f) if matches!(f.http_status, Some(409 | 422)) => {
            // A failed test and an invalid patch both answer 422: only a moved object retries.
            match read(client, api, name).await? {
                Some(now) if resource_version(&now) != resource_version(current) => Ok(false),
                _ => Err(anyhow::anyhow!("{}", f.message)),
            }
        }
        Err(f) => Err(anyhow::anyhow!("{}", f.message)),
    }
}

/// What [`undo_patch`] takes back, on which object.
struct UndoPatch<'a> {
    object: &'a str,
    inverses: &'a [Inverse],
    records_before: &'a BTreeSet<String>,
    /// An Elasticsearch spec: the spec taken back must name only volumes and files that exist.
    check_files: bool,
}

async fn undo_patch(
    client: &ContextClient,
    api: &Api<DynamicObject>,
    name: &str,
    undo: UndoPatch<'_>,
) -> anyhow::Result<Undone> {
    let UndoPatch {
        object,
        inverses,
        records_before,
        check_files,
    } = undo;
    for _ in 0..UNDO_ATTEMPTS {
        let Some(current) = read(client, api, name).await? else {
            return Ok(Undone::Left(format!(
                "{object} was deleted by someone else since"
            )));
        };
        let planned = match undo_ops(&current, inverses, records_before) {
            Ok(planned) => planned,
            Err(moved) => {
                return Ok(Undone::Left(format!(
                    "{object}: {moved} was changed by someone else since, so this step's changes to it are left as they are"
                )));
            }
        };
        if check_files
            && !planned.ops.is_empty()
            && let Some(after) = super::files::patched(&current, &planned.ops)
            && let Some(why) =
                super::files::broken_reference(client, &super::files::Overlay::default(), &after)
                    .await?
        {
            return Ok(Undone::Left(format!(
                "{object}: not taken back, the spec it would restore is refused: {why}"
            )));
        }
        if !planned.ops.is_empty()
            && !guarded_patch(client, api, name, &current, planned.ops).await?
        {
            continue;
        }
        // A re-read confirms the values are back to what they were.
        let Some(after) = read(client, api, name).await? else {
            return Ok(Undone::Left(format!(
                "{object} was deleted while being undone"
            )));
        };
        return Ok(match not_restored(&after, inverses, &planned.kept_paths) {
            None => Undone::Done {
                kept: planned
                    .kept
                    .iter()
                    .map(|what| format!("{object}: {what}"))
                    .collect(),
            },
            Some(path) => Undone::Left(format!(
                "{object}: {path} is not back to its value before the command"
            )),
        });
    }
    Ok(Undone::Left(format!(
        "{object}: kept changing while being undone; this step's changes to it are left"
    )))
}

async fn undo_create(
    client: &ContextClient,
    api: &Api<DynamicObject>,
    name: &str,
    object: &str,
    data: &serde_json::Map<String, Value>,
) -> anyhow::Result<Undone> {
    let inverses: Vec<Inverse> = data
        .iter()
        .map(|(key, value)| Inverse {
            path: format!("/data/{}", escape(key)),
            wrote: Some(value.clone()),
            before: None,
            positional: false,
        })
        .collect();
    for _ in 0..UNDO_ATTEMPTS {
        let Some(current) = read(client, api, name).await? else {
            return Ok(Undone::Done { kept: Vec::new() });
        };
        let planned = match undo_ops(&current, &inverses, &BTreeSet::new()) {
            Ok(planned) => planned,
            Err(moved) => {
                return Ok(Undone::Left(format!(
                    "{object}: {moved} was changed by someone else since, so the object is left as it is"
                )));
            }
        };
        let mut undone = current.clone();
        let patch: json_patch::Patch = serde_json::from_value(Value::Array(planned.ops.clone()))?;
        json_patch::patch(&mut undone, &patch)?;
        let foreign: Vec<String> = undone
            .get("data")
            .and_then(Value::as_object)
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default();
        if foreign.is_empty() {
            // Only what this command wrote is in it: delete it, unless it changed meanwhile.
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: current["metadata"]["resourceVersion"]
                        .as_str()
                        .map(str::to_string),
                    uid: None,
                }),
                ..DeleteParams::default()
            };
            match client.call(api.delete(name, &params)).await {
                Ok(_) => return Ok(Undone::Done { kept: Vec::new() }),
                Err(f) if f.http_status == Some(404) => {
                    return Ok(Undone::Done { kept: Vec::new() });
                }
                Err(f) if f.http_status == Some(409) => continue,
                Err(f) => anyhow::bail!("{}", f.message),
            }
        }
        // Someone else keeps keys in it: take out only what this command wrote.
        if guarded_patch(client, api, name, &current, planned.ops).await? {
            return Ok(Undone::Done {
                kept: vec![format!(
                    "{object} is kept: it holds keys someone else added ({}); only this command's content was removed",
                    foreign.join(", ")
                )],
            });
        }
    }
    Ok(Undone::Left(format!(
        "{object}: kept changing while being undone, so it is left"
    )))
}

/// Escapes a key for a JSON pointer.
pub fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(at) => (&path[..at], &path[at + 1..]),
        None => ("", path),
    }
}

/// The inverse of each operation of `forward` (a JSON patch, placeholders already replaced)
/// applied to `before`, in the order the operations were applied. An `add` of a whole
/// annotations or labels map that did not exist is taken apart into one inverse per key, so that
/// keys someone else adds to the new map later stay.
pub fn inverse_ops(before: &Value, forward: &[Value]) -> Result<Vec<Inverse>, String> {
    let mut doc = before.clone();
    let mut inverses = Vec::new();
    for op in forward {
        let kind = op["op"].as_str().unwrap_or_default();
        if kind == "test" {
            continue;
        }
        let path = op["path"]
            .as_str()
            .ok_or_else(|| "an operation without a path".to_string())?;
        let (parent, last) = split_pointer(path);
        let in_array = doc.pointer(parent).is_some_and(Value::is_array);
        let value = op.get("value").cloned();
        match kind {
            "add" if in_array => {
                let len = doc
                    .pointer(parent)
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                let index = if last == "-" {
                    len
                } else {
                    last.parse()
                        .map_err(|_| format!("{path} is not an array index"))?
                };
                inverses.push(Inverse {
                    path: format!("{parent}/{index}"),
                    wrote: value,
                    before: None,
                    positional: true,
                });
            }
            "add" | "replace" => {
                let was = doc.pointer(path).cloned();
                let map_created = was.is_none()
                    && matches!(path, "/metadata/annotations" | "/metadata/labels")
                    && value.as_ref().is_some_and(Value::is_object);
                if map_created {
                    for (key, entry) in value.iter().filter_map(Value::as_object).flatten() {
                        inverses.push(Inverse {
                            path: format!("{path}/{}", escape(key)),
                            wrote: Some(entry.clone()),
                            before: None,
                            positional: false,
                        });
                    }
                } else {
                    inverses.push(Inverse {
                        path: path.to_string(),
                        wrote: value,
                        before: was,
                        positional: false,
                    });
                }
            }
            "remove" => inverses.push(Inverse {
                path: path.to_string(),
                wrote: None,
                before: doc.pointer(path).cloned(),
                positional: in_array,
            }),
            other => return Err(format!("a {other:?} operation cannot be taken back")),
        }
        let single: json_patch::Patch =
            serde_json::from_value(json!([op])).map_err(|e| e.to_string())?;
        json_patch::patch(&mut doc, &single).map_err(|e| e.to_string())?;
    }
    Ok(inverses)
}

/// The operations that take `inverses` back on `current`, and what was kept on purpose.
#[derive(Debug, Default, PartialEq)]
pub struct Planned {
    pub ops: Vec<Value>,
    /// Readable: what is left because another link recorded since uses it.
    pub kept: Vec<String>,
    pub kept_paths: Vec<String>,
}

/// An annotation holding link records: a JSON object, one record per key.
fn record_annotation(path: &str) -> bool {
    [LINKS_ANNOTATION, INCOMING_ANNOTATION]
        .iter()
        .any(|a| path == format!("/metadata/annotations/{}", escape(a)))
}

fn records(value: Option<&Value>) -> Option<serde_json::Map<String, Value>> {
    match value {
        None => Some(serde_json::Map::new()),
        Some(Value::String(text)) => serde_json::from_str(text).ok(),
        Some(_) => None,
    }
}

/// The link records of an object (both annotations), by annotation and key.
pub fn record_keys(object: &Value) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for annotation in [LINKS_ANNOTATION, INCOMING_ANNOTATION] {
        let path = format!("/metadata/annotations/{}", escape(annotation));
        for key in records(object.pointer(&path)).unwrap_or_default().keys() {
            keys.insert(format!("{annotation}:{key}"));
        }
    }
    keys
}

fn readable(path: &str) -> String {
    let segments: Vec<String> = path.split('/').skip(1).map(unescape).collect();
    match segments.as_slice() {
        [metadata, annotations, key] if metadata == "metadata" && annotations == "annotations" => {
            format!("annotation {key}")
        }
        [data, key] if data == "data" => format!("key {key}"),
        _ => segments.join("."),
    }
}

/// Computes the undo of `inverses` (newest first) against `current`. `Err` names the first field
/// whose value is no longer the one the step wrote.
pub fn undo_ops(
    current: &Value,
    inverses: &[Inverse],
    records_before: &BTreeSet<String>,
) -> Result<Planned, String> {
    // Link records added since by someone else: what this step set up is now shared.
    let wrote_records: BTreeSet<String> = inverses
        .iter()
        .filter(|i| record_annotation(&i.path))
        .flat_map(|i| {
            let annotation = unescape(i.path.rsplit('/').next().unwrap_or_default());
            records(i.wrote.as_ref())
                .unwrap_or_default()
                .keys()
                .map(|k| format!("{annotation}:{k}"))
                .collect::<Vec<_>>()
        })
        .collect();
    let others: Vec<String> = record_keys(current)
        .into_iter()
        .filter(|k| !records_before.contains(k) && !wrote_records.contains(k))
        .collect();
    let mut doc = current.clone();
    let mut planned = Planned::default();
    for inverse in inverses.iter().rev() {
        let path = &inverse.path;
        let here = doc.pointer(path).cloned();
        let ops = if record_annotation(path) {
            let (Some(now), Some(wrote), Some(before)) = (
                records(here.as_ref()),
                records(inverse.wrote.as_ref()),
                records(inverse.before.as_ref()),
            ) else {
                return Err(readable(path));
            };
            let mut restored = now.clone();
            for key in wrote.keys().chain(before.keys()) {
                if wrote.get(key) == before.get(key) {
                    continue;
                }
                if now.get(key) != wrote.get(key) {
                    return Err(format!("the record {key:?} in {}", readable(path)));
                }
                match before.get(key) {
                    Some(value) => restored.insert(key.clone(), value.clone()),
                    None => restored.remove(key),
                };
            }
            let mut ops = Vec::new();
            if let Some(here) = &here {
                ops.push(json!({"op": "test", "path": path, "value": here}));
            }
            if restored.is_empty() && inverse.before.is_none() {
                if here.is_some() {
                    ops.push(json!({"op": "remove", "path": path}));
                }
            } else if restored != now {
                let text = serde_json::to_string(&restored).map_err(|e| e.to_string())?;
                ops.push(json!({"op": "add", "path": path, "value": text}));
            } else {
                ops.clear();
            }
            ops
        } else if !others.is_empty() {
            planned.kept.push(format!(
                "{} is kept: a link recorded since ({}) uses it",
                readable(path),
                others.join(", ")
            ));
            planned.kept_paths.push(path.clone());
            continue;
        } else if inverse.positional {
            match (&inverse.wrote, &inverse.before) {
                (Some(wrote), _) => {
                    if here.as_ref() != Some(wrote) {
                        return Err(readable(path));
                    }
                    vec![
                        json!({"op": "test", "path": path, "value": wrote}),
                        json!({"op": "remove", "path": path}),
                    ]
                }
                (None, Some(before)) => {
                    let (parent, last) = split_pointer(path);
                    let fits = doc
                        .pointer(parent)
                        .and_then(Value::as_array)
                        .zip(last.parse::<usize>().ok())
                        .is_some_and(|(items, index)| index <= items.len());
                    if !fits {
                        return Err(readable(parent));
                    }
                    vec![json!({"op": "add", "path": path, "value": before})]
                }
                (None, None) => Vec::new(),
            }
        } else if here != inverse.wrote
            && let Some(restored) = without_blocks(here.as_ref(), inverse)
        {
            // A bundle of marked CA blocks someone else added blocks to: take back this step's.
            let mut ops = vec![json!({"op": "test", "path": path, "value": here})];
            match restored {
                Some(text) => ops.push(json!({"op": "add", "path": path, "value": text})),
                None => ops.push(json!({"op": "remove", "path": path})),
            }
            ops
        } else {
            if here != inverse.wrote {
                return Err(readable(path));
            }
            let mut ops = Vec::new();
            if let Some(wrote) = &inverse.wrote {
                ops.push(json!({"op": "test", "path": path, "value": wrote}));
            }
            match &inverse.before {
                Some(before) => {
                    let (parent, _) = split_pointer(path);
                    if doc.pointer(parent).is_none() {
                        return Err(readable(parent));
                    }
                    // `add` at an array index inserts: a value still there is replaced instead.
                    let op = if here.is_some() { "replace" } else { "add" };
                    ops.push(json!({"op": op, "path": path, "value": before}));
                }
                None if here.is_some() => ops.push(json!({"op": "remove", "path": path})),
                None => {}
            }
            ops
        };
        if !ops.is_empty() {
            let patch: json_patch::Patch =
                serde_json::from_value(Value::Array(ops.clone())).map_err(|e| e.to_string())?;
            json_patch::patch(&mut doc, &patch).map_err(|_| readable(path))?;
            planned.ops.extend(ops);
        }
    }
    Ok(planned)
}

/// A text of marked CA blocks, by label (the preamble before the first marker under "").
fn blocks(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(CA_BLOCK_MARKER) {
            let label = rest.split(' ').next().unwrap_or_default().to_string();
            out.push((label, String::new()));
        } else if out.is_empty() {
            out.push((String::new(), String::new()));
        }
        if let Some((_, block)) = out.last_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    out
}

/// `here` with the blocks this step changed put back as they were, when `here` still has them
/// as the step wrote them: `Some(None)` when nothing is left of a value the step created.
fn without_blocks(here: Option<&Value>, inverse: &Inverse) -> Option<Option<String>> {
    let text = |v: Option<&Value>| match v {
        None => Some(String::new()),
        Some(Value::String(t)) => Some(t.clone()),
        Some(_) => None,
    };
    let (now, wrote, before) = (
        text(here)?,
        text(inverse.wrote.as_ref())?,
        text(inverse.before.as_ref())?,
    );
    if !wrote.contains(CA_BLOCK_MARKER) || here.is_none() {
        return None;
    }
    let (now, wrote, before) = (blocks(&now), blocks(&wrote), blocks(&before));
    let find = |list: &[(String, String)], label: &str| {
        list.iter()
            .find(|(l, _)| l == label)
            .map(|(_, b)| b.clone())
    };
    let mut restored = now.clone();
    let labels: BTreeSet<&String> = wrote.iter().chain(&before).map(|(l, _)| l).collect();
    for label in labels {
        let (w, b) = (find(&wrote, label), find(&before, label));
        if w == b {
            continue;
        }
        if find(&now, label) != w {
            return None;
        }
        restored.retain(|(l, _)| l != label);
        if let Some(b) = b {
            restored.push((label.clone(), b));
        }
    }
    let joined: String = restored.into_iter().map(|(_, b)| b).collect();
    Some(if joined.is_empty() && inverse.before.is_none() {
        None
    } else {
        Some(joined)
    })
}

/// The first field an undo should have put back that a re-read shows is not back.
fn not_restored(after: &Value, inverses: &[Inverse], kept: &[String]) -> Option<String> {
    for inverse in inverses {
        if inverse.positional || kept.contains(&inverse.path) {
            continue;
        }
        let now = after.pointer(&inverse.path);
        if record_annotation(&inverse.path) {
            let (Some(now), Some(wrote), Some(before)) = (
                records(now),
                records(inverse.wrote.as_ref()),
                records(inverse.before.as_ref()),
            ) else {
                return Some(readable(&inverse.path));
            };
            let changed = wrote
                .keys()
                .chain(before.keys())
                .filter(|k| wrote.get(*k) != before.get(*k));
            if changed.into_iter().any(|k| now.get(k) != before.get(k)) {
                return Some(readable(&inverse.path));
            }
        } else if inverse
            .wrote
            .as_ref()
            .and_then(Value::as_str)
            .is_some_and(|w| w.contains(CA_BLOCK_MARKER))
        {
            // Blocks others added may remain: only this step's blocks must be as before.
            let text =
                |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
            let (now, wrote, before) = (
                blocks(&text(now)),
                blocks(&text(inverse.wrote.as_ref())),
                blocks(&text(inverse.before.as_ref())),
            );
            let find = |list: &[(String, String)], label: &str| {
                list.iter()
                    .find(|(l, _)| l == label)
                    .map(|(_, b)| b.clone())
            };
            let back = wrote.iter().chain(&before).all(|(label, _)| {
                find(&wrote, label) == find(&before, label)
                    || find(&now, label) == find(&before, label)
            });
            if !back {
                return Some(readable(&inverse.path));
            }
        } else if now != inverse.before.as_ref() && !overwritten_later(inverses, inverse) {
            return Some(readable(&inverse.path));
        }
    }
    None
}

/// Whether another operation of the same step wrote inside or over `inverse`'s path later, so
/// its before-value is not what the path ends with.
fn overwritten_later(inverses: &[Inverse], inverse: &Inverse) -> bool {
    inverses
        .iter()
        .filter(|other| !std::ptr::eq(*other, inverse))
        .any(|other| {
            other.path.starts_with(&format!("{}/", inverse.path))
                || inverse.path.starts_with(&format!("{}/", other.path))
                || other.path == inverse.path
        })
}

/// Whether a persistent setting read back is the value written (Elasticsearch answers strings).
fn same_setting(found: Option<&Value>, wrote: &Value) -> bool {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    found.and_then(text) == text(wrote)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(doc: &mut Value, ops: Vec<Value>) {
        let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops)).unwrap();
        json_patch::patch(doc, &patch).unwrap();
    }

    fn es() -> Value {
        json!({
            "metadata": {"resourceVersion": "7", "annotations": {"team": "search"}},
            "spec": {"remoteClusters": [{"name": "a"}], "nodeSets": [{"name": "default", "count": 1}]}
        })
    }

    #[test]
    fn inverses_name_real_indices_and_before_values() {
        let forward = vec![
            json!({"op": "test", "path": "/metadata/generation", "value": 1}),
            json!({"op": "add", "path": "/spec/remoteClusters/-", "value": {"name": "b"}}),
            json!({"op": "replace", "path": "/spec/nodeSets/0", "value": {"name": "default", "count": 2}}),
            json!({"op": "add", "path": "/metadata/annotations/x", "value": "1"}),
        ];
        let inverses = inverse_ops(&es(), &forward).unwrap();
        assert_eq!(inverses.len(), 3);
        assert_eq!(inverses[0].path, "/spec/remoteClusters/1");
        assert!(inverses[0].positional);
        assert_eq!(
            inverses[1].before,
            Some(json!({"name": "default", "count": 1}))
        );
        assert_eq!(inverses[2].before, None);
        assert_eq!(inverses[2].wrote, Some(json!("1")));
    }

    #[test]
    fn a_replaced_array_element_is_put_back_in_place_not_inserted() {
        let forward = vec![json!({"op": "replace", "path": "/spec/nodeSets/0",
            "value": {"name": "default", "count": 2}})];
        let inverses = inverse_ops(&es(), &forward).unwrap();
        let mut current = es();
        apply(&mut current, forward);
        let planned = undo_ops(&current, &inverses, &BTreeSet::new()).unwrap();
        let mut doc = current.clone();
        apply(&mut doc, planned.ops);
        assert_eq!(doc["spec"]["nodeSets"], es()["spec"]["nodeSets"]);
    }

    #[test]
    fn a_new_annotations_map_is_taken_back_key_by_key() {
        let before = json!({"metadata": {"resourceVersion": "1"}});
        let forward = vec![
            json!({"op": "add", "path": "/metadata/annotations", "value": {"a": "1", "b": "2"}}),
        ];
        let inverses = inverse_ops(&before, &forward).unwrap();
        assert_eq!(
            inverses.iter().map(|i| i.path.as_str()).collect::<Vec<_>>(),
            ["/metadata/annotations/a", "/metadata/annotations/b"]
        );
        // Someone adds an annotation to the new map: it survives the undo.
        let current = json!({"metadata": {"resourceVersion": "3", "annotations": {"a": "1", "b": "2", "theirs": "x"}}});
        let planned = undo_ops(&current, &inverses, &BTreeSet::new()).unwrap();
        let mut doc = current.clone();
        apply(&mut doc, planned.ops);
        assert_eq!(doc["metadata"]["annotations"], json!({"theirs": "x"}));
    }

    #[test]
    fn the_undo_reverts_only_its_own_operations() {
        let forward = vec![
            json!({"op": "add", "path": "/spec/remoteClusters/-", "value": {"name": "b"}}),
            json!({"op": "add", "path": "/metadata/annotations/x", "value": "1"}),
        ];
        let inverses = inverse_ops(&es(), &forward).unwrap();
        let mut current = es();
        apply(&mut current, forward.clone());
        // Someone else's later edits: another entry, another annotation.
        current["spec"]["remoteClusters"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "c"}));
        current["metadata"]["annotations"]["theirs"] = json!("y");
        let planned = undo_ops(&current, &inverses, &BTreeSet::new()).unwrap();
        let mut doc = current.clone();
        apply(&mut doc, planned.ops);
        assert_eq!(
            doc["spec"]["remoteClusters"],
            json!([{"name": "a"}, {"name": "c"}])
        );
        assert_eq!(
            doc["metadata"]["annotations"],
            json!({"team": "search", "theirs": "y"})
        );
    }

    #[test]
    fn a_value_changed_since_stops_the_undo_and_is_named() {
        let forward = vec![json!({"op": "add", "path": "/metadata/annotations/x", "value": "1"})];
        let inverses = inverse_ops(&es(), &forward).unwrap();
        let mut current = es();
        current["metadata"]["annotations"]["x"] = json!("changed");
        let moved = undo_ops(&current, &inverses, &BTreeSet::new()).unwrap_err();
        assert_eq!(moved, "annotation x");
    }

    #[test]
    fn link_records_are_taken_back_one_by_one_and_shared_changes_stay() {
        let links = escape(LINKS_ANNOTATION);
        let before = json!({"metadata": {"annotations": {}}, "spec": {}});
        let forward = vec![
            json!({"op": "add", "path": "/spec/secureSettings", "value": [{"secretName": "s"}]}),
            json!({"op": "add", "path": format!("/metadata/annotations/{links}"), "value": r#"{"a":{"n":1}}"#}),
        ];
        let inverses = inverse_ops(&before, &forward).unwrap();
        // Another link recorded itself since, and relies on the keystore reference.
        let current = json!({"metadata": {"annotations": {LINKS_ANNOTATION: r#"{"a":{"n":1},"b":{"n":2}}"#}},
                             "spec": {"secureSettings": [{"secretName": "s"}]}});
        let planned = undo_ops(&current, &inverses, &BTreeSet::new()).unwrap();
        let mut doc = current.clone();
        apply(&mut doc, planned.ops);
        assert_eq!(
            doc["metadata"]["annotations"][LINKS_ANNOTATION],
            r#"{"b":{"n":2}}"#
        );
        assert_eq!(doc["spec"]["secureSettings"], json!([{"secretName": "s"}]));
        assert_eq!(planned.kept_paths, ["/spec/secureSettings"]);
        // Without the other link, everything goes.
        let alone = json!({"metadata": {"annotations": {LINKS_ANNOTATION: r#"{"a":{"n":1}}"#}},
                           "spec": {"secureSettings": [{"secretName": "s"}]}});
        let planned = undo_ops(&alone, &inverses, &BTreeSet::new()).unwrap();
        let mut doc = alone.clone();
        apply(&mut doc, planned.ops);
        assert_eq!(doc, json!({"metadata": {"annotations": {}}, "spec": {}}));
    }

    #[test]
    fn secret_keys_are_taken_back_individually() {
        let before = json!({"metadata": {"resourceVersion": "1"}, "data": {"k1": "b2xk"}});
        let forward = vec![
            json!({"op": "add", "path": "/data/k1", "value": "bmV3"}),
            json!({"op": "add", "path": "/data/k2", "value": "a2V5"}),
        ];
        let inverses = inverse_ops(&before, &forward).unwrap();
        let current = json!({"metadata": {"resourceVersion": "4"},
                             "data": {"k1": "bmV3", "k2": "a2V5", "theirs": "eA=="}});
        let planned = undo_ops(&current, &inverses, &BTreeSet::new()).unwrap();
        let mut doc = current.clone();
        apply(&mut doc, planned.ops);
        assert_eq!(doc["data"], json!({"k1": "b2xk", "theirs": "eA=="}));
        let mut changed = current.clone();
        changed["data"]["k2"] = json!("b3RoZXI=");
        assert_eq!(
            undo_ops(&changed, &inverses, &BTreeSet::new()).unwrap_err(),
            "key k2"
        );
    }

    #[test]
    fn ca_blocks_are_taken_back_one_by_one() {
        let block =
            |label: &str| format!("{CA_BLOCK_MARKER}{label} sha256:ab\n-----CERT {label}-----\n");
        let before = json!({"data": {"ca.crt": block("a")}});
        let forward = vec![
            json!({"op": "add", "path": "/data/ca.crt", "value": format!("{}{}", block("a"), block("b"))}),
        ];
        let inverses = inverse_ops(&before, &forward).unwrap();
        // Another link added its block after this step.
        let current =
            json!({"data": {"ca.crt": format!("{}{}{}", block("a"), block("b"), block("c"))}});
        let planned = undo_ops(&current, &inverses, &BTreeSet::new()).unwrap();
        let mut doc = current.clone();
        apply(&mut doc, planned.ops);
        assert_eq!(
            doc["data"]["ca.crt"],
            format!("{}{}", block("a"), block("c"))
        );
        // This step's block changed since: left.
        let rotated = json!({"data": {"ca.crt": format!("{}{CA_BLOCK_MARKER}b sha256:cd\nother\n", block("a"))}});
        assert_eq!(
            undo_ops(&rotated, &inverses, &BTreeSet::new()).unwrap_err(),
            "key ca.crt"
        );
    }

    #[test]
    fn settings_compare_as_elasticsearch_answers_them() {
        assert!(same_setting(Some(&json!("true")), &json!(true)));
        assert!(same_setting(None, &Value::Null));
        assert!(!same_setting(Some(&json!("false")), &json!(true)));
    }
}
