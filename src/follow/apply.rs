//! Applying parsed change events to the target, in the source's order. Consecutive
//! document changes to one collection go in one ordered `update` or `delete` command
//! (replacements with upsert, deletes by `_id`), so a busy source costs round trips per
//! batch, not per event. DDL is applied one event at a time; indexes and collections are
//! created relaxed (see `load::relax`). Every write bypasses validation: the source
//! accepted the document.

use anyhow::{anyhow, Context, Result};
use mongodb::bson::{doc, Bson, Document};
use mongodb::Client;

use super::event::{Event, Op};
use crate::load::relax;
use crate::load::state::StateStore;
use crate::mongo::schema;
use crate::namespace::{Filter, Namespace, Renamer};

/// Most statements in one write command (the server's own cap is 100,000).
const MAX_RUN: usize = 1000;

/// Which source namespaces the tail follows.
#[derive(Clone)]
pub struct Selection {
    /// Empty: every user database.
    pub dbs: Vec<String>,
    pub filter: Filter,
    pub renamer: Renamer,
}

/// Databases never followed: the server's own, and ours.
pub const SKIPPED_DBS: [&str; 4] = ["admin", "config", "local", crate::load::state::DB];

impl Selection {
    pub fn db_selected(&self, db: &str) -> bool {
        !SKIPPED_DBS.contains(&db) && (self.dbs.is_empty() || self.dbs.iter().any(|d| d == db))
    }

    pub fn selected(&self, ns: &Namespace) -> bool {
        self.db_selected(&ns.db) && !ns.coll.starts_with("system.") && self.filter.allows(ns)
    }
}

#[derive(PartialEq, Clone, Copy)]
enum RunKind {
    Upsert,
    Delete,
}

pub struct Applier {
    pub target: Client,
    pub selection: Selection,
    /// Where relaxed indexes are recorded.
    pub state: StateStore,
}

impl Applier {
    /// Apply `events` in order; returns how many changed something we follow.
    pub async fn apply(&self, events: &[Event]) -> Result<u64> {
        let mut applied = 0u64;
        let mut run: Option<(Namespace, Namespace, RunKind, Vec<Document>)> = None;
        for ev in events {
            let (kind, stmt, ns) = match &ev.op {
                Op::Upsert { ns, id, doc } => (RunKind::Upsert, upsert_stmt(id, doc), ns),
                Op::Delete { ns, id } => (
                    RunKind::Delete,
                    doc! { "q": { "_id": id.clone() }, "limit": 1 },
                    ns,
                ),
                Op::Gone { .. } => continue,
                _ => {
                    if let Some((s, t, k, stmts)) = run.take() {
                        self.write(&s, &t, k, stmts).await?;
                    }
                    if self.ddl(&ev.op).await? {
                        applied += 1;
                    }
                    continue;
                }
            };
            if !self.selection.selected(ns) {
                continue;
            }
            applied += 1;
            match &mut run {
                Some((s, _, k, stmts)) if s == ns && *k == kind && stmts.len() < MAX_RUN => {
                    stmts.push(stmt)
                }
                _ => {
                    if let Some((s, t, k, stmts)) = run.take() {
                        self.write(&s, &t, k, stmts).await?;
                    }
                    let t = self.selection.renamer.map(ns);
                    run = Some((ns.clone(), t, kind, vec![stmt]));
                }
            }
        }
        if let Some((s, t, k, stmts)) = run.take() {
            self.write(&s, &t, k, stmts).await?;
        }
        Ok(applied)
    }

    async fn write(
        &self,
        source: &Namespace,
        t: &Namespace,
        kind: RunKind,
        stmts: Vec<Document>,
    ) -> Result<()> {
        let n = stmts.len();
        let stmts: Vec<Bson> = stmts.into_iter().map(Bson::Document).collect();
        let cmd = match kind {
            RunKind::Upsert => {
                doc! { "update": &t.coll, "updates": stmts, "ordered": true, "bypassDocumentValidation": true }
            }
            RunKind::Delete => doc! { "delete": &t.coll, "deletes": stmts, "ordered": true },
        };
        let what = || {
            let verb = if kind == RunKind::Upsert {
                "writing"
            } else {
                "deleting"
            };
            format!("{verb} {n} changed document(s) of {source} into {t} on the target")
        };
        let reply = self
            .target
            .database(&t.db)
            .run_command(cmd)
            .await
            .with_context(what)?;
        if let Ok(errs) = reply.get_array("writeErrors") {
            if let Some(e) = errs.first().and_then(Bson::as_document) {
                return Err(anyhow!(
                    "code {}: {}",
                    e.get_i32("code").unwrap_or(0),
                    e.get_str("errmsg").unwrap_or("write error")
                ))
                .with_context(what);
            }
        }
        if let Ok(e) = reply.get_document("writeConcernError") {
            return Err(anyhow!(
                "write concern error: {}",
                e.get_str("errmsg").unwrap_or("?")
            ))
            .with_context(what);
        }
        Ok(())
    }

