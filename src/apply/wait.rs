//! Waiting for what ECK and Elasticsearch do after a write, with progress on stderr.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use serde_json::Value;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams};

use crate::es::EsPool;
use crate::interrupt;
use crate::k8s::clients::ContextClient;
use crate::k8s::eck::elasticsearch_resource;
use crate::k8s::watch::{self, WatchError};
use crate::output;
use crate::plan::{ClusterId, EsState};

/// A progress line on stderr: redrawn on a terminal, one line per phase otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last: String,
}

impl Progress {
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            bar,
            last: String::new(),
        }
    }

    pub fn say(&mut self, message: String) {
        if message == self.last {
            return;
        }
        match &self.bar {
            Some(bar) => bar.set_message(message.clone()),
            None => output::info(&message),
        }
        self.last = message;
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

/// How often Elasticsearch is asked again while a connection is being made: its state has no
/// watch, and one request over an open port-forward costs a few milliseconds.
pub const POLL_ELASTICSEARCH: Duration = Duration::from_millis(100);

/// How often `_resolve/cluster` is asked again: each call makes Elasticsearch attempt a
/// connection to the remote.
pub const POLL_RESOLVE: Duration = Duration::from_millis(500);

/// How long to wait before trying again to reach an Elasticsearch that is not reachable yet.
pub const RETRY: Duration = Duration::from_secs(1);

/// Waits until ECK reports the change rolled out: observedGeneration caught up, phase Ready,
/// ReconciliationComplete True, and every pod Ready on one pod template. Watches the resource,
/// so the wait ends as soon as ECK's status write lands, or a signal asks the command to stop.
pub async fn wait_for_rollout(
    client: &ContextClient,
    cluster: &ClusterId,
    deadline: Instant,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    wait_for_pods_replaced(client, cluster, &BTreeSet::new(), deadline, progress).await
}

/// [`wait_for_rollout`] after a restarting write made when the pods had the UIDs `replaced`:
/// also until none of those pods is left. A change that leaves the generation alone (a
/// keystore Secret) shows nothing in the status before ECK reacts; the pods do.
pub async fn wait_for_pods_replaced(
    client: &ContextClient,
    cluster: &ClusterId,
    replaced: &BTreeSet<String>,
    deadline: Instant,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    tokio::select! {
        waited = rollout(client, cluster, replaced, deadline, progress) => waited,
        () = interrupt::stopped() => stopped(&format!("the rollout of {cluster}")),
    }
}

/// How often the pods are listed again while the status says ECK is done but pods still roll.
const POLL_PODS: Duration = Duration::from_millis(200);

/// The Elasticsearch pods of `cluster`: UID, Ready, StatefulSet and pod template revision.
struct EsPod {
    uid: String,
    ready: bool,
    statefulset: String,
    revision: String,
}

async fn es_pods(client: &ContextClient, cluster: &ClusterId) -> anyhow::Result<Vec<EsPod>> {
    let pods: Api<Pod> = Api::namespaced(client.client.clone(), &cluster.namespace);
    let selector = format!(
        "common.k8s.elastic.co/type=elasticsearch,elasticsearch.k8s.elastic.co/cluster-name={}",
        cluster.name
    );
    let list = client
        .call(pods.list(&ListParams::default().labels(&selector)))
        .await
        .map_err(|f| anyhow::anyhow!("{}", f.message))?;
    Ok(list
        .items
        .iter()
        .map(|pod| {
            let label = |key: &str| {
                pod.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(key))
                    .cloned()
                    .unwrap_or_default()
            };
            EsPod {
                uid: pod.metadata.uid.clone().unwrap_or_default(),
                ready: pod
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
                statefulset: label("elasticsearch.k8s.elastic.co/statefulset-name"),
                revision: label("controller-revision-hash"),
            }
        })
        .collect())
}

