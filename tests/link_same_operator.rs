//! `link` and `unlink` between two clusters of one ECK operator, through the real binary.

mod common;

use common::{World, stderr_of, stdout_of};
use remote_cluster_sandbox::{ClusterConfig, EsSeed, Rule, Sandbox};
use serde_json::{Value, json};

const LINKS: &str = "remote-cluster.kubectl-plugin.dev/links";

fn world() -> World {
    World::start(
        Sandbox::builder().cluster(
            ClusterConfig::new("east")
                .elasticsearch(EsSeed::new("search", "catalog", "9.1.0").nodes(1))
                .elasticsearch(EsSeed::new("search", "products", "9.1.0").nodes(3))
                .elasticsearch(EsSeed::new("shop", "orders", "9.1.0").nodes(1))
                .elasticsearch(EsSeed::new("logging", "old", "8.17.0").nodes(1))
                .elasticsearch(
                    EsSeed::new("search", "hand", "9.1.0")
                        .remote_cluster("products", "search", "orders", false),
                )
                .user(
                    "reader",
                    vec![Rule::read_only(
                        "elasticsearch.k8s.elastic.co",
                        "elasticsearches",
                    )],
                ),
        ),
    )
}

fn es(world: &World, namespace: &str, name: &str) -> Value {
    world.elasticsearch("east", namespace, name)
}

/// Writes to Elasticsearch resources (access reviews are questions, not writes).
fn es_writes(world: &World) -> Vec<remote_cluster_sandbox::RequestRecord> {
    world
        .sandbox
        .cluster("east")
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && r.path.contains("/elasticsearches"))
        .collect()
}

/// `link` of search/catalog to search/products, then `extra`.
fn link<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    common::catalog_products("link", extra)
}

#[test]
fn api_key_link_enables_the_server_adds_the_entry_and_is_idempotent() {
    let world = world();
    let output = world.ok(link(&["--yes", "--wait=false"]));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains(
            "enable the remote cluster server (port 9443)  [restarts Elasticsearch nodes]"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("Linked search/catalog (context east) to search/products (context east) as \"products\" (api-key security model)."),
        "{stderr}"
    );
    assert!(
        stdout_of(&output).is_empty(),
        "no data asked for, none printed"
    );

    let products = es(&world, "search", "products");
    assert_eq!(products["spec"]["remoteClusterServer"]["enabled"], true);
    let catalog = es(&world, "search", "catalog");
    assert_eq!(
        catalog["spec"]["remoteClusters"],
        json!([{"name": "products", "elasticsearchRef": {"name": "products"},
                "apiKey": {"access": {"search": {"names": ["*"]}}}}])
    );
    assert!(
        catalog["metadata"]["annotations"][LINKS]
            .as_str()
            .unwrap()
            .contains("\"products\"")
    );
    let writes = es_writes(&world);
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert!(writes.iter().all(|w| w.method == "PATCH"
        && w.content_type.as_deref() == Some("application/json-patch+json")
        && w.status == 200));

    world.again(
        &["east"],
        link(&["--yes", "--wait=false"]),
        "is already linked",
    );
}

#[test]
fn certificate_model_adds_the_entry_only() {
    let world = world();
    let output = world.ok([
        "link",
        "catalog",
        "orders",
        "-n",
        "search",
        "--remote-namespace",
        "shop",
        "--security",
        "certificate",
        "--alias",
        "shop",
        "--wait=false",
    ]);
    assert!(
        stderr_of(&output).contains("deprecated"),
        "the certificate model warns"
    );
    let catalog = es(&world, "search", "catalog");
    assert_eq!(
        catalog["spec"]["remoteClusters"],
        json!([{"name": "shop", "elasticsearchRef": {"name": "orders", "namespace": "shop"}}])
    );
    assert_eq!(
        es(&world, "shop", "orders")["spec"]["remoteClusterServer"],
        Value::Null
    );
    let writes = es_writes(&world);
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert!(
        writes[0]
            .path
            .ends_with("/namespaces/search/elasticsearches/catalog")
    );
}

#[test]
fn without_a_terminal_a_restarting_plan_needs_yes() {
    let world = world();
    world.refused(
        link(&["--wait=false"]),
        "there is no terminal to confirm it on",
    );
    assert!(es_writes(&world).is_empty());
}

#[test]
fn a_server_dry_run_that_fails_half_way_takes_nothing_back_for_real() {
    let world = world();
    // The second patch of the plan fails: the first one was only a dry run, so there is
    // nothing to undo, and an undo would write for real.
    world.sandbox.cluster("east").inject_fault(
        remote_cluster_sandbox::Fault::new(
            "PATCH",
            "/apis/elasticsearch.k8s.elastic.co/v1/namespaces/search/elasticsearches/",
        )
        .nth(2),
    );
    let output = world
        .plugin()
        .args(link(&["--dry-run=server"]))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    assert!(
        !stderr_of(&output).contains("undone"),
        "{}",
        stderr_of(&output)
    );
    let writes = es_writes(&world);
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert!(
        writes.iter().all(|w| w.query.contains("dryRun=All")),
        "{writes:?}"
    );
    assert_eq!(
        es(&world, "search", "products")["spec"]["remoteClusterServer"],
        Value::Null
    );
    assert_eq!(
        es(&world, "search", "catalog")["spec"]["remoteClusters"],
        Value::Null
    );
}