    /// Apply one DDL event; false when it concerns nothing we follow.
    async fn ddl(&self, op: &Op) -> Result<bool> {
        let sel = &self.selection;
        match op {
            Op::Rename { from, to } => return self.rename(from, to).await,
            Op::DropDatabase { db } => {
                if !sel.db_selected(db) {
                    return Ok(false);
                }
                let t = sel.renamer.map(&Namespace::new(db, "x")).db;
                self.target.database(&t).drop().await.with_context(|| {
                    format!("dropping database {t} on the target (dropped on the source as {db})")
                })?;
                self.state
                    .forget_relaxed(&Namespace::new(&t, ""), None)
                    .await?;
                return Ok(true);
            }
            _ => {}
        }
        let ns = op.ns();
        if !sel.selected(&ns) {
            return Ok(false);
        }
        let t = sel.renamer.map(&ns);
        let db = self.target.database(&t.db);
        match op {
            Op::Create { options, .. } => {
                let mut options = options.clone();
                if let Ok(on) = options.get_str("viewOn") {
                    let mapped = sel.renamer.map(&Namespace::new(&ns.db, on));
                    if mapped.db == t.db {
                        options.insert("viewOn", mapped.coll);
                    }
                } else {
                    let (relaxed, r) = relax::options(&t, &options);
                    options = relaxed;
                    if let Some(r) = r {
                        self.state.save_relaxed(&r).await?;
                    }
                }
                if !schema::exists(&self.target, &t).await? {
                    schema::create(&self.target, &t, &options).await?;
                }
            }
            Op::CreateIndexes { indexes, .. } => {
                let mut specs = Vec::new();
                for spec in schema::buildable(indexes) {
                    let (spec, r) = relax::index(&t, &spec);
                    if let Some(r) = r {
                        self.state.save_relaxed(&r).await?;
                    }
                    specs.push(spec);
                }
                schema::create_indexes(&self.target, &t, specs).await?;
            }
            Op::DropIndexes { names, .. } => {
                for name in names {
                    let r = db
                        .run_command(doc! { "dropIndexes": &t.coll, "index": name })
                        .await;
                    if let Err(e) = r {
                        // Already gone (a re-applied event): nothing to do.
                        if !matches!(crate::mongo::errors::code(&e), Some(26 | 27)) {
                            return Err(e).with_context(|| format!("dropping index {name} of {t}"));
                        }
                    }
                    self.state.forget_relaxed(&t, Some(name)).await?;
                }
            }
            Op::Modify { changes, .. } => self.modify(&t, changes).await?,
            Op::Drop { .. } => {
                db.collection::<Document>(&t.coll)
                    .drop()
                    .await
                    .with_context(|| format!("dropping {t} on the target"))?;
                self.state.forget_relaxed(&t, None).await?;
            }
            Op::Upsert { .. }
            | Op::Delete { .. }
            | Op::Gone { .. }
            | Op::Rename { .. }
            | Op::DropDatabase { .. } => {}
        }
        Ok(true)
    }

