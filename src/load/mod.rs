//! The target side of every load, shared by `restore` and `migrate`: create each collection
//! with its options, fill it from a queue of raw insert batches with parallel workers, build
//! its indexes with progress, check the count, create views, and keep the resume state.
//! Where the batches come from (a backup object, an archive, a live collection) is the
//! caller's business.

pub mod count;
pub mod lanes;
pub mod plan;
pub mod relax;
pub mod results;
pub mod state;

use std::collections::HashSet;
use std::time::Instant;

use anyhow::{Context, Result};
use mongodb::bson::Document;
use mongodb::Client;
use tokio::sync::mpsc;

use crate::mongo::namespaces::Kind;
use crate::mongo::raw_write::{self, Batch, InsertStats};
use crate::mongo::schema;
use crate::namespace::{Namespace, Renamer};
use crate::report::progress::TaskProgress;
pub use results::NsResult;
use state::{NsState, StateStore, Unit};

/// What is loaded into one target namespace: where it came from and how to create it.
#[derive(Debug, Clone)]
pub struct Collection {
    pub ns: Namespace,
    pub kind: Kind,
    pub options: Document,
    pub indexes: Vec<Document>,
    /// Documents the source says it holds (a manifest), if it says.
    pub expected_docs: Option<u64>,
    /// Create the collection with this UUID (32 hex digits; restore --preserve-uuid).
    pub uuid: Option<String>,
}

impl Collection {
    pub fn is_capped(&self) -> bool {
        self.options.get_bool("capped").unwrap_or(false)
    }
}

/// How a load treats the target; one per command run.
pub struct Loader {
    pub client: Client,
    pub ui: crate::report::Ui,
    pub state: StateStore,
    /// Targets a previous run left half-loaded (read once from the state, up front).
    pub reloading: HashSet<Namespace>,
    pub drop: bool,
    pub append: bool,
    pub no_indexes: bool,
    /// Insert workers per collection.
    pub workers: usize,
    /// A tail will follow this load: build TTL and unique indexes relaxed (see `relax`).
    pub relax: bool,
    /// Which namespaces insert at once (`--parallel`).
    pub lanes: lanes::Lanes,
    /// How the target's count after the data is taken.
    pub counter: count::Counter,
    /// `--max-rate`: one schedule for every insert of this load.
    pub throttle: Option<std::sync::Arc<crate::pipeline::throttle::Throttle>>,
}

impl Loader {
    /// Drop (when asked or when reloading), create with the source's options, mark loading.
    /// True when this run created the collection (so a failure before any document landed
    /// can remove it again instead of leaving an empty collection behind).
    pub async fn prepare(&self, c: &Collection, t: &Namespace) -> Result<bool> {
        let reload = self.reloading.contains(t);
        let unit = Unit {
            ns: t.clone(),
            part: None,
        };
        let (marked, ()) = tokio::join!(
            self.state.set(&unit, NsState::Loading),
            self.counter.begin(&self.client)
        );
        marked?;
        if reload {
            // A killed run's last insertMany may still be running on the server; it
            // would recreate the collection after our drop. Stop it first.
            schema::kill_writes(&self.client, &c.kind.data_ns(t)).await?;
        }
        let dropped = self.drop || reload;
        if dropped {
            self.client
                .database(&t.db)
                .collection::<Document>(&t.coll)
                .drop()
                .await
                .with_context(|| format!("dropping {t}"))?;
        }
        // Just dropped, it is not there: one round trip less per namespace.
        if !dropped && schema::exists(&self.client, t).await? {
            return Ok(false);
        }
        let mut options = c.options.clone();
        if self.relax {
            let (o, r) = relax::options(t, &options);
            options = o;
            if let Some(r) = r {
                self.state.save_relaxed(&r).await?;
            }
        }
        match &c.uuid {
            Some(uuid) => {
                let id_index = c.indexes.iter().find(|i| i.get_str("name") == Ok("_id_"));
                schema::create_with_uuid(&self.client, t, &options, uuid, id_index).await?
            }
            None => schema::create(&self.client, t, &options).await?,
        }
        self.counter.created(&c.kind.data_ns(t));
        Ok(true)
    }

