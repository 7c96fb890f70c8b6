//! How an Elasticsearch serves its REST API, from `spec.http.tls` as ECK reads it:
//!
//! - `certificate.secretName`: the user's certificate (`tls.crt`, a chain, and `tls.key` of the
//!   referenced Secret) instead of ECK's self-signed one; `<es>-es-http-certs-public` then
//!   carries that `tls.crt`, and `ca.crt` only when the user's Secret has one (ECK
//!   `pkg/controller/common/certificates/http_reconcile.go` `ReconcilePublicHTTPCerts`);
//! - `selfSignedCertificate.disabled: true` without a certificate: plain HTTP, and the pods'
//!   label `elasticsearch.k8s.elastic.co/http-scheme` says `http` (ECK
//!   `pkg/apis/common/v1/common.go` `TLSOptions.Enabled`, `HTTPConfig.Protocol`;
//!   `pkg/controller/elasticsearch/label/label.go`).
//! - `client.authentication: true` (ECK 3.4+, enterprise licence): a TLS client certificate is
//!   required, trusted from the client trust bundle: certificates (`tls.crt`) of the Secrets
//!   labelled `eck.k8s.elastic.co/client-certificate=true` with the soft-owner labels naming this
//!   Elasticsearch and an owner reference to an existing ECK resource of the namespace (ECK
//!   `pkg/controller/common/certificates/client_cert_reconcile.go` `ReconcileTrustBundle`,
//!   `discoverClientCertSecrets`, `hasVerifiedECKOwnerRef`;
//!   `pkg/controller/elasticsearch/settings/merged_config.go` `xpackConfig`,
//!   `appendClientTrustBundle`; `pkg/controller/elasticsearch/driver/stateful/config.go`
//!   `detectClientAuthenticationRequired`).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use serde_json::Value;

use crate::cluster::ClusterState;
use crate::elasticsearch::EsHttpCerts;
use crate::operator::{LICENSING_CM, OPERATOR_NS};
use crate::resources::ResourceKey;
use crate::world::{configmap_key, secret_key};

/// What port 9200 of a pod speaks.
pub(crate) enum HttpServing {
    Https(Arc<rustls::ServerConfig>),
    Plain,
}

/// The Secret named by `spec.http.tls.certificate.secretName`, if any.
pub(crate) fn custom_certificate_secret(es: &Value) -> Option<&str> {
    es.pointer("/spec/http/tls/certificate/secretName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// ECK's `TLSOptions.Enabled`: TLS unless the self-signed certificate is disabled and no
/// certificate is given.
pub(crate) fn tls_enabled(es: &Value) -> bool {
    let disabled = es
        .pointer("/spec/http/tls/selfSignedCertificate/disabled")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    !disabled || custom_certificate_secret(es).is_some()
}

/// The value of the pods' `elasticsearch.k8s.elastic.co/http-scheme` label.
pub(crate) fn scheme(es: &Value) -> &'static str {
    if tls_enabled(es) { "https" } else { "http" }
}

/// Data of `<es>-es-http-certs-public`: the certificate in use (`tls.crt`) and its CA when known
/// (`ca.crt`). With a user's certificate whose Secret is missing or has no `tls.crt`, ECK's own.
pub(crate) fn public_secret_data(
    state: &ClusterState,
    ns: &str,
    es: &Value,
    eck: &EsHttpCerts,
) -> BTreeMap<String, String> {
    if let Some(secret) = custom_certificate_secret(es)
        && let Some(tls_crt) = secret_key(state, ns, secret, "tls.crt")
    {
        let mut data = BTreeMap::from([("tls.crt".to_string(), tls_crt)]);
        if let Some(ca) = secret_key(state, ns, secret, "ca.crt") {
            data.insert("ca.crt".to_string(), ca);
        }
        return data;
    }
    eck.public_secret_data()
}

/// Whether Elasticsearch requires a client certificate on HTTP: `client.authentication` with TLS
/// on, under an enterprise licence (without one ECK does not manage it).
pub(crate) fn client_authentication(state: &ClusterState, es: &Value) -> bool {
    let asked = es
        .pointer("/spec/http/tls/client/authentication")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let enterprise = matches!(
        configmap_key(state, OPERATOR_NS, LICENSING_CM, "eck_license_level").as_deref(),
        Some("enterprise" | "enterprise_trial" | "enterprise-trial")
    );
    asked && tls_enabled(es) && enterprise
}

/// The client trust bundle of `es` (namespace `ns`, name `name`): the `tls.crt` of each Secret of
/// the namespace labelled as a client certificate of this Elasticsearch and owned by an
/// Elasticsearch of the namespace that exists with that UID. ECK also puts its own client
/// certificate there, which the sandbox's operator never uses.
pub(crate) fn client_trust_bundle(state: &ClusterState, ns: &str, name: &str) -> Vec<String> {
    let secrets = crate::world::list(state, &ResourceKey::SECRETS, Some(ns), None);
    let mut trusted: Vec<(String, String)> = Vec::new();
    for secret in secrets {
        let label = |k: &str| {
            secret
                .pointer("/metadata/labels")
                .and_then(|l| l.get(k))
                .and_then(Value::as_str)
        };
        if label("eck.k8s.elastic.co/client-certificate") != Some("true")
            || label("eck.k8s.elastic.co/owner-name") != Some(name)
            || label("eck.k8s.elastic.co/owner-namespace") != Some(ns)
            || label("eck.k8s.elastic.co/owner-kind") != Some("Elasticsearch")
        {
            continue;
        }
        let owned = secret
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|r| {
                let group = r
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .and_then(|v| v.split('/').next())
                    .unwrap_or("");
                group.ends_with(".k8s.elastic.co")
                    && r.get("kind").and_then(Value::as_str) == Some("Elasticsearch")
                    && r.get("name")
                        .and_then(Value::as_str)
                        .and_then(|owner| {
                            state
                                .get(&ResourceKey::ELASTICSEARCHES, Some(ns), owner)
                                .ok()
                        })
                        .is_some_and(|owner| owner.pointer("/metadata/uid") == r.get("uid"))
            });
        let secret_name = secret
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if owned && let Some(cert) = secret_key(state, ns, &secret_name, "tls.crt") {
            trusted.push((secret_name, cert));
        }
    }
    trusted.sort();
    trusted.into_iter().map(|(_, cert)| cert).collect()
}

