//! Issue 20's proof of a lossless copy: the adversarial data set (made by
//! `scripts/fidelity_data.py` against a real server) and one comparison that every path ends
//! with — the source and target databases are byte-identical:
//! - the same collections, and each one's `listCollections` entry equal byte for byte
//!   (minus `info.uuid`), its `listIndexes` entries equal byte for byte (by name);
//! - `dbHash` equal per collection;
//! - every document's raw bytes equal, in `_id` order (capped collections: in `$natural`
//!   order, which is their order);
//!
//! Every difference is collected (not only the first), each naming the collection, the `_id`
//! and the first differing field path, so a failing run lists exactly what a path changes.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document, RawDocumentBuf};

use super::{block_on, client};

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fidelity_data.py")
}

fn python(args: &[&str]) -> String {
    let out = Command::new(super::python())
        .arg(script())
        .args(args)
        .output()
        .expect("running python3 scripts/fidelity_data.py");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "scripts/fidelity_data.py {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Make the data set in `db` (`big`: with the ~16 MB document and the 100k-element array).
/// Fails when the server refused or altered a case: the set must be what a server stores.
pub fn generate(uri: &str, db: &str, big: bool) -> serde_json::Value {
    let mut args = vec!["load", uri, db];
    if big {
        args.push("--big");
    }
    let out = python(&args);
    let report: serde_json::Value = serde_json::from_str(out.trim()).expect("the script's JSON");
    assert_eq!(
        report["refused_by_server"],
        serde_json::json!({}),
        "cases the server refused"
    );
    assert_eq!(
        report["altered_by_server"],
        serde_json::json!([]),
        "cases the server stored differently from what was sent"
    );
    report
}

/// One stage of live changes (`crud`, `invalid_utf8`, `binary_subtype2`, `event_over_16mb`).
pub fn change(uri: &str, db: &str, stage: &str) -> String {
    python(&["change", uri, db, stage])
}

/// The names (other than `system.views`/`system.profile`, whose content embeds the database
/// name or is the server's own) and listCollections entries of `db`, minus `info.uuid`.
async fn collections(d: &mongodb::Database) -> Result<BTreeMap<String, Document>, String> {
    let specs: Vec<Document> = d
        .run_cursor_command(doc! { "listCollections": 1 })
        .await
        .map_err(|e| format!("listCollections: {e}"))?
        .try_collect()
        .await
        .map_err(|e| format!("listCollections: {e}"))?;
    let mut out = BTreeMap::new();
    for mut spec in specs {
        let name = spec.get_str("name").unwrap_or_default().to_string();
        if name == "system.views" || name == "system.profile" {
            continue;
        }
        if let Ok(info) = spec.get_document_mut("info") {
            info.remove("uuid");
        }
        out.insert(name, spec);
    }
    Ok(out)
}

async fn indexes(d: &mongodb::Database, coll: &str) -> Result<BTreeMap<String, Document>, String> {
    let list: Vec<Document> = d
        .run_cursor_command(doc! { "listIndexes": coll })
        .await
        .map_err(|e| format!("listIndexes: {e}"))?
        .try_collect()
        .await
        .map_err(|e| format!("listIndexes: {e}"))?;
    Ok(list
        .into_iter()
        .map(|mut i| {
            i.remove("ns");
            (i.get_str("name").unwrap_or_default().to_string(), i)
        })
        .collect())
}

async fn raw_docs(
    d: &mongodb::Database,
    coll: &str,
    natural: bool,
) -> Result<Vec<RawDocumentBuf>, String> {
    let sort = if natural {
        doc! { "$natural": 1 }
    } else {
        doc! { "_id": 1 }
    };
    d.collection::<RawDocumentBuf>(coll)
        .find(doc! {})
        .sort(sort)
        .await
        .map_err(|e| format!("find: {e}"))?
        .try_collect()
        .await
        .map_err(|e| format!("reading documents: {e}"))
}

fn bytes_of(d: &Document) -> Vec<u8> {
    let mut v = Vec::new();
    d.to_writer(&mut v).unwrap();
    v
}

/// " in field order only" when two specs hold the same fields and values in another order
/// (`Document`'s equality ignores order): the mark of a Go map in the stock tools, which a
/// caller may tolerate by name.
pub const ORDER_ONLY: &str = " in field order only";

fn order_only(a: &Document, b: &Document) -> &'static str {
    if a == b {
        ORDER_ONLY
    } else {
        ""
    }
}

