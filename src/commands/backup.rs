//! `mongoshift backup`: stream databases to S3 or a folder in mongodump's layout,
//! compressed and checksummed, with manifest.json written last as the commit marker.

use std::time::Instant;

use anyhow::{Context, Result};
use chrono::Utc;
use clap::Args;
use futures::{StreamExt, TryStreamExt};
use mongodb::bson::doc;
use mongodb::Client;
use serde::Serialize;

use crate::cli::{Ctx, StorageArgs, TargetArgs};
use crate::codec::{self, Compression};
use crate::compare::ranges::IdRange;
use crate::dump::layout;
use crate::dump::manifest::{
    self, Manifest, NamespaceEntry, ObjectEntry, OplogEntry, Source, Totals,
};
use crate::dump::metadata;
use crate::exit::usage;
use crate::mongo::namespaces::{self, CollectionInfo, Kind};
use crate::mongo::{self as mongo_engine, oplog, raw_read};
use crate::namespace::Filter;
use crate::pipeline::{self, CodecSpec};
use crate::redact;
use crate::report::progress::Progress;
use crate::report::table;
use crate::storage::{Location, Store};

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Where to write: s3://bucket/prefix, file:///abs/dir or a path (default: storage.backups).
    #[arg(long, value_name = "LOCATION")]
    pub to: Option<String>,
    /// Database to back up (repeatable). Default: all except admin, config and local.
    #[arg(long = "db", value_name = "DB")]
    pub dbs: Vec<String>,
    /// Only namespaces matching this pattern, e.g. 'predixi.*' (repeatable).
    #[arg(long, value_name = "PATTERN")]
    pub ns_include: Vec<String>,
    /// Skip namespaces matching this pattern, e.g. '*.sessions' (repeatable).
    #[arg(long, value_name = "PATTERN")]
    pub ns_exclude: Vec<String>,
    /// Compression; choose gzip or none for a backup stock mongorestore can read.
    #[arg(long, value_enum, default_value = "zstd")]
    pub compress: Compression,
    /// Compression level (zstd 1-22, default 3; gzip 1-12, default 7: the size of mongodump --gzip).
    #[arg(long, value_name = "N")]
    pub level: Option<i32>,
    /// Collections copied at once (default: CPU cores).
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// Point in time: also save the oplog written during the backup (replica sets only).
    #[arg(long)]
    pub oplog: bool,
    /// Appended to the backup id, e.g. pre-migration.
    #[arg(long, value_name = "NAME")]
    pub tag: Option<String>,
    /// Archive the oplog continuously as slices beside the base backups (point-in-time
    /// restore with `restore --to-time`); replica sets only. Runs until stopped.
    #[arg(long, conflicts_with_all = ["oplog", "tag", "parallel"])]
    pub continuous: bool,
    /// With --continuous: close a slice every DURATION (default 60s) and/or at SIZE of oplog
    /// (e.g. 16MB; default 64MB), whichever comes first. Repeat to give both.
    #[arg(long, value_name = "DURATION|SIZE", requires = "continuous")]
    pub slice: Vec<String>,
    /// With --continuous: after a recorded gap (the oplog rolled past the archive), continue
    /// from the oldest entry the oplog still holds.
    #[arg(long, requires = "continuous")]
    pub after_gap: bool,
    /// With --continuous: run the archiver in the background and return; `backups continuous
    /// status|stop` control it.
    #[arg(long, requires = "continuous")]
    pub detach: bool,
    /// With --detach: the archiver's log file (default .mongoshift/logs/backup-continuous-TIME.log).
    #[arg(long, value_name = "FILE", requires = "detach")]
    pub log: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub storage: StorageArgs,
}

#[derive(Serialize)]
struct Summary<'a> {
    backup_id: &'a str,
    location: String,
    complete: bool,
    #[serde(flatten)]
    manifest: &'a Manifest,
}

