//! The pure part of `describe`: what one cluster's links are, from what was read.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::plan::{ClusterId, EsState, SecurityModel};

/// Who keeps a link in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Manager {
    /// A `spec.remoteClusters` entry that ECK reconciles.
    #[serde(rename = "eck")]
    Eck,
    /// A `spec.remoteClusters` entry this plugin added; ECK reconciles it.
    #[serde(rename = "eck-added-by-plugin")]
    EckForPlugin,
    /// Cluster settings this plugin set (a link across Kubernetes clusters).
    #[serde(rename = "plugin")]
    Plugin,
    /// Cluster settings that nobody we know of manages.
    #[serde(rename = "unknown")]
    Unknown,
}

impl Manager {
    pub fn label(&self) -> &'static str {
        match self {
            Manager::Eck => "ECK",
            Manager::EckForPlugin => "ECK (added by plugin)",
            Manager::Plugin => "kubectl remote-cluster",
            Manager::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutgoingLink {
    pub alias: String,
    /// `namespace/name` for a link to a cluster of the same context, else the address.
    pub remote: String,
    pub security: Option<SecurityModel>,
    pub mode: Option<String>,
    pub managed_by: Manager,
    pub connected: Option<bool>,
    /// Why the link is not connected, as far as can be told.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Across Kubernetes clusters: the remote CA the local trusts, against the remote's current one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust: Option<Trust>,
}

/// The CA a link across Kubernetes clusters trusts, and whether the copy is still current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trust {
    /// SHA-256 of the CA copied when the link was made.
    pub trusted_fingerprint: String,
    /// SHA-256 of the remote's CA now, when its context could be read.
    pub current_fingerprint: Option<String>,
    /// `notAfter` of the remote's current CA.
    pub current_not_after: Option<String>,
    /// The remote's CA changed (rotation): the local's copy no longer matches.
    pub stale: bool,
}

/// The remote's CA now, as read from its context.
#[derive(Debug, Clone)]
pub struct CurrentCa {
    pub fingerprint: String,
    pub not_after: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IncomingLink {
    pub from: String,
    pub alias: String,
    pub security: SecurityModel,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub cluster: ClusterId,
    pub version: Option<String>,
    pub health: Option<String>,
    pub phase: Option<String>,
    pub remote_cluster_server: bool,
    pub outgoing: Vec<OutgoingLink>,
    pub incoming: Vec<IncomingLink>,
    /// The plugin's transport trust restricted by node name (a peer on Elastic Cloud Hosted or
    /// ECE with the certificate model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_restriction: Option<TrustRestriction>,
    /// `_remote/info` could be read: connection states are live.
    pub live: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Report {
    /// A configured link that is known not to be connected.
    pub fn has_broken_link(&self) -> bool {
        self.outgoing.iter().any(|l| l.connected == Some(false))
    }
}

/// The node names this cluster accepts on its transport, and for which peer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustRestriction {
    pub config_map: String,
    /// `trust.subject_name` as mounted: this cluster, its ECK peers, then each restricted peer.
    pub subject_names: Vec<String>,
    /// The restricted peers (their alias) and their node-name patterns.
    pub peers: BTreeMap<String, Vec<String>>,
}

/// What was read for `describe`, all optional beyond the resource itself.
pub struct Observed<'a> {
    pub es: &'a EsState,
    /// Every other Elasticsearch of the same context.
    pub others: &'a [EsState],
    /// `GET /_remote/info`, when Elasticsearch could be reached, with what `_resolve/cluster`
    /// said of each alias (8.13+) merged in: its `connected`, and its `error` when it gave one.
    pub remote_info: Option<&'a Value>,
    /// The licence level of the operator, when readable.
    pub license_level: Option<&'a str>,
    /// For links across Kubernetes clusters, by alias: the remote's CA now.
    pub remote_cas: &'a BTreeMap<String, CurrentCa>,
    /// Links to this cluster found in other contexts' resources.
    pub incoming_elsewhere: &'a [IncomingLink],
    /// The restricted transport trust, when the resource uses it.
    pub restricted: Option<&'a crate::plan::RestrictedObserved>,
    /// Links and unlinks of this cluster that were interrupted (their pending records).
    pub pending: &'a [crate::plan::PendingOperation],
}

pub fn build(observed: &Observed<'_>, api_version: &'static str) -> Report {
    let es = observed.es;
    let text = |pointer: &str| {
        es.object
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let ours = es.plugin_links();
    let mut outgoing = Vec::new();
    let mut notes = Vec::new();
    for entry in es.remote_clusters() {
        let alias = entry
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let reference = entry.get("elasticsearchRef");
        let remote_name = reference
            .and_then(|r| r.get("name"))
            .and_then(Value::as_str);
        let remote_namespace = reference
            .and_then(|r| r.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or(&es.id.namespace);
        let security = if entry.get("apiKey").is_some() {
            SecurityModel::ApiKey
        } else {
            SecurityModel::Certificate
        };
        let remote = remote_name.map(|n| format!("{remote_namespace}/{n}"));
        let peer = remote_name.and_then(|name| {
            observed
                .others
                .iter()
                .find(|o| o.id.name == name && o.id.namespace == remote_namespace)
        });
        let live = observed.remote_info.and_then(|info| info.get(&alias));
        let error = live.and_then(reported_error);
        let connected = observed.remote_info.map(|_| {
            live.and_then(|l| l.get("connected"))
                .and_then(Value::as_bool)
                == Some(true)
                && error.is_none()
        });
        let problem = match (connected, error) {
            (Some(false), Some(error)) => Some(format!("Elasticsearch reports: {error}")),
            (Some(false), None) => Some(likely_reason(
                es,
                remote_name,
                peer,
                security,
                live,
                observed.license_level,
            )),
            _ => None,
        };
        outgoing.push(OutgoingLink {
            alias: alias.clone(),
            remote: remote.unwrap_or_else(|| "(no elasticsearchRef: ignored by ECK)".to_string()),
            security: Some(security),
            mode: live
                .and_then(|l| l.get("mode"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| Some("sniff".to_string())),
            managed_by: if ours.contains_key(&alias) {
                Manager::EckForPlugin
            } else {
                Manager::Eck
            },
            connected,
            problem,
            trust: None,
        });
    }
    if let Some(info) = observed.remote_info.and_then(Value::as_object) {
        for (alias, live) in info {
            if outgoing.iter().any(|l| &l.alias == alias) {
                continue;
            }
            let error = reported_error(live);
            let connected = live
                .get("connected")
                .and_then(Value::as_bool)
                .map(|c| c && error.is_none());
            let record = ours.get(alias).filter(|r| r.proxy_address.is_some());
            let trust = record.and_then(|r| trust_of(r, observed.remote_cas.get(alias)));
            let address = live
                .get("proxy_address")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    live.get("seeds").and_then(Value::as_array).map(|s| {
                        s.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                })
                .unwrap_or_default();
            outgoing.push(OutgoingLink {
                alias: alias.clone(),
                remote: match record {
                    Some(r) => format!("{} via {address}", recorded_remote(r)),
                    None => address,
                },
                security: Some(if live.get("cluster_credentials").is_some() {
                    SecurityModel::ApiKey
                } else {
                    SecurityModel::Certificate
                }),
                mode: live.get("mode").and_then(Value::as_str).map(str::to_string),
                managed_by: if record.is_some() { Manager::Plugin } else { Manager::Unknown },
                connected,
                problem: (connected == Some(false)).then(|| match (record, trust.as_ref()) {
                    (Some(_), _) if let Some(error) = error => format!("Elasticsearch reports: {error}; run `kubectl remote-cluster link` again to repair it"),
                    (None, _) if let Some(error) = error => format!("Elasticsearch reports: {error}"),
                    (Some(_), Some(t)) if t.stale => "the remote's CA changed (rotation) and the local still trusts the old one: run the same `kubectl remote-cluster link` again to refresh it".to_string(),
                    (Some(_), _) => "the remote does not answer or does not accept the key: run `kubectl remote-cluster link` again to repair it, and check the remote's exposure".to_string(),
                    (None, _) => "set in the cluster settings by someone else; check the address and the trust on both sides".to_string(),
                }),
                trust,
            });
        }
        for (alias, record) in ours.iter().filter(|(_, r)| r.proxy_address.is_some()) {
            if !info.contains_key(alias) {
                outgoing.push(OutgoingLink {
                    alias: alias.clone(),
                    remote: recorded_remote(record),
                    security: Some(record.security),
                    mode: None,
                    managed_by: Manager::Plugin,
                    connected: Some(false),
                    problem: Some("recorded but missing from the cluster settings: run `kubectl remote-cluster link` again to finish it".to_string()),
                    trust: trust_of(record, observed.remote_cas.get(alias)),
                });
            }
        }
    }
    if observed.remote_info.is_none() {
        notes.push("Elasticsearch could not be reached: connection states are unknown".to_string());
    }

    let mut incoming = Vec::new();
    for other in observed.others {
        for entry in other.remote_clusters() {
            if other.entry_points_at(&entry, &es.id) {
                incoming.push(IncomingLink {
                    from: format!("{}/{}", other.id.namespace, other.id.name),
                    alias: entry
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    security: if entry.get("apiKey").is_some() {
                        SecurityModel::ApiKey
                    } else {
                        SecurityModel::Certificate
                    },
                });
            }
        }
    }
    // Links from other Kubernetes clusters, as the plugin recorded them on this resource.
    let recorded_incoming: BTreeMap<String, Value> = es
        .annotation(crate::plan::INCOMING_ANNOTATION)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    for (key, entry) in &recorded_incoming {
        if let Some((from, alias)) = key.rsplit_once(':') {
            incoming.push(IncomingLink {
                from: from.to_string(),
                alias: alias.to_string(),
                security: if entry.get("security").and_then(Value::as_str) == Some("certificate") {
                    SecurityModel::Certificate
                } else {
                    SecurityModel::ApiKey
                },
            });
        }
    }
    for found in observed.incoming_elsewhere {
        if !incoming
            .iter()
            .any(|l| l.from == found.from && l.alias == found.alias)
        {
            incoming.push(found.clone());
        }
    }
    if incoming.iter().any(|l| l.security == SecurityModel::ApiKey)
        && !es.remote_cluster_server_enabled()
    {
        notes.push(
            "API-key links point here but the remote cluster server is off: enable spec.remoteClusterServer"
                .to_string(),
        );
    }

    for operation in observed.pending {
        notes.push(pending_note(&es.id, operation));
    }

    Report {
        api_version,
        kind: "RemoteClusterReport",
        cluster: es.id.clone(),
        version: text("/spec/version"),
        health: text("/status/health"),
        phase: text("/status/phase"),
        remote_cluster_server: es.remote_cluster_server_enabled(),
        outgoing,
        incoming,
        trust_restriction: observed
            .restricted
            .and_then(|r| trust_restriction(&es.id, r)),
        live: observed.remote_info.is_some(),
        notes,
    }
}

/// The remote of a plugin link as a reader knows it: `context/namespace/name`, or for a
/// cluster outside Kubernetes `external <alias>` (it has neither context nor namespace).
fn recorded_remote(record: &crate::plan::LinkRecord) -> String {
    if crate::plan::is_external(record) {
        format!("external {}", record.remote_name)
    } else {
        format!(
            "{}/{}/{}",
            record.remote_context, record.remote_namespace, record.remote_name
        )
    }
}

/// What an interrupted link or unlink left, and the commands that finish or remove it.
fn pending_note(local: &ClusterId, operation: &crate::plan::PendingOperation) -> String {
    if operation.operation == "export" {
        let alias = operation
            .alias
            .strip_suffix(".export")
            .unwrap_or(&operation.alias);
        return format!(
            "an export for alias {alias:?} was interrupted and is not finished: run the same `export` again to complete it, or `kubectl remote-cluster unexport {} --for {alias} -n {} --context {}` to remove what it left",
            local.name, local.namespace, local.context
        );
    }
    let unlink = format!(
        "kubectl remote-cluster unlink {} {} -n {} --context {}",
        local.name, operation.alias, local.namespace, local.context
    );
    let remote = if operation.remote_context.is_empty() {
        format!("the external cluster {:?}", operation.remote_name)
    } else {
        format!(
            "{}/{} (context {})",
            operation.remote_namespace, operation.remote_name, operation.remote_context
        )
    };
    if operation.operation == "link" {
        format!(
            "a link of alias {:?} to {remote} was interrupted and is not finished: run the same `link` again to complete it, or `{unlink}` to remove what it left",
            operation.alias
        )
    } else {
        format!(
            "an unlink of alias {:?} from {remote} was interrupted or left the remote side: `{unlink}` finishes it",
            operation.alias
        )
    }
}

fn trust_restriction(
    es: &ClusterId,
    restricted: &crate::plan::RestrictedObserved,
) -> Option<TrustRestriction> {
    let data = restricted.configmap.as_ref()?.get("data")?;
    let trust_yml: Value = data
        .get("trust.yml")
        .and_then(Value::as_str)
        .and_then(|text| serde_saphyr::from_str(text).ok())?;
    let subject_names = trust_yml
        .get("trust.subject_name")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    let peers = restricted
        .peers()
        .into_iter()
        .map(|(label, patterns)| (label.trim_start_matches('/').to_string(), patterns))
        .collect();
    Some(TrustRestriction {
        config_map: crate::plan::restricted_trust_name(es),
        subject_names,
        peers,
    })
}

fn trust_of(record: &crate::plan::LinkRecord, current: Option<&CurrentCa>) -> Option<Trust> {
    let trusted = record.ca_fingerprint.clone()?;
    Some(Trust {
        stale: current.is_some_and(|c| c.fingerprint != trusted),
        current_fingerprint: current.map(|c| c.fingerprint.clone()),
        current_not_after: current.and_then(|c| c.not_after.clone()),
        trusted_fingerprint: trusted,
    })
}

/// The `error` `_resolve/cluster` reported for an alias (merged into its `_remote/info` entry):
/// a security error leaves `connected: true` there, yet the link does not work.
fn reported_error(live: &Value) -> Option<&str> {
    live.get("error")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
}

/// The most likely reason, in order of what must be in place first.
fn likely_reason(
    es: &EsState,
    remote_name: Option<&str>,
    peer: Option<&EsState>,
    security: SecurityModel,
    live: Option<&Value>,
    license_level: Option<&str>,
) -> String {
    if let Some(level) = license_level
        && !matches!(
            level,
            "enterprise" | "enterprise_trial" | "enterprise-trial"
        )
    {
        return format!(
            "the ECK licence is {level:?}: ECK does not configure remote clusters without Enterprise"
        );
    }
    if remote_name.is_none() {
        return "the entry has no elasticsearchRef, so ECK ignores it".to_string();
    }
    let Some(peer) = peer else {
        return "the referenced Elasticsearch does not exist in this context".to_string();
    };
    if security == SecurityModel::ApiKey && !peer.remote_cluster_server_enabled() {
        return format!(
            "the remote cluster server of {}/{} is off: API-key links need it",
            peer.id.namespace, peer.id.name
        );
    }
    // ECK's observedGeneration catches up when a reconcile starts, the rollout ends later.
    if !es.rollout().done() {
        return "ECK has not finished applying the latest change (rolling restart in progress)"
            .to_string();
    }
    if live.is_none() {
        return "ECK has not put the alias into the cluster settings yet".to_string();
    }
    "Elasticsearch cannot connect: check the remote's health and the trust between the clusters"
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_external_remote_is_named_by_its_alias_not_as_an_empty_path() {
        let record = |context: &str, namespace: &str| crate::plan::LinkRecord {
            remote_context: context.into(),
            remote_namespace: namespace.into(),
            remote_name: "cloud-logs".into(),
            security: SecurityModel::ApiKey,
            key_id: None,
            ca_fingerprint: None,
            proxy_address: Some("logs.example.com:9443".into()),
            key_created_at: None,
            remote_cluster_uid: None,
            remote_server: None,
        };
        assert_eq!(recorded_remote(&record("", "")), "external cloud-logs");
        assert_eq!(
            recorded_remote(&record("west", "shop")),
            "west/shop/cloud-logs"
        );
    }

    #[test]
    fn pending_notes_name_the_command_that_finishes_each_operation() {
        let local = ClusterId {
            context: "east".into(),
            namespace: "search".into(),
            name: "products".into(),
        };
        let operation = |kind: &str, alias: &str, context: &str| crate::plan::PendingOperation {
            operation: kind.into(),
            alias: alias.into(),
            remote_context: context.into(),
            remote_namespace: if context.is_empty() { "" } else { "shop" }.into(),
            remote_name: "orders".into(),
            security: crate::plan::SecurityModel::ApiKey,
            remote_cluster_uid: None,
            remote_server: None,
        };
        let export = pending_note(&local, &operation("export", "cloud.export", "east"));
        assert!(
            export.contains("an export for alias \"cloud\" was interrupted")
                && export.contains("unexport products --for cloud -n search --context east"),
            "{export}"
        );
        let external = pending_note(&local, &operation("link", "cloud", ""));
        assert!(
            external.contains("to the external cluster \"orders\"")
                && external.contains("unlink products cloud -n search --context east"),
            "{external}"
        );
        let unlink = pending_note(&local, &operation("unlink", "orders", "west"));
        assert!(
            unlink.contains("from shop/orders (context west)"),
            "{unlink}"
        );
    }

    fn es(namespace: &str, name: &str, spec: Value) -> EsState {
        EsState {
            id: ClusterId {
                context: "east".into(),
                namespace: namespace.into(),
                name: name.into(),
            },
            object: json!({"metadata": {"name": name, "namespace": namespace, "generation": 2},
                           "spec": spec, "status": {"observedGeneration": 2, "phase": "Ready", "health": "green"}}),
        }
    }

    #[test]
    fn outgoing_incoming_and_live_state() {
        let mut local = es(
            "search",
            "catalog",
            json!({"version": "9.1.0", "remoteClusters": [
                {"name": "products", "elasticsearchRef": {"name": "products"}, "apiKey": {"access": {}}},
                {"name": "old", "elasticsearchRef": {"name": "legacy", "namespace": "logs"}}
            ]}),
        );
        local.object["metadata"]["annotations"] = json!({crate::plan::LINKS_ANNOTATION:
            "{\"products\":{\"remoteContext\":\"east\",\"remoteNamespace\":\"search\",\"remoteName\":\"products\",\"security\":\"api-key\"}}"});
        let products = es(
            "search",
            "products",
            json!({"version": "9.1.0", "remoteClusterServer": {"enabled": false}}),
        );
        let legacy = es("logs", "legacy", json!({"version": "9.1.0"}));
        let fan = es(
            "search",
            "fan",
            json!({"version": "9.1.0", "remoteClusters": [
                {"name": "cat", "elasticsearchRef": {"name": "catalog"}}
            ]}),
        );
        let info = json!({
            "products": {"connected": false, "mode": "sniff", "cluster_credentials": "::es_redacted::"},
            "old": {"connected": true, "mode": "sniff"},
            "manual": {"connected": true, "mode": "proxy", "proxy_address": "lb.example:9443"}
        });
        let others = [products, legacy, fan];
        let report = build(
            &Observed {
                pending: &[],
                es: &local,
                others: &others,
                remote_info: Some(&info),
                license_level: Some("enterprise"),
                remote_cas: &BTreeMap::new(),
                incoming_elsewhere: &[],
                restricted: None,
            },
            "v",
        );
        insta::assert_json_snapshot!(report);
        assert!(report.has_broken_link());
    }

    #[test]
    fn an_error_resolve_cluster_reports_breaks_a_link_that_says_connected() {
        let local = es(
            "search",
            "catalog",
            json!({"version": "9.1.0", "remoteClusters": [
                {"name": "products", "elasticsearchRef": {"name": "products"}, "apiKey": {"access": {}}}
            ]}),
        );
        let products = es(
            "search",
            "products",
            json!({"version": "9.1.0", "remoteClusterServer": {"enabled": true}}),
        );
        let info = json!({
            "products": {"connected": true, "mode": "sniff", "error": "unable to authenticate with the API key"},
            "manual": {"connected": true, "mode": "proxy", "proxy_address": "lb.example:9443", "error": "key invalidated"}
        });
        let others = [products];
        let report = build(
            &Observed {
                pending: &[],
                es: &local,
                others: &others,
                remote_info: Some(&info),
                license_level: Some("enterprise"),
                remote_cas: &BTreeMap::new(),
                incoming_elsewhere: &[],
                restricted: None,
            },
            "v",
        );
        assert!(report.has_broken_link());
        let problems: Vec<(&str, Option<bool>, Option<&str>)> = report
            .outgoing
            .iter()
            .map(|l| (l.alias.as_str(), l.connected, l.problem.as_deref()))
            .collect();
        assert_eq!(
            problems,
            [
                (
                    "products",
                    Some(false),
                    Some("Elasticsearch reports: unable to authenticate with the API key")
                ),
                (
                    "manual",
                    Some(false),
                    Some("Elasticsearch reports: key invalidated")
                ),
            ]
        );
    }

    #[test]
    fn an_interrupted_link_is_named_with_the_commands_that_finish_it() {
        let local = es("search", "catalog", json!({"version": "9.1.0"}));
        let pending = [crate::plan::PendingOperation {
            operation: "link".into(),
            alias: "products".into(),
            remote_context: "west".into(),
            remote_namespace: "shop".into(),
            remote_name: "products".into(),
            security: SecurityModel::ApiKey,
            remote_cluster_uid: None,
            remote_server: None,
        }];
        let report = build(
            &Observed {
                pending: &pending,
                es: &local,
                others: &[],
                remote_info: Some(&json!({})),
                license_level: None,
                remote_cas: &BTreeMap::new(),
                incoming_elsewhere: &[],
                restricted: None,
            },
            "v",
        );
        assert_eq!(
            report.notes,
            [
                "a link of alias \"products\" to shop/products (context west) was interrupted and is not finished: run the same `link` again to complete it, or `kubectl remote-cluster unlink catalog products -n search --context east` to remove what it left"
            ]
        );
    }

    #[test]
    fn without_elasticsearch_access_states_are_unknown() {
        let local = es(
            "search",
            "catalog",
            json!({"remoteClusters": [
                {"name": "p", "elasticsearchRef": {"name": "products"}}
            ]}),
        );
        let report = build(
            &Observed {
                pending: &[],
                es: &local,
                others: &[],
                remote_info: None,
                license_level: None,
                remote_cas: &BTreeMap::new(),
                incoming_elsewhere: &[],
                restricted: None,
            },
            "v",
        );
        assert_eq!(report.outgoing[0].connected, None);
        assert!(!report.has_broken_link());
        assert!(!report.live);
    }
}
