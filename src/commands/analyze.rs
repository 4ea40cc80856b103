//! `mongoshift analyze profile | queries | check`: set the profiler; rank the recorded
//! query shapes (profiler and/or JSON logs), explain them, recommend indexes by ESR and
//! write them as an index spec; hold critical queries to budgets (the CI gate).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use mongodb::bson::DateTime;
use mongodb::Client;

use crate::analysis::explain::{self, Explained};
use crate::analysis::{check, esr, recommend, sources, stats};
use crate::cli::{parse_duration, Ctx, TargetArgs};
use crate::mongo::namespaces;
use crate::report::table;

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(subcommand)]
    pub action: AnalyzeAction,
}

#[derive(Debug, Subcommand)]
pub enum AnalyzeAction {
    /// Set the profiler (level 1 with a threshold, or off) and show each database's level.
    Profile(ProfileArgs),
    /// Rank slow query shapes from the profiler and/or JSON logs; explain; recommend indexes.
    Queries(QueriesArgs),
    /// Explain each critical query of a file and hold it to its budgets (exit 3 on a breach).
    Check(CheckArgs),
    /// Index hygiene: unused and redundant indexes, their sizes, what dropping them reclaims.
    Indexes(IndexesArgs),
    /// Judge candidate shard keys: cardinality, frequency, monotonicity, simulated spread, targeting.
    ShardKey(ShardKeyArgs),
}

#[derive(Debug, Args)]
pub struct ShardKeyArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The collection, as DB.COLL.
    #[arg(long, value_name = "DB.COLL")]
    pub ns: String,
    /// A candidate key, e.g. '{user_id: 1}', '{_id: hashed}', '{created_at: 1, _id: 1}' (repeatable).
    #[arg(long = "key", value_name = "SPEC", required = true)]
    pub keys: Vec<String>,
    /// How many shards to simulate.
    #[arg(long, default_value_t = 3)]
    pub shards: usize,
    /// mongod JSON log files whose queries count toward targeting, besides the profiler.
    #[arg(long = "log", value_name = "FILE")]
    pub logs: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct IndexesArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// A database (repeatable; default: every user database).
    #[arg(long = "db", value_name = "DB")]
    pub dbs: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ProfileArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// A database (repeatable; default: every user database).
    #[arg(long = "db", value_name = "DB")]
    pub dbs: Vec<String>,
    /// Record operations slower than this many milliseconds.
    #[arg(long, default_value_t = 100)]
    pub slowms: i64,
    /// Record this share of the slow operations (0..1).
    #[arg(long, default_value_t = 1.0)]
    pub sample_rate: f64,
    /// Turn the profiler off (level 0).
    #[arg(long)]
    pub off: bool,
}

#[derive(Debug, Args)]
pub struct QueriesArgs {
    /// The server (profiler, explain, existing indexes); optional with --log.
    #[command(flatten)]
    pub target: TargetArgs,
    /// A database (repeatable; default: every user database, or all in the logs).
    #[arg(long = "db", value_name = "DB")]
    pub dbs: Vec<String>,
    /// A mongod log file: JSON (4.4+) or text (3.6–4.2), plain or gzip (repeatable). Without a connection, only these are read.
    #[arg(long = "log", value_name = "FILE")]
    pub logs: Vec<PathBuf>,
    /// Only operations recorded within this long (e.g. 24h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub since: Option<Duration>,
    /// How many shapes to show (all are counted).
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Explain each shown shape's example on the live database (executionStats).
    #[arg(long)]
    pub explain: bool,
    /// Write the recommendations as an index-spec file (one database).
    #[arg(long, value_name = "FILE")]
    pub write_spec: Option<PathBuf>,
    /// Show the example queries with their values (default: shapes only).
    #[arg(long)]
    pub show_values: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The critical queries file (e.g. queries/predixi.yaml).
    pub queries: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Run the queries against this database instead of the file's `database`.
    #[arg(long, value_name = "DB")]
    pub db: Option<String>,
}

