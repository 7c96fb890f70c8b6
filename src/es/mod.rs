//! Elasticsearch's REST API, reached through a port-forward to one of its ready pods.
//!
//! The API server's service proxy cannot be used: it deletes the caller's `Authorization` header
//! after authenticating the request (k8s.io/apiserver `pkg/endpoints/filters/authentication.go`),
//! so Elasticsearch credentials would never arrive.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ListParams};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::k8s::clients::ContextClient;
use crate::plan::ClusterId;

pub const HTTP_PORT: u16 = 9200;

/// The annotation on an Elasticsearch that names the Secret (`tls.crt`, `tls.key`) of the
/// client certificate to present when it requires one on HTTP
/// (`spec.http.tls.client.authentication`, ECK 3.4+).
pub const CLIENT_CERTIFICATE_ANNOTATION: &str =
    "remote-cluster.kubectl-plugin.dev/http-client-certificate";

/// Elasticsearch requires a client certificate on HTTP and the plugin has none it trusts:
/// waiting does not help.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientCertificateError(pub String);

/// One connection per Elasticsearch for the whole command: reads, apply steps and waits share
/// it. A connection that closed (its pod went away in a rolling restart) is opened again, on a
/// pod that is ready then.
#[derive(Clone, Default)]
pub struct EsPool {
    slots: Arc<std::sync::Mutex<HashMap<ClusterId, Slot>>>,
}

type Slot = Arc<Mutex<Option<Arc<EsClient>>>>;

impl EsPool {
    pub fn new() -> EsPool {
        EsPool::default()
    }

    /// The open connection to `cluster`, or a new one through a port-forward to a ready pod.
    pub async fn client(
        &self,
        kube: &ContextClient,
        cluster: &ClusterId,
    ) -> anyhow::Result<Arc<EsClient>> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.entry(cluster.clone()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some(open) = slot.as_ref()
            && open.is_open().await
        {
            return Ok(open.clone());
        }
        let target = EsTarget {
            namespace: cluster.namespace.clone(),
            name: cluster.name.clone(),
        };
        let connected = Arc::new(EsClient::connect(kube, target).await?);
        *slot = Some(connected.clone());
        Ok(connected)
    }
}

/// Which Elasticsearch to reach and how to authenticate.
#[derive(Clone)]
pub struct EsTarget {
    pub namespace: String,
    pub name: String,
}

/// An authenticated HTTPS connection to one Elasticsearch cluster over a pod port-forward.
pub struct EsClient {
    /// How errors name the cluster.
    name: String,
    /// The `Host` header.
    host: String,
    pod: String,
    authorization: SecretString,
    sender: Mutex<http1::SendRequest<Full<Bytes>>>,
    /// The certificates the server presented (DER, leaf first) on a connection by URL.
    peer_chain: Vec<Vec<u8>>,
}

/// An Elasticsearch answer that was not a success.
#[derive(Debug, thiserror::Error)]
#[error("Elasticsearch {name} answered {status} to {method} {path}: {reason}")]
pub struct EsError {
    pub name: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub reason: String,
}

