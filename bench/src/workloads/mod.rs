//! Workloads W1-W8 of the design brief, run against one engine at a time on
//! a worker thread that reports each step to a watchdog, so that every step
//! is time-bounded and a step that overruns is reported, never waited on
//! silently.
//!
//! Order on each engine: W1 (load, which also fills the data set) → checks
//! (count, sample reads) → W8 (size) → a full warm-up scan (checks W6's
//! answer) → W3, W4, W5, W6 (reads, warm) → W7 (updates) → W2 (inserts at 1,
//! 8, 64 writers) → final count check. Reads therefore see the pristine data
//! set and the write workloads come last.

use std::cell::RefCell;
use std::path::Path;
use std::sync::atomic::AtomicI64;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::checks;
use crate::data::{self, Rng, User};
use crate::engines::{self, EResult, Engine, WriteOutcome};
use crate::latency::{fmt_us, Latencies};
use crate::report::{fmt_num, Check, Measurement, Status, WorkloadInfo};

pub mod writes;

/// The workloads that can be selected with `--workloads`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum WorkloadId {
    /// Bulk load, 10,000 documents per durable transaction (always runs: it loads the data).
    W1,
    /// Single-document durable transactions at 1/8/64 writers.
    W2,
    /// Point get by `_id`, decoded into a struct.
    W3,
    /// Indexed `email` equality.
    W4,
    /// `age` range + sort + limit 20.
    W5,
    /// Unindexed filter scan.
    W6,
    /// Update by indexed field, 1,000 per transaction.
    W7,
    /// Bytes per document on disk.
    W8,
}

/// Parameters of a suite run.
#[derive(Clone, Debug)]
pub struct SuiteConfig {
    /// Documents to load (N).
    pub docs: u64,
    /// Documents per bulk-load transaction.
    pub batch: usize,
    /// Measured time per per-operation workload.
    pub seconds: f64,
    /// Warm-up before each read workload.
    pub warmup: f64,
    /// Writer counts of W2.
    pub writers: Vec<usize>,
    /// Updates per W7 transaction.
    pub updates_per_txn: usize,
    /// Extra time a step may take beyond its plan before it is reported as
    /// not finished.
    pub hard_cap: f64,
    /// Selected workloads (W1 always runs).
    pub workloads: Vec<WorkloadId>,
}

impl SuiteConfig {
    fn has(&self, w: WorkloadId) -> bool {
        w == WorkloadId::W1 || self.workloads.contains(&w)
    }

    fn budget(&self) -> Duration {
        Duration::from_secs_f64(self.seconds.max(0.01))
    }

    fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup.max(0.0))
    }

    /// The report rows, in order.
    pub fn rows(&self) -> Vec<WorkloadInfo> {
        let row = |id: String, title: &str, unit: &str, hib: bool| WorkloadInfo {
            id,
            title: title.into(),
            unit: unit.into(),
            higher_is_better: hib,
        };
        let mut rows = vec![row("W1".into(), "bulk load, 10k docs/txn", "docs/s", true)];
        if self.has(WorkloadId::W2) {
            for w in &self.writers {
                let title = format!(
                    "durable 1-doc txn, {w} writer{}",
                    if *w == 1 { "" } else { "s" }
                );
                rows.push(row(format!("W2/{w}"), &title, "txn/s", true));
            }
        }
        let more = [
            (
                WorkloadId::W3,
                "W3",
                "get by _id into a struct",
                "gets/s",
                true,
            ),
            (
                WorkloadId::W4,
                "W4",
                "find by email (unique index)",
                "queries/s",
                true,
            ),
            (
                WorkloadId::W5,
                "W5",
                "age range + sort + limit 20",
                "queries/s",
                true,
            ),
            (
                WorkloadId::W6,
                "W6",
                "unindexed filter scan",
                "docs/s",
                true,
            ),
            (
                WorkloadId::W7,
                "W7",
                "update by email, 1,000/txn",
                "updates/s",
                true,
            ),
            (WorkloadId::W8, "W8", "disk size", "bytes/doc", false),
        ];
        for (w, id, title, unit, hib) in more {
            if self.has(w) {
                rows.push(row(id.into(), title, unit, hib));
            }
        }
        rows
    }
}

/// What the worker tells the watchdog.
enum Event {
    /// A step starts; it should end within `planned` (+ the hard cap).
    Step {
        workloads: Vec<String>,
        planned: Duration,
    },
    /// A figure.
    Measured(Measurement),
    /// A check.
    Checked(Check),
    /// The engine is finished.
    Done,
}

