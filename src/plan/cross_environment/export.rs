//! `export`: an ECK cluster prepared as the remote of a cluster outside every kubeconfig context
//! (ECK scenario 4, API-key model): remote cluster server on and exposed, a cross-cluster API key
//! made for the other side, and the link recorded so `unexport` can undo it.

use serde_json::{Value, json};

use super::*;

/// What `export` read on the ECK cluster.
#[derive(Debug, Clone)]
pub struct ExportObserved {
    pub remote: EsState,
    pub operator: Operator,
    pub exposed_address: Option<String>,
    pub exposure_service_exists: bool,
    pub ca: Option<RemoteCa>,
    /// The pending record of an export of the alias that was interrupted, as read.
    pub pending: Option<Value>,
}

/// The pending record of an export is named as that of a link of alias `<alias>.export`
/// (aliases have no '.', so it cannot be a link's).
pub fn export_pending_alias(alias: &str) -> String {
    format!("{alias}.export")
}

/// What an export records as under way: the operation and the alias, on the exported cluster.
pub fn export_intent(remote: &EsState, alias: &str) -> PendingOperation {
    PendingOperation {
        operation: "export".to_string(),
        alias: export_pending_alias(alias),
        remote_context: remote.id.context.clone(),
        remote_namespace: remote.id.namespace.clone(),
        remote_name: remote.id.name.clone(),
        security: SecurityModel::ApiKey,
        remote_cluster_uid: None,
        remote_server: None,
    }
}

/// The name the plugin gives the key it exports for `alias`.
pub fn export_key_name(remote: &ClusterId, alias: &str) -> String {
    bounded_key_name(format!(
        "{API_KEY_PREFIX}export-{}-{}-{alias}",
        remote.namespace, remote.name
    ))
}

#[derive(Debug, Clone, Default)]
pub struct ExportRequest {
    pub alias: String,
    pub search_indices: Vec<String>,
    pub replication_indices: Vec<String>,
    pub expose: Expose,
    pub proxy_address: Option<String>,
}

/// The key of an export in [`INCOMING_ANNOTATION`].
pub fn export_key(alias: &str) -> String {
    format!("external:{alias}")
}

/// The id of the key an earlier export of `alias` made, if recorded.
pub fn exported_key_id(remote: &EsState, alias: &str) -> Option<String> {
    let incoming: BTreeMap<String, Value> = remote
        .annotation(INCOMING_ANNOTATION)
        .and_then(|t| serde_json::from_str(t).ok())?;
    incoming
        .get(&export_key(alias))?
        .get("keyId")?
        .as_str()
        .map(str::to_string)
}

