//! Argument parsing, global options, and the top-level run loop that maps
//! errors to exit codes.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::commands;
use crate::config::{Config, ResolvedTarget};
use crate::exit::{self, usage};
use crate::mongo::ConnectOptions;
use crate::redact;
use crate::report::{OutputFormat, Ui};

/// The heading global options are listed under in every command's help, apart from
/// the command's own options.
const GLOBAL: &str = "Global options";

#[derive(Debug, Parser)]
#[command(
    name = "mongoshift",
    version,
    about = "Move a growing MongoDB deployment to a managed cluster safely.",
    after_help = "Exit codes: 0 success, 1 runtime error, 2 invalid input, 3 a check found a difference or breached a threshold."
)]
pub struct Cli {
    /// Config file (default: ./mongoshift.yaml when present).
    #[arg(long, global = true, value_name = "FILE", help_heading = GLOBAL)]
    pub config: Option<PathBuf>,
    /// Result format on stdout.
    #[arg(long, global = true, value_enum, default_value = "table", help_heading = GLOBAL)]
    pub output: OutputFormat,
    /// More detail on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    pub verbose: u8,
    /// Only errors and warnings on stderr.
    #[arg(short, long, global = true, help_heading = GLOBAL)]
    pub quiet: bool,
    /// Never draw progress bars (plain log lines are printed instead off a terminal).
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub no_progress: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Health check: reachability, ping, version, topology and lag, connections, profiler.
    Status(commands::status::StatusArgs),
    /// Load predixi-shaped sample data (users, markets, bets, transactions, comments) for demos and benchmarks.
    Sample(commands::sample::SampleArgs),
    /// Back up databases to S3 or a folder (mongodump layout, compressed, checksummed).
    Backup(commands::backup::BackupArgs),
    /// Manage backups: list, show, verify, prune.
    Backups(commands::backups::BackupsArgs),
    /// Restore a backup, a mongodump folder or archive: plan, parallel load, verification.
    Restore(Box<commands::restore::RestoreArgs>),
    /// Declarative index specs: lint, plan, check (CI gate), apply, export.
    Indexes(commands::indexes::IndexesArgs),
    /// Copy databases straight from one cluster to another: raw, parallel, resumable, counted.
    Migrate(Box<commands::migrate::MigrateArgs>),
    /// Prove two clusters hold the same data: counts, options, indexes, every document's bytes; names each differing _id.
    Verify(Box<commands::verify::VerifyArgs>),
    /// Cut the application over from OLD to NEW: freeze, drain, verify, rewrite .env / Secret files atomically, hooks, reverse sync.
    Switch(Box<commands::switch::SwitchArgs>),
    /// Undo the last switch: drain the reverse sync, write the old connection string back, hooks.
    Rollback(Box<commands::rollback::RollbackArgs>),
    /// Block or allow user writes on a replica set, or show whether they are blocked.
    Freeze(commands::freeze::FreezeArgs),
    /// Slow query shapes from the profiler and logs, explain, ESR index recommendations as specs, a CI gate on critical queries.
    Analyze(commands::analyze::AnalyzeArgs),
    /// YAML runbooks of these commands: plan, run (checkpointed, resumable, dry-run), status.
    Playbook(commands::playbook::PlaybookArgs),
}

/// `--uri` or `--target`, shared by every command that connects to MongoDB.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// MongoDB connection string (prefer --target with ${VAR} in the config to keep passwords off the command line).
    #[arg(long, value_name = "URI", conflicts_with = "target")]
    pub uri: Option<String>,
    /// A target named in the config file.
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
    /// How long to wait for a reachable server.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
}

impl TargetArgs {
    pub fn resolve(&self, config: &Config) -> Result<ResolvedTarget> {
        match (&self.uri, &self.target) {
            (Some(uri), None) => {
                redact::register_uri(uri);
                Ok(ResolvedTarget::from_uri(uri))
            }
            (None, Some(name)) => {
                let t = config.target(name)?;
                redact::register_uri(&t.uri);
                Ok(t)
            }
            _ => Err(usage(
                "say which MongoDB to use: --uri mongodb://host:port or --target NAME from the config file",
            )),
        }
    }

    pub fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            timeout: self.timeout,
        }
    }
}

