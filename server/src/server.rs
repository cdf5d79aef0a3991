//! The server: shared state, the accept loop, background tasks (cursor
//! reaper, metrics sampler and alert evaluation, monitoring endpoint) and
//! clean shutdown (stop accepting, let requests in flight finish, abort open
//! transactions, close the database).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::auth::scram::Conversation;
use crate::auth::{Credential, Users};
use crate::config::Config;
use crate::cursor::{CursorLimits, Cursors};
use crate::engine::{Engine, TxnLimits};
use crate::monitor::{self, names, Monitor};
use crate::session::Sessions;
use crate::wire::Compressor;

/// State of a SCRAM conversation on a connection.
pub enum ScramState {
    /// Waiting for the client-final message (flag: `skipEmptyExchange`).
    AwaitFinal(Box<Conversation>, bool),
    /// Proof accepted; waiting for the closing empty message.
    AwaitEmpty(String),
}

/// Per-connection state.
pub struct ConnState {
    /// Connection id (`connectionId` in `hello`).
    pub id: i64,
    /// The peer address.
    pub peer: String,
    /// The authenticated user.
    pub user: Option<String>,
    /// An authentication in progress.
    pub scram: Option<ScramState>,
    /// Compressors negotiated in `hello`.
    pub compressors: Vec<Compressor>,
}

/// State shared by every connection.
pub struct Shared {
    /// The database.
    pub engine: Engine,
    /// The configuration.
    pub config: Config,
    /// Users (empty: no authentication).
    pub users: Users,
    /// Open cursors.
    pub cursors: Cursors,
    /// Session transactions.
    pub sessions: Sessions,
    /// Metrics and alerts.
    pub monitor: Monitor,
    /// The Prometheus handle (rendering `/metrics`).
    pub metrics_handle: Option<PrometheusHandle>,
    connections: AtomicUsize,
    total_connections: AtomicU64,
    next_conn: AtomicI64,
}

impl Shared {
    /// Open connections.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Connections accepted since start.
    pub fn total_connections(&self) -> u64 {
        self.total_connections.load(Ordering::Relaxed)
    }

    /// The `/status` document.
    pub fn status_json(&self) -> serde_json::Value {
        serde_json::json!({
            "uptime_secs": self.monitor.uptime().as_secs_f64(),
            "connections": self.connections(),
            "connections_total": self.total_connections(),
            "cursors": self.cursors.len(),
            "transactions": self.sessions.active(),
            "last_lsn": self.engine.last_lsn(),
            "database_size_bytes": self.engine.file_size(),
            "resident_memory_bytes": monitor::current_rss(),
            "window": self.monitor.window_stats(),
            "alert_thresholds": self.monitor.thresholds(),
            "alerts": self.monitor.alerts(),
        })
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database cannot be opened.
    #[error("cannot open the database in {path}: {source}")]
    Database {
        /// The directory.
        path: String,
        /// The engine's error.
        source: collection_store::Error,
    },
    /// Users cannot be loaded.
    #[error("{0}")]
    Users(String),
    /// TLS files cannot be used.
    #[error("{0}")]
    Tls(String),
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A running server.
pub struct ServerHandle {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The monitoring endpoint's address.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    done: tokio::task::JoinHandle<()>,
    shared: Arc<Shared>,
}

impl ServerHandle {
    /// The shared state (tests, embedding).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting, waits for requests in flight (at most `grace`), aborts
    /// open transactions and releases the database.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(grace, self.done).await;
        self.shared.sessions.abort_all();
    }
}

fn load_users(config: &Config) -> Result<Users, StartError> {
    let mut creds = Vec::new();
    if let Some(path) = &config.users_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| StartError::Users(format!("users file {}: {e}", path.display())))?;
        creds.extend(Users::parse_file(&text).map_err(|e| StartError::Users(e.to_string()))?);
    }
    for u in &config.users {
        creds.push(Credential::from_flag(u).map_err(|e| StartError::Users(e.to_string()))?);
    }
    Users::new(creds).map_err(|e| StartError::Users(e.to_string()))
}

