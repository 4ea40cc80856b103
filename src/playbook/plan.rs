//! `playbook plan`: each step as it would run — the exact command line with the vars
//! interpolated (secrets masked), what it changes, and what a dry run does with it.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::interpolate::{self, Scope};
use super::kinds::{self, DryRun};
use super::model::{self, Playbook, Step, StepKind};
use super::wait::Wait;
use crate::redact;

#[derive(Debug, Serialize)]
pub struct PlannedStep {
    pub id: String,
    pub kind: String,
    /// The command line, the question, the pause or the shell command.
    pub run: String,
    pub changes: String,
    pub in_dry_run: String,
    /// Results of earlier steps it uses, filled in when it runs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub uses: Vec<String>,
    pub on_failure: bool,
}

pub fn steps(pb: &Playbook, vars: &BTreeMap<String, String>) -> Vec<PlannedStep> {
    let none = HashMap::new();
    let env = |n: &str| std::env::var(n).ok();
    let scope = Scope {
        vars,
        env: &env,
        steps: &none,
    };
    pb.steps
        .iter()
        .map(|s| (s, false))
        .chain(pb.on_failure.iter().map(|s| (s, true)))
        .map(|(s, on_failure)| one(pb, s, &scope, on_failure))
        .collect()
}

/// A command line as it pastes into a shell: each argument quoted when it needs it
/// (`--max-lag='10 seconds'`, a URI with `&`), the flag itself left bare.
pub fn shell_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| match a.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") && is_word(flag) => {
                format!("{flag}={}", shell_quote(value))
            }
            _ => shell_quote(a),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:,+@%=".contains(c))
}

/// One shell word: as it is when it has nothing the shell would act on, else in single
/// quotes (a `'` inside written as `'\''`).
pub fn shell_quote(s: &str) -> String {
    if is_word(s) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn one(pb: &Playbook, s: &Step, scope: &Scope, on_failure: bool) -> PlannedStep {
    let text = || {
        interpolate::expand(s.body.as_str().unwrap_or_default(), scope, true)
            .map(|e| e.text)
            .unwrap_or_default()
    };
    let (run, changes, in_dry_run, uses) = match &s.kind {
        StepKind::Command(path) => {
            let (vals, pending) = model::values(pb, s, path, scope, true).unwrap_or_default();
            let dry = match kinds::dry_run(path) {
                DryRun::Flag => "runs with --dry-run".to_string(),
                DryRun::AsIs => "runs (it only reads)".into(),
                DryRun::Instead(p) => format!("runs `{}` instead", p.join(" ")),
                DryRun::Without(o) => format!("runs without {}", o.join(", ")),
                DryRun::Skip => "skipped (it would write)".into(),
            };
            (
                format!("mongoshift {}", shell_line(&model::argv(path, &vals))),
                kinds::effect(path).to_string(),
                dry,
                pending.iter().map(|r| r.text()).collect(),
            )
        }
        StepKind::Confirm => (
            format!("ask: {}", text()),
            "nothing (a gate: asks on a terminal, or passes with --yes)".into(),
            "skipped".into(),
            vec![],
        ),
        StepKind::Wait => (
            Wait::parse(pb, s, scope)
                .map(|w| w.describe())
                .unwrap_or_default(),
            "nothing".into(),
            "skipped".into(),
            vec![],
        ),
        StepKind::Exec => (
            format!("sh -c {}", text()),
            "whatever the command does".into(),
            "skipped".into(),
            vec![],
        ),
    };
    PlannedStep {
        id: s.id.clone(),
        kind: s.kind_name.clone(),
        run: redact::scrub(&run),
        changes,
        in_dry_run,
        uses,
        on_failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_lines_paste_into_a_shell() {
        let argv: Vec<String> = [
            "migrate",
            "--max-lag=10 seconds",
            "--to=mongodb://h:1/?replicaSet=a&tls=true",
            "--db=predixi",
            "--",
            "it's here",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            shell_line(&argv),
            "migrate --max-lag='10 seconds' --to='mongodb://h:1/?replicaSet=a&tls=true' --db=predixi -- 'it'\\''s here'"
        );
        assert_eq!(shell_quote(""), "''");
    }
}
