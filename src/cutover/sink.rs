//! Where the application reads its connection string: a dotenv file's key or a Kubernetes
//! Secret manifest's key. A sink is read, edited in memory (see `dotenv`, `k8s`), shown as a
//! diff with passwords masked, and written atomically: a temporary file in the same folder,
//! fsynced, renamed over the original, the folder fsynced, the file's mode kept. A file
//! that cannot be replaced by a rename (a single file bind-mounted into a container gives
//! EBUSY) is rewritten in place instead, and the result says so.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{dotenv, k8s};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Dotenv,
    K8sSecret,
}

/// One key of one file.
#[derive(Debug, Clone, Serialize)]
pub struct Sink {
    pub path: PathBuf,
    pub key: String,
    pub format: Format,
}

/// The key the application reads when `PATH:KEY` gives none.
pub const DEFAULT_KEY: &str = "MONGO_URI";

/// A sink's planned change: the file as it is and as it will be.
#[derive(Debug, Clone)]
pub struct Edit {
    pub sink: Sink,
    pub before: String,
    pub after: String,
    /// 1-based lines changed.
    pub lines: Vec<usize>,
    /// The value(s) found before (as the application reads them).
    pub old_values: Vec<String>,
}

/// How a file was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Temporary file, fsync, rename, fsync of the folder.
    Atomic,
    /// Rewritten where it is (the rename was refused, e.g. a bind-mounted file).
    InPlace,
}

/// When `value` holds a password and the file it goes into is readable by its group or by
/// everyone: a warning naming the file, its mode and the fix (the mode itself is kept, as
/// the application's deployment may rely on it).
pub fn exposure(sink: &Sink, value: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    if crate::redact::uri(value) == value {
        return None;
    }
    let mode = std::fs::metadata(&sink.path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "{} will hold a password and is readable by {} (mode {mode:04o}); `chmod 600 {}` keeps it to its owner",
            sink.path.display(),
            if mode & 0o007 != 0 { "everyone" } else { "its group" },
            sink.path.display()
        )
    })
}

pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Sink {
    /// `PATH[:KEY]`.
    pub fn parse(spec: &str, format: Format) -> Result<Sink> {
        // A key is a plain identifier; anything else after a colon is part of the path.
        let (path, key) = match spec.rsplit_once(':') {
            Some((p, k))
                if !p.is_empty()
                    && !k.is_empty()
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                (p, k)
            }
            _ => (spec, DEFAULT_KEY),
        };
        Ok(Sink {
            path: PathBuf::from(path),
            key: key.to_string(),
            format,
        })
    }

    pub fn describe(&self) -> String {
        format!("{}:{}", self.path.display(), self.key)
    }

    pub fn read(&self) -> Result<String> {
        let bytes = std::fs::read(&self.path)
            .with_context(|| format!("reading {}", self.path.display()))?;
        String::from_utf8(bytes)
            .with_context(|| format!("{} is not UTF-8 text", self.path.display()))
    }

    /// The value the application reads now.
    pub fn current(&self) -> Result<Option<String>> {
        let text = self.read()?;
        Ok(match self.format {
            Format::Dotenv => dotenv::get(&text, &self.key),
            Format::K8sSecret => k8s::get(&text, &self.key),
        })
    }

    /// Plan setting the key to `value`; nothing is written. Also checks that the file can
    /// be written, so that a read-only file fails before anything changes.
    pub fn plan(&self, value: &str) -> Result<Edit> {
        let before = self.read()?;
        let (after, lines, old_values) = match self.format {
            Format::Dotenv => {
                let (after, ch) = dotenv::set(&before, &self.key, value)
                    .map_err(|e| crate::exit::usage(format!("{}: {e:#}", self.path.display())))?;
                let lines = ch.iter().map(|c| c.line).collect();
                (after, lines, ch.into_iter().map(|c| c.old).collect())
            }
            Format::K8sSecret => {
                let (after, ch) = k8s::set(&before, &self.key, value)
                    .map_err(|e| crate::exit::usage(format!("{}: {e:#}", self.path.display())))?;
                let lines = ch.iter().map(|c| c.line).collect();
                (after, lines, ch.into_iter().map(|c| c.old).collect())
            }
        };
        std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .with_context(|| {
                format!(
                    "{} cannot be written (check its owner and mode)",
                    self.path.display()
                )
            })?;
        Ok(Edit {
            sink: self.clone(),
            before,
            after,
            lines,
            old_values,
        })
    }
}

