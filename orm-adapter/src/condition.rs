//! sea-query conditions → the engine's filter language.
//!
//! [`filter_from_condition`] and [`filter_from_expr`] translate a
//! `sea_query::Condition` / `Expr` tree (built from the `...Iden` enums that
//! `#[derive(Document)]` generates, or from any `Iden`) into a MongoDB-style
//! filter document with **SQL's meaning**: a row matches when the condition
//! is TRUE under SQL's three-valued logic.
//!
//! | SQL | filter (where the condition is TRUE) |
//! |---|---|
//! | `c = v` | `{c: v}` |
//! | `c <> v` | `{c: {$nin: [v, null]}}` (NULL `<>` anything is not TRUE) |
//! | `c < v`, `<=`, `>`, `>=` | `$lt`, `$lte`, `$gt`, `$gte` |
//! | `c IN (..)`, `NOT IN` | `$in`, `$nin` (with `null`; a NULL in the list makes `NOT IN` never TRUE) |
//! | `c BETWEEN a AND b` | `{c: {$gte: a, $lte: b}}` |
//! | `c LIKE p` | an anchored regex: `%` → `.*`, `_` → `.`, every other character escaped (`ESCAPE` honoured); case-sensitive |
//! | `c IS NULL`, `IS NOT NULL` | `{c: null}` (also matches a missing field), `{c: {$ne: null}}` |
//! | `AND`, `OR` | `$and`, `$or` |
//! | `NOT e` | where `e` is FALSE (so `NOT (c = v)` does not match NULL, as in SQL) |
//!
//! A missing field is NULL. Comparisons with a NULL value are never TRUE.
//! `LIKE` is case-sensitive (SQL's standard and PostgreSQL's rule; SQLite is
//! ASCII case-insensitive unless `PRAGMA case_sensitive_like = ON`).
//! Comparisons are type-bracketed, as in MongoDB: `c < 5` never matches a
//! string (SQLite would compare across types), so keep each column to one type.
//! Anything else — functions, arithmetic, two-column comparisons, subqueries,
//! custom SQL — is [`OrmError::UnsupportedExpression`] naming it, never a
//! silently different filter.
//!
//! ```
//! use collection_store_orm::condition::filter_from_condition;
//! use sea_query::{Cond, Expr, ExprTrait};
//! use serde_json::json;
//!
//! let cond = Cond::all()
//!     .add(Expr::col("age").gte(18))
//!     .add(Cond::any().add(Expr::col("name").like("A%")).add(Expr::col("nickname").is_null()));
//! assert_eq!(
//!     filter_from_condition(cond).unwrap(),
//!     json!({"$and": [
//!         {"age": {"$gte": 18}},
//!         {"$or": [{"name": {"$regex": "^A.*$", "$options": "s"}}, {"nickname": null}]}
//!     ]})
//! );
//! ```

use sea_query::{BinOper, ColumnRef, Condition, Expr, Keyword, UnOper, Value as SqlValue};
use serde_json::{json, Map, Value};

use crate::error::{OrmError, Result};

/// The filter matching the rows where `cond` is TRUE.
pub fn filter_from_condition(cond: Condition) -> Result<Value> {
    filter_from_expr(&Expr::from(cond))
}

/// The filter matching the rows where `expr` (a boolean expression) is TRUE.
pub fn filter_from_expr(expr: &Expr) -> Result<Value> {
    Translator { table: None }.when(expr, true)
}

/// [`filter_from_expr`] for a query on `table`: columns qualified with another
/// table are refused (there are no joins).
pub fn filter_for_table(expr: &Expr, table: &str) -> Result<Value> {
    Translator { table: Some(table) }.when(expr, true)
}

fn all() -> Value {
    Value::Object(Map::new())
}

fn nothing() -> Value {
    json!({"$nor": [{}]})
}

fn is_all(v: &Value) -> bool {
    v.as_object().is_some_and(Map::is_empty)
}

fn is_nothing(v: &Value) -> bool {
    *v == nothing()
}

