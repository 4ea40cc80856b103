//! From ranked shapes to index recommendations: every shape that scans too much gets its
//! ESR candidates (see `esr`); those an existing index already serves are dropped; a
//! candidate that is a prefix of another on the same collection is merged into it. An
//! index the recorded plans show in use (`planSummary: IXSCAN { email: 1 }`) exists, even
//! when there is no connection to list the indexes: nothing it serves is recommended. Each
//! recommendation names the shapes it serves and the time and documents examined they
//! cost as recorded (what it would save, at most).

use std::collections::BTreeMap;

use serde::Serialize;

use super::esr::{self, Candidate};
use super::stats::ShapeStats;

#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    pub ns: String,
    /// The key pattern, in order.
    pub keys: Vec<(String, i32)>,
    /// The ids of the shapes it serves.
    pub shapes: Vec<usize>,
    /// Recorded time and documents examined of those shapes.
    pub total_ms: u64,
    pub docs_examined: u64,
}

impl Recommendation {
    pub fn keys_text(&self) -> String {
        let parts: Vec<String> = self.keys.iter().map(|(f, d)| format!("{f}: {d}")).collect();
        format!("{{ {} }}", parts.join(", "))
    }
}

/// Shapes served already, and recommendations for the rest. `existing`: the key patterns of
/// each namespace's indexes, None when unknown (logs only, no connection).
/// `arrays`: per namespace, the fields that hold arrays in sampled documents (None when
/// unknown: no covered-query fields are appended then).
pub fn recommend(
    shapes: &[ShapeStats],
    existing: Option<&esr::Existing>,
    arrays: Option<&BTreeMap<String, std::collections::BTreeSet<String>>>,
) -> Vec<Recommendation> {
    let mut per_ns: BTreeMap<String, Vec<Recommendation>> = BTreeMap::new();
    // The indexes the recorded plans used exist, connection or not.
    let mut in_use: BTreeMap<&str, Vec<esr::KeyPattern>> = BTreeMap::new();
    for s in shapes {
        in_use.entry(&s.ns).or_default().extend(s.plan_indexes());
    }
    for s in shapes.iter().filter(|s| s.scans_too_much()) {
        let idx = existing.and_then(|e| e.get(&s.ns));
        let seen = in_use.get(s.ns.as_str());
        let ex = &s.example;
        let mut cands = esr::candidates(&ex.filter, &ex.sort);
        if cands.len() == 1 && ex.kind == super::op::Kind::Find {
            let known = arrays.map(|a| a.get(&s.ns).cloned().unwrap_or_default());
            if let Some(cover) = esr::covering(&ex.filter, &ex.sort, &ex.projection, known.as_ref())
            {
                cands[0].cover = cover;
            }
        }
        for c in cands {
            if idx.is_some_and(|list| list.iter().any(|k| esr::served_by(&c, k)))
                || seen.is_some_and(|list| list.iter().any(|k| esr::served_by(&c, k)))
            {
                continue;
            }
            add(per_ns.entry(s.ns.clone()).or_default(), &s.ns, &c, s);
        }
    }
    let mut out: Vec<Recommendation> = per_ns.into_values().flatten().collect();
    out.sort_by(|a, b| b.total_ms.cmp(&a.total_ms).then(a.ns.cmp(&b.ns)));
    out
}

/// Add a candidate: into an equal or longer recommendation it is a prefix of, or as a new
/// one that absorbs the shorter ones that are its prefix.
fn add(recs: &mut Vec<Recommendation>, ns: &str, c: &Candidate, s: &ShapeStats) {
    let keys = c.keys();
    let credit = |r: &mut Recommendation| {
        if !r.shapes.contains(&s.id) {
            r.shapes.push(s.id);
            r.total_ms += s.total_ms;
            r.docs_examined += s.docs_examined;
        }
    };
    // An index already recommended that serves it (a longer one, or the same fields with
    // the equalities in another order) takes it: never two permutations of one index.
    if let Some(r) = recs
        .iter_mut()
        .find(|r| esr::is_prefix(&keys, &r.keys) || esr::served_by(c, &r.keys))
    {
        credit(r);
        return;
    }
    let mut new = Recommendation {
        ns: ns.to_string(),
        keys: keys.clone(),
        shapes: vec![],
        total_ms: 0,
        docs_examined: 0,
    };
    credit(&mut new);
    let mut kept = Vec::new();
    for r in recs.drain(..) {
        if esr::is_prefix(&r.keys, &keys) {
            for id in r.shapes {
                if !new.shapes.contains(&id) {
                    new.shapes.push(id);
                }
            }
            new.total_ms += r.total_ms;
            new.docs_examined += r.docs_examined;
        } else {
            kept.push(r);
        }
    }
    kept.push(new);
    *recs = kept;
}

