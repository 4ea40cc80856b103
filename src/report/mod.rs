//! How results reach people and machines: tables, JSON, messages, progress.

pub mod confirm;
pub mod output;
pub mod progress;
pub mod table;

pub use output::{OutputFormat, Ui};
