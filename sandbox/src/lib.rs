//! `remote-cluster-sandbox`: fake Kubernetes API servers (one per "cluster") with the ECK
//! `Elasticsearch` custom resource, for the integration tests and demos of `kubectl remote-cluster`.
//!
//! ```no_run
//! use remote_cluster_sandbox::{ClusterConfig, EsSeed, ResourceKey, Sandbox};
//! let sb = Sandbox::builder()
//!     .cluster(ClusterConfig::new("east").elasticsearch(EsSeed::new("prod", "logs", "9.1.0")))
//!     .cluster(ClusterConfig::new("west"))
//!     .start()
//!     .unwrap();
//! sb.write_kubeconfig(std::path::Path::new("/tmp/kubeconfig")).unwrap();
//! let es = sb.cluster("east").get(&ResourceKey::ELASTICSEARCHES, Some("prod"), "logs");
//! assert!(es.is_some());
//! ```
//!
//! See `docs/sandbox.md` for what is simulated and the source of each behaviour.

mod admission;
pub mod client;
mod cluster;
mod config;
mod discovery;
pub mod elasticsearch;
mod http_tls;
mod kubeconfig;
mod licence;
mod openapi;
mod operator;
pub mod pki;
pub mod portforward;
mod proto;
mod resources;
pub mod scenarios;
pub mod schema;
mod selector;
mod server;
pub mod status;
mod table;
mod world;

use std::collections::HashMap;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

pub use admission::WEBHOOK_NAME;
pub use client::{ApiClient, ApiResponse, ApiStream};
pub use cluster::{FieldValidation, PatchType, Sub, WatchEvent, WriteOpts};
pub use config::{
    ClusterConfig, ContextConfig, DEFAULT_WATCH_HISTORY, EsSeed, Fault, FaultAction, RequestRecord,
    Rule,
};
pub use discovery::KUBERNETES_VERSION;
pub use resources::{ResourceInfo, ResourceKey};
pub use schema::{EckFeatures, LATEST_ECK_VERSION};
pub use status::ApiError;

pub use server::Body;

use cluster::ClusterState;

/// The object a subresource request addresses (after authorization and a successful get).
#[derive(Debug, Clone)]
pub struct SubresourceTarget {
    pub namespace: Option<String>,
    pub name: String,
    /// The stored object (e.g. the Pod).
    pub object: Value,
    /// The authenticated user.
    pub user: String,
}

/// Answers a subresource such as `pods/portforward`. The request has no body but keeps its
/// extensions, so `hyper::upgrade::on(&mut req)` works (connections are served with upgrades).
pub type SubresourceHandler = Arc<
    dyn Fn(
            http::Request<()>,
            SubresourceTarget,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = http::Response<Body>> + Send>>
        + Send
        + Sync,
>;
use pki::{Ca, CertKey};

/// Builds a [`Sandbox`].
#[derive(Debug, Default)]
pub struct SandboxBuilder {
    clusters: Vec<ClusterConfig>,
    contexts: Vec<ContextConfig>,
    dead: Vec<String>,
    request_log_dir: Option<PathBuf>,
    operator_delay: Duration,
    operator_reaction_delay: Duration,
    license: Option<String>,
    /// External Elasticsearch: name, version, kind.
    externals: Vec<(String, String, ExternalKind)>,
}

/// What an external Elasticsearch plays.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ExternalKind {
    /// Self-managed, its remote cluster server certificate from a CA of its own.
    SelfManaged,
    /// Its remote cluster server certificate comes from a publicly trusted CA.
    PublicCa,
    /// An Elastic Cloud Hosted deployment of this organization.
    Hosted { organization_id: String },
}

impl SandboxBuilder {
    pub fn cluster(mut self, c: ClusterConfig) -> Self {
        self.clusters.push(c);
        self
    }

    /// An extra kubeconfig context (see [`ContextConfig`]).
    pub fn context(mut self, ctx: ContextConfig) -> Self {
        self.contexts.push(ctx);
        self
    }

    /// A context (and cluster and user entries of that name) whose server is
    /// `https://127.0.0.1:<port>` where nothing listens, with valid-looking certificates.
    pub fn dead_context(mut self, name: &str) -> Self {
        self.dead.push(name.to_string());
        self
    }

    /// Also append one JSON line per request to `DIR/<cluster>.jsonl`.
    pub fn request_log_dir(mut self, dir: &Path) -> Self {
        self.request_log_dir = Some(dir.to_path_buf());
        self
    }

    /// How long a rolling restart of an Elasticsearch takes for the fake ECK operator (a spec
    /// change or a secure settings change; also the first start of an Elasticsearch created
    /// without status). Default: zero (changes take effect on the operator's next pass).
    pub fn operator_delay(mut self, d: Duration) -> Self {
        self.operator_delay = d;
        self
    }

    /// How long the fake ECK operator takes to see a change of a secure-settings Secret (its
    /// informer and work queue; real-behaviour.md §6): until then it reconciles with the content
    /// it saw before, so nothing in the Elasticsearch status moves. Default: zero.
    pub fn operator_reaction_delay(mut self, d: Duration) -> Self {
        self.operator_reaction_delay = d;
        self
    }

