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

/// The executable as installed: kubectl finds `kubectl-remote_cluster` for `kubectl remote-cluster`.
pub const BIN_NAME: &str = "kubectl-remote_cluster";

const COMPLETION_EXAMPLES: &str = "\
Examples:
  # kubectl remote-cluster <TAB> (kubectl 1.26+): put the helper next to the plugin, once
  kubectl remote-cluster completion --install-kubectl-helper

  # The standalone executable kubectl-remote_cluster, in bash, zsh or fish
  source <(kubectl remote-cluster completion bash)
  kubectl remote-cluster completion zsh > \"${fpath[1]}/_kubectl-remote_cluster\"
  kubectl remote-cluster completion fish > ~/.config/fish/completions/kubectl-remote_cluster.fish";

const ROOT_EXAMPLES: &str = "\
Examples:
  # Every ECK-managed Elasticsearch in every context of the kubeconfig
  kubectl remote-cluster list --all-contexts

Exit codes: 0 success, 1 failure (also: part of a listing failed), 2 bad usage or input
(nothing written), 3 describe found a link that is not connected.";

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

    /// Connect LOCAL to REMOTE as a remote cluster (same Kubernetes cluster: ECK does the rest)
    #[command(after_help = LINK_EXAMPLES)]
    Link(Box<LinkArgs>),

    /// Make two Elasticsearch clusters in different Kubernetes clusters trust each other's transport CA
    #[command(after_help = TRUST_EXAMPLES)]
    Trust(TrustArgs),

    /// Prepare an Elasticsearch as the remote of a cluster outside Kubernetes and write what that side needs
    #[command(after_help = EXPORT_EXAMPLES)]
    Export(ExportArgs),

    /// Invalidate an exported API key and remove the exposure nothing else uses
    Unexport(UnexportArgs),

    /// Remove a remote cluster link made by this plugin
    #[command(after_help = UNLINK_EXAMPLES)]
    Unlink(UnlinkArgs),

    /// Show one cluster's remote cluster links, both ways, and whether they are connected
    #[command(after_help = DESCRIBE_EXAMPLES)]
    Describe(DescribeArgs),

    /// Print the plugin's version
    #[command(after_help = VERSION_EXAMPLES)]
    Version(VersionArgs),

    /// Print a shell completion script, or install kubectl's completion helper for this plugin
    #[command(after_help = COMPLETION_EXAMPLES)]
    Completion(CompletionArgs),

    /// Print the manual page (roff), or write one page per command into a directory
    #[command(hide = true)]
    Man(ManArgs),
}

const LINK_EXAMPLES: &str = "\
Examples:
  # Let catalog search products (API keys when both run 8.14+); waits until connected
  kubectl remote-cluster link catalog products -n search

  # Only some indices, under another alias, remote in another namespace
  kubectl remote-cluster link catalog products -n search --remote-namespace shop \\
      --alias shop --search-indices 'orders-*' --replication-indices 'leader-*'

  # REMOTE in another Kubernetes cluster (API keys; REMOTE exposed through a LoadBalancer)
  kubectl remote-cluster link catalog products -n search --context east \\
      --remote-context west --remote-namespace shop

  # REMOTE outside Kubernetes (Elastic Cloud Hosted, ECE, self-managed), with a key made there
  kubectl remote-cluster link catalog -n search --external cloud-logs \\
      --proxy-address my-deployment.es.example.com:9443 --ca-file remote-ca.pem \\
      --api-key-file cross-cluster-key.txt

  # Show the plan only; or have the API server validate it without saving
  kubectl remote-cluster link catalog products --dry-run=client
  kubectl remote-cluster link catalog products --dry-run=server";

const TRUST_EXAMPLES: &str = "\
Examples:
  # catalog (context east) and products (context west) trust each other's transport CA
  kubectl remote-cluster trust catalog products -n search --context east \\
      --remote-context west --remote-namespace shop

  # Only catalog trusts products; replace copies made stale by a CA rotation
  kubectl remote-cluster trust catalog products -n search --context east \\
      --remote-context west --remote-namespace shop --one-way --refresh

Clusters of the same ECK operator need no trust command: ECK keeps their CAs in sync.";

const EXPORT_EXAMPLES: &str = "\
Examples:
  # products becomes a remote of an Elastic Cloud Hosted, ECE or self-managed cluster
  kubectl remote-cluster export products -n search --for eck-products --search-indices 'logs-*'

  # Exposed another way (ingress, TLS passthrough): give the address the other side dials
  kubectl remote-cluster export products -n search --for eck-products \\
      --expose none --proxy-address rcs.example.com:443 --output-dir ./handover

