//! The pure part of `check`: the findings about one cluster's links, from what was read.
//!
//! Each finding has a stable code (documented in `docs/checks.md`, one entry per code), a
//! severity, the object it concerns, one line of cause and, when there is one, the command that
//! fixes it. The layers are checked in order (configuration, exposure, ECK, trust, credentials,
//! Elasticsearch, compatibility, logs): what the state shows comes first, and the lines of the
//! pods' logs are only read for a link that the state does not already explain.

mod codes;
mod logs;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

pub use codes::{CHECKS, Check, Layer, check_of};

use crate::describe::{Manager, OutgoingLink, Report};
use crate::plan::{ClusterId, EsState, LinkRecord, SecurityModel};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// One thing found wrong (or worth knowing) about a link or its cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    /// What it concerns: `Elasticsearch <context>/<namespace>/<name>`, with `alias <alias>` for
    /// a link.
    pub object: String,
    pub message: String,
    /// The command that fixes it, when there is one.
    pub fix: Option<String>,
}

/// The findings of one link (`alias` set) or of its cluster as a whole (`alias` unset).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub cluster: ClusterId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// For a link: whether Elasticsearch reports it connected (`None`: not known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected: Option<bool>,
    pub findings: Vec<Finding>,
}

/// A Warning event of the cluster's Elasticsearch resource.
#[derive(Debug, Clone)]
pub struct Event {
    pub reason: String,
    pub message: String,
}

/// What was read for `check` about one cluster, beyond what `describe` reads.
pub struct Observed<'a> {
    pub report: &'a Report,
    pub es: &'a EsState,
    /// Every other Elasticsearch of the same context.
    pub others: &'a [EsState],
    /// The licence level of the ECK operator, when readable.
    pub license_level: Option<&'a str>,
    /// `_remote/info` with `_resolve/cluster` merged in (as `describe` reads it).
    pub remote_info: Option<&'a Value>,
    /// For API-key links across Kubernetes clusters, by alias: where the remote's remote
    /// cluster server is exposed now.
    pub remote_addresses: &'a BTreeMap<String, String>,
    /// Recent Warning events of the Elasticsearch resource.
    pub events: &'a [Event],
    /// Recent lines of the cluster's pods' logs.
    pub log_lines: &'a [String],
}

/// The findings of the cluster (first) and of each of its links.
pub fn check(observed: &Observed<'_>) -> Vec<Group> {
    let cluster = &observed.es.id;
    let mut groups = vec![Group {
        cluster: cluster.clone(),
        alias: None,
        remote: None,
        connected: None,
        findings: cluster_findings(observed),
    }];
    for link in &observed.report.outgoing {
        groups.push(Group {
            cluster: cluster.clone(),
            alias: Some(link.alias.clone()),
            remote: Some(link.remote.clone()),
            connected: link.connected,
            findings: link_findings(observed, link),
        });
    }
    groups
}

/// The worst severity among the findings, if any.
pub fn worst(groups: &[Group]) -> Option<Severity> {
    groups
        .iter()
        .flat_map(|g| g.findings.iter().map(|f| f.severity))
        .max()
}

/// Keeps the findings whose code is in `only` (when not empty) and not in `skip`.
pub fn filter(groups: &mut [Group], only: &[String], skip: &[String]) {
    for group in groups {
        group.findings.retain(|f| {
            (only.is_empty() || only.iter().any(|c| c == f.code))
                && !skip.iter().any(|c| c == f.code)
        });
    }
}

fn object_of(id: &ClusterId) -> String {
    format!("Elasticsearch {}/{}/{}", id.context, id.namespace, id.name)
}

fn finding(code: &'static str, object: String, message: String, fix: Option<String>) -> Finding {
    Finding {
        code,
        severity: check_of(code).severity,
        object,
        message,
        fix,
    }
}

