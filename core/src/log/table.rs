//! The `log` table (LSN, 8 bytes big-endian → frame) and the consumer
//! positions kept in the `meta` table: appending, bounds, reading frames,
//! and retention.

use heed::{RoTxn, RwTxn};

use super::entry::{encode_frame, FrameHeader, LogOp};
use super::{LogRetention, Lsn};
use crate::error::{Error, Result};
use crate::storage::{Store, Table};

/// Meta-table key prefix of durable consumer positions: `#k` ‖ name → u64 BE.
const CONSUMER_PREFIX: &[u8] = b"#k";

/// Retention runs when an appended LSN is a multiple of this.
const RETENTION_EVERY: u64 = 32;

/// Most entries one retention pass removes (bounds the work added to a commit).
const RETENTION_BATCH: usize = 4096;

fn lsn_key(lsn: Lsn) -> [u8; 8] {
    lsn.to_be_bytes()
}

fn key_lsn(key: &[u8]) -> Result<Lsn> {
    let b: [u8; 8] = key.try_into().map_err(|_| Error::Corrupt {
        location: "log table".into(),
        message: format!("key of {} bytes (expected 8)", key.len()),
        lsn: None,
    })?;
    Ok(u64::from_be_bytes(b))
}

/// The LSN of the newest entry (0 when the log is empty).
pub fn last_lsn(store: &Store, txn: &RoTxn<'_>) -> Result<Lsn> {
    match store.table(Table::Log).last(txn)? {
        Some((k, _)) => key_lsn(k),
        None => Ok(0),
    }
}

/// The first retained and the newest LSN; `(0, 0)` when the log is empty.
pub fn bounds(store: &Store, txn: &RoTxn<'_>) -> Result<(Lsn, Lsn)> {
    let db = store.table(Table::Log);
    let first = match db.first(txn)? {
        Some((k, _)) => key_lsn(k)?,
        None => return Ok((0, 0)),
    };
    Ok((first, last_lsn(store, txn)?))
}

/// Whether entries after `after` exist (false: nothing new), failing with
/// [`Error::LogTruncated`] when retention already removed entry `after + 1`.
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

/// Appends one entry holding `ops` (which must not be empty), committed at
/// `time_ms`, in `txn`; returns its LSN.
pub fn append(
    store: &Store,
    txn: &mut RwTxn<'_>,
    ops: &[LogOp],
    time_ms: i64,
    retention: &LogRetention,
) -> Result<Lsn> {
    let lsn = last_lsn(store, txn)? + 1;
    let frame = encode_frame(lsn, time_ms, ops)?;
    store.table(Table::Log).put(txn, &lsn_key(lsn), &frame)?;
    if lsn % RETENTION_EVERY == 0 {
        enforce_retention(store, txn, retention)?;
    }
    Ok(lsn)
}

