//! Every read the planners need, from Kubernetes and Elasticsearch, into the observed-state
//! types of `plan`. Independent reads go out together.

pub mod files;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::Api;
use rustls::pki_types::{CertificateDer, pem::PemObject};
use serde_json::Value;

use crate::error::UserError;
use crate::es::EsPool;
use crate::k8s::clients::ContextClient;
use crate::k8s::eck;
use crate::output;
use crate::plan::{self, CrossObserved, CrossRequest, EsState, RemoteCa};

/// An Elasticsearch resource as read; a missing one is the user's error (exit 2).
pub async fn read_es(
    client: &ContextClient,
    namespace: &str,
    name: &str,
) -> anyhow::Result<EsState> {
    let object = eck::get_elasticsearch(client, namespace, name).await?;
    match object {
        Some(object) => Ok(EsState {
            id: cluster_id(client, namespace, name),
            object,
        }),
        None => Err(UserError::ElasticsearchNotFound {
            context: client.context.clone(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
        .into()),
    }
}

/// Two Elasticsearch resources of one context, read together.
pub async fn read_pair(
    client: &ContextClient,
    first: (&str, &str),
    second: (&str, &str),
) -> anyhow::Result<(EsState, EsState)> {
    tokio::try_join!(
        read_es(client, first.0, first.1),
        read_es(client, second.0, second.1)
    )
}

/// The id of the Elasticsearch `name` in `namespace` of the client's context.
pub fn cluster_id(client: &ContextClient, namespace: &str, name: &str) -> plan::ClusterId {
    plan::ClusterId {
        context: client.context.clone(),
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
}

/// `cluster.remote.<alias>.skip_unavailable` as the local cluster has it (`None` when unset or
/// when Elasticsearch cannot be reached yet).
pub async fn current_skip_unavailable(
    client: &ContextClient,
    es: &EsPool,
    local: &EsState,
    alias: &str,
) -> Option<bool> {
    let connection = es.client(client, &local.id).await.ok()?;
    let settings = connection
        .get("/_cluster/settings?flat_settings=true")
        .await
        .ok()?;
    let value = &settings["persistent"][format!("cluster.remote.{alias}.skip_unavailable")];
    value
        .as_bool()
        .or_else(|| value.as_str().and_then(|v| v.parse().ok()))
}

/// The remote the alias points at (from the plugin's record), and every other cluster of the
/// context, to tell whether the remote's server is still used.
pub async fn same_operator_remote_and_others(
    client: &ContextClient,
    local: &EsState,
    alias: &str,
) -> anyhow::Result<(Option<EsState>, Vec<EsState>)> {
    let Some(record) = local.plugin_links().get(alias).cloned() else {
        return Ok((None, Vec::new()));
    };
    let remote = eck::get_elasticsearch(client, &record.remote_namespace, &record.remote_name)
        .await?
        .map(|object| EsState {
            id: cluster_id(client, &record.remote_namespace, &record.remote_name),
            object,
        });
    Ok((remote, others_than(client, &local.id).await?))
}

/// Every Elasticsearch of the client's context (the context's namespace when listing all is
/// denied).
pub async fn all_elasticsearches(client: &ContextClient) -> anyhow::Result<Vec<EsState>> {
    Ok(eck::list_raw(client)
        .await?
        .into_iter()
        .filter_map(|object| {
            let namespace = object.pointer("/metadata/namespace")?.as_str()?.to_string();
            let name = object.pointer("/metadata/name")?.as_str()?.to_string();
            let id = cluster_id(client, &namespace, &name);
            Some(EsState { id, object })
        })
        .collect())
}

/// Every Elasticsearch of the client's context but `except`.
pub async fn others_than(
    client: &ContextClient,
    except: &plan::ClusterId,
) -> anyhow::Result<Vec<EsState>> {
    let mut all = all_elasticsearches(client).await?;
    all.retain(|es| &es.id != except);
    Ok(all)
}

/// Where each side of a link is, and the command's Elasticsearch connections.
/// Where each side is.
pub struct Sides<'a> {
    pub local: &'a ContextClient,
    pub local_namespace: &'a str,
    pub local_name: &'a str,
    pub remote: &'a ContextClient,
    pub remote_namespace: &'a str,
    pub remote_name: &'a str,
    pub es: &'a EsPool,
}

/// The local side of an unlink: where the Elasticsearch is and the alias removed.
pub struct Local<'a> {
    pub client: &'a ContextClient,
    pub namespace: &'a str,
    pub name: &'a str,
    pub alias: &'a str,
    pub es: &'a EsPool,
    /// Until when an unreadable Elasticsearch is waited for (the command's `--timeout`).
    pub deadline: Instant,
}

/// Both resources and both operators' facts, read together.
async fn read_sides(
    sides: &Sides<'_>,
) -> anyhow::Result<(EsState, EsState, plan::Operator, plan::Operator)> {
    let (local, remote, local_operator, remote_operator) = tokio::join!(
        read_es(sides.local, sides.local_namespace, sides.local_name),
        read_es(sides.remote, sides.remote_namespace, sides.remote_name),
        eck::operator_facts(sides.local, sides.local_namespace),
        eck::operator_facts(sides.remote, sides.remote_namespace),
    );
    Ok((local?, remote?, local_operator, remote_operator))
}

/// Reads everything the cross-environment plan depends on; independent reads go together.
pub async fn cross_link(
    sides: &Sides<'_>,
    request: &CrossRequest,
    deadline: Instant,
) -> anyhow::Result<CrossObserved> {
    let (local_client, remote_client) = (sides.local, sides.remote);
    let local_secrets =
        Api::<Secret>::namespaced(local_client.client.clone(), sides.local_namespace);
    let local_maps =
        Api::<ConfigMap>::namespaced(local_client.client.clone(), sides.local_namespace);
    let local_id = cluster_id(local_client, sides.local_namespace, sides.local_name);
    let remote_id = cluster_id(remote_client, sides.remote_namespace, sides.remote_name);
    let (local, remote, local_operator, remote_operator) = read_sides(sides).await?;
    if local.id == remote.id {
        return Err(UserError::from(plan::PlanError::SameCluster(local.id)).into());
    }
    let credentials_name = plan::credentials_secret_name(&local_id);
    let bundle_name = plan::ca_bundle_name(&local_id);
    let alias = request
        .alias
        .clone()
        .unwrap_or_else(|| remote_id.name.clone());
    let (remote_ca, exposure, credentials, bundle, pending) = tokio::join!(
        read_transport_ca(remote_client, sides.remote_namespace, &remote_id.name),
        server_exposure(remote_client, &remote_id, &remote_operator),
        local_client.call(local_secrets.get_opt(&credentials_name)),
        local_client.call(local_maps.get_opt(&bundle_name)),
        read_pending(local_client, &local_id, &alias),
    );
    let (remote_ca, (exposed_address, exposure_service_exists)) = (remote_ca?, exposure?);
    let credentials = credentials?;
    let stored_key = match credentials
        .as_ref()
        .and_then(|secret| stored_key_id(secret, &alias))
    {
        Some(key_id) => Some(plan::StoredKey {
            active: key_is_active(remote_client, sides.es, &remote, &key_id).await?,
            id: key_id,
        }),
        None => None,
    };
    let local_alias_settings =
        alias_settings(local_client, sides.es, &local, &alias, deadline).await?;
    let active_link_keys = active_link_keys(
        remote_client,
        sides.es,
        &remote,
        &plan::api_key_name(&local.id, &alias),
    )
    .await?;
    Ok(CrossObserved {
        remote_cluster: remote_client.identity().await,
        local,
        remote,
        local_operator,
        remote_operator,
        remote_ca,
        exposed_address,
        exposure_service_exists,
        credentials_secret: credentials.map(without_values),
        ca_bundle: bundle?.map(to_value),
        stored_key,
        active_link_keys,
        pending: pending?,
        local_alias_settings,
    })
}

/// The id of the API key stored for `alias`: the encoded key is base64 of `id:secret`.
pub fn stored_key_id(secret: &Secret, alias: &str) -> Option<String> {
    let encoded = secret.data.as_ref()?.get(&plan::credentials_key(alias))?;
    let decoded =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &encoded.0).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let id = text.split_once(':')?.0;
    (!id.is_empty()).then(|| id.to_string())
}

