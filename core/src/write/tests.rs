//! The commit loop applied to statements as data: a recorded statement
//! stream gives byte-identical databases wherever it is applied, and change
//! sets whose reads no longer hold are refused with `Error::Conflict`.

use serde_json::json;

use super::commit::{commit_batch, Output, Work};
use super::Engine;
use crate::exec::statement::{Command, Step};
use crate::storage::Table;
use crate::{Database, Error, IndexSpec, UpdateOptions};

const TABLES: [Table; 5] = [
    Table::Meta,
    Table::Catalog,
    Table::Docs,
    Table::Indexes,
    Table::Log,
];

/// The rows of one table.
type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// Every key and value of every table.
fn dump(db: &Database) -> Vec<(Table, Rows)> {
    let store = &db.inner.store;
    let (_g, txn) = store.read().unwrap();
    TABLES
        .iter()
        .map(|t| {
            let rows = store
                .table(*t)
                .iter(&txn)
                .unwrap()
                .map(|r| {
                    let (k, v) = r.unwrap();
                    (k.to_vec(), v.to_vec())
                })
                .collect();
            (*t, rows)
        })
        .collect()
}

fn apply_all(engine: &Engine, commands: &[Command]) {
    for c in commands {
        // Through the encoding, as a replicated log would carry it.
        let c = Command::decode(&c.encode()).unwrap();
        let work = Work::Command(c);
        let mut r = commit_batch(engine, &[&work], None);
        assert!(r.pop().unwrap().is_ok());
    }
}

fn open() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    (dir, db)
}

/// A workload through the public API that generates ids, dates and upsert
/// keys, builds and drops indexes, and runs transactions (single-threaded,
/// so the recorded order is the commit order).
fn workload(db: &Database) {
    let users = db.collection("users").unwrap();
    users
        .create_index(IndexSpec::new([("email", 1)]).unique())
        .unwrap();
    users.create_index(IndexSpec::new([("tags", 1)])).unwrap();
    for i in 0..40 {
        users
            .insert_one(
                json!({"email": format!("u{i}@x"), "n": i, "tags": ["a", format!("t{}", i % 3)]}),
            )
            .unwrap();
    }
    // A failing statement changes nothing and is not recorded.
    assert!(users.insert_one(json!({"email": "u1@x"})).is_err());
    users
        .update_many(
            json!({"n": {"$lt": 10}}),
            json!({"$currentDate": {"seen": true}, "$inc": {"n": 100}}),
        )
        .unwrap();
    users
        .update_one_with(
            json!({"email": "new@x"}),
            json!({"$set": {"n": -1}}),
            UpdateOptions::upsert(),
        )
        .unwrap();
    users
        .replace_one_with(
            json!({"email": "other@x"}),
            json!({"email": "other@x", "r": true}),
            UpdateOptions::upsert(),
        )
        .unwrap();
    users.delete_many(json!({"tags": "t1"})).unwrap();
    db.transaction(|tx| {
        let orders = tx.collection("orders")?;
        orders.insert_many(vec![
            json!({"user": 1}),
            json!({"user": 2, "at": {"$date": "2026-01-01T00:00:00Z"}}),
        ])?;
        let u = tx.collection("users")?;
        assert_eq!(u.count(json!({"n": {"$gte": 100}}))?, 10 - 3);
        u.update_many(
            json!({}),
            json!({"$currentDate": {"touched": {"$type": "timestamp"}}}),
        )?;
        assert!(
            u.insert_one(json!({"email": "u2@x"})).is_err(),
            "undone alone"
        );
        Ok(())
    })
    .unwrap();
    users.drop_index("tags_1").unwrap();
    db.drop_collection("orders").unwrap();
    let again = db.collection("orders").unwrap();
    again.insert_one(json!({"late": true})).unwrap();
}

#[test]
fn a_recorded_statement_stream_gives_byte_identical_databases() {
    let (_a_dir, a) = open();
    workload(&a);
    let recorded = a.inner.recorded.lock().clone();
    assert!(recorded.len() > 40, "{} commands", recorded.len());
    let (_b_dir, b) = open();
    let (_c_dir, c) = open();
    apply_all(&b.inner, &recorded);
    apply_all(&c.inner, &recorded);
    let (da, db_, dc) = (dump(&a), dump(&b), dump(&c));
    for ((t, ra), ((_, rb), (_, rc))) in da.iter().zip(db_.iter().zip(dc.iter())) {
        assert_eq!(ra.len(), rb.len(), "{t:?}: entry counts");
        assert_eq!(
            ra, rb,
            "table {t:?} differs between the original and a replay"
        );
        assert_eq!(rb, rc, "table {t:?} differs between two replays");
    }
    assert!(b.verify().unwrap().is_ok());
}