/// How the Elasticsearch `es` (in namespace `ns`) serves HTTP now, or `None` when it cannot
/// (a user's certificate Secret that is missing or unusable: in reality ECK stops reconciling
/// and the nodes keep no usable certificate).
pub(crate) fn serving(
    state: &ClusterState,
    ns: &str,
    es: &Value,
    eck: &EsHttpCerts,
    eck_tls: Arc<rustls::ServerConfig>,
) -> Option<HttpServing> {
    if !tls_enabled(es) {
        return Some(HttpServing::Plain);
    }
    let name = es.pointer("/metadata/name").and_then(Value::as_str)?;
    let clients = client_authentication(state, es).then(|| client_trust_bundle(state, ns, name));
    let (chain, key) = match custom_certificate_secret(es) {
        None if clients.is_none() => return Some(HttpServing::Https(eck_tls)),
        None => (eck.chain_pem(), eck.key_pem.clone()),
        Some(secret) => (
            secret_key(state, ns, secret, "tls.crt")?,
            secret_key(state, ns, secret, "tls.key")?,
        ),
    };
    server_config(&chain, &key, clients.as_deref())
        .ok()
        .map(HttpServing::Https)
}

/// A server configuration presenting `chain_pem` (leaf first) with `key_pem`, HTTP/1.1; with
/// `clients`, a client certificate is required and must chain to one of those certificates.
fn server_config(
    chain_pem: &str,
    key_pem: &str,
    clients: Option<&[String]>,
) -> Result<Arc<rustls::ServerConfig>> {
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("tls.crt")?;
    anyhow::ensure!(!chain.is_empty(), "tls.crt holds no certificate");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).context("tls.key")?;
    let builder = rustls::ServerConfig::builder_with_provider(crate::pki::provider())
        .with_safe_default_protocol_versions()?;
    let builder = match clients {
        None => builder.with_no_client_auth(),
        Some(clients) => {
            let mut roots = rustls::RootCertStore::empty();
            for pem in clients {
                for cert in CertificateDer::pem_slice_iter(pem.as_bytes()).flatten() {
                    // A certificate that is no valid trust anchor is skipped, as a bundle entry
                    // Elasticsearch cannot use.
                    let _ = roots.add(cert);
                }
            }
            if roots.is_empty() {
                // Nothing trusted: every handshake is refused.
                builder.with_client_cert_verifier(Arc::new(RefuseAll))
            } else {
                builder.with_client_cert_verifier(
                    rustls::server::WebPkiClientVerifier::builder_with_provider(
                        Arc::new(roots),
                        crate::pki::provider(),
                    )
                    .build()?,
                )
            }
        }
    };
    let mut cfg = builder
        .with_single_cert(chain, key)
        .context("building an HTTPS server configuration")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A client verifier for an empty trust bundle: a certificate is required and none is trusted.
#[derive(Debug)]
struct RefuseAll;

impl rustls::server::danger::ClientCertVerifier for RefuseAll {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ))
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ))
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ))
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        crate::pki::provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