The API key goes to a file readable only by you (never to the terminal unless --show-secrets);
INSTRUCTIONS.md in the same folder says what to enter on the other side.";

const UNLINK_EXAMPLES: &str = "\
Examples:
  kubectl remote-cluster unlink catalog products -n search

  # Also turn the remote's remote cluster server off if no other cluster uses it
  kubectl remote-cluster unlink catalog products -n search --disable-server

  # A link across Kubernetes clusters whose remote cannot be reached: clean this side
  kubectl remote-cluster unlink catalog products -n search --local-only";

/// Flags shared by the commands that change clusters.
#[derive(Debug, Args, Clone)]
pub struct MutationFlags {
    /// none: apply; client: print the plan only; server: send the writes with dryRun=All
    #[arg(
        long,
        value_enum,
        value_name = "MODE",
        default_value = "none",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "client"
    )]
    pub dry_run: DryRunMode,

    /// Apply without asking, even when Elasticsearch nodes restart
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Wait until ECK has rolled the change out and the link is connected (--wait=false returns
    /// after the writes and the waits a later step of the plan needs)
    #[arg(
        long,
        value_name = "BOOL",
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub wait: bool,

    /// How long the plan's own waits may take, and again how long --wait waits: a number with a
    /// unit (90s, 10m)
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub timeout: String,

    /// Print the plan (or, after applying, the result) as a document on stdout
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<DocumentFormat>,
}

#[derive(Debug, Args)]
pub struct LinkArgs {
    /// The Elasticsearch that sends searches and follows indices (the local cluster)
    pub local: String,

    /// The Elasticsearch that is searched or replicated from (the remote cluster)
    #[arg(required_unless_present = "external")]
    pub remote: Option<String>,

    /// The remote is outside every kubeconfig context (Elastic Cloud Hosted, ECE, self-managed):
    /// the alias LOCAL uses for it; needs --proxy-address, --ca-file and --api-key-file
    #[arg(
        long,
        value_name = "ALIAS",
        conflicts_with_all = ["remote", "remote_context", "alias"],
        requires = "proxy_address"
    )]
    pub external: Option<String>,

    /// With --external: PEM file of the CA of the remote's remote cluster server
    #[arg(
        long,
        value_name = "FILE",
        requires = "external",
        conflicts_with = "public_ca"
    )]
    pub ca_file: Option<std::path::PathBuf>,

    /// With --external: the remote's certificate comes from a publicly trusted CA (as on Elastic
    /// Cloud Hosted): no CA file to mount, only client SSL switched on
    #[arg(long, requires = "external")]
    pub public_ca: bool,

    /// With --external: file holding the encoded cross-cluster API key made on the remote
    #[arg(
        long,
        value_name = "FILE",
        requires = "external",
        conflicts_with = "remote_url"
    )]
    pub api_key_file: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub remote_api: RemoteApiFlags,

    #[command(flatten)]
    pub restriction: TrustRestrictionFlags,

    /// Namespace of REMOTE (default: the namespace of LOCAL)
    #[arg(long, value_name = "NAMESPACE")]
    pub remote_namespace: Option<String>,

    /// Kubeconfig context of REMOTE when it runs in another Kubernetes cluster
    #[arg(long, value_name = "NAME")]
    pub remote_context: Option<String>,

    /// Kubeconfig file holding --remote-context (default: the same kubeconfig)
    #[arg(long, value_name = "FILE", requires = "remote_context")]
    pub remote_kubeconfig: Option<std::path::PathBuf>,

    /// Across Kubernetes clusters: how REMOTE's remote cluster server is exposed
    #[arg(long, value_enum, value_name = "HOW", default_value = "loadbalancer")]
    pub expose: ExposeMode,

    /// Across Kubernetes clusters: the HOST:PORT LOCAL connects to, when you expose REMOTE yourself
    #[arg(long, value_name = "HOST:PORT")]
    pub proxy_address: Option<String>,

    /// Across Kubernetes clusters: the TLS server name LOCAL checks (default: REMOTE-es-remote-cluster.NAMESPACE.svc)
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,

    /// Name LOCAL uses for REMOTE (default: REMOTE's name)
    #[arg(long, value_name = "NAME")]
    pub alias: Option<String>,

    /// Security model (default: api-key when both sides run 8.14 or later, else certificate)
    #[arg(long, value_enum, value_name = "MODEL")]
    pub security: Option<Security>,

    /// Index patterns LOCAL may search on REMOTE (API-key model; default: all)
    #[arg(long, value_name = "PATTERN", value_delimiter = ',')]
    pub search_indices: Vec<String>,

    /// Index patterns LOCAL may replicate from REMOTE (API-key model)
    #[arg(long, value_name = "PATTERN", value_delimiter = ',')]
    pub replication_indices: Vec<String>,

    /// Searches across clusters skip REMOTE when it cannot be reached instead of failing
    #[arg(long)]
    pub skip_unavailable: bool,

    #[command(flatten)]
    pub mutation: MutationFlags,
}

