//! Applying a dump's oplog after the data load, with mongorestore --oplogReplay's rules:
//! no-ops, internal namespaces and index-build bookkeeping are skipped; transactions are
//! applied at their commit (a prepared one only at `commitTransaction`, never an aborted or
//! unfinished one); collection UUIDs are stripped (the restored collections have new ones);
//! an int32 `t` (older tools wrote it so) becomes the int64 the server requires; namespaces
//! are filtered and renamed like the data. Index commands change the `IndexCatalog` built
//! after the replay; every other command the server logs is run in the way that works on
//! 6.0 (some through `applyOps`, some as the command itself), and counted.
//!
//! The same walk runs twice: first without a server (`Replayer::plan`), before anything
//! is written, so an entry this restore cannot carry (an unknown command, a rename across
//! the --ns-include boundary) is refused up front, and the dry run can say what the replay
//! would do; then for real, after the data.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use anyhow::{anyhow, bail, Context, Result};
use mongodb::bson::{doc, Bson, Document, Timestamp};
use mongodb::Client;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::dump::bson_stream;
use crate::namespace::{Filter, Namespace, Renamer};
use crate::restore::index_catalog::IndexCatalog;
use crate::restore::oplog_txn::{self, TxnBuffer};

const IGNORED_OPS: [&str; 5] = ["n", "cd", "ci", "cu", "km"];
/// Bookkeeping the target's own replication recreates, and checks that change no data.
const IGNORED_COMMANDS: [&str; 5] = [
    "startIndexBuild",
    "abortIndexBuild",
    "setMultikeyMetadata",
    "dropIdent",
    "dbCheck",
];
/// CRUD ops applied per applyOps command.
const APPLY_BATCH: usize = 500;

/// What a replay did (or, planned, would do).
#[derive(Debug, Default, Clone, Serialize)]
pub struct ReplayStats {
    /// Top-level entries read (up to the limit).
    pub read: u64,
    /// Operations applied: CRUD ops (also inside transactions) and commands.
    pub applied: u64,
    pub skipped: u64,
    #[serde(serialize_with = "ser_ts")]
    pub first: Option<Timestamp>,
    #[serde(serialize_with = "ser_ts")]
    pub last: Option<Timestamp>,
    /// The first entry at or past --oplog-limit, where the replay stopped.
    #[serde(serialize_with = "ser_ts")]
    pub stopped_at: Option<Timestamp>,
    pub inserts: u64,
    pub updates: u64,
    pub deletes: u64,
    /// Commands applied, by name (index commands: applied to the indexes built after).
    pub commands: BTreeMap<String, u64>,
    pub transactions_committed: u64,
    pub transactions_aborted: u64,
    /// Begun or prepared, never committed within the oplog: not applied.
    pub transactions_unfinished: u64,
}

fn ser_ts<S: serde::Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => serde_json::json!({ "t": t.time, "i": t.increment }).serialize(s),
        None => s.serialize_none(),
    }
}

/// `SECONDS:ORDINAL (UTC time)`.
pub fn show_ts(t: Timestamp) -> String {
    let when = chrono::DateTime::from_timestamp(t.time as i64, 0)
        .map(|d| d.format(" (%Y-%m-%d %H:%M:%S UTC)").to_string())
        .unwrap_or_default();
    format!("{}:{}{when}", t.time, t.increment)
}

