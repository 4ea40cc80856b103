//! Operations grouped by shape, with the numbers that rank them: count, total and
//! percentile durations, documents and keys examined against returned, plans, in-memory
//! sorts, disk use, and one example (with its literals, for explain and recommendations).

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use super::op::{Kind, Op};
use super::shape;

#[derive(Debug, Clone, Serialize)]
pub struct ShapeStats {
    /// 1-based rank by total time.
    pub id: usize,
    pub ns: String,
    pub op: Kind,
    /// The shape, literals replaced (Extended JSON).
    pub shape: serde_json::Value,
    /// Queries of this shape (their getMores are not counted, but their time is).
    pub count: u64,
    pub total_ms: u64,
    pub p50_ms: u64,
    pub p95_ms: u64,
    pub p99_ms: u64,
    pub max_ms: u64,
    pub docs_examined: u64,
    pub keys_examined: u64,
    pub returned: u64,
    pub plans: Vec<String>,
    pub in_memory_sort: bool,
    pub used_disk: bool,
    pub query_hashes: Vec<String>,
    /// Where our shapes and the server's `queryHash` disagree: this shape ran under several
    /// hashes (the server tells apart what we merged), or its hash also belongs to another
    /// shape (we tell apart what the server merges, e.g. `$in` lists of different lengths).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_hash_note: Option<String>,
    /// One recorded operation of this shape.
    #[serde(skip)]
    pub example: Op,
}

impl ShapeStats {
    /// Scans more than it should: a collection scan, an in-memory sort, or many more
    /// documents examined than returned.
    pub fn scans_too_much(&self) -> bool {
        self.plans.iter().any(|p| p.contains("COLLSCAN"))
            || self.in_memory_sort
            || self.docs_examined > 10 * self.returned.max(1) && self.docs_examined > 100
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Group `ops` by shape, ranked by total time (then count).
pub fn group(ops: Vec<Op>) -> Vec<ShapeStats> {
    let mut by: HashMap<String, Vec<Op>> = HashMap::new();
    for o in ops {
        by.entry(o.shape_key()).or_default().push(o);
    }
    let mut out: Vec<ShapeStats> = by
        .into_values()
        .map(|ops| {
            let mut ms: Vec<u64> = ops.iter().map(|o| o.millis).collect();
            ms.sort_unstable();
            let plans: BTreeSet<String> = ops
                .iter()
                .map(|o| o.plan.clone())
                .filter(|p| !p.is_empty())
                .collect();
            let hashes: BTreeSet<String> =
                ops.iter().filter_map(|o| o.query_hash.clone()).collect();
            let ex = ops[0].clone();
            let shape = mongodb::bson::doc! {
                "filter": shape::filter(&ex.filter),
                "sort": ex.sort.clone(),
                "projection": shape::filter(&ex.projection),
                "pipeline": shape::pipeline(&ex.pipeline),
            };
            ShapeStats {
                id: 0,
                ns: ex.ns.clone(),
                op: ex.kind,
                shape: mongodb::bson::Bson::Document(shape).into_relaxed_extjson(),
                count: ops.iter().filter(|o| !o.getmore).count().max(1) as u64,
                total_ms: ms.iter().sum(),
                p50_ms: percentile(&ms, 50.0),
                p95_ms: percentile(&ms, 95.0),
                p99_ms: percentile(&ms, 99.0),
                max_ms: ms.last().copied().unwrap_or(0),
                docs_examined: ops.iter().map(|o| o.docs_examined).sum(),
                keys_examined: ops.iter().map(|o| o.keys_examined).sum(),
                returned: ops.iter().map(|o| o.returned).sum(),
                plans: plans.into_iter().collect(),
                in_memory_sort: ops.iter().any(|o| o.in_memory_sort),
                used_disk: ops.iter().any(|o| o.used_disk),
                query_hashes: hashes.into_iter().collect(),
                query_hash_note: None,
                example: ex,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (b.total_ms, b.count, &a.ns)
            .cmp(&(a.total_ms, a.count, &b.ns))
            .then_with(|| a.shape.to_string().cmp(&b.shape.to_string()))
    });
    for (i, s) in out.iter_mut().enumerate() {
        s.id = i + 1;
    }
    cross_check(&mut out);
    out
}

/// Compare our shapes with the server's `queryHash` where the entries carry one.
fn cross_check(shapes: &mut [ShapeStats]) {
    let mut owners: HashMap<String, Vec<usize>> = HashMap::new();
    for s in shapes.iter() {
        for h in &s.query_hashes {
            owners.entry(h.clone()).or_default().push(s.id);
        }
    }
    for s in shapes.iter_mut() {
        let shared: BTreeSet<usize> = s
            .query_hashes
            .iter()
            .flat_map(|h| owners[h].iter().copied())
            .filter(|id| *id != s.id)
            .collect();
        let mut notes = Vec::new();
        if s.query_hashes.len() > 1 {
            notes.push(format!("{} server query hashes", s.query_hashes.len()));
        }
        if !shared.is_empty() {
            let ids: Vec<String> = shared.iter().map(|i| format!("#{i}")).collect();
            notes.push(format!(
                "same server query hash as shape {}",
                ids.join(", ")
            ));
        }
        s.query_hash_note = (!notes.is_empty()).then(|| notes.join("; "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    fn op(filter: mongodb::bson::Document, hash: &str) -> Op {
        let e = doc! { "ns": "p.users", "command": { "find": "users", "filter": filter }, "millis": 5, "queryHash": hash };
        super::super::op::parse(&e, "millis").unwrap()
    }

    #[test]
    fn shapes_are_cross_checked_with_the_server_query_hash() {
        let shapes = group(vec![
            op(doc! { "a": 1 }, "H1"),
            op(doc! { "a": 2 }, "H1"),
            op(doc! { "a": "x" }, "H1"),
            op(doc! { "b": 1 }, "H2"),
            op(doc! { "b": 2 }, "H3"),
        ]);
        let by = |f: &str| {
            shapes
                .iter()
                .find(|s| {
                    s.shape["filter"] == serde_json::from_str::<serde_json::Value>(f).unwrap()
                })
                .unwrap()
        };
        assert_eq!(by(r#"{"a":"?number"}"#).count, 2);
        assert!(by(r#"{"a":"?number"}"#)
            .query_hash_note
            .as_deref()
            .unwrap()
            .contains("same server query hash"));
        assert!(by(r#"{"b":"?number"}"#)
            .query_hash_note
            .as_deref()
            .unwrap()
            .contains("2 server query hashes"));
    }
}
