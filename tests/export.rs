//! `export` and `unexport`: an ECK cluster prepared as the remote of a cluster outside
//! Kubernetes, with the handover written to files.

mod common;

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;

use common::{World, es, stderr_of, stdout_of};
use remote_cluster_sandbox::elasticsearch::EsRequest;
use serde_json::{Value, json};

/// `search/products` in east, settled; with an Elasticsearch outside Kubernetes, `selfmanaged`,
/// when `external`.
fn world(external: bool) -> World {
    let mut builder = common::east([es("search", "products")]);
    if external {
        builder = builder.external_elasticsearch("selfmanaged", "9.1.0");
    }
    World::settled(builder)
}

/// `export` of east/search/products for the remote-cluster alias `alias`, confirmed.
fn export(alias: &str) -> Vec<OsString> {
    common::products_for("export", alias, &[])
        .into_iter()
        .map(OsString::from)
        .collect()
}

/// The flags that let `export` configure `selfmanaged` through its REST API, with the password
/// and CA files they name written to the world's directory.
fn apply_to(world: &World) -> Vec<OsString> {
    let external = world.sandbox.external("selfmanaged");
    let dir = world.dir.path();
    std::fs::write(dir.join("http-ca.pem"), &external.ca_pem).unwrap();
    std::fs::write(dir.join("password"), &external.password).unwrap();
    vec![
        "--apply-to".into(),
        external.url.into(),
        "--apply-password-file".into(),
        dir.join("password").into(),
        "--apply-ca-file".into(),
        dir.join("http-ca.pem").into(),
    ]
}

/// `GET /_remote/info` of `selfmanaged`.
fn external_remote_info(world: &World) -> Value {
    let external = world.sandbox.external("selfmanaged");
    // Elasticsearch keeps a failed connection attempt until something asks again, as a search
    // or `_resolve/cluster` does.
    world.sandbox.external_request(
        "selfmanaged",
        &EsRequest::new("GET", "/_resolve/cluster/eck:*").basic("elastic", &external.password),
    );
    world
        .sandbox
        .external_request(
            "selfmanaged",
            &EsRequest::new("GET", "/_remote/info").basic("elastic", &external.password),
        )
        .body
}

fn exported_keys(world: &World) -> Vec<(String, bool)> {
    common::api_keys(
        &world.sandbox.cluster("east"),
        "search",
        "products",
        "kubectl-rc-export-",
    )
}

fn products(world: &World) -> Value {
    world.elasticsearch("east", "search", "products")
}

#[test]
fn export_writes_the_handover_and_unexport_undoes_it() {
    let world = world(false);
    let before = products(&world);
    let objects = world.snapshot(&["east"]);
    let dir = world.dir.path().join("handover");
    let mut args = export("eck-products");
    args.extend(["--search-indices".into(), "logs-*".into()]);
    args.extend(["--output-dir".into(), dir.clone().into()]);
    let output = world.ok(&args);
    assert!(world.plugin_writes(&["east"]) > 0);
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
    assert!(!key.is_empty());
    assert_eq!(key, key.trim(), "the key file is the key alone, no newline");
    assert!(!stdout.contains(&key) && !stderr_of(&output).contains(&key));
    assert!(
        std::fs::read_to_string(dir.join("ca.crt"))
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    let instructions = std::fs::read_to_string(dir.join("INSTRUCTIONS.md")).unwrap();
    assert!(
        instructions.contains(
            "elasticsearch-keystore add-file cluster.remote.eck-products.credentials api-key"
        ),
        "{instructions}"
    );
    assert!(
        instructions.contains("Add trusted environment"),
        "{instructions}"
    );

    let keys = exported_keys(&world);
    assert_eq!(keys.len(), 1);
    assert!(!keys[0].1, "the key is active");
    assert_eq!(
        products(&world)["spec"]["remoteClusterServer"]["enabled"],
        true
    );

    let unexported = world.ok(common::products_for(
        "unexport",
        "eck-products",
        &["--wait=false"],
    ));
    assert!(
        stderr_of(&unexported).contains("Invalidated the API key exported for \"eck-products\""),
        "{}",
        stderr_of(&unexported)
    );
    assert_eq!(
        exported_keys(&world),
        [(keys[0].0.clone(), true)],
        "invalidated by id"
    );
    let after = products(&world);
    assert_eq!(
        after["spec"]["remoteClusterServer"]["service"],
        before["spec"]["remoteClusterServer"]["service"].clone(),
        "the exposure is removed"
    );
    assert_eq!(
        after["metadata"]["annotations"].get("remote-cluster.kubectl-plugin.dev/incoming"),
        None
    );
    // The server stays on, recorded as the plugin's for a later `--disable-server`, and its
    // Service is no longer exposed; no other object is left.
    world.settle(&["east"]);
    let mut left = world.snapshot(&["east"]);
    let service = left
        .iter()
        .position(|(name, _)| name == "east/services/search/products-es-remote-cluster")
        .expect("the server's Service");
    assert_eq!(left.remove(service).1["spec"]["type"], "ClusterIP");
    let names =
        |objects: &[(String, Value)]| objects.iter().map(|o| o.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&left), names(&objects), "objects left or missing");
    let mut expected = before["spec"].clone();
    expected["remoteClusterServer"] = json!({"enabled": true});
    assert_eq!(after["spec"], expected);
    assert_eq!(
        after["metadata"]["annotations"]["remote-cluster.kubectl-plugin.dev/remote-cluster-server"],
        "enabled"
    );
}

