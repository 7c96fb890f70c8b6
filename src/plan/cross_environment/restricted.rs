//! Transport trust restricted by node name: how an ECK cluster trusts a peer on Elastic Cloud
//! Hosted or ECE with the certificate model (ECK scenario 4b, and 3b in the other direction).
//! Their transport CA signs every deployment of a region or installation, so trusting it alone
//! would trust other organisations' clusters too. The CA goes in a file of its own (not in
//! `certificateAuthorities`, which ECK re-exports to every peer) and
//! `xpack.security.transport.ssl.trust_restrictions.path` names the node names accepted.
//! A restriction applies to every transport connection, the cluster's own included, so the
//! generated `trust.yml` always lists this cluster's nodes and the ECK peers it trusts.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;

pub const RESTRICTED_TRUST_DIR: &str =
    "/usr/share/elasticsearch/config/remote-cluster-restricted-trust";
pub const RESTRICTED_TRUST_VOLUME: &str = "remote-cluster-restricted-trust";
pub const TRANSPORT_CAS_SETTING: &str = "xpack.security.transport.ssl.certificate_authorities";
pub const TRUST_RESTRICTIONS_SETTING: &str = "xpack.security.transport.ssl.trust_restrictions.path";
/// Key of the restricted-trust ConfigMap that records each peer's node-name patterns.
const PEERS_KEY: &str = "peers.json";
/// Key of the restricted-trust ConfigMap that records the node-name patterns of ECK clusters
/// whose certificates carry an `otherNameSuffix` (`{"<namespace>/<name>": "*.<suffix>"}`), so a
/// later change keeps the pattern of a peer in another Kubernetes cluster it cannot read.
/// Written only when such a cluster is trusted.
const NODE_PATTERNS_KEY: &str = "node-patterns.json";

pub fn restricted_trust_name(es: &ClusterId) -> String {
    format!("{}-remote-cluster-restricted-trust", es.name)
}

fn restricted_ca_path() -> String {
    format!("{RESTRICTED_TRUST_DIR}/ca.crt")
}

fn restrictions_path() -> String {
    format!("{RESTRICTED_TRUST_DIR}/trust.yml")
}

/// The name pattern of an ECK cluster's nodes: ECK's transport certificates carry
/// `<pod>.node.<es>.<namespace>.es.local`, or `<pod>.<suffix>` when
/// `spec.transport.tls.otherNameSuffix` is set (ECK `certificates/transport/csr.go`).
pub fn eck_subject_pattern(name: &str, namespace: &str) -> String {
    format!("*.node.{name}.{namespace}.es.local")
}

