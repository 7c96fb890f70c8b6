use clap::Parser;

use remote_cluster::cli::Cli;
use remote_cluster::error::{self, ExitCode};
use remote_cluster::output;

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // --help and --version go to stdout with 0; usage errors to stderr with 2, as one
            // line like every other error.
            if !err.use_stderr() {
                let _ = err.print();
                return std::process::ExitCode::from(ExitCode::Ok as u8);
            }
            output::error(&one_line_usage_error(&err.render().to_string()));
            return std::process::ExitCode::from(ExitCode::Usage as u8);
        }
    };
    init_diagnostics(cli.global.verbosity);
    let verbosity = cli.global.verbosity;
    debug_invocation(&cli);
    let started = std::time::Instant::now();
    let code = match remote_cluster::run(cli) {
        Ok(code) => {
            if let Some(reason) = remote_cluster::interrupt::reason() {
                output::warning(&format!(
                    "{reason} after its last change: the command completed, every change is applied"
                ));
            }
            code
        }
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
    let code = remote_cluster::interrupt::exit_code().unwrap_or(code as u8);
    tracing::debug!(
        target: "remote_cluster",
        "exit code {} after {:?}",
        code,
        started.elapsed()
    );
    std::process::ExitCode::from(code)
}

/// clap's usage error in one line: its message, the details it lists (missing arguments,
/// possible values, a suggestion), and where to read more; the usage synopsis is left out.
fn one_line_usage_error(rendered: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for line in rendered.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            continue;
        }
        let line = line.strip_prefix("error: ").unwrap_or(line);
        let line = line.strip_prefix("tip: ").unwrap_or(line);
        let line = line.trim_start_matches('[').trim_end_matches(']');
        parts.push(line.to_string());
    }
    let mut text = parts.join("; ");
    text = text.replace(":; ", ": ");
    text.push_str("; see --help");
    text
}

/// What `-v=2` says first: the command and the global settings it runs with (names and paths
/// only; nothing here is secret).
fn debug_invocation(cli: &Cli) {
    let command = std::env::args().nth(1).unwrap_or_default();
    let global = &cli.global;
    let kubeconfig = match &global.kubeconfig {
        Some(path) => path.display().to_string(),
        None => std::env::var("KUBECONFIG").unwrap_or_else(|_| "~/.kube/config".into()),
    };
    tracing::debug!(
        target: "remote_cluster",
        "command {:?}: kubeconfig {kubeconfig}, contexts {:?}, namespace {:?}, request timeout {}",
        format!("{:?}", cli.command).split(['(', ' ']).next().unwrap_or(&command).to_lowercase(),
        global.contexts,
        global.namespace,
        global.request_timeout
    );
}

/// Diagnostics go to stderr only, each level adding to the one below (as `--help` says):
/// `-v` cause chains (printed by `main`, no tracing), `-v=2` the plugin's debug messages,
/// `-v=3` and up one line per Kubernetes API request as it completes. Request lines come from
/// kube's HTTP span alone (method, URL, status): kube's other modules log response
/// headers and bodies at trace level, so they stay off at every level, as do hyper and rustls.
fn init_diagnostics(verbosity: u8) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::fmt::format::FmtSpan;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    const KUBE_HTTP: &str = "kube_client::client::builder";
    let filter = match verbosity {
        0 | 1 => "off".to_string(),
        2 => "remote_cluster=debug".to_string(),
        _ => format!("remote_cluster=debug,{KUBE_HTTP}=debug"),
    };
    // kube's per-request events ("requesting", "stream closed") repeat what the span's closing
    // line says; its failures (error level) stay.
    let no_request_chatter = tracing_subscriber::filter::filter_fn(|meta| {
        !(meta.is_event() && meta.target() == KUBE_HTTP && *meta.level() > tracing::Level::INFO)
    });
    let layer = tracing_subscriber::fmt::layer()
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .with_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_filter(no_request_chatter);
    tracing_subscriber::registry().with(layer).init();
}
