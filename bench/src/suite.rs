//! Runs the benchmark suite over the selected engines and writes the report
//! (Markdown, JSON, SVG) to the output folder.

use std::path::PathBuf;
use std::time::Instant;

use crate::engines::{self, ALL_ENGINES};
use crate::machine::{self, MachineInfo};
use crate::report::{self, EngineInfo, Report, RunConfig, Status};
use crate::workloads::{self, SuiteConfig};

/// Where and how to run the suite.
#[derive(Clone, Debug)]
pub struct SuiteRun {
    /// Engine ids, in column order.
    pub engines: Vec<String>,
    /// Workload parameters.
    pub config: SuiteConfig,
    /// Output folder.
    pub out: PathBuf,
    /// Base name of the report files (`<name>.md`, `.json`, `.svg`).
    pub name: Option<String>,
    /// Parent of the engines' data directories (the system temp dir when `None`).
    pub data_dir: Option<PathBuf>,
    /// The command line, for the report.
    pub command: String,
}

/// Runs the suite; returns the report and whether every check held and no
/// workload failed.
pub fn run(run: &SuiteRun) -> Result<(Report, bool), String> {
    for e in &run.engines {
        if !ALL_ENGINES.contains(&e.as_str()) {
            return Err(format!(
                "unknown engine '{e}' (known: {})",
                ALL_ENGINES.join(", ")
            ));
        }
        if !engines::is_built(e) {
            return Err(format!(
                "engine '{e}' is not part of this build: add --features sqlite, --features polodb \
                 or --features peers to the cargo command"
            ));
        }
    }
    if run.config.docs == 0 {
        return Err("--docs must be at least 1".into());
    }
    std::fs::create_dir_all(&run.out)
        .map_err(|e| format!("cannot create {}: {e}", run.out.display()))?;
    let parent = run.data_dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let root = tempfile::Builder::new()
        .prefix("cs-bench-")
        .tempdir_in(&parent)
        .map_err(|e| {
            format!(
                "cannot create a data directory in {}: {e}",
                parent.display()
            )
        })?;
    let (date, time) = machine::utc_now();
    let started = Instant::now();
    workloads::log(&format!(
        "measuring the machine (fsync probe in {})",
        root.path().display()
    ));
    let machine = MachineInfo::collect(root.path());
    workloads::log(&format!(
        "{} cores, {}, {}, fsync p50 {}",
        machine.cores,
        machine.cpu_model,
        machine.filesystem,
        machine.fsync_p50_text()
    ));
    let scan_expected = crate::data::scan_matches(run.config.docs);

    let mut measurements = Vec::new();
    let mut checks = Vec::new();
    checks.push(crate::checks::filesystem(&machine.filesystem));
    let ids: Vec<&'static str> = run
        .engines
        .iter()
        .filter_map(|id| ALL_ENGINES.iter().copied().find(|e| e == id))
        .collect();
    let infos: Vec<EngineInfo> = ids
        .iter()
        .map(|id| EngineInfo {
            id: (*id).into(),
            label: engines::label(id).into(),
            durability: engines::durability(id),
        })
        .collect();
    // PoloDB runs last: its W5 query scans and sorts the whole collection and
    // cannot be interrupted, so if it overruns the hard cap it is left behind
    // while the report is written, without disturbing another engine.
    let mut order = ids.clone();
    order.sort_by_key(|id| *id == "polodb");
    for id in order {
        let dir = root.path().join(id);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            return Err(format!("cannot create {}: {e}", dir.display()));
        }
        workloads::log(&format!("== {} ({id}) ==", engines::label(id)));
        let r = workloads::run_engine(id, &dir, &run.config, scan_expected);
        measurements.extend(r.measurements);
        checks.extend(r.checks);
        // Free the disk space before the next engine (ignore failures: a
        // worker left behind may still hold the directory).
        let _ = std::fs::remove_dir_all(&dir);
    }
    // Durable engines really sync: a lone writer's commit cannot be much faster
    // than the disk's cheapest durable write, measured just before it.
    for e in ["cs", "sqlite", "polodb", "lmdb-raw"] {
        let w = measurements
            .iter()
            .find(|m| m.engine == e && m.workload == "W2/1");
        if let Some(c) =
            w.and_then(|m| crate::checks::commits_reach_disk(e, m.p50_us, m.disk_sync_p50_us))
        {
            checks.push(c);
        }
    }
    let report = Report {
        date: date.clone(),
        time,
        machine,
        config: RunConfig {
            docs: run.config.docs,
            batch: run.config.batch,
            seconds: run.config.seconds,
            warmup_seconds: run.config.warmup,
            updates_per_txn: run.config.updates_per_txn,
            hard_cap_seconds: run.config.hard_cap,
            command: run.command.clone(),
        },
        engines: infos,
        workloads: run.config.rows(),
        measurements,
        checks,
        total_seconds: started.elapsed().as_secs_f64(),
    };
    let name = run.name.clone().unwrap_or_else(|| format!("{date}-suite"));
    let svg_name = format!("{name}.svg");
    let md = report::md::render(&report, &svg_name);
    let json = report::json::render(&report).map_err(|e| format!("JSON: {e}"))?;
    let svg = report::svg::render(&report).map_err(|e| format!("SVG: {e}"))?;
    for (ext, body) in [("md", &md), ("json", &json), ("svg", &svg)] {
        let path = run.out.join(format!("{name}.{ext}"));
        std::fs::write(&path, body).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    println!("{md}");
    workloads::log(&format!(
        "report written to {}/{name}.{{md,json,svg}}",
        run.out.display()
    ));
    let ok = report.checks_ok()
        && !report
            .measurements
            .iter()
            .any(|m| matches!(m.status, Status::Failed));
    Ok((report, ok))
}
