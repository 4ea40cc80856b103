//! Comparing the documents of one `_id` range on two sides in one pass: both are read in
//! `_id` index order with the same index bounds, as raw BSON, and merged like two sorted
//! lists. Nothing is decoded: `_id`s are ordered from their bytes in the server's order
//! (`compare::order`), the smaller `_id` of a mismatch is the document the other side lacks,
//! and documents whose bytes differ are walked as bytes to say how (`compare::diff`).
//! Memory is two server batches, whatever the range's size.

use std::cmp::Ordering;

use anyhow::{Context, Result};
use mongodb::bson::{Bson, RawDocumentBuf};
use mongodb::Client;
use serde::Serialize;
use tokio::sync::mpsc;

use super::diff::{self, DocDiff};
use super::order;
use super::ranges::IdRange;
use super::raw::{self, Element};
use crate::mongo::raw_read::{self, Sink};
use crate::mongo::raw_write::Batch;
use crate::namespace::Namespace;
use crate::report::progress::TaskProgress;

/// One document that differs, by `_id` (as Extended JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// missing_on_target, extra_on_target, different, field_order, id_type (the same `_id`
    /// key in another type), id_value (another encoding of the same `_id`, e.g. -0.0),
    /// natural_order (a capped collection's documents in another order)
    pub kind: &'static str,
    pub id: serde_json::Value,
    /// For `different`: the first differing field paths; for `id_type`: both types.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// The `_id` itself, to look the document up again (a recheck).
    #[serde(skip)]
    pub key: Bson,
}

#[derive(Debug, Default, Clone)]
pub struct RangeResult {
    pub source_docs: u64,
    pub target_docs: u64,
    /// How many documents differ in all.
    pub differing: u64,
    /// The first `max_report` of them.
    pub differences: Vec<Difference>,
}

/// The documents of one side's range, in `_id` order: the raw batch reader that `migrate`
/// copies with, running ahead in its own task (two batches queued) so that reading overlaps
/// comparing.
struct Side {
    rx: mpsc::Receiver<Batch>,
    current: std::vec::IntoIter<RawDocumentBuf>,
    reader: Option<tokio::task::JoinHandle<Result<raw_read::ReadStats>>>,
    ns: Namespace,
    what: &'static str,
}

impl Side {
    /// `natural`: the whole collection in natural order (for a capped collection's order),
    /// else `range` in `_id` order.
    fn new(
        client: &Client,
        ns: &Namespace,
        range: &IdRange,
        what: &'static str,
        natural: bool,
    ) -> Side {
        let (tx, rx) = mpsc::channel::<Batch>(2);
        // The reader scans a whole collection in natural order; from MinKey on, it follows
        // the `_id` index, the order this merge needs.
        let range = match range.is_all() && !natural {
            true => IdRange {
                lower: Some(Bson::MinKey),
                upper: None,
            },
            false => range.clone(),
        };
        let reader = tokio::spawn(raw_read::stream_documents(
            client.clone(),
            ns.clone(),
            range,
            Sink::batches(tx),
            TaskProgress::none(),
        ));
        Side {
            rx,
            current: Vec::new().into_iter(),
            reader: Some(reader),
            ns: ns.clone(),
            what,
        }
    }

    async fn next(&mut self) -> Result<Option<RawDocumentBuf>> {
        loop {
            if let Some(d) = self.current.next() {
                return Ok(Some(d));
            }
            match self.rx.recv().await {
                Some(b) => self.current = b.into_docs().into_iter(),
                None => {
                    // The reader is done: say why if it failed.
                    if let Some(h) = self.reader.take() {
                        h.await
                            .context("the reader task stopped")?
                            .with_context(|| format!("reading {} on the {}", self.ns, self.what))?;
                    }
                    return Ok(None);
                }
            }
        }
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        if let Some(h) = self.reader.take() {
            h.abort();
        }
    }
}

