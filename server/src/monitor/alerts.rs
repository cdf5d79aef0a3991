//! Alert thresholds over a sliding window, like the original store's
//! `PerformanceMonitor` (`maxLatency`, `maxErrorRate`, `minThroughput`,
//! `maxMemoryUsage`), but fed by every command the server runs.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The alert names (also the `alert` label of the alert gauge).
pub const METRICS: &[&str] = &["latency", "error_rate", "throughput", "memory"];

/// Thresholds (`[alert_thresholds]` in the config file). A zero disables one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertThresholds {
    /// Mean command latency over the window, milliseconds (original: `maxLatency`, 100).
    pub max_latency_ms: f64,
    /// Failed commands over the window, percent (original: `maxErrorRate`, 5).
    pub max_error_rate_percent: f64,
    /// Commands per second over the window (original: `minThroughput`); 0 = off.
    pub min_throughput_ops: f64,
    /// Resident memory, bytes (original: `maxMemoryUsage`); 0 = off (LMDB's
    /// mapped pages count as resident, so size it to the database).
    pub max_memory_bytes: u64,
    /// Length of the sliding window, seconds.
    pub window_secs: u64,
    /// Commands the window must hold before rates are judged (the original waited for 10).
    pub min_samples: u64,
}

impl Default for AlertThresholds {
    fn default() -> Self {
        AlertThresholds {
            max_latency_ms: 100.0,
            max_error_rate_percent: 5.0,
            min_throughput_ops: 0.0,
            max_memory_bytes: 0,
            window_secs: 60,
            min_samples: 10,
        }
    }
}

/// A raised alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// One of [`METRICS`].
    pub metric: &'static str,
    /// `warning`, `error` or `critical` (as the original).
    pub level: &'static str,
    /// The measured value.
    pub value: f64,
    /// The threshold it crossed.
    pub threshold: f64,
    /// A sentence for a person.
    pub message: String,
    /// When it was first raised (Unix ms).
    pub since_unix_ms: u64,
}

/// Per-second buckets of the last `len` seconds.
#[derive(Debug)]
pub struct Window {
    len: Duration,
    buckets: VecDeque<(Instant, Bucket)>,
    start: Instant,
}

#[derive(Debug, Default, Clone, Copy)]
struct Bucket {
    count: u64,
    errors: u64,
    latency_sum: Duration,
}

/// Aggregates over the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct WindowStats {
    /// Commands.
    pub commands: u64,
    /// Failed commands.
    pub errors: u64,
    /// Mean latency, ms.
    pub mean_latency_ms: f64,
    /// Failed commands, percent.
    pub error_rate_percent: f64,
    /// Commands per second.
    pub throughput_ops: f64,
    /// Seconds covered (at most the window length).
    pub seconds: f64,
}

impl Window {
    /// An empty window of length `len`.
    pub fn new(len: Duration) -> Window {
        Window {
            len,
            buckets: VecDeque::new(),
            start: Instant::now(),
        }
    }

    fn trim(&mut self, now: Instant) {
        while let Some((t, _)) = self.buckets.front() {
            if now.duration_since(*t) >= self.len {
                self.buckets.pop_front();
            } else {
                break;
            }
        }
    }

    /// Records one command at `now`.
    pub fn record(&mut self, now: Instant, latency: Duration, error: bool) {
        let second = self.start + Duration::from_secs(now.duration_since(self.start).as_secs());
        match self.buckets.back_mut() {
            Some((t, b)) if *t == second => {
                b.count += 1;
                b.errors += error as u64;
                b.latency_sum += latency;
            }
            _ => self.buckets.push_back((
                second,
                Bucket {
                    count: 1,
                    errors: error as u64,
                    latency_sum: latency,
                },
            )),
        }
        self.trim(now);
    }

