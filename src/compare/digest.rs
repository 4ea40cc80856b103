//! The fast first look at a collection's documents: one scan in natural order per side,
//! summing a 128-bit hash of every document's bytes. The sum does not depend on the
//! order documents are read in, so the two sides can be scanned the cheap way (a
//! collection scan, like mongodump) rather than through the `_id` index, which costs the
//! server a random lookup per document and measured about twice the time. Equal digests
//! and counts mean the same multiset of documents, byte for byte (`_id` included, so the
//! same documents under the same keys); a difference sends the namespace to the exact
//! `_id`-order comparison (`compare::documents`) that names each differing `_id`.
//! The scan also chains the hashes in the order read, which for a capped collection is its
//! natural (insertion) order, the order its readers see: two capped collections are the
//! same only if that chain agrees too.

use anyhow::{Context, Result};
use bytes::Bytes;
use mongodb::Client;
use tokio::sync::mpsc;
use xxhash_rust::xxh3::xxh3_128;

use super::ranges::IdRange;
use crate::mongo::raw_read::{self, Sink};
use crate::namespace::Namespace;
use crate::report::progress::TaskProgress;

/// A summary of a collection's documents: equal (`==`) for the same documents in any
/// order; `same_order` also for the same natural order.
#[derive(Debug, Default, Clone, Copy)]
pub struct Digest {
    pub docs: u64,
    pub bytes: u64,
    /// Wrapping sum of the documents' xxh3-128 hashes.
    sum: u128,
    /// The hashes chained in the order read.
    chain: u128,
}

impl PartialEq for Digest {
    fn eq(&self, other: &Digest) -> bool {
        (self.docs, self.bytes, self.sum) == (other.docs, other.bytes, other.sum)
    }
}

impl Eq for Digest {}

impl Digest {
    /// The same documents in the same order.
    pub fn same_order(&self, other: &Digest) -> bool {
        self == other && self.chain == other.chain
    }

    /// Add the documents of a chunk of concatenated BSON (the reader's chunk format).
    fn add_chunk(&mut self, chunk: &[u8], ns: &Namespace) -> Result<()> {
        let mut at = 0;
        while at < chunk.len() {
            let len = chunk
                .get(at..at + 4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .filter(|&l| l >= 5 && at + l as usize <= chunk.len())
                .with_context(|| format!("a malformed document read from {ns}"))?
                as usize;
            self.add(&chunk[at..at + len]);
            at += len;
        }
        Ok(())
    }

    fn add(&mut self, doc: &[u8]) {
        self.docs += 1;
        self.bytes += doc.len() as u64;
        let h = xxh3_128(doc);
        self.sum = self.sum.wrapping_add(h);
        let mut link = [0u8; 32];
        link[..16].copy_from_slice(&self.chain.to_le_bytes());
        link[16..].copy_from_slice(&h.to_le_bytes());
        self.chain = xxh3_128(&link);
    }
}

/// Scan `ns` on one side (`what`: source or target) and digest its documents.
pub async fn collection(
    client: &Client,
    ns: &Namespace,
    what: &'static str,
    progress: &TaskProgress,
) -> Result<Digest> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(2);
    let reader = tokio::spawn(raw_read::stream_documents(
        client.clone(),
        ns.clone(),
        IdRange::all(),
        Sink::chunks(tx),
        progress.clone(),
    ));
    // Hashing runs here while the reader task fetches the next batch.
    let mut d = Digest::default();
    let mut bad = None;
    while let Some(chunk) = rx.recv().await {
        if let Err(e) = d.add_chunk(&chunk, ns) {
            bad = Some(e);
            break;
        }
    }
    drop(rx);
    let read = reader.await.context("the reader task stopped");
    if let Some(e) = bad {
        // The reader then fails with a closed pipeline, which says nothing new.
        drop(read);
        return Err(e).with_context(|| format!("on the {what}"));
    }
    read?.with_context(|| format!("reading {ns} on the {what}"))?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, RawDocumentBuf};

    fn bytes(d: mongodb::bson::Document) -> Vec<u8> {
        RawDocumentBuf::from_document(&d).unwrap().into_bytes()
    }

    #[test]
    fn order_of_documents_does_not_matter_but_order_of_fields_does() {
        let ns = Namespace::new("d", "c");
        let (a, b) = (
            bytes(doc! {"_id": 1, "x": 1}),
            bytes(doc! {"_id": 2, "x": 2}),
        );
        let mut one = Digest::default();
        one.add_chunk(&[a.clone(), b.clone()].concat(), &ns)
            .unwrap();
        let mut two = Digest::default();
        two.add_chunk(&b, &ns).unwrap();
        two.add_chunk(&a, &ns).unwrap();
        assert_eq!(one, two);
        assert!(!one.same_order(&two), "the chain sees the order");
        assert!(one.same_order(&one.clone()));
        assert_eq!(one.docs, 2);

        let mut swapped = Digest::default();
        swapped
            .add_chunk(&[bytes(doc! {"x": 1, "_id": 1}), b.clone()].concat(), &ns)
            .unwrap();
        assert_ne!(one, swapped);
        // 1 and 1.0 as _id: equal to the server's `_id` index, different documents.
        let mut double = Digest::default();
        double
            .add_chunk(&[bytes(doc! {"_id": 1.0, "x": 1}), b].concat(), &ns)
            .unwrap();
        assert_ne!(one, double);
    }

    #[test]
    fn truncated_chunk_is_an_error() {
        let ns = Namespace::new("d", "c");
        let a = bytes(doc! {"_id": 1});
        let mut d = Digest::default();
        let err = d.add_chunk(&a[..a.len() - 1], &ns).unwrap_err();
        assert!(err.to_string().contains("d.c"), "{err}");
    }
}
