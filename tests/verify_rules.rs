//! `verify`'s comparison rules against the real servers (issue 22), one test per rule:
//! two databases built the same way, then one planted difference, which must be named with
//! its kind and exit 3; identical pairs (NaN validators, twin indexes with collations,
//! capped collections, every BSON type as `_id`) exit 0.

mod common;

use common::{block_on, client, mongoshift, servers, tempdir};
use mongodb::bson::{
    doc, oid::ObjectId, spec::BinarySubtype, Binary, Bson, DateTime, Decimal128, Document,
    JavaScriptCodeWithScope, RawDocumentBuf, Timestamp,
};
use mongodb::Database;
use mongoshift::compare::{order, raw};

/// `verify --output json` of `src` (on the replica set) against `dst` (on the server at `to`).
fn verify(to: &str, src: &str, dst: &str) -> common::Run {
    mongoshift(
        tempdir().path(),
        [
            "verify",
            "--from",
            &servers().rs_uri,
            "--to",
            to,
            "--db",
            src,
            "--ns-from",
            &format!("{src}.*"),
            "--ns-to",
            &format!("{dst}.*"),
            "--no-progress",
            "--output",
            "json",
        ],
    )
}

/// Two databases on the replica set built by `build`: (source, target).
fn pair<F, Fut>(purpose: &str, build: F) -> (String, String)
where
    F: Fn(Database) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (src, dst) = (
        common::unique_db(&format!("{purpose}s")),
        common::unique_db(&format!("{purpose}t")),
    );
    block_on(async {
        let c = client(&servers().rs_uri).await;
        build(c.database(&src)).await;
        build(c.database(&dst)).await;
    });
    (src, dst)
}

/// A database on the replica set (inside `block_on`).
async fn db_on_rs(db: &str) -> Database {
    client(&servers().rs_uri).await.database(db)
}

fn drop_dbs(dbs: &[&str]) {
    block_on(async {
        let c = client(&servers().rs_uri).await;
        for d in dbs {
            c.database(d).drop().await.unwrap();
        }
    });
}

