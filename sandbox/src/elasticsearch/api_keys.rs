//! API keys: cross-cluster keys (`/_security/cross_cluster/api_key`) and REST keys
//! (`/_security/api_key`), with the request parsing, validation messages and response shapes of
//! Elasticsearch's security plugin.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

use super::error::{EsError, token_name};
use super::settings::{parse_time_value, time_value_error};
use super::{EsVersion, flag, param};

/// `rest` or `cross_cluster`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiKeyType {
    Rest,
    CrossCluster,
}

impl ApiKeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKeyType::Rest => "rest",
            ApiKeyType::CrossCluster => "cross_cluster",
        }
    }
}

/// One stored API key.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub kind: ApiKeyType,
    /// The secret part (`api_key` in the create response).
    pub secret: String,
    /// Epoch milliseconds.
    pub creation: i64,
    pub expiration: Option<i64>,
    pub invalidated: bool,
    pub invalidation: Option<i64>,
    pub username: String,
    pub realm: String,
    pub metadata: Map<String, Value>,
    /// REST keys: the role descriptors as sent. Cross-cluster keys: built from `access`.
    pub role_descriptors: Map<String, Value>,
    /// Cross-cluster keys: normalised `{"search":[...],"replication":[...]}`.
    pub access: Option<Value>,
    pub certificate_identity: Option<String>,
}

impl ApiKey {
    /// A new key of `kind` owned by `caller`, created `now`, with a fresh id and secret and
    /// nothing else set.
    fn new(kind: ApiKeyType, name: String, caller: &Caller, now: i64) -> ApiKey {
        ApiKey {
            id: new_id(),
            name,
            kind,
            secret: new_secret(),
            creation: now,
            expiration: None,
            invalidated: false,
            invalidation: None,
            username: caller.owner().to_string(),
            realm: "reserved".into(),
            metadata: Map::new(),
            role_descriptors: Map::new(),
            access: None,
            certificate_identity: None,
        }
    }

    /// Active: not invalidated and not expired at `now`.
    pub fn is_active(&self, now: i64) -> bool {
        !self.invalidated && self.expiration.is_none_or(|e| e > now)
    }

    /// What both update endpoints change besides the key's own fields.
    fn set_metadata_and_expiration(
        &mut self,
        metadata: Option<Map<String, Value>>,
        expiration: Option<i64>,
    ) {
        if let Some(md) = metadata {
            self.metadata = md;
        }
        if let Some(e) = expiration {
            self.expiration = Some(e);
        }
    }

    /// `base64(id:api_key)`, the value of `encoded` and of `cluster.remote.<alias>.credentials`.
    pub fn encoded(&self) -> String {
        STANDARD.encode(format!("{}:{}", self.id, self.secret))
    }

    /// Rendered as in `GET /_security/api_key` (`ApiKey.innerToXContent` field order).
    pub fn to_json(&self, with_limited_by: bool) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        m.insert("type".into(), json!(self.kind.as_str()));
        m.insert("creation".into(), json!(self.creation));
        if let Some(e) = self.expiration {
            m.insert("expiration".into(), json!(e));
        }
        m.insert("invalidated".into(), json!(self.invalidated));
        if let Some(i) = self.invalidation {
            m.insert("invalidation".into(), json!(i));
        }
        m.insert("username".into(), json!(self.username));
        m.insert("realm".into(), json!(self.realm));
        m.insert("realm_type".into(), json!(self.realm));
        m.insert("metadata".into(), Value::Object(self.metadata.clone()));
        m.insert(
            "role_descriptors".into(),
            Value::Object(self.role_descriptors.clone()),
        );
        if let Some(a) = &self.access {
            m.insert("access".into(), a.clone());
        }
        if let Some(c) = &self.certificate_identity {
            m.insert("certificate_identity".into(), json!(c));
        }
        if with_limited_by && self.kind == ApiKeyType::Rest {
            m.insert(
                "limited_by".into(),
                json!([{"superuser": {"cluster":["all"],"indices":[{"names":["*"],"privileges":["all"],
                    "allow_restricted_indices":true}],"applications":[{"application":"*","privileges":["*"],
                    "resources":["*"]}],"run_as":["*"],"metadata":{"_reserved":true},"transient_metadata":{}}}]),
            );
        }
        Value::Object(m)
    }
}

