//! Dynamic completion in Cobra's `__complete` protocol, for kubectl's plugin completion.
//!
//! kubectl 1.26+ completes `kubectl remote-cluster …` by running `kubectl_complete-remote_cluster`
//! with the words typed after the plugin name, the last one being the (possibly empty) word under
//! the cursor. The answer is one candidate per line, optionally followed by a tab and a
//! description, then a line `:<directive>` with Cobra's `ShellCompDirective` bits.
//!
//! The words are read against the clap definition in [`crate::cli`], so new commands and flags
//! complete without changes here; only the values that need a cluster are looked up by argument
//! id: contexts from the kubeconfig, namespaces and Elasticsearch names from the chosen context,
//! and the aliases configured on the local cluster for `unlink`.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Arg, ArgAction, CommandFactory, ValueHint};

use crate::cli::Cli;
use crate::k8s::clients::{ClientPool, ContextClient};
use crate::k8s::eck::{self, ListScope};
use crate::k8s::kubeconfig::{self, LoadedKubeconfig};

/// Cobra's `ShellCompDirective` values (cobra `completions.go`); they are bit flags.
pub mod directive {
    /// Let the shell complete file names when there are no candidates.
    pub const DEFAULT: u32 = 0;
    /// Something went wrong; the shell ignores the candidates.
    pub const ERROR: u32 = 1;
    /// Do not add a space after the completion.
    pub const NO_SPACE: u32 = 2;
    /// Do not fall back to file names.
    pub const NO_FILE_COMP: u32 = 4;
    /// The candidates are file extensions to filter on.
    pub const FILTER_FILE_EXT: u32 = 8;
    /// Complete directory names only.
    pub const FILTER_DIRS: u32 = 16;
    /// Keep the order of the candidates.
    pub const KEEP_ORDER: u32 = 32;
}

/// Everything a completion request may wait for the API server, so that TAB never hangs.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// One completion candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub value: String,
    pub description: Option<String>,
}

impl Candidate {
    fn new(value: impl Into<String>, description: Option<String>) -> Self {
        Candidate {
            value: value.into(),
            description: description.filter(|d| !d.trim().is_empty()),
        }
    }
}

/// The answer to one completion request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completions {
    pub candidates: Vec<Candidate>,
    pub directive: u32,
}

impl Completions {
    fn none(directive: u32) -> Self {
        Completions {
            candidates: Vec::new(),
            directive,
        }
    }

    /// The protocol text: candidates, one per line, then `:<directive>`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for candidate in &self.candidates {
            out.push_str(&one_line(&candidate.value));
            if let Some(description) = &candidate.description {
                out.push('\t');
                out.push_str(&one_line(description));
            }
            out.push('\n');
        }
        out.push_str(&format!(":{}\n", self.directive));
        out
    }
}

fn one_line(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default().trim();
    first.replace('\t', " ")
}

/// Completes the last of `words` (the words typed after `kubectl remote-cluster`).
pub fn complete(words: &[String]) -> Completions {
    let (typed, current) = match words.split_last() {
        Some((current, typed)) => (typed, current.as_str()),
        None => (&[][..], ""),
    };
    let mut root = Cli::command();
    root.build();
    let state = walk(&root, typed);
    let command = state.command(&root);

    // A value for the flag before the cursor: `--context <TAB>`.
    if let Some(id) = &state.pending {
        let arg = find_arg(command, id).expect("pending flags come from the command");
        return values_for(arg, &state, current, "");
    }
    if !state.after_double_dash {
        // `--flag=<TAB>`
        if let Some(rest) = current.strip_prefix("--")
            && let Some((name, value)) = rest.split_once('=')
        {
            return match find_long(command, name) {
                Some(arg) if takes_value(arg) => {
                    values_for(arg, &state, value, &format!("--{name}="))
                }
                _ => Completions::none(directive::NO_FILE_COMP),
            };
        }
        // `-o<TAB>`, `-ojs<TAB>`: a short flag with its value attached.
        if current.len() > 2
            && !current.starts_with("--")
            && let Some(short) = current.strip_prefix('-').and_then(|s| s.chars().next())
            && let Some(arg) = command
                .get_arguments()
                .find(|a| a.get_short() == Some(short))
            && takes_value(arg)
        {
            let value = &current[1 + short.len_utf8()..];
            let value = value.strip_prefix('=').unwrap_or(value);
            let prefix = &current[..current.len() - value.len()];
            return values_for(arg, &state, value, prefix);
        }
        if current.starts_with('-') {
            return flag_names(command, &state, current);
        }
    }
    // A subcommand, or a positional argument.
    if state.subcommand_expected(command) {
        return subcommand_names(command, current);
    }
    if command.get_name() == "help" && state.path.len() == 1 {
        return subcommand_names(&root, current);
    }
    let positional = command
        .get_positionals()
        .filter(|a| !a.is_hide_set())
        .nth(state.positionals);
    match positional {
        Some(arg) => values_for(arg, &state, current, ""),
        None => Completions::none(directive::NO_FILE_COMP),
    }
}

