//! Remote-cluster connectivity: the [`RemoteWorld`] the sandbox implements, the computation of
//! `connected` (never stored) with the reason when it is false, and `GET /_remote/info`.

use crate::elasticsearch::EsError;
use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value, json};

use super::api_keys::{ApiKeyType, KeyRefusal};
use super::settings::{FlatSettings, Mode, connection_enabled, mode_of, parse_host_port};
use super::{ElasticsearchNode, EsVersion};

/// Identity of one simulated Elasticsearch cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EsId {
    /// The Kubernetes cluster (or any label for an external deployment).
    pub cluster: String,
    pub namespace: String,
    pub name: String,
}

impl EsId {
    pub fn new(cluster: &str, namespace: &str, name: &str) -> EsId {
        EsId {
            cluster: cluster.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// Where this cluster's nodes run, for name resolution.
    pub fn location(&self) -> NodeLocation {
        NodeLocation {
            cluster: self.cluster.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

impl fmt::Display for EsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.cluster, self.namespace, self.name)
    }
}

/// The place a connection starts from: a namespace in a Kubernetes cluster (short service names
/// resolve relative to it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeLocation {
    pub cluster: String,
    pub namespace: String,
}

/// Which listener of an Elasticsearch node an address reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Interface {
    /// Transport, port 9300 (certificate model).
    Transport,
    /// Remote cluster server, port 9443 (API-key model).
    RemoteClusterServer,
    /// HTTP, port 9200.
    Http,
}

impl Interface {
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Transport => "transport",
            Interface::RemoteClusterServer => "remote_cluster_server",
            Interface::Http => "http",
        }
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an address leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub target: EsId,
    pub interface: Interface,
    /// DNS names and IPs (as text) in the server certificate presented on that interface.
    pub tls_names: Vec<String>,
    /// Fingerprint of the CA that signed that certificate (any stable string convention).
    pub ca_fingerprint: String,
}

/// The rest of the simulated world, as one Elasticsearch cluster sees it.
///
/// Implementations must not call back into the node that is asking: `with_node` is never called
/// with the caller's own id (the engine uses itself for self-links).
pub trait RemoteWorld {
    /// Resolve `host:port` as seen from `from` to the node and interface behind it, or `None`
    /// when nothing answers (no such Service, no endpoints, port closed, not routable).
    fn resolve(&self, from: &NodeLocation, address: &str) -> Option<Endpoint>;

    /// Fingerprints of the CAs `local` trusts: `Interface::Transport` is the transport CA list
    /// (`xpack.security.transport.ssl.certificate_authorities`, used both ways in mutual TLS);
    /// `Interface::RemoteClusterServer` is what the remote-cluster *client* trusts
    /// (`xpack.security.remote_cluster_client.ssl.certificate_authorities`).
    fn trusted_cas(&self, local: &EsId, interface: Interface) -> Vec<String>;

    /// Read access to another cluster's node; `f` is not called when it does not exist (or is
    /// not running).
    fn with_node(&self, id: &EsId, f: &mut dyn FnMut(&ElasticsearchNode));

    /// The transport trust restrictions of `local`
    /// (`xpack.security.transport.ssl.trust_restrictions.path`), applied to the peer's transport
    /// certificate names in both directions of mutual TLS. Default: none.
    fn transport_trust_restrictions(&self, _local: &EsId) -> TrustRestrictions {
        TrustRestrictions::default()
    }

    /// The keystore content `POST _nodes/reload_secure_settings` would read (the keystore file
    /// on the node's disk). `None` keeps the loaded one.
    fn pending_keystore(&self, _local: &EsId) -> Option<BTreeMap<String, String>> {
        None
    }

    /// Clock in epoch milliseconds, for key creation and expiry.
    fn now_millis(&self) -> i64 {
        now_millis()
    }
}

/// The system clock in epoch milliseconds.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Transport trust restrictions as a node applies them to a peer certificate's names: one list
/// of patterns per group of nodes that restricts (an ECK nodeSet with
/// `xpack.security.transport.ssl.trust_restrictions.path`, or an external cluster), and a name
/// is accepted only when it matches a pattern of every group (a connection may land on any
/// node). No group: no restriction. An empty group accepts nobody.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustRestrictions {
    pub groups: Vec<Vec<String>>,
}

