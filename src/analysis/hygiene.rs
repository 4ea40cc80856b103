//! Index hygiene: unused indexes (`$indexStats` counts since the server started or the
//! index was built), redundant ones (a prefix of another index with the same directions),
//! their sizes, and what dropping them would reclaim. `_id`, unique, TTL, partial, sparse
//! and hidden indexes are never called redundant: each does something its longer sibling
//! does not. Usage counts are per server; they come from the member this connection reads.

use anyhow::{Context, Result};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::Client;
use serde::Serialize;

use super::esr;

#[derive(Debug, Clone, Serialize)]
pub struct IndexReport {
    pub ns: String,
    pub name: String,
    pub keys: String,
    pub size_bytes: u64,
    /// Operations that used it since `since`.
    pub ops: u64,
    pub since: Option<String>,
    pub unused: bool,
    /// The longer index it is a prefix of, when redundant.
    pub redundant_with: Option<String>,
}

use super::count as num;

/// Whether an index does something beyond ordering keys, so that a longer index with
/// the same prefix does not replace it.
fn special(spec: &Document) -> bool {
    spec.get_str("name") == Ok("_id_")
        || spec.get_bool("unique").unwrap_or(false)
        || spec.contains_key("expireAfterSeconds")
        || spec.contains_key("partialFilterExpression")
        || spec.get_bool("sparse").unwrap_or(false)
        || spec.get_bool("hidden").unwrap_or(false)
        || spec.contains_key("collation")
        || spec
            .get_document("key")
            .is_ok_and(|k| k.values().any(|v| matches!(v, Bson::String(_))))
}

/// Pairs of (shorter, longer) where the shorter index is a plain prefix of the longer.
pub fn redundant(specs: &[Document]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for a in specs.iter().filter(|s| !special(s)) {
        let ka = esr::key_pairs(&a.get_document("key").cloned().unwrap_or_default());
        let longer = specs.iter().find(|b| {
            let kb = esr::key_pairs(&b.get_document("key").cloned().unwrap_or_default());
            b.get_str("name") != a.get_str("name")
                && kb.len() > ka.len()
                && esr::is_prefix(&ka, &kb)
                && !b.contains_key("partialFilterExpression")
                && !b.get_bool("hidden").unwrap_or(false)
        });
        if let Some(b) = longer {
            out.push((
                a.get_str("name").unwrap_or("").to_string(),
                b.get_str("name").unwrap_or("").to_string(),
            ));
        }
    }
    out
}

/// The hygiene report of every collection of `db`.
pub async fn database(client: &Client, db: &str) -> Result<Vec<IndexReport>> {
    let d = client.database(db);
    let names = d
        .list_collection_names()
        .filter(doc! { "type": "collection" })
        .await
        .with_context(|| format!("listing the collections of {db}"))?;
    let mut out = Vec::new();
    for coll in names.iter().filter(|n| !n.starts_with("system.")) {
        let c = d.collection::<Document>(coll);
        let ns = format!("{db}.{coll}");
        let specs: Vec<Document> = d
            .run_command(doc! { "listIndexes": coll.as_str() })
            .await
            .with_context(|| format!("listing the indexes of {ns}"))?
            .get_document("cursor")
            .and_then(|c| c.get_array("firstBatch"))
            .map(|a| a.iter().filter_map(|x| x.as_document().cloned()).collect())
            .unwrap_or_default();
        let stats: Vec<Document> = c
            .aggregate(vec![doc! { "$indexStats": {} }])
            .await
            .with_context(|| format!("reading $indexStats of {ns} (needs the indexStats privilege, e.g. clusterMonitor)"))?
            .try_collect()
            .await
            .with_context(|| format!("reading $indexStats of {ns}"))?;
        let sizes: Document = c
            .aggregate(vec![doc! { "$collStats": { "storageStats": {} } }])
            .await
            .with_context(|| format!("reading the index sizes of {ns}"))?
            .try_next()
            .await?
            .and_then(|s| s.get_document("storageStats").ok().cloned())
            .and_then(|s| s.get_document("indexSizes").ok().cloned())
            .unwrap_or_default();
        let red = redundant(&specs);
        for s in &specs {
            let name = s.get_str("name").unwrap_or("").to_string();
            let st = stats
                .iter()
                .find(|x| x.get_str("name") == Ok(name.as_str()));
            let acc = st.and_then(|x| x.get_document("accesses").ok());
            let ops = num(acc.and_then(|a| a.get("ops")));
            let since = acc
                .and_then(|a| a.get_datetime("since").ok())
                .and_then(|t| t.try_to_rfc3339_string().ok());
            let keys = Bson::Document(s.get_document("key").cloned().unwrap_or_default())
                .into_relaxed_extjson()
                .to_string();
            out.push(IndexReport {
                ns: ns.clone(),
                name: name.clone(),
                keys,
                size_bytes: num(sizes.get(&name)),
                ops,
                since,
                unused: ops == 0 && name != "_id_",
                redundant_with: red.iter().find(|(a, _)| *a == name).map(|(_, b)| b.clone()),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ix(name: &str, key: Document, extra: Document) -> Document {
        let mut d = doc! { "v": 2, "name": name, "key": key };
        d.extend(extra);
        d
    }

    #[test]
    fn only_plain_prefixes_are_redundant() {
        let specs = vec![
            ix("_id_", doc! { "_id": 1 }, doc! {}),
            ix("status_1", doc! { "status": 1 }, doc! {}),
            ix(
                "status_1_created_at_-1",
                doc! { "status": 1, "created_at": -1 },
                doc! {},
            ),
            ix("status_-1", doc! { "status": -1 }, doc! {}),
            ix("gid_1", doc! { "gid": 1 }, doc! { "unique": true }),
            ix("gid_1_email_1", doc! { "gid": 1, "email": 1 }, doc! {}),
            ix(
                "seen_1",
                doc! { "seen": 1 },
                doc! { "expireAfterSeconds": 60 },
            ),
            ix("seen_1_x_1", doc! { "seen": 1, "x": 1 }, doc! {}),
            ix(
                "p_1",
                doc! { "p": 1 },
                doc! { "partialFilterExpression": { "p": { "$gt": 1 } } },
            ),
            ix("p_1_q_1", doc! { "p": 1, "q": 1 }, doc! {}),
        ];
        assert_eq!(
            redundant(&specs),
            vec![("status_1".to_string(), "status_1_created_at_-1".to_string())]
        );
    }
}
