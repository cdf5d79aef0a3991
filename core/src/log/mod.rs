//! The change log ("WAL stream"): one framed, checksummed entry per committed
//! logical transaction, in an append-only log of segment files that is the
//! commit point — a group of commits is acknowledged once its entries are
//! flushed there; LMDB holds the state the log produces.
//!
//! - [`entry`]: the entry format (operations, frame, crc32c, zstd);
//! - [`segment`]: one segment file (header, records, preparation, reuse);
//! - [`wal`]: the log over its segments (append, flush, read, tail scan);
//! - [`state`]: what LMDB records about the log (its end, the first retained
//!   entry, consumer positions) and retention;
//! - [`checkpoint`]: the record of the last durable, intact LMDB state;
//! - [`signal`]: waking waiters when a commit lands.
//!
//! This is the low half of the log: formats and files. What reads it —
//! change streams, consumers, the follower API — lives with the handles
//! (`handles/changes.rs`, `handles/watch.rs`); redoing entries lives in
//! `exec/redo.rs`; the commit protocol, checkpoints and recovery in `write/`.

pub mod checkpoint;
pub mod entry;
pub mod segment;
pub mod signal;
pub mod state;
pub mod wal;

use std::time::Duration;

pub use entry::{LogEntry, LogOp, OpKind};

/// A log sequence number: the position of a committed transaction in the log.
/// The first entry is 1; 0 means "before everything".
pub type Lsn = u64;

/// How much of the log to keep. Entries beyond the soft limits (count, bytes,
/// age) are removed, oldest first, unless a registered durable consumer has not
/// acknowledged them yet; beyond the hard limits they are removed anyway, and
/// such a consumer is told it must resynchronise. The newest entry is always kept.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRetention {
    /// Keep at most this many entries. Default 100,000.
    pub max_entries: u64,
    /// Keep at most about this many bytes of entries (LMDB pages). Default 256 MiB.
    pub max_bytes: u64,
    /// Drop entries older than this. Default: no age limit.
    pub max_age: Option<Duration>,
    /// Entries held for lagging consumers: at most this many. Default 10,000,000.
    pub hard_max_entries: u64,
    /// Entries held for lagging consumers: at most about this many bytes. Default 4 GiB.
    pub hard_max_bytes: u64,
}

impl Default for LogRetention {
    fn default() -> Self {
        LogRetention {
            max_entries: 100_000,
            max_bytes: 256 << 20,
            max_age: None,
            hard_max_entries: 10_000_000,
            hard_max_bytes: 4 << 30,
        }
    }
}

impl LogRetention {
    /// Keeps at most `n` entries (soft limit).
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = n;
        self
    }

    /// Keeps at most about `bytes` bytes (soft limit).
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Drops entries older than `age` (soft limit).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// Hard limits that apply even to entries consumers still need.
    pub fn hard_limits(mut self, entries: u64, bytes: u64) -> Self {
        self.hard_max_entries = entries;
        self.hard_max_bytes = bytes;
        self
    }
}
