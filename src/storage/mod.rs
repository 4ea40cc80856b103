//! Object storage with two implementations, a local folder and S3.
//! Streaming readers and writers: no object is ever held whole in memory
//! (except the small ones fetched with `get`).

pub mod local;
pub mod location;
pub mod s3;

use anyhow::Result;
use tokio::io::AsyncRead;

pub use location::Location;
pub use s3::S3Settings;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Key relative to the store's root, '/'-separated.
    pub key: String,
    pub size: u64,
}

#[derive(Clone)]
pub enum Store {
    Local(local::LocalStore),
    S3(s3::S3Store),
}

impl Store {
    pub async fn open(location: &Location, s3: &S3Settings) -> Result<Store> {
        Ok(match location {
            Location::Local(p) => Store::Local(local::LocalStore::new(p.clone())),
            Location::S3 { bucket, prefix } => {
                Store::S3(s3::S3Store::connect(bucket, prefix, s3).await?)
            }
        })
    }

    /// The same store rooted at a sub-folder (one backup inside the backups location).
    /// Shares the record of pending writes, so aborting either aborts both.
    pub fn child(&self, name: &str) -> Store {
        match self {
            Store::Local(s) => Store::Local(s.child(name)),
            Store::S3(s) => Store::S3(s.child(name)),
        }
    }

    /// Prove we can write here before reading anything from MongoDB.
    pub async fn check_writable(&self) -> Result<()> {
        match self {
            Store::Local(s) => s.check_writable().await,
            Store::S3(s) => s.check_bucket().await,
        }
    }

    pub async fn check_readable(&self) -> Result<()> {
        match self {
            Store::Local(s) => s.check_readable().await,
            Store::S3(s) => s.check_bucket().await,
        }
    }

    /// Start a streaming write of `key`; `size_estimate` picks the S3 part size.
    pub async fn create(&self, key: &str, size_estimate: u64) -> Result<ObjectWriter> {
        Ok(match self {
            Store::Local(s) => ObjectWriter::Local(s.create(key).await?),
            Store::S3(s) => ObjectWriter::S3(s.create(key, size_estimate).await),
        })
    }

    /// Write a small object in one go.
    pub async fn put(&self, key: &str, data: Vec<u8>) -> Result<()> {
        let mut w = self.create(key, data.len() as u64).await?;
        match w.write(&data).await {
            Ok(()) => w.finish().await.map(|_| ()),
            Err(e) => {
                w.abort().await;
                Err(e)
            }
        }
    }

    pub async fn get(&self, key: &str) -> Result<Vec<u8>> {
        match self {
            Store::Local(s) => s.get(key).await,
            Store::S3(s) => s.get(key).await,
        }
    }

    pub async fn open_read(&self, key: &str) -> Result<Box<dyn AsyncRead + Send + Unpin>> {
        match self {
            Store::Local(s) => s.open(key).await,
            Store::S3(s) => s.open(key).await,
        }
    }

    /// Size of `key`, or None when it does not exist.
    pub async fn head(&self, key: &str) -> Result<Option<u64>> {
        match self {
            Store::Local(s) => s.head(key).await,
            Store::S3(s) => s.head(key).await,
        }
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        match self {
            Store::Local(s) => s.list(prefix).await,
            Store::S3(s) => s.list(prefix).await,
        }
    }

    pub async fn list_children(&self, prefix: &str) -> Result<Vec<String>> {
        match self {
            Store::Local(s) => s.list_children(prefix).await,
            Store::S3(s) => s.list_children(prefix).await,
        }
    }

    pub async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        match self {
            Store::Local(s) => s.delete_prefix(prefix).await,
            Store::S3(s) => s.delete_prefix(prefix).await,
        }
    }

    /// Unfinished writes below `prefix`: S3 multipart uploads, or `.partial` files.
    pub async fn pending_writes(&self, prefix: &str) -> Result<Vec<String>> {
        match self {
            Store::Local(s) => Ok(s
                .list(prefix)
                .await?
                .into_iter()
                .filter(|o| o.key.ends_with(local::PARTIAL_SUFFIX))
                .map(|o| o.key)
                .collect()),
            Store::S3(s) => Ok(s
                .pending_uploads(prefix)
                .await?
                .into_iter()
                .map(|(k, _)| k)
                .collect()),
        }
    }

    /// Abort unfinished multipart uploads below `prefix`, whoever started them
    /// (local folders have none: their partial files are removed by `abort_pending`).
    pub async fn abort_uploads_under(&self, prefix: &str) -> Result<()> {
        match self {
            Store::Local(_) => Ok(()),
            Store::S3(s) => s.abort_uploads_under(prefix).await,
        }
    }

    /// Abort every write this process started and has not finished.
    pub async fn abort_pending(&self) {
        match self {
            Store::Local(s) => s.abort_pending().await,
            Store::S3(s) => s.abort_pending().await,
        }
    }
}

pub enum ObjectWriter {
    Local(local::LocalWriter),
    S3(s3::S3Writer),
}

impl ObjectWriter {
    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        match self {
            ObjectWriter::Local(w) => w.write(data).await,
            ObjectWriter::S3(w) => w.write(data).await,
        }
    }

    /// Make the object visible under its name; returns its size.
    pub async fn finish(self) -> Result<u64> {
        match self {
            ObjectWriter::Local(w) => w.finish().await,
            ObjectWriter::S3(w) => w.finish().await,
        }
    }

    pub async fn abort(self) {
        match self {
            ObjectWriter::Local(w) => w.abort().await,
            ObjectWriter::S3(w) => w.abort().await,
        }
    }
}
