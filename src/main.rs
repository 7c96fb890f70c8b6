use clap::Parser;

use remote_cluster::cli::Cli;
use remote_cluster::error::{self, ExitCode};
use remote_cluster::output;

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // --help and --version go to stdout with 0; usage errors to stderr with 2.
            let _ = err.print();
            let code = if err.use_stderr() {
                ExitCode::Usage
            } else {
                ExitCode::Ok
            };
            return std::process::ExitCode::from(code as u8);
        }
    };
    init_diagnostics(cli.global.verbosity);
    let verbosity = cli.global.verbosity;
    let code = match remote_cluster::run(cli) {
        Ok(code) => code,
        Err(err) if error::is_broken_pipe(&err) => ExitCode::Ok,
        Err(err) => {
            output::error(&err.to_string());
            if verbosity > 0 {
                for cause in err.chain().skip(1) {
                    output::info(&format!("  caused by: {cause}"));
                }
            }
            error::exit_code_for(&err)
        }
    };
    std::process::ExitCode::from(code as u8)
}

/// Diagnostics go to stderr only: `-v` shows cause chains, `-v=2` debug, `-v=4` request traces.
fn init_diagnostics(verbosity: u8) {
    let filter = match verbosity {
        0 | 1 => "off",
        2 | 3 => "remote_cluster=debug,kube=info",
        _ => "remote_cluster=trace,kube=debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .init();
}
