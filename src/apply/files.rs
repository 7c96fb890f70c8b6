//! Before every write of an Elasticsearch spec (the plan's and the undo's): each ConfigMap or
//! Secret a nodeSet's `podTemplate` mounts exists, and each file named by a nodeSet's
//! `xpack.security.{transport,remote_cluster_client}.ssl.certificate_authorities` or
//! `xpack.security.transport.ssl.trust_restrictions.path` exists there, a CA file with at least
//! one PEM certificate. Otherwise the pods would not start (a missing volume source) or
//! Elasticsearch would stop at start (`PemTrustConfig`: a missing file, no certificate).
//!
//! The objects are read from the cluster, overlaid with what earlier steps of the same plan
//! write ([`Overlay`]).

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use rustls::pki_types::{CertificateDer, pem::PemObject};
use serde_json::Value;

use crate::k8s::clients::ContextClient;
use crate::plan::{Change, DataValue, ObjectKind, Step};

const CONFIG_DIR: &str = "/usr/share/elasticsearch/config";
const CA_SETTINGS: [&str; 2] = [
    "xpack.security.transport.ssl.certificate_authorities",
    "xpack.security.remote_cluster_client.ssl.certificate_authorities",
];
const RESTRICTIONS_SETTING: &str = "xpack.security.transport.ssl.trust_restrictions.path";
/// ECK's own files, always there.
const ECK_FILES: [&str; 2] = ["transport-certs/ca.crt", "transport-remote-certs/ca.crt"];

/// The keys of a ConfigMap or Secret: `None` for a value not known before apply (an output).
type Data = BTreeMap<String, Option<String>>;

/// What the plan's earlier steps made of ConfigMaps and Secrets (`None`: deleted), by context,
/// namespace, kind and name.
#[derive(Default)]
pub struct Overlay {
    objects: HashMap<(String, String, &'static str, String), Option<Data>>,
}

fn kind_name(kind: ObjectKind) -> Option<&'static str> {
    match kind {
        ObjectKind::ConfigMap => Some("ConfigMap"),
        ObjectKind::Secret => Some("Secret"),
        ObjectKind::Service => None,
    }
}

impl Overlay {
    /// Records what `step` does to a ConfigMap or Secret.
    pub async fn record(&mut self, step: &Step, client: &ContextClient) -> anyhow::Result<()> {
        let context = step.cluster.context.clone();
        match &step.change {
            Change::ApplyObject {
                object,
                namespace,
                name,
                data,
                remove,
                ..
            } => {
                let Some(kind) = kind_name(*object) else {
                    return Ok(());
                };
                let key = (context, namespace.clone(), kind, name.clone());
                let mut now = match self.objects.get(&key) {
                    Some(known) => known.clone().unwrap_or_default(),
                    None => read(client, namespace, kind, name)
                        .await?
                        .unwrap_or_default(),
                };
                for (k, v) in data {
                    let value = match v {
                        DataValue::Literal(s) => Some(s.clone()),
                        DataValue::Output(_) => None,
                    };
                    now.insert(k.clone(), value);
                }
                for k in remove {
                    now.remove(k);
                }
                self.objects.insert(key, Some(now));
            }
            Change::DeleteObject {
                object,
                namespace,
                name,
                ..
            } => {
                if let Some(kind) = kind_name(*object) {
                    self.objects
                        .insert((context, namespace.clone(), kind, name.clone()), None);
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn data(
        &self,
        client: &ContextClient,
        namespace: &str,
        kind: &'static str,
        name: &str,
    ) -> anyhow::Result<Option<Data>> {
        let key = (
            client.context.clone(),
            namespace.to_string(),
            kind,
            name.to_string(),
        );
        match self.objects.get(&key) {
            Some(known) => Ok(known.clone()),
            None => read(client, namespace, kind, name).await,
        }
    }
}

async fn read(
    client: &ContextClient,
    namespace: &str,
    kind: &'static str,
    name: &str,
) -> anyhow::Result<Option<Data>> {
    if kind == "ConfigMap" {
        let api = Api::<ConfigMap>::namespaced(client.client.clone(), namespace);
        let found = client.call(api.get_opt(name)).await?;
        Ok(found.map(|cm| {
            let mut data: Data = cm
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, Some(v)))
                .collect();
            for (k, v) in cm.binary_data.unwrap_or_default() {
                data.insert(k, Some(String::from_utf8_lossy(&v.0).into_owned()));
            }
            data
        }))
    } else {
        let api = Api::<Secret>::namespaced(client.client.clone(), namespace);
        let found = client.call(api.get_opt(name)).await?;
        Ok(found.map(|secret| {
            let mut data: Data = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, Some(String::from_utf8_lossy(&v.0).into_owned())))
                .collect();
            for (k, v) in secret.string_data.unwrap_or_default() {
                data.insert(k, Some(v));
            }
            data
        }))
    }
}

