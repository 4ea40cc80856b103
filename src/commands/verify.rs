//! `mongoshift verify`: prove two clusters hold the same data. Per namespace: existence and
//! kind, options, indexes (one normalization with `indexes plan`), exact counts, and every
//! document's bytes: first an order-independent digest of each side (`compare::digest`),
//! and where that differs, range by range in `_id` order (`compare::documents`); then what
//! exists only on the target (`compare::extras`).
//! Exit 0 when identical, 3 when anything differs. Under a live `migrate --follow` into
//! the target, documents the source keeps changing past the tail's position are reported
//! as "still changing", apart from confirmed differences; they alone do not make exit 3
//! (see `compare::live` and the README).

use anyhow::{Context, Result};
use clap::Args;

use crate::cli::{Ctx, SidesArgs};
use crate::compare::verdict::{self, Level, NsVerdict};
use crate::mongo::namespaces::{self, CollectionInfo};
use crate::namespace::Renamer;
use crate::report::progress::Progress;
use crate::report::table;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub sides: SidesArgs,
    /// A database to verify (repeatable; default: every user database of the source).
    #[arg(long = "db", value_name = "DB")]
    pub dbs: Vec<String>,
    /// Only namespaces matching this pattern (source names).
    #[arg(long, value_name = "PATTERN")]
    pub ns_include: Vec<String>,
    /// Skip namespaces matching this pattern.
    #[arg(long, value_name = "PATTERN")]
    pub ns_exclude: Vec<String>,
    /// Rename as restore/migrate did: source pattern, e.g. 'predixi.*'.
    #[arg(long, value_name = "PATTERN", requires = "ns_to")]
    pub ns_from: Vec<String>,
    /// Rename: target pattern, e.g. 'predixi_v2.*'.
    #[arg(long, value_name = "PATTERN", requires = "ns_from")]
    pub ns_to: Vec<String>,
    #[arg(long, value_enum, default_value = "documents")]
    pub level: Level,
    /// Collections compared at once (default: CPU cores).
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// Differing documents listed per namespace (all are counted).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub max_report: usize,
    /// While a `migrate --follow` runs into the target: how many times differences are
    /// looked at again once the tail has caught up, before they are reported.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub rechecks: usize,
    /// Split collections bigger than this many MB into _id ranges compared in parallel.
    #[arg(long, value_name = "MB", default_value_t = 256)]
    pub range_mb: u64,
    /// Show each differing `_id` as its type and a short hash instead of its value (for
    /// reports that leave the team: `_id`s can be e-mail addresses or account numbers).
    #[arg(long)]
    pub redact_values: bool,
}

pub async fn run(ctx: &Ctx, args: VerifyArgs) -> Result<()> {
    let filter = crate::namespace::Filter::new(&args.ns_include, &args.ns_exclude)?;
    let renamer = Renamer::new(&args.ns_from, &args.ns_to)?;
    let (src_target, src, dst_target, dst) = args.sides.connect(&ctx.config).await?;
    let colls: Vec<CollectionInfo> = namespaces::selected(
        &src,
        &args.dbs,
        &filter,
        &format!("the source ({})", src_target.label()),
    )
    .await?;
    if colls.is_empty() {
        return Err(crate::exit::usage(format!(
            "nothing to verify: no collection of {} matches --db/--ns-include/--ns-exclude",
            src_target.label()
        )));
    }
    let total_bytes = if args.level == Level::Documents {
        colls.iter().map(|c| 2 * c.estimated_bytes).sum()
    } else {
        0
    };
    let progress = Progress::new(&ctx.ui, "verify", colls.len() as u64, total_bytes);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    // A migrate --follow into the target: keep enough differences to recheck them all.
    let mut verified_dbs: Vec<String> = colls.iter().map(|c| c.ns.db.clone()).collect();
    verified_dbs.dedup();
    let live = crate::compare::live::running_tail(&dst, &src_target.uri, &verified_dbs).await?;
    let keep = if live.is_some() {
        args.max_report.max(crate::compare::live::RECHECKED)
    } else {
        args.max_report
    };
    let opts = verdict::Options {
        level: args.level,
        max_report: keep,
        range_bytes: args.range_mb.max(1) << 20,
        counted: None,
    };
    let parallel = args.parallel.unwrap_or(cores).max(1);
    // What exists only on the target, within what is verified.
    let back = Renamer::new(&args.ns_to, &args.ns_from)?;
    let source_dbs: Vec<String> = namespaces::databases(&src, &args.dbs)
        .await
        .context("the source")?
        .into_iter()
        .filter(|d| d != crate::load::state::DB)
        .collect();
    let extras = crate::compare::extras::on_target(
        &dst,
        &crate::compare::extras::Scope {
            source_dbs: &source_dbs,
            colls: &colls,
            filter: &filter,
            renamer: &renamer,
            back: &back,
            everything: args.dbs.is_empty(),
        },
    )
    .await?;
    let mut verdicts = verdict::all(&src, &dst, colls, &renamer, opts, parallel, &progress).await?;
    progress.finish();
    verdicts.extend(extras);
    // Differences under a live tail may be changes it has not applied yet.
    if let Some(run) = &live {
        if verdicts.iter().any(|v| !v.identical) {
            ctx.ui.info(format!(
                "a migrate --follow from {} is running into {}: rechecking differences once it has caught up",
                run.from,
                dst_target.label()
            ));
            crate::compare::live::recheck(&src, &dst, run, &mut verdicts, args.rechecks).await?;
        }
        ctx.ui.info(
            "note: while a tail follows, TTL and unique indexes on the target are relaxed on purpose \
             (they differ until `mongoshift migrate finalize`)",
        );
    }
    for v in verdicts.iter_mut() {
        v.differences.truncate(args.max_report);
        v.changing.truncate(args.max_report);
        if args.redact_values {
            for d in v.differences.iter_mut().chain(v.changing.iter_mut()) {
                d.id = crate::redact::value(&d.key);
            }
        }
    }
    // Extras (no source name) sort by their target name among the others.
    let name = |v: &NsVerdict| {
        if v.extra_on_target {
            v.target.clone()
        } else {
            v.source.clone()
        }
    };
    verdicts.sort_by_key(|v| name(v));
    let identical = verdicts.iter().all(|v| v.identical);
    let confirmed = verdicts.iter().filter(|v| v.confirmed()).count();
    let still: u64 = verdicts.iter().map(|v| v.still_changing).sum();
    if ctx.ui.json() {
        ctx.ui.result_json(&serde_json::json!({
            "identical": identical,
            "confirmed_differences": confirmed,
            "still_changing": still,
            "level": args.level,
            "live_tail": live.as_ref().map(|r| r.run.clone()),
            "source": src_target.label(),
            "target": dst_target.label(),
            "namespaces": verdicts,
        }));
    } else {
        ctx.ui.result(report(&verdicts, args.level));
    }
    if confirmed > 0 {
        return Err(crate::exit::check_failed(format!(
            "{confirmed} of {} namespace(s) differ between {} and {}{}",
            verdicts.len(),
            src_target.label(),
            dst_target.label(),
            if still > 0 {
                format!(" (and {still} document(s) still changing under the live tail)")
            } else {
                String::new()
            }
        )));
    }
    if !identical {
        // Only documents the source kept changing past the tail's position: not a
        // difference found, not an equality proven either. Said so, exit 0.
        ctx.ui.warn(format!(
            "no confirmed difference, but {still} document(s) were still changing on {} at every recheck \
             (the tail keeps up; they differ only by changes it had yet to apply). They cannot be compared at \
             rest while written; the cutover's freeze and verify compare them for good",
            src_target.label()
        ));
        return Ok(());
    }
    ctx.ui.info(format!(
        "identical: {} namespace(s) at level {:?}",
        verdicts.len(),
        args.level
    ));
    Ok(())
}

