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
use crate::log::entry::encode_frame;
use crate::log::wal::WalPos;
use crate::log::{state, LogOp, Lsn};
use crate::storage::{is_map_full, GateGuard, Store, Table, Writing, Wtx};

/// A write that is not a statement.
#[derive(Debug, Clone)]
pub enum Local {
    /// Register a durable consumer at the newest LSN (nothing if it exists).
    RegisterConsumer(String),
    /// Move a durable consumer's acknowledged position forward.
    AckConsumer(String, Lsn),
    /// Forget a durable consumer.
    DropConsumer(String),
    /// Redo a primary's log frames and copy them into this log under the
    /// same LSNs (a replica following it).
    ApplyFrames(Vec<(Lsn, Vec<u8>)>),
    /// Redo frames the log holds after the state's end (recovery), and set
    /// the end to `end` (which raises the epoch).
    Replay {
        /// The frames, in order, continuing the state's end.
        frames: Vec<(Lsn, Vec<u8>)>,
        /// Where the log goes on after them.
        end: WalPos,
    },
    /// Start a log where the state names none that exists: a new database,
    /// one written by format 1 (whose entries move from LMDB into the log),
    /// or a copy (a snapshot) of another database's state.
    StartLog,
}

/// Entries a replicated log (the cluster's Raft log) delivers to its state
/// machine, applied in one unit together with a record of how far the log
/// has been applied (written in the same LMDB transaction). A command that
/// fails (a duplicate key, a conflicting change set) fails identically
/// wherever it is applied, so its error is part of the result and the
/// record is written anyway; any other failure fails the whole unit.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "cluster"), allow(dead_code))]
pub struct Replicated {
    /// The commands, in log order; `None` for the log's own entries
    /// (blanks, membership), which change no data.
    pub commands: Vec<Option<Command>>,
    /// Key (in the `meta` table) and value of the record.
    pub record: (Vec<u8>, Vec<u8>),
}

/// One unit of work for the commit loop.
#[derive(Debug, Clone)]
pub enum Work {
    /// A logical transaction: its statements and reads, one log entry.
    Command(Command),
    /// A local write.
    Local(Local),
    /// Entries of a replicated log (see [`Replicated`]).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    Replicated(Replicated),
}

impl Work {
    /// Whether the work writes only LMDB (no log entry), so that it becomes
    /// durable with the next checkpoint (consumer positions).
    pub fn durable_by_checkpoint(&self) -> bool {
        matches!(
            self,
            Work::Local(
                Local::RegisterConsumer(_) | Local::AckConsumer(..) | Local::DropConsumer(_)
            )
        )
    }
}

/// What a unit of work produced.
#[derive(Debug, Clone)]
pub enum Output {
    /// The outcome of each statement of a command.
    Statements(Vec<Outcome>),
    /// Replicated entries: per command, its outcomes or the error it failed
    /// with (the record was written either way).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    Replicated(Vec<std::result::Result<Vec<Outcome>, Error>>),
    /// A local write: whether it changed anything (for `DropConsumer`: the
    /// consumer existed), and the newest LSN it applied (0: none).
    Local(bool, Lsn),
}

/// Log frames with their LSNs.
type Frames = Vec<(Lsn, Vec<u8>)>;

/// The log entries a batch adds, collected while its units run and
/// written to the log just before LMDB commits.
struct Appending {
    /// Where the log ended when the batch began.
    end: WalPos,
    /// Frames of the units that succeeded so far.
    frames: Vec<(Lsn, Vec<u8>)>,
    /// Set by a recovery replay: the end to record instead.
    replaced_end: Option<WalPos>,
}

