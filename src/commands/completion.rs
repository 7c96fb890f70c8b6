//! `completion`: shell scripts for the standalone executable, kubectl's plugin-completion helper,
//! and the `man` command that renders the manual page from the same CLI definition.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionArgs, ManArgs};

/// The executable as installed: kubectl finds `kubectl-remote_cluster` for `kubectl remote-cluster`.
pub const BIN_NAME: &str = "kubectl-remote_cluster";

/// The executable kubectl 1.26+ runs to complete `kubectl remote-cluster …`.
pub const HELPER_NAME: &str = "kubectl_complete-remote_cluster";

pub const EXAMPLES: &str = "\
Examples:
  # kubectl remote-cluster <TAB> (kubectl 1.26+): put the helper next to the plugin, once
  kubectl remote-cluster completion --install-kubectl-helper

  # The standalone executable kubectl-remote_cluster, in bash, zsh or fish
  source <(kubectl remote-cluster completion bash)
  kubectl remote-cluster completion zsh > \"${fpath[1]}/_kubectl-remote_cluster\"
  kubectl remote-cluster completion fish > ~/.config/fish/completions/kubectl-remote_cluster.fish";

/// The CLI definition as the standalone executable is typed.
fn standalone_command() -> clap::Command {
    Cli::command().name(BIN_NAME).bin_name(BIN_NAME)
}

pub fn run(args: &CompletionArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.install_kubectl_helper {
        let installed = install_helper(dir.as_deref())?;
        crate::output::info(&format!(
            "installed {}; kubectl remote-cluster <TAB> now completes (kubectl 1.26+, with kubectl's own completion enabled)",
            installed.display()
        ));
        return Ok(());
    }
    let Some(shell) = args.shell else {
        anyhow::bail!(
            "name a shell (bash, zsh, fish, powershell, elvish) or use --install-kubectl-helper"
        );
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut standalone_command(), BIN_NAME, &mut script);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&script)?;
    stdout.flush()?;
    Ok(())
}

/// Copies the helper executable shipped next to this plugin into `dir` (default: the directory
/// kubectl found the plugin in, which is on PATH, e.g. `~/.krew/bin`).
fn install_helper(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let real = std::fs::canonicalize(&exe).unwrap_or(exe);
    let suffix = std::env::consts::EXE_SUFFIX;
    let source = real
        .parent()
        .map(|d| d.join(format!("{HELPER_NAME}{suffix}")))
        .filter(|p| p.is_file())
        .with_context(|| {
            format!(
                "{HELPER_NAME}{suffix} is not next to {}; install it from the release archive onto your PATH",
                real.display()
            )
        })?;
    let target_dir = match dir {
        Some(dir) => dir.to_path_buf(),
        None => invoked_dir()
            .unwrap_or_else(|| source.parent().map(Path::to_path_buf).unwrap_or_default()),
    };
    let target = target_dir.join(format!("{HELPER_NAME}{suffix}"));
    if target == source {
        return Ok(target);
    }
    // Replace rather than overwrite in place: the old copy may be running.
    let staging = target_dir.join(format!(".{HELPER_NAME}{suffix}.tmp"));
    std::fs::copy(&source, &staging)
        .with_context(|| format!("cannot write {}", staging.display()))?;
    std::fs::rename(&staging, &target)
        .with_context(|| format!("cannot write {}", target.display()))?;
    Ok(target)
}

/// The directory of the path this process was started as (kubectl execs plugins by full path,
/// so under krew this is `~/.krew/bin`, not the versioned store the symlink points into).
fn invoked_dir() -> Option<PathBuf> {
    let argv0 = PathBuf::from(std::env::args_os().next()?);
    if argv0.components().count() < 2 {
        return None;
    }
    let dir = argv0.parent()?.to_path_buf();
    dir.is_dir().then_some(dir)
}

/// The manual page for `kubectl remote-cluster`, as roff.
pub fn man_page() -> anyhow::Result<Vec<u8>> {
    let mut page = Vec::new();
    man_for(man_command()).render(&mut page)?;
    Ok(page)
}

/// The pages leave out `man` itself (listed in `--help`, but a page of its own tells nothing).
fn man_command() -> clap::Command {
    Cli::command()
        .display_name(BIN_NAME)
        .disable_help_subcommand(true)
        .mut_subcommand("man", |man| man.hide(true))
}

fn man_for(cmd: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd).manual("kubectl plugins")
}

pub fn man(args: &ManArgs) -> anyhow::Result<()> {
    match &args.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(man_command(), dir)
                .with_context(|| format!("cannot write manual pages into {}", dir.display()))?;
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&man_page()?)?;
            stdout.flush()?;
        }
    }
    Ok(())
}
