//! Unit tests of the update operators.

use super::*;
use crate::doc::json::json_from_doc;
use crate::doc::DocRef;
use serde_json::json;

const NOW_MS: i64 = 1_700_000_000_123;

fn ctx() -> ApplyContext {
    ApplyContext {
        is_insert: false,
        now: bson::DateTime::from_millis(NOW_MS),
    }
}

fn try_apply_with(update: Value, start: Value, c: &ApplyContext) -> Result<Document> {
    let u = Update::parse(&update)?;
    let mut d = document_from_json(&start).unwrap();
    u.apply(&mut d, c)?;
    Ok(d)
}

fn try_apply(update: Value, start: Value) -> Result<Document> {
    try_apply_with(update, start, &ctx())
}

fn apply(update: Value, start: Value) -> Document {
    try_apply(update, start).unwrap()
}

fn apply_json(update: Value, start: Value) -> Value {
    json_from_doc(DocRef::Owned(&apply(update, start)))
}

fn parse_err(update: Value) -> String {
    match Update::parse(&update) {
        Err(Error::InvalidUpdate(m)) => m,
        other => panic!("expected InvalidUpdate for {update}, got {other:?}"),
    }
}

fn mismatch(update: Value, start: Value) -> (String, String, String) {
    match try_apply(update.clone(), start) {
        Err(Error::TypeMismatch {
            operator,
            path,
            message,
        }) => (operator, path, message),
        other => panic!("expected TypeMismatch for {update}, got {other:?}"),
    }
}

fn overflow(update: Value, start: Value) -> (String, String) {
    match try_apply(update.clone(), start) {
        Err(Error::Overflow { operator, path }) => (operator, path),
        other => panic!("expected Overflow for {update}, got {other:?}"),
    }
}

// ---- parse errors --------------------------------------------------

#[test]
fn parse_rejects_non_objects() {
    for spec in [
        json!(1),
        json!("x"),
        json!([{"$set": {"a": 1}}]),
        json!(null),
    ] {
        let m = parse_err(spec);
        assert!(m.contains("must be a JSON object"), "{m}");
        assert!(m.contains("$set"), "{m}");
    }
}

#[test]
fn parse_rejects_empty_update() {
    let m = parse_err(json!({}));
    assert!(m.contains("cannot be empty"), "{m}");
}

#[test]
fn parse_rejects_mixed_operators_and_fields() {
    let m = parse_err(json!({"$set": {"a": 1}, "b": 2}));
    assert!(m.contains("cannot mix operators and field names"), "{m}");
    assert!(m.contains("'b'") && m.contains("'$set'"), "{m}");
}

#[test]
fn parse_rejects_unknown_operators() {
    let m = parse_err(json!({"$frobnicate": {"a": 1}}));
    assert!(m.contains("unknown update operator '$frobnicate'"), "{m}");
    for op in OPERATORS {
        assert!(m.contains(op), "{m} should list {op}");
    }
    assert!(parse_err(json!({"$bit": {"a": {"and": 1}}})).contains("not supported"));
}

#[test]
fn parse_rejects_non_object_operands() {
    for op in OPERATORS {
        let m = parse_err(json!({ *op: [1] }));
        assert!(m.contains("takes an object"), "{op}: {m}");
    }
}

#[test]
fn empty_operand_is_a_no_op() {
    // MongoDB manual, $set: "Starting in MongoDB 5.0, mongod no longer raises an
    // error when you use an update operator like $set with an empty operand expression".
    assert_eq!(
        apply_json(json!({"$set": {}}), json!({"a": 1})),
        json!({"a": 1})
    );
}

#[test]
fn parse_rejects_bad_inc_and_mul_operands() {
    for op in ["$inc", "$mul"] {
        for bad in [
            json!("1"),
            json!(null),
            json!(true),
            json!([1]),
            json!({"x": 1}),
        ] {
            let m = parse_err(json!({ op: {"a": bad} }));
            assert!(m.contains("takes a number"), "{op}: {m}");
        }
        let m = parse_err(json!({ op: {"a": {"$numberDecimal": "1.5"}} }));
        assert!(m.contains("takes a number"), "{m}");
    }
    // Extended JSON numbers are numbers.
    assert!(Update::parse(&json!({"$inc": {"a": {"$numberLong": "5"}}})).is_ok());
}

#[test]
fn parse_rejects_bad_pop_operands() {
    for bad in [json!(0), json!(2), json!("1"), json!(null), json!(1.5)] {
        let m = parse_err(json!({"$pop": {"a": bad}}));
        assert!(m.contains("takes 1") && m.contains("-1"), "{m}");
    }
    assert!(Update::parse(&json!({"$pop": {"a": -1.0}})).is_ok());
}

#[test]
fn parse_rejects_bad_current_date_operands() {
    for bad in [
        json!(false),
        json!(1),
        json!("date"),
        json!({"$type": "string"}),
        json!({"type": "date"}),
        json!({"$type": "date", "x": 1}),
    ] {
        let m = parse_err(json!({"$currentDate": {"a": bad}}));
        assert!(m.contains("takes true"), "{m}");
        assert!(m.contains("timestamp"), "{m}");
    }
}

#[test]
fn parse_rejects_non_string_rename_targets() {
    let m = parse_err(json!({"$rename": {"a": 1}}));
    assert!(m.contains("as a string"), "{m}");
    let m = parse_err(json!({"$rename": {"a": "b..c"}}));
    assert!(m.contains("empty part"), "{m}");
    let m = parse_err(json!({"$rename": {"a": "$b"}}));
    assert!(m.contains("starts with '$'"), "{m}");
}