/// The pods of `cluster` run what ECK rolled out: all Ready, none of `replaced` left, one pod
/// template revision per StatefulSet.
/// A user who may not list pods is left with ECK's status, as before this check.
async fn pods_rolled_out(
    client: &ContextClient,
    cluster: &ClusterId,
    replaced: &BTreeSet<String>,
) -> bool {
    let Ok(pods) = es_pods(client, cluster).await else {
        return true;
    };
    let mut revisions: BTreeMap<&str, &str> = BTreeMap::new();
    let one_revision = pods
        .iter()
        .all(|p| *revisions.entry(&p.statefulset).or_insert(&p.revision) == p.revision);
    one_revision && pods.iter().all(|p| p.ready && !replaced.contains(&p.uid))
}

/// The UIDs of the Elasticsearch pods of `cluster`, to tell the pods of a rollout from these.
pub async fn pod_uids(client: &ContextClient, cluster: &ClusterId) -> BTreeSet<String> {
    es_pods(client, cluster)
        .await
        .map(|pods| pods.into_iter().map(|p| p.uid).collect())
        .unwrap_or_default()
}

fn stopped(what: &str) -> anyhow::Result<()> {
    anyhow::bail!(
        "{} while waiting for {what}",
        interrupt::reason().unwrap_or("signal")
    )
}

/// How long ECK must keep reporting the same lasting error before a wait gives up on it: the
/// status may still show the error of a reconcile from before the plugin's own write.
pub const ECK_ERROR_GRACE: Duration = Duration::from_secs(5);

/// How far back a Warning event still counts as news when a wait shows ECK's events.
const RECENT_EVENTS: Duration = Duration::from_secs(600);

/// What ECK reported during a wait: its error, since when, and the events already shown.
#[derive(Default)]
struct EckReport {
    error: Option<(String, Instant)>,
    shown: std::collections::BTreeSet<(String, String)>,
}

impl EckReport {
    /// Takes the error of a status in; whether it is new (to be shown).
    fn observe(&mut self, error: Option<&str>) -> bool {
        match (error, &self.error) {
            (Some(now), Some((before, _))) if now == before => false,
            (Some(now), _) => {
                self.error = Some((now.to_string(), Instant::now()));
                true
            }
            (None, _) => {
                self.error = None;
                false
            }
        }
    }

    /// The lasting error and when its grace ends.
    fn lasting(&self) -> Option<(&str, Instant)> {
        self.error
            .as_ref()
            .filter(|(m, _)| crate::plan::eck_error_is_lasting(m))
            .map(|(m, since)| (m.as_str(), *since + ECK_ERROR_GRACE))
    }

    /// Prints ECK's error and the recent Warning events of `cluster` not shown yet.
    async fn show(&mut self, client: &ContextClient, cluster: &ClusterId) {
        if let Some((error, _)) = &self.error {
            output::warning(&format!("ECK reports on {cluster}: {error}"));
        }
        let since = jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::try_from(RECENT_EVENTS).unwrap_or_default())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        for event in
            crate::k8s::eck::warning_events(client, &cluster.namespace, &cluster.name, since).await
        {
            let key = (event.reason.clone(), event.message.clone());
            if self.shown.insert(key) {
                let action = event.action.map(|a| format!(" ({a})")).unwrap_or_default();
                output::warning(&format!(
                    "ECK event on {cluster}: {}{action}: {}",
                    event.reason, event.message
                ));
            }
        }
    }
}

