//! Comparing spec indexes with live ones, and the actions that reconcile them.

use std::collections::BTreeMap;

use mongodb::bson::{Bson, Document};
use serde::Serialize;

use super::spec::{default_name, IndexDef};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// In the spec, not in the database.
    Create,
    /// Only `hidden` or the TTL differ: changed in place with collMod.
    Modify,
    /// Other options differ: dropped and created again.
    Rebuild,
    /// In the database, not in any spec: dropped with --prune, reported otherwise.
    Drop,
    /// Unmanaged and kept (no --prune).
    Unmanaged,
    Ok,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub database: String,
    pub collection: String,
    /// The index name in the database after the step (or the live name for drops).
    pub index: String,
    pub action: Action,
    /// What differs, e.g. "hidden: false → true".
    pub changes: Vec<String>,
    #[serde(skip)]
    pub desired: Option<IndexDef>,
    #[serde(skip)]
    pub live_name: Option<String>,
    /// Spec location, when the step comes from a spec.
    pub spec: Option<String>,
}

impl Step {
    pub fn is_drift(&self) -> bool {
        self.action != Action::Ok
    }
}

fn int(b: &Bson) -> Option<i64> {
    match b {
        Bson::Int32(i) => Some(*i as i64),
        Bson::Int64(i) => Some(*i),
        Bson::Double(d) => Some(*d as i64),
        _ => None,
    }
}

