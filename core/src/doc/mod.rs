//! Document model: the binary encoding (BSON), a borrowed view over stored or
//! owned values, MongoDB's cross-type order, field paths, conversion from
//! and to `serde_json::Value`, and a direct serde deserializer (`de`).

pub mod de;
pub mod json;
pub mod order;
pub mod path;
mod scan;
pub mod value;

pub use order::{compare, type_rank, values_equal};
pub use path::FieldPath;
pub use value::{ArrRef, DocRef, Num, ValRef};
