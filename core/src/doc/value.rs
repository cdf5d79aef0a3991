//! A borrowed view over a value that lives either in an encoded (raw BSON)
//! document or in an owned `bson::Bson` tree.
//!
//! The matcher, the comparator and the key encoder are written once against
//! [`ValRef`], so they run on stored bytes without decoding whole documents and
//! on owned trees (during updates) alike.

use bson::raw::{RawArray, RawBsonRef, RawDocument};
use bson::{Bson, Document};

/// A numeric value, normalised for exact comparison.
#[derive(Debug, Clone, Copy)]
pub enum Num {
    /// A 32- or 64-bit integer.
    Int(i64),
    /// An integer outside the `i64` range (stored as an integral Decimal128).
    Big(i128),
    /// A double (and any Decimal128 that is not an integer, approximated).
    Double(f64),
}

/// A borrowed value.
#[derive(Debug, Clone, Copy)]
pub enum ValRef<'a> {
    /// The smallest value of all.
    MinKey,
    /// `null`.
    Null,
    /// The deprecated BSON `undefined`; compares as null.
    Undefined,
    /// Any number.
    Number(Num),
    /// A string.
    String(&'a str),
    /// A BSON symbol; compares as a string.
    Symbol(&'a str),
    /// An embedded document.
    Document(DocRef<'a>),
    /// An array.
    Array(ArrRef<'a>),
    /// Binary data.
    Binary {
        /// The BSON binary subtype.
        subtype: u8,
        /// The bytes.
        bytes: &'a [u8],
    },
    /// An ObjectId.
    ObjectId([u8; 12]),
    /// A boolean.
    Boolean(bool),
    /// Milliseconds since the Unix epoch.
    DateTime(i64),
    /// A BSON timestamp.
    Timestamp {
        /// Seconds.
        time: u32,
        /// Ordinal within the second.
        increment: u32,
    },
    /// A regular expression value.
    Regex {
        /// The pattern.
        pattern: &'a str,
        /// The options.
        options: &'a str,
    },
    /// JavaScript code stored as data (never executed).
    JavaScript(&'a str),
    /// The largest value of all.
    MaxKey,
}

/// A borrowed document.
#[derive(Debug, Clone, Copy)]
pub enum DocRef<'a> {
    /// Encoded bytes.
    Raw(&'a RawDocument),
    /// An owned tree.
    Owned(&'a Document),
}

/// A borrowed array.
#[derive(Debug, Clone, Copy)]
pub enum ArrRef<'a> {
    /// Encoded bytes.
    Raw(&'a RawArray),
    /// An owned vector.
    Owned(&'a [Bson]),
}

/// Decimal128 bits of an integer in the BID layout we write for integers beyond `i64`:
/// sign bit, 14-bit biased exponent 6176 (exponent 0) and a 113-bit coefficient.
const DEC_BIAS: u128 = 6176;

/// Encodes an integer (outside the i64 range) as Decimal128 bytes.
///
/// Only integers with magnitude below 2^113 are representable; callers pass
/// values in the `u64` range (the only ones JSON input produces).
pub fn decimal_from_i128(v: i128) -> bson::Decimal128 {
    let sign: u128 = if v < 0 { 1 << 127 } else { 0 };
    let coeff = v.unsigned_abs();
    let bits = sign | (DEC_BIAS << 113) | coeff;
    bson::Decimal128::from_bytes(bits.to_le_bytes())
}

/// Decodes a Decimal128 written by [`decimal_from_i128`]; `None` for any other decimal.
pub fn decimal_to_i128(d: &bson::Decimal128) -> Option<i128> {
    let bits = u128::from_le_bytes(d.bytes());
    let sign = bits >> 127;
    if (bits >> 125) & 0b11 == 0b11 {
        return None;
    }
    let exp = (bits >> 113) & 0x3fff;
    if exp != DEC_BIAS {
        return None;
    }
    let coeff = bits & ((1u128 << 113) - 1);
    let coeff = i128::try_from(coeff).ok()?;
    Some(if sign == 1 { -coeff } else { coeff })
}

fn decimal_num(d: &bson::Decimal128) -> Num {
    match decimal_to_i128(d) {
        Some(v) => match i64::try_from(v) {
            Ok(i) => Num::Int(i),
            Err(_) => Num::Big(v),
        },
        None => Num::Double(f64::NAN),
    }
}

impl<'a> From<RawBsonRef<'a>> for ValRef<'a> {
    fn from(v: RawBsonRef<'a>) -> Self {
        match v {
            RawBsonRef::Double(f) => ValRef::Number(Num::Double(f)),
            RawBsonRef::String(s) => ValRef::String(s),
            RawBsonRef::Array(a) => ValRef::Array(ArrRef::Raw(a)),
            RawBsonRef::Document(d) => ValRef::Document(DocRef::Raw(d)),
            RawBsonRef::Boolean(b) => ValRef::Boolean(b),
            RawBsonRef::Null => ValRef::Null,
            RawBsonRef::RegularExpression(r) => ValRef::Regex {
                pattern: r.pattern.as_str(),
                options: r.options.as_str(),
            },
            RawBsonRef::JavaScriptCode(s) => ValRef::JavaScript(s),
            RawBsonRef::JavaScriptCodeWithScope(c) => ValRef::JavaScript(c.code),
            RawBsonRef::Int32(i) => ValRef::Number(Num::Int(i as i64)),
            RawBsonRef::Int64(i) => ValRef::Number(Num::Int(i)),
            RawBsonRef::Timestamp(t) => ValRef::Timestamp {
                time: t.time,
                increment: t.increment,
            },
            RawBsonRef::Binary(b) => ValRef::Binary {
                subtype: u8::from(b.subtype),
                bytes: b.bytes,
            },
            RawBsonRef::ObjectId(o) => ValRef::ObjectId(o.bytes()),
            RawBsonRef::DateTime(d) => ValRef::DateTime(d.timestamp_millis()),
            RawBsonRef::Symbol(s) => ValRef::Symbol(s),
            RawBsonRef::Decimal128(d) => ValRef::Number(decimal_num(&d)),
            RawBsonRef::Undefined => ValRef::Undefined,
            RawBsonRef::MaxKey => ValRef::MaxKey,
            RawBsonRef::MinKey => ValRef::MinKey,
            RawBsonRef::DbPointer(_) => ValRef::Null,
        }
    }
}

impl<'a> From<&'a Bson> for ValRef<'a> {
    fn from(v: &'a Bson) -> Self {
        match v {
            Bson::Double(f) => ValRef::Number(Num::Double(*f)),
            Bson::String(s) => ValRef::String(s),
            Bson::Array(a) => ValRef::Array(ArrRef::Owned(a)),
            Bson::Document(d) => ValRef::Document(DocRef::Owned(d)),
            Bson::Boolean(b) => ValRef::Boolean(*b),
            Bson::Null => ValRef::Null,
            Bson::RegularExpression(r) => ValRef::Regex {
                pattern: r.pattern.as_str(),
                options: r.options.as_str(),
            },
            Bson::JavaScriptCode(s) => ValRef::JavaScript(s),
            Bson::JavaScriptCodeWithScope(c) => ValRef::JavaScript(&c.code),
            Bson::Int32(i) => ValRef::Number(Num::Int(*i as i64)),
            Bson::Int64(i) => ValRef::Number(Num::Int(*i)),
            Bson::Timestamp(t) => ValRef::Timestamp {
                time: t.time,
                increment: t.increment,
            },
            Bson::Binary(b) => ValRef::Binary {
                subtype: u8::from(b.subtype),
                bytes: &b.bytes,
            },
            Bson::ObjectId(o) => ValRef::ObjectId(o.bytes()),
            Bson::DateTime(d) => ValRef::DateTime(d.timestamp_millis()),
            Bson::Symbol(s) => ValRef::Symbol(s),
            Bson::Decimal128(d) => ValRef::Number(decimal_num(d)),
            Bson::Undefined => ValRef::Undefined,
            Bson::MaxKey => ValRef::MaxKey,
            Bson::MinKey => ValRef::MinKey,
            Bson::DbPointer(_) => ValRef::Null,
        }
    }
}

impl<'a> DocRef<'a> {
    /// The value of a top-level field, if present.
    pub fn get(&self, key: &str) -> Option<ValRef<'a>> {
        match self {
            DocRef::Raw(d) => d.get(key).ok().flatten().map(ValRef::from),
            DocRef::Owned(d) => d.get(key).map(ValRef::from),
        }
    }

    /// Iterates fields in stored order. Iteration over malformed bytes stops at
    /// the first malformed element (`Database::verify` reports such documents).
    pub fn iter(&self) -> DocIter<'a> {
        match self {
            DocRef::Raw(d) => DocIter::Raw(d.iter_elements()),
            DocRef::Owned(d) => DocIter::Owned(d.iter()),
        }
    }

    /// True when the document has no fields.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// Iterator over a document's fields.
pub enum DocIter<'a> {
    /// Over encoded bytes.
    Raw(bson::raw::RawIter<'a>),
    /// Over an owned tree.
    Owned(bson::document::Iter<'a>),
}

impl<'a> Iterator for DocIter<'a> {
    type Item = (&'a str, ValRef<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            DocIter::Raw(it) => {
                let el = it.next()?.ok()?;
                let v = el.value().ok()?;
                Some((el.key().as_str(), ValRef::from(v)))
            }
            DocIter::Owned(it) => it.next().map(|(k, v)| (k.as_str(), ValRef::from(v))),
        }
    }
}

impl<'a> ArrRef<'a> {
    /// Iterates the elements in order.
    pub fn iter(&self) -> ArrIter<'a> {
        match self {
            ArrRef::Raw(a) => ArrIter::Raw(a.into_iter()),
            ArrRef::Owned(a) => ArrIter::Owned(a.iter()),
        }
    }

    /// The element at `index`.
    pub fn get(&self, index: usize) -> Option<ValRef<'a>> {
        match self {
            ArrRef::Raw(a) => a.get(index).ok().flatten().map(ValRef::from),
            ArrRef::Owned(a) => a.get(index).map(ValRef::from),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            ArrRef::Raw(_) => self.iter().count(),
            ArrRef::Owned(a) => a.len(),
        }
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// Iterator over an array's elements.
pub enum ArrIter<'a> {
    /// Over encoded bytes.
    Raw(bson::raw::RawArrayIter<'a>),
    /// Over an owned vector.
    Owned(std::slice::Iter<'a, Bson>),
}

impl<'a> Iterator for ArrIter<'a> {
    type Item = ValRef<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            ArrIter::Raw(it) => match it.next()? {
                Ok(v) => Some(ValRef::from(v)),
                Err(_) => None,
            },
            ArrIter::Owned(it) => it.next().map(ValRef::from),
        }
    }
}

impl<'a> ValRef<'a> {
    /// Converts to an owned `Bson`.
    pub fn to_bson(self) -> Bson {
        match self {
            ValRef::MinKey => Bson::MinKey,
            ValRef::Null => Bson::Null,
            ValRef::Undefined => Bson::Undefined,
            ValRef::Number(Num::Int(i)) => {
                if let Ok(small) = i32::try_from(i) {
                    Bson::Int32(small)
                } else {
                    Bson::Int64(i)
                }
            }
            ValRef::Number(Num::Big(b)) => Bson::Decimal128(decimal_from_i128(b)),
            ValRef::Number(Num::Double(f)) => Bson::Double(f),
            ValRef::String(s) => Bson::String(s.to_owned()),
            ValRef::Symbol(s) => Bson::Symbol(s.to_owned()),
            ValRef::Document(d) => Bson::Document(d.to_document()),
            ValRef::Array(a) => Bson::Array(a.iter().map(|v| v.to_bson()).collect()),
            ValRef::Binary { subtype, bytes } => Bson::Binary(bson::Binary {
                subtype: bson::spec::BinarySubtype::from(subtype),
                bytes: bytes.to_vec(),
            }),
            ValRef::ObjectId(o) => Bson::ObjectId(bson::oid::ObjectId::from_bytes(o)),
            ValRef::Boolean(b) => Bson::Boolean(b),
            ValRef::DateTime(ms) => Bson::DateTime(bson::DateTime::from_millis(ms)),
            ValRef::Timestamp { time, increment } => {
                Bson::Timestamp(bson::Timestamp { time, increment })
            }
            ValRef::Regex { pattern, options } => match (pattern.try_into(), options.try_into()) {
                (Ok(pattern), Ok(options)) => {
                    Bson::RegularExpression(bson::Regex { pattern, options })
                }
                _ => Bson::Null,
            },
            ValRef::JavaScript(s) => Bson::JavaScriptCode(s.to_owned()),
            ValRef::MaxKey => Bson::MaxKey,
        }
    }

    /// True for `null` and `undefined`.
    pub fn is_nullish(&self) -> bool {
        matches!(self, ValRef::Null | ValRef::Undefined)
    }
}

impl<'a> DocRef<'a> {
    /// Converts to an owned document.
    pub fn to_document(self) -> Document {
        match self {
            DocRef::Owned(d) => d.clone(),
            DocRef::Raw(_) => {
                let mut out = Document::new();
                for (k, v) in self.iter() {
                    out.insert(k.to_owned(), v.to_bson());
                }
                out
            }
        }
    }
}
