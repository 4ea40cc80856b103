//! A restore, start to end: the source opened and planned (and a point in time resolved to
//! a base backup and its oplog), the plan shown and confirmed, every namespace loaded
//! through the shared load engine, the oplog replayed, the indexes built after it, and the
//! verdict. `mongoshift restore` and `backups verify --restore` (the restore drill) run it.
use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use futures::StreamExt;

use crate::cli::{Ctx, LoadArgs, StorageArgs, TargetArgs};
use crate::exit::usage;
use crate::load::plan::{self, PlanItem};
use crate::load::state::{self, NsState, StateStore};
use crate::load::{results, Loader, NsResult};
use crate::mongo as mongo_engine;
use crate::mongo::namespaces::Kind;
use crate::namespace::Namespace;
use crate::report::progress::Progress;
use crate::restore::legacy_indexes::Rewrite;
use crate::restore::oplog_replay::{self, ReplayStats};
use crate::restore::oplog_source::OplogFile;
use crate::restore::source::{self, DataRef, OplogRef, Source, SourceKind, SourceNs};
use crate::restore::stream;

use super::replay::{build_indexes, replay_oplog, seed_catalog};
use super::runner::Runner;

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// LOCATION/ID, LOCATION/latest, a mongodump folder, a mongodump archive (.gz ok), or - for stdin.
    #[arg(long, value_name = "SOURCE")]
    pub from: String,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Apply the dump's oplog after the data (point in time).
    #[arg(long)]
    pub oplog_replay: bool,
    /// Apply oplog entries only before this timestamp: SECONDS[:ORDINAL].
    #[arg(long, value_name = "TS", requires = "oplog_replay")]
    pub oplog_limit: Option<String>,
    /// Replay this BSON oplog file (mongorestore's --oplogFile) instead of the dump's.
    #[arg(long, value_name = "PATH", requires = "oplog_replay")]
    pub oplog_file: Option<std::path::PathBuf>,
    /// Restore the dump's users and roles (admin/system.users.bson, system.roles.bson),
    /// merged into the target's (with --drop: replacing them), as mongorestore does.
    #[arg(long)]
    pub users_and_roles: bool,
    /// Make index specs old servers accepted buildable (mongorestore's --convertLegacyIndexes):
    /// key values 0, "" or non-numbers become 1, unknown options are removed.
    #[arg(long)]
    pub convert_legacy_indexes: bool,
    /// Build indexes with the version the dump records (mongorestore's --keepIndexVersion);
    /// by default the server's default version is built (a v:1 index becomes v:2).
    #[arg(long)]
    pub keep_index_version: bool,
    /// Build hashed indexes on dotted fields as ascending ones (mongorestore's --fixDottedHashIndex).
    #[arg(long)]
    pub fix_dotted_hash_index: bool,
    /// Create each collection with the UUID its metadata records (mongorestore's
    /// --preserveUUID); needs --drop.
    #[arg(long)]
    pub preserve_uuid: bool,
    /// Restore to this point in time from the backups location given as --from: RFC 3339
    /// (a whole second, every write of it included) or an optime SECONDS:ORDINAL (that entry
    /// is the last applied). Picks the newest base backup whose window reaches it.
    #[arg(long, value_name = "TIME", conflicts_with_all = ["oplog_replay", "oplog_limit", "oplog_file"])]
    pub to_time: Option<String>,
    /// With --to-time: the continuous backup stream (replica set name) when the location
    /// holds several.
    #[arg(long, value_name = "NAME", requires = "to_time")]
    pub stream: Option<String>,
    #[command(flatten)]
    pub storage: StorageArgs,
}

