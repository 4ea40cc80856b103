//! Applying parsed change events to the target. Each document's changes are applied in
//! the source's order; independent documents are applied at once in lanes (see `lanes`),
//! and DDL and transactions are barriers applied in order. Document changes go in ordered
//! `update` or `delete` commands (replacements with upsert, deletes by `_id`), many
//! statements each, so a busy source costs round trips per batch, not per event; a command
//! never passes the server's size limits. DDL is applied one event at a time; indexes and collections are created relaxed (see `load::relax`).
//! Documents are written as the raw bytes the source sent, bypassing validation (the
//! source accepted them), with their empty top-level timestamps given back after the
//! server filled them in (see `raw_write`); `_id`s are matched with the simple collation
//! whatever the collection's default.

use anyhow::{anyhow, Context, Result};
use mongodb::bson::{doc, Bson, Document, RawDocumentBuf, Timestamp};
use mongodb::Client;

use super::event::{Event, Op, RawId};
use super::lanes::{self, Lane, Stmt, LANES};
use crate::load::relax;
use crate::load::state::StateStore;
use crate::mongo::raw_write::{self, MAX_COMMAND_DOCS};
use crate::mongo::schema;
use crate::namespace::{Filter, Namespace, Renamer};
use crate::rawbson;

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

    /// `system.js` (stored functions) is user data; the other `system.` collections are
    /// the server's (views travel as their own create events).
    pub fn selected(&self, ns: &Namespace) -> bool {
        self.db_selected(&ns.db)
            && (!ns.coll.starts_with("system.") || ns.coll == "system.js")
            && self.filter.allows(ns)
    }
}

/// One statement of a change: its kind, bytes and the `_id` it is about.
type Statement = (RunKind, Vec<u8>, RawId);

#[derive(PartialEq, Clone, Copy, Debug)]
enum RunKind {
    Upsert,
    Delete,
    Insert,
}

/// Consecutive statements of one kind for one collection: one write command.
struct Run {
    source: Namespace,
    target: Namespace,
    kind: RunKind,
    /// Raw statements (update/delete) or documents (insert).
    stmts: Vec<Vec<u8>>,
    /// The `_id` each statement is about, to name it when the server refuses one.
    ids: Vec<RawId>,
    /// The source time of each statement's change.
    times: Vec<Timestamp>,
    bytes: usize,
}

impl Run {
    fn push(&mut self, stmt: Vec<u8>, id: RawId, time: Timestamp) {
        self.bytes += rawbson::array_elem_cost(self.stmts.len(), stmt.len());
        self.stmts.push(stmt);
        self.ids.push(id);
        self.times.push(time);
    }

    fn fits(&self, ns: &Namespace, kind: RunKind, len: usize) -> bool {
        self.source == *ns
            && self.kind == kind
            && self.stmts.len() < MAX_RUN
            && self.bytes + rawbson::array_elem_cost(self.stmts.len(), len) <= MAX_COMMAND_DOCS
    }
}

pub struct Applier {
    pub target: Client,
    pub selection: Selection,
    /// Where relaxed indexes are recorded.
    pub state: StateStore,
    /// The one change to leave out (`--skip-change`: a decision the user made and the run
    /// record keeps).
    pub skip: Option<Refused>,
    /// Changes left out so far, for the tail to log and record.
    pub skipped: std::sync::Mutex<Vec<Refused>>,
    /// Per target namespace: whether its changes must be applied one after another in the
    /// source's order, and when that was looked up (see `in_order`).
    pub ordered: std::sync::Mutex<std::collections::HashMap<Namespace, (bool, std::time::Instant)>>,
}