pub fn plan_export(observed: &ExportObserved, request: &ExportRequest) -> Result<Plan, PlanError> {
    let remote = &observed.remote;
    if !valid_alias(&request.alias) {
        return Err(PlanError::InvalidAlias(request.alias.clone()));
    }
    let mut warnings = Vec::new();
    check_managed(remote)?;
    check_license(
        &remote.id.context,
        &observed.operator,
        LicenceGate::Terms,
        &mut warnings,
    )?;
    let version = remote
        .version()
        .ok_or_else(|| PlanError::UnknownVersion(remote.id.clone()))?;
    if !versions::supports_api_key(&version) {
        return Err(PlanError::ApiKeyUnsupported {
            cluster: remote.id.clone(),
            version: version.to_string(),
        });
    }
    check_server_exposure(remote, &observed.operator, request.proxy_address.as_ref())?;
    if observed.ca.is_none() {
        return Err(PlanError::no_transport_ca(&remote.id));
    }
    let mut steps = Vec::new();
    let side = RemoteSide {
        es: remote,
        operator: &observed.operator,
        exposed_address: observed.exposed_address.as_ref(),
        exposure_service_exists: observed.exposure_service_exists,
    };
    let cross = CrossRequest {
        alias: Some(request.alias.clone()),
        search_indices: request.search_indices.clone(),
        replication_indices: request.replication_indices.clone(),
        expose: request.expose,
        proxy_address: request.proxy_address.clone(),
        server_name: None,
        skip_unavailable: false,
    };
    check_service_type(&side, &cross)?;
    let intent = export_intent(remote, &request.alias);
    check_pending(&remote.id, observed.pending.as_ref(), &intent)?;
    plan_exposure(&side, &cross, &mut steps);
    if exported_key_id(remote, &request.alias).is_some() {
        // The key was handed over before; the plugin never kept it, so there is nothing to
        // write again. `unexport` invalidates it; a new export then makes a new one.
        let steps =
            with_pending_record(steps, &remote.id, observed.pending.as_ref(), &intent, true);
        return Ok(Plan { steps, warnings });
    }
    let name = export_key_name(&remote.id, &request.alias);
    let access = cross_cluster_access(&request.search_indices, &request.replication_indices);
    steps.push(Step {
        cluster: remote.id.clone(),
        summary: format!("create a cross-cluster API key for {:?}", request.alias),
        restarts_nodes: false,
        change: Change::CreateApiKey {
            name: name.clone(),
            body: json!({
                "name": name,
                "access": access,
                "metadata": {"managed-by": MANAGED_BY, "exported-as": request.alias},
            }),
        },
    });
    let mut incoming: BTreeMap<String, Value> = remote
        .annotation(INCOMING_ANNOTATION)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    incoming.insert(
        export_key(&request.alias),
        json!({"keyId": output_placeholder(OUTPUT_KEY_ID)}),
    );
    let value = serde_json::to_string(&incoming).expect("serializes");
    let restarts = remote.annotations_restart(&[(INCOMING_ANNOTATION, Some(value.clone()))]);
    let mut patch = Vec::new();
    let path = format!(
        "/metadata/annotations/{}",
        INCOMING_ANNOTATION.replace('/', "~1")
    );
    match remote.annotation(INCOMING_ANNOTATION) {
        Some(current) => {
            patch.push(json!({"op": "test", "path": path, "value": current}));
            patch.push(json!({"op": "replace", "path": path, "value": value}));
        }
        None => patch.extend(annotation_ops_after(
            remote,
            &steps,
            &[(INCOMING_ANNOTATION, Some(value))],
        )),
    }
    steps.push(Step {
        cluster: remote.id.clone(),
        summary: format!("record the export {:?}", request.alias),
        restarts_nodes: restarts,
        change: Change::PatchElasticsearch {
            resource_version: remote.resource_version(),
            patch,
            diff: vec![format!(
                "  metadata.annotations[{INCOMING_ANNOTATION}]: records {}",
                export_key(&request.alias)
            )],
        },
    });
    // A run stopped before the record leaves an exposure (and maybe a key) `unexport` finds
    // through the pending record.
    let steps = with_pending_record(steps, &remote.id, observed.pending.as_ref(), &intent, true);
    Ok(Plan { steps, warnings })
}

/// `unexport`: invalidate the exported key, forget the record, remove the exposure when no
/// other link uses it.
pub fn plan_unexport(
    remote: &EsState,
    request: &CrossUnlinkRequest,
    exposure_service: Option<&Value>,
    remote_others: Vec<EsState>,
    interrupted: Option<InterruptedExport>,
) -> Result<Plan, PlanError> {
    let alias = request.alias.as_str();
    let key_id = exported_key_id(remote, alias);
    if key_id.is_none() && interrupted.is_none() {
        return Err(PlanError::NoSuchAlias {
            local: remote.id.clone(),
            alias: alias.to_string(),
        });
    }
    let InterruptedExport {
        pending,
        active_keys,
    } = interrupted.unwrap_or_default();
    let half = super::unlink::RemoteHalf {
        remote,
        key_id,
        remote_others,
        exposure_service: exposure_service.cloned(),
        active_link_keys: active_keys,
    };
    let mut plan = super::unlink::remote_reversal_for(half, request, &export_key(alias));
    if let Some(pending) = &pending {
        plan.steps = with_pending_record(
            plan.steps,
            &remote.id,
            Some(pending),
            &export_intent(remote, alias),
            true,
        );
    }
    Ok(plan)
}

