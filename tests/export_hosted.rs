//! The certificate model with a deployment on Elastic Cloud Hosted: its regional transport CA is
//! trusted only for its node names (`trust.yml`), in both directions.

mod common;

use std::path::{Path, PathBuf};

use common::{World, es, stderr_of, stdout_of};
use remote_cluster_sandbox::ResourceKey;
use remote_cluster_sandbox::elasticsearch::{EsRequest, NotConnectedReason};
use serde_json::{Value, json};

const ECK_PATTERN: &str = "*.node.products.search.es.local";

/// What the plugin says of the entry for the ECK side in a `trust.yml` from Elastic Cloud Hosted.
const LEFT_OUT: &str = "Left out \"*.node.*.cluster.search.es.local.account\"";

/// East runs `search/products` with two nodeSets and `search/orders`; `ech` and `stranger` are deployments of two
/// organisations in the same region, so one CA signs both.
fn world() -> World {
    let world = World::settled(
        common::east([es("search", "products"), es("search", "orders")])
            .hosted_external_elasticsearch("ech", "9.1.0", "1075999151")
            .hosted_external_elasticsearch("stranger", "9.1.0", "2000000002"),
    );
    set_node_sets(&world, json!({"name": "cold", "count": 1}));
    world
}

/// Gives search/products the nodeSets `default` and `cold`, then settles.
fn set_node_sets(world: &World, cold: Value) {
    let east = world.sandbox.cluster("east");
    east.merge_patch(
        &ResourceKey::ELASTICSEARCHES,
        Some("search"),
        "products",
        &json!({"spec": {"nodeSets": [
            {"name": "default", "count": 1, "config": {"node.store.allow_mmap": false}},
            cold
        ]}}),
        remote_cluster_sandbox::Sub::Main,
    )
    .unwrap();
    world.settle(&["east"]);
    east.clear_requests();
}

/// The files Elastic Cloud Hosted lets you download: its CA and `trust.yml` (with the entry for
/// the ECK side that Elastic's guide says to replace).
fn downloads(world: &World) -> (PathBuf, PathBuf) {
    let ech = world.sandbox.external("ech");
    let dir = world.dir.path();
    std::fs::write(dir.join("ech-ca.crt"), &ech.transport_ca_pem).unwrap();
    std::fs::write(
        dir.join("trust.yml"),
        ech.hosted_trust_yml("search.es.local"),
    )
    .unwrap();
    (dir.join("ech-ca.crt"), dir.join("trust.yml"))
}

fn export_args(world: &World, ca: &Path, trust: &Path) -> Vec<String> {
    let handover = world.dir.path().join("handover");
    common::products_for(
        "export",
        "eck-products",
        &[
            "--security",
            "certificate",
            "--timeout",
            "60s",
            "--output-dir",
            handover.to_str().unwrap(),
            "--ca-file",
            ca.to_str().unwrap(),
            "--trust-file",
            trust.to_str().unwrap(),
        ],
    )
    .into_iter()
    .map(String::from)
    .collect()
}

fn products(world: &World) -> Value {
    world.elasticsearch("east", "search", "products")
}

/// The `trust.yml` the plugin keeps for search/products.
fn trust_yml(world: &World) -> String {
    let configmap = world
        .sandbox
        .cluster("east")
        .get(
            &ResourceKey::CONFIGMAPS,
            Some("search"),
            "products-remote-cluster-restricted-trust",
        )
        .expect("the restricted trust ConfigMap");
    configmap["data"]["trust.yml"].as_str().unwrap().to_string()
}

/// What a deployment's administrator does on Elastic Cloud Hosted: trust the ECK CA for the ECK
/// node names, then add the remote cluster in proxy mode.
fn connect_from(world: &World, deployment: &str, eck_ca: &str, address: &str) -> Value {
    world
        .sandbox
        .external_admin_trust_transport(deployment, eck_ca, &[ECK_PATTERN])
        .unwrap();
    let external = world.sandbox.external(deployment);
    let request = |method: &str, path: &str| {
        EsRequest::new(method, path).basic("elastic", &external.password)
    };
    let settings = json!({"persistent": {
        "cluster.remote.eck-products.mode": "proxy",
        "cluster.remote.eck-products.proxy_address": address,
    }});
    let put = world.sandbox.external_request(
        deployment,
        &request("PUT", "/_cluster/settings").json(&settings),
    );
    assert_eq!(put.status, 200, "{}", put.body);
    world
        .sandbox
        .external_request(deployment, &request("GET", "/_remote/info"))
        .body
}

