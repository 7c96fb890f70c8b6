//! The real `kubectl` works against the sandbox (discovery, tables, patches, errors).
//! Skipped with a message when `kubectl` is not on PATH.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use remote_cluster_sandbox::{ClusterConfig, ContextConfig, EsSeed, ResourceKey, Rule, Sandbox};

struct Kube {
    sandbox: Sandbox,
    _dir: tempfile::TempDir,
    home: PathBuf,
    kubeconfig: PathBuf,
}

/// These tests are about the real kubectl: without it they fail rather than pass unseen.
fn require_kubectl() {
    let found = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "kubectl is not on PATH: install it (.ci/run does)");
}

fn world() -> Kube {
    require_kubectl();
    let sandbox = Sandbox::builder()
        .cluster(
            ClusterConfig::new("east")
                .elasticsearch(
                    EsSeed::new("search", "products", "9.1.0").remote_cluster_server(true),
                )
                .elasticsearch(EsSeed::new("search", "catalog", "8.19.2").nodes(1))
                .elasticsearch(EsSeed::new("logging", "logs", "8.17.0").health("yellow"))
                .user(
                    "viewer",
                    vec![Rule::read_only_in(
                        "search",
                        "elasticsearch.k8s.elastic.co",
                        "elasticsearches",
                    )],
                ),
        )
        .cluster(ClusterConfig::new("west").elasticsearch(EsSeed::new(
            "analytics",
            "metrics",
            "9.1.0",
        )))
        .cluster(ClusterConfig::new("plain").without_eck())
        .context(ContextConfig::new("east-viewer", "east", "viewer").namespace("search"))
        .dead_context("gone")
        .start()
        .expect("sandbox starts");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sandbox.write_kubeconfig(&kubeconfig).unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    Kube {
        sandbox,
        home,
        kubeconfig,
        _dir: dir,
    }
}