async fn rollout(
    client: &ContextClient,
    cluster: &ClusterId,
    replaced: &BTreeSet<String>,
    deadline: Instant,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.client.clone(),
        &cluster.namespace,
        &elasticsearch_resource(),
    );
    let mut last_phase = String::from("unknown");
    let mut report = EckReport::default();
    loop {
        // A lasting error ends the wait once its grace is over, unless the status moves on.
        let until = report
            .lasting()
            .map_or(deadline, |(_, end)| end.min(deadline));
        let mut missing = false;
        let mut done = false;
        let mut news = false;
        let waited = watch::until(client, &api, &cluster.name, until, |found| {
            let Some(object) = found else {
                missing = true;
                return true;
            };
            let state = EsState {
                id: cluster.clone(),
                object: serde_json::to_value(object).unwrap_or_default(),
            };
            let rollout = state.rollout();
            if rollout.done() {
                done = true;
                return true;
            }
            progress.say(format!(
                "Waiting for ECK to roll out {cluster}: phase {}, generation {}/{}",
                rollout.phase,
                rollout.observed_generation.unwrap_or_default(),
                rollout.generation.unwrap_or_default()
            ));
            last_phase = rollout.phase.clone();
            news = report.observe(rollout.eck_error());
            // Back to the loop to show it and, when it lasts, to time its grace.
            news
        })
        .await;
        if news {
            report.show(client, cluster).await;
        }
        match waited {
            Ok(()) if missing => {
                anyhow::bail!("Elasticsearch {cluster} was deleted while waiting for its rollout")
            }
            Ok(()) if done => {
                if pods_rolled_out(client, cluster, replaced).await {
                    return Ok(());
                }
                progress.say(format!("Waiting for the pods of {cluster} to restart"));
                if Instant::now() >= deadline {
                    anyhow::bail!(
                        "timed out waiting for the pods of {cluster} to restart; check `kubectl get pods -n {} -l elasticsearch.k8s.elastic.co/cluster-name={}`, or raise --timeout",
                        cluster.namespace,
                        cluster.name
                    );
                }
                tokio::time::sleep(POLL_PODS).await;
            }
            Ok(()) => continue,
            Err(WatchError::TimedOut) if Instant::now() < deadline => {
                if let Some((error, _)) = report.lasting() {
                    anyhow::bail!(
                        "ECK cannot roll out {cluster}: {error} (its ReconciliationComplete condition, for {}s); fix that and run the command again, `kubectl describe es {} -n {}` shows ECK's events",
                        ECK_ERROR_GRACE.as_secs(),
                        cluster.name,
                        cluster.namespace
                    );
                }
            }
            Err(WatchError::TimedOut) => {
                let reported = report
                    .error
                    .as_ref()
                    .map(|(m, _)| format!("; ECK reports: {m}"))
                    .unwrap_or_default();
                anyhow::bail!(
                    "timed out waiting for ECK to roll out {cluster} (phase {last_phase}){reported}; check `kubectl get es {} -n {}` and the operator's events, or raise --timeout",
                    cluster.name,
                    cluster.namespace
                )
            }
            Err(WatchError::Failed(failure)) => return Err(failure.into()),
        }
    }
}

/// Waits until the local cluster reports the alias connected: `_resolve/cluster` (8.13+), which
/// makes it attempt the connection and names a security error, else `_remote/info` (or a
/// signal asks the command to stop).
pub async fn wait_for_connection(
    client: &ContextClient,
    es: &EsPool,
    local: &ClusterId,
    alias: &str,
    deadline: Instant,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    tokio::select! {
        waited = connection(client, es, local, alias, deadline, progress) => waited,
        () = interrupt::stopped() => stopped(&format!("{alias:?} to connect on {local}")),
    }
}

/// `_remote/info` once the cluster was asked to attempt the connection to each of `aliases`
/// (before 8.13; what that attempt answers does not matter, `_remote/info` tells the outcome).
pub(crate) async fn reconnect_then_remote_info(
    connection: &crate::es::EsClient,
    aliases: &[&str],
) -> anyhow::Result<Value> {
    for alias in aliases {
        let _ = connection.get(&crate::plan::reconnect_path(alias)).await;
    }
    connection.get("/_remote/info").await
}

