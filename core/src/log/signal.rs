//! Wakes threads waiting for new log entries as soon as a commit of this
//! process lands (commits of other processes are found by polling).

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::Lsn;

/// The newest LSN committed by this process, with a condition variable.
#[derive(Default)]
pub struct CommitSignal {
    last: Mutex<Lsn>,
    cv: Condvar,
}

impl CommitSignal {
    /// Announces that entries up to `lsn` are committed.
    pub fn publish(&self, lsn: Lsn) {
        if lsn == 0 {
            return;
        }
        let mut last = self.last.lock();
        if lsn > *last {
            *last = lsn;
            self.cv.notify_all();
        }
    }

    /// Waits until a commit newer than `after` is announced or `deadline`
    /// passes; returns the newest announced LSN.
    pub fn wait_past(&self, after: Lsn, deadline: Instant) -> Lsn {
        let mut last = self.last.lock();
        while *last <= after {
            if self.cv.wait_until(&mut last, deadline).timed_out() {
                break;
            }
        }
        *last
    }
}

/// How often waiters look for commits made by other processes.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);
