//! The mongodump `--archive` format (mongo-tools common/archive/spec.md): a magic
//! number, a header document, one metadata document per collection, a terminator,
//! then interleaved namespace segments, each namespace closed by an EOF header
//! carrying the CRC-64 (ECMA, as Go's hash/crc64) of all its documents.

use std::collections::HashMap;
use std::io::Read;

use anyhow::{bail, Context, Result};
use mongodb::bson::{Document, RawDocument};

use super::bson_stream::MAX_DOCUMENT;

/// 0x8199e26d, stored little-endian.
pub const MAGIC: [u8; 4] = [0x6d, 0xe2, 0x99, 0x81];
const TERMINATOR: i32 = -1;
/// Go's crc64.ECMA table with ^0 in and out is CRC-64/XZ.
const CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_XZ);

/// The collection entry of the archive's prelude.
#[derive(Debug, Clone)]
pub struct ArchiveCollection {
    pub db: String,
    pub collection: String,
    /// The metadata.json content (canonical Extended JSON).
    pub metadata: String,
}

#[derive(Debug, Clone)]
pub struct Prelude {
    pub header: Document,
    pub collections: Vec<ArchiveCollection>,
}

/// Where a namespace's data goes during demultiplexing.
pub enum Event<'a> {
    /// One document of `db.coll`.
    Doc {
        db: &'a str,
        coll: &'a str,
        doc: &'a RawDocument,
    },
    /// `db.coll` ended and its CRC matched.
    End { db: &'a str, coll: &'a str },
}

/// Reads the archive incrementally, tracking the byte offset for error messages.
pub struct ArchiveReader<R> {
    r: R,
    offset: u64,
    what: String,
    buf: Vec<u8>,
}

impl<R: Read> ArchiveReader<R> {
    pub fn new(r: R, what: &str) -> Self {
        ArchiveReader {
            r,
            offset: 0,
            what: what.to_string(),
            buf: Vec::with_capacity(64 * 1024),
        }
    }

