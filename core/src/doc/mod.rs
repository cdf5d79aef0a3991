//! Document model: the binary encoding (BSON), a borrowed view over stored or
//! owned values, MongoDB's cross-type order, field paths, and conversion from
//! and to `serde_json::Value`.

pub mod json;
pub mod order;
pub mod path;
pub mod value;

pub use order::{compare, type_rank, values_equal};
pub use path::FieldPath;
pub use value::{DocRef, Num, ValRef};
