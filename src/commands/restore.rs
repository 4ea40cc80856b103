//! `mongoshift restore`: from our backups, mongodump folders and archives —
//! plan first, parallel raw inserts, checksums on the fly, counts verified after.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use futures::StreamExt;
use mongodb::bson::{doc, Document};
use mongodb::Client;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::cli::{Ctx, StorageArgs, TargetArgs};
use crate::codec::Compression;
use crate::exit::{check_failed, usage};
use crate::mongo::namespaces::Kind;
use crate::mongo::raw_write::{self, Batch, InsertStats};
use crate::mongo::{self as mongo_engine, schema};
use crate::namespace::{Filter, Namespace, Renamer};
use crate::report::progress::{Progress, TaskProgress};
use crate::report::{confirm, table};
use crate::restore::oplog_replay::{self, Replayer};
use crate::restore::source::{self, DataRef, OplogRef, Source, SourceKind, SourceNs};
use crate::restore::state::{self, NsState};
use crate::restore::stream::{self, ReadCount};

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// LOCATION/ID, LOCATION/latest, a mongodump folder, a mongodump archive (.gz ok), or - for stdin.
    #[arg(long, value_name = "SOURCE")]
    pub from: String,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Only namespaces matching this pattern (source names), e.g. 'predixi.*'.
    #[arg(long, value_name = "PATTERN")]
    pub ns_include: Vec<String>,
    /// Skip namespaces matching this pattern.
    #[arg(long, value_name = "PATTERN")]
    pub ns_exclude: Vec<String>,
    /// Rename: source pattern with $var$ (or *), e.g. 'predixi.$coll$'.
    #[arg(long, value_name = "PATTERN", requires = "ns_to")]
    pub ns_from: Vec<String>,
    /// Rename: target pattern, e.g. 'predixi_restore.$coll$'.
    #[arg(long, value_name = "PATTERN", requires = "ns_from")]
    pub ns_to: Vec<String>,
    /// Drop each target collection before loading it.
    #[arg(long, conflicts_with = "append")]
    pub drop: bool,
    /// Insert into existing collections; duplicate keys are counted and reported.
    #[arg(long)]
    pub append: bool,
    /// Continue an interrupted restore: skip completed namespaces, reload the rest.
    #[arg(long)]
    pub resume: bool,
    /// Do not build the dumped indexes.
    #[arg(long)]
    pub no_indexes: bool,
    /// Apply the dump's oplog after the data (point in time).
    #[arg(long)]
    pub oplog_replay: bool,
    /// Apply oplog entries only before this timestamp: SECONDS[:ORDINAL].
    #[arg(long, value_name = "TS", requires = "oplog_replay")]
    pub oplog_limit: Option<String>,
    /// Show the plan with real document counts and conflicts; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Collections restored at once (default: CPU cores).
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// Insert workers per collection.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub workers_per_collection: usize,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// One namespace of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanItem {
    pub source: String,
    pub target: String,
    pub kind: &'static str,
    pub documents: Option<u64>,
    pub indexes: usize,
    pub target_documents: u64,
    pub action: &'static str,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct NsResult {
    pub source: String,
    pub target: String,
    pub read: u64,
    pub inserted: u64,
    pub duplicates: u64,
    pub target_count: u64,
    pub expected: Option<u64>,
    pub indexes: usize,
    pub seconds: f64,
    pub ok: bool,
    pub problem: Option<String>,
}

