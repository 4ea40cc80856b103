//! Operations grouped by shape as they stream in, with the numbers that rank them: count,
//! total and percentile durations, documents and keys examined against returned, plans,
//! in-memory sorts, disk use, and one example (the earliest, with its literals, for explain
//! and recommendations). Memory is bounded whatever the log's size: per shape a few
//! counters, the example and a quantile sketch (HdrHistogram, 2 significant digits: exact
//! up to 255 ms, within 1% above), and at most `MAX_SHAPES` shapes.
//!
//! Percentiles are nearest-rank: p50 is the smallest recorded duration with at least 50%
//! of the queries at or below it (for two queries of 10 and 20 ms, 10 ms). Only queries are
//! samples: a getMore's time is added to its shape's total and reported apart
//! (`getmores`, `getmore_ms`), and an entry without a duration is counted (`untimed`) but
//! is not a sample of 0 ms.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::op::{Kind, Op, Unshaped, ENVELOPE};

/// Shapes held at once; beyond them, an operation of a new shape is counted as left out.
pub const MAX_SHAPES: usize = 4000;
/// Distinct plans and query hashes kept per shape.
const MAX_LABELS: usize = 8;
/// The kind under which operations of shapes beyond `MAX_SHAPES` are counted.
pub const OVERFLOW: &str = "shapes beyond the first 4000";

#[derive(Debug, Clone, Serialize)]
pub struct ShapeStats {
    /// 1-based rank by total time.
    pub id: usize,
    pub ns: String,
    pub op: Kind,
    /// The shape, literals replaced (Extended JSON).
    pub shape: serde_json::Value,
    /// Queries of this shape (getMores not included).
    pub count: u64,
    /// getMores of cursors this shape opened, and their time (in `total_ms`, not in the
    /// percentiles).
    pub getmores: u64,
    pub getmore_ms: u64,
    /// Queries recorded without a duration (counted, not a sample).
    pub untimed: u64,
    /// The queries' and their getMores' time.
    pub total_ms: u64,
    /// Nearest-rank percentiles of the queries' durations; null without a timed query.
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
    pub p99_ms: Option<u64>,
    pub max_ms: Option<u64>,
    pub docs_examined: u64,
    pub keys_examined: u64,
    /// Documents returned or changed (see `Op::returned`).
    pub returned: u64,
    pub plans: Vec<String>,
    pub in_memory_sort: bool,
    pub used_disk: bool,
    pub query_hashes: Vec<String>,
    /// One recorded operation of this shape.
    #[serde(skip)]
    pub example: Op,
}

impl ShapeStats {
    /// Scans more than it should: a collection scan, an in-memory sort, or many more
    /// documents (or keys, when no document was fetched) examined than returned or changed.
    pub fn scans_too_much(&self) -> bool {
        let examined = self.docs_examined.max(self.keys_examined);
        self.plans.iter().any(|p| p.contains("COLLSCAN"))
            || self.in_memory_sort
            || examined > 10 * self.returned.max(1) && examined > 100
    }

    /// The key patterns the recorded plans show in use.
    pub fn plan_indexes(&self) -> Vec<Vec<(String, i32)>> {
        self.plans
            .iter()
            .flat_map(|p| super::op::plan_indexes(p))
            .collect()
    }
}

/// Recorded entries left out of the shapes, by kind.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LeftOut {
    pub kind: String,
    pub count: u64,
    pub total_ms: u64,
    /// Entries without a duration.
    pub untimed: u64,
}

/// The result: shapes ranked by total time, and what was left out.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub shapes: Vec<ShapeStats>,
    /// By total time, then count.
    pub left_out: Vec<LeftOut>,
    /// Update and delete commands whose statements are recorded (and shaped) on their own.
    pub statement_envelopes: u64,
}

impl Summary {
    /// Operations in the shapes (queries and getMores).
    pub fn operations(&self) -> u64 {
        self.shapes.iter().map(|s| s.count + s.getmores).sum()
    }
}

struct Acc {
    example: Op,
    count: u64,
    getmores: u64,
    getmore_ms: u64,
    untimed: u64,
    query_ms: u64,
    hist: Histogram<u32>,
    max: Option<u64>,
    docs: u64,
    keys: u64,
    returned: u64,
    plans: BTreeSet<String>,
    sort: bool,
    disk: bool,
    hashes: BTreeSet<String>,
}