/// A listIndexes entry in the comparable form (drops v, ns, background, version fields and defaults).
pub fn from_live(d: &Document) -> IndexDef {
    let key = d
        .get_document("key")
        .map(|k| {
            k.iter()
                .map(|(f, v)| {
                    let v = match int(v) {
                        Some(i) => Bson::Int32(i as i32),
                        None => v.clone(),
                    };
                    (f.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    let flag = |f: &str| d.get_bool(f).unwrap_or(false);
    let weights = d.get_document("weights").ok().map(|w| {
        w.iter()
            .filter_map(|(k, v)| Some((k.clone(), int(v)?)))
            .collect()
    });
    IndexDef {
        key,
        name: d.get_str("name").ok().map(str::to_string),
        unique: flag("unique"),
        sparse: flag("sparse"),
        hidden: flag("hidden"),
        expire_after: d.get("expireAfterSeconds").and_then(int),
        partial_filter: d.get_document("partialFilterExpression").ok().cloned(),
        collation: d.get_document("collation").ok().cloned(),
        weights,
        default_language: d
            .get_str("default_language")
            .ok()
            .filter(|l| *l != "english")
            .map(str::to_string),
        language_override: d
            .get_str("language_override")
            .ok()
            .filter(|l| *l != "language")
            .map(str::to_string),
        wildcard_projection: d.get_document("wildcardProjection").ok().cloned(),
        text_fields: Vec::new(),
        origin: None,
    }
}

/// Numbers compare by value whatever their BSON type (1 == 1.0 == Int64(1)).
fn same_doc(a: &Document, b: &Document) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((ka, va), (kb, vb))| ka == kb && same_bson(va, vb))
}

fn same_bson(a: &Bson, b: &Bson) -> bool {
    match (a, b) {
        (Bson::Document(x), Bson::Document(y)) => same_doc(x, y),
        (Bson::Array(x), Bson::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_bson(p, q))
        }
        _ => match (int(a), int(b)) {
            (Some(x), Some(y)) => {
                x == y && matches!(a, Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_))
            }
            _ => a == b,
        },
    }
}

fn same_key(a: &[(String, Bson)], b: &[(String, Bson)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka == kb && same_bson(va, vb))
}

/// The spec's collation fields must all be present and equal in the live one (the
/// server fills in every other field from the locale's defaults).
fn collation_matches(spec: &Option<Document>, live: &Option<Document>) -> bool {
    match (spec, live) {
        (None, None) => true,
        (Some(s), Some(l)) => s
            .iter()
            .all(|(k, v)| l.get(k).is_some_and(|lv| same_bson(v, lv))),
        _ => false,
    }
}

/// Differences between a spec index and the live index with the same key pattern:
/// (in-place changes, changes that need a rebuild).
pub fn diff(spec: &IndexDef, live: &IndexDef) -> (Vec<String>, Vec<String>) {
    let mut modify = Vec::new();
    let mut rebuild = Vec::new();
    if spec.hidden != live.hidden {
        modify.push(format!("hidden: {} → {}", live.hidden, spec.hidden));
    }
    if spec.expire_after != live.expire_after {
        let show = |v: Option<i64>| v.map(|s| format!("{s}s")).unwrap_or_else(|| "none".into());
        let change = format!(
            "expire_after: {} → {}",
            show(live.expire_after),
            show(spec.expire_after)
        );
        // collMod can change a TTL, not add or remove one.
        if spec.expire_after.is_some() && live.expire_after.is_some() {
            modify.push(change)
        } else {
            rebuild.push(change)
        }
    }
    let mut check = |what: &str, same: bool, from: String, to: String| {
        if !same {
            rebuild.push(format!("{what}: {from} → {to}"));
        }
    };
    check(
        "unique",
        spec.unique == live.unique,
        live.unique.to_string(),
        spec.unique.to_string(),
    );
    check(
        "sparse",
        spec.sparse == live.sparse,
        live.sparse.to_string(),
        spec.sparse.to_string(),
    );
    let opt = |d: &Option<Document>| {
        d.as_ref()
            .map(|d| d.to_string())
            .unwrap_or_else(|| "none".into())
    };
    check(
        "partial_filter",
        match (&spec.partial_filter, &live.partial_filter) {
            (Some(a), Some(b)) => same_doc(a, b),
            (None, None) => true,
            _ => false,
        },
        opt(&live.partial_filter),
        opt(&spec.partial_filter),
    );
    check(
        "collation",
        collation_matches(&spec.collation, &live.collation),
        opt(&live.collation),
        opt(&spec.collation),
    );
    check(
        "wildcard_projection",
        match (&spec.wildcard_projection, &live.wildcard_projection) {
            (Some(a), Some(b)) => same_doc(a, b),
            (None, None) => true,
            _ => false,
        },
        opt(&live.wildcard_projection),
        opt(&spec.wildcard_projection),
    );
    if spec.weights.is_some() {
        check(
            "weights",
            spec.weights == live.weights,
            format!("{:?}", live.weights),
            format!("{:?}", spec.weights),
        );
        check(
            "default_language",
            spec.default_language == live.default_language,
            format!("{:?}", live.default_language),
            format!("{:?}", spec.default_language),
        );
    }
    if let (Some(want), Some(have)) = (&spec.name, &live.name) {
        check("name", want == have, have.clone(), want.clone());
    }
    (modify, rebuild)
}

/// The steps for one collection: every spec index and every live index accounted for.
pub fn plan_collection(
    db: &str,
    coll: &str,
    specs: &[IndexDef],
    live: &[Document],
    prune: bool,
) -> Vec<Step> {
    let live: Vec<IndexDef> = live.iter().map(from_live).collect();
    let mut matched = vec![false; live.len()];
    let mut steps = Vec::new();
    for s in specs {
        let name = s.name.clone().unwrap_or_else(|| default_name(s));
        let found = live
            .iter()
            .enumerate()
            .find(|(i, l)| {
                !matched[*i]
                    && same_key(&l.key, &s.key)
                    && collation_matches(&s.collation, &l.collation)
            })
            .or_else(|| {
                live.iter()
                    .enumerate()
                    .find(|(i, l)| !matched[*i] && same_key(&l.key, &s.key))
            });
        let step = |action, changes, live_name: Option<String>| Step {
            database: db.to_string(),
            collection: coll.to_string(),
            index: live_name
                .clone()
                .filter(|_| s.name.is_none())
                .unwrap_or_else(|| name.clone()),
            action,
            changes,
            desired: Some(s.clone()),
            live_name,
            spec: s.origin.as_ref().map(|o| o.to_string()),
        };
        match found {
            None => steps.push(step(Action::Create, vec![], None)),
            Some((i, l)) => {
                matched[i] = true;
                let (modify, rebuild) = diff(s, l);
                let action = if !rebuild.is_empty() {
                    Action::Rebuild
                } else if !modify.is_empty() {
                    Action::Modify
                } else {
                    Action::Ok
                };
                let mut changes = rebuild;
                changes.extend(modify);
                steps.push(step(action, changes, l.name.clone()));
            }
        }
    }
    for (i, l) in live.iter().enumerate() {
        if matched[i] || l.name.as_deref() == Some("_id_") {
            continue;
        }
        steps.push(Step {
            database: db.to_string(),
            collection: coll.to_string(),
            index: l.name.clone().unwrap_or_default(),
            action: if prune {
                Action::Drop
            } else {
                Action::Unmanaged
            },
            changes: vec!["not in any spec".into()],
            desired: None,
            live_name: l.name.clone(),
            spec: None,
        });
    }
    steps
}

/// A live index as a spec entry (for `indexes export`), key order preserved.
pub fn to_spec_yaml(d: &Document) -> serde_yaml::Value {
    use serde_yaml::{Mapping, Value};
    let def = from_live(d);
    let mut m = Mapping::new();
    let mut keys = Mapping::new();
    for (k, v) in &def.key {
        match k.as_str() {
            "_fts" => {
                for f in def
                    .weights
                    .as_ref()
                    .map(|w| w.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
                {
                    keys.insert(Value::String(f), Value::String("text".into()));
                }
            }
            "_ftsx" => {}
            _ => {
                keys.insert(Value::String(k.clone()), bson_to_yaml(v));
            }
        }
    }
    m.insert("keys".into(), Value::Mapping(keys));
    if let Some(n) = &def.name {
        m.insert("name".into(), Value::String(n.clone()));
    }
    let mut flag = |k: &str, on: bool| {
        if on {
            m.insert(k.into(), Value::Bool(true));
        }
    };
    flag("unique", def.unique);
    flag("sparse", def.sparse);
    flag("hidden", def.hidden);
    if let Some(t) = def.expire_after {
        m.insert("expire_after".into(), Value::Number(t.into()));
    }
    for (k, v) in [
        ("partial_filter", &def.partial_filter),
        ("collation", &def.collation),
        ("wildcard_projection", &def.wildcard_projection),
    ] {
        if let Some(d) = v {
            m.insert(k.into(), bson_to_yaml(&Bson::Document(d.clone())));
        }
    }
    if let Some(w) = &def.weights {
        if w.values().any(|v| *v != 1) {
            let wm: Mapping = w
                .iter()
                .map(|(k, v)| (Value::String(k.clone()), Value::Number((*v).into())))
                .collect();
            m.insert("weights".into(), Value::Mapping(wm));
        }
    }
    if let Some(l) = &def.default_language {
        m.insert("default_language".into(), Value::String(l.clone()));
    }
    if let Some(l) = &def.language_override {
        m.insert("language_override".into(), Value::String(l.clone()));
    }
    Value::Mapping(m)
}

fn bson_to_yaml(b: &Bson) -> serde_yaml::Value {
    use serde_yaml::Value;
    match b {
        Bson::Int32(i) => Value::Number((*i as i64).into()),
        Bson::Int64(i) => Value::Number((*i).into()),
        Bson::Double(d) => Value::Number((*d).into()),
        Bson::Boolean(v) => Value::Bool(*v),
        Bson::String(s) => Value::String(s.clone()),
        Bson::Null => Value::Null,
        Bson::Array(a) => Value::Sequence(a.iter().map(bson_to_yaml).collect()),
        Bson::Document(d) => Value::Mapping(
            d.iter()
                .map(|(k, v)| (Value::String(k.clone()), bson_to_yaml(v)))
                .collect(),
        ),
        other => Value::String(other.to_string()),
    }
}

/// Group steps by database and collection for display.
pub fn by_collection(steps: &[Step]) -> BTreeMap<(String, String), Vec<&Step>> {
    let mut m: BTreeMap<(String, String), Vec<&Step>> = BTreeMap::new();
    for s in steps {
        m.entry((s.database.clone(), s.collection.clone()))
            .or_default()
            .push(s);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indexes::spec::{parse_file, Specs};
    use mongodb::bson::doc;

    fn spec(yaml: &str) -> Vec<IndexDef> {
        let mut s = Specs::default();
        let mut issues = vec![];
        parse_file(
            &format!("database: d\ncollections:\n  c:\n{yaml}"),
            std::path::Path::new("s.yaml"),
            &mut s,
            &mut issues,
        )
        .unwrap();
        assert!(issues.is_empty(), "{issues:?}");
        s.databases["d"]["c"].clone()
    }

    #[test]
    fn normalizes_generated_names_versions_and_spellings() {
        let live = vec![
            doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
            doc! { "v": 2, "key": { "email": 1.0 }, "name": "email_1", "background": true, "ns": "d.c" },
            doc! { "v": 2, "key": { "t": 1 }, "name": "ttl", "expireAfterSeconds": 86400i64 },
        ];
        let steps = plan_collection(
            "d",
            "c",
            &spec("    - keys: { email: 1 }\n    - keys: { t: 1 }\n      expire_after: 1d\n"),
            &live,
            false,
        );
        assert!(steps.iter().all(|s| s.action == Action::Ok), "{steps:?}");
    }

    #[test]
    fn create_modify_rebuild_unmanaged_drop() {
        let live = vec![
            doc! { "v": 2, "key": { "a": 1 }, "name": "a_1" },
            doc! { "v": 2, "key": { "b": 1 }, "name": "b_1", "expireAfterSeconds": 60 },
            doc! { "v": 2, "key": { "x": 1 }, "name": "x_1" },
            doc! { "v": 2, "key": { "z": 1 }, "name": "by_hand" },
        ];
        let specs = spec("    - keys: { a: 1 }\n      hidden: true\n    - keys: { b: 1 }\n      expire_after: 120\n    - keys: { x: 1 }\n      unique: true\n    - keys: { n: -1 }\n");
        let steps = plan_collection("d", "c", &specs, &live, false);
        let actions: Vec<(String, Action)> =
            steps.iter().map(|s| (s.index.clone(), s.action)).collect();
        assert_eq!(
            actions,
            vec![
                ("a_1".into(), Action::Modify),
                ("b_1".into(), Action::Modify),
                ("x_1".into(), Action::Rebuild),
                ("n_-1".into(), Action::Create),
                ("by_hand".into(), Action::Unmanaged),
            ]
        );
        let pruned = plan_collection("d", "c", &specs, &live, true);
        assert_eq!(pruned.last().unwrap().action, Action::Drop);
    }

    #[test]
    fn text_and_collation_compare_like_the_server_stores_them() {
        let live = vec![
            doc! { "v": 2, "key": { "_fts": "text", "_ftsx": 1 }, "name": "title_text_body_text", "weights": { "body": 1, "title": 10 },
            "default_language": "english", "language_override": "language", "textIndexVersion": 3 },
            doc! { "v": 2, "key": { "name": 1 }, "name": "name_1", "collation": { "locale": "en", "strength": 2, "caseLevel": false } },
        ];
        let specs = spec("    - keys: { title: text, body: text }\n      weights: { title: 10 }\n    - keys: { name: 1 }\n      collation: { locale: en, strength: 2 }\n");
        let steps = plan_collection("d", "c", &specs, &live, false);
        assert!(steps.iter().all(|s| s.action == Action::Ok), "{steps:?}");
    }
}
