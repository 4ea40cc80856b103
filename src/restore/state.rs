//! Resume state, kept in the target cluster (`mongoshift.restore_state`), so an
//! interrupted restore re-run with `--resume` skips namespaces that completed and
//! cleanly reloads the others.

use anyhow::{Context, Result};
use futures::TryStreamExt;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::Client;

use crate::namespace::Namespace;

pub const DB: &str = "mongoshift";
pub const COLLECTION: &str = "restore_state";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NsState {
    Loading,
    Done,
}

fn coll(client: &Client) -> mongodb::Collection<Document> {
    client.database(DB).collection(COLLECTION)
}

fn id(source: &str, ns: &Namespace) -> String {
    format!("{source}|{ns}")
}

/// Target namespace → state, for one source.
pub async fn load(client: &Client, source: &str) -> Result<Vec<(Namespace, NsState)>> {
    let docs: Vec<Document> = coll(client)
        .find(doc! { "source": source })
        .await
        .context("reading mongoshift.restore_state")?
        .try_collect()
        .await
        .context("reading mongoshift.restore_state")?;
    Ok(docs
        .iter()
        .filter_map(|d| {
            let ns = Namespace::parse(d.get_str("ns").ok()?)?;
            let st = if d.get_str("state").ok()? == "done" {
                NsState::Done
            } else {
                NsState::Loading
            };
            Some((ns, st))
        })
        .collect())
}

pub async fn set(client: &Client, source: &str, ns: &Namespace, state: NsState) -> Result<()> {
    let s = match state {
        NsState::Loading => "loading",
        NsState::Done => "done",
    };
    coll(client)
        .update_one(
            doc! { "_id": id(source, ns) },
            doc! { "$set": { "source": source, "ns": ns.to_string(), "state": s, "updated_at": DateTime::now() } },
        )
        .upsert(true)
        .await
        .with_context(|| format!("recording restore state of {ns}"))?;
    Ok(())
}

/// A finished restore needs no resume state. When no other restore has any left, the
/// collection goes too, and with it the `mongoshift` database if nothing else is in it,
/// so that a clean restore leaves nothing behind on the target.
pub async fn clear(client: &Client, source: &str) -> Result<()> {
    let c = coll(client);
    c.delete_many(doc! { "source": source })
        .await
        .context("clearing mongoshift.restore_state")?;
    let left = c
        .count_documents(doc! {})
        .await
        .context("reading mongoshift.restore_state")?;
    if left == 0 {
        c.drop()
            .await
            .context("dropping mongoshift.restore_state")?;
    }
    Ok(())
}
