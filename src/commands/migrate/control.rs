//! `migrate status | stop | finalize --to DST`: read and steer the migrations recorded in
//! a target. They need only the target: the record (see `follow::record`) holds what the
//! running process reports, and a stop is a request the tail picks up within a second,
//! wherever it runs.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use mongodb::bson::doc;
use serde::Serialize;

use crate::cli::{parse_duration, resolve_side, Ctx};
use crate::follow::record::{self, Phase, Record, Run};
use crate::report::table;

#[derive(Debug, Args)]
pub struct ControlArgs {
    /// The target the migration copies into: a config target name or a URI.
    #[arg(long, value_name = "DST")]
    pub to: String,
    /// Only the migration from this source (needed when several copy into one target).
    #[arg(long, value_name = "SRC")]
    pub from: Option<String>,
    /// Only the migration of these databases (as its --db gave them).
    #[arg(long = "db", value_name = "DB")]
    pub dbs: Vec<String>,
    /// Only the migration that renamed with this --ns-to pattern.
    #[arg(long, value_name = "PATTERN")]
    pub ns_to: Vec<String>,
    /// How long to wait for a reachable server.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// `migrate stop`: the run to stop, and how long to wait for it (only stop waits).
#[derive(Debug, Args)]
pub struct StopArgs {
    #[command(flatten)]
    pub run: ControlArgs,
    /// How long to wait for the tail to save its position and exit.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub wait: Duration,
}

impl ControlArgs {
    async fn connect(&self, ctx: &Ctx) -> Result<(String, mongodb::Client)> {
        let t = resolve_side(&self.to, &ctx.config)
            .with_context(|| format!("the target (--to {})", crate::redact::uri(&self.to)))?;
        let opts = crate::mongo::ConnectOptions {
            timeout: self.timeout,
        };
        let c = crate::mongo::connect(&t, &opts)
            .await
            .with_context(|| format!("the target (--to {})", t.label()))?;
        Ok((t.label(), c))
    }

    /// The runs recorded in the target, narrowed to `--from` when given.
    async fn runs(&self, ctx: &Ctx, client: &mongodb::Client) -> Result<Vec<Run>> {
        let mut runs = record::all(client).await?;
        if let Some(from) = &self.from {
            let src = resolve_side(from, &ctx.config)
                .with_context(|| format!("the source (--from {})", crate::redact::uri(from)))?;
            let hosts = crate::migration::identity(&src.uri, &[], &[]);
            runs.retain(|r| r.run == hosts || r.run.starts_with(&format!("{hosts} --")));
        }
        for to in &self.ns_to {
            let part = format!(" --ns-to {to}");
            runs.retain(|r| r.run.contains(&part));
        }
        if !self.dbs.is_empty() {
            let mut want = self.dbs.clone();
            want.sort();
            want.dedup();
            runs.retain(|r| {
                let mut have = r.dbs.clone();
                have.sort();
                have.dedup();
                have == want
            });
        }
        Ok(runs)
    }

    /// The one run a command acts on.
    fn one(&self, runs: Vec<Run>, to: &str) -> Result<Option<Run>> {
        if runs.len() > 1 {
            let list: Vec<String> = runs.iter().map(|r| r.run.clone()).collect();
            return Err(crate::exit::usage(format!(
                "{} migrations copy into {to} ({}); say which with --from, --db and --ns-to",
                runs.len(),
                list.join("; ")
            )));
        }
        Ok(runs.into_iter().next())
    }
}

/// One run as `migrate status --output json` shows it.
#[derive(Serialize)]
struct RunStatus<'a> {
    #[serde(flatten)]
    run: &'a Run,
    alive: bool,
    /// What a controller needs without polling the source: copying, following, stopping
    /// (a stop was asked and the tail is still alive), stopped or failed.
    state: &'static str,
    /// The initial copy finished and was checked.
    initial_copy_complete: bool,
    /// The source's cluster time up to which every change is applied, `{t, i}`.
    applied_optime: Option<serde_json::Value>,
    position: String,
    heartbeat_age_secs: f64,
}