impl EsClient {
    /// Opens the port-forward and authenticates as `elastic`. Over HTTPS (ECK's default) TLS is
    /// verified against `<name>-es-http-certs-public`: its `ca.crt` (the system's public roots
    /// when it has none, as with a user's certificate without its CA), with the name
    /// `<name>-es-http.<namespace>.svc` when the certificate carries it, otherwise a name it
    /// carries. A pod labelled `elasticsearch.k8s.elastic.co/http-scheme: http` (HTTP TLS
    /// disabled) is spoken to in clear text inside the port-forward, which the API server
    /// connection encrypts; nothing is sent in clear text outside it.
    pub async fn connect(kube: &ContextClient, target: EsTarget) -> anyhow::Result<EsClient> {
        let (pod, scheme) = ready_pod(kube, &target).await?;
        let trust = match scheme {
            HttpScheme::Https => Some(http_trust(kube, &target).await?),
            HttpScheme::Http => None,
        };
        let identity = match scheme {
            HttpScheme::Https => client_identity(kube, &target).await?,
            HttpScheme::Http => None,
        };
        let password = elastic_password(kube, &target).await?;
        let credentials = base64::engine::general_purpose::STANDARD
            .encode(format!("elastic:{}", password.expose_secret()));
        let authorization = SecretString::from(format!("Basic {credentials}"));

        let pods: Api<Pod> = Api::namespaced(kube.client.clone(), &target.namespace);
        let mut forwarder = pods
            .portforward(&pod, &[HTTP_PORT])
            .await
            .with_context(|| {
                format!(
                    "cannot open a port-forward to pod {}/{pod}",
                    target.namespace
                )
            })?;
        let stream = forwarder
            .take_stream(HTTP_PORT)
            .ok_or_else(|| anyhow!("the port-forward to pod {pod} gave no stream"))?;

        let sender = match trust {
            Some(trust) => {
                let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(trust.roots);
                let config = match &identity {
                    Some(identity) => config
                        .with_client_auth_cert(
                            identity.chain.clone(),
                            identity.key.clone_key(),
                        )
                        .map_err(|e| {
                            ClientCertificateError(format!(
                                "the client certificate in Secret {}/{} cannot be used ({e}); put a certificate and its private key (PEM) in tls.crt and tls.key",
                                target.namespace, identity.secret
                            ))
                        })?,
                    None => config.with_no_client_auth(),
                };
                let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                    .connect(trust.server_name.clone(), stream)
                    .await
                    .with_context(|| {
                        format!(
                            "TLS with Elasticsearch {}/{} failed (verified as {} against {})",
                            target.namespace,
                            target.name,
                            trust.server_name.to_str(),
                            trust.against
                        )
                    })?;
                let (sender, connection) =
                    http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
                tokio::spawn(async move {
                    if let Err(err) = connection.await {
                        tracing::debug!("Elasticsearch connection ended: {err}");
                    }
                    drop(forwarder);
                });
                let mut sender = sender;
                if let Some(identity) = &identity {
                    // Over TLS 1.3 the server judges the client certificate after the client's
                    // handshake ends: the first request tells.
                    probe(&mut sender, &target, &identity.secret).await?;
                }
                sender
            }
            None => {
                let (sender, connection) =
                    http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
                tokio::spawn(async move {
                    if let Err(err) = connection.await {
                        tracing::debug!("Elasticsearch connection ended: {err}");
                    }
                    drop(forwarder);
                });
                sender
            }
        };
        Ok(EsClient {
            name: format!("{}/{}", target.namespace, target.name),
            host: format!("{}-es-http", target.name),
            pod,
            authorization,
            sender: Mutex::new(sender),
            peer_chain: Vec::new(),
        })
    }

