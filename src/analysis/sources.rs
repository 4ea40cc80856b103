//! Where recorded operations come from: the profiler of each database (`system.profile`)
//! and mongod's log files: JSON (logv2, 4.4+) or text (3.6–4.2, see `textlog`), line by
//! line, gzip-compressed or not (told by the file's first bytes, not its name). Log lines
//! that are not slow operations are skipped; lines that are neither (truncated, garbage)
//! are counted and reported, never fatal; entries mongod itself truncated (a JSON entry
//! with a top-level `truncated`, a text line over its size limit) are counted and left out
//! of the shapes, whose filter or sort they may have lost.
//!
//! A file streams through in chunks of whole lines: one thread reads (and decompresses),
//! one per core parses and aggregates its chunks into its own `Aggregator`; they merge at
//! the end. Memory is the chunks in flight plus the aggregators, whatever the file's size.

use std::io::Read;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};

use anyhow::{Context, Result};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::Client;
use serde::Serialize;

use super::op::{self, Op, Unshaped};
use super::stats::Aggregator;
use super::textlog::{self, TextLine};

/// What a log file held.
#[derive(Debug, Default, Clone, Serialize)]
pub struct LogStats {
    pub file: String,
    /// `json`, `text`, `json+text` or `none` (no line of either).
    pub format: String,
    pub gzip: bool,
    /// Bytes read (decompressed).
    pub bytes: u64,
    pub lines: u64,
    /// Slow-operation entries (within `--since`), shaped or not.
    pub slow_queries: u64,
    /// Slow-operation entries that are not application queries (inserts, commands, our
    /// own and system namespaces, mongod-truncated): see the summary's `left_out`.
    pub not_queries: u64,
    /// Entries mongod truncated (over its log line limit): counted, never shaped.
    pub truncated: u64,
    /// Slow-operation entries older than `--since`.
    pub older_than_since: u64,
    /// The newest slow-operation entry's time (`--since` or not).
    pub newest: Option<String>,
    /// Lines of other kinds (connections, storage, …).
    pub skipped: u64,
    /// Lines that are not valid JSON or lack the expected fields.
    pub malformed: u64,
    #[serde(skip)]
    json_lines: u64,
    #[serde(skip)]
    text_lines: u64,
    #[serde(skip)]
    newest_ms: Option<i64>,
}

impl LogStats {
    /// What a reader should know about this file: nothing was found, and why it may be.
    pub fn hints(&self) -> Vec<String> {
        let f = &self.file;
        let mut out = Vec::new();
        if self.lines == 0 {
            out.push(format!("{f} is empty: no operation to analyze"));
            return out;
        }
        if self.malformed > 0 {
            out.push(format!(
                "{f}: {} malformed or truncated line(s) skipped",
                self.malformed
            ));
        }
        if self.format == "none" {
            out.push(format!(
                "{f}: no line is a mongod log line (JSON from 4.4 on, text before): is it a mongod log?"
            ));
        } else if self.slow_queries == 0 && self.older_than_since > 0 {
            out.push(format!(
                "{f}: all {} slow-operation entries are older than --since (the newest at {}): give a longer --since",
                self.older_than_since,
                self.newest.as_deref().unwrap_or("?")
            ));
        } else if self.slow_queries == 0 {
            out.push(format!(
                "{f}: no slow-operation entry in {} lines: mongod logs the operations slower than its slowms (100 ms by default); lower it with `analyze profile --slowms`",
                self.lines
            ));
        }
        if self.truncated > 0 {
            out.push(format!(
                "{f}: {} entries truncated by mongod (over its maxLogSizeKB) are counted apart, never shaped nor used for recommendations; raise maxLogSizeKB to keep them whole",
                self.truncated
            ));
        }
        out
    }

    fn merge(&mut self, b: &LogStats) {
        self.bytes += b.bytes;
        self.lines += b.lines;
        self.slow_queries += b.slow_queries;
        self.not_queries += b.not_queries;
        self.truncated += b.truncated;
        self.older_than_since += b.older_than_since;
        self.skipped += b.skipped;
        self.malformed += b.malformed;
        self.json_lines += b.json_lines;
        self.text_lines += b.text_lines;
        self.newest_ms = self.newest_ms.max(b.newest_ms);
    }

