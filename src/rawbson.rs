//! Walking and building BSON at the byte level. Documents the server stored are carried as
//! the server holds them: a string with invalid UTF-8, a binary subtype 2 whose inner length
//! is off, duplicate field names or regex flags in any order are all legal to store and must
//! reach the target unchanged, so nothing here validates or decodes a value. Only framing
//! (lengths and terminators) is checked: that is what separates a stored document from a
//! corrupt byte stream.

use anyhow::{bail, Context, Result};
use mongodb::bson::RawDocumentBuf;

/// One element of a document: its type byte, field name bytes and value bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elem<'a> {
    pub kind: u8,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

impl<'a> Elem<'a> {
    /// The field name, lossily (names of the fields we look up are ASCII).
    pub fn key_text(&self) -> std::borrow::Cow<'a, str> {
        String::from_utf8_lossy(self.key)
    }

    /// The value as an embedded document's bytes (type 0x03 or 0x04).
    pub fn as_doc(&self) -> Option<&'a [u8]> {
        matches!(self.kind, 0x03 | 0x04).then_some(self.value)
    }

    /// A UTF-8 string value (type 0x02); None for other types or invalid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        if self.kind != 0x02 || self.value.len() < 5 {
            return None;
        }
        std::str::from_utf8(&self.value[4..self.value.len() - 1]).ok()
    }
}

fn i32_at(b: &[u8], at: usize) -> Result<usize> {
    let s = b.get(at..at + 4).context("BSON value truncated")?;
    let n = i32::from_le_bytes([s[0], s[1], s[2], s[3]]);
    if n < 0 {
        bail!("negative BSON length {n}");
    }
    Ok(n as usize)
}

fn cstring_len(b: &[u8], at: usize) -> Result<usize> {
    b.get(at..)
        .and_then(|s| s.iter().position(|&c| c == 0))
        .context("BSON cstring without terminator")
}

/// The length of a value of type `kind` starting at `at` in `b`: framing only.
pub fn value_len(kind: u8, b: &[u8], at: usize) -> Result<usize> {
    Ok(match kind {
        0x01 | 0x09 | 0x11 | 0x12 => 8,
        0x10 => 4,
        0x13 => 16,
        0x07 => 12,
        0x08 => 1,
        0x06 | 0x0A | 0x7F | 0xFF => 0,
        0x02 | 0x0D | 0x0E => {
            let n = i32_at(b, at)?;
            if n < 1 || b.get(at + 4 + n - 1) != Some(&0) {
                bail!("BSON string without terminator");
            }
            4 + n
        }
        0x03 | 0x04 | 0x0F => {
            let n = i32_at(b, at)?;
            if n < 5 {
                bail!("BSON length {n} too small");
            }
            n
        }
        0x05 => 4 + 1 + i32_at(b, at)?,
        0x0B => {
            let p = cstring_len(b, at)?;
            let o = cstring_len(b, at + p + 1)?;
            p + 1 + o + 1
        }
        0x0C => 4 + i32_at(b, at)? + 12,
        other => bail!("unknown BSON type 0x{other:02x}"),
    })
}

/// The elements of a document, in order; an error when its framing is broken.
pub fn elements(doc: &[u8]) -> Result<Vec<Elem<'_>>> {
    let mut out = Vec::new();
    for e in iter(doc) {
        out.push(e?);
    }
    Ok(out)
}

/// The elements of a document, lazily.
pub fn iter(doc: &[u8]) -> impl Iterator<Item = Result<Elem<'_>>> {
    let framed = check_frame(doc);
    let mut at = 4usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        if let Err(e) = &framed {
            failed = true;
            return Some(Err(anyhow::anyhow!("{e:#}")));
        }
        let kind = *doc.get(at)?;
        if kind == 0 {
            if at + 1 != doc.len() {
                failed = true;
                return Some(Err(anyhow::anyhow!(
                    "BSON document ends early, at byte {at}"
                )));
            }
            return None;
        }
        let r = (|| {
            let klen = cstring_len(doc, at + 1)?;
            let key = &doc[at + 1..at + 1 + klen];
            let vat = at + 1 + klen + 1;
            let vlen = value_len(kind, doc, vat)?;
            // The last byte is the document's terminator, never part of a value.
            let value = doc
                .get(vat..vat + vlen)
                .filter(|_| vat + vlen < doc.len())
                .context("BSON value runs past its document")?;
            at = vat + vlen;
            Ok(Elem { kind, key, value })
        })();
        if r.is_err() {
            failed = true;
        }
        Some(r)
    })
}

