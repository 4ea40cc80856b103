//! Resume state, kept in the target cluster's `mongoshift` database, so that an interrupted
//! load re-run with `--resume` skips what completed and cleanly redoes the rest. A unit is
//! a whole target namespace, or one `_id` range (`part`) of a collection copied in parts.
//! `restore` keeps its state in `mongoshift.restore_state`, `migrate` in
//! `mongoshift.migrations`; `source` names the run (a backup id, a source cluster).

use anyhow::{Context, Result};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::Client;

use crate::namespace::Namespace;

pub const DB: &str = "mongoshift";
pub const RESTORE: &str = "restore_state";
pub const MIGRATE: &str = "migrations";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NsState {
    Loading,
    Done,
}

/// One recorded unit: a namespace, or a part of one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Unit {
    pub ns: Namespace,
    pub part: Option<u32>,
}

/// The state of one kind of load (restore or migrate) in one target cluster.
#[derive(Clone)]
pub struct StateStore {
    coll: mongodb::Collection<Document>,
    name: &'static str,
    source: String,
}

impl StateStore {
    pub fn new(client: &Client, name: &'static str, source: &str) -> StateStore {
        StateStore {
            coll: client.database(DB).collection(name),
            name,
            source: source.to_string(),
        }
    }

    fn id(&self, u: &Unit) -> String {
        match u.part {
            Some(p) => format!("{}|{}#{p}", self.source, u.ns),
            None => format!("{}|{}", self.source, u.ns),
        }
    }

    /// Every recorded unit of this source and its state.
    pub async fn load(&self) -> Result<Vec<(Unit, NsState)>> {
        let what = || format!("reading {DB}.{}", self.name);
        let docs: Vec<Document> = self
            .coll
            .find(doc! { "source": &self.source })
            .await
            .with_context(what)?
            .try_collect()
            .await
            .with_context(what)?;
        Ok(docs
            .iter()
            .filter_map(|d| {
                let ns = Namespace::parse(d.get_str("ns").ok()?)?;
                let part = d.get_i64("part").ok().map(|p| p as u32);
                let st = if d.get_str("state").ok()? == "done" {
                    NsState::Done
                } else {
                    NsState::Loading
                };
                Some((Unit { ns, part }, st))
            })
            .collect())
    }

    pub async fn set(&self, u: &Unit, state: NsState) -> Result<()> {
        let s = match state {
            NsState::Loading => "loading",
            NsState::Done => "done",
        };
        let mut fields = doc! { "source": &self.source, "ns": u.ns.to_string(), "state": s, "updated_at": DateTime::now() };
        if let Some(p) = u.part {
            fields.insert("part", i64::from(p));
        }
        self.coll
            .update_one(doc! { "_id": self.id(u) }, doc! { "$set": fields })
            .upsert(true)
            .await
            .with_context(|| format!("recording the state of {} in {DB}.{}", u.ns, self.name))?;
        Ok(())
    }

    /// Remember the split points a namespace is copied in, so that a resumed run uses the
    /// same ranges (the points come from a random sample).
    pub async fn save_bounds(&self, ns: &Namespace, points: &[Bson]) -> Result<()> {
        self.coll
            .update_one(
                doc! { "_id": format!("{}|{ns}|bounds", self.source) },
                doc! { "$set": { "source": &self.source, "ns": ns.to_string(), "bounds": points.to_vec() } },
            )
            .upsert(true)
            .await
            .with_context(|| format!("recording the _id ranges of {ns} in {DB}.{}", self.name))?;
        Ok(())
    }

    /// The split points recorded for `ns`, if it was copied in ranges.
    pub async fn load_bounds(&self, ns: &Namespace) -> Result<Option<Vec<Bson>>> {
        let d = self
            .coll
            .find_one(doc! { "_id": format!("{}|{ns}|bounds", self.source) })
            .await
            .with_context(|| format!("reading {DB}.{}", self.name))?;
        Ok(d.and_then(|d| d.get_array("bounds").ok().cloned()))
    }

    /// Remember an index (or a clustered collection's TTL) built relaxed while following.
    pub async fn save_relaxed(&self, r: &crate::load::relax::Relaxed) -> Result<()> {
        let mut d = r.to_doc();
        d.insert("source", &self.source);
        d.insert("relaxed", true);
        self.coll
            .replace_one(
                doc! { "_id": self.relaxed_id(&r.ns, r.index.as_deref()) },
                d,
            )
            .upsert(true)
            .await
            .with_context(|| {
                format!(
                    "recording the relaxed index of {} in {DB}.{}",
                    r.ns, self.name
                )
            })?;
        Ok(())
    }

    fn relaxed_id(&self, ns: &Namespace, index: Option<&str>) -> String {
        format!("{}|relaxed|{ns}|{}", self.source, index.unwrap_or(""))
    }

    /// Every relaxed index recorded for this run.
    pub async fn relaxed(&self) -> Result<Vec<crate::load::relax::Relaxed>> {
        let what = || format!("reading {DB}.{}", self.name);
        let docs: Vec<Document> = self
            .coll
            .find(doc! { "source": &self.source, "relaxed": true })
            .await
            .with_context(what)?
            .try_collect()
            .await
            .with_context(what)?;
        Ok(docs
            .iter()
            .filter_map(crate::load::relax::Relaxed::from_doc)
            .collect())
    }

    /// Forget relaxed records: one index's, or (index None) a whole namespace's, or
    /// (`ns.coll` empty) a whole database's.
    pub async fn forget_relaxed(&self, ns: &Namespace, index: Option<&str>) -> Result<()> {
        let filter = match (index, ns.coll.is_empty()) {
            (Some(i), _) => doc! { "_id": self.relaxed_id(ns, Some(i)) },
            (None, false) => doc! { "source": &self.source, "relaxed": true, "ns": ns.to_string() },
            (None, true) => {
                let prefix = format!("^{}\\.", crate::mongo::oplog::regex_escape(&ns.db));
                doc! { "source": &self.source, "relaxed": true, "ns": { "$regex": prefix } }
            }
        };
        self.coll.delete_many(filter).await.with_context(|| {
            format!("updating the relaxed indexes of {ns} in {DB}.{}", self.name)
        })?;
        Ok(())
    }

    /// A collection renamed on the source keeps its relaxed indexes under its new name.
    pub async fn rename_relaxed(&self, from: &Namespace, to: &Namespace) -> Result<()> {
        for mut r in self.relaxed().await? {
            if r.ns == *from {
                self.forget_relaxed(from, Some(r.index.as_deref().unwrap_or("")))
                    .await?;
                r.ns = to.clone();
                self.save_relaxed(&r).await?;
            }
        }
        Ok(())
    }

    /// A finished load needs no resume state: this run's records go, other runs' stay.
    ///
    /// The collection itself stays, even empty. It used to be dropped when no other run's
    /// record was counted, but MongoDB has no "drop if empty": a run that wrote its first
    /// record between the count and the drop lost it (seen in CI as "the migration record
    /// disappeared" with two migrations into one cluster), and a run's state is worth more
    /// than an empty collection.
    pub async fn clear(&self) -> Result<()> {
        self.coll
            .delete_many(doc! { "source": &self.source })
            .await
            .with_context(|| format!("clearing {DB}.{}", self.name))?;
        Ok(())
    }
}