fn and(a: Value, b: Value) -> Value {
    if is_nothing(&a) || is_nothing(&b) {
        return nothing();
    }
    if is_all(&a) {
        return b;
    }
    if is_all(&b) {
        return a;
    }
    json!({"$and": flatten("$and", a).into_iter().chain(flatten("$and", b)).collect::<Vec<_>>()})
}

fn or(a: Value, b: Value) -> Value {
    if is_all(&a) || is_all(&b) {
        return all();
    }
    if is_nothing(&a) {
        return b;
    }
    if is_nothing(&b) {
        return a;
    }
    json!({"$or": flatten("$or", a).into_iter().chain(flatten("$or", b)).collect::<Vec<_>>()})
}

fn flatten(op: &str, v: Value) -> Vec<Value> {
    match v {
        Value::Object(mut m) if m.len() == 1 && m.contains_key(op) => match m.remove(op) {
            Some(Value::Array(items)) => items,
            Some(other) => vec![json!({ op: other })],
            None => Vec::new(),
        },
        other => vec![other],
    }
}

fn field(path: &str, cond: Value) -> Value {
    let mut m = Map::new();
    m.insert(path.to_owned(), cond);
    Value::Object(m)
}

/// A short description of an expression, for error messages.
fn describe(e: &Expr) -> String {
    let kind = match e {
        Expr::FunctionCall(f) => format!("function call {:?}", f.get_func()),
        Expr::SubQuery(..) => "subquery".to_owned(),
        Expr::Custom(s) => format!("custom SQL `{s}`"),
        Expr::CustomWithExpr(s, _) => format!("custom SQL `{s}`"),
        Expr::Case(_) => "CASE expression".to_owned(),
        Expr::Binary(_, op, _) => format!("operator {op:?}"),
        Expr::Unary(op, _) => format!("unary operator {op:?}"),
        Expr::Column(_) => "a bare column used as a condition".to_owned(),
        Expr::Tuple(_) => "a tuple".to_owned(),
        Expr::Value(_) | Expr::Constant(_) => "a non-boolean value used as a condition".to_owned(),
        _ => "expression".to_owned(),
    };
    let mut detail = format!("{e:?}");
    if detail.len() > 160 {
        let mut end = 160;
        while !detail.is_char_boundary(end) {
            end -= 1;
        }
        detail.truncate(end);
        detail.push('…');
    }
    format!("{kind} ({detail})")
}

/// A sea-query value as JSON; `None` for SQL NULL.
fn json_value(v: &SqlValue) -> Result<Option<Value>> {
    Ok(match v {
        SqlValue::Bool(b) => b.map(Value::from),
        SqlValue::TinyInt(i) => i.map(Value::from),
        SqlValue::SmallInt(i) => i.map(Value::from),
        SqlValue::Int(i) => i.map(Value::from),
        SqlValue::BigInt(i) => i.map(Value::from),
        SqlValue::TinyUnsigned(i) => i.map(Value::from),
        SqlValue::SmallUnsigned(i) => i.map(Value::from),
        SqlValue::Unsigned(i) => i.map(Value::from),
        SqlValue::BigUnsigned(i) => i.map(Value::from),
        SqlValue::Float(f) => match f {
            Some(f) => Some(finite(f64::from(*f))?),
            None => None,
        },
        SqlValue::Double(f) => match f {
            Some(f) => Some(finite(*f)?),
            None => None,
        },
        SqlValue::String(s) => s.clone().map(Value::String),
        SqlValue::Char(c) => c.map(|c| Value::String(c.to_string())),
        other => {
            return Err(OrmError::UnsupportedExpression(format!(
                "value {other:?}: only booleans, integers, floats, strings and chars translate to filter values"
            )))
        }
    })
}

fn finite(f: f64) -> Result<Value> {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| OrmError::UnsupportedExpression(format!("non-finite number {f}")))
}

/// `LIKE` pattern → anchored regex (`escape` marks a literal `%`, `_` or itself).
fn like_regex(pattern: &str, escape: Option<char>) -> Result<String> {
    let mut re = String::from("^");
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            match chars.next() {
                Some(lit) => re.push_str(&regex_escape(lit)),
                None => {
                    return Err(OrmError::UnsupportedExpression(format!(
                        "LIKE pattern {pattern:?} ends with its escape character"
                    )))
                }
            }
            continue;
        }
        match c {
            '%' => re.push_str(".*"),
            '_' => re.push('.'),
            c => re.push_str(&regex_escape(c)),
        }
    }
    re.push('$');
    Ok(re)
}

