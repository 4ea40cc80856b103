//! What went wrong talking to MongoDB, in words a person can act on: URI syntax, DNS,
//! refused and TLS connections, authentication, missing roles, and the driver's command
//! errors without their wire-level noise.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use mongodb::error::ErrorKind;

use crate::config::ResolvedTarget;
use crate::exit::usage;
use crate::redact;

/// The driver's own message, without the kind prefix noise.
pub fn driver_message(e: &mongodb::error::Error) -> String {
    match &*e.kind {
        ErrorKind::InvalidArgument { message, .. } => message.clone(),
        ErrorKind::Authentication { message, .. } => message.clone(),
        ErrorKind::ServerSelection { message, .. } => message.clone(),
        ErrorKind::DnsResolve { message, .. } => message.clone(),
        ErrorKind::InvalidTlsConfig { message, .. } => message.clone(),
        _ => without_driver_tail(&e.to_string()),
    }
}

/// The driver's Display of an error appends its internals ("Kind: …, labels: {}, source:
/// None, server response: None"); people get the message only.
pub fn without_driver_tail(text: &str) -> String {
    let text = text.strip_prefix("Kind: ").unwrap_or(text);
    match text.find(", labels: {") {
        Some(i) => text[..i].to_string(),
        None => text.to_string(),
    }
}

/// `target 'atlas' (host:port)` or the host list.
pub fn who(target: &ResolvedTarget) -> String {
    let hosts = redact::hosts(&target.uri);
    match &target.name {
        Some(n) => format!("target '{n}' ({hosts})"),
        None => hosts,
    }
}

/// The URI as shown (password masked), and where it came from for a config target.
pub fn described(target: &ResolvedTarget) -> String {
    let shown = redact::uri(&target.uri);
    match &target.origin {
        Some(origin) => format!("{shown} ({origin})"),
        None => shown,
    }
}

/// A URI the driver refused before connecting: a syntax problem (exit 2), or an SRV name
/// that does not resolve, which is an unreachable host like any other (exit 1).
pub fn explain_parse_error(e: &mongodb::error::Error, target: &ResolvedTarget) -> anyhow::Error {
    let raw = trim_period(&redact::scrub(&driver_message(e)));
    if matches!(&*e.kind, ErrorKind::DnsResolve { .. }) {
        let reason = if raw.to_ascii_lowercase().contains("no record found")
            || raw.to_ascii_lowercase().contains("nxdomain")
        {
            "the host name does not resolve"
        } else {
            "the DNS lookup failed"
        };
        return anyhow::anyhow!(
            "cannot reach MongoDB at {}: {reason} (mongodb+srv:// looks up SRV and TXT records of the \
             host name). Check the host name in the URI (Atlas shows it under Connect → Drivers), \
             and that this machine can resolve names",
            who(target)
        );
    }
    usage(format!(
        "invalid MongoDB URI {}: {raw}. Write it as mongodb://host[:port][,host2...][/db][?options] or \
         mongodb+srv://host, with credentials as user:password@ before the host",
        described(target)
    ))
}

/// Turn a failed first contact into one paragraph naming the hosts, the cause the driver
/// saw, and the fix.
pub fn explain_connect_error(
    e: &mongodb::error::Error,
    target: &ResolvedTarget,
    timeout: Duration,
    tls: bool,
    ca_file: Option<&str>,
    user: Option<&str>,
) -> anyhow::Error {
    let who = who(target);
    let raw = trim_period(&redact::scrub(&driver_message(e)));
    let auth_failed = matches!(&*e.kind, ErrorKind::Authentication { .. })
        || raw.contains("Authentication failed")
        || raw.contains("AuthenticationFailed");
    if auth_failed {
        return anyhow::anyhow!(
            "authentication failed for {who} as {}: {}. Check the user name and the password in the URI \
             (percent-encode : / ? # [ ] @ % in them) and authSource (Atlas database users: authSource=admin)",
            user.unwrap_or("the URI's user"),
            short_reason(&raw)
        );
    }
    match &*e.kind {
        ErrorKind::ServerSelection { .. } => {
            let cause = diagnose(&raw, tls, ca_file);
            anyhow::anyhow!(
                "cannot reach MongoDB at {who} within {}: {}. {}",
                humantime::format_duration(timeout),
                cause.reason,
                cause.fix
            )
        }
        _ => anyhow::anyhow!("cannot talk to MongoDB at {who}: {raw}"),
    }
}

