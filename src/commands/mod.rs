//! One module per subcommand. Each is thin: resolve inputs, call the engines,
//! report.

pub mod backup;
pub mod backups;
pub mod indexes;
pub mod migrate;
pub mod restore;
pub mod sample;
pub mod status;
pub mod verify;
