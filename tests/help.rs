//! The help as a user reads it (`-h` short, `--help` long, command flags before the global
//! ones), and what each `-v` level prints on stderr, through the real binary.

mod common;

use common::{COMMANDS, World, es, plugin, stderr_of, stdout_of};

const GLOBAL_HEADING: &str = "Global options:";

fn help(args: &[&str]) -> String {
    let home = tempfile::tempdir().unwrap();
    let output = plugin(home.path()).args(args).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    stdout_of(&output)
}

#[test]
fn short_help_is_shorter_than_long_help() {
    for command in ["link", "unlink", "export", "trust"] {
        let short = help(&[command, "-h"]);
        let long = help(&[command, "--help"]);
        assert!(
            short.lines().count() < long.lines().count(),
            "{command}: -h has {} lines, --help {}",
            short.lines().count(),
            long.lines().count()
        );
        assert!(!short.contains("Examples:"), "{command} -h: {short}");
        assert!(long.contains("Examples:"), "{command} --help: {long}");
    }
    let short = help(&["-h"]);
    let long = help(&["--help"]);
    assert!(short.lines().count() < long.lines().count());
    assert!(long.contains("Exit codes:"));
}

/// `text` has a line of the options list that defines `flag` (not one that mentions it).
fn defines(text: &str, flag: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim_start();
        line.strip_prefix(flag)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '[', '=']))
    })
}

#[test]
fn command_flags_come_before_the_global_ones_under_their_heading() {
    for command in COMMANDS {
        for flag in ["-h", "--help"] {
            let text = help(&[command, flag]);
            let heading = text
                .find(GLOBAL_HEADING)
                .unwrap_or_else(|| panic!("{command} {flag}: no {GLOBAL_HEADING:?}:\n{text}"));
            let options = text
                .find("\nOptions:")
                .unwrap_or_else(|| panic!("{command} {flag}: no Options:\n{text}"));
            assert!(options < heading, "{command} {flag}:\n{text}");
            let (own, global) = text.split_at(heading);
            for global_flag in [
                "--kubeconfig",
                "--context",
                "-n, --namespace",
                "--request-timeout",
                "-v, --v",
            ] {
                assert!(
                    !defines(own, global_flag),
                    "{command} {flag}: {global_flag} before the heading"
                );
                assert!(
                    defines(global, global_flag),
                    "{command} {flag}: {global_flag}"
                );
            }
        }
    }
    let link = help(&["link", "-h"]);
    let (own, _) = link.split_at(link.find(GLOBAL_HEADING).unwrap());
    for flag in [
        "--external",
        "--remote-context",
        "--dry-run",
        "--wait",
        "-o, --output",
    ] {
        assert!(
            defines(own, flag),
            "{flag} is not before the global heading"
        );
    }
}

#[test]
fn man_is_listed_in_the_top_level_help() {
    for flag in ["-h", "--help"] {
        let text = help(&[flag]);
        let commands = &text[text.find("Commands:").unwrap()..text.find("\nOptions:").unwrap()];
        assert!(
            commands.lines().any(|l| l.trim_start().starts_with("man ")),
            "{flag}:\n{text}"
        );
    }
}

#[test]
fn unlink_flags_say_what_unlink_does() {
    for flag in ["-h", "--help"] {
        let text = help(&["unlink", flag]);
        assert!(!text.contains("until connected"), "{flag}:\n{text}");
        assert!(!text.contains("is connected"), "{flag}:\n{text}");
        assert!(!text.contains("to create"), "{flag}:\n{text}");
        let wait = &text[text.find("--wait").unwrap()..];
        assert!(wait.contains("roll"), "{flag}: {wait}");
        let url = &text[text.find("--remote-url").unwrap()..];
        assert!(url.contains("invalidate"), "{flag}: {url}");
    }
    // link still waits for the connection.
    assert!(help(&["link", "--help"]).contains("connected"));
}

