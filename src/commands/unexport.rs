//! `unexport REMOTE --for ALIAS`: undo an `export`.

use std::sync::Arc;

use crate::cli::{GlobalFlags, UnexportArgs};
use crate::error::ExitCode;
use crate::k8s::kubeconfig::LoadedKubeconfig;
use crate::workflow;

pub async fn run(
    global: &GlobalFlags,
    args: &UnexportArgs,
    kubeconfig: Arc<LoadedKubeconfig>,
) -> anyhow::Result<ExitCode> {
    let outcome = workflow::export::unexport(&global.scope(kubeconfig), &args.request()).await?;
    super::render(&outcome, args.mutation.output)?;
    Ok(ExitCode::Ok)
}
