//! `link LOCAL --external ALIAS`: an ECK cluster to a cluster outside every kubeconfig context
//! (Elastic Cloud Hosted, ECE, self-managed), with a key and CA handed over as files.

mod common;

use std::path::{Path, PathBuf};

use common::{World, es, stderr_of, stdout_of};
use remote_cluster_sandbox::ResourceKey;
use remote_cluster_sandbox::elasticsearch::EsRequest;
use serde_json::json;

/// `search/catalog` in east, settled, and `cloud`, an Elasticsearch outside Kubernetes.
fn world() -> World {
    World::settled(common::east([es("search", "catalog")]).external_elasticsearch("cloud", "9.1.0"))
}

/// `link` of east/search/catalog to the external cluster `cloud`.
const LINK: [&str; 6] = ["link", "catalog", "-n", "search", "--external", "cloud"];

/// `unlink` of `cloud` from east/search/catalog, confirmed, waiting up to 60 s.
const UNLINK: [&str; 8] = [
    "unlink",
    "catalog",
    "cloud",
    "-n",
    "search",
    "--yes",
    "--timeout",
    "60s",
];

fn path(file: &Path) -> &str {
    file.to_str().unwrap()
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
    ca: PathBuf,
    key: PathBuf,
}

fn files(world: &World, key: &str) -> Files {
    let cloud = world.sandbox.external("cloud");
    let ca = world.dir.path().join("remote-ca.pem");
    std::fs::write(&ca, &cloud.remote_cluster_ca_pem).unwrap();
    let key_file = world.dir.path().join("key.txt");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    Files { ca, key: key_file }
}

fn link_args<'a>(address: &'a str, files: &'a Files) -> Vec<&'a str> {
    [
        &LINK[..],
        &[
            "--proxy-address",
            address,
            "--yes",
            "--timeout",
            "60s",
            "--ca-file",
            path(&files.ca),
            "--api-key-file",
            path(&files.key),
        ],
    ]
    .concat()
}

/// The flags that let the plugin use `cloud`'s REST API, with the password and CA files they
/// name written to the world's directory.
fn remote_api(world: &World) -> Vec<String> {
    let cloud = world.sandbox.external("cloud");
    let dir = world.dir.path();
    std::fs::write(dir.join("http-ca.pem"), &cloud.ca_pem).unwrap();
    std::fs::write(dir.join("password"), format!("{}\n", cloud.password)).unwrap();
    vec![
        "--remote-url".into(),
        cloud.url,
        "--remote-password-file".into(),
        path(&dir.join("password")).into(),
        "--remote-ca-file".into(),
        path(&dir.join("http-ca.pem")).into(),
    ]
}

#[test]
fn links_to_an_external_cluster_until_connected_and_unlinks() {
    let world = world();
    let east = world.sandbox.cluster("east");
    let key = key_made_on_the_remote(&world);
    let files = files(&world, &key);
    let address = world.sandbox.external("cloud").remote_cluster_address;
    let before = world.elasticsearch("east", "search", "catalog");
    let objects = world.snapshot(&["east"]);

    let link = world.ok(link_args(&address, &files));
    assert!(
        stderr_of(&link).contains("Remote cluster \"cloud\" is connected."),
        "{}",
        stderr_of(&link)
    );
    let info = east.remote_info("search", "catalog");
    assert_eq!(info["cloud"]["connected"], true, "{info}");
    assert_eq!(info["cloud"]["proxy_address"], address);

    let again = world.again(&["east"], link_args(&address, &files), "already linked");

    let unlink = world.ok(UNLINK);
    assert!(
        stderr_of(&unlink).contains("left on the remote: the cross-cluster API key"),
        "{}",
        stderr_of(&unlink)
    );
    world.settle(&["east"]);
    let after = world.elasticsearch("east", "search", "catalog");
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
    world.assert_unchanged(&["east"], &objects);

    common::assert_not_shown(&key, &[&link, &again, &unlink]);
}

