//! `kubectl remote-cluster list`: every ECK-managed Elasticsearch across contexts.

use std::sync::Arc;

use serde::Serialize;

use crate::cli::{DocumentFormat, GlobalFlags, ListArgs, OutputFormat};
use crate::error::ExitCode;
use crate::k8s::clients::ClientPool;
use crate::k8s::eck::{self, ECK_MANAGED_REMOTES_ANNOTATION, Elasticsearch, ListScope, Listing};
use crate::k8s::failure::ContextFailure;
use crate::k8s::kubeconfig::{self, LoadedKubeconfig};
use crate::output::{self, API_VERSION, Cell, Table};

/// Contexts that reach the same API server; the first is the one queried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerGroup {
    pub server: String,
    pub contexts: Vec<String>,
}

impl ServerGroup {
    pub fn queried(&self) -> &str {
        &self.contexts[0]
    }
}

/// Groups contexts by the API server they point at, keeping the order they were given in.
pub fn group_by_server(contexts: &[(String, String)]) -> Vec<ServerGroup> {
    let mut groups: Vec<ServerGroup> = Vec::new();
    for (context, server) in contexts {
        let identity = kubeconfig::server_identity(server);
        match groups
            .iter_mut()
            .find(|g| kubeconfig::server_identity(&g.server) == identity)
        {
            Some(group) => group.contexts.push(context.clone()),
            None => groups.push(ServerGroup {
                server: server.clone(),
                contexts: vec![context.clone()],
            }),
        }
    }
    groups
}

