//! The simulated world behind every fake Elasticsearch: one [`ElasticsearchNode`] per
//! Elasticsearch resource (plus external ones), their certificates, and the [`RemoteWorld`]
//! view that answers name resolution and trust from the Kubernetes objects of every cluster.
//!
//! Locking: every node lives in one `Mutex<HashMap<EsId, ElasticsearchNode>>`. A request takes
//! the asking node out of the map, handles it with a [`View`] lending the others, and puts it
//! back (see `crate::elasticsearch`). The view reads cluster stores (their own locks) while the
//! node map is held; nothing takes the node map while holding a store lock.
//!
//! Name resolution (`resolve`), as seen from a namespace of a Kubernetes cluster:
//! - `svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local`: a Service of that cluster; the
//!   port must be one of its `ports[].port`, the `targetPort` (default: the port) picks the
//!   listener (9300 transport, 9443 remote cluster server while it runs, 9200 HTTP), and the
//!   Service selector must select at least one pod of an Elasticsearch;
//! - `<pod>.<statefulset>.<ns>.svc` (and shorter forms): a pod's DNS name under its headless
//!   Service; pod IPs (`status.podIP`) inside the same cluster;
//! - a `*.invalid` name: the `status.loadBalancer.ingress[].hostname` of a LoadBalancer
//!   Service in any cluster (the only way across clusters); never resolvable by a client
//!   outside the sandbox.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::cluster::{ClusterState, ListQuery};
use crate::elasticsearch::{
    ClusterFormation, Connection, ElasticsearchNode, Endpoint, EsBackend, EsHttpCerts, EsId,
    EsRequest, EsResponse, Interface, NodeLocation, NotConnectedReason, RemoteWorld,
    TrustRestrictions, parse_host_port, sha256_fingerprint,
};
use crate::resources::ResourceKey;

pub(crate) const LABEL_CLUSTER_NAME: &str = "elasticsearch.k8s.elastic.co/cluster-name";
pub(crate) const LABEL_TYPE: &str = "common.k8s.elastic.co/type";
pub(crate) const LABEL_STATEFULSET: &str = "elasticsearch.k8s.elastic.co/statefulset-name";
pub(crate) const CONFIG_DIR: &str = "/usr/share/elasticsearch/config";
pub(crate) const TRUST_RESTRICTIONS_PATH: &str =
    "xpack.security.transport.ssl.trust_restrictions.path";
const TRANSPORT_CAS: &str = "xpack.security.transport.ssl.certificate_authorities";
const CLIENT_CAS: &str = "xpack.security.remote_cluster_client.ssl.certificate_authorities";

/// Certificates the fake ECK made for one Elasticsearch.
#[derive(Clone)]
pub(crate) struct EsCerts {
    pub http: EsHttpCerts,
    pub http_tls: Arc<rustls::ServerConfig>,
    /// ECK's self-signed transport CA (also signs the remote cluster server certificate).
    pub transport_ca_pem: String,
    pub transport_ca_fingerprint: String,
}

/// A self-signed CA like ECK's transport CA (`CN=<es>-transport, OU=<es>`): PEM, fingerprint.
fn transport_ca(es: &str) -> Result<(String, String)> {
    let ca = crate::pki::Ca::with_unit(es, &format!("{es}-transport"))?;
    Ok((
        ca.cert.cert_pem.clone(),
        sha256_fingerprint(&ca.cert.cert_der),
    ))
}

/// SHA-256 fingerprints of every certificate in a PEM bundle.
pub(crate) fn pem_fingerprints(pem: &str) -> Vec<String> {
    x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .filter_map(|p| p.ok())
        .filter(|p| p.label == "CERTIFICATE")
        .map(|p| sha256_fingerprint(&p.contents))
        .collect()
}

/// What an external cluster exposes to the Kubernetes clusters, by host name.
#[derive(Clone)]
struct ExternalServer {
    id: EsId,
    /// CA of the remote cluster server certificate (9443).
    rcs_fingerprint: String,
    /// CA of the transport certificate (the regional CA for a hosted external).
    transport_fingerprint: String,
    /// 9300, or 9400 for a hosted external (the ECH/ECE proxy's transport port).
    transport_port: u16,
}

/// Transport trust restrictions of an external cluster.
#[derive(Clone)]
struct ExternalRestrictions {
    /// The pattern that matches its own nodes (always part of the restriction once there is one).
    own_pattern: String,
    /// A hosted deployment always restricts (ECH); a self-managed one only once its
    /// administrator configured patterns.
    always: bool,
    /// Patterns its administrator added.
    patterns: Vec<String>,
}

/// The certificates of an external cluster's remote cluster server and transport.
pub(crate) struct ExternalCas {
    pub rcs_ca_pem: String,
    pub transport_ca_pem: String,
}

/// Trust restrictions of one nodeSet: `None` without the setting, `Some(Err)` when the file
/// cannot be read or parsed (the node does not start), else the patterns.
pub(crate) type NodeSetRestrictions = Option<std::result::Result<Vec<String>, String>>;

