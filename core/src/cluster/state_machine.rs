//! The Raft state machine: the member's database.
//!
//! Committed entries are applied through the commit loop's replicated entry
//! point ([`Database`]'s `apply_replicated`): one LMDB transaction applies a
//! batch of entries (each command nested, a failing one undone alone) and
//! writes the applied-state record — the last applied log id and the
//! membership — so that after a restart the applied state and the data
//! always agree and never go backwards.
//!
//! Mapping of positions: a Raft log index is **not** the change-log LSN.
//! Each applied command that changed data gets one change-log entry (LSNs
//! gap-free, in log order); blanks, membership entries and failed commands
//! get none. The record names the Raft position the state holds.
//!
//! Directory layout under the state machine's root:
//! ```text
//! <root>/db/CURRENT, <root>/db/gen-NNNNNN/   the database generations (as a replica's)
//! <root>/db/incoming/                        a snapshot being installed
//! <root>/snapshot/<id>.mdb, current.json     the newest snapshot and its meta
//! ```

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::types::{AppliedOutcome, NodeId, Request, Response, TypeConfig};
use crate::error::{Error, Result};
use crate::handles::replicated::snapshot_record;
use crate::replication::layout;
use crate::{Database, DatabaseOptions};

/// Key of the applied-state record in the database's meta table.
pub(crate) const APPLIED_KEY: &[u8] = b"#raft_applied";

/// The applied-state record (JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Applied {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
}

/// The last applied log id and the membership it holds.
pub type AppliedState = (Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>);

/// The newest snapshot's meta (JSON in `current.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CurrentSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    file: String,
}

fn io<E: std::fmt::Display>(e: E) -> AnyError {
    AnyError::error(e.to_string())
}

struct Shared {
    db_dir: PathBuf,
    snapshot_dir: PathBuf,
    db: RwLock<Database>,
    generation: Mutex<u64>,
    membership: Mutex<StoredMembership<NodeId, BasicNode>>,
    builds: Mutex<u64>,
    installed: std::sync::atomic::AtomicU64,
}

/// The state machine of one member. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct StateMachine {
    shared: Arc<Shared>,
}

fn open_db(dir: &Path) -> Result<Database> {
    Database::open_with(dir, DatabaseOptions::default().replica(true))
}

fn read_applied(db: &Database) -> Result<Applied> {
    match db.replicated_record(APPLIED_KEY)? {
        None => Ok(Applied::default()),
        Some(v) => serde_json::from_slice(&v).map_err(|e| {
            Error::Replication(format!("the applied-state record does not parse: {e}"))
        }),
    }
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io_at(&tmp, e))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io_at(path, e))?;
    if let Some(dir) = path.parent() {
        layout::sync_dir(dir)?;
    }
    Ok(())
}

