//! `mongoshift rollback`: undo the last `switch` recorded in the history. With a reverse
//! sync running: freeze NEW, drain the sync into OLD past the freeze, stop it, unfreeze
//! OLD, write the old connection string back, run the hooks. Without one: count the writes
//! NEW took since the switch (its oplog) and refuse unless `--accept-divergence`, since
//! they would be left behind.
//!
//! Each file is put back byte for byte as it was before the switch (its copy kept beside the
//! history, checked against the history's SHA-256), so the application gets its own URI
//! back, not the tool's. A file someone changed since the switch is left alone without
//! `--force`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use crate::cli::{parse_duration, resolve_side, Ctx};
use crate::cutover::history::{self, Entry, SinkEntry, Timeline};
use crate::cutover::hooks;
use crate::cutover::sink::{self, Format, Sink};
use crate::cutover::snapshot;
use crate::follow::record::{self, Phase, Record};
use crate::mongo::write_block;

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The dotenv files to write back (default: those the switch wrote).
    #[arg(long = "env-file", value_name = "PATH[:KEY]")]
    pub env_files: Vec<String>,
    /// The Secret manifests to write back (default: those the switch wrote).
    #[arg(long = "k8s-secret", value_name = "PATH[:KEY]")]
    pub k8s_secrets: Vec<String>,
    /// The history to read (default: .mongoshift/history.jsonl next to the first file).
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// OLD, when the switch was given a URI (the history keeps it without its password).
    #[arg(long, value_name = "OLD")]
    pub to: Option<String>,
    /// NEW, likewise.
    #[arg(long, value_name = "NEW")]
    pub from: Option<String>,
    /// Go back even though NEW took writes that OLD does not have (they stay behind on NEW).
    #[arg(long)]
    pub accept_divergence: bool,
    /// The longest the reverse sync may take to apply everything up to the freeze of NEW.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub max_lag: Duration,
    /// A command run with `sh -c` after the files are written back (repeatable).
    #[arg(long = "exec", value_name = "CMD")]
    pub exec: Vec<String>,
    /// How long to wait for a reachable server (OLD and NEW).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Put the files back even when someone changed them since the switch (their changes
    /// are lost).
    #[arg(long)]
    pub force: bool,
    /// Run every check and show every change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do it without asking.
    #[arg(long)]
    pub yes: bool,
}

/// A side recorded in the history, or given again when its password was masked there.
fn side(given: Option<&str>, recorded: &str, flag: &str) -> Result<String> {
    match given {
        Some(v) => Ok(v.to_string()),
        None if recorded.contains("****") => Err(crate::exit::usage(format!(
            "the history keeps {} without its password; give it again with {flag} (a config target name keeps it out of the command line)",
            recorded
        ))),
        None => Ok(recorded.to_string()),
    }
}

fn sink_of(e: &SinkEntry) -> Sink {
    Sink {
        path: PathBuf::from(&e.path),
        key: e.key.clone(),
        format: if e.format == "K8sSecret" {
            Format::K8sSecret
        } else {
            Format::Dotenv
        },
    }
}

fn same_sink(e: &SinkEntry, s: &Sink) -> bool {
    e.key == s.key && std::path::Path::new(&e.path) == s.path
}

