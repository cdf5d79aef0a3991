//! What survives the engine's JSON API (the route `server/src/engine/` takes
//! until a BSON-native statement API exists). Every loss found is pinned here
//! with its current outcome, so a test fails (and the README list must change)
//! when the engine starts preserving the type.

use bson::spec::BinarySubtype;
use bson::{
    doc, oid::ObjectId, Binary, Bson, DateTime, Decimal128, Document, JavaScriptCodeWithScope,
    Regex, Timestamp,
};
use collection_store_server::engine::{Access, Change, Coll, Engine, Scope};

fn engine() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(&dir.path().join("db")).unwrap();
    (dir, e)
}

fn with<R: Send + 'static>(
    e: &Engine,
    f: impl for<'t> FnOnce(Coll<'t>) -> R + Send + 'static,
) -> R {
    e.with_coll(&Scope::Auto, "t.c", Access::Write, move |c| {
        Ok(f(c.unwrap()))
    })
    .unwrap()
}

/// Stores `{_id: 1, v: value}` and reads `v` back.
fn round_trip(value: Bson) -> Result<Bson, String> {
    let (_d, e) = engine();
    let (n, errs) = with(&e, move |c| {
        c.insert(vec![doc! {"_id": 1, "v": value}], true)
    });
    if n == 0 {
        return Err(errs
            .first()
            .map(|(_, e)| e.message.clone())
            .unwrap_or_default());
    }
    let back = with(&e, |c| c.get(&Bson::Int32(1))).unwrap().unwrap();
    Ok(back.get("v").cloned().unwrap_or(Bson::Null))
}

#[test]
fn types_that_round_trip() {
    let keep = [
        Bson::Int32(-7),
        Bson::Int64(1 << 40),
        Bson::Double(1.0),
        Bson::Double(-0.0),
        Bson::Double(2.5),
        Bson::String("ü".into()),
        Bson::Boolean(true),
        Bson::Null,
        Bson::ObjectId(ObjectId::new()),
        Bson::DateTime(DateTime::from_millis(1_700_000_000_123)),
        Bson::DateTime(DateTime::from_millis(-62_000_000_000_000)), // year 5 BC: {"$date": {"$numberLong"}}
        Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes: vec![0, 1, 2],
        }),
        Bson::Binary(Binary {
            subtype: BinarySubtype::Uuid,
            bytes: vec![7; 16],
        }),
        Bson::Timestamp(Timestamp {
            time: 1,
            increment: 2,
        }),
        Bson::RegularExpression(Regex {
            pattern: "^a".try_into().unwrap(),
            options: "i".try_into().unwrap(),
        }),
        Bson::MinKey,
        Bson::MaxKey,
        Bson::JavaScriptCode("1".into()),
        Bson::Array(vec![
            Bson::Int32(1),
            Bson::Document(doc! {"a": [Bson::Null]}),
        ]),
        Bson::Document(doc! {"z": 1, "a": 2}),
    ];
    for v in keep {
        let back = round_trip(v.clone()).unwrap();
        assert_eq!(back, v, "{v:?} should round-trip");
        if let (Bson::Double(a), Bson::Double(b)) = (&v, &back) {
            assert_eq!(a.to_bits(), b.to_bits(), "sign of zero kept");
        }
        if let (Bson::Document(a), Bson::Document(b)) = (&v, &back) {
            assert_eq!(
                a.keys().collect::<Vec<_>>(),
                b.keys().collect::<Vec<_>>(),
                "field order kept"
            );
        }
    }
}

#[test]
fn losses_through_the_json_route() {
    // 1. int64 values that fit in 32 bits are stored as int64 but read back as int32.
    assert_eq!(round_trip(Bson::Int64(5)).unwrap(), Bson::Int32(5));
    // 2. NaN and ±infinity are stored but read back as null.
    assert_eq!(round_trip(Bson::Double(f64::NAN)).unwrap(), Bson::Null);
    assert_eq!(round_trip(Bson::Double(f64::INFINITY)).unwrap(), Bson::Null);
    // 3. Decimal128: fractional values read back as null, integral ones as plain integers.
    assert_eq!(
        round_trip(Bson::Decimal128("1.5".parse::<Decimal128>().unwrap())).unwrap(),
        Bson::Null
    );
    assert_eq!(
        round_trip(Bson::Decimal128("5".parse::<Decimal128>().unwrap())).unwrap(),
        Bson::Int32(5)
    );
    // 4. Symbols read back as strings, undefined as null.
    assert_eq!(
        round_trip(Bson::Symbol("s".into())).unwrap(),
        Bson::String("s".into())
    );
    assert_eq!(round_trip(Bson::Undefined).unwrap(), Bson::Null);
    // 5. JavaScript code with scope is refused (its Extended JSON has two keys).
    let cws = Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope {
        code: "x".into(),
        scope: doc! {},
    });
    assert!(round_trip(cws).is_err());
    // 6. Field names starting with '$' or containing '.' are refused (MongoDB 5.0+ stores them).
    assert!(round_trip(Bson::Document(doc! {"a.b": 1})).is_err());
    assert!(round_trip(Bson::Document(doc! {"$x": 1})).is_err());
}

#[test]
fn replacement_upserts_get_a_string_id() {
    // 7. An upsert by replacement whose filter names no _id inserts a document
    // with a generated 24-hex-digit *string* _id (operator upserts get an
    // ObjectId, which the server adds through $setOnInsert).
    let (_d, e) = engine();
    let out = with(&e, |c| {
        c.update(
            &doc! {"k": 1},
            &Change::Replacement(doc! {"k": 1, "v": 2}),
            false,
            true,
        )
    })
    .unwrap();
    match out.upserted {
        Some(Bson::String(s)) => assert_eq!(s.len(), 24),
        other => panic!("expected a string id, got {other:?}"),
    }
}

#[test]
fn duplicate_key_errors_carry_pattern_and_value() {
    let (_d, e) = engine();
    let (n, errs) = with(&e, |c| {
        c.insert(
            vec![doc! {"_id": 1}, doc! {"_id": 1}, doc! {"_id": 2}],
            false,
        )
    });
    assert_eq!(n, 2);
    let err = &errs[0].1;
    assert_eq!((errs[0].0, err.code), (1, 11000));
    let extra: &Document = err.extra.as_deref().unwrap();
    assert_eq!(extra.get_document("keyPattern").unwrap(), &doc! {"_id": 1});
    assert_eq!(extra.get_document("keyValue").unwrap(), &doc! {"_id": 1});
}