/// What the words before the cursor said: the command path, flag values and positionals.
#[derive(Debug, Default)]
struct State {
    /// Subcommand names from the root, e.g. `["unlink"]`.
    path: Vec<String>,
    /// Values by argument id, flags and positionals alike.
    values: HashMap<String, Vec<String>>,
    /// Flags given, by argument id.
    seen: BTreeSet<String>,
    /// Positional arguments of the current command given so far.
    positionals: usize,
    /// The flag before the cursor, waiting for its value.
    pending: Option<String>,
    after_double_dash: bool,
}

impl State {
    fn command<'a>(&self, root: &'a clap::Command) -> &'a clap::Command {
        self.path.iter().fold(root, |cmd, name| {
            cmd.find_subcommand(name).expect("path names subcommands")
        })
    }

    fn subcommand_expected(&self, command: &clap::Command) -> bool {
        command.has_subcommands() && self.positionals == 0
    }

    fn value(&self, id: &str) -> Option<&str> {
        self.values
            .get(id)
            .and_then(|v| v.iter().rev().find(|s| !s.is_empty()))
            .map(String::as_str)
    }

    fn record(&mut self, arg: &Arg, value: &str) {
        let values = self.values.entry(arg.get_id().to_string()).or_default();
        match arg.get_value_delimiter() {
            Some(delimiter) => values.extend(value.split(delimiter).map(str::to_string)),
            None => values.push(value.to_string()),
        }
    }
}

fn walk(root: &clap::Command, words: &[String]) -> State {
    let mut state = State::default();
    let mut command = root;
    for word in words {
        if let Some(id) = state.pending.take() {
            if let Some(arg) = find_arg(command, &id) {
                state.record(arg, word);
            }
            continue;
        }
        if state.after_double_dash || word == "-" || !word.starts_with('-') {
            if word == "-" || state.after_double_dash || !state.subcommand_expected(command) {
                if let Some(arg) = command.get_positionals().nth(state.positionals) {
                    state.record(arg, word);
                }
                state.positionals += 1;
            } else if let Some(sub) = command.find_subcommand(word) {
                state.path.push(sub.get_name().to_string());
                command = sub;
            } else {
                state.positionals += 1;
            }
            continue;
        }
        if word == "--" {
            state.after_double_dash = true;
            continue;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (long, None),
            };
            let Some(arg) = find_long(command, name) else {
                continue;
            };
            state.seen.insert(arg.get_id().to_string());
            match attached {
                Some(value) => state.record(arg, value),
                None if consumes_next_word(arg) => {
                    state.pending = Some(arg.get_id().to_string());
                }
                None => {}
            }
            continue;
        }
        // A cluster of short flags, the last of which may take a value: `-Ao json`, `-njobs`.
        let shorts = &word[1..];
        for (at, short) in shorts.char_indices() {
            let Some(arg) = command
                .get_arguments()
                .find(|a| a.get_short() == Some(short))
            else {
                break;
            };
            state.seen.insert(arg.get_id().to_string());
            if takes_value(arg) {
                let rest = &shorts[at + short.len_utf8()..];
                let rest = rest.strip_prefix('=').unwrap_or(rest);
                if !rest.is_empty() {
                    state.record(arg, rest);
                } else if consumes_next_word(arg) {
                    state.pending = Some(arg.get_id().to_string());
                }
                break;
            }
        }
    }
    state
}

fn find_arg<'a>(command: &'a clap::Command, id: &str) -> Option<&'a Arg> {
    command.get_arguments().find(|a| a.get_id() == id)
}

fn find_long<'a>(command: &'a clap::Command, name: &str) -> Option<&'a Arg> {
    command.get_arguments().find(|a| {
        a.get_long_and_visible_aliases()
            .is_some_and(|names| names.contains(&name))
    })
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

