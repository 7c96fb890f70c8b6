//! `kubectl remote-cluster check [LOCAL [ALIAS]]`: every link of the chosen clusters, checked
//! layer by layer; a report grouped by link, `-o json|yaml`, `--junit FILE`; exit 0, 3 or 4.

use std::sync::Arc;

use anstyle::{AnsiColor, Style};
use serde::Serialize;

use crate::check::{self, CHECKS, Group, Severity};
use crate::cli::{CheckArgs, GlobalFlags};
use crate::error::{ExitCode, UserError};
use crate::k8s::kubeconfig::{LoadedKubeconfig, server_identity};
use crate::output::{self, API_VERSION};
use crate::plan::EsState;
use crate::workflow::{Session, links};

pub async fn run(
    global: &GlobalFlags,
    args: &CheckArgs,
    kubeconfig: Arc<LoadedKubeconfig>,
) -> anyhow::Result<ExitCode> {
    let contexts = if args.all_contexts {
        kubeconfig.context_names()
    } else if global.contexts.len() > 1 {
        global.contexts.clone()
    } else {
        vec![String::new()]
    };
    let mut groups = Vec::new();
    let mut failed_contexts = 0;
    let mut found_local = false;
    let mut seen = Seen::default();
    for context in &contexts {
        let mut flags = global.clone();
        if !context.is_empty() {
            flags.contexts = vec![context.clone()];
        }
        match check_context(&flags, args, kubeconfig.clone(), &mut seen).await {
            Ok((found, checked)) => {
                found_local |= found;
                groups.extend(checked);
            }
            Err(err) if contexts.len() > 1 && is_not_found(&err) => {}
            Err(err) if contexts.len() > 1 => {
                output::warning(&format!("context {context}: {err:#}"));
                failed_contexts += 1;
            }
            Err(err) => return Err(err),
        }
    }
    if let Some(local) = &args.local
        && !found_local
    {
        anyhow::bail!("no Elasticsearch {local:?} found in the chosen contexts");
    }
    if let Some(alias) = &args.alias {
        groups.retain(|g| g.alias.is_none() || g.alias.as_ref() == Some(alias));
        if let Some(cluster) = groups.first().map(|g| g.cluster.clone())
            && !groups.iter().any(|g| g.alias.is_some())
        {
            return Err(UserError::NoSuchLink {
                local: cluster.to_string(),
                name: cluster.name,
                alias: alias.clone(),
            }
            .into());
        }
    }
    check::filter(&mut groups, &args.only, &args.skip);
    if let Some(path) = &args.junit {
        std::fs::write(path, junit(&groups, &args.only, &args.skip))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    match args.output {
        Some(format) => output::print_document(&Document::of(&groups), format.into())?,
        None => output::write_stdout(&render(&groups))?,
    }
    Ok(match check::worst(&groups) {
        Some(Severity::Error) => ExitCode::NotConnected,
        _ if failed_contexts > 0 => ExitCode::Failure,
        Some(Severity::Warning) => ExitCode::OnlyWarnings,
        _ => ExitCode::Ok,
    })
}

/// The clusters already checked, by API server, namespace and name: contexts that reach the
/// same API server show the same clusters, each is checked once.
#[derive(Default)]
struct Seen(std::collections::BTreeSet<(String, String, String)>);

impl Seen {
    /// Whether `es` is checked now (false when another context already checked it).
    fn first_time(&mut self, server: &str, es: &EsState) -> bool {
        self.0.insert((
            server_identity(server),
            es.id.namespace.clone(),
            es.id.name.clone(),
        ))
    }
}

/// The groups of every chosen cluster of one context, and whether LOCAL was found there.
async fn check_context(
    flags: &GlobalFlags,
    args: &CheckArgs,
    kubeconfig: Arc<LoadedKubeconfig>,
    seen: &mut Seen,
) -> anyhow::Result<(bool, Vec<Group>)> {
    let session = Session::open(&flags.scope(kubeconfig), "check").await?;
    let chosen: Vec<EsState> = crate::observe::all_elasticsearches(&session.client)
        .await?
        .into_iter()
        .filter(|es| match &args.local {
            Some(name) => &es.id.name == name && es.id.namespace == session.namespace,
            None => flags.namespace.is_none() || es.id.namespace == session.namespace,
        })
        .collect();
    if let Some(name) = &args.local
        && chosen.is_empty()
    {
        return Err(UserError::ElasticsearchNotFound {
            context: session.client.context.clone(),
            namespace: session.namespace.clone(),
            name: name.clone(),
        }
        .into());
    }
    let found = !chosen.is_empty();
    let clusters: Vec<EsState> = chosen
        .into_iter()
        .filter(|es| seen.first_time(&session.client.server, es))
        .collect();
    let mut groups = Vec::new();
    for es in clusters {
        groups.extend(links::check(&session, es).await?);
    }
    Ok((found, groups))
}

fn is_not_found(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<UserError>(),
            Some(UserError::ElasticsearchNotFound { .. })
        )
    })
}

