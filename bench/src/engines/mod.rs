//! The engines under test, behind one trait so that every workload runs the
//! same operations against each of them.
//!
//! | id | engine | always built |
//! |---|---|---|
//! | `cs` | collection-store (sync API; async API for concurrent writers) | yes |
//! | `lmdb-raw` | raw LMDB through heed, the same JSON bytes, hand-kept index tables | yes |
//! | `sqlite` | SQLite (rusqlite, bundled), WAL, `synchronous=FULL` | feature `sqlite` |
//! | `sqlite-normal` | the same with `synchronous=NORMAL` (extra column) | feature `sqlite` |
//! | `polodb` | PoloDB (`polodb_core`, RocksDB) | feature `polodb` |

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicI64;
use std::time::{Duration, Instant};

use crate::data::User;
use crate::latency::Latencies;

pub mod cs;
pub mod lmdb_raw;
#[cfg(feature = "polodb")]
pub mod polodb;
#[cfg(feature = "sqlite")]
pub mod sqlite;

/// Any error an engine reports.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Result of an engine operation.
pub type EResult<T> = Result<T, BoxError>;

/// Makes a [`BoxError`] from a message.
pub fn err(msg: impl Into<String>) -> BoxError {
    msg.into().into()
}

/// Every engine id this binary knows, in report column order.
pub const ALL_ENGINES: &[&str] = &["cs", "sqlite", "sqlite-normal", "polodb", "lmdb-raw"];

/// The engine every ratio is relative to.
pub const BASELINE: &str = "sqlite";

/// True when this build includes the engine (`sqlite*` and `polodb` need features).
pub fn is_built(id: &str) -> bool {
    let sqlite = cfg!(feature = "sqlite");
    let polodb = cfg!(feature = "polodb");
    matches!(id, "cs" | "lmdb-raw")
        || (sqlite && matches!(id, "sqlite" | "sqlite-normal"))
        || (polodb && id == "polodb")
}

/// A human-readable name for an engine id.
pub fn label(id: &str) -> &'static str {
    match id {
        "cs" => "collection-store",
        "sqlite" => "SQLite FULL",
        "sqlite-normal" => "SQLite NORMAL",
        "polodb" => "PoloDB",
        "lmdb-raw" => "raw LMDB",
        "all" => "all engines",
        _ => "unknown",
    }
}

/// How engine `id` is configured for durability, in a sentence or two.
pub fn durability(id: &str) -> String {
    match id {
        "cs" => cs::DURABILITY.into(),
        "lmdb-raw" => lmdb_raw::DURABILITY.into(),
        #[cfg(feature = "sqlite")]
        "sqlite" => sqlite::durability(sqlite::Sync::Full),
        #[cfg(feature = "sqlite")]
        "sqlite-normal" => sqlite::durability(sqlite::Sync::Normal),
        #[cfg(feature = "polodb")]
        "polodb" => polodb::DURABILITY.into(),
        _ => "not part of this build".into(),
    }
}

/// Opens engine `id` in the empty directory `dir`, with the two benchmark
/// indexes (`email` unique, `age`) already declared.
pub fn open(id: &str, dir: &Path) -> EResult<Box<dyn Engine>> {
    match id {
        "cs" => Ok(Box::new(cs::CsEngine::open(dir)?)),
        "lmdb-raw" => Ok(Box::new(lmdb_raw::LmdbRaw::open(dir)?)),
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Box::new(sqlite::SqliteEngine::open(dir, sqlite::Sync::Full)?)),
        #[cfg(feature = "sqlite")]
        "sqlite-normal" => Ok(Box::new(sqlite::SqliteEngine::open(dir, sqlite::Sync::Normal)?)),
        #[cfg(feature = "polodb")]
        "polodb" => Ok(Box::new(polodb::PoloEngine::open(dir)?)),
        other => Err(err(format!(
            "engine '{other}' is not part of this build (SQLite needs --features sqlite, PoloDB --features polodb, both: --features peers)"
        ))),
    }
}

