//! Configuration: command-line flags, each also readable from the environment,
//! and an optional TOML file. A flag or variable wins over the file, the file
//! over the defaults.
//!
//! ```toml
//! data = "/var/lib/collection-store"
//! listen = "0.0.0.0:27017"
//! metrics_port = 9464
//! users_file = "/etc/collection-store/users.toml"
//!
//! [alert_thresholds]          # the original PerformanceMonitor's thresholds
//! max_latency_ms = 100        # mean command latency over the window
//! max_error_rate_percent = 5
//! min_throughput_ops = 0      # 0 = off
//! window_secs = 60
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde::Deserialize;

use crate::monitor::alerts::AlertThresholds;

/// Command line of `collection-store-server`.
#[derive(Debug, Parser, Default)]
#[command(
    name = "collection-store-server",
    version,
    about = "collection-store over the MongoDB wire protocol"
)]
pub struct Args {
    /// Database directory (the same format an embedded application opens).
    #[arg(long, env = "COLLECTION_STORE_ROOT")]
    pub data: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, env = "COLLECTION_STORE_LISTEN")]
    pub listen: Option<String>,
    /// A user as NAME:PASSWORD (repeatable; the variable holds one). With any user,
    /// every data command needs authentication.
    #[arg(long = "user", env = "COLLECTION_STORE_USER")]
    pub users: Vec<String>,
    /// A TOML file of users with salted, iterated credentials (see `hash-user`).
    #[arg(long, env = "COLLECTION_STORE_USERS_FILE")]
    pub users_file: Option<PathBuf>,
    /// PEM certificate chain; with --tls-key, clients must connect with TLS.
    #[arg(long, env = "COLLECTION_STORE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "COLLECTION_STORE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Port of the HTTP endpoint serving /metrics (Prometheus) and /status (JSON).
    #[arg(long, env = "METRICS_PORT")]
    pub metrics_port: Option<u16>,
    /// Host of the metrics endpoint (default: the host of --listen).
    #[arg(long, env = "COLLECTION_STORE_METRICS_HOST")]
    pub metrics_host: Option<String>,
    /// Record metrics and evaluate alerts (default true).
    #[arg(long, env = "MONITORING_ENABLED")]
    pub monitoring: Option<bool>,
    /// TOML configuration file.
    #[arg(long, env = "COLLECTION_STORE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Write the bound address to this file once listening.
    #[arg(long, env = "COLLECTION_STORE_PORT_FILE")]
    pub port_file: Option<PathBuf>,
    /// Close cursors idle for this many seconds (default 600).
    #[arg(long, env = "COLLECTION_STORE_CURSOR_TIMEOUT_SECS")]
    pub cursor_timeout_secs: Option<u64>,
    /// Open cursors allowed per connection (default 1000).
    #[arg(long, env = "COLLECTION_STORE_MAX_CURSORS_PER_CONNECTION")]
    pub max_cursors_per_connection: Option<usize>,
    /// Connections served at once (default 1000); more are closed on accept.
    #[arg(long, env = "COLLECTION_STORE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Abort a transaction after this many ms without a statement (default 10000).
    #[arg(long, env = "COLLECTION_STORE_TXN_IDLE_TIMEOUT_MS")]
    pub transaction_idle_timeout_ms: Option<u64>,
    /// Abort a transaction open longer than this many seconds (default 60).
    #[arg(long, env = "COLLECTION_STORE_TXN_LIFETIME_SECS")]
    pub transaction_lifetime_secs: Option<u64>,
    /// Subcommands (none: run the server).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a users-file entry for NAME:PASSWORD (salted, iterated; no plaintext).
    HashUser {
        /// NAME:PASSWORD
        user: String,
    },
}

/// The configuration file's keys (all optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    data: Option<PathBuf>,
    listen: Option<String>,
    #[serde(default)]
    users: Vec<String>,
    users_file: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    metrics_port: Option<u16>,
    metrics_host: Option<String>,
    monitoring: Option<bool>,
    port_file: Option<PathBuf>,
    cursor_timeout_secs: Option<u64>,
    max_cursors_per_connection: Option<usize>,
    max_connections: Option<usize>,
    transaction_idle_timeout_ms: Option<u64>,
    transaction_lifetime_secs: Option<u64>,
    alert_thresholds: Option<AlertThresholds>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Database directory.
    pub data: PathBuf,
    /// Listen address.
    pub listen: String,
    /// `NAME:PASSWORD` users.
    pub users: Vec<String>,
    /// Users file.
    pub users_file: Option<PathBuf>,
    /// TLS certificate and key.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Metrics endpoint address.
    pub metrics: Option<String>,
    /// Metrics and alerts on.
    pub monitoring: bool,
    /// Where to write the bound address.
    pub port_file: Option<PathBuf>,
    /// Cursor idle timeout.
    pub cursor_timeout: Duration,
    /// Cursors per connection.
    pub max_cursors_per_connection: usize,
    /// Concurrent connections.
    pub max_connections: usize,
    /// Transaction idle timeout.
    pub transaction_idle_timeout: Duration,
    /// Transaction lifetime.
    pub transaction_lifetime: Duration,
    /// Alert thresholds.
    pub alerts: AlertThresholds,
}