impl TrustRestrictions {
    /// Whether any group restricts.
    pub fn is_restricted(&self) -> bool {
        !self.groups.is_empty()
    }

    /// Whether a certificate named `name` (subjectAltName otherName commonName) is accepted.
    pub fn accepts(&self, name: &str) -> bool {
        self.groups
            .iter()
            .all(|g| g.iter().any(|p| subject_name_matches(p, name)))
    }
}

/// One `trust.subject_name` pattern against a certificate name, as Elasticsearch's
/// `Automatons.patterns` reads a non-regex pattern: `*` matches any sequence (dots included),
/// `?` one character, `\` escapes the next one; case-sensitive. Regex patterns (`/.../`) are
/// not simulated and match nothing.
pub fn subject_name_matches(pattern: &str, name: &str) -> bool {
    #[derive(PartialEq)]
    enum Tok {
        Any,
        One,
        Lit(char),
    }
    if pattern.len() > 1 && pattern.starts_with('/') && pattern.ends_with('/') {
        return false;
    }
    let mut toks = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        toks.push(match c {
            '*' => Tok::Any,
            '?' => Tok::One,
            '\\' => Tok::Lit(chars.next().unwrap_or('\\')),
            c => Tok::Lit(c),
        });
    }
    let text: Vec<char> = name.chars().collect();
    let (mut p, mut i) = (0usize, 0usize);
    // Where the last `*` was and the text position it currently covers up to.
    let mut star: Option<(usize, usize)> = None;
    while i < text.len() {
        match toks.get(p) {
            Some(Tok::Any) => {
                star = Some((p, i));
                p += 1;
            }
            Some(Tok::One) => {
                p += 1;
                i += 1;
            }
            Some(Tok::Lit(c)) if *c == text[i] => {
                p += 1;
                i += 1;
            }
            _ => match star {
                Some((sp, si)) => {
                    star = Some((sp, si + 1));
                    p = sp + 1;
                    i = si + 1;
                }
                None => return false,
            },
        }
    }
    toks[p..].iter().all(|t| *t == Tok::Any)
}

/// A world with nothing in it: every remote is unreachable.
pub struct NoRemotes;

impl RemoteWorld for NoRemotes {
    fn resolve(&self, _from: &NodeLocation, _address: &str) -> Option<Endpoint> {
        None
    }
    fn trusted_cas(&self, _local: &EsId, _interface: Interface) -> Vec<String> {
        Vec::new()
    }
    fn with_node(&self, _id: &EsId, _f: &mut dyn FnMut(&ElasticsearchNode)) {}
}

/// Why `connected` is false.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotConnectedReason {
    /// The alias is not configured (no seeds in sniff mode, no proxy_address in proxy mode).
    NotConfigured {
        alias: String,
    },
    /// The address could not be parsed as host:port.
    BadAddress {
        address: String,
    },
    /// Nothing answers at the address.
    Unresolvable {
        address: String,
    },
    /// The address reaches the wrong listener (e.g. 9300 while the API-key model needs 9443).
    WrongInterface {
        address: String,
        expected: Interface,
        found: Interface,
    },
    /// The remote's certificate is signed by a CA the local cluster does not trust.
    UntrustedCertificate {
        address: String,
        interface: Interface,
        ca_fingerprint: String,
    },
    /// API-key model: the name checked (server_name, or the address host) is not in the
    /// remote's certificate.
    HostnameMismatch {
        address: String,
        name: String,
        cert_names: Vec<String>,
    },
    /// The remote cluster is not running.
    RemoteUnavailable {
        address: String,
        remote: EsId,
    },
    /// Versions cannot talk to each other.
    IncompatibleVersion {
        local: String,
        remote: String,
    },
    /// API-key model: `cluster.remote.<alias>.credentials` cannot be decoded as `id:key`.
    MalformedCredentials {
        alias: String,
    },
    /// API-key model: no key with that id on the remote, or the secret does not match.
    UnknownApiKey {
        id: String,
    },
    /// API-key model: the key is a REST key, not a cross-cluster key.
    NotCrossClusterKey {
        id: String,
    },
    ApiKeyInvalidated {
        id: String,
    },
    ApiKeyExpired {
        id: String,
    },
    /// Certificate model: the remote does not trust the local transport CA (no mutual TLS).
    RemoteDoesNotTrustLocal {
        address: String,
        local_ca_fingerprint: String,
    },
    /// Sniff mode: the seed answered, but the remote nodes' publish addresses are not reachable.
    PublishAddressUnreachable {
        address: String,
    },
    /// Certificate model: the CA is trusted, but `rejected_by` (the local or the remote cluster)
    /// restricts transport trust (`xpack.security.transport.ssl.trust_restrictions.path`) and
    /// the name of `node_name`'s transport certificate (subjectAltName otherName commonName)
    /// matches none of its patterns.
    TrustRestricted {
        address: String,
        rejected_by: EsId,
        node_name: String,
    },
}

