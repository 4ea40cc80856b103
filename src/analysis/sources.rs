//! Where recorded operations come from: the profiler of each database (`system.profile`)
//! and mongod's JSON log files (logv2, plain or `.gz`). Log lines that are not slow-query
//! entries are skipped; lines that are not valid JSON (truncated, garbage) are counted and
//! reported, never fatal.

use std::io::BufRead;
use std::path::Path;

use anyhow::{Context, Result};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::Client;
use serde::Serialize;

use super::op::{self, Op};

/// What a log file held.
#[derive(Debug, Default, Clone, Serialize)]
pub struct LogStats {
    pub file: String,
    pub lines: u64,
    pub slow_queries: u64,
    /// Slow-query entries that are not application queries (our own, system namespaces).
    pub not_queries: u64,
    /// Lines of other kinds (connections, storage, …).
    pub skipped: u64,
    /// Lines that are not valid JSON or lack the expected fields.
    pub malformed: u64,
}

/// The slow-query id of mongod's structured log ("Slow query").
const SLOW_QUERY: i64 = 51803;

/// Read one log file (plain or gzip) into operations.
pub fn log_file(path: &Path, since: Option<DateTime>) -> Result<(Vec<Op>, LogStats)> {
    let f =
        std::fs::File::open(path).with_context(|| format!("opening the log {}", path.display()))?;
    let reader: Box<dyn BufRead> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(std::io::BufReader::new(flate2::read::MultiGzDecoder::new(
            f,
        )))
    } else {
        Box::new(std::io::BufReader::new(f))
    };
    let mut stats = LogStats {
        file: path.display().to_string(),
        ..Default::default()
    };
    let mut ops = Vec::new();
    for line in reader.split(b'\n') {
        let line = match line {
            Ok(l) => l,
            // A truncated gzip member ends the file; what was read counts.
            Err(_) => {
                stats.malformed += 1;
                break;
            }
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        stats.lines += 1;
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line) else {
            stats.malformed += 1;
            continue;
        };
        if v.get("id").and_then(|i| i.as_i64()) != Some(SLOW_QUERY) {
            stats.skipped += 1;
            continue;
        }
        let Some(attr) = v.get("attr").cloned() else {
            stats.malformed += 1;
            continue;
        };
        if let (Some(since), Some(t)) = (since, v.pointer("/t/$date").and_then(|t| t.as_str())) {
            if DateTime::parse_rfc3339_str(t).is_ok_and(|t| t < since) {
                stats.skipped += 1;
                continue;
            }
        }
        let Bson::Document(attr) = lenient_bson(attr) else {
            stats.malformed += 1;
            continue;
        };
        stats.slow_queries += 1;
        match op::parse(&attr, "durationMillis") {
            Some(o) => ops.push(o),
            None => stats.not_queries += 1,
        }
    }
    Ok((ops, stats))
}

/// Extended JSON wrappers (`{"$oid": …}`, `{"$date": …}`…) a log writes for typed values.
const WRAPPERS: &[&str] = &[
    "$oid",
    "$date",
    "$numberLong",
    "$numberInt",
    "$numberDouble",
    "$numberDecimal",
    "$binary",
    "$timestamp",
    "$regularExpression",
    "$minKey",
    "$maxKey",
    "$undefined",
    "$symbol",
    "$code",
    "$uuid",
];

/// A log's JSON as BSON. Unlike a strict Extended JSON reader, a query operator that looks
/// like legacy Extended JSON (`{"$regex": "^a"}` without `$options`) stays an operator.
fn lenient_bson(v: serde_json::Value) -> Bson {
    match v {
        serde_json::Value::Object(m) => {
            if m.len() <= 2
                && m.keys()
                    .next()
                    .is_some_and(|k| WRAPPERS.contains(&k.as_str()))
            {
                if let Ok(b) = Bson::try_from(serde_json::Value::Object(m.clone())) {
                    return b;
                }
            }
            Bson::Document(m.into_iter().map(|(k, v)| (k, lenient_bson(v))).collect())
        }
        serde_json::Value::Array(a) => Bson::Array(a.into_iter().map(lenient_bson).collect()),
        other => Bson::try_from(other).unwrap_or(Bson::Null),
    }
}

/// The profiler's entries of database `db` (since `since`, if given).
pub async fn profiler(client: &Client, db: &str, since: Option<DateTime>) -> Result<Vec<Op>> {
    let filter = match since {
        Some(t) => doc! { "ts": { "$gte": t } },
        None => doc! {},
    };
    let entries: Vec<Document> = client
        .database(db)
        .collection::<Document>("system.profile")
        .find(filter)
        .await
        .with_context(|| format!("reading {db}.system.profile"))?
        .try_collect()
        .await
        .with_context(|| format!("reading {db}.system.profile"))?;
    Ok(entries
        .iter()
        .filter_map(|e| op::parse(e, "millis"))
        .collect())
}

/// Set the profiler of `db`: level 1 with `slowms` (and a sample rate), or off (level 0).
/// Returns the level, slowms and sample rate now in effect.
pub async fn set_profiler(
    client: &Client,
    db: &str,
    level: Option<(i32, i64, f64)>,
) -> Result<(i32, i64, f64)> {
    let cmd = match level {
        Some((l, ms, rate)) => doc! { "profile": l, "slowms": ms, "sampleRate": rate },
        None => doc! { "profile": -1 },
    };
    client
        .database(db)
        .run_command(cmd)
        .await
        .with_context(|| format!("setting the profiler of {db} (needs the dbAdmin role on it)"))?;
    let now = client
        .database(db)
        .run_command(doc! { "profile": -1 })
        .await
        .with_context(|| format!("reading the profiler level of {db}"))?;
    let n = |k: &str| match now.get(k) {
        Some(Bson::Int32(v)) => f64::from(*v),
        Some(Bson::Int64(v)) => *v as f64,
        Some(Bson::Double(v)) => *v,
        _ => 0.0,
    };
    Ok((n("was") as i32, n("slowms") as i64, n("sampleRate")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_truncated_and_other_lines_are_counted_not_fatal() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("mongod.log");
        let good = r#"{"t":{"$date":"2026-11-23T10:00:00.000+00:00"},"s":"I","c":"COMMAND","id":51803,"ctx":"conn1","msg":"Slow query","attr":{"type":"command","ns":"p.users","command":{"find":"users","filter":{"google_id":"g1"},"$db":"p"},"planSummary":"COLLSCAN","keysExamined":0,"docsExamined":2000,"nreturned":1,"durationMillis":150}}"#;
        let text = format!(
            "{good}\nnot json at all\n{{\"t\":{{\"$date\":\"2026-11-23T10:00:01Z\"}},\"id\":22943,\"msg\":\"Connection accepted\"}}\n{}\n",
            &good[..good.len() / 2]
        );
        std::fs::write(&p, text).unwrap();
        let (ops, s) = log_file(&p, None).unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].millis, 150);
        assert_eq!((s.slow_queries, s.skipped, s.malformed), (1, 1, 2));
    }
}
