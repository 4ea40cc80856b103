//! How the tail applies independent documents at once. Between two barriers (DDL, a
//! transaction) a batch's document changes are split into lanes by a hash of the target
//! namespace and the document's `_id`, so every change of one document lands in one lane,
//! in the source's order. Inside a lane, changes are grouped into waves: a document's
//! statement joins the wave of its previous statement when it is of the same kind (one
//! ordered command keeps their order), else the next wave. A wave is sent as one ordered
//! command per namespace and kind, waves one after another: a lane costs round trips per
//! wave, not per change of kind, while each document still sees its changes in order.
//!
//! The hash is of the `_id` as the server's `_id` index compares it, not of its bytes:
//! `1`, `NumberLong(1)` and `1.0` are one document to the server, and two lanes writing
//! them at once could apply its changes out of order. So numbers hash by value, documents
//! field by field; a value this does not model (or a fraction, an infinity, a very large
//! number) hashes to one shared bucket, which only costs parallelism.

use std::hash::{DefaultHasher, Hasher};

use super::event::RawId;
use crate::namespace::Namespace;
use crate::rawbson;

/// Lanes applied at once. More than the cores: a lane mostly waits for its command's
/// round trip (a few ms on loopback, tens across a network), and the target's server
/// threads do the work.
pub const LANES: usize = 8;

/// The key of one document on the target: equal for changes the server applies to the
/// same document.
pub fn doc_key(ns: &Namespace, id: &RawId) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(ns.db.as_bytes());
    h.write_u8(0);
    h.write(ns.coll.as_bytes());
    h.write_u8(0);
    if !feed(&mut h, id.kind, &id.value) {
        // One bucket for every value not modelled (its namespace still tells lanes apart).
        h.write_u8(0xee);
    }
    h.finish()
}

/// The lane a document's changes go to.
pub fn lane_of(key: u64) -> usize {
    // The low bits of SipHash are as good as any.
    (key % LANES as u64) as usize
}

/// Feed `h` a form of the value that is the same for values the server holds equal under
/// the simple collation; false for a value not modelled (the caller then uses one shared
/// bucket, which keeps the order of all of them).
fn feed(h: &mut DefaultHasher, kind: u8, value: &[u8]) -> bool {
    match kind {
        0x01 | 0x10 | 0x12 | 0x13 => {
            match integer(kind, value) {
                Some(n) => {
                    h.write_u8(1);
                    h.write_i64(n);
                }
                // Fractions, infinities, NaN and numbers past i64 share one bucket: a
                // double and a decimal of equal value then meet there.
                None => h.write_u8(2),
            }
            true
        }
        // Strings (and the deprecated symbol, which compares as one) by their bytes: the
        // simple collation compares bytes.
        0x02 | 0x0E => {
            h.write_u8(3);
            h.write(value);
            true
        }
        0x03 => {
            h.write_u8(4);
            for e in rawbson::iter(value) {
                let Ok(e) = e else { return false };
                h.write(e.key);
                h.write_u8(0);
                if !feed(h, e.kind, e.value) {
                    return false;
                }
            }
            h.write_u8(0xff);
            true
        }
        // Compared by value bytes: binary (length, subtype, bytes), ObjectId, bool, date,
        // timestamp.
        0x05 | 0x07 | 0x08 | 0x09 | 0x11 => {
            h.write_u8(kind);
            h.write(value);
            true
        }
        _ => false,
    }
}

/// A number's value when it is an integer that fits an i64 (whatever its BSON type).
fn integer(kind: u8, v: &[u8]) -> Option<i64> {
    match kind {
        0x10 => Some(i64::from(i32::from_le_bytes(v.get(..4)?.try_into().ok()?))),
        0x12 => Some(i64::from_le_bytes(v.get(..8)?.try_into().ok()?)),
        0x01 => {
            let f = f64::from_le_bytes(v.get(..8)?.try_into().ok()?);
            // -2^63 is an i64 and exact as a double; 2^63 is not an i64.
            let limit = -(i64::MIN as f64);
            (f.is_finite() && f.fract() == 0.0 && (-limit..limit).contains(&f)).then_some(f as i64)
        }
        0x13 => decimal_integer(v.get(..16)?.try_into().ok()?),
        _ => None,
    }
}

