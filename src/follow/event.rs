//! One change-stream event (opened with `showExpandedEvents` and `fullDocument:
//! updateLookup`) turned into the operation that brings the target in line with it.
//! Every operation is idempotent: the copy may already hold the change, and a tail
//! restarted from its last checkpoint applies the events after it once more.

use anyhow::{bail, Context, Result};
use mongodb::bson::{Bson, Document, Timestamp};

use crate::namespace::Namespace;

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Insert, replace, or update: the document as the source holds it (an update's
    /// looked-up current state), written over whatever the target holds for its `_id`.
    Upsert {
        ns: Namespace,
        id: Bson,
        doc: Document,
    },
    Delete {
        ns: Namespace,
        id: Bson,
    },
    /// An update whose document no longer existed when the server looked it up: a later
    /// event (its delete, or its collection's drop or rename) brings the target in line.
    Gone {
        ns: Namespace,
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

fn id_of(ev: &Document) -> Result<Bson> {
    ev.get_document("documentKey")
        .ok()
        .and_then(|k| k.get("_id").cloned())
        .context("change event without documentKey._id")
}

/// Parse one event. Events the tail cannot apply faithfully are errors that say what
/// happened on the source, so the tail stops instead of skipping them.
pub fn parse(ev: &Document) -> Result<Event> {
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
        "insert" | "replace" => {
            let ns = ns_of(ev, "ns")?;
            let doc = ev
                .get_document("fullDocument")
                .with_context(|| format!("{kind} event on {ns} without fullDocument"))?
                .clone();
            Op::Upsert {
                id: id_of(ev)?,
                ns,
                doc,
            }
        }
        "update" => {
            let ns = ns_of(ev, "ns")?;
            match ev.get("fullDocument") {
                Some(Bson::Document(d)) => Op::Upsert {
                    id: id_of(ev)?,
                    ns,
                    doc: d.clone(),
                },
                _ => Op::Gone { ns },
            }
        }
        "delete" => Op::Delete {
            ns: ns_of(ev, "ns")?,
            id: id_of(ev)?,
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
    Ok(Event { op, time, wall_ms })
}

impl Op {
    /// The namespace the operation is about (a database's for DropDatabase).
    pub fn ns(&self) -> Namespace {
        match self {
            Op::Upsert { ns, .. }
            | Op::Delete { ns, .. }
            | Op::Gone { ns }
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
        doc! { "operationType": kind, "clusterTime": Timestamp { time: 10, increment: 2 }, "ns": { "db": "d", "coll": "c" } }
    }

    #[test]
    fn crud() {
        let mut e = base("insert");
        e.insert("documentKey", doc! { "_id": 1 });
        e.insert("fullDocument", doc! { "_id": 1, "a.b": 2 });
        let ev = parse(&e).unwrap();
        assert_eq!(ev.time.time, 10);
        assert!(matches!(ev.op, Op::Upsert { ref doc, .. } if doc.get_i32("a.b") == Ok(2)));

        let mut u = base("update");
        u.insert("documentKey", doc! { "_id": 1 });
        u.insert("fullDocument", Bson::Null);
        assert!(matches!(parse(&u).unwrap().op, Op::Gone { .. }));

        let mut d = base("delete");
        d.insert("documentKey", doc! { "_id": "x" });
        assert_eq!(
            parse(&d).unwrap().op,
            Op::Delete {
                ns: Namespace::new("d", "c"),
                id: Bson::String("x".into())
            }
        );
    }

    #[test]
    fn ddl() {
        let mut r = base("rename");
        r.insert("to", doc! { "db": "d", "coll": "e" });
        assert_eq!(
            parse(&r).unwrap().op,
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
        let err = parse(&ts).unwrap_err().to_string();
        assert!(err.contains("time-series"), "{err}");
        let mut di = base("dropIndexes");
        di.insert(
            "operationDescription",
            doc! { "indexes": [ { "name": "a_1", "key": { "a": 1 } } ] },
        );
        assert_eq!(
            parse(&di).unwrap().op,
            Op::DropIndexes {
                ns: Namespace::new("d", "c"),
                names: vec!["a_1".into()]
            }
        );
        assert!(parse(&base("reshardCollection")).is_err());
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
