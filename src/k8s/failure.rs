//! Why a context could not be used, in words a user can act on.

use std::error::Error as StdError;
use std::time::Duration;

use serde::Serialize;

/// What kind of failure happened, stable for scripts reading `-o json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FailureKind {
    /// The API server did not answer (connection refused, DNS, network).
    Unreachable,
    /// The TLS handshake failed: a certificate problem.
    Certificate,
    /// No answer within `--request-timeout`.
    Timeout,
    /// The API server rejected the credentials (401).
    Unauthorized,
    /// RBAC denied the request (403).
    Forbidden,
    /// The ECK custom resource definition is not installed.
    EckNotInstalled,
    /// Credentials could not be obtained (exec plugin, token file).
    Credentials,
    /// The kubeconfig entry for the context cannot be used.
    InvalidConfig,
    /// Anything else the API server answered.
    ApiError,
}

#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("context {context:?}: {message}")]
pub struct ContextFailure {
    pub context: String,
    pub server: String,
    pub reason: FailureKind,
    /// One line, for the user.
    pub message: String,
    /// The underlying causes, for `-v`.
    #[serde(skip)]
    pub causes: Vec<String>,
    #[serde(skip)]
    pub http_status: Option<u16>,
}

impl ContextFailure {
    fn new(context: &str, server: &str, reason: FailureKind, message: String) -> Self {
        Self {
            context: context.to_string(),
            server: server.to_string(),
            reason,
            message,
            causes: Vec::new(),
            http_status: None,
        }
    }

    pub fn invalid_config(context: &str, server: &str, detail: &str) -> Self {
        Self::new(
            context,
            server,
            FailureKind::InvalidConfig,
            format!("the kubeconfig entry cannot be used: {detail}"),
        )
    }

    pub fn timeout(context: &str, server: &str, limit: Duration) -> Self {
        Self::new(
            context,
            server,
            FailureKind::Timeout,
            format!(
                "no answer from {server} within {}; raise --request-timeout or check the network",
                humanize(limit)
            ),
        )
    }

    pub fn eck_not_installed(context: &str, server: &str) -> Self {
        Self::new(
            context,
            server,
            FailureKind::EckNotInstalled,
            "ECK is not installed there (no elasticsearches.elasticsearch.k8s.elastic.co resource)"
                .to_string(),
        )
    }

    /// Diagnoses a kube-rs error from the cause chain.
    pub fn from_kube(context: &str, server: &str, err: &kube::Error) -> Self {
        // A credential plugin's failure carries its output (a token, say) in its text: only a
        // summary of it may be shown.
        if let Some(summary) = credential_plugin_failure(err) {
            return Self::new(
                context,
                server,
                FailureKind::Credentials,
                format!("could not get credentials for the context: {summary}"),
            );
        }
        let causes = cause_chain(err);
        let mut failure = match err {
            kube::Error::Api(status) => {
                let code = status.code;
                let text = status.message.trim().to_string();
                let (reason, message) = match code {
                    401 => (
                        FailureKind::Unauthorized,
                        format!(
                            "{server} rejected the credentials (401 Unauthorized); log in again or refresh the kubeconfig user"
                        ),
                    ),
                    403 => (FailureKind::Forbidden, format!("forbidden: {text}")),
                    _ => (
                        FailureKind::ApiError,
                        format!("the API server answered {code}: {text}"),
                    ),
                };
                let mut f = Self::new(context, server, reason, message);
                f.http_status = Some(code);
                f
            }
            kube::Error::Auth(auth) => Self::new(
                context,
                server,
                FailureKind::Credentials,
                format!("could not get credentials for the context: {auth}"),
            ),
            _ => network_failure(context, server, err),
        };
        failure.causes = causes;
        failure
    }

    pub fn is_forbidden(&self) -> bool {
        self.reason == FailureKind::Forbidden
    }

    pub fn is_not_found(&self) -> bool {
        self.http_status == Some(404)
    }
}