impl Appending {
    fn next_lsn(&self) -> Lsn {
        self.end.next_lsn + self.frames.len() as u64
    }
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
        // A replicated database refuses the application's own writes (it is
        // opened as a replica) and takes only its log's entries.
        Work::Local(_) | Work::Replicated(_) => engine.check_local_writable(),
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

/// Runs one unit in `txn`; returns its output and the frames it adds to
/// the log (a command's entry, or a primary's frames).
fn run_unit(
    engine: &Engine,
    txn: &mut RwTxn<'_>,
    work: &Work,
    log: &Appending,
    progress: Progress<'_>,
) -> Result<(Output, Frames)> {
    let store = &engine.store;
    let mut w = Wtx::new(store, txn);
    match work {
        // Takes the transaction itself: its command runs nested.
        Work::Replicated(r) => run_replicated(engine, txn, r, log, progress),
        Work::Command(command) => {
            let mut ops = Vec::new();
            let mut cx = ApplyContext {
                targets: &engine.targets,
                progress,
            };
            let outcomes = apply_command(&mut w, command, &mut cx, &mut ops)?;
            let frames = if ops.is_empty() {
                Vec::new()
            } else {
                let lsn = log.next_lsn();
                vec![(lsn, encode_frame(lsn, command.time_ms, &ops)?)]
            };
            Ok((Output::Statements(outcomes), frames))
        }
        Work::Local(Local::ApplyFrames(frames)) => {
            let applied = redo::apply_frames(&mut w, frames, log.next_lsn() - 1)?;
            let last = applied.last().map_or(log.next_lsn() - 1, |(l, _)| *l);
            let copied = applied.into_iter().map(|(l, f)| (l, f.to_vec())).collect();
            Ok((Output::Local(true, last), copied))
        }
        Work::Local(Local::Replay { frames, .. }) => {
            for (lsn, frame) in frames {
                redo::redo_frame(&mut w, *lsn, frame)?;
            }
            let last = frames.last().map_or(0, |(l, _)| *l);
            Ok((Output::Local(!frames.is_empty(), last), Vec::new()))
        }
        Work::Local(Local::StartLog) => {
            start_log(engine, &mut w)?;
            Ok((Output::Local(true, 0), Vec::new()))
        }
        Work::Local(local) => run_local(&mut w, local).map(|out| (out, Vec::new())),
    }
}

/// Runs replicated entries: each command in a nested transaction (undone
/// alone when it fails, except that a full map fails the whole unit so that
/// the batch runs again in a larger map), each that logged something with
/// its own change-log entry, then the record.
fn run_replicated(
    engine: &Engine,
    txn: &mut RwTxn<'_>,
    r: &Replicated,
    log: &Appending,
    mut progress: Progress<'_>,
) -> Result<(Output, Frames)> {
    let store = &engine.store;
    let mut frames: Frames = Vec::new();
    let mut results = Vec::with_capacity(r.commands.len());
    for command in &r.commands {
        let Some(command) = command else {
            results.push(Ok(Vec::new()));
            continue;
        };
        let mut child = store.nested(txn)?;
        let mut ops = Vec::new();
        let mut cx = ApplyContext {
            targets: &engine.targets,
            progress: reborrow(&mut progress),
        };
        let applied = apply_command(&mut Wtx::new(store, &mut child), command, &mut cx, &mut ops);
        match applied {
            Ok(outcomes) => {
                child.commit()?;
                if !ops.is_empty() {
                    let lsn = log.next_lsn() + frames.len() as u64;
                    frames.push((lsn, encode_frame(lsn, command.time_ms, &ops)?));
                }
                results.push(Ok(outcomes));
            }
            Err(e) => {
                child.abort();
                if is_map_full(&e) {
                    return Err(e);
                }
                results.push(Err(e));
            }
        }
    }
    let (key, value) = &r.record;
    Wtx::new(store, txn).put(Table::Meta, key, value)?;
    Ok((Output::Replicated(results), frames))
}

fn run_local(w: &mut Wtx<'_, '_>, local: &Local) -> Result<Output> {
    let last = state::last_lsn(w.store(), w.ro())?;
    Ok(match local {
        Local::RegisterConsumer(name) => {
            let new = state::consumer_position(w.store(), w.ro(), name)?.is_none();
            if new {
                state::set_consumer_position(w, name, last)?;
            }
            Output::Local(new, 0)
        }
        Local::AckConsumer(name, lsn) => {
            let current = state::consumer_position(w.store(), w.ro(), name)?
                .ok_or_else(|| Error::InvalidConsumer(format!("consumer '{name}' was dropped")))?;
            if *lsn > last {
                return Err(Error::InvalidConsumer(format!(
                    "cannot acknowledge entry {lsn}: the newest entry is {last}"
                )));
            }
            let moved = *lsn > current;
            if moved {
                state::set_consumer_position(w, name, *lsn)?;
            }
            Output::Local(moved, 0)
        }
        Local::DropConsumer(name) => Output::Local(state::remove_consumer(w, name)?, 0),
        Local::ApplyFrames(_) | Local::Replay { .. } | Local::StartLog => Output::Local(false, 0),
    })
}

/// Starts the log (see [`Local::StartLog`]).
fn start_log(engine: &Engine, w: &mut Wtx<'_, '_>) -> Result<()> {
    let pos = match state::end(w.store(), w.ro())? {
        // A copy of another database's state: its log starts here.
        Some(e) => {
            let pos = engine.wal.start(e.next_lsn, e.epoch + 1)?;
            state::set_first_retained(w, e.next_lsn)?;
            pos
        }
        None => {
            // Format 1 kept the log in LMDB: move it.
            let table = w.store().table(Table::Log);
            let mut old: Vec<(Lsn, Vec<u8>)> = Vec::new();
            for item in table.iter(w.ro())? {
                let (k, f) = item?;
                let lsn = u64::from_be_bytes(k.try_into().map_err(|_| Error::Corrupt {
                    location: "log table".into(),
                    message: format!("key of {} bytes (expected 8)", k.len()),
                    lsn: None,
                })?);
                old.push((lsn, f.to_vec()));
            }
            let first = old.first().map_or(1, |(l, _)| *l);
            let mut pos = engine.wal.start(first, 1)?;
            if !old.is_empty() {
                let refs: Vec<(Lsn, &[u8])> = old.iter().map(|(l, f)| (*l, f.as_slice())).collect();
                pos = engine.wal.append(pos, &refs)?;
                for (lsn, _) in &old {
                    w.delete(Table::Log, &lsn.to_be_bytes())?;
                }
            }
            state::set_first_retained(w, first)?;
            pos
        }
    };
    state::set_end(w, &pos)
}

/// Runs `batch` in one write transaction — each unit in its own nested
/// transaction when there are several, so that a failing unit is undone
/// alone — writes the log entries of the units that succeeded to the log,
/// commits once and publishes the newest LSN. When the map fills, the whole
/// batch is aborted, the map grown and the batch run again (units are data,
/// so running them again gives the same result and the same entries).
/// Returns each unit's output and LSN (0 when it logged nothing), in order.
/// Nothing is durable yet: the caller flushes the log
/// ([`Engine::make_durable`] up to [`newest`]) and acknowledges.
pub fn commit_batch(
    engine: &Engine,
    batch: &[&Work],
    mut progress: Progress<'_>,
) -> Vec<Result<(Output, Lsn)>> {
    let store = &engine.store;
    let all = |e: &Error| batch.iter().map(|_| Err(e.clone())).collect::<Vec<_>>();
    store.grow_if_nearly_full();
    let writing = store.lock_writer();
    loop {
        let (gate, mut txn) = match store.write_as(&writing) {
            Ok(x) => x,
            Err(e) => return all(&e),
        };
        let begun = engine
            .ensure_checkpoint_owner()
            .and_then(|()| state::end(store, &txn));
        let end = match begun {
            Ok(end) => end.unwrap_or(WalPos {
                segment: 0,
                offset: 0,
                next_lsn: 1,
                epoch: 1,
            }),
            Err(e) => {
                txn.abort();
                return all(&e);
            }
        };
        let mut log = Appending {
            end,
            frames: Vec::new(),
            replaced_end: None,
        };
        let mut results: Vec<Result<(Output, Lsn)>> = Vec::with_capacity(batch.len());
        let mut map_full = false;
        for work in batch {
            let r = if batch.len() == 1 {
                // A lone unit needs no nested transaction.
                run_unit(engine, &mut txn, work, &log, reborrow(&mut progress))
            } else {
                store.nested(&mut txn).and_then(|mut child| {
                    match run_unit(engine, &mut child, work, &log, None) {
                        Ok(r) => child.commit().map(|()| r).map_err(Error::from),
                        Err(e) => {
                            child.abort();
                            Err(e)
                        }
                    }
                })
            };
            match r {
                Err(e) if is_map_full(&e) => {
                    map_full = true;
                    break;
                }
                Err(e) if batch.len() == 1 => {
                    txn.abort();
                    return vec![Err(e)];
                }
                Err(e) => results.push(Err(e)),
                Ok((out, frames)) => {
                    let lsn = frames.last().map_or(0, |(l, _)| *l);
                    log.frames.extend(frames);
                    if let Work::Local(Local::Replay { end, .. }) = work {
                        log.replaced_end = Some(*end);
                    }
                    results.push(Ok((out, lsn)));
                }
            }
        }
        if !map_full {
            match finish_log(engine, &mut txn, &log) {
                Err(e) if is_map_full(&e) => map_full = true,
                Err(e) => {
                    txn.abort();
                    return all(&e);
                }
                Ok(()) => {}
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
                    engine.log.signal.publish(newest(&results));
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

/// Writes a batch's frames to the log and records the log's new end (and,
/// every [`state::RETENTION_EVERY`] entries, moves retention forward).
fn finish_log(engine: &Engine, txn: &mut RwTxn<'_>, log: &Appending) -> Result<()> {
    let mut w = Wtx::new(&engine.store, txn);
    if let Some(end) = log.replaced_end {
        return state::set_end(&mut w, &end);
    }
    if log.frames.is_empty() {
        return Ok(());
    }
    let refs: Vec<(Lsn, &[u8])> = log.frames.iter().map(|(l, f)| (*l, f.as_slice())).collect();
    let end = engine.wal.append(log.end, &refs)?;
    state::set_end(&mut w, &end)?;
    let every = state::RETENTION_EVERY;
    if (end.next_lsn - 1) / every != (log.end.next_lsn - 1) / every {
        state::enforce_retention(&mut w, &engine.wal, &engine.log.retention)?;
    }
    Ok(())
}

/// Writes the change-log entry of one logical transaction (nothing for no
/// operations) and records the log's new end; returns its LSN, or 0.
fn append_entry(engine: &Engine, txn: &mut RwTxn<'_>, ops: &[LogOp], time_ms: i64) -> Result<Lsn> {
    if ops.is_empty() {
        return Ok(0);
    }
    let end = state::end(&engine.store, txn)?.ok_or_else(|| Error::Corrupt {
        location: engine.store.path().display().to_string(),
        message: "the database records no log position".into(),
        lsn: None,
    })?;
    let lsn = end.next_lsn;
    let log = Appending {
        end,
        frames: vec![(lsn, encode_frame(lsn, time_ms, ops)?)],
        replaced_end: None,
    };
    finish_log(engine, txn, &log)?;
    Ok(lsn)
}

/// The newest LSN a batch's results carry (logged or applied).
pub fn newest(results: &[Result<(Output, Lsn)>]) -> Lsn {
    results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|(out, lsn)| match out {
            Output::Local(_, applied) => (*applied).max(*lsn),
            Output::Statements(_) | Output::Replicated(_) => *lsn,
        })
        .max()
        .unwrap_or(0)
}

/// Runs one unit of work directly on the calling thread (for DDL with a
/// progress callback, and local writes): commit, publish, acknowledge.
pub fn commit_now(engine: &Engine, work: &Work, progress: Progress<'_>) -> Result<Output> {
    check_allowed(engine, work)?;
    let mark = WriterMark::acquire(engine)?;
    let results = commit_batch(engine, &[work], progress);
    drop(mark);
    engine.make_durable(newest(&results))?;
    let result = results.into_iter().next();
    let (output, lsn) =
        result.unwrap_or_else(|| Err(Error::TransactionClosed("the write did not run".into())))?;
    if work.durable_by_checkpoint() {
        engine.checkpoint_through(engine.store.last_txn_id() as u64)?;
    }
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
    // Held for the transaction's life, across map growth: no other thread
    // of this process commits meanwhile, so only another process can make
    // a rebuild fail.
    writing: Writing,
    _mark: WriterMark,
}

impl<'e> OpenTxn<'e> {
    /// Begins (waits while another thread or process writes).
    pub fn begin(engine: &'e Engine) -> Result<OpenTxn<'e>> {
        engine.check_writable()?;
        let mark = WriterMark::acquire(engine)?;
        let store = &engine.store;
        store.grow_if_nearly_full();
        let writing = store.lock_writer();
        let (gate, txn) = store.write_as(&writing)?;
        engine.ensure_checkpoint_owner()?;
        let start_txn_id = store.last_txn_id();
        Ok(OpenTxn {
            engine,
            txn: Some(txn),
            gate: Some(gate),
            steps: Vec::new(),
            ops: Vec::new(),
            reads: ReadSet::default(),
            start_txn_id,
            writing,
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
            let (gate, mut txn) = store.write_as(&self.writing)?;
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
            let res = match append_entry(engine, &mut txn, &self.ops, time_ms) {
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
        engine.make_durable(lsn)?;
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
