//! The cutover's file side: changing the connection string where the application reads it
//! (dotenv files, Kubernetes Secret manifests) without touching any other byte, atomically,
//! and the history that `rollback` reads.

pub mod app_check;
pub mod app_uri;
pub mod dotenv;
pub mod history;
pub mod hooks;
pub mod k8s;
pub mod sink;
pub mod snapshot;