async fn connection(
    client: &ContextClient,
    es: &EsPool,
    local: &ClusterId,
    alias: &str,
    deadline: Instant,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    // The local's version, read once: `_resolve/cluster` from 8.13, `_remote/info` before.
    let mut version: Option<Option<crate::versions::EsVersion>> = None;
    let mut last_error: Option<String> = None;
    let mut blocker = Blocker::default();
    loop {
        let pause = match es.client(client, local).await {
            Err(err) => {
                progress.say(format!("Waiting to reach Elasticsearch {local}: {err}"));
                RETRY
            }
            Ok(connection) => {
                if version.is_none() {
                    version = Some(connection.get("/").await.ok().and_then(|root| {
                        root.pointer("/version/number")
                            .and_then(Value::as_str)
                            .and_then(crate::versions::EsVersion::parse)
                    }));
                }
                let path = crate::plan::resolve_cluster_path(version.flatten().as_ref(), alias);
                match path {
                    Some(path) => {
                        let remaining = deadline.saturating_duration_since(Instant::now());
                        let answer = tokio::time::timeout(remaining, connection.get(&path)).await;
                        match answer {
                            Err(_) => POLL_ELASTICSEARCH,
                            Ok(Ok(answer)) => match crate::plan::resolved(&answer, alias) {
                                crate::plan::Resolved::Connected => return Ok(()),
                                crate::plan::Resolved::Error(error) => {
                                    progress.say(format!(
                                        "Waiting for {local} to connect to remote cluster {alias:?}: {error}"
                                    ));
                                    blocker.observe(client, local, alias, Some(&error)).await?;
                                    last_error = Some(error);
                                    POLL_RESOLVE
                                }
                                _ => {
                                    progress.say(format!(
                                        "Waiting for {local} to connect to remote cluster {alias:?}"
                                    ));
                                    blocker.observe(client, local, alias, None).await?;
                                    POLL_RESOLVE
                                }
                            },
                            // An alias not configured yet: no such remote cluster.
                            Ok(Err(err))
                                if err
                                    .downcast_ref::<crate::es::EsError>()
                                    .is_some_and(|e| e.status == 404) =>
                            {
                                progress.say(format!(
                                    "Waiting for ECK to configure remote cluster {alias:?} on {local}"
                                ));
                                POLL_ELASTICSEARCH
                            }
                            Ok(Err(err)) => {
                                progress.say(format!("Waiting for Elasticsearch {local}: {err}"));
                                POLL_ELASTICSEARCH
                            }
                        }
                    }
                    None => match reconnect_then_remote_info(&connection, &[alias]).await {
                        Ok(info)
                            if info.pointer(&format!("/{alias}/connected"))
                                == Some(&Value::Bool(true)) =>
                        {
                            return Ok(());
                        }
                        Ok(info) if info.get(alias).is_some() => {
                            progress.say(format!(
                                "Waiting for {local} to connect to remote cluster {alias:?}"
                            ));
                            POLL_ELASTICSEARCH
                        }
                        Ok(_) => {
                            progress.say(format!(
                                "Waiting for ECK to configure remote cluster {alias:?} on {local}"
                            ));
                            POLL_ELASTICSEARCH
                        }
                        Err(err) => {
                            progress.say(format!("Waiting for Elasticsearch {local}: {err}"));
                            POLL_ELASTICSEARCH
                        }
                    },
                }
            }
        };
        if Instant::now() >= deadline {
            let reported = last_error
                .map(|e| format!(" (Elasticsearch reports: {e})"))
                .unwrap_or_default();
            anyhow::bail!(
                "timed out waiting for remote cluster {alias:?} to connect on {local}{reported}; `kubectl remote-cluster describe {}` tells why",
                local.name
            );
        }
        tokio::time::sleep(pause).await;
    }
}

/// How often a connection wait reads the local pods' logs for `check`'s finding.
const LOG_READ_INTERVAL: Duration = Duration::from_secs(2);