/// Whether `--flag value` reads the next word: not for flags whose value is optional and must
/// be attached with `=` (`--dry-run[=MODE]`, `-v[=LEVEL]`).
fn consumes_next_word(arg: &Arg) -> bool {
    let optional = arg.get_num_args().is_some_and(|n| n.min_values() == 0);
    takes_value(arg) && !(optional && arg.is_require_equals_set())
}

fn repeatable(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append | ArgAction::Count)
        || arg.get_value_delimiter().is_some()
}

fn help_of(arg: &Arg) -> Option<String> {
    arg.get_help().map(|h| h.to_string())
}

fn subcommand_names(command: &clap::Command, current: &str) -> Completions {
    let candidates = command
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| Candidate::new(s.get_name(), s.get_about().map(|a| a.to_string())))
        .filter(|c| c.value.starts_with(current))
        .collect();
    Completions {
        candidates,
        directive: directive::NO_FILE_COMP,
    }
}

fn flag_names(command: &clap::Command, state: &State, current: &str) -> Completions {
    let mut candidates = Vec::new();
    for arg in command.get_arguments() {
        if arg.is_positional() || arg.is_hide_set() {
            continue;
        }
        if state.seen.contains(arg.get_id().as_str()) && !repeatable(arg) {
            continue;
        }
        if let Some(long) = arg.get_long() {
            candidates.push(Candidate::new(format!("--{long}"), help_of(arg)));
        }
        if let Some(short) = arg.get_short()
            && !current.starts_with("--")
        {
            candidates.push(Candidate::new(format!("-{short}"), help_of(arg)));
        }
    }
    candidates.retain(|c| c.value.starts_with(current));
    Completions {
        candidates,
        directive: directive::NO_FILE_COMP,
    }
}

/// Candidates for the value of `arg`, each with `prefix` put in front (`--output=`, `-o`).
fn values_for(arg: &Arg, state: &State, current: &str, prefix: &str) -> Completions {
    let id = arg.get_id().as_str();
    // Lists such as `--context a,b,<TAB>` complete their last item.
    let (done, item) = match arg.get_value_delimiter() {
        Some(delimiter) => match current.rfind(delimiter) {
            Some(at) => current.split_at(at + delimiter.len_utf8()),
            None => ("", current),
        },
        None => ("", current),
    };
    let possible: Vec<Candidate> = arg
        .get_possible_values()
        .into_iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| Candidate::new(v.get_name(), v.get_help().map(|h| h.to_string())))
        .collect();
    let (mut candidates, directive) = if !possible.is_empty() {
        (possible, directive::NO_FILE_COMP)
    } else if matches!(
        id,
        "contexts" | "context" | "remote_context" | "remote_contexts"
    ) {
        (contexts(state), directive::NO_FILE_COMP)
    } else if matches!(id, "namespace" | "remote_namespace") {
        let remote = id.starts_with("remote_");
        (namespaces(state, remote), directive::NO_FILE_COMP)
    } else if arg.is_positional() && id == "alias" {
        (aliases(state), directive::NO_FILE_COMP)
    } else if arg.is_positional() && matches!(id, "local" | "remote" | "name" | "names") {
        (
            elasticsearches(state, id == "remote"),
            directive::NO_FILE_COMP,
        )
    } else {
        (Vec::new(), file_directive(arg))
    };
    if !done.is_empty() {
        let chosen: BTreeSet<&str> = done.split(',').collect();
        candidates.retain(|c| !chosen.contains(c.value.as_str()));
    }
    candidates.retain(|c| c.value.starts_with(item));
    for candidate in &mut candidates {
        candidate.value = format!("{prefix}{done}{}", candidate.value);
    }
    Completions {
        candidates,
        directive,
    }
}

/// Let the shell complete paths for arguments that are paths, and nothing for the others.
fn file_directive(arg: &Arg) -> u32 {
    let id = arg.get_id().as_str();
    let name = arg
        .get_value_names()
        .and_then(|names| names.first())
        .map(|n| n.as_str())
        .unwrap_or_default();
    match arg.get_value_hint() {
        ValueHint::DirPath => directive::FILTER_DIRS,
        _ if name == "DIR" => directive::FILTER_DIRS,
        ValueHint::FilePath | ValueHint::AnyPath | ValueHint::ExecutablePath => directive::DEFAULT,
        _ if name == "FILE" || id.ends_with("kubeconfig") => directive::DEFAULT,
        _ => directive::NO_FILE_COMP,
    }
}

