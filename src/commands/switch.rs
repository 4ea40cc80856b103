//! `mongoshift switch`: move the application from OLD to NEW. Pre-flight (NEW reachable
//! with the exact URI that will be written — the application's own, see `cutover::app_uri`
//! and `cutover::app_check` — holding the databases; every file's change planned and shown), freeze OLD's user writes and drain the running tail past the freeze,
//! verify, rewrite every sink atomically, run the hooks, optionally start the reverse sync
//! (NEW → OLD), and record it all in the history. Until the files are written, any failure
//! unfreezes OLD and leaves every file as it was.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use mongodb::Client;

use crate::cli::{parse_duration, Ctx, SidesArgs};
use crate::compare::verdict::{self, Level};
use crate::cutover::history::{self, Entry, SinkEntry, Timeline};
use crate::cutover::{app_check, app_uri, hooks, sink, snapshot};
use crate::follow::apply::Selection;
use crate::follow::record::Record;
use crate::mongo::privileges::Privileges;
use crate::mongo::{namespaces, write_block};
use crate::namespace::{Filter, Renamer};
use crate::report::progress::Progress;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SwitchVerify {
    /// Existence, counts, options and indexes.
    Counts,
    /// Everything, every document's bytes.
    Documents,
    None,
}

#[derive(Debug, Args)]
pub struct SwitchArgs {
    #[command(flatten)]
    pub sides: SidesArgs,
    /// A dotenv file and the key holding the connection string (default key MONGO_URI); repeatable.
    #[arg(long = "env-file", value_name = "PATH[:KEY]")]
    pub env_files: Vec<String>,
    /// A Kubernetes Secret manifest (data or stringData) and its key; repeatable.
    #[arg(long = "k8s-secret", value_name = "PATH[:KEY]")]
    pub k8s_secrets: Vec<String>,
    /// The databases the application uses (default: those of the migration following
    /// into NEW, else every user database of OLD).
    #[arg(long = "db", value_name = "DB")]
    pub dbs: Vec<String>,
    /// Block user writes on OLD before switching (automatic when a `migrate --follow`
    /// runs into NEW).
    #[arg(long)]
    pub freeze_writes: bool,
    /// The longest the running tail may take to apply everything up to the freeze.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub max_lag: Duration,
    /// What to check between the drain and the switch; any difference aborts.
    #[arg(long, value_enum, default_value = "counts")]
    pub verify: SwitchVerify,
    /// After the switch, follow NEW's writes into OLD in the background so that `rollback`
    /// loses nothing.
    #[arg(long)]
    pub reverse_sync: bool,
    /// A command run with `sh -c` after the files are written (repeatable, in order).
    #[arg(long = "exec", value_name = "CMD")]
    pub exec: Vec<String>,
    /// The connection string to write for the application (default: the target's app_uri
    /// in the config, else derived from the sink's value: its database and options kept,
    /// hosts, TLS, replicaSet, authSource and credentials from --to).
    #[arg(long, value_name = "URI")]
    pub app_uri: Option<String>,
    /// Write a URI whose user holds cluster-wide or admin roles (refused otherwise).
    #[arg(long)]
    pub allow_admin_uri: bool,
    /// With --freeze-writes --reverse-sync, when OLD's connection cannot write through the
    /// block: unfreeze OLD for the reverse sync, accepting that a client still on OLD may
    /// diverge from NEW (recorded in the history).
    #[arg(long)]
    pub unfreeze_old: bool,
    /// Run every check and show every change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do it without asking.
    #[arg(long)]
    pub yes: bool,
}

