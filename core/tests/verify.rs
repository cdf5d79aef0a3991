//! `Database::verify()`'s detectors, one test each: damage is planted behind
//! the engine's back through the raw-storage hook (`collection_store::testing`,
//! not the public API) and must be reported, with a message that names the
//! collection, the index and the document or key involved — and nothing else
//! may be reported.
//!
//! The crash, replication and property tests trust `verify()` to find damage;
//! these tests are what makes that trust earned.

use collection_store::testing::{self, RawTable};
use collection_store::{Database, IndexSpec, VerifyReport};
use serde_json::json;

type Kv = (Vec<u8>, Vec<u8>);

/// A database with collection `c`: documents `_id` 1..=5 with a unique `u`
/// and a non-unique `v`, indexes `u_1` (unique) and `v_1`; and `plain`
/// without secondary indexes, `_id` 1..=3.
fn fixture() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db.collection("c").unwrap();
    c.create_index(IndexSpec::new([("u", 1)]).unique()).unwrap();
    c.create_index(IndexSpec::new([("v", 1)])).unwrap();
    for i in 1..=5 {
        c.insert_one(json!({"_id": i, "u": i * 10, "v": i % 2}))
            .unwrap();
    }
    let plain = db.collection("plain").unwrap();
    for i in 1..=3 {
        plain.insert_one(json!({"_id": i, "x": i})).unwrap();
    }
    let r = db.verify().unwrap();
    assert!(
        r.is_ok(),
        "the fixture is damaged already: {:#?}",
        r.problems
    );
    (dir, db)
}

fn docs(db: &Database, collection: &str) -> Vec<Kv> {
    let prefix = testing::collection_prefix(db, collection).unwrap().unwrap();
    testing::entries(db, RawTable::Docs, &prefix).unwrap()
}

fn index_entries(db: &Database, collection: &str, index: &str) -> Vec<Kv> {
    let prefix = testing::index_prefix(db, collection, index)
        .unwrap()
        .unwrap();
    testing::entries(db, RawTable::Indexes, &prefix).unwrap()
}

fn put(db: &Database, table: RawTable, key: &[u8], value: &[u8]) {
    testing::set(db, table, key, Some(value)).unwrap();
}

fn delete(db: &Database, table: RawTable, key: &[u8]) {
    testing::set(db, table, key, None).unwrap();
}

/// Asserts that `report` lists exactly one problem per entry of `expected`,
/// each containing every one of its substrings.
fn assert_problems(report: &VerifyReport, expected: &[&[&str]]) {
    let mut unmatched: Vec<&String> = report.problems.iter().collect();
    for want in expected {
        let at = unmatched
            .iter()
            .position(|p| want.iter().all(|w| p.contains(w)));
        match at {
            Some(i) => {
                unmatched.remove(i);
            }
            None => panic!(
                "verify did not report a problem containing {want:?}; it reported {:#?}",
                report.problems
            ),
        }
    }
    assert!(
        unmatched.is_empty(),
        "verify reported more than the planted damage: {unmatched:#?} (all: {:#?})",
        report.problems
    );
}

fn verify(db: &Database) -> VerifyReport {
    db.verify().unwrap()
}

#[test]
fn a_healthy_database_verifies_and_is_counted() {
    let (_d, db) = fixture();
    let r = verify(&db);
    assert_eq!(r.collections, 2);
    assert_eq!(r.documents, 8);
    assert_eq!(r.index_entries, 10);
    // Two collections, two indexes, eight inserts.
    assert_eq!(r.log_entries, 12);
    assert!(r.is_ok());
}

#[test]
fn a_missing_index_entry_is_reported_with_its_document() {
    let (_d, db) = fixture();
    let entries = index_entries(&db, "c", "v_1");
    // Entries are in key order: v = 0 (_id 2, 4) first, then v = 1 (_id 1, 3, 5).
    delete(&db, RawTable::Indexes, &entries[0].0);
    assert_problems(
        &verify(&db),
        &[
            &["c:", "index 'v_1'", "lacks 1 entries", "_id 2"],
            &["c:", "index 'v_1'", "counter says 5, found 4"],
        ],
    );
}

