//! The replica: follows a primary's log into a local read-only database.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use super::layout;
use super::protocol::{self, code, read_message, write_message, Message};
use super::tasks::{blocking, with_timeout};
#[cfg(feature = "metrics")]
use super::telemetry;
use super::{auth, Lsn, ReplicaConfig};
use crate::error::{Error, Result};
use crate::{Database, DatabaseOptions};

/// Where a replica's connection to its primary stands ([`ReplicaStatus::state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplicaState {
    /// No connection has been established since [`Replica::follow`]: the
    /// primary is unreachable, refuses this replica, or the first attempt is
    /// still under way ([`ReplicaStatus::last_error`] says why an attempt failed).
    Connecting,
    /// Connected and authenticated; the primary's position is current.
    Connected,
    /// Was connected, lost the connection, and is reconnecting.
    Disconnected,
}

impl std::fmt::Display for ReplicaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReplicaState::Connecting => "never connected",
            ReplicaState::Connected => "connected",
            ReplicaState::Disconnected => "disconnected",
        })
    }
}

/// A snapshot of a replica's replication state ([`Replica::status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaStatus {
    /// The connection state.
    pub state: ReplicaState,
    /// Last LSN durably applied to the local database.
    pub applied_lsn: Lsn,
    /// The primary's last LSN as last reported (in a batch or heartbeat); 0
    /// before any contact. While not connected it is the last value heard.
    pub primary_lsn: Lsn,
    /// `primary_lsn - applied_lsn` while connected. `None` while not
    /// connected: the primary may have committed any number of entries since
    /// it was last heard from, so the lag is unknown (see `since_contact_ms`).
    pub lag_entries: Option<u64>,
    /// While connected: how long the oldest entry known to exist on the
    /// primary but not applied here has been known (0 when caught up), in
    /// milliseconds of this machine's clock. `None` while not connected.
    pub lag_ms: Option<u64>,
    /// Milliseconds since the last message from the primary (entries or a
    /// heartbeat); `None` if it was never heard from. While disconnected, the
    /// local data is at least this old.
    pub since_contact_ms: Option<u64>,
    /// Bytes received from primaries (all connections).
    pub bytes_received: u64,
    /// Whether a connection is established and authenticated
    /// (`state == ReplicaState::Connected`).
    pub connected: bool,
    /// Connection attempts after the first.
    pub reconnects: u64,
    /// Snapshots installed.
    pub snapshots_installed: u64,
    /// The error that ended the last connection (or attempt), if any.
    pub last_error: Option<String>,
}

#[derive(Default)]
struct StatusInner {
    applied: Lsn,
    primary: Lsn,
    connected: bool,
    /// Connected at least once since `follow`.
    ever_connected: bool,
    /// When the primary last sent anything.
    last_contact: Option<Instant>,
    reconnects: u64,
    snapshots: u64,
    last_error: Option<String>,
    /// (LSN announced by the primary, when it was first seen), ascending.
    pending: VecDeque<(Lsn, Instant)>,
}

impl StatusInner {
    fn saw_primary(&mut self, lsn: Lsn) {
        self.primary = lsn;
        self.last_contact = Some(Instant::now());
        if lsn > self.applied && self.pending.back().is_none_or(|(l, _)| *l < lsn) {
            if self.pending.len() >= 4096 {
                if let Some(back) = self.pending.back_mut() {
                    back.0 = lsn;
                }
            } else {
                self.pending.push_back((lsn, Instant::now()));
            }
        }
    }

    fn applied(&mut self, lsn: Lsn) {
        self.applied = lsn;
        while self.pending.front().is_some_and(|(l, _)| *l <= lsn) {
            self.pending.pop_front();
        }
    }
}

struct Shared {
    dir: PathBuf,
    primary: String,
    config: ReplicaConfig,
    db: RwLock<Database>,
    generation: Mutex<u64>,
    status: Mutex<StatusInner>,
    changed: Condvar,
    bytes: Arc<AtomicU64>,
}

/// A read replica following a primary (see the [module docs](super)).
///
/// Reads go through [`Replica::database`], which returns the current local
/// database; every write on it fails with [`Error::ReadOnly`]. Dropping the
/// replica (or [`Replica::shutdown`]) stops following; the local directory
/// keeps everything applied, and a later [`Replica::follow`] resumes from there.
pub struct Replica {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("dir", &self.shared.dir)
            .field("primary", &self.shared.primary)
            .field("status", &self.status())
            .finish()
    }
}

