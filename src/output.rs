//! The printer: data to stdout, everything else to stderr; colour only on a terminal.

use std::io::Write;

use anstyle::{AnsiColor, Style};
use serde::Serialize;

/// The `apiVersion` of every document the plugin prints.
pub const API_VERSION: &str = "remote-cluster.kubectl-plugin.dev/v1alpha1";

/// How a document goes to stdout (`-o json|yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentFormat {
    Json,
    Yaml,
}

const WARNING: Style = AnsiColor::Yellow.on_default().bold();
const ERROR: Style = AnsiColor::Red.on_default().bold();
const NOTE: Style = AnsiColor::Cyan.on_default();

/// Writes a serializable document to stdout as JSON or YAML.
pub fn print_document<T: Serialize>(document: &T, format: DocumentFormat) -> anyhow::Result<()> {
    let text = match format {
        DocumentFormat::Json => serde_json::to_string_pretty(document)? + "\n",
        DocumentFormat::Yaml => serde_saphyr::to_string(document)?,
    };
    write_stdout(&text)
}

/// Writes data to stdout; a closed pipe comes back as an error `main` treats as a quiet exit.
pub fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = anstream::stdout();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn write_stderr(prefix: &str, style: Style, message: &str) {
    let mut err = anstream::stderr();
    // A failing stderr has nowhere left to report to.
    let _ = writeln!(err, "{style}{prefix}{style:#}{message}");
}

pub fn warning(message: &str) {
    write_stderr("Warning: ", WARNING, message);
}

pub fn error(message: &str) {
    write_stderr("error: ", ERROR, message);
}

pub fn note(message: &str) {
    write_stderr("", NOTE, message);
}

/// Plain status lines on stderr.
pub fn info(message: &str) {
    write_stderr("", Style::new(), message);
}

/// A kubectl-like table: no borders, columns three spaces apart, optional colour per cell.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<Cell>>,
}

#[derive(Debug, Clone)]
pub struct Cell {
    pub text: String,
    pub style: Style,
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Cell {
            text,
            style: Style::new(),
        }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Cell::from(text.to_string())
    }
}

impl Cell {
    pub fn styled(text: impl Into<String>, style: Style) -> Self {
        Cell {
            text: text.into(),
            style,
        }
    }
}

impl Table {
    pub fn new(headers: Vec<&'static str>) -> Self {
        Self {
            headers,
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<Cell>) {
        self.rows.push(row);
    }

    /// Renders with ANSI styles; the stdout stream strips them when colour is off.
    pub fn render(&self, with_headers: bool) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.len()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.text.chars().count());
            }
        }
        let mut out = String::new();
        if with_headers {
            let header: Vec<Cell> = self.headers.iter().map(|h| Cell::from(*h)).collect();
            render_row(&mut out, &header, &widths);
        }
        for row in &self.rows {
            render_row(&mut out, row, &widths);
        }
        out
    }
}

fn render_row(out: &mut String, row: &[Cell], widths: &[usize]) {
    let last = row.len().saturating_sub(1);
    for (i, cell) in row.iter().enumerate() {
        let style = cell.style;
        out.push_str(&format!("{style}{}{style:#}", cell.text));
        if i < last {
            let pad = widths[i] - cell.text.chars().count() + 3;
            out.push_str(&" ".repeat(pad));
        }
    }
    out.push('\n');
}

/// The colour of a health value, as kubectl users read them.
pub fn health_style(health: &str) -> Style {
    match health {
        "green" => AnsiColor::Green.on_default(),
        "yellow" => AnsiColor::Yellow.on_default(),
        "red" => AnsiColor::Red.on_default(),
        _ => Style::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_three_spaces_apart() {
        let mut table = Table::new(vec!["NAME", "HEALTH"]);
        table.push(vec!["quickstart".into(), "green".into()]);
        table.push(vec!["a".into(), "red".into()]);
        assert_eq!(
            table.render(true),
            "NAME         HEALTH\nquickstart   green\na            red\n"
        );
        assert_eq!(
            table.render(false),
            "quickstart   green\na            red\n"
        );
    }
}
