//! `--follow --detach`: after the copy, the tail goes on in a background process so that
//! scripts, playbooks and `switch` can continue. The binary re-executes itself with the
//! same arguments plus `--resume --yes` (the copy is recorded as finished, so the child
//! goes straight to the tail). The arguments travel in the environment, not on the command
//! line, so a URI's password does not show in `ps`; the child's output goes to a log file
//! (mode 600) whose path, with the pid, is in the run record.

use std::io::{BufRead, Seek};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::CopyArgs;
use crate::cli::Ctx;
use crate::follow::record::{Phase, Record};

/// The child's arguments (JSON array) and log path.
pub const ARGS_VAR: &str = "MONGOSHIFT_DETACHED_ARGS";
const LOG_VAR: &str = "MONGOSHIFT_DETACHED_LOG";
/// How long the child may take to connect and start following.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The log this process writes to, when it is a detached tail.
pub fn own_log() -> Option<String> {
    std::env::var(LOG_VAR).ok()
}

/// The arguments of a detached child, when this process is one.
pub fn child_args() -> Option<Vec<String>> {
    let raw = std::env::var(ARGS_VAR).ok()?;
    serde_json::from_str(&raw).ok()
}

/// Our own arguments for the child: without --detach and --log, with --resume and --yes.
fn args_for_child() -> Vec<String> {
    let mut out = Vec::new();
    let mut skip_value = false;
    for a in std::env::args() {
        if skip_value {
            skip_value = false;
            continue;
        }
        match a.as_str() {
            "--detach" | "--resume" | "--yes" => {}
            "--log" => skip_value = true,
            _ if a.starts_with("--log=") => {}
            _ => out.push(a),
        }
    }
    out.push("--resume".into());
    out.push("--yes".into());
    out
}

pub fn default_log() -> PathBuf {
    let stamp = chrono_like_stamp();
    PathBuf::from(".mongoshift/logs").join(format!("migrate-{stamp}.log"))
}

fn chrono_like_stamp() -> String {
    let now = mongodb::bson::DateTime::now();
    now.try_to_rfc3339_string()
        .unwrap_or_default()
        .replace([':', '-'], "")
        .replace('T', "-")
        .split('.')
        .next()
        .unwrap_or("now")
        .to_string()
}

pub async fn spawn(ctx: &Ctx, args: &CopyArgs, record: &Record) -> Result<()> {
    let log = args.log.clone().unwrap_or_else(default_log);
    let (pid, log_abs) = start(args_for_child(), &log, record).await?;
    if ctx.ui.json() {
        ctx.ui.result_json(&serde_json::json!({
            "ok": true, "detached": true, "pid": pid, "log": log_abs.display().to_string(),
        }));
    } else {
        ctx.ui.result(format!(
            "following in the background: pid {pid}, log {}.\n\
             `mongoshift migrate status --to {to}` shows its lag; `mongoshift migrate stop --to {to}` stops it.",
            log_abs.display(),
            to = args.sides.to_display()
        ));
    }
    Ok(())
}

/// Start a background tail running `child_args` (argv, program first) with its output in
/// `log`, and wait until it records itself as following in `record`. Returns its pid and
/// the log's absolute path.
pub async fn start(
    child_args: Vec<String>,
    log: &std::path::Path,
    record: &Record,
) -> Result<(u32, PathBuf)> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::process::CommandExt;

    if let Some(dir) = log.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the log folder {}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)
        .with_context(|| format!("opening the tail's log {}", log.display()))?;
    let log_abs = std::fs::canonicalize(log).unwrap_or(log.to_path_buf());
    let exe = std::env::current_exe().context("finding our own executable to run the tail")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["migrate", "(detached tail)"])
        .env(ARGS_VAR, serde_json::to_string(&child_args)?)
        .env(LOG_VAR, log_abs.display().to_string())
        .stdin(std::process::Stdio::null())
        .stdout(file.try_clone().context("sharing the log file")?)
        .stderr(file)
        // Its own process group: a Ctrl-C in this terminal does not reach it.
        .process_group(0);
    let mut child = cmd.spawn().context("starting the background tail")?;
    let pid = child.id();
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Some(status) = child.try_wait().context("watching the background tail")? {
            anyhow::bail!(
                "the background tail exited at once ({status}); its log {} ends with:\n{}",
                log_abs.display(),
                tail_of(&log_abs, 15)
            );
        }
        let run = record.get().await?;
        if run.is_some_and(|r| r.pid == Some(pid) && r.phase == Phase::Following) {
            break;
        }
        if started.elapsed() > START_TIMEOUT {
            anyhow::bail!(
                "the background tail (pid {pid}) has not started following within {} s; see its log {}",
                START_TIMEOUT.as_secs(),
                log_abs.display()
            );
        }
    }
    Ok((pid, log_abs))
}

/// The last `n` lines of a log, to explain a child that died.
fn tail_of(path: &std::path::Path, n: usize) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(std::io::SeekFrom::Start(len.saturating_sub(16 * 1024)));
    let lines: Vec<String> = std::io::BufReader::new(f)
        .lines()
        .map_while(|l| l.ok())
        .collect();
    crate::redact::scrub(&lines[lines.len().saturating_sub(n)..].join("\n"))
}
