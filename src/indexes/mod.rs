//! Declarative index specs: parsing and linting YAML, normalizing live indexes,
//! and planning the changes that make a database match its specs.

pub mod plan;
pub mod spec;
