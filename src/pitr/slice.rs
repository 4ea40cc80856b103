//! One slice: the oplog entries after one position up to another, as a compressed
//! mongodump-format `oplog.bson` (the entries' bytes as the server logged them, back to
//! back), and the manifest written after it. A slice covers `(after, until]`: every entry of
//! the selection in that range is in it, even when there is none (an empty slice still
//! proves that nothing selected happened).

use std::io::Write;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::codec::{Compression, Encoder};
use crate::dump::manifest::{ObjectEntry, OplogTs};

pub const FORMAT: &str = "mongoshift-oplog-slice";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SliceManifest {
    pub format: String,
    pub format_version: u32,
    /// The stream (replica set name) this slice belongs to.
    pub stream: String,
    /// Exclusive start: the previous slice's `until` (or where the stream began).
    pub after: OplogTs,
    /// Inclusive end: the majority-committed position the archiver had read through.
    pub until: OplogTs,
    /// The first and last entries held (None when the slice is empty).
    pub first: Option<OplogTs>,
    pub last: Option<OplogTs>,
    pub count: u64,
    pub raw_bytes: u64,
    pub compression: Compression,
    /// Relative to the stream folder; `sha256` is of the bytes as stored.
    pub object: ObjectEntry,
    pub written_at: DateTime<Utc>,
}

impl SliceManifest {
    pub fn parse(bytes: &[u8], what: &str) -> Result<SliceManifest> {
        let m: SliceManifest = serde_json::from_slice(bytes)
            .with_context(|| format!("{what} is not a valid slice manifest"))?;
        if m.format != FORMAT {
            bail!("{what} has format '{}', expected '{FORMAT}'", m.format);
        }
        if m.format_version > FORMAT_VERSION {
            bail!(
                "{what} was written by a newer mongoshift (slice format {}); upgrade to read it",
                m.format_version
            );
        }
        if m.until < m.after {
            bail!("{what} ends before it starts; the slice is corrupt");
        }
        Ok(m)
    }
}

/// Collects one slice's entries, compressed as they arrive: only the compressed slice is
/// held in memory (a 60 s slice at 1,000 writes/s is a few MB).
pub struct SliceBuilder {
    enc: Encoder<Vec<u8>>,
    compression: Compression,
    pub after: OplogTs,
    pub first: Option<OplogTs>,
    pub last: Option<OplogTs>,
    pub count: u64,
    pub raw_bytes: u64,
}

/// A finished slice: the object's bytes and everything the manifest says but the key.
pub struct BuiltSlice {
    pub bytes: Vec<u8>,
    pub sha256: String,
    pub after: OplogTs,
    pub until: OplogTs,
    pub first: Option<OplogTs>,
    pub last: Option<OplogTs>,
    pub count: u64,
    pub raw_bytes: u64,
    pub compression: Compression,
}

impl SliceBuilder {
    pub fn new(after: OplogTs, compression: Compression, level: i32) -> Result<SliceBuilder> {
        Ok(SliceBuilder {
            enc: Encoder::new(compression, level, 1, Vec::new())?,
            compression,
            after,
            first: None,
            last: None,
            count: 0,
            raw_bytes: 0,
        })
    }

    /// Append one entry's bytes, unchanged. Entries arrive in oplog order.
    pub fn push(&mut self, entry: &[u8], ts: OplogTs) -> Result<()> {
        if let Some(last) = self.last {
            if ts <= last {
                bail!(
                    "oplog entry {}:{} arrived after {}:{}; the oplog read went backwards",
                    ts.t,
                    ts.i,
                    last.t,
                    last.i
                );
            }
        }
        self.enc.write_all(entry)?;
        self.first.get_or_insert(ts);
        self.last = Some(ts);
        self.count += 1;
        self.raw_bytes += entry.len() as u64;
        Ok(())
    }

    pub fn finish(self, until: OplogTs) -> Result<BuiltSlice> {
        let bytes = self.enc.finish()?;
        Ok(BuiltSlice {
            sha256: crate::pipeline::sha256_hex(&bytes),
            bytes,
            after: self.after,
            until,
            first: self.first,
            last: self.last,
            count: self.count,
            raw_bytes: self.raw_bytes,
            compression: self.compression,
        })
    }
}

impl BuiltSlice {
    pub fn manifest(&self, stream: &str, key: String) -> SliceManifest {
        SliceManifest {
            format: FORMAT.to_string(),
            format_version: FORMAT_VERSION,
            stream: stream.to_string(),
            after: self.after,
            until: self.until,
            first: self.first,
            last: self.last,
            count: self.count,
            raw_bytes: self.raw_bytes,
            compression: self.compression,
            object: ObjectEntry {
                key,
                stored_bytes: self.bytes.len() as u64,
                sha256: self.sha256.clone(),
            },
            written_at: Utc::now(),
        }
    }
}

/// What a stream archives and where it comes from: written when the stream starts, checked
/// on every restart (a second archiver with another selection must not mix into it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StreamInfo {
    pub format: String,
    pub stream: String,
    /// Host list only, never credentials.
    pub hosts: String,
    pub replica_set: String,
    pub selection: crate::pitr::select::Selection,
    pub started_at: DateTime<Utc>,
}

/// A stretch of the oplog that was gone before the archiver read it: no restore can
/// reach a time inside it (recorded, never hidden).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GapRecord {
    pub stream: String,
    /// The last archived position.
    pub after: OplogTs,
    /// The oldest entry the oplog still held when the gap was found.
    pub oldest_available: OplogTs,
    pub detected_at: DateTime<Utc>,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, Timestamp};

    #[test]
    fn a_slice_holds_entries_verbatim_and_refuses_going_backwards() {
        let a =
            mongodb::bson::to_vec(&doc! { "ts": Timestamp { time: 5, increment: 1 }, "op": "n" })
                .unwrap();
        let mut b = SliceBuilder::new(OplogTs { t: 4, i: 9 }, Compression::Gzip, 6).unwrap();
        b.push(&a, OplogTs { t: 5, i: 1 }).unwrap();
        assert!(b.push(&a, OplogTs { t: 5, i: 1 }).is_err());
        let s = b.finish(OplogTs { t: 6, i: 0 }).unwrap();
        let plain = crate::codec::decompress_all(Compression::Gzip, &s.bytes).unwrap();
        assert_eq!(plain, a);
        let m = s.manifest("rs0", "slices/x/oplog.bson.gz".into());
        assert_eq!(
            (m.count, m.first, m.last),
            (
                1,
                Some(OplogTs { t: 5, i: 1 }),
                Some(OplogTs { t: 5, i: 1 })
            )
        );
        let round = SliceManifest::parse(&serde_json::to_vec(&m).unwrap(), "m").unwrap();
        assert_eq!(round, m);
    }
}