pub async fn run(ctx: &Ctx, args: AnalyzeArgs) -> Result<()> {
    match args.action {
        AnalyzeAction::Profile(a) => profile(ctx, a).await,
        AnalyzeAction::Queries(a) => queries(ctx, a).await,
        AnalyzeAction::Check(a) => check_queries(ctx, a).await,
        AnalyzeAction::Indexes(a) => index_hygiene(ctx, a).await,
        AnalyzeAction::ShardKey(a) => shard_key(ctx, a).await,
    }
}

async fn connect(ctx: &Ctx, t: &TargetArgs) -> Result<(String, Client)> {
    let r = t.resolve(&ctx.config)?;
    let c = crate::mongo::connect(&r, &t.connect_options())
        .await
        .with_context(|| r.label())?;
    Ok((r.label(), c))
}

async fn user_dbs(c: &Client, dbs: &[String]) -> Result<Vec<String>> {
    Ok(namespaces::databases(c, dbs)
        .await?
        .into_iter()
        .filter(|d| d != crate::load::state::DB)
        .collect())
}

async fn profile(ctx: &Ctx, args: ProfileArgs) -> Result<()> {
    let (label, c) = connect(ctx, &args.target).await?;
    let level = (!args.off).then_some((1, args.slowms, args.sample_rate));
    let mut rows = Vec::new();
    for db in user_dbs(&c, &args.dbs).await? {
        let (was, ms, rate) =
            sources::set_profiler(&c, &db, level.or(Some((0, args.slowms, 1.0)))).await?;
        rows.push(serde_json::json!({ "db": db, "level": was, "slowms": ms, "sample_rate": rate }));
    }
    if ctx.ui.json() {
        ctx.ui
            .result_json(&serde_json::json!({ "target": label, "databases": rows }));
    } else {
        let mut t = table::new(["database", "level", "slowms", "sample rate"]);
        for r in &rows {
            t.add_row(vec![
                r["db"].as_str().unwrap_or("").to_string(),
                r["level"].to_string(),
                r["slowms"].to_string(),
                r["sample_rate"].to_string(),
            ]);
        }
        ctx.ui.result(t.to_string());
    }
    Ok(())
}

/// The key patterns of every index of the namespaces that appear in `shapes`.
async fn existing_indexes(c: &Client, shapes: &[stats::ShapeStats]) -> Result<esr::Existing> {
    use futures::TryStreamExt;
    let mut out = BTreeMap::new();
    for s in shapes {
        if out.contains_key(&s.ns) {
            continue;
        }
        let Some((db, coll)) = s.ns.split_once('.') else {
            continue;
        };
        let list: Vec<mongodb::IndexModel> = match c
            .database(db)
            .collection::<mongodb::bson::Document>(coll)
            .list_indexes()
            .await
        {
            Ok(cur) => cur.try_collect().await.unwrap_or_default(),
            Err(_) => vec![],
        };
        out.insert(
            s.ns.clone(),
            list.iter().map(|m| esr::key_pairs(&m.keys)).collect(),
        );
    }
    Ok(out)
}

/// For each namespace whose shapes project fields: the fields holding arrays in a sample of
/// its documents (an index on them is multikey and cannot cover a query).
async fn array_fields(
    c: &Client,
    shapes: &[stats::ShapeStats],
) -> Result<BTreeMap<String, std::collections::BTreeSet<String>>> {
    use futures::TryStreamExt;
    let mut out: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for s in shapes.iter().filter(|s| !s.example.projection.is_empty()) {
        let Some((db, coll)) = s.ns.split_once('.') else {
            continue;
        };
        let fields: Vec<&String> = s
            .example
            .filter
            .keys()
            .chain(s.example.sort.keys())
            .chain(s.example.projection.keys())
            .filter(|f| !f.starts_with('$'))
            .collect();
        let sample: Vec<mongodb::bson::Document> = c
            .database(db)
            .collection::<mongodb::bson::Document>(coll)
            .aggregate(vec![mongodb::bson::doc! { "$sample": { "size": 200 } }])
            .await
            .with_context(|| format!("sampling {} for array fields", s.ns))?
            .try_collect()
            .await
            .with_context(|| format!("sampling {} for array fields", s.ns))?;
        let set = out.entry(s.ns.clone()).or_default();
        for d in &sample {
            for f in &fields {
                if holds_array(d, f) {
                    set.insert((*f).clone());
                }
            }
        }
    }
    Ok(out)
}

