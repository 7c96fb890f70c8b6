//! `kubectl remote-cluster`: links ECK-managed Elasticsearch clusters across kubeconfig contexts.

// Layers, top to bottom (docs/design.md; tests/layers.rs keeps imports pointing down):
// commands, complete > cli > workflow > observe, apply > es > k8s > error, interrupt > check >
// describe > plan > output, versions, input.
pub mod apply;
pub mod check;
pub mod cli;
pub mod commands;
pub mod complete;
pub mod describe;
pub mod error;
pub mod es;
pub mod input;
pub mod interrupt;
pub mod k8s;
pub mod observe;
pub mod output;
pub mod plan;
pub mod versions;
pub mod workflow;

use std::sync::Arc;

use cli::{Cli, Command};
use error::ExitCode;

/// Runs a parsed command line and returns the exit code to use.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        // No runtime and no kubeconfig: `version` must answer instantly and anywhere.
        Command::Version(args) => {
            commands::version::run(args)?;
            Ok(ExitCode::Ok)
        }
        Command::List(args) => {
            let kubeconfig = load_kubeconfig(&cli)?;
            runtime()?.block_on(commands::list::run(&cli.global, args, kubeconfig))
        }
        Command::Link(args) => {
            let kubeconfig = load_kubeconfig(&cli)?;
            runtime()?.block_on(commands::link::run(&cli.global, args, kubeconfig))
        }
        Command::Check(args) => {
            let kubeconfig = load_kubeconfig(&cli)?;
            runtime()?.block_on(commands::check::run(&cli.global, args, kubeconfig))
        }
        Command::Describe(args) => {
            let kubeconfig = load_kubeconfig(&cli)?;
            runtime()?.block_on(commands::describe::run(&cli.global, args, kubeconfig))
        }
        Command::Export(args) => {
            let kubeconfig = load_kubeconfig(&cli)?;
            runtime()?.block_on(commands::export::run(&cli.global, args, kubeconfig))
        }
        Command::Unexport(args) => {
            let kubeconfig = load_kubeconfig(&cli)?;
            runtime()?.block_on(commands::unexport::run(&cli.global, args, kubeconfig))
        }
        Command::Trust(args) => {
            let kubeconfig = load_kubeconfig(&cli)?;
            runtime()?.block_on(commands::trust::run(&cli.global, args, kubeconfig))
        }
        Command::Unlink(args) => {
            let kubeconfig = load_kubeconfig(&cli)?;
            runtime()?.block_on(commands::unlink::run(&cli.global, args, kubeconfig))
        }
        Command::Completion(args) => {
            commands::completion::run(args)?;
            Ok(ExitCode::Ok)
        }
        Command::Man(args) => {
            commands::man::man(args)?;
            Ok(ExitCode::Ok)
        }
    }
}

fn load_kubeconfig(cli: &Cli) -> anyhow::Result<Arc<k8s::kubeconfig::LoadedKubeconfig>> {
    Ok(Arc::new(k8s::kubeconfig::load(
        cli.global.kubeconfig.as_deref(),
    )?))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
