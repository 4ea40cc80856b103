//! How results reach people and machines: tables, JSON, messages, progress.

pub mod output;
pub mod table;

pub use output::{OutputFormat, Ui};
