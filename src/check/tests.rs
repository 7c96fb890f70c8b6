use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::describe;

fn es(name: &str, spec: Value) -> EsState {
    EsState {
        id: ClusterId {
            context: "east".into(),
            namespace: "shop".into(),
            name: name.into(),
        },
        object: json!({"metadata": {"name": name, "namespace": "shop", "generation": 1},
                       "spec": spec,
                       "status": {"observedGeneration": 1, "phase": "Ready", "health": "green"}}),
    }
}

struct Case {
    local: EsState,
    others: Vec<EsState>,
    info: Option<Value>,
    license: &'static str,
    events: Vec<Event>,
    logs: Vec<String>,
}

impl Case {
    fn groups(&self) -> Vec<Group> {
        let report = describe::build(
            &describe::Observed {
                es: &self.local,
                others: &self.others,
                remote_info: self.info.as_ref(),
                license_level: Some(self.license),
                remote_cas: &BTreeMap::new(),
                incoming_elsewhere: &[],
                restricted: None,
                pending: &[],
            },
            "v",
        );
        check(&Observed {
            report: &report,
            es: &self.local,
            others: &self.others,
            license_level: Some(self.license),
            remote_info: self.info.as_ref(),
            remote_addresses: &BTreeMap::new(),
            events: &self.events,
            log_lines: &self.logs,
        })
    }
}

fn codes(groups: &[Group]) -> Vec<(String, Vec<&'static str>)> {
    groups
        .iter()
        .map(|g| {
            (
                g.alias.clone().unwrap_or_default(),
                g.findings.iter().map(|f| f.code).collect(),
            )
        })
        .collect()
}

/// hub with one link of each kind the state alone explains, and one the log explains.
fn hub_case() -> Case {
    Case {
        local: es(
            "hub",
            json!({"version": "9.1.3", "remoteClusters": [
                {"name": "ok", "elasticsearchRef": {"name": "spoke"}, "apiKey": {"access": {}}},
                {"name": "off", "elasticsearchRef": {"name": "billing"}, "apiKey": {"access": {}}},
                {"name": "ghost", "elasticsearchRef": {"name": "ghost"}},
                {"name": "old", "elasticsearchRef": {"name": "legacy"}},
                {"name": "stray"}
            ]}),
        ),
        others: vec![
            es("spoke", json!({"version": "9.1.3", "remoteClusterServer": {"enabled": true}})),
            es("billing", json!({"version": "9.1.3"})),
            es("legacy", json!({"version": "8.17.0"})),
        ],
        info: Some(json!({
            "ok": {"connected": true, "mode": "sniff", "seeds": ["spoke-es-remote-cluster.shop.svc:9443"], "cluster_credentials": "::es_redacted::"},
            "off": {"connected": false, "mode": "sniff", "seeds": ["billing-es-remote-cluster.shop.svc:9443"], "cluster_credentials": "::es_redacted::"},
            "ghost": {"connected": false, "mode": "sniff", "seeds": ["ghost-es-transport.shop.svc:9300"]},
            "old": {"connected": false, "mode": "sniff", "seeds": ["legacy-es-transport.shop.svc:9300"]},
            "nowhere": {"connected": false, "mode": "proxy", "proxy_address": "search.shop.svc:9443"},
            "tls": {"connected": false, "mode": "proxy", "proxy_address": "lonely.shop.svc:9300"}
        })),
        license: "enterprise",
        events: vec![],
        logs: vec![
            "[t][WARN ][o.e.t.SniffConnectionStrategy] [hub-0] fetching nodes from external cluster [off] failed: [billing-es-remote-cluster.shop.svc:9443] connect_exception".into(),
            "[t][WARN ][o.e.t.ProxyConnectionStrategy] [hub-0] failed to open any proxy connections to cluster [nowhere]: [search.shop.svc:9443] connect_exception".into(),
            "[t][WARN ][o.e.x.c.s.t.n.SecurityNetty4Transport] [hub-0] failed to establish trust with server at [lonely.shop.svc:9300]; ... is not configured to trust that issuer: PKIX path building failed".into(),
        ],
    }
}

