//! The tail's parallel apply against the real servers (the replica set followed into the
//! Atlas-like server): many writers hammering few documents (each document's changes stay
//! in order, also when one `_id` comes back as another numeric type), DDL between writes
//! (a barrier), multi-document transactions (a barrier, applied in order), and `kill -9`
//! while applying, then `--resume` under a live writer, ending byte-identical.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::follow::Follow;
use common::{block_on, client, hashes, schema_of, servers, tempdir};
use mongodb::bson::{doc, Bson, Decimal128, Document};
use mongodb::Client;

/// Both sides hold the same collections with the same options and indexes, the same
/// `dbHash`, and every document byte for byte in `_id` order.
#[track_caller]
fn assert_identical(src: &str, dst: &str) {
    let (rs, atlas) = (&servers().rs_uri, &servers().atlas_uri);
    let want = hashes(rs, src);
    assert!(!want.is_empty(), "the source database {src} is empty");
    assert_eq!(want, hashes(atlas, dst), "dbHash per collection of {src}");
    assert_eq!(
        schema_of(rs, src),
        schema_of(atlas, dst),
        "options and indexes"
    );
    for coll in want.keys() {
        assert_eq!(
            common::raw_docs(rs, src, coll, false),
            common::raw_docs(atlas, dst, coll, false),
            "raw documents of {src}.{coll}"
        );
    }
}

fn coll(c: &Client, db: &str, name: &str) -> mongodb::Collection<Document> {
    c.database(db).collection::<Document>(name)
}

#[test]
fn each_documents_changes_stay_in_order_under_many_concurrent_writers() {
    let rs = &servers().rs_uri;
    let (src, dst) = (common::unique_db("fpsrc"), common::unique_db("fpdst"));
    block_on(async {
        let c = client(rs).await;
        let hot = coll(&c, &src, "hot");
        hot.insert_many((0..8).map(|i| doc! { "_id": i, "n": 0, "log": [] }))
            .await
            .unwrap();
        coll(&c, &src, "other")
            .insert_one(doc! { "_id": "x" })
            .await
            .unwrap();
    });
    let dir = tempdir();
    let mut f = Follow::start(dir.path(), &[(&src, &dst)], &[]);
    f.wait_following();
    block_on(async {
        let c = client(rs).await;
        let hot = coll(&c, &src, "hot");
        let other = coll(&c, &src, "other");
        let writers = (0..6).map(|w| {
            let (hot, other) = (hot.clone(), other.clone());
            async move {
                for i in 0..500 {
                    let k = (i * 7 + w) % 8;
                    hot.update_one(
                        doc! { "_id": k },
                        doc! { "$inc": { "n": 1 }, "$push": { "log": format!("w{w}-{i}") } },
                    )
                    .await
                    .unwrap();
                    if i % 3 == 0 {
                        other
                            .insert_one(doc! { "_id": format!("w{w}-{i}"), "v": i })
                            .await
                            .unwrap();
                    }
                    if w == 0 && i % 25 == 0 {
                        // One document leaves and comes back as another numeric type of
                        // the same _id: the server holds these equal, so must the lanes.
                        let id = match (i / 25) % 4 {
                            0 => Bson::Int32(7),
                            1 => Bson::Int64(7),
                            2 => Bson::Double(7.0),
                            _ => Bson::Decimal128("7".parse::<Decimal128>().unwrap()),
                        };
                        hot.delete_one(doc! { "_id": 7 }).await.unwrap();
                        hot.insert_one(doc! { "_id": id, "n": i, "log": ["back"] })
                            .await
                            .unwrap();
                        other
                            .delete_one(doc! { "_id": format!("w{w}-{}", i - 3) })
                            .await
                            .unwrap();
                    }
                }
            }
        });
        futures::future::join_all(writers).await;
    });
    f.wait_caught_up();
    assert_identical(&src, &dst);
    f.stop();
}

