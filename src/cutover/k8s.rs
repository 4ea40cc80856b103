//! Changing one key of a Kubernetes Secret manifest (`data`, base64, or `stringData`) and
//! keeping every other byte of the file: comments, other documents (`---`), key order,
//! indentation. The edit is made on the line of the key; the result is parsed again and
//! must hold the new value, or nothing is written.

use anyhow::{bail, Context, Result};
use base64::Engine;

/// One key that was changed: its 1-based line, its section and the old value (decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub line: usize,
    pub section: &'static str,
    pub old: String,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// A YAML plain or quoted scalar on one line, as written; None for block scalars and the like.
fn read_scalar(raw: &str) -> Option<(String, char)> {
    let v = raw.trim_end();
    if let Some(inner) = v.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return Some((inner.replace("''", "'"), '\''));
    }
    if let Some(inner) = v.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        let s: String = serde_yaml::from_str(&format!("\"{inner}\"")).ok()?;
        return Some((s, '"'));
    }
    if v.is_empty() || v.starts_with(['|', '>', '&', '*', '!', '[', '{']) {
        return None;
    }
    // Plain: up to a ` #` comment.
    let v = v.split(" #").next().unwrap_or(v).trim_end();
    Some((v.to_string(), ' '))
}

/// Write `value` as a one-line YAML scalar in the line's style where possible.
fn write_scalar(value: &str, style: char) -> String {
    let plain_ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=._-".contains(c));
    match style {
        ' ' if plain_ok => value.to_string(),
        '"' => serde_json::to_string(value).unwrap_or_default(),
        _ => format!("'{}'", value.replace('\'', "''")),
    }
}

/// Set `key` of every Secret document in `text` to `value`. `data` values are base64
/// encoded (and kept plain when they were). Errors when no Secret holds the key.
pub fn set(text: &str, key: &str, value: &str) -> Result<(String, Vec<Change>)> {
    let mut out = String::with_capacity(text.len() + value.len() * 2);
    let mut changes = Vec::new();
    // The section the current line is in: a top-level `data:` or `stringData:` key of a
    // document whose top-level `kind` is Secret.
    let mut section: Option<&'static str> = None;
    let secrets = secret_documents(text);
    let mut doc = 0;
    for (n, raw) in text.split_inclusive('\n').enumerate() {
        if raw.starts_with("---") {
            doc += 1;
            section = None;
        }
        let (line, ending) = match raw.strip_suffix("\r\n") {
            Some(l) => (l, "\r\n"),
            None => match raw.strip_suffix('\n') {
                Some(l) => (l, "\n"),
                None => (raw, ""),
            },
        };
        let indented = line.starts_with([' ', '\t']);
        if !indented && !line.trim().is_empty() && !line.starts_with('#') {
            section = match line.split(':').next().map(str::trim) {
                Some("data") => Some("data"),
                Some("stringData") => Some("stringData"),
                _ => None,
            };
        }
        let edited = section
            .filter(|_| indented && secrets.contains(&doc))
            .and_then(|sec| {
                let body = line.trim_start();
                let indent = &line[..line.len() - body.len()];
                let rest = body
                    .strip_prefix(key)
                    .or_else(|| body.strip_prefix(&format!("\"{key}\"")))
                    .or_else(|| body.strip_prefix(&format!("'{key}'")))?;
                let after_colon = rest.trim_start().strip_prefix(':')?;
                let spaces = after_colon.len() - after_colon.trim_start().len();
                let (old, style) = read_scalar(after_colon.trim_start())?;
                let comment = after_colon
                    .trim_start()
                    .find(" #")
                    .filter(|_| style == ' ')
                    .map(|i| &after_colon.trim_start()[i..])
                    .unwrap_or("");
                let (old_value, new) = match sec {
                    "data" => {
                        let old = b64()
                            .decode(old.as_bytes())
                            .ok()
                            .and_then(|b| String::from_utf8(b).ok())
                            .unwrap_or_default();
                        (old, write_scalar(&b64().encode(value), style))
                    }
                    _ => (old, write_scalar(value, style)),
                };
                let head = &body[..body.len() - after_colon.len()];
                changes.push(Change {
                    line: n + 1,
                    section: sec,
                    old: old_value,
                });
                Some(format!(
                    "{indent}{head}{}{new}{comment}",
                    &after_colon[..spaces]
                ))
            });
        out.push_str(edited.as_deref().unwrap_or(line));
        out.push_str(ending);
    }
    if changes.is_empty() {
        bail!("no Secret in the manifest has the key {key} under data: or stringData:");
    }
    check(&out, key, value)?;
    Ok((out, changes))
}

