//! The verdict on one namespace: existence and kind, options, indexes, exact counts, and
//! (at level `documents`) every document, range by range. `verify` reports these; other
//! commands (migrate) use the cheaper levels to check their own work.

use anyhow::{Context, Result};
use clap::ValueEnum;
use futures::StreamExt;
use mongodb::bson::doc;
use mongodb::Client;
use serde::Serialize;

use super::documents::{self, Difference};
use super::{digest, metadata, ranges};
use crate::mongo::namespaces::{self, CollectionInfo, Kind};
use crate::namespace::{Namespace, Renamer};
use crate::report::progress::TaskProgress;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Existence, kind and document counts.
    Counts,
    /// Counts plus options and indexes.
    Metadata,
    /// Everything: metadata plus every document's bytes.
    Documents,
}

/// The verdict on one namespace (`--output json` lists these).
#[derive(Debug, Clone, Serialize, Default)]
pub struct NsVerdict {
    pub source: String,
    pub target: String,
    pub kind: String,
    pub source_count: Option<u64>,
    pub target_count: Option<u64>,
    /// Existence, kind, options and index differences, described.
    pub metadata: Vec<String>,
    /// Documents that differ (all of them counted), when documents were compared.
    pub documents_differing: Option<u64>,
    /// The first `--max-report` differing documents.
    pub differences: Vec<Difference>,
    pub identical: bool,
    /// Differences looked at again after a live tail caught up (see `compare::live`).
    #[serde(default)]
    pub rechecked: bool,
    /// Differing documents that were gone by the recheck (changes the tail had not yet applied).
    #[serde(default)]
    pub disappeared: u64,
    /// Documents that differed at every recheck while the source kept changing them past the
    /// live tail's position: neither confirmed nor cleared (see `compare::live`). Not
    /// counted in `documents_differing`.
    #[serde(default)]
    pub still_changing: u64,
    /// The first `--max-report` of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changing: Vec<Difference>,
    /// A collection, view or database that exists only on the target (`source` is empty):
    /// its own kind of difference (`compare::extras`).
    #[serde(default)]
    pub extra_on_target: bool,
}

impl NsVerdict {
    /// Under a live source the two counts are taken at different moments; when every
    /// document was compared, the documents decide.
    pub fn judge_live(&mut self) {
        match self.documents_differing {
            Some(n) => {
                self.identical = self.metadata.is_empty() && n == 0 && self.still_changing == 0
            }
            None => self.judge(),
        }
    }

    /// A difference that stands: anything but documents still changing under a live tail.
    pub fn confirmed(&self) -> bool {
        !self.identical
            && (!self.metadata.is_empty()
                || self.documents_differing.unwrap_or(0) > 0
                || (self.documents_differing.is_none() && self.source_count != self.target_count)
                || self.still_changing == 0)
    }

    /// What differs, one phrase each: metadata, counts, documents (for a one-line summary;
    /// `verify` prints the full report).
    pub fn problems(&self) -> Vec<String> {
        let mut out = self.metadata.clone();
        if self.source_count != self.target_count {
            out.push(format!(
                "count {} vs {} (source vs target)",
                self.source_count.unwrap_or(0),
                self.target_count.unwrap_or(0)
            ));
        }
        if let Some(n) = self.documents_differing.filter(|n| *n > 0) {
            out.push(format!("{n} document(s) differ"));
        }
        out
    }

    /// Whether nothing differs (after any recheck).
    pub fn judge(&mut self) {
        self.identical = self.metadata.is_empty()
            && self.source_count == self.target_count
            && self.documents_differing.unwrap_or(0) == 0;
    }
}

/// What to compare and how much to keep.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub level: Level,
    /// Differing documents listed per namespace (all are counted).
    pub max_report: usize,
    /// Collections bigger than this are compared in `_id` ranges, two at once.
    pub range_bytes: u64,
    /// The namespace's counts (source, target) when the caller has just proven them: a
    /// load that compared the target's count with the source's (see `load::count`).
    /// Counting again would read every document of both sides once more.
    pub counted: Option<(u64, u64)>,
}

