//! W2 with one OS thread per writer (every engine except collection-store's
//! concurrent runs, which use async tasks).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use crate::data;
use crate::engines::{EResult, Engine, WriteOutcome};

/// `writers` threads, each inserting one document per durable transaction
/// through its own [`crate::engines::Writer`] until `duration` has passed.
pub fn thread_inserts(
    engine: &dyn Engine,
    writers: usize,
    duration: Duration,
    next_id: &AtomicI64,
) -> EResult<WriteOutcome> {
    let first = next_id.fetch_add(1 << 32, Ordering::Relaxed);
    let handles = (0..writers)
        .map(|_| engine.writer())
        .collect::<EResult<Vec<_>>>()?;
    let start = Instant::now();
    let deadline = start + duration;
    let outcomes = std::thread::scope(|s| {
        let joins: Vec<_> = handles
            .into_iter()
            .enumerate()
            .map(|(w, mut writer)| {
                s.spawn(move || {
                    let mut out = WriteOutcome::default();
                    let mut seq = 0i64;
                    while Instant::now() < deadline {
                        let doc = data::user(first + ((w as i64) << 24) + seq);
                        seq += 1;
                        let t = Instant::now();
                        match writer.insert(&doc) {
                            Ok(()) => {
                                out.ok += 1;
                                out.latencies.record(t.elapsed());
                            }
                            Err(e) => out.error(&e),
                        }
                    }
                    out.elapsed = start.elapsed();
                    out
                })
            })
            .collect();
        joins.into_iter().map(|j| j.join()).collect::<Vec<_>>()
    });
    let mut total = WriteOutcome::default();
    for o in outcomes {
        match o {
            Ok(o) => total.merge(o),
            Err(_) => return Err(crate::engines::err("a writer thread panicked")),
        }
    }
    Ok(total)
}
