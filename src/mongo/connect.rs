//! Connecting with CLI-appropriate defaults and errors that say what to do.

use std::time::Duration;

use anyhow::Result;
use mongodb::bson::doc;
use mongodb::error::ErrorKind;
use mongodb::options::{ClientOptions, ReadPreference, SelectionCriteria};
use mongodb::Client;

use crate::config::ResolvedTarget;
use crate::exit::usage;
use crate::redact;

pub const APP_NAME: &str = "mongoshift";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Server selection timeout: how long to wait for a usable server.
    pub timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Connect to `target` and prove the connection with a `ping`, so that an
/// unreachable host or bad credentials fail here with a clear message rather
/// than deep inside a command.
pub async fn connect(target: &ResolvedTarget, opts: &ConnectOptions) -> Result<Client> {
    redact::register_uri(&target.uri);
    let shown = redact::uri(&target.uri);
    let mut options = ClientOptions::parse(&target.uri).await.map_err(|e| {
        usage(format!(
            "invalid MongoDB URI {shown}: {}. Write it as mongodb://host[:port][,host2...][/db][?options] or mongodb+srv://host, \
             with credentials as user:password@ before the host",
            trim_period(&redact::scrub(&driver_message(&e)))
        ))
    })?;
    options.app_name = Some(APP_NAME.to_string());
    options.server_selection_timeout = Some(opts.timeout);
    options.connect_timeout = Some(opts.timeout.min(DEFAULT_TIMEOUT));
    if let Some(rp) = &target.read_preference {
        options.selection_criteria = Some(SelectionCriteria::ReadPreference(
            parse_read_preference(rp, &target.label())?,
        ));
    }
    let client = Client::with_options(options).map_err(|e| {
        usage(format!(
            "invalid MongoDB options in {shown}: {}",
            redact::scrub(&driver_message(&e))
        ))
    })?;
    client
        .database("admin")
        .run_command(doc! { "ping": 1 })
        .await
        .map_err(|e| explain_connect_error(&e, target, opts.timeout))?;
    Ok(client)
}

fn parse_read_preference(name: &str, target: &str) -> Result<ReadPreference> {
    Ok(match name {
        "primary" => ReadPreference::Primary,
        "primaryPreferred" => ReadPreference::PrimaryPreferred { options: None },
        "secondary" => ReadPreference::Secondary { options: None },
        "secondaryPreferred" => ReadPreference::SecondaryPreferred { options: None },
        "nearest" => ReadPreference::Nearest { options: None },
        other => {
            return Err(usage(format!(
                "target {target}: unknown read_preference '{other}'; use primary, primaryPreferred, secondary, secondaryPreferred or nearest"
            )))
        }
    })
}

/// The driver's own message, without the kind prefix noise.
pub fn driver_message(e: &mongodb::error::Error) -> String {
    match &*e.kind {
        ErrorKind::InvalidArgument { message, .. } => message.clone(),
        ErrorKind::Authentication { message, .. } => message.clone(),
        ErrorKind::ServerSelection { message, .. } => message.clone(),
        _ => e.to_string(),
    }
}

/// Turn a failed first contact into one paragraph naming the hosts and the likely fix.
pub fn explain_connect_error(
    e: &mongodb::error::Error,
    target: &ResolvedTarget,
    timeout: Duration,
) -> anyhow::Error {
    let hosts = redact::hosts(&target.uri);
    let who = match &target.name {
        Some(n) => format!("target '{n}' ({hosts})"),
        None => hosts.clone(),
    };
    let raw = trim_period(&redact::scrub(&driver_message(e)));
    match &*e.kind {
        ErrorKind::Authentication { .. } => anyhow::anyhow!(
            "authentication failed for {who}: {raw}. Check the user name, the password and authSource in the URI"
        ),
        ErrorKind::ServerSelection { .. } => {
            let reason = short_reason(&raw);
            anyhow::anyhow!(
                "cannot reach MongoDB at {who} within {}: {reason}. Is mongod running and listening on that address and port? \
                 Check firewalls or the Atlas IP access list, and add tls=true to the URI if the server requires TLS; \
                 --timeout sets how long to wait",
                humantime::format_duration(timeout)
            )
        }
        _ if raw.contains("Authentication failed") || raw.contains("AuthenticationFailed") => anyhow::anyhow!(
            "authentication failed for {who}: {raw}. Check the user name, the password and authSource in the URI"
        ),
        _ => anyhow::anyhow!("cannot talk to MongoDB at {who}: {raw}"),
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
        ("tls handshake", "TLS handshake failed"),
        (
            "invalidcertificate",
            "the server's TLS certificate was rejected",
        ),
        ("connection reset", "connection reset by the server"),
    ] {
        if lower.contains(needle) {
            return reason.to_string();
        }
    }
    let first = msg.split(". Topology:").next().unwrap_or(msg);
    first.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn read_preferences() {
        assert!(parse_read_preference("secondaryPreferred", "t").is_ok());
        assert!(parse_read_preference("secondaryish", "t").is_err());
    }
}
