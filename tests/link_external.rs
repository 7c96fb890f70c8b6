//! `link LOCAL --external ALIAS`: an ECK cluster to a cluster outside every kubeconfig context
//! (Elastic Cloud Hosted, ECE, self-managed), with a key and CA handed over as files.

mod common;

use std::time::Duration;

use common::{World, stderr_of, stdout_of};
use remote_cluster_sandbox::elasticsearch::EsRequest;
use remote_cluster_sandbox::{ClusterConfig, EsSeed, ResourceKey, Sandbox};
use serde_json::json;

fn world() -> World {
    World::start(
        Sandbox::builder()
            .operator_delay(Duration::from_millis(50))
            .cluster(
                ClusterConfig::new("east")
                    .elasticsearch(EsSeed::new("search", "catalog", "9.1.0").nodes(1)),
            )
            .external_elasticsearch("cloud", "9.1.0"),
    )
}

/// A cross-cluster API key made on the external cluster, as its administrator would.
fn key_made_on_the_remote(world: &World) -> String {
    let cloud = world.sandbox.external("cloud");
    let response = world.sandbox.external_request(
        "cloud",
        &EsRequest::new("POST", "/_security/cross_cluster/api_key")
            .basic("elastic", &cloud.password)
            .json(&json!({"name": "for-eck", "access": {"search": [{"names": ["logs-*"]}]}})),
    );
    assert_eq!(response.status, 200, "{}", response.body);
    response.body["encoded"].as_str().unwrap().to_string()
}

struct Files {
    ca: std::path::PathBuf,
    key: std::path::PathBuf,
}

fn files(world: &World, key: &str) -> Files {
    let cloud = world.sandbox.external("cloud");
    let ca = world.dir.path().join("remote-ca.pem");
    std::fs::write(&ca, &cloud.remote_cluster_ca_pem).unwrap();
    let key_file = world.dir.path().join("key.txt");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    Files { ca, key: key_file }
}

fn link_args<'a>(address: &'a str, files: &'a Files) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = [
        "link",
        "catalog",
        "-n",
        "search",
        "--external",
        "cloud",
        "--proxy-address",
        address,
        "--yes",
        "--timeout",
        "60s",
        "--ca-file",
    ]
    .iter()
    .map(Into::into)
    .collect();
    args.push(files.ca.clone().into());
    args.push("--api-key-file".into());
    args.push(files.key.clone().into());
    args
}

#[test]
fn links_to_an_external_cluster_until_connected_and_unlinks() {
    let world = world();
    let east = world.sandbox.cluster("east");
    east.wait_idle(Duration::from_secs(30)).unwrap();
    let key = key_made_on_the_remote(&world);
    let files = files(&world, &key);
    let address = world.sandbox.external("cloud").remote_cluster_address;
    let before = east
        .get(&ResourceKey::ELASTICSEARCHES, Some("search"), "catalog")
        .unwrap();

    let link = world
        .plugin()
        .args(link_args(&address, &files))
        .output()
        .unwrap();
    assert_eq!(link.status.code(), Some(0), "{}", stderr_of(&link));
    assert!(stderr_of(&link).contains("Remote cluster \"cloud\" is connected."));
    let info = east.remote_info("search", "catalog");
    assert_eq!(info["cloud"]["connected"], true, "{info}");
    assert_eq!(info["cloud"]["proxy_address"], address);

    east.clear_requests();
    let again = world
        .plugin()
        .args(link_args(&address, &files))
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", stderr_of(&again));
    assert!(
        stderr_of(&again).contains("already linked"),
        "{}",
        stderr_of(&again)
    );
    assert_eq!(common::plugin_writes(&east), 0);

    let unlink = world.ok([
        "unlink",
        "catalog",
        "cloud",
        "-n",
        "search",
        "--yes",
        "--timeout",
        "60s",
    ]);
    assert!(
        stderr_of(&unlink).contains("left on the remote: the cross-cluster API key"),
        "{}",
        stderr_of(&unlink)
    );
    east.wait_idle(Duration::from_secs(30)).unwrap();
    let after = east
        .get(&ResourceKey::ELASTICSEARCHES, Some("search"), "catalog")
        .unwrap();
    assert_eq!(after["spec"], before["spec"]);
    assert!(
        east.get(
            &ResourceKey::SECRETS,
            Some("search"),
            "catalog-remote-cluster-credentials"
        )
        .is_none()
    );
    assert!(east.remote_info("search", "catalog").get("cloud").is_none());

    for out in [&link, &again, &unlink] {
        let text = format!("{}{}", stdout_of(out), stderr_of(out));
        assert!(!text.contains(&key), "the API key reached the output");
    }
}

