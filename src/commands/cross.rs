//! `link` across Kubernetes clusters: reads both sides, plans every step, applies, waits.

use std::collections::BTreeMap;
use std::time::Instant;

use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::Api;
use rustls::pki_types::{CertificateDer, pem::PemObject};
use serde_json::Value;

use crate::cli::LinkArgs;
use crate::commands::link::LinkResult;
use crate::commands::list::API_VERSION;
use crate::commands::mutate::{self, Progress};
use crate::error::{ExitCode, UserError};
use crate::es::{EsClient, EsTarget};
use crate::k8s::clients::ContextClient;
use crate::k8s::eck;
use crate::output;
use crate::plan::{self, CrossObserved, CrossRequest, EsState, RemoteCa};
use anyhow::Context as _;

/// Where each side is.
pub struct Sides<'a> {
    pub local: &'a ContextClient,
    pub local_namespace: &'a str,
    pub remote: &'a ContextClient,
    pub remote_namespace: &'a str,
}

pub async fn link(sides: &Sides<'_>, args: &LinkArgs) -> anyhow::Result<ExitCode> {
    let flags = &args.mutation;
    let certificate = args.security == Some(plan::SecurityModel::Certificate);
    // A bad --timeout is refused before anything is read or written.
    mutate::parse_wait_timeout(&flags.timeout)?;
    let request = CrossRequest {
        alias: args.alias.clone(),
        search_indices: args.search_indices.clone(),
        replication_indices: args.replication_indices.clone(),
        expose: args.expose,
        proxy_address: args.proxy_address.clone(),
        server_name: args.server_name.clone(),
        skip_unavailable: args.skip_unavailable,
    };
    let applied = mutate::plan_and_apply(&[sides.local, sides.remote], flags, || {
        let request = &request;
        async move {
            let planned = if certificate {
                let observed = observe_certificate(sides, args).await?;
                let mut planned =
                    plan::plan_certificate_link(&observed, request).map_err(UserError::from)?;
                let (local, remote) = (&observed.local, &observed.remote);
                let (local_sync, remote_sync) = tokio::try_join!(
                    restricted_peer_sync(sides.local, local, &remote.es.id),
                    restricted_peer_sync(sides.remote, remote, &local.es.id),
                )?;
                planned
                    .plan
                    .steps
                    .splice(0..0, local_sync.into_iter().chain(remote_sync));
                Ok(planned)
            } else {
                let observed = observe(sides, args, request).await?;
                plan::plan_cross_environment_link(&observed, request)
            };
            Ok(planned.map_err(UserError::from)?)
        }
    })
    .await?;
    let planned = applied.planned;
    let mut result = LinkResult {
        api_version: API_VERSION,
        kind: "LinkResult",
        local: id(sides.local, sides.local_namespace, &args.local),
        remote: id(sides.remote, sides.remote_namespace, args.remote_name()),
        alias: planned.alias.clone(),
        security: planned.security,
        dry_run: flags.dry_run,
        plan: planned.plan.clone(),
        writes: applied.writes,
        connected: None,
    };
    if planned.plan.is_empty() {
        output::info(&format!(
            "Remote cluster {:?} is already linked from {} to {}: nothing to change.",
            planned.alias, result.local, result.remote
        ));
    } else if flags.dry_run == crate::apply::DryRun::None {
        output::info(&format!(
            "Linked {} to {} as {:?} ({} security model, proxy mode).",
            result.local, result.remote, planned.alias, planned.security
        ));
    }
    result.connected =
        mutate::wait_until_connected(sides.local, flags, &result.local, &planned.alias, &[])
            .await?;
    if let Some(format) = flags.output {
        output::print_document(&result, format)?;
    }
    Ok(ExitCode::Ok)
}

