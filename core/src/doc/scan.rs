//! Field lookup on encoded documents without decoding the fields it passes.
//!
//! `bson`'s `RawDocument::get` parses every element before the one asked for
//! (validating each key as UTF-8 and building its value); this walk compares
//! key bytes with the name asked for and skips values by their length, so a
//! lookup costs a few byte comparisons per field. The matched value is built
//! here for the common types (with the same checks `bson` makes: UTF-8 for
//! strings, length and terminator for documents) and by `bson` for the rest.
//! Bytes that do not parse give [`Scan::Fallback`], and the caller asks
//! `bson`, which reports them as it always did. (Keys passed over are not
//! checked for UTF-8; stored documents are validated when written, and
//! `Database::verify` reports damaged ones.)

use bson::raw::RawDocument;

use super::value::{DocRef, Num, ValRef};

/// What the walk found.
pub(crate) enum Scan<'a> {
    /// The field's value.
    Found(ValRef<'a>),
    /// No such field.
    Absent,
    /// The field exists with a type built by `bson`, or the bytes did not parse.
    Fallback,
}

pub(super) fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub(super) fn cstr_len(b: &[u8], at: usize) -> Option<usize> {
    b.get(at..)?.iter().position(|&c| c == 0)
}

/// Length of the value of element type `t` starting at `at`.
pub(super) fn value_len(t: u8, b: &[u8], at: usize) -> Option<usize> {
    let prefixed = |extra: usize| -> Option<usize> {
        let n = usize::try_from(i32_at(b, at)?).ok()?;
        Some(4 + extra + n)
    };
    Some(match t {
        0x01 | 0x09 | 0x11 | 0x12 => 8,
        0x02 | 0x0D | 0x0E => prefixed(0)?,
        0x03 | 0x04 | 0x0F => usize::try_from(i32_at(b, at)?).ok()?,
        0x05 => prefixed(1)?,
        0x06 | 0x0A | 0x7F | 0xFF => 0,
        0x07 => 12,
        0x08 => 1,
        0x0B => {
            let p = cstr_len(b, at)?;
            p + 1 + cstr_len(b, at + p + 1)? + 1
        }
        0x0C => prefixed(12)?,
        0x10 => 4,
        0x13 => 16,
        _ => return None,
    })
}

fn value<'a>(t: u8, v: &'a [u8]) -> Option<ValRef<'a>> {
    Some(match t {
        0x01 => ValRef::Number(Num::Double(f64::from_le_bytes(v.try_into().ok()?))),
        0x02 => {
            let s = v.get(4..v.len().checked_sub(1)?)?;
            if v.last() != Some(&0) {
                return None;
            }
            ValRef::String(std::str::from_utf8(s).ok()?)
        }
        0x03 => ValRef::Document(DocRef::Raw(RawDocument::from_bytes(v).ok()?)),
        0x07 => ValRef::ObjectId(v.try_into().ok()?),
        0x08 => match v {
            [0] => ValRef::Boolean(false),
            [1] => ValRef::Boolean(true),
            _ => return None,
        },
        0x09 => ValRef::DateTime(i64::from_le_bytes(v.try_into().ok()?)),
        0x0A => ValRef::Null,
        0x10 => ValRef::Number(Num::Int(i64::from(i32::from_le_bytes(v.try_into().ok()?)))),
        0x12 => ValRef::Number(Num::Int(i64::from_le_bytes(v.try_into().ok()?))),
        _ => return None,
    })
}

/// Looks `key` up among the top-level fields of `d`.
pub(crate) fn get<'a>(d: &'a RawDocument, key: &str) -> Scan<'a> {
    let b = d.as_bytes();
    let Some(end) = b.len().checked_sub(1) else {
        return Scan::Fallback;
    };
    let k = key.as_bytes();
    let mut i = 4;
    while i < end {
        let t = b[i];
        let Some(klen) = cstr_len(b, i + 1) else {
            return Scan::Fallback;
        };
        let vstart = i + 1 + klen + 1;
        let Some(vlen) = value_len(t, b, vstart) else {
            return Scan::Fallback;
        };
        let vend = vstart + vlen;
        if vend > end {
            return Scan::Fallback;
        }
        if &b[i + 1..i + 1 + klen] == k {
            return match value(t, &b[vstart..vend]) {
                Some(v) => Scan::Found(v),
                None => Scan::Fallback,
            };
        }
        i = vend;
    }
    Scan::Absent
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::compare;
    use bson::{doc, Bson};

    #[test]
    fn agrees_with_bson_on_every_type_and_on_damage() {
        let d = doc! {
            "d": 1.5, "s": "héllo", "o": {"x": 1}, "a": [1, 2], "b": Bson::Binary(bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2] }),
            "u": Bson::Undefined, "id": bson::oid::ObjectId::from_bytes([7; 12]), "t": true, "f": false,
            "dt": bson::DateTime::from_millis(-5), "n": Bson::Null, "re": Bson::RegularExpression(bson::Regex { pattern: "a.b".try_into().unwrap(), options: "i".try_into().unwrap() }),
            "js": Bson::JavaScriptCode("x".into()), "i": 7, "ts": Bson::Timestamp(bson::Timestamp { time: 1, increment: 2 }),
            "l": 1i64 << 40, "min": Bson::MinKey, "max": Bson::MaxKey, "": "empty key",
        };
        let bytes = d.to_vec().unwrap();
        let raw = RawDocument::from_bytes(&bytes).unwrap();
        for key in d.keys().map(String::as_str).chain(["missing", "d2", "x"]) {
            let want = raw.get(key).unwrap().map(ValRef::from);
            let got = match get(raw, key) {
                Scan::Found(v) => Some(v),
                Scan::Absent => None,
                Scan::Fallback => raw.get(key).unwrap().map(ValRef::from),
            };
            match (want, got) {
                (None, None) => {}
                (Some(w), Some(g)) => assert!(compare(&w, &g).is_eq(), "{key}"),
                (w, g) => panic!("{key}: bson {w:?}, scan {g:?}"),
            }
        }
        // Truncated documents (length header and terminator fixed up) never
        // panic, and a field that is present is never mis-read.
        for cut in 5..bytes.len() {
            let mut b = bytes[..cut].to_vec();
            b.push(0);
            let n = b.len() as i32;
            b[..4].copy_from_slice(&n.to_le_bytes());
            let r = RawDocument::from_bytes(&b).unwrap();
            for key in ["d", "s", "l", "missing"] {
                if let Scan::Found(v) = get(r, key) {
                    let full = raw.get(key).unwrap().map(ValRef::from).unwrap();
                    assert!(compare(&v, &full).is_eq(), "{key} at cut {cut}");
                }
            }
        }
        let mut lying = bytes.clone();
        lying[4] = 0xEE; // the first element's type is unknown
        let r = RawDocument::from_bytes(&lying).unwrap();
        assert!(matches!(get(r, "s"), Scan::Fallback));
    }
}
