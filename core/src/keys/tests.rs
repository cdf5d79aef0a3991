use std::cmp::Ordering;

use bson::raw::{RawBsonRef, RawDocument, RawDocumentBuf};
use bson::spec::BinarySubtype;
use bson::{doc, Bson, Document};
use proptest::prelude::*;

use super::*;
use crate::doc::order::{compare, compare_num};
use crate::doc::value::decimal_from_i128;

// ---------------------------------------------------------------- helpers

fn enc(v: &ValRef<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_value(&mut out, v, false);
    out
}

fn enc_dir(v: &ValRef<'_>, descending: bool) -> Vec<u8> {
    let mut out = Vec::new();
    encode_value(&mut out, v, descending);
    out
}

fn eb(b: &Bson) -> Vec<u8> {
    enc(&ValRef::from(b))
}

fn num(n: Num) -> Vec<u8> {
    enc(&ValRef::Number(n))
}

/// Asserts that the values are strictly increasing in both `compare` and the
/// encoding (and strictly decreasing in the descending encoding).
fn assert_increasing(vals: &[Bson]) {
    for w in vals.windows(2) {
        let (a, b) = (ValRef::from(&w[0]), ValRef::from(&w[1]));
        assert_eq!(compare(&a, &b), Ordering::Less, "{:?} < {:?}", w[0], w[1]);
        assert!(enc(&a) < enc(&b), "enc {:?} < {:?}", w[0], w[1]);
        assert!(enc_dir(&a, true) > enc_dir(&b, true), "desc {:?}", w);
    }
}

fn assert_same(a: &Bson, b: &Bson) {
    assert_eq!(
        compare(&a.into(), &b.into()),
        Ordering::Equal,
        "{a:?} == {b:?}"
    );
    assert_eq!(eb(a), eb(b), "{a:?} and {b:?} encode identically");
}

const TWO_53: i64 = 1 << 53;

/// Exact comparison of an integer with a double, valid over all of `i128`.
fn ref_int_f64(i: i128, f: f64) -> Ordering {
    if f.is_nan() {
        return Ordering::Greater;
    }
    if f >= TWO_POW_127 {
        return Ordering::Less;
    }
    if f < -TWO_POW_127 {
        return Ordering::Greater;
    }
    let fl = f.floor();
    // fl is in [-2^127, 2^127), so the cast is exact.
    let fi = fl as i128;
    i.cmp(&fi).then(if f > fl {
        Ordering::Less
    } else {
        Ordering::Equal
    })
}

/// Exact reference order of numbers (NaN lowest, -0.0 == 0.0).
fn ref_num(a: Num, b: Num) -> Ordering {
    let int = |n: Num| match n {
        Num::Int(i) => Some(i128::from(i)),
        Num::Big(b) => Some(b),
        Num::Double(_) => None,
    };
    match (a, b) {
        (Num::Double(x), Num::Double(y)) => match (x.is_nan(), y.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        },
        (Num::Double(x), _) => ref_int_f64(int(b).unwrap_or(0), x).reverse(),
        (_, Num::Double(y)) => ref_int_f64(int(a).unwrap_or(0), y),
        _ => int(a).cmp(&int(b)),
    }
}

// ---------------------------------------------------------------- numbers

#[test]
fn int_and_equal_double_encode_identically() {
    assert_eq!(num(Num::Int(5)), num(Num::Double(5.0)));
    assert_eq!(num(Num::Int(-5)), num(Num::Double(-5.0)));
    assert_eq!(num(Num::Big(5)), num(Num::Int(5)));
    assert_same(&Bson::Int32(5), &Bson::Double(5.0));
    assert_same(&Bson::Int64(5), &Bson::Int32(5));
    assert_same(
        &Bson::Int64(i64::MIN),
        &Bson::Double(-9_223_372_036_854_775_808.0),
    );
    // One tag byte, 8 bytes of double key and one byte of zero difference.
    assert_eq!(num(Num::Int(5)).len(), 10);
}

