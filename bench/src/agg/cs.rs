//! The aggregation queries as collection-store pipelines.

use std::path::Path;

use collection_store::{Collection, Database, DatabaseOptions, Durability, IndexSpec};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{AggEngine, CityRevenue, CityUsers};
use crate::data;
use crate::engines::EResult;

/// collection-store with the suite's settings (`Durability::Immediate`).
pub struct CsAgg {
    _db: Database,
    users: Collection,
    orders: Collection,
}

impl CsAgg {
    /// Opens a database in `dir` with the users' two indexes.
    pub fn open(dir: &Path) -> EResult<CsAgg> {
        let db = Database::open_with(
            dir,
            DatabaseOptions::default().durability(Durability::Immediate),
        )?;
        let users = db.collection("users")?;
        users.create_index(IndexSpec::new([("email", 1)]).unique())?;
        users.create_index(IndexSpec::new([("age", 1)]))?;
        let orders = db.collection("orders")?;
        Ok(CsAgg {
            _db: db,
            users,
            orders,
        })
    }
}

#[derive(Deserialize)]
struct UsersRow {
    #[serde(rename = "_id")]
    city: String,
    n: u64,
    avg: f64,
}

#[derive(Deserialize)]
struct RevenueRow {
    #[serde(rename = "_id")]
    city: String,
    n: u64,
    revenue: f64,
}

fn users_rows(rows: Vec<UsersRow>) -> Vec<CityUsers> {
    rows.into_iter()
        .map(|r| CityUsers {
            city: r.city,
            users: r.n,
            avg_score: r.avg,
        })
        .collect()
}

fn group_by_city() -> Value {
    json!({"$group": {"_id": "$city", "n": {"$sum": 1}, "avg": {"$avg": "$score"}}})
}

fn batches<T: serde::Serialize>(
    n: u64,
    batch: u64,
    make: impl Fn(i64) -> T,
    into: &Collection,
) -> EResult<()> {
    let mut start = 0;
    while start < n {
        let end = (start + batch).min(n);
        let docs = (start..end)
            .map(|i| serde_json::to_value(make(i as i64)))
            .collect::<Result<Vec<_>, _>>()?;
        into.insert_many(docs)?;
        start = end;
    }
    Ok(())
}

impl AggEngine for CsAgg {
    fn id(&self) -> &'static str {
        "cs"
    }

    fn load_users(&self, n: u64, batch: u64) -> EResult<()> {
        batches(n, batch, data::user, &self.users)
    }

    fn load_orders(&self, m: u64, users: u64, batch: u64) -> EResult<()> {
        batches(m, batch, |j| data::order(j, users), &self.orders)
    }

    fn users_by_city(&self) -> EResult<Vec<CityUsers>> {
        Ok(users_rows(
            self.users.aggregate(json!([group_by_city()])).to_vec_as()?,
        ))
    }

    fn revenue_by_city(&self) -> EResult<Vec<CityRevenue>> {
        let rows: Vec<RevenueRow> = self
            .orders
            .aggregate(json!([
                {"$lookup": {"from": "users", "localField": "user", "foreignField": "_id", "as": "u"}},
                {"$unwind": "$u"},
                {"$group": {"_id": "$u.city", "n": {"$sum": 1}, "revenue": {"$sum": "$amount"}}}
            ]))
            .to_vec_as()?;
        Ok(rows
            .into_iter()
            .map(|r| CityRevenue {
                city: r.city,
                orders: r.n,
                revenue: r.revenue,
            })
            .collect())
    }

    fn users_by_city_in_ages(&self, lo: i32, hi: i32) -> EResult<Vec<CityUsers>> {
        Ok(users_rows(
            self.users
                .aggregate(json!([{"$match": {"age": {"$gte": lo, "$lt": hi}}}, group_by_city()]))
                .to_vec_as()?,
        ))
    }
}
