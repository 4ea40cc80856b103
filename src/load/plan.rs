//! The plan every load shows before it writes: each namespace, what the source holds, what
//! the target already holds, and what will happen to it. Non-empty targets without
//! `--drop`/`--append` are refused here, writing nothing; a dry run answers the same way.

use anyhow::Result;
use serde::Serialize;

use crate::exit::usage;
use crate::load::state::NsState;
use crate::namespace::Namespace;
use crate::report::{table, Ui};

/// One namespace of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanItem {
    pub source: String,
    pub target: String,
    pub kind: &'static str,
    pub documents: Option<u64>,
    /// Indexes to build: as the result table counts them (not `_id_`).
    pub indexes: usize,
    pub target_documents: u64,
    /// `_id` ranges the collection is copied in (migrate; 1 when not split).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranges: Option<usize>,
    pub action: &'static str,
}

pub const CONFLICT: &str = "CONFLICT";

/// What a target namespace already holds (an estimate; 0 when it does not exist).
pub async fn target_documents(client: &mongodb::Client, t: &Namespace) -> u64 {
    client
        .database(&t.db)
        .collection::<mongodb::bson::Document>(&t.coll)
        .estimated_document_count()
        .await
        .unwrap_or(0)
}

/// `target_documents` of each namespace, in order, asked at once (bounded): across a
/// network a plan of many collections would otherwise pay one round trip each, in turn.
pub async fn target_documents_all(client: &mongodb::Client, ts: &[Namespace]) -> Vec<u64> {
    use futures::StreamExt;
    futures::stream::iter(ts)
        .map(|t| target_documents(client, t))
        .buffered(16)
        .collect()
        .await
}

/// The action for a namespace: from the resume state a previous run left (`on_loading`
/// names what happens to a half-loaded one), else from what the target holds and the options.
pub fn action(
    recorded: Option<NsState>,
    on_loading: &'static str,
    existing: u64,
    view: bool,
    drop: bool,
    append: bool,
) -> &'static str {
    match recorded {
        Some(NsState::Done) => return "skip (done)",
        Some(NsState::Loading) => return on_loading,
        None => {}
    }
    match () {
        _ if view => "create view",
        _ if existing > 0 && drop => "drop + load",
        _ if existing > 0 && append => "append",
        _ if existing > 0 => CONFLICT,
        _ => "load",
    }
}

/// Show the plan: on stdout for a dry run (`{dry_run, source, plan}` with --output json),
/// else as information on stderr before the work starts (with --output json too: a
/// playbook step's log shows what each load did, e.g. `skip (done)` after --resume).
/// `heading` is the line above the table; `source` names the source in the JSON.
pub fn show(ui: &Ui, heading: &str, source: &str, plan: &[PlanItem], dry_run: bool) {
    show_with(ui, heading, source, plan, dry_run, None)
}

/// `show`, with one more member in the dry run's JSON (restore's `oplog` summary).
pub fn show_with(
    ui: &Ui,
    heading: &str,
    source: &str,
    plan: &[PlanItem],
    dry_run: bool,
    extra: Option<(&str, serde_json::Value)>,
) {
    if ui.json() && dry_run {
        let mut out = serde_json::json!({ "dry_run": true, "source": source, "plan": plan });
        if let Some((k, v)) = extra {
            out[k] = v;
        }
        ui.result_json(&out);
        return;
    }
    let ranges = plan.iter().any(|p| p.ranges.is_some_and(|r| r > 1));
    let mut headers = vec!["source", "target", "kind", "documents", "indexes"];
    if ranges {
        headers.push("ranges");
    }
    headers.extend(["target now", "action"]);
    let mut t = table::new(headers);
    for p in plan {
        let mut row = vec![
            p.source.clone(),
            p.target.clone(),
            p.kind.to_string(),
            p.documents
                .map(|d| d.to_string())
                .unwrap_or_else(|| "?".into()),
            p.indexes.to_string(),
        ];
        if ranges {
            row.push(p.ranges.unwrap_or(1).to_string());
        }
        row.extend([p.target_documents.to_string(), p.action.to_string()]);
        t.add_row(row);
    }
    let text = format!("{heading}\n{t}");
    if dry_run {
        ui.result(text);
    } else {
        ui.info(text);
    }
}

/// Refuse (exit 2, nothing written) when a target holds documents and neither `--drop`
/// nor `--append` was given. `note` is added to the message (e.g. why --resume did not help).
fn refuse_conflicts(plan: &[PlanItem], dry_run: bool, note: &str) -> Result<()> {
    let conflicts: Vec<&PlanItem> = plan.iter().filter(|p| p.action == CONFLICT).collect();
    if conflicts.is_empty() {
        return Ok(());
    }
    let list = conflicts
        .iter()
        .map(|c| format!("{} ({} docs)", c.target, c.target_documents))
        .collect::<Vec<_>>()
        .join(", ");
    // The dry run answers as the real run would: it would refuse, so this plan fails.
    let what = if dry_run {
        "dry run: the real run would refuse, because these target collections already hold documents"
    } else {
        "these target collections already hold documents"
    };
    Err(usage(format!(
        "{what}: {list}. Nothing was written.{note} Use --drop to replace them, --append to add \
         to them, or --ns-from/--ns-to to write elsewhere"
    )))
}

/// What decides whether a shown plan goes ahead.
pub struct Gate<'a> {
    pub dry_run: bool,
    pub resume: bool,
    pub yes: bool,
    /// `--resume` was given but the target holds no state of this run.
    pub nothing_recorded: bool,
    /// Without `--resume`: the target holds the state of an interrupted run from this source,
    /// which `--resume` would continue.
    pub interrupted: bool,
    /// "restore of SOURCE", "migrate from SOURCE": for messages.
    pub run: &'a str,
    /// The confirmation question.
    pub question: &'a str,
}

/// After the plan is shown: refuse conflicts (saying why `--resume` could not help), end a
/// dry run (Ok(false): nothing was written), or ask for confirmation (Ok(true): go ahead).
pub fn gate(ui: &Ui, plan: &[PlanItem], g: Gate) -> Result<bool> {
    let note = if g.resume && g.nothing_recorded {
        format!(
            " --resume found no interrupted {} into these targets (the last one finished \
             cleanly, or none ran), so there is nothing to continue.",
            g.run
        )
    } else if !g.resume && g.interrupted {
        format!(
            " An interrupted {} into these targets is recorded: re-run the same command with \
             --resume to continue it.",
            g.run
        )
    } else {
        String::new()
    };
    refuse_conflicts(plan, g.dry_run, &note)?;
    if g.dry_run {
        // On stdout only for people: with --output json, stdout is the plan document alone.
        if ui.json() {
            ui.info("dry run: nothing was written");
        } else {
            ui.result("dry run: nothing was written");
        }
        return Ok(false);
    }
    if !g.yes {
        crate::report::confirm::ask(ui, g.question)?;
    }
    Ok(true)
}