    /// Aggregates at `now`.
    pub fn stats(&mut self, now: Instant) -> WindowStats {
        self.trim(now);
        let (mut count, mut errors, mut sum) = (0u64, 0u64, Duration::ZERO);
        for (_, b) in &self.buckets {
            count += b.count;
            errors += b.errors;
            sum += b.latency_sum;
        }
        let seconds = now
            .duration_since(self.start)
            .min(self.len)
            .as_secs_f64()
            .max(1.0);
        WindowStats {
            commands: count,
            errors,
            mean_latency_ms: if count > 0 {
                sum.as_secs_f64() * 1000.0 / count as f64
            } else {
                0.0
            },
            error_rate_percent: if count > 0 {
                errors as f64 * 100.0 / count as f64
            } else {
                0.0
            },
            throughput_ops: count as f64 / seconds,
            seconds,
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The alerts `stats` raises under `t`.
pub fn evaluate(t: &AlertThresholds, stats: &WindowStats, rss: u64) -> Vec<Alert> {
    let mut out = Vec::new();
    let since = now_ms();
    let enough = stats.commands >= t.min_samples.max(1);
    if t.max_latency_ms > 0.0 && enough && stats.mean_latency_ms > t.max_latency_ms {
        out.push(Alert {
            metric: "latency",
            level: "warning",
            value: stats.mean_latency_ms,
            threshold: t.max_latency_ms,
            message: format!(
                "mean command latency {:.2} ms over the last {:.0} s exceeds {} ms",
                stats.mean_latency_ms, stats.seconds, t.max_latency_ms
            ),
            since_unix_ms: since,
        });
    }
    if t.max_error_rate_percent > 0.0
        && enough
        && stats.error_rate_percent > t.max_error_rate_percent
    {
        out.push(Alert {
            metric: "error_rate",
            level: "error",
            value: stats.error_rate_percent,
            threshold: t.max_error_rate_percent,
            message: format!(
                "{:.2}% of commands failed over the last {:.0} s ({} of {}), above {}%",
                stats.error_rate_percent,
                stats.seconds,
                stats.errors,
                stats.commands,
                t.max_error_rate_percent
            ),
            since_unix_ms: since,
        });
    }
    if t.min_throughput_ops > 0.0 && enough && stats.throughput_ops < t.min_throughput_ops {
        out.push(Alert {
            metric: "throughput",
            level: "warning",
            value: stats.throughput_ops,
            threshold: t.min_throughput_ops,
            message: format!(
                "throughput {:.2} commands/s over the last {:.0} s is below {}",
                stats.throughput_ops, stats.seconds, t.min_throughput_ops
            ),
            since_unix_ms: since,
        });
    }
    if t.max_memory_bytes > 0 && rss > t.max_memory_bytes {
        out.push(Alert {
            metric: "memory",
            level: "critical",
            value: rss as f64,
            threshold: t.max_memory_bytes as f64,
            message: format!(
                "resident memory {rss} bytes exceeds {} bytes",
                t.max_memory_bytes
            ),
            since_unix_ms: since,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides_and_thresholds_fire() {
        let mut w = Window::new(Duration::from_secs(10));
        let t0 = Instant::now();
        for i in 0..20 {
            w.record(t0, Duration::from_millis(200), i % 2 == 0);
        }
        let s = w.stats(t0);
        assert_eq!((s.commands, s.errors), (20, 10));
        assert!((s.mean_latency_ms - 200.0).abs() < 1e-6);
        let th = AlertThresholds {
            min_throughput_ops: 1000.0,
            max_memory_bytes: 1,
            ..AlertThresholds::default()
        };
        let names: Vec<_> = evaluate(&th, &s, 2).iter().map(|a| a.metric).collect();
        assert_eq!(names, ["latency", "error_rate", "throughput", "memory"]);
        // Eleven seconds later the window is empty again: nothing fires but memory.
        let later = w.stats(t0 + Duration::from_secs(11));
        assert_eq!(later.commands, 0);
        let names: Vec<_> = evaluate(&th, &later, 2).iter().map(|a| a.metric).collect();
        assert_eq!(names, ["memory"]);
        // Below min_samples, rates are not judged.
        let mut w = Window::new(Duration::from_secs(10));
        w.record(t0, Duration::from_secs(5), true);
        assert!(evaluate(&AlertThresholds::default(), &w.stats(t0), 0).is_empty());
    }
}