fn run(home: &Path, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut cmd = Command::new("kubectl");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("kubectl runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

impl Kube {
    fn kubectl(&self, args: &[&str]) -> Output {
        run(&self.home, &self.kubeconfig, args, None)
    }
    /// `kubectl patch es products -n search --type=<patch_type> -p <patch>`.
    fn patch_products(&self, patch_type: &str, patch: &str) -> Output {
        let ty = format!("--type={patch_type}");
        self.kubectl(&["patch", "es", "products", "-n", "search", &ty, "-p", patch])
    }
    fn kubectl_in(&self, args: &[&str], stdin: &str) -> Output {
        run(&self.home, &self.kubeconfig, args, Some(stdin))
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// kubectl failed and said `text` on stderr.
#[track_caller]
fn fails_with(o: &Output, text: &str) {
    assert!(!o.status.success(), "succeeded: {}", out(o));
    assert!(err(o).contains(text), "{}", err(o));
}

#[test]
fn get_elasticsearches_prints_the_crd_columns() {
    let k = world();
    let o = k.kubectl(&["get", "elasticsearches", "-A"]);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        [
            "NAMESPACE",
            "NAME",
            "HEALTH",
            "NODES",
            "VERSION",
            "PHASE",
            "AGE"
        ]
    );
    assert_eq!(
        &lines[1][..6],
        ["logging", "logs", "yellow", "3", "8.17.0", "Ready"]
    );
    assert_eq!(
        &lines[2][..6],
        ["search", "catalog", "green", "1", "8.19.2", "Ready"]
    );
    assert_eq!(
        &lines[3][..6],
        ["search", "products", "green", "3", "9.1.0", "Ready"]
    );
    assert_eq!(lines.len(), 4);

    let o = k.kubectl(&["get", "es", "-n", "search", "-o", "name"]);
    assert_eq!(
        out(&o),
        "elasticsearch.elasticsearch.k8s.elastic.co/catalog\nelasticsearch.elasticsearch.k8s.elastic.co/products\n"
    );
    let o = k.kubectl(&[
        "--context",
        "west",
        "get",
        "es",
        "-A",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    assert_eq!(out(&o), "metrics");
}

#[test]
fn get_built_in_resources_and_the_crd() {
    let k = world();
    for r in ["secrets", "configmaps", "services", "pods", "events"] {
        let o = k.kubectl(&["get", r, "-A"]);
        assert!(o.status.success(), "{r}: {}", err(&o));
    }
    let o = k.kubectl(&["get", "namespaces"]);
    assert!(out(&o).contains("search"), "{}", out(&o));
    assert!(out(&o).contains("Active"));
    let o = k.kubectl(&[
        "get",
        "crd",
        "elasticsearches.elasticsearch.k8s.elastic.co",
        "-o",
        "yaml",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let yaml = out(&o);
    assert!(yaml.contains("openAPIV3Schema"));
    assert!(yaml.contains("remoteClusterServer"));
    assert!(yaml.contains("kind: CustomResourceDefinition"));

    let o = k.kubectl(&["--context", "plain", "get", "es", "-A"]);
    fails_with(&o, "the server doesn't have a resource type \"es\"");
}

#[test]
fn patch_types_behave_like_a_real_server() {
    let k = world();
    let east = k.sandbox.cluster("east");
    let o = k.patch_products("merge", r#"{"spec":{"version":"9.2.0"}}"#);
    assert!(o.status.success(), "{}", err(&o));
    let es = east
        .get(&ResourceKey::ELASTICSEARCHES, Some("search"), "products")
        .unwrap();
    assert_eq!(es["spec"]["version"], "9.2.0");
    assert_eq!(es["metadata"]["generation"], 2);

    let o = k.patch_products("merge", r#"{"spec":{"unknownThing":1}}"#);
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("(no change)"), "{}", out(&o));
    assert!(
        err(&o).contains("Warning: unknown field \"spec.unknownThing\""),
        "{}",
        err(&o)
    );

    let guarded = |version: &str| {
        format!(
            r#"[{{"op":"test","path":"/spec/version","value":"{version}"}},{{"op":"replace","path":"/spec/version","value":"9.3.0"}}]"#
        )
    };
    fails_with(&k.patch_products("json", &guarded("1.0.0")), "test failed");
    let o = k.patch_products("json", &guarded("9.2.0"));
    assert!(o.status.success(), "{}", err(&o));

    fails_with(
        &k.patch_products("strategic", r#"{"spec":{"version":"9.4.0"}}"#),
        "application/strategic-merge-patch+json is not supported by elasticsearch.k8s.elastic.co/v1, Kind=Elasticsearch: the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
    );
    let es = east
        .get(&ResourceKey::ELASTICSEARCHES, Some("search"), "products")
        .unwrap();
    assert_eq!(es["spec"]["version"], "9.3.0");
}

#[test]
fn apply_validates_on_the_server() {
    let k = world();
    let east = k.sandbox.cluster("east");
    let doc = |name: &str, version: &str, extra: &str| {
        format!(
            "apiVersion: elasticsearch.k8s.elastic.co/v1\nkind: Elasticsearch\nmetadata:\n  name: {name}\n  namespace: search\nspec:\n  version: {version}\n  nodeSets:\n  - name: default\n    count: 1\n{extra}"
        )
    };
    let o = k.kubectl_in(&["apply", "-f", "-"], &doc("fresh", "9.1.0", ""));
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        east.get(&ResourceKey::ELASTICSEARCHES, Some("search"), "fresh")
            .is_some()
    );

    let o = k.kubectl_in(
        &["apply", "--dry-run=server", "-f", "-"],
        &doc("dry", "9.1.0", ""),
    );
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("(server dry run)"));
    assert!(
        east.get(&ResourceKey::ELASTICSEARCHES, Some("search"), "dry")
            .is_none()
    );

    let o = k.kubectl_in(
        &["apply", "-f", "-"],
        &doc("strict", "9.1.0", "  bogus: 1\n"),
    );
    fails_with(&o, "strict decoding error: unknown field \"spec.bogus\"");

    let o = k.kubectl_in(
        &["apply", "-f", "-"],
        &doc(
            "old",
            "8.9.0",
            "  remoteClusterServer:\n    enabled: true\n",
        ),
    );
    fails_with(
        &o,
        "admission webhook \"elastic-es-validation-v1.k8s.elastic.co\" denied the request",
    );

    let o = k.kubectl_in(
        &["apply", "-f", "-"],
        &doc("typed", "9.1.0", "").replace("count: 1", "count: three"),
    );
    fails_with(&o, "spec.nodeSets[0].count");
}

#[test]
fn rbac_and_dead_contexts() {
    let k = world();
    let o = k.kubectl(&["--context", "east-viewer", "get", "es"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("products"));
    let o = k.kubectl(&["--context", "east-viewer", "get", "es", "-A"]);
    assert!(!o.status.success());
    assert_eq!(
        err(&o).trim(),
        "Error from server (Forbidden): elasticsearches.elasticsearch.k8s.elastic.co is forbidden: User \"viewer\" cannot list resource \"elasticsearches\" in API group \"elasticsearch.k8s.elastic.co\" at the cluster scope"
    );
    let o = k.kubectl(&["--context", "east-viewer", "get", "secrets"]);
    fails_with(
        &o,
        "User \"viewer\" cannot list resource \"secrets\" in API group \"\" in the namespace \"search\"",
    );

    let o = k.kubectl(&[
        "--context",
        "east-viewer",
        "auth",
        "can-i",
        "list",
        "elasticsearches.elasticsearch.k8s.elastic.co",
    ]);
    assert_eq!(out(&o).trim(), "yes");
    let o = k.kubectl(&[
        "--context",
        "east-viewer",
        "auth",
        "can-i",
        "patch",
        "elasticsearches.elasticsearch.k8s.elastic.co",
    ]);
    assert_eq!(out(&o).trim(), "no");

    let o = k.kubectl(&["--context", "gone", "get", "es", "--request-timeout=5s"]);
    fails_with(&o, "connection refused");
}

#[test]
fn built_in_objects_can_be_created_patched_and_applied() {
    let k = world();
    let east = k.sandbox.cluster("east");
    // kubectl sends these bodies as protobuf.
    for args in [
        &["create", "namespace", "team-x"][..],
        &[
            "create",
            "secret",
            "generic",
            "creds",
            "-n",
            "team-x",
            "--from-literal=password=hunter2",
        ],
        &[
            "create",
            "configmap",
            "cas",
            "-n",
            "team-x",
            "--from-literal=ca.crt=PEM",
        ],
        &[
            "label",
            "secret",
            "creds",
            "-n",
            "team-x",
            "eck.k8s.elastic.co/watched=true",
        ],
        &[
            "patch",
            "secret",
            "creds",
            "-n",
            "team-x",
            "-p",
            r#"{"stringData":{"extra":"x"}}"#,
        ],
    ] {
        let o = k.kubectl(args);
        assert!(o.status.success(), "{args:?}: {}", err(&o));
    }
    let secret = east
        .get(&ResourceKey::SECRETS, Some("team-x"), "creds")
        .unwrap();
    assert_eq!(secret["data"]["password"], "aHVudGVyMg==");
    assert_eq!(secret["data"]["extra"], "eA==");
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(
        secret["metadata"]["labels"]["eck.k8s.elastic.co/watched"],
        "true"
    );
    assert_eq!(
        east.get(&ResourceKey::CONFIGMAPS, Some("team-x"), "cas")
            .unwrap()["data"]["ca.crt"],
        "PEM"
    );
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  namespace: team-x\ndata:\n  ca.crt: one\n";
    assert!(k.kubectl_in(&["apply", "-f", "-"], cm).status.success());
    let o = k.kubectl_in(&["apply", "-f", "-"], &cm.replace("one", "two"));
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        east.get(&ResourceKey::CONFIGMAPS, Some("team-x"), "applied")
            .unwrap()["data"]["ca.crt"],
        "two"
    );
    let o = k.kubectl(&["delete", "namespace", "team-x"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        east.get(&ResourceKey::SECRETS, Some("team-x"), "creds")
            .is_none()
    );
}