/// The `-o json|yaml` document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterList {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub items: Vec<ClusterSummary>,
    pub contexts: Vec<ContextReport>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSummary {
    pub context: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also_reachable_as: Vec<String>,
    pub server: String,
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
    /// `spec.version`: what the cluster should run.
    pub version: Option<String>,
    /// `status.version`: the lowest version running.
    pub running_version: Option<String>,
    pub health: Option<String>,
    pub phase: Option<String>,
    pub available_nodes: Option<i64>,
    pub desired_nodes: i64,
    pub remote_cluster_server: RemoteServerSummary,
    pub remote_clusters: Vec<RemoteSummary>,
    pub remote_cluster_count: usize,
    /// Aliases ECK reports having put into the cluster settings.
    pub eck_managed_aliases: Vec<String>,
    pub creation_timestamp: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteServerSummary {
    pub enabled: bool,
    pub service_type: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteSummary {
    pub alias: String,
    /// `namespace/name` of the referenced Elasticsearch, when the entry has one.
    pub elasticsearch_ref: Option<String>,
    pub security_model: SecurityModel,
    /// A link the plugin made outside `spec.remoteClusters` (across Kubernetes clusters or to
    /// a cluster outside Kubernetes): the remote (`context/namespace/name`, or `external`) and
    /// the address the local connects to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_address: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecurityModel {
    ApiKey,
    Certificate,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextReport {
    pub name: String,
    pub server: String,
    pub result: ContextResult,
    /// For `SameServer`: the context whose listing covers this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listed_as: Option<String>,
    /// The namespace listed, when not all namespaces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ContextFailure>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ContextResult {
    Listed,
    SameServer,
    Failed,
}

/// Turns what was read from one Elasticsearch resource into a row of the listing.
pub fn summarize(es: &Elasticsearch, group: &ServerGroup) -> ClusterSummary {
    let server = es.spec.remote_cluster_server.clone().unwrap_or_default();
    let service_type = server
        .service
        .as_ref()
        .and_then(|s| s.pointer("/spec/type"))
        .and_then(|t| t.as_str())
        .map(str::to_string);
    let remote_clusters: Vec<RemoteSummary> = es
        .spec
        .remote_clusters
        .iter()
        .map(|entry| RemoteSummary {
            alias: entry.name.clone(),
            elasticsearch_ref: entry.elasticsearch_ref.as_ref().map(|r| {
                format!(
                    "{}/{}",
                    r.namespace.clone().unwrap_or_else(|| es.namespace.clone()),
                    r.name
                )
            }),
            security_model: if entry.api_key.is_some() {
                SecurityModel::ApiKey
            } else {
                SecurityModel::Certificate
            },
            remote: None,
            proxy_address: None,
        })
        .collect();
    let mut remote_clusters = remote_clusters;
    remote_clusters.extend(plugin_links_outside_the_spec(es));
    let eck_managed_aliases = crate::plan::split_aliases(
        es.annotations
            .get(ECK_MANAGED_REMOTES_ANNOTATION)
            .map(String::as_str),
    );
    ClusterSummary {
        context: group.queried().to_string(),
        also_reachable_as: group.contexts[1..].to_vec(),
        server: group.server.clone(),
        namespace: es.namespace.clone(),
        name: es.name.clone(),
        uid: es.uid.clone(),
        version: es.spec.version.clone(),
        running_version: es.status.version.clone(),
        health: es.status.health.clone(),
        phase: es.status.phase.clone(),
        available_nodes: es.status.available_nodes,
        desired_nodes: es.spec.node_sets.iter().filter_map(|n| n.count).sum(),
        remote_cluster_server: RemoteServerSummary {
            enabled: server.enabled,
            service_type,
        },
        remote_cluster_count: remote_clusters.len(),
        remote_clusters,
        eck_managed_aliases,
        creation_timestamp: es.creation_timestamp.clone(),
    }
}

/// The plugin's links that live in the cluster settings rather than `spec.remoteClusters`
/// (across Kubernetes clusters, to clusters outside Kubernetes), from its record.
fn plugin_links_outside_the_spec(es: &Elasticsearch) -> Vec<RemoteSummary> {
    let records: std::collections::BTreeMap<String, crate::plan::LinkRecord> = es
        .annotations
        .get(crate::plan::LINKS_ANNOTATION)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    records
        .into_iter()
        .filter(|(_, record)| record.proxy_address.is_some())
        .map(|(alias, record)| RemoteSummary {
            alias,
            elasticsearch_ref: None,
            security_model: match record.security {
                crate::plan::SecurityModel::ApiKey => SecurityModel::ApiKey,
                crate::plan::SecurityModel::Certificate => SecurityModel::Certificate,
            },
            remote: Some(if crate::plan::is_external(&record) {
                "external".to_string()
            } else {
                format!(
                    "{}/{}/{}",
                    record.remote_context, record.remote_namespace, record.remote_name
                )
            }),
            proxy_address: record.proxy_address,
        })
        .collect()
}

fn or_dash(value: &Option<String>) -> String {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .unwrap_or("-")
        .to_string()
}

/// kubectl's short age: seconds, minutes, hours or days, whichever is the largest whole unit.
pub fn age(created: Option<&str>, now: jiff::Timestamp) -> String {
    let Some(created) = created.and_then(|c| c.parse::<jiff::Timestamp>().ok()) else {
        return "-".to_string();
    };
    let seconds = now.as_second().saturating_sub(created.as_second()).max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// Renders the table (or wide table) of the listing.
pub fn render_table(
    items: &[ClusterSummary],
    wide: bool,
    headers: bool,
    now: jiff::Timestamp,
) -> String {
    let mut columns = vec![
        "CONTEXT",
        "NAMESPACE",
        "NAME",
        "VERSION",
        "HEALTH",
        "PHASE",
        "NODES",
        "REMOTE-SERVER",
        "REMOTES",
    ];
    if wide {
        columns.extend(["ALIASES", "SERVER-SERVICE", "API-SERVER", "AGE"]);
    }
    let mut table = Table::new(columns);
    for item in items {
        let health = or_dash(&item.health);
        let mut row: Vec<Cell> = vec![
            item.context.clone().into(),
            item.namespace.clone().into(),
            item.name.clone().into(),
            or_dash(&item.version).into(),
            Cell::styled(health.clone(), output::health_style(&health)),
            or_dash(&item.phase).into(),
            item.available_nodes
                .map_or("-".to_string(), |n| n.to_string())
                .into(),
            if item.remote_cluster_server.enabled {
                "on"
            } else {
                "off"
            }
            .into(),
            item.remote_cluster_count.to_string().into(),
        ];
        if wide {
            let aliases: Vec<&str> = item
                .remote_clusters
                .iter()
                .map(|r| r.alias.as_str())
                .collect();
            row.extend([
                if aliases.is_empty() {
                    "-".to_string()
                } else {
                    aliases.join(",")
                }
                .into(),
                if item.remote_cluster_server.enabled {
                    item.remote_cluster_server
                        .service_type
                        .clone()
                        .unwrap_or_else(|| "ClusterIP".to_string())
                } else {
                    "-".to_string()
                }
                .into(),
                item.server.clone().into(),
                age(item.creation_timestamp.as_deref(), now).into(),
            ]);
        }
        table.push(row);
    }
    table.render(headers)
}

/// `-o name`: one `CONTEXT/NAMESPACE/NAME` line per cluster.
pub fn render_names(items: &[ClusterSummary]) -> String {
    items
        .iter()
        .map(|i| format!("{}/{}/{}\n", i.context, i.namespace, i.name))
        .collect()
}

/// Lists the chosen contexts concurrently, reports failures on stderr and returns the exit code.
pub async fn run(
    global: &GlobalFlags,
    args: &ListArgs,
    kubeconfig: Arc<LoadedKubeconfig>,
) -> anyhow::Result<ExitCode> {
    let contexts = kubeconfig.select_contexts(&global.contexts, args.all_contexts)?;
    let timeout = kubeconfig::parse_request_timeout(&global.request_timeout)?;
    let with_servers: Vec<(String, String)> = contexts
        .iter()
        .map(|c| (c.clone(), kubeconfig.server_of(c).unwrap_or_default()))
        .collect();
    let groups = group_by_server(&with_servers);
    for group in groups.iter().filter(|g| g.contexts.len() > 1) {
        output::note(&format!(
            "Contexts {} reach the same API server ({}); its clusters are listed once, under {:?}.",
            quoted_list(&group.contexts),
            group.server,
            group.queried()
        ));
    }

    let pool = ClientPool::new(kubeconfig.clone(), timeout);
    let scope = match (&global.namespace, args.all_namespaces) {
        (Some(ns), false) => ListScope::Namespace(ns.clone()),
        _ => ListScope::AllNamespaces,
    };
    let listings = futures::future::join_all(groups.iter().map(|group| {
        let pool = &pool;
        let scope = scope.clone();
        async move {
            let client = pool.client(group.queried()).await?;
            eck::list_elasticsearches(&client, scope).await
        }
    }))
    .await;

    let mut items = Vec::new();
    let mut reports = Vec::new();
    let mut failed = false;
    for (group, listing) in groups.iter().zip(listings) {
        let report = report_for(group, &listing);
        match listing {
            Ok(listing) => {
                if let Some(warning) = &report.warning {
                    output::warning(&format!("context {:?}: {warning}", group.queried()));
                }
                let mut found: Vec<ClusterSummary> = listing
                    .items
                    .iter()
                    .map(|es| summarize(es, group))
                    .collect();
                found.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
                items.extend(found);
            }
            Err(failure) => {
                failed = true;
                output::error(&format!(
                    "context {:?}: {}",
                    failure.context, failure.message
                ));
                if global.verbosity > 0 {
                    for cause in &failure.causes {
                        output::info(&format!("  caused by: {cause}"));
                    }
                }
            }
        }
        reports.push(report);
        for other in &group.contexts[1..] {
            reports.push(ContextReport {
                name: other.clone(),
                server: group.server.clone(),
                result: ContextResult::SameServer,
                listed_as: Some(group.queried().to_string()),
                namespace: None,
                warning: None,
                error: None,
            });
        }
    }

    match args.output {
        OutputFormat::Table | OutputFormat::Wide => {
            if items.is_empty() {
                if !failed {
                    output::info(&format!(
                        "No Elasticsearch clusters found in {}.",
                        describe_scope(&contexts, &scope)
                    ));
                }
            } else {
                output::write_stdout(&render_table(
                    &items,
                    args.output == OutputFormat::Wide,
                    !args.no_headers,
                    jiff::Timestamp::now(),
                ))?;
            }
        }
        OutputFormat::Name => output::write_stdout(&render_names(&items))?,
        OutputFormat::Json | OutputFormat::Yaml => {
            let document = ClusterList {
                api_version: API_VERSION,
                kind: "ElasticsearchClusterList",
                items,
                contexts: reports,
            };
            let format = if args.output == OutputFormat::Json {
                DocumentFormat::Json
            } else {
                DocumentFormat::Yaml
            };
            output::print_document(&document, format.into())?;
        }
    }
    Ok(if failed {
        ExitCode::Failure
    } else {
        ExitCode::Ok
    })
}

fn report_for(group: &ServerGroup, listing: &Result<Listing, ContextFailure>) -> ContextReport {
    let mut report = ContextReport {
        name: group.queried().to_string(),
        server: group.server.clone(),
        result: ContextResult::Listed,
        listed_as: None,
        namespace: None,
        warning: None,
        error: None,
    };
    match listing {
        Ok(listing) => {
            if let ListScope::Namespace(ns) = &listing.scope {
                report.namespace = Some(ns.clone());
                if let Some(reason) = &listing.narrowed_because {
                    report.warning = Some(format!(
                        "not allowed to list Elasticsearch clusters in all namespaces, listed namespace {ns:?} only ({reason})"
                    ));
                }
            }
        }
        Err(failure) => {
            report.result = ContextResult::Failed;
            report.error = Some(failure.clone());
        }
    }
    report
}

fn quoted_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_scope(contexts: &[String], scope: &ListScope) -> String {
    let where_ = match scope {
        ListScope::AllNamespaces => "any namespace".to_string(),
        ListScope::Namespace(ns) => format!("namespace {ns:?}"),
    };
    let contexts = if contexts.len() == 1 {
        format!("context {:?}", contexts[0])
    } else {
        format!("contexts {}", quoted_list(contexts))
    };
    format!("{where_} of {contexts}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::eck::{
        ElasticsearchSpec, ElasticsearchStatus, NodeSet, ObjectRef, RemoteClusterEntry,
        RemoteClusterServer,
    };

    fn es(namespace: &str, name: &str) -> Elasticsearch {
        Elasticsearch {
            namespace: namespace.into(),
            name: name.into(),
            uid: Some("uid-1".into()),
            generation: Some(2),
            creation_timestamp: Some("2026-11-01T10:00:00Z".into()),
            annotations: [(
                ECK_MANAGED_REMOTES_ANNOTATION.to_string(),
                "west".to_string(),
            )]
            .into(),
            spec: ElasticsearchSpec {
                version: Some("9.1.0".into()),
                remote_cluster_server: Some(RemoteClusterServer {
                    enabled: true,
                    service: Some(serde_json::json!({"spec": {"type": "LoadBalancer"}})),
                }),
                remote_clusters: vec![
                    RemoteClusterEntry {
                        name: "west".into(),
                        elasticsearch_ref: Some(ObjectRef {
                            name: "logs".into(),
                            namespace: None,
                        }),
                        api_key: Some(serde_json::json!({"access": {}})),
                    },
                    RemoteClusterEntry {
                        name: "old".into(),
                        elasticsearch_ref: None,
                        api_key: None,
                    },
                ],
                node_sets: vec![
                    NodeSet {
                        name: "hot".into(),
                        count: Some(3),
                    },
                    NodeSet {
                        name: "cold".into(),
                        count: Some(2),
                    },
                ],
            },
            status: ElasticsearchStatus {
                available_nodes: Some(5),
                version: Some("9.1.0".into()),
                health: Some("green".into()),
                phase: Some("Ready".into()),
                observed_generation: Some(2),
            },
        }
    }

    fn group(contexts: &[&str]) -> ServerGroup {
        ServerGroup {
            server: "https://127.0.0.1:6443".into(),
            contexts: contexts.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn ages_read_like_kubectl() {
        let now: jiff::Timestamp = "2026-11-25T12:00:00Z".parse().unwrap();
        assert_eq!(age(Some("2026-11-25T11:59:30Z"), now), "30s");
        assert_eq!(age(Some("2026-11-25T11:00:00Z"), now), "60m");
        assert_eq!(age(Some("2026-11-25T06:00:00Z"), now), "6h");
        assert_eq!(age(Some("2026-11-20T12:00:00Z"), now), "5d");
        assert_eq!(age(None, now), "-");
    }

    #[test]
    fn contexts_on_one_server_form_one_group_in_order() {
        let groups = group_by_server(&[
            ("b".into(), "https://10.0.0.1:6443".into()),
            ("a".into(), "https://10.0.0.2:6443/".into()),
            ("b-admin".into(), "https://10.0.0.1:6443/".into()),
        ]);
        assert_eq!(
            groups,
            vec![
                ServerGroup {
                    server: "https://10.0.0.1:6443".into(),
                    contexts: vec!["b".into(), "b-admin".into()]
                },
                ServerGroup {
                    server: "https://10.0.0.2:6443/".into(),
                    contexts: vec!["a".into()]
                },
            ]
        );
    }

    #[test]
    fn summary_reads_spec_status_and_annotations() {
        let summary = summarize(&es("search", "east"), &group(&["east", "east-admin"]));
        insta::assert_json_snapshot!(summary);
    }

    #[test]
    fn table_and_wide_table() {
        let mut other = es("logs", "quickstart");
        other.spec.remote_cluster_server = None;
        other.spec.remote_clusters.clear();
        other.status = ElasticsearchStatus::default();
        let items = vec![
            summarize(&es("search", "east"), &group(&["east"])),
            summarize(&other, &group(&["east"])),
        ];
        let now: jiff::Timestamp = "2026-11-03T12:00:00Z".parse().unwrap();
        insta::assert_snapshot!("table", render_table(&items, false, true, now));
        insta::assert_snapshot!("wide", render_table(&items, true, true, now));
        insta::assert_snapshot!("no_headers", render_table(&items, false, false, now));
        assert_eq!(
            render_names(&items),
            "east/search/east\neast/logs/quickstart\n"
        );
    }
}