    /// Connects to an Elasticsearch by URL (a cluster outside Kubernetes), verifying TLS against
    /// `ca_pem` or, without it, the public web PKI, and authenticating as `user`.
    pub async fn connect_url(
        url: &str,
        ca_pem: Option<&[u8]>,
        user: &str,
        password: &SecretString,
        timeout: std::time::Duration,
    ) -> anyhow::Result<EsClient> {
        let uri: http::Uri = url
            .parse()
            .with_context(|| format!("{url:?} is not a URL"))?;
        if uri.scheme_str() != Some("https") {
            bail!("{url} is not an https:// URL");
        }
        let host = uri.host().unwrap_or_default().to_string();
        let port = uri.port_u16().unwrap_or(443);
        let mut roots = rustls::RootCertStore::empty();
        match ca_pem {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    roots.add(cert.context("the remote CA file holds an invalid PEM")?)?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = tokio::time::timeout(
            timeout,
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        .map_err(|_| anyhow!("no answer from {url} within {}s", timeout.as_secs()))?
        .with_context(|| format!("cannot connect to {url}"))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from(host.clone())?, tcp)
            .await
            .with_context(|| format!("TLS with {url} failed (certificate problem?)"))?;
        let peer_chain: Vec<Vec<u8>> = tls
            .get_ref()
            .1
            .peer_certificates()
            .unwrap_or_default()
            .iter()
            .map(|c| c.as_ref().to_vec())
            .collect();
        let (sender, connection) = http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!("Elasticsearch connection ended: {err}");
            }
        });
        let credentials = base64::engine::general_purpose::STANDARD
            .encode(format!("{user}:{}", password.expose_secret()));
        Ok(EsClient {
            name: url.to_string(),
            host: uri.authority().map(|a| a.to_string()).unwrap_or(host),
            pod: String::new(),
            authorization: SecretString::from(format!("Basic {credentials}")),
            sender: Mutex::new(sender),
            peer_chain,
        })
    }

    /// The certificates the server presented in the verified TLS handshake of
    /// [`EsClient::connect_url`] (DER, leaf first); empty for a port-forward.
    pub fn peer_chain(&self) -> &[Vec<u8>] {
        &self.peer_chain
    }

    /// False once the connection ended: its pod went away, or the port-forward closed.
    pub async fn is_open(&self) -> bool {
        !self.sender.lock().await.is_closed()
    }

    pub fn pod(&self) -> &str {
        &self.pod
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send("GET", path, None).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send("PUT", path, Some(body)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send("POST", path, Some(body)).await
    }

    pub async fn delete(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send("DELETE", path, Some(body)).await
    }

    async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, self.host.as_str())
            .header(
                http::header::AUTHORIZATION,
                self.authorization.expose_secret(),
            )
            .header(http::header::ACCEPT, "application/json");
        if body.is_some() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = request.body(Full::new(Bytes::from(payload)))?;
        let response = {
            let mut sender = self.sender.lock().await;
            sender.ready().await?;
            sender.send_request(request).await?
        };
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if status.is_success() {
            return Ok(value);
        }
        let reason = value
            .pointer("/error/reason")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
        Err(EsError {
            name: self.name.clone(),
            method: method.to_string(),
            path: path.to_string(),
            status: status.as_u16(),
            reason,
        }
        .into())
    }
}

/// A client certificate to present on HTTP, and the Secret it came from.
struct ClientIdentity {
    secret: String,
    chain: Vec<CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
}

/// The client certificate to present when the Elasticsearch requires one
/// (`spec.http.tls.client.authentication: true`): the Secret its annotation
/// [`CLIENT_CERTIFICATE_ANNOTATION`] names. `None` when it requires none.
async fn client_identity(
    kube: &ContextClient,
    target: &EsTarget,
) -> anyhow::Result<Option<ClientIdentity>> {
    let es = crate::k8s::eck::get_elasticsearch(kube, &target.namespace, &target.name)
        .await
        .map_err(|f| anyhow!("{}", f.message))?
        .unwrap_or_default();
    let required = es
        .pointer("/spec/http/tls/client/authentication")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !required {
        return Ok(None);
    }
    let named = es
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(CLIENT_CERTIFICATE_ANNOTATION))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let Some(secret) = named else {
        return Err(ClientCertificateError(format!(
            "Elasticsearch {ns}/{name} requires a client certificate on HTTP (spec.http.tls.client.authentication); create a Secret in namespace {ns} with tls.crt and tls.key that it trusts (labelled eck.k8s.elastic.co/client-certificate=true with ECK's owner labels and an owner reference to the Elasticsearch), then name it with `kubectl annotate elasticsearch {name} -n {ns} {CLIENT_CERTIFICATE_ANNOTATION}=SECRET`",
            ns = target.namespace,
            name = target.name
        ))
        .into());
    };
    let secrets: Api<Secret> = Api::namespaced(kube.client.clone(), &target.namespace);
    let read = kube.call(secrets.get_opt(secret)).await.map_err(|f| {
        anyhow!(
            "cannot read Secret {}/{secret}: {}",
            target.namespace,
            f.message
        )
    })?;
    let data = read.and_then(|s| s.data).unwrap_or_default();
    let missing = |what: &str| {
        ClientCertificateError(format!(
            "Secret {}/{secret}, named by annotation {CLIENT_CERTIFICATE_ANNOTATION} of Elasticsearch {}/{}, has no {what}; put the client certificate and its private key (PEM) in tls.crt and tls.key",
            target.namespace, target.namespace, target.name
        ))
    };
    let chain: Vec<CertificateDer<'static>> = data
        .get("tls.crt")
        .map(|pem| {
            CertificateDer::pem_slice_iter(&pem.0)
                .filter_map(Result::ok)
                .collect()
        })
        .unwrap_or_default();
    if chain.is_empty() {
        return Err(missing("certificate in tls.crt").into());
    }
    let key = data
        .get("tls.key")
        .and_then(|pem| rustls::pki_types::PrivateKeyDer::from_pem_slice(&pem.0).ok())
        .ok_or_else(|| missing("private key in tls.key"))?;
    Ok(Some(ClientIdentity {
        secret: secret.to_string(),
        chain,
        key,
    }))
}

