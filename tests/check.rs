//! `check`: every link of the sandbox's `broken` scenario gets the code of its reason, healthy
//! links get none; output formats, `--junit`, `--only`/`--skip`, exit codes; links across
//! Kubernetes clusters whose key was invalidated or whose CA rotated.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{World, es, stderr_of, stdout_of};
use remote_cluster_sandbox::scenarios::{self, BROKEN_LINKS};
use remote_cluster_sandbox::{ClusterConfig, ContextConfig, Sandbox};
use serde_json::{Value, json};

/// The sandbox of `--scenario broken`, with clusters `east` and `west`, settled.
fn broken() -> World {
    // A second context of east's API server, as a kubeconfig often has: its clusters are
    // checked once.
    let builder = Sandbox::builder()
        .cluster(scenarios::broken_cluster(0, ClusterConfig::new("east")))
        .cluster(scenarios::broken_cluster(1, ClusterConfig::new("west")))
        .context(ContextConfig::new("east-shop", "east", "admin").namespace("shop"));
    let world = World::settled(builder);
    scenarios::break_links(&world.sandbox).unwrap();
    world.settle(&["east", "west"]);
    world
}

/// The code each link of the scenario must get (none for the healthy ones).
fn expected_code(local: &str, alias: &str) -> Option<&'static str> {
    match (local, alias) {
        ("hub", "healthy-api" | "healthy-cert") => None,
        ("hub", "rcs-off") => Some("remote-server-disabled"),
        ("hub", "ghost") => Some("remote-not-found"),
        ("hub", "legacy") => Some("versions-incompatible"),
        ("hub", "nowhere") => Some("remote-unreachable"),
        ("hub", "untrusted") => Some("ca-not-trusted"),
        ("hub", "nokey") => Some("credentials-missing"),
        ("hub", "revoked") => Some("api-key-refused"),
        ("hub", "restkey") => Some("api-key-not-cross-cluster"),
        ("hub", "wrongport") => Some("wrong-port"),
        ("hub", "badname") => Some("server-name-mismatch"),
        ("stray", "stray") => Some("no-elasticsearch-ref"),
        ("orders", "spoke") => Some("eck-reconcile-error"),
        ("reports", "metrics") => Some("licence-not-enterprise"),
        other => panic!("no expectation for {other:?}"),
    }
}

/// The codes found, by `local/alias` (`local/` for the cluster itself).
fn codes_by_link(document: &Value) -> BTreeMap<String, Vec<String>> {
    document["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| {
            let key = format!(
                "{}/{}",
                group["cluster"]["name"].as_str().unwrap(),
                group["alias"].as_str().unwrap_or_default()
            );
            let codes = group["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["code"].as_str().unwrap().to_string())
                .collect();
            (key, codes)
        })
        .collect()
}

