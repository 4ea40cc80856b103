//! The tail phase of a run: follow the source from the recorded position until Ctrl-C,
//! SIGTERM or `migrate stop`, keeping the record's phase and the refused change.

use anyhow::{Context, Result};
use mongodb::bson::{doc, Bson};
use mongodb::Client;

use super::{detach, position_text, CopyArgs};
use crate::cli::Ctx;
use crate::follow::apply::{Applier, Selection};
use crate::follow::record::{self, Phase, Record, Run};
use crate::follow::{self, Ended, Tail};
use crate::load::state::StateStore;

/// The change `--skip-change T:I` names: it must be the one the tail stopped on.
fn skip_of(
    arg: Option<&str>,
    run: &Run,
    resume: bool,
) -> Result<Option<crate::follow::apply::Refused>> {
    let Some(arg) = arg else {
        return Ok(None);
    };
    if !resume {
        return Err(crate::exit::usage(
            "--skip-change goes with --resume: it leaves out the change a stopped tail could not apply",
        ));
    }
    let parsed = arg
        .split_once(':')
        .and_then(|(t, i)| Some((t.trim().parse::<u32>().ok()?, i.trim().parse::<u32>().ok()?)));
    let Some((t, i)) = parsed else {
        return Err(crate::exit::usage(format!(
            "--skip-change {arg}: expected the source time of the change as the tail's error printed it, T:I (e.g. 1795969093:4)"
        )));
    };
    match run.failed_change.as_ref() {
        Some(c) if c.t == t && c.i == i => crate::follow::apply::Refused::from_ref(c)
            .map(Some)
            .context("the run record's failed change does not read back"),
        Some(c) => Err(crate::exit::usage(format!(
            "--skip-change {t}:{i} is not the change the tail stopped on: that one is {}:{} ({} _id {}); nothing was changed",
            c.t, c.i, c.ns, c.id
        ))),
        None => Err(crate::exit::usage(format!(
            "--skip-change {t}:{i}: the tail did not stop on a refused change (the run record names none); nothing was changed"
        ))),
    }
}

/// Follow the source from the recorded position until Ctrl-C, SIGTERM or `migrate stop`.
/// `copied`: this run's copy results, for the JSON result.
#[allow(clippy::too_many_arguments)]
pub(super) async fn tail(
    ctx: &Ctx,
    args: &CopyArgs,
    src: Client,
    dst: Client,
    selection: Selection,
    state: StateStore,
    record: Record,
    copied: Option<serde_json::Value>,
) -> Result<()> {
    let run = record
        .get()
        .await?
        .context("the migration record disappeared from the target")?;
    let token = run
        .token
        .clone()
        .context("the migration record holds no tail position; start over with --drop --follow")?;
    // Checked before the record changes: a wrong --skip-change leaves everything as it was.
    let skip = skip_of(args.skip_change.as_deref(), &run, args.load.resume)?;
    record
        .update(doc! {
            "phase": Phase::Following.as_str(),
            "pid": std::process::id() as i64,
            "host": record::hostname(),
            "log": detach::own_log().map(Bson::String).unwrap_or(Bson::Null),
            "heartbeat_ms": record::now_ms(),
            "stop_requested": false,
            "last_error": Bson::Null,
            "failed_change": Bson::Null,
            // This process's own counters; "caught up" only once it has seen so itself.
            "tail": mongodb::bson::to_bson(&record::TailStats::default())?,
        })
        .await?;
    ctx.ui.info(format!(
        "following {} from {} (Ctrl-C or `mongoshift migrate stop --to {}` stops it; the position is kept)",
        run.from,
        position_text(run.position_secs),
        args.sides.to_display()
    ));
    let t = Tail {
        source: src,
        applier: Applier {
            target: dst,
            selection,
            state,
            skip,
            skipped: Default::default(),
            ordered: Default::default(),
        },
        record: record.clone(),
        ui: ctx.ui.clone(),
    };
    match t.run(token).await {
        Ok((ended, stats)) => {
            follow::mark(&record, Phase::Stopped, None).await;
            let why = match ended {
                Ended::Signal(s) => s.to_string(),
                Ended::StopRequested => "migrate stop".to_string(),
            };
            let after = record.get().await?.unwrap_or(run);
            if ctx.ui.json() {
                ctx.ui.result_json(&serde_json::json!({
                    "ok": true,
                    "stopped_by": why,
                    "events": stats.events,
                    "lag_p50_ms": stats.percentile(50.0),
                    "lag_p99_ms": stats.percentile(99.0),
                    "position_secs": after.position_secs,
                    "namespaces": copied,
                }));
            } else {
                ctx.ui.result(format!(
                    "tail stopped by {why}: {} events applied (lag p50 {} ms, p99 {} ms); position {} kept in the target.\n\
                     Continue with the same command plus --resume; after the cutover run `mongoshift migrate finalize --to {}`.",
                    stats.events,
                    stats.percentile(50.0),
                    stats.percentile(99.0),
                    position_text(after.position_secs),
                    args.sides.to_display()
                ));
            }
            Ok(())
        }
        Err(e) => {
            follow::mark(
                &record,
                Phase::Failed,
                Some(crate::mongo::errors::chain_text(&e)),
            )
            .await;
            // Name the refused change in the record: `--skip-change` checks against it.
            if let Some(r) = e.downcast_ref::<crate::follow::apply::Refused>() {
                if let Ok(b) = mongodb::bson::to_bson(&r.to_ref()) {
                    let _ = record.update(doc! { "failed_change": b }).await;
                }
            }
            Err(e)
        }
    }
}
