//! Mutual transport trust between two ECK clusters (the CA exchange on its own), across Kubernetes
//! clusters; idempotent, `--refresh` after a CA rotation.

use crate::apply::DryRun;
use crate::error::UserError;
use crate::observe;
use crate::output::{self, API_VERSION};
use crate::plan::{self, Planned};
use crate::workflow::request::{Outcome, Scope, TrustRequest};
use crate::workflow::{self, Session};

struct TrustPlan(plan::Plan);

impl Planned for TrustPlan {
    fn plan(&self) -> &plan::Plan {
        &self.0
    }
}

/// `trust LOCAL REMOTE`.
pub async fn trust(scope: &Scope, args: &TrustRequest) -> anyhow::Result<Outcome> {
    let flags = &args.mutation;
    let target = Session::open(scope, "trust").await?;
    let remote_namespace = args
        .remote_namespace
        .clone()
        .unwrap_or_else(|| target.namespace.clone());
    let remote = workflow::remote_client(
        &target,
        args.remote_context.as_deref(),
        args.remote_kubeconfig.as_deref(),
    )
    .await?;
    let local_client = &target.client;
    let remote = match remote {
        Some(remote) if !workflow::same_cluster(local_client, &remote).await => Some(remote),
        _ => None,
    };
    let Some(remote_client) = remote else {
        // Both in one Kubernetes cluster: still check they exist, then say why nothing is due.
        let remote_client = local_client;
        observe::read_es(local_client, &target.namespace, &args.local).await?;
        observe::read_es(remote_client, &remote_namespace, &args.remote).await?;
        output::info(
            "Both clusters are in the same Kubernetes cluster: their ECK operator keeps each one's CA in the other's trust (and refreshes it after rotations); nothing to do.",
        );
        return Ok(Outcome::nothing());
    };
    let applied =
        workflow::plan_and_apply(&[local_client, &remote_client], &target.es, flags, || {
            let (remote_client, remote_namespace) = (&remote_client, &remote_namespace);
            let local_namespace = &target.namespace;
            async move {
                let (local, remote) = tokio::try_join!(
                    observe::read_es(local_client, local_namespace, &args.local),
                    observe::read_es(remote_client, remote_namespace, &args.remote),
                )?;
                let (a, b) = tokio::try_join!(
                    observe::trust_side(local_client, local),
                    observe::trust_side(remote_client, remote),
                )?;
                let mut plan = plan::plan_trust(&a, &b, args.one_way, args.refresh)
                    .map_err(UserError::from)?;
                let (a_sync, b_sync) = tokio::try_join!(
                    observe::restricted_peer_sync(local_client, &a, &b.es),
                    observe::restricted_peer_sync(remote_client, &b, &a.es),
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
    Outcome::document(serde_json::json!({
        "apiVersion": API_VERSION,
        "kind": "TrustResult",
        "dryRun": flags.dry_run,
        "plan": plan,
        "writes": applied.writes,
    }))
}
