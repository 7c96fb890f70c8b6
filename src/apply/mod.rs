//! Executes a plan: every write guarded, conflicts reported so the command can re-plan, values
//! produced by one step (an address, an API key) handed to later ones without being printed.

use std::collections::{BTreeMap, HashMap};
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
use crate::output;
use crate::plan::{
    self, Change, ClusterId, DataValue, OUTPUT_ADDRESS, OUTPUT_KEY_ENCODED, OUTPUT_KEY_ID,
    ObjectKind, Plan, Step,
};
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

/// How applying a plan ended short of success.
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
    /// A step failed after earlier ones were applied: the plan is recorded on the objects, so the
    /// same command, run again, completes it.
    #[error("{cause}; the {done} steps already applied were undone: nothing changed")]
    RolledBack { cause: Box<ApplyError>, done: usize },
    #[error(
        "{cause}; {done} of {total} steps were applied and could not all be undone: run the same command again to finish"
    )]
    Partial {
        cause: Box<ApplyError>,
        done: usize,
        total: usize,
    },
}

/// Applies the steps in order with the clients of their contexts; returns how many writes were
/// sent. Waits inside the plan give up at `deadline`; `given` are outputs known beforehand.
pub async fn apply(
    plan: &Plan,
    client_for: &dyn Fn(&str) -> Option<ContextClient>,
    es: &EsPool,
    dry_run: DryRun,
    deadline: Instant,
    given: &BTreeMap<String, SecretString>,
) -> Result<Outcome, ApplyError> {
    if dry_run == DryRun::Client {
        return Ok(Outcome::default());
    }
    let mut run = Run {
        dry_run,
        deadline,
        // Values the user handed over (an API key from a file) are outputs from the start.
        outputs: given.clone(),
        own_writes: HashMap::new(),
        own_generations: HashMap::new(),
        es: es.clone(),
        fresh_key: None,
        key_stored: false,
        writes: 0,
        progress: Progress::new(),
        journal: Vec::new(),
    };
    for (done, step) in plan.steps.iter().enumerate() {
        let client = client_for(&step.cluster.context).ok_or_else(|| ApplyError::Failed {
            step: step.summary.clone(),
            failure: format!("no client for context {}", step.cluster.context),
        })?;
        // A server-side dry run writes nothing, so there is nothing to take back.
        let journaled = dry_run == DryRun::None;
        let undo = if journaled && !interrupt::requested() {
            run.capture(step, &client).await
        } else {
            None
        };
        if let Err(err) = run.step_unless_interrupted(step, &client).await {
            run.progress.finish();
            // A conflict re-plans from fresh reads, which sees what is already done.
            if done == 0 || !journaled || matches!(err, ApplyError::Conflict(_)) {
                run.undo_fresh_key(client_for).await;
                return Err(err);
            }
            if run.roll_back(client_for).await {
                interrupt::all_undone();
                return Err(ApplyError::RolledBack {
                    cause: Box::new(err),
                    done,
                });
            }
            run.undo_fresh_key(client_for).await;
            return Err(ApplyError::Partial {
                cause: Box::new(err),
                done,
                total: plan.steps.len(),
            });
        }
        if journaled {
            run.journal_after(step, undo);
        }
        interrupt::step_applied(&format!("{} on {}", step.summary, step.cluster));
    }
    run.progress.finish();
    Ok(Outcome {
        writes: run.writes,
        outputs: run.outputs,
    })
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
    es: EsPool,
    /// A key this run created, with the cluster it lives on, until the local keystore holds it.
    fresh_key: Option<(ClusterId, String)>,
    key_stored: bool,
    writes: usize,
    progress: Progress,
    /// How to take back each step done so far.
    journal: Vec<Undo>,
}

