//! `_id` ranges of a collection, for reading one big collection with several cursors and
//! for resuming a copy range by range.
//!
//! A range is a pair of bounds on the `_id` index, given to `find` as `min`/`max` with
//! `hint: {_id: 1}`. Index bounds follow the index's order across every BSON type
//! (numbers, strings, ObjectIds, dates, embedded documents, binary…), so consecutive
//! ranges cover the collection exactly once whatever mix of `_id` types it holds. A query
//! predicate (`{_id: {$gte: a, $lt: b}}`) would not: MongoDB brackets comparisons by type,
//! so `{$gte: 5, $lt: "a"}` matches nothing and documents between the types are lost.

use anyhow::{Context, Result};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::{FindOptions, Hint};
use mongodb::Client;

use crate::mongo::namespaces::{CollectionInfo, Kind};
use crate::namespace::Namespace;

/// `[lower, upper)` on the `_id` index; `None` is the open end.
#[derive(Debug, Clone, PartialEq)]
pub struct IdRange {
    pub lower: Option<Bson>,
    pub upper: Option<Bson>,
}

impl IdRange {
    /// The whole collection.
    pub fn all() -> IdRange {
        IdRange {
            lower: None,
            upper: None,
        }
    }

    pub fn is_all(&self) -> bool {
        self.lower.is_none() && self.upper.is_none()
    }

    /// Find options that read exactly this range in `_id` order.
    pub fn find_options(&self) -> FindOptions {
        let mut o = FindOptions::default();
        o.hint = Some(Hint::Keys(doc! { "_id": 1 }));
        o.min = self.lower.as_ref().map(|b| doc! { "_id": b.clone() });
        o.max = self.upper.as_ref().map(|b| doc! { "_id": b.clone() });
        o
    }

    /// The queries that read exactly this range: its index bounds, and for the last range of
    /// a split also the document whose `_id` is MaxKey, if any. An index scan given only
    /// `min` ends at an exclusive MaxKey bound, so that document would be lost (the copy's
    /// count check caught it).
    pub fn queries(&self) -> Vec<(Document, FindOptions)> {
        let mut out = vec![(doc! {}, self.find_options())];
        if self.lower.is_some() && self.upper.is_none() {
            out.push((
                doc! { "_id": { "$type": "maxKey" } },
                FindOptions::default(),
            ));
        }
        out
    }

    /// `[ObjectId("…"), "abc")`, for plans and errors.
    pub fn describe(&self) -> String {
        let show = |b: &Option<Bson>, open: &str| match b {
            Some(v) => v.to_string(),
            None => open.to_string(),
        };
        format!(
            "[{}, {})",
            show(&self.lower, "MinKey"),
            show(&self.upper, "MaxKey")
        )
    }
}

/// Consecutive ranges between sorted, distinct split points.
pub fn between(points: &[Bson]) -> Vec<IdRange> {
    let mut out = Vec::with_capacity(points.len() + 1);
    let mut lower = None;
    for p in points {
        out.push(IdRange {
            lower: lower.take(),
            upper: Some(p.clone()),
        });
        lower = Some(p.clone());
    }
    out.push(IdRange { lower, upper: None });
    out
}

/// Pick `parts - 1` split points from a random sample of `_id`s, sorted by the server in
/// `_id` order (the order of the index the ranges are read through). Fewer ranges come
/// back when the sample has fewer distinct values.
pub async fn split_points(client: &Client, ns: &Namespace, parts: usize) -> Result<Vec<Bson>> {
    if parts <= 1 {
        return Ok(Vec::new());
    }
    // Oversample so that the points fall near the true quantiles.
    let sample = (parts * 20) as i64;
    let ids: Vec<Document> = client
        .database(&ns.db)
        .collection::<Document>(&ns.coll)
        .aggregate(vec![
            doc! { "$sample": { "size": sample } },
            doc! { "$project": { "_id": 1 } },
            doc! { "$sort": { "_id": 1 } },
        ])
        .await
        .with_context(|| format!("sampling _id values of {ns} to split it into ranges"))?
        .try_collect()
        .await
        .with_context(|| format!("sampling _id values of {ns} to split it into ranges"))?;
    let sorted: Vec<Bson> = ids
        .into_iter()
        .filter_map(|d| d.get("_id").cloned())
        .collect();
    Ok(pick(&sorted, parts))
}

