//! How restore rewrites the index specs it builds, as mongorestore 100.8.0 does (its
//! restore.go/metadata.go CreateIndexes): the index version is left to the server (a v:1
//! index is rebuilt as v:2) unless `--keep-index-version`; and on request only
//! `--fix-dotted-hash-index` (a hashed key on a dotted field becomes ascending) and
//! `--convert-legacy-indexes` (mongorestore's --convertLegacyIndexes): index specs that old
//! servers accepted and 4.x+ refuse are made buildable. A key value of 0,
//! "" or a non-number becomes 1 (a ~0 float is 1, or -1 when below 0); of indexes whose keys
//! are then equal only the first is built; options no server version defines are
//! removed (newer servers would refuse them).

use mongodb::bson::{Bson, Document};

const VALID_OPTIONS: [&str; 26] = [
    "2dsphereIndexVersion",
    "background",
    "bits",
    "bucketSize",
    "coarsestIndexedLevel",
    "collation",
    "default_language",
    "expireAfterSeconds",
    "finestIndexedLevel",
    "key",
    "language_override",
    "max",
    "min",
    "name",
    "ns",
    "partialFilterExpression",
    "sparse",
    "storageEngine",
    "textIndexVersion",
    "unique",
    "v",
    "weights",
    "wildcardProjection",
    "hidden",
    "prepareUnique",
    "clustered",
];

fn key_value(v: &Bson) -> Option<Bson> {
    match v {
        Bson::Int32(0) | Bson::Int64(0) => Some(Bson::Int32(1)),
        // As Go compares it (mongo-tools' ConvertLegacyIndexKeyValue: v >= 0): -0.0 is 1,
        // only a tiny negative number is -1.
        Bson::Double(d) if d.abs() < 1e-9 => Some(Bson::Int32(if *d >= 0.0 { 1 } else { -1 })),
        Bson::Decimal128(d) if d.to_string().parse::<f64>().is_ok_and(|f| f == 0.0) => {
            Some(Bson::Int32(1))
        }
        Bson::String(s) if s.is_empty() => Some(Bson::Int32(1)),
        Bson::Int32(_)
        | Bson::Int64(_)
        | Bson::Double(_)
        | Bson::Decimal128(_)
        | Bson::String(_) => None,
        _ => Some(Bson::Int32(1)),
    }
}

/// Keys numerically equal (1 == 1.0) count as the same key.
fn same_key(a: &Document, b: &Document) -> bool {
    let num = |v: &Bson| match v {
        Bson::Int32(i) => Some(*i as f64),
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(d) => Some(*d),
        _ => None,
    };
    a.len() == b.len()
        && a.iter().zip(b.iter()).all(|((ka, va), (kb, vb))| {
            ka == kb
                && match (num(va), num(vb)) {
                    (Some(x), Some(y)) => (x - y).abs() < 1e-9,
                    _ => va == vb,
                }
        })
}

pub fn convert(specs: &[Document]) -> Vec<Document> {
    let mut out: Vec<Document> = Vec::new();
    // Of indexes whose keys became equal, the first (in the dump's order) is kept; stock
    // 100.8.0 keeps either, by Go's map order.
    for spec in specs {
        let mut spec = spec.clone();
        if let Ok(key) = spec.get_document("key").cloned() {
            let mut fixed = Document::new();
            for (k, v) in key {
                let v = key_value(&v).unwrap_or(v);
                fixed.insert(k, v);
            }
            spec.insert("key", fixed);
        }
        let spec: Document = spec
            .into_iter()
            .filter(|(k, _)| VALID_OPTIONS.contains(&k.as_str()))
            .collect();
        let key = spec.get_document("key").cloned().unwrap_or_default();
        if out
            .iter()
            .any(|o| same_key(o.get_document("key").unwrap_or(&Document::new()), &key))
        {
            continue;
        }
        out.push(spec);
    }
    out
}

/// The rewrites a restore applies to every index it builds (the dump's and the oplog's).
#[derive(Debug, Clone, Copy, Default)]
pub struct Rewrite {
    pub convert_legacy: bool,
    pub keep_version: bool,
    pub fix_dotted_hashed: bool,
}

impl Rewrite {
    pub fn apply(&self, specs: &[Document]) -> Vec<Document> {
        let specs = if self.convert_legacy {
            convert(specs)
        } else {
            specs.to_vec()
        };
        specs
            .into_iter()
            .map(|mut spec| {
                if self.fix_dotted_hashed {
                    if let Ok(key) = spec.get_document("key").cloned() {
                        let fixed: Document = key
                            .into_iter()
                            .map(|(k, v)| match v {
                                Bson::String(s) if s == "hashed" && k.contains('.') => {
                                    (k, Bson::Int32(1))
                                }
                                v => (k, v),
                            })
                            .collect();
                        spec.insert("key", fixed);
                    }
                }
                if !self.keep_version && spec.get_str("name") != Ok("_id_") {
                    // mongorestore removes "v": the server builds its default version. The
                    // _id index is made by create, which --preserve-uuid gives the dump's
                    // spec with its version (mongorestore keeps it there too).
                    spec.remove("v");
                } else if is_v1(&spec) && is_simple(spec.get("collation")) {
                    // A v:1 index dumped from 9.0+ lists a simple collation that the server
                    // refuses beside v:1 (mongorestore's stripSimpleCollation).
                    spec.remove("collation");
                }
                spec
            })
            .collect()
    }
}

fn is_v1(spec: &Document) -> bool {
    matches!(spec.get("v"), Some(Bson::Int32(1)) | Some(Bson::Int64(1)))
        || matches!(spec.get("v"), Some(Bson::Double(d)) if *d == 1.0)
}

fn is_simple(collation: Option<&Bson>) -> bool {
    matches!(collation, Some(Bson::Document(c)) if c.get_str("locale") == Ok("simple"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn legacy_keys_and_options_become_buildable() {
        let got = convert(&[
            doc! { "v": 1, "key": { "_id": 1 }, "name": "_id_" },
            doc! { "v": 1, "key": { "_id": 1.0 }, "name": "dup" },
            doc! { "v": 1, "key": { "a": 0, "b": "", "c": -0.0, "d": "hashed", "e": true, "f": -1e-12 }, "name": "x", "safe": true },
        ]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].get_str("name").unwrap(), "_id_");
        assert_eq!(
            got[1],
            doc! { "v": 1, "key": { "a": 1, "b": 1, "c": 1, "d": "hashed", "e": 1, "f": -1 }, "name": "x" }
        );
    }

    #[test]
    fn versions_are_left_to_the_server_and_dotted_hashed_keys_fixed_on_request() {
        let specs = [
            doc! { "v": 1, "key": { "a.b": "hashed", "c": "hashed" }, "name": "h", "collation": { "locale": "simple" } },
        ];
        assert_eq!(
            Rewrite::default().apply(&specs),
            vec![
                doc! { "key": { "a.b": "hashed", "c": "hashed" }, "name": "h", "collation": { "locale": "simple" } }
            ]
        );
        let keep = Rewrite {
            keep_version: true,
            fix_dotted_hashed: true,
            ..Default::default()
        };
        assert_eq!(
            keep.apply(&specs),
            vec![doc! { "v": 1, "key": { "a.b": 1, "c": "hashed" }, "name": "h" }]
        );
    }
}