/// What `check` finds on a link that does not connect, while a wait polls it: the finding and
/// since when it has lasted.
#[derive(Default)]
struct Blocker {
    finding: Option<(crate::check::Finding, Instant)>,
    logs_read: Option<Instant>,
    log_lines: Vec<String>,
}

impl Blocker {
    /// Takes in what `_resolve/cluster` said of a link that is not connected (and, every few
    /// seconds, the local pods' logs); an error once the same finding lasted its grace.
    async fn observe(
        &mut self,
        client: &ContextClient,
        local: &ClusterId,
        alias: &str,
        resolve_error: Option<&str>,
    ) -> anyhow::Result<()> {
        if resolve_error.is_none()
            && self
                .logs_read
                .is_none_or(|at| at.elapsed() >= LOG_READ_INTERVAL)
        {
            self.logs_read = Some(Instant::now());
            self.log_lines =
                crate::k8s::eck::recent_pod_logs(client, &local.namespace, &local.name, 200, 60, 1)
                    .await;
        }
        let lines: &[String] = if resolve_error.is_some() {
            &[]
        } else {
            &self.log_lines
        };
        let now = crate::check::blocking_finding(local, alias, resolve_error, lines);
        self.finding = match (now, self.finding.take()) {
            (Some(now), Some((before, since))) if now.code == before.code => Some((now, since)),
            (Some(now), _) => Some((now, Instant::now())),
            (None, _) => None,
        };
        match &self.finding {
            // A key or keystore being reloaded, or a name being published, fails a few
            // attempts; trust waits for the kubelet to propagate mounted files.
            Some((finding, since)) if since.elapsed() >= crate::check::wait_grace(finding.code) => {
                anyhow::bail!(
                    "remote cluster {alias:?} cannot connect on {local}: [{}] {}; `kubectl remote-cluster check {} {alias} -n {} --context {}` runs every check (docs/checks.md explains each code)",
                    finding.code,
                    finding.message,
                    local.name,
                    local.namespace,
                    local.context
                )
            }
            _ => Ok(()),
        }
    }
}

/// After a same-operator unlink: waits until ECK has dropped `alias`, i.e. its
/// `managed-remote-clusters` annotation on the local no longer names it and Elasticsearch no
/// longer knows it (`_remote/info`), or a signal asks the command to stop.
pub async fn wait_until_alias_dropped(
    client: &ContextClient,
    es: &EsPool,
    local: &ClusterId,
    alias: &str,
    deadline: Instant,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    tokio::select! {
        waited = alias_dropped(client, es, local, alias, deadline, progress) => waited,
        () = interrupt::stopped() => stopped(&format!("ECK to drop {alias:?} from {local}")),
    }
}

async fn alias_dropped(
    client: &ContextClient,
    es: &EsPool,
    local: &ClusterId,
    alias: &str,
    deadline: Instant,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    loop {
        let annotation_names_it =
            match crate::k8s::eck::get_elasticsearch(client, &local.namespace, &local.name).await {
                Ok(Some(object)) => crate::plan::split_aliases(
                    object
                        .pointer("/metadata/annotations")
                        .and_then(|a| a.get(crate::k8s::eck::ECK_MANAGED_REMOTES_ANNOTATION))
                        .and_then(Value::as_str),
                )
                .iter()
                .any(|a| a == alias),
                Ok(None) => false,
                Err(_) => true,
            };
        let known = match es.client(client, local).await {
            Ok(connection) => match connection.get("/_remote/info").await {
                Ok(info) => info.get(alias).is_some(),
                Err(_) => true,
            },
            Err(_) => true,
        };
        if !annotation_names_it && !known {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "timed out waiting for ECK to drop remote cluster {alias:?} from {local} ({})",
                if annotation_names_it {
                    "its managed-remote-clusters annotation still names it"
                } else {
                    "Elasticsearch still has its settings"
                }
            );
        }
        progress.say(format!(
            "Waiting for ECK to drop remote cluster {alias:?} from {local}"
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