/// Decimal128 (IEEE 754-2008, binary integer decimal) as an integer, when it is one.
fn decimal_integer(b: [u8; 16]) -> Option<i64> {
    let bits = u128::from_le_bytes(b);
    let negative = bits >> 127 == 1;
    let (exponent, coefficient) = if (bits >> 125) & 3 == 3 {
        if (bits >> 123) & 3 == 3 {
            return None; // infinity or NaN
        }
        // The form for coefficients past 2^113: all non-canonical, read as zero.
        (0, 0u128)
    } else {
        (
            ((bits >> 113) & 0x3fff) as i32 - 6176,
            bits & ((1u128 << 113) - 1),
        )
    };
    if coefficient == 0 {
        return Some(0);
    }
    let magnitude: u128 = if exponent >= 0 {
        let mut m = coefficient;
        for _ in 0..exponent {
            m = m.checked_mul(10)?;
        }
        m
    } else {
        let mut m = coefficient;
        for _ in 0..-exponent {
            if m % 10 != 0 {
                return None;
            }
            m /= 10;
        }
        m
    };
    let m = i128::try_from(magnitude).ok()?;
    i64::try_from(if negative { -m } else { m }).ok()
}

/// One statement of a change: its kind, its bytes, the document it is about and the source
/// time of its change.
pub struct Stmt<K> {
    pub kind: K,
    pub bytes: Vec<u8>,
    pub id: RawId,
    pub time: mongodb::bson::Timestamp,
}

/// Statements of one kind for one namespace, in the source's order.
pub struct Group<K> {
    pub source: Namespace,
    pub kind: K,
    pub stmts: Vec<Stmt<K>>,
}

/// One lane: its waves, each a list of groups.
pub struct Lane<K> {
    /// Per document: the wave and kind of its last statement.
    docs: std::collections::HashMap<u64, (usize, K)>,
    pub waves: Vec<Vec<Group<K>>>,
}

impl<K: Copy + PartialEq> Default for Lane<K> {
    fn default() -> Self {
        Lane {
            docs: Default::default(),
            waves: Vec::new(),
        }
    }
}

impl<K: Copy + PartialEq> Lane<K> {
    pub fn is_empty(&self) -> bool {
        self.waves.is_empty()
    }

