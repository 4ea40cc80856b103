//! MongoDB's sort order of BSON values, as the `_id` index orders them (simple collation),
//! so that two sides read in `_id` order can be merged in one pass: the smaller `_id` is
//! the one the other side lacks. Values are compared from their bytes (never decoded):
//! first by the server's canonical type order (`canonicalizeBSONType`), then within the
//! type as the server's `compareElementValues` does. Numbers of different types compare
//! exactly by value (`1` and `1.0` are the same index key, which `verify` then reports as
//! a changed type); NaN equals NaN and sorts below every other number.

use std::cmp::Ordering;

use mongodb::bson::Bson;

use super::raw::{self, le_i32, ty, Element};

/// The server's canonical type order: MinKey < undefined < null < numbers < string and
/// symbol < object < array < binData < objectId < bool < date < timestamp < regex <
/// dbPointer < javascript < javascriptWithScope < MaxKey.
pub fn canonical(t: u8) -> i32 {
    match t {
        ty::MIN_KEY => -1,
        ty::UNDEFINED => 0,
        ty::NULL => 5,
        ty::DOUBLE | ty::INT32 | ty::INT64 | ty::DECIMAL128 => 10,
        ty::STRING | ty::SYMBOL => 15,
        ty::DOCUMENT => 20,
        ty::ARRAY => 25,
        ty::BINARY => 30,
        ty::OBJECT_ID => 35,
        ty::BOOL => 40,
        ty::DATE => 45,
        ty::TIMESTAMP => 47,
        ty::REGEX => 50,
        ty::DB_POINTER => 55,
        ty::CODE => 60,
        ty::CODE_W_SCOPE => 65,
        ty::MAX_KEY => 127,
        _ => 200,
    }
}

fn i64_at(v: &[u8]) -> i64 {
    i64::from_le_bytes(v[..8].try_into().unwrap_or([0; 8]))
}

fn u64_at(v: &[u8]) -> u64 {
    u64::from_le_bytes(v[..8].try_into().unwrap_or([0; 8]))
}

fn f64_at(v: &[u8]) -> f64 {
    f64::from_le_bytes(v[..8].try_into().unwrap_or([0; 8]))
}