fn load_kubeconfig(state: &State, remote: bool) -> Option<Arc<LoadedKubeconfig>> {
    let flag = remote
        .then(|| state.value("remote_kubeconfig"))
        .flatten()
        .or_else(|| state.value("kubeconfig"))
        .map(PathBuf::from);
    kubeconfig::load(flag.as_deref()).ok().map(Arc::new)
}

fn contexts(state: &State) -> Vec<Candidate> {
    let Some(config) = load_kubeconfig(state, false) else {
        return Vec::new();
    };
    let current = config.current_context().map(str::to_string);
    config
        .context_names()
        .into_iter()
        .map(|name| {
            let mut description = config.server_of(&name).unwrap_or_default();
            if current.as_deref() == Some(name.as_str()) {
                description = format!("(current) {description}");
            }
            Candidate::new(name, Some(description))
        })
        .collect()
}

/// Where to look: the remote side uses `--remote-context`/`--remote-namespace` when given.
struct Target {
    config: Arc<LoadedKubeconfig>,
    context: String,
    namespace: Option<String>,
}

fn target(state: &State, remote: bool) -> Option<Target> {
    let config = load_kubeconfig(state, remote)?;
    let named = |id: &str| {
        state
            .values
            .get(id)
            .and_then(|v| v.iter().find(|s| !s.is_empty()))
            .cloned()
    };
    let context = remote
        .then(|| named("remote_context").or_else(|| named("remote_contexts")))
        .flatten()
        .or_else(|| named("contexts"))
        .or_else(|| config.current_context().map(str::to_string))?;
    let namespace = remote
        .then(|| state.value("remote_namespace"))
        .flatten()
        .or_else(|| state.value("namespace"))
        .map(str::to_string);
    Some(Target {
        config,
        context,
        namespace,
    })
}

/// Runs a lookup against the target's API server under [`LOOKUP_TIMEOUT`]; `None` on any failure.
fn lookup<T, F, Fut>(target: Target, query: F) -> Option<T>
where
    F: FnOnce(ContextClient, String) -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    runtime.block_on(async move {
        let work = async {
            let pool = ClientPool::new(target.config.clone(), Some(LOOKUP_TIMEOUT));
            let client = pool.client(&target.context).await.ok()?;
            let namespace = target
                .namespace
                .clone()
                .unwrap_or_else(|| target.config.namespace_of(&target.context));
            query(client, namespace).await
        };
        tokio::time::timeout(LOOKUP_TIMEOUT, work)
            .await
            .ok()
            .flatten()
    })
}

fn namespaces(state: &State, remote: bool) -> Vec<Candidate> {
    let Some(target) = target(state, remote) else {
        return Vec::new();
    };
    lookup(target, |client, _| async move {
        use k8s_openapi::api::core::v1::Namespace;
        let api: kube::Api<Namespace> = kube::Api::all(client.client.clone());
        let listed = client
            .call(api.list(&kube::api::ListParams::default()))
            .await;
        let names: BTreeSet<String> = match listed {
            Ok(list) => list
                .items
                .into_iter()
                .filter_map(|ns| ns.metadata.name)
                .collect(),
            // Not allowed to list namespaces: offer those that hold Elasticsearch clusters.
            Err(_) => eck::list_raw(&client)
                .await
                .ok()?
                .iter()
                .filter_map(|es| {
                    es.pointer("/metadata/namespace")?
                        .as_str()
                        .map(str::to_string)
                })
                .collect(),
        };
        Some(
            names
                .into_iter()
                .map(|name| Candidate::new(name, None))
                .collect(),
        )
    })
    .unwrap_or_default()
}

fn elasticsearches(state: &State, remote: bool) -> Vec<Candidate> {
    let Some(target) = target(state, remote) else {
        return Vec::new();
    };
    lookup(target, |client, namespace| async move {
        let listing = eck::list_elasticsearches(&client, ListScope::Namespace(namespace.clone()))
            .await
            .ok()?;
        let mut found: Vec<Candidate> = listing
            .items
            .into_iter()
            .map(|es| {
                let version = es.spec.version.unwrap_or_default();
                let health = es.status.health.unwrap_or_default();
                let description = format!("Elasticsearch {version} {health} in {namespace}");
                Candidate::new(es.name, Some(description.trim().to_string()))
            })
            .collect();
        found.sort_by(|a, b| a.value.cmp(&b.value));
        Some(found)
    })
    .unwrap_or_default()
}

