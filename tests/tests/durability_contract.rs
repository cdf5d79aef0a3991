//! The durability contract, counted: how many sync points a lone durable
//! commit has in each `Durability` mode.
//!
//! A *sync point* is a call that makes earlier writes durable — `fdatasync`,
//! `fsync`, `msync(MS_SYNC)` — or a write to a file opened with `O_DSYNC` /
//! `O_SYNC` (LMDB writes its meta page through such a descriptor instead of
//! calling `fdatasync` a second time). This test binary interposes those libc
//! functions (the engine's LMDB is linked into it statically, so its calls
//! resolve to the definitions below), counts them around each commit of a
//! fixed workload, and passes each call on to the kernel unchanged.
//!
//! The commit point is the write-ahead log: a durable commit flushes its
//! segment once, LMDB itself never flushes (checkpoints make its state
//! durable, on their own schedule — pushed out of this test's way). A
//! mapping mistake changes the count and fails the test: `Immediate` or
//! `Batched` acknowledging without the segment flush (0), `None` flushing per
//! commit (1), or LMDB opened without `MDB_NOSYNC` (its data flush and its
//! synchronous meta-page write on top). The power-loss test
//! (`power_loss.rs`) proves the flushes that are made suffice; this one pins
//! how many there are. When the durable write path changes, update
//! [`CONTRACT`] here.

use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use collection_store::{Database, DatabaseOptions, Durability};
use serde_json::json;

/// Sync points of one lone commit (no other writer), per mode: at least,
/// at most.
///
/// - `Immediate`: the log segment holding the commit's entry is flushed
///   (`fdatasync`) before the write returns; LMDB's commit syncs nothing: 1.
/// - `Batched`: the same commit after waiting for company: 1.
/// - `None`: nothing before the write returns (the next checkpoint flushes
///   the log): 0.
const CONTRACT: [(&str, Durability, SyncPoints); 3] = [
    (
        "Immediate",
        Durability::Immediate,
        SyncPoints { min: 1, max: 1 },
    ),
    (
        "Batched",
        Durability::Batched {
            max_delay: Duration::from_millis(1),
        },
        SyncPoints { min: 1, max: 1 },
    ),
    ("None", Durability::None, SyncPoints { min: 0, max: 0 }),
];

/// Checkpoints (which do flush) are pushed beyond the test's run.
const NO_CHECKPOINT: Duration = Duration::from_secs(24 * 3600);

/// Reads never sync, in any mode.
const READ: SyncPoints = SyncPoints { min: 0, max: 0 };

#[derive(Debug, Clone, Copy)]
struct SyncPoints {
    min: u64,
    max: u64,
}

// ---------------------------------------------------------------------------
// The interposed libc calls
// ---------------------------------------------------------------------------

static COUNTING: AtomicBool = AtomicBool::new(false);
static FLUSHES: AtomicU64 = AtomicU64::new(0);
static SYNC_WRITES: AtomicU64 = AtomicU64::new(0);

fn flush_called() {
    if COUNTING.load(SeqCst) {
        FLUSHES.fetch_add(1, SeqCst);
    }
}

fn write_called(fd: c_int) {
    if !COUNTING.load(SeqCst) {
        return;
    }
    // SAFETY: F_GETFL only reads the descriptor's status flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // O_SYNC includes the O_DSYNC bit on Linux.
    if flags >= 0 && flags & libc::O_DSYNC != 0 {
        SYNC_WRITES.fetch_add(1, SeqCst);
    }
}

// SAFETY (all below): each function has the C signature of the libc function
// it replaces and forwards its arguments unchanged to the system call of the
// same name; the caller's pointers are passed through, never dereferenced
// (the functions taking pointers are `unsafe`: their callers vouch for them).

#[no_mangle]
pub extern "C" fn fdatasync(fd: c_int) -> c_int {
    flush_called();
    // SAFETY: the syscall takes an fd by value; a bad fd is an EBADF return.
    unsafe { libc::syscall(libc::SYS_fdatasync, fd) as c_int }
}

#[no_mangle]
pub extern "C" fn fsync(fd: c_int) -> c_int {
    flush_called();
    // SAFETY: the syscall takes an fd by value; a bad fd is an EBADF return.
    unsafe { libc::syscall(libc::SYS_fsync, fd) as c_int }
}

/// The libc `msync`, counted.
///
/// # Safety
///
/// `addr`/`len` must describe a mapping of this process, as for libc's `msync`.
#[no_mangle]
pub unsafe extern "C" fn msync(addr: *mut c_void, len: libc::size_t, flags: c_int) -> c_int {
    if flags & libc::MS_SYNC != 0 {
        flush_called();
    }
    // SAFETY: the pointers are the caller\'s, passed on unchanged (this function\'s contract).
    unsafe { libc::syscall(libc::SYS_msync, addr, len, flags) as c_int }
}