/// The `_id` element, undecoded.
fn id_of<'a>(d: &'a RawDocumentBuf, ns: &Namespace) -> Result<Element<'a>> {
    raw::field(d.as_bytes(), "_id")
        .with_context(|| format!("a malformed document in {ns}"))?
        .with_context(|| format!("a document without _id in {ns}"))
}

fn ext(id: &Bson) -> serde_json::Value {
    id.clone().into_relaxed_extjson()
}

/// How much of the differences a comparison keeps.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Differing documents listed (all are counted).
    pub documents: usize,
    /// Differing field paths named per document.
    pub paths: usize,
}

/// Compare `range` of `source` (on the source) with `target` (on the target).
pub async fn compare_range(
    (src, source): (&Client, &Namespace),
    (dst, target): (&Client, &Namespace),
    range: &IdRange,
    limits: Limits,
    progress: &TaskProgress,
) -> Result<RangeResult> {
    let (max_report, max_paths) = (limits.documents, limits.paths);
    let mut a = Side::new(src, source, range, "source", false);
    let mut b = Side::new(dst, target, range, "target", false);
    let mut out = RangeResult::default();
    let push = |out: &mut RangeResult, d: Difference| {
        out.differing += 1;
        if out.differences.len() < max_report {
            out.differences.push(d);
        }
    };
    let (mut x, mut y) = tokio::try_join!(a.next(), b.next())?;
    loop {
        match (&x, &y) {
            (None, None) => break,
            (Some(s), None) => {
                push(&mut out, missing(s, source)?);
                out.source_docs += 1;
                progress.add(1, s.as_bytes().len() as u64);
                x = a.next().await?;
            }
            (None, Some(t)) => {
                push(&mut out, extra(t, target)?);
                out.target_docs += 1;
                progress.add(1, t.as_bytes().len() as u64);
                y = b.next().await?;
            }
            (Some(s), Some(t)) => {
                progress.add(2, (s.as_bytes().len() + t.as_bytes().len()) as u64);
                if s.as_bytes() == t.as_bytes() {
                    out.source_docs += 1;
                    out.target_docs += 1;
                    (x, y) = tokio::try_join!(a.next(), b.next())?;
                    continue;
                }
                let (si, ti) = (id_of(s, source)?, id_of(t, target)?);
                match order::compare_elements(&si, &ti) {
                    Ordering::Less => {
                        push(&mut out, missing(s, source)?);
                        out.source_docs += 1;
                        x = a.next().await?;
                    }
                    Ordering::Greater => {
                        push(&mut out, extra(t, target)?);
                        out.target_docs += 1;
                        y = b.next().await?;
                    }
                    Ordering::Equal => {
                        let d = same_id(s, t, (&si, &ti), max_paths)?;
                        push(&mut out, d);
                        out.source_docs += 1;
                        out.target_docs += 1;
                        (x, y) = tokio::try_join!(a.next(), b.next())?;
                    }
                }
            }
        }
    }
    Ok(out)
}

fn difference(kind: &'static str, id: &Element, paths: Vec<String>) -> Difference {
    let key = id.to_bson();
    Difference {
        kind,
        id: ext(&key),
        paths,
        key,
    }
}

fn missing(s: &RawDocumentBuf, ns: &Namespace) -> Result<Difference> {
    Ok(difference("missing_on_target", &id_of(s, ns)?, vec![]))
}

fn extra(t: &RawDocumentBuf, ns: &Namespace) -> Result<Difference> {
    Ok(difference("extra_on_target", &id_of(t, ns)?, vec![]))
}

