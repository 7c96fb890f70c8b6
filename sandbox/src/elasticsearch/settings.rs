//! Cluster settings: `GET`/`PUT /_cluster/settings`, with the registry and validation rules of
//! Elasticsearch's `AbstractScopedSettings`, `SettingsUpdater` and the `cluster.remote.*` affix
//! settings (`RemoteClusterSettings`, `RemoteConnectionStrategy`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::error::{EsError, token_name};

/// A stored setting value. Elasticsearch keeps every scalar as a string and lists as lists of
/// strings, and renders them that way (`"skip_unavailable": "true"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettingValue {
    Str(String),
    List(Vec<String>),
}

impl SettingValue {
    pub fn to_json(&self) -> Value {
        match self {
            SettingValue::Str(s) => Value::String(s.clone()),
            SettingValue::List(l) => Value::Array(l.iter().cloned().map(Value::String).collect()),
        }
    }

    /// The value as a list: lists as they are, a string as a comma-separated list.
    pub fn as_list(&self) -> Vec<String> {
        match self {
            SettingValue::List(l) => l.clone(),
            SettingValue::Str(s) if s.trim().is_empty() => Vec::new(),
            SettingValue::Str(s) => s.split(',').map(|p| p.trim().to_string()).collect(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            SettingValue::Str(s) => Some(s),
            SettingValue::List(_) => None,
        }
    }
}

/// Flat settings of one scope, sorted by key as Elasticsearch's `Settings` are.
pub type FlatSettings = BTreeMap<String, SettingValue>;

/// Which scope a request section targets; used in error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Persistent,
    Transient,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Persistent => "persistent",
            Scope::Transient => "transient",
        }
    }
}

/// Connection mode of a remote cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Sniff,
    Proxy,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sniff => "sniff",
            Mode::Proxy => "proxy",
        }
    }
    fn upper(self) -> &'static str {
        match self {
            Mode::Sniff => "SNIFF",
            Mode::Proxy => "PROXY",
        }
    }
}

/// The per-alias settings (`cluster.remote.<alias>.<suffix>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RemoteSuffix {
    Mode,
    SkipUnavailable,
    PingSchedule,
    Compress,
    CompressionScheme,
    Seeds,
    NodeConnections,
    SniffProxy,
    ProxyAddress,
    ProxySocketConnections,
    ServerName,
    Credentials,
}

impl RemoteSuffix {
    fn parse(s: &str) -> Option<RemoteSuffix> {
        Some(match s {
            "mode" => RemoteSuffix::Mode,
            "skip_unavailable" => RemoteSuffix::SkipUnavailable,
            "transport.ping_schedule" => RemoteSuffix::PingSchedule,
            "transport.compress" => RemoteSuffix::Compress,
            "transport.compression_scheme" => RemoteSuffix::CompressionScheme,
            "seeds" => RemoteSuffix::Seeds,
            "node_connections" => RemoteSuffix::NodeConnections,
            "proxy" => RemoteSuffix::SniffProxy,
            "proxy_address" => RemoteSuffix::ProxyAddress,
            "proxy_socket_connections" => RemoteSuffix::ProxySocketConnections,
            "server_name" => RemoteSuffix::ServerName,
            "credentials" => RemoteSuffix::Credentials,
            _ => return None,
        })
    }

    /// The mode a strategy-specific setting requires (`StrategyValidator`).
    fn required_mode(self) -> Option<Mode> {
        match self {
            RemoteSuffix::Seeds | RemoteSuffix::NodeConnections | RemoteSuffix::SniffProxy => {
                Some(Mode::Sniff)
            }
            RemoteSuffix::ProxyAddress
            | RemoteSuffix::ProxySocketConnections
            | RemoteSuffix::ServerName => Some(Mode::Proxy),
            _ => None,
        }
    }

    /// Settings guarded by `RemoteConnectionEnabled`.
    fn needs_enabled_connection(self) -> bool {
        matches!(
            self,
            RemoteSuffix::SkipUnavailable
                | RemoteSuffix::PingSchedule
                | RemoteSuffix::Compress
                | RemoteSuffix::CompressionScheme
        )
    }
}

/// What the registry knows about a key.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Known {
    Remote { alias: String, suffix: RemoteSuffix },
    Dynamic,
    Static,
}

/// Node-level (static) settings that are registered, so a PUT gets "not dynamically updateable".
const STATIC_SETTINGS: &[&str] = &[
    "cluster.name",
    "node.name",
    "path.data",
    "path.logs",
    "network.host",
    "cluster.remote.initial_connect_timeout",
    "cluster.remote.connections_per_cluster",
    "cluster.remote.node.attr",
    "remote_cluster_server.enabled",
    "remote_cluster.port",
    "xpack.security.enabled",
];