/// What an interrupted export left for `unexport` to find: its pending record, and the keys
/// named for the export (one may have been created before the record was written).
#[derive(Debug, Clone, Default)]
pub struct InterruptedExport {
    pub pending: Option<Value>,
    pub active_keys: Vec<String>,
}

/// For a peer on Elastic Cloud Hosted or ECE: its CA is trusted only for nodes named as
/// `subjects` say (see [`restricted_trust_steps`]).
#[derive(Debug, Clone)]
pub struct Restriction<'a> {
    pub observed: &'a RestrictedObserved,
    pub subjects: &'a [String],
}

/// `export --security certificate`: the ECK cluster trusts the other side's transport CA
/// (restricted to its node names for a peer on Elastic Cloud Hosted or ECE), its transport is
/// exposed, and the export is recorded.
pub fn plan_export_certificate(
    remote: &TrustSide,
    operator: &Operator,
    request: &ExportRequest,
    their_ca: &RemoteCa,
    exposed_address: Option<&String>,
    restriction: Option<Restriction>,
) -> Result<Plan, PlanError> {
    let es = &remote.es;
    if !valid_alias(&request.alias) {
        return Err(PlanError::InvalidAlias(request.alias.clone()));
    }
    let mut warnings = vec![certificate_deprecation()];
    check_managed(es)?;
    check_license(&es.id.context, operator, LicenceGate::Terms, &mut warnings)?;
    check_address(request.proxy_address.as_ref())?;
    let mut steps = Vec::new();
    let peer = external_peer(&request.alias);
    let (reference, mut diff, node_set_ops) = match &restriction {
        Some(r) => {
            let change = restricted_trust_steps(
                remote,
                r.observed,
                &peer,
                their_ca,
                r.subjects,
                &mut warnings,
            )?;
            steps.extend(change.configmap);
            (false, change.diff, change.node_set_ops)
        }
        None if uses_restricted_trust(es) => {
            return Err(PlanError::RestrictedNeedsSubjects(Box::new(es.id.clone())));
        }
        None => {
            let (trust, reference, diff) =
                trust_steps(remote, &peer, their_ca, true, &mut warnings);
            steps.extend(trust);
            (reference, diff, Vec::new())
        }
    };
    let wants_lb = request.expose == Expose::Loadbalancer
        && request.proxy_address.is_none()
        && es.object.pointer("/spec/transport/service/spec/type") != Some(&json!("LoadBalancer"));
    let mut annotations: Vec<(&str, Option<String>)> = Vec::new();
    if wants_lb {
        diff.push("  spec.transport.service.spec.type: + LoadBalancer".to_string());
        annotations.push((
            EXPOSURE_ANNOTATION,
            Some("transport-service-template".to_string()),
        ));
    }
    let mut incoming: BTreeMap<String, Value> = es
        .annotation(INCOMING_ANNOTATION)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    let entry = match &restriction {
        Some(_) => json!({"security": "certificate", "trust": "restricted"}),
        None => json!({"security": "certificate"}),
    };
    if incoming.get(&export_key(&request.alias)) != Some(&entry) {
        incoming.insert(export_key(&request.alias), entry);
        annotations.push((
            INCOMING_ANNOTATION,
            Some(serde_json::to_string(&incoming).expect("serializes")),
        ));
        diff.push(format!(
            "  metadata.annotations[{INCOMING_ANNOTATION}]: records {}",
            export_key(&request.alias)
        ));
    }
    let restarts = !node_set_ops.is_empty();
    if reference || wants_lb || !annotations.is_empty() || restarts {
        let mut step = reference_step(remote, reference, wants_lb, diff, &annotations);
        step.summary =
            "trust the other side's CA, expose the transport and record the export".to_string();
        if let Change::PatchElasticsearch { patch, .. } = &mut step.change {
            patch.extend(node_set_ops);
        }
        step.restarts_nodes = restarts;
        steps.push(step);
    }
    if restarts {
        steps.push(rollout_wait_step(
            &es.id,
            "every node restarts with the restricted trust",
        ));
    }
    if request.proxy_address.is_none()
        && exposed_address.is_none()
        && request.expose == Expose::Loadbalancer
    {
        let service = format!("{}-es-transport", es.id.name);
        steps.push(address_wait_step(&es.id, service, ServicePort::transport()).0);
    }
    Ok(Plan { steps, warnings })
}