impl ReplayStats {
    /// One line for people: how many entries, from when to when, what kinds.
    pub fn summary(&self, verb: &str) -> String {
        let span = match (self.first, self.last) {
            (Some(a), Some(b)) => format!(" from {} to {}", show_ts(a), show_ts(b)),
            _ => String::new(),
        };
        let mut parts = vec![format!(
            "{} inserts, {} updates, {} deletes",
            self.inserts, self.updates, self.deletes
        )];
        if !self.commands.is_empty() {
            parts.push(format!(
                "commands: {}",
                self.commands
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        parts.push(format!(
            "transactions: {} committed, {} aborted, {} unfinished (not applied)",
            self.transactions_committed, self.transactions_aborted, self.transactions_unfinished
        ));
        let stop = self
            .stopped_at
            .map(|t| format!("; stops at {} (--oplog-limit)", show_ts(t)))
            .unwrap_or_default();
        format!(
            "oplog replay: {} entries{span} {verb}, {} operations applied, {} skipped; {}{stop}",
            self.read,
            self.applied,
            self.skipped,
            parts.join("; ")
        )
    }
}

pub struct Replayer<'a> {
    /// None: plan only (nothing is sent anywhere).
    client: Option<&'a Client>,
    filter: &'a Filter,
    renamer: &'a Renamer,
    /// No --ns-include/--ns-exclude/--ns-from: a dropDatabase drops the target database.
    whole: bool,
    limit: Option<Timestamp>,
    pending: Vec<(String, Document)>,
    txns: TxnBuffer,
    pub catalog: IndexCatalog,
    /// Source namespaces known to exist (the dump's, and those the oplog creates).
    known: BTreeSet<Namespace>,
    /// The current top-level entry, for messages.
    position: u64,
    pub stats: ReplayStats,
    /// --preserve-uuid: a `create` entry's collection gets the entry's UUID (`ui`).
    preserve_uuid: bool,
}

/// Read oplog entries from a blocking reader into a bounded channel.
pub fn spawn_reader<R: Read + Send + 'static>(
    r: R,
    what: String,
) -> (
    mpsc::Receiver<Document>,
    tokio::task::JoinHandle<Result<()>>,
) {
    let (tx, rx) = mpsc::channel(1024);
    let h = tokio::task::spawn_blocking(move || {
        let mut n = 0u64;
        bson_stream::walk(r, &what, |d| {
            n += 1;
            let d: Document = d
                .try_into()
                .with_context(|| format!("{what}: oplog entry #{n} is not valid BSON"))?;
            tx.blocking_send(d)
                .map_err(|_| crate::pipeline::PipelineClosed)?;
            Ok(())
        })
        .map(|_| ())
    });
    (rx, h)
}

fn command_name(o: &Document) -> String {
    o.keys().next().cloned().unwrap_or_default()
}

/// `oplog entry #12 (ts 1700000000:3 (…), u on shop.orders)`.
fn label(position: u64, entry: &Document) -> String {
    let ts = entry
        .get_timestamp("ts")
        .map(|t| format!("ts {}, ", show_ts(t)))
        .unwrap_or_default();
    let op = entry.get_str("op").unwrap_or("?");
    let ns = entry.get_str("ns").unwrap_or("?");
    let what = if op == "c" {
        format!(
            "command {} on {ns}",
            entry
                .get_document("o")
                .map(command_name)
                .unwrap_or_default()
        )
    } else {
        format!("{op} on {ns}")
    };
    format!("oplog entry #{position} ({ts}{what})")
}

/// Strip what is meaningless on the target and normalise what the server insists on.
fn normalise(entry: &mut Document) {
    entry.remove("ui");
    for k in ["t", "h"] {
        if let Some(Bson::Int32(v)) = entry.get(k) {
            let v = *v as i64;
            entry.insert(k, Bson::Int64(v));
        }
    }
}

fn skip_ns(ns: &str) -> bool {
    ns.starts_with("config.")
        || ns.starts_with("local.")
        || ns.starts_with("admin.system.")
        || ns.starts_with("__mdb_internal")
}

impl<'a> Replayer<'a> {
    pub fn new(
        client: Option<&'a Client>,
        filter: &'a Filter,
        renamer: &'a Renamer,
        whole: bool,
        limit: Option<Timestamp>,
        catalog: IndexCatalog,
        known: BTreeSet<Namespace>,
    ) -> Self {
        Replayer {
            client,
            filter,
            renamer,
            whole,
            limit,
            pending: Vec::new(),
            txns: TxnBuffer::default(),
            catalog,
            known,
            position: 0,
            stats: ReplayStats::default(),
            preserve_uuid: false,
        }
    }

