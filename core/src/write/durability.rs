//! Durability modes and the LMDB flags behind them.

use std::time::Duration;

/// When a write is acknowledged, and what a crash can take away.
///
/// No mode uses LMDB's `MDB_NOSYNC` or `MDB_MAPASYNC`, which can corrupt the
/// file when the machine loses power: every mode keeps the database
/// consistent after a crash of the process, the OS or the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// The default. A write returns after the LMDB commit that contains it has
    /// flushed both the data pages and the meta page to disk (two `fdatasync`s,
    /// LMDB's default). Concurrent writers share commits (group commit), so
    /// the two flushes are paid once per group, not per write.
    #[default]
    Immediate,
    /// Same guarantee as `Immediate` (acknowledged only once durable), but the
    /// writer waits up to `max_delay` after the first pending write so that more
    /// writes join the same commit: higher latency, more throughput.
    Batched {
        /// Longest extra wait before a group is committed.
        max_delay: Duration,
    },
    /// LMDB's `MDB_NOMETASYNC`: each commit flushes its data pages but not the
    /// meta page, which reaches disk with the next commit or the OS's own
    /// write-back. An OS crash or power loss may undo the last committed
    /// transactions; it never corrupts the file (LMDB keeps ACI). A process
    /// crash loses nothing. For caches and tests.
    None,
}
