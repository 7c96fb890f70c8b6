//! The HTTP certificate ECK gives an Elasticsearch cluster: a self-signed HTTP CA per cluster and
//! a server certificate for the `<es>-es-http` Service names, as published in the
//! `<es>-es-http-certs-public` Secret (`tls.crt`, `ca.crt`).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Lowercase hex SHA-256 of a DER certificate.
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
    /// DNS names in the server certificate.
    pub dns_names: Vec<String>,
    es_name: String,
    namespace: String,
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
        let ca_key = KeyPair::generate().context("generating HTTP CA key")?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationalUnitName, es_name);
        dn.push(DnType::CommonName, format!("{es_name}-http"));
        ca_params.distinguished_name = dn;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        ca_params.not_after = rcgen::date_time_ymd(2099, 12, 31);
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let svc = format!("{es_name}-es-http");
        let es_local = format!("{svc}.{namespace}.es.local");
        let dns_names = vec![
            format!("{svc}.{namespace}.svc"),
            format!("{svc}.{namespace}"),
            svc.clone(),
            es_local.clone(),
        ];
        let key = KeyPair::generate().context("generating HTTP key")?;
        let mut params = CertificateParams::new(dns_names.clone())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationalUnitName, es_name);
        dn.push(DnType::CommonName, es_local);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2099, 12, 31);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(EsHttpCerts {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().to_vec(),
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
            dns_names,
            es_name: es_name.to_string(),
            namespace: namespace.to_string(),
        })
    }

    /// The name clients verify: `<es>-es-http.<ns>.svc`.
    pub fn server_name(&self) -> String {
        format!("{}-es-http.{}.svc", self.es_name, self.namespace)
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
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![
                    CertificateDer::from(self.cert_der.clone()),
                    CertificateDer::from(self.ca_der.clone()),
                ],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone())),
            )
            .context("building the Elasticsearch HTTP TLS config")?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
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
