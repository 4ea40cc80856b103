//! Issue #21: `restore --oplog-replay` gives the state stock mongorestore 100.8.0 gives.
//!
//! A dump is made with the stock mongodump of two databases on the replica set; then every
//! command kind the server logs for them is run (deletes before a unique index is built,
//! dropIndexes then a conflicting createIndexes, create/rename/drop, collMod of a validator
//! and of an index, convertToCapped, a committed transaction, dropDatabase), and those oplog
//! entries are written as the dump's `oplog.bson`, as `mongodump --oplog` would. Transactions
//! the replica set cannot produce without test commands (prepared then committed, prepared
//! then aborted, prepared and never finished, partial and never finished — the cases of
//! mongo-tools' testdata/transactions.json) are appended, and half of the entries get an
//! int32 `t`, as older tools wrote it. Stock mongorestore --oplogReplay and mongoshift
//! restore the dump into the standalone server in turn; the states must be equal.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{block_on, client, mongoshift, run_stock, servers, tempdir, unique_db};
use mongodb::bson::{doc, spec::BinarySubtype, Binary, Bson, Document, Timestamp};

/// A database as a comparable value: per collection its options (without the UUID), its
/// indexes (by name) and its documents (by `_id`).
fn state(uri: &str, db: &str) -> BTreeMap<String, serde_json::Value> {
    block_on(async {
        let c = client(uri).await;
        let d = c.database(db);
        let mut out = BTreeMap::new();
        let mut cur = d
            .run_cursor_command(doc! { "listCollections": 1 })
            .await
            .unwrap();
        let mut specs = vec![];
        while cur.advance().await.unwrap() {
            specs.push(cur.deserialize_current().unwrap());
        }
        for spec in specs {
            let spec: Document = spec;
            let name = spec.get_str("name").unwrap().to_string();
            let mut info = spec.clone();
            info.remove("info");
            let mut indexes = BTreeMap::new();
            let mut docs = BTreeMap::new();
            if spec.get_str("type").ok() == Some("collection") {
                let mut cur = d
                    .run_cursor_command(doc! { "listIndexes": &name })
                    .await
                    .unwrap();
                while cur.advance().await.unwrap() {
                    let mut i: Document = cur.deserialize_current().unwrap();
                    i.remove("ns");
                    indexes.insert(
                        i.get_str("name").unwrap().to_string(),
                        Bson::Document(i).into_relaxed_extjson(),
                    );
                }
                let mut cur = d.collection::<Document>(&name).find(doc! {}).await.unwrap();
                while cur.advance().await.unwrap() {
                    let x: Document = cur.deserialize_current().unwrap();
                    docs.insert(
                        x.get("_id").unwrap().to_string(),
                        Bson::Document(x).into_relaxed_extjson(),
                    );
                }
            }
            out.insert(
                name,
                serde_json::json!({ "spec": Bson::Document(info).into_relaxed_extjson(), "indexes": indexes, "documents": docs }),
            );
        }
        out
    })
}

fn last_ts(uri: &str) -> Timestamp {
    block_on(async {
        let c = client(uri).await;
        let e = c
            .database("local")
            .collection::<Document>("oplog.rs")
            .find_one(doc! {})
            .sort(doc! { "$natural": -1 })
            .await
            .unwrap()
            .unwrap();
        e.get_timestamp("ts").unwrap()
    })
}

/// Does this entry touch one of `dbs`?
fn concerns(e: &Document, dbs: &[&str]) -> bool {
    let ours = |ns: &str| dbs.iter().any(|d| ns.starts_with(&format!("{d}.")));
    if ours(e.get_str("ns").unwrap_or_default()) {
        return true;
    }
    let Ok(o) = e.get_document("o") else {
        return false;
    };
    if let Ok(from) = o.get_str("renameCollection") {
        return ours(from);
    }
    o.get_array("applyOps")
        .map(|ops| {
            ops.iter()
                .filter_map(Bson::as_document)
                .any(|op| concerns(op, dbs))
        })
        .unwrap_or(false)
}

fn oplog_since(uri: &str, after: Timestamp, dbs: &[&str]) -> Vec<Document> {
    block_on(async {
        let c = client(uri).await;
        let mut cur = c
            .database("local")
            .collection::<Document>("oplog.rs")
            .find(doc! { "ts": { "$gt": after } })
            .sort(doc! { "$natural": 1 })
            .await
            .unwrap();
        let mut v = vec![];
        while cur.advance().await.unwrap() {
            let e: Document = cur.deserialize_current().unwrap();
            if concerns(&e, dbs) {
                v.push(e);
            }
        }
        v
    })
}

