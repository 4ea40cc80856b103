//! How two versions of one document differ, for a person: the first differing field paths
//! (`items.2.price`), or "the same fields in another order", which MongoDB (and `dbHash`)
//! treat as a different document. Only documents whose bytes differ get here, and they are
//! compared as bytes, element by element (`compare::raw`): nothing is decoded, so a
//! document holding invalid UTF-8 is named like any other, and a NaN equals the same NaN.

use anyhow::Result;

use super::raw::{self, ty, Element};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocDiff {
    Same,
    /// Every field equal, in another order (at some level).
    FieldOrder,
    /// Paths whose values differ (or exist on one side only), at most the first few.
    Fields(Vec<String>),
}

fn is_container(t: u8) -> bool {
    t == ty::DOCUMENT || t == ty::ARRAY
}

fn collect(doc: &[u8]) -> Result<Vec<Element<'_>>> {
    raw::elements(doc).collect()
}

/// Equal as values, ignoring field order inside documents at every level.
fn same_ignoring_order(a: &Element, b: &Element) -> Result<bool> {
    if a.ty != b.ty {
        return Ok(false);
    }
    if !is_container(a.ty) || a.value == b.value {
        return Ok(a.value == b.value);
    }
    let (x, y) = (collect(a.value)?, collect(b.value)?);
    if x.len() != y.len() {
        return Ok(false);
    }
    if a.ty == ty::ARRAY {
        for (p, q) in x.iter().zip(&y) {
            if !same_ignoring_order(p, q)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    for p in &x {
        match y.iter().find(|q| q.key == p.key) {
            Some(q) if same_ignoring_order(p, q)? => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

fn join(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

fn walk(path: &str, a: &Element, b: &Element, out: &mut Vec<String>, max: usize) -> Result<()> {
    if out.len() >= max || a.same_value(b) {
        return Ok(());
    }
    if a.ty != b.ty {
        out.push(format!(
            "{path} (type {} vs {})",
            a.type_name(),
            b.type_name()
        ));
        return Ok(());
    }
    if !is_container(a.ty) {
        out.push(path.to_string());
        return Ok(());
    }
    let (x, y) = (collect(a.value)?, collect(b.value)?);
    if a.ty == ty::ARRAY {
        for (p, q) in x.iter().zip(&y) {
            walk(&join(path, &p.key_text()), p, q, out, max)?;
        }
        if x.len() != y.len() && out.len() < max {
            out.push(format!("{path} (array length {} vs {})", x.len(), y.len()));
        }
        return Ok(());
    }
    for p in &x {
        match y.iter().find(|q| q.key == p.key) {
            Some(q) => walk(&join(path, &p.key_text()), p, q, out, max)?,
            None => out.push(format!("{} (missing on target)", join(path, &p.key_text()))),
        }
        if out.len() >= max {
            return Ok(());
        }
    }
    for q in y.iter().filter(|q| !x.iter().any(|p| p.key == q.key)) {
        if out.len() >= max {
            break;
        }
        out.push(format!("{} (only on target)", join(path, &q.key_text())));
    }
    Ok(())
}

/// How `target` differs from `source` (both BSON documents); at most `max` paths.
pub fn diff(source: &[u8], target: &[u8], max: usize) -> Result<DocDiff> {
    let whole = |v| Element {
        ty: ty::DOCUMENT,
        key: b"",
        value: v,
    };
    let (a, b) = (whole(source), whole(target));
    if a.same_value(&b) {
        return Ok(DocDiff::Same);
    }
    if same_ignoring_order(&a, &b)? {
        return Ok(DocDiff::FieldOrder);
    }
    let mut out = Vec::new();
    walk("", &a, &b, &mut out, max.max(1))?;
    if out.is_empty() {
        return Ok(DocDiff::Same);
    }
    Ok(DocDiff::Fields(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, Document, RawDocumentBuf};

    fn d(x: Document, y: Document, max: usize) -> DocDiff {
        let (a, b) = (
            RawDocumentBuf::from_document(&x).unwrap(),
            RawDocumentBuf::from_document(&y).unwrap(),
        );
        diff(a.as_bytes(), b.as_bytes(), max).unwrap()
    }

    #[test]
    fn paths_three_levels_deep_inside_arrays() {
        let a = doc! { "_id": 1, "items": [ { "p": { "q": 1 } }, { "p": { "q": 2 } } ] };
        let b = doc! { "_id": 1, "items": [ { "p": { "q": 1 } }, { "p": { "q": 3 } } ] };
        assert_eq!(d(a, b, 5), DocDiff::Fields(vec!["items.1.p.q".into()]));
    }

    #[test]
    fn order_types_and_presence() {
        let a = doc! { "_id": 1, "x": 1, "y": { "a": 1, "b": 2 } };
        let b = doc! { "_id": 1, "x": 1, "y": { "b": 2, "a": 1 } };
        assert_eq!(d(a.clone(), b, 5), DocDiff::FieldOrder);
        let c = doc! { "_id": 1, "x": 1.0, "z": true };
        match d(a.clone(), c, 5) {
            DocDiff::Fields(p) => {
                assert_eq!(p[0], "x (type int vs double)", "{p:?}");
                assert_eq!(p[1], "y (missing on target)");
                assert_eq!(p[2], "z (only on target)");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(d(a.clone(), a, 5), DocDiff::Same);
        let e = doc! { "_id": 1, "arr": [1, 2, 3] };
        let f = doc! { "_id": 1, "arr": [1, 2] };
        assert_eq!(
            d(e, f, 5),
            DocDiff::Fields(vec!["arr (array length 3 vs 2)".into()])
        );
        // Equal values, other bytes: named, not "the same".
        assert_eq!(
            d(doc! { "_id": 1, "z": -0.0 }, doc! { "_id": 1, "z": 0.0 }, 5),
            DocDiff::Fields(vec!["z".into()])
        );
        assert_eq!(
            d(doc! { "n": f64::NAN }, doc! { "n": f64::NAN }, 5),
            DocDiff::Same
        );
    }

    #[test]
    fn invalid_utf8_is_compared_not_decoded() {
        // { _id: 1, s: "a\xff" } and { _id: 1, s: "b\xff" }
        let make = |c: u8| {
            let mut v = vec![0u8; 4];
            v.extend_from_slice(&[0x10, b'_', b'i', b'd', 0, 1, 0, 0, 0]);
            v.extend_from_slice(&[0x02, b's', 0, 3, 0, 0, 0, c, 0xff, 0, 0]);
            let n = v.len() as i32;
            v[..4].copy_from_slice(&n.to_le_bytes());
            v
        };
        assert_eq!(
            diff(&make(b'a'), &make(b'b'), 5).unwrap(),
            DocDiff::Fields(vec!["s".into()])
        );
    }
}
