//! Engine tests through `handle`, and the `connected` computation with a fake world.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::*;

const PW: &str = "s3cret";

/// A world with explicit endpoints (by `cluster` + address), trust lists and nodes.
#[derive(Default)]
struct FakeWorld {
    endpoints: HashMap<(String, String), Endpoint>,
    trust: HashMap<(EsId, Interface), Vec<String>>,
    nodes: HashMap<EsId, ElasticsearchNode>,
    restrictions: HashMap<EsId, TrustRestrictions>,
    pending: Option<BTreeMap<String, String>>,
    now: i64,
}

impl RemoteWorld for FakeWorld {
    fn resolve(&self, from: &NodeLocation, address: &str) -> Option<Endpoint> {
        self.endpoints
            .get(&(from.cluster.clone(), address.to_string()))
            .cloned()
    }
    fn trusted_cas(&self, local: &EsId, interface: Interface) -> Vec<String> {
        self.trust
            .get(&(local.clone(), interface))
            .cloned()
            .unwrap_or_default()
    }
    fn with_node(&self, id: &EsId, f: &mut dyn FnMut(&ElasticsearchNode)) {
        if let Some(n) = self.nodes.get(id) {
            f(n);
        }
    }
    fn pending_keystore(&self, _local: &EsId) -> Option<BTreeMap<String, String>> {
        self.pending.clone()
    }
    fn transport_trust_restrictions(&self, local: &EsId) -> TrustRestrictions {
        self.restrictions.get(local).cloned().unwrap_or_default()
    }
    fn now_millis(&self) -> i64 {
        self.now
    }
}

fn local_id() -> EsId {
    EsId::new("k1", "ns1", "local")
}
fn remote_id() -> EsId {
    EsId::new("k2", "ns2", "remote")
}

fn node(id: EsId) -> ElasticsearchNode {
    let mut n = ElasticsearchNode::new(id.clone(), "8.15.0", PW);
    n.transport_ca_fingerprint = format!("{}-transport-ca", id.name);
    n
}

