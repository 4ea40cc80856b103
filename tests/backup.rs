//! `backup` and `backups` against the real replica set, standalone and Garage.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use common::{
    block_on, client, mongoshift, s3_flags, s3_location, servers, store, tempdir, Cli, Run,
};
use mongodb::bson::{doc, oid::ObjectId, rawdoc, Document, RawDocumentBuf, Timestamp};
use mongoshift::codec::{self, Compression};
use mongoshift::dump::bson_stream;

/// The acceptance dataset: ≥ 8 namespaces with an empty collection, a view, a capped
/// collection, a validator, 120k documents, a ~16 MB document, non-ASCII names and values.
struct Dataset {
    db: String,
    counts: Vec<(&'static str, u64)>,
}

const BIG: u64 = 120_000;

fn dataset() -> &'static Dataset {
    static D: OnceLock<Dataset> = OnceLock::new();
    D.get_or_init(|| {
        let db_name = common::unique_db("accept");
        block_on(async {
            let c = client(&servers().rs_uri).await;
            let db = c.database(&db_name);
            let raw = |name: &str| db.collection::<RawDocumentBuf>(name);
            // big: 120k documents in batches
            let mut i = 0u64;
            while i < BIG {
                let docs: Vec<RawDocumentBuf> = (i..(i + 10_000).min(BIG))
                    .map(|k| rawdoc! { "_id": k as i64, "n": format!("doc {k} ünïcødé 日本"), "v": (k % 97) as f64 })
                    .collect();
                raw("big").insert_many(docs).await.unwrap();
                i += 10_000;
            }
            db.create_collection("empty").await.unwrap();
            db.create_collection("capped").capped(true).size(1 << 20).max(100).await.unwrap();
            let docs: Vec<Document> = (0..150).map(|k| doc! { "k": k }).collect();
            db.collection::<Document>("capped").insert_many(docs).await.unwrap();
            db.create_collection("validated")
                .validator(doc! { "$jsonSchema": { "bsonType": "object", "required": ["level"] } })
                .await
                .unwrap();
            db.collection::<Document>("validated").insert_many(vec![doc! { "level": 1 }, doc! { "level": 2 }]).await.unwrap();
            db.collection::<Document>("comentários_日志")
                .insert_many((0..25).map(|k| doc! { "texto": format!("olá {k} 日志 🚀") }))
                .await
                .unwrap();
            // ~15.9 MB: close to the 16 MiB limit.
            db.collection::<Document>("huge")
                .insert_one(doc! { "_id": 1, "blob": "x".repeat(15_900_000) })
                .await
                .unwrap();
            db.collection::<Document>("users")
                .insert_many((0..300).map(|k| doc! { "email": format!("u{k}@example.com"), "name": "José" }))
                .await
                .unwrap();
            db.collection::<Document>("users").create_index(mongodb::IndexModel::builder().keys(doc! { "email": 1 }).build()).await.unwrap();
            db.create_collection("active_users")
                .view_on("users".to_string())
                .pipeline(vec![doc! { "$match": { "name": "José" } }])
                .await
                .unwrap();
        });
        Dataset {
            db: db_name,
            counts: vec![
                ("big", BIG),
                ("empty", 0),
                ("capped", 100),
                ("validated", 2),
                ("comentários_日志", 25),
                ("huge", 1),
                ("users", 300),
            ],
        }
    })
}

