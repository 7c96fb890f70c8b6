//! The journal of a plan being applied: for each step done, how to take it back. When a step
//! fails, the steps already done are undone in reverse, so a failed command leaves the clusters
//! as they were; a step that cannot be taken back stops the undo, and the same command, run
//! again, completes the plan instead.

use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use crate::es::EsClient;
use crate::k8s::clients::ContextClient;
use crate::k8s::eck::elasticsearch_resource;
use crate::plan::{ClusterId, ObjectKind};

/// How to take one applied step back. Deliberately not `Debug`: a Secret's previous data may
/// be in it.
#[derive(Clone)]
pub enum Undo {
    /// Put back the spec and annotations an Elasticsearch resource had, if nothing but this run
    /// changed its spec since (`generation` is what this run's last write left).
    Elasticsearch {
        cluster: ClusterId,
        spec: Value,
        annotations: Option<Value>,
        generation: Option<i64>,
    },
    /// Delete an object this run created.
    Delete {
        cluster: ClusterId,
        object: ObjectKind,
        name: String,
    },
    /// Put back the `data` of an object this run patched.
    RestoreData {
        cluster: ClusterId,
        object: ObjectKind,
        name: String,
        data: Option<Value>,
    },
    /// Put back cluster settings (`null` for those that were not set).
    Settings { cluster: ClusterId, previous: Value },
    /// Invalidate an API key this run created.
    InvalidateKey { cluster: ClusterId, id: String },
    /// A step that cannot be taken back (a deletion, an invalidation).
    Irreversible { what: String },
}

impl Undo {
    pub fn cluster(&self) -> Option<&ClusterId> {
        match self {
            Undo::Elasticsearch { cluster, .. }
            | Undo::Delete { cluster, .. }
            | Undo::RestoreData { cluster, .. }
            | Undo::Settings { cluster, .. }
            | Undo::InvalidateKey { cluster, .. } => Some(cluster),
            Undo::Irreversible { .. } => None,
        }
    }

    /// Takes the step back. `es` reaches the step's Elasticsearch when it needs one.
    pub async fn run(&self, client: &ContextClient, es: Option<&EsClient>) -> anyhow::Result<()> {
        match self {
            Undo::Elasticsearch {
                cluster,
                spec,
                annotations,
                generation,
            } => {
                let api: Api<DynamicObject> = Api::namespaced_with(
                    client.client.clone(),
                    &cluster.namespace,
                    &elasticsearch_resource(),
                );
                let mut ops = vec![
                    json!({"op": "test", "path": "/metadata/generation", "value": generation}),
                    json!({"op": "replace", "path": "/spec", "value": spec}),
                ];
                ops.push(match annotations {
                    Some(a) => json!({"op": "add", "path": "/metadata/annotations", "value": a}),
                    None => json!({"op": "add", "path": "/metadata/annotations", "value": {}}),
                });
                let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops))?;
                client
                    .call(api.patch(
                        &cluster.name,
                        &PatchParams::default(),
                        &Patch::Json::<()>(patch),
                    ))
                    .await
                    .map_err(|f| anyhow::anyhow!("{}", f.message))?;
                Ok(())
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
                    _ => Ok(()),
                }
            }
            Undo::RestoreData {
                cluster,
                object,
                name,
                data,
            } => {
                let op = match data {
                    Some(d) => json!({"op": "add", "path": "/data", "value": d}),
                    None => json!({"op": "remove", "path": "/data"}),
                };
                let patch: json_patch::Patch = serde_json::from_value(json!([op]))?;
                let patch = Patch::Json::<()>(patch);
                let c = client.client.clone();
                let ns = &cluster.namespace;
                let params = PatchParams::default();
                let result = match object {
                    ObjectKind::Secret => client
                        .call(Api::<Secret>::namespaced(c, ns).patch(name, &params, &patch))
                        .await
                        .map(|_| ()),
                    _ => client
                        .call(Api::<ConfigMap>::namespaced(c, ns).patch(name, &params, &patch))
                        .await
                        .map(|_| ()),
                };
                result.map_err(|f| anyhow::anyhow!("{}", f.message))
            }
            Undo::Settings { previous, .. } => {
                let es = es.ok_or_else(|| anyhow::anyhow!("Elasticsearch cannot be reached"))?;
                es.put("/_cluster/settings", &json!({ "persistent": previous }))
                    .await?;
                Ok(())
            }
            Undo::InvalidateKey { cluster, id } => {
                let es = es.ok_or_else(|| anyhow::anyhow!("Elasticsearch cannot be reached"))?;
                es.delete("/_security/api_key", &json!({ "ids": [id] }))
                    .await?;
                crate::output::warning(&format!(
                    "invalidated the API key {id} created on {cluster}, since the link could not be completed"
                ));
                Ok(())
            }
            Undo::Irreversible { what } => anyhow::bail!("{what} cannot be taken back"),
        }
    }
}