#[test]
fn an_index_entry_no_document_produces_is_reported() {
    let (_d, db) = fixture();
    let entries = index_entries(&db, "c", "v_1");
    // The key of (v = 0, _id 2) with the primary key of _id 1, which has v = 1.
    let (k2, pk2) = &entries[0];
    let (_, pk1) = &entries[2];
    let mut stale = k2[..k2.len() - pk2.len()].to_vec();
    stale.extend_from_slice(pk1);
    put(&db, RawTable::Indexes, &stale, pk1);
    assert_problems(
        &verify(&db),
        &[
            &[
                "c:",
                "index 'v_1'",
                "an entry no document produces",
                "pointing to _id 1",
            ],
            &["c:", "index 'v_1'", "counter says 5, found 6"],
        ],
    );
}

#[test]
fn entries_left_behind_by_a_deleted_document_are_reported() {
    let (_d, db) = fixture();
    let d = docs(&db, "c");
    delete(&db, RawTable::Docs, &d[2].0); // _id 3
    assert_problems(
        &verify(&db),
        &[
            &[
                "c:",
                "index 'u_1'",
                "no document produces",
                "no such document",
            ],
            &[
                "c:",
                "index 'v_1'",
                "no document produces",
                "no such document",
            ],
            &["c:", "document counter says 5, found 4"],
        ],
    );
}

#[test]
fn a_wrong_primary_key_in_a_unique_index_entry_is_reported() {
    let (_d, db) = fixture();
    let entries = index_entries(&db, "c", "u_1");
    // u = 10 belongs to _id 1; make its entry point to _id 2.
    let (key, _) = &entries[0];
    let (_, pk2) = &entries[1];
    put(&db, RawTable::Indexes, key, pk2);
    assert_problems(
        &verify(&db),
        &[&["c:", "index 'u_1'", "points to _id 2 but belongs to _id 1"]],
    );
}

#[test]
fn a_wrong_primary_key_in_a_non_unique_index_entry_is_reported() {
    let (_d, db) = fixture();
    let entries = index_entries(&db, "c", "v_1");
    // (v = 0, _id 2) pointing to _id 4 instead.
    let (key, _) = &entries[0];
    let (_, pk4) = &entries[1];
    put(&db, RawTable::Indexes, key, pk4);
    assert_problems(
        &verify(&db),
        &[&["c:", "index 'v_1'", "points to _id 4 but belongs to _id 2"]],
    );
}

#[test]
fn document_counter_drift_is_reported() {
    let (_d, db) = fixture();
    let key = testing::document_counter_key(&db, "plain")
        .unwrap()
        .unwrap();
    put(&db, RawTable::Meta, &key, &7u64.to_be_bytes());
    assert_problems(
        &verify(&db),
        &[&["plain: document counter says 7, found 3"]],
    );
}

#[test]
fn index_counter_drift_is_reported() {
    let (_d, db) = fixture();
    let key = testing::index_counter_key(&db, "c", "u_1")
        .unwrap()
        .unwrap();
    put(&db, RawTable::Meta, &key, &4u64.to_be_bytes());
    assert_problems(&verify(&db), &[&["c: index 'u_1' counter says 4, found 5"]]);
}

#[test]
fn documents_and_entries_under_an_unowned_prefix_are_reported() {
    let (_d, db) = fixture();
    put(&db, RawTable::Docs, &[0, 0, 0, 200, 1, 2], b"x");
    put(&db, RawTable::Docs, &[0, 0, 0, 200, 3], b"y");
    put(&db, RawTable::Indexes, &[0, 0, 1, 44, 9], b"z");
    put(&db, RawTable::Docs, &[7, 7], b"short");
    assert_problems(
        &verify(&db),
        &[
            // One problem per orphaned prefix, naming its first key.
            &[
                "documents under id 200 that no collection or index owns",
                "0000c80102",
            ],
            &[
                "index entries under id 300 that no collection or index owns",
                "0000012c09",
            ],
            &["documents: key 0707 is shorter than its prefix"],
        ],
    );
}

#[test]
fn an_undecodable_document_is_reported_with_its_key() {
    let (_d, db) = fixture();
    let d = docs(&db, "plain");
    put(&db, RawTable::Docs, &d[1].0, &[1, 2, 3]);
    let key_hex: String = d[1].0[4..].iter().map(|b| format!("{b:02x}")).collect();
    assert_problems(
        &verify(&db),
        &[&["plain: undecodable document under key", &key_hex]],
    );
}

