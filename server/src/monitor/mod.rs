//! Metrics (through the `metrics` facade, exported for Prometheus) and alerts.
//!
//! Every command records its name, latency and error code here; a sampler
//! task publishes connections, cursors, transactions, the data file size and
//! the change log's last LSN once a second and evaluates the alert thresholds
//! over a sliding window (`alerts.rs`). `http.rs` serves `/metrics`, `/status`
//! and `/healthz`.

pub mod alerts;
pub mod http;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub use alerts::{Alert, AlertThresholds, Window};

/// Metric names.
pub mod names {
    /// Counter, label `command`.
    pub const COMMANDS: &str = "collection_store_server_commands_total";
    /// Histogram in seconds, label `command`.
    pub const LATENCY: &str = "collection_store_server_command_duration_seconds";
    /// Counter, labels `code`, `code_name`.
    pub const ERRORS: &str = "collection_store_server_errors_total";
    /// Gauge.
    pub const CONNECTIONS: &str = "collection_store_server_connections";
    /// Counter.
    pub const CONNECTIONS_TOTAL: &str = "collection_store_server_connections_accepted_total";
    /// Counter, label `reason`.
    pub const CONNECTIONS_CLOSED_BAD: &str = "collection_store_server_protocol_errors_total";
    /// Gauge.
    pub const CURSORS: &str = "collection_store_server_cursors";
    /// Gauge.
    pub const TRANSACTIONS: &str = "collection_store_server_transactions";
    /// Gauge, bytes of `data.mdb`.
    pub const DB_SIZE: &str = "collection_store_database_size_bytes";
    /// Gauge.
    pub const LAST_LSN: &str = "collection_store_last_lsn";
    /// Gauge 0/1, label `alert`.
    pub const ALERT: &str = "collection_store_server_alert_active";
    /// Counter of authentication failures.
    pub const AUTH_FAILURES: &str = "collection_store_server_auth_failures_total";
}

/// Installs the Prometheus recorder (once per process); returns its handle.
pub fn install_recorder() -> Option<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(names::LATENCY.into()), &buckets)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .clone()
}

/// The server's monitor: the sliding window and the alert state.
pub struct Monitor {
    enabled: bool,
    window: Mutex<Window>,
    thresholds: AlertThresholds,
    active: Mutex<Vec<Alert>>,
    started: Instant,
}

impl Monitor {
    /// A monitor with these thresholds; `enabled = false` records nothing.
    pub fn new(enabled: bool, thresholds: AlertThresholds) -> Monitor {
        Monitor {
            enabled,
            window: Mutex::new(Window::new(Duration::from_secs(
                thresholds.window_secs.max(1),
            ))),
            thresholds,
            active: Mutex::new(Vec::new()),
            started: Instant::now(),
        }
    }

    /// Time since start.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Records one command.
    pub fn record(&self, command: &str, elapsed: Duration, error: Option<(i32, &'static str)>) {
        if !self.enabled {
            return;
        }
        let command = command_label(command);
        metrics::counter!(names::COMMANDS, "command" => command).increment(1);
        metrics::histogram!(names::LATENCY, "command" => command).record(elapsed.as_secs_f64());
        if let Some((code, name)) = error {
            metrics::counter!(names::ERRORS, "code" => code.to_string(), "code_name" => name)
                .increment(1);
        }
        if let Ok(mut w) = self.window.lock() {
            w.record(Instant::now(), elapsed, error.is_some());
        }
    }

    /// Evaluates the thresholds now; logs alerts that start or end.
    pub fn evaluate(&self) {
        if !self.enabled {
            return;
        }
        let stats = match self.window.lock() {
            Ok(mut w) => w.stats(Instant::now()),
            Err(_) => return,
        };
        let now = alerts::evaluate(&self.thresholds, &stats, current_rss());
        if let Ok(mut active) = self.active.lock() {
            for a in &now {
                if !active.iter().any(|b| b.metric == a.metric) {
                    tracing::warn!(
                        alert = a.metric,
                        value = a.value,
                        threshold = a.threshold,
                        "{}",
                        a.message
                    );
                }
            }
            for b in active.iter() {
                if !now.iter().any(|a| a.metric == b.metric) {
                    tracing::info!(alert = b.metric, "alert cleared: {}", b.metric);
                }
            }
            for metric in alerts::METRICS {
                let on = now.iter().any(|a| a.metric == *metric);
                metrics::gauge!(names::ALERT, "alert" => *metric).set(if on { 1.0 } else { 0.0 });
            }
            let mut merged = Vec::new();
            for a in now {
                let since = active
                    .iter()
                    .find(|b| b.metric == a.metric)
                    .map(|b| b.since_unix_ms)
                    .unwrap_or(a.since_unix_ms);
                merged.push(Alert {
                    since_unix_ms: since,
                    ..a
                });
            }
            *active = merged;
        }
    }

    /// Active alerts.
    pub fn alerts(&self) -> Vec<Alert> {
        self.active.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Window statistics now.
    pub fn window_stats(&self) -> alerts::WindowStats {
        self.window
            .lock()
            .map(|mut w| w.stats(Instant::now()))
            .unwrap_or_default()
    }

    /// The thresholds.
    pub fn thresholds(&self) -> &AlertThresholds {
        &self.thresholds
    }
}

/// Known command names as static labels (unknown names share one label, so
/// clients cannot create unbounded label sets).
fn command_label(name: &str) -> &'static str {
    crate::commands::KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(name))
        .copied()
        .unwrap_or("other")
}

/// Resident memory of this process in bytes (Linux; 0 elsewhere).
pub fn current_rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}
