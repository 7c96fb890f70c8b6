//! Links between clusters of different Kubernetes clusters (ECK scenario 2, API-key model):
//! ECK automates none of it, so the plan holds every step on both sides.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::*;

/// Label on every object the plugin creates.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "kubectl-remote-cluster";
/// Operators that restrict their watched resources only see objects with this label.
pub const WATCHED_LABEL: &str = "eck.k8s.elastic.co/watched";
/// Annotation on a remote Elasticsearch listing the links to it that the plugin made.
pub const INCOMING_ANNOTATION: &str = "remote-cluster.kubectl-plugin.dev/incoming";
/// Annotation on a remote Elasticsearch saying how the plugin exposed its remote cluster server:
/// `service-template` (it set `spec.remoteClusterServer.service.spec.type`) or `service` (it
/// created `<remote>-es-remote-cluster-lb`).
/// Annotation on a local Elasticsearch naming the nodeSets where the plugin switched
/// `xpack.security.remote_cluster_client.ssl.enabled` on, so that only those are switched back.
pub const CLIENT_SSL_ANNOTATION: &str = "remote-cluster.kubectl-plugin.dev/client-ssl";
pub const EXPOSURE_ANNOTATION: &str = "remote-cluster.kubectl-plugin.dev/exposure";
/// Prefix of the cross-cluster API keys the plugin creates (never ECK's `eck-`).
pub const API_KEY_PREFIX: &str = "kubectl-rc-";
/// Where the CA bundle is mounted in the local Elasticsearch containers.
pub const CA_MOUNT_PATH: &str = "/usr/share/elasticsearch/config/remote-cluster-cas";
pub const CA_VOLUME: &str = "remote-cluster-cas";
pub const CA_FILE_SETTING: &str = "remote-cluster-cas/ca.crt";
pub const REMOTE_CLUSTER_PORT: u16 = 9443;

pub const OUTPUT_ADDRESS: &str = "remote.address";
pub const OUTPUT_KEY_ID: &str = "apiKey.id";
pub const OUTPUT_KEY_ENCODED: &str = "apiKey.encoded";

pub fn credentials_secret_name(local: &ClusterId) -> String {
    format!("{}-remote-cluster-credentials", local.name)
}

pub fn ca_bundle_name(local: &ClusterId) -> String {
    format!("{}-remote-cluster-cas", local.name)
}

/// The ConfigMap that records a link or unlink of `alias` while it is under way: written
/// before the first other write, deleted by the last one. Aliases have no '.', so mapping '_'
/// (not allowed in object names) to '.' keeps names distinct.
pub fn pending_name(local: &ClusterId, alias: &str) -> String {
    format!(
        "{}-remote-cluster-{}-pending",
        local.name,
        alias.replace('_', ".")
    )
}

/// Whether an object name is one of [`pending_name`]'s.
pub fn is_pending_record(name: &str) -> bool {
    name.ends_with("-pending")
}

/// The data key of [`pending_name`]'s ConfigMap.
pub const PENDING_KEY: &str = "operation.json";

/// What a pending ConfigMap holds: which operation on which link, and the remote it concerns,
/// so that `unlink` can find and remove what an interrupted run left even when the link's
/// record on the local resource was never written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingOperation {
    /// `link` or `unlink`.
    pub operation: String,
    pub alias: String,
    pub remote_context: String,
    pub remote_namespace: String,
    pub remote_name: String,
    pub security: SecurityModel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_cluster_uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_server: Option<String>,
}

impl PendingOperation {
    pub fn new(operation: &str, alias: &str, record: &LinkRecord) -> Self {
        Self {
            operation: operation.to_string(),
            alias: alias.to_string(),
            remote_context: record.remote_context.clone(),
            remote_namespace: record.remote_namespace.clone(),
            remote_name: record.remote_name.clone(),
            security: record.security,
            remote_cluster_uid: record.remote_cluster_uid.clone(),
            remote_server: record.remote_server.clone(),
        }
    }

    /// Read from the pending ConfigMap (as the API server returns it).
    pub fn from_object(object: &Value) -> Option<Self> {
        let text = object.pointer(&format!("/data/{PENDING_KEY}"))?.as_str()?;
        serde_json::from_str(text).ok()
    }

    /// A record of the link, for `unlink` to work from when the local holds none: no key id
    /// (the link's keys are found by name) and no address.
    pub fn record(&self) -> LinkRecord {
        LinkRecord {
            remote_context: self.remote_context.clone(),
            remote_namespace: self.remote_namespace.clone(),
            remote_name: self.remote_name.clone(),
            security: self.security,
            key_id: None,
            ca_fingerprint: None,
            proxy_address: None,
            key_created_at: None,
            remote_cluster_uid: self.remote_cluster_uid.clone(),
            remote_server: self.remote_server.clone(),
        }
    }

    /// The same link: same remote resource and security model.
    fn same_link(&self, other: &PendingOperation) -> bool {
        (&self.remote_namespace, &self.remote_name, self.security)
            == (&other.remote_namespace, &other.remote_name, other.security)
            && (self.remote_context == other.remote_context
                || (self.remote_cluster_uid.is_some()
                    && self.remote_cluster_uid == other.remote_cluster_uid))
    }
}

/// A link resumes only an interrupted link of its own: a pending record of an unlink, or of a
/// link to another remote, is refused, saying what to run. (An unlink takes any.)
pub fn check_pending(
    local: &ClusterId,
    pending: Option<&Value>,
    intent: &PendingOperation,
) -> Result<(), PlanError> {
    match pending.and_then(PendingOperation::from_object) {
        Some(found) if found.operation != intent.operation || !found.same_link(intent) => {
            Err(PlanError::PendingOperation {
                local: Box::new(local.clone()),
                alias: intent.alias.clone(),
                operation: found.operation.clone(),
                remote: format!(
                    "{}/{}/{}",
                    found.remote_context, found.remote_namespace, found.remote_name
                )
                .into(),
            })
        }
        _ => Ok(()),
    }
}

