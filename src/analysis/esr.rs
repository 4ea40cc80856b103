//! Index recommendations by the Equality–Sort–Range rule: the fields compared for
//! equality first (any order among them), then the sort's fields in its order and
//! directions, then the fields compared by range. An `$in` is an equality without a sort
//! and a range before one; a regex counts only when anchored (`^…`, a range); an `$or` gets
//! one index per clause. A candidate an existing index already serves is dropped, and a
//! candidate that is a prefix of another is merged into it.

use mongodb::bson::{Bson, Document};

/// What a filter asks of each field.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Predicates {
    pub eq: Vec<String>,
    pub in_: Vec<String>,
    pub range: Vec<String>,
    /// `$or` clauses, each its own predicates.
    pub or: Vec<Predicates>,
}

fn push(v: &mut Vec<String>, f: &str) {
    if !v.iter().any(|x| x == f) {
        v.push(f.to_string());
    }
}

fn anchored(pattern: &str) -> bool {
    pattern.starts_with('^') && !pattern.starts_with("^.*")
}

/// Read a filter's predicates.
pub fn predicates(filter: &Document) -> Predicates {
    let mut p = Predicates::default();
    for (k, v) in filter {
        match (k.as_str(), v) {
            ("$and", Bson::Array(cl)) => {
                for c in cl.iter().filter_map(|c| c.as_document()) {
                    let q = predicates(c);
                    q.eq.iter().for_each(|f| push(&mut p.eq, f));
                    q.in_.iter().for_each(|f| push(&mut p.in_, f));
                    q.range.iter().for_each(|f| push(&mut p.range, f));
                    p.or.extend(q.or);
                }
            }
            ("$or", Bson::Array(cl)) => {
                p.or = cl
                    .iter()
                    .filter_map(|c| c.as_document())
                    .map(predicates)
                    .collect();
            }
            (k, _) if k.starts_with('$') => {}
            (f, Bson::RegularExpression(r)) => {
                if anchored(&r.pattern) {
                    push(&mut p.range, f);
                }
            }
            (f, Bson::Document(ops)) if ops.keys().next().is_some_and(|o| o.starts_with('$')) => {
                for (op, arg) in ops {
                    match op.as_str() {
                        "$eq" => push(&mut p.eq, f),
                        "$in" => match arg.as_array() {
                            Some(a) if a.len() == 1 => push(&mut p.eq, f),
                            _ => push(&mut p.in_, f),
                        },
                        "$gt" | "$gte" | "$lt" | "$lte" => push(&mut p.range, f),
                        "$regex" => {
                            let pat = match arg {
                                Bson::String(s) => s.clone(),
                                Bson::RegularExpression(r) => r.pattern.clone(),
                                _ => String::new(),
                            };
                            if anchored(&pat) {
                                push(&mut p.range, f);
                            }
                        }
                        "$elemMatch" => push(&mut p.eq, f),
                        _ => {}
                    }
                }
            }
            (f, _) => push(&mut p.eq, f),
        }
    }
    // A field with both an equality and a range is an equality.
    let eq = p.eq.clone();
    p.range.retain(|f| !eq.contains(f));
    p.in_.retain(|f| !eq.contains(f));
    p
}

/// One candidate index for one shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Equality fields (any order serves), then the sort, then range fields.
    pub eq: Vec<String>,
    pub sort: Vec<(String, i32)>,
    pub range: Vec<String>,
    /// Projected fields appended so that the index covers the query (see `covering`).
    pub cover: Vec<String>,
}

impl Candidate {
    /// The key pattern: equalities (in the filter's order), the sort, the ranges (ascending).
    pub fn keys(&self) -> Vec<(String, i32)> {
        let mut k: Vec<(String, i32)> = self.eq.iter().map(|f| (f.clone(), 1)).collect();
        for (f, d) in &self.sort {
            if !k.iter().any(|(x, _)| x == f) {
                k.push((f.clone(), *d));
            }
        }
        for f in self.range.iter().chain(&self.cover) {
            if !k.iter().any(|(x, _)| x == f) {
                k.push((f.clone(), 1));
            }
        }
        k
    }
}

fn direction(v: &Bson) -> i32 {
    match v {
        Bson::Int32(n) if *n < 0 => -1,
        Bson::Int64(n) if *n < 0 => -1,
        Bson::Double(n) if *n < 0.0 => -1,
        _ => 1,
    }
}

