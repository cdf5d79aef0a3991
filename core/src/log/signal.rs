//! Wakes threads waiting for new log entries as soon as a commit of this
//! process lands (commits of other processes are found by polling).

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::Lsn;

#[derive(Default)]
struct State {
    /// The newest LSN announced.
    last: Lsn,
    /// Threads inside [`CommitSignal::wait_past`] now.
    waiting: usize,
    /// Times a waiter was woken by [`CommitSignal::publish`].
    woken: u64,
    /// Times a waiter's deadline passed first.
    timed_out: u64,
}

/// The newest LSN committed by this process, with a condition variable.
#[derive(Default)]
pub struct CommitSignal {
    state: Mutex<State>,
    cv: Condvar,
}

impl CommitSignal {
    /// Announces that entries up to `lsn` are committed.
    pub fn publish(&self, lsn: Lsn) {
        if lsn == 0 {
            return;
        }
        let mut st = self.state.lock();
        if lsn > st.last {
            st.last = lsn;
            self.cv.notify_all();
        }
    }

    /// Waits until a commit newer than `after` is announced or `deadline`
    /// passes; returns the newest announced LSN.
    pub fn wait_past(&self, after: Lsn, deadline: Instant) -> Lsn {
        let mut st = self.state.lock();
        st.waiting += 1;
        while st.last <= after {
            if self.cv.wait_until(&mut st, deadline).timed_out() {
                st.timed_out += 1;
                break;
            }
            st.woken += 1;
        }
        st.waiting -= 1;
        st.last
    }

    /// Threads waiting now, wake-ups by a publish so far, and waits that
    /// ended at their deadline so far (for tests that must know a waiter is
    /// asleep, and whether the signal or a deadline woke it).
    pub fn stats(&self) -> SignalStats {
        let st = self.state.lock();
        SignalStats {
            waiting: st.waiting,
            woken: st.woken,
            timed_out: st.timed_out,
        }
    }
}

/// What [`CommitSignal::stats`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalStats {
    /// Threads waiting now.
    pub waiting: usize,
    /// Wake-ups by a commit so far.
    pub woken: u64,
    /// Waits that ended at their deadline so far.
    pub timed_out: u64,
}

/// How often waiters look for commits made by other processes.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_publish_wakes_a_sleeping_waiter() {
        let signal = Arc::new(CommitSignal::default());
        let s2 = signal.clone();
        // A deadline no test run reaches: only the publish can end the wait.
        let far = Instant::now() + Duration::from_secs(3_600);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(s2.wait_past(4, far));
        });
        // Publish only once the waiter is asleep.
        while signal.stats().waiting == 0 {
            std::thread::yield_now();
        }
        signal.publish(3); // not past 4: keeps sleeping
        signal.publish(5);
        // A hang guard, not a timing assertion.
        let got = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("hang: the publish did not wake the waiter");
        assert_eq!(got, 5);
        // Woken twice: by 3 (still not past 4) and by 5.
        let st = signal.stats();
        assert_eq!((st.waiting, st.woken, st.timed_out), (0, 2, 0));
        // Nothing newer: a wait returns at its deadline with the current LSN.
        assert_eq!(signal.wait_past(5, Instant::now()), 5);
    }
}