fn failed(step: &Step, failure: impl std::fmt::Display) -> ApplyError {
    ApplyError::Failed {
        step: format!("{} on {}", step.summary, step.cluster),
        failure: failure.to_string(),
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
                output,
            } => {
                self.wait_for_address(step, client, namespace, service, output)
                    .await
            }
            Change::CreateApiKey { body, .. } => self.create_api_key(step, client, body).await,
            Change::WaitForRollout => {
                if self.dry_run == DryRun::Server {
                    return Ok(());
                }
                wait::wait_for_rollout(client, &step.cluster, self.deadline, &mut self.progress)
                    .await
                    .map_err(|e| failed(step, e))
            }
            Change::SetSkipUnavailable { alias, value } => {
                if self.dry_run == DryRun::Server {
                    return Ok(());
                }
                let deadline = self.deadline;
                let es = self.es(step, client).await?;
                if value.is_some() {
                    wait_for_alias(&es, alias, deadline)
                        .await
                        .map_err(|e| failed(step, e))?;
                }
                let key = format!("cluster.remote.{alias}.skip_unavailable");
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
                let settings = self.substitute(settings);
                let es = self.es(step, client).await?;
                es.put("/_cluster/settings", &json!({ "persistent": settings }))
                    .await
                    .map_err(|e| failed(step, e))?;
                self.writes += 1;
                Ok(())
            }
        }
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
        let operations: json_patch::Patch =
            serde_json::from_value(operations).map_err(|e| failed(step, e))?;
        let api: Api<DynamicObject> = Api::namespaced_with(
            client.client.clone(),
            &step.cluster.namespace,
            &elasticsearch_resource(),
        );
        let outcome = client
            .call(api.patch(
                &step.cluster.name,
                &self.params(),
                &Patch::Json::<()>(operations),
            ))
            .await;
        match outcome {
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
                if let Some(after) = updated.metadata.resource_version {
                    self.own_writes
                        .insert(key, (planned_version.to_string(), after));
                }
                Ok(())
            }
            Err(failure) => Err(classify(step, client, &api, &guards, failure).await),
        }
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
                let manifest = json!({
                    "apiVersion": "v1",
                    "kind": kind,
                    "metadata": {"name": name, "namespace": namespace, "labels": labels},
                    "data": values.iter().map(|(k, v)| (k.clone(), encode(v))).collect::<serde_json::Map<_, _>>(),
                });
                match object {
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
                }
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
                // An object this run created is known by the empty version, so that a later step
                // (deleting it) can guard on the version our write produced.
                if let Some(after) = after {
                    let planned = resource_version.clone().unwrap_or_default();
                    self.own_writes.insert(key, (planned, after));
                }
                if data
                    .values()
                    .any(|v| *v == DataValue::Output(OUTPUT_KEY_ENCODED.to_string()))
                {
                    self.key_stored = true;
                }
                Ok(())
            }
            // A failed `test` (422) or a name taken meanwhile (409): someone else wrote.
            Err(failure) if matches!(failure.http_status, Some(409 | 422)) => {
                Err(ApplyError::Conflict(format!("{kind} {namespace}/{name}")))
            }
            Err(failure) => Err(failed(step, failure.message)),
        }
    }

    async fn wait_for_address(
        &mut self,
        step: &Step,
        client: &ContextClient,
        namespace: &str,
        service: &str,
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
            address = crate::k8s::eck::load_balancer_host(found);
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

    /// Records how to take back a step just applied, with what only its result tells.
    fn journal_after(&mut self, step: &Step, undo: Option<Undo>) {
        match (&step.change, undo) {
            (Change::CreateApiKey { .. }, _) => {
                if let Some(id) = self.outputs.get(OUTPUT_KEY_ID) {
                    self.journal.push(Undo::InvalidateKey {
                        cluster: step.cluster.clone(),
                        id: id.expose_secret().to_string(),
                    });
                }
            }
            (
                _,
                Some(Undo::Elasticsearch {
                    cluster,
                    spec,
                    annotations,
                    generation,
                }),
            ) => {
                // The generation this run's writes left (an annotation-only write leaves the one
                // read): the undo applies only if nobody changed the spec since.
                let key = format!("es/{cluster}");
                let generation = self
                    .own_generations
                    .get(&key)
                    .map(|(_, after)| *after)
                    .or(generation);
                self.journal.push(Undo::Elasticsearch {
                    cluster,
                    spec,
                    annotations,
                    generation,
                });
            }
            (_, Some(undo)) => self.journal.push(undo),
            (_, None) => {}
        }
    }

    /// How to take `step` back, read just before it is applied.
    async fn capture(&mut self, step: &Step, client: &ContextClient) -> Option<Undo> {
        let cluster = step.cluster.clone();
        match &step.change {
            Change::PatchElasticsearch { .. } => {
                let api: Api<DynamicObject> = Api::namespaced_with(
                    client.client.clone(),
                    &cluster.namespace,
                    &elasticsearch_resource(),
                );
                let object = client.call(api.get(&cluster.name)).await.ok()?;
                let object = serde_json::to_value(object).ok()?;
                Some(Undo::Elasticsearch {
                    spec: object.get("spec").cloned().unwrap_or_else(|| json!({})),
                    annotations: object.pointer("/metadata/annotations").cloned(),
                    generation: object
                        .pointer("/metadata/generation")
                        .and_then(Value::as_i64),
                    cluster,
                })
            }
            Change::ApplyObject {
                object,
                name,
                resource_version: None,
                ..
            } => Some(Undo::Delete {
                cluster,
                object: *object,
                name: name.clone(),
            }),
            Change::ApplyObject { object, name, .. } => {
                let data = match object {
                    ObjectKind::Secret => client
                        .call(
                            Api::<Secret>::namespaced(client.client.clone(), &cluster.namespace)
                                .get(name),
                        )
                        .await
                        .ok()
                        .map(|s| serde_json::to_value(s).unwrap_or_default()),
                    _ => client
                        .call(
                            Api::<ConfigMap>::namespaced(client.client.clone(), &cluster.namespace)
                                .get(name),
                        )
                        .await
                        .ok()
                        .map(|c| serde_json::to_value(c).unwrap_or_default()),
                }?;
                Some(Undo::RestoreData {
                    cluster,
                    object: *object,
                    name: name.clone(),
                    data: data.get("data").cloned(),
                })
            }
            Change::CreateService { name, .. } => Some(Undo::Delete {
                cluster,
                object: ObjectKind::Service,
                name: name.clone(),
            }),
            Change::PutClusterSettings { settings } => {
                let keys: Vec<String> = settings.as_object()?.keys().cloned().collect();
                self.previous_settings(&cluster, client, &keys).await
            }
            Change::SetSkipUnavailable { alias, .. } => {
                let key = format!("cluster.remote.{alias}.skip_unavailable");
                self.previous_settings(&cluster, client, &[key]).await
            }
            Change::DeleteObject { object, name, .. } => Some(Undo::Irreversible {
                what: format!("the deletion of {object:?} {name}"),
            }),
            Change::InvalidateApiKey { id } => Some(Undo::Irreversible {
                what: format!("the invalidation of API key {id}"),
            }),
            // Keys are journaled once created (their id is known then); waits change nothing.
            Change::CreateApiKey { .. }
            | Change::WaitForAddress { .. }
            | Change::WaitForRollout => None,
        }
    }

    async fn previous_settings(
        &mut self,
        cluster: &ClusterId,
        client: &ContextClient,
        keys: &[String],
    ) -> Option<Undo> {
        let es = self.es_cluster(cluster, client).await.ok()?;
        let settings = es.get("/_cluster/settings?flat_settings=true").await.ok()?;
        let previous: serde_json::Map<String, Value> = keys
            .iter()
            .map(|k| {
                (
                    k.clone(),
                    settings["persistent"]
                        .get(k)
                        .cloned()
                        .unwrap_or(Value::Null),
                )
            })
            .collect();
        Some(Undo::Settings {
            cluster: cluster.clone(),
            previous: Value::Object(previous),
        })
    }

    /// Undoes the journal in reverse; true when every step done was taken back.
    async fn roll_back(&mut self, client_for: &dyn Fn(&str) -> Option<ContextClient>) -> bool {
        while let Some(undo) = self.journal.pop() {
            let Some(cluster) = undo.cluster().cloned() else {
                return false;
            };
            let Some(client) = client_for(&cluster.context) else {
                return false;
            };
            let needs_es = matches!(undo, Undo::Settings { .. } | Undo::InvalidateKey { .. });
            let es = if needs_es {
                match self.es_cluster(&cluster, &client).await {
                    Ok(es) => Some(es),
                    Err(_) => return false,
                }
            } else {
                None
            };
            if let Err(err) = undo.run(&client, es.as_deref()).await {
                output::warning(&format!("could not undo a step on {cluster}: {err}"));
                return false;
            }
            if let Undo::InvalidateKey { .. } = undo {
                self.fresh_key = None;
            }
        }
        true
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
        wait::wait_for_rollout(client, &step.cluster, self.deadline, &mut self.progress)
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
        self.fresh_key = Some((step.cluster.clone(), id.clone()));
        self.outputs
            .insert(OUTPUT_KEY_ID.to_string(), SecretString::from(id));
        self.outputs
            .insert(OUTPUT_KEY_ENCODED.to_string(), SecretString::from(encoded));
        Ok(())
    }

    /// A key created by this run that never reached the local keystore is invalidated, so a
    /// failure leaves no orphan key behind.
    async fn undo_fresh_key(&mut self, client_for: &dyn Fn(&str) -> Option<ContextClient>) {
        let Some((cluster, id)) = self.fresh_key.take() else {
            return;
        };
        if self.key_stored {
            return;
        }
        let Some(client) = client_for(&cluster.context) else {
            return;
        };
        let Ok(es) = self.es.client(&client, &cluster).await else {
            return;
        };
        match es
            .delete("/_security/api_key", &json!({ "ids": [id] }))
            .await
        {
            Ok(_) => output::warning(&format!(
                "invalidated the API key {id} created on {cluster}, since the link could not be completed"
            )),
            Err(err) => output::warning(&format!(
                "could not invalidate the API key {id} on {cluster} ({err}); invalidate it with DELETE /_security/api_key {{\"ids\":[\"{id}\"]}}"
            )),
        }
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