/// Everything one engine produced.
#[derive(Default)]
pub struct EngineResults {
    /// Figures.
    pub measurements: Vec<Measurement>,
    /// Checks.
    pub checks: Vec<Check>,
}

/// Prints a line above any progress bar.
pub fn log(msg: &str) {
    eprintln!("{msg}");
}

fn bar(len: u64, msg: String) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:34} [{bar:30}] {percent:>3}% {elapsed:>4}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(msg);
    pb
}

/// Runs the suite on engine `id` in directory `dir` (created, left in place).
pub fn run_engine(
    id: &'static str,
    dir: &Path,
    cfg: &SuiteConfig,
    scan_expected: u64,
) -> EngineResults {
    let (tx, rx) = std::sync::mpsc::channel();
    let worker_cfg = cfg.clone();
    let worker_dir = dir.to_path_buf();
    let handle = std::thread::Builder::new()
        .name(format!("bench-{id}"))
        .spawn(move || {
            let w = Worker {
                id,
                cfg: worker_cfg,
                tx,
                ran: RefCell::new(Vec::new()),
            };
            w.run(&worker_dir, scan_expected);
        });
    let mut results = EngineResults::default();
    let Ok(handle) = handle else {
        results.checks.push(Check {
            engine: id.into(),
            what: "start".into(),
            ok: false,
            detail: "could not spawn the worker thread".into(),
        });
        return results;
    };
    let finished = watch(id, cfg, &rx, &mut results);
    if finished {
        let _ = handle.join();
    }
    results
}

/// Collects events until `Done`; returns false when a step overran its cap
/// (the worker is then left behind and its remaining steps are not run).
fn watch(id: &str, cfg: &SuiteConfig, rx: &Receiver<Event>, out: &mut EngineResults) -> bool {
    let cap = Duration::from_secs_f64(cfg.hard_cap.max(1.0));
    let mut current: Vec<String> = vec!["W1".into()];
    let mut deadline = Instant::now() + Duration::from_secs(3_600);
    let mut step_start = Instant::now();
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(Event::Step { workloads, planned }) => {
                current = workloads;
                step_start = Instant::now();
                deadline = step_start + planned + cap;
            }
            Ok(Event::Measured(m)) => {
                out.measurements.push(m);
            }
            Ok(Event::Checked(c)) => {
                if !c.ok {
                    log(&format!("[{id}] CHECK FAILED: {} — {}", c.what, c.detail));
                }
                out.checks.push(c);
            }
            Ok(Event::Done) => return true,
            Err(RecvTimeoutError::Disconnected) => {
                out.checks.push(Check {
                    engine: id.into(),
                    what: "worker".into(),
                    ok: false,
                    detail: "the worker thread ended without finishing (panic?)".into(),
                });
                return true;
            }
            Err(RecvTimeoutError::Timeout) => {
                let secs = step_start.elapsed().as_secs_f64();
                for w in &current {
                    let mut m = Measurement::without_figure(
                        w,
                        id,
                        Status::DidNotFinish,
                        format!(
                            "did not finish within {secs:.0} s (its planned time plus the hard \
                             cap); nothing was measured on this engine after it"
                        ),
                    );
                    m.seconds = secs;
                    out.measurements.push(m);
                }
                log(&format!(
                    "[{id}] {} did not finish in {secs:.0} s; moving on",
                    current.join(", ")
                ));
                return false;
            }
        }
    }
}

struct Worker {
    id: &'static str,
    cfg: SuiteConfig,
    tx: Sender<Event>,
    /// The workloads whose results were sent, in order (for "W5 ran last").
    ran: RefCell<Vec<String>>,
}

/// Result of a timed loop of operations.
struct Timed {
    ops: u64,
    units: u64,
    elapsed: Duration,
    lat: Latencies,
}

impl Worker {
    fn send(&self, e: Event) {
        let _ = self.tx.send(e);
    }

    fn step(&self, workloads: &[&str], planned: Duration) {
        self.send(Event::Step {
            workloads: workloads.iter().map(|s| s.to_string()).collect(),
            planned,
        });
    }

    fn check(&self, what: &str, ok: bool, detail: String) -> bool {
        self.send(Event::Checked(Check {
            engine: self.id.into(),
            what: what.into(),
            ok,
            detail,
        }));
        ok
    }

