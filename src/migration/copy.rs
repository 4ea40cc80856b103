//! The copy half of `migrate`: per collection a raw batch cursor (several `_id` ranges at
//! once for a big collection) feeds the load engine's parallel raw inserts; indexes after
//! the data, every count checked against the source, and each finished range recorded so
//! that `--resume` carries on.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use anyhow::{Context, Result};
use futures::StreamExt;
use mongodb::bson::Document;
use mongodb::Client;
use tokio::sync::mpsc;

use crate::compare::ranges::{self, IdRange};
use crate::load::state::{NsState, Unit};
use crate::load::{Collection, Loader, NsResult};
use crate::mongo::namespaces::CollectionInfo;
use crate::mongo::raw_read::{self, Sink};
use crate::mongo::raw_write::{Batch, InsertStats};
use crate::namespace::Namespace;
use crate::report::progress::TaskProgress;

/// Ranges read at once within one split collection.
const RANGE_READERS: usize = 2;
pub fn collection(c: &CollectionInfo) -> Collection {
    Collection {
        ns: c.ns.clone(),
        kind: c.kind,
        options: c.options.clone(),
        indexes: c.indexes.clone(),
        expected_docs: None,
        uuid: None,
    }
}

pub struct Copier {
    pub source: Client,
    pub loader: Loader,
    pub recorded: HashMap<Unit, NsState>,
    pub range_bytes: u64,
    /// A tail will follow: the source may change during the copy.
    pub live: bool,
}

impl Copier {
    /// Copy one collection (in ranges when big), then let the load engine build its
    /// indexes and compare the target's count with the source's.
    pub async fn collection(
        &self,
        info: &CollectionInfo,
        t: &Namespace,
        task: TaskProgress,
    ) -> NsResult {
        let mut start = Instant::now();
        let mut c = collection(info);
        let claim = self.loader.lanes.claim();
        let outcome = async {
            let (ranges, done, resumed) = self.ranges(info, &c, t).await?;
            let from = c.kind.data_ns(&c.ns);
            // A collection bigger than `FREE_BYTES` copies in a lane (see `load::lanes`);
            // it takes it before its cursors open, since a cursor waiting would hold its
            // server batches. A smaller one never waits for one.
            if info.estimated_bytes > crate::load::lanes::FREE_BYTES {
                claim.lane().await;
            }
            let copies = ranges
                .iter()
                .enumerate()
                .filter(|(i, _)| !done.contains(&(*i as u32)))
                .map(|(i, r)| {
                    let part = (ranges.len() > 1).then_some(i as u32);
                    let ranged = (r.clone(), part, resumed);
                    self.range(&c, &from, t, ranged, task.clone())
                });
            let copied: Vec<Result<(u64, InsertStats)>> = futures::stream::iter(copies)
                .buffer_unordered(RANGE_READERS)
                .collect()
                .await;
            let (mut read, mut ins) = (0u64, InsertStats::default());
            for r in copied {
                let (n, s) = r?;
                read += n;
                ins.inserted += s.inserted;
                ins.duplicates += s.duplicates;
            }
            claim.release().await;
            self.same_collection(info).await?;
            if self.live {
                // The source keeps changing under a followed copy, so its count proves
                // nothing yet; the target must hold what was read (nothing lost on the
                // way), and the tail brings both sides together. A resumed live copy has
                // no such number: `verify` after catching up is its check.
                return anyhow::Ok((read, ins, None, resumed));
            }
            // The source's count after the copy is what the target must hold.
            let (source_count, _) =
                crate::load::count::confirmed(&self.source, &from, "source", read).await?;
            anyhow::Ok((read, ins, Some(source_count), resumed))
        }
        .await;
        task.finish();
        // The collection's time is its own work, not its wait for a lane.
        start += claim.waited().await;
        drop(claim);
        match outcome {
            Ok((read, ins, source_count, resumed)) => {
                c.expected_docs = source_count;
                // `read` is what this run read (the unfinished ranges when resumed), so
                // read = inserted + duplicates, and the earlier run's documents are `kept`.
                self.loader
                    .finish_resumable(&c, t, read, ins, start, resumed)
                    .await
            }
            Err(e) => Loader::failed(&c, t, e),
        }
    }