/// Decode `base64(id:secret)`, verbatim: a keystore value is stored byte for byte
/// (`elasticsearch-keystore add-file`), and Java's basic Base64 decoder refuses any character
/// outside the alphabet, a trailing newline included.
pub fn decode_credentials(encoded: &str) -> Option<(String, String)> {
    let bytes = STANDARD.decode(encoded).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

fn random_base64(bytes: usize) -> String {
    let mut raw = Vec::with_capacity(bytes);
    while raw.len() < bytes {
        raw.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    raw.truncate(bytes);
    URL_SAFE_NO_PAD.encode(raw)
}

/// 20-character id, as `UUIDs.base64UUID()`.
pub fn new_id() -> String {
    random_base64(15)
}

/// 22-character secret, as `UUIDs.randomBase64UUIDSecureString()`.
fn new_secret() -> String {
    random_base64(16)
}

/// The keys of one cluster, in creation order.
#[derive(Clone, Debug, Default)]
pub struct ApiKeyStore {
    pub keys: Vec<ApiKey>,
}

/// Name matching of `GET`/`DELETE /_security/api_key`: `*` is all, a trailing `*` is a prefix,
/// anything else is exact.
pub fn name_matches(pattern: &str, name: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// Why credentials presented as `base64(id:secret)` do not name an active key of the expected
/// type; each caller words it its own way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyRefusal {
    Malformed,
    /// No key with that id, or the secret does not match.
    Unknown(String),
    WrongType(String, ApiKeyType),
    Invalidated(String),
    Expired(String),
}

/// The request body of parser `parser`: an object with only `allowed` fields.
fn request_object(
    body: Option<&Value>,
    parser: &str,
    allowed: &[&str],
) -> Result<Map<String, Value>, EsError> {
    let Some(Value::Object(m)) = body else {
        return Err(match body {
            None => EsError::body_required(),
            Some(_) => EsError::parse(format!("[{parser}] Expected START_OBJECT")),
        });
    };
    reject_unknown(m, parser, allowed)?;
    Ok(m.clone())
}

/// `x_content_parse_exception` "`<what>` doesn't support values of type: `<token>`".
fn wrong_type(what: &str, v: &Value) -> EsError {
    EsError::parse(format!(
        "{what} doesn't support values of type: {}",
        token_name(v)
    ))
}

fn reject_unknown(m: &Map<String, Value>, parser: &str, allowed: &[&str]) -> Result<(), EsError> {
    for k in m.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(EsError::parse(format!("[{parser}] unknown field [{k}]")));
        }
    }
    Ok(())
}

fn parse_metadata(v: Option<&Value>) -> Result<Option<Map<String, Value>>, EsError> {
    match v {
        None => Ok(None),
        Some(Value::Object(m)) => {
            if m.keys().any(|k| k.starts_with('_')) {
                return Err(EsError::validation(&[
                    "API key metadata keys may not start with [_]".to_string(),
                ]));
            }
            Ok(Some(m.clone()))
        }
        Some(other) => Err(wrong_type("metadata", other)),
    }
}

fn parse_expiration(v: Option<&Value>, now: i64) -> Result<Option<i64>, EsError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => match parse_time_value(s) {
            Some(ms) => Ok(Some(now + ms as i64)),
            None => Err(EsError::new(
                400,
                "parse_exception",
                time_value_error("expiration", s),
            )),
        },
        Some(other) => Err(wrong_type("expiration", other)),
    }
}

/// The longest name Elasticsearch accepts, in UTF-16 code units (Java's `String.length()`).
pub const API_KEY_NAME_MAX: usize = 256;

/// The name checks of `AbstractCreateApiKeyRequest.validate()` (elastic/elasticsearch
/// `x-pack/plugin/core/.../action/apikey/AbstractCreateApiKeyRequest.java`, commit 0f97306a):
/// every failed check is listed, in its order.
fn validate_name(name: &str) -> Result<(), EsError> {
    let mut messages = Vec::new();
    if name.is_empty() {
        messages.push("api key name is required");
    } else {
        if name.encode_utf16().count() > API_KEY_NAME_MAX {
            messages.push("api key name may not be more than 256 characters long");
        }
        if name != name.trim() {
            messages.push("api key name may not begin or end with whitespace");
        }
        if name.starts_with('_') {
            messages.push("api key name may not begin with an underscore");
        }
    }
    if messages.is_empty() {
        Ok(())
    } else {
        let messages: Vec<String> = messages.into_iter().map(str::to_string).collect();
        Err(EsError::validation(&messages))
    }
}

/// One entry of `access.search` / `access.replication`, normalised for storage and display.
fn parse_access_entry(v: &Value, field: &str) -> Result<Map<String, Value>, EsError> {
    let Value::Object(m) = v else {
        return Err(wrong_type(&format!("[{field}]"), v));
    };
    reject_unknown(
        m,
        field,
        &[
            "names",
            "query",
            "field_security",
            "allow_restricted_indices",
        ],
    )?;
    let names = match m.get("names") {
        None => return Err(EsError::illegal_argument("Required [names]")),
        Some(Value::String(s)) => vec![Value::String(s.clone())],
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => a.clone(),
        Some(other) => return Err(wrong_type(&format!("[{field}] names"), other)),
    };
    let mut out = Map::new();
    out.insert("names".into(), Value::Array(names));
    if let Some(fs) = m.get("field_security") {
        out.insert("field_security".into(), fs.clone());
    }
    if let Some(q) = m.get("query") {
        // Role descriptors keep the query as a string.
        let q = match q {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.insert("query".into(), Value::String(q));
    }
    let ari = m
        .get("allow_restricted_indices")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    out.insert("allow_restricted_indices".into(), Value::Bool(ari));
    Ok(out)
}

/// `search`/`replication`: an array, or a single object taken as a one-element array.
fn parse_access_list(v: Option<&Value>, field: &str) -> Result<Vec<Map<String, Value>>, EsError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(|i| parse_access_entry(i, field)).collect(),
        Some(obj @ Value::Object(_)) => Ok(vec![parse_access_entry(obj, field)?]),
        Some(other) => Err(wrong_type(
            &format!("[cross_cluster_api_key_request_access] {field}"),
            other,
        )),
    }
}