fn id(client: &ContextClient, namespace: &str, name: &str) -> plan::ClusterId {
    plan::ClusterId {
        context: client.context.clone(),
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
}

/// Both resources and both operators' facts, read together.
async fn read_sides(
    sides: &Sides<'_>,
    args: &LinkArgs,
) -> anyhow::Result<(EsState, EsState, plan::Operator, plan::Operator)> {
    let (local, remote, local_operator, remote_operator) = tokio::join!(
        mutate::read_es(sides.local, sides.local_namespace, &args.local),
        mutate::read_es(sides.remote, sides.remote_namespace, args.remote_name()),
        eck::operator_facts(sides.local),
        eck::operator_facts(sides.remote),
    );
    Ok((local?, remote?, local_operator, remote_operator))
}

/// Reads everything the cross-environment plan depends on; independent reads go together.
async fn observe(
    sides: &Sides<'_>,
    args: &LinkArgs,
    request: &CrossRequest,
) -> anyhow::Result<CrossObserved> {
    let (local_client, remote_client) = (sides.local, sides.remote);
    let local_secrets =
        Api::<Secret>::namespaced(local_client.client.clone(), sides.local_namespace);
    let local_maps =
        Api::<ConfigMap>::namespaced(local_client.client.clone(), sides.local_namespace);
    let local_id = id(local_client, sides.local_namespace, &args.local);
    let remote_id = id(remote_client, sides.remote_namespace, args.remote_name());
    let (local, remote, local_operator, remote_operator) = read_sides(sides, args).await?;
    if local.id == remote.id {
        return Err(UserError::from(plan::PlanError::SameCluster(local.id)).into());
    }
    let credentials_name = plan::credentials_secret_name(&local_id);
    let bundle_name = plan::ca_bundle_name(&local_id);
    let (remote_ca, exposure, credentials, bundle) = tokio::join!(
        read_transport_ca(remote_client, sides.remote_namespace, &remote_id.name),
        server_exposure(remote_client, &remote_id, &remote_operator),
        local_client.call(local_secrets.get_opt(&credentials_name)),
        local_client.call(local_maps.get_opt(&bundle_name)),
    );
    let (remote_ca, (exposed_host, exposure_service_exists)) = (remote_ca?, exposure?);
    let alias = request
        .alias
        .clone()
        .unwrap_or_else(|| remote_id.name.clone());
    let credentials = credentials?;
    let stored_key = match credentials
        .as_ref()
        .and_then(|secret| stored_key_id(secret, &alias))
    {
        Some(key_id) => Some(plan::StoredKey {
            active: key_is_active(remote_client, &remote, &key_id).await?,
            id: key_id,
        }),
        None => None,
    };
    let local_alias_settings = alias_settings(local_client, &local, &alias).await;
    Ok(CrossObserved {
        local,
        remote,
        local_operator,
        remote_operator,
        remote_ca,
        exposed_host,
        exposure_service_exists,
        credentials_secret: credentials.map(without_values),
        ca_bundle: bundle?.map(to_value),
        stored_key,
        local_alias_settings,
    })
}

/// The id of the API key stored for `alias`: the encoded key is base64 of `id:secret`.
fn stored_key_id(secret: &Secret, alias: &str) -> Option<String> {
    let encoded = secret.data.as_ref()?.get(&plan::credentials_key(alias))?;
    let decoded =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &encoded.0).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let id = text.split_once(':')?.0;
    (!id.is_empty()).then(|| id.to_string())
}

/// A Secret as planning needs it: its keys and version, never its values.
fn without_values(secret: Secret) -> Value {
    let mut value = to_value(secret);
    if let Some(data) = value.get_mut("data").and_then(Value::as_object_mut) {
        for entry in data.values_mut() {
            *entry = Value::String(String::new());
        }
    }
    value
}

/// One side of a transport trust, as read in its context.
/// Whether the authority of `url` carries `user[:password]@`.
fn url_has_credentials(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?', '#'])
        .next()
        .is_some_and(|authority| authority.contains('@'))
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
    Ok((eck::load_balancer_host(exposed), own.is_some()))
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
    Ok(plan::RestrictedObserved {
        configmap: configmap?.map(to_value),
        eck_peers: plan::eck_transport_peers(side, &peers),
    })
}

/// The restricted trust of `side`, read only when `--trust-file` or `--trust-subject` asks for
/// one.
pub async fn restricted_when_asked(
    client: &ContextClient,
    side: &plan::TrustSide,
    subjects: Option<&crate::external::TrustSubjects>,
) -> anyhow::Result<Option<plan::RestrictedObserved>> {
    match subjects {
        Some(_) => Ok(Some(restricted_side(client, side).await?)),
        None => Ok(None),
    }
}

