//! Changing one key's value in a dotenv file and keeping every other byte: comments,
//! blank lines, `export`, each line's quoting style, CRLF, a BOM, a missing final newline.
//!
//! A binding is a line `[export ]KEY=VALUE` (spaces allowed around `=`), not a comment.
//! Every binding of the key is changed (dotenv readers disagree on which duplicate wins:
//! python-dotenv and Compose take the last, some the first), and the caller warns.
//!
//! The new value is written so that python-dotenv, Docker Compose and a shell
//! (`set -a; . .env`, or `export KEY=…` lines) all read it back exactly: unquoted only when
//! it has nothing any of them would interpret (a URI's `&` ends a shell command, `?` and `[`
//! glob in an `export` line, `#` starts a comment, `$` interpolates, …), else single-quoted
//! (all three read single quotes literally), keeping a line's double or single quotes when
//! the value is safe in them.
//! A value neither form can carry unchanged for both parsers (a `'` together with `$` or
//! `\`) is refused rather than written in a way one of them would misread.

use anyhow::{bail, Result};

/// One binding of the key that was changed: its 1-based line and the old value (as read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub line: usize,
    pub old: String,
}

/// How a value was quoted on its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Single,
    Double,
}

/// Where a binding's value sits on its line (byte offsets in the line), and how it is quoted.
struct Binding {
    value_start: usize,
    value_end: usize,
    quote: Quote,
    /// The value as dotenv readers see it.
    value: String,
}

fn is_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-'
}

/// Parse `line` (without its line ending) as a binding of `key`.
fn binding(line: &str, key: &str) -> Option<Binding> {
    let b = line.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if line[i..].starts_with("export ") || line[i..].starts_with("export\t") {
        i += 7;
        skip_ws(&mut i);
    }
    let k0 = i;
    while i < b.len() && is_key_char(b[i]) {
        i += 1;
    }
    if &line[k0..i] != key {
        return None;
    }
    skip_ws(&mut i);
    if i >= b.len() || b[i] != b'=' {
        return None;
    }
    i += 1;
    skip_ws(&mut i);
    let start = i;
    match b.get(i) {
        Some(&q @ (b'\'' | b'"')) => {
            // The closing quote: the next unescaped one.
            let mut j = i + 1;
            let mut value = String::new();
            while j < b.len() {
                let c = b[j];
                if c == b'\\' && j + 1 < b.len() {
                    let n = b[j + 1];
                    if q == b'"' {
                        match n {
                            b'n' => value.push('\n'),
                            b'r' => value.push('\r'),
                            b't' => value.push('\t'),
                            b'\\' | b'"' | b'\'' => value.push(n as char),
                            _ => {
                                value.push('\\');
                                value.push(n as char);
                            }
                        }
                        j += 2;
                        continue;
                    }
                    if n == b'\\' || n == b'\'' {
                        value.push(n as char);
                        j += 2;
                        continue;
                    }
                }
                if c == q {
                    return Some(Binding {
                        value_start: start,
                        value_end: j + 1,
                        quote: if q == b'"' {
                            Quote::Double
                        } else {
                            Quote::Single
                        },
                        value,
                    });
                }
                // Multi-byte UTF-8 is copied byte-wise through the char boundary below.
                let ch = line[j..].chars().next().unwrap_or('\u{fffd}');
                value.push(ch);
                j += ch.len_utf8();
            }
            // An unterminated quote: treat the rest as the value (readers differ; ours
            // replaces it whole).
            Some(Binding {
                value_start: start,
                value_end: b.len(),
                quote: Quote::None,
                value: line[start..].to_string(),
            })
        }
        _ => {
            // Unquoted: up to an inline comment (` #`), trailing spaces trimmed.
            let mut end = b.len();
            let mut j = start;
            while j < b.len() {
                if b[j] == b'#' && (j == start || b[j - 1] == b' ' || b[j - 1] == b'\t') {
                    end = j;
                    break;
                }
                j += 1;
            }
            let mut e = end;
            while e > start && (b[e - 1] == b' ' || b[e - 1] == b'\t') {
                e -= 1;
            }
            Some(Binding {
                value_start: start,
                value_end: e,
                quote: Quote::None,
                value: line[start..e].to_string(),
            })
        }
    }
}

