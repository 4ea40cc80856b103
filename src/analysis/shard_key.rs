//! Judging candidate shard keys on a plain 6.0 replica set (MongoDB's `analyzeShardKey`
//! needs 7.0 and a sharded cluster): cardinality and the share of the most frequent value
//! (server-side `$group`), monotonicity (do the key's values grow in insertion order,
//! read in natural order), the distribution of documents over N shards as the balancer
//! would split them (ranges: cut at equal document counts, never inside one value; hashed:
//! uniform over the hash space), and the share of recorded queries that would target one
//! shard. Every pass streams; memory does not grow with the collection.

use anyhow::{Context, Result};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::AggregateOptions;
use mongodb::Client;
use serde::Serialize;

use super::esr;
use super::op::Op;

/// One field of a key: ascending, descending, or hashed.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyField {
    pub field: String,
    pub hashed: bool,
}

/// The shell's relaxed syntax as YAML reads it: `{_id:hashed}` is one plain scalar to YAML
/// (no space after the colon), so a space goes after every colon outside quotes.
fn spaced_colons(spec: &str) -> String {
    let mut out = String::with_capacity(spec.len() + 8);
    let mut quote: Option<char> = None;
    let mut chars = spec.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, ':') if chars.peek().is_some_and(|n| !n.is_whitespace()) => out.push(' '),
            _ => {}
        }
    }
    out
}