/// A document's length prefix matches its bytes and it ends with a 0.
pub fn check_frame(doc: &[u8]) -> Result<()> {
    let n = i32_at(doc, 0)?;
    if n != doc.len() || n < 5 || doc[n - 1] != 0 {
        bail!(
            "BSON document length {n} does not match its {} bytes",
            doc.len()
        );
    }
    Ok(())
}

/// The first element named `key`.
pub fn find<'a>(doc: &'a [u8], key: &str) -> Result<Option<Elem<'a>>> {
    for e in iter(doc) {
        let e = e?;
        if e.key == key.as_bytes() {
            return Ok(Some(e));
        }
    }
    Ok(None)
}

/// Builds a document from raw elements (command documents around raw user documents).
#[derive(Debug, Default, Clone)]
pub struct Builder {
    buf: Vec<u8>,
}

impl Builder {
    pub fn new() -> Builder {
        Builder::with_capacity(64)
    }

    pub fn with_capacity(n: usize) -> Builder {
        let mut buf = Vec::with_capacity(n + 5);
        buf.extend_from_slice(&[0, 0, 0, 0]);
        Builder { buf }
    }

    /// The bytes so far plus the terminator and this much more.
    pub fn len(&self) -> usize {
        self.buf.len() + 1
    }

    pub fn is_empty(&self) -> bool {
        self.buf.len() == 4
    }

    /// An element of any type from its raw value bytes (copied as they are).
    pub fn raw(&mut self, key: &[u8], kind: u8, value: &[u8]) -> &mut Self {
        self.buf.push(kind);
        self.buf.extend_from_slice(key);
        self.buf.push(0);
        self.buf.extend_from_slice(value);
        self
    }

    pub fn elem(&mut self, e: &Elem<'_>) -> &mut Self {
        self.raw(e.key, e.kind, e.value)
    }

    pub fn doc(&mut self, key: &str, doc: &[u8]) -> &mut Self {
        self.raw(key.as_bytes(), 0x03, doc)
    }

    pub fn array(&mut self, key: &str, arr: &[u8]) -> &mut Self {
        self.raw(key.as_bytes(), 0x04, arr)
    }

    /// An array of documents (keys "0", "1", …) written in place, in one pass: an insert
    /// command's `documents` straight from a batch, without an array built first.
    pub fn doc_array(&mut self, key: &str, docs: &[&[u8]]) -> &mut Self {
        let body: usize = docs
            .iter()
            .enumerate()
            .map(|(i, d)| array_elem_cost(i, d.len()))
            .sum();
        self.buf.reserve(key.len() + 2 + 4 + body + 1);
        self.buf.push(0x04);
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.push(0);
        self.buf
            .extend_from_slice(&((4 + body + 1) as i32).to_le_bytes());
        for (i, d) in docs.iter().enumerate() {
            self.buf.push(0x03);
            push_index(&mut self.buf, i);
            self.buf.push(0);
            self.buf.extend_from_slice(d);
        }
        self.buf.push(0);
        self
    }

    pub fn str(&mut self, key: &str, s: &str) -> &mut Self {
        self.raw(key.as_bytes(), 0x02, &string_value(s.as_bytes()))
    }

    pub fn bool(&mut self, key: &str, b: bool) -> &mut Self {
        self.raw(key.as_bytes(), 0x08, &[u8::from(b)])
    }

    pub fn i32(&mut self, key: &str, n: i32) -> &mut Self {
        self.raw(key.as_bytes(), 0x10, &n.to_le_bytes())
    }

    pub fn finish_bytes(mut self) -> Vec<u8> {
        self.buf.push(0);
        let n = self.buf.len() as i32;
        self.buf[0..4].copy_from_slice(&n.to_le_bytes());
        self.buf
    }

    pub fn finish(self) -> RawDocumentBuf {
        // Framing is ours and correct; from_bytes checks only that.
        RawDocumentBuf::from_bytes(self.finish_bytes()).expect("a framed document")
    }
}

/// A BSON string value (length, bytes, terminator) from raw bytes, UTF-8 or not.
pub fn string_value(b: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(b.len() + 5);
    v.extend_from_slice(&((b.len() + 1) as i32).to_le_bytes());
    v.extend_from_slice(b);
    v.push(0);
    v
}

/// `{locale: "simple"}`: matching an `_id` must compare bytes, whatever default collation
/// the collection has (under a case-insensitive one `"A"` would also match `"a"`).
pub fn simple_collation() -> Vec<u8> {
    let mut b = Builder::new();
    b.str("locale", "simple");
    b.finish_bytes()
}

/// Builds an array of documents (keys "0", "1", …).
#[derive(Debug, Default)]
pub struct ArrayBuilder {
    inner: Builder,
    n: usize,
}