    /// The ECK operator licence level written to each cluster's `elastic-system/elastic-licensing`
    /// ConfigMap: `enterprise` (default), `enterprise_trial` or `basic` (no remote-cluster
    /// automation, a Warning Event instead).
    pub fn license(mut self, license: &str) -> Self {
        self.license = Some(license.to_string());
        self
    }

    /// An Elasticsearch outside every Kubernetes cluster, served over HTTPS on `127.0.0.1`
    /// with a CA of its own (see [`Sandbox::external`]).
    pub fn external_elasticsearch(self, name: &str, version: &str) -> Self {
        self.external(name, version, ExternalKind::SelfManaged)
    }

    fn external(mut self, name: &str, version: &str, kind: ExternalKind) -> Self {
        self.externals
            .push((name.to_string(), version.to_string(), kind));
        self
    }

    /// An external Elasticsearch whose remote cluster server certificate comes from a publicly
    /// trusted CA (as on Elastic Cloud Hosted): locals trust it with client SSL on, no CA file.
    pub fn external_elasticsearch_with_public_ca(self, name: &str, version: &str) -> Self {
        self.external(name, version, ExternalKind::PublicCa)
    }

    /// An external Elasticsearch that plays an Elastic Cloud Hosted (ECH) deployment of
    /// organization `organization_id`: its deployment id is 32 hex digits derived from `name`,
    /// its two nodes' transport certificates are named
    /// `instance-000000000{i}.node.<deployment-id>.cluster.<organization_id>.account` and signed
    /// by one regional CA shared by every hosted external of the sandbox, its transport is
    /// reached through the proxy port 9400, and it always restricts transport trust to its own
    /// pattern plus those its administrator adds ([`Sandbox::external_admin_trust_transport`]).
    /// Its remote cluster server (API-key model) is that of any external.
    pub fn hosted_external_elasticsearch(
        self,
        name: &str,
        version: &str,
        organization_id: &str,
    ) -> Self {
        let kind = ExternalKind::Hosted {
            organization_id: organization_id.to_string(),
        };
        self.external(name, version, kind)
    }

    /// Starts every cluster's API server on its own runtime thread and returns once all listen.
    /// Safe to call from inside a tokio runtime (nothing blocks on the caller's runtime).
    pub fn start(self) -> Result<Sandbox> {
        if self.clusters.is_empty() && self.dead.is_empty() {
            bail!("a sandbox needs at least one cluster or dead context");
        }
        let mut seen = std::collections::HashSet::new();
        for name in self.clusters.iter().map(|c| &c.name).chain(&self.dead) {
            if !seen.insert(name.clone()) {
                bail!("duplicate cluster or dead context name {name:?}");
            }
        }
        let license = self.license.clone().unwrap_or_else(|| "enterprise".into());
        let world = Arc::new(world::World::default());
        let mut operators = Vec::new();
        let mut handles = Vec::new();
        let mut listeners = Vec::new();
        let mut kube = kubeconfig::Kubeconfig::default();
        for c in &self.clusters {
            let ca = Ca::new(&format!("{}-ca", c.name))?;
            let server_cert = ca.server_cert()?;
            let tls = Arc::new(pki::server_config(&ca.cert, &server_cert)?);
            let listener = StdListener::bind("127.0.0.1:0").context("binding a local port")?;
            listener.set_nonblocking(true)?;
            let port = listener.local_addr()?.port();
            let url = format!("https://127.0.0.1:{port}");

            // Client certificates: admin, declared users, and users named by extra contexts.
            let mut users: HashMap<String, CertKey> = HashMap::new();
            users.insert(
                "admin".into(),
                ca.client_cert("admin", &["system:masters"])?,
            );
            let ctx_users = self
                .contexts
                .iter()
                .filter(|x| x.cluster == c.name)
                .map(|x| x.user.clone());
            for u in c.users.iter().map(|(u, _)| u.clone()).chain(ctx_users) {
                if let std::collections::hash_map::Entry::Vacant(e) = users.entry(u) {
                    let cert = ca.client_cert(e.key(), &[])?;
                    e.insert(cert);
                }
            }
            let log_file = match &self.request_log_dir {
                Some(dir) => {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                    let path = dir.join(format!("{}.jsonl", c.name));
                    Some(
                        std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&path)
                            .with_context(|| format!("opening {}", path.display()))?,
                    )
                }
                None => None,
            };
            let rules: HashMap<String, Vec<Rule>> = c.users.iter().cloned().collect();
            let state = Arc::new(ClusterState::new(
                &c.name,
                c.eck_features(),
                c.latency,
                rules,
                log_file,
                c.watch_history,
            ));
            state.set_webhook(c.webhook);
            seed(&state, c)?;
            world.add_cluster(state.clone());
            let mut operator_status = None;
            if c.eck_version.is_some() {
                let mut op = operator::Operator::new(
                    state.clone(),
                    world.clone(),
                    self.operator_delay,
                    handles.len(),
                );
                op.reaction_delay = self.operator_reaction_delay;
                op.install(c.license.as_deref().unwrap_or(&license));
                op.pass();
                operator_status = Some(op.status.clone());
                operators.push(op);
            }
            kube.add_cluster(&c.name, &url, &ca.cert.cert_pem);
            let mut names: Vec<&String> = users.keys().collect();
            names.sort();
            for u in names {
                kube.add_user(&format!("{}-{u}", c.name), &users[u]);
            }
            kube.add_context(&c.name, &c.name, &format!("{}-admin", c.name), None);
            let handle = ClusterHandle {
                state: state.clone(),
                url,
                ca_pem: ca.cert.cert_pem.clone(),
                users: Arc::new(users),
                world: world.clone(),
                operator: operator_status,
            };
            if c.eck_version.is_some() {
                handle.set_subresource_handler(
                    ResourceKey::PODS,
                    "portforward",
                    portforward_handler(state.clone(), world.clone()),
                );
                handle.set_subresource_handler(
                    ResourceKey::PODS,
                    "log",
                    pod_log_handler(state.clone(), world.clone()),
                );
            }
            handles.push(handle);
            listeners.push((listener, tls, state, port));
        }
        for name in &self.dead {
            let ca = Ca::new(&format!("{name}-ca"))?;
            let port = {
                let l = StdListener::bind("127.0.0.1:0")?;
                l.local_addr()?.port()
            };
            kube.add_cluster(
                name,
                &format!("https://127.0.0.1:{port}"),
                &ca.cert.cert_pem,
            );
            kube.add_user(
                &format!("{name}-admin"),
                &ca.client_cert("admin", &["system:masters"])?,
            );
            kube.add_context(name, name, &format!("{name}-admin"), None);
        }
        for x in &self.contexts {
            let known = self.clusters.iter().any(|c| c.name == x.cluster);
            if !known && !self.dead.contains(&x.cluster) {
                bail!(
                    "context {:?} names an unknown cluster {:?}",
                    x.name,
                    x.cluster
                );
            }
            if !known && x.user != "admin" {
                bail!(
                    "context {:?}: a dead cluster only has the user admin",
                    x.name
                );
            }
            kube.add_context(
                &x.name,
                &x.cluster,
                &format!("{}-{}", x.cluster, x.user),
                x.namespace.as_deref(),
            );
        }
        kube.current_context = self
            .clusters
            .first()
            .map(|c| c.name.clone())
            .or_else(|| self.dead.first().cloned())
            .unwrap_or_default();

