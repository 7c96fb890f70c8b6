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

/// A file the user named: a regular file of at most 1 MiB.
pub fn read_input_file(path: &Path) -> Result<Vec<u8>, UserError> {
    crate::input::read_regular_file(path, crate::input::MAX_INPUT_FILE).map_err(|r| bad(path, r))
}

/// The CA of the remote's remote cluster server: PEM certificates, each a CA (basicConstraints
/// CA:TRUE, and keyCertSign when it lists key usages) that has not expired. Every certificate
/// of a bundle is kept, so a bundle that holds the old and the new CA of a rotation stays whole.
pub fn read_ca_file(path: &Path, now: jiff::Timestamp) -> Result<RemoteCa, UserError> {
    let pem = read_input_file(path)?;
    let not_pem = || {
        bad(
            path,
            "is not a PEM certificate (expected -----BEGIN CERTIFICATE-----)",
        )
    };
    let mut certificates: Vec<Vec<u8>> = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(&pem) {
        let block = block.map_err(|_| not_pem())?;
        let n = certificates.len() + 1;
        if block.label != "CERTIFICATE" {
            return Err(bad(
                path,
                format!(
                    "holds a PEM block {:?} that is not a certificate; give only the CA certificate(s), never a key",
                    block.label
                ),
            ));
        }
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
                format!(
                    "holds a certificate (number {n}) that expired on {when}; ask for the remote's current CA"
                ),
            ));
        }
        let is_ca = matches!(certificate.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
        let signs = match certificate.key_usage() {
            Ok(Some(usage)) => usage.value.key_cert_sign(),
            Ok(None) => true,
            Err(_) => false,
        };
        if !is_ca || !signs {
            return Err(bad(
                path,
                format!(
                    "holds a certificate (number {n}, {}) that is not a CA (no basicConstraints CA:TRUE with keyCertSign); give the CA that signed the remote's certificate, not the certificate itself",
                    certificate.subject()
                ),
            ));
        }
        certificates.push(block.contents);
    }
    if certificates.is_empty() {
        return Err(not_pem());
    }
    Ok(super::certificate_bundle(&certificates))
}

/// The topmost CA certificate a server presented above its own (`chain`: DER, leaf first, as
/// read from a verified TLS handshake), as a bundle to trust; `None` when it sent only its own.
pub fn issuer_of_chain(chain: &[Vec<u8>]) -> Option<RemoteCa> {
    let issuer = chain.iter().skip(1).rfind(|der| {
        x509_parser::parse_x509_certificate(der)
            .is_ok_and(|(_, cert)| matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca))
    })?;
    Some(super::certificate_bundle(&[issuer]))
}

/// An encoded cross-cluster API key (`encoded` as Elasticsearch returns it: base64 of
/// `id:secret`); returns it with its id.
pub fn read_api_key(path: &Path) -> Result<(SecretString, String), UserError> {
    let text = String::from_utf8(read_input_file(path)?).unwrap_or_default();
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
    // Elasticsearch's key ids are URL-safe base64; the id goes into a query string.
    let id_ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if id.is_empty() || secret.is_empty() || !id.chars().all(id_ok) {
        return Err(not_a_key());
    }
    Ok((SecretString::from(encoded.to_string()), id.to_string()))
}

/// The node-name patterns a restricted transport trust accepts for a peer on Elastic Cloud
/// Hosted or ECE.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrustSubjects {
    pub patterns: Vec<String>,
    /// Entries of the downloaded `trust.yml` that were meant for the ECK side and dropped.
    pub dropped: Vec<String>,
}

/// The patterns of `--trust-file` (the `trust.yml` Elastic Cloud Hosted or ECE lets you
/// download) and of `--trust-subject`. The download names the ECK side by the Scope ID typed in
/// their UI (`*.cluster.<scope>.es.local.account`), which never matches ECK's node names
/// (`<pod>.node.<es>.<namespace>.es.local`); Elastic's guide says to replace it, so it is
/// dropped here and the right pattern is written by the plan.
pub fn trust_subjects(file: Option<&Path>, given: &[String]) -> Result<TrustSubjects, UserError> {
    let mut subjects = TrustSubjects::default();
    if let Some(path) = file {
        let text = String::from_utf8(read_input_file(path)?)
            .map_err(|_| bad(path, "is not UTF-8 text; give the trust.yml as downloaded"))?;
        for pattern in subjects_of_trust_yml(&text).map_err(|reason| bad(path, reason))? {
            if pattern.ends_with(".es.local.account") {
                subjects.dropped.push(pattern);
            } else {
                check_subject(&pattern)
                    .map_err(|reason| bad(path, format!("lists {pattern:?}, which {reason}")))?;
                subjects.patterns.push(pattern);
            }
        }
    }
    for pattern in given {
        check_subject(pattern).map_err(|reason| UserError::BadTrustSubject {
            pattern: pattern.clone(),
            reason,
        })?;
        subjects.patterns.push(pattern.clone());
    }
    subjects.patterns.dedup();
    if subjects.patterns.is_empty() {
        return Err(UserError::NoTrustSubjects);
    }
    Ok(subjects)
}