impl Edit {
    /// Put `original` back in place of `now` (a rollback): the whole file, byte for byte.
    /// The file is checked to be writable, as `Sink::plan` does.
    pub fn restore(sink: &Sink, now: String, original: String) -> Result<Edit> {
        let a: Vec<&str> = now.lines().collect();
        let b: Vec<&str> = original.lines().collect();
        // Shown: the lines binding the key. Other lines someone changed since the switch
        // are named (by number and key) in rollback's warning, never shown: they may hold
        // other secrets.
        let binds = |l: Option<&&str>| {
            l.is_some_and(|l| dotenv::get(&format!("{l}\n"), &sink.key).is_some())
        };
        let k8s = sink.format == Format::K8sSecret;
        let mut lines: Vec<usize> = (0..a.len().max(b.len()))
            .filter(|&i| a.get(i) != b.get(i) && (k8s || binds(a.get(i)) || binds(b.get(i))))
            .map(|i| i + 1)
            .collect();
        if k8s {
            // Shown as the key's decoded value, once.
            lines.truncate(1);
        }
        let current = match sink.format {
            Format::Dotenv => dotenv::get(&now, &sink.key),
            Format::K8sSecret => k8s::get(&now, &sink.key),
        };
        std::fs::OpenOptions::new()
            .append(true)
            .open(&sink.path)
            .with_context(|| {
                format!(
                    "{} cannot be written (check its owner and mode)",
                    sink.path.display()
                )
            })?;
        Ok(Edit {
            sink: sink.clone(),
            before: now,
            after: original,
            lines,
            old_values: current.into_iter().collect(),
        })
    }

    /// The changed lines as a diff, passwords masked (a Secret's base64 shown decoded).
    pub fn diff(&self, new_value: &str) -> String {
        let before: Vec<&str> = self.before.lines().collect();
        let after: Vec<&str> = self.after.lines().collect();
        let mut out = format!(
            "--- {}\n+++ {}\n",
            self.sink.describe(),
            self.sink.describe()
        );
        for (i, &n) in self.lines.iter().enumerate() {
            let (b, a) = match self.sink.format {
                Format::Dotenv => (
                    before.get(n - 1).unwrap_or(&"").to_string(),
                    after.get(n - 1).unwrap_or(&"").to_string(),
                ),
                Format::K8sSecret => (
                    format!(
                        "{}: {}  (decoded)",
                        self.sink.key,
                        self.old_values.get(i).map(String::as_str).unwrap_or("")
                    ),
                    format!("{}: {new_value}  (decoded)", self.sink.key),
                ),
            };
            out.push_str(&format!(
                "@@ line {n} @@\n-{}\n+{}\n",
                crate::redact::scrub(b.trim_end_matches('\r')),
                crate::redact::scrub(a.trim_end_matches('\r'))
            ));
        }
        out
    }

    /// Write the new content (see the module comment). The file must still be what was
    /// planned: a file changed meanwhile is not overwritten.
    pub fn write(&self) -> Result<WriteMode> {
        let now = self.sink.read()?;
        if now != self.before {
            anyhow::bail!(
                "{} changed since the plan was made; nothing written, run again",
                self.sink.path.display()
            );
        }
        write_file(&self.sink.path, self.after.as_bytes())
    }

