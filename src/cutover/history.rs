//! The record of every switch and rollback: `.mongoshift/history.jsonl` next to the first
//! sink, one JSON object a line, appended and fsynced. URIs are stored redacted (a config
//! target's name is kept as it is, so `rollback` can resolve it again); the files are
//! identified by their SHA-256 before and after, never by their content.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SinkEntry {
    pub path: String,
    pub key: String,
    pub format: String,
    pub sha256_before: String,
    pub sha256_after: String,
    pub write_mode: String,
    /// Whether the bytes before and after are kept in the snapshot folder beside the
    /// history (see `snapshot`); false in entries written before they were.
    #[serde(default)]
    pub snapshot: bool,
}

impl SinkEntry {
    /// What the history keeps of each written sink: where, which key, and the file's
    /// checksum before and after (never its content).
    pub fn of(edits: &[super::sink::Edit], modes: &[super::sink::WriteMode]) -> Vec<SinkEntry> {
        edits
            .iter()
            .zip(modes)
            .map(|(e, m)| SinkEntry {
                path: e.sink.path.display().to_string(),
                key: e.sink.key.clone(),
                format: format!("{:?}", e.sink.format),
                sha256_before: super::sink::sha256(e.before.as_bytes()),
                sha256_after: super::sink::sha256(e.after.as_bytes()),
                write_mode: format!("{m:?}"),
                snapshot: false,
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub step: String,
    pub ms: u64,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// "switch" or "rollback".
    pub action: String,
    pub time: String,
    /// Milliseconds since the epoch, and the cluster time on the new side when its
    /// connection string was written (rollback counts writes on it from there).
    pub time_ms: i64,
    #[serde(default)]
    pub switched_at: Option<(u32, u32)>,
    /// The sides as given: a config target name, or a URI with its password masked.
    pub from: String,
    pub to: String,
    pub dbs: Vec<String>,
    pub sinks: Vec<SinkEntry>,
    pub hooks: Vec<String>,
    pub steps: Vec<Step>,
    /// The run of the reverse sync (NEW → OLD) left following, if any.
    #[serde(default)]
    pub reverse_sync: Option<String>,
    /// Whether OLD was left blocked for user writes.
    #[serde(default)]
    pub old_frozen: bool,
    /// `--unfreeze-old`: OLD was unfrozen for a reverse sync that cannot write through the
    /// block, the risk of a straggling client diverging accepted.
    #[serde(default)]
    pub unfreeze_old: bool,
    /// Where the written connection string came from: `--app-uri`, `targets.NAME.app_uri`
    /// or `derived` (from the sink's value and NEW's URI).
    #[serde(default)]
    pub app_uri: Option<String>,
    /// `--allow-admin-uri`: the written URI's user holds cluster-wide or admin rights.
    #[serde(default)]
    pub allow_admin_uri: bool,
    pub ok: bool,
}

/// `.mongoshift/history.jsonl` in the folder of `first_sink`.
pub fn path_for(first_sink: &Path) -> PathBuf {
    let dir = match first_sink.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    dir.join(".mongoshift").join("history.jsonl")
}

pub fn append(path: &Path, e: &Entry) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("opening the history {}", path.display()))?;
    let line = crate::redact::scrub(&serde_json::to_string(e)?);
    writeln!(f, "{line}")
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing the history {}", path.display()))
}

/// Every entry, oldest first; a line that does not parse is an error naming it.
pub fn read(path: &Path) -> Result<Vec<Entry>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not a history entry", path.display(), i + 1))
        })
        .collect()
}

/// The switch a rollback undoes: the last entry, when it is a successful switch.
pub fn last_switch(entries: &[Entry]) -> Option<&Entry> {
    entries
        .iter()
        .rev()
        .find(|e| e.ok)
        .filter(|e| e.action == "switch")
}

/// The steps of a switch or rollback, each timed and shown as it ends.
pub struct Timeline {
    ui: crate::report::Ui,
    started: std::time::Instant,
    last: std::time::Instant,
    pub steps: Vec<Step>,
}

impl Timeline {
    pub fn new(ui: &crate::report::Ui) -> Self {
        let now = std::time::Instant::now();
        Timeline {
            ui: ui.clone(),
            started: now,
            last: now,
            steps: Vec::new(),
        }
    }

    /// Close the current step: record and show it.
    pub fn done(&mut self, step: &str, detail: impl Into<String>) {
        let ms = self.last.elapsed().as_millis() as u64;
        self.last = std::time::Instant::now();
        let detail = crate::redact::scrub(&detail.into());
        self.ui.info(format!(
            "✓ {step} ({ms} ms){}",
            if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            }
        ));
        self.steps.push(Step {
            step: step.to_string(),
            ms,
            detail,
        });
    }

    /// The tool's own time: everything except waiting for a tail to drain and for hooks.
    pub fn own_ms(&self) -> u64 {
        let waited: u64 = self
            .steps
            .iter()
            .filter(|s| s.step == "drain" || s.step == "hooks")
            .map(|s| s.ms)
            .sum();
        (self.started.elapsed().as_millis() as u64).saturating_sub(waited)
    }
}
