//! The live tail behind `migrate --follow`: a cluster-wide change stream on the source
//! (expanded events for DDL, `updateLookup` for updates), opened at a position noted before
//! the copy began, applied to the target batch by batch (each document's changes in the
//! source's order, independent documents in parallel lanes, DDL and transactions as
//! barriers), with the position written to the run record only after every event of its
//! batch is applied in every lane, so that `--resume` continues exactly there (re-applying
//! at most one batch of idempotent writes, never skipping one). A position the source's oplog no longer holds stops the tail with the
//! reason; it never continues with a hole.

pub mod apply;
pub mod control;
pub mod event;
pub mod lag;
pub mod lanes;
pub mod record;
pub mod system_js;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use mongodb::bson::{doc, Bson, Document, RawDocumentBuf, Timestamp};
use mongodb::change_stream::event::ResumeToken;
use mongodb::options::FullDocumentType;
use mongodb::Client;

use crate::exit::usage;
use crate::report::Ui;
use apply::{Applier, Selection};
use lag::LagStats;
use record::{Phase, Record};

/// Events applied in one batch at most: a batch is split into lanes and waves (see
/// `lanes`), so a larger one costs few more round trips; the position is checkpointed
/// after each.
const BATCH_EVENTS: usize = 4000;
/// Document bytes in one batch at most (bounded memory whatever the documents' size).
const BATCH_BYTES: usize = 64 << 20;
/// How long the server holds an empty getMore (the tail's idle heartbeat).
const AWAIT: Duration = Duration::from_millis(500);
/// What a copy is assumed to move per second when judging the oplog window: about half of
/// what we measured on 2 cores, so that the warning errs on the safe side.
const ASSUMED_COPY_BYTES_PER_SEC: u64 = 10 << 20;

/// `--follow` needs an oplog: a standalone has none.
pub async fn require_replica_set(source: &Client, label: &str) -> Result<()> {
    if crate::mongo::oplog::has_oplog(source)
        .await
        .context("the source")?
    {
        return Ok(());
    }
    Err(usage(format!(
        "--follow needs the source's oplog, and {label} is a standalone server, which has none. \
         Restart it as a single-node replica set (add `--replSet rs0` to mongod, or `replication.replSetName: rs0` \
         to its config file, then run `rs.initiate()` once; applications keep working with ?directConnection=true \
         or replicaSet=rs0 in their URI), or copy it without --follow while writes are stopped"
    )))
}

/// The change stream's pipeline: only the followed databases, never the system ones.
fn pipeline(sel: &Selection) -> Vec<Document> {
    let db_match = if sel.dbs.is_empty() {
        doc! { "$nin": apply::SKIPPED_DBS.to_vec() }
    } else {
        doc! { "$in": sel.dbs.clone() }
    };
    vec![doc! { "$match": { "ns.db": db_match } }]
}

/// A document larger than this is left out of its event and looked up by the tail: the
/// event around it (resume token, namespace, key) would pass the 16 MB a change stream can
/// return, which on 6.0 (no `$changeStreamSplitLargeEvent`) kills the stream for good.
const EVENT_DOC_LIMIT: i64 = 15 * 1024 * 1024;

/// The tail's pipeline: the followed databases; no update description (the tail writes the
/// document as the source holds it, so the description is never read, and a `$set` of a
/// large field would double the event's size); a document too large to travel left out.
fn tail_pipeline(sel: &Selection) -> Vec<Document> {
    let mut p = pipeline(sel);
    p.push(doc! { "$unset": ["updateDescription"] });
    p.push(doc! { "$set": { "fullDocument": { "$cond": [
        { "$gt": [ { "$bsonSize": "$fullDocument" }, EVENT_DOC_LIMIT ] },
        "$$REMOVE",
        "$fullDocument"
    ] } } });
    p
}

/// Note the source's current position before anything is copied: every change after it
/// will reach the tail.
pub async fn position_now(source: &Client, sel: &Selection) -> Result<Bson> {
    let mut stream = source
        .watch()
        .pipeline(pipeline(sel))
        .show_expanded_events(true)
        .await
        .map_err(|e| stream_error(e, None))?;
    // The opening reply carries the position almost always; now and then (seen once in
    // CI) it comes without one, and a getMore brings it. An event read here happened
    // before anything is listed or copied, so the copy holds its effect.
    for _ in 0..10 {
        if let Some(token) = stream.resume_token() {
            return mongodb::bson::to_bson(&token).context("encoding the change stream position");
        }
        stream
            .next_if_any()
            .await
            .map_err(|e| stream_error(e, None))?;
    }
    anyhow::bail!("the source returned no change stream position (tried 10 times)")
}

