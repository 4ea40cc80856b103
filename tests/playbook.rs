//! `playbook plan|run|status` against the real servers: the shipped
//! `playbooks/atlas-phase1.yaml` from the auth-enabled legacy replica set to the auth + TLS
//! `atlas` server with backups on Garage, the application with its own user on each; killed in its migrate step and resumed; dry-run writing
//! nothing; a failing step running on_failure; malformed playbooks refused with
//! file:line:column before anything runs.
//!
//! The cutover blocks writes server-wide and acts on any tail following into `atlas`, so
//! these tests hold `SERIAL`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{assert_no_secret, block_on, client, hashes, mongoshift, servers, tempdir, Cli};
use mongodb::bson::doc;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The legacy side: the auth-enabled replica set, as the tool's admin (it may write through
/// the cutover's freeze for the reverse sync).
fn legacy_uri() -> String {
    common::legacy_auth().admin_uri
}

/// `uri` with the user part `user:pw` and the database path `db`.
fn app_uri_on(uri: &str, user: &str, pw: &str, db: &str) -> String {
    let (scheme, rest) = uri.split_once("://").unwrap();
    let rest = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    let (hosts, tail) = rest.split_once('/').unwrap();
    let query = tail.split_once('?').map(|(_, q)| q).unwrap_or("");
    format!("{scheme}://{user}:{pw}@{hosts}/{db}?{query}&retryWrites=true&w=majority")
}

