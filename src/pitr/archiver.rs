//! The archiver loop of `backup --continuous`: read the majority-committed oplog after the
//! stream's position, keep the selected entries as they are, and close a slice every
//! `--slice` seconds or bytes (object first, manifest last).
//!
//! Position rules, which make a restart after a crash or kill -9 exact:
//! - the position is the last complete slice's `until`; what a killed archiver held in
//!   memory was never acknowledged by a manifest, so it is read again (no gap);
//! - reads are strictly after the position and never past the majority commit point, so a
//!   slice never holds an entry that a failover could roll back, and never one twice;
//! - the oplog is capped: after each read (and before each slice is written) its oldest
//!   entry must still be at or before the position the read started from. Truncation
//!   removes the oldest entries first, so this proves nothing between was lost; otherwise
//!   a gap is recorded and the archiver stops with the fix.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use mongodb::bson::{doc, Document, Timestamp};
use mongodb::options::Hint;
use mongodb::Client;
use serde::Serialize;

use crate::codec::Compression;
use crate::dump::manifest::OplogTs;
use crate::mongo::oplog;
use crate::pitr::layout;
use crate::pitr::select::EntryFilter;
use crate::pitr::slice::{GapRecord, SliceBuilder, SliceManifest, StreamInfo};
use crate::report::output::Ui;
use crate::storage::Store;

pub struct Archiver {
    pub client: Client,
    /// Rooted at the stream's folder (`pitr/<set>`).
    pub store: Store,
    /// The stream folder's full location, for messages.
    pub location: String,
    pub info: StreamInfo,
    pub compression: Compression,
    pub level: i32,
    pub slice_every: Duration,
    pub slice_bytes: u64,
    pub poll: Duration,
    /// Continue after a recorded gap from the oldest entry the oplog still holds.
    pub after_gap: bool,
    pub ui: Ui,
}