#[test]
fn bad_files_and_addresses_are_refused_without_a_write() {
    let world = world();
    let east = world.sandbox.cluster("east");
    east.wait_idle(Duration::from_secs(30)).unwrap();
    let key = key_made_on_the_remote(&world);
    let good = files(&world, &key);
    let address = world.sandbox.external("cloud").remote_cluster_address;
    let not_a_cert = world.dir.path().join("not-a-cert.pem");
    std::fs::write(&not_a_cert, "hello").unwrap();
    let not_a_key = world.dir.path().join("not-a-key.txt");
    std::fs::write(&not_a_key, "definitely not a key").unwrap();
    let missing = world.dir.path().join("missing.pem");
    let cases: Vec<(Files, &str, &str)> = vec![
        (
            Files {
                ca: missing.clone(),
                key: good.key.clone(),
            },
            address.as_str(),
            "cannot be read",
        ),
        (
            Files {
                ca: not_a_cert.clone(),
                key: good.key.clone(),
            },
            address.as_str(),
            "is not a PEM certificate",
        ),
        (
            Files {
                ca: good.ca.clone(),
                key: not_a_key.clone(),
            },
            address.as_str(),
            "does not hold an encoded API key",
        ),
        (
            Files {
                ca: good.ca.clone(),
                key: good.key.clone(),
            },
            "cloud.external.invalid",
            "is not HOST:PORT",
        ),
    ];
    east.clear_requests();
    for (files, address, expected) in &cases {
        let output = world
            .plugin()
            .args(link_args(address, files))
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{expected}: {}",
            stderr_of(&output)
        );
        assert!(
            stderr_of(&output).contains(expected),
            "{expected}: {}",
            stderr_of(&output)
        );
    }
    assert_eq!(east.requests().iter().filter(|r| r.is_write()).count(), 0);
    let usage = world
        .plugin()
        .args(["link", "catalog", "-n", "search", "--external", "cloud"])
        .output()
        .unwrap();
    assert_eq!(
        usage.status.code(),
        Some(2),
        "the files and address are required"
    );
}

