//! `migrate --follow` against the real servers: the legacy replica set followed into the
//! Atlas-like server while a writer makes every kind of change (CRUD with awkward updates,
//! transactions, DDL); `kill -9` during the copy and during the tail, then `--resume`;
//! `--detach` with `migrate status` and `migrate stop` from "another terminal"; a position
//! the oplog no longer holds; the refusals (standalone, time-series).

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::follow::Follow;
use common::{assert_no_secret, block_on, client, hashes, mongoshift, schema_of, servers, tempdir};
use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::Client;

/// This file's run of `dbs` (source, target) in `dir`: it waits 60 s for the tail to follow
/// and 120 s for it to catch up.
fn follow_at(dir: &Path, dbs: &[(&str, &str)]) -> Follow {
    Follow::at(dir, dbs).timeouts(Duration::from_secs(60), Duration::from_secs(120))
}

/// `migrate --follow` of `dbs` in the background, as [`follow_at`] waits for it.
fn start_follow(dir: &Path, dbs: &[(&str, &str)], extra: &[&str]) -> Follow {
    let mut f = follow_at(dir, dbs);
    f.spawn(extra);
    f
}

/// A source database: the predixi sample plus a capped collection, one with a validator,
/// TTL and unique indexes, and a view.
async fn seed(c: &Client, db: &str, scale: f64) {
    let d = c.database(db);
    common::load_sample(&d, scale, 3).await;
    d.create_collection("events")
        .capped(true)
        .size(1 << 20)
        .await
        .unwrap();
    d.collection::<Document>("events")
        .insert_many((0..50).map(|i| doc! { "i": i }))
        .await
        .unwrap();
    d.create_collection("kyc")
        .validator(doc! { "$jsonSchema": { "required": ["level"] } })
        .await
        .unwrap();
    d.collection::<Document>("kyc")
        .insert_one(doc! { "level": 1 })
        .await
        .unwrap();
    d.run_command(doc! { "createIndexes": "sessions", "indexes": [
        { "key": { "at": 1 }, "name": "at_ttl", "expireAfterSeconds": 3600 },
        { "key": { "token": 1 }, "name": "token_unique", "unique": true },
    ] })
    .await
    .unwrap();
    d.collection::<Document>("sessions")
        .insert_many(
            (0..200).map(|i| doc! { "_id": i, "at": DateTime::now(), "token": format!("t{i}") }),
        )
        .await
        .unwrap();
    d.create_collection("open_markets")
        .view_on("markets".to_string())
        .pipeline(vec![doc! { "$match": { "status": "open" } }])
        .await
        .unwrap();
}