fn report(verdicts: &[NsVerdict], level: Level) -> String {
    let mut t = table::new([
        "namespace",
        "kind",
        "source",
        "target",
        "metadata",
        "documents",
        "result",
    ]);
    let mut details = Vec::new();
    for v in verdicts {
        let name = if v.extra_on_target {
            format!("(none) → {}", v.target)
        } else if v.source == v.target {
            v.source.clone()
        } else {
            format!("{} → {}", v.source, v.target)
        };
        let docs = match (level, v.documents_differing) {
            (Level::Documents, Some(0)) => "ok".to_string(),
            (Level::Documents, Some(n)) => format!("{n} differ"),
            _ => "-".to_string(),
        };
        t.add_row(vec![
            name.clone(),
            v.kind.clone(),
            v.source_count.map(|n| n.to_string()).unwrap_or("-".into()),
            v.target_count.map(|n| n.to_string()).unwrap_or("-".into()),
            if v.metadata.is_empty() {
                "ok".into()
            } else {
                format!("{} differ", v.metadata.len())
            },
            docs,
            if v.identical {
                "identical"
            } else if !v.confirmed() {
                "still changing"
            } else {
                "DIFFERENT"
            }
            .into(),
        ]);
        for m in &v.metadata {
            details.push(format!("{name}: {m}"));
        }
        if v.source_count != v.target_count {
            details.push(format!(
                "{name}: count {} on the source, {} on the target",
                v.source_count.unwrap_or(0),
                v.target_count.unwrap_or(0)
            ));
        }
        for d in &v.differences {
            let paths = if d.paths.is_empty() {
                String::new()
            } else {
                format!(": {}", d.paths.join(", "))
            };
            details.push(format!(
                "{name}: _id {} {}{paths}",
                d.id,
                d.kind.replace('_', " ")
            ));
        }
        for d in &v.changing {
            details.push(format!(
                "{name}: _id {} still changing (the source wrote it past the tail's position at every recheck)",
                d.id
            ));
        }
        if v.rechecked {
            details.push(format!(
                "{name}: rechecked after the live tail caught up: {} difference(s) disappeared, {} confirmed, {} still changing",
                v.disappeared,
                v.documents_differing.unwrap_or(0),
                v.still_changing
            ));
        }
        if let Some(n) = v.documents_differing {
            if n > v.differences.len() as u64 {
                details.push(format!(
                    "{name}: … and {} more differing documents (raise --max-report to list them)",
                    n - v.differences.len() as u64
                ));
            }
        }
    }
    let mut text = t.to_string();
    if !details.is_empty() {
        text.push('\n');
        text.push_str(&details.join("\n"));
    }
    text
}