/// The verdict whose source (or, for extras, target) is `name`.
fn entry(j: &serde_json::Value, name: &str) -> serde_json::Value {
    j["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["source"] == name || (n["source"] == "" && n["target"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("{name} not in the report: {j}"))
}

fn identical(src: &str, dst: &str) {
    let r = verify(&servers().rs_uri, src, dst);
    r.assert_code(0);
    assert_eq!(r.json()["identical"], true, "{}", r.stdout);
}

#[test]
fn point1_extras_on_the_target_are_their_own_kind() {
    let (src, dst) = pair("vrx", |d| async move {
        d.collection::<Document>("a")
            .insert_many((0..5).map(|i| doc! { "_id": i }))
            .await
            .unwrap();
        d.create_collection("v")
            .view_on("a".to_string())
            .pipeline(vec![doc! { "$match": { "_id": 1 } }])
            .await
            .unwrap();
    });
    identical(&src, &dst);
    block_on(async {
        let d = db_on_rs(&dst).await;
        d.collection::<Document>("x_extra")
            .insert_one(doc! { "_id": 1 })
            .await
            .unwrap();
        d.create_collection("v_extra")
            .view_on("a".to_string())
            .await
            .unwrap();
    });
    let r = verify(&servers().rs_uri, &src, &dst);
    r.assert_code(3);
    let j = r.json();
    for (name, kind) in [("x_extra", "collection"), ("v_extra", "view")] {
        let e = entry(&j, &format!("{dst}.{name}"));
        assert_eq!(e["extra_on_target"], true, "{e}");
        assert_eq!(e["kind"], kind, "{e}");
        assert!(
            e["metadata"].to_string().contains("only on the target"),
            "{e}"
        );
    }
    assert_eq!(entry(&j, &format!("{src}.a"))["identical"], true);
    drop_dbs(&[&src, &dst]);

    // Every database (no --db): a database only on the target is reported as one.
    let base = common::unique_db("vrxall");
    let extra_db = format!("{base}_more");
    let standalone = &servers().standalone_uri;
    block_on(async {
        for uri in [&servers().rs_uri, standalone] {
            client(uri)
                .await
                .database(&base)
                .collection::<Document>("a")
                .insert_one(doc! { "_id": 1 })
                .await
                .unwrap();
        }
    });
    let all = || {
        mongoshift(
            tempdir().path(),
            [
                "verify",
                "--from",
                &servers().rs_uri,
                "--to",
                standalone,
                "--ns-include",
                &format!("{base}*.*"),
                "--no-progress",
                "--output",
                "json",
            ],
        )
    };
    all().assert_code(0);
    block_on(async {
        client(standalone)
            .await
            .database(&extra_db)
            .collection::<Document>("b")
            .insert_one(doc! { "_id": 1 })
            .await
            .unwrap();
    });
    let r = all();
    r.assert_code(3);
    let e = entry(&r.json(), &extra_db);
    assert_eq!(e["kind"], "database", "{e}");
    assert_eq!(e["extra_on_target"], true, "{e}");
    block_on(async {
        client(&servers().rs_uri)
            .await
            .database(&base)
            .drop()
            .await
            .unwrap();
        let s = client(standalone).await;
        s.database(&base).drop().await.unwrap();
        s.database(&extra_db).drop().await.unwrap();
    });
}

async fn create_indexes(d: &Database, coll: &str, indexes: Vec<Document>) {
    d.run_command(doc! { "createIndexes": coll, "indexes": indexes })
        .await
        .unwrap();
}

/// One index of every kind whose options change what it does, plus twins on one key.
async fn indexed(d: Database) {
    d.collection::<Document>("c")
        .insert_many((0..10).map(|i| doc! { "_id": i, "s": format!("x{i}"), "a": i, "t": "hello world", "p": [i, i], "at": DateTime::from_millis(1_700_000_000_000) }))
        .await
        .unwrap();
    create_indexes(
        &d,
        "c",
        vec![
            doc! { "key": { "s": 1 }, "name": "s_1" },
            doc! { "key": { "s": 1 }, "name": "s_fr", "collation": { "locale": "fr", "strength": 2 } },
            doc! { "key": { "p": "2d" }, "name": "geo", "bits": 20, "min": -100, "max": 100 },
            doc! { "key": { "t": "text" }, "name": "txt", "language_override": "lng", "weights": { "t": 3 } },
            doc! { "key": { "a": 1 }, "name": "partial", "partialFilterExpression": { "a": { "$gt": 5 } } },
            doc! { "key": { "at": 1 }, "name": "ttl", "expireAfterSeconds": 3600 },
            doc! { "key": { "a": -1 }, "name": "hid", "hidden": true },
            doc! { "key": { "$**": 1 }, "name": "wild", "wildcardProjection": { "s": 1, "a": 1 } },
        ],
    )
    .await;
}

#[test]
fn point2_indexes_by_name_and_whole_definition() {
    let (src, dst) = pair("vri", indexed);
    identical(&src, &dst);
    block_on(async {
        let d = db_on_rs(&dst).await;
        let c = d.collection::<Document>("c");
        for name in ["geo", "txt", "partial", "wild"] {
            c.drop_index(name).await.unwrap();
        }
        create_indexes(
            &d,
            "c",
            vec![
                doc! { "key": { "p": "2d" }, "name": "geo", "bits": 26, "min": -100, "max": 100 },
                doc! { "key": { "t": "text" }, "name": "txt", "language_override": "lang", "weights": { "t": 3 } },
                doc! { "key": { "a": 1 }, "name": "partial", "partialFilterExpression": { "a": { "$gt": 6 } } },
                doc! { "key": { "$**": 1 }, "name": "wild", "wildcardProjection": { "s": 1 } },
                // Same key as s_1 and s_fr, another collation: an index of its own.
                doc! { "key": { "s": 1 }, "name": "s_de", "collation": { "locale": "de" } },
            ],
        )
        .await;
        d.run_command(
            doc! { "collMod": "c", "index": { "name": "ttl", "expireAfterSeconds": 60 } },
        )
        .await
        .unwrap();
        d.run_command(doc! { "collMod": "c", "index": { "name": "hid", "hidden": false } })
            .await
            .unwrap();
    });
    let r = verify(&servers().rs_uri, &src, &dst);
    r.assert_code(3);
    let meta = entry(&r.json(), &format!("{src}.c"))["metadata"].clone();
    let lines: Vec<String> = meta
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
    for needle in [
        "index geo differs: bits",
        "index txt differs: language_override",
        "index partial differs: partialFilterExpression",
        "index wild differs: wildcardProjection",
        "index ttl differs: expireAfterSeconds",
        "index hid differs: hidden",
        "index s_de only on the target",
    ] {
        assert!(has(needle), "{needle} not in {lines:#?}");
    }
    assert_eq!(lines.len(), 7, "{lines:#?}");
    drop_dbs(&[&src, &dst]);
}

#[test]
fn point3_pipelines_and_sorts_keep_their_order() {
    let views = |sort: Document, project: Document| {
        move |d: Database| {
            let (sort, project) = (sort.clone(), project.clone());
            async move {
                d.collection::<Document>("c")
                    .insert_one(doc! { "_id": 1, "a": 1, "b": 2 })
                    .await
                    .unwrap();
                d.create_collection("sorted")
                    .view_on("c".to_string())
                    .pipeline(vec![doc! { "$sort": sort }])
                    .await
                    .unwrap();
                d.create_collection("projected")
                    .view_on("c".to_string())
                    .pipeline(vec![doc! { "$project": project }])
                    .await
                    .unwrap();
            }
        }
    };
    let (src, dst) = pair(
        "vro",
        views(doc! { "a": 1, "b": -1 }, doc! { "a": 1, "b": 1 }),
    );
    identical(&src, &dst);
    // The same stages with their fields in another order.
    drop_dbs(&[&dst]);
    block_on(views(doc! { "b": -1, "a": 1 }, doc! { "b": 1, "a": 1 })(
        block_on(db_on_rs(&dst)),
    ));
    let r = verify(&servers().rs_uri, &src, &dst);
    r.assert_code(3);
    let j = r.json();
    for v in ["sorted", "projected"] {
        let e = entry(&j, &format!("{src}.{v}"));
        assert!(e["metadata"].to_string().contains("option pipeline"), "{e}");
    }
    assert_eq!(entry(&j, &format!("{src}.c"))["identical"], true);
    drop_dbs(&[&src, &dst]);
}

#[test]
fn point4_capped_collections_compare_in_natural_order() {
    let capped = |reverse: bool| {
        move |d: Database| async move {
            d.create_collection("log")
                .capped(true)
                .size(1 << 20)
                .await
                .unwrap();
            let mut docs: Vec<Document> = (0..20).map(|i| doc! { "_id": i, "m": i }).collect();
            if reverse {
                docs.reverse();
            }
            for d0 in docs {
                d.collection::<Document>("log")
                    .insert_one(d0)
                    .await
                    .unwrap();
            }
        }
    };
    let (src, dst) = pair("vrc", capped(false));
    identical(&src, &dst);
    drop_dbs(&[&dst]);
    block_on(capped(true)(block_on(db_on_rs(&dst))));
    let r = verify(&servers().rs_uri, &src, &dst);
    r.assert_code(3);
    let e = entry(&r.json(), &format!("{src}.log"));
    assert_eq!(e["documents_differing"], 1, "{e}");
    assert_eq!(e["differences"][0]["kind"], "natural_order", "{e}");
    assert_eq!(e["differences"][0]["id"], 0, "{e}");
    drop_dbs(&[&src, &dst]);
}

#[test]
fn point5_a_validator_with_nan_is_no_false_alarm() {
    let (src, dst) = pair("vrn", |d| async move {
        d.create_collection("c")
            .validator(doc! { "x": { "$ne": f64::NAN }, "$expr": { "$ne": ["$y", f64::NAN] } })
            .await
            .unwrap();
        d.collection::<Document>("c")
            .insert_one(doc! { "_id": 1, "x": 1, "y": 2 })
            .await
            .unwrap();
    });
    identical(&src, &dst);
    // A real change of that validator is still seen.
    block_on(async {
        db_on_rs(&dst)
            .await
            .run_command(doc! { "collMod": "c", "validator": { "x": { "$ne": f64::INFINITY } } })
            .await
            .unwrap();
    });
    let r = verify(&servers().rs_uri, &src, &dst);
    r.assert_code(3);
    assert!(
        entry(&r.json(), &format!("{src}.c"))["metadata"]
            .to_string()
            .contains("option validator"),
        "{}",
        r.stdout
    );
    drop_dbs(&[&src, &dst]);
}

#[test]
fn point6_twin_indexes_with_collations_pass_migrate_and_verify() {
    let src = common::unique_db("vrtw");
    let dst = common::unique_db("vrtwt");
    block_on(async {
        let d = client(&servers().rs_uri).await.database(&src);
        d.collection::<Document>("c")
            .insert_many((0..10).map(|i| doc! { "_id": i, "s": format!("x{i}") }))
            .await
            .unwrap();
        create_indexes(
            &d,
            "c",
            vec![
                doc! { "key": { "s": 1 }, "name": "s_1" },
                doc! { "key": { "s": 1 }, "name": "s_fr", "collation": { "locale": "fr" } },
                doc! { "key": { "s": 1 }, "name": "s_en2", "collation": { "locale": "en", "strength": 2 } },
            ],
        )
        .await;
    });
    let standalone = &servers().standalone_uri;
    // migrate's post-copy check uses the same rules: no false alarm there either.
    mongoshift(
        tempdir().path(),
        [
            "migrate",
            "--from",
            &servers().rs_uri,
            "--to",
            standalone,
            "--db",
            &src,
            "--ns-from",
            &format!("{src}.*"),
            "--ns-to",
            &format!("{dst}.*"),
            "--yes",
            "--no-progress",
        ],
    )
    .assert_code(0);
    let r = verify(standalone, &src, &dst);
    r.assert_code(0);
    // Dropping one twin is seen by name.
    block_on(async {
        client(standalone)
            .await
            .database(&dst)
            .collection::<Document>("c")
            .drop_index("s_fr")
            .await
            .unwrap();
    });
    let r = verify(standalone, &src, &dst);
    r.assert_code(3);
    assert!(
        r.stdout.contains("index s_fr missing on the target"),
        "{}",
        r.stdout
    );
    block_on(async {
        client(&servers().rs_uri)
            .await
            .database(&src)
            .drop()
            .await
            .unwrap();
        client(standalone)
            .await
            .database(&dst)
            .drop()
            .await
            .unwrap();
    });
}

/// `{ _id: id, s: <bytes as a BSON string, unchecked> }`.
fn with_raw_string(id: i32, s: &[u8]) -> RawDocumentBuf {
    let mut v = vec![0u8; 4];
    v.extend_from_slice(&[0x10, b'_', b'i', b'd', 0]);
    v.extend_from_slice(&id.to_le_bytes());
    v.extend_from_slice(&[0x02, b's', 0]);
    v.extend_from_slice(&(s.len() as i32 + 1).to_le_bytes());
    v.extend_from_slice(s);
    v.extend_from_slice(&[0, 0]);
    let n = v.len() as i32;
    v[..4].copy_from_slice(&n.to_le_bytes());
    RawDocumentBuf::from_bytes(v).unwrap()
}

#[test]
fn point7_invalid_utf8_is_compared_never_decoded() {
    let (src, dst) = pair("vru", |d| async move {
        let c = d.collection::<RawDocumentBuf>("c");
        for i in 0..5 {
            c.insert_one(with_raw_string(i, b"caf\xe9 \xff"))
                .await
                .unwrap();
        }
    });
    identical(&src, &dst);
    block_on(async {
        let c = db_on_rs(&dst).await.collection::<RawDocumentBuf>("c");
        c.delete_one(doc! { "_id": 3 }).await.unwrap();
        c.insert_one(with_raw_string(3, b"caf\xe9 \xfe"))
            .await
            .unwrap();
    });
    let r = verify(&servers().rs_uri, &src, &dst);
    r.assert_code(3);
    let e = entry(&r.json(), &format!("{src}.c"));
    assert_eq!(e["documents_differing"], 1, "{e}");
    assert_eq!(e["differences"][0]["kind"], "different", "{e}");
    assert_eq!(e["differences"][0]["id"], 3, "{e}");
    assert_eq!(e["differences"][0]["paths"][0], "s", "{e}");
    drop_dbs(&[&src, &dst]);
}

/// One `_id` of every type the server accepts as an `_id`, several numbers across types.
fn every_type() -> Vec<Bson> {
    let pointer: Bson = Bson::try_from(serde_json::json!({
        "$dbPointer": { "$ref": "db.c", "$id": { "$oid": "0123456789abcdef01234567" } }
    }))
    .unwrap();
    vec![
        Bson::MaxKey,
        Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope {
            code: "f()".into(),
            scope: doc! { "x": 1 },
        }),
        Bson::JavaScriptCode("f()".into()),
        Bson::JavaScriptCode("e()".into()),
        pointer,
        Bson::Timestamp(Timestamp {
            time: 5,
            increment: 1,
        }),
        Bson::DateTime(DateTime::from_millis(-1)),
        Bson::DateTime(DateTime::from_millis(1_700_000_000_000)),
        Bson::Boolean(true),
        Bson::Boolean(false),
        Bson::ObjectId(ObjectId::from_bytes([7; 12])),
        Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes: vec![1, 2],
        }),
        Bson::Binary(Binary {
            subtype: BinarySubtype::Uuid,
            bytes: vec![0; 16],
        }),
        Bson::Document(doc! { "a": 1 }),
        Bson::Document(doc! { "a": "1" }),
        Bson::Symbol("sym".into()),
        Bson::String("str".into()),
        Bson::String("st".into()),
        Bson::Decimal128("1.25".parse::<Decimal128>().unwrap()),
        Bson::Decimal128("-1E+400".parse::<Decimal128>().unwrap()),
        Bson::Double(2.5),
        Bson::Double(f64::NEG_INFINITY),
        Bson::Double(f64::NAN),
        Bson::Int64(9_007_199_254_740_993),
        Bson::Int32(1),
        Bson::Null,
        Bson::MinKey,
    ]
}

