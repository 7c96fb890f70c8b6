//! The workflows: one module per scenario, each observing, planning and applying for the
//! domain request a command hands it. What they share is here: the session a command works in,
//! showing the plan, asking, applying with re-plans on conflict, and waiting for the result.

pub mod cross;
pub mod export;
pub mod external;
pub mod links;
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
        crate::interrupt::listen();
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

/// A plan with nothing decided along the way.
pub struct PlanOnly(pub Plan);

impl crate::plan::Planned for PlanOnly {
    fn plan(&self) -> &Plan {
        &self.0
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
    // One journal for every attempt: a re-plan after a conflict keeps what earlier attempts
    // applied, so a final failure takes that back too.
    let mut journal = crate::apply::Journal::default();
    // The restarting steps the user confirmed (or that --yes covers).
    let mut confirmed: Vec<(crate::plan::ClusterId, String)> = Vec::new();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let planned = match make_plan().await {
            Ok(planned) => planned,
            Err(err) if journal.is_empty() => return Err(err),
            Err(err) => return Err(fail(&mut journal, &client_for, es, &err.to_string()).await),
        };
        let plan = planned.plan();
        if plan.is_empty() {
            return Ok(Applied {
                planned,
                writes: journal.writes,
                outputs: Default::default(),
            });
        }
        let restarting: Vec<(crate::plan::ClusterId, String)> = plan
            .steps
            .iter()
            .filter(|s| s.restarts_nodes)
            .map(|s| (s.cluster.clone(), s.summary.clone()))
            .collect();
        if attempt == 1 {
            check_may_write(&client_for, plan).await?;
            show(plan, flags.dry_run);
            confirm(plan, flags)?;
        } else if restarting.iter().any(|r| !confirmed.contains(r)) {
            // The re-made plan restarts nodes the confirmed one did not: ask again.
            output::warning(
                "the plan changed after a concurrent edit and now restarts other nodes",
            );
            show(plan, flags.dry_run);
            if let Err(err) = confirm(plan, flags) {
                if journal.is_empty() {
                    return Err(err);
                }
                return Err(fail(&mut journal, &client_for, es, &err.to_string()).await);
            }
        }
        confirmed.extend(restarting);
        crate::interrupt::listen();
        crate::interrupt::applying(true, Some(rerun_command()));
        let applied = crate::apply::apply(
            plan,
            &client_for,
            es,
            flags.dry_run,
            deadline,
            given,
            &mut journal,
        )
        .await;
        crate::interrupt::applying(false, None);
        match applied {
            Ok(outcome) => {
                return Ok(Applied {
                    planned,
                    writes: journal.writes,
                    outputs: outcome.outputs,
                });
            }
            Err(conflict @ crate::apply::ApplyError::Conflict(_)) if attempt < MAX_ATTEMPTS => {
                output::warning(&format!("{conflict}; reading it again and re-planning"));
            }
            Err(crate::apply::ApplyError::Refused(why)) if journal.is_empty() => {
                return Err(UserError::BrokenReference(why).into());
            }
            Err(err) => {
                if journal.is_empty() {
                    return Err(err.into());
                }
                return Err(fail(&mut journal, &client_for, es, &err.to_string()).await);
            }
        }
    }
}

/// A command that stops after writes: takes back what the journal holds and says exactly what
/// was applied, what was undone and what is left. Never a user error (exit 2 means nothing was
/// written). Without writes, `cause` as it is.
async fn fail(
    journal: &mut crate::apply::Journal,
    client_for: &dyn Fn(&str) -> Option<ContextClient>,
    es: &EsPool,
    cause: &str,
) -> anyhow::Error {
    if journal.is_empty() {
        return anyhow::anyhow!("{cause}");
    }
    let report = journal.roll_back(client_for, es).await;
    if report.complete() {
        crate::interrupt::all_undone();
    }
    anyhow::anyhow!("{}", failure_message(cause, &report, &rerun_command()))
}

/// The message of a failure after writes, from what the undo verifiably left.
pub fn failure_message(cause: &str, report: &crate::apply::RollBack, rerun: &str) -> String {
    let count = report.applied.len();
    if report.complete() {
        return format!(
            "{cause}; the {count} steps already applied were undone: nothing changed (a re-read shows every value they changed back as it was)"
        );
    }
    let list = |items: &[String]| {
        if items.is_empty() {
            "none".to_string()
        } else {
            items.join("; ")
        }
    };
    let remove = match std::env::args().nth(1).as_deref() {
        Some("link") => {
            ", or remove the link with `kubectl remote-cluster unlink` (same local cluster and alias)"
        }
        Some("export") => {
            ", or remove it with `kubectl remote-cluster unexport` (same cluster and --for)"
        }
        _ => "",
    };
    let kept = if report.kept.is_empty() {
        String::new()
    } else {
        format!("; kept: {}", list(&report.kept))
    };
    if report.left.is_empty() {
        return format!(
            "{cause}; the {count} steps already applied were undone ({}){kept}",
            list(&report.undone)
        );
    }
    format!(
        "{cause}; {count} steps had been applied ({}); undone: {}{kept}; still left: {}; run `{rerun}` to finish{remove}",
        list(&report.applied),
        list(&report.undone),
        list(&report.left),
    )
}

