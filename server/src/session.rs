//! Logical sessions and their transactions (`lsid` + `txnNumber`).
//!
//! A session's transaction lives on its own thread (`engine::TxnWorker`).
//! Commands of the transaction may arrive over any connection (drivers pool
//! connections), so the registry is server-wide, keyed by the session id.
//! A repeated `commitTransaction` for a committed transaction succeeds
//! (drivers retry commits); any command error inside a transaction aborts it,
//! as MongoDB does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::engine::{Engine, TxnLimits, TxnWorker};
use crate::errors::{code, CmdResult, CommandError};

enum State {
    Active(Arc<TxnWorker>),
    Committed,
    Aborted(String),
}

struct Entry {
    number: i64,
    state: State,
}

/// The server's sessions that have used transactions.
pub struct Sessions {
    map: Mutex<HashMap<Vec<u8>, Entry>>,
    limits: TxnLimits,
}

fn no_such(n: i64, why: &str) -> CommandError {
    CommandError::new(
        code::NO_SUCH_TRANSACTION,
        format!("transaction {n} is not in progress on this session: {why}"),
    )
    .with_label("TransientTransactionError")
}

impl Sessions {
    /// An empty registry.
    pub fn new(limits: TxnLimits) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            limits,
        }
    }

    fn lock(&self) -> CmdResult<std::sync::MutexGuard<'_, HashMap<Vec<u8>, Entry>>> {
        self.map
            .lock()
            .map_err(|_| CommandError::new(code::INTERNAL_ERROR, "session registry poisoned"))
    }

    /// Open transactions.
    pub fn active(&self) -> usize {
        self.map
            .lock()
            .map(|m| {
                m.values()
                    .filter(|e| matches!(e.state, State::Active(_)))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Starts transaction `n` (waits until the database's writer is free).
    pub fn start(&self, engine: &Engine, lsid: &[u8], n: i64) -> CmdResult<Arc<TxnWorker>> {
        let previous = {
            let mut m = self.lock()?;
            match m.get(lsid) {
                Some(e) if e.number > n => {
                    return Err(CommandError::new(
                        code::TRANSACTION_TOO_OLD,
                        format!(
                            "txnNumber {n} is older than this session's latest ({})",
                            e.number
                        ),
                    ))
                }
                Some(e) if e.number == n => {
                    return Err(CommandError::new(
                        code::BAD_VALUE,
                        format!("transaction {n} was already started on this session"),
                    ))
                }
                _ => {}
            }
            m.remove(lsid)
        };
        if let Some(Entry {
            state: State::Active(w),
            ..
        }) = previous
        {
            w.abort();
        }
        let worker = Arc::new(engine.begin_session_txn(self.limits)?);
        self.lock()?.insert(
            lsid.to_vec(),
            Entry {
                number: n,
                state: State::Active(worker.clone()),
            },
        );
        metrics::gauge!(crate::monitor::names::TRANSACTIONS).set(self.active() as f64);
        Ok(worker)
    }

    /// The open transaction `n` of the session.
    pub fn current(&self, lsid: &[u8], n: i64) -> CmdResult<Arc<TxnWorker>> {
        let mut m = self.lock()?;
        let Some(e) = m.get_mut(lsid) else {
            return Err(no_such(n, "the session has no transaction"));
        };
        if e.number != n {
            return Err(no_such(
                n,
                &format!("the session's transaction is {}", e.number),
            ));
        }
        match &e.state {
            State::Active(w) => match w.ended_reason() {
                Some(reason) => {
                    e.state = State::Aborted(reason.clone());
                    Err(no_such(n, &reason))
                }
                None => Ok(w.clone()),
            },
            State::Committed => Err(no_such(n, "it was committed")),
            State::Aborted(r) => Err(no_such(n, r)),
        }
    }

    /// Commits transaction `n`; a repeated commit of a committed transaction succeeds.
    pub fn commit(&self, lsid: &[u8], n: i64) -> CmdResult<()> {
        let worker = {
            let m = self.lock()?;
            match m.get(lsid) {
                Some(e) if e.number == n => match &e.state {
                    State::Active(w) => w.clone(),
                    State::Committed => return Ok(()),
                    State::Aborted(r) => return Err(no_such(n, r)),
                },
                _ => return Err(no_such(n, "the session has no such transaction")),
            }
        };
        let r = worker.commit();
        if let Some(e) = self.lock()?.get_mut(lsid) {
            if e.number == n {
                e.state = match &r {
                    Ok(()) => State::Committed,
                    Err(err) => State::Aborted(err.message.clone()),
                };
            }
        }
        metrics::gauge!(crate::monitor::names::TRANSACTIONS).set(self.active() as f64);
        r.map_err(|e| e.with_label("UnknownTransactionCommitResult"))
    }

    /// Aborts transaction `n`.
    pub fn abort(&self, lsid: &[u8], n: i64, reason: &str) -> CmdResult<()> {
        let worker =
            {
                let mut m = self.lock()?;
                match m.get_mut(lsid) {
                    Some(e) if e.number == n => {
                        match std::mem::replace(&mut e.state, State::Aborted(reason.to_owned())) {
                            State::Active(w) => w,
                            State::Committed => {
                                e.state = State::Committed;
                                return Err(CommandError::new(
                            code::ILLEGAL_OPERATION,
                            format!("transaction {n} was already committed; it cannot be aborted"),
                        ));
                            }
                            State::Aborted(r) => {
                                e.state = State::Aborted(r);
                                return Err(no_such(n, "it was already aborted"));
                            }
                        }
                    }
                    _ => return Err(no_such(n, "the session has no such transaction")),
                }
            };
        worker.abort();
        metrics::gauge!(crate::monitor::names::TRANSACTIONS).set(self.active() as f64);
        Ok(())
    }

    /// Ends sessions: their open transactions are aborted.
    pub fn end(&self, lsids: &[Vec<u8>]) {
        let removed: Vec<Entry> = match self.map.lock() {
            Ok(mut m) => lsids.iter().filter_map(|l| m.remove(l)).collect(),
            Err(_) => return,
        };
        for e in removed {
            if let State::Active(w) = e.state {
                w.abort();
            }
        }
        metrics::gauge!(crate::monitor::names::TRANSACTIONS).set(self.active() as f64);
    }

    /// Aborts every open transaction (shutdown).
    pub fn abort_all(&self) {
        let all: Vec<Vec<u8>> = self
            .map
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        self.end(&all);
    }
}
