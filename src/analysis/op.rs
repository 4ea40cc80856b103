//! One recorded operation, from the profiler (`system.profile`) or a mongod JSON log's
//! "Slow query" entry (id 51803): both carry the command, the namespace, the plan summary and
//! the same counters, under slightly different names. A `getMore` belongs to the shape of
//! the command that opened its cursor (`originatingCommand`, which mongod writes with every
//! getMore it records) but is not a query of it: its time is kept apart (see `stats`).
//! What is not an application query (inserts, other commands, truncated entries) is not
//! dropped: `parse` says what it was, so that the report can count what it left out.

use mongodb::bson::{Bson, Document};
use serde::Serialize;

use super::shape;

/// What kind of operation a shape is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Find,
    Aggregate,
    Count,
    Distinct,
    Update,
    Delete,
    FindAndModify,
}

#[derive(Debug, Clone)]
pub struct Op {
    pub ns: String,
    pub kind: Kind,
    /// The filter with its literals (for explain and recommendations).
    pub filter: Document,
    pub sort: Document,
    pub projection: Document,
    pub pipeline: Vec<Bson>,
    /// A find's limit, for explaining the example as it ran.
    pub limit: Option<i64>,
    /// A distinct's key: part of the shape (`distinct` on `user` and on `sku` differ).
    pub key: Option<String>,
    /// None when the entry has no duration (never counted as 0).
    pub millis: Option<u64>,
    pub docs_examined: u64,
    pub keys_examined: u64,
    /// What the operation returned or changed, by kind: `nreturned` for reads, `nMatched`
    /// (or `nModified`, `nUpserted`) for updates, `ndeleted` for deletes; the denominator
    /// of "examined per returned".
    pub returned: u64,
    pub plan: String,
    pub in_memory_sort: bool,
    pub used_disk: bool,
    pub query_hash: Option<String>,
    /// A getMore of a cursor this shape opened: its time and documents count toward the
    /// shape, but it is not another query.
    pub getmore: bool,
    /// Where it was read (file number and byte offset, or profiler order): the earliest
    /// operation of a shape is its example, whatever thread read it.
    pub seq: u64,
}

/// The kind prefix of an update or delete command whose statements are recorded (and
/// shaped) on their own: its time is theirs, so it is not added to what was left out.
pub const ENVELOPE: &str = "envelope: ";

/// A recorded entry that is not shaped, and why: what the report says it left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Unshaped {
    /// `insert`, `getMore (no originating command)`, `update (time-series buckets)`,
    /// `internal: hello`, `truncated by mongod: find`…
    pub kind: String,
    /// Its namespace, when it has one (for `--db`).
    pub ns: String,
    pub millis: Option<u64>,
}

fn num(d: &Document, k: &str) -> u64 {
    super::count(d.get(k))
}

fn sub(d: &Document, k: &str) -> Document {
    d.get_document(k).cloned().unwrap_or_default()
}

/// Databases whose operations are ours or the server's, never the application's.
const SKIPPED_DBS: &[&str] = &["admin", "local", "config", crate::load::state::DB];

/// The duration of an entry, under `duration_key` (`millis` in the profiler,
/// `durationMillis` in logs); None when absent or not a number.
fn duration(e: &Document, duration_key: &str) -> Option<u64> {
    match e.get(duration_key) {
        Some(Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_)) => Some(num(e, duration_key)),
        _ => None,
    }
}