/// A file a nodeSet's config names, resolved to the ConfigMap or Secret key behind its mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    pub node_set: String,
    pub setting: &'static str,
    pub path: String,
    /// `(kind, object, key)`; `None` when no mount of a ConfigMap or Secret serves the path.
    pub source: Option<(&'static str, String, String)>,
}

/// A ConfigMap or Secret volume of a nodeSet's pod template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRef {
    pub node_set: String,
    pub volume: String,
    pub kind: &'static str,
    pub name: String,
}

fn node_sets(es: &Value) -> &[Value] {
    es.pointer("/spec/nodeSets")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn node_set_name(set: &Value) -> String {
    set.get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A nodeSet's config setting, nested or dotted.
fn setting<'a>(config: &'a Value, key: &str) -> Option<&'a Value> {
    if let Some(v) = config.get(key) {
        return Some(v);
    }
    let mut rest = key;
    let mut here = config;
    loop {
        let (found, tail) = here.as_object()?.iter().find_map(|(k, v)| {
            if rest == k {
                Some((v, ""))
            } else {
                rest.strip_prefix(k.as_str())
                    .and_then(|t| t.strip_prefix('.'))
                    .map(|t| (v, t))
            }
        })?;
        if tail.is_empty() {
            return Some(found);
        }
        here = found;
        rest = tail;
        if let Some(v) = here.get(rest) {
            return Some(v);
        }
    }
}

fn list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether the spec of `es` names the Secret or ConfigMap `name` (a volume, optional or not,
/// or a secure-settings Secret): deleting it would keep pods from starting or lose settings.
pub fn references(es: &Value, kind: ObjectKind, name: &str) -> bool {
    let Some(kind) = kind_name(kind) else {
        return false;
    };
    let mounted = node_sets(es).iter().any(|set| {
        set.pointer("/podTemplate/spec/volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|volume| match kind {
                "ConfigMap" => volume.pointer("/configMap/name") == Some(&Value::from(name)),
                _ => volume.pointer("/secret/secretName") == Some(&Value::from(name)),
            })
    });
    let secure = kind == "Secret"
        && es
            .pointer("/spec/secureSettings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|s| s.get("secretName") == Some(&Value::from(name)));
    mounted || secure
}

/// The ConfigMap and Secret volumes of every nodeSet (`optional` ones left out).
pub fn volume_refs(es: &Value) -> Vec<VolumeRef> {
    let mut out = Vec::new();
    for set in node_sets(es) {
        for volume in set
            .pointer("/podTemplate/spec/volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let source = [
                ("configMap", "name", "ConfigMap"),
                ("secret", "secretName", "Secret"),
            ]
            .into_iter()
            .find_map(|(field, key, kind)| {
                let src = volume.get(field)?;
                if src.get("optional").and_then(Value::as_bool) == Some(true) {
                    return None;
                }
                Some((kind, src.get(key)?.as_str()?.to_string()))
            });
            if let Some((kind, name)) = source {
                out.push(VolumeRef {
                    node_set: node_set_name(set),
                    volume: volume
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    kind,
                    name,
                });
            }
        }
    }
    out
}