#[test]
fn verbosity_levels_are_documented_as_implemented() {
    let text = help(&["list", "--help"]);
    assert!(text.contains("-v=2"), "{text}");
    assert!(text.contains("-v=3"), "{text}");
    assert!(!text.contains("-v=2 and up for request traces"), "{text}");
}

/// Everything a diagnostic line must never show: the elastic passwords of the sandbox's
/// Elasticsearch clusters and the private key of the kubeconfig's client certificate.
fn secrets_of(world: &World, clusters: &[(&str, &str)]) -> Vec<String> {
    let east = world.sandbox.cluster("east");
    let mut secrets: Vec<String> = clusters
        .iter()
        .filter_map(|(ns, name)| {
            east.secret_text(ns, &format!("{name}-es-elastic-user"), "elastic")
        })
        .collect();
    assert_eq!(
        secrets.len(),
        clusters.len(),
        "every cluster has a password"
    );
    let kubeconfig = std::fs::read_to_string(&world.kubeconfig).unwrap();
    for line in kubeconfig.lines() {
        if let Some((_, value)) = line.split_once("client-key-data:") {
            secrets.push(value.trim().trim_matches('"').to_string());
        }
    }
    assert!(
        secrets.len() > clusters.len(),
        "the kubeconfig has a client key"
    );
    secrets
}

#[test]
fn each_verbosity_level_adds_to_stderr_and_leaves_stdout_alone() {
    let world = World::settled(common::east([
        es("search", "catalog"),
        es("search", "products"),
    ]));
    let list = |level: Option<&str>| {
        let mut args = vec!["list", "-o", "json"];
        args.extend(level);
        world.ok(args)
    };
    let quiet = list(None);
    assert_eq!(stderr_of(&quiet), "");
    let baseline = stdout_of(&quiet);

    let one = list(Some("-v"));
    assert_eq!(stdout_of(&one), baseline);
    assert_eq!(stderr_of(&one), "", "-v adds cause chains of errors only");

    let two = list(Some("-v=2"));
    assert_eq!(stdout_of(&two), baseline);
    let debug = stderr_of(&two);
    assert!(debug.contains("DEBUG"), "-v=2: {debug}");
    assert!(debug.contains("command \"list\""), "-v=2: {debug}");
    assert!(debug.contains("exit code 0"), "-v=2: {debug}");
    assert!(
        !debug.contains("http.url"),
        "-v=2 has no request lines: {debug}"
    );

    let three = list(Some("-v=3"));
    assert_eq!(stdout_of(&three), baseline);
    let traces = stderr_of(&three);
    assert!(traces.contains("command \"list\""), "-v=3: {traces}");
    let requests: Vec<&str> = traces
        .lines()
        .filter(|l| l.contains("http.method=GET") && l.contains("http.url="))
        .collect();
    assert!(!requests.is_empty(), "-v=3: {traces}");
    assert!(
        requests
            .iter()
            .all(|l| l.contains("http.status_code=") && l.contains("close")),
        "one line per request as it completes: {traces}"
    );
    assert!(
        requests.iter().any(|l| l.contains("elasticsearches")),
        "{traces}"
    );
    let lower = traces.to_lowercase();
    for word in ["authorization", "bearer", "\"data\""] {
        assert!(!lower.contains(word), "{word} in -v=3: {traces}");
    }
    let higher = list(Some("-v=9"));
    assert_eq!(stdout_of(&higher), baseline);

    // describe reads the elastic user's Secret and talks to Elasticsearch with it.
    let describe = world.ok(["describe", "catalog", "-n", "search", "-v=9"]);
    assert!(stderr_of(&describe).contains("http.url="));
    let secrets = secrets_of(&world, &[("search", "catalog"), ("search", "products")]);
    for secret in &secrets {
        common::assert_not_shown(secret, &[&quiet, &one, &two, &three, &higher, &describe]);
    }
}
