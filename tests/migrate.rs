//! `migrate` against the real servers: the legacy replica set and the standalone copied into
//! the Atlas-like server (auth + TLS), every collection kind, `_id`s of mixed types split
//! into ranges, `kill -9` and `--resume`, conflicts, dry runs, and failures naming the side.

mod common;

use common::{assert_no_secret, block_on, client, hashes, mongoshift, schema_of, servers, tempdir};
use mongodb::bson::{doc, oid::ObjectId, Binary, Bson, DateTime, Document};

/// A source database with every collection kind: the predixi sample, an empty collection, a
/// capped one, one with a validator, a time-series one, a view, a non-ASCII name, and a
/// collection whose `_id`s mix types (big enough to be split at --range-mb 1).
fn source_db(uri: &str, purpose: &str) -> String {
    let db = common::unique_db(purpose);
    block_on(async {
        let c = client(uri).await;
        let d = c.database(&db);
        common::load_sample(&d, 1.0, 5).await;
        d.create_collection("empty").await.unwrap();
        d.create_collection("events")
            .capped(true)
            .size(1 << 20)
            .await
            .unwrap();
        d.collection::<Document>("events")
            .insert_many((0..100).map(|i| doc! { "i": i }))
            .await
            .unwrap();
        d.create_collection("kyc")
            .validator(doc! { "$jsonSchema": { "required": ["level"] } })
            .await
            .unwrap();
        d.collection::<Document>("kyc")
            .insert_one(doc! { "level": 2 })
            .await
            .unwrap();
        d.run_command(
            doc! { "create": "ticks", "timeseries": { "timeField": "at", "metaField": "m" } },
        )
        .await
        .unwrap();
        let now = DateTime::now().timestamp_millis();
        d.collection::<Document>("ticks")
            .insert_many(
                (0..1_500i64).map(
                    |i| doc! { "at": DateTime::from_millis(now - i * 1_000), "m": i % 5, "v": i },
                ),
            )
            .await
            .unwrap();
        d.create_collection("open_markets")
            .view_on("markets".to_string())
            .pipeline(vec![doc! { "$match": { "status": "open" } }])
            .await
            .unwrap();
        d.collection::<Document>("comentários_日志")
            .insert_many((0..300).map(|i| doc! { "_id": i, "texto": format!("olá {i} 日志") }))
            .await
            .unwrap();
        let pad = "x".repeat(400);
        let mixed: Vec<Document> = (0..12_000i64)
            .map(|i| {
                let id = match i % 8 {
                    0 => Bson::Int64(i),
                    1 => Bson::Double(i as f64 + 0.5),
                    2 => Bson::String(format!("s{i:06}")),
                    3 => Bson::ObjectId(ObjectId::new()),
                    4 => Bson::DateTime(DateTime::from_millis(i * 1_000)),
                    5 => Bson::Document(doc! { "k": i, "z": "a" }),
                    6 => Bson::Binary(Binary {
                        subtype: mongodb::bson::spec::BinarySubtype::Generic,
                        bytes: i.to_be_bytes().to_vec(),
                    }),
                    _ => Bson::Int32(-(i as i32)),
                };
                doc! { "_id": id, "pad": &pad }
            })
            .collect();
        d.collection::<Document>("mixed_ids")
            .insert_many(mixed)
            .await
            .unwrap();
        for special in [Bson::Null, Bson::MinKey, Bson::MaxKey, Bson::Boolean(true)] {
            d.collection::<Document>("mixed_ids")
                .insert_one(doc! { "_id": special, "pad": "edge" })
                .await
                .unwrap();
        }
    });
    db
}

fn migrate(from: &str, to: &str, extra: &[&str]) -> common::Run {
    let mut args = vec!["migrate", "--from", from, "--to", to];
    args.extend_from_slice(extra);
    mongoshift(tempdir().path(), args)
}

#[track_caller]
fn assert_same(src_uri: &str, src: &str, dst_uri: &str, dst: &str) {
    let want = hashes(src_uri, src);
    assert!(want.contains_key("system.buckets.ticks"), "{want:?}");
    assert!(want.contains_key("mixed_ids"), "{want:?}");
    assert_eq!(want, hashes(dst_uri, dst), "dbHash per collection");
    assert_eq!(
        schema_of(src_uri, src),
        schema_of(dst_uri, dst),
        "options and indexes"
    );
}

