//! A collection's file name in a dump folder, exactly as mongodump/mongorestore 100.8.0
//! make and read it: Go's `url.QueryEscape` (util.EscapeCollectionName: a space becomes
//! `+`, every byte but `A-Z a-z 0-9 - _ . ~` becomes `%XX`), and names whose escaped form
//! would not fit a 255-byte file name truncated to `<first 208 bytes>%24<sha1 base64url>`
//! (mongodump/prepare.go outputPath), the real name kept in the metadata's `collectionName`.

use anyhow::{bail, Result};
use base64::Engine;
use sha1::{Digest, Sha1};

/// mongodump's limit: 255 bytes minus its longest suffix, `.metadata.json.gz`.
const MAX_STEM: usize = 238;
/// What a truncated stem keeps of the escaped name.
const KEEP: usize = 208;
/// The delimiter before the hash: an escaped `$`, which an escaped name never holds raw.
const DELIMITER: &str = "%24";

/// Go's url.QueryEscape.
pub fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Go's url.QueryUnescape: `+` is a space, `%XX` a byte; a malformed escape is an error.
pub fn unescape(stem: &str) -> Result<String> {
    let bytes = stem.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                let Some(v) = hex else {
                    bail!("bad percent-escape in file name {stem:?}")
                };
                out.push(v);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map_err(|_| anyhow::anyhow!("file name {stem:?} does not decode to UTF-8"))
}

/// The file name stem (before `.bson` / `.metadata.json`) of collection `name`.
/// `longest_suffix` is the longest suffix the caller will add: mongodump's rule assumes
/// `.metadata.json.gz`; zstd's `.metadata.json.zst` is one byte longer, so its stems keep one
/// byte less of the name (stock tools never read zstd folders).
pub fn stem(name: &str, longest_suffix: usize) -> String {
    let escaped = escape(name);
    let max = MAX_STEM.min(255usize.saturating_sub(longest_suffix));
    if escaped.len() <= max {
        return escaped;
    }
    let hash =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha1::digest(name.as_bytes()));
    // 208 + 3 + 27 = 238, shortened by as much as the suffix needs beyond mongodump's.
    let keep = KEEP - (MAX_STEM - max);
    format!("{}{DELIMITER}{hash}", &escaped[..keep])
}

/// Whether a stem may be a truncated long name, whose real name is only in the metadata's
/// `collectionName`. mongorestore asks for exactly 238 bytes and a `%24`; a stem one byte
/// shorter is our zstd variant. Reading `collectionName` for a stem that was not truncated
/// is harmless: it holds the same name.
pub fn maybe_truncated(stem: &str) -> bool {
    (MAX_STEM - 1..=MAX_STEM).contains(&stem.len()) && stem.contains(DELIMITER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go_query_escape() {
        assert_eq!(escape("with space"), "with+space");
        assert_eq!(
            escape("plus+amp&eq=colon:at@"),
            "plus%2Bamp%26eq%3Dcolon%3Aat%40"
        );
        assert_eq!(escape("pct%dot.tilde~"), "pct%25dot.tilde~");
        assert_eq!(
            escape("comentários_日志"),
            "coment%C3%A1rios_%E6%97%A5%E5%BF%97"
        );
        assert_eq!(escape("$x/y;z,?"), "%24x%2Fy%3Bz%2C%3F");
        assert_eq!(escape("system.views"), "system.views");
        for n in [
            "with space",
            "a+b c",
            "%41",
            "a&b=c:d@e%f",
            "日志.x",
            "-_.~",
        ] {
            assert_eq!(unescape(&escape(n)).unwrap(), n);
        }
        assert_eq!(unescape("a+b%2Bc").unwrap(), "a b+c");
        assert!(unescape("bad%zz").is_err());
        assert!(unescape("bad%2").is_err());
        assert!(unescape("%FF").is_err());
    }

    #[test]
    fn long_names_are_truncated_like_mongodump() {
        let long = "日".repeat(68); // 204 bytes, 612 escaped
        let s = stem(&long, ".metadata.json.gz".len());
        assert_eq!(s.len(), 238);
        assert!(s.starts_with(&escape(&long)[..208]));
        assert_eq!(&s[208..211], "%24");
        let hash =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha1::digest(long.as_bytes()));
        assert_eq!(&s[211..], hash);
        assert!(maybe_truncated(&s));
        let z = stem(&long, ".metadata.json.zst".len());
        assert_eq!(z.len(), 237);
        assert!(maybe_truncated(&z));
        // At the limit a name is kept whole.
        let edge = "a".repeat(238);
        assert_eq!(stem(&edge, 17), edge);
        assert!(!maybe_truncated(&edge));
        assert_eq!(stem(&"a".repeat(239), 17).len(), 238);
    }
}
