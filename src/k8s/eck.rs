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
/// ECK's label naming the Elasticsearch a Secret or pod belongs to.
pub const LABEL_CLUSTER_NAME: &str = "elasticsearch.k8s.elastic.co/cluster-name";
/// ECK's label naming what a resource is (`elasticsearch`, `remote-ca`, ...).
pub const LABEL_TYPE: &str = "common.k8s.elastic.co/type";
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

/// Reads one Elasticsearch resource as the API server returns it; `None` when it does not exist.
pub async fn get_elasticsearch(
    client: &ContextClient,
    namespace: &str,
    name: &str,
) -> Result<Option<serde_json::Value>, ContextFailure> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.client.clone(), namespace, &elasticsearch_resource());
    match client.call(api.get_opt(name)).await {
        Ok(found) => Ok(found.map(|object| serde_json::to_value(object).unwrap_or_default())),
        Err(failure) if failure.is_not_found() => Err(ContextFailure::eck_not_installed(
            &client.context,
            &client.server,
        )),
        Err(failure) => Err(failure),
    }
}

/// The Elasticsearch resources of one namespace, as raw objects.
pub async fn list_raw_in(
    client: &ContextClient,
    namespace: &str,
) -> Result<Vec<serde_json::Value>, ContextFailure> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.client.clone(), namespace, &elasticsearch_resource());
    let list = client.call(api.list(&ListParams::default())).await?;
    Ok(list
        .items
        .into_iter()
        .map(|o| serde_json::to_value(o).unwrap_or_default())
        .collect())
}

/// Every Elasticsearch resource of the context as raw objects (namespace-wide when denied).
pub async fn list_raw(client: &ContextClient) -> Result<Vec<serde_json::Value>, ContextFailure> {
    let resource = elasticsearch_resource();
    let all: Api<DynamicObject> = Api::all_with(client.client.clone(), &resource);
    let list = match client.call(all.list(&ListParams::default())).await {
        Err(denied) if denied.is_forbidden() => {
            return list_raw_in(client, &client.namespace).await;
        }
        other => other?,
    };
    Ok(list
        .items
        .into_iter()
        .map(|o| serde_json::to_value(o).unwrap_or_default())
        .collect())
}

/// ECK's soft-owner labels and annotation on a Secret it derives from other resources
/// (`reconciler.SetSingleSoftOwner` / `SetMultipleSoftOwners`).
const SOFT_OWNER_KIND: &str = "eck.k8s.elastic.co/owner-kind";
const SOFT_OWNER_NAMESPACE: &str = "eck.k8s.elastic.co/owner-namespace";
const SOFT_OWNER_NAME: &str = "eck.k8s.elastic.co/owner-name";
const SOFT_OWNER_REFS: &str = "eck.k8s.elastic.co/owner-refs";

/// What sets the file-based settings of Elasticsearch `namespace/name`: the StackConfigPolicies
/// ECK names as soft owners of its `<name>-es-file-settings` Secret, as `StackConfigPolicy
/// ns/name`. Read as metadata only: the Secret's content never reaches the plugin. Nothing
/// when the Secret cannot be read.
pub async fn file_settings_owners(
    client: &ContextClient,
    namespace: &str,
    name: &str,
) -> Vec<String> {
    use k8s_openapi::api::core::v1::Secret;

    let api: Api<Secret> = Api::namespaced(client.client.clone(), namespace);
    let secret = format!("{name}-es-file-settings");
    let Ok(Some(meta)) = client.call(api.get_metadata_opt(&secret)).await else {
        return Vec::new();
    };
    let labels = meta.metadata.labels.unwrap_or_default();
    let Some(kind) = labels.get(SOFT_OWNER_KIND) else {
        return Vec::new();
    };
    if let (Some(ns), Some(owner)) = (
        labels.get(SOFT_OWNER_NAMESPACE),
        labels.get(SOFT_OWNER_NAME),
    ) {
        return vec![format!("{kind} {ns}/{owner}")];
    }
    let refs = meta
        .metadata
        .annotations
        .unwrap_or_default()
        .remove(SOFT_OWNER_REFS)
        .and_then(|json| serde_json::from_str::<Vec<String>>(&json).ok())
        .unwrap_or_default();
    refs.into_iter()
        .map(|owner| format!("{kind} {owner}"))
        .collect()
}