/// `_id` values read at each end of a collection in natural order to tell whether they
/// follow it.
const ORDER_SAMPLE: i64 = 256;

/// How `migrate` reads a collection bigger than a range (`--read-order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadOrder {
    /// `_id` ranges: parallel cursors, resumed range by range, and the target inserts in
    /// `_id` order.
    Id,
    /// One natural-order scan, as mongodump reads.
    Natural,
}

/// The collections `migrate` would split whose `_id` values do not follow the order they
/// were written in; with `--read-order natural` every one it would split, each marked
/// `natural_scan` so that it is read in one natural-order scan.
///
/// An `_id` range is read through the `_id` index, fetching each document where it is
/// stored. With ObjectIds (time first) that is nearly the storage order; with random
/// values (UUIDs, hashes, ObjectIds made elsewhere) every fetch lands somewhere else: the
/// source works harder per document and, on data bigger than its cache, reads its disk at
/// random (mongosync 1.18 reads such collections in natural order). Read in natural order
/// instead, the same documents reach the target in random `_id` order, and its `_id`
/// index takes random inserts: on 1 GB of random `_id`s with both servers in cache, the
/// source's CPU fell from 13.5 to 2.7 s but the target's rose from 32.1 to 51.8 s, and the
/// copy took 31.1 s instead of 26.4 s. So `_id` ranges stay the default and random
/// collections are named, for a source that reads its disk.
pub async fn natural_scans(
    client: &Client,
    colls: &mut [CollectionInfo],
    range_bytes: u64,
    order: ReadOrder,
) -> Vec<Namespace> {
    let mut found = Vec::new();
    for c in colls.iter_mut() {
        if range_count(c, range_bytes) <= 1 {
            continue;
        }
        if order == ReadOrder::Natural {
            c.natural_scan = true;
            found.push(c.ns.clone());
        } else if !ids_follow_storage(client, &c.kind.data_ns(&c.ns))
            .await
            // Only advice: a source that refuses the look (notablescan) is copied as before.
            .unwrap_or(true)
        {
            found.push(c.ns.clone());
        }
    }
    found
}

