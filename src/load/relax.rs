//! While a tail follows the source, the target must not change on its own: a TTL index
//! would delete documents the source still holds (the source's own TTL deletes arrive
//! through the tail), and a unique index could reject changes applied in an order the
//! source never saw (an update that frees a key arrives after the insert that reuses it,
//! when the copy already held the newer state). So, like mongosync, a followed load builds
//! such indexes relaxed — TTL without `expireAfterSeconds`, unique as non-unique — records
//! what it relaxed in the migration state, and `migrate finalize` restores each with
//! `collMod` once the tail has stopped (a non-unique index becomes unique through
//! `prepareUnique`, MongoDB 6.0+).

use anyhow::{Context, Result};
use mongodb::bson::{doc, Bson, Document};
use mongodb::Client;

use crate::namespace::Namespace;

/// What was taken off one index (or, for a clustered collection's TTL, the collection).
#[derive(Debug, Clone, PartialEq)]
pub struct Relaxed {
    pub ns: Namespace,
    /// The index's name; None for a clustered collection's own `expireAfterSeconds`.
    pub index: Option<String>,
    pub expire_after_seconds: Option<i64>,
    pub unique: bool,
}

impl Relaxed {
    pub fn key(&self) -> String {
        format!("{}|{}", self.ns, self.index.as_deref().unwrap_or(""))
    }

    pub fn to_doc(&self) -> Document {
        let mut d = doc! { "ns": self.ns.to_string(), "index": self.index.clone().map(Bson::String).unwrap_or(Bson::Null), "unique": self.unique };
        if let Some(s) = self.expire_after_seconds {
            d.insert("expireAfterSeconds", s);
        }
        d
    }

    pub fn from_doc(d: &Document) -> Option<Relaxed> {
        Some(Relaxed {
            ns: Namespace::parse(d.get_str("ns").ok()?)?,
            index: d.get_str("index").ok().map(String::from),
            expire_after_seconds: seconds(d.get("expireAfterSeconds")),
            unique: d.get_bool("unique").unwrap_or(false),
        })
    }

    /// What finalize will do, for plans and reports.
    pub fn describe(&self) -> String {
        let what = match &self.index {
            Some(n) => format!("index {n} of {}", self.ns),
            None => format!("collection {}", self.ns),
        };
        let mut parts = Vec::new();
        if let Some(s) = self.expire_after_seconds {
            parts.push(format!("expireAfterSeconds {s}"));
        }
        if self.unique {
            parts.push("unique".to_string());
        }
        format!("{what}: {}", parts.join(", "))
    }
}

/// A seconds option as the server may store it (int, long or double).
pub fn seconds(v: Option<&Bson>) -> Option<i64> {
    match v? {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        Bson::Double(f) => Some(*f as i64),
        _ => None,
    }
}

/// An index spec as the target gets it while following, and what was relaxed.
pub fn index(ns: &Namespace, spec: &Document) -> (Document, Option<Relaxed>) {
    let name = spec.get_str("name").unwrap_or_default();
    // The `_id` index, and a clustered collection's clustered index (whatever its name:
    // it is created with the collection and must stay unique), are never relaxed.
    if name == "_id_" || spec.get_bool("clustered").unwrap_or(false) {
        return (spec.clone(), None);
    }
    let mut out = spec.clone();
    let ttl = seconds(out.remove("expireAfterSeconds").as_ref());
    let unique = matches!(out.remove("unique"), Some(Bson::Boolean(true)));
    if ttl.is_none() && !unique {
        return (spec.clone(), None);
    }
    let relaxed = Relaxed {
        ns: ns.clone(),
        index: Some(name.to_string()),
        expire_after_seconds: ttl,
        unique,
    };
    (out, Some(relaxed))
}