/// A wait after the plan was applied failed: says what was applied (its steps) and what is
/// still pending, so the user knows the writes are in place. Exit 1, never a user error.
pub fn applied_but_pending(err: anyhow::Error, plan: &Plan, pending: &str) -> anyhow::Error {
    let steps: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| {
            !matches!(
                s.change,
                Change::WaitForRollout | Change::WaitForAddress { .. }
            )
        })
        .map(|s| format!("{} on {}", s.summary, s.cluster))
        .collect();
    // An unlink run again has nothing left to do (its record is gone), so it cannot wait.
    let next = if std::env::args().nth(1).as_deref() == Some("unlink") {
        "ECK finishes it on its own; `kubectl get elasticsearch --watch` shows when".to_string()
    } else {
        format!("run `{}` again to wait for it", rerun_command())
    };
    anyhow::anyhow!(
        "{err}; the plan was applied ({} steps: {}), but {pending} is still pending: {next}",
        steps.len(),
        steps.join("; "),
    )
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
    if deletes_after_restart(plan) {
        output::info(
            "Secrets and ConfigMaps are deleted only once the rolling restart before them has finished.",
        );
    }
}

/// Whether a Secret or ConfigMap is deleted after a restarting step of the plan: `apply` waits
/// for that rollout first.
fn deletes_after_restart(plan: &Plan) -> bool {
    plan.steps.iter().enumerate().any(|(at, step)| {
        matches!(
            step.change,
            Change::DeleteObject {
                object: ObjectKind::Secret | ObjectKind::ConfigMap,
                ..
            }
        ) && plan.steps[..at].iter().any(|s| s.restarts_nodes)
    })
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

/// Two contexts reaching one Kubernetes cluster, whatever their names or their spelling of the
/// server URL (compared by the cluster's `kube-system` UID when both can read it).
pub async fn same_cluster(a: &ContextClient, b: &ContextClient) -> bool {
    let (a, b) = tokio::join!(a.identity(), b.identity());
    crate::k8s::clients::same_cluster(&a, &b)
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
    let waited = async {
        for cluster in rollouts {
            wait_for_rollout(client, cluster, deadline, &mut progress).await?;
        }
        wait_for_connection(client, es, local, alias, deadline, &mut progress).await
    }
    .await;
    if let Err(err) = waited {
        if crate::interrupt::requested() {
            return Err(anyhow::anyhow!(
                "{err}: every change is applied and stays; see whether {alias:?} connects with `kubectl remote-cluster describe {} -n {} --context {}`",
                local.name,
                local.namespace,
                local.context
            ));
        }
        return Err(err);
    }
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
        && !same_cluster(&session.client, remote).await
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
    if args.remote_only {
        return cross::unlink_remote_only(scope, args).await;
    }
    let session = Session::open(scope, "unlink").await?;
    let local = crate::observe::read_es(&session.client, &session.namespace, &args.local).await?;
    if let Some(record) = local.plugin_links().get(&args.alias) {
        usable_record(
            record,
            &args.alias,
            &local.id.to_string(),
            crate::plan::LINKS_ANNOTATION,
        )?;
        if record.proxy_address.is_some() {
            return cross::unlink(&session, args, record.clone()).await;
        }
        return same_operator::unlink(&session, args).await;
    }
    // No record: a link or unlink across clusters that was interrupted may have left its
    // pending record, which says which remote to clean.
    if let Some(pending) =
        crate::observe::pending_operation(&session.client, &local.id, &args.alias).await?
    {
        output::info(&format!(
            "Alias {:?} has no link record, but an interrupted {} to {}/{}/{} left one under way: removing what it left.",
            args.alias,
            pending.operation,
            pending.remote_context,
            pending.remote_namespace,
            pending.remote_name
        ));
        let record = pending.record();
        usable_record(
            &record,
            &args.alias,
            &format!(
                "ConfigMap {}",
                crate::plan::pending_name(&local.id, &args.alias)
            ),
            crate::plan::PENDING_KEY,
        )?;
        return cross::unlink(&session, args, record).await;
    }
    same_operator::unlink(&session, args).await
}

/// Refuses a record whose names a hand edit made unusable, before they reach a request.
fn usable_record(
    record: &crate::plan::LinkRecord,
    alias: &str,
    object: &str,
    annotation: &str,
) -> anyhow::Result<()> {
    match record.problem() {
        None => Ok(()),
        Some(reason) => Err(UserError::BadRecord {
            alias: alias.to_string(),
            object: object.to_string(),
            reason,
            annotation: annotation.to_string(),
        }
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::RollBack;

    #[test]
    fn nothing_changed_is_said_only_when_everything_is_back() {
        let mut report = RollBack {
            applied: vec!["a".into(), "b".into()],
            undone: vec!["b".into(), "a".into()],
            ..RollBack::default()
        };
        let message = failure_message("boom", &report, "kubectl remote-cluster link x y");
        assert!(message.contains("the 2 steps already applied were undone: nothing changed"));
        report.kept = vec!["Secret s is kept: it holds keys someone else added (k)".into()];
        let message = failure_message("boom", &report, "kubectl remote-cluster link x y");
        assert!(!message.contains("nothing changed"), "{message}");
        assert!(message.contains("kept: Secret s"), "{message}");
        report.undone.pop();
        report.left = vec!["a: annotation x was changed by someone else since".into()];
        let message = failure_message("boom", &report, "kubectl remote-cluster link x y");
        assert!(message.contains("still left: a: annotation x"), "{message}");
        assert!(
            message.contains("run `kubectl remote-cluster link x y` to finish"),
            "{message}"
        );
    }
}
