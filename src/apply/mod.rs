//! Executes a plan: every write guarded, conflicts reported so the command can re-plan, values
//! produced by one step (an address, an API key) handed to later ones without being printed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Value, json};

use crate::es::{EsClient, EsPool};
use crate::interrupt;
use crate::k8s::clients::ContextClient;
use crate::k8s::eck::elasticsearch_resource;
use crate::k8s::failure::ContextFailure;
use crate::plan::{
    self, Change, ClusterId, DataValue, OUTPUT_ADDRESS, OUTPUT_KEY_ENCODED, OUTPUT_KEY_ID,
    ObjectKind, Plan, Step,
};
pub mod files;
pub mod reserved;
pub mod undo;
pub mod wait;

use undo::Undo;
use wait::Progress;

/// The field manager kubectl-style tools record on the objects they write.
pub const FIELD_MANAGER: &str = "kubectl-remote-cluster";

/// `--dry-run`, as kubectl spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DryRun {
    #[default]
    None,
    Client,
    Server,
}

/// How applying a plan ended short of success. What was applied before stays in the
/// [`Journal`], for the caller to take back or to carry into a re-planned attempt.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Someone else changed the object since it was read: re-read, re-plan, retry.
    #[error("{0} changed while the plan was applied")]
    Conflict(String),
    #[error("{step}: {failure}")]
    Failed { step: String, failure: String },
    /// A signal asked the command to stop (see [`crate::interrupt`]).
    #[error("{0}")]
    Interrupted(&'static str),
    /// Checked before any write: a spec write would name a file or volume that is not there
    /// (see [`files`]).
    #[error("{0}")]
    Refused(String),
}

/// The plugin's record of links in an object's annotations.
fn links_record(metadata: &kube::api::ObjectMeta) -> Option<String> {
    metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(plan::LINKS_ANNOTATION))
        .cloned()
}

/// Before any write: every Elasticsearch spec the plan writes, as it will be after each patch,
/// names only volumes and files that will be there when it is written (what earlier steps
/// create, patch or delete counted in).
/// No step writes a cluster setting that file-based settings own (see [`reserved`]).
async fn preflight(
    plan: &Plan,
    client_for: &dyn Fn(&str) -> Option<ContextClient>,
    es: &EsPool,
) -> Result<(), ApplyError> {
    let mut overlay = files::Overlay::default();
    let mut reserved = reserved::Reserved::default();
    let mut specs: HashMap<String, Value> = HashMap::new();
    let failed = |step: &Step, e: anyhow::Error| ApplyError::Failed {
        step: step.summary.clone(),
        failure: e.to_string(),
    };
    for step in &plan.steps {
        let Some(client) = client_for(&step.cluster.context) else {
            continue;
        };
        match &step.change {
            Change::PatchElasticsearch { patch, .. } => {
                let key = format!("es/{}", step.cluster);
                let current = match specs.get(&key) {
                    Some(spec) => spec.clone(),
                    None => {
                        let api: Api<DynamicObject> = Api::namespaced_with(
                            client.client.clone(),
                            &step.cluster.namespace,
                            &elasticsearch_resource(),
                        );
                        match client.call(api.get_opt(&step.cluster.name)).await {
                            Ok(Some(object)) => serde_json::to_value(object).unwrap_or_default(),
                            // Missing or unreadable: the write itself will say so.
                            _ => continue,
                        }
                    }
                };
                let Some(after) = files::patched(&current, patch) else {
                    continue;
                };
                let written = reserved::settings_written(step, Some(&current), Some(&after));
                if let Some(why) = reserved.check(step, &written, &client, es).await {
                    return Err(ApplyError::Refused(why));
                }
                if let Some(why) = files::broken_reference(&client, &overlay, &after)
                    .await
                    .map_err(|e| failed(step, e))?
                {
                    return Err(ApplyError::Refused(why));
                }
                specs.insert(key, after);
            }
            _ => {
                let written = reserved::settings_written(step, None, None);
                if let Some(why) = reserved.check(step, &written, &client, es).await {
                    return Err(ApplyError::Refused(why));
                }
                overlay
                    .record(step, &client)
                    .await
                    .map_err(|e| failed(step, e))?
            }
        }
    }
    Ok(())
}