pub async fn run(ctx: &Ctx, args: RestoreArgs) -> Result<()> {
    let filter = Filter::new(&args.ns_include, &args.ns_exclude)?;
    let renamer = Renamer::new(&args.ns_from, &args.ns_to)?;
    let limit = args
        .oplog_limit
        .as_deref()
        .map(oplog_replay::parse_limit)
        .transpose()?;
    let target = args.target.resolve(&ctx.config)?;
    let client = mongo_engine::connect(&target, &args.target.connect_options()).await?;
    let settings = args.storage.settings(&ctx.config)?;

    // stdin can be read once; spool it so the archive can be planned and then loaded.
    let _spool;
    let from = if args.from == "-" {
        let f = tempfile::NamedTempFile::new().context("creating a temporary file for stdin")?;
        let mut out = tokio::fs::File::create(f.path()).await?;
        tokio::io::copy(&mut tokio::io::stdin(), &mut out)
            .await
            .context("reading the archive from stdin")?;
        let p = f.path().to_string_lossy().into_owned();
        _spool = f;
        p
    } else {
        args.from.clone()
    };
    let mut src = source::open(&from, &settings).await?;
    source::load_metadata(&mut src).await?;
    if args.oplog_replay && src.oplog.is_none() {
        return Err(usage(format!(
            "--oplog-replay: {} has no oplog (back up with --oplog / dump with --oplog)",
            src.describe
        )));
    }

    let selected: Vec<SourceNs> = src
        .namespaces
        .iter()
        .filter(|n| filter.allows(&n.ns))
        .cloned()
        .collect();
    if selected.is_empty() {
        return Err(usage(format!(
            "nothing to restore: no namespace of {} matches the --ns-include/--ns-exclude options",
            src.describe
        )));
    }
    let resume: HashMap<Namespace, NsState> = if args.resume {
        state::load(&client, &src.identity)
            .await?
            .into_iter()
            .collect()
    } else {
        HashMap::new()
    };

    // The plan, with what the target already holds.
    let mut plan = Vec::new();
    for n in &selected {
        let t = renamer.map(&n.ns);
        let existing = client
            .database(&t.db)
            .collection::<Document>(&t.coll)
            .estimated_document_count()
            .await
            .unwrap_or(0);
        let action = match (resume.get(&t), n.kind) {
            (Some(NsState::Done), _) => "skip (done)",
            (Some(NsState::Loading), _) => "reload",
            (None, Kind::View) => "create view",
            _ if existing > 0 && args.drop => "drop + load",
            _ if existing > 0 && args.append => "append",
            _ if existing > 0 => "CONFLICT",
            _ => "load",
        };
        plan.push(PlanItem {
            source: n.ns.to_string(),
            target: t.to_string(),
            kind: n.kind.as_str(),
            documents: n.expected_docs,
            // Counted as the result table counts them: the indexes built, not `_id_`.
            indexes: schema::buildable(&n.indexes).len(),
            target_documents: existing,
            action,
        });
    }

    if args.dry_run {
        let counts = count_source(&src, &selected).await?;
        for p in plan.iter_mut() {
            if p.documents.is_none() {
                p.documents = counts.get(&p.source).copied().or(Some(0));
            }
        }
    }
    show_plan(ctx, &src, &plan, args.dry_run);
    let conflicts: Vec<&PlanItem> = plan.iter().filter(|p| p.action == "CONFLICT").collect();
    if !conflicts.is_empty() {
        let list = conflicts
            .iter()
            .map(|c| format!("{} ({} docs)", c.target, c.target_documents))
            .collect::<Vec<_>>()
            .join(", ");
        // The dry run answers as the real run would: it would refuse, so this plan fails.
        let what = if args.dry_run {
            "dry run: the real restore would refuse, because these target collections already hold documents"
        } else {
            "these target collections already hold documents"
        };
        let resume_note = if args.resume {
            format!(
                " --resume found no interrupted restore of {} into these targets (the last one finished \
                 cleanly, or none ran), so there is nothing to continue.",
                src.describe
            )
        } else {
            String::new()
        };
        return Err(usage(format!(
            "{what}: {list}. Nothing was written.{resume_note} Use --drop to replace them, --append to add \
             to them, or --ns-from/--ns-to to restore elsewhere"
        )));
    }
    if args.dry_run {
        // On stdout only for people: with --output json, stdout is the plan document alone.
        if ctx.ui.json() {
            ctx.ui.info("dry run: nothing was written");
        } else {
            ctx.ui.result("dry run: nothing was written");
        }
        return Ok(());
    }
    if !args.yes {
        confirm::ask(
            &ctx.ui,
            &format!(
                "restore {} namespaces from {} into {}?",
                plan.len(),
                src.describe,
                target.label()
            ),
        )?;
    }

    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let runner = Arc::new(Runner {
        client: client.clone(),
        ui: ctx.ui.clone(),
        identity: src.identity.clone(),
        reloading: resume
            .iter()
            .filter(|(_, st)| **st == NsState::Loading)
            .map(|(ns, _)| ns.clone())
            .collect(),
        drop: args.drop,
        append: args.append,
        no_indexes: args.no_indexes,
        workers: args.workers_per_collection.max(1),
    });
    let todo: Vec<(SourceNs, Namespace)> = selected
        .iter()
        .map(|n| (n.clone(), renamer.map(&n.ns)))
        .filter(|(_, t)| resume.get(t) != Some(&NsState::Done))
        .collect();
    let (collections, views): (Vec<_>, Vec<_>) =
        todo.into_iter().partition(|(n, _)| n.kind != Kind::View);
    let progress = Progress::new(&ctx.ui, "restore", collections.len() as u64, 0);

    let work = async {
        let mut results = match &src.kind {
            SourceKind::Archive { compression } => {
                runner
                    .archive(&src, *compression, &collections, &progress)
                    .await?
            }
            _ => {
                futures::stream::iter(collections.iter())
                    .map(|(n, t)| {
                        let r = runner.clone();
                        let store = src.store.clone();
                        let task = progress.task(&t.to_string(), n.expected_docs.unwrap_or(0));
                        async move { r.object(&store, n, t, task).await }
                    })
                    .buffer_unordered(args.parallel.unwrap_or(cores).max(1))
                    .collect::<Vec<_>>()
                    .await
            }
        };
        for (n, t) in &views {
            results.push(runner.view(n, t, &renamer).await);
        }
        progress.finish();
        let replay = if args.oplog_replay && results.iter().all(|r| r.ok) {
            Some(replay_oplog(&client, &src, &filter, &renamer, limit).await?)
        } else {
            None
        };
        anyhow::Ok((results, replay))
    };
    let (mut results, replay) = tokio::select! {
        r = work => r?,
        sig = crate::signals::interrupted() => {
            return Err(anyhow::anyhow!(
                "restore interrupted by {sig}: the target holds a partial restore; re-run the same command with --resume to finish it"
            ));
        }
    };
    results.sort_by(|a, b| a.target.cmp(&b.target));
    let failed: Vec<&NsResult> = results.iter().filter(|r| !r.ok).collect();
    report(ctx, &results, replay.as_ref());
    if failed.is_empty() {
        state::clear(&client, &src.identity).await?;
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
            "restore finished with mismatches: {names}"
        )))
    } else {
        Err(anyhow::anyhow!(
            "restore failed for {} namespaces: {names}. Fix the cause and re-run with --resume",
            failed.len()
        ))
    }
}