#[test]
fn each_broken_link_gets_its_code_and_the_healthy_one_none() {
    let groups = hub_case().groups();
    insta::assert_json_snapshot!(groups);
    assert_eq!(
        codes(&groups),
        [
            ("".to_string(), vec![]),
            ("ok".to_string(), vec![]),
            ("off".to_string(), vec![codes::REMOTE_SERVER_DISABLED]),
            ("ghost".to_string(), vec![codes::REMOTE_NOT_FOUND]),
            ("old".to_string(), vec![codes::VERSIONS_INCOMPATIBLE]),
            ("stray".to_string(), vec![codes::NO_ELASTICSEARCH_REF]),
            ("nowhere".to_string(), vec![codes::REMOTE_UNREACHABLE]),
            ("tls".to_string(), vec![codes::CA_NOT_TRUSTED]),
        ]
    );
    assert_eq!(worst(&groups), Some(Severity::Error));
}

#[test]
fn a_basic_licence_explains_every_eck_link_and_events_are_warnings() {
    let mut case = hub_case();
    case.license = "basic";
    case.events = vec![
        Event {
            reason: "AssociationError".into(),
            message: "Remote cluster is an enterprise feature".into(),
        },
        Event {
            reason: "AssociationError".into(),
            message: "Remote cluster is an enterprise feature".into(),
        },
    ];
    let groups = case.groups();
    assert_eq!(groups[0].findings.len(), 1, "the same event once");
    assert_eq!(groups[0].findings[0].code, codes::ECK_WARNING_EVENT);
    assert_eq!(groups[0].findings[0].severity, Severity::Warning);
    for group in &groups[1..6] {
        let codes: Vec<_> = group.findings.iter().map(|f| f.code).collect();
        assert_eq!(codes, [codes::LICENCE_NOT_ENTERPRISE], "{group:?}");
    }
}

#[test]
fn an_unexplained_disconnection_is_not_connected_and_a_resolve_error_is_classified() {
    let case = Case {
        local: es("hub", json!({"version": "9.1.3"})),
        others: vec![],
        info: Some(json!({
            "quiet": {"connected": false, "mode": "proxy", "proxy_address": "a:9443"},
            "revoked": {"connected": true, "mode": "proxy", "proxy_address": "b:9443", "cluster_credentials": "::es_redacted::",
                        "error": "API key [k1] has been invalidated"},
            "odd": {"connected": true, "mode": "proxy", "proxy_address": "c:9443", "error": "something new"}
        })),
        license: "enterprise",
        events: vec![],
        logs: vec![],
    };
    assert_eq!(
        codes(&case.groups())[1..],
        [
            ("quiet".to_string(), vec![codes::NOT_CONNECTED]),
            ("revoked".to_string(), vec![codes::API_KEY_REFUSED]),
            ("odd".to_string(), vec![codes::ELASTICSEARCH_ERROR]),
        ]
    );
}

#[test]
fn a_log_line_naming_another_alias_does_not_concern_a_link_dialling_the_same_address() {
    let lines = vec![
        "[t][WARN ][x] [n] connection to remote cluster [nokey] at [spoke:9443] failed: Cross cluster requests through the dedicated remote cluster server port require transport header [_cross_cluster_access_credentials] but none found.".to_string(),
        "[t][WARN ][x] [n] failed to establish trust with server at [spoke:9443]; this ssl context ([xpack.security.remote_cluster_client.ssl]) is not configured to trust that issuer".to_string(),
    ];
    let live = json!({"seeds": ["spoke:9443"]});
    let other = logs::findings(&lines, "healthy", Some(&live), "o");
    assert_eq!(
        other.iter().map(|f| f.code).collect::<Vec<_>>(),
        [codes::WRONG_PORT],
        "only the line that names no alias"
    );
    let named = logs::findings(&lines, "nokey", Some(&live), "o");
    assert_eq!(
        named.iter().map(|f| f.code).collect::<Vec<_>>(),
        [codes::CREDENTIALS_MISSING, codes::WRONG_PORT]
    );
    assert!(
        named[0]
            .message
            .starts_with("the pod log says: connection to remote cluster [nokey]"),
        "{}",
        named[0].message
    );
}