/// Warn when the copy may outlast the source's oplog: the tail could then not resume from
/// the position noted before the copy. `max_rate`: the copy's `--max-rate`, when slower
/// than the speed assumed.
pub async fn check_oplog_window(ui: &Ui, source: &Client, copy_bytes: u64, max_rate: Option<u64>) {
    let window = async {
        let (old, new) = (
            crate::mongo::oplog::oldest(source).await?,
            crate::mongo::oplog::latest(source).await?,
        );
        anyhow::Ok(u64::from(new.time.saturating_sub(old.time)))
    }
    .await;
    let speed = max_rate.map_or(ASSUMED_COPY_BYTES_PER_SEC, |r| {
        r.clamp(1, ASSUMED_COPY_BYTES_PER_SEC)
    });
    let estimate = copy_bytes / speed;
    match window {
        Ok(w) if w < estimate.saturating_mul(2) => ui.warn(format!(
            "the source's oplog spans only {} while the copy may take about {}: if the copy outlasts it, \
             the changes made meanwhile are gone and --follow must start over. Grow the oplog first \
             (db.adminCommand({{replSetResizeOplog: 1, size: MB}})) or copy at a quieter time",
            human_secs(w),
            human_secs(estimate)
        )),
        Ok(w) => ui.debug(format!(
            "oplog window {}; copy estimated at {}",
            human_secs(w),
            human_secs(estimate)
        )),
        Err(e) => ui.warn(format!(
            "could not read the source's oplog window ({e:#}); make sure it spans the copy with room to spare"
        )),
    }
}

pub fn human_secs(s: u64) -> String {
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{:.1} h", s as f64 / 3600.0),
    }
}

/// Change stream errors in words: a lost position says why and what to do.
fn stream_error(e: mongodb::error::Error, position_secs: Option<u32>) -> anyhow::Error {
    let code = crate::mongo::errors::code(&e);
    if matches!(code, Some(286 | 280 | 136)) {
        return history_lost(position_secs).context(crate::mongo::errors::describe(&e));
    }
    anyhow::Error::new(e).context("following the source's change stream")
}

/// Whether a position is older than what the oplog still holds (`history_start`: its
/// oldest entry once it has dropped any; None while it holds everything since initiation).
pub fn position_lost(at: Timestamp, history_start: Option<Timestamp>) -> bool {
    history_start.is_some_and(|o| (at.time, at.increment) < (o.time, o.increment))
}

