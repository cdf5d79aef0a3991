//! Opening a typed collection reconciles its stored indexes with the schema:
//! missing indexes are built (with progress), changed ones rebuilt, undeclared
//! ones kept (warned) or dropped by policy; the schema version is recorded.

use std::sync::{Arc, Mutex};

use collection_store::typed::{plan_sync, IndexChange, SyncPlan};
use collection_store::{CollectionOptions, Database, Error, IndexSpec, SchemaSync, TypedOptions};
use serde_json::json;

mod v1 {
    use collection_store::Document;
    use serde::{Deserialize, Serialize};

    #[derive(Document, Serialize, Deserialize, Debug, Clone, PartialEq)]
    #[document(collection = "people")]
    #[document(index(fields(city, age desc), name = "city_age"))]
    pub struct Person {
        #[document(id)]
        #[serde(rename = "_id")]
        pub id: u32,
        #[document(index)]
        pub name: String,
        pub city: String,
        pub age: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub email: Option<String>,
    }
}

/// Version 2: `name_1` becomes unique (a changed spec), `city_age` is no longer
/// declared, and a sparse unique index on `email` is new.
mod v2 {
    use collection_store::Document;
    use serde::{Deserialize, Serialize};

    #[derive(Document, Serialize, Deserialize, Debug, Clone, PartialEq)]
    #[document(collection = "people", version = 2)]
    pub struct Person {
        #[document(id)]
        #[serde(rename = "_id")]
        pub id: u32,
        #[document(index(unique))]
        pub name: String,
        pub city: String,
        pub age: u32,
        #[document(index(unique, sparse))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub email: Option<String>,
    }
}

/// Version 3: the `city_age` definition comes back under another name.
mod v3 {
    use collection_store::Document;
    use serde::{Deserialize, Serialize};

    #[derive(Document, Serialize, Deserialize, Debug, Clone, PartialEq)]
    #[document(collection = "people", version = 3)]
    #[document(index(fields(city, age desc), name = "by_city_age"))]
    pub struct Person {
        #[document(id)]
        #[serde(rename = "_id")]
        pub id: u32,
        #[document(index(unique))]
        pub name: String,
        pub city: String,
        pub age: u32,
        #[document(index(unique, sparse))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub email: Option<String>,
    }
}

fn open() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    (dir, db)
}

fn names(db: &Database) -> Vec<String> {
    let mut v: Vec<String> = db
        .collection("people")
        .unwrap()
        .list_indexes()
        .unwrap()
        .iter()
        .map(IndexSpec::index_name)
        .collect();
    v.sort();
    v
}

fn person(id: u32, name: &str) -> v1::Person {
    v1::Person {
        id,
        name: name.into(),
        city: ["Oslo", "Lima"][id as usize % 2].into(),
        age: 20 + id,
        email: None,
    }
}

#[test]
fn fresh_open_builds_declared_indexes_and_records_the_version() {
    let (_d, db) = open();
    let people = db.typed::<v1::Person>().unwrap();
    let r = people.sync_report();
    assert_eq!(r.created, ["city_age", "name_1"]);
    assert!(r.rebuilt.is_empty() && r.dropped.is_empty() && r.kept_unknown.is_empty());
    assert_eq!((r.previous_version, r.version), (None, Some(1)));
    let stored = people.raw().list_indexes().unwrap();
    assert_eq!(
        stored,
        vec![
            IndexSpec::new([("city", 1), ("age", -1)]).name("city_age"),
            IndexSpec::new([("name", 1)]).name("name_1"),
        ]
    );
    // The planner uses them.
    people.insert_one(&person(1, "a")).unwrap();
    let ex = people
        .explain(v1::Person::fields().city().eq("Lima"))
        .unwrap();
    assert_eq!(ex.index.as_deref(), Some("city_age"), "{ex:?}");

    // Opening again changes nothing.
    let again = db.typed::<v1::Person>().unwrap();
    let r = again.sync_report();
    assert!(r.unchanged() && !r.skipped, "{r:?}");
    assert_eq!((r.previous_version, r.version), (Some(1), Some(1)));
}