fn regex_escape(c: char) -> String {
    let mut buf = [0u8; 4];
    regex::escape(c.encode_utf8(&mut buf))
}

#[derive(Clone, Copy)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn negate(self) -> Cmp {
        match self {
            Cmp::Eq => Cmp::Ne,
            Cmp::Ne => Cmp::Eq,
            Cmp::Lt => Cmp::Ge,
            Cmp::Le => Cmp::Gt,
            Cmp::Gt => Cmp::Le,
            Cmp::Ge => Cmp::Lt,
        }
    }

    /// `v op c` is `c op' v`.
    fn flip(self) -> Cmp {
        match self {
            Cmp::Lt => Cmp::Gt,
            Cmp::Le => Cmp::Ge,
            Cmp::Gt => Cmp::Lt,
            Cmp::Ge => Cmp::Le,
            other => other,
        }
    }

    fn of(op: &BinOper) -> Option<Cmp> {
        Some(match op {
            BinOper::Equal => Cmp::Eq,
            BinOper::NotEqual => Cmp::Ne,
            BinOper::SmallerThan => Cmp::Lt,
            BinOper::SmallerThanOrEqual => Cmp::Le,
            BinOper::GreaterThan => Cmp::Gt,
            BinOper::GreaterThanOrEqual => Cmp::Ge,
            _ => return None,
        })
    }
}

struct Translator<'a> {
    table: Option<&'a str>,
}

