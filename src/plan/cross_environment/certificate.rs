//! The certificate security model across Kubernetes clusters (ECK scenario 2b), and `trust`:
//! each side trusts the other's transport CA through `spec.transport.tls.certificateAuthorities`,
//! the remote's transport is exposed, and the local connects in proxy mode to its port (9300
//! unless the Service template names another).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;

pub const TRANSPORT_PORT: u16 = 9300;
/// Annotation on an Elasticsearch whose `certificateAuthorities` ConfigMap the plugin created.
pub const TRANSPORT_CAS_ANNOTATION: &str = "remote-cluster.kubectl-plugin.dev/transport-cas";

pub fn transport_cas_name(es: &ClusterId) -> String {
    format!("{}-remote-cluster-transport-cas", es.name)
}

/// How a peer is named in CA blocks and records: `context/namespace/name`.
pub fn peer_label(id: &ClusterId) -> String {
    format!("{}/{}/{}", id.context, id.namespace, id.name)
}

/// One side of a transport trust: the resource, its own CA, and the ConfigMap its
/// `certificateAuthorities` names (or would name), as read.
#[derive(Debug, Clone)]
pub struct TrustSide {
    pub es: EsState,
    pub own_ca: Option<RemoteCa>,
    pub ca_configmap: Option<Value>,
}

