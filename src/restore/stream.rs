//! Producers of insert batches: one object (decompressed, walked, checksummed on
//! the fly) or a whole archive demultiplexed into per-namespace queues.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use tokio::sync::mpsc;
use tokio_util::io::SyncIoBridge;

use crate::codec::{self, Compression};
use crate::dump::archive::{ArchiveReader, Event};
use crate::dump::bson_stream;
use crate::load::lanes::{Claim, FREE_BYTES};
use crate::mongo::raw_write::Batch;
use crate::namespace::Namespace;
use crate::pipeline::HashingReader;
use crate::storage::Store;

/// Counts what a producer read.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReadCount {
    pub docs: u64,
    pub bytes: u64,
}

/// Count the documents of `key` (a dry run) and verify `sha256` (of the stored bytes).
pub async fn object_count(
    store: &Store,
    key: &str,
    compression: Compression,
    sha256: Option<String>,
) -> Result<ReadCount> {
    object_batches_tallied(store, key, compression, sha256, None, Arc::default()).await
}

/// Stream `key` into batches on `to`'s sender (only count them without one); verify
/// `sha256` (of the stored bytes) at the end. The documents read intact are counted into
/// `tally` as it goes: when the read fails (a truncated file), the failed namespace's
/// result still says how many documents were read before the damage. Past its first
/// `FREE_BYTES` the namespace waits for its `claim` on a lane (see `load::lanes`).
pub async fn object_batches_tallied(
    store: &Store,
    key: &str,
    compression: Compression,
    sha256: Option<String>,
    to: Option<(mpsc::Sender<Batch>, Arc<Claim>)>,
    tally: Arc<AtomicU64>,
) -> Result<ReadCount> {
    let reader = store.open_read(key).await?;
    let key = key.to_string();
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut hashing = HashingReader::new(std::io::BufReader::with_capacity(1 << 20, SyncIoBridge::new(reader)));
        let mut count = ReadCount::default();
        let walked = {
            let decoded = codec::decoder(compression, &mut hashing)?;
            let mut batch = Batch::default();
            let (mut read, mut laned) = (0u64, false);
            bson_stream::walk(decoded, &key, |doc| {
                tally.fetch_add(1, Ordering::Relaxed);
                if let Some((tx, claim)) = &to {
                    read += doc.as_bytes().len() as u64;
                    if read > FREE_BYTES && !laned {
                        runtime.block_on(claim.lane());
                        laned = true;
                    }
                    batch.push(doc.as_bytes());
                    if batch.full() {
                        tx.blocking_send(std::mem::take(&mut batch)).map_err(|_| crate::pipeline::PipelineClosed)?;
                    }
                }
                Ok(())
            })
            .and_then(|stats| {
                if let Some((tx, _)) = &to {
                    if !batch.is_empty() {
                        tx.blocking_send(batch).map_err(|_| crate::pipeline::PipelineClosed)?;
                    }
                }
                Ok(stats)
            })
        };
        let stats = walked.map_err(|e| decode_context(e, &key, hashing.count))?;
        count.docs = stats.docs;
        count.bytes = stats.bytes;
        let got = hashing.finish()?;
        if let Some(expected) = sha256 {
            if got != expected {
                bail!("{key} is corrupt: its sha256 is {got}, the manifest records {expected}; the backup object was changed or damaged");
            }
        }
        Ok(count)
    })
    .await?
}

/// Decoder errors (bad gzip/zstd data) arrive as io errors; name the object and how far
/// into its stored bytes the reader had got (0 when unknown).
fn decode_context(e: anyhow::Error, key: &str, stored_offset: u64) -> anyhow::Error {
    if e.is::<crate::pipeline::PipelineClosed>() || e.to_string().contains(key) {
        e
    } else if stored_offset > 0 {
        e.context(format!(
            "{key} is corrupt or truncated: its compressed stream cannot be decoded (failed within the first {stored_offset} stored bytes)"
        ))
    } else {
        e.context(format!(
            "{key} is corrupt or truncated: its compressed stream cannot be decoded"
        ))
    }
}

/// Demultiplex an archive into `routes` (one queue per selected namespace). The
/// oplog, if `oplog_spool` is given, is written there for replay after the data.
/// Namespaces without a route are read (their CRC is still checked) and dropped.
pub async fn archive_batches(
    store: &Store,
    key: &str,
    compression: Compression,
    what: &str,
    routes: HashMap<Namespace, mpsc::Sender<Batch>>,
    oplog_spool: Option<std::fs::File>,
) -> Result<HashMap<Namespace, ReadCount>> {
    archive_batches_tallied(
        store,
        key,
        compression,
        what,
        routes,
        oplog_spool,
        Arc::default(),
    )
    .await
}

