//! Damaged data files for `tests/damaged_files.rs`: a source database with
//! multi-level trees, overflow values and free pages, and the damage done to
//! copies of its `data.mdb` (truncations, byte flips in meta, branch, leaf and
//! overflow pages, swapped, duplicated and zeroed pages).

use std::path::Path;

use collection_store::{Database, DatabaseOptions, IndexSpec};
use serde_json::json;

use crate::Rng;

/// LMDB's page size on this platform.
pub const PAGE: u64 = 4096;

/// Builds the source database in `dir` and closes it: three collections
/// (one with a unique and a plain index, one with values large enough for
/// overflow pages), updates and deletes so that free pages exist.
pub fn build_source(dir: &Path) {
    let db = Database::open_with(dir, DatabaseOptions::default().log_segment_size(1 << 20))
        .expect("open the source database");
    let users = db.collection("users").expect("users");
    users
        .create_index(IndexSpec::new([("email", 1)]).unique())
        .expect("email index");
    users
        .create_index(IndexSpec::new([("age", 1)]))
        .expect("age index");
    let docs: Vec<_> = (0..3000)
        .map(|i| {
            json!({"_id": i, "name": format!("user {i}"), "email": format!("u{i}@example.com"),
                   "age": 18 + i % 60, "tags": ["a", "b"], "score": i as f64 / 7.0})
        })
        .collect();
    users.insert_many(docs).expect("insert users");
    users
        .delete_many(json!({"age": {"$lt": 25}}))
        .expect("delete some users");
    users
        .update_many(
            json!({"age": {"$gte": 70}}),
            json!({"$set": {"name": "renamed"}}),
        )
        .expect("update some users");
    let blobs = db.collection("blobs").expect("blobs");
    for i in 0..20 {
        blobs
            .insert_one(json!({"_id": format!("b{i}"), "body": "x".repeat(3000 + i * 900)}))
            .expect("insert blob");
    }
    let small = db.collection("small").expect("small");
    small.insert_one(json!({"_id": 1, "v": 1})).expect("insert");
    let report = db.verify().expect("verify the source");
    assert!(
        report.is_ok(),
        "the source database verifies: {:?}",
        report.problems
    );
}

/// What kind of page each page of `data` is (flags of its header), for the
/// pages the file's newest state uses; a page that is free may hold stale
/// content of any kind.
pub fn page_kinds(data: &[u8]) -> Vec<u16> {
    data.chunks(PAGE as usize)
        .map(|p| {
            if p.len() >= 12 {
                u16::from_ne_bytes([p[10], p[11]]) & 0x7f
            } else {
                0
            }
        })
        .collect()
}

/// One kind of damage, applied to a copy of `data.mdb`.
#[derive(Debug, Clone)]
pub enum Damage {
    /// The file cut to this length.
    Truncate(u64),
    /// These bytes XOR-ed with a nonzero mask at the offsets.
    Flip(Vec<(u64, u8)>),
    /// Two pages exchanged.
    Swap(u64, u64),
    /// The first page's bytes copied over the second.
    CopyPage(u64, u64),
    /// A page overwritten with zeros.
    ZeroPage(u64),
}

impl Damage {
    /// Applies the damage to `bytes`.
    pub fn apply(&self, bytes: &mut Vec<u8>) {
        let page = |n: u64| (n * PAGE) as usize..((n + 1) * PAGE) as usize;
        match self {
            Damage::Truncate(len) => bytes.truncate(*len as usize),
            Damage::Flip(flips) => {
                for &(at, mask) in flips {
                    if let Some(b) = bytes.get_mut(at as usize) {
                        *b ^= mask;
                    }
                }
            }
            Damage::Swap(a, b) => {
                let pa = bytes[page(*a)].to_vec();
                let pb = bytes[page(*b)].to_vec();
                bytes[page(*a)].copy_from_slice(&pb);
                bytes[page(*b)].copy_from_slice(&pa);
            }
            Damage::CopyPage(from, to) => {
                let p = bytes[page(*from)].to_vec();
                bytes[page(*to)].copy_from_slice(&p);
            }
            Damage::ZeroPage(n) => bytes[page(*n)].fill(0),
        }
    }
}

