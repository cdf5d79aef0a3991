//! Durability modes: when a commit is acknowledged.

use std::time::Duration;

/// When a write is acknowledged, and what a crash can take away.
///
/// Every commit writes its entries to the write-ahead log before LMDB commits
/// (LMDB itself never flushes: checkpoints make its state durable, see
/// `write/checkpoint.rs`). The modes differ only in whether the log is
/// flushed before the write returns. In every mode a crash of the process,
/// the operating system or the machine leaves a database that opens and
/// holds a prefix of the committed transactions, and a process crash loses
/// nothing that was committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// The default. A write returns once the log holding its entry is flushed
    /// (one sequential `fdatasync` of the current segment). Concurrent
    /// writers share commits (group commit) and flushes (one flush covers
    /// every entry written before it started), so the flush is paid once per
    /// group, not per write. Nothing acknowledged is lost to a power loss.
    #[default]
    Immediate,
    /// Same guarantee as `Immediate` (acknowledged only once durable), but the
    /// writer waits up to `max_delay` after the first pending write so that more
    /// writes join the same commit: higher latency, more throughput.
    Batched {
        /// Longest extra wait before a group is committed.
        max_delay: Duration,
    },
    /// A write returns once committed, before the log is flushed; the log is
    /// flushed by the next checkpoint (`DatabaseOptions::checkpoint_interval`,
    /// 1 s by default). A power loss or OS crash may undo the commits of the
    /// last interval (never part of one, never the middle of the order); a
    /// process crash loses nothing. For caches and tests.
    None,
}