/// A Secret as planning needs it: its keys and version, never its values.
pub fn without_values(secret: Secret) -> Value {
    let mut value = to_value(secret);
    if let Some(data) = value.get_mut("data").and_then(Value::as_object_mut) {
        for entry in data.values_mut() {
            *entry = Value::String(String::new());
        }
    }
    value
}

/// The transport CA ECK publishes for `name` in `namespace`, when it has.
pub async fn read_transport_ca(
    client: &ContextClient,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Option<RemoteCa>> {
    let secrets = Api::<Secret>::namespaced(client.client.clone(), namespace);
    Ok(client
        .call(secrets.get_opt(&plan::transport_ca_secret(name)))
        .await?
        .and_then(|s| s.data?.get("ca.crt").map(|b| b.0.clone()))
        .and_then(|pem| first_certificate(&pem)))
}

/// How `es`'s remote cluster server is exposed: the LoadBalancer host of ECK's Service (when
/// the CRD has `remoteClusterServer.service`, ECK 3.3) or of the plugin's own, and whether the
/// plugin's own Service exists.
pub async fn server_exposure(
    client: &ContextClient,
    es: &plan::ClusterId,
    operator: &plan::Operator,
) -> anyhow::Result<(Option<String>, bool)> {
    let services = Api::<Service>::namespaced(client.client.clone(), &es.namespace);
    let template = format!("{}-es-remote-cluster", es.name);
    let own = plan::exposure_service_name(es);
    let (template, own) = tokio::join!(
        client.call(services.get_opt(&template)),
        client.call(services.get_opt(&own)),
    );
    let (template, own) = (template?, own?);
    let exposed = if operator.crd_has_server_service {
        template.as_ref()
    } else {
        own.as_ref()
    };
    let port = plan::ServicePort::remote_cluster_server();
    Ok((eck::load_balancer_address(exposed, &port), own.is_some()))
}

pub async fn trust_side(client: &ContextClient, es: EsState) -> anyhow::Result<plan::TrustSide> {
    let maps = Api::<ConfigMap>::namespaced(client.client.clone(), &es.id.namespace);
    let mut side = plan::TrustSide {
        es,
        own_ca: None,
        ca_configmap: None,
    };
    let configmap = side.configmap_name();
    let (own_ca, map) = tokio::join!(
        read_transport_ca(client, &side.es.id.namespace, &side.es.id.name),
        client.call(maps.get_opt(&configmap)),
    );
    side.own_ca = own_ca?;
    side.ca_configmap = map?.map(to_value);
    Ok(side)
}

/// What a restricted transport trust needs to know of `side`: the plugin's ConfigMap and the
/// ECK clusters it already talks to over the transport (from ECK's remote CA copies, the
/// same-operator references and the plugin's CA blocks).
pub async fn restricted_side(
    client: &ContextClient,
    side: &plan::TrustSide,
) -> anyhow::Result<plan::RestrictedObserved> {
    let id = &side.es.id;
    let secrets = Api::<Secret>::namespaced(client.client.clone(), &id.namespace);
    let maps = Api::<ConfigMap>::namespaced(client.client.clone(), &id.namespace);
    let selector = format!(
        "{}={},{}=remote-ca",
        eck::LABEL_CLUSTER_NAME,
        id.name,
        eck::LABEL_TYPE
    );
    let by_label = kube::api::ListParams::default().labels(&selector);
    let configmap_name = plan::restricted_trust_name(id);
    let (copies, configmap) = tokio::join!(
        client.call(secrets.list(&by_label)),
        client.call(maps.get_opt(&configmap_name)),
    );
    let mut peers: Vec<(String, String)> = copies?
        .items
        .iter()
        .filter_map(|secret| {
            let labels = secret.metadata.labels.as_ref()?;
            let name = labels.get("elasticsearch.k8s.elastic.co/remote-cluster-name")?;
            let namespace = labels
                .get("elasticsearch.k8s.elastic.co/remote-cluster-namespace")
                .unwrap_or(&id.namespace);
            Some((namespace.clone(), name.clone()))
        })
        .collect();
    for reference in side
        .es
        .object
        .pointer("/spec/remoteClusters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(name) = reference
            .pointer("/elasticsearchRef/name")
            .and_then(Value::as_str)
        {
            let namespace = reference
                .pointer("/elasticsearchRef/namespace")
                .and_then(Value::as_str)
                .unwrap_or(&id.namespace);
            peers.push((namespace.to_string(), name.to_string()));
        }
    }
    let mut observed = plan::RestrictedObserved {
        configmap: configmap?.map(to_value),
        eck_peers: plan::eck_transport_peers(side, &peers),
        node_patterns: BTreeMap::new(),
    };
    // Node-name patterns (otherNameSuffix): recorded ones for peers this context cannot read,
    // replaced by what the specs of this cluster and its same-cluster peers say now.
    let mut patterns = observed.recorded_node_patterns();
    let mut readable = vec![side.es.clone()];
    peers.sort();
    peers.dedup();
    for (namespace, name) in &peers {
        if let Some(object) = eck::get_elasticsearch(client, namespace, name).await? {
            readable.push(EsState {
                id: cluster_id(client, namespace, name),
                object,
            });
        }
    }
    for es in &readable {
        let key = (es.id.namespace.clone(), es.id.name.clone());
        if plan::other_name_suffix(&es.object).is_some() {
            patterns.insert(key, plan::eck_node_pattern(es));
        } else {
            patterns.remove(&key);
        }
    }
    observed.node_patterns = patterns;
    Ok(observed)
}

/// The restricted trust of `side`, read only when `--trust-file` or `--trust-subject` asks for
/// one.
pub async fn restricted_when_asked(
    client: &ContextClient,
    side: &plan::TrustSide,
    subjects: Option<&files::TrustSubjects>,
) -> anyhow::Result<Option<plan::RestrictedObserved>> {
    match subjects {
        Some(_) => Ok(Some(restricted_side(client, side).await?)),
        None => Ok(None),
    }
}

/// What the planners take for a restricted trust: what was read and the names asked for.
pub fn restriction<'a>(
    observed: Option<&'a plan::RestrictedObserved>,
    subjects: Option<&'a files::TrustSubjects>,
) -> Option<plan::Restriction<'a>> {
    observed
        .zip(subjects)
        .map(|(observed, s)| plan::Restriction {
            observed,
            subjects: &s.patterns,
        })
}

