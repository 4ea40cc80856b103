//! `switch`, `rollback` and `freeze` against the real servers: the legacy replica set (OLD)
//! and the `atlas` server (NEW, auth + TLS). Env files in the shapes users write keep every
//! other byte and read back exactly with python-dotenv; a writer that re-reads the env file
//! before every write loses nothing through migrate --follow → switch --freeze-writes
//! --reverse-sync → writes on NEW → rollback; every failure leaves files byte-identical and
//! OLD writable.
//!
//! Blocking user writes is global to a server, and a switch acts on any tail following
//! into NEW, so these tests hold `SERIAL` (other test binaries never run at the same time
//! as this one).

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use common::{assert_no_secret, block_on, client, hashes, mongoshift, servers, tempdir};
use mongodb::bson::{doc, Document};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Unfreezes both servers when a test ends, passing or not.
struct Thaw;
impl Drop for Thaw {
    fn drop(&mut self) {
        block_on(async {
            for uri in [&servers().rs_uri, &servers().atlas_uri] {
                let _ = client(uri)
                    .await
                    .database("admin")
                    .run_command(doc! { "setUserWriteBlockMode": 1, "global": false })
                    .await;
            }
        });
    }
}

fn blocked(uri: &str) -> bool {
    block_on(async {
        client(uri)
            .await
            .database("config")
            .collection::<Document>("user_writes_critical_sections")
            .find_one(doc! {})
            .await
            .unwrap()
            .is_some_and(|d| d.get_bool("blockUserWrites").unwrap_or(false))
    })
}

/// A small database on OLD, and (when `on_new`) the same on NEW.
fn small_db(purpose: &str, docs: i32, on_new: bool) -> String {
    let db = common::unique_db(purpose);
    block_on(async {
        let mut uris = vec![servers().rs_uri.clone()];
        if on_new {
            uris.push(servers().atlas_uri.clone());
        }
        for uri in uris {
            client(&uri)
                .await
                .database(&db)
                .collection::<Document>("orders")
                .insert_many((0..docs).map(|i| doc! { "_id": i, "n": i }))
                .await
                .unwrap();
        }
    });
    db
}

/// NEW's URI as an application would hold it: its own user whose password needs
/// percent-encoding, `&`-separated options, retryWrites and w=majority.
fn app_uri() -> String {
    let pw = "p@ss&w%rd/1";
    block_on(async {
        let admin = client(&servers().atlas_uri).await.database("admin");
        let _ = admin.run_command(doc! { "dropUser": "swapp" }).await;
        admin
            .run_command(doc! { "createUser": "swapp", "pwd": pw, "roles": [ { "role": "readWriteAnyDatabase", "db": "admin" } ] })
            .await
            .unwrap();
    });
    let (encoded, _) = common::atlas_password();
    servers()
        .atlas_uri
        .replace(&format!("root:{encoded}@"), "swapp:p%40ss%26w%25rd%2F1@")
        + "&retryWrites=true&w=majority"
}

fn dotenv_values(paths: &[PathBuf]) -> Vec<String> {
    let lib = dirs_cache().join("pylib-dotenv-1.0.1");
    let script = "import sys, json\nfrom dotenv import dotenv_values\nprint(json.dumps([dotenv_values(p, encoding='utf-8-sig').get('MONGO_URI') for p in sys.argv[1:]]))";
    let out = std::process::Command::new("python3")
        .env("PYTHONPATH", &lib)
        .arg("-c")
        .arg(script)
        .args(paths)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python-dotenv: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn dirs_cache() -> PathBuf {
    std::env::var("MONGOSHIFT_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/mongoshift"))
}

/// `migrate --follow --detach` of `db` from `old` into `new`: the tail a switch drains.
fn follow_detached(dir: &Path, old: &str, new: &str, db: &str) {
    mongoshift(
        dir,
        [
            "migrate",
            "--from",
            old,
            "--to",
            new,
            "--db",
            db,
            "--follow",
            "--detach",
            "--yes",
            "--no-progress",
        ],
    )
    .assert_code(0);
}

fn switch(dir: &Path, args: &[&str]) -> common::Run {
    let mut a = vec!["switch", "--no-progress"];
    a.extend_from_slice(args);
    mongoshift(dir, a)
}

