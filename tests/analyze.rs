//! `analyze` against the real replica set: a workload of the predixi application's queries
//! on a database with only `_id` indexes, recorded by the profiler (and mongod's own JSON
//! log), is ranked into shapes with the right counts; the recommendations are the
//! roadmap's Step 3 indexes in ESR order; written as a spec and applied, they turn every
//! shape into an index scan without an in-memory sort and nothing new is recommended.
//! `analyze check` holds the shipped critical queries to their budgets.
//!
//! The profiler's threshold is global to the server's log, so the tests here run one at a
//! time (`SERIAL`) and put it back to 100 ms.

mod common;

use std::sync::Mutex;

use common::{block_on, client, mongoshift, servers, tempdir};
use mongodb::bson::{doc, oid::ObjectId, Document};

static SERIAL: Mutex<()> = Mutex::new(());

/// Puts the profiler and the server's slow-operation threshold back when a test ends.
struct ProfilerOff(String);
impl Drop for ProfilerOff {
    fn drop(&mut self) {
        block_on(async {
            let _ = client(&servers().rs_uri)
                .await
                .database(&self.0)
                .run_command(doc! { "profile": 0, "slowms": 100 })
                .await;
        });
    }
}

/// The sample data without any index but `_id`, and a user, market and e-mail to query.
fn workload_db() -> (String, ObjectId, ObjectId) {
    let db = common::unique_db("anq");
    block_on(async {
        let d = client(&servers().rs_uri).await.database(&db);
        mongoshift::sample::load(&d, 0.5, 3, |_, _| {})
            .await
            .unwrap();
        let bet = d
            .collection::<Document>("bets")
            .find_one(doc! {})
            .await
            .unwrap()
            .unwrap();
        (
            db,
            bet.get_object_id("user_id").unwrap(),
            bet.get_object_id("market_id").unwrap(),
        )
    })
}

/// The application's queries: login, market listing, bets by user, pending transactions,
/// comments by market, an `$or` and an anchored regex. Returns how often each ran.
fn run_workload(db: &str, user: ObjectId, market: ObjectId) {
    block_on(async {
        use futures::TryStreamExt;
        let d = client(&servers().rs_uri).await.database(db);
        let all =
            |c: mongodb::Cursor<Document>| async move { c.try_collect::<Vec<_>>().await.unwrap() };
        let users = d.collection::<Document>("users");
        for i in 0..5 {
            users
                .find_one(doc! { "google_id": format!("g-{:07}", i * 7) })
                .await
                .unwrap();
        }
        let markets = d.collection::<Document>("markets");
        for _ in 0..4 {
            all(markets
                .find(doc! { "status": "open" })
                .sort(doc! { "created_at": -1 })
                .limit(20)
                .await
                .unwrap())
            .await;
        }
        for _ in 0..3 {
            all(d
                .collection::<Document>("bets")
                .find(doc! { "user_id": user })
                .sort(doc! { "created_at": -1 })
                .await
                .unwrap())
            .await;
        }
        for _ in 0..3 {
            all(d
                .collection::<Document>("transactions")
                .find(doc! { "status": "pending" })
                .sort(doc! { "created_at": -1 })
                .limit(100)
                .await
                .unwrap())
            .await;
        }
        for _ in 0..2 {
            all(d
                .collection::<Document>("comments")
                .find(doc! { "market_id": market })
                .sort(doc! { "created_at": -1 })
                .await
                .unwrap())
            .await;
        }
        for i in 0..2 {
            all(users.find(doc! { "$or": [ { "email": format!("user{i}@example.com") }, { "google_id": format!("g-{i:07}") } ] }).await.unwrap()).await;
        }
        for _ in 0..2 {
            all(users
                .find(doc! { "email": { "$regex": "^user1" } })
                .await
                .unwrap())
            .await;
        }
    });
}

