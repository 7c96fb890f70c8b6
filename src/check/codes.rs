//! Every check, by stable code: its layer, severity and title (`docs/checks.md` has one entry
//! per code with its cause and fix).

use serde::Serialize;

use super::Severity;

/// The layer of a check, in the order they are looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Configuration,
    Exposure,
    Eck,
    Trust,
    Credentials,
    Elasticsearch,
    Compatibility,
}

#[derive(Debug, Clone, Copy)]
pub struct Check {
    pub code: &'static str,
    pub layer: Layer,
    pub severity: Severity,
    pub title: &'static str,
}

pub const LICENCE_NOT_ENTERPRISE: &str = "licence-not-enterprise";
pub const NO_ELASTICSEARCH_REF: &str = "no-elasticsearch-ref";
pub const REMOTE_NOT_FOUND: &str = "remote-not-found";
pub const RECORD_WITHOUT_SETTINGS: &str = "record-without-settings";
pub const REMOTE_SERVER_DISABLED: &str = "remote-server-disabled";
pub const REMOTE_UNREACHABLE: &str = "remote-unreachable";
pub const PROXY_ADDRESS_STALE: &str = "proxy-address-stale";
pub const WRONG_PORT: &str = "wrong-port";
pub const SERVER_NAME_MISMATCH: &str = "server-name-mismatch";
pub const ECK_RECONCILE_ERROR: &str = "eck-reconcile-error";
pub const ECK_WARNING_EVENT: &str = "eck-warning-event";
pub const CA_NOT_TRUSTED: &str = "ca-not-trusted";
pub const CA_STALE: &str = "ca-stale";
pub const REMOTE_DOES_NOT_TRUST_LOCAL: &str = "remote-does-not-trust-local";
pub const TRUST_RESTRICTED: &str = "trust-restricted";
pub const CREDENTIALS_MISSING: &str = "credentials-missing";
pub const API_KEY_REFUSED: &str = "api-key-refused";
pub const API_KEY_NOT_CROSS_CLUSTER: &str = "api-key-not-cross-cluster";
pub const ELASTICSEARCH_ERROR: &str = "elasticsearch-error";
pub const ELASTICSEARCH_UNREACHABLE: &str = "elasticsearch-unreachable";
pub const NOT_CONNECTED: &str = "not-connected";
pub const VERSIONS_INCOMPATIBLE: &str = "versions-incompatible";

const fn check(code: &'static str, layer: Layer, severity: Severity, title: &'static str) -> Check {
    Check {
        code,
        layer,
        severity,
        title,
    }
}

/// Every check, in layer order.
pub const CHECKS: &[Check] = &[
    check(
        LICENCE_NOT_ENTERPRISE,
        Layer::Configuration,
        Severity::Error,
        "ECK licence allows remote clusters",
    ),
    check(
        NO_ELASTICSEARCH_REF,
        Layer::Configuration,
        Severity::Error,
        "spec entry names its remote",
    ),
    check(
        REMOTE_NOT_FOUND,
        Layer::Configuration,
        Severity::Error,
        "referenced Elasticsearch exists",
    ),
    check(
        RECORD_WITHOUT_SETTINGS,
        Layer::Configuration,
        Severity::Error,
        "recorded link is in the cluster settings",
    ),
    check(
        REMOTE_SERVER_DISABLED,
        Layer::Exposure,
        Severity::Error,
        "remote cluster server on for API-key links",
    ),
    check(
        PROXY_ADDRESS_STALE,
        Layer::Exposure,
        Severity::Error,
        "recorded address is where the remote is exposed",
    ),
    check(
        REMOTE_UNREACHABLE,
        Layer::Exposure,
        Severity::Error,
        "something answers at the remote's address",
    ),
    check(
        WRONG_PORT,
        Layer::Exposure,
        Severity::Error,
        "API-key link dials the remote cluster server port",
    ),
    check(
        SERVER_NAME_MISMATCH,
        Layer::Exposure,
        Severity::Error,
        "server name is in the remote's certificate",
    ),
    check(
        ECK_RECONCILE_ERROR,
        Layer::Eck,
        Severity::Error,
        "ECK reconciles the resource",
    ),
    check(
        ECK_WARNING_EVENT,
        Layer::Eck,
        Severity::Warning,
        "no ECK Warning events",
    ),
    check(
        CA_NOT_TRUSTED,
        Layer::Trust,
        Severity::Error,
        "local trusts the remote's CA",
    ),
    check(
        CA_STALE,
        Layer::Trust,
        Severity::Error,
        "trusted CA copy is current",
    ),
    check(
        REMOTE_DOES_NOT_TRUST_LOCAL,
        Layer::Trust,
        Severity::Error,
        "remote trusts the local's CA",
    ),
    check(
        TRUST_RESTRICTED,
        Layer::Trust,
        Severity::Error,
        "trust restrictions accept the peer's nodes",
    ),
    check(
        CREDENTIALS_MISSING,
        Layer::Credentials,
        Severity::Error,
        "API key in the local keystore",
    ),
    check(
        API_KEY_REFUSED,
        Layer::Credentials,
        Severity::Error,
        "remote accepts the API key",
    ),
    check(
        API_KEY_NOT_CROSS_CLUSTER,
        Layer::Credentials,
        Severity::Error,
        "API key is a cross-cluster key",
    ),
    check(
        ELASTICSEARCH_ERROR,
        Layer::Elasticsearch,
        Severity::Error,
        "no error from _resolve/cluster",
    ),
    check(
        ELASTICSEARCH_UNREACHABLE,
        Layer::Elasticsearch,
        Severity::Warning,
        "Elasticsearch can be asked",
    ),
    check(
        NOT_CONNECTED,
        Layer::Elasticsearch,
        Severity::Error,
        "link connected",
    ),
    check(
        VERSIONS_INCOMPATIBLE,
        Layer::Compatibility,
        Severity::Error,
        "versions can connect",
    ),
];

/// The check of `code` (a code of [`CHECKS`]).
pub fn check_of(code: &str) -> &'static Check {
    CHECKS
        .iter()
        .find(|c| c.code == code)
        .unwrap_or_else(|| panic!("unknown check code {code}"))
}
