//! What a connection's user may do, read from the server (`connectionStatus` with
//! `showPrivileges`), never probed with a write: whether it can read and write a database,
//! whether it holds cluster-wide or admin rights, and whether it may write through a
//! user-write block (`bypassWriteBlockingMode`).
//!
//! A connection with no authenticated user has no privileges listed: on a server with auth
//! it can do nothing, on one without auth it can do everything a client can — except pass a
//! write block (measured on 6.0.5, see `write_block`).

use anyhow::{Context, Result};
use mongodb::bson::{doc, Bson, Document};
use mongodb::Client;

/// The actions the application needs on each of its databases.
pub const READ_WRITE: &[&str] = &["find", "insert", "update", "remove"];

/// Built-in roles that reach beyond one application's databases.
const ADMIN_ROLES: &[&str] = &[
    "root",
    "__system",
    "restore",
    "backup",
    "clusterAdmin",
    "clusterManager",
    "clusterMonitor",
    "hostManager",
    "userAdminAnyDatabase",
    "readWriteAnyDatabase",
    "readAnyDatabase",
    "dbAdminAnyDatabase",
    "atlasAdmin",
];

#[derive(Debug, Clone, Default)]
pub struct Privileges {
    /// `user@db` of each authenticated user.
    pub users: Vec<String>,
    /// `role@db`.
    pub roles: Vec<(String, String)>,
    /// (resource, actions).
    pub grants: Vec<(Document, Vec<String>)>,
}

impl Privileges {
    pub async fn of(client: &Client, side: &str) -> Result<Privileges> {
        let r = client
            .database("admin")
            .run_command(doc! { "connectionStatus": 1, "showPrivileges": true })
            .await
            .with_context(|| {
                format!("reading the privileges of the connection to {side} (connectionStatus)")
            })?;
        Ok(Self::from_reply(&r))
    }

    pub fn from_reply(r: &Document) -> Privileges {
        let info = r.get_document("authInfo").cloned().unwrap_or_default();
        let docs = |k: &str| -> Vec<Document> {
            info.get_array(k)
                .map(|a| a.iter().filter_map(|b| b.as_document().cloned()).collect())
                .unwrap_or_default()
        };
        let s = |d: &Document, k: &str| d.get_str(k).unwrap_or("").to_string();
        Privileges {
            users: docs("authenticatedUsers")
                .iter()
                .map(|u| format!("{}@{}", s(u, "user"), s(u, "db")))
                .collect(),
            roles: docs("authenticatedUserRoles")
                .iter()
                .map(|r| (s(r, "role"), s(r, "db")))
                .collect(),
            grants: docs("authenticatedUserPrivileges")
                .iter()
                .map(|p| {
                    let actions = p
                        .get_array("actions")
                        .map(|a| {
                            a.iter()
                                .filter_map(Bson::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default();
                    (
                        p.get_document("resource").cloned().unwrap_or_default(),
                        actions,
                    )
                })
                .collect(),
        }
    }

    pub fn authenticated(&self) -> bool {
        !self.users.is_empty()
    }

    /// The actions of `wanted` the user lacks on every (non-system) collection of `db`.
    pub fn missing_on_db(&self, db: &str, wanted: &[&str]) -> Vec<String> {
        let covers = |r: &Document| {
            r.get_bool("anyResource").unwrap_or(false)
                || (r.get_str("collection").ok() == Some("")
                    && matches!(r.get_str("db"), Ok(d) if d.is_empty() || d == db))
        };
        wanted
            .iter()
            .filter(|a| {
                !self
                    .grants
                    .iter()
                    .any(|(r, acts)| covers(r) && acts.iter().any(|x| x == *a))
            })
            .map(|a| a.to_string())
            .collect()
    }

    /// Why this user holds more than an application should: its cluster-wide or admin
    /// roles, or privileges on the cluster, on every database, or on `admin`. Empty when none.
    pub fn admin_grants(&self) -> Vec<String> {
        let mut why: Vec<String> = self
            .roles
            .iter()
            .filter(|(r, db)| ADMIN_ROLES.contains(&r.as_str()) || (db == "admin" && r != "read"))
            .map(|(r, db)| format!("role {r}@{db}"))
            .collect();
        if why.is_empty() {
            for (r, acts) in &self.grants {
                let what = if r.get_bool("cluster").unwrap_or(false) {
                    "the cluster"
                } else if r.get_bool("anyResource").unwrap_or(false) {
                    "any resource"
                } else if r.get_str("db").ok() == Some("") {
                    "every database"
                } else if r.get_str("db").ok() == Some("admin") {
                    "the admin database"
                } else {
                    continue;
                };
                why.push(format!("{} on {what}", acts.join(", ")));
            }
        }
        why
    }

    /// Whether this connection may write through a user-write block: an authenticated
    /// user with `bypassWriteBlockingMode` on the cluster (auth off: nobody may).
    pub fn can_bypass_write_block(&self) -> bool {
        self.authenticated()
            && self.grants.iter().any(|(r, acts)| {
                (r.get_bool("cluster").unwrap_or(false)
                    || r.get_bool("anyResource").unwrap_or(false))
                    && acts.iter().any(|a| a == "bypassWriteBlockingMode")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(roles: Vec<Document>, privs: Vec<Document>) -> Document {
        doc! { "authInfo": {
            "authenticatedUsers": [ { "user": "app", "db": "admin" } ],
            "authenticatedUserRoles": roles,
            "authenticatedUserPrivileges": privs,
        }, "ok": 1 }
    }

    #[test]
    fn read_write_on_one_database() {
        let p = Privileges::from_reply(&reply(
            vec![doc! { "role": "readWrite", "db": "predixi" }],
            vec![
                doc! { "resource": { "db": "predixi", "collection": "" }, "actions": ["find", "insert", "update", "remove", "listCollections"] },
                doc! { "resource": { "db": "other", "collection": "" }, "actions": ["find"] },
            ],
        ));
        assert!(p.missing_on_db("predixi", READ_WRITE).is_empty());
        assert_eq!(
            p.missing_on_db("other", READ_WRITE),
            vec!["insert", "update", "remove"]
        );
        assert!(p.admin_grants().is_empty());
        assert!(!p.can_bypass_write_block());
    }

    #[test]
    fn admin_roles_and_grants() {
        let p = Privileges::from_reply(&reply(
            vec![doc! { "role": "readWriteAnyDatabase", "db": "admin" }],
            vec![
                doc! { "resource": { "db": "", "collection": "" }, "actions": ["find", "insert"] },
            ],
        ));
        assert_eq!(p.admin_grants(), vec!["role readWriteAnyDatabase@admin"]);
        let p = Privileges::from_reply(&reply(
            vec![doc! { "role": "custom", "db": "app" }],
            vec![doc! { "resource": { "cluster": true }, "actions": ["bypassWriteBlockingMode"] }],
        ));
        assert_eq!(
            p.admin_grants(),
            vec!["bypassWriteBlockingMode on the cluster"]
        );
        assert!(p.can_bypass_write_block());
    }

    #[test]
    fn no_auth_lists_nothing() {
        let p = Privileges::from_reply(
            &doc! { "authInfo": { "authenticatedUsers": [], "authenticatedUserRoles": [] }, "ok": 1 },
        );
        assert!(!p.authenticated());
        assert!(!p.can_bypass_write_block());
    }
}
