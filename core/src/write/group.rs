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

use parking_lot::{Condvar, Mutex};

use super::Durability;
use crate::db::DbInner;
use crate::error::{Error, Result};
use crate::log::Lsn;
use crate::storage::{is_map_full, Wtx};

/// A statement to run in the leader's transaction. It may run more than once
/// (if the map must grow mid-batch, the batch is re-run), so it must not
/// consume its inputs.
pub type Job = Box<dyn FnMut(&mut Wtx<'_, '_>) -> Result<()> + Send>;

/// Most statements merged into one commit.
const MAX_GROUP: usize = 1024;

/// Most consecutive batches one leader commits before handing over.
const MAX_TURNS: usize = 8;

/// Where a queued statement stands. Each waiting thread sleeps on its own slot,
/// so a commit wakes exactly the threads it acknowledges (and one next leader).
enum Turn {
    Waiting,
    Lead,
    Done(Result<Lsn>),
}

struct Slot {
    turn: Mutex<Turn>,
    wake: Condvar,
}

impl Slot {
    fn set(&self, t: Turn) {
        *self.turn.lock() = t;
        self.wake.notify_one();
    }
}

struct Pending {
    job: Job,
    slot: Arc<Slot>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Pending>,
    leader: bool,
}

/// The group-commit queue of one database.
pub struct Writer {
    state: Mutex<State>,
    durability: Durability,
}

impl Writer {
    /// A writer for the given durability mode.
    pub fn new(durability: Durability) -> Writer {
        Writer {
            state: Mutex::new(State::default()),
            durability,
        }
    }

    /// Runs a statement in the next group commit of `db` and waits until that
    /// commit is durable (or failed). Returns the LSN of the statement's log
    /// entry (0 when it changed nothing).
    pub(crate) fn run_blocking(&self, db: &DbInner, job: Job) -> Result<Lsn> {
        let slot = Arc::new(Slot {
            turn: Mutex::new(Turn::Waiting),
            wake: Condvar::new(),
        });
        {
            let mut st = self.state.lock();
            st.queue.push_back(Pending {
                job,
                slot: slot.clone(),
            });
            if !st.leader {
                st.leader = true;
                drop(st);
                self.lead(db);
            }
        }
        loop {
            let mut t = slot.turn.lock();
            while matches!(*t, Turn::Waiting) {
                slot.wake.wait(&mut t);
            }
            match std::mem::replace(&mut *t, Turn::Waiting) {
                Turn::Done(r) => return r,
                _ => {
                    drop(t);
                    self.lead(db);
                }
            }
        }
    }

    /// Commits batches while work keeps arriving (like a dedicated writer
    /// thread, without a hand-off for a lone writer), for a bounded number of
    /// turns, then passes leadership to the oldest waiting statement.
    fn lead(&self, db: &DbInner) {
        for turn in 0..MAX_TURNS {
            if let (0, Durability::Batched { max_delay }) = (turn, self.durability) {
                // Let more statements join this commit.
                std::thread::sleep(max_delay);
            }
            let batch: Vec<Pending> = {
                let mut st = self.state.lock();
                let n = st.queue.len().min(MAX_GROUP);
                st.queue.drain(..n).collect()
            };
            if batch.is_empty() {
                break;
            }
            let handover = Handover {
                writer: self,
                slots: batch.iter().map(|p| p.slot.clone()).collect(),
            };
            commit_group(db, batch);
            drop(handover);
        }
        self.release();
    }

    /// Gives leadership to the oldest queued statement, or ends it.
    fn release(&self) {
        let mut st = self.state.lock();
        match st.queue.front() {
            Some(next) => next.slot.set(Turn::Lead),
            None => st.leader = false,
        }
    }
}

/// Makes sure every statement of a batch gets an outcome, even if the batch
/// panicked, and that leadership passes on in that case.
struct Handover<'w> {
    writer: &'w Writer,
    slots: Vec<Arc<Slot>>,
}

impl Drop for Handover<'_> {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        for slot in &self.slots {
            let mut t = slot.turn.lock();
            if !matches!(*t, Turn::Done(_)) {
                *t = Turn::Done(Err(Error::TransactionClosed(
                    "the group commit running this statement panicked; nothing of it was committed"
                        .into(),
                )));
                slot.wake.notify_one();
            }
        }
        if panicking {
            self.writer.release();
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
    let results: Vec<Result<Lsn>> = 'attempt: loop {
        let (gate, mut txn) = match store.write() {
            Ok(x) => x,
            Err(e) => break 'attempt batch.iter().map(|_| Err(copy_error(&e))).collect(),
        };
        let mut results: Vec<Result<Lsn>> = Vec::with_capacity(batch.len());
        let mut map_full = false;
        if batch.len() == 1 {
            // A lone statement needs no nested transaction.
            let r = {
                let mut w = Wtx::new(store, &mut txn, None);
                (batch[0].job)(&mut w).map(|()| w.take_ops())
            };
            match r.and_then(|ops| inner.append_log(&mut txn, &ops)) {
                Err(e) if is_map_full(&e) => map_full = true,
                Err(e) => {
                    txn.abort();
                    break 'attempt vec![Err(e)];
                }
                Ok(lsn) => results.push(Ok(lsn)),
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
                    (p.job)(&mut w).map(|()| w.take_ops())
                };
                let r = match r.and_then(|ops| inner.append_log(&mut child, &ops)) {
                    Ok(lsn) => child.commit().map(|()| lsn).map_err(Error::from),
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
            Ok(()) => {
                let newest = results.iter().filter_map(|r| r.as_ref().ok()).max();
                inner.log.signal.publish(newest.copied().unwrap_or(0));
                break 'attempt results;
            }
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
        p.slot.set(Turn::Done(r));
    }
}
