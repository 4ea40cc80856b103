//! Issue 20, points 7–11, against the real servers and the stock mongodump/mongorestore
//! 100.8.0: collection file names escaped and unescaped exactly as the stock tools do
//! (spaces, `+ & = : @ %`, Unicode, dots, `x.bson`), long names truncated to `…%24<hash>`
//! with the real name in the metadata, documents the server accepted but that are not
//! well-formed BSON content (invalid UTF-8, a binary subtype 2 with a wrong inner length)
//! carried instead of rejected, and simple-collation indexes on a collated collection
//! rebuilt with the simple collation.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{block_on, client, hashes, mongoshift, schema_of, servers, tempdir};
use mongodb::bson::{doc, Document, RawDocumentBuf};

/// 68 × "日": 204 bytes, 612 escaped — mongodump truncates its file name.
fn long_name() -> String {
    "日".repeat(68)
}

/// Every odd name of points 8–10.
fn names() -> Vec<String> {
    vec![
        "with space".into(),
        "plus+amp&eq=colon:at@pct%".into(),
        "dots.in.the.name".into(),
        "x.bson".into(),
        "日志 ünïcödé".into(),
        "tilde~dash-under_score".into(),
        long_name(),
    ]
}

/// A document the server stores as it was sent: `_id`, then a string whose bytes are not
/// UTF-8, then a binary subtype 2 whose inner length (9) disagrees with its 3 bytes.
fn odd_document(id: i32) -> RawDocumentBuf {
    let mut b = vec![0u8; 4];
    b.push(0x10);
    b.extend_from_slice(b"_id\0");
    b.extend_from_slice(&id.to_le_bytes());
    b.push(0x02);
    b.extend_from_slice(b"s\0");
    b.extend_from_slice(&4i32.to_le_bytes());
    b.extend_from_slice(&[b'a', 0xff, 0xfe, 0]);
    b.push(0x05);
    b.extend_from_slice(b"bin\0");
    b.extend_from_slice(&7i32.to_le_bytes());
    b.push(2);
    b.extend_from_slice(&9i32.to_le_bytes());
    b.extend_from_slice(b"xyz");
    b.push(0);
    let n = b.len() as i32;
    b[..4].copy_from_slice(&n.to_le_bytes());
    RawDocumentBuf::from_bytes(b).expect("framed")
}

/// A source database on the replica set with every odd name (3 documents and an index
/// each) and `odd`, whose documents are invalid UTF-8 and odd binary beside plain ones.
fn names_source() -> String {
    let db = common::unique_db("names");
    block_on(async {
        let c = client(&servers().rs_uri).await;
        let d = c.database(&db);
        for name in names() {
            let coll = d.collection::<Document>(&name);
            coll.insert_many((0..3).map(|i| doc! { "_id": i, "v": format!("{name}#{i}") }))
                .await
                .unwrap_or_else(|e| panic!("inserting into {name:?}: {e}"));
            d.run_command(doc! { "createIndexes": &name, "indexes": [ { "key": { "v": 1 }, "name": "v_1" } ] })
                .await
                .unwrap();
        }
        let odd = d.collection::<RawDocumentBuf>("odd");
        odd.insert_many((0..5).map(odd_document)).await.unwrap();
        d.collection::<Document>("odd")
            .insert_many((5..107).map(|i| doc! { "_id": i, "s": "plain" }))
            .await
            .unwrap();
    });
    db
}

/// The file names in one database folder of a dump.
fn file_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The one backup folder below `to`.
fn backup_folder(to: &Path) -> PathBuf {
    let ids: Vec<PathBuf> = std::fs::read_dir(to)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    ids[0].clone()
}

fn drop_db(uri: &str, db: &str) {
    block_on(async { client(uri).await.database(db).drop().await.unwrap() });
}

fn backup(db: &str, to: &Path, compress: &str) -> PathBuf {
    mongoshift(
        to.parent().unwrap(),
        [
            "backup",
            "--uri",
            &servers().rs_uri,
            "--db",
            db,
            "--to",
            to.to_str().unwrap(),
            "--compress",
            compress,
            "-q",
        ],
    )
    .assert_code(0);
    backup_folder(to)
}

/// Our restore of `from` into the standalone server, database names unchanged.
fn restore(from: &Path, db: &str) -> common::Run {
    drop_db(&servers().standalone_uri, db);
    let run = mongoshift(
        from.parent().unwrap(),
        [
            "restore",
            "--from",
            from.to_str().unwrap(),
            "--uri",
            &servers().standalone_uri,
            "--yes",
            "--output",
            "json",
        ],
    );
    run
}

