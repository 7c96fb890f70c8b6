//! `link LOCAL REMOTE` (or `--external ALIAS`): connect two Elasticsearch clusters.

use std::sync::Arc;

use crate::cli::{GlobalFlags, LinkArgs};
use crate::error::ExitCode;
use crate::k8s::kubeconfig::LoadedKubeconfig;
use crate::workflow;

pub async fn run(
    global: &GlobalFlags,
    args: &LinkArgs,
    kubeconfig: Arc<LoadedKubeconfig>,
) -> anyhow::Result<ExitCode> {
    let outcome = workflow::link(&global.scope(kubeconfig), &args.request()).await?;
    super::render(&outcome, args.mutation.output)?;
    Ok(ExitCode::Ok)
}
