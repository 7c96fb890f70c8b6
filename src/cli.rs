//! The command line: kubectl-style global flags and one subcommand per verb.

use std::path::PathBuf;

use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::input;
use crate::k8s::kubeconfig::LoadedKubeconfig;
use crate::workflow::request::{
    ExportRequest, LinkRequest, MutationOptions, RemoteApi, Scope, TrustRequest, TrustRestriction,
    UnexportRequest, UnlinkRequest,
};

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

const ROOT_MORE: &str = "\
Run `kubectl remote-cluster --help` for examples and exit codes, and
`kubectl remote-cluster <command> --help` for the details of each flag.";

/// Shown under `-h` of a subcommand instead of its examples.
const MORE: &str = "Run with --help for examples and the details of each flag.";

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
    after_help = ROOT_MORE,
    after_long_help = ROOT_EXAMPLES,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalFlags,

    #[command(subcommand)]
    pub command: Command,
}

/// Connection and diagnostics flags, named and behaving as kubectl's; every command takes them,
/// and its help lists them after its own flags, under "Global options".
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Global options")]
pub struct GlobalFlags {
    /// Path to the kubeconfig file
    ///
    /// Overrides KUBECONFIG, which may list several files (merged as kubectl merges them);
    /// without either, ~/.kube/config.
    #[arg(long, global = true, value_name = "FILE", value_parser = non_empty_path)]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use (default: the current context)
    ///
    /// list, describe and check take several, with a comma or by repeating the flag; the
    /// commands that change clusters take one.
    #[arg(
        long = "context",
        global = true,
        value_name = "NAME",
        value_delimiter = ',',
        value_parser = input::context
    )]
    pub contexts: Vec<String>,

    /// Namespace (default: the context's namespace, then "default")
    ///
    /// list looks in all namespaces unless -n is given.
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE", value_parser = input::namespace)]
    pub namespace: Option<String>,

    /// Time to wait for each request to the API server (0: no limit)
    ///
    /// 0 (no limit), a whole number of seconds, or a duration as kubectl takes it: 30s, 2m,
    /// 1h30m, 1.5h; 24h at most.
    #[arg(long, global = true, value_name = "DURATION", default_value = "0", value_parser = request_timeout)]
    pub request_timeout: String,

    /// Diagnostics on stderr: -v error causes, -v=2 debug, -v=3 and up API requests
    ///
    /// Each level adds to the one below, all on stderr (stdout stays the same):
    ///   -v, -v=1  on failure, the chain of causes under the error line
    ///   -v=2      the plugin's debug messages: the command and its settings, connections to
    ///             Elasticsearch that ended, the exit code
    ///   -v=3      and up: one line per Kubernetes API request when it completes: method, URL
    ///             and status; never headers (no credentials) nor bodies (no Secret data)
    #[arg(
        short = 'v',
        long = "v",
        global = true,
        value_name = "LEVEL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "1",
        default_value = "0",
        verbatim_doc_comment
    )]
    pub verbosity: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List ECK-managed Elasticsearch clusters across kubeconfig contexts
    #[command(after_help = MORE, after_long_help = LIST_EXAMPLES)]
    List(ListArgs),

    /// Connect LOCAL to REMOTE as a remote cluster (same Kubernetes cluster: ECK does the rest)
    #[command(after_help = MORE, after_long_help = LINK_EXAMPLES)]
    Link(Box<LinkArgs>),

    /// Make two Elasticsearch clusters in different Kubernetes clusters trust each other's transport CA
    #[command(
        after_help = MORE,
        after_long_help = TRUST_EXAMPLES,
        mut_arg("wait", |arg| arg.help(WAIT_NOTHING).long_help(WAIT_NOTHING_LONG)),
        mut_arg("timeout", |arg| arg.help(TIMEOUT_PLAN).long_help(TIMEOUT_PLAN_LONG))
    )]
    Trust(TrustArgs),

    /// Prepare an Elasticsearch as the remote of a cluster outside Kubernetes and write what that side needs
    #[command(
        after_help = MORE,
        after_long_help = EXPORT_EXAMPLES,
        mut_arg("wait", |arg| arg.help(WAIT_NOTHING).long_help(WAIT_NOTHING_LONG)),
        mut_arg("timeout", |arg| arg.help(TIMEOUT_PLAN).long_help(TIMEOUT_PLAN_LONG))
    )]
    Export(ExportArgs),

    /// Invalidate an exported API key and remove the exposure nothing else uses
    #[command(
        after_help = MORE,
        mut_arg("wait", |arg| arg.help(WAIT_NOTHING).long_help(WAIT_NOTHING_LONG)),
        mut_arg("timeout", |arg| arg.help(TIMEOUT_PLAN).long_help(TIMEOUT_PLAN_LONG))
    )]
    Unexport(UnexportArgs),

    /// Remove a remote cluster link made by this plugin
    #[command(
        after_help = MORE,
        after_long_help = UNLINK_EXAMPLES,
        mut_arg("wait", |arg| arg.help(UNLINK_WAIT).long_help(UNLINK_WAIT_LONG)),
        mut_arg("remote_url", |arg| arg.help(UNLINK_REMOTE_URL).long_help(UNLINK_REMOTE_URL_LONG)),
        mut_arg("remote_user", |arg| arg.help("With --remote-url: user on the remote allowed to invalidate the key"))
    )]
    Unlink(UnlinkArgs),

    /// Show one cluster's remote cluster links, both ways, and whether they are connected
    #[command(after_help = MORE, after_long_help = DESCRIBE_EXAMPLES)]
    Describe(DescribeArgs),

    /// Check every link of a cluster, layer by layer, and say what is wrong and how to fix it
    #[command(after_help = MORE, after_long_help = CHECK_EXAMPLES)]
    Check(CheckArgs),

    /// Print the plugin's version
    #[command(after_help = MORE, after_long_help = VERSION_EXAMPLES)]
    Version(VersionArgs),

    /// Print a shell completion script, or install kubectl's completion helper for this plugin
    #[command(after_help = MORE, after_long_help = COMPLETION_EXAMPLES)]
    Completion(CompletionArgs),

    /// Print the manual page (roff), or write one page per command into a directory
    #[command(after_help = MORE)]
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