    /// Create the collections of `create` entries with the UUIDs they record (restore
    /// --preserve-uuid, as mongorestore --preserveUUID keeps `ui`). Other entries still
    /// find their collection by name, which renames under --ns-from/--ns-to need.
    pub fn preserve_uuid(mut self, on: bool) -> Self {
        self.preserve_uuid = on;
        self
    }

    /// Apply (or plan) every entry from `rx`; stops at the first entry at or past the limit.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Document>) -> Result<Self> {
        while let Some(entry) = rx.recv().await {
            let ts = entry.get_timestamp("ts").ok();
            if let (Some(limit), Some(ts)) = (self.limit, ts) {
                if ts >= limit {
                    self.stats.stopped_at = Some(ts);
                    break;
                }
            }
            self.position += 1;
            self.stats.read += 1;
            if ts.is_some() {
                self.stats.first = self.stats.first.or(ts);
                self.stats.last = ts;
            }
            let what = label(self.position, &entry);
            self.handle(entry).await.map_err(|e| {
                let text = crate::mongo::errors::chain_text(&e);
                // A batch error already names the entry that failed.
                if text.starts_with("oplog entry #") {
                    anyhow!(text)
                } else {
                    anyhow!("{what}: {text}")
                }
            })?;
        }
        self.flush().await?;
        self.stats.transactions_committed = self.txns.committed;
        self.stats.transactions_aborted = self.txns.aborted;
        self.stats.transactions_unfinished = self.txns.unfinished();
        Ok(self)
    }

    /// The target of a source namespace, None when the selection leaves it out. A
    /// time-series collection's buckets are selected and renamed as the collection.
    fn route(&self, ns: &Namespace) -> Option<Namespace> {
        let coll = ns.without_buckets_prefix();
        if !self.filter.allows(&coll) {
            return None;
        }
        let mapped = self.renamer.map(&coll);
        Some(if coll != *ns {
            mapped.buckets()
        } else {
            mapped
        })
    }

