//! One module per subcommand: turns its arguments into a domain request, calls one workflow,
//! renders the result. Commands never import each other.

pub mod check;
pub mod completion;
pub mod describe;
pub mod export;
pub mod link;
pub mod list;
pub mod man;
pub mod trust;
pub mod unexport;
pub mod unlink;
pub mod version;

use crate::cli::DocumentFormat;
use crate::output;
use crate::workflow::request::Outcome;

/// A workflow's result on stdout: the document with `-o`, else its text, if any.
fn render(outcome: &Outcome, format: Option<DocumentFormat>) -> anyhow::Result<()> {
    match (format, &outcome.text) {
        (Some(format), _) if !outcome.document.is_null() => {
            output::print_document(&outcome.document, format.into())
        }
        (Some(_), _) => Ok(()),
        (None, Some(text)) => output::write_stdout(text),
        (None, None) => Ok(()),
    }
}