pub async fn run(ctx: &Ctx, mut args: RestoreArgs) -> Result<()> {
    let settings = args.storage.settings(&ctx.config)?;
    // A point-in-time restore is a restore of the chosen base backup with its oplog replaced
    // by the base's oplog and the slices up to the time (see pitr::planner).
    let pitr = match &args.to_time {
        Some(t) => {
            let t = crate::pitr::planner::PointInTime::parse(t)?;
            let loc = crate::storage::Location::parse(&args.from)?;
            let store = crate::storage::Store::open(&loc, &settings).await?;
            store.check_readable().await?;
            let plan =
                crate::pitr::planner::prepare(&store, &loc.to_string(), t, args.stream.as_deref())
                    .await?;
            let (file, spooled) = crate::pitr::planner::spool(&store, &plan).await?;
            show_pitr_plan(ctx, &plan, &spooled, args.load.dry_run);
            if args.load.ns_include.is_empty() && args.load.ns_exclude.is_empty() {
                args.load.ns_include = plan.selection.include.clone();
                args.load.ns_exclude = plan.selection.exclude.clone();
            }
            args.from = format!("{}/{}", loc.to_string().trim_end_matches('/'), plan.base);
            args.oplog_replay = true;
            Some((plan, file))
        }
        None => None,
    };
    let filter = args.load.filter()?;
    let renamer = args.load.renamer()?;
    let limit = match &pitr {
        Some((plan, _)) => Some(plan.to_time.limit()),
        None => args
            .oplog_limit
            .as_deref()
            .map(oplog_replay::parse_limit)
            .transpose()?,
    };
    let target = args.target.resolve(&ctx.config)?;
    let client = mongo_engine::connect(&target, &args.target.connect_options()).await?;

    // stdin can be read once; spool it so the archive can be planned and then loaded.
    let _spool;
    let from = if args.from == "-" {
        let f = tempfile::NamedTempFile::new().context("creating a temporary file for stdin")?;
        let mut out = tokio::fs::File::create(f.path()).await?;
        tokio::io::copy(&mut tokio::io::stdin(), &mut out)
            .await
            .context("reading the archive from stdin")?;
        let p = f.path().to_string_lossy().into_owned();
        _spool = f;
        p
    } else {
        args.from.clone()
    };
    let mut src = match source::open(&from, &settings).await {
        Err(e) if args.from == "-" => return Err(stdin_error(&from, e)),
        other => other?,
    };
    if args.from == "-" {
        src.describe = "stdin".into();
    }
    if let Some(path) = &args.oplog_file {
        if matches!(src.kind, SourceKind::Archive { .. }) {
            return Err(usage(
                "--oplog-file cannot be used with an archive source (as mongorestore's --oplogFile with --archive): give a dump folder, or replay the archive's own oplog",
            ));
        }
        if src.oplog.is_some() {
            return Err(usage(format!(
                "{} has an oplog of its own and --oplog-file gives another: which one to replay is ambiguous (mongorestore refuses this too); remove one of them",
                src.describe
            )));
        }
        src.oplog = Some(OplogRef::File(path.clone()));
    }
    if args.preserve_uuid && !args.load.drop {
        return Err(usage(
            "--preserve-uuid needs --drop: a collection keeps the UUID it was created with, so only a collection this restore creates can get the dump's (mongorestore refuses --preserveUUID without --drop too)",
        ));
    }
    source::load_metadata(&mut src, &filter).await?;
    let rewrite = Rewrite {
        convert_legacy: args.convert_legacy_indexes,
        // Our own backups come back as they were taken, index versions included; a
        // mongodump's indexes are rebuilt with the server's default version, as
        // mongorestore rebuilds them.
        keep_version: args.keep_index_version || matches!(src.kind, SourceKind::Backup(_)),
        fix_dotted_hashed: args.fix_dotted_hash_index,
    };
    for n in src.namespaces.iter_mut() {
        n.indexes = rewrite.apply(&n.indexes);
        as_stock_creates(n);
        if !args.preserve_uuid {
            n.uuid = None;
        } else if n.uuid.is_none() && n.kind != Kind::View && filter.allows(&n.ns) {
            ctx.ui.info(format!(
                "--preserve-uuid: the metadata of {} records no UUID; it gets a new one (as mongorestore does)",
                n.ns
            ));
        }
    }
    let auth = crate::restore::users::find(&src, args.users_and_roles).await?;
    match (&auth, args.users_and_roles) {
        (None, true) => {
            return Err(usage(format!(
                "--users-and-roles: {} holds no users nor roles (admin/system.users.bson, admin/system.roles.bson, or those namespaces in an archive: only a mongodump of the admin database carries them)",
                src.describe
            )))
        }
        (Some(a), false) => ctx.ui.info(format!(
            "{} holds {}: not restored (add --users-and-roles to restore them)",
            src.describe,
            a.describe()
        )),
        _ => {}
    }
    if args.oplog_replay && src.oplog.is_none() {
        return Err(usage(format!(
            "--oplog-replay: {} has no oplog (back up with --oplog / dump with --oplog)",
            src.describe
        )));
    }

    let selected: Vec<SourceNs> = src
        .namespaces
        .iter()
        .filter(|n| filter.allows(&n.ns))
        .cloned()
        .collect();
    if selected.is_empty() && !args.oplog_replay && !args.users_and_roles {
        return Err(usage(format!(
            "nothing to restore: no namespace of {} matches the --ns-include/--ns-exclude options",
            src.describe
        )));
    }
    let state = StateStore::new(&client, state::RESTORE, &src.identity);
    // The plan, with what the target already holds, and what an earlier run recorded: asked
    // at once (across a network each is a round trip).
    let targets: Vec<Namespace> = selected.iter().map(|n| renamer.map(&n.ns)).collect();
    let (recorded, existing_all) =
        tokio::join!(state.load(), plan::target_documents_all(&client, &targets));
    let recorded = recorded?;
    let interrupted = !args.load.resume && !recorded.is_empty();
    let resume: HashMap<Namespace, NsState> = if args.load.resume {
        recorded.into_iter().map(|(u, st)| (u.ns, st)).collect()
    } else {
        HashMap::new()
    };
    let mut plan = Vec::new();
    for ((n, t), existing) in selected.iter().zip(targets).zip(existing_all) {
        let action = plan::action(
            resume.get(&t).copied(),
            "reload",
            existing,
            n.kind == Kind::View,
            args.load.drop,
            args.load.append,
        );
        plan.push(PlanItem {
            source: n.ns.to_string(),
            target: t.to_string(),
            kind: n.kind.as_str(),
            documents: n.expected_docs,
            indexes: n.indexes.len(),
            target_documents: existing,
            ranges: None,
            action,
        });
    }

    // The oplog is fetched and walked before anything is written: what it cannot carry is
    // refused now, and the plan says what the replay will do.
    let whole = args.load.ns_include.is_empty()
        && args.load.ns_exclude.is_empty()
        && args.load.ns_from.is_empty();
    let mut pitr_file = pitr.map(|(plan, f)| {
        OplogFile::spooled(
            f,
            format!(
                "the oplog of backup {} and {} slices up to {}",
                plan.base,
                plan.slices.len(),
                plan.to_time.show()
            ),
        )
    });
    let oplog = if args.oplog_replay {
        let file = match pitr_file.take() {
            Some(f) => f,
            None => OplogFile::open(&src).await?,
        };
        let planned = replay_oplog(
            None,
            &file,
            &src,
            &selected,
            (&filter, &renamer, whole),
            limit,
            args.preserve_uuid,
        )
        .await
        .map_err(|e| {
            let text = crate::mongo::errors::chain_text(&e);
            let text = if text.contains(&file.what) {
                text
            } else {
                format!("{}: {text}", file.what)
            };
            let fix = if text.contains(" is truncated") || text.contains(" is corrupt") {
                " The file is damaged, so re-running cannot help: use another copy of it, or \
                 replay only the entries before the damage with --oplog-limit"
            } else {
                ""
            };
            usage(format!("{text}. Nothing was written.{fix}"))
        })?;
        Some((file, planned.stats))
    } else {
        None
    };

    if args.load.dry_run {
        let counts = count_source(&src, &selected).await?;
        for p in plan.iter_mut() {
            if p.documents.is_none() {
                p.documents = counts.get(&p.source).copied().or(Some(0));
            }
        }
    }
    plan::show_with(
        &ctx.ui,
        &format!("restore plan: {}", src.describe),
        &src.describe,
        &plan,
        args.load.dry_run,
        oplog
            .as_ref()
            .map(|(_, s)| ("oplog", serde_json::to_value(s).unwrap_or_default())),
    );
    if let Some((_, s)) = &oplog {
        let line = s.summary(if args.load.dry_run {
            "would be replayed"
        } else {
            "to replay"
        });
        if args.load.dry_run && !ctx.ui.json() {
            ctx.ui.result(line);
        } else {
            ctx.ui.info(line);
        }
    }
    let question = format!(
        "restore {} from {} into {}?",
        crate::report::table::count(plan.len() as u64, "namespace", "namespaces"),
        src.describe,
        target.label()
    );
    let go = plan::gate(
        &ctx.ui,
        &plan,
        plan::Gate {
            dry_run: args.load.dry_run,
            resume: args.load.resume,
            yes: args.load.yes,
            nothing_recorded: resume.is_empty(),
            interrupted,
            run: &format!("restore of {}", src.describe),
            question: &question,
        },
    )?;
    if !go {
        return Ok(());
    }

    let runner = Arc::new(Runner(Loader {
        client: client.clone(),
        ui: ctx.ui.clone(),
        state: state.clone(),
        reloading: resume
            .iter()
            .filter(|(_, st)| **st == NsState::Loading)
            .map(|(ns, _)| ns.clone())
            .collect(),
        drop: args.load.drop,
        append: args.load.append,
        // With a replay the indexes are built after it (see index_catalog).
        no_indexes: args.load.no_indexes || args.oplog_replay,
        workers: args.load.workers_per_collection.max(1),
        relax: false,
        lanes: args.load.lanes(),
        counter: Default::default(),
        throttle: args.load.throttle(&ctx.ui),
    }));
    let todo: Vec<(SourceNs, Namespace)> = selected
        .iter()
        .map(|n| (n.clone(), renamer.map(&n.ns)))
        .filter(|(_, t)| resume.get(t) != Some(&NsState::Done))
        .collect();
    let (mut collections, views): (Vec<_>, Vec<_>) =
        todo.into_iter().partition(|(n, _)| n.kind != Kind::View);
    // Biggest first (see `load::lanes::biggest_first`); an archive's order is its own.
    crate::load::lanes::biggest_first(&mut collections, |(n, _)| match &n.data {
        Some(DataRef::Object { stored_bytes, .. }) => *stored_bytes,
        _ => 0,
    });
    let progress = Progress::new(&ctx.ui, "restore", collections.len() as u64, 0);

    let work = async {
        let mut results = match &src.kind {
            SourceKind::Archive { compression } => {
                runner
                    .archive(&src, *compression, &collections, &progress)
                    .await?
            }
            _ => {
                futures::stream::iter(collections.iter())
                    .map(|(n, t)| {
                        let r = runner.clone();
                        let store = src.store.clone();
                        let task = progress.task(&t.to_string(), n.expected_docs.unwrap_or(0));
                        async move { r.object(&store, n, t, task).await }
                    })
                    .buffer_unordered(runner.0.lanes.started())
                    .collect::<Vec<_>>()
                    .await
            }
        };
        for (n, t) in &views {
            results.push(runner.0.view(&n.collection(), t, &renamer).await);
        }
        if let (true, Some(a)) = (args.users_and_roles, &auth) {
            let (u, r) = crate::restore::users::restore(&client, a, args.load.drop).await?;
            ctx.ui
                .info(format!("users and roles: {u} users and {r} roles restored"));
        }
        progress.finish();
        let mut replay = None;
        if let Some((file, _)) = &oplog {
            let catalog = if results.iter().all(|r| r.ok) {
                let done = replay_oplog(
                    Some(&client),
                    file,
                    &src,
                    &selected,
                    (&filter, &renamer, whole),
                    limit,
                    args.preserve_uuid,
                )
                .await?;
                replay = Some(done.stats);
                done.catalog
            } else {
                // No replay over a failed load (its entries would meet data that is not
                // there); the loaded namespaces still get their indexes. Said, not silent.
                let failed: Vec<&str> = results
                    .iter()
                    .filter(|r| !r.ok)
                    .map(|r| r.target.as_str())
                    .collect();
                ctx.ui.warn(format!(
                    "the oplog was not replayed, because the load of {} failed: the restored data is as dumped, not at the oplog's end",
                    failed.join(", ")
                ));
                seed_catalog(&selected, &renamer)
            };
            if !args.load.no_indexes {
                build_indexes(ctx, &client, &catalog, rewrite, &mut results).await?;
            }
        }
        anyhow::Ok((results, replay))
    };
    let (mut results, replay) = tokio::select! {
        r = work => r?,
        sig = crate::signals::interrupted() => {
            return Err(anyhow::anyhow!(
                "restore interrupted by {sig}: the target holds a partial restore; re-run the same command with --resume to finish it"
            ));
        }
    };
    results.sort_by(|a, b| a.target.cmp(&b.target));
    report(ctx, &results, replay.as_ref());
    results::verdict("restore", &results)?;
    state.clear().await?;
    Ok(())
}

