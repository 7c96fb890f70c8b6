//! ECK's licence as the operator sees it. The input is a licence Secret in the operator
//! namespace (`license.k8s.elastic.co/type` `enterprise`, or `enterprise_trial` for a trial);
//! what gates the same-operator remote-cluster automation is whether one is there
//! (`licenseChecker.EnterpriseFeaturesEnabled`, `common/license/check.go`; signatures are not
//! simulated). The `elastic-licensing` ConfigMap is only a report of it, written by the
//! operator's resource reporter at start and then every two minutes (`pkg/license/reporter.go`
//! `ResourceReporterFrequency`), so it lags behind a licence change.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cluster::{ClusterState, PatchType, Sub, WriteOpts, now_rfc3339};
use crate::resources::ResourceKey;
use crate::world::list;

pub(crate) const OPERATOR_NS: &str = "elastic-system";
pub(crate) const LICENSING_CM: &str = "elastic-licensing";
const LABEL_LICENSE_TYPE: &str = "license.k8s.elastic.co/type";
const LABEL_LICENSE_SCOPE: &str = "license.k8s.elastic.co/scope";
const LABEL_TYPE: &str = "common.k8s.elastic.co/type";

/// How often ECK's resource reporter rewrites the `elastic-licensing` ConfigMap.
pub(crate) const REPORT_INTERVAL: Duration = Duration::from_secs(120);

/// The licence Secret an `enterprise` or `enterprise_trial` level stands for (none for `basic`),
/// as `kubectl create secret` of a licence file or ECK's trial start leaves it.
pub(crate) fn install(state: &ClusterState, level: &str) {
    state.ensure_namespace(OPERATOR_NS);
    let (name, license_type) = match level {
        "enterprise" => ("eck-license", "enterprise"),
        "enterprise_trial" | "enterprise-trial" => ("eck-trial", "enterprise_trial"),
        _ => return,
    };
    let license = json!({"license": {"type": license_type, "signature": "sandbox"}});
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": OPERATOR_NS,
            "labels": {
                LABEL_TYPE: "license",
                LABEL_LICENSE_SCOPE: "operator",
                LABEL_LICENSE_TYPE: license_type,
            },
        },
        "stringData": {"license": license.to_string()},
    });
    if let Err(e) = state.create(
        &ResourceKey::SECRETS,
        Some(OPERATOR_NS),
        secret,
        WriteOpts::default(),
    ) {
        eprintln!("sandbox operator {}: licence Secret: {e}", state.name);
    }
}

/// The level the installed licence Secrets give: the one with most features.
pub(crate) fn level(state: &ClusterState) -> &'static str {
    let types: Vec<String> = list(
        state,
        &ResourceKey::SECRETS,
        Some(OPERATOR_NS),
        Some(LABEL_LICENSE_TYPE),
    )
    .iter()
    .filter_map(|s| {
        s.pointer("/metadata/labels")?
            .get(LABEL_LICENSE_TYPE)?
            .as_str()
            .map(str::to_string)
    })
    .collect();
    if types.iter().any(|t| t == "enterprise") {
        "enterprise"
    } else if types.iter().any(|t| t == "enterprise_trial") {
        "enterprise_trial"
    } else {
        "basic"
    }
}

/// Whether a licence enables ECK's enterprise features (remote clusters within one operator).
pub(crate) fn enterprise_enabled(state: &ClusterState) -> bool {
    level(state) != "basic"
}

/// ECK's resource reporter: the `elastic-licensing` ConfigMap, rewritten when due.
pub(crate) struct Reporter {
    interval: Duration,
    last: Option<Instant>,
}

impl Reporter {
    pub(crate) fn new(interval: Duration) -> Reporter {
        Reporter {
            interval,
            last: None,
        }
    }

    /// Writes the report if it was never written or `interval` has passed since.
    pub(crate) fn tick(&mut self, state: &ClusterState) {
        if self.last.is_some_and(|at| at.elapsed() < self.interval) {
            return;
        }
        self.last = Some(Instant::now());
        report(state);
    }
}

fn report(state: &ClusterState) {
    let data = json!({"eck_license_level": level(state), "timestamp": now_rfc3339()});
    let existing = state
        .get(&ResourceKey::CONFIGMAPS, Some(OPERATOR_NS), LICENSING_CM)
        .ok();
    let written = match existing {
        Some(_) => state
            .patch(
                &ResourceKey::CONFIGMAPS,
                Some(OPERATOR_NS),
                LICENSING_CM,
                PatchType::Merge,
                &serde_json::to_vec(&json!({"data": data})).unwrap_or_default(),
                Sub::Main,
                WriteOpts::default(),
            )
            .map(|_| ()),
        None => state
            .create(
                &ResourceKey::CONFIGMAPS,
                Some(OPERATOR_NS),
                configmap(data),
                WriteOpts::default(),
            )
            .map(|_| ()),
    };
    if let Err(e) = written {
        eprintln!("sandbox operator {}: licensing ConfigMap: {e}", state.name);
    }
}

fn configmap(data: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": LICENSING_CM,
            "namespace": OPERATOR_NS,
            "labels": {LABEL_TYPE: "elastic-usage", "eck.k8s.elastic.co/watched": "true"},
        },
        "data": data,
    })
}
