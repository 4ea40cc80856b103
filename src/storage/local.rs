//! A folder on a local (or mounted) file system as an object store.
//!
//! Objects are written to `NAME.partial` and renamed into place when
//! complete, so a crash never leaves a truncated file under the real name.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use tokio::io::{AsyncRead, AsyncWriteExt};

use super::ObjectMeta;

pub const PARTIAL_SUFFIX: &str = ".partial";

#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    /// Partial files being written, removed by `abort_pending` on failure or Ctrl-C.
    pending: Arc<Mutex<HashSet<PathBuf>>>,
}

impl LocalStore {
    pub fn new(root: PathBuf) -> LocalStore {
        LocalStore {
            root,
            pending: Arc::default(),
        }
    }

    pub fn child(&self, name: &str) -> LocalStore {
        LocalStore {
            root: self.root.join(name),
            pending: self.pending.clone(),
        }
    }

    pub fn path(&self, key: &str) -> PathBuf {
        if key.is_empty() {
            self.root.clone()
        } else {
            self.root.join(key)
        }
    }

    /// Create the root and prove we can write there.
    pub async fn check_writable(&self) -> Result<()> {
        tokio::fs::create_dir_all(&self.root)
            .await
            .with_context(|| {
                format!(
                    "cannot create backup folder {}; check the path and its permissions",
                    self.root.display()
                )
            })?;
        let probe = self.root.join(".mongoshift-write-test");
        tokio::fs::write(&probe, b"ok").await.with_context(|| {
            format!(
                "backup folder {} is not writable; check its permissions or choose another --to",
                self.root.display()
            )
        })?;
        let _ = tokio::fs::remove_file(&probe).await;
        Ok(())
    }

    pub async fn check_readable(&self) -> Result<()> {
        // A folder that is not there is a wrong path (exit 2), the same answer whichever
        // command or form (`…/latest` or not) asked; an unreadable one is an I/O failure.
        let meta = match tokio::fs::metadata(&self.root).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(crate::exit::usage(format!(
                    "folder {} does not exist; check the path (`mongoshift backups list --from DIR` lists the backups in a folder)",
                    self.root.display()
                )))
            }
            r => r.with_context(|| format!("folder {} is not readable", self.root.display()))?,
        };
        anyhow::ensure!(meta.is_dir(), "{} is not a folder", self.root.display());
        Ok(())
    }

    pub async fn create(&self, key: &str) -> Result<LocalWriter> {
        let path = self.path(key);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .with_context(|| format!("creating folder {}", parent.display()))?;
        }
        let partial = partial_path(&path);
        let file = tokio::fs::File::create(&partial)
            .await
            .with_context(|| format!("creating {}", partial.display()))?;
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(partial.clone());
        Ok(LocalWriter {
            file: tokio::io::BufWriter::with_capacity(1 << 20, file),
            partial,
            path,
            written: 0,
            pending: self.pending.clone(),
        })
    }

    pub async fn get(&self, key: &str) -> Result<Vec<u8>> {
        let path = self.path(key);
        tokio::fs::read(&path)
            .await
            .with_context(|| format!("reading {}", path.display()))
    }

    pub async fn open(&self, key: &str) -> Result<Box<dyn AsyncRead + Send + Unpin>> {
        let path = self.path(key);
        let f = tokio::fs::File::open(&path)
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Box::new(tokio::io::BufReader::with_capacity(1 << 20, f)))
    }

    pub async fn head(&self, key: &str) -> Result<Option<u64>> {
        match tokio::fs::metadata(self.path(key)).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("checking {}", self.path(key).display())),
        }
    }

    /// Every file below `prefix`, keys relative to the root, sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let root = self.root.clone();
        let start = self.path(prefix);
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk(&root, &start, &mut out)?;
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await?
    }

    /// Immediate sub-folders of `prefix`.
    pub async fn list_children(&self, prefix: &str) -> Result<Vec<String>> {
        let dir = self.path(prefix);
        let mut out = Vec::new();
        let mut rd = match tokio::fs::read_dir(&dir).await {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        };
        while let Some(entry) = rd.next_entry().await? {
            if entry.file_type().await?.is_dir() {
                out.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        out.sort();
        Ok(out)
    }

    pub async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        let path = self.path(prefix);
        match tokio::fs::remove_dir_all(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("deleting {}", path.display())),
        }
    }

    pub async fn abort_pending(&self) {
        let paths: Vec<PathBuf> = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        for p in paths {
            let _ = tokio::fs::remove_file(&p).await;
        }
    }
}