/// The application's new connection string for each sink, and where it came from.
fn app_values(
    ctx: &Ctx,
    args: &SwitchArgs,
    new_t: &crate::config::ResolvedTarget,
    sinks: &[sink::Sink],
) -> Result<(Vec<String>, String)> {
    let given = match (&args.app_uri, &new_t.name) {
        (Some(u), _) => Some((u.clone(), "--app-uri".to_string())),
        (None, Some(n)) => ctx
            .config
            .app_uri(n)?
            .map(|u| (u, format!("targets.{n}.app_uri"))),
        (None, None) => None,
    };
    if let Some((u, from)) = given {
        crate::redact::register_uri(&u);
        if app_uri::parse(&u).is_none() {
            return Err(crate::exit::usage(format!(
                "{from} is not a mongodb:// or mongodb+srv:// URI"
            )));
        }
        return Ok((vec![u; sinks.len()], from));
    }
    let values = sinks
        .iter()
        .map(|s| match s.current()? {
            Some(cur) => {
                crate::redact::register_uri(&cur);
                app_uri::derive(&cur, &new_t.uri)
                    .map_err(|e| crate::exit::usage(format!("{}: {e:#}", s.describe())))
            }
            // No such key: planning the edit names the file and the key.
            None => Ok(new_t.uri.clone()),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((values, "derived".into()))
}

pub async fn run(ctx: &Ctx, args: SwitchArgs) -> Result<()> {
    let sinks = sink::from_args(&args.env_files, &args.k8s_secrets)?;
    if sinks.is_empty() {
        return Err(crate::exit::usage(
            "say where the application reads its connection string: --env-file PATH[:KEY] or --k8s-secret PATH[:KEY]",
        ));
    }
    let mut tl = Timeline::new(&ctx.ui);
    // 1. Pre-flight. NEW is reached with the very URI the files will hold.
    let (old_t, old, new_t, new) = args.sides.connect(&ctx.config).await?;
    // Named by their config target names in what we print, when the config has them.
    let (old_l, new_l) = (
        crate::cli::side_label(&old_t, &ctx.config),
        crate::cli::side_label(&new_t, &ctx.config),
    );
    // The sides as arguments of the commands we print: they run as printed.
    let (old_a, new_a) = (
        crate::cli::side_arg(&old_t, &ctx.config),
        crate::cli::side_arg(&new_t, &ctx.config),
    );
    let note = crate::cli::side_arg_note(&format!("{old_a}{new_a}"));
    let new_dbs = new
        .list_database_names()
        .await
        .with_context(|| format!("reading from NEW ({new_l}) with the URI to be written"))?;
    let forward = crate::compare::live::running_tail(&new, &old_t.uri, &[])
        .await
        .with_context(|| format!("NEW ({new_l})"))?;
    if let Some(f) = &forward {
        if f.run.contains(" --ns-to ") {
            return Err(crate::exit::usage(format!(
                "the migration following into {new_l} renames databases ({}); switch moves the connection string only, \
                 so the databases must keep their names",
                f.run
            )));
        }
    }
    let dbs: Vec<String> = if !args.dbs.is_empty() {
        args.dbs.clone()
    } else {
        forward.as_ref().map(|f| f.dbs.clone()).unwrap_or_default()
    };
    let all = Filter::new(&[], &[])?;
    let colls = namespaces::selected(&old, &dbs, &all, &format!("OLD ({old_l})")).await?;
    let mut wanted: Vec<String> = colls.iter().map(|c| c.ns.db.clone()).collect();
    wanted.sort();
    wanted.dedup();
    let missing: Vec<&String> = wanted.iter().filter(|d| !new_dbs.contains(d)).collect();
    if !missing.is_empty() {
        return Err(crate::exit::usage(format!(
            "NEW ({new_l}) lacks the database(s) {}; migrate them first (`mongoshift migrate --from {old_a} --to {new_a}{} --follow`{note})",
            missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            missing.iter().map(|d| format!(" --db {d}")).collect::<String>(),
        )));
    }
    if args.unfreeze_old && !args.reverse_sync {
        return Err(crate::exit::usage(
            "--unfreeze-old goes with --freeze-writes --reverse-sync (it lets the reverse sync write into an unfrozen OLD)",
        ));
    }
    let (values, app_from) = app_values(ctx, &args, &new_t, &sinks)?;
    let edits: Vec<sink::Edit> = sinks
        .iter()
        .zip(&values)
        .map(|(s, v)| s.plan(v))
        .collect::<Result<_>>()?;
    for e in edits.iter().filter(|e| e.lines.len() > 1) {
        ctx.ui.warn(format!(
            "{} binds {} on {} lines ({}); all of them are changed",
            e.sink.path.display(),
            e.sink.key,
            e.lines.len(),
            e.lines
                .iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for (s, v) in sinks.iter().zip(&values) {
        if let Some(w) = sink::exposure(s, v) {
            ctx.ui.warn(w);
        }
    }
    if edits.iter().all(|e| e.before == e.after) {
        ctx.ui.result(format!(
            "every sink already points at {new_l}; nothing to switch"
        ));
        return Ok(());
    }
    // The application's own credentials, once per distinct URI.
    let old_dbs = old
        .list_database_names()
        .await
        .with_context(|| format!("OLD ({old_l})"))?;
    let app_dbs: Vec<String> = if !dbs.is_empty() {
        dbs.clone()
    } else if values.iter().all(|v| app_uri::default_db(v).is_some()) {
        Vec::new()
    } else {
        wanted.clone()
    };
    let mut app_checked = Vec::new();
    for v in &values {
        if app_checked.contains(v) {
            continue;
        }
        let on: Vec<String> = sinks
            .iter()
            .zip(&values)
            .filter(|(_, w)| *w == v)
            .map(|(s, _)| s.describe())
            .collect();
        let passed = app_check::Check {
            uri: v,
            sinks: on.join(", "),
            new_l: &new_l,
            dbs: &app_dbs,
            old_dbs: &old_dbs,
            new_dbs: &new_dbs,
            allow_admin: args.allow_admin_uri,
            timeout: args.sides.timeout,
        }
        .run()
        .await?;
        tl.done(
            "application's URI",
            format!(
                "{} ({app_from}) reads and writes {} on {new_l}{}",
                crate::redact::uri(v),
                if passed.dbs.is_empty() {
                    "its databases".to_string()
                } else {
                    passed.dbs.join(", ")
                },
                match &passed.user {
                    Some(u) => format!(" as {u}"),
                    None => " (no auth)".into(),
                }
            ),
        );
        if !passed.admin.is_empty() {
            ctx.ui.warn(format!(
                "{} holds cluster-wide or admin rights ({}); written anyway (--allow-admin-uri)",
                crate::redact::uri(v),
                passed.admin.join("; ")
            ));
        }
        app_checked.push(v.clone());
    }
    let freeze = args.freeze_writes || forward.is_some();
    if freeze && !crate::mongo::oplog::has_oplog(&old).await.context("OLD")? {
        return Err(crate::exit::usage(format!(
            "OLD ({old_l}) is a standalone server, which cannot block user writes (setUserWriteBlockMode needs a \
             replica set; an fsync lock would make the application's writes hang rather than fail, and our own \
             writes with them). Stop the application's writers first (e.g. scale them to zero), then switch without \
             --freeze-writes; or restart OLD as a single-node replica set"
        )));
    }
    if args.reverse_sync {
        if !freeze {
            return Err(crate::exit::usage(
                "--reverse-sync needs --freeze-writes: OLD must take no writes of its own while NEW's are followed into it",
            ));
        }
        crate::follow::require_replica_set(&new, &new_l).await?;
        // The reverse sync writes into a frozen OLD only through bypassWriteBlockingMode:
        // find out now, before anything is frozen, not after the files are written.
        let p = Privileges::of(&old, &format!("OLD ({old_l})")).await?;
        if !p.can_bypass_write_block() && !args.unfreeze_old {
            let why = if p.authenticated() {
                format!(
                    "its user {} lacks the bypassWriteBlockingMode privilege",
                    p.users.join(", ")
                )
            } else {
                "it has no user (a server without auth lets nobody write through the block)"
                    .to_string()
            };
            return Err(crate::exit::usage(format!(
                "--freeze-writes --reverse-sync: OLD ({old_l}) must stay frozen while the reverse sync writes into \
                 it, but this connection cannot write through the block: {why}. Either give the tool's user on OLD \
                 the restore role (`db.grantRolesToUser(\"USER\", [{{role: \"restore\", db: \"admin\"}}])`; root \
                 has it too), or pass --unfreeze-old to unfreeze OLD after the switch and accept that a client \
                 still writing to it would diverge from NEW (recorded in the history). Nothing was changed"
            )));
        }
    }
    let verify_level = match args.verify {
        SwitchVerify::Counts => Some(Level::Metadata),
        SwitchVerify::Documents => Some(Level::Documents),
        SwitchVerify::None => None,
    };
    let mut plan = vec![format!("switch {old_l} → {new_l}")];
    if freeze {
        plan.push(format!(
            "block user writes on {old_l} (setUserWriteBlockMode)"
        ));
    }
    if let Some(f) = &forward {
        plan.push(format!(
            "drain the tail from {} (at most {}), stop it, restore its relaxed indexes",
            f.from,
            humantime::format_duration(args.max_lag)
        ));
    }
    if let Some(l) = verify_level {
        plan.push(format!(
            "verify {} namespace(s) at level {l:?}",
            colls.len()
        ));
    }
    plan.push(format!(
        "write {} file(s) atomically",
        edits.iter().filter(|e| e.before != e.after).count()
    ));
    for c in &args.exec {
        plan.push(format!("run: {}", crate::redact::scrub(c)));
    }
    if args.reverse_sync {
        plan.push(format!(
            "follow {new_l} into {old_l} in the background (reverse sync)"
        ));
    }
    if !ctx.ui.json() {
        let diffs: Vec<String> = edits
            .iter()
            .zip(&values)
            .filter(|(e, _)| e.before != e.after)
            .map(|(e, v)| e.diff(v))
            .collect();
        ctx.ui.result(format!(
            "{}\n\n{}",
            plan.iter()
                .map(|p| format!("  - {p}"))
                .collect::<Vec<_>>()
                .join("\n"),
            diffs.join("\n")
        ));
    }
    tl.done(
        "pre-flight",
        format!(
            "{new_l} reachable with the new URI; {} sink(s) planned",
            edits.len()
        ),
    );
    if args.dry_run {
        if ctx.ui.json() {
            ctx.ui
                .result_json(&serde_json::json!({ "ok": true, "dry_run": true, "plan": plan }));
        }
        ctx.ui.info("dry run: nothing was changed");
        return Ok(());
    }
    if !args.yes {
        crate::report::confirm::ask(
            &ctx.ui,
            &format!("switch the application from {old_l} to {new_l}?"),
        )?;
    }

    let hist = history::path_for(&sinks[0].path);
    // 2–4. From the freeze until the files are written, a failure unfreezes OLD.
    let s = Switch {
        ctx,
        args: &args,
        old: &old,
        new: &new,
        values: &values,
        hist: &hist,
        labels: (&old_l, &new_l),
        verify_cmd: format!(
            "`mongoshift verify --from {old_a} --to {new_a}{}`{note}",
            dbs.iter().map(|d| format!(" --db {d}")).collect::<String>()
        ),
        dbs: &dbs,
    };
    // Ctrl-C or SIGTERM before the files are written is a failure like any other (OLD
    // unfrozen, files untouched); the files themselves are written with no await between.
    let before_files = tokio::select! {
        r = s.until_written(&mut tl, forward.as_ref(), colls, verify_level, freeze, &edits) => r,
        sig = crate::signals::interrupted() => Err(anyhow::anyhow!("interrupted by {sig} before any file was written")),
    };
    let (switched_at, token, modes) = match before_files {
        Ok(v) => v,
        Err(e) => {
            if freeze {
                if let Err(u) = write_block::set(&old, false, &format!("OLD ({old_l})")).await {
                    ctx.ui.warn(format!(
                        "could not unfreeze {old_l}: {u:#}; unfreeze it with {}",
                        super::freeze::command_for(&old_t, &ctx.config, true)
                    ));
                } else {
                    ctx.ui
                        .warn(format!("{old_l} is writable again; no file was changed"));
                }
            }
            return Err(e);
        }
    };

    // 5. Hooks.
    let outcomes = hooks::run_all(&args.exec);
    if !args.exec.is_empty() {
        let ok = outcomes.iter().filter(|o| o.ok).count();
        tl.done("hooks", format!("{ok} of {} succeeded", args.exec.len()));
    }
    // 6. Reverse sync.
    let mut old_frozen = freeze;
    let mut reverse = None;
    if let Some(token) = token {
        let side = format!("OLD ({old_l})");
        // Checked in the pre-flight; probed again, since a role may have changed meanwhile.
        if !write_block::can_bypass(&old, &side).await? {
            write_block::set(&old, false, &side).await?;
            old_frozen = false;
            ctx.ui.warn(format!(
                "{old_l} is writable again{}: this connection cannot write through the block (auth is disabled, or the \
                 user lacks bypassWriteBlockingMode, e.g. the restore or root role), and the reverse sync must write \
                 into it. A client still writing to {old_l} would now diverge from {new_l}.",
                if args.unfreeze_old { " (--unfreeze-old)" } else { "" }
            ));
        }
        let (run, pid, log) = crate::migration::follow_detached(
            &ctx.config,
            (args.sides.to.as_deref().unwrap_or_default(), &new_t),
            (args.sides.from.as_deref().unwrap_or_default(), &old_t, &old),
            &dbs,
            token,
            &hist.with_file_name("logs"),
        )
        .await
        .with_context(|| {
            format!(
                "the files point at {new_l} and the switch is done, but the reverse sync could not start \
                 (a rollback would count NEW's writes instead); start it by hand with \
                 `mongoshift migrate --from {new_a} --to {old_a}{} --follow --detach --append`{note}",
                dbs.iter().map(|d| format!(" --db {d}")).collect::<String>()
            )
        })?;
        tl.done(
            "reverse sync",
            format!(
                "following {new_l} into {old_l}: pid {pid}, log {}",
                log.display()
            ),
        );
        reverse = Some(run);
    }
    // 7. History.
    let entry = Entry {
        action: "switch".into(),
        time: mongodb::bson::DateTime::now()
            .try_to_rfc3339_string()
            .unwrap_or_default(),
        time_ms: crate::follow::record::now_ms(),
        switched_at: Some((switched_at.time, switched_at.increment)),
        from: side_as_given(args.sides.from.as_deref().unwrap_or_default()),
        to: side_as_given(args.sides.to.as_deref().unwrap_or_default()),
        dbs: dbs.clone(),
        sinks: SinkEntry::of(&edits, &modes)
            .into_iter()
            .map(|s| SinkEntry {
                snapshot: true,
                ..s
            })
            .collect(),
        hooks: args.exec.iter().map(|c| crate::redact::scrub(c)).collect(),
        steps: tl.steps.clone(),
        reverse_sync: reverse.clone(),
        old_frozen,
        unfreeze_old: args.unfreeze_old,
        app_uri: Some(app_from.clone()),
        allow_admin_uri: args.allow_admin_uri,
        ok: outcomes.iter().all(|o| o.ok),
    };
    history::append(&hist, &entry)?;
    let own = tl.own_ms();
    if ctx.ui.json() {
        ctx.ui.result_json(&serde_json::json!({
            "ok": entry.ok, "from": old_l, "to": new_l, "steps": tl.steps, "own_ms": own,
            "hooks": outcomes, "reverse_sync": reverse, "old_frozen": old_frozen,
            "history": hist.display().to_string(),
        }));
    } else {
        let mut text = format!(
            "switched {} file(s) to {new_l} in {} ms of the tool's own time (drain and hooks excluded); history in {}",
            modes.len(),
            own,
            hist.display()
        );
        if old_frozen {
            text.push_str(&format!(
                "\n{old_l} stays blocked for user writes (a client still on it cannot diverge); {} lifts it",
                super::freeze::command_for(&old_t, &ctx.config, true)
            ));
        }
        if reverse.is_some() {
            text.push_str(&format!(
                "\nthe reverse sync keeps {old_l} in step for `mongoshift rollback`; `mongoshift migrate stop --to {old_a} --from {new_a}` ends it{note}"
            ));
        }
        ctx.ui.result(text);
    }
    if let Some(bad) = outcomes.iter().find(|o| !o.ok) {
        return Err(anyhow::anyhow!(
            "the files point at {new_l}, but the hook `{}` failed (exit {}):\n{}\nFix it and run the hook again, or `mongoshift rollback` to go back",
            crate::redact::scrub(&bad.command),
            bad.exit_code.map(|c| c.to_string()).unwrap_or("none".into()),
            bad.output_tail
        ));
    }
    Ok(())
}

/// A side for the history: a config target's name as it is, a URI without its password.
fn side_as_given(v: &str) -> String {
    crate::redact::uri(v)
}

struct Switch<'a> {
    ctx: &'a Ctx,
    args: &'a SwitchArgs,
    old: &'a Client,
    new: &'a Client,
    values: &'a [String],
    hist: &'a std::path::Path,
    labels: (&'a str, &'a str),
    /// The full verify, as a command that runs as printed.
    verify_cmd: String,
    dbs: &'a [String],
}

impl Switch<'_> {
    /// Steps 2–4: freeze, drain, verify, note NEW's position and time, write the files. Returns
    /// NEW's cluster time at the switch, the reverse sync's start and how each file was written.
    async fn until_written(
        &self,
        tl: &mut Timeline,
        forward: Option<&crate::follow::record::Run>,
        colls: Vec<namespaces::CollectionInfo>,
        level: Option<Level>,
        freeze: bool,
        edits: &[sink::Edit],
    ) -> Result<(
        mongodb::bson::Timestamp,
        Option<mongodb::bson::Bson>,
        Vec<sink::WriteMode>,
    )> {
        let (old_l, new_l) = self.labels;
        if freeze {
            write_block::set(self.old, true, &format!("OLD ({old_l})")).await?;
            tl.done("freeze", format!("user writes blocked on {old_l}"));
        }
        if let Some(f) = forward {
            let at =
                write_block::note(self.old, "switch freeze", &format!("OLD ({old_l})")).await?;
            let rec = Record::new(self.new, &f.run);
            let drained = crate::follow::control::wait_until(
                &rec,
                at,
                self.args.max_lag,
                "the freeze point was not reached; raise --max-lag or try when it has caught up",
            )
            .await?;
            let stopped = crate::follow::control::stop(&rec, Duration::from_secs(60)).await?;
            let restored = crate::follow::control::restore_relaxed(self.new, &stopped).await?;
            tl.done(
                "drain",
                format!(
                    "the tail reached the freeze point ({} events applied by its process) and stopped; {} relaxed index(es) restored",
                    drained.tail.events,
                    restored.len()
                ),
            );
        } else if freeze {
            tl.done("drain", "no tail follows into NEW; nothing to drain");
        }
        if let Some(level) = level {
            let progress = Progress::new(&self.ctx.ui, "verify", colls.len() as u64, 0);
            let opts = verdict::Options {
                level,
                max_report: 5,
                range_bytes: 256 << 20,
                counted: None,
            };
            let verdicts = verdict::all(
                self.old,
                self.new,
                colls,
                &Renamer::new(&[], &[])?,
                opts,
                2,
                &progress,
            )
            .await?;
            progress.finish();
            let bad: Vec<String> = verdicts
                .iter()
                .filter(|v| !v.identical)
                .map(|v| format!("{}: {}", v.source, v.problems().join("; ")))
                .collect();
            if !bad.is_empty() {
                let resume = if forward.is_some() {
                    " The tail was stopped at the freeze; follow again with the same `migrate … --follow` plus --resume."
                } else {
                    ""
                };
                return Err(crate::exit::check_failed(format!(
                    "verify found differences between {old_l} and {new_l}; nothing was switched:\n{}\n\
                     Run {} for the full report.{resume}",
                    bad.join("\n"),
                    self.verify_cmd
                )));
            }
            tl.done(
                "verify",
                format!(
                    "{} namespace(s) identical at level {level:?}",
                    verdicts.len()
                ),
            );
        }
        let token = if self.args.reverse_sync {
            let sel = Selection {
                dbs: self.dbs.to_vec(),
                filter: Filter::new(&[], &[])?,
                renamer: Renamer::new(&[], &[])?,
            };
            Some(
                crate::follow::position_now(self.new, &sel)
                    .await
                    .context("NEW")?,
            )
        } else {
            None
        };
        let at = crate::mongo::oplog::majority_time(self.new)
            .await
            .with_context(|| format!("NEW ({new_l})"))?;
        // The bytes before and after, beside the history, so that rollback restores each
        // file exactly (and can tell a later change); kept before any file is written.
        for e in edits {
            snapshot::save(self.hist, e.before.as_bytes())?;
            snapshot::save(self.hist, e.after.as_bytes())?;
        }
        let modes = sink::write_all(edits)?;
        tl.done(
            "switch",
            format!(
                "{} → {}",
                edits
                    .iter()
                    .map(|e| e.sink.describe())
                    .collect::<Vec<_>>()
                    .join(", "),
                {
                    let mut v: Vec<String> =
                        self.values.iter().map(|v| crate::redact::uri(v)).collect();
                    v.dedup();
                    v.join(", ")
                }
            ),
        );
        Ok((at, token, modes))
    }
}
