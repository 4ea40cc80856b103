//! One change-stream event (opened with `showExpandedEvents` and `fullDocument:
//! updateLookup`) turned into the operation that brings the target in line with it.
//! Every operation is idempotent: the copy may already hold the change, and a tail
//! restarted from its last checkpoint applies the events after it once more.
//!
//! Events arrive as raw bytes and documents stay raw: the document the source holds is
//! written as the source sent it (duplicate field names, regex flags in their order,
//! strings the server stored with invalid UTF-8, odd binary subtypes). Only the event's own
//! small fields (operation, namespace, times, DDL descriptions) are decoded.

use anyhow::{bail, Context, Result};
use mongodb::bson::{Bson, Document, RawDocument, RawDocumentBuf, Timestamp};

use crate::namespace::Namespace;
use crate::rawbson;

/// A document's `_id` as the source stores it: type byte and value bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawId {
    pub kind: u8,
    pub value: Vec<u8>,
}

impl RawId {
    pub fn of(e: &rawbson::Elem<'_>) -> RawId {
        RawId {
            kind: e.kind,
            value: e.value.to_vec(),
        }
    }

    /// `{_id: <value>}`, for a filter.
    pub fn filter(&self) -> Vec<u8> {
        let mut b = rawbson::Builder::with_capacity(self.value.len() + 8);
        b.raw(b"_id", self.kind, &self.value);
        b.finish_bytes()
    }