impl TrustSide {
    fn configured_configmap(&self) -> Option<String> {
        self.es
            .object
            .pointer("/spec/transport/tls/certificateAuthorities/configMapName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
    }

    /// The ConfigMap holding the CAs this side trusts: the user's, or one of ours.
    pub fn configmap_name(&self) -> String {
        self.configured_configmap()
            .unwrap_or_else(|| transport_cas_name(&self.es.id))
    }

    pub fn bundle(&self) -> String {
        self.ca_configmap
            .as_ref()
            .and_then(|c| c.pointer("/data/ca.crt"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }
}

/// What a transport trust needs: `truster` gets `peer`'s CA as a marked block. Returns the
/// ConfigMap step and, when the spec must name our ConfigMap, the patch operations for it.
pub(crate) fn trust_steps(
    truster: &TrustSide,
    peer: &ClusterId,
    peer_ca: &RemoteCa,
    refresh: bool,
    warnings: &mut Vec<String>,
) -> (Option<Step>, bool, Vec<String>) {
    let label = peer_label(peer);
    let current = truster.bundle();
    let block = ca_block(&label, peer_ca);
    let mut diff = Vec::new();
    let needs_reference = truster.configured_configmap().is_none();
    if needs_reference {
        diff.push(format!(
            "  spec.transport.tls.certificateAuthorities.configMapName: + {}",
            transport_cas_name(&truster.es.id)
        ));
    }
    if current.contains(&block) {
        return (None, needs_reference, diff);
    }
    let has_old_block = current.contains(&ca_block_prefix(&label));
    if has_old_block && !refresh {
        warnings.push(format!(
            "{} trusts an older CA of {label}: run again with --refresh to replace it",
            truster.es.id
        ));
        return (None, needs_reference, diff);
    }
    let bundle = with_block(&without_block(&current, &label), &block);
    let name = truster.configmap_name();
    let step = Step {
        cluster: truster.es.id.clone(),
        summary: if has_old_block {
            format!("replace the stale CA of {label} in ConfigMap {name}")
        } else {
            format!("trust the transport CA of {label} (ConfigMap {name})")
        },
        restarts_nodes: false,
        change: Change::ApplyObject {
            object: ObjectKind::ConfigMap,
            namespace: truster.es.id.namespace.clone(),
            name,
            resource_version: truster.ca_configmap.as_ref().and_then(resource_version_of),
            labels: if truster.ca_configmap.is_none() {
                ours_labels()
            } else {
                BTreeMap::new()
            },
            data: BTreeMap::from([("ca.crt".to_string(), DataValue::Literal(bundle))]),
            remove: Vec::new(),
            diff: vec![format!(
                "+   ca.crt: CA sha256:{} of {label}",
                peer_ca.fingerprint
            )],
        },
    };
    (Some(step), needs_reference, diff)
}

/// `spec.transport` with our CA ConfigMap named and/or the LoadBalancer type set, as one `add`
/// of the whole subtree (built from what is there, so nothing else in it changes).
fn transport_op(es: &EsState, ca_reference: bool, load_balancer: bool) -> Option<Value> {
    if !ca_reference && !load_balancer {
        return None;
    }
    let mut transport = es
        .object
        .pointer("/spec/transport")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    if ca_reference {
        let tls = super::ensure_object(&mut transport, "tls");
        tls.insert(
            "certificateAuthorities".into(),
            json!({"configMapName": transport_cas_name(&es.id)}),
        );
    }
    if load_balancer {
        let service = super::ensure_object_value(&mut transport, "service");
        super::ensure_object(service, "spec").insert("type".into(), json!("LoadBalancer"));
    }
    Some(json!({"op": "add", "path": "/spec/transport", "value": transport}))
}

/// `spec.transport` without what the plugin added; parts left empty go too.
pub(crate) fn transport_without(
    es: &EsState,
    ca_reference: bool,
    load_balancer: bool,
) -> Option<Value> {
    if !ca_reference && !load_balancer {
        return None;
    }
    let mut transport = es.object.pointer("/spec/transport").cloned()?;
    if ca_reference && let Some(tls) = transport.get_mut("tls").and_then(Value::as_object_mut) {
        tls.remove("certificateAuthorities");
    }
    if load_balancer {
        super::unlink::without_load_balancer_type(&mut transport);
    }
    super::unlink::remove_if_empty(&mut transport, "tls");
    Some(if transport.as_object().is_some_and(|o| o.is_empty()) {
        json!({"op": "remove", "path": "/spec/transport"})
    } else {
        json!({"op": "add", "path": "/spec/transport", "value": transport})
    })
}

/// The steps of `trust`: `a` trusts `b` and, unless one way, `b` trusts `a`.
pub fn plan_trust(
    a: &TrustSide,
    b: &TrustSide,
    one_way: bool,
    refresh: bool,
) -> Result<Plan, PlanError> {
    if a.es.id == b.es.id {
        return Err(PlanError::SameCluster(a.es.id.clone()));
    }
    let mut warnings = Vec::new();
    let mut steps = Vec::new();
    let mut pairs = vec![(a, b)];
    if !one_way {
        pairs.push((b, a));
    }
    for (truster, peer) in pairs {
        let peer_ca = peer
            .own_ca
            .clone()
            .ok_or_else(|| PlanError::no_transport_ca(&peer.es.id))?;
        let (step, needs_reference, diff) =
            trust_steps(truster, &peer.es.id, &peer_ca, refresh, &mut warnings);
        steps.extend(step);
        if needs_reference {
            steps.push(reference_step(truster, true, false, diff, &[]));
        }
    }
    Ok(Plan { steps, warnings })
}

/// A spec patch naming our ConfigMap (recording that it is ours) and/or exposing the transport,
/// plus `annotations`.
pub(crate) fn reference_step(
    side: &TrustSide,
    ca_reference: bool,
    load_balancer: bool,
    mut diff: Vec<String>,
    annotations: &[(&str, Option<String>)],
) -> Step {
    let mut patch = vec![spec_guard(&side.es)];
    patch.extend(transport_op(&side.es, ca_reference, load_balancer));
    let mut all: Vec<(&str, Option<String>)> = annotations.to_vec();
    if ca_reference {
        all.push((
            TRANSPORT_CAS_ANNOTATION,
            Some(transport_cas_name(&side.es.id)),
        ));
        diff.push(format!(
            "  metadata.annotations[{TRANSPORT_CAS_ANNOTATION}]: ours"
        ));
    }
    patch.extend(annotation_ops(&side.es, &all));
    Step {
        cluster: side.es.id.clone(),
        summary: "name the ConfigMap of trusted CAs in spec.transport.tls.certificateAuthorities"
            .to_string(),
        // The CAs themselves go into Secrets Elasticsearch reloads (real-behaviour.md 6).
        restarts_nodes: side.es.annotations_restart(&all),
        change: Change::PatchElasticsearch {
            resource_version: side.es.resource_version(),
            patch,
            diff,
        },
    }
}

/// What `link --security certificate` read on both sides.
#[derive(Debug, Clone)]
pub struct CertificateObserved {
    /// Who the remote Kubernetes cluster is (recorded with the link).
    pub remote_cluster: ClusterIdentity,
    pub local: TrustSide,
    pub remote: TrustSide,
    pub local_operator: Operator,
    pub remote_operator: Operator,
    /// The LoadBalancer host of `<remote>-es-transport`, if it has one.
    /// `HOST:PORT` of the remote's transport LoadBalancer, once it has an address.
    pub exposed_address: Option<String>,
    pub local_alias_settings: BTreeMap<String, Value>,
    /// The ConfigMap an interrupted link or unlink of this alias left ([`pending_name`]).
    pub pending: Option<Value>,
}

pub fn plan_certificate_link(
    observed: &CertificateObserved,
    request: &CrossRequest,
) -> Result<LinkPlan, PlanError> {
    let (local, remote) = (&observed.local.es, &observed.remote.es);
    let alias = link_alias(request.alias.as_ref(), &remote.id)?;
    if !request.search_indices.is_empty() || !request.replication_indices.is_empty() {
        return Err(PlanError::IndicesWithCertificate);
    }
    let mut warnings = vec![certificate_deprecation()];
    check_managed(local)?;
    check_managed(remote)?;
    check_license(
        &local.id.context,
        &observed.local_operator,
        LicenceGate::Terms,
        &mut warnings,
    )?;
    check_license(
        &remote.id.context,
        &observed.remote_operator,
        LicenceGate::Terms,
        &mut warnings,
    )?;
    connectable_versions(local, remote)?;
    check_address(request.proxy_address.as_ref())?;
    super::check_reachable(local, remote, request)?;
    let ours = local.plugin_links();
    check_alias_record(
        local,
        &alias,
        &model_record(remote, SecurityModel::Certificate),
    )?;
    super::check_alias_free(local, &alias, &ours, &observed.local_alias_settings)?;
    let missing_ca = |side: &TrustSide| PlanError::no_transport_ca(&side.es.id);
    let local_ca = observed
        .local
        .own_ca
        .clone()
        .ok_or_else(|| missing_ca(&observed.local))?;
    let remote_ca = observed
        .remote
        .own_ca
        .clone()
        .ok_or_else(|| missing_ca(&observed.remote))?;

    let mut steps = Vec::new();
    // The remote: trust the local's CA, expose its transport, record the incoming link.
    let (trust_step, remote_reference, mut diff) =
        trust_steps(&observed.remote, &local.id, &local_ca, true, &mut warnings);
    steps.extend(trust_step);
    let transport_type = remote
        .object
        .pointer("/spec/transport/service/spec/type")
        .and_then(Value::as_str);
    let asks_lb = request.expose == Expose::Loadbalancer && request.proxy_address.is_none();
    if let (true, Some(other)) = (asks_lb, transport_type)
        && other != "LoadBalancer"
    {
        // The user's type is theirs: never replaced (see check_service_type).
        return Err(PlanError::ServiceTypeTaken {
            remote: Box::new(remote.id.clone()),
            field: "spec.transport.service.spec.type",
            service_type: other.to_string(),
        });
    }
    let wants_lb = asks_lb && transport_type.is_none();
    let mut remote_annotations: Vec<(&str, Option<String>)> = Vec::new();
    if wants_lb {
        diff.push("  spec.transport.service.spec.type: + LoadBalancer".to_string());
        remote_annotations.push((
            EXPOSURE_ANNOTATION,
            Some("transport-service-template".to_string()),
        ));
    }
    let mut incoming: BTreeMap<String, Value> = remote
        .annotation(INCOMING_ANNOTATION)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    let entry_key = format!("{}:{alias}", peer_label(&local.id));
    let entry = json!({"security": "certificate"});
    if incoming.get(&entry_key) != Some(&entry) {
        incoming.insert(entry_key.clone(), entry);
        remote_annotations.push((
            INCOMING_ANNOTATION,
            Some(serde_json::to_string(&incoming).expect("serializes")),
        ));
        diff.push(format!(
            "  metadata.annotations[{INCOMING_ANNOTATION}]: records {entry_key}"
        ));
    }
    if remote_reference || wants_lb || !remote_annotations.is_empty() {
        let mut step = reference_step(
            &observed.remote,
            remote_reference,
            wants_lb,
            diff,
            &remote_annotations,
        );
        step.summary = "trust the local's CA, expose the transport and record the link".to_string();
        steps.push(step);
    }
    let address = match (&request.proxy_address, &observed.exposed_address) {
        (Some(address), _) => address.clone(),
        (None, Some(exposed)) => exposed.clone(),
        (None, None) => {
            let service = format!("{}-es-transport", remote.id.name);
            let (step, address) = address_wait_step(&remote.id, service, ServicePort::transport());
            steps.push(step);
            address
        }
    };

    // The local: trust the remote's CA, record the link, connect.
    let (trust_step, local_reference, diff) =
        trust_steps(&observed.local, &remote.id, &remote_ca, true, &mut warnings);
    steps.extend(trust_step);
    let record = LinkRecord {
        remote_context: remote.id.context.clone(),
        remote_namespace: remote.id.namespace.clone(),
        remote_name: remote.id.name.clone(),
        security: SecurityModel::Certificate,
        key_id: None,
        ca_fingerprint: Some(remote_ca.fingerprint.clone()),
        proxy_address: Some(address.clone()),
        key_created_at: None,
        remote_cluster_uid: observed.remote_cluster.uid.clone(),
        remote_server: Some(observed.remote_cluster.server.clone()),
    };
    let pending = PendingOperation::new("link", &alias, &record);
    check_pending(&local.id, observed.pending.as_ref(), &pending)?;
    let mut links = ours.clone();
    let mut local_annotations: Vec<(&str, Option<String>)> = Vec::new();
    let mut diff = diff;
    if links.get(&alias) != Some(&record) {
        links.insert(alias.clone(), record);
        local_annotations.push((LINKS_ANNOTATION, links_annotation_value(&links)));
        diff.push(format!(
            "  metadata.annotations[{LINKS_ANNOTATION}]: records alias {alias:?}"
        ));
    }
    let local_spec_changes = local_reference;
    if local_spec_changes || !local_annotations.is_empty() {
        let mut step = reference_step(
            &observed.local,
            local_reference,
            false,
            diff,
            &local_annotations,
        );
        step.summary = "trust the remote's CA and record the link".to_string();
        steps.push(step);
    }
    if local_spec_changes {
        steps.push(rollout_wait_step(&local.id, "ECK applies the change"));
    }
    steps.extend(proxy_settings_step(
        &local.id,
        &observed.local_alias_settings,
        ProxySettings {
            alias: &alias,
            address: &address,
            server_name: None,
            skip_unavailable: request.skip_unavailable,
        },
        format!("connect alias {alias:?} in proxy mode (transport)"),
    ));
    let steps = with_pending_record(steps, &local.id, observed.pending.as_ref(), &pending, true);
    Ok(LinkPlan {
        alias,
        security: SecurityModel::Certificate,
        plan: Plan { steps, warnings },
    })
}

/// What `unlink` read for a certificate-model link across clusters.
#[derive(Debug, Clone)]
pub struct CertificateUnlinkObserved {
    pub local: TrustSide,
    /// `None` when the remote context could not be reached (`--local-only`).
    pub remote: Option<TrustSide>,
    pub record: LinkRecord,
    pub local_alias_settings: BTreeMap<String, Value>,
    /// The local's restricted transport trust (for a remote on Elastic Cloud Hosted or ECE).
    pub local_restricted: RestrictedObserved,
    /// The ConfigMap an interrupted link or unlink of this alias left ([`pending_name`]).
    pub pending: Option<Value>,
}

pub fn plan_certificate_unlink(
    observed: &CertificateUnlinkObserved,
    alias: &str,
) -> CrossUnlinkPlan {
    let local = &observed.local.es;
    let remote_id = ClusterId {
        context: observed.record.remote_context.clone(),
        namespace: observed.record.remote_namespace.clone(),
        name: observed.record.remote_name.clone(),
    };
    let mut steps = Vec::new();
    let mut left_on_remote = Vec::new();
    match &observed.remote {
        Some(remote) => {
            let mut incoming: BTreeMap<String, Value> = remote
                .es
                .annotation(INCOMING_ANNOTATION)
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or_default();
            incoming.remove(&format!("{}:{alias}", peer_label(&local.id)));
            let still_linked_from_local = incoming.keys().any(|k| k.starts_with(&format!("{}:", peer_label(&local.id))));
            let mut annotations: Vec<(&str, Option<String>)> = vec![(
                INCOMING_ANNOTATION,
                (!incoming.is_empty()).then(|| serde_json::to_string(&incoming).expect("serializes")),
            )];
            let mut remove_lb = false;
            if incoming.is_empty()
                && remote.es.annotation(EXPOSURE_ANNOTATION) == Some("transport-service-template")
            {
                remove_lb = remote.es.object.pointer("/spec/transport/service/spec/type")
                    == Some(&json!("LoadBalancer"));
                annotations.push((EXPOSURE_ANNOTATION, None));
            }
            let remote_steps = untrust(remote, &local.id, still_linked_from_local);
            let spec_ops: Vec<Value> =
                transport_without(&remote.es, remote_steps.1, remove_lb).into_iter().collect();
            steps.extend(remote_steps.0);
            if !spec_ops.is_empty() || remote.es.annotation(INCOMING_ANNOTATION).is_some() {
                let mut patch = vec![spec_guard(&remote.es)];
                patch.extend(spec_ops);
                if remote_steps.1 {
                    annotations.push((TRANSPORT_CAS_ANNOTATION, None));
                }
                patch.extend(annotation_ops(&remote.es, &annotations));
                steps.insert(
                    0,
                    Step {
                        cluster: remote.es.id.clone(),
                        summary: "forget the incoming link and what only it used".to_string(),
                        restarts_nodes: remote.es.annotations_restart(&annotations),
                        change: Change::PatchElasticsearch {
                            resource_version: remote.es.resource_version(),
                            patch,
                            diff: vec![format!("  metadata.annotations[{INCOMING_ANNOTATION}]: forgets the link")],
                        },
                    },
                );
            }
            steps.extend(remote_steps.2);
        }
        None => left_on_remote.push(format!(
            "the trust of {} in the transport CAs of {}, its record in annotation {INCOMING_ANNOTATION} and the exposure of its transport: run `kubectl remote-cluster unlink` again when the context is reachable",
            peer_label(&local.id),
            peer_label(&remote_id)
        )),
    }
    steps.extend(clear_alias_settings_step(
        &local.id,
        alias,
        &observed.local_alias_settings,
    ));
    let mut links = local.plugin_links();
    links.remove(alias);
    let still_linked = links.values().any(|r| {
        r.remote_context == remote_id.context
            && r.remote_namespace == remote_id.namespace
            && r.remote_name == remote_id.name
    });
    let local_steps = untrust(&observed.local, &remote_id, still_linked);
    let restricted = if still_linked {
        RestrictedChange::default()
    } else {
        restricted_untrust_steps(&observed.local, &observed.local_restricted, &remote_id)
    };
    let restarts = !restricted.node_set_ops.is_empty();
    let mut ops: Vec<Value> = transport_without(local, local_steps.1, false)
        .into_iter()
        .collect();
    ops.extend(restricted.node_set_ops);
    steps.extend(local_steps.0);
    let mut after = local_steps.2;
    match restricted.configmap {
        Some(step) if matches!(step.change, Change::DeleteObject { .. }) => after.push(step),
        Some(step) => steps.push(step),
        None => {}
    }
    let mut annotations: Vec<(&str, Option<String>)> =
        vec![(LINKS_ANNOTATION, links_annotation_value(&links))];
    if local_steps.1 {
        annotations.push((TRANSPORT_CAS_ANNOTATION, None));
    }
    let mut patch = vec![spec_guard(local)];
    patch.extend(ops);
    patch.extend(annotation_ops(local, &annotations));
    let mut diff = restricted.diff;
    diff.push(format!(
        "  metadata.annotations[{LINKS_ANNOTATION}]: forgets alias {alias:?}"
    ));
    let propagated = local.annotations_restart(&annotations);
    steps.extend(patch_then_rollout(
        local,
        "forget the link",
        patch,
        diff,
        restarts
            .then_some("every node restarts without the restricted trust")
            .or(propagated.then_some(PROPAGATED_RESTART)),
    ));
    steps.extend(after);
    let steps = unlink_with_pending_record(
        steps,
        &local.id,
        alias,
        &observed.record,
        observed.pending.as_ref(),
        observed.remote.is_some(),
    );
    CrossUnlinkPlan {
        alias: alias.to_string(),
        plan: Plan {
            steps,
            warnings: Vec::new(),
        },
        left_on_remote,
    }
}

/// Removing `peer`'s CA from `side`'s trusted CAs: the steps before the spec patch, whether our
/// ConfigMap goes away (so the spec must stop naming it), and the steps after the spec patch.
pub(crate) fn untrust(
    side: &TrustSide,
    peer: &ClusterId,
    keep: bool,
) -> (Vec<Step>, bool, Vec<Step>) {
    let (mut before, mut after) = (Vec::new(), Vec::new());
    let label = peer_label(peer);
    let current = side.bundle();
    if keep || !current.contains(&ca_block_prefix(&label)) {
        return (before, false, after);
    }
    let remaining = without_block(&current, &label);
    let name = side.configmap_name();
    let Some(configmap) = &side.ca_configmap else {
        return (before, false, after);
    };
    // The plugin's own ConfigMap: referenced as ours, or (a link stopped before referencing
    // it) created with the plugin's label under the plugin's name.
    let labelled_ours = configmap["metadata"]["labels"][MANAGED_BY_LABEL] == json!(MANAGED_BY);
    let ours = name == transport_cas_name(&side.es.id)
        && (side.es.annotation(TRANSPORT_CAS_ANNOTATION).is_some() || labelled_ours);
    let drop_ours = ours && remaining.trim().is_empty();
    if drop_ours {
        after.push(super::unlink::delete_step(
            &side.es,
            ObjectKind::ConfigMap,
            &name,
            configmap,
            "delete ConfigMap",
        ));
    } else {
        // A user's ConfigMap that held only our block had no `ca.crt` before: the key goes.
        let (data, remove) = if remaining.is_empty() {
            (BTreeMap::new(), vec!["ca.crt".to_string()])
        } else {
            (
                BTreeMap::from([("ca.crt".to_string(), DataValue::Literal(remaining))]),
                Vec::new(),
            )
        };
        before.push(Step {
            cluster: side.es.id.clone(),
            summary: format!("stop trusting the transport CA of {label} (ConfigMap {name})"),
            restarts_nodes: false,
            change: Change::ApplyObject {
                object: ObjectKind::ConfigMap,
                namespace: side.es.id.namespace.clone(),
                name,
                resource_version: resource_version_of(configmap),
                labels: BTreeMap::new(),
                data,
                remove,
                diff: vec![format!("-   ca.crt: CA of {label}")],
            },
        });
    }
    (before, drop_ours, after)
}

/// The link record of `alias` in the plugin's links annotation, when it is not there yet.
pub(crate) fn record_link(
    es: &EsState,
    alias: &str,
    record: LinkRecord,
    annotations: &mut Vec<(&str, Option<String>)>,
    diff: &mut Vec<String>,
) {
    let mut links = es.plugin_links();
    if links.get(alias) != Some(&record) {
        links.insert(alias.to_string(), record);
        annotations.push((LINKS_ANNOTATION, links_annotation_value(&links)));
        diff.push(format!(
            "  metadata.annotations[{LINKS_ANNOTATION}]: records alias {alias:?}"
        ));
    }
}

/// The local half of a certificate-model link: trust the peer's CA and record the link, as the
/// ConfigMap step and the spec/annotation step.
pub(crate) fn trust_and_record(
    local: &TrustSide,
    peer: &ClusterId,
    peer_ca: &RemoteCa,
    alias: &str,
    record: LinkRecord,
    warnings: &mut Vec<String>,
) -> (Option<Step>, Option<Step>) {
    let (trust_step, reference, mut diff) = trust_steps(local, peer, peer_ca, true, warnings);
    let mut annotations: Vec<(&str, Option<String>)> = Vec::new();
    record_link(&local.es, alias, record, &mut annotations, &mut diff);
    let spec = (reference || !annotations.is_empty()).then(|| {
        let mut step = reference_step(local, reference, false, diff, &annotations);
        step.summary = "trust the remote's CA and record the link".to_string();
        step
    });
    (trust_step, spec)
}