/// A Warning event about an Elasticsearch resource, as `kubectl get events` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarningEvent {
    pub reason: String,
    pub action: Option<String>,
    pub message: String,
}

/// The Warning events of Elasticsearch `namespace/name` that last happened (`lastTimestamp`, else
/// `eventTime`, else `firstTimestamp`) at `since` or later
/// (a list with field selectors, as `kubectl get events --field-selector` sends), oldest first.
/// Events that cannot be read (RBAC) are none.
pub async fn warning_events(
    client: &ContextClient,
    namespace: &str,
    name: &str,
    since: jiff::Timestamp,
) -> Vec<WarningEvent> {
    use k8s_openapi::api::core::v1::Event;

    let events: Api<Event> = Api::namespaced(client.client.clone(), namespace);
    let selector = format!("involvedObject.kind={KIND},involvedObject.name={name},type=Warning");
    let Ok(list) = client
        .call(events.list(&ListParams::default().fields(&selector)))
        .await
    else {
        return Vec::new();
    };
    let mut found: Vec<(jiff::Timestamp, WarningEvent)> = list
        .items
        .into_iter()
        .filter_map(|e| {
            let at: jiff::Timestamp = e
                .last_timestamp
                .as_ref()
                .map(|t| t.0)
                .or_else(|| e.event_time.as_ref().map(|t| t.0))
                .or_else(|| e.first_timestamp.as_ref().map(|t| t.0))?;
            (at >= since).then(|| {
                (
                    at,
                    WarningEvent {
                        reason: e.reason.unwrap_or_default(),
                        action: e.action.filter(|a| !a.is_empty()),
                        message: e.message.unwrap_or_default(),
                    },
                )
            })
        })
        .collect();
    found.sort_by_key(|(at, _)| *at);
    found.into_iter().map(|(_, e)| e).collect()
}

/// The address a LoadBalancer Service got, once it has one, as `HOST:PORT`: the host name (else
/// IP) of its first ingress, and the Service's port `port` names (ECK keeps the ports of a
/// user's Service template, so `rcs` may be 443).
pub fn load_balancer_address(
    service: Option<&k8s_openapi::api::core::v1::Service>,
    port: &crate::plan::ServicePort,
) -> Option<String> {
    let service = service?;
    let ingress = service
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?
        .first()?;
    let host = ingress.hostname.clone().or_else(|| ingress.ip.clone())?;
    let ports: Vec<(Option<&str>, i32)> = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .map(|p| (p.name.as_deref(), p.port))
        .collect();
    Some(crate::plan::host_port(&host, port.of(&ports)))
}

pub const CRD_NAME: &str = "elasticsearches.elasticsearch.k8s.elastic.co";

/// What the ECK operator of a context supports and is licensed for (the licence of the operator
/// managing `namespace`). Facts that cannot be read
/// (RBAC) are left unknown rather than guessed.
pub async fn operator_facts(client: &ContextClient, namespace: &str) -> crate::plan::Operator {
    let (license_level, features) =
        tokio::join!(license_level(client, namespace), crd_support(client));
    crate::plan::Operator {
        license_level,
        crd_has_api_key: features.api_key,
        crd_has_remote_cluster_server: features.remote_cluster_server,
        crd_has_server_service: features.server_service,
    }
}

/// The licence level ECK reports (`eck_license_level` of an `elastic-licensing` ConfigMap,
/// eck-remote-clusters.md section 7) for the operator that manages `namespace`: with several
/// operators installed, each reports in its own namespace, and the one whose `eck.yaml`
/// `namespaces` lists `namespace` (or, failing that, one managing every namespace) counts.
/// The report is refreshed every two minutes, so it may lag behind a licence change.
async fn license_level(client: &ContextClient, namespace: &str) -> Option<String> {
    use k8s_openapi::api::core::v1::ConfigMap;

    let configmaps: Api<ConfigMap> = Api::all(client.client.clone());
    let by_label = ListParams::default().labels("common.k8s.elastic.co/type=elastic-usage");
    if let Ok(list) = client.call(configmaps.list(&by_label)).await {
        let reports: Vec<(String, String)> = list
            .items
            .iter()
            .filter(|c| c.metadata.name.as_deref() == Some("elastic-licensing"))
            .filter_map(|c| {
                let level = c.data.as_ref()?.get("eck_license_level")?.clone();
                Some((c.metadata.namespace.clone()?, level))
            })
            .collect();
        if let [(_, level)] = reports.as_slice() {
            return Some(level.clone());
        }
        let mut operators = Vec::new();
        for (operator_namespace, level) in reports {
            let managed = managed_namespaces(client, &operator_namespace).await;
            operators.push(LicenceReport { level, managed });
        }
        return level_for_namespace(namespace, &operators);
    }
    // The default operator namespace, for users who may not list ConfigMaps cluster-wide.
    let default_ns: Api<ConfigMap> = Api::namespaced(client.client.clone(), "elastic-system");
    match client.call(default_ns.get_opt("elastic-licensing")).await {
        Ok(Some(found)) => found.data.and_then(|d| d.get("eck_license_level").cloned()),
        _ => None,
    }
}