fn history_lost(position_secs: Option<u32>) -> anyhow::Error {
    let when = position_secs
        .map(|s| {
            format!(
                " ({} ago)",
                human_secs(now_secs().saturating_sub(u64::from(s)))
            )
        })
        .unwrap_or_default();
    anyhow!(
        "the source's oplog no longer holds the tail's position{when}: the changes made since then are gone from it, \
         so following on would leave a hole in the target. A fresh copy is needed: run migrate again with --drop --follow \
         (and grow the source's oplog, or keep the tail running, so that its window covers the copy)"
    )
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Why a tail ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Ctrl-C or SIGTERM.
    Signal(&'static str),
    /// `migrate stop` asked through the run record.
    StopRequested,
}

pub struct Tail {
    pub source: Client,
    pub applier: Applier,
    pub record: Record,
    pub ui: Ui,
}

impl Tail {
    /// Follow from `token` until stopped; the run record holds the position throughout.
    pub async fn run(&self, token: Bson) -> Result<(Ended, LagStats)> {
        let stop: Arc<std::sync::Mutex<Option<&'static str>>> = Arc::default();
        let watcher = {
            let stop = stop.clone();
            tokio::spawn(async move {
                let sig = crate::signals::interrupted().await;
                *stop.lock().unwrap_or_else(|p| p.into_inner()) = Some(sig);
            })
        };
        let result = self.follow(token, &stop).await;
        watcher.abort();
        result
    }

    async fn follow(
        &self,
        token: Bson,
        stop: &std::sync::Mutex<Option<&'static str>>,
    ) -> Result<(Ended, LagStats)> {
        let position = event::token_time(&token).map(|t| t.time);
        // Our own check first (the server's, code 286, is the backstop): a position older
        // than the oplog's oldest entry has lost the changes in between.
        if let (Some(at), Ok(Some(oldest))) = (
            event::token_time(&token),
            crate::mongo::oplog::history_starts(&self.source).await,
        ) {
            if position_lost(at, Some(oldest)) {
                return Err(history_lost(Some(at.time)).context(format!(
                    "the tail's position is {} but the source's oplog now begins at {}",
                    crate::migration::position_text(at.time),
                    crate::migration::position_text(oldest.time)
                )));
            }
        }
        let start: ResumeToken = mongodb::bson::from_bson(token)
            .context("the recorded position is not a resume token")?;
        let pipeline = tail_pipeline(&self.applier.selection);
        let stream = open_stream(&self.source, pipeline.clone(), start)
            .await
            .map_err(|e| stream_error(e, position))?;
        // Reading runs ahead of applying (bounded), so the next events arrive while the
        // last batch is written.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Read>>(QUEUED_EVENTS);
        let reader = tokio::spawn(read(self.source.clone(), pipeline, stream, tx, position));
        let mut last_js = Instant::now();
        let result = async {
            let mut stats = LagStats::default();
            let mut line = StatusLine::new(&self.ui);
            let mut last_percentiles = Instant::now();
            let (mut p50, mut p99) = (0, 0);
            let mut told_caught_up = false;
            loop {
                let signalled = *stop.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(sig) = signalled {
                    self.sync_system_js().await?;
                    line.finish();
                    return Ok((Ended::Signal(sig), stats));
                }
                if last_js.elapsed() >= SYSTEM_JS_EVERY {
                    self.sync_system_js().await?;
                    last_js = Instant::now();
                }
                // Wait for something (at most a heartbeat), then take what is queued.
                let mut batch = Vec::new();
                let mut batch_bytes = 0usize;
                let mut token = None;
                let mut idle = false;
                let mut behind = 0u32;
                let first = tokio::time::timeout(HEARTBEAT, rx.recv()).await;
                let mut next = match first {
                    Ok(Some(r)) => Some(r),
                    Ok(None) => anyhow::bail!("the change stream reader stopped"),
                    Err(_) => None,
                };
                while let Some(r) = next.take() {
                    match r? {
                        Read::Event(ev, t) => {
                            batch_bytes += ev.op.doc_bytes();
                            batch.push(*ev);
                            token = Some(t);
                        }
                        Read::Idle(t, b) => {
                            // Without `hello`'s answer, an empty batch is taken at its word.
                            behind = b.unwrap_or(0);
                            idle = true;
                            if t.is_some() {
                                token = t;
                            }
                        }
                    }
                    if batch.len() < BATCH_EVENTS && batch_bytes < BATCH_BYTES {
                        next = rx.try_recv().ok();
                    }
                }
                // The record says "caught up" until its next update, which comes after this
                // batch is applied: a long batch (DDL barriers, a slow target) would leave it
                // claiming so while changes wait. Say otherwise first, once per busy spell.
                if told_caught_up && !batch.is_empty() {
                    self.record.update(doc! { "tail.caught_up": false }).await?;
                }
                let applied = self.applier.apply(&batch).await?;
                let skipped = std::mem::take(
                    &mut *self
                        .applier
                        .skipped
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()),
                );
                for s in skipped {
                    self.ui.warn(format!(
                        "left out the change of {} _id {} made on the source at {}:{}, as asked with --skip-change (kept in the run record)",
                        s.ns,
                        s.id.describe(),
                        s.time.time,
                        s.time.increment
                    ));
                    self.record.push_skipped(&s.to_ref()).await?;
                }
                let now = record::now_ms();
                for ev in &batch {
                    if let Some(w) = ev.wall_ms {
                        stats.record(now - w);
                    }
                }
                stats.count(applied);
                let caught_up = idle && behind == 0 && rx.is_empty();
                told_caught_up = caught_up;
                let lag_ms = if caught_up {
                    0
                } else if idle {
                    i64::from(behind) * 1000
                } else {
                    batch
                        .last()
                        .and_then(|e| e.wall_ms)
                        .map(|w| now - w)
                        .unwrap_or(0)
                };
                if last_percentiles.elapsed() >= Duration::from_secs(2) {
                    p50 = stats.percentile(50.0);
                    p99 = stats.percentile(99.0);
                    last_percentiles = Instant::now();
                }
                let mut fields = doc! {
                    "heartbeat_ms": now,
                    "tail.events": stats.events as i64,
                    "tail.events_per_sec": stats.events_per_sec,
                    "tail.lag_ms": lag_ms,
                    "tail.lag_p50_ms": p50,
                    "tail.lag_p99_ms": p99,
                    "tail.caught_up": caught_up,
                };
                if let Some(t) = token {
                    if let Some(ts) = event::token_time(&t) {
                        fields.insert("position_secs", i64::from(ts.time));
                    }
                    fields.insert("token", t);
                }
                // The position is written only after its batch was applied.
                let stop_requested = self.record.update(fields).await?;
                line.show(&stats, lag_ms, caught_up);
                if stop_requested {
                    self.sync_system_js().await?;
                    line.finish();
                    return Ok((Ended::StopRequested, stats));
                }
            }
        }
        .await;
        reader.abort();
        result
    }
}

