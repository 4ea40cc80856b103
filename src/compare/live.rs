//! Verifying while a `migrate --follow` still runs into the target: a difference may be a
//! change the tail has not applied yet. So, a bounded number of times, wait until the tail
//! has passed the source's newest majority write, then look each listed difference (and
//! each differing count) up again; what agrees by then "disappeared", the rest is confirmed.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mongodb::Client;

use super::documents;
use super::verdict::NsVerdict;
use crate::follow::record::{self, Phase, Run};
use crate::mongo::namespaces::{self, Kind};
use crate::namespace::Namespace;

/// Differences kept per namespace for rechecking (beyond --max-report, which only limits
/// what is shown); more than this stay counted as they were found.
pub const RECHECKED: usize = 10_000;

/// How long one round waits for the tail to catch up.
const CATCH_UP: Duration = Duration::from_secs(60);

/// The live tail following into this target, if one is running.
pub async fn running_tail(dst: &Client) -> Result<Option<Run>> {
    Ok(record::all(dst)
        .await?
        .into_iter()
        .find(|r| r.phase == Phase::Following && record::alive(r)))
}

/// Wait until the tail's recorded position has reached what the source has written by now.
async fn caught_up(src: &Client, dst: &Client, run: &Run) -> Result<()> {
    let target = crate::mongo::oplog::majority_time(src)
        .await
        .context("the source")?;
    let rec = record::Record::new(dst, &run.run);
    let start = Instant::now();
    loop {
        let r = rec.get().await?.context("the tail's record disappeared")?;
        if r.position_secs > target.time || (r.position_secs == target.time && r.tail.caught_up) {
            return Ok(());
        }
        if r.phase != Phase::Following {
            anyhow::bail!(
                "the tail into the target stopped ({}) while verify waited for it",
                r.phase.as_str()
            );
        }
        if start.elapsed() > CATCH_UP {
            anyhow::bail!(
                "the tail did not catch up within {} s (lag {} ms); verify again once it has",
                CATCH_UP.as_secs(),
                r.tail.lag_ms
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Recheck the verdicts' differences up to `rounds` times while `run` follows.
pub async fn recheck(
    src: &Client,
    dst: &Client,
    run: &Run,
    verdicts: &mut [NsVerdict],
    rounds: usize,
) -> Result<()> {
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
            let listed = std::mem::take(&mut v.differences);
            let mut still = Vec::new();
            let mut gone = 0;
            for d in listed {
                match documents::recheck((src, &sd), (dst, &td), &d.key, 5).await? {
                    Some(now) => still.push(now),
                    None => gone += 1,
                }
            }
            v.differences = still;
            v.disappeared += gone;
            if let Some(n) = v.documents_differing.as_mut() {
                // Only listed documents can be rechecked; the others stay counted.
                *n = n.saturating_sub(gone);
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