#[test]
fn replaying_without_fixed_inputs_would_differ() {
    // The control: the same API calls on two databases generate different
    // ids and times, so the identity above comes from fixing them first.
    let (_a_dir, a) = open();
    let (_b_dir, b) = open();
    for db in [&a, &b] {
        db.collection("c")
            .unwrap()
            .insert_one(json!({"x": 1}))
            .unwrap();
    }
    let docs = |db: &Database| dump(db)[2].1.clone();
    assert_ne!(docs(&a), docs(&b));
}

/// A change set taken from a transaction that read `read` (and then wrote a
/// marker document), rolled back.
fn change_set(db: &Database, read: impl Fn(&crate::TxCollection<'_>)) -> Command {
    let tx = db.begin().unwrap();
    let c = tx.collection("c").unwrap();
    read(&c);
    c.insert_one(json!({"_id": "marker"})).unwrap();
    let cs = tx.change_set().unwrap();
    tx.rollback();
    cs
}

fn seeded() -> (tempfile::TempDir, Database) {
    let (dir, db) = open();
    let c = db.collection("c").unwrap();
    c.create_index(IndexSpec::new([("k", 1)])).unwrap();
    c.insert_many((0..20).map(|i| json!({"_id": i, "k": i % 5})).collect())
        .unwrap();
    (dir, db)
}

/// Applies a change set; returns its error, after checking it left nothing.
fn apply_conflicting(db: &Database, cs: Command) -> Error {
    let before = dump(db);
    let work = Work::Command(cs);
    let err = commit_batch(&db.inner, &[&work], None)
        .pop()
        .unwrap()
        .unwrap_err();
    assert_eq!(dump(db), before, "a refused change set applies nothing");
    err
}

fn reads_of(cs: &Command) -> usize {
    cs.steps
        .iter()
        .filter(|s| matches!(s, Step::Read(_)))
        .count()
}

#[test]
fn a_change_set_applies_when_nothing_it_read_changed() {
    let (_d, db) = seeded();
    let cs = change_set(&db, |c| {
        assert_eq!(c.get(json!(3)).unwrap().unwrap()["k"], 3);
        assert_eq!(c.find(json!({"k": 2})).to_vec().unwrap().len(), 4);
        assert_eq!(c.count(json!({})).unwrap(), 20);
    });
    assert!(reads_of(&cs) >= 3, "{cs:?}");
    // An unrelated write does not conflict.
    db.collection("other")
        .unwrap()
        .insert_one(json!({"_id": 1}))
        .unwrap();
    let work = Work::Command(cs);
    let out = commit_batch(&db.inner, &[&work], None)
        .pop()
        .unwrap()
        .unwrap();
    assert!(matches!(out.0, Output::Statements(_)));
    assert!(db
        .collection("c")
        .unwrap()
        .get(json!("marker"))
        .unwrap()
        .is_some());
}

#[test]
fn a_changed_document_read_by_key_is_a_conflict() {
    let (_d, db) = seeded();
    let cs = change_set(&db, |c| {
        c.get(json!(3)).unwrap();
    });
    db.collection("c")
        .unwrap()
        .update_one(json!({"_id": 3}), json!({"$set": {"v": 1}}))
        .unwrap();
    assert!(matches!(apply_conflicting(&db, cs), Error::Conflict(_)));
}

#[test]
fn a_document_that_appeared_where_none_was_read_is_a_conflict() {
    let (_d, db) = seeded();
    let cs = change_set(&db, |c| {
        assert!(c.get(json!(99)).unwrap().is_none());
    });
    db.collection("c")
        .unwrap()
        .insert_one(json!({"_id": 99}))
        .unwrap();
    assert!(matches!(apply_conflicting(&db, cs), Error::Conflict(_)));
}

#[test]
fn an_insert_into_a_scanned_index_range_is_a_conflict() {
    let (_d, db) = seeded();
    let cs = change_set(&db, |c| {
        let e = c
            .find(json!({"k": {"$gte": 1, "$lt": 3}}))
            .explain()
            .unwrap();
        assert_eq!(e.index.as_deref(), Some("k_1"));
        c.find(json!({"k": {"$gte": 1, "$lt": 3}}))
            .to_vec()
            .unwrap();
    });
    db.collection("c")
        .unwrap()
        .insert_one(json!({"_id": 50, "k": 2}))
        .unwrap();
    assert!(matches!(apply_conflicting(&db, cs), Error::Conflict(_)));
}

#[test]
fn a_change_outside_a_scanned_range_is_not_a_conflict() {
    let (_d, db) = seeded();
    let cs = change_set(&db, |c| {
        c.find(json!({"k": {"$gte": 1, "$lt": 3}}))
            .to_vec()
            .unwrap();
    });
    db.collection("c")
        .unwrap()
        .insert_one(json!({"_id": 50, "k": 4}))
        .unwrap();
    let work = Work::Command(cs);
    assert!(commit_batch(&db.inner, &[&work], None)
        .pop()
        .unwrap()
        .is_ok());
}

#[test]
fn a_changed_document_in_a_collection_scan_is_a_conflict() {
    let (_d, db) = seeded();
    let cs = change_set(&db, |c| {
        c.find(json!({"unindexed": {"$exists": false}}))
            .limit(5)
            .to_vec()
            .unwrap();
    });
    // Inside the part the scan walked (it stopped after five documents).
    db.collection("c")
        .unwrap()
        .delete_one(json!({"_id": 2}))
        .unwrap();
    assert!(matches!(apply_conflicting(&db, cs), Error::Conflict(_)));
}

#[test]
fn a_write_beyond_where_a_limited_scan_stopped_is_not_a_conflict() {
    let (_d, db) = seeded();
    let cs = change_set(&db, |c| {
        c.find(json!({})).limit(5).to_vec().unwrap();
    });
    db.collection("c")
        .unwrap()
        .delete_one(json!({"_id": 19}))
        .unwrap();
    let work = Work::Command(cs);
    assert!(commit_batch(&db.inner, &[&work], None)
        .pop()
        .unwrap()
        .is_ok());
}

#[test]
fn a_changed_count_is_a_conflict() {
    let (_d, db) = seeded();
    let cs = change_set(&db, |c| {
        assert_eq!(c.count(json!({})).unwrap(), 20);
    });
    db.collection("c")
        .unwrap()
        .insert_one(json!({"_id": 77}))
        .unwrap();
    assert!(matches!(apply_conflicting(&db, cs), Error::Conflict(_)));
}

#[test]
fn a_covered_count_over_a_changed_range_is_a_conflict() {
    let (_d, db) = seeded();
    let cs = change_set(&db, |c| {
        assert!(c.explain_count(json!({"k": 1})).unwrap().covered);
        assert_eq!(c.count(json!({"k": 1})).unwrap(), 4);
    });
    db.collection("c")
        .unwrap()
        .insert_one(json!({"_id": 77, "k": 1}))
        .unwrap();
    assert!(matches!(apply_conflicting(&db, cs), Error::Conflict(_)));
}

#[test]
fn a_statement_with_a_different_effect_is_a_conflict() {
    let (_d, db) = seeded();
    let tx = db.begin().unwrap();
    let c = tx.collection("c").unwrap();
    let r = c
        .update_many(json!({"k": 0}), json!({"$set": {"seen": true}}))
        .unwrap();
    assert_eq!(r.matched_count, 4);
    let cs = tx.change_set().unwrap();
    tx.rollback();
    // One more document now matches: the statement would do something the
    // transaction never saw.
    db.collection("c")
        .unwrap()
        .insert_one(json!({"_id": 60, "k": 0}))
        .unwrap();
    let err = apply_conflicting(&db, cs);
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("different effect")),
        "{err:?}"
    );
}

