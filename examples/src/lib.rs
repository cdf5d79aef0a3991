//! Runnable examples live in `examples/`; run one with `cargo run --release --example quickstart`.
#[rustfmt::skip]
pub mod readme;
