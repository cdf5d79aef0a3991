//! PoloDB (`polodb_core`, RocksDB underneath): the closest embedded
//! MongoDB-style peer in Rust. Its `find` uses an index only for equality
//! (W4 and the primary key); range queries, sorts and updates scan the
//! collection, so the workloads cap their time and say so.

use std::path::{Path, PathBuf};
use std::time::Instant;

use polodb_core::bson::{doc, Document};
use polodb_core::{Collection, CollectionT, Database, IndexModel, IndexOptions};

use super::{EResult, Engine, Writer};
use crate::data::User;

/// How PoloDB is configured (see [`super::durability`]).
pub const DURABILITY: &str = "polodb_core 5.3 defaults: a RocksDB pessimistic TransactionDB whose \
    commits use `WriteOptions::sync = true` (the RocksDB WAL is fsynced at every commit; see its \
    `db/rocksdb_transaction.rs`). A single-document write outside an explicit transaction is its \
    own transaction.";

/// PoloDB with its default configuration.
pub struct PoloEngine {
    db: Database,
    users: Collection<User>,
    raw: Collection<Document>,
    dir: PathBuf,
}

impl PoloEngine {
    /// Opens a database directory and creates both indexes.
    pub fn open(dir: &Path) -> EResult<PoloEngine> {
        let path = dir.join("polodb");
        let db = Database::open_path(&path)?;
        let users = db.collection::<User>("users");
        users.create_index(IndexModel {
            keys: doc! {"email": 1},
            options: Some(IndexOptions {
                name: Some("email_1".into()),
                unique: Some(true),
            }),
        })?;
        users.create_index(IndexModel {
            keys: doc! {"age": 1},
            options: Some(IndexOptions {
                name: Some("age_1".into()),
                unique: Some(false),
            }),
        })?;
        let raw = db.collection::<Document>("users");
        Ok(PoloEngine {
            db,
            users,
            raw,
            dir: path,
        })
    }
}

fn age_of(d: &Document) -> i32 {
    d.get_i32("age")
        .map(i64::from)
        .or_else(|_| d.get_i64("age"))
        .unwrap_or(-1) as i32
}

struct PoloWriter(Collection<User>);

impl Writer for PoloWriter {
    fn insert(&mut self, doc: &User) -> EResult<()> {
        self.0.insert_one(doc)?;
        Ok(())
    }
}

impl Engine for PoloEngine {
    fn id(&self) -> &'static str {
        "polodb"
    }

    fn bulk_insert(&self, docs: &[User]) -> EResult<()> {
        let txn = self.db.start_transaction()?;
        txn.collection::<User>("users").insert_many(docs)?;
        txn.commit()?;
        Ok(())
    }

    fn count(&self) -> EResult<u64> {
        Ok(self.users.count_documents()?)
    }

    fn get(&self, id: i64) -> EResult<Option<User>> {
        Ok(self.users.find_one(doc! {"_id": id})?)
    }

    fn find_by_email(&self, email: &str) -> EResult<Option<i64>> {
        let d = self.raw.find_one(doc! {"email": email})?;
        Ok(d.and_then(|d| d.get_i64("_id").ok()))
    }

    fn age_range(&self, lo: i32, hi: i32, limit: usize) -> EResult<Vec<i32>> {
        let cursor = self
            .raw
            .find(doc! {"age": {"$gte": lo, "$lt": hi}})
            .sort(doc! {"age": 1})
            .limit(limit as u64)
            .run()?;
        let mut ages = Vec::with_capacity(limit);
        for d in cursor {
            ages.push(age_of(&d?));
        }
        Ok(ages)
    }

    fn scan(&self, city: &str, min_score: f64) -> EResult<u64> {
        let cursor = self
            .raw
            .find(doc! {"city": city, "score": {"$gt": min_score}})
            .run()?;
        let mut n = 0;
        for d in cursor {
            d?;
            n += 1;
        }
        Ok(n)
    }

    fn update_by_email(&self, emails: &[String], deadline: Instant) -> EResult<usize> {
        let txn = self.db.start_transaction()?;
        let users = txn.collection::<Document>("users");
        let mut done = 0;
        for e in emails {
            users.update_one(doc! {"email": e}, doc! {"$inc": {"score": 1.0}})?;
            done += 1;
            if Instant::now() >= deadline {
                break;
            }
        }
        txn.commit()?;
        Ok(done)
    }

    fn writer(&self) -> EResult<Box<dyn Writer>> {
        Ok(Box::new(PoloWriter(self.db.collection::<User>("users"))))
    }

    fn range_scans_collection(&self) -> bool {
        true
    }

    fn disk_bytes(&self) -> EResult<u64> {
        super::dir_bytes(&self.dir)
    }
}