/// `HEAD /` on a new connection that presented a client certificate: a refused certificate
/// closes the connection, which this tells as [`ClientCertificateError`].
async fn probe(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    target: &EsTarget,
    secret: &str,
) -> anyhow::Result<()> {
    let request = http::Request::builder()
        .method("HEAD")
        .uri("/")
        .header(http::header::HOST, format!("{}-es-http", target.name))
        .body(Full::new(Bytes::new()))?;
    let sent = async {
        sender.ready().await?;
        sender.send_request(request).await
    }
    .await;
    match sent {
        Ok(_) => Ok(()),
        Err(err) => Err(ClientCertificateError(format!(
            "Elasticsearch {ns}/{name} refused the client certificate of Secret {ns}/{secret} ({err}); it trusts the certificates of Secrets labelled eck.k8s.elastic.co/client-certificate=true, eck.k8s.elastic.co/owner-name={name}, eck.k8s.elastic.co/owner-namespace={ns}, eck.k8s.elastic.co/owner-kind=Elasticsearch and owned by an ECK resource of the namespace",
            ns = target.namespace,
            name = target.name
        ))
        .into()),
    }
}

/// What a pod's `elasticsearch.k8s.elastic.co/http-scheme` label says its port 9200 speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HttpScheme {
    Https,
    Http,
}

/// A pod of the cluster whose Ready condition is true, chosen by ECK's labels, and the scheme
/// its label announces (HTTPS without the label, as ECK before the label).
/// ECK's label telling whether a pod's node has the `remote_cluster_client` role.
const REMOTE_CLUSTER_CLIENT_LABEL: &str = "elasticsearch.k8s.elastic.co/node-remote_cluster_client";

/// The pod to talk to: one whose node has the `remote_cluster_client` role (a node without it
/// knows no remote clusters: its `_remote/info` is `{}`), else any (creating keys and reading
/// settings work on every node). `role` reads a pod's role label.
fn preferred_pod<'a, P>(ready: &[&'a P], role: impl Fn(&P) -> Option<&str>) -> Option<&'a P> {
    ready
        .iter()
        .find(|pod| role(pod) != Some("false"))
        .or_else(|| ready.first())
        .copied()
}

async fn ready_pod(
    kube: &ContextClient,
    target: &EsTarget,
) -> anyhow::Result<(String, HttpScheme)> {
    let pods: Api<Pod> = Api::namespaced(kube.client.clone(), &target.namespace);
    let selector = format!(
        "common.k8s.elastic.co/type=elasticsearch,elasticsearch.k8s.elastic.co/cluster-name={}",
        target.name
    );
    let list = kube
        .call(pods.list(&ListParams::default().labels(&selector)))
        .await
        .map_err(|f| anyhow!("{}", f.message))?;
    let is_ready = |pod: &&Pod| {
        pod.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
    };
    let ready: Vec<&Pod> = list.items.iter().filter(is_ready).collect();
    let ready = preferred_pod(&ready, |pod| {
        pod.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(REMOTE_CLUSTER_CLIENT_LABEL))
            .map(String::as_str)
    });
    match ready {
        Some(pod) => {
            let scheme = pod
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("elasticsearch.k8s.elastic.co/http-scheme"))
                .map(String::as_str);
            let scheme = match scheme {
                Some("http") => HttpScheme::Http,
                _ => HttpScheme::Https,
            };
            Ok((pod.metadata.name.clone().unwrap_or_default(), scheme))
        }
        None => bail!(
            "Elasticsearch {}/{} has no ready pod to reach its API through ({} pods found)",
            target.namespace,
            target.name,
            list.items.len()
        ),
    }
}

