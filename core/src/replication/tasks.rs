//! Small async helpers shared by the primary and the replica: running
//! database calls on tokio's blocking pool, and bounding a step with a timeout.

use std::time::Duration;

use crate::error::{Error, Result};

/// Runs a (blocking) database call on tokio's blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Replication(format!("background task failed: {e}")))?
}

/// Fails with a timed-out I/O error naming `what` when `f` takes longer than `d`.
pub(super) async fn with_timeout<T>(
    d: Duration,
    what: &str,
    f: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(d, f).await {
        Ok(r) => r,
        Err(_) => Err(Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("{what} timed out after {d:?}"),
        ))),
    }
}