    /// The collection read is still the one listed: a collection renamed or dropped after
    /// the listing reads as empty (or half) under its old name, and the count of what was
    /// read would then prove nothing. Its identity (UUID) decides, never its name.
    async fn same_collection(&self, info: &CollectionInfo) -> Result<()> {
        let from = &info.ns;
        let Some(listed) = &info.uuid else {
            return Ok(());
        };
        let now = crate::mongo::namespaces::uuid_of(&self.source, from).await?;
        if now.as_ref() == Some(listed) {
            return Ok(());
        }
        let what = match now {
            None => "no collection has that name any more".to_string(),
            Some(u) => format!("the name now belongs to another collection (UUID {u})"),
        };
        anyhow::bail!(
            "{from} was renamed or dropped on the source after it was listed (it was UUID {listed}; {what}), \
             so its documents were not all copied. Run the migration again with --drop (it lists and copies the \
             collections under their current names); with --follow, later renames are applied by the tail"
        )
    }

    /// The ranges of a collection, the parts a previous run finished, and whether this run
    /// continues an interrupted one. A fresh (or unsplit, reloaded) collection is prepared
    /// — dropped when asked or half-copied, created with the source's options — and split;
    /// a split collection being resumed keeps its data and its recorded ranges.
    async fn ranges(
        &self,
        info: &CollectionInfo,
        c: &Collection,
        t: &Namespace,
    ) -> Result<(Vec<IdRange>, HashSet<u32>, bool)> {
        let loading = self.recorded.get(&Unit {
            ns: t.clone(),
            part: None,
        }) == Some(&NsState::Loading);
        if loading {
            if let Some(points) = self.loader.state.load_bounds(t).await? {
                crate::mongo::schema::kill_writes(&self.loader.client, &c.kind.data_ns(t)).await?;
                let done = self
                    .recorded
                    .iter()
                    .filter(|(u, st)| u.ns == *t && **st == NsState::Done)
                    .filter_map(|(u, _)| u.part)
                    .collect();
                return Ok((ranges::between(&points), done, true));
            }
        }
        if loading {
            // Not split: nothing tells which documents arrived; start it over.
            crate::mongo::schema::kill_writes(&self.loader.client, &c.kind.data_ns(t)).await?;
            self.loader
                .client
                .database(&t.db)
                .collection::<Document>(&t.coll)
                .drop()
                .await
                .with_context(|| format!("dropping the half-copied {t}"))?;
        }
        // The target is prepared while the source picks the split points: one side's round
        // trips do not wait for the other's.
        let parts = ranges::range_count(info, self.range_bytes);
        let from = c.kind.data_ns(&c.ns);
        let ((), points) = tokio::try_join!(
            async { self.loader.prepare(c, t).await.map(|_| ()) },
            ranges::split_points(&self.source, &from, parts)
        )?;
        if !points.is_empty() {
            self.loader.state.save_bounds(t, &points).await?;
        }
        Ok((ranges::between(&points), HashSet::new(), false))
    }

    /// Copy one range (`part` of the collection; `resumed`: a part an earlier run began):
    /// a raw batch cursor on the source into the engine's insert workers.
    async fn range(
        &self,
        c: &Collection,
        from: &Namespace,
        t: &Namespace,
        (range, part, resumed): (IdRange, Option<u32>, bool),
        task: TaskProgress,
    ) -> Result<(u64, InsertStats)> {
        let unit = part.map(|p| Unit {
            ns: t.clone(),
            part: Some(p),
        });
        if let Some(u) = &unit {
            self.loader.state.set(u, NsState::Loading).await?;
        }
        let (tx, rx) = mpsc::channel::<Batch>(2);
        let read = raw_read::stream_documents(
            self.source.clone(),
            from.clone(),
            range,
            Sink::batches(tx),
            // Progress counts what was written, once.
            TaskProgress::none(),
        );
        // A range a killed run had begun may already be partly in the target: its
        // documents come back as duplicate keys, which are expected, not errors.
        let ins = self.loader.insert(c, t, rx, resumed, task);
        let (read, ins) = tokio::join!(read, ins);
        let (read, ins) = match (read, ins) {
            (Ok(r), Ok(i)) => (r, i),
            // The reader stops with PipelineClosed when the inserts failed: report theirs.
            (Err(e), Err(ie)) if e.chain().any(|x| x.is::<crate::pipeline::PipelineClosed>()) => {
                return Err(ie)
            }
            (Err(e), _) => return Err(e.context(format!("reading {from} on the source"))),
            (_, Err(e)) => return Err(e),
        };
        if let Some(u) = &unit {
            self.loader.state.set(u, NsState::Done).await?;
        }
        Ok((read.docs, ins))
    }
}