/// `--wait` of unlink: it waits for rollouts only; nothing tells when a link is gone.
const UNLINK_WAIT: &str = "Wait until ECK has rolled out the changed Elasticsearch resources";
const UNLINK_WAIT_LONG: &str = "\
Wait until ECK has rolled out every Elasticsearch resource the unlink changed (observed \
generation caught up, phase Ready); across Kubernetes clusters, those whose nodes restart. \
--wait=false returns after the writes and the waits a later step of the plan needs.";

/// `--remote-url` of unlink: it never creates a key, it invalidates the one link created.
const UNLINK_REMOTE_URL: &str =
    "The remote's HTTPS URL given to link --remote-url: invalidate the API key link created there";
const UNLINK_REMOTE_URL_LONG: &str = "\
For a link to a cluster outside Kubernetes whose cross-cluster API key the plugin created \
(link --external --remote-url): the same URL, so that the plugin invalidates that key there \
after removing the link. Another URL, or a key you made yourself, is left alone: invalidate it \
on the remote.";

/// `--wait` of the commands that return after their writes whatever it says.
const WAIT_NOTHING: &str =
    "Accepted for symmetry with link and unlink; this command does not wait after its writes";
const WAIT_NOTHING_LONG: &str = "\
Accepted for symmetry with link and unlink: this command returns once its writes are done, \
with --wait or without. Waits its plan needs (a LoadBalancer address, a rollout before a later \
step) always happen, within --timeout.";

/// `--timeout` of the commands whose only waits are their plan's.
const TIMEOUT_PLAN: &str = "How long the plan's own waits may take (90s, 10m)";
const TIMEOUT_PLAN_LONG: &str = "\
How long the waits the plan needs may take, all together: a LoadBalancer address, a rollout \
before a later step. A duration as kubectl takes it: 90s, 10m, 1h30m (0: no limit).";

/// Flags shared by the commands that change clusters.
#[derive(Debug, Args, Clone)]
pub struct MutationFlags {
    /// Only show the plan (client) or have the API server validate it (server)
    ///
    /// none: apply. client (also --dry-run alone): print the plan on stderr, send nothing.
    /// server: send the writes with dryRun=All, so the API server validates them and saves
    /// nothing; no waits follow.
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