/// Whether any step of a dotted path is an array in `d`.
fn holds_array(d: &mongodb::bson::Document, path: &str) -> bool {
    use mongodb::bson::Bson;
    let mut cur = Some(Bson::Document(d.clone()));
    for part in path.split('.') {
        cur = match cur {
            Some(Bson::Document(x)) => x.get(part).cloned(),
            Some(Bson::Array(_)) => return true,
            _ => None,
        };
    }
    matches!(cur, Some(Bson::Array(_)))
}

async fn queries(ctx: &Ctx, args: QueriesArgs) -> Result<()> {
    let connected = if args.target.uri.is_some() || args.target.target.is_some() {
        Some(connect(ctx, &args.target).await?)
    } else if args.logs.is_empty() {
        return Err(crate::exit::usage(
            "say where the operations are: --uri/--target (the profiler) and/or --log FILE (mongod's JSON log)",
        ));
    } else {
        None
    };
    let since = args
        .since
        .map(|d| DateTime::from_millis(DateTime::now().timestamp_millis() - d.as_millis() as i64));
    let mut agg = stats::Aggregator::new(&args.dbs);
    let mut log_stats = Vec::new();
    for (i, f) in args.logs.iter().enumerate() {
        let s = sources::scan_log(f, i as u64, since, &mut agg)?;
        for w in s.hints() {
            ctx.ui.warn(w);
        }
        log_stats.push(s);
    }
    let mut profiled = 0;
    if let Some((_, c)) = &connected {
        for db in user_dbs(c, &args.dbs).await? {
            profiled += sources::profiler_into(c, &db, since, &mut agg).await?;
        }
    }
    let summary = agg.finish();
    let shapes = &summary.shapes;
    let recorded = summary.operations();
    let existing = match &connected {
        Some((_, c)) => Some(existing_indexes(c, shapes).await?),
        None => {
            ctx.ui
                .info("no connection: existing indexes not checked, explain skipped");
            None
        }
    };
    let arrays = match &connected {
        Some((_, c)) => Some(array_fields(c, shapes).await?),
        None => None,
    };
    let recs = recommend::recommend(shapes, existing.as_ref(), arrays.as_ref());
    let shown: Vec<&stats::ShapeStats> = shapes.iter().take(args.top).collect();
    let mut explained: BTreeMap<usize, Explained> = BTreeMap::new();
    if args.explain {
        if let Some((_, c)) = &connected {
            for s in &shown {
                let Some((db, coll)) = s.ns.split_once('.') else {
                    continue;
                };
                let ex = &s.example;
                let pipeline = (!ex.pipeline.is_empty()).then_some(ex.pipeline.as_slice());
                let q = explain::Query {
                    distinct: ex.key.as_deref(),
                    db,
                    coll,
                    filter: &ex.filter,
                    sort: &ex.sort,
                    limit: ex.limit,
                    pipeline,
                };
                match explain::explain(c, &q).await {
                    Ok(e) => {
                        explained.insert(s.id, e);
                    }
                    Err(e) => ctx.ui.warn(format!("shape #{}: {e:#}", s.id)),
                }
            }
        }
    }
    if let Some(path) = &args.write_spec {
        let mut dbs: Vec<&str> = recs
            .iter()
            .filter_map(|r| r.ns.split_once('.').map(|x| x.0))
            .collect();
        dbs.sort();
        dbs.dedup();
        match dbs.as_slice() {
            [] => ctx.ui.info("no index to recommend; no spec written"),
            [db] => {
                std::fs::write(path, recommend::spec_yaml(db, &recs, shapes))
                    .with_context(|| format!("writing {}", path.display()))?;
                ctx.ui.info(format!(
                    "wrote {} recommended index(es) to {}; `mongoshift indexes plan {}` shows them",
                    recs.len(),
                    path.display(),
                    path.display()
                ));
            }
            many => {
                return Err(crate::exit::usage(format!(
                "the recommendations span databases {}; an index spec holds one: pick it with --db",
                many.join(", ")
            )))
            }
        }
    }
    if ctx.ui.json() {
        let list: Vec<serde_json::Value> = shapes
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                if let Some(e) = explained.get(&s.id) {
                    v["explain"] = serde_json::to_value(e).unwrap_or_default();
                }
                if args.show_values {
                    v["example"] = mongodb::bson::Bson::Document(s.example.filter.clone())
                        .into_relaxed_extjson();
                }
                v
            })
            .collect();
        ctx.ui.result_json(&serde_json::json!({
            "operations": recorded,
            "shapes": list,
            "recommendations": recs,
            "left_out": summary.left_out,
            "statement_envelopes": summary.statement_envelopes,
            "profiler_entries": profiled,
            "logs": log_stats,
            "existing_indexes_checked": existing.is_some(),
        }));
        return Ok(());
    }
    let mut t = table::new([
        "#",
        "namespace",
        "op",
        "count",
        "total ms",
        "p50/p95/p99/max ms",
        "docs ex/ret",
        "keys ex",
        "plan",
        "shape",
    ]);
    for s in &shown {
        let filter = if args.show_values {
            mongodb::bson::Bson::Document(s.example.filter.clone()).into_relaxed_extjson()
        } else {
            s.shape["filter"].clone()
        };
        let mut shape = format!("filter {filter}");
        if s.shape["sort"].as_object().is_some_and(|o| !o.is_empty()) {
            shape.push_str(&format!(" sort {}", s.shape["sort"]));
        }
        if s.shape["pipeline"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            shape = format!("pipeline {}", s.shape["pipeline"]);
        }
        if let Some(k) = s.shape["key"].as_str() {
            shape = format!("key {k:?} {shape}");
        }
        let ms = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        let mut count = s.count.to_string();
        if s.getmores > 0 {
            count.push_str(&format!(" +{} getMore", s.getmores));
        }
        if s.untimed > 0 {
            count.push_str(&format!(" ({} untimed)", s.untimed));
        }
        t.add_row(vec![
            s.id.to_string(),
            s.ns.clone(),
            format!("{:?}", s.op).to_lowercase(),
            count,
            s.total_ms.to_string(),
            format!(
                "{}/{}/{}/{}",
                ms(s.p50_ms),
                ms(s.p95_ms),
                ms(s.p99_ms),
                ms(s.max_ms)
            ),
            format!("{}/{}", s.docs_examined, s.returned),
            s.keys_examined.to_string(),
            format!(
                "{}{}{}",
                s.plans.join(", "),
                if s.in_memory_sort { " +SORT" } else { "" },
                if s.used_disk { " +disk" } else { "" }
            ),
            shape,
        ]);
    }
    let mut text = format!(
        "{recorded} operation(s) in {} shape(s); the top {} by total time:\n{t}",
        shapes.len(),
        shown.len()
    );
    text.push_str(&left_out_text(&summary));
    for (id, e) in &explained {
        text.push_str(&format!(
            "\nexplain #{id}: {} — {} ms, {} keys / {} docs examined, {} returned",
            e.plan, e.millis, e.keys_examined, e.docs_examined, e.returned
        ));
    }
    if recs.is_empty() {
        text.push_str("\nno index to recommend");
    } else {
        text.push_str("\nrecommended indexes (Equality-Sort-Range):");
        for r in &recs {
            text.push_str(&format!(
                "\n  {} {} — serves shape(s) {}: {} ms and {} documents examined as recorded",
                r.ns,
                r.keys_text(),
                r.shapes
                    .iter()
                    .map(|i| format!("#{i}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                r.total_ms,
                r.docs_examined
            ));
        }
    }
    ctx.ui.result(text);
    Ok(())
}

/// What the shapes leave out, by kind and time: a line after the table.
fn left_out_text(s: &stats::Summary) -> String {
    if s.left_out.is_empty() {
        return String::new();
    }
    let n: u64 = s.left_out.iter().map(|l| l.count).sum();
    let ms: u64 = s.left_out.iter().map(|l| l.total_ms).sum();
    let kinds: Vec<String> = s
        .left_out
        .iter()
        .map(|l| format!("{} {} ({} ms)", l.kind, l.count, l.total_ms))
        .collect();
    format!(
        "\nnot in the shapes: {n} slow entries, {ms} ms — {}",
        kinds.join(", ")
    )
}

async fn check_queries(ctx: &Ctx, args: CheckArgs) -> Result<()> {
    let mut file = check::load(&args.queries)?;
    if let Some(db) = &args.db {
        file.database = db.clone();
    }
    let (label, c) = connect(ctx, &args.target).await?;
    let mut rows = Vec::new();
    let mut breached = Vec::new();
    for q in &file.queries {
        let (filter, sort, pipeline) = (q.filter()?, q.sort()?, q.pipeline()?);
        let e = explain::explain(
            &c,
            &explain::Query {
                distinct: None,
                db: &file.database,
                coll: &q.collection,
                filter: &filter,
                sort: &sort,
                limit: q.limit,
                pipeline: pipeline.as_deref(),
            },
        )
        .await
        .with_context(|| format!("query {:?}", q.name))?;
        let b = q.breaches(&e);
        if !b.is_empty() {
            breached.push(format!("{}: {}", q.name, b.join("; ")));
        }
        rows.push((q, e, b));
    }
    if ctx.ui.json() {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|(q, e, b)| serde_json::json!({ "name": q.name, "collection": q.collection, "explain": e, "breaches": b, "ok": b.is_empty() }))
            .collect();
        ctx.ui.result_json(
            &serde_json::json!({ "target": label, "ok": breached.is_empty(), "queries": list }),
        );
    } else {
        let mut t = table::new([
            "query",
            "collection",
            "plan",
            "ms",
            "docs ex/ret",
            "verdict",
        ]);
        for (q, e, b) in &rows {
            t.add_row(vec![
                q.name.clone(),
                q.collection.clone(),
                e.plan.clone(),
                e.millis.to_string(),
                format!("{}/{}", e.docs_examined, e.returned),
                if b.is_empty() {
                    "ok".into()
                } else {
                    format!("BREACH: {}", b.join("; "))
                },
            ]);
        }
        ctx.ui.result(t.to_string());
    }
    if !breached.is_empty() {
        return Err(crate::exit::check_failed(format!(
            "{} of {} critical queries breach their budgets on {label}:\n{}",
            breached.len(),
            rows.len(),
            breached.join("\n")
        )));
    }
    ctx.ui.info(format!(
        "all {} critical queries within budget on {label}",
        rows.len()
    ));
    Ok(())
}

