//! One module per subcommand. Each is thin: resolve inputs, call the engines,
//! report.

pub mod analyze;
pub mod backup;
pub mod backups;
pub mod freeze;
pub mod indexes;
pub mod migrate;
pub mod playbook;
pub mod restore;
pub mod rollback;
pub mod sample;
pub mod status;
pub mod switch;
pub mod verify;