    /// Do not ask before a plan that restarts Elasticsearch nodes
    ///
    /// A plan that restarts nodes (rolling) is asked about on a terminal and refused without one;
    /// --yes applies it. Other plans are applied without asking.
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Wait until ECK has rolled the change out and the link is connected
    ///
    /// After the writes, wait for ECK to roll out the changed Elasticsearch resources, then until
    /// LOCAL's _remote/info reports the alias connected. --wait=false returns after the writes
    /// and the waits a later step of the plan needs.
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

    /// How long the plan's own waits may take, and again how long --wait waits (90s, 10m)
    ///
    /// The waits the plan needs (a LoadBalancer address, a rollout before a later step) may take
    /// this long all together; --wait then may take this long again. A duration as kubectl takes
    /// it (90s, 10m, 1h30m, 1.5h; 168h at most); 0 means no limit.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = wait_timeout)]
    pub timeout: String,

    /// Print the result as a document on stdout
    ///
    /// The plan and what was done (the plan only, with --dry-run); progress and the plan in
    /// words stay on stderr.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<DocumentFormat>,
}

#[derive(Debug, Args)]
pub struct LinkArgs {
    /// The Elasticsearch that sends searches and follows indices (the local cluster)
    #[arg(value_parser = input::elasticsearch_name)]
    pub local: String,

    /// The Elasticsearch that is searched or replicated from (the remote cluster)
    #[arg(required_unless_present = "external", value_parser = input::elasticsearch_name)]
    pub remote: Option<String>,

