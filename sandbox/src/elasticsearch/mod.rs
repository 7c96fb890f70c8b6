//! A fake Elasticsearch: one [`ElasticsearchNode`] per simulated cluster answers the REST calls
//! `kubectl remote-cluster` makes (cluster settings, cross-cluster API keys, `_remote/info`,
//! secure-settings reload), with Elasticsearch's response shapes and error texts.
//!
//! The engine is synchronous and pure apart from the [`RemoteWorld`] it is given; [`https`]
//! serves it over TLS on any byte stream, and `crate::portforward` tunnels such streams
//! through a pod port-forward.
//!
//! Locking: [`ElasticsearchNode::handle`] takes `&mut self` and reads other nodes through
//! [`RemoteWorld::with_node`]. With several clusters, keep every node under one lock and take
//! the asking node out of the map for the duration of the call, so the world can lend the
//! others immutably:
//!
//! ```ignore
//! let mut nodes = world_state.lock().unwrap();            // HashMap<EsId, ElasticsearchNode>
//! let mut node = nodes.remove(&id).unwrap();
//! let resp = node.handle(&req, &WorldView { nodes: &nodes, /* services, CAs ... */ });
//! nodes.insert(id, node);
//! ```
//!
//! `with_node` is never called with the asking node's own id (self-links use the node itself).

mod api_keys;
mod certs;
mod error;
pub mod https;
mod logs;
mod remote;
mod settings;

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use api_keys::KeyRefusal;
pub use api_keys::{ApiKey, ApiKeyStore, ApiKeyType, Caller, decode_credentials, name_matches};
pub use certs::{EsHttpCerts, sha256_fingerprint};
pub use error::{EsError, EsErrorMore};
pub use https::{EsBackend, SharedNode, connect_http, connect_https, serve_http, serve_https};
pub use logs::connection_log;
pub use remote::{
    Connection, Endpoint, EsId, Interface, NoRemotes, NodeLocation, NotConnectedReason,
    RemoteConfig, RemoteWorld, TrustRestrictions, now_millis, subject_name_matches,
    versions_compatible,
};
pub use settings::{
    ClusterSettings, FlatSettings, Mode, SettingValue, parse_host_port, valid_alias,
};

/// An Elasticsearch version (`8.15.0`; a `-SNAPSHOT` suffix is ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct EsVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl EsVersion {
    pub fn parse(s: &str) -> Option<EsVersion> {
        let core = s.split(['-', '+']).next()?;
        let mut it = core.split('.');
        let v = EsVersion {
            major: it.next()?.parse().ok()?,
            minor: it.next().unwrap_or("0").parse().ok()?,
            patch: it.next().unwrap_or("0").parse().ok()?,
        };
        Some(v)
    }

    pub fn at_least(self, major: u32, minor: u32, patch: u32) -> bool {
        (self.major, self.minor, self.patch) >= (major, minor, patch)
    }

    /// `skip_unavailable` defaults to true from 8.15.0.
    pub fn default_skip_unavailable(self) -> bool {
        self.at_least(8, 15, 0)
    }

    pub(crate) fn wire_compat(self) -> &'static str {
        match self.major {
            9.. => "8.18.0",
            8 => "7.17.0",
            _ => "6.8.0",
        }
    }

    pub(crate) fn index_compat(self) -> &'static str {
        match self.major {
            9.. => "8.0.0",
            8 => "7.0.0",
            _ => "6.0.0-beta1",
        }
    }
}

