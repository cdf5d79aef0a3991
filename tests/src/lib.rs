//! Shared helpers for the workspace-level integration tests in `tests/tests/`
//! and the child processes they spawn (`src/bin/crash_child.rs`,
//! `src/bin/mp_child.rs`).
//!
//! | test | what it checks | child binary |
//! |---|---|---|
//! | `tests/crash_recovery.rs` | SIGKILL at random moments; acknowledged transactions survive, unacknowledged ones are all-or-nothing, `verify()` is clean | `crash_child` |
//! | `tests/multi_process.rs` | several processes on one directory: visibility, serialized writes, catalog changes seen without reopening | `mp_child` |
//! | `tests/group_commit.rs` | in-process group commit: mixed good/failing statements, commits shared, acknowledged order, durability modes, map growth mid-batch, no deadlock with explicit transactions | `mp_child` (kill test) |
//! | `tests/map_growth.rs` | a live iterator plus a map growth does not stall other readers | — |
//! | `tests/map_growth_readers.rs` | map growth is not starved by a steady stream of short reads from other threads | — |
//! | `tests/power_loss.rs` | crash images of a power loss at many points of traced workloads (every durability mode): each opens, holds every acknowledged transaction, nothing partial, `verify()` clean; a control that acknowledges too early must be caught | `powerloss_workload`, `powerloss_check` |
//! | `tests/replication_processes.rs` | a replica process SIGKILLed mid-stream (and inside snapshot bootstraps) resumes without gaps or duplicates; a semi-synchronous primary process SIGKILLed right after acknowledging loses no acknowledged write | `repl_child` |
//!
//! Environment variables: `CS_CRASH_CYCLES` (kill cycles of the crash test, default 100),
//! `CS_CRASH_SEED` (its random seed), `CS_CRASH_DIR` (database directory to use and keep),
//! `CS_POWERLOSS_IMAGES` (crash images per durability mode, default 50), `CS_POWERLOSS_SEED`.

pub mod powerloss;

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use collection_store::Durability;
use serde_json::Value;

/// A small deterministic pseudo-random generator (SplitMix64), so that the
/// tests need no extra dependency and a failing run can be replayed by seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform value in `lo..hi` (`hi > lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next_u64() % den < num
    }
}

/// A seed from the clock, for runs that are not asked to replay a seed.
pub fn clock_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    t.as_nanos() as u64 ^ (std::process::id() as u64) << 32
}

static OUT: Mutex<()> = Mutex::new(());