    /// Insert the batches that arrive on `rx` into `t` (a time-series collection's buckets
    /// into its bucket collection). `tolerate_duplicates` counts duplicate-key rejections
    /// instead of failing: for `--append`, and for redoing a part a killed run had begun.
    /// A capped collection's order is its content (`$natural`, what ages out first), so it
    /// is loaded by one writer in the order the batches arrive.
    pub fn insert(
        &self,
        c: &Collection,
        t: &Namespace,
        rx: mpsc::Receiver<Batch>,
        tolerate_duplicates: bool,
        task: TaskProgress,
    ) -> impl std::future::Future<Output = Result<InsertStats>> + '_ {
        let workers = if c.is_capped() { 1 } else { self.workers };
        let ns = c.kind.data_ns(t);
        let tolerate = self.append || tolerate_duplicates;
        // A time-series dump can hold buckets the server refuses (written to
        // system.buckets directly, or by an older server): every bucket it accepts is
        // restored and each refused one reported (see `finish`), as mongorestore restores
        // the valid ones — but the namespace fails, it is not the source's collection.
        let keep_refused = c.kind == Kind::Timeseries;
        async move {
            let how = raw_write::Writers {
                workers,
                allow_duplicates: tolerate,
                keep_refused,
                throttle: self.throttle.clone(),
            };
            raw_write::insert_all(&self.client, &ns, rx, how, task).await
        }
    }

    /// After the data: build the indexes, count what the target holds, compare it with what
    /// was read (and with what the source said it holds), and record the namespace as done.
    pub async fn finish(
        &self,
        c: &Collection,
        t: &Namespace,
        read_docs: u64,
        ins: InsertStats,
        start: Instant,
    ) -> NsResult {
        self.finish_resumable(c, t, read_docs, ins, start, false)
            .await
    }

    /// `finish` for a load that may continue an interrupted one (`resumed`): then `read_docs`
    /// is what this run read, the documents the earlier run had copied are reported as
    /// `kept`, and the check is the target's count against the source's alone.
    pub async fn finish_resumable(
        &self,
        c: &Collection,
        t: &Namespace,
        read_docs: u64,
        ins: InsertStats,
        start: Instant,
        resumed: bool,
    ) -> NsResult {
        let mut r = NsResult {
            source: c.ns.to_string(),
            target: t.to_string(),
            read: read_docs,
            inserted: ins.inserted,
            duplicates: ins.duplicates,
            expected: c.expected_docs,
            ok: true,
            refused: ins.refused.clone(),
            indexes: schema::implicit(&c.indexes),
            ..Default::default()
        };
        if !self.no_indexes {
            let build = async {
                let specs = schema::buildable(&c.indexes);
                if self.relax {
                    relax::build(&self.client, t, specs, &self.state).await
                } else {
                    schema::create_indexes(&self.client, t, specs).await
                }
            };
            let built = tokio::select! {
                r = build => r,
                _ = schema::watch_build(&self.ui, &self.client, &t.db, &t.coll) => unreachable!("the watcher never ends"),
            };
            match built {
                Ok(k) => r.indexes += k,
                Err(e) => {
                    r.ok = false;
                    r.problem = Some(index_failure(t, &e));
                }
            }
        }
        let expected = c.expected_docs.unwrap_or(read_docs);
        // A collection this run created holds what this run inserted, if all went well.
        r.target_count = self
            .counter
            .count(&self.client, &c.kind.data_ns(t), ins.inserted)
            .await
            .map_or(0, |(n, _)| n);
        if resumed {
            r.kept = r.target_count.saturating_sub(ins.inserted);
        }
        if ins.refused_count > 0 {
            // Refused documents fail the namespace whatever else happened; the indexes were
            // built over what the server accepted, and the count must say the rest landed.
            let landed = read_docs.saturating_sub(ins.refused_count);
            let listed = ins
                .refused
                .iter()
                .take(5)
                .map(|x| format!("_id {} (code {}: {})", x.id, x.code, x.reason))
                .collect::<Vec<_>>()
                .join("; ");
            let more = if ins.refused_count > 5 {
                format!(
                    "; {} more in the JSON result (--output json)",
                    ins.refused_count - 5
                )
            } else {
                String::new()
            };
            let what = if c.kind == Kind::Timeseries {
                "buckets"
            } else {
                "documents"
            };
            let check = if r.target_count == landed {
                format!("the other {landed} are restored")
            } else {
                format!("{t} holds {}, expected the other {landed}", r.target_count)
            };
            let problem = r
                .problem
                .take()
                .map(|p| format!(" Also: {p}"))
                .unwrap_or_default();
            r.ok = false;
            r.problem =
                Some(format!(
                "the server refused {} of the {read_docs} {what} read: {listed}{more}; {check}{}. \
                 They are not valid {what} for this server (written to system.buckets by hand or \
                 by an older server): repair or remove them in the source{problem}",
                ins.refused_count,
                if r.indexes > 0 { ", with their indexes" } else { "" },
            ));
        }
        if r.ok {
            if resumed {
                // Only the target's count can tell (a live copy: nothing yet; the tail and
                // `verify` after it are the check).
                if c.expected_docs.is_some() && r.target_count != expected {
                    r.ok = false;
                    r.problem = Some(format!(
                        "count mismatch: {t} holds {}, expected {expected}",
                        r.target_count
                    ));
                }
            } else if read_docs != expected {
                r.ok = false;
                r.problem = Some(format!(
                    "count mismatch: read {read_docs} documents, the source records {expected}"
                ));
            } else if self.append {
                if ins.inserted + ins.duplicates != read_docs {
                    r.ok = false;
                    r.problem = Some(format!(
                        "count mismatch: read {read_docs}, inserted {}, duplicates {}",
                        ins.inserted, ins.duplicates
                    ));
                }
            } else if r.target_count != expected {
                r.ok = false;
                r.problem = Some(format!(
                    "count mismatch: {t} holds {}, expected {expected}",
                    r.target_count
                ));
            }
        }
        if r.ok {
            let done = Unit {
                ns: t.clone(),
                part: None,
            };
            if let Err(e) = self.state.set(&done, NsState::Done).await {
                r.ok = false;
                r.problem = Some(format!("{e:#}"));
            }
        }
        r.seconds = start.elapsed().as_secs_f64();
        r
    }

    /// The result of a namespace whose load failed before it could be checked.
    /// (`restore` adds what was read and what the target holds; see its `Runner::failed`.)
    pub fn failed(c: &Collection, t: &Namespace, e: anyhow::Error) -> NsResult {
        NsResult {
            source: c.ns.to_string(),
            target: t.to_string(),
            expected: c.expected_docs,
            ok: false,
            problem: Some(crate::redact::scrub(&crate::mongo::errors::chain_text(&e))),
            ..Default::default()
        }
    }

    /// Create a view (after its collections), pointing at the renamed collection when its
    /// database was renamed.
    pub async fn view(&self, c: &Collection, t: &Namespace, renamer: &Renamer) -> NsResult {
        let outcome = async {
            if self.drop {
                self.client
                    .database(&t.db)
                    .collection::<Document>(&t.coll)
                    .drop()
                    .await?;
            }
            let mut options = c.options.clone();
            if let Ok(on) = c.options.get_str("viewOn") {
                let mapped = renamer.map(&Namespace::new(&c.ns.db, on));
                if mapped.db == t.db {
                    options.insert("viewOn", mapped.coll);
                }
            }
            if !schema::exists(&self.client, t).await? {
                schema::create(&self.client, t, &options).await?;
            }
            anyhow::Ok(())
        }
        .await;
        match outcome {
            Ok(()) => NsResult {
                source: c.ns.to_string(),
                target: t.to_string(),
                ok: true,
                ..Default::default()
            },
            Err(e) => Self::failed(c, t, e),
        }
    }
}