/// The transaction cases of mongo-tools' testdata/transactions.json, on `db.a`.
fn synthetic_transactions(db: &str, mut ts: Timestamp) -> Vec<Document> {
    let mut out = vec![];
    let commit_ts = Timestamp {
        time: ts.time,
        increment: ts.increment + 6,
    };
    let mut next = |o: Document, lsid: u8| {
        ts.increment += 1;
        doc! {
            "ts": ts, "t": 1i64, "v": 2, "op": "c", "ns": "admin.$cmd",
            "wall": mongodb::bson::DateTime::now(),
            "lsid": { "id": Binary { subtype: BinarySubtype::Uuid, bytes: vec![lsid; 16] } },
            "txnNumber": 1i64,
            "prevOpTime": { "ts": Timestamp { time: 0, increment: 0 }, "t": -1i64 },
            "o": o,
        }
    };
    let insert = |id: i32| doc! { "op": "i", "ns": format!("{db}.a"), "o": { "_id": id, "a": id } };
    // prepared, committed: applied at the commit
    out.push(next(doc! { "applyOps": [insert(10)], "prepare": true }, 1));
    // prepared, aborted: never applied
    out.push(next(doc! { "applyOps": [insert(11)], "prepare": true }, 2));
    out.push(next(doc! { "abortTransaction": 1 }, 2));
    // large (partial) and committed by its last applyOps
    out.push(next(
        doc! { "applyOps": [insert(14)], "partialTxn": true },
        5,
    ));
    out.push(next(doc! { "applyOps": [insert(15)] }, 5));
    out.push(next(
        doc! { "commitTransaction": 1, "commitTimestamp": commit_ts },
        1,
    ));
    // prepared, never finished; partial, never finished: never applied
    out.push(next(doc! { "applyOps": [insert(12)], "prepare": true }, 3));
    out.push(next(
        doc! { "applyOps": [insert(13)], "partialTxn": true },
        4,
    ));
    out
}

fn write_bson(path: &Path, docs: &[Document]) {
    let mut buf = vec![];
    for d in docs {
        d.to_writer(&mut buf).unwrap();
    }
    std::fs::write(path, buf).unwrap();
}

