//! `mongoshift sample`: load predixi-shaped sample data (demo, tests, benchmarks).

use anyhow::{Context, Result};
use clap::Args;
use mongodb::bson::doc;

use crate::cli::{Ctx, TargetArgs};
use crate::exit::usage;
use crate::mongo;
use crate::report::table;
use crate::sample;

#[derive(Debug, Args)]
pub struct SampleArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Database to fill.
    #[arg(long, default_value = "predixi")]
    pub db: String,
    /// Size multiplier: 1.0 is 2,000 users, 500 markets, 5,000 bets, 3,000 transactions, 1,500 comments (~2.8 MB of BSON).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Seed for the deterministic generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Drop the sample collections first (otherwise they must not exist or be empty).
    #[arg(long)]
    pub drop: bool,
}

pub async fn run(ctx: &Ctx, args: SampleArgs) -> Result<()> {
    if !(args.scale > 0.0 && args.scale.is_finite()) {
        return Err(usage("--scale must be a positive number, e.g. 0.1 or 400"));
    }
    let target = args.target.resolve(&ctx.config)?;
    let client = mongo::connect(&target, &args.target.connect_options()).await?;
    let db = client.database(&args.db);
    for (name, _) in sample::BASE_COUNTS {
        let coll = db.collection::<mongodb::bson::Document>(name);
        if args.drop {
            coll.drop()
                .await
                .with_context(|| format!("dropping {}.{name}", args.db))?;
        } else if coll.estimated_document_count().await.unwrap_or(0) > 0 {
            return Err(usage(format!(
                "{}.{name} already holds documents; pass --drop to replace the sample collections",
                args.db
            )));
        }
    }
    ctx.ui.info(format!(
        "loading sample data into {} (scale {})",
        args.db, args.scale
    ));
    let ui = ctx.ui.clone();
    let mut last_report = std::time::Instant::now();
    let counts = sample::load(&db, args.scale, args.seed, |coll, n| {
        if last_report.elapsed().as_secs() >= 5 {
            ui.info(format!("  {coll}: {n} documents"));
            last_report = std::time::Instant::now();
        }
    })
    .await?;
    // Report what the server holds, not what we meant to insert.
    let mut rows = Vec::new();
    for (name, expected) in &counts {
        let n = db
            .collection::<mongodb::bson::Document>(name)
            .count_documents(doc! {})
            .await
            .with_context(|| format!("counting {}.{name}", args.db))?;
        if n != *expected {
            anyhow::bail!(
                "{}.{name} holds {n} documents after loading {expected}",
                args.db
            );
        }
        rows.push((name.to_string(), n));
    }
    if ctx.ui.json() {
        let map: serde_json::Map<String, serde_json::Value> =
            rows.iter().map(|(k, v)| (k.clone(), (*v).into())).collect();
        ctx.ui
            .result_json(&serde_json::json!({ "database": args.db, "collections": map }));
    } else {
        let mut t = table::new(["collection", "documents"]);
        for (k, v) in rows {
            t.add_row(vec![k, v.to_string()]);
        }
        ctx.ui.result(t.to_string());
    }
    Ok(())
}
