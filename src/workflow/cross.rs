//! Links between two ECK clusters in different Kubernetes clusters (or under different
//! operators): the API-key model with a remote cluster server exposed to the local, or the
//! certificate model with mutual transport trust.

use std::time::Instant;

use anyhow::Context as _;

use crate::error::UserError;
use crate::k8s::clients::ContextClient;
use crate::observe::{self, Sides, cluster_id};
use crate::output::{self, API_VERSION};
use crate::plan::{self, CrossRequest};
use crate::workflow::request::{LinkRequest, Outcome, UnlinkRequest};
use crate::workflow::same_operator::LinkResult;
use crate::workflow::{self, Progress, Session, external};

/// `link` across Kubernetes clusters: reads both sides, plans every step, applies, waits.
pub async fn link(sides: &Sides<'_>, args: &LinkRequest) -> anyhow::Result<Outcome> {
    let flags = &args.mutation;
    let certificate = args.security == Some(plan::SecurityModel::Certificate);
    // A bad --timeout is refused before anything is read or written.
    let deadline = Instant::now() + workflow::parse_wait_timeout(&flags.timeout)?;
    let request = CrossRequest {
        alias: args.alias.clone(),
        search_indices: args.search_indices.clone(),
        replication_indices: args.replication_indices.clone(),
        expose: args.expose,
        proxy_address: args.proxy_address.clone(),
        server_name: args.server_name.clone(),
        skip_unavailable: args.skip_unavailable,
    };
    let applied = workflow::plan_and_apply(&[sides.local, sides.remote], sides.es, flags, || {
        let request = &request;
        async move {
            let planned = if certificate {
                let observed =
                    observe::certificate_link(sides, args.alias.as_deref(), deadline).await?;
                let mut planned =
                    plan::plan_certificate_link(&observed, request).map_err(UserError::from)?;
                let (local, remote) = (&observed.local, &observed.remote);
                let (local_sync, remote_sync) = tokio::try_join!(
                    observe::restricted_peer_sync(sides.local, local, &remote.es),
                    observe::restricted_peer_sync(sides.remote, remote, &local.es),
                )?;
                planned
                    .plan
                    .steps
                    .splice(0..0, local_sync.into_iter().chain(remote_sync));
                Ok(planned)
            } else {
                let observed = observe::cross_link(sides, request, deadline).await?;
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
        local: cluster_id(sides.local, sides.local_namespace, &args.local),
        remote: cluster_id(sides.remote, sides.remote_namespace, args.remote_name()),
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
    }
    result.connected = workflow::wait_until_connected(
        sides.local,
        sides.es,
        flags,
        &result.local,
        &planned.alias,
        &[],
    )
    .await
    .map_err(|err| {
        workflow::applied_but_pending(
            err,
            &planned.plan,
            &format!("the connection of alias {:?}", planned.alias),
        )
    })?;
    // Said once the waits succeeded.
    if !planned.plan.is_empty() && flags.dry_run == crate::apply::DryRun::None {
        output::info(&format!(
            "Linked {} to {} as {:?} ({} security model, proxy mode).",
            result.local, result.remote, planned.alias, planned.security
        ));
    }
    Outcome::document(result)
}

/// `unlink` of a link made across Kubernetes clusters, from the record on the local resource.
pub async fn unlink(
    session: &Session,
    args: &UnlinkRequest,
    record: plan::LinkRecord,
) -> anyhow::Result<Outcome> {
    let target = session;
    let flags = &args.mutation;
    let local_client = &target.client;
    let remote_client = if args.local_only || plan::is_external(&record) {
        None
    } else {
        Some(recorded_remote(session, args, &record).await?)
    };
    let request = plan::CrossUnlinkRequest {
        alias: args.alias.clone(),
        disable_server: args.disable_server,
    };
    // Reached before any write, so that bad credentials change nothing.
    // (With no key recorded, an interrupted link may still have created one there.)
    let remote_api = match (&record.key_created_at, &args.remote_api.remote_url) {
        (created_at, Some(url))
            if plan::is_external(&record) && created_at.as_ref().is_none_or(|at| at == url) =>
        {
            Some((
                external::connect_remote_api(&args.remote_api, url).await?,
                url,
            ))
        }
        _ => None,
    };
    let mut clients = vec![local_client];
    clients.extend(remote_client.as_ref());
    let local = observe::Local {
        client: local_client,
        namespace: &target.namespace,
        name: &args.local,
        alias: &args.alias,
        es: &session.es,
        deadline: Instant::now() + workflow::parse_wait_timeout(&flags.timeout)?,
    };
    let applied = workflow::plan_and_apply(&clients, &session.es, flags, || {
        let (request, record, remote_client, local) =
            (&request, &record, remote_client.as_ref(), &local);
        async move {
            if record.security == plan::SecurityModel::Certificate {
                let observed = observe::certificate_unlink(local, remote_client, record).await?;
                return Ok(plan::plan_certificate_unlink(&observed, &args.alias));
            }
            let observed = observe::cross_unlink(local, remote_client, record).await?;
            Ok(plan::plan_cross_environment_unlink(&observed, request))
        }
    })
    .await?;
    if flags.dry_run == crate::apply::DryRun::None {
        remove_settings_of_a_racing_link(&local).await?;
    }
    let planned = applied.planned;
    let mut left_on_remote = planned.left_on_remote.clone();
    // A key the plugin created on a cluster outside Kubernetes: invalidated there when reachable.
    if let (Some((es, url)), crate::apply::DryRun::None) = (&remote_api, flags.dry_run) {
        if let (Some(id), Some(_)) = (&record.key_id, &record.key_created_at) {
            es.delete("/_security/api_key", &serde_json::json!({"ids": [id]}))
                .await
                .with_context(|| format!("invalidating the API key {id} on {url}"))?;
            output::info(&format!("Invalidated the API key {id} on {url}."));
            left_on_remote.retain(|l| !l.contains(id.as_str()));
        }
        let local_id = cluster_id(local_client, &target.namespace, &args.local);
        external::invalidate_link_keys(es, &plan::api_key_name(&local_id, &args.alias), None).await;
    }
    for left in &left_on_remote {
        output::warning(&format!("left on the remote: {left}"));
    }
    if flags.wait && flags.dry_run == crate::apply::DryRun::None {
        let deadline = Instant::now() + workflow::parse_wait_timeout(&flags.timeout)?;
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
            workflow::wait_for_rollout(client, cluster, deadline, &mut progress)
                .await
                .map_err(|err| {
                    workflow::applied_but_pending(
                        err,
                        &planned.plan,
                        &format!("the rolling restart of {cluster}"),
                    )
                })?;
        }
        progress.finish();
    }
    if flags.dry_run == crate::apply::DryRun::None {
        output::info(&format!(
            "Unlinked remote cluster {:?} from {}/{} (context {}).",
            args.alias, target.namespace, args.local, local_client.context
        ));
    }
    Outcome::document(serde_json::json!({
        "apiVersion": API_VERSION,
        "kind": "UnlinkResult",
        "local": cluster_id(local_client, &target.namespace, &args.local),
        "alias": args.alias,
        "dryRun": flags.dry_run,
        "plan": planned.plan,
        "leftOnRemote": planned.left_on_remote,
        "writes": applied.writes,
    }))
}

/// Cluster settings carry no resourceVersion: a `link` of the same alias racing this unlink
/// can write them after the unlink read them. Once the unlink has taken back every record of
/// the link (its own and the pending one), such settings would stay with nothing naming them,
/// so they are removed; a record written meanwhile by a newer link keeps them.
async fn remove_settings_of_a_racing_link(local: &observe::Local<'_>) -> anyhow::Result<()> {
    let es = observe::read_es(local.client, local.namespace, local.name).await?;
    if es.plugin_links().contains_key(local.alias)
        || observe::pending_operations(local.client, &es.id)
            .await?
            .iter()
            .any(|pending| pending.alias == local.alias)
    {
        return Ok(());
    }
    let left =
        observe::alias_settings(local.client, local.es, &es, local.alias, local.deadline).await?;
    if left.is_empty() {
        return Ok(());
    }
    let nulls: serde_json::Map<String, serde_json::Value> = left
        .keys()
        .map(|key| (key.clone(), serde_json::Value::Null))
        .collect();
    local
        .es
        .client(local.client, &es.id)
        .await?
        .put(
            "/_cluster/settings",
            &serde_json::json!({ "persistent": nulls }),
        )
        .await?;
    let keys: Vec<&str> = left.keys().map(String::as_str).collect();
    output::warning(&format!(
        "a link of {:?} running at the same time wrote its cluster settings after this unlink read them; removed them: {}",
        local.alias,
        keys.join(", ")
    ));
    Ok(())
}

/// The remote of a recorded link: the context given with `--remote-context`, else the recorded
/// context, else (a kubeconfig naming it differently) the context that reaches the recorded
/// cluster. Whatever is chosen must be that cluster, when the record says which it is.
async fn recorded_remote(
    session: &Session,
    args: &UnlinkRequest,
    record: &plan::LinkRecord,
) -> anyhow::Result<ContextClient> {
    let recorded = record.remote_identity();
    let kubeconfig = args.remote_kubeconfig.as_deref();
    let named = args.remote_context.as_deref();
    let context = match named {
        Some(context) => context.to_string(),
        None if kubeconfig.is_some() || knows_context(session, &record.remote_context) => {
            record.remote_context.clone()
        }
        None => match &recorded {
            Some(identity) => context_reaching(session, identity).await.ok_or_else(|| {
                UserError::RemoteContextNotFound {
                    context: record.remote_context.clone(),
                    server: identity.server.clone(),
                }
            })?,
            None => record.remote_context.clone(),
        },
    };
    let client = workflow::context_client(session, &context, kubeconfig)
        .await?
        .map_err(|f| observe::unreachable_remote(record, &f.message))?;
    if let Some(identity) = &recorded
        && !crate::k8s::clients::same_cluster(&client.identity().await, identity)
    {
        return Err(UserError::WrongRemoteCluster {
            context,
            server: identity.server.clone(),
        }
        .into());
    }
    if context != record.remote_context {
        output::info(&format!(
            "The link was made with context {:?}; using context {context:?}, which reaches the same cluster.",
            record.remote_context
        ));
    }
    Ok(client)
}

/// The context of this kubeconfig that reaches the remote of `record`: the recorded one when the
/// kubeconfig has it, else the one that reaches the recorded cluster (by identity).
pub async fn context_of_record(session: &Session, record: &plan::LinkRecord) -> Option<String> {
    if knows_context(session, &record.remote_context) {
        return Some(record.remote_context.clone());
    }
    context_reaching(session, &record.remote_identity()?).await
}

fn knows_context(session: &Session, context: &str) -> bool {
    session
        .scope
        .kubeconfig
        .context_names()
        .iter()
        .any(|name| name == context)
}

/// The first context of the session's kubeconfig (in name order) that reaches `identity`:
/// the contexts on the recorded server URL are tried first, then all the others together.
async fn context_reaching(session: &Session, identity: &plan::ClusterIdentity) -> Option<String> {
    let mut names = session.scope.kubeconfig.context_names();
    names.sort();
    let server = crate::k8s::kubeconfig::server_identity(&identity.server);
    let (same_url, others): (Vec<String>, Vec<String>) = names.into_iter().partition(|name| {
        session
            .scope
            .kubeconfig
            .server_of(name)
            .is_some_and(|url| crate::k8s::kubeconfig::server_identity(&url) == server)
    });
    for group in [same_url, others] {
        let checks = group.iter().map(|name| async move {
            let client = session.pool.client(name).await.ok()?;
            crate::k8s::clients::same_cluster(&client.identity().await, identity)
                .then(|| name.clone())
        });
        if let Some(found) = futures::future::join_all(checks)
            .await
            .into_iter()
            .flatten()
            .next()
        {
            return Some(found);
        }
    }
    None
}

/// `unlink --remote-only`: the remote's half of an API-key link, found through the remote's
/// record of the incoming link, for a local that is gone or out of reach (or was cleaned with
/// `--local-only`). The local side is only named (`--context`, `-n`, LOCAL); it is never
/// contacted.
pub async fn unlink_remote_only(
    scope: &workflow::Scope,
    args: &UnlinkRequest,
) -> anyhow::Result<Outcome> {
    let Some(remote_context) = args.remote_context.as_deref() else {
        return Err(UserError::RemoteOnlyNeedsRemoteContext.into());
    };
    let kubeconfig = &scope.kubeconfig;
    let local_context = kubeconfig
        .select_contexts(&scope.contexts, false)?
        .remove(0);
    let local = plan::ClusterId {
        namespace: scope
            .namespace
            .clone()
            .unwrap_or_else(|| kubeconfig.namespace_of(&local_context)),
        context: local_context,
        name: args.local.clone(),
    };
    let remote_scope = workflow::Scope {
        contexts: vec![remote_context.to_string()],
        namespace: None,
        ..scope.clone()
    };
    let session = match &args.remote_kubeconfig {
        None => Session::open(&remote_scope, "unlink").await?,
        Some(path) => {
            let loaded = crate::k8s::kubeconfig::load(Some(path))?;
            let remote_scope = workflow::Scope {
                kubeconfig: std::sync::Arc::new(loaded),
                ..remote_scope
            };
            Session::open(&remote_scope, "unlink").await?
        }
    };
    let entry = plan::incoming_key(&local, &args.alias);
    let key_name = plan::api_key_name(&local, &args.alias);
    let client = &session.client;
    let remote = observe::all_elasticsearches(client)
        .await?
        .into_iter()
        .find(|es| plan::incoming_key_id(es, &entry).is_some())
        .ok_or_else(|| UserError::NoIncomingLink {
            entry: entry.clone(),
            context: remote_context.to_string(),
        })?;
    let flags = &args.mutation;
    let request = plan::CrossUnlinkRequest {
        alias: args.alias.clone(),
        disable_server: args.disable_server,
    };
    let remote_id = remote.id.clone();
    let applied = workflow::plan_and_apply(&[client], &session.es, flags, || {
        let (request, local, remote_id, key_name, session) =
            (&request, &local, &remote_id, &key_name, &session);
        async move {
            let remote = observe::read_es(client, &remote_id.namespace, &remote_id.name).await?;
            let services = kube::api::Api::<k8s_openapi::api::core::v1::Service>::namespaced(
                client.client.clone(),
                &remote_id.namespace,
            );
            let service_name = plan::exposure_service_name(remote_id);
            let (others, service, es) = tokio::join!(
                observe::others_than(client, remote_id),
                client.call(services.get_opt(&service_name)),
                session.es.client(client, remote_id),
            );
            let es = es.map_err(|e| {
                e.context(format!("cannot read the link's API keys on {remote_id}"))
            })?;
            let observed = plan::RemoteOnlyObserved {
                local: local.clone(),
                remote,
                remote_others: others?,
                exposure_service: service?.map(|s| serde_json::to_value(s).unwrap_or_default()),
                active_link_keys: observe::plugin_keys_named(&es, key_name).await?,
            };
            Ok(workflow::PlanOnly(
                plan::plan_remote_only_unlink(&observed, request).map_err(UserError::from)?,
            ))
        }
    })
    .await?;
    if flags.dry_run == crate::apply::DryRun::None {
        output::info(&format!(
            "Removed the remote side of alias {:?} of {local} from {remote_id}; the local side was not contacted.",
            args.alias
        ));
    }
    Outcome::document(serde_json::json!({
        "apiVersion": API_VERSION,
        "kind": "UnlinkResult",
        "local": local,
        "remote": remote_id,
        "alias": args.alias,
        "remoteOnly": true,
        "dryRun": flags.dry_run,
        "plan": applied.planned.0,
        "writes": applied.writes,
    }))
}
