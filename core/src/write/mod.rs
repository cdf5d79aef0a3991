//! The write path: durability modes and the group-commit writer that merges
//! concurrent statements into shared LMDB commits.

pub mod durability;
pub mod group;

pub use durability::Durability;
