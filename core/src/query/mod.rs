//! The query language: filters, updates, sorts and projections parsed from
//! JSON into typed ASTs (all validation happens at parse time), and their
//! evaluation on documents.

pub mod filter;
pub mod matcher;
pub mod projection;
pub mod sort;
pub mod update;
