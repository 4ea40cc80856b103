//! How two versions of one document differ, for a person: the first differing field paths
//! (`items.2.price`), or "the same fields in another order", which MongoDB (and `dbHash`)
//! treat as a different document. Only documents whose bytes differ get here.

use mongodb::bson::{Bson, Document};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocDiff {
    Same,
    /// Every field equal, in another order (at some level).
    FieldOrder,
    /// Paths whose values differ (or exist on one side only), at most the first few.
    Fields(Vec<String>),
}

/// Equal as documents, ignoring field order at every level.
fn same_ignoring_order(a: &Bson, b: &Bson) -> bool {
    match (a, b) {
        (Bson::Document(x), Bson::Document(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_ignoring_order(v, w)))
        }
        (Bson::Array(x), Bson::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_ignoring_order(p, q))
        }
        _ => a == b,
    }
}

fn walk(path: &str, a: &Bson, b: &Bson, out: &mut Vec<String>, max: usize) {
    if out.len() >= max || a == b {
        return;
    }
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (a, b) {
        (Bson::Document(x), Bson::Document(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => walk(&join(k), v, w, out, max),
                    None => out.push(format!("{} (missing on target)", join(k))),
                }
                if out.len() >= max {
                    return;
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                if out.len() >= max {
                    return;
                }
                out.push(format!("{} (only on target)", join(k)));
            }
        }
        (Bson::Array(x), Bson::Array(y)) => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                walk(&join(&i.to_string()), p, q, out, max);
            }
            if x.len() != y.len() && out.len() < max {
                out.push(format!(
                    "{} (array length {} vs {})",
                    path,
                    x.len(),
                    y.len()
                ));
            }
        }
        _ if std::mem::discriminant(a) != std::mem::discriminant(b) => out.push(format!(
            "{path} (type {:?} vs {:?})",
            a.element_type(),
            b.element_type()
        )),
        _ => out.push(path.to_string()),
    }
}

/// Equal including field order (`Document`'s own equality ignores order).
fn same_in_order(a: &Bson, b: &Bson) -> bool {
    match (a, b) {
        (Bson::Document(x), Bson::Document(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((k, v), (l, w))| k == l && same_in_order(v, w))
        }
        (Bson::Array(x), Bson::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_in_order(p, q))
        }
        _ => a == b,
    }
}

/// How `target` differs from `source`; at most `max` paths.
pub fn diff(source: &Document, target: &Document, max: usize) -> DocDiff {
    let (a, b) = (
        Bson::Document(source.clone()),
        Bson::Document(target.clone()),
    );
    if same_in_order(&a, &b) {
        return DocDiff::Same;
    }
    if same_ignoring_order(&a, &b) {
        return DocDiff::FieldOrder;
    }
    let mut out = Vec::new();
    walk("", &a, &b, &mut out, max.max(1));
    DocDiff::Fields(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn paths_three_levels_deep_inside_arrays() {
        let a = doc! { "_id": 1, "items": [ { "p": { "q": 1 } }, { "p": { "q": 2 } } ] };
        let b = doc! { "_id": 1, "items": [ { "p": { "q": 1 } }, { "p": { "q": 3 } } ] };
        assert_eq!(diff(&a, &b, 5), DocDiff::Fields(vec!["items.1.p.q".into()]));
    }

    #[test]
    fn order_types_and_presence() {
        let a = doc! { "_id": 1, "x": 1, "y": { "a": 1, "b": 2 } };
        let b = doc! { "_id": 1, "x": 1, "y": { "b": 2, "a": 1 } };
        assert_eq!(diff(&a, &b, 5), DocDiff::FieldOrder);
        let c = doc! { "_id": 1, "x": 1.0, "z": true };
        match diff(&a, &c, 5) {
            DocDiff::Fields(p) => {
                assert!(p[0].starts_with("x (type"), "{p:?}");
                assert_eq!(p[1], "y (missing on target)");
                assert_eq!(p[2], "z (only on target)");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(diff(&a, &a, 5), DocDiff::Same);
        let d = doc! { "_id": 1, "arr": [1, 2, 3] };
        let e = doc! { "_id": 1, "arr": [1, 2] };
        assert_eq!(
            diff(&d, &e, 5),
            DocDiff::Fields(vec!["arr (array length 3 vs 2)".into()])
        );
    }
}