fn manifest_counts(m: &serde_json::Value) -> Vec<(String, u64, String)> {
    m["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["collection"].as_str().unwrap().to_string(),
                n["documents"].as_u64().unwrap(),
                n["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn backup_and_check(to: &str, compression: &str, s3: bool) {
    let d = dataset();
    let mut args: Vec<String> = vec![
        "backup".into(),
        "--uri".into(),
        servers().rs_uri.clone(),
        "--db".into(),
        d.db.clone(),
        "--to".into(),
        to.into(),
        "--compress".into(),
        compression.into(),
        "--output".into(),
        "json".into(),
    ];
    let mut verify: Vec<String> = vec![
        "backups".into(),
        "verify".into(),
        "latest".into(),
        "--deep".into(),
        "--from".into(),
        to.into(),
    ];
    if s3 {
        args.extend(s3_flags());
        verify.extend(s3_flags());
    }
    let dir = tempdir();
    let cli = || {
        if s3 {
            Cli::new(dir.path()).s3_env()
        } else {
            Cli::new(dir.path())
        }
    };
    let run = cli().run(&args);
    run.assert_code(0);
    let m = run.json();
    assert_eq!(m["complete"], true);
    assert_eq!(m["compression"], compression);
    assert_eq!(m["checksum_algorithm"], "sha256");
    let got = manifest_counts(&m);
    for (coll, n) in &d.counts {
        let entry = got
            .iter()
            .find(|g| g.0 == *coll)
            .unwrap_or_else(|| panic!("{coll} missing from {got:?}"));
        assert_eq!(entry.1, *n, "{coll} with {compression}");
    }
    assert!(
        got.iter().any(|g| g.0 == "active_users" && g.2 == "view"),
        "{got:?}"
    );
    assert!(!run.all().contains(&servers().s3_secret_key));
    let v = cli().run(&verify);
    v.assert_code(0);
    assert!(v.stdout.contains("verified (deep)"), "{}", v.stdout);
}

#[test]
fn acceptance_dataset_to_folder_with_each_compression() {
    for c in ["zstd", "gzip", "none"] {
        let dir = tempdir();
        backup_and_check(dir.path().to_str().unwrap(), c, false);
    }
}

#[test]
fn acceptance_dataset_to_garage_with_each_compression() {
    for c in ["zstd", "gzip", "none"] {
        backup_and_check(&s3_location(&format!("acc{c}")), c, true);
    }
}

#[test]
fn folder_backup_has_mongodump_layout_and_readable_objects() {
    let d = dataset();
    let dir = tempdir();
    let to = dir.path().join("b");
    mongoshift(
        dir.path(),
        [
            "backup",
            "--uri",
            &servers().rs_uri,
            "--db",
            &d.db,
            "--to",
            to.to_str().unwrap(),
            "--compress",
            "gzip",
            "-q",
        ],
    )
    .assert_code(0);
    let id = std::fs::read_dir(&to)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let root = to.join(id).join(&d.db);
    // mongodump's own percent-escaping for the non-ASCII name.
    let data = root.join("coment%C3%A1rios_%E6%97%A5%E5%BF%97.bson.gz");
    assert!(data.exists(), "{}", data.display());
    let plain = codec::decompress_all(Compression::Gzip, &std::fs::read(&data).unwrap()).unwrap();
    let stats = bson_stream::walk(&plain[..], "x", |_| Ok(())).unwrap();
    assert_eq!(stats.docs, 25);
    let meta = codec::decompress_all(
        Compression::Gzip,
        &std::fs::read(root.join("validated.metadata.json.gz")).unwrap(),
    )
    .unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&meta).unwrap();
    assert_eq!(meta["collectionName"], "validated");
    assert_eq!(meta["type"], "collection");
    assert!(
        meta["options"]["validator"]["$jsonSchema"].is_object(),
        "{meta}"
    );
    assert_eq!(meta["uuid"].as_str().unwrap().len(), 32);
    let capped = codec::decompress_all(
        Compression::Gzip,
        &std::fs::read(root.join("capped.metadata.json.gz")).unwrap(),
    )
    .unwrap();
    let capped: serde_json::Value = serde_json::from_slice(&capped).unwrap();
    assert_eq!(capped["options"]["capped"], true);
    let view = codec::decompress_all(
        Compression::Gzip,
        &std::fs::read(root.join("active_users.metadata.json.gz")).unwrap(),
    )
    .unwrap();
    let view: serde_json::Value = serde_json::from_slice(&view).unwrap();
    assert_eq!(view["type"], "view");
    assert_eq!(view["options"]["viewOn"], "users");
    assert!(!root.join("active_users.bson.gz").exists());
    // Users' index is recorded for restore.
    let users = codec::decompress_all(
        Compression::Gzip,
        &std::fs::read(root.join("users.metadata.json.gz")).unwrap(),
    )
    .unwrap();
    assert!(String::from_utf8(users).unwrap().contains("email_1"));
}

#[test]
fn oplog_backup_captures_concurrent_writes_between_its_timestamps() {
    let db_name = common::unique_db("oplog");
    let uri = servers().rs_uri.clone();
    block_on(async {
        let c = client(&uri).await;
        let docs: Vec<RawDocumentBuf> = (0..60_000)
            .map(|k| rawdoc! { "_id": k, "pad": "p".repeat(200) })
            .collect();
        c.database(&db_name)
            .collection::<RawDocumentBuf>("bulk")
            .insert_many(docs)
            .await
            .unwrap();
    });
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, uri, db_name) = (stop.clone(), uri.clone(), db_name.clone());
        std::thread::spawn(move || {
            block_on(async {
                let c = client(&uri).await;
                let coll = c.database(&db_name).collection::<Document>("writes");
                let mut n = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    coll.insert_one(doc! { "_id": n }).await.unwrap();
                    n += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
                n
            })
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    let dir = tempdir();
    let to = dir.path().join("b");
    let run = mongoshift(
        dir.path(),
        [
            "backup",
            "--uri",
            &uri,
            "--db",
            &db_name,
            "--to",
            to.to_str().unwrap(),
            "--oplog",
            "--compress",
            "none",
            "--output",
            "json",
        ],
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    run.assert_code(0);
    let m = run.json();
    let start = Timestamp {
        time: m["oplog"]["start"]["t"].as_u64().unwrap() as u32,
        increment: m["oplog"]["start"]["i"].as_u64().unwrap() as u32,
    };
    let end = Timestamp {
        time: m["oplog"]["end"]["t"].as_u64().unwrap() as u32,
        increment: m["oplog"]["end"]["i"].as_u64().unwrap() as u32,
    };
    assert!(start < end, "{start:?} {end:?}");
    let backup = to.join(m["backup_id"].as_str().unwrap());
    let oplog = std::fs::read(backup.join("oplog.bson")).unwrap();
    let ns = format!("{db_name}.writes");
    let mut oplog_ids = HashSet::new();
    let mut entries = 0;
    bson_stream::walk(&oplog[..], "oplog.bson", |e| {
        entries += 1;
        let ts = e.get_timestamp("ts").unwrap();
        assert!(
            ts >= start && ts <= end,
            "entry at {ts:?} outside [{start:?}, {end:?}]"
        );
        if e.get_str("ns").ok() == Some(ns.as_str()) && e.get_str("op").ok() == Some("i") {
            oplog_ids.insert(e.get_document("o").unwrap().get_i64("_id").unwrap());
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(entries, m["oplog"]["entries"].as_u64().unwrap());
    assert!(
        !oplog_ids.is_empty(),
        "the writer's inserts during the backup are in oplog.bson"
    );
    // Point in time: every write made up to the end timestamp is in the data or in the oplog.
    let data = std::fs::read(backup.join(&db_name).join("writes.bson")).unwrap_or_default();
    let mut data_ids = HashSet::new();
    bson_stream::walk(&data[..], "writes.bson", |d| {
        data_ids.insert(d.get_i64("_id").unwrap());
        Ok(())
    })
    .unwrap();
    let upto_end: Vec<i64> = block_on(async {
        let c = client(&uri).await;
        let mut cur = c
            .database("local")
            .collection::<Document>("oplog.rs")
            .find(doc! { "ns": &ns, "op": "i", "ts": { "$lte": end } })
            .await
            .unwrap();
        let mut ids = Vec::new();
        while cur.advance().await.unwrap() {
            ids.push(
                cur.deserialize_current()
                    .unwrap()
                    .get_document("o")
                    .unwrap()
                    .get_i64("_id")
                    .unwrap(),
            );
        }
        ids
    });
    assert!(written > 0 && !upto_end.is_empty());
    for id in upto_end {
        assert!(
            data_ids.contains(&id) || oplog_ids.contains(&id),
            "write {id} lost"
        );
    }
}

#[test]
fn interrupted_backup_leaves_no_manifest_and_no_pending_uploads() {
    let db_name = common::unique_db("kill");
    block_on(async {
        let c = client(&servers().rs_uri).await;
        let coll = c.database(&db_name).collection::<RawDocumentBuf>("bulk");
        for chunk in 0..10 {
            let docs: Vec<RawDocumentBuf> = (0..10_000)
                .map(|k| rawdoc! { "_id": ObjectId::new(), "k": chunk * 10_000 + k, "pad": format!("{:0>1000}", k) })
                .collect();
            coll.insert_many(docs).await.unwrap();
        }
    });
    let loc = s3_location("kill");
    let dir = tempdir();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mongoshift"));
    cmd.current_dir(dir.path())
        .args([
            "backup",
            "--uri",
            &servers().rs_uri,
            "--db",
            &db_name,
            "--to",
            &loc,
            "--compress",
            "none",
            "--parallel",
            "1",
        ])
        .args(s3_flags())
        .env("AWS_ACCESS_KEY_ID", &servers().s3_access_key)
        .env("AWS_SECRET_ACCESS_KEY", &servers().s3_secret_key)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    // Wait until the multipart upload is under way, then interrupt it like Ctrl-C does.
    let st = block_on(store(&loc));
    let mut saw_upload = false;
    for _ in 0..500 {
        if !block_on(st.pending_writes("")).unwrap().is_empty() {
            saw_upload = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(saw_upload, "the backup never started a multipart upload");
    send_signal(pid, "INT");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("backup incomplete"), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let objects = block_on(st.list("")).unwrap();
    assert!(
        objects.iter().all(|o| !o.key.ends_with("manifest.json")),
        "{objects:?}"
    );
    assert!(
        block_on(st.pending_writes("")).unwrap().is_empty(),
        "multipart uploads left behind"
    );
    let list = Cli::new(dir.path()).s3_env().run(
        [
            vec![
                "backups".to_string(),
                "list".into(),
                "--from".into(),
                loc.clone(),
                "--output".into(),
                "json".into(),
            ],
            s3_flags(),
        ]
        .concat(),
    );
    list.assert_code(0);
    let v = list.json();
    let backups = v["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 1, "{v}");
    assert_eq!(backups[0]["complete"], false);
}

fn send_signal(pid: u32, sig: &str) {
    // bash's builtin kill: no dependency on a kill binary being installed.
    let status = std::process::Command::new("bash")
        .args(["-c", &format!("kill -{sig} {pid}")])
        .status()
        .unwrap();
    assert!(status.success());
}

fn expect_clean_failure(run: &Run, needle: &str) {
    assert_ne!(run.code, 0, "{}", run.all());
    assert!(
        run.stderr.contains(needle),
        "expected '{needle}' in:\n{}",
        run.stderr
    );
    assert!(
        !run.all().contains(&servers().s3_secret_key),
        "secret leaked:\n{}",
        run.all()
    );
    assert_eq!(
        run.stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1,
        "{}",
        run.stderr
    );
}

fn s3_backup(loc: &str, extra_env: &[(&str, &str)], flags: Vec<String>) -> Run {
    let dir = tempdir();
    let mut cli = Cli::new(dir.path()).s3_env();
    for (k, v) in extra_env {
        cli = cli.env(k, v);
    }
    cli.run(
        [
            vec![
                "backup".to_string(),
                "--uri".into(),
                servers().rs_uri.clone(),
                "--db".into(),
                dataset_small(),
                "--to".into(),
                loc.into(),
            ],
            flags,
        ]
        .concat(),
    )
}

fn dataset_small() -> String {
    static D: OnceLock<String> = OnceLock::new();
    D.get_or_init(|| {
        let db = common::unique_db("small");
        block_on(async {
            client(&servers().rs_uri)
                .await
                .database(&db)
                .collection::<Document>("c")
                .insert_one(doc! { "a": 1 })
                .await
                .unwrap();
        });
        db
    })
    .clone()
}

#[test]
fn wrong_bucket_is_a_clear_error() {
    let run = s3_backup("s3://no-such-bucket-here/x", &[], s3_flags());
    expect_clean_failure(&run, "bucket 'no-such-bucket-here' does not exist");
    // A wrong location is invalid input, as a missing folder is.
    run.assert_code(2);
}

#[test]
fn wrong_endpoint_is_a_clear_error() {
    let flags = vec![
        "--s3-endpoint".into(),
        "http://127.0.0.1:1".into(),
        "--s3-path-style".into(),
    ];
    let run = s3_backup(&s3_location("ep"), &[], flags);
    expect_clean_failure(&run, "cannot connect to the S3 endpoint http://127.0.0.1:1");
}

#[test]
fn wrong_credentials_are_a_clear_error_without_the_secret() {
    let run = s3_backup(
        &s3_location("cred"),
        &[("AWS_SECRET_ACCESS_KEY", "WrongSecretKeyValue0000")],
        s3_flags(),
    );
    expect_clean_failure(&run, "access denied");
    assert!(!run.all().contains("WrongSecretKeyValue0000"));
}

#[test]
fn unwritable_folder_is_a_clear_error() {
    let dir = tempdir();
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    // Root ignores permission bits, so use a path below a regular file instead.
    let file = ro.join("file");
    std::fs::write(&file, b"x").unwrap();
    let to = file.join("backups");
    let run = mongoshift(
        dir.path(),
        [
            "backup",
            "--uri",
            &servers().rs_uri,
            "--db",
            &dataset_small(),
            "--to",
            to.to_str().unwrap(),
        ],
    );
    expect_clean_failure(&run, "cannot create backup folder");
}

#[test]
fn oplog_on_standalone_is_a_usage_error() {
    let dir = tempdir();
    let run = mongoshift(
        dir.path(),
        [
            "backup",
            "--uri",
            &servers().standalone_uri,
            "--to",
            dir.path().join("b").to_str().unwrap(),
            "--oplog",
        ],
    );
    run.assert_code(2);
    assert!(
        run.stderr.contains("--oplog needs a replica-set member"),
        "{}",
        run.stderr
    );
}

/// mongoshift's own state (`mongoshift.migrations`, which stays on a cluster we wrote to)
/// is not the application's data: a backup of every database leaves it out.
#[test]
fn a_backup_of_every_database_leaves_mongoshift_state_out() {
    let uri = &servers().standalone_uri;
    block_on(async {
        client(uri)
            .await
            .database("mongoshift")
            .collection::<Document>("migrations")
            .update_one(
                doc! { "_id": "backup-test-marker" },
                doc! { "$set": { "source": "backup-test-marker" } },
            )
            .upsert(true)
            .await
            .unwrap();
    });
    // Nothing matches, so the refusal lists the databases it looked in.
    let dir = tempdir();
    let run = mongoshift(
        dir.path(),
        [
            "backup",
            "--uri",
            uri,
            "--to",
            dir.path().join("b").to_str().unwrap(),
            "--ns-include",
            "no_such_db_anywhere.*",
        ],
    );
    run.assert_code(2);
    let listed = run
        .stderr
        .split("no collections in ")
        .nth(1)
        .and_then(|r| r.split(" match").next())
        .unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(
        !listed.split(", ").any(|d| d == "mongoshift"),
        "{}",
        run.stderr
    );
}

#[test]
fn no_location_anywhere_is_a_usage_error() {
    let dir = tempdir();
    let run = mongoshift(dir.path(), ["backup", "--uri", &servers().rs_uri]);
    run.assert_code(2);
    assert!(run.stderr.contains("storage.backups"), "{}", run.stderr);
}

#[test]
fn passwords_never_reach_output_or_backup_files() {
    let password = "Sup3rS3cretBackupPw";
    block_on(async {
        let c = client(&servers().rs_uri).await;
        let _ = c
            .database("admin")
            .run_command(doc! { "dropUser": "mongoshift_backup_test" })
            .await;
        c.database("admin")
            .run_command(
                doc! { "createUser": "mongoshift_backup_test", "pwd": password, "roles": ["root"] },
            )
            .await
            .unwrap();
    });
    let uri = servers().rs_uri.replace(
        "mongodb://",
        &format!("mongodb://mongoshift_backup_test:{password}@"),
    ) + "&authSource=admin";
    let dir = tempdir();
    let to = dir.path().join("b");
    let run = mongoshift(
        dir.path(),
        [
            "backup",
            "--uri",
            &uri,
            "--db",
            &dataset_small(),
            "--to",
            to.to_str().unwrap(),
            "-v",
            "--output",
            "json",
        ],
    );
    run.assert_code(0);
    assert!(!run.all().contains(password));
    for (path, bytes) in common::read_tree(&to) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(password),
            "{} holds the password",
            path.display()
        );
    }
    let manifest = run.json();
    assert!(manifest["source"]["hosts"]
        .as_str()
        .unwrap()
        .contains("127.0.0.1"));
}

#[test]
fn verify_names_a_corrupted_object_and_exits_3() {
    let dir = tempdir();
    let to = dir.path().join("b");
    let run = mongoshift(
        dir.path(),
        [
            "backup",
            "--uri",
            &servers().rs_uri,
            "--db",
            &dataset_small(),
            "--to",
            to.to_str().unwrap(),
            "--output",
            "json",
        ],
    );
    run.assert_code(0);
    let id = run.json()["backup_id"].as_str().unwrap().to_string();
    let key = run.json()["namespaces"][0]["data"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let path = to.join(&id).join(&key);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let v = mongoshift(
        dir.path(),
        ["backups", "verify", &id, "--from", to.to_str().unwrap()],
    );
    v.assert_code(3);
    assert!(v.stderr.contains(&key), "{}", v.stderr);
    assert!(v.stdout.contains("sha256 mismatch"), "{}", v.stdout);
    // --deep names the same cause (the checksum), not only the decoder's symptom, and each
    // problem once: in the table, not again as a warning.
    let v = mongoshift(
        dir.path(),
        [
            "backups",
            "verify",
            &id,
            "--deep",
            "--from",
            to.to_str().unwrap(),
        ],
    );
    v.assert_code(3);
    assert!(v.stdout.contains("sha256 mismatch"), "{}", v.stdout);
    assert!(!v.stderr.contains("warning:"), "{}", v.stderr);
    assert_eq!(
        v.stdout.matches("sha256 mismatch").count(),
        1,
        "{}",
        v.stdout
    );
    // Truncation is caught by size, and with --deep by the decoder too.
    std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
    let v = mongoshift(
        dir.path(),
        [
            "backups",
            "verify",
            &id,
            "--deep",
            "--from",
            to.to_str().unwrap(),
        ],
    );
    v.assert_code(3);
    assert!(v.stderr.contains(&key), "{}", v.stderr);
}

#[test]
fn prune_keeps_newest_complete_and_refuses_without_yes_off_terminal() {
    let dir = tempdir();
    let to = dir.path().join("b");
    let to_s = to.to_str().unwrap();
    for tag in ["one", "two"] {
        mongoshift(
            dir.path(),
            [
                "backup",
                "--uri",
                &servers().rs_uri,
                "--db",
                &dataset_small(),
                "--to",
                to_s,
                "--tag",
                tag,
                "-q",
            ],
        )
        .assert_code(0);
    }
    // An old incomplete backup (no manifest).
    std::fs::create_dir_all(to.join("20200101T000000Z/db")).unwrap();
    std::fs::write(to.join("20200101T000000Z/db/c.bson.zst"), b"partial").unwrap();
    let list = mongoshift(
        dir.path(),
        ["backups", "list", "--from", to_s, "--output", "json"],
    );
    list.assert_code(0);
    let states: Vec<bool> = list.json()["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["complete"].as_bool().unwrap())
        .collect();
    assert_eq!(states, vec![true, true, false]);
    // A backup's id and its start time are the same instant (issue #27: an id one second
    // after the time shown).
    for b in list.json()["backups"].as_array().unwrap().iter().take(2) {
        let id = b["id"].as_str().unwrap();
        let time: chrono::DateTime<chrono::Utc> = b["time"].as_str().unwrap().parse().unwrap();
        assert_eq!(&id[..16], time.format("%Y%m%dT%H%M%SZ").to_string(), "{b}");
    }
    // `list` shows a complete backup's size as `backups show` (the manifest's total) does.
    let newest = &list.json()["backups"][0];
    let show = mongoshift(
        dir.path(),
        [
            "backups",
            "show",
            newest["id"].as_str().unwrap(),
            "--from",
            to_s,
            "--output",
            "json",
        ],
    );
    show.assert_code(0);
    assert_eq!(
        newest["stored_bytes"],
        show.json()["totals"]["stored_bytes"],
        "{newest}"
    );
    // No terminal, no --yes: refuse, delete nothing.
    let r = mongoshift(
        dir.path(),
        ["backups", "prune", "--keep-last", "1", "--from", to_s],
    );
    r.assert_code(2);
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    let dry = mongoshift(
        dir.path(),
        [
            "backups",
            "prune",
            "--keep-last",
            "1",
            "--dry-run",
            "--from",
            to_s,
        ],
    );
    dry.assert_code(0);
    assert_eq!(std::fs::read_dir(&to).unwrap().count(), 3);
    // keep-last never deletes incomplete backups; older-than does, past the age.
    mongoshift(
        dir.path(),
        [
            "backups",
            "prune",
            "--keep-last",
            "1",
            "--yes",
            "--from",
            to_s,
        ],
    )
    .assert_code(0);
    assert_eq!(std::fs::read_dir(&to).unwrap().count(), 2);
    mongoshift(
        dir.path(),
        [
            "backups",
            "prune",
            "--older-than",
            "30d",
            "--yes",
            "--from",
            to_s,
        ],
    )
    .assert_code(0);
    let left: Vec<String> = std::fs::read_dir(&to)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 1);
    assert!(left[0].ends_with("-two"), "{left:?}");
    // Nothing left to prune: --output json still prints JSON, the same shape as a prune.
    for dry in [true, false] {
        let mut args = vec![
            "--output",
            "json",
            "backups",
            "prune",
            "--keep-last",
            "1",
            "--yes",
            "--from",
            to_s,
        ];
        if dry {
            args.push("--dry-run");
        }
        let r = mongoshift(dir.path(), args);
        r.assert_code(0);
        let j = r.json();
        assert_eq!(j["dry_run"], dry, "{j}");
        let key = if dry { "would_delete" } else { "deleted" };
        assert_eq!(j[key], serde_json::json!([]), "{j}");
    }
}

/// The oplog filter of a point-in-time backup, run against the real oplog: without --db it
/// keeps a database created during the backup (and its transactions) and leaves out
/// admin/config/local; with databases named it keeps nothing of any other.
#[test]
fn oplog_scope_keeps_new_databases_and_only_in_scope_transactions() {
    use mongoshift::mongo::oplog::{self, OplogScope};
    let newdb = common::unique_db("born");
    let other = common::unique_db("other");
    let scratch = common::unique_db("cfg");
    let (all, named) = block_on(async {
        let c = client(&servers().rs_uri).await;
        let start = oplog::latest(&c).await.unwrap();
        let born = c.database(&newdb).collection::<Document>("born");
        born.insert_one(doc! { "_id": 1 }).await.unwrap();
        let mut s = c.start_session().await.unwrap();
        s.start_transaction().await.unwrap();
        born.insert_one(doc! { "_id": 2 })
            .session(&mut s)
            .await
            .unwrap();
        born.insert_one(doc! { "_id": 3 })
            .session(&mut s)
            .await
            .unwrap();
        s.commit_transaction().await.unwrap();
        let cfg = c.database("config").collection::<Document>(&scratch);
        cfg.insert_one(doc! { "_id": 1 }).await.unwrap();
        cfg.drop().await.unwrap();
        c.database(&other)
            .collection::<Document>("x")
            .insert_one(doc! { "_id": 1 })
            .await
            .unwrap();
        let oplog = c.database("local").collection::<Document>("oplog.rs");
        let mut out = Vec::new();
        for scope in [
            OplogScope::AllUserDatabases,
            OplogScope::Databases(vec![other.clone()]),
        ] {
            let mut cur = oplog.find(scope.filter(start)).await.unwrap();
            let mut entries = Vec::new();
            while cur.advance().await.unwrap() {
                entries.push(cur.deserialize_current().unwrap());
            }
            out.push(entries);
        }
        (out.remove(0), out.remove(0))
    });
    let touches = |e: &Document, db: &str| {
        let prefix = format!("{db}.");
        e.get_str("ns").unwrap_or_default().starts_with(&prefix)
            || e.get_document("o")
                .ok()
                .and_then(|o| o.get_array("applyOps").ok())
                .is_some_and(|ops| {
                    ops.iter().any(|op| {
                        op.as_document()
                            .and_then(|op| op.get_str("ns").ok())
                            .is_some_and(|ns| ns.starts_with(&prefix))
                    })
                })
    };
    let is_txn = |e: &Document| e.get_str("ns").ok() == Some("admin.$cmd");
    assert!(
        all.iter().any(|e| touches(e, &newdb) && !is_txn(e)),
        "the new database's insert"
    );
    assert!(
        all.iter().any(|e| touches(e, &newdb) && is_txn(e)),
        "its transaction"
    );
    assert!(all.iter().any(|e| touches(e, &other)));
    for e in &all {
        let ns = e.get_str("ns").unwrap();
        assert!(
            ns == "admin.$cmd"
                || !(ns.starts_with("admin.")
                    || ns.starts_with("config.")
                    || ns.starts_with("local.")
                    || ns.is_empty()),
            "a system or no-op entry kept: {e}"
        );
    }
    assert!(named.iter().any(|e| touches(e, &other)));
    assert!(
        !named.iter().any(|e| touches(e, &newdb)),
        "an entry of a database outside the scope"
    );
}

/// The tables people read: an empty collection has no ratio (not "0.0x"), and the oplog's
/// range is shown as times, not raw `Timestamp(…)` values.
#[test]
fn tables_show_no_ratio_for_empty_collections_and_oplog_times() {
    let db = common::unique_db("tbl");
    block_on(async {
        let c = client(&servers().rs_uri).await;
        c.database(&db).create_collection("nothing").await.unwrap();
        c.database(&db)
            .collection::<mongodb::bson::Document>("some")
            .insert_one(mongodb::bson::doc! { "x": 1 })
            .await
            .unwrap();
    });
    let dir = tempdir();
    let to = dir.path().join("b");
    let run = mongoshift(
        dir.path(),
        [
            "backup",
            "--uri",
            &servers().rs_uri,
            "--db",
            &db,
            "--to",
            to.to_str().unwrap(),
            "--compress",
            "gzip",
            "--oplog",
        ],
    );
    run.assert_code(0);
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains(&format!("{db}.nothing")))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(!line.contains("0.0x"), "{line}");
    let show = mongoshift(
        dir.path(),
        ["backups", "show", "latest", "--from", to.to_str().unwrap()],
    );
    show.assert_code(0);
    assert!(!show.stdout.contains("Timestamp("), "{}", show.stdout);
    assert!(show.stdout.contains(" UTC"), "{}", show.stdout);
}
