//! Writing raw documents: unordered `insert` commands from a bounded queue, several
//! workers per collection (one for a capped collection, whose order is its content),
//! duplicate-key rejections counted.
//!
//! The documents go in as the bytes the source sent. One thing the server changes on
//! insert (and on a replacement): every top-level `Timestamp(0, 0)` becomes the current
//! time. `bypassEmptyTsReplacement` turns that off only from 6.0.17 / 7.0.13 / 8.0 on, so we
//! do what works on every version: a document that holds such a field is inserted and then
//! given its empty timestamps back with a `$set`, which the server stores literally
//! (mongorestore, on servers without the flag, restores them with a second write too).

use std::sync::Arc;

use anyhow::{Context, Result};
use mongodb::bson::{Bson, Document, RawDocument, RawDocumentBuf};
use mongodb::{Client, Database};
use tokio::sync::{mpsc, Mutex};

use crate::namespace::Namespace;
use crate::report::progress::TaskProgress;

pub use super::batch::{Batch, BATCH_BYTES, BATCH_DOCS};
pub const DUPLICATE_KEY: i32 = 11000;
/// The documents one command carries at most: the server takes a command body of up to
/// 16 MiB + 16 KiB, so this leaves room for the command's own fields. A single document
/// of up to the 16 MiB maximum always goes alone.
pub const MAX_COMMAND_DOCS: usize = 16 * 1024 * 1024;

#[derive(Debug, Default, Clone)]
pub struct InsertStats {
    pub inserted: u64,
    pub duplicates: u64,
    /// Documents the server refused, when refusals were to be reported rather than stop
    /// the load (`insert_all`'s `keep_refused`): how many, and the first `MAX_REFUSED`.
    pub refused_count: u64,
    pub refused: Vec<Refused>,
}

/// Refused documents kept for the report: bounded, so a collection of refusals cannot
/// fill memory; the count is exact.
pub const MAX_REFUSED: usize = 100;

/// One document the server refused, named by its `_id` (shown as Extended JSON).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Refused {
    pub id: String,
    pub code: i32,
    pub reason: String,
}

impl InsertStats {
    fn refuse(&mut self, docs: &Batch, errors: &[WriteError]) {
        self.refused_count += errors.len() as u64;
        for e in errors {
            if self.refused.len() >= MAX_REFUSED {
                break;
            }
            let id = docs
                .get(e.index)
                .and_then(|d| RawDocument::from_bytes(d).ok())
                .and_then(|d| d.get("_id").ok().flatten())
                .and_then(|v| Bson::try_from(v.to_raw_bson()).ok())
                .map(|v| v.into_relaxed_extjson().to_string())
                .unwrap_or_else(|| format!("(document #{} of its batch, no _id)", e.index + 1));
            self.refused.push(Refused {
                id,
                code: e.code,
                reason: e.message.chars().take(300).collect(),
            });
        }
    }
}

/// How `insert_all` writes: `workers` concurrent inserters; duplicate-key rejections
/// counted instead of failing (`allow_duplicates`); other refused documents kept in the
/// result instead of failing at the first (`keep_refused`).
pub struct Writers {
    pub workers: usize,
    pub allow_duplicates: bool,
    pub keep_refused: bool,
    /// `--max-rate`: each batch waits for its slot before it is sent.
    pub throttle: Option<Arc<crate::pipeline::throttle::Throttle>>,
}

