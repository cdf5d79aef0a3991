//! # collection-store-server
//!
//! collection-store over the MongoDB wire protocol, so MongoDB drivers and
//! shells work against it. The binary `collection-store-server` is a thin
//! wrapper around [`server::start`]; every shared piece lives in this library
//! so that other binaries (the command-line client) can sit beside it.
//!
//! Request path: `connection` reads a message → `wire` decodes it →
//! `commands` authenticates, maps session transactions and dispatches →
//! a command module calls `engine` (the only module that talks to
//! collection-store) → the reply goes back through `wire`.

#![warn(missing_docs)]

pub mod auth;
pub mod commands;
pub mod config;
pub mod connection;
pub mod count_pipeline;
pub mod cursor;
pub mod engine;
pub mod errors;
pub mod monitor;
pub mod server;
pub mod session;
pub mod tls;
pub mod wire;

pub use config::{Args, Config};
pub use server::{start, ServerHandle};
