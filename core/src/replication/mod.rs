//! Read replicas over TCP: log shipping, snapshot bootstrap, semi-synchronous
//! acknowledgement, shared-secret authentication (feature `replication`).
//!
//! A [`Primary`] serves its change log to any number of replicas; a [`Replica`]
//! keeps a read-only copy of a primary's database in a local directory, applying
//! each shipped log entry in one LMDB transaction together with the entry itself
//! (so the replica's `last_lsn` is its applied position and restarts resume
//! exactly where it stopped). A replica that is behind the primary's retained log
//! bootstraps from a compacting LMDB copy streamed in zstd chunks.
//!
//! ```no_run
//! use collection_store::replication::{Primary, PrimaryConfig, Replica, ReplicaConfig};
//! use collection_store::{Database, DatabaseOptions};
//! use std::time::Duration;
//! # fn main() -> collection_store::Result<()> {
//! let secret = b"a shared secret of 16+ bytes".to_vec();
//! let db = Database::open("./primary")?;
//! let primary = Primary::serve(db.clone(), "127.0.0.1:7070", PrimaryConfig::new(secret.clone()))?;
//! let replica = Replica::follow(primary.local_addr(), "./replica", ReplicaConfig::new(secret))?;
//! db.collection("users")?.insert_one(serde_json::json!({"_id": 1}))?;
//! replica.wait_for_lsn(db.last_lsn()?, Duration::from_secs(5))?;
//! assert_eq!(replica.database().collection("users")?.count(serde_json::json!({}))?, 1);
//! # Ok(()) }
//! ```
//!
//! The wire protocol, the authentication exchange, the snapshot procedure and
//! the semi-synchronous semantics are described in ARCHITECTURE.md
//! ("Replication"). Connections are authenticated, **not encrypted**.

pub mod auth;
pub(crate) mod layout;
mod primary;
pub mod protocol;
mod replica;
mod semisync;
mod tasks;
mod telemetry;

use std::time::Duration;

pub use crate::Lsn;
pub use primary::{Primary, PrimaryHandle, ReplicaInfo};
pub use replica::{open_replica_dir, Replica, ReplicaState, ReplicaStatus};

/// What a semi-synchronous primary does when fewer than the required replicas
/// confirm a write within [`SemiSync::timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnTimeout {
    /// Return [`crate::Error::NotReplicated`] to the writer (the write stays
    /// committed on the primary). The default: a caller never believes a write
    /// is on K replicas when it is not.
    #[default]
    Fail,
    /// Acknowledge the write anyway, log a warning and stop waiting until the
    /// required replicas have caught up with the primary again (MySQL's
    /// fallback to asynchronous replication).
    Degrade,
}

/// Semi-synchronous mode: a write is acknowledged only once `replicas` replicas
/// have durably applied it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemiSync {
    /// How many replicas must confirm (K ≥ 1).
    pub replicas: usize,
    /// How long a writer waits for them.
    pub timeout: Duration,
    /// What happens when they do not confirm in time.
    pub on_timeout: OnTimeout,
}

impl SemiSync {
    /// K replicas, a 5-second timeout, [`OnTimeout::Fail`].
    pub fn new(replicas: usize) -> SemiSync {
        SemiSync {
            replicas,
            timeout: Duration::from_secs(5),
            on_timeout: OnTimeout::Fail,
        }
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets what a timeout does.
    pub fn on_timeout(mut self, on_timeout: OnTimeout) -> Self {
        self.on_timeout = on_timeout;
        self
    }
}

/// Configuration of [`Primary::serve`].
#[derive(Clone)]
#[non_exhaustive]
pub struct PrimaryConfig {
    /// The shared secret replicas must prove they know (at least 16 bytes).
    pub secret: Vec<u8>,
    /// Semi-synchronous mode; `None` (the default) is asynchronous replication.
    pub semi_sync: Option<SemiSync>,
    /// Target size of one batch of log entries sent to a replica. Default 1 MiB.
    pub batch_bytes: usize,
    /// A heartbeat is sent when no entry was sent for this long. Default 500 ms.
    pub heartbeat_interval: Duration,
    /// A replica that sends nothing (no acknowledgement, no heartbeat answer) for
    /// this long is disconnected. Default 10 s.
    pub idle_timeout: Duration,
    /// Uncompressed size of one snapshot chunk (≤ 4 MiB). Default 1 MiB.
    pub snapshot_chunk: usize,
}

impl std::fmt::Debug for PrimaryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrimaryConfig")
            .field("secret", &"<redacted>")
            .field("semi_sync", &self.semi_sync)
            .field("batch_bytes", &self.batch_bytes)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("idle_timeout", &self.idle_timeout)
            .field("snapshot_chunk", &self.snapshot_chunk)
            .finish()
    }
}

