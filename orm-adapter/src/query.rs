//! [`Query<T>`]: what to find — a typed filter or a sea-query condition, sort,
//! skip, limit — lowered to a driver [`FindQuery`].

use std::marker::PhantomData;

use collection_store::typed::{Filter, Sort};
use collection_store::Document;
use sea_query::{Condition, Expr, Iden, Order};
use serde_json::{json, Map, Value};

use crate::condition::filter_for_table;
use crate::driver::FindQuery;
use crate::error::{OrmError, Result};

/// A find over documents of type `T`. Build it from a typed [`Filter`]
/// (`User::fields().age().gte(18)`), a `sea_query::Condition` or `Expr`
/// (SQL semantics, see [`crate::condition`]), or [`Query::all`]; conditions
/// added with [`and`](Self::and) / [`and_where`](Self::and_where) combine
/// with AND.
///
/// ```
/// use collection_store_orm::Query;
/// use collection_store_schemas::{User, UserIden};
/// use sea_query::{Expr, ExprTrait, Order};
///
/// let f = User::fields();
/// let q = Query::from(f.active().eq(true))
///     .and_where(Expr::col(UserIden::Age).between(18, 30))
///     .sort(f.age().desc())
///     .order_by(UserIden::Email, Order::Asc)
///     .skip(10)
///     .limit(5);
/// let find = q.to_find().unwrap();
/// assert_eq!(find.sort, Some(serde_json::json!({"age": -1, "email": 1})));
/// ```
pub struct Query<T> {
    filter: Result<Value>,
    sort: Vec<(String, i32)>,
    skip: u64,
    limit: Option<u64>,
    _marker: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Query<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Query")
            .field("filter", &self.filter.as_ref().ok())
            .field("sort", &self.sort)
            .field("skip", &self.skip)
            .field("limit", &self.limit)
            .finish()
    }
}

fn and_json(a: Value, b: Value) -> Value {
    match (
        a.as_object().is_some_and(Map::is_empty),
        b.as_object().is_some_and(Map::is_empty),
    ) {
        (true, _) => b,
        (_, true) => a,
        _ => json!({"$and": [a, b]}),
    }
}

impl<T: Document> Query<T> {
    /// Every document.
    pub fn all() -> Self {
        Query {
            filter: Ok(Value::Object(Map::new())),
            sort: Vec::new(),
            skip: 0,
            limit: None,
            _marker: PhantomData,
        }
    }

    /// Also requires `filter`.
    pub fn and(mut self, filter: Filter<T>) -> Self {
        self.filter = match (self.filter, filter.into_json()) {
            (Ok(a), Ok(b)) => Ok(and_json(a, b)),
            (Err(e), _) => Err(e),
            (_, Err(e)) => Err(e.into()),
        };
        self
    }

    /// Also requires a sea-query condition (a `Condition` or an `Expr`).
    pub fn and_where(mut self, cond: impl Into<Expr>) -> Self {
        let expr: Expr = cond.into();
        self.filter = match (self.filter, filter_for_table(&expr, T::COLLECTION)) {
            (Ok(a), Ok(b)) => Ok(and_json(a, b)),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        self
    }

    /// Orders by typed paths (`f.age().desc().then(f.email().asc())`);
    /// repeated calls append keys.
    pub fn sort(mut self, sort: Sort<T>) -> Self {
        if let Value::Object(m) = sort.to_json() {
            for (k, v) in m {
                self.sort.push((k, v.as_i64().unwrap_or(1) as i32));
            }
        }
        self
    }

    /// Orders by a column named by an `Iden` (as `ORDER BY column ASC|DESC`).
    pub fn order_by(mut self, column: impl Iden, order: Order) -> Self {
        let dir = match order {
            Order::Desc => -1,
            _ => 1,
        };
        if !matches!(order, Order::Asc | Order::Desc) {
            self.filter = Err(OrmError::UnsupportedExpression(
                "ORDER BY a list of values or an expression".to_owned(),
            ));
        }
        self.sort.push((column.to_string(), dir));
        self
    }

    pub(crate) fn sort_by(mut self, path: &str, dir: i32) -> Self {
        self.sort.push((path.to_owned(), dir));
        self
    }

    /// Skips the first `n` results.
    pub fn skip(mut self, n: u64) -> Self {
        self.skip = n;
        self
    }

    /// Returns at most `n` results.
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }

    /// The driver statement (filter, sort, skip, limit; no projection).
    pub fn to_find(self) -> Result<FindQuery> {
        Ok(FindQuery {
            filter: self.filter?,
            sort: if self.sort.is_empty() {
                None
            } else {
                Some(Value::Object(
                    self.sort
                        .into_iter()
                        .map(|(k, d)| (k, Value::from(d)))
                        .collect(),
                ))
            },
            skip: self.skip,
            limit: self.limit,
            projection: None,
        })
    }

    pub(crate) fn into_filter(self) -> Result<Value> {
        self.filter
    }
}

impl<T: Document> Default for Query<T> {
    fn default() -> Self {
        Query::all()
    }
}

impl<T: Document> From<Filter<T>> for Query<T> {
    fn from(f: Filter<T>) -> Self {
        Query::all().and(f)
    }
}

impl<T: Document> From<Condition> for Query<T> {
    fn from(c: Condition) -> Self {
        Query::all().and_where(c)
    }
}

impl<T: Document> From<Expr> for Query<T> {
    fn from(e: Expr) -> Self {
        Query::all().and_where(e)
    }
}