/// The aliases of the remote clusters configured on the local cluster (`unlink LOCAL <TAB>`).
fn aliases(state: &State) -> Vec<Candidate> {
    let Some(local) = state.value("local").map(str::to_string) else {
        return Vec::new();
    };
    let Some(target) = target(state, false) else {
        return Vec::new();
    };
    lookup(target, |client, namespace| async move {
        let es = eck::get_elasticsearch(&client, &namespace, &local)
            .await
            .ok()??;
        let entries = es
            .pointer("/spec/remoteClusters")
            .and_then(|e| e.as_array())
            .cloned()
            .unwrap_or_default();
        let mut found: Vec<Candidate> = entries
            .iter()
            .filter_map(|entry| {
                let alias = entry.get("name")?.as_str()?;
                let reference = entry.get("elasticsearchRef");
                let name = reference
                    .and_then(|r| r.get("name"))
                    .and_then(|n| n.as_str());
                let ns = reference
                    .and_then(|r| r.get("namespace"))
                    .and_then(|n| n.as_str())
                    .unwrap_or(&namespace);
                let description = name.map(|name| format!("links to {ns}/{name}"));
                Some(Candidate::new(alias, description))
            })
            .collect();
        // Links across Kubernetes clusters and to external clusters live only in our record.
        let state = crate::plan::EsState {
            id: crate::plan::ClusterId {
                context: String::new(),
                namespace: namespace.clone(),
                name: local.clone(),
            },
            object: es,
        };
        for (alias, record) in state.plugin_links() {
            if found.iter().all(|c| c.value != alias) {
                let description = if record.remote_context.is_empty() {
                    "links to a cluster outside Kubernetes".to_string()
                } else {
                    format!(
                        "links to {}/{} in context {}",
                        record.remote_namespace, record.remote_name, record.remote_context
                    )
                };
                found.push(Candidate::new(&alias, Some(description)));
            }
        }
        Some(found)
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &[&str]) -> Vec<String> {
        line.iter().map(|w| w.to_string()).collect()
    }

    fn values(c: &Completions) -> Vec<&str> {
        c.candidates.iter().map(|c| c.value.as_str()).collect()
    }

    #[test]
    fn subcommands_at_the_root() {
        let c = complete(&words(&[""]));
        let v = values(&c);
        for name in [
            "list",
            "link",
            "unlink",
            "describe",
            "trust",
            "export",
            "unexport",
            "version",
            "completion",
            "man",
        ] {
            assert!(v.contains(&name), "{v:?}");
        }
        assert_eq!(c.directive, directive::NO_FILE_COMP);
        assert_eq!(values(&complete(&words(&["unl"]))), ["unlink"]);
        assert_eq!(values(&complete(&words(&["un"]))), ["unexport", "unlink"]);
    }

    #[test]
    fn enum_values_in_every_form() {
        let v = |line: &[&str]| {
            values(&complete(&words(line)))
                .into_iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            v(&["list", "-o", ""]),
            ["table", "wide", "json", "yaml", "name"]
        );
        assert_eq!(v(&["list", "--output=j"]), ["--output=json"]);
        assert_eq!(v(&["list", "-oy"]), ["-oyaml"]);
        assert_eq!(
            v(&["link", "a", "b", "--dry-run="]),
            ["--dry-run=none", "--dry-run=client", "--dry-run=server"]
        );
        assert_eq!(
            v(&["link", "--security", ""]),
            ["api-key", "certificate"].map(String::from).to_vec()
        );
    }

    #[test]
    fn optional_values_do_not_swallow_the_next_word() {
        // `--dry-run` takes its value only with `=`, so `x` is LOCAL and REMOTE comes next.
        let mut root = Cli::command();
        root.build();
        let state = walk(&root, &words(&["link", "--dry-run", "x"]));
        assert_eq!(state.positionals, 1);
        assert_eq!(state.value("local"), Some("x"));
    }

    #[test]
    fn flags_already_given_are_not_offered_again() {
        let c = complete(&words(&["list", "--no-headers", "--"]));
        let v = values(&c);
        assert!(v.contains(&"--all-contexts"));
        assert!(!v.contains(&"--no-headers"));
        assert!(v.contains(&"--context"), "repeatable flags stay");
    }

    #[test]
    fn protocol_lines() {
        let c = Completions {
            candidates: vec![
                Candidate::new("a", Some("first\tline\nsecond".into())),
                Candidate::new("b", None),
            ],
            directive: directive::NO_FILE_COMP,
        };
        assert_eq!(c.render(), "a\tfirst line\nb\n:4\n");
    }
}
