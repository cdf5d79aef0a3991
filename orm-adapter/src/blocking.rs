//! The blocking API: run any of the ORM's futures to completion on the
//! calling thread with [`Wait::wait`].
//!
//! Outside a tokio runtime the built-in drivers do their engine work on the
//! calling thread, so `em.find_by_id::<User>(&1).wait()` is an ordinary
//! blocking call (no runtime, no thread hop). A driver whose futures need a
//! runtime (network I/O) must be used from async code instead. Do not call
//! `wait` on an async runtime's worker thread.
//!
//! ```
//! use collection_store::{Database, SchemaSync};
//! use collection_store_orm::{Orm, Wait};
//! use collection_store_schemas::{sample, User};
//!
//! # fn main() -> collection_store_orm::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let orm = Orm::embedded(Database::open(dir.path())?).entity::<User>().init(SchemaSync::KeepUnknown).wait()?;
//! let em = orm.em();
//! em.persist(sample::users(1).remove(0))?;
//! em.flush().wait()?;
//! let ann = em.find_by_id::<User>(&1).wait()?.unwrap();
//! ann.write().age += 1;
//! assert_eq!(em.flush().wait()?.updated, 1);
//! # Ok(()) }
//! ```

use std::future::Future;

/// Blocks on a future until it completes ([`pollster`] underneath).
pub trait Wait: Future + Sized {
    /// Runs the future to completion on this thread.
    fn wait(self) -> Self::Output {
        pollster::block_on(self)
    }
}

impl<F: Future> Wait for F {}