/// `spec.transport.tls.otherNameSuffix` of an Elasticsearch object, when set.
pub fn other_name_suffix(es: &Value) -> Option<&str> {
    es.pointer("/spec/transport/tls/otherNameSuffix")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The node-name pattern of the ECK cluster `es`, from its spec.
pub fn eck_node_pattern(es: &EsState) -> String {
    match other_name_suffix(&es.object) {
        Some(suffix) => format!("*.{suffix}"),
        None => eck_subject_pattern(&es.id.name, &es.id.namespace),
    }
}

/// What the restricted trust of one ECK cluster needs beyond its [`TrustSide`].
#[derive(Debug, Clone, Default)]
pub struct RestrictedObserved {
    /// The plugin's restricted-trust ConfigMap, when it exists.
    pub configmap: Option<Value>,
    /// ECK clusters this one talks to over the transport with their own certificates, as
    /// `(namespace, name)`: ECK's remote CA copies and the plugin's CA blocks name them.
    pub eck_peers: Vec<(String, String)>,
    /// Node-name patterns of ECK clusters (this one and its peers, by `(namespace, name)`) that
    /// differ from the default because of an `otherNameSuffix`: read from their specs where
    /// they can be read, else as the ConfigMap recorded them.
    pub node_patterns: BTreeMap<(String, String), String>,
}

impl RestrictedObserved {
    fn data(&self, key: &str) -> String {
        self.configmap
            .as_ref()
            .and_then(|c| c.pointer(&format!("/data/{key}")))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    /// Each peer's node-name patterns, by peer label.
    pub fn peers(&self) -> BTreeMap<String, Vec<String>> {
        serde_json::from_str(&self.data(PEERS_KEY)).unwrap_or_default()
    }

    /// The node-name patterns the ConfigMap recorded, by `(namespace, name)`.
    pub fn recorded_node_patterns(&self) -> BTreeMap<(String, String), String> {
        let recorded: BTreeMap<String, String> =
            serde_json::from_str(&self.data(NODE_PATTERNS_KEY)).unwrap_or_default();
        recorded
            .into_iter()
            .filter_map(|(k, v)| {
                let (ns, name) = k.split_once('/')?;
                Some(((ns.to_string(), name.to_string()), v))
            })
            .collect()
    }

    /// The node-name pattern of the ECK cluster `(namespace, name)`.
    fn pattern_of(&self, namespace: &str, name: &str) -> String {
        self.node_patterns
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
            .unwrap_or_else(|| eck_subject_pattern(name, namespace))
    }
}

/// The ECK peers a transport trust already covers: ECK peers in other Kubernetes clusters
/// named by the plugin's CA blocks (`context/namespace/name`), and the peers of ECK's remote CA
/// copies, given as `(namespace, name)`.
pub fn eck_transport_peers(
    side: &TrustSide,
    remote_ca_peers: &[(String, String)],
) -> Vec<(String, String)> {
    let mut peers: Vec<(String, String)> = remote_ca_peers.to_vec();
    for label in block_labels(&side.bundle()) {
        let parts: Vec<&str> = label.split('/').collect();
        if let [context, namespace, name] = parts[..]
            && !context.is_empty()
        {
            peers.push((namespace.to_string(), name.to_string()));
        }
    }
    peers.sort();
    peers.dedup();
    peers
}

/// The labels of the marked CA blocks in a bundle.
pub fn block_labels(bundle: &str) -> Vec<String> {
    bundle
        .lines()
        .filter_map(|l| l.strip_prefix(CA_BLOCK_MARKER))
        .filter_map(|rest| rest.split(' ').next())
        .map(str::to_string)
        .collect()
}

/// Peers outside Kubernetes trusted through `certificateAuthorities` by the plugin: their node
/// names are unknown, so a restriction would shut them out.
fn unrestricted_external_peers(side: &TrustSide) -> Vec<String> {
    block_labels(&side.bundle())
        .into_iter()
        .filter_map(|l| l.strip_prefix("//").map(str::to_string))
        .collect()
}

/// `trust.yml` as Elasticsearch reads it: this cluster first, then its ECK peers, then each
/// restricted peer under a comment naming it.
/// ECK clusters' node names follow `observed.node_patterns` (their `otherNameSuffix`).
pub fn render_trust_yml(
    es: &ClusterId,
    observed: &RestrictedObserved,
    peers: &BTreeMap<String, Vec<String>>,
) -> String {
    let mut out = String::from(
        "# Written by kubectl-remote-cluster: node names accepted on the transport.\ntrust.subject_name:\n",
    );
    let own_pattern = observed.pattern_of(&es.namespace, &es.name);
    out.push_str(&format!("  # this cluster\n  - \"{own_pattern}\"\n"));
    let own = (es.namespace.clone(), es.name.clone());
    let others: Vec<_> = observed.eck_peers.iter().filter(|p| **p != own).collect();
    let mut listed = vec![own_pattern];
    if !others.is_empty() {
        out.push_str("  # ECK clusters trusted on the transport\n");
        for (namespace, name) in others {
            let pattern = observed.pattern_of(namespace, name);
            if listed.contains(&pattern) {
                continue;
            }
            out.push_str(&format!("  - \"{pattern}\"\n"));
            listed.push(pattern);
        }
    }
    for (label, subjects) in peers {
        out.push_str(&format!("  # {label}\n"));
        for subject in subjects.iter().filter(|s| !listed.contains(s)) {
            out.push_str(&format!("  - \"{subject}\"\n"));
        }
    }
    out
}

/// The ConfigMap with the peers' CAs, `trust.yml` and the record of patterns, for `peers` and
/// their CA blocks; `None` when it already holds exactly that.
fn configmap_step(
    es: &ClusterId,
    observed: &RestrictedObserved,
    bundle: String,
    peers: &BTreeMap<String, Vec<String>>,
    summary: String,
    diff: Vec<String>,
) -> Option<Step> {
    let trust_yml = render_trust_yml(es, observed, peers);
    let peers_json = serde_json::to_string(peers).expect("serializes");
    let node_patterns: BTreeMap<String, &String> = observed
        .node_patterns
        .iter()
        .map(|((ns, name), p)| (format!("{ns}/{name}"), p))
        .collect();
    let node_patterns_json = (!node_patterns.is_empty())
        .then(|| serde_json::to_string(&node_patterns).expect("serializes"));
    if observed.configmap.is_some()
        && observed.data("ca.crt") == bundle
        && observed.data("trust.yml") == trust_yml
        && observed.data(PEERS_KEY) == peers_json
        && observed.data(NODE_PATTERNS_KEY) == node_patterns_json.clone().unwrap_or_default()
    {
        return None;
    }
    let mut data = BTreeMap::from([
        ("ca.crt".to_string(), DataValue::Literal(bundle)),
        ("trust.yml".to_string(), DataValue::Literal(trust_yml)),
        (PEERS_KEY.to_string(), DataValue::Literal(peers_json)),
    ]);
    let mut remove = Vec::new();
    match node_patterns_json {
        Some(json) => {
            data.insert(NODE_PATTERNS_KEY.to_string(), DataValue::Literal(json));
        }
        None if !observed.data(NODE_PATTERNS_KEY).is_empty() => {
            remove.push(NODE_PATTERNS_KEY.to_string());
        }
        None => {}
    }
    Some(Step {
        cluster: es.clone(),
        summary,
        restarts_nodes: false,
        change: Change::ApplyObject {
            object: ObjectKind::ConfigMap,
            namespace: es.namespace.clone(),
            name: restricted_trust_name(es),
            resource_version: observed.configmap.as_ref().and_then(resource_version_of),
            labels: if observed.configmap.is_none() {
                ours_labels()
            } else {
                BTreeMap::new()
            },
            data,
            remove,
            diff,
        },
    })
}

/// What adding or removing a restricted peer changes: the ConfigMap step, and the nodeSet
/// patch operations (with their diff lines), which restart every node.
#[derive(Debug, Default)]
pub(crate) struct RestrictedChange {
    pub configmap: Option<Step>,
    pub node_set_ops: Vec<Value>,
    pub diff: Vec<String>,
}

/// The trust of `peer` (its CA, restricted to `subjects`) added to `side`; nodeSet operations
/// only when some nodeSet lacks the mount or the settings.
pub(crate) fn restricted_trust_steps(
    side: &TrustSide,
    observed: &RestrictedObserved,
    peer: &ClusterId,
    ca: &RemoteCa,
    subjects: &[String],
    warnings: &mut Vec<String>,
) -> Result<RestrictedChange, PlanError> {
    let es = &side.es;
    check_foreign_restrictions(es)?;
    for alias in unrestricted_external_peers(side) {
        warnings.push(format!(
            "{} also trusts {alias:?} through spec.transport.tls.certificateAuthorities; once node names are restricted its nodes are refused unless their names are listed: add them with --trust-subject",
            es.id
        ));
    }
    let label = peer_label(peer);
    let mut peers = observed.peers();
    peers.insert(label.clone(), subjects.to_vec());
    let current = observed.data("ca.crt");
    let bundle = with_block(&without_block(&current, &label), &ca_block(&label, ca));
    let shown = shown_peer(peer);
    let summary = format!(
        "trust the transport CA of {shown}, only for nodes named {} (ConfigMap {})",
        subjects.join(", "),
        restricted_trust_name(&es.id)
    );
    let diff = vec![
        format!("+   ca.crt: CA sha256:{} of {shown}", ca.fingerprint),
        format!(
            "+   trust.yml: {} and this cluster's own nodes",
            subjects.join(", ")
        ),
    ];
    let configmap = configmap_step(&es.id, observed, bundle, &peers, summary, diff);
    let (node_set_ops, diff) = node_set_ops(es, true);
    Ok(RestrictedChange {
        configmap,
        node_set_ops,
        diff,
    })
}

/// `peer`'s restricted trust taken away from `side`: the ConfigMap updated, or, when no peer is
/// left, deleted (after the restart) with the nodeSet operations that drop the restriction.
pub(crate) fn restricted_untrust_steps(
    side: &TrustSide,
    observed: &RestrictedObserved,
    peer: &ClusterId,
) -> RestrictedChange {
    let label = peer_label(peer);
    let mut peers = observed.peers();
    let Some(configmap) = &observed.configmap else {
        return RestrictedChange::default();
    };
    if peers.remove(&label).is_none() {
        return RestrictedChange::default();
    }
    if peers.is_empty() {
        let (node_set_ops, diff) = node_set_ops(&side.es, false);
        let delete = super::unlink::delete_step(
            &side.es,
            ObjectKind::ConfigMap,
            &restricted_trust_name(&side.es.id),
            configmap,
            "delete ConfigMap",
        );
        return RestrictedChange {
            configmap: Some(delete),
            node_set_ops,
            diff,
        };
    }
    let bundle = without_block(&observed.data("ca.crt"), &label);
    let step = configmap_step(
        &side.es.id,
        observed,
        bundle,
        &peers,
        format!("stop trusting the transport CA of {}", shown_peer(peer)),
        vec![format!("-   ca.crt, trust.yml: {}", shown_peer(peer))],
    );
    RestrictedChange {
        configmap: step,
        ..RestrictedChange::default()
    }
}

/// A peer as the user knows it: an alias for a cluster outside Kubernetes.
fn shown_peer(peer: &ClusterId) -> String {
    if peer.context.is_empty() {
        format!("{:?}", peer.name)
    } else {
        peer_label(peer)
    }
}

/// A restriction the plugin did not set cannot be merged with ours: one file per node.
fn check_foreign_restrictions(es: &EsState) -> Result<(), PlanError> {
    for node_set in node_sets(es) {
        let path = node_set
            .pointer("/config")
            .and_then(|c| c.get(TRUST_RESTRICTIONS_SETTING))
            .and_then(Value::as_str);
        if let Some(path) = path
            && path != restrictions_path()
        {
            return Err(PlanError::ForeignTrustRestrictions {
                cluster: Box::new(es.id.clone()),
                node_set: node_set["name"].as_str().unwrap_or_default().to_string(),
                path: path.to_string(),
            });
        }
    }
    Ok(())
}

fn node_sets(es: &EsState) -> Vec<Value> {
    es.object
        .pointer("/spec/nodeSets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Patch operations that put the restricted trust into (`on`) or take it out of every nodeSet,
/// each guarded by the nodeSet's name, with their diff lines.
fn node_set_ops(es: &EsState, on: bool) -> (Vec<Value>, Vec<String>) {
    let name = restricted_trust_name(&es.id);
    let mut ops = Vec::new();
    let mut diff = Vec::new();
    for (index, node_set) in node_sets(es).iter().enumerate() {
        let mut changed = node_set.clone();
        let touched = if on {
            with_restricted_trust(&mut changed, &name)
        } else {
            without_restricted_trust(&mut changed)
        };
        if !touched {
            continue;
        }
        let set_name = node_set["name"].as_str().unwrap_or_default();
        ops.push(json!({"op": "test", "path": format!("/spec/nodeSets/{index}/name"), "value": set_name}));
        ops.push(
            json!({"op": "replace", "path": format!("/spec/nodeSets/{index}"), "value": changed}),
        );
        diff.push(if on {
            format!(
                "  spec.nodeSets[{set_name}]: mount ConfigMap {name} at {RESTRICTED_TRUST_DIR}; config {TRANSPORT_CAS_SETTING} + {}, {TRUST_RESTRICTIONS_SETTING}: {}",
                restricted_ca_path(),
                restrictions_path()
            )
        } else {
            format!(
                "  spec.nodeSets[{set_name}]: unmount ConfigMap {name}; config {TRANSPORT_CAS_SETTING} - {}, {TRUST_RESTRICTIONS_SETTING} removed",
                restricted_ca_path()
            )
        });
    }
    (ops, diff)
}

/// Adds the CA file to the transport CAs (ECK appends user lists to its own), the restriction
/// and the mount; true when something changed.
pub fn with_restricted_trust(node_set: &mut Value, configmap: &str) -> bool {
    let mut changed = false;
    let config = ensure_object(node_set, "config");
    let cas = config
        .entry(TRANSPORT_CAS_SETTING)
        .or_insert_with(|| json!([]));
    if !cas.is_array() {
        *cas = json!([cas.clone()]);
    }
    let list = cas.as_array_mut().expect("made an array above");
    if !list.iter().any(|v| v == &json!(restricted_ca_path())) {
        list.push(json!(restricted_ca_path()));
        changed = true;
    }
    if config.get(TRUST_RESTRICTIONS_SETTING) != Some(&json!(restrictions_path())) {
        config.insert(
            TRUST_RESTRICTIONS_SETTING.into(),
            json!(restrictions_path()),
        );
        changed = true;
    }
    changed |= with_configmap_volume(
        node_set,
        RESTRICTED_TRUST_VOLUME,
        configmap,
        RESTRICTED_TRUST_DIR,
    );
    changed
}

/// Removes what [`with_restricted_trust`] added, and parts it leaves empty.
pub fn without_restricted_trust(node_set: &mut Value) -> bool {
    let mut changed = false;
    if let Some(config) = node_set.get_mut("config").and_then(Value::as_object_mut) {
        changed |=
            super::unlink::remove_from_list(config, TRANSPORT_CAS_SETTING, &restricted_ca_path());
        if config.get(TRUST_RESTRICTIONS_SETTING) == Some(&json!(restrictions_path())) {
            config.remove(TRUST_RESTRICTIONS_SETTING);
            changed = true;
        }
    }
    super::unlink::remove_if_empty(node_set, "config");
    changed |= without_volume(node_set, RESTRICTED_TRUST_VOLUME);
    changed
}

/// The local half of a certificate-model link to a peer on Elastic Cloud Hosted or ECE: the
/// restricted trust and the link record in one spec patch, then the wait for the restart.
pub(crate) fn restricted_trust_and_record(
    local: &TrustSide,
    restriction: &Restriction,
    peer: &ClusterId,
    peer_ca: &RemoteCa,
    alias: &str,
    record: LinkRecord,
    warnings: &mut Vec<String>,
) -> Result<Vec<Step>, PlanError> {
    let es = &local.es;
    let change = restricted_trust_steps(
        local,
        restriction.observed,
        peer,
        peer_ca,
        restriction.subjects,
        warnings,
    )?;
    let mut steps: Vec<Step> = change.configmap.into_iter().collect();
    let mut diff = change.diff;
    let mut annotations: Vec<(&str, Option<String>)> = Vec::new();
    record_link(es, alias, record, &mut annotations, &mut diff);
    let restarts = !change.node_set_ops.is_empty();
    if restarts || !annotations.is_empty() {
        let propagated = es.annotations_restart(&annotations);
        let mut patch = vec![spec_guard(es)];
        patch.extend(change.node_set_ops);
        patch.extend(annotation_ops(es, &annotations));
        steps.extend(patch_then_rollout(
            es,
            "restrict the transport trust to the remote's node names and record the link",
            patch,
            diff,
            restarts
                .then_some("every node restarts with the restricted trust")
                .or(propagated.then_some(PROPAGATED_RESTART)),
        ));
    }
    Ok(steps)
}

/// A guarded spec patch of `es` and, when it restarts the nodes (`restart` says why), the wait
/// for that restart, so that later steps (deleting what no node mounts any more, connecting)
/// see it done.
pub(crate) fn patch_then_rollout(
    es: &EsState,
    summary: &str,
    patch: Vec<Value>,
    diff: Vec<String>,
    restart: Option<&str>,
) -> Vec<Step> {
    let mut steps = vec![Step {
        cluster: es.id.clone(),
        summary: summary.to_string(),
        restarts_nodes: restart.is_some(),
        change: Change::PatchElasticsearch {
            resource_version: es.resource_version(),
            patch,
            diff,
        },
    }];
    if let Some(why) = restart {
        steps.push(rollout_wait_step(&es.id, why));
    }
    steps
}

/// Whether the plugin's restricted transport trust is on in some nodeSet of `es`.
pub fn uses_restricted_trust(es: &EsState) -> bool {
    node_sets(es).iter().any(|set| {
        set.pointer("/config")
            .and_then(|c| c.get(TRUST_RESTRICTIONS_SETTING))
            .and_then(Value::as_str)
            == Some(restrictions_path().as_str())
    })
}

/// A certificate-model link made after the restriction: `peer`'s nodes go into `trust.yml`,
/// or `es` would refuse them. Elasticsearch reloads the file; nothing restarts.
pub fn restricted_peer_step(
    es: &ClusterId,
    observed: &RestrictedObserved,
    peer_es: &EsState,
) -> Option<Step> {
    observed.configmap.as_ref()?;
    let peer = &peer_es.id;
    let mut with_peer = observed.clone();
    let key = (peer.namespace.clone(), peer.name.clone());
    with_peer.eck_peers.push(key.clone());
    with_peer.eck_peers.sort();
    with_peer.eck_peers.dedup();
    if other_name_suffix(&peer_es.object).is_some() {
        with_peer
            .node_patterns
            .insert(key, eck_node_pattern(peer_es));
    } else {
        with_peer.node_patterns.remove(&key);
    }
    configmap_step(
        es,
        &with_peer,
        observed.data("ca.crt"),
        &observed.peers(),
        format!(
            "accept the nodes of {} in the restricted transport trust (ConfigMap {})",
            peer_label(peer),
            restricted_trust_name(es)
        ),
        vec![format!("+   trust.yml: {}", eck_node_pattern(peer_es))],
    )
}
