//! What `describe` and `check` read about one cluster's links: the resource, the other
//! Elasticsearch of its context, `_remote/info` with `_resolve/cluster` merged in, the remote
//! CAs of links across Kubernetes clusters, incoming links recorded elsewhere, the restricted
//! transport trust and interrupted operations.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Session;
use crate::describe::{self, CurrentCa, Observed, Report};
use crate::k8s::eck;
use crate::k8s::kubeconfig::LoadedKubeconfig;
use crate::output;
use crate::plan::{ClusterId, EsState};

/// Everything read about `es`'s links.
pub struct LinksObserved {
    pub es: EsState,
    pub others: Vec<EsState>,
    pub remote_info: Option<Value>,
    pub license_level: Option<String>,
    pub remote_cas: BTreeMap<String, CurrentCa>,
    /// For API-key links across Kubernetes clusters, by alias: the address the remote's
    /// remote cluster server is exposed at now.
    pub remote_addresses: BTreeMap<String, String>,
    pub incoming_elsewhere: Vec<describe::IncomingLink>,
    pub restricted: Option<crate::plan::RestrictedObserved>,
    pub pending: Vec<crate::plan::PendingOperation>,
}

impl LinksObserved {
    /// `describe`'s report of what was read.
    pub fn report(&self, api_version: &'static str) -> Report {
        describe::build(
            &Observed {
                pending: &self.pending,
                es: &self.es,
                others: &self.others,
                remote_info: self.remote_info.as_ref(),
                license_level: self.license_level.as_deref(),
                remote_cas: &self.remote_cas,
                incoming_elsewhere: &self.incoming_elsewhere,
                restricted: self.restricted.as_ref(),
            },
            api_version,
        )
    }
}

/// Reads what `describe` shows of `es` (in `target`'s context); `peers` are the other contexts
/// looked in for links to it.
pub async fn observe(
    target: &Session,
    kubeconfig: &LoadedKubeconfig,
    peers: &[String],
    es: EsState,
) -> anyhow::Result<LinksObserved> {
    let client = &target.client;
    let others: Vec<EsState> = eck::list_raw(client)
        .await?
        .into_iter()
        .filter_map(|object| {
            let id = ClusterId {
                context: client.context.clone(),
                namespace: object.pointer("/metadata/namespace")?.as_str()?.to_string(),
                name: object.pointer("/metadata/name")?.as_str()?.to_string(),
            };
            (id != es.id).then_some(EsState { id, object })
        })
        .collect();
    let operator = eck::operator_facts(client, &es.id.namespace).await;
    let remote_info = match target.es.client(client, &es.id).await {
        Ok(es_client) => match es_client.get("/_remote/info").await {
            Ok(info) => Some(with_resolved(&es_client, &es, info).await),
            Err(err) => {
                output::warning(&format!("cannot read _remote/info: {err}"));
                None
            }
        },
        Err(err) => {
            output::warning(&format!("cannot reach Elasticsearch {}: {err}", es.id));
            None
        }
    };
    let (remote_cas, remote_addresses) =
        tokio::join!(remote_cas(target, &es), remote_addresses(target, &es));
    let incoming_elsewhere = incoming_from(target, kubeconfig, peers, &es).await;
    let restricted = if crate::plan::uses_restricted_trust(&es) {
        let side = crate::observe::trust_side(client, es.clone()).await?;
        Some(crate::observe::restricted_side(client, &side).await?)
    } else {
        None
    };
    let pending = crate::observe::pending_operations(client, &es.id)
        .await
        .unwrap_or_else(|err| {
            output::warning(&format!(
                "cannot list ConfigMaps in {} to find interrupted links: {err}",
                es.id.namespace
            ));
            Vec::new()
        });
    Ok(LinksObserved {
        es,
        others,
        remote_info,
        license_level: operator.license_level,
        remote_cas,
        remote_addresses,
        incoming_elsewhere,
        restricted,
        pending,
    })
}