/// One operator's licence report and the namespaces it manages (`None`: all, or unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenceReport {
    pub level: String,
    pub managed: Option<Vec<String>>,
}

/// The level of the operator managing `namespace`: one listing it, else one managing every
/// namespace; when several qualify and disagree, unknown.
pub fn level_for_namespace(namespace: &str, operators: &[LicenceReport]) -> Option<String> {
    let listing: Vec<&LicenceReport> = operators
        .iter()
        .filter(|o| {
            o.managed
                .as_ref()
                .is_some_and(|m| m.iter().any(|n| n == namespace))
        })
        .collect();
    let candidates = if listing.is_empty() {
        operators.iter().filter(|o| o.managed.is_none()).collect()
    } else {
        listing
    };
    let first = candidates.first()?;
    candidates
        .iter()
        .all(|o| o.level == first.level)
        .then(|| first.level.clone())
}

/// The `namespaces` of the operator configuration (`eck.yaml` of a ConfigMap in the operator
/// namespace, as ECK's Helm chart writes it); `None` when it manages all or cannot be read.
async fn managed_namespaces(
    client: &ContextClient,
    operator_namespace: &str,
) -> Option<Vec<String>> {
    use k8s_openapi::api::core::v1::ConfigMap;

    let api: Api<ConfigMap> = Api::namespaced(client.client.clone(), operator_namespace);
    let list = client.call(api.list(&ListParams::default())).await.ok()?;
    let config = list
        .items
        .iter()
        .find_map(|c| c.data.as_ref()?.get("eck.yaml").cloned())?;
    let parsed: serde_json::Value = serde_saphyr::from_str(&config).ok()?;
    let namespaces: Vec<String> = parsed
        .get("namespaces")?
        .as_array()?
        .iter()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect();
    (!namespaces.is_empty()).then_some(namespaces)
}

/// What the installed Elasticsearch CRD supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrdFeatures {
    /// `remoteClusters[].apiKey` (ECK >= 2.16)
    pub api_key: bool,
    /// `remoteClusterServer` (ECK >= 2.16)
    pub remote_cluster_server: bool,
    /// `remoteClusterServer.service` (ECK >= 3.3)
    pub server_service: bool,
}

async fn crd_support(client: &ContextClient) -> CrdFeatures {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

    let crds: Api<CustomResourceDefinition> = Api::all(client.client.clone());
    match client.call(crds.get_opt(CRD_NAME)).await {
        Ok(Some(crd)) => crd_features(&serde_json::to_value(&crd).unwrap_or_default()),
        // Unreadable: assume a current operator; admission still guards the write.
        _ => CrdFeatures {
            api_key: true,
            remote_cluster_server: true,
            server_service: true,
        },
    }
}

/// Reads ECK's features from the v1 schema of its CRD (eck-remote-clusters.md section 7).
pub fn crd_features(crd: &serde_json::Value) -> CrdFeatures {
    let spec = crd
        .pointer("/spec/versions")
        .and_then(|v| v.as_array())
        .and_then(|versions| versions.iter().find(|v| v["name"] == "v1"))
        .and_then(|v| v.pointer("/schema/openAPIV3Schema/properties/spec/properties"))
        .cloned()
        .unwrap_or_default();
    CrdFeatures {
        api_key: spec
            .pointer("/remoteClusters/items/properties/apiKey")
            .is_some(),
        remote_cluster_server: spec.pointer("/remoteClusterServer").is_some(),
        server_service: spec
            .pointer("/remoteClusterServer/properties/service")
            .is_some(),
    }
}