/// `unexport` of a certificate-model export: the other side's CA, the exposure when nothing
/// else uses it, and the record go.
pub fn plan_unexport_certificate(
    remote: &TrustSide,
    restricted: &RestrictedObserved,
    alias: &str,
) -> Result<Plan, PlanError> {
    let es = &remote.es;
    let mut incoming: BTreeMap<String, Value> = es
        .annotation(INCOMING_ANNOTATION)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    if incoming.remove(&export_key(alias)).is_none() {
        return Err(PlanError::NoSuchAlias {
            local: es.id.clone(),
            alias: alias.to_string(),
        });
    }
    let peer = external_peer(alias);
    let (mut before, drop_ours, mut after) = untrust(remote, &peer, false);
    let RestrictedChange {
        configmap,
        node_set_ops,
        mut diff,
    } = restricted_untrust_steps(remote, restricted, &peer);
    let restarts = !node_set_ops.is_empty();
    match configmap {
        Some(step) if matches!(step.change, Change::DeleteObject { .. }) => after.push(step),
        Some(step) => before.push(step),
        None => {}
    }
    let remove_lb = incoming.is_empty()
        && es.annotation(EXPOSURE_ANNOTATION) == Some("transport-service-template")
        && es.object.pointer("/spec/transport/service/spec/type") == Some(&json!("LoadBalancer"));
    let mut annotations: Vec<(&str, Option<String>)> = vec![(
        INCOMING_ANNOTATION,
        (!incoming.is_empty()).then(|| serde_json::to_string(&incoming).expect("serializes")),
    )];
    if remove_lb {
        annotations.push((EXPOSURE_ANNOTATION, None));
    }
    if drop_ours {
        annotations.push((TRANSPORT_CAS_ANNOTATION, None));
    }
    let mut patch = vec![spec_guard(es)];
    patch.extend(transport_without(es, drop_ours, remove_lb));
    patch.extend(node_set_ops);
    patch.extend(annotation_ops(es, &annotations));
    diff.push(format!(
        "  metadata.annotations[{INCOMING_ANNOTATION}]: forgets {}",
        export_key(alias)
    ));
    let propagated = es.annotations_restart(&annotations);
    let mut steps = before;
    steps.extend(patch_then_rollout(
        es,
        &format!("forget the export {alias:?} and what only it used"),
        patch,
        diff,
        restarts
            .then_some("every node restarts without the restricted trust")
            .or(propagated.then_some(PROPAGATED_RESTART)),
    ));
    steps.extend(after);
    Ok(Plan {
        steps,
        warnings: Vec::new(),
    })
}

/// Whether `alias` was exported with the certificate model.
pub fn exported_with_certificate(remote: &EsState, alias: &str) -> bool {
    remote
        .annotation(INCOMING_ANNOTATION)
        .and_then(|t| serde_json::from_str::<BTreeMap<String, Value>>(t).ok())
        .and_then(|m| m.get(&export_key(alias)).cloned())
        .is_some_and(|e| e.get("security").and_then(Value::as_str) == Some("certificate"))
}