/// What every load (restore, migrate) takes: namespace selection and renaming, what to do
/// with targets that hold documents, resume, parallelism, dry run and confirmation.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Only namespaces matching this pattern (source names), e.g. 'predixi.*'.
    #[arg(long, value_name = "PATTERN")]
    pub ns_include: Vec<String>,
    /// Skip namespaces matching this pattern.
    #[arg(long, value_name = "PATTERN")]
    pub ns_exclude: Vec<String>,
    /// Rename: source pattern with $var$ (or *), e.g. 'predixi.$coll$'.
    #[arg(long, value_name = "PATTERN", requires = "ns_to")]
    pub ns_from: Vec<String>,
    /// Rename: target pattern, e.g. 'predixi_restore.$coll$'.
    #[arg(long, value_name = "PATTERN", requires = "ns_from")]
    pub ns_to: Vec<String>,
    /// Drop each target collection before loading it.
    #[arg(long, conflicts_with = "append")]
    pub drop: bool,
    /// Insert into existing collections; duplicate keys are counted and reported.
    #[arg(long)]
    pub append: bool,
    /// Continue an interrupted run: finished namespaces (and ranges) are skipped.
    #[arg(long)]
    pub resume: bool,
    /// Do not build the source's indexes.
    #[arg(long)]
    pub no_indexes: bool,
    /// Show the plan with real document counts and conflicts; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Collections loaded at once (default: CPU cores).
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// Insert workers per collection (per range, for migrate).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub workers_per_collection: usize,
    /// Write at most this many bytes of documents per second, all collections together
    /// (e.g. 50MB): keeps a production source's disk and network for its application.
    #[arg(long, value_name = "RATE", value_parser = crate::pipeline::throttle::parse_rate)]
    pub max_rate: Option<u64>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
}

impl LoadArgs {
    pub fn filter(&self) -> Result<crate::namespace::Filter> {
        crate::namespace::Filter::new(&self.ns_include, &self.ns_exclude)
    }

    pub fn renamer(&self) -> Result<crate::namespace::Renamer> {
        crate::namespace::Renamer::new(&self.ns_from, &self.ns_to)
    }

    /// Namespaces whose documents are inserted at once: `--parallel`, else the CPU cores.
    pub fn lanes(&self) -> crate::load::lanes::Lanes {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        crate::load::lanes::Lanes::new(self.parallel.unwrap_or(cores))
    }

    /// The shared `--max-rate` schedule, when one is asked for (and said, so that a slow
    /// run is not mistaken for a slow server).
    pub fn throttle(&self, ui: &Ui) -> Option<std::sync::Arc<crate::pipeline::throttle::Throttle>> {
        let rate = self.max_rate?;
        ui.info(format!(
            "writing at most {}/s of documents (--max-rate)",
            crate::report::table::bytes(rate)
        ));
        Some(std::sync::Arc::new(
            crate::pipeline::throttle::Throttle::new(rate),
        ))
    }

    /// Everything default but what the caller sets: for commands that run a load
    /// themselves (the restore drill).
    pub fn unattended() -> LoadArgs {
        LoadArgs {
            ns_include: vec![],
            ns_exclude: vec![],
            ns_from: vec![],
            ns_to: vec![],
            drop: false,
            append: false,
            resume: false,
            no_indexes: false,
            dry_run: false,
            parallel: None,
            workers_per_collection: 2,
            max_rate: None,
            yes: true,
        }
    }
}

/// `--from` and `--to` of a two-sided command: each a config target name or a URI.
#[derive(Debug, Clone, Args)]
pub struct SidesArgs {
    /// The source: a target named in the config file, or a mongodb:// / mongodb+srv:// URI.
    // Required, but an Option so that a command may also have subcommands without them
    // (`migrate status`): clap then leaves it None instead of failing to build the struct.
    #[arg(long, value_name = "SRC", required = true)]
    pub from: Option<String>,
    /// The destination: a config target name or a URI.
    #[arg(long, value_name = "DST", required = true)]
    pub to: Option<String>,
    /// How long to wait for a reachable server, on each side.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
}

impl SidesArgs {
    /// `--to` as it may be shown (a URI's password masked), for commands we suggest.
    /// The target as an argument of a command we print: as given when it is a config name
    /// or a URI without a password, else with the password read from
    /// `$MONGOSHIFT_PASSWORD` (see `side_arg`), never masked.
    pub fn to_display(&self) -> String {
        arg_display(self.target_value())
    }

    /// `--from` as a printed command can take it (see `arg_display`).
    pub fn from_display(&self) -> String {
        arg_display(self.source_value())
    }

    fn source_value(&self) -> &str {
        self.from.as_deref().unwrap_or_default()
    }

    fn target_value(&self) -> &str {
        self.to.as_deref().unwrap_or_default()
    }

