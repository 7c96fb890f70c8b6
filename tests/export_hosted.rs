//! The certificate model with a deployment on Elastic Cloud Hosted: its regional transport CA is
//! trusted only for its node names (`trust.yml`), in both directions.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{World, stderr_of, stdout_of};
use remote_cluster_sandbox::elasticsearch::{EsRequest, NotConnectedReason};
use remote_cluster_sandbox::{ClusterConfig, EsSeed, ResourceKey, Sandbox};
use serde_json::{Value, json};

const ECK_PATTERN: &str = "*.node.products.search.es.local";

/// East runs `search/products` with two nodeSets and `search/orders`; `ech` and `stranger` are deployments of two
/// organisations in the same region, so one CA signs both.
fn world() -> World {
    let world = World::start(
        Sandbox::builder()
            .operator_delay(Duration::from_millis(50))
            .cluster(
                ClusterConfig::new("east")
                    .elasticsearch(EsSeed::new("search", "products", "9.1.0").nodes(1))
                    .elasticsearch(EsSeed::new("search", "orders", "9.1.0").nodes(1)),
            )
            .hosted_external_elasticsearch("ech", "9.1.0", "1075999151")
            .hosted_external_elasticsearch("stranger", "9.1.0", "2000000002"),
    );
    let east = world.sandbox.cluster("east");
    east.wait_idle(Duration::from_secs(30)).unwrap();
    east.merge_patch(
        &ResourceKey::ELASTICSEARCHES,
        Some("search"),
        "products",
        &json!({"spec": {"nodeSets": [
            {"name": "default", "count": 1, "config": {"node.store.allow_mmap": false}},
            {"name": "cold", "count": 1}
        ]}}),
        remote_cluster_sandbox::Sub::Main,
    )
    .unwrap();
    east.wait_idle(Duration::from_secs(30)).unwrap();
    east.clear_requests();
    world
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
    let mut args: Vec<String> = [
        "export",
        "products",
        "-n",
        "search",
        "--for",
        "eck-products",
        "--security",
        "certificate",
        "--yes",
        "--timeout",
        "60s",
        "--output-dir",
    ]
    .map(String::from)
    .to_vec();
    args.push(world.dir.path().join("handover").display().to_string());
    args.extend(["--ca-file".into(), ca.display().to_string()]);
    args.extend(["--trust-file".into(), trust.display().to_string()]);
    args
}

fn export(world: &World, ca: &Path, trust: &Path) -> std::process::Output {
    world
        .plugin()
        .args(export_args(world, ca, trust))
        .output()
        .unwrap()
}

fn products(world: &World) -> Value {
    world
        .sandbox
        .cluster("east")
        .get(&ResourceKey::ELASTICSEARCHES, Some("search"), "products")
        .unwrap()
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

    let output = export(&world, &ca, &trust);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("Left out \"*.node.*.cluster.search.es.local.account\""),
        "{stderr}"
    );
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
    let configmap = east
        .get(
            &ResourceKey::CONFIGMAPS,
            Some("search"),
            "products-remote-cluster-restricted-trust",
        )
        .unwrap();
    let trust_yml = configmap["data"]["trust.yml"].as_str().unwrap();
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

    east.clear_requests();
    world.ok(export_args(&world, &ca, &trust));
    assert_eq!(
        common::plugin_writes(&east),
        0,
        "a second export changes nothing"
    );

    world.ok([
        "unexport",
        "products",
        "-n",
        "search",
        "--for",
        "eck-products",
        "--yes",
        "--timeout",
        "60s",
    ]);
    world.settle(&["east"]);
    common::assert_same_objects(&before, &world.snapshot(&["east"]));
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
    let cases: [(&str, Vec<&str>, &str); 5] = [
        (
            "not YAML",
            [&certificate[..], &["--trust-file", "garbage.yml"]].concat(),
            "is not YAML",
        ),
        (
            "only the ECK entry",
            [&certificate[..], &["--trust-file", "eck-only.yml"]].concat(),
            "no node names to trust",
        ),
        (
            "a pattern that matches everything",
            [&certificate[..], &["--trust-subject", "*"]].concat(),
            "matches every node",
        ),
        (
            "the API-key model",
            vec!["--trust-subject", "*.node.x.cluster.1.account"],
            "use them with `export --security certificate`",
        ),
        (
            "no CA",
            vec![
                "--security",
                "certificate",
                "--trust-subject",
                "*.node.x.cluster.1.account",
            ],
            "needs the other side's transport CA: --ca-file",
        ),
    ];
    for (case, extra, message) in cases {
        let output = world
            .plugin()
            .current_dir(dir)
            .args([
                "export", "products", "-n", "search", "--for", "ech", "--yes",
            ])
            .args(&extra)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{case}: {}",
            stderr_of(&output)
        );
        assert!(
            stderr_of(&output).contains(message),
            "{case}: {}",
            stderr_of(&output)
        );
    }
    assert_eq!(common::plugin_writes(&east), 0);
}

#[test]
fn a_restriction_someone_else_set_is_left_alone() {
    let world = world();
    let east = world.sandbox.cluster("east");
    east.merge_patch(
        &ResourceKey::ELASTICSEARCHES,
        Some("search"),
        "products",
        &json!({"spec": {"nodeSets": [
            {"name": "default", "count": 1, "config": {"node.store.allow_mmap": false}},
            {"name": "cold", "count": 1, "config": {
                "xpack.security.transport.ssl.trust_restrictions.path": "/usr/share/elasticsearch/config/ours/trust.yml"
            }}
        ]}}),
        remote_cluster_sandbox::Sub::Main,
    )
    .unwrap();
    east.wait_idle(Duration::from_secs(30)).unwrap();
    east.clear_requests();
    let before = world.snapshot(&["east"]);
    let (ca, trust) = downloads(&world);
    let output = export(&world, &ca, &trust);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains("nodeSet \"cold\""),
        "{}",
        stderr_of(&output)
    );
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
    let link = |extra: &[&str]| {
        let mut command = world.plugin();
        command
            .args([
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
            ])
            .arg(&ca)
            .arg("--trust-file")
            .arg(&trust)
            .args(extra);
        command.output().unwrap()
    };
    let output = link(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
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
    let info = east.remote_info("search", "products");
    assert_eq!(info["ech-logs"]["connected"], true, "{info}");

    east.clear_requests();
    assert_eq!(link(&[]).status.code(), Some(0));
    assert_eq!(
        common::plugin_writes(&east),
        0,
        "a second link changes nothing"
    );

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
    world.settle(&["east"]);
    common::assert_same_objects(&before, &world.snapshot(&["east"]));
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
    let configmap = east
        .get(
            &ResourceKey::CONFIGMAPS,
            Some("search"),
            "products-remote-cluster-restricted-trust",
        )
        .unwrap();
    let trust_yml = configmap["data"]["trust.yml"].as_str().unwrap();
    assert!(
        trust_yml.contains("*.node.orders.search.es.local"),
        "{trust_yml}"
    );
    // The export run again finds the peer through ECK's CA copies: nothing to rewrite.
    east.clear_requests();
    world.ok(export_args(&world, &ca, &trust));
    assert_eq!(common::plugin_writes(&east), 0);
}