#[test]
fn parse_rejects_bad_push_modifiers() {
    let cases = [
        (
            json!({"$each": [1], "$slice": 1.5}),
            "$slice takes an integer",
        ),
        (
            json!({"$each": [1], "$slice": "1"}),
            "$slice takes an integer",
        ),
        (
            json!({"$each": [1], "$position": "x"}),
            "$position takes an integer",
        ),
        (json!({"$each": [1], "$sort": 0}), "$sort takes 1"),
        (json!({"$each": [1], "$sort": "asc"}), "$sort takes 1"),
        (json!({"$each": [1], "$sort": {"a": 2}}), "$sort takes 1"),
        (json!({"$each": [1], "$sort": {}}), "$sort takes 1"),
        (json!({"$each": [1], "$sort": {"a..b": 1}}), "empty part"),
        (json!({"$each": [1], "$sort": {"$a": 1}}), "starts with '$'"),
        (json!({"$each": 1}), "$each takes an array"),
        (json!({"$slice": 1}), "require $each"),
        (json!({"$position": 0, "$sort": 1}), "require $each"),
        (
            json!({"$each": [1], "$bogus": 1}),
            "unrecognized field '$bogus'",
        ),
        (json!({"$each": [1], "x": 1}), "unrecognized field 'x'"),
    ];
    for (operand, want) in cases {
        let m = parse_err(json!({"$push": {"a": operand}}));
        assert!(m.contains(want), "{operand}: {m}");
    }
    // Integral doubles are integers.
    assert!(Update::parse(&json!({"$push": {"a": {"$each": [1], "$slice": -2.0}}})).is_ok());
}

#[test]
fn parse_rejects_bad_add_to_set_and_pull_all_operands() {
    let m = parse_err(json!({"$addToSet": {"a": {"$each": 1}}}));
    assert!(m.contains("$each takes an array"), "{m}");
    let m = parse_err(json!({"$addToSet": {"a": {"$each": [1], "$slice": 1}}}));
    assert!(m.contains("only the $each modifier"), "{m}");
    let m = parse_err(json!({"$pullAll": {"a": 1}}));
    assert!(m.contains("takes an array"), "{m}");
}

#[test]
fn parse_rejects_bad_pull_conditions() {
    let m = parse_err(json!({"$pull": {"a": {"$frob": 1}}}));
    assert!(m.contains("$pull condition for 'a'"), "{m}");
}

#[test]
fn parse_rejects_invalid_paths() {
    for (path, want) in [
        ("", "cannot be empty"),
        ("a..b", "empty part"),
        (".a", "empty part"),
        ("a.", "empty part"),
        ("$foo", "starts with '$'"),
        ("a.$x", "starts with '$'"),
    ] {
        let m = parse_err(json!({"$set": {path: 1}}));
        assert!(m.contains(want), "{path}: {m}");
    }
    for path in ["a.$", "a.$[]", "a.$[elem].b", "$"] {
        let m = parse_err(json!({"$set": {path: 1}}));
        assert!(m.contains("positional operators"), "{path}: {m}");
        assert!(m.contains("not supported"), "{path}: {m}");
    }
}

#[test]
fn parse_rejects_conflicting_paths() {
    let m = parse_err(json!({"$set": {"a": 1}, "$inc": {"a": 1}}));
    assert!(
        m.contains("Updating the path 'a' would create a conflict at 'a'"),
        "{m}"
    );
    let m = parse_err(json!({"$set": {"a.b": 1, "a": 2}}));
    assert!(
        m.contains("Updating the path 'a.b' would create a conflict at 'a'"),
        "{m}"
    );
    let m = parse_err(json!({"$unset": {"x.y.z": 1}, "$push": {"x.y": 1}}));
    assert!(m.contains("conflict at 'x.y'"), "{m}");
    // $rename's source and target both count.
    let m = parse_err(json!({"$rename": {"a": "b"}, "$set": {"b.c": 1}}));
    assert!(m.contains("conflict at 'b'"), "{m}");
    let m = parse_err(json!({"$rename": {"a.x": "b"}, "$set": {"a": 1}}));
    assert!(m.contains("conflict at 'a'"), "{m}");
    let m = parse_err(json!({"$rename": {"a": "a"}}));
    assert!(m.contains("must differ"), "{m}");
    let m = parse_err(json!({"$rename": {"a": "a.b"}}));
    assert!(m.contains("must not be on the same path"), "{m}");
    // Siblings and shared name prefixes do not conflict.
    assert!(
        Update::parse(&json!({"$set": {"a.b": 1, "a.c": 1, "ab": 1}, "$inc": {"a.bc": 1}})).is_ok()
    );
}

#[test]
fn parse_rejects_values_with_illegal_stored_names() {
    let m = parse_err(json!({"$set": {"a": {"$x": 1}}}));
    assert!(m.contains("would be stored") && m.contains("'$x'"), "{m}");
    let m = parse_err(json!({"$set": {"a": [{"b.c": 1}]}}));
    assert!(m.contains("contains '.'"), "{m}");
    let m = parse_err(json!({"$setOnInsert": {"a": {"b": {"$y": 1}}}}));
    assert!(m.contains("'$y'"), "{m}");
    let m = parse_err(json!({"$push": {"a": {"$each": [{"$x": 1}]}}}));
    assert!(m.contains("'$x'"), "{m}");
    let m = parse_err(json!({"$addToSet": {"a": {"k.j": 1}}}));
    assert!(m.contains("contains '.'"), "{m}");
    let m = parse_err(json!({"$max": {"a": {"$x": 1}}}));
    assert!(m.contains("'$x'"), "{m}");
    // Extended JSON values are values, not field names.
    assert!(Update::parse(&json!({"$set": {"d": {"$date": "2024-01-31T12:00:00Z"}}})).is_ok());
}

#[test]
fn replacement_documents() {
    let u = Update::parse(&json!({"name": "x", "n": 1})).unwrap();
    assert!(u.is_replacement());
    assert_eq!(u.replacement().unwrap().get("n"), Some(&Bson::Int32(1)));
    // MongoDB manual, replaceOne: the replacement keeps the original _id.
    let mut d = document_from_json(&json!({"_id": 7, "old": true})).unwrap();
    u.apply(&mut d, &ctx()).unwrap();
    assert_eq!(
        json_from_doc(DocRef::Owned(&d)),
        json!({"_id": 7, "name": "x", "n": 1})
    );
    // Stored-document field-name rules apply.
    let m = parse_err(json!({"a": {"b.c": 1}}));
    assert!(
        m.contains("replacement document") && m.contains("contains '.'"),
        "{m}"
    );
    let ops = Update::parse(&json!({"$set": {"a": 1}})).unwrap();
    assert!(!ops.is_replacement());
    assert!(ops.replacement().is_none());
}