/// A few common dynamic cluster settings accepted without value checks.
const DYNAMIC_SETTINGS: &[&str] = &[
    "action.auto_create_index",
    "action.destructive_requires_name",
    "cluster.max_shards_per_node",
    "cluster.routing.allocation.enable",
    "cluster.routing.rebalance.enable",
    "cluster.routing.allocation.disk.threshold_enabled",
    "cluster.routing.allocation.disk.watermark.low",
    "cluster.routing.allocation.disk.watermark.high",
    "cluster.routing.allocation.disk.watermark.flood_stage",
    "indices.recovery.max_bytes_per_sec",
    "search.default_search_timeout",
    "xpack.monitoring.collection.enabled",
];

/// Dynamic affix/group prefixes (anything below them is accepted).
const DYNAMIC_PREFIXES: &[&str] = &[
    "logger.",
    "cluster.routing.allocation.exclude.",
    "cluster.routing.allocation.include.",
    "cluster.routing.allocation.require.",
];

/// `[-\w]+` with Java's ASCII `\w`: the namespace pattern of affix settings.
pub fn valid_alias(alias: &str) -> bool {
    !alias.is_empty()
        && alias
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn lookup(key: &str) -> Option<Known> {
    if let Some(rest) = key.strip_prefix("cluster.remote.") {
        if STATIC_SETTINGS.contains(&key) {
            return Some(Known::Static);
        }
        let (alias, suffix) = rest.split_once('.')?;
        if !valid_alias(alias) {
            return None;
        }
        let suffix = RemoteSuffix::parse(suffix)?;
        return Some(Known::Remote {
            alias: alias.to_string(),
            suffix,
        });
    }
    if STATIC_SETTINGS.contains(&key) {
        return Some(Known::Static);
    }
    if DYNAMIC_SETTINGS.contains(&key)
        || DYNAMIC_PREFIXES
            .iter()
            .any(|p| key.starts_with(p) && key.len() > p.len())
    {
        return Some(Known::Dynamic);
    }
    None
}

fn is_dynamic(k: &Known) -> bool {
    match k {
        Known::Remote { suffix, .. } => *suffix != RemoteSuffix::Credentials,
        Known::Dynamic => true,
        Known::Static => false,
    }
}

/// Elasticsearch's `Regex.simpleMatch` (only `*` wildcards).
pub fn simple_match(pattern: &str, s: &str) -> bool {
    fn rec(p: &[u8], s: &[u8]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(b'*') => (0..=s.len()).any(|i| rec(&p[1..], &s[i..])),
            Some(c) => s.first() == Some(c) && rec(&p[1..], &s[1..]),
        }
    }
    rec(pattern.as_bytes(), s.as_bytes())
}

/// Flatten a settings object (`{"cluster":{"remote":{...}}}` or dotted keys, mixed freely) into
/// `(key, Some(value))` or `(key, None)` for `null` (delete). Later keys win.
pub fn flatten(value: &Value) -> Result<BTreeMap<String, Option<SettingValue>>, EsError> {
    let mut out = BTreeMap::new();
    match value {
        Value::Object(map) => flatten_into("", map, &mut out)?,
        Value::Null => {}
        other => {
            return Err(EsError::parse(format!(
                "expected an object for settings, found [{}]",
                token_name(other)
            )));
        }
    }
    Ok(out)
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn flatten_into(
    prefix: &str,
    map: &Map<String, Value>,
    out: &mut BTreeMap<String, Option<SettingValue>>,
) -> Result<(), EsError> {
    for (k, v) in map {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Null => {
                out.insert(key, None);
            }
            Value::Object(inner) => flatten_into(&key, inner, out)?,
            Value::Array(items) => {
                let mut list = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::Object(inner) => {
                            flatten_into(&format!("{key}.{i}"), inner, out)?;
                        }
                        other => match scalar_string(other) {
                            Some(s) => list.push(s),
                            None => {
                                return Err(EsError::parse(format!(
                                    "unexpected value in array for setting [{key}]: [{}]",
                                    token_name(other)
                                )));
                            }
                        },
                    }
                }
                if items.iter().all(|i| !i.is_object()) {
                    out.insert(key, Some(SettingValue::List(list)));
                }
            }
            other => {
                out.insert(
                    key,
                    Some(SettingValue::Str(scalar_string(other).unwrap_or_default())),
                );
            }
        }
    }
    Ok(())
}

