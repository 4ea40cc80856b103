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

/// Unfreezes the servers when a test ends, passing or not.
struct Thaw;
impl Drop for Thaw {
    fn drop(&mut self) {
        let legacy = common::legacy_auth().admin_uri;
        block_on(async {
            for uri in [&servers().rs_uri, &servers().atlas_uri, &legacy] {
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

/// NEW's URI as an application would hold it: its own user (readWrite on `db` only) whose
/// password needs percent-encoding, `&`-separated options, retryWrites and w=majority.
fn app_uri(db: &str) -> String {
    let pw = "p@ss&w%rd/1";
    block_on(async {
        let admin = client(&servers().atlas_uri).await.database("admin");
        let _ = admin.run_command(doc! { "dropUser": "swapp" }).await;
        admin
            .run_command(doc! { "createUser": "swapp", "pwd": pw, "roles": [ { "role": "readWrite", "db": db } ] })
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
    let script = "import sys, json\nfrom dotenv import dotenv_values\nprint(json.dumps([dotenv_values(p, encoding='utf-8-sig').get('MONGO_URI') for p in sys.argv[1:]]))";
    let out = std::process::Command::new(common::python())
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

/// Run, exactly as printed, the first command `mongoshift PREFIX…` quoted in `text`
/// (between backticks), with `sh` in `dir`: our binary first on PATH, and the password a
/// printed command may read from MONGOSHIFT_PASSWORD (#27.6: never a masked one).
fn run_printed(dir: &Path, text: &str, prefix: &str) -> (String, common::Run) {
    let start = text
        .find(&format!("`mongoshift {prefix}"))
        .unwrap_or_else(|| panic!("no `mongoshift {prefix}…` in: {text}"))
        + 1;
    let len = text[start..].find('`').unwrap();
    let cmd = text[start..start + len].to_string();
    assert!(!cmd.contains("****"), "a masked password in {cmd}");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_mongoshift"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .current_dir(dir)
        .env("PATH", path)
        .env("MONGOSHIFT_PASSWORD", common::atlas_password().0)
        .env(
            "MONGOSHIFT_ENV_FILE",
            std::env::var("MONGOSHIFT_ENV_FILE").unwrap_or_default(),
        )
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let run = common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    };
    (cmd, run)
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
    let new = app_uri(&db);
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
        servers().atlas_uri.clone(),
        "--app-uri".into(),
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
    // #27.5: the files hold a password now and are group/world-readable: said, with the fix.
    assert!(
        r.stderr.contains("will hold a password") && r.stderr.contains("chmod 600"),
        "{}",
        r.stderr
    );
    for (f, (name, text)) in files.iter().zip(&shapes) {
        let after = std::fs::read_to_string(f).unwrap();
        // An unquoted value gets single quotes: its `&` and `?` would break a shell.
        let quoted = if ["single", "double"].contains(name) {
            new.clone()
        } else {
            format!("'{new}'")
        };
        assert_eq!(
            after,
            text.replace(&old, &quoted),
            "{name}: only the value changed"
        );
    }
    // #27.5: a shell sourcing the file reads the same value (the shapes a shell can read:
    // not CRLF, a BOM or spaces around `=`).
    for (f, (name, _)) in files.iter().zip(&shapes) {
        if ["crlf", "bom", "spaces"].contains(name) {
            continue;
        }
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg("set -a; . \"$1\"; printf %s \"$MONGO_URI\"")
            .arg("bash")
            .arg(f)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            new,
            "bash reads {name} back"
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
        let mut a = vec![
            "--from",
            &old,
            "--to",
            &atlas,
            "--db",
            &db,
            "--yes",
            "--allow-admin-uri",
        ];
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
    // A reverse sync into an OLD that cannot stay frozen (no auth: nobody writes through the
    // block) is refused before the freeze, with the two ways out.
    let r = base(&["--env-file", &env_s, "--freeze-writes", "--reverse-sync"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("restore role") && r.stderr.contains("--unfreeze-old"),
        "{}",
        r.stderr
    );
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
            "--allow-admin-uri",
            "--yes",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("standalone"), "{}", r.stderr);
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
    // The application's folder is not where the commands run (#27.21: the reverse sync's
    // log goes beside the history, next to the .env).
    std::fs::create_dir(dir.path().join("app")).unwrap();
    let env = dir.path().join("app/.env");
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
            // The legacy replica set runs without auth: nobody writes through its block.
            "--unfreeze-old",
            "--allow-admin-uri",
            "--verify",
            "documents",
            "--yes",
        ],
    );
    r.assert_code(0);
    assert_no_secret(&r.all(), "switch output");
    assert!(
        r.all().contains(&format!(
            "log {}",
            dir.path().join("app/.mongoshift/logs/").display()
        )),
        "{}",
        r.all()
    );
    let hist = std::fs::read_to_string(dir.path().join("app/.mongoshift/history.jsonl")).unwrap();
    assert!(hist.contains("\"unfreeze_old\":true"), "{hist}");
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
    // #27.21: the reverse sync's record is gone from OLD, which the application uses again.
    let st = mongoshift(
        dir.path(),
        [
            "migrate", "status", "--to", &old, "--from", &new, "--db", &db, "--output", "json",
        ],
    );
    st.assert_code(0);
    assert_eq!(st.json()["runs"], serde_json::json!([]), "{}", st.stdout);
    // #27.6: the suggested command that lifts NEW's freeze runs as printed.
    let (cmd, lift) = run_printed(dir.path(), &r.all(), "freeze");
    lift.assert_code(0);
    assert!(cmd.ends_with("--off"), "{cmd}");
    assert!(!blocked(&new), "`{cmd}` did not lift the freeze");
    block_on(async {
        client(&old).await.database(&db).drop().await.unwrap();
        client(&new).await.database(&db).drop().await.unwrap();
    });
}

#[test]
fn rollback_without_reverse_sync_counts_what_new_took_and_refuses() {
    let _serial = serial();
    let old = servers().rs_uri.clone();
    let new = servers().atlas_uri.clone();
    let db = small_db("swdiv", 5, true);
    let dir = tempdir();
    // The clusters have config names, though the switch is given their URIs: what rollback
    // prints names them by those (#27.6).
    std::fs::write(
        dir.path().join("mongoshift.yaml"),
        format!("targets:\n  legacy: {{ uri: \"{old}\" }}\n  atlas: {{ uri: \"{new}\" }}\n"),
    )
    .unwrap();
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
            "--allow-admin-uri",
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
    // #27.3: the suggested copy runs as printed, and then rollback verifies that OLD holds
    // NEW's data and goes ahead without --accept-divergence.
    let (cmd, copy) = run_printed(dir.path(), &r.stderr, "migrate");
    copy.assert_code(0);
    assert_no_secret(&copy.all(), "the printed copy's output");
    assert!(
        cmd.contains("--from atlas --to legacy") && cmd.contains("--drop"),
        "{cmd}"
    );
    assert_eq!(
        hashes(&old, &db),
        hashes(&new, &db),
        "`{cmd}` copied NEW back"
    );
    let r = mongoshift(
        dir.path(),
        [
            "rollback",
            "--env-file",
            &env_s,
            "--yes",
            "--exec",
            "echo api-restart-failed >&2; exit 7",
        ],
    );
    assert!(r.all().contains("holds"), "{}", r.all());
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
            "--allow-admin-uri",
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

/// (Re)create `user` on the server of `admin_uri` with `roles`.
fn user_on(admin_uri: &str, user: &str, pw: &str, roles: Vec<Document>) {
    block_on(async {
        let admin = client(admin_uri).await.database("admin");
        let _ = admin.run_command(doc! { "dropUser": user }).await;
        admin
            .run_command(doc! { "createUser": user, "pwd": pw, "roles": roles })
            .await
            .unwrap();
    });
}

/// `uri` with its user part replaced by `user:pw` and its database path by `db`.
fn with_user_and_db(uri: &str, user: &str, pw: &str, db: &str) -> String {
    let (scheme, rest) = uri.split_once("://").unwrap();
    let rest = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    let (hosts, tail) = rest.split_once('/').unwrap();
    let query = tail.split_once('?').map(|(_, q)| q).unwrap_or("");
    format!("{scheme}://{user}:{pw}@{hosts}/{db}?{query}")
}

fn unfreeze(uri: &str) {
    block_on(async {
        let _ = client(uri)
            .await
            .database("admin")
            .run_command(doc! { "setUserWriteBlockMode": 1, "global": false })
            .await;
    });
}

fn count(uri: &str, db: &str, coll: &str) -> u64 {
    block_on(async {
        client(uri)
            .await
            .database(db)
            .collection::<Document>(coll)
            .count_documents(doc! {})
            .await
            .unwrap()
    })
}

/// The setup: an auth-enabled legacy replica set where the tool is admin and the
/// application has its own readWrite user; NEW gets an application user of its own, named
/// in the config target's `app_uri`. Through a frozen switch with a reverse sync the .env
/// and the Secret hold exactly the application's URI; the application's user cannot write
/// OLD while the reverse sync does; rollback puts both files back byte for byte.
#[test]
fn the_application_keeps_its_own_uri_and_rollback_restores_every_byte() {
    let _serial = serial();
    let _thaw = Thaw;
    let legacy = common::legacy_auth();
    let atlas = servers().atlas_uri.clone();
    let db = legacy.app_db.clone();
    let new_pw = "n3w-app/pw";
    user_on(
        &atlas,
        "app",
        new_pw,
        vec![doc! { "role": "readWrite", "db": &db }],
    );
    let new_app = with_user_and_db(&atlas, "app", "n3w-app%2Fpw", &db)
        + "&retryWrites=true&w=majority&maxPoolSize=50";
    block_on(async {
        for uri in [&legacy.admin_uri, &atlas] {
            client(uri).await.database(&db).drop().await.unwrap();
        }
        client(&legacy.admin_uri)
            .await
            .database(&db)
            .collection::<Document>("bets")
            .insert_many((0..20).map(|i| doc! { "_id": i, "stake": i }))
            .await
            .unwrap();
    });
    let dir = tempdir();
    std::fs::write(
        dir.path().join("mongoshift.yaml"),
        "targets:\n  legacy: { uri: \"${LEGACY_URI}\" }\n  atlas: { uri: \"${ATLAS_URI}\", app_uri: \"${ATLAS_APP_URI}\" }\n",
    )
    .unwrap();
    let cli = || {
        common::Cli::new(dir.path())
            .env("LEGACY_URI", &legacy.admin_uri)
            .env("ATLAS_URI", &atlas)
            .env("ATLAS_APP_URI", &new_app)
    };
    let old_app = format!(
        "{}&retryWrites=true&w=majority&maxPoolSize=50",
        legacy.app_uri
    );
    let env = dir.path().join(".env");
    let env_before = format!("# predixi\r\nAPP_NAME=predixi\r\nMONGO_URI=\"{old_app}\" # primary\r\nREDIS_URL=redis://cache:6379\r\n");
    std::fs::write(&env, &env_before).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let secret = dir.path().join("secret.yaml");
    let secret_before = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: predixi-api\ntype: Opaque\ndata:\n  MONGO_URI: {}\n  OTHER: eA==\n",
        b64.encode(&old_app)
    );
    std::fs::write(&secret, &secret_before).unwrap();
    let (env_s, secret_s) = (
        env.display().to_string(),
        format!("{}:MONGO_URI", secret.display()),
    );
    follow_detached_cli(&cli, &db);
    let r = cli().run([
        "switch",
        "--from",
        "legacy",
        "--to",
        "atlas",
        "--env-file",
        &env_s,
        "--k8s-secret",
        &secret_s,
        "--freeze-writes",
        "--reverse-sync",
        "--verify",
        "documents",
        "--yes",
        "--no-progress",
    ]);
    r.assert_code(0);
    assert!(r.all().contains("app:****@"), "{}", r.all());
    assert!(!r.all().contains("n3w-app"), "the app's password shows");
    assert_no_secret(&r.all(), "switch output");
    // Exactly the application's URI, every other byte kept, as the application reads it.
    assert_eq!(
        std::fs::read_to_string(&env).unwrap(),
        env_before.replace(&old_app, &new_app)
    );
    assert_eq!(
        dotenv_values(std::slice::from_ref(&env)),
        vec![new_app.clone()]
    );
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        secret_before.replace(&b64.encode(&old_app), &b64.encode(&new_app))
    );
    // The application's user is refused on the frozen OLD; on NEW it writes, and the
    // reverse sync (the tool's admin, which may write through the block) carries it to OLD.
    let refused = block_on(async {
        client(&legacy.app_uri)
            .await
            .database(&db)
            .collection::<Document>("bets")
            .insert_one(doc! { "_id": "straggler" })
            .await
            .unwrap_err()
            .to_string()
    });
    assert!(
        refused.contains("User writes blocked") || refused.contains("371"),
        "{refused}"
    );
    block_on(async {
        client(&new_app)
            .await
            .database(&db)
            .collection::<Document>("bets")
            .insert_many((100..105).map(|i| doc! { "_id": i }))
            .await
            .unwrap();
    });
    let started = std::time::Instant::now();
    while count(&legacy.admin_uri, &db, "bets") < 25 {
        assert!(
            started.elapsed().as_secs() < 30,
            "the reverse sync did not write into the frozen OLD"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(blocked(&legacy.admin_uri), "OLD stays frozen");
    // The copies for rollback are private, and the history holds no password.
    let hist_path = dir.path().join(".mongoshift/history.jsonl");
    let hist = std::fs::read_to_string(&hist_path).unwrap();
    assert_no_secret(&hist, "the history");
    assert!(!hist.contains("n3w-app") && !hist.contains("MONGO_URI=\""));
    assert!(hist.contains("targets.atlas.app_uri"), "{hist}");
    use std::os::unix::fs::PermissionsExt;
    for e in std::fs::read_dir(dir.path().join(".mongoshift/snapshots")).unwrap() {
        let m = e.unwrap().metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(m, 0o600);
    }

    // No file named: every sink the switch wrote.
    let r = cli().run(["rollback", "--yes", "--no-progress"]);
    r.assert_code(0);
    assert!(!r.all().contains("n3w-app"), "the app's password shows");
    assert_no_secret(&r.all(), "rollback output");
    assert_eq!(std::fs::read(&env).unwrap(), env_before.as_bytes());
    assert_eq!(std::fs::read(&secret).unwrap(), secret_before.as_bytes());
    let entry: serde_json::Value = serde_json::from_str(hist.lines().last().unwrap()).unwrap();
    assert_eq!(
        entry["sinks"][0]["sha256_before"].as_str().unwrap(),
        mongoshift::cutover::sink::sha256(&std::fs::read(&env).unwrap())
    );
    // OLD takes the application's writes again.
    assert!(!blocked(&legacy.admin_uri));
    block_on(async {
        client(&legacy.app_uri)
            .await
            .database(&db)
            .collection::<Document>("bets")
            .insert_one(doc! { "_id": "after-rollback" })
            .await
            .unwrap();
    });
    unfreeze(&atlas);
    unfreeze(&legacy.admin_uri);
    block_on(async {
        client(&legacy.admin_uri)
            .await
            .database(&db)
            .drop()
            .await
            .unwrap();
        client(&atlas).await.database(&db).drop().await.unwrap();
    });
}

fn follow_detached_cli(cli: &dyn Fn() -> common::Cli, db: &str) {
    cli()
        .run([
            "migrate",
            "--from",
            "legacy",
            "--to",
            "atlas",
            "--db",
            db,
            "--follow",
            "--detach",
            "--yes",
            "--no-progress",
        ])
        .assert_code(0);
    std::thread::sleep(std::time::Duration::from_secs(2));
}

/// Without --app-uri the written URI is derived: the application's database and options
/// kept, NEW's hosts, TLS, replicaSet, authSource and credentials. The tool's root user is
/// refused there unless --allow-admin-uri; a user lacking a privilege, or a default database
/// missing on NEW, is refused; a file changed since the switch is not rolled back without
/// --force, which then restores it byte for byte.
#[test]
fn derived_uri_admin_and_privilege_refusals_and_a_changed_file() {
    let _serial = serial();
    let _thaw = Thaw;
    let legacy = common::legacy_auth();
    let atlas = servers().atlas_uri.clone();
    let db = common::unique_db("swderive");
    let only_old = common::unique_db("swonlyold");
    block_on(async {
        for uri in [&legacy.admin_uri, &atlas] {
            client(uri)
                .await
                .database(&db)
                .collection::<Document>("orders")
                .insert_many((0..5).map(|i| doc! { "_id": i }))
                .await
                .unwrap();
        }
        client(&legacy.admin_uri)
            .await
            .database(&only_old)
            .collection::<Document>("x")
            .insert_one(doc! { "_id": 1 })
            .await
            .unwrap();
    });
    let (legacy_pw, _) = common::uri_password(&legacy.app_uri);
    let old_value = format!(
        "{}&retryWrites=true&w=majority&maxPoolSize=50&appName=api",
        with_user_and_db(&legacy.app_uri, "app", &legacy_pw, &db)
    );
    let dir = tempdir();
    let env = dir.path().join(".env");
    let before = format!("A=1\nMONGO_URI='{old_value}'\n");
    std::fs::write(&env, &before).unwrap();
    let env_s = env.display().to_string();
    let go = |extra: &[&str]| {
        let mut a = vec![
            "switch",
            "--no-progress",
            "--from",
            &legacy.admin_uri,
            "--to",
            &atlas,
            "--db",
            &db,
            "--env-file",
            &env_s,
            "--yes",
        ];
        a.extend_from_slice(extra);
        mongoshift(dir.path(), a)
    };
    let unchanged = || {
        assert_eq!(std::fs::read_to_string(&env).unwrap(), before);
        assert!(!dir.path().join(".mongoshift/history.jsonl").exists());
    };
    // The derived URI carries --to's root user: refused, saying why.
    let r = go(&[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("root@admin") && r.stderr.contains("--allow-admin-uri"),
        "{}",
        r.stderr
    );
    assert_no_secret(&r.all(), "switch output");
    unchanged();
    // A user that may only read: refused, naming what it lacks.
    user_on(
        &atlas,
        "swreader",
        "r3ader-pw",
        vec![doc! { "role": "read", "db": &db }],
    );
    let reader = with_user_and_db(&atlas, "swreader", "r3ader-pw", &db);
    let r = go(&["--app-uri", &reader]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("swreader")
            && r.stderr
                .contains(&format!("insert, update, remove on {db}")),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains("r3ader-pw"));
    unchanged();
    // A default database that is on OLD but not on NEW: refused.
    user_on(
        &atlas,
        "swwriter",
        "wr1ter-pw",
        vec![
            doc! { "role": "readWrite", "db": &db },
            doc! { "role": "readWrite", "db": &only_old },
        ],
    );
    let r = go(&[
        "--app-uri",
        &with_user_and_db(&atlas, "swwriter", "wr1ter-pw", &only_old),
    ]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("on OLD but not on NEW"), "{}", r.stderr);
    unchanged();

    // Allowed: the application's path and options, NEW's connection.
    let (_, atlas_query) = atlas.split_once('?').unwrap();
    let derived = format!(
        "{}/{db}?retryWrites=true&w=majority&maxPoolSize=50&appName=api&{atlas_query}",
        atlas.split_once("/?").unwrap().0
    );
    let r = go(&["--allow-admin-uri", "--dry-run"]);
    r.assert_code(0);
    assert!(
        r.stdout.contains(&mongoshift::redact::uri(&derived)),
        "{}",
        r.stdout
    );
    assert_no_secret(&r.all(), "switch output");
    unchanged();
    go(&["--allow-admin-uri"]).assert_code(0);
    let after = before.replace(&old_value, &derived);
    assert_eq!(std::fs::read_to_string(&env).unwrap(), after);
    assert_eq!(
        dotenv_values(std::slice::from_ref(&env)),
        vec![derived.clone()]
    );

    // Someone edits the file after the switch: rollback names the change (not its value)
    // and changes nothing; --force puts back the file as it was before the switch.
    std::fs::write(&env, format!("{after}TOKEN=s3cr3t-token\n")).unwrap();
    let back = |extra: &[&str]| {
        let mut a = vec![
            "rollback",
            "--env-file",
            &env_s,
            "--to",
            &legacy.admin_uri,
            "--from",
            &atlas,
            "--yes",
            "--no-progress",
        ];
        a.extend_from_slice(extra);
        mongoshift(dir.path(), a)
    };
    let r = back(&[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("line 3 added (TOKEN)") && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains("s3cr3t-token"));
    assert_eq!(
        std::fs::read_to_string(&env).unwrap(),
        format!("{after}TOKEN=s3cr3t-token\n")
    );
    let r = back(&["--force"]);
    r.assert_code(0);
    assert!(!r.all().contains("s3cr3t-token"));
    assert_no_secret(&r.all(), "rollback output");
    assert_eq!(std::fs::read(&env).unwrap(), before.as_bytes());
    block_on(async {
        for uri in [&legacy.admin_uri, &atlas] {
            let c = client(uri).await;
            c.database(&db).drop().await.unwrap();
            c.database(&only_old).drop().await.unwrap();
        }
    });
}