#[test]
fn ddl_between_writes_is_a_barrier() {
    let rs = &servers().rs_uri;
    let (src, dst) = (common::unique_db("fdsrc"), common::unique_db("fddst"));
    block_on(async {
        let c = client(rs).await;
        coll(&c, &src, "a")
            .insert_one(doc! { "_id": 0 })
            .await
            .unwrap();
    });
    let dir = tempdir();
    let mut f = Follow::start(dir.path(), &[(&src, &dst)], &[]);
    f.wait_following();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        // Stops the other writer also when this one fails.
        let _stop = StopOnDrop(&done);
        // Independent writes to another collection all along, so that lanes are busy
        // when each DDL event arrives.
        s.spawn(|| {
            block_on(async {
                let c = client(rs).await;
                let busy = coll(&c, &src, "busy");
                let mut i = 0;
                while !done.load(Ordering::Relaxed) {
                    busy.insert_one(doc! { "_id": i, "v": 0 }).await.unwrap();
                    busy.update_one(doc! { "_id": i / 2 }, doc! { "$inc": { "v": 1 } })
                        .await
                        .unwrap();
                    i += 1;
                }
            })
        });
        block_on(async {
            let c = client(rs).await;
            let d = c.database(&src);
            for round in 0..6i32 {
                let a = coll(&c, &src, "a");
                // Writes, then a rename over an existing collection, then writes to the
                // new `a` with the same _ids: applied across the rename out of order,
                // they would land in the wrong collection.
                a.insert_many(
                    (1..150).map(|i| doc! { "_id": 1000 * (round + 1) + i, "round": round }),
                )
                .await
                .unwrap();
                a.update_many(doc! {}, doc! { "$set": { "seen": round } })
                    .await
                    .unwrap();
                c.database("admin").run_command(doc! {
                    "renameCollection": format!("{src}.a"), "to": format!("{src}.b"), "dropTarget": true
                })
                .await
                .unwrap();
                a.insert_many((0..100).map(|i| doc! { "_id": i, "after": round }))
                    .await
                    .unwrap();
                let b = coll(&c, &src, "b");
                b.delete_many(doc! { "_id": { "$mod": [3, 0] } })
                    .await
                    .unwrap();
                b.create_index(
                    mongodb::IndexModel::builder()
                        .keys(doc! { format!("k{}", round % 3): 1 })
                        .build(),
                )
                .await
                .unwrap();
                // Dropped and created again with other options between writes.
                let v = coll(&c, &src, "v");
                v.drop().await.unwrap();
                d.create_collection("v")
                    .validator(doc! { "round": { "$gte": round } })
                    .await
                    .unwrap();
                v.insert_many((0..50).map(|i| doc! { "_id": i, "round": round }))
                    .await
                    .unwrap();
                if round % 4 == 3 {
                    b.drop().await.unwrap();
                }
            }
        });
    });
    f.wait_caught_up();
    assert_identical(&src, &dst);
    f.stop();
}