impl NotConnectedReason {
    /// The remote answered and refused the credentials: the transport connection is up.
    pub fn is_security_error(&self) -> bool {
        matches!(
            self,
            NotConnectedReason::MalformedCredentials { .. }
                | NotConnectedReason::UnknownApiKey { .. }
                | NotConnectedReason::NotCrossClusterKey { .. }
                | NotConnectedReason::ApiKeyInvalidated { .. }
                | NotConnectedReason::ApiKeyExpired { .. }
        )
    }
}

impl fmt::Display for NotConnectedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use NotConnectedReason::*;
        match self {
            NotConfigured { alias } => write!(f, "remote cluster [{alias}] is not configured"),
            BadAddress { address } => write!(f, "[{address}] is not a host:port address"),
            Unresolvable { address } => write!(f, "nothing answers at [{address}]"),
            WrongInterface {
                address,
                expected,
                found,
            } => write!(
                f,
                "[{address}] reaches the {found} interface, but the {expected} interface is needed"
            ),
            UntrustedCertificate {
                address,
                interface,
                ca_fingerprint,
            } => write!(
                f,
                "the certificate at [{address}] ({interface}) is signed by CA [{ca_fingerprint}], which the local cluster does not trust"
            ),
            HostnameMismatch {
                address,
                name,
                cert_names,
            } => write!(
                f,
                "the certificate at [{address}] is not valid for [{name}] (it names {cert_names:?})"
            ),
            RemoteUnavailable { address, remote } => {
                write!(f, "[{address}] leads to [{remote}], which is not running")
            }
            IncompatibleVersion { local, remote } => {
                write!(f, "version [{local}] cannot connect to version [{remote}]")
            }
            MalformedCredentials { alias } => write!(
                f,
                "keystore setting [cluster.remote.{alias}.credentials] is not an encoded API key"
            ),
            UnknownApiKey { id } => {
                write!(f, "unable to find API key [{id}] on the remote cluster")
            }
            NotCrossClusterKey { id } => write!(
                f,
                "API key [{id}] has type [rest], but a cross-cluster API key is required"
            ),
            ApiKeyInvalidated { id } => write!(f, "API key [{id}] has been invalidated"),
            ApiKeyExpired { id } => write!(f, "API key [{id}] has expired"),
            RemoteDoesNotTrustLocal {
                address,
                local_ca_fingerprint,
            } => write!(
                f,
                "the remote at [{address}] does not trust the local transport CA [{local_ca_fingerprint}]"
            ),
            PublishAddressUnreachable { address } => write!(
                f,
                "sniff mode: the remote node publish address [{address}] is not reachable"
            ),
            TrustRestricted {
                address,
                rejected_by,
                node_name,
            } => write!(
                f,
                "the transport connection through [{address}] is refused: [{rejected_by}] does not accept the certificate of node [{node_name}], whose name matches none of its trust restrictions"
            ),
        }
    }
}

impl std::error::Error for NotConnectedReason {}

/// The effective configuration of one alias (transient over persistent, key by key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteConfig {
    pub alias: String,
    pub mode: Mode,
    pub seeds: Vec<String>,
    pub proxy_address: String,
    pub server_name: String,
    pub skip_unavailable: bool,
    pub node_connections: u32,
    pub proxy_socket_connections: u32,
}