/// The source databases, their dump (stock mongodump), and the oplog written after it.
fn make_dump(dir: &Path) -> (String, String, std::path::PathBuf) {
    let rs = servers().rs_uri.clone();
    let (s, s2) = (unique_db("opl"), unique_db("opl2"));
    block_on(async {
        let c = client(&rs).await;
        let d = c.database(&s);
        d.collection::<Document>("a")
            .insert_many([doc! { "_id": 1, "a": 1 }, doc! { "_id": 2, "a": 1 }])
            .await
            .unwrap();
        d.collection::<Document>("b")
            .insert_many([doc! { "_id": 1, "b": 1 }])
            .await
            .unwrap();
        d.run_command(
            doc! { "createIndexes": "b", "indexes": [ { "key": { "b": 1 }, "name": "b_1" } ] },
        )
        .await
        .unwrap();
        for coll in ["d", "e"] {
            d.collection::<Document>(coll)
                .insert_many([doc! { "_id": 1 }, doc! { "_id": 2 }])
                .await
                .unwrap();
        }
        d.collection::<Document>("h")
            .insert_many([doc! { "_id": 1, "x": 1 }])
            .await
            .unwrap();
        d.run_command(
            doc! { "createIndexes": "h", "indexes": [ { "key": { "x": 1 }, "name": "x_1" } ] },
        )
        .await
        .unwrap();
        c.database(&s2)
            .collection::<Document>("z")
            .insert_many([doc! { "_id": 1 }])
            .await
            .unwrap();
    });
    let dump = dir.join("dump");
    for db in [&s, &s2] {
        run_stock(
            "mongodump",
            &["--uri", &rs, "--db", db, "--out", dump.to_str().unwrap()],
        );
    }
    let t0 = last_ts(&rs);
    block_on(async {
        let c = client(&rs).await;
        let d = c.database(&s);
        let a = d.collection::<Document>("a");
        // Point 2: the unique index can only be built once the oplog deleted the duplicate.
        a.delete_one(doc! { "_id": 2 }).await.unwrap();
        d.run_command(doc! { "createIndexes": "a", "indexes": [ { "key": { "a": 1 }, "name": "a_1", "unique": true } ] })
            .await
            .unwrap();
        // Point 3: dropIndexes, then an index of that name with other options.
        d.run_command(doc! { "dropIndexes": "b", "index": "b_1" })
            .await
            .unwrap();
        d.run_command(doc! { "createIndexes": "b", "indexes": [ { "key": { "b": 1 }, "name": "b_1", "unique": true } ] })
            .await
            .unwrap();
        d.run_command(doc! { "create": "c", "collation": { "locale": "fr" } })
            .await
            .unwrap();
        d.collection::<Document>("c")
            .insert_one(doc! { "_id": 1, "c": "é" })
            .await
            .unwrap();
        c.database("admin")
            .run_command(doc! { "renameCollection": format!("{s}.c"), "to": format!("{s}.c2") })
            .await
            .unwrap();
        d.run_command(doc! { "createIndexes": "c2", "indexes": [ { "key": { "c": 1 }, "name": "c_1" }, { "key": { "_id": 1, "c": 1 }, "name": "simple", "collation": { "locale": "simple" } } ] })
            .await
            .unwrap();
        d.collection::<Document>("d").drop().await.unwrap();
        d.run_command(doc! { "collMod": "a", "validator": { "a": { "$exists": true } }, "validationLevel": "moderate" })
            .await
            .unwrap();
        d.run_command(doc! { "collMod": "h", "index": { "name": "x_1", "hidden": true } })
            .await
            .unwrap();
        d.run_command(doc! { "convertToCapped": "e", "size": 100_000 })
            .await
            .unwrap();
        let mut session = c.start_session().await.unwrap();
        session.start_transaction().await.unwrap();
        a.insert_one(doc! { "_id": 3, "a": 3 })
            .session(&mut session)
            .await
            .unwrap();
        d.collection::<Document>("b")
            .update_one(doc! { "_id": 1 }, doc! { "$set": { "b": 2 } })
            .session(&mut session)
            .await
            .unwrap();
        session.commit_transaction().await.unwrap();
        c.database(&s2).drop().await.unwrap();
        a.update_one(doc! { "_id": 1 }, doc! { "$set": { "a": 5 } })
            .await
            .unwrap();
    });
    let mut entries = oplog_since(&rs, t0, &[&s, &s2]);
    let last = entries.last().unwrap().get_timestamp("ts").unwrap();
    entries.extend(synthetic_transactions(&s, last));
    // Point 4: older tools wrote `t` as int32.
    for (i, e) in entries.iter_mut().enumerate() {
        if i % 2 == 0 {
            if let Ok(t) = e.get_i64("t") {
                e.insert("t", t as i32);
            }
        }
    }
    write_bson(&dump.join("oplog.bson"), &entries);
    (s, s2, dump)
}

fn drop_dbs(uri: &str, dbs: &[&str]) {
    block_on(async {
        let c = client(uri).await;
        for d in dbs {
            c.database(d).drop().await.unwrap();
        }
    });
}

