//! The restore's producers over the shared load engine: one backup object or mongodump
//! file per namespace, or a whole archive demultiplexed into every namespace's queue; and
//! the result of a namespace that failed, with its real counts.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use tokio::sync::mpsc;

use crate::codec::Compression;
use crate::load::plan::{self};
use crate::load::{Loader, NsResult};
use crate::mongo::raw_write::Batch;
use crate::namespace::Namespace;
use crate::report::progress::{Progress, TaskProgress};
use crate::restore::source::{DataRef, Source, SourceNs};
use crate::restore::stream::{self, ReadCount};

/// The restore-specific producers (backup objects, archives) over the shared load engine.
pub(super) struct Runner(pub(super) Loader);

impl Runner {
    pub(super) async fn object(
        &self,
        store: &crate::storage::Store,
        n: &SourceNs,
        t: &Namespace,
        task: TaskProgress,
    ) -> NsResult {
        let mut start = Instant::now();
        let c = n.collection();
        let tally = Arc::new(AtomicU64::new(0));
        let mut created = false;
        let claim = self.0.lanes.claim();
        let outcome = async {
            created = self.0.prepare(&c, t).await?;
            let (tx, rx) = mpsc::channel::<Batch>(2);
            let ins = self.0.insert(&c, t, rx, false, task.clone());
            let read = async {
                match &n.data {
                    Some(DataRef::Object {
                        key,
                        compression,
                        sha256,
                        ..
                    }) => {
                        stream::object_batches_tallied(
                            store,
                            key,
                            *compression,
                            sha256.clone(),
                            Some((tx, claim.clone())),
                            tally.clone(),
                        )
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
        // The namespace's time is its own work, not its wait for a lane; and the lane is
        // free again before its indexes are built and it is counted.
        start += claim.waited().await;
        drop(claim);
        match outcome {
            Ok((read, ins)) => self.0.finish(&c, t, read.docs, ins, start).await,
            Err(e) => {
                let so_far = Landed {
                    read: tally.load(Ordering::Relaxed),
                    inserted: task.docs(),
                    created,
                };
                let mut r = self.failed(&c, t, e, so_far).await;
                r.seconds = start.elapsed().as_secs_f64();
                r
            }
        }
    }

    /// A failed namespace's result with the real counts: what was read before the failure,
    /// what landed, what the target holds (a half-loaded collection must not look empty,
    /// nor complete). A collection this run created that holds nothing is removed again,
    /// so a failed run leaves no empty collection that looks restored; one that holds
    /// documents is kept (they are the source's, byte for byte) and called partial.
    async fn failed(
        &self,
        c: &crate::load::Collection,
        t: &Namespace,
        e: anyhow::Error,
        so_far: Landed,
    ) -> NsResult {
        let mut r = Loader::failed(c, t, e);
        r.read = so_far.read;
        r.inserted = so_far.inserted;
        let data = c.kind.data_ns(t);
        r.target_count = plan::target_documents(&self.0.client, &data).await;
        let problem = r.problem.take().unwrap_or_default();
        let note = if r.target_count > 0 {
            format!(
                "{t} holds {} documents from this failed run: it is a partial copy, not the source's collection",
                r.target_count
            )
        } else if so_far.created {
            match self
                .0
                .client
                .database(&t.db)
                .collection::<mongodb::bson::Document>(&t.coll)
                .drop()
                .await
            {
                Ok(()) => format!(
                    "nothing was written to {t}: the empty collection this run had created was removed"
                ),
                Err(de) => format!(
                    "nothing was written to {t}, and removing the empty collection this run had created failed ({}): drop it by hand",
                    crate::mongo::errors::chain_text(&de.into())
                ),
            }
        } else {
            format!("nothing was written to {t}")
        };
        r.problem = Some(format!("{problem}. {note}"));
        r
    }

    pub(super) async fn archive(
        &self,
        src: &Source,
        compression: Compression,
        colls: &[(SourceNs, Namespace)],
        progress: &Progress,
    ) -> Result<Vec<NsResult>> {
        let mut routes = HashMap::new();
        let mut loaders = Vec::new();
        for (n, t) in colls {
            let c = n.collection();
            let created = self.0.prepare(&c, t).await?;
            let (tx, rx) = mpsc::channel::<Batch>(2);
            routes.insert(n.ns.clone(), tx);
            let task = progress.task(&t.to_string(), 0);
            // Every namespace's inserts run at once while the archive is demultiplexed
            // (no lanes: a namespace waiting for one would stall the stream that feeds all).
            let ins = self.0.insert(&c, t, rx, false, task.clone());
            loaders.push((c, t.clone(), task, created, ins));
        }
        let start = Instant::now();
        let key = src.archive_key.clone().unwrap_or_default();
        let tally = Arc::new(std::sync::Mutex::new(stream::ArchiveTally::default()));
        let demux = stream::archive_batches_tallied(
            &src.store,
            &key,
            compression,
            &src.describe,
            routes,
            None,
            tally.clone(),
        );
        let (tasks, inserts): (Vec<_>, Vec<_>) = loaders
            .into_iter()
            .map(|(c, t, task, created, ins)| ((c, t, task, created), ins))
            .unzip();
        let (counts, inserted) = tokio::join!(demux, futures::future::join_all(inserts));
        let read_so_far = |ns: &Namespace| {
            tally
                .lock()
                .map(|m| m.read.get(ns).copied().unwrap_or(0))
                .unwrap_or(0)
        };
        // A namespace whose end (and CRC) came before the archive broke is complete.
        let ended = |ns: &Namespace| tally.lock().is_ok_and(|m| m.ended.contains(ns));
        let mut out = Vec::new();
        for ((c, t, task, created), ins) in tasks.into_iter().zip(inserted) {
            task.finish();
            let so_far = Landed {
                read: read_so_far(&c.ns),
                inserted: task.docs(),
                created,
            };
            let mut r = match (&counts, ins) {
                (Ok(n), Ok(ins)) => {
                    let read = n.get(&c.ns).copied().unwrap_or_default().docs;
                    self.0.finish(&c, &t, read, ins, start).await
                }
                (Err(_), Ok(ins)) if ended(&c.ns) => {
                    self.0.finish(&c, &t, read_so_far(&c.ns), ins, start).await
                }
                (Err(e), _) => {
                    self.failed(
                        &c,
                        &t,
                        anyhow::anyhow!(crate::mongo::errors::chain_text(e)),
                        so_far,
                    )
                    .await
                }
                (_, Err(e)) => self.failed(&c, &t, e, so_far).await,
            };
            r.seconds = start.elapsed().as_secs_f64();
            out.push(r);
        }
        Ok(out)
    }
}

/// How far a failed namespace got.
struct Landed {
    /// Documents read intact from the source before the failure.
    read: u64,
    /// Documents the target acknowledged.
    inserted: u64,
    /// This run created the target collection.
    created: bool,
}
