//! Both clusters in one Kubernetes cluster under the same ECK operator: the specs say what to
//! connect and ECK does the rest (CA copies, keys, settings).

use std::time::Instant;

use serde::Serialize;

use crate::apply::DryRun;
use crate::error::UserError;
use crate::observe::{self, cluster_id};
use crate::output::{self, API_VERSION};
use crate::plan::{self, Plan, SecurityModel};
use crate::workflow::request::{LinkRequest, Outcome, UnlinkRequest};
use crate::workflow::{self, Progress, Session};

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

/// The `-o json|yaml` document of `unlink`.
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

/// `link LOCAL REMOTE` with both in the session's context.
pub async fn link(
    session: &Session,
    args: &LinkRequest,
    remote_namespace: &str,
) -> anyhow::Result<Outcome> {
    let flags = &args.mutation;
    let client = &session.client;
    let es = &session.es;
    let request = plan::LinkRequest {
        alias: args.alias.clone(),
        security: args.security,
        search_indices: args.search_indices.clone(),
        replication_indices: args.replication_indices.clone(),
        skip_unavailable: args.skip_unavailable,
    };
    let local_ref = (session.namespace.as_str(), args.local.as_str());
    let remote_ref = (remote_namespace, args.remote_name());
    // Independent reads go out together: the operator's facts and both resources.
    let (operator, first_read) = tokio::join!(
        crate::k8s::eck::operator_facts(client, &session.namespace),
        observe::read_pair(client, local_ref, remote_ref)
    );
    let mut first_read = Some(first_read?);

    let applied = workflow::plan_and_apply(&[client], es, flags, || {
        let first = first_read.take();
        let (request, operator) = (&request, &operator);
        async move {
            let (local, remote) = match first {
                Some(pair) => pair,
                None => observe::read_pair(client, local_ref, remote_ref).await?,
            };
            let mut planned = plan::plan_same_operator_link(&local, &remote, operator, request)
                .map_err(UserError::from)?;
            if planned.security == plan::SecurityModel::Certificate && !planned.plan.is_empty() {
                let (local_sync, remote_sync) = tokio::try_join!(
                    observe::restricted_peer_sync_of(client, &local, &remote),
                    observe::restricted_peer_sync_of(client, &remote, &local),
                )?;
                planned
                    .plan
                    .steps
                    .splice(0..0, local_sync.into_iter().chain(remote_sync));
            }
            if request.skip_unavailable {
                let current =
                    observe::current_skip_unavailable(client, es, &local, &planned.alias).await;
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
        local: cluster_id(client, &session.namespace, &args.local),
        remote: cluster_id(client, remote_namespace, args.remote_name()),
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
    }

    let touched: Vec<_> = planned
        .plan
        .steps
        .iter()
        .map(|s| s.cluster.clone())
        .collect();
    result.connected =
        workflow::wait_until_connected(client, es, flags, &result.local, &planned.alias, &touched)
            .await
            .map_err(|err| {
                workflow::applied_but_pending(
                    err,
                    &planned.plan,
                    &format!("the connection of alias {:?}", planned.alias),
                )
            })?;
    // Said once the waits succeeded.
    if !planned.plan.is_empty() && flags.dry_run == DryRun::None {
        output::info(&format!(
            "Linked {} to {} as {:?} ({} security model).",
            result.local, result.remote, planned.alias, planned.security
        ));
    }
    Outcome::document(result)
}

/// `unlink LOCAL ALIAS` of a link within the session's context.
pub async fn unlink(session: &Session, args: &UnlinkRequest) -> anyhow::Result<Outcome> {
    let flags = &args.mutation;
    let wait_limit = workflow::parse_wait_timeout(&flags.timeout)?;
    let client = &session.client;
    let es = &session.es;
    let request = plan::UnlinkRequest {
        alias: args.alias.clone(),
        disable_server: args.disable_server,
    };
    let applied = workflow::plan_and_apply(&[client], es, flags, || {
        let (request, namespace) = (&request, &session.namespace);
        async move {
            let local = observe::read_es(client, namespace, &args.local).await?;
            let (remote, others) =
                observe::same_operator_remote_and_others(client, &local, &args.alias).await?;
            let mut planned =
                plan::plan_same_operator_unlink(&local, remote.as_ref(), &others, request)
                    .map_err(UserError::from)?;
            let current =
                observe::current_skip_unavailable(client, es, &local, &request.alias).await;
            if let Some(step) = plan::clear_skip_unavailable_step(&local, &request.alias, current) {
                planned.plan.steps.insert(0, step);
            }
            Ok(planned)
        }
    })
    .await?;
    let (planned, writes) = (applied.planned, applied.writes);
    let local_id = cluster_id(client, &session.namespace, &args.local);
    if flags.dry_run == DryRun::None {
        if flags.wait {
            let deadline = Instant::now() + wait_limit;
            let mut progress = Progress::new();
            for step in &planned.plan.steps {
                workflow::wait_for_rollout(client, &step.cluster, deadline, &mut progress)
                    .await
                    .map_err(|err| {
                        workflow::applied_but_pending(
                            err,
                            &planned.plan,
                            &format!("the rolling restart of {}", step.cluster),
                        )
                    })?;
            }
            // "Unlinked" only once ECK has really dropped the alias: it keeps it while
            // Elasticsearch still has its settings (a refused removal loops).
            crate::apply::wait::wait_until_alias_dropped(
                client,
                es,
                &local_id,
                &args.alias,
                deadline,
                &mut progress,
            )
            .await
            .map_err(|err| {
                workflow::applied_but_pending(
                    err,
                    &planned.plan,
                    &format!("ECK's removal of {:?}", args.alias),
                )
            })?;
            progress.finish();
        }
        output::info(&format!(
            "Unlinked remote cluster {:?} from {local_id}.",
            args.alias
        ));
    }
    Outcome::document(UnlinkResult {
        api_version: API_VERSION,
        kind: "UnlinkResult",
        local: local_id,
        alias: args.alias.clone(),
        dry_run: flags.dry_run,
        plan: planned.plan.clone(),
        still_using_remote_server: planned.still_using.clone(),
        writes,
    })
}