    fn finish(&mut self) {
        self.format = match (self.json_lines > 0, self.text_lines > 0) {
            (true, true) => "json+text",
            (true, false) => "json",
            (false, true) => "text",
            (false, false) => "none",
        }
        .into();
        self.newest = self
            .newest_ms
            .and_then(|t| DateTime::from_millis(t).try_to_rfc3339_string().ok());
    }
}

/// Where parsed entries go: an aggregator (`analyze queries`) or a list (`shard-key`).
trait Sink {
    fn entry(&mut self, r: std::result::Result<Op, Unshaped>);
}

impl Sink for Aggregator {
    fn entry(&mut self, r: std::result::Result<Op, Unshaped>) {
        self.add(r)
    }
}

impl Sink for Vec<Op> {
    fn entry(&mut self, r: std::result::Result<Op, Unshaped>) {
        if let Ok(o) = r {
            self.push(o)
        }
    }
}

/// The slow-query id of mongod's structured log ("Slow query").
const SLOW_QUERY: i64 = 51803;
/// Lines read per chunk handed to a parser thread.
const CHUNK: usize = 1 << 20;

/// Open a log, decompressing when its first bytes are gzip's magic number.
fn open(path: &Path) -> Result<(Box<dyn Read + Send>, bool)> {
    let mut f = std::fs::File::open(path).map_err(|e| {
        crate::exit::usage(format!(
            "cannot open the log {}: {e}. Give the path of a mongod log file (JSON or text, plain or gzip).",
            path.display()
        ))
    })?;
    let mut magic = [0u8; 2];
    let n = f
        .read(&mut magic)
        .with_context(|| format!("reading the log {}", path.display()))?;
    let head = std::io::Cursor::new(magic[..n].to_vec());
    let r = head.chain(f);
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok((
            Box::new(flate2::read::MultiGzDecoder::new(
                std::io::BufReader::with_capacity(1 << 16, r),
            )),
            true,
        ))
    } else {
        Ok((Box::new(r), false))
    }
}

/// Read one log file into `agg`, on every core.
pub fn scan_log(
    path: &Path,
    file_no: u64,
    since: Option<DateTime>,
    agg: &mut Aggregator,
) -> Result<LogStats> {
    let (mut reader, gzip) = open(path)?;
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(1);
    let (tx, rx) = mpsc::sync_channel::<(u64, Vec<u8>)>(workers);
    let rx = Arc::new(Mutex::new(rx));
    let dbs = agg.dbs().to_vec();
    let mut stats = LogStats {
        file: path.display().to_string(),
        gzip,
        ..Default::default()
    };
    let read_error = std::thread::scope(|s| -> Option<std::io::Error> {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let rx = Arc::clone(&rx);
                let dbs = dbs.clone();
                s.spawn(move || {
                    let mut a = Aggregator::new(&dbs);
                    let mut st = LogStats::default();
                    loop {
                        let next = rx.lock().map(|r| r.recv());
                        let Ok(Ok((base, chunk))) = next else { break };
                        st.bytes += chunk.len() as u64;
                        let mut at = 0;
                        for end in memchr::memchr_iter(b'\n', &chunk) {
                            line(
                                &chunk[at..end],
                                (file_no << 48) | (base + at as u64),
                                since,
                                &mut a,
                                &mut st,
                            );
                            at = end + 1;
                        }
                        if at < chunk.len() {
                            // The file's last line, without a newline.
                            line(
                                &chunk[at..],
                                (file_no << 48) | (base + at as u64),
                                since,
                                &mut a,
                                &mut st,
                            );
                        }
                    }
                    (a, st)
                })
            })
            .collect();
        let mut err = None;
        let mut carry: Vec<u8> = Vec::new();
        let mut base = 0u64;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            };
            carry.extend_from_slice(&buf[..n]);
            if carry.len() < CHUNK {
                continue;
            }
            // Hand over the whole lines; keep the partial last one.
            let Some(last) = memchr::memrchr(b'\n', &carry) else {
                continue;
            };
            let rest = carry.split_off(last + 1);
            let len = carry.len() as u64;
            if tx
                .send((base, std::mem::replace(&mut carry, rest)))
                .is_err()
            {
                break;
            }
            base += len;
        }
        if !carry.is_empty() {
            let _ = tx.send((base, carry));
        }
        drop(tx);
        for h in handles {
            if let Ok((a, st)) = h.join() {
                agg.merge(a);
                stats.merge(&st);
            }
        }
        err
    });
    // A truncated gzip member or a read error ends the file; what was read counts.
    if read_error.is_some() {
        stats.malformed += 1;
    }
    stats.finish();
    Ok(stats)
}

