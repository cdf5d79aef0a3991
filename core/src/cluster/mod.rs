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
//! replicas do.
//!
//! The member itself ([`node`]) runs openraft over those stores with two
//! TCP ports: the peer port ([`network`] dials it; Raft's RPCs and writes a
//! follower forwards to the leader) and the client port ([`client`] dials
//! it). Both authenticate with the replication handshake under labels of
//! their own ([`wire`]); [`config`] reads a member's environment for the
//! `collection-store-node` binary.

pub mod client;
pub mod config;
pub mod log_store;
pub mod network;
pub mod node;
pub mod state_machine;
#[cfg(test)]
mod tests;
pub mod types;
pub mod wire;

pub use client::NodeClient;
pub use log_store::LogStore;
pub use node::{NodeConfig, RunningNode};
/// The openraft crate this module is built on (its request and vote types).
pub use openraft;
pub use state_machine::StateMachine;
pub use types::{AppliedOutcome, NodeId, Request, Response, TypeConfig};
pub use wire::{ClientRequest, ClientResponse, Status};
