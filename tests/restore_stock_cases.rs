//! Issue #21, points 9–12 (points 1–8 and 13 are in `oplog_replay.rs`): what a failed
//! restore says and leaves behind, time-series dumps holding buckets the server refuses,
//! legacy index specs, `--preserve-uuid`, and users and roles from an archive — each
//! against the real servers, compared with stock mongorestore 100.8.0 where the issue says.

mod common;

use std::path::Path;

use common::{block_on, client, mongoshift, run_stock, servers, tempdir, unique_db};
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

/// A time-series collection as comparable values: its buckets by `_id` (relaxed Extended
/// JSON) and its indexes by name.
fn timeseries_state(uri: &str, db: &str, coll: &str) -> (Vec<String>, Vec<String>) {
    block_on(async {
        let c = client(uri).await;
        let d = c.database(db);
        let mut buckets = vec![];
        let mut cur = d
            .collection::<Document>(&format!("system.buckets.{coll}"))
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .await
            .unwrap();
        while cur.advance().await.unwrap() {
            let b: Document = cur.deserialize_current().unwrap();
            buckets.push(
                mongodb::bson::Bson::Document(b)
                    .into_relaxed_extjson()
                    .to_string(),
            );
        }
        let mut indexes = vec![];
        let mut cur = d
            .run_cursor_command(doc! { "listIndexes": coll })
            .await
            .unwrap();
        while cur.advance().await.unwrap() {
            let i: Document = cur.deserialize_current().unwrap();
            indexes.push(
                mongodb::bson::Bson::Document(i)
                    .into_relaxed_extjson()
                    .to_string(),
            );
        }
        indexes.sort();
        (buckets, indexes)
    })
}

/// Point 11: a time-series dump holding buckets the server refuses (mongo-tools'
/// testdata/timeseries_tests/ts_dump_invalid_buckets: `{_id, x}` documents in
/// system.buckets). Stock restores the valid buckets and builds the indexes (exit 0, the
/// failures only counted in its log); we restore exactly what stock restores, build the
/// same indexes, name each refused bucket by `_id` with the server's reason, and exit 1:
/// a restore that could not write everything is not a success.
#[test]
fn time_series_with_invalid_buckets_restores_the_valid_ones_and_names_the_refused() {
    let dir = tempdir();
    let rs = servers().rs_uri.clone();
    let uri = servers().standalone_uri.clone();
    let db = unique_db("tsinv");
    block_on(async {
        let d = client(&rs).await.database(&db);
        d.run_command(doc! { "create": "m", "timeseries": { "timeField": "ts", "metaField": "meta", "granularity": "seconds" } })
            .await
            .unwrap();
        let base = mongodb::bson::DateTime::from_millis(1_700_000_000_000);
        let docs: Vec<Document> = (0..300i64)
            .map(|i| doc! { "ts": mongodb::bson::DateTime::from_millis(base.timestamp_millis() + i * 1000), "meta": { "device": (i % 3) as i32 }, "v": i })
            .collect();
        d.collection::<Document>("m")
            .insert_many(docs)
            .await
            .unwrap();
        d.run_command(doc! { "createIndexes": "m", "indexes": [ { "key": { "meta.device": 1 }, "name": "meta.device_1" }, { "key": { "ts": 1, "meta.device": 1 }, "name": "ts_1_meta.device_1" } ] })
            .await
            .unwrap();
    });
    let dump = dir.path().join("dump");
    run_stock(
        "mongodump",
        &["--uri", &rs, "--db", &db, "--out", dump.to_str().unwrap()],
    );
    // The invalid buckets of mongo-tools' fixture, appended to the valid ones.
    let buckets = dump.join(&db).join("system.buckets.m.bson");
    let mut bytes = std::fs::read(&buckets).unwrap();
    let invalid: Vec<mongodb::bson::oid::ObjectId> = (0..5)
        .map(|i| {
            mongodb::bson::oid::ObjectId::parse_str(format!("5a1101e6a8feb0cc944981a{i}")).unwrap()
        })
        .collect();
    for (i, id) in invalid.iter().enumerate() {
        doc! { "_id": id, "x": 1451 + i as i32 }
            .to_writer(&mut bytes)
            .unwrap();
    }
    std::fs::write(&buckets, bytes).unwrap();

    let log = run_stock(
        "mongorestore",
        &["--uri", &uri, "--dir", dump.to_str().unwrap()],
    );
    assert!(log.contains("5 document(s) failed to restore"), "{log}");
    let stock = timeseries_state(&uri, &db, "m");
    assert!(!stock.0.is_empty() && stock.1.len() == 2, "{stock:?}");
    drop_db(&uri, &db);

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
    assert_eq!(timeseries_state(&uri, &db, "m"), stock);
    let json = run.json();
    let m = namespace(&json, &format!("{db}.m"));
    assert_eq!(m["ok"], false);
    assert_eq!(m["indexes"], 2, "{m}");
    let refused: Vec<String> = m["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = invalid
        .iter()
        .map(|id| format!("{{\"$oid\":\"{id}\"}}"))
        .collect();
    let mut sorted = refused.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "{m}");
    assert_eq!(
        m["inserted"].as_u64().unwrap() + 5,
        m["read"].as_u64().unwrap(),
        "{m}"
    );
    let p = m["problem"].as_str().unwrap();
    assert!(
        p.contains("the server refused 5 of the")
            && p.contains("5a1101e6a8feb0cc944981a0")
            && p.contains("'control'")
            && p.contains("with their indexes"),
        "{p}"
    );
    assert!(!run.stderr.contains("--resume"), "{}", run.stderr);
    drop_db(&uri, &db);
}