#[test]
fn replacement_of_whole_documents() {
    let u = Update::replacement_of(&json!({})).unwrap();
    assert!(u.is_replacement());
    assert!(u.replacement().unwrap().is_empty());
    let u = Update::replacement_of(&json!({"a": {"b": [1]}})).unwrap();
    assert_eq!(
        json_from_doc(DocRef::Owned(u.replacement().unwrap())),
        json!({"a": {"b": [1]}})
    );
    let expect_invalid = |v: Value, want: &str| match Update::replacement_of(&v) {
        Err(Error::InvalidUpdate(m)) => assert!(m.contains(want), "{v}: {m}"),
        other => panic!("{v}: expected InvalidUpdate, got {other:?}"),
    };
    expect_invalid(json!({"$set": {"a": 1}}), "cannot contain update operators");
    expect_invalid(
        json!({"a": 1, "$inc": {"n": 1}}),
        "cannot contain update operators",
    );
    expect_invalid(json!([1]), "must be a JSON object");
    expect_invalid(json!({"a": {"$x": 1}}), "starts with '$'");
}

// ---- $set ------------------------------------------------------------

#[test]
fn set_top_level_and_in_place() {
    // MongoDB manual, $set: existing fields keep their position.
    let out = apply_json(json!({"$set": {"a": 5, "z": 1}}), json!({"a": 1, "b": 2}));
    assert_eq!(out, json!({"a": 5, "b": 2, "z": 1}));
    let keys: Vec<_> = out.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["a", "b", "z"]);
}

#[test]
fn set_creates_intermediate_documents() {
    // MongoDB manual, $set: "If the field does not exist, $set will add a new field".
    let out = apply_json(json!({"$set": {"a.b.c": 1}}), json!({"a": {"x": 0}}));
    assert_eq!(out, json!({"a": {"x": 0, "b": {"c": 1}}}));
}

#[test]
fn set_array_elements_and_padding() {
    // MongoDB manual, $set: "Set Elements in Arrays" with dot notation.
    assert_eq!(
        apply_json(json!({"$set": {"a.1": 9}}), json!({"a": [1, 2, 3]})),
        json!({"a": [1, 9, 3]})
    );
    assert_eq!(
        apply_json(json!({"$set": {"a.3": 9}}), json!({"a": [1]})),
        json!({"a": [1, null, null, 9]})
    );
    assert_eq!(
        apply_json(json!({"$set": {"a.2.b": 9}}), json!({"a": [{"b": 1}]})),
        json!({"a": [{"b": 1}, null, {"b": 9}]})
    );
    assert_eq!(
        apply_json(
            json!({"$set": {"a.0.b": 9}}),
            json!({"a": [{"b": 1, "c": 2}]})
        ),
        json!({"a": [{"b": 9, "c": 2}]})
    );
    // Numeric parts on documents are field names.
    assert_eq!(
        apply_json(json!({"$set": {"a.0": 9}}), json!({"a": {}})),
        json!({"a": {"0": 9}})
    );
}

#[test]
fn set_refuses_huge_padding() {
    let (_, _, m) = mismatch(json!({"$set": {"a.99999999": 1}}), json!({"a": []}));
    assert!(m.contains("at most"), "{m}");
}

#[test]
fn set_into_scalar_or_by_name_into_array_is_a_type_mismatch() {
    let (op, path, m) = mismatch(json!({"$set": {"a.b": 1}}), json!({"a": 1}));
    assert_eq!((op.as_str(), path.as_str()), ("$set", "a.b"));
    assert_eq!(m, "Cannot create field 'b' in element {a: 1}");
    let (_, _, m) = mismatch(json!({"$set": {"a.b.c": 1}}), json!({"a": {"b": null}}));
    assert_eq!(m, "Cannot create field 'c' in element {b: null}");
    let (_, _, m) = mismatch(json!({"$set": {"a.b": 1}}), json!({"a": [1, 2]}));
    assert_eq!(m, "Cannot create field 'b' in element {a: [1,2]}");
    let (_, _, m) = mismatch(json!({"$set": {"a.b.c": 1}}), json!({"a": [1, 2]}));
    assert_eq!(m, "Cannot create field 'b' in element {a: [1,2]}");
}

#[test]
fn set_extended_json_values() {
    let d = apply(
        json!({"$set": {"d": {"$date": "2024-01-31T12:00:00Z"}}}),
        json!({}),
    );
    assert!(matches!(d.get("d"), Some(Bson::DateTime(_))));
}

// ---- $unset ----------------------------------------------------------

#[test]
fn unset_fields() {
    // MongoDB manual, $unset: "If the field does not exist, then $unset does nothing".
    assert_eq!(
        apply_json(
            json!({"$unset": {"a": "", "b.c": 1, "zz": 1}}),
            json!({"a": 1, "b": {"c": 2, "d": 3}})
        ),
        json!({"b": {"d": 3}})
    );
    assert_eq!(
        apply_json(json!({"$unset": {"a.b": ""}}), json!({"a": 5})),
        json!({"a": 5})
    );
    assert_eq!(
        apply_json(json!({"$unset": {"a.b": ""}}), json!({"a": [{"b": 1}]})),
        json!({"a": [{"b": 1}]})
    );
}

#[test]
fn unset_array_element_sets_null() {
    // MongoDB manual, $unset: "If the field is an array element, $unset replaces it with null".
    assert_eq!(
        apply_json(json!({"$unset": {"a.1": ""}}), json!({"a": [1, 2, 3]})),
        json!({"a": [1, null, 3]})
    );
    assert_eq!(
        apply_json(json!({"$unset": {"a.7": ""}}), json!({"a": [1]})),
        json!({"a": [1]})
    );
    assert_eq!(
        apply_json(
            json!({"$unset": {"a.0.b": ""}}),
            json!({"a": [{"b": 1, "c": 2}]})
        ),
        json!({"a": [{"c": 2}]})
    );
}

// ---- $inc ------------------------------------------------------------

