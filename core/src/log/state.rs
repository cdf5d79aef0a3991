//! The log's state kept in LMDB (the `meta` table), written in the same
//! transaction as the data it describes: where the log ends
//! ([`WalPos`]: the next LSN and where its record goes — so the state LMDB
//! holds is exactly the entries before it), the first entry still retained,
//! and the durable consumers' positions. Also retention: moving the first
//! retained entry forward.

use heed::RoTxn;

use super::entry::FrameHeader;
use super::wal::{Wal, WalPos};
use super::{LogRetention, Lsn};
use crate::error::{Error, Result};
use crate::storage::{Store, Table, Wtx};

/// Meta-table key of the log's end.
const WAL_END: &[u8] = b"wal_end";
/// Meta-table key of the first retained LSN.
const WAL_FIRST: &[u8] = b"wal_first";
/// Meta-table key prefix of durable consumer positions: `#k` ‖ name → u64 BE.
const CONSUMER_PREFIX: &[u8] = b"#k";

/// Retention runs when an appended LSN is a multiple of this.
pub const RETENTION_EVERY: u64 = 32;

/// Most entries one retention pass releases (bounds the work added to a commit).
const RETENTION_BATCH: u64 = 4096;

fn u64_of(bytes: &[u8], what: &str) -> Result<u64> {
    let b: [u8; 8] = bytes.try_into().map_err(|_| Error::Corrupt {
        location: format!("meta/{what}"),
        message: format!("{} bytes (expected 8)", bytes.len()),
        lsn: None,
    })?;
    Ok(u64::from_be_bytes(b))
}

/// Where the log ends in this state (`None`: a database that has no log yet).
pub fn end(store: &Store, txn: &RoTxn<'_>) -> Result<Option<WalPos>> {
    store
        .table(Table::Meta)
        .get(txn, WAL_END)?
        .map(WalPos::decode)
        .transpose()
}

/// Records where the log ends.
pub fn set_end(w: &mut Wtx<'_, '_>, pos: &WalPos) -> Result<()> {
    w.put(Table::Meta, WAL_END, &pos.encode())
}

/// The LSN of the newest entry (0 when the log is empty).
pub fn last_lsn(store: &Store, txn: &RoTxn<'_>) -> Result<Lsn> {
    Ok(end(store, txn)?.map_or(0, |p| p.last_lsn()))
}

/// The first retained LSN (entries before it were released by retention).
pub fn first_retained(store: &Store, txn: &RoTxn<'_>) -> Result<Lsn> {
    match store.table(Table::Meta).get(txn, WAL_FIRST)? {
        Some(b) => u64_of(b, "wal_first"),
        None => Ok(1),
    }
}

/// Records the first retained LSN.
pub fn set_first_retained(w: &mut Wtx<'_, '_>, lsn: Lsn) -> Result<()> {
    w.put(Table::Meta, WAL_FIRST, &lsn.to_be_bytes())
}

/// The first retained and the newest LSN; `(0, 0)` when nothing was ever
/// logged. When the log retains nothing (a database opened from a snapshot
/// holds its state but none of the entries before it) the first retained
/// LSN is the one after the newest.
pub fn bounds(store: &Store, txn: &RoTxn<'_>) -> Result<(Lsn, Lsn)> {
    let last = last_lsn(store, txn)?;
    if last == 0 {
        return Ok((0, 0));
    }
    Ok((first_retained(store, txn)?.min(last + 1), last))
}

