//! One harness for the `migrate --follow` tests: the replica set followed into the
//! Atlas-like server in the background (stdout and stderr in `out.txt` and `err.txt` of its
//! working folder), `migrate status --output json` polled until the tail is where a test
//! wants it, and `migrate stop` / `finalize`. A wait that fails says why (the tail exited or
//! failed, or the time ran out) with the end of migrate's stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{mongoshift, servers, Run, Running};

/// How often a wait asks again.
const POLL: Duration = Duration::from_millis(200);

/// How many of stderr's last lines a failed wait shows.
const STDERR_LINES: usize = 30;

/// A `migrate --follow` of source databases into (renamed) target databases, run in `dir`,
/// its process killed when this is dropped before it ended. Also a handle on a run without a
/// process of ours (`Follow::at`: a detached tail, or one that has exited).
pub struct Follow {
    dir: PathBuf,
    /// (source database, target database)
    dbs: Vec<(String, String)>,
    child: Running,
    following_timeout: Duration,
    caught_up_timeout: Duration,
}

impl Follow {
    /// The run of `dbs` (source, target) in `dir`, without starting anything.
    pub fn at(dir: &Path, dbs: &[(&str, &str)]) -> Follow {
        Follow {
            dir: dir.to_path_buf(),
            dbs: dbs
                .iter()
                .map(|(s, d)| (s.to_string(), d.to_string()))
                .collect(),
            child: Running(None),
            following_timeout: Duration::from_secs(180),
            caught_up_timeout: Duration::from_secs(180),
        }
    }

    /// `migrate --follow` of each source database of `dbs` into its target database, with
    /// `extra` arguments, in the background in `dir`.
    pub fn start(dir: &Path, dbs: &[(&str, &str)], extra: &[&str]) -> Follow {
        let mut f = Follow::at(dir, dbs);
        f.spawn(extra);
        f
    }

    /// How long `wait_following` / `following` and `wait_caught_up` / `caught_up` wait
    /// (180 s each unless set).
    pub fn timeouts(mut self, following: Duration, caught_up: Duration) -> Follow {
        self.following_timeout = following;
        self.caught_up_timeout = caught_up;
        self
    }

    /// Start `migrate --follow` of these databases in this folder, with `extra` arguments
    /// (again, e.g. with `--resume`: the previous process must have ended).
    pub fn spawn(&mut self, extra: &[&str]) {
        if let Some(c) = self.child.0.as_mut() {
            assert!(
                c.try_wait().unwrap().is_some(),
                "migrate --follow is still running"
            );
        }
        let mut args: Vec<String> = vec![
            "migrate".into(),
            "--from".into(),
            servers().rs_uri.clone(),
            "--to".into(),
            servers().atlas_uri.clone(),
            "--follow".into(),
            "--yes".into(),
            "--no-progress".into(),
        ];
        for (s, d) in &self.dbs {
            args.extend([
                "--db".into(),
                s.clone(),
                "--ns-from".into(),
                format!("{s}.*"),
                "--ns-to".into(),
                format!("{d}.*"),
            ]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(env!("CARGO_BIN_EXE_mongoshift"))
            .stdin(Stdio::null())
            .current_dir(&self.dir)
            .args(&args)
            .stdout(std::fs::File::create(self.dir.join("out.txt")).unwrap())
            .stderr(std::fs::File::create(self.dir.join("err.txt")).unwrap())
            .spawn()
            .expect("starting migrate --follow");
        self.child = Running(Some(child));
    }

    /// `migrate <action> --to <target> --db <each source> <extra>` in the run's folder.
    pub fn control(&self, action: &str, extra: &[&str]) -> Run {
        let mut args = vec!["migrate", action, "--to", &servers().atlas_uri];
        for (s, _) in &self.dbs {
            args.extend(["--db", s]);
        }
        args.extend_from_slice(extra);
        mongoshift(&self.dir, args)
    }

    /// The one run of these databases as `migrate status --output json` shows it (null when
    /// there is none).
    #[track_caller]
    pub fn status(&self) -> serde_json::Value {
        let r = self.control("status", &["--output", "json"]);
        r.assert_code(0);
        let runs = r.json()["runs"].as_array().unwrap().clone();
        assert!(runs.len() <= 1, "{runs:?}");
        runs.into_iter().next().unwrap_or(serde_json::Value::Null)
    }

    /// What the last migrate started here wrote to stdout.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.join("out.txt")).unwrap_or_default()
    }

    /// What the last migrate started here wrote to stderr.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("err.txt")).unwrap_or_default()
    }