    /// Add a statement of the document `key` (in the source's order for that document).
    pub fn push(&mut self, key: u64, source: &Namespace, stmt: Stmt<K>) {
        let wave = match self.docs.get(&key) {
            None => 0,
            Some(&(w, k)) if k == stmt.kind => w,
            Some(&(w, _)) => w + 1,
        };
        self.docs.insert(key, (wave, stmt.kind));
        if self.waves.len() <= wave {
            self.waves.resize_with(wave + 1, Vec::new);
        }
        let groups = &mut self.waves[wave];
        match groups
            .iter_mut()
            .find(|g| g.kind == stmt.kind && g.source == *source)
        {
            Some(g) => g.stmts.push(stmt),
            None => groups.push(Group {
                source: source.clone(),
                kind: stmt.kind,
                stmts: vec![stmt],
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, Bson, Decimal128, RawDocumentBuf, Timestamp};

    fn id_of(v: Bson) -> RawId {
        let d = RawDocumentBuf::from_document(&doc! { "_id": v }).unwrap();
        let e = rawbson::find(d.as_bytes(), "_id").unwrap().unwrap();
        RawId::of(&e)
    }

    fn key(v: Bson) -> u64 {
        doc_key(&Namespace::new("d", "c"), &id_of(v))
    }

    fn dec(s: &str) -> Bson {
        Bson::Decimal128(s.parse::<Decimal128>().unwrap())
    }

    #[test]
    fn numbers_the_server_holds_equal_share_a_key() {
        let one = key(Bson::Int32(1));
        assert_eq!(one, key(Bson::Int64(1)));
        assert_eq!(one, key(Bson::Double(1.0)));
        assert_eq!(one, key(dec("1")));
        assert_eq!(one, key(dec("1.000")));
        assert_eq!(one, key(dec("0.1E1")));
        assert_eq!(key(Bson::Double(-0.0)), key(Bson::Int32(0)));
        assert_eq!(key(dec("-0")), key(Bson::Int32(0)));
        assert_eq!(key(Bson::Int64(-7_000_000_000)), key(dec("-7E9")));
        // Fractions share one bucket, so 0.5 and decimal 0.5 meet.
        assert_eq!(key(Bson::Double(0.5)), key(dec("0.5")));
        assert_eq!(key(Bson::Double(1e300)), key(dec("1E300")));
        // Different values, different keys (a collision would only cost parallelism).
        assert_ne!(one, key(Bson::Int32(2)));
        assert_ne!(one, key(Bson::String("1".into())));
        assert_ne!(key(Bson::String("a".into())), key(Bson::String("A".into())));
        // Embedded documents compare field by field, numbers by value.
        assert_eq!(
            key(Bson::Document(doc! { "a": 1, "b": "x" })),
            key(Bson::Document(doc! { "a": 1.0, "b": "x" }))
        );
        assert_ne!(
            key(Bson::Document(doc! { "a": 1, "b": "x" })),
            key(Bson::Document(doc! { "b": "x", "a": 1 }))
        );
        // The namespace is part of the key.
        assert_ne!(
            doc_key(&Namespace::new("d", "c"), &id_of(Bson::Int32(1))),
            doc_key(&Namespace::new("d", "e"), &id_of(Bson::Int32(1)))
        );
    }

    #[test]
    fn decimals() {
        assert_eq!(
            decimal_integer(*b"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"),
            Some(0)
        );
        let d = |s: &str| s.parse::<Decimal128>().unwrap().bytes();
        assert_eq!(decimal_integer(d("12345")), Some(12345));
        assert_eq!(decimal_integer(d("-12.3E1")), Some(-123));
        assert_eq!(decimal_integer(d("1.5")), None);
        assert_eq!(decimal_integer(d("Infinity")), None);
        assert_eq!(decimal_integer(d("NaN")), None);
        assert_eq!(decimal_integer(d("1E30")), None);
    }

    #[derive(Clone, Copy, PartialEq, Debug)]
    enum K {
        Up,
        Del,
    }

    fn st(kind: K, n: u8) -> Stmt<K> {
        Stmt {
            kind,
            bytes: vec![n],
            id: id_of(Bson::Int32(i32::from(n))),
            time: Timestamp {
                time: 1,
                increment: u32::from(n),
            },
        }
    }

    #[test]
    fn waves_keep_each_documents_order() {
        let ns = Namespace::new("d", "c");
        let mut lane = Lane::default();
        // Document 1: upsert, upsert, delete, upsert; document 2: delete; document 3: upsert.
        lane.push(1, &ns, st(K::Up, 10));
        lane.push(2, &ns, st(K::Del, 20));
        lane.push(1, &ns, st(K::Up, 11));
        lane.push(1, &ns, st(K::Del, 12));
        lane.push(3, &ns, st(K::Up, 30));
        lane.push(1, &ns, st(K::Up, 13));
        let shape: Vec<Vec<(K, Vec<u8>)>> = lane
            .waves
            .iter()
            .map(|w| {
                w.iter()
                    .map(|g| (g.kind, g.stmts.iter().map(|s| s.bytes[0]).collect()))
                    .collect()
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                vec![(K::Up, vec![10, 11, 30]), (K::Del, vec![20])],
                vec![(K::Del, vec![12])],
                vec![(K::Up, vec![13])],
            ]
        );
    }
}
