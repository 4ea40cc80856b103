//! The test-server scripts' port check: a port already in use is one line naming the
//! process that holds it (the servers script prints it instead of a mongod log page).

use std::process::Command;

fn holder(port: u16) -> (i32, String) {
    let out = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/ports.py"))
        .args(["holder", &port.to_string()])
        .output()
        .expect("running python3 scripts/ports.py");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

#[test]
fn a_held_port_names_its_process_and_a_free_one_passes() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (code, who) = holder(port);
    assert_eq!(code, 1, "{who}");
    assert!(
        who.starts_with(&format!("pid {}:", std::process::id())),
        "{who}"
    );
    assert_eq!(who.lines().count(), 1, "{who}");
    drop(listener);
    let (code, who) = holder(port);
    assert_eq!(code, 0, "{who}");
}

/// On a machine without a C compiler (stock Debian) the scripts stop at once with one
/// line naming what is missing and the packages to install (issue #27).
#[test]
fn missing_tools_are_named_in_one_message_with_their_packages() {
    let bin = tempfile::tempdir().unwrap();
    // Everything the check looks for except cc.
    for tool in ["bash", "python3", "openssl", "cargo", "dirname"] {
        // python3 by its real path (a pyenv shim needs the PATH this test takes away).
        let find = if tool == "python3" {
            "python3 -c 'import sys; print(sys.executable)'".to_string()
        } else {
            format!("command -v {tool}")
        };
        let Ok(out) = Command::new("bash").args(["-c", &find]).output() else {
            continue;
        };
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !path.is_empty() {
            std::os::unix::fs::symlink(&path, bin.path().join(tool)).unwrap();
        }
    }
    let out = Command::new(bin.path().join("bash"))
        .env("PATH", bin.path())
        .args([
            "-c",
            concat!(
                "source ",
                env!("CARGO_MANIFEST_DIR"),
                "/scripts/lib.sh; require_tools"
            ),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("a C compiler")
            && stderr.contains("sudo apt-get install -y")
            && stderr.contains("build-essential"),
        "{stderr}"
    );
}