async fn index_hygiene(ctx: &Ctx, args: IndexesArgs) -> Result<()> {
    use crate::analysis::hygiene;
    let t = args.target.resolve(&ctx.config)?;
    let (label, c) = connect(ctx, &args.target).await?;
    // Every member counts its own index use: connect to each one the replica set names.
    let hosts = crate::mongo::Hello::ask(&c)
        .await
        .with_context(|| label.clone())?
        .hosts();
    let mut members = Vec::new();
    for uri in hygiene::member_uris(&t.uri, &hosts) {
        let m = crate::config::ResolvedTarget::from_uri(&uri);
        match crate::mongo::connect(&m, &args.target.connect_options()).await {
            Ok(client) => members.push(client),
            Err(e) => ctx.ui.warn(format!(
                "member {} unreachable, its index use is not counted: {e:#}",
                crate::redact::hosts(&uri)
            )),
        }
    }
    if members.is_empty() {
        members.push(c.clone());
    }
    let mut all = Vec::new();
    for db in user_dbs(&c, &args.dbs).await? {
        all.extend(hygiene::database(&c, &members, &db).await?);
    }
    let reclaim: u64 = all
        .iter()
        .filter(|r| r.unused || r.redundant_with.is_some())
        .map(|r| r.size_bytes)
        .sum();
    let since = all.iter().filter_map(|r| r.since.clone()).min();
    if ctx.ui.json() {
        ctx.ui.result_json(&serde_json::json!({
            "target": label, "indexes": all, "reclaimable_bytes": reclaim, "stats_since": since,
            "members": members.len(),
        }));
        return Ok(());
    }
    let mut t = table::new(["namespace", "index", "keys", "size", "ops", "finding"]);
    for r in &all {
        let mut finding = Vec::new();
        if r.unused {
            finding.push("unused".to_string());
        }
        if let Some(b) = &r.redundant_with {
            finding.push(format!("redundant: a prefix of {b}"));
        }
        t.add_row(vec![
            r.ns.clone(),
            r.name.clone(),
            r.keys.clone(),
            table::bytes(r.size_bytes),
            r.ops.to_string(),
            if finding.is_empty() {
                "ok".into()
            } else {
                finding.join("; ")
            },
        ]);
    }
    ctx.ui.result(format!(
        "{t}\nindex use summed over {} member(s), counted since {} (counts restart with each server); \
         dropping the unused and redundant indexes would reclaim {}",
        members.len(),
        since.unwrap_or_else(|| "-".into()),
        table::bytes(reclaim)
    ));
    Ok(())
}