fn profile(db: &str, level: i32) {
    block_on(async {
        let d = client(&servers().rs_uri).await.database(db);
        d.run_command(doc! { "profile": 0 }).await.unwrap();
        let _ = d.collection::<Document>("system.profile").drop().await;
        if level > 0 {
            d.run_command(doc! { "profile": level, "slowms": 0 })
                .await
                .unwrap();
        }
    });
}

fn queries(dir: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let mut a = vec!["analyze", "queries", "--output", "json", "--top", "50"];
    a.extend_from_slice(extra);
    let r = mongoshift(dir, a);
    r.assert_code(0);
    r.json()
}

/// (namespace's collection, op, filter shape as JSON text) → count.
fn counts(j: &serde_json::Value) -> std::collections::BTreeMap<(String, String, String), u64> {
    j["shapes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let coll = s["ns"]
                .as_str()
                .unwrap()
                .split_once('.')
                .unwrap()
                .1
                .to_string();
            (
                (
                    coll,
                    s["op"].as_str().unwrap().to_string(),
                    format!("{} {}", s["shape"]["filter"], s["shape"]["sort"]),
                ),
                s["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn recommendations(j: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = j["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let coll = r["ns"].as_str().unwrap().split_once('.').unwrap().1;
            let keys: Vec<String> = r["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| format!("{}:{}", k[0].as_str().unwrap(), k[1]))
                .collect();
            format!("{coll} {}", keys.join(","))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn workload_shapes_recommendations_spec_and_a_second_look() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (db, user, market) = workload_db();
    let _off = ProfilerOff(db.clone());
    let dir = tempdir();
    let rs = servers().rs_uri.clone();
    let log = common::run_dir().join("rs").join("mongod.log");
    let log_start = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    profile(&db, 0);
    // The profiler as `analyze profile` sets it (slowms 0: the small test data is fast).
    let p = mongoshift(
        dir.path(),
        [
            "analyze", "profile", "--uri", &rs, "--db", &db, "--slowms", "0", "--output", "json",
        ],
    );
    p.assert_code(0);
    assert_eq!(p.json()["databases"][0]["level"], 1, "{}", p.stdout);
    assert_eq!(p.json()["databases"][0]["slowms"], 0);
    run_workload(&db, user, market);

    let j = queries(dir.path(), &["--uri", &rs, "--db", &db]);
    let c = counts(&j);
    let find = |coll: &str, shape: &str| -> u64 {
        c.iter()
            .find(|((cl, op, f), _)| cl == coll && op == "find" && f.contains(shape))
            .map(|(_, n)| *n)
            .unwrap_or_else(|| panic!("no {coll} shape with {shape}: {c:?}"))
    };
    assert_eq!(find("users", r#"{"google_id":"?string"} {}"#), 5);
    assert_eq!(
        find("markets", r#"{"status":"?string"} {"created_at":-1}"#),
        4
    );
    assert_eq!(find("bets", r#"{"user_id":"?objectId"}"#), 3);
    assert_eq!(find("transactions", r#"{"status":"?string"}"#), 3);
    assert_eq!(find("comments", r#"{"market_id":"?objectId"}"#), 2);
    assert_eq!(find("users", "$or"), 2);
    assert_eq!(find("users", "$regex"), 2);
    // The roadmap's Step 3 indexes for these shapes, in ESR order.
    assert_eq!(
        recommendations(&j),
        vec![
            "bets user_id:1,created_at:-1",
            "comments market_id:1,created_at:-1",
            "markets status:1,created_at:-1",
            "transactions status:1,created_at:-1",
            "users email:1",
            "users google_id:1",
        ]
    );

    // The same workload from the server's own JSON log: the same shapes and counts.
    // The workload's part of the log, in whole lines (mongod may be mid-line at either end).
    let all_log = std::fs::read(&log).unwrap();
    let mut from = log_start as usize;
    if from > 0 && all_log[from - 1] != b'\n' {
        from += all_log[from..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(0, |p| p + 1);
    }
    let to = all_log
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(from, |p| p + 1)
        .max(from);
    let tail = all_log[from..to].to_vec();
    let piece = dir.path().join("mongod.log");
    // Garbage, a truncated entry and unrelated lines around it are counted, not fatal.
    let mut text = b"garbage that is not json\n".to_vec();
    text.extend_from_slice(&tail);
    text.extend_from_slice(b"{\"t\":{\"$date\":\"2026-11-23T10:00:00Z\"},\"id\":51803,\"attr\":{\"ns\":\"x.y\",\"comm\n");
    std::fs::write(&piece, &text).unwrap();
    let from_log = queries(dir.path(), &["--log", piece.to_str().unwrap(), "--db", &db]);
    assert_eq!(
        counts(&from_log),
        c,
        "the log gives the profiler's shapes and counts"
    );
    assert_eq!(from_log["logs"][0]["malformed"], 2, "{}", from_log["logs"]);
    assert!(from_log["logs"][0]["skipped"].as_u64().unwrap() > 0);

    // Written as a spec, applied, and looked at again: index scans, nothing new to add.
    let spec = dir.path().join("recommended.yaml");
    let r = mongoshift(
        dir.path(),
        [
            "analyze",
            "queries",
            "--uri",
            &rs,
            "--db",
            &db,
            "--write-spec",
            spec.to_str().unwrap(),
        ],
    );
    r.assert_code(0);
    let text = std::fs::read_to_string(&spec).unwrap();
    assert!(
        text.contains("google_id: 1") && text.contains("# serves"),
        "{text}"
    );
    mongoshift(dir.path(), ["indexes", "lint", spec.to_str().unwrap()]).assert_code(0);
    mongoshift(
        dir.path(),
        [
            "indexes",
            "apply",
            spec.to_str().unwrap(),
            "--uri",
            &rs,
            "--yes",
        ],
    )
    .assert_code(0);
    let again = queries(dir.path(), &["--uri", &rs, "--db", &db]);
    assert_eq!(
        recommendations(&again),
        Vec::<String>::new(),
        "existing indexes serve every shape"
    );
    profile(&db, 1);
    run_workload(&db, user, market);
    let after = queries(dir.path(), &["--uri", &rs, "--db", &db]);
    for s in after["shapes"].as_array().unwrap() {
        let plans = s["plans"].to_string();
        assert!(!plans.contains("COLLSCAN"), "{s}");
        assert_eq!(s["in_memory_sort"], false, "{s}");
    }
    assert_eq!(recommendations(&after), Vec::<String>::new());
    let off = mongoshift(
        dir.path(),
        [
            "analyze", "profile", "--uri", &rs, "--db", &db, "--off", "--output", "json",
        ],
    );
    off.assert_code(0);
    assert_eq!(off.json()["databases"][0]["level"], 0);
    block_on(async { client(&rs).await.database(&db).drop().await.unwrap() });
}

#[test]
fn check_passes_with_the_specs_and_names_the_query_after_an_index_is_dropped() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (db, _, _) = workload_db();
    let dir = tempdir();
    let rs = servers().rs_uri.clone();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let spec = std::fs::read_to_string(root.join("index-specs/predixi.yaml"))
        .unwrap()
        .replace("database: predixi", &format!("database: {db}"));
    let spec_path = dir.path().join("predixi.yaml");
    std::fs::write(&spec_path, spec).unwrap();
    mongoshift(
        dir.path(),
        [
            "indexes",
            "apply",
            spec_path.to_str().unwrap(),
            "--uri",
            &rs,
            "--yes",
        ],
    )
    .assert_code(0);
    let queries = root.join("queries/predixi.yaml");
    let check = || {
        mongoshift(
            dir.path(),
            [
                "analyze",
                "check",
                queries.to_str().unwrap(),
                "--uri",
                &rs,
                "--db",
                &db,
            ],
        )
    };
    let r = check();
    r.assert_code(0);
    assert!(r.stdout.contains("IXSCAN"), "{}", r.stdout);
    block_on(async {
        client(&rs)
            .await
            .database(&db)
            .collection::<Document>("markets")
            .drop_index("status_1_created_at_-1")
            .await
            .unwrap()
    });
    let r = check();
    r.assert_code(3);
    assert!(
        r.stderr.contains("market listing") && r.stderr.contains("uses no index"),
        "{}",
        r.stderr
    );
    // A malformed query file: exit 2 with file:line:column.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "database: x\nqueries:\n  - name: q\n    colection: users\n",
    )
    .unwrap();
    let r = mongoshift(
        dir.path(),
        ["analyze", "check", bad.to_str().unwrap(), "--uri", &rs],
    );
    r.assert_code(2);
    assert!(r.stderr.contains("bad.yaml:4"), "{}", r.stderr);
    block_on(async { client(&rs).await.database(&db).drop().await.unwrap() });
}

#[test]
fn index_hygiene_finds_the_unused_and_the_redundant_but_never_a_unique_or_ttl_prefix() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rs = servers().rs_uri.clone();
    let db = common::unique_db("anix");
    block_on(async {
        let d = client(&rs).await.database(&db);
        let c = d.collection::<Document>("markets");
        c.insert_many((0..200).map(|i| doc! { "_id": i, "status": if i % 2 == 0 { "open" } else { "closed" }, "created_at": i, "slug": format!("m{i}"), "seen": mongodb::bson::DateTime::now() }))
            .await
            .unwrap();
        d.run_command(doc! { "createIndexes": "markets", "indexes": [
            { "key": { "status": 1, "created_at": -1 }, "name": "status_created" },
            { "key": { "status": 1 }, "name": "status_prefix" },
            { "key": { "slug": 1 }, "name": "slug_unique", "unique": true },
            { "key": { "slug": 1, "status": 1 }, "name": "slug_status" },
            { "key": { "seen": 1 }, "name": "seen_ttl", "expireAfterSeconds": 3600 },
            { "key": { "seen": 1, "status": 1 }, "name": "seen_status" },
            { "key": { "created_at": 1 }, "name": "never_used" },
        ] })
        .await
        .unwrap();
        // Use every index but one.
        use futures::TryStreamExt;
        for (hint, filter) in [
            ("status_created", doc! { "status": "open" }),
            ("status_prefix", doc! { "status": "open" }),
            ("slug_unique", doc! { "slug": "m1" }),
            ("slug_status", doc! { "slug": "m1" }),
            ("seen_ttl", doc! {}),
            ("seen_status", doc! {}),
        ] {
            let _: Vec<Document> = c
                .find(filter)
                .hint(mongodb::options::Hint::Name(hint.into()))
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
        }
    });
    let dir = tempdir();
    let r = mongoshift(
        dir.path(),
        [
            "analyze", "indexes", "--uri", &rs, "--db", &db, "--output", "json",
        ],
    );
    r.assert_code(0);
    let j = r.json();
    let by = |name: &str| -> serde_json::Value {
        j["indexes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name}: {j}"))
    };
    assert_eq!(by("never_used")["unused"], true);
    assert_eq!(by("status_created")["unused"], false);
    assert_eq!(by("status_prefix")["redundant_with"], "status_created");
    for kept in ["slug_unique", "seen_ttl", "_id_", "status_created"] {
        assert!(
            by(kept)["redundant_with"].is_null(),
            "{kept} is not redundant: {}",
            by(kept)
        );
    }
    assert!(j["reclaimable_bytes"].as_u64().unwrap() > 0);
    assert!(by("never_used")["size_bytes"].as_u64().unwrap() > 0);
    assert_eq!(j["members"], 1);
    block_on(async { client(&rs).await.database(&db).drop().await.unwrap() });
    // Through auth and TLS, each member reached directly with the same credentials.
    let atlas = servers().atlas_uri.clone();
    let adb = common::unique_db("anixtls");
    common::insert(&atlas, &adb, "t", vec![doc! { "a": 1 }]);
    let r = mongoshift(
        dir.path(),
        [
            "analyze", "indexes", "--uri", &atlas, "--db", &adb, "--output", "json",
        ],
    );
    r.assert_code(0);
    assert_eq!(r.json()["members"], 1, "{}", r.stderr);
    common::assert_no_secret(&r.all(), "analyze indexes output");
    block_on(async { client(&atlas).await.database(&adb).drop().await.unwrap() });
}

#[test]
fn shard_key_flags_a_monotonic_date_and_spreads_a_hashed_id_evenly() {
    let rs = servers().rs_uri.clone();
    let db = common::unique_db("ansk");
    block_on(async {
        let c = client(&rs)
            .await
            .database(&db)
            .collection::<Document>("bets");
        let start = mongodb::bson::DateTime::now().timestamp_millis();
        c.insert_many((0..30_000i64).map(|i| {
            doc! {
                "created_at": mongodb::bson::DateTime::from_millis(start + i * 1000),
                "user_id": i % 500,
                "status": if i % 10 == 0 { "won" } else { "pending" },
            }
        }))
        .await
        .unwrap();
    });
    let dir = tempdir();
    let r = mongoshift(
        dir.path(),
        [
            "analyze",
            "shard-key",
            "--uri",
            &rs,
            "--ns",
            &format!("{db}.bets"),
            "--key",
            "{created_at: 1}",
            "--key",
            "{_id: hashed}",
            "--key",
            "{status: 1}",
            "--shards",
            "3",
            "--output",
            "json",
        ],
    );
    r.assert_code(0);
    let j = r.json();
    let keys = j["keys"].as_array().unwrap();
    assert_eq!(keys[0]["monotonic"], true, "{}", keys[0]);
    assert_eq!(keys[0]["cardinality"], 30_000);
    assert_eq!(keys[1]["monotonic"], false);
    for s in keys[1]["shards"].as_array().unwrap() {
        let share = s.as_f64().unwrap();
        assert!(
            (share - 1.0 / 3.0).abs() < 0.03,
            "hashed _id spreads evenly: {}",
            keys[1]
        );
    }
    // Two values, 90% pending: it cannot spread over three shards.
    assert_eq!(keys[2]["cardinality"], 2);
    assert!(keys[2]["top_value_share"].as_f64().unwrap() > 0.89);
    assert!(
        keys[2]["max_skew_points"].as_f64().unwrap() > 30.0,
        "{}",
        keys[2]
    );
    let bad = mongoshift(
        dir.path(),
        [
            "analyze",
            "shard-key",
            "--uri",
            &rs,
            "--ns",
            &format!("{db}.bets"),
            "--key",
            "{a: 7}",
        ],
    );
    bad.assert_code(2);
    block_on(async { client(&rs).await.database(&db).drop().await.unwrap() });
}

#[test]
fn a_shape_served_by_an_index_in_another_equality_order_gets_no_recommendation() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rs = servers().rs_uri.clone();
    let db = common::unique_db("anord");
    let _off = ProfilerOff(db.clone());
    block_on(async {
        let d = client(&rs).await.database(&db);
        d.collection::<Document>("t")
            .insert_many((0..2000).map(|i| doc! { "a": i % 10, "b": i % 7, "pad": "x" }))
            .await
            .unwrap();
    });
    profile(&db, 1);
    block_on(async {
        use futures::TryStreamExt;
        let t = client(&rs).await.database(&db).collection::<Document>("t");
        for _ in 0..3 {
            let _: Vec<Document> = t
                .find(doc! { "a": 1, "b": 2 })
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
        }
        // A projection of plain fields without _id: the index may cover it.
        let _: Vec<Document> = t
            .find(doc! { "pad": "y" })
            .projection(doc! { "pad": 1, "a": 1, "_id": 0 })
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
    });
    let dir = tempdir();
    let before = queries(dir.path(), &["--uri", &rs, "--db", &db]);
    assert_eq!(recommendations(&before), vec!["t a:1,b:1", "t pad:1,a:1"]);
    block_on(async {
        client(&rs)
            .await
            .database(&db)
            .run_command(doc! { "createIndexes": "t", "indexes": [ { "key": { "b": 1, "a": 1 }, "name": "b_a" } ] })
            .await
            .unwrap();
    });
    // The same recorded collection scans: an index with the equalities in another order serves them.
    let after = queries(dir.path(), &["--uri", &rs, "--db", &db]);
    assert_eq!(recommendations(&after), vec!["t pad:1,a:1"]);
    profile(&db, 0);
    block_on(async { client(&rs).await.database(&db).drop().await.unwrap() });
}

/// The committed log fixtures (see tests/fixtures/analyze/make_fixtures.py): one workload
/// on a real mongod 6.0, as its JSON log wrote it and as a 4.2 text log would.
fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/analyze")
        .join(name)
}

fn from_log(dir: &std::path::Path, log: &std::path::Path) -> serde_json::Value {
    queries(dir, &["--log", log.to_str().unwrap()])
}

/// A shape of the report by collection, op and a piece of its shape's JSON.
fn shape<'a>(j: &'a serde_json::Value, coll: &str, op: &str, piece: &str) -> &'a serde_json::Value {
    j["shapes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["ns"].as_str().unwrap().ends_with(&format!(".{coll}"))
                && s["op"] == op
                && s["shape"].to_string().contains(piece)
        })
        .unwrap_or_else(|| panic!("no {coll} {op} shape with {piece}: {}", j["shapes"]))
}

#[test]
fn json_and_text_logs_give_the_same_report_with_the_right_advice() {
    let dir = tempdir();
    let json = from_log(dir.path(), &fixture("logv2.log"));
    let text = from_log(dir.path(), &fixture("text-4.2.log"));
    assert_eq!(json["logs"][0]["format"], "json");
    assert_eq!(text["logs"][0]["format"], "text");
    // Same shapes, numbers, left-out entries and recommendations from both formats.
    for k in [
        "operations",
        "shapes",
        "left_out",
        "recommendations",
        "statement_envelopes",
    ] {
        assert_eq!(
            json[k], text[k],
            "{k} differs between the JSON and the text log"
        );
    }
    let j = &json;
    // 1. A delete and an update through an index: what they changed is their "returned",
    // and the index their plan used is never recommended, even without a connection.
    let del = shape(j, "carts", "delete", "user");
    assert_eq!(
        (del["count"].as_u64(), del["returned"].as_u64()),
        (Some(3), Some(3000))
    );
    assert_eq!(shape(j, "carts", "update", "user")["returned"], 1000);
    assert!(
        !recommendations(j).iter().any(|r| r.starts_with("carts")),
        "{:?}",
        recommendations(j)
    );
    // 2. `{status, age}` and `{age, status}` are one shape; one index serves it and the sort.
    let eq = shape(
        j,
        "users",
        "find",
        r#""filter":{"age":"?number","status":"?string"}"#,
    );
    assert_eq!(eq["count"], 10);
    assert!(
        recommendations(j).contains(&"users status:1,age:1".to_string())
            || recommendations(j).contains(&"users age:1,status:1".to_string()),
        "{:?}",
        recommendations(j)
    );
    assert_eq!(
        recommendations(j)
            .iter()
            .filter(|r| r.starts_with("users"))
            .count(),
        1
    );
    // 3. getMores: counted apart, their time in the total, not in the percentiles.
    let cur = shape(j, "users", "find", r#""sort":{"age":1}"#);
    assert_eq!(
        (cur["count"].as_u64(), cur["getmores"].as_u64()),
        (Some(3), Some(9))
    );
    // 4. distinct on two keys: two shapes, each with its key.
    assert_eq!(
        shape(j, "orders", "distinct", r#""key":"user""#)["count"],
        2
    );
    assert_eq!(shape(j, "orders", "distinct", r#""key":"sku""#)["count"], 2);
    // 5. No query-hash note.
    assert!(!j.to_string().contains("query_hash_note"));
    // 6. What is not shaped, by kind and time: the inserts among it.
    let left = j["left_out"].as_array().unwrap();
    let insert = left.iter().find(|l| l["kind"] == "insert").unwrap();
    assert_eq!(insert["count"], 4);
    assert!(insert["total_ms"].as_u64().unwrap() > 0);
    // 7. The entry mongod truncated: counted, left out, not a shape of its own.
    assert_eq!(j["logs"][0]["truncated"], 1);
    assert!(left
        .iter()
        .any(|l| l["kind"] == "truncated by mongod: find"));
    assert!(
        !j["shapes"].to_string().contains("$in"),
        "the truncated find is not shaped"
    );
    // The table says what it left out too.
    let table = mongoshift(
        dir.path(),
        [
            "analyze",
            "queries",
            "--log",
            fixture("text-4.2.log").to_str().unwrap(),
        ],
    );
    table.assert_code(0);
    assert!(
        table.stdout.contains("not in the shapes: 16 slow entries"),
        "{}",
        table.stdout
    );
    assert!(
        table.stderr.contains("truncated by mongod"),
        "{}",
        table.stderr
    );
}

#[test]
fn gzip_by_magic_bytes_and_missing_empty_or_filtered_logs_say_so() {
    use std::io::Write;
    let dir = tempdir();
    // A rotated, compressed log without a `.gz` suffix.
    let rotated = dir.path().join("mongod.log.2026-11-29T10-00-00");
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&std::fs::read(fixture("logv2.log")).unwrap())
        .unwrap();
    std::fs::write(&rotated, z.finish().unwrap()).unwrap();
    let g = from_log(dir.path(), &rotated);
    assert_eq!(g["logs"][0]["gzip"], true);
    assert_eq!(
        g["shapes"],
        from_log(dir.path(), &fixture("logv2.log"))["shapes"]
    );

    let missing = mongoshift(
        dir.path(),
        ["analyze", "queries", "--log", "/nonexistent/mongod.log"],
    );
    missing.assert_code(2);
    assert!(
        missing.stderr.contains("/nonexistent/mongod.log"),
        "{}",
        missing.stderr
    );

    let empty = dir.path().join("empty.log");
    std::fs::write(&empty, "").unwrap();
    let r = mongoshift(
        dir.path(),
        ["analyze", "queries", "--log", empty.to_str().unwrap()],
    );
    r.assert_code(0);
    assert!(r.stderr.contains("is empty"), "{}", r.stderr);

    // Every entry older than --since: the hint names the newest.
    let old = dir.path().join("old.log");
    let text = std::fs::read_to_string(fixture("logv2.log"))
        .unwrap()
        .replace("\"$date\":\"2026-", "\"$date\":\"2020-");
    std::fs::write(&old, text).unwrap();
    let r = mongoshift(
        dir.path(),
        [
            "analyze",
            "queries",
            "--log",
            old.to_str().unwrap(),
            "--since",
            "24h",
        ],
    );
    r.assert_code(0);
    assert!(
        r.stderr.contains("older than --since (the newest at 2020-"),
        "{}",
        r.stderr
    );

    // Not a mongod log at all.
    let other = dir.path().join("notes.txt");
    std::fs::write(&other, "hello\nworld\n").unwrap();
    let r = mongoshift(
        dir.path(),
        [
            "analyze",
            "queries",
            "--log",
            other.to_str().unwrap(),
            "--output",
            "json",
        ],
    );
    r.assert_code(0);
    assert!(r.stderr.contains("is it a mongod log?"), "{}", r.stderr);
    assert_eq!(r.json()["logs"][0]["malformed"], 2);
}

#[test]
fn a_live_log_of_deletes_getmores_and_a_distinct_scan_explained_as_distinct() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rs = servers().rs_uri.clone();
    let db = common::unique_db("anlive");
    let _off = ProfilerOff(db.clone());
    let log = common::run_dir().join("rs").join("mongod.log");
    let log_start = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    block_on(async {
        use futures::TryStreamExt;
        let d = client(&rs).await.database(&db);
        let carts = d.collection::<Document>("carts");
        carts
            .insert_many((0..3000).map(|i| doc! { "user": i % 3, "n": i }))
            .await
            .unwrap();
        d.run_command(doc! { "createIndexes": "carts", "indexes": [ { "key": { "user": 1 }, "name": "user_1" } ] }).await.unwrap();
        d.run_command(doc! { "profile": 0, "slowms": 0 })
            .await
            .unwrap();
        carts.insert_one(doc! { "user": 9, "n": -1 }).await.unwrap();
        for u in 0..2 {
            carts.delete_many(doc! { "user": u }).await.unwrap();
        }
        let _: Vec<Document> = carts
            .find(doc! { "n": { "$gte": 0 } })
            .batch_size(100)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        d.run_command(doc! { "distinct": "carts", "key": "user" })
            .await
            .unwrap();
        d.run_command(doc! { "profile": 0, "slowms": 100 })
            .await
            .unwrap();
    });
    let all = std::fs::read(&log).unwrap();
    let piece = tempdir();
    let path = piece.path().join("mongod.log");
    std::fs::write(&path, &all[log_start as usize..]).unwrap();
    let dir = tempdir();
    let j = queries(
        dir.path(),
        &[
            "--log",
            path.to_str().unwrap(),
            "--db",
            &db,
            "--uri",
            &rs,
            "--explain",
        ],
    );
    let del = shape(&j, "carts", "delete", "user");
    assert_eq!(
        (del["count"].as_u64(), del["returned"].as_u64()),
        (Some(2), Some(2000)),
        "{del}"
    );
    let cur = shape(&j, "carts", "find", "$gte");
    assert_eq!(cur["count"], 1);
    assert!(cur["getmores"].as_u64().unwrap() >= 9, "{cur}");
    let dist = shape(&j, "carts", "distinct", r#""key":"user""#);
    assert!(
        dist["plans"].to_string().contains("DISTINCT_SCAN"),
        "{dist}"
    );
    assert!(
        dist["explain"]["plan"]
            .as_str()
            .unwrap()
            .contains("DISTINCT_SCAN"),
        "{dist}"
    );
    assert!(
        !recommendations(&j).iter().any(|r| r == "carts user:1"),
        "{:?}",
        recommendations(&j)
    );
    // The insert is reported as left out.
    assert!(
        j["left_out"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["kind"] == "insert"),
        "{}",
        j["left_out"]
    );
    block_on(async { client(&rs).await.database(&db).drop().await.unwrap() });
}

#[test]
fn lint_warns_about_permuted_duplicate_indexes() {
    let dir = tempdir();
    let spec = dir.path().join("s.yaml");
    std::fs::write(
        &spec,
        "database: d\ncollections:\n  t:\n    - keys: { a: 1, b: 1 }\n    - keys: { b: 1, a: 1 }\n",
    )
    .unwrap();
    let r = mongoshift(dir.path(), ["indexes", "lint", spec.to_str().unwrap()]);
    r.assert_code(0);
    assert!(
        r.stderr.contains("s.yaml:5") && r.stderr.contains("another order"),
        "{}",
        r.stderr
    );
    let j = mongoshift(
        dir.path(),
        [
            "indexes",
            "lint",
            spec.to_str().unwrap(),
            "--output",
            "json",
        ],
    );
    assert_eq!(j.json()["warnings"].as_array().unwrap().len(), 1);
}
