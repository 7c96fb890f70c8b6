//! `export REMOTE --for ALIAS`: prepare an ECK cluster as the remote of a cluster outside Kubernetes.

use std::sync::Arc;

use crate::cli::{ExportArgs, GlobalFlags};
use crate::error::ExitCode;
use crate::k8s::kubeconfig::LoadedKubeconfig;
use crate::workflow;

pub async fn run(
    global: &GlobalFlags,
    args: &ExportArgs,
    kubeconfig: Arc<LoadedKubeconfig>,
) -> anyhow::Result<ExitCode> {
    let outcome = workflow::export::export(&global.scope(kubeconfig), &args.request()).await?;
    super::render(&outcome, args.mutation.output)?;
    Ok(ExitCode::Ok)
}