    /// A remote outside Kubernetes, under this alias (instead of REMOTE)
    ///
    /// For Elastic Cloud Hosted, ECE or self-managed Elasticsearch. Needs --proxy-address; the
    /// remote's CA with --ca-file or --public-ca; the key with --api-key-file or --remote-url
    /// (or --security certificate).
    #[arg(
        long,
        value_name = "ALIAS",
        conflicts_with_all = ["remote", "remote_context", "alias"],
        requires = "proxy_address",
        value_parser = input::alias
    )]
    pub external: Option<String>,

    /// With --external: PEM file of the CA of the remote's remote cluster server
    ///
    /// Mounted into LOCAL's nodes so that they trust the remote's certificate (with
    /// --public-ca: the public root CA).
    #[arg(
        long,
        value_name = "FILE",
        requires = "external",
        value_parser = non_empty_path
    )]
    pub ca_file: Option<std::path::PathBuf>,

    /// With --external: the remote's certificate is signed by a public CA
    ///
    /// As on Elastic Cloud Hosted. Elasticsearch stops trusting public CAs on the remote cluster
    /// client once any CA list is set there (ECK sets one for API-key remotes), so the CA is
    /// mounted like --ca-file: give the root with --ca-file, or --remote-url and the plugin
    /// reads it from the remote's verified TLS handshake.
    #[arg(long, requires = "external")]
    pub public_ca: bool,

    /// With --external: file holding the encoded cross-cluster API key made on the remote
    ///
    /// Stored in LOCAL's keystore Secret; never printed.
    #[arg(
        long,
        value_name = "FILE",
        requires = "external",
        conflicts_with = "remote_url",
        value_parser = non_empty_path
    )]
    pub api_key_file: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub remote_api: RemoteApiFlags,

    #[command(flatten)]
    pub restriction: TrustRestrictionFlags,

    /// Namespace of REMOTE (default: the namespace of LOCAL)
    #[arg(long, value_name = "NAMESPACE", value_parser = input::namespace)]
    pub remote_namespace: Option<String>,

    /// Kubeconfig context of REMOTE, when it runs in another Kubernetes cluster
    #[arg(long, value_name = "NAME", value_parser = input::context)]
    pub remote_context: Option<String>,

    /// Kubeconfig file holding --remote-context (default: the same kubeconfig)
    #[arg(long, value_name = "FILE", requires = "remote_context", value_parser = non_empty_path)]
    pub remote_kubeconfig: Option<std::path::PathBuf>,

    /// Across Kubernetes clusters: how REMOTE's remote cluster server is exposed
    ///
    /// loadbalancer: a Service of type LoadBalancer, whose address LOCAL dials. none: you expose
    /// it yourself and give --proxy-address.
    #[arg(long, value_enum, value_name = "HOW", default_value = "loadbalancer")]
    pub expose: ExposeMode,

    /// The HOST:PORT LOCAL connects to, when you expose REMOTE yourself
    ///
    /// Across Kubernetes clusters with --expose none, and with --external (the remote's remote
    /// cluster endpoint).
    #[arg(long, value_name = "HOST:PORT", value_parser = input::proxy_address)]
    pub proxy_address: Option<String>,

    /// Across Kubernetes clusters: the TLS server name LOCAL checks
    ///
    /// Default: REMOTE-es-remote-cluster.NAMESPACE.svc, a name in the certificate ECK issues.
    #[arg(long, value_name = "NAME", value_parser = input::server_name)]
    pub server_name: Option<String>,

    /// Name LOCAL uses for REMOTE (default: REMOTE's name)
    #[arg(long, value_name = "NAME", value_parser = input::alias)]
    pub alias: Option<String>,

    /// Security model (default: api-key when both sides run 8.14 or later, else certificate)
    ///
    /// api-key: a cross-cluster API key of REMOTE, limited to the index patterns below, and
    /// REMOTE's remote cluster server (port 9443). certificate: the transport CAs trust each
    /// other and LOCAL reaches REMOTE's transport port; no index restriction.
    #[arg(long, value_enum, value_name = "MODEL")]
    pub security: Option<Security>,

    /// Index patterns LOCAL may search on REMOTE (API-key model; default: all)
    #[arg(long, value_name = "PATTERN", value_delimiter = ',', value_parser = input::index_pattern)]
    pub search_indices: Vec<String>,

    /// Index patterns LOCAL may replicate from REMOTE (API-key model; default: none)
    #[arg(long, value_name = "PATTERN", value_delimiter = ',', value_parser = input::index_pattern)]
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
    /// With --security certificate: the trust.yml of a peer on Elastic Cloud Hosted or ECE
    ///
    /// Downloaded there after adding this cluster as a trusted environment; it names the nodes
    /// of the peer to accept, since its CA signs every deployment of the region or installation.
    #[arg(long, value_name = "FILE", value_parser = non_empty_path)]
    pub trust_file: Option<std::path::PathBuf>,

    /// With --security certificate: node-name pattern of the other side to accept
    ///
    /// Such as "*.node.<deployment-id>.cluster.<organization-id>.account"; several with a comma
    /// or by repeating the flag.
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
    /// With --external: the remote's HTTPS URL, to create the API key there
    ///
    /// Instead of --api-key-file: the plugin creates the cross-cluster API key on the remote
    /// with --remote-user, and unlink (given the same URL) invalidates it.
    #[arg(long, value_name = "URL")]
    pub remote_url: Option<String>,

    /// With --remote-url: user on the remote with the manage_security privilege
    #[arg(
        long,
        value_name = "USER",
        default_value = "elastic",
        requires = "remote_url"
    )]
    pub remote_user: String,

    /// With --remote-url: file holding that user's password
    #[arg(long, value_name = "FILE", requires = "remote_url", value_parser = non_empty_path)]
    pub remote_password_file: Option<std::path::PathBuf>,

    /// With --remote-url: PEM file of the CA of its HTTPS certificate (default: public CAs)
    #[arg(long, value_name = "FILE", requires = "remote_url", value_parser = non_empty_path)]
    pub remote_ca_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct TrustArgs {
    /// The Elasticsearch in the current context (or --context)
    #[arg(value_parser = input::elasticsearch_name)]
    pub local: String,

    /// The Elasticsearch in --remote-context
    #[arg(value_parser = input::elasticsearch_name)]
    pub remote: String,

    /// Namespace of REMOTE (default: the namespace of LOCAL)
    #[arg(long, value_name = "NAMESPACE", value_parser = input::namespace)]
    pub remote_namespace: Option<String>,

    /// Kubeconfig context of REMOTE
    #[arg(long, value_name = "NAME", value_parser = input::context)]
    pub remote_context: Option<String>,

    /// Kubeconfig file holding --remote-context (default: the same kubeconfig)
    #[arg(long, value_name = "FILE", requires = "remote_context", value_parser = non_empty_path)]
    pub remote_kubeconfig: Option<std::path::PathBuf>,

    /// Only LOCAL trusts REMOTE's CA (default: both ways)
    #[arg(long)]
    pub one_way: bool,

    /// Replace copies of a CA that changed since (after a CA rotation)
    ///
    /// Without it, a copy that differs from the current CA is left as it is and reported.
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
    #[arg(value_parser = input::elasticsearch_name)]
    pub remote: String,

    /// The alias the other side will use for it
    #[arg(long = "for", value_name = "ALIAS", value_parser = input::alias)]
    pub alias: String,

    /// Index patterns the other side may search (default: all)
    #[arg(long, value_name = "PATTERN", value_delimiter = ',', value_parser = input::index_pattern)]
    pub search_indices: Vec<String>,

    /// Index patterns the other side may replicate
    #[arg(long, value_name = "PATTERN", value_delimiter = ',', value_parser = input::index_pattern)]
    pub replication_indices: Vec<String>,

    /// How REMOTE is exposed to the other side
    ///
    /// Its remote cluster server, or with --security certificate its transport port.
    /// loadbalancer: a Service of type LoadBalancer. none: you expose it yourself and give
    /// --proxy-address.
    #[arg(long, value_enum, value_name = "HOW", default_value = "loadbalancer")]
    pub expose: ExposeMode,

    /// The HOST:PORT the other side dials, when you expose REMOTE yourself
    #[arg(long, value_name = "HOST:PORT", value_parser = input::proxy_address)]
    pub proxy_address: Option<String>,

    /// Security model: api-key (a key for the other side) or certificate (mutual transport trust)
    #[arg(long, value_enum, value_name = "MODEL", default_value = "api-key")]
    pub security: Security,

    /// With --security certificate: PEM file of the other side's transport CA, to trust here
    #[arg(long, value_name = "FILE", value_parser = non_empty_path)]
    pub ca_file: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub restriction: TrustRestrictionFlags,

    /// Where to write the CA, the API key and the instructions (default: REMOTE-export-ALIAS)
    ///
    /// The API key file is readable only by you (mode 0600); INSTRUCTIONS.md says what to enter
    /// on the other side.
    #[arg(long, value_name = "DIR", value_parser = non_empty_path)]
    pub output_dir: Option<std::path::PathBuf>,

    /// Also print the API key on stdout
    ///
    /// Without it the key is only in the output directory, never on the terminal.
    #[arg(long)]
    pub show_secrets: bool,

    /// The other side's HTTPS URL, when self-managed: set the alias there directly
    ///
    /// The plugin sets the other side's cluster settings for the alias itself; its keystore and
    /// CA trust need node access and stay in the instructions.
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
    #[arg(long, value_name = "FILE", requires = "apply_to", value_parser = non_empty_path)]
    pub apply_password_file: Option<std::path::PathBuf>,

    /// With --apply-to: PEM file of the CA of its HTTPS certificate (default: the public web PKI)
    #[arg(long, value_name = "FILE", requires = "apply_to", value_parser = non_empty_path)]
    pub apply_ca_file: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub mutation: MutationFlags,
}

