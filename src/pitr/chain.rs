//! The chain of a backups location: base backups (`backup --oplog`, each restorable from
//! its oplog's end) joined by the contiguous slices of a stream into restorable windows,
//! and the gaps between them.
//!
//! A slice covers `(after, until]`; consecutive slices are contiguous when one's `after` is
//! the previous one's `until`. A run of contiguous slices covers `(first after, last until]`.
//! A base backup whose oplog end lies in a run opens the window `[end, run's until]`; a base
//! with no run reaching it is restorable at its end only.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::dump::layout as dump_layout;
use crate::dump::manifest::{Manifest, OplogTs};
use crate::pitr::layout;
use crate::pitr::slice::{GapRecord, SliceManifest, StreamInfo};
use crate::storage::Store;

/// A complete `backup --oplog` of a replica set.
#[derive(Debug, Clone, Serialize)]
pub struct Base {
    pub id: String,
    pub replica_set: String,
    /// The oplog the base holds: a restore replays it to reach `end`.
    pub start: OplogTs,
    pub end: OplogTs,
    /// The databases its oplog was limited to (None: every user database).
    pub oplog_databases: Option<Vec<String>>,
    #[serde(skip)]
    pub manifest: Manifest,
}

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub after: OplogTs,
    pub until: OplogTs,
    pub slices: usize,
    pub entries: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Window {
    /// Restorable from (inclusive) …
    pub from: OplogTs,
    /// … through (inclusive).
    pub to: OplogTs,
    /// The base backups that open it, newest last.
    pub bases: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Gap {
    /// Archived through here …
    pub after: OplogTs,
    /// … and again from after here.
    pub until: OplogTs,
    /// Why, when the archiver recorded it.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StreamChain {
    pub stream: String,
    pub info: Option<StreamInfo>,
    pub runs: Vec<Run>,
    pub gaps: Vec<Gap>,
    pub bases: Vec<Base>,
    pub windows: Vec<Window>,
    #[serde(skip)]
    pub slices: Vec<SliceManifest>,
}

/// Every complete base backup with an oplog at the location, by replica set.
pub async fn bases(store: &Store) -> Result<Vec<Base>> {
    let mut out = Vec::new();
    for id in store.list_children("").await? {
        if id == layout::PITR_DIR {
            continue;
        }
        let child = store.child(&id);
        if child.head(dump_layout::MANIFEST).await?.is_none() {
            continue;
        }
        let m = Manifest::parse(
            &child.get(dump_layout::MANIFEST).await?,
            &format!("{id}/{}", dump_layout::MANIFEST),
        )?;
        let (Some(set), Some(op)) = (m.source.replica_set.clone(), m.oplog.clone()) else {
            continue;
        };
        out.push(Base {
            id,
            replica_set: set,
            start: op.start,
            end: op.end,
            oplog_databases: op.databases.clone(),
            manifest: m,
        });
    }
    out.sort_by(|a, b| a.end.cmp(&b.end).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// The manifest keys of a stream's complete slices (rooted at the stream folder), in
/// order: a slice without its manifest is not complete.
pub async fn slice_manifest_keys(stream: &Store) -> Result<Vec<String>> {
    let mut keys: Vec<String> = stream
        .list(&format!("{}/", layout::SLICES))
        .await?
        .into_iter()
        .map(|o| o.key)
        .filter(|k| k.ends_with(&format!("/{}", layout::SLICE_MANIFEST)))
        .collect();
    keys.sort();
    Ok(keys)
}

/// Every complete slice of a stream (rooted at the stream folder), in order.
pub async fn slices(stream: &Store) -> Result<Vec<SliceManifest>> {
    let keys = slice_manifest_keys(stream).await?;
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        out.push(SliceManifest::parse(&stream.get(&k).await?, &k)?);
    }
    out.sort_by_key(|s| s.after);
    Ok(out)
}

async fn gap_records(stream: &Store) -> Result<Vec<GapRecord>> {
    let mut out = Vec::new();
    for o in stream.list(&format!("{}/", layout::GAPS)).await? {
        let rec: GapRecord = serde_json::from_slice(&stream.get(&o.key).await?)
            .with_context(|| format!("{} is not a gap record", o.key))?;
        out.push(rec);
    }
    Ok(out)
}

/// Contiguous runs of slices. Pure.
pub fn runs(slices: &[SliceManifest]) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    for s in slices {
        match out.last_mut() {
            Some(r) if r.until == s.after => {
                r.until = s.until;
                r.slices += 1;
                r.entries += s.count;
            }
            // A slice inside what a run covers (a rewrite after a crash): nothing new.
            Some(r) if s.after < r.until && s.until <= r.until => {}
            _ => out.push(Run {
                after: s.after,
                until: s.until,
                slices: 1,
                entries: s.count,
            }),
        }
    }
    out
}

/// Windows and gaps from bases and runs. Pure.
pub fn windows(bases: &[Base], runs: &[Run]) -> Vec<Window> {
    let mut by_to: BTreeMap<(OplogTs, OplogTs), Window> = BTreeMap::new();
    for b in bases {
        let to = runs
            .iter()
            .find(|r| r.after <= b.end && b.end <= r.until)
            .map_or(b.end, |r| r.until);
        let w = Window {
            from: b.end,
            to,
            bases: vec![b.id.clone()],
        };
        // Windows ending together (same run) merge: restorable from the earliest base end.
        let key = by_to
            .keys()
            .find(|(f, t)| *t == to && *f <= to)
            .copied()
            .unwrap_or((w.from, to));
        let e = by_to.entry(key).or_insert(w.clone());
        if e.from > w.from {
            e.from = w.from;
        }
        if !e.bases.contains(&b.id) {
            e.bases.push(b.id.clone());
        }
    }
    let mut out: Vec<Window> = by_to.into_values().collect();
    out.sort_by_key(|w| w.from);
    out
}

fn gaps(runs: &[Run], recorded: &[GapRecord]) -> Vec<Gap> {
    runs.windows(2)
        .map(|p| Gap {
            after: p[0].until,
            until: p[1].after,
            reason: recorded
                .iter()
                .find(|g| g.after == p[0].until)
                .map(|g| g.reason.clone()),
        })
        .chain(
            // A recorded gap the stream has not continued after (yet).
            recorded
                .iter()
                .filter(|g| runs.last().is_some_and(|r| r.until == g.after))
                .map(|g| Gap {
                    after: g.after,
                    until: g.oldest_available,
                    reason: Some(g.reason.clone()),
                }),
        )
        .collect()
}

/// The chain of every stream at the location, plus one per replica set that has base
/// backups but no stream.
pub async fn load(store: &Store) -> Result<Vec<StreamChain>> {
    let all_bases = bases(store).await?;
    let mut names: Vec<String> = store.list_children(layout::PITR_DIR).await?;
    for b in &all_bases {
        if !names.contains(&b.replica_set) {
            names.push(b.replica_set.clone());
        }
    }
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let s = store.child(&layout::stream_dir(&name));
        let info = match s.head(layout::STREAM_INFO).await? {
            Some(_) => Some(
                serde_json::from_slice::<StreamInfo>(&s.get(layout::STREAM_INFO).await?)
                    .with_context(|| {
                        format!(
                            "{}/{} is not valid",
                            layout::stream_dir(&name),
                            layout::STREAM_INFO
                        )
                    })?,
            ),
            None => None,
        };
        let slices = slices(&s).await?;
        let recorded = gap_records(&s).await?;
        let runs = runs(&slices);
        let bases: Vec<Base> = all_bases
            .iter()
            .filter(|b| b.replica_set == name && joins(b, info.as_ref()))
            .cloned()
            .collect();
        out.push(StreamChain {
            windows: windows(&bases, &runs),
            gaps: gaps(&runs, &recorded),
            stream: name,
            info,
            runs,
            bases,
            slices,
        });
    }
    Ok(out)
}