/// Every kind of change, round after round, for `secs` seconds and until at least
/// `min_ddl_rounds` rounds have had DDL; DDL only once `ddl` is set (a collection renamed
/// while it is being copied fails that copy loudly, by design). Returns the rounds with DDL.
/// (Bounded by rounds, not time alone: on a loaded machine 30 s held fewer rounds than the
/// DDL cycle needs; at most 5 minutes, after which the caller's assertion says so.)
async fn write_everything(
    c: &Client,
    db: &str,
    other_db: Option<&str>,
    (secs, min_ddl_rounds): (u64, u64),
    ddl: &AtomicBool,
) -> u64 {
    let d = c.database(db);
    let docs = d.collection::<Document>("churn");
    let sessions = d.collection::<Document>("sessions");
    let start = Instant::now();
    let (mut round, mut ddl_rounds) = (0i64, 0u64);
    while (start.elapsed() < Duration::from_secs(secs) || ddl_rounds < min_ddl_rounds)
        && start.elapsed() < Duration::from_secs(300)
    {
        let base = round * 10;
        docs.insert_many((0..5).map(|i| {
            doc! { "_id": base + i, "n": i, "tags": ["a", "b", "c", "d"], "nested": { "x": 1, "y": { "z": "deep" } }, "gone": true }
        }))
        .await
        .unwrap();
        // Field names with dots and dollars (allowed since 5.0), set through $setField.
        docs.update_one(
            doc! { "_id": base },
            vec![doc! { "$replaceWith": { "$setField": { "field": "odd.name", "input": "$$ROOT", "value": round } } }],
        )
        .await
        .unwrap();
        docs.update_one(doc! { "_id": base + 1 }, doc! { "$unset": { "gone": "" }, "$rename": { "n": "renamed" }, "$inc": { "nested.x": 5 } })
            .await
            .unwrap();
        docs.update_one(
            doc! { "_id": base + 2 },
            doc! { "$push": { "tags": { "$each": ["e", "f"] } }, "$pop": { "nested.arr": 1 } },
        )
        .await
        .unwrap();
        // Array truncation, then an element changed in place.
        docs.update_one(
            doc! { "_id": base + 3 },
            vec![doc! { "$set": { "tags": { "$slice": ["$tags", 2] } } }],
        )
        .await
        .unwrap();
        docs.update_one(
            doc! { "_id": base + 3 },
            doc! { "$set": { "tags.0": "zz", "nested.y.z": Bson::Null } },
        )
        .await
        .unwrap();
        docs.replace_one(
            doc! { "_id": base + 4 },
            doc! { "replaced": round, "with": { "a": [1, 2, { "b": 3 }] } },
        )
        .await
        .unwrap();
        if round > 0 {
            docs.delete_one(doc! { "_id": base - 10 + 4 })
                .await
                .unwrap();
        }
        // Keys move between documents under a unique index, in one transaction.
        let mut s = c.start_session().await.unwrap();
        s.start_transaction().await.unwrap();
        let a = round % 200;
        let b = (round + 1) % 200;
        sessions
            .update_one(
                doc! { "_id": a },
                doc! { "$set": { "token": format!("tmp{round}") } },
            )
            .session(&mut s)
            .await
            .unwrap();
        sessions
            .update_one(
                doc! { "_id": b },
                doc! { "$set": { "token": format!("t{a}x{round}") } },
            )
            .session(&mut s)
            .await
            .unwrap();
        docs.insert_one(doc! { "_id": format!("txn{round}"), "in": "transaction" })
            .session(&mut s)
            .await
            .unwrap();
        s.commit_transaction().await.unwrap();
        // DDL now and then.
        let step = if ddl.load(Ordering::Relaxed) {
            ddl_rounds += 1;
            round % 12
        } else {
            -1
        };
        match step {
            2 => {
                d.collection::<Document>(&format!("made{round}"))
                    .insert_one(doc! { "k": round })
                    .await
                    .unwrap();
                d.collection::<Document>(&format!("made{round}"))
                    .create_index(mongodb::IndexModel::builder().keys(doc! { "k": 1 }).build())
                    .await
                    .unwrap();
            }
            4 => {
                let _ = d
                    .collection::<Document>(&format!("made{}", round - 2))
                    .drop_index("k_1")
                    .await;
                d.run_command(doc! { "collMod": "kyc", "validator": { "$jsonSchema": { "required": ["level", "r"] } }, "validationLevel": "moderate" })
                    .await
                    .unwrap();
            }
            6 => {
                // The collection exists when DDL was on four rounds ago.
                let _ = c
                    .database("admin")
                    .run_command(doc! { "renameCollection": format!("{db}.made{}", round - 4), "to": format!("{db}.moved{round}") })
                    .await;
                d.run_command(doc! { "collMod": "sessions", "index": { "name": "at_ttl", "expireAfterSeconds": 7200 } })
                    .await
                    .unwrap();
            }
            8 => {
                let _ = d
                    .collection::<Document>(&format!("moved{}", round - 2))
                    .drop()
                    .await;
                d.run_command(doc! { "create": format!("view{round}"), "viewOn": "churn", "pipeline": [ { "$match": { "n": 1 } } ] })
                    .await
                    .unwrap();
                if round == 8 {
                    d.run_command(doc! { "createIndexes": "churn", "indexes": [ { "key": { "replaced": 1 }, "name": "replaced_unique", "unique": true, "partialFilterExpression": { "replaced": { "$exists": true } } } ] })
                        .await
                        .unwrap();
                }
            }
            10 => {
                if let Some(o) = other_db {
                    let od = c.database(o);
                    od.collection::<Document>("scratch")
                        .insert_many((0..20).map(|i| doc! { "i": i }))
                        .await
                        .unwrap();
                    if round % 24 == 22 {
                        od.drop().await.unwrap();
                    }
                }
            }
            _ => {}
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ddl_rounds
}

#[track_caller]
fn assert_same_data(src: &str, dst: &str) {
    let want = hashes(&servers().rs_uri, src);
    assert!(want.contains_key("churn"), "{want:?}");
    assert_eq!(
        want,
        hashes(&servers().atlas_uri, dst),
        "dbHash per collection of {src}"
    );
}

#[test]
fn follow_applies_every_kind_of_change_until_identical_then_finalize_restores_indexes() {
    let rs = &servers().rs_uri;
    let (src, dst) = (common::unique_db("fwsrc"), common::unique_db("fwdst"));
    let (src2, dst2) = (common::unique_db("fwsrc2"), common::unique_db("fwdst2"));
    block_on(async {
        let c = client(rs).await;
        seed(&c, &src, 2.0).await;
        c.database(&src2)
            .collection::<Document>("scratch")
            .insert_one(doc! { "i": -1 })
            .await
            .unwrap();
    });
    let dir = tempdir();
    let mut f = follow_at(dir.path(), &[(&src, &dst), (&src2, &dst2)]);
    // The writer starts before the copy and runs through it and 30 s beyond.
    let ddl = AtomicBool::new(false);
    let rounds = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            block_on(async {
                let c = client(rs).await;
                // Two whole DDL cycles (12 steps; the other database dropped every 24).
                write_everything(&c, &src, Some(&src2), (30, 2 * 24), &ddl).await
            })
        });
        std::thread::sleep(Duration::from_millis(300));
        f.spawn(&[]);
        f.wait_following();
        ddl.store(true, Ordering::Relaxed);
        let rounds = writer.join().unwrap();
        let s = f.wait_caught_up();
        assert!(s["tail"]["events"].as_u64().unwrap() > 100, "{s}");
        assert_eq!(s["alive"], true);
        assert_eq!(s["follow"], true);
        // While following, the target's TTL and unique indexes are relaxed.
        let during = schema_of(&servers().atlas_uri, &dst);
        let sess = &during["sessions"].1;
        assert!(
            sess.iter()
                .all(|i| i.get("expireAfterSeconds").is_none() && i.get("unique").is_none()),
            "{sess:?}"
        );
        assert_same_data(&src, &dst);
        assert_eq!(
            hashes(rs, &src2),
            hashes(&servers().atlas_uri, &dst2),
            "the second database (dropped and recreated on the source)"
        );
        // Exit 0 once stopped.
        let stop = f.stop();
        assert!(stop.stdout.contains("stopped the tail"), "{}", stop.stdout);
        rounds
    });
    assert!(rounds >= 48, "the writer made {rounds} rounds with DDL");
    let out = f.stdout();
    let err = f.stderr();
    assert!(out.contains("tail stopped by migrate stop"), "{out}\n{err}");
    assert_no_secret(&format!("{out}\n{err}"), "migrate --follow output");
    assert_eq!(f.status()["phase"], "stopped");

    let fin = f.finalize();
    assert!(
        fin.stdout.contains("expireAfterSeconds 7200"),
        "{}",
        fin.stdout
    );
    assert!(fin.stdout.contains("token_unique of"), "{}", fin.stdout);
    assert_same_data(&src, &dst);
    assert_eq!(
        schema_of(rs, &src),
        schema_of(&servers().atlas_uri, &dst),
        "options and indexes after finalize"
    );
    assert!(f.status().is_null(), "finalize clears the run");
}