    fn measured(&self, m: Measurement) {
        let mut line = format!("[{}] {}: ", self.id, m.workload);
        match (&m.status, m.value) {
            (Status::Ok | Status::Capped, Some(v)) => {
                line += &format!("{} {}", fmt_num(v), m.unit);
                if let (Some(a), Some(b)) = (m.p50_us, m.p99_us) {
                    line += &format!("  p50 {}  p99 {}", fmt_us(a), fmt_us(b));
                }
            }
            _ => line += &format!("{:?}", m.status),
        }
        if let Some(n) = &m.note {
            line += &format!("  ({n})");
        }
        log(&line);
        self.ran.borrow_mut().push(m.workload.clone());
        self.send(Event::Measured(m));
    }

    fn failed(&self, workload: &str, e: &engines::BoxError) {
        self.measured(Measurement::without_figure(
            workload,
            self.id,
            Status::Failed,
            e.to_string(),
        ));
    }

    fn skip_rest(&self, rows: &[WorkloadInfo], why: &str) {
        for r in rows.iter().filter(|r| r.id != "W1") {
            self.send(Event::Measured(Measurement::without_figure(
                &r.id,
                self.id,
                Status::Skipped,
                why.into(),
            )));
        }
    }

    fn run(&self, dir: &Path, scan_expected: u64) {
        let rows = self.cfg.rows();
        self.step(&["W1"], Duration::from_secs(60));
        let engine = match engines::open(self.id, dir) {
            Ok(e) => e,
            Err(e) => {
                self.failed("W1", &e);
                self.skip_rest(&rows, "the engine did not open");
                self.send(Event::Done);
                return;
            }
        };
        let engine: &dyn Engine = engine.as_ref();
        let n = self.cfg.docs;
        // W1 (always: it loads the data set).
        self.step(
            &["W1"],
            Duration::from_secs_f64((n as f64 / 5_000.0).max(60.0)),
        );
        match self.load(engine) {
            Ok(m) => self.measured(m),
            Err(e) => {
                self.failed("W1", &e);
                self.skip_rest(&rows, "the load failed");
                self.send(Event::Done);
                return;
            }
        }
        self.step(&["checks"], Duration::from_secs(60));
        if !self.verify_load(engine) {
            self.skip_rest(&rows, "the loaded data failed its checks");
            self.send(Event::Done);
            return;
        }
        if self.cfg.has(WorkloadId::W8) {
            self.step(&["W8"], Duration::from_secs(60));
            match engine.disk_bytes() {
                Ok(bytes) => {
                    let mut m = figure("W8", self.id, bytes as f64 / n.max(1) as f64, "bytes/doc");
                    m.ops = n;
                    m.detail = Some(format!("{bytes} bytes on disk for {n} documents"));
                    self.measured(m);
                }
                Err(e) => self.failed("W8", &e),
            }
        }
        // Warm every engine's caches alike: one full scan (also W6's answer check).
        self.step(&["W3", "W4", "W5", "W6"], Duration::from_secs(120));
        match engine.scan(data::SCAN_CITY, data::SCAN_MIN_SCORE) {
            Ok(m) => {
                self.check(
                    "W6 filter scan matches the generator",
                    m == scan_expected,
                    format!("{m} matches, expected {scan_expected}"),
                );
            }
            Err(e) => {
                self.check("warm-up scan", false, e.to_string());
            }
        }
        let reads = self.cfg.budget() + self.cfg.warmup();
        if self.cfg.has(WorkloadId::W3) {
            self.step(&["W3"], reads);
            self.w3(engine);
        }
        if self.cfg.has(WorkloadId::W4) {
            self.step(&["W4"], reads);
            self.w4(engine);
        }
        let w5_last = engine.range_scans_collection();
        if self.cfg.has(WorkloadId::W5) && !w5_last {
            self.step(&["W5"], reads);
            self.w5(engine, false);
        }
        if self.cfg.has(WorkloadId::W6) {
            self.step(&["W6"], reads);
            self.w6(engine, scan_expected);
        }
        if self.cfg.has(WorkloadId::W7) {
            self.step(&["W7"], self.cfg.budget());
            self.w7(engine);
        }
        if self.cfg.has(WorkloadId::W2) {
            self.w2(engine, dir);
        }
        if self.cfg.has(WorkloadId::W5) && w5_last {
            // This engine sorts a range by scanning the collection: run it last, so a
            // query that overruns the hard cap delays none of its other workloads.
            self.step(&["W5"], reads);
            self.w5(engine, true);
            let docs = engine
                .count()
                .map(|c| c.to_string())
                .unwrap_or_else(|e| format!("? ({e})"));
            self.send(Event::Checked(checks::w5_ran_last(
                self.id,
                &self.ran.borrow(),
                &docs,
            )));
        }
        self.send(Event::Done);
    }