/// `kubectl ... -n <ns> --context <ctx>` for `id`.
fn scope_flags(id: &ClusterId) -> String {
    format!("-n {} --context {}", id.namespace, id.context)
}

fn cluster_findings(observed: &Observed<'_>) -> Vec<Finding> {
    let es = observed.es;
    let object = object_of(&es.id);
    let mut found = Vec::new();
    if let Some(error) = es.rollout().error {
        found.push(finding(
            codes::ECK_RECONCILE_ERROR,
            object.clone(),
            format!("ECK reports the resource not reconciled: {error}"),
            None,
        ));
    }
    let mut seen = Vec::new();
    for event in observed.events {
        let key = (event.reason.as_str(), event.message.as_str());
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        found.push(finding(
            codes::ECK_WARNING_EVENT,
            object.clone(),
            format!("Warning event {}: {}", event.reason, event.message),
            None,
        ));
    }
    if observed.remote_info.is_none() {
        found.push(finding(
            codes::ELASTICSEARCH_UNREACHABLE,
            object,
            "Elasticsearch could not be reached: connection states are unknown, only the configuration was checked".to_string(),
            None,
        ));
    }
    found
}

fn link_findings(observed: &Observed<'_>, link: &OutgoingLink) -> Vec<Finding> {
    let es = observed.es;
    let object = format!("{} alias {}", object_of(&es.id), link.alias);
    let entry = es
        .remote_clusters()
        .into_iter()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(link.alias.as_str()));
    let record = es.plugin_links().remove(&link.alias);
    let live = observed.remote_info.and_then(|info| info.get(&link.alias));
    let mut found = Vec::new();
    if let Some(entry) = &entry {
        found.extend(eck_entry_findings(observed, entry, &object));
    }
    if let Some(record) = &record {
        found.extend(record_findings(
            &es.id,
            &link.alias,
            record,
            link,
            live,
            &object,
        ));
        found.extend(address_findings(observed, &link.alias, record, &object));
    }
    found.extend(live_findings(observed, link, record.as_ref(), &object));
    if !found.iter().any(|f| f.severity == Severity::Error) {
        for line_finding in logs::findings(observed.log_lines, &link.alias, live, &object) {
            if !found.iter().any(|f| f.code == line_finding.code) {
                found.push(line_finding);
            }
        }
    }
    if link.connected == Some(false) && !found.iter().any(|f| f.severity >= Severity::Warning) {
        found.push(finding(
            codes::NOT_CONNECTED,
            object,
            format!(
                "the link is not connected and no check tells why{}",
                link.problem
                    .as_deref()
                    .map(|p| format!(": {p}"))
                    .unwrap_or_default()
            ),
            Some(format!(
                "kubectl logs -l elasticsearch.k8s.elastic.co/cluster-name={} {} --tail 200",
                es.id.name,
                scope_flags(&es.id)
            )),
        ));
    }
    found
}

