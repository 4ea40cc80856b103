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
