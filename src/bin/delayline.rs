//! A delay line for benchmarks (`scripts/bench wan`): a TCP proxy on loopback that delivers
//! every chunk it reads D ms after it arrived, in order, in both directions, so that a
//! server on this machine looks like one across a network with a round trip of 2·D.
//! Bandwidth is not limited; each direction holds at most `QUEUED` chunks in flight, which
//! pushes back on the sender like a full socket buffer would.
//!
//!     delayline LISTEN_ADDR TARGET_ADDR ONE_WAY_DELAY_MS
//!
//! Prints `listening on ADDR` once it accepts connections; runs until killed. Never part
//! of mongoshift itself.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Chunks in flight per direction at most.
const QUEUED: usize = 4096;
/// Bytes read at once.
const CHUNK: usize = 64 * 1024;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (listen, target, delay) = match &args[..] {
        [_, l, t, d] => match (
            l.parse::<SocketAddr>(),
            t.parse::<SocketAddr>(),
            d.parse::<u64>(),
        ) {
            (Ok(l), Ok(t), Ok(d)) => (l, t, Duration::from_millis(d)),
            _ => usage(),
        },
        _ => usage(),
    };
    let listener = match TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("delayline: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    println!("listening on {}", listener.local_addr().unwrap_or(listen));
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let server = match TcpStream::connect(target).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("delayline: cannot reach {target}: {e}");
                    return;
                }
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::join!(pipe(cr, sw, delay), pipe(sr, cw, delay));
        });
    }
}

fn usage() -> ! {
    eprintln!("usage: delayline LISTEN_ADDR TARGET_ADDR ONE_WAY_DELAY_MS");
    std::process::exit(2);
}

/// One direction: a reader stamps each chunk with its arrival, a writer delivers it at
/// arrival + delay. The writer's end is shut down once the reader saw EOF and the queue
/// is empty.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUED);
    let reader = async move {
        loop {
            let mut buf = vec![0u8; CHUNK];
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send((Instant::now() + delay, buf)).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((due, buf)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&buf).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}