/// How long a namespace's `in_order` answer is trusted: a unique index created on the
/// target by hand while following is taken into account within this time. Every DDL
/// event forgets all answers.
const ORDER_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// A document change the target refused. The tail stops on it (its position stays before
/// it, so nothing is lost silently) and says how to go on.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub time: Timestamp,
    pub ns: Namespace,
    pub id: RawId,
    pub reason: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (t, i) = (self.time.time, self.time.increment);
        write!(
            f,
            "the target refused the change of {} _id {} made on the source at {t}:{i} ({}). The tail stopped \
             there: its position stays before this change (changes of other documents after it may be applied \
             already and are applied again, unchanged, on resume). Fix the cause on the target and run the same command with --resume; \
             or, to leave exactly this change out (the decision is kept in the run record), run it with \
             --resume --skip-change {t}:{i}",
            self.ns,
            self.id.describe(),
            self.reason
        )
    }
}

impl std::error::Error for Refused {}

impl Refused {
    pub fn to_ref(&self) -> super::record::ChangeRef {
        super::record::ChangeRef {
            t: self.time.time,
            i: self.time.increment,
            ns: self.ns.to_string(),
            id: self.id.describe(),
            id_bson: self
                .id
                .filter()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            reason: self.reason.clone(),
        }
    }