async fn secret_value(
    kube: &ContextClient,
    namespace: &str,
    name: &str,
    keys: &[&str],
) -> anyhow::Result<Vec<u8>> {
    let secrets: Api<Secret> = Api::namespaced(kube.client.clone(), namespace);
    let secret = kube
        .call(secrets.get(name))
        .await
        .map_err(|f| anyhow!("cannot read Secret {namespace}/{name}: {}", f.message))?;
    let data = secret.data.unwrap_or_default();
    keys.iter()
        .find_map(|key| data.get(*key))
        .map(|bytes| bytes.0.clone())
        .ok_or_else(|| anyhow!("Secret {namespace}/{name} has no {} key", keys.join(" or ")))
}

/// How to verify an Elasticsearch's HTTPS: the roots, the name, and what they came from (for
/// error messages).
struct HttpTrust {
    roots: rustls::RootCertStore,
    server_name: ServerName<'static>,
    against: String,
}

/// Trust for `<name>-es-http-certs-public`: its `ca.crt`, or the system's public roots when it
/// has none (a user's certificate given without its CA); the name
/// `<name>-es-http.<namespace>.svc` when the certificate in `tls.crt` carries it (ECK's own
/// always does), otherwise the first name it carries (DNS, then IP).
async fn http_trust(kube: &ContextClient, target: &EsTarget) -> anyhow::Result<HttpTrust> {
    let secret = format!("{}-es-http-certs-public", target.name);
    let secrets: Api<Secret> = Api::namespaced(kube.client.clone(), &target.namespace);
    let read = kube.call(secrets.get(&secret)).await.map_err(|f| {
        anyhow!(
            "cannot read Secret {}/{secret}: {}",
            target.namespace,
            f.message
        )
    })?;
    let data = read.data.unwrap_or_default();
    let mut roots = rustls::RootCertStore::empty();
    let against = match data.get("ca.crt") {
        Some(ca) => {
            for cert in CertificateDer::pem_slice_iter(&ca.0) {
                roots
                    .add(cert.with_context(|| format!("Secret {secret} holds an invalid PEM"))?)?;
            }
            format!("the ca.crt of Secret {secret}")
        }
        None => {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            format!("the public root CAs: Secret {secret} has no ca.crt")
        }
    };
    let service = format!("{}-es-http.{}.svc", target.name, target.namespace);
    let leaf = data
        .get("tls.crt")
        .and_then(|pem| CertificateDer::pem_slice_iter(&pem.0).next())
        .and_then(Result::ok);
    let server_name = match leaf {
        Some(leaf) => certificate_name(leaf.as_ref(), &service).with_context(|| {
            format!(
                "the certificate in Secret {}/{secret} names no host (no DNS or IP subjectAltName) to verify Elasticsearch {}/{} with",
                target.namespace, target.namespace, target.name
            )
        })?,
        None if data.contains_key("ca.crt") => ServerName::try_from(service)?,
        None => bail!(
            "Secret {}/{secret} has neither ca.crt nor tls.crt: nothing to verify Elasticsearch {}/{} with",
            target.namespace,
            target.namespace,
            target.name
        ),
    };
    Ok(HttpTrust {
        roots,
        server_name,
        against,
    })
}

