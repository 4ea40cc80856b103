//! Against the Atlas-like server (a replica set with --auth and --tlsMode requireTLS, the
//! URI carrying tls=true, tlsCAFile and authSource as an Atlas URI does): status, a backup
//! from it and a restore into it, and the TLS and authentication failures a new user meets,
//! each with its cause and fix and never the password.

mod common;

use common::{assert_no_secret, block_on, client, hashes, mongoshift, servers, tempdir, Cli, Run};
use mongodb::bson::doc;

/// The atlas URI with its credentials or CA swapped, for the failure cases.
fn atlas_with(from: &str, to: &str) -> String {
    let u = servers().atlas_uri.replace(from, to);
    assert_ne!(u, servers().atlas_uri, "{from} is in the atlas URI");
    u
}

fn with_user(user: &str, password: &str) -> String {
    let (encoded, _) = common::atlas_password();
    atlas_with(&format!("root:{encoded}@"), &format!("{user}:{password}@"))
}

#[track_caller]
fn failed_with(run: &Run, code: i32, needles: &[&str]) {
    run.assert_code(code);
    for n in needles {
        assert!(run.stderr.contains(n), "missing {n:?} in:\n{}", run.stderr);
    }
    assert_no_secret(&run.all(), "the output");
}

#[test]
fn status_of_the_atlas_like_server() {
    let dir = tempdir();
    let run = mongoshift(
        dir.path(),
        ["status", "--uri", &servers().atlas_uri, "--max-ping", "10s"],
    );
    run.assert_code(0);
    assert!(
        run.stdout.contains("replica set 'atlas0' (1 member)"),
        "{}",
        run.stdout
    );
    assert_no_secret(&run.all(), "status output");
    // Through a config target whose URI comes from the environment, with JSON output.
    std::fs::write(
        dir.path().join("mongoshift.yaml"),
        "targets:\n  atlas: { uri: \"${ATLAS_MONGO_URI}\" }\n",
    )
    .unwrap();
    let run = Cli::new(dir.path())
        .env("ATLAS_MONGO_URI", &servers().atlas_uri)
        .run([
            "status",
            "--target",
            "atlas",
            "--max-ping",
            "10s",
            "--output",
            "json",
        ]);
    run.assert_code(0);
    assert_eq!(run.json()["reachable"], true);
    assert_eq!(
        run.json()["topology"]["set_name"],
        "atlas0",
        "{}",
        run.stdout
    );
    assert_no_secret(&run.all(), "status JSON");
}

#[test]
fn backup_from_and_restore_into_atlas_keep_every_hash_and_no_password() {
    // A source on the legacy replica set, restored into atlas under another name.
    let src = common::unique_db("atsrc");
    block_on(async {
        let c = client(&servers().rs_uri).await;
        let d = c.database(&src);
        common::load_sample(&d, 0.5, 11).await;
    });
    let dir = tempdir();
    let to = dir.path().join("backups");
    let run = mongoshift(
        dir.path(),
        [
            "backup",
            "--uri",
            &servers().rs_uri,
            "--db",
            &src,
            "--to",
            to.to_str().unwrap(),
            "--output",
            "json",
            "-q",
        ],
    );
    run.assert_code(0);
    let id = run.json()["backup_id"].as_str().unwrap().to_string();
    let target = common::unique_db("atdst");
    let run = mongoshift(
        dir.path(),
        [
            "restore",
            "--from",
            &format!("{}/{id}", to.display()),
            "--uri",
            &servers().atlas_uri,
            "--ns-from",
            &format!("{src}.*"),
            "--ns-to",
            &format!("{target}.*"),
            "--yes",
        ],
    );
    run.assert_code(0);
    assert_no_secret(&run.all(), "restore output");
    assert_eq!(
        hashes(&servers().rs_uri, &src),
        hashes(&servers().atlas_uri, &target)
    );
    // A clean restore leaves none of its resume state behind. (Not "no `mongoshift`
    // database": other tests' tails keep their run records there at the same time.)
    let left = block_on(async {
        client(&servers().atlas_uri)
            .await
            .database("mongoshift")
            .collection::<mongodb::bson::Document>("restore_state")
            .count_documents(mongodb::bson::doc! { "source": format!("backup:{id}") })
            .await
            .unwrap()
    });
    assert_eq!(left, 0, "restore state of backup {id} left on the target");

    // Back up from atlas (auth + TLS): the manifest and every file hold no password.
    let out = dir.path().join("from-atlas");
    let run = mongoshift(
        dir.path(),
        [
            "backup",
            "--uri",
            &servers().atlas_uri,
            "--db",
            &target,
            "--to",
            out.to_str().unwrap(),
            "--oplog",
            "--output",
            "json",
        ],
    );
    run.assert_code(0);
    assert_no_secret(&run.all(), "backup output");
    for (path, bytes) in common::read_tree(&out) {
        assert_no_secret(
            &String::from_utf8_lossy(&bytes),
            &path.display().to_string(),
        );
    }
    assert_eq!(run.json()["source"]["replica_set"], "atlas0");
}