#[derive(Debug, Args)]
pub struct UnexportArgs {
    /// The Elasticsearch that was exported
    #[arg(value_parser = input::elasticsearch_name)]
    pub remote: String,

    /// The alias it was exported for
    #[arg(long = "for", value_name = "ALIAS", value_parser = input::alias)]
    pub alias: String,

    /// Also turn off the remote cluster server the export turned on, when nothing else uses it
    #[arg(long)]
    pub disable_server: bool,

    #[command(flatten)]
    pub mutation: MutationFlags,
}

#[derive(Debug, Args)]
pub struct UnlinkArgs {
    /// The Elasticsearch whose link is removed
    #[arg(value_parser = input::elasticsearch_name)]
    pub local: String,

    /// The alias of the remote cluster to remove
    #[arg(value_parser = input::alias)]
    pub alias: String,

    /// Also turn off the remote's remote cluster server when no other cluster uses it
    #[arg(long)]
    pub disable_server: bool,

    /// Across Kubernetes clusters: clean this side only and print what is left on the remote
    ///
    /// For a remote that cannot be reached; the remote's API key, certificates and exposure
    /// stay and are listed as warnings.
    #[arg(long, conflicts_with = "remote_only")]
    pub local_only: bool,

    /// Across Kubernetes clusters, API-key model: clean the remote's side only, found through
    /// its record of the incoming link
    ///
    /// For a local cluster that is gone or out of reach (or was cleaned with --local-only):
    /// LOCAL, ALIAS, --context and -n name the local side as the link was made (never
    /// contacted); --remote-context names the remote's context. Invalidates the link's API
    /// keys, forgets the incoming link and removes the exposure nothing else uses.
    #[arg(long, requires = "remote_context")]
    pub remote_only: bool,

