//! Elasticsearch versions and which of them can be connected (eck-remote-clusters.md section 8).

use std::fmt;

/// An Elasticsearch version (`major.minor.patch`, pre-release suffix ignored for comparisons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EsVersion {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl EsVersion {
    pub fn parse(text: &str) -> Option<EsVersion> {
        let parsed = semver::Version::parse(text.trim()).ok()?;
        Some(EsVersion {
            major: parsed.major,
            minor: parsed.minor,
            patch: parsed.patch,
        })
    }

    const fn new(major: u64, minor: u64, patch: u64) -> EsVersion {
        EsVersion {
            major,
            minor,
            patch,
        }
    }
}

impl fmt::Display for EsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// `GET /_resolve/cluster/<expression>`, which attempts a connection (Elasticsearch 8.13).
pub const RESOLVE_CLUSTER: EsVersion = EsVersion::new(8, 13, 0);
/// Its `timeout` parameter (8.18).
pub const RESOLVE_CLUSTER_TIMEOUT: EsVersion = EsVersion::new(8, 18, 0);

/// ECK's admission webhook minimum for `remoteClusterServer` and `apiKey`
/// (`RemoteClusterAPIKeysMinVersion`).
pub const API_KEY_MIN: EsVersion = EsVersion::new(8, 10, 0);
/// File-based secure settings (with ECK 3.5+, `FileBasedSecureSettingsMinVersion`).
pub const FILE_BASED_SECURE_SETTINGS: EsVersion = EsVersion::new(9, 5, 0);
/// Elastic's documented minimum for the API-key model on both sides.
pub const API_KEY_DOCUMENTED_MIN: EsVersion = EsVersion::new(8, 14, 0);

pub fn supports_api_key(version: &EsVersion) -> bool {
    *version >= API_KEY_MIN
}

pub fn api_key_recommended(version: &EsVersion) -> bool {
    *version >= API_KEY_DOCUMENTED_MIN
}

/// Whether two clusters can be connected either way: same major; 7.17 with 8.x; 8.18 with 9.0;
/// 8.19 with any 9.x (Elastic's remote cluster compatibility table).
pub fn can_connect(a: &EsVersion, b: &EsVersion) -> bool {
    let (old, new) = if a <= b { (a, b) } else { (b, a) };
    match (old.major, new.major) {
        (x, y) if x == y => true,
        (7, 8) => old.minor == 17,
        (8, 9) => match old.minor {
            18 => new.minor == 0,
            19 => true,
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> EsVersion {
        EsVersion::parse(text).unwrap()
    }

    #[test]
    fn compatibility_table() {
        assert!(can_connect(&v("8.15.0"), &v("8.19.2")));
        assert!(can_connect(&v("7.17.9"), &v("8.12.0")));
        assert!(!can_connect(&v("7.16.0"), &v("8.12.0")));
        assert!(can_connect(&v("8.18.1"), &v("9.0.3")));
        assert!(!can_connect(&v("8.18.1"), &v("9.1.0")));
        assert!(can_connect(&v("9.2.0"), &v("8.19.0")));
        assert!(!can_connect(&v("8.17.0"), &v("9.0.0")));
        assert!(!can_connect(&v("7.17.0"), &v("9.0.0")));
    }

    #[test]
    fn api_key_thresholds() {
        assert!(!supports_api_key(&v("8.9.2")));
        assert!(supports_api_key(&v("8.10.0")));
        assert!(!api_key_recommended(&v("8.13.4")));
        assert!(api_key_recommended(&v("8.14.0")));
        assert!(api_key_recommended(&v("9.1.0-SNAPSHOT")));
    }

    #[test]
    fn rejects_what_is_not_a_version() {
        assert_eq!(EsVersion::parse("latest"), None);
        assert_eq!(EsVersion::parse("8.x"), None);
    }
}
