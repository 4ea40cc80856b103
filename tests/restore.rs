//! `restore` against the real servers: the genuine mongodump 100.8.0 fixtures,
//! round trips of our own backups, corruption, resume, conflicts and dry runs.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{block_on, client, mongoshift, servers, tempdir, Run};
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

#[allow(dead_code)]
fn run_ok(run: Run) -> Run {
    run.assert_code(0);
    run
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