fn sketch() -> Histogram<u32> {
    Histogram::new(2).expect("2 significant digits is a valid histogram")
}

fn add_label(set: &mut BTreeSet<String>, v: &str) {
    if !v.is_empty() && set.len() < MAX_LABELS && !set.contains(v) {
        set.insert(v.to_string());
    }
}

impl Acc {
    fn new(example: Op) -> Acc {
        Acc {
            example,
            count: 0,
            getmores: 0,
            getmore_ms: 0,
            untimed: 0,
            query_ms: 0,
            hist: sketch(),
            max: None,
            docs: 0,
            keys: 0,
            returned: 0,
            plans: BTreeSet::new(),
            sort: false,
            disk: false,
            hashes: BTreeSet::new(),
        }
    }

    fn add(&mut self, o: &Op) {
        if o.getmore {
            self.getmores += 1;
            self.getmore_ms += o.millis.unwrap_or(0);
        } else {
            self.count += 1;
            match o.millis {
                Some(ms) => {
                    self.query_ms += ms;
                    // The sketch grows to the largest value (auto-resize): this cannot fail.
                    if self.hist.record(ms).is_err() {
                        self.hist.saturating_record(ms);
                    }
                    self.max = self.max.max(Some(ms));
                }
                None => self.untimed += 1,
            }
        }
        self.docs += o.docs_examined;
        self.keys += o.keys_examined;
        self.returned += o.returned;
        add_label(&mut self.plans, &o.plan);
        if let Some(h) = &o.query_hash {
            add_label(&mut self.hashes, h);
        }
        self.sort |= o.in_memory_sort;
        self.disk |= o.used_disk;
        // The earliest operation is the example, whichever reader saw it first; a getMore
        // gives way to a query.
        if (o.getmore, o.seq) < (self.example.getmore, self.example.seq) {
            self.example = o.clone();
        }
    }

    fn merge(&mut self, b: Acc) {
        self.count += b.count;
        self.getmores += b.getmores;
        self.getmore_ms += b.getmore_ms;
        self.untimed += b.untimed;
        self.query_ms += b.query_ms;
        let _ = self.hist.add(&b.hist);
        self.max = self.max.max(b.max);
        self.docs += b.docs;
        self.keys += b.keys;
        self.returned += b.returned;
        for p in &b.plans {
            add_label(&mut self.plans, p);
        }
        for h in &b.hashes {
            add_label(&mut self.hashes, h);
        }
        self.sort |= b.sort;
        self.disk |= b.disk;
        if (b.example.getmore, b.example.seq) < (self.example.getmore, self.example.seq) {
            self.example = b.example;
        }
    }

    fn total(&self) -> u64 {
        self.query_ms + self.getmore_ms
    }

    fn finish(self) -> ShapeStats {
        let q = |p: f64| (!self.hist.is_empty()).then(|| self.hist.value_at_quantile(p / 100.0));
        let ex = self.example;
        ShapeStats {
            id: 0,
            ns: ex.ns.clone(),
            op: ex.kind,
            shape: mongodb::bson::Bson::Document(ex.shape()).into_relaxed_extjson(),
            count: self.count,
            getmores: self.getmores,
            getmore_ms: self.getmore_ms,
            untimed: self.untimed,
            total_ms: self.query_ms + self.getmore_ms,
            p50_ms: q(50.0),
            p95_ms: q(95.0),
            p99_ms: q(99.0),
            max_ms: self.max,
            docs_examined: self.docs,
            keys_examined: self.keys,
            returned: self.returned,
            plans: self.plans.into_iter().collect(),
            in_memory_sort: self.sort,
            used_disk: self.disk,
            query_hashes: self.hashes.into_iter().collect(),
            example: ex,
        }
    }
}

/// Shapes and left-out entries as they stream in. Several aggregators (one per reader
/// thread) merge into one.
#[derive(Default)]
pub struct Aggregator {
    shapes: HashMap<Vec<u8>, Acc>,
    left_out: BTreeMap<String, LeftOut>,
    envelopes: u64,
    /// Only these databases (empty: all).
    dbs: Vec<String>,
}

impl Aggregator {
    /// An aggregator that keeps only the operations of `dbs` (all when empty).
    pub fn new(dbs: &[String]) -> Aggregator {
        Aggregator {
            dbs: dbs.to_vec(),
            ..Default::default()
        }
    }

    /// The databases it keeps (empty: all).
    pub fn dbs(&self) -> &[String] {
        &self.dbs
    }

