//! The exact bytes of each sink before and after a switch, kept beside the history
//! (`.mongoshift/snapshots/<sha256>`, folder 700, files 600) so that `rollback` can put back
//! what was there byte for byte, and say which lines someone changed since. The history
//! names them by checksum only; their content (credentials included) never reaches output.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::sink::sha256;

/// The snapshot folder next to `history`.
pub fn dir_for(history: &Path) -> PathBuf {
    history
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
        .join("snapshots")
}

/// Keep `bytes` under their checksum (idempotent); returns the checksum.
pub fn save(history: &Path, bytes: &[u8]) -> Result<String> {
    let dir = dir_for(history);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    // An existing folder keeps its mode from before; these files hold credentials.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {} to its owner", dir.display()))?;
    let sum = sha256(bytes);
    let path = dir.join(&sum);
    if load(history, &sum).is_ok() {
        return Ok(sum);
    }
    let tmp = dir.join(format!(".{sum}.{}.tmp", std::process::id()));
    (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&dir)?.sync_all()
    })()
    .with_context(|| format!("keeping a copy of a file in {}", dir.display()))?;
    Ok(sum)
}

/// The bytes kept under `sum`, checked against it.
pub fn load(history: &Path, sum: &str) -> Result<Vec<u8>> {
    let path = dir_for(history).join(sum);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    if sha256(&bytes) != sum {
        anyhow::bail!(
            "{} does not match its checksum (it was changed or damaged)",
            path.display()
        );
    }
    Ok(bytes)
}

/// What differs between `expected` and `now`, by line number and (for `KEY=value` or
/// `key: value` lines) key name, never by value: the lines may hold credentials.
pub fn changed_lines(expected: &str, now: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = now.lines().collect();
    let name = |l: &str| -> String {
        let l = l.trim_start().trim_start_matches("export ").trim_start();
        match l.find(['=', ':']) {
            Some(i) if i > 0 && !l.starts_with('#') => format!(" ({})", l[..i].trim()),
            _ if l.starts_with('#') => " (a comment)".into(),
            _ => String::new(),
        }
    };
    let mut out = Vec::new();
    for i in 0..a.len().max(b.len()) {
        match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) if x == y => {}
            (Some(x), Some(y)) => out.push(format!(
                "line {} changed{}",
                i + 1,
                name(if name(y).is_empty() { x } else { y })
            )),
            (Some(x), None) => out.push(format!("line {} removed{}", i + 1, name(x))),
            (None, Some(y)) => out.push(format!("line {} added{}", i + 1, name(y))),
            (None, None) => {}
        }
        if out.len() == 5 {
            out.push("…".into());
            break;
        }
    }
    if out.is_empty() {
        out.push("line endings or the final newline changed".into());
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_private_and_checked() {
        let d = tempfile::tempdir().unwrap();
        let h = d.path().join(".mongoshift/history.jsonl");
        let sum = save(&h, b"MONGO_URI=mongodb://u:p@h/x\n").unwrap();
        assert_eq!(save(&h, b"MONGO_URI=mongodb://u:p@h/x\n").unwrap(), sum);
        let p = dir_for(&h).join(&sum);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(dir_for(&h)).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(load(&h, &sum).unwrap(), b"MONGO_URI=mongodb://u:p@h/x\n");
        std::fs::write(&p, "x").unwrap();
        assert!(load(&h, &sum).is_err());
    }

    #[test]
    fn changes_named_without_values() {
        let t = changed_lines("A=1\nMONGO_URI=x\n", "A=2\nMONGO_URI=x\nTOKEN=s3cr3t\n");
        assert_eq!(t, "line 1 changed (A), line 3 added (TOKEN)");
        assert!(!t.contains("s3cr3t"));
    }
}
