//! `restore --to-time T`: which base backup and which slices reach T, and the one oplog
//! file the replay reads (the base's oplog, then the slices, each verified against its
//! sha256, entries copied as bytes, none twice, none past T).

use std::io::Write;

use anyhow::{Context, Result};
use mongodb::bson::Timestamp;
use serde::Serialize;

use crate::codec::{self, Compression};
use crate::dump::bson_stream;
use crate::dump::manifest::OplogTs;
use crate::exit::usage;
use crate::pitr::chain::{self, StreamChain, Window};
use crate::pitr::layout;
use crate::pitr::select::Selection;
use crate::pitr::slice::SliceManifest;
use crate::restore::stream;
use crate::storage::Store;

/// A point in time, inclusive: every entry at or before it is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PointInTime(pub OplogTs);

impl PointInTime {
    /// RFC 3339 (a whole second: every entry of that second is included) or `T:I` (an
    /// optime: that entry is the last applied).
    pub fn parse(s: &str) -> Result<PointInTime> {
        if let Some((t, i)) = s
            .split_once(':')
            .filter(|(t, _)| t.chars().all(|c| c.is_ascii_digit()))
        {
            if let (Ok(t), Ok(i)) = (t.parse::<u32>(), i.parse::<u32>()) {
                return Ok(PointInTime(OplogTs { t, i }));
            }
        }
        let d = chrono::DateTime::parse_from_rfc3339(s).map_err(|e| {
            usage(format!(
                "--to-time '{s}' is neither RFC 3339 (e.g. 2026-11-29T14:03:12Z) nor an optime SECONDS:ORDINAL \
                 (e.g. 1764424992:3): {e}"
            ))
        })?;
        if d.timestamp_subsec_nanos() != 0 {
            return Err(usage(format!(
                "--to-time '{s}' has a fraction of a second, but the oplog orders writes within a second by \
                 ordinal, not by time: give the whole second (every write of it is included) or the optime \
                 SECONDS:ORDINAL of the last write to keep (`restore --to-time ... --dry-run` shows optimes)"
            )));
        }
        let t = u32::try_from(d.timestamp())
            .map_err(|_| usage(format!("--to-time '{s}' is outside the oplog's time range")))?;
        Ok(PointInTime(OplogTs { t, i: u32::MAX }))
    }

    /// The replay's exclusive limit (as --oplog-limit).
    pub fn limit(self) -> Timestamp {
        let OplogTs { t, i } = self.0;
        if i == u32::MAX {
            Timestamp {
                time: t + 1,
                increment: 0,
            }
        } else {
            Timestamp {
                time: t,
                increment: i + 1,
            }
        }
    }

    pub fn show(self) -> String {
        show(self.0)
    }
}

pub fn show(t: OplogTs) -> String {
    if t.i == u32::MAX {
        return chrono::DateTime::from_timestamp(t.t as i64, 0)
            .map(|d| format!("{} (the whole second)", d.format("%Y-%m-%dT%H:%M:%SZ")))
            .unwrap_or_default();
    }
    crate::restore::oplog_replay::show_ts(t.into())
}

/// What a restore to T uses.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub stream: String,
    pub to_time: PointInTime,
    pub base: String,
    pub base_end: OplogTs,
    pub slices: Vec<String>,
    pub selection: Selection,
    #[serde(skip)]
    pub slice_manifests: Vec<SliceManifest>,
    #[serde(skip)]
    pub base_oplog: (String, Compression, String),
}

/// Pick the newest base whose window reaches T, and the slices from its end through T.
pub fn plan(chain: &StreamChain, t: PointInTime) -> Result<Plan> {
    let window = chain
        .windows
        .iter()
        .filter(|w| w.from <= t.0 && t.0 <= w.to)
        .max_by_key(|w| w.from);
    let Some(window) = window else {
        return Err(refusal(chain, t));
    };
    // The newest base of that window that is not after T.
    let base = chain
        .bases
        .iter()
        .filter(|b| window.bases.contains(&b.id) && b.end <= t.0)
        .max_by_key(|b| b.end)
        .context("a window without a base")?;
    let slices: Vec<SliceManifest> = chain
        .slices
        .iter()
        .filter(|s| s.until > base.end && s.after < t.0 && s.count > 0)
        .cloned()
        .collect();
    let op = base
        .manifest
        .oplog
        .as_ref()
        .context("a base without an oplog")?;
    Ok(Plan {
        stream: chain.stream.clone(),
        to_time: t,
        base: base.id.clone(),
        base_end: base.end,
        slices: slices.iter().map(|s| layout::slice_dir(s.after)).collect(),
        selection: chain
            .info
            .as_ref()
            .map(|i| i.selection.clone())
            .unwrap_or_default(),
        slice_manifests: slices,
        base_oplog: (
            op.object.key.clone(),
            base.manifest.compression,
            op.object.sha256.clone(),
        ),
    })
}