/// The name to verify a server certificate (DER) with: `preferred` when the certificate's
/// subjectAltNames cover it, otherwise its first DNS name (a wildcard's `*` standing for
/// `elasticsearch`), otherwise its first IP address.
fn certificate_name(der: &[u8], preferred: &str) -> Option<ServerName<'static>> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let san = cert.subject_alternative_name().ok().flatten()?;
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for name in &san.value.general_names {
        match name {
            GeneralName::DNSName(d) => dns.push(d.to_ascii_lowercase()),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => ips.push(std::net::IpAddr::from(<[u8; 4]>::try_from(*bytes).ok()?)),
                16 => ips.push(std::net::IpAddr::from(<[u8; 16]>::try_from(*bytes).ok()?)),
                _ => {}
            },
            _ => {}
        }
    }
    let covers = |pattern: &str| match pattern.strip_prefix("*.") {
        Some(suffix) => preferred
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => pattern == preferred,
    };
    if dns.iter().any(|d| covers(d)) {
        return ServerName::try_from(preferred.to_string()).ok();
    }
    for d in &dns {
        let name = match d.strip_prefix("*.") {
            Some(suffix) => format!("elasticsearch.{suffix}"),
            None => d.clone(),
        };
        if let Ok(name) = ServerName::try_from(name) {
            return Some(name);
        }
    }
    ips.first().map(|ip| ServerName::IpAddress((*ip).into()))
}

async fn elastic_password(kube: &ContextClient, target: &EsTarget) -> anyhow::Result<SecretString> {
    let secret = format!("{}-es-elastic-user", target.name);
    let bytes = secret_value(kube, &target.namespace, &secret, &["elastic"]).await?;
    let password = String::from_utf8(bytes)
        .map_err(|_| anyhow!("the password in Secret {secret} is not UTF-8"))?;
    Ok(SecretString::from(password))
}

/// `value` percent-encoded for a query string or a path segment: a value read from a cluster
/// (a key id, a key name) never changes what a request addresses.
pub fn query_value(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod pod_choice_tests {
    use super::preferred_pod;

    type Pod = (&'static str, Option<&'static str>);

    fn role(pod: &Pod) -> Option<&str> {
        pod.1
    }

    #[test]
    fn a_remote_cluster_client_node_is_preferred_then_any_ready_one() {
        let master: Pod = ("logs-es-master-0", Some("false"));
        let data: Pod = ("logs-es-data-0", Some("true"));
        let unlabelled: Pod = ("logs-es-default-0", None);
        assert_eq!(preferred_pod(&[&master, &data], role), Some(&data));
        assert_eq!(
            preferred_pod(&[&master, &unlabelled], role),
            Some(&unlabelled),
            "without the label, the default roles include remote_cluster_client"
        );
        assert_eq!(preferred_pod(&[&master], role), Some(&master));
        assert_eq!(preferred_pod::<Pod>(&[], role), None);
    }
}

#[cfg(test)]
mod tests {
    use super::certificate_name;

    fn der(dns: &[&str], ip: Option<std::net::IpAddr>) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>())
                .unwrap();
        if let Some(ip) = ip {
            params.subject_alt_names.push(rcgen::SanType::IpAddress(ip));
        }
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn name(der: &[u8]) -> Option<String> {
        certificate_name(der, "logs-es-http.prod.svc").map(|n| n.to_str().into_owned())
    }

    #[test]
    fn the_service_name_when_covered_else_a_name_the_certificate_carries() {
        assert_eq!(
            name(&der(&["es.example.com", "logs-es-http.prod.svc"], None)).as_deref(),
            Some("logs-es-http.prod.svc")
        );
        assert_eq!(
            name(&der(&["*.prod.svc"], None)).as_deref(),
            Some("logs-es-http.prod.svc")
        );
        assert_eq!(
            name(&der(&["es.example.com", "other.example.com"], None)).as_deref(),
            Some("es.example.com")
        );
        assert_eq!(
            name(&der(&["*.example.com"], None)).as_deref(),
            Some("elasticsearch.example.com")
        );
        assert_eq!(
            name(&der(&[], Some("10.0.0.7".parse().unwrap()))).as_deref(),
            Some("10.0.0.7")
        );
        assert_eq!(name(&der(&[], None)), None);
    }
}
