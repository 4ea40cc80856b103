//! Writing raw documents: unordered insertMany batches from a bounded queue,
//! several workers per collection, duplicate-key rejections counted.

use std::sync::Arc;

use anyhow::{Context, Result};
use mongodb::bson::RawDocumentBuf;
use mongodb::error::ErrorKind;
use mongodb::Client;
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
            let coll = client
                .database(&ns.db)
                .collection::<RawDocumentBuf>(&ns.coll);
            let mut stats = InsertStats::default();
            loop {
                let batch = { rx.lock().await.recv().await };
                let Some(batch) = batch else { break };
                let (n, bytes) = (batch.docs.len() as u64, batch.bytes as u64);
                match coll
                    .insert_many(batch.docs)
                    .ordered(false)
                    .bypass_document_validation(true)
                    .await
                {
                    Ok(_) => stats.inserted += n,
                    Err(e) => {
                        let dups = duplicate_count(&e);
                        if allow_duplicates && dups.is_some_and(|d| d.0 == d.1) {
                            let (d, _) = dups.unwrap_or_default();
                            stats.duplicates += d;
                            stats.inserted += n - d;
                        } else {
                            return Err(anyhow::anyhow!("inserting into {ns}: {}", summarize(&e)));
                        }
                    }
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

/// (duplicate-key errors, all write errors) of a failed insertMany.
fn duplicate_count(e: &mongodb::error::Error) -> Option<(u64, u64)> {
    match &*e.kind {
        ErrorKind::InsertMany(ime) if ime.write_concern_error.is_none() => {
            let errs = ime.write_errors.as_ref()?;
            let dups = errs.iter().filter(|w| w.code == DUPLICATE_KEY).count() as u64;
            Some((dups, errs.len() as u64))
        }
        _ => None,
    }
}

/// insertMany errors list every failed document; one line with the first is what people need.
fn summarize(e: &mongodb::error::Error) -> String {
    match &*e.kind {
        ErrorKind::InsertMany(ime) => {
            let errs = ime.write_errors.as_deref().unwrap_or_default();
            match errs.first() {
                Some(first) => format!(
                    "{} of the batch's documents were rejected; first: code {} {}",
                    errs.len(),
                    first.code,
                    first.message.chars().take(300).collect::<String>()
                ),
                None => e.to_string().chars().take(500).collect(),
            }
        }
        _ => e.to_string().chars().take(500).collect(),
    }
}