/// The candidates for a filter and sort: one, or one per `$or` clause.
pub fn candidates(filter: &Document, sort: &Document) -> Vec<Candidate> {
    let sort: Vec<(String, i32)> = sort
        .iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), direction(v)))
        .collect();
    let p = predicates(filter);
    let one = |p: &Predicates| {
        let mut eq = p.eq.clone();
        let mut range = Vec::new();
        // `$in` is an equality without a sort; before a sort it would need a merge of
        // sorted runs, so it goes after the sort, as a range.
        if sort.is_empty() {
            eq.extend(p.in_.iter().cloned());
        } else {
            range.extend(p.in_.iter().cloned());
        }
        range.extend(p.range.iter().cloned());
        Candidate {
            eq,
            sort: sort.clone(),
            range,
            cover: Vec::new(),
        }
    };
    let mut out = Vec::new();
    if p.or.is_empty() {
        let c = one(&p);
        if !c.keys().is_empty() {
            out.push(c);
        }
    } else {
        for clause in &p.or {
            let mut merged = clause.clone();
            p.eq.iter().for_each(|f| push(&mut merged.eq, f));
            p.in_.iter().for_each(|f| push(&mut merged.in_, f));
            p.range.iter().for_each(|f| push(&mut merged.range, f));
            let c = one(&merged);
            if !c.keys().is_empty() {
                out.push(c);
            }
        }
    }
    out
}

/// The fields to append so that an index covers a find: only for an inclusion projection
/// that leaves out `_id`, with plain field names, none of them (nor any filter or sort
/// field) holding arrays in the sampled documents (`arrays`; a multikey index cannot
/// cover). None when covering is not valid or not known to be.
pub fn covering(
    filter: &Document,
    sort: &Document,
    projection: &Document,
    arrays: Option<&std::collections::BTreeSet<String>>,
) -> Option<Vec<String>> {
    let arrays = arrays?;
    if projection.is_empty() || projection.get("_id").is_none_or(|v| !is_zero(v)) {
        return None;
    }
    let mut fields = Vec::new();
    for (k, v) in projection {
        if k == "_id" {
            continue;
        }
        if is_zero(v)
            || !matches!(
                v,
                Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Boolean(true)
            )
            || k.contains('$')
        {
            return None;
        }
        fields.push(k.clone());
    }
    let used = filter.keys().chain(sort.keys()).chain(fields.iter());
    let mut used = used.filter(|f| !f.starts_with('$'));
    if filter.keys().any(|k| k.starts_with('$')) || used.any(|f| arrays.contains(f)) {
        return None;
    }
    Some(fields)
}

fn is_zero(v: &Bson) -> bool {
    matches!(v, Bson::Int32(0) | Bson::Int64(0) | Bson::Boolean(false))
        || matches!(v, Bson::Double(d) if *d == 0.0)
}

/// Whether an existing index (its key pattern) serves the candidate: the equality fields
/// as its prefix in any order, then the sort (or the sort reversed), then the range fields.
pub fn served_by(c: &Candidate, index: &[(String, i32)]) -> bool {
    let n = c.eq.len();
    if index.len() < n {
        return false;
    }
    let prefix: std::collections::BTreeSet<&str> =
        index[..n].iter().map(|(f, _)| f.as_str()).collect();
    let eq: std::collections::BTreeSet<&str> = c.eq.iter().map(String::as_str).collect();
    if prefix != eq {
        return false;
    }
    let sort: Vec<&(String, i32)> = c.sort.iter().filter(|(f, _)| !c.eq.contains(f)).collect();
    let rest = &index[n..];
    if rest.len() < sort.len() {
        return false;
    }
    let same = sort
        .iter()
        .zip(rest)
        .all(|((f, d), (g, e))| f == g && d == e);
    let reversed = sort
        .iter()
        .zip(rest)
        .all(|((f, d), (g, e))| f == g && *d == -e);
    if !sort.is_empty() && !same && !reversed {
        return false;
    }
    let rest = &rest[sort.len()..];
    let range: Vec<&String> = c
        .range
        .iter()
        .filter(|f| !c.eq.contains(f) && !sort.iter().any(|(s, _)| s == *f))
        .collect();
    if range.is_empty() {
        return true;
    }
    // At least the first range field must follow; more is better but one bounds the scan.
    rest.first().is_some_and(|(f, _)| range.contains(&f))
}