#[track_caller]
fn assert_same(db: &str, what: &str) {
    let want = hashes(&servers().rs_uri, db);
    for n in names() {
        assert!(
            want.contains_key(&n),
            "{what}: the source lacks {n:?}: {want:?}"
        );
    }
    assert_eq!(
        want,
        hashes(&servers().standalone_uri, db),
        "{what}: collection names and dbHash"
    );
    assert_eq!(
        schema_of(&servers().rs_uri, db),
        schema_of(&servers().standalone_uri, db),
        "{what}: options and indexes"
    );
}

/// Stock mongodump's folders (plain and --gzip) restore with every name and every
/// document as the source has them: `with+space.bson` is `with space`, `%2B` is `+`, the
/// truncated long name is read from its metadata, `odd` is restored whole (107 documents).
#[test]
fn stock_mongodump_folders_restore_with_every_name_and_document() {
    let src = names_source();
    // A long name with `+`, a space and `%`: its real name is the metadata's
    // collectionName as written (stock mongorestore would unescape it into "a b c").
    let long_plus = format!("{} a+b c%", "ü".repeat(100));
    common::insert(&servers().rs_uri, &src, &long_plus, vec![doc! { "_id": 1 }]);
    let dir = tempdir();
    for gzip in [false, true] {
        let out = dir.path().join(if gzip { "gz" } else { "plain" });
        let mut args = vec![
            "--uri".to_string(),
            servers().rs_uri.clone(),
            "--db".into(),
            src.clone(),
            format!("--out={}", out.display()),
        ];
        if gzip {
            args.push("--gzip".into());
        }
        common::run_stock(
            "mongodump",
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let files = file_names(&out.join(&src));
        let sfx = if gzip { ".gz" } else { "" };
        for f in [
            "with+space.bson",
            "plus%2Bamp%26eq%3Dcolon%3Aat%40pct%25.bson",
            "dots.in.the.name.bson",
            "x.bson.bson",
            "x.bson.metadata.json",
            "%E6%97%A5%E5%BF%97+%C3%BCn%C3%AFc%C3%B6d%C3%A9.bson",
            "tilde~dash-under_score.bson",
        ] {
            let f = format!("{f}{sfx}");
            assert!(files.contains(&f), "mongodump wrote no {f}: {files:?}");
        }
        let long: Vec<&String> = files
            .iter()
            .filter(|f| f.starts_with("%E6%97%A5") && f.contains("%24"))
            .collect();
        assert_eq!(
            long.len(),
            2,
            "the truncated long name's two files: {files:?}"
        );
        let plus: Vec<&String> = files
            .iter()
            .filter(|f| f.starts_with("%C3%BC") && f.contains("%24"))
            .collect();
        assert_eq!(plus.len(), 2, "{files:?}");
        let run = restore(&out, &src);
        run.assert_code(0);
        let odd = run.json()["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["target"] == format!("{src}.odd"))
            .cloned()
            .unwrap();
        assert_eq!(odd["ok"], true, "{odd}");
        assert!(hashes(&servers().standalone_uri, &src).contains_key(&long_plus));
        assert_same(
            &src,
            if gzip {
                "mongodump --gzip → restore"
            } else {
                "mongodump → restore"
            },
        );
    }
}

/// Our backup folder is named file for file as stock mongodump names the same database,
/// and stock mongorestore restores it (plain and gzip) with every name unchanged; our own
/// zstd backup passes `backups verify --deep` (the `odd` documents are content, not
/// corruption; `x.bson.metadata.json.zst` is JSON, not BSON) and restores the same.
#[test]
fn our_backup_is_named_as_mongodump_names_it_and_stock_mongorestore_restores_it() {
    let src = names_source();
    let dir = tempdir();
    let stock = dir.path().join("stock");
    common::run_stock(
        "mongodump",
        &[
            "--uri",
            &servers().rs_uri,
            "--db",
            &src,
            &format!("--out={}", stock.display()),
        ],
    );
    let stock_files = file_names(&stock.join(&src));
    for (compress, gzip) in [("none", false), ("gzip", true)] {
        let folder = backup(&src, &dir.path().join(compress), compress);
        let ours = file_names(&folder.join(&src));
        let want: BTreeSet<String> = stock_files
            .iter()
            .map(|f| format!("{f}{}", if gzip { ".gz" } else { "" }))
            .collect();
        assert_eq!(ours, want, "{compress}: our file names are mongodump's");
        drop_db(&servers().standalone_uri, &src);
        let mut args = vec![
            "--uri",
            &servers().standalone_uri,
            "--dir",
            folder.to_str().unwrap(),
        ];
        if gzip {
            args.push("--gzip");
        }
        let log = common::run_stock("mongorestore", &args);
        assert!(log.contains("0 document(s) failed"), "{log}");
        assert_same(&src, &format!("our {compress} backup → stock mongorestore"));
    }
    let to = dir.path().join("zstd");
    let folder = backup(&src, &to, "zstd");
    let files = file_names(&folder.join(&src));
    assert!(files.contains("x.bson.metadata.json.zst"), "{files:?}");
    let long: Vec<&String> = files.iter().filter(|f| f.contains("%24")).collect();
    assert_eq!(long.len(), 2, "{files:?}");
    assert!(long.iter().all(|f| f.len() <= 255), "{long:?}");
    let v = mongoshift(
        dir.path(),
        [
            "backups",
            "verify",
            "latest",
            "--deep",
            "--from",
            to.to_str().unwrap(),
        ],
    );
    v.assert_code(0);
    let run = restore(&folder, &src);
    run.assert_code(0);
    assert_same(&src, "our zstd backup → restore");
}

/// A collection with a default collation and indexes built with `{locale: "simple"}`:
/// listIndexes shows those without a `collation` field, our metadata writes them as
/// mongodump does, and restore (of our backup and of mongodump's folder) and migrate
/// rebuild them with the simple collation — the text index builds, the unique index keeps
/// "A" and "a", the plain index does not take `en_US/2`.
#[test]
fn simple_collation_indexes_on_a_collated_collection_stay_simple() {
    let src = common::unique_db("coll");
    block_on(async {
        let d = client(&servers().rs_uri).await.database(&src);
        d.run_command(
            doc! { "create": "collated", "collation": { "locale": "en_US", "strength": 2 } },
        )
        .await
        .unwrap();
        d.run_command(doc! { "createIndexes": "collated", "indexes": [
            { "key": { "t": "text" }, "name": "t_text", "collation": { "locale": "simple" } },
            { "key": { "k": 1 }, "name": "k_1", "unique": true, "collation": { "locale": "simple" } },
            { "key": { "p": 1 }, "name": "p_1", "collation": { "locale": "simple" } },
            { "key": { "q": 1 }, "name": "q_1" },
        ] })
        .await
        .unwrap();
        d.collection::<Document>("collated")
            .insert_many(vec![
                doc! { "_id": 1, "k": "A", "t": "one", "p": "x", "q": "y" },
                doc! { "_id": 2, "k": "a", "t": "two", "p": "X", "q": "Y" },
            ])
            .await
            .unwrap();
    });
    // How the server reports them: no collation field on the simple ones.
    let listed = listed_indexes(&servers().rs_uri, &src);
    for name in ["t_text", "k_1", "p_1"] {
        assert!(
            !listed[name].contains_key("collation"),
            "{name}: {:?}",
            listed[name]
        );
    }
    assert_eq!(
        listed["q_1"]
            .get_document("collation")
            .unwrap()
            .get_str("locale")
            .unwrap(),
        "en_US"
    );
    let dir = tempdir();
    let stock = dir.path().join("stock");
    common::run_stock(
        "mongodump",
        &[
            "--uri",
            &servers().rs_uri,
            "--db",
            &src,
            &format!("--out={}", stock.display()),
        ],
    );
    let folder = backup(&src, &dir.path().join("ours"), "none");
    let meta = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(p).unwrap()).unwrap()["indexes"]
            .clone()
    };
    assert_eq!(
        meta(folder.join(&src).join("collated.metadata.json")),
        meta(stock.join(&src).join("collated.metadata.json")),
        "our metadata's indexes are mongodump's"
    );
    let expect_simple = |uri: &str, db: &str, what: &str| {
        let got = listed_indexes(uri, db);
        assert_eq!(got.len(), 5, "{what}: {got:?}");
        for name in ["t_text", "k_1", "p_1"] {
            assert!(
                !got[name].contains_key("collation"),
                "{what}: {name}: {:?}",
                got[name]
            );
        }
        assert_eq!(
            got["q_1"].get_document("collation").unwrap(),
            listed["q_1"].get_document("collation").unwrap(),
            "{what}"
        );
        assert_eq!(
            schema_of(&servers().rs_uri, &src),
            schema_of(uri, db),
            "{what}"
        );
        assert_eq!(hashes(&servers().rs_uri, &src), hashes(uri, db), "{what}");
    };
    for (from, what) in [
        (folder.clone(), "our backup → restore"),
        (stock.clone(), "mongodump → restore"),
    ] {
        let run = restore(&from, &src);
        run.assert_code(0);
        expect_simple(&servers().standalone_uri, &src, what);
    }
    let dst = common::unique_db("colm");
    mongoshift(
        dir.path(),
        [
            "migrate",
            "--from",
            &servers().rs_uri,
            "--to",
            &servers().standalone_uri,
            "--db",
            &src,
            "--ns-from",
            &format!("{src}.*"),
            "--ns-to",
            &format!("{dst}.*"),
            "--yes",
            "-q",
        ],
    )
    .assert_code(0);
    expect_simple(&servers().standalone_uri, &dst, "migrate");
}

