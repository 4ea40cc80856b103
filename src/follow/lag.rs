//! The tail's lag (source write → applied on the target) and rate, as a status line and
//! as percentiles for the record and the benchmark.

use std::time::Instant;

/// Samples kept for the percentiles; older ones are halved away so memory stays bounded
/// on a tail that runs for days.
const MAX_SAMPLES: usize = 200_000;

pub struct LagStats {
    samples: Vec<u32>,
    pub events: u64,
    rate_since: Instant,
    rate_events: u64,
    pub events_per_sec: f64,
}

impl Default for LagStats {
    fn default() -> Self {
        LagStats {
            samples: Vec::new(),
            events: 0,
            rate_since: Instant::now(),
            rate_events: 0,
            events_per_sec: 0.0,
        }
    }
}

impl LagStats {
    /// One applied event whose source write happened `lag_ms` ago.
    pub fn record(&mut self, lag_ms: i64) {
        if self.samples.len() >= MAX_SAMPLES {
            let kept: Vec<u32> = self.samples.iter().step_by(2).copied().collect();
            self.samples = kept;
        }
        self.samples.push(lag_ms.clamp(0, u32::MAX as i64) as u32);
    }

    pub fn count(&mut self, applied: u64) {
        self.events += applied;
        self.rate_events += applied;
        let secs = self.rate_since.elapsed().as_secs_f64();
        if secs >= 2.0 {
            self.events_per_sec = crate::report::table::round1(self.rate_events as f64 / secs);
            self.rate_events = 0;
            self.rate_since = Instant::now();
        }
    }

    /// The `p`-th percentile (0–100) of the recorded lags in ms; 0 with no samples.
    pub fn percentile(&self, p: f64) -> i64 {
        if self.samples.is_empty() {
            return 0;
        }
        let mut s = self.samples.clone();
        s.sort_unstable();
        let i = ((p / 100.0) * (s.len() - 1) as f64).round() as usize;
        i64::from(s[i.min(s.len() - 1)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut l = LagStats::default();
        assert_eq!(l.percentile(99.0), 0);
        for i in 1..=100 {
            l.record(i);
        }
        assert_eq!(l.percentile(50.0), 51);
        assert_eq!(l.percentile(99.0), 99);
        assert_eq!(l.percentile(100.0), 100);
        l.record(-5);
        assert_eq!(l.percentile(0.0), 0);
    }

    #[test]
    fn bounded() {
        let mut l = LagStats::default();
        for i in 0..(MAX_SAMPLES as i64 * 3) {
            l.record(i % 1000);
        }
        assert!(l.samples.len() <= MAX_SAMPLES);
    }
}
