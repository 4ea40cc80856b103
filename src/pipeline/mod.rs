//! Bounded stages between a producer of raw bytes, a compressor, and an
//! object writer. Memory is bounded by the channel capacities and chunk sizes,
//! never by how much data flows through.

pub mod throttle;

use std::future::Future;
use std::io::Write;

use anyhow::{Context, Result};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::codec::{Compression, Encoder};
use crate::storage::Store;

/// Raw chunk size handed from a reader to the compressor.
pub const RAW_CHUNK: usize = 4 << 20;
/// Compressed chunk size handed from the compressor to the writer.
pub const OUT_CHUNK: usize = 1 << 20;
/// Chunks queued between stages.
const RAW_QUEUE: usize = 2;
const OUT_QUEUE: usize = 4;

/// Collects documents into RAW_CHUNK-sized chunks of concatenated BSON for the
/// compressor stage, so readers send a few large messages instead of many small ones.
pub struct ChunkSender {
    tx: mpsc::Sender<Bytes>,
    buf: bytes::BytesMut,
}

impl ChunkSender {
    pub fn new(tx: mpsc::Sender<Bytes>) -> ChunkSender {
        ChunkSender {
            tx,
            buf: bytes::BytesMut::with_capacity(RAW_CHUNK + (1 << 20)),
        }
    }

    pub async fn push(&mut self, doc: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(doc);
        if self.buf.len() >= RAW_CHUNK {
            let chunk = self.buf.split().freeze();
            self.tx.send(chunk).await.map_err(|_| PipelineClosed)?;
            self.buf.reserve(RAW_CHUNK + (1 << 20));
        }
        Ok(())
    }

    pub async fn finish(self) -> Result<()> {
        if !self.buf.is_empty() {
            self.tx
                .send(self.buf.freeze())
                .await
                .map_err(|_| PipelineClosed)?;
        }
        Ok(())
    }
}

/// A producer stopped because a later stage failed; the later stage's error is the one to report.
#[derive(Debug)]
pub struct PipelineClosed;

impl std::fmt::Display for PipelineClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the pipeline was closed by a later stage")
    }
}
impl std::error::Error for PipelineClosed {}

#[derive(Debug, Clone, Copy)]
pub struct CodecSpec {
    pub compression: Compression,
    pub level: i32,
    /// zstd worker threads for this stream.
    pub threads: u32,
}

#[derive(Debug, Clone)]
pub struct StoredObject {
    pub key: String,
    pub stored_bytes: u64,
    /// Hex SHA-256 of the bytes as stored (after compression).
    pub sha256: String,
}

/// Run `produce` (which sends raw chunks into the channel it is given) through the
/// compressor into a new object `key`. The object becomes visible only if every
/// stage succeeded; otherwise it is aborted and the root cause is returned.
pub async fn stream_to_object<F, Fut, T>(
    store: &Store,
    key: &str,
    size_estimate: u64,
    codec: CodecSpec,
    produce: F,
) -> Result<(T, StoredObject)>
where
    F: FnOnce(mpsc::Sender<Bytes>) -> Fut,
    Fut: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let (raw_tx, raw_rx) = mpsc::channel::<Bytes>(RAW_QUEUE);
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(OUT_QUEUE);
    let producer = tokio::spawn(produce(raw_tx));
    let compressor = tokio::task::spawn_blocking(move || compress(raw_rx, out_tx, codec));
    let mut writer = match store.create(key, size_estimate).await {
        Ok(w) => w,
        Err(e) => {
            producer.abort();
            return Err(e);
        }
    };
    let mut write_err = None;
    while let Some(chunk) = out_rx.recv().await {
        if let Err(e) = writer.write(&chunk).await {
            write_err = Some(e);
            break;
        }
    }
    drop(out_rx);
    let compressed = compressor.await.context("compressor task panicked");
    let produced = producer.await.context("reader task panicked");
    let outcome = settle(write_err, produced, compressed);
    match outcome {
        Ok((v, stored_bytes, sha256)) => {
            let size = writer.finish().await?;
            debug_assert_eq!(size, stored_bytes);
            Ok((
                v,
                StoredObject {
                    key: key.to_string(),
                    stored_bytes,
                    sha256,
                },
            ))
        }
        Err(e) => {
            writer.abort().await;
            Err(e)
        }
    }
}

/// Pick the root cause when stages fail: a write error explains why the others
/// stopped; a reader error beats the compressor's; `PipelineClosed` is never the cause.
fn settle<T>(
    write_err: Option<anyhow::Error>,
    produced: Result<Result<T>>,
    compressed: Result<Result<(u64, String)>>,
) -> Result<(T, u64, String)> {
    if let Some(e) = write_err {
        return Err(e);
    }
    match (produced.and_then(|r| r), compressed.and_then(|r| r)) {
        (Ok(v), Ok((n, h))) => Ok((v, n, h)),
        (Err(e), _) if !e.is::<PipelineClosed>() => Err(e),
        (_, Err(e)) => Err(e),
        (Err(e), Ok(_)) => Err(e),
    }
}

/// The blocking compressor stage: raw chunks in, compressed chunks out, hashed on the way.
fn compress(
    mut rx: mpsc::Receiver<Bytes>,
    tx: mpsc::Sender<Bytes>,
    codec: CodecSpec,
) -> Result<(u64, String)> {
    let sink = HashingSender::new(tx);
    let mut enc = Encoder::new(codec.compression, codec.level, codec.threads, sink)?;
    while let Some(chunk) = rx.blocking_recv() {
        enc.write_all(&chunk).context("compressing")?;
    }
    let sink = enc.finish().context("finishing the compressed stream")?;
    sink.close()
}

/// Forwards bytes in OUT_CHUNK pieces to the writer, hashing and counting them.
struct HashingSender {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
    hasher: Sha256,
    count: u64,
}

impl HashingSender {
    fn new(tx: mpsc::Sender<Bytes>) -> Self {
        HashingSender {
            tx,
            buf: Vec::with_capacity(OUT_CHUNK),
            hasher: Sha256::new(),
            count: 0,
        }
    }

    fn send_buf(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(OUT_CHUNK));
        self.hasher.update(&chunk);
        self.count += chunk.len() as u64;
        self.tx
            .blocking_send(Bytes::from(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, PipelineClosed))
    }

    fn close(mut self) -> Result<(u64, String)> {
        self.send_buf()?;
        Ok((self.count, hex(&self.hasher.finalize())))
    }
}

impl Write for HashingSender {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= OUT_CHUNK {
            self.send_buf()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Hashes (SHA-256) and counts the stored bytes a reader passes through, so an object's
/// checksum is checked in the same pass that decompresses it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    /// Bytes read so far, for error messages.
    pub count: u64,
}

impl<R: std::io::Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Read what is left (trailers a decoder did not need) and return the hex digest.
    pub fn finish(mut self) -> std::io::Result<String> {
        std::io::copy(&mut self, &mut std::io::sink())?;
        Ok(hex(&self.hasher.finalize()))
    }
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a small in-memory object, hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}
