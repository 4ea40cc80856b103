//! The migration engine: plan → copy → tail → control, shared by `migrate` and the
//! cutover commands (`switch --reverse-sync` starts a tail through `reverse`). The
//! commands only parse arguments and call in here; nothing here calls a command.
//!
//! - `copy`: one collection, raw, in `_id` ranges; `copy_run`: every selected collection
//!   of a run, then the cheap check;
//! - `tail`: follow the source from the recorded position (see `crate::follow`);
//! - `detach`: the background tail process; `reverse`: a tail with no copy.

pub mod copy;
mod copy_run;
pub mod detach;
mod reverse;
mod tail;

use std::collections::HashMap;

use anyhow::Result;
use clap::Args;
use mongodb::bson::doc;

use crate::cli::{Ctx, LoadArgs, SidesArgs};
use crate::follow;
use crate::follow::apply::Selection;
use crate::follow::record::{self, Phase, Record, Run};
use crate::load::plan::{self, PlanItem};
use crate::load::results;
use crate::load::state::{self, NsState, StateStore, Unit};
use crate::mongo::namespaces::{self, CollectionInfo, Kind};
use crate::namespace::Namespace;
use crate::redact;

pub use reverse::follow_detached;

/// The arguments of a detached tail, when this process is one.
pub fn detached_args() -> Option<Vec<String>> {
    detach::child_args()
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    #[command(flatten)]
    pub sides: SidesArgs,
    /// A database to copy (repeatable; default: every database except admin, config, local).
    #[arg(long = "db", value_name = "DB")]
    pub dbs: Vec<String>,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Split a collection larger than this many MB into _id ranges of about this size,
    /// read in parallel and resumed range by range.
    #[arg(long, value_name = "MB", default_value_t = 256)]
    pub range_mb: u64,
    /// How a collection bigger than --range-mb is read: id (in _id ranges, read at once and
    /// resumed range by range) or natural (one natural-order scan, as mongodump reads: for
    /// random _id values on a source whose data is much bigger than its cache).
    #[arg(long, value_enum, value_name = "ORDER", default_value = "id")]
    pub read_order: crate::compare::ranges::ReadOrder,
    /// After the copy, keep following the source's writes until Ctrl-C or `migrate stop`
    /// (needs a replica set source).
    #[arg(long)]
    pub follow: bool,
    /// With --follow: after the copy, run the tail in the background and return; its pid
    /// and log are in `migrate status`.
    #[arg(long, requires = "follow")]
    pub detach: bool,
    /// With --follow --resume: leave out exactly the change the tail stopped on, named by
    /// its source time as the error printed it (T:I). The decision is kept in the run record.
    #[arg(long, value_name = "T:I", requires = "follow")]
    pub skip_change: Option<String>,
    /// With --detach: the tail's log file (default .mongoshift/logs/migrate-TIME.log).
    #[arg(long, value_name = "FILE", requires = "detach")]
    pub log: Option<std::path::PathBuf>,
}

/// The run's identity in the target's state: the source's hosts (no credentials), the
/// databases chosen and where they are renamed to, so that migrations of different
/// databases (or into different names) from one source into one target keep apart.
pub fn identity(source_uri: &str, dbs: &[String], ns_to: &[String]) -> String {
    let mut dbs = dbs.to_vec();
    dbs.sort();
    dbs.dedup();
    let mut id = format!("migrate from {}", redact::hosts(source_uri));
    if !dbs.is_empty() {
        id.push_str(&format!(" --db {}", dbs.join(",")));
    }
    for to in ns_to {
        id.push_str(&format!(" --ns-to {to}"));
    }
    id
}

