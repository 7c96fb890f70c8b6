//! A minimal OpenAPI v3 surface (`/openapi/v3` and `/openapi/v3/{api/v1|apis/g/v}`).
//!
//! Why: kubectl (>= 1.27) decides whether the server validates fields itself by reading the
//! OpenAPI v3 document of the group-version and looking for the `fieldValidation` query
//! parameter on the PATCH operation of the kind (`k8s.io/cli-runtime/pkg/resource/
//! query_param_verifier_v3.go`). Without it, `kubectl apply/create -f` falls back to client-side
//! validation, which needs the full OpenAPI schema ("failed to download openapi"). The sandbox
//! publishes paths with their operations and parameters, and the Elasticsearch schema (so
//! `kubectl explain elasticsearch.spec` works); built-in kinds have no schema here.

use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::{Map, Value, json};

use crate::cluster::ClusterState;
use crate::discovery::{KUBERNETES_VERSION, served};
use crate::resources::{ResourceInfo, ResourceKey};

fn gv_path(key: &ResourceKey) -> String {
    if key.group.is_empty() {
        format!("api/{}", key.version)
    } else {
        format!("apis/{}/{}", key.group, key.version)
    }
}

fn hash_of(v: &Value) -> String {
    let mut h = DefaultHasher::new();
    v.to_string().hash(&mut h);
    format!("{:016X}", h.finish())
}

/// `GET /openapi/v3`.
pub(crate) fn root(state: &ClusterState) -> Value {
    let mut paths = Map::new();
    for info in served(state) {
        let p = gv_path(&info.key);
        if paths.contains_key(&p) {
            continue;
        }
        let (group, version) = (info.key.group, info.key.version);
        let doc = group_version(state, group, version).unwrap_or(Value::Null);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash_of(&doc))}),
        );
    }
    json!({"paths": paths})
}

fn param(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": "string", "uniqueItems": true},
    })
}

fn write_params() -> Vec<Value> {
    vec![
        param(
            "dryRun",
            "When present, indicates that modifications should not be persisted. Valid value: All",
        ),
        param(
            "fieldManager",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
        ),
        param(
            "fieldValidation",
            "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values: Ignore, Warn (default), Strict.",
        ),
    ]
}

fn schema_name(info: &ResourceInfo) -> String {
    match info.key.group {
        "" => format!("io.k8s.api.core.v1.{}", info.kind),
        "apiextensions.k8s.io" => format!(
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.{}",
            info.kind
        ),
        g => {
            let reversed: Vec<&str> = g.split('.').rev().collect();
            format!("{}.{}.{}", reversed.join("."), info.key.version, info.kind)
        }
    }
}

/// `GET /openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}`.
pub(crate) fn group_version(state: &ClusterState, group: &str, version: &str) -> Option<Value> {
    let infos: Vec<&'static ResourceInfo> = served(state)
        .filter(|i| i.key.group == group && i.key.version == version)
        .collect();
    if infos.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for info in &infos {
        let gvk = json!({"group": group, "version": version, "kind": info.kind});
        let ref_schema = json!({"$ref": format!("#/components/schemas/{}", schema_name(info))});
        let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": ref_schema}}}});
        let op = |action: &str, params: Vec<Value>| {
            json!({
                "operationId": format!("{action}{}", info.kind),
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": params,
                "responses": ok,
            })
        };
        let base = gv_path(&info.key);
        let collection = if info.namespaced {
            format!("/{base}/namespaces/{{namespace}}/{}", info.key.plural)
        } else {
            format!("/{base}/{}", info.key.plural)
        };
        paths.insert(
            collection.clone(),
            json!({"get": op("list", vec![]), "post": op("post", write_params())}),
        );
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({
                "get": op("get", vec![]),
                "put": op("put", write_params()),
                "patch": op("patch", write_params()),
                "delete": op("delete", vec![param("dryRun", "When present, indicates that modifications should not be persisted.")]),
            }),
        );
        let mut schema = if info.key == ResourceKey::ELASTICSEARCHES {
            state
                .es_schema
                .as_ref()
                .map(|s| s.to_openapi())
                .unwrap_or_else(|| json!({"type": "object"}))
        } else {
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
        };
        schema["x-kubernetes-group-version-kind"] = json!([gvk]);
        schemas.insert(schema_name(info), schema);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {
            "title": "Kubernetes",
            "version": format!("v{}.{}.0", KUBERNETES_VERSION.0, KUBERNETES_VERSION.1),
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}