    pub fn from_ref(r: &super::record::ChangeRef) -> Option<Refused> {
        let bytes: Vec<u8> = (0..r.id_bson.len())
            .step_by(2)
            .map(|i| {
                r.id_bson
                    .get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<_>>()?;
        let id = rawbson::find(&bytes, "_id").ok()??;
        Some(Refused {
            time: Timestamp {
                time: r.t,
                increment: r.i,
            },
            ns: Namespace::parse(&r.ns)?,
            id: RawId::of(&id),
            reason: r.reason.clone(),
        })
    }

    fn matches(&self, time: Timestamp, ns: &Namespace, id: &RawId) -> bool {
        self.time == time && self.ns == *ns && self.id == *id
    }
}

impl Applier {
    /// Apply `events`; returns how many changed something we follow. Document changes
    /// between two barriers go through the lanes at once (see `lanes`); a DDL event or a
    /// transaction is a barrier: everything before it is applied, then it, in order, then
    /// what follows. When this returns Ok, every event given is applied.
    pub async fn apply(&self, events: &[Event]) -> Result<u64> {
        let mut applied = 0u64;
        let mut rest = events;
        while let Some(first) = rest.first() {
            let independent = |e: &Event| e.txn.is_none() && e.op.is_document_change();
            let n = if independent(first) {
                rest.iter().take_while(|e| independent(e)).count()
            } else if first.txn.is_some() {
                rest.iter().take_while(|e| e.txn == first.txn).count()
            } else {
                1
            };
            let (now, later) = rest.split_at(n);
            applied += if independent(first) {
                self.apply_lanes(now).await?
            } else {
                let n = self.apply_in_order(&now.iter().collect::<Vec<_>>()).await?;
                if now.iter().any(|e| !e.op.is_document_change()) {
                    // A DDL event may have created, dropped or converted a collection.
                    self.ordered
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clear();
                }
                n
            };
            rest = later;
        }
        Ok(applied)
    }

    /// The statements a document change becomes, with its source namespace; None when it
    /// changes nothing we follow (or is the change `--skip-change` leaves out).
    fn statements<'e>(&self, ev: &'e Event) -> Result<Option<(&'e Namespace, Vec<Statement>)>> {
        let (ns, stmts) = match &ev.op {
            Op::Upsert { ns, id, doc } => (ns, upsert_stmts(id, doc)),
            Op::Delete { ns, id } => (ns, vec![(RunKind::Delete, delete_stmt(id), id.clone())]),
            Op::Gone { .. } => return Ok(None),
            Op::Lookup { ns, id } => {
                // The reader resolves these before they reach us.
                return Err(anyhow!(
                    "internal: the change to {ns} _id {} reached the target without its document",
                    id.describe()
                ));
            }
            _ => return Err(anyhow!("internal: a DDL event taken for a document change")),
        };
        if !self.selection.selected(ns) {
            return Ok(None);
        }
        if let Some(skip) = self.skip.as_ref().filter(|s| {
            stmts
                .first()
                .is_some_and(|(_, _, id)| s.matches(ev.time, ns, id))
        }) {
            self.skipped
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(skip.clone());
            return Ok(None);
        }
        Ok(Some((ns, stmts)))
    }

    /// Independent document changes: split into lanes by document, the lanes applied at
    /// once, each in waves. Every lane runs to its end or its first error; of the errors,
    /// the refused change the source made first is reported (as the sequential tail would
    /// have), and the position is not moved past any of them.
    async fn apply_lanes(&self, events: &[Event]) -> Result<u64> {
        let mut applied = 0u64;
        let mut lanes: Vec<Lane<RunKind>> = (0..LANES).map(|_| Lane::default()).collect();
        // Namespaces whose changes must keep the source's order across documents go to
        // one more lane, applied in order (beside the others).
        let mut in_order: Vec<&Event> = Vec::new();
        for ev in events {
            let source = ev.op.ns();
            if self.selection.selected(&source)
                && self.in_order(&self.selection.renamer.map(&source)).await?
            {
                in_order.push(ev);
                continue;
            }
            let Some((ns, stmts)) = self.statements(ev)? else {
                continue;
            };
            applied += 1;
            let target = self.selection.renamer.map(ns);
            for (kind, bytes, id) in stmts {
                let key = lanes::doc_key(&target, &id);
                lanes[lanes::lane_of(key)].push(
                    key,
                    ns,
                    Stmt {
                        kind,
                        bytes,
                        id,
                        time: ev.time,
                    },
                );
            }
        }
        let ordered = async {
            let n = self.apply_in_order(&in_order).await?;
            anyhow::Ok(n)
        };
        let (ordered, mut results) = futures::future::join(
            ordered,
            futures::future::join_all(
                lanes
                    .into_iter()
                    .filter(|l| !l.is_empty())
                    .map(|l| self.apply_lane(l)),
            ),
        )
        .await;
        match ordered {
            Ok(n) => applied += n,
            Err(e) => results.push(Err(e)),
        }
        let mut first_refused: Option<anyhow::Error> = None;
        let mut other: Option<anyhow::Error> = None;
        for e in results.into_iter().filter_map(Result::err) {
            match e.downcast_ref::<Refused>() {
                Some(r) => {
                    let earlier = first_refused
                        .as_ref()
                        .and_then(|f| f.downcast_ref::<Refused>())
                        .is_none_or(|f| {
                            (r.time.time, r.time.increment) < (f.time.time, f.time.increment)
                        });
                    if earlier {
                        first_refused = Some(e);
                    }
                }
                None => {
                    other.get_or_insert(e);
                }
            }
        }
        match first_refused.or(other) {
            Some(e) => Err(e),
            None => Ok(applied),
        }
    }

    /// Whether changes to the target namespace `t` must be applied in the source's order
    /// across documents: a capped collection (its `$natural` order is the order of its
    /// inserts), or one with a unique index only the target has (the tail's own unique
    /// indexes are relaxed while following; with another, which of two documents is
    /// refused depends on the order they arrive in).
    async fn in_order(&self, t: &Namespace) -> Result<bool> {
        if let Some((v, at)) = self
            .ordered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(t)
        {
            if at.elapsed() < ORDER_TTL {
                return Ok(*v);
            }
        }
        let what = || format!("looking up {t} on the target");
        let specs: Vec<Document> = futures::TryStreamExt::try_collect(
            self.target
                .database(&t.db)
                .run_cursor_command(doc! { "listCollections": 1, "filter": { "name": &t.coll } })
                .await
                .with_context(what)?,
        )
        .await
        .with_context(what)?;
        let capped = specs.first().is_some_and(|s| {
            s.get_document("options")
                .is_ok_and(|o| o.get_bool("capped").unwrap_or(false))
        });
        let unique = !capped
            && !specs.is_empty()
            && crate::mongo::namespaces::indexes(&self.target, &t.db, &t.coll)
                .await
                .map(|ix| {
                    ix.iter().any(|i| {
                        i.get_bool("unique").unwrap_or(false)
                            && !i
                                .get_document("key")
                                .is_ok_and(|k| k.len() == 1 && k.contains_key("_id"))
                    })
                })
                // Gone meanwhile: a later event says what happened to it.
                .unwrap_or(false);
        let v = capped || unique;
        self.ordered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(t.clone(), (v, std::time::Instant::now()));
        Ok(v)
    }

    /// One lane: its waves one after another, each group as ordered commands.
    async fn apply_lane(&self, lane: Lane<RunKind>) -> Result<()> {
        for wave in lane.waves {
            for group in wave {
                let mut run: Option<Run> = None;
                for s in group.stmts {
                    if !run
                        .as_ref()
                        .is_some_and(|r| r.fits(&group.source, group.kind, s.bytes.len()))
                    {
                        if let Some(r) = run.take() {
                            self.write(r).await?;
                        }
                        run = Some(self.new_run(&group.source, group.kind));
                    }
                    if let Some(r) = run.as_mut() {
                        r.push(s.bytes, s.id, s.time);
                    }
                }
                if let Some(r) = run.take() {
                    self.write(r).await?;
                }
            }
        }
        Ok(())
    }

    fn new_run(&self, ns: &Namespace, kind: RunKind) -> Run {
        Run {
            source: ns.clone(),
            target: self.selection.renamer.map(ns),
            kind,
            stmts: Vec::new(),
            ids: Vec::new(),
            times: Vec::new(),
            bytes: 5,
        }
    }

    /// Apply `events` one after another, in the source's order (a transaction, DDL):
    /// consecutive changes to one collection still share a command.
    async fn apply_in_order(&self, events: &[&Event]) -> Result<u64> {
        let mut applied = 0u64;
        let mut run: Option<Run> = None;
        for &ev in events {
            if !ev.op.is_document_change() {
                if let Some(r) = run.take() {
                    self.write(r).await?;
                }
                if self.ddl(&ev.op).await? {
                    applied += 1;
                }
                continue;
            }
            let Some((ns, stmts)) = self.statements(ev)? else {
                continue;
            };
            applied += 1;
            for (kind, stmt, id) in stmts {
                if !run.as_ref().is_some_and(|r| r.fits(ns, kind, stmt.len())) {
                    if let Some(r) = run.take() {
                        self.write(r).await?;
                    }
                    run = Some(self.new_run(ns, kind));
                }
                if let Some(r) = run.as_mut() {
                    r.push(stmt, id, ev.time);
                }
            }
        }
        if let Some(r) = run.take() {
            self.write(r).await?;
        }
        Ok(applied)
    }

    async fn write(&self, run: Run) -> Result<()> {
        let Run {
            source,
            target: t,
            kind,
            stmts,
            ids,
            times,
            ..
        } = run;
        let n = stmts.len();
        let what = |id: Option<&RawId>| {
            let verb = match kind {
                RunKind::Upsert | RunKind::Insert => "writing",
                RunKind::Delete => "deleting",
            };
            match id {
                Some(id) => format!(
                    "{verb} the changed document {source} _id {} into {t} on the target",
                    id.describe()
                ),
                None => {
                    format!("{verb} {n} changed document(s) of {source} into {t} on the target")
                }
            }
        };
        let db = self.target.database(&t.db);
        let outcome = if kind == RunKind::Insert {
            // Framed as documents before they are framed into a command.
            let docs = stmts
                .iter()
                .map(|d| mongodb::bson::RawDocument::from_bytes(d).map(|_| d.as_slice()))
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| what(None))?;
            raw_write::insert_raw(&db, &t.coll, &docs)
                .await
                .with_context(|| what(None))?
        } else {
            let stmt_slices: Vec<&[u8]> = stmts.iter().map(Vec::as_slice).collect();
            let mut cmd = rawbson::Builder::new();
            if kind == RunKind::Upsert {
                cmd.str("update", &t.coll)
                    .doc_array("updates", &stmt_slices)
                    .bool("ordered", true)
                    .bool("bypassDocumentValidation", true);
            } else {
                cmd.str("delete", &t.coll)
                    .doc_array("deletes", &stmt_slices)
                    .bool("ordered", true);
            }
            // Replacements and deletes by _id may be sent again.
            let (reply, _) = raw_write::run_idempotent(&db, cmd.finish())
                .await
                .with_context(|| what(None))?;
            raw_write::outcome_of(&reply, 0).with_context(|| what(None))?
        };
        if let Some(e) = outcome.errors.first() {
            if let (Some(id), Some(time)) = (ids.get(e.index), times.get(e.index)) {
                return Err(anyhow::Error::new(Refused {
                    time: *time,
                    ns: source.clone(),
                    id: id.clone(),
                    reason: format!("code {}: {}", e.code, e.message),
                }));
            }
            return Err(anyhow!("code {}: {}", e.code, e.message)).with_context(|| what(None));
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
                relax::build(&self.target, &t, schema::buildable(indexes), &self.state).await?;
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
            | Op::Lookup { .. }
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
                    // Held back like unique itself: applied now, it would refuse changes
                    // that arrive in another order than the source saw them.
                    let prepare = ix.remove("prepareUnique");
                    if ttl.is_some() || unique.is_some() || prepare.is_some() {
                        let mut r = self
                            .state
                            .relaxed()
                            .await?
                            .into_iter()
                            .find(|r| r.ns == *t && r.index.as_deref() == Some(&name))
                            .unwrap_or(relax::Relaxed::none(t, Some(&name)));
                        if let Some(s) = relax::seconds(ttl.as_ref()) {
                            r.expire_after_seconds = Some(s);
                        }
                        if unique == Some(Bson::Boolean(true)) {
                            r.unique = true;
                        }
                        if let Some(Bson::Boolean(p)) = prepare {
                            r.prepare_unique = p;
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
                    let mut r = relax::Relaxed::none(t, None);
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

/// The statements that make the target hold `doc` for `id`: a replacement with upsert (the
/// document as the source holds it). A document with a top-level `$` field name would read
/// as update operators, and a pipeline's `$literal` would rebuild it, so it is deleted and
/// inserted again as its bytes instead.
fn upsert_stmts(id: &RawId, doc: &RawDocumentBuf) -> Vec<Statement> {
    let dollar =
        rawbson::iter(doc.as_bytes()).any(|e| e.is_ok_and(|e| e.key.first() == Some(&b'$')));
    if dollar {
        return vec![
            (RunKind::Delete, delete_stmt(id), id.clone()),
            (RunKind::Insert, doc.as_bytes().to_vec(), id.clone()),
        ];
    }
    let mut b = rawbson::Builder::with_capacity(doc.as_bytes().len() + id.value.len() + 64);
    b.doc("q", &id.filter())
        .doc("u", doc.as_bytes())
        .bool("upsert", true)
        .doc("collation", &rawbson::simple_collation());
    let mut out = vec![(RunKind::Upsert, b.finish_bytes(), id.clone())];
    // The replacement had the server fill in empty top-level timestamps; put them back.
    if let Some(fix) = raw_write::empty_ts_fix(doc.as_bytes()) {
        out.push((RunKind::Upsert, fix, id.clone()));
    }
    out
}

fn delete_stmt(id: &RawId) -> Vec<u8> {
    let mut b = rawbson::Builder::new();
    b.doc("q", &id.filter())
        .i32("limit", 1)
        .doc("collation", &rawbson::simple_collation());
    b.finish_bytes()
}