#[test]
fn oplog_replay_gives_stock_mongorestores_state() {
    let dir = tempdir();
    let (s, s2, dump) = make_dump(dir.path());
    let uri = servers().standalone_uri.clone();
    run_stock(
        "mongorestore",
        &[
            "--uri",
            &uri,
            "--dir",
            dump.to_str().unwrap(),
            "--oplogReplay",
        ],
    );
    let mut stock = state(&uri, &s);
    assert!(
        state(&uri, &s2).is_empty(),
        "dropDatabase replayed by stock"
    );
    // Stock 100.8.0 sends convertToCapped's `renameCollection … dropTarget: <UUID>` through
    // applyOps unchanged: the server moves the old collection aside as `tmpXXXX.rename` and
    // never drops it (no collection has that UUID on the target). The source has no such
    // collection; mongoshift drops the target as the source did.
    let source = state(&servers().rs_uri, &s);
    stock.retain(|name, _| {
        !(name.starts_with("tmp") && name.ends_with(".rename") && !source.contains_key(name))
    });
    drop_dbs(&uri, &[&s, &s2]);

    // Planned first: the dry run says what the replay would do and writes nothing.
    let dry = mongoshift(
        dir.path(),
        [
            "restore",
            "--from",
            dump.to_str().unwrap(),
            "--uri",
            &uri,
            "--oplog-replay",
            "--dry-run",
            "--output",
            "json",
        ],
    );
    dry.assert_code(0);
    let plan = dry.json();
    let o = &plan["oplog"];
    assert!(o["read"].as_u64().unwrap() > 10, "{plan}");
    assert_eq!(o["transactions_unfinished"], 2, "{plan}");
    assert_eq!(o["transactions_aborted"], 1, "{plan}");
    assert_eq!(o["commands"]["dropDatabase"], 1, "{plan}");
    assert_eq!(o["commands"]["dropIndexes"], 1, "{plan}");
    assert!(o["first"]["t"].as_u64().is_some() && o["last"]["t"].as_u64().is_some());
    assert!(state(&uri, &s).is_empty(), "a dry run writes nothing");
    let human = mongoshift(
        dir.path(),
        [
            "restore",
            "--from",
            dump.to_str().unwrap(),
            "--uri",
            &uri,
            "--oplog-replay",
            "--dry-run",
        ],
    );
    human.assert_code(0);
    assert!(
        human.stdout.contains("would be replayed")
            && human.stdout.contains("unfinished (not applied)"),
        "{}",
        human.stdout
    );

    let run = mongoshift(
        dir.path(),
        [
            "restore",
            "--from",
            dump.to_str().unwrap(),
            "--uri",
            &uri,
            "--oplog-replay",
            "--yes",
            "--output",
            "json",
        ],
    );
    run.assert_code(0);
    let ours = state(&uri, &s);
    assert!(
        state(&uri, &s2).is_empty(),
        "dropDatabase replayed: {}",
        run.stdout
    );
    assert_eq!(
        serde_json::to_string_pretty(&ours).unwrap(),
        serde_json::to_string_pretty(&stock).unwrap(),
        "mongoshift's state differs from stock mongorestore's"
    );
    // What the cases mean, spelled out.
    let a = &ours["a"];
    let ids: Vec<&String> = a["documents"].as_object().unwrap().keys().collect();
    assert_eq!(ids, ["1", "10", "14", "15", "3"], "{a}");
    assert_eq!(a["indexes"]["a_1"]["unique"], true);
    assert_eq!(ours["b"]["indexes"]["b_1"]["unique"], true);
    assert_eq!(ours["h"]["indexes"]["x_1"]["hidden"], true);
    assert!(ours.contains_key("c2") && !ours.contains_key("c") && !ours.contains_key("d"));
    assert_eq!(ours["e"]["spec"]["options"]["capped"], true);

    // Renamed: the same state under other names, renames inside the oplog included.
    drop_dbs(&uri, &[&s]);
    let (r, r2) = (unique_db("oplr"), unique_db("oplr2"));
    let run = mongoshift(
        dir.path(),
        [
            "restore",
            "--from",
            dump.to_str().unwrap(),
            "--uri",
            &uri,
            "--oplog-replay",
            "--ns-from",
            &format!("{s}.*"),
            "--ns-to",
            &format!("{r}.*"),
            "--ns-from",
            &format!("{s2}.*"),
            "--ns-to",
            &format!("{r2}.*"),
            "--yes",
        ],
    );
    run.assert_code(0);
    assert_eq!(
        serde_json::to_string(&state(&uri, &r))
            .unwrap()
            .replace(&r, &s),
        serde_json::to_string(&stock).unwrap(),
        "renamed restore: {}",
        run.stderr
    );
    assert!(state(&uri, &r2).is_empty());

    // A selection the oplog's rename crosses is refused before anything is written.
    let r3 = unique_db("oplr3");
    let run = mongoshift(
        dir.path(),
        [
            "restore",
            "--from",
            dump.to_str().unwrap(),
            "--uri",
            &uri,
            "--oplog-replay",
            "--ns-include",
            &format!("{s}.*"),
            "--ns-exclude",
            &format!("{s}.c2"),
            "--ns-from",
            &format!("{s}.*"),
            "--ns-to",
            &format!("{r3}.*"),
            "--yes",
        ],
    );
    run.assert_code(2);
    assert!(
        run.stderr.contains("renameCollection") && run.stderr.contains("Nothing was written"),
        "{}",
        run.stderr
    );
    assert!(state(&uri, &r3).is_empty());
    drop_dbs(&uri, &[&r, &r2]);
}