impl fmt::Display for EsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// One HTTP request, transport-independent.
#[derive(Clone, Debug, Default)]
pub struct EsRequest {
    pub method: String,
    pub path: String,
    /// Raw query string without `?` (may be empty).
    pub query: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl EsRequest {
    /// `EsRequest::new("GET", "/_cluster/settings?flat_settings=true")`.
    pub fn new(method: &str, path_and_query: &str) -> EsRequest {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        EsRequest {
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
            ..EsRequest::default()
        }
    }

    pub fn basic(mut self, user: &str, password: &str) -> EsRequest {
        self.authorization = Some(format!(
            "Basic {}",
            STANDARD.encode(format!("{user}:{password}"))
        ));
        self
    }

    pub fn api_key(mut self, encoded: &str) -> EsRequest {
        self.authorization = Some(format!("ApiKey {encoded}"));
        self
    }

    pub fn json(mut self, body: &Value) -> EsRequest {
        self.body = serde_json::to_vec(body).expect("serialisable");
        self.content_type = Some("application/json".into());
        self
    }

    /// The URI as Elasticsearch prints it in messages (`/path?query`).
    pub fn uri(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    /// Decoded query parameters, in order.
    pub fn params(&self) -> Vec<(String, String)> {
        parse_query(&self.query)
    }
}

/// A raw query string (without `?`) as decoded `(name, value)` pairs, in order; a parameter
/// without `=` has an empty value. Shared with the API server and the port-forward.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// The media type of a `Content-Type` value: parameters dropped, trimmed, lowercase.
pub(crate) fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// `%XX` and `+` decoding of a query component.
pub fn percent_decode(s: &str) -> String {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One HTTP response: status, extra headers, JSON body (`Value::Null` means no body, as for
/// `HEAD`).
#[derive(Clone, Debug, PartialEq)]
pub struct EsResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl EsResponse {
    pub fn ok(body: Value) -> EsResponse {
        EsResponse {
            status: 200,
            headers: Vec::new(),
            body,
        }
    }

    pub fn from_error(e: &EsError) -> EsResponse {
        let mut headers = Vec::new();
        for (name, values) in &e.more.header {
            for v in values {
                headers.push((name.clone(), v.clone()));
            }
        }
        EsResponse {
            status: e.status,
            headers,
            body: e.to_body(),
        }
    }

    /// All values of a header (case-insensitive).
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Names of the Elasticsearch nodes (pods) of a cluster, with their node ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishAddresses {
    /// `<pod>.<headless-svc>.<ns>.svc:9300` for each node.
    pub transport: Vec<String>,
    /// `<pod>.<headless-svc>.<ns>.svc:9443` for each node while the remote cluster server is on.
    pub remote_cluster: Vec<String>,
}

/// The name in an ECK transport certificate (subjectAltName otherName commonName):
/// `<pod>.node.<es>.<namespace>.es.local`.
pub fn eck_transport_node_name(pod: &str, es: &str, namespace: &str) -> String {
    format!("{pod}.node.{es}.{namespace}.es.local")
}

/// The name ECK puts in a node's transport certificate given the Elasticsearch's
/// `spec.transport.tls.otherNameSuffix`: `<pod>.<suffix>` when it is set, else
/// [`eck_transport_node_name`] (ECK `certificates/transport/csr.go`, `buildCertificateCommonName`).
pub fn eck_transport_node_name_with_suffix(
    pod: &str,
    es: &str,
    namespace: &str,
    other_name_suffix: &str,
) -> String {
    if other_name_suffix.is_empty() {
        eck_transport_node_name(pod, es, namespace)
    } else {
        format!("{pod}.{other_name_suffix}")
    }
}

/// Whether the nodes of a cluster found each other and elected a master.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ClusterFormation {
    #[default]
    Formed,
    /// The nodes do not start (for example an unreadable trust restrictions file): nothing
    /// listens, the pods are not Ready.
    NodesNotStarted { reason: String },
    /// The nodes run but cannot join each other (for example trust restrictions that reject the
    /// cluster's own node certificates): no master, REST calls other than `GET /` answer 503
    /// `master_not_discovered_exception`, and the cluster cannot be anyone's remote.
    NoMaster { reason: String },
}

/// One simulated Elasticsearch cluster.
#[derive(Clone, Debug)]
pub struct ElasticsearchNode {
    pub id: EsId,
    pub cluster_name: String,
    pub cluster_uuid: String,
    pub version: EsVersion,
    /// Node (pod) names; the first answers `GET /`.
    pub node_names: Vec<String>,
    /// Node ids, parallel to `node_names`.
    pub node_ids: Vec<String>,
    /// Password of the `elastic` user; `None` when it is disabled.
    pub elastic_password: Option<String>,
    /// Other superusers (file realm), name to password.
    pub users: BTreeMap<String, String>,
    /// Secure settings currently loaded (in effect). Set it after a simulated restart.
    pub keystore: BTreeMap<String, String>,
    /// Fingerprint of the CA of this cluster's transport and remote-cluster-server certificates
    /// (checked against the remote's trust in the certificate model).
    pub transport_ca_fingerprint: String,
    /// Publish addresses, for sniff mode (empty: not checked).
    pub publish_addresses: PublishAddresses,
    /// Names in the nodes' transport certificates (subjectAltName otherName commonName), which
    /// the peer's trust restrictions are matched against. [`ElasticsearchNode::set_nodes`] sets
    /// ECK's `<pod>.node.<es>.<namespace>.es.local`.
    pub transport_node_names: Vec<String>,
    /// Whether the cluster formed; see [`ClusterFormation`].
    pub formation: ClusterFormation,
    settings: ClusterSettings,
    /// Bumped each time the file-based settings change what they reserve.
    reserved_state_version: u64,
    api_keys: ApiKeyStore,
    /// The connection to each remote alias as this node holds it (see `remote.rs`).
    connections: BTreeMap<String, remote::CachedConnection>,
}

impl ElasticsearchNode {
    /// A cluster named after its Kubernetes object, with one node `<name>-es-default-0`.
    pub fn new(id: EsId, version: &str, elastic_password: &str) -> ElasticsearchNode {
        let version = EsVersion::parse(version).unwrap_or(EsVersion {
            major: 8,
            minor: 15,
            patch: 0,
        });
        let node_name = format!("{}-es-default-0", id.name);
        let transport_name = eck_transport_node_name(&node_name, &id.name, &id.namespace);
        ElasticsearchNode {
            cluster_name: id.name.clone(),
            cluster_uuid: api_keys::new_id() + "ab",
            version,
            node_names: vec![node_name],
            node_ids: vec![api_keys::new_id() + "cd"],
            elastic_password: Some(elastic_password.to_string()),
            users: BTreeMap::new(),
            keystore: BTreeMap::new(),
            transport_ca_fingerprint: String::new(),
            publish_addresses: PublishAddresses::default(),
            transport_node_names: vec![transport_name],
            formation: ClusterFormation::Formed,
            settings: ClusterSettings::default(),
            reserved_state_version: 0,
            api_keys: ApiKeyStore::default(),
            connections: BTreeMap::new(),
            id,
        }
    }

    /// Replace the node list (names); ids are generated, and the transport certificate names
    /// follow ECK's convention (set `transport_node_names` afterwards for other conventions).
    pub fn set_nodes(&mut self, names: &[String]) {
        self.node_names = names.to_vec();
        self.node_ids = names.iter().map(|_| api_keys::new_id() + "ef").collect();
        self.transport_node_names = names
            .iter()
            .map(|n| eck_transport_node_name(n, &self.id.name, &self.id.namespace))
            .collect();
    }

    /// Whether a master was elected (the cluster formed).
    pub fn is_formed(&self) -> bool {
        self.formation == ClusterFormation::Formed
    }

    pub fn settings(&self) -> &ClusterSettings {
        &self.settings
    }

    pub fn persistent_settings(&self) -> &FlatSettings {
        &self.settings.persistent
    }

    /// What the file-based settings file (`state.cluster_settings` of ECK's
    /// `<es>-es-file-settings` Secret) sets: applied at once, without a restart, as the file
    /// watcher of Elasticsearch's operator mode does. Null values are left out.
    pub fn apply_file_settings(&mut self, cluster_settings: &Value) {
        let Ok(flat) = settings::flatten(cluster_settings) else {
            return;
        };
        let settings: FlatSettings = flat
            .into_iter()
            .filter_map(|(key, value)| Some((key, value?)))
            .collect();
        if settings.keys().ne(self.settings.reserved().iter()) {
            self.reserved_state_version += 1;
        }
        self.settings.apply_file_settings(settings);
    }

    /// `metadata.reserved_state` as `GET _cluster/state/metadata` shows it (empty before any
    /// file-based settings were applied).
    fn reserved_state(&self) -> Value {
        if self.reserved_state_version == 0 {
            return json!({});
        }
        json!({ settings::FILE_SETTINGS_NAMESPACE: {
            "version": self.reserved_state_version,
            "handlers": { "cluster_settings": { "keys": self.settings.reserved() } },
            "errors": null
        }})
    }

    /// `GET _cluster/state/metadata`: the cluster uuid and the reserved state (the rest of the
    /// real metadata, templates and indices, has nothing the sandbox models).
    fn cluster_state_metadata(&self) -> Value {
        json!({
            "cluster_name": self.cluster_name,
            "metadata": {
                "cluster_uuid": self.cluster_uuid,
                "cluster_uuid_committed": true,
                "templates": {},
                "indices": {},
                "reserved_state": self.reserved_state()
            }
        })
    }

    /// All API keys, in creation order.
    pub fn api_keys(&self) -> &[ApiKey] {
        &self.api_keys.keys
    }

    pub fn api_key(&self, id: &str) -> Option<&ApiKey> {
        self.api_keys.get(id)
    }

    /// Answer one REST request.
    pub fn handle(&mut self, req: &EsRequest, world: &dyn RemoteWorld) -> EsResponse {
        let head = req.method.eq_ignore_ascii_case("HEAD");
        let mut resp = match self.dispatch(req, world) {
            Ok(r) => r,
            Err(e) => EsResponse::from_error(&e),
        };
        resp.headers
            .push(("X-elastic-product".into(), "Elasticsearch".into()));
        if head {
            resp.body = Value::Null;
        }
        resp
    }

    fn dispatch(
        &mut self,
        req: &EsRequest,
        world: &dyn RemoteWorld,
    ) -> Result<EsResponse, EsError> {
        let method = req.method.to_ascii_uppercase();
        let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        let route = Route::find(&segments);
        let Some((route, allowed)) = route else {
            return Err(EsError::plain(
                400,
                format!(
                    "no handler found for uri [{}] and method [{}]",
                    req.uri(),
                    method
                ),
            ));
        };
        let method_ok =
            allowed.contains(&method.as_str()) || (method == "HEAD" && allowed.contains(&"GET"));
        if !method_ok {
            return Err(EsError::plain(
                405,
                format!(
                    "Incorrect HTTP method for uri [{}] and method [{}], allowed: [{}]",
                    req.uri(),
                    method,
                    allowed.join(", ")
                ),
            ));
        }
        let params = req.params();
        if let Route::ResolveCluster(_) = route {
            // `RestResolveClusterAction` arrived in 8.13, its `timeout` in 8.18.
            if !self.version.at_least(8, 13, 0) {
                return Err(EsError::plain(
                    400,
                    format!(
                        "no handler found for uri [{}] and method [{}]",
                        req.uri(),
                        method
                    ),
                ));
            }
            if !self.version.at_least(8, 18, 0) {
                let allowed: Vec<&str> = route
                    .params(&method)
                    .iter()
                    .copied()
                    .filter(|p| *p != "timeout")
                    .collect();
                check_params(req, &params, &allowed)?;
            }
        }
        check_params(req, &params, route.params(&method))?;
        let caller = self.authenticate(req, world.now_millis())?;
        if !self.is_formed() && route != Route::Root {
            // The node runs (file-realm users authenticate) but has no master.
            return Ok(master_not_discovered());
        }
        let body = parse_body(req)?;
        let flat = flag(&params, "flat_settings");
        let now = world.now_millis();
        match (route, method.as_str()) {
            (Route::Root, _) => Ok(EsResponse::ok(self.root())),
            (Route::ClusterSettings, "GET") => {
                Ok(EsResponse::ok(Value::Object(self.settings.render(flat))))
            }
            (Route::ClusterSettings, _) => {
                let body = body.ok_or_else(EsError::body_required)?;
                let applied = self.settings.update(&body)?;
                self.reconnect_changed(world);
                let mut answer = serde_json::Map::from_iter([("acknowledged".into(), json!(true))]);
                answer.extend(applied.render(flat));
                Ok(EsResponse::ok(Value::Object(answer)))
            }
            (Route::ClusterStateMetadata, _) => Ok(EsResponse::ok(filter_path(
                self.cluster_state_metadata(),
                param(&params, "filter_path"),
            ))),
            (Route::RemoteInfo, _) => Ok(EsResponse::ok(self.remote_info(world))),
            (Route::ResolveIndex(expression), _) => {
                self.resolve_index(expression, world).map(EsResponse::ok)
            }
            (Route::ResolveCluster(expression), _) => {
                self.resolve_cluster(expression, world).map(EsResponse::ok)
            }
            (Route::ReloadSecureSettings(filter), _) => {
                Ok(EsResponse::ok(self.reload_secure_settings(filter, world)))
            }
            (Route::CrossClusterApiKey, _) => self
                .api_keys
                .create_cross_cluster(&caller, body.as_ref(), self.version, now)
                .map(EsResponse::ok),
            (Route::CrossClusterApiKeyId(id), _) => self
                .api_keys
                .update_cross_cluster(&caller, id, body.as_ref(), self.version, now)
                .map(EsResponse::ok),
            (Route::ApiKey, "GET") => {
                let (status, body) = self.api_keys.get_keys(&caller, &params, now)?;
                Ok(EsResponse {
                    status,
                    headers: Vec::new(),
                    body,
                })
            }
            (Route::ApiKey, "DELETE") => self
                .api_keys
                .invalidate(&caller, body.as_ref(), now)
                .map(EsResponse::ok),
            (Route::ApiKey, _) => self
                .api_keys
                .create_rest(&caller, body.as_ref(), now)
                .map(EsResponse::ok),
            (Route::ApiKeyId(id), _) => self
                .api_keys
                .update_rest(&caller, id, body.as_ref(), now)
                .map(EsResponse::ok),
            (Route::Authenticate, _) => Ok(EsResponse::ok(self.authenticate_body(&caller))),
        }
    }

    fn root(&self) -> Value {
        let lucene = if self.version.major >= 9 {
            "10.1.0"
        } else {
            "9.11.1"
        };
        json!({
            "name": self.node_names.first().cloned().unwrap_or_default(),
            "cluster_name": self.cluster_name,
            // Before a master publishes the cluster state the node does not know the uuid.
            "cluster_uuid": if self.is_formed() { self.cluster_uuid.as_str() } else { "_na_" },
            "version": {
                "number": self.version.to_string(),
                "build_flavor": "default",
                "build_type": "docker",
                "build_hash": "0000000000000000000000000000000000000000",
                "build_date": "2024-01-01T00:00:00.000000000Z",
                "build_snapshot": false,
                "lucene_version": lucene,
                "minimum_wire_compatibility_version": self.version.wire_compat(),
                "minimum_index_compatibility_version": self.version.index_compat()
            },
            "tagline": "You Know, for Search"
        })
    }

    fn reload_secure_settings(&mut self, filter: Option<&str>, world: &dyn RemoteWorld) -> Value {
        if let Some(ks) = world.pending_keystore(&self.id) {
            self.keystore = ks;
            self.reconnect_changed(world);
        }
        let mut nodes = serde_json::Map::new();
        for (id, name) in self.node_ids.iter().zip(&self.node_names) {
            let selected = match filter {
                None => true,
                Some(f) => f.split(',').any(|p| {
                    p == "_all" || p == "_local" || p == "*" || p == id || simple(p, name)
                }),
            };
            if selected {
                nodes.insert(id.clone(), json!({"name": name}));
            }
        }
        let n = nodes.len();
        json!({
            "_nodes": {"total": n, "successful": n, "failed": 0},
            "cluster_name": self.cluster_name,
            "nodes": nodes
        })
    }

    fn authenticate_body(&self, caller: &Caller) -> Value {
        match caller {
            Caller::User(u) => {
                // `elastic` is in the reserved realm, other users in the file realm.
                let (realm, metadata) = if u == "elastic" {
                    ("reserved", json!({"_reserved": true}))
                } else {
                    ("file", json!({}))
                };
                json!({
                    "username": u,
                    "roles": ["superuser"],
                    "full_name": null,
                    "email": null,
                    "metadata": metadata,
                    "enabled": true,
                    "authentication_realm": {"name": realm, "type": realm},
                    "lookup_realm": {"name": realm, "type": realm},
                    "authentication_type": "realm"
                })
            }
            Caller::ApiKey { id, owner } => {
                let name = self.api_keys.get(id).map(|k| k.name.clone());
                json!({
                    "username": owner,
                    "roles": [],
                    "full_name": null,
                    "email": null,
                    "metadata": {},
                    "enabled": true,
                    "authentication_realm": {"name": "_es_api_key", "type": "_es_api_key"},
                    "lookup_realm": {"name": "_es_api_key", "type": "_es_api_key"},
                    "authentication_type": "api_key",
                    "api_key": {"id": id, "name": name}
                })
            }
        }
    }

    fn authenticate(&self, req: &EsRequest, now: i64) -> Result<Caller, EsError> {
        let header = req.authorization.as_deref().map(str::trim).unwrap_or("");
        let (scheme, value) = header.split_once(' ').unwrap_or((header, ""));
        let value = value.trim();
        if scheme.eq_ignore_ascii_case("basic") && !value.is_empty() {
            let decoded = STANDARD
                .decode(value)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| auth_error("invalid basic authentication header encoding"))?;
            let (user, password) = decoded
                .split_once(':')
                .ok_or_else(|| auth_error("invalid basic authentication header value"))?;
            let expected = if user == "elastic" {
                self.elastic_password.as_deref()
            } else {
                self.users.get(user).map(String::as_str)
            };
            if expected.is_some_and(|p| p == password) {
                return Ok(Caller::User(user.to_string()));
            }
            return Err(auth_error(&format!(
                "unable to authenticate user [{user}] for REST request [{}]",
                req.uri()
            )));
        }
        if scheme.eq_ignore_ascii_case("apikey") && !value.is_empty() {
            let fail = |detail: String| {
                auth_error(
                    "unable to authenticate with provided credentials and anonymous access is not allowed for this request",
                )
                .with_extra("additional_unsuccessful_credentials", json!(format!("API key: {detail}")))
            };
            let key = self
                .api_keys
                .authenticate(value, ApiKeyType::Rest, now)
                .map_err(|refusal| {
                    fail(match refusal {
                        KeyRefusal::Malformed => "invalid ApiKey value".to_string(),
                        KeyRefusal::Unknown(id) => {
                            format!("invalid credentials for API key [{id}]")
                        }
                        KeyRefusal::WrongType(id, kind) => format!(
                            "authentication expected API key type of [rest], but API key [{id}] has type [{}]",
                            kind.as_str()
                        ),
                        KeyRefusal::Invalidated(id) => {
                            format!("api key [{id}] has been invalidated")
                        }
                        KeyRefusal::Expired(_) => "api key is expired".to_string(),
                    })
                })?;
            return Ok(Caller::ApiKey {
                id: key.id.clone(),
                owner: key.username.clone(),
            });
        }
        Err(auth_error(&format!(
            "missing authentication credentials for REST request [{}]",
            req.uri()
        )))
    }
}

/// 503 `master_not_discovered_exception`, Elasticsearch's answer (after the master timeout)
/// to a request that needs the elected master, with its null reason.
pub(crate) fn master_not_discovered() -> EsResponse {
    let cause = json!({"type": "master_not_discovered_exception", "reason": null});
    EsResponse {
        status: 503,
        headers: Vec::new(),
        body: json!({
            "error": {
                "root_cause": [cause],
                "type": "master_not_discovered_exception",
                "reason": null,
            },
            "status": 503,
        }),
    }
}

fn simple(pattern: &str, s: &str) -> bool {
    settings::simple_match(pattern, s)
}

/// A 401 `security_exception` with the `WWW-Authenticate` challenges.
fn auth_error(reason: &str) -> EsError {
    let mut e = EsError::new(401, "security_exception", reason);
    e.more.header = vec![(
        "WWW-Authenticate".into(),
        vec![
            "Basic realm=\"security\", charset=\"UTF-8\"".into(),
            "Bearer realm=\"security\"".into(),
            "ApiKey".into(),
        ],
    )];
    e
}

/// The value of query parameter `name` (the last one when repeated).
fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A boolean query parameter: present without a value, or `true`.
fn flag(params: &[(String, String)], name: &str) -> bool {
    param(params, name).is_some_and(|v| v.is_empty() || v == "true")
}

/// Query parameters every endpoint accepts.
const GLOBAL_PARAMS: &[&str] = &["pretty", "human", "error_trace", "filter_path", "format"];

fn check_params(
    req: &EsRequest,
    params: &[(String, String)],
    allowed: &[&str],
) -> Result<(), EsError> {
    let mut unknown: Vec<&str> = params
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !GLOBAL_PARAMS.contains(k) && !allowed.contains(k))
        .collect();
    unknown.dedup();
    match unknown.len() {
        0 => Ok(()),
        1 => Err(EsError::illegal_argument(format!(
            "request [{}] contains unrecognized parameter: [{}]",
            req.path, unknown[0]
        ))),
        _ => Err(EsError::illegal_argument(format!(
            "request [{}] contains unrecognized parameters: {}",
            req.path,
            unknown
                .iter()
                .map(|u| format!("[{u}]"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn parse_body(req: &EsRequest) -> Result<Option<Value>, EsError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let ct = req.content_type.as_deref().unwrap_or("");
    let media = media_type(ct);
    let json_like = media == "application/json"
        || media == "application/x-ndjson"
        || media.starts_with("application/vnd.elasticsearch+json");
    if !json_like {
        let msg = if ct.is_empty() {
            "Content-Type header is missing".to_string()
        } else {
            format!("Content-Type header [{ct}] is not supported")
        };
        return Err(EsError::plain(406, msg));
    }
    serde_json::from_slice(&req.body).map(Some).map_err(|e| {
        EsError::parse(format!("[{}:{}] {}", e.line(), e.column(), e)).with_cause(EsError::new(
            400,
            "json_parse_exception",
            e.to_string(),
        ))
    })
}

/// The response filter of every REST API (`filter_path=a.b,c`): only the named paths are kept,
/// `*` matching any one name; nothing kept is `{}`.
fn filter_path(value: Value, filter: Option<&str>) -> Value {
    let Some(filter) = filter else {
        return value;
    };
    let paths: Vec<Vec<&str>> = filter.split(',').map(|p| p.split('.').collect()).collect();
    keep_paths(&value, &paths).unwrap_or_else(|| json!({}))
}

fn keep_paths(value: &Value, paths: &[Vec<&str>]) -> Option<Value> {
    if paths.iter().any(|p| p.is_empty()) {
        return Some(value.clone());
    }
    let Value::Object(map) = value else {
        return None;
    };
    let kept: serde_json::Map<String, Value> = map
        .iter()
        .filter_map(|(name, child)| {
            let rest: Vec<Vec<&str>> = paths
                .iter()
                .filter(|p| p[0] == "*" || p[0] == name)
                .map(|p| p[1..].to_vec())
                .collect();
            if rest.is_empty() {
                return None;
            }
            Some((name.clone(), keep_paths(child, &rest)?))
        })
        .collect();
    (!kept.is_empty()).then_some(Value::Object(kept))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route<'a> {
    Root,
    ClusterSettings,
    /// `GET /_cluster/state/metadata`.
    ClusterStateMetadata,
    RemoteInfo,
    /// `GET /_resolve/cluster/<expression>` (8.13+).
    ResolveCluster(&'a str),
    /// `GET /_resolve/index/<expression>` (7.9+).
    ResolveIndex(&'a str),
    ReloadSecureSettings(Option<&'a str>),
    CrossClusterApiKey,
    CrossClusterApiKeyId(&'a str),
    ApiKey,
    ApiKeyId(&'a str),
    Authenticate,
}

impl<'a> Route<'a> {
    fn find(seg: &[&'a str]) -> Option<(Route<'a>, &'static [&'static str])> {
        Some(match seg {
            [] => (Route::Root, &["GET"]),
            ["_cluster", "settings"] => (Route::ClusterSettings, &["GET", "PUT"]),
            ["_cluster", "state", "metadata"] => (Route::ClusterStateMetadata, &["GET"]),
            ["_remote", "info"] => (Route::RemoteInfo, &["GET"]),
            ["_resolve", "cluster", expression] => (Route::ResolveCluster(expression), &["GET"]),
            ["_resolve", "index", expression] => (Route::ResolveIndex(expression), &["GET"]),
            ["_nodes", "reload_secure_settings"] => (Route::ReloadSecureSettings(None), &["POST"]),
            ["_nodes", n, "reload_secure_settings"] => {
                (Route::ReloadSecureSettings(Some(n)), &["POST"])
            }
            ["_security", "cross_cluster", "api_key"] => (Route::CrossClusterApiKey, &["POST"]),
            ["_security", "cross_cluster", "api_key", id] => {
                (Route::CrossClusterApiKeyId(id), &["PUT"])
            }
            ["_security", "api_key"] => (Route::ApiKey, &["GET", "POST", "PUT", "DELETE"]),
            ["_security", "api_key", id] => (Route::ApiKeyId(id), &["PUT"]),
            ["_security", "_authenticate"] => (Route::Authenticate, &["GET"]),
            _ => return None,
        })
    }

    fn params(&self, method: &str) -> &'static [&'static str] {
        match (self, method) {
            (Route::ClusterSettings, "GET") => &[
                "flat_settings",
                "include_defaults",
                "master_timeout",
                "timeout",
                "local",
            ],
            (Route::ClusterSettings, _) => &["flat_settings", "master_timeout", "timeout"],
            (Route::ClusterStateMetadata, _) => &["local", "master_timeout", "flat_settings"],
            (Route::ReloadSecureSettings(_), _) => &["timeout"],
            (Route::ResolveIndex(_), _) => {
                &["expand_wildcards", "ignore_unavailable", "allow_no_indices"]
            }
            // `timeout` only from 8.18 (checked where the version is known).
            (Route::ResolveCluster(_), _) => &[
                "ignore_unavailable",
                "allow_no_indices",
                "expand_wildcards",
                "ignore_throttled",
                "timeout",
            ],
            (Route::CrossClusterApiKey | Route::CrossClusterApiKeyId(_), _) => &["refresh"],
            (Route::ApiKey, "GET") => &[
                "id",
                "name",
                "realm_name",
                "username",
                "owner",
                "with_limited_by",
                "active_only",
                "with_profile_uid",
            ],
            (Route::ApiKey | Route::ApiKeyId(_), _) => &["refresh"],
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests;
