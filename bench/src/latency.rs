//! Latency recording (HdrHistogram, nanosecond resolution, 2 significant
//! digits (1%), bounded memory however long a run lasts).

use std::time::Duration;

use hdrhistogram::Histogram;

/// Per-operation latencies.
#[derive(Clone, Debug)]
pub struct Latencies {
    hist: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies::new()
    }
}

impl Latencies {
    /// An empty recorder (1 ns .. 1 hour).
    pub fn new() -> Latencies {
        // Constant, valid bounds: creation cannot fail.
        let hist =
            Histogram::new_with_bounds(1, 3_600_000_000_000, 2).expect("valid histogram bounds");
        Latencies { hist }
    }

    /// Records one operation.
    pub fn record(&mut self, d: Duration) {
        let ns = (d.as_nanos() as u64).max(1);
        self.hist.saturating_record(ns);
    }

    /// Adds another recorder's samples.
    pub fn merge(&mut self, other: &Latencies) {
        // Both were created with the same bounds; `add` only fails on a
        // bounds mismatch, which cannot happen here.
        let _ = self.hist.add(&other.hist);
    }

    /// Number of samples.
    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// The `q` quantile (0.0..=1.0) in microseconds, or `None` when empty.
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        if self.hist.is_empty() {
            return None;
        }
        Some(self.hist.value_at_quantile(q) as f64 / 1_000.0)
    }
}

/// Formats microseconds for people: `850 ns`, `12.3 µs`, `4.56 ms`, `1.23 s`.
pub fn fmt_us(us: f64) -> String {
    if us < 1.0 {
        format!("{:.0} ns", us * 1_000.0)
    } else if us < 100.0 {
        format!("{us:.1} µs")
    } else if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1_000.0)
    } else {
        format!("{:.2} s", us / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let mut l = Latencies::new();
        assert_eq!(l.quantile_us(0.5), None);
        for i in 1..=100u64 {
            l.record(Duration::from_micros(i));
        }
        let p50 = l.quantile_us(0.5).unwrap();
        assert!((49.0..=51.0).contains(&p50), "{p50}");
        let mut m = Latencies::new();
        m.merge(&l);
        assert_eq!(m.len(), 100);
        assert_eq!(fmt_us(0.5), "500 ns");
        assert_eq!(fmt_us(1500.0), "1.50 ms");
    }
}
