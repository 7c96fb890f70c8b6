//! Our own structural schema of the ECK `Elasticsearch` resource, for the fields the plugin reads
//! and writes, and the code that prunes and validates objects against it the way
//! apiextensions-apiserver does (`pkg/apiserver/schema/pruning`, `pkg/apiserver/validation`).
//!
//! The field list follows `eck-remote-clusters.md` in the shared docs, section 2.2/2.3 (ECK's Go
//! types). Where the real CRD has a large detailed schema that the plugin never touches (Service
//! specs, PodDisruptionBudget, HTTP TLS options, volume claim templates, resources), the sandbox
//! declares the node *opaque*: an object that accepts anything (`x-kubernetes-preserve-unknown-fields`).
//! `tests/crd_schema.rs` checks every other node against ECK's real CRD, given by `ECK_CRD`.
//!
//! [`EckFeatures`] lets a cluster pretend to run an older ECK, whose CRD lacks newer fields:
//! the API server then prunes them silently, exactly what a real old CRD does.

use serde_json::{Map, Value, json};

use crate::status::Cause;

/// One node of a structural schema.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// `object`, `array`, `string`, `integer`, `boolean`; `None` with `int_or_string`.
    pub ty: Option<&'static str>,
    pub format: Option<&'static str>,
    pub properties: Vec<(&'static str, Schema)>,
    pub items: Option<Box<Schema>>,
    pub additional_properties: Option<Box<Schema>>,
    pub required: Vec<&'static str>,
    pub preserve_unknown: bool,
    pub int_or_string: bool,
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    pub pattern: Option<&'static str>,
    pub min_items: Option<usize>,
    pub enum_values: Vec<&'static str>,
    /// Sandbox simplification: the real CRD has a detailed schema here; the sandbox accepts any
    /// object. Not compared property by property with the real CRD.
    pub opaque: bool,
}

fn node(ty: &'static str) -> Schema {
    Schema {
        ty: Some(ty),
        ..Schema::default()
    }
}