#[test]
fn show_secrets_prints_the_key_on_stdout_only_when_asked() {
    let world = world(false);
    let dir = world.dir.path().join("h");
    let mut args = export("x");
    args.push("--show-secrets".into());
    args.extend(["--output-dir".into(), dir.clone().into()]);
    let output = world.ok(&args);
    let key = std::fs::read_to_string(dir.join("api-key")).unwrap();
    assert!(!key.trim().is_empty());
    assert!(stdout_of(&output).contains(&format!("api_key: {}", key.trim())));
    assert!(!stderr_of(&output).contains(key.trim()), "never on stderr");

    let mut args = export("x");
    args.extend(["-o".into(), "json".into()]);
    args.extend(["--output-dir".into(), dir.clone().into()]);
    let again = world.again(&["east"], &args, "exported for \"x\" before");
    common::assert_not_shown(key.trim(), &[&again]);
    let doc: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(doc["writes"], 0);
    assert_eq!(exported_keys(&world).len(), 1, "no second key");
}

#[test]
fn an_external_cluster_connects_once_the_handover_is_entered() {
    let world = world(true);
    let handover = world.dir.path().join("handover");
    let mut args = export("eck");
    args.extend(["--output-dir".into(), handover.clone().into()]);
    args.extend(apply_to(&world));
    let output = world.ok(&args);
    assert!(
        stderr_of(&output).contains("Set cluster.remote.eck on"),
        "{}",
        stderr_of(&output)
    );

    let before = external_remote_info(&world);
    assert_eq!(
        before["eck"]["mode"], "proxy",
        "the settings were set: {before}"
    );
    assert_eq!(
        before["eck"]["connected"], false,
        "not yet: no key, no trust"
    );

    // The steps that need node access, as the instructions describe them: the key file goes
    // into the keystore byte for byte (`elasticsearch-keystore add-file`).
    let ca = std::fs::read_to_string(handover.join("ca.crt")).unwrap();
    let key = std::fs::read_to_string(handover.join("api-key")).unwrap();
    world
        .sandbox
        .external_admin(
            "selfmanaged",
            Some(&ca),
            &[("cluster.remote.eck.credentials", &key)],
        )
        .unwrap();
    let after = external_remote_info(&world);
    assert_eq!(after["eck"]["connected"], true, "{after}");
}

#[test]
fn an_unreachable_apply_to_url_changes_nothing() {
    let world = world(false);
    let password = world.dir.path().join("password");
    std::fs::write(&password, "x").unwrap();
    world.clear_requests(&["east"]);
    let mut args = export("eck");
    args.extend([
        "--apply-to".into(),
        "https://127.0.0.1:1".into(),
        "--apply-password-file".into(),
        password.into(),
    ]);
    world.refused(&args, "https://127.0.0.1:1");
    assert_eq!(world.write_count(&["east"]), 0);
    assert!(exported_keys(&world).is_empty());
}

#[test]
fn certificate_export_connects_an_external_cluster_and_unexport_restores() {
    let world = world(true);
    let before = products(&world);
    let objects = world.snapshot(&["east"]);
    let external = world.sandbox.external("selfmanaged");
    let dir = world.dir.path();
    std::fs::write(dir.join("their-ca.pem"), &external.remote_cluster_ca_pem).unwrap();
    let handover = dir.join("handover");
    let mut args = export("eck");
    args.extend(["--security", "certificate", "--timeout", "60s", "--ca-file"].map(OsString::from));
    args.push(dir.join("their-ca.pem").into());
    args.extend(["--output-dir".into(), handover.clone().into()]);
    args.extend(apply_to(&world));
    let output = world.ok(&args);
    assert!(
        stdout_of(&output).contains(":9300"),
        "{}",
        stdout_of(&output)
    );
    assert!(
        !handover.join("api-key").exists(),
        "no key in the certificate model"
    );
    assert!(
        exported_keys(&world).is_empty(),
        "no key in the certificate model"
    );
    world.settle(&["east"]);

    assert_eq!(
        external_remote_info(&world)["eck"]["connected"],
        false,
        "not before it trusts our CA"
    );
    let ca = std::fs::read_to_string(handover.join("ca.crt")).unwrap();
    world
        .sandbox
        .external_admin("selfmanaged", Some(&ca), &[])
        .unwrap();
    let info = external_remote_info(&world);
    assert_eq!(info["eck"]["connected"], true, "{info}");

    let unexported = world.ok(common::products_for(
        "unexport",
        "eck",
        &["--timeout", "60s"],
    ));
    assert!(
        stderr_of(&unexported).contains("Removed the trust set up for \"eck\""),
        "{}",
        stderr_of(&unexported)
    );
    world.settle(&["east"]);
    let after = products(&world);
    assert_eq!(after["spec"], before["spec"]);
    world.assert_unchanged(&["east"], &objects);
    assert_eq!(
        external_remote_info(&world)["eck"]["connected"],
        false,
        "the trust is gone"
    );
}