async fn count_source(src: &Source, selected: &[SourceNs]) -> Result<HashMap<String, u64>> {
    let mut out = HashMap::new();
    match &src.kind {
        SourceKind::Archive { compression } => {
            let key = src.archive_key.clone().unwrap_or_default();
            for (ns, c) in stream::archive_batches(
                &src.store,
                &key,
                *compression,
                &src.describe,
                HashMap::new(),
                None,
            )
            .await?
            {
                out.insert(ns.to_string(), c.docs);
            }
        }
        _ => {
            for n in selected {
                if let Some(DataRef::Object {
                    key,
                    compression,
                    sha256,
                }) = &n.data
                {
                    let c =
                        stream::object_batches(&src.store, key, *compression, sha256.clone(), None)
                            .await?;
                    out.insert(n.ns.to_string(), c.docs);
                }
            }
        }
    }
    Ok(out)
}

fn show_plan(ctx: &Ctx, src: &Source, plan: &[PlanItem], dry_run: bool) {
    if ctx.ui.json() {
        if dry_run {
            ctx.ui.result_json(
                &serde_json::json!({ "dry_run": true, "source": src.describe, "plan": plan }),
            );
        }
        return;
    }
    let mut t = table::new([
        "source",
        "target",
        "kind",
        "documents",
        "indexes",
        "target now",
        "action",
    ]);
    for p in plan {
        t.add_row(vec![
            p.source.clone(),
            p.target.clone(),
            p.kind.to_string(),
            p.documents
                .map(|d| d.to_string())
                .unwrap_or_else(|| "?".into()),
            p.indexes.to_string(),
            p.target_documents.to_string(),
            p.action.to_string(),
        ]);
    }
    let text = format!("restore plan: {}\n{t}", src.describe);
    if dry_run {
        ctx.ui.result(text);
    } else {
        ctx.ui.info(text);
    }
}