/// Opens the database, binds and starts serving on the current tokio runtime.
pub async fn start(config: Config) -> Result<ServerHandle, StartError> {
    let users = load_users(&config)?;
    let tls = match &config.tls {
        Some((c, k)) => Some(crate::tls::acceptor(c, k).map_err(StartError::Tls)?),
        None => None,
    };
    let engine = {
        let path = config.data.clone();
        tokio::task::spawn_blocking(move || Engine::open(&path))
            .await
            .map_err(|e| StartError::Users(format!("open task failed: {e}")))?
            .map_err(|source| StartError::Database {
                path: config.data.display().to_string(),
                source,
            })?
    };
    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen.clone(),
        source,
    })?;
    let metrics_handle = if config.monitoring {
        monitor::install_recorder()
    } else {
        None
    };
    let metrics_listener = match &config.metrics {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .map_err(|source| StartError::Bind {
                    addr: a.clone(),
                    source,
                })?,
        ),
        None => None,
    };
    let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
    let shared = Arc::new(Shared {
        engine,
        users,
        cursors: Cursors::new(CursorLimits {
            timeout: config.cursor_timeout,
            max_per_connection: config.max_cursors_per_connection,
            max_buffered_bytes: 100 * 1024 * 1024,
        }),
        sessions: Sessions::new(TxnLimits {
            idle_timeout: config.transaction_idle_timeout,
            lifetime: config.transaction_lifetime,
        }),
        monitor: Monitor::new(config.monitoring, config.alerts.clone()),
        metrics_handle,
        connections: AtomicUsize::new(0),
        total_connections: AtomicU64::new(0),
        next_conn: AtomicI64::new(1),
        config,
    });
    let (tx, rx) = watch::channel(false);
    if let Some(l) = metrics_listener {
        tokio::spawn(monitor::http::serve(l, shared.clone(), rx.clone()));
    }
    tokio::spawn(background(shared.clone(), rx.clone()));
    let done = tokio::spawn(accept_loop(listener, tls, shared.clone(), rx));
    tracing::info!(%addr, data = %shared.engine.path().display(), auth = shared.users.required(), tls = shared.config.tls.is_some(), "collection-store-server listening");
    Ok(ServerHandle {
        addr,
        metrics_addr,
        shutdown: tx,
        done,
        shared,
    })
}

async fn background(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let reaped = shared.cursors.reap();
        if reaped > 0 {
            tracing::info!(reaped, "closed idle cursors");
        }
        metrics::gauge!(names::CONNECTIONS).set(shared.connections() as f64);
        metrics::gauge!(names::CURSORS).set(shared.cursors.len() as f64);
        metrics::gauge!(names::TRANSACTIONS).set(shared.sessions.active() as f64);
        metrics::gauge!(names::DB_SIZE).set(shared.engine.file_size() as f64);
        metrics::gauge!(names::LAST_LSN).set(shared.engine.last_lsn() as f64);
        shared.monitor.evaluate();
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tasks = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        while tasks.try_join_next().is_some() {}
        if shared.connections() >= shared.config.max_connections {
            tracing::warn!(%peer, max = shared.config.max_connections, "refusing connection: too many open");
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
        shared.connections.fetch_add(1, Ordering::Relaxed);
        shared.total_connections.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(names::CONNECTIONS_TOTAL).increment(1);
        let conn = ConnState {
            id,
            peer: peer.to_string(),
            user: None,
            scram: None,
            compressors: Vec::new(),
        };
        let (shared2, rx, tls) = (shared.clone(), shutdown.clone(), tls.clone());
        tasks.spawn(async move {
            match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(s)) => crate::connection::serve(s, shared2.clone(), conn, rx).await,
                        Ok(Err(e)) => tracing::warn!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::warn!(%peer, "TLS handshake timed out"),
                    }
                }
                None => crate::connection::serve(stream, shared2.clone(), conn, rx).await,
            }
            shared2.connections.fetch_sub(1, Ordering::Relaxed);
        });
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
}