/// Applies the steps in order with the clients of their contexts, recording in `journal` how to
/// take back each step applied. Waits inside the plan give up at `deadline`; `given` are outputs
/// known beforehand.
pub async fn apply(
    plan: &Plan,
    client_for: &dyn Fn(&str) -> Option<ContextClient>,
    es: &EsPool,
    dry_run: DryRun,
    deadline: Instant,
    given: &BTreeMap<String, SecretString>,
    journal: &mut Journal,
) -> Result<Outcome, ApplyError> {
    if dry_run == DryRun::Client {
        return Ok(Outcome::default());
    }
    preflight(plan, client_for, es).await?;
    let mut run = Run {
        dry_run,
        deadline,
        // Values the user handed over (an API key from a file) are outputs from the start.
        outputs: given.clone(),
        own_writes: HashMap::new(),
        own_generations: HashMap::new(),
        own_records: HashMap::new(),
        es: es.clone(),
        writes: 0,
        progress: Progress::new(),
        sent: None,
        dry_patches: HashMap::new(),
        dry_created: HashMap::new(),
        pending_rollouts: BTreeMap::new(),
    };
    for step in &plan.steps {
        let client = client_for(&step.cluster.context).ok_or_else(|| ApplyError::Failed {
            step: step.summary.clone(),
            failure: format!("no client for context {}", step.cluster.context),
        })?;
        // A server-side dry run writes nothing, so there is nothing to take back.
        let journaled = dry_run == DryRun::None;
        let captured = if journaled && !interrupt::requested() {
            run.capture(step, &client).await
        } else {
            Captured::Nothing
        };
        let writes = run.writes;
        run.sent = None;
        let restarts = step.restarts_nodes && !run.pending_rollouts.contains_key(&step.cluster);
        let pods_before = if restarts && journaled {
            wait::pod_uids(&client, &step.cluster).await
        } else {
            BTreeSet::new()
        };
        if let Err(err) = run.step_unless_interrupted(step, &client).await {
            run.progress.finish();
            journal.writes += run.writes;
            if matches!(err, ApplyError::Conflict(_)) {
                // The re-made plan cannot see a key no Secret holds yet, and creates another:
                // this one goes now.
                journal.drop_unstored_key(client_for, es).await;
            }
            return Err(err);
        }
        if restarts {
            run.pending_rollouts
                .insert(step.cluster.clone(), pods_before);
        }
        if let Change::ApplyObject { data, .. } = &step.change
            && data
                .values()
                .any(|v| *v == DataValue::Output(OUTPUT_KEY_ENCODED.to_string()))
        {
            journal.unstored_key = None;
        }
        if journaled && run.writes > writes {
            let undo = run.journal_after(step, captured);
            if matches!(undo, Undo::InvalidateKey { .. }) {
                journal.unstored_key = Some(journal.entries.len());
            }
            journal.entries.push(Entry {
                step: format!("{} on {}", step.summary, step.cluster),
                undo,
            });
        }
        interrupt::step_applied(&format!("{} on {}", step.summary, step.cluster));
    }
    run.progress.finish();
    journal.writes += run.writes;
    Ok(Outcome {
        writes: run.writes,
        outputs: run.outputs,
    })
}

/// Every step applied by one command, across the attempts a conflict makes, with how to take
/// each back. Deliberately not `Debug`: Secret data may be in it.
#[derive(Default)]
pub struct Journal {
    entries: Vec<Entry>,
    /// Writes sent, across attempts (with `dryRun=All` under `--dry-run=server`).
    pub writes: usize,
    /// The entry of an API key created but not yet in the local keystore Secret.
    unstored_key: Option<usize>,
}

struct Entry {
    /// The step, as the plan names it, and its cluster.
    step: String,
    undo: Undo,
}

/// What taking a journal back did.
#[derive(Debug, Default)]
pub struct RollBack {
    /// Every step that had been applied.
    pub applied: Vec<String>,
    /// Steps taken back, a re-read showing their values back to what they were.
    pub undone: Vec<String>,
    /// Changes of this command still in place, and why.
    pub left: Vec<String>,
    /// What was kept on purpose: an object that holds someone else's keys too (this command's
    /// keys taken out of it), a change another link recorded since relies on.
    pub kept: Vec<String>,
}

impl RollBack {
    /// Everything is back as it was before the command.
    pub fn complete(&self) -> bool {
        self.left.is_empty() && self.kept.is_empty()
    }
}

impl Journal {
    /// Nothing was written so far.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The steps applied so far.
    pub fn applied(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.step.clone()).collect()
    }

    /// Invalidates a key created but not stored yet, and forgets it.
    async fn drop_unstored_key(
        &mut self,
        client_for: &dyn Fn(&str) -> Option<ContextClient>,
        es: &EsPool,
    ) {
        let Some(index) = self.unstored_key.take() else {
            return;
        };
        if index >= self.entries.len() {
            return;
        }
        let entry = self.entries.remove(index);
        let cluster = entry.undo.cluster().clone();
        let connected = match client_for(&cluster.context) {
            Some(client) => connect_for_undo(es, &client, &cluster)
                .await
                .ok()
                .map(|c| (client, c)),
            None => None,
        };
        let undone = match &connected {
            Some((client, connection)) => entry.undo.run(client, Some(connection)).await,
            None => undo::Undone::Left(String::new()),
        };
        if let undo::Undone::Left(why) = undone {
            crate::output::warning(&format!(
                "could not invalidate {} ({why}); invalidate it with DELETE /_security/api_key",
                entry.undo.object()
            ));
        }
    }

    /// Takes every applied step back, newest first. An object one undo had to leave is left
    /// for the older steps too, and a key is not invalidated while something that may hold it
    /// is left.
    pub async fn roll_back(
        &mut self,
        client_for: &dyn Fn(&str) -> Option<ContextClient>,
        es: &EsPool,
    ) -> RollBack {
        let mut report = RollBack {
            applied: self.applied(),
            ..RollBack::default()
        };
        let mut stopped: Vec<String> = Vec::new();
        // A step that cannot be taken back (a deletion) may rest on every older one (an unlink
        // deletes a Secret once nothing mounts it): those stay, and the same command finishes.
        let mut past_irreversible = false;
        while let Some(Entry { step, undo }) = self.entries.pop() {
            let object = undo.object();
            if past_irreversible {
                report.left.push(format!(
                    "{step}: not undone, since a later step that cannot be taken back rests on it"
                ));
                continue;
            }
            past_irreversible = matches!(undo, Undo::Irreversible { .. });
            if stopped.contains(&object) {
                report.left.push(format!(
                    "{step}: not undone, since {object} is left as it is"
                ));
                continue;
            }
            if matches!(undo, Undo::InvalidateKey { .. }) && !report.left.is_empty() {
                report.left.push(format!(
                    "{step}: {object} stays active, since what may hold it is left"
                ));
                continue;
            }
            let cluster = undo.cluster().clone();
            let Some(client) = client_for(&cluster.context) else {
                report.left.push(format!(
                    "{step}: not undone, no client for context {}",
                    cluster.context
                ));
                stopped.push(object);
                continue;
            };
            let connection = if undo.needs_elasticsearch() {
                match connect_for_undo(es, &client, &cluster).await {
                    Ok(connection) => Some(connection),
                    Err(err) => {
                        report.left.push(format!(
                            "{step}: not undone, Elasticsearch {cluster} cannot be reached ({err})"
                        ));
                        stopped.push(object);
                        continue;
                    }
                }
            } else {
                None
            };
            match undo.run(&client, connection.as_deref()).await {
                undo::Undone::Done { kept } => {
                    report.undone.push(step);
                    report.kept.extend(kept);
                }
                undo::Undone::Left(why) => {
                    report.left.push(format!("{step}: {why}"));
                    stopped.push(object);
                }
            }
        }
        report
    }
}