fn call(
    n: &mut ElasticsearchNode,
    w: &dyn RemoteWorld,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> EsResponse {
    let mut req = EsRequest::new(method, uri).basic("elastic", PW);
    if let Some(b) = body {
        req = req.json(&b);
    }
    n.handle(&req, w)
}

const RCS_NAME: &str = "remote-es-remote-cluster.ns2.svc";

/// L (k1) -> R (k2) over an LB, API-key model, every ingredient present.
fn api_key_setup() -> (ElasticsearchNode, FakeWorld) {
    let mut world = FakeWorld {
        now: 1_000,
        ..FakeWorld::default()
    };
    let mut remote = node(remote_id());
    let created = call(
        &mut remote,
        &world,
        "POST",
        "/_security/cross_cluster/api_key",
        Some(json!({"name":"kplug-l","access":{"search":[{"names":["logs-*"]}]}})),
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let encoded = created.body["encoded"].as_str().unwrap().to_string();
    world.nodes.insert(remote_id(), remote);
    world.endpoints.insert(
        ("k1".into(), "203.0.113.7:9443".into()),
        Endpoint {
            target: remote_id(),
            interface: Interface::RemoteClusterServer,
            tls_names: vec![
                RCS_NAME.into(),
                "remote-es-default-0.remote-es-default.ns2.svc".into(),
            ],
            ca_fingerprint: "remote-transport-ca".into(),
        },
    );
    world.trust.insert(
        (local_id(), Interface::RemoteClusterServer),
        vec!["remote-transport-ca".into()],
    );
    let mut local = node(local_id());
    local
        .keystore
        .insert("cluster.remote.r1.credentials".into(), encoded);
    let r = call(
        &mut local,
        &world,
        "PUT",
        "/_cluster/settings",
        Some(json!({"persistent":{"cluster":{"remote":{"r1":{
            "mode":"proxy","proxy_address":"203.0.113.7:9443","server_name":RCS_NAME}}}}})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    (local, world)
}

/// L (k1) -> R (k2) over an LB on 9300, certificate model, every ingredient present.
fn cert_setup() -> (ElasticsearchNode, FakeWorld) {
    let mut world = FakeWorld::default();
    world.nodes.insert(remote_id(), node(remote_id()));
    world.endpoints.insert(
        ("k1".into(), "203.0.113.8:9300".into()),
        Endpoint {
            target: remote_id(),
            interface: Interface::Transport,
            tls_names: vec!["remote-es-transport.ns2.svc".into()],
            ca_fingerprint: "remote-transport-ca".into(),
        },
    );
    world.trust.insert(
        (local_id(), Interface::Transport),
        vec!["local-transport-ca".into(), "remote-transport-ca".into()],
    );
    world.trust.insert(
        (remote_id(), Interface::Transport),
        vec!["remote-transport-ca".into(), "local-transport-ca".into()],
    );
    let mut local = node(local_id());
    let r = call(
        &mut local,
        &world,
        "PUT",
        "/_cluster/settings",
        Some(json!({"persistent":{"cluster.remote.r1.mode":"proxy",
            "cluster.remote.r1.proxy_address":"203.0.113.8:9300",
            "cluster.remote.r1.server_name":"not-in-the-cert"}})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    (local, world)
}

fn remote_mut(w: &mut FakeWorld) -> &mut ElasticsearchNode {
    w.nodes.get_mut(&remote_id()).unwrap()
}

#[test]
fn api_key_model_all_ingredients_connects() {
    let (mut local, world) = api_key_setup();
    assert_eq!(
        local.diagnose("r1", &world),
        Ok(Connection {
            target: remote_id(),
            remote_nodes: 1
        })
    );
    let info = local.remote_info(&world);
    assert_eq!(
        info,
        json!({"r1":{"connected":true,"mode":"proxy","proxy_address":"203.0.113.7:9443",
            "server_name":RCS_NAME,"num_proxy_sockets_connected":18,"max_proxy_socket_connections":18,
            "initial_connect_timeout":"30s","skip_unavailable":true,"cluster_credentials":"::es_redacted::"}})
    );
    let keys: Vec<&String> = info["r1"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "connected",
            "mode",
            "proxy_address",
            "server_name",
            "num_proxy_sockets_connected",
            "max_proxy_socket_connections",
            "initial_connect_timeout",
            "skip_unavailable",
            "cluster_credentials"
        ]
    );
}

#[test]
fn api_key_model_unresolvable_address() {
    let (mut local, mut world) = api_key_setup();
    world.endpoints.clear();
    assert_eq!(
        local.diagnose("r1", &world),
        Err(NotConnectedReason::Unresolvable {
            address: "203.0.113.7:9443".into()
        })
    );
    let info = local.remote_info(&world);
    assert_eq!(info["r1"]["connected"], false);
    assert_eq!(info["r1"]["num_proxy_sockets_connected"], 0);
}

#[test]
fn api_key_model_needs_the_remote_cluster_server_interface() {
    let (local, mut world) = api_key_setup();
    for ep in world.endpoints.values_mut() {
        ep.interface = Interface::Transport;
    }
    assert!(matches!(
        local.diagnose("r1", &world),
        Err(NotConnectedReason::WrongInterface {
            expected: Interface::RemoteClusterServer,
            found: Interface::Transport,
            ..
        })
    ));
}

#[test]
fn api_key_model_needs_the_remote_ca_trusted_by_the_client() {
    let (local, mut world) = api_key_setup();
    // Trusting it for transport only is not enough.
    world.trust.insert(
        (local_id(), Interface::RemoteClusterServer),
        vec!["local-transport-ca".into()],
    );
    world.trust.insert(
        (local_id(), Interface::Transport),
        vec!["remote-transport-ca".into()],
    );
    assert!(matches!(
        local.diagnose("r1", &world),
        Err(NotConnectedReason::UntrustedCertificate { .. })
    ));
}

#[test]
fn api_key_model_checks_server_name_against_the_certificate() {
    let (mut local, world) = api_key_setup();
    call(
        &mut local,
        &world,
        "PUT",
        "/_cluster/settings",
        Some(json!({"persistent":{"cluster.remote.r1.server_name":"lb.example.com"}})),
    );
    assert!(matches!(
        local.diagnose("r1", &world),
        Err(NotConnectedReason::HostnameMismatch { ref name, .. }) if name == "lb.example.com"
    ));
    // Without server_name the address host (an IP not in the cert) is checked.
    call(
        &mut local,
        &world,
        "PUT",
        "/_cluster/settings",
        Some(json!({"persistent":{"cluster.remote.r1.server_name":null}})),
    );
    assert!(matches!(
        local.diagnose("r1", &world),
        Err(NotConnectedReason::HostnameMismatch { ref name, .. }) if name == "203.0.113.7"
    ));
}

#[test]
fn a_server_name_the_certificate_lacks_falls_back_to_the_address_host() {
    let (mut local, mut world) = api_key_setup();
    // The address host is one of the certificate's names; server_name is not.
    let ep = world
        .endpoints
        .remove(&("k1".to_string(), "203.0.113.7:9443".to_string()))
        .unwrap();
    world
        .endpoints
        .insert(("k1".into(), format!("{RCS_NAME}:9443")), ep);
    call(
        &mut local,
        &world,
        "PUT",
        "/_cluster/settings",
        Some(
            json!({"persistent":{"cluster.remote.r1.proxy_address":format!("{RCS_NAME}:9443"),
            "cluster.remote.r1.server_name":"lb.example.com"}}),
        ),
    );
    assert!(
        local.diagnose("r1", &world).is_ok(),
        "the JDK checks the SNI name, then the peer host: {:?}",
        local.diagnose("r1", &world).err()
    );
}

#[test]
fn keystore_credentials_are_used_verbatim() {
    let (mut local, world) = api_key_setup();
    let encoded = local.keystore["cluster.remote.r1.credentials"].clone();
    local.keystore.insert(
        "cluster.remote.r1.credentials".into(),
        format!("{encoded}\n"),
    );
    assert!(matches!(
        local.diagnose("r1", &world),
        Err(NotConnectedReason::MalformedCredentials { .. })
    ));
    local
        .keystore
        .insert("cluster.remote.r1.credentials".into(), encoded);
    assert!(local.diagnose("r1", &world).is_ok());
}

#[test]
fn api_key_model_needs_an_active_cross_cluster_key() {
    let (local, mut world) = api_key_setup();
    let id = remote_mut(&mut world).api_keys()[0].id.clone();
    let r = call(
        remote_mut(&mut world),
        &NoRemotes,
        "DELETE",
        "/_security/api_key",
        Some(json!({"ids":[id]})),
    );
    assert_eq!(r.body["invalidated_api_keys"], json!([id]));
    assert_eq!(
        local.diagnose("r1", &world),
        Err(NotConnectedReason::ApiKeyInvalidated { id })
    );
}

#[test]
fn api_key_model_expired_key() {
    let (mut local, mut world) = api_key_setup();
    let created = call(
        remote_mut(&mut world),
        &NoRemotes,
        "POST",
        "/_security/cross_cluster/api_key",
        Some(json!({"name":"short","expiration":"1h","access":{"search":[{"names":["x"]}]}})),
    );
    local.keystore.insert(
        "cluster.remote.r1.credentials".into(),
        created.body["encoded"].as_str().unwrap().into(),
    );
    assert!(local.diagnose("r1", &world).is_ok());
    world.now = i64::MAX / 2;
    assert!(matches!(
        local.diagnose("r1", &world),
        Err(NotConnectedReason::ApiKeyExpired { .. })
    ));
}

#[test]
fn api_key_model_unknown_malformed_and_rest_keys() {
    let (mut local, mut world) = api_key_setup();
    let set = |local: &mut ElasticsearchNode, v: String| {
        local
            .keystore
            .insert("cluster.remote.r1.credentials".into(), v);
    };
    set(&mut local, "not base64!".into());
    assert_eq!(
        local.diagnose("r1", &world),
        Err(NotConnectedReason::MalformedCredentials { alias: "r1".into() })
    );
    let (id, _) = decode_credentials(&remote_mut(&mut world).api_keys()[0].encoded()).unwrap();
    set(
        &mut local,
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:wrong")),
    );
    assert_eq!(
        local.diagnose("r1", &world),
        Err(NotConnectedReason::UnknownApiKey { id })
    );
    let rest = call(
        remote_mut(&mut world),
        &NoRemotes,
        "POST",
        "/_security/api_key",
        Some(json!({"name":"rest"})),
    );
    set(&mut local, rest.body["encoded"].as_str().unwrap().into());
    assert!(matches!(
        local.diagnose("r1", &world),
        Err(NotConnectedReason::NotCrossClusterKey { .. })
    ));
}

#[test]
fn remote_not_running_or_incompatible() {
    let (local, mut world) = api_key_setup();
    remote_mut(&mut world).version = EsVersion::parse("7.10.0").unwrap();
    assert!(matches!(
        local.diagnose("r1", &world),
        Err(NotConnectedReason::IncompatibleVersion { .. })
    ));
    world.nodes.clear();
    assert!(matches!(
        local.diagnose("r1", &world),
        Err(NotConnectedReason::RemoteUnavailable { .. })
    ));
}

#[test]
fn certificate_model_all_ingredients_connects_without_hostname_check() {
    let (mut local, world) = cert_setup();
    assert!(local.diagnose("r1", &world).is_ok());
    let info = local.remote_info(&world);
    assert_eq!(info["r1"]["connected"], true);
    assert!(info["r1"].get("cluster_credentials").is_none());
}

#[test]
fn certificate_model_needs_transport_interface_and_mutual_trust() {
    let (local, mut world) = cert_setup();
    world.trust.insert(
        (remote_id(), Interface::Transport),
        vec!["remote-transport-ca".into()],
    );
    assert_eq!(
        local.diagnose("r1", &world),
        Err(NotConnectedReason::RemoteDoesNotTrustLocal {
            address: "203.0.113.8:9300".into(),
            local_ca_fingerprint: "local-transport-ca".into()
        })
    );
    let (local, mut world) = cert_setup();
    world.trust.insert(
        (local_id(), Interface::Transport),
        vec!["local-transport-ca".into()],
    );
    assert!(matches!(
        local.diagnose("r1", &world),
        Err(NotConnectedReason::UntrustedCertificate { .. })
    ));
    let (local, mut world) = cert_setup();
    for ep in world.endpoints.values_mut() {
        ep.interface = Interface::RemoteClusterServer;
    }
    assert!(matches!(
        local.diagnose("r1", &world),
        Err(NotConnectedReason::WrongInterface {
            expected: Interface::Transport,
            ..
        })
    ));
}

#[test]
fn subject_patterns_are_wildcards_over_the_whole_name() {
    let name = "instance-0000000001.node.0123abcd.cluster.42.account";
    for (pattern, expected) in [
        ("*.node.0123abcd.cluster.42.account", true),
        ("*.node.*.cluster.42.account", true),
        ("*", true),
        ("instance-000000000?.node.*.account", true),
        ("*.node.0123abcd.cluster.43.account", false),
        ("*.NODE.0123abcd.cluster.42.account", false),
        ("*.node.0123abcd.cluster.42", false),
        ("node.0123abcd.cluster.42.account", false),
        ("instance-?.node.*", false),
        ("/instance-.*/", false),
        ("", false),
    ] {
        assert_eq!(
            subject_name_matches(pattern, name),
            expected,
            "{pattern} against {name}"
        );
    }
    assert!(subject_name_matches("a\\*b", "a*b"));
    assert!(!subject_name_matches("a\\*b", "axxb"));
    assert!(subject_name_matches(
        "**.es.local",
        "p-0.node.e.ns.es.local"
    ));
    assert!(subject_name_matches(
        "*.es.local*",
        "p-0.node.e.ns.es.local"
    ));
}

#[test]
fn trust_restrictions_need_a_match_in_every_group() {
    let none = TrustRestrictions::default();
    assert!(!none.is_restricted());
    assert!(none.accepts("anything"));
    let two = TrustRestrictions {
        groups: vec![
            vec![
                "*.node.a.ns.es.local".into(),
                "*.node.x.cluster.1.account".into(),
            ],
            vec!["*.node.x.cluster.1.account".into()],
        ],
    };
    assert!(two.is_restricted());
    assert!(two.accepts("instance-0000000000.node.x.cluster.1.account"));
    assert!(!two.accepts("a-es-default-0.node.a.ns.es.local"));
    let nobody = TrustRestrictions {
        groups: vec![vec![]],
    };
    assert!(!nobody.accepts("a-es-default-0.node.a.ns.es.local"));
}

#[test]
fn certificate_model_trust_restrictions_apply_both_ways() {
    // The local restricts: the remote's node names must match.
    let (local, mut world) = cert_setup();
    world.restrictions.insert(
        local_id(),
        TrustRestrictions {
            groups: vec![vec!["*.node.other.ns2.es.local".into()]],
        },
    );
    let err = local.diagnose("r1", &world).unwrap_err();
    assert_eq!(
        err,
        NotConnectedReason::TrustRestricted {
            address: "203.0.113.8:9300".into(),
            rejected_by: local_id(),
            node_name: "remote-es-default-0.node.remote.ns2.es.local".into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "the transport connection through [203.0.113.8:9300] is refused: [k1/ns1/local] does not accept the certificate of node [remote-es-default-0.node.remote.ns2.es.local], whose name matches none of its trust restrictions"
    );
    world.restrictions.insert(
        local_id(),
        TrustRestrictions {
            groups: vec![vec!["*.node.remote.ns2.es.local".into()]],
        },
    );
    assert!(local.diagnose("r1", &world).is_ok());

    // The remote restricts: the local's node names must match; every remote node counts.
    world.restrictions.insert(
        remote_id(),
        TrustRestrictions {
            groups: vec![vec!["*.node.remote.ns2.es.local".into()]],
        },
    );
    assert_eq!(
        local.diagnose("r1", &world),
        Err(NotConnectedReason::TrustRestricted {
            address: "203.0.113.8:9300".into(),
            rejected_by: remote_id(),
            node_name: "local-es-default-0.node.local.ns1.es.local".into(),
        })
    );
    world.restrictions.insert(
        remote_id(),
        TrustRestrictions {
            groups: vec![vec!["*.es.local".into()]],
        },
    );
    assert!(local.diagnose("r1", &world).is_ok());
    remote_mut(&mut world)
        .transport_node_names
        .push("stranger".into());
    assert!(matches!(
        local.diagnose("r1", &world),
        Err(NotConnectedReason::TrustRestricted { node_name, .. }) if node_name == "stranger"
    ));

    // The CA comes first: an untrusted remote CA is reported as such.
    let (local, mut world) = cert_setup();
    world.trust.insert(
        (remote_id(), Interface::Transport),
        vec!["remote-transport-ca".into()],
    );
    world.restrictions.insert(
        remote_id(),
        TrustRestrictions {
            groups: vec![vec![]],
        },
    );
    assert!(matches!(
        local.diagnose("r1", &world),
        Err(NotConnectedReason::RemoteDoesNotTrustLocal { .. })
    ));
}

#[test]
fn restrictions_do_not_apply_to_the_api_key_model() {
    let (local, mut world) = api_key_setup();
    world.restrictions.insert(
        remote_id(),
        TrustRestrictions {
            groups: vec![vec![]],
        },
    );
    assert!(local.diagnose("r1", &world).is_ok());
}

#[test]
fn without_a_master_only_the_root_answers() {
    let mut n = node(local_id());
    n.formation = ClusterFormation::NoMaster {
        reason: "test".into(),
    };
    let r = call(&mut n, &NoRemotes, "GET", "/", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["cluster_uuid"], "_na_");
    for (method, uri) in [
        ("GET", "/_cluster/settings"),
        ("GET", "/_remote/info"),
        ("GET", "/_security/api_key"),
    ] {
        let r = call(&mut n, &NoRemotes, method, uri, None);
        assert_eq!(
            (r.status, r.body),
            (
                503,
                json!({"error":{"root_cause":[{"type":"master_not_discovered_exception","reason":null}],"type":"master_not_discovered_exception","reason":null},"status":503})
            ),
            "{method} {uri}"
        );
    }
    let r = n.handle(
        &EsRequest::new("GET", "/_cluster/settings").basic("elastic", "nope"),
        &NoRemotes,
    );
    assert_eq!(r.status, 401, "file-realm authentication needs no master");
}

/// Same-Kubernetes ECK link in sniff mode: seeds and publish addresses.
fn sniff_setup() -> (ElasticsearchNode, FakeWorld) {
    let (mut local, mut world) = cert_setup();
    let pods = ["remote-es-default-0", "remote-es-default-1"];
    let publish: Vec<String> = pods
        .iter()
        .map(|p| format!("{p}.remote-es-default.ns2.svc:9300"))
        .collect();
    {
        let r = remote_mut(&mut world);
        r.set_nodes(&pods.map(String::from));
        r.publish_addresses.transport = publish.clone();
    }
    for addr in publish
        .iter()
        .chain(["remote-es-transport.ns2.svc:9300".to_string()].iter())
    {
        world.endpoints.insert(
            ("k1".into(), addr.clone()),
            Endpoint {
                target: remote_id(),
                interface: Interface::Transport,
                tls_names: vec![],
                ca_fingerprint: "remote-transport-ca".into(),
            },
        );
    }
    let r = call(
        &mut local,
        &world,
        "PUT",
        "/_cluster/settings",
        Some(json!({"persistent":{"cluster.remote.r1.*":null,
            "cluster.remote.r2.seeds":["nowhere:9300","remote-es-transport.ns2.svc:9300"]}})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    (local, world)
}

#[test]
fn sniff_mode_tries_every_seed_and_reaches_publish_addresses() {
    let (mut local, world) = sniff_setup();
    assert_eq!(
        local.diagnose("r2", &world),
        Ok(Connection {
            target: remote_id(),
            remote_nodes: 2
        })
    );
    let info = local.remote_info(&world);
    assert_eq!(
        info,
        json!({"r2":{"connected":true,"mode":"sniff","seeds":["nowhere:9300","remote-es-transport.ns2.svc:9300"],
            "num_nodes_connected":2,"max_connections_per_cluster":3,"initial_connect_timeout":"30s",
            "skip_unavailable":true}})
    );
}

#[test]
fn sniff_mode_fails_when_publish_addresses_are_unreachable() {
    let (local, mut world) = sniff_setup();
    world
        .endpoints
        .retain(|(_, a), _| !a.starts_with("remote-es-default-"));
    assert_eq!(
        local.diagnose("r2", &world),
        Err(NotConnectedReason::Unresolvable {
            address: "nowhere:9300".into()
        })
    );
    // The first seed's reason is reported; with only the good seed the publish check shows.
    let mut local = local;
    call(
        &mut local,
        &world,
        "PUT",
        "/_cluster/settings",
        Some(
            json!({"persistent":{"cluster.remote.r2.seeds":["remote-es-transport.ns2.svc:9300"]}}),
        ),
    );
    assert!(matches!(
        local.diagnose("r2", &world),
        Err(NotConnectedReason::PublishAddressUnreachable { .. })
    ));
}

#[test]
fn self_link_uses_the_node_itself() {
    let mut world = FakeWorld::default();
    world.endpoints.insert(
        ("k1".into(), "local-es-transport.ns1.svc:9300".into()),
        Endpoint {
            target: local_id(),
            interface: Interface::Transport,
            tls_names: vec![],
            ca_fingerprint: "local-transport-ca".into(),
        },
    );
    world.trust.insert(
        (local_id(), Interface::Transport),
        vec!["local-transport-ca".into()],
    );
    let mut local = node(local_id());
    call(
        &mut local,
        &world,
        "PUT",
        "/_cluster/settings",
        Some(json!({"persistent":{"cluster.remote.me.seeds":["local-es-transport.ns1.svc:9300"]}})),
    );
    assert!(local.diagnose("me", &world).is_ok());
}

#[test]
fn remote_info_is_empty_without_remotes_and_skips_disabled_aliases() {
    let mut n = node(local_id());
    let r = call(&mut n, &NoRemotes, "GET", "/_remote/info", None);
    assert_eq!((r.status, r.body), (200, json!({})));
    call(
        &mut n,
        &NoRemotes,
        "PUT",
        "/_cluster/settings",
        Some(json!({"persistent":{"cluster.remote.a.mode":"proxy"}})),
    );
    let r = call(&mut n, &NoRemotes, "GET", "/_remote/info", None);
    assert_eq!(r.body, json!({}));
}

#[test]
fn transient_settings_win_in_remote_info_and_skip_default_follows_version() {
    let mut n = node(local_id());
    n.version = EsVersion::parse("8.14.3").unwrap();
    let r = call(
        &mut n,
        &NoRemotes,
        "PUT",
        "/_cluster/settings",
        Some(json!({"persistent":{"cluster.remote.a.seeds":["p:1"]},
                    "transient":{"cluster.remote.a.seeds":["t:1"]}})),
    );
    assert_eq!(
        r.body,
        json!({"acknowledged":true,
            "persistent":{"cluster":{"remote":{"a":{"seeds":["p:1"]}}}},
            "transient":{"cluster":{"remote":{"a":{"seeds":["t:1"]}}}}})
    );
    let info = call(&mut n, &NoRemotes, "GET", "/_remote/info", None).body;
    assert_eq!(info["a"]["seeds"], json!(["t:1"]));
    assert_eq!(info["a"]["skip_unavailable"], false);
    assert_eq!(info["a"]["connected"], false);
    assert_eq!(info["a"]["num_nodes_connected"], 0);
}

#[test]
fn root_and_unknown_routes() {
    let mut n = node(local_id());
    let r = call(&mut n, &NoRemotes, "GET", "/", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["cluster_name"], "local");
    assert_eq!(r.body["name"], "local-es-default-0");
    assert_eq!(r.body["version"]["number"], "8.15.0");
    assert_eq!(r.body["tagline"], "You Know, for Search");
    assert_eq!(r.header_values("X-elastic-product"), ["Elasticsearch"]);
    let r = call(&mut n, &NoRemotes, "GET", "/_nope", None);
    assert_eq!(
        (r.status, r.body),
        (
            400,
            json!({"error":"no handler found for uri [/_nope] and method [GET]","status":400})
        )
    );
    let r = call(&mut n, &NoRemotes, "POST", "/_remote/info", None);
    assert_eq!(r.status, 405);
    assert_eq!(
        r.body["error"],
        "Incorrect HTTP method for uri [/_remote/info] and method [POST], allowed: [GET]"
    );
    let r = call(&mut n, &NoRemotes, "GET", "/_remote/info?bogus=1", None);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["error"]["reason"],
        "request [/_remote/info] contains unrecognized parameter: [bogus]"
    );
    let r = n.handle(
        &EsRequest::new("HEAD", "/").basic("elastic", PW),
        &NoRemotes,
    );
    assert_eq!((r.status, r.body), (200, Value::Null));
}

#[test]
fn missing_and_wrong_credentials_are_401_with_challenges() {
    let mut n = node(local_id());
    let r = n.handle(
        &EsRequest::new("GET", "/_cluster/settings?flat_settings=true"),
        &NoRemotes,
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        r.body["error"]["reason"],
        "missing authentication credentials for REST request [/_cluster/settings?flat_settings=true]"
    );
    assert_eq!(
        r.header_values("WWW-Authenticate"),
        [
            "Basic realm=\"security\", charset=\"UTF-8\"",
            "Bearer realm=\"security\"",
            "ApiKey"
        ]
    );
    assert_eq!(
        r.body["error"]["root_cause"][0]["type"],
        "security_exception"
    );
    assert_eq!(r.body["error"]["header"]["WWW-Authenticate"][2], "ApiKey");
    let r = n.handle(
        &EsRequest::new("GET", "/").basic("elastic", "nope"),
        &NoRemotes,
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        r.body["error"]["reason"],
        "unable to authenticate user [elastic] for REST request [/]"
    );
    assert_eq!(r.body["status"], 401);
}

#[test]
fn api_key_authentication() {
    let mut n = node(local_id());
    let rest = call(
        &mut n,
        &NoRemotes,
        "POST",
        "/_security/api_key",
        Some(json!({"name":"r"})),
    );
    let rest_enc = rest.body["encoded"].as_str().unwrap().to_string();
    let cc = call(
        &mut n,
        &NoRemotes,
        "POST",
        "/_security/cross_cluster/api_key",
        Some(json!({"name":"c","access":{"replication":[{"names":["x"]}]}})),
    );
    let cc_enc = cc.body["encoded"].as_str().unwrap().to_string();
    // A REST key may read settings but may not create a cross-cluster key.
    let r = n.handle(
        &EsRequest::new("GET", "/_cluster/settings").api_key(&rest_enc),
        &NoRemotes,
    );
    assert_eq!(r.status, 200);
    let r = n.handle(
        &EsRequest::new("POST", "/_security/cross_cluster/api_key")
            .api_key(&rest_enc)
            .json(&json!({"name":"d","access":{"search":[{"names":["x"]}]}})),
        &NoRemotes,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["type"], "illegal_argument_exception");
    assert_eq!(
        r.body["error"]["reason"],
        "authentication via API key not supported: An API key cannot be used to create a cross-cluster API key"
    );
    // A cross-cluster key cannot authenticate REST requests.
    let r = n.handle(&EsRequest::new("GET", "/").api_key(&cc_enc), &NoRemotes);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.body["error"]["additional_unsuccessful_credentials"],
        format!(
            "API key: authentication expected API key type of [rest], but API key [{}] has type [cross_cluster]",
            cc.body["id"].as_str().unwrap()
        )
    );
    let r = n.handle(&EsRequest::new("GET", "/").api_key("!!"), &NoRemotes);
    assert_eq!(
        (
            r.status,
            &r.body["error"]["additional_unsuccessful_credentials"]
        ),
        (401, &json!("API key: invalid ApiKey value"))
    );
    let who = n.handle(
        &EsRequest::new("GET", "/_security/_authenticate").api_key(&rest_enc),
        &NoRemotes,
    );
    assert_eq!(who.body["authentication_type"], "api_key");
}

#[test]
fn cluster_settings_get_nested_and_flat() {
    let mut n = node(local_id());
    let r = call(
        &mut n,
        &NoRemotes,
        "PUT",
        "/_cluster/settings?flat_settings=true",
        Some(
            json!({"persistent":{"cluster":{"remote":{"a":{"seeds":["h:1"],"skip_unavailable":false}}}}}),
        ),
    );
    assert_eq!(
        r.body,
        json!({"acknowledged":true,"persistent":{"cluster.remote.a.seeds":["h:1"],
            "cluster.remote.a.skip_unavailable":"false"},"transient":{}})
    );
    let r = call(&mut n, &NoRemotes, "GET", "/_cluster/settings", None);
    assert_eq!(
        r.body,
        json!({"persistent":{"cluster":{"remote":{"a":{"seeds":["h:1"],"skip_unavailable":"false"}}}},"transient":{}})
    );
    let r = call(
        &mut n,
        &NoRemotes,
        "GET",
        "/_cluster/settings?flat_settings&include_defaults=false",
        None,
    );
    assert_eq!(
        r.body["persistent"],
        json!({"cluster.remote.a.seeds":["h:1"],"cluster.remote.a.skip_unavailable":"false"})
    );
    let r = call(
        &mut n,
        &NoRemotes,
        "PUT",
        "/_cluster/settings",
        Some(json!({"persistent":{"cluster.remote.foo.bogus":1}})),
    );
    assert_eq!(
        r.body,
        json!({"error":{"root_cause":[{"type":"illegal_argument_exception",
            "reason":"persistent setting [cluster.remote.foo.bogus], not recognized"}],
            "type":"illegal_argument_exception",
            "reason":"persistent setting [cluster.remote.foo.bogus], not recognized"},"status":400})
    );
    let r = n.handle(
        &EsRequest::new("PUT", "/_cluster/settings").basic("elastic", PW),
        &NoRemotes,
    );
    assert_eq!(r.body["error"]["reason"], "request body is required");
    let mut req = EsRequest::new("PUT", "/_cluster/settings").basic("elastic", PW);
    req.body = b"{}".to_vec();
    req.content_type = Some("text/plain".into());
    assert_eq!(n.handle(&req, &NoRemotes).status, 406);
    req.content_type = Some("application/json".into());
    req.body = b"{not json".to_vec();
    let r = n.handle(&req, &NoRemotes);
    assert_eq!(
        (r.status, r.body["error"]["type"].clone()),
        (400, json!("x_content_parse_exception"))
    );
}

#[test]
fn reload_secure_settings_reads_the_pending_keystore() {
    let mut n = node(local_id());
    let world = FakeWorld {
        pending: Some(BTreeMap::from([(
            "cluster.remote.a.credentials".to_string(),
            "abc".to_string(),
        )])),
        ..FakeWorld::default()
    };
    let r = call(
        &mut n,
        &world,
        "POST",
        "/_nodes/reload_secure_settings",
        Some(json!({})),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["_nodes"],
        json!({"total":1,"successful":1,"failed":0})
    );
    assert_eq!(r.body["cluster_name"], "local");
    let nodes = r.body["nodes"].as_object().unwrap();
    assert_eq!(
        nodes.values().next().unwrap(),
        &json!({"name":"local-es-default-0"})
    );
    assert!(n.has_remote_credentials("a"));
    let r = call(
        &mut n,
        &world,
        "POST",
        "/_nodes/nomatch/reload_secure_settings",
        None,
    );
    assert_eq!(r.body["_nodes"]["total"], 0);
}

#[test]
fn query_decoding() {
    let req = EsRequest::new("GET", "/_security/api_key?name=kplug-%2A&active_only=true");
    assert_eq!(
        req.params(),
        [
            ("name".to_string(), "kplug-*".to_string()),
            ("active_only".to_string(), "true".to_string())
        ]
    );
    assert_eq!(percent_decode("a%2Cb+c%"), "a,b c%");
}

#[test]
fn versions() {
    let v = |s: &str| EsVersion::parse(s).unwrap();
    assert!(versions_compatible(v("8.15.0"), v("8.10.1")));
    assert!(versions_compatible(v("7.17.2"), v("8.1.0")));
    assert!(!versions_compatible(v("7.16.0"), v("8.1.0")));
    assert!(versions_compatible(v("8.18.0"), v("9.0.0")));
    assert!(!versions_compatible(v("8.18.0"), v("9.1.0")));
    assert!(versions_compatible(v("8.19.0"), v("9.2.0")));
    assert!(!versions_compatible(v("8.19.0"), v("10.0.0")));
    assert_eq!(v("9.1.0-SNAPSHOT").to_string(), "9.1.0");
}

/// `GET /_resolve/cluster/<alias>:*` (8.13+, `timeout` from 8.18): a connection attempt now;
/// a refused credential is `connected: true` with `error`, a transport failure
/// `connected: false` without; the remote's version when it answered.
#[test]
fn resolve_cluster_reports_connection_version_and_security_errors() {
    let (mut local, mut world) = api_key_setup();
    local.version = EsVersion::parse("8.18.0").unwrap();
    let r = call(
        &mut local,
        &world,
        "GET",
        "/_resolve/cluster/r1:*?timeout=5s",
        None,
    );
    assert_eq!(
        (r.status, r.body),
        (
            200,
            json!({"r1": {"connected": true, "skip_unavailable": true, "version": {
                "number": "8.15.0", "build_flavor": "default",
                "minimum_wire_compatibility_version": "7.17.0",
                "minimum_index_compatibility_version": "7.0.0"}}})
        )
    );
    let r = call(&mut local, &world, "GET", "/_resolve/cluster/nope:*", None);
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["type"], "no_such_remote_cluster_exception");
    assert_eq!(r.body["error"]["reason"], "no such remote cluster: [nope]");
    // A security error: the transport connection is up.
    let id = remote_mut(&mut world).api_keys()[0].id.clone();
    call(
        remote_mut(&mut world),
        &NoRemotes,
        "DELETE",
        "/_security/api_key",
        Some(json!({"ids": [id]})),
    );
    let r = call(&mut local, &world, "GET", "/_resolve/cluster/r1:*", None);
    assert_eq!(r.body["r1"]["connected"], true);
    let error = r.body["r1"]["error"].as_str().unwrap();
    assert!(error.contains(&id), "{error}");
    // Nothing answers: not connected, no error.
    world.endpoints.clear();
    let r = call(&mut local, &world, "GET", "/_resolve/cluster/r1:*", None);
    assert_eq!(
        r.body,
        json!({"r1": {"connected": false, "skip_unavailable": true}})
    );
    // Versions: no endpoint before 8.13, no `timeout` before 8.18.
    local.version = EsVersion::parse("8.17.0").unwrap();
    let r = call(
        &mut local,
        &world,
        "GET",
        "/_resolve/cluster/r1:*?timeout=5s",
        None,
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["error"]["reason"],
        "request [/_resolve/cluster/r1:*] contains unrecognized parameter: [timeout]"
    );
    local.version = EsVersion::parse("8.12.2").unwrap();
    let r = call(&mut local, &world, "GET", "/_resolve/cluster/r1:*", None);
    assert_eq!(
        (r.status, r.body),
        (
            400,
            json!({"error": "no handler found for uri [/_resolve/cluster/r1:*] and method [GET]", "status": 400})
        )
    );
}

#[test]
fn file_based_settings_are_reserved_and_refuse_api_writes() {
    let world = FakeWorld::default();
    let mut es = node(local_id());
    let before = call(
        &mut es,
        &world,
        "GET",
        "/_cluster/state/metadata?filter_path=metadata.reserved_state",
        None,
    );
    assert_eq!(before.status, 200, "{}", before.body);
    assert_eq!(before.body, json!({"metadata": {"reserved_state": {}}}));

    es.apply_file_settings(&json!({"cluster.remote.fleet.mode": "proxy",
        "cluster": {"remote": {"fleet": {"proxy_address": "fleet.example:9443"}}}}));
    let reserved = call(
        &mut es,
        &world,
        "GET",
        "/_cluster/state/metadata?filter_path=metadata.reserved_state",
        None,
    );
    assert_eq!(
        reserved.body,
        json!({"metadata": {"reserved_state": {"file_settings": {"version": 1,
            "handlers": {"cluster_settings": {"keys": [
                "cluster.remote.fleet.mode", "cluster.remote.fleet.proxy_address"]}},
            "errors": null}}}})
    );

    let refused = call(
        &mut es,
        &world,
        "PUT",
        "/_cluster/settings",
        Some(
            json!({"persistent": {"cluster.remote.fleet.proxy_address": null,
            "cluster.remote.fleet.mode": null, "cluster.remote.other.mode": "proxy"}}),
        ),
    );
    assert_eq!(refused.status, 400);
    assert_eq!(refused.body["error"]["type"], "illegal_argument_exception");
    assert_eq!(
        refused.body["error"]["reason"],
        "Failed to process request \
         [org.elasticsearch.action.admin.cluster.settings.ClusterUpdateSettingsRequest/unset] \
         with errors: [[cluster.remote.fleet.mode, cluster.remote.fleet.proxy_address] \
         set as read-only by [file_settings]]"
    );
    assert!(
        !es.persistent_settings()
            .contains_key("cluster.remote.other.mode"),
        "a refused request changes nothing"
    );

    let other = call(
        &mut es,
        &world,
        "PUT",
        "/_cluster/settings",
        Some(json!({"persistent": {"cluster.remote.other.mode": "proxy",
            "cluster.remote.other.proxy_address": "other.example:9443"}})),
    );
    assert_eq!(
        other.status, 200,
        "keys the file does not set stay writable: {}",
        other.body
    );

    es.apply_file_settings(&json!({"cluster.remote.fleet.mode": "proxy"}));
    assert!(
        !es.persistent_settings()
            .contains_key("cluster.remote.fleet.proxy_address"),
        "a key the file stops setting is removed"
    );
    let after = call(&mut es, &world, "GET", "/_cluster/state/metadata", None);
    assert_eq!(
        after.body["metadata"]["reserved_state"]["file_settings"]["handlers"]["cluster_settings"]["keys"],
        json!(["cluster.remote.fleet.mode"])
    );
}

/// Elasticsearch keeps a node's connection to an alias: a failed attempt stays failed until a
/// settings update, a restart or a cross-cluster request (`_resolve/cluster`, `_resolve/index`)
/// asks again; an open connection survives what only a new handshake checks.
#[test]
fn connections_are_kept_until_something_asks_again() {
    let (mut local, mut world) = api_key_setup();
    let trust = world
        .trust
        .remove(&(local_id(), Interface::RemoteClusterServer))
        .unwrap();
    local.restart_connections(&world);
    assert_eq!(local.remote_info(&world)["r1"]["connected"], false);

    world
        .trust
        .insert((local_id(), Interface::RemoteClusterServer), trust);
    assert_eq!(
        local.remote_info(&world)["r1"]["connected"],
        false,
        "no reconnection by itself"
    );
    let resolved = call(&mut local, &world, "GET", "/_resolve/index/r1:*", None);
    assert_eq!(resolved.status, 200, "{}", resolved.body);
    assert_eq!(local.remote_info(&world)["r1"]["connected"], true);

    // An open connection survives a CA no longer trusted; a new attempt (a settings update of
    // the alias makes one at once) does not.
    let trust = world
        .trust
        .remove(&(local_id(), Interface::RemoteClusterServer))
        .unwrap();
    assert_eq!(local.remote_info(&world)["r1"]["connected"], true);
    let resolved = call(&mut local, &world, "GET", "/_resolve/cluster/r1:*", None);
    assert_eq!(resolved.body["r1"]["connected"], true, "{}", resolved.body);
    let updated = call(
        &mut local,
        &world,
        "PUT",
        "/_cluster/settings",
        Some(json!({"persistent": {"cluster.remote.r1.skip_unavailable": false}})),
    );
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(local.remote_info(&world)["r1"]["connected"], false);
    world
        .trust
        .insert((local_id(), Interface::RemoteClusterServer), trust);
    let resolved = call(&mut local, &world, "GET", "/_resolve/cluster/r1:*", None);
    assert_eq!(resolved.body["r1"]["connected"], true, "{}", resolved.body);
    assert_eq!(local.remote_info(&world)["r1"]["connected"], true);

    // The remote going away closes the open connection.
    let endpoints = std::mem::take(&mut world.endpoints);
    assert_eq!(local.remote_info(&world)["r1"]["connected"], false);
    world.endpoints = endpoints;
    assert_eq!(
        local.remote_info(&world)["r1"]["connected"],
        false,
        "and it stays closed"
    );
    let failed = call(&mut local, &world, "GET", "/_resolve/index/r1:*", None);
    assert_eq!(failed.status, 200, "the remote is back: {}", failed.body);
    assert_eq!(local.remote_info(&world)["r1"]["connected"], true);
}