impl ArrayBuilder {
    pub fn new() -> ArrayBuilder {
        ArrayBuilder {
            inner: Builder::new(),
            n: 0,
        }
    }

    pub fn push_doc(&mut self, doc: &[u8]) {
        let buf = &mut self.inner.buf;
        buf.push(0x03);
        push_index(buf, self.n);
        buf.push(0);
        buf.extend_from_slice(doc);
        self.n += 1;
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Bytes the array takes so far (with its terminator).
    pub fn bytes(&self) -> usize {
        self.inner.len()
    }

    pub fn finish_bytes(self) -> Vec<u8> {
        self.inner.finish_bytes()
    }
}

/// Bytes an array element holding a document of `doc_len` bytes costs at index `i`.
pub fn array_elem_cost(i: usize, doc_len: usize) -> usize {
    1 + digits(i) + 1 + doc_len
}

/// Decimal digits of `i` (an array key's length).
fn digits(mut i: usize) -> usize {
    let mut n = 1;
    while i >= 10 {
        i /= 10;
        n += 1;
    }
    n
}

/// Append `i` in decimal (an array key) without formatting machinery: it runs once per
/// document of every insert.
fn push_index(buf: &mut Vec<u8>, mut i: usize) {
    let mut tmp = [0u8; 20];
    let mut at = tmp.len();
    loop {
        at -= 1;
        tmp[at] = b'0' + (i % 10) as u8;
        i /= 10;
        if i == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_array_in_place_equals_the_array_builder() {
        let docs: Vec<Vec<u8>> = (0..123)
            .map(|i| {
                let mut b = Builder::new();
                b.i32("_id", i);
                b.finish_bytes()
            })
            .collect();
        let slices: Vec<&[u8]> = docs.iter().map(|d| d.as_slice()).collect();
        let mut arr = ArrayBuilder::new();
        for d in &slices {
            arr.push_doc(d);
        }
        let mut a = Builder::new();
        a.str("insert", "c").array("documents", &arr.finish_bytes());
        let mut b = Builder::new();
        b.str("insert", "c").doc_array("documents", &slices);
        let (a, b) = (a.finish(), b.finish());
        assert_eq!(a.as_bytes(), b.as_bytes());
        let parsed = a.get_array("documents").unwrap();
        assert_eq!(parsed.into_iter().count(), 123);
        assert_eq!(digits(0), 1);
        assert_eq!(digits(9), 1);
        assert_eq!(digits(10), 2);
        assert_eq!(digits(100_000), 6);
    }

    /// {a: "\xff", a: 1, r: /x/smi}: legal to store, awkward to decode.
    fn odd() -> Vec<u8> {
        let mut b = Builder::new();
        b.raw(b"a", 0x02, &[2, 0, 0, 0, 0xff, 0]);
        b.i32("a", 1);
        b.raw(b"r", 0x0B, b"x\0smi\0");
        b.finish_bytes()
    }

    #[test]
    fn walks_what_decoders_refuse() {
        let d = odd();
        let es = elements(&d).unwrap();
        assert_eq!(es.len(), 3);
        assert_eq!(es[0].value, &[2, 0, 0, 0, 0xff, 0]);
        assert_eq!(es[1].key, b"a");
        assert_eq!(es[2].value, b"x\0smi\0");
        assert_eq!(find(&d, "r").unwrap().unwrap().kind, 0x0B);
        assert!(find(&d, "zz").unwrap().is_none());
    }

    #[test]
    fn rebuilding_keeps_every_byte() {
        let d = odd();
        let mut b = Builder::new();
        for e in elements(&d).unwrap() {
            b.elem(&e);
        }
        assert_eq!(b.finish_bytes(), d);
    }

    #[test]
    fn broken_framing_is_an_error() {
        let mut d = odd();
        d[0] += 1;
        assert!(elements(&d).is_err());
        let mut d = odd();
        let n = d.len();
        d[n - 2] = 7; // the regex's options lose their terminator
        assert!(elements(&d).is_err());
    }

    #[test]
    fn arrays_of_documents() {
        let mut a = ArrayBuilder::new();
        let d = odd();
        a.push_doc(&d);
        a.push_doc(&d);
        let before = a.bytes();
        let bytes = a.finish_bytes();
        assert_eq!(bytes.len(), before);
        let es = elements(&bytes).unwrap();
        assert_eq!(es[1].key, b"1");
        assert_eq!(es[1].value, &d[..]);
        assert_eq!(array_elem_cost(10, 5), 1 + 2 + 1 + 5);
    }
}