/// Everything simulated outside the API servers.
#[derive(Default)]
pub(crate) struct World {
    clusters: RwLock<Vec<Arc<ClusterState>>>,
    nodes: Mutex<HashMap<EsId, ElasticsearchNode>>,
    certs: Mutex<HashMap<EsId, EsCerts>>,
    /// Whether the remote cluster server listener runs (set when a rollout completes).
    rcs_running: Mutex<HashMap<EsId, bool>>,
    /// Keystore files written without a restart (file-based secure settings).
    pending_keystores: Mutex<HashMap<EsId, BTreeMap<String, String>>>,
    /// Elasticsearch outside every Kubernetes cluster, by the host name of their remote cluster
    /// server and transport.
    external_servers: Mutex<HashMap<String, ExternalServer>>,
    /// CAs an external Elasticsearch trusts for its remote cluster client (and transport), as
    /// its administrator configured them with `Sandbox::external_admin`.
    external_client_trust: Mutex<HashMap<EsId, Vec<String>>>,
    /// CAs an external Elasticsearch trusts for its transport only
    /// (`Sandbox::external_admin_trust_transport`).
    external_transport_trust: Mutex<HashMap<EsId, Vec<String>>>,
    /// Transport trust restrictions of external Elasticsearch.
    external_restrictions: Mutex<HashMap<EsId, ExternalRestrictions>>,
    /// The CA shared by every hosted external (one region of Elastic Cloud Hosted): PEM and
    /// fingerprint, made on first use.
    regional_ca: Mutex<Option<(String, String)>>,
    /// CAs every JVM trusts out of the box (a publicly trusted CA, as Elastic Cloud Hosted uses).
    public_cas: Mutex<Vec<String>>,
}

impl World {
    pub(crate) fn add_cluster(&self, state: Arc<ClusterState>) {
        self.clusters.write().expect("world clusters").push(state);
    }

    pub(crate) fn cluster(&self, name: &str) -> Option<Arc<ClusterState>> {
        self.clusters
            .read()
            .expect("world clusters")
            .iter()
            .find(|c| c.name == name)
            .cloned()
    }

    fn all_clusters(&self) -> Vec<Arc<ClusterState>> {
        self.clusters.read().expect("world clusters").clone()
    }

    /// The certificates of an Elasticsearch, made on first use.
    pub(crate) fn certs(&self, id: &EsId) -> Result<EsCerts> {
        let mut certs = self.certs.lock().expect("world certs");
        if let Some(c) = certs.get(id) {
            return Ok(c.clone());
        }
        let http = EsHttpCerts::generate(&id.name, &id.namespace)?;
        let http_tls = http.server_config()?;
        let (transport_ca_pem, transport_ca_fingerprint) = transport_ca(&id.name)?;
        let c = EsCerts {
            http,
            http_tls,
            transport_ca_pem,
            transport_ca_fingerprint,
        };
        certs.insert(id.clone(), c.clone());
        Ok(c)
    }

    /// A new transport CA for `id`, as after ECK's CA rotation (`caValidity`/`caRotateBefore`):
    /// the operator publishes it on its next pass; copies made elsewhere go stale.
    pub(crate) fn rotate_transport_ca(&self, id: &EsId) -> Result<()> {
        let (pem, fingerprint) = transport_ca(&id.name)?;
        let mut certs = self.certs.lock().expect("world certs");
        let entry = certs
            .get_mut(id)
            .with_context(|| format!("no certificates for {id:?} yet"))?;
        entry.transport_ca_pem = pem;
        entry.transport_ca_fingerprint = fingerprint;
        Ok(())
    }

    /// The regional CA of hosted externals (PEM, fingerprint), made on first use.
    fn regional_ca(&self) -> Result<(String, String)> {
        let mut ca = self.regional_ca.lock().expect("regional CA");
        if let Some(c) = ca.as_ref() {
            return Ok(c.clone());
        }
        let made = transport_ca("cloud-region")?;
        *ca = Some(made.clone());
        Ok(made)
    }

    /// Registers the remote cluster server (port 9443) and transport (9300, or 9400 when
    /// `hosted`) of an external Elasticsearch under `host`, reachable from every Kubernetes
    /// cluster. The remote cluster server has a CA of its own; the transport certificate is
    /// signed by the same CA, or by the regional CA shared by all hosted externals. Its nodes'
    /// transport certificates match `own_pattern`; a hosted one restricts transport trust from
    /// the start.
    pub(crate) fn add_external_server(
        &self,
        host: &str,
        id: &EsId,
        hosted: bool,
        own_pattern: &str,
        rcs_ca: Option<String>,
    ) -> Result<ExternalCas> {
        let (rcs_ca_pem, rcs_fingerprint) = match rcs_ca {
            Some(pem) => {
                let fingerprint = pem_fingerprints(&pem)
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                (pem, fingerprint)
            }
            None => transport_ca(&id.name)?,
        };
        let (transport_ca_pem, transport_fingerprint) = if hosted {
            self.regional_ca()?
        } else {
            (rcs_ca_pem.clone(), rcs_fingerprint.clone())
        };
        self.external_servers
            .lock()
            .expect("external servers")
            .insert(
                host.to_string(),
                ExternalServer {
                    id: id.clone(),
                    rcs_fingerprint,
                    transport_fingerprint,
                    transport_port: if hosted { 9400 } else { 9300 },
                },
            );
        self.external_restrictions
            .lock()
            .expect("external restrictions")
            .insert(
                id.clone(),
                ExternalRestrictions {
                    own_pattern: own_pattern.to_string(),
                    always: hosted,
                    patterns: Vec::new(),
                },
            );
        Ok(ExternalCas {
            rcs_ca_pem,
            transport_ca_pem,
        })
    }

