//! Reading a collection as raw BSON bytes, batch by batch, without decoding documents.

use anyhow::{Context, Result};
use bytes::Bytes;
use futures::StreamExt;
use mongodb::bson::{doc, Document, RawDocument};
use mongodb::options::{FindOptions, Hint};
use mongodb::Client;
use tokio::sync::mpsc;

use crate::compare::ranges::IdRange;
use crate::mongo::raw_write::{Batch, BATCH_BYTES};
use crate::namespace::Namespace;
use crate::pipeline::{ChunkSender, PipelineClosed};
use crate::report::progress::TaskProgress;

#[derive(Debug, Default, Clone, Copy)]
pub struct ReadStats {
    pub docs: u64,
    pub bytes: u64,
}

/// Where the documents go: chunks of concatenated BSON (the .bson file format) for a
/// compressor, or insert batches for a target collection.
pub enum Sink {
    Chunks(ChunkSender),
    Batches(mpsc::Sender<Batch>, Batch),
}

impl Sink {
    pub fn chunks(tx: mpsc::Sender<Bytes>) -> Sink {
        Sink::Chunks(ChunkSender::new(tx))
    }

    pub fn batches(tx: mpsc::Sender<Batch>) -> Sink {
        Sink::Batches(tx, Batch::default())
    }

    async fn push(&mut self, doc: &RawDocument) -> Result<()> {
        match self {
            Sink::Chunks(c) => c.push(doc.as_bytes()).await,
            Sink::Batches(tx, batch) => {
                batch.push(doc.as_bytes());
                if batch.full() {
                    tx.send(std::mem::take(batch))
                        .await
                        .map_err(|_| PipelineClosed)?;
                }
                Ok(())
            }
        }
    }

    async fn finish(self) -> Result<()> {
        match self {
            Sink::Chunks(c) => c.finish().await,
            Sink::Batches(tx, batch) => {
                if !batch.is_empty() {
                    tx.send(batch).await.map_err(|_| PipelineClosed)?;
                }
                Ok(())
            }
        }
    }
}

/// Stream the documents of `ns` into `sink`: the whole collection in natural order (which
/// keeps a capped collection in insertion order, as mongodump does), or one `_id` range
/// in index order.
pub async fn stream_documents(
    client: Client,
    ns: Namespace,
    range: IdRange,
    mut sink: Sink,
    progress: TaskProgress,
) -> Result<ReadStats> {
    let coll = client.database(&ns.db).collection::<Document>(&ns.coll);
    let queries = if range.is_all() {
        let mut o = FindOptions::default();
        o.hint = Some(Hint::Keys(doc! { "$natural": 1 }));
        vec![(doc! {}, o)]
    } else {
        range.queries()
    };
    let what = || {
        if range.is_all() {
            ns.to_string()
        } else {
            format!("{ns} _id range {}", range.describe())
        }
    };
    // Server batches about as big as the sink's insert batches (counting ~256-byte
    // documents): each open cursor holds one, and a load runs several cursors at once.
    // Chunks for a compressor keep the server's default 16 MB batches.
    let batch_docs = match &sink {
        Sink::Batches(..) => Some((BATCH_BYTES / 256) as u32),
        Sink::Chunks(_) => None,
    };
    let mut stats = ReadStats::default();
    for (filter, mut options) in queries {
        options.batch_size = batch_docs;
        let mut cursor = coll
            .find(filter)
            .with_options(options)
            .no_cursor_timeout(true)
            .batch()
            .await
            .with_context(|| format!("opening a cursor on {}", what()))?;
        while let Some(batch) = cursor.next().await {
            let batch = batch.with_context(|| format!("reading {}", what()))?;
            let docs = batch
                .doc_slices()
                .with_context(|| format!("reading a batch of {}", what()))?;
            let (mut n, mut b) = (0u64, 0u64);
            for elem in docs {
                let elem =
                    elem.with_context(|| format!("malformed batch from the server for {ns}"))?;
                let doc = elem
                    .as_document()
                    .with_context(|| format!("non-document in a batch of {ns}"))?;
                sink.push(doc).await?;
                n += 1;
                b += doc.as_bytes().len() as u64;
            }
            stats.docs += n;
            stats.bytes += b;
            progress.add(n, b);
        }
    }
    sink.finish().await?;
    Ok(stats)
}

/// The document with this `_id` (`filter` is `{_id: <raw value>}`), as raw bytes, or None.
/// Compared with the simple collation: under a collection's default collation `"A"` would
/// also find `"a"`.
pub async fn by_id(
    client: &Client,
    ns: &Namespace,
    filter: &[u8],
) -> Result<Option<mongodb::bson::RawDocumentBuf>> {
    let mut cmd = crate::rawbson::Builder::new();
    cmd.str("find", &ns.coll)
        .doc("filter", filter)
        .i32("limit", 1)
        .bool("singleBatch", true)
        .doc("collation", &crate::rawbson::simple_collation());
    let mut cursor = client
        .database(&ns.db)
        .run_raw_cursor_command(cmd.finish())
        .await
        .with_context(|| format!("finding a document of {ns}"))?
        .with_type::<mongodb::bson::RawDocumentBuf>();
    cursor
        .next()
        .await
        .transpose()
        .with_context(|| format!("reading a document of {ns}"))
}
