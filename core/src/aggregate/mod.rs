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
//!   → builder.rs    Aggregate: to_vec, to_vec_as, aggregate_as, iteration, explain.rs
//! ```
//! Values come from `doc/` (stored documents are read in place through
//! `ValRef`, compared with `doc::compare`), `$match` is the query language's
//! `Filter`, `$sort` its `SortSpec`, and group keys use the `keys/` encoding.

mod accumulator;
#[cfg(feature = "async")]
mod asynchronous;
mod builder;
mod explain;
pub(crate) mod expr;
mod parse;
mod plan;
mod run;
mod stage;
mod value;

#[cfg(feature = "async")]
pub use asynchronous::AsyncAggregate;
pub use builder::{Aggregate, AggregateAs, AggregateAsIter, AggregateIter, DEFAULT_MEMORY_LIMIT};
pub use explain::{AggregateExplain, LookupExplain, StageExplain};
