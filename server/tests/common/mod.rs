//! An in-process server on a loopback port in a temporary directory.

#![allow(dead_code)]

use std::time::Duration;

use collection_store_server::{Config, ServerHandle};

/// A running server and its directory.
pub struct TestServer {
    pub handle: Option<ServerHandle>,
    pub runtime: tokio::runtime::Runtime,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts with `users` (NAME:PASSWORD).
    pub fn start(users: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let mut config = Config::new(dir.path().join("db"), "127.0.0.1:0");
        config.users = users.iter().map(|s| s.to_string()).collect();
        config.monitoring = false;
        let handle = runtime
            .block_on(collection_store_server::start(config))
            .expect("server starts");
        TestServer {
            handle: Some(handle),
            runtime,
            dir,
        }
    }

    /// `host:port`.
    pub fn addr(&self) -> String {
        self.handle
            .as_ref()
            .map(|h| h.addr.to_string())
            .unwrap_or_default()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.runtime.block_on(h.shutdown(Duration::from_secs(5)));
        }
    }
}