#[test]
fn env_files_of_every_shape_change_only_the_value_and_read_back_exactly() {
    let _serial = serial();
    let db = small_db("swshape", 3, true);
    let old = servers().rs_uri.clone();
    let new = app_uri();
    let dir = tempdir();
    let shapes: Vec<(&str, String)> = vec![
        ("plain", format!("# the app\n\nMONGO_URI={old}\nOTHER=x\n")),
        ("export", format!("export MONGO_URI={old}\n")),
        ("single", format!("MONGO_URI='{old}'\n")),
        ("double", format!("MONGO_URI=\"{old}\"  # primary\n")),
        ("inline", format!("MONGO_URI={old} # primary\nB=2\n")),
        (
            "duplicate",
            format!("MONGO_URI={old}\n#MONGO_URI=mongodb://commented/x\nMONGO_URI={old}\n"),
        ),
        ("crlf", format!("A=1\r\nMONGO_URI={old}\r\nB=2\r\n")),
        ("no-final-newline", format!("A=1\nMONGO_URI={old}")),
        ("bom", format!("\u{feff}MONGO_URI={old}\nA=1\n")),
        ("spaces", format!("MONGO_URI = {old}\n")),
    ];
    let mut files = Vec::new();
    for (name, text) in &shapes {
        let p = dir.path().join(format!("{name}.env"));
        std::fs::write(&p, text).unwrap();
        files.push(p);
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&files[0], std::fs::Permissions::from_mode(0o640)).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: api # the API's\ntype: Opaque\ndata:\n  OTHER: eA==\n  MONGO_URI: {}\n",
        b64.encode(&old)
    );
    let secret_path = dir.path().join("secret.yaml");
    std::fs::write(&secret_path, &secret).unwrap();

    let mut args: Vec<String> = vec![
        "--from".into(),
        old.clone(),
        "--to".into(),
        new.clone(),
        "--db".into(),
        db.clone(),
        "--verify".into(),
        "none".into(),
    ];
    for f in &files {
        args.extend(["--env-file".into(), f.display().to_string()]);
    }
    args.extend([
        "--k8s-secret".into(),
        format!("{}:MONGO_URI", secret_path.display()),
    ]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();

    // A dry run shows every diff, passwords masked, and changes nothing.
    let mut dry = a.clone();
    dry.push("--dry-run");
    let r = switch(dir.path(), &dry);
    r.assert_code(0);
    assert!(r.stdout.contains("swapp:****@"), "{}", r.stdout);
    assert!(!r.all().contains("p%40ss"), "the password shows");
    for (f, (_, text)) in files.iter().zip(&shapes) {
        assert_eq!(&std::fs::read_to_string(f).unwrap(), text);
    }

    let mut go = a.clone();
    go.push("--yes");
    let r = switch(dir.path(), &go);
    r.assert_code(0);
    assert!(
        r.stderr.contains("on 2 lines"),
        "the duplicate key is warned about: {}",
        r.stderr
    );
    assert!(!r.all().contains("p%40ss") && !r.all().contains("p@ss"));
    assert_no_secret(&r.all(), "switch output");
    for (f, (name, text)) in files.iter().zip(&shapes) {
        let after = std::fs::read_to_string(f).unwrap();
        assert_eq!(
            after,
            text.replace(&old, &new),
            "{name}: only the value changed"
        );
    }
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the file's mode is kept");
    assert_eq!(
        std::fs::read_to_string(&secret_path).unwrap(),
        secret.replace(&b64.encode(&old), &b64.encode(&new))
    );
    for (v, (name, _)) in dotenv_values(&files).iter().zip(&shapes) {
        assert_eq!(v, &new, "python-dotenv reads {name} back");
    }
    let hist = std::fs::read_to_string(dir.path().join(".mongoshift/history.jsonl")).unwrap();
    assert!(hist.contains("\"action\":\"switch\""), "{hist}");
    assert!(
        !hist.contains("p%40ss") && !hist.contains("p@ss"),
        "no password in the history"
    );
    assert_no_secret(&hist, "the history");
    block_on(async {
        client(&servers().rs_uri)
            .await
            .database(&db)
            .drop()
            .await
            .unwrap();
        client(&servers().atlas_uri)
            .await
            .database(&db)
            .drop()
            .await
            .unwrap();
    });
}

