//! The indexes a restore will build, per target namespace, kept aside while the oplog is
//! replayed and built after it (as mongorestore does): a point-in-time restore must not
//! build a unique index over data that the oplog has yet to fix, and index commands in the
//! oplog (`createIndexes`, `commitIndexBuild`, `dropIndexes`, `collMod` of an index, drops
//! and renames) change the set to build rather than being sent through `applyOps`, which on
//! 6.0 accepts a `dropIndexes` and drops nothing.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use mongodb::bson::{doc, Bson, Document};

use crate::namespace::Namespace;

#[derive(Debug, Default, Clone)]
struct CollIndexes {
    /// Index specs by name, in the order they were first seen (a dump's order).
    specs: Vec<Document>,
    /// The collection has a non-simple default collation: an index without a collation of
    /// its own is a simple-collation index, and must say so or it would inherit the default.
    collated: bool,
}

#[derive(Debug, Default, Clone)]
pub struct IndexCatalog {
    colls: BTreeMap<Namespace, CollIndexes>,
}

fn has_collation(options: &Document) -> bool {
    options
        .get_document("collation")
        .map(|c| c.get_str("locale").ok() != Some("simple"))
        .unwrap_or(false)
}

impl IndexCatalog {
    /// A collection (from the dump or created by the oplog) with its options and indexes.
    pub fn set_collection(&mut self, ns: &Namespace, options: &Document, indexes: &[Document]) {
        let c = self.colls.entry(ns.clone()).or_default();
        c.collated = has_collation(options);
        c.specs.clear();
        for spec in indexes {
            let mut spec = spec.clone();
            spec.remove("ns");
            c.specs.push(spec);
        }
    }

    /// A `create` in the oplog: a new collection, or (replaying over a dump taken while the
    /// oplog ran) one the dump already holds, whose indexes stay.
    pub fn created(&mut self, ns: &Namespace, options: &Document) {
        if !self.colls.contains_key(ns) {
            self.set_collection(ns, options, &[]);
        }
    }

    pub fn add(&mut self, ns: &Namespace, mut spec: Document) {
        spec.remove("ns");
        let c = self.colls.entry(ns.clone()).or_default();
        let name = spec.get_str("name").unwrap_or_default().to_string();
        match c
            .specs
            .iter_mut()
            .find(|s| s.get_str("name").unwrap_or_default() == name)
        {
            Some(s) => *s = spec,
            None => c.specs.push(spec),
        }
    }

    pub fn drop_collection(&mut self, ns: &Namespace) {
        self.colls.remove(ns);
    }

    pub fn drop_database(&mut self, db: &str) {
        self.colls.retain(|ns, _| ns.db != db);
    }

    pub fn rename(&mut self, from: &Namespace, to: &Namespace) {
        let moved = self.colls.remove(from).unwrap_or_default();
        self.colls.insert(to.clone(), moved);
    }

    /// Keep only `_id_` (what convertToCapped leaves).
    pub fn keep_only_id(&mut self, ns: &Namespace) {
        if let Some(c) = self.colls.get_mut(ns) {
            c.specs.retain(is_id_index);
        }
    }

    /// `dropIndexes`' `index`: a name, `*` (all but `_id_`), a key pattern, or a list of names.
    pub fn drop_indexes(&mut self, ns: &Namespace, index: &Bson) -> Result<()> {
        let Some(c) = self.colls.get_mut(ns) else {
            return Ok(());
        };
        match index {
            Bson::String(s) if s == "*" => c.specs.retain(is_id_index),
            Bson::String(name) => c
                .specs
                .retain(|s| s.get_str("name").ok() != Some(name.as_str())),
            Bson::Array(names) => {
                for n in names {
                    if let Bson::String(name) = n {
                        c.specs
                            .retain(|s| s.get_str("name").ok() != Some(name.as_str()));
                    }
                }
            }
            Bson::Document(key) => c.specs.retain(|s| s.get_document("key").ok() != Some(key)),
            other => bail!("dropIndexes on {ns} names its index as {other}, which is neither a name, a list of names nor a key pattern"),
        }
        Ok(())
    }