#[test]
fn a_collection_that_appeared_after_it_was_read_as_missing_is_a_conflict() {
    use crate::exec::readset::ReadCheck;
    let (_d, db) = open();
    let cs = Command {
        time_ms: 0,
        steps: vec![Step::Read(ReadCheck::NoCollection {
            collection: "c".into(),
        })],
    };
    let work = Work::Command(cs.clone());
    assert!(commit_batch(&db.inner, &[&work], None)
        .pop()
        .unwrap()
        .is_ok());
    db.collection("c").unwrap();
    assert!(matches!(apply_conflicting(&db, cs), Error::Conflict(_)));
}

#[test]
fn errors_of_a_failed_batch_reach_every_member_with_their_kind() {
    let e = Error::Storage(heed::Error::Mdb(heed::MdbError::MapFull));
    assert!(crate::storage::is_map_full(&e.clone()));
    let io = Error::Io(std::io::Error::from_raw_os_error(28));
    match io.clone() {
        Error::Io(e) => assert_eq!(e.raw_os_error(), Some(28)),
        other => panic!("{other:?}"),
    }
    let dup = Error::DuplicateKey {
        index: "a_1".into(),
        key: "{}".into(),
    };
    assert_eq!(dup.clone().to_string(), dup.to_string());
}

#[test]
fn outcomes_decode_the_same_way_they_were_seen() {
    let (_d, db) = seeded();
    let tx = db.begin().unwrap();
    let c = tx.collection("c").unwrap();
    c.update_one_with(
        json!({"_id": "new"}),
        json!({"$set": {"k": 9}}),
        UpdateOptions::upsert(),
    )
    .unwrap();
    let cs = tx.change_set().unwrap();
    tx.rollback();
    let decoded = Command::decode(&cs.encode()).unwrap();
    assert_eq!(decoded, cs);
}
