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

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use serde_json::Value;

use crate::cluster::ClusterState;
use crate::elasticsearch::EsHttpCerts;
use crate::world::secret_key;

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

/// How the Elasticsearch `es` (in namespace `ns`) serves HTTP now, or `None` when it cannot
/// (a user's certificate Secret that is missing or unusable: in reality ECK stops reconciling
/// and the nodes keep no usable certificate).
pub(crate) fn serving(
    state: &ClusterState,
    ns: &str,
    es: &Value,
    eck_tls: Arc<rustls::ServerConfig>,
) -> Option<HttpServing> {
    if !tls_enabled(es) {
        return Some(HttpServing::Plain);
    }
    match custom_certificate_secret(es) {
        None => Some(HttpServing::Https(eck_tls)),
        Some(secret) => {
            let chain = secret_key(state, ns, secret, "tls.crt")?;
            let key = secret_key(state, ns, secret, "tls.key")?;
            custom_server_config(&chain, &key)
                .ok()
                .map(HttpServing::Https)
        }
    }
}

/// A server configuration presenting `chain_pem` (leaf first) with `key_pem`, HTTP/1.1.
fn custom_server_config(chain_pem: &str, key_pem: &str) -> Result<Arc<rustls::ServerConfig>> {
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("tls.crt")?;
    anyhow::ensure!(!chain.is_empty(), "tls.crt holds no certificate");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).context("tls.key")?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(crate::pki::provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("building an HTTPS server configuration")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
