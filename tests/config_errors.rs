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