#[test]
fn each_broken_link_gets_the_code_of_its_reason_and_healthy_links_none() {
    let world = broken();
    let output = world.run(3, ["check", "--all-contexts", "-o", "json"]);
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["kind"], "RemoteClusterCheck");
    assert_eq!(document["passed"], false);
    let found = codes_by_link(&document);
    assert_eq!(
        found.len(),
        document["links"].as_array().unwrap().len(),
        "each cluster and link once, though two contexts reach east"
    );
    for link in BROKEN_LINKS {
        let key = format!("{}/{}", link.local, link.alias);
        let codes = &found[&key];
        match expected_code(link.local, link.alias) {
            None => {
                assert!(link.broken_because.is_none());
                assert!(codes.is_empty(), "{key}: {codes:?}");
            }
            // ECK's failure concerns the whole resource: it is reported on the cluster.
            Some(code) if link.local == "orders" => {
                assert!(found["orders/"].contains(&code.to_string()), "{found:?}");
                assert!(codes.is_empty(), "{key}: only on the cluster: {found:?}");
            }
            Some(code) => assert_eq!(codes, &[code.to_string()], "{key}: {found:?}"),
        }
    }
    assert!(
        found["reports/"].contains(&"eck-warning-event".to_string()),
        "{found:?}"
    );
    // ECK created no pod for orders: its Elasticsearch cannot be asked.
    assert!(
        found["orders/"].contains(&"elasticsearch-unreachable".to_string()),
        "{found:?}"
    );
    for healthy in ["hub/", "spoke/", "metrics/"] {
        assert!(found[healthy].is_empty(), "{healthy}: {found:?}");
    }
    let distinct: std::collections::BTreeSet<&String> = found.values().flatten().collect();
    assert!(distinct.len() >= 14, "{distinct:?}");
    let mut expected: std::collections::BTreeSet<String> = BROKEN_LINKS
        .iter()
        .filter_map(|link| expected_code(link.local, link.alias))
        .map(str::to_string)
        .collect();
    expected.extend(["eck-warning-event", "elasticsearch-unreachable"].map(String::from));
    assert_eq!(
        distinct
            .into_iter()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        expected,
        "no code beyond the broken links' own"
    );
}

#[test]
fn a_healthy_link_passes_and_the_report_names_each_broken_one_with_its_fix() {
    let world = broken();
    let healthy = world.ok([
        "check",
        "hub",
        "healthy-api",
        "-n",
        "shop",
        "--context",
        "east",
    ]);
    let text = stdout_of(&healthy);
    assert!(text.contains("✓ healthy-api → shop/spoke"), "{text}");
    assert!(text.contains("1 links checked: 0 with errors"), "{text}");

    let report = world.run(3, ["check", "hub", "-n", "shop", "--context", "east"]);
    let text = stdout_of(&report);
    assert!(text.contains("✗ rcs-off → shop/billing"), "{text}");
    assert!(
        text.contains(
            "fix: kubectl patch elasticsearch billing -n shop --context east --type merge -p '{\"spec\":{\"remoteClusterServer\":{\"enabled\":true}}}'"
        ),
        "{text}"
    );
    assert!(
        text.contains("[remote-unreachable] Elasticsearch east/shop/hub alias nowhere: the pod log says: failed to open any proxy connections to cluster [nowhere]"),
        "{text}"
    );
    assert!(text.contains("12 links checked: 10 with errors"), "{text}");
    let password = world
        .sandbox
        .cluster("east")
        .secret_text("shop", "hub-es-elastic-user", "elastic")
        .unwrap();
    common::assert_not_shown(&password, &[&report]);
}

#[test]
fn only_skip_yaml_and_the_exit_code_of_warnings_alone() {
    let world = broken();
    let warnings = world.run(
        4,
        ["check", "--context", "west", "--only", "eck-warning-event"],
    );
    assert!(
        stdout_of(&warnings).contains("[eck-warning-event] Elasticsearch west/shop/reports"),
        "{}",
        stdout_of(&warnings)
    );
    let skipped = world.run(
        0,
        [
            "check",
            "--context",
            "west",
            "--skip",
            "eck-warning-event,licence-not-enterprise",
        ],
    );
    assert!(
        !stdout_of(&skipped).contains("["),
        "{}",
        stdout_of(&skipped)
    );

    let yaml = world.run(
        3,
        [
            "check",
            "hub",
            "ghost",
            "-n",
            "shop",
            "--context",
            "east",
            "-o",
            "yaml",
        ],
    );
    let text = stdout_of(&yaml);
    assert!(text.contains("code: remote-not-found"), "{text}");
    assert!(text.contains("severity: error"), "{text}");
    assert!(
        text.contains("fix: kubectl edit elasticsearch hub -n shop --context east"),
        "{text}"
    );

    let missing = world.run(2, ["check", "nothing", "-n", "shop", "--context", "east"]);
    assert!(
        stderr_of(&missing).contains(
            "Elasticsearch \"nothing\" not found in namespace \"shop\" of context \"east\""
        ),
        "{}",
        stderr_of(&missing)
    );
    let no_link = world.run(
        2,
        ["check", "hub", "nope", "-n", "shop", "--context", "east"],
    );
    assert!(
        stderr_of(&no_link).contains("has no remote cluster \"nope\""),
        "{}",
        stderr_of(&no_link)
    );
    let unknown = world.run(2, ["check", "--only", "no-such-code"]);
    assert!(
        stderr_of(&unknown).contains("unknown check code"),
        "{}",
        stderr_of(&unknown)
    );
}

