//! Statements and commands round-trip through their encoding (directly and
//! through serde formats), and bytes that are not an encoding are typed
//! errors.

use bson::{doc, Bson, Document};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::readset::{RangeEnd, ReadCheck};
use super::statement::{Command, Outcome, Parsed, Statement, Step};
use super::write::{UpdateMode, UpdateResult};
use crate::catalog::CollectionOptions;
use crate::index::IndexSpec;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn arb_name() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["users", "orders", "a.b", "ünïcode"]).prop_map(str::to_owned)
}

fn arb_options() -> impl Strategy<Value = CollectionOptions> {
    prop::sample::select(vec!["_id", "id"]).prop_map(CollectionOptions::with_id_field)
}

fn arb_bson() -> impl Strategy<Value = Bson> {
    let leaf = prop_oneof![
        any::<i32>().prop_map(Bson::Int32),
        any::<i64>().prop_map(Bson::Int64),
        any::<f64>()
            .prop_filter("NaN compares unequal", |f| !f.is_nan())
            .prop_map(Bson::Double),
        "[a-z]{0,8}".prop_map(Bson::String),
        any::<bool>().prop_map(Bson::Boolean),
        Just(Bson::Null),
        any::<i64>().prop_map(|ms| Bson::DateTime(bson::DateTime::from_millis(ms))),
        any::<[u8; 12]>().prop_map(|b| Bson::ObjectId(bson::oid::ObjectId::from_bytes(b))),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(|bytes| {
            Bson::Binary(bson::Binary {
                subtype: bson::spec::BinarySubtype::Generic,
                bytes,
            })
        }),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Bson::Array),
            prop::collection::vec(("[a-z]{1,4}", inner), 0..4)
                .prop_map(|kv| Bson::Document(kv.into_iter().collect())),
        ]
    })
}

fn arb_document(id_field: String) -> impl Strategy<Value = Document> {
    (
        prop_oneof![
            any::<i32>().prop_map(Bson::Int32),
            "[a-z]{1,6}".prop_map(Bson::String)
        ],
        prop::collection::vec(("[a-z]{1,4}", arb_bson()), 0..4),
    )
        .prop_map(move |(id, fields)| {
            let mut d = Document::new();
            d.insert(id_field.clone(), id);
            for (k, v) in fields {
                if k != id_field {
                    d.insert(k, v);
                }
            }
            d
        })
}

fn arb_filter() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({})),
        any::<i32>().prop_map(|n| json!({"n": {"$gt": n}})),
        "[a-z]{0,5}".prop_map(|s| json!({"s": s, "t": {"$exists": true}})),
        (any::<i32>(), any::<i32>())
            .prop_map(|(a, b)| json!({"$or": [{"n": a}, {"m": {"$in": [b, "x"]}}]})),
        Just(json!({"d": {"$gte": {"$date": "2024-01-01T00:00:00Z"}}})),
        Just(json!({"big": 18446744073709551615u64, "f": 0.1})),
    ]
}

fn arb_update() -> impl Strategy<Value = (Value, bool)> {
    prop_oneof![
        any::<i32>().prop_map(|n| (json!({"$set": {"n": n, "a.b": [1, 2]}}), false)),
        Just((
            json!({"$inc": {"n": 1}, "$currentDate": {"t": true}}),
            false
        )),
        Just((
            json!({"$push": {"arr": {"$each": [1, 2], "$slice": -3}}}),
            false
        )),
        "[a-z]{0,5}".prop_map(|s| (json!({"s": s, "n": 1.5}), true)),
        Just((json!({}), true)),
    ]
}

fn arb_statement() -> impl Strategy<Value = Statement> {
    let insert = (arb_name(), arb_options()).prop_flat_map(|(collection, options)| {
        prop::collection::vec(arb_document(options.id_field.clone()), 0..4).prop_map(
            move |documents| Statement::Insert {
                collection: collection.clone(),
                options: options.clone(),
                documents,
            },
        )
    });
    let update = (
        arb_name(),
        arb_options(),
        arb_filter(),
        arb_update(),
        any::<bool>(),
        prop::option::of("[0-9a-f]{24}"),
        any::<i64>(),
    )
        .prop_map(
            |(collection, options, f, (u, replace), multi, upsert, ms)| Statement::Update {
                collection,
                options,
                filter: Parsed::filter(f).unwrap(),
                update: if replace {
                    Parsed::replacement(u).unwrap()
                } else {
                    Parsed::operators(u, "update").unwrap()
                },
                mode: UpdateMode {
                    multi,
                    upsert: upsert.map(Bson::String),
                    now: bson::DateTime::from_millis(ms),
                },
            },
        );
    let delete = (arb_name(), arb_filter(), any::<bool>()).prop_map(|(collection, f, multi)| {
        Statement::Delete {
            collection,
            filter: Parsed::filter(f).unwrap(),
            multi,
        }
    });
    let ddl = (arb_name(), arb_options(), 0u8..6, any::<u32>()).prop_map(
        |(collection, options, kind, n)| match kind {
            0 => Statement::CreateCollection {
                collection,
                options,
            },
            1 => Statement::DropCollection { collection },
            2 => Statement::CreateIndex {
                collection,
                options,
                spec: IndexSpec::new([("n", 1), ("s", -1)]).unique(),
            },
            3 => Statement::CreateIndex {
                collection,
                options,
                spec: IndexSpec::new([("d", 1)])
                    .sparse()
                    .partial(json!({"n": {"$gt": 5}}))
                    .name("by_d"),
            },
            4 => Statement::DropIndex {
                collection,
                options,
                name: format!("ix{n}"),
            },
            _ => Statement::SchemaVersion {
                collection,
                version: n,
            },
        },
    );
    prop_oneof![insert, update, delete, ddl]
}