/// For each link the plugin made to another Kubernetes cluster, the remote's CA as it is now
/// (read in the remote's context from the same kubeconfig), to tell a stale copy.
async fn remote_cas(session: &Session, es: &EsState) -> BTreeMap<String, CurrentCa> {
    let links: Vec<(String, crate::plan::LinkRecord)> = es
        .plugin_links()
        .into_iter()
        .filter(|(_, r)| r.proxy_address.is_some() && r.problem().is_none())
        .collect();
    let reads = links.iter().map(|(alias, record)| async move {
        let context = crate::workflow::cross::context_of_record(session, record).await?;
        let client = session.pool.client(&context).await.ok()?;
        let ca = crate::observe::read_transport_ca(
            &client,
            &record.remote_namespace,
            &record.remote_name,
        )
        .await
        .ok()??;
        Some((
            alias.clone(),
            CurrentCa {
                fingerprint: ca.fingerprint,
                not_after: not_after(ca.pem.as_bytes()),
            },
        ))
    });
    futures::future::join_all(reads)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// For each API-key link the plugin made to another Kubernetes cluster, the address the
/// remote's remote cluster server is exposed at now (read in the remote's context), to tell a
/// recorded `proxy_address` that no longer leads there.
async fn remote_addresses(session: &Session, es: &EsState) -> BTreeMap<String, String> {
    let links: Vec<(String, crate::plan::LinkRecord)> = es
        .plugin_links()
        .into_iter()
        .filter(|(_, r)| {
            r.proxy_address.is_some()
                && r.security == crate::plan::SecurityModel::ApiKey
                && !crate::plan::is_external(r)
                && r.problem().is_none()
        })
        .collect();
    let reads = links.iter().map(|(alias, record)| async move {
        let context = crate::workflow::cross::context_of_record(session, record).await?;
        let client = session.pool.client(&context).await.ok()?;
        let operator = eck::operator_facts(&client, &record.remote_namespace).await;
        let remote = ClusterId {
            context,
            namespace: record.remote_namespace.clone(),
            name: record.remote_name.clone(),
        };
        let (address, _) = crate::observe::server_exposure(&client, &remote, &operator)
            .await
            .ok()?;
        Some((alias.clone(), address?))
    });
    futures::future::join_all(reads)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Links to `es` recorded on the Elasticsearch resources of other Kubernetes clusters (the
/// plugin's link annotation names the remote's context, namespace and name).
async fn incoming_from(
    target: &Session,
    kubeconfig: &LoadedKubeconfig,
    peers: &[String],
    es: &EsState,
) -> Vec<describe::IncomingLink> {
    use crate::k8s::kubeconfig::server_identity;
    let here = server_identity(&target.client.server);
    let mut seen_servers = vec![here.clone()];
    let mut scans = Vec::new();
    for context in peers {
        let server = server_identity(&kubeconfig.server_of(context).unwrap_or_default());
        if seen_servers.contains(&server) {
            continue;
        }
        seen_servers.push(server);
        scans.push(async move {
            let client = target.pool.client(context).await.ok()?;
            let objects = eck::list_raw(&client).await.ok()?;
            Some((context.clone(), objects))
        });
    }
    let mut found = Vec::new();
    for (context, objects) in futures::future::join_all(scans).await.into_iter().flatten() {
        for object in objects {
            let Some(namespace) = object
                .pointer("/metadata/namespace")
                .and_then(|v| v.as_str())
            else {
                continue;
            };
            let Some(name) = object.pointer("/metadata/name").and_then(|v| v.as_str()) else {
                continue;
            };
            let state = EsState {
                id: ClusterId {
                    context: context.clone(),
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                },
                object: object.clone(),
            };
            for (alias, record) in state.plugin_links() {
                let record_server = server_identity(
                    &kubeconfig
                        .server_of(&record.remote_context)
                        .unwrap_or_default(),
                );
                if record_server == here
                    && record.remote_namespace == es.id.namespace
                    && record.remote_name == es.id.name
                {
                    found.push(describe::IncomingLink {
                        from: format!("{context}/{namespace}/{name}"),
                        alias,
                        security: record.security,
                    });
                }
            }
        }
    }
    found
}

/// `notAfter` of the first certificate of a PEM bundle, RFC 3339.
fn not_after(pem: &[u8]) -> Option<String> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    let certificate = block.parse_x509().ok()?;
    let seconds = certificate.validity().not_after.timestamp();
    jiff::Timestamp::from_second(seconds)
        .ok()
        .map(|t| t.to_string())
}

/// `_remote/info` with what `_resolve/cluster` (8.13+) says of each alias merged in: it makes
/// Elasticsearch attempt the connection (a failed attempt is not retried by itself, so
/// `_remote/info` alone can be stale) and names security errors, which leave `connected: true`.
async fn with_resolved(
    es_client: &crate::es::EsClient,
    es: &EsState,
    mut info: serde_json::Value,
) -> serde_json::Value {
    let version = es
        .object
        .pointer("/status/version")
        .and_then(serde_json::Value::as_str)
        .and_then(crate::versions::EsVersion::parse);
    let aliases: Vec<String> = info
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    if crate::plan::resolve_cluster_path(version.as_ref(), "").is_none() {
        // Before 8.13: ask each alias to connect again, then read the outcome.
        let aliases: Vec<&str> = aliases.iter().map(String::as_str).collect();
        return crate::apply::wait::reconnect_then_remote_info(es_client, &aliases)
            .await
            .unwrap_or(info);
    }
    for alias in aliases {
        let Some(path) = crate::plan::resolve_cluster_path(version.as_ref(), &alias) else {
            break;
        };
        let Ok(answer) = es_client.get(&path).await else {
            continue;
        };
        if let Some(resolved) = answer.get(&alias)
            && let Some(entry) = info
                .get_mut(&alias)
                .and_then(serde_json::Value::as_object_mut)
        {
            if let Some(connected) = resolved.get("connected") {
                entry.insert("connected".into(), connected.clone());
            }
            if let Some(error) = resolved.get("error") {
                entry.insert("error".into(), error.clone());
            }
        }
    }
    info
}

/// How far back `check` reads Warning events and pod logs.
const RECENT_SECONDS: i64 = 3600;
/// How many log lines `check` reads per pod, and from how many pods of a cluster.
const LOG_TAIL_LINES: i64 = 500;
const LOG_PODS: usize = 3;

/// `check`'s findings for `es`'s links: what `describe` reads, plus the recent Warning events of
/// the resource and the recent lines of its pods' logs.
pub async fn check(target: &Session, es: EsState) -> anyhow::Result<Vec<crate::check::Group>> {
    let kubeconfig = target.pool.kubeconfig();
    let observed = observe(target, kubeconfig, &[], es).await?;
    let report = observed.report(crate::output::API_VERSION);
    let id = &observed.es.id;
    let since = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(RECENT_SECONDS);
    let events: Vec<crate::check::Event> =
        eck::warning_events(&target.client, &id.namespace, &id.name, since)
            .await
            .into_iter()
            .map(|e| crate::check::Event {
                reason: e.reason,
                message: e.message,
            })
            .collect();
    let log_lines = eck::recent_pod_logs(
        &target.client,
        &id.namespace,
        &id.name,
        LOG_TAIL_LINES,
        RECENT_SECONDS,
        LOG_PODS,
    )
    .await;
    Ok(crate::check::check(&crate::check::Observed {
        report: &report,
        es: &observed.es,
        others: &observed.others,
        license_level: observed.license_level.as_deref(),
        remote_info: observed.remote_info.as_ref(),
        remote_addresses: &observed.remote_addresses,
        events: &events,
        log_lines: &log_lines,
    }))
}
