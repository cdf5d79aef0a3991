//! Raw LMDB through heed: the same JSON bytes collection-store is given,
//! stored under the big-endian `_id`, with two hand-kept index tables. This is
//! the "no document-engine overhead" limit of the storage collection-store
//! is built on.
//!
//! Tables: `docs` (`_id` BE → JSON), `email` (email → `_id` BE; uniqueness
//! checked before the put), `age` (`age` byte ‖ `_id` BE → empty).

use std::path::{Path, PathBuf};
use std::time::Instant;

use heed::types::Bytes;
use heed::{Env, EnvOpenOptions, RwTxn};
use serde::Deserialize;
use serde_json::Value;

use super::{err, EResult, Engine, Writer};
use crate::data::User;

type Db = heed::Database<'static, Bytes, Bytes>;

/// How raw LMDB is configured (see [`super::durability`]).
pub const DURABILITY: &str = "heed with LMDB's default flags: every commit flushes data pages and \
    meta page (two fsyncs). One writer at a time (LMDB's write lock), no group commit.";

/// Raw LMDB with hand-kept indexes and LMDB's default (durable) sync.
pub struct LmdbRaw {
    t: Tables,
    dir: PathBuf,
}

/// The environment and its tables (cheap to clone: one per writer thread).
#[derive(Clone)]
struct Tables {
    env: Env,
    docs: Db,
    email: Db,
    age: Db,
}

#[allow(unsafe_code)]
fn open_env(dir: &Path) -> EResult<Env> {
    let mut opts = EnvOpenOptions::new();
    opts.map_size(64 << 30).max_dbs(8);
    // SAFETY: `dir` is a fresh directory that this process opens exactly once
    // and no other process touches; LMDB's requirements (one environment per
    // file per process, local filesystem) hold. heed offers no safe way to
    // open an environment.
    Ok(unsafe { opts.open(dir) }?)
}

impl LmdbRaw {
    /// Creates the environment and its three tables in `dir`.
    pub fn open(dir: &Path) -> EResult<LmdbRaw> {
        let env = open_env(dir)?;
        let wtxn = env.write_txn()?;
        let (docs, email, age): (Db, Db, Db) = env
            .create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
                let docs = opener.create_database::<Bytes, Bytes>(wtxn, Some("docs"))?;
                let email = opener.create_database::<Bytes, Bytes>(wtxn, Some("email"))?;
                let age = opener.create_database::<Bytes, Bytes>(wtxn, Some("age"))?;
                Ok(heed::CommitOrAbort::<_, ()>::Commit((docs, email, age)))
            })?
            .unwrap_commit();
        Ok(LmdbRaw {
            t: Tables {
                env,
                docs,
                email,
                age,
            },
            dir: dir.to_path_buf(),
        })
    }
}

impl Tables {
    fn put_doc(&self, w: &mut RwTxn<'_>, u: &User) -> EResult<()> {
        let id = (u.id as u64).to_be_bytes();
        if self.email.get(w, u.email.as_bytes())?.is_some() {
            return Err(err(format!("duplicate email {}", u.email)));
        }
        if self.docs.get(w, &id)?.is_some() {
            return Err(err(format!("duplicate _id {}", u.id)));
        }
        self.docs.put(w, &id, &serde_json::to_vec(u)?)?;
        self.email.put(w, u.email.as_bytes(), &id)?;
        self.age.put(w, &age_key(u.age, u.id), &[])?;
        Ok(())
    }
}

fn age_key(age: i32, id: i64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = age.clamp(0, 255) as u8;
    k[1..].copy_from_slice(&(id as u64).to_be_bytes());
    k
}

/// The two fields W6 filters on, decoded without building the document.
#[derive(Deserialize)]
struct CityScore<'a> {
    #[serde(borrow)]
    city: std::borrow::Cow<'a, str>,
    score: f64,
}

struct LmdbWriter(Tables);

impl Writer for LmdbWriter {
    fn insert(&mut self, doc: &User) -> EResult<()> {
        let mut w = self.0.env.write_txn()?;
        self.0.put_doc(&mut w, doc)?;
        w.commit()?;
        Ok(())
    }
}