/// A base joins a stream's chain when its oplog holds at least what the stream selects:
/// otherwise replaying its oplog could miss writes the slices assume were applied.
fn joins(b: &Base, info: Option<&StreamInfo>) -> bool {
    let Some(info) = info else { return true };
    match (&b.oplog_databases, info.selection.scope()) {
        (None, _) => true,
        (Some(_), crate::mongo::oplog::OplogScope::AllUserDatabases) => false,
        (Some(have), crate::mongo::oplog::OplogScope::Databases(want)) => {
            want.iter().all(|d| have.contains(d))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(t: u32) -> OplogTs {
        OplogTs { t, i: 1 }
    }

    fn slice(after: u32, until: u32) -> SliceManifest {
        SliceManifest {
            format: crate::pitr::slice::FORMAT.into(),
            format_version: 1,
            stream: "rs0".into(),
            after: ts(after),
            until: ts(until),
            first: None,
            last: None,
            count: 1,
            raw_bytes: 0,
            compression: crate::codec::Compression::Gzip,
            object: crate::dump::manifest::ObjectEntry {
                key: String::new(),
                stored_bytes: 0,
                sha256: String::new(),
            },
            written_at: chrono::Utc::now(),
        }
    }

    fn base(id: &str, end: u32) -> Base {
        let m: Manifest = serde_json::from_value(serde_json::json!({
            "format": "mongoshift-backup", "format_version": 1, "tool_version": "0", "backup_id": id,
            "started_at": "2026-11-29T00:00:00Z", "finished_at": "2026-11-29T00:00:00Z",
            "source": {"hosts": "h", "server_version": "6.0.5", "topology": "replica_set"},
            "compression": "gzip", "compression_level": 6, "checksum_algorithm": "sha256",
            "namespaces": [], "totals": {"namespaces": 0, "documents": 0, "raw_bytes": 0, "stored_bytes": 0}
        }))
        .unwrap();
        Base {
            id: id.into(),
            replica_set: "rs0".into(),
            start: ts(end - 1),
            end: ts(end),
            oplog_databases: None,
            manifest: m,
        }
    }

    #[test]
    fn runs_windows_and_gaps() {
        let s = vec![slice(10, 20), slice(20, 30), slice(40, 50), slice(50, 60)];
        let r = runs(&s);
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].after, r[0].until, r[1].after, r[1].until),
            (ts(10), ts(30), ts(40), ts(60))
        );
        let w = windows(
            &[base("a", 15), base("b", 25), base("c", 45), base("d", 70)],
            &r,
        );
        assert_eq!(w.len(), 3);
        assert_eq!(
            (w[0].from, w[0].to, w[0].bases.clone()),
            (ts(15), ts(30), vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!((w[1].from, w[1].to), (ts(45), ts(60)));
        assert_eq!((w[2].from, w[2].to), (ts(70), ts(70)));
        let g = gaps(&r, &[]);
        assert_eq!((g[0].after, g[0].until), (ts(30), ts(40)));
    }
}
