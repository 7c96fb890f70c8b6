//! Elasticsearch's log lines and `_resolve/cluster` errors matched against the error catalogue
//! (the key phrases Elasticsearch logs for each reason a remote connection fails).

use serde_json::Value;

use super::{Finding, codes, finding};

/// Key phrases, most specific first, and the code each means.
const CATALOGUE: &[(&[&str], &str)] = &[
    (
        &[
            "remote_cluster_client.ssl",
            "not configured to trust that issuer",
        ],
        codes::WRONG_PORT,
    ),
    (&["No subject alternative"], codes::SERVER_NAME_MISMATCH),
    (
        &["not configured to trust that issuer"],
        codes::CA_NOT_TRUSTED,
    ),
    (&["PKIX path building failed"], codes::CA_NOT_TRUSTED),
    (
        &["require transport header [_cross_cluster_access_credentials]"],
        codes::CREDENTIALS_MISSING,
    ),
    (
        &["API key type of [cross_cluster]"],
        codes::API_KEY_NOT_CROSS_CLUSTER,
    ),
    (&["has type [rest]"], codes::API_KEY_NOT_CROSS_CLUSTER),
    (&["unable to authenticate user"], codes::API_KEY_REFUSED),
    (&["invalid credentials for API key"], codes::API_KEY_REFUSED),
    (&["has been invalidated"], codes::API_KEY_REFUSED),
    (&["has expired"], codes::API_KEY_REFUSED),
    (&["unable to find API key"], codes::API_KEY_REFUSED),
    (&["is not an encoded API key"], codes::API_KEY_REFUSED),
    (
        &["client did not trust this server's certificate"],
        codes::REMOTE_DOES_NOT_TRUST_LOCAL,
    ),
    (&["bad_certificate"], codes::REMOTE_DOES_NOT_TRUST_LOCAL),
    (&["trust restrictions"], codes::TRUST_RESTRICTED),
    (
        &["Path does not chain with any of the trust anchors"],
        codes::TRUST_RESTRICTED,
    ),
    (
        &["failed to open any proxy connections"],
        codes::REMOTE_UNREACHABLE,
    ),
    (
        &["fetching nodes from external cluster"],
        codes::REMOTE_UNREACHABLE,
    ),
    (
        &["is incompatible with local node version"],
        codes::VERSIONS_INCOMPATIBLE,
    ),
];

/// The code of the first catalogue entry whose phrases are all in `text`.
pub fn code_of_error(text: &str) -> Option<&'static str> {
    CATALOGUE
        .iter()
        .find(|(phrases, _)| phrases.iter().all(|p| text.contains(p)))
        .map(|(_, code)| *code)
}

/// The findings of the log lines that concern `alias`: lines naming it (`cluster [alias]`) or,
/// naming no remote cluster, the address it dials, once per code, the line quoted (log lines carry no secrets: key ids only).
pub fn findings(lines: &[String], alias: &str, live: Option<&Value>, object: &str) -> Vec<Finding> {
    let named = format!("[{alias}]");
    let addresses = addresses_of(live);
    let mut found: Vec<Finding> = Vec::new();
    for line in lines {
        // A line that names its remote cluster concerns that alias only; one that names just
        // the address dialled (a TLS failure) concerns every link dialling it.
        let concerns = if line.contains("cluster [") {
            line.contains(&named)
        } else {
            addresses.iter().any(|a| line.contains(a.as_str()))
        };
        if !concerns {
            continue;
        }
        let Some(code) = code_of_error(line) else {
            continue;
        };
        if found.iter().any(|f| f.code == code) {
            continue;
        }
        found.push(finding(
            code,
            object.to_string(),
            format!("the pod log says: {}", message_of(line)),
            None,
        ));
    }
    found
}

/// The `[address]` forms a link dials (`proxy_address`, each seed).
fn addresses_of(live: Option<&Value>) -> Vec<String> {
    let Some(live) = live else {
        return Vec::new();
    };
    let mut addresses: Vec<String> = live
        .get("seeds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|a| format!("[{a}]"))
        .collect();
    if let Some(proxy) = live.get("proxy_address").and_then(Value::as_str)
        && !proxy.is_empty()
    {
        addresses.push(format!("[{proxy}]"));
    }
    addresses
}

/// A log line without its `[time][level][logger] [node]` prefix.
fn message_of(line: &str) -> &str {
    let mut rest = line;
    for _ in 0..4 {
        let trimmed = rest.trim_start();
        match trimmed.strip_prefix('[').and_then(|r| r.split_once(']')) {
            Some((_, after)) => rest = after,
            None => break,
        }
    }
    rest.trim()
}
