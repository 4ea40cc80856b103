//! The record of one migration run, kept in the target next to its resume state
//! (`mongoshift.migrations`, `_id` "<run>|run"): the phase, the tail's position (written
//! after every applied batch), the process that runs it and its log, copy progress per
//! namespace, tail counters and lag, the last error, and the stop request that
//! `migrate stop` leaves for the tail. `migrate status` reads it from anywhere.

use anyhow::{Context, Result};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::Client;
use serde::{Deserialize, Serialize};

use crate::load::state::{DB, MIGRATE};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Copying,
    Following,
    Stopped,
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Copying => "copying",
            Phase::Following => "following",
            Phase::Stopped => "stopped",
            Phase::Failed => "failed",
        }
    }
}

/// Copy progress of one namespace.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NsProgress {
    pub ns: String,
    pub copied: u64,
    pub total: u64,
    pub docs_per_sec: f64,
}

/// The tail's counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TailStats {
    pub events: u64,
    pub events_per_sec: f64,
    pub lag_ms: i64,
    pub lag_p50_ms: i64,
    pub lag_p99_ms: i64,
    pub caught_up: bool,
}

/// The whole record, as stored and as `migrate status --output json` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// Which run (the source's hosts, no credentials).
    pub run: String,
    pub from: String,
    pub to: String,
    pub phase: Phase,
    pub follow: bool,
    /// The databases chosen with --db (empty: all).
    #[serde(default)]
    pub dbs: Vec<String>,
    /// The copy finished and was checked; a resumed --follow goes straight to the tail.
    #[serde(default)]
    pub copied: bool,
    /// The tail's resume token (the source's change stream position).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Bson>,
    /// The position as seconds since the epoch (the token's cluster time).
    #[serde(default)]
    pub position_secs: u32,
    #[serde(default)]
    pub pid: Option<u32>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub log: Option<String>,
    pub started_ms: i64,
    pub heartbeat_ms: i64,
    #[serde(default)]
    pub copy: Vec<NsProgress>,
    #[serde(default)]
    pub tail: TailStats,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub stop_requested: bool,
    /// The change the target refused, where the tail stopped (for `--skip-change`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_change: Option<ChangeRef>,
    /// Changes left out on purpose with `--skip-change`: the recorded decisions.
    #[serde(default)]
    pub skipped_changes: Vec<ChangeRef>,
}

/// One change of the source, as a run record names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRef {
    /// The source's cluster time of the change, seconds and increment.
    pub t: u32,
    pub i: u32,
    pub ns: String,
    /// The `_id` for people (extended JSON, or hex for one that does not decode).
    pub id: String,
    /// `{_id: <value>}` as hex BSON: the exact `_id`, whatever its type or bytes.
    pub id_bson: String,
    #[serde(default)]
    pub reason: String,
}

impl Run {
    /// A new run owned by this process, positioned at `token` (if any), nothing copied yet.
    pub fn start(
        run: String,
        from: String,
        to: String,
        dbs: &[String],
        token: Option<Bson>,
    ) -> Run {
        let now = now_ms();
        Run {
            run,
            from,
            to,
            phase: Phase::Copying,
            follow: false,
            dbs: dbs.to_vec(),
            copied: false,
            position_secs: token
                .as_ref()
                .and_then(super::event::token_time)
                .map(|t| t.time)
                .unwrap_or(0),
            token,
            pid: Some(std::process::id()),
            host: Some(hostname()),
            log: None,
            started_ms: now,
            heartbeat_ms: now,
            copy: vec![],
            tail: Default::default(),
            last_error: None,
            stop_requested: false,
            failed_change: None,
            skipped_changes: Vec::new(),
        }
    }
}

pub fn now_ms() -> i64 {
    mongodb::bson::DateTime::now().timestamp_millis()
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

fn coll(client: &Client) -> mongodb::Collection<Document> {
    client.database(DB).collection(MIGRATE)
}

fn id(run: &str) -> String {
    format!("{run}|run")
}

/// One run's record in one target.
#[derive(Clone)]
pub struct Record {
    coll: mongodb::Collection<Document>,
    run: String,
}

impl Record {
    pub fn new(target: &Client, run: &str) -> Record {
        Record {
            coll: coll(target),
            run: run.to_string(),
        }
    }

    pub async fn get(&self) -> Result<Option<Run>> {
        let d = self
            .coll
            .find_one(doc! { "_id": id(&self.run) })
            .await
            .with_context(|| format!("reading the migration record in {DB}.{MIGRATE}"))?;
        d.map(decode).transpose()
    }

    pub async fn put(&self, run: &Run) -> Result<()> {
        let mut d = mongodb::bson::to_document(run).context("encoding the migration record")?;
        // The resume state's loader skips documents without `state`; `source` ties the
        // record to the run so that `StateStore::clear` removes it with the rest.
        d.insert("source", &self.run);
        self.coll
            .replace_one(doc! { "_id": id(&self.run) }, d)
            .upsert(true)
            .await
            .with_context(|| format!("writing the migration record in {DB}.{MIGRATE}"))?;
        Ok(())
    }

    /// Set some fields; returns whether a stop was requested.
    pub async fn update(&self, fields: Document) -> Result<bool> {
        let after = self
            .coll
            .find_one_and_update(doc! { "_id": id(&self.run) }, doc! { "$set": fields })
            .return_document(mongodb::options::ReturnDocument::After)
            .projection(doc! { "stop_requested": 1 })
            .await
            .with_context(|| format!("writing the migration record in {DB}.{MIGRATE}"))?;
        Ok(after
            .and_then(|d| d.get_bool("stop_requested").ok())
            .unwrap_or(false))
    }
}

impl Record {
    /// Append a left-out change to the run's recorded decisions.
    pub async fn push_skipped(&self, c: &ChangeRef) -> Result<()> {
        self.coll
            .update_one(
                doc! { "_id": id(&self.run) },
                doc! { "$push": { "skipped_changes": mongodb::bson::to_bson(c)? } },
            )
            .await
            .with_context(|| format!("writing the migration record in {DB}.{MIGRATE}"))?;
        Ok(())
    }
}

fn decode(mut d: Document) -> Result<Run> {
    d.remove("_id");
    d.remove("source");
    mongodb::bson::from_document(d).context("reading the migration record: unexpected shape")
}

/// Every run recorded in a target (for `migrate status` and `migrate stop`).
pub async fn all(target: &Client) -> Result<Vec<Run>> {
    let docs: Vec<Document> = coll(target)
        .find(doc! { "_id": { "$regex": "\\|run$" } })
        .await
        .with_context(|| format!("reading {DB}.{MIGRATE} on the target"))?
        .try_collect()
        .await
        .with_context(|| format!("reading {DB}.{MIGRATE} on the target"))?;
    docs.into_iter().map(decode).collect()
}

/// Whether the process that runs this record is alive: by pid when it runs on this host,
/// else by a heartbeat younger than 15 s.
pub fn alive(run: &Run) -> bool {
    if run.phase != Phase::Following && run.phase != Phase::Copying {
        return false;
    }
    match (run.pid, &run.host) {
        (Some(pid), Some(h)) if *h == hostname() => pid_alive(pid),
        _ => now_ms() - run.heartbeat_ms < 15_000,
    }
}

pub fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
}
