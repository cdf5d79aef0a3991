//! [`Database`]: opening a database directory, the catalog of collections, and
//! the entry points for transactions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::catalog::{self, CollectionOptions};
use crate::collection::{Collection, CollectionHandle};
use crate::error::{Error, Result};
use crate::exec::{write as exec_write, Executor, TargetCache};
use crate::log::signal::CommitSignal;
use crate::log::table as log_table;
use crate::log::{CommitWaiter, LogOp, LogRetention, Lsn};
use crate::storage::{Store, StoreOptions, Wtx};
use crate::txn::{Transaction, WriterMark};
use crate::write::group::{Job, Writer};
use crate::write::Durability;
use heed::RwTxn;

/// Options for [`Database::open_with`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DatabaseOptions {
    /// Initial size of the LMDB memory map in bytes. It is only address space:
    /// the file grows as data is written, and the map doubles automatically
    /// whenever it fills up. Default 1 GiB.
    pub initial_map_size: usize,
    /// Maximum number of concurrent readers across all processes. Default 1022.
    pub max_readers: u32,
    /// Open without write access; writes fail with [`Error::ReadOnly`].
    pub read_only: bool,
    /// When writes are acknowledged; see [`Durability`].
    pub durability: Durability,
    /// Open as a replica: every write except applying a primary's log
    /// ([`Database::apply_log_frames`]) fails with [`Error::ReadOnly`].
    pub replica: bool,
    /// How much of the change log to keep; see [`LogRetention`].
    pub log_retention: LogRetention,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        let s = StoreOptions::default();
        DatabaseOptions {
            initial_map_size: s.initial_map_size,
            max_readers: s.max_readers,
            read_only: false,
            durability: Durability::Immediate,
            replica: false,
            log_retention: LogRetention::default(),
        }
    }
}

impl DatabaseOptions {
    /// Sets the initial map size.
    pub fn initial_map_size(mut self, bytes: usize) -> Self {
        self.initial_map_size = bytes;
        self
    }

    /// Sets the durability mode.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Opens read-only.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Opens as a replica (writes only through [`Database::apply_log_frames`]).
    pub fn replica(mut self, replica: bool) -> Self {
        self.replica = replica;
        self
    }

    /// Sets the change-log retention.
    pub fn log_retention(mut self, retention: LogRetention) -> Self {
        self.log_retention = retention;
        self
    }
}

/// The change-log state of an open database.
pub(crate) struct LogState {
    pub(crate) signal: CommitSignal,
    pub(crate) retention: LogRetention,
    pub(crate) waiter: parking_lot::RwLock<Option<CommitWaiter>>,
}

pub(crate) struct DbInner {
    pub(crate) store: Store,
    pub(crate) read_only: bool,
    /// Statements, transactions and DDL are refused (a replica).
    pub(crate) replica: bool,
    pub(crate) targets: Arc<TargetCache>,
    pub(crate) log: LogState,
    writer: Writer,
}

impl DbInner {
    /// Appends the change-log entry of one logical transaction (nothing for
    /// no operations); returns its LSN, or 0.
    pub(crate) fn append_log(&self, txn: &mut RwTxn<'_>, ops: &[LogOp]) -> Result<Lsn> {
        if ops.is_empty() {
            return Ok(0);
        }
        log_table::append(&self.store, txn, ops, &self.log.retention)
    }

    /// Fails unless statements may write.
    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.read_only || self.replica {
            return Err(Error::ReadOnly);
        }
        Ok(())
    }
}

/// An open database: one directory holding one LMDB environment.
///
/// `Database` is `Send + Sync` and cheap to clone (an `Arc` inside); opening the
/// same directory twice in one process returns the same underlying handle.
#[derive(Clone)]
pub struct Database {
    pub(crate) inner: Arc<DbInner>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.inner.store.path())
            .finish()
    }
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Weak<DbInner>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Weak<DbInner>>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

impl Database {
    /// Opens the database in directory `path`, creating the directory and the
    /// database if missing.
    pub fn open(path: impl AsRef<Path>) -> Result<Database> {
        Database::open_with(path, DatabaseOptions::default())
    }

    /// Opens with explicit options.
    pub fn open_with(path: impl AsRef<Path>, options: DatabaseOptions) -> Result<Database> {
        let path = path.as_ref();
        if !options.read_only {
            std::fs::create_dir_all(path)?;
        }
        let canonical = std::fs::canonicalize(path)?;
        let mut reg = registry()
            .lock()
            .map_err(|_| Error::Io(std::io::Error::other("database registry lock poisoned")))?;
        reg.retain(|_, w| w.strong_count() > 0);
        if let Some(inner) = reg.get(&canonical).and_then(Weak::upgrade) {
            return Ok(Database { inner });
        }
        let store = Store::open(
            &canonical,
            &StoreOptions {
                initial_map_size: options.initial_map_size,
                max_readers: options.max_readers,
                read_only: options.read_only,
                meta_sync: options.durability != Durability::None,
                single_file: false,
            },
        )?;
        let inner = Arc::new(DbInner {
            store,
            read_only: options.read_only,
            replica: options.replica,
            targets: Arc::new(TargetCache::default()),
            log: LogState {
                signal: CommitSignal::default(),
                retention: options.log_retention.clone(),
                waiter: parking_lot::RwLock::new(None),
            },
            writer: Writer::new(options.durability),
        });
        reg.insert(canonical, Arc::downgrade(&inner));
        Ok(Database { inner })
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        self.inner.store.path()
    }

