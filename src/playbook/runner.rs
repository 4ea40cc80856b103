//! Running a checked playbook: each step in order, its result checkpointed in the run
//! record before the next starts; `--resume` continues an unfinished run after its last
//! completed step, `--from-step` starts a new run at a step with the earlier results of
//! the last run; a failed step runs `on_failure`; `--dry-run` runs every step in its own
//! dry-run mode (or not at all) and writes nothing, not even a record.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::Utc;

use super::child::{self, Finished, Signals};
use super::effects;
use super::interpolate::{self, Scope};
use super::kinds::{self, DryRun};
use super::model::{self, Playbook, Step, StepKind, Val};
use super::record::{self, RunRecord, RunState, StepRecord, StepState};
use super::wait::{self, Wait};
use crate::exit::usage;
use crate::redact;
use crate::report::Ui;

pub struct RunOptions {
    pub cli_vars: Vec<(String, String)>,
    pub dry_run: bool,
    pub yes: bool,
    pub resume: bool,
    pub from_step: Option<String>,
    /// The config file to hand to every step (the run's own --config, absolute).
    pub config: Option<PathBuf>,
}

/// How one step ended.
struct Outcome {
    state: StepState,
    code: Option<i32>,
    output: Option<serde_json::Value>,
    command: Option<String>,
    message: Option<String>,
    interrupted: Option<&'static str>,
}

impl Outcome {
    fn skipped(message: String) -> Outcome {
        Outcome {
            state: StepState::Skipped,
            code: None,
            output: None,
            command: None,
            message: Some(message),
            interrupted: None,
        }
    }
    /// A step's process ended: succeeded only with exit 0 and no signal on the way.
    fn finished(f: &Finished, output: Option<serde_json::Value>, command: String) -> Outcome {
        Outcome {
            state: if f.code == Some(0) && f.interrupted.is_none() {
                StepState::Succeeded
            } else {
                StepState::Failed
            },
            code: Some(f.code.unwrap_or(crate::exit::RUNTIME)),
            output,
            command: Some(command),
            message: None,
            interrupted: f.interrupted,
        }
    }

    /// Stopped by Ctrl-C or SIGTERM (the step's process, if any, has exited).
    fn interrupted(sig: &'static str) -> Outcome {
        Outcome {
            interrupted: Some(sig),
            ..Outcome::failed(crate::exit::RUNTIME, String::new())
        }
    }
    fn failed(code: i32, message: String) -> Outcome {
        Outcome {
            state: StepState::Failed,
            code: Some(code),
            output: None,
            command: None,
            message: Some(message),
            interrupted: None,
        }
    }
}

struct Runner<'a> {
    ui: &'a Ui,
    pb: &'a Playbook,
    opts: &'a RunOptions,
    vars: BTreeMap<String, String>,
    outputs: HashMap<String, serde_json::Value>,
    signals: Signals,
    exe: PathBuf,
    /// Steps of the record that were started before (--resume): run them with --resume.
    resumed: Vec<String>,
    /// The step that failed, for on_failure steps (`MONGOSHIFT_FAILED_STEP`).
    failed: Option<String>,
}