/// Up to `most` bytes in `start..start + len` XOR-ed with random masks.
fn flips(rng: &mut Rng, start: u64, len: u64, most: u64) -> Damage {
    let mut v = Vec::new();
    for _ in 0..rng.range(1, most + 1) {
        let mask = (rng.range(1, 256)) as u8;
        v.push((start + rng.range(0, len), mask));
    }
    Damage::Flip(v)
}

/// The `i`-th damage of a run with generator `rng`, for a file of `len`
/// bytes with page kinds `kinds`. The first cases are fixed (an empty file,
/// a cut in half, 64 bytes XOR-ed at offset 400,000); the rest cycle through
/// the kinds of damage at random places.
pub fn damage(i: u64, rng: &mut Rng, len: u64, kinds: &[u16]) -> Damage {
    let pages = len / PAGE;
    let of_kind = |k: u16| -> Vec<u64> { (2..pages).filter(|&p| kinds[p as usize] == k).collect() };
    let pick = |rng: &mut Rng, from: &[u64]| -> u64 {
        if from.is_empty() {
            2 + rng.range(0, pages - 2)
        } else {
            from[rng.range(0, from.len() as u64) as usize]
        }
    };
    match i {
        0 => return Damage::Truncate(0),
        1 => return Damage::Truncate(len / 2),
        2 => return Damage::Flip((400_000..400_064).map(|at| (at, 0xA5)).collect()),
        _ => {}
    }
    match i % 10 {
        // Truncation anywhere, or at a page boundary.
        0 => Damage::Truncate(rng.range(1, len)),
        1 => Damage::Truncate(rng.range(1, pages) * PAGE),
        // Meta pages: the header and meta fields (the first 160 bytes).
        2 => {
            let slot = rng.range(0, 2);
            flips(rng, slot * PAGE, 160, 3)
        }
        // Branch, leaf and overflow pages: a few bytes, or a 64-byte run.
        3 => {
            let p = pick(rng, &of_kind(0x01));
            flips(rng, p * PAGE, PAGE, 7)
        }
        4 => {
            let p = pick(rng, &of_kind(0x02));
            flips(rng, p * PAGE, PAGE, 7)
        }
        5 => {
            let p = pick(rng, &of_kind(0x02));
            let at = p * PAGE + rng.range(0, PAGE - 64);
            Damage::Flip((at..at + 64).map(|a| (a, 0xFF)).collect())
        }
        6 => {
            let p = pick(rng, &of_kind(0x04));
            flips(rng, p * PAGE, 64, 3)
        }
        // Page headers and node tables (the first 64 bytes of any page).
        7 => {
            let p = 2 + rng.range(0, pages - 2);
            flips(rng, p * PAGE, 64, 3)
        }
        8 => {
            let a = 2 + rng.range(0, pages - 2);
            let b = 2 + rng.range(0, pages - 2);
            if rng.chance(1, 2) {
                Damage::Swap(a, b)
            } else {
                Damage::CopyPage(a, b)
            }
        }
        _ => Damage::ZeroPage(pick(rng, &of_kind(0x01))),
    }
}

/// Copies the database directory `from` (the data file and the log
/// directory) to `to`, with `damage` applied to `data.mdb`.
pub fn write_image(from: &Path, to: &Path, data: &[u8], damage: &Damage) {
    std::fs::create_dir_all(to.join("wal")).expect("image directory");
    for entry in std::fs::read_dir(from.join("wal")).expect("read wal") {
        let entry = entry.expect("wal entry");
        if entry.file_type().expect("type").is_file() {
            std::fs::copy(entry.path(), to.join("wal").join(entry.file_name())).expect("copy");
        }
    }
    let mut bytes = data.to_vec();
    damage.apply(&mut bytes);
    std::fs::write(to.join("data.mdb"), bytes).expect("write the damaged data file");
}