    /// For messages: the value as extended JSON when it decodes, its bytes in hex otherwise.
    pub fn describe(&self) -> String {
        let doc = self.filter();
        match RawDocument::from_bytes(&doc)
            .ok()
            .and_then(|d| Document::try_from(d).ok())
            .and_then(|d| d.get("_id").cloned())
        {
            Some(v) => v.into_relaxed_extjson().to_string(),
            None => format!(
                "<BSON type 0x{:02x}, bytes {}>",
                self.kind,
                self.value
                    .iter()
                    .take(64)
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Insert, replace, or update: the document as the source holds it (an update's
    /// looked-up current state), written over whatever the target holds for its `_id`.
    Upsert {
        ns: Namespace,
        id: RawId,
        doc: RawDocumentBuf,
    },
    /// A change whose document was too large to travel inside its event (the event would
    /// pass the 16 MB limit): the reader looks the document up on the source itself.
    Lookup {
        ns: Namespace,
        id: RawId,
    },
    Delete {
        ns: Namespace,
        id: RawId,
    },
    /// An update whose document the server's lookup did not find: deleted since (its
    /// delete event follows), or its collection was dropped or renamed before the lookup.
    /// The reader looks for the collection by its UUID: renamed, the document is read
    /// where it is now (what the lookup would have returned) and written under the name
    /// the target still has; otherwise a later event brings the target in line.
    Gone {
        ns: Namespace,
        id: RawId,
        uuid: Option<mongodb::bson::Binary>,
    },
    /// A collection or view created, with the options the source reports.
    Create {
        ns: Namespace,
        options: Document,
    },
    CreateIndexes {
        ns: Namespace,
        indexes: Vec<Document>,
    },
    DropIndexes {
        ns: Namespace,
        names: Vec<String>,
    },
    /// `collMod`: the changed options (validator, index TTL / hidden / unique…).
    Modify {
        ns: Namespace,
        changes: Document,
    },
    Drop {
        ns: Namespace,
    },
    DropDatabase {
        db: String,
    },
    Rename {
        from: Namespace,
        to: Namespace,
    },
}

#[derive(Debug, Clone)]
pub struct Event {
    pub op: Op,
    /// The source's cluster time of the change (the tail's position).
    pub time: Timestamp,
    /// The source's wall clock at the change, in ms since the epoch, for the lag.
    pub wall_ms: Option<i64>,
    /// The multi-document transaction the change belongs to (its session and number): the
    /// tail applies a transaction's changes in order, as a barrier.
    pub txn: Option<(Bson, i64)>,
}

/// The parts of an event we read: its small fields decoded, the document ones raw.
#[derive(Default)]
struct Parts<'a> {
    small: Document,
    document_key: Option<&'a [u8]>,
    /// The fullDocument element (a document, or null when an update's lookup found none).
    full: Option<rawbson::Elem<'a>>,
}

fn split(ev: &[u8]) -> Result<Parts<'_>> {
    let mut p = Parts::default();
    for e in rawbson::iter(ev) {
        let e = e.context("a change event with broken BSON framing")?;
        match &*e.key_text() {
            "fullDocument" => p.full = Some(e),
            "documentKey" => p.document_key = e.as_doc(),
            // Not read: the document as it is now is what gets written.
            "updateDescription" | "fullDocumentBeforeChange" | "_id" => {}
            key => {
                let mut one = rawbson::Builder::new();
                one.elem(&e);
                let d = RawDocument::from_bytes(&one.finish_bytes()[..])
                    .and_then(Document::try_from)
                    .map(|mut d| d.remove(key).unwrap_or(Bson::Null));
                match d {
                    Ok(v) => {
                        p.small.insert(key.to_string(), v);
                    }
                    Err(err) => bail!("the change event's field {key} does not decode: {err}"),
                }
            }
        }
    }
    Ok(p)
}

fn ns_of(ev: &Document, field: &str) -> Result<Namespace> {
    let ns = ev
        .get_document(field)
        .with_context(|| format!("change event without {field}"))?;
    let db = ns
        .get_str("db")
        .context("change event namespace without db")?;
    let coll = ns.get_str("coll").unwrap_or("");
    Ok(Namespace::new(db, coll))
}

fn id_of(p: &Parts<'_>) -> Result<RawId> {
    let key = p.document_key.context("change event without documentKey")?;
    let id = rawbson::find(key, "_id")?.context("change event without documentKey._id")?;
    Ok(RawId::of(&id))
}

/// Parse one event. Events the tail cannot apply faithfully are errors that say what
/// happened on the source, so the tail stops instead of skipping them.
pub fn parse(raw: &RawDocument) -> Result<Event> {
    let p = split(raw.as_bytes())?;
    let ev = &p.small;
    let kind = ev
        .get_str("operationType")
        .context("change event without operationType")?;
    let time = ev
        .get_timestamp("clusterTime")
        .context("change event without clusterTime")?;
    let wall_ms = ev
        .get_datetime("wallTime")
        .ok()
        .map(|d| d.timestamp_millis());
    let desc = || {
        ev.get_document("operationDescription")
            .cloned()
            .unwrap_or_default()
    };
    let op = match kind {
        "insert" | "replace" | "update" => {
            let ns = ns_of(ev, "ns")?;
            let id = id_of(&p)?;
            match p.full {
                Some(e) if e.kind == 0x03 => Op::Upsert {
                    doc: RawDocumentBuf::from_bytes(e.value.to_vec()).with_context(|| {
                        format!("the {kind} event of {ns} _id {}", id.describe())
                    })?,
                    ns,
                    id,
                },
                // updateLookup found nothing: the document is gone by now.
                Some(_) if kind == "update" => Op::Gone {
                    ns,
                    id,
                    uuid: ev.get_binary_generic("collectionUUID").ok().map(|b| {
                        mongodb::bson::Binary {
                            subtype: mongodb::bson::spec::BinarySubtype::Uuid,
                            bytes: b.clone(),
                        }
                    }),
                },
                // Left out by our pipeline because it was too large to carry.
                _ => Op::Lookup { ns, id },
            }
        }
        "delete" => Op::Delete {
            ns: ns_of(ev, "ns")?,
            id: id_of(&p)?,
        },
        "create" => {
            let ns = ns_of(ev, "ns")?;
            let options = desc();
            if let Ok(on) = options.get_str("viewOn") {
                if on.starts_with(crate::namespace::BUCKETS_PREFIX) {
                    bail!(
                        "time-series collection {ns} was created on the source while following; \
                         change streams on MongoDB 6.0 do not report its writes, so the tail cannot keep it in sync. \
                         Stop the tail, and copy it offline at the cutover (migrate --ns-include '{ns}' --drop)"
                    );
                }
            }
            Op::Create { ns, options }
        }
        "createIndexes" => Op::CreateIndexes {
            ns: ns_of(ev, "ns")?,
            indexes: desc()
                .get_array("indexes")
                .map(|a| a.iter().filter_map(|i| i.as_document().cloned()).collect())
                .unwrap_or_default(),
        },
        "dropIndexes" => Op::DropIndexes {
            ns: ns_of(ev, "ns")?,
            names: desc()
                .get_array("indexes")
                .map(|a| {
                    a.iter()
                        .filter_map(|i| i.as_document()?.get_str("name").ok().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        },
        "modify" => Op::Modify {
            ns: ns_of(ev, "ns")?,
            changes: desc(),
        },
        "drop" => Op::Drop {
            ns: ns_of(ev, "ns")?,
        },
        "dropDatabase" => Op::DropDatabase {
            db: ns_of(ev, "ns")?.db,
        },
        "rename" => Op::Rename {
            from: ns_of(ev, "ns")?,
            to: ns_of(ev, "to")?,
        },
        other => bail!(
            "the source reported a '{other}' change (at {}:{}) that the tail does not know how to apply; \
             it stops here rather than skip it",
            time.time,
            time.increment
        ),
    };
    let txn = ev
        .get_i64("txnNumber")
        .ok()
        .map(|n| (ev.get("lsid").cloned().unwrap_or(Bson::Null), n));
    Ok(Event {
        op,
        time,
        wall_ms,
        txn,
    })
}

impl Op {
    /// The bytes of the document the change carries (0 for none).
    pub fn doc_bytes(&self) -> usize {
        match self {
            Op::Upsert { doc, .. } => doc.as_bytes().len(),
            _ => 0,
        }
    }

    /// A change to one document (not DDL): what the tail may apply in parallel.
    pub fn is_document_change(&self) -> bool {
        matches!(
            self,
            Op::Upsert { .. } | Op::Delete { .. } | Op::Gone { .. } | Op::Lookup { .. }
        )
    }

    /// The namespace the operation is about (a database's for DropDatabase).
    pub fn ns(&self) -> Namespace {
        match self {
            Op::Upsert { ns, .. }
            | Op::Lookup { ns, .. }
            | Op::Delete { ns, .. }
            | Op::Gone { ns, .. }
            | Op::Create { ns, .. }
            | Op::CreateIndexes { ns, .. }
            | Op::DropIndexes { ns, .. }
            | Op::Modify { ns, .. }
            | Op::Drop { ns } => ns.clone(),
            Op::Rename { from, .. } => from.clone(),
            Op::DropDatabase { db } => Namespace::new(db, ""),
        }
    }
}

/// The cluster time a resume token stands for: its `_data` is hex KeyString whose first
/// byte is the type tag (0x82, a Timestamp) followed by seconds and increment, big-endian.
pub fn token_time(token: &Bson) -> Option<Timestamp> {
    let data = token.as_document()?.get_str("_data").ok()?;
    if data.len() < 18 || !data.starts_with("82") {
        return None;
    }
    let time = u32::from_str_radix(&data[2..10], 16).ok()?;
    let increment = u32::from_str_radix(&data[10..18], 16).ok()?;
    Some(Timestamp { time, increment })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    fn base(kind: &str) -> Document {
        doc! { "_id": { "_data": "82" }, "operationType": kind, "clusterTime": Timestamp { time: 10, increment: 2 }, "ns": { "db": "d", "coll": "c" } }
    }

    fn raw(d: &Document) -> RawDocumentBuf {
        RawDocumentBuf::from_document(d).unwrap()
    }

    fn id(v: i32) -> RawId {
        RawId {
            kind: 0x10,
            value: v.to_le_bytes().to_vec(),
        }
    }

    #[test]
    fn crud() {
        let mut e = base("insert");
        e.insert("documentKey", doc! { "_id": 1 });
        e.insert("fullDocument", doc! { "_id": 1, "a.b": 2 });
        let ev = parse(&raw(&e)).unwrap();
        assert_eq!(ev.time.time, 10);
        assert!(
            matches!(ev.op, Op::Upsert { ref doc, ref id, .. } if doc.get_i32("a.b") == Ok(2) && *id == super::tests::id(1))
        );

        let mut u = base("update");
        u.insert("documentKey", doc! { "_id": 1 });
        u.insert("fullDocument", Bson::Null);
        assert!(matches!(parse(&raw(&u)).unwrap().op, Op::Gone { .. }));

        // Left out by the pipeline (too large): looked up.
        let mut big = base("update");
        big.insert("documentKey", doc! { "_id": 1 });
        assert_eq!(
            parse(&raw(&big)).unwrap().op,
            Op::Lookup {
                ns: Namespace::new("d", "c"),
                id: id(1)
            }
        );

        let mut d = base("delete");
        d.insert("documentKey", doc! { "_id": 7 });
        assert_eq!(
            parse(&raw(&d)).unwrap().op,
            Op::Delete {
                ns: Namespace::new("d", "c"),
                id: id(7)
            }
        );
    }

    /// A document with a duplicate field name and a string of invalid UTF-8 passes through
    /// byte for byte.
    #[test]
    fn documents_stay_raw() {
        let mut full = rawbson::Builder::new();
        full.i32("_id", 1).i32("x", 1).i32("x", 2);
        full.raw(b"s", 0x02, &[2, 0, 0, 0, 0xff, 0]);
        let full = full.finish_bytes();
        let mut ev = rawbson::Builder::new();
        let b = raw(&base("insert"));
        for e in rawbson::elements(b.as_bytes()).unwrap() {
            ev.elem(&e);
        }
        ev.doc("documentKey", raw(&doc! { "_id": 1 }).as_bytes());
        ev.doc("fullDocument", &full);
        let parsed = parse(&ev.finish()).unwrap();
        match parsed.op {
            Op::Upsert { doc, .. } => assert_eq!(doc.as_bytes(), &full[..]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ddl() {
        let mut r = base("rename");
        r.insert("to", doc! { "db": "d", "coll": "e" });
        assert_eq!(
            parse(&raw(&r)).unwrap().op,
            Op::Rename {
                from: Namespace::new("d", "c"),
                to: Namespace::new("d", "e")
            }
        );
        let mut ts = base("create");
        ts.insert(
            "operationDescription",
            doc! { "viewOn": "system.buckets.c", "pipeline": [] },
        );
        let err = parse(&raw(&ts)).unwrap_err().to_string();
        assert!(err.contains("time-series"), "{err}");
        let mut di = base("dropIndexes");
        di.insert(
            "operationDescription",
            doc! { "indexes": [ { "name": "a_1", "key": { "a": 1 } } ] },
        );
        assert_eq!(
            parse(&raw(&di)).unwrap().op,
            Op::DropIndexes {
                ns: Namespace::new("d", "c"),
                names: vec!["a_1".into()]
            }
        );
        assert!(parse(&raw(&base("reshardCollection"))).is_err());
    }

    #[test]
    fn ids_for_people() {
        assert_eq!(id(5).describe(), "5");
        let bad = RawId {
            kind: 0x02,
            value: vec![2, 0, 0, 0, 0xff, 0],
        };
        assert!(bad.describe().contains("0x02"), "{}", bad.describe());
    }

    #[test]
    fn token_times() {
        let t = Bson::Document(doc! { "_data": "826B042382000000022B0229296E04" });
        assert_eq!(
            token_time(&t),
            Some(Timestamp {
                time: 0x6B042382,
                increment: 2
            })
        );
        assert_eq!(token_time(&Bson::Null), None);
    }
}
