//! Elasticsearch whose HTTP layer is not ECK's self-signed HTTPS: a user's certificate
//! (`spec.http.tls.certificate`) and plain HTTP (`selfSignedCertificate.disabled`), through the
//! real binary.

mod common;

use std::time::Duration;

use common::{World, es, stderr_of};
use remote_cluster_sandbox::pki::Ca;
use remote_cluster_sandbox::{ResourceKey, Sub};
use serde_json::{Value, json};

const BOTH: &[&str] = &["east", "west"];

fn patch_http(world: &World, cluster: &str, ns: &str, name: &str, http: Value) {
    world
        .sandbox
        .cluster(cluster)
        .merge_patch(
            &ResourceKey::ELASTICSEARCHES,
            Some(ns),
            name,
            &json!({"spec": {"http": http}}),
            Sub::Main,
        )
        .unwrap();
}

/// A Secret `ns/name` holding a certificate for `localhost` and 127.0.0.1 only (not the
/// `<es>-es-http.<ns>.svc` name), signed by a CA of the user's, with that CA as `ca.crt` when
/// `with_ca`.
fn user_certificate(world: &World, cluster: &str, ns: &str, name: &str, with_ca: bool) {
    let ca = Ca::new("user-http-ca").unwrap();
    let cert = ca.server_cert().unwrap();
    let mut data = json!({"tls.crt": cert.cert_pem, "tls.key": cert.key_pem});
    if with_ca {
        data["ca.crt"] = json!(ca.cert.cert_pem);
    }
    world
        .sandbox
        .cluster(cluster)
        .create(
            &ResourceKey::SECRETS,
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": name, "namespace": ns}, "stringData": data}),
        )
        .unwrap();
}

fn world() -> World {
    World::start(
        common::east_and_west([es("search", "catalog")], [es("shop", "products")])
            .operator_delay(Duration::from_millis(100)),
    )
}

fn link() -> Vec<&'static str> {
    common::east_to_west("link", "products", &["--yes", "--timeout", "90s"])
}

#[test]
fn a_link_reaches_a_user_certificate_and_plain_http() {
    let world = world();
    // The local serves a user's certificate whose names do not include the Service name; the
    // remote serves plain HTTP.
    user_certificate(&world, "east", "search", "catalog-http", true);
    patch_http(
        &world,
        "east",
        "search",
        "catalog",
        json!({"tls": {"certificate": {"secretName": "catalog-http"}}}),
    );
    patch_http(
        &world,
        "west",
        "shop",
        "products",
        json!({"tls": {"selfSignedCertificate": {"disabled": true}}}),
    );
    world.settle(BOTH);

    let output = world.ok(link());
    assert!(
        stderr_of(&output).contains("Remote cluster \"products\" is connected."),
        "{}",
        stderr_of(&output)
    );
    assert_eq!(
        world
            .sandbox
            .cluster("east")
            .remote_info("search", "catalog")["products"]["connected"],
        true
    );
    // The key was created through the remote's plain HTTP API.
    assert_eq!(world.active_plugin_keys("west", "shop", "products"), 1);

    let output = world.ok(["describe", "catalog", "-n", "search", "--context", "east"]);
    assert!(
        common::stdout_of(&output).contains("products"),
        "{}",
        common::stdout_of(&output)
    );
}

#[test]
fn a_user_certificate_without_its_ca_is_verified_against_public_roots_and_refused() {
    let world = world();
    user_certificate(&world, "east", "search", "catalog-http", false);
    patch_http(
        &world,
        "east",
        "search",
        "catalog",
        json!({"tls": {"certificate": {"secretName": "catalog-http"}}}),
    );
    world.settle(BOTH);
    let before = world.snapshot(BOTH);
    world.clear_requests(BOTH);

    // A private CA is no public root: the connection is refused, and says against what.
    let output = world.run(
        1,
        common::east_to_west("link", "products", &["--yes", "--timeout", "3s"]),
    );
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains(
            "TLS with Elasticsearch search/catalog failed (verified as localhost against the public root CAs: Secret catalog-es-http-certs-public has no ca.crt)"
        ),
        "{stderr}"
    );
    assert_eq!(world.plugin_writes(BOTH), 0, "nothing is written");
    world.assert_unchanged(BOTH, &before);
}

/// A Secret `search/<secret>` with a self-signed client certificate and its key, labelled as
/// ECK trusts client certificates of `search/catalog`, and owned by it when `owned`.
fn client_certificate(world: &World, secret: &str, owned: bool) {
    let east = world.sandbox.cluster("east");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kubectl-remote-cluster");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.self_signed(&key).unwrap();
    let mut metadata = json!({"name": secret, "namespace": "search", "labels": {
        "eck.k8s.elastic.co/client-certificate": "true",
        "eck.k8s.elastic.co/owner-name": "catalog",
        "eck.k8s.elastic.co/owner-namespace": "search",
        "eck.k8s.elastic.co/owner-kind": "Elasticsearch",
    }});
    if owned {
        let uid = world.elasticsearch("east", "search", "catalog")["metadata"]["uid"].clone();
        metadata["ownerReferences"] = json!([{"apiVersion": "elasticsearch.k8s.elastic.co/v1",
            "kind": "Elasticsearch", "name": "catalog", "uid": uid}]);
    }
    east.create(
        &ResourceKey::SECRETS,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": metadata,
               "stringData": {"tls.crt": cert.pem(), "tls.key": key.serialize_pem()}}),
    )
    .unwrap();
}

fn name_client_certificate(world: &World, secret: &str) {
    world
        .sandbox
        .cluster("east")
        .merge_patch(
            &ResourceKey::ELASTICSEARCHES,
            Some("search"),
            "catalog",
            &json!({"metadata": {"annotations": {
                "remote-cluster.kubectl-plugin.dev/http-client-certificate": secret}}}),
            Sub::Main,
        )
        .unwrap();
}

#[test]
fn client_authentication_needs_a_named_trusted_client_certificate() {
    let world = world();
    patch_http(
        &world,
        "east",
        "search",
        "catalog",
        json!({"tls": {"client": {"authentication": true}}}),
    );
    world.settle(BOTH);
    let before = world.snapshot(BOTH);
    world.clear_requests(BOTH);

    // None named: refused at once (no waiting for --timeout), saying what to do.
    let started = std::time::Instant::now();
    let output = world.run(1, link());
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains(
            "Elasticsearch search/catalog requires a client certificate on HTTP (spec.http.tls.client.authentication)"
        ) && stderr.contains(
            "kubectl annotate elasticsearch catalog -n search remote-cluster.kubectl-plugin.dev/http-client-certificate=SECRET"
        ),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(30), "not retried");
    assert_eq!(world.plugin_writes(BOTH), 0);
    world.assert_unchanged(BOTH, &before);

    // One that Elasticsearch does not trust (labelled, but owned by no ECK resource).
    client_certificate(&world, "stray-client", false);
    name_client_certificate(&world, "stray-client");
    let output = world.run(1, link());
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains(
            "Elasticsearch search/catalog refused the client certificate of Secret search/stray-client"
        ),
        "{stderr}"
    );

    // A trusted one: the link is made, and the key never shows.
    client_certificate(&world, "plugin-client", true);
    name_client_certificate(&world, "plugin-client");
    let output = world.ok(link());
    assert!(
        stderr_of(&output).contains("Remote cluster \"products\" is connected."),
        "{}",
        stderr_of(&output)
    );
    let key = world
        .sandbox
        .cluster("east")
        .secret_text("search", "plugin-client", "tls.key")
        .unwrap();
    common::assert_not_shown(&key, &[&output]);
}
