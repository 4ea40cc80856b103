//! Blocking user writes on a replica set for the cutover (`setUserWriteBlockMode`, 6.0+).
//! While blocked, every write fails with `UserWritesBlocked` (371) — except from users with
//! the `bypassWriteBlockingMode` privilege (the `restore` and `root` roles) when the
//! server enforces auth. Measured on 6.0.5: with auth disabled nobody may bypass, so a
//! tail cannot write into a blocked cluster without auth (see `can_bypass`).
//! The state is read back from `config.user_writes_critical_sections`.

use anyhow::{Context, Result};
use mongodb::bson::{doc, Document, Timestamp};
use mongodb::Client;

/// The error code of a write refused by the block.
pub const BLOCKED: i32 = 371;

/// Block (`true`) or unblock user writes. On a standalone the server refuses (code 20).
pub async fn set(client: &Client, block: bool, side: &str) -> Result<()> {
    let r = client
        .database("admin")
        .run_command(doc! { "setUserWriteBlockMode": 1, "global": block })
        .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if super::errors::code(&e) == Some(20) => Err(crate::exit::usage(format!(
            "{side} is a standalone server: it cannot block user writes (setUserWriteBlockMode needs a replica set)"
        ))),
        Err(e) => Err(e).with_context(|| {
            format!(
                "{} user writes on {side} (needs the setUserWriteBlockMode privilege, e.g. the clusterManager or root role)",
                if block { "blocking" } else { "unblocking" }
            )
        }),
    }
}

/// Whether user writes are blocked now.
pub async fn is_blocked(client: &Client, side: &str) -> Result<bool> {
    let d = client
        .database("config")
        .collection::<Document>("user_writes_critical_sections")
        .find_one(doc! {})
        .await
        .with_context(|| format!("reading the write-block state of {side}"))?;
    Ok(d.is_some_and(|d| d.get_bool("blockUserWrites").unwrap_or(false)))
}

/// Whether this connection's writes pass the block: a probe write into our own state
/// database while it is blocked.
pub async fn can_bypass(client: &Client, side: &str) -> Result<bool> {
    let r = client
        .database(crate::load::state::DB)
        .collection::<Document>("write_probe")
        .update_one(
            doc! { "_id": "probe" },
            doc! { "$set": { "at": mongodb::bson::DateTime::now() } },
        )
        .upsert(true)
        .await;
    match r {
        Ok(_) => Ok(true),
        Err(e) if super::errors::code(&e) == Some(BLOCKED) => Ok(false),
        Err(e) => {
            Err(e).with_context(|| format!("probing whether writes pass the block on {side}"))
        }
    }
}

/// A no-op entry in the oplog, returning its time: every write before it (such as those
/// that raced the block) is at or before this time, so a tail that has passed it has them.
pub async fn note(client: &Client, msg: &str, side: &str) -> Result<Timestamp> {
    let r = client
        .database("admin")
        .run_command(doc! { "appendOplogNote": 1, "data": { "mongoshift": msg } })
        .await
        .with_context(|| format!("writing a note into the oplog of {side}"))?;
    r.get_timestamp("operationTime")
        .with_context(|| format!("no operationTime in the reply of {side}"))
}
