//! The library's modules form one-way layers (docs/design.md): a module may use modules of
//! lower layers, never of a higher one, and only the command line layer knows about clap.
//! This test reads the sources, so a wrong import fails `cargo test` with the file and line.

use std::path::{Path, PathBuf};

/// Top-level modules of `src/`, highest layer first. Modules on one line share a layer and
/// must not use each other (`commands` and `complete` both sit on `cli`, which is above them).
const LAYERS: &[&[&str]] = &[
    &["main", "lib", "bin"],
    &["commands", "complete"],
    &["cli"],
    &["workflow"],
    &["observe", "apply"],
    &["es"],
    &["k8s"],
    &["error", "interrupt"],
    &["check"],
    &["describe"],
    &["plan"],
    &["output", "versions", "input"],
];

/// Modules allowed to name clap: the command line and what renders it.
const CLAP_MODULES: &[&str] = &["main", "bin", "cli", "commands", "complete"];

fn rank(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` is not in LAYERS: add it to tests/layers.rs"))
}

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

fn top_module(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_string()
}

/// Every `crate::<module>` the text names, with its byte offset: in paths, in `use` lines and
/// inside grouped imports (`use crate::{apply::Run, plan::Plan}`).
fn crate_modules(text: &str) -> Vec<(usize, String)> {
    let mut modules = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let after = &text[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            for item in top_level_items(group) {
                modules.push((at, item));
            }
        } else {
            let name = leading_identifier(after);
            if !name.is_empty() {
                modules.push((at, name));
            }
        }
    }
    modules
}

fn leading_identifier(text: &str) -> String {
    text.trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The first identifier of each comma-separated item of a `{...}` group, up to its closing brace.
fn top_level_items(group: &str) -> Vec<String> {
    let mut items = vec![leading_identifier(group)];
    let mut depth = 0;
    for (at, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => items.push(leading_identifier(&group[at + 1..])),
            _ => {}
        }
    }
    items.retain(|item| !item.is_empty());
    items
}

/// The source with comment lines blanked (kept as empty lines so line numbers stay right).
fn without_comment_lines(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.trim_start().starts_with("//") {
                ""
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

fn violations() -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in &files {
        let module = top_module(&src, file);
        let text = without_comment_lines(&std::fs::read_to_string(file).unwrap());
        let shown = file.strip_prefix(&src).unwrap().display();
        for (offset, used) in crate_modules(&text) {
            if used == module || rank(&used) > rank(&module) {
                continue;
            }
            found.push(format!(
                "src/{shown}:{}: `{module}` uses `{used}`, which is not below it",
                line_of(&text, offset)
            ));
        }
        if module == "commands" && !file.ends_with("commands/mod.rs") {
            for (offset, _) in text.match_indices("crate::commands::") {
                found.push(format!(
                    "src/{shown}:{}: one command uses another; move what they share down a layer",
                    line_of(&text, offset)
                ));
            }
        }
        if !CLAP_MODULES.contains(&module.as_str()) {
            for (offset, _) in text.match_indices("clap::") {
                found.push(format!(
                    "src/{shown}:{}: `{module}` names clap; only the command line layer may",
                    line_of(&text, offset)
                ));
            }
        }
    }
    found
}

#[test]
fn imports_point_down_the_layers_and_clap_stays_in_the_command_line() {
    let found = violations();
    assert!(found.is_empty(), "layer violations:\n{}", found.join("\n"));
}

#[test]
fn the_scanner_sees_uses_in_groups_and_paths() {
    let names = |text: &str| -> Vec<String> {
        crate_modules(text)
            .into_iter()
            .map(|(_, name)| name)
            .collect()
    };
    assert_eq!(
        names("use crate::{\n    apply::{Run, Undo},\n    plan::Plan,\n};"),
        ["apply", "plan"]
    );
    assert_eq!(names("use crate::workflow::Session;"), ["workflow"]);
    assert_eq!(
        names("crate::plan::Plan and crate::output::info"),
        ["plan", "output"]
    );
    assert_eq!(line_of("a\nb\ncrate::x", 4), 3);
}

#[test]
fn every_top_level_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    for file in files {
        rank(&top_module(&src, &file));
    }
}