struct Cause {
    reason: String,
    fix: String,
}

/// What went wrong, from the driver's server-selection message (which embeds each
/// server's last error), and what to do about it.
/// A certificate problem the driver saw while monitoring the server: waiting out the rest of
/// `--timeout` cannot change it, so the diagnosis is given at once (None when `msg` is not
/// such a problem).
pub fn tls_certificate_problem(
    msg: &str,
    target: &ResolvedTarget,
    ca_file: Option<&str>,
) -> Option<anyhow::Error> {
    let cause = diagnose(&redact::scrub(msg), true, ca_file);
    cause.reason.starts_with("TLS: ").then(|| {
        anyhow::anyhow!(
            "cannot reach MongoDB at {}: {}. {}",
            who(target),
            cause.reason,
            cause.fix
        )
    })
}

fn diagnose(msg: &str, tls: bool, ca_file: Option<&str>) -> Cause {
    let lower = msg.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    let c = |reason: &str, fix: &str| Cause {
        reason: reason.to_string(),
        fix: fix.to_string(),
    };
    if has(&[
        "unknownissuer",
        "unknown issuer",
        "self signed",
        "self-signed",
    ]) {
        // With a CA file already given, adding one is not the fix: it is the wrong CA.
        if let Some(ca) = ca_file {
            return c(
                &format!(
                    "TLS: the server's certificate is not signed by the CA in tlsCAFile={ca} (unknown issuer)"
                ),
                "Point tlsCAFile at the CA that signed the server's certificate (for Atlas, remove \
                 tlsCAFile: its certificates chain to public CAs the system trusts); \
                 tlsAllowInvalidCertificates=true skips the check, for tests only",
            );
        }
        return c(
            "TLS: the server's certificate is signed by a CA this machine does not trust (unknown issuer)",
            "Add tlsCAFile=/path/to/ca.pem to the URI with the CA that signed the server's certificate \
             (Atlas's certificates chain to public CAs the system trusts); tlsAllowInvalidCertificates=true \
             skips the check, for tests only",
        );
    }
    if has(&["notvalidforname", "not valid for name", "hostname mismatch"]) {
        return c(
            "TLS: the server's certificate does not name the host in the URI",
            "Connect with a host name the certificate lists, or add tlsAllowInvalidHostnames=true \
             (tests only: it lets any server with a trusted certificate pose as this one)",
        );
    }
    if has(&["expired"]) && has(&["certificate", "cert"]) {
        return c(
            "TLS: the server's certificate has expired",
            "Renew the server's certificate (or check this machine's clock)",
        );
    }
    if has(&[
        "invalid peer certificate",
        "certificate",
        "tls handshake",
        "handshake",
    ]) {
        return c(
            &format!("TLS handshake failed ({})", short_reason(msg)),
            "Check tlsCAFile, and the server's certificate and TLS settings",
        );
    }
    if tls
        && has(&[
            "corrupt message",
            "invalidcontenttype",
            "wrong version number",
        ])
    {
        return c(
            "TLS: the server does not speak TLS",
            "Remove tls=true (and tlsCAFile) from the URI, or enable TLS on the server",
        );
    }
    if !tls
        && has(&[
            "connection reset",
            "unexpected end of file",
            "unexpectedeof",
            "broken pipe",
        ])
    {
        return c(
            "the server closed the connection at once, as a server that requires TLS does with a plain connection",
            "Add tls=true to the URI (and tlsCAFile=/path/to/ca.pem for a private CA; Atlas always needs TLS)",
        );
    }
    let reason = short_reason(msg);
    let fix = if tls {
        "Is mongod running and listening on that address and port? Check firewalls or the Atlas IP access \
         list; --timeout sets how long to wait"
    } else {
        "Is mongod running and listening on that address and port? Check firewalls or the Atlas IP access \
         list, and add tls=true to the URI if the server requires TLS; --timeout sets how long to wait"
    };
    Cause {
        reason,
        fix: fix.to_string(),
    }
}

/// Driver messages end with a period; ours continue the sentence.
fn trim_period(s: &str) -> String {
    s.trim_end_matches(['.', ' ']).to_string()
}

