//! While a tail follows the source, the target must not change on its own: a TTL index
//! would delete documents the source still holds (the source's own TTL deletes arrive
//! through the tail), and a unique index could reject changes applied in an order the
//! source never saw (an update that frees a key arrives after the insert that reuses it,
//! when the copy already held the newer state). So, like mongosync, a followed load builds
//! such indexes relaxed — TTL without `expireAfterSeconds`, unique as non-unique — records
//! what it relaxed in the migration state, and `migrate finalize` restores each with
//! `collMod` once the tail has stopped (a non-unique index becomes unique through
//! `prepareUnique`, MongoDB 6.0+). A `prepareUnique` index is held without it for the same
//! reason. A unique index whose relaxed form the target cannot hold (MongoDB 6.0 allows a
//! unique and a non-unique index on the same key; relaxed, they would be twins) is not
//! built while following but deferred: finalize builds it as the source defines it.

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
    /// The source's index has `prepareUnique: true`.
    pub prepare_unique: bool,
    /// Not built at all while following: the source's whole spec, built by finalize.
    pub deferred: Option<Document>,
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
        if self.prepare_unique {
            d.insert("prepareUnique", true);
        }
        if let Some(spec) = &self.deferred {
            d.insert("deferred", spec.clone());
        }
        d
    }

    pub fn from_doc(d: &Document) -> Option<Relaxed> {
        Some(Relaxed {
            ns: Namespace::parse(d.get_str("ns").ok()?)?,
            index: d.get_str("index").ok().map(String::from),
            expire_after_seconds: seconds(d.get("expireAfterSeconds")),
            unique: d.get_bool("unique").unwrap_or(false),
            prepare_unique: d.get_bool("prepareUnique").unwrap_or(false),
            deferred: d.get_document("deferred").ok().cloned(),
        })
    }

    /// Nothing relaxed on `index` of `ns` yet.
    pub fn none(ns: &Namespace, index: Option<&str>) -> Relaxed {
        Relaxed {
            ns: ns.clone(),
            index: index.map(String::from),
            expire_after_seconds: None,
            unique: false,
            prepare_unique: false,
            deferred: None,
        }
    }

    /// What finalize will do, for plans and reports.
    pub fn describe(&self) -> String {
        let what = match &self.index {
            Some(n) => format!("index {n} of {}", self.ns),
            None => format!("collection {}", self.ns),
        };
        let mut parts = Vec::new();
        if self.deferred.is_some() {
            parts.push(
                "built (deferred while following: its relaxed form would twin another index)"
                    .to_string(),
            );
        }
        if let Some(s) = self.expire_after_seconds {
            parts.push(format!("expireAfterSeconds {s}"));
        }
        if self.unique {
            parts.push("unique".to_string());
        }
        if self.prepare_unique {
            parts.push("prepareUnique".to_string());
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
    let prepare_unique = matches!(out.remove("prepareUnique"), Some(Bson::Boolean(true)));
    if ttl.is_none() && !unique && !prepare_unique {
        return (spec.clone(), None);
    }
    let relaxed = Relaxed {
        expire_after_seconds: ttl,
        unique,
        prepare_unique,
        ..Relaxed::none(ns, Some(name))
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
                expire_after_seconds: Some(s),
                ..Relaxed::none(ns, None)
            }),
        ),
        _ => (options.clone(), None),
    }
}

/// Build index specs on `t` while a tail follows: each relaxed where the source's spec would
/// let the target change on its own, recorded in `state`. A relaxed spec the target cannot
/// hold beside its other indexes (same key and options as another: IndexOptionsConflict or
/// IndexKeySpecsConflict) is deferred to finalize instead of failing the load or the tail.
/// Returns how many indexes were built.
pub async fn build(
    client: &Client,
    t: &Namespace,
    specs: Vec<Document>,
    state: &crate::load::state::StateStore,
) -> Result<usize> {
    let mut pairs = Vec::new();
    for spec in specs {
        let (relaxed_spec, r) = index(t, &spec);
        if let Some(r) = &r {
            state.save_relaxed(r).await?;
        }
        pairs.push((spec, relaxed_spec, r));
    }
    let all: Vec<Document> = pairs.iter().map(|(_, s, _)| s.clone()).collect();
    match crate::mongo::schema::create_indexes(client, t, all).await {
        Ok(n) => return Ok(n),
        Err(e) if !twin_conflict(&e) => return Err(e),
        Err(_) => {}
    }
    // One by one: only a relaxed index is ever deferred.
    let mut built = 0;
    for (spec, relaxed_spec, r) in pairs {
        match crate::mongo::schema::create_indexes(client, t, vec![relaxed_spec.clone()]).await {
            Ok(n) => built += n,
            Err(e) if !twin_conflict(&e) => return Err(e),
            Err(e) => match r {
                Some(mut r) => {
                    r.deferred = Some(spec);
                    state.save_relaxed(&r).await?;
                }
                // The twin is an index we built relaxed earlier (the tail saw the unique
                // one first): that one is deferred instead, and this one built.
                None => {
                    if !defer_relaxed_twin(client, t, &relaxed_spec, state).await? {
                        return Err(e);
                    }
                    built +=
                        crate::mongo::schema::create_indexes(client, t, vec![relaxed_spec]).await?;
                }
            },
        }
    }
    Ok(built)
}

