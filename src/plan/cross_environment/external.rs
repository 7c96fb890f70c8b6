//! ECK local, external remote (Elastic Cloud Hosted, ECE, self-managed; ECK scenario 3), API-key
//! model with a key the user brings: only the local side is planned.

use std::collections::BTreeMap;

use serde_json::Value;

use super::*;

/// What `link --external` read on the local side.
#[derive(Debug, Clone)]
pub struct ExternalObserved {
    pub local: EsState,
    pub operator: Operator,
    pub credentials_secret: Option<Value>,
    pub ca_bundle: Option<Value>,
    pub local_alias_settings: BTreeMap<String, Value>,
    /// Id of the key the keystore Secret holds for the alias, if any.
    pub stored_key_id: Option<String>,
    /// The pending record of the alias (an interrupted link or unlink), as read.
    pub pending: Option<Value>,
}

/// The external remote as the user described it.
#[derive(Debug, Clone)]
pub struct ExternalRequest {
    pub alias: String,
    pub proxy_address: String,
    pub server_name: Option<String>,
    /// The CA to trust; `None` for a publicly trusted one (nothing to mount).
    pub ca: Option<RemoteCa>,
    /// Id of the key in `--api-key-file` (the key itself stays with the executor).
    pub key_id: String,
    /// The remote's URL when the plugin created the key there.
    pub key_created_at: Option<String>,
    pub skip_unavailable: bool,
}

pub fn plan_external_link(
    observed: &ExternalObserved,
    request: &ExternalRequest,
) -> Result<LinkPlan, PlanError> {
    let local = &observed.local;
    let alias = request.alias.clone();
    if !valid_alias(&alias) {
        return Err(PlanError::InvalidAlias(alias));
    }
    if !valid_address(&request.proxy_address) {
        return Err(PlanError::InvalidAddress(request.proxy_address.clone()));
    }
    let mut warnings = Vec::new();
    check_managed(local)?;
    check_license(
        &local.id.context,
        &observed.operator,
        LicenceGate::Terms,
        &mut warnings,
    )?;
    let version = local
        .version()
        .ok_or_else(|| PlanError::UnknownVersion(local.id.clone()))?;
    if !versions::supports_api_key(&version) {
        return Err(PlanError::ApiKeyUnsupported {
            cluster: local.id.clone(),
            version: version.to_string(),
        });
    }
    let ours = local.plugin_links();
    let record = LinkRecord {
        remote_context: String::new(),
        remote_namespace: String::new(),
        remote_name: alias.clone(),
        security: SecurityModel::ApiKey,
        key_id: Some(request.key_id.clone()),
        ca_fingerprint: request.ca.as_ref().map(|ca| ca.fingerprint.clone()),
        proxy_address: Some(request.proxy_address.clone()),
        key_created_at: request.key_created_at.clone(),
        remote_cluster_uid: None,
        remote_server: None,
    };
    check_alias_record(local, &alias, &record)?;
    check_alias_free(local, &alias, &ours, &observed.local_alias_settings)?;
    let intent = PendingOperation::new("link", &alias, &record);
    check_pending(&local.id, observed.pending.as_ref(), &intent)?;

    let side = LocalSide {
        es: local,
        credentials_secret: observed.credentials_secret.as_ref(),
        ca_bundle: observed.ca_bundle.as_ref(),
        alias_settings: &observed.local_alias_settings,
    };
    let new_key = observed.stored_key_id.as_deref() != Some(request.key_id.as_str());
    if request.ca.is_some() {
        warnings.extend(public_ca_cutoff_warnings(local, &alias));
    }
    let mut steps = local_api_key_steps(&side, &alias, new_key, request.ca.as_ref(), record);
    let server_name = request.server_name.clone().unwrap_or_else(|| {
        request
            .proxy_address
            .rsplit_once(':')
            .map(|(host, _)| host.to_string())
            .unwrap_or_default()
    });
    steps.extend(proxy_settings_step(
        &local.id,
        &observed.local_alias_settings,
        ProxySettings {
            alias: &alias,
            address: &request.proxy_address,
            server_name: Some(&server_name),
            skip_unavailable: request.skip_unavailable,
        },
        format!("connect alias {alias:?} in proxy mode"),
    ));
    // A run killed before the link record is written leaves a key in the keystore (and maybe
    // the CA): the pending record lets `unlink` find them.
    let steps = with_pending_record(steps, &local.id, observed.pending.as_ref(), &intent, true);
    Ok(LinkPlan {
        alias,
        security: SecurityModel::ApiKey,
        plan: Plan { steps, warnings },
    })
}

