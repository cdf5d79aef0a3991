//! Differential tests: the same entities and rows in collection-store (through
//! the ORM) and in SQLite (through sqlx); the same sea-query conditions —
//! a fixed set, then random ones from a proptest generator over typed,
//! nullable columns — must give the same rows in the same order.
//!
//! Documented normalisations (what makes the two comparable):
//! * **NULL / missing.** A `None` is stored as `null` for `a`, `b` and `flag`
//!   and *left out of the document* for `s` (`skip_serializing_if`); both are
//!   SQL NULL on the SQLite side. The ORM treats a missing field as NULL
//!   (see `collection_store_orm::condition`), so both spellings must agree.
//! * **LIKE case.** SQLite's `LIKE` is ASCII case-insensitive by default; the
//!   ORM's is case-sensitive (SQL's standard rule). The SQLite connection runs
//!   `PRAGMA case_sensitive_like = ON`. Patterns apply to the text column only.
//! * **Integer / real.** `a` holds integers and is compared with integers and
//!   reals (`a < 1.5`); `b` holds reals and is compared with both. Both stores
//!   compare numbers by value. No column mixes numbers with text (SQLite would
//!   compare across types; collection-store brackets comparisons by type).
//! * **Booleans** are SQLite integers 0/1; `flag` is compared only for equality.
//! * **Order.** Every ORDER BY ends with the primary key, so ties are
//!   deterministic; NULLs sort first ascending and last descending in both.
//!
//! `PROPTEST_CASES` sets the number of random conditions (default 64).

use std::sync::Arc;

use collection_store::{Database, Document};
use collection_store_orm::driver::EmbeddedDriver;
use collection_store_orm::{EntityManager, Query};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sea_query::{
    Cond, Condition, Expr, ExprTrait, Iden, LikeExpr, Order, SqliteQueryBuilder, Value as SqlValue,
};
use sea_query_sqlx::SqlxBinder;
use serde::{Deserialize, Serialize};
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{Row as _, SqlitePool};

#[derive(Document, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[document(collection = "rows")]
#[document(index(fields(a)))]
struct Row {
    #[document(id)]
    id: i64,
    a: Option<i64>,
    b: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    flag: Option<bool>,
}

const WORDS: [&str; 8] = ["abc", "Abc", "a_c", "a%c", "b", "", "xyz abc", "ab"];

/// 80 rows whose every field is a function of the row number, with NULLs.
fn rows() -> Vec<Row> {
    (0..80i64)
        .map(|i| Row {
            id: i,
            a: (i % 7 != 3).then_some((i * 5) % 9 - 4),
            b: (i % 5 != 0).then_some(((i * 3) % 11) as f64 / 2.0 - 2.0),
            s: (i % 6 != 1).then(|| WORDS[(i as usize * 7) % WORDS.len()].to_owned()),
            flag: (i % 4 != 2).then_some(i % 3 == 0),
        })
        .collect()
}

struct Fx {
    _dir: tempfile::TempDir,
    em: EntityManager,
    pool: SqlitePool,
}

async fn fixture() -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let em = EntityManager::new(Arc::new(EmbeddedDriver::new(db)));
    for r in rows() {
        em.persist(r).unwrap();
    }
    em.flush().await.unwrap();
    em.clear();

    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    for sql in [
        "PRAGMA case_sensitive_like = ON",
        "CREATE TABLE rows (id INTEGER PRIMARY KEY, a INTEGER, b REAL, s TEXT, flag INTEGER)",
        "CREATE INDEX rows_a ON rows (a)",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    for r in rows() {
        let (sql, values) = sea_query::Query::insert()
            .into_table(RowIden::Table)
            .columns([
                RowIden::Id,
                RowIden::A,
                RowIden::B,
                RowIden::S,
                RowIden::Flag,
            ])
            .values_panic([
                r.id.into(),
                r.a.into(),
                r.b.into(),
                r.s.clone().into(),
                r.flag.into(),
            ])
            .build_sqlx(SqliteQueryBuilder);
        sqlx::query_with(sqlx::AssertSqlSafe(sql), values)
            .execute(&pool)
            .await
            .unwrap();
    }
    Fx {
        _dir: dir,
        em,
        pool,
    }
}

