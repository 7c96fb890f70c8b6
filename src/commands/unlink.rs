//! `unlink LOCAL ALIAS`: remove a link this plugin made.

use std::sync::Arc;

use crate::cli::{GlobalFlags, UnlinkArgs};
use crate::error::ExitCode;
use crate::k8s::kubeconfig::LoadedKubeconfig;
use crate::workflow;

pub async fn run(
    global: &GlobalFlags,
    args: &UnlinkArgs,
    kubeconfig: Arc<LoadedKubeconfig>,
) -> anyhow::Result<ExitCode> {
    let outcome = workflow::unlink(&global.scope(kubeconfig), &args.request()).await?;
    super::render(&outcome, args.mutation.output)?;
    Ok(ExitCode::Ok)
}