#[test]
fn replica_set_to_atlas_copies_every_kind_with_mixed_ids_in_ranges() {
    let rs = &servers().rs_uri;
    let src = source_db(rs, "mgsrc");
    let dst = common::unique_db("mgdst");
    let rename = [
        "--ns-from",
        &format!("{src}.*"),
        "--ns-to",
        &format!("{dst}.*"),
    ];
    let plan_of = |run: &common::Run, coll: &str| {
        run.json()["plan"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["source"] == format!("{src}.{coll}"))
            .cloned()
            .unwrap()
    };
    // The dry run shows the ranges and writes nothing. A collection whose _id values do
    // not follow the order they were written in (here the types take turns) is named,
    // with the option that reads it in storage order.
    let mut args = vec![
        "--db",
        &src,
        "--range-mb",
        "1",
        "--dry-run",
        "--output",
        "json",
    ];
    args.extend_from_slice(&rename);
    let dry = migrate(rs, &servers().atlas_uri, &args);
    dry.assert_code(0);
    let mixed = plan_of(&dry, "mixed_ids");
    assert!(mixed["ranges"].as_u64().unwrap() > 2, "{mixed}");
    assert!(
        dry.stderr.contains(&format!("{src}.mixed_ids"))
            && dry.stderr.contains("--read-order natural"),
        "{}",
        dry.stderr
    );
    // With --read-order natural it is one natural-order scan.
    args.extend_from_slice(&["--read-order", "natural"]);
    let dry = migrate(rs, &servers().atlas_uri, &args);
    dry.assert_code(0);
    assert_eq!(plan_of(&dry, "mixed_ids")["ranges"], 1, "{}", dry.stdout);
    assert!(
        hashes(&servers().atlas_uri, &dst).is_empty(),
        "dry run wrote nothing"
    );

    let mut args = vec!["--db", &src, "--range-mb", "1", "--yes", "--output", "json"];
    args.extend_from_slice(&rename);
    let run = migrate(rs, &servers().atlas_uri, &args);
    run.assert_code(0);
    assert_no_secret(&run.all(), "migrate output");
    assert_eq!(run.json()["ok"], true, "{}", run.stdout);
    assert_same(rs, &src, &servers().atlas_uri, &dst);
    // The view works on the renamed database, and nothing of mongoshift's is left behind.
    block_on(async {
        let c = client(&servers().atlas_uri).await;
        let n = c
            .database(&dst)
            .collection::<Document>("open_markets")
            .count_documents(doc! {})
            .await
            .unwrap();
        assert!(n > 0);
        let left = c
            .database("mongoshift")
            .collection::<Document>("migrations")
            .count_documents(doc! { "source": { "$regex": "^migrate from" } , "ns": { "$regex": format!("^{dst}\\.") } })
            .await
            .unwrap();
        assert_eq!(left, 0, "a clean migrate clears its resume state");
    });

    // Read in natural order instead, every collection arrives the same.
    let natural = common::unique_db("mgdstnat");
    let run = migrate(
        rs,
        &servers().atlas_uri,
        &[
            "--db",
            &src,
            "--range-mb",
            "1",
            "--read-order",
            "natural",
            "--yes",
            "--ns-from",
            &format!("{src}.*"),
            "--ns-to",
            &format!("{natural}.*"),
        ],
    );
    run.assert_code(0);
    assert_same(rs, &src, &servers().atlas_uri, &natural);
    block_on(async {
        client(&servers().atlas_uri)
            .await
            .database(&natural)
            .drop()
            .await
            .unwrap()
    });

    // A second run into the same, now non-empty, targets is refused and writes nothing.
    let mut args = vec!["--db", &src, "--yes"];
    args.extend_from_slice(&rename);
    let again = migrate(rs, &servers().atlas_uri, &args);
    again.assert_code(2);
    assert!(
        again.stderr.contains("already hold documents"),
        "{}",
        again.stderr
    );
}

#[test]
fn standalone_to_atlas_by_config_target_names() {
    let sa = &servers().standalone_uri;
    let src = source_db(sa, "mgsa");
    let dst = common::unique_db("mgsadst");
    let dir = tempdir();
    std::fs::write(
        dir.path().join("mongoshift.yaml"),
        "targets:\n  legacy: { uri: \"${LEGACY}\" }\n  atlas: { uri: \"${ATLAS}\" }\n",
    )
    .unwrap();
    let run = common::Cli::new(dir.path())
        .env("LEGACY", sa)
        .env("ATLAS", &servers().atlas_uri)
        .run([
            "migrate",
            "--from",
            "legacy",
            "--to",
            "atlas",
            "--db",
            &src,
            "--ns-from",
            &format!("{src}.*"),
            "--ns-to",
            &format!("{dst}.*"),
            "--yes",
        ]);
    run.assert_code(0);
    assert!(run.stdout.contains("migrated"), "{}", run.stdout);
    // The copy checks itself at verify's metadata level and names the full verify.
    assert!(
        run.stderr.contains("checked after the copy")
            && run
                .stderr
                .contains("mongoshift verify --from legacy --to atlas"),
        "{}",
        run.stderr
    );
    assert_no_secret(&run.all(), "migrate output");
    assert_same(sa, &src, &servers().atlas_uri, &dst);
}