/// The CA and restriction files every nodeSet's config names, each resolved through that
/// nodeSet's mounts (ECK's own files left out).
pub fn file_refs(es: &Value) -> Vec<FileRef> {
    let mut out = Vec::new();
    for set in node_sets(es) {
        let Some(config) = set.get("config") else {
            continue;
        };
        let mut named: Vec<(&'static str, String)> = Vec::new();
        for key in CA_SETTINGS {
            named.extend(list(setting(config, key)).into_iter().map(|p| (key, p)));
        }
        if let Some(Value::String(p)) = setting(config, RESTRICTIONS_SETTING) {
            named.push((RESTRICTIONS_SETTING, p.clone()));
        }
        for (key, path) in named {
            let absolute = if path.starts_with('/') {
                path.clone()
            } else {
                format!("{CONFIG_DIR}/{path}")
            };
            if ECK_FILES
                .iter()
                .any(|f| absolute == format!("{CONFIG_DIR}/{f}"))
            {
                continue;
            }
            out.push(FileRef {
                node_set: node_set_name(set),
                setting: key,
                source: mounted_source(set, &absolute),
                path,
            });
        }
    }
    out
}

/// The ConfigMap or Secret key behind `path` in `set`'s elasticsearch container.
fn mounted_source(set: &Value, path: &str) -> Option<(&'static str, String, String)> {
    let spec = set.pointer("/podTemplate/spec")?;
    let volumes = spec.get("volumes").and_then(Value::as_array)?;
    let container = spec
        .get("containers")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some("elasticsearch"))?;
    for mount in container
        .get("volumeMounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let dir = mount
            .get("mountPath")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim_end_matches('/');
        let key = match mount.get("subPath").and_then(Value::as_str) {
            Some(sub) if path == dir => sub.to_string(),
            Some(_) => continue,
            None => match path.strip_prefix(&format!("{dir}/")) {
                Some(k) if !k.contains('/') => k.to_string(),
                _ => continue,
            },
        };
        let name = mount.get("name").and_then(Value::as_str)?;
        let volume = volumes
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(name))?;
        if volume.pointer("/configMap/items").is_some() || volume.pointer("/secret/items").is_some()
        {
            return None;
        }
        if let Some(cm) = volume.pointer("/configMap/name").and_then(Value::as_str) {
            return Some(("ConfigMap", cm.to_string(), key));
        }
        if let Some(s) = volume.pointer("/secret/secretName").and_then(Value::as_str) {
            return Some(("Secret", s.to_string(), key));
        }
        return None;
    }
    None
}

/// Whether `pem` holds at least one PEM certificate.
pub fn has_certificate(pem: &str) -> bool {
    CertificateDer::pem_slice_iter(pem.as_bytes()).any(|c| c.is_ok())
}

/// Why the spec `es` would keep its nodes from starting, or `None`: the first volume whose
/// ConfigMap or Secret does not exist, or file that is missing or, for a CA, holds no
/// certificate. One line, saying what to do.
pub async fn broken_reference(
    client: &ContextClient,
    overlay: &Overlay,
    es: &Value,
) -> anyhow::Result<Option<String>> {
    let namespace = es
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = es
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let what = format!("Elasticsearch {namespace}/{name}");
    for v in volume_refs(es) {
        if overlay
            .data(client, namespace, v.kind, &v.name)
            .await?
            .is_none()
        {
            return Ok(Some(format!(
                "{what}: nodeSet {:?} mounts {} {:?} (volume {:?}), which does not exist, so its pods would not start; create it again or remove the volume, then re-run",
                v.node_set, v.kind, v.name, v.volume
            )));
        }
    }
    for f in file_refs(es) {
        let Some((kind, object, key)) = &f.source else {
            continue;
        };
        let data = overlay.data(client, namespace, kind, object).await?;
        let content = data.as_ref().and_then(|d| d.get(key));
        let problem = match content {
            None => Some(format!("{kind} {object:?} has no key {key:?}")),
            // Known only once applied (an output): nothing to check.
            Some(None) => None,
            Some(Some(text)) if f.setting != RESTRICTIONS_SETTING && !has_certificate(text) => {
                Some(format!(
                    "{kind} {object:?} key {key:?} holds no certificate"
                ))
            }
            Some(Some(_)) => None,
        };
        if let Some(problem) = problem {
            return Ok(Some(format!(
                "{what}: nodeSet {:?} names {:?} in {}, but {problem}, so Elasticsearch would not start; put the file back (or remove the setting), then re-run",
                f.node_set, f.path, f.setting
            )));
        }
    }
    Ok(None)
}