/// Find the index on `t` with `spec`'s key that we built relaxed, drop it and record it as
/// deferred (its source spec: the target's plus what was relaxed). False when there is none.
async fn defer_relaxed_twin(
    client: &Client,
    t: &Namespace,
    spec: &Document,
    state: &crate::load::state::StateStore,
) -> Result<bool> {
    let key = spec.get_document("key").ok();
    let on_target = crate::mongo::namespaces::indexes(client, &t.db, &t.coll).await?;
    let recorded = state.relaxed().await?;
    for ix in on_target
        .iter()
        .filter(|i| i.get_document("key").ok() == key)
    {
        let name = ix.get_str("name").unwrap_or_default();
        let Some(mut r) = recorded
            .iter()
            .find(|r| r.ns == *t && r.index.as_deref() == Some(name) && r.deferred.is_none())
            .cloned()
        else {
            continue;
        };
        let mut source = ix.clone();
        if r.unique {
            source.insert("unique", true);
        }
        if let Some(s) = r.expire_after_seconds {
            source.insert("expireAfterSeconds", s);
        }
        if r.prepare_unique {
            source.insert("prepareUnique", true);
        }
        client
            .database(&t.db)
            .run_command(doc! { "dropIndexes": &t.coll, "index": name })
            .await
            .with_context(|| format!("dropping the relaxed index {name} of {t} to defer it"))?;
        r.deferred = Some(source);
        state.save_relaxed(&r).await?;
        return Ok(true);
    }
    Ok(false)
}

/// The server refused an index because an equivalent one exists (codes 85, 86).
fn twin_conflict(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<mongodb::error::Error>())
        .any(|m| matches!(crate::mongo::errors::code(m), Some(85 | 86)))
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
            if let Some(spec) = &r.deferred {
                if let Err(e) =
                    crate::mongo::schema::create_indexes(client, &r.ns, vec![spec.clone()]).await
                {
                    return Err(unique_violation_hint(client, &r.ns, spec, e).await);
                }
                return Ok(true);
            }
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
            let what = || format!("making index {name} of {} unique again", r.ns);
            if r.unique || r.prepare_unique {
                run(doc! { "collMod": &r.ns.coll, "index": { "name": name, "prepareUnique": true } })
                    .await
                    .with_context(what)?;
            }
            if r.unique {
                let spec = indexes
                    .iter()
                    .find(|i| i.get_str("name") == Ok(name.as_str()))
                    .cloned()
                    .unwrap_or_default();
                if let Err(e) =
                    run(doc! { "collMod": &r.ns.coll, "index": { "name": name, "unique": true } })
                        .await
                {
                    let e = anyhow::Error::new(e).context(format!(
                        "{}: left with prepareUnique: true (new duplicates are refused)",
                        what()
                    ));
                    return Err(unique_violation_hint(client, &r.ns, &spec, e).await);
                }
            }
        }
    }
    Ok(true)
}

/// A unique index that cannot be built: name up to five keys held by several documents,
/// with their `_id`s, so that the fix is clear.
async fn unique_violation_hint(
    client: &Client,
    ns: &Namespace,
    spec: &Document,
    e: anyhow::Error,
) -> anyhow::Error {
    match duplicates(client, ns, spec).await {
        Ok(d) if !d.is_empty() => e.context(format!(
            "the target's {ns} holds documents that share a key of this unique index: {}. \
             Compare the sides with `mongoshift verify`, remove the duplicates the source does not hold, \
             then run finalize again",
            d.join("; ")
        )),
        _ => e,
    }
}

/// Up to five duplicated keys of `spec` in `ns`, each with its documents' `_id`s.
async fn duplicates(client: &Client, ns: &Namespace, spec: &Document) -> Result<Vec<String>> {
    use futures::TryStreamExt;
    let Ok(key) = spec.get_document("key") else {
        return Ok(Vec::new());
    };
    let mut group = Document::new();
    for (i, (k, _)) in key.iter().enumerate() {
        group.insert(format!("k{i}"), format!("${k}"));
    }
    let mut stages = Vec::new();
    if let Ok(p) = spec.get_document("partialFilterExpression") {
        stages.push(doc! { "$match": p.clone() });
    }
    stages
        .push(doc! { "$group": { "_id": group, "ids": { "$push": "$_id" }, "n": { "$sum": 1 } } });
    stages.push(doc! { "$match": { "n": { "$gt": 1 } } });
    stages.push(doc! { "$limit": 5 });
    let coll = client.database(&ns.db).collection::<Document>(&ns.coll);
    let mut agg = coll.aggregate(stages).allow_disk_use(true);
    if let Ok(c) = spec.get_document("collation") {
        agg = agg.collation(mongodb::bson::from_document(c.clone())?);
    }
    let rows: Vec<Document> = agg.await?.try_collect().await?;
    Ok(rows
        .iter()
        .map(|r| {
            let key = r
                .get("_id")
                .cloned()
                .unwrap_or(Bson::Null)
                .into_relaxed_extjson();
            let ids: Vec<String> = r
                .get_array("ids")
                .map(|a| {
                    a.iter()
                        .take(5)
                        .map(|v| v.clone().into_relaxed_extjson().to_string())
                        .collect()
                })
                .unwrap_or_default();
            format!("key {key} in _ids {}", ids.join(", "))
        })
        .collect())
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
