//! Test PKI with rcgen: one CA per cluster, a server certificate for 127.0.0.1/localhost, and
//! one client certificate per user (CN = user name, O = groups), as kubeadm's
//! `kubernetes-admin` (`O=system:masters`) is made.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate and its PKCS#8 key, DER and PEM.
#[derive(Clone)]
pub struct CertKey {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

impl std::fmt::Debug for CertKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertKey").finish_non_exhaustive()
    }
}

pub struct Ca {
    pub cert: CertKey,
    issuer: Issuer<'static, KeyPair>,
}

/// An end-entity certificate for the DNS names `dns`, named `dn`, for `usages` (key usages
/// digital signature and key encipherment).
pub(crate) fn leaf_params(
    dns: Vec<String>,
    dn: DistinguishedName,
    usages: &[ExtendedKeyUsagePurpose],
) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(dns)?;
    params.distinguished_name = dn;
    params.extended_key_usages = usages.to_vec();
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    Ok(params)
}

/// Fixed validity window; clients only check that "now" is inside it.
fn validity(params: &mut CertificateParams) {
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2099, 12, 31);
}

impl Ca {
    /// A self-signed CA `CN=<common_name>`.
    pub fn new(common_name: &str) -> Result<Ca> {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        Ca::with_name(dn)
    }

    /// A self-signed CA `OU=<unit>, CN=<common_name>`, as ECK names its HTTP and transport CAs.
    pub(crate) fn with_unit(unit: &str, common_name: &str) -> Result<Ca> {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationalUnitName, unit);
        dn.push(DnType::CommonName, common_name);
        Ca::with_name(dn)
    }

    fn with_name(dn: DistinguishedName) -> Result<Ca> {
        let key = KeyPair::generate().context("generating CA key")?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params);
        let cert = params.self_signed(&key)?;
        let ck = CertKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        };
        Ok(Ca {
            cert: ck,
            issuer: Issuer::new(params, key),
        })
    }

    /// Server certificate for `https://127.0.0.1:PORT` (SAN IP 127.0.0.1, DNS localhost).
    pub fn server_cert(&self) -> Result<CertKey> {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "kube-apiserver");
        let mut params = leaf_params(
            vec!["localhost".to_string()],
            dn,
            &[ExtendedKeyUsagePurpose::ServerAuth],
        )?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        self.sign(params)
    }

    /// Client certificate: CN = `user`, one O per group.
    pub fn client_cert(&self, user: &str, groups: &[&str]) -> Result<CertKey> {
        let mut dn = DistinguishedName::new();
        for g in groups {
            dn.push(DnType::OrganizationName, *g);
        }
        dn.push(DnType::CommonName, user);
        self.sign(leaf_params(
            Vec::new(),
            dn,
            &[ExtendedKeyUsagePurpose::ClientAuth],
        )?)
    }

    /// Signs a certificate made of `params` (validity set here) for a new key.
    pub(crate) fn sign(&self, mut params: CertificateParams) -> Result<CertKey> {
        validity(&mut params);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(CertKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        })
    }
}

/// The ring crypto provider (never the process default: several sandboxes may coexist).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// rustls server configuration: this server cert, client certificates required and verified
/// against the cluster CA, ALPN h2 and http/1.1 (what kubectl and kube-rs offer).
pub fn server_config(ca: &CertKey, server: &CertKey) -> Result<rustls::ServerConfig> {
    let provider = provider();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca.cert_der.clone()))?;
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(server.cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server.key_der.clone())),
        )?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// rustls server configuration presenting `chain` (DER, leaf first) with its PKCS#8 key, no
/// client certificates, HTTP/1.1 only: what an Elasticsearch HTTP server offers.
pub fn http1_server_config(chain: &[&[u8]], key_der: &[u8]) -> Result<Arc<rustls::ServerConfig>> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            chain
                .iter()
                .map(|der| CertificateDer::from(der.to_vec()))
                .collect(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der.to_vec())),
        )
        .context("building an HTTPS server configuration")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// rustls client configuration trusting `ca` and presenting `client` (for tests).
pub fn client_config(
    ca_pem: &str,
    client: &CertKey,
    alpn_h2: bool,
) -> Result<rustls::ClientConfig> {
    let provider = provider();
    let mut roots = rustls::RootCertStore::empty();
    for der in pem_certs(ca_pem)? {
        roots.add(der)?;
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from(client.cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(client.key_der.clone())),
        )?;
    cfg.alpn_protocols = if alpn_h2 {
        vec![b"h2".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(cfg)
}

fn pem_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("parsing CA PEM")
}

/// User name (CN) and groups (O) of a verified client certificate.
pub fn identity(cert_der: &[u8]) -> Option<(String, Vec<String>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let subject = cert.subject();
    let cn = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok().map(str::to_string))
        .collect();
    Some((cn, groups))
}
