//! Order-preserving ("memcomparable") byte encoding of values, used for LMDB
//! keys of the primary key (`_id`) and of secondary indexes, so that LMDB's
//! plain byte order equals the query order of [`compare`](crate::doc::order::compare).
//!
//! # Contract
//!
//! For all values `a`, `b`: `compare(a, b) == enc(a).cmp(&enc(b))` for the
//! ascending encoding, and the reverse for the descending one. Values that
//! compare equal (int `5` and double `5.0`, `-0.0` and `0.0`, every NaN, null
//! and undefined, a string and a symbol with the same text, ...) encode to
//! identical bytes. The encoding is *prefix-free*: no encoding is a proper
//! prefix of another, so encodings concatenated into a compound key sort by
//! (first part, second part, ...), and inverting every byte of one part (a
//! descending part) reverses that part's order only.
//!
//! # Layout
//!
//! Every value starts with a type tag `type_rank × 0x10` (see
//! [`type_rank`]); `0x00` is never a tag and terminates documents and arrays.
//!
//! | rank | tag    | type(s)               | body                                              |
//! |------|--------|-----------------------|---------------------------------------------------|
//! | 1    | `0x10` | MinKey                | none                                              |
//! | 2    | `0x20` | null, undefined, missing | none                                           |
//! | 3    | `0x30` | int32, int64, double, decimal | 8-byte double key + exact tiebreaker (below) |
//! | 4    | `0x40` | string, symbol        | escaped string                                     |
//! | 5    | `0x50` | document              | per field: value tag, escaped name, value body; then `0x00` |
//! | 6    | `0x60` | array                 | per element: tag, body; then `0x00`                |
//! | 7    | `0x70` | binary                | length (varint), subtype byte, raw bytes          |
//! | 8    | `0x80` | ObjectId              | 12 bytes                                           |
//! | 9    | `0x90` | boolean               | `0x00` / `0x01`                                    |
//! | 10   | `0xA0` | date                  | i64 millis, sign bit flipped, big-endian           |
//! | 11   | `0xB0` | timestamp             | time u32 BE, increment u32 BE                      |
//! | 12   | `0xC0` | regex                 | escaped pattern, escaped options                   |
//! | 13   | `0xD0` | JavaScript            | escaped code                                       |
//! | 14   | `0xE0` | MaxKey                | none                                               |
//!
//! An *escaped string* is its UTF-8 bytes with every `0x00` written as
//! `0x00 0xFF`, terminated by `0x00 0x00` (so a string sorts before its
//! extensions). The binary length is one byte `n` (0..=8) followed by the
//! length's `n` significant big-endian bytes.
//!
//! **Numbers.** Let `f` be the `f64` nearest to the exact value (the value
//! itself for doubles; round-to-nearest-even for integers, which is monotonic).
//! The body is `key(f)` as 8 big-endian bytes — the IEEE bits with the sign bit
//! flipped for non-negative numbers and all bits inverted for negative ones,
//! after mapping `-0.0` to `0.0`; every NaN maps to `0`, below `-inf` — followed
//! by the exact difference `d = value − f` (an integer, `0` for doubles and for
//! every integer with `|value| <= 2^53`; `|d| <= 2^74` for `i128`) as an
//! order-preserving signed varint: one byte `0x80` for `d == 0`, `0x80 + n`
//! followed by `n` big-endian bytes of `d` for `d > 0`, `0x80 − n` followed by
//! the `n`-byte complement of `|d|` for `d < 0` (`n` minimal). Rounding is
//! monotonic, so ordering by `(f, d)` is ordering by the exact value.
//! A double or a small integer therefore takes 10 bytes including the tag.
//!
//! The encoder is iterative (an explicit stack), so deeply nested documents
//! cannot overflow the call stack.

use crate::doc::order::type_rank;
use crate::doc::value::{ArrIter, DocIter, Num, ValRef};

/// Terminates documents and arrays; lower than every type tag.
const END: u8 = 0x00;
/// The tag of null, undefined and a missing field.
const TAG_NULL: u8 = 2 << 4;
/// `2^127` as a double (the double nearest to `i128::MAX`).
const TWO_POW_127: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;

/// The type tag of a valid type rank (`1..=14`).
fn tag_of_rank(rank: u8) -> Option<u8> {
    if (1..=14).contains(&rank) {
        Some(rank << 4)
    } else {
        None
    }
}