#[test]
fn inc_basic_missing_and_nested() {
    // MongoDB manual, $inc: "If the field does not exist, $inc creates the field
    // and sets the field to the specified value."
    let d = apply(
        json!({"$inc": {"a": 2, "b.c": -3, "n": 1}}),
        json!({"a": 5}),
    );
    assert_eq!(d.get("a"), Some(&Bson::Int32(7)));
    assert_eq!(
        json_from_doc(DocRef::Owned(&d)),
        json!({"a": 7, "b": {"c": -3}, "n": 1})
    );
    let d = apply(json!({"$inc": {"a.1": 10}}), json!({"a": [1, 2]}));
    assert_eq!(json_from_doc(DocRef::Owned(&d)), json!({"a": [1, 12]}));
}

#[test]
fn inc_normalises_integer_results() {
    // Widening from int32 to int64 on overflow of 32 bits.
    let d = apply(json!({"$inc": {"a": 1}}), json!({"a": i32::MAX}));
    assert_eq!(d.get("a"), Some(&Bson::Int64(i64::from(i32::MAX) + 1)));
    // Narrowing back to int32 when the result fits.
    let d = apply(json!({"$inc": {"a": -1}}), json!({"a": 3_000_000_000i64}));
    assert_eq!(d.get("a"), Some(&Bson::Int64(2_999_999_999)));
    let d = apply(
        json!({"$inc": {"a": -2_999_999_999i64}}),
        json!({"a": 3_000_000_000i64}),
    );
    assert_eq!(d.get("a"), Some(&Bson::Int32(1)));
    let d = apply(json!({"$inc": {"a": {"$numberLong": "5"}}}), json!({}));
    assert_eq!(d.get("a"), Some(&Bson::Int32(5)));
}

#[test]
fn inc_overflow() {
    let (op, path) = overflow(json!({"$inc": {"a.b": 1}}), json!({"a": {"b": i64::MAX}}));
    assert_eq!((op.as_str(), path.as_str()), ("$inc", "a.b"));
    overflow(json!({"$inc": {"a": i64::MIN}}), json!({"a": -1}));
}

#[test]
fn inc_on_unsigned_64_bit_values() {
    // u64 values beyond i64 are stored as integral Decimal128 and stay exact.
    let d = apply(json!({"$inc": {"a": -1}}), json!({"a": u64::MAX}));
    assert_eq!(
        d.get("a"),
        Some(&Bson::Decimal128(decimal_from_i128(
            i128::from(u64::MAX) - 1
        )))
    );
    let d = apply(json!({"$inc": {"a": -1}}), json!({"a": 1u64 << 63}));
    assert_eq!(d.get("a"), Some(&Bson::Int64(i64::MAX)));
    let d = apply(json!({"$inc": {"a": u64::MAX}}), json!({"a": -5}));
    assert_eq!(
        d.get("a"),
        Some(&Bson::Decimal128(decimal_from_i128(
            i128::from(u64::MAX) - 5
        )))
    );
    let d = apply(json!({"$inc": {"a": u64::MAX}}), json!({}));
    assert_eq!(
        d.get("a"),
        Some(&Bson::Decimal128(decimal_from_i128(i128::from(u64::MAX))))
    );
    overflow(json!({"$inc": {"a": 1}}), json!({"a": u64::MAX}));
}

#[test]
fn inc_with_doubles() {
    let d = apply(
        json!({"$inc": {"a": 0.5, "b": 1, "c": 1.5}}),
        json!({"a": 1, "b": 2.5}),
    );
    assert_eq!(d.get("a"), Some(&Bson::Double(1.5)));
    assert_eq!(d.get("b"), Some(&Bson::Double(3.5)));
    assert_eq!(d.get("c"), Some(&Bson::Double(1.5)));
    let d = apply(json!({"$inc": {"a": 1.0}}), json!({"a": 1}));
    assert_eq!(d.get("a"), Some(&Bson::Double(2.0)));
}

#[test]
fn inc_non_numeric_field_is_a_type_mismatch() {
    // MongoDB manual, $inc: "Use of the $inc operator on a field with a null value
    // will generate an error."
    for start in [
        json!({"a": "x"}),
        json!({"a": null}),
        json!({"a": [1]}),
        json!({"a": {"b": 1}}),
    ] {
        let (op, path, m) = mismatch(json!({"$inc": {"a": 1}}), start);
        assert_eq!((op.as_str(), path.as_str()), ("$inc", "a"));
        assert!(m.contains("non-numeric type"), "{m}");
    }
    let (_, _, m) = mismatch(json!({"$inc": {"a.b": 1}}), json!({"a": "x"}));
    assert_eq!(m, "Cannot create field 'b' in element {a: \"x\"}");
}

// ---- $mul ------------------------------------------------------------

#[test]
fn mul_basic_and_missing() {
    // MongoDB manual, $mul: "If the field does not exist in a document, $mul creates
    // the field and sets the value to zero of the same numeric type as the multiplier."
    let d = apply(json!({"$mul": {"a": 3, "m": 5, "f": 2.5}}), json!({"a": 4}));
    assert_eq!(d.get("a"), Some(&Bson::Int32(12)));
    assert_eq!(d.get("m"), Some(&Bson::Int32(0)));
    assert_eq!(d.get("f"), Some(&Bson::Double(0.0)));
}

#[test]
fn mul_mixed_types_normalisation_and_overflow() {
    // MongoDB manual, $mul: "Multiply Mixed Numeric Types".
    let d = apply(json!({"$mul": {"a": 1.5}}), json!({"a": 4}));
    assert_eq!(d.get("a"), Some(&Bson::Double(6.0)));
    let d = apply(json!({"$mul": {"a": 2}}), json!({"a": 2_000_000_000}));
    assert_eq!(d.get("a"), Some(&Bson::Int64(4_000_000_000)));
    let d = apply(json!({"$mul": {"a": 0}}), json!({"a": 4_000_000_000i64}));
    assert_eq!(d.get("a"), Some(&Bson::Int32(0)));
    let (op, _) = overflow(json!({"$mul": {"a": 2}}), json!({"a": i64::MAX}));
    assert_eq!(op, "$mul");
    let (_, _, m) = mismatch(json!({"$mul": {"a": 2}}), json!({"a": true}));
    assert!(m.contains("non-numeric type bool"), "{m}");
}

