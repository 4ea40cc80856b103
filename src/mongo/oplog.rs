//! The replica set's oplog: noting a position, and copying entries from it as raw BSON.

use anyhow::{Context, Result};
use bytes::Bytes;
use futures::StreamExt;
use mongodb::bson::{doc, Bson, Document, Regex, Timestamp};
use mongodb::options::Hint;
use mongodb::Client;
use tokio::sync::mpsc;

use crate::pipeline::ChunkSender;
use crate::report::progress::TaskProgress;

fn oplog(client: &Client) -> mongodb::Collection<Document> {
    client.database("local").collection("oplog.rs")
}

async fn edge(client: &Client, direction: i32) -> Result<Timestamp> {
    let entry = oplog(client)
        .find_one(doc! {})
        .sort(doc! { "$natural": direction })
        .projection(doc! { "ts": 1 })
        .await
        .context("reading local.oplog.rs (does the user have read access to the local database?)")?
        .context("the oplog is empty")?;
    entry
        .get_timestamp("ts")
        .context("oplog entry without a ts field")
}

/// The newest entry's timestamp.
pub async fn latest(client: &Client) -> Result<Timestamp> {
    edge(client, -1).await
}

/// The oldest entry still in the (capped) oplog.
pub async fn oldest(client: &Client) -> Result<Timestamp> {
    edge(client, 1).await
}

/// The newest majority-committed write, from `hello` (no privileges needed): what a
/// change stream (which returns only majority-committed changes) can have reached.
pub async fn majority_time(client: &Client) -> Result<Timestamp> {
    super::Hello::ask(client)
        .await?
        .majority_time()
        .context("no last majority write reported (is it a replica set?)")
}

/// Where the oplog's history begins, if it has lost any: the oldest entry's timestamp when
/// the capped oplog has dropped entries, None while it still starts at the replica set's
/// initiation (nothing has been lost yet, however old a position is).
pub async fn history_starts(client: &Client) -> Result<Option<Timestamp>> {
    let first = oplog(client)
        .find_one(doc! {})
        .sort(doc! { "$natural": 1 })
        .projection(doc! { "ts": 1, "o.msg": 1 })
        .await
        .context("reading local.oplog.rs (does the user have read access to the local database?)")?
        .context("the oplog is empty")?;
    let initiation = first
        .get_document("o")
        .ok()
        .and_then(|o| o.get_str("msg").ok())
        == Some("initiating set");
    Ok((!initiation)
        .then(|| first.get_timestamp("ts").ok())
        .flatten())
}

#[derive(Debug, Clone, Copy)]
pub struct OplogStats {
    pub entries: u64,
    pub bytes: u64,
    pub last: Option<Timestamp>,
}

/// Which oplog entries a point-in-time backup keeps. Anything more would let stock
/// `mongorestore --oplogReplay` write a partial history into databases that were not
/// backed up; anything less would lose writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OplogScope {
    /// Every user database, including any created while the backup runs (no --db, no filter).
    AllUserDatabases,
    /// These databases only.
    Databases(Vec<String>),
}

impl OplogScope {
    /// The find filter over local.oplog.rs from `start` on.
    pub fn filter(&self, start: Timestamp) -> Document {
        let pattern = match self {
            // Not mongoshift's state either: it is not the application's data.
            OplogScope::AllUserDatabases => format!(
                "^({}|{})\\.",
                crate::mongo::namespaces::SYSTEM_DATABASES.join("|"),
                crate::load::state::DB
            ),
            OplogScope::Databases(dbs) => format!(
                "^({})\\.",
                dbs.iter()
                    .map(|d| regex_escape(d))
                    .collect::<Vec<_>>()
                    .join("|")
            ),
        };
        let re = Regex {
            pattern,
            options: String::new(),
        };
        // What a namespace must satisfy: match our databases, or not match the system ones.
        let ns_ok = match self {
            OplogScope::AllUserDatabases => Bson::Document(doc! { "$not": re, "$ne": "" }),
            OplogScope::Databases(_) => Bson::RegularExpression(re),
        };
        // Transactions are logged as admin.$cmd applyOps: kept when one of their operations
        // is in scope. Other admin.$cmd entries (commit/abort of prepared transactions) carry
        // no namespace to judge by and are kept.
        doc! {
            "ts": { "$gte": start },
            "$or": [
                { "ns": ns_ok.clone() },
                { "ns": "admin.$cmd", "o.applyOps": { "$elemMatch": { "ns": ns_ok } } },
                { "ns": "admin.$cmd", "o.applyOps": { "$exists": false } },
            ],
        }
    }
}