fn plugin_keys(world: &World) -> Vec<(String, bool)> {
    let cloud = world.sandbox.external("cloud");
    let response = world.sandbox.external_request(
        "cloud",
        &EsRequest::new("GET", "/_security/api_key?name=kubectl-rc-*")
            .basic("elastic", &cloud.password),
    );
    response.body["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap().to_string(),
                k["invalidated"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_plugin_creates_the_key_through_the_remote_url_and_invalidates_it_on_unlink() {
    let world = world();
    let east = world.sandbox.cluster("east");
    east.wait_idle(Duration::from_secs(30)).unwrap();
    let cloud = world.sandbox.external("cloud");
    let dir = world.dir.path();
    std::fs::write(dir.join("rcs-ca.pem"), &cloud.remote_cluster_ca_pem).unwrap();
    std::fs::write(dir.join("http-ca.pem"), &cloud.ca_pem).unwrap();
    std::fs::write(dir.join("password"), format!("{}\n", cloud.password)).unwrap();
    let link: Vec<std::ffi::OsString> = vec![
        "link".into(),
        "catalog".into(),
        "-n".into(),
        "search".into(),
        "--external".into(),
        "cloud".into(),
        "--proxy-address".into(),
        cloud.remote_cluster_address.clone().into(),
        "--ca-file".into(),
        dir.join("rcs-ca.pem").into(),
        "--remote-url".into(),
        cloud.url.clone().into(),
        "--remote-password-file".into(),
        dir.join("password").into(),
        "--remote-ca-file".into(),
        dir.join("http-ca.pem").into(),
        "--search-indices".into(),
        "logs-*".into(),
        "--yes".into(),
        "--timeout".into(),
        "60s".into(),
    ];
    world.ok(&link);
    assert_eq!(
        east.remote_info("search", "catalog")["cloud"]["connected"],
        true
    );
    let keys = plugin_keys(&world);
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(!keys[0].1);

    let again = world.ok(&link);
    assert!(
        stderr_of(&again).contains("already linked"),
        "{}",
        stderr_of(&again)
    );
    assert_eq!(
        plugin_keys(&world).len(),
        1,
        "the stored key is reused, no second key"
    );

    let unlink: Vec<std::ffi::OsString> = vec![
        "unlink".into(),
        "catalog".into(),
        "cloud".into(),
        "-n".into(),
        "search".into(),
        "--remote-url".into(),
        cloud.url.clone().into(),
        "--remote-password-file".into(),
        dir.join("password").into(),
        "--remote-ca-file".into(),
        dir.join("http-ca.pem").into(),
        "--yes".into(),
        "--timeout".into(),
        "60s".into(),
    ];
    let output = world.ok(&unlink);
    assert_eq!(
        plugin_keys(&world),
        [(keys[0].0.clone(), true)],
        "invalidated by id"
    );
    assert!(
        !stderr_of(&output).contains("left on the remote"),
        "{}",
        stderr_of(&output)
    );
    for out in [&output, &again] {
        assert!(
            !stdout_of(out).contains(&cloud.password) && !stderr_of(out).contains(&cloud.password)
        );
    }
}

#[test]
fn an_unreachable_remote_url_is_refused_without_a_write() {
    let world = world();
    let east = world.sandbox.cluster("east");
    east.wait_idle(Duration::from_secs(30)).unwrap();
    let cloud = world.sandbox.external("cloud");
    let dir = world.dir.path();
    std::fs::write(dir.join("rcs-ca.pem"), &cloud.remote_cluster_ca_pem).unwrap();
    std::fs::write(dir.join("password"), &cloud.password).unwrap();
    east.clear_requests();
    let output = world
        .plugin()
        .args([
            "link",
            "catalog",
            "-n",
            "search",
            "--external",
            "cloud",
            "--proxy-address",
        ])
        .arg(&cloud.remote_cluster_address)
        .arg("--ca-file")
        .arg(dir.join("rcs-ca.pem"))
        .args([
            "--remote-url",
            "https://127.0.0.1:1",
            "--remote-password-file",
        ])
        .arg(dir.join("password"))
        .arg("--yes")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains("cannot use the remote's API at https://127.0.0.1:1"),
        "{}",
        stderr_of(&output)
    );
    assert_eq!(east.requests().iter().filter(|r| r.is_write()).count(), 0);
    assert!(plugin_keys(&world).is_empty());
}

#[test]
fn a_publicly_trusted_remote_needs_no_ca_file() {
    let world = World::start(
        Sandbox::builder()
            .operator_delay(Duration::from_millis(50))
            .cluster(
                ClusterConfig::new("east")
                    .elasticsearch(EsSeed::new("search", "catalog", "9.1.0").nodes(1)),
            )
            .external_elasticsearch_with_public_ca("cloud", "9.1.0"),
    );
    let east = world.sandbox.cluster("east");
    east.wait_idle(Duration::from_secs(30)).unwrap();
    let before = east
        .get(&ResourceKey::ELASTICSEARCHES, Some("search"), "catalog")
        .unwrap();
    let key = key_made_on_the_remote(&world);
    let key_file = world.dir.path().join("key.txt");
    std::fs::write(&key_file, &key).unwrap();
    let address = world.sandbox.external("cloud").remote_cluster_address;
    let output = world
        .plugin()
        .args([
            "link",
            "catalog",
            "-n",
            "search",
            "--external",
            "cloud",
            "--public-ca",
            "--proxy-address",
            &address,
            "--yes",
            "--timeout",
            "60s",
            "--api-key-file",
        ])
        .arg(&key_file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(
        east.remote_info("search", "catalog")["cloud"]["connected"],
        true
    );
    assert!(
        east.get(
            &ResourceKey::CONFIGMAPS,
            Some("search"),
            "catalog-remote-cluster-cas"
        )
        .is_none(),
        "nothing to mount for a public CA"
    );
    let catalog = east
        .get(&ResourceKey::ELASTICSEARCHES, Some("search"), "catalog")
        .unwrap();
    assert_eq!(
        catalog["spec"]["nodeSets"][0]["config"]["xpack.security.remote_cluster_client.ssl.enabled"],
        true
    );
    assert!(catalog["spec"]["nodeSets"][0].get("podTemplate").is_none());

    world.ok([
        "unlink",
        "catalog",
        "cloud",
        "-n",
        "search",
        "--yes",
        "--timeout",
        "60s",
    ]);
    let after = east
        .get(&ResourceKey::ELASTICSEARCHES, Some("search"), "catalog")
        .unwrap();
    assert_eq!(after["spec"], before["spec"]);

    let missing = world
        .plugin()
        .args([
            "link",
            "catalog",
            "-n",
            "search",
            "--external",
            "cloud",
            "--proxy-address",
            &address,
            "--yes",
            "--api-key-file",
        ])
        .arg(&key_file)
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr_of(&missing).contains("--public-ca"),
        "{}",
        stderr_of(&missing)
    );
}

#[test]
fn certificate_model_to_an_external_cluster_connects_once_it_trusts_our_ca() {
    let world = world();
    let east = world.sandbox.cluster("east");
    east.wait_idle(Duration::from_secs(30)).unwrap();
    let cloud = world.sandbox.external("cloud");
    let ca = world.dir.path().join("remote-transport-ca.pem");
    std::fs::write(&ca, &cloud.remote_cluster_ca_pem).unwrap();
    let before = east
        .get(&ResourceKey::ELASTICSEARCHES, Some("search"), "catalog")
        .unwrap();
    let link = world
        .plugin()
        .args([
            "link",
            "catalog",
            "-n",
            "search",
            "--external",
            "cloud",
            "--security",
            "certificate",
            "--proxy-address",
            &cloud.transport_address,
            "--yes",
            "--timeout",
            "60s",
            "--ca-file",
        ])
        .arg(&ca)
        .output()
        .unwrap();
    assert_eq!(link.status.code(), Some(0), "{}", stderr_of(&link));
    let our_ca = stdout_of(&link);
    assert!(
        our_ca.starts_with("-----BEGIN CERTIFICATE-----"),
        "{our_ca}"
    );
    east.wait_idle(Duration::from_secs(30)).unwrap();
    assert_eq!(
        east.remote_info("search", "catalog")["cloud"]["connected"],
        false,
        "not before the remote trusts our CA"
    );
    world
        .sandbox
        .external_admin("cloud", Some(&our_ca), &[])
        .unwrap();
    let info = east.remote_info("search", "catalog");
    assert_eq!(info["cloud"]["connected"], true, "{info}");
    assert!(info["cloud"].get("cluster_credentials").is_none());

    world.ok([
        "unlink",
        "catalog",
        "cloud",
        "-n",
        "search",
        "--yes",
        "--timeout",
        "60s",
    ]);
    east.wait_idle(Duration::from_secs(30)).unwrap();
    let after = east
        .get(&ResourceKey::ELASTICSEARCHES, Some("search"), "catalog")
        .unwrap();
    assert_eq!(after["spec"], before["spec"]);
    assert!(east.remote_info("search", "catalog").get("cloud").is_none());
}