    fn wanted(&self, ns: &str) -> bool {
        self.dbs.is_empty()
            || ns
                .split_once('.')
                .is_some_and(|(db, _)| self.dbs.iter().any(|d| d == db))
    }

    /// Count one parsed entry.
    pub fn add(&mut self, r: Result<Op, Unshaped>) {
        match r {
            Ok(o) => self.add_op(o),
            Err(u) => self.add_left_out(u),
        }
    }

    pub fn add_op(&mut self, o: Op) {
        if !self.wanted(&o.ns) {
            return;
        }
        let key = o.shape_key();
        if let Some(a) = self.shapes.get_mut(&key) {
            a.add(&o);
        } else if self.shapes.len() < MAX_SHAPES {
            let mut a = Acc::new(o.clone());
            a.add(&o);
            self.shapes.insert(key, a);
        } else {
            self.left(OVERFLOW, o.millis, 1);
        }
    }

    pub fn add_left_out(&mut self, u: Unshaped) {
        if !u.ns.is_empty() && !self.wanted(&u.ns) {
            return;
        }
        if u.kind.starts_with(ENVELOPE) {
            self.envelopes += 1;
            return;
        }
        self.left(&u.kind, u.millis, 1);
    }

    fn left(&mut self, kind: &str, millis: Option<u64>, n: u64) {
        let e = self
            .left_out
            .entry(kind.to_string())
            .or_insert_with(|| LeftOut {
                kind: kind.to_string(),
                ..Default::default()
            });
        e.count += n;
        match millis {
            Some(ms) => e.total_ms += ms,
            None => e.untimed += n,
        }
    }

    /// Fold another aggregator (another reader's) into this one.
    pub fn merge(&mut self, other: Aggregator) {
        for (k, a) in other.shapes {
            match self.shapes.get_mut(&k) {
                Some(mine) => mine.merge(a),
                None => {
                    self.shapes.insert(k, a);
                }
            }
        }
        for (k, l) in other.left_out {
            let e = self.left_out.entry(k).or_insert_with(|| LeftOut {
                kind: l.kind.clone(),
                ..Default::default()
            });
            e.count += l.count;
            e.total_ms += l.total_ms;
            e.untimed += l.untimed;
        }
        self.envelopes += other.envelopes;
        // Over the bound after a merge: the cheapest shapes are counted as left out.
        if self.shapes.len() > MAX_SHAPES {
            let mut by: Vec<(u64, Vec<u8>)> = self
                .shapes
                .iter()
                .map(|(k, a)| (a.total(), k.clone()))
                .collect();
            by.sort();
            for (_, k) in by.into_iter().take(self.shapes.len() - MAX_SHAPES) {
                if let Some(a) = self.shapes.remove(&k) {
                    let e = self
                        .left_out
                        .entry(OVERFLOW.into())
                        .or_insert_with(|| LeftOut {
                            kind: OVERFLOW.into(),
                            ..Default::default()
                        });
                    e.count += a.count + a.getmores;
                    e.total_ms += a.total();
                    e.untimed += a.untimed;
                }
            }
        }
    }

    /// The shapes ranked by total time (then count), and what was left out.
    pub fn finish(self) -> Summary {
        let mut out: Vec<ShapeStats> = self.shapes.into_values().map(Acc::finish).collect();
        out.sort_by(|a, b| {
            (b.total_ms, b.count, &a.ns)
                .cmp(&(a.total_ms, a.count, &b.ns))
                .then_with(|| a.shape.to_string().cmp(&b.shape.to_string()))
        });
        for (i, s) in out.iter_mut().enumerate() {
            s.id = i + 1;
        }
        let mut left: Vec<LeftOut> = self.left_out.into_values().collect();
        left.sort_by_key(|l| std::cmp::Reverse((l.total_ms, l.count)));
        Summary {
            shapes: out,
            left_out: left,
            statement_envelopes: self.envelopes,
        }
    }
}