/// ORDER BY, OFFSET, LIMIT of one comparison.
#[derive(Debug, Clone)]
struct Shape {
    order: Option<(RowIden, bool)>,
    skip: u64,
    limit: Option<u64>,
}

impl Fx {
    async fn sqlite(&self, cond: &Condition, shape: &Shape) -> Vec<i64> {
        let mut q = sea_query::Query::select();
        q.column(RowIden::Id)
            .from(RowIden::Table)
            .cond_where(cond.clone());
        if let Some((col, asc)) = shape.order {
            q.order_by(col, if asc { Order::Asc } else { Order::Desc });
        }
        q.order_by(RowIden::Id, Order::Asc);
        // SQLite needs a LIMIT for an OFFSET; -1 is "no limit".
        if shape.limit.is_some() || shape.skip > 0 {
            q.limit(shape.limit.unwrap_or(u64::MAX >> 1));
            q.offset(shape.skip);
        }
        let (sql, values) = q.build_sqlx(SqliteQueryBuilder);
        sqlx::query_with(sqlx::AssertSqlSafe(sql.clone()), values)
            .fetch_all(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .iter()
            .map(|r| r.get::<i64, _>(0))
            .collect()
    }

    async fn orm(&self, cond: &Condition, shape: &Shape) -> Vec<i64> {
        let mut q = Query::<Row>::from(cond.clone());
        if let Some((col, asc)) = shape.order {
            q = q.order_by(col, if asc { Order::Asc } else { Order::Desc });
        }
        q = q.order_by(RowIden::Id, Order::Asc).skip(shape.skip);
        if let Some(l) = shape.limit {
            q = q.limit(l);
        }
        let found = self
            .em
            .find(q)
            .await
            .unwrap_or_else(|e| panic!("{cond:?}: {e}"));
        let ids = found.iter().map(|r| r.read().id).collect();
        self.em.clear();
        ids
    }

    async fn check(&self, cond: &Condition, shape: &Shape) -> Result<(), String> {
        let (want, got) = (self.sqlite(cond, shape).await, self.orm(cond, shape).await);
        if want == got {
            Ok(())
        } else {
            let sql = sea_query::Query::select()
                .column(RowIden::Id)
                .from(RowIden::Table)
                .cond_where(cond.clone())
                .to_string(SqliteQueryBuilder);
            Err(format!(
                "{sql} {shape:?}\n  sqlite {want:?}\n  orm    {got:?}"
            ))
        }
    }
}

fn col(c: RowIden) -> Expr {
    Expr::col(c)
}

/// Hand-picked conditions: one or more per translated operator.
fn fixed() -> Vec<Condition> {
    use RowIden::*;
    let none_i = || SqlValue::BigInt(None);
    vec![
        Cond::all(),
        Cond::any(),
        Cond::all().add(col(A).eq(1)),
        Cond::all().add(col(A).ne(1)),
        Cond::all().add(col(A).lt(0)),
        Cond::all().add(col(A).lte(0)),
        Cond::all().add(col(A).gt(1.5)),
        Cond::all().add(col(B).gte(0)),
        Cond::all().add(col(B).eq(2)),
        Cond::all().add(col(A).is_in([1, 2, 3])),
        Cond::all().add(col(A).is_not_in([1, 2, 3])),
        Cond::all().add(col(A).is_in(Vec::<i64>::new())),
        Cond::all().add(col(A).is_not_in(Vec::<i64>::new())),
        Cond::all().add(col(A).is_not_in([Expr::val(1), Expr::val(none_i())])),
        Cond::all().add(col(A).between(-1, 2)),
        Cond::all().add(col(B).not_between(-1.0, 1.0)),
        Cond::all().add(col(S).like("a%")),
        Cond::all().add(col(S).like("A%")),
        Cond::all().add(col(S).like("a_c")),
        Cond::all().add(col(S).like(LikeExpr::new("a!%c").escape('!'))),
        Cond::all().add(col(S).not_like("%b%")),
        Cond::all().add(col(S).like("%")),
        Cond::all().add(col(S).eq("")),
        Cond::all().add(col(S).is_null()),
        Cond::all().add(col(S).is_not_null()),
        Cond::all().add(col(A).is_null()),
        Cond::all().add(col(Flag).eq(true)),
        Cond::all().add(col(Flag).ne(true)),
        Cond::all().add(col(A).eq(none_i())),
        Cond::all().add(col(A).eq(1).not()),
        Cond::all().add(col(A).gt(0)).add(col(S).like("%c")),
        Cond::any().add(col(A).gt(2)).add(col(B).lt(-1)),
        Cond::any().add(col(A).gt(2)).add(col(S).is_null()).not(),
        Cond::all()
            .add(Cond::any().add(col(A).eq(0)).add(col(A).is_null()))
            .add(col(B).is_not_null().not()),
        Cond::all().add(Expr::val(0).lt(col(A))),
    ]
}

fn shapes() -> Vec<Shape> {
    vec![
        Shape {
            order: None,
            skip: 0,
            limit: None,
        },
        Shape {
            order: Some((RowIden::A, true)),
            skip: 0,
            limit: None,
        },
        Shape {
            order: Some((RowIden::B, false)),
            skip: 3,
            limit: Some(7),
        },
        Shape {
            order: Some((RowIden::S, true)),
            skip: 0,
            limit: Some(5),
        },
        Shape {
            order: Some((RowIden::S, false)),
            skip: 2,
            limit: None,
        },
    ]
}

#[tokio::test(flavor = "current_thread")]
async fn fixed_conditions_agree_with_sqlite() {
    let fx = fixture().await;
    let mut failures = Vec::new();
    let mut nonempty = 0;
    for cond in fixed() {
        for shape in shapes() {
            if !fx.sqlite(&cond, &shape).await.is_empty() {
                nonempty += 1;
            }
            if let Err(e) = fx.check(&cond, &shape).await {
                failures.push(e);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The fixed set is not vacuous: most of its queries return rows.
    assert!(nonempty > fixed().len() * shapes().len() / 2, "{nonempty}");
}

fn int_value() -> impl Strategy<Value = SqlValue> {
    prop_oneof![
        6 => (-5i64..=5).prop_map(|v| SqlValue::BigInt(Some(v))),
        2 => (-10i32..=10).prop_map(|v| SqlValue::Double(Some(f64::from(v) / 4.0))),
        1 => Just(SqlValue::BigInt(None)),
    ]
}

fn real_value() -> impl Strategy<Value = SqlValue> {
    prop_oneof![
        6 => (-10i32..=10).prop_map(|v| SqlValue::Double(Some(f64::from(v) / 2.0))),
        2 => (-3i64..=3).prop_map(|v| SqlValue::BigInt(Some(v))),
        1 => Just(SqlValue::Double(None)),
    ]
}

fn text_value() -> impl Strategy<Value = SqlValue> {
    prop_oneof![
        8 => proptest::sample::select(WORDS.to_vec()).prop_map(|w| SqlValue::String(Some(w.to_owned()))),
        1 => Just(SqlValue::String(None)),
    ]
}

fn like_pattern() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        proptest::sample::select(vec!["a", "A", "b", "c", "%", "_", " ", "x"]),
        0..5,
    )
    .prop_map(|parts| parts.concat())
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

fn compare(c: RowIden, op: Op, v: SqlValue) -> Expr {
    let e = col(c);
    match op {
        Op::Eq => e.eq(v),
        Op::Ne => e.ne(v),
        Op::Lt => e.lt(v),
        Op::Le => e.lte(v),
        Op::Gt => e.gt(v),
        Op::Ge => e.gte(v),
    }
}

fn op() -> impl Strategy<Value = Op> {
    proptest::sample::select(vec![Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge])
}

/// One predicate over one typed column.
fn leaf() -> impl Strategy<Value = Expr> {
    let numeric = |c: RowIden, values: BoxedStrategy<SqlValue>| {
        prop_oneof![
            4 => (op(), values.clone()).prop_map(move |(o, v)| compare(c, o, v)),
            1 => (op(), values.clone()).prop_map(move |(o, v)| {
                // value op column
                let e = Expr::val(v);
                match o {
                    Op::Eq => e.eq(col(c)),
                    Op::Ne => e.ne(col(c)),
                    Op::Lt => e.lt(col(c)),
                    Op::Le => e.lte(col(c)),
                    Op::Gt => e.gt(col(c)),
                    Op::Ge => e.gte(col(c)),
                }
            }),
            2 => (proptest::collection::vec(values.clone(), 0..4), any::<bool>()).prop_map(move |(vs, neg)| {
                if neg { col(c).is_not_in(vs) } else { col(c).is_in(vs) }
            }),
            2 => (values.clone(), values, any::<bool>()).prop_map(move |(a, b, neg)| {
                if neg { col(c).not_between(a, b) } else { col(c).between(a, b) }
            }),
            1 => any::<bool>().prop_map(move |n| if n { col(c).is_null() } else { col(c).is_not_null() }),
        ]
        .boxed()
    };
    prop_oneof![
        numeric(RowIden::A, int_value().boxed()),
        numeric(RowIden::B, real_value().boxed()),
        prop_oneof![
            3 => (op(), text_value()).prop_map(|(o, v)| compare(RowIden::S, o, v)),
            3 => (like_pattern(), any::<bool>()).prop_map(|(p, neg)| {
                if neg { col(RowIden::S).not_like(p) } else { col(RowIden::S).like(p) }
            }),
            1 => any::<bool>().prop_map(|n| if n { col(RowIden::S).is_null() } else { col(RowIden::S).is_not_null() }),
        ],
        (any::<bool>(), any::<bool>()).prop_map(|(v, ne)| {
            if ne {
                col(RowIden::Flag).ne(v)
            } else {
                col(RowIden::Flag).eq(v)
            }
        }),
    ]
}

/// AND / OR / NOT trees of predicates, up to three levels deep.
fn condition() -> impl Strategy<Value = Condition> {
    let leaf_cond = leaf().prop_map(|e| Cond::all().add(e));
    leaf_cond.prop_recursive(3, 16, 3, |inner| {
        (
            proptest::collection::vec(inner, 1..4),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(parts, any, negate)| {
                let mut c = if any { Cond::any() } else { Cond::all() };
                for p in parts {
                    c = c.add(p);
                }
                if negate {
                    c.not()
                } else {
                    c
                }
            })
    })
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        proptest::option::of((
            proptest::sample::select(vec![RowIden::A, RowIden::B, RowIden::S, RowIden::Flag]),
            any::<bool>(),
        )),
        prop_oneof![3 => Just(0u64), 1 => 1u64..10],
        proptest::option::of(1u64..20),
    )
        .prop_map(|(order, skip, limit)| Shape { order, skip, limit })
}

#[test]
fn random_conditions_agree_with_sqlite() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fx = rt.block_on(fixture());
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let (ran, nonempty) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    runner
        .run(&(condition(), shape()), |(cond, shape)| {
            ran.set(ran.get() + 1);
            if !rt.block_on(fx.sqlite(&cond, &shape)).is_empty() {
                nonempty.set(nonempty.get() + 1);
            }
            rt.block_on(fx.check(&cond, &shape))
                .map_err(TestCaseError::fail)
        })
        .unwrap();
    // The generator is not vacuous: a good share of its conditions match rows.
    assert!(
        nonempty.get() * 4 >= ran.get(),
        "{} of {} non-empty",
        nonempty.get(),
        ran.get()
    );
}

#[test]
fn the_iden_enum_names_the_columns() {
    assert_eq!(RowIden::Table.as_str(), "rows");
    assert_eq!(Iden::unquoted(&RowIden::Flag), "flag");
}