impl Tail {
    async fn sync_system_js(&self) -> Result<()> {
        system_js::sync(&self.source, &self.applier.target, &self.applier.selection)
            .await
            .context("keeping system.js (stored functions) in sync")?;
        Ok(())
    }
}

/// How often the tail compares `system.js`, which change streams do not report.
const SYSTEM_JS_EVERY: Duration = Duration::from_secs(5);

/// What the reader hands the applier: an event with the position just after it, or
/// word that the source had nothing more (with the stream's latest position).
enum Read {
    Event(Box<event::Event>, Bson),
    /// An empty batch: the stream's position, and how far it is behind the source's
    /// majority-committed writes (an empty batch can also mean the server is still
    /// scanning old oplog, so empty alone is not "caught up").
    Idle(Option<Bson>, Option<u32>),
}

/// Events queued between reading and applying, at most (bounded memory).
const QUEUED_EVENTS: usize = 2 * BATCH_EVENTS;
/// How often an idle tail writes its heartbeat and looks for a stop request.
const HEARTBEAT: Duration = Duration::from_millis(700);

/// The tail's change stream from `start` (exclusive).
async fn open_stream(
    source: &Client,
    pipeline: Vec<Document>,
    start: ResumeToken,
) -> mongodb::error::Result<mongodb::change_stream::ChangeStream<RawDocumentBuf>> {
    Ok(source
        .watch()
        .pipeline(pipeline)
        .show_expanded_events(true)
        .full_document(FullDocumentType::UpdateLookup)
        .start_after(start)
        .max_await_time(AWAIT)
        .await?
        .with_type::<RawDocumentBuf>())
}

/// Reopenings in a row after a getMore killed by a rename or drop (each one moves on).
const REOPENS: u32 = 20;

async fn read(
    source: Client,
    pipeline: Vec<Document>,
    mut stream: mongodb::change_stream::ChangeStream<RawDocumentBuf>,
    tx: tokio::sync::mpsc::Sender<Result<Read>>,
    position: Option<u32>,
) {
    let mut reopens = 0;
    loop {
        let next = stream.next_if_any().await;
        // A getMore whose update lookup met a collection renamed or dropped under it is
        // killed (QueryPlanKilled, 175) and the driver does not resume it: open the
        // stream again after the last event handed out. The lookups are redone, past the
        // rename now, and `resolve` finds a renamed collection's documents by its UUID.
        if let Err(e) = &next {
            if crate::mongo::errors::code(e) == Some(175) && reopens < REOPENS {
                if let Some(token) = stream.resume_token() {
                    match open_stream(&source, pipeline.clone(), token).await {
                        Ok(s) => {
                            stream = s;
                            reopens += 1;
                            continue;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(stream_error(e, position))).await;
                            return;
                        }
                    }
                }
            }
        }
        if matches!(next, Ok(Some(_))) {
            reopens = 0;
        }
        let msg = match next {
            Ok(Some(ev)) => {
                // The driver moves its position to each event it hands out.
                let token = stream
                    .resume_token()
                    .and_then(|t| mongodb::bson::to_bson(&t).ok())
                    .unwrap_or(Bson::Null);
                let parsed = match event::parse(&ev) {
                    Ok(e) => resolve(&source, e).await,
                    Err(e) => Err(e),
                };
                parsed
                    .with_context(|| {
                        format!(
                            "reading a change of the source ({})",
                            ev.get_str("operationType").unwrap_or("?")
                        )
                    })
                    .map(|e| Read::Event(Box::new(e), token))
            }
            Ok(None) => {
                let token = stream
                    .resume_token()
                    .and_then(|t| mongodb::bson::to_bson(&t).ok());
                let behind = match (
                    token.as_ref().and_then(event::token_time),
                    crate::mongo::oplog::majority_time(&source).await.ok(),
                ) {
                    // Seconds behind, at least 1 while behind at all.
                    (Some(at), Some(m)) if (at.time, at.increment) < (m.time, m.increment) => {
                        Some((m.time - at.time).max(1))
                    }
                    (Some(_), Some(_)) => Some(0),
                    _ => None,
                };
                Ok(Read::Idle(token, behind))
            }
            Err(e) => Err(stream_error(e, position)),
        };
        let failed = msg.is_err();
        if tx.send(msg).await.is_err() || failed {
            return;
        }
    }
}