/// Render flat settings nested (`{"cluster":{"remote":{...}}}`), as `GET _cluster/settings` does
/// without `flat_settings`.
pub fn render(settings: &FlatSettings, flat: bool) -> Value {
    let mut root = Map::new();
    for (key, value) in settings {
        if flat {
            root.insert(key.clone(), value.to_json());
            continue;
        }
        insert_nested(&mut root, key, value.to_json());
    }
    Value::Object(root)
}

fn insert_nested(root: &mut Map<String, Value>, key: &str, value: Value) {
    let parts: Vec<&str> = key.split('.').collect();
    let mut node = root;
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            node.insert((*part).to_string(), value);
            return;
        }
        let blocked = node.get(*part).is_some_and(|v| !v.is_object());
        if blocked {
            // A value already sits here (`a.b` and `a.b.c` both set): keep the rest dotted.
            node.insert(parts[i..].join("."), value);
            return;
        }
        node = node
            .entry((*part).to_string())
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .expect("checked above");
    }
}

/// A remote host as `host:port` (`RemoteConnectionStrategy.parsePort`).
pub fn parse_host_port(address: &str) -> Result<(String, u16), EsError> {
    let Some(sep) = address.rfind(':') else {
        return Err(EsError::illegal_argument(format!(
            "remote hosts need to be configured as [host:port], found [{address}] instead"
        )));
    };
    let port_str = &address[sep + 1..];
    let port: i64 = match port_str.parse::<i32>() {
        Ok(p) => p.into(),
        Err(_) => {
            return Err(
                EsError::illegal_argument("failed to parse port").with_cause(EsError::new(
                    400,
                    "number_format_exception",
                    format!("For input string: \"{port_str}\""),
                )),
            );
        }
    };
    if port <= 0 {
        return Err(EsError::illegal_argument(format!(
            "port number must be > 0 but was: [{port}]"
        )));
    }
    let host = address[..sep]
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok((host, u16::try_from(port).unwrap_or(u16::MAX)))
}

/// The message of a time value that does not parse, for setting `key`.
pub(crate) fn time_value_error(key: &str, value: &str) -> String {
    format!(
        "failed to parse setting [{key}] with value [{value}] as a time value: unit is missing or unrecognized"
    )
}

/// Elasticsearch time values (`30s`, `1d`, `500ms`, `-1`, `0`).
pub fn parse_time_value(s: &str) -> Option<u64> {
    let s = s.trim();
    if s == "-1" || s == "0" {
        return Some(0);
    }
    let lower = s.to_ascii_lowercase();
    for (unit, ms) in [
        ("nanos", 0.000_001),
        ("micros", 0.001),
        ("ms", 1.0),
        ("s", 1000.0),
        ("m", 60_000.0),
        ("h", 3_600_000.0),
        ("d", 86_400_000.0),
    ] {
        if let Some(num) = lower.strip_suffix(unit) {
            // "ms" also ends with "s": only accept when the remaining text is a number.
            if let Ok(n) = num.trim().parse::<f64>()
                && n >= 0.0
            {
                return Some((n * ms) as u64);
            }
        }
    }
    None
}

fn parse_bool(v: &str) -> Result<bool, EsError> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(EsError::illegal_argument(format!(
            "Failed to parse value [{other}] as only [true] or [false] are allowed."
        ))),
    }
}

fn parse_int_min(key: &str, v: &str, min: i64) -> Result<i64, EsError> {
    match v.trim().parse::<i32>() {
        Ok(n) if i64::from(n) >= min => Ok(n.into()),
        Ok(n) => Err(EsError::illegal_argument(format!(
            "Failed to parse value [{n}] for setting [{key}] must be >= {min}"
        ))),
        Err(_) => Err(EsError::illegal_argument(format!(
            "Failed to parse value [{v}] for setting [{key}]"
        ))
        .with_cause(EsError::new(
            400,
            "number_format_exception",
            format!("For input string: \"{v}\""),
        ))),
    }
}

fn no_enum(class: &str, v: &str) -> EsError {
    EsError::illegal_argument(format!(
        "No enum constant {class}.{}",
        v.to_ascii_uppercase()
    ))
}

pub fn parse_mode(v: &str) -> Result<Mode, EsError> {
    match v.to_ascii_uppercase().as_str() {
        "SNIFF" => Ok(Mode::Sniff),
        "PROXY" => Ok(Mode::Proxy),
        _ => Err(no_enum(
            "org.elasticsearch.transport.RemoteConnectionStrategy.ConnectionStrategy",
            v,
        )),
    }
}

