//! `trust LOCAL REMOTE`: mutual transport trust across Kubernetes clusters.

use std::sync::Arc;

use crate::cli::{GlobalFlags, TrustArgs};
use crate::error::ExitCode;
use crate::k8s::kubeconfig::LoadedKubeconfig;
use crate::workflow;

pub async fn run(
    global: &GlobalFlags,
    args: &TrustArgs,
    kubeconfig: Arc<LoadedKubeconfig>,
) -> anyhow::Result<ExitCode> {
    let outcome = workflow::trust::trust(&global.scope(kubeconfig), &args.request()).await?;
    super::render(&outcome, args.mutation.output)?;
    Ok(ExitCode::Ok)
}