impl StateMachine {
    /// Opens (creating) the state machine under `root`.
    pub fn open(root: &Path) -> Result<StateMachine> {
        let db_dir = root.join("db");
        let snapshot_dir = root.join("snapshot");
        std::fs::create_dir_all(&snapshot_dir).map_err(|e| Error::io_at(&snapshot_dir, e))?;
        let (generation, gen_dir) = layout::current(&db_dir)?;
        layout::cleanup(&db_dir, generation);
        let db = open_db(&gen_dir)?;
        let applied = read_applied(&db)?;
        Ok(StateMachine {
            shared: Arc::new(Shared {
                db_dir,
                snapshot_dir,
                db: RwLock::new(db),
                generation: Mutex::new(generation),
                membership: Mutex::new(applied.membership),
                builds: Mutex::new(0),
                installed: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }

    /// The member's database as it is now (read-only for the application:
    /// only the log writes it). A snapshot install replaces it; a handle
    /// taken before keeps its older, consistent view.
    pub fn database(&self) -> Database {
        self.shared.db.read().clone()
    }

    /// The last applied log id and membership, as the database records them.
    pub fn applied(&self) -> Result<AppliedState> {
        let a = read_applied(&self.database())?;
        Ok((a.last_applied, a.membership))
    }

    /// Snapshots received from the leader and installed since this
    /// state machine was opened.
    pub fn snapshots_installed(&self) -> u64 {
        self.shared
            .installed
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn current_snapshot(&self) -> Result<Option<Snapshot<TypeConfig>>> {
        let path = self.shared.snapshot_dir.join("current.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io_at(&path, e)),
        };
        let current: CurrentSnapshot = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Replication(format!("{} does not parse: {e}", path.display())))?;
        let file = self.shared.snapshot_dir.join(&current.file);
        let data = std::fs::read(&file).map_err(|e| Error::io_at(&file, e))?;
        Ok(Some(Snapshot {
            meta: current.meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }

    /// Keeps `data` as the newest snapshot (file first, then the meta that
    /// names it, then old files removed).
    fn keep_snapshot(&self, meta: &SnapshotMeta<NodeId, BasicNode>, data: &[u8]) -> Result<()> {
        let dir = &self.shared.snapshot_dir;
        let file = format!("{}.mdb", meta.snapshot_id);
        write_durably(&dir.join(&file), data)?;
        let current = CurrentSnapshot {
            meta: meta.clone(),
            file: file.clone(),
        };
        let json = serde_json::to_vec(&current).map_err(|e| Error::Replication(e.to_string()))?;
        write_durably(&dir.join("current.json"), &json)?;
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".mdb") && name != file {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }

    /// Builds a snapshot: a compacting copy of the database (consistent,
    /// writers go on), whose meta is read from the copy's own record.
    fn build(&self) -> Result<Snapshot<TypeConfig>> {
        let db = self.database();
        let n = {
            let mut b = self.shared.builds.lock();
            *b += 1;
            *b
        };
        let tmp = self.shared.snapshot_dir.join(format!("building-{n}.copy"));
        db.snapshot_to(&tmp)?;
        let applied: Applied = match snapshot_record(&tmp, APPLIED_KEY)? {
            None => Applied::default(),
            Some(v) => serde_json::from_slice(&v).map_err(|e| {
                Error::Replication(format!("the snapshot's record does not parse: {e}"))
            })?,
        };
        let data = std::fs::read(&tmp).map_err(|e| Error::io_at(&tmp, e))?;
        let _ = std::fs::remove_file(&tmp);
        let index = applied.last_applied.map_or(0, |l| l.index);
        let term = applied.last_applied.map_or(0, |l| l.leader_id.term);
        let meta = SnapshotMeta {
            last_log_id: applied.last_applied,
            last_membership: applied.membership,
            snapshot_id: format!("{term}-{index}-{}-{n}", crate::log::state::now_ms()),
        };
        self.keep_snapshot(&meta, &data)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }

    /// Installs a received snapshot: written into `incoming/`, checked (it
    /// must open and hold the announced position), moved into the next
    /// generation, made current, and swapped in for new readers.
    fn install(&self, meta: &SnapshotMeta<NodeId, BasicNode>, data: &[u8]) -> Result<()> {
        let sh = &self.shared;
        let incoming = sh.db_dir.join("incoming");
        if incoming.exists() {
            std::fs::remove_dir_all(&incoming).map_err(|e| Error::io_at(&incoming, e))?;
        }
        std::fs::create_dir_all(&incoming).map_err(|e| Error::io_at(&incoming, e))?;
        let file = incoming.join("data.mdb");
        write_durably(&file, data)?;
        let applied: Applied = match snapshot_record(&file, APPLIED_KEY)? {
            None => Applied::default(),
            Some(v) => serde_json::from_slice(&v).map_err(|e| {
                Error::Replication(format!("the snapshot's record does not parse: {e}"))
            })?,
        };
        if applied.last_applied != meta.last_log_id {
            return Err(Error::Replication(format!(
                "the snapshot was announced at {:?} but holds {:?}; it was discarded",
                meta.last_log_id, applied.last_applied
            )));
        }
        let mut generation = sh.generation.lock();
        let next = *generation + 1;
        let gen = layout::gen_dir(&sh.db_dir, next);
        if gen.exists() {
            std::fs::remove_dir_all(&gen).map_err(|e| Error::io_at(&gen, e))?;
        }
        std::fs::rename(&incoming, &gen).map_err(|e| Error::io_at(&gen, e))?;
        layout::sync_dir(&sh.db_dir)?;
        let db = open_db(&gen)?;
        layout::set_current(&sh.db_dir, next)?;
        let old = std::mem::replace(&mut *sh.db.write(), db);
        *generation = next;
        drop(old);
        layout::cleanup(&sh.db_dir, next);
        *sh.membership.lock() = meta.last_membership.clone();
        sh.installed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.keep_snapshot(meta, data)
    }
}

fn storage<E: std::fmt::Display>(e: E) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(io(e)).into()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> std::result::Result<T, StorageError<NodeId>> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(storage)?
        .map_err(storage)
}

/// Builds snapshots of a [`StateMachine`].
pub struct SnapshotBuilder(StateMachine);

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(
        &mut self,
    ) -> std::result::Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let sm = self.0.clone();
        tokio::task::spawn_blocking(move || sm.build())
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, io(e)))?
            .map_err(|e| StorageIOError::write_snapshot(None, io(e)).into())
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> std::result::Result<
        (Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>),
        StorageError<NodeId>,
    > {
        let sm = self.clone();
        tokio::task::spawn_blocking(move || sm.applied())
            .await
            .map_err(|e| StorageIOError::read_state_machine(io(e)))?
            .map_err(|e| StorageIOError::read_state_machine(io(e)).into())
    }

    async fn apply<I>(
        &mut self,
        entries: I,
    ) -> std::result::Result<Vec<Response>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut membership = self.shared.membership.lock().clone();
        let mut last = None;
        let mut commands = Vec::new();
        for entry in entries {
            last = Some(entry.log_id);
            commands.push(match entry.payload {
                EntryPayload::Blank => None,
                EntryPayload::Normal(Request { command }) => Some(command),
                EntryPayload::Membership(m) => {
                    membership = StoredMembership::new(Some(entry.log_id), m);
                    None
                }
            });
        }
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let record = Applied {
            last_applied: last,
            membership: membership.clone(),
        };
        let value = serde_json::to_vec(&record).map_err(storage)?;
        let db = self.database();
        let results = blocking(move || db.apply_replicated(commands, APPLIED_KEY, &value)).await?;
        *self.shared.membership.lock() = membership;
        Ok(results
            .into_iter()
            .map(|r| match r {
                Ok(outcomes) => {
                    Response::Applied(outcomes.into_iter().map(AppliedOutcome::from).collect())
                }
                Err(e) => Response::Failed(e.to_string()),
            })
            .collect())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder(self.clone())
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> std::result::Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> std::result::Result<(), StorageError<NodeId>> {
        let sm = self.clone();
        let meta = meta.clone();
        let data = snapshot.into_inner();
        tokio::task::spawn_blocking(move || sm.install(&meta, &data))
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, io(e)))?
            .map_err(|e| StorageIOError::write_snapshot(None, io(e)).into())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> std::result::Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let sm = self.clone();
        tokio::task::spawn_blocking(move || sm.current_snapshot())
            .await
            .map_err(|e| StorageIOError::read_snapshot(None, io(e)))?
            .map_err(|e| StorageIOError::read_snapshot(None, io(e)).into())
    }
}
