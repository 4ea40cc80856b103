//! Writing raw documents: unordered `insert` commands from a bounded queue, several
//! workers per collection (one for a capped collection, whose order is its content),
//! duplicate-key rejections counted.
//!
//! The command is ours rather than the driver's insertMany so that it can carry
//! `bypassEmptyTsReplacement`: without it the server replaces every top-level
//! `Timestamp(0, 0)` with the current time on insert, changing the document the source
//! holds (mongorestore sets it too). The documents go in as the bytes the source sent.

use std::sync::Arc;

use anyhow::{Context, Result};
use mongodb::bson::{Bson, Document, RawDocumentBuf};
use mongodb::{Client, Database};
use tokio::sync::{mpsc, Mutex};

use crate::namespace::Namespace;
use crate::report::progress::TaskProgress;

/// Insert batch size. Several loads run at once (collections, ranges), each with a few
/// batches queued and in flight, so this sets peak memory: on 1 GB, 4 MB batches restored
/// at the same speed as 16 MB ones with 207 MB instead of 490 MB peak RSS. Well under the
/// 48 MB message limit and maxWriteBatchSize (100,000).
pub const BATCH_BYTES: usize = 4 << 20;
pub const BATCH_DOCS: usize = 50_000;
pub const DUPLICATE_KEY: i32 = 11000;
/// The documents one command carries at most: the server takes a command body of up to
/// 16 MiB + 16 KiB, so this leaves room for the command's own fields. A single document
/// of up to the 16 MiB maximum always goes alone.
pub const MAX_COMMAND_DOCS: usize = 16 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct Batch {
    pub docs: Vec<RawDocumentBuf>,
    pub bytes: usize,
}

impl Batch {
    pub fn push(&mut self, doc: RawDocumentBuf) {
        self.bytes += doc.as_bytes().len();
        self.docs.push(doc);
    }
    pub fn full(&self) -> bool {
        self.bytes >= BATCH_BYTES || self.docs.len() >= BATCH_DOCS
    }
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct InsertStats {
    pub inserted: u64,
    pub duplicates: u64,
}

/// Drain `rx` into `ns` with `workers` concurrent inserters. Documents bypass
/// validation, as mongorestore's do: they were valid when they were written.
pub async fn insert_all(
    client: &Client,
    ns: &Namespace,
    rx: mpsc::Receiver<Batch>,
    workers: usize,
    allow_duplicates: bool,
    progress: TaskProgress,
) -> Result<InsertStats> {
    let rx = Arc::new(Mutex::new(rx));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let (rx, client, ns, progress) = (rx.clone(), client.clone(), ns.clone(), progress.clone());
        tasks.spawn(async move {
            let db = client.database(&ns.db);
            let mut stats = InsertStats::default();
            loop {
                let batch = { rx.lock().await.recv().await };
                let Some(batch) = batch else { break };
                let (n, bytes) = (batch.docs.len() as u64, batch.bytes as u64);
                let outcome = insert_raw(&db, &ns.coll, &batch.docs)
                    .await
                    .with_context(|| format!("inserting into {ns}"))?;
                let dups = outcome
                    .errors
                    .iter()
                    .filter(|e| e.code == DUPLICATE_KEY)
                    .count() as u64;
                if outcome.errors.is_empty() {
                    stats.inserted += n;
                } else if allow_duplicates && dups == outcome.errors.len() as u64 {
                    stats.duplicates += dups;
                    stats.inserted += n - dups;
                } else {
                    return Err(anyhow::anyhow!(
                        "inserting into {ns}: {}",
                        outcome.summary()
                    ));
                }
                progress.add(n, bytes);
            }
            anyhow::Ok(stats)
        });
    }
    let mut total = InsertStats::default();
    while let Some(r) = tasks.join_next().await {
        let s = r.context("insert worker panicked")??;
        total.inserted += s.inserted;
        total.duplicates += s.duplicates;
    }
    Ok(total)
}

/// One document the server refused.
#[derive(Debug, Clone)]
pub struct WriteError {
    pub index: usize,
    pub code: i32,
    pub message: String,
}

/// What the server said to a batch of inserts.
#[derive(Debug, Default)]
pub struct InsertOutcome {
    pub inserted: u64,
    pub errors: Vec<WriteError>,
}

impl InsertOutcome {
    /// The server lists every refused document; one line with the first is what people need.
    pub fn summary(&self) -> String {
        match self.errors.first() {
            Some(first) => format!(
                "{} of the batch's documents were rejected; first: code {} {}",
                self.errors.len(),
                first.code,
                first.message.chars().take(300).collect::<String>()
            ),
            None => "no error".to_string(),
        }
    }
}

/// Insert `docs` unchanged, in as many commands as the server's size limit needs,
/// unordered (every document is tried), bypassing validation as mongorestore does: the
/// source accepted them.
pub async fn insert_raw(
    db: &Database,
    coll: &str,
    docs: &[RawDocumentBuf],
) -> Result<InsertOutcome> {
    let mut out = InsertOutcome::default();
    let mut start = 0;
    while start < docs.len() {
        let mut arr = crate::rawbson::ArrayBuilder::new();
        let mut end = start;
        while end < docs.len() {
            let d = docs[end].as_bytes();
            let cost = crate::rawbson::array_elem_cost(arr.len(), d.len());
            if !arr.is_empty() && arr.bytes() + cost > MAX_COMMAND_DOCS {
                break;
            }
            arr.push_doc(d);
            end += 1;
        }
        let mut cmd = crate::rawbson::Builder::with_capacity(arr.bytes() + 128);
        cmd.str("insert", coll)
            .array("documents", &arr.finish_bytes())
            .bool("ordered", false)
            .bool("bypassDocumentValidation", true)
            .bool("bypassEmptyTsReplacement", true);
        let reply = db
            .run_raw_command(cmd.finish())
            .await
            .map_err(|e| anyhow::anyhow!("{}", crate::mongo::errors::describe(&e)))?;
        let part = outcome_of(&reply, start)?;
        out.inserted += part.inserted;
        out.errors.extend(part.errors);
        start = end;
    }
    Ok(out)
}

/// Read an insert/update reply: `n`, `writeErrors` (their `index` shifted by `offset`, the
/// position of the command's first statement in the caller's list), and a write concern
/// error as an error.
pub fn outcome_of(reply: &Document, offset: usize) -> Result<InsertOutcome> {
    if let Ok(e) = reply.get_document("writeConcernError") {
        anyhow::bail!(
            "write concern error: code {} {}",
            e.get_i32("code").unwrap_or(0),
            e.get_str("errmsg").unwrap_or("?")
        );
    }
    let inserted = match reply.get("n") {
        Some(Bson::Int32(n)) => *n as u64,
        Some(Bson::Int64(n)) => *n as u64,
        _ => 0,
    };
    let errors = reply
        .get_array("writeErrors")
        .map(|a| {
            a.iter()
                .filter_map(Bson::as_document)
                .map(|e| WriteError {
                    index: offset + e.get_i32("index").unwrap_or(0).max(0) as usize,
                    code: e.get_i32("code").unwrap_or(0),
                    message: e.get_str("errmsg").unwrap_or("write error").to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(InsertOutcome { inserted, errors })
}