/// What a run of concurrent single-document inserts achieved.
#[derive(Debug, Default)]
pub struct WriteOutcome {
    /// Acknowledged inserts.
    pub ok: u64,
    /// Failed inserts by error message (shortened).
    pub errors: BTreeMap<String, u64>,
    /// Wall time from the first to the last operation.
    pub elapsed: Duration,
    /// Latency of every acknowledged insert.
    pub latencies: Latencies,
}

impl WriteOutcome {
    /// Counts one failure.
    pub fn error(&mut self, e: &BoxError) {
        let mut msg = e.to_string();
        msg.truncate(80);
        *self.errors.entry(msg).or_default() += 1;
    }

    /// Adds another writer's outcome (elapsed is the maximum).
    pub fn merge(&mut self, other: WriteOutcome) {
        self.ok += other.ok;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.elapsed = self.elapsed.max(other.elapsed);
        self.latencies.merge(&other.latencies);
    }
}

/// A handle for one writer thread (SQLite needs a connection per thread).
pub trait Writer: Send {
    /// Inserts one document in its own durable transaction.
    fn insert(&mut self, doc: &User) -> EResult<()>;
}

/// One engine holding the benchmark collection `users`.
///
/// Reads decode what they return the way a user of that engine would: W3 into
/// the typed [`User`], W4-W6 into the engine's natural document type
/// (`serde_json::Value`, or BSON for PoloDB); the small return values exist so
/// the workloads can check the answers.
pub trait Engine: Send + Sync {
    /// The engine id (`cs`, `sqlite`, ...).
    fn id(&self) -> &'static str;

    /// Inserts `docs` in one durable transaction.
    fn bulk_insert(&self, docs: &[User]) -> EResult<()>;

    /// Number of stored documents.
    fn count(&self) -> EResult<u64>;

    /// W3: the document with `_id == id`, decoded into [`User`].
    fn get(&self, id: i64) -> EResult<Option<User>>;

    /// W4: the full document with `email == email` (through the unique
    /// index); returns its `_id`.
    fn find_by_email(&self, email: &str) -> EResult<Option<i64>>;

    /// W5: documents with `lo <= age < hi`, sorted by `age`, at most `limit`,
    /// fully decoded; returns their ages in result order.
    fn age_range(&self, lo: i32, hi: i32, limit: usize) -> EResult<Vec<i32>>;

    /// W6: every document with `city == city && score > min_score` (no index
    /// helps), matches fully decoded; returns the number of matches.
    fn scan(&self, city: &str, min_score: f64) -> EResult<u64>;

    /// W7: in one durable transaction, `$inc: {score: 1}` on the document
    /// found through each email. Stops early (and commits what it did) once
    /// `deadline` passes; returns the number of updates applied.
    fn update_by_email(&self, emails: &[String], deadline: Instant) -> EResult<usize>;

    /// A handle for one writer thread of W2.
    fn writer(&self) -> EResult<Box<dyn Writer>>;

    /// W2 with `writers` concurrent writers for `duration`, when the engine has
    /// its own way to run them (collection-store: async tasks). `None` means
    /// "use one thread per writer".
    fn concurrent_inserts(
        &self,
        _writers: usize,
        _duration: Duration,
        _next_id: &AtomicI64,
    ) -> Option<EResult<WriteOutcome>> {
        None
    }

    /// True when a range query with a sort walks the whole collection instead
    /// of an index (PoloDB). W5 then runs as the engine's last step, so that a
    /// query that overruns its cap delays nothing else.
    fn range_scans_collection(&self) -> bool {
        false
    }

    /// Bytes the data occupies on disk (after a checkpoint where the engine
    /// has one).
    fn disk_bytes(&self) -> EResult<u64>;
}

/// Sum of file sizes under `dir`.
pub fn dir_bytes(dir: &Path) -> EResult<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            total += dir_bytes(&entry.path())?;
        } else {
            total += meta.len();
        }
    }
    Ok(total)
}
