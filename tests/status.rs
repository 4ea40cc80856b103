//! `mongoshift status` against the real replica set and standalone servers.

mod common;

use common::{mongoshift, servers, tempdir};

#[test]
fn replica_set_shows_one_primary_with_zero_lag_as_json() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("mongoshift.yaml"),
        "targets:\n  rs: { uri: \"${TEST_RS_URI}\" }\n",
    )
    .unwrap();
    let run = common::Cli::new(dir.path())
        .env("TEST_RS_URI", &servers().rs_uri)
        .run([
            "status",
            "--target",
            "rs",
            "--output",
            "json",
            "--max-ping",
            "10s",
        ]);
    run.assert_code(0);
    let v = run.json();
    assert_eq!(v["reachable"], true);
    assert_eq!(v["version"], "6.0.5");
    assert_eq!(v["topology"]["type"], "replica_set");
    let members = v["topology"]["members"].as_array().unwrap();
    let primaries: Vec<_> = members.iter().filter(|m| m["state"] == "PRIMARY").collect();
    assert_eq!(primaries.len(), 1, "{v}");
    assert_eq!(primaries[0]["lag_secs"], 0.0);
    assert!(v["connections"]["current"].as_i64().unwrap() >= 1);
    assert!(v["databases"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["name"] == "admin"));
    assert_eq!(v["ok"], true);
}

#[test]
fn table_output_names_topology_members_and_thresholds() {
    let dir = tempdir();
    // A generous ping limit: the suite loads both cores, and this test is not about latency.
    let run = mongoshift(
        dir.path(),
        ["status", "--uri", &servers().rs_uri, "--max-ping", "10s"],
    );
    run.assert_code(0);
    for needle in [
        "replica set 'rs0'",
        "PRIMARY",
        "max-connections",
        "profiler",
        "6.0.5",
    ] {
        assert!(
            run.stdout.contains(needle),
            "missing {needle}:\n{}",
            run.stdout
        );
    }
}

#[test]
fn standalone_is_reported_as_such() {
    let dir = tempdir();
    let run = mongoshift(
        dir.path(),
        [
            "status",
            "--uri",
            &servers().standalone_uri,
            "--output",
            "json",
            "--max-ping",
            "10s",
        ],
    );
    run.assert_code(0);
    assert_eq!(run.json()["topology"]["type"], "standalone");
}

#[test]
fn unreachable_host_fails_fast_names_host_and_hides_password() {
    let dir = tempdir();
    let run = mongoshift(
        dir.path(),
        [
            "status",
            "--uri",
            "mongodb://app:s3cr3t@127.0.0.1:1/",
            "--timeout",
            "2s",
        ],
    );
    run.assert_code(1);
    assert!(run.stderr.contains("127.0.0.1:1"), "{}", run.stderr);
    assert!(run.stderr.contains("Is mongod running"), "{}", run.stderr);
    assert!(!run.all().contains("s3cr3t"), "{}", run.all());
}

#[test]
fn thresholds_are_shown_as_given() {
    let run = mongoshift(
        tempdir().path(),
        [
            "status",
            "--uri",
            &servers().rs_uri,
            "--max-ping",
            "1us",
            "--output",
            "json",
        ],
    );
    run.assert_code(3);
    let t = run.json()["thresholds"].clone();
    let ping = t
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "max-ping")
        .unwrap()
        .clone();
    assert_eq!(ping["limit"], "1us", "{t}");
    assert_eq!(ping["breached"], true);
}

#[test]
fn unreachable_host_with_json_output_reports_unreachable() {
    let dir = tempdir();
    let run = mongoshift(
        dir.path(),
        [
            "status",
            "--uri",
            "mongodb://app:s3cr3t@127.0.0.1:1/",
            "--timeout",
            "1s",
            "--output",
            "json",
        ],
    );
    run.assert_code(1);
    let v = run.json();
    assert_eq!(v["reachable"], false);
    assert!(!run.all().contains("s3cr3t"));
}

#[test]
fn wrong_password_is_an_auth_error_without_the_password() {
    let dir = tempdir();
    // The test servers run without --auth, so any credentials fail SCRAM: the same path as a wrong password.
    let uri = servers()
        .rs_uri
        .replace("mongodb://", "mongodb://app:Wr0ngPassw0rd@");
    let run = mongoshift(dir.path(), ["status", "--uri", &uri, "--timeout", "3s"]);
    run.assert_code(1);
    assert!(
        run.stderr.contains("authentication failed"),
        "{}",
        run.stderr
    );
    assert!(!run.all().contains("Wr0ngPassw0rd"), "{}", run.all());
}

#[test]
fn bad_uri_is_usage_error_without_the_password() {
    let dir = tempdir();
    let run = mongoshift(
        dir.path(),
        ["status", "--uri", "mongodbx://app:s3cr3t@host/"],
    );
    run.assert_code(2);
    assert!(run.stderr.contains("invalid MongoDB URI"), "{}", run.stderr);
    assert!(!run.all().contains("s3cr3t"), "{}", run.all());
}

#[test]
fn max_connections_breach_exits_3_and_names_threshold() {
    let dir = tempdir();
    let run = mongoshift(
        dir.path(),
        [
            "status",
            "--uri",
            &servers().rs_uri,
            "--max-connections",
            "1",
        ],
    );
    run.assert_code(3);
    assert!(run.stderr.contains("max-connections"), "{}", run.stderr);
    assert!(run.stdout.contains("BREACHED"), "{}", run.stdout);
}

#[test]
fn missing_uri_and_target_is_usage_error() {
    let dir = tempdir();
    mongoshift(dir.path(), ["status"]).assert_code(2);
    let run = mongoshift(dir.path(), ["status", "--target", "nope"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("unknown target 'nope'"),
        "{}",
        run.stderr
    );
}
