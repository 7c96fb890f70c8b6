//! What each mutating command asks for, in the workflows' own terms: the command line is turned
//! into one of these by `commands/`, so nothing below that layer knows the flags' spelling.

use std::path::PathBuf;
use std::sync::Arc;

use crate::apply::DryRun;
use crate::k8s::kubeconfig::LoadedKubeconfig;
use crate::plan::{Expose, SecurityModel};

/// Where a command works: the kubeconfig, the contexts chosen and the namespace.
#[derive(Clone)]
pub struct Scope {
    pub kubeconfig: Arc<LoadedKubeconfig>,
    pub contexts: Vec<String>,
    pub namespace: Option<String>,
    /// As given (`0`, `30s`, `2m`): parsed where a bad value can be reported as the user's.
    pub request_timeout: String,
}

/// How a mutating command applies its plan.
#[derive(Debug, Clone)]
pub struct MutationOptions {
    pub dry_run: DryRun,
    /// Apply without asking, even when Elasticsearch nodes restart.
    pub yes: bool,
    /// Wait for the rollout and the connection after the writes.
    pub wait: bool,
    /// As given (`90s`, `10m`): how long the plan's waits and `wait` may take.
    pub timeout: String,
}

/// The HTTPS API of a cluster outside Kubernetes, with the credentials to use there.
#[derive(Debug, Clone, Default)]
pub struct RemoteApi {
    pub remote_url: Option<String>,
    pub remote_user: String,
    pub remote_password_file: Option<PathBuf>,
    pub remote_ca_file: Option<PathBuf>,
}

/// Node names of a certificate-model peer on Elastic Cloud Hosted or ECE to trust.
#[derive(Debug, Clone, Default)]
pub struct TrustRestriction {
    pub trust_file: Option<PathBuf>,
    pub trust_subject: Vec<String>,
}

impl TrustRestriction {
    pub fn given(&self) -> bool {
        self.trust_file.is_some() || !self.trust_subject.is_empty()
    }
}

/// `link LOCAL REMOTE` or `link LOCAL --external ALIAS`.
#[derive(Debug, Clone)]
pub struct LinkRequest {
    pub local: String,
    pub remote: Option<String>,
    pub external: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub public_ca: bool,
    pub api_key_file: Option<PathBuf>,
    pub remote_api: RemoteApi,
    pub restriction: TrustRestriction,
    pub remote_namespace: Option<String>,
    pub remote_context: Option<String>,
    pub remote_kubeconfig: Option<PathBuf>,
    pub expose: Expose,
    pub proxy_address: Option<String>,
    pub server_name: Option<String>,
    pub alias: Option<String>,
    pub security: Option<SecurityModel>,
    pub search_indices: Vec<String>,
    pub replication_indices: Vec<String>,
    pub skip_unavailable: bool,
    pub mutation: MutationOptions,
}

impl LinkRequest {
    /// REMOTE's name; empty for a link to a cluster outside Kubernetes.
    pub fn remote_name(&self) -> &str {
        self.remote.as_deref().unwrap_or_default()
    }
}

/// `unlink LOCAL ALIAS`.
#[derive(Debug, Clone)]
pub struct UnlinkRequest {
    pub local: String,
    pub alias: String,
    pub disable_server: bool,
    pub local_only: bool,
    pub remote_only: bool,
    /// The remote's context when it is not the recorded one (checked against the record).
    pub remote_context: Option<String>,
    pub remote_kubeconfig: Option<PathBuf>,
    pub remote_api: RemoteApi,
    pub mutation: MutationOptions,
}

/// `trust LOCAL REMOTE`.
#[derive(Debug, Clone)]
pub struct TrustRequest {
    pub local: String,
    pub remote: String,
    pub remote_namespace: Option<String>,
    pub remote_context: Option<String>,
    pub remote_kubeconfig: Option<PathBuf>,
    pub one_way: bool,
    pub refresh: bool,
    pub mutation: MutationOptions,
}

/// `export REMOTE --for ALIAS`.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub remote: String,
    pub alias: String,
    pub search_indices: Vec<String>,
    pub replication_indices: Vec<String>,
    pub expose: Expose,
    pub proxy_address: Option<String>,
    pub security: SecurityModel,
    pub ca_file: Option<PathBuf>,
    pub restriction: TrustRestriction,
    pub output_dir: Option<PathBuf>,
    pub show_secrets: bool,
    /// A self-managed local cluster whose settings are set directly.
    pub apply_to: RemoteApi,
    pub mutation: MutationOptions,
}

/// `unexport REMOTE --for ALIAS`.
#[derive(Debug, Clone)]
pub struct UnexportRequest {
    pub remote: String,
    pub alias: String,
    pub disable_server: bool,
    pub mutation: MutationOptions,
}

/// What a workflow hands back for the command to print on stdout: the `-o json|yaml` document,
/// and the text printed instead when no `-o` was given (a CA to hand over, a summary).
pub struct Outcome {
    pub document: serde_json::Value,
    pub text: Option<String>,
}

impl Outcome {
    pub fn document(document: impl serde::Serialize) -> anyhow::Result<Outcome> {
        Ok(Outcome {
            document: serde_json::to_value(document)?,
            text: None,
        })
    }

    /// Nothing for stdout (a dry run that stops after the plan, a removal).
    pub fn nothing() -> Outcome {
        Outcome {
            document: serde_json::Value::Null,
            text: None,
        }
    }

    pub fn with_text(mut self, text: Option<String>) -> Outcome {
        self.text = text;
        self
    }
}
