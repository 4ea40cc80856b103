//! Issue 20, "Done means": the adversarial data set (`scripts/fidelity_data.py`: every BSON
//! type incl. the deprecated ones, -0.0, NaN payloads, Decimal128 variants, invalid UTF-8,
//! odd binary subtypes, duplicate / empty / `$` / dotted field names, Timestamp(0, 0), a
//! ~16 MB document, 100-level nesting, a 100k-element array; capped, clustered, collated,
//! validated, time-series, views, GridFS, system.js, long and odd names) goes through every
//! path — `migrate`, `migrate --follow` with a writer making each change live, `backup` (each
//! compression, folder and S3) → `restore`, our backup → stock `mongorestore`, stock `mongodump`
//! (folder and `--archive --gzip`) → our `restore` — and arrives byte-identical
//! (tests/common/fidelity.rs says what that checks). One test per path, so each path's
//! failures are its own; a failing test lists every difference, naming collection and `_id`.
//!
//! The source data set (with the big documents) is made once per run of this file and shared
//! by the tests that only read it; the `--follow` tests make their own, without the big
//! documents (their writer makes an event over 16 MB instead).

mod common;

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use common::fidelity::{change, differences, generate};
use common::follow::Follow;
use common::{block_on, client, mongoshift, servers, tempdir};
use mongodb::bson::{doc, Document};

/// Prints the test's run time when it ends, passed or failed (the report's numbers).
struct Timer(&'static str, Instant);

impl Timer {
    fn start(name: &'static str) -> Timer {
        Timer(name, Instant::now())
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        println!("time {}: {:.1}s", self.0, self.1.elapsed().as_secs_f64());
    }
}

/// The shared source: the whole data set in one database of the `rs` server.
fn source() -> &'static str {
    static SRC: OnceLock<String> = OnceLock::new();
    SRC.get_or_init(|| {
        let db = common::unique_db("fsrc");
        let started = Instant::now();
        let report = generate(&servers().rs_uri, &db, true);
        println!(
            "data set {db} made in {:.1}s: {} documents of odd shapes, collections {}",
            started.elapsed().as_secs_f64(),
            report["documents"].as_array().unwrap().len(),
            report["collections"]
        );
        db
    })
}

/// A diagnostic knob, never set in CI: `MONGOSHIFT_FIDELITY_SKIP=coll1,coll2` leaves these
/// collections of the data set out of every command and comparison (said loudly), to see what
/// else a path changes while one case still stops it (e.g. the long name stops folder backups).
fn skipped() -> Vec<String> {
    let list: Vec<String> = std::env::var("MONGOSHIFT_FIDELITY_SKIP")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s == "LONG" {
                // The long name, spelled as the generator spells it.
                format!("long_{}_end", "名".repeat(65))
            } else {
                s.to_string()
            }
        })
        .collect();
    if !list.is_empty() {
        println!("MONGOSHIFT_FIDELITY_SKIP: leaving out {list:?}");
    }
    list
}

/// `--ns-exclude` for each skipped collection (our commands).
fn excludes(src: &str) -> Vec<String> {
    skipped()
        .iter()
        .flat_map(|c| ["--ns-exclude".to_string(), format!("{src}.{c}")])
        .collect()
}

fn rename(src: &str, dst: &str) -> Vec<String> {
    vec![
        "--ns-from".into(),
        format!("{src}.*"),
        "--ns-to".into(),
        format!("{dst}.*"),
    ]
}

/// Fail when the command failed (with its output), then check byte identity; both outcomes
/// are printed first, so one run shows what a path does to every case. `tolerated`: the
/// differences (by substring) a path cannot avoid, printed but not failed on.
#[track_caller]
fn judge_with(
    path: &str,
    run: &common::Run,
    (src_uri, src): (&str, &str),
    (dst_uri, dst): (&str, &str),
    tolerated: &[&str],
) {
    let skip = skipped();
    let skip: Vec<&str> = skip.iter().map(String::as_str).collect();
    let (ok, known): (Vec<String>, Vec<String>) = differences(src_uri, src, dst_uri, dst, &skip)
        .into_iter()
        .partition(|d| !tolerated.iter().any(|t| d.contains(t)));
    println!(
        "=== {path}: exit {}; {} differences\n{}\n--- tolerated ({}):\n{}",
        run.code,
        ok.len(),
        ok.join("\n"),
        known.len(),
        known.join("\n")
    );
    assert!(
        run.code == 0,
        "{path} exited {}:\nstdout:\n{}\nstderr:\n{}\n(and {} differences, printed above)",
        run.code,
        tail(&run.stdout, 40),
        tail(&run.stderr, 40),
        ok.len()
    );
    assert!(
        ok.is_empty(),
        "{path}: the target is not byte-identical to the source ({} differences):\n{}",
        ok.len(),
        ok.join("\n")
    );
}