    fn load(&self, engine: &dyn Engine) -> EResult<Measurement> {
        let n = self.cfg.docs;
        let batch = self.cfg.batch.max(1) as u64;
        let pb = bar(n, format!("{} W1 load", self.id));
        let mut lat = Latencies::new();
        let mut busy = Duration::ZERO;
        let mut i = 0;
        while i < n {
            let end = (i + batch).min(n);
            let docs: Vec<User> = (i as i64..end as i64).map(data::user).collect();
            let t = Instant::now();
            engine.bulk_insert(&docs)?;
            let d = t.elapsed();
            busy += d;
            lat.record(d);
            i = end;
            pb.set_position(i);
        }
        pb.finish_and_clear();
        let mut m = figure(
            "W1",
            self.id,
            n as f64 / busy.as_secs_f64().max(1e-9),
            "docs/s",
        );
        m.ops = n;
        m.seconds = busy.as_secs_f64();
        m.p50_us = lat.quantile_us(0.5);
        m.p99_us = lat.quantile_us(0.99);
        m.detail = Some(format!("latency is per {batch}-document transaction"));
        Ok(m)
    }

    fn verify_load(&self, engine: &dyn Engine) -> bool {
        let n = self.cfg.docs;
        let count_ok = match engine.count() {
            Ok(c) => self.check(
                "document count after load",
                c == n,
                format!("{c}, expected {n}"),
            ),
            Err(e) => self.check("document count after load", false, e.to_string()),
        };
        let mut rng = Rng::new(0xC0FFEE);
        let mut bad = Vec::new();
        let samples = 1_000.min(n);
        for _ in 0..samples {
            let i = rng.below(n) as i64;
            match engine.get(i) {
                Ok(Some(u)) if u == data::user(i) => {}
                Ok(other) => bad.push(format!("_id {i}: {other:?}")),
                Err(e) => bad.push(format!("_id {i}: {e}")),
            }
        }
        let gets_ok = self.check(
            "sample reads by _id equal the generated documents",
            bad.is_empty(),
            format!("{samples} samples, {} wrong{}", bad.len(), first(&bad)),
        );
        let mut bad = Vec::new();
        let samples = 100.min(n);
        for _ in 0..samples {
            let i = rng.below(n) as i64;
            match engine.find_by_email(&data::email(i)) {
                Ok(Some(id)) if id == i => {}
                Ok(other) => bad.push(format!("email of {i}: {other:?}")),
                Err(e) => bad.push(format!("email of {i}: {e}")),
            }
        }
        let emails_ok = self.check(
            "sample lookups by email find the right document",
            bad.is_empty(),
            format!("{samples} samples, {} wrong{}", bad.len(), first(&bad)),
        );
        count_ok && gets_ok && emails_ok
    }

    /// Runs `op` for the warm-up, then for the budget; `op` returns the
    /// units of work it did (1 for a query, the documents it scanned for a
    /// scan).
    fn timed(
        &self,
        name: &str,
        warmup: Duration,
        mut op: impl FnMut(&mut Rng) -> EResult<u64>,
    ) -> EResult<Timed> {
        let mut rng = Rng::new(0x5EED ^ name.len() as u64);
        let w_end = Instant::now() + warmup;
        while Instant::now() < w_end {
            op(&mut rng)?;
        }
        let budget = self.cfg.budget();
        let pb = bar(budget.as_millis() as u64, format!("{} {name}", self.id));
        let mut lat = Latencies::new();
        let (mut ops, mut units) = (0u64, 0u64);
        let start = Instant::now();
        loop {
            let t = Instant::now();
            units += op(&mut rng)?;
            let now = Instant::now();
            lat.record(now - t);
            ops += 1;
            let elapsed = now - start;
            if ops % 1024 == 0 || elapsed >= budget {
                pb.set_position(elapsed.as_millis() as u64);
            }
            if elapsed >= budget {
                break;
            }
        }
        pb.finish_and_clear();
        Ok(Timed {
            ops,
            units,
            elapsed: start.elapsed(),
            lat,
        })
    }

