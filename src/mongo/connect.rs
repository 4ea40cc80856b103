//! Connecting with CLI-appropriate defaults and errors that say what to do.

use std::time::Duration;

use anyhow::Result;
use mongodb::bson::{doc, Document};
use mongodb::options::{ClientOptions, ReadPreference, SelectionCriteria, ServerAddress, Tls};
use mongodb::Client;

use crate::config::ResolvedTarget;
use crate::exit::usage;
use crate::mongo::errors::{
    self, described, driver_message, explain_connect_error, explain_parse_error,
    tls_certificate_problem, who,
};
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

/// Connections per server, and how many are opened at once, unless the URI says.
const POOL_SIZE: u32 = 48;
const POOL_CONNECTING: u32 = 8;

/// Connect to `target` and prove the connection with a `ping`, so that an
/// unreachable host or bad credentials fail here with a clear message rather
/// than deep inside a command.
pub async fn connect(target: &ResolvedTarget, opts: &ConnectOptions) -> Result<Client> {
    redact::register_uri(&target.uri);
    let mut options = ClientOptions::parse(&target.uri)
        .await
        .map_err(|e| explain_parse_error(&e, target))?;
    options.app_name = Some(APP_NAME.to_string());
    // A load keeps up to 16 namespaces under way, each with its bookkeeping and insert
    // workers (see `load::lanes`): the driver's default pool (10 connections, opened 2 at
    // a time) made them queue for a connection. Across a network that queue was a third of
    // a 200-collection restore (11.3 s against 7.4 s at 50 ms RTT). A URI that sets these
    // keeps its own values.
    options.max_pool_size = options.max_pool_size.or(Some(POOL_SIZE));
    options.max_connecting = options.max_connecting.or(Some(POOL_CONNECTING));
    options.server_selection_timeout = Some(opts.timeout);
    options.connect_timeout = Some(opts.timeout.min(DEFAULT_TIMEOUT));
    if let Some(rp) = &target.read_preference {
        options.selection_criteria = Some(SelectionCriteria::ReadPreference(
            parse_read_preference(rp, &target.label())?,
        ));
    }
    let tls = matches!(options.tls, Some(Tls::Enabled(_)));
    let (ca_file, cert_file) = match &options.tls {
        Some(Tls::Enabled(t)) => (t.ca_file_path.clone(), t.cert_key_file_path.clone()),
        _ => (None, None),
    };
    // The driver's own message for an unreadable file ends in its internals; name the
    // option and the file instead.
    for (option, file) in [
        ("tlsCAFile", &ca_file),
        ("tlsCertificateKeyFile", &cert_file),
    ] {
        if let Some(f) = file {
            if let Err(e) = std::fs::metadata(f) {
                return Err(usage(format!(
                    "{option}={} in {} cannot be read ({}); give the path of the PEM file{}",
                    f.display(),
                    described(target),
                    e,
                    if option == "tlsCAFile" {
                        " of the CA that signed the server's certificate (Atlas needs none: its certificates chain to public CAs)"
                    } else {
                        ""
                    }
                )));
            }
        }
    }
    let ca_text = ca_file.as_ref().map(|p| p.display().to_string());
    // A certificate problem is seen by the driver's monitor on its first check; report it
    // then instead of after the whole --timeout (issue #27).
    let (tls_tx, mut tls_rx) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    if tls {
        options.sdam_event_handler = Some(mongodb::event::EventHandler::callback(
            move |ev: mongodb::event::sdam::SdamEvent| {
                if let mongodb::event::sdam::SdamEvent::ServerHeartbeatFailed(f) = ev {
                    let _ = tls_tx.send((f.server_address.to_string(), f.failure.to_string()));
                }
            },
        ));
    }
    let user = options.credential.as_ref().and_then(|c| {
        let source = c.source.clone().unwrap_or_else(|| "admin".into());
        c.username
            .clone()
            .map(|u| format!("user '{u}' (authSource {source})"))
    });
    let hosts = options.hosts.clone();
    let client = Client::with_options(options).map_err(|e| {
        usage(format!(
            "invalid MongoDB options in {}: {}",
            described(target),
            redact::scrub(&driver_message(&e))
        ))
    })?;
    let admin = client.database("admin");
    // With credentials, the proof is `connectionStatus`, whose answer also says who we are
    // logged in as (for errors about privileges): one round trip, not a ping and then it.
    let probe = if user.is_some() {
        doc! { "connectionStatus": 1 }
    } else {
        doc! { "ping": 1 }
    };
    let ping = std::future::IntoFuture::into_future(admin.run_command(probe));
    tokio::pin!(ping);
    // The driver waits the whole selection timeout even when nothing listens; a host
    // that refuses the connection will not accept it a moment later, so say so at once.
    // Only when every host has shown one: a member with a bad certificate beside good
    // ones is for the driver to route around.
    let host_count = hosts.len().max(1);
    let certificate_problem = async {
        let mut seen = std::collections::HashMap::new();
        while let Some((host, msg)) = tls_rx.recv().await {
            if let Some(e) = tls_certificate_problem(&msg, target, ca_text.as_deref()) {
                seen.insert(host, e);
                if seen.len() >= host_count {
                    return seen.into_values().next().expect("one at least");
                }
            }
        }
        std::future::pending().await
    };
    tokio::select! {
        r = &mut ping => {
            let reply = r.map_err(|e| explain_connect_error(&e, target, opts.timeout, tls, ca_text.as_deref(), user.as_deref()))?;
            if user.is_some() {
                remember_identity(&reply, target);
            }
        }
        e = certificate_problem => return Err(e),
        true = all_hosts_refuse(&hosts) => {
            return Err(anyhow::anyhow!(
                "cannot reach MongoDB at {}: connection refused by every host. Is mongod running and \
                 listening on that address and port? (Check the port in the URI and that the server is up.)",
                who(target)
            ));
        }
    }
    Ok(client)
}

/// True when a TCP connection to every host is refused outright (nothing listens there).
async fn all_hosts_refuse(hosts: &[ServerAddress]) -> bool {
    if hosts.is_empty() {
        return false;
    }
    let probes = hosts.iter().map(|h| async move {
        let ServerAddress::Tcp { host, port } = h else {
            return false;
        };
        let addr = (host.as_str(), port.unwrap_or(27017));
        matches!(
            tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(addr)).await,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused
        )
    });
    futures::future::join_all(probes)
        .await
        .into_iter()
        .all(|r| r)
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

fn remember_identity(status: &Document, target: &ResolvedTarget) {
    let info = status.get_document("authInfo").ok();
    let list = |field: &str, key: &str| -> Vec<String> {
        info.and_then(|i| i.get_array(field).ok())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_document())
                    .map(|d: &Document| {
                        format!(
                            "{}@{}",
                            d.get_str(key).unwrap_or("?"),
                            d.get_str("db").unwrap_or("?")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let users = list("authenticatedUsers", "user");
    let roles = list("authenticatedUserRoles", "role");
    let line = format!(
        "{} is logged in as {} with roles {}",
        errors::who(target),
        if users.is_empty() {
            "nobody".to_string()
        } else {
            users.join(", ")
        },
        if roles.is_empty() {
            "(none)".to_string()
        } else {
            roles.join(", ")
        }
    );
    errors::record_identity(line);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_preferences() {
        assert!(parse_read_preference("secondaryPreferred", "t").is_ok());
        assert!(parse_read_preference("secondaryish", "t").is_err());
    }
}