/// When `es` restricts its transport trust by node name, the step that lets `peer`'s nodes in;
/// reads the restricted trust only then.
pub async fn restricted_peer_sync(
    client: &ContextClient,
    side: &plan::TrustSide,
    peer: &EsState,
) -> anyhow::Result<Option<plan::Step>> {
    if !plan::uses_restricted_trust(&side.es) {
        return Ok(None);
    }
    let observed = restricted_side(client, side).await?;
    Ok(plan::restricted_peer_step(&side.es.id, &observed, peer))
}

/// [`restricted_peer_sync`] for a cluster whose trust side was not read yet (read only when
/// it restricts).
pub async fn restricted_peer_sync_of(
    client: &ContextClient,
    es: &EsState,
    peer: &EsState,
) -> anyhow::Result<Option<plan::Step>> {
    if !plan::uses_restricted_trust(es) {
        return Ok(None);
    }
    let side = trust_side(client, es.clone()).await?;
    restricted_peer_sync(client, &side, peer).await
}

pub async fn certificate_link(
    sides: &Sides<'_>,
    alias: Option<&str>,
    deadline: Instant,
) -> anyhow::Result<plan::CertificateObserved> {
    let (local_client, remote_client) = (sides.local, sides.remote);
    let (local, remote, local_operator, remote_operator) = read_sides(sides).await?;
    let alias = alias.map_or_else(|| remote.id.name.clone(), str::to_string);
    let services = Api::<Service>::namespaced(remote_client.client.clone(), sides.remote_namespace);
    let transport_service = format!("{}-es-transport", remote.id.name);
    let (local_side, remote_side, transport, settings, pending) = tokio::join!(
        trust_side(local_client, local.clone()),
        trust_side(remote_client, remote),
        remote_client.call(services.get_opt(&transport_service)),
        alias_settings(local_client, sides.es, &local, &alias, deadline),
        read_pending(local_client, &local.id, &alias),
    );
    Ok(plan::CertificateObserved {
        remote_cluster: remote_client.identity().await,
        local: local_side?,
        remote: remote_side?,
        local_operator,
        remote_operator,
        exposed_address: eck::load_balancer_address(
            transport?.as_ref(),
            &plan::ServicePort::transport(),
        ),
        local_alias_settings: settings?,
        pending: pending?,
    })
}