/// The type tag of a value.
fn tag_of(v: &ValRef<'_>) -> u8 {
    // `type_rank` is in 1..=14, so the tag is in 0x10..=0xE0.
    tag_of_rank(type_rank(v)).unwrap_or(TAG_NULL)
}

/// Appends the order-preserving encoding of `v` to `out`.
///
/// Ascending: for all values `a`, `b`, `compare(a, b)` equals the byte order of
/// their encodings, and equal values encode to identical bytes. Descending
/// (`descending == true`): every byte of the ascending encoding is inverted,
/// which reverses the order. The encoding is prefix-free, so several values
/// (each ascending or descending) can be appended one after another to form a
/// compound key that sorts by its parts in turn.
pub fn encode_value(out: &mut Vec<u8>, v: &ValRef<'_>, descending: bool) {
    let start = out.len();
    encode_ascending(out, v);
    if descending {
        invert(&mut out[start..]);
    }
}

/// Appends the encoding of a missing field, which is exactly the encoding of
/// `null` (MongoDB indexes a missing field as null).
pub fn encode_missing(out: &mut Vec<u8>, descending: bool) {
    out.push(if descending { !TAG_NULL } else { TAG_NULL });
}

/// The inclusive lower bound of the encodings of all values whose
/// [`type_rank`] is `rank`.
///
/// Ascending: every such value `v` satisfies
/// `type_lower_bound(rank, false) <= enc(v) < type_upper_bound(rank, false)`,
/// and encodings of values of other ranks lie outside that range (below it for
/// smaller ranks, above it for larger ones). The bound is the single type tag
/// byte.
///
/// Descending: the same holds for the descending encodings with
/// `descending == true` — `[lower, upper)` contains exactly the descending
/// encodings of that rank — but the ranges appear in reverse rank order
/// (larger ranks sort first). The bound is the inverted tag byte.
///
/// Both bounds are one-byte strings, so they also bracket compound keys whose
/// first part has that rank. For a `rank` outside `1..=14` (no values), lower
/// and upper bound are equal: an empty range.
pub fn type_lower_bound(rank: u8, descending: bool) -> Vec<u8> {
    match tag_of_rank(rank) {
        Some(tag) if descending => vec![!tag],
        Some(tag) => vec![tag],
        None => vec![END],
    }
}

/// The exclusive upper bound of the encodings of all values whose
/// [`type_rank`] is `rank`; see [`type_lower_bound`] for the exact guarantee
/// (ascending and descending). The bound is the one byte following the
/// (inverted, when descending) type tag; it is smaller than every encoding of
/// the next rank in that direction.
pub fn type_upper_bound(rank: u8, descending: bool) -> Vec<u8> {
    match tag_of_rank(rank) {
        // Tags are in 0x10..=0xE0, so neither `tag + 1` nor `!tag + 1` overflows.
        Some(tag) if descending => vec![(!tag).saturating_add(1)],
        Some(tag) => vec![tag.saturating_add(1)],
        None => vec![END],
    }
}

/// The smallest byte string greater than every byte string that starts with
/// `key`: `key` with its trailing `0xFF` bytes removed and its last remaining
/// byte incremented. `None` when there is no such string (`key` is empty or
/// all `0xFF`), i.e. the prefix scan has no upper bound.
///
/// Because value encodings are prefix-free, `prefix_successor(enc(v))` is also
/// the exclusive upper bound of all compound keys whose first part equals `v`
/// (use it as the lower bound for "greater than `v`").
pub fn prefix_successor(key: &[u8]) -> Option<Vec<u8>> {
    let last = key.iter().rposition(|&b| b != 0xFF)?;
    let mut out = key[..=last].to_vec();
    out[last] += 1;
    Some(out)
}

fn invert(bytes: &mut [u8]) {
    for b in bytes {
        *b = !*b;
    }
}

/// An open document or array whose remaining members are still to be written.
enum Frame<'a> {
    Doc(DocIter<'a>),
    Arr(ArrIter<'a>),
}

fn encode_ascending<'a>(out: &mut Vec<u8>, v: &ValRef<'a>) {
    let mut stack: Vec<Frame<'a>> = Vec::new();
    out.push(tag_of(v));
    write_body(out, v, &mut stack);
    while let Some(frame) = stack.last_mut() {
        let next = match frame {
            Frame::Doc(it) => it.next().map(|(k, val)| (Some(k), val)),
            Frame::Arr(it) => it.next().map(|val| (None, val)),
        };
        match next {
            Some((name, val)) => {
                out.push(tag_of(&val));
                if let Some(name) = name {
                    write_str(out, name.as_bytes());
                }
                write_body(out, &val, &mut stack);
            }
            None => {
                out.push(END);
                stack.pop();
            }
        }
    }
}