/// A certificate-model peer on Elastic Cloud Hosted or ECE: its transport CA signs every
/// deployment of its region or installation, so it is trusted only for the nodes named here.
#[derive(Debug, Args, Clone, Default)]
pub struct TrustRestrictionFlags {
    /// With --security certificate, for a peer on Elastic Cloud Hosted or ECE: the trust.yml
    /// downloaded there after adding this cluster as a trusted environment
    #[arg(long, value_name = "FILE")]
    pub trust_file: Option<std::path::PathBuf>,

    /// With --security certificate: node-name pattern of the other side to accept, such as
    /// "*.node.<deployment-id>.cluster.<organization-id>.account" (repeatable)
    #[arg(long, value_name = "PATTERN", value_delimiter = ',')]
    pub trust_subject: Vec<String>,
}

impl TrustRestrictionFlags {
    pub fn given(&self) -> bool {
        self.trust_file.is_some() || !self.trust_subject.is_empty()
    }
}

/// How to reach the HTTPS API of a cluster outside Kubernetes.
#[derive(Debug, Args, Clone, Default)]
pub struct RemoteApiFlags {
    /// The remote's HTTPS URL, for the plugin to create (and later invalidate) the API key there
    #[arg(long, value_name = "URL")]
    pub remote_url: Option<String>,

    /// User on the remote with the manage_security privilege
    #[arg(
        long,
        value_name = "USER",
        default_value = "elastic",
        requires = "remote_url"
    )]
    pub remote_user: String,

    /// File holding that user's password
    #[arg(long, value_name = "FILE", requires = "remote_url")]
    pub remote_password_file: Option<std::path::PathBuf>,

    /// PEM file of the CA of the remote's HTTPS certificate (default: the public web PKI)
    #[arg(long, value_name = "FILE", requires = "remote_url")]
    pub remote_ca_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct TrustArgs {
    /// The Elasticsearch in the current context (or --context)
    pub local: String,

    /// The Elasticsearch in --remote-context
    pub remote: String,

    /// Namespace of REMOTE (default: the namespace of LOCAL)
    #[arg(long, value_name = "NAMESPACE")]
    pub remote_namespace: Option<String>,

    /// Kubeconfig context of REMOTE
    #[arg(long, value_name = "NAME")]
    pub remote_context: Option<String>,

    /// Kubeconfig file holding --remote-context (default: the same kubeconfig)
    #[arg(long, value_name = "FILE", requires = "remote_context")]
    pub remote_kubeconfig: Option<std::path::PathBuf>,

    /// Only LOCAL trusts REMOTE's CA
    #[arg(long)]
    pub one_way: bool,

    /// Replace copies of a CA that changed since (after a CA rotation)
    #[arg(long)]
    pub refresh: bool,

    #[command(flatten)]
    pub mutation: MutationFlags,
}

impl LinkArgs {
    /// REMOTE's name; clap requires it unless `--external` is given.
    pub fn remote_name(&self) -> &str {
        self.remote.as_deref().unwrap_or_default()
    }
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The Elasticsearch that becomes the remote cluster
    pub remote: String,

    /// The alias the other side will use for it
    #[arg(long = "for", value_name = "ALIAS")]
    pub alias: String,

    /// Index patterns the other side may search (default: all)
    #[arg(long, value_name = "PATTERN", value_delimiter = ',')]
    pub search_indices: Vec<String>,

    /// Index patterns the other side may replicate
    #[arg(long, value_name = "PATTERN", value_delimiter = ',')]
    pub replication_indices: Vec<String>,

    /// How the remote cluster server (or, with the certificate model, the transport) is exposed
    #[arg(long, value_enum, value_name = "HOW", default_value = "loadbalancer")]
    pub expose: ExposeMode,

    /// The HOST:PORT the other side dials, when you expose it yourself
    #[arg(long, value_name = "HOST:PORT")]
    pub proxy_address: Option<String>,

    /// Security model: api-key (a key for the other side) or certificate (mutual transport trust)
    #[arg(long, value_enum, value_name = "MODEL", default_value = "api-key")]
    pub security: Security,

    /// With --security certificate: PEM file of the other side's transport CA, to trust here
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub restriction: TrustRestrictionFlags,

    /// Where to write the CA, the API key (mode 0600) and the instructions
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<std::path::PathBuf>,

    /// Also print the API key on stdout
    #[arg(long)]
    pub show_secrets: bool,