/// `es` with the operations of a JSON patch applied, `test`s left out; `None` when they do not
/// apply (the server will refuse the patch anyway).
pub fn patched(es: &Value, operations: &[Value]) -> Option<Value> {
    let ops: Vec<Value> = operations
        .iter()
        .filter(|op| op["op"] != "test")
        .cloned()
        .collect();
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops)).ok()?;
    let mut doc = es.clone();
    json_patch::patch(&mut doc, &patch).ok()?;
    Some(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_mounted_or_secure_settings_object_is_referenced() {
        let es = json!({"spec": {
            "secureSettings": [{"secretName": "catalog-remote-cluster-credentials"}],
            "nodeSets": [{"name": "default", "podTemplate": {"spec": {"volumes": [
                {"name": "cas", "configMap": {"name": "catalog-remote-cluster-cas"}},
                {"name": "extra", "secret": {"secretName": "extra", "optional": true}},
            ]}}}],
        }});
        let credentials = "catalog-remote-cluster-credentials";
        assert!(references(&es, ObjectKind::Secret, credentials));
        assert!(!references(&es, ObjectKind::ConfigMap, credentials));
        assert!(references(
            &es,
            ObjectKind::ConfigMap,
            "catalog-remote-cluster-cas"
        ));
        assert!(
            references(&es, ObjectKind::Secret, "extra"),
            "optional mounts count"
        );
        assert!(!references(&es, ObjectKind::Secret, "other"));
        assert!(!references(
            &es,
            ObjectKind::Service,
            "catalog-remote-cluster-cas"
        ));
    }

    fn es() -> Value {
        json!({"metadata": {"name": "l", "namespace": "a"}, "spec": {"nodeSets": [{
            "name": "default",
            "config": {
                "xpack.security.remote_cluster_client.ssl.certificate_authorities":
                    ["transport-remote-certs/ca.crt", "remote-cluster-cas/ca.crt", "/elsewhere/x.crt"],
                "xpack": {"security": {"transport": {"ssl": {"trust_restrictions.path": "/r/trust.yml"}}}}
            },
            "podTemplate": {"spec": {
                "volumes": [
                    {"name": "cas", "configMap": {"name": "l-remote-cluster-cas"}},
                    {"name": "r", "secret": {"secretName": "l-r"}},
                    {"name": "o", "secret": {"secretName": "maybe", "optional": true}}
                ],
                "containers": [{"name": "elasticsearch", "volumeMounts": [
                    {"name": "cas", "mountPath": "/usr/share/elasticsearch/config/remote-cluster-cas"},
                    {"name": "r", "mountPath": "/r/trust.yml", "subPath": "t.yml"}
                ]}]}}
        }]}})
    }

    #[test]
    fn files_resolve_through_mounts_and_ecks_own_are_left_out() {
        let refs = file_refs(&es());
        assert_eq!(refs.len(), 3, "{refs:?}");
        assert_eq!(
            refs[0].source,
            Some((
                "ConfigMap",
                "l-remote-cluster-cas".to_string(),
                "ca.crt".to_string()
            ))
        );
        assert_eq!(refs[1].source, None, "not mounted: not ours to judge");
        assert_eq!(refs[2].setting, RESTRICTIONS_SETTING);
        assert_eq!(
            refs[2].source,
            Some(("Secret", "l-r".to_string(), "t.yml".to_string()))
        );
        let volumes: Vec<String> = volume_refs(&es()).into_iter().map(|v| v.name).collect();
        assert_eq!(
            volumes,
            ["l-remote-cluster-cas", "l-r"],
            "optional left out"
        );
    }

    #[test]
    fn a_patch_is_applied_without_its_tests() {
        let after = patched(
            &es(),
            &[
                json!({"op": "test", "path": "/metadata/name", "value": "other"}),
                json!({"op": "remove", "path": "/spec/nodeSets/0/podTemplate"}),
            ],
        )
        .unwrap();
        assert!(volume_refs(&after).is_empty());
        assert!(file_refs(&after).iter().all(|f| f.source.is_none()));
    }

    #[test]
    fn certificates_are_counted() {
        assert!(!has_certificate(""));
        assert!(!has_certificate("not a certificate\n"));
    }
}