/// Opens the live generation of a replica directory read-only, without
/// following anyone (for inspection, or reads while no [`Replica`] runs).
pub fn open_replica_dir(dir: impl AsRef<Path>) -> Result<Database> {
    let (_, gen) = layout::current(dir.as_ref())?;
    Database::open_with(gen, DatabaseOptions::default().replica(true))
}

impl Replica {
    /// Opens (or creates) the replica database in `dir` and starts following the
    /// primary at `primary_addr` on a background thread. Returns once the local
    /// database is open; connecting, catching up and reconnecting (with capped
    /// exponential backoff) happen in the background — see [`Replica::status`]
    /// and [`Replica::wait_for_lsn`].
    pub fn follow(
        primary_addr: impl ToString,
        dir: impl AsRef<Path>,
        config: ReplicaConfig,
    ) -> Result<Replica> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        let (generation, gen_dir) = layout::current(&dir)?;
        layout::cleanup(&dir, generation);
        let db = Database::open_with(&gen_dir, DatabaseOptions::default().replica(true))?;
        let applied = db.last_lsn()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("cs-replica-blocking")
            .build()?;
        let shared = Arc::new(Shared {
            dir,
            primary: primary_addr.to_string(),
            config,
            db: RwLock::new(db),
            generation: Mutex::new(generation),
            status: Mutex::new(StatusInner {
                applied,
                ..StatusInner::default()
            }),
            changed: Condvar::new(),
            bytes: Arc::new(AtomicU64::new(0)),
        });
        let (stop, stop_rx) = watch::channel(false);
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("cs-replica".into())
            .spawn(move || {
                rt.block_on(run(sh, stop_rx));
                rt.shutdown_timeout(Duration::from_secs(10));
            })?;
        Ok(Replica {
            shared,
            stop,
            thread: Some(thread),
        })
    }

    /// The current local database (read-only). After a snapshot is installed
    /// this returns the new database; handles taken before keep reading the
    /// previous, consistent state.
    pub fn database(&self) -> Database {
        self.shared.db.read().clone()
    }

    /// The replica's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Replication state and lag.
    pub fn status(&self) -> ReplicaStatus {
        status_of(&self.shared, &self.shared.status.lock())
    }

    /// Blocks until the replica is connected to its primary and authenticated,
    /// or fails with [`Error::Replication`] after `timeout`, naming the
    /// primary, the connection state, the attempts made and the last error
    /// (for example "Connection refused"). [`Replica::follow`] returns before
    /// connecting; call this to learn that the primary is reachable.
    pub fn wait_connected(&self, timeout: Duration) -> Result<()> {
        let deadline = super::deadline_after(timeout);
        let mut s = self.shared.status.lock();
        loop {
            if s.connected {
                return Ok(());
            }
            if self.shared.changed.wait_until(&mut s, deadline).timed_out() && !s.connected {
                let st = status_of(&self.shared, &s);
                return Err(Error::Replication(format!(
                    "replica of {} not connected within {timeout:?}: {}, {} attempt(s), last error: {}",
                    self.shared.primary,
                    st.state,
                    s.reconnects + 1,
                    s.last_error.as_deref().unwrap_or("none")
                )));
            }
        }
    }

    /// Blocks until the replica has applied `lsn` (returns the applied LSN), or
    /// fails with [`Error::Replication`] after `timeout`, naming where it got to
    /// and the connection state. It looks only at the local position: an LSN
    /// already applied (0 always is) returns at once, connected or not; use
    /// [`Replica::wait_connected`] or [`Replica::status`] for the connection.
    pub fn wait_for_lsn(&self, lsn: Lsn, timeout: Duration) -> Result<Lsn> {
        let deadline = super::deadline_after(timeout);
        let mut s = self.shared.status.lock();
        loop {
            if s.applied >= lsn {
                return Ok(s.applied);
            }
            if self.shared.changed.wait_until(&mut s, deadline).timed_out() && s.applied < lsn {
                return Err(Error::Replication(format!(
                    "replica applied LSN {} of {lsn} within {timeout:?} ({} to {}, last error: {})",
                    s.applied,
                    status_of(&self.shared, &s).state,
                    self.shared.primary,
                    s.last_error.as_deref().unwrap_or("none")
                )));
            }
        }
    }

    /// Blocks until the applied LSN changes from `seen` or `timeout` passes;
    /// returns the applied LSN.
    pub fn wait_for_change(&self, seen: Lsn, timeout: Duration) -> Lsn {
        let deadline = super::deadline_after(timeout);
        let mut s = self.shared.status.lock();
        while s.applied == seen {
            if self.shared.changed.wait_until(&mut s, deadline).timed_out() {
                break;
            }
        }
        s.applied
    }

    /// Stops following and waits for the background thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.stop_now();
    }
}

