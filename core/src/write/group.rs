//! Group commit, leader/follower style: a thread that submits work while no
//! commit is running becomes the leader; it takes every queued unit of work
//! (its own and those that arrived meanwhile) and hands them to the commit
//! loop ([`super::commit::commit_batch`]) as one batch: one LMDB write
//! transaction, each unit in its own nested transaction, one commit. Every
//! unit of the batch is acknowledged after that single durable commit.
//! Threads that arrive while a commit is running wait; the next leader takes
//! them all. A lone writer thus commits on its own thread with no hand-off,
//! and batches run one after another in arrival order, so acknowledged
//! writes form one serial order.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::commit::{check_allowed, commit_batch, newest, Output, Work, WriterMark};
use super::engine::Engine;
use super::Durability;
use crate::error::{Error, Result};
use crate::log::Lsn;

/// Most statements merged into one commit.
const MAX_GROUP: usize = 1024;

/// Where a queued statement stands. Each waiting thread sleeps on its own slot,
/// so a commit wakes exactly the threads it acknowledges (and one next leader).
enum Turn {
    Waiting,
    Lead,
    Done(Result<(Output, Lsn)>),
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
    work: Work,
    slot: Arc<Slot>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Pending>,
    leader: bool,
    /// Units the leader took for its current batch, until it hands
    /// leadership on; 0 when nobody leads.
    in_batch: usize,
}

/// The group-commit queue of one database.
pub struct Group {
    state: Mutex<State>,
    durability: Durability,
    /// Called by the leader before it takes a batch and before it commits
    /// one (unit tests force rare paths with it: a panic mid-commit, units
    /// arriving at a chosen moment).
    #[cfg(test)]
    pub(crate) hook: Mutex<Option<Hook>>,
}

/// A test's callback at a [`Stage`] of the leader.
#[cfg(test)]
pub(crate) type Hook = Arc<dyn Fn(&Group, Stage) + Send + Sync>;

/// Where the leader calls [`Group::hook`].
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Before taking the queued units.
    BeforeTake,
    /// With a batch of this many units taken, before committing it.
    BeforeCommit(usize),
}

impl Engine {
    /// Runs `work` in the next group commit and waits until that commit is
    /// durable (or failed), then acknowledges it. The calling thread must not
    /// hold a write transaction of this database.
    pub fn submit(&self, work: Work) -> Result<Output> {
        check_allowed(self, &work)?;
        // The leader would wait for this thread's transaction while this
        // thread waits for the leader.
        drop(WriterMark::acquire(self)?);
        let needs_checkpoint = work.durable_by_checkpoint();
        let (output, lsn) = self.group.run_blocking(self, work)?;
        if needs_checkpoint {
            self.checkpoint_through(self.store.last_txn_id() as u64)?;
        }
        self.acknowledge(lsn)?;
        Ok(output)
    }

    /// Statements waiting in the group-commit queue, and those in the
    /// leader's current batch (for tests that must know statements queued).
    pub fn group_queue(&self) -> (usize, usize) {
        self.group.queued_and_in_batch()
    }
}

impl Group {
    /// A queue for the given durability mode.
    pub fn new(durability: Durability) -> Group {
        Group {
            state: Mutex::new(State::default()),
            durability,
            #[cfg(test)]
            hook: Mutex::new(None),
        }
    }

    /// Units waiting in the queue, and units in the leader's batch (see
    /// `State::in_batch`).
    pub fn queued_and_in_batch(&self) -> (usize, usize) {
        let st = self.state.lock();
        (st.queue.len(), st.in_batch)
    }

    #[cfg(test)]
    fn call_hook(&self, stage: Stage) {
        let hook = self.hook.lock().clone();
        if let Some(h) = hook {
            h(self, stage);
        }
    }

    /// Runs work in the next group commit of `db` and waits until that
    /// commit is durable (or failed). Returns its output and the LSN of its
    /// log entry (0 when it logged nothing).
    fn run_blocking(&self, db: &Engine, work: Work) -> Result<(Output, Lsn)> {
        let slot = Arc::new(Slot {
            turn: Mutex::new(Turn::Waiting),
            wake: Condvar::new(),
        });
        {
            let mut st = self.state.lock();
            st.queue.push_back(Pending {
                work,
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

    /// Commits one batch: takes every queued unit, runs them through the
    /// commit loop, hands leadership to the oldest waiting unit (so that the
    /// next batch executes while this one's log flush runs), then flushes
    /// the log through the batch and wakes its members.
    fn lead(&self, db: &Engine) {
        if let Durability::Batched { max_delay } = self.durability {
            // Let more statements join this commit.
            std::thread::sleep(max_delay);
        }
        #[cfg(test)]
        self.call_hook(Stage::BeforeTake);
        let batch: Vec<Pending> = {
            let mut st = self.state.lock();
            let n = st.queue.len().min(MAX_GROUP);
            st.in_batch = n;
            st.queue.drain(..n).collect()
        };
        if batch.is_empty() {
            self.release();
            return;
        }
        let mut handover = Handover {
            writer: self,
            slots: batch.iter().map(|p| p.slot.clone()).collect(),
            released: false,
        };
        #[cfg(test)]
        self.call_hook(Stage::BeforeCommit(batch.len()));
        let works: Vec<&Work> = batch.iter().map(|p| &p.work).collect();
        let results = commit_batch(db, &works, None);
        self.release();
        handover.released = true;
        let flushed = db.make_durable(newest(&results));
        for (p, r) in batch.iter().zip(results) {
            let r = match (&flushed, r) {
                (Err(e), Ok(_)) => Err(e.clone()),
                (_, r) => r,
            };
            p.slot.set(Turn::Done(r));
        }
        drop(handover);
    }

    /// Gives leadership to the oldest queued statement, or ends it.
    fn release(&self) {
        let mut st = self.state.lock();
        st.in_batch = 0;
        match st.queue.front() {
            Some(next) => next.slot.set(Turn::Lead),
            None => st.leader = false,
        }
    }
}

/// Makes sure every statement of a batch gets an outcome, even if the batch
/// panicked, and that leadership passes on in that case.
struct Handover<'w> {
    writer: &'w Group,
    slots: Vec<Arc<Slot>>,
    /// Leadership was already passed on.
    released: bool,
}

impl Drop for Handover<'_> {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        for slot in &self.slots {
            let mut t = slot.turn.lock();
            if !matches!(*t, Turn::Done(_)) {
                *t = Turn::Done(Err(Error::TransactionClosed(
                    "the group commit running this statement panicked before it was acknowledged"
                        .into(),
                )));
                slot.wake.notify_one();
            }
        }
        if panicking && !self.released {
            self.writer.release();
        }
    }
}