/// The archiver's own account, printed when it stops.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub stream: String,
    pub started_after: Option<OplogTs>,
    pub archived_until: Option<OplogTs>,
    pub slices: u64,
    pub entries: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    /// How far behind the primary's write the archiver read each entry (ms).
    pub lag_ms: Lag,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Lag {
    pub samples: u64,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

/// Read lag samples in 1 ms buckets (up to 10 minutes; beyond counts as the last bucket).
struct LagHistogram {
    buckets: Vec<u64>,
    max: u64,
    n: u64,
}

impl LagHistogram {
    fn new() -> Self {
        LagHistogram {
            buckets: vec![0; 600_000],
            max: 0,
            n: 0,
        }
    }
    fn add(&mut self, ms: u64) {
        let i = (ms as usize).min(self.buckets.len() - 1);
        self.buckets[i] += 1;
        self.max = self.max.max(ms);
        self.n += 1;
    }
    fn quantile(&self, q: f64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        let want = ((self.n as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.buckets.iter().enumerate() {
            seen += c;
            if seen >= want {
                return i as u64;
            }
        }
        self.max
    }
    fn lag(&self) -> Lag {
        Lag {
            samples: self.n,
            p50: self.quantile(0.5),
            p99: self.quantile(0.99),
            max: self.max,
        }
    }
}

fn ts(t: Timestamp) -> OplogTs {
    t.into()
}

fn show(t: OplogTs) -> String {
    crate::restore::oplog_replay::show_ts(t.into())
}

/// The newest complete slice of the stream at `store` (rooted at the stream folder).
pub async fn last_slice(store: &Store) -> Result<Option<SliceManifest>> {
    let keys = super::chain::slice_manifest_keys(store).await?;
    match keys.last() {
        Some(k) => Ok(Some(SliceManifest::parse(&store.get(k).await?, k)?)),
        None => Ok(None),
    }
}

impl Archiver {
    /// Where this run starts: after the last complete slice, or (a new stream) after
    /// `fresh_after` when the oplog still holds it, else after the newest entry.
    pub async fn start_position(&self, fresh_after: Option<OplogTs>) -> Result<OplogTs> {
        let oldest = ts(oplog::oldest(&self.client).await?);
        match last_slice(&self.store).await? {
            Some(last) => {
                if oldest <= last.until {
                    self.ui.info(format!(
                        "resuming {} after its last complete slice, which ends at {}",
                        self.location,
                        show(last.until)
                    ));
                    return Ok(last.until);
                }
                let gap = self.record_gap(last.until, oldest).await?;
                if self.after_gap {
                    self.ui.warn(format!(
                        "continuing after the recorded gap {gap}: from the oldest entry the oplog holds, {}",
                        show(oldest)
                    ));
                    return Ok(oldest);
                }
                Err(self.gap_error(last.until, oldest, &gap))
            }
            None => {
                self.store
                    .put(layout::STREAM_INFO, serde_json::to_vec_pretty(&self.info)?)
                    .await
                    .with_context(|| {
                        format!("writing {}/{}", self.location, layout::STREAM_INFO)
                    })?;
                if let Some(f) = fresh_after.filter(|f| oldest <= *f) {
                    self.ui.info(format!(
                        "new stream {}: starting after the newest base backup's oplog end, {}",
                        self.location,
                        show(f)
                    ));
                    return Ok(f);
                }
                let latest = ts(oplog::latest(&self.client).await?);
                self.ui.info(format!(
                    "new stream {}: starting after the newest oplog entry, {} (take a base backup with \
                     `backup --oplog` for the windows to open)",
                    self.location,
                    show(latest)
                ));
                Ok(latest)
            }
        }
    }

    async fn record_gap(&self, after: OplogTs, oldest: OplogTs) -> Result<String> {
        let key = layout::gap_key(after);
        let rec = GapRecord {
            stream: self.info.stream.clone(),
            after,
            oldest_available: oldest,
            detected_at: chrono::Utc::now(),
            reason: "the oplog was truncated past the archived position before it was read".into(),
        };
        if self.store.head(&key).await?.is_none() {
            self.store
                .put(&key, serde_json::to_vec_pretty(&rec)?)
                .await
                .with_context(|| format!("writing {}/{key}", self.location))?;
        }
        Ok(format!("{}/{key}", self.location))
    }

    fn gap_error(&self, after: OplogTs, oldest: OplogTs, gap: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "the oplog no longer holds the archived position {}: its oldest entry is now {}, so \
             the writes between were lost before they were archived. Recorded as a gap in {gap}; \
             no restore can reach a time inside it. Fix: take a new base backup (`mongoshift backup --oplog`) \
             so that times after it are restorable again, and restart with `backup --continuous --after-gap` \
             to continue from the oldest entry the oplog holds; to prevent it, keep the archiver running \
             and enlarge the oplog (replSetResizeOplog)",
            show(after),
            show(oldest)
        )
    }

    /// Archive until `stop` fires (the current slice is then closed and written) or an
    /// error; returns what was archived.
    pub async fn run(
        &self,
        start: OplogTs,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<Summary> {
        let filter = EntryFilter::new(&self.info.selection)?;
        let scope = self.info.selection.scope();
        let mut sum = Summary {
            stream: self.info.stream.clone(),
            started_after: Some(start),
            ..Summary::default()
        };
        let mut lag = LagHistogram::new();
        let mut covered = start;
        let mut slice = SliceBuilder::new(covered, self.compression, self.level)?;
        let mut opened = Instant::now();
        let mut stop_checked = Instant::now();
        let run_started = chrono::Utc::now();
        loop {
            if *stop.borrow() {
                break;
            }
            // `backups continuous stop` from anywhere that reaches the location.
            if stop_checked.elapsed() >= Duration::from_secs(1) {
                stop_checked = Instant::now();
                if crate::pitr::control::stop_requested(&self.store, run_started).await? {
                    self.ui.info("stop requested (backups continuous stop)");
                    break;
                }
            }
            let top = ts(oplog::majority_time(&self.client).await?);
            if top > covered {
                let read_from = covered;
                let mut cursor = self.cursor(&scope, read_from, top).await?;
                while let Some(batch) = cursor.next().await {
                    let batch = batch.context("reading local.oplog.rs")?;
                    for elem in batch.doc_slices().context("reading an oplog batch")? {
                        let entry = elem?.as_document().context("non-document in the oplog")?;
                        let t = ts(entry
                            .get_timestamp("ts")
                            .context("oplog entry without ts")?);
                        if let Ok(wall) = entry.get_datetime("wall") {
                            let now = chrono::Utc::now().timestamp_millis();
                            lag.add((now - wall.timestamp_millis()).max(0) as u64);
                        }
                        if filter.keep(entry.as_bytes())? {
                            slice.push(entry.as_bytes(), t)?;
                        }
                        if slice.raw_bytes >= self.slice_bytes {
                            // Full: the slice covers exactly up to this entry.
                            self.check_not_truncated(read_from).await?;
                            let full = std::mem::replace(
                                &mut slice,
                                SliceBuilder::new(t, self.compression, self.level)?,
                            );
                            self.write(full, t, &mut sum).await?;
                            opened = Instant::now();
                        }
                    }
                }
                self.check_not_truncated(read_from).await?;
                covered = top;
            }
            // Nothing new is covered (no majority write since): no slice to write yet.
            if opened.elapsed() >= self.slice_every && covered > slice.after {
                let done = std::mem::replace(
                    &mut slice,
                    SliceBuilder::new(covered, self.compression, self.level)?,
                );
                self.write(done, covered, &mut sum).await?;
                opened = Instant::now();
            }
            tokio::select! {
                _ = tokio::time::sleep(self.poll) => {}
                _ = stop.changed() => {}
            }
        }
        if covered > slice.after {
            self.write(slice, covered, &mut sum).await?;
        }
        sum.lag_ms = lag.lag();
        Ok(sum)
    }

    async fn cursor(
        &self,
        scope: &oplog::OplogScope,
        after: OplogTs,
        top: OplogTs,
    ) -> Result<mongodb::raw_batch_cursor::RawBatchCursor> {
        let mut filter: Document = scope.filter(after.into());
        let after_ts: Timestamp = after.into();
        let top_ts: Timestamp = top.into();
        filter.insert("ts", doc! { "$gt": after_ts, "$lte": top_ts });
        self.client
            .database("local")
            .collection::<Document>("oplog.rs")
            .find(filter)
            .hint(Hint::Keys(doc! { "$natural": 1 }))
            .batch()
            .await
            .context("opening a cursor on local.oplog.rs (does the user have read access to the local database?)")
    }

    async fn check_not_truncated(&self, read_from: OplogTs) -> Result<()> {
        let oldest = ts(oplog::oldest(&self.client).await?);
        if oldest <= read_from {
            return Ok(());
        }
        let gap = self.record_gap(read_from, oldest).await?;
        Err(self.gap_error(read_from, oldest, &gap))
    }

    /// Object first, its size checked, then the manifest: the slice exists only once both do.
    async fn write(&self, slice: SliceBuilder, until: OplogTs, sum: &mut Summary) -> Result<()> {
        let after = slice.after;
        let built = slice.finish(until)?;
        let key = layout::slice_object(after, self.compression);
        let size = built.bytes.len() as u64;
        let manifest = built.manifest(&self.info.stream, key.clone());
        self.store
            .put(&key, built.bytes)
            .await
            .with_context(|| format!("writing {}/{key}", self.location))?;
        match self.store.head(&key).await? {
            Some(s) if s == size => {}
            other => anyhow::bail!(
                "{}/{key} holds {other:?} bytes after upload, but {size} were written",
                self.location
            ),
        }
        let mkey = layout::slice_manifest(after);
        self.store
            .put(&mkey, serde_json::to_vec_pretty(&manifest)?)
            .await
            .with_context(|| format!("writing {}/{mkey}", self.location))?;
        sum.slices += 1;
        sum.entries += manifest.count;
        sum.raw_bytes += manifest.raw_bytes;
        sum.stored_bytes += size;
        sum.archived_until = Some(until);
        self.ui.info(format!(
            "slice {}: {} entries, {} → {} stored, through {}",
            layout::ts_name(after),
            manifest.count,
            crate::report::table::bytes(manifest.raw_bytes),
            crate::report::table::bytes(size),
            show(until)
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_quantiles() {
        let mut h = LagHistogram::new();
        for ms in 1..=100 {
            h.add(ms);
        }
        let l = h.lag();
        assert_eq!((l.p50, l.p99, l.max, l.samples), (50, 99, 100, 100));
    }
}