    fn report_timed(&self, workload: &str, unit: &str, r: EResult<Timed>, per_unit: bool) {
        match r {
            Ok(t) => {
                let count = if per_unit { t.units } else { t.ops };
                let mut m = figure(
                    workload,
                    self.id,
                    count as f64 / t.elapsed.as_secs_f64(),
                    unit,
                );
                m.ops = t.ops;
                m.seconds = t.elapsed.as_secs_f64();
                m.p50_us = t.lat.quantile_us(0.5);
                m.p99_us = t.lat.quantile_us(0.99);
                if t.ops < 20 {
                    m.note = Some(format!(
                        "only {} operation{} completed in {:.1} s (each takes {})",
                        t.ops,
                        if t.ops == 1 { "" } else { "s" },
                        t.elapsed.as_secs_f64(),
                        fmt_us(t.lat.quantile_us(0.5).unwrap_or(0.0))
                    ));
                }
                self.measured(m);
            }
            Err(e) => self.failed(workload, &e),
        }
    }

    fn w3(&self, engine: &dyn Engine) {
        let n = self.cfg.docs;
        let r = self.timed("W3", self.cfg.warmup(), |rng| {
            let i = rng.below(n) as i64;
            match engine.get(i)? {
                Some(u) if u.id == i => Ok(1),
                other => Err(engines::err(format!("get({i}) returned {other:?}"))),
            }
        });
        self.report_timed("W3", "gets/s", r, false);
    }

    fn w4(&self, engine: &dyn Engine) {
        let n = self.cfg.docs;
        let mut rng = Rng::new(44);
        let keys: Vec<(i64, String)> = (0..65_536)
            .map(|_| {
                let i = rng.below(n) as i64;
                (i, data::email(i))
            })
            .collect();
        let mut k = 0usize;
        let r = self.timed("W4", self.cfg.warmup(), |_| {
            let (i, email) = &keys[k % keys.len()];
            k += 1;
            match engine.find_by_email(email)? {
                Some(id) if id == *i => Ok(1),
                other => Err(engines::err(format!("email of {i} returned {other:?}"))),
            }
        });
        self.report_timed("W4", "queries/s", r, false);
    }

    /// W5. `last`: it runs after W2's inserts (the engine scans for it), so
    /// its answers are checked against the loaded documents as a lower bound;
    /// otherwise the collection holds exactly the generated documents and
    /// every answer must be the one the generator gives.
    fn w5(&self, engine: &dyn Engine, last: bool) {
        let limit = 20usize;
        let loaded = checks::AgeCounts::of_generated(self.cfg.docs);
        let exact = !(last && self.cfg.has(WorkloadId::W2));
        let r = self.timed("W5", self.cfg.warmup(), |rng| {
            let lo = data::MIN_AGE + rng.below(59) as i32;
            let hi = lo + 5;
            let ages = engine.age_range(lo, hi, limit)?;
            checks::w5_answer(&loaded, exact, (lo, hi, limit), &ages).map_err(engines::err)?;
            Ok(1)
        });
        self.report_timed("W5", "queries/s", r, false);
    }

    fn w6(&self, engine: &dyn Engine, expected: u64) {
        let n = self.cfg.docs;
        let r = self.timed("W6", Duration::ZERO, |_| {
            let m = engine.scan(data::SCAN_CITY, data::SCAN_MIN_SCORE)?;
            if m == expected {
                Ok(n)
            } else {
                Err(engines::err(format!(
                    "scan matched {m}, expected {expected}"
                )))
            }
        });
        self.report_timed("W6", "docs/s", r, true);
    }

    fn w7(&self, engine: &dyn Engine) {
        let n = self.cfg.docs;
        let per_txn = self.cfg.updates_per_txn.max(1);
        let budget = self.cfg.budget();
        let deadline = Instant::now() + budget;
        let mut short = None;
        let r = self.timed("W7", Duration::ZERO, |rng| {
            let emails: Vec<String> = (0..per_txn)
                .map(|_| data::email(rng.below(n) as i64))
                .collect();
            let done = engine.update_by_email(&emails, deadline)?;
            if done < per_txn && short.is_none() {
                short = Some(done);
            }
            Ok(done as u64)
        });
        match r {
            Ok(t) => {
                let mut m = figure(
                    "W7",
                    self.id,
                    t.units as f64 / t.elapsed.as_secs_f64(),
                    "updates/s",
                );
                m.ops = t.units;
                m.seconds = t.elapsed.as_secs_f64();
                m.p50_us = t.lat.quantile_us(0.5);
                m.p99_us = t.lat.quantile_us(0.99);
                if t.units < per_txn as u64 {
                    m.status = Status::Capped;
                    m.p50_us = None;
                    m.p99_us = None;
                    m.note = Some(format!(
                        "a {per_txn}-update transaction did not finish in {:.0} s: measured on the \
                         {} updates done by then (committed)",
                        t.elapsed.as_secs_f64(),
                        short.unwrap_or(t.units as usize)
                    ));
                } else {
                    m.detail = Some(format!(
                        "{} transactions; latency is per {per_txn}-update transaction",
                        t.ops
                    ));
                }
                self.measured(m);
            }
            Err(e) => self.failed("W7", &e),
        }
    }