#[test]
fn untrusted_ca_says_unknown_issuer_and_names_tls_ca_file() {
    let uri = atlas_with(&servers().tls_ca, &servers().tls_other_ca);
    // Diagnosed on the first failed check, not after the whole (default 10 s) --timeout.
    let start = std::time::Instant::now();
    let run = mongoshift(tempdir().path(), ["status", "--uri", &uri]);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    failed_with(&run, 1, &["unknown issuer", "tlsCAFile="]);
    assert!(!run.stderr.contains("add tls=true"), "{}", run.stderr);
    // The URI already has a tlsCAFile: the wrong one, so "Add tlsCAFile" is not the fix.
    assert!(!run.stderr.contains("Add tlsCAFile"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&servers().tls_other_ca),
        "{}",
        run.stderr
    );
    // A tlsCAFile that does not exist: invalid input, said without the driver's internals.
    let uri = atlas_with(&servers().tls_ca, "/no/such/ca.pem");
    let run = mongoshift(tempdir().path(), ["status", "--uri", &uri]);
    failed_with(&run, 2, &["tlsCAFile=/no/such/ca.pem", "cannot be read"]);
    assert!(!run.stderr.contains("labels:"), "{}", run.stderr);
}

#[test]
fn tls_required_but_not_requested_says_add_tls_true() {
    let (encoded, _) = common::atlas_password();
    let host = servers().atlas_uri.split_once('@').unwrap().1;
    let host = host.split('/').next().unwrap();
    let uri = format!("mongodb://root:{encoded}@{host}/?directConnection=true");
    let run = mongoshift(
        tempdir().path(),
        ["status", "--uri", &uri, "--timeout", "3s"],
    );
    failed_with(&run, 1, &["requires TLS", "Add tls=true"]);
}

#[test]
fn wrong_password_says_authentication_failed_for_the_user() {
    let run = mongoshift(
        tempdir().path(),
        [
            "status",
            "--uri",
            &with_user("root", "WrongPassw0rd"),
            "--timeout",
            "3s",
        ],
    );
    failed_with(
        &run,
        1,
        &["authentication failed", "user 'root' (authSource admin)"],
    );
    assert!(!run.all().contains("WrongPassw0rd"));
}

#[test]
fn a_user_without_the_role_is_told_which_role_and_what_it_has() {
    let user = format!("reader{}", std::process::id());
    block_on(async {
        let admin = client(&servers().atlas_uri).await.database("admin");
        let _ = admin.run_command(doc! { "dropUser": &user }).await;
        admin
            .run_command(doc! { "createUser": &user, "pwd": "ReaderPassw0rd", "roles": [ { "role": "read", "db": "somedb" } ] })
            .await
            .unwrap();
    });
    let run = mongoshift(
        tempdir().path(),
        [
            "status",
            "--uri",
            &with_user(&user, "ReaderPassw0rd"),
            "--timeout",
            "3s",
        ],
    );
    failed_with(
        &run,
        1,
        &[
            "Unauthorized (13): not authorized on admin to execute command replSetGetStatus",
            "clusterMonitor",
            &format!("logged in as {user}@admin with roles read@somedb"),
        ],
    );
    assert!(!run.all().contains("ReaderPassw0rd"));
    assert!(
        !run.stderr.contains("$clusterTime"),
        "no wire noise: {}",
        run.stderr
    );
    // --output json still answers: reachable, but the check could not run.
    let run = mongoshift(
        tempdir().path(),
        [
            "status",
            "--uri",
            &with_user(&user, "ReaderPassw0rd"),
            "--timeout",
            "3s",
            "--output",
            "json",
        ],
    );
    run.assert_code(1);
    assert_eq!(run.json()["reachable"], true);
    assert_eq!(run.json()["ok"], false);
    assert!(
        run.json()["error"]
            .as_str()
            .unwrap()
            .contains("Unauthorized"),
        "{}",
        run.stdout
    );
}