fn expect_str<'a>(key: &str, value: &'a SettingValue) -> Result<&'a str, EsError> {
    value.as_str().ok_or_else(|| {
        EsError::illegal_argument(format!(
            "Found list type value for setting [{key}] but but did not expect a list for it."
        ))
    })
}

/// Parse one value on its own (`Setting.validateWithoutDependencies`).
fn validate_value(key: &str, known: &Known, value: &SettingValue) -> Result<(), EsError> {
    let Known::Remote { suffix, .. } = known else {
        return Ok(());
    };
    match suffix {
        RemoteSuffix::Mode => {
            parse_mode(expect_str(key, value)?)?;
        }
        RemoteSuffix::SkipUnavailable => {
            parse_bool(expect_str(key, value)?)?;
        }
        RemoteSuffix::PingSchedule => {
            let v = expect_str(key, value)?;
            if parse_time_value(v).is_none() {
                let msg = time_value_error(key, v);
                return Err(
                    EsError::illegal_argument(msg.clone()).with_cause(EsError::new(
                        400,
                        "parse_exception",
                        msg,
                    )),
                );
            }
        }
        RemoteSuffix::Compress => {
            let v = expect_str(key, value)?;
            if !matches!(
                v.to_ascii_uppercase().as_str(),
                "TRUE" | "FALSE" | "INDEXING_DATA"
            ) {
                return Err(no_enum(
                    "org.elasticsearch.transport.Compression.Enabled",
                    v,
                ));
            }
        }
        RemoteSuffix::CompressionScheme => {
            let v = expect_str(key, value)?;
            if !matches!(v.to_ascii_uppercase().as_str(), "DEFLATE" | "LZ4") {
                return Err(no_enum("org.elasticsearch.transport.Compression.Scheme", v));
            }
        }
        RemoteSuffix::Seeds => {
            for seed in value.as_list() {
                parse_host_port(&seed)?;
            }
        }
        RemoteSuffix::NodeConnections | RemoteSuffix::ProxySocketConnections => {
            parse_int_min(key, expect_str(key, value)?, 1)?;
        }
        RemoteSuffix::SniffProxy | RemoteSuffix::ProxyAddress => {
            let v = expect_str(key, value)?;
            if !v.is_empty() {
                parse_host_port(v)?;
            }
        }
        RemoteSuffix::ServerName => {
            expect_str(key, value)?;
        }
        RemoteSuffix::Credentials => {}
    }
    Ok(())
}

/// The connection mode of `alias` (sniff unless set to a valid other one).
pub(crate) fn mode_of(settings: &FlatSettings, alias: &str) -> Mode {
    settings
        .get(&format!("cluster.remote.{alias}.mode"))
        .and_then(|v| v.as_str())
        .and_then(|v| parse_mode(v).ok())
        .unwrap_or(Mode::Sniff)
}

/// `RemoteConnectionStrategy.isConnectionEnabled` on one set of settings.
pub fn connection_enabled(settings: &FlatSettings, alias: &str) -> bool {
    match mode_of(settings, alias) {
        Mode::Sniff => settings
            .get(&format!("cluster.remote.{alias}.seeds"))
            .map(|v| !v.as_list().is_empty())
            .unwrap_or(false),
        Mode::Proxy => settings
            .get(&format!("cluster.remote.{alias}.proxy_address"))
            .and_then(|v| v.as_str())
            .map(|v| !v.is_empty())
            .unwrap_or(false),
    }
}

/// Validate the final settings of one scope with dependencies (`validate(settings, true)`):
/// every key in order, errors collected, the first thrown with the others suppressed.
fn validate_final(settings: &FlatSettings) -> Result<(), EsError> {
    let mut errors = Vec::new();
    for (key, value) in settings {
        let Some(known) = lookup(key) else { continue };
        if let Err(e) = validate_value(key, &known, value) {
            errors.push(e);
            continue;
        }
        let Known::Remote { alias, suffix } = &known else {
            continue;
        };
        if let Some(required) = suffix.required_mode() {
            let configured = mode_of(settings, alias);
            if configured != required {
                errors.push(EsError::illegal_argument(format!(
                    "Setting \"{key}\" cannot be used with the configured \"cluster.remote.{alias}.mode\" [required={}, configured={}]",
                    required.upper(),
                    configured.upper()
                )));
                continue;
            }
        }
        if suffix.needs_enabled_connection() && !connection_enabled(settings, alias) {
            errors.push(EsError::illegal_argument(format!(
                "Cannot configure setting [{key}] if remote cluster is not enabled."
            )));
        }
    }
    let mut iter = errors.into_iter();
    match iter.next() {
        None => Ok(()),
        Some(mut first) => {
            first.more.suppressed = iter.collect();
            Err(first)
        }
    }
}