/// Read one log file (JSON or text, plain or gzip) into operations, in one thread (for
/// `shard-key`, which needs the operations themselves).
pub fn log_file(path: &Path, since: Option<DateTime>) -> Result<(Vec<Op>, LogStats)> {
    let (reader, gzip) = open(path)?;
    let mut stats = LogStats {
        file: path.display().to_string(),
        gzip,
        ..Default::default()
    };
    let mut ops = Vec::new();
    let mut at = 0u64;
    for l in std::io::BufRead::split(std::io::BufReader::new(reader), b'\n') {
        let Ok(l) = l else {
            stats.malformed += 1;
            break;
        };
        line(&l, at, since, &mut ops, &mut stats);
        at += l.len() as u64 + 1;
    }
    stats.finish();
    Ok((ops, stats))
}

/// One line of a log.
fn line(l: &[u8], seq: u64, since: Option<DateTime>, sink: &mut impl Sink, st: &mut LogStats) {
    let l = l.strip_suffix(b"\r").unwrap_or(l);
    if l.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    st.lines += 1;
    let (attr, t, truncated) = if l.first() == Some(&b'{') {
        st.json_lines += 1;
        // Most lines of a log are not slow queries: tell them without parsing them.
        if memchr::memmem::find(l, b"\"id\":51803").is_none() {
            if l.ends_with(b"}") {
                st.skipped += 1;
            } else {
                st.malformed += 1;
            }
            return;
        }
        let Ok(e) = serde_json::from_slice::<JsonEntry>(l) else {
            st.malformed += 1;
            return;
        };
        if e.id != Some(SLOW_QUERY) {
            st.skipped += 1;
            return;
        }
        let t =
            e.t.and_then(|t| t.date)
                .and_then(|t| DateTime::parse_rfc3339_str(t.as_ref()).ok());
        let truncated = e.truncated.is_some();
        let Some(attr) = e.attr else {
            st.malformed += 1;
            return;
        };
        (attr.into_document(), t, truncated)
    } else {
        let Ok(text) = std::str::from_utf8(l) else {
            st.malformed += 1;
            return;
        };
        if !textlog::looks_like_text(text) {
            st.malformed += 1;
            return;
        }
        st.text_lines += 1;
        match textlog::parse_line(text) {
            TextLine::Other => {
                st.skipped += 1;
                return;
            }
            TextLine::Op { attr, t, truncated } => (attr, t, truncated),
        }
    };
    if let Some(t) = t {
        st.newest_ms = st.newest_ms.max(Some(t.timestamp_millis()));
        if since.is_some_and(|s| t < s) {
            st.older_than_since += 1;
            return;
        }
    }
    st.slow_queries += 1;
    if truncated {
        st.truncated += 1;
        st.not_queries += 1;
        let name = attr
            .get_document("command")
            .ok()
            .and_then(|c| c.keys().next().cloned())
            .unwrap_or_else(|| "unknown".into());
        sink.entry(Err(Unshaped {
            kind: format!("truncated by mongod: {name}"),
            ns: attr.get_str("ns").unwrap_or("").to_string(),
            millis: match attr.get("durationMillis") {
                Some(Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_)) => {
                    Some(super::count(attr.get("durationMillis")))
                }
                _ => None,
            },
        }));
        return;
    }
    match op::parse(&attr, "durationMillis") {
        Ok(mut o) => {
            o.seq = seq;
            sink.entry(Ok(o));
        }
        Err(u) => {
            st.not_queries += 1;
            sink.entry(Err(u));
        }
    }
}

/// What `analyze` reads of a JSON log line. The parser skips the rest (locks, storage,
/// the session) without building it: most of a slow-query entry's bytes.
#[derive(serde::Deserialize)]
struct JsonEntry<'a> {
    id: Option<i64>,
    #[serde(borrow)]
    t: Option<JsonTime<'a>>,
    #[serde(borrow)]
    attr: Option<JsonAttr<'a>>,
    /// mongod's own truncation of an entry over its size limit.
    truncated: Option<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