async fn fill_every_type(d: Database) {
    let c = d.collection::<Document>("ids");
    for (i, id) in every_type().into_iter().enumerate() {
        c.insert_one(doc! { "_id": id, "i": i as i32 })
            .await
            .unwrap();
    }
}

#[test]
fn point8_bson_order_of_every_type_agrees_with_mongod() {
    let (src, dst) = pair("vrb", fill_every_type);
    // The server's order: find().sort({_id: 1}), read as raw bytes.
    let server: Vec<Vec<u8>> = block_on(async {
        use futures::TryStreamExt;
        let docs: Vec<RawDocumentBuf> = db_on_rs(&src)
            .await
            .collection::<RawDocumentBuf>("ids")
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        docs.into_iter().map(|d| d.into_bytes()).collect()
    });
    assert_eq!(server.len(), every_type().len());
    // Ours: the same documents from the inserted (shuffled) order, sorted by our rules.
    let mut ours: Vec<Vec<u8>> = server.clone();
    ours.reverse();
    ours.swap(3, 17);
    ours.sort_by(|a, b| {
        let x = raw::field(a, "_id").unwrap().unwrap();
        let y = raw::field(b, "_id").unwrap().unwrap();
        order::compare_elements(&x, &y)
    });
    let show = |v: &[Vec<u8>]| -> Vec<String> {
        v.iter()
            .map(|d| raw::field(d, "_id").unwrap().unwrap().to_bson().to_string())
            .collect()
    };
    assert_eq!(show(&ours), show(&server));
    // Strictly increasing: no two types or values are taken for equal.
    for w in server.windows(2) {
        let x = raw::field(&w[0], "_id").unwrap().unwrap();
        let y = raw::field(&w[1], "_id").unwrap().unwrap();
        assert_eq!(
            order::compare_elements(&x, &y),
            std::cmp::Ordering::Less,
            "{:?} vs {:?}",
            x.to_bson(),
            y.to_bson()
        );
    }

    identical(&src, &dst);
    // One missing document with a Code-typed _id: exactly that one is named.
    block_on(async {
        db_on_rs(&dst)
            .await
            .collection::<Document>("ids")
            .delete_one(doc! { "_id": Bson::JavaScriptCode("f()".into()) })
            .await
            .unwrap();
    });
    let r = verify(&servers().rs_uri, &src, &dst);
    r.assert_code(3);
    let e = entry(&r.json(), &format!("{src}.ids"));
    assert_eq!(e["documents_differing"], 1, "{e}");
    assert_eq!(e["differences"][0]["kind"], "missing_on_target", "{e}");
    assert_eq!(e["differences"][0]["id"]["$code"], "f()", "{e}");
    drop_dbs(&[&src, &dst]);
}