pub async fn run(ctx: &Ctx, args: BackupArgs) -> Result<()> {
    if args.continuous {
        return continuous(ctx, args).await;
    }
    let compression = args.compress;
    let level = args.level.unwrap_or(compression.default_level());
    compression
        .check_level(level)
        .map_err(|e| usage(e.to_string()))?;
    if let Some(t) = &args.tag {
        manifest::check_tag(t).map_err(|e| usage(e.to_string()))?;
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let parallel = args.parallel.unwrap_or(cores).max(1);
    let filter = Filter::new(&args.ns_include, &args.ns_exclude)?;

    let target = args.target.resolve(&ctx.config)?;
    let client = mongo_engine::connect(&target, &args.target.connect_options()).await?;
    let (root, store) = args
        .storage
        .open("--to", args.to.as_deref(), &ctx.config)
        .await?;
    store.check_writable().await?;

    let source = describe_source(&client, &target.uri).await?;
    if args.oplog && source.replica_set.is_none() {
        return Err(usage(format!(
            "--oplog needs a replica-set member, but {} is a {}; it has no oplog. \
             Drop --oplog, or point --uri/--target at a replica set",
            source.hosts, source.topology
        )));
    }

    // Noted before the collections are listed: a collection created after this point is
    // then in the oplog even when the listing misses it.
    let oplog_start = if args.oplog {
        Some(oplog::latest(&client).await?)
    } else {
        None
    };
    let dbs = namespaces::databases(&client, &args.dbs).await?;
    let mut colls = Vec::new();
    for db in &dbs {
        colls.extend(namespaces::collections(&client, db, &filter).await?);
    }
    if colls.is_empty() {
        return Err(usage(format!(
            "nothing to back up: no collections in {} match the --db/--ns-include/--ns-exclude options",
            if dbs.is_empty() { "any user database".to_string() } else { dbs.join(", ") }
        )));
    }

    let (backup_id, started_at) = free_id(&store, args.tag.as_deref()).await?;
    let backup_loc = root.join(&backup_id);
    let backup_store = store.child(&backup_id);

    let started = serde_json::json!({
        "backup_id": backup_id, "started_at": started_at, "tool_version": env!("CARGO_PKG_VERSION"),
        "source": { "hosts": source.hosts, "server_version": source.server_version },
        "note": "manifest.json is written last; without it this backup is incomplete",
    });
    backup_store
        .put(layout::STARTED, serde_json::to_vec_pretty(&started)?)
        .await
        .with_context(|| format!("writing {backup_loc}/{}", layout::STARTED))?;

    let est_bytes: u64 = colls.iter().map(|c| c.estimated_bytes).sum();
    let est_docs: u64 = colls.iter().map(|c| c.estimated_count).sum();
    ctx.ui.info(format!(
        "backing up {} namespaces (~{} docs, ~{}) from {} to {backup_loc} [{}]",
        colls.len(),
        est_docs,
        table::bytes(est_bytes),
        source.hosts,
        compression.name()
    ));

    let job = Job {
        client: client.clone(),
        store: backup_store.clone(),
        compression,
        level,
        threads: compressor_threads(compression, cores, parallel.min(colls.len())),
    };
    let oplog_scope =
        if args.dbs.is_empty() && args.ns_include.is_empty() && args.ns_exclude.is_empty() {
            oplog::OplogScope::AllUserDatabases
        } else {
            let mut with_data: Vec<String> = colls.iter().map(|c| c.ns.db.clone()).collect();
            with_data.dedup();
            oplog::OplogScope::Databases(with_data)
        };
    let work = async {
        let progress = Progress::new(&ctx.ui, "backup", colls.len() as u64, est_bytes);
        let mut entries: Vec<NamespaceEntry> = futures::stream::iter(colls.iter())
            .map(|c| job.collection(c, &progress))
            .buffer_unordered(parallel)
            .try_collect()
            .await?;
        entries.sort_by(|a, b| (&a.db, &a.collection).cmp(&(&b.db, &b.collection)));
        let oplog_entry = match oplog_start {
            Some(start) => Some(job.oplog(start, oplog_scope, &progress).await?),
            None => None,
        };
        progress.finish();
        check_stored_sizes(&backup_store, &entries, oplog_entry.as_ref()).await?;
        let manifest = build_manifest(
            &backup_id,
            args.tag.clone(),
            started_at,
            source,
            compression,
            level,
            entries,
            oplog_entry,
        );
        let bytes = serde_json::to_vec_pretty(&manifest)?;
        // The commit marker: only now is this folder a backup.
        backup_store
            .put(layout::MANIFEST, bytes)
            .await
            .with_context(|| format!("writing {backup_loc}/{}", layout::MANIFEST))?;
        anyhow::Ok(manifest)
    };
    let outcome = tokio::select! {
        r = work => r,
        sig = crate::signals::interrupted() => Err(anyhow::anyhow!("interrupted by {sig}")),
    };
    let manifest = match outcome {
        Ok(m) => m,
        Err(e) => {
            // Every started upload is aborted, including any whose id we never saw.
            backup_store.abort_pending().await;
            let _ = backup_store.abort_uploads_under("").await;
            return Err(e.context(format!(
                "backup incomplete: no manifest was written, so {backup_loc} is not a usable backup \
                 (`mongoshift backups list` shows it as incomplete; `backups prune` removes it)"
            )));
        }
    };
    report(ctx, &backup_loc, &manifest);
    Ok(())
}

/// `backup --continuous`: the archiver in the foreground until Ctrl-C/SIGTERM, which closes
/// the current slice first.
async fn continuous(ctx: &Ctx, args: BackupArgs) -> Result<()> {
    use crate::pitr::{archiver::Archiver, chain, layout as pitr_layout, select::Selection};
    let compression = args.compress;
    let level = args.level.unwrap_or(compression.default_level());
    compression
        .check_level(level)
        .map_err(|e| usage(e.to_string()))?;
    let (slice_every, slice_bytes) = parse_slice(&args.slice)?;
    let selection = Selection::new(&args.dbs, &args.ns_include, &args.ns_exclude)?;
    let target = args.target.resolve(&ctx.config)?;
    let client = mongo_engine::connect(&target, &args.target.connect_options()).await?;
    let (root, store) = args
        .storage
        .open("--to", args.to.as_deref(), &ctx.config)
        .await?;
    store.check_writable().await?;
    let source = describe_source(&client, &target.uri).await?;
    let Some(set) = source.replica_set.clone() else {
        return Err(usage(format!(
            "backup --continuous archives the oplog, and {} is a {}: {}",
            source.hosts,
            source.topology,
            if source.topology == "sharded" {
                "a sharded cluster's shards have separate oplogs, and a restore to one time across them needs \
                 coordinated cuts, which this does not do (not supported); archive a replica set"
            } else {
                "a standalone keeps no oplog. Convert it to a single-node replica set (start mongod with \
                 --replSet NAME and run rs.initiate()), or point --uri/--target at a replica-set member"
            }
        )));
    };
    let stream_store = store.child(&pitr_layout::stream_dir(&set));
    let location = format!("{root}/{}", pitr_layout::stream_dir(&set));
    let info = crate::pitr::slice::StreamInfo {
        format: "mongoshift-oplog-stream".into(),
        stream: set.clone(),
        hosts: source.hosts.clone(),
        replica_set: set.clone(),
        selection,
        started_at: Utc::now(),
    };
    if let Some(existing) = stream_store.head(pitr_layout::STREAM_INFO).await? {
        let _ = existing;
        let old: crate::pitr::slice::StreamInfo =
            serde_json::from_slice(&stream_store.get(pitr_layout::STREAM_INFO).await?)
                .with_context(|| format!("{location}/{} is not valid", pitr_layout::STREAM_INFO))?;
        if old.selection != info.selection {
            return Err(usage(format!(
                "{location} archives {}, but this run selects {}: one stream holds one selection, or its \
                 windows would lie. Use the same --db/--ns-include/--ns-exclude, or another --to location",
                old.selection.describe(),
                info.selection.describe()
            )));
        }
    }
    let running = crate::pitr::control::read(&stream_store).await?;
    if let Some(r) = running
        .filter(|r| r.state == crate::pitr::control::State::Running && r.alive_here() == Some(true))
    {
        return Err(usage(format!(
            "an archiver already runs for {location} (pid {} on this host, log {}): one stream has one archiver. \
             `mongoshift backups continuous status --from {root}` shows it; `backups continuous stop` stops it",
            r.pid,
            r.log.unwrap_or_else(|| "-".into())
        )));
    }
    if args.detach {
        let log = args.log.clone().unwrap_or_else(|| {
            std::path::PathBuf::from(".mongoshift/logs").join(format!(
                "backup-continuous-{}.log",
                Utc::now().format("%Y%m%d-%H%M%S")
            ))
        });
        let mut argv = crate::migration::detach::own_args_without_detach();
        // own_args keeps the program name first, as the child parses it.
        argv.retain(|a| a != "--detach");
        let probe = stream_store.clone();
        let (pid, log_abs) =
            crate::migration::detach::start_process(argv, &log, "backup", "archiver", |pid| {
                let probe = probe.clone();
                async move {
                    Ok(crate::pitr::control::read(&probe).await?.is_some_and(|r| {
                        r.pid == pid && r.state == crate::pitr::control::State::Running
                    }))
                }
            })
            .await?;
        if ctx.ui.json() {
            ctx.ui.result_json(&serde_json::json!({
                "ok": true, "detached": true, "pid": pid, "log": log_abs.display().to_string(),
                "stream": location,
            }));
        } else {
            ctx.ui.result(format!(
                "archiving in the background: pid {pid}, log {}.\n\
                 `mongoshift backups continuous status --from {root}` shows its lag; \
                 `mongoshift backups continuous stop --from {root}` stops it.",
                log_abs.display()
            ));
        }
        return Ok(());
    }
    let newest_base = chain::bases(&store)
        .await?
        .into_iter()
        .filter(|b| b.replica_set == set)
        .map(|b| b.end)
        .max();
    let archiver = Archiver {
        client,
        store: stream_store,
        location: location.clone(),
        info,
        compression,
        level,
        slice_every,
        slice_bytes,
        poll: std::time::Duration::from_millis(200),
        after_gap: args.after_gap,
        ui: ctx.ui.clone(),
    };
    let start = archiver.start_position(newest_base).await?;
    let mut record = crate::pitr::control::ArchiverRecord::running();
    crate::pitr::control::write(&archiver.store, &record).await?;
    ctx.ui.info(format!(
        "archiving the oplog of {} ({}) to {location} in slices of {} or {} [{}]; Ctrl-C or SIGTERM closes the current slice and stops",
        source.hosts,
        archiver.info.selection.describe(),
        humantime::format_duration(slice_every),
        table::bytes(slice_bytes),
        compression.name()
    ));
    let (tx, rx) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(async move {
        let sig = crate::signals::interrupted().await;
        let _ = tx.send(true);
        sig
    });
    let outcome = archiver.run(start, rx).await;
    watcher.abort();
    record.ended_at = Some(Utc::now());
    match &outcome {
        Ok(_) => record.state = crate::pitr::control::State::Stopped,
        Err(e) => {
            record.state = crate::pitr::control::State::Failed;
            record.error = Some(crate::redact::scrub(&crate::mongo::errors::chain_text(e)));
        }
    }
    // Best effort: the outcome itself is what this process reports.
    if let Err(e) = crate::pitr::control::write(&archiver.store, &record).await {
        ctx.ui
            .warn(format!("could not record the archiver's end: {e:#}"));
    }
    let summary = outcome?;
    if ctx.ui.json() {
        ctx.ui.result_json(&summary);
    } else {
        ctx.ui.result(format!(
            "continuous backup stopped: {} slices, {} entries ({} → {} stored) archived through {}; read lag p50 {} ms, p99 {} ms",
            summary.slices,
            summary.entries,
            table::bytes(summary.raw_bytes),
            table::bytes(summary.stored_bytes),
            summary
                .archived_until
                .or(summary.started_after)
                .map(|t| crate::restore::oplog_replay::show_ts(t.into()))
                .unwrap_or_default(),
            summary.lag_ms.p50,
            summary.lag_ms.p99
        ));
    }
    Ok(())
}

/// `--slice 60s`, `--slice 16MB`, or both.
fn parse_slice(values: &[String]) -> Result<(std::time::Duration, u64)> {
    let mut every = std::time::Duration::from_secs(60);
    let mut bytes = 64 * 1024 * 1024;
    for v in values {
        let low = v.trim().to_ascii_lowercase();
        if let Some(n) = low.strip_suffix("mb").or_else(|| low.strip_suffix("m b")) {
            let n: f64 = n.trim().parse().map_err(|_| {
                usage(format!(
                    "--slice {v}: give a duration (e.g. 60s) or a size in MB (e.g. 16MB)"
                ))
            })?;
            if !(0.001..=1024.0).contains(&n) {
                return Err(usage(format!(
                    "--slice {v}: a slice size must be between 1KB and 1024MB"
                )));
            }
            bytes = (n * 1024.0 * 1024.0) as u64;
        } else {
            let d = crate::cli::parse_duration(v).map_err(|e| usage(format!("--slice: {e}")))?;
            if d < std::time::Duration::from_millis(500) {
                return Err(usage(format!(
                    "--slice {v}: slices shorter than 500ms would be mostly manifests"
                )));
            }
            every = d;
        }
    }
    Ok((every, bytes))
}

/// An id not yet used at this location, and the start time it encodes. A second backup in
/// the same second waits for the next second rather than naming itself after a later time
/// than it started: `backups list` shows the id and the start, and they must agree.
async fn free_id(store: &Store, tag: Option<&str>) -> Result<(String, chrono::DateTime<Utc>)> {
    let existing = store.list_children("").await?;
    for _ in 0..3 {
        let now = Utc::now();
        let id = manifest::backup_id(now, tag);
        if !existing.contains(&id) {
            return Ok((id, now));
        }
        let into_second = now.timestamp_subsec_millis() as u64;
        tokio::time::sleep(std::time::Duration::from_millis(
            1000 - into_second.min(999),
        ))
        .await;
    }
    // Ids ahead of our clock (another machine's skew): take the next free second.
    let now = Utc::now();
    let mut t = now;
    loop {
        let id = manifest::backup_id(t, tag);
        if !existing.contains(&id) {
            return Ok((id, now));
        }
        t += chrono::Duration::seconds(1);
    }
}

async fn describe_source(client: &Client, uri: &str) -> Result<Source> {
    let admin = client.database("admin");
    let build = admin
        .run_command(doc! { "buildInfo": 1 })
        .await
        .context("running buildInfo")?;
    let (topology, replica_set) = match crate::mongo::Hello::ask(client).await?.kind() {
        crate::mongo::hello::Kind::Mongos => ("sharded", None),
        crate::mongo::hello::Kind::ReplicaSet(set) => ("replica_set", Some(set)),
        crate::mongo::hello::Kind::Standalone => ("standalone", None),
    };
    Ok(Source {
        hosts: redact::hosts(uri),
        server_version: build.get_str("version").unwrap_or("unknown").to_string(),
        topology: topology.to_string(),
        replica_set,
    })
}

struct Job {
    client: Client,
    store: Store,
    compression: Compression,
    level: i32,
    threads: u32,
}

/// Compressor threads per collection stream. zstd's workers share the cores between the
/// streams that run at once. Parallel gzip gets every core in each stream: its blocks are
/// independent, so a stream left alone at the end (the biggest collection, usually) still
/// uses the whole machine, and idle workers cost nothing.
fn compressor_threads(c: Compression, cores: usize, streams: usize) -> u32 {
    match c {
        Compression::Gzip => cores.max(1) as u32,
        _ => (cores / streams.max(1)).max(1) as u32,
    }
}

impl Job {
    fn codec(&self) -> CodecSpec {
        CodecSpec {
            compression: self.compression,
            level: self.level,
            threads: self.threads,
        }
    }

    async fn collection(
        &self,
        info: &CollectionInfo,
        progress: &Progress,
    ) -> Result<NamespaceEntry> {
        let start = Instant::now();
        let ns = info.ns.clone();
        let task = progress.task(&ns.to_string(), info.estimated_count);
        let (data, stats) = if info.kind == Kind::View {
            (None, raw_read::ReadStats::default())
        } else {
            let data_ns = info.kind.data_ns(&ns);
            let key = layout::data_key(&data_ns, self.compression);
            let client = self.client.clone();
            let (ns2, task2) = (data_ns, task.clone());
            let (stats, obj) = pipeline::stream_to_object(
                &self.store,
                &key,
                info.estimated_bytes,
                self.codec(),
                move |tx| {
                    raw_read::stream_documents(
                        client,
                        ns2,
                        IdRange::all(),
                        raw_read::Sink::chunks(tx),
                        task2,
                    )
                },
            )
            .await
            .with_context(|| format!("backing up {ns}"))?;
            (
                Some(ObjectEntry {
                    key: obj.key,
                    stored_bytes: obj.stored_bytes,
                    sha256: obj.sha256,
                }),
                stats,
            )
        };
        let meta = self
            .small_object(
                &layout::metadata_key(&ns, self.compression),
                &metadata::render(info),
            )
            .await
            .with_context(|| format!("writing the metadata of {ns}"))?;
        task.finish();
        Ok(NamespaceEntry {
            db: ns.db.clone(),
            collection: ns.coll.clone(),
            kind: info.kind.as_str().to_string(),
            documents: stats.docs,
            raw_bytes: stats.bytes,
            indexes: info.indexes.len(),
            data,
            metadata: meta,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    async fn small_object(&self, key: &str, content: &[u8]) -> Result<ObjectEntry> {
        let stored = codec::compress_all(self.compression, self.level, content)?;
        let entry = ObjectEntry {
            key: key.to_string(),
            stored_bytes: stored.len() as u64,
            sha256: pipeline::sha256_hex(&stored),
        };
        self.store.put(key, stored).await?;
        Ok(entry)
    }

    async fn oplog(
        &self,
        start: mongodb::bson::Timestamp,
        scope: oplog::OplogScope,
        progress: &Progress,
    ) -> Result<OplogEntry> {
        let task = progress.task("oplog", 0);
        let client = self.client.clone();
        let key = layout::oplog_key(self.compression);
        let t2 = task.clone();
        let scope2 = scope.clone();
        let (stats, obj) =
            pipeline::stream_to_object(&self.store, &key, 0, self.codec(), move |tx| {
                oplog::stream_entries(client, start, scope2, tx, t2)
            })
            .await
            .context("copying the oplog")?;
        // If the oplog rolled past our start while we copied, entries are missing: not point-in-time.
        let oldest = oplog::oldest(&self.client).await?;
        if oldest > start {
            anyhow::bail!(
                "the oplog rolled over during the backup (oldest entry {oldest:?} is newer than the start {start:?}); \
                 enlarge the oplog (replSetResizeOplog) or back up when writes are lighter"
            );
        }
        task.finish();
        Ok(OplogEntry {
            object: ObjectEntry {
                key: obj.key,
                stored_bytes: obj.stored_bytes,
                sha256: obj.sha256,
            },
            entries: stats.entries,
            raw_bytes: stats.bytes,
            start: start.into(),
            end: stats.last.unwrap_or(start).into(),
            databases: match scope {
                oplog::OplogScope::AllUserDatabases => None,
                oplog::OplogScope::Databases(d) => Some(d),
            },
        })
    }
}

/// Every object must exist with the size we counted while writing it.
async fn check_stored_sizes(
    store: &Store,
    entries: &[NamespaceEntry],
    oplog: Option<&OplogEntry>,
) -> Result<()> {
    let objects = entries
        .iter()
        .flat_map(|e| e.data.iter().chain(std::iter::once(&e.metadata)))
        .chain(oplog.map(|o| &o.object));
    for o in objects {
        match store.head(&o.key).await? {
            Some(size) if size == o.stored_bytes => {}
            Some(size) => anyhow::bail!(
                "{} holds {size} bytes after upload, but {} were written",
                o.key,
                o.stored_bytes
            ),
            None => anyhow::bail!("{} is missing after upload", o.key),
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn build_manifest(
    backup_id: &str,
    tag: Option<String>,
    started_at: chrono::DateTime<Utc>,
    source: Source,
    compression: Compression,
    level: i32,
    namespaces: Vec<NamespaceEntry>,
    oplog: Option<OplogEntry>,
) -> Manifest {
    let totals = Totals {
        namespaces: namespaces.len(),
        documents: namespaces.iter().map(|n| n.documents).sum(),
        raw_bytes: namespaces.iter().map(|n| n.raw_bytes).sum(),
        stored_bytes: namespaces
            .iter()
            .map(|n| n.data.as_ref().map_or(0, |d| d.stored_bytes) + n.metadata.stored_bytes)
            .sum::<u64>()
            + oplog.as_ref().map_or(0, |o| o.object.stored_bytes),
    };
    Manifest {
        format: manifest::FORMAT.to_string(),
        format_version: manifest::FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        backup_id: backup_id.to_string(),
        tag,
        started_at,
        finished_at: Utc::now(),
        source,
        compression,
        compression_level: level,
        checksum_algorithm: manifest::CHECKSUM_ALGORITHM.to_string(),
        namespaces,
        oplog,
        totals,
    }
}

fn report(ctx: &Ctx, loc: &Location, m: &Manifest) {
    if ctx.ui.json() {
        ctx.ui.result_json(&Summary {
            backup_id: &m.backup_id,
            location: loc.to_string(),
            complete: true,
            manifest: m,
        });
        return;
    }
    let mut t = table::new(["namespace", "docs", "raw", "stored", "ratio", "time"]);
    for n in &m.namespaces {
        let stored = n.data.as_ref().map_or(0, |d| d.stored_bytes);
        t.add_row(vec![
            format!(
                "{}.{}{}",
                n.db,
                n.collection,
                if n.kind == "view" { " (view)" } else { "" }
            ),
            n.documents.to_string(),
            table::bytes(n.raw_bytes),
            table::bytes(stored),
            ratio(n.raw_bytes, stored),
            table::duration_secs(n.seconds),
        ]);
    }
    if let Some(o) = &m.oplog {
        t.add_row(vec![
            format!("oplog ({} entries)", o.entries),
            o.entries.to_string(),
            table::bytes(o.raw_bytes),
            table::bytes(o.object.stored_bytes),
            ratio(o.raw_bytes, o.object.stored_bytes),
            "-".into(),
        ]);
    }
    let secs = (m.finished_at - m.started_at).num_milliseconds() as f64 / 1000.0;
    ctx.ui.result(t.to_string());
    ctx.ui.result(format!(
        "backup {} complete: {} namespaces, {} documents, {} raw → {} stored ({}), {} at {}/s; manifest written to {loc}/{}",
        m.backup_id,
        m.totals.namespaces,
        m.totals.documents,
        table::bytes(m.totals.raw_bytes),
        table::bytes(m.totals.stored_bytes),
        ratio(m.totals.raw_bytes, m.totals.stored_bytes),
        table::duration_secs(secs),
        table::bytes((m.totals.raw_bytes as f64 / secs.max(0.001)) as u64),
        layout::MANIFEST,
    ));
}

fn ratio(raw: u64, stored: u64) -> String {
    // An empty collection's object is a bare gzip/zstd frame: no ratio to speak of.
    if stored == 0 || raw == 0 {
        "-".into()
    } else {
        format!("{:.1}x", raw as f64 / stored as f64)
    }
}
