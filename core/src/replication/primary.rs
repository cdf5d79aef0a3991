//! The primary: serves the change log (and snapshots) to replicas over TCP.

use std::fs::File;
use std::io::Read;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWrite;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::protocol::{
    code, frame_crc, read_message_max, send_error, write_message, Message, MAX_SMALL_FRAME,
};
use super::semisync::AckTracker;
use super::tasks::{blocking, with_timeout};
use super::{auth, telemetry, unix_ms, Lsn, PrimaryConfig};
use crate::error::{Error, Result};
use crate::Database;

/// Connections served at once (authenticated or not); more are closed at once.
const MAX_CONNECTIONS: usize = 256;

/// Entry point of the primary side; see [`Primary::serve`].
#[derive(Debug)]
pub struct Primary;

/// What the primary knows of one connected replica.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaInfo {
    /// Connection number (unique for this primary).
    pub id: u64,
    /// The replica's address.
    pub peer: SocketAddr,
    /// Highest LSN the replica reported durably applied.
    pub acked_lsn: Lsn,
    /// Highest LSN sent to it.
    pub sent_lsn: Lsn,
    /// Bytes sent on this connection.
    pub bytes_sent: u64,
    /// Snapshots sent on this connection.
    pub snapshots_sent: u64,
    /// How long it has been connected.
    pub connected_for: Duration,
}

struct Shared {
    db: Database,
    /// The listening address, as text (a metrics label).
    addr: String,
    config: PrimaryConfig,
    tracker: Arc<AckTracker>,
    auth_failures: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A running primary. Dropping it (or [`PrimaryHandle::shutdown`]) closes the
/// listener and every replica connection, and removes the semi-synchronous
/// commit waiter from the database.
pub struct PrimaryHandle {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for PrimaryHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrimaryHandle")
            .field("local_addr", &self.local_addr)
            .field("replicas", &self.replicas())
            .finish()
    }
}

impl Primary {
    /// Starts serving `db`'s change log on `addr` (port 0 picks a free port; see
    /// [`PrimaryHandle::local_addr`]). The server runs on its own thread with a
    /// single-threaded tokio runtime; database reads run on its blocking pool.
    ///
    /// With [`PrimaryConfig::semi_sync`], every write acknowledgement on `db`
    /// waits for the configured number of replicas (see [`super::SemiSync`]).
    pub fn serve(
        db: Database,
        addr: impl ToSocketAddrs,
        config: PrimaryConfig,
    ) -> Result<PrimaryHandle> {
        config.validate()?;
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let local_addr = std_listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("cs-primary-blocking")
            .build()?;
        let listener = {
            let _enter = rt.enter();
            TcpListener::from_std(std_listener)?
        };
        let tracker = Arc::new(AckTracker::default());
        let shared = Arc::new(Shared {
            db: db.clone(),
            addr: local_addr.to_string(),
            config: config.clone(),
            tracker: tracker.clone(),
            auth_failures: AtomicU64::new(0),
            last_error: Mutex::new(None),
        });
        if let Some(ss) = config.semi_sync {
            let tracker = tracker.clone();
            db.set_commit_waiter(Some(Arc::new(move |lsn: Lsn| {
                tracker.semi_sync_wait(&ss, lsn)
            })));
        }
        let (stop, stop_rx) = watch::channel(false);
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("cs-primary".into())
            .spawn(move || {
                rt.block_on(accept_loop(sh, listener, stop_rx));
                rt.shutdown_timeout(Duration::from_secs(10));
            })?;
        tracing::info!(%local_addr, "replication primary listening");
        Ok(PrimaryHandle {
            local_addr,
            shared,
            stop,
            thread: Some(thread),
        })
    }
}

impl PrimaryHandle {
    /// The address the primary listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The database being served.
    pub fn database(&self) -> &Database {
        &self.shared.db
    }

    /// The replicas connected now, in connection order.
    pub fn replicas(&self) -> Vec<ReplicaInfo> {
        self.shared
            .tracker
            .sessions()
            .into_iter()
            .map(|(id, s)| ReplicaInfo {
                id,
                peer: s.peer,
                acked_lsn: s.acked,
                sent_lsn: s.sent,
                bytes_sent: s.bytes_sent,
                snapshots_sent: s.snapshots_sent,
                connected_for: s.connected_at.elapsed(),
            })
            .collect()
    }