#[test]
fn a_hosted_deployment_connects_through_restricted_trust_and_another_organisation_does_not() {
    let world = world();
    let east = world.sandbox.cluster("east");
    let before = world.snapshot(&["east"]);
    let (ca, trust) = downloads(&world);

    let output = world.ok(export_args(&world, &ca, &trust));
    let stderr = stderr_of(&output);
    assert!(stderr.contains(LEFT_OUT), "{stderr}");
    let stdout = stdout_of(&output);
    let address = stdout
        .lines()
        .find_map(|l| l.strip_prefix("proxy_address: "))
        .unwrap_or_else(|| panic!("{stdout}"))
        .to_string();
    assert!(address.ends_with(":9300"), "{address}");
    world.settle(&["east"]);
    let writes = common::plugin_writes(&east);

    // The cluster formed again after the restart: its own nodes are in trust.yml.
    let es = products(&world);
    assert_eq!(es["status"]["phase"], "Ready", "{}", es["status"]);
    assert_eq!(es["status"]["health"], "green", "{}", es["status"]);
    for node_set in es["spec"]["nodeSets"].as_array().unwrap() {
        assert_eq!(
            node_set["config"]["xpack.security.transport.ssl.trust_restrictions.path"],
            "/usr/share/elasticsearch/config/remote-cluster-restricted-trust/trust.yml",
            "every nodeSet: {node_set}"
        );
    }
    let trust_yml = trust_yml(&world);
    assert!(trust_yml.contains(ECK_PATTERN), "{trust_yml}");
    assert!(!trust_yml.contains("es.local.account"), "{trust_yml}");

    let ech_pattern = world.sandbox.external("ech").transport_subject_pattern;
    let described = stdout_of(&world.ok(["describe", "products", "-n", "search"]));
    assert!(
        described.contains(&format!("  eck-products: {ech_pattern}\n")),
        "{described}"
    );
    let report = world.json(["describe", "products", "-n", "search", "-o", "json"]);
    assert_eq!(
        report["trustRestriction"]["subjectNames"],
        json!([ECK_PATTERN, ech_pattern]),
        "{report}"
    );

    let instructions =
        std::fs::read_to_string(world.dir.path().join("handover/INSTRUCTIONS.md")).unwrap();
    assert!(
        instructions.contains("## Elastic Cloud Hosted or ECE")
            && instructions.contains(&format!("with the address `{address}`")),
        "{instructions}"
    );

    let eck_ca = std::fs::read_to_string(world.dir.path().join("handover/ca.crt")).unwrap();
    let info = connect_from(&world, "ech", &eck_ca, &address);
    assert_eq!(info["eck-products"]["connected"], true, "{info}");
    let info = connect_from(&world, "stranger", &eck_ca, &address);
    assert_eq!(
        info["eck-products"]["connected"], false,
        "signed by the same CA, but not a name ECK accepts: {info}"
    );
    let why = world
        .sandbox
        .external_diagnose("stranger", "eck-products")
        .unwrap_err();
    assert!(
        matches!(&why, NotConnectedReason::TrustRestricted { rejected_by, .. } if rejected_by.name == "products"),
        "{why}"
    );

    // A second export changes nothing (and says only what it leaves out of the trust file).
    let again = world.again(&["east"], export_args(&world, &ca, &trust), LEFT_OUT);
    assert!(
        stderr_of(&again).contains("already exported for \"eck-products\""),
        "{}",
        stderr_of(&again)
    );

    world.ok(common::products_for(
        "unexport",
        "eck-products",
        &["--timeout", "60s"],
    ));
    world.assert_unchanged(&["east"], &before);
    assert_eq!(products(&world)["status"]["phase"], "Ready");
    let ech = world.sandbox.external("ech");
    let info = world
        .sandbox
        .external_request(
            "ech",
            &EsRequest::new("GET", "/_remote/info").basic("elastic", &ech.password),
        )
        .body;
    assert_eq!(
        info["eck-products"]["connected"], false,
        "the trust is gone"
    );
    assert!(writes > 0);
}

