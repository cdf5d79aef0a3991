//! Indexed queries against collection scans on the benchmark document shape.
//!
//! `cargo bench -p collection-store --bench query` loads `CS_BENCH_DOCS`
//! documents (default 1,000,000) of the shape
//! `{_id, name, email, age 18..80, city (50 values), tags 0-4, score}`,
//! builds a unique index on `email` and one on `age` (printing build progress),
//! then measures, on one thread with warm caches:
//! - `indexed/id_get_typed` / `id_get_json`: point get by `_id` into a struct / a `Value`;
//! - `indexed/email_eq`: `find_one({email: x})` through the unique index;
//! - `indexed/age_range_sort_limit20`: `find({age: {$gte: a, $lt: a + 5}}).sort({age: 1}).limit(20)`;
//! - the same two queries after the indexes are dropped (collection scans).

use std::time::{Duration, Instant};

use collection_store::{Collection, Database, IndexSpec};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn doc(i: u64, rng: &mut Rng) -> Value {
    let tags: Vec<String> = (0..rng.below(5))
        .map(|t| format!("tag{}", (i + t) % 20))
        .collect();
    json!({
        "_id": i,
        "name": format!("user {i}"),
        "email": format!("user{i}@example.com"),
        "age": 18 + rng.below(63),
        "city": format!("city{}", rng.below(50)),
        "tags": tags,
        "score": (rng.below(100_000) as f64) / 100.0,
    })
}

fn load(db: &Database, n: u64) -> Collection {
    let users = db.collection("users").unwrap();
    if users.count(json!({})).unwrap() == n {
        return users;
    }
    db.drop_collection("users").unwrap();
    let users = db.collection("users").unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let batch: Vec<Value> = (i..(i + 10_000).min(n)).map(|j| doc(j, &mut rng)).collect();
        i += batch.len() as u64;
        users.insert_many(batch).unwrap();
    }
    eprintln!("loaded {n} documents in {:.1?}", start.elapsed());
    users
}

fn build_indexes(users: &Collection) {
    for spec in [
        IndexSpec::new([("email", 1)]).unique(),
        IndexSpec::new([("age", 1)]),
    ] {
        let name = spec.index_name();
        let start = Instant::now();
        let mut last = 0;
        users
            .create_index_with_progress(spec, |done, total| {
                let pct = (done * 100).checked_div(total).unwrap_or(100);
                if pct >= last + 25 || done == total {
                    eprintln!("  building {name}: {done}/{total} ({pct}%)");
                    last = pct;
                }
            })
            .unwrap();
        eprintln!("built index {name} in {:.1?}", start.elapsed());
    }
}

fn email_and_range(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    users: &Collection,
    n: u64,
    rng: &mut Rng,
) {
    group.bench_function("email_eq", |b| {
        b.iter(|| {
            let i = rng.below(n);
            let d = users
                .find_one(json!({"email": format!("user{i}@example.com")}))
                .unwrap();
            assert!(d.is_some());
        })
    });
    group.bench_function("age_range_sort_limit20", |b| {
        b.iter(|| {
            let a = 18 + rng.below(58);
            let r = users
                .find(json!({"age": {"$gte": a, "$lt": a + 5}}))
                .sort(json!({"age": 1}))
                .limit(20)
                .to_vec()
                .unwrap();
            assert_eq!(r.len(), 20);
        })
    });
}

fn bench(c: &mut Criterion) {
    let n: u64 = std::env::var("CS_BENCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let users = load(&db, n);
    build_indexes(&users);

    let mut rng = Rng(42);
    let mut group = c.benchmark_group("indexed");
    group.throughput(Throughput::Elements(1));
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct User {
        _id: u64,
        name: String,
        email: String,
        age: u32,
        city: String,
        tags: Vec<String>,
        score: f64,
    }
    group.bench_function("id_get_typed", |b| {
        b.iter(|| {
            let i = rng.below(n);
            let u: Option<User> = users.get_as(json!(i)).unwrap();
            assert!(u.is_some());
        })
    });
    group.bench_function("id_get_json", |b| {
        b.iter(|| {
            let i = rng.below(n);
            assert!(users.get(json!(i)).unwrap().is_some());
        })
    });
    email_and_range(&mut group, &users, n, &mut rng);
    group.finish();
    let e = users
        .find(json!({"age": {"$gte": 30, "$lt": 35}}))
        .sort(json!({"age": 1}))
        .limit(20)
        .explain()
        .unwrap();
    eprintln!(
        "range+sort+limit plan: {} on {:?}, keys examined {}, docs examined {}",
        e.stage, e.index, e.stats.keys_examined, e.stats.docs_examined
    );

    users.drop_index("email_1").unwrap();
    users.drop_index("age_1").unwrap();
    let mut group = c.benchmark_group("collection_scan");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(10));
    email_and_range(&mut group, &users, n, &mut rng);
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
