//! Bad input, one row each: every command refuses it with exit code 2 and one `error:` line
//! that says what to give instead, before a single write to any cluster, and nothing panics or
//! hangs (a FIFO, /dev/zero, absurd durations, names that would reach a URL).

mod common;

use std::path::Path;

use common::{World, es, stderr_of, stdout_of};

/// A row: the arguments (`{dir}` is the test's directory, where the files below are) and what
/// the error line must say.
type Row = (&'static [&'static str], &'static str);

const NAME: &str = "not an Elasticsearch name";
const NAMESPACE: &str = "not a namespace name";
const CONTEXT: &str = "empty context name";
const ALIAS: &str = "not a remote cluster alias";
const PATTERN: &str = "not an index pattern";
const ADDRESS: &str = "not HOST:PORT";
const DNS: &str = "not a DNS name";
const TOO_LONG: &str = "the most it takes";
const NO_UNIT: &str = "a unit is missing";
const NOT_FILE: &str = "is not a regular file";

/// `link LOCAL --external cloud` with a valid address, then the rest.
macro_rules! external {
    ($($extra:expr),*) => {
        &["link", "catalog", "-n", "search", "--external", "cloud", "--proxy-address",
          "cloud.example.com:9443", $($extra),*]
    };
}

#[rustfmt::skip]
const ROWS: &[Row] = &[
    // Elasticsearch names reach the API server's URL paths: refused before any request.
    (&["link", "catalog#x", "products", "-n", "search"], NAME),
    (&["link", "metrics?dryRun=All", "products", "-n", "search"], NAME),
    (&["link", "cat alog", "products", "-n", "search"], NAME),
    (&["link", "Catalog", "products", "-n", "search"], NAME),
    (&["link", "catalog", "products/x", "-n", "search"], NAME),
    (&["link", "catalog", "", "-n", "search"], NAME),
    (&["link", "catalog", "..", "-n", "search"], NAME),
    (&["link", "catalog", "%2e%2e", "-n", "search"], NAME),
    (&["link", "catalog", "a234567890123456789012345678901234567", "-n", "search"], NAME),
    (&["link", "1catalog", "products", "-n", "search"], NAME),
    // Contexts and namespaces.
    (&["link", "catalog", "products", "-n", "search", "--context", ""], CONTEXT),
    (&["link", "catalog", "products", "-n", "search", "--context", "  "], CONTEXT),
    (&["link", "catalog", "products", "-n", "search", "--context", " east"], "leading or trailing blanks"),
    (&["link", "catalog", "products", "-n", ""], NAMESPACE),
    (&["link", "catalog", "products", "-n", "Search"], NAMESPACE),
    (&["link", "catalog", "products", "-n", "a.b"], NAMESPACE),
    (&["link", "catalog", "products", "-n", "search", "--remote-namespace", "shop#x"], NAMESPACE),
    (&["link", "catalog", "products", "-n", "search", "--remote-context", ""], CONTEXT),
    // Aliases and index patterns.
    (&["link", "catalog", "products", "-n", "search", "--alias", "Prod.EU"], ALIAS),
    (&["link", "catalog", "products", "-n", "search", "--alias", "a:b"], ALIAS),
    (&["link", "catalog", "products", "-n", "search", "--alias", ""], ALIAS),
    (&["link", "catalog", "products", "-n", "search", "--search-indices", ""], PATTERN),
    (&["link", "catalog", "products", "-n", "search", "--search-indices", "Logs"], PATTERN),
    (&["link", "catalog", "products", "-n", "search", "--search-indices", "a b"], PATTERN),
    (&["link", "catalog", "products", "-n", "search", "--search-indices", "logs-*,,x"], PATTERN),
    (&["link", "catalog", "products", "-n", "search", "--replication-indices", "a#b"], PATTERN),
    (&["link", "catalog", "products", "-n", "search", "--replication-indices", "-"], PATTERN),
    // Durations: as kubectl reads them, bounded, never a panic.
    (&["link", "catalog", "products", "-n", "search", "--timeout", "18446744073709551616s"], TOO_LONG),
    (&["link", "catalog", "products", "-n", "search", "--timeout", "99999999999999999999h"], TOO_LONG),
    (&["link", "catalog", "products", "-n", "search", "--timeout", "30"], NO_UNIT),
    (&["link", "catalog", "products", "-n", "search", "--timeout=-1s"], "cannot be negative"),
    (&["link", "catalog", "products", "-n", "search", "--timeout", "1d"], "unknown unit"),
    (&["link", "catalog", "products", "-n", "search", "--timeout", ""], "use a number with a unit"),
    (&["link", "catalog", "products", "-n", "search", "--request-timeout", "18446744073709551616s"], TOO_LONG),
    (&["link", "catalog", "products", "-n", "search", "--request-timeout", "99999999999999999999h"], TOO_LONG),
    (&["link", "catalog", "products", "-n", "search", "--request-timeout", "soon"], "use a number with a unit"),
    (&["link", "catalog", "products", "-n", "search", "--request-timeout=-5"], "cannot be negative"),
    // Across Kubernetes clusters: the address and the TLS name.
    (&["link", "catalog", "products", "-n", "search", "--remote-context", "west", "--expose", "none", "--proxy-address", "https://h:9443"], ADDRESS),
    (&["link", "catalog", "products", "-n", "search", "--remote-context", "west", "--expose", "none", "--proxy-address", "::1:9443"], ADDRESS),
    (&["link", "catalog", "products", "-n", "search", "--remote-context", "west", "--expose", "none", "--proxy-address", "a b:9443"], ADDRESS),
    (&["link", "catalog", "products", "-n", "search", "--remote-context", "west", "--expose", "none", "--proxy-address", "h/x:9443"], ADDRESS),
    (&["link", "catalog", "products", "-n", "search", "--remote-context", "west", "--expose", "none", "--proxy-address", "h:0"], ADDRESS),
    (&["link", "catalog", "products", "-n", "search", "--remote-context", "west", "--expose", "none", "--proxy-address", "h:65536"], ADDRESS),
    (&["link", "catalog", "products", "-n", "search", "--remote-context", "west", "--server-name", ""], DNS),
    (&["link", "catalog", "products", "-n", "search", "--remote-context", "west", "--server-name", "a b"], DNS),
    (&["link", "catalog", "products", "-n", "search", "--remote-context", "west", "--server-name", "10.0.0.1"], DNS),
    // Files handed over: only small regular files, CAs that are CAs.
    (external!("--ca-file", "/dev/zero", "--api-key-file", "{dir}/key.txt"), NOT_FILE),
    (external!("--ca-file", "{dir}/fifo", "--api-key-file", "{dir}/key.txt"), NOT_FILE),
    (external!("--ca-file", "{dir}", "--api-key-file", "{dir}/key.txt"), "is a directory"),
    (external!("--ca-file", "{dir}/big.pem", "--api-key-file", "{dir}/key.txt"), "is larger than 1024 KiB"),
    (external!("--ca-file", "{dir}/leaf.pem", "--api-key-file", "{dir}/key.txt"), "is not a CA"),
    (external!("--ca-file", "{dir}/ca-and-leaf.pem", "--api-key-file", "{dir}/key.txt"), "number 2"),
    (external!("--ca-file", "{dir}/key.pem", "--api-key-file", "{dir}/key.txt"), "never a key"),
    (external!("--ca-file", "{dir}/missing.pem", "--api-key-file", "{dir}/key.txt"), "cannot be read"),
    (external!("--ca-file", "{dir}/ca.pem", "--api-key-file", "/dev/zero"), NOT_FILE),
    (external!("--ca-file", "{dir}/ca.pem", "--api-key-file", "{dir}/fifo"), NOT_FILE),
    (external!("--ca-file", "{dir}/ca.pem", "--remote-url", "https://127.0.0.1:1", "--remote-password-file", "{dir}/fifo"), NOT_FILE),
    (external!("--ca-file", "{dir}/ca.pem", "--remote-url", "https://127.0.0.1:1", "--remote-password-file", "{dir}/big.pem"), "is larger than"),
    (&["link", "catalog", "-n", "search", "--external", "Cloud", "--proxy-address", "h:9443", "--public-ca"], ALIAS),
    (&["link", "catalog", "-n", "search", "--external", "cloud", "--proxy-address", "[::1]", "--public-ca"], ADDRESS),
    // unlink
    (&["unlink", "catalog#x", "products", "-n", "search"], NAME),
    (&["unlink", "catalog", "a b", "-n", "search"], ALIAS),
    (&["unlink", "catalog", "products?x=1", "-n", "search"], ALIAS),
    (&["unlink", "catalog", "products", "-n", "search", "--context", ""], CONTEXT),
    (&["unlink", "catalog", "products", "-n", "search", "--timeout", "99999999999999999999h"], TOO_LONG),
    (&["unlink", "catalog", "products", "-n", "search", "--remote-only"], "--remote-context"),
    (&["unlink", "catalog", "products", "-n", "search", "--remote-only", "--remote-context", "west", "--local-only"], "cannot be used with"),
    (&["unlink", "catalog", "products", "-n", "search", "--remote-only", "--remote-context", ""], CONTEXT),
    // trust
    (&["trust", "catalog", "products?x", "-n", "search", "--remote-context", "west"], NAME),
    (&["trust", "catalog", "products", "-n", "search", "--remote-context", ""], CONTEXT),
    (&["trust", "catalog", "products", "-n", "search", "--remote-context", "west", "--remote-namespace", "Shop"], NAMESPACE),
    (&["trust", "catalog", "products", "-n", "search", "--remote-context", "west", "--context", ""], CONTEXT),
    (&["trust", "catalog", "products", "-n", "search", "--remote-context", "west", "--timeout", "1h30"], NO_UNIT),
    // export
    (&["export", "products#x", "-n", "search", "--for", "cloud"], NAME),
    (&["export", "products", "-n", "search", "--for", "a b"], ALIAS),
    (&["export", "products", "-n", "search", "--for", "cloud", "--expose", "none", "--proxy-address", "https://h:9443"], ADDRESS),
    (&["export", "products", "-n", "search", "--for", "cloud", "--search-indices", ""], PATTERN),
    (&["export", "products", "-n", "search", "--for", "cloud", "--yes", "--output-dir", "{dir}/linked-dir"], "is a symbolic link"),
    (&["export", "products", "-n", "search", "--for", "cloud", "--yes", "--output-dir", "{dir}/planted"], "will not write through"),
    (&["export", "products", "-n", "search", "--for", "cloud", "--yes", "--output-dir", "{dir}/ca.pem"], "is not a directory"),
    (&["export", "products", "-n", "search", "--for", "cloud", "--yes", "--security", "certificate", "--ca-file", "/dev/zero"], NOT_FILE),
    (&["export", "products", "-n", "search", "--for", "cloud", "--yes", "--security", "certificate", "--ca-file", "{dir}/leaf.pem"], "is not a CA"),
    (&["export", "products", "-n", "search", "--for", "cloud", "--yes", "--output-dir", ""], "empty path"),
    (&["export", "products", "-n", "search", "--for", "cloud", "--yes", "--security", "certificate", "--ca-file", "{dir}/ca.pem", "--trust-file", "/dev/zero"], NOT_FILE),
    (&["export", "products", "-n", "search", "--for", "cloud", "--yes", "--apply-to", "https://127.0.0.1:1", "--apply-password-file", "{dir}/fifo"], NOT_FILE),
    (&["export", "products", "-n", "search", "--for", "cloud", "--yes", "--apply-to", "not a url", "--apply-password-file", "{dir}/key.txt"], "URL"),
    // unexport
    (&["unexport", "products#x", "-n", "search", "--for", "cloud"], NAME),
    (&["unexport", "products", "-n", "search", "--for", "Cloud"], ALIAS),
    (&["unexport", "products", "-n", "search", "--for", "cloud", "--context", ""], CONTEXT),
    // describe
    (&["describe", "catalog#x", "-n", "search"], NAME),
    (&["describe", "", "-n", "search"], NAME),
    (&["describe", "catalog", "-n", "search", "--context", ""], CONTEXT),
    (&["describe", "catalog", "-n", "a b"], NAMESPACE),
    // list, and the kubeconfig every command reads
    (&["list", "--context", ""], CONTEXT),
    (&["list", "--context", "east,,west"], CONTEXT),
    (&["list", "-n", "Search"], NAMESPACE),
    (&["list", "--request-timeout", "18446744073709551616s"], TOO_LONG),
    (&["list", "--kubeconfig", "/dev/zero"], NOT_FILE),
    (&["list", "--kubeconfig", "{dir}/fifo"], NOT_FILE),
    (&["list", "--kubeconfig", "{dir}"], "is a directory"),
    (&["list", "--kubeconfig", "{dir}/odd-bom"], "odd number of bytes"),
    (&["list", "--kubeconfig", ""], "empty path"),
    (&["trust", "catalog", "products", "-n", "search", "--remote-context", "west", "--remote-kubeconfig", "/dev/zero"], NOT_FILE),
    (&["trust", "catalog", "products", "-n", "search", "--remote-context", "west", "--remote-kubeconfig", "{dir}/odd-bom"], "odd number of bytes"),
    (&["describe", "catalog", "-n", "search", "--kubeconfig", "{dir}/bad-utf16"], "not valid UTF-16"),
    // clap's own refusals are one line too.
    (&["link", "catalog", "products", "--expose", "bogus"], "possible values"),
    (&["link"], "required arguments"),
    (&["lnk"], "a similar subcommand exists"),
];

