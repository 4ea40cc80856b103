//! Progress for long work: an overall bar plus one bar per active task on a
//! terminal; periodic plain log lines otherwise (CI logs, pipes).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::table;
use super::Ui;

/// How often plain log lines are printed when there is no terminal.
const LOG_EVERY: Duration = Duration::from_secs(10);

struct Totals {
    label: String,
    docs: AtomicU64,
    bytes: AtomicU64,
    tasks_done: AtomicU64,
    tasks_total: u64,
    start: Instant,
}

/// Our own rate keys: indicatif's `{per_sec}` prints four decimals ("137,046.2844/s") and
/// `{bytes_per_sec}` two; rates are shown as `table::rate` writes them everywhere.
fn rate_keys(style: ProgressStyle) -> ProgressStyle {
    style
        .with_key(
            "rate",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}/s", table::rate(s.per_sec()));
            },
        )
        .with_key(
            "byte_rate",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}/s", table::bytes(s.per_sec() as u64));
            },
        )
}

impl Totals {
    fn line(&self) -> String {
        let secs = self.start.elapsed().as_secs_f64().max(0.001);
        let bytes = self.bytes.load(Ordering::Relaxed);
        let docs = self.docs.load(Ordering::Relaxed);
        format!(
            "{}: {}/{} done, {} docs, {} ({}/s, {:.0} docs/s)",
            self.label,
            self.tasks_done.load(Ordering::Relaxed),
            self.tasks_total,
            docs,
            table::bytes(bytes),
            table::bytes((bytes as f64 / secs) as u64),
            docs as f64 / secs
        )
    }
}

pub struct Progress {
    /// Every task's name, estimate and count, for `snapshot`.
    tasks: std::sync::Mutex<Vec<Arc<TaskInner>>>,
    multi: Option<MultiProgress>,
    overall: Option<ProgressBar>,
    totals: Arc<Totals>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// `total_bytes` is an estimate for the overall bar (0 when unknown).
    pub fn new(ui: &Ui, label: &str, tasks_total: u64, total_bytes: u64) -> Progress {
        let totals = Arc::new(Totals {
            label: label.to_string(),
            docs: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            tasks_done: AtomicU64::new(0),
            tasks_total,
            start: Instant::now(),
        });
        if ui.progress_bars {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
            let overall = multi.add(ProgressBar::new(total_bytes.max(1)));
            overall.set_style(
                ProgressStyle::with_template(
                    "{prefix:.bold} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {byte_rate} eta {eta} {msg}",
                )
                .map(rate_keys)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            overall.set_prefix(label.to_string());
            overall.set_message(format!("0/{tasks_total}"));
            return Progress {
                tasks: Default::default(),
                multi: Some(multi),
                overall: Some(overall),
                totals,
                ticker: None,
            };
        }
        let ticker = (!ui.quiet).then(|| {
            let t = totals.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(LOG_EVERY);
                every.tick().await;
                loop {
                    every.tick().await;
                    eprintln!("{}", t.line());
                }
            })
        });
        Progress {
            tasks: Default::default(),
            multi: None,
            overall: None,
            totals,
            ticker,
        }
    }

    /// A bar for one collection (or object); `est_docs` sizes it (0 = unknown).
    pub fn task(&self, name: &str, est_docs: u64) -> TaskProgress {
        let bar = self.multi.as_ref().map(|m| {
            let b = m.add(ProgressBar::new(est_docs.max(1)));
            b.set_style(
                ProgressStyle::with_template(
                    "  {prefix:30!} [{bar:20}] {human_pos}/{human_len} docs {rate} eta {eta} {msg}",
                )
                .map(rate_keys)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_prefix(name.to_string());
            b
        });
        let inner = Arc::new(TaskInner {
            bar,
            overall: self.overall.clone(),
            totals: self.totals.clone(),
            bytes: AtomicU64::new(0),
            name: name.to_string(),
            est_docs,
            docs: AtomicU64::new(0),
            start: Instant::now(),
        });
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(inner.clone());
        TaskProgress { inner }
    }

    /// (name, documents so far, estimated documents, documents per second) of every task
    /// begun, for a record that another process reads (`migrate status`).
    pub fn snapshot(&self) -> Vec<(String, u64, u64, f64)> {
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|t| {
                let docs = t.docs.load(Ordering::Relaxed);
                let secs = t.start.elapsed().as_secs_f64().max(0.001);
                (
                    t.name.clone(),
                    docs,
                    t.est_docs.max(docs),
                    table::round1(docs as f64 / secs),
                )
            })
            .collect()
    }

    /// Remove the bars; the command prints its summary next.
    pub fn finish(&self) {
        if let Some(t) = &self.ticker {
            t.abort();
        }
        if let Some(o) = &self.overall {
            o.finish_and_clear();
        }
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}

struct TaskInner {
    bar: Option<ProgressBar>,
    overall: Option<ProgressBar>,
    totals: Arc<Totals>,
    bytes: AtomicU64,
    name: String,
    est_docs: u64,
    docs: AtomicU64,
    start: Instant,
}

#[derive(Clone)]
pub struct TaskProgress {
    inner: Arc<TaskInner>,
}

impl TaskProgress {
    /// A task that is counted nowhere: for the second stage of a pipeline whose first
    /// stage already reports the same documents.
    pub fn none() -> TaskProgress {
        TaskProgress {
            inner: Arc::new(TaskInner {
                bar: None,
                overall: None,
                totals: Arc::new(Totals {
                    label: String::new(),
                    docs: AtomicU64::new(0),
                    bytes: AtomicU64::new(0),
                    tasks_done: AtomicU64::new(0),
                    tasks_total: 0,
                    start: Instant::now(),
                }),
                bytes: AtomicU64::new(0),
                name: String::new(),
                est_docs: 0,
                docs: AtomicU64::new(0),
                start: Instant::now(),
            }),
        }
    }

    /// Documents counted so far (a failed load's result says how many landed).
    pub fn docs(&self) -> u64 {
        self.inner.docs.load(Ordering::Relaxed)
    }

    pub fn add(&self, docs: u64, bytes: u64) {
        let i = &self.inner;
        i.docs.fetch_add(docs, Ordering::Relaxed);
        i.totals.docs.fetch_add(docs, Ordering::Relaxed);
        i.totals.bytes.fetch_add(bytes, Ordering::Relaxed);
        let mine = i.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if let Some(b) = &i.bar {
            b.inc(docs);
            if b.position() > b.length().unwrap_or(0) {
                b.set_length(b.position());
            }
            b.set_message(table::bytes(mine));
        }
        if let Some(o) = &i.overall {
            o.inc(bytes);
            if o.position() > o.length().unwrap_or(0) {
                o.set_length(o.position());
            }
        }
    }

    pub fn finish(&self) {
        let i = &self.inner;
        let done = i.totals.tasks_done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(b) = &i.bar {
            b.finish_and_clear();
        }
        if let Some(o) = &i.overall {
            o.set_message(format!("{done}/{}", i.totals.tasks_total));
        }
    }
}
