//! Benchmark suite and stress tester for collection-store.
//!
//! - [`suite`]: workloads W1-W8 of the design brief against collection-store,
//!   SQLite (FULL and NORMAL), PoloDB and raw LMDB in one run, with a
//!   Markdown / JSON / SVG report ([`report`]); its honesty checks are
//!   pure functions in [`checks`].
//! - [`stress`]: concurrent async clients issuing a mix of operations and
//!   cross-collection transactions, then `verify()`.
//!
//! The command-line front end is `src/main.rs`; see the README for commands.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod agg;
pub mod checks;
pub mod data;
pub mod engines;
pub mod latency;
pub mod machine;
pub mod reopen;
pub mod report;
pub mod stress;
pub mod suite;
pub mod workloads;
