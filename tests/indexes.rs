//! `indexes` against the real replica set.

mod common;

use std::path::{Path, PathBuf};

use common::{block_on, client, mongoshift, servers, tempdir};
use mongodb::bson::{doc, Document};

/// The shipped predixi spec, pointed at a database of this test's own.
fn predixi_spec(dir: &Path, db: &str) -> PathBuf {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("index-specs/predixi.yaml"),
    )
    .unwrap();
    let p = dir.join("predixi.yaml");
    std::fs::write(
        &p,
        text.replace("database: predixi", &format!("database: {db}")),
    )
    .unwrap();
    p
}

fn uri() -> String {
    servers().rs_uri.clone()
}

fn names(db: &str, coll: &str) -> Vec<String> {
    block_on(async {
        let mut n = client(&uri())
            .await
            .database(db)
            .collection::<Document>(coll)
            .list_index_names()
            .await
            .unwrap_or_default();
        n.sort();
        n
    })
}

#[test]
fn shipped_specs_lint_clean() {
    let dir = tempdir();
    let run = mongoshift(
        dir.path(),
        [
            "indexes",
            "lint",
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("index-specs")
                .to_str()
                .unwrap(),
        ],
    );
    run.assert_code(0);
    // The templates live outside the applied folder, and still lint clean.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/index-specs");
    mongoshift(dir.path(), ["indexes", "lint", examples.to_str().unwrap()]).assert_code(0);
}

/// `indexes apply index-specs/` (the README's command) touches predixi only: no template
/// database (issue #27: `social.yaml` made the CI gate fail and apply create `predixi_social`).
#[test]
fn shipped_specs_folder_plans_predixi_only() {
    let dir = tempdir();
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("index-specs");
    let run = mongoshift(
        dir.path(),
        [
            "--output",
            "json",
            "indexes",
            "plan",
            folder.to_str().unwrap(),
            "--uri",
            &uri(),
        ],
    );
    run.assert_code(0);
    let steps = run.json()["steps"].as_array().unwrap().clone();
    assert!(!steps.is_empty());
    for s in &steps {
        assert_eq!(s["database"], "predixi", "{s}");
    }
}

