//! Cluster settings owned by file-based settings (what ECK's StackConfigPolicy delivers):
//! Elasticsearch refuses API writes to them (`... set as read-only by [file_settings]`), so a
//! plan that would write one is refused before its first write, naming the policy.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::es::EsPool;
use crate::k8s::clients::ContextClient;
use crate::k8s::eck;
use crate::plan::{Change, ClusterId, Step};

/// The `cluster.remote.*` settings a step makes Elasticsearch change on its cluster, with the
/// value written (`null` removes). `before` and `after` are the spec around a patch of it.
pub fn settings_written(
    step: &Step,
    before: Option<&Value>,
    after: Option<&Value>,
) -> BTreeMap<String, Value> {
    match &step.change {
        Change::PutClusterSettings { settings } => settings
            .as_object()
            .map(|map| map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        Change::SetSkipUnavailable { alias, value } => BTreeMap::from([(
            format!("cluster.remote.{alias}.skip_unavailable"),
            value.map(Value::Bool).unwrap_or(Value::Null),
        )]),
        // ECK writes `cluster.remote.<alias>.seeds` for an alias added to `spec.remoteClusters`
        // and removes it for one taken out.
        Change::PatchElasticsearch { .. } => {
            let (before, after) = (spec_aliases(before), spec_aliases(after));
            let added = after.iter().filter(|a| !before.contains(a));
            let removed = before.iter().filter(|a| !after.contains(a));
            added
                .map(|alias| (alias, Value::String("(set by ECK)".into())))
                .chain(removed.map(|alias| (alias, Value::Null)))
                .map(|(alias, value)| (format!("cluster.remote.{alias}.seeds"), value))
                .collect()
        }
        _ => BTreeMap::new(),
    }
}

fn spec_aliases(object: Option<&Value>) -> Vec<String> {
    object
        .and_then(|o| o.pointer("/spec/remoteClusters"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.get("name")?.as_str().map(str::to_string))
        .collect()
}

/// The refusal for `cluster` when some of `written` are reserved, `None` otherwise. `reserved`
/// maps each reserved key to the reserved-state namespace that set it; `owners` name the
/// StackConfigPolicies behind the cluster's file-based settings.
pub fn refusal(
    cluster: &ClusterId,
    written: &BTreeMap<String, Value>,
    reserved: &BTreeMap<String, String>,
    owners: &[String],
) -> Option<String> {
    let conflicts: Vec<&str> = written
        .keys()
        .filter(|k| reserved.contains_key(*k))
        .map(String::as_str)
        .collect();
    if conflicts.is_empty() {
        return None;
    }
    let source = match owners {
        [] => "file-based settings".to_string(),
        [one] => format!("{one} (file-based settings)"),
        many => format!("{} (file-based settings)", many.join(", ")),
    };
    let wanted: Vec<String> = written
        .iter()
        .map(|(key, value)| format!("    {key}: {}", render(value)))
        .collect();
    Some(format!(
        "Elasticsearch {cluster} refuses API writes to {}: {source} sets them; nothing was written. \
         Make this change in the policy's spec.elasticsearch.clusterSettings instead (null \
         removes a setting), or give a new link another --alias:\n{}",
        conflicts.join(", "),
        wanted.join("\n")
    ))
}

fn render(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The cluster settings Elasticsearch refuses API writes to, each with the reserved-state
/// namespace that set it (`file_settings` for ECK's StackConfigPolicy): the
/// `metadata.reserved_state.<namespace>.handlers.cluster_settings.keys` of the cluster state.
async fn reserved_cluster_settings(
    es: &crate::es::EsClient,
) -> anyhow::Result<BTreeMap<String, String>> {
    let state = es
        .get("/_cluster/state/metadata?filter_path=metadata.reserved_state")
        .await?;
    Ok(reserved_keys(&state))
}

fn reserved_keys(state: &Value) -> BTreeMap<String, String> {
    let namespaces = state
        .pointer("/metadata/reserved_state")
        .and_then(Value::as_object);
    let mut keys = BTreeMap::new();
    for (namespace, reserved) in namespaces.into_iter().flatten() {
        let names = reserved
            .pointer("/handlers/cluster_settings/keys")
            .and_then(Value::as_array);
        for key in names.into_iter().flatten().filter_map(Value::as_str) {
            keys.insert(key.to_string(), namespace.clone());
        }
    }
    keys
}

/// Reserved keys per cluster, read once per command.
#[derive(Default)]
pub struct Reserved {
    by_cluster: HashMap<ClusterId, BTreeMap<String, String>>,
}

impl Reserved {
    /// Whether the step's settings writes on its cluster touch a reserved key; the refusal if
    /// so. A cluster that cannot be reached or read is not refused here: the write itself will
    /// say what is wrong.
    pub async fn check(
        &mut self,
        step: &Step,
        written: &BTreeMap<String, Value>,
        client: &ContextClient,
        es: &EsPool,
    ) -> Option<String> {
        if written.is_empty() {
            return None;
        }
        if !self.by_cluster.contains_key(&step.cluster) {
            let keys = match es.client(client, &step.cluster).await {
                Ok(connection) => reserved_cluster_settings(&connection)
                    .await
                    .unwrap_or_default(),
                Err(_) => BTreeMap::new(),
            };
            self.by_cluster.insert(step.cluster.clone(), keys);
        }
        let reserved = &self.by_cluster[&step.cluster];
        if !written.keys().any(|k| reserved.contains_key(k)) {
            return None;
        }
        let owners =
            eck::file_settings_owners(client, &step.cluster.namespace, &step.cluster.name).await;
        refusal(&step.cluster, written, reserved, &owners)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cluster() -> ClusterId {
        ClusterId {
            context: "east".into(),
            namespace: "search".into(),
            name: "catalog".into(),
        }
    }

    fn step(change: Change) -> Step {
        Step {
            cluster: cluster(),
            summary: "s".into(),
            restarts_nodes: false,
            change,
        }
    }

    #[test]
    fn settings_puts_skip_unavailable_and_spec_aliases_are_what_a_step_writes() {
        let put = step(Change::PutClusterSettings {
            settings: json!({"cluster.remote.a.mode": "proxy", "cluster.remote.a.proxy_address": "h:9443"}),
        });
        assert_eq!(
            settings_written(&put, None, None)
                .keys()
                .collect::<Vec<_>>(),
            ["cluster.remote.a.mode", "cluster.remote.a.proxy_address"]
        );
        let skip = step(Change::SetSkipUnavailable {
            alias: "a".into(),
            value: None,
        });
        assert_eq!(
            settings_written(&skip, None, None),
            BTreeMap::from([("cluster.remote.a.skip_unavailable".into(), Value::Null)])
        );
        let patch = step(Change::PatchElasticsearch {
            resource_version: String::new(),
            patch: Vec::new(),
            diff: Vec::new(),
        });
        let before = json!({"spec": {"remoteClusters": [{"name": "old"}, {"name": "kept"}]}});
        let after = json!({"spec": {"remoteClusters": [{"name": "kept"}, {"name": "new"}]}});
        assert_eq!(
            settings_written(&patch, Some(&before), Some(&after)),
            BTreeMap::from([
                ("cluster.remote.new.seeds".into(), json!("(set by ECK)")),
                ("cluster.remote.old.seeds".into(), Value::Null),
            ])
        );
    }

    #[test]
    fn a_write_to_a_reserved_key_is_refused_naming_the_policy_and_the_settings() {
        let written = BTreeMap::from([
            ("cluster.remote.fleet.mode".to_string(), json!("proxy")),
            (
                "cluster.remote.fleet.proxy_address".to_string(),
                json!("lb.example:9443"),
            ),
        ]);
        let reserved = BTreeMap::from([(
            "cluster.remote.fleet.mode".to_string(),
            "file_settings".to_string(),
        )]);
        let owners = vec!["StackConfigPolicy elastic-system/fleet".to_string()];
        insta::assert_snapshot!(refusal(&cluster(), &written, &reserved, &owners).unwrap());
        assert_eq!(
            refusal(&cluster(), &written, &BTreeMap::new(), &owners),
            None
        );
    }
}