    pub fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            timeout: self.timeout,
        }
    }

    /// Resolve and connect both sides; a failure names the side (source or target).
    pub async fn connect(
        &self,
        config: &Config,
    ) -> Result<(
        ResolvedTarget,
        mongodb::Client,
        ResolvedTarget,
        mongodb::Client,
    )> {
        use anyhow::Context;
        let src = resolve_side(self.source_value(), config)
            .with_context(|| format!("the source (--from {})", redact::uri(self.source_value())))?;
        let dst = resolve_side(self.target_value(), config)
            .with_context(|| format!("the target (--to {})", redact::uri(self.target_value())))?;
        let opts = self.connect_options();
        let (s, d) = tokio::join!(
            crate::mongo::connect(&src, &opts),
            crate::mongo::connect(&dst, &opts)
        );
        let s = s.with_context(|| format!("the source (--from {})", src.label()))?;
        let d = d.with_context(|| format!("the target (--to {})", dst.label()))?;
        Ok((src, s, dst, d))
    }
}

/// A side given as a config target name or as a connection string.
pub fn resolve_side(value: &str, config: &Config) -> Result<ResolvedTarget> {
    if value.contains("://")
        || value.to_ascii_lowercase().starts_with("mongodb")
        || value.contains('@')
    {
        redact::register_uri(value);
        Ok(ResolvedTarget::from_uri(value))
    } else {
        let t = config.target(value)?;
        redact::register_uri(&t.uri);
        Ok(t)
    }
}

/// A cluster as an argument of a command we print for the user to run, so that it runs as
/// printed and shows no password: its config target name (or the name of the config target
/// with its hosts), else its URI when that holds no password, else the URI with the password
/// read from `$MONGOSHIFT_PASSWORD` (the caller says to set it). Quoted for a shell.
pub fn side_arg(t: &ResolvedTarget, config: &Config) -> String {
    if let Some(n) = t.name.clone().or_else(|| config.name_for(&t.uri, false)) {
        return n;
    }
    let shown = redact::uri(&t.uri);
    if shown == t.uri {
        return format!("'{}'", t.uri);
    }
    format!(
        "\"{}\"",
        shown.replacen(":****@", ":${MONGOSHIFT_PASSWORD}@", 1)
    )
}

/// A side as the user gave it (a config name or a URI), ready to paste into a printed
/// command: a URI quoted, its password never shown but read from $MONGOSHIFT_PASSWORD.
pub fn arg_display(v: &str) -> String {
    if redact::uri(v) == v {
        return if v.contains("://") {
            format!("'{v}'")
        } else {
            v.to_string()
        };
    }
    side_arg(&ResolvedTarget::from_uri(v), &Config::default())
}

/// A cluster in a summary: its config target name (given, or the config target with its
/// hosts), else its hosts.
pub fn side_label(t: &ResolvedTarget, config: &Config) -> String {
    match &t.name {
        Some(n) => n.clone(),
        None => config.name_for(&t.uri, false).unwrap_or_else(|| t.label()),
    }
}

/// Whether `side_arg` needs `$MONGOSHIFT_PASSWORD`: a sentence to print with the command.
pub fn side_arg_note(arg: &str) -> &'static str {
    if arg.contains("${MONGOSHIFT_PASSWORD}") {
        " (set MONGOSHIFT_PASSWORD to the password, percent-encoded, first; or name the cluster in mongoshift.yaml)"
    } else {
        ""
    }
}

/// Where backups live and how to reach S3; shared by backup, backups and restore.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// S3 endpoint URL for S3-compatible stores (default: storage.s3.endpoint, else AWS).
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// S3 region (default: storage.s3.region, else the AWS chain, else us-east-1).
    #[arg(long, value_name = "REGION")]
    pub s3_region: Option<String>,
    /// Path-style addressing (bucket in the path), needed by most S3-compatible stores.
    #[arg(long)]
    pub s3_path_style: bool,
}

impl StorageArgs {
    /// The location from `flag` (e.g. --to / --from) or `storage.backups`, and a store for it.
    pub async fn open(
        &self,
        flag_name: &str,
        flag: Option<&str>,
        config: &Config,
    ) -> Result<(crate::storage::Location, crate::storage::Store)> {
        let raw = match flag {
            Some(f) => f.to_string(),
            None => config.backups_location()?.ok_or_else(|| {
                usage(format!(
                    "no backup location: pass {flag_name} s3://BUCKET/PREFIX (or a folder), \
                     or set storage.backups in {}",
                    crate::config::DEFAULT_FILE
                ))
            })?,
        };
        let location = crate::storage::Location::parse(&raw)?;
        let store = crate::storage::Store::open(&location, &self.settings(config)?).await?;
        Ok((location, store))
    }