#[test]
fn bad_files_and_addresses_are_refused_without_a_write() {
    let world = world();
    let east = world.sandbox.cluster("east");
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
            "not HOST:PORT",
        ),
    ];
    east.clear_requests();
    for (files, address, expected) in &cases {
        world.refused(link_args(address, files), expected);
    }
    assert_eq!(east.requests().iter().filter(|r| r.is_write()).count(), 0);
    // The files and address are required.
    world.refused(LINK, "required");
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
    let objects = world.snapshot(&["east"]);
    let cloud = world.sandbox.external("cloud");
    let rcs_ca = world.dir.path().join("rcs-ca.pem");
    std::fs::write(&rcs_ca, &cloud.remote_cluster_ca_pem).unwrap();
    let remote_api = remote_api(&world);
    let remote_api: Vec<&str> = remote_api.iter().map(String::as_str).collect();
    let link = [
        &LINK[..],
        &[
            "--proxy-address",
            &cloud.remote_cluster_address,
            "--ca-file",
            path(&rcs_ca),
        ],
        &remote_api,
        &["--search-indices", "logs-*", "--yes", "--timeout", "60s"],
    ]
    .concat();
    let linked = world.ok(&link);
    assert_eq!(
        east.remote_info("search", "catalog")["cloud"]["connected"],
        true
    );
    let keys = plugin_keys(&world);
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(!keys[0].1);

    let again = world.again(&["east"], &link, "already linked");
    assert_eq!(
        plugin_keys(&world).len(),
        1,
        "the stored key is reused, no second key"
    );

    let output = world.ok([&UNLINK[..], &remote_api].concat());
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
    world.assert_unchanged(&["east"], &objects);
    assert!(east.remote_info("search", "catalog").get("cloud").is_none());
    common::assert_not_shown(&cloud.password, &[&linked, &output, &again]);
}

#[test]
fn an_unreachable_remote_url_is_refused_without_a_write() {
    let world = world();
    let east = world.sandbox.cluster("east");
    let cloud = world.sandbox.external("cloud");
    let dir = world.dir.path();
    let (ca, password) = (dir.join("rcs-ca.pem"), dir.join("password"));
    std::fs::write(&ca, &cloud.remote_cluster_ca_pem).unwrap();
    std::fs::write(&password, &cloud.password).unwrap();
    east.clear_requests();
    let args = [
        &LINK[..],
        &[
            "--proxy-address",
            &cloud.remote_cluster_address,
            "--ca-file",
            path(&ca),
            "--remote-url",
            "https://127.0.0.1:1",
            "--remote-password-file",
            path(&password),
            "--yes",
        ],
    ]
    .concat();
    world.refused(args, "cannot use the remote's API at https://127.0.0.1:1");
    assert_eq!(east.requests().iter().filter(|r| r.is_write()).count(), 0);
    assert!(plugin_keys(&world).is_empty());

    // A password in the URL would be echoed and stored in the link record: refused, unshown.
    let with_password = cloud.url.replacen(
        "https://",
        &format!("https://elastic:{}@", cloud.password),
        1,
    );
    let args = [
        &LINK[..],
        &[
            "--proxy-address",
            &cloud.remote_cluster_address,
            "--ca-file",
            path(&ca),
            "--remote-url",
            &with_password,
            "--remote-password-file",
            path(&password),
            "--yes",
        ],
    ]
    .concat();
    let output = world.refused(args, "the URL holds credentials");
    common::assert_not_shown(&cloud.password, &[&output]);
    assert!(plugin_keys(&world).is_empty());
}

