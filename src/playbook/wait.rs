//! The `wait` step: a pause (`wait: 30s`) or a condition polled until it holds
//! (`wait: { lag_below: 1s, to: atlas, timeout: 10m }`: a migration tail into `to` has
//! finished its copy and lags the source by less than `lag_below`).

use std::time::Duration;

use super::interpolate::{self, Scope};
use super::model::{Playbook, Step};
use crate::cli::parse_duration;
use crate::yaml_tree::Value;

#[derive(Debug, Clone)]
pub enum Wait {
    For(Duration),
    Lag {
        below: Duration,
        /// `migrate status` options naming the tail (to, from, db, ns_to).
        status_argv: Vec<String>,
        timeout: Duration,
    },
}

impl Wait {
    pub fn parse(pb: &Playbook, s: &Step, scope: &Scope) -> Result<Wait, String> {
        let here = |n: &crate::yaml_tree::Node, msg: String| {
            format!("{}:{}:{}: {msg}", pb.file, n.line, n.col)
        };
        let text = |n: &crate::yaml_tree::Node| -> Result<String, String> {
            interpolate::expand(n.as_str().unwrap_or_default(), scope, false)
                .map(|e| e.text)
                .map_err(|e| here(n, e))
        };
        let dur = |n: &crate::yaml_tree::Node| -> Result<Duration, String> {
            parse_duration(&text(n)?).map_err(|e| here(n, e))
        };
        match &s.body.value {
            Value::Scalar(..) => Ok(Wait::For(dur(&s.body)?)),
            Value::Map(entries) => {
                let (mut below, mut timeout) = (None, Duration::from_secs(600));
                let mut status_argv = vec!["migrate".to_string(), "status".to_string()];
                for (k, v) in entries {
                    match k.as_str().unwrap_or_default() {
                        "lag_below" => below = Some(dur(v)?),
                        "timeout" => timeout = dur(v)?,
                        key @ ("to" | "from" | "ns_to") => {
                            status_argv.push(format!("--{}={}", key.replace('_', "-"), text(v)?))
                        }
                        "db" => match &v.value {
                            Value::Seq(items) => {
                                for i in items {
                                    status_argv.push(format!("--db={}", text(i)?));
                                }
                            }
                            _ => status_argv.push(format!("--db={}", text(v)?)),
                        },
                        other => {
                            return Err(here(
                                k,
                                format!("`wait` has no option `{other}`; it takes lag_below, to, from, db, ns_to, timeout (or just a duration: `wait: 30s`)"),
                            ))
                        }
                    }
                }
                let below = below.ok_or_else(|| {
                    here(
                        &s.body,
                        "`wait:` with options needs lag_below (e.g. { lag_below: 1s, to: atlas })"
                            .into(),
                    )
                })?;
                if !status_argv.iter().any(|a| a.starts_with("--to=")) {
                    return Err(here(
                        &s.body,
                        "`wait: { lag_below }` needs `to:` (the target the migration copies into)"
                            .into(),
                    ));
                }
                Ok(Wait::Lag {
                    below,
                    status_argv,
                    timeout,
                })
            }
            _ => Err(here(
                &s.body,
                "`wait:` takes a duration (30s) or { lag_below: 1s, to: TARGET }".into(),
            )),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Wait::For(d) => format!("wait {}", humantime::format_duration(*d)),
            Wait::Lag {
                below,
                status_argv,
                timeout,
            } => format!(
                "wait until the tail ({}) lags less than {} (at most {})",
                status_argv[2..].join(" "),
                humantime::format_duration(*below),
                humantime::format_duration(*timeout)
            ),
        }
    }
}

/// Whether `migrate status --output json` shows one live tail that copied everything and
/// lags less than `below` (or is idle, having applied everything); the lag it shows.
pub fn lag_ok(status: &serde_json::Value, below: Duration) -> (bool, Option<f64>) {
    let runs = status["runs"].as_array().cloned().unwrap_or_default();
    let live: Vec<&serde_json::Value> = runs
        .iter()
        .filter(|r| r["alive"] == true && r["follow"] == true && r["copied"] == true)
        .collect();
    match live.as_slice() {
        [r] => {
            // Under steady writes a tail is never idle ("caught up"); its lag is what counts.
            let lag = if r["tail"]["caught_up"] == true {
                0.0
            } else {
                r["tail"]["lag_ms"].as_f64().unwrap_or(f64::MAX) / 1000.0
            };
            (lag < below.as_secs_f64(), Some(lag))
        }
        _ => (false, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lag_needs_one_live_tail_close_behind() {
        let run = |alive, lag, caught| json!({"runs": [{"alive": alive, "follow": true, "copied": true, "tail": {"lag_ms": lag, "caught_up": caught}}]});
        let d = Duration::from_secs(1);
        // Idle: it applied everything there was.
        assert_eq!(lag_ok(&run(true, 200, true), d), (true, Some(0.0)));
        assert!(!lag_ok(&run(true, 2000, false), d).0);
        assert!(!lag_ok(&run(false, 0, true), d).0);
        // Busy (never idle under steady writes) but close behind: good enough.
        assert_eq!(lag_ok(&run(true, 300, false), d), (true, Some(0.3)));
        assert!(!lag_ok(&json!({"runs": []}), d).0);
    }
}
