//! No input panics: arbitrary strings in every position of the command line, and arbitrary
//! bytes as a kubeconfig file (byte-order marks included), are parsed or refused, never a panic.

use clap::Parser;
use proptest::prelude::*;

use remote_cluster::cli::Cli;
use remote_cluster::input;
use remote_cluster::k8s::kubeconfig;

/// The flags that take a value, across the commands.
const FLAGS: &[&str] = &[
    "--context",
    "-n",
    "--namespace",
    "--request-timeout",
    "--timeout",
    "--kubeconfig",
    "--remote-context",
    "--remote-namespace",
    "--remote-kubeconfig",
    "--alias",
    "--external",
    "--proxy-address",
    "--server-name",
    "--search-indices",
    "--replication-indices",
    "--ca-file",
    "--api-key-file",
    "--remote-url",
    "--remote-user",
    "--trust-subject",
    "--for",
    "--output-dir",
    "--expose",
    "--security",
    "--dry-run",
    "-o",
    "-v",
    "--wait",
];

const COMMANDS: &[&str] = &[
    "link", "unlink", "trust", "export", "unexport", "describe", "list", "version",
];

/// Strings users and fuzzers type: any Unicode, and the characters that matter here.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z0-9.:/#?%\\[\\] ,=_-]{0,40}",
        "[0-9]{0,30}(\\.[0-9]{0,30})?(ns|us|µs|ms|s|m|h|d|)",
        Just(String::new()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn the_argument_parser_never_panics(
        command in prop::sample::select(COMMANDS),
        positionals in prop::collection::vec(text(), 0..3),
        flags in prop::collection::vec((prop::sample::select(FLAGS), text()), 0..4),
    ) {
        let mut args = vec!["kubectl-remote_cluster".to_string(), command.to_string()];
        args.extend(positionals);
        for (flag, value) in flags {
            args.push(flag.to_string());
            args.push(value);
        }
        let _ = Cli::try_parse_from(&args);
    }

    #[test]
    fn every_flag_value_is_parsed_or_refused(flag in prop::sample::select(FLAGS), value in text()) {
        let args = ["kubectl-remote_cluster", "link", "catalog", "products", flag, &value];
        let _ = Cli::try_parse_from(args);
        let inline = format!("{flag}={value}");
        let _ = Cli::try_parse_from(["kubectl-remote_cluster", "list", inline.as_str()]);
    }

    #[test]
    fn durations_are_parsed_or_refused(value in text()) {
        let _ = input::go_duration(&value, input::MAX_WAIT_TIMEOUT);
        let _ = input::request_timeout(&value);
        let _ = input::wait_timeout(&value);
        let _ = input::proxy_address(&value);
        let _ = input::index_pattern(&value);
    }

    #[test]
    fn any_kubeconfig_bytes_are_read_or_refused(
        bom in prop::sample::select(vec![
            &[][..], &[0xFF, 0xFE][..], &[0xFE, 0xFF][..], &[0xEF, 0xBB, 0xBF][..],
        ]),
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            "[ -~\n]{0,300}".prop_map(String::into_bytes),
        ],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, [bom, &body[..]].concat()).unwrap();
        let _ = kubeconfig::read_file(&path);
        let _ = kubeconfig::load(Some(&path));
        let _ = kubeconfig::decode(&[bom, &body[..]].concat());
    }
}