/// What a point-in-time restore will use, before anything else is done.
fn show_pitr_plan(
    ctx: &Ctx,
    plan: &crate::pitr::planner::Plan,
    spooled: &crate::pitr::planner::Spooled,
    dry_run: bool,
) {
    let last = spooled
        .last
        .map(crate::pitr::planner::show)
        .unwrap_or_else(|| "none".into());
    let line = format!(
        "point in time {}: base backup {} (restorable from {}), then {} slices of stream '{}' ({}); {} oplog entries up to {} inclusive, last {}",
        plan.to_time.show(),
        plan.base,
        crate::pitr::planner::show(plan.base_end),
        plan.slices.len(),
        plan.stream,
        if plan.slices.is_empty() { "none".to_string() } else { format!("{} … {}", plan.slices[0], plan.slices[plan.slices.len() - 1]) },
        spooled.entries,
        plan.to_time.show(),
        last
    );
    if dry_run && !ctx.ui.json() {
        ctx.ui.result(line);
    } else {
        ctx.ui.info(line);
    }
}

/// stdin that is not an archive: name it as stdin (not the spool file), and say what to do
/// with bare BSON, which mongorestore restores from stdin only with --db and --collection.
fn stdin_error(spool: &str, e: anyhow::Error) -> anyhow::Error {
    let head = std::fs::read(spool)
        .map(|b| b.into_iter().take(5).collect::<Vec<u8>>())
        .unwrap_or_default();
    let bson = head.len() == 5
        && i32::from_le_bytes([head[0], head[1], head[2], head[3]]) >= 5
        && matches!(head[4], 0x00..=0x13 | 0x7f | 0xff);
    if bson {
        return usage(
            "stdin holds BSON documents, not a mongodump archive, and BSON does not say which collection it is \
             (mongorestore needs --db and --collection for it): save it as DB/COLLECTION.bson and restore \
             that file with --from DB/COLLECTION.bson",
        );
    }
    usage(crate::mongo::errors::chain_text(&e).replace(spool, "stdin"))
}