/// The change that puts `s` back: its bytes from before the switch, when the switch kept
/// them; else (a history written before snapshots were kept) `old_uri` written into the
/// key, as rollback did then. Returns the edit and the value it writes back.
fn plan_back(
    ctx: &Ctx,
    args: &RollbackArgs,
    hist: &std::path::Path,
    last: &Entry,
    s: &Sink,
    old_uri: &str,
) -> Result<(sink::Edit, String)> {
    let Some(x) = last.sinks.iter().find(|x| same_sink(x, s)) else {
        return Err(crate::exit::usage(format!(
            "{} was not written by the switch being rolled back ({} wrote {}); name only files it wrote, or none",
            s.describe(),
            hist.display(),
            last.sinks
                .iter()
                .map(|x| format!("{}:{}", x.path, x.key))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    if !x.snapshot {
        ctx.ui.warn(format!(
            "{}: the history keeps no copy of it from before the switch (an older mongoshift); writing OLD's URI into {} instead",
            s.path.display(),
            s.key
        ));
        return Ok((s.plan(old_uri)?, old_uri.to_string()));
    }
    let original = snapshot::load(hist, &x.sha256_before).with_context(|| {
        format!(
            "the copy of {} from before the switch (kept beside {})",
            s.path.display(),
            hist.display()
        )
    })?;
    let original = String::from_utf8(original)
        .with_context(|| format!("the copy of {} is not UTF-8 text", s.path.display()))?;
    let now = s.read()?;
    if sink::sha256(now.as_bytes()) != x.sha256_after {
        let what = match snapshot::load(hist, &x.sha256_after) {
            Ok(after) => snapshot::changed_lines(&String::from_utf8_lossy(&after), &now),
            Err(_) => "its checksum differs from the one the switch wrote".into(),
        };
        if !args.force {
            return Err(crate::exit::usage(format!(
                "{} changed since the switch ({what}); rolling back would overwrite that change. Nothing was changed. \
                 Pass --force to put back the file as it was before the switch anyway",
                s.path.display()
            )));
        }
        ctx.ui.warn(format!(
            "{} changed since the switch ({what}); --force: it is put back as it was before the switch",
            s.path.display()
        ));
    }
    let value = match s.format {
        Format::Dotenv => crate::cutover::dotenv::get(&original, &s.key),
        Format::K8sSecret => crate::cutover::k8s::get(&original, &s.key),
    }
    .unwrap_or_default();
    crate::redact::register_uri(&value);
    Ok((sink::Edit::restore(s, now, original)?, value))
}

pub async fn run(ctx: &Ctx, args: RollbackArgs) -> Result<()> {
    let given = sink::from_args(&args.env_files, &args.k8s_secrets)?;
    let hist = args.history.clone().unwrap_or_else(|| match given.first() {
        Some(s) => history::path_for(&s.path),
        None => PathBuf::from(".mongoshift/history.jsonl"),
    });
    let entries = history::read(&hist)?;
    let Some(last) = history::last_switch(&entries).cloned() else {
        return Err(crate::exit::usage(format!(
            "no switch to roll back in {} (the last entry is not a completed switch, or there is none)",
            hist.display()
        )));
    };
    let sinks: Vec<Sink> = if given.is_empty() {
        last.sinks.iter().map(sink_of).collect()
    } else {
        given
    };
    let mut tl = Timeline::new(&ctx.ui);
    let old_arg = side(args.to.as_deref(), &last.from, "--to")?;
    // NEW, when the history masks its password: the files hold it when the switch wrote the
    // tool's own URI (not the application's, which may lack the rights to freeze NEW).
    let in_files = match args.from.as_deref() {
        Some(v) => Some(v.to_string()),
        None => sinks
            .first()
            .map(|s| s.current())
            .transpose()?
            .flatten()
            .filter(|v| crate::redact::uri(v) == last.to),
    };
    let new_arg = side(in_files.as_deref(), &last.to, "--from")?;
    let old_t = resolve_side(&old_arg, &ctx.config).context("OLD (--to)")?;
    let new_t = resolve_side(&new_arg, &ctx.config).context("NEW (--from)")?;
    // Named by their config target names in what we print, when the config has them.
    let (old_l, new_l) = (
        crate::cli::side_label(&old_t, &ctx.config),
        crate::cli::side_label(&new_t, &ctx.config),
    );
    let opts = crate::mongo::ConnectOptions {
        timeout: args.timeout,
    };
    let (old, new) = tokio::join!(
        crate::mongo::connect(&old_t, &opts),
        crate::mongo::connect(&new_t, &opts)
    );
    let old = old.with_context(|| format!("OLD ({old_l})"))?;
    let new = new.with_context(|| format!("NEW ({new_l})"))?;
    old.list_database_names()
        .await
        .with_context(|| format!("reading from OLD ({old_l})"))?;
    let mut edits = Vec::new();
    let mut values = Vec::new();
    for s in &sinks {
        let (e, v) = plan_back(ctx, &args, &hist, &last, s, &old_t.uri)?;
        edits.push(e);
        values.push(v);
    }

    // The reverse sync, if the switch started one and it still runs; else its record, if
    // one is left on OLD, to clear once the files are back.
    let mut stale = None;
    let reverse = match &last.reverse_sync {
        Some(run) => {
            let r = Record::new(&old, run).get().await?;
            match r {
                Some(r) if r.phase == Phase::Following && record::alive(&r) => Some(r),
                other => {
                    ctx.ui.warn(format!(
                        "the reverse sync of the switch is not running ({}); counting NEW's writes since the switch instead",
                        other.as_ref().map(|r| r.phase.as_str().to_string()).unwrap_or("no record".into())
                    ));
                    stale = other.filter(|r| !record::alive(r));
                    None
                }
            }
        }
        None => None,
    };
    let mut left_behind = Vec::new();
    if reverse.is_none() {
        let (t, i) = last.switched_at.unwrap_or((0, 0));
        left_behind = crate::mongo::oplog::writes_since(
            &new,
            mongodb::bson::Timestamp {
                time: t,
                increment: i,
            },
            &last.dbs,
        )
        .await
        .with_context(|| format!("NEW ({new_l})"))?;
    }
    let behind: u64 = left_behind.iter().map(|(_, n)| n).sum();
    let behind_text = left_behind
        .iter()
        .map(|(ns, n)| format!("{ns}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    // NEW's writes may be on OLD already (copied back by hand): checked, not assumed.
    let copied_back = if behind > 0 && !args.accept_divergence {
        holds_new_data(ctx, &new, &old, &last.dbs, (&new_l, &old_l)).await?
    } else {
        None
    };
    if let Some(n) = copied_back {
        tl.done(
            "verify",
            format!(
                "{old_l} holds {new_l}'s data ({n} namespace(s) identical at level Documents, no write on {new_l} since the check began): the {behind} write(s) since the switch are not left behind"
            ),
        );
    }
    let behind = if copied_back.is_some() { 0 } else { behind };
    if !ctx.ui.json() {
        let diffs: Vec<String> = edits
            .iter()
            .zip(&values)
            .filter(|(e, _)| e.before != e.after)
            .map(|(e, v)| e.diff(v))
            .collect();
        let how = if reverse.is_some() {
            format!(
                "freeze {new_l}, drain the reverse sync into {old_l}, stop it, unfreeze {old_l}"
            )
        } else {
            format!("unfreeze {old_l} ({behind} write(s) on {new_l} since the switch would stay behind)")
        };
        ctx.ui.result(format!(
            "roll back {new_l} → {old_l}: {how}; write back:\n{}",
            diffs.join("\n")
        ));
    }
    if behind > 0 && !args.accept_divergence {
        let (from, to) = (
            crate::cli::side_arg(&new_t, &ctx.config),
            crate::cli::side_arg(&old_t, &ctx.config),
        );
        let dbs: String = last.dbs.iter().map(|d| format!(" --db {d}")).collect();
        let frozen = if write_block::is_blocked(&old, &format!("OLD ({old_l})"))
            .await
            .unwrap_or(false)
        {
            format!(
                " ({old_l} is frozen: the copy needs a user there that may write through the freeze, the restore role; \
                 or lift it first with {})",
                super::freeze::command_for(&old_t, &ctx.config, true)
            )
        } else {
            String::new()
        };
        return Err(crate::exit::check_failed(format!(
            "{new_l} took {behind} write(s) since the switch that {old_l} does not have ({behind_text}); rolling back \
             would leave them behind. Nothing was changed. Copy {new_l}'s data back first, once its writers have \
             stopped: `mongoshift migrate --from {from} --to {to}{dbs} --drop --yes`{}{frozen}; then run this rollback \
             again: it verifies that {old_l} holds {new_l}'s data and goes ahead. Or pass --accept-divergence to go \
             back anyway",
            crate::cli::side_arg_note(&format!("{from}{to}"))
        )));
    }
    tl.done(
        "pre-flight",
        format!("{old_l} reachable with the URI to be written back"),
    );
    if args.dry_run {
        if ctx.ui.json() {
            ctx.ui.result_json(&serde_json::json!({
                "ok": true, "dry_run": true, "reverse_sync": reverse.as_ref().map(|r| r.run.clone()),
                "left_behind": behind,
            }));
        }
        ctx.ui.info("dry run: nothing was changed");
        return Ok(());
    }
    if !args.yes {
        crate::report::confirm::ask(
            &ctx.ui,
            &format!("roll the application back from {new_l} to {old_l}?"),
        )?;
    }

    let new_side = format!("NEW ({new_l})");
    let mut new_frozen = false;
    if let Some(r) = &reverse {
        write_block::set(&new, true, &new_side).await?;
        new_frozen = true;
        tl.done("freeze", format!("user writes blocked on {new_l}"));
        let drained = async {
            let at = write_block::note(&new, "rollback freeze", &new_side).await?;
            let rec = Record::new(&old, &r.run);
            let d = crate::follow::control::wait_until(
                &rec,
                at,
                args.max_lag,
                "the freeze point was not reached; raise --max-lag or try when it has caught up",
            )
            .await?;
            let stopped = crate::follow::control::stop(&rec, Duration::from_secs(60)).await?;
            stale = Some(stopped);
            anyhow::Ok(d)
        }
        .await;
        match drained {
            Ok(d) => tl.done(
                "drain",
                format!(
                    "the reverse sync applied everything up to the freeze ({} events) and stopped",
                    d.tail.events
                ),
            ),
            Err(e) => {
                let _ = write_block::set(&new, false, &new_side).await;
                return Err(e.context(format!("{new_l} is writable again; no file was changed")));
            }
        }
    }
    let old_side = format!("OLD ({old_l})");
    if write_block::is_blocked(&old, &old_side).await? {
        write_block::set(&old, false, &old_side).await?;
        tl.done("unfreeze", format!("user writes allowed on {old_l}"));
    }
    let modes = sink::write_all(&edits)?;
    // Backed by a check: each file restored from a snapshot now has the checksum it had
    // before the switch.
    for e in &edits {
        let recorded = last
            .sinks
            .iter()
            .find(|x| x.snapshot && same_sink(x, &e.sink));
        if let Some(x) = recorded {
            let now = sink::sha256(
                &std::fs::read(&e.sink.path)
                    .with_context(|| format!("reading {} back", e.sink.path.display()))?,
            );
            if now != x.sha256_before {
                return Err(anyhow::anyhow!(
                    "{} was written back but its SHA-256 is {now}, not {} as before the switch; someone is \
                     writing it at the same time. Check the file",
                    e.sink.path.display(),
                    x.sha256_before
                ));
            }
        }
    }
    tl.done(
        "switch back",
        format!(
            "{} → {}",
            edits
                .iter()
                .map(|e| e.sink.describe())
                .collect::<Vec<_>>()
                .join(", "),
            old_l
        ),
    );
    // The reverse sync's record (and any index it relaxed) would stay on OLD, the cluster
    // the application uses again: cleared, as `migrate finalize` does.
    if let Some(run) = &stale {
        match crate::follow::control::restore_relaxed(&old, run).await {
            Ok(_) => tl.done(
                "clean up",
                format!("the reverse sync's record removed from {old_l}"),
            ),
            Err(e) => ctx.ui.warn(format!(
                "the reverse sync's record stays on {old_l}: {e:#}; `mongoshift migrate finalize --to {} --from {}` clears it",
                crate::cli::side_arg(&old_t, &ctx.config),
                crate::cli::side_arg(&new_t, &ctx.config)
            )),
        }
    }
    let outcomes = hooks::run_all(&args.exec);
    if !args.exec.is_empty() {
        let ok = outcomes.iter().filter(|o| o.ok).count();
        tl.done("hooks", format!("{ok} of {} succeeded", args.exec.len()));
    }
    let entry = Entry {
        action: "rollback".into(),
        time: mongodb::bson::DateTime::now()
            .try_to_rfc3339_string()
            .unwrap_or_default(),
        time_ms: record::now_ms(),
        switched_at: None,
        from: last.to.clone(),
        to: last.from.clone(),
        dbs: last.dbs.clone(),
        sinks: SinkEntry::of(&edits, &modes),
        hooks: args.exec.iter().map(|c| crate::redact::scrub(c)).collect(),
        steps: tl.steps.clone(),
        reverse_sync: None,
        old_frozen: false,
        unfreeze_old: false,
        app_uri: None,
        allow_admin_uri: false,
        ok: outcomes.iter().all(|o| o.ok),
    };
    history::append(&hist, &entry)?;
    let own = tl.own_ms();
    if ctx.ui.json() {
        ctx.ui.result_json(&serde_json::json!({
            "ok": entry.ok, "from": new_l, "to": old_l, "steps": tl.steps, "own_ms": own,
            "hooks": outcomes, "left_behind": behind, "new_frozen": new_frozen,
        }));
    } else {
        let mut text = format!(
            "rolled {} file(s) back to {old_l} in {} ms of the tool's own time (drain and hooks excluded)",
            modes.len(),
            own
        );
        if new_frozen {
            text.push_str(&format!(
                "\n{new_l} stays blocked for user writes; {} lifts it",
                super::freeze::command_for(&new_t, &ctx.config, true)
            ));
        }
        ctx.ui.result(text);
    }
    if let Some(bad) = outcomes.iter().find(|o| !o.ok) {
        return Err(anyhow::anyhow!(
            "the files point at {old_l} again, but the hook `{}` failed (exit {}):\n{}",
            crate::redact::scrub(&bad.command),
            bad.exit_code
                .map(|c| c.to_string())
                .unwrap_or("none".into()),
            bad.output_tail
        ));
    }
    Ok(())
}

/// Whether OLD holds NEW's data for `dbs`: every collection of NEW identical on OLD at the
/// documents level, and no write on NEW from just before the comparison until after it (so
/// the comparison saw NEW's last write). Returns the number of namespaces compared, or None.
async fn holds_new_data(
    ctx: &Ctx,
    new: &mongodb::Client,
    old: &mongodb::Client,
    dbs: &[String],
    (new_l, old_l): (&str, &str),
) -> Result<Option<usize>> {
    use crate::compare::verdict;
    let before = crate::mongo::oplog::majority_time(new)
        .await
        .with_context(|| format!("NEW ({new_l})"))?;
    let all = crate::namespace::Filter::new(&[], &[])?;
    let colls =
        crate::mongo::namespaces::selected(new, dbs, &all, &format!("NEW ({new_l})")).await?;
    let n = colls.len();
    let progress = crate::report::progress::Progress::new(&ctx.ui, "verify", n as u64, 0);
    let opts = verdict::Options {
        level: verdict::Level::Documents,
        max_report: 5,
        range_bytes: 256 << 20,
        counted: None,
    };
    let verdicts = verdict::all(
        new,
        old,
        colls,
        &crate::namespace::Renamer::new(&[], &[])?,
        opts,
        2,
        &progress,
    )
    .await
    .with_context(|| format!("comparing {new_l} with {old_l}"))?;
    progress.finish();
    if verdicts.iter().any(|v| !v.identical) {
        return Ok(None);
    }
    let since = crate::mongo::oplog::writes_since(new, before, dbs)
        .await
        .with_context(|| format!("NEW ({new_l})"))?;
    Ok(since.is_empty().then_some(n))
}