/// listIndexes of `db.collated`, by index name, without `ns` (none while it does not exist).
fn listed_indexes(uri: &str, db: &str) -> std::collections::BTreeMap<String, Document> {
    block_on(async {
        let d = client(uri).await.database(db);
        let mut out = std::collections::BTreeMap::new();
        let Ok(mut cur) = d
            .run_cursor_command(doc! { "listIndexes": "collated" })
            .await
        else {
            return out;
        };
        while cur.advance().await.unwrap() {
            let mut i: Document = cur.deserialize_current().unwrap();
            i.remove("ns");
            out.insert(i.get_str("name").unwrap().to_string(), i);
        }
        out
    })
}

/// The tail's createIndexes: indexes built with `{locale: "simple"}` on a collated
/// collection while `migrate --follow` runs arrive simple (the text index builds at all).
#[test]
fn the_tail_builds_simple_collation_indexes_simple() {
    let src = common::unique_db("colf");
    let dst = common::unique_db("colg");
    block_on(async {
        let d = client(&servers().rs_uri).await.database(&src);
        d.run_command(
            doc! { "create": "collated", "collation": { "locale": "en_US", "strength": 2 } },
        )
        .await
        .unwrap();
        d.collection::<Document>("collated")
            .insert_many(vec![
                doc! { "_id": 1, "k": "A", "t": "one" },
                doc! { "_id": 2, "k": "a", "t": "two" },
            ])
            .await
            .unwrap();
    });
    let dir = tempdir();
    let mut tail = common::follow::Follow::start(dir.path(), &[(&src, &dst)], &[]);
    let wait = Duration::from_secs(120);
    tail.wait_for("the copy", wait, |_| {
        listed_indexes(&servers().atlas_uri, &dst).contains_key("_id_")
    });
    block_on(async {
        client(&servers().rs_uri)
            .await
            .database(&src)
            .run_command(doc! { "createIndexes": "collated", "indexes": [
                { "key": { "t": "text" }, "name": "t_text", "collation": { "locale": "simple" } },
                { "key": { "k": 1 }, "name": "k_1", "unique": true, "collation": { "locale": "simple" } },
                { "key": { "q": 1 }, "name": "q_1" },
            ] })
            .await
            .unwrap();
    });
    tail.wait_for("the tail's index builds", wait, |_| {
        listed_indexes(&servers().atlas_uri, &dst).len() == 4
    });
    drop(tail);
    let got = listed_indexes(&servers().atlas_uri, &dst);
    for name in ["t_text", "k_1"] {
        assert!(
            !got[name].contains_key("collation"),
            "{name}: {:?}",
            got[name]
        );
    }
    assert_eq!(
        got["q_1"]
            .get_document("collation")
            .unwrap()
            .get_str("locale")
            .unwrap(),
        "en_US"
    );
}

/// A truncated long name whose metadata file is missing cannot be named: the restore
/// refuses the folder as invalid input (exit 2), naming the file and what to copy.
#[test]
fn a_truncated_name_without_its_metadata_is_invalid_input() {
    let src = common::unique_db("namem");
    common::insert(
        &servers().rs_uri,
        &src,
        &long_name(),
        vec![doc! { "_id": 1 }],
    );
    common::insert(&servers().rs_uri, &src, "short", vec![doc! { "_id": 1 }]);
    let dir = tempdir();
    let out = dir.path().join("dump");
    common::run_stock(
        "mongodump",
        &[
            "--uri",
            &servers().rs_uri,
            "--db",
            &src,
            &format!("--out={}", out.display()),
        ],
    );
    let meta = file_names(&out.join(&src))
        .into_iter()
        .find(|f| f.contains("%24") && f.ends_with(".metadata.json"))
        .expect("the long name's metadata file");
    std::fs::remove_file(out.join(&src).join(&meta)).unwrap();
    let run = restore(&out, &src);
    run.assert_code(2);
    assert!(
        run.stderr.contains("truncated long name") && run.stderr.contains(".metadata.json"),
        "{}",
        run.stderr
    );
}
