//! `mongoshift indexes lint|plan|check|apply|export`: indexes as reviewed YAML,
//! drift as a failing CI check.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::error::ErrorKind;
use mongodb::Client;

use crate::cli::{parse_duration, Ctx, TargetArgs};
use crate::exit::{check_failed, usage};
use crate::indexes::plan::{self, Action, Step};
use crate::indexes::spec::{self, default_name, IndexDef, Specs};
use crate::mongo::{self as mongo_engine, namespaces, schema};
use crate::report::{confirm, table};

#[derive(Debug, Args)]
pub struct IndexesArgs {
    #[command(subcommand)]
    pub command: IndexesCommand,
}

#[derive(Debug, Args)]
pub struct SpecTarget {
    /// Spec files or folders (e.g. index-specs/).
    #[arg(required = true, value_name = "SPEC")]
    pub specs: Vec<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Plan drops of indexes that no spec lists (never `_id_`).
    #[arg(long)]
    pub prune: bool,
}

#[derive(Debug, Subcommand)]
pub enum IndexesCommand {
    /// Check spec files offline; problems are printed as file:line:column (exit 2).
    Lint {
        /// Spec files or folders (e.g. index-specs/).
        #[arg(required = true, value_name = "SPEC")]
        specs: Vec<PathBuf>,
    },
    /// Compare specs with the live database and show what apply would do.
    Plan(SpecTarget),
    /// Like plan, but exit 3 on any drift: the CI gate.
    Check(SpecTarget),
    /// Make the database match the specs (shows the plan, asks unless --yes).
    Apply {
        #[command(flatten)]
        t: SpecTarget,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// With --prune: hide unmanaged indexes first and drop them on a later apply.
        #[arg(long, requires = "prune")]
        hide_before_drop: bool,
        /// With --hide-before-drop: drop only indexes hidden at least this long ago.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "hide_before_drop")]
        drop_after: Option<Duration>,
    },
    /// Write the live indexes of a database as a spec (YAML on stdout or --out).
    Export {
        #[command(flatten)]
        target: TargetArgs,
        /// Database to export (default: the only non-system database).
        #[arg(long)]
        db: Option<String>,
        /// Write to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

pub async fn run(ctx: &Ctx, args: IndexesArgs) -> Result<()> {
    match args.command {
        IndexesCommand::Lint { specs } => lint(ctx, &specs),
        IndexesCommand::Plan(t) => {
            let steps = compute(ctx, &t).await?.1;
            show(ctx, &steps);
            Ok(())
        }
        IndexesCommand::Check(t) => {
            let steps = compute(ctx, &t).await?.1;
            show(ctx, &steps);
            let drift: Vec<String> = steps
                .iter()
                .filter(|s| s.is_drift())
                .map(describe)
                .collect();
            if drift.is_empty() {
                ctx.ui.info("indexes match the specs: no drift");
                Ok(())
            } else {
                Err(check_failed(format!("index drift: {}", drift.join("; "))))
            }
        }
        IndexesCommand::Apply {
            t,
            yes,
            hide_before_drop,
            drop_after,
        } => apply(ctx, &t, yes, hide_before_drop, drop_after).await,
        IndexesCommand::Export { target, db, out } => export(ctx, &target, db, out).await,
    }
}

fn describe(s: &Step) -> String {
    format!(
        "{}.{} {} ({:?})",
        s.database, s.collection, s.index, s.action
    )
    .to_lowercase()
}

fn load_specs(paths: &[PathBuf]) -> Result<Specs> {
    let (specs, issues) = spec::load(paths)?;
    if !issues.is_empty() {
        let lines: Vec<String> = issues
            .iter()
            .map(|i| format!("{}: {}", i.origin, i.message))
            .collect();
        return Err(usage(format!(
            "the index specs have {}:\n{}",
            table::count(issues.len() as u64, "problem", "problems"),
            lines.join("\n")
        )));
    }
    Ok(specs)
}

fn lint(ctx: &Ctx, paths: &[PathBuf]) -> Result<()> {
    let (specs, issues) = spec::load(paths)?;
    let warnings = spec::permuted_duplicates(&specs);
    let as_json = |list: &[spec::Issue]| -> Vec<serde_json::Value> {
        list.iter()
            .map(|i| serde_json::json!({ "file": i.origin.file, "line": i.origin.line, "column": i.origin.col, "message": i.message }))
            .collect()
    };
    if ctx.ui.json() {
        ctx.ui.result_json(&serde_json::json!({
            "ok": issues.is_empty(), "problems": as_json(&issues), "warnings": as_json(&warnings),
        }));
    } else {
        for i in &issues {
            ctx.ui.result(format!("{}: {}", i.origin, i.message));
        }
        for w in &warnings {
            ctx.ui.warn(w.to_string());
        }
    }
    if issues.is_empty() {
        let n: usize = specs
            .databases
            .values()
            .flat_map(|c| c.values())
            .map(Vec::len)
            .sum();
        ctx.ui.info(format!(
            "{} in {}: no problems",
            table::count(n as u64, "index", "indexes"),
            table::count(specs.databases.len() as u64, "database", "databases")
        ));
        Ok(())
    } else {
        Err(usage(format!(
            "{} in the index specs",
            table::count(issues.len() as u64, "problem", "problems")
        )))
    }
}

async fn live_indexes(client: &Client, db: &str, coll: &str) -> Result<Vec<Document>> {
    match namespaces::indexes(client, db, coll).await {
        Ok(v) => Ok(v),
        // A collection that does not exist yet has no indexes; apply creates it.
        Err(e) if e.chain().any(|c| matches!(c.downcast_ref::<mongodb::error::Error>().map(|e| &*e.kind), Some(ErrorKind::Command(ce)) if ce.code == 26)) => Ok(vec![]),
        Err(e) => Err(e),
    }
}

async fn compute(ctx: &Ctx, t: &SpecTarget) -> Result<(Client, Vec<Step>)> {
    let specs = load_specs(&t.specs)?;
    let target = t.target.resolve(&ctx.config)?;
    let client = mongo_engine::connect(&target, &t.target.connect_options()).await?;
    let mut steps = Vec::new();
    for (db, colls) in &specs.databases {
        for (coll, defs) in colls {
            let live = live_indexes(&client, db, coll).await?;
            steps.extend(plan::plan_collection(db, coll, defs, &live, t.prune));
        }
    }
    Ok((client, steps))
}

fn show(ctx: &Ctx, steps: &[Step]) {
    if ctx.ui.json() {
        ctx.ui.result_json(
            &serde_json::json!({ "drift": steps.iter().any(Step::is_drift), "steps": steps }),
        );
        return;
    }
    let mut t = table::new(["collection", "index", "action", "changes", "spec"]);
    for s in steps {
        t.add_row(vec![
            format!("{}.{}", s.database, s.collection),
            s.index.clone(),
            format!("{:?}", s.action).to_lowercase(),
            s.changes.join(", "),
            s.spec.clone().unwrap_or_default(),
        ]);
    }
    ctx.ui.result(t.to_string());
    let count = |a: Action| steps.iter().filter(|s| s.action == a).count();
    ctx.ui.result(format!(
        "{} ok, {} to create, {} to modify, {} to rebuild, {} to drop, {} unmanaged",
        count(Action::Ok),
        count(Action::Create),
        count(Action::Modify),
        count(Action::Rebuild),
        count(Action::Drop),
        count(Action::Unmanaged)
    ));
}

/// The createIndexes document for a spec index.
fn index_doc(d: &IndexDef) -> Document {
    let mut out = doc! { "key": d.key.iter().cloned().collect::<Document>(), "name": d.name.clone().unwrap_or_else(|| default_name(d)) };
    if d.unique {
        out.insert("unique", true);
    }
    if d.sparse {
        out.insert("sparse", true);
    }
    if d.hidden {
        out.insert("hidden", true);
    }
    if let Some(t) = d.expire_after {
        out.insert("expireAfterSeconds", t);
    }
    if let Some(p) = &d.partial_filter {
        out.insert("partialFilterExpression", p.clone());
    }
    if let Some(c) = &d.collation {
        out.insert("collation", c.clone());
    }
    if let Some(w) = &d.wildcard_projection {
        out.insert("wildcardProjection", w.clone());
    }
    if let Some(w) = &d.weights {
        out.insert(
            "weights",
            w.iter()
                .map(|(k, v)| (k.clone(), Bson::Int32(*v as i32)))
                .collect::<Document>(),
        );
    }
    if let Some(l) = &d.default_language {
        out.insert("default_language", l.clone());
    }
    if let Some(l) = &d.language_override {
        out.insert("language_override", l.clone());
    }
    out
}

const HIDDEN_STATE: &str = "hidden_indexes";

async fn apply(
    ctx: &Ctx,
    t: &SpecTarget,
    yes: bool,
    hide_first: bool,
    drop_after: Option<Duration>,
) -> Result<()> {
    let (client, steps) = compute(ctx, t).await?;
    let todo: Vec<&Step> = steps
        .iter()
        .filter(|s| !matches!(s.action, Action::Ok | Action::Unmanaged))
        .collect();
    show(ctx, &steps);
    if todo.is_empty() {
        ctx.ui
            .result("nothing to do: the database matches the specs");
        return Ok(());
    }
    if !yes {
        confirm::ask(
            &ctx.ui,
            &format!("apply these {} index changes?", todo.len()),
        )?;
    }
    let mut done: Vec<String> = Vec::new();
    for ((db, coll), group) in plan::by_collection(&steps) {
        let ns = format!("{db}.{coll}");
        let database = client.database(&db);
        let mut creates = Vec::new();
        for s in group {
            let live = s.live_name.clone().unwrap_or_default();
            match s.action {
                Action::Ok | Action::Unmanaged => {}
                Action::Create => creates.push(s),
                Action::Rebuild => {
                    database
                        .run_command(doc! { "dropIndexes": &coll, "index": &live })
                        .await
                        .map_err(|e| failed(&ns, &live, e, &done))?;
                    done.push(format!("{ns}: dropped {live} for rebuild"));
                    creates.push(s);
                }
                Action::Modify => {
                    let d = s.desired.as_ref().expect("spec steps carry their spec");
                    let mut index = doc! { "name": &live, "hidden": d.hidden };
                    if let Some(ttl) = d.expire_after {
                        index.insert("expireAfterSeconds", ttl);
                    }
                    database
                        .run_command(doc! { "collMod": &coll, "index": index })
                        .await
                        .map_err(|e| failed(&ns, &live, e, &done))?;
                    done.push(format!("{ns}: modified {live} ({})", s.changes.join(", ")));
                }
                Action::Drop => {
                    let state = client
                        .database(crate::load::state::DB)
                        .collection::<Document>(HIDDEN_STATE);
                    let id = format!("{ns}|{live}");
                    if hide_first {
                        let since = state
                            .find_one(doc! { "_id": &id })
                            .await?
                            .and_then(|d| d.get_datetime("hidden_at").ok().copied());
                        let due = match (since, drop_after) {
                            (None, _) => false,
                            (Some(_), None) => true,
                            (Some(t), Some(after)) => {
                                DateTime::now().timestamp_millis() - t.timestamp_millis()
                                    >= after.as_millis() as i64
                            }
                        };
                        if !due {
                            if since.is_none() {
                                database.run_command(doc! { "collMod": &coll, "index": { "name": &live, "hidden": true } }).await
                                    .map_err(|e| failed(&ns, &live, e, &done))?;
                                state
                                    .update_one(
                                        doc! { "_id": &id },
                                        doc! { "$set": { "hidden_at": DateTime::now() } },
                                    )
                                    .upsert(true)
                                    .await?;
                                done.push(format!("{ns}: hid {live} (dropped by a later apply; `collMod` hidden:false restores it at once)"));
                            } else {
                                done.push(format!(
                                    "{ns}: {live} stays hidden until --drop-after has passed"
                                ));
                            }
                            continue;
                        }
                    }
                    database
                        .run_command(doc! { "dropIndexes": &coll, "index": &live })
                        .await
                        .map_err(|e| failed(&ns, &live, e, &done))?;
                    state.delete_one(doc! { "_id": &id }).await?;
                    done.push(format!("{ns}: dropped {live}"));
                }
            }
        }
        if !creates.is_empty() {
            let docs: Vec<Bson> = creates
                .iter()
                .filter_map(|s| s.desired.as_ref())
                .map(|d| Bson::Document(index_doc(d)))
                .collect();
            let names: Vec<String> = creates.iter().map(|s| s.index.clone()).collect();
            let build = database.run_command(doc! { "createIndexes": &coll, "indexes": docs });
            let watch = schema::watch_build(&ctx.ui, &client, &db, &coll);
            let result = tokio::select! {
                r = build => r,
                _ = watch => unreachable!("the watcher never ends on its own"),
            };
            result.map_err(|e| failed(&ns, &names.join(", "), e, &done))?;
            done.push(format!("{ns}: created {}", names.join(", ")));
        }
    }
    for d in &done {
        ctx.ui.info(d);
    }
    ctx.ui
        .result(format!("applied {} index changes", todo.len()));
    Ok(())
}

/// A failed step: name the collection and index (the server's message carries the
/// duplicated key for unique builds) and what had already been done.
fn failed(ns: &str, index: &str, e: mongodb::error::Error, done: &[String]) -> anyhow::Error {
    let msg = crate::redact::scrub(&e.to_string());
    let already = if done.is_empty() {
        "nothing was changed before it".to_string()
    } else {
        format!("already done: {}", done.join("; "))
    };
    let hint = if msg.contains("E11000") || msg.contains("duplicate key") {
        " — the data has duplicates for this unique index; remove them or drop `unique`"
    } else {
        ""
    };
    anyhow::anyhow!("index change on {ns} failed for {index}: {msg}{hint}. Not created: the remaining steps for this collection and any later collections; {already}")
}

async fn export(
    ctx: &Ctx,
    target: &TargetArgs,
    db: Option<String>,
    out: Option<PathBuf>,
) -> Result<()> {
    let resolved = target.resolve(&ctx.config)?;
    let client = mongo_engine::connect(&resolved, &target.connect_options()).await?;
    let db = match db {
        Some(d) => d,
        None => {
            let dbs = namespaces::databases(&client, &[]).await?;
            match dbs.as_slice() {
                [one] => one.clone(),
                _ => {
                    return Err(usage(format!(
                        "say which database to export with --db (this server has: {})",
                        dbs.join(", ")
                    )))
                }
            }
        }
    };
    let colls = namespaces::collections(&client, &db, &crate::namespace::Filter::default()).await?;
    if colls.is_empty() {
        // A database without collections is not listed by the server: almost always a typo.
        // An empty spec written silently would later read as "no indexes wanted".
        let dbs = namespaces::databases(&client, &[]).await?;
        let have = if dbs.is_empty() {
            "no user databases".to_string()
        } else {
            dbs.join(", ")
        };
        return Err(usage(format!(
            "database {db} does not exist on {} (it has: {have}); nothing was exported. Check the name given to --db",
            resolved.label()
        )));
    }
    let mut collections = serde_yaml::Mapping::new();
    for c in colls
        .iter()
        .filter(|c| c.kind == namespaces::Kind::Collection)
    {
        let list: Vec<serde_yaml::Value> = c
            .indexes
            .iter()
            .filter(|i| i.get_str("name").ok() != Some("_id_"))
            .map(plan::to_spec_yaml)
            .collect();
        if !list.is_empty() {
            collections.insert(c.ns.coll.clone().into(), serde_yaml::Value::Sequence(list));
        }
    }
    let mut root = serde_yaml::Mapping::new();
    root.insert("database".into(), db.clone().into());
    root.insert(
        "collections".into(),
        serde_yaml::Value::Mapping(collections),
    );
    let text = format!(
        "# exported by mongoshift from {}\n{}",
        resolved.label(),
        serde_yaml::to_string(&root)?
    );
    let root = serde_yaml::Value::Mapping(root);
    match out {
        // The file is a spec, so it is YAML whatever --output says; JSON reports where it went.
        Some(p) => {
            std::fs::write(&p, &text).with_context(|| format!("writing {}", p.display()))?;
            ctx.ui
                .info(format!("wrote the indexes of {db} to {}", p.display()));
            if ctx.ui.json() {
                ctx.ui.result_json(&serde_json::json!({
                    "database": db, "out": p, "spec": root,
                }));
            }
        }
        None if ctx.ui.json() => ctx.ui.result_json(&root),
        None => ctx.ui.result(text),
    }
    Ok(())
}
