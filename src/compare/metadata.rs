//! Comparing a collection's options and indexes on two sides, with the rules the README's
//! table states. Values are compared by their BSON encoding, in order, unless the server
//! itself ignores the order or the type: a pipeline, a `$sort` or `$project` inside it, a
//! validator, a partial filter or an index key pattern keep their order; an option set
//! (the options document, an index definition, a collation, text weights) does not; a
//! number the server reads as a number (an index key's direction, `expireAfterSeconds`,
//! `bits`, a weight) compares by value. A NaN equals the same NaN, as bytes do.
//!
//! Indexes are matched by name and compared by their whole definition (every field the
//! server keeps, minus the index format version `v`, `ns` and `background`, and minus
//! fields equal to the server's default), so twin indexes on one key with different
//! collations are two indexes, and an index only on the target is reported.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use mongodb::bson::{Bson, Document};

use super::order;
use super::raw;

fn show(v: Option<&Bson>) -> String {
    match v {
        None => "(none)".into(),
        Some(b) => b.clone().into_relaxed_extjson().to_string(),
    }
}

/// Exactly the same BSON: type, value bytes, and order at every level.
fn same_bytes(a: &Bson, b: &Bson) -> bool {
    raw::encode(a) == raw::encode(b)
}

fn is_number(b: &Bson) -> bool {
    matches!(
        b,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_)
    )
}

/// Numbers by value (1 == 1.0 == NumberLong(1)), anything else by bytes.
fn same_number_or_bytes(a: &Bson, b: &Bson) -> bool {
    if is_number(a) && is_number(b) {
        return order::compare(a, b) == Ordering::Equal;
    }
    same_bytes(a, b)
}

