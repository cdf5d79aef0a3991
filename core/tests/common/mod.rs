//! Shared by the behaviour suites: the front ends a suite runs against
//! ([`front`]).
#![allow(dead_code)]

pub mod front;
