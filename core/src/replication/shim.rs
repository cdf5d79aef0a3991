//! TEMPORARY: stand-ins for the log API until it lands.
#![allow(dead_code, missing_docs)]
use std::sync::Arc;
use std::time::Duration;

use super::Lsn;
use crate::{Database, DatabaseOptions, Error, Result};

fn nope<T>() -> Result<T> {
    Err(Error::Replication("log API not available yet".into()))
}

pub trait LogShim {
    fn last_lsn(&self) -> Result<Lsn> {
        nope()
    }
    fn read_log_frames(&self, _after: Lsn, _max: usize) -> Result<Vec<(Lsn, Vec<u8>)>> {
        nope()
    }
    fn wait_for_commit(&self, _after: Lsn, _t: Duration) -> Result<Lsn> {
        nope()
    }
    fn apply_log_frames(&self, _f: &[(Lsn, Vec<u8>)]) -> Result<Lsn> {
        nope()
    }
    fn snapshot_to(&self, _f: &mut std::fs::File) -> Result<Lsn> {
        nope()
    }
    fn set_commit_waiter(&self, _w: Option<Arc<dyn Fn(Lsn) -> Result<()> + Send + Sync>>) {}
}
impl LogShim for Database {}
pub trait OptShim {
    fn replica(self, _r: bool) -> Self;
}
impl OptShim for DatabaseOptions {
    fn replica(self, _r: bool) -> Self {
        self
    }
}
pub fn is_truncated(_e: &Error) -> bool {
    false
}