    /// `collMod`: what would make the target change on its own (an index's TTL, unique)
    /// goes into the relaxed record; the rest is applied.
    async fn modify(&self, t: &Namespace, changes: &Document) -> Result<()> {
        let mut cmd = doc! { "collMod": &t.coll };
        for (k, v) in changes {
            match (k.as_str(), v) {
                ("index", Bson::Document(ix)) => {
                    let mut ix = ix.clone();
                    let name = match ix.get_str("name") {
                        Ok(n) => n.to_string(),
                        Err(_) => self.index_name(t, &ix).await?,
                    };
                    let ttl = ix.remove("expireAfterSeconds");
                    let unique = ix.remove("unique");
                    ix.remove("prepareUnique");
                    if ttl.is_some() || unique.is_some() {
                        let mut r = self
                            .state
                            .relaxed()
                            .await?
                            .into_iter()
                            .find(|r| r.ns == *t && r.index.as_deref() == Some(&name))
                            .unwrap_or(relax::Relaxed {
                                ns: t.clone(),
                                index: Some(name.clone()),
                                expire_after_seconds: None,
                                unique: false,
                            });
                        if let Some(s) = relax::seconds(ttl.as_ref()) {
                            r.expire_after_seconds = Some(s);
                        }
                        if unique == Some(Bson::Boolean(true)) {
                            r.unique = true;
                        }
                        self.state.save_relaxed(&r).await?;
                    }
                    // Anything left (hidden) applies as it is.
                    if ix.keys().any(|k| k != "name" && k != "keyPattern") {
                        ix.insert("name", name);
                        ix.remove("keyPattern");
                        cmd.insert("index", ix);
                    }
                }
                ("expireAfterSeconds", v) => {
                    let mut r = relax::Relaxed {
                        ns: t.clone(),
                        index: None,
                        expire_after_seconds: None,
                        unique: false,
                    };
                    r.expire_after_seconds = relax::seconds(Some(v));
                    self.state.save_relaxed(&r).await?;
                }
                _ => {
                    cmd.insert(k.clone(), v.clone());
                }
            }
        }
        if cmd.len() > 1 {
            let r = self.target.database(&t.db).run_command(cmd).await;
            if let Err(e) = r {
                if crate::mongo::errors::code(&e) != Some(26) {
                    return Err(e).with_context(|| format!("applying collMod to {t}"));
                }
            }
        }
        Ok(())
    }

    async fn index_name(&self, t: &Namespace, ix: &Document) -> Result<String> {
        let key = ix
            .get_document("keyPattern")
            .context("collMod index change without name or keyPattern")?;
        let specs = crate::mongo::namespaces::indexes(&self.target, &t.db, &t.coll).await?;
        specs
            .iter()
            .find(|s| s.get_document("key").ok() == Some(key))
            .and_then(|s| s.get_str("name").ok().map(String::from))
            .with_context(|| {
                format!("collMod on {t} changes an index the target does not have ({key})")
            })
    }

    async fn rename(&self, from: &Namespace, to: &Namespace) -> Result<bool> {
        let sel = &self.selection;
        let (f, t) = (sel.selected(from), sel.selected(to));
        match (f, t) {
            (false, false) => Ok(false),
            (true, false) => {
                // Renamed out of what we follow: the target no longer has it either.
                let tf = sel.renamer.map(from);
                self.target
                    .database(&tf.db)
                    .collection::<Document>(&tf.coll)
                    .drop()
                    .await
                    .with_context(|| format!("dropping {tf} (renamed on the source to {to}, which is not migrated)"))?;
                self.state.forget_relaxed(&tf, None).await?;
                Ok(true)
            }
            (false, true) => Err(anyhow!(
                "{from} was renamed to {to} on the source: {to} is migrated but {from} was not, so the tail has none of its documents. \
                 Stop the tail and copy {to} (migrate --ns-include '{to}' --drop), then follow again"
            )),
            (true, true) => {
                let (tf, tt) = (sel.renamer.map(from), sel.renamer.map(to));
                let r = self
                    .target
                    .database("admin")
                    .run_command(doc! { "renameCollection": tf.to_string(), "to": tt.to_string(), "dropTarget": true })
                    .await;
                if let Err(e) = r {
                    // Re-applied after a restart: the rename already happened.
                    if crate::mongo::errors::code(&e) != Some(26) {
                        return Err(e).with_context(|| format!("renaming {tf} to {tt} on the target"));
                    }
                }
                self.state.rename_relaxed(&tf, &tt).await?;
                Ok(true)
            }
        }
    }
}

/// A replacement with upsert: the document as the source holds it. A document with a
/// top-level `$` field name would read as update operators, so it goes in as a literal.
fn upsert_stmt(id: &Bson, d: &Document) -> Document {
    let u = if d.keys().any(|k| k.starts_with('$')) {
        Bson::Array(vec![Bson::Document(
            doc! { "$replaceWith": { "$literal": d.clone() } },
        )])
    } else {
        Bson::Document(d.clone())
    };
    doc! { "q": { "_id": id.clone() }, "u": u, "upsert": true }
}
