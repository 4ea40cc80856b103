//! Playbooks: YAML runbooks whose steps are our own commands (plus confirm, wait and
//! exec), checked as a whole before anything runs, run with a checkpoint after every
//! step, resumable, with a dry-run that writes nothing.
//!
//! - `model`: the file, its steps and options, every check with file:line:column;
//! - `interpolate`: `${var}`, `${env.NAME}`, `${steps.ID.FIELD}`;
//! - `kinds`: step kinds read from the CLI's own definition;
//! - `plan`: what each step would run and change;
//! - `runner`, `child`, `wait`: running the steps; `record`: the run records.

pub mod child;
pub mod effects;
pub mod interpolate;
pub mod kinds;
pub mod model;
pub mod plan;
pub mod record;
pub mod runner;
pub mod wait;