    /// `collMod`'s `index` part: changes one index's options (TTL, hidden, unique…).
    pub fn coll_mod(&mut self, ns: &Namespace, change: &Document) -> Result<()> {
        let c = self.colls.entry(ns.clone()).or_default();
        let by_name = change.get_str("name").ok();
        let by_key = change.get_document("keyPattern").ok();
        let Some(spec) = c.specs.iter_mut().find(|s| match (by_name, by_key) {
            (Some(n), _) => s.get_str("name").ok() == Some(n),
            (None, Some(k)) => s.get_document("key").ok() == Some(k),
            _ => false,
        }) else {
            bail!(
                "collMod on {ns} changes the index {change}, which this restore does not know (not in the dump's metadata nor created earlier in the oplog)"
            );
        };
        for (k, v) in change {
            match k.as_str() {
                "name" | "keyPattern" => {}
                "expireAfterSeconds" | "hidden" | "prepareUnique" => {
                    spec.insert(k, v.clone());
                }
                "unique" | "forceNonUnique" => {
                    if v.as_bool() == Some(true) {
                        spec.remove(if k == "unique" {
                            "forceNonUnique"
                        } else {
                            "unique"
                        });
                        if k == "unique" {
                            spec.remove("prepareUnique");
                        }
                    }
                    if k == "unique" {
                        spec.insert(k, v.clone());
                    }
                }
                // The server logs the old values alongside; they change nothing.
                _ if k.starts_with("old") => {}
                _ => bail!(
                    "collMod on {ns} changes the index option {k}, which this restore cannot carry"
                ),
            }
        }
        Ok(())
    }

    /// What to build after the replay: every namespace with indexes besides `_id_`.
    pub fn to_build(&self) -> Vec<(Namespace, Vec<Document>)> {
        self.colls
            .iter()
            .filter_map(|(ns, c)| {
                let specs: Vec<Document> = c
                    .specs
                    .iter()
                    .filter(|s| !is_id_index(s))
                    .map(|s| {
                        let mut s = s.clone();
                        if c.collated && !s.contains_key("collation") {
                            s.insert("collation", doc! { "locale": "simple" });
                        }
                        s
                    })
                    .collect();
                (!specs.is_empty()).then(|| (ns.clone(), specs))
            })
            .collect()
    }
}

fn is_id_index(spec: &Document) -> bool {
    spec.get_str("name").ok() == Some("_id_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns() -> Namespace {
        Namespace::new("d", "c")
    }

    fn names(c: &IndexCatalog) -> Vec<String> {
        c.to_build()
            .into_iter()
            .flat_map(|(_, s)| {
                s.into_iter()
                    .map(|d| d.get_str("name").unwrap().to_string())
            })
            .collect()
    }

    #[test]
    fn drops_renames_and_coll_mods_change_what_is_built() {
        let mut c = IndexCatalog::default();
        c.set_collection(
            &ns(),
            &doc! {},
            &[
                doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
                doc! { "v": 2, "key": { "a": 1 }, "name": "a_1" },
            ],
        );
        c.add(&ns(), doc! { "v": 2, "key": { "b": 1 }, "name": "b_1" });
        assert_eq!(names(&c), ["a_1", "b_1"]);
        c.drop_indexes(&ns(), &Bson::String("a_1".into())).unwrap();
        assert_eq!(names(&c), ["b_1"]);
        c.coll_mod(&ns(), &doc! { "name": "b_1", "hidden": true })
            .unwrap();
        assert!(
            c.to_build()[0].1[0].get_bool("hidden").unwrap(),
            "collMod carried"
        );
        assert!(c
            .coll_mod(&ns(), &doc! { "name": "zz", "hidden": true })
            .is_err());
        c.drop_indexes(&ns(), &Bson::Document(doc! { "b": 1 }))
            .unwrap();
        assert!(names(&c).is_empty());
        c.add(&ns(), doc! { "v": 2, "key": { "b": 1 }, "name": "b_1" });
        let other = Namespace::new("d", "e");
        c.rename(&ns(), &other);
        assert_eq!(c.to_build()[0].0, other);
        c.drop_database("d");
        assert!(c.to_build().is_empty());
    }

    #[test]
    fn a_collated_collection_builds_simple_indexes_as_simple() {
        let mut c = IndexCatalog::default();
        c.set_collection(&ns(), &doc! { "collation": { "locale": "fr" } }, &[]);
        c.add(&ns(), doc! { "v": 2, "key": { "b": 1 }, "name": "b_1" });
        assert_eq!(
            c.to_build()[0].1[0].get_document("collation").unwrap(),
            &doc! { "locale": "simple" }
        );
    }
}