/// The application's own user on `uri`'s server: readWrite on `db` only.
fn app_user(uri: &str, user: &str, pw: &str, db: &str) {
    block_on(async {
        let admin = client(uri).await.database("admin");
        let _ = admin.run_command(doc! { "dropUser": user }).await;
        admin
            .run_command(doc! { "createUser": user, "pwd": pw, "roles": [ { "role": "readWrite", "db": db } ] })
            .await
            .unwrap();
    });
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn phase1() -> String {
    repo()
        .join("playbooks/atlas-phase1.yaml")
        .display()
        .to_string()
}

/// A working folder as a user has it: mongoshift.yaml naming `legacy` and `atlas` (the
/// tool's URIs and the application's `app_uri` through ${VARS}), storage.backups on Garage,
/// the application's .env pointing at legacy with its own user, index specs for the
/// database; the database loaded with the predixi sample on legacy.
struct Setup {
    dir: tempfile::TempDir,
    db: String,
    backups: String,
    atlas_app: String,
}

impl Setup {
    fn new(purpose: &str, extra_docs: i64) -> Setup {
        let dir = tempdir();
        let db = common::unique_db(purpose);
        let backups = common::s3_location(purpose);
        let s = servers();
        // The application's user on each side, named after the database (the users are global).
        let user = format!("app_{}", &db[2..]);
        app_user(&legacy_uri(), &user, "app-pw-1", &db);
        app_user(&s.atlas_uri, &user, "app-pw-2", &db);
        let legacy_app = app_uri_on(&legacy_uri(), &user, "app-pw-1", &db);
        let atlas_app = app_uri_on(&s.atlas_uri, &user, "app-pw-2", &db);
        std::fs::write(
            dir.path().join("mongoshift.yaml"),
            format!(
                "targets:\n  legacy: {{ uri: \"${{LEGACY_URI}}\" }}\n  atlas: {{ uri: \"${{ATLAS_URI}}\", app_uri: \"${{ATLAS_APP_URI}}\" }}\nstorage:\n  backups: \"{backups}\"\n  s3: {{ endpoint: \"{}\", region: {}, path_style: true }}\n",
                s.s3_endpoint, s.s3_region
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join(".env"),
            format!("# the app\nMONGO_URI=\"{legacy_app}\"\n"),
        )
        .unwrap();
        let spec = std::fs::read_to_string(repo().join("index-specs/predixi.yaml"))
            .unwrap()
            .replace("database: predixi", &format!("database: {db}"));
        std::fs::write(dir.path().join("spec.yaml"), spec).unwrap();
        let setup = Setup {
            dir,
            db,
            backups,
            atlas_app,
        };
        setup
            .cli()
            .run([
                "sample", "--target", "legacy", "--db", &setup.db, "--scale", "0.2", "-q",
            ])
            .assert_code(0);
        if extra_docs > 0 {
            // One bigger collection, so that the copy takes long enough to be killed.
            common::numbered(
                &legacy_uri(),
                &setup.db,
                "events",
                100,
                extra_docs / 100,
                "a payload of a typical size, repeated to make the copy take a moment",
            );
        }
        setup
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn cli(&self) -> Cli {
        Cli::new(self.path())
            .s3_env()
            .env("LEGACY_URI", &legacy_uri())
            .env("ATLAS_URI", &servers().atlas_uri)
            .env("ATLAS_APP_URI", &self.atlas_app)
    }

    /// `playbook run` of the shipped phase 1 on this database.
    fn run_phase1(&self, extra: &[&str]) -> common::Run {
        let mut args = vec![
            "playbook".to_string(),
            "run".into(),
            phase1(),
            "--var".into(),
            format!("db={}", self.db),
            "--var".into(),
            "specs=spec.yaml".into(),
            "--no-progress".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        self.cli().run(args)
    }

    fn records(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.path().join(".mongoshift/runs"))
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }
}

impl Drop for Setup {
    /// Stop any tail of this database, unfreeze, drop it on both sides.
    fn drop(&mut self) {
        let s = servers();
        for (to, from) in [("legacy", "atlas"), ("atlas", "legacy")] {
            let _ = self.cli().run([
                "migrate", "stop", "--to", to, "--from", from, "--db", &self.db, "-q",
            ]);
        }
        block_on(async {
            for uri in [&legacy_uri(), &s.atlas_uri] {
                let c = client(uri).await;
                let _ = c
                    .database("admin")
                    .run_command(doc! { "setUserWriteBlockMode": 1, "global": false })
                    .await;
                let _ = c.database(&self.db).drop().await;
            }
        });
    }
}

fn db_names(uri: &str) -> Vec<String> {
    block_on(async {
        let mut v = client(uri).await.list_database_names().await.unwrap();
        v.sort();
        v
    })
}

fn bucket_listing(location: &str) -> Vec<String> {
    block_on(async {
        let store = common::store(location).await;
        let mut keys: Vec<String> = store
            .list("")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        keys.sort();
        keys
    })
}

#[test]
fn the_shipped_phase1_runs_end_to_end_and_records_every_step() {
    let _g = serial();
    let s = Setup::new("pbfull", 0);
    let r = s.run_phase1(&["--yes", "--output", "json"]);
    r.assert_code(0);
    let rec = r.json();
    assert_eq!(rec["state"], "succeeded", "{rec}");
    let steps = rec["steps"].as_array().unwrap();
    let ids: Vec<&str> = steps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "health",
            "health-target",
            "backup",
            "drill",
            "indexes",
            "copy",
            "caught-up",
            "queries",
            "go",
            "cutover",
            "after",
            "indexes-target"
        ]
    );
    for st in steps {
        assert_eq!(st["state"], "succeeded", "{st}");
        assert_eq!(st["exit_code"], 0, "{st}");
        assert!(st["output"].is_object(), "{st}");
        assert!(st["seconds"].as_f64().is_some(), "{st}");
    }
    // Each step's JSON result, and references between them.
    let by = |id: &str| steps.iter().find(|s| s["id"] == id).unwrap();
    let backup_id = by("backup")["output"]["backup_id"].as_str().unwrap();
    assert!(by("drill")["command"]
        .as_str()
        .unwrap()
        .ends_with(backup_id));
    assert_eq!(by("drill")["output"]["restore_test"]["ok"], true);
    assert_eq!(by("after")["output"]["identical"], true, "{}", by("after"));
    assert_eq!(by("cutover")["output"]["ok"], true);
    // The application now reads atlas.
    // (The file holds atlas's password: never printed here.)
    let env = std::fs::read_to_string(s.path().join(".env")).unwrap();
    let atlas_hosts = servers()
        .atlas_uri
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_string();
    assert!(
        env.contains(&format!("@{atlas_hosts}/")),
        ".env does not point to atlas ({atlas_hosts})"
    );
    assert!(env.starts_with("# the app\n"));
    // The backup is in storage.backups.
    assert!(bucket_listing(&s.backups)
        .iter()
        .any(|k| k.starts_with(backup_id)));
    // The record on disk is the one printed, private, and holds no secret.
    let files = s.records();
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let on_disk: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(on_disk["run_id"], rec["run_id"]);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_no_secret(&text, "the run record");
    assert_no_secret(&r.all(), "the playbook's output");
    // Nothing lost: both sides hold the same data (the reverse sync keeps legacy in step).
    assert_eq!(
        hashes(&legacy_uri(), &s.db),
        hashes(&servers().atlas_uri, &s.db)
    );
    // `playbook status` shows the run.
    let st = s
        .cli()
        .run(["playbook", "status", &phase1(), "--output", "json"]);
    st.assert_code(0);
    assert_eq!(st.json()["runs"][0]["state"], "succeeded");
    // The run finished: --resume has nothing to do.
    let again = s.run_phase1(&["--resume", "--yes"]);
    again.assert_code(2);
    assert!(
        again.stderr.contains("nothing to resume"),
        "{}",
        again.stderr
    );
}

#[test]
fn killed_in_the_migrate_step_it_resumes_there_and_finishes() {
    let _g = serial();
    let s = Setup::new("pbkill", 1_200_000);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mongoshift"));
    cmd.current_dir(s.path())
        .args([
            "playbook",
            "run",
            &phase1(),
            "--var",
            &format!("db={}", s.db),
            "--var",
            "specs=spec.yaml",
            "--yes",
            "--no-progress",
        ])
        .env("LEGACY_URI", legacy_uri())
        .env("ATLAS_URI", &servers().atlas_uri)
        .env("ATLAS_APP_URI", &s.atlas_app)
        .env("AWS_ACCESS_KEY_ID", &servers().s3_access_key)
        .env("AWS_SECRET_ACCESS_KEY", &servers().s3_secret_key)
        .env("AWS_REGION", &servers().s3_region)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(s.path().join("first.log")).unwrap());
    let mut child = cmd.spawn().unwrap();
    // Wait until the copy is under way: one collection copied, the big one not yet.
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the copy never got under way: {}",
            std::fs::read_to_string(s.path().join("first.log")).unwrap()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the playbook ended before the kill: {}",
            std::fs::read_to_string(s.path().join("first.log")).unwrap_or_default()
        );
        let st = s.cli().run([
            "migrate", "status", "--to", "atlas", "--from", "legacy", "--db", &s.db, "--output",
            "json",
        ]);
        if st.code == 0 {
            let j = st.json();
            let copy = j["runs"][0]["copy"].as_array().cloned().unwrap_or_default();
            let done = copy
                .iter()
                .filter(|p| p["total"].as_u64() > Some(0) && p["copied"] == p["total"])
                .count();
            let events = copy
                .iter()
                .find(|p| p["ns"].as_str().unwrap_or("").ends_with(".events"));
            if done >= 1
                && events.is_some_and(|e| {
                    e["copied"].as_u64().unwrap_or(0) < e["total"].as_u64().unwrap_or(0)
                })
            {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    let first = std::fs::read_to_string(s.path().join("first.log")).unwrap();
    // The record says where it stopped: copy was running.
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&s.records()[0]).unwrap()).unwrap();
    let copy = rec["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["id"] == "copy")
        .unwrap()
        .clone();
    assert_eq!(copy["state"], "running", "{first}");
    let st = s
        .cli()
        .run(["playbook", "status", &phase1(), "--output", "json"]);
    assert_eq!(st.json()["runs"][0]["state"], "interrupted");
    // The migrate died with the playbook (SIGTERM from PR_SET_PDEATHSIG) at a checkpoint.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let j = s
            .cli()
            .run([
                "migrate", "status", "--to", "atlas", "--from", "legacy", "--db", &s.db,
                "--output", "json",
            ])
            .json();
        if j["runs"][0]["alive"] == false {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the migrate outlived the playbook: {j}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = s.run_phase1(&["--resume", "--yes", "--output", "json"]);
    r.assert_code(0);
    assert!(r.stderr.contains("resuming run"), "{}", r.stderr);
    // Steps before the copy were not run again; the copy ran with --resume and skipped
    // what the first attempt had finished.
    assert!(!r.stderr.contains("▶ [1/"), "{}", r.stderr);
    assert!(r.stderr.contains("--resume"), "{}", r.stderr);
    assert!(r.stderr.contains("skip (done)"), "{}", r.stderr);
    let rec = r.json();
    let steps = rec["steps"].as_array().unwrap();
    let copy = steps.iter().find(|st| st["id"] == "copy").unwrap();
    assert_eq!(copy["attempts"], 2);
    let health = steps.iter().find(|st| st["id"] == "health").unwrap();
    assert_eq!(health["attempts"], 1);
    assert!(steps.iter().all(|st| st["state"] == "succeeded"), "{rec}");
    assert_eq!(
        steps.iter().find(|st| st["id"] == "after").unwrap()["output"]["identical"],
        true
    );
    assert_eq!(s.records().len(), 1, "the resumed run keeps its record");
    assert_eq!(
        hashes(&legacy_uri(), &s.db),
        hashes(&servers().atlas_uri, &s.db)
    );
}

#[test]
fn a_dry_run_of_the_whole_playbook_writes_nothing() {
    let _g = serial();
    let s = Setup::new("pbdry", 0);
    let env_before = std::fs::read(s.path().join(".env")).unwrap();
    let legacy_before = hashes(&legacy_uri(), &s.db);
    let dbs_before = (db_names(&legacy_uri()), db_names(&servers().atlas_uri));
    let bucket_before = bucket_listing(&s.backups);
    let r = s.run_phase1(&["--dry-run", "--yes"]);
    r.assert_code(0);
    assert!(
        r.stdout.contains("nothing was written (dry run)"),
        "{}",
        r.stdout
    );
    // Each step in its own dry-run mode, or skipped with the reason.
    assert!(
        r.stderr.contains("migrate --from=legacy --to=atlas"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--dry-run"), "{}", r.stderr);
    assert!(r.stderr.contains("backup skipped"), "{}", r.stderr);
    assert!(r.stderr.contains("indexes plan"), "{}", r.stderr);
    assert!(r.stderr.contains("would ask: Cut"), "{}", r.stderr);
    assert_eq!(std::fs::read(s.path().join(".env")).unwrap(), env_before);
    assert_eq!(hashes(&legacy_uri(), &s.db), legacy_before);
    assert_eq!(
        (db_names(&legacy_uri()), db_names(&servers().atlas_uri)),
        dbs_before
    );
    assert_eq!(bucket_listing(&s.backups), bucket_before);
    assert!(
        !s.path().join(".mongoshift").exists(),
        "a dry run writes no record"
    );
}

/// #27.1: with the database already on the target, the copy's rehearsal is refused. No
/// earlier step writes what the copy reads (the backup writes storage, the index step the
/// source's indexes), so the dry run fails naming the copy, as the real run would; the
/// later checks of the target are discounted (the copy would write what they read).
#[test]
fn a_dry_run_fails_at_the_step_the_real_run_would_stop_at() {
    let _g = serial();
    let s = Setup::new("pbdryfail", 0);
    s.cli()
        .run([
            "migrate", "--from", "legacy", "--to", "atlas", "--db", &s.db, "--yes", "-q",
        ])
        .assert_code(0);
    let r = s.run_phase1(&["--dry-run", "--yes"]);
    let _ = s.cli().run([
        "migrate", "finalize", "--from", "legacy", "--to", "atlas", "--db", &s.db, "-q",
    ]);
    assert_ne!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("the dry run found failures (first: step copy)"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("(dry run): failed in"), "{}", r.stdout);
    // The checks after the copy are discounted: the copy would write what they read.
    assert!(r.stderr.contains("(not counted:"), "{}", r.stderr);
}

#[test]
fn a_failing_step_runs_on_failure_and_exits_with_its_code() {
    let _g = serial();
    let s = Setup::new("pbfail", 0);
    // A budget the unindexed sample cannot meet.
    std::fs::write(
        s.path().join("queries.yaml"),
        format!("database: {}\nqueries:\n  - name: market listing\n    collection: markets\n    filter: {{ status: open }}\n    sort: {{ created_at: -1 }}\n    must_use_index: true\n", s.db),
    )
    .unwrap();
    std::fs::write(
        s.path().join("check.yaml"),
        "name: check-then-cut\nsteps:\n  - id: health\n    status: { target: legacy }\n  - id: queries\n    analyze_check: { queries: queries.yaml, target: legacy }\n  - id: never\n    exec: touch never-ran\non_failure:\n  - id: page\n    exec: \"echo $MONGOSHIFT_STEP after $MONGOSHIFT_FAILED_STEP failed > on-failure-ran\"\n  - id: undo\n    only_after: never\n    rollback: {}\n",
    )
    .unwrap();
    let r = s
        .cli()
        .run(["playbook", "run", "check.yaml", "--yes", "--output", "json"]);
    r.assert_code(3);
    assert!(r.stderr.contains("market listing"), "{}", r.stderr);
    assert!(
        r.stderr.contains("stopped at step queries (exit 3)"),
        "{}",
        r.stderr
    );
    assert!(!s.path().join("never-ran").exists());
    assert_eq!(
        std::fs::read_to_string(s.path().join("on-failure-ran")).unwrap(),
        "page after queries failed\n"
    );
    let rec = r.json();
    assert_eq!(rec["state"], "failed");
    assert_eq!(rec["failed_step"], "queries");
    assert_eq!(rec["exit_code"], 3);
    assert_eq!(rec["steps"][2]["state"], "pending");
    assert_eq!(rec["on_failure"][0]["state"], "succeeded");
    assert_eq!(rec["on_failure"][1]["state"], "skipped");
    // Fixed, --resume runs the failed step again and goes on.
    std::fs::write(
        s.path().join("queries.yaml"),
        format!("database: {}\nqueries:\n  - name: market listing\n    collection: markets\n    filter: {{ status: open }}\n", s.db),
    )
    .unwrap();
    let r = s.cli().run([
        "playbook",
        "run",
        "check.yaml",
        "--resume",
        "--yes",
        "--output",
        "json",
    ]);
    r.assert_code(0);
    let rec = r.json();
    assert_eq!(rec["steps"][0]["attempts"], 1);
    assert_eq!(rec["steps"][1]["attempts"], 2);
    assert!(s.path().join("never-ran").exists());
    // A gate without a terminal and without --yes refuses (exit 2) and stops the run.
    std::fs::write(
        s.path().join("gate.yaml"),
        "name: gate\nsteps:\n  - id: go\n    confirm: Go?\n  - id: after\n    exec: touch after-gate\n",
    )
    .unwrap();
    let r = s.cli().run(["playbook", "run", "gate.yaml"]);
    r.assert_code(2);
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    assert!(!s.path().join("after-gate").exists());
}

#[test]
fn malformed_playbooks_give_file_line_column_and_run_nothing() {
    let dir = tempdir();
    let cases: &[(&str, &str)] = &[
        ("steps:\n  - id: a\n    exec: touch ran\n  - id: b\n    bakup: { target: legacy }\n", "bad.yaml:5:5: unknown step kind `bakup`"),
        ("name: p\nsteps:\n  - id: a\n    exec: touch ran\n  - id: b\n    backup: { target: legacy, tga: x }\n", "bad.yaml:6:31: `backup` has no option `tga`"),
        ("name: p\nsteps:\n  - id: a\n    exec: touch ran\n  - id: b\n    status: { target: \"${steps.c.ok}\" }\n  - id: c\n    status: { target: legacy }\n", "bad.yaml:6:23: ${steps.c.ok} refers to step `c`, which runs after `b`"),
        ("name: p\nvars: { a: \"${b}\", b: \"${a}\" }\nsteps:\n  - id: a\n    exec: touch ran\n", "bad.yaml:2:12: vars refer to each other in a cycle"),
        ("name: p\nsteps:\n  - id: a\n    exec: touch ran\n  - id: b\n    status: { target: \"${nope}\" }\n", "bad.yaml:6:23: unknown var `nope`"),
        ("name: p\nsteps:\n  - id: a\n    exec: touch ran\n  - id: b\n    migrate: { from: legacy }\n", "bad.yaml:6:5: step `b`: the following required arguments were not provided: --to"),
        ("name: p\nsteps:\n  - id: a\n    exec: touch ran\n  - [unclosed\n", "bad.yaml:"),
    ];
    for (text, want) in cases {
        std::fs::write(dir.path().join("bad.yaml"), text).unwrap();
        for args in [&["plan"][..], &["run", "--yes"]] {
            let cmd = args[0];
            let r = mongoshift(
                dir.path(),
                ["playbook"].iter().chain(args).chain(&["bad.yaml"]),
            );
            r.assert_code(2);
            assert!(
                r.stderr.contains(want),
                "{cmd} of:\n{text}\nwant {want}, got:\n{}",
                r.stderr
            );
            assert!(!dir.path().join("ran").exists(), "a step ran:\n{text}");
            assert!(!dir.path().join(".mongoshift").exists());
        }
    }
    // plan shows each step with vars filled in and passwords masked.
    let (encoded, _) = common::atlas_password();
    let r = mongoshift(
        dir.path(),
        [
            "playbook",
            "plan",
            &phase1(),
            "--var",
            &format!("target={}", servers().atlas_uri),
            "--output",
            "json",
        ],
    );
    r.assert_code(0);
    let j = r.json();
    let cut = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "cutover")
        .unwrap();
    assert!(
        cut["run"]
            .as_str()
            .unwrap()
            .contains("--to='mongodb://root:****@"),
        "{cut}"
    );
    assert!(!r.all().contains(&encoded));
    assert_no_secret(&r.all(), "playbook plan");
}

/// A file with many mistakes is fixed in one round: `plan` (and `run`, which runs nothing)
/// reports every one, including referenced files that do not exist, which would otherwise
/// be found only when their step runs, after the backup and the copy (issue #27).
#[test]
fn every_mistake_and_missing_file_is_reported_in_one_round() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("present.yaml"),
        "database: x\ncollections: {}\n",
    )
    .unwrap();
    let text = "name: p
stepz: []
steps:
  - id: a
    bakup: { target: legacy }
  - id: b
    backup: { target: legacy, tga: x, oplog: maybe }
  - id: c
    status: { target: \"${nope}\" }
  - id: d
    indexes_apply: { specs: [present.yaml, missing-specs.yaml], target: legacy }
  - id: e
    analyze_check: { queries: no-such-queries.yaml, target: legacy }
  - id: f
    migrate: { from: legacy }
  - id: g
    status: { target: \"${steps.a.ok}\" }
  - id: h
    indexes_export: { target: legacy, db: x, out: written-earlier.yaml }
  - id: i
    indexes_check: { specs: written-earlier.yaml, target: legacy }
";
    std::fs::write(dir.path().join("many.yaml"), text).unwrap();
    let want = [
        "many.yaml:2:1: unknown key `stepz`",
        "many.yaml:5:5: unknown step kind `bakup`",
        "many.yaml:7:31: `backup` has no option `tga`",
        "many.yaml:7:46: `oplog` is a switch",
        "many.yaml:9:23: unknown var `nope`",
        "many.yaml:11:44: step `d`: missing-specs.yaml does not exist",
        "many.yaml:13:31: step `e`: no-such-queries.yaml does not exist",
        "many.yaml:15:5: step `f`:",
    ];
    for args in [&["plan"][..], &["run", "--yes"]] {
        let r = mongoshift(
            dir.path(),
            ["playbook"].iter().chain(args).chain(&["many.yaml"]),
        );
        r.assert_code(2);
        for w in want {
            assert!(
                r.stderr.contains(w),
                "{args:?}: want {w}, got:\n{}",
                r.stderr
            );
        }
        // A reference to the step that could not be read is not a second mistake; a file an
        // earlier step writes is not missing; a file that exists is not reported.
        assert!(!r.stderr.contains("steps.a.ok"), "{}", r.stderr);
        assert!(!r.stderr.contains("written-earlier.yaml"), "{}", r.stderr);
        assert!(!r.stderr.contains("present.yaml"), "{}", r.stderr);
        assert!(!dir.path().join(".mongoshift").exists());
    }
}

#[test]
fn values_of_secret_names_never_appear_in_output_or_record() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("s.yaml"),
        "name: s\nvars: { api_token: \"${env.DEPLOY_API_TOKEN}\" }\nsteps:\n  - id: hook\n    exec: \"echo calling with ${api_token} and ${env.DB_PASSWORD}\"\n",
    )
    .unwrap();
    let (token, pw) = ("tok-7f3a9c2e5b", "pw-Secr3t-99");
    let run = |args: &[&str]| {
        Cli::new(dir.path())
            .env("DEPLOY_API_TOKEN", token)
            .env("DB_PASSWORD", pw)
            .run(["playbook"].iter().chain(args))
    };
    let plan = run(&["plan", "s.yaml"]);
    plan.assert_code(0);
    let r = run(&["run", "s.yaml", "--output", "json"]);
    r.assert_code(0);
    assert!(r.stderr.contains("calling with ****"), "{}", r.stderr);
    let rec = std::fs::read_to_string(
        std::fs::read_dir(dir.path().join(".mongoshift/runs"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap();
    for text in [plan.all(), r.all(), rec] {
        assert!(!text.contains(token) && !text.contains(pw), "{text}");
    }
}

#[test]
fn the_shipped_nightly_backup_backs_up_drills_and_prunes() {
    let _g = serial();
    let s = Setup::new("pbnight", 0);
    let night = repo().join("playbooks/nightly-backup.yaml");
    let run = || {
        s.cli().run([
            "playbook",
            "run",
            night.to_str().unwrap(),
            "--var",
            &format!("db={}", s.db),
            "--var",
            "keep=1",
            "--yes",
            "--no-progress",
            "--output",
            "json",
        ])
    };
    let first = run();
    first.assert_code(0);
    let second = run();
    second.assert_code(0);
    let rec = second.json();
    let out = |id: &str| {
        rec["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|st| st["id"] == id)
            .unwrap()["output"]
            .clone()
    };
    let kept = out("backup")["backup_id"].as_str().unwrap().to_string();
    assert_eq!(out("verify")["restore_test"]["ok"], true);
    assert_eq!(out("verify")["backup_id"], kept.as_str());
    let deleted = out("prune")["deleted"].to_string();
    let first_id = first.json()["steps"][1]["output"]["backup_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(deleted.contains(&first_id), "{deleted}");
    // Only the newest backup is left in storage.backups.
    let ids: std::collections::BTreeSet<String> = bucket_listing(&s.backups)
        .iter()
        .filter_map(|k| k.split('/').next().map(String::from))
        .filter(|k| !k.is_empty() && k != "latest")
        .collect();
    assert_eq!(ids.into_iter().collect::<Vec<_>>(), vec![kept]);
    // The drill's scratch database is gone.
    assert!(!db_names(&legacy_uri())
        .iter()
        .any(|d| d.starts_with("mongoshift_restore_test_")));
}
