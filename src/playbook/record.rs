//! Run records: `.mongoshift/runs/NAME-RUNID.json`, one per run of a playbook, rewritten
//! atomically after every step so that a run killed at any moment can be resumed from
//! its last completed step with every earlier step's results. URIs are stored redacted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const DIR: &str = ".mongoshift/runs";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Succeeded,
    Failed,
    /// Stopped by Ctrl-C / SIGTERM, or found running with its process gone (kill -9).
    Interrupted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Running,
    Succeeded,
    Failed,
    /// Not run: a dry run of a step that would write, or an earlier step given by
    /// --from-step whose results were taken from an earlier run.
    Skipped,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    pub id: String,
    pub kind: String,
    pub state: StepState,
    /// The command line (mongoshift …, or the shell command), secrets masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The step's JSON result, what `${steps.ID.FIELD}` reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// Why it failed or was skipped, or how it was resumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How many times it was started (more than 1 after --resume).
    #[serde(default)]
    pub attempts: u32,
}

impl StepRecord {
    pub fn pending(id: &str, kind: &str) -> StepRecord {
        StepRecord {
            id: id.into(),
            kind: kind.into(),
            state: StepState::Pending,
            command: None,
            exit_code: None,
            output: None,
            started_at: None,
            finished_at: None,
            seconds: None,
            message: None,
            attempts: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub playbook: String,
    pub file: String,
    pub file_sha256: String,
    pub run_id: String,
    pub state: RunState,
    pub dry_run: bool,
    pub pid: u32,
    pub host: String,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// The vars the run used (after --var), URIs masked.
    pub vars: BTreeMap<String, String>,
    pub steps: Vec<StepRecord>,
    #[serde(default)]
    pub on_failure: Vec<StepRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
}

impl RunRecord {
    pub fn path(&self) -> PathBuf {
        Path::new(DIR).join(format!("{}-{}.json", self.playbook, self.run_id))
    }

    /// Write the record in place of the last one: temp file, fsync, rename; mode 600.
    pub fn save(&self) -> Result<()> {
        let path = self.path();
        std::fs::create_dir_all(DIR).with_context(|| format!("creating {DIR}"))?;
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("creating the run record {}", path.display()))?;
        }
        let text = serde_json::to_string_pretty(self)? + "\n";
        crate::cutover::sink::write_file(&path, text.as_bytes())
            .with_context(|| format!("writing the run record {}", path.display()))?;
        Ok(())
    }

    /// The state to show: a record still "running" whose process is gone was killed.
    pub fn effective_state(&self) -> RunState {
        if self.state == RunState::Running && !self.is_live() {
            RunState::Interrupted
        } else {
            self.state
        }
    }

    pub fn is_live(&self) -> bool {
        self.state == RunState::Running
            && self.host == crate::follow::record::hostname()
            && crate::follow::record::pid_alive(self.pid)
            && self.pid != std::process::id()
    }

    pub fn seconds(&self) -> f64 {
        let end = self.finished_at.unwrap_or_else(Utc::now);
        (end - self.started_at).num_milliseconds() as f64 / 1000.0
    }
}

/// A new run id: the UTC start time, sortable, plus a few digits against collisions.
pub fn new_run_id() -> String {
    let now = Utc::now();
    format!(
        "{}-{:04x}",
        now.format("%Y%m%dT%H%M%SZ"),
        (now.timestamp_subsec_nanos() ^ std::process::id()) & 0xffff
    )
}

/// Every readable run record, oldest first; those of one playbook when `name` is given.
/// Unreadable files are returned as errors naming them, so a listing can warn and go on.
pub fn list(name: Option<&str>) -> Result<Vec<Result<RunRecord>>> {
    let dir = Path::new(DIR);
    if !dir.exists() {
        return Ok(vec![]);
    }
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {DIR}"))? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let read = std::fs::read_to_string(&path)
            .map_err(anyhow::Error::from)
            .and_then(|t| serde_json::from_str::<RunRecord>(&t).map_err(anyhow::Error::from))
            .with_context(|| {
                format!(
                    "the run record {} is unreadable; move it away to ignore it",
                    path.display()
                )
            });
        match &read {
            Ok(r) if name.is_some_and(|n| n != r.playbook) => continue,
            Err(_)
                if name.is_some_and(|n| {
                    !path
                        .file_name()
                        .and_then(|f| f.to_str())
                        .is_some_and(|f| f.starts_with(&format!("{n}-")))
                }) =>
            {
                continue
            }
            _ => out.push(read),
        }
    }
    out.sort_by_key(|r| match r {
        Ok(r) => (r.started_at, r.run_id.clone()),
        Err(_) => (DateTime::<Utc>::MIN_UTC, String::new()),
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sort_by_time() {
        let a = new_run_id();
        assert_eq!(a.len(), "20261123T172501Z-0000".len(), "{a}");
        assert!(a.ends_with(|c: char| c.is_ascii_hexdigit()));
    }

    #[test]
    fn a_dead_running_record_is_interrupted() {
        let r = RunRecord {
            playbook: "p".into(),
            file: "p.yaml".into(),
            file_sha256: String::new(),
            run_id: new_run_id(),
            state: RunState::Running,
            dry_run: false,
            pid: u32::MAX - 1,
            host: crate::follow::record::hostname(),
            started_at: Utc::now(),
            finished_at: None,
            vars: BTreeMap::new(),
            steps: vec![StepRecord::pending("a", "status")],
            on_failure: vec![],
            exit_code: None,
            failed_step: None,
        };
        assert_eq!(r.effective_state(), RunState::Interrupted);
    }
}
