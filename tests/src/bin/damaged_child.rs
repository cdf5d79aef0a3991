//! Opens each damaged database directory named on the command line, in this
//! one process, and prints one JSON line per image: `{"start": i}` before
//! touching it, then `{"image": i, "outcome": ...}` with `open-error`,
//! `verify-error`, `problems` (verify listed damage) or `clean` (verified
//! clean; then every document was read too). The parent
//! (`tests/damaged_files.rs`) fails if this process dies before the last line.

use collection_store::{Database, DatabaseOptions};
use collection_store_tests::{emit, error_kind};
use serde_json::{json, Value};

fn outcome(dir: &str, read_only: bool) -> Value {
    let opts = DatabaseOptions::default()
        .read_only(read_only)
        .log_segment_size(1 << 20);
    let db = match Database::open_with(dir, opts) {
        Ok(db) => db,
        Err(e) => {
            return json!({"outcome": "open-error", "kind": error_kind(&e), "message": e.to_string()})
        }
    };
    match db.verify() {
        Err(e) => {
            json!({"outcome": "verify-error", "kind": error_kind(&e), "message": e.to_string()})
        }
        Ok(r) if !r.is_ok() => json!({"outcome": "problems", "first": r.problems[0]}),
        Ok(_) => {
            let mut read = 0usize;
            let names = db.list_collections().unwrap_or_default();
            for name in names {
                if let Ok(c) = db.collection(&name) {
                    match c.find(json!({})).to_vec() {
                        Ok(v) => read += v.len(),
                        Err(e) => {
                            return json!({"outcome": "read-error", "kind": error_kind(&e), "message": e.to_string()})
                        }
                    }
                }
            }
            json!({"outcome": "clean", "documents": read})
        }
    }
}

fn main() {
    let read_only = std::env::var_os("CS_DAMAGE_READ_ONLY").is_some();
    for (i, dir) in std::env::args().skip(1).enumerate() {
        emit(&json!({"start": i}));
        let mut line = outcome(&dir, read_only);
        line["image"] = json!(i);
        emit(&line);
    }
}