    /// Put the original content back (a later step failed).
    pub fn undo(&self) -> Result<WriteMode> {
        write_file(&self.sink.path, self.before.as_bytes())
    }
}

/// The sinks of `--env-file` and `--k8s-secret` options.
pub fn from_args(env_files: &[String], k8s_secrets: &[String]) -> Result<Vec<Sink>> {
    let mut out = Vec::new();
    for s in env_files {
        out.push(Sink::parse(s, Format::Dotenv)?);
    }
    for s in k8s_secrets {
        out.push(Sink::parse(s, Format::K8sSecret)?);
    }
    Ok(out)
}

/// Write every edit; when one fails, put back those already written and fail.
pub fn write_all(edits: &[Edit]) -> Result<Vec<WriteMode>> {
    let mut modes = Vec::new();
    for (i, e) in edits.iter().enumerate() {
        match e.write() {
            Ok(m) => modes.push(m),
            Err(err) => {
                for done in &edits[..i] {
                    let _ = done.undo();
                }
                return Err(err.context(format!(
                    "writing {}; the files written before it were put back",
                    e.sink.describe()
                )));
            }
        }
    }
    Ok(modes)
}

fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Replace `path`'s content with `bytes`, atomically where the file system allows.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<WriteMode> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let dir = folder_of(path);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.mongoshift-{}.tmp", std::process::id()));
    let atomic = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(meta.permissions().mode()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    match atomic {
        Ok(()) => Ok(WriteMode::Atomic),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            // EBUSY (a bind-mounted file), EXDEV, or a folder we may not create files in:
            // write the file itself.
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(path)
                .with_context(|| {
                    format!(
                        "writing {} (the atomic replace failed too: {e})",
                        path.display()
                    )
                })?;
            f.write_all(bytes)
                .and_then(|_| f.sync_all())
                .with_context(|| format!("writing {} in place", path.display()))?;
            Ok(WriteMode::InPlace)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_key() {
        let s = Sink::parse(".env:DATABASE_URL", Format::Dotenv).unwrap();
        assert_eq!(
            (s.path.to_str().unwrap(), s.key.as_str()),
            (".env", "DATABASE_URL")
        );
        let s = Sink::parse("deploy/.env", Format::Dotenv).unwrap();
        assert_eq!(s.key, DEFAULT_KEY);
    }

    #[test]
    fn atomic_write_keeps_the_mode_and_undo_restores() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".env");
        std::fs::write(&p, "# app\nMONGO_URI=mongodb://u:old@h/x\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let s = Sink::parse(p.to_str().unwrap(), Format::Dotenv).unwrap();
        let e = s.plan("mongodb://u:new@h2/x").unwrap();
        assert!(e.diff("mongodb://u:new@h2/x").contains("u:****@h2"));
        assert!(!e.diff("x").contains("new@"));
        assert_eq!(e.write().unwrap(), WriteMode::Atomic);
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "# app\nMONGO_URI=mongodb://u:new@h2/x\n"
        );
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        e.undo().unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "# app\nMONGO_URI=mongodb://u:old@h/x\n"
        );
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn restore_puts_back_every_byte_and_shows_only_the_key() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".env");
        let original = "# app\r\nMONGO_URI=\"mongodb://app:old@h/x?w=1\"\r\n";
        let now = "# app\r\nMONGO_URI=\"mongodb://app:new@h2/x?w=1\"\r\nTOKEN=t0ken\r\n";
        std::fs::write(&p, now).unwrap();
        let s = Sink::parse(p.to_str().unwrap(), Format::Dotenv).unwrap();
        let e = Edit::restore(&s, now.into(), original.into()).unwrap();
        assert_eq!(e.lines, vec![2]);
        let diff = e.diff("mongodb://app:old@h/x?w=1");
        assert!(
            diff.contains("app:****@h2") && !diff.contains("t0ken"),
            "{diff}"
        );
        e.write().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), original.as_bytes());
    }
}
