//! The workflows: one module per scenario, each observing, planning and applying for the
//! domain request a command hands it. What they share is here: the session a command works in,
//! showing the plan, asking, applying with re-plans on conflict, and waiting for the result.

pub mod cross;
pub mod export;
pub mod external;
pub mod request;
pub mod same_operator;
pub mod trust;

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use crate::apply::DryRun;
use crate::error::UserError;
use crate::es::EsPool;
use crate::k8s::access;
use crate::k8s::clients::{ClientPool, ContextClient};
use crate::k8s::eck;
use crate::k8s::kubeconfig;
use crate::output;
use crate::plan::{Change, ClusterId, ObjectKind, Plan};

use request::{MutationOptions, Scope};

/// How many times a plan is re-made after a concurrent edit before giving up.
pub const MAX_ATTEMPTS: usize = 5;

/// The one context a mutating command works in: its client, its namespace, the clients of
/// other contexts it reaches, and one Elasticsearch connection per cluster for the whole command.
pub struct Session {
    pub scope: Scope,
    pub pool: ClientPool,
    pub client: ContextClient,
    pub namespace: String,
    pub es: EsPool,
}

impl Session {
    pub async fn open(scope: &Scope, command: &'static str) -> anyhow::Result<Session> {
        if scope.contexts.len() > 1 {
            return Err(UserError::OneContext { command }.into());
        }
        let kubeconfig = scope.kubeconfig.clone();
        let context = kubeconfig
            .select_contexts(&scope.contexts, false)?
            .remove(0);
        let timeout = kubeconfig::parse_request_timeout(&scope.request_timeout)?;
        let namespace = scope
            .namespace
            .clone()
            .unwrap_or_else(|| kubeconfig.namespace_of(&context));
        let pool = ClientPool::new(kubeconfig, timeout);
        let client = pool.client(&context).await?;
        Ok(Session {
            scope: scope.clone(),
            pool,
            client,
            namespace,
            es: EsPool::new(),
        })
    }
}

/// The API resource of a kind of object the plugin writes.
fn object_resource(object: ObjectKind) -> &'static str {
    match object {
        ObjectKind::Secret => "secrets",
        ObjectKind::ConfigMap => "configmaps",
        ObjectKind::Service => "services",
    }
}

/// Refuses early, with the verb named, when RBAC would deny a write the plan makes.
pub async fn check_may_write(
    client_for: &dyn Fn(&str) -> Option<ContextClient>,
    plan: &Plan,
) -> anyhow::Result<()> {
    let mut needed: Vec<(String, String, &str, &str, &str)> = Vec::new();
    for step in &plan.steps {
        let (verb, group, resource) = match &step.change {
            Change::PatchElasticsearch { .. } => ("patch", eck::GROUP, eck::PLURAL),
            Change::ApplyObject {
                object,
                resource_version,
                ..
            } => (
                if resource_version.is_some() {
                    "patch"
                } else {
                    "create"
                },
                "",
                object_resource(*object),
            ),
            Change::CreateService { .. } => ("create", "", "services"),
            Change::DeleteObject { object, .. } => ("delete", "", object_resource(*object)),
            _ => continue,
        };
        let entry = (
            step.cluster.context.clone(),
            step.cluster.namespace.clone(),
            verb,
            group,
            resource,
        );
        if !needed.contains(&entry) {
            needed.push(entry);
        }
    }
    for (context, namespace, verb, group, resource) in needed {
        let Some(client) = client_for(&context) else {
            continue;
        };
        if access::may(&client, verb, group, resource, &namespace).await == Some(false) {
            let resource = if group.is_empty() {
                resource.to_string()
            } else {
                format!("{resource}.{group}")
            };
            return Err(UserError::Forbidden {
                context,
                verb: verb.into(),
                resource,
                namespace,
            }
            .into());
        }
    }
    Ok(())
}

/// What a plan-and-apply run ended with.
pub struct Applied<P> {
    pub planned: P,
    /// Writes sent (with `dryRun=All` under `--dry-run=server`).
    pub writes: usize,
    /// Values the steps produced (an address, an API key).
    pub outputs: std::collections::BTreeMap<String, secrecy::SecretString>,
}

