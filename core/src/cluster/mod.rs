//! A collection-store database replicated by Raft (feature `cluster`), on
//! openraft 0.9 with its v2 storage API.
//!
//! This is the storage half of a cluster member: the Raft log and vote
//! ([`log_store`]: an LMDB environment of its own, committed with a flush
//! before openraft is told) and the state machine ([`state_machine`]: the
//! member's database, written only through the commit loop's replicated
//! entry point, which records the last applied log id and the membership in
//! the transaction that applies the entries). Snapshots are compacting
//! copies of that database, installed by switching directory generations as
//! replicas do. The transport, the node and its binary are not built yet.

pub mod log_store;
pub mod state_machine;
#[cfg(test)]
mod tests;
pub mod types;

pub use log_store::LogStore;
pub use state_machine::StateMachine;
pub use types::{AppliedOutcome, NodeId, Request, Response, TypeConfig};