#[test]
fn kill_9_during_the_copy_and_during_the_tail_then_resume_is_identical() {
    let rs = &servers().rs_uri;
    let (src, dst) = (common::unique_db("fksrc"), common::unique_db("fkdst"));
    block_on(async {
        let c = client(rs).await;
        seed(&c, &src, 30.0).await;
    });
    let dir = tempdir();
    let mut f = follow_at(dir.path(), &[(&src, &dst)]);
    let slow = [
        "--parallel",
        "1",
        "--workers-per-collection",
        "1",
        "--range-mb",
        "2",
        // 30 MB at 6 MB/s: the kill lands during the copy on any machine.
        "--max-rate",
        "6MB",
    ];
    let ddl = AtomicBool::new(false);
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            block_on(async {
                let c = client(rs).await;
                write_everything(&c, &src, None, (20, 0), &ddl).await
            })
        });
        // Killed while copying.
        f.spawn(&slow);
        f.wait_for("the copy to start", Duration::from_secs(60), |f| {
            let s = f.status();
            s["phase"] == "copying" && s["copy"].as_array().is_some_and(|a| !a.is_empty())
        });
        f.kill_9();
        let s = f.status();
        assert_eq!(s["alive"], false, "{s}");
        assert_eq!(s["copied"], false, "killed during the copy: {s}");

        // Resumed, and killed again while following.
        f.spawn(&["--resume"]);
        f.wait_for("the tail to start", Duration::from_secs(120), |f| {
            let s = f.status();
            assert_ne!(s["phase"], "failed", "{s}");
            s["phase"] == "following" && s["tail"]["events"].as_u64().unwrap_or(0) > 0
        });
        ddl.store(true, Ordering::Relaxed);
        std::thread::sleep(Duration::from_secs(1));
        f.kill_9();
        let err = f.stderr();
        assert!(!err.contains("E11000"), "no duplicate-key noise: {err}");

        // Resumed from the recorded position while the writer goes on.
        f.spawn(&["--resume"]);
        writer.join().unwrap();
        f.wait_caught_up();
        assert_same_data(&src, &dst);
        f.stop();
    });
    f.finalize();
    assert_eq!(schema_of(rs, &src), schema_of(&servers().atlas_uri, &dst));
}

#[test]
fn detach_status_from_another_terminal_and_stop() {
    let rs = &servers().rs_uri;
    let (src, dst) = (common::unique_db("fdsrc"), common::unique_db("fddst"));
    block_on(async {
        let c = client(rs).await;
        common::load_sample(&c.database(&src), 0.5, 4).await;
    });
    let dir = tempdir();
    // The detached tail is not our child: only its run is looked at.
    let mut f = follow_at(dir.path(), &[(&src, &dst)]);
    let log = dir.path().join("tail.log");
    // The same detached migrate, started again later with --resume.
    let (ns_from, ns_to) = (format!("{src}.*"), format!("{dst}.*"));
    let detached = |extra: &[&str]| {
        let mut args = vec![
            "migrate",
            "--from",
            rs.as_str(),
            "--to",
            servers().atlas_uri.as_str(),
            "--db",
            src.as_str(),
            "--ns-from",
            ns_from.as_str(),
            "--ns-to",
            ns_to.as_str(),
            "--follow",
            "--detach",
            "--log",
            log.to_str().unwrap(),
            "--yes",
        ];
        args.extend_from_slice(extra);
        mongoshift(dir.path(), args)
    };
    let run = detached(&[]);
    run.assert_code(0);
    assert!(
        run.stdout.contains("following in the background"),
        "{}",
        run.stdout
    );
    let s = f.status();
    assert_eq!(s["phase"], "following", "{s}");
    assert_eq!(s["alive"], true, "{s}");
    assert_eq!(s["log"], log.canonicalize().unwrap().to_str().unwrap());
    let pid = s["pid"].as_u64().unwrap();
    // Killed if the test fails before stopping it.
    struct Detached(u64);
    impl Drop for Detached {
        fn drop(&mut self) {
            let ours = std::fs::read(format!("/proc/{}/cmdline", self.0))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("(detached tail)"));
            if ours {
                let _ = Command::new("kill")
                    .arg("-9")
                    .arg(self.0.to_string())
                    .status();
            }
        }
    }
    let _guard = Detached(pid);
    // A second migration into the same namespaces is refused while the tail runs.
    let again = mongoshift(
        dir.path(),
        [
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
            "--follow",
            "--resume",
            "--yes",
        ],
    );
    again.assert_code(2);
    assert!(again.stderr.contains("already running"), "{}", again.stderr);

    block_on(async {
        let c = client(rs).await;
        c.database(&src)
            .collection::<Document>("users")
            .insert_many((0..500).map(
                |i| doc! { "_id": format!("late{i}"), "email": format!("late{i}@example.com") },
            ))
            .await
            .unwrap();
    });
    f.wait_caught_up();
    assert_eq!(hashes(rs, &src), hashes(&servers().atlas_uri, &dst));
    let table = f.control("status", &[]);
    table.assert_code(0);
    assert!(
        table.stdout.contains("phase      following"),
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains("users"), "{}", table.stdout);

    let stop = f.control("stop", &[]);
    stop.assert_code(0);
    f.wait_for("the detached tail to exit", Duration::from_secs(30), |_| {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
    });
    assert_eq!(f.status()["phase"], "stopped");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("tail stopped by migrate stop"), "{text}");
    assert_no_secret(&text, "the detached tail's log");
    // Nothing we keep in the target holds a password either.
    let state = block_on(async {
        let c = client(&servers().atlas_uri).await;
        let docs: Vec<Document> = futures::TryStreamExt::try_collect(
            c.database("mongoshift")
                .collection::<Document>("migrations")
                .find(doc! {})
                .await
                .unwrap(),
        )
        .await
        .unwrap();
        format!("{docs:?}")
    });
    assert_no_secret(&state, "the migration state");
    // Stopping again is not an error.
    f.control("stop", &[]).assert_code(0);
    // --detach holds for a resumed tail too: it returns once the tail follows in the
    // background (it used to follow in the foreground and never return).
    let again = detached(&["--resume"]);
    again.assert_code(0);
    assert!(
        again.stdout.contains("following in the background"),
        "{}",
        again.stdout
    );
    let s = f.status();
    assert_eq!(
        (s["phase"].as_str(), s["alive"].as_bool()),
        (Some("following"), Some(true)),
        "{s}"
    );
    let _resumed = Detached(s["pid"].as_u64().unwrap());
    f.control("stop", &[]).assert_code(0);
    f.finalize();
}

