//! Replica acknowledgements on the primary, and the semi-synchronous wait.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::{Lsn, OnTimeout, SemiSync};
use crate::error::{Error, Result};

/// What the primary knows of one connected replica.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub peer: SocketAddr,
    pub acked: Lsn,
    pub sent: Lsn,
    pub bytes_sent: u64,
    pub connected_at: Instant,
    pub snapshots_sent: u64,
}

#[derive(Default)]
struct State {
    sessions: HashMap<u64, Session>,
    next_id: u64,
    /// Semi-sync fell back to asynchronous acknowledgement after a timeout
    /// (`OnTimeout::Degrade`); cleared once K replicas caught up.
    degraded: bool,
    /// The highest LSN a writer waited for (to leave degraded mode).
    highest_waited: Lsn,
}

/// Tracks connected replicas and their acknowledged LSNs.
#[derive(Default)]
pub(crate) struct AckTracker {
    state: Mutex<State>,
    changed: Condvar,
}

impl AckTracker {
    pub fn register(&self, peer: SocketAddr, acked: Lsn) -> u64 {
        let mut s = self.state.lock();
        s.next_id += 1;
        let id = s.next_id;
        s.sessions.insert(
            id,
            Session {
                peer,
                acked,
                sent: acked,
                bytes_sent: 0,
                connected_at: Instant::now(),
                snapshots_sent: 0,
            },
        );
        drop(s);
        self.changed.notify_all();
        id
    }

    pub fn unregister(&self, id: u64) {
        self.state.lock().sessions.remove(&id);
        self.changed.notify_all();
    }

    pub fn ack(&self, id: u64, lsn: Lsn, k: usize) {
        let mut s = self.state.lock();
        if let Some(sess) = s.sessions.get_mut(&id) {
            sess.acked = sess.acked.max(lsn);
        }
        if s.degraded && count_at_least(&s, s.highest_waited) >= k {
            s.degraded = false;
            tracing::info!("semi-synchronous replication: replicas caught up, leaving degraded (asynchronous) mode");
        }
        drop(s);
        self.changed.notify_all();
    }

    pub fn update(&self, id: u64, f: impl FnOnce(&mut Session)) {
        if let Some(sess) = self.state.lock().sessions.get_mut(&id) {
            f(sess);
        }
    }

    pub fn sessions(&self) -> Vec<(u64, Session)> {
        let s = self.state.lock();
        let mut v: Vec<_> = s.sessions.iter().map(|(k, v)| (*k, v.clone())).collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }

    pub fn degraded(&self) -> bool {
        self.state.lock().degraded
    }

    /// Waits until `lsn` is acknowledged by `k` replicas, or `timeout` passes
    /// (returns the count reached, or `None` when the wait was skipped).
    pub fn wait(&self, lsn: Lsn, k: usize, timeout: Duration) -> usize {
        let deadline = super::deadline_after(timeout);
        let mut s = self.state.lock();
        s.highest_waited = s.highest_waited.max(lsn);
        loop {
            let n = count_at_least(&s, lsn);
            if n >= k {
                return n;
            }
            if self.changed.wait_until(&mut s, deadline).timed_out() {
                return count_at_least(&s, lsn);
            }
        }
    }

    /// The semi-synchronous commit waiter.
    pub fn semi_sync_wait(&self, cfg: &SemiSync, lsn: Lsn) -> Result<()> {
        if cfg.on_timeout == OnTimeout::Degrade {
            let mut s = self.state.lock();
            if s.degraded {
                // Asynchronous until the replicas have caught up with this write too.
                s.highest_waited = s.highest_waited.max(lsn);
                return Ok(());
            }
        }
        let n = self.wait(lsn, cfg.replicas, cfg.timeout);
        if n >= cfg.replicas {
            return Ok(());
        }
        match cfg.on_timeout {
            OnTimeout::Fail => Err(Error::NotReplicated {
                lsn,
                confirmed: n,
                required: cfg.replicas,
                timeout_ms: cfg.timeout.as_millis() as u64,
            }),
            OnTimeout::Degrade => {
                let mut s = self.state.lock();
                if !s.degraded {
                    s.degraded = true;
                    tracing::warn!(
                        lsn,
                        confirmed = n,
                        required = cfg.replicas,
                        "semi-synchronous replication timed out; acknowledging writes asynchronously until the replicas catch up"
                    );
                }
                Ok(())
            }
        }
    }
}

fn count_at_least(s: &State, lsn: Lsn) -> usize {
    s.sessions.values().filter(|x| x.acked >= lsn).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn addr() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    #[test]
    fn wait_returns_once_k_acked() {
        let t = Arc::new(AckTracker::default());
        let a = t.register(addr(), 0);
        let b = t.register(addr(), 0);
        let t2 = t.clone();
        let h = std::thread::spawn(move || t2.wait(5, 2, Duration::from_secs(30)));
        t.ack(a, 5, 2);
        t.ack(b, 7, 2);
        assert_eq!(h.join().unwrap(), 2);
    }

    #[test]
    fn huge_timeouts_do_not_overflow() {
        let t = AckTracker::default();
        let a = t.register(addr(), 9);
        assert_eq!(t.wait(9, 1, Duration::MAX), 1);
        t.unregister(a);
    }

    #[test]
    fn fail_and_degrade() {
        let t = AckTracker::default();
        let a = t.register(addr(), 3);
        let fail = SemiSync::new(1).timeout(Duration::from_millis(10));
        t.semi_sync_wait(&fail, 3).unwrap();
        match t.semi_sync_wait(&fail, 4) {
            Err(Error::NotReplicated {
                lsn: 4,
                confirmed: 0,
                required: 1,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        let degrade = fail.on_timeout(OnTimeout::Degrade);
        t.semi_sync_wait(&degrade, 4).unwrap();
        assert!(t.degraded());
        // While degraded, writers do not wait at all.
        t.semi_sync_wait(&degrade, 100).unwrap();
        t.ack(a, 50, 1);
        assert!(t.degraded(), "not caught up with LSN 100 yet");
        t.ack(a, 100, 1);
        assert!(!t.degraded());
        t.unregister(a);
        assert!(t.sessions().is_empty());
    }
}