    /// Connections refused because the peer failed authentication.
    pub fn auth_failures(&self) -> u64 {
        self.shared.auth_failures.load(Ordering::Relaxed)
    }

    /// The last error that ended a replica connection, if any.
    pub fn last_error(&self) -> Option<String> {
        self.shared.last_error.lock().clone()
    }

    /// Whether semi-synchronous mode has fallen back to asynchronous
    /// acknowledgement after a timeout ([`super::OnTimeout::Degrade`]).
    pub fn semi_sync_degraded(&self) -> bool {
        self.shared.tracker.degraded()
    }

    /// Waits until `k` connected replicas have acknowledged `lsn`, up to
    /// `timeout`; returns how many had.
    pub fn wait_for_acks(&self, lsn: Lsn, k: usize, timeout: Duration) -> usize {
        self.shared.tracker.wait(lsn, k, timeout)
    }

    /// Stops serving: closes the listener and every connection, and waits for
    /// the server thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if self.shared.config.semi_sync.is_some() {
            self.shared.db.set_commit_waiter(None);
        }
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for PrimaryHandle {
    fn drop(&mut self) {
        self.stop_now();
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    let mut sessions = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if sessions.len() >= MAX_CONNECTIONS {
                        tracing::warn!(%peer, "too many replication connections; closing the new one");
                        drop(stream);
                        continue;
                    }
                    let sh = shared.clone();
                    let stop = stop.clone();
                    sessions.spawn(async move {
                        if let Err(e) = session(sh.clone(), stream, peer, stop).await {
                            match &e {
                                Error::Unauthorized(_) => {
                                    sh.auth_failures.fetch_add(1, Ordering::Relaxed);
                                    telemetry::primary_auth_failure(&sh.addr);
                                    tracing::warn!(%peer, error = %e, "replication peer refused");
                                }
                                _ => tracing::info!(%peer, error = %e, "replica connection ended"),
                            }
                            *sh.last_error.lock() = Some(e.to_string());
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    drop(listener);
    // Sessions watch the same stop signal; wait for them to close their sockets.
    while sessions.join_next().await.is_some() {}
}

/// Removes the snapshot's temporary file when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn session(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    stream.set_nodelay(true)?;
    let cfg = &shared.config;
    let handshake_limit = cfg.idle_timeout.min(Duration::from_secs(10));
    let db = shared.db.clone();
    let last = blocking(move || db.last_lsn()).await?;
    with_timeout(
        handshake_limit,
        "authentication",
        auth::server_handshake(&mut stream, &cfg.secret, last),
    )
    .await?;
    let (after, crc) = match with_timeout(
        handshake_limit,
        "waiting for Follow",
        read_message_max(&mut stream, MAX_SMALL_FRAME),
    )
    .await?
    {
        Message::Follow { after, crc } => (after, crc),
        other => {
            let msg = format!("expected Follow, received {}", other.name());
            send_error(&mut stream, code::PROTOCOL, msg.clone()).await;
            return Err(Error::Protocol(msg));
        }
    };
    let db = shared.db.clone();
    let (last, ours) = blocking(move || {
        let last = db.last_lsn()?;
        // The primary's frame at the replica's position, when still retained.
        let ours = match after {
            0 => None,
            a if a > last => None,
            a => match db.read_log_frames(a - 1, 1) {
                Ok(f) => f
                    .first()
                    .filter(|(l, _)| *l == a)
                    .map(|(_, f)| frame_crc(f)),
                Err(Error::LogTruncated { .. }) => None,
                Err(e) => return Err(e),
            },
        };
        Ok((last, ours))
    })
    .await?;
    // `crc` 0: the replica cannot show its frame at `after` (it was installed
    // from a snapshot at that position), so there is nothing to compare.
    if crc != 0 && ours.is_some_and(|ours| ours != crc) {
        let msg = format!(
            "the replica's log entry {after} differs from this primary's: its history diverged \
             (it followed another database, or this primary was restored from an older copy); \
             rebuild the replica from an empty directory"
        );
        send_error(&mut stream, code::POSITION, msg.clone()).await;
        return Err(Error::Replication(msg));
    }
    if after > last {
        let msg = format!(
            "the replica has applied up to LSN {after} but this primary's log ends at LSN {last}: \
             it followed another database or this primary lost data; rebuild the replica from an empty directory"
        );
        send_error(&mut stream, code::POSITION, msg.clone()).await;
        return Err(Error::Replication(msg));
    }
    let k = cfg.semi_sync.map(|s| s.replicas).unwrap_or(usize::MAX);
    let id = shared.tracker.register(peer, after);
    telemetry::primary_replicas(&shared.addr, shared.tracker.sessions().len());
    struct Unregister<'a>(&'a Shared, u64);
    impl Drop for Unregister<'_> {
        fn drop(&mut self) {
            self.0.tracker.unregister(self.1);
            telemetry::primary_replicas(&self.0.addr, self.0.tracker.sessions().len());
        }
    }
    let _unregister = Unregister(&shared, id);
    tracing::info!(%peer, after, "replica connected");

    let (mut rd, mut wr) = stream.into_split();
    // Acknowledgements arrive on their own task; it ends on EOF, error or idleness.
    let tracker = shared.tracker.clone();
    let idle = cfg.idle_timeout;
    let (addr, peer_name) = (shared.addr.clone(), peer.to_string());
    let mut acks = tokio::spawn(async move {
        loop {
            match with_timeout(
                idle,
                "waiting for the replica",
                read_message_max(&mut rd, MAX_SMALL_FRAME),
            )
            .await?
            {
                Message::Ack { applied } => {
                    tracker.ack(id, applied, k);
                    telemetry::primary_ack(&addr, &peer_name, applied);
                }
                Message::Error { message, .. } => {
                    return Err::<(), Error>(Error::Replication(format!(
                        "the replica reported: {message}"
                    )))
                }
                other => {
                    return Err(Error::Protocol(format!(
                        "unexpected {} from a replica",
                        other.name()
                    )))
                }
            }
        }
    });
    let mut cursor = after;
    let result = loop {
        tokio::select! {
            _ = stop.changed() => {
                send_error(&mut wr, code::SHUTDOWN, "the primary is shutting down").await;
                break Ok(());
            }
            r = &mut acks => {
                break match r {
                    Ok(r) => r,
                    Err(e) => Err(Error::Replication(format!("acknowledgement task failed: {e}"))),
                };
            }
            r = step(&shared, id, &mut wr, &mut cursor) => {
                if let Err(e) = r {
                    break Err(e);
                }
            }
        }
    };
    acks.abort();
    result
}

/// Sends the next batch, a heartbeat, or a snapshot.
async fn step<W: AsyncWrite + Unpin>(
    shared: &Arc<Shared>,
    id: u64,
    wr: &mut W,
    cursor: &mut Lsn,
) -> Result<()> {
    let cfg = &shared.config;
    let db = shared.db.clone();
    let after = *cursor;
    let batch = cfg.batch_bytes;
    let read = blocking(move || {
        let frames = db.read_durable_log_frames(after, batch);
        let last = db.last_lsn()?;
        Ok((frames, last))
    })
    .await?;
    match read {
        (Ok(frames), last) if !frames.is_empty() => {
            let msg = Message::Entries {
                primary_last: last.max(frames.last().map(|f| f.0).unwrap_or(0)),
                time_ms: unix_ms(),
                frames,
            };
            let bytes = msg.encode()?;
            use tokio::io::AsyncWriteExt;
            wr.write_all(&bytes).await?;
            wr.flush().await?;
            if let Message::Entries { frames, .. } = &msg {
                if let Some((lsn, _)) = frames.last() {
                    *cursor = *lsn;
                }
            }
            let sent = *cursor;
            shared.tracker.update(id, |s| {
                s.sent = sent;
                s.bytes_sent += bytes.len() as u64;
            });
            Ok(())
        }
        (Ok(_), _) => {
            let db = shared.db.clone();
            let hb = cfg.heartbeat_interval;
            let now = blocking(move || db.wait_for_durable(after, hb)).await?;
            if now <= after {
                write_message(
                    wr,
                    &Message::Heartbeat {
                        last_lsn: now,
                        time_ms: unix_ms(),
                    },
                )
                .await?;
            }
            Ok(())
        }
        (Err(Error::LogTruncated { .. }), _) => {
            let lsn = send_snapshot(shared, id, wr).await?;
            *cursor = lsn;
            Ok(())
        }
        (Err(e), _) => {
            send_error(
                wr,
                code::INTERNAL,
                format!("the primary cannot read its log: {e}"),
            )
            .await;
            Err(e)
        }
    }
}

/// Awaits a blocking task, sending a heartbeat every `interval` meanwhile.
async fn keep_alive<W: AsyncWrite + Unpin, T>(
    wr: &mut W,
    interval: Duration,
    db: Database,
    mut task: tokio::task::JoinHandle<Result<T>>,
) -> Result<T> {
    loop {
        tokio::select! {
            r = &mut task => {
                return r.map_err(|e| Error::Replication(format!("background task failed: {e}")))?;
            }
            _ = tokio::time::sleep(interval) => {
                let db = db.clone();
                let last_lsn = blocking(move || db.last_lsn()).await?;
                write_message(wr, &Message::Heartbeat { last_lsn, time_ms: unix_ms() }).await?;
            }
        }
    }
}

/// Streams a compacting copy of the database; returns the LSN it contains.
async fn send_snapshot<W: AsyncWrite + Unpin>(
    shared: &Arc<Shared>,
    id: u64,
    wr: &mut W,
) -> Result<Lsn> {
    let started = Instant::now();
    let db = shared.db.clone();
    let last = shared.db.clone();
    let copy = tokio::task::spawn_blocking(move || {
        let name = format!(
            ".replication-snapshot-{}.tmp",
            auth::nonce()?[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let path = db.path().join(name);
        let guard = TempFile(path.clone());
        let lsn = db.snapshot_to(&path)?;
        let file = File::open(&path)?;
        let size = file.metadata()?.len();
        Ok((guard, file, lsn, size))
    });
    // Copying a large database takes a while: keep the replica's idle timer fed.
    let (guard, file, lsn, size) =
        keep_alive(wr, shared.config.heartbeat_interval, last, copy).await?;
    tracing::info!(
        lsn,
        size,
        "sending a snapshot to a replica behind the retained log"
    );
    write_message(wr, &Message::SnapshotBegin { lsn, size }).await?;
    let chunk = shared.config.snapshot_chunk;
    let mut state = Some((file, Sha256::new()));
    let mut total = 0u64;
    loop {
        let (mut file, mut hasher) = state
            .take()
            .ok_or_else(|| Error::Replication("snapshot state lost".into()))?;
        let (file, hasher, piece) = blocking(move || {
            let mut buf = vec![0u8; chunk];
            let mut filled = 0;
            while filled < chunk {
                let n = file.read(&mut buf[filled..])?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            buf.truncate(filled);
            hasher.update(&buf);
            let piece = if buf.is_empty() {
                None
            } else {
                let data = zstd::bulk::compress(&buf, 1)?;
                Some((buf.len() as u32, data))
            };
            Ok((file, hasher, piece))
        })
        .await?;
        match piece {
            Some((raw_len, data)) => {
                total += u64::from(raw_len);
                let msg = Message::SnapshotChunk { raw_len, data };
                write_message(wr, &msg).await?;
                state = Some((file, hasher));
            }
            None => {
                if total != size {
                    return Err(Error::Replication(format!(
                        "snapshot file changed while being sent ({total} of {size} bytes)"
                    )));
                }
                let sha256: [u8; 32] = hasher.finalize().into();
                write_message(wr, &Message::SnapshotEnd { sha256 }).await?;
                break;
            }
        }
    }
    drop(guard);
    shared.tracker.update(id, |s| {
        s.snapshots_sent += 1;
        s.sent = lsn;
        s.bytes_sent += size;
    });
    tracing::info!(
        lsn,
        size,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "snapshot sent"
    );
    Ok(lsn)
}
