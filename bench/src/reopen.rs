//! The reopen benchmark: how long opening a database takes after its
//! writer process was killed (SIGKILL) under write load.
//!
//! A database of N documents (the suite's documents and indexes) is loaded
//! once. Each cycle starts a child process (this binary, `reopen --child`)
//! that opens the database and runs durable single-document writers until it
//! is killed at a random moment; the parent then times `Database::open` plus
//! the first read, twice:
//! - as after a process crash (the same boot: LMDB's writes are in the page
//!   cache, nothing is replayed), and
//! - as after a power loss, by presenting another boot id to the open
//!   (`COLLECTION_STORE_BOOT_ID`): recovery restores the last checkpoint and
//!   replays the log written after it. The page cache stays warm, so this
//!   measures the recovery work, not cold-disk reads.
//!
//! Each open is checked: every write the child acknowledged (it prints the
//! highest id it inserted) is there.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use collection_store::{Database, DatabaseOptions, Durability, IndexSpec};
use serde_json::json;

use crate::data::{self, Rng};

/// Result of the benchmark.
#[derive(Debug, Clone)]
pub struct ReopenReport {
    /// Documents loaded before the cycles.
    pub docs: u64,
    /// Kill cycles.
    pub cycles: usize,
    /// Open + first read after a process crash, milliseconds, one per cycle.
    pub after_crash_ms: Vec<f64>,
    /// Open + first read as after a power loss, milliseconds, one per cycle.
    pub after_power_loss_ms: Vec<f64>,
    /// Writes the children acknowledged in total.
    pub acknowledged: u64,
}

type BoxResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// First id the children write (above the loaded documents).
const CHILD_BASE: i64 = 1 << 40;

fn open(dir: &Path) -> collection_store::Result<Database> {
    Database::open_with(
        dir,
        DatabaseOptions::default().durability(Durability::Immediate),
    )
}

/// Loads `docs` documents with the suite's two indexes.
fn load(dir: &Path, docs: u64) -> BoxResult<()> {
    let db = open(dir)?;
    let users = db.collection("users")?;
    users.create_index(IndexSpec::new([("email", 1)]).unique())?;
    users.create_index(IndexSpec::new([("age", 1)]))?;
    let mut i = 0i64;
    while (i as u64) < docs {
        let end = (i + 10_000).min(docs as i64);
        let batch = (i..end)
            .map(|k| serde_json::to_value(data::user(k)))
            .collect::<Result<Vec<_>, _>>()?;
        users.insert_many(batch)?;
        i = end;
    }
    Ok(())
}

/// The child: `writers` threads inserting one durable document at a time,
/// printing each acknowledged id's high-water mark, until killed.
pub fn child(dir: &Path, writers: usize, cycle: u64) -> BoxResult<()> {
    let db = open(dir)?;
    let users = db.collection("users")?;
    let out = std::sync::Arc::new(std::sync::Mutex::new(std::io::stdout()));
    {
        let mut o = out.lock().map_err(|_| "stdout lock poisoned")?;
        writeln!(o, "ready")?;
        o.flush()?;
    }
    std::thread::scope(|s| {
        for w in 0..writers as i64 {
            let (users, out) = (users.clone(), out.clone());
            s.spawn(move || {
                let mut n = 0i64;
                loop {
                    let id = CHILD_BASE + ((cycle as i64) << 24) + (n << 8) + w;
                    let mut u = data::user(id);
                    u.email = format!("reopen{id}@example.com");
                    let Ok(v) = serde_json::to_value(&u) else {
                        return;
                    };
                    if users.insert_one(v).is_err() {
                        return;
                    }
                    if let Ok(mut o) = out.lock() {
                        let _ = writeln!(o, "{id}");
                        let _ = o.flush();
                    }
                    n += 1;
                }
            });
        }
    });
    Ok(())
}

