//! `mongoshift playbook plan|run|status`: YAML runbooks of our own commands.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::cli::Ctx;
use crate::exit::usage;
use crate::playbook::record::{self, RunRecord, RunState};
use crate::playbook::{model, plan, runner};
use crate::report::table;

#[derive(Debug, Args)]
pub struct PlaybookArgs {
    #[command(subcommand)]
    pub command: PlaybookCommand,
}

#[derive(Debug, Subcommand)]
pub enum PlaybookCommand {
    /// Check the playbook and show each step as it would run (vars filled in, secrets masked) and what it changes.
    Plan(PlanArgs),
    /// Run the steps in order, checkpointing each result in .mongoshift/runs/NAME-RUNID.json.
    Run(RunArgs),
    /// The runs of a playbook (or of all), each step's state and duration.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The playbook file, e.g. playbooks/atlas-phase1.yaml.
    pub file: PathBuf,
    /// Set a var (overrides the file's vars), e.g. --var db=predixi (repeatable).
    #[arg(long = "var", value_name = "K=V")]
    pub vars: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The playbook file, e.g. playbooks/atlas-phase1.yaml.
    pub file: PathBuf,
    /// Set a var (overrides the file's vars), e.g. --var db=predixi (repeatable).
    #[arg(long = "var", value_name = "K=V")]
    pub vars: Vec<String>,
    /// Run every step in its own dry-run mode (or skip it when it would write and has none); write nothing, not even a run record.
    #[arg(long)]
    pub dry_run: bool,
    /// Pass confirm gates and every step's own confirmation without asking.
    #[arg(long)]
    pub yes: bool,
    /// Continue the last unfinished run after its last completed step (an interrupted step runs again, with --resume where it has one).
    #[arg(long, conflicts_with = "from_step")]
    pub resume: bool,
    /// Start a new run at this step; earlier steps' results come from the last run.
    #[arg(long, value_name = "ID")]
    pub from_step: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only the runs of this playbook.
    pub file: Option<PathBuf>,
}

pub async fn run(ctx: &Ctx, args: PlaybookArgs) -> Result<()> {
    match args.command {
        PlaybookCommand::Plan(a) => plan_cmd(ctx, a),
        PlaybookCommand::Run(a) => run_cmd(ctx, a).await,
        PlaybookCommand::Status(a) => status(ctx, a),
    }
}

fn parse_vars(raw: &[String]) -> Result<Vec<(String, String)>> {
    raw.iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| usage(format!("--var {kv}: write NAME=VALUE")))
        })
        .collect()
}

fn plan_cmd(ctx: &Ctx, a: PlanArgs) -> Result<()> {
    // Structural mistakes are reported by `check` with all the others: one round of fixes.
    let pb = model::load_all(&a.file)?;
    let vars = model::check(&pb, &parse_vars(&a.vars)?, "(run id)", &|n| {
        std::env::var(n).ok()
    })?;
    let steps = plan::steps(&pb, &vars);
    if ctx.ui.json() {
        ctx.ui.result_json(&serde_json::json!({
            "playbook": pb.name, "file": pb.file, "valid": true, "steps": steps
        }));
        return Ok(());
    }
    let mut t = table::new(["#", "step", "runs", "changes", "in --dry-run"]);
    for (i, s) in steps.iter().enumerate() {
        let n = if s.on_failure {
            "on failure".to_string()
        } else {
            (i + 1).to_string()
        };
        let mut run = s.run.clone();
        if !s.uses.is_empty() {
            run.push_str(&format!(
                "\n(filled in when it runs: {})",
                s.uses.join(", ")
            ));
        }
        t.add_row(vec![
            n,
            format!("{}\n({})", s.id, s.kind),
            run,
            s.changes.clone(),
            s.in_dry_run.clone(),
        ]);
    }
    ctx.ui.result(format!(
        "playbook {} ({}): valid, {} steps{}\n{t}",
        pb.name,
        pb.file,
        pb.steps.len(),
        if pb.on_failure.is_empty() {
            String::new()
        } else {
            format!(" and {} on failure", pb.on_failure.len())
        }
    ));
    Ok(())
}