// ---- $min / $max -------------------------------------------------------

#[test]
fn min_and_max() {
    // MongoDB manual, $min: "updates the value of the field to a specified value if the
    // specified value is less than the current value of the field".
    let d = apply(
        json!({"$min": {"a": 3, "b": 30}, "$max": {"c": 3, "e": 30}}),
        json!({"a": 10, "b": 10, "c": 10, "e": 10}),
    );
    assert_eq!(
        json_from_doc(DocRef::Owned(&d)),
        json!({"a": 3, "b": 10, "c": 10, "e": 30})
    );
    // Missing fields are set to the operand.
    assert_eq!(
        apply_json(json!({"$min": {"x.y": 1}}), json!({})),
        json!({"x": {"y": 1}})
    );
    assert_eq!(
        apply_json(json!({"$max": {"x": 1}}), json!({})),
        json!({"x": 1})
    );
    // MongoDB manual, $min: "the comparison uses the BSON comparison order" (numbers < strings).
    assert_eq!(
        apply_json(json!({"$min": {"a": 5}}), json!({"a": "x"})),
        json!({"a": 5})
    );
    assert_eq!(
        apply_json(json!({"$max": {"a": 5}}), json!({"a": "x"})),
        json!({"a": "x"})
    );
    assert_eq!(
        apply_json(json!({"$min": {"a": null}}), json!({"a": 1})),
        json!({"a": null})
    );
    // Equal values keep the stored type.
    let d = apply(json!({"$min": {"a": 5.0}}), json!({"a": 5}));
    assert_eq!(d.get("a"), Some(&Bson::Int32(5)));
}

#[test]
fn min_into_scalar_is_a_type_mismatch() {
    let (op, _, m) = mismatch(json!({"$min": {"a.b": 1}}), json!({"a": 1}));
    assert_eq!(op, "$min");
    assert!(m.contains("Cannot create field 'b'"), "{m}");
}

// ---- $rename ---------------------------------------------------------

#[test]
fn rename_fields() {
    // MongoDB manual, $rename.
    assert_eq!(
        apply_json(json!({"$rename": {"a": "b"}}), json!({"a": 1, "c": 2})),
        json!({"c": 2, "b": 1})
    );
    // "Rename a Field in an Embedded Document" and creating the target's parents.
    assert_eq!(
        apply_json(
            json!({"$rename": {"n.first": "x.y.fname"}}),
            json!({"n": {"first": "a", "last": "b"}})
        ),
        json!({"n": {"last": "b"}, "x": {"y": {"fname": "a"}}})
    );
    // "If the document already has a field with the <newName>, $rename removes that field".
    assert_eq!(
        apply_json(json!({"$rename": {"a": "b"}}), json!({"a": 1, "b": 2})),
        json!({"b": 1})
    );
    // "Rename a Field That Does Not Exist": no-op.
    assert_eq!(
        apply_json(json!({"$rename": {"q": "r"}}), json!({"a": 1})),
        json!({"a": 1})
    );
    assert_eq!(
        apply_json(json!({"$rename": {"q.w": "r"}}), json!({"q": 1})),
        json!({"q": 1})
    );
}

#[test]
fn rename_through_arrays_is_a_type_mismatch() {
    // MongoDB manual, $rename: "$rename does not work on embedded documents in arrays".
    let (op, path, m) = mismatch(json!({"$rename": {"a.0": "b"}}), json!({"a": [1]}));
    assert_eq!((op.as_str(), path.as_str()), ("$rename", "a.0"));
    assert!(m.contains("array"), "{m}");
    mismatch(json!({"$rename": {"a.b": "c"}}), json!({"a": [{"b": 1}]}));
    let (_, path, _) = mismatch(json!({"$rename": {"x": "a.0"}}), json!({"x": 1, "a": [1]}));
    assert_eq!(path, "a.0");
    let (_, path, m) = mismatch(json!({"$rename": {"x": "a.b"}}), json!({"x": 1, "a": 5}));
    assert_eq!(path, "a.b");
    assert_eq!(m, "Cannot create field 'b' in element {a: 5}");
    // Renaming a whole array field is fine.
    assert_eq!(
        apply_json(json!({"$rename": {"a": "b"}}), json!({"a": [1]})),
        json!({"b": [1]})
    );
}

// ---- $currentDate ------------------------------------------------------

#[test]
fn current_date() {
    // MongoDB manual, $currentDate.
    let d = apply(
        json!({"$currentDate": {"d": true, "e": {"$type": "date"}, "t": {"$type": "timestamp"}, "x.y": true}}),
        json!({"d": 1}),
    );
    let now = bson::DateTime::from_millis(NOW_MS);
    assert_eq!(d.get("d"), Some(&Bson::DateTime(now)));
    assert_eq!(d.get("e"), Some(&Bson::DateTime(now)));
    assert_eq!(
        d.get("t"),
        Some(&Bson::Timestamp(bson::Timestamp {
            time: 1_700_000_000,
            increment: 1
        }))
    );
    assert_eq!(
        d.get_document("x").unwrap().get("y"),
        Some(&Bson::DateTime(now))
    );
}

// ---- $setOnInsert ------------------------------------------------------

#[test]
fn set_on_insert_only_when_inserting() {
    // MongoDB manual, $setOnInsert: "If an update operation with upsert: true results in an
    // insert of a document, then $setOnInsert assigns the specified values ... If the
    // update operation does not result in an insert, $setOnInsert does nothing."
    let spec = json!({"$set": {"a": 1}, "$setOnInsert": {"b.c": 2}});
    let inserting = ApplyContext {
        is_insert: true,
        now: bson::DateTime::from_millis(0),
    };
    let d = try_apply_with(spec.clone(), json!({}), &inserting).unwrap();
    assert_eq!(
        json_from_doc(DocRef::Owned(&d)),
        json!({"a": 1, "b": {"c": 2}})
    );
    assert_eq!(apply_json(spec, json!({})), json!({"a": 1}));
}

// ---- $push -------------------------------------------------------------

