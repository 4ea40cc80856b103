//! Walking BSON bytes element by element without decoding values: what `verify` only
//! compares it never decodes, so a document the server stored with invalid UTF-8 (which
//! the server accepts from old drivers and `mongorestore`) is compared like any other,
//! and an `_id` of any type is ordered from its bytes (`compare::order`).

use anyhow::Result;
use mongodb::bson::serde_helpers::Utf8LossyDeserialization;
use mongodb::bson::{Bson, Document};

/// Element type bytes, as in the BSON spec.
pub mod ty {
    pub const DOUBLE: u8 = 0x01;
    pub const STRING: u8 = 0x02;
    pub const DOCUMENT: u8 = 0x03;
    pub const ARRAY: u8 = 0x04;
    pub const BINARY: u8 = 0x05;
    pub const UNDEFINED: u8 = 0x06;
    pub const OBJECT_ID: u8 = 0x07;
    pub const BOOL: u8 = 0x08;
    pub const DATE: u8 = 0x09;
    pub const NULL: u8 = 0x0A;
    pub const REGEX: u8 = 0x0B;
    pub const DB_POINTER: u8 = 0x0C;
    pub const CODE: u8 = 0x0D;
    pub const SYMBOL: u8 = 0x0E;
    pub const CODE_W_SCOPE: u8 = 0x0F;
    pub const INT32: u8 = 0x10;
    pub const TIMESTAMP: u8 = 0x11;
    pub const INT64: u8 = 0x12;
    pub const DECIMAL128: u8 = 0x13;
    pub const MIN_KEY: u8 = 0xFF;
    pub const MAX_KEY: u8 = 0x7F;
}

/// One element: its type byte, key bytes (no terminating NUL) and value bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element<'a> {
    pub ty: u8,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

impl Element<'_> {
    /// Type byte and value bytes: equal exactly when the two values are the same BSON.
    pub fn same_value(&self, other: &Element) -> bool {
        self.ty == other.ty && self.value == other.value
    }

    /// The key for people (lossy where it is not UTF-8).
    pub fn key_text(&self) -> String {
        String::from_utf8_lossy(self.key).into_owned()
    }

    /// The value decoded for display or a lookup; invalid UTF-8 is replaced, not an error.
    pub fn to_bson(&self) -> Bson {
        let mut bytes = Vec::with_capacity(self.value.len() + 8);
        let len = (4 + 1 + 1 + self.value.len() + 1) as i32;
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.push(self.ty);
        bytes.push(0); // the empty key
        bytes.extend_from_slice(self.value);
        bytes.push(0);
        mongodb::bson::from_slice::<Utf8LossyDeserialization<Document>>(&bytes)
            .ok()
            .and_then(|d| d.0.get("").cloned())
            .unwrap_or_else(|| Bson::String(format!("(unreadable value of type {:#04x})", self.ty)))
    }

    /// The embedded document or array bytes of a document, array or code-with-scope's scope.
    pub fn embedded(&self) -> Option<&[u8]> {
        match self.ty {
            ty::DOCUMENT | ty::ARRAY => Some(self.value),
            ty::CODE_W_SCOPE => {
                let code_len = le_i32(self.value, 4)? as usize;
                self.value.get(8 + code_len..)
            }
            _ => None,
        }
    }

    /// The string of a string, symbol or code value, without its terminating NUL.
    pub fn str_bytes(&self) -> Option<&[u8]> {
        match self.ty {
            ty::STRING | ty::SYMBOL | ty::CODE => {
                let n = le_i32(self.value, 0)? as usize;
                self.value.get(4..4 + n.checked_sub(1)?)
            }
            ty::CODE_W_SCOPE => {
                let n = le_i32(self.value, 4)? as usize;
                self.value.get(8..8 + n.checked_sub(1)?)
            }
            _ => None,
        }
    }

    /// BSON's name of the type, for messages.
    pub fn type_name(&self) -> &'static str {
        type_name(self.ty)
    }
}

pub fn type_name(t: u8) -> &'static str {
    match t {
        ty::DOUBLE => "double",
        ty::STRING => "string",
        ty::DOCUMENT => "object",
        ty::ARRAY => "array",
        ty::BINARY => "binData",
        ty::UNDEFINED => "undefined",
        ty::OBJECT_ID => "objectId",
        ty::BOOL => "bool",
        ty::DATE => "date",
        ty::NULL => "null",
        ty::REGEX => "regex",
        ty::DB_POINTER => "dbPointer",
        ty::CODE => "javascript",
        ty::SYMBOL => "symbol",
        ty::CODE_W_SCOPE => "javascriptWithScope",
        ty::INT32 => "int",
        ty::TIMESTAMP => "timestamp",
        ty::INT64 => "long",
        ty::DECIMAL128 => "decimal",
        ty::MIN_KEY => "minKey",
        ty::MAX_KEY => "maxKey",
        _ => "unknown",
    }
}

pub fn le_i32(b: &[u8], at: usize) -> Option<i32> {
    b.get(at..at + 4)
        .map(|s| i32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Iterate the elements of `doc` in their stored order (framing checked by the one
/// walker every raw path shares, `rawbson`); a malformed document yields one error and stops.
pub fn elements(doc: &[u8]) -> impl Iterator<Item = Result<Element<'_>>> {
    crate::rawbson::iter(doc).map(|r| {
        r.map(|e| Element {
            ty: e.kind,
            key: e.key,
            value: e.value,
        })
    })
}

/// The element named `key` of `doc`, if any.
pub fn field<'a>(doc: &'a [u8], key: &str) -> Result<Option<Element<'a>>> {
    for e in elements(doc) {
        let e = e?;
        if e.key == key.as_bytes() {
            return Ok(Some(e));
        }
    }
    Ok(None)
}

/// A value's bytes as a one-element document `{"": v}`, for comparing values of decoded
/// documents by their encoding (a NaN equals the same NaN, -0.0 is not 0.0).
pub fn encode(v: &Bson) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to memory fails only for a value BSON cannot hold (none reach here).
    let _ = mongodb::bson::doc! { "": v.clone() }.to_writer(&mut out);
    out
}

/// The one element of an `encode`d value.
pub fn encoded(bytes: &[u8]) -> Option<Element<'_>> {
    elements(bytes).next().and_then(|e| e.ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, RawDocumentBuf};

    #[test]
    fn walks_every_type_and_keeps_order() {
        let d = doc! { "b": 1, "a": "x", "c": { "d": [1, 2] }, "e": Bson::MaxKey, "f": mongodb::bson::Regex { pattern: "p".into(), options: "i".into() } };
        let raw = RawDocumentBuf::from_document(&d).unwrap();
        let keys: Vec<String> = elements(raw.as_bytes())
            .map(|e| e.unwrap().key_text())
            .collect();
        assert_eq!(keys, ["b", "a", "c", "e", "f"]);
        let c = field(raw.as_bytes(), "c").unwrap().unwrap();
        assert_eq!(c.to_bson(), Bson::Document(doc! { "d": [1, 2] }));
        assert!(elements(&raw.as_bytes()[..10]).any(|e| e.is_err()));
    }

    #[test]
    fn invalid_utf8_is_walked_and_shown_lossily() {
        // { s: "a\xff" }
        let bytes = [15u8, 0, 0, 0, 2, b's', 0, 3, 0, 0, 0, b'a', 0xff, 0, 0];
        let e = field(&bytes, "s").unwrap().unwrap();
        assert_eq!(e.str_bytes(), Some(&b"a\xff"[..]));
        assert_eq!(e.to_bson(), Bson::String("a\u{fffd}".into()));
    }
}