/// Parse `{user_id: 1}`, `{_id: hashed}`, `{created_at: 1, _id: 1}` (YAML flow mapping),
/// and the shell's `{_id:"hashed"}`, `{_id:hashed}`, `{"user_id":1}`.
pub fn parse_key(spec: &str) -> Result<Vec<KeyField>> {
    let v: serde_yaml::Value = serde_yaml::from_str(&spaced_colons(spec))
        .map_err(|e| crate::exit::usage(format!("shard key {spec:?}: {e}")))?;
    let m = v.as_mapping().ok_or_else(|| {
        crate::exit::usage(format!(
            "shard key {spec:?} must be a mapping like {{user_id: 1}}"
        ))
    })?;
    let mut out = Vec::new();
    for (k, v) in m {
        let field = k
            .as_str()
            .ok_or_else(|| {
                crate::exit::usage(format!("shard key {spec:?}: a field name must be text"))
            })?
            .to_string();
        let hashed = match v {
            serde_yaml::Value::String(s) if s == "hashed" => true,
            serde_yaml::Value::Number(n) if n.as_i64() == Some(1) || n.as_i64() == Some(-1) => {
                false
            }
            _ => {
                return Err(crate::exit::usage(format!(
                    "shard key {spec:?}: {field} must be 1, -1 or hashed"
                )))
            }
        };
        out.push(KeyField { field, hashed });
    }
    if out.is_empty() || out.iter().filter(|f| f.hashed).count() > 1 {
        return Err(crate::exit::usage(format!(
            "shard key {spec:?}: give at least one field and at most one hashed field"
        )));
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub key: String,
    pub documents: u64,
    pub cardinality: u64,
    /// Share of the documents holding the most frequent key value.
    pub top_value_share: f64,
    /// Share of consecutive documents (natural order) whose key does not decrease.
    pub increasing_share: f64,
    pub monotonic: bool,
    /// Share of the documents on each simulated shard.
    pub shards: Vec<f64>,
    /// The largest distance of a shard from an even share, in percentage points.
    pub max_skew_points: f64,
    /// Share of the recorded queries (by count) that would target one shard; None without any.
    pub targeted_share: Option<f64>,
}

fn group_id(key: &[KeyField]) -> Document {
    key.iter()
        .map(|f| {
            (
                f.field.replace('.', "\u{1}"),
                Bson::String(format!("${}", f.field)),
            )
        })
        .collect()
}

/// A value's place in the hash space, for a hashed field (uniform like MongoDB's own hash).
fn hash_of(v: &Bson) -> u64 {
    let bytes = mongodb::bson::to_vec(&doc! { "v": v.clone() }).unwrap_or_default();
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

/// Compare two key values for monotonicity (same type family: numbers, dates, strings, ObjectIds).
fn not_decreasing(a: &Bson, b: &Bson) -> bool {
    crate::compare::order::compare(a, b) != std::cmp::Ordering::Greater
}

pub async fn analyze(
    client: &Client,
    db: &str,
    coll: &str,
    key: &[KeyField],
    shards: usize,
    recorded: &[Op],
) -> Result<Verdict> {
    let c = client.database(db).collection::<Document>(coll);
    let ns = format!("{db}.{coll}");
    let total = c
        .count_documents(doc! {})
        .await
        .with_context(|| format!("counting {ns}"))?;
    let opts = AggregateOptions::builder().allow_disk_use(true).build();
    // Values in key order with their counts: cardinality, top value, range split.
    let mut groups = c
        .aggregate(vec![
            doc! { "$group": { "_id": group_id(key), "n": { "$sum": 1 } } },
            doc! { "$sort": { "_id": 1 } },
        ])
        .with_options(opts.clone())
        .await
        .with_context(|| format!("grouping {ns} by the key"))?;
    let hashed = key.iter().any(|f| f.hashed);
    let n_shards = shards.max(1);
    let mut per_shard = vec![0u64; n_shards];
    let (mut cardinality, mut top, mut filled, mut shard) = (0u64, 0u64, 0u64, 0usize);
    let target = total.div_ceil(n_shards as u64).max(1);
    while let Some(g) = groups
        .try_next()
        .await
        .with_context(|| format!("grouping {ns}"))?
    {
        let n = g
            .get_i32("n")
            .map(i64::from)
            .or_else(|_| g.get_i64("n"))
            .unwrap_or(0) as u64;
        cardinality += 1;
        top = top.max(n);
        if hashed {
            let h = hash_of(g.get("_id").unwrap_or(&Bson::Null));
            let s = (h / (u64::MAX / n_shards as u64 + 1)) as usize;
            per_shard[s.min(n_shards - 1)] += n;
        } else {
            // A chunk never splits one key value: the shard takes it whole, then the next
            // shard begins once this one holds its share.
            if filled >= target && shard + 1 < n_shards {
                shard += 1;
                filled = 0;
            }
            per_shard[shard] += n;
            filled += n;
        }
    }
    // Insertion order: the natural order of the collection.
    let first = &key[0].field;
    let mut cursor = c
        .find(doc! {})
        .projection(doc! { first.as_str(): 1, "_id": if first == "_id" { 1 } else { 0 } })
        .hint(mongodb::options::Hint::Keys(doc! { "$natural": 1 }))
        .await
        .with_context(|| format!("reading {ns} in natural order"))?;
    let (mut prev, mut pairs, mut up) = (None::<Bson>, 0u64, 0u64);
    while let Some(d) = cursor
        .try_next()
        .await
        .with_context(|| format!("reading {ns}"))?
    {
        let v = lookup(&d, first);
        if let Some(p) = &prev {
            pairs += 1;
            if not_decreasing(p, &v) {
                up += 1;
            }
        }
        prev = Some(v);
    }
    let increasing_share = if pairs == 0 {
        0.0
    } else {
        up as f64 / pairs as f64
    };
    let shares: Vec<f64> = per_shard
        .iter()
        .map(|n| {
            if total == 0 {
                0.0
            } else {
                *n as f64 / total as f64
            }
        })
        .collect();
    let even = 1.0 / n_shards as f64;
    let max_skew_points = shares
        .iter()
        .map(|s| (s - even).abs() * 100.0)
        .fold(0.0, f64::max);
    // Targeted: the query pins the key's first field to one value (or, for a range key,
    // bounds it), so mongos can route it to the shards holding that part.
    let mine: Vec<&Op> = recorded.iter().filter(|o| o.ns == ns).collect();
    let targeted_share = (!mine.is_empty()).then(|| {
        let hit = mine
            .iter()
            .filter(|o| {
                let p = esr::predicates(&o.filter);
                p.eq.contains(first) || (!hashed && p.range.contains(first))
            })
            .count();
        hit as f64 / mine.len() as f64
    });
    Ok(Verdict {
        key: key
            .iter()
            .map(|f| format!("{}: {}", f.field, if f.hashed { "hashed" } else { "1" }))
            .collect::<Vec<_>>()
            .join(", "),
        documents: total,
        cardinality,
        top_value_share: if total == 0 {
            0.0
        } else {
            top as f64 / total as f64
        },
        increasing_share,
        // A hashed key spreads inserts whatever the values do.
        monotonic: !hashed && pairs > 0 && increasing_share > 0.95,
        shards: shares,
        max_skew_points,
        targeted_share,
    })
}

/// A dotted field's value in a document (Null when absent).
fn lookup(d: &Document, path: &str) -> Bson {
    let mut cur = Bson::Document(d.clone());
    for part in path.split('.') {
        cur = match cur {
            Bson::Document(x) => x.get(part).cloned().unwrap_or(Bson::Null),
            _ => Bson::Null,
        };
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_the_shells_relaxed_syntax() {
        for spec in [
            "{_id:hashed}",
            "{_id: hashed}",
            "{_id:\"hashed\"}",
            "{\"_id\":'hashed'}",
        ] {
            let k = parse_key(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!(
                k,
                vec![KeyField {
                    field: "_id".into(),
                    hashed: true
                }],
                "{spec}"
            );
        }
        let k = parse_key("{user_id:1,created_at:-1}").unwrap();
        assert_eq!(k.len(), 2);
        assert!(!k[0].hashed && k[1].field == "created_at");
        assert!(parse_key("{a:2}").is_err());
    }

    #[test]
    fn keys_parse_from_flow_mappings() {
        assert_eq!(
            parse_key("{created_at: 1, _id: 1}")
                .unwrap()
                .iter()
                .map(|f| f.field.as_str())
                .collect::<Vec<_>>(),
            ["created_at", "_id"]
        );
        assert!(parse_key("{_id: hashed}").unwrap()[0].hashed);
        assert!(parse_key("{a: 2}").is_err());
        assert!(parse_key("{a: hashed, b: hashed}").is_err());
        assert!(parse_key("[a]").is_err());
    }
}