    fn w2(&self, engine: &dyn Engine, dir: &Path) {
        let next_id = AtomicI64::new(1 << 40);
        let budget = self.cfg.budget();
        for &k in &self.cfg.writers {
            let wl = format!("W2/{k}");
            self.step(&[&wl], budget + Duration::from_secs(60));
            let before = match engine.count() {
                Ok(c) => c,
                Err(e) => {
                    self.failed(&wl, &e);
                    continue;
                }
            };
            // The disk's cheapest durable write, measured now: a lone writer's durable
            // commit cannot be much faster than this.
            let disk_sync = if k == 1 {
                Some(crate::machine::fsync_probe(dir, 100).and_then(|l| {
                    l.quantile_us(0.5)
                        .ok_or_else(|| std::io::Error::other("no samples"))
                }))
            } else {
                None
            };
            let pb = bar(budget.as_millis() as u64, format!("{} {wl}", self.id));
            let started = Instant::now();
            let stop = std::sync::atomic::AtomicBool::new(false);
            let stop_ref = &stop;
            let progress = std::thread::scope(|s| {
                let p = s.spawn(move || {
                    while !stop_ref.load(std::sync::atomic::Ordering::Relaxed) {
                        pb.set_position(started.elapsed().as_millis() as u64);
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    pb.finish_and_clear();
                });
                let r = match engine.concurrent_inserts(k, budget, &next_id) {
                    Some(r) => r,
                    None => writes::thread_inserts(engine, k, budget, &next_id),
                };
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                let _ = p.join();
                r
            });
            match progress {
                Ok(out) => {
                    self.write_figure(&wl, &out, disk_sync);
                    match engine.count() {
                        Ok(after) => {
                            self.send(Event::Checked(checks::acknowledged_inserts_stored(
                                self.id, &wl, before, out.ok, after,
                            )));
                        }
                        Err(e) => {
                            self.check(&format!("{wl}: count after inserts"), false, e.to_string());
                        }
                    }
                }
                Err(e) => self.failed(&wl, &e),
            }
        }
    }

    /// The figure of one W2 run; `disk_sync` is the fdatasync probe run just
    /// before it (W2/1 only): its p50, or why it measured nothing.
    fn write_figure(&self, wl: &str, out: &WriteOutcome, disk_sync: Option<std::io::Result<f64>>) {
        let secs = out.elapsed.as_secs_f64().max(1e-9);
        let mut m = figure(wl, self.id, out.ok as f64 / secs, "txn/s");
        m.ops = out.ok;
        m.seconds = secs;
        m.p50_us = out.latencies.quantile_us(0.5);
        m.p99_us = out.latencies.quantile_us(0.99);
        let mut notes = Vec::new();
        match disk_sync {
            Some(Ok(p50)) => m.disk_sync_p50_us = Some(p50),
            Some(Err(e)) => notes.push(format!(
                "the fdatasync probe before this run failed ({e}): not measured, so these \
                 commits were not compared with the disk"
            )),
            None => {}
        }
        let errors: u64 = out.errors.values().sum();
        m.errors = errors;
        if errors > 0 {
            let kinds: Vec<String> = out
                .errors
                .iter()
                .map(|(k, v)| format!("{v}× {k}"))
                .collect();
            notes.push(format!("{errors} failed inserts: {}", kinds.join("; ")));
        }
        if !notes.is_empty() {
            m.note = Some(notes.join("; "));
        }
        self.measured(m);
    }
}

fn first(v: &[String]) -> String {
    v.first()
        .map(|s| format!("; first: {s}"))
        .unwrap_or_default()
}

fn figure(workload: &str, engine: &str, value: f64, unit: &str) -> Measurement {
    Measurement {
        workload: workload.into(),
        engine: engine.into(),
        status: Status::Ok,
        value: Some(value),
        unit: unit.into(),
        ops: 0,
        seconds: 0.0,
        p50_us: None,
        p99_us: None,
        errors: 0,
        note: None,
        detail: None,
        disk_sync_p50_us: None,
    }
}