/// The steps of an unlink, bracketed by its pending record. With the remote out of reach the
/// record stays: a later unlink that reaches the remote finds the link through it and removes
/// what is left there.
pub(crate) fn unlink_with_pending_record(
    steps: Vec<Step>,
    local: &ClusterId,
    alias: &str,
    record: &LinkRecord,
    pending: Option<&Value>,
    remote_reached: bool,
) -> Vec<Step> {
    // A cluster outside Kubernetes has no side of the plugin's to come back to.
    let completes = remote_reached || is_external(record);
    let intent = PendingOperation::new("unlink", alias, record);
    with_pending_record(steps, local, pending, &intent, completes)
}

/// Brackets `steps` with the pending record: written first (unless an earlier run left one),
/// and, when the operation completes here, deleted last. Nothing to do and nothing pending
/// plans nothing.
pub fn with_pending_record(
    steps: Vec<Step>,
    local: &ClusterId,
    pending: Option<&Value>,
    intent: &PendingOperation,
    completes: bool,
) -> Vec<Step> {
    if steps.is_empty() && (pending.is_none() || !completes) {
        return steps;
    }
    let name = pending_name(local, &intent.alias);
    let mut bracketed = Vec::with_capacity(steps.len() + 2);
    if pending.is_none() {
        let text = serde_json::to_string(intent).expect("serializes");
        bracketed.push(Step {
            cluster: local.clone(),
            summary: format!(
                "record the {} of {:?} as under way in ConfigMap {name}",
                intent.operation, intent.alias
            ),
            restarts_nodes: false,
            change: Change::ApplyObject {
                object: ObjectKind::ConfigMap,
                namespace: local.namespace.clone(),
                name: name.clone(),
                resource_version: None,
                labels: ours_labels(),
                data: BTreeMap::from([(PENDING_KEY.to_string(), DataValue::Literal(text))]),
                remove: Vec::new(),
                diff: vec![format!(
                    "+   {PENDING_KEY}: {} {:?}",
                    intent.operation, intent.alias
                )],
            },
        });
    }
    bracketed.extend(steps);
    if completes {
        bracketed.push(Step {
            cluster: local.clone(),
            summary: format!(
                "delete ConfigMap {name}: the {} is complete",
                intent.operation
            ),
            restarts_nodes: false,
            change: Change::DeleteObject {
                object: ObjectKind::ConfigMap,
                namespace: local.namespace.clone(),
                name,
                // Empty when this run creates it: guarded by the version that write produced.
                resource_version: pending.and_then(resource_version_of).unwrap_or_default(),
            },
        });
    }
    bracketed
}

pub fn exposure_service_name(remote: &ClusterId) -> String {
    format!("{}-es-remote-cluster-lb", remote.name)
}

pub fn credentials_key(alias: &str) -> String {
    format!("cluster.remote.{alias}.credentials")
}

/// The remote's CA as read from `<remote>-es-transport-certs-public`.
#[derive(Debug, Clone)]
pub struct RemoteCa {
    pub pem: String,
    pub fingerprint: String,
}

/// The key in the local keystore Secret: its id (the part before `:` of the decoded key) and
/// whether the remote still knows it as an active key. The Secret is the source of truth, so a
/// run that stopped after storing a key reuses it instead of creating another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub id: String,
    pub active: bool,
}

/// How the remote cluster server is reached from outside its Kubernetes cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Expose {
    #[default]
    Loadbalancer,
    None,
}

/// What `link` read on both sides for a cross-environment link.
#[derive(Debug, Clone)]
pub struct CrossObserved {
    /// Who the remote Kubernetes cluster is (recorded with the link).
    pub remote_cluster: ClusterIdentity,
    pub local: EsState,
    pub remote: EsState,
    pub local_operator: Operator,
    pub remote_operator: Operator,
    pub remote_ca: Option<RemoteCa>,
    /// The host of the LoadBalancer in front of the remote cluster server, if it has one yet.
    pub exposed_address: Option<String>,
    /// Our Service in front of the remote cluster server exists (older ECK).
    pub exposure_service_exists: bool,
    pub credentials_secret: Option<Value>,
    pub ca_bundle: Option<Value>,
    /// The API key the local keystore Secret holds for this alias, if any.
    pub stored_key: Option<StoredKey>,
    /// Active keys on the remote that the plugin created for this link (by name and metadata),
    /// the one in use among them: a run killed between creating a key and storing it leaves one.
    pub active_link_keys: Vec<String>,
    /// The ConfigMap an interrupted link or unlink of this alias left ([`pending_name`]).
    pub pending: Option<Value>,
    /// `cluster.remote.<alias>.*` as currently set on the local (flat names, persistent).
    pub local_alias_settings: BTreeMap<String, Value>,
}

/// The local side's objects that the local half of a link (keystore, CA bundle, settings) reads.
pub struct LocalSide<'a> {
    pub es: &'a EsState,
    pub credentials_secret: Option<&'a Value>,
    pub ca_bundle: Option<&'a Value>,
    pub alias_settings: &'a BTreeMap<String, Value>,
}

/// The remote side's state that exposing its remote cluster server depends on.
pub struct RemoteSide<'a> {
    pub es: &'a EsState,
    pub operator: &'a Operator,
    pub exposed_address: Option<&'a String>,
    pub exposure_service_exists: bool,
}