    /// A self-managed local cluster reachable at this HTTPS URL: set its cluster settings for
    /// the alias directly (its keystore and CA trust need node access and stay in the instructions)
    #[arg(long, value_name = "URL")]
    pub apply_to: Option<String>,

    /// With --apply-to: a user with the manage privilege there
    #[arg(
        long,
        value_name = "USER",
        default_value = "elastic",
        requires = "apply_to"
    )]
    pub apply_user: String,

    /// With --apply-to: file holding that user's password
    #[arg(long, value_name = "FILE", requires = "apply_to")]
    pub apply_password_file: Option<std::path::PathBuf>,

    /// With --apply-to: PEM file of the CA of its HTTPS certificate (default: the public web PKI)
    #[arg(long, value_name = "FILE", requires = "apply_to")]
    pub apply_ca_file: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub mutation: MutationFlags,
}

#[derive(Debug, Args)]
pub struct UnexportArgs {
    /// The Elasticsearch that was exported
    pub remote: String,

    /// The alias it was exported for
    #[arg(long = "for", value_name = "ALIAS")]
    pub alias: String,

    #[command(flatten)]
    pub mutation: MutationFlags,
}

#[derive(Debug, Args)]
pub struct UnlinkArgs {
    /// The Elasticsearch whose link is removed
    pub local: String,

    /// The alias of the remote cluster to remove
    pub alias: String,

    /// Also turn off the remote's remote cluster server when no other cluster uses it
    #[arg(long)]
    pub disable_server: bool,

    /// Across Kubernetes clusters: clean this side only (the remote is unreachable) and print
    /// what is left on the remote
    #[arg(long)]
    pub local_only: bool,

    /// Across Kubernetes clusters: kubeconfig file holding the remote's context (default: the same)
    #[arg(long, value_name = "FILE")]
    pub remote_kubeconfig: Option<std::path::PathBuf>,

    /// A link to a cluster outside Kubernetes whose key the plugin created: reach it to invalidate the key
    #[command(flatten)]
    pub remote_api: RemoteApiFlags,

    #[command(flatten)]
    pub mutation: MutationFlags,
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

const DESCRIBE_EXAMPLES: &str = "\
Examples:
  kubectl remote-cluster describe catalog -n search
  kubectl remote-cluster describe catalog -n search -o json

  # Links to it made from other Kubernetes clusters: look in every context
  kubectl remote-cluster describe catalog -n search --context east --all-contexts

Exit code 3 means a configured link is not connected; the PROBLEM column says why.";

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// The Elasticsearch to describe (in the first --context)
    pub name: String,

    /// Also look for links to it in every other context (further --context values are looked
    /// in as well)
    #[arg(long)]
    pub all_contexts: bool,

    /// Output format
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<DocumentFormat>,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Output format
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<DocumentFormat>,
}

/// `--dry-run` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DryRunMode {
    None,
    Client,
    Server,
}

impl From<DryRunMode> for crate::apply::DryRun {
    fn from(mode: DryRunMode) -> Self {
        match mode {
            DryRunMode::None => Self::None,
            DryRunMode::Client => Self::Client,
            DryRunMode::Server => Self::Server,
        }
    }
}

/// `--expose` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExposeMode {
    Loadbalancer,
    None,
}

impl From<ExposeMode> for crate::plan::Expose {
    fn from(mode: ExposeMode) -> Self {
        match mode {
            ExposeMode::Loadbalancer => Self::Loadbalancer,
            ExposeMode::None => Self::None,
        }
    }
}

/// `--security` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Security {
    ApiKey,
    Certificate,
}

impl From<Security> for crate::plan::SecurityModel {
    fn from(model: Security) -> Self {
        match model {
            Security::ApiKey => Self::ApiKey,
            Security::Certificate => Self::Certificate,
        }
    }
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

impl From<DocumentFormat> for crate::output::DocumentFormat {
    fn from(format: DocumentFormat) -> Self {
        match format {
            DocumentFormat::Json => Self::Json,
            DocumentFormat::Yaml => Self::Yaml,
        }
    }
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// Shell to print the completion script for (it completes `kubectl-remote_cluster`)
    #[arg(value_enum, required_unless_present = "install_kubectl_helper")]
    pub shell: Option<clap_complete::Shell>,

    /// Instead, copy `kubectl_complete-remote_cluster`, which kubectl runs to complete this plugin, into DIR (default: the directory of this plugin on PATH)
    #[arg(
        long,
        value_name = "DIR",
        num_args = 0..=1,
        require_equals = true,
        conflicts_with = "shell"
    )]
    pub install_kubectl_helper: Option<Option<PathBuf>>,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write kubectl-remote_cluster.1 and one page per command into DIR instead of printing
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
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