/// The value written in the line's style when that style carries it exactly, else the
/// safest one for both python-dotenv and Compose.
fn render(value: &str, style: Quote) -> Result<String> {
    if value.contains(['\n', '\r']) {
        bail!("the new value contains a line break, which a dotenv file cannot hold on one line");
    }
    // Only characters no reader interprets: the shell's metacharacters (`&;|<>()`), its
    // globs and tilde (`*?[]~`, expanded in an `export` line), dotenv's `#`, `$`, quotes
    // and backslashes all need quotes.
    let plain_safe = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:@%+=,".contains(c));
    let single_safe = !value.contains(['\'', '\\']);
    let double_safe = !value.contains(['"', '\\', '$', '`']);
    Ok(match style {
        Quote::Double if double_safe => format!("\"{value}\""),
        Quote::Single if single_safe => format!("'{value}'"),
        Quote::None if plain_safe => value.to_string(),
        _ if single_safe => format!("'{value}'"),
        _ if double_safe => format!("\"{value}\""),
        _ => bail!(
            "the new value holds a quote together with `$` or `\\`, which dotenv readers \
             (python-dotenv, Docker Compose) would not all read back unchanged; percent-encode \
             those characters in the URI (e.g. %27 for ')"
        ),
    })
}

/// Set every binding of `key` in `text` to `value`. Returns the new text and the bindings
/// changed; an error when the key has no binding (a commented-out one does not count).
pub fn set(text: &str, key: &str, value: &str) -> Result<(String, Vec<Change>)> {
    let (bom, body) = match text.strip_prefix('\u{feff}') {
        Some(rest) => ("\u{feff}", rest),
        None => ("", text),
    };
    let mut out = String::with_capacity(text.len() + value.len());
    out.push_str(bom);
    let mut changes = Vec::new();
    for (n, raw) in body.split_inclusive('\n').enumerate() {
        let (line, ending) = match raw.strip_suffix("\r\n") {
            Some(l) => (l, "\r\n"),
            None => match raw.strip_suffix('\n') {
                Some(l) => (l, "\n"),
                None => (raw, ""),
            },
        };
        match binding(line, key) {
            Some(b) => {
                out.push_str(&line[..b.value_start]);
                out.push_str(&render(value, b.quote)?);
                out.push_str(&line[b.value_end..]);
                changes.push(Change {
                    line: n + 1,
                    old: b.value,
                });
            }
            None => out.push_str(line),
        }
        out.push_str(ending);
    }
    if changes.is_empty() {
        bail!("no binding of {key} (a line `{key}=…`; commented-out lines do not count)");
    }
    Ok((out, changes))
}

