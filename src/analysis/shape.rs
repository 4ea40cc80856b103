//! Query shapes: an operation with every literal replaced by a placeholder of its type, so
//! that `{email: "a@x"}` and `{email: "b@y"}` are one shape while `{age: 5}` (equality) and
//! `{age: {$gt: 5}}` (range) are two. Operators are kept; an `$in` list collapses to one
//! placeholder; field paths in aggregation expressions (`"$amount"`) are kept. The fields
//! of a filter (and the operators on one field) are in a canonical (sorted) order: their
//! order does not change what a query means, so `{a, b}` and `{b, a}` are one shape.

use mongodb::bson::{Bson, Document};

/// The placeholder for a literal: `?string`, `?number`, `?objectId`, `?date`…
fn placeholder(v: &Bson) -> Bson {
    let t = match v {
        Bson::String(_) => "string",
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => "number",
        Bson::ObjectId(_) => "objectId",
        Bson::DateTime(_) | Bson::Timestamp(_) => "date",
        Bson::Boolean(_) => "bool",
        Bson::Null | Bson::Undefined => "null",
        Bson::RegularExpression(_) => "regex",
        Bson::Array(_) => "array",
        Bson::Document(_) => "object",
        Bson::Binary(_) => "binary",
        _ => "value",
    };
    Bson::String(format!("?{t}"))
}

/// A document with its keys sorted.
fn sorted(d: Document) -> Document {
    let mut v: Vec<(String, Bson)> = d.into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.into_iter().collect()
}

/// A filter (find's `filter`, `$match`, an update's `q`) as a shape, fields sorted.
pub fn filter(f: &Document) -> Document {
    sorted(filter_in_order(f))
}

fn filter_in_order(f: &Document) -> Document {
    let mut out = Document::new();
    for (k, v) in f {
        let shaped = match (k.as_str(), v) {
            ("$and" | "$or" | "$nor", Bson::Array(clauses)) => Bson::Array(
                clauses
                    .iter()
                    .map(|c| match c {
                        Bson::Document(d) => Bson::Document(filter(d)),
                        other => placeholder(other),
                    })
                    .collect(),
            ),
            ("$expr", e) => expression(e),
            ("$text" | "$where" | "$comment", x) => placeholder(x),
            (_, Bson::Document(d)) if d.keys().next().is_some_and(|k| k.starts_with('$')) => {
                Bson::Document(operators(d))
            }
            (_, v) => placeholder(v),
        };
        out.insert(k.clone(), shaped);
    }
    out
}

/// `{$gt: 5, $lt: 9}` → `{$gt: "?number", $lt: "?number"}`; `$in` → one placeholder.
fn operators(d: &Document) -> Document {
    sorted(operators_in_order(d))
}

fn operators_in_order(d: &Document) -> Document {
    let mut out = Document::new();
    for (op, arg) in d {
        let shaped = match (op.as_str(), arg) {
            ("$in" | "$nin" | "$all", _) => Bson::String("?array".into()),
            ("$elemMatch", Bson::Document(inner)) => {
                Bson::Document(if inner.keys().next().is_some_and(|k| k.starts_with('$')) {
                    operators(inner)
                } else {
                    filter(inner)
                })
            }
            ("$not", Bson::Document(inner)) => Bson::Document(operators(inner)),
            // Whether a field exists is part of the shape's meaning, not a parameter.
            ("$exists" | "$type" | "$options", v) => v.clone(),
            (_, v) => placeholder(v),
        };
        out.insert(op.clone(), shaped);
    }
    out
}

/// An aggregation expression: field paths and operators kept, literals replaced.
fn expression(e: &Bson) -> Bson {
    match e {
        Bson::String(s) if s.starts_with('$') => e.clone(),
        Bson::Document(d) => {
            Bson::Document(d.iter().map(|(k, v)| (k.clone(), expression(v))).collect())
        }
        Bson::Array(a) => Bson::Array(a.iter().map(expression).collect()),
        other => placeholder(other),
    }
}

/// A pipeline: `$match` as a filter, `$sort`/`$project`/`$group` keys kept, literals replaced.
pub fn pipeline(stages: &[Bson]) -> Vec<Bson> {
    stages
        .iter()
        .map(|s| match s {
            Bson::Document(d) => {
                let mut out = Document::new();
                for (k, v) in d {
                    let shaped = match (k.as_str(), v) {
                        ("$match", Bson::Document(f)) => Bson::Document(filter(f)),
                        ("$sort", v) => v.clone(),
                        ("$limit" | "$skip" | "$sample", v) => placeholder(v),
                        (_, v) => expression(v),
                    };
                    out.insert(k.clone(), shaped);
                }
                Bson::Document(out)
            }
            other => placeholder(other),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, oid::ObjectId};

    #[test]
    fn literals_become_typed_placeholders_and_operators_stay() {
        let a = filter(&doc! { "email": "a@x", "age": { "$gt": 5 }, "tags": { "$in": [1, 2, 3] } });
        let b = filter(&doc! { "email": "b@y", "age": { "$gt": 70 }, "tags": { "$in": [9] } });
        assert_eq!(a, b);
        assert_eq!(
            a,
            doc! { "email": "?string", "age": { "$gt": "?number" }, "tags": { "$in": "?array" } }
        );
        // Equality and range are different shapes.
        assert_ne!(
            filter(&doc! { "age": 5 }),
            filter(&doc! { "age": { "$gte": 5 } })
        );
        assert_eq!(
            filter(&doc! { "$or": [ { "user_id": ObjectId::new() }, { "status": "open" } ] }),
            doc! { "$or": [ { "user_id": "?objectId" }, { "status": "?string" } ] }
        );
    }

    #[test]
    fn equality_order_is_canonical() {
        let a = filter(&doc! { "a": 1, "b": "x", "c": { "$lt": 3, "$gt": 1 } });
        let b = filter(&doc! { "c": { "$gt": 0, "$lt": 9 }, "b": "y", "a": 2 });
        assert_eq!(a, b);
        assert_eq!(a.keys().collect::<Vec<_>>(), vec!["a", "b", "c"]);
    }

    #[test]
    fn pipelines_keep_field_paths() {
        let p = pipeline(&[
            Bson::Document(doc! { "$match": { "status": "won" } }),
            Bson::Document(
                doc! { "$group": { "_id": "$user_id", "total": { "$sum": "$amount" }, "n": { "$sum": 1 } } },
            ),
            Bson::Document(doc! { "$limit": 10 }),
        ]);
        assert_eq!(
            p,
            vec![
                Bson::Document(doc! { "$match": { "status": "?string" } }),
                Bson::Document(
                    doc! { "$group": { "_id": "$user_id", "total": { "$sum": "$amount" }, "n": { "$sum": "?number" } } }
                ),
                Bson::Document(doc! { "$limit": "?number" }),
            ]
        );
    }
}