impl RemoteConfig {
    pub(crate) fn from_settings(
        merged: &FlatSettings,
        alias: &str,
        default_skip: bool,
    ) -> RemoteConfig {
        let get = |s: &str| merged.get(&format!("cluster.remote.{alias}.{s}"));
        let get_str = |s: &str| get(s).and_then(|v| v.as_str()).map(str::to_string);
        let num = |s: &str, d: u32| get_str(s).and_then(|v| v.parse().ok()).unwrap_or(d);
        RemoteConfig {
            alias: alias.to_string(),
            mode: mode_of(merged, alias),
            seeds: get("seeds").map(|v| v.as_list()).unwrap_or_default(),
            proxy_address: get_str("proxy_address").unwrap_or_default(),
            server_name: get_str("server_name").unwrap_or_default(),
            skip_unavailable: get_str("skip_unavailable")
                .map(|v| v == "true")
                .unwrap_or(default_skip),
            node_connections: num("node_connections", 3),
            proxy_socket_connections: num("proxy_socket_connections", 18),
        }
    }
}

/// All aliases with any `cluster.remote.<alias>.*` key in the merged settings, sorted.
pub(crate) fn aliases(merged: &FlatSettings) -> Vec<String> {
    let mut out: Vec<String> = merged
        .keys()
        .filter_map(|k| k.strip_prefix("cluster.remote."))
        .filter_map(|rest| rest.split_once('.').map(|(a, _)| a.to_string()))
        .collect();
    out.dedup();
    out
}

/// Can these two versions connect (same major; 7.17 with 8.x; 8.18 with 9.0; 8.19 with 9.1+)?
pub fn versions_compatible(a: EsVersion, b: EsVersion) -> bool {
    let (lo, hi) = (a.min(b), a.max(b));
    if lo.major == hi.major {
        return true;
    }
    if hi.major != lo.major + 1 {
        return false;
    }
    match (lo.major, hi.major) {
        (7, 8) => lo.minor >= 17,
        (8, 9) => (lo.minor == 18 && hi.minor == 0) || lo.minor >= 19,
        _ => false,
    }
}

/// What a successful diagnosis found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub target: EsId,
    /// Nodes of the remote (sniff: gateway nodes reached).
    pub remote_nodes: usize,
}

/// A node's connection to one remote alias: the outcome of its last attempt, for the
/// configuration it was made with. Elasticsearch keeps it until a settings update, a node
/// restart, a secure-settings reload that changes the alias's credentials, or a
/// `_resolve/cluster` (or search) asks again; it does not reconnect by itself
/// (`real-behaviour.md` §5).
#[derive(Clone, Debug)]
pub struct CachedConnection {
    configuration: String,
    outcome: Result<Connection, NotConnectedReason>,
}

impl NotConnectedReason {
    /// The remote went away under an open connection (its sockets closed), as opposed to what
    /// only a new handshake checks (trust, names, credentials), which open sockets survive.
    fn drops_open_connections(&self) -> bool {
        matches!(
            self,
            NotConnectedReason::NotConfigured { .. }
                | NotConnectedReason::BadAddress { .. }
                | NotConnectedReason::Unresolvable { .. }
                | NotConnectedReason::WrongInterface { .. }
                | NotConnectedReason::RemoteUnavailable { .. }
                | NotConnectedReason::PublishAddressUnreachable { .. }
        )
    }
}

impl ElasticsearchNode {
    /// What a connection to `alias` is made with: its settings and credentials.
    fn connection_configuration(&self, alias: &str) -> String {
        let prefix = format!("cluster.remote.{alias}.");
        let settings: Vec<String> = self
            .settings
            .merged()
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        format!("{settings:?}{:?}", self.remote_credentials(alias))
    }

    /// A new connection attempt to `alias`, kept as the node's connection.
    fn connect(
        &mut self,
        alias: &str,
        world: &dyn RemoteWorld,
    ) -> Result<Connection, NotConnectedReason> {
        let outcome = self.diagnose(alias, world);
        self.connections.insert(
            alias.to_string(),
            CachedConnection {
                configuration: self.connection_configuration(alias),
                outcome: outcome.clone(),
            },
        );
        outcome
    }

    /// After a settings update or a credentials reload: the aliases whose configuration changed
    /// are connected again, the ones gone are forgotten.
    pub(crate) fn reconnect_changed(&mut self, world: &dyn RemoteWorld) {
        let merged = self.settings.merged();
        let configured: Vec<String> = aliases(&merged)
            .into_iter()
            .filter(|alias| connection_enabled(&merged, alias))
            .collect();
        self.connections
            .retain(|alias, _| configured.contains(alias));
        for alias in configured {
            let changed = self
                .connections
                .get(&alias)
                .is_none_or(|cached| cached.configuration != self.connection_configuration(&alias));
            if changed {
                // The outcome is kept as the node's connection.
                let _ = self.connect(&alias, world);
            }
        }
    }