#[test]
fn schema_changes_add_rebuild_and_keep_or_drop_unknown() {
    let (_d, db) = open();
    let people = db.typed::<v1::Person>().unwrap();
    people
        .insert_many(
            &(1..=50)
                .map(|i| person(i, &format!("p{i}")))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let progress = Arc::new(Mutex::new(Vec::new()));
    let seen = progress.clone();
    let people2 = db
        .typed_with::<v2::Person>(TypedOptions::new().on_progress(move |ix, done, total| {
            seen.lock().unwrap().push((ix.to_owned(), done, total))
        }))
        .unwrap();
    let r = people2.sync_report();
    assert_eq!(r.rebuilt, ["name_1"]);
    assert_eq!(r.created, ["email_1"]);
    assert_eq!(r.kept_unknown, ["city_age"]);
    assert!(r.dropped.is_empty());
    assert_eq!((r.previous_version, r.version), (Some(1), Some(2)));
    assert_eq!(names(&db), ["city_age", "email_1", "name_1"]);
    let specs = people2.raw().list_indexes().unwrap();
    assert!(specs.iter().any(|s| s.index_name() == "name_1" && s.unique));
    let p = progress.lock().unwrap();
    for ix in ["name_1", "email_1"] {
        let last = p.iter().rev().find(|(n, _, _)| n == ix).unwrap();
        assert_eq!((last.1, last.2), (50, 50), "{ix}: {p:?}");
        assert!(p.iter().any(|(n, done, _)| n == ix && *done == 0), "{ix}");
    }
    drop(p);
    // The rebuilt unique index is enforced.
    let err = people2
        .insert_one(&v2::Person {
            id: 99,
            name: "p1".into(),
            city: "Oslo".into(),
            age: 1,
            email: None,
        })
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateKey { .. }), "{err}");

    // Keep is the default on every open; DropUnknown removes the stray index.
    let r = db.typed::<v2::Person>().unwrap().sync_report().clone();
    assert!(r.unchanged());
    assert_eq!(r.kept_unknown, ["city_age"]);
    let r = db
        .typed_with::<v2::Person>(TypedOptions::new().sync(SchemaSync::DropUnknown))
        .unwrap()
        .sync_report()
        .clone();
    assert_eq!(r.dropped, ["city_age"]);
    assert_eq!(names(&db), ["email_1", "name_1"]);
    assert_eq!(
        people2.count(v2::Person::fields().age().gt(40)).unwrap(),
        30
    );
}

#[test]
fn an_undeclared_index_with_a_declared_definition_is_renamed() {
    let (_d, db) = open();
    db.typed::<v1::Person>().unwrap();
    // v3 declares city_age's definition as by_city_age: rebuilt under the new name.
    let r = db.typed::<v3::Person>().unwrap().sync_report().clone();
    assert_eq!(r.rebuilt, ["by_city_age", "name_1"]);
    assert_eq!(r.created, ["email_1"]);
    assert!(r.kept_unknown.is_empty());
    assert_eq!(names(&db), ["by_city_age", "email_1", "name_1"]);
}

#[test]
fn an_older_schema_leaves_a_newer_collection_alone() {
    let (_d, db) = open();
    db.typed::<v2::Person>().unwrap();
    let before = names(&db);
    let old = db.typed::<v1::Person>().unwrap();
    let r = old.sync_report();
    assert!(r.skipped && r.unchanged(), "{r:?}");
    assert_eq!(r.previous_version, Some(2));
    assert_eq!(names(&db), before);
    // Statements still work.
    old.insert_one(&person(1, "x")).unwrap();
    assert_eq!(old.get(&1).unwrap(), Some(person(1, "x")));
}

