//! The lines a node logs about its remote cluster connections, for `pods/<pod>/log`.
//!
//! Each failing alias gives the line Elasticsearch logs for that reason, with the key phrase of
//! the error catalogue (`diagnostics.md` §1 in the shared docs; the `troubleshoot/elasticsearch/
//! remote-clusters.md` page) so that a reader of the log can match it. The lines name the alias
//! or the address dialled, as the real ones do. A connected alias logs nothing.

use super::ElasticsearchNode;
use super::remote::{Interface, NotConnectedReason, RemoteConfig, RemoteWorld, aliases};
use super::settings::{Mode, connection_enabled};

/// What `node` logs about its remote clusters now: one line per alias that cannot connect.
pub fn connection_log(node: &ElasticsearchNode, world: &dyn RemoteWorld, at: &str) -> Vec<String> {
    let merged = node.settings.merged();
    let node_name = node
        .node_names
        .first()
        .map(String::as_str)
        .unwrap_or("es-0");
    aliases(&merged)
        .into_iter()
        .filter(|alias| connection_enabled(&merged, alias))
        .filter_map(|alias| {
            let reason = node.diagnose(&alias, world).err()?;
            let cfg = RemoteConfig::from_settings(&merged, &alias, true);
            let (level, logger, message) = line_for(&alias, cfg.mode, &reason);
            Some(format!(
                "[{at}][{level:<5}][{logger}] [{node_name}] {message}"
            ))
        })
        .collect()
}

/// The level, logger and message Elasticsearch logs for `reason`.
fn line_for(
    alias: &str,
    mode: Mode,
    reason: &NotConnectedReason,
) -> (&'static str, &'static str, String) {
    use NotConnectedReason::*;
    match reason {
        NotConfigured { .. } => (
            "INFO",
            "o.e.t.RemoteClusterService",
            format!("remote cluster [{alias}] is not configured"),
        ),
        BadAddress { address }
        | Unresolvable { address }
        | RemoteUnavailable { address, .. }
        | PublishAddressUnreachable { address } => unreachable(alias, mode, address),
        WrongInterface {
            address,
            expected: Interface::RemoteClusterServer,
            ..
        } => (
            "WARN",
            "o.e.x.c.s.t.n.SecurityNetty4Transport",
            format!(
                "failed to establish trust with server at [{address}]; the server provided a certificate with subject name [CN=instance] issued by [CN=Elasticsearch Transport CA], but this ssl context ([xpack.security.remote_cluster_client.ssl]) is not configured to trust that issuer (remote cluster [{alias}])"
            ),
        ),
        WrongInterface { address, .. } => (
            "WARN",
            "o.e.t.RemoteClusterConnection",
            format!(
                "connection to remote cluster [{alias}] at [{address}] failed: Cross cluster requests through the dedicated remote cluster server port require transport header [_cross_cluster_access_credentials] but none found. Make sure you have configured remote cluster credentials in the cluster settings."
            ),
        ),
        UntrustedCertificate {
            address,
            ca_fingerprint,
            ..
        } => (
            "WARN",
            "o.e.x.c.s.t.n.SecurityNetty4Transport",
            format!(
                "failed to establish trust with server at [{address}]; the server provided a certificate issued by a CA with fingerprint [{ca_fingerprint}], but this ssl context is not configured to trust that issuer (remote cluster [{alias}]): PKIX path building failed: unable to find valid certification path to requested target"
            ),
        ),
        HostnameMismatch {
            address,
            name,
            cert_names,
        } => (
            "WARN",
            "o.e.x.c.s.t.n.SecurityNetty4Transport",
            format!(
                "failed to establish trust with server at [{address}]; the server provided a certificate with subject alternative names {cert_names:?}, none of which match [{name}] (remote cluster [{alias}]): No subject alternative DNS name matching [{name}] found"
            ),
        ),
        IncompatibleVersion { local, remote } => (
            "WARN",
            "o.e.t.RemoteClusterConnection",
            format!(
                "handshake with remote cluster [{alias}] failed: remote node version [{remote}] is incompatible with local node version [{local}]"
            ),
        ),
        MalformedCredentials { .. }
        | UnknownApiKey { .. }
        | ApiKeyInvalidated { .. }
        | ApiKeyExpired { .. } => (
            "WARN",
            "o.e.t.RemoteClusterConnection",
            format!(
                "remote cluster [{alias}]: unable to authenticate user [{}] for action [cluster:internal/remote_cluster/handshake] ({reason})",
                key_id(reason)
            ),
        ),
        NotCrossClusterKey { id } => (
            "WARN",
            "o.e.t.RemoteClusterConnection",
            format!(
                "remote cluster [{alias}]: authentication expected API key type of [cross_cluster], but API key [{id}] has type [rest]"
            ),
        ),
        RemoteDoesNotTrustLocal { address, .. } => (
            "WARN",
            "o.e.x.c.s.t.n.SecurityNetty4Transport",
            format!(
                "client did not trust this server's certificate, closing connection to [{address}] (remote cluster [{alias}]): Received fatal alert: bad_certificate"
            ),
        ),
        TrustRestricted {
            address, node_name, ..
        } => (
            "WARN",
            "o.e.x.c.s.t.n.SecurityNetty4Transport",
            format!(
                "transport connection to [{address}] (remote cluster [{alias}]) closed: the certificate of node [{node_name}] does not match the trust restrictions: Path does not chain with any of the trust anchors"
            ),
        ),
    }
}

fn unreachable(alias: &str, mode: Mode, address: &str) -> (&'static str, &'static str, String) {
    match mode {
        Mode::Proxy => (
            "WARN",
            "o.e.t.ProxyConnectionStrategy",
            format!(
                "failed to open any proxy connections to cluster [{alias}]: [{address}] connect_exception: Connection refused"
            ),
        ),
        Mode::Sniff => (
            "WARN",
            "o.e.t.SniffConnectionStrategy",
            format!(
                "fetching nodes from external cluster [{alias}] failed: [{address}] connect_exception: Connection refused"
            ),
        ),
    }
}

fn key_id(reason: &NotConnectedReason) -> &str {
    match reason {
        NotConnectedReason::UnknownApiKey { id }
        | NotConnectedReason::ApiKeyInvalidated { id }
        | NotConnectedReason::ApiKeyExpired { id } => id,
        _ => "_unknown",
    }
}