/// Drain `rx` into `ns` as `how` says. Documents bypass validation, as mongorestore's do:
/// they were valid when they were written.
pub async fn insert_all(
    client: &Client,
    ns: &Namespace,
    rx: mpsc::Receiver<Batch>,
    how: Writers,
    progress: TaskProgress,
) -> Result<InsertStats> {
    let Writers {
        workers,
        allow_duplicates,
        keep_refused,
        throttle,
    } = how;
    let rx = Arc::new(Mutex::new(rx));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let (rx, client, ns, progress) = (rx.clone(), client.clone(), ns.clone(), progress.clone());
        let throttle = throttle.clone();
        tasks.spawn(async move {
            let db = client.database(&ns.db);
            let mut stats = InsertStats::default();
            loop {
                let batch = { rx.lock().await.recv().await };
                let Some(batch) = batch else { break };
                let (n, bytes) = (batch.len() as u64, batch.bytes() as u64);
                if let Some(t) = &throttle {
                    t.wait(batch.bytes()).await;
                }
                let outcome = insert_raw(&db, &ns.coll, &batch.docs())
                    .await
                    .with_context(|| format!("inserting into {ns}"))?;
                let dups = outcome
                    .errors
                    .iter()
                    .filter(|e| e.code == DUPLICATE_KEY)
                    .count() as u64;
                let refused = outcome.errors.len() as u64;
                if outcome.errors.is_empty() {
                    stats.inserted += n;
                } else if allow_duplicates && dups == refused {
                    stats.duplicates += dups;
                    stats.inserted += n - dups;
                } else if keep_refused {
                    // Unordered: every other document of the batch was written.
                    stats.inserted += n - refused;
                    stats.refuse(&batch, &outcome.errors);
                    progress.add(n - refused, bytes);
                    continue;
                } else {
                    // The rest of the batch landed (unordered): counted, so a failed
                    // namespace's result says what the target got.
                    progress.add(n - refused, 0);
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
        total.refused_count += s.refused_count;
        let room = MAX_REFUSED.saturating_sub(total.refused.len());
        total.refused.extend(s.refused.into_iter().take(room));
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
pub async fn insert_raw(db: &Database, coll: &str, docs: &[&[u8]]) -> Result<InsertOutcome> {
    let mut out = InsertOutcome::default();
    let mut start = 0;
    while start < docs.len() {
        // As many documents as one command carries (at least one).
        let (mut end, mut body) = (start, 5);
        while end < docs.len() {
            let cost = crate::rawbson::array_elem_cost(end - start, docs[end].len());
            if end > start && body + cost > MAX_COMMAND_DOCS {
                break;
            }
            body += cost;
            end += 1;
        }
        let part = &docs[start..end];
        // Built again for a resend rather than cloned for every first attempt.
        let build = || {
            let mut cmd = crate::rawbson::Builder::with_capacity(body + coll.len() + 96);
            cmd.str("insert", coll)
                .doc_array("documents", part)
                .bool("ordered", false)
                .bool("bypassDocumentValidation", true);
            cmd.finish()
        };
        let (reply, retried) = run_idempotent_with(db, build).await?;
        let mut part_out = outcome_of(&reply, start)?;
        if retried {
            // A resent insert finds the documents its lost first attempt wrote: those
            // duplicates are ours (the counts after the load check the result).
            part_out.inserted += part_out
                .errors
                .iter()
                .filter(|e| e.code == DUPLICATE_KEY)
                .count() as u64;
            part_out.errors.retain(|e| e.code != DUPLICATE_KEY);
        }
        out.inserted += part_out.inserted;
        out.errors.extend(part_out.errors);
        restore_empty_timestamps(db, coll, part).await?;
        start = end;
    }
    Ok(out)
}

/// Give the documents that hold a top-level `Timestamp(0, 0)` their empty timestamps back
/// after the server replaced them on insert.
async fn restore_empty_timestamps(db: &Database, coll: &str, docs: &[&[u8]]) -> Result<()> {
    let stmts: Vec<Vec<u8>> = docs.iter().filter_map(|d| empty_ts_fix(d)).collect();
    if stmts.is_empty() {
        return Ok(());
    }
    let stmt_slices: Vec<&[u8]> = stmts.iter().map(Vec::as_slice).collect();
    let mut cmd = crate::rawbson::Builder::new();
    cmd.str("update", coll)
        .doc_array("updates", &stmt_slices)
        .bool("ordered", false)
        .bool("bypassDocumentValidation", true);
    let (reply, _) = run_idempotent(db, cmd.finish()).await.with_context(|| {
        format!(
            "restoring the empty timestamps of {} document(s) in {coll}",
            stmts.len()
        )
    })?;
    let out = outcome_of(&reply, 0)?;
    if !out.errors.is_empty() {
        anyhow::bail!("restoring empty timestamps in {coll}: {}", out.summary());
    }
    Ok(())
}

/// The update statement that sets a document's top-level empty timestamps back to
/// `Timestamp(0, 0)` (a modifier `$set` stores them literally; a name with a dot or a
/// leading `$` goes through `$setField`), or None when it has none.
pub fn empty_ts_fix(doc: &[u8]) -> Option<Vec<u8>> {
    use crate::rawbson::{iter, Builder};
    let mut plain = Builder::new();
    let mut odd: Vec<Vec<u8>> = Vec::new();
    let mut id = None;
    for e in iter(doc) {
        let e = e.ok()?;
        if e.key == b"_id" && id.is_none() {
            id = Some(e);
        } else if e.kind == 0x11 && e.value.iter().all(|b| *b == 0) {
            if e.key.contains(&b'.')
                || e.key.first() == Some(&b'$')
                || std::str::from_utf8(e.key).is_err()
            {
                odd.push(e.key.to_vec());
            } else {
                plain.raw(e.key, 0x11, &[0; 8]);
            }
        }
    }
    let id = id?;
    if plain.is_empty() && odd.is_empty() {
        return None;
    }
    let mut q = Builder::new();
    q.elem(&id);
    let mut stmt = Builder::new();
    stmt.doc("q", &q.finish_bytes());
    if odd.is_empty() {
        let mut set = Builder::new();
        set.doc("$set", &plain.finish_bytes());
        stmt.doc("u", &set.finish_bytes());
    } else {
        // A pipeline: one $replaceWith/$setField per field, each keeping the field's place.
        let mut stages = crate::rawbson::ArrayBuilder::new();
        let plain = plain.finish_bytes();
        let names = crate::rawbson::iter(&plain)
            .filter_map(|e| e.ok().map(|e| e.key.to_vec()))
            .chain(odd);
        for name in names {
            let mut literal = Builder::new();
            literal.raw(b"$literal", 0x11, &[0; 8]);
            let mut field_lit = Builder::new();
            field_lit.raw(b"$literal", 0x02, &crate::rawbson::string_value(&name));
            let mut set_field = Builder::new();
            set_field
                .doc("field", &field_lit.finish_bytes())
                .str("input", "$$ROOT")
                .doc("value", &literal.finish_bytes());
            let mut expr = Builder::new();
            expr.doc("$setField", &set_field.finish_bytes());
            let mut stage = Builder::new();
            stage.doc("$replaceWith", &expr.finish_bytes());
            stages.push_doc(&stage.finish_bytes());
        }
        stmt.array("u", &stages.finish_bytes());
    }
    stmt.doc("collation", &crate::rawbson::simple_collation());
    Some(stmt.finish_bytes())
}

/// Run a write command that may be sent again (raw inserts whose duplicates we recognise,
/// replacements and deletes by `_id`): a lost connection or a primary stepping down is
/// retried twice, as the driver's retryable writes would have. Returns the reply and
/// whether it was resent.
pub async fn run_idempotent(db: &Database, cmd: RawDocumentBuf) -> Result<(Document, bool)> {
    run_idempotent_with(db, || cmd.clone()).await
}

/// `run_idempotent` with the command built by `build` for each attempt.
pub async fn run_idempotent_with(
    db: &Database,
    mut build: impl FnMut() -> RawDocumentBuf,
) -> Result<(Document, bool)> {
    let mut retried = false;
    for attempt in 0.. {
        match db.run_raw_command(build()).await {
            Ok(reply) => return Ok((reply, retried)),
            Err(e) if attempt < 2 && transient(&e) => {
                retried = true;
                tokio::time::sleep(std::time::Duration::from_millis(500 << attempt)).await;
            }
            Err(e) => return Err(anyhow::anyhow!("{}", crate::mongo::errors::describe(&e))),
        }
    }
    unreachable!("the loop returns")
}

/// A network error or a primary that stepped down: the same write may succeed when resent.
fn transient(e: &mongodb::error::Error) -> bool {
    use mongodb::error::ErrorKind;
    matches!(
        &*e.kind,
        ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. }
    ) || matches!(
        crate::mongo::errors::code(e),
        Some(6 | 7 | 89 | 91 | 189 | 262 | 9001 | 10107 | 11600 | 11602 | 13435 | 13436)
    )
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