#[test]
fn zeros_and_nans() {
    assert_eq!(num(Num::Double(-0.0)), num(Num::Double(0.0)));
    assert_eq!(num(Num::Double(-0.0)), num(Num::Int(0)));
    let nan2 = f64::from_bits(0x7FF8_0000_0000_0001);
    let neg_nan = -f64::NAN;
    assert_eq!(num(Num::Double(f64::NAN)), num(Num::Double(nan2)));
    assert_eq!(num(Num::Double(f64::NAN)), num(Num::Double(neg_nan)));
    assert_increasing(&[
        Bson::Null,
        Bson::Double(f64::NAN),
        Bson::Double(f64::NEG_INFINITY),
        Bson::Double(f64::MIN),
        Bson::Decimal128(decimal_from_i128(-(1 << 100))),
        Bson::Int64(i64::MIN),
        Bson::Double(-1.0),
        Bson::Double(-f64::from_bits(1)),
        Bson::Int32(0),
        Bson::Double(f64::from_bits(1)),
        Bson::Double(f64::MIN_POSITIVE),
        Bson::Double(0.5),
        Bson::Int32(1),
        Bson::Double(1.5),
        Bson::Int64(i64::MAX),
        Bson::Decimal128(decimal_from_i128(1 << 100)),
        Bson::Double(f64::MAX),
        Bson::Double(f64::INFINITY),
        Bson::String(String::new()),
    ]);
}

#[test]
fn integers_beyond_2_pow_53() {
    let d53 = Bson::Double(TWO_53 as f64);
    // 2^53 + 1 is not a double: it rounds to 2^53 and is told apart by the tiebreaker.
    assert_increasing(&[
        Bson::Int64(TWO_53 - 1),
        d53.clone(),
        Bson::Int64(TWO_53 + 1),
        Bson::Double((TWO_53 + 2) as f64),
        Bson::Int64(TWO_53 + 3),
        Bson::Double((TWO_53 + 4) as f64),
    ]);
    assert_same(&Bson::Int64(TWO_53), &d53);
    assert_increasing(&[
        Bson::Double(-((TWO_53 + 4) as f64)),
        Bson::Int64(-TWO_53 - 3),
        Bson::Double(-((TWO_53 + 2) as f64)),
        Bson::Int64(-TWO_53 - 1),
        Bson::Double(-(TWO_53 as f64)),
    ]);
    // i64::MAX rounds up to 2^63.
    let two63 = 9_223_372_036_854_775_808.0;
    assert_increasing(&[
        Bson::Int64(i64::MAX - 1),
        Bson::Int64(i64::MAX),
        Bson::Double(two63),
        Bson::Decimal128(decimal_from_i128(i128::from(i64::MAX) + 2)),
    ]);
    assert_same(
        &Bson::Decimal128(decimal_from_i128(i128::from(i64::MAX) + 1)),
        &Bson::Double(two63),
    );
    assert!(num(Num::Int(i64::MAX)) < num(Num::Big(i128::from(i64::MAX) + 1)));
    assert!(num(Num::Int(i64::MIN)) > num(Num::Big(i128::from(i64::MIN) - 1)));
}

#[test]
fn i128_extremes_are_exact() {
    let two127 = TWO_POW_127;
    let below = f64::from_bits(two127.to_bits() - 1); // 2^127 − 2^74
    let order = [
        Num::Double(f64::NEG_INFINITY),
        Num::Double(-f64::from_bits(two127.to_bits() + 1)),
        Num::Big(i128::MIN),
        Num::Big(i128::MIN + 1),
        Num::Double(-below),
        Num::Big(-1),
        Num::Big(below as i128 - 1),
        Num::Double(below),
        Num::Big(below as i128 + 1),
        Num::Big(i128::MAX - 1),
        Num::Big(i128::MAX),
        Num::Double(two127),
        Num::Double(f64::from_bits(two127.to_bits() + 1)),
        Num::Double(f64::INFINITY),
    ];
    for w in order.windows(2) {
        assert_eq!(ref_num(w[0], w[1]), Ordering::Less, "{w:?}");
        assert!(num(w[0]) < num(w[1]), "{w:?}");
    }
    assert_eq!(num(Num::Big(i128::MIN)), num(Num::Double(-two127)));
    assert_eq!(num(Num::Big(below as i128)), num(Num::Double(below)));
    // Around 1.7e38 (where an approximate i128 bound would be wrong).
    let f = 1.7e38_f64;
    let fi = f as i128;
    assert!(num(Num::Big(fi - 1)) < num(Num::Double(f)));
    assert_eq!(num(Num::Big(fi)), num(Num::Double(f)));
    assert!(num(Num::Big(fi + 1)) > num(Num::Double(f)));
    let g = 1.7001e38_f64;
    assert!(num(Num::Big(17_005 * 10i128.pow(34))) > num(Num::Double(g)));
}

