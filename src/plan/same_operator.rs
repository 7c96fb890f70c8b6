//! Links between two clusters of the same ECK operator (ECK scenario 1): the plugin edits the
//! specs, ECK does the rest.

use serde::Serialize;
use serde_json::{Value, json};

use super::*;

/// A planned link, with what was decided along the way.
impl Planned for LinkPlan {
    fn plan(&self) -> &Plan {
        &self.plan
    }
}

impl Planned for UnlinkPlan {
    fn plan(&self) -> &Plan {
        &self.plan
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkPlan {
    pub alias: String,
    pub security: SecurityModel,
    pub plan: Plan,
}

/// Same-operator link (ECK scenario 1): ECK does the rest once the specs say so.
pub fn plan_same_operator_link(
    local: &EsState,
    remote: &EsState,
    operator: &Operator,
    request: &LinkRequest,
) -> Result<LinkPlan, PlanError> {
    if local.id == remote.id {
        return Err(PlanError::SameCluster(local.id.clone()));
    }
    let alias = link_alias(request.alias.as_ref(), &remote.id)?;
    check_managed(local)?;
    check_managed(remote)?;
    let mut warnings = Vec::new();
    check_license(&local.id.context, operator, LicenceGate::Eck, &mut warnings)?;

    let (local_version, remote_version) = connectable_versions(local, remote)?;

    let security = choose_security(
        request.security,
        (local, &local_version),
        (remote, &remote_version),
        operator,
        &mut warnings,
    )?;
    if security == SecurityModel::Certificate
        && (!request.search_indices.is_empty() || !request.replication_indices.is_empty())
    {
        return Err(PlanError::IndicesWithCertificate);
    }

    check_alias_record(local, &alias, &model_record(remote, security))?;
    let desired_entry = remote_cluster_entry(&alias, local, remote, security, request);
    let entries = local.remote_clusters();
    let existing = entries
        .iter()
        .position(|e| e.get("name").and_then(Value::as_str) == Some(alias.as_str()));
    let ours = local.plugin_links().contains_key(&alias);
    if let Some(index) = existing {
        let same_target = local.entry_points_at(&entries[index], &remote.id);
        let identical = same_target && entries[index] == desired_entry;
        if !ours && !identical {
            return Err(PlanError::AliasTaken {
                alias,
                local: local.id.clone(),
                holder: holder_of(&entries[index], local),
            });
        }
    } else if local.eck_managed_aliases().contains(&alias) {
        return Err(PlanError::AliasTaken {
            alias,
            local: local.id.clone(),
            holder: "a link ECK is still removing".to_string(),
        });
    }

    // The local's entry and record first: a run stopped after it leaves a link `unlink` can
    // find and remove; the other way round it would leave the remote's server on with nothing
    // on the local naming it. ECK connects once the server is on.
    let mut steps = Vec::new();
    let record = model_record(remote, security);
    if let Some(step) = upsert_entry(local, &alias, existing, desired_entry, record) {
        steps.push(step);
    }
    if security == SecurityModel::ApiKey && !remote.remote_cluster_server_enabled() {
        steps.push(enable_remote_cluster_server(remote));
    }
    Ok(LinkPlan {
        alias,
        security,
        plan: Plan { steps, warnings },
    })
}

fn holder_of(entry: &Value, local: &EsState) -> String {
    match (
        entry
            .pointer("/elasticsearchRef/name")
            .and_then(Value::as_str),
        entry
            .pointer("/elasticsearchRef/namespace")
            .and_then(Value::as_str),
    ) {
        (Some(name), Some(ns)) => format!("a link to {ns}/{name}"),
        (Some(name), None) => format!("a link to {}/{name}", local.id.namespace),
        _ => "an entry without elasticsearchRef".to_string(),
    }
}

/// The `spec.remoteClusters` entry ECK expects for this link.
fn remote_cluster_entry(
    alias: &str,
    local: &EsState,
    remote: &EsState,
    security: SecurityModel,
    request: &LinkRequest,
) -> Value {
    let mut reference = json!({ "name": remote.id.name });
    if remote.id.namespace != local.id.namespace {
        reference["namespace"] = json!(remote.id.namespace);
    }
    let mut entry = json!({ "name": alias, "elasticsearchRef": reference });
    if security == SecurityModel::ApiKey {
        let mut access = serde_json::Map::new();
        let search: Vec<&str> =
            if request.search_indices.is_empty() && request.replication_indices.is_empty() {
                vec!["*"]
            } else {
                request.search_indices.iter().map(String::as_str).collect()
            };
        if !search.is_empty() {
            access.insert("search".into(), json!({ "names": search }));
        }
        if !request.replication_indices.is_empty() {
            access.insert(
                "replication".into(),
                json!({ "names": request.replication_indices }),
            );
        }
        entry["apiKey"] = json!({ "access": access });
    }
    entry
}

/// Adds or replaces this alias's entry, leaving every other entry as it is and where it is.
fn upsert_entry(
    local: &EsState,
    alias: &str,
    existing: Option<usize>,
    desired: Value,
    record: LinkRecord,
) -> Option<Step> {
    let mut links = local.plugin_links();
    let record_changes = links.get(alias) != Some(&record);
    let entries = local.remote_clusters();
    let entry_changes = existing.map(|i| entries[i] != desired).unwrap_or(true);
    if !record_changes && !entry_changes {
        return None;
    }
    let mut patch = vec![spec_guard(local)];
    let mut diff = Vec::new();
    let mut restarts = false;
    if entry_changes {
        match existing {
            Some(index) => {
                patch.push(json!({"op": "replace", "path": format!("/spec/remoteClusters/{index}"), "value": desired}));
                diff.push(format!("  spec.remoteClusters[{index}]:"));
                diff.extend(yaml_lines("-   ", &entries[index]));
            }
            None if local.object.pointer("/spec/remoteClusters").is_some() => {
                patch
                    .push(json!({"op": "add", "path": "/spec/remoteClusters/-", "value": desired}));
                diff.push(format!("  spec.remoteClusters[{}]:", entries.len()));
            }
            None => {
                patch
                    .push(json!({"op": "add", "path": "/spec/remoteClusters", "value": [desired]}));
                diff.push("  spec.remoteClusters[0]:".to_string());
            }
        }
        diff.extend(yaml_lines("+   ", &desired));
        restarts = keystore_changes(existing.map(|i| &entries[i]), &desired);
    }
    links.insert(alias.to_string(), record);
    let annotations = [(LINKS_ANNOTATION, links_annotation_value(&links))];
    restarts |= local.annotations_restart(&annotations);
    patch.extend(annotation_ops(local, &annotations));
    diff.push(format!(
        "  metadata.annotations[{LINKS_ANNOTATION}]: records alias {alias:?}"
    ));
    Some(Step {
        cluster: local.id.clone(),
        summary: format!("add remote cluster {alias:?} to spec.remoteClusters"),
        restarts_nodes: restarts,
        change: Change::PatchElasticsearch {
            resource_version: local.resource_version(),
            patch,
            diff,
        },
    })
}

/// Whether replacing entry `before` (`None`: a new alias) by `after` changes the keystore ECK
/// builds from `<local>-es-remote-api-keys`, the only pod-template input an entry touches
/// (real-behaviour.md 6): ECK adds or prunes the alias's key when `apiKey` comes or goes, or
/// makes another for another remote; a new `access` updates the same key in place, and a
/// certificate-model entry touches nothing.
fn keystore_changes(before: Option<&Value>, after: &Value) -> bool {
    let api_key = |e: Option<&Value>| e.is_some_and(|e| e.get("apiKey").is_some());
    let remote = |e: Option<&Value>| e.and_then(|e| e.get("elasticsearchRef")).cloned();
    api_key(before) != api_key(Some(after))
        || (api_key(Some(after)) && remote(before) != remote(Some(after)))
}

/// What `unlink` was asked for.
#[derive(Debug, Clone, Default)]
pub struct UnlinkRequest {
    pub alias: String,
    pub disable_server: bool,
}

/// Same-operator unlink: remove the entry (ECK cleans up keys, CAs and settings) and, when asked
/// and nothing else uses it, turn the remote's remote cluster server off.
///
/// `others` are every other Elasticsearch in the same Kubernetes cluster, to find who still uses
/// the remote cluster server.
pub fn plan_same_operator_unlink(
    local: &EsState,
    remote: Option<&EsState>,
    others: &[EsState],
    request: &UnlinkRequest,
) -> Result<UnlinkPlan, PlanError> {
    let alias = &request.alias;
    let entries = local.remote_clusters();
    let index = entries
        .iter()
        .position(|e| e.get("name").and_then(Value::as_str) == Some(alias.as_str()));
    let mut links = local.plugin_links();
    let record = links.get(alias).cloned();
    if index.is_none() && record.is_none() {
        return Err(PlanError::NoSuchAlias {
            local: local.id.clone(),
            alias: alias.clone(),
        });
    }
    if index.is_some() && record.is_none() {
        return Err(PlanError::NotOurs {
            local: local.id.clone(),
            alias: alias.clone(),
        });
    }
    let mut steps = Vec::new();
    let mut warnings = Vec::new();
    let mut patch = vec![spec_guard(local)];
    let mut diff = Vec::new();
    let mut restarts = false;
    if let Some(index) = index {
        patch.push(json!({"op": "test", "path": format!("/spec/remoteClusters/{index}/name"), "value": alias}));
        if entries.len() == 1 {
            // The list was ours alone: leave the spec as it was before the link.
            patch.push(json!({"op": "remove", "path": "/spec/remoteClusters"}));
        } else {
            patch.push(json!({"op": "remove", "path": format!("/spec/remoteClusters/{index}")}));
        }
        diff.push(format!("  spec.remoteClusters[{index}]:"));
        diff.extend(yaml_lines("-   ", &entries[index]));
        // ECK prunes the alias's key from the keystore.
        restarts = entries[index].get("apiKey").is_some();
    }
    links.remove(alias);
    let annotations = [(LINKS_ANNOTATION, links_annotation_value(&links))];
    restarts |= local.annotations_restart(&annotations);
    patch.extend(annotation_ops(local, &annotations));
    diff.push(format!(
        "  metadata.annotations[{LINKS_ANNOTATION}]: forgets alias {alias:?}"
    ));
    steps.push(Step {
        cluster: local.id.clone(),
        summary: format!("remove remote cluster {alias:?} from spec.remoteClusters"),
        restarts_nodes: restarts,
        change: Change::PatchElasticsearch {
            resource_version: local.resource_version(),
            patch,
            diff,
        },
    });

    let mut still_using = Vec::new();
    if let (true, Some(remote)) = (request.disable_server, remote) {
        still_using = api_key_clients_of(remote, local, alias, others);
        let enabled_by_us = remote.annotation(SERVER_ANNOTATION) == Some(SERVER_ENABLED_BY_PLUGIN);
        if !remote.remote_cluster_server_enabled() {
            warnings.push(format!(
                "the remote cluster server of {} is already off",
                remote.id
            ));
        } else if !still_using.is_empty() {
            warnings.push(format!(
                "the remote cluster server of {} stays on: still used by {}",
                remote.id,
                still_using.join(", ")
            ));
        } else if !enabled_by_us {
            warnings.push(format!(
                "the remote cluster server of {} stays on: kubectl remote-cluster did not turn it on",
                remote.id
            ));
        } else {
            // First, so that a failure after it leaves the alias in place and a re-run resumes.
            steps.insert(0, disable_remote_cluster_server(remote));
        }
    }
    Ok(UnlinkPlan {
        alias: alias.clone(),
        record,
        still_using,
        plan: Plan { steps, warnings },
    })
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnlinkPlan {
    pub alias: String,
    pub record: Option<LinkRecord>,
    /// Clusters that keep using the remote's remote cluster server.
    pub still_using: Vec<String>,
    pub plan: Plan,
}

/// Clusters (other than `local`'s `alias` entry) with an API-key entry pointing at `remote`.
fn api_key_clients_of(
    remote: &EsState,
    local: &EsState,
    alias: &str,
    others: &[EsState],
) -> Vec<String> {
    let mut users = Vec::new();
    for es in std::iter::once(local).chain(others.iter()) {
        for entry in es.remote_clusters() {
            let is_this_link =
                es.id == local.id && entry.get("name").and_then(Value::as_str) == Some(alias);
            if !is_this_link
                && entry.get("apiKey").is_some()
                && es.entry_points_at(&entry, &remote.id)
            {
                users.push(format!("{}/{}", es.id.namespace, es.id.name));
            }
        }
    }
    users.sort();
    users.dedup();
    users
}

#[cfg(test)]
#[path = "same_operator_tests.rs"]
mod tests;

/// `skip_unavailable` for a same-operator link: ECK only sets the seeds, so the plugin sets this
/// one itself, after ECK has configured the alias. `current` is the value in the settings.
pub fn skip_unavailable_step(
    local: &EsState,
    alias: &str,
    wanted: bool,
    current: Option<bool>,
) -> Option<Step> {
    let value = match (wanted, current) {
        (true, Some(true)) | (false, _) => return None,
        (true, _) => Some(true),
    };
    Some(Step {
        cluster: local.id.clone(),
        summary: format!("skip remote cluster {alias:?} in searches when it is unavailable"),
        restarts_nodes: false,
        change: Change::SetSkipUnavailable {
            alias: alias.to_string(),
            value,
        },
    })
}

/// Before an alias's seeds go, `skip_unavailable` must go: Elasticsearch refuses settings of a
/// remote cluster that is not configured, which would block ECK's own cleanup.
pub fn clear_skip_unavailable_step(
    local: &EsState,
    alias: &str,
    current: Option<bool>,
) -> Option<Step> {
    current?;
    Some(Step {
        cluster: local.id.clone(),
        summary: format!("remove skip_unavailable of {alias:?} before its seeds go"),
        restarts_nodes: false,
        change: Change::SetSkipUnavailable {
            alias: alias.to_string(),
            value: None,
        },
    })
}