#[test]
fn push_appends_and_creates() {
    // MongoDB manual, $push: "If the field is absent in the document to update, $push adds
    // the array field with the value as its element."
    assert_eq!(
        apply_json(json!({"$push": {"a": 3}}), json!({"a": [1, 2]})),
        json!({"a": [1, 2, 3]})
    );
    assert_eq!(
        apply_json(json!({"$push": {"a.b": 1}}), json!({})),
        json!({"a": {"b": [1]}})
    );
    // "If the value is an array, $push appends the whole array as a single element."
    assert_eq!(
        apply_json(json!({"$push": {"a": [1, 2]}}), json!({"a": []})),
        json!({"a": [[1, 2]]})
    );
    assert_eq!(
        apply_json(json!({"$push": {"a.0": 1}}), json!({"a": [[0]]})),
        json!({"a": [[0, 1]]})
    );
}

#[test]
fn push_on_non_array_is_a_type_mismatch() {
    // MongoDB manual, $push: "If the field is not an array, the operation will fail."
    let (op, path, m) = mismatch(json!({"$push": {"a": 1}}), json!({"a": 5}));
    assert_eq!((op.as_str(), path.as_str()), ("$push", "a"));
    assert!(m.contains("must be an array but is of type int"), "{m}");
}

#[test]
fn push_each() {
    // MongoDB manual, $push: $each.
    assert_eq!(
        apply_json(
            json!({"$push": {"a": {"$each": [3, 4]}}}),
            json!({"a": [1]})
        ),
        json!({"a": [1, 3, 4]})
    );
    assert_eq!(
        apply_json(json!({"$push": {"a": {"$each": []}}}), json!({})),
        json!({"a": []})
    );
}

#[test]
fn push_position() {
    // MongoDB manual, $push: $position.
    let start = json!({"a": [10, 20, 30]});
    let push = |pos: Value| json!({"$push": {"a": {"$each": [1, 2], "$position": pos}}});
    assert_eq!(
        apply_json(push(json!(0)), start.clone()),
        json!({"a": [1, 2, 10, 20, 30]})
    );
    assert_eq!(
        apply_json(push(json!(1)), start.clone()),
        json!({"a": [10, 1, 2, 20, 30]})
    );
    assert_eq!(
        apply_json(push(json!(99)), start.clone()),
        json!({"a": [10, 20, 30, 1, 2]})
    );
    // "$position: -1 ... inserts before the last element".
    assert_eq!(
        apply_json(push(json!(-1)), start.clone()),
        json!({"a": [10, 20, 1, 2, 30]})
    );
    assert_eq!(
        apply_json(push(json!(-99)), start.clone()),
        json!({"a": [1, 2, 10, 20, 30]})
    );
    assert_eq!(
        apply_json(push(json!(i64::MIN)), start),
        json!({"a": [1, 2, 10, 20, 30]})
    );
}

#[test]
fn push_sort_whole_elements() {
    // MongoDB manual, $push: $sort "Sort Array Elements That Are Not Documents".
    assert_eq!(
        apply_json(
            json!({"$push": {"a": {"$each": [40, 60], "$sort": 1}}}),
            json!({"a": [89, 70, 100, 20]})
        ),
        json!({"a": [20, 40, 60, 70, 89, 100]})
    );
    assert_eq!(
        apply_json(
            json!({"$push": {"a": {"$each": [], "$sort": -1}}}),
            json!({"a": [2, "x", 3.5, null]})
        ),
        json!({"a": ["x", 3.5, 2, null]})
    );
}

#[test]
fn push_sort_by_fields() {
    // MongoDB manual, $push: $sort "Sort Array of Documents by a Field in the Documents".
    let out = apply_json(
        json!({"$push": {"quizzes": {"$each": [{"id": 3, "score": 8}, {"id": 4, "score": 7}, {"id": 5, "score": 6}], "$sort": {"score": 1}}}}),
        json!({"quizzes": [{"id": 1, "score": 6}, {"id": 2, "score": 9}]}),
    );
    assert_eq!(
        out,
        json!({"quizzes": [{"id": 1, "score": 6}, {"id": 5, "score": 6}, {"id": 4, "score": 7}, {"id": 3, "score": 8}, {"id": 2, "score": 9}]})
    );
    // Dotted sort fields, descending, ties broken by the next field; missing = null.
    let out = apply_json(
        json!({"$push": {"a": {"$each": [], "$sort": {"k.v": -1, "n": 1}}}}),
        json!({"a": [{"n": 2, "k": {"v": 1}}, {"n": 1}, 7, {"n": 1, "k": {"v": 1}}, {"n": 0, "k": {"v": 5}}]}),
    );
    assert_eq!(
        out,
        json!({"a": [{"n": 0, "k": {"v": 5}}, {"n": 1, "k": {"v": 1}}, {"n": 2, "k": {"v": 1}}, 7, {"n": 1}]})
    );
}

#[test]
fn push_slice() {
    // MongoDB manual, $push: $slice.
    let push = |n: i64| json!({"$push": {"a": {"$each": [80, 78, 86], "$slice": n}}});
    let start = json!({"a": [40, 50, 60]});
    assert_eq!(
        apply_json(push(-5), start.clone()),
        json!({"a": [50, 60, 80, 78, 86]})
    );
    assert_eq!(
        apply_json(push(3), start.clone()),
        json!({"a": [40, 50, 60]})
    );
    assert_eq!(apply_json(push(0), start.clone()), json!({"a": []}));
    assert_eq!(
        apply_json(push(100), start.clone()),
        json!({"a": [40, 50, 60, 80, 78, 86]})
    );
    assert_eq!(
        apply_json(push(i64::MIN), start.clone()),
        json!({"a": [40, 50, 60, 80, 78, 86]})
    );
    // "Use $slice with $each: [] to only slice the existing array."
    assert_eq!(
        apply_json(json!({"$push": {"a": {"$each": [], "$slice": 1}}}), start),
        json!({"a": [40]})
    );
}