fn status_of(shared: &Shared, s: &StatusInner) -> ReplicaStatus {
    let state = if s.connected {
        ReplicaState::Connected
    } else if s.ever_connected {
        ReplicaState::Disconnected
    } else {
        ReplicaState::Connecting
    };
    let connected = s.connected;
    ReplicaStatus {
        state,
        applied_lsn: s.applied,
        primary_lsn: s.primary,
        lag_entries: connected.then(|| s.primary.saturating_sub(s.applied)),
        lag_ms: connected.then(|| {
            s.pending
                .front()
                .map(|(_, t)| t.elapsed().as_millis() as u64)
                .unwrap_or(0)
        }),
        since_contact_ms: s.last_contact.map(|t| t.elapsed().as_millis() as u64),
        bytes_received: shared.bytes.load(Ordering::Relaxed),
        connected: s.connected,
        reconnects: s.reconnects,
        snapshots_installed: s.snapshots,
        last_error: s.last_error.clone(),
    }
}

fn notify(shared: &Shared, f: impl FnOnce(&mut StatusInner)) {
    let mut s = shared.status.lock();
    f(&mut s);
    #[cfg(feature = "metrics")]
    telemetry::replica(&shared.primary, &status_of(shared, &s));
    drop(s);
    shared.changed.notify_all();
}

async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let cfg = &shared.config;
    let mut backoff = cfg.backoff_initial;
    let mut first = true;
    loop {
        if *stop.borrow() {
            break;
        }
        if !first {
            notify(&shared, |s| s.reconnects += 1);
        }
        first = false;
        let res = connection(&shared, &mut stop, &mut backoff).await;
        notify(&shared, |s| s.connected = false);
        match res {
            Ok(()) => break,
            Err(e) => {
                match &e {
                    Error::Unauthorized(_) => {
                        tracing::error!(primary = %shared.primary, error = %e, "replication refused")
                    }
                    _ => {
                        tracing::info!(primary = %shared.primary, error = %e, "replication connection lost; reconnecting")
                    }
                }
                let msg = e.to_string();
                notify(&shared, |s| s.last_error = Some(msg));
            }
        }
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = backoff.saturating_mul(2).min(cfg.backoff_max);
    }
}

/// Counts bytes read.
struct Counting<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counting<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

fn peer_error(code_: u16, message: String) -> Error {
    match code_ {
        code::UNAUTHORIZED => {
            Error::Unauthorized(format!("the primary refused this replica: {message}"))
        }
        code::PROTOCOL | code::VERSION => {
            Error::Protocol(format!("the primary reported: {message}"))
        }
        _ => Error::Replication(format!("the primary reported: {message}")),
    }
}