    /// Across Kubernetes clusters: the remote's context, when yours is named differently
    ///
    /// By default the plugin uses the context the link was made with (recorded on LOCAL) or,
    /// when this kubeconfig has none by that name, the context that reaches the same cluster
    /// (the recorded cluster UID or server). A context given here must reach that cluster.
    #[arg(long, value_name = "CONTEXT")]
    pub remote_context: Option<String>,

    /// Across Kubernetes clusters: kubeconfig file holding the remote's context
    ///
    /// The remote's context is the one the link was made with (recorded on LOCAL); default: the
    /// same kubeconfig.
    #[arg(long, value_name = "FILE", value_parser = non_empty_path)]
    pub remote_kubeconfig: Option<std::path::PathBuf>,

    // A link to a cluster outside Kubernetes whose key the plugin created: --remote-url and its
    // credentials reach it to invalidate the key (help set on the Unlink variant).
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
    #[arg(value_parser = input::elasticsearch_name)]
    pub name: String,

    /// Also look for links to it in every other context
    ///
    /// Links made from other Kubernetes clusters are recorded there only. Further --context
    /// values are looked in as well.
    #[arg(long)]
    pub all_contexts: bool,

    /// Output format
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<DocumentFormat>,
}

const CHECK_EXAMPLES: &str = "\
Examples:
  # Every link of catalog, then every link of every cluster in namespace search
  kubectl remote-cluster check catalog -n search
  kubectl remote-cluster check -n search

  # One link; every cluster of every context, as JSON
  kubectl remote-cluster check catalog products -n search
  kubectl remote-cluster check --all-contexts -o json

  # In CI: a JUnit report, without the ECK Warning events
  kubectl remote-cluster check -n search --junit check.xml --skip eck-warning-event

Exit codes: 0 all checks pass, 3 an error was found, 4 only warnings. Each code is explained
in docs/checks.md.";

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The Elasticsearch whose links are checked (default: every one, in all namespaces
    /// unless -n is given)
    #[arg(value_parser = input::elasticsearch_name)]
    pub local: Option<String>,

    /// Only the link of this alias
    #[arg(value_parser = input::alias, requires = "local")]
    pub alias: Option<String>,

    /// Check the clusters of every context of the kubeconfig
    #[arg(long, conflicts_with = "contexts")]
    pub all_contexts: bool,

    /// Output format (default: a report grouped by link)
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<DocumentFormat>,

    /// Also write a JUnit XML report to FILE (one testcase per check and link)
    #[arg(long, value_name = "FILE", value_parser = non_empty_path)]
    pub junit: Option<PathBuf>,

    /// Report only these codes (comma-separated)
    #[arg(long, value_name = "CODE", value_delimiter = ',', value_parser = check_code)]
    pub only: Vec<String>,

    /// Leave out these codes (comma-separated)
    #[arg(long, value_name = "CODE", value_delimiter = ',', value_parser = check_code)]
    pub skip: Vec<String>,
}