/// Whether the `_id` values at both ends of `ns`, read in natural order, are close to
/// sorted (see `nearly_sorted`). Its caller only advises, so a failure is not described.
async fn ids_follow_storage(client: &Client, ns: &Namespace) -> mongodb::error::Result<bool> {
    let coll = client.database(&ns.db).collection::<Document>(&ns.coll);
    for direction in [1, -1] {
        let docs: Vec<Document> = coll
            .find(doc! {})
            .hint(Hint::Keys(doc! { "$natural": direction }))
            .projection(doc! { "_id": 1 })
            .limit(ORDER_SAMPLE)
            .batch_size(ORDER_SAMPLE as u32)
            .await?
            .try_collect()
            .await?;
        let mut ids: Vec<Bson> = docs
            .into_iter()
            .filter_map(|mut d| d.remove("_id"))
            .collect();
        if direction < 0 {
            ids.reverse();
        }
        if !nearly_sorted(&ids) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether `ids` (in the order they are stored) are close to index order: each value's
/// distance from its sorted position, averaged, under a tenth of their number. Random
/// values average about a third; ObjectIds from several writers, interleaved within a
/// second, stay near zero.
fn nearly_sorted(ids: &[Bson]) -> bool {
    let n = ids.len();
    if n < 16 {
        return true;
    }
    let mut by_index: Vec<usize> = (0..n).collect();
    by_index.sort_by(|&a, &b| crate::compare::order::compare(&ids[a], &ids[b]));
    let displaced: usize = by_index
        .iter()
        .enumerate()
        .map(|(rank, &stored)| rank.abs_diff(stored))
        .sum();
    displaced * 10 < n * n
}

/// Every `len/parts`-th value of a sorted sample, skipping repeats.
fn pick(sorted: &[Bson], parts: usize) -> Vec<Bson> {
    let mut out: Vec<Bson> = Vec::new();
    if sorted.is_empty() || parts <= 1 {
        return out;
    }
    for i in 1..parts {
        let v = &sorted[i * sorted.len() / parts];
        if out.last() != Some(v) {
            out.push(v.clone());
        }
    }
    out
}

/// More ranges than this gain nothing on the hardware we target and cost resume bookkeeping.
pub const MAX_RANGES: u64 = 64;

/// How many `_id` ranges a collection is read in (copied by migrate, compared by verify): 1 unless it is bigger than a range.
/// Capped collections keep their natural order (one cursor); time-series buckets and
/// collections with a non-simple collation are not split either (their `_id` index order
/// is not the plain BSON order the split points are sorted in).
pub fn range_count(c: &CollectionInfo, range_bytes: u64) -> usize {
    let splittable = c.kind == Kind::Collection
        && !c.options.get_bool("capped").unwrap_or(false)
        && c.options.get_document("collation").is_err();
    if !splittable || c.natural_scan || c.estimated_bytes <= range_bytes {
        return 1;
    }
    c.estimated_bytes.div_ceil(range_bytes).min(MAX_RANGES) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_write_order_are_told_from_random_ones() {
        use mongodb::bson::oid::ObjectId;
        // ObjectIds as four application servers write them: time first, then each
        // process's random value and counter, interleaved within each second.
        let mut interleaved = Vec::new();
        for second in 0u32..64 {
            for process in [7u8, 3, 9, 1] {
                let mut b = [0u8; 12];
                b[..4].copy_from_slice(&(1_700_000_000 + second).to_be_bytes());
                b[4] = process;
                b[11] = second as u8;
                interleaved.push(Bson::ObjectId(ObjectId::from_bytes(b)));
            }
        }
        assert!(nearly_sorted(&interleaved));
        // Random values (a fixed shuffle: an LCG's order of 0..256).
        let random: Vec<Bson> = (0..256i64)
            .map(|i| Bson::Int64((i * 97 + 31) % 256))
            .collect();
        assert!(!nearly_sorted(&random));
        // Written in descending order: not the index order either.
        let descending: Vec<Bson> = (0..256i64).rev().map(Bson::Int64).collect();
        assert!(!nearly_sorted(&descending));
        // Too few to tell: split as before.
        assert!(nearly_sorted(&random[..10]));
    }

    #[test]
    fn ranges_between_points_cover_everything_once() {
        let r = between(&[Bson::Int32(5), Bson::String("a".into())]);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].lower, None);
        assert_eq!(r[0].upper, Some(Bson::Int32(5)));
        assert_eq!(r[1].lower, Some(Bson::Int32(5)));
        assert_eq!(r[1].upper, Some(Bson::String("a".into())));
        assert_eq!(r[2].upper, None);
        assert!(between(&[])[0].is_all());
        assert_eq!(r[1].describe(), "[5, \"a\")");
    }

    #[test]
    fn picks_quantiles_without_repeats() {
        let s: Vec<Bson> = (0..100).map(|i| Bson::Int32(i / 10)).collect();
        assert_eq!(
            pick(&s, 4),
            vec![Bson::Int32(2), Bson::Int32(5), Bson::Int32(7)]
        );
        let same: Vec<Bson> = (0..50).map(|_| Bson::Int32(1)).collect();
        assert_eq!(pick(&same, 4), vec![Bson::Int32(1)]);
        assert!(pick(&[], 4).is_empty());
    }

    #[test]
    fn find_options_bound_the_index_not_the_type() {
        let o = between(&[Bson::Int32(5)])[1].find_options();
        assert_eq!(o.min, Some(doc! { "_id": 5 }));
        assert_eq!(o.max, None);
        assert_eq!(o.hint, Some(Hint::Keys(doc! { "_id": 1 })));
        // The open-ended last range also reads a MaxKey `_id`; the others need no second query.
        let r = between(&[Bson::Int32(5)]);
        assert_eq!(r[0].queries().len(), 1);
        assert_eq!(r[1].queries().len(), 2);
        assert_eq!(r[1].queries()[1].0, doc! { "_id": { "$type": "maxKey" } });
    }
}
