//! `kubectl remote-cluster link LOCAL REMOTE`: connect two Elasticsearch clusters.

use std::sync::Arc;

use serde::Serialize;

use crate::apply::DryRun;
use crate::cli::{GlobalFlags, LinkArgs};
use crate::commands::cross;
use crate::output::API_VERSION;
use crate::commands::mutate;
use crate::error::{ExitCode, UserError};
use crate::k8s::eck;
use crate::k8s::kubeconfig::LoadedKubeconfig;
use crate::output;
use crate::plan::{self, LinkRequest, Plan, SecurityModel};

/// The `-o json|yaml` document of `link`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkResult {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub local: plan::ClusterId,
    pub remote: plan::ClusterId,
    pub alias: String,
    pub security: SecurityModel,
    pub dry_run: DryRun,
    pub plan: Plan,
    /// Writes sent to the API server (with `dryRun=All` under `--dry-run=server`).
    pub writes: usize,
    /// Whether `_remote/info` reported the link connected (`None` without `--wait`).
    pub connected: Option<bool>,
}

pub async fn run(
    global: &GlobalFlags,
    args: &LinkArgs,
    kubeconfig: Arc<LoadedKubeconfig>,
) -> anyhow::Result<ExitCode> {
    let flags = &args.mutation;
    // A bad --timeout is refused before anything is read or written.
    mutate::parse_wait_timeout(&flags.timeout)?;
    if args.restriction.given()
        && (args.external.is_none()
            || args.security != Some(crate::plan::SecurityModel::Certificate))
    {
        return Err(crate::error::UserError::TrustWithoutCertificate.into());
    }
    let target = mutate::target(global, kubeconfig.clone(), "link").await?;
    let remote_namespace = args
        .remote_namespace
        .clone()
        .unwrap_or_else(|| target.namespace.clone());
    if args.external.is_some() {
        return cross::link_external(&target, args).await;
    }
    let remote_client = mutate::remote_client(
        global,
        args.remote_context.as_deref(),
        args.remote_kubeconfig.as_deref(),
        &kubeconfig,
        &target,
    )
    .await?;
    if let Some(remote) = &remote_client
        && !mutate::same_server(&target.client, remote)
    {
        let sides = cross::Sides {
            local: &target.client,
            local_namespace: &target.namespace,
            remote,
            remote_namespace: &remote_namespace,
        };
        return cross::link(&sides, args).await;
    }
    let client = &target.client;
    let request = LinkRequest {
        alias: args.alias.clone(),
        security: args.security,
        search_indices: args.search_indices.clone(),
        replication_indices: args.replication_indices.clone(),
        skip_unavailable: args.skip_unavailable,
    };
    // Independent reads go out together: the operator's facts and both resources.
    let (operator, first_read) = tokio::join!(
        eck::operator_facts(client),
        read_pair(
            client,
            &target.namespace,
            &args.local,
            &remote_namespace,
            args.remote_name()
        )
    );
    let mut first_read = Some(first_read?);

    let applied = mutate::plan_and_apply(&[client], flags, || {
        let first = first_read.take();
        let (client, request, operator) = (client, &request, &operator);
        let (local_ns, remote_ns) = (&target.namespace, &remote_namespace);
        async move {
            let (local, remote) = match first {
                Some(pair) => pair,
                None => {
                    read_pair(client, local_ns, &args.local, remote_ns, args.remote_name()).await?
                }
            };
            let mut planned = plan::plan_same_operator_link(&local, &remote, operator, request)
                .map_err(UserError::from)?;
            if planned.security == plan::SecurityModel::Certificate && !planned.plan.is_empty() {
                let (local_sync, remote_sync) = tokio::try_join!(
                    cross::restricted_peer_sync_of(client, &local, &remote.id),
                    cross::restricted_peer_sync_of(client, &remote, &local.id),
                )?;
                planned
                    .plan
                    .steps
                    .splice(0..0, local_sync.into_iter().chain(remote_sync));
            }
            if request.skip_unavailable {
                let current = current_skip_unavailable(client, &local, &planned.alias).await;
                planned.plan.steps.extend(plan::skip_unavailable_step(
                    &local,
                    &planned.alias,
                    true,
                    current,
                ));
            }
            Ok(planned)
        }
    })
    .await?;
    let (planned, writes) = (applied.planned, applied.writes);

    let mut result = LinkResult {
        api_version: API_VERSION,
        kind: "LinkResult",
        local: cluster_id(client, &target.namespace, &args.local),
        remote: cluster_id(client, &remote_namespace, args.remote_name()),
        alias: planned.alias.clone(),
        security: planned.security,
        dry_run: flags.dry_run,
        plan: planned.plan.clone(),
        writes,
        connected: None,
    };
    if planned.plan.is_empty() {
        output::info(&format!(
            "Remote cluster {:?} is already linked from {} to {}: nothing to change.",
            planned.alias, result.local, result.remote
        ));
    } else if flags.dry_run == DryRun::None {
        output::info(&format!(
            "Linked {} to {} as {:?} ({} security model).",
            result.local, result.remote, planned.alias, planned.security
        ));
    }

    let touched: Vec<_> = planned
        .plan
        .steps
        .iter()
        .map(|s| s.cluster.clone())
        .collect();
    result.connected =
        mutate::wait_until_connected(client, flags, &result.local, &planned.alias, &touched)
            .await?;

    if let Some(format) = flags.output {
        output::print_document(&result, format)?;
    }
    Ok(ExitCode::Ok)
}

/// `cluster.remote.<alias>.skip_unavailable` as the local cluster has it (`None` when unset or
/// when Elasticsearch cannot be reached yet).
pub async fn current_skip_unavailable(
    client: &crate::k8s::clients::ContextClient,
    local: &plan::EsState,
    alias: &str,
) -> Option<bool> {
    let target = crate::es::EsTarget {
        namespace: local.id.namespace.clone(),
        name: local.id.name.clone(),
    };
    let es = crate::es::EsClient::connect(client, target).await.ok()?;
    let settings = es.get("/_cluster/settings?flat_settings=true").await.ok()?;
    let value = &settings["persistent"][format!("cluster.remote.{alias}.skip_unavailable")];
    value
        .as_bool()
        .or_else(|| value.as_str().and_then(|v| v.parse().ok()))
}

async fn read_pair(
    client: &crate::k8s::clients::ContextClient,
    local_namespace: &str,
    local: &str,
    remote_namespace: &str,
    remote: &str,
) -> anyhow::Result<(plan::EsState, plan::EsState)> {
    tokio::try_join!(
        mutate::read_es(client, local_namespace, local),
        mutate::read_es(client, remote_namespace, remote)
    )
}

fn cluster_id(
    client: &crate::k8s::clients::ContextClient,
    namespace: &str,
    name: &str,
) -> plan::ClusterId {
    plan::ClusterId {
        context: client.context.clone(),
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
}