/// The last `tail_lines` lines of the last `since_seconds` of the logs of Elasticsearch
/// `namespace/name`'s pods (at most `max_pods` of them), as `kubectl logs --tail --since` reads
/// them. Pods whose log cannot be read (RBAC, not started) give nothing.
pub async fn recent_pod_logs(
    client: &ContextClient,
    namespace: &str,
    name: &str,
    tail_lines: i64,
    since_seconds: i64,
    max_pods: usize,
) -> Vec<String> {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::LogParams;

    let pods: Api<Pod> = Api::namespaced(client.client.clone(), namespace);
    let selector = format!("{LABEL_CLUSTER_NAME}={name}");
    let Ok(list) = client
        .call(pods.list(&ListParams::default().labels(&selector)))
        .await
    else {
        return Vec::new();
    };
    let params = LogParams {
        tail_lines: Some(tail_lines),
        since_seconds: Some(since_seconds),
        ..LogParams::default()
    };
    let mut lines = Vec::new();
    for pod in list.items.iter().take(max_pods) {
        let Some(pod_name) = pod.metadata.name.as_deref() else {
            continue;
        };
        if let Ok(text) = client.call(pods.logs(pod_name, &params)).await {
            lines.extend(text.lines().map(str::to_string));
        }
    }
    lines
}

/// Conformance with ECK's real CRD, which the repository does not carry: these run only when
/// asked, `ECK_CRD=<path to elasticsearch.k8s.elastic.co_elasticsearches.yaml> cargo test
/// -- --ignored eck_crd_conformance` (`.ci/run` does), and fail without the file.
#[cfg(test)]
mod eck_crd_conformance {
    use super::*;

    fn real_crd() -> serde_json::Value {
        let path = std::env::var_os("ECK_CRD").expect(
            "ECK_CRD is not set: give the path to ECK's CRD \
             elasticsearch.k8s.elastic.co_elasticsearches.yaml",
        );
        let path = std::path::Path::new(&path);
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
            panic!("cannot read ECK_CRD={}: {e}", path.display());
        });
        serde_saphyr::from_str(&text).expect("ECK_CRD is a YAML CRD")
    }

    #[test]
    #[ignore = "needs ECK_CRD=<path to ECK's elasticsearch CRD>"]
    fn features_of_the_installed_eck_crd() {
        assert_eq!(
            crd_features(&real_crd()),
            CrdFeatures {
                api_key: true,
                remote_cluster_server: true,
                server_service: true
            }
        );
    }

    #[test]
    #[ignore = "needs ECK_CRD=<path to ECK's elasticsearch CRD>"]
    fn an_older_crd_without_api_keys_is_recognised() {
        let mut crd = real_crd();
        let versions = crd["spec"]["versions"].as_array_mut().unwrap();
        let v1 = versions.iter_mut().find(|v| v["name"] == "v1").unwrap();
        let spec = &mut v1["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
        spec.as_object_mut().unwrap().remove("remoteClusterServer");
        spec["remoteClusters"]["items"]["properties"]
            .as_object_mut()
            .unwrap()
            .remove("apiKey");
        let features = crd_features(&crd);
        assert!(!features.api_key && !features.remote_cluster_server && !features.server_service);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(level: &str, managed: Option<&[&str]>) -> LicenceReport {
        LicenceReport {
            level: level.to_string(),
            managed: managed.map(|m| m.iter().map(|n| n.to_string()).collect()),
        }
    }

    #[test]
    fn the_operator_listing_the_namespace_decides_the_licence() {
        let operators = [
            report("basic", None),
            report("enterprise", Some(&["search", "logs"])),
            report("enterprise_trial", Some(&["shop"])),
        ];
        assert_eq!(
            level_for_namespace("search", &operators).as_deref(),
            Some("enterprise")
        );
        assert_eq!(
            level_for_namespace("shop", &operators).as_deref(),
            Some("enterprise_trial")
        );
        assert_eq!(
            level_for_namespace("other", &operators).as_deref(),
            Some("basic"),
            "an operator managing every namespace covers the rest"
        );
    }

    #[test]
    fn operators_that_disagree_on_a_namespace_leave_the_licence_unknown() {
        let operators = [report("basic", None), report("enterprise", None)];
        assert_eq!(level_for_namespace("search", &operators), None);
        let agreeing = [report("enterprise", None), report("enterprise", None)];
        assert_eq!(
            level_for_namespace("search", &agreeing).as_deref(),
            Some("enterprise")
        );
        assert_eq!(level_for_namespace("search", &[]), None);
    }
}
