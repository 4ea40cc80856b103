//! An insert batch: raw documents back to back in one buffer.
//!
//! A load moves millions of small documents; one allocation per document (and the copy
//! into a command after it) cost a malloc and a free each, spread across threads, and
//! memory the allocator kept. One buffer per batch, sized once for a full batch, holds
//! the documents exactly as they were read; the insert command is built from it in one
//! pass (`raw_write::insert_raw`).

use mongodb::bson::RawDocumentBuf;

/// Insert batch size. Several loads run at once (collections, ranges), each with a few
/// batches queued and in flight, so this sets peak memory: on 1 GB, 4 MB batches restored
/// at the same speed as 16 MB ones with 207 MB instead of 490 MB peak RSS. Well under the
/// 48 MB message limit and maxWriteBatchSize (100,000).
pub const BATCH_BYTES: usize = 4 << 20;
pub const BATCH_DOCS: usize = 50_000;

#[derive(Debug, Default)]
pub struct Batch {
    buf: Vec<u8>,
    /// Where each document ends in `buf`.
    ends: Vec<usize>,
}

impl Batch {
    /// Append one document (its whole BSON frame), copied.
    pub fn push(&mut self, doc: &[u8]) {
        if self.buf.capacity() == 0 {
            // A full batch's worth up front: growing by doubling would copy it twice and
            // could leave it twice the size it needs.
            self.buf
                .reserve_exact(BATCH_BYTES.max(doc.len()) + (64 << 10));
        } else if self.buf.capacity() - self.buf.len() < doc.len() {
            self.buf.reserve_exact(doc.len());
        }
        self.buf.extend_from_slice(doc);
        self.ends.push(self.buf.len());
    }

    /// Reached the size or count limit: send it.
    pub fn full(&self) -> bool {
        self.buf.len() >= BATCH_BYTES || self.ends.len() >= BATCH_DOCS
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Documents in the batch.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Bytes of the documents.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// The `i`-th document's bytes.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.buf[start..end])
    }

    /// The documents' bytes, in order.
    pub fn docs(&self) -> Vec<&[u8]> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let d = &self.buf[start..end];
                start = end;
                d
            })
            .collect()
    }

    /// The documents as owned raw documents (for readers that keep them one by one).
    pub fn into_docs(self) -> Vec<RawDocumentBuf> {
        self.docs()
            .into_iter()
            .map(|d| RawDocumentBuf::from_bytes(d.to_vec()).expect("a framed document"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::rawdoc;

    #[test]
    fn documents_come_back_as_pushed() {
        let docs = [rawdoc! { "_id": 1 }, rawdoc! { "_id": "two", "x": [1, 2] }];
        let mut b = Batch::default();
        assert!(b.is_empty() && b.get(0).is_none());
        for d in &docs {
            b.push(d.as_bytes());
        }
        assert_eq!(b.len(), 2);
        assert_eq!(
            b.bytes(),
            docs[0].as_bytes().len() + docs[1].as_bytes().len()
        );
        assert_eq!(b.get(1), Some(docs[1].as_bytes()));
        assert_eq!(b.docs(), vec![docs[0].as_bytes(), docs[1].as_bytes()]);
        assert_eq!(b.into_docs(), docs.to_vec());
    }

    #[test]
    fn full_at_the_size_limit_and_no_bigger_than_needed() {
        let doc = vec![0u8; 1 << 20];
        let mut b = Batch::default();
        for _ in 0..3 {
            b.push(&doc);
            assert!(!b.full());
        }
        b.push(&doc);
        assert!(b.full());
        assert!(b.buf.capacity() < BATCH_BYTES + (1 << 20));
    }
}
