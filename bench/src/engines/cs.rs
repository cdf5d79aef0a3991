//! collection-store: the sync API for everything, the async API (tokio tasks
//! over `AsyncCollection`) for concurrent writers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use collection_store::{
    AsyncDatabase, Collection, Database, DatabaseOptions, Durability, IndexSpec,
};
use serde_json::{json, Value};

use super::{EResult, Engine, WriteOutcome, Writer};
use crate::data::User;
use crate::latency::Latencies;

/// How collection-store is configured (see [`super::durability`]).
pub const DURABILITY: &str = "`Durability::Immediate` (the default): a write returns after LMDB's \
    commit has flushed data pages and meta page (two fsyncs); concurrent writers share commits \
    (group commit).";

/// collection-store with `Durability::Immediate`.
pub struct CsEngine {
    db: Database,
    users: Collection,
    dir: PathBuf,
}

impl CsEngine {
    /// Opens a database in `dir` and declares the two indexes.
    pub fn open(dir: &Path) -> EResult<CsEngine> {
        let db = Database::open_with(
            dir,
            DatabaseOptions::default().durability(Durability::Immediate),
        )?;
        let users = db.collection("users")?;
        users.create_index(IndexSpec::new([("email", 1)]).unique())?;
        users.create_index(IndexSpec::new([("age", 1)]))?;
        Ok(CsEngine {
            db,
            users,
            dir: dir.to_path_buf(),
        })
    }
}

fn to_value(u: &User) -> EResult<Value> {
    Ok(serde_json::to_value(u)?)
}

struct CsWriter(Collection);

impl Writer for CsWriter {
    fn insert(&mut self, doc: &User) -> EResult<()> {
        self.0.insert_one(to_value(doc)?)?;
        Ok(())
    }
}

impl Engine for CsEngine {
    fn id(&self) -> &'static str {
        "cs"
    }

    fn bulk_insert(&self, docs: &[User]) -> EResult<()> {
        let values = docs.iter().map(to_value).collect::<EResult<Vec<_>>>()?;
        self.users.insert_many(values)?;
        Ok(())
    }

    fn count(&self) -> EResult<u64> {
        Ok(self.users.count(json!({}))?)
    }

    fn get(&self, id: i64) -> EResult<Option<User>> {
        Ok(self.users.get_as::<User>(json!(id))?)
    }

    fn find_by_email(&self, email: &str) -> EResult<Option<i64>> {
        let doc = self.users.find_one(json!({ "email": email }))?;
        Ok(doc.and_then(|d| d["_id"].as_i64()))
    }

    fn age_range(&self, lo: i32, hi: i32, limit: usize) -> EResult<Vec<i32>> {
        let docs = self
            .users
            .find(json!({"age": {"$gte": lo, "$lt": hi}}))
            .sort(json!({"age": 1}))
            .limit(limit as u64)
            .to_vec()?;
        Ok(docs
            .iter()
            .map(|d| d["age"].as_i64().unwrap_or(-1) as i32)
            .collect())
    }

    fn scan(&self, city: &str, min_score: f64) -> EResult<u64> {
        let docs = self
            .users
            .find(json!({"city": city, "score": {"$gt": min_score}}))
            .to_vec()?;
        Ok(docs.len() as u64)
    }

    fn update_by_email(&self, emails: &[String], deadline: Instant) -> EResult<usize> {
        let tx = self.db.begin()?;
        let users = tx.collection("users")?;
        let mut done = 0;
        for e in emails {
            users.update_one(json!({ "email": e }), json!({"$inc": {"score": 1}}))?;
            done += 1;
            if Instant::now() >= deadline {
                break;
            }
        }
        drop(users);
        tx.commit()?;
        Ok(done)
    }

    fn writer(&self) -> EResult<Box<dyn Writer>> {
        Ok(Box::new(CsWriter(self.users.clone())))
    }

    fn concurrent_inserts(
        &self,
        writers: usize,
        duration: Duration,
        next_id: &AtomicI64,
    ) -> Option<EResult<WriteOutcome>> {
        if writers <= 1 {
            return None;
        }
        Some(async_inserts(&self.db, writers, duration, next_id))
    }

    fn disk_bytes(&self) -> EResult<u64> {
        super::dir_bytes(&self.dir)
    }
}

/// `writers` tokio tasks, each inserting one document per durable statement
/// through `AsyncCollection` until `duration` has passed.
fn async_inserts(
    db: &Database,
    writers: usize,
    duration: Duration,
    next_id: &AtomicI64,
) -> EResult<WriteOutcome> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let adb = AsyncDatabase::from(db.clone());
    let first = next_id.fetch_add(1 << 32, Ordering::Relaxed);
    let out = rt.block_on(async move {
        let users = adb.collection("users").await?;
        let start = Instant::now();
        let deadline = start + duration;
        let tasks: Vec<_> = (0..writers as i64)
            .map(|w| {
                let users = users.clone();
                tokio::spawn(async move {
                    let mut out = WriteOutcome::default();
                    let mut seq = 0i64;
                    while Instant::now() < deadline {
                        let id = first + (w << 24) + seq;
                        seq += 1;
                        let doc = match to_value(&crate::data::user(id)) {
                            Ok(d) => d,
                            Err(e) => {
                                out.error(&e);
                                continue;
                            }
                        };
                        let t = Instant::now();
                        match users.insert_one(doc).await {
                            Ok(_) => {
                                out.ok += 1;
                                out.latencies.record(t.elapsed());
                            }
                            Err(e) => out.error(&e.into()),
                        }
                    }
                    out.elapsed = start.elapsed();
                    out
                })
            })
            .collect();
        let mut total = WriteOutcome {
            latencies: Latencies::new(),
            ..Default::default()
        };
        for t in tasks {
            total.merge(t.await?);
        }
        EResult::Ok(total)
    })?;
    Ok(out)
}