#[test]
fn every_failure_leaves_the_files_byte_identical_and_old_writable() {
    let _serial = serial();
    let _thaw = Thaw;
    let old = servers().rs_uri.clone();
    let atlas = servers().atlas_uri.clone();
    let db = small_db("swfail", 10, true);
    let dir = tempdir();
    let env = dir.path().join(".env");
    let text = format!("# app\r\nMONGO_URI=\"{old}\"\r\n");
    std::fs::write(&env, &text).unwrap();
    let env_s = env.display().to_string();
    let unchanged = || {
        assert_eq!(std::fs::read_to_string(&env).unwrap(), text);
        assert!(!blocked(&old), "OLD is left writable");
        assert!(!dir.path().join(".mongoshift/history.jsonl").exists());
    };
    let base = |extra: &[&str]| -> common::Run {
        let mut a = vec!["--from", &old, "--to", &atlas, "--db", &db, "--yes"];
        a.extend_from_slice(extra);
        switch(dir.path(), &a)
    };

    // A key missing from a file: exit 2, naming the file and the key.
    let other = dir.path().join("other.env");
    std::fs::write(&other, "# MONGO_URI=commented out\nA=1\n").unwrap();
    let r = base(&["--env-file", &env_s, "--env-file", other.to_str().unwrap()]);
    r.assert_code(2);
    assert!(
        r.stderr.contains("other.env") && r.stderr.contains("MONGO_URI"),
        "{}",
        r.stderr
    );
    unchanged();
    // An unreadable file (a folder): exit 1.
    let r = base(&[
        "--env-file",
        &env_s,
        "--env-file",
        dir.path().to_str().unwrap(),
    ]);
    r.assert_code(1);
    unchanged();
    // An unreachable NEW: exit 1, naming the side.
    let r = switch(
        dir.path(),
        &[
            "--from",
            &old,
            "--to",
            "mongodb://127.0.0.1:9/",
            "--timeout",
            "2s",
            "--db",
            &db,
            "--env-file",
            &env_s,
            "--yes",
        ],
    );
    r.assert_code(1);
    assert!(r.stderr.contains("target"), "{}", r.stderr);
    unchanged();
    // A failed verify after the freeze: exit 3, OLD unfrozen, nothing written.
    block_on(async {
        client(&atlas)
            .await
            .database(&db)
            .collection::<Document>("orders")
            .delete_one(doc! { "_id": 4 })
            .await
            .unwrap();
    });
    let r = base(&["--env-file", &env_s, "--freeze-writes"]);
    r.assert_code(3);
    assert!(r.stderr.contains("count 10 vs 9"), "{}", r.stderr);
    assert_no_secret(&r.all(), "switch output");
    unchanged();
    // A standalone OLD cannot be frozen: exit 2 with the choice explained.
    let r = switch(
        dir.path(),
        &[
            "--from",
            &servers().standalone_uri,
            "--to",
            &atlas,
            "--db",
            &db,
            "--env-file",
            &env_s,
            "--freeze-writes",
            "--yes",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    unchanged();
    block_on(async {
        client(&old).await.database(&db).drop().await.unwrap();
        client(&atlas).await.database(&db).drop().await.unwrap();
    });
}

/// The application simulator: before every write it reads MONGO_URI from the env file,
/// and it retries a write refused by the write block (after reading the file again).
struct Writer {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<Vec<(i64, String)>>>,
}

impl Writer {
    fn start(env: PathBuf, db: String) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            block_on(async move {
                let mut clients = std::collections::HashMap::new();
                let mut acked = Vec::new();
                let mut seq = 0i64;
                while !s.load(Ordering::Relaxed) {
                    let text = std::fs::read_to_string(&env).unwrap();
                    let uri = mongoshift::cutover::dotenv::get(&text, "MONGO_URI").unwrap();
                    if !clients.contains_key(&uri) {
                        clients.insert(uri.clone(), client(&uri).await);
                    }
                    let coll = clients[&uri].database(&db).collection::<Document>("log");
                    match coll
                        .insert_one(doc! { "_id": seq, "at": mongodb::bson::DateTime::now() })
                        .await
                    {
                        Ok(_) => {
                            acked.push((seq, uri));
                            seq += 1;
                        }
                        Err(e) => {
                            let blocked = e.to_string().contains("User writes blocked")
                                || e.to_string().contains("371");
                            assert!(blocked, "the writer got an unexpected error: {e}");
                        }
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                acked
            })
        });
        Writer {
            stop,
            handle: Some(handle),
        }
    }

    fn finish(mut self) -> Vec<(i64, String)> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn a_live_writer_loses_nothing_through_switch_reverse_sync_and_rollback() {
    let _serial = serial();
    let _thaw = Thaw;
    let old = servers().rs_uri.clone();
    let new = servers().atlas_uri.clone();
    let db = small_db("swlive", 500, false);
    let dir = tempdir();
    let env = dir.path().join(".env");
    std::fs::write(&env, format!("MONGO_URI='{old}'\n")).unwrap();
    let env_s = env.display().to_string();
    let writer = Writer::start(env.clone(), db.clone());
    std::thread::sleep(std::time::Duration::from_millis(500));
    follow_detached(dir.path(), &old, &new, &db);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let r = switch(
        dir.path(),
        &[
            "--from",
            &old,
            "--to",
            &new,
            "--env-file",
            &env_s,
            "--freeze-writes",
            "--reverse-sync",
            "--verify",
            "documents",
            "--yes",
        ],
    );
    r.assert_code(0);
    assert_no_secret(&r.all(), "switch output");
    // More writes, now on NEW, followed back into OLD.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let acked = writer.finish();
    let r = mongoshift(
        dir.path(),
        ["rollback", "--env-file", &env_s, "--yes", "--no-progress"],
    );
    r.assert_code(0);
    assert_no_secret(&r.all(), "rollback output");
    assert_eq!(
        mongoshift::cutover::dotenv::get(&std::fs::read_to_string(&env).unwrap(), "MONGO_URI")
            .as_deref(),
        Some(old.as_str())
    );
    // The writes went to OLD, then to NEW, never back and forth: none was acknowledged by
    // OLD once NEW had taken one.
    let first_new = acked
        .iter()
        .position(|(_, u)| u == &new)
        .expect("no write reached NEW");
    assert!(
        acked[first_new..].iter().all(|(_, u)| u == &new),
        "OLD acknowledged a write after the switch"
    );
    assert!(first_new > 0 && first_new < acked.len());
    // Every acknowledged write is on OLD, and OLD equals NEW.
    let on_old: std::collections::HashSet<i64> = block_on(async {
        use futures::TryStreamExt;
        client(&old)
            .await
            .database(&db)
            .collection::<Document>("log")
            .find(doc! {})
            .await
            .unwrap()
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.get_i64("_id").unwrap())
            .collect()
    });
    for (seq, _) in &acked {
        assert!(
            on_old.contains(seq),
            "acknowledged write {seq} is missing on OLD"
        );
    }
    assert_eq!(
        hashes(&old, &db),
        hashes(&new, &db),
        "dbHash of OLD equals NEW"
    );
    assert!(blocked(&new), "NEW stays frozen after the rollback");
    block_on(async {
        client(&old).await.database(&db).drop().await.unwrap();
        let n = client(&new).await;
        n.database("admin")
            .run_command(doc! { "setUserWriteBlockMode": 1, "global": false })
            .await
            .unwrap();
        n.database(&db).drop().await.unwrap();
    });
}

#[test]
fn rollback_without_reverse_sync_counts_what_new_took_and_refuses() {
    let _serial = serial();
    let old = servers().rs_uri.clone();
    let new = servers().atlas_uri.clone();
    let db = small_db("swdiv", 5, true);
    let dir = tempdir();
    let env = dir.path().join(".env");
    let before = format!("MONGO_URI={old}\n");
    std::fs::write(&env, &before).unwrap();
    let env_s = env.display().to_string();
    switch(
        dir.path(),
        &[
            "--from",
            &old,
            "--to",
            &new,
            "--db",
            &db,
            "--env-file",
            &env_s,
            "--yes",
        ],
    )
    .assert_code(0);
    block_on(async {
        client(&new)
            .await
            .database(&db)
            .collection::<Document>("orders")
            .insert_many((100..103).map(|i| doc! { "_id": i }))
            .await
            .unwrap();
    });
    let switched = std::fs::read_to_string(&env).unwrap();
    // A dry run shows the diff and the divergence, and changes nothing.
    let r = mongoshift(
        dir.path(),
        [
            "rollback",
            "--env-file",
            &env_s,
            "--dry-run",
            "--accept-divergence",
        ],
    );
    r.assert_code(0);
    assert!(r.stdout.contains("3 write(s)"), "{}", r.stdout);
    assert_eq!(std::fs::read_to_string(&env).unwrap(), switched);
    let r = mongoshift(dir.path(), ["rollback", "--env-file", &env_s, "--yes"]);
    r.assert_code(3);
    assert!(
        r.stderr.contains("3 write(s)") && r.stderr.contains(&format!("{db}.orders: 3")),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&env).unwrap(),
        switched,
        "nothing changed"
    );
    let r = mongoshift(
        dir.path(),
        [
            "rollback",
            "--env-file",
            &env_s,
            "--yes",
            "--accept-divergence",
            "--exec",
            "echo api-restart-failed >&2; exit 7",
        ],
    );
    // A failing hook: reported with its exit code and output; the files are written back.
    r.assert_code(1);
    assert!(
        r.stderr.contains("exit 7") && r.stderr.contains("api-restart-failed"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read_to_string(&env).unwrap(), before);
    block_on(async {
        client(&old).await.database(&db).drop().await.unwrap();
        client(&new).await.database(&db).drop().await.unwrap();
    });
}

#[test]
fn sigterm_during_the_drain_unfreezes_old_and_writes_nothing() {
    let _serial = serial();
    let _thaw = Thaw;
    let old = servers().rs_uri.clone();
    let new = servers().atlas_uri.clone();
    let db = small_db("swsig", 50, false);
    let dir = tempdir();
    let env = dir.path().join(".env");
    let text = format!("MONGO_URI={old}\n");
    std::fs::write(&env, &text).unwrap();
    follow_detached(dir.path(), &old, &new, &db);
    let status = mongoshift(
        dir.path(),
        [
            "migrate", "status", "--to", &new, "--db", &db, "--output", "json",
        ],
    );
    let tail_pid = status.json()["runs"][0]["pid"]
        .as_i64()
        .expect("the tail's pid") as i32;
    // A paused tail cannot reach the freeze point, so the switch waits in its drain.
    unsafe { libc::kill(tail_pid, libc::SIGSTOP) };
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_mongoshift"))
        .current_dir(dir.path())
        .args([
            "switch",
            "--from",
            &old,
            "--to",
            &new,
            "--env-file",
            env.to_str().unwrap(),
            "--yes",
            "--no-progress",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !blocked(&old) {
        assert!(
            started.elapsed().as_secs() < 20,
            "the switch never froze OLD"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    unsafe { libc::kill(tail_pid, libc::SIGCONT) };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert!(!blocked(&old), "OLD is writable again");
    assert_eq!(std::fs::read_to_string(&env).unwrap(), text);
    assert!(!dir.path().join(".mongoshift/history.jsonl").exists());
    mongoshift(dir.path(), ["migrate", "stop", "--to", &new, "--db", &db]).assert_code(0);
    block_on(async {
        client(&old).await.database(&db).drop().await.unwrap();
        client(&new).await.database(&db).drop().await.unwrap();
    });
}

#[test]
fn freeze_blocks_reports_and_lifts_user_writes() {
    let _serial = serial();
    let _thaw = Thaw;
    let rs = servers().rs_uri.clone();
    let dir = tempdir();
    let freeze = |extra: &[&str]| {
        let mut a = vec!["freeze", "--uri", &rs, "--output", "json"];
        a.extend_from_slice(extra);
        mongoshift(dir.path(), a)
    };
    let r = freeze(&[]);
    r.assert_code(0);
    assert_eq!(r.json()["writes_blocked"], true);
    assert!(blocked(&rs));
    assert_eq!(freeze(&["--status"]).json()["writes_blocked"], true);
    // A write refused by the freeze: one line naming the cause and the fix, not one line
    // per refused document.
    let db = common::unique_db("frozen");
    let r = mongoshift(
        dir.path(),
        ["sample", "--uri", &rs, "--db", &db, "--scale", "0.1"],
    );
    r.assert_code(1);
    assert!(
        r.stderr.contains("200 of the documents were refused")
            && r.stderr.contains("User writes blocked")
            && r.stderr.contains("freeze --off"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.lines().count() < 5, "{}", r.stderr);
    let r = freeze(&["--off"]);
    r.assert_code(0);
    assert_eq!(r.json()["writes_blocked"], false);
    assert!(!blocked(&rs));
    let r = mongoshift(dir.path(), ["freeze", "--uri", &servers().standalone_uri]);
    r.assert_code(2);
    assert!(r.stderr.contains("standalone"), "{}", r.stderr);
}
