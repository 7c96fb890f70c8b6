//! The ECK `Elasticsearch` resource: how to reach it and the fields the plugin reads.

use std::collections::BTreeMap;

use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde::Deserialize;

use super::clients::ContextClient;
use super::failure::ContextFailure;

pub const GROUP: &str = "elasticsearch.k8s.elastic.co";
pub const VERSION: &str = "v1";
pub const KIND: &str = "Elasticsearch";
pub const PLURAL: &str = "elasticsearches";
/// Annotation ECK writes with the aliases it put into the cluster settings.
pub const ECK_MANAGED_REMOTES_ANNOTATION: &str =
    "elasticsearch.k8s.elastic.co/managed-remote-clusters";

pub fn elasticsearch_resource() -> ApiResource {
    ApiResource {
        group: GROUP.to_string(),
        version: VERSION.to_string(),
        api_version: format!("{GROUP}/{VERSION}"),
        kind: KIND.to_string(),
        plural: PLURAL.to_string(),
    }
}

/// The spec fields the plugin reads (unknown fields ignored).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ElasticsearchSpec {
    pub version: Option<String>,
    pub remote_cluster_server: Option<RemoteClusterServer>,
    pub remote_clusters: Vec<RemoteClusterEntry>,
    pub node_sets: Vec<NodeSet>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RemoteClusterServer {
    pub enabled: bool,
    pub service: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RemoteClusterEntry {
    pub name: String,
    pub elasticsearch_ref: Option<ObjectRef>,
    pub api_key: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectRef {
    pub name: String,
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeSet {
    pub name: String,
    pub count: Option<i64>,
}

/// The status fields ECK reports (`pkg/apis/elasticsearch/v1/status.go`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ElasticsearchStatus {
    pub available_nodes: Option<i64>,
    pub version: Option<String>,
    pub health: Option<String>,
    pub phase: Option<String>,
    pub observed_generation: Option<i64>,
}

/// An Elasticsearch resource as read, with the typed views of its spec and status.
#[derive(Debug, Clone)]
pub struct Elasticsearch {
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
    pub generation: Option<i64>,
    pub creation_timestamp: Option<String>,
    pub annotations: BTreeMap<String, String>,
    pub spec: ElasticsearchSpec,
    pub status: ElasticsearchStatus,
}

impl Elasticsearch {
    /// Reads the typed view out of a dynamic object; fields of an unexpected shape read as absent.
    pub fn from_dynamic(object: &DynamicObject) -> Self {
        let field = |name: &str| object.data.get(name).cloned().unwrap_or_default();
        Self {
            namespace: object.metadata.namespace.clone().unwrap_or_default(),
            name: object.metadata.name.clone().unwrap_or_default(),
            uid: object.metadata.uid.clone(),
            generation: object.metadata.generation,
            creation_timestamp: object
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.to_string()),
            annotations: object.metadata.annotations.clone().unwrap_or_default(),
            spec: serde_json::from_value(field("spec")).unwrap_or_default(),
            status: serde_json::from_value(field("status")).unwrap_or_default(),
        }
    }
}

/// Where a listing looked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListScope {
    AllNamespaces,
    Namespace(String),
}

/// The outcome of listing one context.
#[derive(Debug, Clone)]
pub struct Listing {
    pub items: Vec<Elasticsearch>,
    /// The scope actually listed.
    pub scope: ListScope,
    /// Set when the cluster-wide list was denied and the context's namespace was listed instead.
    pub narrowed_because: Option<String>,
}

/// Lists Elasticsearch resources; a denied cluster-wide list falls back to the context's namespace.
pub async fn list_elasticsearches(
    client: &ContextClient,
    scope: ListScope,
) -> Result<Listing, ContextFailure> {
    let resource = elasticsearch_resource();
    let first = list_in(client, &resource, &scope).await;
    match (first, &scope) {
        (Ok(items), _) => Ok(Listing {
            items,
            scope,
            narrowed_because: None,
        }),
        (Err(denied), ListScope::AllNamespaces) if denied.is_forbidden() => {
            let fallback = ListScope::Namespace(client.namespace.clone());
            let items = list_in(client, &resource, &fallback).await?;
            Ok(Listing {
                items,
                scope: fallback,
                narrowed_because: Some(denied.message),
            })
        }
        (Err(failure), _) if failure.is_not_found() => Err(ContextFailure::eck_not_installed(
            &client.context,
            &client.server,
        )),
        (Err(failure), _) => Err(failure),
    }
}

async fn list_in(
    client: &ContextClient,
    resource: &ApiResource,
    scope: &ListScope,
) -> Result<Vec<Elasticsearch>, ContextFailure> {
    let api: Api<DynamicObject> = match scope {
        ListScope::AllNamespaces => Api::all_with(client.client.clone(), resource),
        ListScope::Namespace(ns) => Api::namespaced_with(client.client.clone(), ns, resource),
    };
    let list = client.call(api.list(&ListParams::default())).await;
    let list = match list {
        Err(failure) if failure.is_not_found() => {
            return Err(ContextFailure::eck_not_installed(
                &client.context,
                &client.server,
            ));
        }
        other => other?,
    };
    Ok(list.items.iter().map(Elasticsearch::from_dynamic).collect())
}
