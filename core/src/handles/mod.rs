//! The handles: the public entry points, and everything that sits above the
//! engine's layers — [`Database`] (opening, the catalog, transactions, the
//! change-log methods), collection handles and their find builder,
//! explicit transactions, change streams and durable consumers, and the
//! async facade. Handles turn calls into statements (fixing ids and times),
//! hand them to the write path, and read through `exec`; the layers below
//! never reach back up here.

pub mod aggregate;
#[cfg(feature = "async")]
pub mod aggregate_async;
#[cfg(feature = "async")]
pub mod async_api;
pub mod changes;
pub mod check;
pub mod collection;
pub mod database;
#[cfg(test)]
mod decode_tests;
pub mod find;
// Used by the cluster's state machine (feature "cluster") and its tests.
#[cfg_attr(not(feature = "cluster"), allow(dead_code))]
pub mod replicated;
pub mod stats;
#[cfg(feature = "async")]
pub mod stream;
pub mod testing;
pub mod transaction;
pub mod watch;