/// A database as stock and we must both leave it: every collection's listCollections entry
/// (its UUID included), its indexes by name and its documents.
fn full_state(uri: &str, db: &str, with_uuid: bool) -> Vec<String> {
    block_on(async {
        let d = client(uri).await.database(db);
        let mut out = vec![];
        let mut cur = d
            .run_cursor_command(doc! { "listCollections": 1 })
            .await
            .unwrap();
        let mut names = vec![];
        while cur.advance().await.unwrap() {
            let mut c: Document = cur.deserialize_current().unwrap();
            names.push(c.get_str("name").unwrap().to_string());
            if !with_uuid {
                c.remove("info");
            }
            out.push(
                mongodb::bson::Bson::Document(c)
                    .into_relaxed_extjson()
                    .to_string(),
            );
        }
        for n in names {
            let mut cur = d
                .run_cursor_command(doc! { "listIndexes": &n })
                .await
                .unwrap();
            while cur.advance().await.unwrap() {
                let i: Document = cur.deserialize_current().unwrap();
                out.push(format!(
                    "{n}: {}",
                    mongodb::bson::Bson::Document(i).into_relaxed_extjson()
                ));
            }
            let mut cur = d.collection::<Document>(&n).find(doc! {}).await.unwrap();
            while cur.advance().await.unwrap() {
                let x: Document = cur.deserialize_current().unwrap();
                out.push(format!("{n}: {x}"));
            }
        }
        out.sort();
        out
    })
}

