//! A serde deserializer from stored document bytes straight into a caller's type.
//!
//! It walks the encoded document once: no intermediate tree, keys and strings
//! handed to the visitor borrowed from the stored bytes (so `&str`, `Cow<str>`
//! and derive-generated field matching allocate nothing), values skipped by
//! their length. It handles the types a JSON document is made of — double,
//! string, document, array, boolean, null, int32, int64 — and visits them
//! exactly as `bson`'s raw deserializer does (same visitor calls, same hints
//! for options, enums and newtypes, not human-readable), so for every value
//! it accepts the result is the one `bson` would give.
//!
//! Anything else — another element type (ObjectId, date, Decimal128, …),
//! `bson`'s private newtypes, bytes that do not parse, or a value the target
//! type refuses — makes it answer [`Declined`], and the caller runs the
//! existing path (`bson`'s deserializer, then JSON for the typed error), so
//! errors and the rarer types behave exactly as before.

use std::fmt;

use serde::de::value::{BorrowedStrDeserializer, StrDeserializer};
use serde::de::{self, DeserializeSeed, Visitor};

use super::scan::{cstr_len, i32_at, value_len};

/// This deserializer does not decide the value; run the general path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declined;

impl fmt::Display for Declined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("declined by the direct deserializer")
    }
}

impl std::error::Error for Declined {}

impl de::Error for Declined {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Declined
    }
}

/// Deserializes the encoded document `bytes` into `T`, or [`Declined`].
pub fn from_slice<'de, T: de::Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, Declined> {
    let doc = document(bytes)?;
    T::deserialize(Val {
        t: DOCUMENT,
        v: doc,
    })
}

const DOUBLE: u8 = 0x01;
const STRING: u8 = 0x02;
const DOCUMENT: u8 = 0x03;
const ARRAY: u8 = 0x04;
const BINARY: u8 = 0x05;
const BOOLEAN: u8 = 0x08;
const NULL: u8 = 0x0A;
const INT32: u8 = 0x10;
const INT64: u8 = 0x12;

/// `v` when it is a well-formed document frame (length header equal to its
/// size, at least 5 bytes, ending in the terminator).
fn document(v: &[u8]) -> Result<&[u8], Declined> {
    let n = i32_at(v, 0).ok_or(Declined)?;
    if n < 5 || usize::try_from(n).ok() != Some(v.len()) || v.last() != Some(&0) {
        return Err(Declined);
    }
    Ok(v)
}

/// The text of a string value (`len i32 | bytes | 0`).
fn string(v: &[u8]) -> Result<&str, Declined> {
    if v.len() < 5 || v.last() != Some(&0) {
        return Err(Declined);
    }
    std::str::from_utf8(&v[4..v.len() - 1]).map_err(|_| Declined)
}

fn fixed<const N: usize>(v: &[u8]) -> Result<[u8; N], Declined> {
    v.try_into().map_err(|_| Declined)
}

/// One encoded value: its element type and exactly its bytes.
#[derive(Clone, Copy)]
struct Val<'de> {
    t: u8,
    v: &'de [u8],
}

/// The elements of an encoded document or array, in order.
struct Elems<'de> {
    b: &'de [u8],
    at: usize,
    value: Option<Val<'de>>,
}

impl<'de> Elems<'de> {
    fn new(v: &'de [u8]) -> Result<Self, Declined> {
        Ok(Elems {
            b: document(v)?,
            at: 4,
            value: None,
        })
    }

    /// The next element's key, keeping its value for [`Elems::take`].
    fn next(&mut self) -> Result<Option<&'de str>, Declined> {
        let b = self.b;
        let end = b.len() - 1;
        if self.at >= end {
            return Ok(None);
        }
        let t = b[self.at];
        let klen = cstr_len(b, self.at + 1).ok_or(Declined)?;
        let key = std::str::from_utf8(&b[self.at + 1..self.at + 1 + klen]).map_err(|_| Declined)?;
        let start = self.at + 1 + klen + 1;
        let len = value_len(t, b, start).ok_or(Declined)?;
        let stop = start
            .checked_add(len)
            .filter(|&s| s <= end)
            .ok_or(Declined)?;
        self.value = Some(Val {
            t,
            v: &b[start..stop],
        });
        self.at = stop;
        Ok(Some(key))
    }

    fn take(&mut self) -> Result<Val<'de>, Declined> {
        self.value.take().ok_or(Declined)
    }
}