impl PrimaryConfig {
    /// Asynchronous replication with the given shared secret and default settings.
    pub fn new(secret: impl Into<Vec<u8>>) -> PrimaryConfig {
        PrimaryConfig {
            secret: secret.into(),
            semi_sync: None,
            batch_bytes: 1 << 20,
            heartbeat_interval: Duration::from_millis(500),
            idle_timeout: Duration::from_secs(10),
            snapshot_chunk: 1 << 20,
        }
    }

    /// Enables semi-synchronous mode.
    pub fn semi_sync(mut self, semi_sync: SemiSync) -> Self {
        self.semi_sync = Some(semi_sync);
        self
    }

    /// Sets the heartbeat interval.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// Sets the idle timeout.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets the batch size.
    pub fn batch_bytes(mut self, bytes: usize) -> Self {
        self.batch_bytes = bytes;
        self
    }

    /// Sets the snapshot chunk size.
    pub fn snapshot_chunk(mut self, bytes: usize) -> Self {
        self.snapshot_chunk = bytes;
        self
    }

    fn validate(&self) -> crate::Result<()> {
        auth::check_secret(&self.secret)?;
        if let Some(s) = &self.semi_sync {
            if s.replicas == 0 {
                return Err(crate::Error::Replication(
                    "semi-synchronous mode needs at least 1 replica; use semi_sync: None for asynchronous replication".into(),
                ));
            }
        }
        if self.snapshot_chunk == 0 || self.snapshot_chunk > protocol::MAX_SNAPSHOT_CHUNK {
            return Err(crate::Error::Replication(format!(
                "snapshot_chunk must be between 1 and {} bytes",
                protocol::MAX_SNAPSHOT_CHUNK
            )));
        }
        if self.heartbeat_interval.is_zero() || self.idle_timeout <= self.heartbeat_interval {
            return Err(crate::Error::Replication(
                "heartbeat_interval must be positive and shorter than idle_timeout".into(),
            ));
        }
        Ok(())
    }
}

/// Configuration of [`Replica::follow`].
#[derive(Clone)]
#[non_exhaustive]
pub struct ReplicaConfig {
    /// The shared secret (the primary's).
    pub secret: Vec<u8>,
    /// First reconnection delay; doubles after each failed attempt. Default 50 ms.
    pub backoff_initial: Duration,
    /// Largest reconnection delay. Default 5 s.
    pub backoff_max: Duration,
    /// The connection is considered dead when nothing arrives for this long
    /// (the primary sends heartbeats). Default 10 s.
    pub idle_timeout: Duration,
    /// Limit on one connection attempt and handshake. Default 5 s.
    pub connect_timeout: Duration,
    /// Run [`crate::Database::verify`] on a downloaded snapshot before
    /// installing it. Default true.
    pub verify_snapshot: bool,
}

impl std::fmt::Debug for ReplicaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaConfig")
            .field("secret", &"<redacted>")
            .field("backoff_initial", &self.backoff_initial)
            .field("backoff_max", &self.backoff_max)
            .field("idle_timeout", &self.idle_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("verify_snapshot", &self.verify_snapshot)
            .finish()
    }
}

impl ReplicaConfig {
    /// Default settings with the given shared secret.
    pub fn new(secret: impl Into<Vec<u8>>) -> ReplicaConfig {
        ReplicaConfig {
            secret: secret.into(),
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            verify_snapshot: true,
        }
    }

    /// Sets the reconnection backoff (first delay, cap).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max;
        self
    }

    /// Sets the idle timeout.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets the limit on one connection attempt and handshake.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Whether to verify downloaded snapshots.
    pub fn verify_snapshot(mut self, verify: bool) -> Self {
        self.verify_snapshot = verify;
        self
    }

    fn validate(&self) -> crate::Result<()> {
        auth::check_secret(&self.secret)?;
        if self.backoff_initial.is_zero() || self.backoff_max < self.backoff_initial {
            return Err(crate::Error::Replication(
                "backoff_initial must be positive and not above backoff_max".into(),
            ));
        }
        if self.idle_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(crate::Error::Replication(
                "idle_timeout and connect_timeout must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// `now + timeout`, or a century from now when that overflows (a "forever" timeout).
pub(crate) fn deadline_after(timeout: Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
