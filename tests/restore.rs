//! `restore` against the real servers: the genuine mongodump 100.8.0 fixtures,
//! round trips of our own backups, corruption, resume, conflicts and dry runs.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{block_on, client, hashes, mongoshift, schema_of, servers, tempdir, Run};
use mongodb::bson::{doc, Bson, Document};

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mongodump-100.8.0")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn expected(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(&format!("expected/{name}"))).unwrap())
        .unwrap()
}

/// Sort object keys recursively so that key order (lost in the expected files) does not matter.
fn canonical(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let sorted: BTreeMap<String, serde_json::Value> =
                m.iter().map(|(k, v)| (k.clone(), canonical(v))).collect();
            serde_json::Value::Object(sorted.into_iter().collect())
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

fn ext(d: &Document) -> serde_json::Value {
    canonical(&Bson::Document(d.clone()).into_canonical_extjson())
}

/// Compare one restored database with an expected-state file: counts, dbHash, indexes, options.
/// With `renamed`, system.views (whose _id embeds the database name) and the database md5
/// cannot match the expected file; the view definitions are compared instead.
fn assert_matches_expected(uri: &str, target_db: &str, exp: &serde_json::Value, renamed: bool) {
    block_on(async {
        let c = client(uri).await;
        let db = c.database(target_db);
        let hash = db.run_command(doc! { "dbHash": 1 }).await.unwrap();
        let hashes = hash.get_document("collections").unwrap();
        let specs: Vec<Document> = {
            let mut cur = db
                .run_cursor_command(doc! { "listCollections": 1 })
                .await
                .unwrap();
            let mut v = Vec::new();
            while cur.advance().await.unwrap() {
                v.push(cur.deserialize_current().unwrap());
            }
            v
        };
        for (name, e) in exp["collections"].as_object().unwrap() {
            if let Some(count) = e.get("count") {
                let n = db
                    .collection::<Document>(name)
                    .count_documents(doc! {})
                    .await
                    .unwrap();
                assert_eq!(n, count.as_u64().unwrap(), "{target_db}.{name} count");
            }
            if renamed && name == "system.views" {
                continue;
            }
            if let Some(h) = e.get("dbHash") {
                assert_eq!(
                    hashes.get_str(name).unwrap_or("missing"),
                    h.as_str().unwrap(),
                    "{target_db}.{name} dbHash"
                );
            }
            if let Some(idx) = e.get("indexes") {
                let mut got: Vec<serde_json::Value> = {
                    let mut cur = db
                        .run_cursor_command(doc! { "listIndexes": name })
                        .await
                        .unwrap();
                    let mut v = Vec::new();
                    while cur.advance().await.unwrap() {
                        let mut d: Document = cur.deserialize_current().unwrap();
                        d.remove("ns");
                        v.push(ext(&d));
                    }
                    v
                };
                let mut want: Vec<serde_json::Value> =
                    idx.as_array().unwrap().iter().map(canonical).collect();
                got.sort_by_key(|v| v.to_string());
                want.sort_by_key(|v| v.to_string());
                assert_eq!(got, want, "{target_db}.{name} indexes");
            }
            if e["type"] != "collection" || name != "system.views" {
                if let Some(spec) = specs
                    .iter()
                    .find(|s| s.get_str("name").ok() == Some(name.as_str()))
                {
                    let opts = ext(spec.get_document("options").unwrap());
                    assert_eq!(opts, canonical(&e["options"]), "{target_db}.{name} options");
                }
            }
        }
        if !renamed {
            assert_eq!(
                hash.get_str("md5").unwrap(),
                exp["md5"].as_str().unwrap(),
                "{target_db} database md5"
            );
        }
    });
}

fn restore_fixture(source: &str, expected_file: &str, extra: &[&str]) {
    let tag = common::unique_db("fx");
    let dir = tempdir();
    let mut args = vec![
        "restore".to_string(),
        "--from".into(),
        fixture(source),
        "--uri".into(),
        servers().standalone_uri.clone(),
        "--yes".into(),
    ];
    for db in ["predixi", "analytics"] {
        args.extend([
            "--ns-from".into(),
            format!("{db}.*"),
            "--ns-to".into(),
            format!("{tag}_{db}.*"),
        ]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let run = mongoshift(dir.path(), &args);
    run.assert_code(0);
    let exp = expected(expected_file);
    for db in ["predixi", "analytics"] {
        assert_matches_expected(
            &servers().standalone_uri,
            &format!("{tag}_{db}"),
            &exp[db],
            true,
        );
    }
}

#[test]
fn fixture_dir_plain_matches_expected() {
    restore_fixture("dir-plain", "static.json", &[]);
}

#[test]
fn fixture_dir_gzip_matches_expected() {
    restore_fixture("dir-gzip", "static.json", &[]);
}

#[test]
fn fixture_archive_plain_matches_expected() {
    restore_fixture("archive-plain.archive", "static.json", &[]);
}

#[test]
fn fixture_archive_gzip_matches_expected() {
    restore_fixture("archive-gzip.archive.gz", "static.json", &[]);
}

#[test]
fn fixture_dir_oplog_with_replay_matches_post_oplog_state() {
    restore_fixture(
        "dir-oplog-plain",
        "oplog-dir-plain.json",
        &["--oplog-replay"],
    );
}

#[test]
fn fixture_archive_oplog_with_replay_matches_post_oplog_state() {
    restore_fixture(
        "oplog-archive-gzip.archive.gz",
        "oplog-archive-gzip.json",
        &["--oplog-replay"],
    );
}

/// mongodump --gzip --oplog gzips every file and adds `.gz` to every name but the oplog's:
/// that one stays `oplog.bson` (mongodump/prepare.go), which is the only name mongorestore
/// looks for. Build such a folder from the plain fixture.
fn gzip_as_mongodump(from: &std::path::Path, to: &std::path::Path, top: bool) {
    use std::io::Write;
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            gzip_as_mongodump(&path, &to.join(&name), false);
            continue;
        }
        let dest = if top && name == "oplog.bson" {
            to.join(name)
        } else {
            to.join(format!("{name}.gz"))
        };
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&std::fs::read(&path).unwrap()).unwrap();
        std::fs::write(dest, gz.finish().unwrap()).unwrap();
    }
}

