//! `system.js` (stored functions) under a tail: change streams never report writes to
//! `system.` collections, so the tail cannot see them as events. Each followed database's
//! `system.js` is small; the tail compares it with the target's every few seconds and once
//! more before it stops, and makes the target's equal (documents as raw bytes).

use anyhow::{Context, Result};
use futures::TryStreamExt;
use mongodb::bson::{doc, RawDocumentBuf};
use mongodb::Client;

use super::apply::Selection;
use crate::namespace::Namespace;

const COLL: &str = "system.js";

async fn read(client: &Client, ns: &Namespace, side: &str) -> Result<Vec<RawDocumentBuf>> {
    client
        .database(&ns.db)
        .collection::<RawDocumentBuf>(&ns.coll)
        .find(doc! {})
        .sort(doc! { "_id": 1 })
        .await
        .with_context(|| format!("reading {ns} on the {side}"))?
        .try_collect()
        .await
        .with_context(|| format!("reading {ns} on the {side}"))
}

/// Make every followed database's `system.js` on the target equal to the source's.
/// Returns how many databases needed it.
pub async fn sync(source: &Client, target: &Client, sel: &Selection) -> Result<u64> {
    let dbs = if sel.dbs.is_empty() {
        source
            .list_database_names()
            .await
            .context("listing the source's databases")?
    } else {
        sel.dbs.clone()
    };
    let mut synced = 0;
    for db in dbs {
        let ns = Namespace::new(&db, COLL);
        if !sel.selected(&ns) {
            continue;
        }
        let t = sel.renamer.map(&ns);
        let want = read(source, &ns, "source").await?;
        let have = read(target, &t, "target").await?;
        let same = want.len() == have.len()
            && want
                .iter()
                .zip(&have)
                .all(|(a, b)| a.as_bytes() == b.as_bytes());
        if same {
            continue;
        }
        // Small by nature: replace the whole collection's documents.
        let coll = target.database(&t.db).collection::<RawDocumentBuf>(&t.coll);
        coll.delete_many(doc! {})
            .await
            .with_context(|| format!("clearing {t} on the target"))?;
        if !want.is_empty() {
            let out = crate::mongo::raw_write::insert_raw(
                &target.database(&t.db),
                &t.coll,
                &want.iter().map(|d| d.as_bytes()).collect::<Vec<_>>(),
            )
            .await
            .with_context(|| format!("writing {t} on the target"))?;
            if !out.errors.is_empty() {
                anyhow::bail!("writing {t} on the target: {}", out.summary());
            }
        }
        synced += 1;
    }
    Ok(synced)
}
