//! Completion through the real kubectl (`kubectl __complete remote-cluster …` runs
//! `kubectl_complete-remote_cluster`), the shell scripts, the helper install and the man page.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{COMMANDS, World, plugin, stderr_of, stdout_of};
use remote_cluster_sandbox::{ClusterConfig, EsSeed, Sandbox};
use tempfile::TempDir;

const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-remote_cluster");
const HELPER: &str = env!("CARGO_BIN_EXE_kubectl_complete-remote_cluster");

/// kubectl from the test's PATH, by absolute path (the scrubbed PATH below does not search it).
/// Without kubectl the tests fail rather than pass unseen.
fn kubectl() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|p| p.is_file())
        .expect("kubectl is not on PATH: install it (.ci/run does)")
}

/// A directory holding only the two executables, as krew plus the helper install leave them.
fn plugin_dir() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for exe in [PLUGIN, HELPER] {
        let name = Path::new(exe).file_name().unwrap();
        std::os::unix::fs::symlink(exe, dir.path().join(name)).unwrap();
    }
    dir
}

/// What kubectl printed for `kubectl __complete remote-cluster <words>`: candidates and directive.
struct Answer {
    lines: Vec<String>,
    directive: String,
    elapsed: Duration,
}

impl Answer {
    fn values(&self) -> Vec<&str> {
        self.lines
            .iter()
            .map(|l| l.split('\t').next().unwrap())
            .collect()
    }

    /// Requires every one of `wanted` among the candidates, and the default directive.
    fn assert_offers(&self, wanted: &[&str]) {
        let values = self.values();
        for value in wanted {
            assert!(values.contains(value), "{value} missing: {values:?}");
        }
        assert_eq!(self.directive, ":4");
    }
}

/// Every command with a manual page of its own (`man` has none).
fn commands_with_pages() -> impl Iterator<Item = &'static str> {
    COMMANDS.into_iter().filter(|command| *command != "man")
}

fn complete_with(kubectl: &Path, kubeconfig: Option<&Path>, words: &[&str]) -> Answer {
    let plugins = plugin_dir();
    let home = tempfile::tempdir().unwrap();
    let path =
        std::env::join_paths([plugins.path(), Path::new("/usr/bin"), Path::new("/bin")]).unwrap();
    let mut cmd = Command::new(kubectl);
    cmd.env_clear()
        .env("HOME", home.path())
        .env("PATH", path)
        .arg("__complete")
        .arg("remote-cluster")
        .args(words);
    if let Some(kubeconfig) = kubeconfig {
        cmd.env("KUBECONFIG", kubeconfig);
    }
    let started = Instant::now();
    let output: Output = cmd.output().unwrap();
    let elapsed = started.elapsed();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("About to call:") && stderr.contains("kubectl_complete-remote_cluster"),
        "kubectl did not run the helper: {stderr}"
    );
    let stdout = stdout_of(&output);
    let mut lines: Vec<String> = stdout.lines().map(str::to_string).collect();
    let directive = lines.pop().unwrap_or_default();
    Answer {
        lines,
        directive,
        elapsed,
    }
}

fn world() -> World {
    World::start(
        Sandbox::builder()
            .cluster(
                ClusterConfig::new("east")
                    .elasticsearch(
                        EsSeed::new("search", "products", "9.1.0").remote_cluster_server(true),
                    )
                    .elasticsearch(
                        EsSeed::new("search", "catalog", "9.1.0")
                            .remote_cluster("prod", "search", "products", true)
                            .remote_cluster("shop", "search", "products", true)
                            // Links across Kubernetes clusters and to external clusters are
                            // only in the plugin's record.
                            .annotation(
                                "remote-cluster.kubectl-plugin.dev/links",
                                r#"{"analytics":{"remoteContext":"west","remoteNamespace":"default","remoteName":"analytics","security":"api-key"},"cloud":{"remoteContext":"","remoteNamespace":"","remoteName":"cloud","security":"api-key"}}"#,
                            ),
                    )
                    .elasticsearch(EsSeed::new("logging", "logs", "8.19.2")),
            )
            .cluster(ClusterConfig::new("west").elasticsearch(EsSeed::new(
                "default",
                "analytics",
                "9.2.0",
            ))),
    )
}

#[test]
fn kubectl_completes_subcommands_through_the_helper() {
    let kubectl = kubectl();
    let answer = complete_with(&kubectl, None, &[""]);
    answer.assert_offers(&COMMANDS);
    let values = answer.values();
    assert!(
        values.contains(&"man"),
        "man is listed in help, so completed too"
    );
    assert!(
        answer
            .lines
            .iter()
            .any(|l| l.starts_with("list\t") && l.contains("Elasticsearch")),
        "descriptions follow a tab: {:?}",
        answer.lines
    );

    let partial = complete_with(&kubectl, None, &["de"]);
    assert_eq!(partial.values(), ["describe"]);
}