/// A change whose document did not travel in its event: read the document as the source
/// holds it now (as updateLookup would have), or learn that it is gone.
async fn resolve(source: &Client, mut ev: event::Event) -> Result<event::Event> {
    if let event::Op::Gone {
        ns,
        id,
        uuid: Some(uuid),
    } = &ev.op
    {
        // The lookup came after the collection was renamed (its name may even belong to
        // a new collection by now): read the document where its collection is now.
        if let Some(now) = renamed_to(source, ns, uuid).await? {
            if let Some(doc) = crate::mongo::raw_read::by_id(source, &now, &id.filter())
                .await
                .with_context(|| {
                    format!(
                        "looking up {now} _id {} on the source (the update's collection {ns} was renamed to it before the change stream read the document)",
                        id.describe()
                    )
                })?
            {
                ev.op = event::Op::Upsert {
                    ns: ns.clone(),
                    id: id.clone(),
                    doc,
                };
            }
        }
        return Ok(ev);
    }
    if let event::Op::Lookup { ns, id } = &ev.op {
        let doc = crate::mongo::raw_read::by_id(source, ns, &id.filter())
            .await
            .with_context(|| {
                format!(
                    "looking up {ns} _id {} on the source (its change was too large to travel in the event)",
                    id.describe()
                )
            })?;
        ev.op = match doc {
            Some(doc) => event::Op::Upsert {
                ns: ns.clone(),
                id: id.clone(),
                doc,
            },
            None => event::Op::Gone {
                ns: ns.clone(),
                id: id.clone(),
                uuid: None,
            },
        };
    }
    Ok(ev)
}

/// The name the collection with this UUID has now in `ns`'s database, when it is no
/// longer `ns` (renamed); None when it is still `ns` or is gone.
async fn renamed_to(
    source: &Client,
    ns: &crate::namespace::Namespace,
    uuid: &mongodb::bson::Binary,
) -> Result<Option<crate::namespace::Namespace>> {
    let names = source
        .database(&ns.db)
        .list_collection_names()
        .filter(doc! { "info.uuid": uuid.clone() })
        .await
        .with_context(|| format!("finding the collection of {ns} by its UUID on the source"))?;
    Ok(names
        .into_iter()
        .next()
        .filter(|n| *n != ns.coll)
        .map(|n| crate::namespace::Namespace::new(&ns.db, &n)))
}

/// Marks a run as stopped or failed in its record, for `migrate status`.
pub async fn mark(record: &Record, phase: Phase, error: Option<String>) {
    let mut fields =
        doc! { "phase": phase.as_str(), "heartbeat_ms": record::now_ms(), "stop_requested": false };
    if let Some(e) = error {
        fields.insert("last_error", crate::redact::scrub(&e));
    }
    let _ = record.update(fields).await;
}

/// The tail's status line: redrawn in place on a terminal, a plain line every 10 s off one.
struct StatusLine {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
    last: Instant,
}

impl StatusLine {
    fn new(ui: &Ui) -> StatusLine {
        let bar = ui.progress_bars.then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.enable_steady_tick(Duration::from_millis(250));
            b
        });
        StatusLine {
            bar,
            quiet: ui.quiet,
            last: Instant::now(),
        }
    }

    fn show(&mut self, stats: &LagStats, lag_ms: i64, idle: bool) {
        let text = format!(
            "following: {} events applied, {:.0} events/s, lag {:.1} s{}",
            stats.events,
            stats.events_per_sec,
            lag_ms as f64 / 1000.0,
            if idle { " (caught up)" } else { "" }
        );
        if let Some(b) = &self.bar {
            b.set_message(text);
        } else if !self.quiet && self.last.elapsed() >= Duration::from_secs(10) {
            eprintln!("{text}");
            self.last = Instant::now();
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_positions() {
        let t = |time, increment| Timestamp { time, increment };
        assert!(
            !position_lost(t(10, 1), None),
            "a complete oplog holds any position"
        );
        assert!(position_lost(t(10, 1), Some(t(10, 2))));
        assert!(!position_lost(t(10, 2), Some(t(10, 2))));
        assert!(!position_lost(t(11, 0), Some(t(10, 2))));
        let e = format!("{:#}", history_lost(Some(1)));
        assert!(
            e.contains("fresh copy") && e.contains("--drop --follow"),
            "{e}"
        );
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(human_secs(59), "59 s");
        assert_eq!(human_secs(600), "10 min");
        assert_eq!(human_secs(36_000), "10.0 h");
    }
}