/// The driver's server-selection message embeds a topology dump; keep the part a person needs.
fn short_reason(msg: &str) -> String {
    let lower = msg.to_ascii_lowercase();
    for (needle, reason) in [
        ("connection refused", "connection refused"),
        ("timed out", "connection timed out"),
        ("failed to lookup address", "host name does not resolve"),
        ("name or service not known", "host name does not resolve"),
        ("no route to host", "no route to host"),
        ("connection reset", "connection reset by the server"),
        (
            "invalid peer certificate",
            "the server's TLS certificate was rejected",
        ),
        ("authentication failed", "Authentication failed"),
    ] {
        if lower.contains(needle) {
            return reason.to_string();
        }
    }
    let first = msg.split(". Topology:").next().unwrap_or(msg);
    first.trim().to_string()
}

/// Who each connected target is logged in as, for "not authorized" errors.
fn identities() -> &'static Mutex<Vec<String>> {
    static IDS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    IDS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Remember "TARGET is logged in as USER with roles …" for `unauthorized_hint`.
pub fn record_identity(line: String) {
    identities()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(line);
}

/// For an error the server raised because the user lacks a privilege (code 13,
/// Unauthorized): what to do, with the roles of the users this process logged in as.
pub fn unauthorized_hint(e: &anyhow::Error) -> Option<String> {
    let denied = e.chain().any(|c| {
        c.downcast_ref::<mongodb::error::Error>()
            .is_some_and(|m| matches!(&*m.kind, ErrorKind::Command(ce) if ce.code == 13))
            || c.to_string().contains("not authorized on")
    });
    if !denied {
        return None;
    }
    let ids = identities().lock().unwrap_or_else(|e| e.into_inner());
    let who = if ids.is_empty() {
        String::new()
    } else {
        format!(" ({})", ids.join("; "))
    };
    Some(format!(
        "The database user lacks a role this command needs{who}. Grant it: status needs clusterMonitor; \
         backup needs backup (or read on the databases, and read on local for --oplog); restore needs \
         restore (or readWrite on the target databases); indexes apply needs dbAdmin on the database. \
         On Atlas: Database Access → edit the user; elsewhere db.grantRolesToUser()"
    ))
}

/// The fix when the server refused a write because user writes are blocked (code 371,
/// `UserWritesBlocked`): a cutover's freeze, on purpose or left behind.
pub fn write_blocked_hint(e: &anyhow::Error) -> Option<String> {
    let blocked = e.chain().any(|c| {
        c.downcast_ref::<mongodb::error::Error>().is_some_and(|m| {
            code(m) == Some(371)
                || matches!(&*m.kind, ErrorKind::InsertMany(im)
                    if im.write_errors.as_deref().unwrap_or_default().iter().any(|w| w.code == 371))
        })
    });
    blocked.then(|| {
        "User writes are blocked on that server (setUserWriteBlockMode, as a cutover's freeze \
         sets it). If no cutover is under way, allow them again with `mongoshift freeze --off` \
         on it; `mongoshift freeze --status` shows the state"
            .to_string()
    })
}

/// The server's error code of a command error, if it is one.
pub fn code(e: &mongodb::error::Error) -> Option<i32> {
    match &*e.kind {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w)) => Some(w.code),
        _ => None,
    }
}

/// One driver error as a person reads it. A server's command error is its code name,
/// code and message, with the echoed command cut to its name (the echo carries session
/// ids and cluster-time signatures, and the driver appends the raw reply as hex).
pub fn describe(e: &mongodb::error::Error) -> String {
    use mongodb::error::WriteFailure;
    let server =
        |name: &str, code: i32, msg: &str| format!("{name} ({code}): {}", command_echo_cut(msg));
    match &*e.kind {
        ErrorKind::Command(c) => server(&c.code_name, c.code, &c.message),
        ErrorKind::Write(WriteFailure::WriteError(w)) => server(
            w.code_name.as_deref().unwrap_or("WriteError"),
            w.code,
            &w.message,
        ),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => {
            server(&w.code_name, w.code, &w.message)
        }
        // The driver's own text lists every failed document, hundreds of lines for one
        // cause (e.g. writes blocked): the count and the first one say it.
        ErrorKind::InsertMany(m) => {
            let errors = m.write_errors.as_deref().unwrap_or_default();
            let mut parts = vec![];
            if let Some(first) = errors.first() {
                parts.push(format!(
                    "{} of the documents were refused; the first (#{}): {}",
                    errors.len(),
                    first.index,
                    server(
                        first.code_name.as_deref().unwrap_or("WriteError"),
                        first.code,
                        &first.message
                    )
                ));
            }
            if let Some(w) = &m.write_concern_error {
                parts.push(format!(
                    "write concern: {}",
                    server(&w.code_name, w.code, &w.message)
                ));
            }
            if parts.is_empty() {
                e.kind.to_string()
            } else {
                parts.join("; ")
            }
        }
        // Its message embeds a dump of the whole topology (issue #27: `analyze shard-key`
        // when the server died mid-command); the cause in it is what a person needs.
        ErrorKind::ServerSelection { message, .. } => format!(
            "no server answered ({}); is the server still running and reachable?",
            short_reason(message)
        ),
        kind => without_topology(&without_driver_tail(&kind.to_string())),
    }
}