#[test]
fn kubectl_completes_flags_and_their_fixed_values() {
    let kubectl = kubectl();
    let flags = complete_with(&kubectl, None, &["list", "--"]);
    flags.assert_offers(&[
        "--all-contexts",
        "--context",
        "--output",
        "--kubeconfig",
        "--namespace",
    ]);

    let output = complete_with(&kubectl, None, &["list", "-o", ""]);
    assert_eq!(output.values(), ["table", "wide", "json", "yaml", "name"]);
    assert_eq!(output.directive, ":4");

    let dry_run = complete_with(&kubectl, None, &["link", "a", "b", "--dry-run="]);
    assert_eq!(
        dry_run.values(),
        ["--dry-run=none", "--dry-run=client", "--dry-run=server"]
    );

    let security = complete_with(&kubectl, None, &["link", "--security", ""]);
    assert_eq!(security.values(), ["api-key", "certificate"]);

    // Paths are left to the shell: directive 0 (ShellCompDirectiveDefault).
    let kubeconfig = complete_with(&kubectl, None, &["list", "--kubeconfig", ""]);
    assert!(kubeconfig.lines.is_empty());
    assert_eq!(kubeconfig.directive, ":0");
}

#[test]
fn kubectl_completes_contexts_from_the_kubeconfig() {
    let kubectl = kubectl();
    let world = world();
    let kubeconfig = Some(world.kubeconfig.as_path());
    let answer = complete_with(&kubectl, kubeconfig, &["list", "--context", ""]);
    assert_eq!(answer.values(), ["east", "west"]);
    assert_eq!(answer.directive, ":4");
    // The second item of a list leaves out what was chosen already.
    let second = complete_with(&kubectl, kubeconfig, &["list", "--context", "east,"]);
    assert_eq!(second.values(), ["east,west"]);
    let equals = complete_with(&kubectl, kubeconfig, &["describe", "--context=w"]);
    assert_eq!(equals.values(), ["--context=west"]);
}

#[test]
fn kubectl_completes_elasticsearch_names_in_the_chosen_context_and_namespace() {
    let kubectl = kubectl();
    let world = world();
    let kubeconfig = Some(world.kubeconfig.as_path());

    let describe = complete_with(&kubectl, kubeconfig, &["describe", "-n", "search", ""]);
    assert_eq!(describe.values(), ["catalog", "products"]);
    assert_eq!(describe.directive, ":4");
    assert!(describe.lines[0].contains("9.1.0"), "{:?}", describe.lines);

    let other_namespace = complete_with(&kubectl, kubeconfig, &["describe", "-n", "logging", ""]);
    assert_eq!(other_namespace.values(), ["logs"]);

    let west = complete_with(
        &kubectl,
        kubeconfig,
        &["describe", "--context", "west", "-n", "default", "an"],
    );
    assert_eq!(west.values(), ["analytics"]);

    // link LOCAL REMOTE: the remote side honours --remote-namespace.
    let local = complete_with(&kubectl, kubeconfig, &["link", "-n", "search", "c"]);
    assert_eq!(local.values(), ["catalog"]);
    let remote = complete_with(
        &kubectl,
        kubeconfig,
        &[
            "link",
            "-n",
            "search",
            "catalog",
            "--remote-namespace",
            "logging",
            "",
        ],
    );
    assert_eq!(remote.values(), ["logs"]);

    // unlink LOCAL <TAB>: the aliases configured on LOCAL.
    let aliases = complete_with(
        &kubectl,
        kubeconfig,
        &["unlink", "-n", "search", "catalog", ""],
    );
    assert_eq!(aliases.values(), ["prod", "shop", "analytics", "cloud"]);
    assert!(
        aliases.lines[0].contains("search/products"),
        "{:?}",
        aliases.lines
    );
    assert!(
        aliases.lines[2].contains("default/analytics in context west")
            && aliases.lines[3].contains("outside Kubernetes"),
        "{:?}",
        aliases.lines
    );
    let first = complete_with(&kubectl, kubeconfig, &["unlink", "-n", "search", ""]);
    assert_eq!(first.values(), ["catalog", "products"]);
}

#[test]
fn kubectl_completes_namespaces() {
    let kubectl = kubectl();
    let world = world();
    let answer = complete_with(&kubectl, Some(&world.kubeconfig), &["describe", "-n", ""]);
    answer.assert_offers(&["search", "logging"]);
}

