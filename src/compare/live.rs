//! Verifying while a `migrate --follow` still runs into the target: a difference may be a
//! change the tail has not applied yet. So, a bounded number of times, wait until the tail
//! has passed the source's newest majority write, then look each listed difference (and
//! each differing count) up again, against the tail's progress: the target's document is
//! compared with the source's version now and at the positions the tail has applied (the
//! run record's applied optime, read before and after the target, through a snapshot read
//! `atClusterTime`). A match with any of them: it "disappeared". No match, and the source's
//! version at the tail's position is its version now (nothing the tail has yet to apply):
//! confirmed. No match while the source changed it past the tail's position (a document
//! written many times a second): "still changing", neither confirmed nor cleared; it is
//! looked at again next round and, if still so after the last, reported apart.

use std::time::Duration;

use anyhow::{Context, Result};
use mongodb::Client;

use mongodb::bson::{doc, Bson, RawDocumentBuf, Timestamp};

use super::documents::Difference;
use super::verdict::NsVerdict;
use crate::follow::record::{self, Phase, Run};
use crate::mongo::namespaces::{self, Kind};
use crate::namespace::Namespace;

/// Differences kept per namespace for rechecking (beyond --max-report, which only limits
/// what is shown); more than this stay counted as they were found.
pub const RECHECKED: usize = 10_000;

/// How long one round waits for the tail to catch up.
const CATCH_UP: Duration = Duration::from_secs(60);

/// The live tail following from `source_uri` into this target, if one is running and
/// copies any of `dbs` (empty: any database). Another migration into the same target (from
/// another source, or of other databases) is not this verify's business: waiting for it
/// would tie the verdict to a run that can end at any moment.
pub async fn running_tail(dst: &Client, source_uri: &str, dbs: &[String]) -> Result<Option<Run>> {
    let from = crate::migration::identity(source_uri, &[], &[]);
    let same_source = |r: &Run| {
        r.run
            .strip_prefix(&from)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
    };
    let overlaps =
        |r: &Run| dbs.is_empty() || r.dbs.is_empty() || r.dbs.iter().any(|d| dbs.contains(d));
    Ok(record::all(dst)
        .await?
        .into_iter()
        .find(|r| r.phase == Phase::Following && record::alive(r) && same_source(r) && overlaps(r)))
}

/// Wait until the tail's recorded position has reached what the source has written by now,
/// compared as a whole optime: a "caught up" flag from a moment ago, or the same second,
/// could still be short of the newest writes.
async fn caught_up(src: &Client, dst: &Client, run: &Run) -> Result<()> {
    let target = crate::mongo::oplog::majority_time(src)
        .await
        .context("the source")?;
    let rec = record::Record::new(dst, &run.run);
    crate::follow::control::wait_until(
        &rec,
        target,
        CATCH_UP,
        "verify again once it has caught up",
    )
    .await?;
    Ok(())
}

/// The source position up to which the tail has applied every change (its record's token).
async fn applied(rec: &record::Record) -> Result<Option<Timestamp>> {
    Ok(rec
        .get()
        .await?
        .and_then(|r| r.token.as_ref().and_then(crate::follow::event::token_time)))
}

/// One document by `_id` (simple collation), as raw bytes; at `at` through a snapshot read.
async fn read(
    c: &Client,
    ns: &Namespace,
    id: &Bson,
    at: Option<Timestamp>,
    side: &str,
) -> Result<Option<RawDocumentBuf>> {
    use futures::TryStreamExt;
    let mut cmd = doc! {
        "find": &ns.coll, "filter": { "_id": id.clone() }, "limit": 1, "singleBatch": true,
        "collation": { "locale": "simple" },
    };
    if let Some(t) = at {
        cmd.insert(
            "readConcern",
            doc! { "level": "snapshot", "atClusterTime": t },
        );
    }
    let docs: Vec<RawDocumentBuf> = c
        .database(&ns.db)
        .run_cursor_command(cmd)
        .await
        .with_context(|| format!("re-reading a document of {ns} on the {side}"))?
        .with_type::<RawDocumentBuf>()
        .try_collect()
        .await
        .with_context(|| format!("re-reading a document of {ns} on the {side}"))?;
    Ok(docs.into_iter().next())
}