#[test]
fn junit_has_a_testcase_per_check_and_link_and_a_failure_per_error() {
    let world = broken();
    let file = world.dir.path().join("check.xml");
    world.run(
        3,
        [
            "check".as_ref(),
            "hub".as_ref(),
            "-n".as_ref(),
            "shop".as_ref(),
            "--context".as_ref(),
            "east".as_ref(),
            "--only".as_ref(),
            "remote-server-disabled,remote-not-found".as_ref(),
            "--junit".as_ref(),
            file.as_os_str(),
        ],
    );
    let xml = std::fs::read_to_string(&file).unwrap();
    // hub itself and its 12 links, two checks each.
    assert_eq!(xml.matches("<testcase ").count(), 26, "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 2, "{xml}");
    assert!(xml.contains("tests=\"26\" failures=\"2\""), "{xml}");
    assert!(
        xml.contains("<testsuite name=\"east/shop/hub alias rcs-off\" tests=\"2\" failures=\"1\">"),
        "{xml}"
    );
    assert!(xml.contains("<failure type=\"remote-not-found\""), "{xml}");
}

/// east/search/catalog linked to west/shop/products across Kubernetes clusters, settled.
fn linked_across() -> World {
    let world = World::settled(
        common::east_and_west([es("search", "catalog")], [es("shop", "products")])
            .operator_delay(Duration::from_millis(100)),
    );
    world.ok(common::east_to_west(
        "link",
        "products",
        &["--yes", "--timeout", "90s"],
    ));
    world
}

fn check_catalog(world: &World) -> Value {
    let output = world.run(
        3,
        [
            "check",
            "catalog",
            "-n",
            "search",
            "--context",
            "east",
            "-o",
            "json",
        ],
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn a_key_invalidated_on_the_remote_is_refused() {
    let world = linked_across();
    world.ok(["check", "catalog", "-n", "search", "--context", "east"]);
    let west = world.sandbox.cluster("west");
    let password = west
        .secret_text("shop", "products-es-elastic-user", "elastic")
        .unwrap();
    let response = west.es_request(
        "shop",
        "products",
        &remote_cluster_sandbox::elasticsearch::EsRequest::new("DELETE", "/_security/api_key")
            .basic("elastic", &password)
            .json(&json!({"name": "*"})),
    );
    assert_eq!(response.status, 200, "{}", response.body);
    let found = codes_by_link(&check_catalog(&world));
    assert_eq!(found["catalog/products"], ["api-key-refused"], "{found:?}");
}

#[test]
fn a_rotated_remote_ca_is_a_stale_copy() {
    let world = linked_across();
    let west = world.sandbox.cluster("west");
    west.rotate_transport_ca("shop", "products").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let found = codes_by_link(&check_catalog_any(&world));
        if found["catalog/products"].contains(&"ca-stale".to_string()) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{found:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let document = check_catalog(&world);
    let finding = &document["links"][1]["findings"][0];
    assert_eq!(finding["code"], "ca-stale");
    assert!(
        finding["fix"]
            .as_str()
            .unwrap()
            .starts_with("kubectl remote-cluster link catalog products -n search --context east --remote-context west --remote-namespace shop"),
        "{finding}"
    );
}

fn check_catalog_any(world: &World) -> Value {
    let output = world
        .plugin()
        .args([
            "check",
            "catalog",
            "-n",
            "search",
            "--context",
            "east",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    serde_json::from_slice(&output.stdout).unwrap()
}

/// east/search/catalog and the external cluster `cloud`, with a cross-cluster key made there
/// (invalidated when `invalidate`), and the files `link --external` reads.
fn external_link_files(
    invalidate: bool,
) -> (World, std::path::PathBuf, std::path::PathBuf, String) {
    use remote_cluster_sandbox::elasticsearch::EsRequest;
    let world = World::settled(
        common::east([es("search", "catalog")]).external_elasticsearch("cloud", "9.1.0"),
    );
    let cloud = world.sandbox.external("cloud");
    let created = world.sandbox.external_request(
        "cloud",
        &EsRequest::new("POST", "/_security/cross_cluster/api_key")
            .basic("elastic", &cloud.password)
            .json(&json!({"name": "for-eck", "access": {"search": [{"names": ["*"]}]}})),
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let key = created.body["encoded"].as_str().unwrap().to_string();
    if invalidate {
        let invalidated = world.sandbox.external_request(
            "cloud",
            &EsRequest::new("DELETE", "/_security/api_key")
                .basic("elastic", &cloud.password)
                .json(&json!({"name": "for-eck"})),
        );
        assert_eq!(invalidated.status, 200, "{}", invalidated.body);
    }
    let ca = world.dir.path().join("remote-ca.pem");
    std::fs::write(&ca, &cloud.remote_cluster_ca_pem).unwrap();
    let key_file = world.dir.path().join("key.txt");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    (world, ca, key_file, key)
}

/// Links catalog to `cloud` at `address` with a 120 s timeout; the failure and how long it took.
fn link_external(
    world: &World,
    address: &str,
    ca: &std::path::Path,
    key: &std::path::Path,
) -> (std::process::Output, Duration) {
    let started = std::time::Instant::now();
    let output = world.run(
        1,
        [
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
            "120s",
            "--ca-file",
            ca.to_str().unwrap(),
            "--api-key-file",
            key.to_str().unwrap(),
        ],
    );
    (output, started.elapsed())
}

#[test]
fn a_link_whose_key_the_remote_refuses_stops_on_the_finding_not_the_timeout() {
    let (world, ca, key_file, key) = external_link_files(true);
    let address = world.sandbox.external("cloud").remote_cluster_address;
    let (failed, took) = link_external(&world, &address, &ca, &key_file);
    let stderr = stderr_of(&failed);
    assert!(
        stderr.contains("remote cluster \"cloud\" cannot connect on search/catalog (context east): [api-key-refused] Elasticsearch reports: "),
        "{stderr}"
    );
    assert!(
        stderr.contains("`kubectl remote-cluster check catalog cloud -n search --context east`"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(40), "stopped after {took:?}");
    common::assert_not_shown(&key, &[&failed]);
}

#[test]
fn a_link_to_an_address_where_nothing_answers_stops_on_the_pod_log() {
    let (world, ca, key_file, _) = external_link_files(false);
    let address = world.sandbox.external("cloud").remote_cluster_address;
    let (host, _) = address.rsplit_once(':').unwrap();
    let wrong = format!("{host}:1");
    let (failed, took) = link_external(&world, &wrong, &ca, &key_file);
    let stderr = stderr_of(&failed);
    assert!(
        stderr.contains("cannot connect on search/catalog (context east): [remote-unreachable] the pod log says: failed to open any proxy connections to cluster [cloud]"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(40), "stopped after {took:?}");
    let found = codes_by_link(
        &serde_json::from_slice(
            &world
                .run(3, ["check", "catalog", "-n", "search", "-o", "json"])
                .stdout,
        )
        .unwrap(),
    );
    assert_eq!(found["catalog/cloud"], ["remote-unreachable"], "{found:?}");
}

#[test]
fn a_remote_exposed_at_another_port_is_a_stale_address_until_linked_again() {
    let world = linked_across();
    let west = world.sandbox.cluster("west");
    let products = world.elasticsearch("west", "shop", "products");
    let mut server = products["spec"]["remoteClusterServer"].clone();
    server["service"]["spec"]["ports"] = json!([{"name": "rcs", "port": 443, "targetPort": 9443}]);
    west.merge_patch(
        &remote_cluster_sandbox::ResourceKey::ELASTICSEARCHES,
        Some("shop"),
        "products",
        &json!({"spec": {"remoteClusterServer": server}}),
        remote_cluster_sandbox::Sub::Main,
    )
    .unwrap();
    world.settle(&["west"]);
    let document = check_catalog(&world);
    let found = codes_by_link(&document);
    assert_eq!(
        found["catalog/products"],
        ["proxy-address-stale"],
        "{document}"
    );
    repairs_with_its_fix(&world, &document);
}

#[test]
fn a_recorded_link_missing_from_the_cluster_settings_is_named_with_its_repair() {
    let world = linked_across();
    let east = world.sandbox.cluster("east");
    let password = east
        .secret_text("search", "catalog-es-elastic-user", "elastic")
        .unwrap();
    let removed = east.es_request(
        "search",
        "catalog",
        &remote_cluster_sandbox::elasticsearch::EsRequest::new("PUT", "/_cluster/settings")
            .basic("elastic", &password)
            .json(&json!({"persistent": {"cluster.remote.products.*": null}})),
    );
    assert_eq!(removed.status, 200, "{}", removed.body);
    let document = check_catalog(&world);
    let found = codes_by_link(&document);
    assert_eq!(
        found["catalog/products"],
        ["record-without-settings"],
        "{document}"
    );
    repairs_with_its_fix(&world, &document);
}

/// Runs the command the link's finding names as its fix (`kubectl remote-cluster link ...`),
/// after which `check` passes.
fn repairs_with_its_fix(world: &World, document: &Value) {
    let fix = document["links"][1]["findings"][0]["fix"]
        .as_str()
        .unwrap()
        .to_string();
    let args: Vec<&str> = fix.split(' ').skip(2).collect();
    world.ok([&args[..], &["--yes", "--timeout", "90s"]].concat());
    world.ok(["check", "catalog", "-n", "search", "--context", "east"]);
}

/// The sandbox's pod log, as `kubectl logs` reads it: one line per alias that cannot connect,
/// `--tail` keeping the last ones.
#[test]
fn the_sandbox_pod_log_has_the_catalogue_line_of_each_failing_alias() {
    let world = broken();
    let logs = |extra: &[&str]| {
        let output = std::process::Command::new("kubectl")
            .args([
                "logs",
                "hub-es-default-0",
                "-n",
                "shop",
                "--context",
                "east",
            ])
            .args(extra)
            .env("KUBECONFIG", &world.kubeconfig)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr_of(&output));
        stdout_of(&output)
    };
    let all = logs(&[]);
    let failing = BROKEN_LINKS
        .iter()
        .filter(|l| l.local == "hub" && l.broken_because.is_some())
        .count();
    assert_eq!(all.lines().count(), failing, "{all}");
    assert!(
        all.contains(
            "failed to open any proxy connections to cluster [nowhere]: [search.shop.svc:9443]"
        ),
        "{all}"
    );
    assert!(!all.contains("[healthy-api]"), "{all}");
    let last = logs(&["--tail", "1", "--since", "1h"]);
    assert_eq!(last.lines().count(), 1, "{last}");
    // Each read stamps its lines with the time of the read: compare what follows the stamp.
    let unstamped = |line: &str| line.split_once(' ').map(|(_, rest)| rest.to_string());
    assert_eq!(
        unstamped(all.lines().last().unwrap()),
        unstamped(last.trim_end())
    );
}