/// Group `ops` by shape, ranked by total time (then count).
pub fn group(ops: Vec<Op>) -> Vec<ShapeStats> {
    let mut a = Aggregator::default();
    for (i, mut o) in ops.into_iter().enumerate() {
        o.seq = i as u64;
        a.add_op(o);
    }
    a.finish().shapes
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, Document};

    fn find(filter: Document, ms: i64) -> Op {
        let e = doc! { "ns": "p.users", "command": { "find": "users", "filter": filter }, "millis": ms };
        super::super::op::parse(&e, "millis").unwrap()
    }

    #[test]
    fn getmores_are_reported_apart_not_percentile_samples() {
        let mut ops: Vec<Op> = [10, 20, 30]
            .iter()
            .map(|ms| find(doc! { "a": 1 }, *ms))
            .collect();
        for _ in 0..5 {
            let e = doc! { "ns": "p.users", "command": { "getMore": 7_i64, "collection": "users" }, "originatingCommand": { "find": "users", "filter": { "a": 2 } }, "millis": 600 };
            ops.push(super::super::op::parse(&e, "millis").unwrap());
        }
        let s = &group(ops)[0];
        assert_eq!((s.count, s.getmores, s.getmore_ms), (3, 5, 3000));
        assert_eq!((s.p50_ms, s.max_ms), (Some(20), Some(30)));
        assert_eq!(s.total_ms, 3060);
    }

    #[test]
    fn nearest_rank_percentiles_and_untimed_entries() {
        let s = &group(vec![find(doc! { "a": 1 }, 10), find(doc! { "a": 2 }, 20)])[0];
        assert_eq!(
            (s.p50_ms, s.p95_ms, s.max_ms),
            (Some(10), Some(20), Some(20))
        );
        let e = doc! { "ns": "p.users", "command": { "find": "users", "filter": { "a": 3 } } };
        let untimed = super::super::op::parse(&e, "millis").unwrap();
        let s = &group(vec![untimed, find(doc! { "a": 1 }, 40)])[0];
        assert_eq!(
            (s.count, s.untimed, s.p50_ms, s.total_ms),
            (2, 1, Some(40), 40)
        );
        // 1..=100 ms: p95 is the 95th value; large values within 1%.
        let s = &group((1..=100).map(|ms| find(doc! { "a": 1 }, ms)).collect())[0];
        assert_eq!(
            (s.p50_ms, s.p95_ms, s.p99_ms),
            (Some(50), Some(95), Some(99))
        );
        let s = &group(vec![find(doc! { "a": 1 }, 123_456)])[0];
        let p = s.p50_ms.unwrap() as f64;
        assert!((p - 123_456.0).abs() / 123_456.0 < 0.01, "{p}");
        assert_eq!(s.max_ms, Some(123_456));
    }

    #[test]
    fn merged_aggregators_equal_one_and_keep_the_earliest_example() {
        let ops: Vec<Op> = (0..50)
            .map(|i| {
                let mut o = find(doc! { "a": i, "b": 1 }, i + 1);
                o.seq = i as u64;
                o
            })
            .collect();
        let mut one = Aggregator::default();
        ops.iter().cloned().for_each(|o| one.add_op(o));
        let (mut x, mut y) = (Aggregator::default(), Aggregator::default());
        for o in ops.iter().rev() {
            if o.seq % 2 == 0 {
                x.add_op(o.clone())
            } else {
                y.add_op(o.clone())
            }
        }
        x.merge(y);
        let (a, b) = (one.finish(), x.finish());
        assert_eq!(a.shapes.len(), 1);
        let (a, b) = (&a.shapes[0], &b.shapes[0]);
        assert_eq!(
            (a.count, a.total_ms, a.p50_ms, a.p99_ms),
            (b.count, b.total_ms, b.p50_ms, b.p99_ms)
        );
        assert_eq!(b.example.filter, doc! { "a": 0_i64, "b": 1 });
    }

    #[test]
    fn left_out_entries_are_counted_by_kind_with_their_time() {
        let mut a = Aggregator::default();
        for (cmd, ns, ms) in [
            (doc! { "insert": "users" }, "p.users", 100),
            (doc! { "insert": "users" }, "p.users", 50),
            (
                doc! { "insert": "system.buckets.m" },
                "p.system.buckets.m",
                7,
            ),
            (doc! { "update": "users" }, "p.$cmd", 99),
        ] {
            a.add(super::super::op::parse(
                &doc! { "ns": ns, "command": cmd, "durationMillis": ms },
                "durationMillis",
            ));
        }
        let s = a.finish();
        assert_eq!(
            s.left_out[0],
            LeftOut {
                kind: "insert".into(),
                count: 2,
                total_ms: 150,
                untimed: 0
            }
        );
        assert_eq!(s.left_out[1].kind, "insert (time-series buckets)");
        assert_eq!(s.statement_envelopes, 1);
    }
}