/// Pods may be restarting after the writes being undone: connecting is retried for a while.
async fn connect_for_undo(
    es: &EsPool,
    client: &ContextClient,
    cluster: &ClusterId,
) -> anyhow::Result<Arc<EsClient>> {
    let until = Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match es.client(client, cluster).await {
            Ok(connected) => return Ok(connected),
            Err(err) if Instant::now() >= until => return Err(err),
            Err(_) => tokio::time::sleep(wait::RETRY).await,
        }
    }
}

/// What a step's undo needs from before the step.
enum Captured {
    Nothing,
    Object(Value),
    Settings(serde_json::Map<String, Value>),
}

/// What a step sent, for its undo.
enum Sent {
    Patch(Vec<Value>),
    Created(serde_json::Map<String, Value>),
    Settings(serde_json::Map<String, Value>),
}

/// What applying a plan produced.
#[derive(Default)]
pub struct Outcome {
    pub writes: usize,
    /// Values steps produced (an address, an API key): secret until shown on purpose.
    pub outputs: BTreeMap<String, SecretString>,
}

/// Which object an `ApplyObject` step writes.
struct ObjectTarget<'a> {
    object: ObjectKind,
    namespace: &'a str,
    name: &'a str,
    resource_version: &'a Option<String>,
}

struct Run {
    dry_run: DryRun,
    deadline: Instant,
    /// Values later steps use; the API key among them, hence secret.
    outputs: BTreeMap<String, SecretString>,
    /// resourceVersion read -> resourceVersion after our own write, per object.
    own_writes: HashMap<String, (String, String)>,
    /// generation read -> generation after our own writes, per Elasticsearch resource.
    own_generations: HashMap<String, (i64, i64)>,
    /// The plugin's record of links on each Elasticsearch resource as our last write left it.
    own_records: HashMap<ClusterId, Option<String>>,
    es: EsPool,
    writes: usize,
    progress: Progress,
    /// What the step being applied sent, for its undo.
    sent: Option<Sent>,
    /// Under `--dry-run=server`: the operations already validated per Elasticsearch resource,
    /// sent again ahead of a later patch of it, since the dry run saved none of them.
    dry_patches: HashMap<String, Vec<Value>>,
    /// Under `--dry-run=server`: the objects the dry run created (not saved), with their data.
    dry_created: HashMap<String, Value>,
    /// Clusters a restarting step was applied to, with the UIDs their pods had before it,
    /// until a wait for their rollout.
    pending_rollouts: BTreeMap<ClusterId, BTreeSet<String>>,
}

fn failed(step: &Step, failure: impl std::fmt::Display) -> ApplyError {
    ApplyError::Failed {
        step: format!("{} on {}", step.summary, step.cluster),
        failure: failure.to_string(),
    }
}

/// The first Elasticsearch of `namespace` whose spec names the Secret or ConfigMap `name`. A
/// list that fails counts as a reference: the object is kept rather than risked.
async fn referencing_elasticsearch(
    client: &ContextClient,
    object: ObjectKind,
    namespace: &str,
    name: &str,
) -> Option<String> {
    match crate::k8s::eck::list_raw_in(client, namespace).await {
        Ok(items) => items
            .iter()
            .find(|es| files::references(es, object, name))
            .map(|es| {
                es.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            }),
        Err(failure) => Some(format!(
            "(unknown: the Elasticsearch resources could not be listed: {})",
            failure.message
        )),
    }
}

impl Run {
    /// A step, unless a signal asked to stop before it; a wait (which writes nothing) also
    /// stops as soon as a signal comes, while a write completes or times out.
    async fn step_unless_interrupted(
        &mut self,
        step: &Step,
        client: &ContextClient,
    ) -> Result<(), ApplyError> {
        if let Some(reason) = interrupt::reason() {
            return Err(ApplyError::Interrupted(reason));
        }
        if !matches!(
            step.change,
            Change::WaitForAddress { .. } | Change::WaitForRollout
        ) {
            return self.step(step, client).await;
        }
        tokio::select! {
            done = self.step(step, client) => done,
            () = interrupt::stopped() => {
                Err(ApplyError::Interrupted(interrupt::reason().unwrap_or("signal")))
            }
        }
    }