/// Writes the body of `v` (everything after its tag). A document or array
/// only opens a frame; its members and terminator are written by the caller.
fn write_body<'a>(out: &mut Vec<u8>, v: &ValRef<'a>, stack: &mut Vec<Frame<'a>>) {
    match *v {
        ValRef::MinKey | ValRef::Null | ValRef::Undefined | ValRef::MaxKey => {}
        ValRef::Number(n) => write_num(out, n),
        ValRef::String(s) | ValRef::Symbol(s) | ValRef::JavaScript(s) => {
            write_str(out, s.as_bytes())
        }
        ValRef::Document(d) => stack.push(Frame::Doc(d.iter())),
        ValRef::Array(a) => stack.push(Frame::Arr(a.iter())),
        ValRef::Binary { subtype, bytes } => {
            write_len(out, bytes.len());
            out.push(subtype);
            out.extend_from_slice(bytes);
        }
        ValRef::ObjectId(oid) => out.extend_from_slice(&oid),
        ValRef::Boolean(b) => out.push(u8::from(b)),
        ValRef::DateTime(ms) => out.extend_from_slice(&((ms as u64) ^ (1 << 63)).to_be_bytes()),
        ValRef::Timestamp { time, increment } => {
            out.extend_from_slice(&time.to_be_bytes());
            out.extend_from_slice(&increment.to_be_bytes());
        }
        ValRef::Regex { pattern, options } => {
            write_str(out, pattern.as_bytes());
            write_str(out, options.as_bytes());
        }
    }
}

/// Escaped, terminated string: `0x00` → `0x00 0xFF`, then `0x00 0x00`.
fn write_str(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut parts = bytes.split(|&b| b == 0);
    if let Some(first) = parts.next() {
        out.extend_from_slice(first);
    }
    for part in parts {
        out.extend_from_slice(&[0x00, 0xFF]);
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&[0x00, 0x00]);
}

/// Unsigned length: byte count `n` (0..=8), then `n` big-endian bytes.
fn write_len(out: &mut Vec<u8>, len: usize) {
    let len = u64::try_from(len).unwrap_or(u64::MAX);
    let n = (64 - len.leading_zeros()).div_ceil(8) as usize;
    out.push(n as u8);
    out.extend_from_slice(&len.to_be_bytes()[8 - n..]);
}

fn write_num(out: &mut Vec<u8>, n: Num) {
    let (f, d) = match n {
        Num::Double(f) => (f, 0),
        Num::Int(i) => split_int(i128::from(i)),
        Num::Big(b) => split_int(b),
    };
    out.extend_from_slice(&f64_key(f).to_be_bytes());
    write_signed_varint(out, d);
}

/// The double nearest to `x` and the exact difference `x − f`.
fn split_int(x: i128) -> (f64, i128) {
    // Round to nearest, ties to even: monotonic in `x`.
    let f = x as f64;
    // `f` is an integer in [-2^127, 2^127]. 2^127 does not fit in i128 but is
    // congruent to i128::MIN modulo 2^128; the true difference is tiny
    // (|x − f| <= 2^74), so the wrapping subtraction yields it exactly.
    let fi = if f >= TWO_POW_127 {
        i128::MIN
    } else {
        f as i128
    };
    (f, x.wrapping_sub(fi))
}

/// Order-preserving `u64` image of a double: NaN → 0 (lowest), `-0.0` → `0.0`.
fn f64_key(f: f64) -> u64 {
    if f.is_nan() {
        return 0;
    }
    let f = if f == 0.0 { 0.0 } else { f };
    let bits = f.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// Order-preserving signed varint: `0x80` for zero, `0x80 ± n` then `n` bytes.
fn write_signed_varint(out: &mut Vec<u8>, d: i128) {
    let mag = d.unsigned_abs();
    let n = (128 - mag.leading_zeros()).div_ceil(8) as usize;
    if d >= 0 {
        out.push(0x80 + n as u8);
        out.extend_from_slice(&mag.to_be_bytes()[16 - n..]);
    } else {
        out.push(0x80 - n as u8);
        out.extend_from_slice(&(!mag).to_be_bytes()[16 - n..]);
    }
}

#[cfg(test)]
mod tests;
