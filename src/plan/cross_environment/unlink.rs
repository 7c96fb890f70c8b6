//! Unlinking a cross-environment link: every step of the link reversed, from what was recorded.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::*;

/// What `unlink` read for a link the plugin made across Kubernetes clusters.
#[derive(Debug, Clone)]
pub struct CrossUnlinkObserved {
    pub local: EsState,
    pub record: LinkRecord,
    /// `None` when the remote context could not be reached (`--local-only`).
    pub remote: Option<EsState>,
    /// The other Elasticsearch resources of the remote's Kubernetes cluster.
    pub remote_others: Vec<EsState>,
    pub credentials_secret: Option<Value>,
    pub ca_bundle: Option<Value>,
    pub local_alias_settings: BTreeMap<String, Value>,
    /// The plugin's own Service in front of the remote cluster server, if any.
    pub exposure_service: Option<Value>,
    /// Active keys on the remote that the plugin created for this link (by name and metadata),
    /// the recorded one and any an interrupted run left.
    pub active_link_keys: Vec<String>,
    /// The ConfigMap an interrupted link or unlink of this alias left ([`pending_name`]).
    pub pending: Option<Value>,
}

#[derive(Debug, Clone, Default)]
pub struct CrossUnlinkRequest {
    pub alias: String,
    pub disable_server: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CrossUnlinkPlan {
    pub alias: String,
    pub plan: Plan,
    /// What stays on the remote because it could not be reached, with how to remove it.
    pub left_on_remote: Vec<String>,
}

impl Planned for CrossUnlinkPlan {
    fn plan(&self) -> &Plan {
        &self.plan
    }
}

pub fn plan_cross_environment_unlink(
    observed: &CrossUnlinkObserved,
    request: &CrossUnlinkRequest,
) -> CrossUnlinkPlan {
    let local = &observed.local;
    let alias = &request.alias;
    let mut steps = Vec::new();
    let mut warnings = Vec::new();

    steps.extend(clear_alias_settings_step(
        &local.id,
        alias,
        &observed.local_alias_settings,
    ));

    let key = credentials_key(alias);
    let secret_keys: Vec<String> = observed
        .credentials_secret
        .as_ref()
        .and_then(|s| s.get("data"))
        .and_then(Value::as_object)
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default();
    let delete_secret = secret_keys.iter().all(|k| *k == key);
    let bundle_text = observed
        .ca_bundle
        .as_ref()
        .and_then(|c| c.pointer("/data/ca.crt"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let remaining_bundle = without_block(&bundle_text, alias);
    let delete_bundle = remaining_bundle.trim().is_empty();

    if let Some(step) = local_spec_reversal(local, alias, delete_secret, delete_bundle) {
        steps.push(step);
    }
    if let Some(secret) = &observed.credentials_secret {
        let name = credentials_secret_name(&local.id);
        if delete_secret {
            steps.push(delete_step(
                local,
                ObjectKind::Secret,
                &name,
                secret,
                "delete Secret",
            ));
        } else if secret_keys.contains(&key) {
            let in_place = local.file_based_secure_settings();
            let how = if in_place {
                "file-based secure settings: applies without a restart"
            } else {
                "keystore"
            };
            steps.push(Step {
                cluster: local.id.clone(),
                summary: format!("remove the API key of {alias:?} from Secret {name} ({how})"),
                restarts_nodes: !in_place,
                change: Change::ApplyObject {
                    object: ObjectKind::Secret,
                    namespace: local.id.namespace.clone(),
                    name,
                    resource_version: resource_version_of(secret),
                    labels: BTreeMap::new(),
                    data: BTreeMap::new(),
                    remove: vec![key.clone()],
                    diff: vec![format!("-   {key}")],
                },
            });
        }
    }
    if let Some(bundle) = &observed.ca_bundle {
        let name = ca_bundle_name(&local.id);
        if delete_bundle {
            steps.push(delete_step(
                local,
                ObjectKind::ConfigMap,
                &name,
                bundle,
                "delete ConfigMap",
            ));
        } else if remaining_bundle != bundle_text {
            steps.push(Step {
                cluster: local.id.clone(),
                summary: format!("remove the CA of {alias:?} from ConfigMap {name}"),
                restarts_nodes: false,
                change: Change::ApplyObject {
                    object: ObjectKind::ConfigMap,
                    namespace: local.id.namespace.clone(),
                    name,
                    resource_version: resource_version_of(bundle),
                    labels: BTreeMap::new(),
                    data: BTreeMap::from([(
                        "ca.crt".to_string(),
                        DataValue::Literal(remaining_bundle),
                    )]),
                    remove: Vec::new(),
                    diff: vec![format!("-   ca.crt: CA of {alias}")],
                },
            });
        }
    }

    let mut left_on_remote = Vec::new();
    match &observed.remote {
        // The remote first: until the local record goes (last), a re-run after a failure finds
        // everything it needs to finish.
        Some(remote) => {
            let local_id = &observed.local.id;
            let entry = format!(
                "{}/{}/{}:{}",
                local_id.context, local_id.namespace, local_id.name, request.alias
            );
            let remote_steps = remote_reversal(observed, remote, request, &entry, &mut warnings);
            steps.splice(0..0, remote_steps);
        }
        None => {
            let record = &observed.record;
            let where_ = if is_external(record) {
                format!("the external cluster of alias {alias:?}")
            } else {
                format!(
                    "{}/{} (context {})",
                    record.remote_namespace, record.remote_name, record.remote_context
                )
            };
            if let Some(id) = &record.key_id {
                left_on_remote.push(format!(
                    "the cross-cluster API key {id} on {where_}: invalidate it with DELETE /_security/api_key {{\"ids\": [\"{id}\"]}}"
                ));
            }
            if !is_external(record) {
                left_on_remote.push(format!(
                    "the record of this link in annotation {INCOMING_ANNOTATION} of {where_}, and the exposure of its remote cluster server if nothing else uses it: run `kubectl remote-cluster unlink` again when the context is reachable, or remove them by hand"
                ));
            }
        }
    }
    let steps = unlink_with_pending_record(
        steps,
        &local.id,
        alias,
        &observed.record,
        observed.pending.as_ref(),
        observed.remote.is_some(),
    );
    CrossUnlinkPlan {
        alias: alias.clone(),
        plan: Plan { steps, warnings },
        left_on_remote,
    }
}

/// Deleting an object of ours that nothing uses any more, guarded by its resourceVersion.
pub(crate) fn delete_step(
    es: &EsState,
    object: ObjectKind,
    name: &str,
    current: &Value,
    verb: &str,
) -> Step {
    Step {
        cluster: es.id.clone(),
        summary: format!("{verb} {name} (nothing else uses it)"),
        restarts_nodes: false,
        change: Change::DeleteObject {
            object,
            namespace: es.id.namespace.clone(),
            name: name.to_string(),
            resource_version: resource_version_of(current).unwrap_or_default(),
        },
    }
}

/// Local spec: the secureSettings reference and the CA mount go when their objects go; the link
/// record goes always. Must run before the objects are deleted, so no pod mounts a missing one.
fn local_spec_reversal(
    local: &EsState,
    alias: &str,
    delete_secret: bool,
    delete_bundle: bool,
) -> Option<Step> {
    let mut patch = vec![spec_guard(local)];
    let mut diff = Vec::new();
    let mut restarts = false;
    let secret = credentials_secret_name(&local.id);
    if delete_secret {
        let secure = local
            .object
            .pointer("/spec/secureSettings")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(index) = secure
            .iter()
            .position(|s| s.get("secretName").and_then(Value::as_str) == Some(secret.as_str()))
        {
            patch.push(json!({"op": "test", "path": format!("/spec/secureSettings/{index}/secretName"), "value": secret}));
            patch.push(if secure.len() == 1 {
                json!({"op": "remove", "path": "/spec/secureSettings"})
            } else {
                json!({"op": "remove", "path": format!("/spec/secureSettings/{index}")})
            });
            diff.push(format!("  spec.secureSettings: - {{secretName: {secret}}}"));
            restarts |= !local.file_based_secure_settings();
        }
    }
    if delete_bundle {
        let added_ssl = split_aliases(local.annotation(CLIENT_SSL_ANNOTATION));
        let node_sets = local
            .object
            .pointer("/spec/nodeSets")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (index, node_set) in node_sets.iter().enumerate() {
            let name = node_set
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let mut changed = node_set.clone();
            if without_ca_trust(&mut changed, added_ssl.iter().any(|n| n == name)) {
                patch.push(json!({"op": "test", "path": format!("/spec/nodeSets/{index}/name"), "value": name}));
                patch.push(json!({"op": "replace", "path": format!("/spec/nodeSets/{index}"), "value": changed}));
                diff.push(format!("  spec.nodeSets[{name}]: unmount {CA_VOLUME}, drop {CA_FILE_SETTING} from the client CAs"));
                restarts = true;
            }
        }
    }
    let mut annotations: Vec<(&str, Option<String>)> = Vec::new();
    if delete_bundle {
        annotations.push((CLIENT_SSL_ANNOTATION, None));
    }
    let mut links = local.plugin_links();
    if links.remove(alias).is_some() {
        annotations.push((LINKS_ANNOTATION, links_annotation_value(&links)));
        diff.push(format!(
            "  metadata.annotations[{LINKS_ANNOTATION}]: forgets alias {alias:?}"
        ));
    }
    restarts |= local.annotations_restart(&annotations);
    patch.extend(annotation_ops(local, &annotations));
    (patch.len() > 1).then(|| Step {
        cluster: local.id.clone(),
        summary: "stop referencing the link's Secret and CA bundle".to_string(),
        restarts_nodes: restarts,
        change: Change::PatchElasticsearch {
            resource_version: local.resource_version(),
            patch,
            diff,
        },
    })
}

/// Removes what [`with_ca_trust`] added; `ssl.enabled` only where the plugin set it.
pub fn without_ca_trust(node_set: &mut Value, remove_enabled: bool) -> bool {
    let mut changed = false;
    if let Some(config) = node_set.get_mut("config").and_then(Value::as_object_mut) {
        changed |= remove_from_list(
            config,
            "xpack.security.remote_cluster_client.ssl.certificate_authorities",
            CA_FILE_SETTING,
        );
        if remove_enabled
            && config
                .remove("xpack.security.remote_cluster_client.ssl.enabled")
                .is_some()
        {
            changed = true;
        }
    }
    remove_if_empty(node_set, "config");
    changed |= without_volume(node_set, CA_VOLUME);
    changed
}

/// `parent[key]` goes when it is an empty object.
pub(crate) fn remove_if_empty(parent: &mut Value, key: &str) {
    if parent
        .get(key)
        .and_then(Value::as_object)
        .is_some_and(|o| o.is_empty())
        && let Some(parent) = parent.as_object_mut()
    {
        parent.remove(key);
    }
}

/// `service.spec.type` taken out of a `spec.transport` or `spec.remoteClusterServer`, and the
/// objects that leaves empty.
pub(crate) fn without_load_balancer_type(parent: &mut Value) {
    if let Some(spec) = parent
        .pointer_mut("/service/spec")
        .and_then(Value::as_object_mut)
    {
        spec.remove("type");
    }
    if let Some(service) = parent.get_mut("service") {
        remove_if_empty(service, "spec");
    }
    remove_if_empty(parent, "service");
}

/// Takes `value` out of the list setting `key`, and the setting when that empties it; true when
/// something changed.
pub(crate) fn remove_from_list(
    config: &mut serde_json::Map<String, Value>,
    key: &str,
    value: &str,
) -> bool {
    let Some(list) = config.get_mut(key).and_then(Value::as_array_mut) else {
        return false;
    };
    let before = list.len();
    list.retain(|v| v != value);
    let changed = list.len() != before;
    if list.is_empty() {
        config.remove(key);
    }
    changed
}

/// Removes volume `volume` and its mounts from a nodeSet, and the parts of the pod template
/// that leaves empty; true when something changed.
pub fn without_volume(node_set: &mut Value, volume: &str) -> bool {
    let mut changed = false;
    if let Some(pod_spec) = node_set
        .pointer_mut("/podTemplate/spec")
        .and_then(Value::as_object_mut)
    {
        if let Some(volumes) = pod_spec.get_mut("volumes").and_then(Value::as_array_mut) {
            let before = volumes.len();
            volumes.retain(|v| v["name"] != volume);
            changed |= volumes.len() != before;
            if volumes.is_empty() {
                pod_spec.remove("volumes");
            }
        }
        if let Some(containers) = pod_spec.get_mut("containers").and_then(Value::as_array_mut) {
            for container in containers.iter_mut() {
                if let Some(mounts) = container
                    .get_mut("volumeMounts")
                    .and_then(Value::as_array_mut)
                {
                    let before = mounts.len();
                    mounts.retain(|m| m["name"] != volume);
                    changed |= mounts.len() != before;
                    if mounts.is_empty() {
                        container
                            .as_object_mut()
                            .expect("an object")
                            .remove("volumeMounts");
                    }
                }
            }
            containers.retain(|c| {
                !(c["name"] == "elasticsearch" && c.as_object().is_some_and(|o| o.len() == 1))
            });
            if containers.is_empty() {
                pod_spec.remove("containers");
            }
        }
        if pod_spec.is_empty() {
            let template = node_set["podTemplate"].as_object_mut().expect("an object");
            template.remove("spec");
            if template.is_empty() {
                node_set
                    .as_object_mut()
                    .expect("an object")
                    .remove("podTemplate");
            }
        }
    }
    changed
}

/// `spec.remoteClusterServer` without what the link added: the LoadBalancer type, then the
/// `enabled: true` (off is ECK's default, so the field goes rather than becoming `false`).
/// Parts left empty go too, so a server the plugin set up leaves no trace.
pub(crate) fn server_spec_op(remote: &EsState, remove_lb_type: bool, disable: bool) -> Value {
    let mut server = remote
        .object
        .pointer("/spec/remoteClusterServer")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if remove_lb_type {
        without_load_balancer_type(&mut server);
    }
    if disable {
        server.as_object_mut().expect("an object").remove("enabled");
    }
    if server.as_object().is_some_and(|o| o.is_empty()) {
        json!({"op": "remove", "path": "/spec/remoteClusterServer"})
    } else {
        json!({"op": "replace", "path": "/spec/remoteClusterServer", "value": server})
    }
}

/// What the remote half of an unlink reads on the remote alone (`unexport`, `unlink
/// --remote-only`).
pub(crate) struct RemoteHalf<'a> {
    pub remote: &'a EsState,
    /// The key recorded for the link, if any.
    pub key_id: Option<String>,
    pub remote_others: Vec<EsState>,
    pub exposure_service: Option<Value>,
    /// Active keys named for the link (an interrupted run's included).
    pub active_link_keys: Vec<String>,
}

/// The remote half of an unlink of the incoming link recorded under `entry` (or an export).
pub(crate) fn remote_reversal_for(
    half: RemoteHalf,
    request: &CrossUnlinkRequest,
    entry: &str,
) -> Plan {
    let remote = half.remote;
    // The remote is its own "local" here: nothing on another side is read or planned.
    let observed = CrossUnlinkObserved {
        local: remote.clone(),
        record: LinkRecord {
            remote_context: remote.id.context.clone(),
            remote_namespace: remote.id.namespace.clone(),
            remote_name: remote.id.name.clone(),
            security: SecurityModel::ApiKey,
            key_id: half.key_id,
            ca_fingerprint: None,
            proxy_address: None,
            key_created_at: None,
            remote_cluster_uid: None,
            remote_server: None,
        },
        remote: Some(remote.clone()),
        remote_others: half.remote_others,
        credentials_secret: None,
        ca_bundle: None,
        local_alias_settings: BTreeMap::new(),
        exposure_service: half.exposure_service,
        active_link_keys: half.active_link_keys,
        pending: None,
    };
    let mut warnings = Vec::new();
    let steps = remote_reversal(&observed, remote, request, entry, &mut warnings);
    Plan { steps, warnings }
}

fn remote_reversal(
    observed: &CrossUnlinkObserved,
    remote: &EsState,
    request: &CrossUnlinkRequest,
    entry: &str,
    warnings: &mut Vec<String>,
) -> Vec<Step> {
    let mut steps = Vec::new();
    if let Some(id) = &observed.record.key_id {
        steps.push(Step {
            cluster: remote.id.clone(),
            summary: "invalidate the link's cross-cluster API key".to_string(),
            restarts_nodes: false,
            change: Change::InvalidateApiKey { id: id.clone() },
        });
    }
    for id in &observed.active_link_keys {
        if observed.record.key_id.as_ref() != Some(id) {
            steps.push(Step {
                cluster: remote.id.clone(),
                summary: format!(
                    "invalidate API key {id}, created for this link by a run that did not finish"
                ),
                restarts_nodes: false,
                change: Change::InvalidateApiKey { id: id.clone() },
            });
        }
    }
    let mut incoming: BTreeMap<String, Value> = remote
        .annotation(INCOMING_ANNOTATION)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();

    incoming.remove(entry);
    let mut patch = vec![spec_guard(remote)];
    let mut diff = Vec::new();
    let record_value =
        (!incoming.is_empty()).then(|| serde_json::to_string(&incoming).expect("serializes"));
    // Every annotation change in one call, so removing the last one removes the map too.
    let mut annotations: Vec<(&str, Option<String>)> = Vec::new();
    if remote.annotation(INCOMING_ANNOTATION).is_some() {
        annotations.push((INCOMING_ANNOTATION, record_value));
        diff.push(format!(
            "  metadata.annotations[{INCOMING_ANNOTATION}]: forgets {entry}"
        ));
    }
    let exposure = remote.annotation(EXPOSURE_ANNOTATION).map(str::to_string);
    let (mut remove_lb_type, mut disable) = (false, false);
    let mut delete_service = false;
    if incoming.is_empty() {
        match exposure.as_deref() {
            Some("service-template") => {
                if remote
                    .object
                    .pointer("/spec/remoteClusterServer/service/spec/type")
                    == Some(&json!("LoadBalancer"))
                {
                    remove_lb_type = true;
                    diff.push(
                        "  spec.remoteClusterServer.service.spec.type: - LoadBalancer".to_string(),
                    );
                }
                annotations.push((EXPOSURE_ANNOTATION, None));
            }
            Some("service") => {
                delete_service = observed.exposure_service.is_some();
                annotations.push((EXPOSURE_ANNOTATION, None));
            }
            _ => {}
        }
    }
    let mut restarts = false;
    if request.disable_server {
        let same_cluster_clients: Vec<String> = observed
            .remote_others
            .iter()
            .filter(|es| {
                es.remote_clusters()
                    .iter()
                    .any(|e| e.get("apiKey").is_some() && es.entry_points_at(e, &remote.id))
            })
            .map(|es| format!("{}/{}", es.id.namespace, es.id.name))
            .collect();
        let mut users: Vec<String> = incoming.keys().cloned().collect();
        users.extend(same_cluster_clients);
        if !remote.remote_cluster_server_enabled() {
            warnings.push(format!(
                "the remote cluster server of {} is already off",
                remote.id
            ));
        } else if !users.is_empty() {
            warnings.push(format!(
                "the remote cluster server of {} stays on: still used by {}",
                remote.id,
                users.join(", ")
            ));
        } else if remote.annotation(SERVER_ANNOTATION) != Some(SERVER_ENABLED_BY_PLUGIN) {
            warnings.push(format!(
                "the remote cluster server of {} stays on: kubectl remote-cluster did not turn it on",
                remote.id
            ));
        } else {
            disable = true;
            annotations.push((SERVER_ANNOTATION, None));
            diff.push("  spec.remoteClusterServer.enabled: true -> false".to_string());
            restarts = true;
        }
    }
    restarts |= remote.annotations_restart(&annotations);
    patch.extend(annotation_ops(remote, &annotations));
    if remove_lb_type || disable {
        patch.push(server_spec_op(remote, remove_lb_type, disable));
    }
    if patch.len() > 1 {
        steps.push(Step {
            cluster: remote.id.clone(),
            summary: "forget the incoming link and remove what only it used".to_string(),
            restarts_nodes: restarts,
            change: Change::PatchElasticsearch {
                resource_version: remote.resource_version(),
                patch,
                diff,
            },
        });
    }
    if delete_service && let Some(service) = &observed.exposure_service {
        steps.push(delete_step(
            remote,
            ObjectKind::Service,
            &exposure_service_name(&remote.id),
            service,
            "delete Service",
        ));
    }
    steps
}

/// The key in [`INCOMING_ANNOTATION`] of a link made from `local` as `alias`.
pub fn incoming_key(local: &ClusterId, alias: &str) -> String {
    format!(
        "{}/{}/{}:{alias}",
        local.context, local.namespace, local.name
    )
}

/// The id of the key recorded for the incoming link `entry` on `remote`, if any.
pub fn incoming_key_id(remote: &EsState, entry: &str) -> Option<String> {
    let incoming: BTreeMap<String, Value> = remote
        .annotation(INCOMING_ANNOTATION)
        .and_then(|t| serde_json::from_str(t).ok())?;
    incoming
        .get(entry)?
        .get("keyId")?
        .as_str()
        .map(str::to_string)
}

/// What `unlink --remote-only` read on the remote of an API-key link whose local side is out
/// of reach (or was cleaned with `--local-only`).
#[derive(Debug, Clone)]
pub struct RemoteOnlyObserved {
    /// The link's local side, as named in the remote's incoming record.
    pub local: ClusterId,
    pub remote: EsState,
    /// Every other Elasticsearch of the remote's Kubernetes cluster.
    pub remote_others: Vec<EsState>,
    pub exposure_service: Option<Value>,
    /// Active keys named for this link on the remote.
    pub active_link_keys: Vec<String>,
}

/// `unlink --remote-only`: the remote's half of an unlink (key, incoming record, exposure,
/// and with `--disable-server` the server), from the remote's own record of the link.
pub fn plan_remote_only_unlink(
    observed: &RemoteOnlyObserved,
    request: &CrossUnlinkRequest,
) -> Result<Plan, PlanError> {
    let remote = &observed.remote;
    let entry = incoming_key(&observed.local, &request.alias);
    let key_id = incoming_key_id(remote, &entry);
    if key_id.is_none() && observed.active_link_keys.is_empty() {
        return Err(PlanError::NoSuchAlias {
            local: observed.local.clone(),
            alias: request.alias.clone(),
        });
    }
    let half = RemoteHalf {
        remote,
        key_id,
        remote_others: observed.remote_others.clone(),
        exposure_service: observed.exposure_service.clone(),
        active_link_keys: observed.active_link_keys.clone(),
    };
    Ok(remote_reversal_for(half, request, &entry))
}