/// Two documents with the same `_id` key whose bytes differ: how.
fn same_id(
    s: &RawDocumentBuf,
    t: &RawDocumentBuf,
    (si, ti): (&Element, &Element),
    max_paths: usize,
) -> Result<Difference> {
    if si.ty != ti.ty {
        return Ok(difference(
            "id_type",
            si,
            vec![format!(
                "_id is {} on the source, {} on the target",
                si.type_name(),
                ti.type_name()
            )],
        ));
    }
    if si.value != ti.value {
        return Ok(difference(
            "id_value",
            si,
            vec![format!(
                "_id is {} on the source, {} on the target (equal in the _id index, other bytes)",
                ext(&si.to_bson()),
                ext(&ti.to_bson())
            )],
        ));
    }
    Ok(match diff::diff(s.as_bytes(), t.as_bytes(), max_paths)? {
        DocDiff::Same => difference(
            "different",
            si,
            vec!["(same values, different bytes)".into()],
        ),
        DocDiff::FieldOrder => difference("field_order", si, vec![]),
        DocDiff::Fields(p) => difference("different", si, p),
    })
}

/// A capped collection's documents in natural (insertion) order on both sides, which its
/// readers see: the first position where the two orders differ, if any. Called when both
/// sides hold the same documents (the `_id` merge found no difference) in another order.
pub async fn natural_order(
    (src, source): (&Client, &Namespace),
    (dst, target): (&Client, &Namespace),
) -> Result<Option<Difference>> {
    let all = IdRange::all();
    let mut a = Side::new(src, source, &all, "source", true);
    let mut b = Side::new(dst, target, &all, "target", true);
    let mut at = 0u64;
    loop {
        let (x, y) = tokio::try_join!(a.next(), b.next())?;
        match (&x, &y) {
            (None, None) => return Ok(None),
            (Some(s), Some(t)) if s.as_bytes() == t.as_bytes() => at += 1,
            (Some(s), other) => {
                let theirs = match other {
                    Some(t) => format!("_id {}", ext(&id_of(t, target)?.to_bson())),
                    None => "the end of the collection".into(),
                };
                return Ok(Some(difference(
                    "natural_order",
                    &id_of(s, source)?,
                    vec![format!(
                        "natural order differs at position {at}: this document on the source, {theirs} on the target"
                    )],
                )));
            }
            (None, Some(t)) => {
                return Ok(Some(difference(
                    "natural_order",
                    &id_of(t, target)?,
                    vec![format!(
                        "natural order differs at position {at}: the end of the collection on the source, this document on the target"
                    )],
                )))
            }
        }
    }
}

/// Look one document up again on both sides (after a live tail caught up): the difference
/// as it stands now, or None when the two sides agree.
pub async fn recheck(
    (src, source): (&Client, &Namespace),
    (dst, target): (&Client, &Namespace),
    id: &Bson,
    max_paths: usize,
) -> Result<Option<Difference>> {
    let one = |c: &Client, ns: &Namespace, side: &'static str| {
        let coll = c.database(&ns.db).collection::<RawDocumentBuf>(&ns.coll);
        let ns = ns.clone();
        let id = id.clone();
        async move {
            coll.find_one(mongodb::bson::doc! { "_id": id })
                .await
                .with_context(|| format!("re-reading a document of {ns} on the {side}"))
        }
    };
    let (s, t) = tokio::try_join!(one(src, source, "source"), one(dst, target, "target"))?;
    between(s, t, (source, target), max_paths)
}

/// How a source document and a target document (each maybe absent) differ, or None.
pub fn between(
    s: Option<RawDocumentBuf>,
    t: Option<RawDocumentBuf>,
    (source, target): (&Namespace, &Namespace),
    max_paths: usize,
) -> Result<Option<Difference>> {
    Ok(match (s, t) {
        (None, None) => None,
        (Some(s), None) => Some(missing(&s, source)?),
        (None, Some(t)) => Some(extra(&t, target)?),
        (Some(s), Some(t)) if s.as_bytes() == t.as_bytes() => None,
        (Some(s), Some(t)) => {
            let (si, ti) = (id_of(&s, source)?, id_of(&t, target)?);
            Some(same_id(&s, &t, (&si, &ti), max_paths)?)
        }
    })
}
