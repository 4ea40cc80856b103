//! `mongoshift migrate`: copy databases straight from one cluster to another (plan, raw
//! parallel copy, indexes, views, counts; see `copy`), then with `--follow` keep the
//! target in sync with the source's writes (see `crate::follow`) until stopped, in the
//! foreground or detached. `migrate status|stop|finalize` (see `control`) work on the
//! record the run keeps in the target.

mod control;
mod copy;
mod detach;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use futures::StreamExt;
use mongodb::bson::{doc, Bson};
use mongodb::Client;

use crate::cli::{Ctx, LoadArgs, SidesArgs};
use crate::compare::verdict;
use crate::follow::apply::{Applier, Selection};
use crate::follow::record::{self, Phase, Record, Run};
use crate::follow::{self, Ended, Tail};
use crate::load::plan::{self, PlanItem};
use crate::load::state::{self, NsState, StateStore, Unit};
use crate::load::{results, Loader, NsResult};
use crate::mongo::namespaces::{self, CollectionInfo, Kind};
use crate::namespace::Namespace;
use crate::redact;
use crate::report::progress::Progress;
pub use control::ControlArgs;
use copy::Copier;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub action: Option<MigrateAction>,
    #[command(flatten)]
    pub copy: CopyArgs,
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// A migration's phase, copy progress per namespace, tail lag and events; works from
    /// another terminal while it runs.
    Status(ControlArgs),
    /// Stop a running tail cleanly (position saved; continue later with --resume --follow).
    Stop(control::StopArgs),
    /// After the tail stopped (the cutover): give the target back the TTL and unique
    /// indexes that were relaxed while following, and clear the migration's state.
    Finalize(ControlArgs),
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

pub async fn run(ctx: &Ctx, args: MigrateArgs) -> Result<()> {
    match args.action {
        Some(MigrateAction::Status(a)) => control::status(ctx, a).await,
        Some(MigrateAction::Stop(a)) => control::stop(ctx, a).await,
        Some(MigrateAction::Finalize(a)) => control::finalize(ctx, a).await,
        None => migrate(ctx, args.copy).await,
    }
}

/// The arguments of a detached tail, when this process is one.
pub fn detached_args() -> Option<Vec<String>> {
    detach::child_args()
}