#[track_caller]
fn judge(path: &str, run: &common::Run, src_uri: &str, src: &str, dst_uri: &str, dst: &str) {
    judge_with(path, run, (src_uri, src), (dst_uri, dst), &[]);
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// --- migrate ------------------------------------------------------------------------------

#[test]
fn migrate_is_byte_identical() {
    let _t = Timer::start("migrate_is_byte_identical");
    let src = source();
    let dst = common::unique_db("fmig");
    let mut args: Vec<String> = [
        "migrate",
        "--from",
        &servers().rs_uri,
        "--to",
        &servers().atlas_uri,
        "--db",
        src,
        "--yes",
        "-q",
        "--output",
        "json",
    ]
    .map(String::from)
    .to_vec();
    args.extend(rename(src, &dst));
    args.extend(excludes(src));
    let run = mongoshift(tempdir().path(), &args);
    judge(
        "migrate",
        &run,
        &servers().rs_uri,
        src,
        &servers().atlas_uri,
        &dst,
    );
}

// --- backup → restore -------------------------------------------------------------------

/// `backup --compress C` of the source to a folder or S3, then `restore` of that backup
/// into the standalone under a new name.
fn backup_then_restore(compress: &str, s3: bool) {
    let src = source();
    let dir = tempdir();
    let loc = if s3 {
        common::s3_location(&format!("fbk{compress}"))
    } else {
        dir.path().join("backups").display().to_string()
    };
    let mut args: Vec<String> = [
        "backup",
        "--uri",
        &servers().rs_uri,
        "--db",
        src,
        "--to",
        &loc,
        "--compress",
        compress,
        "--output",
        "json",
        "-q",
    ]
    .map(String::from)
    .to_vec();
    if s3 {
        args.extend(common::s3_flags());
    }
    args.extend(excludes(src));
    let path = format!(
        "backup --compress {compress} to {} → restore",
        if s3 { "S3" } else { "a folder" }
    );
    let b = common::Cli::new(dir.path()).s3_env().run(&args);
    assert!(
        b.code == 0,
        "{path}: backup exited {}:\n{}\n{}",
        b.code,
        tail(&b.stdout, 40),
        tail(&b.stderr, 40)
    );
    let id = b.json()["backup_id"].as_str().unwrap().to_string();
    let dst = common::unique_db(&format!("fbr{compress}"));
    let mut r: Vec<String> = [
        "restore",
        "--from",
        &format!("{loc}/{id}"),
        "--uri",
        &servers().standalone_uri,
        "--yes",
        "-q",
        "--output",
        "json",
    ]
    .map(String::from)
    .to_vec();
    r.extend(rename(src, &dst));
    if s3 {
        r.extend(common::s3_flags());
    }
    let run = common::Cli::new(dir.path()).s3_env().run(&r);
    judge(
        &path,
        &run,
        &servers().rs_uri,
        src,
        &servers().standalone_uri,
        &dst,
    );
}

#[test]
fn backup_zstd_folder_then_restore_is_byte_identical() {
    let _t = Timer::start("backup_zstd_folder_then_restore_is_byte_identical");
    backup_then_restore("zstd", false);
}

#[test]
fn backup_gzip_folder_then_restore_is_byte_identical() {
    let _t = Timer::start("backup_gzip_folder_then_restore_is_byte_identical");
    backup_then_restore("gzip", false);
}

#[test]
fn backup_none_folder_then_restore_is_byte_identical() {
    let _t = Timer::start("backup_none_folder_then_restore_is_byte_identical");
    backup_then_restore("none", false);
}

#[test]
fn backup_zstd_s3_then_restore_is_byte_identical() {
    let _t = Timer::start("backup_zstd_s3_then_restore_is_byte_identical");
    backup_then_restore("zstd", true);
}

#[test]
fn backup_gzip_s3_then_restore_is_byte_identical() {
    let _t = Timer::start("backup_gzip_s3_then_restore_is_byte_identical");
    backup_then_restore("gzip", true);
}

#[test]
fn backup_none_s3_then_restore_is_byte_identical() {
    let _t = Timer::start("backup_none_s3_then_restore_is_byte_identical");
    backup_then_restore("none", true);
}

// --- interoperability with the stock tools -----------------------------------------------

/// A stock tool's run as a `Run` (not a panic), so that its failure is reported with the
/// differences it left.
fn stock(name: &str, args: &[&str]) -> common::Run {
    let bin = common::stock_tool(name);
    let out = Command::new(&bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn our_backup_then_stock_mongorestore(compress: &str) {
    let src = source();
    let dir = tempdir();
    let to = dir.path().join("backups");
    let mut args: Vec<String> = [
        "backup",
        "--uri",
        &servers().rs_uri,
        "--db",
        src,
        "--to",
        to.to_str().unwrap(),
        "--compress",
        compress,
        "--output",
        "json",
        "-q",
    ]
    .map(String::from)
    .to_vec();
    args.extend(excludes(src));
    let b = mongoshift(dir.path(), &args);
    let path = format!("backup --compress {compress} → stock mongorestore");
    assert!(
        b.code == 0,
        "{path}: backup exited {}:\n{}",
        b.code,
        tail(&b.stderr, 40)
    );
    let folder = to.join(b.json()["backup_id"].as_str().unwrap());
    let dst = common::unique_db(&format!("fsr{compress}"));
    let (from, into) = (format!("{src}.*"), format!("{dst}.*"));
    let mut args = vec![
        "--uri",
        &servers().standalone_uri,
        "--dir",
        folder.to_str().unwrap(),
        "--nsFrom",
        &from,
        "--nsTo",
        &into,
        // A restore that keeps what the source holds (stored documents that break the
        // validator included), as our restore does.
        "--bypassDocumentValidation",
    ];
    if compress == "gzip" {
        args.push("--gzip");
    }
    let run = stock("mongorestore", &args);
    // mongorestore 100.8.0 inserts plainly, and mongod 6.0 replaces a top-level
    // Timestamp(0, 0) on insert (it has no bypassEmptyTsReplacement): that loss is the stock
    // tool's on this server, whatever the backup holds.
    judge_with(
        &path,
        &run,
        (&servers().rs_uri, src),
        (&servers().standalone_uri, &dst),
        &[
            "{_id: \"timestamp_zero_second\"}",
            "{_id: \"timestamp_zero_third\"}",
            "[docs] dbHash differs",
            // mongorestore 100.8.0 reads collection options and index specs into Go maps,
            // whose order is random: the fields arrive, their order does not.
            common::fidelity::ORDER_ONLY,
        ],
    );
}

#[test]
fn our_gzip_backup_restored_by_stock_mongorestore_is_byte_identical() {
    let _t = Timer::start("our_gzip_backup_restored_by_stock_mongorestore_is_byte_identical");
    our_backup_then_stock_mongorestore("gzip");
}

#[test]
fn our_uncompressed_backup_restored_by_stock_mongorestore_is_byte_identical() {
    let _t =
        Timer::start("our_uncompressed_backup_restored_by_stock_mongorestore_is_byte_identical");
    our_backup_then_stock_mongorestore("none");
}

/// Stock `mongodump` of the source (a folder, or `--archive --gzip`), then our `restore`.
fn stock_mongodump_then_restore(archive: bool) {
    let src = source();
    let dir = tempdir();
    let out = if archive {
        dir.path().join("dump.archive.gz")
    } else {
        dir.path().join("dump")
    };
    let path = if archive {
        "stock mongodump --archive --gzip → restore"
    } else {
        "stock mongodump (folder) → restore"
    };
    let target = if archive {
        format!("--archive={}", out.display())
    } else {
        format!("--out={}", out.display())
    };
    let skip: Vec<String> = skipped()
        .iter()
        .map(|c| format!("--excludeCollection={c}"))
        .collect();
    let mut args = vec!["--uri", &servers().rs_uri, "--db", src, &target];
    if archive {
        args.push("--gzip");
    }
    args.extend(skip.iter().map(String::as_str));
    let d = stock("mongodump", &args);
    assert!(
        d.code == 0,
        "{path}: stock mongodump exited {}:\n{}",
        d.code,
        tail(&d.stderr, 40)
    );
    let dst = common::unique_db(if archive { "fmda" } else { "fmdf" });
    let mut r: Vec<String> = [
        "restore",
        "--from",
        out.to_str().unwrap(),
        "--uri",
        &servers().standalone_uri,
        "--yes",
        "-q",
        "--output",
        "json",
    ]
    .map(String::from)
    .to_vec();
    r.extend(rename(src, &dst));
    let run = mongoshift(dir.path(), &r);
    // mongodump 100.8.0 writes collection options and view pipelines (folder metadata and
    // archive prelude alike) through Go maps, in an order that changes from run to run: the
    // fields are in the dump, their order is not, and cannot be restored.
    let tolerated = &[common::fidelity::ORDER_ONLY];
    judge_with(
        path,
        &run,
        (&servers().rs_uri, src),
        (&servers().standalone_uri, &dst),
        tolerated,
    );
}

#[test]
fn stock_mongodump_folder_restored_by_us_is_byte_identical() {
    let _t = Timer::start("stock_mongodump_folder_restored_by_us_is_byte_identical");
    stock_mongodump_then_restore(false);
}

#[test]
fn stock_mongodump_gzip_archive_restored_by_us_is_byte_identical() {
    let _t = Timer::start("stock_mongodump_gzip_archive_restored_by_us_is_byte_identical");
    stock_mongodump_then_restore(true);
}

/// The reference, not a product path: what the stock tools alone (mongodump → mongorestore
/// 100.8.0) carry of this set against this server. It asserts only that they ran and prints
/// what they change, so that a difference our paths share with them can be told apart.
#[test]
fn reference_stock_mongodump_then_stock_mongorestore() {
    let _t = Timer::start("reference_stock_mongodump_then_stock_mongorestore");
    let src = source();
    let dir = tempdir();
    let out = dir.path().join("dump");
    let d = stock(
        "mongodump",
        &[
            "--uri",
            &servers().rs_uri,
            "--db",
            src,
            &format!("--out={}", out.display()),
        ],
    );
    assert_eq!(d.code, 0, "stock mongodump: {}", d.stderr);
    let dst = common::unique_db("fref");
    let (from, into) = (format!("{src}.*"), format!("{dst}.*"));
    let r = stock(
        "mongorestore",
        &[
            "--uri",
            &servers().standalone_uri,
            "--dir",
            out.to_str().unwrap(),
            "--nsFrom",
            &from,
            "--nsTo",
            &into,
            "--bypassDocumentValidation",
        ],
    );
    let diffs = differences(&servers().rs_uri, src, &servers().standalone_uri, &dst, &[]);
    println!(
        "=== reference stock mongodump → stock mongorestore: exit {}; {} differences\n{}\n{}",
        r.code,
        diffs.len(),
        diffs.join("\n"),
        tail(&r.stderr, 20)
    );
}

// --- migrate --follow ----------------------------------------------------------------------

/// Follow `src` into a new database, run the writer's `stages` live, then check that the
/// tail survived, converged byte for byte, and (after stop + finalize) has the same options
/// and indexes. `skip`: collections the follow refuses by design (time-series).
fn follow_case(path: &str, src: &str, stages: &[&str], skip: &[&str]) {
    let dst = common::unique_db("ffol");
    let mut skip_all: Vec<String> = skip.iter().map(|s| s.to_string()).collect();
    skip_all.extend(skipped());
    let skip: Vec<&str> = skip_all.iter().map(String::as_str).collect();
    let skip = &skip[..];
    let excludes: Vec<String> = skip
        .iter()
        .filter(|c| !c.starts_with("system."))
        .flat_map(|c| ["--ns-exclude".to_string(), format!("{src}.{c}")])
        .collect();
    let excludes: Vec<&str> = excludes.iter().map(String::as_str).collect();
    let started = Instant::now();
    let dir = tempdir();
    let mut f = Follow::start(dir.path(), &[(src, &dst)], &excludes);
    let mut failures = Vec::new();
    if let Err(e) = f.following() {
        panic!("{path}: {e}");
    }
    println!(
        "{path}: following after {:.1}s",
        started.elapsed().as_secs_f64()
    );
    for stage in stages {
        println!("{path}: {}", change(&servers().rs_uri, src, stage).trim());
        if let Err(e) = f.caught_up() {
            failures.push(format!("after the live stage `{stage}`: {e}"));
            break;
        }
    }
    let data = differences(&servers().rs_uri, src, &servers().atlas_uri, &dst, skip);
    // Indexes and options are compared after finalize; here only what the tail wrote.
    let data: Vec<String> = data
        .into_iter()
        .filter(|d| !d.contains("] index "))
        .collect();
    if failures.is_empty() {
        // Stop, then finalize (which puts back the unique and TTL indexes the tail relaxes),
        // so that options and indexes can be compared too.
        if let Err(e) = f.try_stop().and_then(|_| f.try_finalize()) {
            failures.push(e);
        }
    }
    let all = differences(&servers().rs_uri, src, &servers().atlas_uri, &dst, skip);
    println!(
        "=== {path}: {:.1}s; failures: {failures:?}\n--- while following, {} data differences:\n{}\n--- after stop + finalize, {} differences:\n{}",
        started.elapsed().as_secs_f64(),
        data.len(),
        data.join("\n"),
        all.len(),
        all.join("\n")
    );
    assert!(failures.is_empty(), "{path}: {}", failures.join("\n"));
    assert!(
        all.is_empty(),
        "{path}: the target is not byte-identical to the source ({} differences):\n{}",
        all.len(),
        all.join("\n")
    );
}

/// The whole data set (without the big documents) followed while every kind of odd document
/// is inserted, updated, replaced and deleted live, a capped collection wraps under an insert
/// stream, and GridFS, system.js, clustered, collated and odd-named collections change.
/// Time-series collections are refused by `--follow` by design (6.0's change streams do not
/// report them), so they are excluded here and left to the other paths.
#[test]
fn follow_applies_every_odd_change_byte_identical() {
    let _t = Timer::start("follow_applies_every_odd_change_byte_identical");
    let src = common::unique_db("ffsrc");
    generate(&servers().rs_uri, &src, false);
    follow_case(
        "migrate --follow (crud)",
        &src,
        &["crud"],
        &["ticks", "system.buckets.ticks"],
    );
}

/// A source with one plain collection, for the events that killed the tail.
fn small_source(purpose: &str) -> String {
    let src = common::unique_db(purpose);
    block_on(async {
        client(&servers().rs_uri)
            .await
            .database(&src)
            .collection::<Document>("live")
            .insert_one(doc! { "_id": "seed" })
            .await
            .unwrap();
    });
    src
}

#[test]
fn follow_survives_invalid_utf8() {
    let _t = Timer::start("follow_survives_invalid_utf8");
    let src = small_source("ffutf");
    follow_case(
        "migrate --follow (invalid UTF-8)",
        &src,
        &["invalid_utf8"],
        &[],
    );
}

#[test]
fn follow_survives_binary_subtype2_with_a_wrong_inner_length() {
    let _t = Timer::start("follow_survives_binary_subtype2_with_a_wrong_inner_length");
    let src = small_source("ffbin");
    follow_case(
        "migrate --follow (binary subtype 2, wrong inner length)",
        &src,
        &["binary_subtype2"],
        &[],
    );
}

#[test]
fn follow_survives_an_event_over_16mb() {
    let _t = Timer::start("follow_survives_an_event_over_16mb");
    let src = small_source("ffbig");
    follow_case(
        "migrate --follow (a $set making an event over 16 MB)",
        &src,
        &["event_over_16mb"],
        &[],
    );
}