fn ext(d: &Document) -> String {
    cut(
        Bson::Document(d.clone()).into_relaxed_extjson().to_string(),
        400,
    )
}

fn cut(mut s: String, n: usize) -> String {
    if s.len() > n {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// One BSON element: key bytes, type, value bytes.
type Element<'a> = (&'a [u8], u8, &'a [u8]);

/// The elements of a BSON document, read by framing only (no UTF-8 or subtype check: the
/// documents compared here are exactly the ones a decoder would refuse).
fn elements(doc: &[u8]) -> Option<Vec<Element<'_>>> {
    let i32_at = |at: usize| -> Option<usize> {
        let b = doc.get(at..at + 4)?;
        usize::try_from(i32::from_le_bytes(b.try_into().ok()?)).ok()
    };
    let cstr_end =
        |at: usize| -> Option<usize> { Some(at + doc.get(at..)?.iter().position(|&c| c == 0)?) };
    let mut out = Vec::new();
    let mut at = 4;
    let end = i32_at(0)?.checked_sub(1)?;
    while at < end {
        let t = *doc.get(at)?;
        let key_end = cstr_end(at + 1)?;
        let key = &doc[at + 1..key_end];
        let v = key_end + 1;
        let len = match t {
            0x01 | 0x09 | 0x11 | 0x12 => 8,
            0x02 | 0x0D | 0x0E => 4 + i32_at(v)?,
            0x03 | 0x04 | 0x0F => i32_at(v)?,
            0x05 => 5 + i32_at(v)?,
            0x06 | 0x0A | 0x7F | 0xFF => 0,
            0x07 => 12,
            0x08 => 1,
            0x0B => {
                let p = cstr_end(v)?;
                cstr_end(p + 1)? + 1 - v
            }
            0x0C => 4 + i32_at(v)? + 12,
            0x10 => 4,
            0x13 => 16,
            _ => return None,
        };
        out.push((key, t, doc.get(v..v + len)?));
        at = v + len;
    }
    Some(out)
}

/// An element shown for a person: decoded (relaxed Extended JSON) when it decodes, else hex.
fn show(key: &[u8], t: u8, value: &[u8]) -> String {
    if t == 0x0B {
        // A decoder sorts a regex's flags: show them as stored.
        let mut parts = value.split(|&c| c == 0);
        let pattern = String::from_utf8_lossy(parts.next().unwrap_or_default());
        let flags = String::from_utf8_lossy(parts.next().unwrap_or_default());
        return format!("{}: /{pattern}/{flags}", String::from_utf8_lossy(key));
    }
    let mut raw = vec![t];
    raw.extend_from_slice(b"v\0");
    raw.extend_from_slice(value);
    let mut d = ((raw.len() + 5) as i32).to_le_bytes().to_vec();
    d.extend(raw);
    d.push(0);
    let decoded = RawDocumentBuf::from_bytes(d)
        .ok()
        .and_then(|r| Document::try_from(r.as_ref()).ok())
        .and_then(|d| d.get("v").cloned())
        .map(|b| b.into_relaxed_extjson().to_string());
    let key = String::from_utf8_lossy(key);
    match decoded {
        Some(s) => format!("{key}: {}", cut(s, 120)),
        None => {
            let hex: String = value.iter().take(40).map(|b| format!("{b:02x}")).collect();
            format!(
                "{key}: type {t:#04x} bytes {hex}{}",
                if value.len() > 40 { "…" } else { "" }
            )
        }
    }
}

/// Where two documents first differ, as a field path with both sides shown.
fn first_difference(a: &[u8], b: &[u8], path: &str) -> String {
    let (Some(ea), Some(eb)) = (elements(a), elements(b)) else {
        return format!("{path}: a document does not frame as BSON");
    };
    for i in 0..ea.len().max(eb.len()) {
        let here = |e: Option<&Element>| match e {
            Some((k, t, v)) => show(k, *t, v),
            None => "(nothing)".into(),
        };
        let (x, y) = (ea.get(i), eb.get(i));
        if x == y {
            continue;
        }
        if let (Some((ka, ta, va)), Some((kb, tb, vb))) = (x, y) {
            if ka == kb && ta == tb && matches!(ta, 0x03 | 0x04) {
                let sub = format!("{path}{}.", String::from_utf8_lossy(ka));
                return first_difference(va, vb, &sub);
            }
        }
        let (sx, sy) = (here(x), here(y));
        let same = if sx == sy {
            // Equal once decoded (a NaN payload, a non-canonical value): show the bytes.
            let hex = |e: Option<&Element>| -> String {
                e.map(|(_, _, v)| v.iter().take(24).map(|b| format!("{b:02x}")).collect())
                    .unwrap_or_default()
            };
            format!(" (equal when decoded; bytes {} vs {})", hex(x), hex(y))
        } else {
            String::new()
        };
        return format!("field #{i} under `{path}`: source {{{sx}}} vs target {{{sy}}}{same}");
    }
    format!("{path}: same elements, different bytes")
}

fn id_of(d: &[u8]) -> (Vec<u8>, String) {
    match elements(d)
        .unwrap_or_default()
        .into_iter()
        .find(|(k, _, _)| *k == b"_id")
    {
        Some((k, t, v)) => {
            let mut key = vec![t];
            key.extend_from_slice(v);
            (key, show(k, t, v))
        }
        None => (Vec::new(), "(no _id)".into()),
    }
}

/// Every difference between `src_db` at `src_uri` and `dst_db` at `dst_uri`; `skip` names
/// collections left out on purpose (with the reason stated by the caller).
pub fn differences(
    src_uri: &str,
    src_db: &str,
    dst_uri: &str,
    dst_db: &str,
    skip: &[&str],
) -> Vec<String> {
    let shash = super::hashes(src_uri, src_db);
    let dhash = super::hashes(dst_uri, dst_db);
    block_on(async {
        let (sc, dc) = (client(src_uri).await, client(dst_uri).await);
        let (s, d) = (sc.database(src_db), dc.database(dst_db));
        let mut out = Vec::new();
        let (mut scolls, mut dcolls) = match (collections(&s).await, collections(&d).await) {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => {
                return vec![format!(
                    "listing collections: {:?} / {:?}",
                    a.err(),
                    b.err()
                )]
            }
        };
        for k in skip {
            scolls.remove(*k);
            dcolls.remove(*k);
        }
        for name in dcolls.keys().filter(|n| !scolls.contains_key(*n)) {
            out.push(format!("[{name}] exists only on the target"));
        }
        for (name, spec) in &scolls {
            let Some(tspec) = dcolls.get(name) else {
                out.push(format!("[{name}] missing on the target"));
                continue;
            };
            if bytes_of(spec) != bytes_of(tspec) {
                out.push(format!(
                    "[{name}] listCollections differs{}: source {} vs target {}",
                    order_only(spec, tspec),
                    ext(spec),
                    ext(tspec)
                ));
            }
            if shash.get(name) != dhash.get(name) {
                out.push(format!("[{name}] dbHash differs"));
            }
            if spec.get_str("type").unwrap_or("collection") == "view" {
                continue;
            }
            match (indexes(&s, name).await, indexes(&d, name).await) {
                (Ok(si), Ok(di)) => {
                    for (iname, ispec) in &si {
                        match di.get(iname) {
                            None => {
                                out.push(format!("[{name}] index {iname} missing on the target"))
                            }
                            Some(t) if bytes_of(t) != bytes_of(ispec) => out.push(format!(
                                "[{name}] index {iname} differs{}: source {} vs target {}",
                                order_only(ispec, t),
                                ext(ispec),
                                ext(t)
                            )),
                            _ => {}
                        }
                    }
                    for iname in di.keys().filter(|n| !si.contains_key(*n)) {
                        out.push(format!("[{name}] index {iname} only on the target"));
                    }
                }
                (a, b) => out.push(format!(
                    "[{name}] listIndexes: {:?} / {:?}",
                    a.err(),
                    b.err()
                )),
            }
            let capped = spec
                .get_document("options")
                .map(|o| o.get_bool("capped").unwrap_or(false))
                .unwrap_or(false);
            let (sd, td) = match (
                raw_docs(&s, name, capped).await,
                raw_docs(&d, name, capped).await,
            ) {
                (Ok(a), Ok(b)) => (a, b),
                (a, b) => {
                    out.push(format!(
                        "[{name}] reading documents: {:?} / {:?}",
                        a.err(),
                        b.err()
                    ));
                    continue;
                }
            };
            out.extend(document_differences(name, &sd, &td, capped));
        }
        out
    })
}

fn document_differences(
    name: &str,
    sd: &[RawDocumentBuf],
    td: &[RawDocumentBuf],
    capped: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    if sd.len() != td.len() {
        out.push(format!(
            "[{name}] {} documents on the source, {} on the target",
            sd.len(),
            td.len()
        ));
    }
    let by_id: BTreeMap<Vec<u8>, &RawDocumentBuf> =
        td.iter().map(|t| (id_of(t.as_bytes()).0, t)).collect();
    let src_ids: std::collections::BTreeSet<Vec<u8>> =
        sd.iter().map(|x| id_of(x.as_bytes()).0).collect();
    let mut shown = 0;
    for x in sd {
        let (key, label) = id_of(x.as_bytes());
        let what = match by_id.get(&key) {
            None => Some("missing on the target".to_string()),
            Some(t) if t.as_bytes() != x.as_bytes() => {
                Some(first_difference(x.as_bytes(), t.as_bytes(), ""))
            }
            _ => None,
        };
        if let Some(w) = what {
            shown += 1;
            if shown <= 12 {
                out.push(format!("[{name}] {{{label}}}: {w}"));
            }
        }
    }
    for t in td {
        let (key, label) = id_of(t.as_bytes());
        if !src_ids.contains(&key) {
            shown += 1;
            if shown <= 12 {
                out.push(format!("[{name}] {{{label}}}: only on the target"));
            }
        }
    }
    if shown > 12 {
        out.push(format!("[{name}] … {} differing documents in all", shown));
    }
    if capped && shown == 0 {
        if let Some(i) = (0..sd.len().min(td.len())).find(|&i| sd[i].as_bytes() != td[i].as_bytes())
        {
            out.push(format!(
                "[{name}] $natural order differs from position {i}: source {{{}}} vs target {{{}}}",
                id_of(sd[i].as_bytes()).1,
                id_of(td[i].as_bytes()).1
            ));
        }
    }
    out
}

/// Fail with every difference, one per line, naming the path that made them.
#[track_caller]
pub fn assert_identical(
    path: &str,
    src_uri: &str,
    src_db: &str,
    dst_uri: &str,
    dst_db: &str,
    skip: &[&str],
) {
    let diffs = differences(src_uri, src_db, dst_uri, dst_db, skip);
    assert!(
        diffs.is_empty(),
        "{path}: the target is not byte-identical to the source ({} differences):\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