/// The files the rows name, in `dir`.
fn lay_out_files(dir: &Path) {
    let write = |name: &str, content: &[u8]| std::fs::write(dir.join(name), content).unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf_params = rcgen::CertificateParams::new(vec!["cloud.example.com".to_string()]).unwrap();
    let leaf = leaf_params.self_signed(&leaf_key).unwrap();
    write("ca.pem", ca.pem().as_bytes());
    write("leaf.pem", leaf.pem().as_bytes());
    write(
        "ca-and-leaf.pem",
        format!("{}{}", ca.pem(), leaf.pem()).as_bytes(),
    );
    write("key.pem", leaf_key.serialize_pem().as_bytes());
    write("big.pem", &vec![b'a'; 2 * 1024 * 1024]);
    write("key.txt", b"aWQ6c2VjcmV0\n");
    // A UTF-16 byte-order mark followed by an odd number of bytes, and an unpaired surrogate.
    write("odd-bom", &[0xFF, 0xFE, b'a', 0, b'b']);
    write("bad-utf16", &[0xFF, 0xFE, 0x00, 0xD8, b'a', 0]);
    let fifo =
        std::ffi::CString::new(dir.join("fifo").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::symlink(&out, dir.join("linked-dir")).unwrap();
    let planted = dir.join("planted");
    std::fs::create_dir(&planted).unwrap();
    std::os::unix::fs::symlink(dir.join("stolen"), planted.join("api-key")).unwrap();
}

#[test]
fn every_bad_input_is_refused_in_one_line_before_any_write() {
    let world = World::settled(common::east_and_west(
        [es("search", "catalog"), es("search", "products")],
        [es("shop", "products")],
    ));
    let files = tempfile::tempdir().unwrap();
    lay_out_files(files.path());
    let dir = files.path().to_str().unwrap();
    let clusters = ["east", "west"];
    let mut failures = Vec::new();
    for (args, expected) in ROWS {
        let args: Vec<String> = args.iter().map(|a| a.replace("{dir}", dir)).collect();
        let before = world.plugin_writes(&clusters);
        let output = world.plugin().args(&args).output().unwrap();
        let stderr = stderr_of(&output);
        let lines: Vec<&str> = stderr.lines().collect();
        let clean = output.status.code() == Some(2)
            && stdout_of(&output).is_empty()
            && lines.len() == 1
            && lines[0].starts_with("error: ")
            && lines[0].contains(expected)
            && !stderr.contains("panicked")
            && world.plugin_writes(&clusters) == before;
        if !clean {
            failures.push(format!(
                "{args:?}: exit {:?}, writes {}, stderr: {stderr}",
                output.status.code(),
                world.plugin_writes(&clusters) - before
            ));
        }
    }
    assert!(ROWS.len() >= 60, "{} rows", ROWS.len());
    assert!(
        !files.path().join("stolen").exists(),
        "nothing written through the planted link"
    );
    assert!(
        failures.is_empty(),
        "{} of {} rows not refused cleanly:\n{}",
        failures.len(),
        ROWS.len(),
        failures.join("\n")
    );
}
