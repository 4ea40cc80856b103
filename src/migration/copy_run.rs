//! The copy phase of a run: every selected collection copied in parallel (views last),
//! its progress reported to the run record, then the cheap levels of `verify`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::Result;
use futures::StreamExt;
use mongodb::bson::{doc, Bson};
use mongodb::Client;

use super::copy::{self, Copier};
use super::CopyArgs;
use crate::cli::Ctx;
use crate::compare::verdict;
use crate::follow::record::{self, Record};
use crate::load::state::{NsState, StateStore, Unit};
use crate::load::{Loader, NsResult};
use crate::mongo::namespaces::{CollectionInfo, Kind};
use crate::namespace::Namespace;
use crate::report::progress::Progress;

/// Namespaces checked at once after the copy.
const CHECKS_AT_ONCE: usize = 8;

/// After an offline copy, the cheap levels of `verify`: every namespace exists with the
/// source's kind, options, indexes and exact count. Every document is `verify`'s job; the
/// command to run it is printed. A namespace this run copied already had its counts
/// proven by the load (`results`: the target's count against the source's, each the
/// server's own number only where it confirmed what was read and inserted); those are
/// not counted again, which read every document of both sides a second time. One an
/// earlier run finished is counted here.
pub(super) async fn check_copy(
    ctx: &Ctx,
    args: &CopyArgs,
    src: &Client,
    dst: &Client,
    colls: &[CollectionInfo],
    renamer: &crate::namespace::Renamer,
    results: &[NsResult],
) -> Result<()> {
    let proven: HashMap<&str, (u64, u64)> = results
        .iter()
        .filter_map(|r| match r.expected {
            Some(e) if r.ok && e == r.target_count => Some((r.target.as_str(), (e, e))),
            _ => None,
        })
        .collect();
    let opts = verdict::Options {
        level: if args.load.no_indexes {
            verdict::Level::Counts
        } else {
            verdict::Level::Metadata
        },
        max_report: 0,
        range_bytes: u64::MAX,
        counted: None,
    };
    let none = crate::report::progress::TaskProgress::none();
    // A few namespaces at once: each is a handful of round trips (listings, and counts
    // where not proven), which across a network add up over hundreds of collections.
    let checked: Vec<Result<Option<String>>> = futures::stream::iter(colls)
        .map(|c| {
            let t = renamer.map(&c.ns);
            let opts = verdict::Options {
                counted: proven.get(t.to_string().as_str()).copied(),
                ..opts
            };
            let none = &none;
            async move {
                let v = verdict::namespace(src, dst, c, &t, renamer, &opts, none).await?;
                Ok((!v.identical).then(|| format!("{t}: {}", v.problems().join("; "))))
            }
        })
        .buffered(CHECKS_AT_ONCE)
        .collect()
        .await;
    let mut problems = Vec::new();
    for p in checked {
        problems.extend(p?);
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
        args.sides.from_display(),
        args.sides.to_display()
    );
    for d in &args.dbs {
        cmd.push_str(&format!(" --db {d}"));
    }
    for (f, t) in args.load.ns_from.iter().zip(&args.load.ns_to) {
        cmd.push_str(&format!(" --ns-from '{f}' --ns-to '{t}'"));
    }
    ctx.ui.info(format!(
        "checked after the copy: {} namespace(s) have the source's {}document counts. Compare every document with{}:\n  {cmd}",
        colls.len(),
        if args.load.no_indexes { "" } else { "options, indexes and " },
        crate::cli::side_arg_note(&cmd)
    ));
    Ok(())
}

/// Copy every collection (views last) with progress, reporting it to the run record.
#[allow(clippy::too_many_arguments)]
pub(super) async fn copy_all(
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
            lanes: args.load.lanes(),
            counter: Default::default(),
            throttle: args.load.throttle(&ctx.ui),
        },
        recorded: recorded.clone(),
        range_bytes: args.range_mb.max(1) << 20,
        live: args.follow,
    });
    let (views, mut collections): (Vec<_>, Vec<_>) = colls
        .into_iter()
        .map(|c| {
            let t = renamer.map(&c.ns);
            (c, t)
        })
        .filter(|(_, t)| !ns_done(t))
        .partition(|(c, _)| c.kind == Kind::View);
    // Biggest first: the copy ends when its longest collection does, so that one must not
    // start last and finish alone (see `load::lanes::biggest_first`).
    crate::load::lanes::biggest_first(&mut collections, |(c, _)| c.estimated_bytes);
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
    let work = async {
        let mut results: Vec<NsResult> = futures::stream::iter(collections.iter())
            .map(|(c, t)| {
                let copier = copier.clone();
                let task = progress.task(&t.to_string(), c.estimated_count);
                async move { copier.collection(c, t, task).await }
            })
            .buffer_unordered(copier.loader.lanes.started())
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
        sig = crate::signals::interrupted() => Err(anyhow::Error::new(Interrupted(sig))),
    };
    reporter.abort();
    report(progress.clone(), record.clone()).await;
    let mut results = outcome?;
    results.sort_by(|a, b| a.target.cmp(&b.target));
    Ok(results)
}

/// The copy was stopped by a signal: the run record says "stopped", not "failed".
#[derive(Debug)]
pub struct Interrupted(&'static str);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "migrate interrupted by {}: the target holds a partial copy; re-run the same command with --resume to finish it",
            self.0
        )
    }
}

impl std::error::Error for Interrupted {}
