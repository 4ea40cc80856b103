//! Index hygiene: unused indexes (`$indexStats` counts since the server started or the
//! index was built), redundant ones (a prefix of another index with the same directions),
//! their sizes, and what dropping them would reclaim. `_id`, unique, TTL, partial, sparse
//! and hidden indexes are never called redundant: each does something its longer sibling
//! does not. Usage counts are per server, so they are summed over every member reachable.

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

/// A connection string for each member `hosts` names, connecting to that member alone
/// (`directConnection`, no `replicaSet`), credentials and options kept. Empty for a
/// `mongodb+srv://` URI, whose hosts come from DNS.
pub fn member_uris(uri: &str, hosts: &[String]) -> Vec<String> {
    let Some(rest) = uri.strip_prefix("mongodb://") else {
        return vec![];
    };
    let (auth, after_auth) = match rest.rfind('@') {
        Some(i) if !rest[..i].contains('/') => (&rest[..=i], &rest[i + 1..]),
        _ => ("", rest),
    };
    let tail_at = after_auth.find(['/', '?']).unwrap_or(after_auth.len());
    let tail = &after_auth[tail_at..];
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, q),
        None => (tail, ""),
    };
    let mut opts: Vec<&str> = query
        .split('&')
        .filter(|o| !o.is_empty())
        .filter(|o| {
            let k = o.split('=').next().unwrap_or("").to_ascii_lowercase();
            k != "replicaset" && k != "directconnection"
        })
        .collect();
    opts.push("directConnection=true");
    let path = if path.is_empty() { "/" } else { path };
    hosts
        .iter()
        .map(|h| format!("mongodb://{auth}{h}{path}?{}", opts.join("&")))
        .collect()
}

/// The hygiene report of every collection of `db`; index use is summed over `members`
/// (each counts its own), sizes come from `client`.
pub async fn database(client: &Client, members: &[Client], db: &str) -> Result<Vec<IndexReport>> {
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
        let mut stats: Vec<Document> = Vec::new();
        for m in members {
            let part: Vec<Document> = m
                .database(db)
                .collection::<Document>(coll)
                .aggregate(vec![doc! { "$indexStats": {} }])
                .await
                .with_context(|| format!("reading $indexStats of {ns} (needs the indexStats privilege, e.g. clusterMonitor)"))?
                .try_collect()
                .await
                .with_context(|| format!("reading $indexStats of {ns}"))?;
            stats.extend(part);
        }
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
            let accesses: Vec<&Document> = stats
                .iter()
                .filter(|x| x.get_str("name") == Ok(name.as_str()))
                .filter_map(|x| x.get_document("accesses").ok())
                .collect();
            let ops: u64 = accesses.iter().map(|a| num(a.get("ops"))).sum();
            // Counted since the latest start among the members: the shorter window is the honest one.
            let since = accesses
                .iter()
                .filter_map(|a| a.get_datetime("since").ok())
                .max()
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

    #[test]
    fn member_uris_keep_credentials_and_options_and_connect_directly() {
        let hosts = vec!["a:1".to_string(), "b:2".to_string()];
        assert_eq!(
            member_uris(
                "mongodb://u:p%40w@a:1,b:2/db?replicaSet=rs0&tls=true",
                &hosts
            ),
            vec![
                "mongodb://u:p%40w@a:1/db?tls=true&directConnection=true",
                "mongodb://u:p%40w@b:2/db?tls=true&directConnection=true"
            ]
        );
        assert_eq!(
            member_uris("mongodb://a:1", &hosts[..1]),
            vec!["mongodb://a:1/?directConnection=true"]
        );
        assert!(member_uris("mongodb+srv://c.example.net/", &hosts).is_empty());
    }

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