#[test]
fn an_unreachable_cluster_gives_no_candidates_quickly() {
    let kubectl = kubectl();
    let world = World::start(
        Sandbox::builder()
            .cluster(
                ClusterConfig::new("east").elasticsearch(EsSeed::new("search", "catalog", "9.1.0")),
            )
            .dead_context("gone"),
    );
    let answer = complete_with(
        &kubectl,
        Some(&world.kubeconfig),
        &["describe", "--context", "gone", "-n", "search", ""],
    );
    assert!(answer.lines.is_empty(), "{:?}", answer.lines);
    assert_eq!(answer.directive, ":4");
    assert!(
        answer.elapsed < Duration::from_secs(10),
        "{:?}",
        answer.elapsed
    );
}

#[test]
fn helper_speaks_the_protocol_without_kubectl() {
    let home = tempfile::tempdir().unwrap();
    let output = Command::new(HELPER)
        .env_clear()
        .env("HOME", home.path())
        .args(["version", "-o", ""])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output), "json\nyaml\n:4\n");
    // Cobra programs are called as `prog __complete …`; the helper accepts that too.
    let output = Command::new(HELPER)
        .env_clear()
        .env("HOME", home.path())
        .args(["__complete", "vers"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(
        stdout_of(&output),
        "version\tPrint the plugin's version\n:4\n"
    );
}

#[test]
fn shell_scripts_complete_the_installed_executable_name() {
    let home = tempfile::tempdir().unwrap();
    let script = |shell: &str| {
        let output = plugin(home.path())
            .args(["completion", shell])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
        stdout_of(&output)
    };
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let script = script(shell);
        assert!(script.contains("kubectl-remote_cluster"), "{shell}");
        assert!(
            !script.contains("kubectl remote-cluster"),
            "{shell}: a name with a space"
        );
        assert!(script.contains("unlink"), "{shell}");
    }
    let bash = script("bash");
    // bash accepts the script and registers it for the executable.
    let check = Command::new("bash")
        .arg("-c")
        .arg("source /dev/stdin && complete -p kubectl-remote_cluster")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(bash.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(check.status.success(), "{}", stderr_of(&check));
    assert!(stdout_of(&check).contains("kubectl-remote_cluster"));

    let missing = plugin(home.path()).arg("completion").output().unwrap();
    common::assert_refused(&missing, "<SHELL>");
}

#[test]
fn install_kubectl_helper_copies_the_helper() {
    // The plugin finds the helper next to its own executable, as in the release archive.
    let store = tempfile::tempdir().unwrap();
    let exe = store.path().join("kubectl-remote_cluster");
    std::fs::copy(PLUGIN, &exe).unwrap();
    std::fs::copy(HELPER, store.path().join("kubectl_complete-remote_cluster")).unwrap();
    let bin = tempfile::tempdir().unwrap();
    let output = Command::new(&exe)
        .env_clear()
        .env("HOME", store.path())
        .arg("completion")
        .arg(format!("--install-kubectl-helper={}", bin.path().display()))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert!(stdout_of(&output).is_empty(), "messages go to stderr");
    let installed = bin.path().join("kubectl_complete-remote_cluster");
    let answer = Command::new(&installed).arg("unl").output().unwrap();
    assert!(answer.status.success(), "{}", stderr_of(&answer));
    assert_eq!(
        stdout_of(&answer),
        "unlink\tRemove a remote cluster link made by this plugin\n:4\n"
    );

    // Without the helper beside it, the error says what to do.
    let lonely = tempfile::tempdir().unwrap();
    let alone = lonely.path().join("kubectl-remote_cluster");
    std::fs::copy(PLUGIN, &alone).unwrap();
    let output = Command::new(&alone)
        .env_clear()
        .env("HOME", lonely.path())
        .args(["completion", "--install-kubectl-helper"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains("kubectl_complete-remote_cluster is not next to"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn man_page_documents_every_command() {
    let home = tempfile::tempdir().unwrap();
    let output = plugin(home.path()).arg("man").output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let page = stdout_of(&output);
    assert!(
        page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH"),
        "{page}"
    );
    assert!(page.contains(".TH kubectl-remote_cluster 1"), "{page}");
    for command in commands_with_pages() {
        assert!(page.contains(command), "{command} missing");
        assert!(
            page.contains(&format!("kubectl\\-remote_cluster\\-{command}(1)")),
            "{command} is not among the SUBCOMMANDS"
        );
    }
    assert!(page.contains("\\-\\-context"));

    let dir = tempfile::tempdir().unwrap();
    let output = plugin(home.path())
        .args(["man", "--out-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    for page in [
        "kubectl-remote_cluster.1",
        "kubectl-remote_cluster-list.1",
        "kubectl-remote_cluster-unlink.1",
    ] {
        assert!(dir.path().join(page).is_file(), "{page}");
    }
    for command in commands_with_pages() {
        let page = format!("kubectl-remote_cluster-{command}.1");
        assert!(dir.path().join(&page).is_file(), "{page}");
    }
    assert!(!dir.path().join("kubectl-remote_cluster-man.1").exists());
}
