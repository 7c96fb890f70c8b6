//! `kubectl remote-cluster describe NAME`: one cluster's links, both ways, with live state.

use std::sync::Arc;

use crate::cli::{DescribeArgs, GlobalFlags};
use crate::output::API_VERSION;
use crate::workflow::Session;
use std::collections::BTreeMap;

use crate::describe::{self, CurrentCa, Observed, Report};
use crate::error::ExitCode;
use crate::k8s::eck;
use crate::k8s::kubeconfig::LoadedKubeconfig;
use crate::output::{self, Cell, Table};
use crate::plan::{ClusterId, EsState};

pub async fn run(
    global: &GlobalFlags,
    args: &DescribeArgs,
    kubeconfig: Arc<LoadedKubeconfig>,
) -> anyhow::Result<ExitCode> {
    // The first context holds the cluster; any others, and all with --all-contexts, are looked
    // in for links to it.
    let mut own = global.clone();
    own.contexts.truncate(1);
    let target = Session::open(&own.scope(kubeconfig.clone()), "describe").await?;
    let client = &target.client;
    let es = crate::observe::read_es(client, &target.namespace, &args.name).await?;
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
    let operator = eck::operator_facts(client, &target.namespace).await;
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
    let remote_cas = remote_cas(&target, &es).await;
    let peers: Vec<String> = if args.all_contexts {
        kubeconfig.context_names()
    } else {
        global.contexts.iter().skip(1).cloned().collect()
    };
    let incoming_elsewhere = incoming_from(&target, &kubeconfig, &peers, &es).await;
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
    let report = describe::build(
        &Observed {
            pending: &pending,
            es: &es,
            others: &others,
            remote_info: remote_info.as_ref(),
            license_level: operator.license_level.as_deref(),
            remote_cas: &remote_cas,
            incoming_elsewhere: &incoming_elsewhere,
            restricted: restricted.as_ref(),
        },
        API_VERSION,
    );
    match args.output {
        Some(format) => output::print_document(&report, format.into())?,
        None => output::write_stdout(&render(&report))?,
    }
    Ok(if report.has_broken_link() {
        ExitCode::NotConnected
    } else if !report.live {
        ExitCode::Failure
    } else {
        ExitCode::Ok
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

fn dash(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".to_string())
}

/// The human view: a header, then one table per direction.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Name:                   {}\n",
        report.cluster.name
    ));
    out.push_str(&format!(
        "Namespace:              {}\n",
        report.cluster.namespace
    ));
    out.push_str(&format!(
        "Context:                {}\n",
        report.cluster.context
    ));
    out.push_str(&format!(
        "Version:                {} (health {}, phase {})\n",
        dash(&report.version),
        dash(&report.health),
        dash(&report.phase)
    ));
    out.push_str(&format!(
        "Remote cluster server:  {}\n",
        if report.remote_cluster_server {
            "on"
        } else {
            "off"
        }
    ));
    out.push_str("\nOutgoing links:\n");
    if report.outgoing.is_empty() {
        out.push_str("  none\n");
    } else {
        let mut table = Table::new(vec![
            "ALIAS",
            "REMOTE",
            "SECURITY",
            "MODE",
            "MANAGED-BY",
            "CONNECTED",
            "PROBLEM",
        ]);
        for link in &report.outgoing {
            let connected = match link.connected {
                Some(true) => Cell::styled("yes", output::health_style("green")),
                Some(false) => Cell::styled("no", output::health_style("red")),
                None => Cell::from("unknown"),
            };
            table.push(vec![
                link.alias.clone().into(),
                link.remote.clone().into(),
                link.security
                    .map_or("-".to_string(), |s| s.to_string())
                    .into(),
                dash(&link.mode).into(),
                link.managed_by.label().into(),
                connected,
                dash(&link.problem).into(),
            ]);
        }
        for line in table.render(true).lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    let trusted: Vec<&describe::OutgoingLink> = report
        .outgoing
        .iter()
        .filter(|l| l.trust.is_some())
        .collect();
    if !trusted.is_empty() {
        out.push_str("\nTrust (links across Kubernetes clusters):\n");
        for link in trusted {
            let trust = link.trust.as_ref().expect("filtered");
            let state = match (&trust.current_fingerprint, trust.stale) {
                (None, _) => "the remote's current CA could not be read".to_string(),
                (Some(_), false) => format!(
                    "current, expires {}",
                    trust.current_not_after.as_deref().unwrap_or("-")
                ),
                (Some(now), true) => format!(
                    "STALE: the remote's CA is now sha256:{now}; run the same link again to refresh"
                ),
            };
            out.push_str(&format!(
                "  {}: trusts CA sha256:{} ({state})\n",
                link.alias, trust.trusted_fingerprint
            ));
        }
    }
    if let Some(restriction) = &report.trust_restriction {
        out.push_str(&format!(
            "\nTransport trust restricted by node name (ConfigMap {}):\n",
            restriction.config_map
        ));
        for (peer, patterns) in &restriction.peers {
            out.push_str(&format!("  {peer}: {}\n", patterns.join(", ")));
        }
        out.push_str(&format!(
            "  accepted on the transport: {}\n",
            restriction.subject_names.join(", ")
        ));
    }
    out.push_str("\nIncoming links:\n");
    if report.incoming.is_empty() {
        out.push_str("  none\n");
    } else {
        let mut table = Table::new(vec!["FROM", "ALIAS", "SECURITY"]);
        for link in &report.incoming {
            table.push(vec![
                link.from.clone().into(),
                link.alias.clone().into(),
                link.security.to_string().into(),
            ]);
        }
        for line in table.render(true).lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    for note in &report.notes {
        out.push_str(&format!("\nNote: {note}\n"));
    }
    out
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
        for alias in &aliases {
            let _ = es_client.get(&crate::plan::reconnect_path(alias)).await;
        }
        return es_client.get("/_remote/info").await.unwrap_or(info);
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