/// What the planners take for a restricted trust: what was read and the names asked for.
pub fn restriction<'a>(
    observed: Option<&'a plan::RestrictedObserved>,
    subjects: Option<&'a crate::external::TrustSubjects>,
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
    peer: &plan::ClusterId,
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
    peer: &plan::ClusterId,
) -> anyhow::Result<Option<plan::Step>> {
    if !plan::uses_restricted_trust(es) {
        return Ok(None);
    }
    let side = trust_side(client, es.clone()).await?;
    restricted_peer_sync(client, &side, peer).await
}

async fn observe_certificate(
    sides: &Sides<'_>,
    args: &LinkArgs,
) -> anyhow::Result<plan::CertificateObserved> {
    let (local_client, remote_client) = (sides.local, sides.remote);
    let (local, remote, local_operator, remote_operator) = read_sides(sides, args).await?;
    let alias = args.alias.clone().unwrap_or_else(|| remote.id.name.clone());
    let services = Api::<Service>::namespaced(remote_client.client.clone(), sides.remote_namespace);
    let transport_service = format!("{}-es-transport", remote.id.name);
    let (local_side, remote_side, transport, settings) = tokio::join!(
        trust_side(local_client, local.clone()),
        trust_side(remote_client, remote),
        remote_client.call(services.get_opt(&transport_service)),
        alias_settings(local_client, &local, &alias),
    );
    Ok(plan::CertificateObserved {
        local: local_side?,
        remote: remote_side?,
        local_operator,
        remote_operator,
        exposed_host: eck::load_balancer_host(transport?.as_ref()),
        local_alias_settings: settings,
    })
}

fn to_value<T: serde::Serialize>(object: T) -> Value {
    serde_json::to_value(object).unwrap_or_default()
}

/// The first certificate of a PEM bundle (ECK's CA comes first) and its SHA-256 fingerprint.
pub fn first_certificate(pem: &[u8]) -> Option<RemoteCa> {
    let der: CertificateDer<'static> = CertificateDer::pem_slice_iter(pem).next()?.ok()?;
    let fingerprint = ring::digest::digest(&ring::digest::SHA256, der.as_ref())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der.as_ref());
    let mut body = String::new();
    for chunk in encoded.as_bytes().chunks(64) {
        body.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        body.push('\n');
    }
    Some(RemoteCa {
        pem: format!("-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n"),
        fingerprint,
    })
}