/// Two documents (or arrays) as `BSONObj::woCompare` with field names: element by
/// element, each by canonical type, then field name, then value; the shorter is smaller.
pub fn compare_docs(a: &[u8], b: &[u8]) -> Ordering {
    let (mut ia, mut ib) = (raw::elements(a), raw::elements(b));
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                // A malformed document cannot come from the server; order it by bytes.
                let (Ok(x), Ok(y)) = (x, y) else {
                    return a.cmp(b);
                };
                let o = canonical(x.ty)
                    .cmp(&canonical(y.ty))
                    .then_with(|| x.key.cmp(y.key))
                    .then_with(|| compare_values(&x, &y));
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

/// The order of two elements' values (keys ignored), as in an index on them.
pub fn compare_elements(a: &Element, b: &Element) -> Ordering {
    canonical(a.ty)
        .cmp(&canonical(b.ty))
        .then_with(|| compare_values(a, b))
}

/// Two values of the same canonical type.
fn compare_values(a: &Element, b: &Element) -> Ordering {
    let (x, y) = (a.value, b.value);
    match canonical(a.ty) {
        10 => numbers::compare(a, b),
        // string/symbol: bytes then length (memcmp, then the longer is greater).
        15 | 60 => a.str_bytes().cmp(&b.str_bytes()),
        20 | 25 => compare_docs(x, y),
        // binData: length first, then subtype and bytes.
        30 => le_i32(x, 0)
            .cmp(&le_i32(y, 0))
            .then_with(|| x.get(4..).cmp(&y.get(4..))),
        35 => x.cmp(y),
        40 => x.cmp(y),
        45 => i64_at(x).cmp(&i64_at(y)),
        // timestamp: unsigned (seconds in the high half, increment in the low).
        47 => u64_at(x).cmp(&u64_at(y)),
        // regex: pattern then options, each a C string.
        50 => {
            let split = |v: &[u8]| -> (Vec<u8>, Vec<u8>) {
                let mut parts = v.split(|&c| c == 0);
                (
                    parts.next().unwrap_or_default().to_vec(),
                    parts.next().unwrap_or_default().to_vec(),
                )
            };
            split(x).cmp(&split(y))
        }
        // dbPointer: the value's size, then its bytes.
        55 => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
        // javascriptWithScope: the code, then the scope as a document.
        65 => a
            .str_bytes()
            .cmp(&b.str_bytes())
            .then_with(|| compare_docs(a.embedded().unwrap_or(&[]), b.embedded().unwrap_or(&[]))),
        // MinKey, MaxKey, null, undefined: one value each.
        _ => Ordering::Equal,
    }
}

/// The order of two decoded values in an index on them (simple collation).
pub fn compare(a: &Bson, b: &Bson) -> Ordering {
    let (x, y) = (raw::encode(a), raw::encode(b));
    match (raw::encoded(&x), raw::encoded(&y)) {
        (Some(p), Some(q)) => compare_elements(&p, &q),
        _ => x.cmp(&y),
    }
}

/// Exact comparison of numbers across int, long, double and decimal, as the server's
/// `compareElementValues` does (it compares a decimal with a double exactly, too).
mod numbers {
    use super::*;

    /// A number as sign, decimal digits and exponent: value = digits × 10^exp.
    #[derive(Debug, PartialEq)]
    enum Exact {
        NaN,
        Inf(bool),
        /// Negative?, digits without leading or trailing zeros (empty: zero), exponent.
        Finite(bool, Vec<u8>, i64),
    }

    fn finite(neg: bool, digits: &[u8], exp: i64) -> Exact {
        let start = digits
            .iter()
            .position(|&d| d != b'0')
            .unwrap_or(digits.len());
        let digits = &digits[start..];
        let end = digits.iter().rposition(|&d| d != b'0').map_or(0, |i| i + 1);
        let exp = exp + (digits.len() - end) as i64;
        let digits = digits[..end].to_vec();
        // Zero has no sign and no exponent (-0.0 == 0 == 0E-5).
        let (neg, exp) = match digits.is_empty() {
            true => (false, 0),
            false => (neg, exp),
        };
        Exact::Finite(neg, digits, exp)
    }

    fn from_f64(f: f64) -> Exact {
        if f.is_nan() {
            return Exact::NaN;
        }
        if f.is_infinite() {
            return Exact::Inf(f < 0.0);
        }
        // Every double is a finite decimal of at most 767 significant digits; Rust's
        // formatting with that precision is exact.
        let s = format!("{:.800e}", f.abs());
        let (mantissa, e) = s.split_once('e').unwrap_or((&s, "0"));
        let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
        let e: i64 = e.parse().unwrap_or(0);
        let exp = e - (digits.len() as i64 - 1);
        finite(f < 0.0, &digits, exp)
    }

    fn from_i64(n: i64) -> Exact {
        finite(n < 0, n.unsigned_abs().to_string().as_bytes(), 0)
    }

    /// IEEE 754-2008 decimal128, binary integer decimal encoding (BSON's).
    fn from_decimal(v: &[u8]) -> Exact {
        let low = u64_at(v);
        let high = u64_at(&v[8..]);
        let neg = high >> 63 == 1;
        let combination = (high >> 58) & 0x1F;
        if combination == 0x1F {
            return Exact::NaN;
        }
        if combination == 0x1E {
            return Exact::Inf(neg);
        }
        let (exponent, coefficient) = if (high >> 61) & 3 == 3 {
            // The large form's coefficient exceeds 10^34 - 1: non-canonical, so zero.
            (((high >> 47) & 0x3FFF) as i64, 0u128)
        } else {
            let c = (u128::from(high & 0x1_FFFF_FFFF_FFFF) << 64) | u128::from(low);
            let c = if c > 9_999_999_999_999_999_999_999_999_999_999 {
                0
            } else {
                c
            };
            (((high >> 49) & 0x3FFF) as i64, c)
        };
        finite(neg, coefficient.to_string().as_bytes(), exponent - 6176)
    }

    fn exact(e: &Element) -> Exact {
        match e.ty {
            ty::INT32 => from_i64(le_i32(e.value, 0).unwrap_or(0).into()),
            ty::INT64 => from_i64(i64_at(e.value)),
            ty::DOUBLE => from_f64(f64_at(e.value)),
            _ => from_decimal(e.value),
        }
    }

    fn rank(e: &Exact) -> i8 {
        match e {
            Exact::NaN => 0,
            Exact::Inf(true) => 1,
            Exact::Finite(true, ..) => 2,
            Exact::Finite(false, d, _) if d.is_empty() => 3,
            Exact::Finite(false, ..) => 4,
            Exact::Inf(false) => 5,
        }
    }

    fn compare_exact(a: &Exact, b: &Exact) -> Ordering {
        let by_rank = rank(a).cmp(&rank(b));
        if by_rank != Ordering::Equal {
            return by_rank;
        }
        let (Exact::Finite(neg, x, ex), Exact::Finite(_, y, ey)) = (a, b) else {
            return Ordering::Equal;
        };
        // Magnitudes: the position of the leading digit, then the digits (trailing zeros
        // are stripped, so a prefix is the smaller number).
        let lead = |d: &Vec<u8>, e: i64| e + d.len() as i64;
        let magnitude = lead(x, *ex).cmp(&lead(y, *ey)).then_with(|| x.cmp(y));
        if *neg {
            magnitude.reverse()
        } else {
            magnitude
        }
    }

    fn as_i64(e: &Element) -> Option<i64> {
        match e.ty {
            ty::INT32 => le_i32(e.value, 0).map(i64::from),
            ty::INT64 => Some(i64_at(e.value)),
            _ => None,
        }
    }

    fn compare_doubles(x: f64, y: f64) -> Ordering {
        match (x.is_nan(), y.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            _ => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        }
    }

    pub fn compare(a: &Element, b: &Element) -> Ordering {
        // The common cases without building exact decimals.
        match (as_i64(a), as_i64(b), a.ty, b.ty) {
            (Some(x), Some(y), ..) => return x.cmp(&y),
            (None, None, ty::DOUBLE, ty::DOUBLE) => {
                return compare_doubles(f64_at(a.value), f64_at(b.value))
            }
            _ => {}
        }
        compare_exact(&exact(a), &exact(b))
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use mongodb::bson::Decimal128;

        fn e(v: Bson) -> Exact {
            let b = raw::encode(&v);
            exact(&raw::encoded(&b).unwrap())
        }

        #[test]
        fn exact_forms() {
            assert_eq!(e(Bson::Int32(-120)), Exact::Finite(true, b"12".to_vec(), 1));
            assert_eq!(
                e(Bson::Double(0.5)),
                Exact::Finite(false, b"5".to_vec(), -1)
            );
            assert_eq!(e(Bson::Double(-0.0)), Exact::Finite(false, vec![], 0));
            let d = |s: &str| Bson::Decimal128(s.parse::<Decimal128>().unwrap());
            assert_eq!(e(d("1.00")), Exact::Finite(false, b"1".to_vec(), 0));
            assert_eq!(e(d("-2.5E+3")), Exact::Finite(true, b"25".to_vec(), 2));
            assert_eq!(e(d("NaN")), Exact::NaN);
            assert_eq!(e(d("-Infinity")), Exact::Inf(true));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{
        doc, oid::ObjectId, spec::BinarySubtype, Binary, DateTime, Decimal128,
        JavaScriptCodeWithScope, Regex, Timestamp,
    };

    fn dec(s: &str) -> Bson {
        Bson::Decimal128(s.parse::<Decimal128>().unwrap())
    }

    fn pointer(ns: &str, oid: u8) -> Bson {
        // DbPointer has no public constructor; read one from Extended JSON.
        let id = ObjectId::from_bytes([oid; 12]).to_hex();
        Bson::try_from(serde_json::json!({ "$dbPointer": { "$ref": ns, "$id": { "$oid": id } } }))
            .unwrap()
    }

    #[test]
    fn index_order_across_types() {
        let ordered = vec![
            Bson::MinKey,
            Bson::Undefined,
            Bson::Null,
            Bson::Double(f64::NAN),
            Bson::Double(f64::NEG_INFINITY),
            dec("-1E+400"),
            Bson::Int64(i64::MIN),
            Bson::Double(-1.5),
            Bson::Int32(1),
            dec("1.25"),
            Bson::Int64(2),
            Bson::Double(2.5),
            Bson::Int64(9_007_199_254_740_993),
            Bson::Double(1e300),
            dec("1E+400"),
            Bson::Double(f64::INFINITY),
            Bson::String("a".into()),
            Bson::Symbol("b".into()),
            Bson::String("b\0".into()),
            Bson::Document(doc! { "k": 1 }),
            Bson::Document(doc! { "k": 1, "z": "a" }),
            Bson::Document(doc! { "k": "a" }),
            Bson::Array(vec![Bson::Int32(1)]),
            Bson::Binary(Binary {
                subtype: BinarySubtype::UserDefined(0x80),
                bytes: vec![9],
            }),
            Bson::Binary(Binary {
                subtype: BinarySubtype::Generic,
                bytes: vec![1, 1],
            }),
            Bson::ObjectId(ObjectId::from_bytes([0; 12])),
            Bson::Boolean(false),
            Bson::Boolean(true),
            Bson::DateTime(DateTime::from_millis(-5)),
            Bson::DateTime(DateTime::from_millis(5)),
            Bson::Timestamp(Timestamp {
                time: 1,
                increment: 9,
            }),
            Bson::Timestamp(Timestamp {
                time: u32::MAX,
                increment: 1,
            }),
            Bson::RegularExpression(Regex {
                pattern: "a".into(),
                options: "i".into(),
            }),
            pointer("a", 2),
            pointer("b", 1),
            pointer("aa", 0),
            Bson::JavaScriptCode("a".into()),
            Bson::JavaScriptCode("b".into()),
            Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope {
                code: "a".into(),
                scope: doc! { "x": 2 },
            }),
            Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope {
                code: "a".into(),
                scope: doc! { "y": 1 },
            }),
            Bson::MaxKey,
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(compare(a, b), i.cmp(&j), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn numbers_by_value() {
        let eq = |a: Bson, b: Bson| assert_eq!(compare(&a, &b), Ordering::Equal, "{a:?} {b:?}");
        eq(Bson::Int32(1), Bson::Double(1.0));
        eq(Bson::Int64(1), dec("1.000"));
        eq(Bson::Double(0.1), Bson::Double(0.1));
        eq(Bson::Double(f64::NAN), dec("NaN"));
        eq(Bson::Double(-0.0), Bson::Int32(0));
        eq(Bson::Double(f64::INFINITY), dec("Infinity"));
        assert_eq!(
            compare(&Bson::Int64(i64::MAX), &Bson::Int64(i64::MAX - 1)),
            Ordering::Greater
        );
        // 2^63 as a double is above every long, though i64::MAX rounds to it.
        assert_eq!(
            compare(&Bson::Int64(i64::MAX), &Bson::Double(i64::MAX as f64)),
            Ordering::Less
        );
        // 0.1 as a double is a little more than decimal 0.1.
        assert_eq!(compare(&dec("0.1"), &Bson::Double(0.1)), Ordering::Less);
        assert_eq!(
            compare(&Bson::Double(f64::NAN), &Bson::Int32(-9)),
            Ordering::Less
        );
    }
}
