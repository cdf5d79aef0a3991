//! Errors carry what a caller needs to act: a full disk is matchable as
//! `Error::NoSpace`, empty field names are refused where they would become
//! unreachable, update type errors read as one sentence.

use collection_store::{Database, Error};
use serde_json::json;

#[test]
fn a_full_disk_is_no_space_not_an_opaque_io_error() {
    let e: Error = std::io::Error::from_raw_os_error(28).into();
    assert!(matches!(e, Error::NoSpace { path: None, .. }), "{e:?}");
    let e: Error = heed::Error::Io(std::io::Error::from_raw_os_error(28)).into();
    assert!(matches!(e, Error::NoSpace { .. }), "{e:?}");
    let e = Error::io_at("/data/x", std::io::Error::from_raw_os_error(28));
    assert!(e.to_string().contains("no space left"), "{e}");
    assert!(e.to_string().contains("/data/x"), "{e}");
    let e: Error = std::io::Error::from_raw_os_error(13).into();
    assert!(matches!(e, Error::Io(_)), "{e:?}");
    let e = Error::io_at("/data/y", std::io::Error::from_raw_os_error(13));
    assert!(
        matches!(&e, Error::IoAt { path, .. } if path.ends_with("y")),
        "{e:?}"
    );
    assert!(matches!(e.clone(), Error::IoAt { .. }));
}

#[test]
fn empty_field_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db.collection("c").unwrap();
    for doc in [json!({"_id": 1, "": 1}), json!({"_id": 2, "a": {"": 1}})] {
        let e = c.insert_one(doc).unwrap_err();
        assert!(matches!(e, Error::InvalidDocument(_)), "{e:?}");
        assert!(e.to_string().contains("empty field name"), "{e}");
    }
    c.insert_one(json!({"_id": 3})).unwrap();
    let e = c
        .update_one(json!({"_id": 3}), json!({"$set": {"a": {"": 1}}}))
        .unwrap_err();
    assert!(e.to_string().contains("empty field name"), "{e}");
    assert_eq!(c.count(json!({})).unwrap(), 1);
}

#[test]
fn inc_on_a_string_reads_as_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db.collection("c").unwrap();
    c.insert_one(json!({"_id": 1, "s": "x"})).unwrap();
    let e = c
        .update_one(json!({"_id": 1}), json!({"$inc": {"s": 1}}))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot apply $inc to field 's': the field holds a value of non-numeric type string (\"x\")"
    );
}

#[test]
fn snapshot_to_a_directory_says_it_wants_a_file_and_the_copy_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("db")).unwrap();
    db.collection("c")
        .unwrap()
        .insert_one(json!({"_id": 1}))
        .unwrap();
    let target = dir.path().join("backup");
    std::fs::create_dir(&target).unwrap();
    let e = db.snapshot_to(&target).unwrap_err();
    assert!(matches!(e, Error::IoAt { .. }), "{e:?}");
    assert!(e.to_string().contains("a snapshot is one file"), "{e}");
    let file = target.join("data.mdb");
    db.snapshot_to(&file).unwrap();
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    let data = std::fs::metadata(dir.path().join("db/data.mdb"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!((mode, data), (0o600, 0o600));
}