    fn handle(&mut self, entry: Document) -> futures::future::BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let op = entry.get_str("op").unwrap_or("").to_string();
            let ns = entry.get_str("ns").unwrap_or("").to_string();
            if IGNORED_OPS.contains(&op.as_str()) || skip_ns(&ns) {
                self.stats.skipped += 1;
                return Ok(());
            }
            if op == "c" {
                let cmd = entry
                    .get_document("o")
                    .map(command_name)
                    .unwrap_or_default();
                if IGNORED_COMMANDS.contains(&cmd.as_str()) {
                    self.stats.skipped += 1;
                    return Ok(());
                }
            }
            if let Some((key, step)) = oplog_txn::classify(&entry) {
                for inner in self.txns.take(key, step, &entry) {
                    self.plain(inner).await?;
                }
                return Ok(());
            }
            self.plain(entry).await
        })
    }

    /// An entry outside any transaction (or one of a committed transaction's operations).
    fn plain(&mut self, mut entry: Document) -> futures::future::BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let ui = entry.get("ui").cloned();
            normalise(&mut entry);
            if let (true, Some(ui)) = (self.preserve_uuid, ui) {
                let creates = entry.get_str("op") == Ok("c")
                    && entry
                        .get_document("o")
                        .is_ok_and(|o| command_name(o) == "create");
                if creates {
                    entry.insert("ui", ui);
                }
            }
            let op = entry.get_str("op").unwrap_or("").to_string();
            let ns = entry.get_str("ns").unwrap_or("").to_string();
            if IGNORED_OPS.contains(&op.as_str()) || skip_ns(&ns) {
                self.stats.skipped += 1;
                return Ok(());
            }
            if op == "c" {
                return self.command(entry).await;
            }
            if !matches!(op.as_str(), "i" | "u" | "d") {
                bail!("unknown oplog operation '{op}': mongoshift does not know how to replay it; stop the replay before it with --oplog-limit")
            }
            let Some(source) = Namespace::parse(&ns) else {
                bail!("the entry's namespace '{ns}' is not db.collection")
            };
            let Some(target) = self.route(&source) else {
                self.stats.skipped += 1;
                return Ok(());
            };
            self.known.insert(source.without_buckets_prefix());
            match op.as_str() {
                "i" => self.stats.inserts += 1,
                "u" => self.stats.updates += 1,
                _ => self.stats.deletes += 1,
            }
            entry.insert("ns", target.to_string());
            let what = label(self.position, &entry);
            self.pending.push((what, entry));
            if self.pending.len() >= APPLY_BATCH {
                self.flush().await?;
            }
            Ok(())
        })
    }

    /// The collection a command names as its first value, routed.
    fn command_target(&self, db: &str, o: &Document) -> Result<(Namespace, Option<Namespace>)> {
        let coll = o
            .iter()
            .next()
            .and_then(|(_, v)| v.as_str())
            .ok_or_else(|| anyhow!("the command does not name its collection: {o}"))?;
        let source = Namespace::new(db, coll);
        let target = self.route(&source);
        Ok((source, target))
    }

    fn command(&mut self, entry: Document) -> futures::future::BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.command_inner(entry).await })
    }

    async fn command_inner(&mut self, entry: Document) -> Result<()> {
        self.flush().await?;
        let ns = entry.get_str("ns").unwrap_or("").to_string();
        let db = ns.split_once('.').map(|(d, _)| d).unwrap_or("").to_string();
        let mut o = entry.get_document("o").cloned().unwrap_or_default();
        let cmd = command_name(&o);
        match cmd.as_str() {
            "applyOps" => {
                // Not a transaction: its operations are entries of their own.
                let inner: Vec<Document> = o
                    .get_array("applyOps")
                    .map(|a| a.iter().filter_map(|b| b.as_document().cloned()).collect())
                    .unwrap_or_default();
                for i in inner {
                    self.handle(i).await?;
                }
                return Ok(());
            }
            "renameCollection" => return self.rename(&o).await,
            "dropDatabase" => return self.drop_database(&db).await,
            "upgradeDowngradeViewlessTimeseries" => bail!(
                "this oplog crosses a time-series format conversion (an FCV change between 8.x and 9.0), which cannot be replayed; restore up to before it with --oplog-limit"
            ),
            _ => {}
        }
        const KNOWN: [&str; 11] = [
            "create",
            "drop",
            "collMod",
            "createIndexes",
            "commitIndexBuild",
            "dropIndexes",
            "deleteIndexes",
            "dropIndex",
            "deleteIndex",
            "convertToCapped",
            "emptycapped",
        ];
        if !KNOWN.contains(&cmd.as_str()) {
            bail!("unknown oplog command '{cmd}': mongoshift does not know how to replay it, and will not skip it; stop the replay before this entry with --oplog-limit")
        }
        let (source, target) = self.command_target(&db, &o)?;
        let Some(t) = target else {
            self.stats.skipped += 1;
            return Ok(());
        };
        *self.stats.commands.entry(cmd.clone()).or_default() += 1;
        self.stats.applied += 1;
        match cmd.as_str() {
            "create" => {
                o.remove("recordIdsReplicated");
                o.insert("create", t.coll.clone());
                if let Ok(on) = o.get_str("viewOn") {
                    let mapped = self.renamer.map(&Namespace::new(&db, on));
                    if mapped.db != t.db {
                        bail!("the view {source} is renamed to {t} but its collection {db}.{on} to {mapped}, another database; a view cannot read across databases: rename both into one database");
                    }
                    o.insert("viewOn", mapped.coll);
                }
                let options: Document = o
                    .iter()
                    .filter(|(k, _)| k.as_str() != "create")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                self.catalog.created(&t, &options);
                self.known.insert(source);
                let Some(ui) = entry.get("ui").filter(|_| self.preserve_uuid) else {
                    return self.apply_command(&t.db, o, &[NAMESPACE_EXISTS]).await;
                };
                let Some(c) = self.client else { return Ok(()) };
                let op =
                    doc! { "op": "c", "ns": format!("{}.$cmd", t.db), "o": o, "ui": ui.clone() };
                apply_ops(c, vec![op])
                    .await
                    .or_else(|e| tolerate(e, &[NAMESPACE_EXISTS]))
            }
            "drop" => {
                self.catalog.drop_collection(&t);
                self.known.remove(&source);
                if let Some(c) = self.client {
                    c.database(&t.db)
                        .collection::<Document>(&t.coll)
                        .drop()
                        .await
                        .with_context(|| format!("dropping {t}"))?;
                }
                Ok(())
            }
            "createIndexes" => {
                let mut spec = o.clone();
                spec.remove("createIndexes");
                self.catalog.add(&t, spec);
                Ok(())
            }
            "commitIndexBuild" => {
                for spec in o
                    .get_array("indexes")
                    .map(|a| a.iter().filter_map(|b| b.as_document().cloned()).collect())
                    .unwrap_or_else(|_| Vec::<Document>::new())
                {
                    self.catalog.add(&t, spec);
                }
                Ok(())
            }
            "dropIndexes" | "deleteIndexes" | "dropIndex" | "deleteIndex" => {
                let index = o
                    .get("index")
                    .cloned()
                    .ok_or_else(|| anyhow!("{cmd} does not say which index: {o}"))?;
                self.catalog.drop_indexes(&t, &index)
            }
            "collMod" => {
                o.remove("noPadding");
                o.remove("usePowerOf2Sizes");
                if let Ok(change) = o.get_document("index").cloned() {
                    self.catalog.coll_mod(&t, &change)?;
                    o.remove("index");
                }
                if o.len() > 1 {
                    o.insert("collMod", t.coll.clone());
                    self.apply_command(&t.db, o, &[]).await?;
                }
                Ok(())
            }
            "convertToCapped" => {
                self.catalog.keep_only_id(&t);
                o.insert("convertToCapped", t.coll.clone());
                self.run_command(&t.db, o, &[NAMESPACE_NOT_FOUND]).await
            }
            // Removed from the server after 6.0 and a test command there; a capped
            // collection accepts deletes since 5.0, which empties it the same way.
            "emptycapped" => {
                if let Some(c) = self.client {
                    c.database(&t.db)
                        .collection::<Document>(&t.coll)
                        .delete_many(doc! {})
                        .await
                        .with_context(|| format!("emptying {t}"))?;
                }
                Ok(())
            }
            _ => unreachable!("KNOWN lists the commands handled above"),
        }
    }

    async fn rename(&mut self, o: &Document) -> Result<()> {
        let parse = |k: &str| {
            o.get_str(k)
                .ok()
                .and_then(Namespace::parse)
                .ok_or_else(|| anyhow!("renameCollection without a valid '{k}': {o}"))
        };
        let (from, to) = (parse("renameCollection")?, parse("to")?);
        let (tf, tt) = (self.route(&from), self.route(&to));
        let (tf, tt) = match (tf, tt) {
            (None, None) => {
                self.stats.skipped += 1;
                return Ok(());
            }
            (Some(tf), Some(tt)) => (tf, tt),
            (Some(_), None) | (None, Some(_)) => bail!(
                "renameCollection {from} → {to} crosses the namespaces selected with --ns-include/--ns-exclude, so the restored data would not be what the source held; select both namespaces or neither, or stop the replay before this entry with --oplog-limit"
            ),
        };
        *self
            .stats
            .commands
            .entry("renameCollection".into())
            .or_default() += 1;
        self.stats.applied += 1;
        self.known.remove(&from);
        self.known.insert(to.clone());
        self.catalog.rename(&tf, &tt);
        // dropTarget may hold the dropped collection's UUID, meaningless here: a flag.
        let drop_target = match o.get("dropTarget") {
            Some(Bson::Boolean(b)) => *b,
            Some(Bson::Binary(_)) => true,
            _ => false,
        };
        let mut cmd = doc! { "renameCollection": tf.to_string(), "to": tt.to_string(), "dropTarget": drop_target };
        if let Ok(st) = o.get_bool("stayTemp") {
            cmd.insert("stayTemp", st);
        }
        // As the server's own oplog application: a rename the dump already holds (its
        // source gone) is done.
        self.run_command("admin", cmd, &[NAMESPACE_NOT_FOUND]).await
    }

    async fn drop_database(&mut self, db: &str) -> Result<()> {
        *self
            .stats
            .commands
            .entry("dropDatabase".into())
            .or_default() += 1;
        self.stats.applied += 1;
        if self.whole {
            self.catalog.drop_database(db);
            self.known.retain(|n| n.db != db);
            if let Some(c) = self.client {
                c.database(db)
                    .drop()
                    .await
                    .with_context(|| format!("dropping the database {db}"))?;
            }
            return Ok(());
        }
        // With a selection or renames: drop what the selection restored of that database.
        let gone: Vec<Namespace> = self.known.iter().filter(|n| n.db == db).cloned().collect();
        for source in gone {
            self.known.remove(&source);
            if let Some(t) = self.route(&source) {
                self.catalog.drop_collection(&t);
                if let Some(c) = self.client {
                    c.database(&t.db)
                        .collection::<Document>(&t.coll)
                        .drop()
                        .await
                        .with_context(|| format!("dropping {t} (dropDatabase {db})"))?;
                }
            }
        }
        Ok(())
    }

    /// A command as an oplog entry through applyOps: what the server itself replays.
    /// `tolerated`: error codes that mean the dump already holds the command's effect.
    async fn apply_command(&mut self, db: &str, o: Document, tolerated: &[i32]) -> Result<()> {
        let Some(c) = self.client else { return Ok(()) };
        let entry = doc! { "op": "c", "ns": format!("{db}.$cmd"), "o": o };
        apply_ops(c, vec![entry])
            .await
            .or_else(|e| tolerate(e, tolerated))
    }

    async fn run_command(&mut self, db: &str, cmd: Document, tolerated: &[i32]) -> Result<()> {
        let Some(c) = self.client else { return Ok(()) };
        match c.database(db).run_command(cmd).await {
            Ok(_) => Ok(()),
            Err(e) => tolerate(e.into(), tolerated),
        }
    }

    async fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let ops = std::mem::take(&mut self.pending);
        self.stats.applied += ops.len() as u64;
        let Some(c) = self.client else { return Ok(()) };
        let batch: Vec<Document> = ops.iter().map(|(_, d)| d.clone()).collect();
        if let Err(e) = apply_ops(c, batch).await {
            // Name the entry: oplog application is idempotent, so the batch is re-applied
            // one entry at a time until the failing one answers.
            for (what, d) in ops {
                apply_ops(c, vec![d])
                    .await
                    .map_err(|e| anyhow!("{what}: {}", crate::mongo::errors::chain_text(&e)))?;
            }
            return Err(e.context("applying a batch of oplog entries"));
        }
        Ok(())
    }
}