/// Plans from fresh reads, shows the plan, asks, applies; after a concurrent edit, reads and
/// plans again, up to [`MAX_ATTEMPTS`] times. An empty plan applies nothing. `clients` holds
/// the client of every context the plan may touch.
pub async fn plan_and_apply<P, F, Fut>(
    clients: &[&ContextClient],
    es: &EsPool,
    flags: &MutationOptions,
    make_plan: F,
) -> anyhow::Result<Applied<P>>
where
    P: crate::plan::Planned,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<P>>,
{
    plan_and_apply_given(clients, es, flags, &Default::default(), make_plan).await
}

/// [`plan_and_apply`] with values known beforehand (a key the user handed over) that the plan
/// names as outputs.
pub async fn plan_and_apply_given<P, F, Fut>(
    clients: &[&ContextClient],
    es: &EsPool,
    flags: &MutationOptions,
    given: &std::collections::BTreeMap<String, secrecy::SecretString>,
    mut make_plan: F,
) -> anyhow::Result<Applied<P>>
where
    P: crate::plan::Planned,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<P>>,
{
    let deadline = std::time::Instant::now() + parse_wait_timeout(&flags.timeout)?;
    let client_for = |context: &str| {
        clients
            .iter()
            .find(|c| c.context == context)
            .map(|c| (*c).clone())
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let planned = make_plan().await?;
        let plan = planned.plan();
        if plan.is_empty() {
            return Ok(Applied {
                planned,
                writes: 0,
                outputs: Default::default(),
            });
        }
        if attempt == 1 {
            check_may_write(&client_for, plan).await?;
            show(plan, flags.dry_run);
            confirm(plan, flags)?;
        }
        match crate::apply::apply(plan, &client_for, es, flags.dry_run, deadline, given).await {
            Ok(outcome) => {
                return Ok(Applied {
                    planned,
                    writes: outcome.writes,
                    outputs: outcome.outputs,
                });
            }
            Err(conflict @ crate::apply::ApplyError::Conflict(_)) if attempt < MAX_ATTEMPTS => {
                output::warning(&format!("{conflict}; reading it again and re-planning"));
            }
            Err(partial @ crate::apply::ApplyError::Partial { .. }) => {
                return Err(anyhow::anyhow!("{partial}: {}", rerun_command()));
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// The command line that was run, as a user would type it again.
fn rerun_command() -> String {
    let words: Vec<String> = std::env::args()
        .skip(1)
        .map(|word| {
            if word
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_=.,/:@".contains(c))
            {
                word
            } else {
                format!("'{}'", word.replace('\'', "'\\''"))
            }
        })
        .collect();
    format!("kubectl remote-cluster {}", words.join(" "))
}

/// Prints the plan and its warnings on stderr.
pub fn show(plan: &Plan, dry_run: DryRun) {
    for warning in &plan.warnings {
        output::warning(warning);
    }
    let heading = match dry_run {
        DryRun::Client => "Plan (dry run, nothing will be written):",
        DryRun::Server => "Plan (server dry run, validated by the API server, nothing saved):",
        DryRun::None => "Plan:",
    };
    output::info(heading);
    for line in crate::plan::render(plan).lines() {
        output::info(line);
    }
}

/// Asks before a plan that restarts nodes; refuses without a terminal unless `--yes`.
pub fn confirm(plan: &Plan, flags: &MutationOptions) -> anyhow::Result<()> {
    let restarting: Vec<String> = plan.restarts().iter().map(|c| c.to_string()).collect();
    if restarting.is_empty() || flags.yes || flags.dry_run != DryRun::None {
        return Ok(());
    }
    let clusters = restarting.join(", ");
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(UserError::NeedsConfirmation { clusters }.into());
    }
    eprint!("Elasticsearch nodes of {clusters} will restart (rolling). Apply? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(UserError::NotConfirmed.into())
    }
}

/// `--timeout`: a Go duration; `0` is no limit.
pub fn parse_wait_timeout(value: &str) -> anyhow::Result<Duration> {
    crate::input::wait_timeout(value).map_err(|reason| {
        UserError::InvalidWaitTimeout {
            value: value.to_string(),
            reason,
        }
        .into()
    })
}

pub use crate::apply::wait::{Progress, wait_for_connection, wait_for_rollout};

/// The client of a remote context, from `--remote-kubeconfig` or the same kubeconfig; `None`
/// without `--remote-context`.
pub async fn remote_client(
    session: &Session,
    context: Option<&str>,
    remote_kubeconfig: Option<&std::path::Path>,
) -> anyhow::Result<Option<ContextClient>> {
    let Some(context) = context else {
        return Ok(None);
    };
    let client = context_client(session, context, remote_kubeconfig).await?;
    Ok(Some(client?))
}

/// The client of `context`, from `remote_kubeconfig` or the same kubeconfig (then shared with
/// the target's pool). The outer error is a kubeconfig the user got wrong; the inner one, a
/// context that cannot be reached.
pub async fn context_client(
    session: &Session,
    context: &str,
    remote_kubeconfig: Option<&std::path::Path>,
) -> anyhow::Result<Result<ContextClient, crate::k8s::failure::ContextFailure>> {
    Ok(match remote_kubeconfig {
        None => {
            session
                .scope
                .kubeconfig
                .select_contexts(&[context.to_string()], false)?;
            session.pool.client(context).await
        }
        Some(path) => {
            let config = std::sync::Arc::new(kubeconfig::load(Some(path))?);
            config.select_contexts(&[context.to_string()], false)?;
            let timeout = kubeconfig::parse_request_timeout(&session.scope.request_timeout)?;
            ClientPool::new(config, timeout).client(context).await
        }
    })
}

/// Two contexts on one API server are one Kubernetes cluster, whatever their names.
pub fn same_server(a: &ContextClient, b: &ContextClient) -> bool {
    kubeconfig::server_identity(&a.server) == kubeconfig::server_identity(&b.server)
}

/// With `--wait` (and not a dry run): waits for the rollouts of `rollouts`, then until `alias`
/// is connected on `local`, with progress on stderr, and says so. `Some(true)` when it waited.
pub async fn wait_until_connected(
    client: &ContextClient,
    es: &EsPool,
    flags: &MutationOptions,
    local: &ClusterId,
    alias: &str,
    rollouts: &[ClusterId],
) -> anyhow::Result<Option<bool>> {
    if !flags.wait || flags.dry_run != DryRun::None {
        return Ok(None);
    }
    let deadline = std::time::Instant::now() + parse_wait_timeout(&flags.timeout)?;
    let mut progress = Progress::new();
    for cluster in rollouts {
        wait_for_rollout(client, cluster, deadline, &mut progress).await?;
    }
    wait_for_connection(client, es, local, alias, deadline, &mut progress).await?;
    progress.finish();
    output::info(&format!("Remote cluster {alias:?} is connected."));
    Ok(Some(true))
}

/// `link`: to a cluster outside Kubernetes, across Kubernetes clusters, or within one.
pub async fn link(scope: &Scope, args: &request::LinkRequest) -> anyhow::Result<request::Outcome> {
    // A bad --timeout is refused before anything is read or written.
    parse_wait_timeout(&args.mutation.timeout)?;
    if args.restriction.given()
        && (args.external.is_none()
            || args.security != Some(crate::plan::SecurityModel::Certificate))
    {
        return Err(UserError::TrustWithoutCertificate.into());
    }
    let session = Session::open(scope, "link").await?;
    let remote_namespace = args
        .remote_namespace
        .clone()
        .unwrap_or_else(|| session.namespace.clone());
    if args.external.is_some() {
        return external::link(&session, args).await;
    }
    let remote_client = remote_client(
        &session,
        args.remote_context.as_deref(),
        args.remote_kubeconfig.as_deref(),
    )
    .await?;
    if let Some(remote) = &remote_client
        && !same_server(&session.client, remote)
    {
        let sides = crate::observe::Sides {
            local: &session.client,
            local_namespace: &session.namespace,
            local_name: &args.local,
            remote,
            remote_namespace: &remote_namespace,
            remote_name: args.remote_name(),
            es: &session.es,
        };
        return cross::link(&sides, args).await;
    }
    same_operator::link(&session, args, &remote_namespace).await
}

/// `unlink`: from the plugin's record on the local resource, the workflow that made the link.
pub async fn unlink(
    scope: &Scope,
    args: &request::UnlinkRequest,
) -> anyhow::Result<request::Outcome> {
    parse_wait_timeout(&args.mutation.timeout)?;
    let session = Session::open(scope, "unlink").await?;
    let local = crate::observe::read_es(&session.client, &session.namespace, &args.local).await?;
    if let Some(record) = local.plugin_links().get(&args.alias)
        && record.proxy_address.is_some()
    {
        return cross::unlink(&session, args, record.clone()).await;
    }
    same_operator::unlink(&session, args).await
}
