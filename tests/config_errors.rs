//! Config file errors: exit 2 with file:line:column or the variable's name.

mod common;

use common::{mongoshift, tempdir};

fn with_config(text: &str, args: &[&str]) -> common::Run {
    let dir = tempdir();
    std::fs::write(dir.path().join("mongoshift.yaml"), text).unwrap();
    mongoshift(dir.path(), args)
}

#[test]
fn yaml_syntax_error_gives_file_line_column() {
    let run = with_config(
        "targets:\n  rs: { uri: \"mongodb://h\"\n  other: x\n",
        &["status", "--target", "rs"],
    );
    run.assert_code(2);
    assert!(run.stderr.contains("mongoshift.yaml:"), "{}", run.stderr);
    let after = run.stderr.split("mongoshift.yaml:").nth(1).unwrap();
    let mut parts = after.split(':');
    assert!(
        parts.next().unwrap().parse::<u32>().is_ok(),
        "{}",
        run.stderr
    );
    assert!(
        parts.next().unwrap().parse::<u32>().is_ok(),
        "{}",
        run.stderr
    );
}

#[test]
fn unknown_key_gives_file_line_column() {
    let run = with_config(
        "targets:\n  rs:\n    uri: mongodb://h\n    read_preferenc: primary\n",
        &["status", "--target", "rs"],
    );
    run.assert_code(2);
    assert!(run.stderr.contains("mongoshift.yaml:4:5"), "{}", run.stderr);
    assert!(run.stderr.contains("read_preferenc"), "{}", run.stderr);
}

#[test]
fn unset_variable_is_named() {
    let run = with_config(
        "targets:\n  atlas: { uri: \"${MONGOSHIFT_TEST_SURELY_UNSET_VAR}\" }\n",
        &["status", "--target", "atlas"],
    );
    run.assert_code(2);
    assert!(
        run.stderr.contains("MONGOSHIFT_TEST_SURELY_UNSET_VAR"),
        "{}",
        run.stderr
    );
}

#[test]
fn explicit_missing_config_is_usage_error() {
    let dir = tempdir();
    let run = mongoshift(
        dir.path(),
        ["--config", "nope.yaml", "status", "--target", "x"],
    );
    run.assert_code(2);
    assert!(run.stderr.contains("nope.yaml"), "{}", run.stderr);
}

#[test]
fn unset_variable_of_an_unused_target_is_not_an_error() {
    // Lazy interpolation: only the target in use is expanded. The used one is unreachable
    // quickly, so the exit code is 1 (runtime), not 2 (config).
    let run = with_config(
        "targets:\n  a: { uri: \"mongodb://127.0.0.1:1/\" }\n  b: { uri: \"${MONGOSHIFT_TEST_SURELY_UNSET_VAR}\" }\n",
        &["status", "--target", "a", "--timeout", "1s"],
    );
    run.assert_code(1);
}

/// Malformed connection strings: the password is masked whatever the defect, exit 2.
#[test]
fn malformed_uris_never_print_their_password() {
    for uri in [
        "mongodb//user:Secret123@127.0.0.1:27518/",
        "mongodb:/user:Secret123@127.0.0.1:27518/",
        "user:Secret123@127.0.0.1",
        "mongodb:user:Secret123@127.0.0.1/",
        "mongodbx://user:Secret123@127.0.0.1/",
    ] {
        let run = mongoshift(
            tempdir().path(),
            ["status", "--uri", uri, "--timeout", "1s"],
        );
        run.assert_code(2);
        assert!(run.stderr.contains("invalid MongoDB URI"), "{}", run.stderr);
        assert!(run.stderr.contains("user:****@"), "{uri}: {}", run.stderr);
        assert!(!run.all().contains("Secret123"), "{uri}: {}", run.all());
    }
}

/// The same through a config target: also names the config key the URI came from.
#[test]
fn malformed_uri_from_a_target_names_the_key_and_hides_the_password() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("mongoshift.yaml"),
        "targets:\n  legacy: { uri: \"${MONGOSHIFT_TEST_LEGACY_URI}\" }\n",
    )
    .unwrap();
    let run = common::Cli::new(dir.path())
        .env(
            "MONGOSHIFT_TEST_LEGACY_URI",
            "mongodb//user:Secret123@127.0.0.1:27518/",
        )
        .run(["status", "--target", "legacy"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("targets.legacy.uri in mongoshift.yaml"),
        "{}",
        run.stderr
    );
    assert!(!run.all().contains("Secret123"), "{}", run.all());
}

/// An SRV name that does not resolve is an unreachable host (exit 1), not a syntax error.
#[test]
fn unresolvable_srv_host_is_unreachable_not_invalid() {
    let run = mongoshift(
        tempdir().path(),
        [
            "status",
            "--uri",
            "mongodb+srv://u:Secret123@no-such-cluster.mongoshift.invalid/",
            "--timeout",
            "2s",
        ],
    );
    run.assert_code(1);
    assert!(
        run.stderr.contains("cannot reach MongoDB"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("host name"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("invalid MongoDB URI"),
        "{}",
        run.stderr
    );
    assert!(!run.all().contains("Secret123"), "{}", run.all());
}

/// Nothing listening: said at once as "refused by every host" (the driver alone would
/// wait out the whole selection timeout and say "no available servers").
#[test]
fn refused_connection_is_reported_as_refused() {
    let run = mongoshift(
        tempdir().path(),
        [
            "status",
            "--uri",
            "mongodb://127.0.0.1:1/",
            "--timeout",
            "60s",
        ],
    );
    run.assert_code(1);
    assert!(
        run.stderr.contains("connection refused by every host"),
        "{}",
        run.stderr
    );
}

#[test]
fn help_separates_global_options_and_describes_arguments() {
    let dir = tempdir();
    let run = mongoshift(dir.path(), ["status", "--help"]);
    assert!(run.stdout.contains("Global options:"), "{}", run.stdout);
    let run = mongoshift(dir.path(), ["indexes", "lint", "--help"]);
    assert!(
        run.stdout.contains("<SPEC>...  Spec files or folders"),
        "{}",
        run.stdout
    );
    let run = mongoshift(dir.path(), ["backups", "prune"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("--keep-last N") && run.stderr.contains("--older-than"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("required"), "{}", run.stderr);
}

/// Every option's help says what it does for that command (issue #27: `--wait` described
/// as "stop: …" under status and finalize, `rollback --timeout` without a description, an
/// example path that is not the README's).
#[test]
fn help_describes_each_commands_own_options() {
    let dir = tempdir();
    let help = |args: &[&str]| {
        let mut a = args.to_vec();
        a.push("--help");
        let r = mongoshift(dir.path(), a);
        r.assert_code(0);
        r.stdout
    };
    for sub in ["status", "finalize"] {
        let h = help(&["migrate", sub]);
        assert!(!h.contains("--wait"), "{sub}: {h}");
    }
    let h = help(&["migrate", "stop"]);
    assert!(h.contains("--wait") && !h.contains("stop:"), "{h}");
    let h = help(&["rollback"]);
    let line = h.lines().find(|l| l.contains("--timeout")).unwrap();
    assert!(line.contains("How long to wait"), "{h}");
    let h = help(&["analyze", "check"]);
    assert!(h.contains("queries/predixi.yaml"), "{h}");
    assert!(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("queries/predixi.yaml")
        .exists());
}
