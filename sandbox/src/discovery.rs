//! Legacy discovery documents (`/api`, `/api/v1`, `/apis`, `/apis/{group}`,
//! `/apis/{group}/{version}`, `/version`), shaped as `k8s.io/apimachinery/pkg/apis/meta/v1`
//! `APIVersions`, `APIResourceList`, `APIGroupList`, `APIGroup`.
//!
//! Aggregated discovery (`application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`)
//! is not implemented: the server answers the legacy documents with
//! `Content-Type: application/json`, and kubectl (client-go's discovery client) then falls back
//! to the legacy per-group requests, as it does against servers older than 1.26.

use serde_json::{Value, json};

use crate::cluster::ClusterState;
use crate::resources::{ResourceInfo, ResourceKey};

/// The Kubernetes version the sandbox claims to be.
pub const KUBERNETES_VERSION: (&str, &str) = ("1", "34");

pub(crate) fn version() -> Value {
    json!({
        "major": KUBERNETES_VERSION.0,
        "minor": KUBERNETES_VERSION.1,
        "gitVersion": format!("v{}.{}.0-sandbox", KUBERNETES_VERSION.0, KUBERNETES_VERSION.1),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-07-01T00:00:00Z",
        "goVersion": "go1.24.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub(crate) fn core_versions(port: u16) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": format!("127.0.0.1:{port}")}
        ],
    })
}

/// The resource types `state` serves (Elasticsearch only with ECK).
pub(crate) fn served(state: &ClusterState) -> impl Iterator<Item = &'static ResourceInfo> + '_ {
    ResourceKey::all()
        .filter(|k| state.serves(k))
        .filter_map(|k| k.info())
}

fn entries(infos: &[&'static ResourceInfo]) -> Vec<Value> {
    let mut out = Vec::new();
    for i in infos {
        let mut e = json!({
            "name": i.key.plural,
            "singularName": i.singular,
            "namespaced": i.namespaced,
            "kind": i.kind,
            "verbs": i.verbs,
        });
        if !i.short_names.is_empty() {
            e["shortNames"] = json!(i.short_names);
        }
        if !i.categories.is_empty() {
            e["categories"] = json!(i.categories);
        }
        out.push(e);
        if i.status_subresource {
            out.push(json!({
                "name": format!("{}/status", i.key.plural),
                "singularName": "",
                "namespaced": i.namespaced,
                "kind": i.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    out
}

pub(crate) fn core_resources() -> Value {
    let infos: Vec<&'static ResourceInfo> = ResourceKey::all()
        .filter(|k| k.group.is_empty())
        .filter_map(|k| k.info())
        .collect();
    json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": entries(&infos),
    })
}

fn group_names(state: &ClusterState) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for i in served(state) {
        if !i.key.group.is_empty() && !out.iter().any(|(g, _)| *g == i.key.group) {
            out.push((i.key.group, i.key.version));
        }
    }
    out
}

fn group_doc(group: &str, version: &str) -> Value {
    let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    json!({
        "name": group,
        "versions": [gv.clone()],
        "preferredVersion": gv,
    })
}

pub(crate) fn groups(state: &ClusterState) -> Value {
    let groups: Vec<Value> = group_names(state)
        .into_iter()
        .map(|(g, v)| group_doc(g, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub(crate) fn group(state: &ClusterState, group: &str) -> Option<Value> {
    let (g, v) = group_names(state).into_iter().find(|(g, _)| *g == group)?;
    let mut doc = group_doc(g, v);
    doc["kind"] = "APIGroup".into();
    doc["apiVersion"] = "v1".into();
    Some(doc)
}

pub(crate) fn group_resources(state: &ClusterState, group: &str, version: &str) -> Option<Value> {
    let infos: Vec<&'static ResourceInfo> = served(state)
        .filter(|i| i.key.group == group && i.key.version == version && !group.is_empty())
        .collect();
    if infos.is_empty() {
        return None;
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": format!("{group}/{version}"),
        "resources": entries(&infos),
    }))
}

pub(crate) fn root_paths(state: &ClusterState) -> Value {
    let mut paths = vec![
        "/api".to_string(),
        "/api/v1".to_string(),
        "/apis".to_string(),
    ];
    for (g, v) in group_names(state) {
        paths.push(format!("/apis/{g}"));
        paths.push(format!("/apis/{g}/{v}"));
    }
    paths.extend(["/healthz", "/livez", "/readyz", "/version"].map(String::from));
    json!({"paths": paths})
}
