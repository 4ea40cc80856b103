//! The oplog of a restore source, on local disk before anything is written: a backup's or a
//! dump folder's `oplog.bson` (checked against the manifest's sha256 when there is one),
//! an archive's oplog stream, or the file given with `--oplog-file`. It is read twice: once
//! to plan the replay (refusals, the dry run's summary), once to apply it.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};

use anyhow::{Context, Result};

use crate::codec::{self, Compression};
use crate::restore::source::{OplogRef, Source, SourceKind};
use crate::restore::stream;

pub struct OplogFile {
    file: std::fs::File,
    compression: Compression,
    /// Names the oplog in messages.
    pub what: String,
}

impl OplogFile {
    /// Fetch (or spool out of the archive) the source's oplog.
    pub async fn open(src: &Source) -> Result<OplogFile> {
        match (&src.oplog, &src.kind) {
            (
                Some(OplogRef::Object {
                    key,
                    compression,
                    sha256,
                }),
                _,
            ) => Ok(OplogFile {
                // Verified before replay starts: replay must never apply a damaged oplog.
                file: stream::spool_verified(&src.store, key, sha256.clone()).await?,
                compression: *compression,
                what: format!("{}/{key}", src.describe),
            }),
            (Some(OplogRef::Archive), SourceKind::Archive { compression }) => {
                let spool = tempfile::tempfile()
                    .context("creating a temporary file for the archive's oplog")?;
                let key = src.archive_key.clone().unwrap_or_default();
                stream::archive_batches(
                    &src.store,
                    &key,
                    *compression,
                    &src.describe,
                    HashMap::new(),
                    Some(spool.try_clone()?),
                )
                .await?;
                Ok(OplogFile {
                    file: spool,
                    compression: Compression::None,
                    what: format!("{} (oplog)", src.describe),
                })
            }
            (Some(OplogRef::File(path)), _) => {
                let mut file = std::fs::File::open(path).map_err(|e| {
                    crate::exit::usage(format!(
                        "--oplog-file {}: cannot be read ({e}); give the path of a BSON oplog file (mongodump's oplog.bson, or a dump of local.oplog.rs)",
                        path.display()
                    ))
                })?;
                // Gzip by content, as archives are: the name need not say.
                let mut head = [0u8; 2];
                let n = file.read(&mut head).unwrap_or(0);
                let compression = if n == 2 && head == [0x1f, 0x8b] {
                    Compression::Gzip
                } else {
                    Compression::from_name(&path.to_string_lossy())
                };
                Ok(OplogFile {
                    file,
                    compression,
                    what: path.display().to_string(),
                })
            }
            _ => anyhow::bail!("{} has no oplog", src.describe),
        }
    }

    /// An oplog already assembled in a local file (uncompressed), e.g. a point-in-time
    /// restore's base oplog followed by its slices.
    pub fn spooled(file: std::fs::File, what: String) -> OplogFile {
        OplogFile {
            file,
            compression: Compression::None,
            what,
        }
    }

    /// A fresh reader from the start of the oplog, decompressed.
    pub fn reader(&self) -> Result<Box<dyn Read + Send>> {
        let mut f = self.file.try_clone().context("reopening the oplog spool")?;
        f.seek(SeekFrom::Start(0))?;
        codec::decoder(self.compression, std::io::BufReader::new(f))
    }
}
