//! Secondary indexes: which query shapes use them (checked through explain),
//! sort by index with early stop, covered counts, the index kinds (unique,
//! sparse, partial, multikey) against MongoDB's documented behaviour, unique
//! violations inside transactions, the index lifecycle (build with progress,
//! drop, list, persistence across reopen, validation) and index maintenance
//! under updates and deletes.
//!
//! Correctness is checked against a "twin": an identical collection without
//! secondary indexes, whose answers come from a plain collection scan and the
//! matcher. An index must change how a query runs, never what it returns.
//! The twin's answers are in turn checked against the independent reference
//! model of `common/reference.rs` (no code shared with the engine's matcher).

//!
//! The files of this test split it by concern; the fixtures below are shared.
//! The concerns whose tests only query and write (shapes, sorts, counts, index
//! kinds, maintenance) run on every front end (see `common/front.rs`):
//! `Collection`, `TxCollection`, `AsyncCollection`, and a database rebuilt
//! from the change log.

#[path = "../common/mod.rs"]
mod common;

mod counts;
mod kinds;
mod lifecycle;
mod maintenance;
mod shapes;
mod sort;
mod transactions;

use collection_store::{Database, Error, Explain, IndexSpec};
use common::front::{Db, Front, C};
use common::reference;
use serde_json::{json, Value};
use tempfile::TempDir;

fn open() -> (TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    (dir, db)
}

/// A person: `age` cycles 0..100 (20 people per age among 2,000), `city` is
/// independent of `age`, `name` is unique and sorts like `_id`, `score` takes
/// every value 0..1000 twice among 2,000.
fn person(i: i64) -> Value {
    json!({
        "_id": i,
        "age": i % 100,
        "city": format!("c{}", (i / 7) % 5),
        "name": format!("p{i:05}"),
        "score": (i * 37) % 1000,
    })
}

fn people(n: i64) -> Vec<Value> {
    (0..n).map(person).collect()
}

fn ids(docs: &[Value]) -> Vec<Value> {
    docs.iter().map(|d| d["_id"].clone()).collect()
}

fn field(docs: &[Value], name: &str) -> Vec<Value> {
    docs.iter().map(|d| d[name].clone()).collect()
}

fn count_where(docs: &[Value], pred: impl Fn(&Value) -> bool) -> u64 {
    docs.iter().filter(|d| pred(d)).count() as u64
}

fn age_of(d: &Value) -> Option<i64> {
    d["age"].as_i64()
}

fn no_duplicate_ids(docs: &[Value]) -> bool {
    let mut v: Vec<String> = docs.iter().map(|d| d["_id"].to_string()).collect();
    let n = v.len();
    v.sort();
    v.dedup();
    v.len() == n
}

/// An indexed collection and an identical unindexed one; the unindexed
/// answers are also checked against the independent reference model
/// (`common/reference.rs`) whenever the filter is inside its rules.
struct Twin<'d> {
    ix: C<'d>,
    plain: C<'d>,
}

fn twin_named<'d>(db: &'d Db, name: &str, docs: &[Value], specs: &[IndexSpec]) -> Twin<'d> {
    let ix = db.collection(&format!("{name}_indexed"));
    let plain = db.collection(&format!("{name}_plain"));
    for s in specs {
        ix.create_index(s.clone()).unwrap();
    }
    if !docs.is_empty() {
        ix.insert_many(docs.to_vec()).unwrap();
        plain.insert_many(docs.to_vec()).unwrap();
    }
    Twin { ix, plain }
}

fn twin<'d>(db: &'d Db, docs: &[Value], specs: &[IndexSpec]) -> Twin<'d> {
    twin_named(db, "t", docs, specs)
}

impl Twin<'_> {
    /// Runs `filter` on both collections, asserts identical results (in
    /// primary-key order) and counts, and returns the indexed collection's
    /// results and explain.
    fn check(&self, filter: Value) -> (Vec<Value>, Explain) {
        let want = self.plain.find(filter.clone()).to_vec().unwrap();
        self.check_reference(&filter, &want);
        let got = self.ix.find(filter.clone()).to_vec().unwrap();
        assert_eq!(got, want, "find({filter}) differs from the unindexed twin");
        assert_eq!(
            self.ix.count(filter.clone()).unwrap(),
            want.len() as u64,
            "count({filter}) differs from the unindexed twin"
        );
        let e = self.ix.explain(filter.clone()).unwrap();
        assert_eq!(e.stats.returned, want.len() as u64, "explain({filter})");
        (got, e)
    }

    /// What the independent reference model selects for `filter` from the
    /// stored documents (primary-key order), or `None` for a filter or
    /// documents outside its rules.
    fn reference_selects(&self, filter: &Value) -> Option<Vec<Value>> {
        if !reference::supported(filter) {
            return None;
        }
        let stored = self.plain.find(json!({})).to_vec().unwrap();
        // Extended JSON values (dates, object ids) are outside its rules.
        if !stored.iter().all(reference::plain_json) {
            return None;
        }
        Some(reference::select(&stored, filter))
    }

    /// The third opinion: the unindexed twin's answer `want` must also be
    /// what the reference model selects.
    fn check_reference(&self, filter: &Value, want: &[Value]) {
        if let Some(selected) = self.reference_selects(filter) {
            assert_eq!(
                want,
                &selected[..],
                "find({filter}) on the unindexed twin differs from the reference model"
            );
        }
    }

    /// Same with a sort and a limit (0: none).
    fn check_sorted(&self, filter: Value, sort: Value, limit: u64) -> (Vec<Value>, Explain) {
        let want = self
            .plain
            .find(filter.clone())
            .sort(sort.clone())
            .limit(limit)
            .to_vec()
            .unwrap();
        let got = self
            .ix
            .find(filter.clone())
            .sort(sort.clone())
            .limit(limit)
            .to_vec()
            .unwrap();
        assert_eq!(
            got, want,
            "find({filter}).sort({sort}).limit({limit}) differs from the unindexed twin"
        );
        if let Some(selected) = self.reference_selects(&filter) {
            let n = if limit == 0 {
                selected.len()
            } else {
                selected.len().min(limit as usize)
            };
            assert!(
                want.len() == n && want.iter().all(|d| selected.contains(d)),
                "find({filter}).sort({sort}).limit({limit}) returned ids {:?}; \
                 the reference model selects ids {:?}",
                ids(&want),
                ids(&selected)
            );
        }
        let e = self
            .ix
            .find(filter)
            .sort(sort)
            .limit(limit)
            .explain()
            .unwrap();
        assert_eq!(e.stats.returned, want.len() as u64);
        (got, e)
    }
}

fn assert_ixscan(e: &Explain, index: &str) {
    assert_eq!(e.stage, "IXSCAN", "expected an index scan: {e:#?}");
    assert_eq!(e.index.as_deref(), Some(index), "{e:#?}");
}

fn assert_collscan(e: &Explain) {
    assert_eq!(e.stage, "COLLSCAN", "expected a collection scan: {e:#?}");
    assert_eq!(e.index, None, "{e:#?}");
}

fn dup_key(e: Error) -> (String, String) {
    match e {
        Error::DuplicateKey { index, key } => (index, key),
        other => panic!("expected Error::DuplicateKey, got {other:?}"),
    }
}

/// A small deterministic pseudo-random generator (no dependencies).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}