async fn run_cmd(ctx: &Ctx, a: RunArgs) -> Result<()> {
    let pb = model::load_all(&a.file)?;
    if !pb.problems.is_empty() {
        // Report them with every other mistake (check fails when there are any), run nothing.
        model::check(&pb, &parse_vars(&a.vars)?, "(run id)", &|n| {
            std::env::var(n).ok()
        })?;
    }
    let opts = runner::RunOptions {
        cli_vars: parse_vars(&a.vars)?,
        dry_run: a.dry_run,
        yes: a.yes,
        resume: a.resume,
        from_step: a.from_step,
        config: ctx
            .config
            .source
            .as_ref()
            .map(|p| std::fs::canonicalize(p).unwrap_or(p.clone())),
    };
    let rec = runner::run(&ctx.ui, &pb, &opts).await?;
    if ctx.ui.json() {
        ctx.ui.result_json(&rec);
    } else {
        ctx.ui.result(summary(&rec));
    }
    match rec.state {
        RunState::Succeeded => Ok(()),
        _ => {
            let code = rec.exit_code.unwrap_or(crate::exit::RUNTIME);
            Err(crate::exit::WithCode(
                code,
                format!(
                    "playbook {} stopped at step {} (exit {code}); see {}",
                    rec.playbook,
                    rec.failed_step.as_deref().unwrap_or_default(),
                    if rec.dry_run {
                        "the messages above".to_string()
                    } else {
                        rec.path().display().to_string()
                    }
                ),
            )
            .into())
        }
    }
}

fn summary(rec: &RunRecord) -> String {
    let mut t = table::new(["step", "kind", "state", "time", "exit"]);
    for (s, of) in rec
        .steps
        .iter()
        .map(|s| (s, ""))
        .chain(rec.on_failure.iter().map(|s| (s, " (on_failure)")))
    {
        t.add_row(vec![
            format!("{}{of}", s.id),
            s.kind.clone(),
            format!("{:?}", s.state).to_lowercase(),
            s.seconds.map_or(String::new(), table::duration_secs),
            s.exit_code.map_or(String::new(), |c| c.to_string()),
        ]);
    }
    format!(
        "playbook {} run {}{}: {} in {}\n{t}{}",
        rec.playbook,
        rec.run_id,
        if rec.dry_run { " (dry run)" } else { "" },
        format!("{:?}", rec.state).to_lowercase(),
        table::duration_secs(rec.seconds()),
        if rec.dry_run {
            "\nnothing was written (dry run)".to_string()
        } else {
            format!("\nrun record: {}", rec.path().display())
        }
    )
}

fn status(ctx: &Ctx, a: StatusArgs) -> Result<()> {
    let name = match &a.file {
        Some(f) => Some(model::load(f)?.name),
        None => None,
    };
    let mut runs = vec![];
    for r in record::list(name.as_deref())? {
        match r {
            Ok(r) => runs.push(r),
            Err(e) => ctx.ui.warn(format!("{e:#}")),
        }
    }
    if ctx.ui.json() {
        let v: Vec<serde_json::Value> = runs
            .iter()
            .map(|r| {
                let mut j = serde_json::to_value(r).unwrap_or_default();
                j["state"] = serde_json::to_value(r.effective_state()).unwrap_or_default();
                j
            })
            .collect();
        ctx.ui.result_json(&serde_json::json!({ "runs": v }));
        return Ok(());
    }
    if runs.is_empty() {
        ctx.ui.result(format!(
            "no playbook runs recorded in {}{}",
            record::DIR,
            name.map(|n| format!(" for {n}")).unwrap_or_default()
        ));
        return Ok(());
    }
    let mut t = table::new(["run", "playbook", "state", "started", "time", "steps done"]);
    for r in &runs {
        let done = r
            .steps
            .iter()
            .filter(|s| s.state == record::StepState::Succeeded)
            .count();
        t.add_row(vec![
            r.run_id.clone(),
            r.playbook.clone(),
            format!("{:?}", r.effective_state()).to_lowercase()
                + r.failed_step
                    .as_deref()
                    .map(|s| format!(" at {s}"))
                    .unwrap_or_default()
                    .as_str(),
            r.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            table::duration_secs(r.seconds()),
            format!("{done}/{}", r.steps.len()),
        ]);
    }
    let last = runs.last().expect("not empty");
    ctx.ui.result(format!(
        "{t}\nthe last run, step by step:\n{}",
        summary(last)
    ));
    Ok(())
}
