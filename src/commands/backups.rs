//! `mongoshift backups list|show|verify|prune`: what backups exist, whether they
//! are intact, and removing old ones safely.

use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde::Serialize;
use tokio_util::io::SyncIoBridge;

use crate::cli::{parse_duration, Ctx, StorageArgs};
use crate::codec::{self, Compression};
use crate::dump::bson_stream;
use crate::dump::layout;
use crate::dump::manifest::{self, Manifest, ObjectEntry};
use crate::exit::{check_failed, usage};
use crate::pipeline::HashingReader;
use crate::report::table;
use crate::storage::{Location, Store};

#[derive(Debug, Args)]
pub struct BackupsArgs {
    #[command(subcommand)]
    pub command: BackupsCommand,
}

#[derive(Debug, Clone, Args)]
pub struct FromArgs {
    /// Backups location: s3://bucket/prefix, file:///dir or a path (default: storage.backups).
    #[arg(long, value_name = "LOCATION", global = true)]
    pub from: Option<String>,
    #[command(flatten)]
    pub storage: StorageArgs,
}

#[derive(Debug, Subcommand)]
pub enum BackupsCommand {
    /// List backups, newest first, complete or not.
    List {
        #[command(flatten)]
        from: FromArgs,
    },
    /// Show one backup's manifest.
    Show {
        /// A backup id, or `latest` for the newest complete backup.
        id: String,
        #[command(flatten)]
        from: FromArgs,
    },
    /// Check that every object exists with its recorded size and checksum.
    Verify {
        /// A backup id, or `latest`.
        id: String,
        /// Also decompress every object and walk every BSON document, comparing counts.
        #[arg(long)]
        deep: bool,
        /// The restore drill: restore into a scratch database on --uri/--target, verify
        /// counts and checksums against the manifest, then drop it.
        #[arg(long)]
        restore_test: bool,
        #[command(flatten)]
        target: crate::cli::TargetArgs,
        #[command(flatten)]
        from: FromArgs,
    },
    /// Continuous backups (`backup --continuous`): their archiver's state, and stopping it.
    Continuous {
        #[command(subcommand)]
        command: ContinuousCommand,
    },
    /// Delete old backups (never the newest complete one).
    Prune {
        /// Keep the N newest complete backups (give this, --older-than, or both).
        #[arg(long, value_name = "N")]
        keep_last: Option<usize>,
        /// Delete backups older than this (e.g. 30d); incomplete ones only past this age.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        older_than: Option<Duration>,
        /// Keep point-in-time restore possible for the last N days: the base backups and the
        /// slices that reach every time since then are never deleted (alone: deletes what is
        /// older and not needed).
        #[arg(long, value_name = "N")]
        pitr_days: Option<u32>,
        /// Show what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Delete without asking.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        from: FromArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ContinuousCommand {
    /// Per stream: the archiver's process and state, how far it has archived and how far
    /// behind that is.
    Status {
        /// The stream (replica set name); default: every stream at the location.
        #[arg(long, value_name = "NAME")]
        stream: Option<String>,
        #[command(flatten)]
        from: FromArgs,
    },
    /// Ask the archiver to close its current slice and stop; returns once it has.
    Stop {
        /// The stream (replica set name); needed when the location holds several.
        #[arg(long, value_name = "NAME")]
        stream: Option<String>,
        /// How long to wait for it.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2m")]
        wait: Duration,
        #[command(flatten)]
        from: FromArgs,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub id: String,
    pub time: Option<DateTime<Utc>>,
    pub complete: bool,
    pub databases: Vec<String>,
    pub documents: Option<u64>,
    pub stored_bytes: u64,
    pub compression: Option<String>,
    pub oplog: bool,
    #[serde(skip)]
    pub manifest: Option<Manifest>,
}

pub async fn run(ctx: &Ctx, args: BackupsArgs) -> Result<()> {
    match args.command {
        BackupsCommand::List { from } => list(ctx, &from).await,
        BackupsCommand::Show { id, from } => show(ctx, &from, &id).await,
        BackupsCommand::Verify {
            id,
            deep,
            restore_test,
            target,
            from,
        } => {
            if !restore_test {
                return verify(ctx, &from, &id, deep, true).await.map(|_| ());
            }
            // One result for both: the drill's restore reports inside it in JSON.
            let mut report = verify(ctx, &from, &id, deep, false).await?;
            let inner = Ctx {
                ui: ctx.ui.without_results(),
                config: ctx.config.clone(),
            };
            let drilled =
                restore_drill(if ctx.ui.json() { &inner } else { ctx }, &from, &id, target).await;
            if ctx.ui.json() {
                report["restore_test"] = serde_json::json!({
                    "ok": drilled.is_ok(),
                    "error": drilled.as_ref().err().map(|e| crate::redact::scrub(&format!("{e:#}"))),
                });
                report["ok"] = serde_json::json!(drilled.is_ok());
                ctx.ui.result_json(&report);
            }
            drilled
        }
        BackupsCommand::Continuous { command } => match command {
            ContinuousCommand::Status { stream, from } => {
                continuous_status(ctx, &from, stream.as_deref()).await
            }
            ContinuousCommand::Stop { stream, wait, from } => {
                continuous_stop(ctx, &from, stream.as_deref(), wait).await
            }
        },
        BackupsCommand::Prune {
            keep_last,
            older_than,
            pitr_days,
            dry_run,
            yes,
            from,
        } => {
            prune(
                ctx,
                &from,
                keep_last,
                older_than.or(pitr_days.map(|d| Duration::from_secs(u64::from(d) * 86400))),
                pitr_days,
                dry_run,
                yes,
            )
            .await
        }
    }
}

/// The streams at the location (or the one named).
async fn streams(store: &Store, loc: &Location, name: Option<&str>) -> Result<Vec<String>> {
    let all = store.list_children(crate::pitr::layout::PITR_DIR).await?;
    match name {
        Some(n) if all.iter().any(|s| s == n) => Ok(vec![n.to_string()]),
        Some(n) => Err(usage(format!(
            "--stream {n}: {loc} has no continuous backup of replica set '{n}' (it has: {})",
            if all.is_empty() { "none".into() } else { all.join(", ") }
        ))),
        None if all.is_empty() => Err(usage(format!(
            "{loc} holds no continuous backup; start one with `mongoshift backup --continuous --to {loc}`"
        ))),
        None => Ok(all),
    }
}

async fn continuous_status(ctx: &Ctx, from: &FromArgs, name: Option<&str>) -> Result<()> {
    use crate::pitr::{archiver, control, layout as pl, planner::show};
    let (loc, store) = open(ctx, from).await?;
    let mut rows = Vec::new();
    for name in streams(&store, &loc, name).await? {
        let s = store.child(&pl::stream_dir(&name));
        let rec = control::read(&s).await?;
        let last = archiver::last_slice(&s).await?;
        let now = Utc::now();
        let behind = last
            .as_ref()
            .map(|l| (now.timestamp() - i64::from(l.until.t)).max(0));
        let process = match &rec {
            None => "never recorded".to_string(),
            Some(r) => match (r.state, r.alive_here()) {
                (control::State::Running, Some(false)) => format!(
                    "not running (pid {} on {} is gone without recording a stop: killed or crashed; start it again to resume)",
                    r.pid, r.host
                ),
                (control::State::Running, Some(true)) => format!("running (pid {} on {})", r.pid, r.host),
                (control::State::Running, None) => format!("running on {} (pid {}; another host, not checked)", r.host, r.pid),
                (control::State::Stopped, _) => "stopped".to_string(),
                (control::State::Failed, _) => format!(
                    "FAILED: {}",
                    r.error.clone().unwrap_or_default()
                ),
            },
        };
        rows.push(serde_json::json!({
            "stream": name,
            "state": rec.as_ref().map(|r| r.state),
            "process": process,
            "pid": rec.as_ref().map(|r| r.pid),
            "host": rec.as_ref().map(|r| r.host.clone()),
            "log": rec.as_ref().and_then(|r| r.log.clone()),
            "error": rec.as_ref().and_then(|r| r.error.clone()),
            "archived_until": last.as_ref().map(|l| l.until),
            "archived_until_text": last.as_ref().map(|l| show(l.until)),
            "last_slice_written_at": last.as_ref().map(|l| l.written_at),
            "seconds_behind": behind,
        }));
    }
    if ctx.ui.json() {
        ctx.ui
            .result_json(&serde_json::json!({ "location": loc.to_string(), "streams": rows }));
        return Ok(());
    }
    let mut t = table::new([
        "stream",
        "archiver",
        "archived through (UTC)",
        "behind",
        "log",
    ]);
    for r in &rows {
        t.add_row(vec![
            r["stream"].as_str().unwrap_or_default().to_string(),
            r["process"].as_str().unwrap_or_default().to_string(),
            r["archived_until_text"].as_str().unwrap_or("-").to_string(),
            r["seconds_behind"]
                .as_i64()
                .map(|s| format!("{s} s"))
                .unwrap_or_else(|| "-".into()),
            r["log"].as_str().unwrap_or("-").to_string(),
        ]);
    }
    ctx.ui.result(t.to_string());
    Ok(())
}

async fn continuous_stop(
    ctx: &Ctx,
    from: &FromArgs,
    name: Option<&str>,
    wait: Duration,
) -> Result<()> {
    use crate::pitr::{control, layout as pl};
    let (loc, store) = open(ctx, from).await?;
    let names = streams(&store, &loc, name).await?;
    if names.len() > 1 {
        return Err(usage(format!(
            "{loc} holds several continuous backups ({}): say which to stop with --stream NAME",
            names.join(", ")
        )));
    }
    let s = store.child(&pl::stream_dir(&names[0]));
    match control::read(&s).await? {
        Some(r) if r.state == control::State::Running && r.alive_here() != Some(false) => {}
        _ => {
            ctx.ui.result(format!(
                "the archiver of {loc}/{} is not running",
                pl::stream_dir(&names[0])
            ));
            return Ok(());
        }
    }
    let r = control::request_stop(&s, wait).await?;
    if ctx.ui.json() {
        ctx.ui.result_json(
            &serde_json::json!({ "ok": r.state == control::State::Stopped, "record": r }),
        );
    } else {
        ctx.ui.result(format!(
            "the archiver of {loc}/{} {} (pid {} on {})",
            pl::stream_dir(&names[0]),
            match r.state {
                control::State::Failed =>
                    format!("had failed: {}", r.error.clone().unwrap_or_default()),
                _ => "stopped after closing its current slice".to_string(),
            },
            r.pid,
            r.host
        ));
    }
    if r.state == control::State::Failed {
        anyhow::bail!("the archiver had failed: {}", r.error.unwrap_or_default());
    }
    Ok(())
}

async fn open(ctx: &Ctx, from: &FromArgs) -> Result<(Location, Store)> {
    let (loc, store) = from
        .storage
        .open("--from", from.from.as_deref(), &ctx.config)
        .await?;
    store.check_readable().await?;
    Ok((loc, store))
}

/// Every backup under the location, newest first.
pub async fn scan(store: &Store) -> Result<Vec<Listing>> {
    let mut out = Vec::new();
    for id in store.list_children("").await? {
        // Continuous backups' slices live beside the backups, not as one.
        if id == crate::pitr::layout::PITR_DIR {
            continue;
        }
        let child = store.child(&id);
        let objects = child.list("").await?;
        let manifest = match objects.iter().any(|o| o.key == layout::MANIFEST) {
            true => Some(Manifest::parse(
                &child.get(layout::MANIFEST).await?,
                &format!("{id}/{}", layout::MANIFEST),
            )?),
            false => None,
        };
        // A complete backup's size is the manifest's total (what `backup` and `backups show`
        // print); an incomplete one has only what was uploaded.
        let stored_bytes = match &manifest {
            Some(m) => m.totals.stored_bytes,
            None => objects.iter().map(|o| o.size).sum(),
        };
        let databases = match &manifest {
            Some(m) => {
                let mut d: Vec<String> = m.namespaces.iter().map(|n| n.db.clone()).collect();
                d.dedup();
                d
            }
            None => {
                let mut d: Vec<String> = objects
                    .iter()
                    .filter_map(|o| o.key.split_once('/').map(|(db, _)| db.to_string()))
                    .filter(|db| !db.is_empty())
                    .collect();
                d.dedup();
                d
            }
        };
        out.push(Listing {
            time: manifest
                .as_ref()
                .map(|m| m.started_at)
                .or_else(|| manifest::id_time(&id)),
            complete: manifest.is_some(),
            documents: manifest.as_ref().map(|m| m.totals.documents),
            compression: manifest.as_ref().map(|m| m.compression.name().to_string()),
            oplog: manifest.as_ref().is_some_and(|m| m.oplog.is_some()),
            databases,
            stored_bytes,
            manifest,
            id,
        });
    }
    out.sort_by(|a, b| b.id.cmp(&a.id));
    Ok(out)
}

/// Resolve `latest` to the newest complete backup, and load the manifest of `id`.
pub async fn load_manifest(store: &Store, loc: &Location, id: &str) -> Result<(String, Manifest)> {
    let id = if id == "latest" {
        scan(store)
            .await?
            .into_iter()
            .find(|l| l.complete)
            .map(|l| l.id)
            .ok_or_else(|| usage(format!("there is no complete backup at {loc}")))?
    } else {
        id.to_string()
    };
    let child = store.child(&id);
    if child.head(layout::MANIFEST).await?.is_none() {
        let exists = !child.list("").await?.is_empty();
        return Err(if exists {
            usage(format!(
                "backup {id} at {loc} is incomplete: it has no manifest.json, so it was interrupted or failed \
                 and must not be restored; `mongoshift backups prune` removes it"
            ))
        } else {
            usage(format!(
                "no backup {id} at {loc}; `mongoshift backups list` shows the ids"
            ))
        });
    }
    let m = Manifest::parse(
        &child.get(layout::MANIFEST).await?,
        &format!("{loc}/{id}/{}", layout::MANIFEST),
    )?;
    Ok((id, m))
}

async fn list(ctx: &Ctx, from: &FromArgs) -> Result<()> {
    let (loc, store) = open(ctx, from).await?;
    let backups = scan(&store).await?;
    let chains = crate::pitr::chain::load(&store).await?;
    if ctx.ui.json() {
        ctx.ui.result_json(&serde_json::json!({
            "location": loc.to_string(),
            "backups": backups,
            "point_in_time": chains,
        }));
        return Ok(());
    }
    if backups.is_empty() && chains.is_empty() {
        ctx.ui.result(format!("no backups at {loc}"));
        return Ok(());
    }
    if !chains.is_empty() {
        ctx.ui.result(windows_table(&chains));
    }
    let mut t = table::new([
        "id",
        "time (UTC)",
        "databases",
        "documents",
        "stored",
        "compression",
        "state",
    ]);
    for b in &backups {
        t.add_row(vec![
            b.id.clone(),
            b.time
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default(),
            b.databases.join(", "),
            b.documents
                .map(|d| d.to_string())
                .unwrap_or_else(|| "-".into()),
            table::bytes(b.stored_bytes),
            b.compression.clone().unwrap_or_else(|| "-".into()),
            match (b.complete, b.oplog) {
                (true, true) => "complete (+oplog)".into(),
                (true, false) => "complete".into(),
                (false, _) => "INCOMPLETE (no manifest)".to_string(),
            },
        ]);
    }
    ctx.ui.result(t.to_string());
    Ok(())
}

/// Per replica set: the restorable windows and the gaps, in time order.
fn windows_table(chains: &[crate::pitr::chain::StreamChain]) -> String {
    use crate::pitr::planner::show;
    let mut t = table::new([
        "replica set",
        "point in time",
        "from (UTC)",
        "through (UTC)",
        "via",
    ]);
    for c in chains {
        let mut rows: Vec<(crate::dump::manifest::OplogTs, Vec<String>)> = Vec::new();
        for w in &c.windows {
            let slices = c
                .slices
                .iter()
                .filter(|s| s.until > w.from && s.after < w.to)
                .count();
            rows.push((
                w.from,
                vec![
                    c.stream.clone(),
                    "restorable".into(),
                    show(w.from),
                    show(w.to),
                    format!("base {} + {slices} slices", w.bases.join(", ")),
                ],
            ));
        }
        for g in &c.gaps {
            rows.push((
                g.after,
                vec![
                    c.stream.clone(),
                    "GAP (not restorable)".into(),
                    show(g.after),
                    show(g.until),
                    g.reason.clone().unwrap_or_else(|| "slices missing".into()),
                ],
            ));
        }
        if let Some(last) = c.runs.last() {
            if c.windows.iter().all(|w| w.to < last.after) {
                rows.push((
                    last.after,
                    vec![
                        c.stream.clone(),
                        "slices only (no base backup)".into(),
                        show(last.after),
                        show(last.until),
                        "take a base with `backup --oplog`".into(),
                    ],
                ));
            }
        }
        rows.sort_by_key(|r| r.0);
        for (_, r) in rows {
            t.add_row(r);
        }
    }
    t.to_string()
}

async fn show(ctx: &Ctx, from: &FromArgs, id: &str) -> Result<()> {
    let (loc, store) = open(ctx, from).await?;
    let (id, m) = load_manifest(&store, &loc, id).await?;
    if ctx.ui.json() {
        ctx.ui.result_json(&m);
        return Ok(());
    }
    let mut o = table::kv();
    o.add_row(vec!["backup".to_string(), format!("{loc}/{id}")]);
    o.add_row(vec!["started".to_string(), m.started_at.to_rfc3339()]);
    o.add_row(vec!["finished".to_string(), m.finished_at.to_rfc3339()]);
    o.add_row(vec![
        "source".to_string(),
        format!(
            "{} (MongoDB {}, {}{})",
            m.source.hosts,
            m.source.server_version,
            m.source.topology,
            m.source
                .replica_set
                .as_ref()
                .map(|r| format!(" '{r}'"))
                .unwrap_or_default()
        ),
    ]);
    o.add_row(vec![
        "compression".to_string(),
        format!("{} level {}", m.compression.name(), m.compression_level),
    ]);
    o.add_row(vec!["checksums".to_string(), m.checksum_algorithm.clone()]);
    o.add_row(vec![
        "totals".to_string(),
        format!(
            "{} namespaces, {} documents, {} raw, {} stored",
            m.totals.namespaces,
            m.totals.documents,
            table::bytes(m.totals.raw_bytes),
            table::bytes(m.totals.stored_bytes)
        ),
    ]);
    if let Some(op) = &m.oplog {
        o.add_row(vec![
            "oplog".to_string(),
            format!(
                "{} entries, {} → {}",
                op.entries,
                table::timestamp(op.start.t, op.start.i),
                table::timestamp(op.end.t, op.end.i)
            ),
        ]);
    }
    ctx.ui.result(o.to_string());
    let mut t = table::new([
        "namespace",
        "kind",
        "docs",
        "raw",
        "stored",
        "indexes",
        "sha256",
    ]);
    for n in &m.namespaces {
        t.add_row(vec![
            format!("{}.{}", n.db, n.collection),
            n.kind.clone(),
            n.documents.to_string(),
            table::bytes(n.raw_bytes),
            table::bytes(n.data.as_ref().map_or(0, |d| d.stored_bytes)),
            n.indexes.to_string(),
            n.data
                .as_ref()
                .map(|d| d.sha256[..16].to_string() + "…")
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    ctx.ui.result(t.to_string());
    Ok(())
}

#[derive(Debug, Serialize)]
struct ObjectCheck {
    key: String,
    ok: bool,
    problem: Option<String>,
}

/// Check every object of backup `id`; returns the JSON report, which is printed here
/// unless `print_json` is false and the backup is sound (the caller adds to it).
async fn verify(
    ctx: &Ctx,
    from: &FromArgs,
    id: &str,
    deep: bool,
    print_json: bool,
) -> Result<serde_json::Value> {
    let (loc, store) = open(ctx, from).await?;
    let (id, m) = load_manifest(&store, &loc, id).await?;
    let child = store.child(&id);
    let mut checks = Vec::new();
    // Expected document counts per object, for --deep.
    let mut expected_docs = std::collections::HashMap::new();
    for n in &m.namespaces {
        if let Some(d) = &n.data {
            expected_docs.insert(d.key.clone(), n.documents);
        }
    }
    if let Some(o) = &m.oplog {
        expected_docs.insert(o.object.key.clone(), o.entries);
    }
    for obj in m.objects() {
        // What an object holds is known from its role in the manifest, not guessed from its
        // name: a collection named `x.bson` has a metadata object `x.bson.metadata.json.zst`.
        let is_bson = expected_docs.contains_key(&obj.key);
        let problem = check_object(
            &child,
            obj,
            m.compression,
            deep.then(|| expected_docs.get(&obj.key).copied()).flatten(),
            deep,
            is_bson,
        )
        .await
        .err()
        .map(|e| crate::redact::scrub(&format!("{e:#}")));
        if problem.is_none() {
            ctx.ui.debug(format!("ok {}", obj.key));
        }
        checks.push(ObjectCheck {
            key: obj.key.clone(),
            ok: problem.is_none(),
            problem,
        });
    }
    let bad: Vec<&ObjectCheck> = checks.iter().filter(|c| !c.ok).collect();
    let report = serde_json::json!({
        "backup": format!("{loc}/{id}"), "backup_id": id, "deep": deep, "ok": bad.is_empty(),
        "objects": checks.len(), "problems": bad,
    });
    if ctx.ui.json() {
        if print_json || !bad.is_empty() {
            ctx.ui.result_json(&report);
        }
    } else if bad.is_empty() {
        ctx.ui.result(format!(
            "backup {id} verified{}: {} objects, sizes and sha256 checksums match the manifest{}",
            if deep { " (deep)" } else { "" },
            checks.len(),
            if deep {
                "; every BSON document walked and counts match"
            } else {
                ""
            }
        ));
    } else {
        let mut t = table::new(["object", "problem"]);
        for b in &bad {
            t.add_row(vec![b.key.clone(), b.problem.clone().unwrap_or_default()]);
        }
        ctx.ui.result(t.to_string());
    }
    if bad.is_empty() {
        Ok(report)
    } else {
        Err(check_failed(format!(
            "backup {id} failed verification: {} of {} objects are bad: {}",
            bad.len(),
            checks.len(),
            bad.iter()
                .map(|b| b.key.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

/// Scratch database names for a drill: one per backed-up database, within MongoDB's 63-byte limit.
pub fn drill_databases(id: &str, dbs: &[String]) -> Vec<(String, String)> {
    let base = format!(
        "mongoshift_restore_test_{}",
        id.to_ascii_lowercase().replace('-', "_")
    );
    dbs.iter()
        .map(|db| {
            let name = if dbs.len() == 1 {
                base.clone()
            } else {
                format!("{base}_{db}")
            };
            let mut cut = name.len().min(63);
            while !name.is_char_boundary(cut) {
                cut -= 1;
            }
            (db.clone(), name[..cut].to_string())
        })
        .collect()
}

/// Restore the backup into scratch databases with the real restore path (which checks
/// every object's checksum while streaming and every count after loading), then drop them.
async fn restore_drill(
    ctx: &Ctx,
    from: &FromArgs,
    id: &str,
    target: crate::cli::TargetArgs,
) -> Result<()> {
    let (loc, store) = open(ctx, from).await?;
    let (id, m) = load_manifest(&store, &loc, id).await?;
    let mut dbs: Vec<String> = m.namespaces.iter().map(|n| n.db.clone()).collect();
    dbs.dedup();
    let scratch = drill_databases(&id, &dbs);
    let resolved = target.resolve(&ctx.config)?;
    let client = crate::mongo::connect(&resolved, &target.connect_options()).await?;
    let args = crate::restore::run::RestoreArgs {
        from: format!("{loc}/{id}"),
        target,
        load: crate::cli::LoadArgs {
            ns_from: scratch.iter().map(|(db, _)| format!("{db}.*")).collect(),
            ns_to: scratch.iter().map(|(_, s)| format!("{s}.*")).collect(),
            drop: true,
            ..crate::cli::LoadArgs::unattended()
        },
        oplog_replay: false,
        oplog_limit: None,
        oplog_file: None,
        users_and_roles: false,
        convert_legacy_indexes: false,
        keep_index_version: false,
        fix_dotted_hash_index: false,
        preserve_uuid: false,
        to_time: None,
        stream: None,
        storage: from.storage.clone(),
    };
    ctx.ui.info(format!(
        "restore drill: restoring {id} into {}",
        scratch
            .iter()
            .map(|(_, s)| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let outcome = crate::restore::run::run(ctx, args).await;
    for (_, s) in &scratch {
        if let Err(e) = client.database(s).drop().await {
            ctx.ui
                .warn(format!("could not drop the scratch database {s}: {e}"));
        }
    }
    outcome.context(format!("restore drill of backup {id} failed"))?;
    ctx.ui.result(format!(
        "restore drill passed: backup {id} restored, every object's checksum and every collection's count matched the manifest; scratch databases dropped"
    ));
    Ok(())
}

/// Size and checksum of one object; with `deep`, also decompress and walk it.
async fn check_object(
    store: &Store,
    obj: &ObjectEntry,
    // From the manifest, not the key: a gzip oplog is named plain `oplog.bson`, as mongodump names it.
    compression: Compression,
    expected_docs: Option<u64>,
    deep: bool,
    is_bson: bool,
) -> Result<()> {
    match store.head(&obj.key).await? {
        None => anyhow::bail!("missing"),
        Some(size) if size != obj.stored_bytes => {
            anyhow::bail!(
                "size is {size} bytes, the manifest records {}",
                obj.stored_bytes
            )
        }
        Some(_) => {}
    }
    let reader = store.open_read(&obj.key).await?;
    let key = obj.key.clone();
    let (sha, decoded) =
        tokio::task::spawn_blocking(move || -> Result<(String, Result<Option<u64>>)> {
            let mut hashing = HashingReader::new(SyncIoBridge::new(reader));
            let decoded = if deep {
                decode_object(&mut hashing, compression, &key, is_bson)
            } else {
                Ok(None)
            };
            // Hash to the end even when decoding stopped early: a damaged object is reported
            // by its checksum, the cause the manifest can prove, before the decoder's symptom.
            Ok((hashing.finish()?, decoded))
        })
        .await??;
    if sha != obj.sha256 {
        let symptom = match &decoded {
            Err(e) => format!(" (decoding it fails too: {e:#})"),
            Ok(_) => String::new(),
        };
        anyhow::bail!(
            "sha256 mismatch: the object's sha256 is {sha}, the manifest records {}{symptom}",
            obj.sha256
        );
    }
    let docs = decoded?;
    if let (Some(expected), Some(found)) = (expected_docs, docs) {
        if expected != found {
            anyhow::bail!("holds {found} documents, the manifest records {expected}");
        }
    }
    Ok(())
}

/// Decompress one object and walk its BSON documents (or parse its JSON); the document count.
fn decode_object(
    stored: &mut (dyn std::io::Read + Send),
    compression: Compression,
    key: &str,
    is_bson: bool,
) -> Result<Option<u64>> {
    let mut decoded = codec::decoder(compression, stored)?;
    if is_bson {
        let stats = bson_stream::walk(&mut decoded, key, |_| Ok(()))
            .with_context(|| format!("decompressing and reading {key}"))?;
        Ok(Some(stats.docs))
    } else {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut decoded, &mut text)
            .with_context(|| format!("decompressing {key}"))?;
        serde_json::from_slice::<serde_json::Value>(&text)
            .with_context(|| format!("{key} is not valid JSON"))?;
        Ok(None)
    }
}

/// Which backups a prune removes. Pure, so the rules are unit-tested.
pub fn prune_plan(
    backups: &[Listing],
    keep_last: Option<usize>,
    older_than: Option<Duration>,
    now: DateTime<Utc>,
) -> Vec<(String, String)> {
    let newest_complete = backups
        .iter()
        .filter(|b| b.complete)
        .map(|b| b.id.clone())
        .max();
    let cutoff =
        older_than.map(|d| now - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX));
    let mut complete_seen = 0;
    let mut out = Vec::new();
    // `backups` is newest first.
    for b in backups {
        let old = match (cutoff, b.time) {
            (Some(c), Some(t)) => t < c,
            (Some(_), None) => false,
            (None, _) => true,
        };
        if b.complete {
            complete_seen += 1;
            if Some(&b.id) == newest_complete.as_ref() {
                continue;
            }
            let beyond_keep = keep_last.is_none_or(|k| complete_seen > k);
            if beyond_keep && old {
                out.push((b.id.clone(), "complete".to_string()));
            }
        } else if cutoff.is_some() && old {
            out.push((b.id.clone(), "incomplete".to_string()));
        }
    }
    out
}

async fn prune(
    ctx: &Ctx,
    from: &FromArgs,
    keep_last: Option<usize>,
    older_than: Option<Duration>,
    pitr_days: Option<u32>,
    dry_run: bool,
    yes: bool,
) -> Result<()> {
    if keep_last.is_none() && older_than.is_none() {
        return Err(usage(
            "say what to prune: --keep-last N (keep the N newest complete backups), \
             --older-than DURATION (e.g. 30d), --pitr-days N, or several",
        ));
    }
    if keep_last == Some(0) {
        return Err(usage(
            "--keep-last must be at least 1 (the newest complete backup is always kept)",
        ));
    }
    let (loc, store) = open(ctx, from).await?;
    let backups = scan(&store).await?;
    let mut plan = prune_plan(&backups, keep_last, older_than, Utc::now());
    // Continuous backups: bases that keep the last --pitr-days restorable stay, and only
    // slices that no kept base needs go.
    let chains = crate::pitr::chain::load(&store).await?;
    if let Some(days) = pitr_days {
        let protected: Vec<String> = chains
            .iter()
            .flat_map(|c| crate::pitr::retention::protected_bases(c, days, Utc::now()))
            .collect();
        plan.retain(|(id, _)| !protected.contains(id));
    }
    for c in &chains {
        let kept: Vec<String> = c
            .bases
            .iter()
            .filter(|b| !plan.iter().any(|(id, _)| *id == b.id))
            .map(|b| b.id.clone())
            .collect();
        for dir in crate::pitr::retention::prunable_slices(c, &kept) {
            plan.push((dir, "slice no kept base needs".to_string()));
        }
    }
    if plan.is_empty() {
        // The same shape as a prune that deleted something, with an empty list.
        if ctx.ui.json() {
            let key = if dry_run { "would_delete" } else { "deleted" };
            ctx.ui
                .result_json(&serde_json::json!({ "dry_run": dry_run, key: plan }));
        } else {
            ctx.ui.result(format!("nothing to prune at {loc}"));
        }
        return Ok(());
    }
    let mut t = table::new(["delete", "state"]);
    for (id, state) in &plan {
        t.add_row(vec![id.clone(), state.clone()]);
    }
    if !ctx.ui.json() {
        ctx.ui.result(t.to_string());
    }
    if dry_run {
        if ctx.ui.json() {
            ctx.ui
                .result_json(&serde_json::json!({ "dry_run": true, "would_delete": plan }));
        } else {
            ctx.ui.result(format!(
                "dry run: {} backups or slices would be deleted from {loc}",
                plan.len()
            ));
        }
        return Ok(());
    }
    if !yes {
        crate::report::confirm::ask(
            &ctx.ui,
            &format!("delete these {} backups or slices from {loc}?", plan.len()),
        )?;
    }
    for (id, _) in &plan {
        store
            .delete_prefix(id)
            .await
            .with_context(|| format!("deleting backup {id} from {loc}"))?;
        ctx.ui.info(format!("deleted {id}"));
    }
    if ctx.ui.json() {
        ctx.ui
            .result_json(&serde_json::json!({ "dry_run": false, "deleted": plan }));
    } else {
        ctx.ui.result(format!(
            "deleted {} backups or slices from {loc}",
            plan.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(id: &str, complete: bool) -> Listing {
        Listing {
            id: id.into(),
            time: manifest::id_time(id),
            complete,
            databases: vec![],
            documents: None,
            stored_bytes: 0,
            compression: None,
            oplog: false,
            manifest: None,
        }
    }

    fn now() -> DateTime<Utc> {
        manifest::id_time("20261122T000000Z").unwrap()
    }

    #[test]
    fn drill_names_fit_mongodb_limits() {
        let one = drill_databases("20261122T041000Z-pre", &["predixi".into()]);
        assert_eq!(one[0].1, "mongoshift_restore_test_20261122t041000z_pre");
        let many = drill_databases("20261122T041000Z", &["a".into(), "b".repeat(80)]);
        assert!(many.iter().all(|(_, n)| n.len() <= 63));
        assert_eq!(many[0].1, "mongoshift_restore_test_20261122t041000z_a");
    }

    #[test]
    fn keep_last_never_touches_incomplete_or_newest() {
        let b = vec![
            listing("20261121T000000Z", false),
            listing("20261120T000000Z", true),
            listing("20261119T000000Z", true),
            listing("20261118T000000Z", true),
        ];
        let ids: Vec<String> = prune_plan(&b, Some(2), None, now())
            .into_iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(ids, vec!["20261118T000000Z"]);
    }

    #[test]
    fn older_than_deletes_old_incomplete_but_keeps_newest_complete() {
        let b = vec![
            listing("20261121T000000Z", false),
            listing("20261101T000000Z", false),
            listing("20261001T000000Z", true),
            listing("20260901T000000Z", true),
        ];
        let ids: Vec<String> = prune_plan(&b, None, Some(Duration::from_secs(7 * 86400)), now())
            .into_iter()
            .map(|p| p.0)
            .collect();
        // The newest complete backup survives even though it is old; the fresh incomplete one too.
        assert_eq!(ids, vec!["20261101T000000Z", "20260901T000000Z"]);
    }
}
