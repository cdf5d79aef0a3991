//! The ORM's overhead over the raw typed API, measured in one process with
//! the two interleaved (alternating rounds, median of the rounds), so that
//! machine noise hits both alike.
//!
//! * `find_by_id`: `EntityManager::find_by_id` in a fresh context (identity
//!   map miss: one point lookup, decode, register) against
//!   `TypedCollection::get`, over 10,000 `User`s, random ids. The ORM is
//!   measured through the blocking API and inside a tokio current-thread
//!   runtime.
//! * flush of 100 entities: 100 loaded `User`s each with one changed field,
//!   flushed (dirty checking, one transaction of 100 `$set` updates) against
//!   one `db.transaction` running the same 100 `update_one`s by hand; with
//!   `Durability::Immediate` (the default) and `Durability::None`.
//!
//! `cargo bench -p collection-store-orm --bench overhead`
//! (`CS_BENCH_SECONDS`, default 10, bounds each comparison).

use std::sync::Arc;
use std::time::{Duration, Instant};

use collection_store::typed::Update;
use collection_store::{Database, DatabaseOptions, Durability};
use collection_store_orm::driver::EmbeddedDriver;
use collection_store_orm::{EntityManager, Query, Wait};
use collection_store_schemas::{sample, User};

const USERS: u64 = 10_000;

fn seconds() -> f64 {
    std::env::var("CS_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10.0)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs `a` and `b` alternately (`per_round` operations each) for the time
/// budget; returns the median seconds per operation of each.
fn compare(per_round: u64, mut a: impl FnMut(u64), mut b: impl FnMut(u64)) -> (f64, f64, usize) {
    let budget = Duration::from_secs_f64(seconds());
    let start = Instant::now();
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    let mut round = 0u64;
    while start.elapsed() < budget || ta.len() < 5 {
        let t = Instant::now();
        for i in 0..per_round {
            a(round * per_round + i);
        }
        ta.push(t.elapsed().as_secs_f64() / per_round as f64);
        let t = Instant::now();
        for i in 0..per_round {
            b(round * per_round + i);
        }
        tb.push(t.elapsed().as_secs_f64() / per_round as f64);
        round += 1;
    }
    let rounds = ta.len();
    (median(&mut ta), median(&mut tb), rounds)
}

fn report(what: &str, raw: f64, orm: f64, rounds: usize, n: u64) {
    println!(
        "{what:<44} raw {:>9.2} µs   orm {:>9.2} µs   orm/raw {:.3} (+{:.1}%)   [{rounds} rounds × {n}]",
        raw * 1e6,
        orm * 1e6,
        orm / raw,
        (orm / raw - 1.0) * 100.0
    );
}

fn open(durability: Durability) -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open_with(
        dir.path(),
        DatabaseOptions::default().durability(durability),
    )
    .unwrap();
    let users = db.typed::<User>().unwrap();
    for chunk in sample::users(USERS).chunks(1000) {
        users.insert_many(chunk).unwrap();
    }
    (dir, db)
}

/// A cheap deterministic permutation of 1..=USERS.
fn id_at(i: u64) -> u64 {
    (i.wrapping_mul(7919) % USERS) + 1
}

fn reads() {
    let (_dir, db) = open(Durability::Immediate);
    let typed = db.typed::<User>().unwrap();
    let em = EntityManager::new(Arc::new(EmbeddedDriver::new(db.clone())));
    let raw_get = |i| {
        let u = typed.get(&id_at(i)).unwrap().unwrap();
        std::hint::black_box(u);
    };
    let per_round = 2_000;
    let (raw, orm, rounds) = compare(per_round, raw_get, |i| {
        let u = em.find_by_id::<User>(&id_at(i)).wait().unwrap().unwrap();
        std::hint::black_box(u.read().age);
        em.clear();
    });
    report(
        "find_by_id, fresh context (blocking API)",
        raw,
        orm,
        rounds,
        per_round,
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (raw, orm, rounds) = compare(per_round, raw_get, |i| {
        rt.block_on(async {
            let u = em.find_by_id::<User>(&id_at(i)).await.unwrap().unwrap();
            std::hint::black_box(u.read().age);
        });
        em.clear();
    });
    report(
        "find_by_id, fresh context (tokio)",
        raw,
        orm,
        rounds,
        per_round,
    );

    let (raw, orm, rounds) = compare(per_round, raw_get, |i| {
        let u = em.find_by_id::<User>(&id_at(i)).wait().unwrap().unwrap();
        std::hint::black_box(u.read().age);
    });
    report(
        "find_by_id, identity-map hit (blocking API)",
        raw,
        orm,
        rounds,
        per_round,
    );
}

fn flushes(durability: Durability, label: &str) {
    let (_dir, db) = open(durability);
    let em = EntityManager::new(Arc::new(EmbeddedDriver::new(db.clone())));
    let f = User::fields();
    let batch = 100u64;
    let first = |i: u64| (i * batch) % (USERS - batch) + 1;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (mut raw_t, mut orm_t, mut load_t) = (Vec::new(), Vec::new(), Vec::new());
    let budget = Duration::from_secs_f64(seconds());
    let start = Instant::now();
    let mut i = 0u64;
    while start.elapsed() < budget || orm_t.len() < 5 {
        // Raw: the same 100 updates written by hand in one transaction.
        let lo = first(i);
        let t = Instant::now();
        db.transaction(|tx| {
            let users = tx.typed::<User>()?;
            for id in lo..lo + batch {
                users.update_one(
                    f.id().eq(id),
                    Update::new().set(f.balance(), (i * 1000 + id) as f64),
                )?;
            }
            Ok(())
        })
        .unwrap();
        raw_t.push(t.elapsed().as_secs_f64());
        i += 1;
        // ORM: load 100 entities (timed apart), change one field each, flush.
        let lo = first(i);
        rt.block_on(async {
            let t = Instant::now();
            let users = em
                .find::<User>(Query::from(f.id().gte(lo).and(f.id().lt(lo + batch))))
                .await
                .unwrap();
            load_t.push(t.elapsed().as_secs_f64());
            for u in &users {
                let id = u.read().id;
                u.write().balance = (i * 1000 + id) as f64;
            }
            let t = Instant::now();
            let r = em.flush().await.unwrap();
            orm_t.push(t.elapsed().as_secs_f64());
            assert_eq!(r.updated, batch as usize);
        });
        em.clear();
        i += 1;
    }
    let rounds = orm_t.len();
    report(
        &format!("flush of 100 changed entities ({label})"),
        median(&mut raw_t),
        median(&mut orm_t),
        rounds,
        1,
    );
    println!(
        "{:<44} (loading the 100 entities beforehand: {:.1} µs, not included)",
        "",
        median(&mut load_t) * 1e6
    );
}

fn main() {
    println!(
        "collection-store-orm overhead vs the raw typed API ({USERS} users, medians of alternating rounds, {} s per comparison)",
        seconds()
    );
    reads();
    flushes(Durability::Immediate, "Durability::Immediate");
    flushes(Durability::None, "Durability::None");
}