impl<'de> de::MapAccess<'de> for Elems<'de> {
    type Error = Declined;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Declined> {
        match self.next()? {
            Some(k) => seed.deserialize(BorrowedStrDeserializer::new(k)).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Declined> {
        seed.deserialize(self.take()?)
    }
}

impl<'de> de::SeqAccess<'de> for Elems<'de> {
    type Error = Declined;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Declined> {
        match self.next()? {
            Some(_) => seed.deserialize(self.take()?).map(Some),
            None => Ok(None),
        }
    }
}

/// An enum given as a document: its first key names the variant, that key's
/// value is the content (further keys are not read, as in `bson`).
struct EnumDoc<'de>(Elems<'de>);

impl<'de> de::EnumAccess<'de> for EnumDoc<'de> {
    type Error = Declined;
    type Variant = Val<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        mut self,
        seed: V,
    ) -> Result<(V::Value, Val<'de>), Declined> {
        let key = self.0.next()?.ok_or(Declined)?;
        let variant = seed.deserialize(BorrowedStrDeserializer::new(key))?;
        Ok((variant, self.0.take()?))
    }
}

impl<'de> de::VariantAccess<'de> for Val<'de> {
    type Error = Declined;

    fn unit_variant(self) -> Result<(), Declined> {
        Err(Declined)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Declined> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Declined> {
        de::Deserializer::deserialize_any(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Declined> {
        de::Deserializer::deserialize_any(self, visitor)
    }
}

impl<'de> de::Deserializer<'de> for Val<'de> {
    type Error = Declined;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self.t {
            DOUBLE => visitor.visit_f64(f64::from_le_bytes(fixed(self.v)?)),
            STRING => visitor.visit_borrowed_str(string(self.v)?),
            DOCUMENT => visitor.visit_map(Elems::new(self.v)?),
            ARRAY => visitor.visit_seq(Elems::new(self.v)?),
            BOOLEAN => match self.v {
                [0] => visitor.visit_bool(false),
                [1] => visitor.visit_bool(true),
                _ => Err(Declined),
            },
            NULL => visitor.visit_unit(),
            INT32 => visitor.visit_i32(i32::from_le_bytes(fixed(self.v)?)),
            INT64 => visitor.visit_i64(i64::from_le_bytes(fixed(self.v)?)),
            _ => Err(Declined),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self.t {
            NULL => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Declined> {
        match self.t {
            STRING => visitor.visit_enum(StrDeserializer::<Declined>::new(string(self.v)?)),
            DOCUMENT => visitor.visit_enum(EnumDoc(Elems::new(self.v)?)),
            _ => Err(Declined),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Declined> {
        // `bson`'s own newtypes (raw documents, UUIDs, lossy or human-readable
        // modes) change how it reads what is inside: leave them to it.
        if name.starts_with("$__") {
            return Err(Declined);
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self.t {
            DOUBLE | STRING | DOCUMENT | ARRAY | BOOLEAN | NULL | INT32 | INT64 => {
                de::Deserializer::deserialize_any(self, de::IgnoredAny)?;
                visitor.visit_unit()
            }
            // Fixed-size values whose length the walk already checked:
            // undefined, ObjectId, date, timestamp, Decimal128, MinKey, MaxKey.
            0x06 | 0x07 | 0x09 | 0x11 | 0x13 | 0x7F | 0xFF => visitor.visit_unit(),
            // Binary other than the old subtype (whose inner length `bson` checks).
            BINARY if self.v.get(4).is_some_and(|&s| s != 0x02) => visitor.visit_unit(),
            _ => Err(Declined),
        }
    }

    fn is_human_readable(&self) -> bool {
        false
    }

    serde::forward_to_deserialize_any! {
        bool char str string bytes byte_buf unit unit_struct identifier seq tuple
        tuple_struct struct map i8 i16 i32 i64 u8 u16 u32 u64 f32 f64
    }
}