#[test]
fn signed_varint_is_ordered() {
    let ds: Vec<i128> = vec![
        i128::MIN,
        i128::MIN + 1,
        -(1 << 74),
        -65536,
        -65535,
        -256,
        -255,
        -2,
        -1,
        0,
        1,
        255,
        256,
        65535,
        65536,
        1 << 74,
        i128::MAX,
    ];
    let encs: Vec<Vec<u8>> = ds
        .iter()
        .map(|&d| {
            let mut out = Vec::new();
            write_signed_varint(&mut out, d);
            out
        })
        .collect();
    for w in encs.windows(2) {
        assert!(w[0] < w[1], "{w:?}");
        assert!(!w[1].starts_with(&w[0]));
    }
    assert_eq!(encs[9], vec![0x80]);
}

// ---------------------------------------------------------------- strings and others

#[test]
fn strings_and_prefixes() {
    let s = |x: &str| Bson::String(x.to_owned());
    assert_increasing(&[
        s(""),
        s("\0"),
        s("\0\0"),
        s("\0a"),
        s("a"),
        s("a\0"),
        s("a\0\0"),
        s("a\0b"),
        s("ab"),
        s("b"),
        s("é"),
    ]);
    assert_eq!(eb(&s("a")), vec![0x40, b'a', 0, 0]);
    assert_eq!(eb(&s("a\0")), vec![0x40, b'a', 0, 0xFF, 0, 0]);
    assert_same(&s("abc"), &Bson::Symbol("abc".to_owned()));
}

#[test]
fn null_undefined_and_missing_are_identical() {
    assert_same(&Bson::Null, &Bson::Undefined);
    for desc in [false, true] {
        let mut missing = Vec::new();
        encode_missing(&mut missing, desc);
        assert_eq!(missing, enc_dir(&ValRef::Null, desc));
        assert_eq!(missing, enc_dir(&ValRef::Undefined, desc));
    }
}

#[test]
fn documents_and_arrays() {
    assert_increasing(&[
        Bson::Document(doc! {}),
        Bson::Document(doc! { "b": Bson::MinKey }),
        Bson::Document(doc! { "a": Bson::Null }),
        // Type of the value is compared before the field name.
        Bson::Document(doc! { "b": 1 }),
        Bson::Document(doc! { "a": "x" }),
        Bson::Document(doc! { "a": "x", "a\u{1}": 1 }),
        Bson::Document(doc! { "a": "x", "b": 1 }),
        Bson::Document(doc! { "a": "x", "b": 2 }),
        Bson::Document(doc! { "a": "x\0" }),
        Bson::Document(doc! { "ab": "x" }),
        Bson::Document(doc! { "a": { "z": 1 } }),
        Bson::Document(doc! { "a": { "z": [1] } }),
        Bson::Document(doc! { "a": { "z": [1, 2] } }),
        Bson::Document(doc! { "a": { "z": [2] } }),
        Bson::Document(doc! { "a": [] }),
        Bson::Array(vec![]),
        Bson::Array(vec![Bson::MinKey]),
        Bson::Array(vec![Bson::Null, Bson::Int32(5)]),
        Bson::Array(vec![Bson::Int32(1)]),
        Bson::Array(vec![Bson::Int32(1), Bson::Null]),
        Bson::Array(vec![Bson::Int32(1), Bson::Int32(0)]),
        Bson::Array(vec![Bson::Double(1.5)]),
        Bson::Array(vec![Bson::String("a".into())]),
        Bson::Array(vec![Bson::Document(doc! {})]),
        Bson::Array(vec![Bson::Array(vec![])]),
        Bson::Array(vec![Bson::Array(vec![Bson::Int32(1)])]),
        Bson::Array(vec![Bson::MaxKey]),
        Bson::Binary(bson::Binary {
            subtype: BinarySubtype::Generic,
            bytes: vec![],
        }),
    ]);
    assert_same(
        &Bson::Document(doc! { "a": 1, "b": [1, "s"] }),
        &Bson::Document(doc! { "a": 1.0, "b": [Bson::Int64(1), Bson::Symbol("s".into())] }),
    );
}

#[test]
fn binary_compares_length_first() {
    let bin = |subtype: u8, bytes: &[u8]| {
        Bson::Binary(bson::Binary {
            subtype: BinarySubtype::from(subtype),
            bytes: bytes.to_vec(),
        })
    };
    let long = vec![0u8; 300];
    assert_increasing(&[
        bin(5, &[]),
        bin(0, &[0xFF]),
        bin(4, &[0x00]),
        bin(0, &[0x00, 0x00]),
        bin(0, &[0xFF; 255]),
        bin(0, &long),
        bin(0x80, &long),
    ]);
}