#[test]
fn mongodump_gzip_folder_with_its_gzipped_oplog_bson_replays() {
    let dir = tempdir();
    let dump = dir.path().join("dump");
    gzip_as_mongodump(&PathBuf::from(fixture("dir-oplog-plain")), &dump, true);
    restore_fixture(
        dump.to_str().unwrap(),
        "oplog-dir-plain.json",
        &["--oplog-replay"],
    );
}

#[test]
fn fixture_restored_under_original_names_matches_every_hash() {
    // The one test that owns predixi/analytics on the standalone server.
    let dir = tempdir();
    let run = mongoshift(
        dir.path(),
        [
            "restore",
            "--from",
            &fixture("dir-gzip"),
            "--uri",
            &servers().standalone_uri,
            "--drop",
            "--yes",
        ],
    );
    run.assert_code(0);
    let exp = expected("static.json");
    for db in ["predixi", "analytics"] {
        assert_matches_expected(&servers().standalone_uri, db, &exp[db], false);
    }
}

fn index_names(uri: &str, db: &str, coll: &str) -> Vec<String> {
    block_on(async {
        let c = client(uri).await;
        let mut names = c
            .database(db)
            .collection::<Document>(coll)
            .list_index_names()
            .await
            .unwrap();
        names.sort();
        names
    })
}

