//! One recorded operation, from the profiler (`system.profile`) or a mongod JSON log's
//! "Slow query" entry (id 51803): both carry the command, the namespace, the plan summary and
//! the same counters, under slightly different names. A `getMore` is counted toward the
//! command that opened its cursor (`originatingCommand`).

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
    pub millis: u64,
    pub docs_examined: u64,
    pub keys_examined: u64,
    pub returned: u64,
    pub plan: String,
    pub in_memory_sort: bool,
    pub used_disk: bool,
    pub query_hash: Option<String>,
    /// A getMore of a cursor this shape opened: its time and documents count toward the
    /// shape, but it is not another query.
    pub getmore: bool,
}

fn num(d: &Document, k: &str) -> u64 {
    super::count(d.get(k))
}

fn sub(d: &Document, k: &str) -> Document {
    d.get_document(k).cloned().unwrap_or_default()
}

/// Databases whose operations are ours or the server's, never the application's.
const SKIPPED_DBS: &[&str] = &["admin", "local", "config", crate::load::state::DB];

/// Read an entry: `ns`, `command` (and `originatingCommand` for a getMore), the counters,
/// and the duration under `duration_key` (`millis` in the profiler, `durationMillis` in
/// logs). None for what is not an application query.
pub fn parse(e: &Document, duration_key: &str) -> Option<Op> {
    let ns = e.get_str("ns").ok()?.to_string();
    let (db, coll) = ns.split_once('.')?;
    if SKIPPED_DBS.contains(&db) || coll.starts_with("system.") || coll.starts_with("$cmd") {
        return None;
    }
    let mut cmd = e.get_document("command").ok()?.clone();
    let getmore = cmd.contains_key("getMore");
    if getmore {
        cmd = e.get_document("originatingCommand").ok()?.clone();
    }
    let first = cmd.keys().next()?.clone();
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
        _ => return None,
    };
    let limit = match cmd.get("limit") {
        Some(Bson::Int32(n)) if *n > 0 => Some(i64::from(*n)),
        Some(Bson::Int64(n)) if *n > 0 => Some(*n),
        Some(Bson::Double(n)) if *n > 0.0 => Some(*n as i64),
        _ => None,
    };
    Some(Op {
        ns,
        kind,
        limit,
        filter,
        sort,
        projection,
        pipeline,
        millis: num(e, duration_key),
        docs_examined: num(e, "docsExamined"),
        keys_examined: num(e, "keysExamined"),
        returned: num(e, "nreturned").max(num(e, "nMatched")),
        plan: e.get_str("planSummary").unwrap_or("").to_string(),
        in_memory_sort: e.get_bool("hasSortStage").unwrap_or(false),
        used_disk: e.get_bool("usedDisk").unwrap_or(false),
        query_hash: e.get_str("queryHash").ok().map(str::to_string),
        getmore,
    })
}

impl Op {
    /// The shape's identity: namespace, kind, filter, sort, projection and pipeline with
    /// literals replaced, as canonical JSON.
    pub fn shape_key(&self) -> String {
        let d = mongodb::bson::doc! {
            "ns": &self.ns,
            "op": format!("{:?}", self.kind).to_lowercase(),
            "filter": shape::filter(&self.filter),
            "sort": self.sort.clone(),
            "projection": shape::filter(&self.projection),
            "pipeline": shape::pipeline(&self.pipeline),
        };
        Bson::Document(d).into_relaxed_extjson().to_string()
    }
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
        .is_none());
        assert!(parse(
            &doc! { "ns": "admin.$cmd", "command": { "hello": 1 } },
            "millis"
        )
        .is_none());
    }

    #[test]
    fn aggregate_leading_match_and_sort_are_the_indexable_part() {
        let e = doc! { "ns": "p.markets", "command": { "aggregate": "markets", "pipeline": [ { "$match": { "status": "open" } }, { "$sort": { "created_at": -1 } }, { "$limit": 20 } ] }, "durationMillis": 50 };
        let o = parse(&e, "durationMillis").unwrap();
        assert_eq!(o.filter, doc! { "status": "open" });
        assert_eq!(o.sort, doc! { "created_at": -1 });
        assert_eq!(o.millis, 50);
    }
}
