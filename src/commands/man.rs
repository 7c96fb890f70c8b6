//! `man`: the manual pages, rendered from the same CLI definition as the help.

use std::io::Write;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{BIN_NAME, Cli, ManArgs};

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