/// Stores an already framed entry under `lsn` (a follower copying its leader's log).
pub fn put_frame(store: &Store, txn: &mut RwTxn<'_>, lsn: Lsn, frame: &[u8]) -> Result<()> {
    store.table(Table::Log).put(txn, &lsn_key(lsn), frame)?;
    Ok(())
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Raw frames with LSN greater than `after`, in order, stopping after the
/// first frame that brings the total past `max_bytes` (at least one frame when
/// any exists). Each frame's header and checksum are verified.
pub fn read_frames(
    store: &Store,
    txn: &RoTxn<'_>,
    after: Lsn,
    max_bytes: usize,
) -> Result<Vec<(Lsn, Vec<u8>)>> {
    if !newer_retained(store, txn, after)? {
        return Ok(Vec::new());
    }
    let mut out: Vec<(Lsn, Vec<u8>)> = Vec::new();
    let mut bytes = 0usize;
    visit_frames(store, txn, after, &mut |lsn, frame| {
        let expect = after + 1 + out.len() as u64;
        if lsn != expect {
            return Err(Error::Corrupt {
                location: "log table".into(),
                message: format!("entry {expect} is missing (next is {lsn})"),
                lsn: Some(expect),
            });
        }
        FrameHeader::parse(lsn, frame)?;
        bytes += frame.len();
        out.push((lsn, frame.to_vec()));
        Ok(bytes < max_bytes)
    })?;
    Ok(out)
}

/// Visits stored frames (unchecked) from `after + 1` on, until `f` returns false.
pub fn visit_frames(
    store: &Store,
    txn: &RoTxn<'_>,
    after: Lsn,
    f: &mut dyn FnMut(Lsn, &[u8]) -> Result<bool>,
) -> Result<()> {
    let from = lsn_key(after.saturating_add(1));
    for item in store.table(Table::Log).range(
        txn,
        &(
            std::ops::Bound::Included(&from[..]),
            std::ops::Bound::Unbounded,
        ),
    )? {
        let (k, v) = item?;
        if !f(key_lsn(k)?, v)? {
            break;
        }
    }
    Ok(())
}

fn consumer_key(name: &str) -> Vec<u8> {
    let mut k = CONSUMER_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// A durable consumer's acknowledged LSN, if it is registered.
pub fn consumer_position(store: &Store, txn: &RoTxn<'_>, name: &str) -> Result<Option<Lsn>> {
    match store.table(Table::Meta).get(txn, &consumer_key(name))? {
        Some(b) => Ok(Some(key_lsn(b)?)),
        None => Ok(None),
    }
}

/// Records a durable consumer's acknowledged LSN.
pub fn set_consumer_position(
    store: &Store,
    txn: &mut RwTxn<'_>,
    name: &str,
    lsn: Lsn,
) -> Result<()> {
    store
        .table(Table::Meta)
        .put(txn, &consumer_key(name), &lsn.to_be_bytes())?;
    Ok(())
}

/// Forgets a durable consumer; returns whether it existed.
pub fn remove_consumer(store: &Store, txn: &mut RwTxn<'_>, name: &str) -> Result<bool> {
    Ok(store.table(Table::Meta).delete(txn, &consumer_key(name))?)
}

/// Every registered consumer with its acknowledged LSN, by name.
pub fn consumers(store: &Store, txn: &RoTxn<'_>) -> Result<Vec<(String, Lsn)>> {
    let mut out = Vec::new();
    store.scan_prefix(txn, Table::Meta, CONSUMER_PREFIX, None, &mut |k, v| {
        let name = String::from_utf8_lossy(&k[CONSUMER_PREFIX.len()..]).into_owned();
        out.push((name, key_lsn(v)?));
        Ok(true)
    })?;
    Ok(out)
}

/// Removes the oldest entries beyond the retention limits (see [`LogRetention`]).
pub fn enforce_retention(
    store: &Store,
    txn: &mut RwTxn<'_>,
    retention: &LogRetention,
) -> Result<()> {
    let db = store.table(Table::Log);
    let stat = db.stat(txn)?;
    let entries = stat.entries as u64;
    if entries <= 1 {
        return Ok(());
    }
    let bytes = ((stat.leaf_pages + stat.overflow_pages + stat.branch_pages) as u64)
        .saturating_mul(u64::from(stat.page_size));
    let per_entry = (bytes / entries).max(1);
    let cutoff = retention
        .max_age
        .map(|a| now_ms().saturating_sub(a.as_millis() as i64));
    let hold = consumers(store, txn)?.into_iter().map(|(_, l)| l).min();
    let last = last_lsn(store, txn)?;
    let mut doomed: Vec<Lsn> = Vec::new();
    let mut left = entries;
    let mut left_bytes = bytes;
    for item in db.iter(txn)? {
        let (k, v) = item?;
        let lsn = key_lsn(k)?;
        if lsn >= last || doomed.len() >= RETENTION_BATCH {
            break;
        }
        let over_hard = left > retention.hard_max_entries || left_bytes > retention.hard_max_bytes;
        let over_soft = left > retention.max_entries
            || left_bytes > retention.max_bytes
            || cutoff
                .is_some_and(|c| FrameHeader::parse(lsn, v).map_or(true, |h| h.timestamp_ms < c));
        let held = hold.is_some_and(|h| lsn > h);
        if !(over_hard || over_soft && !held) {
            break;
        }
        doomed.push(lsn);
        left -= 1;
        left_bytes = left_bytes.saturating_sub(per_entry);
    }
    for lsn in doomed {
        db.delete(txn, &lsn_key(lsn))?;
    }
    Ok(())
}