    /// A node (re)start: every configured alias is connected anew.
    pub fn restart_connections(&mut self, world: &dyn RemoteWorld) {
        self.connections.clear();
        self.reconnect_changed(world);
    }

    /// The node's connection to `alias` as `_remote/info` reports it: the last attempt's
    /// outcome, except that an open connection closes when the remote goes away.
    fn current_connection(
        &mut self,
        alias: &str,
        world: &dyn RemoteWorld,
    ) -> Result<Connection, NotConnectedReason> {
        let configuration = self.connection_configuration(alias);
        let cached = self
            .connections
            .get(alias)
            .filter(|c| c.configuration == configuration)
            .map(|c| c.outcome.clone());
        match cached {
            None => self.connect(alias, world),
            Some(Ok(open)) => match self.diagnose(alias, world) {
                Err(gone) if gone.drops_open_connections() => {
                    self.connections.insert(
                        alias.to_string(),
                        CachedConnection {
                            configuration,
                            outcome: Err(gone.clone()),
                        },
                    );
                    Err(gone)
                }
                _ => Ok(open),
            },
            Some(failed) => failed,
        }
    }

    /// `cluster.remote.<alias>.credentials` in the keystore (API-key model).
    fn remote_credentials(&self, alias: &str) -> Option<&str> {
        self.keystore
            .get(&format!("cluster.remote.{alias}.credentials"))
            .map(String::as_str)
    }

    /// True when the keystore holds `cluster.remote.<alias>.credentials` (API-key model).
    pub fn has_remote_credentials(&self, alias: &str) -> bool {
        self.remote_credentials(alias).is_some()
    }