/// `--public-ca` (Elastic Cloud Hosted): Elasticsearch trusts public CAs on the remote cluster
/// client only while no CA list is set there, so the remote's root goes into the plugin's
/// bundle, read from the verified TLS handshake of `--remote-url`; a later private-CA link
/// then keeps it trusted.
#[test]
fn a_publicly_trusted_remote_gets_its_root_into_the_bundle() {
    let world = World::settled(
        common::east([es("search", "catalog")])
            .external_elasticsearch_with_public_ca("cloud", "9.1.0")
            .external_elasticsearch("private", "9.1.0"),
    );
    let east = world.sandbox.cluster("east");
    let before = world.elasticsearch("east", "search", "catalog");
    let objects = world.snapshot(&["east"]);
    let cloud = world.sandbox.external("cloud");
    let key = key_made_on_the_remote(&world);
    let key_file = world.dir.path().join("key.txt");
    std::fs::write(&key_file, &key).unwrap();
    let address = cloud.remote_cluster_address.clone();
    let base: Vec<String> = [
        &LINK[..],
        &[
            "--proxy-address",
            &address,
            "--yes",
            "--timeout",
            "60s",
            "--public-ca",
        ],
    ]
    .concat()
    .into_iter()
    .map(String::from)
    .collect();

    // Nothing to read the root from: refused, with the reason and what to pass.
    let mut alone = base.clone();
    alone.extend(["--api-key-file".into(), path(&key_file).into()]);
    world.refused(
        &alone,
        "pass the remote's root CA with --ca-file, or --remote-url",
    );

    // With --remote-url, the CA above its certificate in the verified handshake.
    let mut with_url = base.clone();
    with_url.extend(remote_api(&world));
    let link = world.ok(&with_url);
    let stderr = stderr_of(&link);
    assert!(stderr.contains("Trusting the CA sha256:"), "{stderr}");
    let bundle = east
        .get(
            &ResourceKey::CONFIGMAPS,
            Some("search"),
            "catalog-remote-cluster-cas",
        )
        .expect("the CA bundle");
    let body = |pem: &str| {
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>()
    };
    assert!(
        body(bundle["data"]["ca.crt"].as_str().unwrap())
            .contains(&body(&cloud.remote_cluster_ca_pem)),
        "{bundle}"
    );
    assert_eq!(
        east.remote_info("search", "catalog")["cloud"]["connected"],
        true
    );

    // A private-CA link after it: both stay trusted.
    let private = world.sandbox.external("private");
    let created = world.sandbox.external_request(
        "private",
        &EsRequest::new("POST", "/_security/cross_cluster/api_key")
            .basic("elastic", &private.password)
            .json(&json!({"name": "for-eck", "access": {"search": [{"names": ["*"]}]}})),
    );
    let private_key = world.dir.path().join("private-key.txt");
    std::fs::write(&private_key, created.body["encoded"].as_str().unwrap()).unwrap();
    let private_ca = world.dir.path().join("private-ca.pem");
    std::fs::write(&private_ca, &private.remote_cluster_ca_pem).unwrap();
    let linked = world.ok([
        "link",
        "catalog",
        "-n",
        "search",
        "--external",
        "private",
        "--proxy-address",
        &private.remote_cluster_address,
        "--yes",
        "--timeout",
        "60s",
        "--ca-file",
        path(&private_ca),
        "--api-key-file",
        path(&private_key),
    ]);
    assert!(
        !stderr_of(&linked).contains("stops trusting"),
        "nothing is cut off: {}",
        stderr_of(&linked)
    );
    world.settle(&["east"]);
    let info = east.remote_info("search", "catalog");
    assert_eq!(info["cloud"]["connected"], true, "{info}");
    assert_eq!(info["private"]["connected"], true, "{info}");

    for alias in ["private", "cloud"] {
        world.ok([
            "unlink",
            "catalog",
            alias,
            "-n",
            "search",
            "--yes",
            "--timeout",
            "60s",
        ]);
    }
    let after = world.elasticsearch("east", "search", "catalog");
    assert_eq!(after["spec"], before["spec"]);
    world.assert_unchanged(&["east"], &objects);

    world.refused(
        [
            &LINK[..],
            &[
                "--proxy-address",
                &address,
                "--yes",
                "--api-key-file",
                path(&key_file),
            ],
        ]
        .concat(),
        "--public-ca",
    );
}