/// `-o json|yaml`: every finding with the link it concerns.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    api_version: &'static str,
    kind: &'static str,
    passed: bool,
    links: &'a [Group],
}

impl<'a> Document<'a> {
    fn of(groups: &'a [Group]) -> Self {
        Document {
            api_version: API_VERSION,
            kind: "RemoteClusterCheck",
            passed: check::worst(groups).is_none(),
            links: groups,
        }
    }
}

const PASS: Style = AnsiColor::Green.on_default();
const FAIL: Style = AnsiColor::Red.on_default().bold();
const WARN: Style = AnsiColor::Yellow.on_default().bold();

/// The human report: per cluster, its own group then one line per link, each finding under it.
pub fn render(groups: &[Group]) -> String {
    let mut out = String::new();
    let mut current = None;
    for group in groups {
        if current != Some(&group.cluster) {
            let c = &group.cluster;
            out.push_str(&format!("{}/{}/{}\n", c.context, c.namespace, c.name));
            current = Some(&group.cluster);
            let has_links = groups
                .iter()
                .any(|g| g.cluster == group.cluster && g.alias.is_some());
            if !has_links && group.findings.is_empty() {
                out.push_str("  no outgoing links\n");
            }
        }
        if group.alias.is_none() && group.findings.is_empty() {
            continue;
        }
        let (mark, style) = match group.findings.iter().map(|f| f.severity).max() {
            Some(Severity::Error) => ("✗", FAIL),
            Some(Severity::Warning) => ("!", WARN),
            _ if group.alias.is_some() && group.connected.is_none() => ("?", WARN),
            _ => ("✓", PASS),
        };
        let subject = match (&group.alias, &group.remote) {
            (Some(alias), Some(remote)) if group.connected.is_none() => {
                format!("{alias} → {remote} (connection state unknown)")
            }
            (Some(alias), Some(remote)) => format!("{alias} → {remote}"),
            (Some(alias), None) => alias.clone(),
            _ => "(the cluster itself)".to_string(),
        };
        out.push_str(&format!("  {style}{mark}{style:#} {subject}\n"));
        for finding in &group.findings {
            let level = match finding.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info => "info",
            };
            out.push_str(&format!(
                "      {level:<7} [{}] {}: {}\n",
                finding.code, finding.object, finding.message
            ));
            if let Some(fix) = &finding.fix {
                out.push_str(&format!("              fix: {fix}\n"));
            }
        }
    }
    let links: Vec<&Group> = groups.iter().filter(|g| g.alias.is_some()).collect();
    let failing = |severity| {
        links
            .iter()
            .filter(|g| g.findings.iter().map(|f| f.severity).max() == Some(severity))
            .count()
    };
    out.push_str(&format!(
        "\n{} links checked: {} with errors, {} with warnings only\n",
        links.len(),
        failing(Severity::Error),
        failing(Severity::Warning)
    ));
    out
}

/// A JUnit report: one testsuite per link (and per cluster), one testcase per check, a
/// `failure` for each error found, warnings in `system-out`.
pub fn junit(groups: &[Group], only: &[String], skip: &[String]) -> String {
    let checks: Vec<&check::Check> = CHECKS
        .iter()
        .filter(|c| only.is_empty() || only.iter().any(|o| o == c.code))
        .filter(|c| !skip.iter().any(|s| s == c.code))
        .collect();
    let errors = |g: &Group| {
        g.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    };
    let total_failures: usize = groups.iter().map(errors).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"kubectl remote-cluster check\" tests=\"{}\" failures=\"{total_failures}\">\n",
        checks.len() * groups.len()
    ));
    for group in groups {
        let c = &group.cluster;
        let suite = match &group.alias {
            Some(alias) => format!("{}/{}/{} alias {alias}", c.context, c.namespace, c.name),
            None => format!("{}/{}/{}", c.context, c.namespace, c.name),
        };
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\">\n",
            xml(&suite),
            checks.len(),
            errors(group)
        ));
        for check in &checks {
            out.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}: {}\">",
                xml(&suite),
                check.code,
                xml(check.title)
            ));
            let mut body = String::new();
            for finding in group.findings.iter().filter(|f| f.code == check.code) {
                let text = match &finding.fix {
                    Some(fix) => format!("{}\nfix: {fix}", finding.message),
                    None => finding.message.clone(),
                };
                if finding.severity == Severity::Error {
                    body.push_str(&format!(
                        "<failure type=\"{}\" message=\"{}\">{}</failure>",
                        check.code,
                        xml(&finding.message),
                        xml(&text)
                    ));
                } else {
                    body.push_str(&format!("<system-out>{}</system-out>", xml(&text)));
                }
            }
            out.push_str(&body);
            out.push_str("</testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}