/// A failed index build as one readable paragraph: the namespace, the index, the server's
/// reason without its build UUIDs, and what to do. Starts with "index build failed" (the
/// verdict counts it as a failed check).
pub fn index_failure(t: &Namespace, e: &anyhow::Error) -> String {
    let text = crate::redact::scrub(&crate::mongo::errors::chain_text(e));
    // "Index build failed: <uuid>: Collection db.c ( <uuid> ) :: caused by :: E11000 …":
    // the cause is the part after the last "caused by".
    let reason = match text.rsplit_once(":: caused by :: ") {
        Some((head, cause)) => {
            let head = head.split(": Index build failed").next().unwrap_or(head);
            format!("{head}: {cause}")
        }
        None => text,
    };
    let fix = if reason.contains("E11000") || reason.contains("DuplicateKey") {
        format!(
            "The documents are in {t}, this index is not: remove the duplicates, then create it \
             (or load with --no-indexes). A dump taken without --oplog while the source was \
             written can hold such duplicates: dump with --oplog and restore with --oplog-replay"
        )
    } else {
        format!(
            "The documents are in {t}, this index is not: fix its spec (--convert-legacy-indexes \
             converts specs old servers accepted), or load with --no-indexes"
        )
    };
    format!("index build failed: {reason}. {fix}")
}