#[test]
fn a_trust_file_that_cannot_restrict_is_refused_before_any_write() {
    let world = world();
    let east = world.sandbox.cluster("east");
    let (ca, _) = downloads(&world);
    let dir = world.dir.path();
    std::fs::write(dir.join("garbage.yml"), "trust.subject_name: [unclosed").unwrap();
    std::fs::write(
        dir.join("eck-only.yml"),
        "trust.subject_name:\n  - \"*.node.*.cluster.search.es.local.account\"\n",
    )
    .unwrap();
    let ca = ca.display().to_string();
    let certificate = ["--security", "certificate", "--ca-file", ca.as_str()];
    let cases: [(Vec<&str>, &str); 5] = [
        // Not YAML.
        (
            [&certificate[..], &["--trust-file", "garbage.yml"]].concat(),
            "is not YAML",
        ),
        // Only the ECK entry.
        (
            [&certificate[..], &["--trust-file", "eck-only.yml"]].concat(),
            "no node names to trust",
        ),
        // A pattern that matches everything.
        (
            [&certificate[..], &["--trust-subject", "*"]].concat(),
            "matches every node",
        ),
        // The API-key model.
        (
            vec!["--trust-subject", "*.node.x.cluster.1.account"],
            "use them with `export --security certificate`",
        ),
        // No CA.
        (
            vec![
                "--security",
                "certificate",
                "--trust-subject",
                "*.node.x.cluster.1.account",
            ],
            "needs the other side's transport CA: --ca-file",
        ),
    ];
    for (extra, message) in cases {
        let output = world
            .plugin()
            .current_dir(dir)
            .args(common::products_for("export", "ech", &extra))
            .output()
            .unwrap();
        common::assert_refused(&output, message);
    }
    assert_eq!(common::plugin_writes(&east), 0);
}

#[test]
fn a_restriction_someone_else_set_is_left_alone() {
    let world = world();
    let east = world.sandbox.cluster("east");
    set_node_sets(
        &world,
        json!({"name": "cold", "count": 1, "config": {
            "xpack.security.transport.ssl.trust_restrictions.path": "/usr/share/elasticsearch/config/ours/trust.yml"
        }}),
    );
    let before = world.snapshot(&["east"]);
    let (ca, trust) = downloads(&world);
    world.refused(export_args(&world, &ca, &trust), "nodeSet \"cold\"");
    assert_eq!(common::plugin_writes(&east), 0);
    common::assert_same_objects(&before, &world.snapshot(&["east"]));
}

#[test]
fn an_eck_cluster_links_to_a_hosted_deployment_with_restricted_trust_and_unlinks() {
    let world = world();
    let east = world.sandbox.cluster("east");
    let before = world.snapshot(&["east"]);
    let (ca, trust) = downloads(&world);
    let ech = world.sandbox.external("ech");
    let link = [
        "link",
        "products",
        "-n",
        "search",
        "--external",
        "ech-logs",
        "--security",
        "certificate",
        "--proxy-address",
        &ech.transport_address,
        "--yes",
        "--timeout",
        "60s",
        "--ca-file",
        ca.to_str().unwrap(),
        "--trust-file",
        trust.to_str().unwrap(),
    ];
    let output = world.ok(link);
    let eck_ca = stdout_of(&output);
    assert!(
        eck_ca.starts_with("-----BEGIN CERTIFICATE-----"),
        "{eck_ca}"
    );
    world.settle(&["east"]);
    let es = products(&world);
    assert_eq!(es["status"]["phase"], "Ready", "{}", es["status"]);
    assert_eq!(
        east.remote_info("search", "products")["ech-logs"]["connected"],
        false,
        "not before the deployment trusts this cluster"
    );
    world
        .sandbox
        .external_admin_trust_transport("ech", &eck_ca, &[ECK_PATTERN])
        .unwrap();
    // The failed attempt stays until something asks again: `describe` does, through
    // `_resolve/cluster`.
    let described = world.ok([
        "describe",
        "products",
        "-n",
        "search",
        "--context",
        "east",
        "-o",
        "json",
    ]);
    assert!(
        stdout_of(&described).contains("ech-logs"),
        "{}",
        stdout_of(&described)
    );
    let info = east.remote_info("search", "products");
    assert_eq!(info["ech-logs"]["connected"], true, "{info}");

    world.again(&["east"], link, "already linked");

    world.ok([
        "unlink",
        "products",
        "ech-logs",
        "-n",
        "search",
        "--yes",
        "--timeout",
        "60s",
    ]);
    world.assert_unchanged(&["east"], &before);
    assert_eq!(products(&world)["status"]["phase"], "Ready");
    assert!(east.remote_info("search", "products")["ech-logs"].is_null());
}