/// How far a demultiplexing got, kept as it goes so that a failed archive (truncated)
/// still says, per namespace, how many documents were read intact and which namespaces
/// ended (their CRC checked) before the damage: those are complete.
#[derive(Debug, Default)]
pub struct ArchiveTally {
    pub read: HashMap<Namespace, u64>,
    pub ended: std::collections::HashSet<Namespace>,
}

/// `archive_batches`, also keeping `tally` up to date as it goes.
pub async fn archive_batches_tallied(
    store: &Store,
    key: &str,
    compression: Compression,
    what: &str,
    mut routes: HashMap<Namespace, mpsc::Sender<Batch>>,
    mut oplog_spool: Option<std::fs::File>,
    tally: Arc<Mutex<ArchiveTally>>,
) -> Result<HashMap<Namespace, ReadCount>> {
    let reader = store.open_read(key).await?;
    let what = what.to_string();
    tokio::task::spawn_blocking(move || {
        let bridge = std::io::BufReader::with_capacity(1 << 20, SyncIoBridge::new(reader));
        let decoded = codec::decoder(compression, bridge)?;
        let mut ar = ArchiveReader::new(decoded, &what);
        ar.prelude()?;
        let mut batches: HashMap<Namespace, Batch> = HashMap::new();
        let mut counts: HashMap<Namespace, ReadCount> = HashMap::new();
        ar.demux(|e| {
            match e {
                Event::Doc { db, coll, doc } => {
                    if db.is_empty() && coll == "oplog" {
                        if let Some(f) = oplog_spool.as_mut() {
                            f.write_all(doc.as_bytes())
                                .context("spooling the archive's oplog")?;
                        }
                        return Ok(());
                    }
                    // A time-series collection's buckets come as system.buckets.<name>.
                    let ns = Namespace::new(db, coll).without_buckets_prefix();
                    let c = counts.entry(ns.clone()).or_default();
                    c.docs += 1;
                    if let Ok(mut t) = tally.lock() {
                        *t.read.entry(ns.clone()).or_default() += 1;
                    }
                    c.bytes += doc.as_bytes().len() as u64;
                    if let Some(tx) = routes.get(&ns) {
                        let b = batches.entry(ns.clone()).or_default();
                        b.push(doc.as_bytes());
                        if b.full() {
                            tx.blocking_send(std::mem::take(b))
                                .map_err(|_| crate::pipeline::PipelineClosed)?;
                        }
                    }
                }
                Event::End { db, coll } => {
                    let ns = Namespace::new(db, coll).without_buckets_prefix();
                    if let Ok(mut t) = tally.lock() {
                        t.ended.insert(ns.clone());
                    }
                    if let Some(tx) = routes.remove(&ns) {
                        if let Some(b) = batches.remove(&ns).filter(|b| !b.is_empty()) {
                            tx.blocking_send(b)
                                .map_err(|_| crate::pipeline::PipelineClosed)?;
                        }
                    }
                }
            }
            Ok(())
        })
        .map_err(|e| decode_context(e, &what, 0))?;
        if let Some(f) = oplog_spool.as_mut() {
            f.flush()?;
        }
        Ok(counts)
    })
    .await?
}

/// Copy an oplog object to a temporary file, checking its sha256 on the way, so the
/// replay reads a verified local copy without holding the whole oplog in memory.
pub async fn spool_verified(
    store: &Store,
    key: &str,
    sha256: Option<String>,
) -> Result<std::fs::File> {
    let reader = store.open_read(key).await?;
    let key = key.to_string();
    tokio::task::spawn_blocking(move || {
        let mut file = tempfile::tempfile().context("creating a temporary file for the oplog")?;
        let mut hashing = HashingReader::new(SyncIoBridge::new(reader));
        std::io::copy(&mut hashing, &mut file).with_context(|| format!("downloading {key}"))?;
        let got = hashing.finish()?;
        if let Some(expected) = sha256 {
            if got != expected {
                bail!("{key} is corrupt: its sha256 is {got}, the manifest records {expected}");
            }
        }
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0))?;
        Ok(file)
    })
    .await?
}