    /// Makes the CA of an external cluster's remote cluster server publicly trusted.
    pub(crate) fn make_public(&self, host: &str) {
        if let Some(server) = self
            .external_servers
            .lock()
            .expect("external servers")
            .get(host)
        {
            self.public_cas
                .lock()
                .expect("public CAs")
                .push(server.rcs_fingerprint.clone());
        }
    }

    /// An external cluster's administrator adds a CA to its remote cluster client trust.
    pub(crate) fn trust_on_external(&self, id: &EsId, fingerprint: String) {
        self.external_client_trust
            .lock()
            .expect("external trust")
            .entry(id.clone())
            .or_default()
            .push(fingerprint);
    }

    /// An external cluster's administrator adds a CA to its transport trust and accepts transport
    /// peers whose certificate names match `patterns`.
    pub(crate) fn trust_transport_on_external(
        &self,
        id: &EsId,
        fingerprints: Vec<String>,
        patterns: &[&str],
    ) {
        self.external_transport_trust
            .lock()
            .expect("external transport trust")
            .entry(id.clone())
            .or_default()
            .extend(fingerprints);
        if let Some(r) = self
            .external_restrictions
            .lock()
            .expect("external restrictions")
            .get_mut(id)
        {
            r.patterns.extend(patterns.iter().map(|p| p.to_string()));
        }
    }

    pub(crate) fn has_node(&self, id: &EsId) -> bool {
        self.nodes.lock().expect("world nodes").contains_key(id)
    }

    pub(crate) fn insert_node(&self, node: ElasticsearchNode) {
        self.nodes
            .lock()
            .expect("world nodes")
            .insert(node.id.clone(), node);
    }

    pub(crate) fn remove_node(&self, id: &EsId) {
        self.nodes.lock().expect("world nodes").remove(id);
        self.certs.lock().expect("world certs").remove(id);
        self.rcs_running.lock().expect("rcs").remove(id);
        self.pending_keystores.lock().expect("pending").remove(id);
    }

    /// Mutable access to one node (the operator's view of a running cluster).
    pub(crate) fn with_node_mut<R>(
        &self,
        id: &EsId,
        f: impl FnOnce(&mut ElasticsearchNode) -> R,
    ) -> Option<R> {
        self.nodes.lock().expect("world nodes").get_mut(id).map(f)
    }

    pub(crate) fn set_rcs_running(&self, id: &EsId, on: bool) {
        self.rcs_running.lock().expect("rcs").insert(id.clone(), on);
    }

    fn rcs_running(&self, id: &EsId) -> bool {
        self.rcs_running
            .lock()
            .expect("rcs")
            .get(id)
            .copied()
            .unwrap_or(false)
    }

    pub(crate) fn set_pending_keystore(&self, id: &EsId, ks: Option<BTreeMap<String, String>>) {
        let mut p = self.pending_keystores.lock().expect("pending");
        match ks {
            Some(ks) => {
                p.insert(id.clone(), ks);
            }
            None => {
                p.remove(id);
            }
        }
    }

