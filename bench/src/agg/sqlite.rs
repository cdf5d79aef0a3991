//! The aggregation queries in SQL over SQLite's JSON functions.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, TransactionBehavior};

use super::{AggEngine, CityRevenue, CityUsers};
use crate::data;
use crate::engines::sqlite::{connect, Sync};
use crate::engines::{err, EResult};

/// SQLite as in the suite (WAL, `synchronous=FULL`), users and orders as JSON text.
pub struct SqliteAgg {
    conn: Mutex<Connection>,
}

const A1: &str = "SELECT json_extract(doc, '$.city'), count(*), avg(json_extract(doc, '$.score')) \
     FROM users GROUP BY 1";
const A2: &str =
    "SELECT json_extract(u.doc, '$.city'), count(*), sum(json_extract(o.doc, '$.amount')) \
     FROM orders o JOIN users u ON u.id = json_extract(o.doc, '$.user') GROUP BY 1";
const A3: &str = "SELECT json_extract(doc, '$.city'), count(*), avg(json_extract(doc, '$.score')) \
     FROM users WHERE json_extract(doc, '$.age') >= ?1 AND json_extract(doc, '$.age') < ?2 GROUP BY 1";

impl SqliteAgg {
    /// Creates the tables and the users' two expression indexes.
    pub fn open(dir: &Path) -> EResult<SqliteAgg> {
        let c = connect(&dir.join("agg.sqlite"), Sync::Full)?;
        c.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, doc TEXT NOT NULL);
             CREATE UNIQUE INDEX users_email ON users (json_extract(doc, '$.email'));
             CREATE INDEX users_age ON users (json_extract(doc, '$.age'));
             CREATE TABLE orders (id INTEGER PRIMARY KEY, doc TEXT NOT NULL);",
        )?;
        Ok(SqliteAgg {
            conn: Mutex::new(c),
        })
    }

    fn conn(&self) -> EResult<std::sync::MutexGuard<'_, Connection>> {
        self.conn
            .lock()
            .map_err(|_| err("SQLite connection mutex poisoned"))
    }

    fn load<T: serde::Serialize>(
        &self,
        table: &str,
        n: u64,
        batch: u64,
        make: impl Fn(i64) -> T,
    ) -> EResult<()> {
        let mut c = self.conn()?;
        let sql = format!("INSERT INTO {table} (id, doc) VALUES (?1, ?2)");
        let mut start = 0;
        while start < n {
            let end = (start + batch).min(n);
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut st = tx.prepare_cached(&sql)?;
                for i in start..end {
                    st.execute(params![i as i64, serde_json::to_string(&make(i as i64))?])?;
                }
            }
            tx.commit()?;
            start = end;
        }
        Ok(())
    }

    fn users_query(&self, sql: &str, args: &[i32]) -> EResult<Vec<CityUsers>> {
        let c = self.conn()?;
        let mut st = c.prepare_cached(sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(args.iter()), |r| {
            Ok(CityUsers {
                city: r.get(0)?,
                users: r.get::<_, i64>(1)? as u64,
                avg_score: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl AggEngine for SqliteAgg {
    fn id(&self) -> &'static str {
        "sqlite"
    }

    fn load_users(&self, n: u64, batch: u64) -> EResult<()> {
        self.load("users", n, batch, data::user)
    }

    fn load_orders(&self, m: u64, users: u64, batch: u64) -> EResult<()> {
        self.load("orders", m, batch, |j| data::order(j, users))
    }

    fn users_by_city(&self) -> EResult<Vec<CityUsers>> {
        self.users_query(A1, &[])
    }

    fn revenue_by_city(&self) -> EResult<Vec<CityRevenue>> {
        let c = self.conn()?;
        let mut st = c.prepare_cached(A2)?;
        let rows = st.query_map([], |r| {
            Ok(CityRevenue {
                city: r.get(0)?,
                orders: r.get::<_, i64>(1)? as u64,
                revenue: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn users_by_city_in_ages(&self, lo: i32, hi: i32) -> EResult<Vec<CityUsers>> {
        self.users_query(A3, &[lo, hi])
    }
}
