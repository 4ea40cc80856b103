//! `manifest.json`: written last, it is what makes a folder of objects a backup.

use anyhow::{bail, Context, Result};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::codec::Compression;
use crate::namespace::Namespace;

pub const FORMAT: &str = "mongoshift-backup";
pub const FORMAT_VERSION: u32 = 1;
pub const CHECKSUM_ALGORITHM: &str = "sha256";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub tool_version: String,
    pub backup_id: String,
    #[serde(default)]
    pub tag: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub source: Source,
    pub compression: Compression,
    pub compression_level: i32,
    /// Algorithm of every `sha256` field: the digest of the object's bytes as stored.
    pub checksum_algorithm: String,
    pub namespaces: Vec<NamespaceEntry>,
    #[serde(default)]
    pub oplog: Option<OplogEntry>,
    pub totals: Totals,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Source {
    /// Host list only: never credentials.
    pub hosts: String,
    pub server_version: String,
    pub topology: String,
    #[serde(default)]
    pub replica_set: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamespaceEntry {
    pub db: String,
    pub collection: String,
    /// collection | view | timeseries
    pub kind: String,
    pub documents: u64,
    pub raw_bytes: u64,
    pub indexes: usize,
    /// The .bson object; None for views.
    #[serde(default)]
    pub data: Option<ObjectEntry>,
    pub metadata: ObjectEntry,
    pub seconds: f64,
}

impl NamespaceEntry {
    pub fn ns(&self) -> Namespace {
        Namespace::new(&self.db, &self.collection)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ObjectEntry {
    /// Relative to the backup folder.
    pub key: String,
    pub stored_bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct OplogTs {
    pub t: u32,
    pub i: u32,
}

impl From<mongodb::bson::Timestamp> for OplogTs {
    fn from(ts: mongodb::bson::Timestamp) -> Self {
        OplogTs {
            t: ts.time,
            i: ts.increment,
        }
    }
}

impl From<OplogTs> for mongodb::bson::Timestamp {
    fn from(ts: OplogTs) -> Self {
        mongodb::bson::Timestamp {
            time: ts.t,
            increment: ts.i,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OplogEntry {
    pub object: ObjectEntry,
    pub entries: u64,
    pub raw_bytes: u64,
    /// Position noted before the first collection was read.
    pub start: OplogTs,
    /// Last entry copied: a restore with oplog replay reaches the state at this time.
    pub end: OplogTs,
    /// The databases the oplog was limited to (--db/--ns-include); absent: every user
    /// database. Continuous backups join a base only when it holds what they select.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub databases: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Totals {
    pub namespaces: usize,
    pub documents: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
}

impl Manifest {
    pub fn parse(bytes: &[u8], what: &str) -> Result<Manifest> {
        let m: Manifest = serde_json::from_slice(bytes).with_context(|| {
            format!("{what} is not a valid mongoshift manifest; the backup may be corrupt")
        })?;
        if m.format != FORMAT {
            bail!("{what} has format '{}', expected '{FORMAT}'", m.format);
        }
        if m.format_version > FORMAT_VERSION {
            bail!(
                "{what} was written by a newer mongoshift (format version {}); upgrade mongoshift to read it",
                m.format_version
            );
        }
        Ok(m)
    }

    /// Every object the backup consists of, in a stable order.
    pub fn objects(&self) -> Vec<&ObjectEntry> {
        let mut out = Vec::new();
        for n in &self.namespaces {
            if let Some(d) = &n.data {
                out.push(d);
            }
            out.push(&n.metadata);
        }
        if let Some(o) = &self.oplog {
            out.push(&o.object);
        }
        out
    }
}

/// A new backup id: the UTC start time, sortable, with `-TAG` when tagged.
pub fn backup_id(at: DateTime<Utc>, tag: Option<&str>) -> String {
    let base = at.format("%Y%m%dT%H%M%SZ").to_string();
    match tag {
        Some(t) => format!("{base}-{t}"),
        None => base,
    }
}

/// The time encoded in a backup id, if it is one of ours.
pub fn id_time(id: &str) -> Option<DateTime<Utc>> {
    let stamp = id.get(..16)?;
    NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|n| n.and_utc())
}

/// Tags become part of object keys: keep them to a safe alphabet.
pub fn check_tag(tag: &str) -> Result<()> {
    if tag.is_empty()
        || tag.len() > 64
        || !tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("--tag '{tag}' must be 1-64 characters of letters, digits, '-' and '_'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ids_sort_and_parse() {
        let t = Utc.with_ymd_and_hms(2026, 11, 22, 4, 10, 0).unwrap();
        assert_eq!(backup_id(t, None), "20261122T041000Z");
        assert_eq!(
            backup_id(t, Some("pre-migration")),
            "20261122T041000Z-pre-migration"
        );
        assert_eq!(id_time("20261122T041000Z-x"), Some(t));
        assert_eq!(id_time("notanid"), None);
        assert!(check_tag("a/b").is_err());
        assert!(check_tag("nightly_1").is_ok());
    }
}
