//! `kubectl remote-cluster list` against sandbox API servers, through the real binary.

mod common;

use std::time::Duration;

use common::{World, plugin, stderr_of, stdout_of, table_rows};
use remote_cluster_sandbox::{ClusterConfig, ContextConfig, EsSeed, Rule, Sandbox};

fn two_clusters() -> World {
    World::start(
        Sandbox::builder()
            .cluster(
                ClusterConfig::new("east")
                    .elasticsearch(
                        EsSeed::new("search", "products", "9.1.0")
                            .nodes(3)
                            .remote_cluster_server(true),
                    )
                    .elasticsearch(
                        EsSeed::new("search", "catalog", "9.1.0")
                            .nodes(1)
                            .remote_cluster("prod", "search", "products", true),
                    )
                    .elasticsearch(
                        EsSeed::new("logging", "logs", "8.19.2")
                            .nodes(2)
                            .health("yellow"),
                    ),
            )
            .cluster(
                ClusterConfig::new("west")
                    .elasticsearch(EsSeed::new("default", "analytics", "9.2.0").nodes(5))
                    .elasticsearch(
                        EsSeed::new("team-b", "archive", "8.19.2")
                            .nodes(1)
                            .phase("ApplyingChanges"),
                    ),
            ),
    )
}

#[test]
fn lists_every_cluster_of_every_context_in_a_table() {
    let world = two_clusters();
    let output = world.ok(["list", "--all-contexts"]);
    let stdout = stdout_of(&output);
    let rows = table_rows(&stdout);
    assert_eq!(
        rows[0],
        [
            "CONTEXT",
            "NAMESPACE",
            "NAME",
            "VERSION",
            "HEALTH",
            "PHASE",
            "NODES",
            "REMOTE-SERVER",
            "REMOTES"
        ]
    );
    let names: Vec<(&str, &str, &str)> = rows[1..]
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str(), r[2].as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("east", "logging", "logs"),
            ("east", "search", "catalog"),
            ("east", "search", "products"),
            ("west", "default", "analytics"),
            ("west", "team-b", "archive"),
        ]
    );
    let products = &rows[3];
    assert_eq!(products[3..], ["9.1.0", "green", "Ready", "3", "on", "0"]);
    let catalog = &rows[2];
    assert_eq!(catalog[7..], ["off", "1"]);
    assert!(!stdout.contains('\u{1b}'), "no colour when not a terminal");
    assert_eq!(world.write_count(&["east", "west"]), 0, "list never writes");
}

#[test]
fn current_context_only_by_default_and_namespace_flag_narrows() {
    let world = two_clusters();
    let output = world.ok(["list", "-o", "name"]);
    assert_eq!(
        stdout_of(&output),
        "east/logging/logs\neast/search/catalog\neast/search/products\n"
    );
    assert_eq!(
        world.request_count("west"),
        0,
        "west is not the current context"
    );

    let output = world.ok(["list", "--context", "west", "-n", "team-b", "-o", "name"]);
    assert_eq!(stdout_of(&output), "west/team-b/archive\n");
}