fn entry(ts: u32, op: &str, ns: &str, o: Document) -> Document {
    doc! { "ts": Timestamp { time: 1_700_000_000, increment: ts }, "t": 1i64, "v": 2, "op": op, "ns": ns,
    "wall": mongodb::bson::DateTime::from_millis(1_700_000_000_000), "o": o }
}

/// Points 6–8: inputs stock mongorestore accepts. A folder holding only `oplog.bson`;
/// `local/oplog.rs.bson` as the oplog; `--oplog-file`; a `.bson` without metadata and one
/// with a 0-byte metadata file; a broken metadata file of a namespace that is not selected;
/// a single `.bson` file; a database's folder.
#[test]
fn inputs_stock_mongorestore_accepts_restore_as_stock() {
    let dir = tempdir();
    let uri = servers().standalone_uri.clone();
    let db = unique_db("inp");
    let oplog = vec![
        entry(1, "c", &format!("{db}.$cmd"), doc! { "create": "w" }),
        entry(2, "i", &format!("{db}.w"), doc! { "_id": 1, "w": 1 }),
        entry(3, "i", &format!("{db}.w"), doc! { "_id": 2, "w": 2 }),
        entry(
            4,
            "u",
            &format!("{db}.w"),
            doc! { "$v": 2, "diff": { "u": { "w": 3 } } },
        ),
        entry(5, "d", &format!("{db}.w"), doc! { "_id": 1 }),
    ];
    let mut oplog = oplog;
    oplog[3].insert("o2", doc! { "_id": 2 });
    let only = dir.path().join("only");
    std::fs::create_dir_all(&only).unwrap();
    write_bson(&only.join("oplog.bson"), &oplog);
    let local = dir.path().join("local");
    std::fs::create_dir_all(local.join("local")).unwrap();
    write_bson(&local.join("local/oplog.rs.bson"), &oplog);

    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join(&db)).unwrap();
    write_bson(
        &data.join(format!("{db}/x.bson")),
        &[doc! { "_id": 1 }, doc! { "_id": 2 }],
    );
    write_bson(
        &data.join(format!("{db}/y.bson")),
        &[doc! { "_id": 1, "y": 1 }],
    );
    std::fs::write(data.join(format!("{db}/y.metadata.json")), b"").unwrap();
    write_bson(&data.join(format!("{db}/z.bson")), &[doc! { "_id": 1 }]);
    std::fs::write(data.join(format!("{db}/z.metadata.json")), b"{ not json").unwrap();
    let data2 = dir.path().join("data2");
    std::fs::create_dir_all(data2.join(&db)).unwrap();
    write_bson(
        &data2.join(format!("{db}/x.bson")),
        &[doc! { "_id": 1 }, doc! { "_id": 2 }],
    );

    let cases: Vec<(&str, Vec<String>, Vec<String>)> = vec![
        (
            "only oplog.bson",
            vec![
                "--dir".into(),
                only.to_string_lossy().into(),
                "--oplogReplay".into(),
            ],
            vec![
                "--from".into(),
                only.to_string_lossy().into(),
                "--oplog-replay".into(),
            ],
        ),
        (
            "local/oplog.rs.bson",
            vec![
                "--dir".into(),
                local.to_string_lossy().into(),
                "--oplogReplay".into(),
            ],
            vec![
                "--from".into(),
                local.to_string_lossy().into(),
                "--oplog-replay".into(),
            ],
        ),
        (
            "missing and empty metadata, an unselected broken one",
            vec![
                "--dir".into(),
                data.to_string_lossy().into(),
                "--nsExclude".into(),
                format!("{db}.z"),
            ],
            vec![
                "--from".into(),
                data.to_string_lossy().into(),
                "--ns-exclude".into(),
                format!("{db}.z"),
            ],
        ),
        (
            "--oplog-file",
            vec![
                "--dir".into(),
                data2.to_string_lossy().into(),
                "--oplogReplay".into(),
                "--oplogFile".into(),
                only.join("oplog.bson").to_string_lossy().into(),
            ],
            vec![
                "--from".into(),
                data2.to_string_lossy().into(),
                "--oplog-replay".into(),
                "--oplog-file".into(),
                only.join("oplog.bson").to_string_lossy().into(),
            ],
        ),
        (
            "a single .bson file",
            vec![
                "--db".into(),
                db.clone(),
                "--collection".into(),
                "x".into(),
                data.join(&db).join("x.bson").to_string_lossy().into(),
            ],
            vec![
                "--from".into(),
                data.join(&db).join("x.bson").to_string_lossy().into(),
            ],
        ),
        (
            "a database folder",
            vec![
                "--db".into(),
                db.clone(),
                data2.join(&db).to_string_lossy().into(),
            ],
            vec!["--from".into(), data2.join(&db).to_string_lossy().into()],
        ),
    ];
    for (what, stock_args, our_args) in cases {
        let mut args: Vec<&str> = vec!["--uri", &uri];
        args.extend(stock_args.iter().map(String::as_str));
        run_stock("mongorestore", &args);
        let stock = state(&uri, &db);
        assert!(!stock.is_empty(), "{what}: stock restored nothing");
        drop_dbs(&uri, &[&db]);
        let mut args: Vec<&str> = vec!["restore", "--uri", &uri, "--yes"];
        args.extend(our_args.iter().map(String::as_str));
        let run = mongoshift(dir.path(), &args);
        assert_eq!(run.code, 0, "{what}: {}{}", run.stdout, run.stderr);
        assert_eq!(state(&uri, &db), stock, "{what}");
        drop_dbs(&uri, &[&db]);
    }
}