    /// The last lines of stderr, for a failure's message.
    fn stderr_tail(&self) -> String {
        let text = self.stderr();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(STDERR_LINES)..].join("\n")
    }

    /// Wait until `f` holds; past `timeout`, fail with the end of migrate's stderr.
    #[track_caller]
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&mut Self) -> bool,
    ) {
        let start = Instant::now();
        while !f(self) {
            if start.elapsed() > timeout {
                panic!(
                    "timed out waiting for {what}; the last migrate's stderr ends with:\n{}",
                    self.stderr_tail()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Wait until `done(status)`, or say why the tail cannot get there: our process exited,
    /// the run failed, or `timeout` ran out. Returns the status that was done.
    fn wait(
        &mut self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value, String> {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.0.as_mut().and_then(|c| c.try_wait().unwrap()) {
                return Err(format!(
                    "waiting for {what}: migrate --follow exited ({s}); stderr ends:\n{}",
                    self.stderr_tail()
                ));
            }
            let st = self.status();
            if st["phase"] == "failed" {
                return Err(format!(
                    "waiting for {what}: the tail failed: {st}\nstderr ends:\n{}",
                    self.stderr_tail()
                ));
            }
            if done(&st) {
                return Ok(st);
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "timed out waiting for {what}; status {st}\nstderr ends:\n{}",
                    self.stderr_tail()
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// The tail has finished its copy and is following, in a live process.
    pub fn following(&mut self) -> Result<serde_json::Value, String> {
        self.wait("the tail", self.following_timeout, |s| {
            s["phase"] == "following" && s["alive"] == true
        })
    }

    /// [`Follow::following`], or fail the test saying why not.
    #[track_caller]
    pub fn wait_following(&mut self) -> serde_json::Value {
        self.following().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Once the source is quiet: the tail has applied everything the source had written.
    pub fn caught_up(&mut self) -> Result<serde_json::Value, String> {
        let at = super::majority_optime(&servers().rs_uri);
        self.wait("the tail to catch up", self.caught_up_timeout, |s| {
            super::tail_applied(s, at)
        })
    }

    /// [`Follow::caught_up`], or fail the test saying why not.
    #[track_caller]
    pub fn wait_caught_up(&mut self) -> serde_json::Value {
        self.caught_up().unwrap_or_else(|e| panic!("{e}"))
    }

    /// `kill -9` of our process, as a crash would end it.
    pub fn kill_9(&mut self) {
        self.child.kill_9();
    }

    /// Our process's exit code once it has exited, without waiting.
    pub fn try_exit(&mut self) -> Option<i32> {
        let c = self.child.0.as_mut().expect("running");
        c.try_wait().unwrap().map(|s| s.code().unwrap_or(-1))
    }

    /// Wait (up to 60 s) for our process to exit; its exit code.
    #[track_caller]
    pub fn exit_code(&mut self) -> i32 {
        self.exited().unwrap_or_else(|e| panic!("{e}"))
    }

    fn exited(&mut self) -> Result<i32, String> {
        let start = Instant::now();
        loop {
            if let Some(code) = self.try_exit() {
                self.child.0 = None;
                return Ok(code);
            }
            if start.elapsed() > Duration::from_secs(60) {
                return Err(format!(
                    "migrate --follow did not exit; stderr:\n{}",
                    self.stderr()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `migrate stop`, then our process exits 0. Returns what stop printed.
    pub fn try_stop(&mut self) -> Result<Run, String> {
        let stop = self.control("stop", &[]);
        if stop.code != 0 {
            return Err(format!(
                "migrate stop exited {}: {}\n{}",
                stop.code, stop.stdout, stop.stderr
            ));
        }
        match self.exited()? {
            0 => Ok(stop),
            code => Err(format!(
                "a stopped tail exits 0, not {code}; stderr ends:\n{}",
                self.stderr_tail()
            )),
        }
    }

    /// [`Follow::try_stop`], or fail the test saying why not.
    #[track_caller]
    pub fn stop(&mut self) -> Run {
        self.try_stop().unwrap_or_else(|e| panic!("{e}"))
    }

    /// `migrate finalize` (puts back the unique and TTL indexes the tail relaxes), exit 0.
    pub fn try_finalize(&self) -> Result<Run, String> {
        let fin = self.control("finalize", &[]);
        if fin.code != 0 {
            return Err(format!(
                "migrate finalize exited {}: {}\n{}",
                fin.code, fin.stdout, fin.stderr
            ));
        }
        Ok(fin)
    }

    /// [`Follow::try_finalize`], or fail the test saying why not.
    #[track_caller]
    pub fn finalize(&self) -> Run {
        self.try_finalize().unwrap_or_else(|e| panic!("{e}"))
    }
}
