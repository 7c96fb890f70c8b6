//! `kubectl remote-cluster unlink LOCAL ALIAS`: remove a link this plugin made.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::apply::DryRun;
use crate::cli::{GlobalFlags, UnlinkArgs};
use crate::commands::cross;
use crate::output::API_VERSION;
use crate::commands::mutate::{self, Progress};
use crate::error::{ExitCode, UserError};
use crate::k8s::eck;
use crate::k8s::kubeconfig::LoadedKubeconfig;
use crate::output;
use crate::plan::{self, EsState, Plan, UnlinkRequest};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnlinkResult {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub local: plan::ClusterId,
    pub alias: String,
    pub dry_run: DryRun,
    pub plan: Plan,
    pub still_using_remote_server: Vec<String>,
    pub writes: usize,
}

pub async fn run(
    global: &GlobalFlags,
    args: &UnlinkArgs,
    kubeconfig: Arc<LoadedKubeconfig>,
) -> anyhow::Result<ExitCode> {
    let flags = &args.mutation;
    let wait_limit = mutate::parse_wait_timeout(&flags.timeout)?;
    let target = mutate::target(global, kubeconfig.clone(), "unlink").await?;
    let client = &target.client;
    let local = mutate::read_es(client, &target.namespace, &args.local).await?;
    if let Some(record) = local.plugin_links().get(&args.alias)
        && record.proxy_address.is_some()
    {
        return cross::unlink(global, args, &kubeconfig, &target, record.clone()).await;
    }
    let request = UnlinkRequest {
        alias: args.alias.clone(),
        disable_server: args.disable_server,
    };

    let applied = mutate::plan_and_apply(&[client], flags, || {
        let (client, request, namespace) = (client, &request, &target.namespace);
        async move {
            let local = mutate::read_es(client, namespace, &args.local).await?;
            let (remote, others) = remote_and_others(client, &local, &args.alias).await?;
            let mut planned =
                plan::plan_same_operator_unlink(&local, remote.as_ref(), &others, request)
                    .map_err(UserError::from)?;
            let current =
                crate::commands::link::current_skip_unavailable(client, &local, &request.alias)
                    .await;
            if let Some(step) = plan::clear_skip_unavailable_step(&local, &request.alias, current) {
                planned.plan.steps.insert(0, step);
            }
            Ok(planned)
        }
    })
    .await?;
    let (planned, writes) = (applied.planned, applied.writes);
    let local_id = plan::ClusterId {
        context: client.context.clone(),
        namespace: target.namespace.clone(),
        name: args.local.clone(),
    };
    if flags.dry_run == DryRun::None {
        output::info(&format!(
            "Unlinked remote cluster {:?} from {local_id}.",
            args.alias
        ));
        if flags.wait {
            let deadline = Instant::now() + wait_limit;
            let mut progress = Progress::new();
            for step in &planned.plan.steps {
                mutate::wait_for_rollout(client, &step.cluster, deadline, &mut progress).await?;
            }
            progress.finish();
        }
    }
    if let Some(format) = flags.output {
        output::print_document(
            &UnlinkResult {
                api_version: API_VERSION,
                kind: "UnlinkResult",
                local: local_id,
                alias: args.alias.clone(),
                dry_run: flags.dry_run,
                plan: planned.plan.clone(),
                still_using_remote_server: planned.still_using.clone(),
                writes,
            },
            format,
        )?;
    }
    Ok(ExitCode::Ok)
}

/// The remote the alias points at (from the plugin's record), and every other cluster of the
/// context, to tell whether the remote's server is still used.
async fn remote_and_others(
    client: &crate::k8s::clients::ContextClient,
    local: &EsState,
    alias: &str,
) -> anyhow::Result<(Option<EsState>, Vec<EsState>)> {
    let Some(record) = local.plugin_links().get(alias).cloned() else {
        return Ok((None, Vec::new()));
    };
    let remote = match eck::get_elasticsearch(client, &record.remote_namespace, &record.remote_name)
        .await?
    {
        Some(object) => Some(EsState {
            id: plan::ClusterId {
                context: client.context.clone(),
                namespace: record.remote_namespace.clone(),
                name: record.remote_name.clone(),
            },
            object,
        }),
        None => None,
    };
    let others = eck::list_raw(client)
        .await?
        .into_iter()
        .filter_map(|object| {
            let namespace = object.pointer("/metadata/namespace")?.as_str()?.to_string();
            let name = object.pointer("/metadata/name")?.as_str()?.to_string();
            let id = plan::ClusterId {
                context: client.context.clone(),
                namespace,
                name,
            };
            (id != local.id).then_some(EsState { id, object })
        })
        .collect();
    Ok((remote, others))
}