/// A configuration problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No `--data`.
    #[error("no database directory: pass --data DIR or set COLLECTION_STORE_ROOT")]
    NoData,
    /// Only one of the TLS files.
    #[error("TLS needs both --tls-cert and --tls-key")]
    HalfTls,
    /// The config file cannot be read or parsed.
    #[error("config file {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl Config {
    /// Resolves flags and environment (in `args`) over the optional file.
    pub fn resolve(args: Args) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::File {
                    path: path.clone(),
                    message: e.to_string(),
                })?
            }
            None => FileConfig::default(),
        };
        let data = args.data.or(file.data).ok_or(ConfigError::NoData)?;
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:27017".into());
        let tls = match (
            args.tls_cert.or(file.tls_cert),
            args.tls_key.or(file.tls_key),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => return Err(ConfigError::HalfTls),
        };
        let host = args
            .metrics_host
            .or(file.metrics_host)
            .unwrap_or_else(|| listen_host(&listen));
        let metrics = args
            .metrics_port
            .or(file.metrics_port)
            .map(|p| join_host_port(&host, p));
        let mut users = file.users;
        users.extend(args.users);
        Ok(Config {
            data,
            listen,
            users,
            users_file: args.users_file.or(file.users_file),
            tls,
            metrics,
            monitoring: args.monitoring.or(file.monitoring).unwrap_or(true),
            port_file: args.port_file.or(file.port_file),
            cursor_timeout: Duration::from_secs(
                args.cursor_timeout_secs
                    .or(file.cursor_timeout_secs)
                    .unwrap_or(600),
            ),
            max_cursors_per_connection: args
                .max_cursors_per_connection
                .or(file.max_cursors_per_connection)
                .unwrap_or(1000),
            max_connections: args
                .max_connections
                .or(file.max_connections)
                .unwrap_or(1000),
            transaction_idle_timeout: Duration::from_millis(
                args.transaction_idle_timeout_ms
                    .or(file.transaction_idle_timeout_ms)
                    .unwrap_or(10_000),
            ),
            transaction_lifetime: Duration::from_secs(
                args.transaction_lifetime_secs
                    .or(file.transaction_lifetime_secs)
                    .unwrap_or(60),
            ),
            alerts: file.alert_thresholds.unwrap_or_default(),
        })
    }

    /// A configuration for `data` on `listen` with defaults (tests, embedding).
    pub fn new(data: impl Into<PathBuf>, listen: &str) -> Config {
        Config::resolve(Args {
            data: Some(data.into()),
            listen: Some(listen.into()),
            ..Args::default()
        })
        .expect("data and listen are given")
    }
}

fn listen_host(listen: &str) -> String {
    match listen.parse::<SocketAddr>() {
        Ok(a) => a.ip().to_string(),
        Err(_) => listen
            .rsplit_once(':')
            .map(|(h, _)| h.to_owned())
            .unwrap_or_else(|| "127.0.0.1".into()),
    }
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "data = \"/from/file\"\nlisten = \"0.0.0.0:1\"\nmetrics_port = 9\n[alert_thresholds]\nmax_latency_ms = 7\n",
        )
        .unwrap();
        let c = Config::resolve(Args {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:5".into()),
            ..Args::default()
        })
        .unwrap();
        assert_eq!(c.data, PathBuf::from("/from/file"));
        assert_eq!(c.listen, "127.0.0.1:5");
        assert_eq!(c.metrics.as_deref(), Some("127.0.0.1:9"));
        assert_eq!(c.alerts.max_latency_ms, 7.0);
        std::fs::write(&path, "bogus = 1\n").unwrap();
        assert!(Config::resolve(Args {
            config: Some(path),
            ..Args::default()
        })
        .is_err());
        assert!(matches!(
            Config::resolve(Args::default()),
            Err(ConfigError::NoData)
        ));
    }
}