        let mut externals = Vec::new();
        let mut external_listeners = Vec::new();
        for (name, version, kind) in &self.externals {
            let org = match kind {
                ExternalKind::Hosted { organization_id } => Some(organization_id.as_str()),
                _ => None,
            };
            let public = *kind == ExternalKind::PublicCa;
            let (ext, listener, tls) = external_es(&world, name, version, org, public)?;
            if public {
                let host = ext.remote_cluster_address.trim_end_matches(":9443");
                world.make_public(host);
            }
            external_listeners.push((listener, tls, ext.id.clone()));
            externals.push(ext);
        }

        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
        let world_rt = world.clone();
        let thread = std::thread::Builder::new()
            .name("remote-cluster-sandbox".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("sandbox-apiserver")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                rt.block_on(async move {
                    for (listener, tls, state, port) in listeners {
                        let l = match tokio::net::TcpListener::from_std(listener) {
                            Ok(l) => l,
                            Err(e) => {
                                let _ = ready_tx.send(Err(e.into()));
                                return;
                            }
                        };
                        tokio::spawn(server::serve(l, tls, state, port, shutdown_rx.clone()));
                    }
                    for op in operators {
                        let events = op.events();
                        tokio::spawn(op.run(events, shutdown_rx.clone()));
                    }
                    for (listener, tls, id) in external_listeners {
                        match tokio::net::TcpListener::from_std(listener) {
                            Ok(l) => {
                                tokio::spawn(serve_external(l, tls, world_rt.clone(), id));
                            }
                            Err(e) => {
                                let _ = ready_tx.send(Err(e.into()));
                                return;
                            }
                        }
                    }
                    let _ = ready_tx.send(Ok(()));
                    let mut rx = shutdown_rx;
                    while !*rx.borrow() {
                        if rx.changed().await.is_err() {
                            break;
                        }
                    }
                });
                rt.shutdown_timeout(Duration::from_millis(200));
            })?;
        ready_rx
            .recv()
            .map_err(|_| anyhow!("the sandbox runtime thread died while starting"))??;
        Ok(Sandbox {
            clusters: handles,
            kubeconfig: kube,
            shutdown: shutdown_tx,
            thread: Some(thread),
            operator_delay: self.operator_delay,
            license,
            externals,
            world,
        })
    }
}

