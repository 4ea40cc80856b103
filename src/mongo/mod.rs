//! Everything that talks to MongoDB: connecting, server health, and (later)
//! namespaces, raw cursors and raw inserts.

pub mod batch;
pub mod connect;
pub mod errors;
pub mod health;
pub mod hello;
pub mod namespaces;
pub mod oplog;
pub mod privileges;
pub mod raw_read;
pub mod raw_write;
pub mod schema;
pub mod write_block;

pub use connect::{connect, ConnectOptions};
pub use hello::Hello;