    async fn step(&mut self, step: &Step, client: &ContextClient) -> Result<(), ApplyError> {
        match &step.change {
            Change::PatchElasticsearch {
                resource_version,
                patch,
                ..
            } => {
                self.patch_elasticsearch(step, client, resource_version, patch)
                    .await
            }
            Change::ApplyObject {
                object,
                namespace,
                name,
                resource_version,
                labels,
                data,
                remove,
                ..
            } => {
                let target = ObjectTarget {
                    object: *object,
                    namespace,
                    name,
                    resource_version,
                };
                self.apply_object(step, client, target, labels, data, remove)
                    .await
            }
            Change::DeleteObject {
                object,
                namespace,
                name,
                resource_version,
            } => {
                // No pod mounts the pending record: its deletion waits for nothing. A server dry
                // run only pretended to create it, so there is nothing to delete.
                if crate::plan::is_pending_record(name) {
                    if self.dry_run == DryRun::Server {
                        return Ok(());
                    }
                } else {
                    self.wait_before_delete(step, client).await?;
                }
                self.delete_object(step, client, *object, namespace, name, resource_version)
                    .await
            }
            Change::InvalidateApiKey { id } => {
                if self.dry_run == DryRun::Server {
                    return Ok(());
                }
                let es = self.es(step, client).await?;
                es.delete("/_security/api_key", &json!({ "ids": [id] }))
                    .await
                    .map_err(|e| failed(step, e))?;
                self.writes += 1;
                Ok(())
            }
            Change::CreateService {
                namespace,
                manifest,
                ..
            } => {
                let services: Api<Service> = Api::namespaced(client.client.clone(), namespace);
                let service: Service =
                    serde_json::from_value(manifest.clone()).map_err(|e| failed(step, e))?;
                client
                    .call(services.create(&self.post_params(), &service))
                    .await
                    .map_err(|f| self.write_failure(step, f))?;
                self.writes += 1;
                Ok(())
            }
            Change::WaitForAddress {
                namespace,
                service,
                port,
                output,
            } => {
                self.wait_for_address(step, client, (namespace, service), port, output)
                    .await
            }
            Change::CreateApiKey { body, .. } => self.create_api_key(step, client, body).await,
            Change::WaitForRollout => {
                if self.dry_run == DryRun::Server {
                    return Ok(());
                }
                let replaced = self
                    .pending_rollouts
                    .remove(&step.cluster)
                    .unwrap_or_default();
                wait::wait_for_pods_replaced(
                    client,
                    &step.cluster,
                    &replaced,
                    self.deadline,
                    &mut self.progress,
                )
                .await
                .map_err(|e| failed(step, e))?;
                Ok(())
            }
            Change::SetSkipUnavailable { alias, value } => {
                if self.dry_run == DryRun::Server {
                    return Ok(());
                }
                self.record_unchanged(step, client).await?;
                let deadline = self.deadline;
                let es = self.es(step, client).await?;
                if value.is_some() {
                    wait_for_alias(&es, alias, deadline)
                        .await
                        .map_err(|e| failed(step, e))?;
                }
                let key = format!("cluster.remote.{alias}.skip_unavailable");
                let mut wrote = serde_json::Map::new();
                wrote.insert(key.clone(), json!(value));
                self.sent = Some(Sent::Settings(wrote));
                es.put(
                    "/_cluster/settings",
                    &json!({ "persistent": { key: value } }),
                )
                .await
                .map_err(|e| failed(step, e))?;
                self.writes += 1;
                Ok(())
            }
            Change::PutClusterSettings { settings } => {
                if self.dry_run == DryRun::Server {
                    return Ok(());
                }
                self.record_unchanged(step, client).await?;
                let settings = self.substitute(settings);
                self.sent = Some(Sent::Settings(
                    settings.as_object().cloned().unwrap_or_default(),
                ));
                let es = self.es(step, client).await?;
                es.put("/_cluster/settings", &json!({ "persistent": settings }))
                    .await
                    .map_err(|e| failed(step, e))?;
                self.writes += 1;
                Ok(())
            }
        }
    }

    /// A Secret or ConfigMap is deleted only once the rollout of a restarting change made
    /// earlier in this run in its namespace has finished, so no pod starts still mounting it.
    async fn wait_before_delete(
        &mut self,
        step: &Step,
        client: &ContextClient,
    ) -> Result<(), ApplyError> {
        if self.dry_run == DryRun::Server {
            return Ok(());
        }
        let pending: Vec<(ClusterId, BTreeSet<String>)> = self
            .pending_rollouts
            .iter()
            .filter(|(c, _)| {
                c.context == step.cluster.context && c.namespace == step.cluster.namespace
            })
            .map(|(c, uids)| (c.clone(), uids.clone()))
            .collect();
        for (cluster, replaced) in pending {
            // A wait, so a signal stops it at once (the deletion has not been sent).
            tokio::select! {
                waited = wait::wait_for_pods_replaced(client, &cluster, &replaced, self.deadline, &mut self.progress) => {
                    waited.map_err(|e| failed(step, e))?;
                }
                () = interrupt::stopped() => {
                    return Err(ApplyError::Interrupted(interrupt::reason().unwrap_or("signal")));
                }
            }
            self.pending_rollouts.remove(&cluster);
        }
        Ok(())
    }

    fn params(&self) -> PatchParams {
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        if self.dry_run == DryRun::Server {
            params.dry_run()
        } else {
            params
        }
    }

    fn post_params(&self) -> PostParams {
        PostParams {
            dry_run: self.dry_run == DryRun::Server,
            field_manager: Some(FIELD_MANAGER.to_string()),
        }
    }

    fn write_failure(&self, step: &Step, failure: ContextFailure) -> ApplyError {
        match failure.http_status {
            Some(409) => ApplyError::Conflict(step.cluster.to_string()),
            _ => failed(step, failure.message),
        }
    }