#[test]
fn certificate_model_to_an_external_cluster_connects_once_it_trusts_our_ca() {
    let world = world();
    let east = world.sandbox.cluster("east");
    let cloud = world.sandbox.external("cloud");
    let ca = world.dir.path().join("remote-transport-ca.pem");
    std::fs::write(&ca, &cloud.remote_cluster_ca_pem).unwrap();
    let before = world.elasticsearch("east", "search", "catalog");
    let objects = world.snapshot(&["east"]);
    let link = world.ok([
        &LINK[..],
        &[
            "--security",
            "certificate",
            "--proxy-address",
            &cloud.transport_address,
            "--yes",
            "--timeout",
            "60s",
            "--ca-file",
            path(&ca),
        ],
    ]
    .concat());
    let our_ca = stdout_of(&link);
    assert!(
        our_ca.starts_with("-----BEGIN CERTIFICATE-----"),
        "{our_ca}"
    );
    world.settle(&["east"]);
    assert_eq!(
        east.remote_info("search", "catalog")["cloud"]["connected"],
        false,
        "not before the remote trusts our CA"
    );
    world
        .sandbox
        .external_admin("cloud", Some(&our_ca), &[])
        .unwrap();
    // The failed attempt stays until something asks again: `describe` does, through
    // `_resolve/cluster`.
    world.ok(["describe", "catalog", "-n", "search", "--context", "east"]);
    let info = east.remote_info("search", "catalog");
    assert_eq!(info["cloud"]["connected"], true, "{info}");
    assert!(info["cloud"].get("cluster_credentials").is_none());

    world.ok(UNLINK);
    world.settle(&["east"]);
    let after = world.elasticsearch("east", "search", "catalog");
    assert_eq!(after["spec"], before["spec"]);
    assert!(east.remote_info("search", "catalog").get("cloud").is_none());
    world.assert_unchanged(&["east"], &objects);
}

#[test]
fn every_certificate_of_a_ca_bundle_reaches_the_local_cluster() {
    let world = world();
    let east = world.sandbox.cluster("east");
    let key = key_made_on_the_remote(&world);
    let files = files(&world, &key);
    // A rotation bundle: the CA the remote moves to, then the one it uses now.
    let next_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let next = params.self_signed(&next_key).unwrap();
    let current = std::fs::read_to_string(&files.ca).unwrap();
    std::fs::write(&files.ca, format!("{}{current}", next.pem())).unwrap();
    let address = world.sandbox.external("cloud").remote_cluster_address;
    let mut args = link_args(&address, &files);
    args.push("--wait=false");
    world.ok(args);
    let bundle = east
        .get(
            &ResourceKey::CONFIGMAPS,
            Some("search"),
            "catalog-remote-cluster-cas",
        )
        .expect("the CA bundle ConfigMap");
    let text = bundle["data"]["ca.crt"].as_str().unwrap();
    assert_eq!(
        text.matches("-----BEGIN CERTIFICATE-----").count(),
        2,
        "{text}"
    );
}

#[test]
fn a_spec_write_that_would_name_a_missing_or_empty_ca_file_is_refused_without_a_write() {
    let world = World::settled(
        common::east([es("search", "catalog"), es("search", "products")])
            .external_elasticsearch("cloud", "9.1.0"),
    );
    let east = world.sandbox.cluster("east");
    let key = key_made_on_the_remote(&world);
    let files = files(&world, &key);
    let address = world.sandbox.external("cloud").remote_cluster_address;
    world.ok(link_args(&address, &files));
    world.settle(&["east"]);
    let cas = "catalog-remote-cluster-cas";
    let same_operator_link = [
        "link",
        "catalog",
        "products",
        "-n",
        "search",
        "--yes",
        "--timeout",
        "60s",
    ];

    // Someone empties the bundle the nodes mount: a restart would stop them.
    east.merge_patch(
        &ResourceKey::CONFIGMAPS,
        Some("search"),
        cas,
        &json!({"data": {"ca.crt": ""}}),
        remote_cluster_sandbox::Sub::Main,
    )
    .unwrap();
    let refused = world.refused(same_operator_link, "holds no certificate");
    let stderr = stderr_of(&refused);
    let message = stderr.trim().lines().last().unwrap();
    assert!(
        message.starts_with("error: Elasticsearch search/catalog: ")
            && message.contains(cas)
            && message.contains("then re-run"),
        "one line that says what to do: {stderr}"
    );
    // (`refused` checks that the plugin wrote nothing.)

    // Someone deletes it: the pods would not even start.
    east.delete(&ResourceKey::CONFIGMAPS, Some("search"), cas)
        .unwrap();
    world.refused(same_operator_link, "which does not exist");
    let catalog = world.elasticsearch("east", "search", "catalog");
    assert_eq!(catalog["status"]["phase"], "Ready", "{}", catalog["status"]);

    // Unlinking takes the reference out, so it goes through.
    world.ok(UNLINK);
    world.settle(&["east"]);
    let catalog = world.elasticsearch("east", "search", "catalog");
    assert_eq!(catalog["status"]["phase"], "Ready", "{}", catalog["status"]);
    world.ok(same_operator_link);
}