/// The libc `pwrite`, counted.
///
/// # Safety
///
/// `buf` must point to `count` readable bytes, as for libc's `pwrite`.
#[no_mangle]
pub unsafe extern "C" fn pwrite(
    fd: c_int,
    buf: *const c_void,
    count: libc::size_t,
    offset: libc::off_t,
) -> libc::ssize_t {
    write_called(fd);
    // SAFETY: the pointers are the caller\'s, passed on unchanged (this function\'s contract).
    unsafe { libc::syscall(libc::SYS_pwrite64, fd, buf, count, offset) as libc::ssize_t }
}

/// The libc `pwrite64`, counted.
///
/// # Safety
///
/// `buf` must point to `count` readable bytes, as for libc's `pwrite64`.
#[no_mangle]
pub unsafe extern "C" fn pwrite64(
    fd: c_int,
    buf: *const c_void,
    count: libc::size_t,
    offset: libc::off64_t,
) -> libc::ssize_t {
    write_called(fd);
    // SAFETY: the pointers are the caller\'s, passed on unchanged (this function\'s contract).
    unsafe { libc::syscall(libc::SYS_pwrite64, fd, buf, count, offset) as libc::ssize_t }
}

/// The libc `write`, counted.
///
/// # Safety
///
/// `buf` must point to `count` readable bytes, as for libc's `write`.
#[no_mangle]
pub unsafe extern "C" fn write(
    fd: c_int,
    buf: *const c_void,
    count: libc::size_t,
) -> libc::ssize_t {
    write_called(fd);
    // SAFETY: the pointers are the caller\'s, passed on unchanged (this function\'s contract).
    unsafe { libc::syscall(libc::SYS_write, fd, buf, count) as libc::ssize_t }
}

/// The libc `writev`, counted.
///
/// # Safety
///
/// `iov` must point to `iovcnt` valid `iovec`s, as for libc's `writev`.
#[no_mangle]
pub unsafe extern "C" fn writev(
    fd: c_int,
    iov: *const libc::iovec,
    iovcnt: c_int,
) -> libc::ssize_t {
    write_called(fd);
    // SAFETY: the pointers are the caller\'s, passed on unchanged (this function\'s contract).
    unsafe { libc::syscall(libc::SYS_writev, fd, iov, iovcnt) as libc::ssize_t }
}

/// Sync points made while `f` runs (on any thread of this process).
fn sync_points(f: impl FnOnce()) -> (u64, u64) {
    FLUSHES.store(0, SeqCst);
    SYNC_WRITES.store(0, SeqCst);
    COUNTING.store(true, SeqCst);
    f();
    COUNTING.store(false, SeqCst);
    (FLUSHES.load(SeqCst), SYNC_WRITES.load(SeqCst))
}

// ---------------------------------------------------------------------------
// The workload
// ---------------------------------------------------------------------------

/// Lone commits of each kind checked per mode.
const COMMITS: usize = 10;

fn check(mode: &str, what: &str, want: SyncPoints, (flushes, sync_writes): (u64, u64)) {
    let n = flushes + sync_writes;
    assert!(
        (want.min..=want.max).contains(&n),
        "{mode}: {what} made {n} sync points ({flushes} flushes, {sync_writes} synchronous writes); \
         the durability contract says {}..={}",
        want.min,
        want.max
    );
}

#[test]
fn each_durability_mode_syncs_a_lone_commit_as_its_contract_says() {
    // The interposition is live: a plain fdatasync of our own is counted.
    let probe = tempfile::tempfile().unwrap();
    let (f, _) = sync_points(|| probe.sync_data().unwrap());
    assert_eq!(f, 1, "fdatasync is not interposed in this binary");

    for (mode, durability, want) in CONTRACT {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open_with(
            dir.path(),
            DatabaseOptions::default()
                .durability(durability)
                .checkpoint_interval(NO_CHECKPOINT),
        )
        .unwrap();
        let c = db.collection("c").unwrap();
        c.insert_one(json!({"_id": "warm-up"})).unwrap();
        for i in 0..COMMITS {
            let counted = sync_points(|| {
                c.insert_one(json!({"_id": i, "n": i})).unwrap();
            });
            check(mode, "a single-statement commit", want, counted);
            let counted = sync_points(|| {
                db.transaction(|tx| {
                    let t = tx.collection("c")?;
                    t.insert_one(json!({"_id": format!("t{i}-a")}))?;
                    t.update_one(json!({"_id": i}), json!({"$inc": {"n": 1}}))?;
                    Ok(())
                })
                .unwrap();
            });
            check(mode, "an explicit transaction's commit", want, counted);
            let counted = sync_points(|| {
                assert_eq!(
                    c.find(json!({"n": {"$gt": -1}})).to_vec().unwrap().len(),
                    i + 1
                );
            });
            check(mode, "a read", READ, counted);
        }
        assert!(db.verify().unwrap().is_ok());
    }
}