    /// Why `alias` is (not) connected. Pure: reads this node and the world, changes nothing.
    pub fn diagnose(
        &self,
        alias: &str,
        world: &dyn RemoteWorld,
    ) -> Result<Connection, NotConnectedReason> {
        let merged = self.settings.merged();
        if !connection_enabled(&merged, alias) {
            return Err(NotConnectedReason::NotConfigured {
                alias: alias.to_string(),
            });
        }
        let cfg = RemoteConfig::from_settings(&merged, alias, true);
        let credentials = self.remote_credentials(alias);
        let addresses = match cfg.mode {
            Mode::Proxy => vec![cfg.proxy_address.clone()],
            Mode::Sniff => cfg.seeds.clone(),
        };
        let mut first_err = None;
        for address in addresses {
            match self.try_address(&cfg, &address, credentials, world) {
                Ok(c) => return Ok(c),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or(NotConnectedReason::NotConfigured {
            alias: alias.to_string(),
        }))
    }

    /// The TLS-level checks for one hop: interface, CA trust, hostname (API-key model only).
    /// `verify_names` are tried in order, as JSSE's `X509TrustManagerImpl.checkIdentity` does:
    /// the SNI name (`server_name`) first, then the address host; the certificate passes when
    /// it carries one of them. The error names the first.
    fn check_endpoint(
        &self,
        address: &str,
        verify_names: &[String],
        expected: Interface,
        world: &dyn RemoteWorld,
    ) -> Result<Endpoint, NotConnectedReason> {
        let ep = world.resolve(&self.id.location(), address).ok_or_else(|| {
            NotConnectedReason::Unresolvable {
                address: address.to_string(),
            }
        })?;
        if ep.interface != expected {
            return Err(NotConnectedReason::WrongInterface {
                address: address.to_string(),
                expected,
                found: ep.interface,
            });
        }
        if !world
            .trusted_cas(&self.id, expected)
            .contains(&ep.ca_fingerprint)
        {
            return Err(NotConnectedReason::UntrustedCertificate {
                address: address.to_string(),
                interface: expected,
                ca_fingerprint: ep.ca_fingerprint.clone(),
            });
        }
        if let Some(name) = verify_names.first()
            && !verify_names
                .iter()
                .any(|v| ep.tls_names.iter().any(|n| n == v))
        {
            return Err(NotConnectedReason::HostnameMismatch {
                address: address.to_string(),
                name: name.clone(),
                cert_names: ep.tls_names.clone(),
            });
        }
        Ok(ep)
    }

    fn try_address(
        &self,
        cfg: &RemoteConfig,
        address: &str,
        credentials: Option<&str>,
        world: &dyn RemoteWorld,
    ) -> Result<Connection, NotConnectedReason> {
        let (host, _) = parse_host_port(address).map_err(|_| NotConnectedReason::BadAddress {
            address: address.to_string(),
        })?;
        let api_key_model = credentials.is_some();
        let expected = if api_key_model {
            Interface::RemoteClusterServer
        } else {
            Interface::Transport
        };
        // remote_cluster_client uses verification_mode full; ECK's transport uses certificate.
        // Elasticsearch sends `server_name` as SNI and the address host as the peer host
        // (`SecurityNetty4Transport.ClientSslHandlerInitializer.connect`); the JDK checks the SNI
        // name first and fails over to the peer host (`X509TrustManagerImpl.checkIdentity`).
        let verify_names = if !api_key_model {
            Vec::new()
        } else if cfg.mode == Mode::Proxy && !cfg.server_name.is_empty() && cfg.server_name != host
        {
            vec![cfg.server_name.clone(), host]
        } else {
            vec![host]
        };
        let ep = self.check_endpoint(address, &verify_names, expected, world)?;

        let mut outcome: Option<Result<Connection, NotConnectedReason>> = None;
        let mut check = |remote: &ElasticsearchNode| {
            outcome = Some(self.check_remote(cfg, address, &ep, remote, credentials, world));
        };
        if ep.target == self.id {
            check(self);
        } else {
            world.with_node(&ep.target, &mut check);
        }
        outcome.unwrap_or_else(|| {
            Err(NotConnectedReason::RemoteUnavailable {
                address: address.to_string(),
                remote: ep.target.clone(),
            })
        })
    }

    fn check_remote(
        &self,
        cfg: &RemoteConfig,
        address: &str,
        ep: &Endpoint,
        remote: &ElasticsearchNode,
        credentials: Option<&str>,
        world: &dyn RemoteWorld,
    ) -> Result<Connection, NotConnectedReason> {
        if !versions_compatible(self.version, remote.version) {
            return Err(NotConnectedReason::IncompatibleVersion {
                local: self.version.to_string(),
                remote: remote.version.to_string(),
            });
        }
        match credentials {
            Some(encoded) => {
                remote
                    .api_keys
                    .authenticate(encoded, ApiKeyType::CrossCluster, world.now_millis())
                    .map_err(|refusal| match refusal {
                        KeyRefusal::Malformed => NotConnectedReason::MalformedCredentials {
                            alias: cfg.alias.clone(),
                        },
                        KeyRefusal::Unknown(id) => NotConnectedReason::UnknownApiKey { id },
                        KeyRefusal::WrongType(id, _) => {
                            NotConnectedReason::NotCrossClusterKey { id }
                        }
                        KeyRefusal::Invalidated(id) => NotConnectedReason::ApiKeyInvalidated { id },
                        KeyRefusal::Expired(id) => NotConnectedReason::ApiKeyExpired { id },
                    })?;
            }
            None => {
                // Mutual TLS on the transport: the local node checks the remote's certificate
                // (its CA in `check_endpoint`, its name here), then the remote checks the local's.
                let restricted = |by: &EsId, names: &[String]| {
                    let restrictions = world.transport_trust_restrictions(by);
                    names.iter().find(|n| !restrictions.accepts(n)).map(|n| {
                        NotConnectedReason::TrustRestricted {
                            address: address.to_string(),
                            rejected_by: by.clone(),
                            node_name: n.clone(),
                        }
                    })
                };
                if let Some(e) = restricted(&self.id, &remote.transport_node_names) {
                    return Err(e);
                }
                let remote_trust = world.trusted_cas(&remote.id, Interface::Transport);
                if !remote_trust.contains(&self.transport_ca_fingerprint) {
                    return Err(NotConnectedReason::RemoteDoesNotTrustLocal {
                        address: address.to_string(),
                        local_ca_fingerprint: self.transport_ca_fingerprint.clone(),
                    });
                }
                if let Some(e) = restricted(&remote.id, &self.transport_node_names) {
                    return Err(e);
                }
            }
        }
        let mut remote_nodes = remote.node_names.len().max(1);
        if cfg.mode == Mode::Sniff {
            let publish = match ep.interface {
                Interface::RemoteClusterServer => &remote.publish_addresses.remote_cluster,
                _ => &remote.publish_addresses.transport,
            };
            if !publish.is_empty() {
                let mut reached = 0;
                let mut first_err = None;
                for pa in publish {
                    let names: Vec<String> = credentials
                        .and_then(|_| parse_host_port(pa).ok().map(|(h, _)| h))
                        .into_iter()
                        .collect();
                    match self.check_endpoint(pa, &names, ep.interface, world) {
                        Ok(e) if e.target == ep.target => reached += 1,
                        Ok(_) => {
                            first_err.get_or_insert(
                                NotConnectedReason::PublishAddressUnreachable {
                                    address: pa.clone(),
                                },
                            );
                        }
                        Err(e) => {
                            first_err.get_or_insert(match e {
                                NotConnectedReason::Unresolvable { address } => {
                                    NotConnectedReason::PublishAddressUnreachable { address }
                                }
                                other => other,
                            });
                        }
                    }
                }
                if reached == 0 {
                    return Err(first_err.expect("publish list is not empty"));
                }
                remote_nodes = reached;
            }
        }
        Ok(Connection {
            target: ep.target.clone(),
            remote_nodes,
        })
    }

    /// `GET /_resolve/cluster/<expression>` body (`TransportResolveClusterAction`): for each
    /// `alias:pattern` a connection attempt now, `connected` and `skip_unavailable`, the remote's
    /// `version` when it answered (8.13+), and `error` when it answered but refused the
    /// credentials (a security error leaves `connected: true`); a transport failure is
    /// `connected: false` without `error`. A part without `:` is the local cluster, `(local)`.
    /// Indices are not simulated: `matching_indices` is left out. An alias that is not
    /// configured is 404 `no_such_remote_cluster_exception` (the audit marks it unconfirmed).
    pub fn resolve_cluster(
        &mut self,
        expression: &str,
        world: &dyn RemoteWorld,
    ) -> Result<Value, EsError> {
        let merged = self.settings.merged();
        let version_of = |v: EsVersion| {
            json!({
                "number": v.to_string(),
                "build_flavor": "default",
                "minimum_wire_compatibility_version": v.wire_compat(),
                "minimum_index_compatibility_version": v.index_compat(),
            })
        };
        let mut out = Map::new();
        for part in expression.split(',').filter(|p| !p.is_empty()) {
            let Some((alias, _)) = part.split_once(':') else {
                out.insert(
                    "(local)".into(),
                    json!({"connected": true, "skip_unavailable": false, "version": version_of(self.version)}),
                );
                continue;
            };
            if !connection_enabled(&merged, alias) {
                return Err(EsError::new(
                    404,
                    "no_such_remote_cluster_exception",
                    format!("no such remote cluster: [{alias}]"),
                ));
            }
            let cfg = RemoteConfig::from_settings(
                &merged,
                alias,
                self.version.default_skip_unavailable(),
            );
            let mut m = Map::new();
            match self.resolve_connection(alias, world) {
                Ok(connection) => {
                    m.insert("connected".into(), json!(true));
                    m.insert("skip_unavailable".into(), json!(cfg.skip_unavailable));
                    let mut version = None;
                    world.with_node(&connection.target, &mut |n| version = Some(n.version));
                    if let Some(v) = version.filter(|v| v.at_least(8, 13, 0)) {
                        m.insert("version".into(), version_of(v));
                    }
                }
                Err(reason) if reason.is_security_error() => {
                    m.insert("connected".into(), json!(true));
                    m.insert("skip_unavailable".into(), json!(cfg.skip_unavailable));
                    m.insert("error".into(), json!(reason.to_string()));
                }
                Err(_) => {
                    m.insert("connected".into(), json!(false));
                    m.insert("skip_unavailable".into(), json!(cfg.skip_unavailable));
                }
            }
            out.insert(alias.to_string(), Value::Object(m));
        }
        Ok(Value::Object(out))
    }

    /// A cross-cluster request on `alias` (`_resolve/cluster`, `_resolve/index`): a failed or
    /// missing connection is attempted again; an open one is used, its credentials checked on
    /// this request (a refusal leaves the connection open), its trust not checked again.
    fn resolve_connection(
        &mut self,
        alias: &str,
        world: &dyn RemoteWorld,
    ) -> Result<Connection, NotConnectedReason> {
        let Some(open) = self.open_connection(alias) else {
            return self.connect(alias, world);
        };
        match self.diagnose(alias, world) {
            Err(refused) if refused.is_security_error() => Err(refused),
            Err(gone) if gone.drops_open_connections() => self.connect(alias, world),
            // Trust and names are checked by a handshake, which an open connection is past.
            _ => Ok(open),
        }
    }

    /// The node's open connection to `alias`, made with the alias's current configuration.
    fn open_connection(&self, alias: &str) -> Option<Connection> {
        let configuration = self.connection_configuration(alias);
        self.connections
            .get(alias)
            .filter(|c| c.configuration == configuration)
            .and_then(|c| c.outcome.clone().ok())
    }

    /// `GET /_resolve/index/<expression>`: a cross-cluster request, so each remote alias named
    /// is connected again when its connection is not open (no indices are simulated: the lists
    /// are empty). A remote that cannot be reached fails the request unless it is
    /// `skip_unavailable`.
    pub fn resolve_index(
        &mut self,
        expression: &str,
        world: &dyn RemoteWorld,
    ) -> Result<Value, EsError> {
        let merged = self.settings.merged();
        for part in expression.split(',') {
            let Some((alias, _)) = part.split_once(':') else {
                continue;
            };
            if !connection_enabled(&merged, alias) {
                return Err(EsError::new(
                    404,
                    "no_such_remote_cluster_exception",
                    format!("no such remote cluster: [{alias}]"),
                ));
            }
            let skip = RemoteConfig::from_settings(
                &merged,
                alias,
                self.version.default_skip_unavailable(),
            )
            .skip_unavailable;
            if let Err(reason) = self.resolve_connection(alias, world)
                && !skip
            {
                return Err(EsError::new(
                    500,
                    "connect_transport_exception",
                    format!("[{alias}] {reason}"),
                ));
            }
        }
        Ok(json!({"indices": [], "aliases": [], "data_streams": []}))
    }

    /// `GET /_remote/info` body.
    pub fn remote_info(&mut self, world: &dyn RemoteWorld) -> Value {
        let merged = self.settings.merged();
        let mut out = Map::new();
        for alias in aliases(&merged) {
            if !connection_enabled(&merged, &alias) {
                continue;
            }
            let cfg = RemoteConfig::from_settings(
                &merged,
                &alias,
                self.version.default_skip_unavailable(),
            );
            let diag = self.current_connection(&alias, world);
            let connected = diag.is_ok();
            let mut m = Map::new();
            m.insert("connected".into(), json!(connected));
            m.insert("mode".into(), json!(cfg.mode.as_str()));
            match cfg.mode {
                Mode::Sniff => {
                    let nodes = match &diag {
                        Ok(c) => c.remote_nodes.min(cfg.node_connections as usize),
                        Err(_) => 0,
                    };
                    m.insert("seeds".into(), json!(cfg.seeds));
                    m.insert("num_nodes_connected".into(), json!(nodes));
                    m.insert(
                        "max_connections_per_cluster".into(),
                        json!(cfg.node_connections),
                    );
                }
                Mode::Proxy => {
                    m.insert("proxy_address".into(), json!(cfg.proxy_address));
                    m.insert("server_name".into(), json!(cfg.server_name));
                    m.insert(
                        "num_proxy_sockets_connected".into(),
                        json!(if connected {
                            cfg.proxy_socket_connections
                        } else {
                            0
                        }),
                    );
                    m.insert(
                        "max_proxy_socket_connections".into(),
                        json!(cfg.proxy_socket_connections),
                    );
                }
            }
            m.insert("initial_connect_timeout".into(), json!("30s"));
            m.insert("skip_unavailable".into(), json!(cfg.skip_unavailable));
            if self.has_remote_credentials(&alias) {
                m.insert("cluster_credentials".into(), json!("::es_redacted::"));
            }
            out.insert(alias, Value::Object(m));
        }
        Value::Object(out)
    }
}
