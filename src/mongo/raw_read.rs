//! Reading a collection as raw BSON bytes, batch by batch, without decoding documents.

use anyhow::{Context, Result};
use bytes::Bytes;
use futures::StreamExt;
use mongodb::bson::{doc, Document};
use mongodb::Client;
use tokio::sync::mpsc;

use crate::namespace::Namespace;
use crate::pipeline::ChunkSender;
use crate::report::progress::TaskProgress;

#[derive(Debug, Default, Clone, Copy)]
pub struct ReadStats {
    pub docs: u64,
    pub bytes: u64,
}

/// Stream the documents of `ns` matching `filter` (an `_id` range, so that one huge
/// collection can later be split across readers) into `tx` as chunks of
/// concatenated BSON documents — the .bson file format.
pub async fn stream_documents(
    client: Client,
    ns: Namespace,
    filter: Document,
    tx: mpsc::Sender<Bytes>,
    progress: TaskProgress,
) -> Result<ReadStats> {
    let coll = client.database(&ns.db).collection::<Document>(&ns.coll);
    let mut cursor = coll
        .find(filter)
        // Natural order keeps capped collections in insertion order, as mongodump does.
        .hint(mongodb::options::Hint::Keys(doc! { "$natural": 1 }))
        .no_cursor_timeout(true)
        .batch()
        .await
        .with_context(|| format!("opening a cursor on {ns}"))?;
    let mut stats = ReadStats::default();
    let mut out = ChunkSender::new(tx);
    while let Some(batch) = cursor.next().await {
        let batch = batch.with_context(|| format!("reading {ns}"))?;
        let docs = batch
            .doc_slices()
            .with_context(|| format!("reading a batch of {ns}"))?;
        let (mut n, mut b) = (0u64, 0u64);
        for elem in docs {
            let elem = elem.with_context(|| format!("malformed batch from the server for {ns}"))?;
            let doc = elem
                .as_document()
                .with_context(|| format!("non-document in a batch of {ns}"))?;
            out.push(doc.as_bytes()).await?;
            n += 1;
            b += doc.as_bytes().len() as u64;
        }
        stats.docs += n;
        stats.bytes += b;
        progress.add(n, b);
    }
    out.finish().await?;
    Ok(stats)
}