    /// A handle on collection `name`, created (and recorded in the catalog) on first use.
    pub fn collection(&self, name: &str) -> Result<Collection> {
        self.open_collection(name, None)
    }

    /// Like [`Database::collection`], with options for a new collection (for
    /// example another primary key field). An existing collection must have
    /// been created with the same options.
    pub fn collection_with(&self, name: &str, options: CollectionOptions) -> Result<Collection> {
        self.open_collection(name, Some(options))
    }

    fn open_collection(
        &self,
        name: &str,
        options: Option<CollectionOptions>,
    ) -> Result<Collection> {
        catalog::validate_name(name)?;
        let exec = self.clone();
        let meta = match self.read_meta(name)? {
            Some(meta) => {
                catalog::check_options(&meta, options.as_ref())?;
                meta
            }
            None if self.inner.read_only || self.inner.replica => {
                return Err(Error::InvalidCollection(format!(
                    "collection '{name}' does not exist and the database is read-only{}",
                    if self.inner.replica {
                        " (a replica)"
                    } else {
                        ""
                    }
                )))
            }
            None => self.write(|w| catalog::get_or_create(w, name, options.as_ref()))?,
        };
        Ok(CollectionHandle::new(exec, meta.name, meta.options))
    }

    fn read_meta(&self, name: &str) -> Result<Option<catalog::CollectionMeta>> {
        let (_g, txn) = self.inner.store.read()?;
        catalog::load(&self.inner.store, &txn, name)
    }

    /// Names of all collections, sorted.
    pub fn list_collections(&self) -> Result<Vec<String>> {
        let (_g, txn) = self.inner.store.read()?;
        Ok(catalog::list(&self.inner.store, &txn)?
            .into_iter()
            .map(|m| m.name)
            .collect())
    }

    /// Checks the whole database in one snapshot: every document decodes and is
    /// stored under its primary key, every index holds exactly the entries its
    /// documents produce (and each points to an existing document), counters
    /// match, and no data is left under ids the catalog does not know.
    /// Reads everything; takes time proportional to the database size.
    pub fn verify(&self) -> Result<crate::VerifyReport> {
        crate::verify::verify(&self.inner.store)
    }

    /// Drops a collection and all its documents. Returns false when it did not exist.
    pub fn drop_collection(&self, name: &str) -> Result<bool> {
        self.write(|w| {
            let Some(meta) = catalog::load(w.store(), w.ro(), name)? else {
                return Ok(false);
            };
            exec_write::drop_all(w, &meta)?;
            let existed = catalog::remove(w, name)?;
            w.log(crate::log::LogOp::DropCollection {
                collection: name.to_owned(),
            });
            Ok(existed)
        })
    }

    /// Begins an explicit write transaction. Statements run through
    /// `tx.collection(..)`; [`Transaction::commit`] makes them durable, and
    /// dropping the transaction uncommitted rolls everything back.
    ///
    /// LMDB admits one writer at a time: `begin` waits while another thread or
    /// process has a write transaction open, and fails with
    /// [`Error::TransactionInProgress`] if this thread already has one.
    pub fn begin(&self) -> Result<Transaction<'_>> {
        self.inner.check_writable()?;
        Transaction::begin(self)
    }

    /// Runs `f` in a write transaction: committed (durably) when `f` returns
    /// `Ok`, rolled back when it returns `Err` or panics.
    pub fn transaction<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let tx = self.begin()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs one statement in its own write transaction, growing the map and
    /// retrying when it fills up.
    pub(crate) fn write<T>(&self, mut f: impl FnMut(&mut Wtx<'_, '_>) -> Result<T>) -> Result<T> {
        self.inner.check_writable()?;
        let store = &self.inner.store;
        let mark = WriterMark::acquire(self)?;
        store.grow_if_nearly_full();
        loop {
            let (gate, mut txn) = store.write()?;
            let res = {
                let mut w = Wtx::new(store, &mut txn, None);
                f(&mut w).map(|v| (v, w.take_ops()))
            };
            let res = res.and_then(|(v, ops)| Ok((v, self.inner.append_log(&mut txn, &ops)?)));
            let err = match res {
                Ok((v, lsn)) => match txn.commit() {
                    Ok(()) => {
                        drop(gate);
                        drop(mark);
                        self.inner.log.signal.publish(lsn);
                        self.acknowledged(lsn)?;
                        return Ok(v);
                    }
                    Err(e) => Error::from(e),
                },
                Err(e) => {
                    txn.abort();
                    e
                }
            };
            drop(gate);
            if crate::storage::is_map_full(&err) {
                store.grow()?;
                continue;
            }
            return Err(err);
        }
    }
}

/// Statements of a [`Collection`] handle each run in their own transaction.
impl Executor for Database {
    fn targets(&self) -> &Arc<TargetCache> {
        &self.inner.targets
    }

    fn write_job(&self, job: Job) -> Result<()> {
        self.inner.check_writable()?;
        // This thread must not hold a write transaction: the writer would wait
        // for it while it waits for the writer.
        drop(WriterMark::acquire(self)?);
        let lsn = self.inner.writer.run_blocking(&self.inner, job)?;
        self.acknowledged(lsn)
    }

    fn reads_committed(&self) -> bool {
        true
    }

    fn read_dyn(&self, f: &mut dyn FnMut(&Store, &heed::RoTxn<'_>) -> Result<()>) -> Result<()> {
        let (_g, txn) = self.inner.store.read()?;
        f(&self.inner.store, &txn)
    }

    fn write_dyn(&self, f: &mut dyn FnMut(&mut Wtx<'_, '_>) -> Result<()>) -> Result<()> {
        self.write(f)
    }
}
