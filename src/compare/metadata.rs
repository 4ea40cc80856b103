//! Comparing a collection's options and indexes on two sides. Indexes go through the same
//! normalization as `indexes plan` (`indexes::plan::from_live`: no `v`, `ns`, defaults), so
//! both commands agree on what "the same index" is; they are matched by key pattern.

use mongodb::bson::{Bson, Document};

use crate::indexes::plan;

fn show(v: Option<&Bson>) -> String {
    match v {
        None => "(none)".into(),
        Some(b) => b.clone().into_relaxed_extjson().to_string(),
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

/// The options that differ, described.
pub fn options(source: &Document, target: &Document) -> Vec<String> {
    let (source, target) = (&normalized(source), &normalized(target));
    let mut keys: Vec<&String> = source.keys().chain(target.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| source.get(*k) != target.get(*k))
        .map(|k| {
            format!(
                "option {k}: {} on the source, {} on the target",
                show(source.get(k)),
                show(target.get(k))
            )
        })
        .collect()
}

/// The indexes that differ, described: missing, extra, renamed, or with other options.
pub fn indexes(source: &[Document], target: &[Document]) -> Vec<String> {
    let src: Vec<_> = source.iter().map(plan::from_live).collect();
    let dst: Vec<_> = target.iter().map(plan::from_live).collect();
    let name = |d: &crate::indexes::spec::IndexDef| d.name.clone().unwrap_or_default();
    let mut out = Vec::new();
    for s in &src {
        match dst.iter().find(|d| d.key == s.key) {
            None => out.push(format!("index {} missing on the target", name(s))),
            Some(d) => {
                let (modify, rebuild) = plan::diff(s, d);
                let changes: Vec<String> = modify.into_iter().chain(rebuild).collect();
                if !changes.is_empty() {
                    out.push(format!(
                        "index {} differs (target → source): {}",
                        name(s),
                        changes.join(", ")
                    ));
                }
                if name(s) != name(d) {
                    out.push(format!(
                        "index {} is named {} on the target",
                        name(s),
                        name(d)
                    ));
                }
            }
        }
    }
    for d in &dst {
        if !src.iter().any(|s| s.key == d.key) {
            out.push(format!("index {} only on the target", name(d)));
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
    fn index_differences() {
        let id = doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" };
        let a = vec![
            id.clone(),
            doc! { "v": 2, "key": { "e": 1 }, "name": "e_1", "unique": true },
            doc! { "v": 2, "key": { "m": 1 }, "name": "m_1" },
        ];
        let b = vec![
            id.clone(),
            doc! { "v": 1, "key": { "e": 1 }, "name": "e_1" },
            doc! { "v": 2, "key": { "x": 1 }, "name": "x_1" },
        ];
        let d = indexes(&a, &b);
        assert!(
            d.iter().any(|l| l.starts_with("index e_1 differs")),
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
        assert!(indexes(&a, &a).is_empty());
    }
}