fn same(a: &Option<RawDocumentBuf>, b: &Option<RawDocumentBuf>) -> bool {
    a.as_ref().map(|d| d.as_bytes()) == b.as_ref().map(|d| d.as_bytes())
}

/// One listed difference looked at again against the tail's progress.
enum Now {
    Agree,
    Confirmed(Difference),
    Changing(Difference),
}

async fn recheck_one(
    (src, sd): (&Client, &Namespace),
    (dst, td): (&Client, &Namespace),
    rec: &record::Record,
    key: &Bson,
) -> Result<Now> {
    let before = applied(rec).await?;
    let t = read(dst, td, key, None, "target").await?;
    let now = read(src, sd, key, None, "source").await?;
    if same(&t, &now) {
        return Ok(Now::Agree);
    }
    let after = applied(rec).await?;
    // The source's versions at the positions the tail had applied around the target's read.
    let mut at_tail = Vec::new();
    for p in [before, after].into_iter().flatten() {
        if at_tail.iter().any(|(q, _)| *q == p) {
            continue;
        }
        // Too old for the source's snapshot history, or before the collection existed:
        // that version is unknown, not a difference.
        let Ok(v) = read(src, sd, key, Some(p), "source").await else {
            continue;
        };
        if same(&t, &v) {
            return Ok(Now::Agree);
        }
        at_tail.push((p, v));
    }
    let changed_since = at_tail.first().is_some_and(|(_, v)| !same(v, &now));
    let Some(d) = super::documents::between(now, t, (sd, td), 5)? else {
        return Ok(Now::Agree);
    };
    Ok(if changed_since {
        Now::Changing(d)
    } else {
        Now::Confirmed(d)
    })
}

/// Recheck the verdicts' differences up to `rounds` times while `run` follows.
pub async fn recheck(
    src: &Client,
    dst: &Client,
    run: &Run,
    verdicts: &mut [NsVerdict],
    rounds: usize,
) -> Result<()> {
    let rec = record::Record::new(dst, &run.run);
    for _ in 0..rounds {
        if verdicts.iter().all(|v| {
            v.identical || v.documents_differing.is_none() && v.source_count == v.target_count
        }) {
            break;
        }
        caught_up(src, dst, run).await?;
        for v in verdicts.iter_mut().filter(|v| !v.identical) {
            v.rechecked = true;
            let (Some(sns), Some(tns)) = (Namespace::parse(&v.source), Namespace::parse(&v.target))
            else {
                continue;
            };
            let kind = if v.kind == "timeseries" {
                Kind::Timeseries
            } else {
                Kind::Collection
            };
            let (sd, td) = (kind.data_ns(&sns), kind.data_ns(&tns));
            // Confirmed and still-changing ones alike are looked at again each round.
            let listed: Vec<Difference> = std::mem::take(&mut v.differences)
                .into_iter()
                .chain(std::mem::take(&mut v.changing))
                .collect();
            let mut confirmed = Vec::new();
            let mut changing = Vec::new();
            let mut gone = 0;
            let before = v.documents_differing.unwrap_or(0) + v.still_changing;
            for d in listed {
                match recheck_one((src, &sd), (dst, &td), &rec, &d.key).await? {
                    Now::Agree => gone += 1,
                    Now::Confirmed(d) => confirmed.push(d),
                    Now::Changing(d) => changing.push(d),
                }
            }
            v.differences = confirmed;
            v.still_changing = changing.len() as u64;
            v.changing = changing;
            v.disappeared += gone;
            if v.documents_differing.is_some() {
                // Only listed documents can be rechecked; the others stay counted.
                v.documents_differing =
                    Some(before.saturating_sub(gone).saturating_sub(v.still_changing));
            }
            if v.source_count.is_some() && v.source_count != v.target_count {
                let (a, b) = tokio::try_join!(
                    namespaces::exact_count(src, &sd, "source"),
                    namespaces::exact_count(dst, &td, "target")
                )?;
                v.source_count = Some(a);
                v.target_count = Some(b);
            }
            v.judge_live();
        }
    }
    Ok(())
}