#[test]
fn json_document_carries_every_field_and_every_context() {
    let world = two_clusters();
    let doc = world.json(["list", "--context", "east,west", "-o", "json"]);
    assert_eq!(doc["kind"], "ElasticsearchClusterList");
    assert!(doc["apiVersion"].as_str().unwrap().ends_with("/v1alpha1"));
    let items = doc["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    let catalog = items.iter().find(|i| i["name"] == "catalog").unwrap();
    assert_eq!(catalog["context"], "east");
    assert_eq!(catalog["namespace"], "search");
    assert_eq!(catalog["version"], "9.1.0");
    assert_eq!(catalog["remoteClusterCount"], 1);
    assert_eq!(catalog["remoteClusters"][0]["alias"], "prod");
    assert_eq!(
        catalog["remoteClusters"][0]["elasticsearchRef"],
        "search/products"
    );
    assert_eq!(catalog["remoteClusters"][0]["securityModel"], "api-key");
    let contexts = doc["contexts"].as_array().unwrap();
    assert_eq!(contexts.len(), 2);
    assert!(contexts.iter().all(|c| c["result"] == "Listed"));

    let yaml = world.ok(["list", "--context", "east,west", "-o", "yaml"]);
    let from_yaml: serde_json::Value = serde_saphyr::from_str(&stdout_of(&yaml)).unwrap();
    assert_eq!(from_yaml["items"].as_array().unwrap().len(), 5);
    assert_eq!(from_yaml, doc, "the same document in YAML");
}

#[test]
fn an_unreachable_context_is_reported_and_the_others_still_listed() {
    let world = World::start(
        Sandbox::builder()
            .cluster(ClusterConfig::new("east").elasticsearch(EsSeed::new("default", "a", "9.1.0")))
            .dead_context("dead"),
    );
    // A failed context fails the command.
    let output = world.run(1, ["list", "--all-contexts", "-o", "json"]);
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("error: context \"dead\": cannot reach the API server https://127.0.0.1:")
            && stderr.contains("connection refused"),
        "{stderr}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["items"].as_array().unwrap().len(), 1);
    let dead = doc["contexts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "dead")
        .unwrap()
        .clone();
    assert_eq!(dead["result"], "Failed");
    assert_eq!(dead["error"]["reason"], "Unreachable");
}

#[test]
fn a_cluster_without_eck_is_reported() {
    let world = World::start(
        Sandbox::builder()
            .cluster(ClusterConfig::new("east").elasticsearch(EsSeed::new("default", "a", "9.1.0")))
            .cluster(ClusterConfig::new("plain").without_eck()),
    );
    let output = world.run(1, ["list", "--all-contexts"]);
    assert!(
        stderr_of(&output).contains(
            "error: context \"plain\": ECK is not installed there (no elasticsearches.elasticsearch.k8s.elastic.co resource)"
        ),
        "{}",
        stderr_of(&output)
    );
    assert_eq!(
        table_rows(&stdout_of(&output)).len(),
        2,
        "header and east's cluster"
    );
}

#[test]
fn a_forbidden_cluster_wide_list_falls_back_to_the_context_namespace() {
    let world = World::start(
        Sandbox::builder()
            .cluster(
                ClusterConfig::new("east")
                    .elasticsearch(EsSeed::new("team-a", "mine", "9.1.0"))
                    .elasticsearch(EsSeed::new("team-b", "theirs", "9.1.0"))
                    .user(
                        "viewer",
                        vec![Rule {
                            verbs: vec!["get".into(), "list".into()],
                            api_groups: vec!["elasticsearch.k8s.elastic.co".into()],
                            resources: vec!["elasticsearches".into()],
                            namespaces: Some(vec!["team-a".into()]),
                        }],
                    ),
            )
            .context(ContextConfig {
                name: "east-viewer".into(),
                cluster: "east".into(),
                user: "viewer".into(),
                namespace: Some("team-a".into()),
            }),
    );
    let output = world.ok(["list", "--context", "east-viewer", "-o", "name"]);
    assert_eq!(stdout_of(&output), "east-viewer/team-a/mine\n");
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("Warning: context \"east-viewer\": not allowed to list Elasticsearch clusters in all namespaces, listed namespace \"team-a\" only")
            && stderr.contains("User \"viewer\" cannot list resource \"elasticsearches\""),
        "{stderr}"
    );
}

#[test]
fn contexts_reaching_the_same_server_are_listed_once() {
    let world = World::start(
        Sandbox::builder()
            .cluster(ClusterConfig::new("east").elasticsearch(EsSeed::new("default", "a", "9.1.0")))
            .context(ContextConfig {
                name: "east-ops".into(),
                cluster: "east".into(),
                user: "admin".into(),
                namespace: None,
            }),
    );
    let output = world.ok(["list", "--all-contexts", "-o", "json"]);
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("Contexts \"east\", \"east-ops\" reach the same API server"),
        "{stderr}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let items = doc["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["alsoReachableAs"][0], "east-ops");
    let ops = &doc["contexts"][1];
    assert_eq!(ops["result"], "SameServer");
    assert_eq!(ops["listedAs"], "east");
    let list_requests = world
        .sandbox
        .cluster("east")
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/elasticsearches"))
        .count();
    assert_eq!(list_requests, 1, "the shared server is asked once");
}

