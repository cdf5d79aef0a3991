//! The cluster's openraft type configuration and what its log carries.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::exec::statement::{Command, Outcome};

/// A cluster member's id.
pub type NodeId = u64;

/// What a Raft log entry carries: one command (a logical transaction) whose
/// ids and times the member that accepted it has already fixed, so applying
/// it gives the same result on every member.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// The command.
    pub command: Command,
}

/// What one statement of an applied command did, as it travels back to
/// the member that accepted the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppliedOutcome {
    /// Documents inserted.
    Inserted(u64),
    /// An update: documents matched, modified, and the upserted key.
    Updated {
        /// Documents that matched.
        matched: u64,
        /// Documents changed.
        modified: u64,
        /// The key an upsert inserted under.
        upserted: Option<serde_json::Value>,
    },
    /// Documents deleted.
    Deleted(u64),
    /// A collection or index was created (false: it existed).
    Created(bool),
    /// A collection was dropped (false: it did not exist).
    Dropped(bool),
    /// Nothing to report.
    Done,
}

impl From<Outcome> for AppliedOutcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Inserted(n) => AppliedOutcome::Inserted(n),
            Outcome::Updated(r) => AppliedOutcome::Updated {
                matched: r.matched_count,
                modified: r.modified_count,
                upserted: r.upserted_id,
            },
            Outcome::Deleted(n) => AppliedOutcome::Deleted(n),
            Outcome::Created(b) => AppliedOutcome::Created(b),
            Outcome::Dropped(b) => AppliedOutcome::Dropped(b),
            Outcome::Done => AppliedOutcome::Done,
        }
    }
}

/// The state machine's answer for one log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The command was applied (an entry of Raft's own: no statements).
    Applied(Vec<AppliedOutcome>),
    /// The command failed, identically on every member, and changed
    /// nothing: the error's message.
    Failed(String),
}

openraft::declare_raft_types!(
    /// The openraft type configuration of a collection-store cluster.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);