#[test]
fn push_all_modifiers_together() {
    // MongoDB manual, $push: "Use $push Operator with Multiple Modifiers".
    let out = apply_json(
        json!({"$push": {"quizzes": {
            "$each": [{"wk": 5, "score": 8}, {"wk": 6, "score": 7}, {"wk": 7, "score": 6}],
            "$sort": {"score": -1},
            "$slice": 3
        }}}),
        json!({"quizzes": [{"wk": 1, "score": 10}, {"wk": 2, "score": 8}, {"wk": 3, "score": 5}, {"wk": 4, "score": 6}]}),
    );
    assert_eq!(
        out,
        json!({"quizzes": [{"wk": 1, "score": 10}, {"wk": 2, "score": 8}, {"wk": 5, "score": 8}]})
    );
    // $position applies before $sort and $slice.
    let out = apply_json(
        json!({"$push": {"a": {"$each": [0], "$position": 0, "$slice": 2}}}),
        json!({"a": [5, 6, 7]}),
    );
    assert_eq!(out, json!({"a": [0, 5]}));
}

// ---- $addToSet ---------------------------------------------------------

#[test]
fn add_to_set() {
    // MongoDB manual, $addToSet.
    assert_eq!(
        apply_json(json!({"$addToSet": {"a": 2}}), json!({"a": [1, 2]})),
        json!({"a": [1, 2]})
    );
    assert_eq!(
        apply_json(json!({"$addToSet": {"a": 3}}), json!({"a": [1, 2]})),
        json!({"a": [1, 2, 3]})
    );
    // Equality is by value across numeric types, and whole for arrays and documents.
    assert_eq!(
        apply_json(json!({"$addToSet": {"a": 2.0}}), json!({"a": [1, 2]})),
        json!({"a": [1, 2]})
    );
    assert_eq!(
        apply_json(json!({"$addToSet": {"a": [1]}}), json!({"a": [1]})),
        json!({"a": [1, [1]]})
    );
    assert_eq!(
        apply_json(
            json!({"$addToSet": {"a": {"x": 1, "y": 2}}}),
            json!({"a": [{"x": 1, "y": 2}, {"y": 2, "x": 1}]})
        ),
        json!({"a": [{"x": 1, "y": 2}, {"y": 2, "x": 1}]})
    );
    // "If the field is absent ... $addToSet creates the array field".
    assert_eq!(
        apply_json(json!({"$addToSet": {"a.b": 1}}), json!({})),
        json!({"a": {"b": [1]}})
    );
}

#[test]
fn add_to_set_each() {
    // MongoDB manual, $addToSet: $each.
    assert_eq!(
        apply_json(
            json!({"$addToSet": {"a": {"$each": [3, 1, 4, 4]}}}),
            json!({"a": [1, 2]})
        ),
        json!({"a": [1, 2, 3, 4]})
    );
    assert_eq!(
        apply_json(json!({"$addToSet": {"a": {"$each": [5, 5]}}}), json!({})),
        json!({"a": [5]})
    );
}

#[test]
fn add_to_set_on_non_array_is_a_type_mismatch() {
    let (op, _, m) = mismatch(json!({"$addToSet": {"a": 1}}), json!({"a": "x"}));
    assert_eq!(op, "$addToSet");
    assert!(m.contains("must be an array but is of type string"), "{m}");
}

// ---- $pop --------------------------------------------------------------

#[test]
fn pop() {
    // MongoDB manual, $pop.
    assert_eq!(
        apply_json(json!({"$pop": {"a": 1}}), json!({"a": [1, 2, 3]})),
        json!({"a": [1, 2]})
    );
    assert_eq!(
        apply_json(json!({"$pop": {"a": -1}}), json!({"a": [1, 2, 3]})),
        json!({"a": [2, 3]})
    );
    assert_eq!(
        apply_json(json!({"$pop": {"a": -1}}), json!({"a": []})),
        json!({"a": []})
    );
    assert_eq!(
        apply_json(json!({"$pop": {"a.b": 1}}), json!({"x": 1})),
        json!({"x": 1})
    );
    let (op, _, m) = mismatch(json!({"$pop": {"a": 1}}), json!({"a": {"b": 1}}));
    assert_eq!(op, "$pop");
    assert!(m.contains("must be an array but is of type object"), "{m}");
}

// ---- $pull / $pullAll ---------------------------------------------------

#[test]
fn pull_values() {
    // MongoDB manual, $pull: "Remove All Items That Equal a Specified Value".
    assert_eq!(
        apply_json(
            json!({"$pull": {"fruits": "apple", "veg": "carrots"}}),
            json!({"fruits": ["apple", "pear", "apple"], "veg": ["carrots", "celery"]})
        ),
        json!({"fruits": ["pear"], "veg": ["celery"]})
    );
    // Arrays are removed only when equal as a whole.
    assert_eq!(
        apply_json(
            json!({"$pull": {"a": [1, 2]}}),
            json!({"a": [[1, 2], [2, 1], 1]})
        ),
        json!({"a": [[2, 1], 1]})
    );
}

#[test]
fn pull_conditions() {
    // MongoDB manual, $pull: "Remove All Items That Match a Specified $pull Condition".
    assert_eq!(
        apply_json(
            json!({"$pull": {"votes": {"$gte": 6}}}),
            json!({"votes": [3, 5, 6, 7, 7, 8]})
        ),
        json!({"votes": [3, 5]})
    );
    // "Remove Items from an Array of Documents".
    assert_eq!(
        apply_json(
            json!({"$pull": {"results": {"score": 8, "item": "B"}}}),
            json!({"results": [{"item": "A", "score": 5}, {"item": "B", "score": 8}, {"item": "B", "score": 4}]})
        ),
        json!({"results": [{"item": "A", "score": 5}, {"item": "B", "score": 4}]})
    );
    // "Remove Documents from Nested Arrays".
    assert_eq!(
        apply_json(
            json!({"$pull": {"results": {"answers": {"$elemMatch": {"q": 2, "a": {"$gte": 8}}}}}}),
            json!({"results": [
                {"item": "A", "answers": [{"q": 1, "a": 4}, {"q": 2, "a": 6}]},
                {"item": "B", "answers": [{"q": 1, "a": 8}, {"q": 2, "a": 9}]}
            ]})
        ),
        json!({"results": [{"item": "A", "answers": [{"q": 1, "a": 4}, {"q": 2, "a": 6}]}]})
    );
    // $in on scalars.
    assert_eq!(
        apply_json(
            json!({"$pull": {"a": {"$in": ["x", 2]}}}),
            json!({"a": [1, 2, "x", "y"]})
        ),
        json!({"a": [1, "y"]})
    );
}