/// A link record for a remote outside every kubeconfig context.
pub fn is_external(record: &LinkRecord) -> bool {
    record.remote_context.is_empty()
}

/// How a remote outside every kubeconfig context is named in CA blocks and records.
pub fn external_peer(alias: &str) -> ClusterId {
    ClusterId {
        context: String::new(),
        namespace: String::new(),
        name: alias.to_string(),
    }
}

/// What `link LOCAL --external ALIAS --security certificate` asks for.
#[derive(Debug, Clone)]
pub struct ExternalCertificateRequest<'a> {
    pub alias: &'a str,
    pub proxy_address: &'a str,
    pub remote_ca: &'a RemoteCa,
    pub skip_unavailable: bool,
    /// For a remote on Elastic Cloud Hosted or ECE: trust its CA only for its node names.
    pub restriction: Option<Restriction<'a>>,
}

/// The certificate model to a cluster outside Kubernetes: the local trusts the remote's
/// transport CA (a block in its `certificateAuthorities` ConfigMap, or the restricted trust),
/// records the link and connects in proxy mode. The remote must trust the local's CA, which the
/// command hands over.
pub fn plan_external_certificate_link(
    local: &TrustSide,
    operator: &Operator,
    alias_settings: &BTreeMap<String, Value>,
    request: ExternalCertificateRequest,
) -> Result<LinkPlan, PlanError> {
    let ExternalCertificateRequest {
        alias,
        proxy_address,
        remote_ca,
        skip_unavailable,
        restriction,
    } = request;
    let es = &local.es;
    if !valid_alias(alias) {
        return Err(PlanError::InvalidAlias(alias.to_string()));
    }
    if !valid_address(proxy_address) {
        return Err(PlanError::InvalidAddress(proxy_address.to_string()));
    }
    let mut warnings = vec![certificate_deprecation()];
    check_managed(es)?;
    check_license(&es.id.context, operator, LicenceGate::Terms, &mut warnings)?;
    let ours = es.plugin_links();
    let record = LinkRecord {
        remote_context: String::new(),
        remote_namespace: String::new(),
        remote_name: alias.to_string(),
        security: SecurityModel::Certificate,
        key_id: None,
        ca_fingerprint: Some(remote_ca.fingerprint.clone()),
        proxy_address: Some(proxy_address.to_string()),
        key_created_at: None,
        remote_cluster_uid: None,
        remote_server: None,
    };
    check_alias_record(es, alias, &record)?;
    check_alias_free(es, alias, &ours, alias_settings)?;
    let peer = external_peer(alias);
    let mut steps = Vec::new();
    match restriction {
        Some(r) => steps.extend(restricted_trust_and_record(
            local,
            &r,
            &peer,
            remote_ca,
            alias,
            record,
            &mut warnings,
        )?),
        None if uses_restricted_trust(es) => {
            return Err(PlanError::RestrictedNeedsSubjects(Box::new(es.id.clone())));
        }
        None => {
            let (trust, spec) =
                trust_and_record(local, &peer, remote_ca, alias, record, &mut warnings);
            steps.extend(trust);
            let spec_changes = spec
                .as_ref()
                .is_some_and(|s| matches!(&s.change, Change::PatchElasticsearch { patch, .. } if patch.iter().any(|op| op["path"] == "/spec/transport")));
            steps.extend(spec);
            if spec_changes {
                steps.push(rollout_wait_step(&es.id, "ECK applies the change"));
            }
        }
    }
    steps.extend(proxy_settings_step(
        &es.id,
        alias_settings,
        ProxySettings {
            alias,
            address: proxy_address,
            server_name: None,
            skip_unavailable,
        },
        format!("connect alias {alias:?} in proxy mode (transport)"),
    ));
    Ok(LinkPlan {
        alias: alias.to_string(),
        security: SecurityModel::Certificate,
        plan: Plan { steps, warnings },
    })
}