#[test]
fn dry_runs_write_nothing() {
    let world = world();
    let doc = world.json(link(&["--dry-run=client", "-o", "json"]));
    assert_eq!(doc["kind"], "LinkResult");
    assert_eq!(doc["plan"]["steps"].as_array().unwrap().len(), 2);
    assert_eq!(doc["writes"], 0);
    assert!(es_writes(&world).is_empty());

    world.ok(link(&["--dry-run=server"]));
    let writes = es_writes(&world);
    assert_eq!(writes.len(), 2);
    assert!(
        writes.iter().all(|w| w.query.contains("dryRun=All")),
        "{writes:?}"
    );
    assert_eq!(
        es(&world, "search", "products")["spec"]["remoteClusterServer"],
        Value::Null
    );
    assert_eq!(
        es(&world, "search", "catalog")["spec"]["remoteClusters"],
        Value::Null
    );
}

#[test]
fn pre_write_checks_exit_2_without_writing() {
    let world = world();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["link", "catalog", "catalog", "-n", "search"],
            "to itself",
        ),
        (
            vec!["link", "catalog", "missing", "-n", "search"],
            "Elasticsearch \"missing\" not found in namespace \"search\" of context \"east\"",
        ),
        (
            vec!["link", "catalog", "products", "-n", "nowhere"],
            "not found in namespace \"nowhere\"",
        ),
        (
            link(&["--alias", "Bad.Alias"]),
            "not a remote cluster alias",
        ),
        (
            vec!["link", "hand", "products", "-n", "search"],
            "alias \"products\" is already used on search/hand (context east) by a link to search/orders",
        ),
        (
            vec![
                "link",
                "catalog",
                "old",
                "-n",
                "search",
                "--remote-namespace",
                "logging",
            ],
            "cannot be connected",
        ),
        (
            link(&["--security", "certificate", "--search-indices", "a"]),
            "for the API-key model",
        ),
        (
            vec!["unlink", "hand", "products", "-n", "search"],
            "was not added by kubectl remote-cluster",
        ),
        (
            vec!["unlink", "catalog", "nothing", "-n", "search"],
            "has no remote cluster with alias \"nothing\"",
        ),
        (link(&["--timeout", "soon"]), "for '--timeout <DURATION>'"),
    ];
    for (args, expected) in cases {
        world.refused(args, expected);
    }
    assert!(es_writes(&world).is_empty());
}

#[test]
fn rbac_denial_names_the_verb_before_any_write() {
    let world = world();
    let mut config: Value = serde_saphyr::from_str(&world.sandbox.kubeconfig_yaml()).unwrap();
    // A context for the read-only user on the same cluster.
    config["contexts"].as_array_mut().unwrap().push(json!({
        "name": "east-reader", "context": {"cluster": "east", "user": "east-reader"}}));
    let path = world.dir.path().join("reader.yaml");
    std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
    let output = common::plugin(world.dir.path())
        .arg("--kubeconfig")
        .arg(&path)
        .args(link(&["--context", "east-reader", "--yes"]))
        .output()
        .unwrap();
    common::assert_refused(
        &output,
        "not allowed to patch elasticsearches.elasticsearch.k8s.elastic.co in namespace \"search\"",
    );
    assert!(es_writes(&world).is_empty());
}

#[test]
fn unlink_removes_exactly_what_link_added() {
    let world = world();
    let before_catalog = es(&world, "search", "catalog");
    let before_products = es(&world, "search", "products");
    world.ok(link(&["--yes", "--wait=false"]));
    // ECK's annotation lands first: removing the plugin's last annotation tests the whole map,
    // so an ECK write in between would (rightly) make the command re-plan, and `writes` then
    // counts only the last attempt's writes.
    world.settle(&["east"]);
    world.sandbox.cluster("east").clear_requests();
    let doc = world.json(common::catalog_products(
        "unlink",
        &["--disable-server", "--yes", "--wait=false", "-o", "json"],
    ));
    assert_eq!(doc["kind"], "UnlinkResult");
    assert_eq!(doc["writes"], 2);
    assert_eq!(es_writes(&world).len(), 2, "as many as it says");
    let catalog = es(&world, "search", "catalog");
    assert_eq!(catalog["spec"], before_catalog["spec"]);
    assert_eq!(catalog["metadata"]["annotations"].get(LINKS), None);
    let products = es(&world, "search", "products");
    // Off is ECK's default: the field the link added goes, rather than becoming `false`.
    assert_eq!(products["spec"], before_products["spec"]);
    assert_eq!(
        products["metadata"]["annotations"]
            .get("remote-cluster.kubectl-plugin.dev/remote-cluster-server"),
        None
    );
    assert_eq!(before_products["spec"]["remoteClusterServer"], Value::Null);
}

#[test]
fn unlink_keeps_a_server_others_use_and_says_who() {
    let world = world();
    for (local, ns) in [("catalog", "search"), ("orders", "shop")] {
        world.ok([
            "link",
            local,
            "products",
            "-n",
            ns,
            "--remote-namespace",
            "search",
            "--yes",
            "--wait=false",
        ]);
    }
    let output = world.ok(common::catalog_products(
        "unlink",
        &["--disable-server", "--yes", "--wait=false"],
    ));
    assert!(
        stderr_of(&output).contains("stays on: still used by shop/orders"),
        "{}",
        stderr_of(&output)
    );
    assert_eq!(
        es(&world, "search", "products")["spec"]["remoteClusterServer"]["enabled"],
        true
    );
    assert_eq!(
        es(&world, "search", "catalog")["spec"]["remoteClusters"],
        Value::Null,
        "the link itself is removed"
    );
    assert_eq!(
        es(&world, "shop", "orders")["spec"]["remoteClusters"][0]["name"],
        "products",
        "the other link is kept"
    );
}