pub fn to_value<T: serde::Serialize>(object: T) -> Value {
    serde_json::to_value(object).unwrap_or_default()
}

/// The first certificate of a PEM bundle (ECK's CA comes first) and its SHA-256 fingerprint.
pub fn first_certificate(pem: &[u8]) -> Option<RemoteCa> {
    let der: CertificateDer<'static> = CertificateDer::pem_slice_iter(pem).next()?.ok()?;
    Some(certificate_bundle(&[der.as_ref()]))
}

/// Certificates (DER) as one PEM bundle, in their order, with the SHA-256 of their DER bytes
/// one after the other (for one certificate, its usual fingerprint).
pub fn certificate_bundle(certificates: &[impl AsRef<[u8]>]) -> RemoteCa {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let mut pem = String::new();
    for der in certificates {
        let der = der.as_ref();
        digest.update(der);
        let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der);
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for chunk in encoded.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    let fingerprint = digest
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    RemoteCa { pem, fingerprint }
}

/// The active cross-cluster API keys on `remote` with the name the plugin gives a link's keys
/// and its `managed-by` metadata, sorted.
async fn active_link_keys(
    client: &ContextClient,
    es: &EsPool,
    remote: &EsState,
    name: &str,
) -> anyhow::Result<Vec<String>> {
    // Read before any write: a pod that is restarting or a passing API error gets two more
    // tries, then the command stops with nothing written.
    let mut attempts = 0;
    let es = loop {
        attempts += 1;
        match es.client(client, &remote.id).await {
            Ok(connected) => break connected,
            Err(err) if attempts >= 3 => {
                return Err(err.context(format!(
                    "cannot read the link's API keys on {}; retry when it is reachable",
                    remote.id
                )));
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
        }
    };
    plugin_keys_named(&es, name).await
}

/// The active cross-cluster API keys on the cluster behind `es` named `name` and carrying the
/// plugin's `managed-by` metadata, sorted: also those of a run killed before it stored its key.
pub async fn plugin_keys_named(
    es: &crate::es::EsClient,
    name: &str,
) -> anyhow::Result<Vec<String>> {
    let found = es
        .get(&format!(
            "/_security/api_key?name={}&active_only=true",
            crate::es::query_value(name)
        ))
        .await;
    let found = match found {
        Ok(found) => found,
        Err(err)
            if err
                .downcast_ref::<crate::es::EsError>()
                .is_some_and(|e| e.status == 404) =>
        {
            return Ok(Vec::new());
        }
        Err(err) => return Err(err),
    };
    let mut ids: Vec<String> = found["api_keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|key| key["invalidated"] == Value::Bool(false))
        .filter(|key| key.pointer("/metadata/managed-by") == Some(&Value::from(plan::MANAGED_BY)))
        .filter_map(|key| key["id"].as_str().map(str::to_string))
        .collect();
    ids.sort();
    Ok(ids)
}

async fn key_is_active(
    client: &ContextClient,
    es: &EsPool,
    remote: &EsState,
    key_id: &str,
) -> anyhow::Result<bool> {
    let es = es.client(client, &remote.id).await?;
    match es
        .get(&format!(
            "/_security/api_key?id={}",
            crate::es::query_value(key_id)
        ))
        .await
    {
        Ok(found) => Ok(found["api_keys"]
            .as_array()
            .and_then(|keys| keys.first())
            .is_some_and(|key| key["invalidated"] == Value::Bool(false))),
        Err(err)
            if err
                .downcast_ref::<crate::es::EsError>()
                .is_some_and(|e| e.status == 404) =>
        {
            Ok(false)
        }
        Err(err) => Err(err),
    }
}

/// `cluster.remote.<alias>.*` in the local's persistent settings. Whether the alias is set there
/// is never assumed: while the settings cannot be read (Elasticsearch restarting, say), the read
/// is retried with backoff, saying so on stderr, until `deadline` (the command's `--timeout`);
/// then the command fails before planning, so nothing is written on a guess.
pub async fn alias_settings(
    client: &ContextClient,
    es: &EsPool,
    local: &EsState,
    alias: &str,
    deadline: Instant,
) -> anyhow::Result<BTreeMap<String, Value>> {
    let prefix = format!("cluster.remote.{alias}.");
    let mut delay = Duration::from_millis(200);
    loop {
        let read = async {
            let es = es.client(client, &local.id).await?;
            es.get("/_cluster/settings?flat_settings=true").await
        };
        // Each attempt gets a part of the time left, so a hanging one is retried too.
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = left.min(Duration::from_secs(5));
        let outcome = match tokio::time::timeout(attempt, read).await {
            Ok(outcome) => outcome,
            Err(_) => Err(anyhow::anyhow!("no answer")),
        };
        let err = match outcome {
            Ok(settings) => {
                return Ok(settings["persistent"]
                    .as_object()
                    .map(|all| {
                        all.iter()
                            .filter(|(k, _)| k.starts_with(&prefix))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default());
            }
            Err(err) => err,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if refused_for_good(&err) {
            // Waiting does not help a missing permission or a rejected password.
            anyhow::bail!(
                "cannot read the cluster settings of {} ({err}), so whether alias {alias:?} is set there is unknown and nothing was changed on a guess",
                local.id
            );
        }
        if left.is_zero() {
            anyhow::bail!(
                "cannot read the cluster settings of {} within --timeout ({err}), so whether alias {alias:?} is set there is unknown and nothing was changed on a guess; retry when its Elasticsearch answers, or give a longer --timeout",
                local.id
            );
        }
        output::info(&format!(
            "Waiting for the cluster settings of {} to check alias {alias:?} ({err}); retrying in {} ms.",
            local.id,
            delay.min(left).as_millis()
        ));
        tokio::time::sleep(delay.min(left)).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// A failure that retrying cannot cure: the API server forbids the port-forward (its message
/// starts with `forbidden:`, see `k8s::failure`), Elasticsearch refuses the credentials, or it
/// requires a client certificate the plugin has not got.
fn refused_for_good(err: &anyhow::Error) -> bool {
    err.downcast_ref::<crate::es::EsError>()
        .is_some_and(|e| matches!(e.status, 401 | 403))
        || err
            .downcast_ref::<crate::es::ClientCertificateError>()
            .is_some()
        || err
            .chain()
            .any(|cause| cause.to_string().starts_with("forbidden:"))
}

pub fn unreachable_remote(record: &plan::LinkRecord, reason: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot reach the remote {}/{} (context {}): {reason}; retry when it is reachable, or pass --local-only to clean this side and be told what is left there",
        record.remote_namespace,
        record.remote_name,
        record.remote_context
    )
}

pub async fn certificate_unlink(
    local: &Local<'_>,
    remote_client: Option<&ContextClient>,
    record: &plan::LinkRecord,
) -> anyhow::Result<plan::CertificateUnlinkObserved> {
    let (local_client, alias, es, deadline) = (local.client, local.alias, local.es, local.deadline);
    let local = read_es(local_client, local.namespace, local.name).await?;
    let settings = alias_settings(local_client, es, &local, alias, deadline).await?;
    let local_side = trust_side(local_client, local).await?;
    let remote = match remote_client {
        Some(client) => {
            let es = read_es(client, &record.remote_namespace, &record.remote_name)
                .await
                .map_err(|e| unreachable_remote(record, &e.to_string()))?;
            Some(trust_side(client, es).await?)
        }
        None => None,
    };
    let local_restricted = restricted_side(local_client, &local_side).await?;
    let pending = read_pending(local_client, &local_side.es.id, alias).await?;
    Ok(plan::CertificateUnlinkObserved {
        local: local_side,
        remote,
        record: record.clone(),
        local_alias_settings: settings,
        local_restricted,
        pending,
    })
}

pub async fn cross_unlink(
    local: &Local<'_>,
    remote_client: Option<&ContextClient>,
    record: &plan::LinkRecord,
) -> anyhow::Result<plan::CrossUnlinkObserved> {
    let (local_client, local_namespace, alias, es, deadline) = (
        local.client,
        local.namespace,
        local.alias,
        local.es,
        local.deadline,
    );
    let local = read_es(local_client, local_namespace, local.name).await?;
    let local_secrets = Api::<Secret>::namespaced(local_client.client.clone(), local_namespace);
    let local_maps = Api::<ConfigMap>::namespaced(local_client.client.clone(), local_namespace);
    let credentials_name = plan::credentials_secret_name(&local.id);
    let bundle_name = plan::ca_bundle_name(&local.id);
    let (credentials, bundle, settings, pending) = tokio::join!(
        local_client.call(local_secrets.get_opt(&credentials_name)),
        local_client.call(local_maps.get_opt(&bundle_name)),
        alias_settings(local_client, es, &local, alias, deadline),
        read_pending(local_client, &local.id, alias),
    );
    let settings = settings?;
    let (remote, remote_others, exposure_service, active_link_keys) = match remote_client {
        None => (None, Vec::new(), None, Vec::new()),
        Some(client) => {
            let remote = read_es(client, &record.remote_namespace, &record.remote_name)
                .await
                .map_err(|e| unreachable_remote(record, &e.to_string()))?;
            let services =
                Api::<Service>::namespaced(client.client.clone(), &record.remote_namespace);
            let service_name = plan::exposure_service_name(&remote.id);
            let (others, service) = tokio::join!(
                others_than(client, &remote.id),
                client.call(services.get_opt(&service_name)),
            );
            let keys = if record.security == plan::SecurityModel::ApiKey {
                let name = plan::api_key_name(&local.id, alias);
                active_link_keys(client, es, &remote, &name).await?
            } else {
                Vec::new()
            };
            (Some(remote), others?, service?.map(to_value), keys)
        }
    };
    Ok(plan::CrossUnlinkObserved {
        local,
        record: record.clone(),
        remote,
        remote_others,
        credentials_secret: credentials?.map(without_values),
        ca_bundle: bundle?.map(to_value),
        local_alias_settings: settings,
        exposure_service,
        active_link_keys,
        pending: pending?,
    })
}

/// The pending record's ConfigMap of `alias` on `local`'s namespace, as the API server returns it.
pub async fn read_pending(
    client: &ContextClient,
    local: &plan::ClusterId,
    alias: &str,
) -> anyhow::Result<Option<Value>> {
    let maps = Api::<ConfigMap>::namespaced(client.client.clone(), &local.namespace);
    let found = client
        .call(maps.get_opt(&plan::pending_name(local, alias)))
        .await?;
    Ok(found.map(to_value))
}

/// The pending record an interrupted link or unlink of `alias` left on the local's namespace.
pub async fn pending_operation(
    client: &ContextClient,
    local: &plan::ClusterId,
    alias: &str,
) -> anyhow::Result<Option<plan::PendingOperation>> {
    Ok(read_pending(client, local, alias)
        .await?
        .as_ref()
        .and_then(plan::PendingOperation::from_object))
}

/// Every pending record of `local`'s links and unlinks (by the plugin's label and name).
pub async fn pending_operations(
    client: &ContextClient,
    local: &plan::ClusterId,
) -> anyhow::Result<Vec<plan::PendingOperation>> {
    let maps = Api::<ConfigMap>::namespaced(client.client.clone(), &local.namespace);
    let selector = format!("{}={}", plan::MANAGED_BY_LABEL, plan::MANAGED_BY);
    let found = client
        .call(maps.list(&kube::api::ListParams::default().labels(&selector)))
        .await?;
    Ok(found
        .items
        .into_iter()
        .filter_map(|map| {
            let name = map.metadata.name.clone()?;
            let operation = plan::PendingOperation::from_object(&to_value(map))?;
            // Only this cluster's: the record's name derives from the local and the alias.
            (name == plan::pending_name(local, &operation.alias)).then_some(operation)
        })
        .collect())
}
