//! Applying a dump's oplog after the data load (mongorestore --oplogReplay's rules):
//! no-ops and internal namespaces are skipped, index builds become createIndexes,
//! transactions are applied when they commit, collection UUIDs are stripped
//! (the restored collections have new ones), namespaces are renamed like the data.

use std::collections::HashMap;
use std::io::Read;

use anyhow::{bail, Context, Result};
use mongodb::bson::{doc, Bson, Document, Timestamp};
use mongodb::Client;
use tokio::sync::mpsc;

use crate::dump::bson_stream;
use crate::namespace::{Filter, Namespace, Renamer};

const IGNORED_OPS: [&str; 5] = ["n", "cd", "ci", "cu", "km"];
const IGNORED_COMMANDS: [&str; 3] = ["startIndexBuild", "abortIndexBuild", "setMultikeyMetadata"];
/// CRUD ops applied per applyOps command.
const APPLY_BATCH: usize = 500;

#[derive(Debug, Default, Clone, Copy)]
pub struct ReplayStats {
    pub read: u64,
    pub applied: u64,
    pub skipped: u64,
    pub last: Option<Timestamp>,
}

pub struct Replayer<'a> {
    client: &'a Client,
    filter: &'a Filter,
    renamer: &'a Renamer,
    limit: Option<Timestamp>,
    pending: Vec<Document>,
    txns: HashMap<String, Vec<Document>>,
    pub stats: ReplayStats,
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
        bson_stream::walk(r, &what, |d| {
            let d: Document = d.try_into().context("decoding an oplog entry")?;
            tx.blocking_send(d)
                .map_err(|_| crate::pipeline::PipelineClosed)?;
            Ok(())
        })
        .map(|_| ())
    });
    (rx, h)
}

impl<'a> Replayer<'a> {
    pub fn new(
        client: &'a Client,
        filter: &'a Filter,
        renamer: &'a Renamer,
        limit: Option<Timestamp>,
    ) -> Self {
        Replayer {
            client,
            filter,
            renamer,
            limit,
            pending: Vec::new(),
            txns: HashMap::new(),
            stats: ReplayStats::default(),
        }
    }