fn arb_outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        any::<u32>().prop_map(|n| Outcome::Inserted(n.into())),
        (any::<u32>(), any::<u32>(), any::<bool>()).prop_map(|(m, x, up)| {
            Outcome::Updated(UpdateResult {
                matched_count: m.into(),
                modified_count: x.into(),
                upserted_id: up.then(|| json!({"$oid": "65f0a1b2c3d4e5f601234567"})),
            })
        }),
        any::<u32>().prop_map(|n| Outcome::Deleted(n.into())),
        any::<bool>().prop_map(Outcome::Created),
        any::<bool>().prop_map(Outcome::Dropped),
        Just(Outcome::Done),
    ]
}

fn arb_check() -> impl Strategy<Value = ReadCheck> {
    let bytes = || prop::collection::vec(any::<u8>(), 0..12);
    prop_oneof![
        (arb_name(), bytes(), prop::option::of(any::<[u8; 16]>())).prop_map(
            |(collection, key, digest)| ReadCheck::Doc {
                collection,
                key,
                digest,
            }
        ),
        (
            arb_name(),
            prop::option::of("[a-z_0-9]{1,8}"),
            bytes(),
            prop_oneof![
                Just(RangeEnd::Unbounded),
                bytes().prop_map(RangeEnd::Excluded),
                bytes().prop_map(RangeEnd::Included),
            ],
            any::<bool>(),
            any::<[u8; 16]>(),
            any::<u32>(),
        )
            .prop_map(|(collection, index, lo, hi, reverse, digest, count)| {
                ReadCheck::Range {
                    collection,
                    index,
                    lo,
                    hi,
                    reverse,
                    digest,
                    count: count.into(),
                }
            }),
        (arb_name(), any::<u32>()).prop_map(|(collection, n)| ReadCheck::Count {
            collection,
            n: n.into()
        }),
        arb_name().prop_map(|collection| ReadCheck::NoCollection { collection }),
    ]
}

fn arb_command() -> impl Strategy<Value = Command> {
    let step = prop_oneof![
        3 => (arb_statement(), prop::option::of(arb_outcome()))
            .prop_map(|(statement, expect)| Step::Statement { statement, expect }),
        1 => arb_check().prop_map(Step::Read),
    ];
    (any::<i64>(), prop::collection::vec(step, 0..6))
        .prop_map(|(time_ms, steps)| Command { time_ms, steps })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn commands_round_trip_through_their_encoding(cmd in arb_command()) {
        let bytes = cmd.encode();
        let back = Command::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &cmd);
        // The same bytes again: the encoding is deterministic.
        prop_assert_eq!(back.encode(), bytes);
    }

    #[test]
    fn commands_round_trip_through_serde_formats(cmd in arb_command()) {
        let json = serde_json::to_vec(&cmd).unwrap();
        prop_assert_eq!(&serde_json::from_slice::<Command>(&json).unwrap(), &cmd);
        let wrapped = bson::serialize_to_vec(&doc! {"c": bson::serialize_to_bson(&cmd).unwrap()}).unwrap();
        let doc: Document = bson::deserialize_from_slice(&wrapped).unwrap();
        let back: Command = bson::deserialize_from_bson(doc.get("c").unwrap().clone()).unwrap();
        prop_assert_eq!(&back, &cmd);
    }

    #[test]
    fn arbitrary_bytes_never_decode_into_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Command::decode(&bytes);
    }

    #[test]
    fn damaged_encodings_are_typed_errors(cmd in arb_command(), at in any::<prop::sample::Index>(), flip in 1u8..) {
        let mut bytes = cmd.encode();
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        match Command::decode(&bytes) {
            Ok(_) | Err(crate::Error::Corrupt { .. }) => {}
            Err(e) => {
                // A damaged filter or update is reported by its parser.
                prop_assert!(matches!(
                    e,
                    crate::Error::InvalidFilter(_)
                        | crate::Error::InvalidUpdate(_)
                        | crate::Error::InvalidRegex { .. }
                        | crate::Error::InvalidIndex(_)
                        | crate::Error::InvalidCollection(_)
                        | crate::Error::InvalidDocument(_)
                ), "{e:?}");
            }
        }
    }
}

#[test]
fn a_statement_from_another_version_is_refused() {
    let st = Statement::DropCollection {
        collection: "c".into(),
    };
    let mut d = st.to_document();
    d.insert("v", 2);
    assert!(matches!(
        Statement::from_document(&d),
        Err(crate::Error::Corrupt { .. })
    ));
}