struct Runner {
    client: Client,
    ui: crate::report::Ui,
    identity: String,
    /// Targets a previous run left half-loaded (from the resume state read once up front).
    reloading: std::collections::HashSet<Namespace>,
    drop: bool,
    append: bool,
    no_indexes: bool,
    workers: usize,
}

impl Runner {
    /// Drop (when asked or when reloading), create with the dumped options, mark loading.
    async fn prepare(&self, n: &SourceNs, t: &Namespace) -> Result<()> {
        let reload = self.reloading.contains(t);
        state::set(&self.client, &self.identity, t, NsState::Loading).await?;
        if reload {
            // A killed restore's last insertMany may still be running on the server; it
            // would recreate the collection after our drop. Stop it first.
            schema::kill_writes(&self.client, &n.kind.data_ns(t)).await?;
        }
        if self.drop || reload {
            self.client
                .database(&t.db)
                .collection::<Document>(&t.coll)
                .drop()
                .await
                .with_context(|| format!("dropping {t}"))?;
        }
        if !schema::exists(&self.client, t).await? {
            schema::create(&self.client, t, &n.options).await?;
        }
        Ok(())
    }

    async fn finish(
        &self,
        n: &SourceNs,
        t: &Namespace,
        read: ReadCount,
        ins: InsertStats,
        start: Instant,
    ) -> NsResult {
        let mut r = NsResult {
            source: n.ns.to_string(),
            target: t.to_string(),
            read: read.docs,
            inserted: ins.inserted,
            duplicates: ins.duplicates,
            expected: n.expected_docs,
            ok: true,
            ..Default::default()
        };
        if !self.no_indexes {
            let build = schema::create_indexes(&self.client, t, schema::buildable(&n.indexes));
            let built = tokio::select! {
                r = build => r,
                _ = schema::watch_build(&self.ui, &self.client, &t.db, &t.coll) => unreachable!("the watcher never ends"),
            };
            match built {
                Ok(k) => r.indexes = k,
                Err(e) => {
                    r.ok = false;
                    r.problem = Some(format!("index build failed: {e:#}"));
                }
            }
        }
        let counted = n.kind.data_ns(t);
        r.target_count = self
            .client
            .database(&counted.db)
            .collection::<Document>(&counted.coll)
            .count_documents(doc! {})
            .await
            .unwrap_or(0);
        let expected = n.expected_docs.unwrap_or(read.docs);
        if r.ok {
            if read.docs != expected {
                r.ok = false;
                r.problem = Some(format!(
                    "count mismatch: read {} documents, the manifest records {expected}",
                    read.docs
                ));
            } else if self.append {
                if ins.inserted + ins.duplicates != read.docs {
                    r.ok = false;
                    r.problem = Some(format!(
                        "count mismatch: read {}, inserted {}, duplicates {}",
                        read.docs, ins.inserted, ins.duplicates
                    ));
                }
            } else if r.target_count != expected {
                r.ok = false;
                r.problem = Some(format!(
                    "count mismatch: {t} holds {}, expected {expected}",
                    r.target_count
                ));
            }
        }
        if r.ok {
            if let Err(e) = state::set(&self.client, &self.identity, t, NsState::Done).await {
                r.ok = false;
                r.problem = Some(format!("{e:#}"));
            }
        }
        r.seconds = start.elapsed().as_secs_f64();
        r
    }

