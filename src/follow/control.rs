//! Steering a tail through its run record, from any process: wait until it has applied
//! everything up to a cluster time (the cutover's drain), ask it to stop and wait until it
//! has, and give the target back the indexes relaxed while it followed. Used by
//! `migrate stop|finalize`, `switch` and `rollback`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mongodb::bson::{doc, Timestamp};
use mongodb::Client;

use super::event::token_time;
use super::record::{self, Phase, Record, Run};
use crate::load::relax;
use crate::load::state::{self, StateStore};

/// Wait until the tail's recorded position has reached `at` (every source write up to then
/// is applied), at most `timeout`; `then` is what the user does when it does not. Returns
/// the record as it was then.
pub async fn wait_until(rec: &Record, at: Timestamp, timeout: Duration, then: &str) -> Result<Run> {
    let start = Instant::now();
    loop {
        let r = rec
            .get()
            .await?
            .context("the tail's run record disappeared")?;
        if r.token
            .as_ref()
            .and_then(token_time)
            .is_some_and(|t| (t.time, t.increment) >= (at.time, at.increment))
        {
            return Ok(r);
        }
        if r.phase != Phase::Following || !record::alive(&r) {
            anyhow::bail!(
                "the tail from {} is not following ({}{}) — it cannot catch up; see `mongoshift migrate status`",
                r.from,
                r.phase.as_str(),
                r.last_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
            );
        }
        if start.elapsed() > timeout {
            anyhow::bail!(
                "the tail from {} did not reach the source's optime {}:{} within {} s (lag {} ms); {then}",
                r.from,
                at.time,
                at.increment,
                timeout.as_secs(),
                r.tail.lag_ms
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ask a following tail to stop, and wait until it has checkpointed and exited.
pub async fn stop(rec: &Record, wait: Duration) -> Result<Run> {
    rec.update(doc! { "stop_requested": true }).await?;
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = rec
            .get()
            .await?
            .context("the migration record disappeared")?;
        // Stopped means the process is gone too (when it runs here), not only that its
        // record says so: a controller may start the next step at once.
        let process_gone = match (r.pid, &r.host) {
            (Some(pid), Some(h)) if *h == record::hostname() => !record::pid_alive(pid),
            _ => true,
        };
        if (r.phase != Phase::Following || !record::alive(&r)) && process_gone {
            return Ok(r);
        }
        if started.elapsed() > wait {
            anyhow::bail!(
                "the tail from {} (pid {}) did not stop within {} s; see its log{}",
                r.from,
                r.pid.unwrap_or(0),
                wait.as_secs(),
                r.log
                    .as_deref()
                    .map(|l| format!(" {l}"))
                    .unwrap_or_default()
            );
        }
    }
}

/// Give the target back the TTL and unique indexes relaxed while `run` followed, and clear
/// its load state. Returns what was restored, described. Every index that can be restored
/// is; each that cannot stays recorded (so that finalize can run again once the cause is
/// fixed) and the error names them all.
pub async fn restore_relaxed(target: &Client, run: &Run) -> Result<Vec<String>> {
    let store = StateStore::new(target, state::MIGRATE, &run.run);
    let mut restored = Vec::new();
    let mut failed = Vec::new();
    for r in store.relaxed().await? {
        match relax::restore(target, &r).await {
            Ok(true) => {
                restored.push(r.describe());
                store
                    .forget_relaxed(&r.ns, Some(r.index.as_deref().unwrap_or("")))
                    .await?;
            }
            Ok(false) => {
                store
                    .forget_relaxed(&r.ns, Some(r.index.as_deref().unwrap_or("")))
                    .await?
            }
            Err(e) => failed.push(crate::mongo::errors::chain_text(&e)),
        }
    }
    if !failed.is_empty() {
        let done = if restored.is_empty() {
            String::new()
        } else {
            format!(" (restored: {})", restored.join("; "))
        };
        anyhow::bail!(
            "{} relaxed index(es) could not be restored{done}:\n  {}\nThe rest is restored; these stay recorded, \
             so `mongoshift migrate finalize` can run again once they are fixed",
            failed.len(),
            failed.join("\n  ")
        );
    }
    store.clear().await?;
    Ok(restored)
}
