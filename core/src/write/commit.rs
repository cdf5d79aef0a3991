//! The commit loop: the one place where writes become durable.
//!
//! ```text
//! begin LMDB write txn ─▶ apply each unit (nested txn: a failure undoes only itself)
//!        ▲                   └▶ statements via exec::apply, reads re-validated,
//!        │                      one change-log entry per command
//!        │ map full: abort,  ─▶ commit once ─▶ publish to watchers ─▶ acknowledge
//!        └ grow, run again
//! ```
//!
//! Single statements (through group commit, [`super::group`]), DDL with a
//! progress callback (run directly on the caller's thread), unlogged local
//! writes (consumer positions, copying a primary's log) and explicit
//! transactions ([`OpenTxn`]) all go through the functions here; the next
//! replicated state machine will too. Nothing above this module opens an
//! LMDB write transaction.

use std::cell::RefCell;

use heed::{RoTxn, RwTxn};

use super::engine::Engine;
use crate::error::{Error, Result};
use crate::exec::apply::{apply, reborrow, ApplyContext, Progress};
use crate::exec::readset::ReadSet;
use crate::exec::redo;
use crate::exec::statement::{Command, Outcome, Statement, Step};
use crate::log::{table, LogOp, Lsn};
use crate::storage::{is_map_full, GateGuard, Store, Wtx};

/// A write that is not a statement and produces no change-log entry.
#[derive(Debug, Clone)]
pub enum Local {
    /// Register a durable consumer at the newest LSN (nothing if it exists).
    RegisterConsumer(String),
    /// Move a durable consumer's acknowledged position forward.
    AckConsumer(String, Lsn),
    /// Forget a durable consumer.
    DropConsumer(String),
    /// Copy and redo a primary's log frames (a replica following it).
    ApplyFrames(Vec<(Lsn, Vec<u8>)>),
}

/// One unit of work for the commit loop.
#[derive(Debug, Clone)]
pub enum Work {
    /// A logical transaction: its statements and reads, one log entry.
    Command(Command),
    /// An unlogged local write.
    Local(Local),
}

/// What a unit of work produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// The outcome of each statement of a command.
    Statements(Vec<Outcome>),
    /// A local write: whether it changed anything (for `DropConsumer`: the
    /// consumer existed), or the newest LSN after applying frames.
    Local(bool, Lsn),
}