#[test]
fn cross_type_order_and_scalars() {
    let oid = |b: u8| Bson::ObjectId(bson::oid::ObjectId::from_bytes([b; 12]));
    let ts = |time: u32, increment: u32| Bson::Timestamp(bson::Timestamp { time, increment });
    let re = |p: &str, o: &str| {
        Bson::RegularExpression(bson::Regex {
            pattern: p.try_into().unwrap(),
            options: o.try_into().unwrap(),
        })
    };
    let date = |ms: i64| Bson::DateTime(bson::DateTime::from_millis(ms));
    assert_increasing(&[
        Bson::MinKey,
        Bson::Null,
        Bson::Double(f64::INFINITY),
        Bson::String("\u{10FFFF}".into()),
        Bson::Document(doc! { "a": Bson::MaxKey }),
        Bson::Array(vec![Bson::MaxKey]),
        Bson::Binary(bson::Binary {
            subtype: BinarySubtype::Generic,
            bytes: vec![0xFF; 5],
        }),
        oid(0),
        oid(1),
        oid(0xFF),
        Bson::Boolean(false),
        Bson::Boolean(true),
        date(i64::MIN),
        date(-1),
        date(0),
        date(1),
        date(i64::MAX),
        ts(0, 0),
        ts(0, u32::MAX),
        ts(1, 0),
        ts(u32::MAX, u32::MAX),
        re("", ""),
        re("", "i"),
        re("a", ""),
        re("a", "i"),
        re("ab", ""),
        Bson::JavaScriptCode(String::new()),
        Bson::JavaScriptCode("a\0".into()),
        Bson::JavaScriptCode("b".into()),
        Bson::MaxKey,
    ]);
    assert_same(
        &Bson::JavaScriptCode("x".into()),
        &Bson::JavaScriptCodeWithScope(bson::JavaScriptCodeWithScope {
            code: "x".into(),
            scope: doc! { "a": 1 },
        }),
    );
}

#[test]
fn compound_keys_with_descending_parts() {
    let s = |x: &str| Bson::String(x.to_owned());
    // (asc string, desc number): strings that are prefixes of each other.
    let rows = [
        (s("a"), Bson::Int32(9)),
        (s("a"), Bson::Double(2.5)),
        (s("a"), Bson::Null),
        (s("a\0"), Bson::Int32(100)),
        (s("a\0"), Bson::Int32(-100)),
        (s("ab"), Bson::Double(f64::INFINITY)),
        (s("ab"), Bson::Double(f64::NAN)),
        (s("b"), Bson::MaxKey),
        (s("b"), Bson::MinKey),
    ];
    let key = |(a, b): &(Bson, Bson)| {
        let mut out = Vec::new();
        encode_value(&mut out, &a.into(), false);
        encode_value(&mut out, &b.into(), true);
        out
    };
    for w in rows.windows(2) {
        assert!(key(&w[0]) < key(&w[1]), "{w:?}");
    }
    // (desc string, asc number).
    let key2 = |(a, b): &(Bson, Bson)| {
        let mut out = Vec::new();
        encode_value(&mut out, &a.into(), true);
        encode_value(&mut out, &b.into(), false);
        out
    };
    let rows2 = [
        (s("b"), Bson::Int32(1)),
        (s("ab"), Bson::Int32(1)),
        (s("a\0"), Bson::Int32(1)),
        (s("a"), Bson::MinKey),
        (s("a"), Bson::Int32(1)),
        (s("a"), Bson::Int32(2)),
        (s(""), Bson::Int32(0)),
    ];
    for w in rows2.windows(2) {
        assert!(key2(&w[0]) < key2(&w[1]), "{w:?}");
    }
}

