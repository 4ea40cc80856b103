//! `mongoshift migrate`: copy databases straight from one cluster to another. Plan first;
//! then per collection a raw batch cursor (several `_id` ranges at once for a big
//! collection) feeds the load engine's parallel raw inserts; indexes after the data, views
//! last, every count checked, and progress kept in the target so `--resume` carries on.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use futures::StreamExt;
use mongodb::bson::{doc, Document};
use mongodb::Client;
use tokio::sync::mpsc;

use crate::cli::{Ctx, LoadArgs, SidesArgs};
use crate::compare::ranges::{self, IdRange};
use crate::load::plan::{self, PlanItem};
use crate::load::state::{self, NsState, StateStore, Unit};
use crate::load::{results, Collection, Loader, NsResult};
use crate::mongo::namespaces::{self, CollectionInfo, Kind};
use crate::mongo::raw_read::{self, Sink};
use crate::mongo::raw_write::{Batch, InsertStats};
use crate::namespace::Namespace;
use crate::redact;
use crate::report::progress::{Progress, TaskProgress};

#[derive(Debug, Args)]
pub struct MigrateArgs {
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
}

/// Ranges read at once within one split collection.
const RANGE_READERS: usize = 2;
/// More ranges than this gain nothing on the hardware we target and cost resume bookkeeping.
const MAX_RANGES: u64 = 64;

pub async fn run(ctx: &Ctx, args: MigrateArgs) -> Result<()> {
    let filter = args.load.filter()?;
    let renamer = args.load.renamer()?;
    let (src_target, src, dst_target, dst) = args.sides.connect(&ctx.config).await?;
    let source_label = src_target.label();
    // The run's identity in the target's resume state: the source's hosts (no credentials).
    let identity = format!("migrate from {}", redact::hosts(&src_target.uri));

    let mut colls: Vec<CollectionInfo> = Vec::new();
    for db in namespaces::databases(&src, &args.dbs)
        .await
        .context("the source")?
    {
        if db == state::DB {
            continue;
        }
        colls.extend(
            namespaces::collections(&src, &db, &filter)
                .await
                .with_context(|| format!("the source ({source_label})"))?,
        );
    }
    if colls.is_empty() {
        return Err(crate::exit::usage(format!(
            "nothing to migrate: no collection of {source_label} matches --db/--ns-include/--ns-exclude"
        )));
    }

    let state = StateStore::new(&dst, state::MIGRATE, &identity);
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
        let action = plan::action(
            ns_state(&t),
            "resume",
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
            indexes: crate::mongo::schema::buildable(&c.indexes).len(),
            target_documents: existing,
            ranges: (c.kind != Kind::View).then(|| range_count(c, range_bytes)),
            action,
        });
    }
    let heading = format!("migrate plan: {source_label} → {}", dst_target.label());
    plan::show(&ctx.ui, &heading, &source_label, &plan, args.load.dry_run);
    let question = format!(
        "copy {} from {source_label} into {}?",
        crate::report::table::count(colls.len() as u64, "namespace", "namespaces"),
        dst_target.label()
    );
    let go = plan::gate(
        &ctx.ui,
        &plan,
        plan::Gate {
            dry_run: args.load.dry_run,
            resume: args.load.resume,
            yes: args.load.yes,
            nothing_recorded: recorded.is_empty(),
            run: &format!("migrate from {source_label}"),
            question: &question,
        },
    )?;
    if !go {
        return Ok(());
    }

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
        },
        recorded: recorded.clone(),
        range_bytes,
    });
    let (views, collections): (Vec<_>, Vec<_>) = colls
        .into_iter()
        .map(|c| {
            let t = renamer.map(&c.ns);
            (c, t)
        })
        .filter(|(_, t)| ns_state(t) != Some(NsState::Done))
        .partition(|(c, _)| c.kind == Kind::View);
    let total_bytes = collections.iter().map(|(c, _)| c.estimated_bytes).sum();
    let progress = Progress::new(&ctx.ui, "migrate", collections.len() as u64, total_bytes);
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
            results.push(copier.loader.view(&collection(c), t, &renamer).await);
        }
        progress.finish();
        results
    };
    let mut results = tokio::select! {
        r = work => r,
        sig = crate::signals::interrupted() => {
            return Err(anyhow::anyhow!(
                "migrate interrupted by {sig}: the target holds a partial copy; re-run the same command with --resume to finish it"
            ));
        }
    };
    results.sort_by(|a, b| a.target.cmp(&b.target));
    if ctx.ui.json() {
        ctx.ui.result_json(&serde_json::json!({
            "ok": results.iter().all(|r| r.ok),
            "source": source_label,
            "target": dst_target.label(),
            "namespaces": results,
        }));
    } else {
        ctx.ui.result(results::table(&results));
        results::summary(&ctx.ui, "migrated", &results);
    }
    results::verdict("migrate", &results)?;
    state.clear().await?;
    Ok(())
}

/// How many `_id` ranges a collection is copied in: 1 unless it is bigger than a range.
/// Capped collections keep their natural order (one cursor); time-series buckets and
/// collections with a non-simple collation are not split either (their `_id` index order
/// is not the plain BSON order the split points are sorted in).
fn range_count(c: &CollectionInfo, range_bytes: u64) -> usize {
    let splittable = c.kind == Kind::Collection
        && !c.options.get_bool("capped").unwrap_or(false)
        && c.options.get_document("collation").is_err();
    if !splittable || c.estimated_bytes <= range_bytes {
        return 1;
    }
    c.estimated_bytes.div_ceil(range_bytes).min(MAX_RANGES) as usize
}