    /// Flags win over the config file's storage.s3 section.
    pub fn settings(&self, config: &Config) -> Result<crate::storage::S3Settings> {
        let s3 = config.s3()?;
        Ok(crate::storage::S3Settings {
            endpoint: self.s3_endpoint.clone().or(s3.endpoint),
            region: self.s3_region.clone().or(s3.region),
            path_style: self.s3_path_style || s3.path_style.unwrap_or(false),
        })
    }
}

/// Durations as people write them: 500ms, 10s, 5m, 12h, 30d.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        format!("'{s}' is not a duration ({e}); write e.g. 500ms, 10s, 5m, 12h or 30d")
    })
}

/// The context every command gets.
pub struct Ctx {
    pub ui: Ui,
    pub config: Config,
}

/// Parse arguments, run the command, print any error, and return the exit code.
pub fn main() -> i32 {
    // A detached tail gets its arguments through the environment (see migrate::detach).
    let cli = match crate::migration::detached_args() {
        Some(args) => Cli::parse_from(args),
        None => Cli::parse(),
    };
    let ui = Ui::new(cli.output, cli.verbose, cli.quiet, cli.no_progress);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::RUNTIME;
        }
    };
    let result = runtime.block_on(run(cli, ui.clone()));
    let code = match result {
        Ok(()) => exit::OK,
        Err(e) => {
            report_error(&e);
            exit::code_for(&e)
        }
    };
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // The process exits next: no runtime shutdown. Shutting it down cancels the driver's
    // connection pools under the endSessions task a dropped Client starts, which then
    // panics (SendError, mongodb's connection_requester.rs) and prints a backtrace after
    // a perfectly good run. Server sessions left open expire on the server by themselves.
    std::mem::forget(runtime);
    code
}

async fn run(cli: Cli, ui: Ui) -> Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    let ctx = Ctx { ui, config };
    match cli.command {
        Command::Status(args) => commands::status::run(&ctx, args).await,
        Command::Sample(args) => commands::sample::run(&ctx, args).await,
        Command::Backup(args) => commands::backup::run(&ctx, args).await,
        Command::Backups(args) => commands::backups::run(&ctx, args).await,
        Command::Restore(args) => commands::restore::run(&ctx, *args).await,
        Command::Indexes(args) => commands::indexes::run(&ctx, args).await,
        Command::Migrate(args) => commands::migrate::run(&ctx, *args).await,
        Command::Verify(args) => commands::verify::run(&ctx, *args).await,
        Command::Switch(args) => commands::switch::run(&ctx, *args).await,
        Command::Rollback(args) => commands::rollback::run(&ctx, *args).await,
        Command::Freeze(args) => commands::freeze::run(&ctx, args).await,
        Command::Analyze(args) => commands::analyze::run(&ctx, args).await,
        Command::Playbook(args) => commands::playbook::run(&ctx, args).await,
    }
}

/// One paragraph: the outermost context first, then each cause, scrubbed of secrets.
fn report_error(e: &anyhow::Error) {
    let mut text = crate::mongo::errors::chain_text(e);
    if let Some(hint) = crate::mongo::errors::unauthorized_hint(e)
        .or_else(|| crate::mongo::errors::write_blocked_hint(e))
    {
        text = format!("{text}. {hint}");
    }
    eprintln!("error: {}", redact::scrub(&text));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86400)
        );
        assert!(parse_duration("ten").is_err());
    }

    #[test]
    fn printed_sides_run_as_printed_and_show_no_password() {
        let cfg = Config::parse(
            "targets:\n  legacy: { uri: \"mongodb://admin:pw@h1:1,h2:2/?replicaSet=rs0\" }\n",
            std::path::Path::new("mongoshift.yaml"),
        )
        .unwrap();
        // A URI with a config target's hosts is named by it.
        let t = ResolvedTarget::from_uri("mongodb://app:secret@h1:1,h2:2/db");
        assert_eq!(side_arg(&t, &cfg), "legacy");
        assert_eq!(side_label(&t, &cfg), "legacy");
        // No config target: the password comes from the environment, never masked.
        let t = ResolvedTarget::from_uri("mongodb://root:s3cr%2Ft@h9:9/?tls=true&a=b");
        let a = side_arg(&t, &cfg);
        assert_eq!(
            a,
            "\"mongodb://root:${MONGOSHIFT_PASSWORD}@h9:9/?tls=true&a=b\""
        );
        assert!(!side_arg_note(&a).is_empty());
        let t = ResolvedTarget::from_uri("mongodb://h9:9/?replicaSet=x&a=b");
        assert_eq!(side_arg(&t, &cfg), "'mongodb://h9:9/?replicaSet=x&a=b'");
        assert!(side_arg_note("legacy").is_empty());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
