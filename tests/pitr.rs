//! Continuous backups and point-in-time restore (#26) against the real replica set and
//! Garage: a writer with a known timeline, a base backup and the archiver (killed with
//! SIGKILL mid-stream and restarted), then restores to random points compared with the
//! state the writer's log implies.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use mongodb::bson::{doc, Document, Timestamp};
use mongoshift::dump::manifest::OplogTs;

/// One acknowledged write: its optime (the session's operationTime after it) and effect.
#[derive(Debug, Clone)]
enum Op {
    Put(String, i64, Document),
    Delete(String, i64),
}

/// Whether a write at this optime is included in a point in time.
type Upto = Box<dyn Fn(Timestamp) -> bool>;

struct Logged {
    ts: Timestamp,
    ops: Vec<Op>,
}

/// A small deterministic generator (no rand crate): the seed is printed for a re-run.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn archiver(loc: &str, db: &str) -> Child {
    let s = servers();
    let mut args: Vec<String> = vec![
        "backup".into(),
        "--continuous".into(),
        "--uri".into(),
        s.rs_uri.clone(),
        "--to".into(),
        loc.into(),
        "--db".into(),
        db.into(),
        "--slice".into(),
        "2s".into(),
        "--compress".into(),
        "gzip".into(),
    ];
    args.extend(s3_flags());
    Command::new(env!("CARGO_BIN_EXE_mongoshift"))
        .args(&args)
        .current_dir(std::env::temp_dir())
        .env("AWS_ACCESS_KEY_ID", &s.s3_access_key)
        .env("AWS_SECRET_ACCESS_KEY", &s.s3_secret_key)
        .env("AWS_REGION", &s.s3_region)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the archiver")
}

fn s3_cli(args: &[String]) -> Run {
    let dir = tempdir();
    let mut all: Vec<String> = args.to_vec();
    all.extend(s3_flags());
    Cli::new(dir.path()).s3_env().run(all)
}

/// The effect of the writer's log through `upto` (inclusive), per collection.
fn state_at(
    log: &[Logged],
    upto: impl Fn(Timestamp) -> bool,
) -> BTreeMap<String, BTreeMap<i64, Document>> {
    let mut out: BTreeMap<String, BTreeMap<i64, Document>> = BTreeMap::new();
    for l in log.iter().filter(|l| upto(l.ts)) {
        for op in &l.ops {
            match op {
                Op::Put(c, id, d) => {
                    out.entry(c.clone()).or_default().insert(*id, d.clone());
                }
                Op::Delete(c, id) => {
                    out.entry(c.clone()).or_default().remove(id);
                }
            }
        }
    }
    out
}

/// Writes for `secs` seconds: inserts, updates, deletes and two-document transactions on
/// `items`, and a collection `late` that appears half-way. Returns the log.
async fn write_for(
    client: &mongodb::Client,
    db: &str,
    secs: f64,
    seed: u64,
    log: &mut Vec<Logged>,
    model: &mut BTreeMap<i64, Document>,
    next_id: &mut i64,
) {
    let d = client.database(db);
    let items = d.collection::<Document>("items");
    let late = d.collection::<Document>("late");
    let mut rng = Lcg(seed);
    let mut session = client.start_session().await.unwrap();
    let started = Instant::now();
    let mut k = 0u64;
    while started.elapsed().as_secs_f64() < secs {
        k += 1;
        let roll = rng.below(100);
        let ids: Vec<i64> = model.keys().copied().collect();
        let pick = |r: &mut Lcg| ids[r.below(ids.len() as u64) as usize];
        let ops = if roll < 45 || ids.len() < 10 {
            let id = *next_id;
            *next_id += 1;
            let doc = doc! { "_id": id, "n": 0i64, "s": format!("v{id}") };
            items
                .insert_one(doc.clone())
                .session(&mut session)
                .await
                .unwrap();
            model.insert(id, doc.clone());
            vec![Op::Put("items".into(), id, doc)]
        } else if roll < 80 {
            let id = pick(&mut rng);
            let s = format!("u{k}");
            items
                .update_one(
                    doc! { "_id": id },
                    doc! { "$inc": { "n": 1i64 }, "$set": { "s": &s } },
                )
                .session(&mut session)
                .await
                .unwrap();
            let cur = model.get_mut(&id).unwrap();
            let n = cur.get_i64("n").unwrap() + 1;
            cur.insert("n", n);
            cur.insert("s", s);
            vec![Op::Put("items".into(), id, cur.clone())]
        } else if roll < 92 {
            let id = pick(&mut rng);
            items
                .delete_one(doc! { "_id": id })
                .session(&mut session)
                .await
                .unwrap();
            model.remove(&id);
            vec![Op::Delete("items".into(), id)]
        } else if roll < 96 {
            // A transaction: two documents change together, at the commit's optime.
            let (a, b) = (pick(&mut rng), pick(&mut rng));
            if a == b {
                continue;
            }
            session.start_transaction().await.unwrap();
            for id in [a, b] {
                items
                    .update_one(doc! { "_id": id }, doc! { "$inc": { "n": 10i64 } })
                    .session(&mut session)
                    .await
                    .unwrap();
            }
            session.commit_transaction().await.unwrap();
            let mut out = Vec::new();
            for id in [a, b] {
                let cur = model.get_mut(&id).unwrap();
                let n = cur.get_i64("n").unwrap() + 10;
                cur.insert("n", n);
                out.push(Op::Put("items".into(), id, cur.clone()));
            }
            out
        } else {
            let id = *next_id;
            *next_id += 1;
            let doc = doc! { "_id": id, "at": format!("late {k}") };
            late.insert_one(doc.clone())
                .session(&mut session)
                .await
                .unwrap();
            vec![Op::Put("late".into(), id, doc)]
        };
        let ts = session
            .operation_time()
            .expect("an operation time after a write");
        log.push(Logged { ts, ops });
        tokio::time::sleep(Duration::from_millis(4)).await;
    }
}

