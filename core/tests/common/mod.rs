//! Shared by the behaviour suites: the front ends a suite runs against
//! ([`front`]) and the independent reference model of queries and updates
//! ([`reference`]).
#![allow(dead_code)]

pub mod front;
pub mod reference;