/// A code of `check` (see docs/checks.md).
fn check_code(value: &str) -> Result<String, String> {
    if crate::check::CHECKS.iter().any(|c| c.code == value) {
        Ok(value.to_string())
    } else {
        Err(format!(
            "unknown check code; codes: {}",
            crate::check::CHECKS
                .iter()
                .map(|c| c.code)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
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

    /// Instead, install kubectl's completion helper for this plugin
    ///
    /// Copies `kubectl_complete-remote_cluster`, which kubectl 1.26+ runs to complete this
    /// plugin, into DIR (default: the directory of this plugin on PATH).
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
    #[arg(long, value_name = "DIR", value_parser = non_empty_path)]
    pub out_dir: Option<PathBuf>,
}

/// A file or directory path: not empty (which would name nothing, or the current directory).
fn non_empty_path(value: &str) -> Result<PathBuf, String> {
    if value.is_empty() {
        Err("empty path: give the path of a file or directory".to_string())
    } else {
        Ok(PathBuf::from(value))
    }
}

/// `--request-timeout`, checked as kubectl reads it and kept as given.
fn request_timeout(value: &str) -> Result<String, String> {
    input::request_timeout(value).map(|_| value.to_string())
}

/// `--timeout`, checked as kubectl reads its duration flags and kept as given.
fn wait_timeout(value: &str) -> Result<String, String> {
    input::wait_timeout(value).map(|_| value.to_string())
}

// What the flags ask for, in the workflows' terms.

impl GlobalFlags {
    pub fn scope(&self, kubeconfig: Arc<LoadedKubeconfig>) -> Scope {
        Scope {
            kubeconfig,
            contexts: self.contexts.clone(),
            namespace: self.namespace.clone(),
            request_timeout: self.request_timeout.clone(),
        }
    }
}

impl MutationFlags {
    pub fn options(&self) -> MutationOptions {
        MutationOptions {
            dry_run: self.dry_run.into(),
            yes: self.yes,
            wait: self.wait,
            timeout: self.timeout.clone(),
        }
    }
}

impl RemoteApiFlags {
    pub fn request(&self) -> RemoteApi {
        RemoteApi {
            remote_url: self.remote_url.clone(),
            remote_user: self.remote_user.clone(),
            remote_password_file: self.remote_password_file.clone(),
            remote_ca_file: self.remote_ca_file.clone(),
        }
    }
}

impl TrustRestrictionFlags {
    pub fn request(&self) -> TrustRestriction {
        TrustRestriction {
            trust_file: self.trust_file.clone(),
            trust_subject: self.trust_subject.clone(),
        }
    }
}

impl LinkArgs {
    pub fn request(&self) -> LinkRequest {
        LinkRequest {
            local: self.local.clone(),
            remote: self.remote.clone(),
            external: self.external.clone(),
            ca_file: self.ca_file.clone(),
            public_ca: self.public_ca,
            api_key_file: self.api_key_file.clone(),
            remote_api: self.remote_api.request(),
            restriction: self.restriction.request(),
            remote_namespace: self.remote_namespace.clone(),
            remote_context: self.remote_context.clone(),
            remote_kubeconfig: self.remote_kubeconfig.clone(),
            expose: self.expose.into(),
            proxy_address: self.proxy_address.clone(),
            server_name: self.server_name.clone(),
            alias: self.alias.clone(),
            security: self.security.map(Into::into),
            search_indices: self.search_indices.clone(),
            replication_indices: self.replication_indices.clone(),
            skip_unavailable: self.skip_unavailable,
            mutation: self.mutation.options(),
        }
    }
}

impl UnlinkArgs {
    pub fn request(&self) -> UnlinkRequest {
        UnlinkRequest {
            local: self.local.clone(),
            alias: self.alias.clone(),
            disable_server: self.disable_server,
            local_only: self.local_only,
            remote_only: self.remote_only,
            remote_context: self.remote_context.clone(),
            remote_kubeconfig: self.remote_kubeconfig.clone(),
            remote_api: self.remote_api.request(),
            mutation: self.mutation.options(),
        }
    }
}

impl TrustArgs {
    pub fn request(&self) -> TrustRequest {
        TrustRequest {
            local: self.local.clone(),
            remote: self.remote.clone(),
            remote_namespace: self.remote_namespace.clone(),
            remote_context: self.remote_context.clone(),
            remote_kubeconfig: self.remote_kubeconfig.clone(),
            one_way: self.one_way,
            refresh: self.refresh,
            mutation: self.mutation.options(),
        }
    }
}

impl ExportArgs {
    pub fn request(&self) -> ExportRequest {
        ExportRequest {
            remote: self.remote.clone(),
            alias: self.alias.clone(),
            search_indices: self.search_indices.clone(),
            replication_indices: self.replication_indices.clone(),
            expose: self.expose.into(),
            proxy_address: self.proxy_address.clone(),
            security: self.security.into(),
            ca_file: self.ca_file.clone(),
            restriction: self.restriction.request(),
            output_dir: self.output_dir.clone(),
            show_secrets: self.show_secrets,
            apply_to: RemoteApi {
                remote_url: self.apply_to.clone(),
                remote_user: self.apply_user.clone(),
                remote_password_file: self.apply_password_file.clone(),
                remote_ca_file: self.apply_ca_file.clone(),
            },
            mutation: self.mutation.options(),
        }
    }
}

impl UnexportArgs {
    pub fn request(&self) -> UnexportRequest {
        UnexportRequest {
            remote: self.remote.clone(),
            alias: self.alias.clone(),
            disable_server: self.disable_server,
            mutation: self.mutation.options(),
        }
    }
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
