//! The direct deserializer (`doc::de`) against the general path it stands in
//! for (`bson`'s deserializer, then JSON for the typed error): on random
//! documents and target types, every result — value or `Error::Decode` with
//! its field path, kind and message — is the same.

// The targets' fields are compared through `Debug`, which dead-code analysis
// does not count as a read.
#![allow(dead_code)]

use std::borrow::Cow;
use std::collections::BTreeMap;

use bson::{Bson, Document};
use proptest::prelude::*;
use serde::Deserialize;

use super::find::{decode_as, decode_general};
use crate::doc::de::{from_slice, Declined};

#[derive(Debug, Deserialize)]
struct Flat {
    a: i32,
    b: String,
    c: f64,
    d: bool,
    e: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct Inner {
    a: i64,
    b: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Nested {
    a: u32,
    b: Vec<String>,
    c: Inner,
    d: Option<Inner>,
}

#[derive(Debug, Deserialize)]
enum E {
    A,
    B(i32),
    C { a: String },
    D(i32, bool),
}

#[derive(Debug, Deserialize)]
struct WithEnum {
    a: E,
    b: Vec<E>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Strict {
    #[serde(rename = "_id")]
    id: Option<i64>,
    a: u8,
    b: Option<f32>,
    c: Option<i16>,
    d: Option<char>,
    e: Option<u64>,
    x: Option<()>,
}

#[derive(Debug, Deserialize)]
struct Defaults {
    #[serde(default)]
    a: Vec<i16>,
    #[serde(default)]
    b: String,
    c: Option<char>,
    d: Option<(i32, String)>,
}

#[derive(Debug, Deserialize)]
struct Flattened {
    a: i32,
    #[serde(flatten)]
    rest: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct NewT(u64);

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Untagged {
    I(i64),
    S(String),
    L(Vec<Untagged>),
}

#[derive(Debug, Deserialize)]
struct Wrapped {
    a: NewT,
    b: Option<Untagged>,
    c: Option<Vec<u8>>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "b")]
enum Tagged {
    A { a: i32 },
    B { c: f64 },
}

#[derive(Debug, Deserialize)]
struct Borrowing<'a> {
    #[serde(borrow)]
    b: Cow<'a, str>,
    a: Option<i64>,
}

/// Decodes `bytes` into `T` both ways and requires the same outcome; returns
/// whether the direct deserializer decided it.
fn agree<T: serde::de::DeserializeOwned + std::fmt::Debug>(raw: &bson::RawDocument) -> bool {
    let direct: Result<T, Declined> = from_slice(raw.as_bytes());
    let general = decode_general::<T>(raw, "c", "_id");
    if let Ok(v) = &direct {
        let bson_alone: bson::error::Result<T> = bson::deserialize_from_slice(raw.as_bytes());
        assert_eq!(
            format!("{v:?}"),
            format!(
                "{:?}",
                bson_alone.expect("bson refused what the direct path accepted")
            ),
            "{raw:?}"
        );
    }
    let used = decode_as::<T>(raw, None, "c", "_id");
    assert_eq!(format!("{used:?}"), format!("{general:?}"), "{raw:?}");
    direct.is_ok()
}

fn all_targets(raw: &bson::RawDocument) -> usize {
    let mut decided = 0;
    decided += agree::<Flat>(raw) as usize;
    decided += agree::<Nested>(raw) as usize;
    decided += agree::<WithEnum>(raw) as usize;
    decided += agree::<Strict>(raw) as usize;
    decided += agree::<Defaults>(raw) as usize;
    decided += agree::<Flattened>(raw) as usize;
    decided += agree::<Wrapped>(raw) as usize;
    decided += agree::<Tagged>(raw) as usize;
    decided += agree::<serde_json::Value>(raw) as usize;
    decided += agree::<BTreeMap<String, Bson>>(raw) as usize;
    decided += agree::<Document>(raw) as usize;
    decided += agree::<Vec<i32>>(raw) as usize;
    // A borrowing type decodes through the direct path only (the typed API
    // asks for owned types); it must agree with bson's own result.
    if let Ok(v) = from_slice::<Borrowing<'_>>(raw.as_bytes()) {
        let b: Borrowing<'_> = bson::deserialize_from_slice(raw.as_bytes()).unwrap();
        assert_eq!(format!("{v:?}"), format!("{b:?}"));
        assert!(matches!(v.b, Cow::Borrowed(_)), "strings are borrowed");
    }
    decided
}

const KEYS: &[&str] = &["_id", "a", "b", "c", "d", "e", "x", "A", "B", "C", "D"];

fn leaf() -> impl Strategy<Value = Bson> {
    prop_oneof![
        (-3i32..300).prop_map(Bson::Int32),
        any::<i32>().prop_map(Bson::Int32),
        any::<i64>().prop_map(Bson::Int64),
        (-2i64..70_000).prop_map(Bson::Int64),
        any::<f64>().prop_map(Bson::Double),
        (-5i32..5).prop_map(|i| Bson::Double(f64::from(i) / 2.0)),
        prop::sample::select(vec!["", "A", "B", "C", "x", "é", "héllo", "12"])
            .prop_map(|s| Bson::String(s.into())),
        ".{0,6}".prop_map(Bson::String),
        any::<bool>().prop_map(Bson::Boolean),
        Just(Bson::Null),
        Just(Bson::Undefined),
        Just(Bson::MinKey),
        Just(Bson::MaxKey),
        any::<[u8; 12]>().prop_map(|b| Bson::ObjectId(bson::oid::ObjectId::from_bytes(b))),
        any::<i64>().prop_map(|t| Bson::DateTime(bson::DateTime::from_millis(t))),
        (u64::MAX / 2..u64::MAX)
            .prop_map(|v| Bson::Decimal128(crate::doc::value::decimal_from_i128(i128::from(v)))),
        prop::collection::vec(any::<u8>(), 0..4).prop_map(|bytes| Bson::Binary(bson::Binary {
            subtype: bson::spec::BinarySubtype::Generic,
            bytes
        })),
        (any::<u32>(), any::<u32>())
            .prop_map(|(time, increment)| Bson::Timestamp(bson::Timestamp { time, increment })),
        Just(Bson::Symbol("s".into())),
    ]
}

fn value() -> impl Strategy<Value = Bson> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Bson::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..4).prop_map(|kv| {
                Bson::Document(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

fn document() -> impl Strategy<Value = Document> {
    prop::collection::vec((prop::sample::select(KEYS), value()), 0..7)
        .prop_map(|kv| kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn direct_deserializer_agrees_with_the_general_path(doc in document()) {
        let bytes = doc.to_vec().unwrap();
        let raw = bson::RawDocument::from_bytes(&bytes).unwrap();
        all_targets(raw);
    }

    /// Documents shaped like the targets, so that many decode (the random
    /// ones mostly exercise mismatches).
    #[test]
    fn agrees_on_fitting_documents(
        a in prop_oneof![(0i32..300).prop_map(Bson::Int32), Just(Bson::String("A".into())),
                          Just(Bson::Document(bson::doc! {"B": 3})),
                          Just(Bson::Document(bson::doc! {"C": {"a": "x"}})),
                          Just(Bson::Document(bson::doc! {"D": [1, true]}))],
        b in prop_oneof![Just(Bson::String("héllo".into())), Just(Bson::String("A".into())),
                          Just(Bson::Array(vec!["x".into(), "y".into()])),
                          Just(Bson::Array(vec!["A".into(), Bson::Document(bson::doc! {"B": 1})]))],
        c in prop_oneof![any::<f64>().prop_map(Bson::Double), Just(Bson::Document(bson::doc! {"a": 5i64, "b": "q"})),
                          Just(Bson::Int64(7))],
        d in prop_oneof![any::<bool>().prop_map(Bson::Boolean), Just(Bson::Null),
                          Just(Bson::Document(bson::doc! {"a": 1})), Just(Bson::String("z".into()))],
        e in prop::option::of(prop_oneof![any::<i64>().prop_map(Bson::Int64), Just(Bson::Null), Just(Bson::Int32(-1))]),
        extra in prop::option::of(value()),
    ) {
        let mut doc = bson::doc! {"_id": 1, "a": a, "b": b, "c": c, "d": d};
        if let Some(e) = e {
            doc.insert("e", e);
        }
        if let Some(x) = extra {
            doc.insert("x", x);
        }
        let bytes = doc.to_vec().unwrap();
        let raw = bson::RawDocument::from_bytes(&bytes).unwrap();
        all_targets(raw);
    }
}

#[derive(Debug, Deserialize, PartialEq)]
struct User {
    #[serde(rename = "_id")]
    id: i64,
    name: String,
    age: i32,
    tags: Vec<String>,
    score: f64,
}

#[test]
fn the_direct_path_decides_plain_documents_and_declines_the_rest() {
    let raw = bson::rawdoc! {"_id": 7, "name": "Ann", "age": 31, "tags": ["a", "b"], "score": 2.5,
    "extra": {"oid": bson::oid::ObjectId::from_bytes([1; 12]), "n": null}};
    let want = User {
        id: 7,
        name: "Ann".into(),
        age: 31,
        tags: vec!["a".into(), "b".into()],
        score: 2.5,
    };
    assert_eq!(from_slice::<User>(raw.as_bytes()), Ok(want));
    // Another element type in a field the target reads: declined, and the
    // general path decides (here: an error naming the field).
    let raw = bson::rawdoc! {"_id": 7, "name": bson::DateTime::from_millis(0), "age": 1, "tags": [], "score": 1.0};
    assert_eq!(from_slice::<User>(raw.as_bytes()).err(), Some(Declined));
    match decode_as::<User>(&raw, None, "users", "_id") {
        Err(crate::Error::Decode {
            path, found, id, ..
        }) => {
            assert_eq!(
                (path.as_str(), found.as_str(), id.as_str()),
                ("name", "object", "7")
            )
        }
        other => panic!("{other:?}"),
    }
    // A mismatch: declined, and the typed error is the general path's.
    let raw = bson::rawdoc! {"_id": 8, "name": "Bob", "age": "old", "tags": [], "score": 1.0};
    assert_eq!(from_slice::<User>(raw.as_bytes()).err(), Some(Declined));
    match decode_as::<User>(&raw, None, "users", "_id") {
        Err(crate::Error::Decode { path, found, .. }) => {
            assert_eq!((path.as_str(), found.as_str()), ("age", "string"))
        }
        other => panic!("{other:?}"),
    }
    // Damaged bytes are declined, never a panic.
    let good = bson::rawdoc! {"_id": 7, "name": "Ann", "age": 31, "tags": ["a"], "score": 2.5};
    let bytes = good.as_bytes();
    for cut in 0..bytes.len() - 1 {
        let mut b = bytes[..cut].to_vec();
        if b.len() >= 4 {
            let n = b.len() as i32 + 1;
            b[..4].copy_from_slice(&n.to_le_bytes());
        }
        b.push(0);
        assert!(from_slice::<User>(&b).is_err(), "cut {cut}");
    }
    for i in 4..bytes.len() - 1 {
        let mut b = bytes.to_vec();
        b[i] ^= 0xFF;
        let _ = from_slice::<User>(&b);
        let _ = from_slice::<serde_json::Value>(&b);
    }
}