fn slices_of(loc: &str) -> Vec<(mongoshift::pitr::slice::SliceManifest, Vec<Timestamp>)> {
    block_on(async {
        let store = store(loc).await.child("pitr/rs0");
        let mut out = Vec::new();
        for m in mongoshift::pitr::chain::slices(&store).await.unwrap() {
            let bytes = store.get(&m.object.key).await.unwrap();
            assert_eq!(
                mongoshift::pipeline::sha256_hex(&bytes),
                m.object.sha256,
                "{}",
                m.object.key
            );
            let plain = mongoshift::codec::decompress_all(m.compression, &bytes).unwrap();
            let mut ts = Vec::new();
            mongoshift::dump::bson_stream::walk(&plain[..], "slice", |d| {
                ts.push(d.get_timestamp("ts").unwrap());
                Ok(())
            })
            .unwrap();
            assert_eq!(ts.len() as u64, m.count, "{}", m.object.key);
            out.push((m, ts));
        }
        out
    })
}

fn restored(uri: &str, db: &str) -> BTreeMap<String, BTreeMap<i64, Document>> {
    block_on(async {
        let d = client(uri).await.database(db);
        let mut out = BTreeMap::new();
        for c in d.list_collection_names().await.unwrap() {
            if c.starts_with("system.") {
                continue;
            }
            let mut docs = BTreeMap::new();
            let mut cur = d.collection::<Document>(&c).find(doc! {}).await.unwrap();
            use futures::StreamExt;
            while let Some(x) = cur.next().await {
                let x = x.unwrap();
                docs.insert(x.get_i64("_id").unwrap(), x);
            }
            out.insert(c, docs);
        }
        out
    })
}

/// Build the expected state in a reference database and compare dbHash per collection.
fn assert_hash_equal(
    uri: &str,
    got_db: &str,
    expected: &BTreeMap<String, BTreeMap<i64, Document>>,
) {
    let reference = format!("{got_db}_ref");
    block_on(async {
        let d = client(uri).await.database(&reference);
        for (c, docs) in expected {
            let coll = d.collection::<Document>(c);
            if docs.is_empty() {
                d.create_collection(c).await.unwrap();
            } else {
                coll.insert_many(docs.values().cloned().collect::<Vec<_>>())
                    .await
                    .unwrap();
            }
        }
    });
    let got = hashes(uri, got_db);
    let want = hashes(uri, &reference);
    assert_eq!(
        got, want,
        "dbHash of {got_db} differs from the writer's log"
    );
}

fn ts_arg(t: Timestamp) -> String {
    format!("{}:{}", t.time, t.increment)
}