thread_local! {
    static OPEN_WRITERS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Marks "this thread holds a write transaction on this database" so that a
/// second one on the same thread fails instead of waiting for itself.
pub struct WriterMark(usize);

impl WriterMark {
    /// Marks the calling thread; [`Error::TransactionInProgress`] if it already is.
    pub fn acquire(engine: &Engine) -> Result<WriterMark> {
        let id = engine as *const Engine as usize;
        OPEN_WRITERS.with(|w| {
            let mut w = w.borrow_mut();
            if w.contains(&id) {
                return Err(Error::TransactionInProgress);
            }
            w.push(id);
            Ok(WriterMark(id))
        })
    }
}

impl Drop for WriterMark {
    fn drop(&mut self) {
        let id = self.0;
        OPEN_WRITERS.with(|w| w.borrow_mut().retain(|x| *x != id));
    }
}

/// Fails unless `engine` accepts this kind of work.
pub fn check_allowed(engine: &Engine, work: &Work) -> Result<()> {
    match work {
        Work::Command(_) => engine.check_writable(),
        Work::Local(_) => engine.check_local_writable(),
    }
}

/// Applies a command's steps in `w`: each statement (its outcome must equal
/// the expected one, when given) and each read re-validated, in order.
/// Appends the change-log operations to `ops`.
pub fn apply_command(
    w: &mut Wtx<'_, '_>,
    command: &Command,
    cx: &mut ApplyContext<'_, '_>,
    ops: &mut Vec<LogOp>,
) -> Result<Vec<Outcome>> {
    let mut outcomes = Vec::new();
    for step in &command.steps {
        match step {
            Step::Statement { statement, expect } => {
                let got = apply(w, statement, cx, ops)?;
                if let Some(want) = expect {
                    if *want != got {
                        return Err(Error::Conflict(format!(
                            "a statement on '{}' had a different effect than when the transaction ran it \
                             ({want:?} then, {got:?} now); nothing was applied, retry the transaction",
                            statement.collection()
                        )));
                    }
                }
                outcomes.push(got);
            }
            Step::Read(check) => {
                let targets = cx.targets;
                let (store, ro) = (w.store(), w.ro());
                check.validate(store, ro, &|name| targets.get(store, ro, name, false))?;
            }
        }
    }
    Ok(outcomes)
}

/// Runs one unit in `txn` and appends its log entry (commands only).
fn run_unit(
    engine: &Engine,
    txn: &mut RwTxn<'_>,
    work: &Work,
    progress: Progress<'_>,
) -> Result<(Output, Lsn)> {
    let store = &engine.store;
    match work {
        Work::Command(command) => {
            let mut ops = Vec::new();
            let mut cx = ApplyContext {
                targets: &engine.targets,
                progress,
            };
            let outcomes = apply_command(&mut Wtx::new(store, txn), command, &mut cx, &mut ops)?;
            let lsn = append(engine, txn, &ops, command.time_ms)?;
            Ok((Output::Statements(outcomes), lsn))
        }
        Work::Local(local) => run_local(engine, txn, local).map(|out| (out, 0)),
    }
}

fn run_local(engine: &Engine, txn: &mut RwTxn<'_>, local: &Local) -> Result<Output> {
    let store = &engine.store;
    Ok(match local {
        Local::RegisterConsumer(name) => {
            let new = table::consumer_position(store, txn, name)?.is_none();
            if new {
                let last = table::last_lsn(store, txn)?;
                table::set_consumer_position(store, txn, name, last)?;
            }
            Output::Local(new, 0)
        }
        Local::AckConsumer(name, lsn) => {
            let current = table::consumer_position(store, txn, name)?
                .ok_or_else(|| Error::InvalidConsumer(format!("consumer '{name}' was dropped")))?;
            let last = table::last_lsn(store, txn)?;
            if *lsn > last {
                return Err(Error::InvalidConsumer(format!(
                    "cannot acknowledge entry {lsn}: the newest entry is {last}"
                )));
            }
            let moved = *lsn > current;
            if moved {
                table::set_consumer_position(store, txn, name, *lsn)?;
            }
            Output::Local(moved, 0)
        }
        Local::DropConsumer(name) => Output::Local(table::remove_consumer(store, txn, name)?, 0),
        Local::ApplyFrames(frames) => {
            let lsn = redo::apply_frames(store, txn, frames, &engine.log.retention)?;
            Output::Local(true, lsn)
        }
    })
}

/// Appends the change-log entry of one logical transaction (nothing for no
/// operations); returns its LSN, or 0.
fn append(engine: &Engine, txn: &mut RwTxn<'_>, ops: &[LogOp], time_ms: i64) -> Result<Lsn> {
    if ops.is_empty() {
        return Ok(0);
    }
    table::append(&engine.store, txn, ops, time_ms, &engine.log.retention)
}

/// Runs `batch` in one write transaction — each unit in its own nested
/// transaction when there are several, so that a failing unit is undone
/// alone — commits once and publishes the newest LSN. When the map fills,
/// the whole batch is aborted, the map grown and the batch run again (units
/// are data, so running them again gives the same result). Returns each
/// unit's output and LSN (0 when it logged nothing), in order. The caller
/// acknowledges (see [`Engine::acknowledge`]).
pub fn commit_batch(
    engine: &Engine,
    batch: &[&Work],
    mut progress: Progress<'_>,
) -> Vec<Result<(Output, Lsn)>> {
    let store = &engine.store;
    let all = |e: &Error| batch.iter().map(|_| Err(e.clone())).collect::<Vec<_>>();
    store.grow_if_nearly_full();
    loop {
        let (gate, mut txn) = match store.write() {
            Ok(x) => x,
            Err(e) => return all(&e),
        };
        let mut results: Vec<Result<(Output, Lsn)>> = Vec::with_capacity(batch.len());
        let mut map_full = false;
        if let [work] = batch {
            // A lone unit needs no nested transaction.
            match run_unit(engine, &mut txn, work, reborrow(&mut progress)) {
                Err(e) if is_map_full(&e) => map_full = true,
                Err(e) => {
                    txn.abort();
                    return vec![Err(e)];
                }
                Ok(r) => results.push(Ok(r)),
            }
        } else {
            for work in batch {
                let r = store.nested(&mut txn).and_then(|mut child| {
                    match run_unit(engine, &mut child, work, None) {
                        Ok(r) => child.commit().map(|()| r).map_err(Error::from),
                        Err(e) => {
                            child.abort();
                            Err(e)
                        }
                    }
                });
                match r {
                    Err(e) if is_map_full(&e) => {
                        map_full = true;
                        break;
                    }
                    other => results.push(other),
                }
            }
        }
        if !map_full {
            #[cfg(test)]
            let recorded: Vec<Command> = batch
                .iter()
                .zip(&results)
                .filter_map(|(w, r)| match (w, r) {
                    (Work::Command(c), Ok(_)) => Some(c.clone()),
                    _ => None,
                })
                .collect();
            match txn.commit() {
                Ok(()) => {
                    #[cfg(test)]
                    engine.recorded.lock().extend(recorded);
                    drop(gate);
                    let newest = results
                        .iter()
                        .filter_map(|r| r.as_ref().ok())
                        .map(|(out, lsn)| match out {
                            Output::Local(_, applied) => (*applied).max(*lsn),
                            Output::Statements(_) => *lsn,
                        })
                        .max();
                    engine.log.signal.publish(newest.unwrap_or(0));
                    return results;
                }
                Err(e) => {
                    let e = Error::from(e);
                    if !is_map_full(&e) {
                        return all(&e);
                    }
                }
            }
        } else {
            txn.abort();
        }
        drop(gate);
        if let Err(e) = store.grow() {
            return all(&e);
        }
    }
}

/// Runs one unit of work directly on the calling thread (for DDL with a
/// progress callback, and local writes): commit, publish, acknowledge.
pub fn commit_now(engine: &Engine, work: &Work, progress: Progress<'_>) -> Result<Output> {
    check_allowed(engine, work)?;
    let mark = WriterMark::acquire(engine)?;
    let result = commit_batch(engine, &[work], progress).pop();
    drop(mark);
    let (output, lsn) =
        result.unwrap_or_else(|| Err(Error::TransactionClosed("the write did not run".into())))?;
    engine.acknowledge(lsn)?;
    Ok(output)
}

/// An explicit transaction's LMDB transaction: statements are applied as they
/// come (each in a nested transaction), reads are recorded, and the whole
/// is committed with one log entry. What it did is kept as a [`Command`] (its
/// change set), which is also how it is rebuilt after the map had to grow.
pub struct OpenTxn<'e> {
    engine: &'e Engine,
    // Field order matters: the transaction must end before the gate opens.
    txn: Option<RwTxn<'e>>,
    gate: Option<GateGuard>,
    steps: Vec<Step>,
    ops: Vec<LogOp>,
    reads: ReadSet,
    start_txn_id: usize,
    _mark: WriterMark,
}