    /// Replaces `${output}` placeholders in every string of `value` with non-secret outputs.
    fn substitute(&self, value: &Value) -> Value {
        match value {
            Value::String(text) => {
                let mut text = text.clone();
                for name in [OUTPUT_ADDRESS, OUTPUT_KEY_ID] {
                    if let Some(found) = self.outputs.get(name) {
                        text = text.replace(&plan::output_placeholder(name), found.expose_secret());
                    }
                }
                Value::String(text)
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.substitute(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.substitute(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Cluster settings carry no resourceVersion to guard them: before writing them on a
    /// cluster whose Elasticsearch resource this run wrote, its plugin record must still be
    /// the one this run left, otherwise another run (an `unlink` racing this `link`) changed
    /// the link meanwhile and the command re-reads and re-plans instead of writing settings
    /// nothing would record.
    async fn record_unchanged(
        &self,
        step: &Step,
        client: &ContextClient,
    ) -> Result<(), ApplyError> {
        let Some(ours) = self.own_records.get(&step.cluster) else {
            return Ok(());
        };
        let api: Api<DynamicObject> = Api::namespaced_with(
            client.client.clone(),
            &step.cluster.namespace,
            &elasticsearch_resource(),
        );
        let current = client
            .call(api.get(&step.cluster.name))
            .await
            .map_err(|f| failed(step, f))?;
        if links_record(&current.metadata) != *ours {
            return Err(ApplyError::Conflict(format!(
                "the plugin's record of links on {} changed since this command wrote it (another run of the plugin)",
                step.cluster
            )));
        }
        Ok(())
    }

    /// The resourceVersion to test: the one read, or the one our own earlier write produced.
    fn guard_version(&self, key: &str, planned: &str) -> String {
        match self.own_writes.get(key) {
            Some((read, after)) if read == planned => after.clone(),
            _ => planned.to_string(),
        }
    }

    async fn patch_elasticsearch(
        &mut self,
        step: &Step,
        client: &ContextClient,
        planned_version: &str,
        patch: &[Value],
    ) -> Result<(), ApplyError> {
        let key = format!("es/{}", step.cluster);
        let version = self.guard_version(&key, planned_version);
        let mut operations = self.substitute(&Value::Array(patch.to_vec()));
        // Guards read before our own earlier writes of this object in this run move on with them.
        for op in operations.as_array_mut().into_iter().flatten() {
            if op["op"] != "test" {
                continue;
            }
            if op["path"] == "/metadata/resourceVersion" {
                op["value"] = json!(version);
            } else if op["path"] == "/metadata/generation"
                && let Some((read, after)) = self.own_generations.get(&key)
                && op["value"] == json!(read)
            {
                op["value"] = json!(after);
            }
        }
        let guards: Vec<(String, Value)> = operations
            .as_array()
            .into_iter()
            .flatten()
            .filter(|op| op["op"] == "test")
            .filter_map(|op| Some((op["path"].as_str()?.to_string(), op["value"].clone())))
            .collect();
        let own: Vec<Value> = operations.as_array().cloned().unwrap_or_default();
        self.sent = Some(Sent::Patch(own.clone()));
        let api: Api<DynamicObject> = Api::namespaced_with(
            client.client.clone(),
            &step.cluster.namespace,
            &elasticsearch_resource(),
        );
        if self.dry_run == DryRun::None {
            // What earlier steps wrote is in the cluster now; someone may have removed it since.
            let current = client
                .call(api.get(&step.cluster.name))
                .await
                .ok()
                .and_then(|o| serde_json::to_value(o).ok());
            if let Some(after) = current.and_then(|c| files::patched(&c, &own)) {
                let broken = files::broken_reference(client, &files::Overlay::default(), &after)
                    .await
                    .map_err(|e| failed(step, e))?;
                if let Some(why) = broken {
                    return Err(failed(step, why));
                }
            }
        }
        let operations = if self.dry_run == DryRun::Server {
            // Nothing of an earlier dry-run patch of this resource was saved: send its operations
            // again first, so this one is validated against the state it was planned for.
            let earlier = self.dry_patches.entry(key.clone()).or_default();
            let mut all = earlier.clone();
            all.extend(own.iter().cloned());
            earlier.extend(own);
            Value::Array(all)
        } else {
            operations
        };
        let operations: json_patch::Patch =
            serde_json::from_value(operations).map_err(|e| failed(step, e))?;
        let outcome = client
            .call(api.patch(
                &step.cluster.name,
                &self.params(),
                &Patch::Json::<()>(operations),
            ))
            .await;
        match outcome {
            Ok(_) if self.dry_run == DryRun::Server => {
                // Nothing saved: the versions read stay the ones to test.
                self.writes += 1;
                Ok(())
            }
            Ok(updated) => {
                self.writes += 1;
                let read_generation = patch
                    .iter()
                    .find(|op| op["path"] == "/metadata/generation")
                    .and_then(|op| op["value"].as_i64());
                if let (Some(read), Some(after)) = (read_generation, updated.metadata.generation) {
                    let first_read = self.own_generations.get(&key).map_or(read, |(r, _)| *r);
                    self.own_generations
                        .insert(key.clone(), (first_read, after));
                }
                if let Some(after) = updated.metadata.resource_version.clone() {
                    self.own_writes
                        .insert(key, (planned_version.to_string(), after));
                }
                self.own_records
                    .insert(step.cluster.clone(), links_record(&updated.metadata));
                Ok(())
            }
            Err(failure) => Err(classify(step, client, &api, &guards, failure).await),
        }
    }

    /// Creates the Secret or ConfigMap `manifest`; the answer's resourceVersion, or the failure.
    async fn create_data_object(
        &self,
        step: &Step,
        client: &ContextClient,
        object: ObjectKind,
        namespace: &str,
        manifest: Value,
    ) -> Result<Result<Option<String>, ContextFailure>, ApplyError> {
        Ok(match object {
            ObjectKind::Secret => {
                let api: Api<Secret> = Api::namespaced(client.client.clone(), namespace);
                let secret: Secret =
                    serde_json::from_value(manifest).map_err(|e| failed(step, e))?;
                client
                    .call(api.create(&self.post_params(), &secret))
                    .await
                    .map(|s| s.metadata.resource_version)
            }
            ObjectKind::ConfigMap | ObjectKind::Service => {
                let api: Api<ConfigMap> = Api::namespaced(client.client.clone(), namespace);
                let map: ConfigMap =
                    serde_json::from_value(manifest).map_err(|e| failed(step, e))?;
                client
                    .call(api.create(&self.post_params(), &map))
                    .await
                    .map(|c| c.metadata.resource_version)
            }
        })
    }

    async fn delete_object(
        &mut self,
        step: &Step,
        client: &ContextClient,
        object: ObjectKind,
        namespace: &str,
        name: &str,
        resource_version: &str,
    ) -> Result<(), ApplyError> {
        let plural = match object {
            ObjectKind::Secret => "secrets",
            ObjectKind::ConfigMap => "configmaps",
            ObjectKind::Service => "services",
        };
        // The plan read no reference to it, but another command (a link of the same alias run
        // meanwhile) may have added one since: deleting it would keep the pods from starting.
        if object != ObjectKind::Service
            && self.dry_run == DryRun::None
            && let Some(user) = referencing_elasticsearch(client, object, namespace, name).await
        {
            crate::output::warning(&format!(
                "kept {object:?} {namespace}/{name}: Elasticsearch {user} now uses it (changed since the plan was made)"
            ));
            return Ok(());
        }
        let key = format!("{plural}/{}/{namespace}/{name}", step.cluster.context);
        let resource_version = self.guard_version(&key, resource_version);
        let mut params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: Some(resource_version),
                uid: None,
            }),
            ..DeleteParams::default()
        };
        if self.dry_run == DryRun::Server {
            params = params.dry_run();
        }
        let client_api = client.client.clone();
        let result = match object {
            ObjectKind::Secret => client
                .call(Api::<Secret>::namespaced(client_api, namespace).delete(name, &params))
                .await
                .map(|_| ()),
            ObjectKind::ConfigMap => client
                .call(Api::<ConfigMap>::namespaced(client_api, namespace).delete(name, &params))
                .await
                .map(|_| ()),
            ObjectKind::Service => client
                .call(Api::<Service>::namespaced(client_api, namespace).delete(name, &params))
                .await
                .map(|_| ()),
        };
        match result {
            Ok(()) => {
                self.writes += 1;
                Ok(())
            }
            Err(failure) if failure.http_status == Some(404) => Ok(()),
            Err(failure) if failure.http_status == Some(409) => Err(ApplyError::Conflict(format!(
                "{object:?} {namespace}/{name}"
            ))),
            Err(failure) => Err(failed(step, failure.message)),
        }
    }

    async fn apply_object(
        &mut self,
        step: &Step,
        client: &ContextClient,
        target: ObjectTarget<'_>,
        labels: &BTreeMap<String, String>,
        data: &BTreeMap<String, DataValue>,
        remove: &[String],
    ) -> Result<(), ApplyError> {
        let ObjectTarget {
            object,
            namespace,
            name,
            resource_version,
        } = target;
        let mut values = BTreeMap::new();
        for (key, value) in data {
            let text = match value {
                DataValue::Literal(text) => SecretString::from(text.clone()),
                DataValue::Output(name) => match self.outputs.get(name) {
                    Some(found) => found.clone(),
                    // Under a server dry run no key was created: validate with a stand-in.
                    None if self.dry_run == DryRun::Server => SecretString::from(String::new()),
                    None => return Err(failed(step, format!("no value for {name}"))),
                },
            };
            values.insert(key.clone(), text);
        }
        let encode = |text: &SecretString| match object {
            ObjectKind::Secret => {
                json!(base64::engine::general_purpose::STANDARD.encode(text.expose_secret()))
            }
            _ => json!(text.expose_secret()),
        };
        let (kind, plural) = match object {
            ObjectKind::Secret => ("Secret", "secrets"),
            _ => ("ConfigMap", "configmaps"),
        };
        let key = format!("{plural}/{}/{namespace}/{name}", step.cluster.context);
        let result = match resource_version {
            None => {
                let encoded: serde_json::Map<String, Value> =
                    values.iter().map(|(k, v)| (k.clone(), encode(v))).collect();
                self.sent = Some(Sent::Created(encoded.clone()));
                let manifest = json!({
                    "apiVersion": "v1",
                    "kind": kind,
                    "metadata": {"name": name, "namespace": namespace, "labels": labels},
                    "data": encoded,
                });
                if self.dry_run == DryRun::Server {
                    self.dry_created.insert(key.clone(), manifest.clone());
                }
                self.create_data_object(step, client, object, namespace, manifest)
                    .await?
            }
            Some(_) if self.dry_created.contains_key(&key) => {
                // A dry run created it without saving it: validate the creation with this data.
                let mut manifest = self.dry_created[&key].clone();
                for (k, v) in &values {
                    manifest["data"][k] = encode(v);
                }
                for k in remove {
                    if let Some(data) = manifest["data"].as_object_mut() {
                        data.remove(k);
                    }
                }
                self.dry_created.insert(key.clone(), manifest.clone());
                self.create_data_object(step, client, object, namespace, manifest)
                    .await?
                    .map(|_| None)
            }
            Some(planned) => {
                let version = self.guard_version(&key, planned);
                let mut operations = vec![
                    json!({"op": "test", "path": "/metadata/resourceVersion", "value": version}),
                ];
                let pointer =
                    |k: &str| format!("/data/{}", k.replace('~', "~0").replace('/', "~1"));
                for (k, v) in &values {
                    operations.push(json!({"op": "add", "path": pointer(k), "value": encode(v)}));
                }
                for k in remove {
                    operations.push(json!({"op": "remove", "path": pointer(k)}));
                }
                self.sent = Some(Sent::Patch(operations[1..].to_vec()));
                let operations: json_patch::Patch =
                    serde_json::from_value(Value::Array(operations))
                        .map_err(|e| failed(step, e))?;
                let patch = Patch::Json::<()>(operations);
                match object {
                    ObjectKind::Secret => {
                        let api: Api<Secret> = Api::namespaced(client.client.clone(), namespace);
                        client
                            .call(api.patch(name, &self.params(), &patch))
                            .await
                            .map(|s| s.metadata.resource_version)
                    }
                    ObjectKind::ConfigMap | ObjectKind::Service => {
                        let api: Api<ConfigMap> = Api::namespaced(client.client.clone(), namespace);
                        client
                            .call(api.patch(name, &self.params(), &patch))
                            .await
                            .map(|c| c.metadata.resource_version)
                    }
                }
            }
        };
        match result {
            Ok(after) => {
                self.writes += 1;
                if self.dry_run == DryRun::Server {
                    return Ok(());
                }
                // An object this run created is known by the empty version, so that a later step
                // (deleting it) can guard on the version our write produced.
                if let Some(after) = after {
                    let planned = resource_version.clone().unwrap_or_default();
                    self.own_writes.insert(key, (planned, after));
                }
                Ok(())
            }
            // A failed `test` (422), a name taken meanwhile (409) or an object deleted since it
            // was read (404): someone else wrote.
            Err(failure) if matches!(failure.http_status, Some(404 | 409 | 422)) => {
                Err(ApplyError::Conflict(format!("{kind} {namespace}/{name}")))
            }
            Err(failure) => Err(failed(step, failure.message)),
        }
    }

    async fn wait_for_address(
        &mut self,
        step: &Step,
        client: &ContextClient,
        (namespace, service): (&str, &str),
        port: &crate::plan::ServicePort,
        output: &str,
    ) -> Result<(), ApplyError> {
        if self.dry_run == DryRun::Server {
            return Ok(());
        }
        let services: Api<Service> = Api::namespaced(client.client.clone(), namespace);
        let mut address = None;
        self.progress.say(format!(
            "Waiting for Service {namespace}/{service} to get a LoadBalancer address"
        ));
        let waited = crate::k8s::watch::until(client, &services, service, self.deadline, |found| {
            address = crate::k8s::eck::load_balancer_address(found, port);
            address.is_some()
        })
        .await;
        match (waited, address) {
            (Ok(()), Some(address)) => {
                self.outputs
                    .insert(output.to_string(), SecretString::from(address));
                Ok(())
            }
            (Err(crate::k8s::watch::WatchError::Failed(failure)), _) => {
                Err(failed(step, failure.message))
            }
            _ => Err(failed(
                step,
                "no LoadBalancer address before the timeout; check the Service's events, or expose it yourself and pass --proxy-address",
            )),
        }
    }

    async fn es(
        &mut self,
        step: &Step,
        client: &ContextClient,
    ) -> Result<Arc<EsClient>, ApplyError> {
        self.es_cluster(&step.cluster, client)
            .await
            .map_err(|e| failed(step, e))
    }

    /// The Elasticsearch of `cluster` from the command's pool; pods may be restarting after
    /// earlier writes, so connecting is retried until the deadline.
    async fn es_cluster(
        &mut self,
        cluster: &ClusterId,
        client: &ContextClient,
    ) -> anyhow::Result<Arc<EsClient>> {
        loop {
            match self.es.client(client, cluster).await {
                Ok(connected) => return Ok(connected),
                Err(err) if Instant::now() >= self.deadline => return Err(err),
                Err(err) => {
                    self.progress
                        .say(format!("Waiting to reach Elasticsearch {cluster}: {err}"));
                    tokio::time::sleep(wait::RETRY).await;
                }
            }
        }
    }

    /// How to take back a step just applied, from what was read before it and what it sent.
    fn journal_after(&mut self, step: &Step, captured: Captured) -> Undo {
        let cluster = step.cluster.clone();
        let irreversible = |what: String| Undo::Irreversible {
            cluster: step.cluster.clone(),
            what,
        };
        match (&step.change, captured, self.sent.take()) {
            (Change::CreateApiKey { .. }, _, _) => match self.outputs.get(OUTPUT_KEY_ID) {
                Some(id) => Undo::InvalidateKey {
                    cluster,
                    id: id.expose_secret().to_string(),
                },
                None => irreversible("the API key created".to_string()),
            },
            (
                Change::PatchElasticsearch { .. },
                Captured::Object(before),
                Some(Sent::Patch(ops)),
            ) => match undo::inverse_ops(&before, &ops) {
                Ok(inverses) => Undo::Patch {
                    name: cluster.name.clone(),
                    cluster,
                    target: undo::Target::Elasticsearch,
                    inverses,
                    records_before: undo::record_keys(&before),
                },
                Err(why) => irreversible(format!("the change to Elasticsearch {cluster} ({why})")),
            },
            (
                Change::ApplyObject { object, name, .. },
                Captured::Object(before),
                Some(Sent::Patch(ops)),
            ) => match undo::inverse_ops(&before, &ops) {
                Ok(inverses) => Undo::Patch {
                    cluster,
                    target: undo::Target::Object(*object),
                    name: name.clone(),
                    inverses,
                    records_before: Default::default(),
                },
                Err(why) => irreversible(format!("the change to {object:?} {name} ({why})")),
            },
            (Change::ApplyObject { object, name, .. }, _, Some(Sent::Created(data))) => {
                Undo::DeleteCreated {
                    cluster,
                    object: *object,
                    name: name.clone(),
                    data,
                }
            }
            (Change::CreateService { name, .. }, _, _) => Undo::Delete {
                cluster,
                object: ObjectKind::Service,
                name: name.clone(),
            },
            (
                Change::PutClusterSettings { .. } | Change::SetSkipUnavailable { .. },
                Captured::Settings(previous),
                Some(Sent::Settings(wrote)),
            ) => Undo::Settings {
                cluster,
                previous,
                wrote,
            },
            (Change::DeleteObject { object, name, .. }, _, _) => Undo::Irreversible {
                what: format!("the deletion of {object:?} {}/{name}", cluster.namespace),
                cluster,
            },
            (Change::InvalidateApiKey { id }, _, _) => Undo::Irreversible {
                what: format!("the invalidation of API key {id} on {cluster}"),
                cluster,
            },
            _ => irreversible(format!(
                "{} (what it changed could not be read)",
                step.summary
            )),
        }
    }

    /// What taking `step` back needs, read just before it is applied.
    async fn capture(&mut self, step: &Step, client: &ContextClient) -> Captured {
        let cluster = step.cluster.clone();
        match &step.change {
            Change::PatchElasticsearch { .. } => {
                let api: Api<DynamicObject> = Api::namespaced_with(
                    client.client.clone(),
                    &cluster.namespace,
                    &elasticsearch_resource(),
                );
                match client.call(api.get(&cluster.name)).await {
                    Ok(object) => serde_json::to_value(object)
                        .map(Captured::Object)
                        .unwrap_or(Captured::Nothing),
                    Err(_) => Captured::Nothing,
                }
            }
            Change::ApplyObject {
                object,
                name,
                resource_version: Some(_),
                ..
            } => {
                let object = match object {
                    ObjectKind::Secret => client
                        .call(
                            Api::<Secret>::namespaced(client.client.clone(), &cluster.namespace)
                                .get(name),
                        )
                        .await
                        .ok()
                        .and_then(|s| serde_json::to_value(s).ok()),
                    _ => client
                        .call(
                            Api::<ConfigMap>::namespaced(client.client.clone(), &cluster.namespace)
                                .get(name),
                        )
                        .await
                        .ok()
                        .and_then(|c| serde_json::to_value(c).ok()),
                };
                object.map_or(Captured::Nothing, Captured::Object)
            }
            Change::PutClusterSettings { settings } => {
                let keys: Vec<String> = settings
                    .as_object()
                    .map(|s| s.keys().cloned().collect())
                    .unwrap_or_default();
                self.previous_settings(&cluster, client, &keys).await
            }
            Change::SetSkipUnavailable { alias, .. } => {
                let key = format!("cluster.remote.{alias}.skip_unavailable");
                self.previous_settings(&cluster, client, &[key]).await
            }
            _ => Captured::Nothing,
        }
    }

    async fn previous_settings(
        &mut self,
        cluster: &ClusterId,
        client: &ContextClient,
        keys: &[String],
    ) -> Captured {
        let Ok(es) = self.es_cluster(cluster, client).await else {
            return Captured::Nothing;
        };
        let Ok(settings) = es.get("/_cluster/settings?flat_settings=true").await else {
            return Captured::Nothing;
        };
        Captured::Settings(
            keys.iter()
                .map(|k| {
                    (
                        k.clone(),
                        settings["persistent"]
                            .get(k)
                            .cloned()
                            .unwrap_or(Value::Null),
                    )
                })
                .collect(),
        )
    }

    async fn create_api_key(
        &mut self,
        step: &Step,
        client: &ContextClient,
        body: &Value,
    ) -> Result<(), ApplyError> {
        if self.dry_run == DryRun::Server {
            return Ok(());
        }
        // The remote must be rolled out with its remote cluster server before keys matter.
        let replaced = self
            .pending_rollouts
            .remove(&step.cluster)
            .unwrap_or_default();
        wait::wait_for_pods_replaced(
            client,
            &step.cluster,
            &replaced,
            self.deadline,
            &mut self.progress,
        )
        .await
        .map_err(|e| failed(step, e))?;
        let es = self.es(step, client).await?;
        let created = es
            .post("/_security/cross_cluster/api_key", body)
            .await
            .map_err(|e| failed(step, e))?;
        let id = created["id"].as_str().unwrap_or_default().to_string();
        let encoded = created["encoded"].as_str().unwrap_or_default().to_string();
        if id.is_empty() || encoded.is_empty() {
            return Err(failed(step, "Elasticsearch answered without an id or key"));
        }
        self.writes += 1;
        self.outputs
            .insert(OUTPUT_KEY_ID.to_string(), SecretString::from(id));
        self.outputs
            .insert(OUTPUT_KEY_ENCODED.to_string(), SecretString::from(encoded));
        Ok(())
    }
}

/// Waits until the alias is configured in the persistent settings (ECK sets its seeds).
async fn wait_for_alias(es: &EsClient, alias: &str, deadline: Instant) -> anyhow::Result<()> {
    let prefix = format!("cluster.remote.{alias}.");
    loop {
        let settings = es.get("/_cluster/settings?flat_settings=true").await?;
        let configured = settings["persistent"].as_object().is_some_and(|all| {
            all.keys()
                .any(|k| k.starts_with(&prefix) && !k.ends_with(".skip_unavailable"))
        });
        if configured {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!("ECK did not configure remote cluster {alias:?} before the timeout");
        }
        if let Some(reason) = interrupt::reason() {
            anyhow::bail!("{reason} while waiting for ECK to configure remote cluster {alias:?}");
        }
        tokio::time::sleep(wait::POLL_ELASTICSEARCH).await;
    }
}

/// A failed `test` is a 422 like a validation error; telling them apart needs a fresh read: if
/// what a guard tested has moved on, someone else wrote, and the command re-plans.
async fn classify(
    step: &Step,
    client: &ContextClient,
    api: &Api<DynamicObject>,
    guards: &[(String, Value)],
    failure: ContextFailure,
) -> ApplyError {
    if matches!(failure.http_status, Some(409 | 422))
        && let Ok(current) = client.call(api.get(&step.cluster.name)).await
    {
        let current = serde_json::to_value(current).unwrap_or_default();
        let moved = guards
            .iter()
            .any(|(path, tested)| current.pointer(path) != Some(tested));
        if moved {
            return ApplyError::Conflict(step.cluster.to_string());
        }
    }
    failed(step, failure.message)
}
