//! `completion`: shell scripts for the standalone executable, kubectl's plugin-completion helper,
//! and the `man` command that renders the manual page from the same CLI definition.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{BIN_NAME, Cli, CompletionArgs};

/// The executable kubectl 1.26+ runs to complete `kubectl remote-cluster …`.
pub const HELPER_NAME: &str = "kubectl_complete-remote_cluster";

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