#[test]
fn every_catalogue_phrase_has_a_documented_code() {
    let docs = include_str!("../../docs/checks.md");
    for check in CHECKS {
        assert!(
            docs.contains(&format!("## `{}`", check.code)),
            "docs/checks.md has no entry for {}",
            check.code
        );
    }
    for (text, code) in [
        (
            "Authentication using apikey failed - invalid credentials for API key [x]",
            codes::API_KEY_REFUSED,
        ),
        (
            "authentication expected API key type of [cross_cluster], but API key [x] has type [rest]",
            codes::API_KEY_NOT_CROSS_CLUSTER,
        ),
        (
            "client did not trust this server's certificate, closing connection",
            codes::REMOTE_DOES_NOT_TRUST_LOCAL,
        ),
        (
            "PKIX path validation failed: Path does not chain with any of the trust anchors",
            codes::TRUST_RESTRICTED,
        ),
        (
            "No subject alternative DNS name matching [x] found",
            codes::SERVER_NAME_MISMATCH,
        ),
        (
            "remote node version [8.17.0] is incompatible with local node version [9.1.3]",
            codes::VERSIONS_INCOMPATIBLE,
        ),
    ] {
        assert_eq!(logs::code_of_error(text), Some(code), "{text}");
    }
    assert_eq!(logs::code_of_error("all is well"), None);
}

#[test]
fn a_wait_stops_on_a_refused_key_or_a_log_line_naming_the_alias_only() {
    let local = ClusterId {
        context: "east".into(),
        namespace: "search".into(),
        name: "catalog".into(),
    };
    let refused = blocking_finding(
        &local,
        "cloud",
        Some("API key [k] has been invalidated"),
        &[],
    )
    .unwrap();
    assert_eq!(refused.code, codes::API_KEY_REFUSED);
    assert_eq!(
        refused.object,
        "Elasticsearch east/search/catalog alias cloud"
    );
    assert!(blocking_finding(&local, "cloud", Some("something new"), &[]).is_none());
    let lines = vec![
        "[t][WARN ][x] [n] failed to open any proxy connections to cluster [other]: [a:1]"
            .to_string(),
    ];
    assert!(blocking_finding(&local, "cloud", None, &lines).is_none());
    let lines = vec![
        "[t][WARN ][x] [n] failed to open any proxy connections to cluster [cloud]: [a:1]"
            .to_string(),
    ];
    assert_eq!(
        blocking_finding(&local, "cloud", None, &lines)
            .unwrap()
            .code,
        codes::REMOTE_UNREACHABLE
    );
}

#[test]
fn only_and_skip_filter_findings_by_code() {
    let mut groups = hub_case().groups();
    filter(
        &mut groups,
        &[codes::REMOTE_NOT_FOUND.into(), codes::CA_NOT_TRUSTED.into()],
        &[codes::CA_NOT_TRUSTED.into()],
    );
    assert_eq!(
        count_by_code(&groups),
        BTreeMap::from([(codes::REMOTE_NOT_FOUND, 1)])
    );
}

#[test]
fn a_wait_gives_trust_findings_the_time_mounted_files_take_to_reach_the_pods() {
    use std::time::Duration;
    assert_eq!(
        super::wait_grace(codes::CA_NOT_TRUSTED),
        Duration::from_secs(120)
    );
    assert_eq!(
        super::wait_grace(codes::TRUST_RESTRICTED),
        Duration::from_secs(120)
    );
    assert_eq!(
        super::wait_grace(codes::API_KEY_REFUSED),
        Duration::from_secs(10)
    );
}
