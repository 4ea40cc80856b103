//! Object names of a continuous backup stream, relative to the backups location.
//!
//! Slices are named by the position they start after, zero-padded, so that listing order is
//! chronological order and a slice rewritten after a crash (same start) replaces its own
//! half-written object instead of leaving a second one beside it.

use crate::codec::Compression;
use crate::dump::manifest::OplogTs;

/// The folder under a backups location that holds every stream; `backups list/prune`
/// never take it for a backup.
pub const PITR_DIR: &str = "pitr";
pub const STREAM_INFO: &str = "stream.json";
pub const SLICES: &str = "slices";
pub const GAPS: &str = "gaps";
pub const SLICE_MANIFEST: &str = "manifest.json";

/// `pitr/<stream>`: one stream per replica set (its set name).
pub fn stream_dir(stream: &str) -> String {
    format!("{PITR_DIR}/{stream}")
}

pub fn ts_name(ts: OplogTs) -> String {
    format!("{:010}.{:010}", ts.t, ts.i)
}

pub fn parse_ts_name(name: &str) -> Option<OplogTs> {
    let (t, i) = name.split_once('.')?;
    Some(OplogTs {
        t: t.parse().ok()?,
        i: i.parse().ok()?,
    })
}

/// `slices/<after>` relative to the stream folder.
pub fn slice_dir(after: OplogTs) -> String {
    format!("{SLICES}/{}", ts_name(after))
}

/// The oplog object keeps mongodump's file name (`oplog.bson`) plus the compression's
/// suffix, so that `gunzip` (or `zstd -d`) gives a file stock mongorestore replays.
pub fn slice_object(after: OplogTs, c: Compression) -> String {
    format!("{}/oplog.bson{}", slice_dir(after), c.suffix())
}

pub fn slice_manifest(after: OplogTs) -> String {
    format!("{}/{SLICE_MANIFEST}", slice_dir(after))
}

pub fn gap_key(after: OplogTs) -> String {
    format!("{GAPS}/{}.json", ts_name(after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_chronologically_and_parse_back() {
        let a = OplogTs { t: 9, i: 12 };
        let b = OplogTs {
            t: 1_700_000_000,
            i: 1,
        };
        assert!(ts_name(a) < ts_name(b));
        assert_eq!(parse_ts_name(&ts_name(b)), Some(b));
        assert_eq!(
            slice_object(b, Compression::Gzip),
            "slices/1700000000.0000000001/oplog.bson.gz"
        );
        assert_eq!(parse_ts_name("x"), None);
    }
}
