//! Issue #3's promise: a downloaded `gzip` or `none` backup folder restores with stock
//! `mongorestore --dir … [--gzip] [--oplogReplay]`.
//!
//! Stock `mongorestore` 100.8.0 (the shared copy, `$MONGORESTORE` or PATH; the test fails
//! when none is found) restores each folder with oplog replay. Before that the folder is
//! read the way mongorestore reads a `--dir` (mongorestore/filepath.go: which top-level
//! files it takes, which it skips, which suffixes it recognises with and without `--gzip`,
//! Go's multistream gzip reader: our gzip is one member per 1 MiB block), and restored by
//! mongoshift as a plain mongodump folder — manifest removed — with oplog replay. Both
//! results are compared with the source at the backup's end.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{block_on, client, mongoshift, servers, tempdir};
use mongodb::bson::{doc, Bson, Document, RawDocumentBuf, Timestamp};
use mongoshift::dump::bson_stream;

/// What mongorestore would do with a dump directory.
#[derive(Debug, Default)]
struct DirPlan {
    /// namespace → its BSON file
    data: BTreeMap<String, PathBuf>,
    /// namespaces with a metadata file
    metadata: BTreeSet<String>,
    oplog: Option<PathBuf>,
    /// files mongorestore logs as "don't know what to do with file … skipping"
    skipped: Vec<String>,
}

/// mongorestore's `CreateAllIntents` + `CreateIntentsForDB` + `getInfoFromFile`, for a plain
/// (non-archive) `--dir` restore.
fn mongorestore_dir_plan(dir: &Path, gzip: bool) -> DirPlan {
    let mut plan = DirPlan::default();
    for entry in sorted_entries(dir) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        if entry.is_dir() {
            assert!(
                !name.is_empty()
                    && name.len() < 64
                    && !name.contains(['/', '\\', '.', ' ', '"', '$']),
                "mongorestore refuses the database folder name {name:?}"
            );
            for file in sorted_entries(&entry) {
                let fname = file.file_name().unwrap().to_string_lossy().into_owned();
                assert!(!file.is_dir(), "mongorestore skips subdirectory {fname}");
                // With --gzip only the .gz names are recognised; without it, only the plain ones.
                let (suffix_bson, suffix_meta) = if gzip {
                    (".bson.gz", ".metadata.json.gz")
                } else {
                    (".bson", ".metadata.json")
                };
                if let Some(c) = fname.strip_suffix(suffix_meta) {
                    plan.metadata.insert(format!("{name}.{}", path_unescape(c)));
                } else if let Some(c) = fname.strip_suffix(suffix_bson) {
                    // A time-series collection's buckets restore into the collection of that name.
                    let coll = path_unescape(c);
                    let coll = coll.strip_prefix("system.buckets.").unwrap_or(&coll);
                    plan.data.insert(format!("{name}.{coll}"), file);
                } else {
                    plan.skipped.push(format!("{name}/{fname}"));
                }
            }
        } else if name == "oplog.bson" {
            plan.oplog = Some(entry);
        } else {
            plan.skipped.push(name);
        }
    }
    plan
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Go's url.QueryUnescape (util.UnescapeCollectionName), which mongorestore applies to
/// file names: `+` is a space.
fn path_unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).expect("a %XX escape");
            out.push(u8::from_str_radix(hex, 16).expect("a %XX escape"));
            i += 3;
        } else if b[i] == b'+' {
            out.push(b' ');
            i += 1;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("UTF-8 name")
}

/// The file's BSON stream as mongorestore's reader sees it (Go's gzip.Reader is multistream).
fn read_stream(path: &Path, gzip: bool) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap();
    if !gzip {
        return raw;
    }
    // Go's gzip.NewReader fails with EOF on an empty file, and mongorestore with it.
    assert!(
        !raw.is_empty(),
        "{} is empty, not a gzip stream",
        path.display()
    );
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&raw[..])
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("{} is not gzip: {e}", path.display()));
    out
}

struct Source {
    db: String,
    foreign_db: String,
}

