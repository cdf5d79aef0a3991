//! The aggregation pipeline: `collection.aggregate(json!([...]))`.
//!
//! Data path (one file or folder per step):
//! ```text
//! JSON pipeline
//!   → parse.rs      stages and expressions → typed AST (expr/, accumulator.rs); all validation here
//!   → plan.rs       leading $match/$sort/$skip/$limit → the engine's planner (plan/) and
//!                   executor (exec/read.rs): indexes, index-provided sorts, early stop
//!   → run.rs        builds the stage chain, lets the source push documents through it
//!   → stage/        push-based operators: matching, shape ($project/$addFields/$unset/
//!                   $replaceRoot), unwind, lookup, limit ($skip/$limit/$count) stream;
//!                   group ($group/$bucket), sort, facet block under a memory budget
//!   → explain.rs    what a run reports; the public builder (`Aggregate`: to_vec, to_vec_as,
//!                   aggregate_as, iteration) is a handle, in handles/aggregate.rs
//! ```
//! Values come from `doc/` (stored documents are read in place through
//! `ValRef`, compared with `doc::compare`), `$match` is the query language's
//! `Filter`, `$sort` its `SortSpec`, and group keys use the `keys/` encoding.

mod accumulator;
mod explain;
pub(crate) mod expr;
mod parse;
mod plan;
mod run;
mod stage;
mod value;

pub use explain::{AggregateExplain, LookupExplain, StageExplain};
pub(crate) use parse::Pipeline;
pub(crate) use run::{run_on, Report, RunOn};
pub(crate) use stage::{Flow, Row};

/// The memory each blocking stage (`$group`, `$sort` without an index,
/// `$bucket`, `$facet`, the source's in-memory sort) may hold by default:
/// 100 MiB, as MongoDB's per-stage limit.
pub const DEFAULT_MEMORY_LIMIT: usize = 100 * 1024 * 1024;
