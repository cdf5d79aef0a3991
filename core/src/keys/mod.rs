//! Order-preserving key encoding (to be filled).
