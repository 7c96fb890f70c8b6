//! `kubectl remote-cluster describe NAME`: one cluster's links, both ways, with live state.

use std::sync::Arc;

use crate::cli::{DescribeArgs, GlobalFlags};
use crate::describe::{self, Report};
use crate::error::ExitCode;
use crate::k8s::kubeconfig::LoadedKubeconfig;
use crate::output::{self, API_VERSION, Cell, Table};
use crate::workflow::{Session, links};

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
    let es = crate::observe::read_es(&target.client, &target.namespace, &args.name).await?;
    let peers: Vec<String> = if args.all_contexts {
        kubeconfig.context_names()
    } else {
        global.contexts.iter().skip(1).cloned().collect()
    };
    let observed = links::observe(&target, &kubeconfig, &peers, es).await?;
    let report = observed.report(API_VERSION);
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