/// Persistent and transient cluster settings.
#[derive(Clone, Debug, Default)]
pub struct ClusterSettings {
    pub persistent: FlatSettings,
    pub transient: FlatSettings,
    /// Keys set through file-based settings (ECK's StackConfigPolicy): the API cannot change
    /// them (`ReservedClusterSettingsAction`, reserved-state namespace `file_settings`).
    reserved: BTreeSet<String>,
}

/// The reserved-state namespace of file-based settings (`FileSettingsService.NAMESPACE`).
pub const FILE_SETTINGS_NAMESPACE: &str = "file_settings";

impl ClusterSettings {
    /// Effective value of a key: transient wins over persistent.
    pub fn effective(&self, key: &str) -> Option<&SettingValue> {
        self.transient.get(key).or_else(|| self.persistent.get(key))
    }

    /// Merged view, transient over persistent.
    pub fn merged(&self) -> FlatSettings {
        let mut m = self.persistent.clone();
        m.extend(self.transient.clone());
        m
    }

    /// `{"persistent": ..., "transient": ...}` as `GET _cluster/settings` renders them.
    pub fn render(&self, flat: bool) -> Map<String, Value> {
        Map::from_iter([
            ("persistent".to_string(), render(&self.persistent, flat)),
            ("transient".to_string(), render(&self.transient, flat)),
        ])
    }

    /// Apply a `PUT _cluster/settings` body. All-or-nothing: on error nothing changes. Returns
    /// the settings the request set, which the response echoes.
    pub fn update(&mut self, body: &Value) -> Result<ClusterSettings, EsError> {
        let Value::Object(top) = body else {
            return Err(EsError::parse(
                "[cluster_update_settings_request] Expected START_OBJECT",
            ));
        };
        for k in top.keys() {
            if k != "persistent" && k != "transient" {
                return Err(EsError::parse(format!(
                    "[cluster_update_settings_request] unknown field [{k}]"
                )));
            }
        }
        let transient_req = flatten(top.get("transient").unwrap_or(&Value::Null))?;
        let persistent_req = flatten(top.get("persistent").unwrap_or(&Value::Null))?;
        if transient_req.is_empty() && persistent_req.is_empty() {
            return Err(EsError::validation(&["no settings to update".to_string()]));
        }
        self.refuse_reserved(transient_req.keys().chain(persistent_req.keys()))?;
        let mut transient = self.transient.clone();
        let mut persistent = self.persistent.clone();
        let t_updates = apply_scope(Scope::Transient, &transient_req, &mut transient)?;
        let p_updates = apply_scope(Scope::Persistent, &persistent_req, &mut persistent)?;
        validate_final(&transient)?;
        validate_final(&persistent)?;
        self.transient = transient;
        self.persistent = persistent;
        Ok(ClusterSettings {
            persistent: p_updates,
            transient: t_updates,
            reserved: BTreeSet::new(),
        })
    }
}

impl ClusterSettings {
    /// Keys set through file-based settings, which the API cannot change.
    pub fn reserved(&self) -> &BTreeSet<String> {
        &self.reserved
    }

    /// Applies the `cluster_settings` of a file-based settings file: its keys become persistent
    /// and reserved; keys it reserved before and no longer sets are removed
    /// (`ReservedClusterSettingsAction.transform`).
    pub fn apply_file_settings(&mut self, settings: FlatSettings) {
        for dropped in self
            .reserved
            .difference(&settings.keys().cloned().collect())
        {
            self.persistent.remove(dropped);
        }
        self.reserved = settings.keys().cloned().collect();
        self.persistent.extend(settings);
    }

    /// `TransportMasterNodeAction.validateForReservedState`: a request touching a reserved key
    /// fails as a whole, naming every such key (`diagnostics.md`, row 16).
    fn refuse_reserved<'a>(&self, keys: impl Iterator<Item = &'a String>) -> Result<(), EsError> {
        let conflicts: BTreeSet<&String> = keys.filter(|k| self.reserved.contains(*k)).collect();
        if conflicts.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = conflicts.iter().map(|k| k.as_str()).collect();
        Err(EsError::illegal_argument(format!(
            "Failed to process request \
             [org.elasticsearch.action.admin.cluster.settings.ClusterUpdateSettingsRequest/unset] \
             with errors: [[{}] set as read-only by [{FILE_SETTINGS_NAMESPACE}]]",
            names.join(", ")
        )))
    }
}