#[test]
fn killed_migrate_resumes_range_by_range_to_identical_hashes() {
    let rs = &servers().rs_uri;
    let src = common::unique_db("mgkill");
    block_on(async {
        let c = client(rs).await;
        mongoshift::sample::load(&c.database(&src), 40.0, 9, |_, _| {})
            .await
            .unwrap();
    });
    let dst = common::unique_db("mgkilled");
    let args: Vec<String> = [
        "migrate",
        "--from",
        rs,
        "--to",
        &servers().atlas_uri,
        "--db",
        &src,
        "--ns-from",
        &format!("{src}.*"),
        "--ns-to",
        &format!("{dst}.*"),
        "--range-mb",
        "4",
        "--parallel",
        "1",
        "--workers-per-collection",
        "1",
        "--yes",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let dir = tempdir();
    // --max-rate spaces the copy (40 MB at 8 MB/s) so that the kill lands in its middle on
    // any machine; the resume below runs at full speed.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mongoshift"))
        .current_dir(dir.path())
        .args(&args)
        .args(["--max-rate", "8MB"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // kill -9 once at least one range of some collection is recorded as done.
    let mut done_ranges = 0;
    for _ in 0..3_000 {
        done_ranges = block_on(async {
            client(&servers().atlas_uri)
                .await
                .database("mongoshift")
                .collection::<Document>("migrations")
                .count_documents(doc! { "ns": { "$regex": format!("^{dst}\\.") }, "part": { "$exists": true }, "state": "done" })
                .await
                .unwrap_or(0)
        });
        if done_ranges > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(done_ranges > 0, "no range finished before the copy ended");
    assert!(
        !status.success(),
        "the copy finished before it could be killed"
    );

    // Without --resume the half-copied targets are a conflict.
    let run = common::mongoshift(dir.path(), &args);
    run.assert_code(2);
    let mut resume = args.clone();
    resume.push("--resume".into());
    resume.extend(["--output".into(), "json".into()]);
    let run = common::mongoshift(dir.path(), &resume);
    run.assert_code(0);
    assert!(
        !run.all().to_lowercase().contains("duplicate key"),
        "no duplicate-key noise: {}",
        run.all()
    );
    assert_eq!(hashes(rs, &src), hashes(&servers().atlas_uri, &dst));
    // The numbers add up (issue #27): this run read the unfinished ranges, inserting what
    // was missing and finding the rest already there; the finished ranges are kept.
    let mut kept = 0;
    for ns in run.json()["namespaces"].as_array().unwrap() {
        let n = |k: &str| ns[k].as_u64().unwrap();
        assert_eq!(n("read"), n("inserted") + n("duplicates"), "{ns}");
        assert_eq!(n("kept") + n("inserted"), n("target_count"), "{ns}");
        kept += n("kept");
    }
    assert!(kept > 0, "{}", run.stdout);
}

#[test]
fn failures_name_the_side_and_never_the_password() {
    let (encoded, _) = common::atlas_password();
    let wrong = servers()
        .atlas_uri
        .replace(&format!("root:{encoded}@"), "root:NotThePassw0rd@");
    let run = migrate(&servers().rs_uri, &wrong, &["--db", "x", "--timeout", "3s"]);
    run.assert_code(1);
    assert!(run.stderr.contains("the target (--to"), "{}", run.stderr);
    assert!(
        run.stderr.contains("authentication failed"),
        "{}",
        run.stderr
    );
    assert!(!run.all().contains("NotThePassw0rd"));
    let run = migrate(
        "mongodb://127.0.0.1:1/",
        &servers().atlas_uri,
        &["--db", "x", "--timeout", "3s"],
    );
    run.assert_code(1);
    assert!(run.stderr.contains("the source (--from"), "{}", run.stderr);
    assert_no_secret(&run.all(), "migrate output");
    let run = migrate(&servers().rs_uri, "nosuchtarget", &["--db", "x"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("unknown target 'nosuchtarget'"),
        "{}",
        run.stderr
    );
    // A rate it cannot read is invalid input, named with what to write instead.
    let run = migrate(
        &servers().rs_uri,
        &servers().atlas_uri,
        &["--db", "x", "--max-rate", "fast"],
    );
    run.assert_code(2);
    assert!(
        run.stderr.contains("'fast' is not a rate") && run.stderr.contains("e.g. 512KB"),
        "{}",
        run.stderr
    );
}

/// A collection of more than 1 GB is split into `_id` ranges (default --range-mb 256) and
/// copied identically. The data is made server-side by doubling (no 1 GB through the test).
#[test]
fn a_collection_over_one_gigabyte_is_split_into_ranges_and_copied_identically() {
    let rs = &servers().rs_uri;
    let src = common::unique_db("mgbig");
    let dst = common::unique_db("mgbigdst");
    block_on(async {
        let c = client(rs).await;
        let coll = c.database(&src).collection::<Document>("big");
        let seed = c.database(&src).collection::<Document>("seed");
        let pad = "p".repeat(4200);
        seed.insert_many((0..16).map(|i| doc! { "i": i, "pad": &pad }))
            .await
            .unwrap();
        // 16 seed documents × 16,384 copies = 262,144 documents of ~4.2 KB, about 1.1 GB,
        // written by the server from the small seed collection (never reading what it writes).
        let _: Vec<Document> = futures::TryStreamExt::try_collect(
            seed.aggregate(vec![
                doc! { "$set": { "copy": { "$range": [0, 16_384] } } },
                doc! { "$unwind": "$copy" },
                doc! { "$unset": "_id" },
                doc! { "$merge": { "into": "big", "whenMatched": "fail" } },
            ])
            .await
            .unwrap(),
        )
        .await
        .unwrap();
        seed.drop().await.unwrap();
        // A few other _id types at the edges of the ranges.
        coll.insert_many((0..500i64).map(|i| match i % 3 {
            0 => doc! { "_id": i, "pad": "n" },
            1 => doc! { "_id": format!("s{i}"), "pad": "s" },
            _ => doc! { "_id": { "k": i }, "pad": "d" },
        }))
        .await
        .unwrap();
        let stats = c
            .database(&src)
            .run_command(doc! { "collStats": "big" })
            .await
            .unwrap();
        let size = stats
            .get_i32("size")
            .map(i64::from)
            .or_else(|_| stats.get_i64("size"))
            .or_else(|_| stats.get_f64("size").map(|f| f as i64))
            .unwrap();
        assert!(size > 1 << 30, "the collection holds {size} bytes");
    });
    let rename = [
        "--ns-from".to_string(),
        format!("{src}.*"),
        "--ns-to".to_string(),
        format!("{dst}.*"),
    ];
    let mut args: Vec<String> = ["--db", &src, "--dry-run", "--output", "json"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(rename.iter().cloned());
    let dry = migrate(
        rs,
        &servers().atlas_uri,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    dry.assert_code(0);
    let ranges = dry.json()["plan"][0]["ranges"].as_u64().unwrap();
    assert!(ranges >= 4, "{}", dry.stdout);
    let mut args: Vec<String> = ["--db", &src, "--yes", "--output", "json", "--no-progress"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(rename.iter().cloned());
    let run = migrate(
        rs,
        &servers().atlas_uri,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    run.assert_code(0);
    assert_eq!(run.json()["ok"], true);
    assert_eq!(hashes(rs, &src), hashes(&servers().atlas_uri, &dst));
    // Leave no gigabytes behind for the rest of the suite.
    block_on(async {
        client(rs).await.database(&src).drop().await.unwrap();
        client(&servers().atlas_uri)
            .await
            .database(&dst)
            .drop()
            .await
            .unwrap();
    });
}

/// The fidelity rule through `migrate`: documents a decoder would change (empty
/// timestamps, duplicate fields, regex flags, invalid UTF-8, a broken binary subtype 2,
/// NaN payloads, `$` names) arrive byte for byte; a capped collection that wrapped arrives
/// in its `$natural` order; a clustered collection with a named clustered index and TTL,
/// and `system.js`, are copied.
#[test]
fn migrate_carries_every_byte_and_the_natural_order() {
    let s = servers();
    let db = common::unique_db("rawcopy");
    common::insert_raw(&s.rs_uri, &db, "odd", &common::odd_docs(0));
    block_on(async {
        let c = client(&s.rs_uri).await;
        let d = c.database(&db);
        // 3,000 inserts into a collection that keeps 1,000: it starts at 2,000.
        d.run_command(doc! { "create": "ring", "capped": true, "size": 1 << 20, "max": 1000 })
            .await
            .unwrap();
        let ring = d.collection::<Document>("ring");
        for chunk in (0..3_000i32).collect::<Vec<_>>().chunks(500) {
            ring.insert_many(chunk.iter().map(|i| doc! { "_id": 3_000 - i, "i": i }))
                .await
                .unwrap();
        }
        d.run_command(doc! { "create": "clustered", "clusteredIndex": { "key": { "_id": 1 }, "unique": true, "name": "by_time" }, "expireAfterSeconds": 86_400 })
            .await
            .unwrap();
        d.collection::<Document>("clustered")
            .insert_many((0..10).map(|i| doc! { "_id": DateTime::from_millis(i), "v": i }))
            .await
            .unwrap();
        d.collection::<Document>("system.js")
            .insert_one(doc! { "_id": "add", "value": mongodb::bson::Bson::JavaScriptCode("function(a, b) { return a + b; }".into()) })
            .await
            .unwrap();
    });
    let dir = tempdir();
    let r = mongoshift(
        dir.path(),
        [
            "migrate",
            "--from",
            &s.rs_uri,
            "--to",
            &s.atlas_uri,
            "--db",
            &db,
            "--yes",
            "--no-progress",
        ],
    );
    r.assert_code(0);
    for coll in ["odd", "clustered", "system.js"] {
        assert_eq!(
            common::raw_docs(&s.rs_uri, &db, coll, false),
            common::raw_docs(&s.atlas_uri, &db, coll, false),
            "{coll}: every document's bytes, in _id order"
        );
    }
    let (src, dst) = (
        common::raw_docs(&s.rs_uri, &db, "ring", true),
        common::raw_docs(&s.atlas_uri, &db, "ring", true),
    );
    assert_eq!(src.len(), 1000);
    assert!(src == dst, "the capped collection's $natural order changed");
    // The empty timestamps are still empty on the target.
    let odd = common::raw_docs(&s.atlas_uri, &db, "odd", false);
    assert!(
        odd[0].windows(11).any(|w| w == b"ts\0\0\0\0\0\0\0\0\0"),
        "Timestamp(0,0) rewritten"
    );
    let (a, b) = (schema_of(&s.rs_uri, &db), schema_of(&s.atlas_uri, &db));
    assert_eq!(a, b, "options and indexes");
}

/// #27.20: Ctrl-C (SIGINT to the process) during the copy is a stop, not a failure:
/// `migrate status` says phase "stopped" (text and JSON). Its header names the run's
/// --ns-to, so that two runs into one target that differ only by it read apart.
#[test]
fn ctrl_c_during_the_copy_shows_stopped_and_the_header_names_ns_to() {
    let rs = &servers().rs_uri;
    let atlas = &servers().atlas_uri;
    let src = common::unique_db("mgint");
    let dst = common::unique_db("mgintdst");
    common::numbered(
        rs,
        &src,
        "big",
        400,
        1000,
        "a payload so that the copy takes a moment",
    );
    let dir = tempdir();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_mongoshift"))
        .current_dir(dir.path())
        .args([
            "migrate",
            "--from",
            rs,
            "--to",
            atlas,
            "--db",
            &src,
            "--ns-from",
            &format!("{src}.*"),
            "--ns-to",
            &format!("{dst}.*"),
            "--parallel",
            "1",
            "--workers-per-collection",
            "1",
            // About 4 s for the 400 KB, so that the Ctrl-C lands during the copy.
            "--max-rate",
            "100KB",
            "--yes",
            "--no-progress",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = |extra: &[&str]| {
        let mut a = vec!["migrate", "status", "--to", atlas.as_str(), "--db", &src];
        a.extend_from_slice(extra);
        mongoshift(dir.path(), a)
    };
    let mut copying = false;
    for _ in 0..600 {
        let r = status(&["--output", "json"]);
        if r.code == 0 && r.json()["runs"][0]["state"] == "copying" {
            copying = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(copying, "the copy was never seen running");
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "the copy finished before the Ctrl-C");
    let r = status(&["--output", "json"]);
    r.assert_code(0);
    let run = &r.json()["runs"][0];
    assert_eq!(run["phase"], "stopped", "{}", r.stdout);
    assert_eq!(run["state"], "stopped", "{}", r.stdout);
    let r = status(&[]);
    r.assert_code(0);
    assert!(r.stdout.contains("phase      stopped"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!("(--ns-to {dst}.*)")),
        "{}",
        r.stdout
    );
    block_on(async {
        // The stopped run's record and resume state (a half copy is never finalized).
        client(atlas)
            .await
            .database("mongoshift")
            .collection::<Document>("migrations")
            .delete_many(doc! { "source": { "$regex": format!("--db {src} ") } })
            .await
            .unwrap();
        client(rs).await.database(&src).drop().await.unwrap();
        client(atlas).await.database(&dst).drop().await.unwrap();
    });
}