/// Whether entries after `after` exist (false: nothing new), failing with
/// [`Error::LogTruncated`] when retention already released entry `after + 1`.
pub fn newer_retained(store: &Store, txn: &RoTxn<'_>, after: Lsn) -> Result<bool> {
    let (first, last) = bounds(store, txn)?;
    if last <= after {
        return Ok(false);
    }
    if first > after + 1 {
        return Err(Error::LogTruncated {
            requested: after + 1,
            first_available: first,
        });
    }
    Ok(true)
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn consumer_key(name: &str) -> Vec<u8> {
    let mut k = CONSUMER_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// A durable consumer's acknowledged LSN, if it is registered.
pub fn consumer_position(store: &Store, txn: &RoTxn<'_>, name: &str) -> Result<Option<Lsn>> {
    match store.table(Table::Meta).get(txn, &consumer_key(name))? {
        Some(b) => Ok(Some(u64_of(b, "consumer")?)),
        None => Ok(None),
    }
}

/// Records a durable consumer's acknowledged LSN.
pub fn set_consumer_position(w: &mut Wtx<'_, '_>, name: &str, lsn: Lsn) -> Result<()> {
    w.put(Table::Meta, &consumer_key(name), &lsn.to_be_bytes())
}

/// Forgets a durable consumer; returns whether it existed.
pub fn remove_consumer(w: &mut Wtx<'_, '_>, name: &str) -> Result<bool> {
    w.delete(Table::Meta, &consumer_key(name))
}

/// Every registered consumer with its acknowledged LSN, by name.
pub fn consumers(store: &Store, txn: &RoTxn<'_>) -> Result<Vec<(String, Lsn)>> {
    let mut out = Vec::new();
    store.scan_prefix(txn, Table::Meta, CONSUMER_PREFIX, None, &mut |k, v| {
        let name = String::from_utf8_lossy(&k[CONSUMER_PREFIX.len()..]).into_owned();
        out.push((name, u64_of(v, "consumer")?));
        Ok(true)
    })?;
    Ok(out)
}

/// Moves the first retained entry forward past the entries beyond the
/// retention limits (see [`LogRetention`]); at most a batch per call.
pub fn enforce_retention(w: &mut Wtx<'_, '_>, wal: &Wal, retention: &LogRetention) -> Result<()> {
    let (store, txn) = (w.store(), w.ro());
    let (mut first, last) = bounds(store, txn)?;
    if last <= first {
        // The newest entry is always kept.
        return Ok(());
    }
    let start = first;
    let cutoff = retention
        .max_age
        .map(|a| now_ms().saturating_sub(a.as_millis() as i64));
    let hold = consumers(store, txn)?.into_iter().map(|(_, l)| l).min();
    let mut entries = last - first + 1;
    let bytes = wal.bytes_from(first);
    let per_entry = (bytes / entries).max(1);
    let mut left_bytes = bytes;
    while first < last && first - start < RETENTION_BATCH {
        let over_hard =
            entries > retention.hard_max_entries || left_bytes > retention.hard_max_bytes;
        let mut over_soft = entries > retention.max_entries || left_bytes > retention.max_bytes;
        if !over_soft {
            if let Some(c) = cutoff {
                let mut old = false;
                wal.visit(first - 1, first, &mut |lsn, frame| {
                    old = FrameHeader::parse(lsn, frame).map_or(true, |h| h.timestamp_ms < c);
                    Ok(false)
                })?;
                over_soft = old;
            }
        }
        let held = hold.is_some_and(|h| first > h);
        if !(over_hard || over_soft && !held) {
            break;
        }
        first += 1;
        entries -= 1;
        left_bytes = left_bytes.saturating_sub(per_entry);
    }
    if first != start {
        set_first_retained(w, first)?;
    }
    Ok(())
}

/// Visits the frames after `after` that the snapshot `txn` holds as
/// committed (up to `upto` when given), in order, until `f` returns false.
/// Fails with [`Error::LogTruncated`] when retention released `after + 1`.
pub fn visit_frames(
    store: &Store,
    txn: &RoTxn<'_>,
    wal: &Wal,
    after: Lsn,
    upto: Option<Lsn>,
    f: &mut dyn FnMut(Lsn, &[u8]) -> Result<bool>,
) -> Result<()> {
    if !newer_retained(store, txn, after)? {
        return Ok(());
    }
    let last = last_lsn(store, txn)?;
    let last = upto.map_or(last, |u| u.min(last));
    wal.visit(after, last, f)
}

/// Raw frames after `after` (consecutive, each checked), stopping once
/// `max_bytes` is reached (at least one frame when any exists), up to
/// `upto` when given.
pub fn read_frames(
    store: &Store,
    txn: &RoTxn<'_>,
    wal: &Wal,
    after: Lsn,
    max_bytes: usize,
    upto: Option<Lsn>,
) -> Result<Vec<(Lsn, Vec<u8>)>> {
    let mut out: Vec<(Lsn, Vec<u8>)> = Vec::new();
    let mut bytes = 0usize;
    visit_frames(store, txn, wal, after, upto, &mut |lsn, frame| {
        bytes += frame.len();
        out.push((lsn, frame.to_vec()));
        Ok(bytes < max_bytes)
    })?;
    Ok(out)
}