/// Start following `from` into `to` in the background from `token`, without a copy (the
/// two sides hold the same data): `switch --reverse-sync`. `from_arg`/`to_arg` are the
/// sides as the user gave them (config names or URIs; they reach the child through the
/// environment, never its command line). Returns the run's identity, pid and log.
#[allow(clippy::too_many_arguments)]
pub async fn follow_detached(
    config: &crate::config::Config,
    (from_arg, from): (&str, &crate::config::ResolvedTarget),
    (to_arg, to, to_client): (&str, &crate::config::ResolvedTarget, &Client),
    dbs: &[String],
    token: Bson,
) -> Result<(String, u32, std::path::PathBuf)> {
    let identity = identity(&from.uri, dbs, &[]);
    let record = Record::new(to_client, &identity);
    // Owned by this process until the child takes over (see `handed_over` in `migrate`).
    let mut run = Run::start(identity.clone(), from.label(), to.label(), dbs, Some(token));
    run.phase = Phase::Following;
    run.follow = true;
    run.copied = true;
    record.put(&run).await?;
    let mut argv = vec![std::env::args()
        .next()
        .unwrap_or_else(|| "mongoshift".into())];
    if let Some(c) = &config.source {
        argv.extend(["--config".to_string(), c.display().to_string()]);
    }
    argv.extend(
        ["migrate", "--from", from_arg, "--to", to_arg]
            .iter()
            .map(|s| s.to_string()),
    );
    for d in dbs {
        argv.extend(["--db".to_string(), d.clone()]);
    }
    argv.extend(
        ["--follow", "--resume", "--yes", "--no-progress"]
            .iter()
            .map(|s| s.to_string()),
    );
    let (pid, log) = detach::start(argv, &detach::default_log(), &record).await?;
    Ok((identity, pid, log))
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

async fn migrate(ctx: &Ctx, args: CopyArgs) -> Result<()> {
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
            return tail(ctx, &args, src, dst, selection, state, record, None).await;
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

    let colls: Vec<CollectionInfo> = namespaces::selected(
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
    let mut plan = Vec::new();
    for c in &colls {
        let t = renamer.map(&c.ns);
        let existing = plan::target_documents(&dst, &t).await;
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
        follow::check_oplog_window(&ctx.ui, &src, total_bytes).await;
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
    let results = match copy_all(ctx, &args, &src, &dst, &state, &record, &recorded, colls).await {
        Ok(r) => r,
        Err(e) => {
            follow::mark(&record, Phase::Failed, Some(format!("{e:#}"))).await;
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
            check_copy(ctx, &args, &src, &dst, &checked, &renamer).await?;
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
    tail(ctx, &args, src, dst, selection, state, record, copied).await
}

/// After an offline copy, the cheap levels of `verify`: every namespace exists with the
/// source's kind, options, indexes and exact count. Every document is `verify`'s job; the
/// command to run it is printed.
async fn check_copy(
    ctx: &Ctx,
    args: &CopyArgs,
    src: &Client,
    dst: &Client,
    colls: &[CollectionInfo],
    renamer: &crate::namespace::Renamer,
) -> Result<()> {
    let opts = verdict::Options {
        level: if args.load.no_indexes {
            verdict::Level::Counts
        } else {
            verdict::Level::Metadata
        },
        max_report: 0,
        range_bytes: u64::MAX,
    };
    let none = crate::report::progress::TaskProgress::none();
    let mut problems = Vec::new();
    for c in colls {
        let t = renamer.map(&c.ns);
        let v = verdict::namespace(src, dst, c, &t, renamer, &opts, &none).await?;
        if !v.identical {
            problems.push(format!("{t}: {}", v.problems().join("; ")));
        }
    }
    if !problems.is_empty() {
        for p in &problems {
            ctx.ui.warn(p);
        }
        return Err(crate::exit::check_failed(format!(
            "the check after the copy found {} namespace(s) that differ from the source (above)",
            problems.len()
        )));
    }
    let mut cmd = format!(
        "mongoshift verify --from {} --to {}",
        redact::uri(args.sides.from.as_deref().unwrap_or_default()),
        args.sides.to_display()
    );
    for d in &args.dbs {
        cmd.push_str(&format!(" --db {d}"));
    }
    for (f, t) in args.load.ns_from.iter().zip(&args.load.ns_to) {
        cmd.push_str(&format!(" --ns-from '{f}' --ns-to '{t}'"));
    }
    ctx.ui.info(format!(
        "checked after the copy: {} namespace(s) have the source's {}document counts. Compare every document with:\n  {cmd}",
        colls.len(),
        if args.load.no_indexes { "" } else { "options, indexes and " }
    ));
    Ok(())
}

/// Copy every collection (views last) with progress, reporting it to the run record.
#[allow(clippy::too_many_arguments)]
async fn copy_all(
    ctx: &Ctx,
    args: &CopyArgs,
    src: &Client,
    dst: &Client,
    state: &StateStore,
    record: &Record,
    recorded: &HashMap<Unit, NsState>,
    colls: Vec<CollectionInfo>,
) -> Result<Vec<NsResult>> {
    let renamer = args.load.renamer()?;
    let ns_done = |t: &Namespace| {
        recorded.get(&Unit {
            ns: t.clone(),
            part: None,
        }) == Some(&NsState::Done)
    };
    let copier = Arc::new(Copier {
        source: src.clone(),
        loader: Loader {
            client: dst.clone(),
            ui: ctx.ui.clone(),
            state: state.clone(),
            // Half-copied collections that were not split are copied again from scratch;
            // split ones keep their finished ranges (see `Copier::ranges`).
            reloading: HashSet::new(),
            drop: args.load.drop,
            append: args.load.append,
            no_indexes: args.load.no_indexes,
            workers: args.load.workers_per_collection.max(1),
            relax: args.follow,
        },
        recorded: recorded.clone(),
        range_bytes: args.range_mb.max(1) << 20,
        live: args.follow,
    });
    let (views, collections): (Vec<_>, Vec<_>) = colls
        .into_iter()
        .map(|c| {
            let t = renamer.map(&c.ns);
            (c, t)
        })
        .filter(|(_, t)| !ns_done(t))
        .partition(|(c, _)| c.kind == Kind::View);
    let total_bytes = collections.iter().map(|(c, _)| c.estimated_bytes).sum();
    let progress = Arc::new(Progress::new(
        &ctx.ui,
        "migrate",
        collections.len() as u64,
        total_bytes,
    ));
    let report = |progress: Arc<Progress>, record: Record| async move {
        let copy: Vec<Bson> = progress
            .snapshot()
            .into_iter()
            .map(|(ns, copied, total, rate)| {
                Bson::Document(doc! { "ns": ns, "copied": copied as i64, "total": total as i64, "docs_per_sec": rate })
            })
            .collect();
        let _ = record
            .update(doc! { "copy": copy, "heartbeat_ms": record::now_ms() })
            .await;
    };
    let reporter = {
        let (progress, record) = (progress.clone(), record.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(2));
            loop {
                every.tick().await;
                report(progress.clone(), record.clone()).await;
            }
        })
    };
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let work = async {
        let mut results: Vec<NsResult> = futures::stream::iter(collections.iter())
            .map(|(c, t)| {
                let copier = copier.clone();
                let task = progress.task(&t.to_string(), c.estimated_count);
                async move { copier.collection(c, t, task).await }
            })
            .buffer_unordered(args.load.parallel.unwrap_or(cores).max(1))
            .collect()
            .await;
        for (c, t) in &views {
            results.push(copier.loader.view(&copy::collection(c), t, &renamer).await);
        }
        progress.finish();
        results
    };
    let outcome = tokio::select! {
        r = work => Ok(r),
        sig = crate::signals::interrupted() => Err(anyhow::anyhow!(
            "migrate interrupted by {sig}: the target holds a partial copy; re-run the same command with --resume to finish it"
        )),
    };
    reporter.abort();
    report(progress.clone(), record.clone()).await;
    let mut results = outcome?;
    results.sort_by(|a, b| a.target.cmp(&b.target));
    Ok(results)
}

/// Follow the source from the recorded position until Ctrl-C, SIGTERM or `migrate stop`.
/// `copied`: this run's copy results, for the JSON result.
#[allow(clippy::too_many_arguments)]
async fn tail(
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

pub fn position_text(secs: u32) -> String {
    if secs == 0 {
        return "-".into();
    }
    let t = mongodb::bson::DateTime::from_millis(i64::from(secs) * 1000);
    t.try_to_rfc3339_string()
        .unwrap_or_else(|_| secs.to_string())
}