/// Starts a writer child on `dir`, kills it (SIGKILL) `after_ms` after it
/// is ready, and returns how many writes it acknowledged and the last 200
/// of their ids.
fn kill_writer(
    exe: &Path,
    dir: &Path,
    writers: usize,
    cycle: usize,
    after_ms: u64,
) -> BoxResult<(u64, Vec<i64>)> {
    let mut child = Command::new(exe)
        .args(["reopen", "--child"])
        .arg(dir)
        .args(["--writers", &writers.to_string()])
        .args(["--cycle", &cycle.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no child stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    match lines.next() {
        Some(Ok(l)) if l == "ready" => {}
        other => {
            let _ = child.kill();
            return Err(format!("the writer child did not start: {other:?}").into());
        }
    }
    let reader = std::thread::spawn(move || {
        lines
            .map_while(Result::ok)
            .filter_map(|l| l.parse::<i64>().ok())
            .collect::<Vec<_>>()
    });
    std::thread::sleep(Duration::from_millis(after_ms));
    child.kill()?; // SIGKILL
    child.wait()?;
    let acked = reader.join().map_err(|_| "reader thread panicked")?;
    if acked.is_empty() {
        return Err("the writer child acknowledged nothing before it was killed".into());
    }
    Ok((
        acked.len() as u64,
        acked.iter().rev().take(200).copied().collect(),
    ))
}

/// Opens `dir`, reads one document, and checks the acknowledged ids; returns
/// the open + first read time.
fn timed_open(dir: &Path, acked: &[i64]) -> BoxResult<f64> {
    let t = Instant::now();
    let db = open(dir)?;
    let users = db.collection("users")?;
    let first = users.get(json!(0))?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    if first.is_none() {
        return Err("document 0 is missing after the reopen".into());
    }
    for id in acked {
        if users.get(json!(id))?.is_none() {
            return Err(format!("acknowledged document {id} is missing after the reopen").into());
        }
    }
    Ok(ms)
}

/// Runs the benchmark: loads `docs` documents into `dir` (a temporary
/// directory under it), then `cycles` kill-and-reopen cycles with `writers`
/// child writers running for up to `load_for` each.
pub fn run(
    exe: &Path,
    base: Option<&Path>,
    docs: u64,
    cycles: usize,
    writers: usize,
    load_for: Duration,
) -> BoxResult<ReopenReport> {
    let tmp = match base {
        Some(b) => tempfile::tempdir_in(b)?,
        None => tempfile::tempdir()?,
    };
    let dir: PathBuf = tmp.path().join("db");
    eprintln!("reopen: loading {docs} documents");
    load(&dir, docs)?;
    let mut rng = Rng::new(data::mix(docs ^ 0x5eed));
    let mut report = ReopenReport {
        docs,
        cycles,
        after_crash_ms: Vec::new(),
        after_power_loss_ms: Vec::new(),
        acknowledged: 0,
    };
    let ms = load_for.as_millis() as u64;
    for cycle in 0..cycles {
        let (n, acked) = kill_writer(exe, &dir, writers, cycle, ms / 2 + rng.below(ms / 2 + 1))?;
        report.acknowledged += n;
        report.after_crash_ms.push(timed_open(&dir, &acked)?);
        // Once more, as if the machine had restarted (the open above closed
        // with a checkpoint, so another child writes and is killed first).
        let (n, acked) = kill_writer(
            exe,
            &dir,
            writers,
            cycles + cycle,
            ms / 2 + rng.below(ms / 2 + 1),
        )?;
        report.acknowledged += n;
        // The parent runs no other thread here, so changing the environment is safe.
        std::env::set_var(
            "COLLECTION_STORE_BOOT_ID",
            format!("reopen-benchmark-{cycle}"),
        );
        let r = timed_open(&dir, &acked);
        std::env::remove_var("COLLECTION_STORE_BOOT_ID");
        report.after_power_loss_ms.push(r?);
        eprintln!(
            "reopen cycle {}: after crash {:.1} ms, as after power loss {:.1} ms",
            cycle + 1,
            report.after_crash_ms[cycle],
            report.after_power_loss_ms[cycle]
        );
    }
    Ok(report)
}

/// Median and maximum of `v`.
pub fn p50_max(v: &[f64]) -> (f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let p50 = s.get(s.len() / 2).copied().unwrap_or(0.0);
    (p50, s.last().copied().unwrap_or(0.0))
}