/// Seeds a new cluster: default namespaces, the ECK CRD, configured namespaces and ES objects.
fn seed(state: &ClusterState, c: &ClusterConfig) -> Result<()> {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        state.ensure_namespace(ns);
    }
    if let (Some(features), Some(version)) = (c.eck_features(), c.eck_version.as_deref()) {
        state.seed_raw(
            &ResourceKey::CUSTOM_RESOURCE_DEFINITIONS,
            schema::elasticsearch_crd(&features, version),
        );
        state.ensure_namespace("elastic-system");
    }
    for ns in &c.namespaces {
        state.ensure_namespace(ns);
    }
    for es in &c.elasticsearches {
        if c.eck_version.is_none() {
            bail!(
                "cluster {:?} has no ECK but seeds Elasticsearch {}",
                c.name,
                es.name
            );
        }
        state.ensure_namespace(&es.namespace);
        let created = state
            .create(
                &ResourceKey::ELASTICSEARCHES,
                Some(&es.namespace),
                es.to_object(),
                WriteOpts::default(),
            )
            .map_err(|e| anyhow!("seeding {}/{}: {e}", es.namespace, es.name))?;
        let generation = created
            .body
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        if let Some(status) = es.status(generation, &cluster::now_rfc3339()) {
            state
                .patch(
                    &ResourceKey::ELASTICSEARCHES,
                    Some(&es.namespace),
                    &es.name,
                    PatchType::Merge,
                    &serde_json::to_vec(&json!({ "status": status }))?,
                    Sub::Status,
                    WriteOpts::default(),
                )
                .map_err(|e| anyhow!("seeding status of {}/{}: {e}", es.namespace, es.name))?;
        }
    }
    Ok(())
}

/// Running fake clusters. Dropping it stops the servers.
pub struct Sandbox {
    clusters: Vec<ClusterHandle>,
    kubeconfig: kubeconfig::Kubeconfig,
    shutdown: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
    operator_delay: Duration,
    license: String,
    externals: Vec<ExternalElasticsearch>,
    world: Arc<world::World>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("clusters", &self.cluster_names())
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }

    /// The kubeconfig: one context per cluster named like the cluster (user `<cluster>-admin`,
    /// no namespace), then the dead and extra contexts; current-context = the first cluster
    /// (or the first dead context when there is no cluster).
    pub fn kubeconfig_yaml(&self) -> String {
        self.kubeconfig.to_yaml()
    }

    pub fn write_kubeconfig(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, self.kubeconfig_yaml())
            .with_context(|| format!("writing {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(())
    }

    /// Handle to a cluster by name. Panics on an unknown name (a test bug).
    pub fn cluster(&self, name: &str) -> ClusterHandle {
        self.try_cluster(name)
            .unwrap_or_else(|| panic!("no sandbox cluster named {name:?}"))
    }

    pub fn try_cluster(&self, name: &str) -> Option<ClusterHandle> {
        self.clusters.iter().find(|c| c.state.name == name).cloned()
    }

    pub fn clusters(&self) -> Vec<ClusterHandle> {
        self.clusters.clone()
    }

    pub fn cluster_names(&self) -> Vec<String> {
        self.clusters.iter().map(|c| c.state.name.clone()).collect()
    }

    pub fn operator_delay(&self) -> Duration {
        self.operator_delay
    }

    pub fn license(&self) -> &str {
        &self.license
    }

    /// An Elasticsearch declared with [`SandboxBuilder::external_elasticsearch`]. Panics on an
    /// unknown name.
    pub fn external(&self, name: &str) -> ExternalElasticsearch {
        self.externals
            .iter()
            .find(|e| e.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("no external Elasticsearch named {name:?}"))
    }

    /// One REST request to an external Elasticsearch, as if sent to its URL.
    pub fn external_request(
        &self,
        name: &str,
        req: &elasticsearch::EsRequest,
    ) -> elasticsearch::EsResponse {
        let external = self.external(name);
        self.world.handle(&external.id, req)
    }

    /// Why `alias` of an external Elasticsearch is (not) connected (what `GET /_remote/info`
    /// computes, with the reason).
    pub fn external_diagnose(
        &self,
        name: &str,
        alias: &str,
    ) -> std::result::Result<elasticsearch::Connection, elasticsearch::NotConnectedReason> {
        let external = self.external(name);
        self.world.diagnose(&external.id, alias).unwrap_or(Err(
            elasticsearch::NotConnectedReason::NotConfigured {
                alias: alias.to_string(),
            },
        ))
    }

    /// What an external cluster's administrator does by hand on its nodes: trust a CA (PEM) for
    /// the remote cluster client, and add a secure setting to the keystore (taken into account
    /// as after a restart or `_nodes/reload_secure_settings`).
    pub fn external_admin(
        &self,
        name: &str,
        trust_ca_pem: Option<&str>,
        keystore: &[(&str, &str)],
    ) -> Result<()> {
        let external = self.external(name);
        if let Some(pem) = trust_ca_pem {
            let Some(fingerprint) = world::pem_fingerprints(pem).into_iter().next() else {
                bail!("not a PEM certificate: the CA given for {name:?}");
            };
            self.world.trust_on_external(&external.id, fingerprint);
        }
        for (key, value) in keystore {
            self.world.with_node_mut(&external.id, |node| {
                node.keystore.insert(key.to_string(), value.to_string());
            });
        }
        Ok(())
    }

    /// What an external cluster's administrator does to trust another cluster's transport
    /// (certificate security model): add `ca_pem` (one or more PEM certificates) to
    /// `xpack.security.transport.ssl.certificate_authorities` on every node, and accept transport
    /// peers whose certificate names match `subject_patterns` (`trust.subject_name` of its trust
    /// restrictions, in effect at once). A hosted external always keeps its own pattern and
    /// accepts nothing else; a self-managed one is unrestricted while no pattern was given,
    /// then accepts its own nodes and the given patterns. Calls add up.
    pub fn external_admin_trust_transport(
        &self,
        name: &str,
        ca_pem: &str,
        subject_patterns: &[&str],
    ) -> Result<()> {
        let external = self.external(name);
        let fingerprints = world::pem_fingerprints(ca_pem);
        if fingerprints.is_empty() {
            bail!("no PEM certificate in the CA given for {name:?}");
        }
        self.world
            .trust_transport_on_external(&external.id, fingerprints, subject_patterns);
        Ok(())
    }

    /// Stops the servers (also done on drop).
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

/// Cheap handle to one cluster: direct access to its store (as `admin`, through the same
/// validation as HTTP), its request log and fault hooks.
#[derive(Clone)]
pub struct ClusterHandle {
    state: Arc<ClusterState>,
    url: String,
    ca_pem: String,
    users: Arc<HashMap<String, CertKey>>,
    world: Arc<world::World>,
    operator: Option<Arc<operator::OperatorStatus>>,
}

impl std::fmt::Debug for ClusterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterHandle")
            .field("name", &self.state.name)
            .field("url", &self.url)
            .finish()
    }
}