/// The environment as the playbook sees it.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Run `pb`; returns the final record (the caller maps it to an exit code).
pub async fn run(ui: &Ui, pb: &Playbook, opts: &RunOptions) -> Result<RunRecord> {
    // Signals first: from here on a Ctrl-C is ours to handle, never a silent death.
    let signals = Signals::listen()?;
    let earlier: Vec<RunRecord> = record::list(Some(&pb.name))?
        .into_iter()
        .filter_map(|r| match r {
            Ok(r) => Some(r),
            Err(e) => {
                ui.warn(format!("{e:#}"));
                None
            }
        })
        .collect();
    if let Some(live) = earlier.iter().find(|r| r.is_live()) {
        return Err(usage(format!(
            "playbook {} is already running (run {}, pid {}); wait for it or stop it first",
            pb.name, live.run_id, live.pid
        )));
    }
    let latest = earlier.last().cloned();
    let mut rec = match (opts.resume, &latest) {
        (true, Some(r)) if r.effective_state() == RunState::Succeeded => {
            return Err(usage(format!(
                "the last run of {} ({}) finished; there is nothing to resume. Run it again without --resume, or use --from-step",
                pb.name, r.run_id
            )))
        }
        (true, Some(r)) => {
            let mut r = r.clone();
            if r.file_sha256 != pb.sha256 {
                ui.warn(format!(
                    "{} changed since run {} started; resuming with the file as it is now",
                    pb.file, r.run_id
                ));
            }
            r.state = RunState::Running;
            r.pid = std::process::id();
            r.host = crate::follow::record::hostname();
            r.finished_at = None;
            r.exit_code = None;
            r.failed_step = None;
            r.on_failure.clear();
            r
        }
        (true, None) => {
            return Err(usage(format!(
                "no run of {} to resume in {}; run it without --resume",
                pb.name,
                record::DIR
            )))
        }
        (false, latest) => {
            if let Some(r) = latest.as_ref().filter(|r| {
                opts.from_step.is_none()
                    && !opts.dry_run
                    && r.effective_state() != RunState::Succeeded
            }) {
                ui.info(format!(
                    "note: the last run ({}) did not finish{}; this starts a new run from the first step (--resume would continue that one)",
                    r.run_id,
                    r.failed_step
                        .as_deref()
                        .map(|s| format!(" (stopped at {s})"))
                        .unwrap_or_default()
                ));
            }
            RunRecord {
            playbook: pb.name.clone(),
            file: pb.file.clone(),
            file_sha256: pb.sha256.clone(),
            run_id: record::new_run_id(),
            state: RunState::Running,
            dry_run: opts.dry_run,
            pid: std::process::id(),
            host: crate::follow::record::hostname(),
            started_at: Utc::now(),
            finished_at: None,
            vars: BTreeMap::new(),
            steps: vec![],
            on_failure: vec![],
            exit_code: None,
            failed_step: None,
            }
        }
    };
    let vars = model::check(pb, &opts.cli_vars, &rec.run_id, &env_var)?;
    rec.vars = vars
        .iter()
        .map(|(k, v)| (k.clone(), redact::scrub(v)))
        .collect();
    // The record's steps follow the file (a resumed run keeps what each step recorded).
    let old: HashMap<String, StepRecord> = rec.steps.drain(..).map(|s| (s.id.clone(), s)).collect();
    rec.steps = pb
        .steps
        .iter()
        .map(|s| {
            old.get(&s.id)
                .cloned()
                .unwrap_or_else(|| StepRecord::pending(&s.id, &s.kind_name))
        })
        .collect();
    let mut start = 0;
    let mut resumed = vec![];
    let mut outputs = HashMap::new();
    if opts.resume {
        start = rec
            .steps
            .iter()
            .position(|s| s.state != StepState::Succeeded)
            .unwrap_or(rec.steps.len());
        for s in &rec.steps[..start] {
            outputs.insert(s.id.clone(), s.output.clone().unwrap_or_default());
        }
        resumed = rec
            .steps
            .iter()
            .filter(|s| s.attempts > 0 && s.state != StepState::Succeeded)
            .map(|s| s.id.clone())
            .collect();
        ui.info(format!(
            "resuming run {} of {} at step {}",
            rec.run_id,
            pb.name,
            rec.steps
                .get(start)
                .map_or("(none left)", |s| s.id.as_str())
        ));
    } else if let Some(from) = &opts.from_step {
        start = pb.steps.iter().position(|s| &s.id == from).ok_or_else(|| {
            usage(format!(
                "--from-step {from}: {} has no such step; its steps are {}",
                pb.file,
                pb.steps
                    .iter()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let prior: HashMap<String, StepRecord> = latest
            .iter()
            .flat_map(|r| r.steps.iter())
            .filter(|s| s.state == StepState::Succeeded)
            .map(|s| (s.id.clone(), s.clone()))
            .collect();
        for s in &mut rec.steps[..start] {
            s.state = StepState::Skipped;
            match prior.get(&s.id) {
                Some(p) => {
                    s.output = p.output.clone();
                    s.message = Some(format!(
                        "before --from-step; result of run {}",
                        latest.as_ref().map_or("", |r| r.run_id.as_str())
                    ));
                    outputs.insert(s.id.clone(), p.output.clone().unwrap_or_default());
                }
                None => s.message = Some("before --from-step; no earlier result".into()),
            }
        }
    }
    let mut runner = Runner {
        ui,
        pb,
        opts,
        vars,
        outputs,
        signals,
        exe: std::env::current_exe().context("finding our own executable to run the steps")?,
        resumed,
        failed: None,
    };
    runner.save(&rec)?;
    let total = pb.steps.len();
    // Dry run: what the earlier steps would have written (a write they only rehearsed or
    // skipped); a later check reading it sees the clusters as they are now, not as then.
    let mut written: Vec<effects::Place> = Vec::new();
    for i in start..total {
        let step = &pb.steps[i];
        {
            let r = &mut rec.steps[i];
            r.state = StepState::Running;
            r.attempts += 1;
            r.started_at = Some(Utc::now());
            r.finished_at = None;
            r.exit_code = None;
            r.message = None;
        }
        runner.save(&rec)?;
        ui.info(format!(
            "\n▶ [{}/{total}] {} ({})",
            i + 1,
            step.id,
            step.kind_name
        ));
        let t = Instant::now();
        let outcome = runner.step(step).await;
        let interrupted = outcome.interrupted;
        let r = &mut rec.steps[i];
        finish(r, outcome, t, &mut runner.outputs);
        let why = r.message.clone().filter(|_| r.state == StepState::Failed);
        runner.ui.info(line(r));
        // A dry run goes on past a failed step: its checks see the clusters as they are,
        // not as the skipped steps would leave them, and every step's rehearsal is wanted.
        let excused = r.state == StepState::Failed
            && opts.dry_run
            && effects::overlap(&written, &runner.touches(step, false));
        if opts.dry_run && would_change(step) {
            written.extend(runner.touches(step, true));
        }
        if r.state == StepState::Failed && opts.dry_run && interrupted.is_none() {
            if excused {
                r.message = Some(format!(
                    "{}it may pass in a real run: an earlier step would write what it reads, which a dry run does not do",
                    r.message.as_deref().map(|m| format!("{m}; ")).unwrap_or_default()
                ));
                ui.info(format!(
                    "  (not counted: {})",
                    r.message.as_deref().unwrap_or_default()
                ));
            } else if rec.failed_step.is_none() {
                rec.failed_step = Some(step.id.clone());
                rec.exit_code = r.exit_code.or(Some(crate::exit::RUNTIME));
            }
            continue;
        }
        if r.state == StepState::Failed {
            let code = r.exit_code.unwrap_or(crate::exit::RUNTIME);
            rec.exit_code = Some(code);
            rec.failed_step = Some(step.id.clone());
            if let Some(sig) = interrupted {
                rec.state = RunState::Interrupted;
                rec.finished_at = Some(Utc::now());
                runner.save(&rec)?;
                ui.warn(format!(
                    "interrupted by {sig} during step {}; continue with `mongoshift playbook run {} --resume`",
                    step.id, pb.file
                ));
                return Ok(rec);
            }
            rec.state = RunState::Failed;
            runner.save(&rec)?;
            ui.warn(format!(
                "step {} failed (exit {code}){}",
                step.id,
                why.map(|m| format!(": {m}")).unwrap_or_default()
            ));
            if opts.dry_run {
                ui.info("on_failure is not run in a dry run");
            } else if !pb.on_failure.is_empty() {
                runner.failed = Some(step.id.clone());
                ui.info(format!(
                    "running on_failure ({} steps)",
                    pb.on_failure.len()
                ));
                for s in &pb.on_failure {
                    rec.on_failure
                        .push(StepRecord::pending(&s.id, &s.kind_name));
                    let k = rec.on_failure.len() - 1;
                    rec.on_failure[k].state = StepState::Running;
                    rec.on_failure[k].attempts = 1;
                    rec.on_failure[k].started_at = Some(Utc::now());
                    runner.save(&rec)?;
                    ui.info(format!("\n▶ on_failure {} ({})", s.id, s.kind_name));
                    let t = Instant::now();
                    let o = runner.step(s).await;
                    finish(&mut rec.on_failure[k], o, t, &mut runner.outputs);
                    ui.info(line(&rec.on_failure[k]));
                    runner.save(&rec)?;
                }
            }
            rec.finished_at = Some(Utc::now());
            runner.save(&rec)?;
            return Ok(rec);
        }
        runner.save(&rec)?;
    }
    if rec.failed_step.is_some() {
        rec.state = RunState::Failed;
        ui.warn(format!(
            "the dry run found failures (first: step {}); a real run would stop there",
            rec.failed_step.as_deref().unwrap_or_default()
        ));
    } else {
        rec.state = RunState::Succeeded;
        rec.exit_code = Some(0);
    }
    rec.finished_at = Some(Utc::now());
    runner.save(&rec)?;
    Ok(rec)
}

/// Whether a step changes something in a real run (what a dry run leaves undone).
fn would_change(s: &Step) -> bool {
    match &s.kind {
        StepKind::Command(path) => matches!(
            kinds::dry_run(path),
            DryRun::Flag | DryRun::Instead(_) | DryRun::Skip
        ),
        StepKind::Exec => true,
        StepKind::Confirm | StepKind::Wait => false,
    }
}

fn finish(
    r: &mut StepRecord,
    o: Outcome,
    t: Instant,
    outputs: &mut HashMap<String, serde_json::Value>,
) {
    r.state = o.state;
    r.exit_code = o.code;
    r.command = o.command.map(|c| redact::scrub(&c));
    r.output = o.output;
    r.message = o.message.map(|m| redact::scrub(&m));
    r.finished_at = Some(Utc::now());
    r.seconds = Some(t.elapsed().as_secs_f64());
    if let Some(sig) = o.interrupted {
        r.message = Some(format!("interrupted by {sig}"));
    }
    if r.state == StepState::Succeeded {
        outputs.insert(r.id.clone(), r.output.clone().unwrap_or_default());
    }
}

/// One line per finished step, for people.
fn line(r: &StepRecord) -> String {
    let secs = r.seconds.map_or(String::new(), |s| format!(" in {s:.1} s"));
    match r.state {
        StepState::Succeeded => format!("✔ {}{secs}", r.id),
        StepState::Skipped => format!(
            "- {} skipped: {}",
            r.id,
            r.message.as_deref().unwrap_or_default()
        ),
        _ => format!(
            "✘ {} failed{secs} (exit {}){}",
            r.id,
            r.exit_code.map_or("-".into(), |c| c.to_string()),
            r.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ),
    }
}

impl Runner<'_> {
    fn save(&self, rec: &RunRecord) -> Result<()> {
        if self.opts.dry_run {
            return Ok(());
        }
        rec.save()
    }

    /// What a step writes in a real run (`write`), or what its checks read; see `effects`.
    /// A step that is not a command (a gate) or whose options do not resolve reads nothing,
    /// so that its failure always counts.
    fn touches(&self, s: &Step, write: bool) -> Vec<effects::Place> {
        let StepKind::Command(path) = &s.kind else {
            return if write && matches!(s.kind, StepKind::Exec) {
                vec![effects::Place::Anything]
            } else {
                Vec::new()
            };
        };
        let scope = self.scope();
        let Ok((vals, _)) = model::values(self.pb, s, path, &scope, true) else {
            return Vec::new();
        };
        let vals: Vec<(String, Val)> = vals.into_iter().map(|(o, v)| (o.name, v)).collect();
        let config = crate::config::Config::load(self.opts.config.as_deref()).ok();
        // One name per cluster: its hosts, whether given as a config target or a URI.
        let norm = |v: &str| -> String {
            if v.contains("://") {
                return redact::hosts(v);
            }
            config
                .as_ref()
                .and_then(|c| c.target(v).ok())
                .map(|t| redact::hosts(&t.uri))
                .unwrap_or_else(|| v.to_string())
        };
        if write {
            effects::writes(path, &vals, &norm)
        } else {
            effects::reads(path, &vals, &norm)
        }
    }

    fn scope(&self) -> Scope<'_> {
        Scope {
            vars: &self.vars,
            env: &env_var,
            steps: &self.outputs,
        }
    }

    async fn step(&mut self, s: &Step) -> Outcome {
        if let Some((after, ..)) = &s.only_after {
            if !self.outputs.contains_key(after) {
                return Outcome::skipped(format!(
                    "it runs only after step {after}, which did not complete"
                ));
            }
        }
        match &s.kind {
            StepKind::Command(path) => self.command(s, path).await,
            StepKind::Confirm => self.confirm(s).await,
            StepKind::Wait => self.wait(s).await,
            StepKind::Exec => self.exec(s).await,
        }
    }

    async fn command(&mut self, s: &Step, path: &[String]) -> Outcome {
        let (mut vals, pending) = {
            let scope = self.scope();
            match model::values(self.pb, s, path, &scope, self.opts.dry_run) {
                Ok(v) => v,
                Err(e) => return Outcome::failed(crate::exit::USAGE, e),
            }
        };
        if !pending.is_empty() {
            let names: Vec<String> = pending.iter().map(|r| r.text()).collect();
            return Outcome::skipped(format!(
                "it uses {}, which only a real run produces",
                names.join(", ")
            ));
        }
        let mut path = path.to_vec();
        if self.opts.dry_run {
            match kinds::dry_run(&path) {
                DryRun::Flag => vals.push((flag(&path, "dry_run"), Val::Switch(true))),
                DryRun::AsIs => {}
                DryRun::Instead(other) => {
                    let theirs = kinds::options(&other);
                    vals.retain(|(o, _)| theirs.iter().any(|t| t.name == o.name));
                    path = other;
                }
                DryRun::Without(drop) => vals.retain(|(o, _)| !drop.contains(&o.name.as_str())),
                DryRun::Skip => {
                    return Outcome::skipped(format!(
                        "`{}` would write ({}) and has no dry-run mode",
                        path.join(" "),
                        kinds::effect(&path)
                    ))
                }
            }
        }
        let has = |name: &str| kinds::options(&path).iter().any(|o| o.name == name);
        if self.opts.yes && has("yes") && !vals.iter().any(|(o, _)| o.name == "yes") {
            vals.push((flag(&path, "yes"), Val::Switch(true)));
        }
        if self.resumed.contains(&s.id) && has("resume") && !self.opts.dry_run {
            vals.push((flag(&path, "resume"), Val::Switch(true)));
        }
        let mut argv = self.child_globals();
        if !self.ui.progress_bars {
            argv.push("--no-progress".into());
        }
        argv.extend(model::argv(&path, &vals));
        let shown = format!("mongoshift {}", model::argv(&path, &vals).join(" "));
        self.ui.info(format!("  {}", redact::scrub(&shown)));
        let env = self.child_env(s);
        let exe = self.exe.clone();
        match child::run(&exe, &argv, &env, &mut self.signals).await {
            Ok(f) => Outcome::finished(&f, parse_output(&f.stdout), shown),
            Err(e) => Outcome::failed(crate::exit::RUNTIME, format!("{e:#}")),
        }
    }

    /// The global options of every `mongoshift` a step runs: the run's config, JSON results.
    fn child_globals(&self) -> Vec<String> {
        let mut argv: Vec<String> = self
            .opts
            .config
            .iter()
            .map(|c| format!("--config={}", c.display()))
            .collect();
        argv.extend(["--output".to_string(), "json".to_string()]);
        argv
    }

    fn child_env(&self, s: &Step) -> Vec<(String, String)> {
        let mut env = vec![
            ("MONGOSHIFT_PLAYBOOK".into(), self.pb.name.clone()),
            ("MONGOSHIFT_RUN_ID".into(), self.vars["run_id"].clone()),
            ("MONGOSHIFT_STEP".into(), s.id.clone()),
        ];
        if let Some(f) = &self.failed {
            env.push(("MONGOSHIFT_FAILED_STEP".into(), f.clone()));
        }
        env
    }

    fn text(&self, s: &Step) -> Result<String, String> {
        interpolate::expand(s.body.as_str().unwrap_or_default(), &self.scope(), false)
            .map(|e| e.text)
            .map_err(|e| format!("{}:{}:{}: {e}", self.pb.file, s.body.line, s.body.col))
    }

    async fn confirm(&mut self, s: &Step) -> Outcome {
        let question = match self.text(s) {
            Ok(q) => q,
            Err(e) => return Outcome::failed(crate::exit::USAGE, e),
        };
        if self.opts.dry_run {
            return Outcome::skipped(format!("would ask: {question}"));
        }
        let answered = if self.opts.yes {
            Ok("confirmed by --yes".to_string())
        } else {
            // The prompt blocks on the terminal; Ctrl-C there must still stop the run.
            let (ui, q) = (self.ui.clone(), question.clone());
            let ask = tokio::task::spawn_blocking(move || crate::report::confirm::ask(&ui, &q));
            tokio::select! {
                a = ask => a
                    .map_err(anyhow::Error::from)
                    .and_then(|r| r)
                    .map(|_| "confirmed on the terminal".to_string()),
                sig = self.signals.next() => return Outcome::interrupted(sig),
            }
        };
        match answered {
            Ok(how) => Outcome {
                state: StepState::Succeeded,
                code: Some(0),
                output: Some(serde_json::json!({ "confirmed": true, "question": question })),
                command: None,
                message: Some(how),
                interrupted: None,
            },
            Err(e) => Outcome::failed(crate::exit::USAGE, format!("{e:#}")),
        }
    }

    async fn wait(&mut self, s: &Step) -> Outcome {
        let w = {
            let scope = self.scope();
            match Wait::parse(self.pb, s, &scope) {
                Ok(w) => w,
                Err(e) => return Outcome::failed(crate::exit::USAGE, e),
            }
        };
        if self.opts.dry_run {
            return Outcome::skipped(format!("would {}", w.describe()));
        }
        self.ui.info(format!("  {}", w.describe()));
        let started = Instant::now();
        let done = |extra: serde_json::Value| Outcome {
            state: StepState::Succeeded,
            code: Some(0),
            output: Some(extra),
            command: None,
            message: None,
            interrupted: None,
        };
        match w {
            Wait::For(d) => tokio::select! {
                _ = tokio::time::sleep(d) => done(serde_json::json!({ "waited_secs": d.as_secs_f64() })),
                sig = self.signals.next() => Outcome::interrupted(sig),
            },
            Wait::Lag {
                below,
                status_argv,
                timeout,
            } => {
                let mut argv = self.child_globals();
                argv.push("-q".into());
                argv.extend(status_argv);
                let env = self.child_env(s);
                let exe = self.exe.clone();
                let mut last: Option<f64>;
                loop {
                    match child::run(&exe, &argv, &env, &mut self.signals).await {
                        Ok(Finished {
                            interrupted: Some(sig),
                            ..
                        }) => return Outcome::interrupted(sig),
                        Ok(f) if f.code == Some(0) => {
                            let j = parse_output(&f.stdout).unwrap_or_default();
                            let (ok, lag) = wait::lag_ok(&j, below);
                            last = lag;
                            if ok {
                                return done(serde_json::json!({
                                    "lag_secs": lag,
                                    "waited_secs": started.elapsed().as_secs_f64()
                                }));
                            }
                        }
                        Ok(f) => {
                            return Outcome::failed(
                                f.code.unwrap_or(crate::exit::RUNTIME),
                                "`migrate status` failed; see its message above".into(),
                            )
                        }
                        Err(e) => return Outcome::failed(crate::exit::RUNTIME, format!("{e:#}")),
                    }
                    if started.elapsed() > timeout {
                        // (checked after each poll; the pause below is interruptible)
                        return Outcome::failed(
                            crate::exit::CHECK_FAILED,
                            format!(
                                "the tail did not get below {} of lag within {} (last lag: {})",
                                humantime::format_duration(below),
                                humantime::format_duration(timeout),
                                last.map_or("no live tail found".into(), |l| format!("{l:.1} s"))
                            ),
                        );
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        sig = self.signals.next() => return Outcome::interrupted(sig),
                    }
                }
            }
        }
    }

    async fn exec(&mut self, s: &Step) -> Outcome {
        let cmd = match self.text(s) {
            Ok(c) => c,
            Err(e) => return Outcome::failed(crate::exit::USAGE, e),
        };
        redact::register_uri(&cmd);
        if self.opts.dry_run {
            return Outcome::skipped(format!("would run: sh -c {}", redact::scrub(&cmd)));
        }
        self.ui.info(format!("  sh -c {}", redact::scrub(&cmd)));
        let env = self.child_env(s);
        match child::run(
            std::path::Path::new("/bin/sh"),
            &["-c".to_string(), cmd.clone()],
            &env,
            &mut self.signals,
        )
        .await
        {
            Ok(f) => {
                // The command's stdout is shown (ours carries the run's result) and kept.
                if !f.stdout.is_empty() {
                    eprint!("{}", redact::scrub(&f.stdout));
                }
                let tail: String = {
                    let t = f.stdout.trim_end();
                    let from = t.len().saturating_sub(4096);
                    let from = (from..=t.len())
                        .find(|i| t.is_char_boundary(*i))
                        .unwrap_or(0);
                    t[from..].to_string()
                };
                let output =
                    serde_json::json!({ "exit_code": f.code, "stdout": redact::scrub(&tail) });
                Outcome::finished(&f, Some(output), format!("sh -c {cmd}"))
            }
            Err(e) => Outcome::failed(crate::exit::RUNTIME, format!("{e:#}")),
        }
    }
}

fn flag(path: &[String], name: &str) -> kinds::OptionInfo {
    kinds::options(path)
        .into_iter()
        .find(|o| o.name == name)
        .expect("checked with `has` or by DryRun::Flag")
}

/// A step's stdout as JSON; text that is not JSON is kept as `{"stdout": …}`.
fn parse_output(stdout: &str) -> Option<serde_json::Value> {
    let t = stdout.trim();
    if t.is_empty() {
        return None;
    }
    Some(
        serde_json::from_str(t)
            .unwrap_or_else(|_| serde_json::json!({ "stdout": redact::scrub(t) })),
    )
}