async fn shard_key(ctx: &Ctx, args: ShardKeyArgs) -> Result<()> {
    use crate::analysis::shard_key;
    let Some((db, coll)) = args.ns.split_once('.') else {
        return Err(crate::exit::usage(format!(
            "--ns {:?}: give DB.COLL",
            args.ns
        )));
    };
    let keys: Vec<Vec<shard_key::KeyField>> = args
        .keys
        .iter()
        .map(|k| shard_key::parse_key(k))
        .collect::<Result<_>>()?;
    let (label, c) = connect(ctx, &args.target).await?;
    // The recorded queries, when the profiler has any: which would target one shard.
    let mut recorded = sources::profiler(&c, db, None).await.unwrap_or_default();
    for f in &args.logs {
        recorded.extend(sources::log_file(f, None)?.0);
    }
    let mut verdicts = Vec::new();
    for k in &keys {
        verdicts.push(shard_key::analyze(&c, db, coll, k, args.shards, &recorded).await?);
    }
    if ctx.ui.json() {
        ctx.ui.result_json(&serde_json::json!({
            "target": label, "ns": args.ns, "shards": args.shards, "keys": verdicts,
            "recorded_queries": recorded.iter().filter(|o| o.ns == args.ns).count(),
        }));
        return Ok(());
    }
    let mut t = table::new([
        "key",
        "cardinality",
        "top value",
        "monotonic",
        "documents per shard",
        "max skew",
        "targeted queries",
    ]);
    for v in &verdicts {
        t.add_row(vec![
            v.key.clone(),
            v.cardinality.to_string(),
            format!("{:.1}%", v.top_value_share * 100.0),
            format!(
                "{} ({:.0}% increasing)",
                if v.monotonic { "YES" } else { "no" },
                v.increasing_share * 100.0
            ),
            v.shards
                .iter()
                .map(|s| format!("{:.1}%", s * 100.0))
                .collect::<Vec<_>>()
                .join(" / "),
            format!("{:.1} pts", v.max_skew_points),
            v.targeted_share
                .map(|s| format!("{:.0}%", s * 100.0))
                .unwrap_or("- (no profile)".into()),
        ]);
    }
    ctx.ui.result(format!(
        "{t}\n{} on {label}, {} simulated shards. A monotonic key sends every insert to one shard; \
         a low cardinality or a dominant value caps how far the collection can spread.",
        args.ns, args.shards
    ));
    Ok(())
}