impl<'e> OpenTxn<'e> {
    /// Begins (waits while another thread or process writes).
    pub fn begin(engine: &'e Engine) -> Result<OpenTxn<'e>> {
        engine.check_writable()?;
        let mark = WriterMark::acquire(engine)?;
        let store = &engine.store;
        store.grow_if_nearly_full();
        let (gate, txn) = store.write()?;
        let start_txn_id = store.last_txn_id();
        Ok(OpenTxn {
            engine,
            txn: Some(txn),
            gate: Some(gate),
            steps: Vec::new(),
            ops: Vec::new(),
            reads: ReadSet::default(),
            start_txn_id,
            _mark: mark,
        })
    }

    fn closed() -> Error {
        Error::TransactionClosed("already finished".into())
    }

    /// Applies one statement in a nested transaction: on failure nothing of it
    /// remains and the transaction stays usable.
    pub fn apply(&mut self, statement: Statement, mut progress: Progress<'_>) -> Result<Outcome> {
        self.flush_reads();
        loop {
            let store = &self.engine.store;
            let parent = self.txn.as_mut().ok_or_else(Self::closed)?;
            let mut child = store.nested(parent)?;
            let mut ops = Vec::new();
            let mut cx = ApplyContext {
                targets: &self.engine.targets,
                progress: reborrow(&mut progress),
            };
            let res = apply(
                &mut Wtx::new(store, &mut child),
                &statement,
                &mut cx,
                &mut ops,
            );
            let err = match res {
                Ok(outcome) => match child.commit() {
                    Ok(()) => {
                        self.ops.extend(ops);
                        self.steps.push(Step::Statement {
                            statement,
                            expect: Some(outcome.clone()),
                        });
                        return Ok(outcome);
                    }
                    Err(e) => Error::from(e),
                },
                Err(e) => {
                    child.abort();
                    e
                }
            };
            if !is_map_full(&err) {
                return Err(err);
            }
            self.grow_and_rebuild()?;
        }
    }

    /// Runs a read on the transaction's view, recording what it saw.
    pub fn read<T>(
        &mut self,
        f: &mut dyn FnMut(&Store, &RoTxn<'_>, &mut ReadSet) -> Result<T>,
    ) -> Result<T> {
        let txn = self.txn.as_ref().ok_or_else(Self::closed)?;
        f(&self.engine.store, txn, &mut self.reads)
    }

    fn flush_reads(&mut self) {
        self.steps
            .extend(self.reads.take().into_iter().map(Step::Read));
    }

    /// What the transaction did so far, as data: its statements with their
    /// outcomes and the reads between them, committed at `time_ms`.
    pub fn change_set(&mut self, time_ms: i64) -> Command {
        self.flush_reads();
        Command {
            time_ms,
            steps: self.steps.clone(),
        }
    }

    /// Aborts the LMDB transaction, doubles the map, and applies the change
    /// set again to a fresh transaction. Fails with [`Error::WriteConflict`]
    /// when another writer committed in between (this transaction's reads
    /// may be stale).
    fn grow_and_rebuild(&mut self) -> Result<()> {
        let engine = self.engine;
        let store = &engine.store;
        loop {
            if let Some(txn) = self.txn.take() {
                txn.abort();
            }
            self.gate = None;
            #[cfg(test)]
            {
                let hook = engine.rebuild_hook.lock().clone();
                if let Some(h) = hook {
                    h();
                }
            }
            store.grow()?;
            let (gate, mut txn) = store.write()?;
            if store.last_txn_id() != self.start_txn_id {
                txn.abort();
                return Err(Error::WriteConflict);
            }
            let command = Command {
                time_ms: 0,
                steps: self.steps.clone(),
            };
            let mut ops = Vec::new();
            let mut cx = ApplyContext::new(&engine.targets);
            match apply_command(&mut Wtx::new(store, &mut txn), &command, &mut cx, &mut ops) {
                Ok(_) => {
                    self.ops = ops;
                    self.txn = Some(txn);
                    self.gate = Some(gate);
                    return Ok(());
                }
                Err(e) if is_map_full(&e) => {
                    txn.abort();
                    drop(gate);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Commits with one change-log entry (committed at `time_ms`) holding the
    /// operations of every statement that succeeded, publishes and
    /// acknowledges it. Returns its LSN (0 when nothing was logged).
    pub fn commit(mut self, time_ms: i64) -> Result<Lsn> {
        let engine = self.engine;
        let lsn = loop {
            let mut txn = self.txn.take().ok_or_else(Self::closed)?;
            let res = match append(engine, &mut txn, &self.ops, time_ms) {
                Ok(lsn) => txn.commit().map(|()| lsn).map_err(Error::from),
                Err(e) => {
                    txn.abort();
                    Err(e)
                }
            };
            match res {
                Ok(lsn) => break lsn,
                Err(e) if is_map_full(&e) => self.grow_and_rebuild()?,
                Err(e) => return Err(e),
            }
        };
        #[cfg(test)]
        {
            let recorded = self.change_set(time_ms);
            engine.recorded.lock().push(recorded);
        }
        drop(self);
        engine.log.signal.publish(lsn);
        engine.acknowledge(lsn)?;
        Ok(lsn)
    }

    /// Rolls everything back (dropping does the same).
    pub fn rollback(mut self) {
        if let Some(txn) = self.txn.take() {
            txn.abort();
        }
    }
}
