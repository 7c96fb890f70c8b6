//! The `remote-cluster-sandbox` binary: prints `ready`, writes the kubeconfig and the request
//! log, stops on SIGTERM; with `--shell`, runs a shell pointed at the clusters.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_remote-cluster-sandbox");

struct Running {
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary and waits for its `ready` line.
fn start(args: &[&str]) -> Running {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap_or_default());
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("a line on stdout within 30s");
    assert_eq!(line, "ready");
    Running { child }
}

fn kubeconfig(path: &Path) -> Value {
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn names(doc: &Value, key: &str) -> Vec<String> {
    doc[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

/// The real kubectl against the sandbox; without kubectl the tests fail rather than pass unseen.
fn kubectl(home: &Path, kubeconfig: &Path, args: &[&str]) -> String {
    let o = Command::new("kubectl")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .output()
        .expect("kubectl is not on PATH: install it (.ci/run does)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `kubectl --context kind-west get <what> -n analytics -o <output>` (kubectl found).
fn west_analytics(home: &Path, kubeconfig: &Path, what: &str, output: &str) -> String {
    let args = [
        "--context",
        "kind-west",
        "get",
        what,
        "-n",
        "analytics",
        "-o",
        output,
    ];
    kubectl(home, kubeconfig, &args)
}

/// The ECK licence level the operator wrote (`None` without kubectl).
fn license_level(home: &Path, kubeconfig: &Path) -> String {
    let jsonpath = "jsonpath={.data.eck_license_level}";
    let args = [
        "get",
        "configmap",
        "-n",
        "elastic-system",
        "elastic-licensing",
        "-o",
        jsonpath,
    ];
    kubectl(home, kubeconfig, &args)
}

#[test]
fn demo_prints_ready_writes_kubeconfig_and_logs_requests() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let logs = dir.path().join("logs");
    let mut running = start(&[
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--request-log",
        logs.to_str().unwrap(),
    ]);
    let doc = kubeconfig(&kc);
    assert_eq!(
        names(&doc, "contexts"),
        [
            "kind-east",
            "kind-west",
            "kind-east-search",
            "kind-east-viewer"
        ]
    );
    assert_eq!(doc["current-context"], "kind-east");
    let servers: Vec<String> = doc["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cluster"]["server"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(servers.len(), 2);

    {
        let text = kubectl(dir.path(), &kc, &["get", "es", "-A", "-o", "name"]);
        assert_eq!(text.lines().count(), 3, "{text}");
        let west = kubectl(
            dir.path(),
            &kc,
            &["--context", "kind-west", "get", "es", "-A", "-o", "json"],
        );
        let list: Value = serde_json::from_str(&west).unwrap();
        let reports = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["metadata"]["name"] == "reports")
            .unwrap();
        assert_eq!(reports["spec"]["remoteClusters"][0]["name"], "metrics");
        // The fake ECK operator made the pods, Secrets and Services, and linked reports to
        // metrics (API key Secret, annotation).
        let pods = west_analytics(dir.path(), &kc, "pods", "name");
        assert!(pods.contains("pod/metrics-es-default-0"), "{pods}");
        let secrets = west_analytics(dir.path(), &kc, "secrets", "name");
        for s in [
            "secret/metrics-es-elastic-user",
            "secret/metrics-es-http-certs-public",
            "secret/reports-es-remote-api-keys",
            "secret/reports-analytics-metrics-es-remote-ca",
        ] {
            assert!(secrets.contains(s), "{s} in {secrets}");
        }
        let svcs = west_analytics(dir.path(), &kc, "services", "name");
        assert!(svcs.contains("service/metrics-es-remote-cluster"), "{svcs}");
        assert_eq!(license_level(dir.path(), &kc), "enterprise");
        let log = std::fs::read_to_string(logs.join("kind-east.jsonl")).unwrap();
        let first: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
        for field in [
            "cluster",
            "user",
            "method",
            "path",
            "query",
            "content_type",
            "status",
        ] {
            assert!(first.get(field).is_some(), "{field} missing in {first}");
        }
        assert_eq!(first["cluster"], "kind-east");
        assert_eq!(first["user"], "admin");
        assert!(logs.join("kind-west.jsonl").exists());
    }

    // SIGTERM stops it cleanly.
    let pid = running.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(s) = running.child.try_wait().unwrap() {
            assert!(s.success(), "exit status {s}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn basic_license_flag_reaches_the_operator() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let _running = start(&["--kubeconfig", kc.to_str().unwrap(), "--license", "basic"]);
    {
        let lic = license_level(dir.path(), &kc);
        assert_eq!(lic, "basic");
        let events = west_analytics(dir.path(), &kc, "events", "json");
        let list: Value = serde_json::from_str(&events).unwrap();
        let reasons: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["reason"].as_str().unwrap())
            .collect();
        assert_eq!(reasons, ["AssociationError"]);
        let secrets = west_analytics(dir.path(), &kc, "secrets", "name");
        assert!(!secrets.contains("remote-api-keys"), "{secrets}");
        assert!(
            !secrets.contains("reports-analytics-metrics-es-remote-ca"),
            "{secrets}"
        );
    }
}

#[test]
fn bench_and_empty_scenarios_with_more_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kc-bench");
    let _running = start(&[
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--clusters",
        "3",
        "--scenario",
        "bench",
        "--es-per-cluster",
        "12",
        "--latency-ms",
        "1",
    ]);
    let doc = kubeconfig(&kc);
    assert_eq!(
        names(&doc, "contexts"),
        ["cluster-01", "cluster-02", "cluster-03"]
    );
    {
        let text = kubectl(
            dir.path(),
            &kc,
            &["--context", "cluster-02", "get", "es", "-A", "-o", "name"],
        );
        assert_eq!(text.lines().count(), 12);
        let ns = kubectl(dir.path(), &kc, &["get", "ns", "-o", "name"]);
        assert_eq!(ns.lines().filter(|l| l.contains("bench-")).count(), 5);
    }

    let kc2 = dir.path().join("kc-empty");
    let _empty = start(&[
        "--kubeconfig",
        kc2.to_str().unwrap(),
        "--scenario",
        "empty",
        "--clusters",
        "1",
    ]);
    assert_eq!(names(&kubeconfig(&kc2), "contexts"), ["kind-east"]);
    let text = kubectl(dir.path(), &kc2, &["get", "es", "-A", "-o", "name"]);
    assert_eq!(text, "");
}

/// The plugin beside the sandbox binary, where `--shell` puts it on `PATH`: `cargo test
/// --workspace` builds it; a run of this crate alone may not have, so it is built here.
fn plugin_beside_the_sandbox() -> std::path::PathBuf {
    let dir = Path::new(BIN).parent().unwrap();
    let plugin = dir.join(format!(
        "kubectl-remote_cluster{}",
        std::env::consts::EXE_SUFFIX
    ));
    if !plugin.is_file() {
        let profile = match dir.file_name().unwrap().to_str().unwrap() {
            "debug" => "dev",
            other => other,
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--locked", "--bin", "kubectl-remote_cluster"])
            .arg("--manifest-path")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
            .arg("--target-dir")
            .arg(dir.parent().unwrap())
            .args(["--profile", profile])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo build --bin kubectl-remote_cluster");
    }
    assert!(plugin.is_file(), "{} was not built", plugin.display());
    plugin
}

/// Runs `remote-cluster-sandbox --scenario demo --shell` with `SHELL=/bin/sh` reading `script`
/// from stdin, temporary files under `tmp`; returns its exit code, stdout and stderr.
fn demo_shell(tmp: &Path, script: &str) -> (Option<i32>, String, String) {
    let mut child = Command::new(BIN)
        .args(["--scenario", "demo", "--shell"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", tmp)
        .env("TMPDIR", tmp)
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn shell_runs_the_plugin_against_the_demo_and_cleans_up() {
    plugin_beside_the_sandbox();
    let dir = tempfile::tempdir().unwrap();
    let script = "kubectl remote-cluster list --all-contexts\necho \"KUBECONFIG=$KUBECONFIG\"\n";
    let (code, stdout, stderr) = demo_shell(dir.path(), script);
    assert_eq!(code, Some(0), "{stderr}");
    for name in [
        "products", "catalog", "logs", "metrics", "reports", "archive",
    ] {
        assert!(stdout.contains(name), "{name} in {stdout}");
    }
    assert!(stdout.contains("kind-east") && stdout.contains("kind-west"));
    assert!(!stdout.lines().any(|l| l == "ready"), "{stdout}");
    // The tour on stderr, with names from the demo.
    for line in [
        "kubectl remote-cluster list --all-contexts",
        "kubectl remote-cluster describe reports -n analytics --context kind-west",
        "kubectl remote-cluster link products catalog -n search --dry-run=client",
    ] {
        assert!(stderr.contains(line), "{line} in {stderr}");
    }
    // KUBECONFIG was a file in a new temporary directory, removed when the shell exited.
    let kc = stderr
        .lines()
        .find_map(|l| l.strip_prefix("kubeconfig written to "))
        .expect("the kubeconfig path on stderr");
    assert!(stdout.contains(&format!("KUBECONFIG={kc}")), "{stdout}");
    let kc_dir = Path::new(kc).parent().unwrap();
    assert!(kc_dir.starts_with(dir.path()), "{kc} under TMPDIR");
    assert!(!kc_dir.exists(), "{} left behind", kc_dir.display());

    // The shell's exit code is the sandbox's.
    let (code, stdout, stderr) = demo_shell(dir.path(), "exit 3\n");
    assert_eq!(code, Some(3), "{stderr}");
    assert_eq!(stdout, "");
}