/// Writes one JSON line to stdout and flushes it, under a process-wide lock so
/// that lines of different threads never interleave. Once this returns the
/// line is in the pipe (kernel memory): a SIGKILL afterwards cannot lose it.
pub fn emit(v: &Value) {
    let mut line = serde_json::to_string(v).expect("serializable");
    line.push('\n');
    let _g = OUT.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = std::io::stdout().lock();
    // A closed pipe means the parent is gone; nothing useful is left to do.
    if out
        .write_all(line.as_bytes())
        .and_then(|_| out.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// Parses a durability mode name: `immediate`, `batched` (2 ms) or `none`.
pub fn durability_from_str(s: &str) -> Durability {
    match s {
        "immediate" => Durability::Immediate,
        "batched" => Durability::Batched {
            max_delay: Duration::from_millis(2),
        },
        "none" => Durability::None,
        other => panic!("unknown durability mode {other:?}"),
    }
}

/// Creates the marker file `name` in `dir` (a cross-process signal).
pub fn signal(dir: &Path, name: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, b"1").expect("write signal file");
    std::fs::rename(&tmp, dir.join(name)).expect("publish signal file");
}

/// Waits until the marker file `name` exists in `dir`; an error after `timeout`.
pub fn wait_signal(dir: &Path, name: &str, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while !dir.join(name).exists() {
        if Instant::now() > deadline {
            return Err(format!(
                "timed out after {timeout:?} waiting for signal '{name}' in {}",
                dir.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// Polls `f` until it returns `Some`, or fails after `timeout` with `what`.
pub fn poll_until<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The variant name of an engine error (`DuplicateKey`, `TypeMismatch`, ...),
/// used in the line protocol between child and parent.
pub fn error_kind(e: &collection_store::Error) -> String {
    let dbg = format!("{e:?}");
    dbg.split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("")
        .to_string()
}

/// The workload shared by `crash_child` (which runs it) and
/// `tests/crash_recovery.rs` (which checks what survived a SIGKILL).
///
/// Collections: `accounts` (`_id` 0..[`N_ACCOUNTS`](crate::crash::N_ACCOUNTS), `balance`, unique
/// `email`, `last` = id of the last transaction that touched it), `orders`
/// (index on `user`), `ledger` (one entry per committed transaction, unique
/// index on `seq`), `meta` (`{_id: "seq", seq, floor}`: the commit sequence
/// and the highest pruned ledger seq), written by explicit transactions; and
/// `events` (unique index on `key`, index on `g, n`) and `heads`, written by
/// single statements from several threads so that group commit merges them.
pub mod crash {
    /// Accounts, `_id` 0..N_ACCOUNTS.
    pub const N_ACCOUNTS: i64 = 16;
    /// Initial balance of each account; the sum never changes.
    pub const INITIAL_BALANCE: i64 = 1000;
    /// Ledger entries kept by a prune transaction (older seqs are deleted).
    pub const LEDGER_KEEP: i64 = 300;
    /// Above this many orders, transfers turn into cancels, which pick the
    /// oldest order of all users.
    pub const ORDER_SOFT_CAP: u64 = 150;
    /// Threads running explicit multi-collection transactions.
    pub const TX_THREADS: u64 = 2;
    /// Threads running single statements (group commit).
    pub const GC_THREADS: u64 = 3;
    /// A statement of thread `g` deletes its events with `n` below its own `n` minus this.
    pub const EVENT_WINDOW: i64 = 30;

    /// The single statement a group-commit thread runs as its `k`-th.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum GcOp {
        /// `insert_many` of `e{g}-{n}-a` and `e{g}-{n}-b` (atomic pair).
        InsertPair,
        /// Upsert of `heads/h{g}`: `$inc count`, `$set n`, `$setOnInsert label: "x"`.
        Head,
        /// `delete_many({g, n: {$lt: n - EVENT_WINDOW}})`.
        Prune,
        /// Insert of an existing `_id` (`e{g}-{n-1}-a`): DuplicateKey on `_id_`.
        DupId,
        /// Insert of a new `_id` whose `key` exists (`k{g}-{n-2}-a`): DuplicateKey on `key_1`.
        DupKey,
        /// `$inc` on the string `label` of `h{g}`: TypeMismatch.
        BadInc,
    }

    /// Which statement is the `k`-th of a group-commit thread (deterministic,
    /// so the parent knows what an in-flight statement would have done).
    pub fn gc_op(k: u64) -> GcOp {
        match k % 10 {
            3 => GcOp::Head,
            6 => GcOp::Prune,
            9 => match (k / 10) % 3 {
                0 => GcOp::DupId,
                1 => GcOp::DupKey,
                _ => GcOp::BadInc,
            },
            _ => GcOp::InsertPair,
        }
    }

    /// The `n` of statement `k` in cycle `cycle` (increases across cycles).
    pub fn gc_n(cycle: u64, k: u64) -> i64 {
        (cycle * 1_000_000 + k) as i64
    }
}

/// The id of the last committed LMDB transaction of the database in `dir`,
/// read from the two meta pages of `data.mdb` (the newer wins). Counting
/// commits this way shows whether concurrent statements shared them.
pub fn lmdb_last_txnid(dir: &Path) -> std::io::Result<u64> {
    const MAGIC: u32 = 0xBEEF_C0DE;
    let data = std::fs::read(dir.join("data.mdb"))?;
    let page = 4096;
    // Page header (16 bytes), then MDB_meta: magic, version (u32 each),
    // address, map size (8 each), two MDB_db (48 each), last page (8), txnid (8).
    let meta = |p: usize| -> Option<u64> {
        let base = p * page + 16;
        let magic = u32::from_le_bytes(data.get(base..base + 4)?.try_into().ok()?);
        if magic != MAGIC {
            return None;
        }
        let at = base + 4 + 4 + 8 + 8 + 96 + 8;
        Some(u64::from_le_bytes(data.get(at..at + 8)?.try_into().ok()?))
    };
    match (meta(0), meta(1)) {
        (Some(a), Some(b)) => Ok(a.max(b)),
        (Some(a), None) | (None, Some(a)) => Ok(a),
        (None, None) => Err(std::io::Error::other("no LMDB meta page in data.mdb")),
    }
}
