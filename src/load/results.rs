//! The outcome of a load, per namespace, and the verdict every load command gives: exit 0
//! only when every namespace was checked and matched.

use anyhow::Result;
use serde::Serialize;

use crate::exit::check_failed;
use crate::report::{table, Ui};

/// The outcome of one namespace.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NsResult {
    pub source: String,
    pub target: String,
    pub read: u64,
    pub inserted: u64,
    pub duplicates: u64,
    /// Documents an interrupted earlier run had copied, kept by this resumed one: then
    /// read = inserted + duplicates (a range the earlier run had begun) and
    /// kept + inserted = target_count.
    pub kept: u64,
    pub target_count: u64,
    pub expected: Option<u64>,
    pub indexes: usize,
    pub seconds: f64,
    pub ok: bool,
    pub problem: Option<String>,
    /// Documents (time-series buckets) the server refused, each by `_id` with its reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<crate::mongo::raw_write::Refused>,
}

/// The result table for people.
pub fn table(results: &[NsResult]) -> String {
    // The `kept` column only when a run resumed: otherwise it is always 0.
    let resumed = results.iter().any(|r| r.kept > 0);
    let mut headers = vec!["target", "read", "inserted", "duplicates"];
    if resumed {
        headers.push("kept");
    }
    headers.extend(["target count", "expected", "indexes", "time", "result"]);
    let mut t = table::new(headers);
    for r in results {
        let mut row = vec![
            r.target.clone(),
            r.read.to_string(),
            r.inserted.to_string(),
            r.duplicates.to_string(),
        ];
        if resumed {
            row.push(r.kept.to_string());
        }
        row.extend([
            r.target_count.to_string(),
            r.expected
                .map(|e| e.to_string())
                .unwrap_or_else(|| "-".into()),
            r.indexes.to_string(),
            table::duration_secs(r.seconds),
            if r.ok {
                "ok".to_string()
            } else {
                format!("FAILED: {}", r.problem.clone().unwrap_or_default())
            },
        ]);
        t.add_row(row);
    }
    t.to_string()
}

/// Ok when every namespace passed; a count or index mismatch is a failed check (exit 3),
/// anything else a failure to finish (exit 1) that `--resume` can pick up.
pub fn verdict(verb: &str, results: &[NsResult]) -> Result<()> {
    let failed: Vec<&NsResult> = results.iter().filter(|r| !r.ok).collect();
    if failed.is_empty() {
        return Ok(());
    }
    let names = failed
        .iter()
        .map(|f| format!("{} ({})", f.target, f.problem.clone().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("; ");
    if failed.iter().any(|f| {
        f.problem
            .as_deref()
            .is_some_and(|p| p.starts_with("count mismatch") || p.starts_with("index"))
    }) {
        Err(check_failed(format!(
            "{verb} finished with mismatches: {names}"
        )))
    } else {
        // Re-running reads the same damaged bytes: --resume cannot help those, so the way
        // out is said per kind of failure.
        let damaged = |f: &&NsResult| {
            f.problem
                .as_deref()
                .is_some_and(|p| p.contains(" is truncated") || p.contains(" is corrupt"))
        };
        let refused = |f: &&NsResult| !f.refused.is_empty();
        let names_of = |v: &[&NsResult]| {
            v.iter()
                .map(|f| f.target.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (bad, rest): (Vec<&NsResult>, Vec<&NsResult>) =
            failed.iter().copied().partition(damaged);
        let (refusing, other): (Vec<&NsResult>, Vec<&NsResult>) =
            rest.into_iter().partition(refused);
        let mut fixes = Vec::new();
        if !bad.is_empty() {
            fixes.push(format!(
                "The source of {} is damaged, so re-running cannot help: restore from another copy of the backup or dump, or leave {} out with --ns-exclude",
                names_of(&bad),
                if bad.len() == 1 { "it" } else { "them" }
            ));
        }
        if !refusing.is_empty() {
            fixes.push(format!(
                "{} hold{} documents the server refuses, so re-running cannot help: everything else is restored; repair or remove the refused ones in the source",
                names_of(&refusing),
                if refusing.len() == 1 { "s" } else { "" }
            ));
        }
        if !other.is_empty() {
            fixes.push(format!(
                "For {}: fix the cause and re-run with --resume",
                names_of(&other)
            ));
        }
        Err(anyhow::anyhow!(
            "{verb} failed for {}: {names}. {}",
            table::count(failed.len() as u64, "namespace", "namespaces"),
            fixes.join("; ")
        ))
    }
}

/// "restored 5/5 namespaces" after the table.
pub fn summary(ui: &Ui, verb_past: &str, results: &[NsResult]) {
    let ok = results.iter().filter(|r| r.ok).count();
    ui.result(format!("{verb_past} {ok}/{} namespaces", results.len()));
}