impl ClusterHandle {
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// PEM of the cluster CA.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The ECK CRD features installed (`None` without ECK).
    pub fn eck_features(&self) -> Option<EckFeatures> {
        self.state.eck
    }

    pub fn get(
        &self,
        resource: &ResourceKey,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        self.state.get(resource, namespace, name).ok()
    }

    /// All objects (in `namespace`, or everywhere with `None`), sorted by namespace and name.
    pub fn list(&self, resource: &ResourceKey, namespace: Option<&str>) -> Vec<Value> {
        self.state
            .list(resource, namespace, &cluster::ListQuery::default())
            .ok()
            .and_then(|l| l.get("items").and_then(Value::as_array).cloned())
            .unwrap_or_default()
    }

    /// Creates an object (namespace from `metadata.namespace`, default `default`).
    pub fn create(&self, resource: &ResourceKey, obj: Value) -> Result<Value> {
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        let mut obj = obj;
        if obj.get("apiVersion").is_none() {
            obj["apiVersion"] = resource.api_version().into();
        }
        if obj.get("kind").is_none() {
            obj["kind"] = resource.kind().into();
        }
        self.state
            .create(resource, Some(&ns), obj, WriteOpts::default())
            .map(|o| o.body)
            .map_err(anyhow::Error::new)
    }

    /// PUT semantics (resourceVersion in `obj` is a precondition; `sub` = main or status).
    pub fn update(&self, resource: &ResourceKey, obj: Value, sub: Sub) -> Result<Value> {
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("object without metadata.name"))?
            .to_string();
        self.state
            .update(
                resource,
                ns.as_deref(),
                &name,
                obj,
                sub,
                WriteOpts::default(),
            )
            .map(|o| o.body)
            .map_err(anyhow::Error::new)
    }

    /// Sets annotation `key` to `value` on Elasticsearch `namespace/name`, as a user's
    /// `kubectl annotate` does (for example ECK's `eck.k8s.alpha.elastic.co/propagate-annotations`).
    pub fn annotate_elasticsearch(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
        value: &str,
    ) -> Result<Value> {
        self.merge_patch(
            &ResourceKey::ELASTICSEARCHES,
            Some(namespace),
            name,
            &serde_json::json!({"metadata": {"annotations": {key: value}}}),
            Sub::Main,
        )
    }

    /// JSON merge patch (RFC 7386), on the main resource or the status subresource.
    pub fn merge_patch(
        &self,
        resource: &ResourceKey,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
        sub: Sub,
    ) -> Result<Value> {
        self.state
            .patch(
                resource,
                namespace,
                name,
                PatchType::Merge,
                &serde_json::to_vec(patch)?,
                sub,
                WriteOpts::default(),
            )
            .map(|o| o.body)
            .map_err(anyhow::Error::new)
    }

    pub fn delete(
        &self,
        resource: &ResourceKey,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value> {
        self.state
            .delete(resource, namespace, name, None, WriteOpts::default())
            .map(|o| o.body)
            .map_err(anyhow::Error::new)
    }

    /// `data[key]` of Secret `namespace/name`, decoded from base64 as text (`None` when the
    /// Secret or the key is missing, or the value is not base64 UTF-8).
    pub fn secret_text(&self, namespace: &str, name: &str, key: &str) -> Option<String> {
        world::secret_key(&self.state, namespace, name, key)
    }

    /// Every request served so far, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.log.lock().expect("log lock").clone()
    }

    /// Number of non-GET requests served so far.
    pub fn writes(&self) -> usize {
        self.requests().iter().filter(|r| r.is_write()).count()
    }

    pub fn clear_requests(&self) {
        self.state.log.lock().expect("log lock").clear();
    }

    /// Serves `resource/{name}/{subresource}` (e.g. `ResourceKey::PODS`, `"portforward"`) with
    /// `handler`, after RBAC (verb `create` for portforward/exec/attach, else by method) and a
    /// 404 check on the object. Without a handler such URLs are 404.
    pub fn set_subresource_handler(
        &self,
        resource: ResourceKey,
        subresource: &str,
        handler: SubresourceHandler,
    ) {
        self.state
            .set_subresource_handler(resource, subresource, handler);
    }

    pub fn inject_fault(&self, fault: Fault) {
        self.state.add_fault(fault);
    }

    /// Store changes as they happen (for the in-process operator and tests).
    pub fn subscribe(&self) -> broadcast::Receiver<WatchEvent> {
        self.state.events.subscribe()
    }

    /// Client certificate and key of a user of this cluster.
    pub fn identity(&self, user: &str) -> Option<CertKey> {
        self.users.get(user).cloned()
    }

    /// A raw HTTPS client as `user` (HTTP/1.1, or h2 with `h2`).
    pub fn client(&self, user: &str, h2: bool) -> Result<ApiClient> {
        let id = self
            .identity(user)
            .ok_or_else(|| anyhow!("no user {user:?} in cluster {}", self.name()))?;
        ApiClient::new(&self.url, &self.ca_pem, &id, h2)
    }
}

