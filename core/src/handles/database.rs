//! [`Database`]: opening a database directory, the catalog of collections, and
//! the entry points for transactions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use heed::RoTxn;

use super::collection::{open_handle, Collection, Executor};
use super::transaction::Transaction;
use crate::catalog::{self, CollectionOptions};
use crate::error::{Error, Result};
use crate::exec::read::Reads;
use crate::exec::statement::{Command, Outcome, Statement};
use crate::exec::TargetCache;
use crate::log::state::now_ms;
use crate::log::LogRetention;
use crate::storage::{Store, StoreOptions};
use crate::write::commit::{commit_now, Output, Work};
use crate::write::engine::Access;
use crate::write::recovery::EngineOptions;
use crate::write::{CheckpointPolicy, Durability, Engine};

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
    /// Size of each log segment file (preallocated, reused). Default 64 MiB;
    /// an entry larger than this gets a segment of its own size.
    pub log_segment_size: u64,
    /// How often the database state is checkpointed while writes happen:
    /// after a power loss, the log written since the last checkpoint is
    /// replayed on open. Default 1 s.
    pub checkpoint_interval: Duration,
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
            log_segment_size: 64 << 20,
            checkpoint_interval: CheckpointPolicy::default().interval,
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

    /// Sets the size of log segment files.
    pub fn log_segment_size(mut self, bytes: u64) -> Self {
        self.log_segment_size = bytes;
        self
    }

    /// Sets how often checkpoints are taken.
    pub fn checkpoint_interval(mut self, interval: Duration) -> Self {
        self.checkpoint_interval = interval;
        self
    }
}

/// An open database: one directory holding one LMDB environment.
///
/// `Database` is `Send + Sync` and cheap to clone (an `Arc` inside); opening the
/// same directory twice in one process returns the same underlying handle.
#[derive(Clone)]
pub struct Database {
    pub(crate) inner: Arc<Engine>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.inner.store.path())
            .finish()
    }
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Weak<Engine>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Weak<Engine>>>> = OnceLock::new();
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
        let access = if options.read_only {
            Access::ReadOnly
        } else if options.replica {
            Access::Replica
        } else {
            Access::ReadWrite
        };
        let inner = Engine::open(
            &canonical,
            EngineOptions {
                store: StoreOptions {
                    initial_map_size: options.initial_map_size,
                    max_readers: options.max_readers,
                    read_only: options.read_only,
                    deferred_sync: false,
                    single_file: false,
                },
                access,
                durability: options.durability,
                retention: options.log_retention.clone(),
                segment_size: options.log_segment_size,
                checkpoints: CheckpointPolicy {
                    interval: options.checkpoint_interval,
                },
            },
        )?;
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
        let access = self.inner.access;
        open_handle(self.clone(), name, options, || match access {
            Access::ReadWrite => Ok(()),
            Access::ReadOnly | Access::Replica => Err(Error::InvalidCollection(format!(
                "collection '{name}' does not exist and the database is read-only{}",
                if access == Access::Replica {
                    " (a replica)"
                } else {
                    ""
                }
            ))),
        })
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
        crate::verify::verify(&self.inner.store, &self.inner.wal)
    }

    /// Drops a collection and all its documents. Returns false when it did not exist.
    pub fn drop_collection(&self, name: &str) -> Result<bool> {
        self.execute(
            Statement::DropCollection {
                collection: name.to_owned(),
            },
            None,
        )?
        .into_flag()
    }

    /// Begins an explicit write transaction. Statements run through
    /// `tx.collection(..)`; [`Transaction::commit`] makes them durable, and
    /// dropping the transaction uncommitted rolls everything back.
    ///
    /// LMDB admits one writer at a time: `begin` waits while another thread or
    /// process has a write transaction open, and fails with
    /// [`Error::TransactionInProgress`] if this thread already has one.
    pub fn begin(&self) -> Result<Transaction<'_>> {
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
}

/// Statements of a [`Collection`] handle each run in their own transaction:
/// through group commit, or on the caller's thread when they report progress.
impl Executor for Database {
    fn targets(&self) -> &Arc<TargetCache> {
        &self.inner.targets
    }

    fn reads_committed(&self) -> bool {
        true
    }

    fn read_dyn(
        &self,
        f: &mut dyn FnMut(&Store, &RoTxn<'_>, &mut Reads<'_>) -> Result<()>,
    ) -> Result<()> {
        let (_g, txn) = self.inner.store.read()?;
        f(&self.inner.store, &txn, &mut None)
    }

    fn execute(
        &self,
        statement: Statement,
        progress: Option<&mut dyn FnMut(u64, u64)>,
    ) -> Result<Outcome> {
        let work = Work::Command(Command::single(statement, now_ms()));
        let output = match progress {
            Some(p) => commit_now(&self.inner, &work, Some(p))?,
            None => self.inner.submit(work)?,
        };
        match output {
            Output::Statements(mut outcomes) if outcomes.len() == 1 => {
                Ok(outcomes.pop().unwrap_or(Outcome::Done))
            }
            other => Err(Error::TransactionClosed(format!(
                "the write path returned {other:?} for one statement"
            ))),
        }
    }
}