async fn key_is_active(
    client: &ContextClient,
    remote: &EsState,
    key_id: &str,
) -> anyhow::Result<bool> {
    let es = EsClient::connect(client, target(remote)).await?;
    match es.get(&format!("/_security/api_key?id={key_id}")).await {
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

fn target(es: &EsState) -> EsTarget {
    EsTarget {
        namespace: es.id.namespace.clone(),
        name: es.id.name.clone(),
    }
}

/// `cluster.remote.<alias>.*` in the local's persistent settings; unreadable counts as none,
/// with a warning, since Elasticsearch may be restarting.
async fn alias_settings(
    client: &ContextClient,
    local: &EsState,
    alias: &str,
) -> BTreeMap<String, Value> {
    let prefix = format!("cluster.remote.{alias}.");
    let read = async {
        let es = EsClient::connect(client, target(local)).await?;
        es.get("/_cluster/settings?flat_settings=true").await
    };
    match read.await {
        Ok(settings) => settings["persistent"]
            .as_object()
            .map(|all| {
                all.iter()
                    .filter(|(k, _)| k.starts_with(&prefix))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        Err(err) => {
            output::warning(&format!(
                "could not read the cluster settings of {} ({err}); assuming alias {alias:?} is not set there",
                local.id
            ));
            BTreeMap::new()
        }
    }
}

/// `unlink` of a link made across Kubernetes clusters, from the record on the local resource.
pub async fn unlink(
    global: &crate::cli::GlobalFlags,
    args: &crate::cli::UnlinkArgs,
    kubeconfig: &std::sync::Arc<crate::k8s::kubeconfig::LoadedKubeconfig>,
    target: &mutate::Target,
    record: plan::LinkRecord,
) -> anyhow::Result<ExitCode> {
    let flags = &args.mutation;
    let local_client = &target.client;
    let remote_client = if args.local_only || plan::is_external(&record) {
        None
    } else {
        let client = mutate::context_client(
            global,
            &record.remote_context,
            args.remote_kubeconfig.as_deref(),
            kubeconfig,
            target,
        )
        .await?
        .map_err(|f| unreachable_remote(&record, &f.message))?;
        Some(client)
    };
    let request = plan::CrossUnlinkRequest {
        alias: args.alias.clone(),
        disable_server: args.disable_server,
    };
    // Reached before any write, so that bad credentials change nothing.
    let remote_api = match (&record.key_created_at, &args.remote_api.remote_url) {
        (Some(created_at), Some(url)) if created_at == url => {
            Some(connect_remote_api(&args.remote_api, url).await?)
        }
        _ => None,
    };
    let mut clients = vec![local_client];
    clients.extend(remote_client.as_ref());
    let applied = mutate::plan_and_apply(&clients, flags, || {
        let (request, record, remote_client) = (&request, &record, remote_client.as_ref());
        async move {
            if record.security == plan::SecurityModel::Certificate {
                let observed =
                    observe_certificate_unlink(local_client, target, args, remote_client, record)
                        .await?;
                return Ok(plan::plan_certificate_unlink(&observed, &args.alias));
            }
            let observed = observe_unlink(
                local_client,
                &target.namespace,
                &args.local,
                remote_client,
                record,
                &args.alias,
            )
            .await?;
            Ok(plan::plan_cross_environment_unlink(&observed, request))
        }
    })
    .await?;
    let planned = applied.planned;
    if flags.dry_run == crate::apply::DryRun::None {
        output::info(&format!(
            "Unlinked remote cluster {:?} from {}/{} (context {}).",
            args.alias, target.namespace, args.local, local_client.context
        ));
    }
    let mut left_on_remote = planned.left_on_remote.clone();
    // A key the plugin created on a cluster outside Kubernetes: invalidated there when reachable.
    if let (Some(es), Some(url), Some(id), crate::apply::DryRun::None) = (
        &remote_api,
        &record.key_created_at,
        &record.key_id,
        flags.dry_run,
    ) {
        es.delete("/_security/api_key", &serde_json::json!({"ids": [id]}))
            .await
            .with_context(|| format!("invalidating the API key {id} on {url}"))?;
        output::info(&format!("Invalidated the API key {id} on {url}."));
        left_on_remote.retain(|l| !l.contains(id.as_str()));
    }
    for left in &left_on_remote {
        output::warning(&format!("left on the remote: {left}"));
    }
    if flags.wait && flags.dry_run == crate::apply::DryRun::None {
        let deadline = Instant::now() + mutate::parse_wait_timeout(&flags.timeout)?;
        let mut progress = Progress::new();
        let mut touched: Vec<&plan::ClusterId> = Vec::new();
        for step in planned.plan.steps.iter().filter(|s| s.restarts_nodes) {
            if !touched.contains(&&step.cluster) {
                touched.push(&step.cluster);
            }
        }
        for cluster in touched {
            let client = if cluster.context == local_client.context {
                local_client
            } else {
                remote_client.as_ref().unwrap_or(local_client)
            };
            mutate::wait_for_rollout(client, cluster, deadline, &mut progress).await?;
        }
        progress.finish();
    }
    if let Some(format) = flags.output {
        output::print_document(
            &serde_json::json!({
                "apiVersion": API_VERSION,
                "kind": "UnlinkResult",
                "local": id(local_client, &target.namespace, &args.local),
                "alias": args.alias,
                "dryRun": flags.dry_run,
                "plan": planned.plan,
                "leftOnRemote": planned.left_on_remote,
                "writes": applied.writes,
            }),
            format,
        )?;
    }
    Ok(ExitCode::Ok)
}

fn unreachable_remote(record: &plan::LinkRecord, reason: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot reach the remote {}/{} (context {}): {reason}; retry when it is reachable, or pass --local-only to clean this side and be told what is left there",
        record.remote_namespace,
        record.remote_name,
        record.remote_context
    )
}

async fn observe_certificate_unlink(
    local_client: &ContextClient,
    target: &mutate::Target,
    args: &crate::cli::UnlinkArgs,
    remote_client: Option<&ContextClient>,
    record: &plan::LinkRecord,
) -> anyhow::Result<plan::CertificateUnlinkObserved> {
    let local = mutate::read_es(local_client, &target.namespace, &args.local).await?;
    let settings = alias_settings(local_client, &local, &args.alias).await;
    let local_side = trust_side(local_client, local).await?;
    let remote = match remote_client {
        Some(client) => {
            let es = mutate::read_es(client, &record.remote_namespace, &record.remote_name)
                .await
                .map_err(|e| unreachable_remote(record, &e.to_string()))?;
            Some(trust_side(client, es).await?)
        }
        None => None,
    };
    let local_restricted = restricted_side(local_client, &local_side).await?;
    Ok(plan::CertificateUnlinkObserved {
        local: local_side,
        remote,
        record: record.clone(),
        local_alias_settings: settings,
        local_restricted,
    })
}

async fn observe_unlink(
    local_client: &ContextClient,
    local_namespace: &str,
    local_name: &str,
    remote_client: Option<&ContextClient>,
    record: &plan::LinkRecord,
    alias: &str,
) -> anyhow::Result<plan::CrossUnlinkObserved> {
    let local = mutate::read_es(local_client, local_namespace, local_name).await?;
    let local_secrets = Api::<Secret>::namespaced(local_client.client.clone(), local_namespace);
    let local_maps = Api::<ConfigMap>::namespaced(local_client.client.clone(), local_namespace);
    let credentials_name = plan::credentials_secret_name(&local.id);
    let bundle_name = plan::ca_bundle_name(&local.id);
    let (credentials, bundle, settings) = tokio::join!(
        local_client.call(local_secrets.get_opt(&credentials_name)),
        local_client.call(local_maps.get_opt(&bundle_name)),
        alias_settings(local_client, &local, alias),
    );
    let (remote, remote_others, exposure_service) = match remote_client {
        None => (None, Vec::new(), None),
        Some(client) => {
            let remote = mutate::read_es(client, &record.remote_namespace, &record.remote_name)
                .await
                .map_err(|e| unreachable_remote(record, &e.to_string()))?;
            let services =
                Api::<Service>::namespaced(client.client.clone(), &record.remote_namespace);
            let service_name = plan::exposure_service_name(&remote.id);
            let (others, service) = tokio::join!(
                eck::list_raw(client),
                client.call(services.get_opt(&service_name)),
            );
            let others = others?
                .into_iter()
                .filter_map(|object| {
                    let es_id = plan::ClusterId {
                        context: client.context.clone(),
                        namespace: object.pointer("/metadata/namespace")?.as_str()?.to_string(),
                        name: object.pointer("/metadata/name")?.as_str()?.to_string(),
                    };
                    (es_id != remote.id).then_some(EsState { id: es_id, object })
                })
                .collect();
            (Some(remote), others, service?.map(to_value))
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
    })
}

/// The API key of a link to a cluster outside Kubernetes: from a file, the one the local
/// keystore already holds (when still active there), or one the plugin creates through the
/// remote's URL.
struct KeySource {
    encoded: secrecy::SecretString,
    id: String,
    /// The remote's URL when the plugin created (or earlier created) the key there.
    created_at: Option<String>,
    /// A key created by this run, with the client that made it, until the keystore holds it.
    fresh: Option<EsClient>,
}

async fn key_source(
    target: &mutate::Target,
    args: &LinkArgs,
    alias: &str,
) -> anyhow::Result<KeySource> {
    if let Some(path) = &args.api_key_file {
        let (encoded, id) = crate::external::read_api_key(path)?;
        return Ok(KeySource {
            encoded,
            id,
            created_at: None,
            fresh: None,
        });
    }
    let remote = &args.remote_api;
    let Some(url) = &remote.remote_url else {
        return Err(UserError::MissingKeySource.into());
    };
    let es = connect_remote_api(remote, url).await?;
    // A key the keystore already holds and the remote still accepts is kept.
    let client = &target.client;
    let secrets = Api::<Secret>::namespaced(client.client.clone(), &target.namespace);
    let secret_name = format!("{}-remote-cluster-credentials", args.local);
    if let Ok(Some(secret)) = client.call(secrets.get_opt(&secret_name)).await
        && let Some(id) = stored_key_id(&secret, alias)
        && let Some(bytes) = secret
            .data
            .as_ref()
            .and_then(|d| d.get(&plan::credentials_key(alias)))
        && remote_key_active(&es, &id).await
    {
        let encoded = secrecy::SecretString::from(String::from_utf8_lossy(&bytes.0).into_owned());
        return Ok(KeySource {
            encoded,
            id,
            created_at: Some(url.clone()),
            fresh: None,
        });
    }
    let name = format!(
        "{}{}-{}-{}-{alias}",
        plan::API_KEY_PREFIX,
        client.context,
        target.namespace,
        args.local
    );
    let access = plan::cross_cluster_access(&args.search_indices, &args.replication_indices);
    let created = es
        .post(
            "/_security/cross_cluster/api_key",
            &serde_json::json!({
                "name": name,
                "access": access,
                "metadata": {"managed-by": plan::MANAGED_BY, "local-context": client.context,
                             "local-namespace": target.namespace, "local-name": args.local, "alias": alias},
            }),
        )
        .await
        .with_context(|| format!("creating the cross-cluster API key on {url}"))?;
    let id = created["id"].as_str().unwrap_or_default().to_string();
    let encoded = created["encoded"].as_str().unwrap_or_default().to_string();
    if id.is_empty() || encoded.is_empty() {
        anyhow::bail!("{url} answered without an API key");
    }
    Ok(KeySource {
        encoded: secrecy::SecretString::from(encoded),
        id,
        created_at: Some(url.clone()),
        fresh: Some(es),
    })
}

impl KeySource {
    /// After a failed run: a key this run created that the keystore does not hold is
    /// invalidated, so no orphan key is left on the remote.
    async fn undo_if_unused(&self, target: &mutate::Target, args: &LinkArgs) {
        let Some(es) = &self.fresh else {
            return;
        };
        let client = &target.client;
        let secrets = Api::<Secret>::namespaced(client.client.clone(), &target.namespace);
        let alias = args.external.clone().unwrap_or_default();
        let stored = client
            .call(secrets.get_opt(&format!("{}-remote-cluster-credentials", args.local)))
            .await
            .ok()
            .flatten()
            .and_then(|s| stored_key_id(&s, &alias));
        if stored.as_deref() == Some(self.id.as_str()) {
            return;
        }
        match es
            .delete("/_security/api_key", &serde_json::json!({"ids": [self.id]}))
            .await
        {
            Ok(_) => output::warning(&format!(
                "invalidated the API key {} created on the remote, since the link could not be completed",
                self.id
            )),
            Err(err) => output::warning(&format!(
                "could not invalidate the API key {} on the remote ({err}); invalidate it there",
                self.id
            )),
        }
    }
}

/// The remote's HTTPS API with the credentials given; a remote that cannot be reached is the
/// user's input to fix (exit 2), before anything is written.
pub async fn connect_remote_api(
    remote: &crate::cli::RemoteApiFlags,
    url: &str,
) -> anyhow::Result<EsClient> {
    // A URL with user:password@ would be echoed in messages and stored in the link record.
    if url_has_credentials(url) {
        return Err(UserError::CredentialsInUrl.into());
    }
    let password_file = remote
        .remote_password_file
        .as_deref()
        .ok_or(UserError::MissingRemotePassword)?;
    let password = std::fs::read_to_string(password_file).map_err(|e| UserError::BadInputFile {
        path: password_file.to_path_buf(),
        reason: format!("cannot be read: {e}"),
    })?;
    let password = secrecy::SecretString::from(password.trim_end_matches(['\n', '\r']).to_string());
    let ca = match &remote.remote_ca_file {
        Some(path) => Some(std::fs::read(path).map_err(|e| UserError::BadInputFile {
            path: path.clone(),
            reason: format!("cannot be read: {e}"),
        })?),
        None => None,
    };
    let es = EsClient::connect_url(
        url,
        ca.as_deref(),
        &remote.remote_user,
        &password,
        std::time::Duration::from_secs(15),
    )
    .await
    .map_err(|e| UserError::RemoteApi {
        url: url.to_string(),
        reason: format!("{e:#}"),
    })?;
    es.get("/").await.map_err(|e| UserError::RemoteApi {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    Ok(es)
}

async fn remote_key_active(es: &EsClient, id: &str) -> bool {
    es.get(&format!("/_security/api_key?id={id}"))
        .await
        .ok()
        .and_then(|found| found["api_keys"].as_array()?.first().cloned())
        .is_some_and(|key| key["invalidated"] == serde_json::Value::Bool(false))
}

/// `link LOCAL --external ALIAS`: the local half of an API-key link to a cluster outside every
/// kubeconfig context, with the key and CA the user hands over.
pub async fn link_external(target: &mutate::Target, args: &LinkArgs) -> anyhow::Result<ExitCode> {
    if args.security == Some(plan::SecurityModel::Certificate) {
        return link_external_certificate(target, args).await;
    }
    let flags = &args.mutation;
    let alias = args.external.clone().unwrap_or_default();
    // Checked before anything is read from the cluster, let alone written.
    let ca_path = args.ca_file.as_deref().unwrap_or(std::path::Path::new(""));
    let ca = match (&args.ca_file, args.public_ca) {
        (Some(_), _) => Some(crate::external::read_ca_file(
            ca_path,
            jiff::Timestamp::now(),
        )?),
        (None, true) => None,
        (None, false) => return Err(UserError::MissingCa.into()),
    };
    let source = key_source(target, args, &alias).await?;
    let request = plan::ExternalRequest {
        alias: alias.clone(),
        proxy_address: args.proxy_address.clone().unwrap_or_default(),
        server_name: args.server_name.clone(),
        ca,
        key_id: source.id.clone(),
        key_created_at: source.created_at.clone(),
        skip_unavailable: args.skip_unavailable,
    };
    let key = source.encoded.clone();
    let given = BTreeMap::from([(plan::OUTPUT_KEY_ENCODED.to_string(), key)]);
    let client = &target.client;
    let applied = mutate::plan_and_apply_given(&[client], flags, &given, || {
        let request = &request;
        async move {
            let local = mutate::read_es(client, &target.namespace, &args.local).await?;
            let secrets = Api::<Secret>::namespaced(client.client.clone(), &target.namespace);
            let maps = Api::<ConfigMap>::namespaced(client.client.clone(), &target.namespace);
            let credentials_name = plan::credentials_secret_name(&local.id);
            let bundle_name = plan::ca_bundle_name(&local.id);
            let (operator, credentials, bundle, settings) = tokio::join!(
                eck::operator_facts(client),
                client.call(secrets.get_opt(&credentials_name)),
                client.call(maps.get_opt(&bundle_name)),
                alias_settings(client, &local, &request.alias),
            );
            let credentials = credentials?;
            let observed = plan::ExternalObserved {
                stored_key_id: credentials
                    .as_ref()
                    .and_then(|s| stored_key_id(s, &request.alias)),
                credentials_secret: credentials.map(without_values),
                ca_bundle: bundle?.map(to_value),
                local_alias_settings: settings,
                operator,
                local,
            };
            Ok(plan::plan_external_link(&observed, request).map_err(UserError::from)?)
        }
    })
    .await;
    let applied = match applied {
        Ok(applied) => applied,
        Err(err) => {
            source.undo_if_unused(target, args).await;
            return Err(err);
        }
    };
    let local_id = id(client, &target.namespace, &args.local);
    say_external_linked(&local_id, &alias, &applied.planned, flags);
    let connected = mutate::wait_until_connected(client, flags, &local_id, &alias, &[]).await?;
    print_external_result(&local_id, &alias, &applied, flags, connected)?;
    Ok(ExitCode::Ok)
}

/// What a link to a cluster outside Kubernetes did, on stderr.
fn say_external_linked(
    local_id: &plan::ClusterId,
    alias: &str,
    planned: &plan::LinkPlan,
    flags: &crate::cli::MutationFlags,
) {
    if planned.plan.is_empty() {
        output::info(&format!(
            "Remote cluster {alias:?} is already linked from {local_id}: nothing to change."
        ));
    } else if flags.dry_run == crate::apply::DryRun::None {
        output::info(&format!(
            "Linked {local_id} to the external cluster {alias:?} ({} security model, proxy mode).",
            planned.security
        ));
    }
}

/// `-o json|yaml` of a link to a cluster outside Kubernetes.
fn print_external_result(
    local_id: &plan::ClusterId,
    alias: &str,
    applied: &mutate::Applied<plan::LinkPlan>,
    flags: &crate::cli::MutationFlags,
    connected: Option<bool>,
) -> anyhow::Result<()> {
    if let Some(format) = flags.output {
        output::print_document(
            &serde_json::json!({
                "apiVersion": API_VERSION,
                "kind": "LinkResult",
                "local": local_id,
                "external": alias,
                "security": applied.planned.security,
                "dryRun": flags.dry_run,
                "plan": applied.planned.plan,
                "writes": applied.writes,
                "connected": connected,
            }),
            format,
        )?;
    }
    Ok(())
}

/// `link LOCAL --external ALIAS --security certificate`: the local trusts the remote's transport
/// CA and connects to its transport; the remote's administrator must trust the local's CA, which
/// is printed on stdout for them.
async fn link_external_certificate(
    target: &mutate::Target,
    args: &LinkArgs,
) -> anyhow::Result<ExitCode> {
    let flags = &args.mutation;
    let alias = args.external.clone().unwrap_or_default();
    let Some(ca_path) = &args.ca_file else {
        return Err(UserError::MissingCa.into());
    };
    let remote_ca = crate::external::read_ca_file(ca_path, jiff::Timestamp::now())?;
    let subjects = crate::commands::export::restriction_subjects(&args.restriction)?;
    let proxy_address = args.proxy_address.clone().unwrap_or_default();
    let client = &target.client;
    // This cluster's transport CA as the planning read it, to hand over once applied.
    let own_ca: std::cell::RefCell<Option<RemoteCa>> = Default::default();
    let applied = mutate::plan_and_apply(&[client], flags, || {
        let (alias, remote_ca, proxy_address, subjects, own_ca) =
            (&alias, &remote_ca, &proxy_address, &subjects, &own_ca);
        async move {
            let local = mutate::read_es(client, &target.namespace, &args.local).await?;
            let (operator, settings) = tokio::join!(
                eck::operator_facts(client),
                alias_settings(client, &local, alias),
            );
            let side = trust_side(client, local).await?;
            own_ca.replace(side.own_ca.clone());
            let restricted = restricted_when_asked(client, &side, subjects.as_ref()).await?;
            let restriction = restriction(restricted.as_ref(), subjects.as_ref());
            let request = plan::ExternalCertificateRequest {
                alias,
                proxy_address,
                remote_ca,
                skip_unavailable: args.skip_unavailable,
                restriction,
            };
            Ok(
                plan::plan_external_certificate_link(&side, &operator, &settings, request)
                    .map_err(UserError::from)?,
            )
        }
    })
    .await?;
    let local_id = id(client, &target.namespace, &args.local);
    say_external_linked(&local_id, &alias, &applied.planned, flags);
    if let Some(own) = own_ca.into_inner() {
        output::info(&format!(
            "The remote connects back only once its administrator trusts this cluster's transport CA (sha256:{}), printed on stdout; then check with `kubectl remote-cluster describe {}`.",
            own.fingerprint, args.local
        ));
        if flags.output.is_none() {
            output::write_stdout(&own.pem)?;
        }
    }
    print_external_result(&local_id, &alias, &applied, flags, None)?;
    Ok(ExitCode::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_a_url_are_noticed() {
        for url in [
            "https://elastic:s3cret@es.example:9243",
            "https://elastic@es.example",
            "elastic:pw@es.example:9200/path",
        ] {
            assert!(url_has_credentials(url), "{url}");
        }
        for url in [
            "https://es.example:9243",
            "https://es.example/_search?q=a@b",
            "https://[::1]:9200/#x@y",
        ] {
            assert!(!url_has_credentials(url), "{url}");
        }
    }
}