#[test]
fn type_bounds_bracket_each_rank() {
    let samples = [
        (1, Bson::MinKey),
        (2, Bson::Null),
        (3, Bson::Double(f64::NAN)),
        (3, Bson::Double(f64::INFINITY)),
        (4, Bson::String(String::new())),
        (5, Bson::Document(doc! {})),
        (6, Bson::Array(vec![])),
        (6, Bson::Array(vec![Bson::MaxKey])),
        (9, Bson::Boolean(true)),
        (14, Bson::MaxKey),
    ];
    for (rank, v) in &samples {
        for desc in [false, true] {
            let e = enc_dir(&v.into(), desc);
            assert!(type_lower_bound(*rank, desc) <= e, "{v:?} {desc}");
            assert!(e < type_upper_bound(*rank, desc), "{v:?} {desc}");
            for other in (1..=14).filter(|r| r != rank) {
                let inside =
                    type_lower_bound(other, desc) <= e && e < type_upper_bound(other, desc);
                assert!(!inside, "{v:?} in rank {other}");
            }
        }
    }
    for desc in [false, true] {
        for r in 1..14u8 {
            // Ranges are disjoint and ordered by rank (reversed when descending).
            if desc {
                assert!(type_upper_bound(r + 1, desc) <= type_lower_bound(r, desc));
            } else {
                assert!(type_upper_bound(r, desc) <= type_lower_bound(r + 1, desc));
            }
        }
        for bad in [0u8, 15, 255] {
            assert_eq!(type_lower_bound(bad, desc), type_upper_bound(bad, desc));
        }
    }
}

#[test]
fn prefix_successor_cases() {
    assert_eq!(prefix_successor(b""), None);
    assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
    assert_eq!(prefix_successor(&[0x01]), Some(vec![0x02]));
    assert_eq!(prefix_successor(&[0x01, 0xFF, 0xFF]), Some(vec![0x02]));
    assert_eq!(prefix_successor(&[0x01, 0xFE]), Some(vec![0x01, 0xFF]));
    assert_eq!(prefix_successor(&[0x00]), Some(vec![0x01]));
}

/// Raw BSON of `{a: {a: ... {} ...}}` nested `depth` levels, built without recursion.
fn nested_raw(depth: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 * depth + 5 + depth);
    for level in (1..=depth).rev() {
        let size = (5 + 8 * level) as i32;
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&[0x03, b'a', 0x00]);
    }
    out.extend_from_slice(&[5, 0, 0, 0, 0]);
    out.extend(std::iter::repeat_n(0u8, depth));
    out
}

#[test]
fn deep_nesting_does_not_recurse() {
    let depth = 200_000;
    let bytes = nested_raw(depth);
    let raw = RawDocument::from_bytes(&bytes).unwrap();
    let v = ValRef::from(RawBsonRef::Document(raw));
    let e = enc(&v);
    // Tag, then per level: value tag + "a" 00 00, then one terminator per document.
    assert_eq!(e.len(), 1 + 4 * depth + depth + 1);
    assert_eq!(&e[..5], &[0x50, 0x50, b'a', 0, 0]);
    assert!(e[e.len() - depth - 1..].iter().all(|&b| b == 0));
}

// ---------------------------------------------------------------- property tests

fn arb_str() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![Just('a'), Just('b'), Just('\0'), Just('é'), Just('\u{1}')],
        0..4,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![Just(""), Just("a"), Just("ab"), Just("b"), Just("é")].prop_map(String::from)
}

/// Doubles that are integers near interesting magnitudes (all >= 2^53 are integral).
const ANCHORS: [f64; 9] = [
    9_007_199_254_740_992.0,                          // 2^53
    9_223_372_036_854_775_808.0,                      // 2^63
    18_446_744_073_709_551_616.0,                     // 2^64
    1_267_650_600_228_229_401_496_703_205_376.0,      // 2^100
    5_192_296_858_534_827_628_530_496_329_220_096.0,  // 2^112
    10_384_593_717_069_655_257_060_992_658_440_192.0, // 2^113
    1.7e38,
    170_141_183_460_469_212_842_221_372_237_303_250_944.0, // 2^127 − 2^74
    TWO_POW_127,
];

/// Exact integer near an anchor (clamped to i128), with a small or ulp-sized offset.
fn arb_anchor_int(limit_bits: u32) -> impl Strategy<Value = i128> {
    (
        0..ANCHORS.len(),
        any::<bool>(),
        prop_oneof![
            -3i128..=3,
            Just(1i128 << 73),
            Just(-(1i128 << 73)),
            -(1i128 << 75)..(1i128 << 75),
        ],
    )
        .prop_map(move |(i, neg, delta)| {
            let a = ANCHORS[i];
            let base = if a >= TWO_POW_127 {
                i128::MAX
            } else {
                a as i128
            };
            let v = base.saturating_add(delta);
            let v = if neg { v.saturating_neg() } else { v };
            let lim = if limit_bits >= 127 {
                i128::MAX
            } else {
                (1i128 << limit_bits) - 1
            };
            v.clamp(-lim, lim)
        })
}