#[test]
fn a_failing_build_changes_nothing() {
    let (_d, db) = open();
    let people = db.typed::<v1::Person>().unwrap();
    people
        .insert_many(&[person(1, "same"), person(2, "same")])
        .unwrap();
    let before = people.raw().list_indexes().unwrap();
    let err = db.typed::<v2::Person>().unwrap_err();
    assert!(matches!(err, Error::DuplicateKey { .. }), "{err}");
    assert_eq!(people.raw().list_indexes().unwrap(), before);
    let r = db.typed::<v1::Person>().unwrap().sync_report().clone();
    assert_eq!(r.previous_version, Some(1), "version not recorded");
    assert!(r.unchanged());
}

#[test]
fn reconciliation_inside_a_transaction_is_part_of_it() {
    let (_d, db) = open();
    let tx = db.begin().unwrap();
    let people = tx.typed::<v1::Person>().unwrap();
    assert_eq!(people.sync_report().created, ["city_age", "name_1"]);
    people.insert_one(&person(1, "a")).unwrap();
    tx.rollback();
    assert!(db.list_collections().unwrap().is_empty());

    db.transaction(|tx| {
        let people = tx.typed::<v1::Person>()?;
        people.insert_one(&person(1, "a"))?;
        Ok(())
    })
    .unwrap();
    assert_eq!(names(&db), ["city_age", "name_1"]);
    let r = db.typed::<v1::Person>().unwrap().sync_report().clone();
    assert!(r.unchanged());
    assert_eq!(r.previous_version, Some(1));
}

#[test]
fn sync_off_and_id_field_mismatch() {
    let (_d, db) = open();
    let people = db
        .typed_with::<v1::Person>(TypedOptions::new().sync(SchemaSync::Off))
        .unwrap();
    assert!(people.sync_report().skipped);
    assert!(names(&db).is_empty());
    people.insert_one(&person(1, "a")).unwrap();
    assert_eq!(people.get(&1).unwrap(), Some(person(1, "a")));

    // A collection created untyped with another primary key field is refused.
    let (_d2, db2) = open();
    db2.collection_with("people", CollectionOptions::with_id_field("key"))
        .unwrap();
    let err = db2.typed::<v1::Person>().unwrap_err();
    assert!(
        matches!(err, Error::CollectionOptionsMismatch { .. }),
        "{err}"
    );
}

#[test]
fn plan_sync_compares_definitions() {
    let a = IndexSpec::new([("a", 1)]);
    let b_unique = IndexSpec::new([("b", 1)]).unique();
    let stored = vec![
        IndexSpec::new([("a", 1)]).name("a_1"),
        IndexSpec::new([("b", 1)]).name("b_1"),
        IndexSpec::new([("c", 1)])
            .partial(json!({"x": 1}))
            .name("c_1"),
    ];
    let plan = plan_sync(
        &[a.clone(), b_unique.clone()],
        &stored,
        SchemaSync::KeepUnknown,
    )
    .unwrap();
    assert_eq!(
        plan,
        SyncPlan {
            changes: vec![IndexChange::Rebuild {
                old: "b_1".into(),
                new: b_unique.clone()
            }],
            kept_unknown: vec!["c_1".into()],
        }
    );
    let plan = plan_sync(std::slice::from_ref(&a), &stored, SchemaSync::DropUnknown).unwrap();
    assert_eq!(
        plan.changes,
        vec![
            IndexChange::Drop("b_1".into()),
            IndexChange::Drop("c_1".into())
        ]
    );
    // A changed partial filter is a changed definition.
    let c2 = IndexSpec::new([("c", 1)]).partial(json!({"x": 2}));
    let plan = plan_sync(
        std::slice::from_ref(&c2),
        &stored[2..],
        SchemaSync::KeepUnknown,
    )
    .unwrap();
    assert_eq!(
        plan.changes,
        vec![IndexChange::Rebuild {
            old: "c_1".into(),
            new: c2
        }]
    );
    assert_eq!(
        plan_sync(std::slice::from_ref(&a), &stored, SchemaSync::Off).unwrap(),
        SyncPlan::default()
    );
    let err = plan_sync(&[a.clone(), a], &[], SchemaSync::KeepUnknown).unwrap_err();
    assert!(matches!(err, Error::InvalidIndex(_)), "{err}");
}
