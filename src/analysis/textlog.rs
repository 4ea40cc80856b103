//! mongod's text log (every server before 4.4): a slow operation is one line,
//!
//! ```text
//! 2020-03-01T10:00:00.123+0000 I  COMMAND  [conn7] command shop.users appName: "app" command: find { find: "users", filter: { email: "a@x" }, $db: "shop" } planSummary: IXSCAN { email: 1 } keysExamined:1 docsExamined:1 nreturned:1 reslen:250 locks:{ … } protocol:op_msg 120ms
//! 2020-03-01T10:00:01.456+0000 I  WRITE    [conn7] remove shop.carts command: { q: { user: 5 }, limit: 0 } planSummary: COLLSCAN keysExamined:0 docsExamined:900 ndeleted:3 numYields:7 locks:{ … } 150ms
//! ```
//!
//! a timestamp, severity, component, `[thread]`, the operation (`command`, `query`,
//! `getmore`, `update`, `remove`, `insert`), the namespace, then `name: value` pairs
//! (documents in the shell's syntax: unquoted keys, `ObjectId('…')`, `new Date(…)`,
//! `/regex/`) and counters `name:N`, and the duration last (`120ms`). The grammar is the one
//! mtools' log parser reads. A line mongod cut because it was over its size limit starts
//! with `warning: log line attempted (…) over max size`. Each line is read into the same
//! document a JSON log's `attr` holds, so both formats give the same shapes and numbers.

use mongodb::bson::{oid::ObjectId, Binary, Bson, DateTime, Document, Regex, Timestamp};

/// What a text line is.
#[derive(Debug, PartialEq)]
pub enum TextLine {
    /// Not a slow operation (startup, connections, …).
    Other,
    /// A slow operation: its fields as a JSON log's `attr`, and when it was written.
    Op {
        attr: Document,
        t: Option<DateTime>,
        truncated: bool,
    },
}

/// Whether a line looks like the text format at all (an ISO-8601 or ctime timestamp).
pub fn looks_like_text(line: &str) -> bool {
    let b = line.as_bytes();
    (b.len() > 20 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[10] == b'T')
        || ["Mon ", "Tue ", "Wed ", "Thu ", "Fri ", "Sat ", "Sun "]
            .iter()
            .any(|d| line.starts_with(d))
}

fn timestamp(tok: &str) -> Option<DateTime> {
    let t = chrono::DateTime::parse_from_str(tok, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(tok))
        .ok()?;
    Some(DateTime::from_millis(t.timestamp_millis()))
}

const OPERATIONS: &[&str] = &["command", "query", "getmore", "update", "remove", "insert"];

