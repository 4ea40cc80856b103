//! What a continuous backup archives: `--db` and `--ns-include/--ns-exclude`, decided per
//! oplog entry from its raw bytes (a few fields read, nothing decoded or rewritten).
//!
//! Rules (the decision #26 left open):
//! - CRUD and no-op entries: kept when their namespace is selected (a time-series
//!   collection's buckets count as the collection);
//! - commands on `db.$cmd` (create, drop, renameCollection, indexes, collMod…): kept when the
//!   database holds a selected namespace; the restore's replay applies only what touches the
//!   selection, as mongorestore --nsInclude does;
//! - transactions (`applyOps` on `admin.$cmd`): kept whole when any of their operations is
//!   selected. A transaction is atomic and its entry is carried as the server wrote it, so it
//!   is never cut; its operations on other namespaces are filtered out at restore;
//! - `commitTransaction` / `abortTransaction` (admin.$cmd without applyOps): kept, they carry
//!   no namespace and decide whether a prepared transaction is applied.
//!
//! The server-side part of the filter (by database) keeps the bytes read small; this
//! client-side part is the collection-level rule.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::mongo::oplog::OplogScope;
use crate::namespace::{Filter, Namespace};
use crate::rawbson;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Selection {
    /// `db.*` for each --db, then the --ns-include patterns.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl Selection {
    pub fn new(dbs: &[String], include: &[String], exclude: &[String]) -> Result<Selection> {
        let mut inc: Vec<String> = dbs.iter().map(|d| format!("{d}.*")).collect();
        inc.extend(include.iter().cloned());
        let s = Selection {
            include: inc,
            exclude: exclude.to_vec(),
        };
        s.filter()?;
        Ok(s)
    }

    pub fn everything(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    pub fn filter(&self) -> Result<Filter> {
        Filter::new(&self.include, &self.exclude)
    }

    /// "everything" or the patterns, for messages.
    pub fn describe(&self) -> String {
        if self.everything() {
            return "every user database".to_string();
        }
        let mut s = self.include.join(", ");
        if s.is_empty() {
            s = "*.*".into();
        }
        if !self.exclude.is_empty() {
            s.push_str(&format!(" except {}", self.exclude.join(", ")));
        }
        s
    }

    /// The databases the server-side filter keeps: named ones when every include names its
    /// database exactly, else every user database.
    pub fn scope(&self) -> OplogScope {
        let mut dbs = Vec::new();
        for p in &self.include {
            let db = p.split('.').next().unwrap_or_default();
            if db.contains('*') {
                return OplogScope::AllUserDatabases;
            }
            dbs.push(db.to_string());
        }
        if dbs.is_empty() {
            return OplogScope::AllUserDatabases;
        }
        dbs.sort();
        dbs.dedup();
        OplogScope::Databases(dbs)
    }
}

/// The per-entry decision, built once per stream.
pub struct EntryFilter {
    filter: Filter,
    everything: bool,
}

impl EntryFilter {
    pub fn new(sel: &Selection) -> Result<EntryFilter> {
        Ok(EntryFilter {
            filter: sel.filter()?,
            everything: sel.everything(),
        })
    }

    fn ns_selected(&self, ns: &str) -> bool {
        match Namespace::parse(ns) {
            Some(n) => self.filter.allows(&n.without_buckets_prefix()),
            None => false,
        }
    }

    /// A database holds a selected namespace when some include could match in it.
    fn db_selected(&self, db: &str) -> bool {
        if self.filter.include.is_empty() {
            return true;
        }
        self.filter.include.iter().any(|p| {
            let raw = p.raw();
            let pdb = raw.split('.').next().unwrap_or_default();
            crate::namespace::glob_matches(pdb, db)
        })
    }

    /// Whether to archive this entry (its raw bytes).
    pub fn keep(&self, entry: &[u8]) -> Result<bool> {
        if self.everything {
            return Ok(true);
        }
        let ns = rawbson::find(entry, "ns")?
            .and_then(|e| e.as_str())
            .unwrap_or_default()
            .to_string();
        let Some((db, coll)) = ns.split_once('.') else {
            return Ok(false);
        };
        if coll != "$cmd" {
            return Ok(self.ns_selected(&ns));
        }
        if db != "admin" {
            return Ok(self.db_selected(db));
        }
        let o = rawbson::find(entry, "o")?.and_then(|e| e.as_doc());
        let Some(o) = o else { return Ok(true) };
        let Some(ops) = rawbson::find(o, "applyOps")?.and_then(|e| e.as_doc()) else {
            // commitTransaction / abortTransaction and other admin commands: no namespace.
            return Ok(true);
        };
        for op in rawbson::iter(ops) {
            let Some(op) = op?.as_doc() else { continue };
            let inner = rawbson::find(op, "ns")?
                .and_then(|e| e.as_str())
                .unwrap_or_default();
            let selected = match inner.split_once('.') {
                Some((d, "$cmd")) => self.db_selected(d),
                Some(_) => self.ns_selected(inner),
                None => false,
            };
            if selected {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    fn raw(d: mongodb::bson::Document) -> Vec<u8> {
        mongodb::bson::to_vec(&d).unwrap()
    }

    #[test]
    fn keeps_selected_crud_commands_of_its_databases_and_whole_transactions() {
        let sel = Selection::new(&[], &["shop.orders".into()], &[]).unwrap();
        assert_eq!(sel.scope(), OplogScope::Databases(vec!["shop".into()]));
        let f = EntryFilter::new(&sel).unwrap();
        assert!(f
            .keep(&raw(
                doc! { "op": "i", "ns": "shop.orders", "o": {"_id": 1} }
            ))
            .unwrap());
        assert!(!f
            .keep(&raw(
                doc! { "op": "i", "ns": "shop.carts", "o": {"_id": 1} }
            ))
            .unwrap());
        assert!(f
            .keep(&raw(
                doc! { "op": "c", "ns": "shop.$cmd", "o": {"drop": "x"} }
            ))
            .unwrap());
        assert!(!f
            .keep(&raw(
                doc! { "op": "c", "ns": "blog.$cmd", "o": {"drop": "x"} }
            ))
            .unwrap());
        let txn = |ns: &str| {
            raw(doc! { "op": "c", "ns": "admin.$cmd", "o": { "applyOps": [
                { "op": "i", "ns": "other.x", "o": {"_id": 1} },
                { "op": "u", "ns": ns, "o": {"$v": 2}, "o2": {"_id": 1} },
            ] } })
        };
        assert!(f.keep(&txn("shop.orders")).unwrap());
        assert!(!f.keep(&txn("shop.carts")).unwrap());
        assert!(f
            .keep(&raw(
                doc! { "op": "c", "ns": "admin.$cmd", "o": {"commitTransaction": 1} }
            ))
            .unwrap());
        let ts = Selection::new(&[], &["m.*".into()], &["m.secret".into()]).unwrap();
        let f = EntryFilter::new(&ts).unwrap();
        assert!(f
            .keep(&raw(
                doc! { "op": "i", "ns": "m.system.buckets.w", "o": {} }
            ))
            .unwrap());
        assert!(!f
            .keep(&raw(doc! { "op": "i", "ns": "m.secret", "o": {} }))
            .unwrap());
        assert_eq!(
            Selection::new(&[], &["*.users".into()], &[])
                .unwrap()
                .scope(),
            OplogScope::AllUserDatabases
        );
    }
}