/// A resumed tail starts exactly at its recorded position, moved here back to 1970. What
/// is right depends on the oplog, and both are checked against the real server: while the
/// oplog still holds everything since the replica set began, the whole history is replayed
/// (idempotently) rather than any of it skipped; once it has rolled over (the test replica
/// set's 2 GB oplog does after a few GB of writes, e.g. the 1 GB migrate test or
/// `scripts/bench`), the tail refuses to go on with a hole and says a fresh copy is needed.
#[test]
fn a_resumed_tail_starts_at_its_recorded_position_or_refuses_a_lost_one() {
    let rs = &servers().rs_uri;
    let (src, dst) = (common::unique_db("fhsrc"), common::unique_db("fhdst"));
    block_on(async {
        let c = client(rs).await;
        common::load_sample(&c.database(&src), 0.2, 4).await;
    });
    let dir = tempdir();
    let mut f = start_follow(dir.path(), &[(&src, &dst)], &[]);
    f.wait_following();
    f.stop();
    let rolled_over = block_on(async {
        let c = client(&servers().atlas_uri).await;
        let coll = c
            .database("mongoshift")
            .collection::<Document>("migrations");
        let rec = coll
            .find_one(
                doc! { "_id": { "$regex": format!("^migrate from .* --db {src} .*\\|run$") } },
            )
            .await
            .unwrap()
            .expect("the run record");
        let id = rec.get_str("_id").unwrap().to_string();
        let data = rec
            .get_document("token")
            .unwrap()
            .get_str("_data")
            .unwrap()
            .to_string();
        let old = format!("82{}{}", "00000010", &data[10..]);
        coll.update_one(doc! { "_id": &id }, doc! { "$set": { "token._data": old } })
            .await
            .unwrap();
        let s = client(rs).await;
        s.database(&src)
            .collection::<Document>("markets")
            .delete_many(doc! { "status": "open" })
            .await
            .unwrap();
        mongoshift::mongo::oplog::history_starts(&s)
            .await
            .unwrap()
            .is_some()
    });
    f.spawn(&["--resume"]);
    if rolled_over {
        let code = f.exit_code();
        let err = f.stderr();
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("no longer holds the tail's position") && err.contains("fresh copy"),
            "{err}"
        );
        let s = f.status();
        assert_eq!(s["phase"], "failed");
        assert!(
            s["last_error"].as_str().unwrap().contains("fresh copy"),
            "{s}"
        );
        return;
    }
    f.wait_caught_up();
    assert_eq!(hashes(rs, &src), hashes(&servers().atlas_uri, &dst));
    f.stop();
    f.finalize();
}