const NAMESPACE_NOT_FOUND: i32 = 26;
const NAMESPACE_EXISTS: i32 = 48;

fn tolerate(e: anyhow::Error, codes: &[i32]) -> Result<()> {
    let code = e
        .chain()
        .find_map(|c| c.downcast_ref::<mongodb::error::Error>())
        .and_then(crate::mongo::errors::code);
    match code {
        Some(c) if codes.contains(&c) => Ok(()),
        _ => Err(e),
    }
}

async fn apply_ops(client: &Client, ops: Vec<Document>) -> Result<()> {
    let res = client
        .database("admin")
        .run_command(doc! { "applyOps": ops.into_iter().map(Bson::Document).collect::<Vec<_>>(), "bypassDocumentValidation": true })
        .await?;
    if let Ok(results) = res.get_array("results") {
        if results.iter().any(|r| r.as_bool() == Some(false)) {
            bail!(
                "the server did not apply it: {}",
                res.get_str("errmsg").unwrap_or("applyOps reported false")
            );
        }
    }
    Ok(())
}

/// `--oplog-limit` as mongorestore takes it: `SECONDS[:ORDINAL]`.
pub fn parse_limit(s: &str) -> Result<Timestamp> {
    let (t, i) = s.split_once(':').unwrap_or((s, "0"));
    let t: u32 = t.parse().map_err(|_| {
        crate::exit::usage(format!(
            "--oplog-limit '{s}' must be SECONDS[:ORDINAL], e.g. 1795325247:1"
        ))
    })?;
    let i: u32 = if i.is_empty() {
        0
    } else {
        i.parse()
            .map_err(|_| crate::exit::usage(format!("--oplog-limit '{s}' has a bad ordinal")))?
    };
    Ok(Timestamp {
        time: t,
        increment: i,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse() {
        assert_eq!(
            parse_limit("100:2").unwrap(),
            Timestamp {
                time: 100,
                increment: 2
            }
        );
        assert_eq!(
            parse_limit("100").unwrap(),
            Timestamp {
                time: 100,
                increment: 0
            }
        );
        assert!(parse_limit("x").is_err());
    }

    #[test]
    fn int32_terms_become_int64() {
        let mut e =
            doc! { "ts": Timestamp { time: 1, increment: 1 }, "t": 1i32, "op": "i", "ui": 1 };
        normalise(&mut e);
        assert_eq!(e.get("t"), Some(&Bson::Int64(1)));
        assert!(!e.contains_key("ui"));
        assert_eq!(e.keys().collect::<Vec<_>>(), ["ts", "t", "op"]);
    }

    async fn plan(
        entries: Vec<Document>,
        filter: &Filter,
        renamer: &Renamer,
    ) -> Result<ReplayStats> {
        let (tx, rx) = mpsc::channel(entries.len().max(1));
        for e in entries {
            tx.send(e).await.unwrap();
        }
        drop(tx);
        let r = Replayer::new(
            None,
            filter,
            renamer,
            true,
            None,
            IndexCatalog::default(),
            BTreeSet::new(),
        );
        Ok(r.run(rx).await?.stats)
    }

    #[tokio::test]
    async fn unknown_commands_and_renames_across_the_selection_are_refused() {
        let all = Filter::new(&[], &[]).unwrap();
        let none = Renamer::new(&[], &[]).unwrap();
        let e = plan(
            vec![doc! { "op": "c", "ns": "d.$cmd", "o": { "frobnicate": "c" } }],
            &all,
            &none,
        )
        .await
        .unwrap_err();
        assert!(
            e.to_string().contains("unknown oplog command 'frobnicate'"),
            "{e}"
        );
        let some = Filter::new(&["d.a".into()], &[]).unwrap();
        let e = plan(
            vec![doc! { "op": "c", "ns": "admin.$cmd", "o": { "renameCollection": "d.a", "to": "d.b" } }],
            &some,
            &none,
        )
        .await
        .unwrap_err();
        assert!(
            e.to_string().contains("crosses the namespaces selected"),
            "{e}"
        );
        assert!(e.to_string().starts_with("oplog entry #1 ("), "{e}");
    }
}
