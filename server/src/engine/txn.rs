//! Server-side transactions: one engine [`Transaction`] per MongoDB session
//! transaction, owned by a dedicated OS thread (LMDB binds a write
//! transaction to the thread that began it) that runs the session's statements
//! as jobs received through a channel. The thread rolls the transaction back
//! when no job arrives within the idle timeout or the lifetime is exceeded, so
//! an abandoned client cannot hold the database's single writer for long.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use collection_store::{Database, Transaction};

use super::errors::command_error;
use crate::errors::{code, CmdResult, CommandError};

/// A statement to run inside the transaction.
pub type Job = Box<dyn for<'a, 'b> FnOnce(&'a Transaction<'b>) + Send>;

enum Control {
    Run(Job),
    Commit(mpsc::Sender<CmdResult<()>>),
    Abort(mpsc::Sender<()>),
}

/// Limits of a server-side transaction.
#[derive(Debug, Clone, Copy)]
pub struct TxnLimits {
    /// Rolled back when no statement arrives for this long.
    pub idle_timeout: Duration,
    /// Rolled back when open for longer than this.
    pub lifetime: Duration,
}

/// A handle on a transaction thread.
pub struct TxnWorker {
    sender: Mutex<Option<mpsc::Sender<Control>>>,
    ended: Arc<Mutex<Option<String>>>,
    dead: Arc<AtomicBool>,
}

impl std::fmt::Debug for TxnWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnWorker")
            .field("dead", &self.dead.load(Ordering::Relaxed))
            .finish()
    }
}

impl TxnWorker {
    /// Starts a thread and begins a transaction on it; waits until it has begun
    /// (that is, until no other writer holds the database, at most `lifetime`).
    pub fn start(db: Database, limits: TxnLimits) -> CmdResult<TxnWorker> {
        let (tx, rx) = mpsc::channel::<Control>();
        let (began, began_rx) = mpsc::channel::<CmdResult<()>>();
        let ended = Arc::new(Mutex::new(None));
        let dead = Arc::new(AtomicBool::new(false));
        let (ended2, dead2) = (ended.clone(), dead.clone());
        std::thread::Builder::new()
            .name("cs-session-txn".into())
            .spawn(move || run(db, limits, rx, began, ended2, dead2))
            .map_err(|e| {
                CommandError::new(
                    code::INTERNAL_ERROR,
                    format!("cannot start a transaction thread: {e}"),
                )
            })?;
        match began_rx.recv() {
            Ok(Ok(())) => Ok(TxnWorker {
                sender: Mutex::new(Some(tx)),
                ended,
                dead,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(CommandError::new(
                code::INTERNAL_ERROR,
                "the transaction thread ended before it began",
            )),
        }
    }

    /// Why the transaction ended on its own (timeout), if it did.
    pub fn ended_reason(&self) -> Option<String> {
        if self.dead.load(Ordering::Acquire) {
            Some(
                self.ended
                    .lock()
                    .map(|r| r.clone().unwrap_or_else(|| "the transaction ended".into()))
                    .unwrap_or_else(|_| "the transaction ended".into()),
            )
        } else {
            None
        }
    }

    fn send(&self, c: Control) -> CmdResult<()> {
        let guard = self
            .sender
            .lock()
            .map_err(|_| gone("lock poisoned".into()))?;
        match guard.as_ref() {
            Some(s) => s
                .send(c)
                .map_err(|_| gone(self.ended_reason().unwrap_or_default())),
            None => Err(gone(
                "the transaction was already committed or aborted".into(),
            )),
        }
    }

    /// Runs `f` inside the transaction and returns its result.
    pub fn run<R: Send + 'static>(
        &self,
        f: impl for<'a, 'b> FnOnce(&'a Transaction<'b>) -> CmdResult<R> + Send + 'static,
    ) -> CmdResult<R> {
        let (tx, rx) = mpsc::channel();
        self.send(Control::Run(Box::new(move |t| {
            let _ = tx.send(f(t));
        })))?;
        rx.recv()
            .map_err(|_| gone(self.ended_reason().unwrap_or_default()))?
    }

    /// Commits (durably) and ends the thread.
    pub fn commit(&self) -> CmdResult<()> {
        let (tx, rx) = mpsc::channel();
        self.send(Control::Commit(tx))?;
        self.close_sender();
        rx.recv()
            .map_err(|_| gone(self.ended_reason().unwrap_or_default()))?
    }

    /// Rolls back and ends the thread; waits until the writer is released.
    pub fn abort(&self) {
        let (tx, rx) = mpsc::channel();
        if self.send(Control::Abort(tx)).is_ok() {
            let _ = rx.recv();
        }
        self.close_sender();
    }

    fn close_sender(&self) {
        if let Ok(mut s) = self.sender.lock() {
            *s = None;
        }
    }
}

impl Drop for TxnWorker {
    fn drop(&mut self) {
        self.abort();
    }
}

fn gone(reason: String) -> CommandError {
    let reason = if reason.is_empty() {
        "the transaction is no longer open".to_owned()
    } else {
        reason
    };
    CommandError::new(code::NO_SUCH_TRANSACTION, reason).with_label("TransientTransactionError")
}

fn run(
    db: Database,
    limits: TxnLimits,
    rx: mpsc::Receiver<Control>,
    began: mpsc::Sender<CmdResult<()>>,
    ended: Arc<Mutex<Option<String>>>,
    dead: Arc<AtomicBool>,
) {
    let finish = |reason: String| {
        if let Ok(mut e) = ended.lock() {
            *e = Some(reason);
        }
        dead.store(true, Ordering::Release);
    };
    let tx = match db.begin() {
        Ok(tx) => tx,
        Err(e) => {
            finish("the transaction could not begin".into());
            let _ = began.send(Err(command_error(e)));
            return;
        }
    };
    let _ = began.send(Ok(()));
    let started = Instant::now();
    loop {
        let left = limits.lifetime.saturating_sub(started.elapsed());
        if left.is_zero() {
            tx.rollback();
            tracing::warn!(lifetime = ?limits.lifetime, "transaction aborted: open longer than its lifetime limit");
            finish(format!(
                "the transaction was aborted because it was open longer than {} s (transaction lifetime limit)",
                limits.lifetime.as_secs()
            ));
            return;
        }
        match rx.recv_timeout(left.min(limits.idle_timeout)) {
            Ok(Control::Run(job)) => job(&tx),
            Ok(Control::Commit(reply)) => {
                let r = tx.commit().map_err(command_error);
                finish("the transaction was committed".into());
                let _ = reply.send(r);
                return;
            }
            Ok(Control::Abort(reply)) => {
                tx.rollback();
                finish("the transaction was aborted".into());
                let _ = reply.send(());
                return;
            }
            Err(RecvTimeoutError::Disconnected) => {
                tx.rollback();
                finish("the transaction was aborted".into());
                return;
            }
            Err(RecvTimeoutError::Timeout) => {
                if started.elapsed() >= limits.lifetime {
                    continue;
                }
                tx.rollback();
                tracing::warn!(idle = ?limits.idle_timeout, "transaction aborted: no statement within the idle timeout");
                finish(format!(
                    "the transaction was aborted after {} ms without a statement (transaction idle timeout)",
                    limits.idle_timeout.as_millis()
                ));
                return;
            }
        }
    }
}