/// Doubles a few ulps from an anchor.
fn arb_anchor_f64() -> impl Strategy<Value = f64> {
    (0..ANCHORS.len(), any::<bool>(), -3i64..=3).prop_map(|(i, neg, ulps)| {
        let f = f64::from_bits(ANCHORS[i].to_bits().wrapping_add_signed(ulps));
        if neg {
            -f
        } else {
            f
        }
    })
}

fn arb_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL,
        Just(f64::NAN),
        Just(-f64::NAN),
        Just(0.0),
        Just(-0.0),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        (-6i32..6).prop_map(|i| f64::from(i) / 2.0),
        arb_anchor_f64(),
    ]
}

fn arb_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        -3i64..3,
        (TWO_53 - 3)..(TWO_53 + 4),
        (-TWO_53 - 3)..(-TWO_53 + 4),
        (i64::MAX - 3)..=i64::MAX,
        i64::MIN..(i64::MIN + 3),
    ]
}

/// Integers representable by `decimal_from_i128` (|v| < 2^113).
fn arb_big() -> impl Strategy<Value = i128> {
    prop_oneof![
        any::<i128>().prop_map(|v| v >> 15),
        (i128::from(i64::MAX) - 2)..(i128::from(i64::MAX) + 3),
        (i128::from(i64::MIN) - 2)..(i128::from(i64::MIN) + 3),
        arb_anchor_int(113),
    ]
}

fn arb_leaf() -> impl Strategy<Value = Bson> {
    prop_oneof![
        Just(Bson::Null),
        Just(Bson::Undefined),
        Just(Bson::MinKey),
        Just(Bson::MaxKey),
        (-3i32..3).prop_map(Bson::Int32),
        any::<i32>().prop_map(Bson::Int32),
        arb_i64().prop_map(Bson::Int64),
        arb_f64().prop_map(Bson::Double),
        arb_f64().prop_map(Bson::Double),
        arb_big().prop_map(|v| Bson::Decimal128(decimal_from_i128(v))),
        arb_str().prop_map(Bson::String),
        arb_str().prop_map(Bson::Symbol),
        arb_str().prop_map(Bson::JavaScriptCode),
        any::<bool>().prop_map(Bson::Boolean),
        prop_oneof![-2i64..2, any::<i64>()]
            .prop_map(|ms| Bson::DateTime(bson::DateTime::from_millis(ms))),
        (0u32..2, prop_oneof![0u32..2, Just(u32::MAX)])
            .prop_map(|(time, increment)| Bson::Timestamp(bson::Timestamp { time, increment })),
        prop::array::uniform12(0u8..2)
            .prop_map(|b| Bson::ObjectId(bson::oid::ObjectId::from_bytes(b))),
        (
            prop_oneof![Just(0u8), Just(4u8), Just(0x80u8)],
            prop::collection::vec(0u8..3, 0..3)
        )
            .prop_map(|(subtype, bytes)| Bson::Binary(bson::Binary {
                subtype: BinarySubtype::from(subtype),
                bytes,
            })),
        (arb_key(), prop_oneof![Just(""), Just("i"), Just("im")]).prop_map(|(p, o)| {
            Bson::RegularExpression(bson::Regex {
                pattern: p.as_str().try_into().unwrap(),
                options: o.try_into().unwrap(),
            })
        }),
    ]
}

fn arb_bson() -> impl Strategy<Value = Bson> {
    arb_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Bson::Array),
            prop::collection::vec((arb_key(), inner), 0..4)
                .prop_map(|fields| Bson::Document(fields.into_iter().collect::<Document>())),
        ]
    })
}

fn arb_num() -> impl Strategy<Value = Num> {
    prop_oneof![
        arb_i64().prop_map(Num::Int),
        any::<i128>().prop_map(Num::Big),
        arb_anchor_int(127).prop_map(Num::Big),
        prop_oneof![(i128::MAX - 3)..=i128::MAX, i128::MIN..(i128::MIN + 3),].prop_map(Num::Big),
        arb_f64().prop_map(Num::Double),
    ]
}