/// The value of `key` as dotenv readers see it (the last binding), if any.
pub fn get(text: &str, key: &str) -> Option<String> {
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    body.lines()
        .rev()
        .find_map(|l| binding(l.strip_suffix('\r').unwrap_or(l), key))
        .map(|b| b.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW: &str =
        "mongodb+srv://app:p%40ss%26w0rd@cluster0.example.net/predixi?retryWrites=true&w=majority";

    fn only_value_changed(before: &str, after: &str, old: &str, new_rendered: &str) {
        assert_eq!(after, before.replacen(old, new_rendered, 1), "{after}");
    }

    #[test]
    fn keeps_every_other_byte_of_each_shape() {
        let cases = [
            (
                "MONGO_URI=mongodb://old:1/x\n",
                "mongodb://old:1/x",
                NEW.to_string(),
            ),
            (
                "export MONGO_URI=mongodb://old/x\n",
                "mongodb://old/x",
                NEW.to_string(),
            ),
            (
                "MONGO_URI='mongodb://old/x'\n",
                "'mongodb://old/x'",
                format!("'{NEW}'"),
            ),
            (
                "MONGO_URI=\"mongodb://old/x\"\n",
                "\"mongodb://old/x\"",
                format!("\"{NEW}\""),
            ),
            (
                "MONGO_URI = mongodb://old/x   # the database\n",
                "mongodb://old/x",
                NEW.to_string(),
            ),
            (
                "# MONGO_URI=commented\nMONGO_URI=mongodb://old/x",
                "mongodb://old/x",
                NEW.to_string(),
            ),
            (
                "A=1\r\nMONGO_URI=mongodb://old/x\r\nB=2\r\n",
                "mongodb://old/x",
                NEW.to_string(),
            ),
            (
                "\u{feff}MONGO_URI=mongodb://old/x\n",
                "mongodb://old/x",
                NEW.to_string(),
            ),
        ];
        // Unquoted lines get single quotes: the URI's `&` and `?` would break a shell.
        let cases = cases.map(|(b, o, r)| {
            let r = if r == NEW { format!("'{NEW}'") } else { r };
            (b, o, r)
        });
        for (before, old, rendered) in cases {
            let (after, changes) = set(before, "MONGO_URI", NEW).unwrap();
            assert_eq!(changes.len(), 1, "{before}");
            only_value_changed(before, &after, old, &rendered);
            assert_eq!(get(&after, "MONGO_URI").as_deref(), Some(NEW), "{after}");
        }
    }

    #[test]
    fn every_duplicate_changes_and_a_commented_key_is_not_a_binding() {
        let (after, changes) = set(
            "MONGO_URI=a\n#MONGO_URI=b\nMONGO_URI=c\n",
            "MONGO_URI",
            "new",
        )
        .unwrap();
        assert_eq!(after, "MONGO_URI=new\n#MONGO_URI=b\nMONGO_URI=new\n");
        assert_eq!(changes.iter().map(|c| c.line).collect::<Vec<_>>(), [1, 3]);
        assert!(set("# MONGO_URI=x\nOTHER=1\n", "MONGO_URI", "new").is_err());
        // A key that merely starts with the name is another key.
        assert!(set("MONGO_URI_OLD=x\n", "MONGO_URI", "new").is_err());
    }

    #[test]
    fn values_that_need_quotes_get_single_quotes_and_unsafe_ones_are_refused() {
        let (after, _) = set("K=x\n", "K", "mongodb://u:pa$$@h/?a=1#b").unwrap();
        assert_eq!(after, "K='mongodb://u:pa$$@h/?a=1#b'\n");
        // Double quotes stay when the value is safe in them, else single quotes.
        let (after, _) = set("K=\"x\"\n", "K", "a$b").unwrap();
        assert_eq!(after, "K='a$b'\n");
        assert!(set("K=x\n", "K", "it's $5").is_err());
        // A value a shell reads unquoted stays unquoted.
        let (after, _) = set("export K=x\n", "K", "mongodb://h:1/db").unwrap();
        assert_eq!(after, "export K=mongodb://h:1/db\n");
        let (after, _) = set("export K=x\n", "K", "mongodb://h/?a=1&b=2").unwrap();
        assert_eq!(after, "export K='mongodb://h/?a=1&b=2'\n");
        assert!(set("K=x\n", "K", "two\nlines").is_err());
    }

    #[test]
    fn reads_quoted_values_as_dotenv_does() {
        assert_eq!(get("K='a\\'b'", "K").as_deref(), Some("a'b"));
        assert_eq!(get("K=\"a\\\"b\" # c", "K").as_deref(), Some("a\"b"));
        assert_eq!(get("K=a#b", "K").as_deref(), Some("a#b"));
        assert_eq!(get("K=a #b", "K").as_deref(), Some("a"));
    }
}
