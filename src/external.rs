//! What the user hands over for a remote outside every kubeconfig context: its CA and an
//! encoded cross-cluster API key, read from files and checked before anything is written.

use std::path::Path;

use base64::Engine as _;
use secrecy::SecretString;

use crate::error::UserError;
use crate::plan::RemoteCa;

fn bad(path: &Path, reason: impl Into<String>) -> UserError {
    UserError::BadInputFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The CA of the remote's remote cluster server: a PEM certificate that has not expired.
pub fn read_ca_file(path: &Path, now: jiff::Timestamp) -> Result<RemoteCa, UserError> {
    let pem = std::fs::read(path).map_err(|e| bad(path, format!("cannot be read: {e}")))?;
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem).map_err(|_| {
        bad(
            path,
            "is not a PEM certificate (expected -----BEGIN CERTIFICATE-----)",
        )
    })?;
    let certificate = block.parse_x509().map_err(|e| {
        bad(
            path,
            format!("holds a PEM block that is not an X.509 certificate: {e}"),
        )
    })?;
    let not_after = certificate.validity().not_after.timestamp();
    if not_after < now.as_second() {
        let when = jiff::Timestamp::from_second(not_after)
            .map(|t| t.to_string())
            .unwrap_or_default();
        return Err(bad(
            path,
            format!("holds a certificate that expired on {when}; ask for the remote's current CA"),
        ));
    }
    crate::commands::cross::first_certificate(&pem)
        .ok_or_else(|| bad(path, "is not a PEM certificate"))
}

/// An encoded cross-cluster API key (`encoded` as Elasticsearch returns it: base64 of
/// `id:secret`); returns it with its id.
pub fn read_api_key(path: &Path) -> Result<(SecretString, String), UserError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| bad(path, format!("cannot be read: {e}")))?;
    let encoded = text.trim();
    let not_a_key = || {
        bad(
            path,
            "does not hold an encoded API key (the `encoded` value Elasticsearch returns: base64 of id:key)",
        )
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| not_a_key())?;
    let decoded = String::from_utf8(decoded).map_err(|_| not_a_key())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(not_a_key)?;
    if id.is_empty() || secret.is_empty() || id.contains(char::is_whitespace) {
        return Err(not_a_key());
    }
    Ok((SecretString::from(encoded.to_string()), id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> std::path::PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn api_keys_are_checked_for_shape() {
        let dir = tempfile::tempdir().unwrap();
        let good = base64::engine::general_purpose::STANDARD.encode("abc123:s3cret");
        let (_, id) = read_api_key(&write(&dir, "k", format!("{good}\n").as_bytes())).unwrap();
        assert_eq!(id, "abc123");
        for bad in ["not base64!", "c2VjcmV0", ""] {
            let err = read_api_key(&write(&dir, "b", bad.as_bytes())).unwrap_err();
            assert!(
                err.to_string().contains("does not hold an encoded API key"),
                "{err}"
            );
        }
        let missing = read_api_key(&dir.path().join("nope")).unwrap_err();
        assert!(missing.to_string().contains("cannot be read"));
    }

    #[test]
    fn an_expired_ca_is_refused_and_a_current_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let expired = params.self_signed(&key).unwrap();
        let path = write(&dir, "old.pem", expired.pem().as_bytes());
        let err = read_ca_file(&path, jiff::Timestamp::now()).unwrap_err();
        assert!(err.to_string().contains("expired on 2021-01-01"), "{err}");
        let then: jiff::Timestamp = "2020-06-01T00:00:00Z".parse().unwrap();
        let ca = read_ca_file(&path, then).unwrap();
        assert_eq!(ca.fingerprint.len(), 64);
    }

    #[test]
    fn a_file_that_is_not_a_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_ca_file(&write(&dir, "ca", b"hello"), jiff::Timestamp::now()).unwrap_err();
        assert!(
            err.to_string().contains("is not a PEM certificate"),
            "{err}"
        );
    }
}