struct JsonTime<'a> {
    #[serde(rename = "$date", borrow)]
    date: Option<std::borrow::Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonAttr<'a> {
    #[serde(borrow)]
    ns: Option<std::borrow::Cow<'a, str>>,
    command: Option<serde_json::Value>,
    originating_command: Option<serde_json::Value>,
    #[serde(borrow)]
    plan_summary: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    query_hash: Option<std::borrow::Cow<'a, str>>,
    has_sort_stage: Option<serde_json::Value>,
    used_disk: Option<serde_json::Value>,
    docs_examined: Option<serde_json::Value>,
    keys_examined: Option<serde_json::Value>,
    nreturned: Option<serde_json::Value>,
    n_matched: Option<serde_json::Value>,
    n_modified: Option<serde_json::Value>,
    n_upserted: Option<serde_json::Value>,
    ndeleted: Option<serde_json::Value>,
    duration_millis: Option<serde_json::Value>,
}

/// Fields of a command that are the driver's, not the query's.
const SESSION_FIELDS: &[&str] = &[
    "lsid",
    "$clusterTime",
    "$readPreference",
    "$audit",
    "$client",
    "txnNumber",
    "autocommit",
];

impl JsonAttr<'_> {
    /// The entry as the document `op::parse` reads (the profiler's field names).
    fn into_document(self) -> Document {
        let mut d = Document::new();
        if let Some(ns) = self.ns {
            d.insert("ns", ns.as_ref());
        }
        let command = |v: serde_json::Value| match v {
            serde_json::Value::Object(m) => Bson::Document(
                m.into_iter()
                    .filter(|(k, _)| !SESSION_FIELDS.contains(&k.as_str()))
                    .map(|(k, v)| (k, lenient_bson(v)))
                    .collect(),
            ),
            other => lenient_bson(other),
        };
        if let Some(c) = self.command {
            d.insert("command", command(c));
        }
        if let Some(c) = self.originating_command {
            d.insert("originatingCommand", command(c));
        }
        if let Some(p) = self.plan_summary {
            d.insert("planSummary", p.as_ref());
        }
        if let Some(h) = self.query_hash {
            d.insert("queryHash", h.as_ref());
        }
        for (k, v) in [
            ("hasSortStage", self.has_sort_stage),
            ("usedDisk", self.used_disk),
        ] {
            if let Some(b) = v.and_then(|v| v.as_bool()) {
                d.insert(k, b);
            }
        }
        for (k, v) in [
            ("docsExamined", self.docs_examined),
            ("keysExamined", self.keys_examined),
            ("nreturned", self.nreturned),
            ("nMatched", self.n_matched),
            ("nModified", self.n_modified),
            ("nUpserted", self.n_upserted),
            ("ndeleted", self.ndeleted),
            ("durationMillis", self.duration_millis),
        ] {
            if let Some(n) = v.as_ref().and_then(number) {
                d.insert(k, n);
            }
        }
        d
    }
}

/// A counter as a log writes it: a number, or Extended JSON (`{"$numberLong": "5"}`).
fn number(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        serde_json::Value::Object(m) => m
            .values()
            .next()
            .and_then(|x| x.as_str())
            .and_then(|x| x.parse::<f64>().ok())
            .map(|f| f as i64),
        _ => None,
    }
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

/// The profiler's entries of database `db` (since `since`, if given), parsed.
async fn profiler_entries(
    client: &Client,
    db: &str,
    since: Option<DateTime>,
) -> Result<Vec<std::result::Result<Op, Unshaped>>> {
    let filter = match since {
        Some(t) => doc! { "ts": { "$gte": t } },
        None => doc! {},
    };
    // The profiler is a capped collection (1 MB by default): its entries fit in memory.
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
        .enumerate()
        .map(|(i, e)| {
            op::parse(e, "millis").map(|mut o| {
                // After every log line.
                o.seq = (u64::MAX >> 1) + i as u64;
                o
            })
        })
        .collect())
}

/// The profiler's queries of database `db`.
pub async fn profiler(client: &Client, db: &str, since: Option<DateTime>) -> Result<Vec<Op>> {
    Ok(profiler_entries(client, db, since)
        .await?
        .into_iter()
        .filter_map(|r| r.ok())
        .collect())
}