/// Copy every entry from `start` (inclusive, as mongodump does; replay is idempotent)
/// that `scope` keeps.
pub async fn stream_entries(
    client: Client,
    start: Timestamp,
    scope: OplogScope,
    tx: mpsc::Sender<Bytes>,
    progress: TaskProgress,
) -> Result<OplogStats> {
    let filter = scope.filter(start);
    let mut cursor = oplog(&client)
        .find(filter)
        .hint(Hint::Keys(doc! { "$natural": 1 }))
        .batch()
        .await
        .context("opening a cursor on local.oplog.rs")?;
    let mut stats = OplogStats {
        entries: 0,
        bytes: 0,
        last: None,
    };
    let mut out = ChunkSender::new(tx);
    while let Some(batch) = cursor.next().await {
        let batch = batch.context("reading local.oplog.rs")?;
        let (mut n, mut b) = (0, 0);
        for elem in batch
            .doc_slices()
            .context("reading a batch of local.oplog.rs")?
        {
            let entry = elem?.as_document().context("non-document in the oplog")?;
            // One field read per entry, not a decode of the entry.
            stats.last = Some(
                entry
                    .get_timestamp("ts")
                    .context("oplog entry without ts")?,
            );
            out.push(entry.as_bytes()).await?;
            n += 1;
            b += entry.as_bytes().len() as u64;
        }
        stats.entries += n;
        stats.bytes += b;
        progress.add(n, b);
    }
    out.finish().await?;
    Ok(stats)
}

pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether the server keeps an oplog: a replica set member or a mongos (a standalone has
/// none, and cannot block user writes either).
pub async fn has_oplog(client: &Client) -> Result<bool> {
    let kind = super::Hello::ask(client).await?.kind();
    Ok(kind != super::hello::Kind::Standalone)
}

/// The user writes (inserts, updates, deletes, also inside transactions) recorded in the
/// oplog after `after`, per namespace, in `dbs` (every user database when empty). How
/// `rollback` tells what would be left behind on the cluster it leaves.
pub async fn writes_since(
    client: &Client,
    after: Timestamp,
    dbs: &[String],
) -> Result<Vec<(String, u64)>> {
    use futures::TryStreamExt;
    let ns = if dbs.is_empty() {
        "^(?!(admin|config|local|mongoshift)\\.)".to_string()
    } else {
        let names: Vec<String> = dbs.iter().map(|d| regex_escape(d)).collect();
        format!("^({})\\.", names.join("|"))
    };
    let crud = doc! { "$in": ["i", "u", "d"] };
    let rows: Vec<Document> = oplog(client)
        .aggregate(vec![
            doc! { "$match": { "ts": { "$gt": after }, "$or": [
                { "op": crud.clone(), "ns": { "$regex": &ns } },
                { "op": "c", "o.applyOps": { "$exists": true } },
            ] } },
            doc! { "$project": { "ops": { "$cond": [
                { "$eq": ["$op", "c"] }, "$o.applyOps", [ { "op": "$op", "ns": "$ns" } ]
            ] } } },
            doc! { "$unwind": "$ops" },
            doc! { "$match": { "ops.op": crud, "ops.ns": { "$regex": &ns } } },
            doc! { "$group": { "_id": "$ops.ns", "n": { "$sum": 1 } } },
            doc! { "$sort": { "_id": 1 } },
        ])
        .await
        .context("reading the oplog (does the user have read access to the local database?)")?
        .try_collect()
        .await
        .context("reading the oplog")?;
    Ok(rows
        .into_iter()
        .map(|d| {
            let n = d
                .get_i32("n")
                .map(i64::from)
                .or_else(|_| d.get_i64("n"))
                .unwrap_or(0);
            (d.get_str("_id").unwrap_or_default().to_string(), n as u64)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_filter_by_database_and_by_transaction_contents() {
        let start = Timestamp {
            time: 1,
            increment: 0,
        };
        let f = OplogScope::Databases(vec!["a.b".into(), "c".into()]).filter(start);
        let text = format!("{f}");
        assert!(text.contains(r#"^(a\.b|c)\."#), "{text}");
        assert!(text.contains("$elemMatch"), "{text}");
        let f = OplogScope::AllUserDatabases.filter(start);
        let text = format!("{f}");
        assert!(text.contains("^(admin|config|local|mongoshift)"), "{text}");
        assert!(text.contains("$not"), "{text}");
    }

    #[test]
    fn escapes_regex_metacharacters() {
        assert_eq!(super::regex_escape("a.b$c"), "a\\.b\\$c");
    }
}