    /// Apply every entry from `rx`; stops at the first entry at or past the limit.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Document>) -> Result<ReplayStats> {
        while let Some(entry) = rx.recv().await {
            self.stats.read += 1;
            if let (Some(limit), Ok(ts)) = (self.limit, entry.get_timestamp("ts")) {
                if ts >= limit {
                    break;
                }
            }
            if let Ok(ts) = entry.get_timestamp("ts") {
                self.stats.last = Some(ts);
            }
            self.handle(entry).await?;
        }
        self.flush().await?;
        Ok(self.stats)
    }

    fn target(&self, ns: &str, entry: &Document) -> Option<Namespace> {
        let parsed = Namespace::parse(ns)?;
        // Commands run on db.$cmd; the collection they act on is the command's first value.
        if parsed.coll == "$cmd" {
            let coll = entry
                .get_document("o")
                .ok()?
                .iter()
                .next()?
                .1
                .as_str()?
                .to_string();
            return Some(Namespace::new(parsed.db, coll));
        }
        Some(parsed)
    }

    fn skip_ns(ns: &str) -> bool {
        ns.starts_with("config.")
            || ns.starts_with("local.")
            || ns.starts_with("admin.system.")
            || ns.starts_with("__mdb_internal")
    }

    fn handle(&mut self, mut entry: Document) -> futures::future::BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let op = entry.get_str("op").unwrap_or("").to_string();
            let ns = entry.get_str("ns").unwrap_or("").to_string();
            if IGNORED_OPS.contains(&op.as_str()) || Self::skip_ns(&ns) {
                self.stats.skipped += 1;
                return Ok(());
            }
            if op == "c" {
                let o = entry.get_document("o").cloned().unwrap_or_default();
                let cmd = o.keys().next().cloned().unwrap_or_default();
                if IGNORED_COMMANDS.contains(&cmd.as_str()) {
                    self.stats.skipped += 1;
                    return Ok(());
                }
                if cmd == "applyOps" {
                    let inner: Vec<Document> = o
                        .get_array("applyOps")
                        .map(|a| a.iter().filter_map(|b| b.as_document().cloned()).collect())
                        .unwrap_or_default();
                    let txn = txn_key(&entry);
                    if o.get_bool("partialTxn").unwrap_or(false)
                        || entry.get_bool("partialTxn").unwrap_or(false)
                    {
                        self.txns.entry(txn).or_default().extend(inner);
                        return Ok(());
                    }
                    let mut ops = self.txns.remove(&txn).unwrap_or_default();
                    ops.extend(inner);
                    for i in ops {
                        self.handle(i).await?;
                    }
                    return Ok(());
                }
                if cmd == "commitTransaction" {
                    for i in self.txns.remove(&txn_key(&entry)).unwrap_or_default() {
                        self.handle(i).await?;
                    }
                    return Ok(());
                }
                if cmd == "abortTransaction" {
                    self.txns.remove(&txn_key(&entry));
                    return Ok(());
                }
                let Some(target) = self.target(&ns, &entry) else {
                    return Ok(());
                };
                if !self.filter.allows(&target) {
                    self.stats.skipped += 1;
                    return Ok(());
                }
                let mapped = self.renamer.map(&target);
                self.flush().await?;
                if cmd == "createIndexes" || cmd == "commitIndexBuild" {
                    let specs: Vec<Document> = if cmd == "createIndexes" {
                        let mut spec = o.clone();
                        spec.remove("createIndexes");
                        vec![spec]
                    } else {
                        o.get_array("indexes")
                            .map(|a| a.iter().filter_map(|b| b.as_document().cloned()).collect())
                            .unwrap_or_default()
                    };
                    crate::mongo::schema::create_indexes(self.client, &mapped, specs).await?;
                    self.stats.applied += 1;
                    return Ok(());
                }
                let mut o = o;
                if let Some((first, _)) = o.iter().next().map(|(k, v)| (k.clone(), v.clone())) {
                    o.insert(first, Bson::String(mapped.coll.clone()));
                }
                entry.insert("o", o);
                entry.insert("ns", format!("{}.$cmd", mapped.db));
                entry.remove("ui");
                self.apply(vec![entry]).await?;
                return Ok(());
            }
            let Some(target) = Namespace::parse(&ns) else {
                return Ok(());
            };
            if !self.filter.allows(&target) {
                self.stats.skipped += 1;
                return Ok(());
            }
            entry.insert("ns", self.renamer.map(&target).to_string());
            entry.remove("ui");
            self.pending.push(entry);
            if self.pending.len() >= APPLY_BATCH {
                self.flush().await?;
            }
            Ok(())
        })
    }

    async fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let ops = std::mem::take(&mut self.pending);
        self.apply(ops).await
    }

    async fn apply(&mut self, ops: Vec<Document>) -> Result<()> {
        let n = ops.len() as u64;
        let first = ops.first().and_then(|o| o.get_timestamp("ts").ok());
        let res = self
            .client
            .database("admin")
            .run_command(doc! { "applyOps": ops.into_iter().map(Bson::Document).collect::<Vec<_>>(), "bypassDocumentValidation": true })
            .await
            .with_context(|| format!("applying oplog entries from {first:?}"))?;
        if let Ok(results) = res.get_array("results") {
            if results.iter().any(|r| r.as_bool() == Some(false)) {
                bail!("applyOps reported a failed oplog entry near {first:?}: {res}");
            }
        }
        self.stats.applied += n;
        Ok(())
    }
}

fn txn_key(entry: &Document) -> String {
    format!(
        "{:?}/{:?}",
        entry.get_document("lsid").ok().and_then(|l| l.get("id")),
        entry.get("txnNumber")
    )
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
}