/// A run's renames as its identity records them (` --ns-to P`), for its header: two runs
/// into one target that differ only by their --ns-to must read apart.
fn ns_to_of(run: &str) -> String {
    let to: Vec<&str> = run
        .split(" --ns-to ")
        .skip(1)
        .map(|p| p.split(" --").next().unwrap_or(p))
        .collect();
    if to.is_empty() {
        String::new()
    } else {
        format!(" (--ns-to {})", to.join(", "))
    }
}

fn state_of(r: &Run, alive: bool) -> &'static str {
    match r.phase {
        Phase::Following if r.stop_requested && alive => "stopping",
        Phase::Following | Phase::Copying if !alive => "stopped",
        p => p.as_str(),
    }
}

pub async fn status(ctx: &Ctx, args: ControlArgs) -> Result<()> {
    let (to, client) = args.connect(ctx).await?;
    let runs = args.runs(ctx, &client).await?;
    let now = record::now_ms();
    let views: Vec<RunStatus> = runs
        .iter()
        .map(|r| RunStatus {
            run: r,
            alive: record::alive(r),
            state: state_of(r, record::alive(r)),
            initial_copy_complete: r.copied,
            applied_optime: r
                .token
                .as_ref()
                .and_then(crate::follow::event::token_time)
                .filter(|_| r.copied)
                .map(|t| serde_json::json!({ "t": t.time, "i": t.increment })),
            position: crate::migration::position_text(r.position_secs),
            heartbeat_age_secs: (now - r.heartbeat_ms) as f64 / 1000.0,
        })
        .collect();
    if ctx.ui.json() {
        ctx.ui
            .result_json(&serde_json::json!({ "target": to, "runs": views }));
        return Ok(());
    }
    if views.is_empty() {
        ctx.ui.result(format!("no migration is recorded in {to}"));
        return Ok(());
    }
    for v in &views {
        let r = v.run;
        let process = match (r.pid, v.alive) {
            (Some(pid), true) => format!(
                "running (pid {pid} on {})",
                r.host.as_deref().unwrap_or("?")
            ),
            (Some(pid), false) => format!("not running (pid {pid} is gone)"),
            (None, _) => "not running".into(),
        };
        let mut lines = vec![
            format!(
                "migration {} → {}{}{}",
                r.from,
                r.to,
                if r.dbs.is_empty() {
                    String::new()
                } else {
                    format!(" (--db {})", r.dbs.join(", "))
                },
                ns_to_of(&r.run)
            ),
            format!(
                "  phase      {}{}",
                r.phase.as_str(),
                if r.follow { " (with --follow)" } else { "" }
            ),
            format!(
                "  process    {process}, last heartbeat {:.0} s ago",
                v.heartbeat_age_secs
            ),
        ];
        if let Some(log) = &r.log {
            lines.push(format!("  log        {log}"));
        }
        if r.follow && r.copied {
            lines.push(format!(
                "  tail       {} events applied, {:.0} events/s, lag {:.1} s (p50 {} ms, p99 {} ms){}",
                r.tail.events,
                r.tail.events_per_sec,
                r.tail.lag_ms as f64 / 1000.0,
                r.tail.lag_p50_ms,
                r.tail.lag_p99_ms,
                if r.tail.caught_up { ", caught up" } else { "" }
            ));
            lines.push(format!("  position   {}", v.position));
        }
        if let Some(e) = &r.last_error {
            lines.push(format!("  last error {e}"));
        }
        ctx.ui.result(lines.join("\n"));
        if !r.copy.is_empty() {
            let mut t = table::new(["namespace", "copied", "of", "docs/s"]);
            for p in &r.copy {
                t.add_row(vec![
                    p.ns.clone(),
                    p.copied.to_string(),
                    p.total.to_string(),
                    format!("{:.0}", p.docs_per_sec),
                ]);
            }
            ctx.ui.result(t.to_string());
        }
    }
    Ok(())
}

