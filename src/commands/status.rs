//! `mongoshift status`: the on-call health check.

use std::time::Duration;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use crate::cli::{parse_duration, Ctx, TargetArgs};
use crate::exit::check_failed;
use crate::mongo::health::{self, Health, Topology};
use crate::mongo::{self as mongo_engine};
use crate::redact;
use crate::report::table;

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Alert when any replica-set member lags the primary by more than this.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub max_lag: Duration,
    /// Alert when current connections exceed this.
    #[arg(long, value_name = "N", default_value_t = 150)]
    pub max_connections: i64,
    /// Alert when the ping round-trip exceeds this.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_duration)]
    pub max_ping: Duration,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    target: String,
    hosts: String,
    reachable: bool,
    #[serde(flatten)]
    health: Option<&'a Health>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    thresholds: Vec<Threshold>,
    ok: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Threshold {
    pub name: &'static str,
    pub limit: String,
    pub value: String,
    pub breached: bool,
    /// What exactly breached it (e.g. the member name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

pub async fn run(ctx: &Ctx, args: StatusArgs) -> Result<()> {
    let target = args.target.resolve(&ctx.config)?;
    let hosts = redact::hosts(&target.uri);
    // A machine reading --output json gets a document even when the check cannot run:
    // unreachable (`reachable: false`), or reachable but refused (e.g. a missing role).
    let failed = |reachable: bool, e: anyhow::Error| {
        if ctx.ui.json() {
            ctx.ui.result_json(&Report {
                target: target.label(),
                hosts: hosts.clone(),
                reachable,
                health: None,
                error: Some(redact::scrub(&crate::mongo::errors::chain_text(&e))),
                thresholds: vec![],
                ok: false,
            });
        }
        e
    };
    let client = mongo_engine::connect(&target, &args.target.connect_options())
        .await
        .map_err(|e| failed(false, e))?;
    let health = health::collect(&client)
        .await
        .map_err(|e| failed(true, e))?;
    let thresholds = evaluate(&health, &args);
    let breached: Vec<&Threshold> = thresholds.iter().filter(|t| t.breached).collect();
    let report = Report {
        target: target.label(),
        hosts,
        reachable: true,
        health: Some(&health),
        error: None,
        ok: breached.is_empty(),
        thresholds: thresholds.clone(),
    };
    if ctx.ui.json() {
        ctx.ui.result_json(&report);
    } else {
        ctx.ui.result(render(&report, &health));
    }
    if breached.is_empty() {
        Ok(())
    } else {
        let names: Vec<String> = breached
            .iter()
            .map(|t| {
                format!(
                    "{} ({} > {}{})",
                    t.name,
                    t.value,
                    t.limit,
                    t.detail
                        .as_ref()
                        .map(|d| format!(", {d}"))
                        .unwrap_or_default()
                )
            })
            .collect();
        Err(check_failed(format!(
            "threshold breached: {}",
            names.join("; ")
        )))
    }
}

/// Compare the health report with the alert thresholds.
pub fn evaluate(h: &Health, args: &StatusArgs) -> Vec<Threshold> {
    let mut out = Vec::new();
    let max_lag = args.max_lag.as_secs_f64();
    if let Topology::ReplicaSet { members, .. } = &h.topology {
        let worst = members
            .iter()
            .filter_map(|m| m.lag_secs.map(|l| (l, m)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let unknown = members
            .iter()
            .any(|m| m.lag_secs.is_none() && m.state != "ARBITER");
        let (value, breached, detail) = match worst {
            Some((lag, m)) => (
                format!("{lag}s"),
                lag > max_lag,
                (lag > max_lag).then(|| format!("member {}", m.name)),
            ),
            None => (
                "unknown".to_string(),
                unknown,
                Some("no primary".to_string()),
            ),
        };
        out.push(Threshold {
            name: "max-lag",
            limit: humantime::format_duration(args.max_lag).to_string(),
            value,
            breached,
            detail,
        });
    }
    if let Some(c) = &h.connections {
        out.push(Threshold {
            name: "max-connections",
            limit: args.max_connections.to_string(),
            value: c.current.to_string(),
            breached: c.current > args.max_connections,
            detail: None,
        });
    }
    let max_ping_ms = health::duration_ms(args.max_ping);
    out.push(Threshold {
        name: "max-ping",
        // As given (`1us`, `100ms`): rounding to whole milliseconds showed 1us as 0ms.
        limit: humantime::format_duration(args.max_ping).to_string(),
        value: format!("{}ms", h.ping_ms),
        breached: h.ping_ms > max_ping_ms,
        detail: None,
    });
    out
}

fn render(r: &Report, h: &Health) -> String {
    let mut s = String::new();
    let mut overview = table::kv();
    overview.add_row(vec!["target".to_string(), r.target.clone()]);
    overview.add_row(vec!["hosts".to_string(), r.hosts.clone()]);
    overview.add_row(vec!["reachable".to_string(), "yes".to_string()]);
    overview.add_row(vec!["ping".to_string(), format!("{} ms", h.ping_ms)]);
    overview.add_row(vec!["version".to_string(), h.version.clone()]);
    let topo = match &h.topology {
        Topology::Standalone => "standalone".to_string(),
        Topology::ReplicaSet { set_name, members } => {
            format!(
                "replica set '{set_name}' ({})",
                table::count(members.len() as u64, "member", "members")
            )
        }
        Topology::Sharded => "sharded cluster (mongos)".to_string(),
    };
    overview.add_row(vec!["topology".to_string(), topo]);
    if let Some(c) = &h.connections {
        overview.add_row(vec![
            "connections".to_string(),
            format!("{} current, {} available", c.current, c.available),
        ]);
    }
    if let Some(u) = h.uptime_secs {
        overview.add_row(vec!["uptime".to_string(), table::duration_secs(u as f64)]);
    }
    s.push_str(&overview.to_string());
    s.push('\n');

    if let Topology::ReplicaSet { members, .. } = &h.topology {
        let mut t = table::new(["member", "state", "health", "lag"]);
        for m in members {
            t.add_row(vec![
                format!("{}{}", m.name, if m.is_self { " (connected)" } else { "" }),
                m.state.clone(),
                if m.health { "ok" } else { "DOWN" }.to_string(),
                m.lag_secs
                    .map(|l| format!("{l}s"))
                    .unwrap_or_else(|| "-".to_string()),
            ]);
        }
        s.push_str(&t.to_string());
        s.push('\n');
    }

    let mut dbs = table::new(["database", "profiler", "slowms"]);
    for d in &h.databases {
        dbs.add_row(vec![
            d.name.clone(),
            match d.profile_level {
                Some(0) => "off (0)".to_string(),
                Some(1) => "slow ops (1)".to_string(),
                Some(2) => "all ops (2)".to_string(),
                Some(n) => n.to_string(),
                None => "unknown".to_string(),
            },
            d.slowms
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    s.push_str(&dbs.to_string());
    s.push('\n');

    let mut th = table::new(["threshold", "limit", "value", "result"]);
    for t in &r.thresholds {
        th.add_row(vec![
            t.name.to_string(),
            t.limit.clone(),
            t.value.clone(),
            if t.breached {
                format!(
                    "BREACHED{}",
                    t.detail
                        .as_ref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                )
            } else {
                "ok".to_string()
            },
        ]);
    }
    s.push_str(&th.to_string());
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mongo::health::{Connections, Member};

    fn args(max_conn: i64) -> StatusArgs {
        StatusArgs {
            target: TargetArgs {
                uri: None,
                target: None,
                timeout: Duration::from_secs(1),
            },
            max_lag: Duration::from_secs(10),
            max_connections: max_conn,
            max_ping: Duration::from_millis(100),
        }
    }

    fn health(lag: f64, conns: i64, ping: f64) -> Health {
        Health {
            version: "6.0.5".into(),
            ping_ms: ping,
            topology: Topology::ReplicaSet {
                set_name: "rs0".into(),
                members: vec![
                    Member {
                        name: "a".into(),
                        state: "PRIMARY".into(),
                        health: true,
                        lag_secs: Some(0.0),
                        is_self: true,
                    },
                    Member {
                        name: "b".into(),
                        state: "SECONDARY".into(),
                        health: true,
                        lag_secs: Some(lag),
                        is_self: false,
                    },
                ],
            },
            connections: Some(Connections {
                current: conns,
                available: 100,
            }),
            uptime_secs: Some(5),
            databases: vec![],
        }
    }

    #[test]
    fn thresholds_pass_and_breach() {
        let ok = evaluate(&health(1.0, 5, 0.5), &args(150));
        assert!(ok.iter().all(|t| !t.breached));
        let bad = evaluate(&health(12.0, 200, 150.0), &args(150));
        let names: Vec<_> = bad.iter().filter(|t| t.breached).map(|t| t.name).collect();
        assert_eq!(names, vec!["max-lag", "max-connections", "max-ping"]);
        assert_eq!(bad[0].detail.as_deref(), Some("member b"));
    }
}