#[test]
fn a_document_with_a_malformed_element_is_reported() {
    let (_d, db) = fixture();
    let d = docs(&db, "plain");
    // A well-framed document whose only element has type 0x42 (no such type).
    put(
        &db,
        RawTable::Docs,
        &d[0].0,
        &[8, 0, 0, 0, 0x42, b'a', 0, 0],
    );
    assert_problems(
        &verify(&db),
        &[&["plain: malformed element in document under key"]],
    );
}

#[test]
fn a_document_under_another_documents_key_is_reported() {
    let (_d, db) = fixture();
    let d = docs(&db, "plain");
    // _id 1's bytes under _id 2's key.
    put(&db, RawTable::Docs, &d[1].0, &d[0].1);
    assert_problems(
        &verify(&db),
        &[&[
            "plain: document _id 1 is stored under key",
            "not under its primary key",
        ]],
    );
}

#[test]
fn a_document_without_primary_key_is_reported() {
    let (_d, db) = fixture();
    let d = docs(&db, "plain");
    let doc = bson::rawdoc! {"x": 1};
    put(&db, RawTable::Docs, &d[2].0, doc.as_bytes());
    assert_problems(
        &verify(&db),
        &[&["plain: document without primary key '_id' under key"]],
    );
}

#[test]
fn a_document_an_index_cannot_hold_is_reported() {
    let (_d, db) = fixture();
    let c = db.collection("pairs").unwrap();
    c.create_index(IndexSpec::new([("a", 1), ("b", 1)]))
        .unwrap();
    c.insert_one(json!({"_id": 1, "a": [1, 2], "b": 3}))
        .unwrap();
    let d = docs(&db, "pairs");
    // Parallel arrays: no compound index can hold this document.
    let doc = bson::rawdoc! {"_id": 1, "a": [1, 2], "b": [3, 4]};
    put(&db, RawTable::Docs, &d[0].0, doc.as_bytes());
    assert_problems(
        &verify(&db),
        &[
            &[
                "pairs: index 'a_1_b_1' cannot index document _id 1",
                "parallel arrays",
            ],
            // Its old entries are now produced by no document.
            &["pairs: index 'a_1_b_1' has an entry no document produces"],
            &["pairs: index 'a_1_b_1' has an entry no document produces"],
        ],
    );
}

/// Overwrites `bytes` at `offset` in `path` (damage behind the engine's back).
fn overwrite(path: &std::path::Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, offset).unwrap();
}

#[test]
fn a_gap_in_the_log_is_reported_with_the_missing_lsns() {
    let (_d, db) = fixture();
    // Zero the length of entry 5's record: the segment seems to end there,
    // while the log's bounds say it runs to 12.
    let (path, frame_at) = testing::log_frame(&db, 5).unwrap();
    overwrite(&path, frame_at - 8, &[0, 0, 0, 0]);
    let r = verify(&db);
    assert_eq!(r.log_entries, 4, "entries 1..4 are still read");
    assert_problems(
        &r,
        &[
            &["log:", "5"],
            &["log: entries 5..12 are missing or unreadable"],
        ],
    );
}

#[test]
fn a_corrupt_log_frame_is_reported_with_its_lsn() {
    let (_d, db) = fixture();
    // Flip a byte inside entry 8's checksummed part.
    let (path, frame_at) = testing::log_frame(&db, 8).unwrap();
    let mut b = [0u8; 1];
    {
        use std::os::unix::fs::FileExt;
        std::fs::File::open(&path)
            .unwrap()
            .read_exact_at(&mut b, frame_at + 20)
            .unwrap();
    }
    overwrite(&path, frame_at + 20, &[b[0] ^ 0x01]);
    let r = verify(&db);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("log:") && p.contains('8')),
        "{:#?}",
        r.problems
    );
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("log: entries 8..12 are missing or unreadable")),
        "{:#?}",
        r.problems
    );
}

#[test]
fn entries_left_in_the_format_1_log_table_are_reported() {
    let (_d, db) = fixture();
    put(&db, RawTable::Log, &1u64.to_be_bytes(), b"an old frame");
    assert_problems(
        &verify(&db),
        &[&["log: the format-1 log table still holds entries"]],
    );
}