#[test]
fn pull_regex_values_match_strings() {
    // MongoDB (pull_node.cc): a regular expression operand is applied as a query.
    assert_eq!(
        apply_json(
            json!({"$pull": {"a": {"$regularExpression": {"pattern": "^x", "options": ""}}}}),
            json!({"a": ["xa", "ya", "xb", 1]})
        ),
        json!({"a": ["ya", 1]})
    );
}

#[test]
fn pull_missing_and_non_array() {
    assert_eq!(
        apply_json(json!({"$pull": {"a": 1}}), json!({"b": 1})),
        json!({"b": 1})
    );
    assert_eq!(
        apply_json(json!({"$pull": {"a.b.c": 1}}), json!({"a": 1})),
        json!({"a": 1})
    );
    let (op, path, m) = mismatch(json!({"$pull": {"a": 1}}), json!({"a": 1}));
    assert_eq!((op.as_str(), path.as_str()), ("$pull", "a"));
    assert!(m.contains("must be an array"), "{m}");
}

#[test]
fn pull_all() {
    // MongoDB manual, $pullAll.
    assert_eq!(
        apply_json(
            json!({"$pullAll": {"scores": [0, 5]}}),
            json!({"scores": [0, 2, 5, 5, 1, 0]})
        ),
        json!({"scores": [2, 1]})
    );
    assert_eq!(
        apply_json(json!({"$pullAll": {"a": [1]}}), json!({})),
        json!({})
    );
    let (op, _, _) = mismatch(json!({"$pullAll": {"a": [1]}}), json!({"a": "s"}));
    assert_eq!(op, "$pullAll");
}

// ---- combinations and robustness -----------------------------------------

#[test]
fn several_operators_in_one_update() {
    let out = apply_json(
        json!({"$set": {"s": 1}, "$inc": {"n": 2}, "$unset": {"u": 1}, "$push": {"p": 3}, "$rename": {"r": "rr"}}),
        json!({"n": 1, "u": 0, "p": [], "r": "v"}),
    );
    assert_eq!(out, json!({"n": 3, "p": [3], "s": 1, "rr": "v"}));
}

mod no_panics {
    use super::*;
    use proptest::prelude::*;

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            any::<u64>().prop_map(|u| json!(u)),
            (-1.0e6f64..1.0e6).prop_map(|f| json!(f)),
            (-3i64..4).prop_map(|i| json!(i)),
            "[a-c$.0-9]{0,4}".prop_map(Value::String),
        ]
    }

    /// Values whose field names are legal in stored documents.
    fn plain_value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(vec!["a", "b", "0"]), inner), 0..4)
                    .prop_map(|kv| Value::Object(
                        kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                    )),
            ]
        })
    }

    /// Any JSON, including `$` keys.
    fn json_value() -> impl Strategy<Value = Value> {
        let keys = vec![
            "a",
            "b",
            "0",
            "$each",
            "$sort",
            "$slice",
            "$position",
            "$gte",
            "$type",
            "$in",
            "$date",
        ];
        leaf().prop_recursive(3, 24, 4, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(keys.clone()), inner), 0..4).prop_map(
                    |kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                ),
            ]
        })
    }

    fn path() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "a", "b", "c", "0", "a.b", "a.0", "a.1.b", "b.0", "b.a", "a.b.c", "c.5", "a.$", "a..b",
        ])
        .prop_map(str::to_owned)
    }

    fn modifiers() -> impl Strategy<Value = Value> {
        let sort = prop::sample::select(vec![
            json!(1),
            json!(-1),
            json!({"a": 1}),
            json!({"b.0": -1}),
            json!(0),
        ]);
        (
            prop::collection::vec(plain_value(), 0..4),
            prop::option::of(-4i64..5),
            prop::option::of(-4i64..5),
            prop::option::of(sort),
        )
            .prop_map(|(each, slice, position, sort)| {
                let mut m = serde_json::Map::new();
                m.insert("$each".into(), Value::Array(each));
                if let Some(s) = slice {
                    m.insert("$slice".into(), json!(s));
                }
                if let Some(p) = position {
                    m.insert("$position".into(), json!(p));
                }
                if let Some(s) = sort {
                    m.insert("$sort".into(), s);
                }
                Value::Object(m)
            })
    }

    fn operand() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => plain_value(),
            1 => json_value(),
            2 => modifiers(),
            1 => (-3i64..10).prop_map(|i| json!({"$gte": i})),
            1 => prop::sample::select(vec![json!(true), json!({"$type": "timestamp"})]),
            1 => path().prop_map(Value::String),
        ]
    }

    fn update() -> impl Strategy<Value = Value> {
        let op = prop::sample::select(OPERATORS.to_vec());
        prop::collection::vec((op, prop::collection::vec((path(), operand()), 1..3)), 1..3)
            .prop_map(|ops| {
                Value::Object(
                    ops.into_iter()
                        .map(|(op, fields)| {
                            (op.to_owned(), Value::Object(fields.into_iter().collect()))
                        })
                        .collect(),
                )
            })
    }

    fn stored_doc() -> impl Strategy<Value = Document> {
        prop::collection::vec(
            (
                prop::sample::select(vec!["a", "b", "c", "0"]),
                plain_value(),
            ),
            0..4,
        )
        .prop_map(|kv| {
            let map: serde_json::Map<String, Value> =
                kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            document_from_json(&Value::Object(map)).unwrap_or_default()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]
        #[test]
        fn parse_and_apply_never_panic(spec in update(), doc in stored_doc(), is_insert in any::<bool>()) {
            if let Ok(u) = Update::parse(&spec) {
                let mut d = doc.clone();
                let c = ApplyContext { is_insert, now: bson::DateTime::from_millis(0) };
                if u.apply(&mut d, &c).is_ok() {
                    // The result is a storable document.
                    prop_assert!(d.to_vec().is_ok());
                }
            }
        }

        #[test]
        fn arbitrary_json_never_panics(spec in json_value()) {
            let _ = Update::parse(&spec);
        }
    }
}