/// Parse and validate `access` (`CrossClusterApiKeyRoleDescriptorBuilder`), returning the stored
/// access and the role descriptors.
fn parse_access(v: &Value, version: EsVersion) -> Result<(Value, Map<String, Value>), EsError> {
    let Value::Object(m) = v else {
        return Err(wrong_type("[cross_cluster_api_key_request] access", v));
    };
    reject_unknown(
        m,
        "cross_cluster_api_key_request_access",
        &["search", "replication"],
    )?;
    let search = parse_access_list(m.get("search"), "search")?;
    let replication = parse_access_list(m.get("replication"), "replication")?;
    if search.is_empty() && replication.is_empty() {
        return Err(EsError::illegal_argument(
            "must specify non-empty access for either [search] or [replication]",
        ));
    }
    let dls_fls =
        |e: &Map<String, Value>| e.contains_key("query") || e.contains_key("field_security");
    if replication.iter().any(dls_fls) {
        return Err(EsError::illegal_argument(
            "replication does not support document or field level security",
        ));
    }
    if version.at_least(8, 14, 0) && !replication.is_empty() && search.iter().any(dls_fls) {
        return Err(EsError::illegal_argument(
            "search does not support document or field level security if replication is assigned",
        ));
    }

    let mut cluster = Vec::new();
    let mut indices = Vec::new();
    if !search.is_empty() {
        cluster.push(json!("cross_cluster_search"));
        if version.at_least(8, 14, 0) {
            cluster.push(json!("monitor_enrich"));
        }
    }
    if !replication.is_empty() {
        cluster.push(json!("cross_cluster_replication"));
    }
    for e in &search {
        indices.push(indices_privileges(
            e,
            &["read", "read_cross_cluster", "view_index_metadata"],
        ));
    }
    for e in &replication {
        indices.push(indices_privileges(
            e,
            &[
                "cross_cluster_replication",
                "cross_cluster_replication_internal",
            ],
        ));
    }
    let descriptor = json!({
        "cluster": cluster,
        "indices": indices,
        "applications": [],
        "run_as": [],
        "metadata": {},
        "transient_metadata": {"enabled": true}
    });
    let mut access = Map::new();
    if !search.is_empty() {
        access.insert(
            "search".into(),
            Value::Array(search.into_iter().map(Value::Object).collect()),
        );
    }
    if !replication.is_empty() {
        access.insert(
            "replication".into(),
            Value::Array(replication.into_iter().map(Value::Object).collect()),
        );
    }
    let mut rd = Map::new();
    rd.insert("cross_cluster".into(), descriptor);
    Ok((Value::Object(access), rd))
}

fn indices_privileges(entry: &Map<String, Value>, privileges: &[&str]) -> Value {
    let mut m = Map::new();
    m.insert("names".into(), entry["names"].clone());
    m.insert("privileges".into(), json!(privileges));
    for k in ["field_security", "query"] {
        if let Some(v) = entry.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    m.insert(
        "allow_restricted_indices".into(),
        entry["allow_restricted_indices"].clone(),
    );
    Value::Object(m)
}

/// Who is calling, for ownership and the API-key restrictions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    User(String),
    ApiKey { id: String, owner: String },
}

impl Caller {
    pub fn owner(&self) -> &str {
        match self {
            Caller::User(u) => u,
            Caller::ApiKey { owner, .. } => owner,
        }
    }
}

impl ApiKeyStore {
    pub fn get(&self, id: &str) -> Option<&ApiKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// The key that `encoded` (`base64(id:secret)`) names, if it is an active key of type
    /// `expected`; checked in Elasticsearch's order (the secret, the type, invalidation,
    /// expiry).
    pub(crate) fn authenticate(
        &self,
        encoded: &str,
        expected: ApiKeyType,
        now: i64,
    ) -> Result<&ApiKey, KeyRefusal> {
        let (id, secret) = decode_credentials(encoded).ok_or(KeyRefusal::Malformed)?;
        let Some(key) = self.get(&id).filter(|k| k.secret == secret) else {
            return Err(KeyRefusal::Unknown(id));
        };
        if key.kind != expected {
            return Err(KeyRefusal::WrongType(id, key.kind));
        }
        if key.invalidated {
            return Err(KeyRefusal::Invalidated(id));
        }
        if !key.is_active(now) {
            return Err(KeyRefusal::Expired(id));
        }
        Ok(key)
    }