#[test]
fn export_as_json_and_of_a_missing_database() {
    let dir = tempdir();
    let db = common::unique_db("expj");
    common::insert(&uri(), &db, "things", vec![doc! { "a": 1 }]);
    block_on(async {
        client(&uri())
            .await
            .database(&db)
            .run_command(doc! { "createIndexes": "things", "indexes": [ { "key": { "a": 1 }, "name": "a_1" } ] })
            .await
            .unwrap();
    });
    let run = mongoshift(
        dir.path(),
        [
            "--output",
            "json",
            "indexes",
            "export",
            "--uri",
            &uri(),
            "--db",
            &db,
        ],
    );
    run.assert_code(0);
    let v = run.json();
    assert_eq!(v["database"], db.as_str());
    assert_eq!(v["collections"]["things"][0]["keys"]["a"], 1, "{v}");
    // With --out the file is the YAML spec; stdout says where it went, as JSON.
    let out = dir.path().join("spec.yaml");
    let run = mongoshift(
        dir.path(),
        [
            "--output",
            "json",
            "indexes",
            "export",
            "--uri",
            &uri(),
            "--db",
            &db,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    run.assert_code(0);
    assert_eq!(run.json()["out"], out.to_str().unwrap());
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains(&format!("database: {db}")));
    // A database that does not exist: exit 2, naming what does exist, nothing written.
    let missing = dir.path().join("missing.yaml");
    let run = mongoshift(
        dir.path(),
        [
            "indexes",
            "export",
            "--uri",
            &uri(),
            "--db",
            "nonexistentdb",
            "--out",
            missing.to_str().unwrap(),
        ],
    );
    run.assert_code(2);
    assert!(
        run.stderr.contains("nonexistentdb does not exist"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&db), "{}", run.stderr);
    assert!(!missing.exists());
}

#[test]
fn apply_on_empty_database_then_check_passes_and_reapply_is_a_noop() {
    let dir = tempdir();
    let db = common::unique_db("idx");
    let spec = predixi_spec(dir.path(), &db);
    let s = spec.to_str().unwrap();
    mongoshift(dir.path(), ["indexes", "check", s, "--uri", &uri()]).assert_code(3);
    let run = mongoshift(
        dir.path(),
        ["indexes", "apply", s, "--uri", &uri(), "--yes"],
    );
    run.assert_code(0);
    assert_eq!(
        names(&db, "users"),
        vec!["_id_", "created_at_-1", "email_1", "google_id_1"]
    );
    assert!(names(&db, "sessions").contains(&"last_seen_1".to_string()));
    mongoshift(dir.path(), ["indexes", "check", s, "--uri", &uri()]).assert_code(0);
    let again = mongoshift(
        dir.path(),
        ["indexes", "apply", s, "--uri", &uri(), "--yes"],
    );
    again.assert_code(0);
    assert!(again.stdout.contains("nothing to do"), "{}", again.stdout);
}

#[test]
fn drift_is_named_apply_restores_managed_and_prune_drops_unmanaged() {
    let dir = tempdir();
    let db = common::unique_db("drift");
    let spec = predixi_spec(dir.path(), &db);
    let s = spec.to_str().unwrap();
    mongoshift(
        dir.path(),
        ["indexes", "apply", s, "--uri", &uri(), "--yes"],
    )
    .assert_code(0);
    block_on(async {
        let c = client(&uri()).await;
        let users = c.database(&db).collection::<Document>("users");
        users.drop_index("email_1").await.unwrap();
        users
            .create_index(
                mongodb::IndexModel::builder()
                    .keys(doc! { "nickname": 1 })
                    .build(),
            )
            .await
            .unwrap();
    });
    let check = mongoshift(
        dir.path(),
        ["indexes", "check", s, "--uri", &uri(), "--output", "json"],
    );
    check.assert_code(3);
    assert!(
        check.stderr.contains("email_1") && check.stderr.contains("nickname_1"),
        "{}",
        check.stderr
    );
    let v = check.json();
    assert_eq!(v["drift"], true);
    mongoshift(
        dir.path(),
        ["indexes", "apply", s, "--uri", &uri(), "--yes"],
    )
    .assert_code(0);
    let n = names(&db, "users");
    assert!(
        n.contains(&"email_1".to_string()) && n.contains(&"nickname_1".to_string()),
        "{n:?}"
    );
    // Without a terminal and without --yes, apply refuses.
    mongoshift(
        dir.path(),
        ["indexes", "apply", s, "--uri", &uri(), "--prune"],
    )
    .assert_code(2);
    mongoshift(
        dir.path(),
        ["indexes", "apply", s, "--uri", &uri(), "--prune", "--yes"],
    )
    .assert_code(0);
    assert!(!names(&db, "users").contains(&"nickname_1".to_string()));
    mongoshift(dir.path(), ["indexes", "check", s, "--uri", &uri()]).assert_code(0);
}

/// The commands the replica set's oplog recorded for `db` since `since`.
fn commands_since(db: &str, since: mongodb::bson::Timestamp) -> Vec<String> {
    block_on(async {
        let c = client(&uri()).await;
        let mut cur = c
            .database("local")
            .collection::<Document>("oplog.rs")
            .find(doc! { "ts": { "$gt": since }, "ns": format!("{db}.$cmd") })
            .await
            .unwrap();
        let mut out = Vec::new();
        while cur.advance().await.unwrap() {
            let d: Document = cur.deserialize_current().unwrap();
            out.push(d.get_document("o").unwrap().keys().next().unwrap().clone());
        }
        out
    })
}

#[test]
fn ttl_and_hidden_changes_are_collmod_not_rebuilds() {
    let dir = tempdir();
    let db = common::unique_db("mod");
    let spec = predixi_spec(dir.path(), &db);
    let s = spec.to_str().unwrap();
    mongoshift(
        dir.path(),
        ["indexes", "apply", s, "--uri", &uri(), "--yes"],
    )
    .assert_code(0);
    let before = block_on(async {
        mongoshift::mongo::oplog::latest(&client(&uri()).await)
            .await
            .unwrap()
    });
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("expire_after: 30d", "expire_after: 7d")
        .replace(
            "    - keys: { email: 1 }\n",
            "    - keys: { email: 1 }\n      hidden: true\n",
        );
    std::fs::write(&spec, text).unwrap();
    let plan = mongoshift(
        dir.path(),
        ["indexes", "plan", s, "--uri", &uri(), "--output", "json"],
    );
    plan.assert_code(0);
    let steps = plan.json()["steps"].as_array().unwrap().clone();
    let modifies: Vec<&str> = steps
        .iter()
        .filter(|s| s["action"] == "modify")
        .map(|s| s["index"].as_str().unwrap())
        .collect();
    assert_eq!(modifies, vec!["last_seen_1", "email_1"], "{steps:?}");
    mongoshift(
        dir.path(),
        ["indexes", "apply", s, "--uri", &uri(), "--yes"],
    )
    .assert_code(0);
    // The oplog shows what was done: collMod only, no drop or build.
    let cmds = commands_since(&db, before);
    assert_eq!(
        cmds.iter().filter(|c| *c == "collMod").count(),
        2,
        "{cmds:?}"
    );
    assert!(
        !cmds.iter().any(|c| matches!(
            c.as_str(),
            "dropIndexes" | "createIndexes" | "startIndexBuild"
        )),
        "{cmds:?}"
    );
    block_on(async {
        let c = client(&uri()).await;
        let idx: Vec<Document> = mongoshift::mongo::namespaces::indexes(&c, &db, "sessions")
            .await
            .unwrap();
        let ttl = idx
            .iter()
            .find(|i| i.get_str("name").unwrap() == "last_seen_1")
            .unwrap();
        assert_eq!(
            mongoshift::mongo::health::number(ttl.get("expireAfterSeconds")),
            Some(7.0 * 86400.0)
        );
    });
    mongoshift(dir.path(), ["indexes", "check", s, "--uri", &uri()]).assert_code(0);
}

#[test]
fn unique_build_over_duplicates_fails_naming_the_value() {
    let dir = tempdir();
    let db = common::unique_db("dup");
    block_on(async {
        let c = client(&uri()).await;
        c.database(&db)
            .collection::<Document>("users")
            .insert_many(vec![
                doc! { "google_id": "g-dup-42" },
                doc! { "google_id": "g-dup-42" },
            ])
            .await
            .unwrap();
    });
    let spec = predixi_spec(dir.path(), &db);
    let run = mongoshift(
        dir.path(),
        [
            "indexes",
            "apply",
            spec.to_str().unwrap(),
            "--uri",
            &uri(),
            "--yes",
        ],
    );
    run.assert_code(1);
    assert!(
        run.stderr.contains(&format!("{db}.users")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("google_id_1"), "{}", run.stderr);
    assert!(run.stderr.contains("g-dup-42"), "{}", run.stderr);
    assert!(
        run.stderr.contains("already done") || run.stderr.contains("nothing was changed"),
        "{}",
        run.stderr
    );
}

#[test]
fn export_of_every_index_kind_rechecks_clean() {
    let dir = tempdir();
    let db = common::unique_db("exp");
    block_on(async {
        let c = client(&uri()).await;
        let d = c.database(&db);
        d.collection::<Document>("things")
            .insert_one(doc! { "a": 1 })
            .await
            .unwrap();
        d.create_collection("ci")
            .collation(
                mongodb::options::Collation::builder()
                    .locale("en")
                    .strength(mongodb::options::CollationStrength::Secondary)
                    .build(),
            )
            .await
            .unwrap();
        let specs = doc! { "createIndexes": "things", "indexes": [
            { "key": { "a": 1, "b": -1 }, "name": "a_1_b_-1" },
            { "key": { "u": 1 }, "name": "u_1", "unique": true },
            { "key": { "h": "hashed" }, "name": "h_hashed" },
            { "key": { "title": "text", "body": "text" }, "name": "text_idx", "weights": { "title": 10 } },
            { "key": { "loc": "2dsphere" }, "name": "loc_2dsphere" },
            { "key": { "$**": 1 }, "name": "wild", "wildcardProjection": { "profile": 1 } },
            { "key": { "s": 1 }, "name": "s_1", "sparse": true, "hidden": true },
            { "key": { "p": 1 }, "name": "p_1", "partialFilterExpression": { "status": "pending" } },
            { "key": { "t": 1 }, "name": "t_1", "expireAfterSeconds": 3600 },
        ]};
        d.run_command(specs).await.unwrap();
        d.run_command(doc! { "createIndexes": "ci", "indexes": [ { "key": { "name": 1 }, "name": "name_1" } ] }).await.unwrap();
    });
    let out = dir.path().join("exported.yaml");
    mongoshift(
        dir.path(),
        [
            "indexes",
            "export",
            "--uri",
            &uri(),
            "--db",
            &db,
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .assert_code(0);
    mongoshift(dir.path(), ["indexes", "lint", out.to_str().unwrap()]).assert_code(0);
    let check = mongoshift(
        dir.path(),
        ["indexes", "check", out.to_str().unwrap(), "--uri", &uri()],
    );
    check.assert_code(0);
}

#[test]
fn malformed_specs_give_file_line_column() {
    let dir = tempdir();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "database: d\ncollections:\n  c:\n    - keys: { a: 1 }\n      uniqe: true\n",
    )
    .unwrap();
    let run = mongoshift(dir.path(), ["indexes", "lint", bad.to_str().unwrap()]);
    run.assert_code(2);
    assert!(
        run.stdout
            .contains("bad.yaml:5:7: unknown index field `uniqe`"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("1 problem in the index specs"),
        "{}",
        run.stderr
    );
    std::fs::write(&bad, "database: d\ncollections:\n  c: [ { keys: { a: 1 }\n").unwrap();
    let run = mongoshift(dir.path(), ["indexes", "lint", bad.to_str().unwrap()]);
    run.assert_code(2);
    assert!(run.stderr.contains("bad.yaml:"), "{}", run.stderr);
    // plan refuses to talk to the server with a broken spec.
    let run = mongoshift(
        dir.path(),
        ["indexes", "plan", bad.to_str().unwrap(), "--uri", &uri()],
    );
    run.assert_code(2);
}