/// Cut a driver topology dump ("Topology: { … }", braces balanced) out of a message.
pub fn without_topology(text: &str) -> String {
    let Some(start) = text.find("Topology: {") else {
        return text.to_string();
    };
    let mut depth = 0usize;
    let mut end = text.len();
    for (i, ch) in text[start..].char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    end = start + i + 1;
                    break;
                }
            }
            _ => {}
        }
    }
    let head = text[..start].trim_end_matches([' ', '.', ',']);
    format!("{head}{}", without_topology(&text[end..]))
}

/// "not authorized on admin to execute command { replSetGetStatus: 1, $db: …, lsid: … }"
/// → "not authorized on admin to execute command replSetGetStatus".
fn command_echo_cut(msg: &str) -> String {
    match msg.split_once(" command { ") {
        Some((head, rest)) => {
            let name = rest.split([':', ' ']).next().unwrap_or_default();
            format!("{head} command {name}")
        }
        None => msg.to_string(),
    }
}

/// An error chain as one line (outermost context first), with driver errors described
/// by `describe`.
pub fn chain_text(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| match c.downcast_ref::<mongodb::error::Error>() {
            Some(m) => describe(m),
            None => without_topology(&c.to_string()),
        })
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_echo_is_cut_to_the_command_name() {
        assert_eq!(
            command_echo_cut("not authorized on admin to execute command { replSetGetStatus: 1, $db: \"admin\", lsid: { id: UUID(\"1d\") } }"),
            "not authorized on admin to execute command replSetGetStatus"
        );
        assert_eq!(command_echo_cut("ns not found"), "ns not found");
    }

    #[test]
    fn topology_dumps_are_cut() {
        assert_eq!(
            without_topology("Server selection timeout: No available servers. Topology: { Type: ReplicaSetNoPrimary, Servers: [ { Address: a:1, Error: x } ] }, then"),
            "Server selection timeout: No available servers, then"
        );
        assert_eq!(without_topology("plain"), "plain");
    }

    #[test]
    fn short_reason_picks_cause() {
        assert_eq!(
            short_reason("Server selection timeout: No available servers. Topology: { Error: Connection refused (os error 111) }"),
            "connection refused"
        );
        assert_eq!(
            short_reason("something odd. Topology: {..}"),
            "something odd"
        );
    }

    #[test]
    fn diagnoses_tls_problems() {
        let untrusted = "Server selection timeout: No available servers. Topology: { Servers: [ { Error: Kind: I/O error: invalid peer certificate: UnknownIssuer } ] }";
        let c = diagnose(untrusted, true, None);
        assert!(c.reason.contains("unknown issuer"), "{}", c.reason);
        assert!(c.fix.starts_with("Add tlsCAFile"), "{}", c.fix);
        // A CA file already given is the wrong one: do not suggest adding one.
        let c = diagnose(untrusted, true, Some("/etc/ca.pem"));
        assert!(c.reason.contains("tlsCAFile=/etc/ca.pem"), "{}", c.reason);
        assert!(!c.fix.contains("Add tlsCAFile"), "{}", c.fix);
        assert_eq!(
            without_driver_tail(
                "Kind: Unable to parse PEM, labels: {}, source: None, server response: None"
            ),
            "Unable to parse PEM"
        );
        assert!(c.fix.contains("tlsCAFile"), "{}", c.fix);
        let plain = "Server selection timeout: No available servers. Topology: { Servers: [ { Error: Kind: I/O error: Connection reset by peer (os error 104) } ] }";
        let c = diagnose(plain, false, None);
        assert!(c.fix.contains("tls=true"), "{}", c.fix);
        // With tls=true already in the URI, never suggest adding it.
        assert!(!diagnose("timed out", true, None)
            .fix
            .contains("add tls=true"));
    }
}