#[test]
fn point_in_time_restores_match_the_writers_timeline_across_a_kill_9() {
    let s = servers();
    let db = unique_db("pitr");
    let loc = s3_location("pitr");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("seed {seed}, db {db}, location {loc}");
    let client = block_on(client(&s.rs_uri));
    let mut log = Vec::new();
    let mut model = BTreeMap::new();
    let mut next_id = 1i64;
    // Some data before anything starts.
    block_on(write_for(
        &client,
        &db,
        1.0,
        seed,
        &mut log,
        &mut model,
        &mut next_id,
    ));

    let mut arch = archiver(&loc, &db);
    std::thread::sleep(Duration::from_millis(1500));
    // The base backup runs while the writer writes.
    let backup_loc = loc.clone();
    let backup_db = db.clone();
    let base = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        let mut a: Vec<String> = [
            "backup",
            "--oplog",
            "--uri",
            &servers().rs_uri,
            "--to",
            &backup_loc,
            "--db",
            &backup_db,
            "--compress",
            "gzip",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        a.extend(["--output".to_string(), "json".to_string()]);
        s3_cli(&a)
    });
    block_on(write_for(
        &client,
        &db,
        5.0,
        seed + 1,
        &mut log,
        &mut model,
        &mut next_id,
    ));
    let base = base.join().unwrap();
    base.assert_code(0);
    // kill -9 mid-slice (2 s slices), write meanwhile, restart.
    block_on(write_for(
        &client,
        &db,
        1.3,
        seed + 2,
        &mut log,
        &mut model,
        &mut next_id,
    ));
    arch.kill().unwrap();
    let killed = arch.wait_with_output().unwrap();
    println!(
        "killed archiver stderr:\n{}",
        String::from_utf8_lossy(&killed.stderr)
    );
    block_on(write_for(
        &client,
        &db,
        1.5,
        seed + 3,
        &mut log,
        &mut model,
        &mut next_id,
    ));
    let arch = archiver(&loc, &db);
    block_on(write_for(
        &client,
        &db,
        4.0,
        seed + 4,
        &mut log,
        &mut model,
        &mut next_id,
    ));
    std::thread::sleep(Duration::from_millis(2500));
    unsafe {
        libc::kill(arch.id() as i32, libc::SIGTERM);
    }
    let out = arch.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    println!("archiver stderr:\n{err}");
    assert!(
        out.status.success(),
        "the archiver did not stop cleanly:\n{err}"
    );
    assert!(
        err.contains("resuming"),
        "the restart did not resume:\n{err}"
    );

    // No gap, no duplicate: one contiguous run, strictly increasing entries, and every
    // write the writer logged after the stream began is in exactly one slice.
    let slices = slices_of(&loc);
    assert!(slices.len() >= 5, "{} slices", slices.len());
    for w in slices.windows(2) {
        assert_eq!(w[0].0.until, w[1].0.after, "slices are not contiguous");
    }
    let all: Vec<Timestamp> = slices.iter().flat_map(|(_, t)| t.clone()).collect();
    for w in all.windows(2) {
        assert!(
            w[0] < w[1],
            "entries out of order or duplicated: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
    let start: Timestamp = slices[0].0.after.into();
    let until: Timestamp = slices.last().unwrap().0.until.into();
    let archived: std::collections::BTreeSet<Timestamp> = all.iter().copied().collect();
    for l in log.iter().filter(|l| l.ts > start) {
        assert!(
            archived.contains(&l.ts),
            "write at {:?} is missing from the slices",
            l.ts
        );
    }

    // The window.
    let list = s3_cli(&[
        "backups".into(),
        "list".into(),
        "--from".into(),
        loc.clone(),
        "--output".into(),
        "json".into(),
    ]);
    list.assert_code(0);
    let j = list.json();
    let windows = &j["point_in_time"][0]["windows"];
    assert_eq!(windows.as_array().unwrap().len(), 1, "{j}");
    let from = OplogTs {
        t: windows[0]["from"]["t"].as_u64().unwrap() as u32,
        i: windows[0]["from"]["i"].as_u64().unwrap() as u32,
    };
    assert_eq!(windows[0]["to"]["t"].as_u64().unwrap() as u32, until.time);
    let from_ts: Timestamp = from.into();
    let table = s3_cli(&[
        "backups".into(),
        "list".into(),
        "--from".into(),
        loc.clone(),
    ]);
    assert!(table.stdout.contains("restorable"), "{}", table.stdout);

    // Before the window: refused, naming the nearest restorable time.
    let first = log.iter().find(|l| l.ts < from_ts).unwrap().ts;
    let r = s3_cli(&[
        "restore".into(),
        "--from".into(),
        loc.clone(),
        "--to-time".into(),
        ts_arg(first),
        "--uri".into(),
        s.standalone_uri.clone(),
        "--dry-run".into(),
    ]);
    r.assert_code(2);
    assert!(r.stderr.contains("nearest restorable"), "{}", r.stderr);

    // Ten optimes and two whole seconds inside the window, each into a fresh database.
    let candidates: Vec<&Logged> = log
        .iter()
        .filter(|l| l.ts >= from_ts && l.ts <= until)
        .collect();
    assert!(
        candidates.len() > 100,
        "only {} writes in the window",
        candidates.len()
    );
    let mut rng = Lcg(seed ^ 0x5eed);
    let mut points: Vec<(String, Upto)> = Vec::new();
    for _ in 0..10 {
        let t = candidates[rng.below(candidates.len() as u64) as usize].ts;
        points.push((ts_arg(t), Box::new(move |x| x <= t)));
    }
    for _ in 0..2 {
        let sec =
            from_ts.time + 1 + rng.below((until.time - from_ts.time - 1).max(1) as u64) as u32;
        let text = chrono::DateTime::from_timestamp(sec as i64, 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        points.push((text, Box::new(move |x: Timestamp| x.time <= sec)));
    }
    // The dry run names base, slices, entries and the last optime.
    let dry = s3_cli(&[
        "restore".into(),
        "--from".into(),
        loc.clone(),
        "--to-time".into(),
        points[0].0.clone(),
        "--uri".into(),
        s.standalone_uri.clone(),
        "--dry-run".into(),
    ]);
    dry.assert_code(0);
    assert!(
        dry.all().contains("base backup")
            && dry.all().contains("slices")
            && dry.all().contains("last"),
        "{}",
        dry.all()
    );
    for (k, (t, upto)) in points.iter().enumerate() {
        let target = format!("{db}_p{k}");
        let r = s3_cli(&[
            "restore".into(),
            "--from".into(),
            loc.clone(),
            "--to-time".into(),
            t.clone(),
            "--uri".into(),
            s.standalone_uri.clone(),
            "--ns-from".into(),
            format!("{db}.*"),
            "--ns-to".into(),
            format!("{target}.*"),
            "--yes".into(),
        ]);
        r.assert_code(0);
        let want = state_at(&log, upto);
        let got = restored(&s.standalone_uri, &target);
        let want_nonempty: BTreeMap<_, _> = want
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let got_nonempty: BTreeMap<_, _> = got
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(
            got_nonempty,
            want_nonempty,
            "point {k} ({t}): restored state differs from the writer's log\n{}",
            r.all()
        );
        assert_hash_equal(&s.standalone_uri, &target, &want_nonempty);
        println!(
            "point {k} ({t}): {} documents equal, dbHash equal",
            want_nonempty.values().map(|v| v.len()).sum::<usize>()
        );
    }
}

#[test]
fn a_standalone_and_a_second_selection_are_refused_and_a_lost_position_is_a_recorded_gap() {
    let s = servers();
    let dir = tempdir();
    let loc = dir.path().join("backups");
    let l = loc.to_string_lossy().to_string();
    let r = mongoshift(
        dir.path(),
        [
            "backup",
            "--continuous",
            "--uri",
            &s.standalone_uri,
            "--to",
            &l,
        ],
    );
    r.assert_code(2);
    assert!(
        r.stderr.contains("standalone keeps no oplog"),
        "{}",
        r.stderr
    );

    // A stream whose last slice ends before the oldest oplog entry: the oplog rolled past it.
    let stream = loc.join("pitr/rs0");
    std::fs::create_dir_all(stream.join("slices/0000000001.0000000000")).unwrap();
    let info = serde_json::json!({
        "format": "mongoshift-oplog-stream", "stream": "rs0", "hosts": "x", "replica_set": "rs0",
        "selection": { "include": ["gapdb.*"], "exclude": [] }, "started_at": "2026-01-01T00:00:00Z"
    });
    std::fs::write(stream.join("stream.json"), info.to_string()).unwrap();
    let empty =
        mongoshift::codec::compress_all(mongoshift::codec::Compression::Gzip, 6, &[]).unwrap();
    std::fs::write(
        stream.join("slices/0000000001.0000000000/oplog.bson.gz"),
        &empty,
    )
    .unwrap();
    let m = serde_json::json!({
        "format": "mongoshift-oplog-slice", "format_version": 1, "stream": "rs0",
        "after": {"t": 1, "i": 0}, "until": {"t": 2, "i": 0}, "first": null, "last": null,
        "count": 0, "raw_bytes": 0, "compression": "gzip",
        "object": {"key": "slices/0000000001.0000000000/oplog.bson.gz", "stored_bytes": empty.len(), "sha256": mongoshift::pipeline::sha256_hex(&empty)},
        "written_at": "2026-01-01T00:00:00Z"
    });
    std::fs::write(
        stream.join("slices/0000000001.0000000000/manifest.json"),
        m.to_string(),
    )
    .unwrap();

    let other = mongoshift(
        dir.path(),
        [
            "backup",
            "--continuous",
            "--uri",
            &s.rs_uri,
            "--to",
            &l,
            "--db",
            "otherdb",
        ],
    );
    other.assert_code(2);
    assert!(
        other.stderr.contains("one stream holds one selection"),
        "{}",
        other.stderr
    );

    let gap = mongoshift(
        dir.path(),
        [
            "backup",
            "--continuous",
            "--uri",
            &s.rs_uri,
            "--to",
            &l,
            "--db",
            "gapdb",
        ],
    );
    gap.assert_code(1);
    assert!(
        gap.stderr.contains("Recorded as a gap") && gap.stderr.contains("--after-gap"),
        "{}",
        gap.stderr
    );
    assert!(stream.join("gaps/0000000002.0000000000.json").is_file());

    // --after-gap continues from the oldest entry; the gap stays visible in the listing.
    let mut child = Command::new(env!("CARGO_BIN_EXE_mongoshift"))
        .args([
            "backup",
            "--continuous",
            "--uri",
            &s.rs_uri,
            "--to",
            &l,
            "--db",
            "gapdb",
            "--after-gap",
            "--slice",
            "1s",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(3500));
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert!(status.success());
    let list = mongoshift(
        dir.path(),
        ["backups", "list", "--from", &l, "--output", "json"],
    );
    list.assert_code(0);
    let j = list.json();
    let gaps = j["point_in_time"][0]["gaps"].as_array().unwrap().clone();
    assert_eq!(gaps.len(), 1, "{j}");
    assert_eq!(gaps[0]["after"]["t"], 2);
    let table = mongoshift(dir.path(), ["backups", "list", "--from", &l]);
    assert!(table.stdout.contains("GAP"), "{}", table.stdout);
}

#[test]
fn the_archiver_works_with_auth_and_tls() {
    let s = servers();
    let dir = tempdir();
    let l = dir.path().join("b").to_string_lossy().to_string();
    let db = unique_db("pitrtls");
    let child = Command::new(env!("CARGO_BIN_EXE_mongoshift"))
        .args([
            "backup",
            "--continuous",
            "--uri",
            &s.atlas_uri,
            "--to",
            &l,
            "--db",
            &db,
            "--slice",
            "1s",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    insert(
        &s.atlas_uri,
        &db,
        "c",
        (0..50).map(|i| doc! { "_id": i }).collect(),
    );
    std::thread::sleep(Duration::from_millis(2500));
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    assert_no_secret(&err, "the archiver's log");
    let total: u64 = block_on(async {
        let store = mongoshift::storage::Store::open(
            &mongoshift::storage::Location::parse(&l).unwrap(),
            &mongoshift::storage::S3Settings {
                endpoint: None,
                region: None,
                path_style: false,
            },
        )
        .await
        .unwrap();
        mongoshift::pitr::chain::slices(&store.child("pitr/atlas0"))
            .await
            .unwrap()
            .iter()
            .map(|m| m.count)
            .sum()
    });
    // 50 inserts and the collection's implicit create.
    assert_eq!(total, 51, "{err}");
}

#[test]
fn a_detached_archiver_is_controlled_by_status_and_stop_and_prune_keeps_what_bases_need() {
    let s = servers();
    let dir = tempdir();
    let l = dir.path().join("b").to_string_lossy().to_string();
    let db = unique_db("pitrctl");
    insert(
        &s.rs_uri,
        &db,
        "c",
        (0..20).map(|i| doc! { "_id": i }).collect(),
    );
    let started = mongoshift(
        dir.path(),
        [
            "backup",
            "--continuous",
            "--detach",
            "--uri",
            &s.rs_uri,
            "--to",
            &l,
            "--db",
            &db,
            "--slice",
            "1s",
            "--output",
            "json",
        ],
    );
    started.assert_code(0);
    let pid = started.json()["pid"].as_u64().unwrap();
    let status = mongoshift(
        dir.path(),
        [
            "backups",
            "continuous",
            "status",
            "--from",
            &l,
            "--output",
            "json",
        ],
    );
    status.assert_code(0);
    let j = status.json();
    assert_eq!(j["streams"][0]["state"], "running", "{j}");
    assert_eq!(j["streams"][0]["pid"].as_u64(), Some(pid), "{j}");
    // A second archiver on the same stream is refused while this one runs.
    let twice = mongoshift(
        dir.path(),
        [
            "backup",
            "--continuous",
            "--uri",
            &s.rs_uri,
            "--to",
            &l,
            "--db",
            &db,
        ],
    );
    twice.assert_code(2);
    assert!(twice.stderr.contains("already runs"), "{}", twice.stderr);

    insert(
        &s.rs_uri,
        &db,
        "c",
        (20..40).map(|i| doc! { "_id": i }).collect(),
    );
    std::thread::sleep(Duration::from_millis(2500));
    mongoshift(
        dir.path(),
        [
            "backup", "--oplog", "--uri", &s.rs_uri, "--to", &l, "--db", &db,
        ],
    )
    .assert_code(0);
    insert(
        &s.rs_uri,
        &db,
        "c",
        (40..60).map(|i| doc! { "_id": i }).collect(),
    );
    std::thread::sleep(Duration::from_millis(2500));
    let table = mongoshift(
        dir.path(),
        ["backups", "continuous", "status", "--from", &l],
    );
    assert!(table.stdout.contains("running (pid"), "{}", table.stdout);

    let stop = mongoshift(dir.path(), ["backups", "continuous", "stop", "--from", &l]);
    stop.assert_code(0);
    assert!(stop.stdout.contains("stopped"), "{}", stop.all());
    let j = mongoshift(
        dir.path(),
        [
            "backups",
            "continuous",
            "status",
            "--from",
            &l,
            "--output",
            "json",
        ],
    )
    .json();
    assert_eq!(j["streams"][0]["state"], "stopped", "{j}");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
    );

    // Prune: the slices before the only base's end go, those its window needs stay.
    let before = block_on(async {
        let store = mongoshift::storage::Store::open(
            &mongoshift::storage::Location::parse(&l).unwrap(),
            &mongoshift::storage::S3Settings {
                endpoint: None,
                region: None,
                path_style: false,
            },
        )
        .await
        .unwrap();
        mongoshift::pitr::chain::load(&store).await.unwrap()
    });
    let chain = &before[0];
    let base_end = chain.bases[0].end;
    let needed = chain.slices.iter().filter(|m| m.until > base_end).count();
    let unneeded = chain.slices.len() - needed;
    assert!(unneeded > 0 && needed > 0, "{unneeded} {needed}");
    let window_to = chain.windows[0].to;
    mongoshift(
        dir.path(),
        [
            "backups",
            "prune",
            "--from",
            &l,
            "--pitr-days",
            "1",
            "--yes",
        ],
    )
    .assert_code(0);
    let j = mongoshift(
        dir.path(),
        ["backups", "list", "--from", &l, "--output", "json"],
    )
    .json();
    assert_eq!(j["backups"].as_array().unwrap().len(), 1, "{j}");
    let w = &j["point_in_time"][0]["windows"][0];
    assert_eq!(w["to"]["t"].as_u64().unwrap() as u32, window_to.t, "{j}");
    let after = std::fs::read_dir(dir.path().join("b/pitr/rs0/slices"))
        .unwrap()
        .count();
    assert_eq!(
        after, needed,
        "prune should leave exactly the slices the base needs"
    );
    let dry = mongoshift(
        dir.path(),
        [
            "restore",
            "--from",
            &l,
            "--to-time",
            &format!("{}:{}", window_to.t, window_to.i),
            "--uri",
            &s.standalone_uri,
            "--dry-run",
        ],
    );
    dry.assert_code(0);
}

/// #26 point 5: a base backup and its slices restored with stock mongorestore 100.8.0
/// (`--oplogReplay` for the base, then the slices gunzipped in name order into one
/// oplog.bson replayed with `--oplogLimit`) equal `restore --to-time` at the same optime.
#[test]
fn stock_mongorestore_restores_a_base_and_its_slices_like_restore_to_time() {
    let s = servers();
    let dir = tempdir();
    let l = dir.path().join("b").to_string_lossy().to_string();
    let db = unique_db("pitrstock");
    let client = block_on(client(&s.rs_uri));
    insert(
        &s.rs_uri,
        &db,
        "c",
        (0..50i64).map(|i| doc! { "_id": i, "n": 0i64 }).collect(),
    );
    let arch = Command::new(env!("CARGO_BIN_EXE_mongoshift"))
        .args([
            "backup",
            "--continuous",
            "--uri",
            &s.rs_uri,
            "--to",
            &l,
            "--db",
            &db,
            "--slice",
            "1s",
            "--compress",
            "gzip",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    mongoshift(
        dir.path(),
        [
            "backup",
            "--oplog",
            "--uri",
            &s.rs_uri,
            "--to",
            &l,
            "--db",
            &db,
            "--compress",
            "gzip",
        ],
    )
    .assert_code(0);
    let t = block_on(async {
        let c = client.database(&db).collection::<Document>("c");
        let mut session = client.start_session().await.unwrap();
        let mut last = None;
        for k in 0..300i64 {
            match k % 3 {
                0 => {
                    c.insert_one(doc! { "_id": 1000 + k, "n": k })
                        .session(&mut session)
                        .await
                        .unwrap();
                }
                1 => {
                    c.update_one(doc! { "_id": k % 50 }, doc! { "$inc": { "n": 1i64 } })
                        .session(&mut session)
                        .await
                        .unwrap();
                }
                _ => {
                    c.delete_one(doc! { "_id": 1000 + k - 2 })
                        .session(&mut session)
                        .await
                        .unwrap();
                }
            }
            if k == 240 {
                last = session.operation_time();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        last.unwrap()
    });
    std::thread::sleep(Duration::from_millis(2500));
    unsafe {
        libc::kill(arch.id() as i32, libc::SIGTERM);
    }
    assert!(arch.wait_with_output().unwrap().status.success());

    let ours = format!("{db}_ours");
    mongoshift(
        dir.path(),
        [
            "restore",
            "--from",
            &l,
            "--to-time",
            &ts_arg(t),
            "--uri",
            &s.standalone_uri,
            "--ns-from",
            &format!("{db}.*"),
            "--ns-to",
            &format!("{ours}.*"),
            "--yes",
        ],
    )
    .assert_code(0);

    // The stock way: the base with its oplog, then the slices after the base's end.
    let base_id = std::fs::read_dir(dir.path().join("b"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .find(|n| n != "pitr")
        .unwrap();
    let base_dir = dir.path().join("b").join(&base_id);
    run_stock(
        "mongorestore",
        &[
            "--uri",
            &s.standalone_uri,
            "--gzip",
            "--oplogReplay",
            "--dir",
            &base_dir.to_string_lossy(),
        ],
    );
    let slices_dir = dir.path().join("b/pitr/rs0/slices");
    let mut names: Vec<String> = std::fs::read_dir(&slices_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    let replay = dir.path().join("replay");
    std::fs::create_dir_all(&replay).unwrap();
    let mut oplog = Vec::new();
    // Only the slices that reach past the base's oplog end (`until` in their manifest).
    let base_manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(base_dir.join("manifest.json")).unwrap()).unwrap();
    let end = (
        base_manifest["oplog"]["end"]["t"].as_u64().unwrap(),
        base_manifest["oplog"]["end"]["i"].as_u64().unwrap(),
    );
    for n in names {
        let m: serde_json::Value = serde_json::from_slice(
            &std::fs::read(slices_dir.join(&n).join("manifest.json")).unwrap(),
        )
        .unwrap();
        if (
            m["until"]["t"].as_u64().unwrap(),
            m["until"]["i"].as_u64().unwrap(),
        ) <= end
        {
            continue;
        }
        let gz = std::fs::read(slices_dir.join(&n).join("oplog.bson.gz")).unwrap();
        oplog.extend(
            mongoshift::codec::decompress_all(mongoshift::codec::Compression::Gzip, &gz).unwrap(),
        );
    }
    std::fs::write(replay.join("oplog.bson"), oplog).unwrap();
    let limit = format!("{}:{}", t.time, t.increment + 1);
    run_stock(
        "mongorestore",
        &[
            "--uri",
            &s.standalone_uri,
            "--oplogReplay",
            "--oplogLimit",
            &limit,
            "--dir",
            &replay.to_string_lossy(),
        ],
    );

    let stock = hashes(&s.standalone_uri, &db);
    let mine = hashes(&s.standalone_uri, &ours);
    assert!(!mine.is_empty());
    assert_eq!(
        stock, mine,
        "stock mongorestore and restore --to-time differ"
    );
}

/// `--ns-include` archives one collection's writes, its database's commands, and a
/// transaction whole when one of its operations is selected (never one that is not).
#[test]
fn ns_include_archives_the_selection_and_whole_transactions_that_touch_it() {
    let s = servers();
    let dir = tempdir();
    let l = dir.path().join("b").to_string_lossy().to_string();
    let db = unique_db("pitrsel");
    insert(&s.rs_uri, &db, "a", vec![doc! { "_id": 0 }]);
    insert(&s.rs_uri, &db, "b", vec![doc! { "_id": 0 }]);
    let ns = format!("{db}.a");
    let arch = Command::new(env!("CARGO_BIN_EXE_mongoshift"))
        .args([
            "backup",
            "--continuous",
            "--uri",
            &s.rs_uri,
            "--to",
            &l,
            "--ns-include",
            &ns,
            "--slice",
            "1s",
            "--compress",
            "none",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    block_on(async {
        let c = client(&s.rs_uri).await;
        let d = c.database(&db);
        d.collection::<Document>("a")
            .insert_one(doc! { "_id": 1 })
            .await
            .unwrap();
        d.collection::<Document>("b")
            .insert_one(doc! { "_id": 1 })
            .await
            .unwrap();
        let mut session = c.start_session().await.unwrap();
        for (id, colls) in [(2, vec!["a", "b"]), (3, vec!["b"])] {
            session.start_transaction().await.unwrap();
            for coll in colls {
                d.collection::<Document>(coll)
                    .insert_one(doc! { "_id": id })
                    .session(&mut session)
                    .await
                    .unwrap();
            }
            session.commit_transaction().await.unwrap();
        }
    });
    std::thread::sleep(Duration::from_millis(2500));
    unsafe {
        libc::kill(arch.id() as i32, libc::SIGTERM);
    }
    assert!(arch.wait_with_output().unwrap().status.success());
    let entries: Vec<Document> = block_on(async {
        let store = mongoshift::storage::Store::open(
            &mongoshift::storage::Location::parse(&l).unwrap(),
            &mongoshift::storage::S3Settings {
                endpoint: None,
                region: None,
                path_style: false,
            },
        )
        .await
        .unwrap()
        .child("pitr/rs0");
        let mut out = Vec::new();
        for m in mongoshift::pitr::chain::slices(&store).await.unwrap() {
            let bytes = store.get(&m.object.key).await.unwrap();
            mongoshift::dump::bson_stream::walk(&bytes[..], "slice", |d| {
                out.push(Document::try_from(d).unwrap());
                Ok(())
            })
            .unwrap();
        }
        out
    });
    let crud: Vec<String> = entries
        .iter()
        .filter(|e| e.get_str("op") == Ok("i"))
        .map(|e| e.get_str("ns").unwrap().to_string())
        .collect();
    assert_eq!(crud, vec![ns.clone()], "{entries:?}");
    let txns: Vec<&Document> = entries
        .iter()
        .filter(|e| {
            e.get_document("o")
                .is_ok_and(|o| o.contains_key("applyOps"))
        })
        .collect();
    assert_eq!(
        txns.len(),
        1,
        "only the transaction touching {ns} is kept: {entries:?}"
    );
    assert_eq!(
        txns[0]
            .get_document("o")
            .unwrap()
            .get_array("applyOps")
            .unwrap()
            .len(),
        2,
        "kept whole"
    );
}
