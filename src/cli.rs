//! The command line: kubectl-style global flags and one subcommand per verb.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const LIST_EXAMPLES: &str = "\
Examples:
  # Elasticsearch clusters in the current context, all namespaces
  kubectl remote-cluster list

  # In two contexts at once, one namespace
  kubectl remote-cluster list --context east,west -n search

  # Everywhere the kubeconfig reaches, as one JSON document
  kubectl remote-cluster list --all-contexts -o json

  # Only references, for scripts
  kubectl remote-cluster list --all-contexts -o name";

const VERSION_EXAMPLES: &str = "\
Examples:
  kubectl remote-cluster version
  kubectl remote-cluster version -o json";

const ROOT_EXAMPLES: &str = "\
Examples:
  # Every ECK-managed Elasticsearch in every context of the kubeconfig
  kubectl remote-cluster list --all-contexts

Exit codes: 0 success, 1 failure (also: part of a listing failed), 2 bad usage or input.";

/// Links ECK-managed Elasticsearch clusters for cross-cluster search and replication.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl remote-cluster",
    bin_name = "kubectl remote-cluster",
    version,
    propagate_version = true,
    after_help = ROOT_EXAMPLES,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalFlags,

    #[command(subcommand)]
    pub command: Command,
}

/// Connection and diagnostics flags, named and behaving as kubectl's.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalFlags {
    /// Path to the kubeconfig file (overrides KUBECONFIG, which may list several files)
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use; several with a comma or by repeating the flag
    #[arg(
        long = "context",
        global = true,
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub contexts: Vec<String>,

    /// Namespace (default: the context's namespace, then "default")
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Time to wait for each request to the API server: 0 (no limit), or a number with a unit (30s, 2m)
    #[arg(long, global = true, value_name = "DURATION", default_value = "0")]
    pub request_timeout: String,

    /// Diagnostics on stderr: -v for cause chains, -v=2 and up for request traces
    #[arg(
        short = 'v',
        long = "v",
        global = true,
        value_name = "LEVEL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "1",
        default_value = "0"
    )]
    pub verbosity: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List ECK-managed Elasticsearch clusters across kubeconfig contexts
    #[command(after_help = LIST_EXAMPLES)]
    List(ListArgs),

    /// Print the plugin's version
    #[command(after_help = VERSION_EXAMPLES)]
    Version(VersionArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Look in every context of the kubeconfig
    #[arg(long, conflicts_with = "contexts")]
    pub all_contexts: bool,

    /// Look in all namespaces (the default for list unless -n is given)
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,

    /// Output format
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    /// Leave out the header line of table output
    #[arg(long)]
    pub no_headers: bool,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Output format
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<DocumentFormat>,
}

/// The `-o` values for commands that print a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Wide,
    Json,
    Yaml,
    Name,
}

/// The `-o` values for commands that print one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DocumentFormat {
    Json,
    Yaml,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn contexts_accept_commas_and_repetition() {
        let cli = Cli::try_parse_from([
            "kubectl-remote_cluster",
            "list",
            "--context",
            "a,b",
            "--context",
            "c",
        ])
        .unwrap();
        assert_eq!(cli.global.contexts, ["a", "b", "c"]);
    }

    #[test]
    fn verbosity_takes_kubectl_forms() {
        let bare = Cli::try_parse_from(["x", "-v", "list"]).unwrap();
        assert_eq!(bare.global.verbosity, 1);
        let level = Cli::try_parse_from(["x", "list", "-v=4"]).unwrap();
        assert_eq!(level.global.verbosity, 4);
        let long = Cli::try_parse_from(["x", "list", "--v=3"]).unwrap();
        assert_eq!(long.global.verbosity, 3);
    }

    #[test]
    fn all_contexts_conflicts_with_context() {
        let err = Cli::try_parse_from(["x", "list", "--all-contexts", "--context", "a"]);
        assert!(err.is_err());
    }
}
