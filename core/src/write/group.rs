//! Group commit, leader/follower style: a thread that submits a statement
//! while no commit is running becomes the leader; it takes every queued
//! statement (its own and those that arrived meanwhile), runs them in one LMDB
//! write transaction — each in its own nested transaction, so a failing
//! statement is undone alone — and commits once. Every statement of the batch
//! is acknowledged after that single durable commit. Threads that arrive
//! while a commit is running wait; the next leader takes them all. A lone
//! writer thus commits on its own thread with no hand-off, and batches run
//! one after another in arrival order, so acknowledged writes form one serial order.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use super::Durability;
use crate::db::DbInner;
use crate::error::{Error, Result};
use crate::storage::{is_map_full, Wtx};

/// A statement to run in the leader's transaction. It may run more than once
/// (if the map must grow mid-batch, the batch is re-run), so it must not
/// consume its inputs.
pub type Job = Box<dyn FnMut(&mut Wtx<'_, '_>) -> Result<()> + Send>;

/// Most statements merged into one commit.
const MAX_GROUP: usize = 1024;

type Slot = Arc<Mutex<Option<Result<()>>>>;

struct Pending {
    job: Job,
    slot: Slot,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Pending>,
    leader: bool,
}

/// The group-commit queue of one database.
pub struct Writer {
    state: Mutex<State>,
    wake: Condvar,
    durability: Durability,
}

impl Writer {
    /// A writer for the given durability mode.
    pub fn new(durability: Durability) -> Writer {
        Writer {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            durability,
        }
    }

    /// Runs a statement in the next group commit of `db` and waits until that
    /// commit is durable (or failed).
    pub(crate) fn run_blocking(&self, db: &DbInner, job: Job) -> Result<()> {
        let slot: Slot = Arc::new(Mutex::new(None));
        let mut st = self.state.lock();
        st.queue.push_back(Pending {
            job,
            slot: slot.clone(),
        });
        loop {
            if let Some(r) = slot.lock().take() {
                return r;
            }
            if st.leader {
                self.wake.wait(&mut st);
                continue;
            }
            st.leader = true;
            // Lead while work keeps arriving (like a dedicated writer thread,
            // without a hand-off for a lone writer), for a bounded number of
            // batches so this caller's own latency stays bounded.
            for turn in 0..MAX_TURNS {
                if turn > 0 && st.queue.is_empty() {
                    break;
                }
                if let Durability::Batched { max_delay } = self.durability {
                    let deadline = Instant::now() + max_delay;
                    while st.queue.len() < MAX_GROUP {
                        if self.wake.wait_until(&mut st, deadline).timed_out() {
                            break;
                        }
                    }
                }
                let n = st.queue.len().min(MAX_GROUP);
                let batch: Vec<Pending> = st.queue.drain(..n).collect();
                drop(st);
                let handover = Handover {
                    writer: self,
                    slots: batch.iter().map(|p| p.slot.clone()).collect(),
                };
                commit_group(db, batch);
                drop(handover);
                // Wake the waiters of this batch.
                self.wake.notify_all();
                st = self.state.lock();
            }
            st.leader = false;
            self.wake.notify_all();
        }
    }
}

/// Most consecutive batches one leader commits before handing over.
const MAX_TURNS: usize = 8;

/// Ends a leader's turn, even if the batch panicked: every statement of the
/// batch gets an outcome and the waiting threads are woken to pick a new leader.
struct Handover<'w> {
    writer: &'w Writer,
    slots: Vec<Slot>,
}

impl Drop for Handover<'_> {
    fn drop(&mut self) {
        for slot in &self.slots {
            let mut s = slot.lock();
            if s.is_none() {
                *s = Some(Err(Error::TransactionClosed(
                    "the group commit running this statement panicked; nothing of it was committed"
                        .into(),
                )));
            }
        }
        if std::thread::panicking() {
            self.writer.state.lock().leader = false;
            self.writer.wake.notify_all();
        }
    }
}

fn copy_error(e: &Error) -> Error {
    Error::Io(std::io::Error::other(format!("group commit failed: {e}")))
}

/// Runs a batch in one write transaction and commits it once.
fn commit_group(inner: &DbInner, mut batch: Vec<Pending>) {
    let store = &inner.store;
    store.grow_if_nearly_full();
    let results: Vec<Result<()>> = 'attempt: loop {
        let (gate, mut txn) = match store.write() {
            Ok(x) => x,
            Err(e) => break 'attempt batch.iter().map(|_| Err(copy_error(&e))).collect(),
        };
        let mut results: Vec<Result<()>> = Vec::with_capacity(batch.len());
        let mut map_full = false;
        if batch.len() == 1 {
            // A lone statement needs no nested transaction.
            let r = {
                let mut w = Wtx::new(store, &mut txn, None);
                (batch[0].job)(&mut w)
            };
            match r {
                Err(e) if is_map_full(&e) => map_full = true,
                Err(e) => {
                    txn.abort();
                    break 'attempt vec![Err(e)];
                }
                Ok(()) => results.push(Ok(())),
            }
        } else {
            for p in batch.iter_mut() {
                let mut child = match store.nested(&mut txn) {
                    Ok(c) => c,
                    Err(e) => {
                        results.push(Err(e));
                        continue;
                    }
                };
                let r = {
                    let mut w = Wtx::new(store, &mut child, None);
                    (p.job)(&mut w)
                };
                let r = match r {
                    Ok(()) => child.commit().map_err(Error::from),
                    Err(e) => {
                        child.abort();
                        Err(e)
                    }
                };
                match r {
                    Err(e) if is_map_full(&e) => {
                        map_full = true;
                        break;
                    }
                    other => results.push(other),
                }
            }
        }
        if map_full {
            txn.abort();
            drop(gate);
            if let Err(e) = store.grow() {
                break 'attempt batch.iter().map(|_| Err(copy_error(&e))).collect();
            }
            continue;
        }
        match txn.commit() {
            Ok(()) => break 'attempt results,
            Err(e) => {
                let e = Error::from(e);
                drop(gate);
                if is_map_full(&e) {
                    if let Err(e) = store.grow() {
                        break 'attempt batch.iter().map(|_| Err(copy_error(&e))).collect();
                    }
                    continue;
                }
                break 'attempt batch.iter().map(|_| Err(copy_error(&e))).collect();
            }
        }
    };
    for (p, r) in batch.into_iter().zip(results) {
        *p.slot.lock() = Some(r);
    }
}
