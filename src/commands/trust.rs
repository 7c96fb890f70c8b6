//! `kubectl remote-cluster trust A B`: the transport CA exchange on its own, across Kubernetes
//! clusters; idempotent, `--refresh` after a CA rotation.

use std::sync::Arc;

use crate::apply::DryRun;
use crate::cli::{GlobalFlags, TrustArgs};
use crate::commands::cross;
use crate::commands::list::API_VERSION;
use crate::commands::mutate;
use crate::error::{ExitCode, UserError};
use crate::k8s::kubeconfig::LoadedKubeconfig;
use crate::output;
use crate::plan::{self, Planned};

/// A trust plan, for the shared plan-and-apply loop.
struct TrustPlan(plan::Plan);

impl Planned for TrustPlan {
    fn plan(&self) -> &plan::Plan {
        &self.0
    }
}

pub async fn run(
    global: &GlobalFlags,
    args: &TrustArgs,
    kubeconfig: Arc<LoadedKubeconfig>,
) -> anyhow::Result<ExitCode> {
    let flags = &args.mutation;
    let target = mutate::target(global, kubeconfig.clone(), "trust").await?;
    let remote_namespace = args
        .remote_namespace
        .clone()
        .unwrap_or_else(|| target.namespace.clone());
    let remote = mutate::remote_client(
        global,
        args.remote_context.as_deref(),
        args.remote_kubeconfig.as_deref(),
        &kubeconfig,
        &target,
    )
    .await?;
    let local_client = &target.client;
    let Some(remote_client) = remote.filter(|r| !mutate::same_server(local_client, r)) else {
        // Both in one Kubernetes cluster: still check they exist, then say why nothing is due.
        let remote_client = local_client;
        mutate::read_es(local_client, &target.namespace, &args.local).await?;
        mutate::read_es(remote_client, &remote_namespace, &args.remote).await?;
        output::info(
            "Both clusters are in the same Kubernetes cluster: their ECK operator keeps each one's CA in the other's trust (and refreshes it after rotations); nothing to do.",
        );
        return Ok(ExitCode::Ok);
    };
    let applied = mutate::plan_and_apply(&[local_client, &remote_client], flags, || {
        let (remote_client, remote_namespace) = (&remote_client, &remote_namespace);
        let local_namespace = &target.namespace;
        async move {
            let (local, remote) = tokio::try_join!(
                mutate::read_es(local_client, local_namespace, &args.local),
                mutate::read_es(remote_client, remote_namespace, &args.remote),
            )?;
            let (a, b) = tokio::try_join!(
                cross::trust_side(local_client, local),
                cross::trust_side(remote_client, remote),
            )?;
            let mut plan =
                plan::plan_trust(&a, &b, args.one_way, args.refresh).map_err(UserError::from)?;
            let (a_sync, b_sync) = tokio::try_join!(
                cross::restricted_peer_sync(local_client, &a, &b.es.id),
                cross::restricted_peer_sync(remote_client, &b, &a.es.id),
            )?;
            plan.steps.splice(0..0, a_sync.into_iter().chain(b_sync));
            Ok(TrustPlan(plan))
        }
    })
    .await?;
    let plan = applied.planned.0;
    let direction = if args.one_way {
        "trusts"
    } else {
        "and the remote trust each other"
    };
    if plan.is_empty() {
        for warning in &plan.warnings {
            output::warning(warning);
        }
        output::info(&format!(
            "{}/{} {direction}: nothing to change.",
            target.namespace, args.local
        ));
    } else if flags.dry_run == DryRun::None {
        output::info(&format!(
            "{}/{} {direction} ({} change{}).",
            target.namespace,
            args.local,
            plan.steps.len(),
            if plan.steps.len() == 1 { "" } else { "s" }
        ));
    }
    if let Some(format) = flags.output {
        output::print_document(
            &serde_json::json!({
                "apiVersion": API_VERSION,
                "kind": "TrustResult",
                "dryRun": flags.dry_run,
                "plan": plan,
                "writes": applied.writes,
            }),
            format,
        )?;
    }
    Ok(ExitCode::Ok)
}