/// The recommendations as an index-spec file (the format `indexes lint/plan/apply` read),
/// one database per file, each index commented with the shapes it serves.
pub fn spec_yaml(db: &str, recs: &[Recommendation], shapes: &[ShapeStats]) -> String {
    let mut by_coll: BTreeMap<&str, Vec<&Recommendation>> = BTreeMap::new();
    for r in recs {
        if let Some((d, c)) = r.ns.split_once('.') {
            if d == db {
                by_coll.entry(c).or_default().push(r);
            }
        }
    }
    let mut out = format!(
        "# Indexes recommended by `mongoshift analyze queries` for the recorded slow query\n\
         # shapes of {db} (Equality-Sort-Range). Review, then `mongoshift indexes plan` / `apply`.\n\
         database: {db}\ncollections:\n"
    );
    for (coll, recs) in by_coll {
        out.push_str(&format!("  {}:\n", yaml_key(coll)));
        for r in recs {
            let keys: Vec<String> = r
                .keys
                .iter()
                .map(|(f, d)| format!("{}: {d}", yaml_key(f)))
                .collect();
            let served: Vec<String> = r
                .shapes
                .iter()
                .filter_map(|id| shapes.iter().find(|s| s.id == *id))
                .map(|s| {
                    format!(
                        "#{} {} {} ({} ops, {} ms)",
                        s.id,
                        format!("{:?}", s.op).to_lowercase(),
                        s.shape["filter"],
                        s.count,
                        s.total_ms
                    )
                })
                .collect();
            out.push_str(&format!(
                "    # serves {}\n    - keys: {{ {} }}\n",
                served.join("; ").replace('\n', " "),
                keys.join(", ")
            ));
        }
    }
    out
}

/// A YAML mapping key, quoted when it is not a plain word.
fn yaml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        k.to_string()
    } else {
        serde_json::to_string(k).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::op::parse;
    use crate::analysis::stats::group;
    use mongodb::bson::doc;

    fn keys(r: &[Recommendation]) -> Vec<String> {
        r.iter()
            .map(|r| format!("{} {}", r.ns, r.keys_text()))
            .collect()
    }

    #[test]
    fn an_index_the_log_shows_in_use_is_never_recommended() {
        // A delete on an index, and a count that scanned its keys: no advice without a connection.
        let del = doc! { "ns": "p.users", "command": { "q": { "email": "a" }, "limit": 0 }, "planSummary": "IXSCAN { email: 1 }", "keysExamined": 2988, "docsExamined": 2988, "ndeleted": 0, "durationMillis": 300 };
        let cnt = doc! { "ns": "p.users", "command": { "count": "users", "query": { "email": "b" } }, "planSummary": "COUNT_SCAN { email: 1 }", "keysExamined": 5000, "durationMillis": 30 };
        let shapes = group(vec![
            parse(&del, "durationMillis").unwrap(),
            parse(&cnt, "durationMillis").unwrap(),
        ]);
        assert!(shapes[0].scans_too_much(), "0 deleted of 2988 examined");
        assert!(recommend(&shapes, None, None).is_empty());
        // A collection scan still gets its index.
        let scan = doc! { "ns": "p.users", "command": { "find": "users", "filter": { "name": "x" } }, "planSummary": "COLLSCAN", "docsExamined": 5000, "nreturned": 1, "durationMillis": 300 };
        let shapes = group(vec![parse(&scan, "durationMillis").unwrap()]);
        assert_eq!(
            keys(&recommend(&shapes, None, None)),
            vec!["p.users { name: 1 }"]
        );
    }

    #[test]
    fn equalities_in_another_order_are_one_shape_and_one_index() {
        let f = |filter: mongodb::bson::Document| {
            parse(&doc! { "ns": "p.t", "command": { "find": "t", "filter": filter }, "planSummary": "COLLSCAN", "docsExamined": 5000, "nreturned": 1, "durationMillis": 100 }, "durationMillis").unwrap()
        };
        let shapes = group(vec![f(doc! { "a": 1, "b": 2 }), f(doc! { "b": 3, "a": 4 })]);
        assert_eq!(shapes.len(), 1);
        assert_eq!(shapes[0].count, 2);
        // Different shapes whose candidates are permutations: one index.
        let shapes = group(vec![
            f(doc! { "a": 1, "b": 2 }),
            f(doc! { "b": 3, "a": { "$in": [1, 2] } }),
        ]);
        assert_eq!(shapes.len(), 2);
        let r = recommend(&shapes, None, None);
        assert_eq!(r.len(), 1, "{:?}", keys(&r));
        assert_eq!(r[0].shapes.len(), 2);
    }
}