/// Collection options as the target gets them while following: a clustered collection's
/// TTL is a collection option.
pub fn options(ns: &Namespace, options: &Document) -> (Document, Option<Relaxed>) {
    let mut out = options.clone();
    match seconds(out.remove("expireAfterSeconds").as_ref()) {
        Some(s) if options.contains_key("clusteredIndex") => (
            out,
            Some(Relaxed {
                ns: ns.clone(),
                index: None,
                expire_after_seconds: Some(s),
                unique: false,
            }),
        ),
        _ => (options.clone(), None),
    }
}

/// Give the target back what was relaxed (after the tail stopped). An index or collection
/// that is gone (dropped on the source while following) has nothing to restore.
pub async fn restore(client: &Client, r: &Relaxed) -> Result<bool> {
    let db = client.database(&r.ns.db);
    if !crate::mongo::schema::exists(client, &r.ns).await? {
        return Ok(false);
    }
    let run = |cmd: Document| {
        let db = db.clone();
        async move { db.run_command(cmd).await }
    };
    match &r.index {
        None => {
            if let Some(s) = r.expire_after_seconds {
                run(doc! { "collMod": &r.ns.coll, "expireAfterSeconds": s })
                    .await
                    .with_context(|| format!("restoring the TTL of {}", r.ns))?;
            }
        }
        Some(name) => {
            let indexes = crate::mongo::namespaces::indexes(client, &r.ns.db, &r.ns.coll).await?;
            if !indexes
                .iter()
                .any(|i| i.get_str("name") == Ok(name.as_str()))
            {
                return Ok(false);
            }
            if let Some(s) = r.expire_after_seconds {
                run(doc! { "collMod": &r.ns.coll, "index": { "name": name, "expireAfterSeconds": s } })
                    .await
                    .with_context(|| format!("restoring expireAfterSeconds {s} on index {name} of {}", r.ns))?;
            }
            if r.unique {
                let what = || format!("making index {name} of {} unique again", r.ns);
                run(doc! { "collMod": &r.ns.coll, "index": { "name": name, "prepareUnique": true } })
                    .await
                    .with_context(what)?;
                run(doc! { "collMod": &r.ns.coll, "index": { "name": name, "unique": true } })
                    .await
                    .with_context(|| {
                        format!(
                            "{}: the target holds documents that break uniqueness; \
                             compare the two sides with `mongoshift verify` before the cutover",
                            what()
                        )
                    })?;
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relaxes_ttl_and_unique() {
        let ns = Namespace::new("d", "c");
        let (spec, r) = index(
            &ns,
            &doc! { "v": 2, "key": { "t": 1 }, "name": "t_1", "expireAfterSeconds": 3600 },
        );
        assert!(!spec.contains_key("expireAfterSeconds"));
        let r = r.unwrap();
        assert_eq!(r.expire_after_seconds, Some(3600));
        assert!(!r.unique);
        assert_eq!(Relaxed::from_doc(&r.to_doc()), Some(r));

        let (spec, r) = index(
            &ns,
            &doc! { "key": { "e": 1 }, "name": "e_1", "unique": true },
        );
        assert!(!spec.contains_key("unique"));
        assert!(r.unwrap().unique);

        let plain = doc! { "key": { "a": 1 }, "name": "a_1" };
        assert_eq!(index(&ns, &plain), (plain.clone(), None));
        let id = doc! { "key": { "_id": 1 }, "name": "_id_", "unique": true };
        assert_eq!(index(&ns, &id), (id.clone(), None));
    }

    #[test]
    fn clustered_ttl() {
        let ns = Namespace::new("d", "c");
        let o = doc! { "clusteredIndex": { "key": { "_id": 1 }, "unique": true }, "expireAfterSeconds": 60 };
        let (out, r) = options(&ns, &o);
        assert!(!out.contains_key("expireAfterSeconds"));
        assert_eq!(r.unwrap().index, None);
        let plain = doc! { "capped": true, "size": 4096 };
        assert_eq!(options(&ns, &plain).1, None);
    }
}