/// The indexes of the documents (split at `---` lines) whose top-level kind is Secret.
fn secret_documents(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut doc = 0;
    for line in text.lines() {
        if line.starts_with("---") {
            doc += 1;
        } else if let Some(k) = line.strip_prefix("kind:") {
            let k = k
                .split(" #")
                .next()
                .unwrap_or(k)
                .trim()
                .trim_matches(['"', '\'']);
            if k == "Secret" {
                out.push(doc);
            }
        }
    }
    out
}

/// The edited manifest must parse and give `key` the new value in each Secret holding it.
fn check(text: &str, key: &str, value: &str) -> Result<()> {
    use serde::Deserialize;
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v =
            serde_yaml::Value::deserialize(doc).context("the edited manifest is not valid YAML")?;
        if v.get("kind").and_then(|k| k.as_str()) != Some("Secret") {
            continue;
        }
        if let Some(d) = v.get("data").and_then(|d| d.get(key)) {
            let got = d
                .as_str()
                .and_then(|s| b64().decode(s).ok())
                .and_then(|b| String::from_utf8(b).ok());
            if got.as_deref() != Some(value) {
                bail!("the edited manifest does not read back the new data.{key}; nothing written");
            }
        }
        if let Some(d) = v.get("stringData").and_then(|d| d.get(key)) {
            if d.as_str() != Some(value) {
                bail!("the edited manifest does not read back the new stringData.{key}; nothing written");
            }
        }
    }
    Ok(())
}

/// The value of `key` in the first Secret holding it (decoded), if any.
pub fn get(text: &str, key: &str) -> Option<String> {
    use serde::Deserialize;
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = serde_yaml::Value::deserialize(doc).ok()?;
        if v.get("kind").and_then(|k| k.as_str()) != Some("Secret") {
            continue;
        }
        if let Some(s) = v
            .get("stringData")
            .and_then(|d| d.get(key))
            .and_then(|s| s.as_str())
        {
            return Some(s.to_string());
        }
        if let Some(s) = v
            .get("data")
            .and_then(|d| d.get(key))
            .and_then(|s| s.as_str())
        {
            return b64().decode(s).ok().and_then(|b| String::from_utf8(b).ok());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW: &str = "mongodb+srv://app:p%40ss@c.example.net/predixi?w=majority&retryWrites=true";

    #[test]
    fn data_is_base64_and_the_rest_stays() {
        let old = b64().encode("mongodb://old/x");
        let text = format!(
            "# the app's secret\napiVersion: v1\nkind: Secret\nmetadata:\n  name: api  # keep\ntype: Opaque\ndata:\n  OTHER: b3RoZXI=\n  MONGO_URI: {old}\n---\nkind: ConfigMap\ndata:\n  MONGO_URI: not-a-secret\n"
        );
        let (after, changes) = set(&text, "MONGO_URI", NEW).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].old, "mongodb://old/x");
        assert_eq!(after, text.replacen(&old, &b64().encode(NEW), 1));
        assert_eq!(get(&after, "MONGO_URI").as_deref(), Some(NEW));
    }

    #[test]
    fn string_data_keeps_its_quotes() {
        let text = "kind: Secret\nstringData:\n  MONGO_URI: \"mongodb://old/x\"\n  B: 'x'\n";
        let (after, _) = set(text, "MONGO_URI", NEW).unwrap();
        assert_eq!(after, text.replace("mongodb://old/x", NEW));
        assert_eq!(get(&after, "MONGO_URI").as_deref(), Some(NEW));
        let text = "kind: Secret\nstringData:\n  MONGO_URI: mongodb://old/x\n";
        let (after, _) = set(text, "MONGO_URI", NEW).unwrap();
        assert_eq!(
            after,
            format!("kind: Secret\nstringData:\n  MONGO_URI: '{NEW}'\n")
        );
    }

    #[test]
    fn a_missing_key_is_an_error() {
        assert!(set("kind: Secret\ndata:\n  A: eA==\n", "MONGO_URI", NEW).is_err());
        assert!(set(
            "kind: Secret\ndata:\n  MONGO_URI: |\n    eA==\n",
            "MONGO_URI",
            NEW
        )
        .is_err());
    }
}