/// A small source database with an index, a validator, a capped collection and a view.
fn source_db() -> String {
    use std::sync::OnceLock;
    static D: OnceLock<String> = OnceLock::new();
    D.get_or_init(|| {
        let db = common::unique_db("rsrc");
        block_on(async {
            let c = client(&servers().rs_uri).await;
            let d = c.database(&db);
            common::load_sample(&d, 2.0, 7).await;
            d.create_collection("kyc")
                .validator(doc! { "$jsonSchema": { "required": ["level"] } })
                .await
                .unwrap();
            d.collection::<Document>("kyc")
                .insert_one(doc! { "level": 1 })
                .await
                .unwrap();
            d.create_collection("events")
                .capped(true)
                .size(1 << 20)
                .await
                .unwrap();
            d.collection::<Document>("events")
                .insert_many((0..50).map(|i| doc! { "i": i }))
                .await
                .unwrap();
            d.create_collection("open_markets")
                .view_on("markets".to_string())
                .pipeline(vec![doc! { "$match": { "status": "open" } }])
                .await
                .unwrap();
            // A time-series collection: its data is its buckets (system.buckets.ticks).
            d.run_command(doc! { "create": "ticks", "timeseries": { "timeField": "at", "metaField": "market", "granularity": "seconds" }, "expireAfterSeconds": 86_400 * 365 })
                .await
                .unwrap();
            d.collection::<Document>("ticks")
                .create_index(
                    mongodb::IndexModel::builder()
                        .keys(doc! { "market": 1, "at": -1 })
                        .build(),
                )
                .await
                .unwrap();
            let now = mongodb::bson::DateTime::now().timestamp_millis();
            d.collection::<Document>("ticks")
                .insert_many((0..3_000i64).map(|i| {
                    doc! {
                        "at": mongodb::bson::DateTime::from_millis(now - i * 1_000),
                        "market": format!("m{}", i % 20),
                        "price": Bson::Decimal128(format!("0.{:02}", i % 100).parse().unwrap()),
                    }
                }))
                .await
                .unwrap();
        });
        db
    })
    .clone()
}

fn backup_to_folder(dir: &std::path::Path, compression: &str) -> (String, String) {
    let to = dir.join("backups");
    let run = mongoshift(
        dir,
        [
            "backup",
            "--uri",
            &servers().rs_uri,
            "--db",
            &source_db(),
            "--to",
            to.to_str().unwrap(),
            "--compress",
            compression,
            "--output",
            "json",
            "-q",
        ],
    );
    run.assert_code(0);
    (
        to.to_string_lossy().into_owned(),
        run.json()["backup_id"].as_str().unwrap().to_string(),
    )
}

#[test]
fn round_trip_each_compression_with_rename_keeps_hashes_indexes_and_options() {
    let src = source_db();
    for comp in ["zstd", "gzip", "none"] {
        let dir = tempdir();
        let (loc, id) = backup_to_folder(dir.path(), comp);
        let target = common::unique_db(&format!("rt{comp}"));
        let plan = restore_renamed(
            dir.path(),
            &format!("{loc}/{id}"),
            &src,
            &target,
            &["--dry-run", "--output", "json"],
        );
        plan.assert_code(0);
        let run = mongoshift(
            dir.path(),
            [
                "restore",
                "--from",
                &format!("{loc}/{id}"),
                "--uri",
                &servers().standalone_uri,
                "--yes",
                "--ns-from",
                &format!("{src}.$coll$"),
                "--ns-to",
                &format!("{target}.$coll$"),
                "--output",
                "json",
            ],
        );
        run.assert_code(0);
        assert_eq!(run.json()["ok"], true);
        // The plan counts indexes as the result and `backups show` do (`_id_` included).
        for ns in run.json()["namespaces"].as_array().unwrap() {
            let planned = plan.json()["plan"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["target"] == ns["target"])
                .unwrap()["indexes"]
                .clone();
            assert_eq!(planned, ns["indexes"], "{ns}");
        }
        assert_eq!(
            hashes(&servers().rs_uri, &src),
            hashes(&servers().standalone_uri, &target),
            "{comp}"
        );
        assert_eq!(
            index_names(&servers().rs_uri, &src, "users"),
            index_names(&servers().standalone_uri, &target, "users")
        );
        // Options (validator, capped, view definitions) and every index, field for field.
        assert_eq!(
            schema_of(&servers().rs_uri, &src),
            schema_of(&servers().standalone_uri, &target),
            "{comp}"
        );
        block_on(async {
            let c = client(&servers().standalone_uri).await;
            let specs: Vec<String> = c.database(&target).list_collection_names().await.unwrap();
            assert!(specs.contains(&"open_markets".to_string()));
            let n = c
                .database(&target)
                .collection::<Document>("open_markets")
                .count_documents(doc! {})
                .await
                .unwrap();
            assert!(n > 0, "the view works on the renamed database");
        });
    }
}

