//! The output channel every command writes through.
//!
//! Results go to stdout (a table, or JSON with `--output json`); messages and
//! progress go to stderr so that JSON on stdout stays parseable. Everything
//! passes through `redact::scrub` on its way out.

use std::io::{IsTerminal, Write};

use clap::ValueEnum;
use serde::Serialize;

use crate::redact;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Clone)]
pub struct Ui {
    pub format: OutputFormat,
    pub verbose: u8,
    pub quiet: bool,
    /// Draw progress bars (stderr is a terminal and --no-progress was not given).
    pub progress_bars: bool,
    /// Whether stdin is a terminal, for confirmation prompts.
    pub interactive: bool,
    /// Print results on stdout; off for a step whose caller reports its result as part
    /// of its own (the restore drill inside `backups verify --output json`).
    pub results: bool,
}

impl Ui {
    pub fn new(format: OutputFormat, verbose: u8, quiet: bool, no_progress: bool) -> Ui {
        Ui {
            format,
            verbose,
            quiet,
            progress_bars: !no_progress && !quiet && std::io::stderr().is_terminal(),
            interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
            results: true,
        }
    }

    /// The same, with results kept off stdout.
    pub fn without_results(&self) -> Ui {
        Ui {
            results: false,
            ..self.clone()
        }
    }

    pub fn json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    /// A status line for people, on stderr; silent with --quiet.
    pub fn info(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", redact::scrub(msg.as_ref()));
        }
    }

    /// Detail shown with -v.
    pub fn debug(&self, msg: impl AsRef<str>) {
        if self.verbose > 0 && !self.quiet {
            eprintln!("{}", redact::scrub(msg.as_ref()));
        }
    }

    /// A warning is shown even with --quiet: it is something the user must know.
    pub fn warn(&self, msg: impl AsRef<str>) {
        eprintln!("warning: {}", redact::scrub(msg.as_ref()));
    }

    /// The command's result for people (stdout).
    pub fn result(&self, text: impl AsRef<str>) {
        if !self.results {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", redact::scrub(text.as_ref()));
    }

    /// The command's result for machines (stdout), pretty-printed JSON.
    pub fn result_json<T: Serialize>(&self, value: &T) {
        let text = serde_json::to_string_pretty(value)
            .unwrap_or_else(|e| format!("{{\"error\": \"could not serialize the result: {e}\"}}"));
        self.result(text);
    }
}