#[test]
fn a_certificate_link_made_after_the_restriction_lets_the_new_peer_in() {
    let world = world();
    let east = world.sandbox.cluster("east");
    let (ca, trust) = downloads(&world);
    world.ok(export_args(&world, &ca, &trust));
    world.settle(&["east"]);
    world.ok([
        "link",
        "orders",
        "products",
        "-n",
        "search",
        "--security",
        "certificate",
        "--yes",
        "--timeout",
        "60s",
    ]);
    world.settle(&["east"]);
    let info = east.remote_info("search", "orders");
    assert_eq!(info["products"]["connected"], true, "{info}");
    let trust_yml = trust_yml(&world);
    assert!(
        trust_yml.contains("*.node.orders.search.es.local"),
        "{trust_yml}"
    );
    // The export run again finds the peer through ECK's CA copies: nothing to rewrite.
    let again = world.again(&["east"], export_args(&world, &ca, &trust), LEFT_OUT);
    assert!(
        stderr_of(&again).contains("already exported for \"eck-products\""),
        "{}",
        stderr_of(&again)
    );
}

/// Sets `spec.transport.tls.otherNameSuffix` of `search/<name>`, then settles.
fn set_other_name_suffix(world: &World, name: &str, suffix: &str) {
    let east = world.sandbox.cluster("east");
    east.merge_patch(
        &ResourceKey::ELASTICSEARCHES,
        Some("search"),
        name,
        &json!({"spec": {"transport": {"tls": {"otherNameSuffix": suffix}}}}),
        remote_cluster_sandbox::Sub::Main,
    )
    .unwrap();
    world.settle(&["east"]);
    east.clear_requests();
}

#[test]
fn restricted_trust_follows_the_other_name_suffix_of_the_cluster_and_its_eck_peers() {
    let world = world();
    let east = world.sandbox.cluster("east");
    set_other_name_suffix(&world, "products", "products.transport.example.org");
    set_other_name_suffix(&world, "orders", "orders.transport.example.org");
    let (ca, trust) = downloads(&world);
    let output = world.ok(export_args(&world, &ca, &trust));
    let address = stdout_of(&output)
        .lines()
        .find_map(|l| l.strip_prefix("proxy_address: "))
        .unwrap()
        .to_string();
    world.settle(&["east"]);

    // Its two nodes accept each other's certificates, named after the suffix.
    let es = products(&world);
    assert_eq!(es["status"]["phase"], "Ready", "{}", es["status"]);
    assert_eq!(es["status"]["health"], "green", "{}", es["status"]);
    let trust_yml = trust_yml(&world);
    assert!(
        trust_yml.contains("\"*.products.transport.example.org\""),
        "{trust_yml}"
    );
    assert!(!trust_yml.contains(ECK_PATTERN), "{trust_yml}");

    // The hosted side trusts the suffixed names.
    let eck_ca = std::fs::read_to_string(world.dir.path().join("handover/ca.crt")).unwrap();
    world
        .sandbox
        .external_admin_trust_transport("ech", &eck_ca, &["*.products.transport.example.org"])
        .unwrap();
    let info = connect_from(&world, "ech", &eck_ca, &address);
    assert_eq!(info["eck-products"]["connected"], true, "{info}");

    // An ECK peer with a suffix of its own is let in under its own names.
    world.ok([
        "link",
        "orders",
        "products",
        "-n",
        "search",
        "--security",
        "certificate",
        "--yes",
        "--timeout",
        "60s",
    ]);
    world.settle(&["east"]);
    let trust_yml = self::trust_yml(&world);
    assert!(
        trust_yml.contains("\"*.orders.transport.example.org\""),
        "{trust_yml}"
    );
    assert!(
        !trust_yml.contains("*.node.orders.search.es.local"),
        "{trust_yml}"
    );
    let info = east.remote_info("search", "orders");
    assert_eq!(info["products"]["connected"], true, "{info}");
    assert_eq!(products(&world)["status"]["phase"], "Ready");
}