    /// Stores a new key and answers as the create endpoints do.
    fn add(&mut self, key: ApiKey) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(key.id));
        m.insert("name".into(), json!(key.name));
        if let Some(e) = key.expiration {
            m.insert("expiration".into(), json!(e));
        }
        m.insert("api_key".into(), json!(key.secret));
        m.insert("encoded".into(), json!(key.encoded()));
        self.keys.push(key);
        Value::Object(m)
    }

    /// `POST /_security/cross_cluster/api_key`.
    pub fn create_cross_cluster(
        &mut self,
        caller: &Caller,
        body: Option<&Value>,
        version: EsVersion,
        now: i64,
    ) -> Result<Value, EsError> {
        if matches!(caller, Caller::ApiKey { .. }) {
            return Err(EsError::illegal_argument(
                "authentication via API key not supported: An API key cannot be used to create a cross-cluster API key",
            ));
        }
        let mut allowed = vec!["name", "access", "expiration", "metadata"];
        if version.at_least(9, 3, 0) {
            allowed.push("certificate_identity");
        }
        let m = request_object(body, "cross_cluster_api_key_request", &allowed)?;
        let name = match m.get("name") {
            None => return Err(EsError::illegal_argument("Required [name]")),
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(wrong_type("[cross_cluster_api_key_request] name", other)),
        };
        let access = match m.get("access") {
            None => return Err(EsError::illegal_argument("Required [access]")),
            Some(a) => a,
        };
        let (access, role_descriptors) = parse_access(access, version)?;
        let expiration = parse_expiration(m.get("expiration"), now)?;
        let metadata = parse_metadata(m.get("metadata"))?.unwrap_or_default();
        validate_name(&name)?;
        let certificate_identity = m
            .get("certificate_identity")
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok(self.add(ApiKey {
            expiration,
            metadata,
            role_descriptors,
            access: Some(access),
            certificate_identity,
            ..ApiKey::new(ApiKeyType::CrossCluster, name, caller, now)
        }))
    }

    /// `POST`/`PUT /_security/api_key` (a REST key).
    pub fn create_rest(
        &mut self,
        caller: &Caller,
        body: Option<&Value>,
        now: i64,
    ) -> Result<Value, EsError> {
        let m = request_object(
            body,
            "api_key_request",
            &["name", "role_descriptors", "expiration", "metadata"],
        )?;
        let name = m
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        validate_name(&name)?;
        let role_descriptors = match m.get("role_descriptors") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(o)) => o.clone(),
            Some(other) => return Err(wrong_type("[api_key_request] role_descriptors", other)),
        };
        let expiration = parse_expiration(m.get("expiration"), now)?;
        let metadata = parse_metadata(m.get("metadata"))?.unwrap_or_default();
        Ok(self.add(ApiKey {
            expiration,
            metadata,
            role_descriptors,
            ..ApiKey::new(ApiKeyType::Rest, name, caller, now)
        }))
    }

    /// Checks shared by both update endpoints; returns the index of the key.
    fn updatable(
        &self,
        caller: &Caller,
        id: &str,
        expected: ApiKeyType,
        now: i64,
    ) -> Result<usize, EsError> {
        if matches!(caller, Caller::ApiKey { .. }) {
            return Err(EsError::illegal_argument(
                "authentication via API key not supported: only the owner user can update an API key",
            ));
        }
        let idx = self
            .keys
            .iter()
            .position(|k| k.id == id && k.username == caller.owner())
            .ok_or_else(|| {
                EsError::new(
                    404,
                    "resource_not_found_exception",
                    format!("no API key owned by requesting user found for ID [{id}]"),
                )
            })?;
        let key = &self.keys[idx];
        if key.kind != expected {
            return Err(EsError::illegal_argument(format!(
                "cannot update API key of type [{}] while expected type is [{}]",
                key.kind.as_str(),
                expected.as_str()
            )));
        }
        if key.invalidated {
            return Err(EsError::illegal_argument(format!(
                "cannot update invalidated API key [{id}]"
            )));
        }
        if !key.is_active(now) {
            return Err(EsError::illegal_argument(format!(
                "cannot update expired API key [{id}]"
            )));
        }
        Ok(idx)
    }

    /// The end of both update endpoints: `change` on key `id` once [`Self::updatable`]
    /// allows it, answered with whether anything changed.
    fn update(
        &mut self,
        caller: &Caller,
        id: &str,
        expected: ApiKeyType,
        now: i64,
        change: impl FnOnce(&mut ApiKey),
    ) -> Result<Value, EsError> {
        let idx = self.updatable(caller, id, expected, now)?;
        let key = &mut self.keys[idx];
        let before = key.clone();
        change(key);
        Ok(json!({"updated": *key != before}))
    }

    /// `PUT /_security/cross_cluster/api_key/{id}`.
    pub fn update_cross_cluster(
        &mut self,
        caller: &Caller,
        id: &str,
        body: Option<&Value>,
        version: EsVersion,
        now: i64,
    ) -> Result<Value, EsError> {
        let m = request_object(
            body,
            "update_cross_cluster_api_key_request",
            &["access", "metadata", "expiration"],
        )?;
        let access = match m.get("access") {
            Some(a) => Some(parse_access(a, version)?),
            None => None,
        };
        let metadata = parse_metadata(m.get("metadata"))?;
        let expiration = parse_expiration(m.get("expiration"), now)?;
        if access.is_none() && metadata.is_none() && expiration.is_none() {
            return Err(EsError::validation(&[
                "must update either [access] or [metadata] for cross-cluster API keys".to_string(),
            ]));
        }
        self.update(caller, id, ApiKeyType::CrossCluster, now, |key| {
            if let Some((a, rd)) = access {
                key.access = Some(a);
                key.role_descriptors = rd;
            }
            key.set_metadata_and_expiration(metadata, expiration);
        })
    }

    /// `PUT /_security/api_key/{id}` (REST keys only).
    pub fn update_rest(
        &mut self,
        caller: &Caller,
        id: &str,
        body: Option<&Value>,
        now: i64,
    ) -> Result<Value, EsError> {
        // The body is optional here (an update that only refreshes the key).
        let empty = json!({});
        let m = request_object(
            Some(body.unwrap_or(&empty)),
            "update_api_key_request",
            &["role_descriptors", "metadata", "expiration"],
        )?;
        let metadata = parse_metadata(m.get("metadata"))?;
        let expiration = parse_expiration(m.get("expiration"), now)?;
        self.update(caller, id, ApiKeyType::Rest, now, |key| {
            if let Some(Value::Object(rd)) = m.get("role_descriptors") {
                key.role_descriptors = rd.clone();
            }
            key.set_metadata_and_expiration(metadata, expiration);
        })
    }

    /// `GET /_security/api_key`. Returns (status, body).
    pub fn get_keys(
        &self,
        caller: &Caller,
        params: &[(String, String)],
        now: i64,
    ) -> Result<(u16, Value), EsError> {
        let p = |k: &str| param(params, k).filter(|s| !s.is_empty());
        let id = p("id");
        let name = p("name");
        let username = p("username");
        let realm = p("realm_name");
        if (id.is_some() || name.is_some()) && (username.is_some() || realm.is_some()) {
            return Err(EsError::validation(&[
                "username or realm name must not be specified when the api key id or api key name is specified"
                    .to_string(),
            ]));
        }
        let owner = flag(params, "owner");
        let active_only = flag(params, "active_only");
        let with_limited_by = flag(params, "with_limited_by");
        let keys: Vec<Value> = self
            .keys
            .iter()
            .filter(|k| id.is_none_or(|i| k.id == i))
            .filter(|k| name.is_none_or(|n| name_matches(n, &k.name)))
            .filter(|k| username.is_none_or(|u| k.username == u))
            .filter(|k| realm.is_none_or(|r| k.realm == r))
            .filter(|k| !owner || k.username == caller.owner())
            .filter(|k| !active_only || k.is_active(now))
            .map(|k| k.to_json(with_limited_by))
            .collect();
        let status = if id.is_some() && keys.is_empty() {
            404
        } else {
            200
        };
        Ok((status, json!({"api_keys": keys})))
    }

    /// `DELETE /_security/api_key`.
    pub fn invalidate(
        &mut self,
        caller: &Caller,
        body: Option<&Value>,
        now: i64,
    ) -> Result<Value, EsError> {
        let m = request_object(
            body,
            "invalidate_api_key",
            &["ids", "id", "name", "realm_name", "username", "owner"],
        )?;
        let mut ids: Option<Vec<String>> = match m.get("ids") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
            ),
            Some(other) => return Err(wrong_type("[invalidate_api_key] ids", other)),
        };
        if let Some(Value::String(id)) = m.get("id") {
            ids.get_or_insert_with(Vec::new).push(id.clone());
        }
        let s = |k: &str| m.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let name = s("name");
        let realm = s("realm_name");
        let username = s("username");
        let owner = m.get("owner").and_then(Value::as_bool).unwrap_or(false);
        let mut errors = Vec::new();
        if ids.is_none() && name.is_none() && realm.is_none() && username.is_none() && !owner {
            errors.push(
                "One of [api key id(s), api key name, username, realm name] must be specified if [owner] flag is false"
                    .to_string(),
            );
        }
        if ids.as_ref().is_some_and(Vec::is_empty) {
            errors.push("Field [ids] cannot be an empty array".to_string());
        }
        if owner && (realm.is_some() || username.is_some()) {
            errors.push(
                "neither username nor realm-name may be specified when invalidating owned API keys"
                    .to_string(),
            );
        }
        if !errors.is_empty() {
            return Err(EsError::validation(&errors));
        }
        // Invalidated keys are filtered out of the search, so a second DELETE finds nothing.
        let mut invalidated = Vec::new();
        for k in self.keys.iter_mut() {
            let selected = ids.as_ref().is_none_or(|ids| ids.contains(&k.id))
                && name.is_none_or(|n| name_matches(n, &k.name))
                && realm.is_none_or(|r| k.realm == r)
                && username.is_none_or(|u| k.username == u)
                && (!owner || k.username == caller.owner());
            if selected && !k.invalidated {
                k.invalidated = true;
                k.invalidation = Some(now);
                invalidated.push(k.id.clone());
            }
        }
        Ok(json!({
            "invalidated_api_keys": invalidated,
            "previously_invalidated_api_keys": [],
            "error_count": 0
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: EsVersion = EsVersion {
        major: 8,
        minor: 15,
        patch: 0,
    };
    fn elastic() -> Caller {
        Caller::User("elastic".into())
    }

    fn create(store: &mut ApiKeyStore, body: Value) -> Result<Value, EsError> {
        store.create_cross_cluster(&elastic(), Some(&body), V, 1_000)
    }

    #[test]
    fn create_returns_id_name_key_and_encoded() {
        let mut s = ApiKeyStore::default();
        let r = create(
            &mut s,
            json!({"name":"k1","access":{"search":[{"names":["logs-*"]}]}}),
        )
        .unwrap();
        let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "name", "api_key", "encoded"]);
        let id = r["id"].as_str().unwrap();
        let secret = r["api_key"].as_str().unwrap();
        assert_eq!(id.len(), 20);
        assert_eq!(secret.len(), 22);
        assert_eq!(
            r["encoded"].as_str().unwrap(),
            STANDARD.encode(format!("{id}:{secret}"))
        );
        assert_eq!(
            decode_credentials(r["encoded"].as_str().unwrap()),
            Some((id.to_string(), secret.to_string()))
        );
    }

    #[test]
    fn expiration_is_reported_in_millis() {
        let mut s = ApiKeyStore::default();
        let r = create(
            &mut s,
            json!({"name":"k","expiration":"1d","access":{"replication":[{"names":["a"]}]}}),
        )
        .unwrap();
        assert_eq!(r["expiration"], json!(1_000 + 86_400_000));
        let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "name", "expiration", "api_key", "encoded"]);
    }

    #[test]
    fn single_object_access_is_a_one_element_list() {
        let mut s = ApiKeyStore::default();
        create(
            &mut s,
            json!({"name":"k","access":{"search":{"names":["x"]},"replication":{"names":"y"}}}),
        )
        .unwrap();
        let k = &s.keys[0];
        assert_eq!(
            k.access,
            Some(
                json!({"search":[{"names":["x"],"allow_restricted_indices":false}],
                        "replication":[{"names":["y"],"allow_restricted_indices":false}]})
            )
        );
        assert_eq!(
            k.role_descriptors["cross_cluster"]["cluster"],
            json!([
                "cross_cluster_search",
                "monitor_enrich",
                "cross_cluster_replication"
            ])
        );
        assert_eq!(
            k.role_descriptors["cross_cluster"]["indices"][1]["privileges"],
            json!([
                "cross_cluster_replication",
                "cross_cluster_replication_internal"
            ])
        );
    }

    #[test]
    fn older_versions_lack_monitor_enrich() {
        let mut s = ApiKeyStore::default();
        s.create_cross_cluster(
            &elastic(),
            Some(&json!({"name":"k","access":{"search":[{"names":["x"]}]}})),
            EsVersion {
                major: 8,
                minor: 12,
                patch: 0,
            },
            0,
        )
        .unwrap();
        assert_eq!(
            s.keys[0].role_descriptors["cross_cluster"]["cluster"],
            json!(["cross_cluster_search"])
        );
    }

    #[test]
    fn body_validation_messages() {
        let mut s = ApiKeyStore::default();
        let cases = [
            (json!({"name":"k"}), "Required [access]"),
            (
                json!({"access":{"search":[{"names":["x"]}]}}),
                "Required [name]",
            ),
            (
                json!({"name":"k","access":null}),
                "access doesn't support values of type: VALUE_NULL",
            ),
            (
                json!({"name":"k","access":{}}),
                "must specify non-empty access for either [search] or [replication]",
            ),
            (
                json!({"name":"k","access":{"search":[]}}),
                "must specify non-empty access for either [search] or [replication]",
            ),
            (
                json!({"name":"k","access":{"replication":[{"names":["x"],"query":{"match_all":{}}}]}}),
                "replication does not support document or field level security",
            ),
            (
                json!({"name":"k","access":{"search":[{"names":["x"],"field_security":{"grant":["a"]}}],
                        "replication":[{"names":["y"]}]}}),
                "search does not support document or field level security if replication is assigned",
            ),
            (
                json!({"name":"k","metadata":{"_x":1},"access":{"search":[{"names":["x"]}]}}),
                "API key metadata keys may not start with [_]",
            ),
            (
                json!({"name":"k","access":{"search":[{}]}}),
                "Required [names]",
            ),
            (
                json!({"name":"k","bogus":1,"access":{"search":[{"names":["x"]}]}}),
                "unknown field [bogus]",
            ),
        ];
        for (body, msg) in cases {
            let e = create(&mut s, body.clone()).unwrap_err();
            assert_eq!(e.status, 400, "{body}");
            assert!(e.reason.contains(msg), "{body}: {} !~ {msg}", e.reason);
        }
        assert!(s.keys.is_empty());
        let e = s.create_cross_cluster(&elastic(), None, V, 0).unwrap_err();
        assert_eq!(e.reason, "request body is required");
    }

    #[test]
    fn api_key_callers_cannot_create_or_update() {
        let mut s = ApiKeyStore::default();
        let caller = Caller::ApiKey {
            id: "x".into(),
            owner: "elastic".into(),
        };
        let e = s
            .create_cross_cluster(
                &caller,
                Some(&json!({"name":"k","access":{"search":[{"names":["x"]}]}})),
                V,
                0,
            )
            .unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.kind, "illegal_argument_exception");
        assert_eq!(
            e.reason,
            "authentication via API key not supported: An API key cannot be used to create a cross-cluster API key"
        );
        create(
            &mut s,
            json!({"name":"k","access":{"search":[{"names":["x"]}]}}),
        )
        .unwrap();
        let id = s.keys[0].id.clone();
        let e = s
            .update_cross_cluster(&caller, &id, Some(&json!({"metadata":{}})), V, 0)
            .unwrap_err();
        assert!(
            e.reason
                .contains("only the owner user can update an API key")
        );
    }

    #[test]
    fn update_reports_changes_and_noops() {
        let mut s = ApiKeyStore::default();
        create(
            &mut s,
            json!({"name":"k","access":{"search":[{"names":["x"]}]}}),
        )
        .unwrap();
        let id = s.keys[0].id.clone();
        let upd =
            |s: &mut ApiKeyStore, b: Value| s.update_cross_cluster(&elastic(), &id, Some(&b), V, 5);
        assert_eq!(
            upd(&mut s, json!({"access":{"search":[{"names":["y"]}]}})).unwrap(),
            json!({"updated": true})
        );
        assert_eq!(
            upd(&mut s, json!({"access":{"search":[{"names":["y"]}]}})).unwrap(),
            json!({"updated": false})
        );
        assert_eq!(
            upd(&mut s, json!({"metadata":{"a":"b"}})).unwrap(),
            json!({"updated": true})
        );
        let e = upd(&mut s, json!({})).unwrap_err();
        assert!(
            e.reason
                .contains("must update either [access] or [metadata] for cross-cluster API keys")
        );
        let e = s
            .update_cross_cluster(&elastic(), &id, None, V, 5)
            .unwrap_err();
        assert_eq!(e.reason, "request body is required");
        let e = s
            .update_cross_cluster(&elastic(), "nope", Some(&json!({"metadata":{}})), V, 5)
            .unwrap_err();
        assert_eq!(e.status, 404);
        assert!(
            e.reason
                .contains("no API key owned by requesting user found")
        );
        let e = s
            .update_rest(&elastic(), &id, Some(&json!({})), 5)
            .unwrap_err();
        assert_eq!(
            e.reason,
            "cannot update API key of type [cross_cluster] while expected type is [rest]"
        );
        s.create_rest(&elastic(), Some(&json!({"name":"r"})), 5)
            .unwrap();
        let rid = s.keys[1].id.clone();
        let e = s
            .update_cross_cluster(&elastic(), &rid, Some(&json!({"metadata":{}})), V, 5)
            .unwrap_err();
        assert_eq!(
            e.reason,
            "cannot update API key of type [rest] while expected type is [cross_cluster]"
        );
    }

    #[test]
    fn get_by_id_name_wildcard_and_active_only() {
        let mut s = ApiKeyStore::default();
        for n in ["kplug-a", "kplug-b", "eck-x"] {
            create(
                &mut s,
                json!({"name":n,"access":{"search":[{"names":["x"]}]}}),
            )
            .unwrap();
        }
        let id0 = s.keys[0].id.clone();
        let get = |s: &ApiKeyStore, q: &[(&str, &str)]| {
            let params: Vec<(String, String)> = q
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            s.get_keys(&elastic(), &params, 10).unwrap()
        };
        let (st, body) = get(&s, &[("name", "kplug-*")]);
        assert_eq!(st, 200);
        assert_eq!(body["api_keys"].as_array().unwrap().len(), 2);
        let (_, body) = get(&s, &[("id", &id0)]);
        let k = &body["api_keys"][0];
        let fields: Vec<&String> = k.as_object().unwrap().keys().collect();
        assert_eq!(
            fields,
            [
                "id",
                "name",
                "type",
                "creation",
                "invalidated",
                "username",
                "realm",
                "realm_type",
                "metadata",
                "role_descriptors",
                "access"
            ]
        );
        assert_eq!(k["type"], "cross_cluster");
        let (st, body) = get(&s, &[("id", "missing")]);
        assert_eq!((st, body), (404, json!({"api_keys": []})));
        let (st, body) = get(&s, &[("name", "missing")]);
        assert_eq!((st, body), (200, json!({"api_keys": []})));
        s.invalidate(&elastic(), Some(&json!({"ids":[id0]})), 20)
            .unwrap();
        let (_, body) = get(&s, &[("name", "*"), ("active_only", "true")]);
        assert_eq!(body["api_keys"].as_array().unwrap().len(), 2);
        let (_, body) = get(&s, &[("id", &s.keys[0].id.clone())]);
        assert_eq!(body["api_keys"][0]["invalidated"], true);
        assert_eq!(body["api_keys"][0]["invalidation"], 20);
        let e = s
            .get_keys(
                &elastic(),
                &[("id".into(), "x".into()), ("username".into(), "u".into())],
                0,
            )
            .unwrap_err();
        assert_eq!(e.kind, "action_request_validation_exception");
    }

    #[test]
    fn invalidate_by_ids_and_name() {
        let mut s = ApiKeyStore::default();
        for n in ["a", "b"] {
            create(
                &mut s,
                json!({"name":n,"access":{"search":[{"names":["x"]}]}}),
            )
            .unwrap();
        }
        let id = s.keys[0].id.clone();
        let r = s
            .invalidate(&elastic(), Some(&json!({"ids":[id]})), 7)
            .unwrap();
        assert_eq!(
            r,
            json!({"invalidated_api_keys":[id],"previously_invalidated_api_keys":[],"error_count":0})
        );
        // Already invalidated keys are not found again.
        let r = s
            .invalidate(&elastic(), Some(&json!({"ids":[id]})), 8)
            .unwrap();
        assert_eq!(r["invalidated_api_keys"], json!([]));
        let r = s
            .invalidate(&elastic(), Some(&json!({"name":"b"})), 9)
            .unwrap();
        assert_eq!(r["invalidated_api_keys"], json!([s.keys[1].id]));
        let e = s.invalidate(&elastic(), Some(&json!({})), 9).unwrap_err();
        assert!(
            e.reason
                .contains("One of [api key id(s), api key name, username, realm name]")
        );
        assert!(!s.keys[0].is_active(100));
    }

    #[test]
    fn credentials_are_refused_in_elasticsearch_order() {
        let mut s = ApiKeyStore::default();
        create(
            &mut s,
            json!({"name":"k","expiration":"1s","access":{"search":[{"names":["x"]}]}}),
        )
        .unwrap();
        let key = s.keys[0].clone();
        let cc = ApiKeyType::CrossCluster;
        assert_eq!(
            s.authenticate(&key.encoded(), cc, 1_500).map(|k| &k.id),
            Ok(&key.id)
        );
        assert_eq!(
            s.authenticate("not base64", cc, 0),
            Err(KeyRefusal::Malformed)
        );
        let wrong = STANDARD.encode(format!("{}:wrong", key.id));
        assert_eq!(
            s.authenticate(&wrong, cc, 0),
            Err(KeyRefusal::Unknown(key.id.clone()))
        );
        assert_eq!(
            s.authenticate(&key.encoded(), ApiKeyType::Rest, 0),
            Err(KeyRefusal::WrongType(key.id.clone(), cc))
        );
        assert_eq!(
            s.authenticate(&key.encoded(), cc, 2_000),
            Err(KeyRefusal::Expired(key.id.clone()))
        );
        s.invalidate(&elastic(), Some(&json!({"ids":[key.id]})), 1_100)
            .unwrap();
        // Invalidation is reported before expiry.
        assert_eq!(
            s.authenticate(&key.encoded(), cc, 2_000),
            Err(KeyRefusal::Invalidated(key.id.clone()))
        );
    }

    #[test]
    fn expiry_makes_keys_inactive() {
        let mut s = ApiKeyStore::default();
        create(
            &mut s,
            json!({"name":"k","expiration":"1s","access":{"search":[{"names":["x"]}]}}),
        )
        .unwrap();
        assert!(s.keys[0].is_active(1_999));
        assert!(!s.keys[0].is_active(2_000));
    }

    #[test]
    fn name_validation() {
        let mut s = ApiKeyStore::default();
        let e = create(
            &mut s,
            json!({"name":"_x","access":{"search":[{"names":["x"]}]}}),
        )
        .unwrap_err();
        assert_eq!(
            e.reason,
            "Validation Failed: 1: api key name may not begin with an underscore;"
        );
        // 256 UTF-16 units at most, as Java counts them; every failed check is listed.
        let body = |name: String| json!({"name": name, "access": {"search": [{"names": ["x"]}]}});
        create(&mut s, body("k".repeat(256))).unwrap();
        create(&mut s, body("é".repeat(256))).unwrap();
        let e = create(&mut s, body("k".repeat(257))).unwrap_err();
        assert_eq!(
            (e.status, e.kind.as_str()),
            (400, "action_request_validation_exception")
        );
        assert_eq!(
            e.reason,
            "Validation Failed: 1: api key name may not be more than 256 characters long;"
        );
        let e = create(&mut s, body(format!("{} ", "🦀".repeat(128)))).unwrap_err();
        assert_eq!(
            e.reason,
            "Validation Failed: 1: api key name may not be more than 256 characters long;2: api key name may not begin or end with whitespace;"
        );
    }
}