impl Translator<'_> {
    fn column(&self, c: &ColumnRef) -> Result<String> {
        match c {
            ColumnRef::Column(name) => {
                if let (Some(t), Some(expected)) = (&name.0, self.table) {
                    let t = t.1.to_string();
                    if t != expected {
                        return Err(OrmError::UnsupportedExpression(format!(
                            "column {}.{} in a query on '{expected}' (there are no joins)",
                            t, name.1
                        )));
                    }
                }
                Ok(name.1.to_string())
            }
            other => Err(OrmError::UnsupportedExpression(format!(
                "column reference {other:?} in a condition"
            ))),
        }
    }

    fn value(&self, e: &Expr) -> Result<Option<Value>> {
        match e {
            Expr::Value(v) | Expr::Constant(v) => json_value(v),
            Expr::Keyword(Keyword::Null) => Ok(None),
            other => Err(OrmError::UnsupportedExpression(format!(
                "{} where a value was expected",
                describe(other)
            ))),
        }
    }

    /// The filter for rows where `e` is TRUE (`want`) or FALSE (`!want`).
    fn when(&self, e: &Expr, want: bool) -> Result<Value> {
        match e {
            Expr::Unary(UnOper::Not, inner) => self.when(inner, !want),
            Expr::Constant(SqlValue::Bool(Some(b))) | Expr::Value(SqlValue::Bool(Some(b))) => {
                Ok(if *b == want { all() } else { nothing() })
            }
            Expr::Binary(l, op, r) => self.binary(e, l, op, r, want),
            other => Err(OrmError::UnsupportedExpression(describe(other))),
        }
    }

    fn binary(&self, whole: &Expr, l: &Expr, op: &BinOper, r: &Expr, want: bool) -> Result<Value> {
        match op {
            BinOper::And => {
                let (a, b) = (self.when(l, want)?, self.when(r, want)?);
                return Ok(if want { and(a, b) } else { or(a, b) });
            }
            BinOper::Or => {
                let (a, b) = (self.when(l, want)?, self.when(r, want)?);
                return Ok(if want { or(a, b) } else { and(a, b) });
            }
            _ => {}
        }
        let col = match l {
            Expr::Column(c) => self.column(c)?,
            _ => {
                // `v op column`: only plain comparisons flip.
                if let (Some(cmp), Expr::Column(c)) = (Cmp::of(op), r) {
                    let col = self.column(c)?;
                    let v = self.value(l)?;
                    return Ok(self.compare(&col, cmp.flip(), v, want));
                }
                return Err(OrmError::UnsupportedExpression(format!(
                    "{} as the left side of {op:?} (only a column can be compared)",
                    describe(l)
                )));
            }
        };
        if matches!(r, Expr::Column(_)) {
            return Err(OrmError::UnsupportedExpression(format!(
                "comparison between two columns ({}) has no filter equivalent",
                describe(whole)
            )));
        }
        if let Some(cmp) = Cmp::of(op) {
            let v = self.value(r)?;
            return Ok(self.compare(&col, cmp, v, want));
        }
        match op {
            BinOper::In | BinOper::NotIn => {
                let Expr::Tuple(items) = r else {
                    return Err(OrmError::UnsupportedExpression(format!(
                        "IN over {}",
                        describe(r)
                    )));
                };
                let mut values = Vec::with_capacity(items.len());
                let mut has_null = false;
                for item in items {
                    match self.value(item)? {
                        Some(v) => values.push(v),
                        None => has_null = true,
                    }
                }
                let positive = matches!(op, BinOper::In) == want;
                Ok(if positive {
                    if values.is_empty() {
                        nothing()
                    } else {
                        field(&col, json!({ "$in": values }))
                    }
                } else if has_null {
                    // `c NOT IN (.., NULL)` is never TRUE.
                    nothing()
                } else if values.is_empty() {
                    // `c NOT IN ()` is TRUE for every row, NULL included.
                    all()
                } else {
                    values.push(Value::Null);
                    field(&col, json!({ "$nin": values }))
                })
            }
            BinOper::Between | BinOper::NotBetween => {
                let Expr::Binary(a, BinOper::And, b) = r else {
                    return Err(OrmError::UnsupportedExpression(describe(whole)));
                };
                let (a, b) = (self.value(a)?, self.value(b)?);
                let between = matches!(op, BinOper::Between) == want;
                // BETWEEN a AND b is (c >= a AND c <= b); its negation (c < a OR c > b).
                Ok(if between {
                    and(
                        self.compare(&col, Cmp::Ge, a, true),
                        self.compare(&col, Cmp::Le, b, true),
                    )
                } else {
                    or(
                        self.compare(&col, Cmp::Lt, a, true),
                        self.compare(&col, Cmp::Gt, b, true),
                    )
                })
            }
            BinOper::Like | BinOper::NotLike => {
                let (pattern, escape) = match r {
                    Expr::Binary(p, BinOper::Escape, esc) => {
                        let esc = match self.value(esc)? {
                            Some(Value::String(s)) if s.chars().count() == 1 => s.chars().next(),
                            _ => {
                                return Err(OrmError::UnsupportedExpression(format!(
                                    "LIKE escape {}",
                                    describe(esc)
                                )))
                            }
                        };
                        (self.value(p)?, esc)
                    }
                    other => (self.value(other)?, None),
                };
                let pattern = match pattern {
                    None => return Ok(nothing()),
                    Some(Value::String(s)) => s,
                    Some(other) => {
                        return Err(OrmError::UnsupportedExpression(format!(
                            "LIKE with the non-string pattern {other}"
                        )))
                    }
                };
                let re = json!({"$regex": like_regex(&pattern, escape)?, "$options": "s"});
                Ok(if matches!(op, BinOper::Like) == want {
                    field(&col, re)
                } else {
                    field(&col, json!({"$not": re, "$ne": null}))
                })
            }
            BinOper::Is | BinOper::IsNot => {
                if self.value(r)?.is_some() {
                    return Err(OrmError::UnsupportedExpression(format!(
                        "IS with a value other than NULL ({})",
                        describe(whole)
                    )));
                }
                Ok(if matches!(op, BinOper::Is) == want {
                    field(&col, Value::Null)
                } else {
                    field(&col, json!({"$ne": null}))
                })
            }
            _ => Err(OrmError::UnsupportedExpression(describe(whole))),
        }
    }

    /// `col cmp v` is TRUE (`want`) or FALSE (`!want`); never either for NULL.
    fn compare(&self, col: &str, cmp: Cmp, v: Option<Value>, want: bool) -> Value {
        let Some(v) = v else {
            return nothing();
        };
        let cmp = if want { cmp } else { cmp.negate() };
        let cond = match cmp {
            Cmp::Eq => json!({"$eq": v}),
            Cmp::Ne => json!({"$nin": [v, null]}),
            Cmp::Lt => json!({"$lt": v}),
            Cmp::Le => json!({"$lte": v}),
            Cmp::Gt => json!({"$gt": v}),
            Cmp::Ge => json!({"$gte": v}),
        };
        field(col, cond)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_query::{Cond, ExprTrait, LikeExpr};

    fn f(e: Expr) -> Value {
        filter_from_expr(&e).unwrap()
    }

    #[test]
    fn like_patterns_are_anchored_and_escaped() {
        assert_eq!(like_regex("a%b_c", None).unwrap(), "^a.*b.c$");
        assert_eq!(like_regex("1.5+(x)", None).unwrap(), "^1\\.5\\+\\(x\\)$");
        assert_eq!(like_regex("100\\%", Some('\\')).unwrap(), "^100%$");
        assert!(like_regex("bad\\", Some('\\')).is_err());
        assert_eq!(
            f(Expr::col("s").like(LikeExpr::new("a!_%").escape('!'))),
            json!({"s": {"$regex": "^a_.*$", "$options": "s"}})
        );
    }

    #[test]
    fn negation_follows_three_valued_logic() {
        assert_eq!(
            f(Expr::col("a").eq(1).not()),
            json!({"a": {"$nin": [1, null]}})
        );
        assert_eq!(f(Expr::col("a").lt(1).not()), json!({"a": {"$gte": 1}}));
        assert_eq!(
            f(Expr::col("a").is_in([1, 2]).not()),
            json!({"a": {"$nin": [1, 2, null]}})
        );
        assert_eq!(
            f(Cond::all()
                .add(Expr::col("a").eq(1))
                .add(Expr::col("b").is_null())
                .not()
                .into()),
            json!({"$or": [{"a": {"$nin": [1, null]}}, {"b": {"$ne": null}}]})
        );
        // Comparisons with NULL are never TRUE, negated or not.
        assert_eq!(f(Expr::col("a").eq(Option::<i32>::None)), nothing());
        assert_eq!(f(Expr::col("a").eq(Option::<i32>::None).not()), nothing());
        assert_eq!(f(Expr::col("a").is_not_in([Some(1), None])), nothing());
    }

    #[test]
    fn values_on_the_left_flip() {
        assert_eq!(f(Expr::val(3).lt(Expr::col("a"))), json!({"a": {"$gt": 3}}));
    }

    #[test]
    fn empty_conditions() {
        assert_eq!(filter_from_condition(Cond::all()).unwrap(), json!({}));
        assert_eq!(filter_from_condition(Cond::any()).unwrap(), nothing());
    }

    #[test]
    fn unsupported_expressions_are_named() {
        let cases: Vec<(Expr, &str)> = vec![
            (Expr::col("a").eq(Expr::col("b")), "two columns"),
            (Expr::col("a").add(1).eq(2), "operator Add"),
            (
                sea_query::Func::lower(Expr::col("a")).eq("x"),
                "function call",
            ),
            (Expr::cust("a = 1"), "custom SQL `a = 1`"),
            (Expr::col("a"), "bare column"),
            (Expr::col("a").eq(vec![1u8, 2]), "value Bytes"),
        ];
        for (e, needle) in cases {
            match filter_from_expr(&e) {
                Err(OrmError::UnsupportedExpression(m)) => {
                    assert!(m.contains(needle), "{m:?} should mention {needle:?}")
                }
                other => panic!("{e:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn qualified_columns_must_name_the_table() {
        let e = Expr::col(("users", "age")).gt(1);
        assert_eq!(
            filter_for_table(&e, "users").unwrap(),
            json!({"age": {"$gt": 1}})
        );
        assert!(matches!(
            filter_for_table(&e, "orders"),
            Err(OrmError::UnsupportedExpression(_))
        ));
    }
}