/// Two documents as sets of fields (order ignored), each value compared by `same`.
fn same_fields(a: &Bson, b: &Bson, same: fn(&Bson, &Bson) -> bool) -> bool {
    match (a, b) {
        (Bson::Document(x), Bson::Document(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => same_bytes(a, b),
    }
}

/// Two documents in order, field names equal, each value compared by `same`.
fn same_in_order(a: &Bson, b: &Bson, same: fn(&Bson, &Bson) -> bool) -> bool {
    match (a, b) {
        (Bson::Document(x), Bson::Document(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((k, v), (l, w))| k == l && same(v, w))
        }
        _ => same_bytes(a, b),
    }
}

/// Options without what means nothing between clusters (`uuid`) or is the server's default
/// (`validationLevel: strict`, `validationAction: error`, which a `collMod` spells out).
fn normalized(o: &Document) -> Document {
    let mut o = o.clone();
    o.remove("uuid");
    if o.get_str("validationLevel") == Ok("strict") {
        o.remove("validationLevel");
    }
    if o.get_str("validationAction") == Ok("error") {
        o.remove("validationAction");
    }
    o
}

/// How one collection option compares: a collation is a set of settings; everything else
/// (validator, view pipeline, capped size, time-series settings…) exactly, in order.
fn same_option(key: &str, a: &Bson, b: &Bson) -> bool {
    match key {
        "collation" => same_fields(a, b, same_bytes),
        _ => same_bytes(a, b),
    }
}

/// The options that differ, described.
pub fn options(source: &Document, target: &Document) -> Vec<String> {
    let (source, target) = (&normalized(source), &normalized(target));
    let mut keys: Vec<&String> = source.keys().chain(target.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| match (source.get(*k), target.get(*k)) {
            (Some(a), Some(b)) => !same_option(k, a, b),
            _ => true,
        })
        .map(|k| {
            format!(
                "option {k}: {} on the source, {} on the target",
                show(source.get(k)),
                show(target.get(k))
            )
        })
        .collect()
}

/// An index definition as compared: every field but the name, the format version, the
/// legacy `ns`, the ignored `background`, and fields at the server's default.
fn definition(d: &Document) -> BTreeMap<String, Bson> {
    d.iter()
        .filter(|(k, v)| {
            let default = match k.as_str() {
                "name" | "v" | "ns" | "background" => true,
                "unique" | "sparse" | "hidden" | "prepareUnique" => *v == &Bson::Boolean(false),
                "default_language" => v.as_str() == Some("english"),
                "language_override" => v.as_str() == Some("language"),
                _ => false,
            };
            !default
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// How one index field compares (see the module comment).
fn same_index_field(key: &str, a: &Bson, b: &Bson) -> bool {
    match key {
        "key" => same_in_order(a, b, same_number_or_bytes),
        "collation" => same_fields(a, b, same_bytes),
        "weights" => same_fields(a, b, same_number_or_bytes),
        _ => same_number_or_bytes(a, b),
    }
}

/// The fields in which two definitions differ.
fn definition_diff(a: &BTreeMap<String, Bson>, b: &BTreeMap<String, Bson>) -> Vec<String> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| match (a.get(*k), b.get(*k)) {
            (Some(x), Some(y)) => !same_index_field(k, x, y),
            _ => true,
        })
        .map(|k| {
            format!(
                "{k}: {} on the source, {} on the target",
                show(a.get(k)),
                show(b.get(k))
            )
        })
        .collect()
}

/// The indexes that differ, described: missing, extra, renamed, or with another definition.
pub fn indexes(source: &[Document], target: &[Document]) -> Vec<String> {
    let name = |d: &Document| d.get_str("name").unwrap_or_default().to_string();
    let src: Vec<(String, BTreeMap<String, Bson>)> =
        source.iter().map(|d| (name(d), definition(d))).collect();
    let dst: Vec<(String, BTreeMap<String, Bson>)> =
        target.iter().map(|d| (name(d), definition(d))).collect();
    let mut claimed = vec![false; dst.len()];
    for (i, (n, _)) in dst.iter().enumerate() {
        claimed[i] = src.iter().any(|(m, _)| m == n);
    }
    let mut out = Vec::new();
    for (n, def) in &src {
        if let Some((_, other)) = dst.iter().find(|(m, _)| m == n) {
            let changes = definition_diff(def, other);
            if !changes.is_empty() {
                out.push(format!("index {n} differs: {}", changes.join("; ")));
            }
            continue;
        }
        // The same definition under another name not used on the source: renamed.
        let renamed = dst
            .iter()
            .enumerate()
            .find(|(i, (_, other))| !claimed[*i] && definition_diff(def, other).is_empty());
        match renamed {
            Some((i, (m, _))) => {
                claimed[i] = true;
                out.push(format!("index {n} is named {m} on the target"));
            }
            None => out.push(format!("index {n} missing on the target")),
        }
    }
    for (i, (m, _)) in dst.iter().enumerate() {
        if !claimed[i] {
            out.push(format!("index {m} only on the target"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn option_differences() {
        let a = doc! { "validator": { "a": 1 }, "uuid": 1 };
        let b = doc! { "validator": { "a": 2 }, "uuid": 2, "capped": true };
        let d = options(&a, &b);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].starts_with("option capped"));
        assert!(d[1].starts_with("option validator"));
    }

    #[test]
    fn options_keep_order_and_nan() {
        let nan = doc! { "validator": { "$expr": { "$ne": ["$x", f64::NAN] } } };
        assert!(options(&nan, &nan.clone()).is_empty());
        let p = |s: Document| doc! { "viewOn": "c", "pipeline": [ { "$sort": s } ] };
        let (a, b) = (p(doc! { "a": 1, "b": -1 }), p(doc! { "b": -1, "a": 1 }));
        assert_eq!(options(&a, &b).len(), 1);
        // A collation is a set of settings.
        let c1 = doc! { "collation": { "locale": "fr", "strength": 2 } };
        let c2 = doc! { "collation": { "strength": 2, "locale": "fr" } };
        assert!(options(&c1, &c2).is_empty());
    }

    #[test]
    fn index_differences() {
        let id = doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" };
        let a = vec![
            id.clone(),
            doc! { "v": 2, "key": { "e": 1 }, "name": "e_1", "unique": true },
            doc! { "v": 2, "key": { "m": 1 }, "name": "m_1" },
            doc! { "v": 2, "key": { "r": 1 }, "name": "r_1" },
        ];
        let b = vec![
            id.clone(),
            doc! { "v": 1, "key": { "e": 1 }, "name": "e_1" },
            doc! { "v": 2, "key": { "x": 1 }, "name": "x_1" },
            doc! { "v": 2, "key": { "r": 1.0 }, "name": "r_renamed" },
        ];
        let d = indexes(&a, &b);
        assert!(
            d.iter().any(|l| l.starts_with("index e_1 differs: unique")),
            "{d:?}"
        );
        assert!(
            d.contains(&"index m_1 missing on the target".to_string()),
            "{d:?}"
        );
        assert!(
            d.contains(&"index x_1 only on the target".to_string()),
            "{d:?}"
        );
        assert!(
            d.contains(&"index r_1 is named r_renamed on the target".to_string()),
            "{d:?}"
        );
        assert_eq!(d.len(), 4, "{d:?}");
        assert!(indexes(&a, &a).is_empty());
    }

    #[test]
    fn twin_indexes_and_every_option() {
        let twins = vec![
            doc! { "v": 2, "key": { "s": 1 }, "name": "s_1" },
            doc! { "v": 2, "key": { "s": 1 }, "name": "s_fr", "collation": { "locale": "fr", "strength": 3 } },
        ];
        assert!(indexes(&twins, &twins.clone()).is_empty());
        let geo = |bits: i32| {
            vec![
                doc! { "v": 2, "key": { "p": "2d" }, "name": "p_2d", "bits": bits, "min": -180.0, "max": 180 },
            ]
        };
        assert!(indexes(&geo(26), &geo(26)).is_empty());
        assert_eq!(indexes(&geo(26), &geo(20)).len(), 1);
        let text = |o: &str| {
            vec![
                doc! { "v": 2, "key": { "_fts": "text", "_ftsx": 1 }, "name": "t", "weights": { "a": 1, "b": 2 }, "default_language": "english", "language_override": o, "textIndexVersion": 3 },
            ]
        };
        assert!(indexes(&text("language"), &text("language")).is_empty());
        assert_eq!(indexes(&text("language"), &text("lang")).len(), 1);
        // Defaults spelled out or left out are the same index.
        let plain = vec![doc! { "v": 2, "key": { "a": 1 }, "name": "a_1" }];
        let spelled = vec![
            doc! { "v": 2, "key": { "a": 1i64 }, "name": "a_1", "unique": false, "background": true },
        ];
        assert!(indexes(&plain, &spelled).is_empty());
        // The key pattern keeps its order.
        let ab = vec![doc! { "v": 2, "key": { "a": 1, "b": 1 }, "name": "ab" }];
        let ba = vec![doc! { "v": 2, "key": { "b": 1, "a": 1 }, "name": "ab" }];
        assert_eq!(indexes(&ab, &ba).len(), 1);
    }
}