/// Read one line of a text log.
pub fn parse_line(line: &str) -> TextLine {
    let line = line.trim_end();
    let Some(ms) = line
        .rsplit_once(' ')
        .and_then(|(_, last)| last.strip_suffix("ms"))
        .and_then(|n| n.parse::<u64>().ok())
    else {
        return TextLine::Other;
    };
    let t = line.split(' ').next().and_then(timestamp);
    // After the thread: `[conn7] command shop.users …`.
    let Some(open) = line.find(" [") else {
        return TextLine::Other;
    };
    let Some(close) = line[open..].find("] ") else {
        return TextLine::Other;
    };
    let rest = &line[open + close + 2..];
    let truncated = rest.starts_with("warning: log line attempted");
    let rest = if truncated {
        // `warning: log line attempted (12kB) over max size (10kB), printing beginning and end ... command …`
        match rest.find(" ... ") {
            Some(i) => &rest[i + 5..],
            None => rest,
        }
    } else {
        rest
    };
    let mut words = rest.splitn(3, ' ');
    let (Some(op), Some(ns)) = (words.next(), words.next()) else {
        return TextLine::Other;
    };
    if !OPERATIONS.contains(&op) || !ns.contains('.') {
        return TextLine::Other;
    }
    let mut attr = Document::new();
    attr.insert("type", op);
    attr.insert("ns", ns);
    let body = words.next().unwrap_or("");
    if !truncated {
        fields(body, &mut attr);
    } else if let Some(i) = body.find("command: ") {
        // What is left of the command is not trusted; its name tells what it was.
        let name: String = body[i + 9..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if !name.is_empty() {
            attr.insert("command", mongodb::bson::doc! { name: 1 });
        }
    }
    attr.insert("durationMillis", ms as i64);
    TextLine::Op { attr, t, truncated }
}

/// The `name: value` and `name:N` pairs after the namespace.
fn fields(body: &str, attr: &mut Document) {
    let mut p = Parser {
        s: body.as_bytes(),
        i: 0,
    };
    loop {
        p.ws();
        let start = p.i;
        while p.i < p.s.len() && p.s[p.i] != b':' && p.s[p.i] != b' ' {
            p.i += 1;
        }
        if p.i >= p.s.len() || p.s[p.i] != b':' {
            break; // the duration, or something we do not read
        }
        let key = String::from_utf8_lossy(&p.s[start..p.i]).to_string();
        p.i += 1;
        p.ws();
        match key.as_str() {
            "command" | "originatingCommand" | "query" => {
                // `command: find { … }` or `command: { q: … }`.
                if p.peek() != Some(b'{') {
                    while p.peek().is_some_and(|c| c != b' ') {
                        p.i += 1;
                    }
                    p.ws();
                }
                if let Some(Bson::Document(d)) = p.value() {
                    attr.insert(key, d);
                }
            }
            "planSummary" => {
                let from = p.i;
                loop {
                    while p.peek().is_some_and(|c| c != b' ' && c != b',') {
                        p.i += 1;
                    }
                    if p.s[p.i..].starts_with(b" {") {
                        p.i += 1;
                        p.skip_balanced();
                    }
                    if p.s[p.i..].starts_with(b", ") {
                        p.i += 2;
                        continue;
                    }
                    break;
                }
                attr.insert(key, String::from_utf8_lossy(&p.s[from..p.i]).to_string());
            }
            _ => match p.peek() {
                Some(b'{') => p.skip_balanced(),
                Some(b'"') => {
                    if let Some(v) = p.value() {
                        attr.insert(key, v);
                    }
                }
                _ => {
                    let from = p.i;
                    while p.peek().is_some_and(|c| c != b' ') {
                        p.i += 1;
                    }
                    let word = String::from_utf8_lossy(&p.s[from..p.i]).to_string();
                    match word.parse::<i64>() {
                        Ok(n) => attr.insert(key, n),
                        Err(_) => attr.insert(key, word),
                    };
                }
            },
        }
    }
    // 4.2 writes `hasSortStage:1`, `usedDisk:1`: flags, as JSON logs write them.
    for flag in ["hasSortStage", "usedDisk"] {
        if let Some(Bson::Int64(n)) = attr.get(flag) {
            let b = *n != 0;
            attr.insert(flag, b);
        }
    }
    if let Some(Bson::Int64(_)) = attr.get("queryHash") {
        // A hash of digits only is still a hash.
        let h = attr
            .get("queryHash")
            .map(|v| v.to_string())
            .unwrap_or_default();
        attr.insert("queryHash", h);
    }
}

/// A value in the shell's syntax, as mongod's text log prints it (BSONObj::toString).
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    fn eat(&mut self, t: &str) -> bool {
        if self.s[self.i..].starts_with(t.as_bytes()) {
            self.i += t.len();
            true
        } else {
            false
        }
    }

    /// Past a `{ … }` (or `[ … ]`), strings respected.
    fn skip_balanced(&mut self) {
        let mut depth = 0;
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth <= 0 {
                        return;
                    }
                }
                b'"' => {
                    self.i -= 1;
                    self.string();
                }
                _ => {}
            }
        }
    }

    fn string(&mut self) -> String {
        let quote = self.s[self.i];
        self.i += 1;
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'\\' => {
                    if let Some(n) = self.peek() {
                        self.i += 1;
                        out.push(match n {
                            b'n' => b'\n',
                            b't' => b'\t',
                            other => other,
                        });
                    }
                }
                c if c == quote => break,
                c => out.push(c),
            }
        }
        String::from_utf8_lossy(&out).to_string()
    }

    /// Up to the next `,`, `}`, `]` or `)` (a token we do not know: kept as text).
    fn word(&mut self) -> String {
        let from = self.i;
        while self
            .peek()
            .is_some_and(|c| !matches!(c, b',' | b'}' | b']' | b')'))
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[from..self.i])
            .trim()
            .to_string()
    }

    /// The argument list of `Name(…)`, as text.
    fn args(&mut self) -> String {
        let from = self.i;
        while self.peek().is_some_and(|c| c != b')') {
            self.i += 1;
        }
        let a = String::from_utf8_lossy(&self.s[from..self.i]).to_string();
        self.i += 1;
        a
    }

    fn document(&mut self) -> Document {
        let mut d = Document::new();
        self.i += 1; // {
        loop {
            self.ws();
            match self.peek() {
                None => return d,
                Some(b'}') => {
                    self.i += 1;
                    return d;
                }
                Some(b',') => {
                    self.i += 1;
                    continue;
                }
                _ => {}
            }
            let key = if self.peek() == Some(b'"') {
                self.string()
            } else {
                let from = self.i;
                while self.peek().is_some_and(|c| c != b':' && c != b'}') {
                    self.i += 1;
                }
                String::from_utf8_lossy(&self.s[from..self.i])
                    .trim()
                    .to_string()
            };
            if !self.eat(":") {
                continue;
            }
            self.ws();
            match self.value() {
                Some(v) => d.insert(key, v),
                None => return d,
            };
        }
    }

    fn value(&mut self) -> Option<Bson> {
        self.ws();
        let c = self.peek()?;
        Some(match c {
            b'{' => Bson::Document(self.document()),
            b'[' => {
                self.i += 1;
                let mut a = Vec::new();
                loop {
                    self.ws();
                    match self.peek() {
                        None => break,
                        Some(b']') => {
                            self.i += 1;
                            break;
                        }
                        Some(b',') => self.i += 1,
                        _ => a.push(self.value()?),
                    }
                }
                Bson::Array(a)
            }
            b'"' | b'\'' => Bson::String(self.string()),
            b'/' => {
                self.i += 1;
                let from = self.i;
                while let Some(c) = self.peek() {
                    if c == b'\\' {
                        self.i += 2;
                        continue;
                    }
                    if c == b'/' {
                        break;
                    }
                    self.i += 1;
                }
                let pattern =
                    String::from_utf8_lossy(&self.s[from..self.i.min(self.s.len())]).to_string();
                self.i += 1;
                let flags = self.word();
                Bson::RegularExpression(Regex {
                    pattern,
                    options: flags,
                })
            }
            b'-' | b'0'..=b'9' | b'.' => {
                let w = self.word();
                if let Ok(n) = w.parse::<i32>() {
                    Bson::Int32(n)
                } else if let Ok(n) = w.parse::<i64>() {
                    Bson::Int64(n)
                } else {
                    w.parse::<f64>()
                        .map(Bson::Double)
                        .unwrap_or(Bson::String(w))
                }
            }
            _ => {
                if self.eat("ObjectId(") {
                    let a = self.args();
                    let hex = a.trim_matches(|c| c == '\'' || c == '"');
                    ObjectId::parse_str(hex)
                        .map(Bson::ObjectId)
                        .unwrap_or(Bson::String(a))
                } else if self.eat("new Date(") || self.eat("Date(") {
                    let a = self.args();
                    Bson::DateTime(DateTime::from_millis(a.trim().parse().unwrap_or(0)))
                } else if self.eat("Timestamp(") {
                    let a = self.args();
                    let mut n = a.split(',').map(|x| x.trim().parse::<u32>().unwrap_or(0));
                    Bson::Timestamp(Timestamp {
                        time: n.next().unwrap_or(0),
                        increment: n.next().unwrap_or(0),
                    })
                } else if self.eat("BinData(") || self.eat("UUID(") {
                    self.args();
                    Bson::Binary(Binary {
                        subtype: mongodb::bson::spec::BinarySubtype::Generic,
                        bytes: vec![],
                    })
                } else if self.eat("NumberLong(")
                    || self.eat("NumberDecimal(")
                    || self.eat("NumberInt(")
                {
                    let a = self.args();
                    let a = a.trim_matches(|c| c == '"' || c == '\'');
                    a.parse::<i64>()
                        .map(Bson::Int64)
                        .unwrap_or_else(|_| Bson::Double(a.parse().unwrap_or(0.0)))
                } else {
                    let w = self.word();
                    match w.as_str() {
                        "true" => Bson::Boolean(true),
                        "false" => Bson::Boolean(false),
                        "null" => Bson::Null,
                        "undefined" => Bson::Undefined,
                        "MinKey" => Bson::MinKey,
                        "MaxKey" => Bson::MaxKey,
                        _ => Bson::String(w),
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn a_4_2_find_reads_as_the_json_log_attr() {
        let l = r#"2020-03-01T10:00:00.123+0000 I  COMMAND  [conn7] command shop.users appName: "MongoDB Shell" command: find { find: "users", filter: { email: "a@x", age: { $gt: 5.0 }, _id: ObjectId('5e5b9f0e1c9d440000a1b2c3'), tags: { $in: [ 1, 2 ] }, name: /^al/i }, sort: { created_at: -1.0 }, lsid: { id: UUID("0b3a") }, $db: "shop" } planSummary: IXSCAN { email: 1 }, IXSCAN { age: 1 } keysExamined:12 docsExamined:10 hasSortStage:1 cursorExhausted:1 numYields:0 nreturned:3 queryHash:1A2B3C4D reslen:250 locks:{ Global: { acquireCount: { r: 1 } } } storage:{} protocol:op_msg 120ms"#;
        let TextLine::Op { attr, t, truncated } = parse_line(l) else {
            panic!("not read")
        };
        assert!(!truncated);
        assert_eq!(t.unwrap().timestamp_millis(), 1583056800123);
        assert_eq!(attr.get_str("ns").unwrap(), "shop.users");
        let cmd = attr.get_document("command").unwrap();
        assert_eq!(cmd.keys().next().unwrap(), "find");
        let f = cmd.get_document("filter").unwrap();
        assert_eq!(f.get_str("email").unwrap(), "a@x");
        assert!(matches!(f.get("_id"), Some(Bson::ObjectId(_))));
        assert!(
            matches!(f.get("name"), Some(Bson::RegularExpression(r)) if r.pattern == "^al" && r.options == "i")
        );
        assert_eq!(
            cmd.get_document("sort").unwrap(),
            &doc! { "created_at": -1.0 }
        );
        assert_eq!(
            attr.get_str("planSummary").unwrap(),
            "IXSCAN { email: 1 }, IXSCAN { age: 1 }"
        );
        assert_eq!(attr.get_i64("docsExamined").unwrap(), 10);
        assert_eq!(attr.get_i64("nreturned").unwrap(), 3);
        assert!(attr.get_bool("hasSortStage").unwrap());
        assert_eq!(attr.get_str("queryHash").unwrap(), "1A2B3C4D");
        assert_eq!(attr.get_i64("durationMillis").unwrap(), 120);
    }

    #[test]
    fn writes_getmores_truncation_and_other_lines() {
        let l = "2020-03-01T10:00:01.456+0000 I  WRITE    [conn7] remove shop.carts command: { q: { user: 5 }, limit: 0 } planSummary: IXSCAN { user: 1 } keysExamined:3 docsExamined:3 ndeleted:3 numYields:0 locks:{} 150ms";
        let TextLine::Op { attr, .. } = parse_line(l) else {
            panic!()
        };
        assert_eq!(
            attr.get_document("command").unwrap(),
            &doc! { "q": { "user": 5 }, "limit": 0 }
        );
        assert_eq!(attr.get_i64("ndeleted").unwrap(), 3);
        let g = r#"2020-03-01T10:00:02.000Z I  COMMAND  [conn7] command shop.users command: getMore { getMore: 7744, collection: "users", $db: "shop" } originatingCommand: { find: "users", filter: { a: 1 } } planSummary: COLLSCAN cursorid:7744 keysExamined:0 docsExamined:50 nreturned:50 reslen:10 locks:{} 300ms"#;
        let TextLine::Op { attr, .. } = parse_line(g) else {
            panic!()
        };
        assert!(attr
            .get_document("command")
            .unwrap()
            .contains_key("getMore"));
        assert_eq!(
            attr.get_document("originatingCommand").unwrap(),
            &doc! { "find": "users", "filter": { "a": 1 } }
        );
        let tr = "2020-03-01T10:00:03.000+0000 I  COMMAND  [conn9] warning: log line attempted (12kB) over max size (10kB), printing beginning and end ... command shop.users command: find { find: \"users\", filter: { a: \"xxxx .......... 120ms";
        let TextLine::Op {
            attr, truncated, ..
        } = parse_line(tr)
        else {
            panic!()
        };
        assert!(truncated);
        assert_eq!(attr.get_document("command").unwrap(), &doc! { "find": 1 });
        assert_eq!(parse_line("2020-03-01T10:00:00.000+0000 I  NETWORK  [listener] connection accepted from 127.0.0.1:5000 #1 (1 connection now open)"), TextLine::Other);
        assert!(looks_like_text(
            "2020-03-01T10:00:00.000+0000 I  NETWORK  [listener] x"
        ));
        assert!(!looks_like_text("{\"t\":1}"));
    }
}
