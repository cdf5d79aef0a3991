//! Opening a directory: a second open in the same process with different
//! options, files that are not databases, damaged data files refused before
//! LMDB maps them, and errors that name the path.

use collection_store::{Database, DatabaseOptions, Durability, Error};
use serde_json::json;

fn make(dir: &std::path::Path, docs: i64) {
    let db = Database::open(dir).unwrap();
    let c = db.collection("c").unwrap();
    let batch: Vec<_> = (0..docs)
        .map(|i| json!({"_id": i, "body": format!("document number {i} with some text")}))
        .collect();
    c.insert_many(batch).unwrap();
}

#[test]
fn a_second_open_with_other_options_names_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let ro = {
        make(dir.path(), 1);
        Database::open_with(dir.path(), DatabaseOptions::default().read_only(true)).unwrap()
    };
    match Database::open(dir.path()) {
        Err(Error::AlreadyOpen {
            option,
            open,
            asked,
            ..
        }) => {
            assert_eq!(
                (option, open.as_str(), asked.as_str()),
                ("read_only", "true", "false")
            )
        }
        other => panic!("expected AlreadyOpen, got {other:?}"),
    }
    drop(ro);

    let rw = Database::open(dir.path()).unwrap();
    let err =
        Database::open_with(dir.path(), DatabaseOptions::default().read_only(true)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::AlreadyOpen {
                option: "read_only",
                ..
            }
        ),
        "{err}"
    );
    let err = Database::open_with(
        dir.path(),
        DatabaseOptions::default().durability(Durability::None),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::AlreadyOpen {
                option: "durability",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("durability = Immediate"), "{err}");
    // The same options share the handle.
    let again = Database::open(dir.path()).unwrap();
    again
        .collection("c")
        .unwrap()
        .insert_one(json!({"_id": 9}))
        .unwrap();
    assert_eq!(rw.collection("c").unwrap().count(json!({})).unwrap(), 2);
}

#[test]
fn an_empty_data_file_is_not_a_new_database() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.mdb"), b"").unwrap();
    for read_only in [false, true] {
        let err = Database::open_with(dir.path(), DatabaseOptions::default().read_only(read_only))
            .unwrap_err();
        match &err {
            Error::Corrupt {
                location, message, ..
            } => {
                assert!(location.ends_with("data.mdb"), "{err}");
                assert!(message.contains("empty"), "{err}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
    assert_eq!(
        std::fs::metadata(dir.path().join("data.mdb"))
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn a_truncated_data_file_is_refused_before_it_is_mapped() {
    let dir = tempfile::tempdir().unwrap();
    make(dir.path(), 5000);
    let file = dir.path().join("data.mdb");
    let len = std::fs::metadata(&file).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(len / 2).unwrap();
    let err = Database::open(dir.path()).unwrap_err();
    match &err {
        Error::Corrupt {
            location, message, ..
        } => {
            assert!(location.ends_with("data.mdb"), "{err}");
            assert!(message.contains("truncated"), "{err}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn damage_in_document_pages_is_reported_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    make(dir.path(), 5000);
    let file = dir.path().join("data.mdb");
    let mut bytes = std::fs::read(&file).unwrap();
    assert!(bytes.len() > 400_064);
    for b in &mut bytes[400_000..400_064] {
        *b ^= 0xA5;
    }
    std::fs::write(&file, bytes).unwrap();
    // Either refused at open or listed by verify; never a crash.
    match Database::open(dir.path()) {
        Err(e) => assert!(matches!(e, Error::Corrupt { .. }), "{e}"),
        Ok(db) => {
            let report = db.verify().unwrap();
            assert!(!report.is_ok(), "{report}");
            assert!(
                report.problems[0].contains("B-trees are damaged"),
                "{report}"
            );
            assert!(report.to_string().contains("problems"), "{report}");
        }
    }
}

#[test]
fn a_file_where_a_directory_belongs_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-dir");
    std::fs::write(&path, b"x").unwrap();
    let err = Database::open(&path).unwrap_err();
    assert!(matches!(err, Error::IoAt { .. }), "{err:?}");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
    assert!(err.to_string().contains("not a directory"), "{err}");
    let missing = dir.path().join("missing");
    let err =
        Database::open_with(&missing, DatabaseOptions::default().read_only(true)).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn a_healthy_database_verifies_clean_after_churn() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db.collection("c").unwrap();
    for round in 0..5i64 {
        let batch: Vec<_> = (0..2000)
            .map(|i| json!({"_id": round * 10_000 + i, "v": "y".repeat((i % 7 * 900) as usize)}))
            .collect();
        c.insert_many(batch).unwrap();
        c.delete_many(json!({"_id": {"$lt": round * 10_000 + 1500}}))
            .unwrap();
        let report = db.verify().unwrap();
        assert!(report.is_ok(), "{report}");
        assert!(report.pages > 0);
    }
}
