//! The switch's pre-flight with the application's own credentials: connect to NEW with the
//! exact URI to be written, and read (never probe with a write) what its user may do. It
//! must read and write every database the application uses, must not hold cluster-wide or
//! admin rights unless that is asked for, and its default database must be on NEW when it
//! was on OLD. Every refusal is an invalid input (exit 2) and comes before anything changes.

use std::time::Duration;

use anyhow::Result;
use mongodb::Client;

use super::app_uri;
use crate::config::ResolvedTarget;
use crate::mongo::privileges::{Privileges, READ_WRITE};

pub struct Check<'a> {
    /// The URI to be written.
    pub uri: &'a str,
    /// The sinks that get it, for messages.
    pub sinks: String,
    /// NEW's label.
    pub new_l: &'a str,
    /// The databases the application uses (beside the URI's default database).
    pub dbs: &'a [String],
    /// Database names on OLD and on NEW (read with the tool's connections).
    pub old_dbs: &'a [String],
    pub new_dbs: &'a [String],
    pub allow_admin: bool,
    pub timeout: Duration,
}

/// What the check found, for the plan and the history.
pub struct Passed {
    pub user: Option<String>,
    pub dbs: Vec<String>,
    /// The admin rights written anyway (--allow-admin-uri), for a warning.
    pub admin: Vec<String>,
}

impl Check<'_> {
    pub async fn run(&self) -> Result<Passed> {
        let shown = crate::redact::uri(self.uri);
        let new_l = self.new_l;
        let who = format!("the application's URI for {} ({shown})", self.sinks);
        let client = self.connect(&who).await?;
        let p = Privileges::of(&client, &format!("NEW ({new_l}) as {who}")).await?;
        let user = app_uri::user(self.uri);
        let default_db = app_uri::default_db(self.uri);
        let mut dbs: Vec<String> = self.dbs.to_vec();
        if let Some(d) = &default_db {
            if !dbs.contains(d) {
                dbs.push(d.clone());
            }
        }
        if let Some(d) = &default_db {
            if self.old_dbs.contains(d) && !self.new_dbs.contains(d) {
                return Err(crate::exit::usage(format!(
                    "{who} names the database {d}, which is on OLD but not on NEW ({new_l}): the application \
                     would write into an empty database. Migrate it first (`mongoshift migrate --db {d} …`), or fix \
                     the database in the URI. Nothing was changed"
                )));
            }
        }
        if !p.authenticated() {
            // No user: fine only when NEW runs without auth (then anyone may read and write).
            if let Err(e) = client.list_database_names().await {
                return Err(crate::exit::usage(format!(
                    "{who} has no user, and NEW ({new_l}) requires one ({}). Give the application's own user in \
                     --app-uri (or app_uri on the config target). Nothing was changed",
                    crate::redact::scrub(&crate::mongo::errors::describe(&e))
                )));
            }
            return Ok(Passed {
                user: None,
                dbs,
                admin: vec![],
            });
        }
        let u = user.clone().unwrap_or_else(|| p.users.join(", "));
        let admin = p.admin_grants();
        if !admin.is_empty() && !self.allow_admin {
            return Err(crate::exit::usage(format!(
                "{who}: its user {u} holds cluster-wide or admin rights ({}); every application process would \
                 hold them too. Give the application a user with readWrite on its own database(s) only \
                 (--app-uri URI, or app_uri on the config target), or pass --allow-admin-uri to write this URI \
                 anyway. Nothing was changed",
                admin.join("; ")
            )));
        }
        let missing: Vec<String> = dbs
            .iter()
            .filter_map(|d| {
                let m = p.missing_on_db(d, READ_WRITE);
                (!m.is_empty()).then(|| format!("{} on {d}", m.join(", ")))
            })
            .collect();
        if !missing.is_empty() {
            return Err(crate::exit::usage(format!(
                "{who}: its user {u} lacks {} on NEW ({new_l}); the application could not read and write there. \
                 Grant it (e.g. `db.grantRolesToUser(\"{u}\", [{{role: \"readWrite\", db: \"{}\"}}])` on NEW) \
                 or give another URI with --app-uri. Nothing was changed",
                missing.join("; "),
                dbs.first().map(String::as_str).unwrap_or("DB")
            )));
        }
        Ok(Passed {
            user: Some(u),
            dbs,
            admin,
        })
    }

    async fn connect(&self, who: &str) -> Result<Client> {
        crate::redact::register_uri(self.uri);
        let target = ResolvedTarget::from_uri(self.uri);
        let opts = crate::mongo::ConnectOptions {
            timeout: self.timeout,
        };
        match crate::mongo::connect(&target, &opts).await {
            Ok(c) => Ok(c),
            Err(e) => {
                let text = format!("{e:#}");
                let err = anyhow::anyhow!(
                    "NEW ({}) with {who}: {}. Nothing was changed",
                    self.new_l,
                    crate::redact::scrub(&text)
                );
                // Wrong credentials are an input to fix; an unreachable server a runtime failure.
                if text.contains("authentication failed") {
                    Err(crate::exit::usage(err.to_string()))
                } else {
                    Err(err)
                }
            }
        }
    }
}