/// Read an entry: `ns`, `command` (and `originatingCommand` for a getMore), the counters,
/// and the duration under `duration_key`. `Err` says what it is when it is not an
/// application query.
pub fn parse(e: &Document, duration_key: &str) -> Result<Op, Unshaped> {
    let millis = duration(e, duration_key);
    let cmd = e.get_document("command").ok();
    let name = cmd
        .and_then(|c| c.keys().next().cloned())
        .or_else(|| e.get_str("op").ok().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    let ns_text = e.get_str("ns").unwrap_or("").to_string();
    let left_out = |kind: String| Unshaped {
        kind,
        ns: ns_text.clone(),
        millis,
    };
    let Some((db, coll)) = e.get_str("ns").ok().and_then(|ns| ns.split_once('.')) else {
        return Err(left_out(name));
    };
    if coll.starts_with("system.buckets.") {
        return Err(left_out(format!("{name} (time-series buckets)")));
    }
    if SKIPPED_DBS.contains(&db) || coll.starts_with("system.") {
        return Err(left_out(format!("internal: {name}")));
    }
    let Some(mut cmd) = cmd.cloned() else {
        return Err(left_out(name));
    };
    let getmore = cmd.contains_key("getMore");
    if getmore {
        match e.get_document("originatingCommand") {
            Ok(o) => cmd = o.clone(),
            Err(_) => return Err(left_out("getMore (no originating command)".into())),
        }
    }
    let Some(first) = cmd.keys().next().cloned() else {
        return Err(left_out(name));
    };
    // mongod records an update or delete twice: each statement (`{q, u}` on `db.coll`,
    // shaped) and the command around them (on `db.$cmd`, without its statements).
    if coll.starts_with("$cmd") {
        return Err(left_out(match first.as_str() {
            "update" | "delete" => format!("{ENVELOPE}{first}"),
            _ => first,
        }));
    }
    let ns = format!("{db}.{coll}");
    let (kind, filter, sort, projection, pipeline) = match first.as_str() {
        "find" => (
            Kind::Find,
            sub(&cmd, "filter"),
            sub(&cmd, "sort"),
            sub(&cmd, "projection"),
            vec![],
        ),
        "aggregate" => {
            let p = cmd.get_array("pipeline").cloned().unwrap_or_default();
            // Leading $match / $sort are what an index can serve.
            let mut f = Document::new();
            let mut s = Document::new();
            for stage in &p {
                let Some(d) = stage.as_document() else { break };
                if let Ok(m) = d.get_document("$match") {
                    if f.is_empty() {
                        f = m.clone();
                        continue;
                    }
                }
                if let Ok(x) = d.get_document("$sort") {
                    if s.is_empty() {
                        s = x.clone();
                        continue;
                    }
                }
                break;
            }
            (Kind::Aggregate, f, s, Document::new(), p)
        }
        "count" => (
            Kind::Count,
            sub(&cmd, "query"),
            Document::new(),
            Document::new(),
            vec![],
        ),
        "distinct" => (
            Kind::Distinct,
            sub(&cmd, "query"),
            Document::new(),
            Document::new(),
            vec![],
        ),
        "findAndModify" | "findandmodify" => (
            Kind::FindAndModify,
            sub(&cmd, "query"),
            sub(&cmd, "sort"),
            Document::new(),
            vec![],
        ),
        // The profiler records one update or delete statement: {q, u, multi} / {q, limit}.
        "q" if cmd.contains_key("u") => (
            Kind::Update,
            sub(&cmd, "q"),
            Document::new(),
            Document::new(),
            vec![],
        ),
        "q" => (
            Kind::Delete,
            sub(&cmd, "q"),
            Document::new(),
            Document::new(),
            vec![],
        ),
        "update" => {
            let q = cmd
                .get_array("updates")
                .ok()
                .and_then(|u| u.first())
                .and_then(|u| u.as_document())
                .map(|u| sub(u, "q"))
                .unwrap_or_default();
            (Kind::Update, q, Document::new(), Document::new(), vec![])
        }
        "delete" => {
            let q = cmd
                .get_array("deletes")
                .ok()
                .and_then(|u| u.first())
                .and_then(|u| u.as_document())
                .map(|u| sub(u, "q"))
                .unwrap_or_default();
            (Kind::Delete, q, Document::new(), Document::new(), vec![])
        }
        _ => return Err(left_out(first)),
    };
    let key = match kind {
        Kind::Distinct => cmd.get_str("key").ok().map(str::to_string),
        _ => None,
    };
    let returned = match kind {
        Kind::Update => num(e, "nMatched")
            .max(num(e, "nModified"))
            .max(num(e, "nUpserted")),
        Kind::Delete => num(e, "ndeleted"),
        Kind::FindAndModify => num(e, "nreturned")
            .max(num(e, "nMatched"))
            .max(num(e, "nModified"))
            .max(num(e, "ndeleted"))
            .max(num(e, "nUpserted")),
        _ => num(e, "nreturned"),
    };
    let limit = match cmd.get("limit") {
        Some(Bson::Int32(n)) if *n > 0 => Some(i64::from(*n)),
        Some(Bson::Int64(n)) if *n > 0 => Some(*n),
        Some(Bson::Double(n)) if *n > 0.0 => Some(*n as i64),
        _ => None,
    };
    Ok(Op {
        ns,
        kind,
        limit,
        key,
        filter,
        sort,
        projection,
        pipeline,
        millis,
        docs_examined: num(e, "docsExamined"),
        keys_examined: num(e, "keysExamined"),
        returned,
        plan: e.get_str("planSummary").unwrap_or("").to_string(),
        in_memory_sort: e.get_bool("hasSortStage").unwrap_or(false),
        used_disk: e.get_bool("usedDisk").unwrap_or(false),
        query_hash: e.get_str("queryHash").ok().map(str::to_string),
        getmore,
        seq: 0,
    })
}

impl Op {
    /// The shape's identity: namespace, kind, filter, sort, projection, pipeline (literals
    /// replaced, equality fields in canonical order) and a distinct's key, as BSON bytes
    /// (cheaper to make than JSON text, and as exact).
    pub fn shape_key(&self) -> Vec<u8> {
        let mut d = mongodb::bson::doc! {
            "ns": &self.ns,
            "op": self.kind as i32,
        };
        d.extend(self.shape());
        let mut out = Vec::with_capacity(256);
        // Writing a document to a Vec cannot fail.
        let _ = d.to_writer(&mut out);
        out
    }

    /// The shape as shown: filter, sort, projection, pipeline (and a distinct's key).
    pub fn shape(&self) -> Document {
        let mut d = mongodb::bson::doc! {
            "filter": shape::filter(&self.filter),
            // A direction as 1 or -1 whatever its number type (the shell sends -1.0).
            "sort": self.sort.iter().map(|(k, v)| {
                let d = match v {
                    Bson::Int32(n) => Bson::Int32(n.signum()),
                    Bson::Int64(n) => Bson::Int32(n.signum() as i32),
                    Bson::Double(n) => Bson::Int32(if *n < 0.0 { -1 } else { 1 }),
                    other => other.clone(),
                };
                (k.clone(), d)
            }).collect::<Document>(),
            "projection": shape::filter(&self.projection),
            "pipeline": shape::pipeline(&self.pipeline),
        };
        if let Some(k) = &self.key {
            d.insert("key", k);
        }
        d
    }

    /// The indexes this operation's plan used, from its `planSummary`
    /// (`IXSCAN { email: 1 }`, `DISTINCT_SCAN { user: 1 }`, several for an `$or`):
    /// evidence that they exist even without a connection.
    pub fn plan_indexes(&self) -> Vec<Vec<(String, i32)>> {
        plan_indexes(&self.plan)
    }
}

/// The key patterns in a `planSummary`: every `{ field: direction, … }` after a stage name
/// (`IXSCAN { a: 1, b: -1 }, IXSCAN { c: 1 }`). A non-numeric direction (`"hashed"`,
/// `"2dsphere"`) is taken as 1.
pub fn plan_indexes(plan: &str) -> Vec<Vec<(String, i32)>> {
    let mut out = Vec::new();
    let mut rest = plan;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let inner = &rest[open + 1..open + close];
        let mut key = Vec::new();
        for part in inner.split(", ") {
            let Some((f, d)) = part.rsplit_once(':') else {
                continue;
            };
            let f = f.trim().trim_matches('"').to_string();
            let d = d.trim();
            let dir = if d.starts_with('-') { -1 } else { 1 };
            if !f.is_empty() {
                key.push((f, dir));
            }
        }
        if !key.is_empty() {
            out.push(key);
        }
        rest = &rest[open + close + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn a_getmore_counts_toward_its_find_and_system_namespaces_are_skipped() {
        let find = doc! { "ns": "p.bets", "command": { "find": "bets", "filter": { "user_id": 7 }, "sort": { "created_at": -1 } }, "millis": 120, "docsExamined": 5000, "nreturned": 10, "planSummary": "COLLSCAN", "hasSortStage": true };
        let more = doc! { "ns": "p.bets", "command": { "getMore": 1_i64, "collection": "bets" }, "originatingCommand": { "find": "bets", "filter": { "user_id": 9 }, "sort": { "created_at": -1 } }, "millis": 3 };
        let (a, b) = (
            parse(&find, "millis").unwrap(),
            parse(&more, "millis").unwrap(),
        );
        assert_eq!(a.shape_key(), b.shape_key());
        assert_eq!(a.kind, Kind::Find);
        assert!(a.in_memory_sort && a.plan == "COLLSCAN" && a.docs_examined == 5000);
        assert!(parse(
            &doc! { "ns": "p.system.profile", "command": { "find": "system.profile" } },
            "millis"
        )
        .is_err());
        assert_eq!(
            parse(
                &doc! { "ns": "admin.$cmd", "command": { "hello": 1 } },
                "millis"
            )
            .unwrap_err()
            .kind,
            "internal: hello"
        );
    }

    #[test]
    fn aggregate_leading_match_and_sort_are_the_indexable_part() {
        let e = doc! { "ns": "p.markets", "command": { "aggregate": "markets", "pipeline": [ { "$match": { "status": "open" } }, { "$sort": { "created_at": -1 } }, { "$limit": 20 } ] }, "durationMillis": 50 };
        let o = parse(&e, "durationMillis").unwrap();
        assert_eq!(o.filter, doc! { "status": "open" });
        assert_eq!(o.sort, doc! { "created_at": -1 });
        assert_eq!(o.millis, Some(50));
    }

    #[test]
    fn returned_is_what_each_kind_returns_or_changes() {
        let del = doc! { "type": "remove", "ns": "p.users", "command": { "q": { "email": "a" }, "limit": 0 }, "planSummary": "IXSCAN { email: 1 }", "keysExamined": 2988, "docsExamined": 2988, "ndeleted": 2988, "durationMillis": 300 };
        let o = parse(&del, "durationMillis").unwrap();
        assert_eq!((o.kind, o.returned), (Kind::Delete, 2988));
        assert_eq!(o.plan_indexes(), vec![vec![("email".to_string(), 1)]]);
        let upd = doc! { "ns": "p.users", "command": { "q": { "a": 1 }, "u": { "$set": { "b": 1 } } }, "nMatched": 30, "nModified": 29, "durationMillis": 1 };
        assert_eq!(parse(&upd, "durationMillis").unwrap().returned, 30);
        let fam = doc! { "ns": "p.users", "command": { "findAndModify": "users", "query": { "a": 1 }, "remove": true }, "ndeleted": 1, "durationMillis": 1 };
        assert_eq!(parse(&fam, "durationMillis").unwrap().returned, 1);
        // The command around recorded statements is not another operation.
        let env = doc! { "ns": "p.$cmd", "command": { "delete": "users", "ordered": true }, "durationMillis": 300 };
        assert!(parse(&env, "durationMillis")
            .unwrap_err()
            .kind
            .starts_with(ENVELOPE));
        let ins = doc! { "ns": "p.users", "command": { "insert": "users" }, "ninserted": 5, "durationMillis": 9 };
        assert_eq!(
            parse(&ins, "durationMillis").unwrap_err(),
            Unshaped {
                kind: "insert".into(),
                ns: "p.users".into(),
                millis: Some(9)
            }
        );
        let ts = doc! { "ns": "p.system.buckets.m", "command": { "insert": "system.buckets.m" }, "durationMillis": 9 };
        assert_eq!(
            parse(&ts, "durationMillis").unwrap_err().kind,
            "insert (time-series buckets)"
        );
        let no_ms = doc! { "ns": "p.users", "command": { "find": "users", "filter": {} } };
        assert_eq!(parse(&no_ms, "durationMillis").unwrap().millis, None);
    }

    #[test]
    fn a_sort_direction_is_its_sign_whatever_its_number_type() {
        let f = |sort: Document| {
            parse(&doc! { "ns": "p.t", "command": { "find": "t", "filter": { "a": 1 }, "sort": sort }, "millis": 1 }, "millis").unwrap().shape_key()
        };
        assert_eq!(f(doc! { "c": -1.0 }), f(doc! { "c": -1 }));
        assert_eq!(f(doc! { "c": 1_i64 }), f(doc! { "c": 1 }));
        assert_ne!(f(doc! { "c": 1 }), f(doc! { "c": -1 }));
    }

    #[test]
    fn a_distinct_key_is_part_of_the_shape_and_plans_name_their_indexes() {
        let d = |key: &str| {
            parse(
                &doc! { "ns": "p.orders", "command": { "distinct": "orders", "key": key, "query": { "shop": 1 } }, "durationMillis": 5 },
                "durationMillis",
            )
            .unwrap()
        };
        assert_ne!(d("user").shape_key(), d("sku").shape_key());
        assert_eq!(d("user").key.as_deref(), Some("user"));
        assert_eq!(
            plan_indexes("IXSCAN { a: 1, b.c: -1 }, IXSCAN { loc: \"2dsphere\" }"),
            vec![
                vec![("a".to_string(), 1), ("b.c".to_string(), -1)],
                vec![("loc".to_string(), 1)]
            ]
        );
        assert!(plan_indexes("COLLSCAN").is_empty());
    }
}
