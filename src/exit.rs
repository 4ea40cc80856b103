//! Exit codes and the error markers that select them.
//!
//! Commands return `anyhow::Error`; the marker types below, anywhere in the
//! error's chain, decide the process exit code. Everything else is a runtime
//! failure (1).

use std::fmt;

/// Success.
pub const OK: i32 = 0;
/// A runtime failure: unreachable server, I/O error, a failed write.
pub const RUNTIME: i32 = 1;
/// Invalid input: arguments, config file, URIs, specs. Nothing was changed.
pub const USAGE: i32 = 2;
/// A check ran and found a difference or breached a threshold.
pub const CHECK_FAILED: i32 = 3;

/// The user gave us something we cannot act on; exit 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for UsageError {}

/// A check completed and did not pass; exit 3. The report was already printed.
#[derive(Debug)]
pub struct CheckFailed(pub String);

impl fmt::Display for CheckFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for CheckFailed {}

/// Exit with a given code: a playbook ends with the exit code of the step that failed.
#[derive(Debug)]
pub struct WithCode(pub i32, pub String);

impl fmt::Display for WithCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.1)
    }
}
impl std::error::Error for WithCode {}

/// Shorthand for returning a usage error.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// Shorthand for returning a failed check.
pub fn check_failed(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(CheckFailed(msg.into()))
}

/// The exit code an error maps to.
pub fn code_for(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(w) = cause.downcast_ref::<WithCode>() {
            return w.0;
        }
        if cause.is::<UsageError>() {
            return USAGE;
        }
        if cause.is::<CheckFailed>() {
            return CHECK_FAILED;
        }
    }
    RUNTIME
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn markers_survive_context() {
        let e = Err::<(), _>(usage("bad"))
            .context("loading config")
            .unwrap_err();
        assert_eq!(code_for(&e), USAGE);
        let e = Err::<(), _>(check_failed("drift"))
            .context("check")
            .unwrap_err();
        assert_eq!(code_for(&e), CHECK_FAILED);
        assert_eq!(code_for(&anyhow::anyhow!("io")), RUNTIME);
    }
}