impl CrossObserved {
    pub fn remote_side(&self) -> RemoteSide<'_> {
        RemoteSide {
            es: &self.remote,
            operator: &self.remote_operator,
            exposed_address: self.exposed_address.as_ref(),
            exposure_service_exists: self.exposure_service_exists,
        }
    }

    pub fn local_side(&self) -> LocalSide<'_> {
        LocalSide {
            es: &self.local,
            credentials_secret: self.credentials_secret.as_ref(),
            ca_bundle: self.ca_bundle.as_ref(),
            alias_settings: &self.local_alias_settings,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct CrossRequest {
    pub alias: Option<String>,
    pub search_indices: Vec<String>,
    pub replication_indices: Vec<String>,
    pub expose: Expose,
    pub proxy_address: Option<String>,
    pub server_name: Option<String>,
    pub skip_unavailable: bool,
}

/// Plans an API-key link from `local` to `remote` in another Kubernetes cluster.
pub fn plan_cross_environment_link(
    observed: &CrossObserved,
    request: &CrossRequest,
) -> Result<LinkPlan, PlanError> {
    let (local, remote) = (&observed.local, &observed.remote);
    let alias = link_alias(request.alias.as_ref(), &remote.id)?;
    let mut warnings = Vec::new();
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
    check_versions(local, remote)?;
    check_server_exposure(
        remote,
        &observed.remote_operator,
        request.proxy_address.as_ref(),
    )?;
    check_reachable(local, remote, request)?;
    let ca = observed
        .remote_ca
        .clone()
        .ok_or_else(|| PlanError::no_transport_ca(&remote.id))?;
    let ours = local.plugin_links();
    check_alias_record(local, &alias, &model_record(remote, SecurityModel::ApiKey))?;
    check_alias_free(local, &alias, &ours, &observed.local_alias_settings)?;

    let mut steps = Vec::new();
    check_service_type(&observed.remote_side(), request)?;
    let address = plan_exposure(&observed.remote_side(), request, &mut steps);
    let key_id = plan_api_key(observed, request, &alias, &mut steps);
    let record = LinkRecord {
        remote_context: remote.id.context.clone(),
        remote_namespace: remote.id.namespace.clone(),
        remote_name: remote.id.name.clone(),
        security: SecurityModel::ApiKey,
        key_id: Some(key_id.clone()),
        ca_fingerprint: Some(ca.fingerprint.clone()),
        proxy_address: Some(address.clone()),
        key_created_at: None,
        remote_cluster_uid: observed.remote_cluster.uid.clone(),
        remote_server: Some(observed.remote_cluster.server.clone()),
    };
    let pending = PendingOperation::new("link", &alias, &record);
    if let Some(step) = incoming_record_step(remote, &steps, &local.id, &alias, &key_id) {
        steps.push(step);
    }
    let new_key = steps
        .iter()
        .any(|s| matches!(s.change, Change::CreateApiKey { .. }));
    let local_side = observed.local_side();
    warnings.extend(public_ca_cutoff_warnings(local, &alias));
    steps.extend(local_api_key_steps(
        &local_side,
        &alias,
        new_key,
        Some(&ca),
        record,
    ));
    let server_name = request.server_name.clone().unwrap_or_else(|| {
        format!(
            "{}-es-remote-cluster.{}.svc",
            remote.id.name, remote.id.namespace
        )
    });
    steps.extend(proxy_settings_step(
        &local.id,
        &observed.local_alias_settings,
        ProxySettings {
            alias: &alias,
            address: &address,
            server_name: Some(&server_name),
            skip_unavailable: request.skip_unavailable,
        },
        format!("connect alias {alias:?} in proxy mode"),
    ));
    steps.extend(leftover_key_steps(observed, &remote.id, &key_id));
    check_pending(&local.id, observed.pending.as_ref(), &pending)?;
    let steps = with_pending_record(steps, &local.id, observed.pending.as_ref(), &pending, true);
    Ok(LinkPlan {
        alias,
        security: SecurityModel::ApiKey,
        plan: Plan { steps, warnings },
    })
}

fn check_versions(local: &EsState, remote: &EsState) -> Result<(), PlanError> {
    let (local_version, remote_version) = connectable_versions(local, remote)?;
    let oldest = if local_version <= remote_version {
        (local, local_version)
    } else {
        (remote, remote_version)
    };
    if !versions::supports_api_key(&oldest.1) {
        return Err(PlanError::ApiKeyUnsupported {
            cluster: oldest.0.id.clone(),
            version: oldest.1.to_string(),
        });
    }
    Ok(())
}

/// Invalidates the link's active keys other than `in_use` (an id, or the placeholder of the key
/// this plan creates): keys an interrupted run created and never stored. They go last, once
/// the key in use is stored, so that a failure before then leaves them as they were.
fn leftover_key_steps(observed: &CrossObserved, remote: &ClusterId, in_use: &str) -> Vec<Step> {
    observed
        .active_link_keys
        .iter()
        .filter(|id| id.as_str() != in_use)
        .map(|id| Step {
            cluster: remote.clone(),
            summary: format!(
                "invalidate API key {id}, created for this link by a run that did not finish"
            ),
            restarts_nodes: false,
            change: Change::InvalidateApiKey { id: id.clone() },
        })
        .collect()
}

/// Across Kubernetes clusters the remote must be exposed, by the plugin or by the user.
fn check_reachable(
    local: &EsState,
    remote: &EsState,
    request: &CrossRequest,
) -> Result<(), PlanError> {
    if request.expose == Expose::None && request.proxy_address.is_none() {
        return Err(PlanError::NotExposed {
            local: Box::new(local.id.clone()),
            remote: Box::new(remote.id.clone()),
        });
    }
    Ok(())
}

pub(crate) fn valid_address(address: &str) -> bool {
    match address.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

pub(crate) fn check_alias_free(
    local: &EsState,
    alias: &str,
    ours: &BTreeMap<String, LinkRecord>,
    settings: &BTreeMap<String, Value>,
) -> Result<(), PlanError> {
    let taken = |holder: String| PlanError::AliasTaken {
        alias: alias.to_string(),
        local: local.id.clone(),
        holder,
    };
    if local
        .remote_clusters()
        .iter()
        .any(|e| e.get("name").and_then(Value::as_str) == Some(alias))
    {
        return Err(taken(
            "an entry of spec.remoteClusters (managed by ECK)".to_string(),
        ));
    }
    if local.eck_managed_aliases().iter().any(|a| a == alias) {
        return Err(taken("a link ECK manages".to_string()));
    }
    if !settings.is_empty() && !ours.contains_key(alias) {
        return Err(taken(
            "cluster settings kubectl remote-cluster did not make".to_string(),
        ));
    }
    Ok(())
}

/// The user's own Service template type is theirs: the plugin sets `type: LoadBalancer` only
/// where no type is set, and refuses to replace another one (a NodePort or ClusterIP the user
/// chose). With `--proxy-address` the plugin sets nothing, so any type is accepted and kept.
pub(crate) fn check_service_type(
    side: &RemoteSide,
    request: &CrossRequest,
) -> Result<(), PlanError> {
    let wants_lb = request.expose == Expose::Loadbalancer && request.proxy_address.is_none();
    if !wants_lb || !side.operator.crd_has_server_service {
        return Ok(());
    }
    match side
        .es
        .object
        .pointer("/spec/remoteClusterServer/service/spec/type")
        .and_then(Value::as_str)
    {
        Some(other) if other != "LoadBalancer" => Err(PlanError::ServiceTypeTaken {
            remote: Box::new(side.es.id.clone()),
            field: "spec.remoteClusterServer.service.spec.type",
            service_type: other.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Exposure of the remote cluster server; returns the address the local will connect to.
pub(crate) fn plan_exposure(
    observed: &RemoteSide,
    request: &CrossRequest,
    steps: &mut Vec<Step>,
) -> String {
    let remote = observed.es;
    let use_template = observed.operator.crd_has_server_service;
    let wants_lb = request.expose == Expose::Loadbalancer && request.proxy_address.is_none();
    let mut patch = vec![spec_guard(remote)];
    let mut diff = Vec::new();
    let mut exposure = None;
    if !remote.remote_cluster_server_enabled() {
        let step = enable_remote_cluster_server(remote);
        if let Change::PatchElasticsearch {
            patch: p, diff: d, ..
        } = step.change
        {
            patch = p;
            diff = d;
        }
    }
    let service_type = remote
        .object
        .pointer("/spec/remoteClusterServer/service/spec/type")
        .and_then(Value::as_str);
    if wants_lb && use_template && service_type != Some("LoadBalancer") {
        let has_service = remote
            .object
            .pointer("/spec/remoteClusterServer/service")
            .is_some();
        let has_spec = remote
            .object
            .pointer("/spec/remoteClusterServer/service/spec")
            .is_some();
        // Both were enabled above or already present; build only what is missing.
        let op = match (has_service, has_spec) {
            (true, true) => {
                json!({"op": "add", "path": "/spec/remoteClusterServer/service/spec/type", "value": "LoadBalancer"})
            }
            (true, false) => {
                json!({"op": "add", "path": "/spec/remoteClusterServer/service/spec", "value": {"type": "LoadBalancer"}})
            }
            _ => {
                json!({"op": "add", "path": "/spec/remoteClusterServer/service", "value": {"spec": {"type": "LoadBalancer"}}})
            }
        };
        patch.push(op);
        diff.push("  spec.remoteClusterServer.service.spec.type:".to_string());
        diff.push("+   LoadBalancer".to_string());
        exposure = Some("service-template");
    }
    if wants_lb && !use_template && !observed.exposure_service_exists {
        exposure = Some("service");
    }
    if let Some(how) = exposure {
        // The enable step may have created the annotations map already: only add the key.
        let created_annotations = patch.iter().any(|op| op["path"] == "/metadata/annotations");
        let path = format!(
            "/metadata/annotations/{}",
            EXPOSURE_ANNOTATION.replace('/', "~1")
        );
        if remote.object.pointer("/metadata/annotations").is_some() || created_annotations {
            patch.push(json!({"op": "add", "path": path, "value": how}));
        } else {
            patch.extend(annotation_ops(
                remote,
                &[(EXPOSURE_ANNOTATION, Some(how.to_string()))],
            ));
        }
        diff.push(format!(
            "  metadata.annotations[{EXPOSURE_ANNOTATION}]: {how}"
        ));
    }
    if patch.len() > 1 {
        let restarts = !remote.remote_cluster_server_enabled()
            || (wants_lb && remote.propagates_annotation(EXPOSURE_ANNOTATION));
        steps.push(Step {
            cluster: remote.id.clone(),
            summary: if restarts {
                "enable the remote cluster server (port 9443) and expose it".to_string()
            } else {
                "expose the remote cluster server through a LoadBalancer".to_string()
            },
            restarts_nodes: restarts,
            change: Change::PatchElasticsearch {
                resource_version: remote.resource_version(),
                patch,
                diff,
            },
        });
    }
    if wants_lb && !use_template && !observed.exposure_service_exists {
        let name = exposure_service_name(&remote.id);
        steps.push(Step {
            cluster: remote.id.clone(),
            summary: format!("create Service {name} (LoadBalancer to port 9443)"),
            restarts_nodes: false,
            change: Change::CreateService {
                namespace: remote.id.namespace.clone(),
                name: name.clone(),
                manifest: json!({
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": name, "namespace": remote.id.namespace,
                                  "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
                    "spec": {
                        "type": "LoadBalancer",
                        "selector": {"common.k8s.elastic.co/type": "elasticsearch",
                                     "elasticsearch.k8s.elastic.co/cluster-name": remote.id.name},
                        "ports": [{"name": "rcs", "port": REMOTE_CLUSTER_PORT, "targetPort": REMOTE_CLUSTER_PORT, "protocol": "TCP"}]
                    }
                }),
            },
        });
    }
    if let Some(address) = &request.proxy_address {
        return address.clone();
    }
    match &observed.exposed_address {
        Some(address) => (*address).clone(),
        None => {
            let service = if use_template {
                format!("{}-es-remote-cluster", remote.id.name)
            } else {
                exposure_service_name(&remote.id)
            };
            let (step, address) =
                address_wait_step(&remote.id, service, ServicePort::remote_cluster_server());
            steps.push(step);
            address
        }
    }
}

/// The cross-cluster API key; returns its id (or the placeholder for it).
/// The name of the cross-cluster API key of the link `alias` of `local`; every key the plugin
/// creates for that link has it (and metadata naming the link), so leftovers can be found.
pub fn api_key_name(local: &ClusterId, alias: &str) -> String {
    bounded_key_name(format!(
        "{API_KEY_PREFIX}{}-{}-{}-{alias}",
        local.context, local.namespace, local.name
    ))
}

/// The longest API-key name Elasticsearch accepts, in UTF-16 code units (Java's
/// `String.length()`): `AbstractCreateApiKeyRequest.validate()` refuses a longer one with "api
/// key name may not be more than 256 characters long".
pub const API_KEY_NAME_MAX: usize = 256;

/// `name` when Elasticsearch accepts it, as every name the plugin gave before (so keys made
/// earlier are still found by it); a longer one (a long context name, such as an EKS ARN, or
/// alias) is cut and ends with `-` and 16 hex digits of the SHA-256 of the whole name, so two
/// links never share a name.
pub fn bounded_key_name(name: String) -> String {
    if name.encode_utf16().count() <= API_KEY_NAME_MAX {
        return name;
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    let hash: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let room = API_KEY_NAME_MAX - 1 - hash.len();
    let mut used = 0;
    let mut cut = String::new();
    for c in name.chars() {
        used += c.len_utf16();
        if used > room {
            break;
        }
        cut.push(c);
    }
    format!("{cut}-{hash}")
}

fn plan_api_key(
    observed: &CrossObserved,
    request: &CrossRequest,
    alias: &str,
    steps: &mut Vec<Step>,
) -> String {
    if let Some(StoredKey { id, active: true }) = &observed.stored_key {
        return id.clone();
    }
    let (local, remote) = (&observed.local.id, &observed.remote.id);
    let name = api_key_name(local, alias);
    let access = cross_cluster_access(&request.search_indices, &request.replication_indices);
    steps.push(Step {
        cluster: remote.clone(),
        summary: "create a cross-cluster API key for the link".to_string(),
        restarts_nodes: false,
        change: Change::CreateApiKey {
            name: name.clone(),
            body: json!({
                "name": name,
                "access": access,
                "metadata": {
                    "managed-by": MANAGED_BY,
                    "local-context": local.context,
                    "local-namespace": local.namespace,
                    "local-name": local.name,
                    "alias": alias,
                }
            }),
        },
    });
    output_placeholder(OUTPUT_KEY_ID)
}

fn incoming_record_step(
    remote: &EsState,
    earlier: &[Step],
    local: &ClusterId,
    alias: &str,
    key_id: &str,
) -> Option<Step> {
    let mut incoming: BTreeMap<String, Value> = remote
        .annotation(INCOMING_ANNOTATION)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    let key = incoming_key(local, alias);
    let entry = json!({"keyId": key_id});
    if incoming.get(&key) == Some(&entry) {
        return None;
    }
    incoming.insert(key.clone(), entry);
    let value = serde_json::to_string(&incoming).expect("serializes");
    // This runs after the remote's restart and the key's creation, while ECK keeps writing the
    // resource's status: guard the one annotation this step changes rather than the whole
    // resourceVersion, which would all but always have moved on.
    let path = format!(
        "/metadata/annotations/{}",
        INCOMING_ANNOTATION.replace('/', "~1")
    );
    let restarts = remote.annotations_restart(&[(INCOMING_ANNOTATION, Some(value.clone()))]);
    let patch = match remote.annotation(INCOMING_ANNOTATION) {
        Some(current) => vec![
            json!({"op": "test", "path": path, "value": current}),
            json!({"op": "replace", "path": path, "value": value}),
        ],
        None => {
            let mut ops =
                annotation_ops_after(remote, earlier, &[(INCOMING_ANNOTATION, Some(value))]);
            if ops
                .first()
                .is_some_and(|op| op["path"] == "/metadata/annotations")
            {
                // Creating the whole annotations map: only safe if nothing changed at all.
                ops.insert(0, resource_version_guard(remote));
            }
            ops
        }
    };
    Some(Step {
        cluster: remote.id.clone(),
        summary: format!("record the incoming link {key}"),
        restarts_nodes: restarts,
        change: Change::PatchElasticsearch {
            resource_version: remote.resource_version(),
            patch,
            diff: vec![format!(
                "  metadata.annotations[{INCOMING_ANNOTATION}]: records {key}"
            )],
        },
    })
}

pub(crate) fn ours_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
        (WATCHED_LABEL.to_string(), "true".to_string()),
    ])
}

/// The local half of an API-key link: the keystore Secret, the CA bundle (none for a publicly
/// trusted CA), the spec patch that references them and records the link, then the wait for
/// the restart they cause.
pub(crate) fn local_api_key_steps(
    side: &LocalSide,
    alias: &str,
    new_key: bool,
    ca: Option<&RemoteCa>,
    record: LinkRecord,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut restarts = false;
    if let Some(step) = credentials_step(side, alias, new_key) {
        restarts = step.restarts_nodes;
        steps.push(step);
    }
    if let Some(step) = ca.and_then(|ca| ca_bundle_step(side, alias, ca)) {
        steps.push(step);
    }
    let ours = side.es.plugin_links();
    if let Some(step) = local_spec_step(side.es, alias, record, &ours, ca.is_some()) {
        restarts |= step.restarts_nodes;
        steps.push(step);
    }
    if restarts {
        steps.push(rollout_wait_step(
            &side.es.id,
            "the keystore is read at start",
        ));
    }
    steps
}

pub(crate) fn credentials_step(observed: &LocalSide, alias: &str, new_key: bool) -> Option<Step> {
    let local = &observed.es.id;
    let key = credentials_key(alias);
    let present = observed
        .credentials_secret
        .and_then(|s| s.pointer("/data").and_then(|d| d.get(&key)))
        .is_some();
    if present && !new_key {
        return None;
    }
    let name = credentials_secret_name(local);
    // With file-based secure settings ECK hands the new content to Elasticsearch in place.
    let in_place = observed.es.file_based_secure_settings();
    let summary = if in_place {
        format!(
            "store the API key in Secret {name} (file-based secure settings: applies without a restart)"
        )
    } else {
        format!("store the API key in Secret {name} (keystore)")
    };
    Some(Step {
        cluster: local.clone(),
        summary,
        restarts_nodes: !in_place,
        change: Change::ApplyObject {
            object: ObjectKind::Secret,
            namespace: local.namespace.clone(),
            resource_version: observed.credentials_secret.and_then(resource_version_of),
            name,
            labels: ours_labels(),
            data: BTreeMap::from([(
                key.clone(),
                DataValue::Output(OUTPUT_KEY_ENCODED.to_string()),
            )]),
            remove: Vec::new(),
            diff: vec![format!("+   {key}: (the new API key, never shown)")],
        },
    })
}

pub(crate) fn resource_version_of(object: &Value) -> Option<String> {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The comment that opens each marked CA block, followed by its label and fingerprint.
pub const CA_BLOCK_MARKER: &str = "# kubectl-remote-cluster: ";

/// The line prefix of `label`'s block in a bundle.
pub fn ca_block_prefix(label: &str) -> String {
    format!("{CA_BLOCK_MARKER}{label} ")
}

/// One CA bundle per local cluster; each remote's CA is a marked block, so it can be removed
/// again without touching the others.
pub fn ca_block(alias: &str, ca: &RemoteCa) -> String {
    format!(
        "{}sha256:{}\n{}\n",
        ca_block_prefix(alias),
        ca.fingerprint,
        ca.pem.trim_end()
    )
}

pub(crate) fn ca_bundle_step(observed: &LocalSide, alias: &str, ca: &RemoteCa) -> Option<Step> {
    let local = &observed.es.id;
    let current = observed
        .ca_bundle
        .and_then(|c| c.pointer("/data/ca.crt"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let block = ca_block(alias, ca);
    if current.contains(&block) {
        return None;
    }
    let bundle = with_block(&without_block(&current, alias), &block);
    let name = ca_bundle_name(local);
    Some(Step {
        cluster: local.clone(),
        summary: format!("add the remote's CA to ConfigMap {name}"),
        restarts_nodes: false,
        change: Change::ApplyObject {
            object: ObjectKind::ConfigMap,
            namespace: local.namespace.clone(),
            resource_version: observed.ca_bundle.and_then(resource_version_of),
            name,
            labels: ours_labels(),
            data: BTreeMap::from([("ca.crt".to_string(), DataValue::Literal(bundle))]),
            remove: Vec::new(),
            diff: vec![format!(
                "+   ca.crt: CA sha256:{} for {alias}",
                ca.fingerprint
            )],
        },
    })
}

/// The line put between a user's bundle that did not end with a newline and the newline plus
/// block the plugin appended: it tells unlink that the newline before it is the plugin's too.
pub const JOINED_LINE: &str = "# kubectl-remote-cluster joined the line above\n";

/// `bundle` with `block` appended. A bundle without its final newline gets one, followed by
/// [`JOINED_LINE`], so that removing the block again returns the bundle byte for byte.
pub fn with_block(bundle: &str, block: &str) -> String {
    if bundle.is_empty() || bundle.ends_with('\n') {
        format!("{bundle}{block}")
    } else {
        format!("{bundle}\n{JOINED_LINE}{block}")
    }
}

/// The bundle without the marked block of `alias`, every other byte as it was (line ends and
/// a missing final newline included). When no block is left after a [`JOINED_LINE`], the line
/// and the newline the plugin put before it go too.
pub fn without_block(bundle: &str, alias: &str) -> String {
    let marker = ca_block_prefix(alias);
    let mut out = String::new();
    let mut skipping = false;
    for line in bundle.split_inclusive('\n') {
        if line.starts_with(CA_BLOCK_MARKER) {
            skipping = line.starts_with(&marker);
        }
        if !skipping {
            out.push_str(line);
        }
    }
    if let Some(before) = out.strip_suffix(JOINED_LINE)
        && let Some(user) = before.strip_suffix('\n')
    {
        return user.to_string();
    }
    out
}

/// `spec.secureSettings` reference, CA mount and client SSL config in every nodeSet, and the
/// link record: one guarded patch, so the restart it causes happens once.
pub(crate) fn local_spec_step(
    local: &EsState,
    alias: &str,
    record: LinkRecord,
    ours: &BTreeMap<String, LinkRecord>,
    mount_bundle: bool,
) -> Option<Step> {
    let mut patch = vec![spec_guard(local)];
    let mut diff = Vec::new();
    let mut restarts = false;
    let secret = credentials_secret_name(&local.id);
    let secure = local
        .object
        .pointer("/spec/secureSettings")
        .and_then(Value::as_array)
        .cloned();
    let referenced = secure
        .iter()
        .flatten()
        .any(|s| s.get("secretName").and_then(Value::as_str) == Some(secret.as_str()));
    if !referenced {
        let entry = json!({"secretName": secret});
        patch.push(match secure {
            Some(_) => json!({"op": "add", "path": "/spec/secureSettings/-", "value": entry}),
            None => json!({"op": "add", "path": "/spec/secureSettings", "value": [entry]}),
        });
        diff.push(format!("  spec.secureSettings: + {{secretName: {secret}}}"));
        restarts = !local.file_based_secure_settings();
    }
    let node_sets = local
        .object
        .pointer("/spec/nodeSets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let bundle = ca_bundle_name(&local.id);
    let mut ssl_added = split_aliases(local.annotation(CLIENT_SSL_ANNOTATION));
    let ssl_before = ssl_added.clone();
    for (index, node_set) in node_sets.iter().enumerate() {
        let mut changed = node_set.clone();
        let had_ssl = node_set.pointer("/config/xpack.security.remote_cluster_client.ssl.enabled")
            == Some(&json!(true));
        let trusted = if mount_bundle {
            with_ca_trust(&mut changed, &bundle)
        } else {
            with_client_ssl(&mut changed)
        };
        if trusted {
            let name = node_set
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !had_ssl && !ssl_added.iter().any(|n| n == name) {
                ssl_added.push(name.to_string());
            }
            patch.push(json!({"op": "test", "path": format!("/spec/nodeSets/{index}/name"), "value": name}));
            patch.push(json!({"op": "replace", "path": format!("/spec/nodeSets/{index}"), "value": changed}));
            diff.push(if mount_bundle {
                format!(
                    "  spec.nodeSets[{name}]: mount ConfigMap {bundle} at {CA_MOUNT_PATH}; config xpack.security.remote_cluster_client.ssl.enabled: true, certificate_authorities + {CA_FILE_SETTING}"
                )
            } else {
                format!(
                    "  spec.nodeSets[{name}]: config xpack.security.remote_cluster_client.ssl.enabled: true (publicly trusted CA)"
                )
            });
            restarts = true;
        }
    }
    let mut annotations: Vec<(&str, Option<String>)> = Vec::new();
    if ssl_added != ssl_before {
        annotations.push((CLIENT_SSL_ANNOTATION, Some(ssl_added.join(","))));
    }
    let mut links = ours.clone();
    if links.get(alias) != Some(&record) {
        links.insert(alias.to_string(), record);
        annotations.push((LINKS_ANNOTATION, links_annotation_value(&links)));
        diff.push(format!(
            "  metadata.annotations[{LINKS_ANNOTATION}]: records alias {alias:?}"
        ));
    }
    restarts |= local.annotations_restart(&annotations);
    // One call, so a missing annotations map is created once with every key in it.
    patch.extend(annotation_ops(local, &annotations));
    if patch.len() == 1 {
        return None;
    }
    Some(Step {
        cluster: local.id.clone(),
        summary: "reference the keystore Secret and trust the remote's CA".to_string(),
        restarts_nodes: restarts,
        change: Change::PatchElasticsearch {
            resource_version: local.resource_version(),
            patch,
            diff,
        },
    })
}

/// Whether Elasticsearch still trusts the JVM's public CAs on `es`'s remote cluster client:
/// only while no `certificate_authorities` list is set there, by the user or the plugin in a
/// nodeSet's config, or by ECK for any `spec.remoteClusters[].apiKey`
/// (`SslConfigurationLoader.buildTrustConfig`; ECK `merged_config.go`).
pub fn trusts_public_cas(es: &EsState) -> bool {
    let list = "xpack.security.remote_cluster_client.ssl.certificate_authorities";
    let eck_list = es
        .object
        .pointer("/spec/remoteClusters")
        .and_then(Value::as_array)
        .is_some_and(|l| l.iter().any(|r| r.get("apiKey").is_some()));
    let own_list = es
        .object
        .pointer("/spec/nodeSets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|set| {
            set.pointer("/config").is_some_and(|c| {
                c.get(list).is_some()
                    || c.pointer(
                        "/xpack/security/remote_cluster_client/ssl/certificate_authorities",
                    )
                    .is_some()
            })
        });
    !eck_list && !own_list
}

/// Warnings for a plan that mounts the plugin's CA bundle on `local` (which sets a CA list on
/// its remote cluster client): the links the plugin recorded for remotes outside Kubernetes
/// with a publicly trusted CA and no CA of theirs in the bundle stop being trusted.
pub fn public_ca_cutoff_warnings(local: &EsState, alias: &str) -> Vec<String> {
    if !trusts_public_cas(local) {
        return Vec::new();
    }
    local
        .plugin_links()
        .iter()
        .filter(|(other, r)| {
            other.as_str() != alias
                && r.remote_context.is_empty()
                && r.security == SecurityModel::ApiKey
                && r.ca_fingerprint.is_none()
        })
        .map(|(other, _)| {
            format!(
                "{} trusts the publicly signed certificate of {other:?} through the JVM's public CAs, which Elasticsearch stops trusting once this link sets a CA list on the remote cluster client: link {other:?} again with --public-ca --remote-url URL (or --ca-file ROOT) so its CA joins the bundle",
                local.id
            )
        })
        .collect()
}

/// Switches client SSL on for a remote whose CA is publicly trusted (nothing to mount).
pub fn with_client_ssl(node_set: &mut Value) -> bool {
    let config = ensure_object(node_set, "config");
    let key = "xpack.security.remote_cluster_client.ssl.enabled";
    if config.get(key) == Some(&json!(true)) {
        return false;
    }
    config.insert(key.into(), json!(true));
    true
}

/// Adds the CA volume, its mount in the `elasticsearch` container and the client SSL settings
/// to a nodeSet, keeping everything else; true when something changed.
pub fn with_ca_trust(node_set: &mut Value, bundle: &str) -> bool {
    let mut changed = false;
    let config = ensure_object(node_set, "config");
    if config.get("xpack.security.remote_cluster_client.ssl.enabled") != Some(&json!(true)) {
        config.insert(
            "xpack.security.remote_cluster_client.ssl.enabled".into(),
            json!(true),
        );
        changed = true;
    }
    let cas = config
        .entry("xpack.security.remote_cluster_client.ssl.certificate_authorities")
        .or_insert_with(|| json!([]));
    if !cas.is_array() {
        *cas = json!([cas.clone()]);
    }
    let list = cas.as_array_mut().expect("made an array above");
    if !list.iter().any(|v| v == CA_FILE_SETTING) {
        list.push(json!(CA_FILE_SETTING));
        changed = true;
    }
    changed |= with_configmap_volume(node_set, CA_VOLUME, bundle, CA_MOUNT_PATH);
    changed
}

/// Mounts ConfigMap `configmap` (volume `volume`) read-only at `mount_path` in the
/// `elasticsearch` container of a nodeSet; true when something changed.
pub fn with_configmap_volume(
    node_set: &mut Value,
    volume: &str,
    configmap: &str,
    mount_path: &str,
) -> bool {
    let mut changed = false;
    let pod_spec = ensure_object(ensure_object_value(node_set, "podTemplate"), "spec");
    let volumes = pod_spec.entry("volumes").or_insert_with(|| json!([]));
    if let Some(volumes) = volumes.as_array_mut()
        && !volumes.iter().any(|v| v["name"] == volume)
    {
        volumes.push(json!({"name": volume, "configMap": {"name": configmap}}));
        changed = true;
    }
    let containers = pod_spec.entry("containers").or_insert_with(|| json!([]));
    if let Some(containers) = containers.as_array_mut() {
        if !containers.iter().any(|c| c["name"] == "elasticsearch") {
            containers.push(json!({"name": "elasticsearch"}));
        }
        let container = containers
            .iter_mut()
            .find(|c| c["name"] == "elasticsearch")
            .expect("added above");
        let mounts = container
            .as_object_mut()
            .expect("containers are objects")
            .entry("volumeMounts")
            .or_insert_with(|| json!([]));
        if let Some(mounts) = mounts.as_array_mut()
            && !mounts.iter().any(|m| m["name"] == volume)
        {
            mounts.push(json!({"name": volume, "mountPath": mount_path, "readOnly": true}));
            changed = true;
        }
    }
    changed
}

pub(crate) fn ensure_object_value<'a>(value: &'a mut Value, key: &str) -> &'a mut Value {
    if !value.get(key).is_some_and(Value::is_object) {
        value[key] = json!({});
    }
    &mut value[key]
}

pub(crate) fn ensure_object<'a>(
    value: &'a mut Value,
    key: &str,
) -> &'a mut serde_json::Map<String, Value> {
    ensure_object_value(value, key)
        .as_object_mut()
        .expect("made an object above")
}

/// The proxy-mode settings a link wants for its alias.
pub(crate) struct ProxySettings<'a> {
    pub alias: &'a str,
    pub address: &'a str,
    /// The TLS name checked (API-key model); the transport checks none.
    pub server_name: Option<&'a str>,
    pub skip_unavailable: bool,
}

/// `PUT _cluster/settings` for `wanted`, unless `current` already holds it.
pub(crate) fn proxy_settings_step(
    es: &ClusterId,
    current: &BTreeMap<String, Value>,
    wanted: ProxySettings,
    summary: String,
) -> Option<Step> {
    let prefix = format!("cluster.remote.{}", wanted.alias);
    let mut desired = BTreeMap::from([
        (format!("{prefix}.mode"), json!("proxy")),
        (format!("{prefix}.proxy_address"), json!(wanted.address)),
    ]);
    if let Some(name) = wanted.server_name {
        desired.insert(format!("{prefix}.server_name"), json!(name));
    }
    if wanted.skip_unavailable {
        desired.insert(format!("{prefix}.skip_unavailable"), json!(true));
    }
    if desired.iter().all(|(k, v)| current.get(k) == Some(v)) {
        return None;
    }
    Some(Step {
        cluster: es.clone(),
        summary,
        restarts_nodes: false,
        change: Change::PutClusterSettings {
            settings: Value::Object(desired.into_iter().collect()),
        },
    })
}

mod certificate;
mod export;
mod external;
mod restricted;
mod unlink;

pub use certificate::*;
pub use export::*;
pub use external::*;
pub use restricted::*;
pub use unlink::*;

#[cfg(test)]
#[path = "cross_environment_tests.rs"]
mod tests;
