//! Where backups live: `s3://bucket/prefix`, `file:///abs/dir`, or a plain path.

use std::fmt;
use std::path::PathBuf;

use anyhow::Result;

use crate::exit::usage;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    S3 { bucket: String, prefix: String },
    Local(PathBuf),
}

impl Location {
    pub fn parse(s: &str) -> Result<Location> {
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(usage(format!(
                    "backup location '{s}' has no bucket; write s3://BUCKET/PREFIX"
                )));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        if let Some(path) = s.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(usage(format!(
                    "backup location '{s}' must be an absolute file URL (file:///abs/dir), or a plain path"
                )));
            }
            return Ok(Location::Local(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(usage(format!(
                "backup location '{s}' uses the unsupported scheme '{scheme}'; use s3://bucket/prefix, file:///dir or a path"
            )));
        }
        if s.is_empty() {
            return Err(usage("backup location is empty"));
        }
        Ok(Location::Local(PathBuf::from(s)))
    }

    /// The location of a child "folder" (e.g. one backup inside the backups location).
    pub fn join(&self, child: &str) -> Location {
        match self {
            Location::S3 { bucket, prefix } => Location::S3 {
                bucket: bucket.clone(),
                prefix: join_key(prefix, child),
            },
            Location::Local(p) => Location::Local(p.join(child)),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            Location::Local(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Join object-key segments with exactly one '/'.
pub fn join_key(a: &str, b: &str) -> String {
    match (a.trim_end_matches('/'), b.trim_start_matches('/')) {
        ("", b) => b.to_string(),
        (a, "") => a.to_string(),
        (a, b) => format!("{a}/{b}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        assert_eq!(
            Location::parse("s3://b/mongo/x/").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: "mongo/x".into()
            }
        );
        assert_eq!(
            Location::parse("s3://b").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            Location::parse("file:///tmp/x").unwrap(),
            Location::Local("/tmp/x".into())
        );
        assert_eq!(
            Location::parse("backups").unwrap(),
            Location::Local("backups".into())
        );
        assert!(Location::parse("gs://b/x").is_err());
        assert!(Location::parse("s3:///x").is_err());
        assert!(Location::parse("file://rel").is_err());
    }

    #[test]
    fn joins() {
        assert_eq!(join_key("", "a"), "a");
        assert_eq!(join_key("p/", "/a"), "p/a");
        let l = Location::parse("s3://b/p").unwrap().join("id1");
        assert_eq!(l.to_string(), "s3://b/p/id1");
    }
}
