//! mongoshift: the library behind the `mongoshift` binary.
//!
//! Layers (dependencies point down):
//! - `cli`, `commands`: argument parsing and one module per subcommand;
//! - engines: `mongo` (MongoDB access), `report` (tables, JSON, progress);
//! - engines: `playbook` (runbooks that run the other commands as steps);
//! - foundations: `config` (targets, interpolation), `redact` (secrets), `exit` (exit codes),
//!   `yaml_tree` (YAML with positions, for spec and playbook errors).

pub mod alloc_tuning;
pub mod analysis;
pub mod cli;
pub mod codec;
pub mod commands;
pub mod compare;
pub mod config;
pub mod cutover;
pub mod dump;
pub mod exit;
pub mod follow;
pub mod indexes;
pub mod load;
pub mod migration;
pub mod mongo;
pub mod namespace;
pub mod pipeline;
pub mod pitr;
pub mod playbook;
pub mod rawbson;
pub mod redact;
pub mod report;
pub mod restore;
pub mod sample;
pub mod signals;
pub mod storage;
pub mod yaml_tree;