pub fn string() -> Schema {
    node("string")
}
pub fn boolean() -> Schema {
    node("boolean")
}
pub fn int32() -> Schema {
    Schema {
        format: Some("int32"),
        ..node("integer")
    }
}
pub fn int64() -> Schema {
    Schema {
        format: Some("int64"),
        ..node("integer")
    }
}
pub fn date_time() -> Schema {
    Schema {
        format: Some("date-time"),
        ..node("string")
    }
}
pub fn array(items: Schema) -> Schema {
    Schema {
        items: Some(Box::new(items)),
        ..node("array")
    }
}
pub fn object(props: Vec<(&'static str, Schema)>) -> Schema {
    Schema {
        properties: props,
        ..node("object")
    }
}
pub fn map_of(values: Schema) -> Schema {
    Schema {
        additional_properties: Some(Box::new(values)),
        ..node("object")
    }
}
/// An object with `x-kubernetes-preserve-unknown-fields: true` in the real CRD too.
pub fn free_form() -> Schema {
    Schema {
        preserve_unknown: true,
        ..node("object")
    }
}
/// An object the sandbox does not model (see module docs).
pub fn opaque() -> Schema {
    Schema {
        preserve_unknown: true,
        opaque: true,
        ..node("object")
    }
}

impl Schema {
    pub fn required(mut self, fields: &[&'static str]) -> Schema {
        self.required = fields.to_vec();
        self
    }
    pub fn min_length(mut self, n: usize) -> Schema {
        self.min_length = Some(n);
        self
    }
    pub fn max_length(mut self, n: usize) -> Schema {
        self.max_length = Some(n);
        self
    }
    pub fn pattern(mut self, p: &'static str) -> Schema {
        self.pattern = Some(p);
        self
    }
    pub fn min_items(mut self, n: usize) -> Schema {
        self.min_items = Some(n);
        self
    }
    pub fn enumerated(mut self, values: &[&'static str]) -> Schema {
        self.enum_values = values.to_vec();
        self
    }

    pub fn property(&self, name: &str) -> Option<&Schema> {
        self.properties
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s)
    }

    /// Follows a dotted path of property names (`[]` steps into array items).
    pub fn at(&self, path: &str) -> Option<&Schema> {
        let mut cur = self;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            let (name, items) = match part.strip_suffix("[]") {
                Some(n) => (n, true),
                None => (part, false),
            };
            cur = cur.property(name)?;
            if items {
                cur = cur.items.as_deref()?;
            }
        }
        Some(cur)
    }

    /// The OpenAPI v3 form, as it appears under `openAPIV3Schema` in a CRD.
    pub fn to_openapi(&self) -> Value {
        let mut m = Map::new();
        if self.int_or_string {
            m.insert(
                "anyOf".into(),
                json!([{"type": "integer"}, {"type": "string"}]),
            );
            m.insert("x-kubernetes-int-or-string".into(), true.into());
        }
        if let Some(t) = self.ty {
            m.insert("type".into(), t.into());
        }
        if let Some(f) = self.format {
            m.insert("format".into(), f.into());
        }
        if !self.properties.is_empty() {
            let mut props = Map::new();
            for (name, s) in &self.properties {
                props.insert((*name).into(), s.to_openapi());
            }
            m.insert("properties".into(), Value::Object(props));
        }
        if let Some(items) = &self.items {
            m.insert("items".into(), items.to_openapi());
        }
        if let Some(ap) = &self.additional_properties {
            m.insert("additionalProperties".into(), ap.to_openapi());
        }
        if !self.required.is_empty() {
            m.insert("required".into(), json!(self.required));
        }
        if let Some(n) = self.min_length {
            m.insert("minLength".into(), n.into());
        }
        if let Some(n) = self.max_length {
            m.insert("maxLength".into(), n.into());
        }
        if let Some(p) = self.pattern {
            m.insert("pattern".into(), p.into());
        }
        if let Some(n) = self.min_items {
            m.insert("minItems".into(), n.into());
        }
        if !self.enum_values.is_empty() {
            m.insert("enum".into(), json!(self.enum_values));
        }
        if self.preserve_unknown {
            m.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
        }
        Value::Object(m)
    }

    /// Every node path below this one (`.spec.nodeSets[].name` style), depth first.
    pub fn paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_paths("", &mut out);
        out
    }

    fn collect_paths(&self, prefix: &str, out: &mut Vec<String>) {
        for (name, s) in &self.properties {
            let p = format!("{prefix}.{name}");
            out.push(p.clone());
            s.collect_paths(&p, out);
        }
        if let Some(items) = &self.items {
            let p = format!("{prefix}[]");
            out.push(p.clone());
            items.collect_paths(&p, out);
        }
    }

    /// Drops fields the schema does not know, and `null` values of non-nullable fields, as
    /// apiextensions-apiserver does when it decodes a custom resource. Returns the dropped paths
    /// (for `fieldValidation=Strict|Warn`).
    pub fn prune(&self, value: &mut Value, path: &str, dropped: &mut Vec<String>) {
        match value {
            Value::Object(map) if self.ty == Some("object") || self.ty.is_none() => {
                if let Some(ap) = &self.additional_properties {
                    for (k, v) in map.iter_mut() {
                        ap.prune(v, &format!("{path}[{k}]"), dropped);
                    }
                    return;
                }
                if self.preserve_unknown && self.properties.is_empty() {
                    return;
                }
                let keys: Vec<String> = map.keys().cloned().collect();
                for k in keys {
                    let child = join(path, &k);
                    match self.property(&k) {
                        Some(s) => {
                            if map.get(&k).is_some_and(Value::is_null) {
                                map.remove(&k);
                                continue;
                            }
                            if let Some(v) = map.get_mut(&k) {
                                s.prune(v, &child, dropped);
                            }
                        }
                        None if self.preserve_unknown => {}
                        None => {
                            map.remove(&k);
                            dropped.push(child);
                        }
                    }
                }
            }
            Value::Array(items) => {
                if let Some(s) = &self.items {
                    for (i, v) in items.iter_mut().enumerate() {
                        s.prune(v, &format!("{path}[{i}]"), dropped);
                    }
                }
            }
            _ => {}
        }
    }

    /// Validates types, required fields and value constraints. Paths are written as the API
    /// server writes them in `details.causes[].field` (`spec.nodeSets[0].count`).
    pub fn validate(&self, value: &Value, path: &str, errs: &mut Vec<Cause>) {
        if self.int_or_string {
            if !(value.is_string() || is_integer(value)) {
                errs.push(Cause::type_invalid(path, value, "integer,string"));
            }
            return;
        }
        let Some(ty) = self.ty else { return };
        let ok = match ty {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "integer" => is_integer(value),
            "number" => value.is_number(),
            _ => true,
        };
        if !ok {
            errs.push(Cause::type_invalid(path, value, ty));
            return;
        }
        match value {
            Value::Object(map) => {
                for r in &self.required {
                    if !map.contains_key(*r) {
                        errs.push(Cause::required(join(path, r)));
                    }
                }
                if let Some(ap) = &self.additional_properties {
                    for (k, v) in map {
                        ap.validate(v, &format!("{path}[{k}]"), errs);
                    }
                }
                for (k, v) in map {
                    if let Some(s) = self.property(k) {
                        s.validate(v, &join(path, k), errs);
                    }
                }
            }
            Value::Array(items) => {
                if let Some(min) = self.min_items
                    && items.len() < min
                {
                    errs.push(Cause::invalid(
                        path,
                        value,
                        &format!("{path} in body should have at least {min} items"),
                    ));
                }
                if let Some(s) = &self.items {
                    for (i, v) in items.iter().enumerate() {
                        s.validate(v, &format!("{path}[{i}]"), errs);
                    }
                }
            }
            Value::String(s) => {
                let len = s.chars().count();
                if let Some(min) = self.min_length
                    && len < min
                {
                    errs.push(Cause::invalid(
                        path,
                        value,
                        &format!("{path} in body should be at least {min} chars long"),
                    ));
                }
                if let Some(max) = self.max_length
                    && len > max
                {
                    errs.push(Cause::invalid(
                        path,
                        value,
                        &format!("{path} in body should be at most {max} chars long"),
                    ));
                }
                if let Some(p) = self.pattern
                    && !pattern_matches(p, s)
                {
                    errs.push(Cause::invalid(
                        path,
                        value,
                        &format!("{path} in body should match '{p}'"),
                    ));
                }
                if !self.enum_values.is_empty() && !self.enum_values.contains(&s.as_str()) {
                    let allowed: Vec<String> =
                        self.enum_values.iter().map(|s| s.to_string()).collect();
                    errs.push(Cause::unsupported(path, value, &allowed));
                }
            }
            _ => {}
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn is_integer(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

/// The only `pattern` in the modelled fields is the nodeSet name's `[a-zA-Z0-9-]+` (unanchored,
/// so any string holding one such character matches). Other patterns are not enforced.
fn pattern_matches(pattern: &str, s: &str) -> bool {
    match pattern {
        "[a-zA-Z0-9-]+" => s.chars().any(|c| c.is_ascii_alphanumeric() || c == '-'),
        _ => true,
    }
}

/// Which optional parts of the ECK CRD are installed; derived from an ECK version
/// (`eck-remote-clusters.md` in the shared docs, section 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EckFeatures {
    /// `spec.transport.tls.certificateAuthorities` (ECK >= 2.8.0).
    pub transport_certificate_authorities: bool,
    /// `spec.remoteClusterServer` and `spec.remoteClusters[].apiKey` (ECK >= 2.16.0).
    pub remote_cluster_api_keys: bool,
    /// `spec.remoteClusterServer.service` (ECK >= 3.3.0).
    pub remote_cluster_server_service: bool,
}

impl Default for EckFeatures {
    fn default() -> Self {
        EckFeatures::LATEST
    }
}

/// The ECK version the default CRD stands for (the real CRD the conformance tests read from `ECK_CRD`).
pub const LATEST_ECK_VERSION: &str = "3.5.0";

impl EckFeatures {
    pub const LATEST: EckFeatures = EckFeatures {
        transport_certificate_authorities: true,
        remote_cluster_api_keys: true,
        remote_cluster_server_service: true,
    };

    /// Features of a given ECK version (`"3.2.0"`); unparsable versions count as the latest.
    pub fn for_version(version: &str) -> EckFeatures {
        let Some(v) = parse_version(version) else {
            return EckFeatures::LATEST;
        };
        EckFeatures {
            transport_certificate_authorities: v >= (2, 8, 0),
            remote_cluster_api_keys: v >= (2, 16, 0),
            remote_cluster_server_service: v >= (3, 3, 0),
        }
    }
}

/// Parses `major.minor.patch[-pre]` (pre-release ignored).
pub fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.trim().trim_start_matches('v');
    let core = core.split(['-', '+']).next()?;
    let mut it = core.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    let patch = it.next()?.parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    Some((major, minor, patch))
}

fn service_template() -> Schema {
    object(vec![
        (
            "metadata",
            object(vec![
                ("annotations", map_of(string())),
                ("finalizers", array(string())),
                ("labels", map_of(string())),
                ("name", string()),
                ("namespace", string()),
            ]),
        ),
        ("spec", opaque()),
    ])
}

fn es_refs() -> Schema {
    object(vec![(
        "elasticsearchRefs",
        array(object(vec![
            ("name", string()),
            ("namespace", string()),
            ("secretName", string()),
            ("serviceName", string()),
        ])),
    )])
}

/// The `spec` schema of `Elasticsearch` v1.
pub fn elasticsearch_spec(f: &EckFeatures) -> Schema {
    let mut tls = vec![
        ("certificate", object(vec![("secretName", string())])),
        ("otherNameSuffix", string()),
        (
            "selfSignedCertificates",
            object(vec![("disabled", boolean())]),
        ),
        (
            "subjectAltNames",
            array(object(vec![("dns", string()), ("ip", string())])),
        ),
    ];
    if f.transport_certificate_authorities {
        tls.insert(
            1,
            (
                "certificateAuthorities",
                object(vec![("configMapName", string())]),
            ),
        );
    }
    let mut remote_cluster = vec![
        (
            "elasticsearchRef",
            object(vec![
                ("name", string()),
                ("namespace", string()),
                ("serviceName", string()),
            ]),
        ),
        ("name", string().min_length(1)),
    ];
    if f.remote_cluster_api_keys {
        remote_cluster.insert(
            0,
            (
                "apiKey",
                object(vec![(
                    "access",
                    object(vec![
                        (
                            "replication",
                            object(vec![("names", array(string()))]).required(&["names"]),
                        ),
                        (
                            "search",
                            object(vec![
                                ("allow_restricted_indices", boolean()),
                                (
                                    "field_security",
                                    object(vec![
                                        ("except", array(string())),
                                        ("grant", array(string())),
                                    ])
                                    .required(&["except", "grant"]),
                                ),
                                ("names", array(string())),
                                ("query", free_form()),
                            ])
                            .required(&["names"]),
                        ),
                    ]),
                )])
                .required(&["access"]),
            ),
        );
    }
    let mut props = vec![
        (
            "auth",
            object(vec![
                ("disableElasticUser", boolean()),
                ("fileRealm", array(object(vec![("secretName", string())]))),
                ("roles", array(object(vec![("secretName", string())]))),
            ]),
        ),
        ("http", opaque()),
        ("image", string()),
        (
            "monitoring",
            object(vec![("logs", es_refs()), ("metrics", es_refs())]),
        ),
        (
            "nodeSets",
            array(
                object(vec![
                    ("config", free_form()),
                    ("count", int32()),
                    ("name", string().max_length(23).pattern("[a-zA-Z0-9-]+")),
                    ("podTemplate", free_form()),
                    ("resources", opaque()),
                    ("volumeClaimTemplates", array(opaque())),
                    ("zoneAwareness", opaque()),
                ])
                .required(&["name"]),
            )
            .min_items(1),
        ),
        ("podDisruptionBudget", opaque()),
    ];
    if f.remote_cluster_api_keys {
        let mut rcs = vec![("enabled", boolean())];
        if f.remote_cluster_server_service {
            rcs.push(("service", service_template()));
        }
        props.push(("remoteClusterServer", object(rcs)));
    }
    props.extend([
        (
            "remoteClusters",
            array(object(remote_cluster).required(&["name"])),
        ),
        ("revisionHistoryLimit", int32()),
        (
            "secureSettings",
            array(
                object(vec![
                    (
                        "entries",
                        array(
                            object(vec![("key", string()), ("path", string())]).required(&["key"]),
                        ),
                    ),
                    ("secretName", string()),
                ])
                .required(&["secretName"]),
            ),
        ),
        ("serviceAccountName", string()),
        (
            "transport",
            object(vec![("service", service_template()), ("tls", object(tls))]),
        ),
        (
            "updateStrategy",
            object(vec![(
                "changeBudget",
                object(vec![("maxSurge", int32()), ("maxUnavailable", int32())]),
            )]),
        ),
        ("version", string()),
        (
            "volumeClaimDeletePolicy",
            string().enumerated(&[
                "DeleteOnScaledownOnly",
                "DeleteOnScaledownAndClusterDeletion",
            ]),
        ),
    ]);
    object(props).required(&["nodeSets", "version"])
}

/// The `status` schema of `Elasticsearch` v1 (`pkg/apis/elasticsearch/v1/status.go`).
pub fn elasticsearch_status() -> Schema {
    object(vec![
        ("availableNodes", int32()),
        (
            "conditions",
            array(
                object(vec![
                    ("lastTransitionTime", date_time()),
                    ("message", string()),
                    ("status", string()),
                    ("type", string()),
                ])
                .required(&["status", "type"]),
            ),
        ),
        ("health", string()),
        ("inProgressOperations", opaque()),
        ("monitoringAssociationStatus", map_of(string())),
        ("observedGeneration", int64()),
        ("phase", string()),
        ("version", string()),
    ])
}

/// The whole `openAPIV3Schema` of `Elasticsearch` v1.
pub fn elasticsearch_schema(f: &EckFeatures) -> Schema {
    object(vec![
        ("apiVersion", string()),
        ("kind", string()),
        ("metadata", node("object")),
        ("spec", elasticsearch_spec(f)),
        ("status", elasticsearch_status()),
    ])
}

/// The `additionalPrinterColumns` of `Elasticsearch` v1, which server-side printing (`kubectl
/// get es`) shows after the name.
pub(crate) fn printer_columns() -> Value {
    json!([
        {"jsonPath": ".status.health", "name": "health", "type": "string"},
        {"description": "Available nodes", "jsonPath": ".status.availableNodes", "name": "nodes", "type": "integer"},
        {"description": "Elasticsearch version", "jsonPath": ".status.version", "name": "version", "type": "string"},
        {"jsonPath": ".status.phase", "name": "phase", "type": "string"},
        {"jsonPath": ".metadata.creationTimestamp", "name": "age", "type": "date"}
    ])
}

/// The `CustomResourceDefinition` object for `elasticsearches.elasticsearch.k8s.elastic.co`
/// (without server-set metadata), built from [`elasticsearch_schema`].
pub fn elasticsearch_crd(f: &EckFeatures, eck_version: &str) -> Value {
    let names = json!({
        "categories": ["elastic"],
        "kind": "Elasticsearch",
        "listKind": "ElasticsearchList",
        "plural": "elasticsearches",
        "shortNames": ["es"],
        "singular": "elasticsearch",
    });
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": "elasticsearches.elasticsearch.k8s.elastic.co",
            "labels": {
                "app.kubernetes.io/version": eck_version,
                "helm.sh/chart": format!("eck-operator-crds-{eck_version}"),
            },
        },
        "spec": {
            "group": "elasticsearch.k8s.elastic.co",
            "names": names,
            "scope": "Namespaced",
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": printer_columns(),
                "schema": {"openAPIV3Schema": elasticsearch_schema(f).to_openapi()},
            }],
            "conversion": {"strategy": "None"},
        },
        "status": {
            "acceptedNames": names,
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found"},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
            ],
            "storedVersions": ["v1"],
        },
    })
}