/// Sets its flag when dropped: a writer thread told to stop even when the test panics.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Move `amount` from one account to another in a transaction, retried on a transient
/// error (a write conflict with the concurrent plain writer).
async fn transfer(c: &Client, db: &str, from: i32, to: i32, n: i32) {
    let accounts = coll(c, db, "accounts");
    let ledger = coll(c, db, "ledger");
    for _ in 0..50 {
        let mut s = c.start_session().await.unwrap();
        s.start_transaction().await.unwrap();
        let r = async {
            accounts
                .update_one(doc! { "_id": from }, doc! { "$inc": { "balance": -1 } })
                .session(&mut s)
                .await?;
            accounts
                .update_one(doc! { "_id": to }, doc! { "$inc": { "balance": 1 } })
                .session(&mut s)
                .await?;
            // A ledger entry written and an older one removed in the same transaction.
            ledger
                .insert_one(doc! { "_id": n, "from": from, "to": to })
                .session(&mut s)
                .await?;
            ledger
                .delete_one(doc! { "_id": n - 5 })
                .session(&mut s)
                .await?;
            s.commit_transaction().await
        }
        .await;
        match r {
            Ok(()) => return,
            Err(_) => {
                let _ = s.abort_transaction().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    panic!("transfer {n} kept failing");
}

#[test]
fn transactions_are_barriers_applied_in_order() {
    let rs = &servers().rs_uri;
    let (src, dst) = (common::unique_db("ftsrc"), common::unique_db("ftdst"));
    block_on(async {
        let c = client(rs).await;
        coll(&c, &src, "accounts")
            .insert_many((0..10).map(|i| doc! { "_id": i, "balance": 100, "touched": 0 }))
            .await
            .unwrap();
        coll(&c, &src, "ledger")
            .insert_one(doc! { "_id": -1 })
            .await
            .unwrap();
    });
    let dir = tempdir();
    let mut f = Follow::start(dir.path(), &[(&src, &dst)], &[]);
    f.wait_following();
    block_on(async {
        let c = client(rs).await;
        let plain = {
            let c = c.clone();
            let src = src.clone();
            async move {
                let accounts = coll(&c, &src, "accounts");
                for i in 0..600 {
                    accounts
                        .update_one(doc! { "_id": i % 10 }, doc! { "$inc": { "touched": 1 } })
                        .await
                        .unwrap();
                }
            }
        };
        let txns = async {
            for n in 0..200 {
                transfer(&c, &src, n % 10, (n * 3 + 1) % 10, n).await;
            }
        };
        futures::future::join(plain, txns).await;
    });
    f.wait_caught_up();
    assert_identical(&src, &dst);
    let total: i32 = block_on(async {
        let c = client(&servers().atlas_uri).await;
        let mut cur = coll(&c, &dst, "accounts").find(doc! {}).await.unwrap();
        let mut sum = 0;
        while cur.advance().await.unwrap() {
            sum += cur
                .deserialize_current()
                .unwrap()
                .get_i32("balance")
                .unwrap();
        }
        sum
    });
    assert_eq!(total, 1000, "every transfer arrived whole");
    f.stop();
}

#[test]
fn kill_9_while_applying_then_resume_under_a_live_writer_ends_byte_identical() {
    let rs = &servers().rs_uri;
    let (src, dst) = (common::unique_db("fksrc"), common::unique_db("fkdst"));
    block_on(async {
        let c = client(rs).await;
        coll(&c, &src, "docs")
            .insert_many((0..2000).map(|i| doc! { "_id": i, "n": 0, "pad": "x".repeat(200) }))
            .await
            .unwrap();
    });
    let dir = tempdir();
    let mut f = Follow::start(dir.path(), &[(&src, &dst)], &[]);
    f.wait_following();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        // A writer at full speed: updates to few documents, inserts that are never touched
        // again (a skipped one would stay missing), deletes, and now and then an index.
        let stop_writer = StopOnDrop(&done);
        let writer = s.spawn(|| {
            block_on(async {
                let c = client(rs).await;
                let docs = coll(&c, &src, "docs");
                let fresh = coll(&c, &src, "fresh");
                let writers = (0..4).map(|w| {
                    let (docs, fresh, done) = (docs.clone(), fresh.clone(), &done);
                    async move {
                        let mut i = 0i64;
                        while !done.load(Ordering::Relaxed) {
                            docs.update_one(
                                doc! { "_id": (i * 13 + w) % 40 },
                                doc! { "$inc": { "n": 1 }, "$set": { "by": w } },
                            )
                            .await
                            .unwrap();
                            fresh
                                .insert_one(doc! { "_id": w * 1_000_000 + i, "i": i })
                                .await
                                .unwrap();
                            if i % 5 == 0 {
                                docs.delete_one(doc! { "_id": 100 + w * 400 + i / 5 })
                                    .await
                                    .unwrap();
                            }
                            if w == 0 && i % 400 == 0 {
                                let name = format!("n_{}", (i / 400) % 2);
                                docs.create_index(
                                    mongodb::IndexModel::builder()
                                        .keys(doc! { "n": 1 })
                                        .options(
                                            mongodb::options::IndexOptions::builder()
                                                .name(name.clone())
                                                .build(),
                                        )
                                        .build(),
                                )
                                .await
                                .ok();
                                let other = format!("n_{}", 1 - (i / 400) % 2);
                                docs.drop_index(other).await.ok();
                            }
                            i += 1;
                        }
                    }
                });
                futures::future::join_all(writers).await;
            })
        });
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(1500));
            f.kill_9();
            f.spawn(&["--resume"]);
            f.wait_following();
        }
        std::thread::sleep(Duration::from_secs(2));
        drop(stop_writer);
        writer.join().unwrap();
    });
    let err = f.stderr();
    assert!(!err.contains("E11000"), "no duplicate-key noise: {err}");
    f.wait_caught_up();
    assert_identical(&src, &dst);
    f.stop();
}