/// `NAME.partial`, or, when that would pass the 255-byte file-name limit (a long
/// collection name's `…%24<hash>.metadata.json.gz` is already 255 bytes, as mongodump
/// makes it), NAME cut short and told apart from its siblings by a hash of the whole name.
fn partial_path(path: &Path) -> PathBuf {
    const MAX_NAME: usize = 255;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.len() + PARTIAL_SUFFIX.len() <= MAX_NAME {
        let mut s = path.as_os_str().to_owned();
        s.push(PARTIAL_SUFFIX);
        return PathBuf::from(s);
    }
    let hash = crate::pipeline::sha256_hex(name.as_bytes());
    let mut keep = MAX_NAME - PARTIAL_SUFFIX.len() - 1 - 16;
    while !name.is_char_boundary(keep) {
        keep -= 1;
    }
    path.with_file_name(format!("{}~{}{PARTIAL_SUFFIX}", &name[..keep], &hash[..16]))
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<ObjectMeta>) -> Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    for entry in rd {
        let entry = entry?;
        let path = entry.path();
        let ft = entry.file_type()?;
        if ft.is_dir() {
            walk(root, &path, out)?;
        } else if ft.is_file() {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push(ObjectMeta {
                key: rel.to_string_lossy().replace('\\', "/"),
                size: entry.metadata()?.len(),
            });
        }
    }
    Ok(())
}

pub struct LocalWriter {
    file: tokio::io::BufWriter<tokio::fs::File>,
    partial: PathBuf,
    path: PathBuf,
    written: u64,
    pending: Arc<Mutex<HashSet<PathBuf>>>,
}

impl LocalWriter {
    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.file
            .write_all(data)
            .await
            .with_context(|| format!("writing {}", self.partial.display()))?;
        self.written += data.len() as u64;
        Ok(())
    }

    pub async fn finish(mut self) -> Result<u64> {
        let ctx = || format!("finishing {}", self.path.display());
        self.file.flush().await.with_context(ctx)?;
        // Durable before it is visible under its real name.
        self.file.get_ref().sync_all().await.with_context(ctx)?;
        tokio::fs::rename(&self.partial, &self.path)
            .await
            .with_context(ctx)?;
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.partial);
        Ok(self.written)
    }

    pub async fn abort(self) {
        let _ = tokio::fs::remove_file(&self.partial).await;
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.partial);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_names_fit_the_file_name_limit() {
        let short = Path::new("/b/db/users.bson.gz");
        assert_eq!(
            partial_path(short),
            Path::new("/b/db/users.bson.gz.partial")
        );
        // A long collection's metadata name, as mongodump makes it: 255 bytes already.
        let long = format!(
            "{}%24{}.metadata.json.gz",
            "%E6".repeat(69) + "%",
            "h".repeat(27)
        );
        assert_eq!(long.len(), 255);
        let p = partial_path(&Path::new("/b/db").join(&long));
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(
            name.len() <= 255 && name.ends_with(PARTIAL_SUFFIX),
            "{name}"
        );
        assert_eq!(p.parent(), Some(Path::new("/b/db")));
        let other = partial_path(&Path::new("/b/db").join(long.replace(".gz", ".zz")));
        assert_ne!(
            p, other,
            "siblings with a common prefix get distinct partial names"
        );
    }
}