async fn count_source(src: &Source, selected: &[SourceNs]) -> Result<HashMap<String, u64>> {
    let mut out = HashMap::new();
    match &src.kind {
        SourceKind::Archive { compression } => {
            let key = src.archive_key.clone().unwrap_or_default();
            for (ns, c) in stream::archive_batches(
                &src.store,
                &key,
                *compression,
                &src.describe,
                HashMap::new(),
                None,
            )
            .await?
            {
                out.insert(ns.to_string(), c.docs);
            }
        }
        _ => {
            for n in selected {
                if let Some(DataRef::Object {
                    key,
                    compression,
                    sha256,
                    ..
                }) = &n.data
                {
                    let c =
                        stream::object_count(&src.store, key, *compression, sha256.clone()).await?;
                    out.insert(n.ns.to_string(), c.docs);
                }
            }
        }
    }
    Ok(out)
}

/// The collection options mongorestore creates from a dump's metadata: it creates the
/// `_id` index itself when the metadata lists one, so `autoIndexId` is then left out
/// (otherwise `schema::create` keeps it, as `true`, as the server allows).
fn as_stock_creates(n: &mut SourceNs) {
    if n.options.contains_key("autoIndexId")
        && n.indexes.iter().any(|i| i.get_str("name") == Ok("_id_"))
    {
        n.options.remove("autoIndexId");
    }
}

fn report(ctx: &Ctx, results: &[NsResult], replay: Option<&ReplayStats>) {
    if ctx.ui.json() {
        ctx.ui.result_json(&serde_json::json!({
            "ok": results.iter().all(|r| r.ok),
            "namespaces": results,
            "oplog": replay.map(|s| serde_json::to_value(s).unwrap_or_default()),
        }));
        return;
    }
    ctx.ui.result(results::table(results));
    if let Some(s) = replay {
        ctx.ui.result(s.summary("replayed"));
    }
    results::summary(&ctx.ui, "restored", results);
}