    /// Runs `f` on node `id` with the rest of the world lent to it.
    fn with_view<R>(
        &self,
        id: &EsId,
        f: impl FnOnce(&mut ElasticsearchNode, &View<'_>) -> R,
    ) -> Option<R> {
        let mut nodes = self.nodes.lock().expect("world nodes");
        let mut node = nodes.remove(id)?;
        let out = {
            let view = View {
                others: &nodes,
                world: self,
            };
            f(&mut node, &view)
        };
        nodes.insert(id.clone(), node);
        Some(out)
    }

    /// One REST request to node `id` (503 when it does not exist or its nodes did not start).
    pub(crate) fn handle(&self, id: &EsId, req: &EsRequest) -> EsResponse {
        let not_running = || EsResponse {
            status: 503,
            headers: Vec::new(),
            body: json!({"error": "not running"}),
        };
        self.with_view(id, |node, view| match node.formation {
            ClusterFormation::NodesNotStarted { .. } => not_running(),
            _ => node.handle(req, view),
        })
        .unwrap_or_else(not_running)
    }

    /// What serves `id`'s HTTP requests (through a port-forward, or an external's listener).
    pub(crate) fn backend(world: &Arc<World>, id: EsId) -> Arc<dyn EsBackend> {
        let world = world.clone();
        Arc::new(move |req: EsRequest| world.handle(&id, &req))
    }

    /// What serves the HTTP requests of pod `pod` of `id`: [`World::backend`], except that a
    /// node without the `remote_cluster_client` role knows no remote clusters and refuses the
    /// calls that need them (diagnostics.md section 1 and row 15; cloud-on-k8s#8430).
    pub(crate) fn pod_backend(
        world: &Arc<World>,
        id: EsId,
        pod: &str,
        remote_cluster_client: bool,
    ) -> Arc<dyn EsBackend> {
        let all = World::backend(world, id);
        if remote_cluster_client {
            return all;
        }
        let pod = pod.to_string();
        Arc::new(move |req: EsRequest| {
            let remote_expression = |prefix: &str| {
                req.path
                    .strip_prefix(prefix)
                    .is_some_and(|expression| expression.contains(':'))
            };
            let refusal = if req.path == "/_remote/info" {
                Some(format!(
                    "node [{pod}] does not have the [remote_cluster_client] role"
                ))
            } else if remote_expression("/_resolve/cluster/")
                || remote_expression("/_resolve/index/")
            {
                Some(format!(
                    "node [{pod}] does not have the remote cluster client role enabled"
                ))
            } else {
                None
            };
            match refusal {
                Some(reason) => {
                    EsResponse::from_error(&crate::elasticsearch::EsError::illegal_argument(reason))
                }
                None => all.handle(req),
            }
        })
    }

    /// Whether the HTTP server of `id`'s nodes runs (port-forward reaches it even while the
    /// pods are not Ready because no master was elected).
    pub(crate) fn http_up_without_master(&self, id: &EsId) -> bool {
        self.read_node(id, |n| {
            matches!(n.formation, ClusterFormation::NoMaster { .. })
        })
        .unwrap_or(false)
    }

    /// The nodes of `id` started again: their remote connections are attempted anew.
    pub(crate) fn restart_connections(&self, id: &EsId) {
        self.with_view(id, |node, view| node.restart_connections(view));
    }

    pub(crate) fn remote_info(&self, id: &EsId) -> Option<Value> {
        self.with_view(id, |node, view| node.remote_info(view))
    }

    /// The remote-connection lines `id`'s nodes log now (see `elasticsearch::connection_log`).
    pub(crate) fn connection_log(&self, id: &EsId, at: &str) -> Option<Vec<String>> {
        self.with_view(id, |node, view| {
            crate::elasticsearch::connection_log(node, view, at)
        })
    }

    pub(crate) fn diagnose(
        &self,
        id: &EsId,
        alias: &str,
    ) -> Option<Result<Connection, NotConnectedReason>> {
        self.with_view(id, |node, view| node.diagnose(alias, view))
    }

    pub(crate) fn read_node<R>(
        &self,
        id: &EsId,
        f: impl FnOnce(&ElasticsearchNode) -> R,
    ) -> Option<R> {
        self.nodes.lock().expect("world nodes").get(id).map(f)
    }

    // ------------------------------------------------------------ Kubernetes state helpers

    fn es_object(&self, id: &EsId) -> Option<(Arc<ClusterState>, Value)> {
        let c = self.cluster(&id.cluster)?;
        let es = c
            .get(&ResourceKey::ELASTICSEARCHES, Some(&id.namespace), &id.name)
            .ok()?;
        Some((c, es))
    }

    /// The content of a file an Elasticsearch node sees: ECK's mounts, and ConfigMap/Secret
    /// volumes of `nodeSets[node_set].podTemplate` (with `None`: the first nodeSet that has a
    /// matching mount).
    fn read_es_file(
        &self,
        c: &ClusterState,
        es: &Value,
        path: &str,
        node_set: Option<usize>,
    ) -> Option<String> {
        let ns = es.pointer("/metadata/namespace")?.as_str()?;
        let name = es.pointer("/metadata/name")?.as_str()?;
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("{CONFIG_DIR}/{path}")
        };
        if path == format!("{CONFIG_DIR}/transport-certs/ca.crt") {
            return secret_key(
                c,
                ns,
                &format!("{name}-es-transport-certs-public"),
                "ca.crt",
            );
        }
        if path == format!("{CONFIG_DIR}/transport-remote-certs/ca.crt") {
            return secret_key(c, ns, &format!("{name}-es-remote-ca"), "ca.crt");
        }
        for (i, set) in node_sets(es).iter().enumerate() {
            if node_set.is_some_and(|n| n != i) {
                continue;
            }
            let pod = set.pointer("/podTemplate/spec");
            let volumes = pod
                .and_then(|p| p.get("volumes"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let containers = pod
                .and_then(|p| p.get("containers"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for ct in containers
                .iter()
                .filter(|c| c.get("name").and_then(Value::as_str) == Some("elasticsearch"))
            {
                for m in ct
                    .get("volumeMounts")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let mount = m.get("mountPath").and_then(Value::as_str).unwrap_or("");
                    let mount = mount.trim_end_matches('/');
                    let key = match m.get("subPath").and_then(Value::as_str) {
                        Some(sub) if path == mount => sub.to_string(),
                        Some(_) => continue,
                        None => match path.strip_prefix(&format!("{mount}/")) {
                            Some(k) if !k.contains('/') => k.to_string(),
                            _ => continue,
                        },
                    };
                    let vname = m.get("name").and_then(Value::as_str).unwrap_or("");
                    let Some(vol) = volumes
                        .iter()
                        .find(|v| v.get("name").and_then(Value::as_str) == Some(vname))
                    else {
                        continue;
                    };
                    if let Some(cm) = vol.pointer("/configMap/name").and_then(Value::as_str) {
                        return configmap_key(c, ns, cm, &key);
                    }
                    if let Some(s) = vol.pointer("/secret/secretName").and_then(Value::as_str) {
                        return secret_key(c, ns, s, &key);
                    }
                }
            }
        }
        None
    }

    /// CA fingerprints trusted by `local` on an interface (see [`RemoteWorld::trusted_cas`]).
    /// Transport: the CAs every nodeSet trusts (a connection may land on any node), each from
    /// its own config and mounts. Remote cluster client: the first nodeSet stands for the
    /// cluster.
    fn trusted(&self, local: &EsId, interface: Interface) -> Vec<String> {
        let Some((c, es)) = self.es_object(local) else {
            // An external cluster: what its administrator configured.
            let of = |m: &Mutex<HashMap<EsId, Vec<String>>>| {
                m.lock()
                    .expect("external trust")
                    .get(local)
                    .cloned()
                    .unwrap_or_default()
            };
            let mut out = match interface {
                Interface::RemoteClusterServer => of(&self.external_client_trust),
                Interface::Transport => {
                    let mut v = of(&self.external_client_trust);
                    v.extend(of(&self.external_transport_trust));
                    v
                }
                Interface::Http => Vec::new(),
            };
            out.sort();
            out.dedup();
            return out;
        };
        let eck_files = [
            format!("{CONFIG_DIR}/transport-certs/ca.crt"),
            format!("{CONFIG_DIR}/transport-remote-certs/ca.crt"),
        ];
        let fingerprints = |files: &[String], node_set: Option<usize>| -> BTreeSet<String> {
            files
                .iter()
                .filter_map(|f| self.read_es_file(&c, &es, f, node_set))
                .flat_map(|pem| pem_fingerprints(&pem))
                .collect()
        };
        let sets = node_sets(&es);
        match interface {
            Interface::Http => Vec::new(),
            Interface::Transport => {
                // User lists are appended to ECK's (ucfg AppendValues).
                let mut common: Option<BTreeSet<String>> = None;
                for (i, set) in sets.iter().enumerate() {
                    let mut files = eck_files.to_vec();
                    files.extend(config_list(set.get("config"), TRANSPORT_CAS));
                    let mine = fingerprints(&files, Some(i));
                    common = Some(match common {
                        None => mine,
                        Some(acc) => acc.intersection(&mine).cloned().collect(),
                    });
                }
                common
                    .unwrap_or_else(|| fingerprints(&eck_files, None))
                    .into_iter()
                    .collect()
            }
            Interface::RemoteClusterServer => {
                let api_key = es
                    .pointer("/spec/remoteClusters")
                    .and_then(Value::as_array)
                    .is_some_and(|l| l.iter().any(|e| e.get("apiKey").is_some()));
                let mut files = if api_key {
                    eck_files.to_vec()
                } else {
                    Vec::new()
                };
                let first = sets.first().and_then(|s| s.get("config"));
                files.extend(config_list(first, CLIENT_CAS));
                // `ssl.enabled` defaults to true (`XPackSettings.REMOTE_CLUSTER_CLIENT_SSL_ENABLED`);
                // without TLS nothing of a remote cluster server is trusted.
                let ssl_off = first
                    .map(flatten_config)
                    .and_then(|flat| {
                        flat.get("xpack.security.remote_cluster_client.ssl.enabled")
                            .cloned()
                    })
                    .is_some_and(|v| v == Value::Bool(false) || v == Value::String("false".into()));
                if ssl_off {
                    return Vec::new();
                }
                // A configured `certificate_authorities` list (ECK's for API-key remotes, and the
                // user's, appended) is the whole trust; the JVM's default trust store (publicly
                // trusted CAs) applies only without one (`SslConfigurationLoader.buildTrustConfig`).
                if files.is_empty() {
                    return self.public_cas.lock().expect("public CAs").clone();
                }
                fingerprints(&files, None).into_iter().collect()
            }
        }
    }

    /// Why the nodes of a nodeSet of an ECK Elasticsearch do not start, for the first nodeSet
    /// that cannot: a `podTemplate` volume whose ConfigMap or Secret does not exist (and is not
    /// `optional`) keeps the pod from starting (the kubelet's `MountVolume.SetUp failed`), and
    /// a file of the nodeSet's `xpack.security.{transport,remote_cluster_client}.ssl.certificate_authorities`
    /// that is missing or holds no PEM certificate stops Elasticsearch at start
    /// (`PemTrustConfig.readCertificates`, `SslConfigException`).
    pub(crate) fn node_set_start_failure(&self, id: &EsId) -> Option<String> {
        let (c, es) = self.es_object(id)?;
        let ns = id.namespace.as_str();
        for (i, set) in node_sets(&es).iter().enumerate() {
            let set_name = set.get("name").and_then(Value::as_str).unwrap_or("");
            for volume in set
                .pointer("/podTemplate/spec/volumes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let vname = volume.get("name").and_then(Value::as_str).unwrap_or("");
                let source = [
                    ("configMap", "name", ResourceKey::CONFIGMAPS, "configmap"),
                    ("secret", "secretName", ResourceKey::SECRETS, "secret"),
                ]
                .into_iter()
                .find_map(|(field, key, kind, what)| {
                    let src = volume.get(field)?;
                    let optional = src.get("optional").and_then(Value::as_bool) == Some(true);
                    let name = src.get(key).and_then(Value::as_str)?;
                    (!optional && c.get(&kind, Some(ns), name).is_err())
                        .then(|| format!("{what} \"{name}\" not found"))
                });
                if let Some(missing) = source {
                    return Some(format!(
                        "nodeSet [{set_name}]: MountVolume.SetUp failed for volume \"{vname}\" : {missing}"
                    ));
                }
            }
            for setting in [TRANSPORT_CAS, CLIENT_CAS] {
                let prefix = setting.trim_end_matches(".certificate_authorities");
                for file in config_list(set.get("config"), setting) {
                    let reason = match self.read_es_file(&c, &es, &file, Some(i)) {
                        None => Some(format!(
                            "cannot read configured PEM certificate_authorities [{file}] because the file does not exist"
                        )),
                        Some(pem) if pem_fingerprints(&pem).is_empty() => {
                            Some(format!("failed to parse any certificates from [{file}]"))
                        }
                        Some(_) => None,
                    };
                    if let Some(reason) = reason {
                        return Some(format!(
                            "nodeSet [{set_name}]: failed to load SSL configuration [{prefix}] - {reason}"
                        ));
                    }
                }
            }
        }
        None
    }

    /// The trust restrictions of every nodeSet of an ECK Elasticsearch, in order, as its nodes
    /// load them: the file named by `xpack.security.transport.ssl.trust_restrictions.path` in
    /// that nodeSet's config, read through that nodeSet's mounts, YAML with
    /// `trust.subject_name` (a list, or one comma-separated string). `(nodeSet name, ..)`.
    pub(crate) fn node_set_restrictions(&self, id: &EsId) -> Vec<(String, NodeSetRestrictions)> {
        let Some((c, es)) = self.es_object(id) else {
            return Vec::new();
        };
        node_sets(&es)
            .iter()
            .enumerate()
            .map(|(i, set)| {
                let name = set
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let path = set
                    .get("config")
                    .map(flatten_config)
                    .and_then(|flat| flat.get(TRUST_RESTRICTIONS_PATH).cloned());
                let restrictions = path.map(|p| {
                    let p = match &p {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let text = self.read_es_file(&c, &es, &p, Some(i)).ok_or_else(|| {
                        format!("failed to initialize TrustManager for restrictedTrust=[{p}]: java.nio.file.NoSuchFileException: {p}")
                    })?;
                    parse_trust_restrictions(&text).map_err(|e| {
                        format!("failed to initialize TrustManager for restrictedTrust=[{p}]: {e}")
                    })
                });
                (name, restrictions)
            })
            .collect()
    }

    /// The transport trust restrictions `id` applies to peers (see [`TrustRestrictions`]).
    fn transport_restrictions(&self, id: &EsId) -> TrustRestrictions {
        if self.es_object(id).is_none() {
            let ext = self
                .external_restrictions
                .lock()
                .expect("external restrictions")
                .get(id)
                .cloned();
            return match ext {
                Some(r) if r.always || !r.patterns.is_empty() => {
                    let mut group = vec![r.own_pattern];
                    group.extend(r.patterns);
                    TrustRestrictions {
                        groups: vec![group],
                    }
                }
                _ => TrustRestrictions::default(),
            };
        }
        TrustRestrictions {
            groups: self
                .node_set_restrictions(id)
                .into_iter()
                // An unreadable file: nothing is trusted (the node would not have started).
                .filter_map(|(_, r)| r.map(|r| r.unwrap_or_default()))
                .collect(),
        }
    }

    /// The Endpoint behind `port` of the Elasticsearch whose pods `pod_labels` belong to.
    fn endpoint(
        &self,
        c: &ClusterState,
        ns: &str,
        es_name: &str,
        target_port: u16,
    ) -> Option<Endpoint> {
        let id = EsId::new(&c.name, ns, es_name);
        let es = c
            .get(&ResourceKey::ELASTICSEARCHES, Some(ns), es_name)
            .ok()?;
        let interface = match target_port {
            9300 => Interface::Transport,
            9443 if self.rcs_running(&id) => Interface::RemoteClusterServer,
            9200 => Interface::Http,
            _ => return None,
        };
        let certs = self.certs.lock().expect("world certs").get(&id).cloned()?;
        let (tls_names, ca_fingerprint) = match interface {
            Interface::Http => (certs.http.dns_names.clone(), certs.http.ca_fingerprint()),
            _ => (
                transport_names(c, &es, self.rcs_running(&id)),
                certs.transport_ca_fingerprint.clone(),
            ),
        };
        Some(Endpoint {
            target: id,
            interface,
            tls_names,
            ca_fingerprint,
        })
    }

    /// A Service's port to an Endpoint: through `targetPort` to the pods it selects.
    fn via_service(&self, c: &ClusterState, svc: &Value, port: u16) -> Option<Endpoint> {
        let ns = svc.pointer("/metadata/namespace")?.as_str()?;
        let p = svc
            .pointer("/spec/ports")?
            .as_array()?
            .iter()
            .find(|p| p.get("port").and_then(Value::as_u64) == Some(port as u64))?;
        let selector = svc.pointer("/spec/selector")?.as_object()?;
        if selector.is_empty() {
            return None;
        }
        let pods = list(c, &ResourceKey::PODS, Some(ns), None);
        let pod = pods.iter().find(|pod| {
            selector.iter().all(|(k, v)| {
                pod.pointer("/metadata/labels")
                    .and_then(|l| l.get(k))
                    .is_some_and(|x| x == v)
            })
        })?;
        // `targetPort`: a number, the name of a container port of the pod, or unset (= port).
        let target = match p.get("targetPort") {
            Some(Value::Number(n)) => n.as_u64()? as u16,
            Some(Value::String(named)) => pod
                .pointer("/spec/containers")?
                .as_array()?
                .iter()
                .flat_map(|c| {
                    c.get("ports")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                })
                .find(|cp| cp.get("name").and_then(Value::as_str) == Some(named))?
                .get("containerPort")?
                .as_u64()? as u16,
            _ => port,
        };
        self.endpoint(c, ns, es_of_pod(pod)?, target)
    }

    fn resolve_in(&self, from: &NodeLocation, host: &str, port: u16) -> Option<Endpoint> {
        if let Some(server) = self
            .external_servers
            .lock()
            .expect("external servers")
            .get(host)
            .cloned()
        {
            // The remote cluster server (9443) and the transport (9300; 9400 on a hosted
            // deployment's proxy) are exposed, with certificates that name the host.
            let (interface, ca_fingerprint) = match port {
                9443 => (Interface::RemoteClusterServer, server.rcs_fingerprint),
                p if p == server.transport_port => {
                    (Interface::Transport, server.transport_fingerprint)
                }
                _ => return None,
            };
            return Some(Endpoint {
                target: server.id,
                interface,
                tls_names: vec![host.to_string()],
                ca_fingerprint,
            });
        }
        if host.ends_with(".invalid") {
            for c in self.all_clusters() {
                for svc in list(&c, &ResourceKey::SERVICES, None, None) {
                    let lb = svc
                        .pointer("/status/loadBalancer/ingress")
                        .and_then(Value::as_array)
                        .is_some_and(|i| {
                            i.iter()
                                .any(|x| x.get("hostname").and_then(Value::as_str) == Some(host))
                        });
                    if lb
                        && svc.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer")
                    {
                        return self.via_service(&c, &svc, port);
                    }
                }
            }
            return None;
        }
        let c = self.cluster(&from.cluster)?;
        if host.parse::<std::net::IpAddr>().is_ok() {
            let pods = list(&c, &ResourceKey::PODS, None, None);
            let pod = pods
                .iter()
                .find(|p| p.pointer("/status/podIP").and_then(Value::as_str) == Some(host))?;
            let ns = pod.pointer("/metadata/namespace")?.as_str()?;
            return self.endpoint(&c, ns, es_of_pod(pod)?, port);
        }
        let parts: Vec<&str> = host.split('.').collect();
        let trimmed: Vec<&str> = match parts.as_slice() {
            [rest @ .., "svc", "cluster", "local"] => rest.to_vec(),
            [rest @ .., "svc"] => rest.to_vec(),
            other => other.to_vec(),
        };
        // Service forms.
        let (svc, ns) = match trimmed.as_slice() {
            [svc] => (Some(*svc), from.namespace.as_str()),
            [svc, ns] => (Some(*svc), *ns),
            _ => (None, ""),
        };
        if let Some(svc) = svc
            && let Ok(obj) = c.get(&ResourceKey::SERVICES, Some(ns), svc)
        {
            return self.via_service(&c, &obj, port);
        }
        // Pod forms: <pod>.<subdomain>[.<ns>].
        let (pod, sub, ns) = match trimmed.as_slice() {
            [pod, sub] => (*pod, *sub, from.namespace.as_str()),
            [pod, sub, ns] => (*pod, *sub, *ns),
            _ => return None,
        };
        let pod = c.get(&ResourceKey::PODS, Some(ns), pod).ok()?;
        if pod.pointer("/spec/subdomain").and_then(Value::as_str) != Some(sub) {
            return None;
        }
        self.endpoint(&c, ns, es_of_pod(&pod)?, port)
    }
}

/// `spec.nodeSets` of an Elasticsearch object.
pub(crate) fn node_sets(es: &Value) -> &[Value] {
    es.pointer("/spec/nodeSets")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The Elasticsearch a pod belongs to (its `cluster-name` label).
pub(crate) fn es_of_pod(pod: &Value) -> Option<&str> {
    pod.pointer("/metadata/labels")?
        .get(LABEL_CLUSTER_NAME)?
        .as_str()
}

/// DNS names and IPs in ECK's transport (and remote cluster server) certificates (doc 2.6).
fn transport_names(c: &ClusterState, es: &Value, rcs: bool) -> Vec<String> {
    let ns = es
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = es
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut out = vec![format!("{name}-es-transport.{ns}.svc")];
    if rcs {
        out.push(format!("{name}-es-remote-cluster.{ns}.svc"));
    }
    let sel = format!("{LABEL_CLUSTER_NAME}={name}");
    for pod in list(c, &ResourceKey::PODS, Some(ns), Some(&sel)) {
        let pname = pod
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let sub = pod
            .pointer("/spec/subdomain")
            .and_then(Value::as_str)
            .unwrap_or("");
        out.push(format!("{pname}.{sub}"));
        if rcs {
            out.push(format!("{pname}.{sub}.{ns}.svc"));
        }
        if let Some(ip) = pod.pointer("/status/podIP").and_then(Value::as_str) {
            out.push(ip.to_string());
        }
    }
    out.push("127.0.0.1".into());
    for san in es
        .pointer("/spec/transport/tls/subjectAltNames")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for k in ["dns", "ip"] {
            if let Some(v) = san.get(k).and_then(Value::as_str) {
                out.push(v.to_string());
            }
        }
    }
    out
}

/// A list setting of a nodeSet config (YAML list, or a comma-separated string).
fn config_list(config: Option<&Value>, key: &str) -> Vec<String> {
    let Some(flat) = config.map(flatten_config) else {
        return Vec::new();
    };
    match flat.get(key) {
        Some(Value::String(s)) => s.split(',').map(|p| p.trim().to_string()).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// The patterns of a trust restrictions file (`trust.subject_name`, nested or dotted; a list, or
/// one string split on commas as Elasticsearch's `Settings.getAsList` does). An empty file or a
/// missing key gives no pattern (nobody is trusted); text that is not a YAML mapping is an error.
pub(crate) fn parse_trust_restrictions(text: &str) -> std::result::Result<Vec<String>, String> {
    let doc: Value = serde_saphyr::from_str(text).map_err(|e| format!("invalid YAML: {e}"))?;
    let flat = match &doc {
        Value::Null => BTreeMap::new(),
        Value::Object(_) => flatten_config(&doc),
        _ => return Err("the trust restrictions file is not a YAML mapping".into()),
    };
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    Ok(match flat.get("trust.subject_name") {
        Some(Value::Array(a)) => a.iter().filter_map(scalar).collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
        Some(v) => scalar(v).into_iter().collect(),
        None => Vec::new(),
    })
}

/// `nodeSets[].config` as flat dotted keys (nested and flat forms mixed, as ES accepts).
pub(crate) fn flatten_config(v: &Value) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, x, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", v, &mut out);
    out
}

pub(crate) fn list(
    c: &ClusterState,
    key: &ResourceKey,
    ns: Option<&str>,
    selector: Option<&str>,
) -> Vec<Value> {
    let q = ListQuery {
        label_selector: selector.map(str::to_string),
        ..ListQuery::default()
    };
    c.list(key, ns, &q)
        .ok()
        .and_then(|l| l.get("items").and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

pub(crate) fn decode_b64(v: &Value) -> Option<String> {
    STANDARD
        .decode(v.as_str()?)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

pub(crate) fn secret_key(c: &ClusterState, ns: &str, name: &str, key: &str) -> Option<String> {
    let s = c.get(&ResourceKey::SECRETS, Some(ns), name).ok()?;
    decode_b64(s.pointer("/data")?.get(key)?)
}

pub(crate) fn configmap_key(c: &ClusterState, ns: &str, name: &str, key: &str) -> Option<String> {
    let s = c.get(&ResourceKey::CONFIGMAPS, Some(ns), name).ok()?;
    s.pointer("/data")?.get(key)?.as_str().map(str::to_string)
}

/// The world as one node sees it while it handles a request.
pub(crate) struct View<'a> {
    others: &'a HashMap<EsId, ElasticsearchNode>,
    world: &'a World,
}

impl RemoteWorld for View<'_> {
    fn resolve(&self, from: &NodeLocation, address: &str) -> Option<Endpoint> {
        let (host, port) = parse_host_port(address).ok()?;
        self.world.resolve_in(from, &host, port)
    }

    fn trusted_cas(&self, local: &EsId, interface: Interface) -> Vec<String> {
        self.world.trusted(local, interface)
    }

    fn with_node(&self, id: &EsId, f: &mut dyn FnMut(&ElasticsearchNode)) {
        // A cluster that did not form answers no transport connection.
        if let Some(n) = self.others.get(id)
            && n.is_formed()
        {
            f(n)
        }
    }

    fn transport_trust_restrictions(&self, local: &EsId) -> TrustRestrictions {
        self.world.transport_restrictions(local)
    }

    fn pending_keystore(&self, local: &EsId) -> Option<BTreeMap<String, String>> {
        self.world
            .pending_keystores
            .lock()
            .expect("pending")
            .get(local)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::parse_trust_restrictions;

    #[test]
    fn trust_restrictions_files() {
        let list = "trust.subject_name:\n  - \"*.node.a.cluster.1.account\"\n  - \"*.node.e.ns.es.local\"\n";
        assert_eq!(
            parse_trust_restrictions(list).unwrap(),
            ["*.node.a.cluster.1.account", "*.node.e.ns.es.local"]
        );
        let nested = "trust:\n  subject_name: [\"x.*\", 'y.*']\n";
        assert_eq!(parse_trust_restrictions(nested).unwrap(), ["x.*", "y.*"]);
        let one = "trust.subject_name: \"*.es.local, *.account\"\n";
        assert_eq!(
            parse_trust_restrictions(one).unwrap(),
            ["*.es.local", "*.account"]
        );
        assert_eq!(parse_trust_restrictions("").unwrap(), Vec::<String>::new());
        assert_eq!(
            parse_trust_restrictions("other: 1\n").unwrap(),
            Vec::<String>::new()
        );
        assert!(parse_trust_restrictions("trust.subject_name: [unclosed\n").is_err());
        assert!(parse_trust_restrictions("- a\n- b\n").is_err());
    }
}