/// A different representation of an equal value.
fn equivalent(b: &Bson) -> Bson {
    let exact_f64 = |i: i128| {
        let f = i as f64;
        (f < TWO_POW_127 && f as i128 == i).then_some(f)
    };
    match b {
        Bson::Int32(i) => Bson::Double(f64::from(*i)),
        Bson::Int64(i) => match exact_f64(i128::from(*i)) {
            Some(f) => Bson::Double(f),
            None => Bson::Decimal128(decimal_from_i128(i128::from(*i))),
        },
        Bson::Double(f) if f.is_nan() => Bson::Double(-f64::from_bits(0x7FF0_0000_0000_0001)),
        Bson::Double(f) if *f == 0.0 => Bson::Double(-f),
        Bson::Double(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Bson::Int64(*f as i64),
        Bson::Decimal128(d) => match crate::doc::value::decimal_to_i128(d).and_then(exact_f64) {
            Some(f) => Bson::Double(f),
            None => b.clone(),
        },
        Bson::String(s) => Bson::Symbol(s.clone()),
        Bson::Symbol(s) => Bson::String(s.clone()),
        Bson::Null => Bson::Undefined,
        Bson::Undefined => Bson::Null,
        Bson::JavaScriptCode(code) => {
            Bson::JavaScriptCodeWithScope(bson::JavaScriptCodeWithScope {
                code: code.clone(),
                scope: doc! { "x": 1 },
            })
        }
        Bson::Array(a) => Bson::Array(a.iter().map(equivalent).collect()),
        Bson::Document(d) => {
            Bson::Document(d.iter().map(|(k, v)| (k.clone(), equivalent(v))).collect())
        }
        other => other.clone(),
    }
}

/// A nearby value (equal, just below or just above, possibly of another
/// numeric type), obtained by changing the last leaf; `k` picks the variant.
fn nudge(b: &Bson, k: u8) -> Bson {
    let up = k.is_multiple_of(2);
    match b {
        Bson::Int32(i) => Bson::Int64(i64::from(*i) + if up { 1 } else { -1 }),
        Bson::Int64(i) => match k % 3 {
            0 => Bson::Double(*i as f64),
            1 => Bson::Int64(i.saturating_add(1)),
            _ => Bson::Int64(i.saturating_sub(1)),
        },
        Bson::Double(f) if f.is_finite() => match k % 3 {
            0 if f.abs() < 9.2e18 => Bson::Int64(*f as i64),
            0 => Bson::Decimal128(decimal_from_i128((*f as i128).clamp(-(1 << 112), 1 << 112))),
            1 => Bson::Double(f64::from_bits(f.to_bits() + 1)),
            _ => Bson::Double(f64::from_bits(f.to_bits().saturating_sub(1))),
        },
        Bson::Decimal128(d) => match crate::doc::value::decimal_to_i128(d) {
            Some(v) => match k % 3 {
                0 => Bson::Double(v as f64),
                1 => Bson::Decimal128(decimal_from_i128(v + 1)),
                _ => Bson::Decimal128(decimal_from_i128(v - 1)),
            },
            None => b.clone(),
        },
        Bson::String(s) | Bson::Symbol(s) => {
            let mut s = s.clone();
            if up {
                s.push(if k.is_multiple_of(4) { '\0' } else { 'a' });
            } else {
                s.pop();
            }
            Bson::String(s)
        }
        Bson::Array(a) => {
            let mut a = a.clone();
            match (k % 3, a.pop()) {
                (0, Some(last)) => a.push(nudge(&last, k / 3)),
                (1, Some(last)) => a.extend([last, Bson::Null]),
                _ => {}
            }
            Bson::Array(a)
        }
        Bson::Document(d) => {
            let mut fields: Vec<(String, Bson)> = d.clone().into_iter().collect();
            match (k % 3, fields.pop()) {
                (0, Some((name, last))) => fields.push((name, nudge(&last, k / 3))),
                (1, Some((name, last))) => fields.push((format!("{name}\u{1}"), last)),
                _ => {}
            }
            Bson::Document(fields.into_iter().collect())
        }
        other => other.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn prop_order_matches_compare(a in arb_bson(), b in arb_bson()) {
        let (va, vb) = (ValRef::from(&a), ValRef::from(&b));
        let expected = compare(&va, &vb);
        let (ea, eb) = (enc(&va), enc(&vb));
        prop_assert_eq!(ea.cmp(&eb), expected);
        prop_assert_eq!(ea == eb, expected == Ordering::Equal);
        // Descending reverses.
        prop_assert_eq!(enc_dir(&va, true).cmp(&enc_dir(&vb, true)), expected.reverse());
        // Prefix-free: distinct encodings never extend one another.
        if ea != eb {
            prop_assert!(!ea.starts_with(&eb) && !eb.starts_with(&ea));
        }
        // Type bracketing.
        let rank = type_rank(&va);
        for desc in [false, true] {
            let e = enc_dir(&va, desc);
            prop_assert!(type_lower_bound(rank, desc) <= e);
            prop_assert!(e < type_upper_bound(rank, desc));
        }
    }

    #[test]
    fn prop_order_matches_compare_for_neighbours(a in arb_bson(), k in any::<u8>(), desc in any::<bool>()) {
        let b = nudge(&a, k);
        let (va, vb) = (ValRef::from(&a), ValRef::from(&b));
        let expected = compare(&va, &vb);
        let (ea, eb) = (enc_dir(&va, desc), enc_dir(&vb, desc));
        prop_assert_eq!(ea.cmp(&eb), if desc { expected.reverse() } else { expected });
        prop_assert_eq!(ea == eb, expected == Ordering::Equal);
    }

    #[test]
    fn prop_equivalent_values_encode_identically(a in arb_bson()) {
        let b = equivalent(&a);
        let (va, vb) = (ValRef::from(&a), ValRef::from(&b));
        prop_assert_eq!(compare(&va, &vb), Ordering::Equal);
        prop_assert_eq!(enc(&va), enc(&vb));
        prop_assert_eq!(enc_dir(&va, true), enc_dir(&vb, true));
    }

    #[test]
    fn prop_raw_and_owned_encode_identically(a in arb_bson()) {
        let wrapper = doc! { "v": a.clone() };
        let raw = RawDocumentBuf::try_from(&wrapper).unwrap();
        let raw_val = raw.get("v").unwrap().unwrap();
        prop_assert_eq!(enc(&ValRef::from(raw_val)), eb(&a));
    }

    #[test]
    fn prop_compound_keys(
        a1 in arb_bson(), a2 in arb_bson(), b2 in arb_bson(),
        same_first in any::<bool>(), b1_other in arb_bson(),
        d1 in any::<bool>(), d2 in any::<bool>(),
    ) {
        // Often share the first part (or an equivalent of it) so the second part decides.
        let b1 = if same_first { equivalent(&a1) } else { b1_other };
        let key = |x: &Bson, y: &Bson| {
            let mut out = Vec::new();
            encode_value(&mut out, &x.into(), d1);
            encode_value(&mut out, &y.into(), d2);
            out
        };
        let dir = |o: Ordering, d: bool| if d { o.reverse() } else { o };
        let expected = dir(compare(&(&a1).into(), &(&b1).into()), d1)
            .then(dir(compare(&(&a2).into(), &(&b2).into()), d2));
        prop_assert_eq!(key(&a1, &a2).cmp(&key(&b1, &b2)), expected);
        // prefix_successor of the first part bounds every key with that first part.
        let mut first = Vec::new();
        encode_value(&mut first, &(&a1).into(), d1);
        if let Some(succ) = prefix_successor(&first) {
            prop_assert!(key(&a1, &a2) < succ);
            let k = key(&b1, &b2);
            let first_eq = compare(&(&a1).into(), &(&b1).into()) == Ordering::Equal;
            prop_assert_eq!(k < succ && k >= first, first_eq);
        }
    }

    #[test]
    fn prop_numbers_exact(a in arb_num(), b in arb_num()) {
        let expected = ref_num(a, b);
        prop_assert_eq!(num(a).cmp(&num(b)), expected);
        prop_assert_eq!(num(a) == num(b), expected == Ordering::Equal);
        // Within the range reachable from stored values, `compare_num` agrees.
        let small = |n: Num| match n {
            Num::Big(v) => v.unsigned_abs() < 1 << 113,
            _ => true,
        };
        if small(a) && small(b) {
            prop_assert_eq!(compare_num(a, b), expected);
        }
    }

    #[test]
    fn prop_prefix_successor(
        key in prop::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(0xFEu8), Just(0xFFu8)], 0..4),
        s in prop::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(0xFEu8), Just(0xFFu8)], 0..6),
    ) {
        match prefix_successor(&key) {
            None => prop_assert!(key.iter().all(|&b| b == 0xFF)),
            Some(succ) => {
                prop_assert!(succ > key);
                // Every extension of `key` is below `succ`; everything else in
                // [key, succ) would contradict minimality.
                prop_assert_eq!(s.starts_with(&key), s >= key && s < succ);
            }
        }
    }
}