    /// Fill `buf[start..n]` from the input (the buffer is resized to `n`).
    fn read_exact_or(&mut self, start: usize, n: usize, expect: &str) -> Result<()> {
        self.buf.resize(n, 0);
        let mut got = start;
        while got < n {
            match self.r.read(&mut self.buf[got..n]) {
                Ok(0) => bail!(
                    "{} is truncated at offset {}: expected {expect}",
                    self.what,
                    self.offset + got as u64
                ),
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("reading {} at offset {}", self.what, self.offset)
                    })
                }
            }
        }
        Ok(())
    }

    /// The next document, or None at a terminator. With `eof_ok`, a clean end of
    /// input before the length prefix is reported as Ok(None) too.
    fn next_doc(&mut self, eof_ok: bool) -> Result<Option<Option<usize>>> {
        let mut len = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.r.read(&mut len[got..]) {
                Ok(0) if got == 0 && eof_ok => return Ok(None),
                Ok(0) => bail!(
                    "{} is truncated at offset {}: expected a document or terminator",
                    self.what,
                    self.offset
                ),
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).with_context(|| format!("reading {}", self.what)),
            }
        }
        let n = i32::from_le_bytes(len);
        if n == TERMINATOR {
            self.offset += 4;
            return Ok(Some(None));
        }
        if n < 5 || n as usize > MAX_DOCUMENT {
            bail!(
                "{} is corrupt: invalid document length {n} at offset {}",
                self.what,
                self.offset
            );
        }
        let n = n as usize;
        self.buf.resize(4, 0);
        self.buf.copy_from_slice(&len);
        self.read_exact_or(4, n, "the rest of a document")?;
        RawDocument::from_bytes(&self.buf).map_err(|e| {
            anyhow::anyhow!(
                "{} is corrupt: invalid document at offset {} ({e})",
                self.what,
                self.offset
            )
        })?;
        self.offset += n as u64;
        Ok(Some(Some(n)))
    }

    fn doc(&self) -> &RawDocument {
        RawDocument::from_bytes(&self.buf).expect("checked in next_doc")
    }

    /// Magic number, header and collection metadata.
    pub fn prelude(&mut self) -> Result<Prelude> {
        self.read_exact_or(0, 4, "the archive magic number")?;
        if self.buf[..4] != MAGIC {
            bail!(
                "{} is not a mongodump archive (no magic number at the start); \
                 if it is gzip-compressed, name it *.gz",
                self.what
            );
        }
        self.offset = 4;
        let header: Document = match self.next_doc(false)? {
            Some(Some(_)) => self
                .doc()
                .try_into()
                .context("decoding the archive header")?,
            _ => bail!("{} has no header document", self.what),
        };
        let mut collections = Vec::new();
        while let Some(Some(_)) = self.next_doc(false)? {
            let d = self.doc();
            collections.push(ArchiveCollection {
                db: d
                    .get_str("db")
                    .context("archive metadata without db")?
                    .to_string(),
                collection: d
                    .get_str("collection")
                    .context("archive metadata without collection")?
                    .to_string(),
                metadata: d.get_str("metadata").unwrap_or_default().to_string(),
            });
        }
        Ok(Prelude {
            header,
            collections,
        })
    }

    /// Walk every segment after the prelude, handing documents and verified
    /// namespace ends to `sink`. A CRC mismatch or truncation is an error naming
    /// the namespace and offset.
    pub fn demux(&mut self, mut sink: impl FnMut(Event) -> Result<()>) -> Result<()> {
        let mut crcs: HashMap<(String, String), crc::Digest<'static, u64>> = HashMap::new();
        loop {
            let header = match self.next_doc(true)? {
                None => break,
                Some(None) => bail!(
                    "{} is corrupt: unexpected terminator at offset {}",
                    self.what,
                    self.offset - 4
                ),
                Some(Some(_)) => self.doc().to_owned(),
            };
            let db = header
                .get_str("db")
                .context("segment header without db")?
                .to_string();
            let coll = header
                .get_str("collection")
                .context("segment header without collection")?
                .to_string();
            let eof = header.get_bool("EOF").unwrap_or(false);
            let key = (db.clone(), coll.clone());
            if eof {
                let expected = header.get_i64("CRC").unwrap_or(0) as u64;
                let got = crcs
                    .remove(&key)
                    .map(|d| d.finalize())
                    .unwrap_or(CRC64.digest().finalize());
                if got != expected {
                    bail!(
                        "{} is corrupt: the CRC of {db}.{coll} does not match (computed {got:016x}, archive says {expected:016x}) at offset {}",
                        self.what,
                        self.offset
                    );
                }
                match self.next_doc(false)? {
                    Some(None) => {}
                    _ => bail!(
                        "{} is corrupt: no terminator after the EOF of {db}.{coll}",
                        self.what
                    ),
                }
                sink(Event::End {
                    db: &db,
                    coll: &coll,
                })?;
                continue;
            }
            let digest = crcs.entry(key).or_insert_with(|| CRC64.digest());
            loop {
                match self.next_doc(false)? {
                    Some(None) => break,
                    Some(Some(_)) => {
                        digest.update(&self.buf);
                        let doc = RawDocument::from_bytes(&self.buf).expect("checked");
                        sink(Event::Doc {
                            db: &db,
                            coll: &coll,
                            doc,
                        })?;
                    }
                    None => unreachable!("eof_ok is false"),
                }
            }
        }
        if let Some(((db, coll), _)) = crcs.into_iter().next() {
            bail!(
                "{} is truncated: {db}.{coll} has no end-of-namespace block",
                self.what
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_go_ecma() {
        // Go: crc64.Checksum([]byte("123456789"), crc64.MakeTable(crc64.ECMA)) == 0x995dc9bbdf1939fa
        assert_eq!(CRC64.checksum(b"123456789"), 0x995d_c9bb_df19_39fa);
    }

    #[test]
    fn rejects_non_archives() {
        let mut r = ArchiveReader::new(&b"not an archive at all"[..], "x.archive");
        let msg = r.prelude().unwrap_err().to_string();
        assert!(msg.contains("not a mongodump archive"), "{msg}");
    }
}

#[cfg(test)]
mod fixture_tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/mongodump-100.8.0")
            .join(name)
    }

    #[test]
    fn reads_the_genuine_archive_and_checks_every_crc() {
        let f = std::fs::File::open(fixture("archive-plain.archive")).unwrap();
        let mut r = ArchiveReader::new(std::io::BufReader::new(f), "archive-plain.archive");
        let p = r.prelude().unwrap();
        assert_eq!(p.header.get_str("version").unwrap(), "0.1");
        assert!(p
            .collections
            .iter()
            .any(|c| c.collection == "comentários_日志"));
        let mut counts: HashMap<String, u64> = HashMap::new();
        let mut ended = 0;
        r.demux(|e| {
            match e {
                Event::Doc { db, coll, .. } => {
                    *counts.entry(format!("{db}.{coll}")).or_default() += 1
                }
                Event::End { .. } => ended += 1,
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(counts["predixi.users"], 2000);
        assert_eq!(counts["predixi.events"], 1000);
        assert_eq!(ended, p.collections.len());
    }

    #[test]
    fn a_flipped_byte_fails_the_crc() {
        let mut data = std::fs::read(fixture("archive-plain.archive")).unwrap();
        // Flip a byte inside a string value late in the file (document framing stays intact).
        let at = data.len() * 3 / 4;
        let pos = (at..data.len())
            .find(|&i| data[i].is_ascii_lowercase())
            .unwrap();
        data[pos] = data[pos].to_ascii_uppercase();
        let mut r = ArchiveReader::new(&data[..], "a.archive");
        r.prelude().unwrap();
        let err = r.demux(|_| Ok(())).unwrap_err().to_string();
        assert!(err.contains("CRC") || err.contains("corrupt"), "{err}");
    }

    #[test]
    fn truncation_is_reported() {
        let data = std::fs::read(fixture("archive-plain.archive")).unwrap();
        let cut = &data[..data.len() / 2];
        let mut r = ArchiveReader::new(cut, "a.archive");
        r.prelude().unwrap();
        let err = r.demux(|_| Ok(())).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }
}
