//! Compression: zstd, gzip or none, chosen by flag on write and by file suffix on read.
//!
//! zstd runs in the library's multi-threaded mode; gzip is compressed in parallel
//! blocks (`pgzip`: libdeflate, one gzip member per block), which mongorestore --gzip
//! reads as one stream. Reading gzip takes such members whole with libdeflate (`gzread`)
//! and streams anything else with flate2 on the zlib-rs backend.

pub mod gzread;
pub mod pgzip;

use std::io::{Read, Write};

use anyhow::{bail, Result};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Zstd,
    Gzip,
    None,
}

impl Compression {
    /// The suffix appended to `.bson` / `.metadata.json`, as mongodump does for gzip.
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::Zstd => ".zst",
            Compression::Gzip => ".gz",
            Compression::None => "",
        }
    }

    pub fn default_level(self) -> i32 {
        match self {
            Compression::Zstd => 3,
            // libdeflate's level 7 gives the size Go's gzip gives at mongodump's level 6
            // (4.11x vs 4.12x on the bench data); its level 6 is faster but 2% larger.
            Compression::Gzip => 7,
            Compression::None => 0,
        }
    }

    pub fn check_level(self, level: i32) -> Result<()> {
        let (lo, hi) = match self {
            Compression::Zstd => (1, 22),
            // libdeflate's range: 10-12 are its slow, near-optimal levels.
            Compression::Gzip => (1, 12),
            Compression::None => (0, 0),
        };
        if level < lo || level > hi {
            bail!("--level {level} is out of range for {self:?}: use {lo}..={hi}");
        }
        Ok(())
    }

    /// Detect compression from an object name's suffix.
    pub fn from_name(name: &str) -> Compression {
        if name.ends_with(".zst") {
            Compression::Zstd
        } else if name.ends_with(".gz") {
            Compression::Gzip
        } else {
            Compression::None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
            Compression::None => "none",
        }
    }
}

/// A compressing writer that must be finished explicitly so trailers get written.
pub enum Encoder<W: Write> {
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Gzip(pgzip::ParGzEncoder<W>),
    None(W),
}

impl<W: Write> Encoder<W> {
    /// `threads` > 1 enables zstd's worker threads and parallel gzip blocks (ignored for none).
    pub fn new(c: Compression, level: i32, threads: u32, inner: W) -> Result<Encoder<W>> {
        Ok(match c {
            Compression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(inner, level)?;
                if threads > 1 {
                    e.multithread(threads)?;
                }
                // Frame checksums let a restore detect corruption inside the stream too.
                e.include_checksum(true)?;
                Encoder::Zstd(e)
            }
            Compression::Gzip => Encoder::Gzip(pgzip::ParGzEncoder::new(inner, level, threads)?),
            Compression::None => Encoder::None(inner),
        })
    }

    /// Flush trailers and return the inner writer.
    pub fn finish(self) -> std::io::Result<W> {
        match self {
            Encoder::Zstd(e) => e.finish(),
            Encoder::Gzip(e) => e.finish(),
            Encoder::None(mut w) => {
                w.flush()?;
                Ok(w)
            }
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Encoder::Zstd(e) => e.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::None(w) => w.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Encoder::Zstd(e) => e.write_all(buf),
            Encoder::Gzip(e) => e.write_all(buf),
            Encoder::None(w) => w.write_all(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Encoder::Zstd(e) => e.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::None(w) => w.flush(),
        }
    }
}

/// A decompressing reader. gzip accepts concatenated members, as gunzip does.
pub fn decoder<'a, R: Read + Send + 'a>(
    c: Compression,
    inner: R,
) -> Result<Box<dyn Read + Send + 'a>> {
    Ok(match c {
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(inner)?),
        Compression::Gzip => Box::new(gzread::MemberGzDecoder::new(inner)),
        Compression::None => Box::new(inner),
    })
}

/// Compress a small buffer in one go (metadata, manifests).
pub fn compress_all(c: Compression, level: i32, data: &[u8]) -> Result<Vec<u8>> {
    let mut e = Encoder::new(c, level, 1, Vec::with_capacity(data.len() / 2 + 64))?;
    e.write_all(data)?;
    Ok(e.finish()?)
}

/// Decompress a small buffer in one go.
pub fn decompress_all(c: Compression, data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    decoder(c, data)?.read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_each_codec() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for c in [Compression::Zstd, Compression::Gzip, Compression::None] {
            let packed = compress_all(c, c.default_level(), &data).unwrap();
            assert_eq!(decompress_all(c, &packed).unwrap(), data, "{c:?}");
        }
    }

    #[test]
    fn multithreaded_zstd_round_trips() {
        let data = vec![7u8; 3 << 20];
        let mut e = Encoder::new(Compression::Zstd, 3, 2, Vec::new()).unwrap();
        e.write_all(&data).unwrap();
        let packed = e.finish().unwrap();
        assert_eq!(decompress_all(Compression::Zstd, &packed).unwrap(), data);
    }

    #[test]
    fn truncated_streams_fail() {
        let data = vec![1u8; 100_000];
        for c in [Compression::Zstd, Compression::Gzip] {
            let packed = compress_all(c, c.default_level(), &data).unwrap();
            let cut = &packed[..packed.len() - 8];
            assert!(
                decompress_all(c, cut).is_err(),
                "{c:?} accepted a truncated stream"
            );
        }
    }

    #[test]
    fn suffixes() {
        assert_eq!(Compression::from_name("db/c.bson.zst"), Compression::Zstd);
        assert_eq!(
            Compression::from_name("db/c.metadata.json.gz"),
            Compression::Gzip
        );
        assert_eq!(Compression::from_name("db/c.bson"), Compression::None);
        assert!(Compression::Gzip.check_level(13).is_err());
    }
}