/// An index key pattern: (field, direction) in order.
pub type KeyPattern = Vec<(String, i32)>;

/// The key patterns of each namespace's indexes.
pub type Existing = std::collections::BTreeMap<String, Vec<KeyPattern>>;

/// An index key pattern as pairs, from a live index or a spec.
pub fn key_pairs(key: &Document) -> Vec<(String, i32)> {
    key.iter().map(|(k, v)| (k.clone(), direction(v))).collect()
}

/// Whether `a` is a prefix of `b` (same fields and directions).
pub fn is_prefix(a: &[(String, i32)], b: &[(String, i32)]) -> bool {
    a.len() <= b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    fn k(pairs: &[(&str, i32)]) -> Vec<(String, i32)> {
        pairs.iter().map(|(f, d)| (f.to_string(), *d)).collect()
    }

    #[test]
    fn equality_then_sort_then_range() {
        let c = candidates(
            &doc! { "created_at": { "$gte": 1 }, "status": "open", "category": "sports" },
            &doc! { "volume": -1 },
        );
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0].keys(),
            k(&[
                ("status", 1),
                ("category", 1),
                ("volume", -1),
                ("created_at", 1)
            ])
        );
    }

    #[test]
    fn in_is_equality_without_a_sort_and_range_before_one() {
        let c = candidates(
            &doc! { "status": { "$in": ["a", "b"] }, "user_id": 1 },
            &doc! {},
        );
        assert_eq!(c[0].keys(), k(&[("user_id", 1), ("status", 1)]));
        let c = candidates(
            &doc! { "status": { "$in": ["a", "b"] }, "user_id": 1 },
            &doc! { "created_at": -1 },
        );
        assert_eq!(
            c[0].keys(),
            k(&[("user_id", 1), ("created_at", -1), ("status", 1)])
        );
    }

    #[test]
    fn or_gets_one_index_per_clause_and_only_anchored_regexes_count() {
        let c = candidates(
            &doc! { "$or": [ { "email": "a" }, { "google_id": "g" } ] },
            &doc! {},
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].keys(), k(&[("google_id", 1)]));
        let c = candidates(&doc! { "username": { "$regex": "^ali" } }, &doc! {});
        assert_eq!(c[0].keys(), k(&[("username", 1)]));
        assert!(candidates(&doc! { "username": { "$regex": "ali" } }, &doc! {}).is_empty());
    }

    #[test]
    fn covered_fields_only_when_valid() {
        let none = std::collections::BTreeSet::new();
        let f = doc! { "user_id": 1 };
        let p = doc! { "user_id": 1, "amount": 1, "_id": 0 };
        assert_eq!(
            covering(&f, &doc! {}, &p, Some(&none)),
            Some(vec!["user_id".to_string(), "amount".to_string()])
        );
        assert_eq!(
            covering(&f, &doc! {}, &p, None),
            None,
            "unknown multikey: not valid"
        );
        let arrays: std::collections::BTreeSet<String> = ["amount".to_string()].into();
        assert_eq!(
            covering(&f, &doc! {}, &p, Some(&arrays)),
            None,
            "a multikey field cannot be covered"
        );
        assert_eq!(
            covering(&f, &doc! {}, &doc! { "amount": 1 }, Some(&none)),
            None,
            "_id is returned"
        );
        assert_eq!(
            covering(&f, &doc! {}, &doc! { "amount": 0, "_id": 0 }, Some(&none)),
            None,
            "an exclusion"
        );
        let mut c = candidates(&f, &doc! { "created_at": -1 })[0].clone();
        c.cover = vec!["user_id".into(), "amount".into()];
        assert_eq!(
            c.keys(),
            k(&[("user_id", 1), ("created_at", -1), ("amount", 1)])
        );
    }

    #[test]
    fn an_index_with_the_equalities_in_another_order_serves() {
        let c = &candidates(
            &doc! { "status": "open", "category": "x" },
            &doc! { "created_at": -1 },
        )[0];
        assert!(served_by(
            c,
            &k(&[("category", 1), ("status", 1), ("created_at", -1)])
        ));
        assert!(
            served_by(c, &k(&[("category", -1), ("status", 1), ("created_at", 1)])),
            "a reversed sort serves"
        );
        assert!(!served_by(c, &k(&[("category", 1), ("created_at", -1)])));
        assert!(!served_by(c, &k(&[("_id", 1)])));
    }
}
