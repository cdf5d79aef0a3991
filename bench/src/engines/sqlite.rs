//! SQLite through rusqlite (bundled): WAL journal, `synchronous=FULL` (the
//! baseline of every ratio) or `NORMAL` (an extra column). Documents are JSON
//! TEXT; the two indexes are expression indexes on `json_extract`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::Value;

use super::{err, EResult, Engine, Writer};
use crate::data::User;

/// The `synchronous` pragma used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sync {
    /// `synchronous=FULL`: the WAL is fsynced at every commit.
    Full,
    /// `synchronous=NORMAL`: the WAL is fsynced only at checkpoints.
    Normal,
}

/// SQLite in WAL mode with one table `users(id INTEGER PRIMARY KEY, doc TEXT)`.
pub struct SqliteEngine {
    conn: Mutex<Connection>,
    path: PathBuf,
    sync: Sync,
    dir: PathBuf,
}

/// Opens a connection in WAL mode with `synchronous` set (and checked) and a 30 s busy timeout.
pub fn connect(path: &Path, sync: Sync) -> EResult<Connection> {
    let c = Connection::open(path)?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    let mode = match sync {
        Sync::Full => "FULL",
        Sync::Normal => "NORMAL",
    };
    c.pragma_update(None, "synchronous", mode)?;
    let got: i64 = c.pragma_query_value(None, "synchronous", |r| r.get(0))?;
    let want = match sync {
        Sync::Full => 2,
        Sync::Normal => 1,
    };
    if got != want {
        return Err(err(format!(
            "SQLite refused synchronous={mode} (reads back {got})"
        )));
    }
    c.busy_timeout(Duration::from_secs(30))?;
    Ok(c)
}

const GET_BY_ID: &str = "SELECT doc FROM users WHERE id = ?1";
const GET_BY_EMAIL: &str = "SELECT doc FROM users WHERE json_extract(doc, '$.email') = ?1";
const AGE_RANGE: &str = "SELECT doc FROM users WHERE json_extract(doc, '$.age') >= ?1 \
     AND json_extract(doc, '$.age') < ?2 ORDER BY json_extract(doc, '$.age') LIMIT ?3";
const SCAN: &str = "SELECT doc FROM users WHERE json_extract(doc, '$.city') = ?1 \
     AND json_extract(doc, '$.score') > ?2";
const UPDATE: &str = "UPDATE users SET doc = json_set(doc, '$.score', \
     json_extract(doc, '$.score') + 1) WHERE json_extract(doc, '$.email') = ?1";
const INSERT: &str = "INSERT INTO users (id, doc) VALUES (?1, ?2)";

/// How SQLite is configured (see [`super::durability`]).
pub fn durability(sync: Sync) -> String {
    match sync {
        Sync::Full => format!(
            "SQLite {} (bundled), `journal_mode=WAL`, `synchronous=FULL`: the WAL is fsynced at \
             every commit (one sync point per commit). One connection per writer thread, \
             `BEGIN IMMEDIATE`, `busy_timeout` 30 s; default page cache.",
            rusqlite::version()
        ),
        Sync::Normal => "As SQLite FULL but `synchronous=NORMAL`: commits are not fsynced (the \
             WAL is synced only at checkpoints), so a power loss can undo the last commits. Not \
             durable in the sense the other engines are; shown for reference."
            .into(),
    }
}

impl SqliteEngine {
    /// Creates the database file, the table and both expression indexes.
    pub fn open(dir: &Path, sync: Sync) -> EResult<SqliteEngine> {
        let path = dir.join("bench.sqlite");
        let c = connect(&path, sync)?;
        c.execute_batch(
            "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, doc TEXT NOT NULL);
             CREATE UNIQUE INDEX IF NOT EXISTS users_email ON users (json_extract(doc, '$.email'));
             CREATE INDEX IF NOT EXISTS users_age ON users (json_extract(doc, '$.age'));",
        )?;
        Ok(SqliteEngine {
            conn: Mutex::new(c),
            path,
            sync,
            dir: dir.to_path_buf(),
        })
    }

    fn conn(&self) -> EResult<std::sync::MutexGuard<'_, Connection>> {
        self.conn
            .lock()
            .map_err(|_| err("SQLite connection mutex poisoned"))
    }
}

fn insert(c: &Connection, u: &User) -> EResult<()> {
    c.prepare_cached(INSERT)?
        .execute(params![u.id, serde_json::to_string(u)?])?;
    Ok(())
}

struct SqliteWriter(Connection);

impl Writer for SqliteWriter {
    fn insert(&mut self, doc: &User) -> EResult<()> {
        let tx = self
            .0
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        insert(&tx, doc)?;
        tx.commit()?;
        Ok(())
    }
}

impl Engine for SqliteEngine {
    fn id(&self) -> &'static str {
        match self.sync {
            Sync::Full => "sqlite",
            Sync::Normal => "sqlite-normal",
        }
    }

    fn bulk_insert(&self, docs: &[User]) -> EResult<()> {
        let mut c = self.conn()?;
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for u in docs {
            insert(&tx, u)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn count(&self) -> EResult<u64> {
        let c = self.conn()?;
        let n: i64 = c.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    fn get(&self, id: i64) -> EResult<Option<User>> {
        let c = self.conn()?;
        let mut st = c.prepare_cached(GET_BY_ID)?;
        let doc: Option<String> = st.query_row([id], |r| r.get(0)).optional()?;
        Ok(match doc {
            Some(s) => Some(serde_json::from_str(&s)?),
            None => None,
        })
    }

    fn find_by_email(&self, email: &str) -> EResult<Option<i64>> {
        let c = self.conn()?;
        let mut st = c.prepare_cached(GET_BY_EMAIL)?;
        let doc: Option<String> = st.query_row([email], |r| r.get(0)).optional()?;
        Ok(match doc {
            Some(s) => serde_json::from_str::<Value>(&s)?["_id"].as_i64(),
            None => None,
        })
    }

    fn age_range(&self, lo: i32, hi: i32, limit: usize) -> EResult<Vec<i32>> {
        let c = self.conn()?;
        let mut st = c.prepare_cached(AGE_RANGE)?;
        let mut rows = st.query(params![lo, hi, limit as i64])?;
        let mut ages = Vec::with_capacity(limit);
        while let Some(row) = rows.next()? {
            let s: String = row.get(0)?;
            let v: Value = serde_json::from_str(&s)?;
            ages.push(v["age"].as_i64().unwrap_or(-1) as i32);
        }
        Ok(ages)
    }

    fn scan(&self, city: &str, min_score: f64) -> EResult<u64> {
        let c = self.conn()?;
        let mut st = c.prepare_cached(SCAN)?;
        let mut rows = st.query(params![city, min_score])?;
        let mut n = 0;
        while let Some(row) = rows.next()? {
            let s: String = row.get(0)?;
            let _v: Value = serde_json::from_str(&s)?;
            n += 1;
        }
        Ok(n)
    }

    fn update_by_email(&self, emails: &[String], deadline: Instant) -> EResult<usize> {
        let mut c = self.conn()?;
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut done = 0;
        {
            let mut st = tx.prepare_cached(UPDATE)?;
            for e in emails {
                st.execute([e])?;
                done += 1;
                if Instant::now() >= deadline {
                    break;
                }
            }
        }
        tx.commit()?;
        Ok(done)
    }

    fn writer(&self) -> EResult<Box<dyn Writer>> {
        Ok(Box::new(SqliteWriter(connect(&self.path, self.sync)?)))
    }

    fn disk_bytes(&self) -> EResult<u64> {
        let c = self.conn()?;
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        super::dir_bytes(&self.dir)
    }
}
