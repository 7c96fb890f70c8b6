//! Errors a user can act on, each with an exit code.

use std::path::PathBuf;

/// Process exit codes, documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Ok = 0,
    /// Something failed while talking to a cluster (or part of a listing failed).
    Failure = 1,
    /// The command line or an input file is wrong; nothing was written.
    Usage = 2,
    /// `describe`: a configured link is not connected; `check`: an error was found.
    NotConnected = 3,
    /// `check`: only warnings were found.
    OnlyWarnings = 4,
}

/// Errors whose message is written for the user: one line saying what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("context {name:?} not found in the kubeconfig; contexts that exist: {}", known_list(.known))]
    UnknownContext { name: String, known: Vec<String> },

    #[error(
        "the link's remote context {context:?} is not in this kubeconfig and no context reaches that cluster ({server}); pass --remote-context NAME or --remote-kubeconfig FILE, or --local-only to clean this side"
    )]
    RemoteContextNotFound { context: String, server: String },

    #[error(
        "context {context:?} does not reach the cluster the link was made with ({server}); pass the remote's context with --remote-context"
    )]
    WrongRemoteCluster { context: String, server: String },

    #[error(
        "--remote-only needs --remote-context: the context of the remote cluster whose side of the link is removed"
    )]
    RemoteOnlyNeedsRemoteContext,

    #[error(
        "no Elasticsearch in context {context:?} records an incoming link {entry:?}; check LOCAL, ALIAS, --context and -n name the link's local side as it was made (`kubectl remote-cluster describe` on the remote lists its incoming links)"
    )]
    NoIncomingLink { entry: String, context: String },

    #[error(
        "the plugin's record of alias {alias:?} on {object} cannot be used: {reason}; it was edited by hand: restore it or remove the alias's entry from annotation {annotation}"
    )]
    BadRecord {
        alias: String,
        object: String,
        reason: String,
        annotation: String,
    },

    #[error("the kubeconfig has no current context and none was given; pass --context NAME or --all-contexts (contexts: {})", known_list(.known))]
    NoCurrentContext { known: Vec<String> },

    #[error(
        "the kubeconfig defines no contexts; point --kubeconfig or KUBECONFIG at a kubeconfig file"
    )]
    NoContexts,

    /// A spec write that would name a volume or file that is not there (checked before any
    /// write).
    #[error("{0}")]
    BrokenReference(String),

    #[error("cannot read kubeconfig {}: {reason}", .path.display())]
    UnreadableKubeconfig { path: PathBuf, reason: String },

    #[error("kubeconfig {} is malformed: {reason}", .path.display())]
    MalformedKubeconfig { path: PathBuf, reason: String },

    #[error("no kubeconfig found: set KUBECONFIG, pass --kubeconfig, or create ~/.kube/config")]
    NoKubeconfig,

    #[error("context {context:?} cannot be used: {reason}")]
    InvalidContext { context: String, reason: String },

    #[error(
        "invalid --request-timeout {value:?}: {reason} (0 means no timeout, a bare number is seconds)"
    )]
    InvalidTimeout { value: String, reason: String },

    #[error("invalid --timeout {value:?}: {reason} (0 means no limit)")]
    InvalidWaitTimeout { value: String, reason: String },

    #[error("{command} works on one context; pass a single --context")]
    OneContext { command: &'static str },

    #[error(
        "Elasticsearch {name:?} not found in namespace {namespace:?} of context {context:?}; `kubectl remote-cluster list --context {context}` shows the clusters there"
    )]
    ElasticsearchNotFound {
        context: String,
        namespace: String,
        name: String,
    },

    #[error(
        "{local} has no remote cluster {alias:?}; `kubectl remote-cluster describe {name}` lists its links"
    )]
    NoSuchLink {
        local: String,
        name: String,
        alias: String,
    },

    #[error("{0}")]
    Plan(Box<crate::plan::PlanError>),

    #[error(
        "not allowed to {verb} {resource} in namespace {namespace:?} of context {context:?} (RBAC); ask for that permission or use another context"
    )]
    Forbidden {
        context: String,
        verb: String,
        resource: String,
        namespace: String,
    },

    #[error(
        "the plan restarts Elasticsearch nodes ({clusters}) and there is no terminal to confirm it on; review it with --dry-run=client, then apply with --yes"
    )]
    NeedsConfirmation { clusters: String },

    #[error("nothing applied: the plan was not confirmed")]
    NotConfirmed,

    #[error("{} {reason}", .path.display())]
    BadInputFile { path: PathBuf, reason: String },

    #[error("--trust-subject {pattern:?} {reason}")]
    BadTrustSubject { pattern: String, reason: String },

    #[error(
        "no node names to trust for the other side: pass --trust-file with the trust.yml downloaded from Elastic Cloud Hosted or ECE, or --trust-subject PATTERN (for example \"*.node.<deployment-id>.cluster.<organization-id>.account\")"
    )]
    NoTrustSubjects,

    #[error(
        "--trust-file and --trust-subject restrict the certificate-model trust of a cluster outside Kubernetes: use them with `export --security certificate` or `link --external ALIAS --security certificate`"
    )]
    TrustWithoutCertificate,

    #[error(
        "--external needs the API key: --api-key-file FILE with a key made on the remote, or --remote-url URL --remote-password-file FILE for the plugin to make one"
    )]
    MissingKeySource,

    #[error(
        "--external needs the remote's CA: --ca-file PEM, or --public-ca when its certificate comes from a publicly trusted CA"
    )]
    MissingCa,

    #[error(
        "--public-ca alone cannot keep the link trusted: Elasticsearch trusts the JVM's public CAs on the remote cluster client only while no certificate_authorities list is set there, and ECK sets one with any API-key remote, the plugin with any CA it mounts; pass the remote's root CA with --ca-file, or --remote-url so the plugin reads it from the remote's verified TLS handshake"
    )]
    PublicCaNeedsRoot,

    #[error(
        "--public-ca: {url} presented no CA certificate above its own in the TLS handshake; pass the remote's root CA with --ca-file"
    )]
    NoIssuerInHandshake { url: String },

    #[error(
        "export --security certificate needs the other side's transport CA: --ca-file PEM (on Elastic Cloud Hosted or ECE, the CA certificate offered with trust.yml)"
    )]
    MissingExportCa,

    #[error("--remote-url needs --remote-password-file FILE (the password of --remote-user)")]
    MissingRemotePassword,

    #[error(
        "cannot use the remote's API at {url}: {reason}; check the URL, --remote-ca-file and the credentials"
    )]
    RemoteApi { url: String, reason: String },

    #[error(
        "the URL holds credentials (user:password@): give the URL without them, the user with --remote-user or --apply-user and the password in --remote-password-file or --apply-password-file"
    )]
    CredentialsInUrl,
}

impl From<crate::plan::PlanError> for UserError {
    fn from(err: crate::plan::PlanError) -> Self {
        UserError::Plan(Box::new(err))
    }
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    }
}

impl UserError {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::Usage
    }
}

/// Tells the process exit code for any error that reaches `main`.
pub fn exit_code_for(err: &anyhow::Error) -> ExitCode {
    for cause in err.chain() {
        if let Some(user) = cause.downcast_ref::<UserError>() {
            return user.exit_code();
        }
    }
    ExitCode::Failure
}

/// True when the error is only a closed stdout (`| head`): the process then exits quietly.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