#[test]
fn latest_from_garage_restores() {
    let src = source_db();
    let loc = common::s3_location("rlatest");
    let dir = tempdir();
    let mut args = vec![
        "backup".to_string(),
        "--uri".into(),
        servers().rs_uri.clone(),
        "--db".into(),
        src.clone(),
        "--to".into(),
        loc.clone(),
        "-q".into(),
    ];
    args.extend(common::s3_flags());
    common::Cli::new(dir.path())
        .s3_env()
        .run(&args)
        .assert_code(0);
    let target = common::unique_db("rs3");
    let mut r = vec![
        "restore".to_string(),
        "--from".into(),
        format!("{loc}/latest"),
        "--uri".into(),
        servers().standalone_uri.clone(),
        "--yes".into(),
        "--ns-from".into(),
        format!("{src}.*"),
        "--ns-to".into(),
        format!("{target}.*"),
    ];
    r.extend(common::s3_flags());
    let run = common::Cli::new(dir.path()).s3_env().run(&r);
    run.assert_code(0);
    assert!(!run.all().contains(&servers().s3_secret_key));
    assert_eq!(
        hashes(&servers().rs_uri, &src),
        hashes(&servers().standalone_uri, &target)
    );
}

/// `restore --from FROM --uri <standalone> --yes --ns-from SRC.* --ns-to TARGET.* EXTRA...`
fn restore_renamed(
    dir: &std::path::Path,
    from: &str,
    src: &str,
    target: &str,
    extra: &[&str],
) -> Run {
    let mut args = vec![
        "restore".to_string(),
        "--from".into(),
        from.into(),
        "--uri".into(),
        servers().standalone_uri.clone(),
        "--yes".into(),
        "--ns-from".into(),
        format!("{src}.*"),
        "--ns-to".into(),
        format!("{target}.*"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    mongoshift(dir, &args)
}

fn corrupt_and_restore(mutate: impl Fn(&mut Vec<u8>)) -> (Run, String) {
    let dir = tempdir();
    let (loc, id) = backup_to_folder(dir.path(), "zstd");
    let key = format!("{}/bets.bson.zst", source_db());
    let path = PathBuf::from(&loc).join(&id).join(&key);
    let mut bytes = std::fs::read(&path).unwrap();
    mutate(&mut bytes);
    std::fs::write(&path, &bytes).unwrap();
    let target = common::unique_db("rbad");
    let run = restore_renamed(
        dir.path(),
        &format!("{loc}/{id}"),
        &source_db(),
        &target,
        &[],
    );
    (run, key)
}

#[test]
fn a_flipped_byte_fails_the_restore_naming_the_object() {
    let (run, key) = corrupt_and_restore(|b| {
        let mid = b.len() / 2;
        b[mid] ^= 0x01;
    });
    assert_ne!(run.code, 0, "{}", run.all());
    assert!(run.all().contains(&key), "{}", run.all());
    assert!(run.all().contains("corrupt"), "{}", run.all());
}

#[test]
fn a_truncated_object_fails_the_restore_naming_the_object() {
    let (run, key) = corrupt_and_restore(|b| b.truncate(b.len() * 2 / 3));
    assert_ne!(run.code, 0, "{}", run.all());
    assert!(run.all().contains(&key), "{}", run.all());
    // Re-running reads the same damaged bytes: no advice to --resume.
    assert!(
        !run.all().contains("--resume") && run.all().contains("re-running cannot help"),
        "{}",
        run.all()
    );
}

#[test]
fn non_empty_target_without_drop_or_append_writes_nothing() {
    let dir = tempdir();
    let (loc, id) = backup_to_folder(dir.path(), "zstd");
    let target = common::unique_db("rconf");
    common::insert(
        &servers().standalone_uri,
        &target,
        "users",
        vec![doc! { "x": 1 }],
    );
    let before = hashes(&servers().standalone_uri, &target);
    let run = restore_renamed(
        dir.path(),
        &format!("{loc}/{id}"),
        &source_db(),
        &target,
        &[],
    );
    run.assert_code(2);
    assert!(
        run.stderr.contains(&format!("{target}.users")),
        "{}",
        run.stderr
    );
    assert_eq!(
        before,
        hashes(&servers().standalone_uri, &target),
        "nothing was written"
    );
    // The dry run answers as the real run would: it would refuse (exit 2), and says so.
    let run = restore_renamed(
        dir.path(),
        &format!("{loc}/{id}"),
        &source_db(),
        &target,
        &["--dry-run"],
    );
    run.assert_code(2);
    assert!(
        run.stderr.contains("the real run would refuse"),
        "{}",
        run.stderr
    );
    // --drop replaces it; --append then reports the duplicates.
    let run = restore_renamed(
        dir.path(),
        &format!("{loc}/{id}"),
        &source_db(),
        &target,
        &["--drop"],
    );
    run.assert_code(0);
    // --resume after a restore that finished cleanly: nothing to continue, and it says so.
    let run = restore_renamed(
        dir.path(),
        &format!("{loc}/{id}"),
        &source_db(),
        &target,
        &["--resume"],
    );
    run.assert_code(2);
    assert!(
        run.stderr.contains("--resume found no interrupted restore"),
        "{}",
        run.stderr
    );
    let run = restore_renamed(
        dir.path(),
        &format!("{loc}/{id}"),
        &source_db(),
        &target,
        &[
            "--append",
            "--ns-include",
            &format!("{}.users", source_db()),
            "--output",
            "json",
        ],
    );
    run.assert_code(0);
    let users = &run.json()["namespaces"][0];
    assert_eq!(users["duplicates"], users["read"], "{users}");
}

#[test]
fn dry_run_reports_real_counts_and_writes_nothing() {
    let dir = tempdir();
    let target = common::unique_db("rdry");
    common::insert(
        &servers().standalone_uri,
        &target,
        "marker",
        vec![doc! { "x": 1 }],
    );
    let before = hashes(&servers().standalone_uri, &target);
    let run = mongoshift(
        dir.path(),
        [
            "restore",
            "--from",
            &fixture("archive-gzip.archive.gz"),
            "--uri",
            &servers().standalone_uri,
            "--dry-run",
            "--ns-from",
            "predixi.*",
            "--ns-to",
            &format!("{target}.*"),
            "--ns-include",
            "predixi.*",
            "--output",
            "json",
        ],
    );
    run.assert_code(0);
    let plan = run.json()["plan"].as_array().unwrap().clone();
    let users = plan
        .iter()
        .find(|p| p["source"] == "predixi.users")
        .unwrap();
    assert_eq!(users["documents"], 2000);
    let bets = plan.iter().find(|p| p["source"] == "predixi.bets").unwrap();
    assert_eq!(bets["documents"], 5000);
    assert_eq!(before, hashes(&servers().standalone_uri, &target));
}

#[test]
fn without_a_terminal_and_without_yes_restore_refuses() {
    let dir = tempdir();
    let target = common::unique_db("rnoyes");
    let run = mongoshift(
        dir.path(),
        [
            "restore",
            "--from",
            &fixture("dir-plain"),
            "--uri",
            &servers().standalone_uri,
            "--ns-from",
            "predixi.*",
            "--ns-to",
            &format!("{target}.*"),
            "--ns-include",
            "predixi.users",
        ],
    );
    run.assert_code(2);
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    assert!(hashes(&servers().standalone_uri, &target).is_empty());
}

#[test]
fn archive_from_stdin_restores() {
    let dir = tempdir();
    let target = common::unique_db("rstdin");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mongoshift"))
        .current_dir(dir.path())
        .args([
            "restore",
            "--from",
            "-",
            "--uri",
            &servers().standalone_uri,
            "--yes",
            "--ns-include",
            "analytics.*",
            "--ns-from",
            "analytics.*",
            "--ns-to",
            &format!("{target}.*"),
        ])
        .stdin(std::fs::File::open(fixture("archive-plain.archive")).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exp = expected("static.json");
    assert_eq!(
        hashes(&servers().standalone_uri, &target)["daily"],
        exp["analytics"]["collections"]["daily"]["dbHash"]
            .as_str()
            .unwrap()
    );
}

#[test]
fn killed_restore_resumes_to_identical_hashes_without_duplicates() {
    // A source big enough that a restore is still running when it is killed.
    let src = common::unique_db("rkill");
    block_on(async {
        let c = client(&servers().rs_uri).await;
        mongoshift::sample::load(&c.database(&src), 60.0, 3, |_, _| {})
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
            &src,
            "--to",
            to.to_str().unwrap(),
            "--output",
            "json",
            "-q",
        ],
    );
    run.assert_code(0);
    let from = format!(
        "{}/{}",
        to.display(),
        run.json()["backup_id"].as_str().unwrap()
    );
    let target = common::unique_db("rkilled");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "restore".to_string(),
            "--from".into(),
            from.clone(),
            "--uri".into(),
            servers().standalone_uri.clone(),
            "--yes".into(),
            "--parallel".into(),
            "1".into(),
            "--ns-from".into(),
            format!("{src}.*"),
            "--ns-to".into(),
            format!("{target}.*"),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mongoshift"))
        .current_dir(dir.path())
        // Spaced (60 MB at 12 MB/s) so that the kill lands during the data on any machine.
        .args(args(&["--max-rate", "12MB"]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill (no chance to clean up) once some data has landed.
    for _ in 0..1000 {
        let n: u64 = block_on(async {
            let c = client(&servers().standalone_uri).await;
            let mut total = 0;
            for coll in ["bets", "comments", "markets", "transactions", "users"] {
                total += c
                    .database(&target)
                    .collection::<Document>(coll)
                    .estimated_document_count()
                    .await
                    .unwrap_or(0);
            }
            total
        });
        if n > 20_000 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the restore finished before it was killed; make the source bigger"
    );
    // The same command without --resume refuses the half-filled targets and says how to
    // continue (issue #27).
    let run = mongoshift(dir.path(), args(&[]));
    run.assert_code(2);
    assert!(
        run.stderr.contains("re-run the same command with --resume"),
        "{}",
        run.stderr
    );
    let run = mongoshift(dir.path(), args(&["--resume"]));
    run.assert_code(0);
    assert_eq!(
        hashes(&servers().rs_uri, &src),
        hashes(&servers().standalone_uri, &target)
    );
}

#[test]
fn restore_drill_restores_verifies_and_drops_the_scratch_database() {
    let dir = tempdir();
    let (loc, id) = backup_to_folder(dir.path(), "zstd");
    let run = mongoshift(
        dir.path(),
        [
            "backups",
            "verify",
            &id,
            "--restore-test",
            "--uri",
            &servers().standalone_uri,
            "--from",
            &loc,
        ],
    );
    run.assert_code(0);
    assert!(
        run.stdout.contains("restore drill passed"),
        "{}",
        run.stdout
    );
    let scratch = format!("mongoshift_restore_test_{}", id.to_ascii_lowercase());
    let dbs = block_on(async {
        client(&servers().standalone_uri)
            .await
            .list_database_names()
            .await
            .unwrap()
    });
    assert!(!dbs.contains(&scratch), "{scratch} was not dropped");
}

/// Upload a fixture (file or folder) under a fresh S3 prefix; returns its s3:// location.
fn upload_fixture(name: &str) -> String {
    let loc = common::s3_location("fxs3");
    let st = block_on(common::store(&loc));
    let base = PathBuf::from(fixture(name));
    let files: Vec<(String, Vec<u8>)> = if base.is_dir() {
        common::read_tree(&base)
            .into_iter()
            .map(|(p, b)| {
                (
                    p.strip_prefix(&base)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                    b,
                )
            })
            .collect()
    } else {
        vec![(name.to_string(), std::fs::read(&base).unwrap())]
    };
    for (key, bytes) in files {
        block_on(st.put(&key, bytes)).unwrap();
    }
    if base.is_dir() {
        loc
    } else {
        format!("{loc}/{name}")
    }
}

fn restore_from_s3(from: &str, target: &str, extra: &[&str]) -> Run {
    let dir = tempdir();
    let mut args = vec![
        "restore".to_string(),
        "--from".into(),
        from.into(),
        "--uri".into(),
        servers().standalone_uri.clone(),
        "--yes".into(),
        "--ns-include".into(),
        "predixi.*".into(),
        "--ns-from".into(),
        "predixi.*".into(),
        "--ns-to".into(),
        format!("{target}.*"),
        "--output".into(),
        "json".into(),
    ];
    args.extend(common::s3_flags());
    args.extend(extra.iter().map(|s| s.to_string()));
    common::Cli::new(dir.path()).s3_env().run(&args)
}

#[test]
fn mongodump_folder_and_archive_on_s3_restore() {
    let exp = expected("static.json");
    for fx in ["dir-gzip", "archive-gzip.archive.gz"] {
        let target = common::unique_db("rs3fx");
        let run = restore_from_s3(&upload_fixture(fx), &target, &[]);
        run.assert_code(0);
        assert!(!run.all().contains(&servers().s3_secret_key));
        let got = hashes(&servers().standalone_uri, &target);
        assert_eq!(
            got["users"],
            exp["predixi"]["collections"]["users"]["dbHash"]
                .as_str()
                .unwrap(),
            "{fx}"
        );
        assert_eq!(
            got["bets"],
            exp["predixi"]["collections"]["bets"]["dbHash"]
                .as_str()
                .unwrap(),
            "{fx}"
        );
    }
}

#[test]
fn oplog_limit_stops_replay_before_the_given_timestamp() {
    let dir = tempdir();
    let target = common::unique_db("rlimit");
    // A limit before every entry: the data loads, no oplog entry is applied.
    let run = restore_renamed(
        dir.path(),
        &fixture("dir-oplog-plain"),
        "predixi",
        &target,
        &[
            "--ns-include",
            "predixi.*",
            "--oplog-replay",
            "--oplog-limit",
            "1",
            "--output",
            "json",
        ],
    );
    run.assert_code(0);
    assert_eq!(run.json()["oplog"]["applied"], 0, "{}", run.stdout);
    let full = restore_renamed(
        dir.path(),
        &fixture("dir-oplog-plain"),
        "predixi",
        &common::unique_db("rnolimit"),
        &[
            "--ns-include",
            "predixi.*",
            "--oplog-replay",
            "--output",
            "json",
        ],
    );
    full.assert_code(0);
    assert!(full.json()["oplog"]["applied"].as_u64().unwrap() > 0);
}

/// A genuine `mongodump --archive --gzip` made now by the stock 100.8.0 tool, of the
/// predixi-shaped source with its time-series collection (the case the fixtures lack),
/// restores with every collection's hash, options and indexes equal to the source's.
#[test]
fn fresh_stock_mongodump_gzip_archive_with_time_series_restores() {
    let src = source_db();
    let dir = tempdir();
    let archive = dir.path().join("dump.archive.gz");
    common::run_stock(
        "mongodump",
        &[
            "--uri",
            &servers().rs_uri,
            "--db",
            &src,
            &format!("--archive={}", archive.display()),
            "--gzip",
        ],
    );
    let target = common::unique_db("rmdts");
    let run = mongoshift(
        dir.path(),
        [
            "restore",
            "--from",
            archive.to_str().unwrap(),
            "--uri",
            &servers().standalone_uri,
            "--ns-from",
            &format!("{src}.*"),
            "--ns-to",
            &format!("{target}.*"),
            "--yes",
            "--output",
            "json",
        ],
    );
    run.assert_code(0);
    let ticks = run.json()["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["target"] == format!("{target}.ticks"))
        .cloned()
        .expect("the time-series collection is restored");
    assert_eq!(ticks["ok"], true, "{ticks}");
    let want = hashes(&servers().rs_uri, &src);
    assert!(want.contains_key("system.buckets.ticks"), "{want:?}");
    assert_eq!(want, hashes(&servers().standalone_uri, &target));
    assert_eq!(
        schema_of(&servers().rs_uri, &src),
        schema_of(&servers().standalone_uri, &target)
    );
}

/// A source that is not there is one cause with one exit code (2), with or without `/latest`.
#[test]
fn a_missing_source_is_invalid_input_either_way() {
    let dir = tempdir();
    let missing = dir.path().join("no-such-folder");
    for from in [
        missing.display().to_string(),
        format!("{}/latest", missing.display()),
        format!("{}/20261122T041000Z", missing.display()),
    ] {
        let run = mongoshift(
            dir.path(),
            [
                "restore",
                "--from",
                &from,
                "--uri",
                &servers().standalone_uri,
                "--yes",
            ],
        );
        run.assert_code(2);
        assert!(
            run.stderr.contains("does not exist"),
            "{from}: {}",
            run.stderr
        );
    }
    // A bucket that does not exist is the same mistake (issue #27: it was exit 1), as are a
    // missing --oplog-file and a backup location without the backup.
    let s3 = common::s3_flags();
    let bucket = common::s3_location("nobackup");
    for (from, extra) in [
        ("s3://no-such-bucket-27/x/latest".to_string(), vec![]),
        (format!("{bucket}/latest"), vec![]),
        (
            dir.path().display().to_string(),
            vec!["--oplog-replay", "--oplog-file", "/no/such/oplog.bson"],
        ),
    ] {
        let mut args = vec![
            "restore".to_string(),
            "--from".into(),
            from.clone(),
            "--uri".into(),
            servers().standalone_uri.clone(),
            "--yes".into(),
        ];
        args.extend(s3.iter().cloned());
        args.extend(extra.iter().map(|s| s.to_string()));
        let run = common::Cli::new(dir.path()).s3_env().run(&args);
        run.assert_code(2);
        assert!(run.stderr.starts_with("error:"), "{from}: {}", run.stderr);
    }
}

/// The count after a load takes the server's own number only for a collection this run
/// created (since the target's process began) and only when it is the number expected;
/// anything else is counted by reading every document, so a mismatch shows the real count.
#[test]
fn the_counts_after_a_load_trust_the_servers_number_only_where_it_confirms() {
    use mongoshift::load::count::{Counter, How};
    use mongoshift::namespace::Namespace;
    let uri = &servers().standalone_uri;
    let db = common::unique_db("count");
    let (fresh, older) = (Namespace::new(&db, "fresh"), Namespace::new(&db, "older"));
    for ns in [&fresh, &older] {
        common::insert(
            uri,
            &db,
            &ns.coll,
            (0..3).map(|i| doc! { "_id": i }).collect(),
        );
    }
    block_on(async {
        let c = client(uri).await;
        let counter = Counter::default();
        counter.begin(&c).await;
        counter.created(&fresh);
        assert_eq!(
            counter.count(&c, &fresh, 3).await.unwrap(),
            (3, How::Metadata)
        );
        // Once only: a second count of it (or one another run may have written) is a scan.
        assert_eq!(counter.count(&c, &fresh, 3).await.unwrap(), (3, How::Scan));
        counter.created(&fresh);
        assert_eq!(
            counter.count(&c, &fresh, 4).await.unwrap(),
            (3, How::Scan),
            "a number other than the expected one is checked by reading the documents"
        );
        assert_eq!(counter.count(&c, &older, 3).await.unwrap(), (3, How::Scan));
        // A source's count after a copy: the server's number when it confirms what was
        // read, the documents counted when it does not.
        use mongoshift::load::count::confirmed;
        assert_eq!(
            confirmed(&c, &older, "source", 3).await.unwrap(),
            (3, How::Metadata)
        );
        assert_eq!(
            confirmed(&c, &older, "source", 2).await.unwrap(),
            (3, How::Scan)
        );
        c.database(&db).drop().await.unwrap();
    });
}
