//! Walking a stream of concatenated BSON documents (the .bson file format)
//! with framing checks, so truncation and corruption are reported with the
//! offset where they were found.
//!
//! Framing only — each document's length and its terminating zero — never content: a
//! document the server accepted and stored (a string that is not UTF-8, a binary subtype 2
//! whose inner length is off, a deprecated type) is carried as its bytes, as mongorestore
//! carries it. Damage inside a document is what the object's checksum is for; the server
//! itself judges what it is asked to insert.

use std::io::{ErrorKind, Read};

use anyhow::{bail, Result};
use mongodb::bson::RawDocument;

/// The server's limit is 16 MiB; mongodump tolerates 16 KiB of slack for oplog entries.
pub const MAX_DOCUMENT: usize = 16 * 1024 * 1024 + 16 * 1024;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WalkStats {
    pub docs: u64,
    pub bytes: u64,
}

/// Read every document from `r`, checking each one's framing, and hand its bytes to
/// `on_doc`. `what` names the object in error messages.
pub fn walk<R: Read>(
    mut r: R,
    what: &str,
    mut on_doc: impl FnMut(&RawDocument) -> Result<()>,
) -> Result<WalkStats> {
    let mut stats = WalkStats::default();
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        let mut len_bytes = [0u8; 4];
        match read_full(&mut r, &mut len_bytes)? {
            0 => return Ok(stats),
            4 => {}
            n => bail!(
                "{what} is truncated: {n} stray bytes at offset {} where a document should start",
                stats.bytes
            ),
        }
        let len = i32::from_le_bytes(len_bytes);
        if len < 5 || len as usize > MAX_DOCUMENT {
            bail!(
                "{what} is corrupt: invalid document length {len} at offset {} (document #{})",
                stats.bytes,
                stats.docs + 1
            );
        }
        let len = len as usize;
        buf.clear();
        buf.extend_from_slice(&len_bytes);
        buf.resize(len, 0);
        let got = read_full(&mut r, &mut buf[4..])?;
        if got < len - 4 {
            bail!(
                "{what} is truncated: document #{} at offset {} needs {len} bytes, only {} remain",
                stats.docs + 1,
                stats.bytes,
                got + 4
            );
        }
        // from_bytes checks the frame only (length and terminator), which is all we judge.
        let doc = RawDocument::from_bytes(&buf).map_err(|e| {
            anyhow::anyhow!(
                "{what} is corrupt: document #{} at offset {} is not a framed BSON document ({e})",
                stats.docs + 1,
                stats.bytes
            )
        })?;
        on_doc(doc)?;
        stats.docs += 1;
        stats.bytes += len as u64;
    }
}

/// Like read_exact, but returns how many bytes were read before EOF.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::rawdoc;

    fn stream(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            out.extend_from_slice(rawdoc! { "i": i as i32, "s": "x".repeat(i) }.as_bytes());
        }
        out
    }

    #[test]
    fn walks_all_documents() {
        let data = stream(10);
        let s = walk(&data[..], "t", |_| Ok(())).unwrap();
        assert_eq!(s.docs, 10);
        assert_eq!(s.bytes, data.len() as u64);
        assert_eq!(walk(&[][..], "t", |_| Ok(())).unwrap().docs, 0);
    }

    #[test]
    fn truncation_is_reported_with_offset() {
        let data = stream(3);
        let cut = &data[..data.len() - 3];
        let msg = walk(cut, "db/c.bson", |_| Ok(())).unwrap_err().to_string();
        assert!(
            msg.contains("db/c.bson is truncated") && msg.contains("offset"),
            "{msg}"
        );
        let msg = walk(
            &data[..data.len() + 2 - data.len() % 4 - 2][..2],
            "x",
            |_| Ok(()),
        )
        .unwrap_err()
        .to_string();
        assert!(msg.contains("stray bytes"), "{msg}");
    }

    #[test]
    fn corruption_is_reported() {
        let mut data = stream(2);
        data[0] = 0xff;
        data[3] = 0x7f;
        let msg = walk(&data[..], "x", |_| Ok(())).unwrap_err().to_string();
        assert!(msg.contains("invalid document length"), "{msg}");
        let mut data = stream(2);
        let last = data.len() - 1;
        data[last] = 7; // missing terminator
        assert!(walk(&data[..], "x", |_| Ok(())).is_err());
    }

    /// What the server stores is carried: invalid UTF-8 in a string and a binary subtype 2
    /// whose inner length disagrees are framed correctly, so they pass.
    #[test]
    fn content_the_server_accepted_passes() {
        let mut doc = rawdoc! { "_id": 1, "s": "abc" }.into_bytes();
        let at = doc.windows(3).position(|w| w == b"abc").unwrap();
        doc[at] = 0xff;
        let mut bin = vec![0u8; 4];
        bin.extend_from_slice(b"\x05b\x00");
        bin.extend_from_slice(&7i32.to_le_bytes()); // binary length 7
        bin.push(2); // subtype 2 (old binary)
        bin.extend_from_slice(&9i32.to_le_bytes()); // inner length says 9, only 3 follow
        bin.extend_from_slice(b"xyz");
        bin.push(0);
        let n = bin.len() as i32;
        bin[..4].copy_from_slice(&n.to_le_bytes());
        let mut data = doc.clone();
        data.extend_from_slice(&bin);
        let mut seen = Vec::new();
        let s = walk(&data[..], "x", |d| {
            seen.push(d.as_bytes().to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(s.docs, 2);
        assert_eq!(seen, vec![doc, bin]);
    }
}
