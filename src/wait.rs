//! Waiting for what ECK and Elasticsearch do after a write, with progress on stderr.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::commands::mutate::read_es;
use crate::es::{EsClient, EsTarget};
use crate::k8s::clients::ContextClient;
use crate::output;
use crate::plan::ClusterId;

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

const POLL: Duration = Duration::from_secs(1);

/// Waits until ECK reports the change rolled out: observedGeneration caught up, phase Ready.
pub async fn wait_for_rollout(
    client: &ContextClient,
    cluster: &ClusterId,
    deadline: Instant,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    loop {
        let state = read_es(client, &cluster.namespace, &cluster.name).await?;
        let rollout = state.rollout();
        if rollout.done() {
            return Ok(());
        }
        progress.say(format!(
            "Waiting for ECK to roll out {cluster}: phase {}, generation {}/{}",
            rollout.phase,
            rollout.observed_generation.unwrap_or_default(),
            rollout.generation.unwrap_or_default()
        ));
        if Instant::now() >= deadline {
            anyhow::bail!(
                "timed out waiting for ECK to roll out {cluster} (phase {}); check `kubectl get es {} -n {}` and the operator's events, or raise --timeout",
                rollout.phase,
                cluster.name,
                cluster.namespace
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until `_remote/info` on the local cluster reports the alias connected.
pub async fn wait_for_connection(
    client: &ContextClient,
    local: &ClusterId,
    alias: &str,
    deadline: Instant,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let mut es: Option<EsClient> = None;
    loop {
        if es.is_none() {
            let target = EsTarget {
                namespace: local.namespace.clone(),
                name: local.name.clone(),
            };
            match EsClient::connect(client, target).await {
                Ok(connected) => es = Some(connected),
                Err(err) => progress.say(format!("Waiting to reach Elasticsearch {local}: {err}")),
            }
        }
        if let Some(client) = &es {
            match client.get("/_remote/info").await {
                Ok(info)
                    if info.pointer(&format!("/{alias}/connected")) == Some(&Value::Bool(true)) =>
                {
                    return Ok(());
                }
                Ok(info) if info.get(alias).is_some() => progress.say(format!(
                    "Waiting for {local} to connect to remote cluster {alias:?}"
                )),
                Ok(_) => progress.say(format!(
                    "Waiting for ECK to configure remote cluster {alias:?} on {local}"
                )),
                Err(err) => {
                    progress.say(format!("Waiting for Elasticsearch {local}: {err}"));
                    es = None;
                }
            }
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "timed out waiting for remote cluster {alias:?} to connect on {local}; `kubectl remote-cluster describe {}` tells why",
                local.name
            );
        }
        tokio::time::sleep(POLL).await;
    }
}