/// An update the tail reads only after its collection was renamed (the tail was stopped in
/// between): the lookup by the old name finds nothing, the event's collection UUID finds
/// the collection under its new name, and the target's renamed collection gets the update.
/// (The tail used to drop such an update as "gone": the copy kept the old version. The
/// same lookup follows a getMore the server killed for a rename, QueryPlanKilled 175.)
#[test]
fn an_update_read_after_a_rename_lands_in_the_renamed_collection() {
    let rs = &servers().rs_uri;
    let (src, dst) = (common::unique_db("frnsrc"), common::unique_db("frndst"));
    let docs = (0..5).map(|i| doc! { "_id": i, "v": 0, "pad": "x".repeat(50) });
    common::insert(rs, &src, "a", docs.collect());
    let dir = tempdir();
    let mut f = start_follow(dir.path(), &[(&src, &dst)], &[]);
    f.wait_following();
    f.stop();
    block_on(async {
        let c = client(rs).await;
        let d = c.database(&src);
        d.collection::<Document>("a")
            .update_many(doc! { "_id": { "$lt": 3 } }, doc! { "$set": { "v": 1 } })
            .await
            .unwrap();
        c.database("admin")
            .run_command(doc! { "renameCollection": format!("{src}.a"), "to": format!("{src}.b") })
            .await
            .unwrap();
        d.collection::<Document>("b")
            .update_one(doc! { "_id": 4 }, doc! { "$set": { "v": 2 } })
            .await
            .unwrap();
    });
    f.spawn(&["--resume"]);
    f.wait_caught_up();
    let target = block_on(async {
        let c = client(&servers().atlas_uri).await;
        let names = c.database(&dst).list_collection_names().await.unwrap();
        let mut v: Vec<(i32, i32)> = Vec::new();
        let mut cur = c
            .database(&dst)
            .collection::<Document>("b")
            .find(doc! {})
            .await
            .unwrap();
        while let Some(d) = futures::StreamExt::next(&mut cur).await {
            let d = d.unwrap();
            v.push((d.get_i32("_id").unwrap(), d.get_i32("v").unwrap()));
        }
        v.sort();
        (names, v)
    });
    assert!(!target.0.contains(&"a".to_string()), "{:?}", target.0);
    assert_eq!(target.1, vec![(0, 1), (1, 1), (2, 1), (3, 0), (4, 2)]);
    assert_eq!(hashes(rs, &src), hashes(&servers().atlas_uri, &dst));
    f.stop();
    f.finalize();
}

#[test]
fn follow_refuses_a_standalone_and_time_series_with_guidance() {
    let sa = &servers().standalone_uri;
    let db = common::unique_db("fsa");
    common::insert(sa, &db, "c", vec![doc! { "a": 1 }]);
    let dir = tempdir();
    let r = mongoshift(
        dir.path(),
        [
            "migrate",
            "--from",
            sa,
            "--to",
            &servers().atlas_uri,
            "--db",
            &db,
            "--follow",
            "--yes",
        ],
    );
    r.assert_code(2);
    assert!(
        r.stderr.contains("standalone") && r.stderr.contains("--replSet"),
        "{}",
        r.stderr
    );
    assert_no_secret(&r.all(), "refusal");

    let rs = &servers().rs_uri;
    let tsdb = common::unique_db("fts");
    block_on(async {
        let c = client(rs).await;
        c.database(&tsdb)
            .run_command(doc! { "create": "ticks", "timeseries": { "timeField": "at" } })
            .await
            .unwrap();
    });
    let r = mongoshift(
        dir.path(),
        [
            "migrate",
            "--from",
            rs,
            "--to",
            &servers().atlas_uri,
            "--db",
            &tsdb,
            "--follow",
            "--yes",
        ],
    );
    r.assert_code(2);
    assert!(
        r.stderr.contains("time-series") && r.stderr.contains("--ns-exclude"),
        "{}",
        r.stderr
    );
    // --detach without --follow is a usage error.
    let r = mongoshift(
        dir.path(),
        ["migrate", "--from", rs, "--to", "x", "--detach"],
    );
    r.assert_code(2);
}