/// A source database with a non-ASCII collection, an index and a view, and a writer that
/// keeps inserting — plainly and in transactions, in this database and in another one —
/// while `during` runs.
fn with_writes_during<T>(source: &Source, during: impl FnOnce() -> T) -> T {
    let uri = servers().rs_uri.clone();
    block_on(async {
        let c = client(&uri).await;
        let db = c.database(&source.db);
        let docs: Vec<RawDocumentBuf> = (0..40_000i64)
            .map(|k| mongodb::bson::rawdoc! { "_id": k, "name": format!("usuário {k} 日志"), "pad": "p".repeat(200) })
            .collect();
        db.collection::<RawDocumentBuf>("comentários_日志")
            .insert_many(docs)
            .await
            .unwrap();
        db.run_command(doc! { "createIndexes": "comentários_日志", "indexes": [ { "key": { "name": 1 }, "name": "name_1" } ] })
            .await
            .unwrap();
        db.run_command(doc! { "create": "recent", "viewOn": "comentários_日志", "pipeline": [ { "$match": { "_id": { "$gte": 39_000 } } } ] })
            .await
            .unwrap();
        db.run_command(
            doc! { "create": "ticks", "timeseries": { "timeField": "at", "metaField": "sensor" } },
        )
        .await
        .unwrap();
        let now = mongodb::bson::DateTime::now().timestamp_millis();
        db.collection::<Document>("ticks")
            .insert_many((0..2_000i64).map(|i| doc! { "at": mongodb::bson::DateTime::from_millis(now - i * 1_000), "sensor": i % 7, "v": i }))
            .await
            .unwrap();
        for coll in ["writes", "txn", "empty"] {
            db.create_collection(coll).await.unwrap();
        }
        c.database(&source.foreign_db)
            .create_collection("txn")
            .await
            .unwrap();
    });
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let (db_name, foreign) = (source.db.clone(), source.foreign_db.clone());
        std::thread::spawn(move || {
            block_on(async {
                let c = client(&uri).await;
                let writes = c.database(&db_name).collection::<Document>("writes");
                let txn = c.database(&db_name).collection::<Document>("txn");
                let other = c.database(&foreign).collection::<Document>("txn");
                let mut n = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    writes.insert_one(doc! { "_id": n }).await.unwrap();
                    if n % 5 == 0 {
                        let mut s = c.start_session().await.unwrap();
                        s.start_transaction().await.unwrap();
                        txn.insert_one(doc! { "_id": n })
                            .session(&mut s)
                            .await
                            .unwrap();
                        txn.insert_one(doc! { "_id": -n - 1 })
                            .session(&mut s)
                            .await
                            .unwrap();
                        s.commit_transaction().await.unwrap();
                        let mut s = c.start_session().await.unwrap();
                        s.start_transaction().await.unwrap();
                        other
                            .insert_one(doc! { "_id": n })
                            .session(&mut s)
                            .await
                            .unwrap();
                        s.commit_transaction().await.unwrap();
                    }
                    n += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
            })
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    let out = during();
    std::thread::sleep(std::time::Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    out
}

/// `_id`s of `db.writes` and `db.txn` as they stood at `end` on the source, read from its oplog.
fn source_ids_at(db: &str, end: Timestamp) -> (BTreeSet<i64>, BTreeSet<i64>) {
    block_on(async {
        let c = client(&servers().rs_uri).await;
        let oplog = c.database("local").collection::<Document>("oplog.rs");
        let (mut writes, mut txn) = (BTreeSet::new(), BTreeSet::new());
        let writes_ns = format!("{db}.writes");
        let txn_ns = format!("{db}.txn");
        let mut cur = oplog
            .find(doc! { "ts": { "$lte": end }, "$or": [
                { "ns": &writes_ns, "op": "i" },
                { "ns": "admin.$cmd", "o.applyOps.ns": &txn_ns },
            ] })
            .await
            .unwrap();
        while cur.advance().await.unwrap() {
            let e = cur.deserialize_current().unwrap();
            let o = e.get_document("o").unwrap();
            if e.get_str("ns").unwrap() == writes_ns {
                writes.insert(o.get_i64("_id").unwrap());
            } else {
                for op in o.get_array("applyOps").unwrap() {
                    let op = op.as_document().unwrap();
                    if op.get_str("ns").unwrap() == txn_ns {
                        txn.insert(op.get_document("o").unwrap().get_i64("_id").unwrap());
                    }
                }
            }
        }
        (writes, txn)
    })
}

fn ids(uri: &str, db: &str, coll: &str) -> BTreeSet<i64> {
    block_on(async {
        let c = client(uri).await;
        let mut cur = c
            .database(db)
            .collection::<Document>(coll)
            .find(doc! {})
            .projection(doc! { "_id": 1 })
            .await
            .unwrap();
        let mut out = BTreeSet::new();
        while cur.advance().await.unwrap() {
            out.insert(cur.deserialize_current().unwrap().get_i64("_id").unwrap());
        }
        out
    })
}

fn copy_without_manifest(from: &Path, to: &Path) {
    for entry in sorted_entries(from) {
        let name = entry.file_name().unwrap();
        if name == "manifest.json" || name == "backup-started.json" {
            continue;
        }
        let dest = to.join(name);
        if entry.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_without_manifest(&entry, &dest);
        } else {
            std::fs::copy(&entry, &dest).unwrap();
        }
    }
}

fn timestamp(v: &serde_json::Value) -> Timestamp {
    Timestamp {
        time: v["t"].as_u64().unwrap() as u32,
        increment: v["i"].as_u64().unwrap() as u32,
    }
}

/// Check that `db` on `uri` is the source as of `end`, with the index and the view.
fn assert_is_source_at_end(uri: &str, db: &str, source_db: &str, end: Timestamp, who: &str) {
    let (writes, txn) = source_ids_at(source_db, end);
    assert!(!writes.is_empty() && !txn.is_empty());
    assert_eq!(ids(uri, db, "writes"), writes, "{who}: writes");
    assert_eq!(ids(uri, db, "txn"), txn, "{who}: transaction inserts");
    assert_eq!(ids(uri, db, "comentários_日志").len(), 40_000, "{who}");
    block_on(async {
        let c = client(uri).await;
        let d = c.database(db);
        let specs = d
            .collection::<Document>("comentários_日志")
            .list_index_names()
            .await
            .unwrap();
        assert!(specs.contains(&"name_1".to_string()), "{who}: {specs:?}");
        let n = d
            .collection::<Document>("recent")
            .count_documents(doc! {})
            .await
            .unwrap();
        assert_eq!(n, 1_000, "{who}: the view");
        let ticks = d
            .collection::<Document>("ticks")
            .count_documents(doc! {})
            .await
            .unwrap();
        assert_eq!(ticks, 2_000, "{who}: the time-series measurements");
        let names = d.list_collection_names().await.unwrap();
        assert!(names.contains(&"empty".to_string()), "{who}: {names:?}");
    });
}

fn check_compression(compression: &str) {
    let gzip = compression == "gzip";
    let source = Source {
        db: common::unique_db(&format!("mr{compression}")),
        foreign_db: common::unique_db(&format!("mrx{compression}")),
    };
    let dir = tempdir();
    let to = dir.path().join("backups");
    let run = with_writes_during(&source, || {
        mongoshift(
            dir.path(),
            [
                "backup",
                "--uri",
                &servers().rs_uri,
                "--db",
                &source.db,
                "--to",
                to.to_str().unwrap(),
                "--oplog",
                "--compress",
                compression,
                "--output",
                "json",
                "-q",
            ],
        )
    });
    run.assert_code(0);
    let m = run.json();
    let folder = to.join(m["backup_id"].as_str().unwrap());
    let end = timestamp(&m["oplog"]["end"]);

    // 1. The folder, read by mongorestore's rules.
    let plan = mongorestore_dir_plan(&folder, gzip);
    assert_eq!(
        plan.skipped,
        vec![
            "backup-started.json".to_string(),
            "manifest.json".to_string()
        ],
        "only our two marker files are left out by mongorestore"
    );
    let mut expected_data = BTreeMap::new();
    let mut expected_meta = BTreeSet::new();
    for n in m["namespaces"].as_array().unwrap() {
        let ns = format!(
            "{}.{}",
            n["db"].as_str().unwrap(),
            n["collection"].as_str().unwrap()
        );
        expected_meta.insert(ns.clone());
        if !n["data"].is_null() {
            expected_data.insert(ns, n["documents"].as_u64().unwrap());
        }
    }
    assert_eq!(plan.metadata, expected_meta);
    assert_eq!(
        plan.data.keys().collect::<Vec<_>>(),
        expected_data.keys().collect::<Vec<_>>()
    );
    for (ns, path) in &plan.data {
        let stream = read_stream(path, gzip);
        let stats = bson_stream::walk(&stream[..], ns, |_| Ok(())).unwrap();
        assert_eq!(stats.docs, expected_data[ns], "{ns}");
    }
    let oplog = read_stream(
        plan.oplog
            .as_ref()
            .expect("mongorestore finds the oplog only as oplog.bson"),
        gzip,
    );
    let (mut entries, mut our_txns) = (0u64, 0);
    bson_stream::walk(&oplog[..], "oplog.bson", |raw| {
        entries += 1;
        let e = Document::try_from(raw).unwrap();
        let nested: Vec<String> = e
            .get_document("o")
            .ok()
            .and_then(|o| o.get_array("applyOps").ok())
            .map(|ops| {
                ops.iter()
                    .filter_map(Bson::as_document)
                    .filter_map(|op| op.get_str("ns").ok().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let ns = e.get_str("ns").unwrap_or_default();
        assert!(
            !ns.starts_with(&source.foreign_db)
                && !nested.iter().any(|n| n.starts_with(&source.foreign_db)),
            "an entry of a database that was not backed up is in oplog.bson: {e}"
        );
        if nested.iter().any(|n| n.starts_with(&source.db)) {
            our_txns += 1;
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(entries, m["oplog"]["entries"].as_u64().unwrap());
    assert!(
        our_txns > 0,
        "the transactions made during the backup are in oplog.bson"
    );

    // 2. The downloaded folder, manifest removed, restored as a mongodump folder.
    let plain = dir.path().join("downloaded");
    std::fs::create_dir_all(&plain).unwrap();
    copy_without_manifest(&folder, &plain);
    let target = common::unique_db(&format!("mrr{compression}"));
    mongoshift(
        dir.path(),
        [
            "restore",
            "--from",
            plain.to_str().unwrap(),
            "--uri",
            &servers().standalone_uri,
            "--ns-from",
            &format!("{}.*", source.db),
            "--ns-to",
            &format!("{target}.*"),
            "--oplog-replay",
            "--yes",
            "-q",
        ],
    )
    .assert_code(0);
    assert_is_source_at_end(
        &servers().standalone_uri,
        &target,
        &source.db,
        end,
        "mongoshift restore of the folder",
    );

    // 3. Stock mongorestore 100.8.0 on the downloaded folder, with its oplog.
    let mut args = vec![
        "--uri",
        &servers().standalone_uri,
        "--dir",
        plain.to_str().unwrap(),
        "--oplogReplay",
    ];
    if gzip {
        args.push("--gzip");
    }
    let log = common::run_stock("mongorestore", &args);
    assert!(
        log.contains("document(s) restored successfully"),
        "mongorestore's summary line: {log}"
    );
    assert_is_source_at_end(
        &servers().standalone_uri,
        &source.db,
        &source.db,
        end,
        "stock mongorestore",
    );
}

#[test]
fn gzip_backup_folder_is_a_mongorestore_gzip_dump_with_its_oplog() {
    check_compression("gzip");
}

#[test]
fn uncompressed_backup_folder_is_a_mongorestore_dump_with_its_oplog() {
    check_compression("none");
}