    fn failed(n: &SourceNs, t: &Namespace, e: anyhow::Error) -> NsResult {
        NsResult {
            source: n.ns.to_string(),
            target: t.to_string(),
            expected: n.expected_docs,
            ok: false,
            problem: Some(crate::redact::scrub(&format!("{e:#}"))),
            ..Default::default()
        }
    }

    async fn object(
        &self,
        store: &crate::storage::Store,
        n: &SourceNs,
        t: &Namespace,
        task: TaskProgress,
    ) -> NsResult {
        let start = Instant::now();
        let outcome = async {
            self.prepare(n, t).await?;
            let (tx, rx) = mpsc::channel::<Batch>(2);
            let into = n.kind.data_ns(t);
            let ins = raw_write::insert_all(
                &self.client,
                &into,
                rx,
                self.workers,
                self.append,
                task.clone(),
            );
            let read = async {
                match &n.data {
                    Some(DataRef::Object {
                        key,
                        compression,
                        sha256,
                    }) => {
                        stream::object_batches(store, key, *compression, sha256.clone(), Some(tx))
                            .await
                    }
                    _ => Ok(ReadCount::default()),
                }
            };
            let (read, ins) = tokio::join!(read, ins);
            match (read, ins) {
                (Ok(r), Ok(i)) => anyhow::Ok((r, i)),
                // The reader stops with PipelineClosed when the inserts failed: report theirs.
                (Err(e), Err(ie))
                    if e.chain().any(|c| c.is::<crate::pipeline::PipelineClosed>()) =>
                {
                    Err(ie)
                }
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        }
        .await;
        task.finish();
        match outcome {
            Ok((read, ins)) => self.finish(n, t, read, ins, start).await,
            Err(e) => Self::failed(n, t, e),
        }
    }

    async fn archive(
        &self,
        src: &Source,
        compression: Compression,
        colls: &[(SourceNs, Namespace)],
        progress: &Progress,
    ) -> Result<Vec<NsResult>> {
        let mut routes = HashMap::new();
        let mut loaders = Vec::new();
        for (n, t) in colls {
            self.prepare(n, t).await?;
            let (tx, rx) = mpsc::channel::<Batch>(2);
            routes.insert(n.ns.clone(), tx);
            let (client, t2, workers, append) = (
                self.client.clone(),
                n.kind.data_ns(t),
                self.workers,
                self.append,
            );
            let task = progress.task(&t.to_string(), 0);
            loaders.push((
                n.clone(),
                t.clone(),
                task.clone(),
                tokio::spawn(async move {
                    raw_write::insert_all(&client, &t2, rx, workers, append, task).await
                }),
            ));
        }
        let start = Instant::now();
        let key = src.archive_key.clone().unwrap_or_default();
        let counts =
            stream::archive_batches(&src.store, &key, compression, &src.describe, routes, None)
                .await;
        let mut out = Vec::new();
        for (n, t, task, h) in loaders {
            task.finish();
            let ins = h.await.map_err(anyhow::Error::from).and_then(|r| r);
            match (&counts, ins) {
                (Ok(c), Ok(ins)) => out.push(
                    self.finish(
                        &n,
                        &t,
                        c.get(&n.ns).copied().unwrap_or_default(),
                        ins,
                        start,
                    )
                    .await,
                ),
                (Err(e), _) => out.push(Self::failed(&n, &t, anyhow::anyhow!("{e:#}"))),
                (_, Err(e)) => out.push(Self::failed(&n, &t, e)),
            }
        }
        Ok(out)
    }

    async fn view(&self, n: &SourceNs, t: &Namespace, renamer: &Renamer) -> NsResult {
        let outcome = async {
            if self.drop {
                self.client
                    .database(&t.db)
                    .collection::<Document>(&t.coll)
                    .drop()
                    .await?;
            }
            let mut options = n.options.clone();
            // A renamed database keeps the view pointing at the renamed collection.
            if let Ok(on) = n.options.get_str("viewOn") {
                let mapped = renamer.map(&Namespace::new(&n.ns.db, on));
                if mapped.db == t.db {
                    options.insert("viewOn", mapped.coll);
                }
            }
            if !schema::exists(&self.client, t).await? {
                schema::create(&self.client, t, &options).await?;
            }
            anyhow::Ok(())
        }
        .await;
        match outcome {
            Ok(()) => NsResult {
                source: n.ns.to_string(),
                target: t.to_string(),
                ok: true,
                ..Default::default()
            },
            Err(e) => Self::failed(n, t, e),
        }
    }
}

async fn replay_oplog(
    client: &Client,
    src: &Source,
    filter: &Filter,
    renamer: &Renamer,
    limit: Option<mongodb::bson::Timestamp>,
) -> Result<oplog_replay::ReplayStats> {
    let (reader, what): (Box<dyn std::io::Read + Send>, String) = match (&src.oplog, &src.kind) {
        (
            Some(OplogRef::Object {
                key,
                compression,
                sha256,
            }),
            _,
        ) => {
            // Verified before replay starts: replay must never apply a damaged oplog.
            let file = stream::spool_verified(&src.store, key, sha256.clone()).await?;
            (
                crate::codec::decoder(*compression, std::io::BufReader::new(file))?,
                key.clone(),
            )
        }
        (Some(OplogRef::Archive), SourceKind::Archive { compression }) => {
            let spool = tempfile::tempfile()
                .context("creating a temporary file for the archive's oplog")?;
            let key = src.archive_key.clone().unwrap_or_default();
            stream::archive_batches(
                &src.store,
                &key,
                *compression,
                &src.describe,
                HashMap::new(),
                Some(spool.try_clone()?),
            )
            .await?;
            let mut f = spool;
            std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0))?;
            (
                Box::new(std::io::BufReader::new(f)),
                format!("{} (oplog)", src.describe),
            )
        }
        _ => anyhow::bail!("{} has no oplog", src.describe),
    };
    let (rx, reader_task) = oplog_replay::spawn_reader(reader, what);
    let stats = Replayer::new(client, filter, renamer, limit).run(rx).await;
    // A reader error (truncated oplog) is the root cause when both fail; the reader
    // stopping because replay ended at --oplog-limit is not an error.
    match reader_task.await? {
        Err(e) if !e.is::<crate::pipeline::PipelineClosed>() => Err(e),
        _ => stats,
    }
}

fn report(ctx: &Ctx, results: &[NsResult], replay: Option<&oplog_replay::ReplayStats>) {
    if ctx.ui.json() {
        ctx.ui.result_json(&serde_json::json!({
            "ok": results.iter().all(|r| r.ok),
            "namespaces": results,
            "oplog": replay.map(|s| serde_json::json!({ "read": s.read, "applied": s.applied, "skipped": s.skipped,
                "last": s.last.map(|t| serde_json::json!({ "t": t.time, "i": t.increment })) })),
        }));
        return;
    }
    let mut t = table::new([
        "target",
        "read",
        "inserted",
        "duplicates",
        "target count",
        "expected",
        "indexes",
        "time",
        "result",
    ]);
    for r in results {
        t.add_row(vec![
            r.target.clone(),
            r.read.to_string(),
            r.inserted.to_string(),
            r.duplicates.to_string(),
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
    }
    ctx.ui.result(t.to_string());
    if let Some(s) = replay {
        ctx.ui.result(format!(
            "oplog replay: {} entries applied, {} skipped, {} read",
            s.applied, s.skipped, s.read
        ));
    }
    let ok = results.iter().filter(|r| r.ok).count();
    ctx.ui
        .result(format!("restored {ok}/{} namespaces", results.len()));
}