fn collection(c: &CollectionInfo) -> Collection {
    Collection {
        ns: c.ns.clone(),
        kind: c.kind,
        options: c.options.clone(),
        indexes: c.indexes.clone(),
        expected_docs: None,
    }
}

struct Copier {
    source: Client,
    loader: Loader,
    recorded: HashMap<Unit, NsState>,
    range_bytes: u64,
}

impl Copier {
    /// Copy one collection (in ranges when big), then let the load engine build its
    /// indexes and compare the target's count with the source's.
    async fn collection(
        &self,
        info: &CollectionInfo,
        t: &Namespace,
        task: TaskProgress,
    ) -> NsResult {
        let start = Instant::now();
        let mut c = collection(info);
        let outcome = async {
            let (ranges, done, resumed) = self.ranges(info, &c, t).await?;
            let from = c.kind.data_ns(&c.ns);
            let copies = ranges
                .iter()
                .enumerate()
                .filter(|(i, _)| !done.contains(&(*i as u32)))
                .map(|(i, r)| {
                    let part = (ranges.len() > 1).then_some(i as u32);
                    self.range(&c, &from, t, r.clone(), part, resumed, task.clone())
                });
            let copied: Vec<Result<(u64, InsertStats)>> = futures::stream::iter(copies)
                .buffer_unordered(RANGE_READERS)
                .collect()
                .await;
            let (mut read, mut ins) = (0u64, InsertStats::default());
            for r in copied {
                let (n, s) = r?;
                read += n;
                ins.inserted += s.inserted;
                ins.duplicates += s.duplicates;
            }
            // The source's exact count after the copy is what the target must hold.
            let source_count = self
                .source
                .database(&from.db)
                .collection::<Document>(&from.coll)
                .count_documents(doc! {})
                .await
                .with_context(|| format!("counting {from} on the source"))?;
            // A resumed copy read only the unfinished ranges; the check is the target's count.
            let read = if resumed { source_count } else { read };
            anyhow::Ok((read, ins, source_count))
        }
        .await;
        task.finish();
        match outcome {
            Ok((read, ins, source_count)) => {
                c.expected_docs = Some(source_count);
                self.loader.finish(&c, t, read, ins, start).await
            }
            Err(e) => Loader::failed(&c, t, e),
        }
    }

    /// The ranges of a collection, the parts a previous run finished, and whether this run
    /// continues an interrupted one. A fresh (or unsplit, reloaded) collection is prepared
    /// — dropped when asked or half-copied, created with the source's options — and split;
    /// a split collection being resumed keeps its data and its recorded ranges.
    async fn ranges(
        &self,
        info: &CollectionInfo,
        c: &Collection,
        t: &Namespace,
    ) -> Result<(Vec<IdRange>, HashSet<u32>, bool)> {
        let loading = self.recorded.get(&Unit {
            ns: t.clone(),
            part: None,
        }) == Some(&NsState::Loading);
        if loading {
            if let Some(points) = self.loader.state.load_bounds(t).await? {
                crate::mongo::schema::kill_writes(&self.loader.client, &c.kind.data_ns(t)).await?;
                let done = self
                    .recorded
                    .iter()
                    .filter(|(u, st)| u.ns == *t && **st == NsState::Done)
                    .filter_map(|(u, _)| u.part)
                    .collect();
                return Ok((ranges::between(&points), done, true));
            }
        }
        if loading {
            // Not split: nothing tells which documents arrived; start it over.
            crate::mongo::schema::kill_writes(&self.loader.client, &c.kind.data_ns(t)).await?;
            self.loader
                .client
                .database(&t.db)
                .collection::<Document>(&t.coll)
                .drop()
                .await
                .with_context(|| format!("dropping the half-copied {t}"))?;
        }
        self.loader.prepare(c, t).await?;
        let parts = range_count(info, self.range_bytes);
        let points = ranges::split_points(&self.source, &c.kind.data_ns(&c.ns), parts).await?;
        if !points.is_empty() {
            self.loader.state.save_bounds(t, &points).await?;
        }
        Ok((ranges::between(&points), HashSet::new(), false))
    }

    /// Copy one range: a raw batch cursor on the source into the engine's insert workers.
    #[allow(clippy::too_many_arguments)]
    async fn range(
        &self,
        c: &Collection,
        from: &Namespace,
        t: &Namespace,
        range: IdRange,
        part: Option<u32>,
        resumed: bool,
        task: TaskProgress,
    ) -> Result<(u64, InsertStats)> {
        let unit = part.map(|p| Unit {
            ns: t.clone(),
            part: Some(p),
        });
        if let Some(u) = &unit {
            self.loader.state.set(u, NsState::Loading).await?;
        }
        let (tx, rx) = mpsc::channel::<Batch>(2);
        let read = raw_read::stream_documents(
            self.source.clone(),
            from.clone(),
            range,
            Sink::batches(tx),
            task.clone(),
        );
        // A range a killed run had begun may already be partly in the target: its
        // documents come back as duplicate keys, which are expected, not errors.
        let ins = self.loader.insert(c.kind, t, rx, resumed, task);
        let (read, ins) = tokio::join!(read, ins);
        let (read, ins) = match (read, ins) {
            (Ok(r), Ok(i)) => (r, i),
            // The reader stops with PipelineClosed when the inserts failed: report theirs.
            (Err(e), Err(ie)) if e.chain().any(|x| x.is::<crate::pipeline::PipelineClosed>()) => {
                return Err(ie)
            }
            (Err(e), _) => return Err(e.context(format!("reading {from} on the source"))),
            (_, Err(e)) => return Err(e),
        };
        if let Some(u) = &unit {
            self.loader.state.set(u, NsState::Done).await?;
        }
        Ok((read.docs, ins))
    }
}