fn network_failure(context: &str, server: &str, err: &kube::Error) -> ContextFailure {
    if let Some(tls) = find_rustls_error(err) {
        return ContextFailure::new(
            context,
            server,
            FailureKind::Certificate,
            format!(
                "certificate problem with {server}: {tls}; check certificate-authority-data (or client certificates) in the kubeconfig"
            ),
        );
    }
    let io_kinds = io_error_kinds(err);
    if io_kinds.contains(&std::io::ErrorKind::TimedOut)
        || chain_mentions(err, "deadline has elapsed")
    {
        return ContextFailure::new(
            context,
            server,
            FailureKind::Timeout,
            format!(
                "timed out connecting to {server}; raise --request-timeout or check the network"
            ),
        );
    }
    let detail = if io_kinds.contains(&std::io::ErrorKind::ConnectionRefused) {
        "connection refused".to_string()
    } else if chain_mentions(err, "dns error") || chain_mentions(err, "failed to lookup") {
        "the host name does not resolve".to_string()
    } else {
        innermost(err)
    };
    ContextFailure::new(
        context,
        server,
        FailureKind::Unreachable,
        format!("cannot reach the API server {server}: {detail}"),
    )
}

fn walk(err: &(dyn StdError + 'static), visit: &mut dyn FnMut(&(dyn StdError + 'static))) {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        visit(e);
        // io::Error hides the error it wraps from `source()`; look inside it too.
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            walk(inner, visit);
        }
        current = e.source();
    }
}

/// The failed exec credential plugin, said without its output, when that is what `err` is.
fn credential_plugin_failure(err: &kube::Error) -> Option<String> {
    use kube::client::AuthError;
    let mut found = None;
    walk(err, &mut |e| {
        if found.is_some() {
            return;
        }
        found = match e.downcast_ref::<AuthError>() {
            Some(AuthError::AuthExecRun { cmd, out }) => Some(format!(
                "the credential plugin {:?} failed ({}); run it by hand to see why",
                cmd.split_whitespace().next().unwrap_or_default(),
                out.status
            )),
            Some(AuthError::AuthExecParse(_)) => Some(
                "the credential plugin's output is not an ExecCredential (its output is not shown: it may hold a token)"
                    .to_string(),
            ),
            _ => None,
        };
    });
    found
}

fn find_rustls_error(err: &kube::Error) -> Option<String> {
    let mut found = None;
    walk(err, &mut |e| {
        if found.is_none()
            && let Some(tls) = e.downcast_ref::<rustls::Error>()
        {
            found = Some(tls.to_string());
        }
    });
    found
}

fn io_error_kinds(err: &kube::Error) -> Vec<std::io::ErrorKind> {
    let mut kinds = Vec::new();
    walk(err, &mut |e| {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            kinds.push(io.kind());
        }
    });
    kinds
}

fn chain_mentions(err: &kube::Error, needle: &str) -> bool {
    let mut seen = false;
    walk(err, &mut |e| {
        seen |= e.to_string().to_lowercase().contains(needle)
    });
    seen
}

fn innermost(err: &kube::Error) -> String {
    let mut last = err.to_string();
    walk(err, &mut |e| last = e.to_string());
    last
}

fn cause_chain(err: &kube::Error) -> Vec<String> {
    let mut causes: Vec<String> = Vec::new();
    walk(err, &mut |e| {
        let text = e.to_string();
        if causes.last() != Some(&text) {
            causes.push(text);
        }
    });
    causes
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod credential_plugin_tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn a_failed_credential_plugin_is_named_without_its_output() {
        let err = kube::Error::Auth(kube::client::AuthError::AuthExecRun {
            cmd: "get-token --cluster prod".to_string(),
            out: Box::new(std::process::Output {
                status: std::process::ExitStatus::from_raw(256),
                stdout: b"{\"status\":{\"token\":\"SECRET-TOKEN\"}}".to_vec(),
                stderr: b"SECRET-IN-STDERR".to_vec(),
            }),
        });
        let failure = ContextFailure::from_kube("prod", "https://k8s.example", &err);
        let everything = format!("{} {:?}", failure.message, failure.causes);
        assert!(!everything.contains("SECRET"), "{everything}");
        assert!(
            failure.message.contains("\"get-token\""),
            "{}",
            failure.message
        );
        assert!(
            failure.message.contains("exit status: 1"),
            "{}",
            failure.message
        );
        assert_eq!(failure.reason, FailureKind::Credentials);
    }
}