/// A whole migration run: plan, confirmation, copy, check, then (with `--follow`) the tail.
pub async fn run(ctx: &Ctx, args: CopyArgs) -> Result<()> {
    let filter = args.load.filter()?;
    let renamer = args.load.renamer()?;
    let (src_target, src, dst_target, dst) = args.sides.connect(&ctx.config).await?;
    let source_label = src_target.label();
    let identity = identity(&src_target.uri, &args.dbs, &args.load.ns_to);
    let selection = Selection {
        dbs: args.dbs.clone(),
        filter: filter.clone(),
        renamer: renamer.clone(),
    };
    let state = StateStore::new(&dst, state::MIGRATE, &identity);
    let record = Record::new(&dst, &identity);
    let previous = record.get().await?;
    // A detached tail's parent is alive (and recorded) until the tail has taken over.
    let handed_over =
        |p: &Run| detach::own_log().is_some() && p.pid == Some(std::os::unix::process::parent_id());
    if let Some(p) = previous
        .as_ref()
        .filter(|p| record::alive(p) && !handed_over(p))
    {
        return Err(crate::exit::usage(format!(
            "a migration from {source_label} into {} is already running ({}{}); \
             see `mongoshift migrate status --to {}`, stop it with `mongoshift migrate stop --to {}`",
            dst_target.label(),
            p.phase.as_str(),
            p.pid.map(|pid| format!(", pid {pid}")).unwrap_or_default(),
            args.sides.to_display(),
            args.sides.to_display(),
        )));
    }
    if args.follow {
        follow::require_replica_set(&src, &source_label).await?;
    }

    // A resumed tail whose copy finished goes straight back to following.
    if let Some(p) = previous.as_ref() {
        if args.load.resume && args.follow && p.copied && p.token.is_some() {
            ctx.ui.info(format!(
                "the copy into {} finished earlier; following {source_label} again from its recorded position",
                dst_target.label()
            ));
            // --detach holds for a resumed tail too (this process is not the detached one).
            if args.detach && detach::own_log().is_none() {
                return detach::spawn(ctx, &args, &record).await;
            }
            return tail::tail(ctx, &args, src, dst, selection, state, record, None).await;
        }
    }

    // The tail's start is noted before anything is listed or read, so that a collection
    // created meanwhile is either copied or created by the tail. A resumed run keeps the
    // position its copy began at.
    let recorded_token = previous
        .as_ref()
        .and_then(|p| p.token.clone())
        .filter(|_| args.follow && args.load.resume);
    let token = match recorded_token {
        Some(t) => Some(t),
        None if args.follow && !args.load.dry_run => {
            Some(follow::position_now(&src, &selection).await?)
        }
        None => None,
    };

    let mut colls: Vec<CollectionInfo> = namespaces::selected(
        &src,
        &args.dbs,
        &filter,
        &format!("the source ({source_label})"),
    )
    .await?;
    if colls.is_empty() && !args.follow {
        return Err(crate::exit::usage(format!(
            "nothing to migrate: no collection of {source_label} matches --db/--ns-include/--ns-exclude"
        )));
    }
    if colls.is_empty() {
        // Following a database the application is about to fill is a normal start: the
        // tail creates each collection as the source does.
        ctx.ui.info(format!(
            "no collection of {source_label} matches yet: nothing to copy; the tail creates what the source creates"
        ));
    }
    if args.follow {
        let ts: Vec<String> = colls
            .iter()
            .filter(|c| c.kind == Kind::Timeseries)
            .map(|c| c.ns.to_string())
            .collect();
        if !ts.is_empty() {
            let list = ts.join(", ");
            let excludes: String = ts.iter().map(|n| format!(" --ns-exclude '{n}'")).collect();
            return Err(crate::exit::usage(format!(
                "--follow cannot keep time-series collections in sync ({list}): MongoDB 6.0's change streams do not \
                 report writes to them. Follow the rest with{excludes}, and copy these at the cutover, once writes \
                 are stopped, with `mongoshift migrate --from … --to … --ns-include 'DB.COLL' --drop`"
            )));
        }
    }

    let recorded: HashMap<Unit, NsState> = if args.load.resume {
        state.load().await?.into_iter().collect()
    } else {
        HashMap::new()
    };
    let ns_state = |t: &Namespace| {
        recorded
            .get(&Unit {
                ns: t.clone(),
                part: None,
            })
            .copied()
    };

    let range_bytes = args.range_mb.max(1) << 20;
    let scans =
        crate::compare::ranges::natural_scans(&src, &mut colls, range_bytes, args.read_order).await;
    if args.read_order == crate::compare::ranges::ReadOrder::Id && !scans.is_empty() {
        let names: Vec<String> = scans.iter().map(|n| n.to_string()).collect();
        ctx.ui.info(format!(
            "{}: _id values not in the order they were written (random): their _id ranges \
             fetch the source's documents at random. If the source's data is much bigger than \
             its cache, --read-order natural reads them in storage order instead (the target \
             then inserts in random _id order, and a killed copy starts each over)",
            names.join(", ")
        ));
    }
    let targets: Vec<Namespace> = colls.iter().map(|c| renamer.map(&c.ns)).collect();
    let existing_all = plan::target_documents_all(&dst, &targets).await;
    let mut plan = Vec::new();
    for ((c, t), existing) in colls.iter().zip(targets).zip(existing_all) {
        // A half-copied collection continues range by range only when it was split; one
        // copied in a single range is dropped and copied again (as `ranges` does), which is
        // what restore calls a reload.
        let on_loading = match ns_state(&t) {
            Some(NsState::Loading) if state.load_bounds(&t).await?.is_none() => "reload",
            _ => "resume",
        };
        let action = plan::action(
            ns_state(&t),
            on_loading,
            existing,
            c.kind == Kind::View,
            args.load.drop,
            args.load.append,
        );
        plan.push(PlanItem {
            source: c.ns.to_string(),
            target: t.to_string(),
            kind: c.kind.as_str(),
            documents: (c.kind != Kind::View).then_some(c.estimated_count),
            indexes: c.indexes.len(),
            target_documents: existing,
            ranges: (c.kind != Kind::View)
                .then(|| crate::compare::ranges::range_count(c, range_bytes)),
            action,
        });
    }
    let heading = format!("migrate plan: {source_label} → {}", dst_target.label());
    plan::show(&ctx.ui, &heading, &source_label, &plan, args.load.dry_run);
    if args.follow && !ctx.ui.json() {
        ctx.ui.info(
            "then: follow the source's writes until Ctrl-C or `migrate stop` (TTL and unique indexes \
             are built relaxed until `migrate finalize`)",
        );
    }
    let question = format!(
        "copy {} from {source_label} into {}{}?",
        crate::report::table::count(colls.len() as u64, "namespace", "namespaces"),
        dst_target.label(),
        if args.follow {
            " and follow its writes"
        } else {
            ""
        }
    );
    let go = plan::gate(
        &ctx.ui,
        &plan,
        plan::Gate {
            dry_run: args.load.dry_run,
            resume: args.load.resume,
            yes: args.load.yes,
            nothing_recorded: recorded.is_empty(),
            interrupted: !args.load.resume && !state.load().await?.is_empty(),
            run: &format!("migrate from {source_label}"),
            question: &question,
        },
    )?;
    if !go {
        return Ok(());
    }

    if args.follow {
        let total_bytes: u64 = colls.iter().map(|c| c.estimated_bytes).sum();
        follow::check_oplog_window(&ctx.ui, &src, total_bytes, args.load.max_rate).await;
    }
    let mut run = Run::start(
        identity.clone(),
        source_label.clone(),
        dst_target.label(),
        &args.dbs,
        token,
    );
    run.follow = args.follow;
    run.log = detach::own_log();
    if let Some(p) = previous.as_ref() {
        run.started_ms = p.started_ms;
    }
    if !args.load.resume {
        // A fresh run starts from a clean record: relaxed indexes noted by an earlier run
        // of the same identity (stopped without finalize) no longer describe the target.
        // (The run record lives beside them, so this comes before it is written.)
        state.clear().await?;
    }
    record.put(&run).await?;

    let checked = colls.clone();
    let results =
        match copy_run::copy_all(ctx, &args, &src, &dst, &state, &record, &recorded, colls).await {
            Ok(r) => r,
            Err(e) => {
                // Ctrl-C or SIGTERM stopped the copy on purpose: "stopped", not "failed".
                let phase = if e.is::<copy_run::Interrupted>() {
                    Phase::Stopped
                } else {
                    Phase::Failed
                };
                follow::mark(&record, phase, Some(format!("{e:#}"))).await;
                return Err(e);
            }
        };
    if ctx.ui.json() && !args.follow {
        ctx.ui.result_json(&serde_json::json!({
            "ok": results.iter().all(|r| r.ok),
            "source": source_label,
            "target": dst_target.label(),
            "namespaces": results,
        }));
    } else if !ctx.ui.json() {
        ctx.ui.result(results::table(&results));
        results::summary(&ctx.ui, "migrated", &results);
    }
    if let Err(e) = results::verdict("migrate", &results) {
        follow::mark(&record, Phase::Failed, Some(format!("{e:#}"))).await;
        return Err(e);
    }
    if !args.follow {
        state.clear().await?;
        if !args.load.append {
            copy_run::check_copy(ctx, &args, &src, &dst, &checked, &renamer, &results).await?;
        }
        return Ok(());
    }
    record
        .update(doc! { "copied": true, "phase": Phase::Following.as_str() })
        .await?;
    if args.detach {
        return detach::spawn(ctx, &args, &record).await;
    }
    let copied = serde_json::to_value(&results).ok();
    tail::tail(ctx, &args, src, dst, selection, state, record, copied).await
}

pub fn position_text(secs: u32) -> String {
    if secs == 0 {
        return "-".into();
    }
    let t = mongodb::bson::DateTime::from_millis(i64::from(secs) * 1000);
    t.try_to_rfc3339_string()
        .unwrap_or_else(|_| secs.to_string())
}
