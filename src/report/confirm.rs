//! Confirmation before destructive work: a prompt on a terminal, a refusal without one.

use std::io::{BufRead, Write};

use anyhow::Result;

use super::Ui;
use crate::exit::usage;

/// Ask `question`; Ok only on "y"/"yes". Without a terminal, refuse and point at --yes.
pub fn ask(ui: &Ui, question: &str) -> Result<()> {
    if !ui.interactive {
        return Err(usage(format!(
            "{question} — refusing without confirmation: no terminal to ask on. Re-run with --yes to proceed"
        )));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    match line.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(usage("aborted: not confirmed; nothing was changed")),
    }
}