/// Compare source collection `c` with target namespace `t`.
pub async fn namespace(
    src: &Client,
    dst: &Client,
    c: &CollectionInfo,
    t: &Namespace,
    renamer: &Renamer,
    args: &Options,
    task: &TaskProgress,
) -> Result<NsVerdict> {
    let mut v = NsVerdict {
        source: c.ns.to_string(),
        target: t.to_string(),
        kind: c.kind.as_str().into(),
        ..Default::default()
    };
    let on_target = target_info(dst, t).await?;
    let Some(tc) = on_target else {
        v.metadata.push(format!("{t} does not exist on the target"));
        return Ok(v);
    };
    if tc.kind != c.kind {
        v.metadata.push(format!(
            "{t} is a {} on the target, a {} on the source",
            tc.kind.as_str(),
            c.kind.as_str()
        ));
        return Ok(v);
    }
    if args.level >= Level::Metadata {
        let mut want = c.options.clone();
        // A view of a renamed database points at the renamed collection.
        if let Ok(on) = c.options.get_str("viewOn") {
            let mapped = renamer.map(&Namespace::new(&c.ns.db, on));
            if mapped.db == t.db {
                want.insert("viewOn", mapped.coll);
            }
        }
        v.metadata.extend(metadata::options(&want, &tc.options));
        if c.kind != Kind::View {
            v.metadata
                .extend(metadata::indexes(&c.indexes, &tc.indexes));
        }
    }
    if c.kind != Kind::View {
        let (sn, tn) = (c.kind.data_ns(&c.ns), c.kind.data_ns(t));
        let (a, b) = match args.counted {
            Some(counts) => counts,
            None => tokio::try_join!(
                namespaces::exact_count(src, &sn, "source"),
                namespaces::exact_count(dst, &tn, "target")
            )?,
        };
        v.source_count = Some(a);
        v.target_count = Some(b);
        // A capped collection's natural (insertion) order is what its readers see: it is
        // compared too (the digest chains documents in the order read).
        let capped = c.options.get_bool("capped").unwrap_or(false);
        // Same counts: first the cheap order-independent digests; only a namespace whose
        // digests differ is read again in `_id` order to name each differing document.
        let (same_docs, same_order) = if args.level == Level::Documents && a == b {
            let (x, y) = tokio::try_join!(
                digest::collection(src, &sn, "source", task),
                digest::collection(dst, &tn, "target", task)
            )?;
            (x == y, x.same_order(&y))
        } else {
            (false, false)
        };
        if same_docs && (same_order || !capped) {
            v.documents_differing = Some(0);
        } else if same_docs {
            // The same documents in another order: name where the orders part.
            let d = documents::natural_order((src, &sn), (dst, &tn)).await?;
            v.documents_differing = Some(u64::from(d.is_some()));
            v.differences.extend(d);
        } else if args.level == Level::Documents {
            let parts = ranges::range_count(c, args.range_bytes.max(1 << 20));
            let points = if parts > 1 {
                ranges::split_points(src, &sn, parts).await?
            } else {
                vec![]
            };
            let results: Vec<Result<documents::RangeResult>> =
                futures::stream::iter(ranges::between(&points))
                    .map(|r| {
                        let (sn, tn) = (sn.clone(), tn.clone());
                        async move {
                            let limits = documents::Limits {
                                documents: args.max_report,
                                paths: 5,
                            };
                            documents::compare_range((src, &sn), (dst, &tn), &r, limits, task).await
                        }
                    })
                    .buffer_unordered(2)
                    .collect()
                    .await;
            let mut differing = 0;
            for r in results {
                let r = r?;
                differing += r.differing;
                for d in r.differences {
                    if v.differences.len() < args.max_report {
                        v.differences.push(d);
                    }
                }
            }
            if differing == 0 && capped {
                // Every document matched by `_id`, so the bytes differed in their order.
                if let Some(d) = documents::natural_order((src, &sn), (dst, &tn)).await? {
                    differing = 1;
                    v.differences.push(d);
                }
            }
            v.documents_differing = Some(differing);
        }
    }
    v.judge();
    Ok(v)
}

/// Compare every source collection of `colls` with its (renamed) target, `parallel` at a
/// time, with a progress task each.
pub async fn all(
    src: &Client,
    dst: &Client,
    colls: Vec<CollectionInfo>,
    renamer: &Renamer,
    opts: Options,
    parallel: usize,
    progress: &crate::report::progress::Progress,
) -> Result<Vec<NsVerdict>> {
    futures::stream::iter(colls)
        .map(|c| async move {
            let t = renamer.map(&c.ns);
            let task = progress.task(&t.to_string(), 2 * c.estimated_count);
            let v = namespace(src, dst, &c, &t, renamer, &opts, &task).await;
            task.finish();
            v.with_context(|| format!("verifying {} against {t}", c.ns))
        })
        .buffer_unordered(parallel.max(1))
        .collect::<Vec<Result<NsVerdict>>>()
        .await
        .into_iter()
        .collect()
}

/// The target's collection of that name, with its metadata, if it exists.
async fn target_info(dst: &Client, t: &Namespace) -> Result<Option<CollectionInfo>> {
    let only = crate::namespace::Filter::new(&[t.to_string()], &[])?;
    let found = namespaces::collections(dst, &t.db, &only)
        .await
        .context("the target")?;
    Ok(found.into_iter().find(|c| c.ns == *t))
}
