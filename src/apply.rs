//! Executes a plan: every write guarded, conflicts reported so the command can re-plan.

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde::Serialize;

use crate::k8s::clients::ContextClient;
use crate::k8s::eck::elasticsearch_resource;
use crate::k8s::failure::ContextFailure;
use crate::plan::{Change, Plan, Step};

/// The field manager kubectl-style tools record on the objects they write.
pub const FIELD_MANAGER: &str = "kubectl-remote-cluster";

/// `--dry-run`, as kubectl spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
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
}

/// Applies the steps in order with the clients of their contexts; returns how many were sent.
pub async fn apply(
    plan: &Plan,
    client_for: &dyn Fn(&str) -> Option<ContextClient>,
    dry_run: DryRun,
) -> Result<usize, ApplyError> {
    if dry_run == DryRun::Client {
        return Ok(0);
    }
    let mut sent = 0;
    for step in &plan.steps {
        let client = client_for(&step.cluster.context).ok_or_else(|| ApplyError::Failed {
            step: step.summary.clone(),
            failure: format!("no client for context {}", step.cluster.context),
        })?;
        apply_step(step, &client, dry_run).await?;
        sent += 1;
    }
    Ok(sent)
}

async fn apply_step(
    step: &Step,
    client: &ContextClient,
    dry_run: DryRun,
) -> Result<(), ApplyError> {
    match &step.change {
        Change::PatchElasticsearch {
            resource_version,
            patch,
            ..
        } => {
            let api: Api<DynamicObject> = Api::namespaced_with(
                client.client.clone(),
                &step.cluster.namespace,
                &elasticsearch_resource(),
            );
            let operations: json_patch::Patch =
                serde_json::from_value(serde_json::Value::Array(patch.clone())).map_err(|e| {
                    ApplyError::Failed {
                        step: step.summary.clone(),
                        failure: format!("internal error: invalid patch: {e}"),
                    }
                })?;
            let mut params = PatchParams {
                field_manager: Some(FIELD_MANAGER.to_string()),
                ..PatchParams::default()
            };
            if dry_run == DryRun::Server {
                params = params.dry_run();
            }
            let outcome = client
                .call(api.patch(&step.cluster.name, &params, &Patch::Json::<()>(operations)))
                .await;
            match outcome {
                Ok(_) => Ok(()),
                Err(failure) => Err(classify(step, client, &api, resource_version, failure).await),
            }
        }
    }
}

/// A failed `test` of the resourceVersion is a 422 like a validation error; telling them apart
/// needs a fresh read: if the object moved on, it was a conflict.
async fn classify(
    step: &Step,
    client: &ContextClient,
    api: &Api<DynamicObject>,
    planned_version: &str,
    failure: ContextFailure,
) -> ApplyError {
    if matches!(failure.http_status, Some(409 | 422)) {
        let current = client.call(api.get(&step.cluster.name)).await;
        if let Ok(object) = current
            && object.metadata.resource_version.as_deref() != Some(planned_version)
        {
            return ApplyError::Conflict(step.cluster.to_string());
        }
    }
    ApplyError::Failed {
        step: format!("{} on {}", step.summary, step.cluster),
        failure: failure.message,
    }
}