/// `AbstractScopedSettings.updateSettings` for one scope.
fn apply_scope(
    scope: Scope,
    to_apply: &BTreeMap<String, Option<SettingValue>>,
    target: &mut FlatSettings,
) -> Result<FlatSettings, EsError> {
    let mut updates = FlatSettings::new();
    let mut to_remove = Vec::new();
    for (key, value) in to_apply {
        let known = lookup(key);
        let is_delete = value.is_none();
        let valid_delete = known.as_ref().map(is_dynamic).unwrap_or(false);
        if is_delete && (valid_delete || key.ends_with('*')) {
            to_remove.push(key.clone());
            continue;
        }
        let Some(known) = known else {
            return Err(EsError::illegal_argument(format!(
                "{} setting [{key}], not recognized",
                scope.name()
            )));
        };
        match value {
            Some(v) if is_dynamic(&known) => {
                validate_value(key, &known, v)?;
                target.insert(key.clone(), v.clone());
                updates.insert(key.clone(), v.clone());
            }
            _ => {
                return Err(EsError::illegal_argument(format!(
                    "{} setting [{key}], not dynamically updateable",
                    scope.name()
                )));
            }
        }
    }
    for pattern in to_remove {
        target.retain(|k, _| {
            let matches = k == &pattern || (pattern.contains('*') && simple_match(&pattern, k));
            let removable = lookup(k).as_ref().map(is_dynamic).unwrap_or(true);
            !(matches && removable)
        });
    }
    Ok(updates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn put(s: &mut ClusterSettings, body: Value) -> Result<ClusterSettings, EsError> {
        s.update(&body)
    }

    #[test]
    fn nested_and_flat_keys_flatten_to_the_same_setting() {
        let mut s = ClusterSettings::default();
        put(
            &mut s,
            json!({"persistent":{"cluster":{"remote":{"a":{"seeds":["h:9300"]}}},
                    "cluster.remote.b.seeds": "x:1"}}),
        )
        .unwrap();
        assert_eq!(
            s.persistent.get("cluster.remote.a.seeds"),
            Some(&SettingValue::List(vec!["h:9300".into()]))
        );
        assert_eq!(
            s.persistent.get("cluster.remote.b.seeds"),
            Some(&SettingValue::Str("x:1".into()))
        );
    }

    #[test]
    fn scalars_are_stored_as_strings() {
        let mut s = ClusterSettings::default();
        let applied = put(
            &mut s,
            json!({"persistent":{"cluster.remote.a.seeds":["h:1"],"cluster.remote.a.skip_unavailable":true,
                    "cluster.remote.a.node_connections":5}}),
        )
        .unwrap();
        assert_eq!(
            render(&applied.persistent, false),
            json!({"cluster":{"remote":{"a":{"seeds":["h:1"],"skip_unavailable":"true","node_connections":"5"}}}})
        );
        assert_eq!(
            render(&applied.persistent, true),
            json!({"cluster.remote.a.seeds":["h:1"],"cluster.remote.a.skip_unavailable":"true",
                   "cluster.remote.a.node_connections":"5"})
        );
    }

    #[test]
    fn unknown_setting_is_not_recognized() {
        let mut s = ClusterSettings::default();
        let e = put(
            &mut s,
            json!({"persistent":{"cluster.remote.foo.bogus":"x"}}),
        )
        .unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.kind, "illegal_argument_exception");
        assert_eq!(
            e.reason,
            "persistent setting [cluster.remote.foo.bogus], not recognized"
        );
        let e = put(&mut s, json!({"transient":{"foo.bar":1}})).unwrap_err();
        assert_eq!(e.reason, "transient setting [foo.bar], not recognized");
    }

    #[test]
    fn alias_must_match_the_affix_pattern() {
        let mut s = ClusterSettings::default();
        let e = put(
            &mut s,
            json!({"persistent":{"cluster.remote.a b.seeds":["h:1"]}}),
        )
        .unwrap_err();
        assert_eq!(
            e.reason,
            "persistent setting [cluster.remote.a b.seeds], not recognized"
        );
        let e = put(
            &mut s,
            json!({"persistent":{"cluster":{"remote":{"a.b":{"seeds":["h:1"]}}}}}),
        )
        .unwrap_err();
        assert!(e.reason.contains("not recognized"));
        put(
            &mut s,
            json!({"persistent":{"cluster.remote.Prod_2-x.seeds":["h:1"]}}),
        )
        .unwrap();
    }

    #[test]
    fn credentials_and_static_settings_are_not_dynamic() {
        let mut s = ClusterSettings::default();
        let e = put(
            &mut s,
            json!({"persistent":{"cluster.remote.a.credentials":"x"}}),
        )
        .unwrap_err();
        assert_eq!(
            e.reason,
            "persistent setting [cluster.remote.a.credentials], not dynamically updateable"
        );
        let e = put(
            &mut s,
            json!({"persistent":{"cluster.remote.initial_connect_timeout":"10s"}}),
        )
        .unwrap_err();
        assert!(e.reason.ends_with("not dynamically updateable"));
    }

    #[test]
    fn proxy_settings_need_proxy_mode() {
        let mut s = ClusterSettings::default();
        let e = put(
            &mut s,
            json!({"persistent":{"cluster.remote.foo.proxy_address":"h:9443"}}),
        )
        .unwrap_err();
        assert_eq!(
            e.reason,
            "Setting \"cluster.remote.foo.proxy_address\" cannot be used with the configured \"cluster.remote.foo.mode\" [required=PROXY, configured=SNIFF]"
        );
        let e = put(
            &mut s,
            json!({"persistent":{"cluster.remote.foo.mode":"sniff","cluster.remote.foo.server_name":"x"}}),
        )
        .unwrap_err();
        assert!(e.reason.contains("[required=PROXY, configured=SNIFF]"));
        put(
            &mut s,
            json!({"persistent":{"cluster.remote.foo.mode":"PROXY","cluster.remote.foo.proxy_address":"h:9443",
                   "cluster.remote.foo.server_name":"n"}}),
        )
        .unwrap();
    }

    #[test]
    fn seeds_need_sniff_mode() {
        let mut s = ClusterSettings::default();
        let e = put(
            &mut s,
            json!({"persistent":{"cluster.remote.foo.mode":"proxy","cluster.remote.foo.seeds":["h:1"]}}),
        )
        .unwrap_err();
        assert_eq!(
            e.reason,
            "Setting \"cluster.remote.foo.seeds\" cannot be used with the configured \"cluster.remote.foo.mode\" [required=SNIFF, configured=PROXY]"
        );
    }

    #[test]
    fn addresses_need_a_port() {
        let mut s = ClusterSettings::default();
        let e = put(
            &mut s,
            json!({"persistent":{"cluster.remote.foo.seeds":["foo"]}}),
        )
        .unwrap_err();
        assert_eq!(
            e.reason,
            "remote hosts need to be configured as [host:port], found [foo] instead"
        );
        let e = put(
            &mut s,
            json!({"persistent":{"cluster.remote.foo.seeds":["foo:x"]}}),
        )
        .unwrap_err();
        assert_eq!(e.reason, "failed to parse port");
        let e = put(
            &mut s,
            json!({"persistent":{"cluster.remote.foo.seeds":["foo:0"]}}),
        )
        .unwrap_err();
        assert_eq!(e.reason, "port number must be > 0 but was: [0]");
        let e = put(
            &mut s,
            json!({"persistent":{"cluster.remote.foo.mode":"proxy","cluster.remote.foo.proxy_address":"nohost"}}),
        )
        .unwrap_err();
        assert!(e.reason.starts_with("remote hosts need to be configured"));
    }

    #[test]
    fn skip_unavailable_needs_an_enabled_connection() {
        let mut s = ClusterSettings::default();
        let e = put(
            &mut s,
            json!({"persistent":{"cluster.remote.remote1.skip_unavailable":true}}),
        )
        .unwrap_err();
        assert_eq!(
            e.reason,
            "Cannot configure setting [cluster.remote.remote1.skip_unavailable] if remote cluster is not enabled."
        );
        put(
            &mut s,
            json!({"persistent":{"cluster.remote.remote1.seeds":["h:1"],"cluster.remote.remote1.skip_unavailable":true}}),
        )
        .unwrap();
        // Removing only the seeds while skip_unavailable stays: same error, nothing changes.
        let e = put(
            &mut s,
            json!({"persistent":{"cluster.remote.remote1.seeds":null}}),
        )
        .unwrap_err();
        assert!(e.reason.starts_with("Cannot configure setting"));
        assert!(s.persistent.contains_key("cluster.remote.remote1.seeds"));
        put(
            &mut s,
            json!({"persistent":{"cluster.remote.remote1.seeds":null,"cluster.remote.remote1.skip_unavailable":null}}),
        )
        .unwrap();
        assert!(s.persistent.is_empty());
    }

    #[test]
    fn null_removes_and_wildcards_remove_several() {
        let mut s = ClusterSettings::default();
        put(
            &mut s,
            json!({"persistent":{"cluster.remote.a.mode":"proxy","cluster.remote.a.proxy_address":"h:1",
                   "cluster.remote.b.seeds":["h:2"]}}),
        )
        .unwrap();
        let applied = put(&mut s, json!({"persistent":{"cluster.remote.a.*":null}})).unwrap();
        assert!(applied.persistent.is_empty());
        assert_eq!(s.persistent.len(), 1);
        // Deleting an unknown non-wildcard key is an error.
        let e = put(&mut s, json!({"persistent":{"cluster.remote.b":null}})).unwrap_err();
        assert_eq!(
            e.reason,
            "persistent setting [cluster.remote.b], not recognized"
        );
        // Deleting a setting that is not set is fine.
        put(
            &mut s,
            json!({"persistent":{"cluster.remote.zz.seeds":null}}),
        )
        .unwrap();
    }

    #[test]
    fn value_types_are_checked() {
        let mut s = ClusterSettings::default();
        let base = |k: &str, v: Value| json!({"persistent":{"cluster.remote.a.seeds":["h:1"], (format!("cluster.remote.a.{k}")): v}});
        let e = put(&mut s, base("skip_unavailable", json!("yes"))).unwrap_err();
        assert_eq!(
            e.reason,
            "Failed to parse value [yes] as only [true] or [false] are allowed."
        );
        let e = put(&mut s, base("node_connections", json!(0))).unwrap_err();
        assert_eq!(
            e.reason,
            "Failed to parse value [0] for setting [cluster.remote.a.node_connections] must be >= 1"
        );
        let e = put(&mut s, base("transport.compress", json!("maybe"))).unwrap_err();
        assert_eq!(
            e.reason,
            "No enum constant org.elasticsearch.transport.Compression.Enabled.MAYBE"
        );
        let e = put(&mut s, base("transport.ping_schedule", json!("5x"))).unwrap_err();
        assert!(e.reason.contains("as a time value"));
        let e = put(
            &mut s,
            json!({"persistent":{"cluster.remote.a.mode":"direct"}}),
        )
        .unwrap_err();
        assert_eq!(
            e.reason,
            "No enum constant org.elasticsearch.transport.RemoteConnectionStrategy.ConnectionStrategy.DIRECT"
        );
        put(&mut s, base("transport.ping_schedule", json!("30s"))).unwrap();
    }

    #[test]
    fn empty_request_is_a_validation_error() {
        let mut s = ClusterSettings::default();
        let e = put(&mut s, json!({})).unwrap_err();
        assert_eq!(e.kind, "action_request_validation_exception");
        assert_eq!(e.reason, "Validation Failed: 1: no settings to update;");
        let e = put(&mut s, json!({"persistent":{}, "foo": 1})).unwrap_err();
        assert_eq!(e.kind, "x_content_parse_exception");
    }

    #[test]
    fn errors_in_final_validation_are_collected() {
        let mut s = ClusterSettings::default();
        let e = put(
            &mut s,
            json!({"persistent":{"cluster.remote.a.proxy_address":"h:1","cluster.remote.b.server_name":"x"}}),
        )
        .unwrap_err();
        assert!(e.reason.contains("cluster.remote.a.proxy_address"));
        assert_eq!(e.more.suppressed.len(), 1);
        assert!(
            e.to_body()["error"]["suppressed"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("cluster.remote.b.server_name")
        );
    }

    #[test]
    fn transient_wins_in_the_merged_view() {
        let mut s = ClusterSettings::default();
        put(
            &mut s,
            json!({"persistent":{"cluster.remote.a.seeds":["p:1"]},"transient":{"cluster.remote.a.seeds":["t:1"]}}),
        )
        .unwrap();
        assert_eq!(
            s.effective("cluster.remote.a.seeds"),
            Some(&SettingValue::List(vec!["t:1".into()]))
        );
    }

    #[test]
    fn generic_dynamic_settings_are_accepted() {
        let mut s = ClusterSettings::default();
        put(
            &mut s,
            json!({"persistent":{"cluster.routing.allocation.enable":"all","logger.org.elasticsearch.transport":"DEBUG"}}),
        )
        .unwrap();
        assert_eq!(
            render(&s.persistent, false),
            json!({"cluster":{"routing":{"allocation":{"enable":"all"}}},"logger":{"org":{"elasticsearch":{"transport":"DEBUG"}}}})
        );
    }

    #[test]
    fn time_values() {
        assert_eq!(parse_time_value("30s"), Some(30_000));
        assert_eq!(parse_time_value("500ms"), Some(500));
        assert_eq!(parse_time_value("1d"), Some(86_400_000));
        assert_eq!(parse_time_value("2h"), Some(7_200_000));
        assert_eq!(parse_time_value("abc"), None);
        assert_eq!(parse_time_value("10"), None);
    }
}