impl Engine for LmdbRaw {
    fn id(&self) -> &'static str {
        "lmdb-raw"
    }

    fn bulk_insert(&self, docs: &[User]) -> EResult<()> {
        let mut w = self.t.env.write_txn()?;
        for u in docs {
            self.t.put_doc(&mut w, u)?;
        }
        w.commit()?;
        Ok(())
    }

    fn count(&self) -> EResult<u64> {
        let r = self.t.env.read_txn()?;
        Ok(self.t.docs.len(&r)?)
    }

    fn get(&self, id: i64) -> EResult<Option<User>> {
        let r = self.t.env.read_txn()?;
        match self.t.docs.get(&r, &(id as u64).to_be_bytes())? {
            Some(bytes) => Ok(Some(serde_json::from_slice(bytes)?)),
            None => Ok(None),
        }
    }

    fn find_by_email(&self, email: &str) -> EResult<Option<i64>> {
        let r = self.t.env.read_txn()?;
        let Some(id) = self.t.email.get(&r, email.as_bytes())? else {
            return Ok(None);
        };
        let Some(bytes) = self.t.docs.get(&r, id)? else {
            return Err(err("email index points at a missing document"));
        };
        let doc: Value = serde_json::from_slice(bytes)?;
        Ok(doc["_id"].as_i64())
    }

    fn age_range(&self, lo: i32, hi: i32, limit: usize) -> EResult<Vec<i32>> {
        let r = self.t.env.read_txn()?;
        let start = [lo.clamp(0, 255) as u8];
        let end = [hi.clamp(0, 255) as u8];
        let range = (
            std::ops::Bound::Included(&start[..]),
            std::ops::Bound::Excluded(&end[..]),
        );
        let mut ages = Vec::with_capacity(limit);
        for entry in self.t.age.range(&r, &range)?.take(limit) {
            let (k, _) = entry?;
            let Some(bytes) = self.t.docs.get(&r, &k[1..])? else {
                return Err(err("age index points at a missing document"));
            };
            let doc: Value = serde_json::from_slice(bytes)?;
            ages.push(doc["age"].as_i64().unwrap_or(-1) as i32);
        }
        Ok(ages)
    }

    fn scan(&self, city: &str, min_score: f64) -> EResult<u64> {
        let r = self.t.env.read_txn()?;
        let mut matches = 0;
        for entry in self.t.docs.iter(&r)? {
            let (_, bytes) = entry?;
            let cs: CityScore<'_> = serde_json::from_slice(bytes)?;
            if cs.city == city && cs.score > min_score {
                let _doc: Value = serde_json::from_slice(bytes)?;
                matches += 1;
            }
        }
        Ok(matches)
    }

    fn update_by_email(&self, emails: &[String], deadline: Instant) -> EResult<usize> {
        let mut w = self.t.env.write_txn()?;
        let mut done = 0;
        for e in emails {
            let Some(id) = self.t.email.get(&w, e.as_bytes())? else {
                continue;
            };
            let id: [u8; 8] = id.try_into().map_err(|_| err("bad id in email index"))?;
            let Some(bytes) = self.t.docs.get(&w, &id)? else {
                return Err(err("email index points at a missing document"));
            };
            let mut doc: User = serde_json::from_slice(bytes)?;
            let (old_email, old_age) = (doc.email.clone(), doc.age);
            doc.score += 1.0;
            // Hand-kept indexes: rewrite entries only when their key changed.
            if doc.email != old_email {
                self.t.email.delete(&mut w, old_email.as_bytes())?;
                self.t.email.put(&mut w, doc.email.as_bytes(), &id)?;
            }
            if doc.age != old_age {
                self.t.age.delete(&mut w, &age_key(old_age, doc.id))?;
                self.t.age.put(&mut w, &age_key(doc.age, doc.id), &[])?;
            }
            self.t.docs.put(&mut w, &id, &serde_json::to_vec(&doc)?)?;
            done += 1;
            if Instant::now() >= deadline {
                break;
            }
        }
        w.commit()?;
        Ok(done)
    }

    fn writer(&self) -> EResult<Box<dyn Writer>> {
        Ok(Box::new(LmdbWriter(self.t.clone())))
    }

    fn disk_bytes(&self) -> EResult<u64> {
        super::dir_bytes(&self.dir)
    }
}