#[test]
fn kubeconfig_list_of_two_files_is_merged() {
    let world = two_clusters();
    let full: serde_json::Value = serde_saphyr::from_str(&world.sandbox.kubeconfig_yaml()).unwrap();
    let pick = |name: &str, current: bool| {
        let only = |key: &str| -> serde_json::Value {
            serde_json::Value::Array(
                full[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|e| e["name"].as_str().unwrap().starts_with(name))
                    .cloned()
                    .collect(),
            )
        };
        let mut doc = serde_json::json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": only("clusters"), "users": only("users"), "contexts": only("contexts"),
        });
        if current {
            doc["current-context"] = name.into();
        }
        serde_json::to_string(&doc).unwrap()
    };
    let first = world.dir.path().join("east.yaml");
    let second = world.dir.path().join("west.yaml");
    std::fs::write(&first, pick("east", true)).unwrap();
    std::fs::write(&second, pick("west", false)).unwrap();
    let joined = std::env::join_paths([&first, &second]).unwrap();
    let output = plugin(world.dir.path())
        .env("KUBECONFIG", joined)
        .args(["list", "--all-contexts", "-o", "name"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    assert!(stdout.contains("east/search/products\n") && stdout.contains("west/team-b/archive\n"));
    assert_eq!(
        stdout,
        "east/logging/logs\neast/search/catalog\neast/search/products\nwest/default/analytics\nwest/team-b/archive\n",
        "every context of both files"
    );
}

#[test]
fn malformed_kubeconfig_names_the_file_and_exits_2_without_a_request() {
    let world = two_clusters();
    let bad = world.dir.path().join("broken.yaml");
    std::fs::write(&bad, "apiVersion: v1\nclusters: [\n  - name: x\n").unwrap();
    let output = plugin(world.dir.path())
        .args(["list", "--kubeconfig"])
        .arg(&bad)
        .output()
        .unwrap();
    common::assert_refused(&output, "is malformed");
    let stderr = stderr_of(&output);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: kubeconfig {} is malformed: line 3",
            bad.display()
        )),
        "{stderr}"
    );
    assert_eq!(world.request_count("east"), 0);
}

#[test]
fn unknown_context_names_the_existing_ones() {
    let world = two_clusters();
    let output = world.run(2, ["list", "--context", "north"]);
    assert_eq!(
        stderr_of(&output),
        "error: context \"north\" not found in the kubeconfig; contexts that exist: east, west\n"
    );
    assert!(output.stdout.is_empty());
    assert_eq!(world.request_count("east") + world.request_count("west"), 0);
}