/// The undo of an unlink would mount the CA bundle again, but someone deleted it meanwhile: the
/// undo leaves the spec as it is (and says so) rather than keep the pods from starting.
#[test]
fn an_undo_that_would_mount_a_deleted_bundle_is_left_undone() {
    let world = world();
    let east = world.sandbox.cluster("east");
    let key = key_made_on_the_remote(&world);
    let files = files(&world, &key);
    let address = world.sandbox.external("cloud").remote_cluster_address;
    world.ok(link_args(&address, &files));
    world.settle(&["east"]);
    east.delete(
        &ResourceKey::CONFIGMAPS,
        Some("search"),
        "catalog-remote-cluster-cas",
    )
    .unwrap();
    east.inject_fault(
        remote_cluster_sandbox::Fault::new(
            "DELETE",
            "/api/v1/namespaces/search/secrets/catalog-remote-cluster-credentials",
        )
        .status(500),
    );
    let output = world.plugin().args(UNLINK).output().unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("not taken back")
            && stderr.contains("\"catalog-remote-cluster-cas\"")
            && stderr.contains("which does not exist"),
        "{stderr}"
    );
    world.settle(&["east"]);
    let catalog = world.elasticsearch("east", "search", "catalog");
    assert!(
        catalog["spec"]["nodeSets"][0].get("podTemplate").is_none(),
        "the bundle is not mounted again: {}",
        catalog["spec"]
    );
    assert_eq!(catalog["status"]["phase"], "Ready", "{}", catalog["status"]);
}

/// The connection wait asks `_resolve/cluster`, which makes Elasticsearch attempt the
/// connection and names a security error: a key the remote invalidated ends the wait at
/// --timeout with Elasticsearch's reason, and the progress shows it while waiting.
#[test]
fn the_connection_wait_reports_the_error_resolve_cluster_gives() {
    let world = world();
    let key = key_made_on_the_remote(&world);
    let cloud = world.sandbox.external("cloud");
    let invalidated = world.sandbox.external_request(
        "cloud",
        &EsRequest::new("DELETE", "/_security/api_key")
            .basic("elastic", &cloud.password)
            .json(&json!({"name": "for-eck"})),
    );
    assert_eq!(invalidated.status, 200, "{}", invalidated.body);
    let files = files(&world, &key);
    let address = cloud.remote_cluster_address.clone();
    let mut args = link_args(&address, &files);
    let at = args.iter().position(|a| *a == "60s").unwrap();
    args[at] = "8s";

    let failed = world.run(1, &args);
    let stderr = stderr_of(&failed);
    assert!(
        stderr.contains("timed out waiting for remote cluster \"cloud\" to connect on search/catalog (context east) (Elasticsearch reports: "),
        "{stderr}"
    );
    assert!(stderr.contains("invalidated"), "{stderr}");
    assert!(
        stderr.contains(
            "Waiting for search/catalog (context east) to connect to remote cluster \"cloud\": "
        ),
        "{stderr}"
    );

    // `describe` asks `_resolve/cluster` too: the link is broken, with Elasticsearch's reason.
    let described = world
        .plugin()
        .args(["describe", "catalog", "-n", "search", "-o", "json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&described.stdout).unwrap();
    let link = &report["outgoing"][0];
    assert_eq!(link["alias"], "cloud", "{report}");
    assert_eq!(link["connected"], false, "{report}");
    let problem = link["problem"].as_str().unwrap();
    assert!(
        problem.starts_with("Elasticsearch reports: ") && problem.contains("invalidated"),
        "{problem}"
    );
    assert_ne!(described.status.code(), Some(0));
    common::assert_not_shown(&key, &[&failed, &described]);
}
