//! Server health as `status` reports it: version, topology, members and lag,
//! connections, uptime, profiler settings.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mongodb::bson::{doc, Bson, Document};
use mongodb::Client;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Health {
    pub version: String,
    /// Median of a few pings, in milliseconds.
    pub ping_ms: f64,
    pub topology: Topology,
    pub connections: Option<Connections>,
    pub uptime_secs: Option<u64>,
    pub databases: Vec<DbProfile>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Topology {
    Standalone,
    ReplicaSet {
        set_name: String,
        members: Vec<Member>,
    },
    Sharded,
}

#[derive(Debug, Serialize)]
pub struct Member {
    pub name: String,
    pub state: String,
    pub health: bool,
    /// Seconds behind the primary's last applied op; None when there is no primary
    /// or the member reports no optime (arbiters, members down).
    pub lag_secs: Option<f64>,
    #[serde(rename = "self")]
    pub is_self: bool,
}

#[derive(Debug, Serialize)]
pub struct Connections {
    pub current: i64,
    pub available: i64,
}

#[derive(Debug, Serialize)]
pub struct DbProfile {
    pub name: String,
    /// 0 off, 1 slow operations, 2 all; None when the server would not say.
    pub profile_level: Option<i32>,
    pub slowms: Option<i64>,
}

pub async fn collect(client: &Client) -> Result<Health> {
    let admin = client.database("admin");
    let ping_ms = ping_median(client, 3).await?;
    let build = admin
        .run_command(doc! { "buildInfo": 1 })
        .await
        .context("running buildInfo")?;
    let version = build.get_str("version").unwrap_or("unknown").to_string();
    let topology = match super::Hello::ask(client).await?.kind() {
        super::hello::Kind::Mongos => Topology::Sharded,
        super::hello::Kind::ReplicaSet(set_name) => {
            let status = admin
                .run_command(doc! { "replSetGetStatus": 1 })
                .await
                .context("running replSetGetStatus")?;
            Topology::ReplicaSet {
                set_name,
                members: members_from_status(&status),
            }
        }
        super::hello::Kind::Standalone => Topology::Standalone,
    };
    // serverStatus needs the clusterMonitor role; without it we still report the rest.
    let (connections, uptime_secs) = match admin.run_command(doc! { "serverStatus": 1 }).await {
        Ok(ss) => (
            ss.get_document("connections").ok().map(|c| Connections {
                current: number(c.get("current")).unwrap_or(0.0) as i64,
                available: number(c.get("available")).unwrap_or(0.0) as i64,
            }),
            number(ss.get("uptime")).map(|u| u as u64),
        ),
        Err(_) => (None, None),
    };
    let databases = profiles(client).await?;
    Ok(Health {
        version,
        ping_ms,
        topology,
        connections,
        uptime_secs,
        databases,
    })
}

async fn ping_median(client: &Client, n: usize) -> Result<f64> {
    let admin = client.database("admin");
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        admin
            .run_command(doc! { "ping": 1 })
            .await
            .context("running ping")?;
        samples.push(t.elapsed());
    }
    samples.sort();
    Ok(duration_ms(samples[n / 2]))
}

pub fn duration_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

async fn profiles(client: &Client) -> Result<Vec<DbProfile>> {
    let names = client
        .list_database_names()
        .await
        .context("listing databases")?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        // `profile: -1` reads the settings without changing them; mongos and
        // restricted users may refuse, which is reported as unknown.
        let (level, slowms) = match client
            .database(&name)
            .run_command(doc! { "profile": -1 })
            .await
        {
            Ok(r) => (
                number(r.get("was")).map(|v| v as i32),
                number(r.get("slowms")).map(|v| v as i64),
            ),
            Err(_) => (None, None),
        };
        out.push(DbProfile {
            name,
            profile_level: level,
            slowms,
        });
    }
    Ok(out)
}

/// Members with lag computed against the primary's optime (replSetGetStatus fields).
pub fn members_from_status(status: &Document) -> Vec<Member> {
    let raw: Vec<&Document> = status
        .get_array("members")
        .map(|a| a.iter().filter_map(Bson::as_document).collect())
        .unwrap_or_default();
    let optime = |m: &Document| {
        m.get_datetime("optimeDate")
            .ok()
            .map(|d| d.timestamp_millis())
    };
    let primary_optime = raw
        .iter()
        .find(|m| m.get_str("stateStr").ok() == Some("PRIMARY"))
        .and_then(|m| optime(m));
    raw.iter()
        .map(|m| Member {
            name: m.get_str("name").unwrap_or("?").to_string(),
            state: m.get_str("stateStr").unwrap_or("UNKNOWN").to_string(),
            health: number(m.get("health")).unwrap_or(0.0) >= 1.0,
            lag_secs: match (primary_optime, optime(m)) {
                (Some(p), Some(o)) if m.get_str("stateStr").ok() != Some("ARBITER") => {
                    Some(((p - o).max(0)) as f64 / 1000.0)
                }
                _ => None,
            },
            is_self: m.get_bool("self").unwrap_or(false),
        })
        .collect()
}

/// Server numbers arrive as int32, int64 or double depending on version and field.
pub fn number(v: Option<&Bson>) -> Option<f64> {
    match v? {
        Bson::Int32(i) => Some(*i as f64),
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(d) => Some(*d),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::DateTime;

    #[test]
    fn lag_is_relative_to_primary() {
        let status = doc! { "members": [
            { "name": "a:1", "stateStr": "PRIMARY", "health": 1.0, "optimeDate": DateTime::from_millis(10_000), "self": true },
            { "name": "b:1", "stateStr": "SECONDARY", "health": 1.0, "optimeDate": DateTime::from_millis(7_500) },
            { "name": "c:1", "stateStr": "(not reachable/healthy)", "health": 0.0 },
        ]};
        let m = members_from_status(&status);
        assert_eq!(m[0].lag_secs, Some(0.0));
        assert_eq!(m[1].lag_secs, Some(2.5));
        assert_eq!(m[2].lag_secs, None);
        assert!(!m[2].health);
        assert!(m[0].is_self);
    }
}