#[test]
fn a_wrong_certificate_authority_is_named_as_a_certificate_problem() {
    let world = two_clusters();
    let mut config: serde_json::Value =
        serde_saphyr::from_str(&world.sandbox.kubeconfig_yaml()).unwrap();
    // Trust west's CA while talking to east.
    let west_ca = config["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "west")
        .unwrap()["cluster"]["certificate-authority-data"]
        .clone();
    for cluster in config["clusters"].as_array_mut().unwrap() {
        if cluster["name"] == "east" {
            cluster["cluster"]["certificate-authority-data"] = west_ca.clone();
        }
    }
    let path = world.dir.path().join("wrong-ca.yaml");
    std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
    let output = plugin(world.dir.path())
        .arg("--kubeconfig")
        .arg(&path)
        .args(["list", "--context", "east"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("error: context \"east\": certificate problem with https://127.0.0.1:")
            && stderr.contains("certificate-authority-data"),
        "{stderr}"
    );
}

#[test]
fn request_timeout_bounds_a_slow_server() {
    let world = World::start(
        Sandbox::builder().cluster(
            ClusterConfig::new("slow")
                .latency(Duration::from_secs(5))
                .elasticsearch(EsSeed::new("default", "a", "9.1.0")),
        ),
    );
    let output = world.run(1, ["list", "--request-timeout", "300ms"]);
    let stderr = stderr_of(&output);
    assert!(stderr.contains("error: context \"slow\":"), "{stderr}");
    assert!(
        stderr.contains("300ms") || stderr.contains("timed out"),
        "{stderr}"
    );

    world.refused(["list", "--request-timeout", "soon"], "soon");
}

#[test]
fn verbose_adds_the_cause_chain() {
    let world = World::start(Sandbox::builder().dead_context("dead"));
    let quiet = world.run(1, ["list"]);
    let verbose = world.run(1, ["list", "-v"]);
    assert_eq!(
        stderr_of(&quiet).lines().count(),
        1,
        "{}",
        stderr_of(&quiet)
    );
    assert!(
        stderr_of(&verbose).contains("caused by:"),
        "{}",
        stderr_of(&verbose)
    );
    assert!(
        stderr_of(&verbose).starts_with(&stderr_of(&quiet)),
        "the same error, then its causes: {}",
        stderr_of(&verbose)
    );
}

#[test]
fn a_closed_pipe_ends_the_listing_quietly() {
    let mut cluster = ClusterConfig::new("big");
    for i in 0..400 {
        cluster = cluster.elasticsearch(EsSeed::new("default", &format!("es-{i:03}"), "9.1.0"));
    }
    let world = World::start(Sandbox::builder().cluster(cluster));
    let bin = assert_cmd::cargo::cargo_bin(common::BIN);
    let script = format!(
        "{} list -o json | head -c 10 >/dev/null; echo \"status=${{PIPESTATUS[0]}}\"",
        bin.display()
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("KUBECONFIG", &world.kubeconfig)
        .env("HOME", world.dir.path())
        .output()
        .unwrap();
    assert_eq!(stdout_of(&out).trim(), "status=0");
    assert_eq!(stderr_of(&out), "", "no panic, no error on a closed pipe");
}

#[test]
fn installed_as_a_kubectl_plugin() {
    let world = two_clusters();
    let bin = assert_cmd::cargo::cargo_bin(common::BIN);
    let bin_dir = bin.parent().unwrap();
    let path = std::env::join_paths(
        std::iter::once(bin_dir.to_path_buf())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let output = std::process::Command::new("kubectl")
        .args(["remote-cluster", "list", "--all-contexts", "-o", "name"])
        .env("PATH", &path)
        .env("KUBECONFIG", &world.kubeconfig)
        .env("HOME", world.dir.path())
        .output()
        .expect("kubectl is installed");
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output).lines().count(), 5);
    let help = std::process::Command::new("kubectl")
        .args(["remote-cluster", "list", "--help"])
        .env("PATH", &path)
        .env("HOME", world.dir.path())
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0), "{}", stderr_of(&help));
    assert!(stdout_of(&help).contains("Usage: kubectl remote-cluster list"));
}

#[test]
fn version_needs_no_kubeconfig() {
    let home = tempfile::tempdir().unwrap();
    let output = plugin(home.path()).arg("version").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout_of(&output).starts_with("kubectl remote-cluster "));
    assert!(
        stdout_of(&output).contains(env!("CARGO_PKG_VERSION")),
        "{}",
        stdout_of(&output)
    );
    let json = plugin(home.path())
        .args(["version", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(json.status.code(), Some(0), "{}", stderr_of(&json));
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["kind"], "Version");
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn usage_errors_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let output = plugin(home.path())
        .args(["list", "-o", "xml"])
        .output()
        .unwrap();
    common::assert_refused(&output, "invalid value 'xml' for '--output <OUTPUT>'");
    let missing = plugin(home.path()).args(["list"]).output().unwrap();
    common::assert_refused(&missing, "no kubeconfig found");
}

#[test]
fn links_the_plugin_made_across_kubernetes_clusters_are_counted_and_named() {
    let world = World::settled(common::east_and_west(
        [common::es("search", "catalog")],
        [common::es("shop", "products")],
    ));
    world.ok(common::east_to_west(
        "link",
        "products",
        &["--yes", "--wait=false"],
    ));
    let doc = world.json(["list", "--context", "east", "-o", "json"]);
    let catalog = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "catalog")
        .unwrap()
        .clone();
    assert_eq!(catalog["remoteClusterCount"], 1, "{catalog}");
    let link = &catalog["remoteClusters"][0];
    assert_eq!(link["alias"], "products");
    assert_eq!(link["remote"], "west/shop/products");
    assert_eq!(link["securityModel"], "api-key");
    assert!(link["proxyAddress"].as_str().is_some(), "{link}");
    let table = world.ok(["list", "--context", "east", "-o", "wide"]);
    let rows = table_rows(&stdout_of(&table));
    let header = &rows[0];
    let row = rows.iter().find(|r| r[2] == "catalog").unwrap();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(row[column("REMOTES")], "1");
    assert_eq!(row[column("ALIASES")], "products");
}