fn refusal(chain: &StreamChain, t: PointInTime) -> anyhow::Error {
    let before = chain
        .windows
        .iter()
        .filter(|w| w.to < t.0)
        .map(|w| w.to)
        .max();
    let after = chain
        .windows
        .iter()
        .filter(|w| w.from > t.0)
        .map(|w| w.from)
        .min();
    let gap = chain.gaps.iter().find(|g| g.after < t.0 && t.0 <= g.until);
    let mut msg = format!(
        "--to-time {}: no base backup with contiguous slices of stream '{}' reaches that time",
        t.show(),
        chain.stream
    );
    if let Some(g) = gap {
        msg.push_str(&format!(
            "; it lies in a gap of the archive ({} → {}{})",
            show(g.after),
            show(g.until),
            g.reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ));
    }
    let mut near = Vec::new();
    if let Some(b) = before {
        near.push(format!("{} (the latest before it)", show(b)));
    }
    if let Some(a) = after {
        near.push(format!("{} (the earliest after it)", show(a)));
    }
    if near.is_empty() {
        msg.push_str(". Nothing is restorable yet: take a base backup with `mongoshift backup --oplog` while `backup --continuous` runs");
    } else {
        msg.push_str(&format!(
            ". The nearest restorable times are {} (`mongoshift backups list` shows every window)",
            near.join(" and ")
        ));
    }
    usage(msg)
}

/// Pick the stream: the one named, or the only one with windows.
pub fn pick(chains: Vec<StreamChain>, name: Option<&str>, loc: &str) -> Result<StreamChain> {
    let names: Vec<String> = chains.iter().map(|c| c.stream.clone()).collect();
    match name {
        Some(n) => chains.into_iter().find(|c| c.stream == n).ok_or_else(|| {
            usage(format!(
                "--stream {n}: {loc} has no backups of replica set '{n}' (it has: {})",
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            ))
        }),
        None => {
            let mut with: Vec<StreamChain> = chains
                .into_iter()
                .filter(|c| !c.windows.is_empty())
                .collect();
            match with.len() {
                1 => Ok(with.remove(0)),
                0 => Err(usage(format!(
                    "{loc} has no restorable point in time: no complete `backup --oplog` of a replica set \
                     (`mongoshift backups list` shows what is there)"
                ))),
                _ => Err(usage(format!(
                    "{loc} holds backups of several replica sets ({}): say which with --stream NAME",
                    names.join(", ")
                ))),
            }
        }
    }
}

/// Load the chain of `store` and plan the restore to `t`.
pub async fn prepare(
    store: &Store,
    loc: &str,
    t: PointInTime,
    stream_name: Option<&str>,
) -> Result<Plan> {
    let chains = chain::load(store).await?;
    let chain = pick(chains, stream_name, loc)?;
    plan(&chain, t)
}

/// What the spool holds.
#[derive(Debug, Clone, Serialize)]
pub struct Spooled {
    pub entries: u64,
    pub duplicates_skipped: u64,
    pub last: Option<OplogTs>,
}

/// Write the base's oplog then the slices' entries, in order, none twice, none past T, into
/// a temporary file the replay reads (uncompressed).
pub async fn spool(store: &Store, plan: &Plan) -> Result<(std::fs::File, Spooled)> {
    let out =
        tempfile::tempfile().context("creating a temporary file for the point-in-time oplog")?;
    let mut parts = vec![(
        store.child(&plan.base),
        plan.base_oplog.0.clone(),
        plan.base_oplog.1,
        plan.base_oplog.2.clone(),
        format!("{}/{}", plan.base, plan.base_oplog.0),
    )];
    let stream = store.child(&layout::stream_dir(&plan.stream));
    for s in &plan.slice_manifests {
        parts.push((
            stream.clone(),
            s.object.key.clone(),
            s.compression,
            s.object.sha256.clone(),
            format!("{}/{}", layout::stream_dir(&plan.stream), s.object.key),
        ));
    }
    let limit = plan.to_time.limit();
    let mut state = Spooled {
        entries: 0,
        duplicates_skipped: 0,
        last: None,
    };
    let mut writer = std::io::BufWriter::new(out.try_clone()?);
    for (st, key, c, sha, what) in parts {
        let file = stream::spool_verified(&st, &key, Some(sha)).await?;
        let (w, s) = tokio::task::spawn_blocking(move || -> Result<_> {
            let mut w = writer;
            let mut s = state;
            let r = codec::decoder(c, std::io::BufReader::new(file))?;
            bson_stream::walk(r, &what, |d| {
                let ts: OplogTs = d
                    .get_timestamp("ts")
                    .with_context(|| format!("{what}: an entry without ts"))?
                    .into();
                let ts_b: Timestamp = ts.into();
                if ts_b >= limit {
                    return Ok(());
                }
                if s.last.is_some_and(|l| ts <= l) {
                    s.duplicates_skipped += 1;
                    return Ok(());
                }
                w.write_all(d.as_bytes())?;
                s.entries += 1;
                s.last = Some(ts);
                Ok(())
            })?;
            Ok((w, s))
        })
        .await??;
        writer = w;
        state = s;
    }
    writer.flush()?;
    drop(writer);
    let mut out = out;
    std::io::Seek::seek(&mut out, std::io::SeekFrom::Start(0))?;
    Ok((out, state))
}

/// For messages: a window as `from → to`.
pub fn show_window(w: &Window) -> String {
    format!("{} → {}", show(w.from), show(w.to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_in_time_parse_inclusively() {
        let p = PointInTime::parse("1764424992:3").unwrap();
        assert_eq!(
            p.limit(),
            Timestamp {
                time: 1764424992,
                increment: 4
            }
        );
        let s = PointInTime::parse("2026-11-29T14:03:12Z").unwrap();
        assert_eq!(s.0.i, u32::MAX);
        assert_eq!(s.limit().increment, 0);
        assert_eq!(s.limit().time, s.0.t + 1);
        assert!(PointInTime::parse("2026-11-29T14:03:12.5Z").is_err());
        assert!(PointInTime::parse("yesterday").is_err());
    }
}
