//! The write path: the commit loop ([`commit`]), group commit ([`group`]),
//! checkpoints ([`checkpoint`]) and recovery at open ([`recovery`]),
//! durability modes ([`durability`]) and the shared state of an open
//! database ([`engine`]). Handles submit statements as data; this layer runs
//! them through `exec` and the log, and never looks back up at the handles.

pub mod checkpoint;
pub mod commit;
pub mod durability;
pub mod engine;
pub mod group;
pub mod recovery;
#[cfg(test)]
mod tests;

pub use checkpoint::CheckpointPolicy;
pub use durability::Durability;
pub use engine::{CommitWaiter, Engine};
