//! Running one step's process: our own binary for a command step (`--output json`, its
//! result read from stdout), `sh -c` for an `exec` step. Its stderr (messages, progress
//! bars) and stdin (its own confirmations) are the terminal's.
//!
//! The child dies with us: it gets SIGTERM if the playbook process is killed (even with
//! kill -9), so that a step never outlives the run record that says it is running — a
//! migrate stops at a checkpoint and `--resume` continues it. Ctrl-C reaches the child
//! through the terminal; a SIGTERM sent to us alone is passed on. Either way we wait for
//! the child to stop before saying so.

use std::process::Stdio;

use anyhow::{Context, Result};
use tokio::io::AsyncReadExt;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// Ctrl-C and SIGTERM, listened to for the whole run (so they do not kill us between
/// steps, before the record says where we stopped).
pub struct Signals {
    int: Signal,
    term: Signal,
}

impl Signals {
    pub fn listen() -> Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt()).context("listening for Ctrl-C")?,
            term: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
        })
    }

    /// The next signal's name.
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "Ctrl-C",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

pub struct Finished {
    /// None when the process was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    /// The signal that interrupted the step, if one did.
    pub interrupted: Option<&'static str>,
}

/// Run `program args…` with `env`, capturing stdout.
pub async fn run(
    program: &std::path::Path,
    args: &[String],
    env: &[(String, String)],
    signals: &mut Signals,
) -> Result<Finished> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // SAFETY: prctl is async-signal-safe and touches only the child's own state.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let mut out = child.stdout.take().context("the step's stdout")?;
    let reader = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf).await;
        buf
    });
    let mut interrupted = None;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.context("waiting for the step's process")?,
            sig = signals.next() => {
                interrupted = Some(sig);
                // A terminal's Ctrl-C already reached the child (same process group);
                // a SIGTERM may have been sent to us alone.
                if sig == "SIGTERM" {
                    if let Some(pid) = child.id() {
                        // SAFETY: plain kill(2) on our own child's pid.
                        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
                    }
                }
            }
        }
    };
    let stdout = String::from_utf8_lossy(&reader.await.unwrap_or_default()).into_owned();
    Ok(Finished {
        code: status.code(),
        stdout,
        interrupted,
    })
}