/// The profiler's entries of database `db` into `agg`; how many there were.
pub async fn profiler_into(
    client: &Client,
    db: &str,
    since: Option<DateTime>,
    agg: &mut Aggregator,
) -> Result<u64> {
    let all = profiler_entries(client, db, since).await?;
    let n = all.len() as u64;
    all.into_iter().for_each(|r| agg.add(r));
    Ok(n)
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
        assert_eq!(ops[0].millis, Some(150));
        assert_eq!((s.slow_queries, s.skipped, s.malformed), (1, 1, 2));
    }

    const FIND: &str = r#"{"t":{"$date":"2026-11-23T10:00:00.000+00:00"},"s":"I","c":"COMMAND","id":51803,"ctx":"conn1","msg":"Slow query","attr":{"type":"command","ns":"p.users","command":{"find":"users","filter":{"a":1},"sort":{"b":1},"$db":"p"},"planSummary":"COLLSCAN","docsExamined":2000,"nreturned":1,"durationMillis":150}}"#;

    fn scan(p: &Path, since: Option<DateTime>) -> (super::super::stats::Summary, LogStats) {
        let mut a = Aggregator::default();
        let s = scan_log(p, 0, since, &mut a).unwrap();
        (a.finish(), s)
    }

    #[test]
    fn gzip_is_told_by_its_magic_bytes_not_the_name() {
        use std::io::Write;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("mongod.log.1");
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for _ in 0..3 {
            writeln!(z, "{FIND}").unwrap();
        }
        std::fs::write(&p, z.finish().unwrap()).unwrap();
        let (sum, s) = scan(&p, None);
        assert!(s.gzip);
        assert_eq!(
            (s.format.as_str(), s.slow_queries, sum.shapes[0].count),
            ("json", 3, 3)
        );
        let plain = d.path().join("plain.gz");
        std::fs::write(&plain, format!("{FIND}\n")).unwrap();
        let (sum, s) = scan(&plain, None);
        assert!(!s.gzip);
        assert_eq!(sum.shapes[0].count, 1);
    }

    #[test]
    fn mongod_truncated_entries_are_counted_and_left_out() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("mongod.log");
        let cut = r#"{"t":{"$date":"2026-11-23T10:00:00.000+00:00"},"s":"I","c":"COMMAND","id":51803,"ctx":"conn1","msg":"Slow query","attr":{"type":"command","ns":"p.users","command":{"find":"users","filter":{"a":1}},"durationMillis":900},"truncated":{"command":{"filter":{"type":"object","size":12000}}},"size":{"command":20000}}"#;
        std::fs::write(&p, format!("{FIND}\n{cut}\n")).unwrap();
        let (sum, s) = scan(&p, None);
        assert_eq!((s.truncated, s.slow_queries), (1, 2));
        assert_eq!(sum.shapes.len(), 1);
        assert_eq!(sum.shapes[0].total_ms, 150);
        assert_eq!(sum.left_out[0].kind, "truncated by mongod: find");
        assert_eq!(sum.left_out[0].total_ms, 900);
    }

    #[test]
    fn many_chunks_on_every_core_count_like_one_thread() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("big.log");
        let mut text = String::new();
        let mut n = 0;
        while text.len() < 3 * CHUNK {
            text.push_str(&FIND.replace(
                "\"durationMillis\":150",
                &format!("\"durationMillis\":{}", n % 500),
            ));
            text.push('\n');
            text.push_str("{\"t\":{\"$date\":\"2026-11-23T10:00:01Z\"},\"id\":22943,\"msg\":\"Connection accepted\"}\n");
            n += 1;
        }
        std::fs::write(&p, &text).unwrap();
        let (sum, s) = scan(&p, None);
        let (ops, _) = log_file(&p, None).unwrap();
        let one = super::super::stats::group(ops);
        assert_eq!(s.slow_queries, n);
        assert_eq!(s.skipped, n);
        assert_eq!(s.bytes, text.len() as u64);
        assert_eq!(sum.shapes[0].count, one[0].count);
        assert_eq!(sum.shapes[0].total_ms, one[0].total_ms);
        assert_eq!(sum.shapes[0].p50_ms, one[0].p50_ms);
    }

    #[test]
    fn since_filters_and_says_so() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("mongod.log");
        std::fs::write(&p, format!("{FIND}\n")).unwrap();
        let (sum, s) = scan(
            &p,
            Some(DateTime::parse_rfc3339_str("2027-01-01T00:00:00Z").unwrap()),
        );
        assert!(sum.shapes.is_empty());
        assert_eq!((s.older_than_since, s.slow_queries), (1, 0));
    }
}
