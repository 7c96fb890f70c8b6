//! `export` and `unexport`: an ECK cluster prepared as the remote of a cluster outside
//! Kubernetes, with the handover written to files.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{World, stderr_of, stdout_of};
use remote_cluster_sandbox::{ClusterConfig, EsSeed, ResourceKey, Sandbox};
use serde_json::Value;

fn world() -> World {
    World::start(
        Sandbox::builder()
            .operator_delay(Duration::from_millis(50))
            .cluster(
                ClusterConfig::new("east")
                    .elasticsearch(EsSeed::new("search", "products", "9.1.0").nodes(1)),
            ),
    )
}

fn exported_keys(world: &World) -> Vec<(String, bool)> {
    common::api_keys(
        &world.sandbox.cluster("east"),
        "search",
        "products",
        "kubectl-rc-export-",
    )
}

#[test]
fn export_writes_the_handover_and_unexport_undoes_it() {
    let world = world();
    let east = world.sandbox.cluster("east");
    east.wait_idle(Duration::from_secs(30)).unwrap();
    let before = east
        .get(&ResourceKey::ELASTICSEARCHES, Some("search"), "products")
        .unwrap();
    let dir = world.dir.path().join("handover");
    let output = world
        .plugin()
        .args([
            "export",
            "products",
            "-n",
            "search",
            "--for",
            "eck-products",
            "--search-indices",
            "logs-*",
            "--yes",
            "--output-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    assert!(
        stdout.contains("proxy_address: products-es-remote-cluster"),
        "{stdout}"
    );
    assert!(stdout.contains(".invalid:9443"), "{stdout}");
    assert!(
        stdout.contains("server_name: products-es-remote-cluster.search.svc"),
        "{stdout}"
    );

    let key = std::fs::read_to_string(dir.join("api-key")).unwrap();
    let mode = std::fs::metadata(dir.join("api-key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the key file is readable by its owner only");
    assert!(!stdout.contains(key.trim()) && !stderr_of(&output).contains(key.trim()));
    assert!(
        std::fs::read_to_string(dir.join("ca.crt"))
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    let instructions = std::fs::read_to_string(dir.join("INSTRUCTIONS.md")).unwrap();
    assert!(
        instructions.contains("elasticsearch-keystore add cluster.remote.eck-products.credentials")
    );
    assert!(instructions.contains("Add trusted environment"));

    let keys = exported_keys(&world);
    assert_eq!(keys.len(), 1);
    assert!(!keys[0].1, "the key is active");
    let products = east
        .get(&ResourceKey::ELASTICSEARCHES, Some("search"), "products")
        .unwrap();
    assert_eq!(products["spec"]["remoteClusterServer"]["enabled"], true);

    world.ok([
        "unexport",
        "products",
        "-n",
        "search",
        "--for",
        "eck-products",
        "--yes",
        "--wait=false",
    ]);
    assert_eq!(
        exported_keys(&world),
        [(keys[0].0.clone(), true)],
        "invalidated by id"
    );
    let after = east
        .get(&ResourceKey::ELASTICSEARCHES, Some("search"), "products")
        .unwrap();
    assert_eq!(
        after["spec"]["remoteClusterServer"]["service"],
        before["spec"]["remoteClusterServer"]["service"].clone(),
        "the exposure is removed"
    );
    assert_eq!(
        after["metadata"]["annotations"].get("remote-cluster.kubectl-plugin.dev/incoming"),
        None
    );
}

#[test]
fn show_secrets_prints_the_key_on_stdout_only_when_asked() {
    let world = world();
    world
        .sandbox
        .cluster("east")
        .wait_idle(Duration::from_secs(30))
        .unwrap();
    let dir = world.dir.path().join("h");
    let output = world
        .plugin()
        .args([
            "export",
            "products",
            "-n",
            "search",
            "--for",
            "x",
            "--show-secrets",
            "--yes",
            "--output-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let key = std::fs::read_to_string(dir.join("api-key")).unwrap();
    assert!(stdout_of(&output).contains(&format!("api_key: {}", key.trim())));
    assert!(!stderr_of(&output).contains(key.trim()), "never on stderr");
    let again = world
        .plugin()
        .args([
            "export",
            "products",
            "-n",
            "search",
            "--for",
            "x",
            "--yes",
            "-o",
            "json",
            "--output-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", stderr_of(&again));
    assert!(
        stderr_of(&again).contains("exported for \"x\" before"),
        "{}",
        stderr_of(&again)
    );
    let doc: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(doc["writes"], 0);
    assert_eq!(exported_keys(&world).len(), 1, "no second key");
}

#[test]
fn an_external_cluster_connects_once_the_handover_is_entered() {
    let world = World::start(
        Sandbox::builder()
            .operator_delay(Duration::from_millis(50))
            .cluster(
                ClusterConfig::new("east")
                    .elasticsearch(EsSeed::new("search", "products", "9.1.0").nodes(1)),
            )
            .external_elasticsearch("selfmanaged", "9.1.0"),
    );
    world
        .sandbox
        .cluster("east")
        .wait_idle(Duration::from_secs(30))
        .unwrap();
    let external = world.sandbox.external("selfmanaged");
    let dir = world.dir.path();
    std::fs::write(dir.join("http-ca.pem"), &external.ca_pem).unwrap();
    std::fs::write(dir.join("password"), &external.password).unwrap();
    let handover = dir.join("handover");
    let output = world
        .plugin()
        .args([
            "export",
            "products",
            "-n",
            "search",
            "--for",
            "eck",
            "--yes",
            "--output-dir",
        ])
        .arg(&handover)
        .args(["--apply-to", &external.url, "--apply-password-file"])
        .arg(dir.join("password"))
        .arg("--apply-ca-file")
        .arg(dir.join("http-ca.pem"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains("Set cluster.remote.eck on"),
        "{}",
        stderr_of(&output)
    );

    let remote_info = || {
        world
            .sandbox
            .external_request(
                "selfmanaged",
                &remote_cluster_sandbox::elasticsearch::EsRequest::new("GET", "/_remote/info")
                    .basic("elastic", &external.password),
            )
            .body
    };
    let before = remote_info();
    assert_eq!(
        before["eck"]["mode"], "proxy",
        "the settings were set: {before}"
    );
    assert_eq!(
        before["eck"]["connected"], false,
        "not yet: no key, no trust"
    );

    // The steps that need node access, as the instructions describe them.
    let ca = std::fs::read_to_string(handover.join("ca.crt")).unwrap();
    let key = std::fs::read_to_string(handover.join("api-key")).unwrap();
    world
        .sandbox
        .external_admin(
            "selfmanaged",
            Some(&ca),
            &[("cluster.remote.eck.credentials", key.trim())],
        )
        .unwrap();
    let after = remote_info();
    assert_eq!(after["eck"]["connected"], true, "{after}");
}

#[test]
fn an_unreachable_apply_to_url_changes_nothing() {
    let world = world();
    world
        .sandbox
        .cluster("east")
        .wait_idle(Duration::from_secs(30))
        .unwrap();
    let password = world.dir.path().join("password");
    std::fs::write(&password, "x").unwrap();
    world.sandbox.cluster("east").clear_requests();
    let output = world
        .plugin()
        .args([
            "export", "products", "-n", "search", "--for", "eck", "--yes",
        ])
        .args(["--apply-to", "https://127.0.0.1:1", "--apply-password-file"])
        .arg(&password)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    let writes = world
        .sandbox
        .cluster("east")
        .requests()
        .iter()
        .filter(|r| r.is_write())
        .count();
    assert_eq!(writes, 0);
    assert!(exported_keys(&world).is_empty());
}

#[test]
fn certificate_export_connects_an_external_cluster_and_unexport_restores() {
    let world = World::start(
        Sandbox::builder()
            .operator_delay(Duration::from_millis(50))
            .cluster(
                ClusterConfig::new("east")
                    .elasticsearch(EsSeed::new("search", "products", "9.1.0").nodes(1)),
            )
            .external_elasticsearch("selfmanaged", "9.1.0"),
    );
    let east = world.sandbox.cluster("east");
    east.wait_idle(Duration::from_secs(30)).unwrap();
    let before = east
        .get(&ResourceKey::ELASTICSEARCHES, Some("search"), "products")
        .unwrap();
    let external = world.sandbox.external("selfmanaged");
    let dir = world.dir.path();
    std::fs::write(dir.join("their-ca.pem"), &external.remote_cluster_ca_pem).unwrap();
    std::fs::write(dir.join("http-ca.pem"), &external.ca_pem).unwrap();
    std::fs::write(dir.join("password"), &external.password).unwrap();
    let handover = dir.join("handover");
    let output = world
        .plugin()
        .args([
            "export",
            "products",
            "-n",
            "search",
            "--for",
            "eck",
            "--security",
            "certificate",
            "--yes",
            "--timeout",
            "60s",
            "--ca-file",
        ])
        .arg(dir.join("their-ca.pem"))
        .arg("--output-dir")
        .arg(&handover)
        .args(["--apply-to", &external.url, "--apply-password-file"])
        .arg(dir.join("password"))
        .arg("--apply-ca-file")
        .arg(dir.join("http-ca.pem"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert!(
        stdout_of(&output).contains(":9300"),
        "{}",
        stdout_of(&output)
    );
    assert!(
        !handover.join("api-key").exists(),
        "no key in the certificate model"
    );
    east.wait_idle(Duration::from_secs(30)).unwrap();

    let remote_info = || {
        world
            .sandbox
            .external_request(
                "selfmanaged",
                &remote_cluster_sandbox::elasticsearch::EsRequest::new("GET", "/_remote/info")
                    .basic("elastic", &external.password),
            )
            .body
    };
    assert_eq!(
        remote_info()["eck"]["connected"],
        false,
        "not before it trusts our CA"
    );
    let ca = std::fs::read_to_string(handover.join("ca.crt")).unwrap();
    world
        .sandbox
        .external_admin("selfmanaged", Some(&ca), &[])
        .unwrap();
    let info = remote_info();
    assert_eq!(info["eck"]["connected"], true, "{info}");

    world.ok([
        "unexport",
        "products",
        "-n",
        "search",
        "--for",
        "eck",
        "--yes",
        "--timeout",
        "60s",
    ]);
    east.wait_idle(Duration::from_secs(30)).unwrap();
    let after = east
        .get(&ResourceKey::ELASTICSEARCHES, Some("search"), "products")
        .unwrap();
    assert_eq!(after["spec"], before["spec"]);
    assert_eq!(
        remote_info()["eck"]["connected"],
        false,
        "the trust is gone"
    );
}
