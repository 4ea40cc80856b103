//! `--max-rate`: a cap on the bytes a load writes per second, across all its collections
//! and workers together.
//!
//! A copy from a production primary reads every document once; at full speed it takes the
//! disk and the network the application needs. One shared schedule spaces the insert
//! batches so that, over any stretch longer than a batch, the bytes written stay at or
//! under the rate; the readers slow down by themselves because the queues between them
//! and the writers are bounded.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// The shared schedule: when the next batch may go.
#[derive(Debug)]
pub struct Throttle {
    bytes_per_sec: u64,
    next: Mutex<Option<Instant>>,
}

impl Throttle {
    pub fn new(bytes_per_sec: u64) -> Throttle {
        Throttle {
            bytes_per_sec: bytes_per_sec.max(1),
            next: Mutex::new(None),
        }
    }

    /// Wait until `bytes` more may be written. A batch goes when the rate would have
    /// written it in full, counted from the later of now and the previous batch's slot,
    /// so an idle moment is not saved up into a burst.
    pub async fn wait(&self, bytes: usize) {
        let until = {
            let mut next = self.next.lock().await;
            let at = slot(*next, Instant::now(), bytes, self.bytes_per_sec);
            *next = Some(at);
            at
        };
        tokio::time::sleep_until(until).await;
    }
}

/// When a batch of `bytes` may go: its transfer time at the rate after the later of `now`
/// and the previous slot.
fn slot(prev: Option<Instant>, now: Instant, bytes: usize, per_sec: u64) -> Instant {
    let from = prev.map_or(now, |p| p.max(now));
    from + Duration::from_secs_f64(bytes as f64 / per_sec as f64)
}

/// The slowest rate taken. Below it a 4 MB batch waits over a minute, a source cursor
/// queued behind it idles toward the server's 30-minute session timeout, and a bare
/// `--max-rate 50` (bytes, not MB) would look like a hang.
pub const MIN_RATE: u64 = 64 << 10;
/// Faster than any link: no limit is what is meant.
const MAX_RATE: f64 = (1u64 << 50) as f64;

/// A rate as people write it: `50MB`, `512KB/s`, `1GB`, `800000` (bytes). KB, MB and GB
/// are powers of 1024, as the sizes elsewhere in the tool (`--range-mb`).
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let bad = || {
        format!("'{s}' is not a rate; write bytes per second with a unit, e.g. 512KB, 50MB or 1GB")
    };
    let t = s.trim();
    let t = t
        .strip_suffix("/s")
        .or_else(|| t.strip_suffix("/S"))
        .unwrap_or(t);
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let scale: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return Err(bad()),
    };
    let rate = (n * scale as f64).round();
    if !rate.is_finite() || rate > MAX_RATE {
        return Err(format!(
            "'{s}' is more than any link carries; leave --max-rate out for no limit"
        ));
    }
    if rate < MIN_RATE as f64 {
        return Err(format!(
            "'{s}' is under the slowest rate taken, 64KB per second (a number without a unit \
             is bytes); write e.g. 512KB or 50MB"
        ));
    }
    Ok(rate as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_units_and_per_second() {
        assert_eq!(parse_rate("800000"), Ok(800_000));
        assert_eq!(parse_rate("64KB"), Ok(MIN_RATE));
        assert!(parse_rate("50")
            .unwrap_err()
            .contains("without a unit is bytes"));
        assert!(parse_rate(&"9".repeat(400))
            .unwrap_err()
            .contains("leave --max-rate out"));
        assert!(parse_rate("2000000TB").is_err());
        assert_eq!(parse_rate("512KB"), Ok(512 << 10));
        assert_eq!(parse_rate("50MB/s"), Ok(50 << 20));
        assert_eq!(parse_rate(" 1.5 mb "), Ok(3 << 19));
        assert_eq!(parse_rate("1GiB"), Ok(1 << 30));
        for bad in [
            "", "fast", "10TB", "-5MB", "MB", "0", "0.1B", "1e9", "inf", "nan",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
        assert!(parse_rate("fast").unwrap_err().contains("e.g. 512KB"));
    }

    #[test]
    fn batches_are_spaced_by_their_size_and_idle_time_is_not_saved() {
        let t0 = Instant::now();
        let mb = 1 << 20;
        // 2 MB/s: a 1 MB batch goes half a second after the start, the next one half a
        // second after that.
        let a = slot(None, t0, mb, 2 * mb as u64);
        assert_eq!(a - t0, Duration::from_millis(500));
        let b = slot(Some(a), t0, mb, 2 * mb as u64);
        assert_eq!(b - t0, Duration::from_millis(1000));
        // After ten idle seconds the next batch still waits its own time.
        let later = t0 + Duration::from_secs(10);
        let c = slot(Some(b), later, mb, 2 * mb as u64);
        assert_eq!(c - later, Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn workers_share_one_schedule() {
        let t = std::sync::Arc::new(Throttle::new(1 << 20));
        let t0 = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let t = t.clone();
            tasks.spawn(async move { t.wait(256 << 10).await });
        }
        while tasks.join_next().await.is_some() {}
        // Four quarter-MB batches at 1 MB/s, whoever sends them: one second (to the
        // timer's millisecond).
        let took = Instant::now() - t0;
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_millis(1002),
            "{took:?}"
        );
    }
}