impl ClusterHandle {
    fn es_id(&self, namespace: &str, name: &str) -> elasticsearch::EsId {
        elasticsearch::EsId::new(self.name(), namespace, name)
    }

    /// Read access to the fake Elasticsearch of `namespace/name` (settings, API keys,
    /// keystore); `None` when it does not exist.
    pub fn es_node<R>(
        &self,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&elasticsearch::ElasticsearchNode) -> R,
    ) -> Option<R> {
        self.world.read_node(&self.es_id(namespace, name), f)
    }

    /// One REST request to the fake Elasticsearch of `namespace/name` (as if through its HTTP
    /// service); 503 when it does not exist.
    pub fn es_request(
        &self,
        namespace: &str,
        name: &str,
        req: &elasticsearch::EsRequest,
    ) -> elasticsearch::EsResponse {
        self.world.handle(&self.es_id(namespace, name), req)
    }

    /// Rotates the transport CA of `namespace/name` (which also signs its remote cluster
    /// server certificate). The operator publishes the new CA in
    /// `<name>-es-transport-certs-public` on its next pass (within a second).
    pub fn rotate_transport_ca(&self, namespace: &str, name: &str) -> Result<()> {
        self.world.rotate_transport_ca(&self.es_id(namespace, name))
    }

    /// `GET /_remote/info` of `namespace/name` (`Value::Null` when it does not exist).
    pub fn remote_info(&self, namespace: &str, name: &str) -> Value {
        self.world
            .remote_info(&self.es_id(namespace, name))
            .unwrap_or(Value::Null)
    }

    /// Why `alias` of `namespace/name` is (not) connected.
    pub fn diagnose(
        &self,
        namespace: &str,
        name: &str,
        alias: &str,
    ) -> std::result::Result<elasticsearch::Connection, elasticsearch::NotConnectedReason> {
        self.world
            .diagnose(&self.es_id(namespace, name), alias)
            .unwrap_or(Err(elasticsearch::NotConnectedReason::NotConfigured {
                alias: alias.to_string(),
            }))
    }

    /// Waits until the fake ECK operator has nothing left to do: its last pass changed nothing,
    /// no rollout is in progress and every Elasticsearch has `observedGeneration ==
    /// generation`. Blocking (sleeps), fine inside `#[tokio::test]` with a multi-thread runtime
    /// or from plain tests. Immediate `Ok` for a cluster without ECK.
    pub fn wait_idle(&self, timeout: Duration) -> Result<()> {
        let Some(op) = &self.operator else {
            return Ok(());
        };
        let deadline = std::time::Instant::now() + timeout;
        let mut stable = 0;
        loop {
            let rv = self.state.resource_version();
            let settled = op.settled_rv.lock().expect("settled").as_deref() == Some(rv.as_str());
            let rollouts = op.rollouts.load(std::sync::atomic::Ordering::SeqCst);
            let caught_up = self
                .list(&ResourceKey::ELASTICSEARCHES, None)
                .iter()
                .all(|es| {
                    es.pointer("/metadata/generation") == es.pointer("/status/observedGeneration")
                });
            if settled && rollouts == 0 && caught_up {
                stable += 1;
                if stable >= 2 {
                    return Ok(());
                }
            } else {
                stable = 0;
            }
            if std::time::Instant::now() > deadline {
                bail!(
                    "the operator of {} is still busy after {timeout:?} (settled {settled}, rollouts {rollouts}, caught up {caught_up})",
                    self.name()
                );
            }
            std::thread::sleep(Duration::from_millis(15));
        }
    }
}