fn stock_restore(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(common::stock_tool("mongorestore"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Point 10: index versions (a v:1 index is rebuilt as v:2, as stock rebuilds it),
/// `--convert-legacy-indexes` (key values "", 0, -0.0, NumberLong 0, true; 1.0 kept),
/// `--fix-dotted-hash-index`, `autoIndexId` (true kept, false made true, left out where the
/// metadata lists the _id index) and `--preserve-uuid` (only with --drop): the same
/// collections, options, UUIDs, indexes and documents as stock mongorestore. An index key
/// no server accepts (`{f: "1"}`) fails in both, leaving the same state.
#[test]
fn index_versions_legacy_specs_auto_index_id_and_uuids_as_stock() {
    let dir = tempdir();
    let uri = servers().standalone_uri.clone();
    let db = unique_db("idx10");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    // A valid version-4 UUID (the server checks the version and variant bits).
    let uuid = |n: u8| {
        let h = format!("{:030x}{n:02x}", nanos);
        format!("{}4{}8{}", &h[..12], &h[13..16], &h[17..])
    };
    let dump = dir.path().join("dump");
    for c in ["x", "y", "z"] {
        write_bson(
            &dump.join(&db).join(format!("{c}.bson")),
            [doc! { "_id": 1, "a": 1, "d": { "e": 1 } }],
        );
    }
    let meta = |c: &str, json: String| {
        std::fs::write(dump.join(&db).join(format!("{c}.metadata.json")), json).unwrap()
    };
    meta(
        "x",
        format!(
            r#"{{"options":{{}},"indexes":[{{"v":1,"key":{{"_id":1}},"name":"_id_"}},{{"v":1,"key":{{"a":""}},"name":"a_"}},{{"v":1,"key":{{"b":{{"$numberDouble":"1.0"}}}},"name":"b_1"}},{{"v":2,"key":{{"c":{{"$numberDouble":"-0.0"}}}},"name":"c_0"}},{{"v":2,"key":{{"g":{{"$numberLong":"0"}},"h":true}},"name":"gh"}},{{"v":2,"key":{{"d.e":"hashed"}},"name":"de_hashed"}}],"uuid":"{}","collectionName":"x","type":"collection"}}"#,
            uuid(1)
        ),
    );
    meta(
        "y",
        format!(
            r#"{{"options":{{"autoIndexId":true}},"indexes":[{{"v":2,"key":{{"_id":1}},"name":"_id_"}}],"uuid":"{}","collectionName":"y","type":"collection"}}"#,
            uuid(2)
        ),
    );
    meta(
        "z",
        format!(
            r#"{{"options":{{"autoIndexId":false}},"indexes":[],"uuid":"{}","collectionName":"z","type":"collection"}}"#,
            uuid(3)
        ),
    );
    let d = dump.to_str().unwrap();
    let (ok, log) = stock_restore(&[
        "--uri",
        &uri,
        "--dir",
        d,
        "--drop",
        "--preserveUUID",
        "--convertLegacyIndexes",
        "--fixDottedHashIndex",
    ]);
    assert!(ok, "{log}");
    let stock = full_state(&uri, &db, true);
    let uuid_json = |hex: String| {
        let bytes = (0..16)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        mongodb::bson::Bson::Binary(mongodb::bson::Binary {
            subtype: mongodb::bson::spec::BinarySubtype::Uuid,
            bytes,
        })
        .into_relaxed_extjson()
        .to_string()
    };
    assert!(
        stock.iter().any(|l| l.contains(&uuid_json(uuid(1)))),
        "{stock:#?}"
    );
    drop_db(&uri, &db);

    // --preserve-uuid without --drop: refused before anything is written, as stock.
    let ours = |extra: &[&str]| {
        let mut a = vec!["restore", "--from", d, "--uri", &uri, "--yes"];
        a.extend(extra);
        mongoshift(dir.path(), a)
    };
    let run = ours(&["--preserve-uuid"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("--preserve-uuid needs --drop"),
        "{}",
        run.stderr
    );
    assert!(collections(&uri, &db).is_empty());

    let run = ours(&[
        "--drop",
        "--preserve-uuid",
        "--convert-legacy-indexes",
        "--fix-dotted-hash-index",
    ]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(full_state(&uri, &db, true), stock);
    drop_db(&uri, &db);

    // A key value no server builds, not converted: both fail on the index, the same state.
    meta(
        "x",
        r#"{"options":{},"indexes":[{"v":2,"key":{"_id":1},"name":"_id_"},{"v":2,"key":{"f":"1"},"name":"f_1"}]}"#.into(),
    );
    std::fs::remove_file(dump.join(&db).join("y.bson")).unwrap();
    std::fs::remove_file(dump.join(&db).join("y.metadata.json")).unwrap();
    std::fs::remove_file(dump.join(&db).join("z.bson")).unwrap();
    std::fs::remove_file(dump.join(&db).join("z.metadata.json")).unwrap();
    let (ok, log) = stock_restore(&["--uri", &uri, "--dir", d]);
    assert!(!ok, "stock built {{f: \"1\"}}: {log}");
    let stock = full_state(&uri, &db, false);
    drop_db(&uri, &db);
    let run = ours(&[]);
    assert_ne!(run.code, 0, "{}", run.all());
    assert!(
        run.all().contains("index build failed") && run.all().contains("f_1"),
        "{}",
        run.all()
    );
    assert_eq!(full_state(&uri, &db, false), stock);
    drop_db(&uri, &db);
}

fn user_doc(uri: &str, id: &str) -> Option<Document> {
    block_on(async {
        client(uri)
            .await
            .database("admin")
            .collection::<Document>("system.users")
            .find_one(doc! { "_id": id })
            .await
            .unwrap()
    })
}

/// Point 9 for archives: a `mongodump --archive --gzip` of the admin database restores its
/// users and roles with --users-and-roles into the same admin.system.users document stock
/// mongorestore --archive gives; without the flag the run says they are there and leaves
/// them; no output holds the credentials.
#[test]
fn users_and_roles_restore_from_an_archive_like_stock() {
    let dir = tempdir();
    let rs = servers().rs_uri.clone();
    let uri = servers().standalone_uri.clone();
    let db = unique_db("usrar");
    let (user, role) = (format!("u_{db}"), format!("r_{db}"));
    block_on(async {
        let d = client(&rs).await.database(&db);
        d.run_command(doc! { "createRole": &role, "privileges": [ { "resource": { "db": &db, "collection": "" }, "actions": ["find"] } ], "roles": [] })
            .await
            .unwrap();
        d.run_command(doc! { "createUser": &user, "pwd": "S3cret-archive-pw", "roles": [ &role ] })
            .await
            .unwrap();
    });
    let archive = dir.path().join("admin.archive.gz");
    let arg = format!("--archive={}", archive.display());
    run_stock(
        "mongodump",
        &["--uri", &rs, "--db", "admin", &arg, "--gzip"],
    );
    let id = format!("{db}.{user}");
    let source = user_doc(&rs, &id).unwrap();
    let key = source
        .get_document("credentials")
        .unwrap()
        .get_document("SCRAM-SHA-256")
        .unwrap()
        .get_str("storedKey")
        .unwrap()
        .to_string();

    let ours = |extra: &[&str]| {
        let mut a = vec![
            "restore",
            "--from",
            archive.to_str().unwrap(),
            "--uri",
            &uri,
            "--yes",
            "-v",
        ];
        a.extend(extra);
        mongoshift(dir.path(), a)
    };
    let run = ours(&[]);
    assert!(
        run.all().contains("holds users and roles") && run.all().contains("--users-and-roles"),
        "{}",
        run.all()
    );
    assert!(user_doc(&uri, &id).is_none());

    run_stock("mongorestore", &["--uri", &uri, &arg, "--gzip"]);
    let stock = user_doc(&uri, &id).expect("stock restored the user");
    block_on(async {
        let d = client(&uri).await.database(&db);
        d.run_command(doc! { "dropUser": &user }).await.unwrap();
        d.run_command(doc! { "dropRole": &role }).await.unwrap();
    });
    let run = ours(&["--users-and-roles"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        !run.all().contains(&key),
        "credentials printed: {}",
        run.all()
    );
    assert!(
        run.all().contains("users and roles: ") && run.all().contains("restored"),
        "{}",
        run.all()
    );
    assert_eq!(user_doc(&uri, &id).unwrap(), stock);
    let roles = block_on(async {
        client(&uri)
            .await
            .database(&db)
            .run_command(doc! { "rolesInfo": &role })
            .await
            .unwrap()
    });
    assert_eq!(roles.get_array("roles").unwrap().len(), 1, "{roles}");
    block_on(async {
        for u in [&rs, &uri] {
            let d = client(u).await.database(&db);
            let _ = d.run_command(doc! { "dropUser": &user }).await;
            let _ = d.run_command(doc! { "dropRole": &role }).await;
        }
    });
}

/// Point 10 with a replay: under --preserve-uuid a collection the oplog creates gets the
/// UUID its `create` entry records, as under stock --preserveUUID --oplogReplay.
#[test]
fn preserve_uuid_keeps_the_uuid_of_collections_the_oplog_creates() {
    let dir = tempdir();
    let uri = servers().standalone_uri.clone();
    let db = unique_db("uuidop");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mut bytes: Vec<u8> = nanos.to_be_bytes().to_vec();
    bytes[6] = 0x40 | (bytes[6] & 0x0f);
    bytes[8] = 0x80 | (bytes[8] & 0x3f);
    let ui = mongodb::bson::Binary {
        subtype: mongodb::bson::spec::BinarySubtype::Uuid,
        bytes,
    };
    let entry = |i: u32, op: &str, ns: String, o: Document| {
        doc! { "ts": Timestamp { time: 1_700_000_000, increment: i }, "t": 1i64, "v": 2, "op": op,
        "ns": ns, "ui": ui.clone(), "o": o }
    };
    let dump = dir.path().join("dump");
    write_bson(
        &dump.join("oplog.bson"),
        [
            entry(1, "c", format!("{db}.$cmd"), doc! { "create": "w" }),
            entry(2, "i", format!("{db}.w"), doc! { "_id": 1 }),
        ],
    );
    let d = dump.to_str().unwrap();
    let (ok, log) = stock_restore(&[
        "--uri",
        &uri,
        "--dir",
        d,
        "--drop",
        "--preserveUUID",
        "--oplogReplay",
    ]);
    assert!(ok, "{log}");
    let stock = full_state(&uri, &db, true);
    let shown = mongodb::bson::Bson::Binary(ui.clone())
        .into_relaxed_extjson()
        .to_string();
    assert!(stock.iter().any(|l| l.contains(&shown)), "{stock:#?}");
    drop_db(&uri, &db);
    let run = mongoshift(
        dir.path(),
        [
            "restore",
            "--from",
            d,
            "--uri",
            &uri,
            "--yes",
            "--drop",
            "--preserve-uuid",
            "--oplog-replay",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(full_state(&uri, &db, true), stock);
    drop_db(&uri, &db);
}

/// Point 12 for archives: a truncated mongodump archive fails only the namespaces it cut.
/// One whose end (and CRC) came before the damage is complete and restored; the one cut
/// midway keeps its real counts and is called partial; one never reached leaves nothing.
#[test]
fn a_truncated_archive_fails_only_what_it_cut_with_real_counts() {
    let dir = tempdir();
    let rs = servers().rs_uri.clone();
    let uri = servers().standalone_uri.clone();
    let db = unique_db("trarc");
    block_on(async {
        let d = client(&rs).await.database(&db);
        for c in ["a", "b"] {
            d.collection::<Document>(c)
                .insert_many((0..200_000).map(|i| doc! { "_id": i, "pad": "x".repeat(50) }))
                .await
                .unwrap();
        }
    });
    let archive = dir.path().join("dump.archive");
    let arg = format!("--archive={}", archive.display());
    // One collection after the other (in the order the log says).
    let log = run_stock("mongodump", &["--uri", &rs, "--db", &db, &arg, "-j", "1"]);
    let at = |c: &str| log.find(&format!("writing {db}.{c} ")).unwrap();
    let (first, second) = if at("a") < at("b") {
        ("a", "b")
    } else {
        ("b", "a")
    };
    let whole = std::fs::read(&archive).unwrap();
    let restore = |cut: usize| {
        let file = dir.path().join(format!("cut{cut}.archive"));
        std::fs::write(&file, &whole[..whole.len() * cut / 100]).unwrap();
        let run = mongoshift(
            dir.path(),
            [
                "restore",
                "--from",
                file.to_str().unwrap(),
                "--uri",
                &uri,
                "--yes",
                "--drop",
                "--output",
                "json",
            ],
        );
        assert_eq!(run.code, 1, "{}", run.all());
        assert!(!run.stderr.contains("--resume"), "{}", run.stderr);
        run.json()
    };
    let check_partial = |json: &serde_json::Value, c: &str| {
        let n = namespace(json, &format!("{db}.{c}"));
        assert_eq!(n["ok"], false, "{n}");
        let landed = count(&uri, &db, c);
        let read = n["read"].as_u64().unwrap();
        assert!(read > 0 && read < 200_000 && landed <= read, "{n}");
        assert_eq!(n["inserted"], landed, "{n}");
        assert_eq!(n["target_count"], landed, "{n}");
        assert!(
            n["problem"]
                .as_str()
                .unwrap()
                .contains("is truncated at offset"),
            "{n}"
        );
    };

    // Cut within the second collection: the first is complete.
    let json = restore(90);
    let f = namespace(&json, &format!("{db}.{first}"));
    assert_eq!(
        (f["ok"].clone(), f["target_count"].clone()),
        (true.into(), 200_000.into()),
        "{f}"
    );
    check_partial(&json, second);

    // Cut within the first: the second was never reached and is not left behind empty.
    drop_db(&uri, &db);
    let json = restore(25);
    check_partial(&json, first);
    let s = namespace(&json, &format!("{db}.{second}"));
    assert_eq!(
        (s["read"].as_u64(), s["target_count"].as_u64()),
        (Some(0), Some(0)),
        "{s}"
    );
    assert!(
        s["problem"].as_str().unwrap().contains("was removed"),
        "{s}"
    );
    assert!(!collections(&uri, &db).contains(&second.to_string()));
    drop_db(&uri, &db);
    drop_db(&rs, &db);
}
