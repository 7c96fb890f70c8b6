//! The HTTP certificate ECK gives an Elasticsearch cluster: a self-signed HTTP CA per cluster and
//! a server certificate for the `<es>-es-http` Service names, as published in the
//! `<es>-es-http-certs-public` Secret (`tls.crt`, `ca.crt`).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use rcgen::{DistinguishedName, DnType, ExtendedKeyUsagePurpose};

use crate::pki::{self, Ca};

/// Lowercase hex SHA-256 of a DER certificate (or of any bytes: the sandbox's hash for
/// content fingerprints and stable ids).
pub fn sha256_fingerprint(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// CA and server certificate for `https://<es>-es-http.<ns>.svc:9200`.
#[derive(Clone)]
pub struct EsHttpCerts {
    pub ca_pem: String,
    pub ca_der: Vec<u8>,
    /// The server certificate alone.
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub key_pem: String,
    key_der: Vec<u8>,
    /// DNS names in the server certificate, `<es>-es-http.<ns>.svc` first.
    pub dns_names: Vec<String>,
}

impl std::fmt::Debug for EsHttpCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsHttpCerts")
            .field("dns_names", &self.dns_names)
            .finish_non_exhaustive()
    }
}

impl EsHttpCerts {
    /// Generate the CA (`CN=<es>-http, OU=<es>`) and the server certificate (CN
    /// `<es>-es-http.<ns>.es.local`, SANs `<es>-es-http.<ns>.svc`, `<es>-es-http.<ns>`,
    /// `<es>-es-http`, `<es>-es-http.<ns>.es.local`).
    pub fn generate(es_name: &str, namespace: &str) -> Result<EsHttpCerts> {
        let ca = Ca::with_unit(es_name, &format!("{es_name}-http"))?;
        let svc = format!("{es_name}-es-http");
        let es_local = format!("{svc}.{namespace}.es.local");
        let dns_names = vec![
            format!("{svc}.{namespace}.svc"),
            format!("{svc}.{namespace}"),
            svc.clone(),
            es_local.clone(),
        ];
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationalUnitName, es_name);
        dn.push(DnType::CommonName, es_local);
        let params = pki::leaf_params(
            dns_names.clone(),
            dn,
            &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )?;
        let cert = ca.sign(params)?;
        Ok(EsHttpCerts {
            ca_pem: ca.cert.cert_pem,
            ca_der: ca.cert.cert_der,
            cert_pem: cert.cert_pem,
            cert_der: cert.cert_der,
            key_pem: cert.key_pem,
            key_der: cert.key_der,
            dns_names,
        })
    }

    /// The name clients verify: `<es>-es-http.<ns>.svc`.
    pub fn server_name(&self) -> String {
        self.dns_names[0].clone()
    }

    /// SHA-256 of the CA certificate.
    pub fn ca_fingerprint(&self) -> String {
        sha256_fingerprint(&self.ca_der)
    }

    /// `tls.crt` as ECK writes it: the server certificate followed by the CA.
    pub fn chain_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.ca_pem)
    }

    /// Data of the `<es>-es-http-certs-public` Secret: `tls.crt` and `ca.crt`.
    pub fn public_secret_data(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("tls.crt".to_string(), self.chain_pem()),
            ("ca.crt".to_string(), self.ca_pem.clone()),
        ])
    }

    /// rustls server configuration presenting the chain (no client certificates), HTTP/1.1.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>> {
        pki::http1_server_config(&[&self.cert_der, &self.ca_der], &self.key_der)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_secret_data() {
        let c = EsHttpCerts::generate("quickstart", "prod").unwrap();
        assert_eq!(c.server_name(), "quickstart-es-http.prod.svc");
        assert_eq!(
            c.dns_names,
            [
                "quickstart-es-http.prod.svc",
                "quickstart-es-http.prod",
                "quickstart-es-http",
                "quickstart-es-http.prod.es.local"
            ]
        );
        let data = c.public_secret_data();
        assert!(data["tls.crt"].starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(data["tls.crt"].ends_with(&data["ca.crt"]));
        assert_eq!(c.ca_fingerprint().len(), 64);
        let (_, parsed) = x509_parser::parse_x509_certificate(&c.cert_der).unwrap();
        let san = parsed.subject_alternative_name().unwrap().unwrap();
        assert_eq!(san.value.general_names.len(), 4);
        c.server_config().unwrap();
    }
}