/// `pods/{name}/portforward`: port 9200 of a running, ready Elasticsearch pod reaches that
/// Elasticsearch's HTTP server, served as its `spec.http.tls` says (`http_tls`); every other port (and a pod that is restarting) is refused
/// as the kubelet refuses a port nothing listens on. Transport (9300) and remote cluster
/// server (9443) ports speak Elasticsearch's binary protocol, which is not simulated.
fn portforward_handler(state: Arc<ClusterState>, world: Arc<world::World>) -> SubresourceHandler {
    Arc::new(move |req, t: SubresourceTarget| {
        let ns = t.namespace.clone().unwrap_or_else(|| "default".into());
        let uid = t
            .object
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let target = portforward::PortForwardTarget::new(&ns, &t.name, &uid);
        let state = state.clone();
        let world = world.clone();
        let pod = t.name.clone();
        let connect: portforward::PortConnector = Arc::new(move |port| {
            if port != 9200 {
                return None;
            }
            let obj = state.get(&ResourceKey::PODS, Some(&ns), &pod).ok()?;
            let running = obj.pointer("/status/phase").and_then(Value::as_str) == Some("Running");
            let ready = obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|c| {
                    c.iter().any(|c| {
                        c.get("type").and_then(Value::as_str) == Some("Ready")
                            && c.get("status").and_then(Value::as_str) == Some("True")
                    })
                });
            let id = elasticsearch::EsId::new(&state.name, &ns, world::es_of_pod(&obj)?);
            // Without a master the pods are not Ready, but the HTTP server runs.
            if !running || !(ready || world.http_up_without_master(&id)) {
                return None;
            }
            let certs = world.certs(&id).ok()?;
            let es = state
                .get(&ResourceKey::ELASTICSEARCHES, Some(&ns), &id.name)
                .ok()?;
            let remote_cluster_client = obj
                .pointer(
                    "/metadata/labels/elasticsearch.k8s.elastic.co~1node-remote_cluster_client",
                )
                .and_then(Value::as_str)
                != Some("false");
            let backend = world::World::pod_backend(&world, id, &pod, remote_cluster_client);
            Some(
                match http_tls::serving(&state, &ns, &es, &certs.http, certs.http_tls)? {
                    http_tls::HttpServing::Https(tls) => elasticsearch::connect_https(tls, backend),
                    http_tls::HttpServing::Plain => elasticsearch::connect_http(backend),
                },
            )
        });
        Box::pin(async move {
            use http_body_util::BodyExt;
            portforward::upgrade_portforward(req, target, connect)
                .await
                .map(|b| b.map_err(|never| match never {}).boxed())
        })
    })
}

/// `pods/{name}/log`: what the Elasticsearch of the pod logs about its remote clusters now, one
/// line per alias that cannot connect (`elasticsearch::connection_log`), plain text as the
/// kubelet serves it. `tailLines` keeps the last lines; every line is from now, so
/// `sinceSeconds` keeps them all. A pod of no Elasticsearch has an empty log.
fn pod_log_handler(state: Arc<ClusterState>, world: Arc<world::World>) -> SubresourceHandler {
    Arc::new(move |req, t: SubresourceTarget| {
        let ns = t.namespace.clone().unwrap_or_else(|| "default".into());
        let lines = world::es_of_pod(&t.object)
            .map(|es| elasticsearch::EsId::new(&state.name, &ns, es))
            .and_then(|id| world.connection_log(&id, &cluster::now_rfc3339()))
            .unwrap_or_default();
        let tail = req.uri().query().and_then(|q| {
            q.split('&')
                .find_map(|pair| pair.strip_prefix("tailLines="))
                .and_then(|n| n.parse::<usize>().ok())
        });
        let skip = tail.map_or(0, |n| lines.len().saturating_sub(n));
        let text: String = lines[skip..].iter().map(|l| format!("{l}\n")).collect();
        let response = http::Response::builder()
            .status(200)
            .header("content-type", "text/plain")
            .body(server::full_body(text))
            .expect("static response");
        Box::pin(async move { response })
    })
}

/// An Elasticsearch outside every Kubernetes cluster (see
/// [`SandboxBuilder::external_elasticsearch`]).
#[derive(Debug, Clone)]
pub struct ExternalElasticsearch {
    pub name: String,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// PEM of the CA that signed its HTTP certificate (SANs `localhost`, `127.0.0.1`).
    pub ca_pem: String,
    /// Password of the `elastic` user.
    pub password: String,
    pub id: elasticsearch::EsId,
    /// `HOST:9443` of its remote cluster server, reachable from every sandbox Kubernetes
    /// cluster (an `.invalid` name, never resolved outside the sandbox).
    pub remote_cluster_address: String,
    /// PEM of the CA of its remote cluster server certificate (which also signs its transport
    /// certificate, except on a hosted external).
    pub remote_cluster_ca_pem: String,
    /// `HOST:9300` of its transport (`HOST:9400`, the proxy's transport port, on a hosted
    /// external), for the certificate security model.
    pub transport_address: String,
    /// PEM of the CA that signs its transport certificate: the same as
    /// `remote_cluster_ca_pem`, or on a hosted external the regional CA that every hosted
    /// external of the sandbox shares.
    pub transport_ca_pem: String,
    /// The trust restrictions pattern that matches its own nodes' transport certificates:
    /// `*.node.<name>.external.es.local`, or `*.node.<deployment-id>.cluster.<org>.account`.
    pub transport_subject_pattern: String,
    /// Names in its nodes' transport certificates (subjectAltName otherName commonName):
    /// `<name>-0.node.<name>.external.es.local`, or on a hosted external
    /// `instance-0000000000.node.<deployment-id>.cluster.<org>.account` and `instance-0000000001...`.
    pub transport_node_names: Vec<String>,
    /// Hosted externals: the deployment id (32 hex digits derived from the name).
    pub deployment_id: Option<String>,
    /// Hosted externals: the organization id.
    pub organization_id: Option<String>,
}