pub async fn stop(ctx: &Ctx, stop: StopArgs) -> Result<()> {
    let (args, wait) = (stop.run, stop.wait);
    let (to, client) = args.connect(ctx).await?;
    let running: Vec<Run> = args
        .runs(ctx, &client)
        .await?
        .into_iter()
        .filter(|r| r.phase == Phase::Following || r.phase == Phase::Copying)
        .collect();
    // Records of tails whose process died (kill -9) stay "following"; a live one wins.
    let alive: Vec<Run> = running
        .iter()
        .filter(|r| record::alive(r))
        .cloned()
        .collect();
    let running = if alive.is_empty() { running } else { alive };
    let Some(run) = args.one(running, &to)? else {
        ctx.ui.result(format!(
            "no migration tail is running into {to}; nothing to stop"
        ));
        return Ok(());
    };
    let rec = Record::new(&client, &run.run);
    if !record::alive(&run) {
        crate::follow::mark(&rec, Phase::Stopped, None).await;
        ctx.ui.result(format!(
            "the migration from {} was not running (its process is gone); recorded as stopped at {}",
            run.from,
            crate::migration::position_text(run.position_secs)
        ));
        return Ok(());
    }
    if run.phase == Phase::Copying {
        return Err(crate::exit::usage(format!(
            "the migration from {} is still copying (pid {}); stop it with Ctrl-C or SIGTERM and continue later with --resume",
            run.from,
            run.pid.unwrap_or(0)
        )));
    }
    let last = crate::follow::control::stop(&rec, wait).await?;
    if ctx.ui.json() {
        ctx.ui.result_json(&serde_json::json!({
            "ok": last.phase == Phase::Stopped,
            "phase": last.phase,
            "events": last.tail.events,
            "position_secs": last.position_secs,
        }));
    } else {
        ctx.ui.result(format!(
            "stopped the tail from {}: {} events applied, position {} kept; phase {}",
            last.from,
            last.tail.events,
            crate::migration::position_text(last.position_secs),
            last.phase.as_str()
        ));
    }
    // Ending a switch's reverse sync leaves its target (the old cluster) frozen on purpose.
    if crate::mongo::write_block::is_blocked(&client, &to)
        .await
        .unwrap_or(false)
    {
        ctx.ui.warn(format!(
            "{to} stays blocked for user writes (a cutover's freeze); lift it on purpose with `mongoshift freeze --off` on it"
        ));
    }
    if last.phase == Phase::Failed {
        anyhow::bail!(
            "the tail had failed: {}",
            last.last_error.unwrap_or_default()
        );
    }
    Ok(())
}

pub async fn finalize(ctx: &Ctx, args: ControlArgs) -> Result<()> {
    let (to, client) = args.connect(ctx).await?;
    let runs = args.runs(ctx, &client).await?;
    let Some(run) = args.one(runs, &to)? else {
        ctx.ui.result(format!(
            "no migration is recorded in {to}; nothing to finalize"
        ));
        return Ok(());
    };
    if record::alive(&run) {
        return Err(crate::exit::usage(format!(
            "the migration from {} is still {} (pid {}); stop it first with `mongoshift migrate stop --to {}`",
            run.from,
            run.phase.as_str(),
            run.pid.unwrap_or(0),
            crate::cli::arg_display(&args.to)
        )));
    }
    if !run.copied {
        return Err(crate::exit::usage(format!(
            "the migration from {} never finished its copy; finish it with --resume (or start over with --drop) first",
            run.from
        )));
    }
    let restored = crate::follow::control::restore_relaxed(&client, &run).await?;
    if ctx.ui.json() {
        ctx.ui.result_json(
            &serde_json::json!({ "ok": true, "from": run.from, "restored": restored }),
        );
    } else {
        let mut text = format!("finalized the migration from {} into {to}", run.from);
        if restored.is_empty() {
            text.push_str(": no index was relaxed");
        } else {
            text.push_str(": restored ");
            text.push_str(&restored.join("; "));
        }
        ctx.ui.result(text);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn headers_name_each_runs_renames() {
        assert_eq!(
            super::ns_to_of("migrate from h:1 --db a --ns-to b.* --ns-to c.x"),
            " (--ns-to b.*, c.x)"
        );
        assert_eq!(super::ns_to_of("migrate from h:1 --db a"), "");
    }
}