/// Point 12: a refused oplog entry and a failed index build are each one readable line
/// naming the entry or the namespace and the server's reason — no driver debug dumps.
#[test]
fn replay_and_index_failures_name_the_entry_and_the_cause() {
    let dir = tempdir();
    let uri = servers().standalone_uri.clone();
    let db = unique_db("fail");
    let data = dir.path().join("dump");
    std::fs::create_dir_all(data.join(&db)).unwrap();
    write_bson(
        &data.join(format!("{db}/x.bson")),
        &[doc! { "_id": 1, "a": 1 }, doc! { "_id": 2, "a": 1 }],
    );
    std::fs::write(
        data.join(format!("{db}/x.metadata.json")),
        r#"{"options":{},"indexes":[{"v":2,"key":{"_id":1},"name":"_id_"},{"v":2,"key":{"a":1},"name":"a_1","unique":true}]}"#,
    )
    .unwrap();
    write_bson(
        &data.join("oplog.bson"),
        &[
            entry(1, "i", &format!("{db}.x"), doc! { "_id": 3, "a": 3 }),
            entry(2, "n", "", doc! { "msg": "noop" }),
            entry(
                3,
                "c",
                &format!("{db}.$cmd"),
                doc! { "collMod": "x", "notAnOption": 1 },
            ),
        ],
    );
    let run = mongoshift(
        dir.path(),
        [
            "restore",
            "--from",
            data.to_str().unwrap(),
            "--uri",
            &uri,
            "--oplog-replay",
            "--yes",
        ],
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("oplog entry #3 (ts 1700000000:3")
            && run.stderr.contains("command collMod on")
            && run.stderr.contains("notAnOption"),
        "{}",
        run.stderr
    );
    for noise in ["Some(Timestamp", "RawDocumentBuf", "--resume"] {
        assert!(!run.stderr.contains(noise), "{noise}: {}", run.stderr);
    }
    drop_dbs(&uri, &[&db]);

    std::fs::remove_file(data.join("oplog.bson")).unwrap();
    let run = mongoshift(
        dir.path(),
        [
            "restore",
            "--from",
            data.to_str().unwrap(),
            "--uri",
            &uri,
            "--yes",
        ],
    );
    assert_ne!(run.code, 0);
    let all = run.all();
    assert!(
        all.contains("index build failed")
            && all.contains("DuplicateKey (11000)")
            && all.contains(&format!("{db}.x"))
            && all.contains("remove the duplicates"),
        "{all}"
    );
    assert!(
        !all.contains("RawDocumentBuf")
            && !all.contains("4c01")
            && !all.contains(":: caused by ::"),
        "{all}"
    );
    drop_dbs(&uri, &[&db]);
}