impl ExternalElasticsearch {
    /// The `trust.yml` that the ECH console lets you download after trusting an environment
    /// with "Trust clusters whose Common Name follows the Elastic pattern" and `scope_id`:
    /// this deployment's pattern, then the pattern ECH makes of the scope id. For an ECK
    /// cluster the second entry must be replaced by `*.node.<es>.<namespace>.es.local`.
    pub fn hosted_trust_yml(&self, scope_id: &str) -> String {
        format!(
            "trust.subject_name:\n  - \"{}\"\n  - \"*.node.*.cluster.{scope_id}.account\"\n",
            self.transport_subject_pattern
        )
    }
}

fn external_es(
    world: &world::World,
    name: &str,
    version: &str,
    hosted_org: Option<&str>,
    public: bool,
) -> Result<(
    ExternalElasticsearch,
    StdListener,
    Arc<rustls::ServerConfig>,
)> {
    let ca = Ca::new(&format!("{name}-http-ca"))?;
    let cert = ca.server_cert()?;
    // A publicly trusted deployment (Elastic Cloud Hosted) serves its REST API and its remote
    // cluster server under one certificate from a public CA, and sends the chain above its own
    // certificate; a private one sends its certificate alone.
    let tls = if public {
        pki::http1_server_config(&[&cert.cert_der, &ca.cert.cert_der], &cert.key_der)?
    } else {
        pki::http1_server_config(&[&cert.cert_der], &cert.key_der)?
    };
    let listener = StdListener::bind("127.0.0.1:0").context("binding a local port")?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let id = elasticsearch::EsId::new("external", "", name);
    let password = format!("ext-{}", uuid::Uuid::new_v4().simple());
    let mut node = elasticsearch::ElasticsearchNode::new(id.clone(), version, &password);
    let deployment_id = hosted_org.map(|_| {
        elasticsearch::sha256_fingerprint(format!("ech:{name}").as_bytes())[..32].to_string()
    });
    let (node_names, transport_node_names, pattern) = match (hosted_org, &deployment_id) {
        (Some(org), Some(dep)) => {
            let nodes: Vec<String> = (0..2).map(|i| format!("instance-{i:010}")).collect();
            let certs = nodes
                .iter()
                .map(|n| format!("{n}.node.{dep}.cluster.{org}.account"))
                .collect();
            (nodes, certs, format!("*.node.{dep}.cluster.{org}.account"))
        }
        _ => (
            vec![format!("{name}-0")],
            vec![format!("{name}-0.node.{name}.external.es.local")],
            format!("*.node.{name}.external.es.local"),
        ),
    };
    node.set_nodes(&node_names);
    node.transport_node_names = transport_node_names.clone();
    world.insert_node(node);
    let rcs_host = format!("{name}.external.invalid");
    let rcs_ca = public.then(|| ca.cert.cert_pem.clone());
    let cas = world.add_external_server(&rcs_host, &id, hosted_org.is_some(), &pattern, rcs_ca)?;
    let transport_ca = world::pem_fingerprints(&cas.transport_ca_pem);
    world.with_node_mut(&id, |node| {
        node.transport_ca_fingerprint = transport_ca.into_iter().next().unwrap_or_default();
    });
    let transport_port = if hosted_org.is_some() { 9400 } else { 9300 };
    Ok((
        ExternalElasticsearch {
            name: name.to_string(),
            url: format!("https://127.0.0.1:{port}"),
            ca_pem: ca.cert.cert_pem.clone(),
            password,
            id,
            remote_cluster_address: format!("{rcs_host}:9443"),
            transport_address: format!("{rcs_host}:{transport_port}"),
            remote_cluster_ca_pem: cas.rcs_ca_pem,
            transport_ca_pem: cas.transport_ca_pem,
            transport_subject_pattern: pattern,
            transport_node_names,
            deployment_id,
            organization_id: hosted_org.map(str::to_string),
        },
        listener,
        tls,
    ))
}

async fn serve_external(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    world: Arc<world::World>,
    id: elasticsearch::EsId,
) {
    loop {
        // An accept error (a connection reset before it was accepted, a full file table) is
        // transient: the server goes on listening.
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let backend = world::World::backend(&world, id.clone());
        let tls = tls.clone();
        tokio::spawn(async move {
            let _ = elasticsearch::serve_https(tcp, tls, backend).await;
        });
    }
}
