//! The LMDB environment and its tables, transactions, and automatic map growth.
//!
//! One LMDB environment per database directory, holding a fixed set of named
//! LMDB databases ("tables"); logical structures (collections, indexes) live
//! inside them under a 4-byte id prefix, so creating a collection or an index is
//! an ordinary transactional write. See ARCHITECTURE.md for the key layout.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use heed::types::Bytes;
use heed::{CommitOrAbort, EnvFlags, EnvOpenOptions, RoTxn, RwTxn, WithoutTls};
use parking_lot::RwLock;

use crate::error::{Error, Result};

pub mod check;
pub mod meta;
pub mod walk;
pub mod wtx;
pub use wtx::Wtx;

/// The named LMDB databases of an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// Database-wide metadata: format version, id counters.
    Meta,
    /// Collection and index definitions, keyed by collection name.
    Catalog,
    /// Documents: collection id (u32 BE) + encoded primary key -> BSON document.
    Docs,
    /// Secondary index entries: index id (u32 BE) + encoded key [+ encoded primary key].
    Indexes,
    /// The change log of format 1 (LSN (u64 BE) -> framed entry), read
    /// once to move it into the segment log; empty afterwards.
    Log,
}

impl Table {
    /// The table's LMDB name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Catalog => "catalog",
            Table::Docs => "docs",
            Table::Indexes => "indexes",
            Table::Log => "log",
        }
    }
}

/// The callback of [`Store::scan_prefix`]: a key and its value; return false to stop.
pub type KvVisitor<'a> = dyn FnMut(&[u8], &[u8]) -> Result<bool> + 'a;

/// A raw LMDB database handle.
pub type Db = heed::Database<'static, Bytes, Bytes>;

/// Options for opening the environment.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Initial size of the memory map in bytes (rounded up to a page multiple).
    /// The map grows automatically when full.
    pub initial_map_size: usize,
    /// Maximum number of concurrent read transactions (LMDB reader slots).
    pub max_readers: u32,
    /// Open read-only.
    pub read_only: bool,
    /// Commit without flushing (`MDB_NOSYNC`): durability comes from the
    /// write-ahead log and integrity from checkpoints (see
    /// `write/checkpoint.rs`); `false` keeps LMDB's own flush per commit.
    pub deferred_sync: bool,
    /// Open one private, read-only file (a snapshot) instead of a directory:
    /// no lock file, and nobody else may write it.
    pub single_file: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            // Only address space: LMDB grows the file as pages are used.
            initial_map_size: 1 << 30,
            max_readers: 1022,
            read_only: false,
            deferred_sync: false,
            single_file: false,
        }
    }
}

/// The open environment with its tables.
pub struct Store {
    env: heed::Env<WithoutTls>,
    tables: [Db; 5],
    /// Held shared by every open transaction of this process, exclusively while
    /// the map is resized (LMDB forbids resizing with open transactions).
    gate: Arc<RwLock<()>>,
    /// This process's writer lock (see [`Store::lock_writer`]).
    writer: Arc<parking_lot::Mutex<()>>,
    path: PathBuf,
    growth: GrowthCounters,
}

/// What map growth did so far in this process (touched only while growing).
#[derive(Default)]
struct GrowthCounters {
    waiting: AtomicUsize,
    grown: AtomicU64,
    gave_up: AtomicU64,
}

/// A snapshot of [`Store::growth`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrowthStats {
    /// Threads waiting now for the resize gate to grow the map (or adopt
    /// another process's growth).
    pub waiting: usize,
    /// Growths done (this process's own, and adoptions).
    pub grown: u64,
    /// Growths abandoned because read transactions held the gate too long.
    pub gave_up: u64,
}