/// `verify` while a `migrate --follow` runs and a writer keeps changing the source: what
/// differs only because the tail has not applied it yet is rechecked once the tail has
/// caught up, and no false difference is reported.
#[test]
fn verify_during_a_live_tail_rechecks_and_reports_no_false_difference() {
    let rs = &servers().rs_uri;
    let (src, dst) = (common::unique_db("fvsrc"), common::unique_db("fvdst"));
    block_on(async {
        let c = client(rs).await;
        c.database(&src)
            .collection::<Document>("orders")
            .insert_many((0..5000i64).map(|i| doc! { "_id": i, "n": 0, "items": [1, 2] }))
            .await
            .unwrap();
    });
    let dir = tempdir();
    let mut f = start_follow(dir.path(), &[(&src, &dst)], &[]);
    f.wait_following();
    let stop = AtomicBool::new(false);
    let report = std::thread::scope(|s| {
        s.spawn(|| {
            block_on(async {
                let c = client(rs).await;
                let orders = c.database(&src).collection::<Document>("orders");
                let mut i = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    orders
                        .update_one(
                            doc! { "_id": (i * 7919) % 5000 },
                            doc! { "$inc": { "n": 1 }, "$push": { "items": i } },
                        )
                        .await
                        .unwrap();
                    orders
                        .insert_one(doc! { "_id": 10_000 + i, "n": i })
                        .await
                        .unwrap();
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        });
        std::thread::sleep(Duration::from_secs(2));
        let r = mongoshift(
            dir.path(),
            [
                "verify",
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
                "--output",
                "json",
                "--no-progress",
            ],
        );
        stop.store(true, Ordering::Relaxed);
        r
    });
    report.assert_code(0);
    let j = report.json();
    assert_eq!(j["identical"], true, "{}", report.stdout);
    assert!(j["live_tail"].is_string(), "{}", report.stdout);
    eprintln!("{}\n{}", report.stdout, report.stderr);
    f.control("stop", &[]).assert_code(0);
}

/// The fidelity rule through the tail: every change below is made while following and
/// must arrive byte for byte, and none may stop the tail — documents a decoder would change
/// or refuse, two 9 MB documents changed back to back (one command for both would pass the
/// server's limits; a `$set` of 9 MB with its looked-up document passes 16 MB), a capped
/// collection's inserts in order, a clustered collection with a named clustered index, a
/// stored function, and `_id`s that a case-insensitive default collation would confuse.
#[test]
fn the_tail_carries_odd_and_large_documents_unchanged() {
    let (rs, atlas) = (&servers().rs_uri, &servers().atlas_uri);
    let db = common::unique_db("fwraw");
    block_on(async {
        let c = client(rs).await;
        let d = c.database(&db);
        d.collection::<Document>("seed")
            .insert_one(doc! { "i": 0 })
            .await
            .unwrap();
        d.run_command(doc! { "create": "ring", "capped": true, "size": 1 << 20, "max": 300 })
            .await
            .unwrap();
        d.run_command(doc! { "create": "ci", "collation": { "locale": "en", "strength": 2 } })
            .await
            .unwrap();
        d.collection::<Document>("big")
            .insert_many((0..2).map(|i| doc! { "_id": i, "v": 0 }))
            .await
            .unwrap();
    });
    let dir = tempdir();
    let mut f = start_follow(dir.path(), &[(&db, &db)], &[]);
    f.wait_following();
    common::insert_raw(rs, &db, "odd", &common::odd_docs(0));
    block_on(async {
        let c = client(rs).await;
        let d = c.database(&db);
        // Replaced by the same odd bytes under other _ids: updates travel as replacements.
        let odd = d.collection::<Document>("odd");
        odd.update_many(
            doc! { "_id": { "$ne": 0 } },
            doc! { "$set": { "touched": true } },
        )
        .await
        .unwrap();
        let big = d.collection::<Document>("big");
        let nine = "x".repeat(9 << 20);
        big.update_one(doc! { "_id": 0 }, doc! { "$set": { "v": &nine } })
            .await
            .unwrap();
        big.update_one(doc! { "_id": 1 }, doc! { "$set": { "v": &nine } })
            .await
            .unwrap();
        // Over the tail's 15 MB event limit: left out of its event and looked up by _id.
        big.insert_one(doc! { "_id": 2, "v": "y".repeat(15 * 1024 * 1024 + 512 * 1024) })
            .await
            .unwrap();
        let ring = d.collection::<Document>("ring");
        for chunk in (0..900i32).collect::<Vec<_>>().chunks(100) {
            ring.insert_many(chunk.iter().map(|i| doc! { "_id": 1_000 - i }))
                .await
                .unwrap();
        }
        d.run_command(doc! { "create": "clustered", "clusteredIndex": { "key": { "_id": 1 }, "unique": true, "name": "by_time" }, "expireAfterSeconds": 86_400 })
            .await
            .unwrap();
        d.collection::<Document>("clustered")
            .insert_one(doc! { "_id": DateTime::from_millis(5), "v": 1 })
            .await
            .unwrap();
        d.collection::<Document>("system.js")
            .insert_one(doc! { "_id": "add", "value": Bson::JavaScriptCode("function(a, b) { return a + b; }".into()) })
            .await
            .unwrap();
        let ci = d.collection::<Document>("ci");
        ci.insert_many([doc! { "_id": "A", "v": 1 }, doc! { "_id": "b", "v": 1 }])
            .await
            .unwrap();
        ci.insert_one(doc! { "_id": "a", "v": 2 })
            .await
            .unwrap_err(); // the collation's duplicate
        ci.update_one(doc! { "_id": "B" }, doc! { "$set": { "v": 3 } })
            .await
            .unwrap();
        ci.delete_one(doc! { "_id": "a" }).await.unwrap();
    });
    // Odd bytes again, now as replacements of existing documents (not the empty
    // timestamps: a replacement through the driver has the server fill them in).
    let replaced: Vec<_> = common::odd_docs(0)
        .into_iter()
        .skip(1)
        .filter(|d| !d.as_bytes().windows(7).any(|w| w == b"$dollar"))
        .collect();
    block_on(async {
        let c = client(rs).await;
        let coll = c
            .database(&db)
            .collection::<mongodb::bson::RawDocumentBuf>("odd");
        for d in &replaced {
            let id = d.get_i32("_id").unwrap();
            coll.replace_one(doc! { "_id": id }, d.clone())
                .await
                .unwrap();
        }
    });
    let s = f.wait_caught_up();
    assert_eq!(s["phase"], "following", "{s}");
    // system.js is compared by the tail every 5 s (change streams never report it).
    f.wait_for("system.js on the target", Duration::from_secs(20), |_| {
        common::raw_docs(rs, &db, "system.js", false)
            == common::raw_docs(atlas, &db, "system.js", false)
    });
    for coll in ["odd", "big", "clustered", "ci"] {
        assert!(
            common::raw_docs(rs, &db, coll, false) == common::raw_docs(atlas, &db, coll, false),
            "{coll}: every document's bytes, in _id order"
        );
    }
    assert!(
        common::raw_docs(rs, &db, "ring", true) == common::raw_docs(atlas, &db, "ring", true),
        "the capped collection's $natural order"
    );
    let odd = common::raw_docs(atlas, &db, "odd", false);
    assert!(
        odd[0].windows(11).any(|w| w == b"ts\0\0\0\0\0\0\0\0\0"),
        "Timestamp(0,0) rewritten"
    );
    f.stop();
    f.finalize();
    assert_eq!(
        schema_of(rs, &db),
        schema_of(atlas, &db),
        "options and indexes after finalize"
    );
}

/// Issue 28's index cases under a live tail: following an empty database; a unique and a
/// non-unique index on the same key created while following (the relaxed unique one would
/// twin the other: deferred to finalize, the tail goes on); `collMod prepareUnique` held
/// back and applied by finalize; a finalize that cannot make an index unique restores the
/// rest, names the duplicates and can run again; a fresh run forgets an old run's relaxed
/// indexes.
#[test]
fn the_tail_keeps_every_index_and_finalize_restores_what_it_can() {
    let (rs, atlas) = (&servers().rs_uri, &servers().atlas_uri);
    let db = common::unique_db("fwidx");
    let dir = tempdir();
    // Nothing exists yet: a normal start.
    let mut f = start_follow(dir.path(), &[(&db, &db)], &[]);
    f.wait_following();
    block_on(async {
        let d = client(rs).await.database(&db);
        d.run_command(doc! { "createIndexes": "twins", "indexes": [
            { "key": { "i": 1 }, "name": "unique_idx", "unique": true },
        ] })
        .await
        .unwrap();
        d.run_command(doc! { "createIndexes": "twins", "indexes": [
            { "key": { "i": 1 }, "name": "non_unique_idx" },
            { "key": { "p": 1 }, "name": "p_1" },
            { "key": { "at": 1 }, "name": "at_ttl", "expireAfterSeconds": 3600 },
        ] })
        .await
        .unwrap();
        d.run_command(
            doc! { "collMod": "twins", "index": { "name": "p_1", "prepareUnique": true } },
        )
        .await
        .unwrap();
        d.collection::<Document>("twins")
            .insert_many((0..100).map(|i| doc! { "_id": i, "i": i, "p": i, "at": DateTime::now() }))
            .await
            .unwrap();
    });
    let s = f.wait_caught_up();
    assert_eq!(
        s["phase"], "following",
        "the twin index must not stop the tail: {s}"
    );
    // What a controller reads without polling the source.
    assert_eq!(s["state"], "following", "{s}");
    assert_eq!(s["initial_copy_complete"], true, "{s}");
    assert!(s["applied_optime"]["t"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(hashes(rs, &db), hashes(atlas, &db));
    // While following, prepareUnique is held back: a duplicate the source would refuse
    // must not be refused by the target mid-tail.
    let during = schema_of(atlas, &db);
    assert!(
        during["twins"]
            .1
            .iter()
            .all(|i| i.get("prepareUnique").is_none()),
        "{during:?}"
    );
    f.control("stop", &[]).assert_code(0);
    // Stopped means gone: the process has exited by the time stop returns.
    assert!(
        f.try_exit().is_some(),
        "the tail is still running after migrate stop reported it stopped"
    );
    assert_eq!(f.status()["state"], "stopped");
    assert_eq!(f.exit_code(), 0);
    // A duplicate planted on the target breaks unique_idx at finalize.
    block_on(async {
        client(atlas)
            .await
            .database(&db)
            .collection::<Document>("twins")
            .insert_one(doc! { "_id": 1000, "i": 5, "p": 1000 })
            .await
            .unwrap();
    });
    let fin = f.control("finalize", &[]);
    fin.assert_code(1);
    assert!(
        fin.stderr.contains("unique_idx")
            && fin.stderr.contains("1000")
            && fin.stderr.contains("can run again"),
        "{}",
        fin.stderr
    );
    // Everything else was restored regardless.
    let after = schema_of(atlas, &db);
    let ix = |name: &str| {
        after["twins"]
            .1
            .iter()
            .find(|i| i["name"] == name)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        ix("at_ttl")["expireAfterSeconds"]["$numberInt"],
        "3600",
        "{after:?}"
    );
    assert_eq!(ix("p_1")["prepareUnique"], true, "{after:?}");
    block_on(async {
        client(atlas)
            .await
            .database(&db)
            .collection::<Document>("twins")
            .delete_one(doc! { "_id": 1000 })
            .await
            .unwrap();
    });
    f.finalize();
    assert_eq!(
        schema_of(rs, &db),
        schema_of(atlas, &db),
        "options and indexes after finalize"
    );
    assert_eq!(hashes(rs, &db), hashes(atlas, &db));

    // A run stopped without finalize, then a fresh --drop run: the old TTL record is gone.
    f.spawn(&["--drop"]);
    f.wait_following();
    f.stop();
    block_on(async {
        let d = client(rs).await.database(&db);
        d.run_command(doc! { "dropIndexes": "twins", "index": "at_ttl" })
            .await
            .unwrap();
        d.run_command(doc! { "createIndexes": "twins", "indexes": [ { "key": { "at": 1 }, "name": "at_ttl" } ] })
            .await
            .unwrap();
    });
    f.spawn(&["--drop"]);
    f.wait_for("the fresh tail", Duration::from_secs(60), |f| {
        f.status()["phase"] == "following"
    });
    f.stop();
    f.finalize();
    assert_eq!(
        schema_of(rs, &db),
        schema_of(atlas, &db),
        "no stale TTL after a fresh run"
    );
}

/// Issue 28 points 1 and 8: a collection renamed on the source after `migrate` listed it but
/// before its own copy began is never reported "ok" with what was read under its old name:
/// the run fails naming it, or (when the copy beat the rename) the tail brings the renamed
/// collection whole. And `migrate status --output json` says what a controller needs.
#[test]
fn a_rename_before_its_copy_never_passes_as_ok_and_status_tells_a_controller() {
    let (rs, atlas) = (&servers().rs_uri, &servers().atlas_uri);
    let db = common::unique_db("fwren");
    // Copied first (names sort), big enough to keep --parallel 1 busy while we rename.
    common::numbered(rs, &db, "a_big", 200, 200, &"p".repeat(900));
    block_on(async {
        client(rs)
            .await
            .database(&db)
            .collection::<Document>("b_small")
            .insert_many((0..1001).map(|i| doc! { "_id": i }))
            .await
            .unwrap();
    });
    let dir = tempdir();
    let mut f = start_follow(dir.path(), &[(&db, &db)], &["--parallel", "1"]);
    f.wait_for("the copy", Duration::from_secs(60), |f| {
        f.status()["phase"] != serde_json::Value::Null
    });
    block_on(async {
        client(rs)
            .await
            .database("admin")
            .run_command(doc! { "renameCollection": format!("{db}.b_small"), "to": format!("{db}.b_renamed") })
            .await
            .unwrap();
    });
    let mut outcome = None;
    f.wait_for("the copy's end", Duration::from_secs(120), |f| {
        if let Some(code) = f.try_exit() {
            outcome = Some(code);
            return true;
        }
        f.status()["phase"] == "following"
    });
    match outcome {
        Some(code) => {
            let err = f.stderr();
            assert_ne!(code, 0, "{err}");
            assert!(
                err.contains("b_small") && err.contains("renamed or dropped"),
                "{err}"
            );
        }
        None => {
            // The copy finished before the rename: the tail applied it.
            let s = f.wait_caught_up();
            assert_eq!(s["state"], "following", "{s}");
            assert_eq!(s["initial_copy_complete"], true, "{s}");
            assert!(s["applied_optime"]["t"].as_u64().unwrap() > 0, "{s}");
            assert_eq!(hashes(rs, &db), hashes(atlas, &db));
            f.control("stop", &[]).assert_code(0);
            // Stopped means gone: the process has exited by the time stop returns.
            assert!(
                f.try_exit().is_some(),
                "the tail is still running after stop"
            );
            assert_eq!(f.status()["state"], "stopped");
        }
    }
}

/// Issue 20 point 4: a change the target refuses stops the tail, naming the namespace, the
/// `_id` and the way on; `--skip-change` with any other time is refused and changes
/// nothing; with the printed time it leaves out exactly that change, kept in the record.
#[test]
fn a_refused_change_stops_the_tail_and_skipping_it_is_a_recorded_decision() {
    let (rs, atlas) = (&servers().rs_uri, &servers().atlas_uri);
    let db = common::unique_db("fwskip");
    block_on(async {
        client(rs)
            .await
            .database(&db)
            .collection::<Document>("c")
            .insert_one(doc! { "_id": 0, "k": 0 })
            .await
            .unwrap();
    });
    let dir = tempdir();
    let mut f = start_follow(dir.path(), &[(&db, &db)], &[]);
    f.wait_following();
    block_on(async {
        // Only the target has this unique index: the second k: 7 is refused there.
        client(atlas)
            .await
            .database(&db)
            .run_command(doc! { "createIndexes": "c", "indexes": [ { "key": { "k": 1 }, "name": "k_only_here", "unique": true } ] })
            .await
            .unwrap();
        let c = client(rs).await.database(&db).collection::<Document>("c");
        c.insert_one(doc! { "_id": 1, "k": 7 }).await.unwrap();
        c.insert_one(doc! { "_id": 2, "k": 7 }).await.unwrap();
        c.insert_one(doc! { "_id": 3, "k": 9 }).await.unwrap();
    });
    assert_ne!(f.exit_code(), 0, "a refused change stops the tail");
    let s = f.status();
    assert_eq!(s["state"], "failed", "{s}");
    let err = s["last_error"].as_str().unwrap().to_string();
    assert!(
        err.contains(&format!("{db}.c _id 2")) && err.contains("E11000"),
        "{err}"
    );
    let at = err
        .split("--skip-change ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("{err}"))
        .to_string();
    assert_eq!(s["failed_change"]["id"], "2", "{s}");

    f.spawn(&["--resume", "--skip-change", "1:1"]);
    assert_eq!(
        f.exit_code(),
        2,
        "another change is refused, nothing changes"
    );
    assert_eq!(f.status()["state"], "failed");

    f.spawn(&["--resume", "--skip-change", &at]);
    // The record says "failed" until the resumed tail has taken it over.
    f.wait_for("the resumed tail", Duration::from_secs(60), |f| {
        f.status()["phase"] == "following"
    });
    let s = f.wait_caught_up();
    assert_eq!(s["skipped_changes"][0]["id"], "2", "{s}");
    assert_eq!(s["skipped_changes"][0]["ns"], format!("{db}.c"), "{s}");
    let ids = |uri: &str| {
        block_on(async {
            let c = client(uri).await.database(&db).collection::<Document>("c");
            let mut ids: Vec<i32> =
                futures::TryStreamExt::try_collect::<Vec<Document>>(c.find(doc! {}).await.unwrap())
                    .await
                    .unwrap()
                    .iter()
                    .map(|d| d.get_i32("_id").unwrap())
                    .collect();
            ids.sort();
            ids
        })
    };
    assert_eq!(
        ids(atlas),
        vec![0, 1, 3],
        "exactly the refused change is left out"
    );
    assert_eq!(ids(rs), vec![0, 1, 2, 3]);
    f.stop();
    let err = f.stderr();
    assert!(err.contains("as asked with --skip-change"), "{err}");
}
