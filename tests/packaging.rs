//! The krew manifest against krew's validation rules, and the release script's archives.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;
use serde::Deserialize;

const MANIFEST: &str = "krew/remote-cluster.yaml";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The platforms we ship, as krew names them.
const SHIPPED: [(&str, &str); 5] = [
    ("linux", "amd64"),
    ("linux", "arm64"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
    ("windows", "amd64"),
];

/// Every os/arch pair krew's validator knows, to evaluate selectors against.
const KREW_PLATFORMS: [(&str, &str); 12] = [
    ("windows", "386"),
    ("windows", "amd64"),
    ("windows", "arm64"),
    ("linux", "386"),
    ("linux", "amd64"),
    ("linux", "arm"),
    ("linux", "arm64"),
    ("linux", "ppc64le"),
    ("darwin", "386"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
    ("linux", "s390x"),
];

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Plugin {
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: Spec,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Metadata {
    name: String,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Spec {
    version: String,
    homepage: Option<String>,
    short_description: String,
    description: Option<String>,
    caveats: Option<String>,
    platforms: Vec<Platform>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Platform {
    selector: Selector,
    uri: String,
    sha256: String,
    bin: String,
    files: Option<Vec<FileOperation>>,
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Selector {
    match_labels: Option<BTreeMap<String, String>>,
    match_expressions: Option<Vec<Requirement>>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Requirement {
    key: String,
    operator: String,
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct FileOperation {
    from: Option<String>,
    to: Option<String>,
}

impl Selector {
    fn keys(&self) -> Vec<&str> {
        let labels = self.match_labels.iter().flat_map(|m| m.keys());
        let expressions = self.match_expressions.iter().flatten().map(|r| &r.key);
        labels.chain(expressions).map(String::as_str).collect()
    }

    /// Kubernetes label-selector semantics over the labels `os` and `arch`.
    fn matches(&self, os: &str, arch: &str) -> bool {
        let label = |key: &str| match key {
            "os" => Some(os),
            "arch" => Some(arch),
            _ => None,
        };
        let labels_ok = self
            .match_labels
            .iter()
            .flatten()
            .all(|(k, v)| label(k) == Some(v.as_str()));
        let expressions_ok = self.match_expressions.iter().flatten().all(|r| {
            let value = label(&r.key);
            match r.operator.as_str() {
                "In" => value.is_some_and(|v| r.values.iter().any(|x| x == v)),
                "NotIn" => value.is_none_or(|v| r.values.iter().all(|x| x != v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        });
        labels_ok && expressions_ok
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read_manifest(path: &Path) -> Plugin {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Every rule of krew's validator (and the krew-index review) that the manifest breaks.
fn violations(plugin: &Plugin, file: &Path) -> Vec<String> {
    let mut bad = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            bad.push(what);
        }
    };
    check(
        plugin.api_version == "krew.googlecontainertools.github.com/v1alpha2",
        format!("apiVersion {}", plugin.api_version),
    );
    check(plugin.kind == "Plugin", format!("kind {}", plugin.kind));

    let name = &plugin.metadata.name;
    let stem = file.file_stem().unwrap().to_string_lossy();
    check(
        file.extension().is_some_and(|e| e == "yaml"),
        "the file must end in .yaml".into(),
    );
    check(
        *name == stem,
        format!("metadata.name {name} != file {stem}"),
    );
    check(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        format!("name {name}: only letters, digits, - and _"),
    );
    let upper = name.to_ascii_uppercase();
    let reserved = ["CON", "PRN", "AUX", "NUL"].contains(&upper.as_str())
        || ((upper.starts_with("COM") || upper.starts_with("LPT"))
            && upper.len() == 4
            && upper.as_bytes()[3].is_ascii_digit());
    check(!reserved, format!("name {name} is a Windows device name"));

    let spec = &plugin.spec;
    let semver_ok = spec
        .version
        .strip_prefix('v')
        .is_some_and(|v| semver::Version::parse(v).is_ok());
    check(
        semver_ok,
        format!("version {} is not v<semver>", spec.version),
    );
    check(
        spec.version == format!("v{VERSION}"),
        format!("version {} != Cargo's v{VERSION}", spec.version),
    );
    check(
        spec.homepage
            .as_deref()
            .is_some_and(|h| h.starts_with("https://")),
        "homepage must be an https URL".into(),
    );
    let short = &spec.short_description;
    check(
        !short.trim().is_empty() && short.chars().count() < 50 && !short.contains('\n'),
        format!("shortDescription {short:?}: one line under 50 characters"),
    );
    match &spec.description {
        Some(d) => check(
            d.lines().all(|l| l.chars().count() <= 80),
            "description lines are wrapped at 80 columns".into(),
        ),
        None => check(false, "description is missing".into()),
    }

    check(!spec.platforms.is_empty(), "platforms is empty".into());
    let mut matched: Vec<Vec<(&str, &str)>> = Vec::new();
    for (i, p) in spec.platforms.iter().enumerate() {
        let keys = p.selector.keys();
        check(!keys.is_empty(), format!("platform {i}: empty selector"));
        check(
            keys.iter().all(|k| *k == "os" || *k == "arch"),
            format!("platform {i}: selector keys {keys:?}, only os and arch"),
        );
        let here: Vec<(&str, &str)> = KREW_PLATFORMS
            .iter()
            .copied()
            .filter(|(os, arch)| p.selector.matches(os, arch))
            .collect();
        check(
            !here.is_empty(),
            format!("platform {i}: selector matches nothing"),
        );
        for (j, earlier) in matched.iter().enumerate() {
            let overlap: Vec<_> = here.iter().filter(|x| earlier.contains(x)).collect();
            check(
                overlap.is_empty(),
                format!("platforms {j} and {i} overlap on {overlap:?}"),
            );
        }
        matched.push(here.clone());

        check(
            is_sha256(&p.sha256),
            format!("platform {i}: sha256 {} is not 64 lowercase hex", p.sha256),
        );
        check(
            p.uri.starts_with("https://")
                && (p.uri.ends_with(".tar.gz") || p.uri.ends_with(".zip")),
            format!("platform {i}: uri {} is not an https .tar.gz/.zip", p.uri),
        );
        let windows = here.iter().all(|(os, _)| *os == "windows");
        let bin = if windows {
            "kubectl-remote_cluster.exe"
        } else {
            "kubectl-remote_cluster"
        };
        check(
            p.bin == bin,
            format!("platform {i}: bin {} != {bin}", p.bin),
        );
        if let [(os, arch)] = here.as_slice() {
            let ext = if windows { "zip" } else { "tar.gz" };
            let archive = format!(
                "/{}/kubectl-remote_cluster_{VERSION}_{os}_{arch}.{ext}",
                spec.version
            );
            check(
                p.uri.ends_with(&archive),
                format!("platform {i}: uri {} does not end {archive}", p.uri),
            );
        }
        if let Some(files) = &p.files {
            check(!files.is_empty(), format!("platform {i}: files is empty"));
            for f in files {
                check(
                    f.from.as_deref().is_some_and(|s| !s.is_empty())
                        && f.to.as_deref().is_some_and(|s| !s.is_empty()),
                    format!("platform {i}: a files entry needs from and to"),
                );
            }
            check(
                files
                    .iter()
                    .any(|f| f.from.as_deref().is_some_and(|s| s.contains("LICENSE"))),
                format!("platform {i}: files must install the LICENSE"),
            );
        }
    }
    for (os, arch) in SHIPPED {
        let covered = matched.iter().filter(|m| m.contains(&(os, arch))).count();
        check(
            covered == 1,
            format!("{os}/{arch} is covered {covered} times"),
        );
    }
    bad
}

#[test]
fn the_manifest_follows_every_krew_rule() {
    let path = root().join(MANIFEST);
    let plugin = read_manifest(&path);
    assert_eq!(violations(&plugin, &path), Vec::<String>::new());
    // Five platforms, one each.
    assert_eq!(plugin.spec.platforms.len(), SHIPPED.len());
}

#[test]
fn the_checker_catches_broken_manifests() {
    let path = root().join(MANIFEST);
    let good = read_manifest(&path);

    let mut upper = good.clone();
    upper.spec.platforms[0].sha256 = upper.spec.platforms[0].sha256.to_ascii_uppercase();
    upper.spec.platforms[0].sha256.replace_range(0..1, "A");
    assert!(violations(&upper, &path)[0].contains("lowercase hex"));

    let mut overlap = good.clone();
    overlap.spec.platforms[1].selector = Selector {
        match_labels: Some(BTreeMap::from([("os".into(), "linux".into())])),
        match_expressions: None,
    };
    let found = violations(&overlap, &path);
    assert!(found.iter().any(|v| v.contains("overlap")), "{found:?}");

    let mut other_key = good.clone();
    other_key.spec.platforms[0].selector.match_expressions = Some(vec![Requirement {
        key: "distro".into(),
        operator: "Exists".into(),
        values: vec![],
    }]);
    let found = violations(&other_key, &path);
    assert!(
        found.iter().any(|v| v.contains("only os and arch")),
        "{found:?}"
    );

    let mut renamed = good.clone();
    renamed.metadata.name = "eck-remote-cluster".into();
    renamed.spec.short_description = "x".repeat(50);
    renamed.spec.version = "0.1.0".into();
    renamed.spec.platforms[4].bin = "kubectl-remote_cluster".into();
    renamed.spec.platforms[2].uri = "https://example.com/a.tar.xz".into();
    let found = violations(&renamed, &path);
    for rule in [
        "metadata.name",
        "shortDescription",
        "v<semver>",
        "bin",
        ".tar.gz/.zip",
    ] {
        assert!(found.iter().any(|v| v.contains(rule)), "{rule}: {found:?}");
    }
}

#[test]
fn the_caveats_name_the_prerequisites_and_the_completion_step() {
    let plugin = read_manifest(&root().join(MANIFEST));
    let caveats = plugin.spec.caveats.expect("caveats");
    for needed in [
        "ECK",
        "Enterprise",
        "kubectl_complete-remote_cluster",
        "kubectl remote-cluster completion --install-kubectl-helper",
    ] {
        assert!(caveats.contains(needed), "caveats lack {needed}");
    }
    // The command the caveats tell users to run exists.
    let cli = remote_cluster::cli::Cli::command();
    let completion = cli.find_subcommand("completion").expect("completion");
    assert!(
        completion
            .get_arguments()
            .any(|a| a.get_long() == Some("install-kubectl-helper"))
    );
}

fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Small stand-ins for the executables, so packaging takes milliseconds.
fn fake_binaries(dir: &Path, exe: &str) {
    for name in ["kubectl-remote_cluster", "kubectl_complete-remote_cluster"] {
        std::fs::write(
            dir.join(format!("{name}{exe}")),
            format!("#!/bin/sh\necho {name}\n"),
        )
        .unwrap();
    }
}

fn release(args: &[&str], manifest: &Path) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(root().join("scripts/release.sh"))
        .args(args)
        .env("MANIFEST", manifest)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env_remove("VERSION")
        .env_remove("RELEASE_URL");
    cmd
}

#[test]
fn the_release_script_archives_hashes_and_writes_the_manifest_entry() {
    let work = tempfile::tempdir().unwrap();
    let bins = work.path().join("bin");
    std::fs::create_dir(&bins).unwrap();
    fake_binaries(&bins, "");
    let manifest = work.path().join("remote-cluster.yaml");
    std::fs::copy(root().join(MANIFEST), &manifest).unwrap();
    let out = work.path().join("dist");

    let printed = sh(release(&["package"], &manifest)
        .arg(&bins)
        .args(["linux", "arm64"])
        .arg(&out));
    let archive = PathBuf::from(printed.trim());
    assert_eq!(
        archive.file_name().unwrap().to_string_lossy(),
        format!("kubectl-remote_cluster_{VERSION}_linux_arm64.tar.gz")
    );
    let mut listing: Vec<String> = sh(Command::new("tar").arg("-tzf").arg(&archive))
        .lines()
        .map(str::to_string)
        .collect();
    listing.sort();
    assert_eq!(
        listing,
        [
            "LICENSE",
            "README.md",
            "kubectl-remote_cluster",
            "kubectl_complete-remote_cluster"
        ]
    );
    let recorded = std::fs::read_to_string(format!("{}.sha256", archive.display())).unwrap();
    let sha = recorded.split_whitespace().next().unwrap().to_string();
    assert!(is_sha256(&sha), "{sha}");
    if let Ok(out) = Command::new("sha256sum").arg(&archive).output() {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).starts_with(&sha));
    }

    // The same inputs give the same bytes.
    let again = sh(release(&["package"], &manifest)
        .arg(&bins)
        .args(["linux", "arm64"])
        .arg(work.path().join("again")));
    assert_eq!(
        std::fs::read(&archive).unwrap(),
        std::fs::read(again.trim()).unwrap()
    );

    let before = read_manifest(&manifest);
    sh(release(&["manifest"], &manifest).arg(&archive));
    let after = read_manifest(&manifest);
    assert_eq!(violations(&after, &manifest), Vec::<String>::new());
    assert_eq!(before.spec.platforms.len(), after.spec.platforms.len());
    let mut hashed = 0;
    for (old, new) in before.spec.platforms.iter().zip(&after.spec.platforms) {
        assert_eq!(old.uri, new.uri);
        if new.uri.ends_with("_linux_arm64.tar.gz") {
            assert_eq!(new.sha256, sha);
            hashed += 1;
        } else {
            assert_eq!(old.sha256, new.sha256, "{}", new.uri);
        }
    }
    assert_eq!(hashed, 1, "the archive's platform took its hash");
    // The rest of the file is untouched.
    let text = std::fs::read_to_string(&manifest).unwrap();
    let original = std::fs::read_to_string(root().join(MANIFEST)).unwrap();
    assert_eq!(text.lines().count(), original.lines().count());
    assert_eq!(
        text.lines().filter(|l| l.contains("sha256:")).count(),
        SHIPPED.len()
    );
}

#[test]
fn the_release_script_makes_a_windows_zip_and_moves_to_a_new_version() {
    assert!(
        Command::new("zip").arg("-v").output().is_ok(),
        "zip is not installed: the release script needs it (.ci/run installs it)"
    );
    let work = tempfile::tempdir().unwrap();
    fake_binaries(work.path(), ".exe");
    let manifest = work.path().join("remote-cluster.yaml");
    std::fs::copy(root().join(MANIFEST), &manifest).unwrap();
    let printed = sh(release(&["package"], &manifest)
        .env("VERSION", "0.2.0")
        .arg(work.path())
        .args(["windows", "amd64"])
        .arg(work.path().join("dist")));
    let archive = PathBuf::from(printed.trim());
    assert!(archive.ends_with("kubectl-remote_cluster_0.2.0_windows_amd64.zip"));
    let listing = sh(Command::new("unzip").arg("-Z1").arg(&archive));
    for file in [
        "kubectl-remote_cluster.exe",
        "kubectl_complete-remote_cluster.exe",
        "LICENSE",
        "README.md",
    ] {
        assert!(listing.lines().any(|l| l == file), "{file}: {listing}");
    }

    sh(release(&["manifest"], &manifest)
        .env("VERSION", "0.2.0")
        .env("RELEASE_URL", "https://downloads.example.org/krew")
        .arg(&archive));
    let after = read_manifest(&manifest);
    assert_eq!(after.spec.version, "v0.2.0");
    assert_eq!(after.spec.platforms.len(), SHIPPED.len());
    for p in &after.spec.platforms {
        assert!(
            p.uri.starts_with(
                "https://downloads.example.org/krew/v0.2.0/kubectl-remote_cluster_0.2.0_"
            ),
            "{}",
            p.uri
        );
        assert!(is_sha256(&p.sha256));
    }
    let windows = after
        .spec
        .platforms
        .iter()
        .find(|p| p.uri.ends_with(".zip"))
        .unwrap();
    let recorded = std::fs::read_to_string(format!("{}.sha256", archive.display())).unwrap();
    assert!(recorded.starts_with(&windows.sha256));

    // An archive of another version is refused rather than hashed into the wrong entry.
    let refused = release(&["manifest"], &manifest)
        .env("VERSION", "0.3.0")
        .arg(&archive)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("is not an archive of version 0.3.0"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(
        read_manifest(&manifest).spec.version,
        "v0.2.0",
        "left as it was"
    );
}