/// One connection: handshake, follow, apply, acknowledge. `Ok` only on stop.
async fn connection(
    shared: &Arc<Shared>,
    stop: &mut watch::Receiver<bool>,
    backoff: &mut Duration,
) -> Result<()> {
    let cfg = &shared.config;
    let mut stream = with_timeout(cfg.connect_timeout, "connecting to the primary", async {
        Ok(TcpStream::connect(&shared.primary).await?)
    })
    .await?;
    stream.set_nodelay(true)?;
    let primary_last = with_timeout(
        cfg.connect_timeout,
        "authentication",
        auth::client_handshake(&mut stream, &cfg.secret),
    )
    .await?;
    let db = shared.db.read().clone();
    let (applied, crc) = blocking(move || {
        let applied = db.last_lsn()?;
        let crc = if applied == 0 {
            0
        } else {
            // A log that no longer holds its newest entry (the replica was
            // installed from a snapshot and applied nothing since) cannot show
            // that entry's checksum: 0 says so.
            match db.read_log_frames(applied - 1, 1) {
                Ok(f) => match f.first() {
                    Some((lsn, frame)) if *lsn == applied => protocol::frame_crc(frame),
                    _ => 0,
                },
                Err(Error::LogTruncated { .. }) => 0,
                Err(e) => return Err(e),
            }
        };
        Ok((applied, crc))
    })
    .await?;
    notify(shared, |s| {
        s.connected = true;
        s.ever_connected = true;
        s.applied(applied);
        s.saw_primary(primary_last);
    });
    tracing::info!(primary = %shared.primary, applied, primary_last, "replica connected");
    write_message(
        &mut stream,
        &Message::Follow {
            after: applied,
            crc,
        },
    )
    .await?;

    let (rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Result<Message>>(16);
    let idle = cfg.idle_timeout;
    let bytes = shared.bytes.clone();
    let reader = tokio::spawn(async move {
        let mut rd = Counting { inner: rd, bytes };
        loop {
            let m = with_timeout(idle, "waiting for the primary", read_message(&mut rd)).await;
            let end = m.is_err();
            if tx.send(m).await.is_err() || end {
                break;
            }
        }
    });
    struct Abort(tokio::task::JoinHandle<()>);
    impl Drop for Abort {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _reader = Abort(reader);

    let mut held: Option<Message> = None;
    // The backoff and the last error are reset only once the primary accepts
    // the position (its first entries, heartbeat or snapshot): a replica the
    // primary keeps refusing backs off and keeps reporting why.
    let mut accepted = false;
    loop {
        let msg = match held.take() {
            Some(m) => m,
            None => tokio::select! {
                _ = stop.changed() => return Ok(()),
                m = rx.recv() => match m {
                    Some(m) => m?,
                    None => return Err(Error::Replication("connection reader stopped".into())),
                },
            },
        };
        if !accepted
            && matches!(
                msg,
                Message::Entries { .. } | Message::Heartbeat { .. } | Message::SnapshotBegin { .. }
            )
        {
            accepted = true;
            *backoff = cfg.backoff_initial;
            notify(shared, |s| s.last_error = None);
        }
        match msg {
            Message::Entries {
                primary_last,
                mut frames,
                ..
            } => {
                let mut last_seen = primary_last;
                // Apply whatever else has already arrived in the same transaction.
                while let Ok(next) = rx.try_recv() {
                    match next? {
                        Message::Entries {
                            primary_last,
                            frames: more,
                            ..
                        } if frames.len() < 65_536 => {
                            last_seen = last_seen.max(primary_last);
                            frames.extend(more);
                        }
                        other => {
                            held = Some(other);
                            break;
                        }
                    }
                }
                notify(shared, |s| s.saw_primary(last_seen));
                let db = shared.db.read().clone();
                let applied = blocking(move || db.apply_log_frames(&frames)).await?;
                notify(shared, |s| s.applied(applied));
                write_message(&mut wr, &Message::Ack { applied }).await?;
            }
            Message::Heartbeat { last_lsn, .. } => {
                let applied = {
                    let mut s = shared.status.lock();
                    s.saw_primary(last_lsn);
                    s.applied
                };
                write_message(&mut wr, &Message::Ack { applied }).await?;
            }
            Message::SnapshotBegin { lsn, size } => {
                let applied = receive_snapshot(shared, &mut rx, &mut wr, lsn, size).await?;
                notify(shared, |s| {
                    s.snapshots += 1;
                    s.applied(applied);
                });
                write_message(&mut wr, &Message::Ack { applied }).await?;
            }
            Message::Error { code, message } => {
                if code == code::SHUTDOWN {
                    return Err(Error::Replication(
                        "the primary shut down the connection".into(),
                    ));
                }
                return Err(peer_error(code, message));
            }
            other => {
                return Err(Error::Protocol(format!(
                    "unexpected {} from the primary",
                    other.name()
                )))
            }
        }
    }
}

/// Downloads, verifies and installs a snapshot; returns its LSN.
async fn receive_snapshot<W: AsyncWrite + Unpin>(
    shared: &Arc<Shared>,
    rx: &mut mpsc::Receiver<Result<Message>>,
    wr: &mut W,
    lsn: Lsn,
    size: u64,
) -> Result<Lsn> {
    // Acknowledgements of the old position keep the primary's idle timer fed
    // while the snapshot downloads and installs.
    let old = shared.status.lock().applied;
    tracing::info!(lsn, size, "receiving a snapshot from the primary");
    let incoming = shared.dir.join(layout::INCOMING);
    let inc = incoming.clone();
    let file = blocking(move || {
        if inc.exists() {
            std::fs::remove_dir_all(&inc)?;
        }
        std::fs::create_dir_all(&inc)?;
        Ok(File::create(inc.join("data.mdb"))?)
    })
    .await?;
    let mut state = Some((file, Sha256::new(), 0u64));
    let expected = loop {
        let msg = rx
            .recv()
            .await
            .ok_or_else(|| Error::Replication("connection reader stopped".into()))??;
        match msg {
            Message::SnapshotChunk { raw_len, data } => {
                let (mut file, mut hasher, written) = state
                    .take()
                    .ok_or_else(|| Error::Replication("snapshot state lost".into()))?;
                let next = written + u64::from(raw_len);
                if next > size {
                    return Err(Error::Protocol(format!(
                        "snapshot chunks exceed the announced {size} bytes"
                    )));
                }
                state = Some(
                    blocking(move || {
                        let raw = zstd::bulk::decompress(&data, raw_len as usize).map_err(|e| {
                            Error::Protocol(format!("snapshot chunk does not decompress: {e}"))
                        })?;
                        if raw.len() != raw_len as usize {
                            return Err(Error::Protocol(format!(
                                "snapshot chunk announced {raw_len} bytes, holds {}",
                                raw.len()
                            )));
                        }
                        hasher.update(&raw);
                        file.write_all(&raw)?;
                        Ok((file, hasher, next))
                    })
                    .await?,
                );
                write_message(wr, &Message::Ack { applied: old }).await?;
            }
            Message::SnapshotEnd { sha256 } => break sha256,
            Message::Error { code, message } => return Err(peer_error(code, message)),
            other => {
                return Err(Error::Protocol(format!(
                    "unexpected {} inside a snapshot",
                    other.name()
                )))
            }
        }
    };
    let (file, hasher, written) = state
        .take()
        .ok_or_else(|| Error::Replication("snapshot state lost".into()))?;
    let digest: [u8; 32] = hasher.finalize().into();
    if written != size || digest != expected {
        return Err(Error::Replication(format!(
            "the snapshot does not verify ({written} of {size} bytes, checksum {}); it was discarded",
            if digest == expected { "ok" } else { "mismatch" }
        )));
    }
    let sh = shared.clone();
    let mut task = tokio::task::spawn_blocking(move || install(&sh, file, &incoming, lsn));
    let interval = (shared.config.idle_timeout / 4).max(Duration::from_millis(10));
    loop {
        tokio::select! {
            r = &mut task => {
                return r.map_err(|e| Error::Replication(format!("background task failed: {e}")))?;
            }
            _ = tokio::time::sleep(interval) => {
                write_message(wr, &Message::Ack { applied: old }).await?;
            }
        }
    }
}

/// Moves a downloaded snapshot into the next generation, checks it, and makes it live.
fn install(shared: &Shared, file: File, incoming: &Path, lsn: Lsn) -> Result<Lsn> {
    file.sync_all()?;
    drop(file);
    let mut generation = shared.generation.lock();
    let next = *generation + 1;
    let gen = layout::gen_dir(&shared.dir, next);
    if gen.exists() {
        std::fs::remove_dir_all(&gen)?;
    }
    std::fs::rename(incoming, &gen)?;
    layout::sync_dir(&shared.dir)?;
    let checked = (|| {
        let db = Database::open_with(&gen, DatabaseOptions::default().replica(true))?;
        let got = db.last_lsn()?;
        if got != lsn {
            return Err(Error::Replication(format!(
                "the snapshot was announced at LSN {lsn} but contains LSN {got}; it was discarded"
            )));
        }
        if shared.config.verify_snapshot {
            let report = db.verify()?;
            if !report.is_ok() {
                return Err(Error::Replication(format!(
                    "the snapshot fails verification ({} problems, first: {}); it was discarded",
                    report.problems.len(),
                    report.problems.first().map(String::as_str).unwrap_or("")
                )));
            }
        }
        Ok(db)
    })();
    let db = match checked {
        Ok(db) => db,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&gen);
            return Err(e);
        }
    };
    layout::set_current(&shared.dir, next)?;
    let old = std::mem::replace(&mut *shared.db.write(), db);
    *generation = next;
    drop(old);
    // Readers that still hold the old generation keep their (unlinked) files
    // open; on Unix removing the directory under them is safe.
    layout::cleanup(&shared.dir, next);
    tracing::info!(lsn, generation = next, "snapshot installed");
    Ok(lsn)
}
