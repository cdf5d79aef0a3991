//! The machine a run happened on: cores, CPU model, memory, kernel, compiler,
//! the filesystem under the data directory and how long an fsync takes there.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::latency::Latencies;

/// Facts about the machine, printed in every report header.
#[derive(Clone, Debug, Serialize)]
pub struct MachineInfo {
    /// Logical CPUs available to the process.
    pub cores: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// Total memory in GiB (from /proc/meminfo).
    pub memory_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// The compiler that built this binary.
    pub rustc: String,
    /// Filesystem type under the data directory (from /proc/mounts).
    pub filesystem: String,
    /// Median latency of a 4 KiB overwrite + `fdatasync` in the data
    /// directory, µs; `None` when the probe failed.
    pub fsync_p50_us: Option<f64>,
    /// 99th percentile of the same, µs; `None` when the probe failed.
    pub fsync_p99_us: Option<f64>,
    /// Why the fsync probe measured nothing, when it failed.
    pub fsync_error: Option<String>,
    /// 1-minute load average when the run started.
    pub load_average: String,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The CPU model name, or "unknown".
pub fn cpu_model() -> String {
    read("/proc/cpuinfo")
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn memory_gib() -> f64 {
    read("/proc/meminfo")
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("MemTotal:")?;
            let kib: f64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kib / 1024.0 / 1024.0)
        })
        .unwrap_or(0.0)
}

/// The filesystem type of the mount that holds `dir`.
pub fn filesystem_of(dir: &Path) -> String {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut best: Option<(usize, String)> = None;
    for line in read("/proc/mounts").lines() {
        let mut parts = line.split_whitespace();
        let (Some(_dev), Some(mnt), Some(fs)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if dir.starts_with(mnt) && best.as_ref().is_none_or(|(len, _)| mnt.len() > *len) {
            best = Some((mnt.len(), fs.to_owned()));
        }
    }
    best.map(|(_, fs)| fs).unwrap_or_else(|| "unknown".into())
}

/// Measures the cheapest durable write in `dir`, `samples` times: overwrite
/// the same 4 KiB block of an existing file, then `fdatasync`. No durable
/// commit of any engine can be faster than this.
pub fn fsync_probe(dir: &Path, samples: usize) -> std::io::Result<Latencies> {
    let path = dir.join("fsync-probe.tmp");
    let mut file = File::create(&path)?;
    let block = [0x5Au8; 4096];
    file.write_all(&block)?;
    file.sync_all()?;
    let mut lat = Latencies::new();
    for _ in 0..samples {
        let t = Instant::now();
        file.write_all_at(&block, 0)?;
        file.sync_data()?;
        lat.record(t.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(lat)
}

/// Peak resident set size of this process in KiB (`VmHWM`), if known.
pub fn peak_rss_kib() -> Option<u64> {
    read("/proc/self/status").lines().find_map(|l| {
        let rest = l.strip_prefix("VmHWM:")?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

impl MachineInfo {
    /// Collects the facts; the fsync probe runs in `data_dir`.
    pub fn collect(data_dir: &Path) -> MachineInfo {
        let probe = fsync_probe(data_dir, 200);
        MachineInfo {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: cpu_model(),
            memory_gib: memory_gib(),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            rustc: env!("CS_BENCH_RUSTC_VERSION").to_owned(),
            filesystem: filesystem_of(data_dir),
            fsync_p50_us: probe.as_ref().ok().and_then(|l| l.quantile_us(0.5)),
            fsync_p99_us: probe.as_ref().ok().and_then(|l| l.quantile_us(0.99)),
            fsync_error: match &probe {
                Ok(l) if l.quantile_us(0.5).is_none() => Some("no samples".into()),
                Ok(_) => None,
                Err(e) => Some(e.to_string()),
            },
            load_average: read("/proc/loadavg")
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// The fsync probe's p50 for people: the figure, or "not measured" and why.
    pub fn fsync_p50_text(&self) -> String {
        match (&self.fsync_p50_us, &self.fsync_error) {
            (Some(us), _) => crate::latency::fmt_us(*us),
            (None, Some(e)) => format!("not measured ({e})"),
            (None, None) => "not measured".into(),
        }
    }
}

/// A latency in µs for people, or "not measured" (never "0 ns" for a
/// probe that did not run).
pub fn fmt_measured(us: Option<f64>) -> String {
    us.map_or_else(|| "not measured".into(), crate::latency::fmt_us)
}

/// Today's date (UTC) as `YYYY-MM-DD`, and the time as `HH:MM`.
pub fn utc_now() -> (String, String) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}", tod / 3_600, (tod % 3_600) / 60),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_format() {
        let (d, t) = utc_now();
        assert_eq!(d.len(), 10);
        assert_eq!(t.len(), 5);
        assert!(d.starts_with("20"));
    }

    #[test]
    fn a_failed_probe_is_not_measured_rather_than_zero() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("missing");
        let info = MachineInfo::collect(&gone);
        assert_eq!(info.fsync_p50_us, None);
        assert_eq!(info.fsync_p99_us, None);
        assert!(info.fsync_error.is_some());
        assert!(
            info.fsync_p50_text().starts_with("not measured ("),
            "{}",
            info.fsync_p50_text()
        );
        assert_eq!(fmt_measured(None), "not measured");
        assert_eq!(fmt_measured(Some(0.5)), "500 ns");
        let ok = MachineInfo::collect(dir.path());
        assert!(ok.fsync_p50_us.is_some() && ok.fsync_error.is_none());
    }

    #[test]
    fn probe_and_rss() {
        let dir = tempfile::tempdir().unwrap();
        let l = fsync_probe(dir.path(), 3).unwrap();
        assert_eq!(l.len(), 3);
        assert!(!filesystem_of(dir.path()).is_empty());
        assert!(peak_rss_kib().is_some());
    }
}
