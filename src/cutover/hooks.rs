//! `--exec` hooks: the application side of a cutover (`docker compose up -d api`,
//! `kubectl rollout restart deploy/api`), run with `sh -c` after the files are written.
//! A failing hook is reported with its exit code and the end of its output.

use std::time::Instant;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub command: String,
    pub exit_code: Option<i32>,
    pub ok: bool,
    pub ms: u64,
    /// The last lines of its output (stdout and stderr), secrets scrubbed.
    pub output_tail: String,
}

/// Run each command in order; stop at the first failure (later hooks usually depend on it).
pub fn run_all(commands: &[String]) -> Vec<Outcome> {
    let mut out = Vec::new();
    for c in commands {
        let o = run(c);
        let ok = o.ok;
        out.push(o);
        if !ok {
            break;
        }
    }
    out
}

fn run(command: &str) -> Outcome {
    let t = Instant::now();
    let r = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .output();
    let ms = t.elapsed().as_millis() as u64;
    match r {
        Ok(o) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            let lines: Vec<&str> = text.lines().collect();
            Outcome {
                command: command.to_string(),
                exit_code: o.status.code(),
                ok: o.status.success(),
                ms,
                output_tail: crate::redact::scrub(
                    &lines[lines.len().saturating_sub(10)..].join("\n"),
                ),
            }
        }
        Err(e) => Outcome {
            command: command.to_string(),
            exit_code: None,
            ok: false,
            ms,
            output_tail: format!("could not start sh: {e}"),
        },
    }
}