/// A `spec.remoteClusters` entry: what ECK needs to configure it.
fn eck_entry_findings(observed: &Observed<'_>, entry: &Value, object: &str) -> Vec<Finding> {
    let es = observed.es;
    let edit = format!(
        "kubectl edit elasticsearch {} {}",
        es.id.name,
        scope_flags(&es.id)
    );
    if let Some(level) = observed.license_level
        && !matches!(
            level,
            "enterprise" | "enterprise_trial" | "enterprise-trial"
        )
    {
        return vec![finding(
            codes::LICENCE_NOT_ENTERPRISE,
            object.to_string(),
            format!(
                "the ECK operator's licence is {level:?}: ECK configures remote clusters only with Enterprise"
            ),
            None,
        )];
    }
    let reference = entry.get("elasticsearchRef");
    let Some(name) = reference
        .and_then(|r| r.get("name"))
        .and_then(Value::as_str)
    else {
        return vec![finding(
            codes::NO_ELASTICSEARCH_REF,
            object.to_string(),
            "the spec.remoteClusters entry has no elasticsearchRef, so ECK ignores it".to_string(),
            Some(edit),
        )];
    };
    let namespace = reference
        .and_then(|r| r.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or(&es.id.namespace);
    let Some(peer) = observed
        .others
        .iter()
        .find(|o| o.id.name == name && o.id.namespace == namespace)
    else {
        return vec![finding(
            codes::REMOTE_NOT_FOUND,
            object.to_string(),
            format!(
                "the referenced Elasticsearch {namespace}/{name} does not exist in context {}",
                es.id.context
            ),
            Some(edit),
        )];
    };
    let mut found = Vec::new();
    if entry.get("apiKey").is_some() && !peer.remote_cluster_server_enabled() {
        found.push(finding(
            codes::REMOTE_SERVER_DISABLED,
            object_of(&peer.id),
            format!(
                "API-key link {} needs the remote cluster server of {namespace}/{name}, which is off",
                entry.get("name").and_then(Value::as_str).unwrap_or_default()
            ),
            Some(format!(
                "kubectl patch elasticsearch {name} -n {namespace} --context {} --type merge -p '{{\"spec\":{{\"remoteClusterServer\":{{\"enabled\":true}}}}}}'",
                es.id.context
            )),
        ));
    }
    if let (Some(local), Some(remote)) = (spec_version(es), spec_version(peer))
        && !crate::versions::can_connect(&local, &remote)
    {
        found.push(finding(
            codes::VERSIONS_INCOMPATIBLE,
            object.to_string(),
            format!("version {local} cannot connect to {namespace}/{name}'s version {remote}"),
            None,
        ));
    }
    found
}

fn spec_version(es: &EsState) -> Option<crate::versions::EsVersion> {
    es.object
        .pointer("/spec/version")
        .and_then(Value::as_str)
        .and_then(crate::versions::EsVersion::parse)
}

/// A link the plugin made across Kubernetes clusters (or to a cluster outside Kubernetes).
fn record_findings(
    local: &ClusterId,
    alias: &str,
    record: &LinkRecord,
    link: &OutgoingLink,
    live: Option<&Value>,
    object: &str,
) -> Vec<Finding> {
    if record.proxy_address.is_none() || link.managed_by != Manager::Plugin {
        return Vec::new();
    }
    let again = link_again(local, alias, record);
    let mut found = Vec::new();
    if link.connected == Some(false) && live.is_none() && link.mode.is_none() {
        found.push(finding(
            codes::RECORD_WITHOUT_SETTINGS,
            object.to_string(),
            "the plugin recorded the link but the alias is missing from the cluster settings"
                .to_string(),
            Some(again.clone()),
        ));
    }
    if let Some(trust) = &link.trust
        && trust.stale
    {
        found.push(finding(
            codes::CA_STALE,
            object.to_string(),
            format!(
                "the local trusts CA sha256:{} but the remote's CA is now sha256:{} (rotated)",
                short(&trust.trusted_fingerprint),
                short(trust.current_fingerprint.as_deref().unwrap_or_default())
            ),
            Some(again.clone()),
        ));
    }
    if record.security == SecurityModel::ApiKey
        && let Some(live) = live
        && live.get("cluster_credentials").is_none()
    {
        found.push(finding(
            codes::CREDENTIALS_MISSING,
            object.to_string(),
            "the link uses an API key but the keystore has no cluster.remote.<alias>.credentials (or it is not loaded)".to_string(),
            Some(again),
        ));
    }
    found
}

/// A plugin link whose recorded `proxy_address` is no longer where the remote is exposed.
fn address_findings(
    observed: &Observed<'_>,
    alias: &str,
    record: &LinkRecord,
    object: &str,
) -> Option<Finding> {
    let recorded = record.proxy_address.as_deref()?;
    let now = observed.remote_addresses.get(alias)?;
    (recorded != now).then(|| {
        finding(
            codes::PROXY_ADDRESS_STALE,
            object.to_string(),
            format!(
                "the link dials {recorded} but the remote's remote cluster server is exposed at {now} now"
            ),
            Some(link_again(&observed.es.id, alias, record)),
        )
    })
}

/// What Elasticsearch itself says of the link (`_resolve/cluster` merged into `_remote/info`).
fn live_findings(
    observed: &Observed<'_>,
    link: &OutgoingLink,
    record: Option<&LinkRecord>,
    object: &str,
) -> Vec<Finding> {
    let Some(error) = observed
        .remote_info
        .and_then(|info| info.get(&link.alias))
        .and_then(|l| l.get("error"))
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
    else {
        return Vec::new();
    };
    let fix = record
        .filter(|r| r.proxy_address.is_some())
        .map(|r| link_again(&observed.es.id, &link.alias, r));
    let code = logs::code_of_error(error).unwrap_or(codes::ELASTICSEARCH_ERROR);
    vec![finding(
        code,
        object.to_string(),
        format!("Elasticsearch reports: {error}"),
        fix,
    )]
}

/// The command that makes a plugin link again (it repairs keys, trust and settings).
fn link_again(local: &ClusterId, alias: &str, record: &LinkRecord) -> String {
    if crate::plan::is_external(record) {
        return format!(
            "kubectl remote-cluster link {} {} --external {alias} --proxy-address {} --ca-file CA.pem --api-key-file KEY.txt",
            local.name,
            scope_flags(local),
            record.proxy_address.as_deref().unwrap_or("HOST:PORT")
        );
    }
    format!(
        "kubectl remote-cluster link {} {} {} --remote-context {} --remote-namespace {} --alias {alias}",
        local.name,
        record.remote_name,
        scope_flags(local),
        record.remote_context,
        record.remote_namespace
    )
}

fn short(fingerprint: &str) -> &str {
    &fingerprint[..fingerprint.len().min(16)]
}

/// Why a link being waited for cannot connect, when what Elasticsearch says settles it: the
/// error `_resolve/cluster` reports for the alias, else the local pods' log lines naming it
/// (a wrong address, a key the remote refuses, an untrusted CA...). `None` while nothing
/// says so; a wait stops on a finding that lasts (see `apply::wait`).
pub fn blocking_finding(
    local: &ClusterId,
    alias: &str,
    resolve_error: Option<&str>,
    log_lines: &[String],
) -> Option<Finding> {
    let object = format!("{} alias {alias}", object_of(local));
    if let Some(error) = resolve_error
        && let Some(code) = logs::code_of_error(error)
    {
        return Some(finding(
            code,
            object,
            format!("Elasticsearch reports: {error}"),
            None,
        ));
    }
    logs::findings(log_lines, alias, None, &object)
        .into_iter()
        .find(|f| f.severity == Severity::Error)
}

/// How long a connection wait lets `code` last before it stops on it. Trust is read from
/// mounted ConfigMaps and Secrets, which the kubelet updates a minute or two after they change
/// (`real-behaviour.md` section 11), and Elasticsearch then reloads them: a CA a link just
/// added is "not trusted" for that long on a real cluster, so trust findings wait that out.
pub fn wait_grace(code: &str) -> std::time::Duration {
    match code {
        codes::CA_NOT_TRUSTED | codes::REMOTE_DOES_NOT_TRUST_LOCAL | codes::TRUST_RESTRICTED => {
            MOUNT_PROPAGATION
        }
        _ => std::time::Duration::from_secs(10),
    }
}

/// How long the kubelet may take to show a changed ConfigMap or Secret in a pod (its sync
/// period plus its cache's lifetime).
pub const MOUNT_PROPAGATION: std::time::Duration = std::time::Duration::from_secs(120);

/// The findings by code, for a summary.
pub fn count_by_code(groups: &[Group]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for finding in groups.iter().flat_map(|g| &g.findings) {
        *counts.entry(finding.code).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests;