/// This process's writer lock, held (see [`Store::lock_writer`]).
pub struct Writing(#[allow(dead_code)] parking_lot::ArcMutexGuard<parking_lot::RawMutex, ()>);

/// A pinned snapshot (see [`Store::pin_reading`]).
pub struct Pin {
    txnid: u64,
    _txn: RoTxn<'static, WithoutTls>,
}

impl Pin {
    /// The LMDB transaction id of the pinned state.
    pub fn txnid(&self) -> u64 {
        self.txnid
    }
}

/// A shared hold on the resize gate, kept alive as long as a transaction is open.
pub type GateGuard = parking_lot::ArcRwLockReadGuard<parking_lot::RawRwLock, ()>;

fn page_size() -> usize {
    4096
}

fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// How long a writer that needs a larger map waits for this process's open
/// read transactions (for example a live `Find` iterator) to end.
const GROW_WAIT: Duration = Duration::from_secs(10);

impl Store {
    /// Opens (creating if needed) the environment at `dir`.
    pub fn open(dir: &Path, opts: &StoreOptions) -> Result<Store> {
        let data_file = if opts.single_file {
            dir.to_path_buf()
        } else {
            std::fs::create_dir_all(dir)?;
            dir.join("data.mdb")
        };
        // Before LMDB maps the file: a damaged file is refused here, not
        // faulted on later.
        check::before_open(&data_file)?;
        let file_len = std::fs::metadata(&data_file)
            .map(|m| m.len() as usize)
            .unwrap_or(0);
        let map_size = round_up(
            opts.initial_map_size.max(file_len * 2).max(1 << 20),
            page_size(),
        );
        let mut builder = EnvOpenOptions::new().read_txn_without_tls();
        builder
            .map_size(map_size)
            .max_dbs(16)
            .max_readers(opts.max_readers);
        let mut flags = EnvFlags::empty();
        if opts.read_only {
            flags |= EnvFlags::READ_ONLY;
        }
        if opts.deferred_sync && !opts.read_only {
            flags |= EnvFlags::NO_SYNC | EnvFlags::NO_META_SYNC;
        }
        if opts.single_file {
            flags |= EnvFlags::READ_ONLY | EnvFlags::NO_SUB_DIR | EnvFlags::NO_LOCK;
        }
        // SAFETY: READ_ONLY only restricts what this handle may do. NO_SYNC
        // (with NO_META_SYNC) is set only when the caller runs the
        // checkpoint protocol of `write/checkpoint.rs`: every commit is in
        // the write-ahead log, flushed before it is acknowledged; a
        // checkpoint's state is flushed (`force_sync`) and kept from page
        // reuse by a pinned reader until a newer checkpoint is durable; after
        // a power loss the checkpoint's saved meta page is restored before
        // this open and the log replayed (proven by the crash-image tests).
        // MAP_ASYNC is never set. NO_LOCK is set only with READ_ONLY on a
        // private snapshot file that nothing writes.
        unsafe { builder.flags(flags) };
        // SAFETY: LMDB requires that the same environment is not opened twice in
        // one process; `Database::open` keeps a process-wide registry of open
        // directories and hands out the existing handle instead. The directory
        // is not on a network filesystem as far as we can tell; LMDB's lock file
        // needs POSIX shared memory semantics, which local filesystems provide.
        let env = unsafe { builder.open(dir) }?;
        // Open the tables when they exist (a plain read: no commit, no sync on
        // every open); create them only in a new database.
        let rtxn = env.read_txn()?;
        let opened = env.open_databases_and_commit(rtxn, |opener, rtxn| -> Result<_> {
            let open = |t: Table| opener.open_database::<Bytes, Bytes>(rtxn, Some(t.name()));
            let (Some(a), Some(b), Some(c), Some(d), Some(e)) = (
                open(Table::Meta)?,
                open(Table::Catalog)?,
                open(Table::Docs)?,
                open(Table::Indexes)?,
                open(Table::Log)?,
            ) else {
                return Ok(CommitOrAbort::Abort(()));
            };
            Ok(CommitOrAbort::Commit([a, b, c, d, e]))
        })?;
        let tables: [Db; 5] = match opened {
            CommitOrAbort::Commit(tables) => tables,
            CommitOrAbort::Abort(()) if opts.read_only => {
                return Err(Error::Corrupt {
                    location: dir.display().to_string(),
                    message: "tables are missing; the directory holds no collection-store database"
                        .into(),
                    lsn: None,
                })
            }
            CommitOrAbort::Abort(()) => {
                let wtxn = env.write_txn()?;
                let created =
                    env.create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
                        let mut create =
                            |t: Table| opener.create_database::<Bytes, Bytes>(wtxn, Some(t.name()));
                        Ok(CommitOrAbort::<_, ()>::Commit([
                            create(Table::Meta)?,
                            create(Table::Catalog)?,
                            create(Table::Docs)?,
                            create(Table::Indexes)?,
                            create(Table::Log)?,
                        ]))
                    })?;
                match created {
                    CommitOrAbort::Commit(tables) => tables,
                    CommitOrAbort::Abort(()) => unreachable_abort()?,
                }
            }
        };
        Ok(Store {
            env,
            tables,
            gate: Arc::new(RwLock::new(())),
            writer: Arc::new(parking_lot::Mutex::new(())),
            path: dir.to_path_buf(),
            growth: GrowthCounters::default(),
        })
    }

    /// Opens a snapshot file written by [`Store::copy_compacted`], read-only.
    pub fn open_copy(file: &Path) -> Result<Store> {
        Store::open(
            file,
            &StoreOptions {
                initial_map_size: 1 << 20,
                max_readers: 16,
                read_only: true,
                deferred_sync: false,
                single_file: true,
            },
        )
    }

    /// Writes a consistent, compacted copy of the environment to `file`
    /// (LMDB copies under its own read transaction; writers go on).
    /// The copy gets the data file's permissions (owner read and write);
    /// `file` must not exist as a directory.
    pub fn copy_compacted(&self, file: &Path) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        if file.is_dir() {
            return Err(Error::io_at(
                file,
                std::io::Error::new(
                    std::io::ErrorKind::IsADirectory,
                    "this is a directory; a snapshot is one file (for example <dir>/data.mdb, which opens as a database directory)",
                ),
            ));
        }
        let _gate = self.gate.read_arc();
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(file)
            .map_err(|e| Error::io_at(file, e))?;
        self.env
            .copy_to_file(&mut out, heed::CompactionOption::Enabled)?;
        out.sync_all().map_err(|e| Error::io_at(file, e))?;
        Ok(())
    }

    /// The directory of the environment.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The handle of a table.
    pub fn table(&self, t: Table) -> Db {
        self.tables[t as usize]
    }

    /// Begins a read transaction (a consistent snapshot).
    pub fn read(&self) -> Result<(GateGuard, RoTxn<'_, WithoutTls>)> {
        loop {
            let guard = self.gate.read_arc();
            match self.env.read_txn() {
                Ok(t) => return Ok((guard, t)),
                Err(heed::Error::Mdb(heed::MdbError::MapResized)) => {
                    drop(guard);
                    self.adopt_foreign_resize()?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Begins a read transaction that owns its environment handle, for iterators
    /// that outlive the borrow of the store.
    pub fn read_static(&self) -> Result<(GateGuard, RoTxn<'static, WithoutTls>)> {
        loop {
            let guard = self.gate.read_arc();
            match self.env.clone().static_read_txn() {
                Ok(t) => return Ok((guard, t)),
                Err(heed::Error::Mdb(heed::MdbError::MapResized)) => {
                    drop(guard);
                    self.adopt_foreign_resize()?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Takes this process's writer lock (held by whoever runs a write
    /// transaction, and across the map growth that rebuilds one, so that no
    /// other thread of this process commits in between).
    pub fn lock_writer(&self) -> Writing {
        Writing(self.writer.lock_arc())
    }

    /// Begins a write transaction: takes the writer lock, then LMDB's.
    /// Blocks while another writer (thread or process) is active.
    pub fn write(&self) -> Result<(Writing, GateGuard, RwTxn<'_>)> {
        let writing = self.lock_writer();
        let (gate, txn) = self.write_as(&writing)?;
        Ok((writing, gate, txn))
    }

    /// Begins a write transaction without this process's writer lock, as
    /// another process's writer would (tests commit "foreign" writes with it).
    #[cfg(test)]
    pub(crate) fn write_as_another_process(&self) -> Result<(GateGuard, RwTxn<'_>)> {
        let guard = self.gate.read_arc();
        Ok((guard, self.env.write_txn()?))
    }

    /// Begins a write transaction under a writer lock the caller holds.
    pub fn write_as(&self, _writing: &Writing) -> Result<(GateGuard, RwTxn<'_>)> {
        loop {
            let guard = self.gate.read_arc();
            match self.env.write_txn() {
                Ok(t) => return Ok((guard, t)),
                Err(heed::Error::Mdb(heed::MdbError::MapResized)) => {
                    drop(guard);
                    self.adopt_foreign_resize()?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Pins the current state — a read transaction that keeps its
    /// snapshot's pages from being reused (the checkpoint's) and, once this
    /// returns, holds no resize gate and is never read through — and runs
    /// `f` on it while the resize gate is held, so that reading is safe.
    /// Dropping the pin releases the pages.
    pub fn pin_reading<T>(&self, f: impl FnOnce(&RoTxn<'_>) -> Result<T>) -> Result<(Pin, T)> {
        loop {
            let guard = self.gate.read_arc();
            match self.env.clone().static_read_txn() {
                Ok(txn) => {
                    let value = f(&txn)?;
                    drop(guard);
                    let txnid = txn.id() as u64;
                    return Ok((Pin { txnid, _txn: txn }, value));
                }
                Err(heed::Error::Mdb(heed::MdbError::MapResized)) => {
                    drop(guard);
                    self.adopt_foreign_resize()?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Flushes every page LMDB has written (data and meta) to disk.
    pub fn force_sync(&self) -> Result<()> {
        Ok(self.env.force_sync()?)
    }

    /// Releases the reader slots of processes that died (their pins).
    pub fn clear_stale_readers(&self) -> Result<usize> {
        Ok(self.env.clear_stale_readers()?)
    }

    /// The data file.
    pub fn data_file(&self) -> PathBuf {
        self.path.join("data.mdb")
    }

    /// Walks every B-tree of the state `txn` reads, from the file (see
    /// `walk.rs`), listing at most `limit` problems. `None` when the meta
    /// page of that state was already overwritten by later commits (begin
    /// a newer read transaction and try again).
    pub fn structure(&self, txn: &RoTxn<'_>, limit: usize) -> Result<Option<walk::Findings>> {
        let path = self.data_file();
        let Some(meta) = meta::read_txn(&path, txn.id() as u64)? else {
            return Ok(None);
        };
        walk::structure(&path, &meta, walk::Depth::Everything, limit).map(Some)
    }

    /// Begins a nested write transaction inside `parent`.
    pub fn nested<'p>(&'p self, parent: &'p mut RwTxn<'_>) -> Result<RwTxn<'p>> {
        Ok(self.env.nested_write_txn(parent)?)
    }

    /// The id of the last committed LMDB transaction (for detecting foreign commits).
    pub fn last_txn_id(&self) -> usize {
        self.info().last_txn_id
    }

    /// LMDB's environment information. It reads the meta pages inside the
    /// map, so it holds the resize gate (a concurrent resize unmaps them),
    /// recursively: callers may hold it already.
    fn info(&self) -> heed::EnvInfo {
        let _gate = self.gate.read_recursive();
        self.env.info()
    }

    /// Takes the resize gate exclusively. Waits in short slices: while a slice
    /// waits, new readers queue behind it (so a stream of short reads cannot
    /// starve the growth); between slices they run (so a long-held reader,
    /// such as a live `Find` iterator, stalls them at most one slice).
    /// Gives up after [`GROW_WAIT`].
    fn exclusive_gate(&self) -> Option<parking_lot::RwLockWriteGuard<'_, ()>> {
        self.growth.waiting.fetch_add(1, Ordering::SeqCst);
        let start = std::time::Instant::now();
        let got = loop {
            if let Some(g) = self.gate.try_write_for(Duration::from_millis(50)) {
                break Some(g);
            }
            if start.elapsed() >= GROW_WAIT {
                self.growth.gave_up.fetch_add(1, Ordering::SeqCst);
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.growth.waiting.fetch_sub(1, Ordering::SeqCst);
        got
    }

    /// What map growth did so far (for tests that must know a writer waits
    /// to grow the map, and whether it gave up).
    pub fn growth(&self) -> GrowthStats {
        GrowthStats {
            waiting: self.growth.waiting.load(Ordering::SeqCst),
            grown: self.growth.grown.load(Ordering::SeqCst),
            gave_up: self.growth.gave_up.load(Ordering::SeqCst),
        }
    }

    /// Doubles the map size. The caller must hold no transaction of this store.
    pub fn grow(&self) -> Result<()> {
        let Some(_exclusive) = self.exclusive_gate() else {
            return Err(Error::Io(std::io::Error::other(
                "the database file needs a larger memory map, but read transactions (open Find iterators) \
                 in this process kept it from growing; finish or drop them and retry",
            )));
        };
        let current = self.env.info().map_size;
        let new_size = round_up(current.saturating_mul(2), page_size());
        tracing::debug!(from = current, to = new_size, "growing LMDB map");
        // SAFETY: the exclusive gate guarantees that no transaction of this
        // process that reads the map is open (every such transaction holds
        // the gate shared). A checkpoint pin (`Store::pin_reading`) may be open: it
        // only holds a reader slot in the lock file and is never read
        // through, and LMDB's mdb_env_set_mapsize refuses only while a write
        // transaction is active.
        unsafe { self.env.resize(new_size) }?;
        self.growth.grown.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Grows the map ahead of time when more than three quarters are in use and
    /// no transaction of this process is open (otherwise growth waits for the
    /// moment a write actually fills the map).
    pub fn grow_if_nearly_full(&self) {
        let info = self.info();
        let used = (info.last_page_number + 1) * page_size();
        if used.saturating_mul(4) < info.map_size.saturating_mul(3) {
            return;
        }
        if let Some(_exclusive) = self.gate.try_write() {
            // Re-read: another thread may have grown the map meanwhile.
            let info = self.env.info();
            if used.saturating_mul(4) < info.map_size.saturating_mul(3) {
                return;
            }
            let new_size = round_up(info.map_size.saturating_mul(2), page_size());
            // SAFETY: as in `grow`: no transaction that reads the map is open;
            // a checkpoint pin is never read through.
            match unsafe { self.env.resize(new_size) } {
                Ok(()) => {
                    self.growth.grown.fetch_add(1, Ordering::SeqCst);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not grow the LMDB map ahead of time");
                }
            }
        }
    }

    /// Adopts a map size set by another process (after `MDB_MAP_RESIZED`).
    fn adopt_foreign_resize(&self) -> Result<()> {
        let Some(_exclusive) = self.exclusive_gate() else {
            return Err(Error::Io(std::io::Error::other(
                "another process grew the database map, and open read transactions in this process \
                 kept this one from adopting the new size; finish or drop them and retry",
            )));
        };
        // SAFETY: as in `grow`; size 0 adopts the size recorded in the environment.
        unsafe { self.env.resize(0) }?;
        self.growth.grown.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Calls `f(key, value)` for the keys of `table` that start with `prefix`,
    /// in order, starting after `after` (exclusive) when given, until `f`
    /// returns false.
    pub fn scan_prefix(
        &self,
        txn: &RoTxn<'_>,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        f: &mut KvVisitor<'_>,
    ) -> Result<()> {
        use std::ops::Bound;
        let end = crate::keys::prefix_successor(prefix);
        let lower = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Included(prefix),
        };
        let upper = match &end {
            Some(e) => Bound::Excluded(e.as_slice()),
            None => Bound::Unbounded,
        };
        for item in self.table(table).range(txn, &(lower, upper))? {
            let (k, v) = item?;
            if !f(k, v)? {
                break;
            }
        }
        Ok(())
    }
}

fn unreachable_abort<T>() -> Result<T> {
    Err(Error::Io(std::io::Error::other(
        "table creation was aborted",
    )))
}

/// True when the error means the memory map is full.
pub fn is_map_full(e: &Error) -> bool {
    matches!(e, Error::Storage(heed::Error::Mdb(heed::MdbError::MapFull)))
}
