//! The result model of a suite run and its three renderings: Markdown
//! ([`md`]), JSON ([`json`]) and an SVG chart ([`svg`]).

use serde::Serialize;

use crate::machine::MachineInfo;

pub mod json;
pub mod md;
pub mod svg;

/// How a measurement ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Measured as planned.
    Ok,
    /// Stopped at its time cap before doing the planned work; the figure
    /// comes from the part that finished (see the note).
    Capped,
    /// Did not return within the hard cap; no figure.
    DidNotFinish,
    /// Failed with an error (see the note); no figure.
    Failed,
    /// Not run (see the note).
    Skipped,
}

/// One figure: a workload on an engine.
#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    /// Row key, e.g. `W3` or `W2/64`.
    pub workload: String,
    /// Engine id.
    pub engine: String,
    /// How it ended.
    pub status: Status,
    /// The figure (ops/s, or bytes per document for W8).
    pub value: Option<f64>,
    /// Unit of `value`.
    pub unit: String,
    /// Operations completed (for scans: scans; for W1: documents).
    pub ops: u64,
    /// Measured wall time in seconds.
    pub seconds: f64,
    /// Median latency of one operation, µs.
    pub p50_us: Option<f64>,
    /// 99th percentile latency of one operation, µs.
    pub p99_us: Option<f64>,
    /// Failed operations.
    pub errors: u64,
    /// Anything a reader must know about this figure (a footnote in Markdown).
    pub note: Option<String>,
    /// Supporting facts (JSON only).
    pub detail: Option<String>,
    /// For W2/1: the disk's 4 KiB overwrite + fdatasync p50 measured just
    /// before, µs (a durable commit cannot be much faster).
    pub disk_sync_p50_us: Option<f64>,
}

impl Measurement {
    /// A measurement without a figure.
    pub fn without_figure(workload: &str, engine: &str, status: Status, note: String) -> Self {
        Measurement {
            workload: workload.into(),
            engine: engine.into(),
            status,
            value: None,
            unit: String::new(),
            ops: 0,
            seconds: 0.0,
            p50_us: None,
            p99_us: None,
            errors: 0,
            note: Some(note),
            detail: None,
            disk_sync_p50_us: None,
        }
    }
}

/// A correctness check made during the run (counts, sample reads, answers).
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// Engine id.
    pub engine: String,
    /// What was checked.
    pub what: String,
    /// Whether it held.
    pub ok: bool,
    /// Details (expected vs found).
    pub detail: String,
}

/// One engine as configured for the run.
#[derive(Clone, Debug, Serialize)]
pub struct EngineInfo {
    /// Engine id.
    pub id: String,
    /// Display name.
    pub label: String,
    /// Durability configuration, in words.
    pub durability: String,
}

/// A workload row of the report.
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadInfo {
    /// Row key (`W1`, `W2/8`, ...).
    pub id: String,
    /// What it does.
    pub title: String,
    /// Unit of its figures.
    pub unit: String,
    /// False for sizes (W8), where smaller wins.
    pub higher_is_better: bool,
}

/// Parameters of the run.
#[derive(Clone, Debug, Serialize)]
pub struct RunConfig {
    /// Documents loaded (N).
    pub docs: u64,
    /// Documents per bulk-load transaction.
    pub batch: usize,
    /// Measured seconds per per-operation workload.
    pub seconds: f64,
    /// Warm-up seconds before each read workload.
    pub warmup_seconds: f64,
    /// Updates per W7 transaction.
    pub updates_per_txn: usize,
    /// A step that has not returned this many seconds after its planned
    /// time is reported as not finished.
    pub hard_cap_seconds: f64,
    /// The command line.
    pub command: String,
}

/// Everything a run produced.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Date (UTC) of the run.
    pub date: String,
    /// Start time (UTC).
    pub time: String,
    /// The machine.
    pub machine: MachineInfo,
    /// Parameters.
    pub config: RunConfig,
    /// Engines, in column order.
    pub engines: Vec<EngineInfo>,
    /// Workload rows, in order.
    pub workloads: Vec<WorkloadInfo>,
    /// Every figure.
    pub measurements: Vec<Measurement>,
    /// Every check.
    pub checks: Vec<Check>,
    /// Total wall time of the run, seconds.
    pub total_seconds: f64,
}

impl Report {
    /// The measurement of `workload` on `engine`, if any.
    pub fn get(&self, workload: &str, engine: &str) -> Option<&Measurement> {
        self.measurements
            .iter()
            .find(|m| m.workload == workload && m.engine == engine)
    }

    /// `value / baseline value` for the same workload, when both exist.
    pub fn ratio(&self, m: &Measurement) -> Option<f64> {
        let base = self.get(&m.workload, crate::engines::BASELINE)?.value?;
        let v = m.value?;
        (base > 0.0).then(|| v / base)
    }

    /// True when every check held.
    pub fn checks_ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

/// Formats a count or rate with thousands separators (`1,234,567`); values
/// below 100 keep one or two decimals.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    if v.abs() < 10.0 {
        return format!("{v:.2}");
    }
    if v.abs() < 100.0 {
        return format!("{v:.1}");
    }
    let n = v.round() as i128;
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(fmt_num(1_234_567.4), "1,234,567");
        assert_eq!(fmt_num(999.0), "999");
        assert_eq!(fmt_num(0.7), "0.70");
        assert_eq!(fmt_num(42.25), "42.2");
        assert_eq!(fmt_num(f64::NAN), "–");
    }
}