/// Point 8: bare BSON on stdin does not say its collection; it is refused, naming stdin
/// (not a spool file) and what to do instead.
#[test]
fn bare_bson_on_stdin_is_refused_with_the_way_out() {
    let dir = tempdir();
    let file = dir.path().join("docs.bson");
    write_bson(&file, &[doc! { "_id": 1 }]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mongoshift"))
        .current_dir(dir.path())
        .args([
            "restore",
            "--from",
            "-",
            "--uri",
            &servers().standalone_uri,
            "--yes",
        ])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("stdin holds BSON documents") && err.contains("DB/COLLECTION.bson"),
        "{err}"
    );
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

/// Point 9: users and roles in a dump are restored only with --users-and-roles, as stock
/// mongorestore restores them (the same admin.system.users document), and their
/// credentials are never printed.
#[test]
fn users_and_roles_restore_when_asked_like_stock_without_printing_credentials() {
    let dir = tempdir();
    let rs = servers().rs_uri.clone();
    let uri = servers().standalone_uri.clone();
    let db = unique_db("usr");
    let (user, role) = (format!("u_{db}"), format!("r_{db}"));
    block_on(async {
        let c = client(&rs).await;
        let d = c.database(&db);
        d.run_command(doc! { "createRole": &role, "privileges": [ { "resource": { "db": &db, "collection": "" }, "actions": ["find"] } ], "roles": [] })
            .await
            .unwrap();
        d.run_command(doc! { "createUser": &user, "pwd": "S3cret-pw-xyz", "roles": [ &role ] })
            .await
            .unwrap();
    });
    let dump = dir.path().join("dump");
    run_stock(
        "mongodump",
        &[
            "--uri",
            &rs,
            "--db",
            "admin",
            "--out",
            dump.to_str().unwrap(),
        ],
    );
    let id = format!("{db}.{user}");
    let source = user_doc(&rs, &id).unwrap();
    let salt = source
        .get_document("credentials")
        .unwrap()
        .get_document("SCRAM-SHA-256")
        .unwrap()
        .get_str("storedKey")
        .unwrap()
        .to_string();

    // Without the flag: said, not done.
    let run = mongoshift(
        dir.path(),
        [
            "restore",
            "--from",
            dump.to_str().unwrap(),
            "--uri",
            &uri,
            "--yes",
        ],
    );
    assert!(run.all().contains("--users-and-roles"), "{}", run.all());
    assert!(user_doc(&uri, &id).is_none());

    run_stock(
        "mongorestore",
        &["--uri", &uri, "--dir", dump.to_str().unwrap()],
    );
    let stock = user_doc(&uri, &id).expect("stock restored the user");
    block_on(async {
        let d = client(&uri).await.database(&db);
        d.run_command(doc! { "dropUser": &user }).await.unwrap();
        d.run_command(doc! { "dropRole": &role }).await.unwrap();
    });
    let run = mongoshift(
        dir.path(),
        [
            "restore",
            "--from",
            dump.to_str().unwrap(),
            "--uri",
            &uri,
            "--yes",
            "--users-and-roles",
            "-v",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        !run.all().contains(&salt),
        "credentials printed: {}",
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
}

/// Point 10: --convert-legacy-indexes builds what stock --convertLegacyIndexes builds.
#[test]
fn legacy_indexes_convert_like_stock() {
    let dir = tempdir();
    let uri = servers().standalone_uri.clone();
    let db = unique_db("leg");
    let data = dir.path().join("dump");
    std::fs::create_dir_all(data.join(&db)).unwrap();
    write_bson(
        &data.join(format!("{db}/x.bson")),
        &[doc! { "_id": 1, "a": 1 }],
    );
    std::fs::write(
        data.join(format!("{db}/x.metadata.json")),
        r#"{"options":{},"indexes":[{"v":2,"key":{"_id":1},"name":"_id_"},{"v":2,"key":{"a":0},"name":"a_0"},{"v":2,"key":{"b":""},"name":"b_"},{"v":2,"key":{"c":1},"name":"c_1","safe":true}]}"#,
    )
    .unwrap();
    run_stock(
        "mongorestore",
        &[
            "--uri",
            &uri,
            "--dir",
            data.to_str().unwrap(),
            "--convertLegacyIndexes",
        ],
    );
    let stock = state(&uri, &db);
    drop_dbs(&uri, &[&db]);
    let run = mongoshift(
        dir.path(),
        [
            "restore",
            "--from",
            data.to_str().unwrap(),
            "--uri",
            &uri,
            "--yes",
            "--convert-legacy-indexes",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(state(&uri, &db), stock);
    drop_dbs(&uri, &[&db]);
}