/// `trust.subject_name` of a trust restrictions file: a list of patterns, or one.
fn subjects_of_trust_yml(text: &str) -> Result<Vec<String>, String> {
    let document: serde_json::Value = serde_saphyr::from_str(text)
        .map_err(|e| format!("is not YAML ({e}); expected trust.subject_name: [patterns]"))?;
    match document.get("trust.subject_name") {
        Some(serde_json::Value::String(one)) => Ok(vec![one.clone()]),
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| "has a trust.subject_name entry that is not a string".into())
            })
            .collect(),
        _ => Err("has no trust.subject_name list (the format of Elasticsearch's trust_restrictions.path)".into()),
    }
}

/// A node-name pattern as Elasticsearch matches it: letters, digits, `.`, `-`, `_` and `*`
/// wildcards; never one that matches every name.
fn check_subject(pattern: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '*');
    if pattern.is_empty() || !pattern.chars().all(allowed) {
        return Err(
            "is not a node-name pattern (letters, digits, '.', '-', '_' and '*' only)".into(),
        );
    }
    if pattern.chars().all(|c| c == '*' || c == '.') {
        return Err(
            "matches every node the CA signed, which is what the restriction is there to prevent"
                .into(),
        );
    }
    Ok(())
}

/// The node names a restricted trust accepts, when `--trust-file` or `--trust-subject` asks
/// for one; says which downloaded entries were meant for this side and replaced.
pub fn restriction_subjects(
    trust_file: Option<&Path>,
    trust_subject: &[String],
) -> Result<Option<TrustSubjects>, UserError> {
    if trust_file.is_none() && trust_subject.is_empty() {
        return Ok(None);
    }
    let subjects = trust_subjects(trust_file, trust_subject)?;
    for dropped in &subjects.dropped {
        crate::output::info(&format!(
            "Left out {dropped:?} from the trust file: it names the ECK side by its Scope ID and never matches ECK's node names; this cluster's own pattern is written instead."
        ));
    }
    Ok(Some(subjects))
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
    fn a_downloaded_trust_file_loses_its_eck_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "trust.yml",
            b"trust.subject_name:\n  - \"*.node.2dc5.cluster.1075.account\"\n  - \"*.node.*.cluster.prod.es.local.account\"\n",
        );
        let subjects =
            trust_subjects(Some(&path), &["*.node.abc.cluster.9.account".into()]).unwrap();
        assert_eq!(
            subjects.patterns,
            [
                "*.node.2dc5.cluster.1075.account",
                "*.node.abc.cluster.9.account"
            ]
        );
        assert_eq!(subjects.dropped, ["*.node.*.cluster.prod.es.local.account"]);
        let fixed_by_hand = write(
            &dir,
            "fixed.yml",
            b"trust.subject_name: [\"*.node.2dc5.cluster.1075.account\", \"*.node.products.search.es.local\"]\n",
        );
        let subjects = trust_subjects(Some(&fixed_by_hand), &[]).unwrap();
        assert_eq!(
            subjects.patterns,
            [
                "*.node.2dc5.cluster.1075.account",
                "*.node.products.search.es.local"
            ]
        );
        assert!(subjects.dropped.is_empty());
        let one = write(
            &dir,
            "one.yml",
            b"trust.subject_name: \"*.node.x.cluster.1.account\"\n",
        );
        assert_eq!(
            trust_subjects(Some(&one), &[]).unwrap().patterns,
            ["*.node.x.cluster.1.account"]
        );
    }

    #[test]
    fn trust_subjects_that_cannot_restrict_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let not_yaml = write(&dir, "a", b"trust.subject_name: [unclosed");
        let err = trust_subjects(Some(&not_yaml), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not YAML"), "{err}");
        let no_list = write(&dir, "b", b"something: else\n");
        let err = trust_subjects(Some(&no_list), &[]).unwrap_err().to_string();
        assert!(err.contains("has no trust.subject_name list"), "{err}");
        let only_eck = write(
            &dir,
            "c",
            b"trust.subject_name: [\"*.node.*.cluster.x.es.local.account\"]\n",
        );
        let err = trust_subjects(Some(&only_eck), &[]).unwrap_err();
        assert!(matches!(err, UserError::NoTrustSubjects), "{err}");
        for pattern in ["*", "*.*", "a b", "x\"y", ""] {
            let err = trust_subjects(None, &[pattern.to_string()]).unwrap_err();
            assert!(
                matches!(err, UserError::BadTrustSubject { .. }),
                "{pattern}: {err}"
            );
        }
        let err = trust_subjects(Some(&dir.path().join("none")), &[]).unwrap_err();
        assert!(err.to_string().contains("cannot be read"), "{err}");
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
