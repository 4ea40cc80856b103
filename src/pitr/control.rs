//! Controlling a running archiver from anywhere that can read the backups location:
//! `archiver.json` in the stream folder says which process archives (host, pid, log) and in
//! what state; `stop.json` asks it to close its current slice and stop. The location is the
//! one place every archiver host and every operator can reach (the archiver may run on
//! another machine than `backups continuous status`).

use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::storage::Store;

pub const RECORD: &str = "archiver.json";
pub const STOP: &str = "stop.json";

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
    Stopped,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchiverRecord {
    pub state: State,
    pub host: String,
    pub pid: u32,
    #[serde(default)]
    pub log: Option<String>,
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub error: Option<String>,
}

impl ArchiverRecord {
    pub fn running() -> ArchiverRecord {
        ArchiverRecord {
            state: State::Running,
            host: crate::follow::record::hostname(),
            pid: std::process::id(),
            log: crate::migration::detach::own_log(),
            started_at: Utc::now(),
            ended_at: None,
            error: None,
        }
    }

    /// Whether the recorded process still runs (known only on its own host).
    pub fn alive_here(&self) -> Option<bool> {
        (self.host == crate::follow::record::hostname())
            .then(|| crate::follow::record::pid_alive(self.pid))
    }
}

pub async fn read(stream: &Store) -> Result<Option<ArchiverRecord>> {
    if stream.head(RECORD).await?.is_none() {
        return Ok(None);
    }
    let r = serde_json::from_slice(&stream.get(RECORD).await?)
        .with_context(|| format!("{RECORD} is not an archiver record"))?;
    Ok(Some(r))
}

pub async fn write(stream: &Store, r: &ArchiverRecord) -> Result<()> {
    stream
        .put(RECORD, serde_json::to_vec_pretty(r)?)
        .await
        .with_context(|| format!("writing {RECORD}"))
}

/// Whether a stop was requested after `since` (the run's start: a request left over from
/// an earlier run does not stop this one, so nothing needs deleting).
pub async fn stop_requested(stream: &Store, since: DateTime<Utc>) -> Result<bool> {
    if stream.head(STOP).await?.is_none() {
        return Ok(false);
    }
    let v: serde_json::Value = serde_json::from_slice(&stream.get(STOP).await?)
        .with_context(|| format!("{STOP} is not a stop request"))?;
    let at = v["requested_at"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    Ok(at.is_some_and(|at| at > since))
}

/// Ask the archiver to stop, then wait until its record says it stopped (or failed).
pub async fn request_stop(stream: &Store, wait: Duration) -> Result<ArchiverRecord> {
    stream
        .put(
            STOP,
            serde_json::to_vec_pretty(&serde_json::json!({ "requested_at": Utc::now() }))?,
        )
        .await
        .with_context(|| format!("writing {STOP}"))?;
    // On its own host a signal is quicker than the next poll of stop.json.
    if let Some(r) = read(stream).await? {
        if r.state == State::Running && r.alive_here() == Some(true) {
            unsafe {
                libc::kill(r.pid as i32, libc::SIGTERM);
            }
        }
    }
    let started = std::time::Instant::now();
    loop {
        if let Some(r) = read(stream).await? {
            let gone = r.alive_here() != Some(true);
            if r.state != State::Running && gone {
                return Ok(r);
            }
        }
        if started.elapsed() > wait {
            anyhow::bail!(
                "the archiver did not stop within {} s (its record still says running); \
                 stop it with SIGTERM on its host, or see its log",
                wait.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
