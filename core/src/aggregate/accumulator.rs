//! Accumulators: `$sum $avg $min $max $first $last $push $addToSet $count
//! $stdDevPop $stdDevSamp $mergeObjects`, as used by `$group` and `$bucket`
//! (and, for the numeric ones, by the expression forms `{$sum: "$array"}`).
//!
//! MongoDB's rules: `$sum` ignores non-numbers (0 when there are none) and
//! keeps integers exact until they overflow 64 bits; `$avg`, `$stdDev*` ignore
//! non-numbers (null when there are none); `$min`/`$max` ignore null and
//! missing and compare the rest in the BSON order; `$first`/`$last` take null
//! for a missing value; `$push`/`$addToSet` skip missing values.

use std::collections::HashSet;

use bson::{Bson, Document};
use serde_json::Value;

use super::expr::{self, describe, Expr, PResult, Scope};
use super::value::{int, size_of_bson, Val};
use crate::doc::{compare, Num, ValRef};
use crate::keys::encode_value;

/// An accumulator operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccOp {
    Sum,
    Avg,
    Min,
    Max,
    First,
    Last,
    Push,
    AddToSet,
    Count,
    StdDevPop,
    StdDevSamp,
    MergeObjects,
}

impl AccOp {
    /// The operator for `name` (`$sum`, ...).
    pub(crate) fn from_name(name: &str) -> Option<AccOp> {
        Some(match name {
            "$sum" => AccOp::Sum,
            "$avg" => AccOp::Avg,
            "$min" => AccOp::Min,
            "$max" => AccOp::Max,
            "$first" => AccOp::First,
            "$last" => AccOp::Last,
            "$push" => AccOp::Push,
            "$addToSet" => AccOp::AddToSet,
            "$count" => AccOp::Count,
            "$stdDevPop" => AccOp::StdDevPop,
            "$stdDevSamp" => AccOp::StdDevSamp,
            "$mergeObjects" => AccOp::MergeObjects,
            _ => return None,
        })
    }
}

/// One output field of `$group`: `{name: {$op: expr}}`.
#[derive(Debug, Clone)]
pub(crate) struct AccSpec {
    /// The output field.
    pub(crate) field: String,
    /// The operator.
    pub(crate) op: AccOp,
    /// Its operand (`$count` counts, its operand is unused).
    pub(crate) arg: Expr,
}

const NAMES: &str =
    "$sum $avg $min $max $first $last $push $addToSet $count $stdDevPop $stdDevSamp $mergeObjects";

/// Parses `{$op: expr}` for output field `field`.
pub(crate) fn parse(field: &str, spec: &Value, scope: &mut Scope) -> PResult<AccSpec> {
    let bad = || {
        format!(
            "the field '{field}' must be an accumulator object such as {{\"$sum\": 1}}, got {}",
            describe(spec)
        )
    };
    let Value::Object(m) = spec else {
        return Err(bad());
    };
    if m.len() != 1 {
        return Err(bad());
    }
    let (name, arg) = m.iter().next().ok_or_else(bad)?;
    let op = AccOp::from_name(name).ok_or_else(|| {
        if name == "$accumulator" {
            format!("'{field}': $accumulator is not supported: collection-store never executes code found in a query")
        } else {
            format!("'{field}': unknown accumulator '{name}'; accumulators are {NAMES}")
        }
    })?;
    if let Value::Array(_) = arg {
        if !matches!(op, AccOp::Push | AccOp::AddToSet) {
            return Err(format!(
                "'{field}': the {name} accumulator is a unary operator; write {{\"{name}\": expression}}, not an array"
            ));
        }
    }
    let arg = match op {
        AccOp::Count => match arg {
            Value::Object(o) if o.is_empty() => Expr::Const(Bson::Int32(1)),
            other => {
                return Err(format!(
                    "'{field}': $count takes an empty object ({{\"$count\": {{}}}}), got {}",
                    describe(other)
                ))
            }
        },
        _ => expr::parse(arg, scope)?,
    };
    Ok(AccSpec {
        field: field.to_owned(),
        op,
        arg,
    })
}

/// An exact-until-overflow sum: integers, then compensated doubles.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Total {
    /// All integers so far.
    Int(i64),
    /// A double sum with its Neumaier compensation term.
    Double(f64, f64),
}

impl Total {
    /// Adds a number.
    pub(crate) fn add(&mut self, n: Num) {
        match (*self, n) {
            (Total::Int(a), Num::Int(b)) => match a.checked_add(b) {
                Some(s) => *self = Total::Int(s),
                None => *self = Total::Double(a as f64, 0.0).plus(b as f64),
            },
            (Total::Int(a), other) => {
                *self = Total::Double(a as f64, 0.0).plus(num_f64(other));
            }
            (d @ Total::Double(..), other) => *self = d.plus(num_f64(other)),
        }
    }

    fn plus(self, x: f64) -> Total {
        let Total::Double(sum, comp) = self else {
            return self;
        };
        let t = sum + x;
        let c = if sum.abs() >= x.abs() {
            (sum - t) + x
        } else {
            (x - t) + sum
        };
        Total::Double(t, comp + c)
    }

    /// The sum as a double.
    pub(crate) fn f64(self) -> f64 {
        match self {
            Total::Int(i) => i as f64,
            Total::Double(s, c) => s + c,
        }
    }

    /// The sum as `Bson` (int32/int64 while exact, else a double).
    pub(crate) fn bson(self) -> Bson {
        match self {
            Total::Int(i) => int(i),
            Total::Double(..) => Bson::Double(self.f64()),
        }
    }
}

fn num_f64(n: Num) -> f64 {
    match n {
        Num::Int(i) => i as f64,
        Num::Big(b) => b as f64,
        Num::Double(f) => f,
    }
}

/// The running state of one accumulator in one group.
#[derive(Debug, Clone)]
pub(crate) enum AccState {
    Sum(Total),
    Avg(Total, u64),
    MinMax(Option<Bson>),
    First(Option<Bson>),
    Last(Bson),
    Push(Vec<Bson>),
    AddToSet(HashSet<Vec<u8>>, Vec<Bson>),
    Count(i64),
    StdDev { n: u64, mean: f64, m2: f64 },
    Merge(Document),
}

/// Bytes charged for an accumulator state before it holds values.
pub(crate) const STATE_BYTES: usize = 64;

impl AccState {
    /// The empty state of `op`.
    pub(crate) fn new(op: AccOp) -> AccState {
        match op {
            AccOp::Sum => AccState::Sum(Total::Int(0)),
            AccOp::Avg => AccState::Avg(Total::Int(0), 0),
            AccOp::Min | AccOp::Max => AccState::MinMax(None),
            AccOp::First => AccState::First(None),
            AccOp::Last => AccState::Last(Bson::Null),
            AccOp::Push => AccState::Push(Vec::new()),
            AccOp::AddToSet => AccState::AddToSet(HashSet::new(), Vec::new()),
            AccOp::Count => AccState::Count(0),
            AccOp::StdDevPop | AccOp::StdDevSamp => AccState::StdDev {
                n: 0,
                mean: 0.0,
                m2: 0.0,
            },
            AccOp::MergeObjects => AccState::Merge(Document::new()),
        }
    }

    /// Adds one value; returns the bytes the state grew by (for the memory limit).
    /// `Err` carries a message for a value the accumulator refuses.
    pub(crate) fn add(&mut self, op: AccOp, v: &Val<'_>) -> Result<usize, String> {
        let view = v.view();
        match self {
            AccState::Sum(t) => {
                if let Some(ValRef::Number(n)) = view {
                    t.add(n);
                }
                Ok(0)
            }
            AccState::Avg(t, count) => {
                if let Some(ValRef::Number(n)) = view {
                    t.add(n);
                    *count += 1;
                }
                Ok(0)
            }
            AccState::MinMax(best) => {
                let Some(x) = view.filter(|x| !x.is_nullish()) else {
                    return Ok(0);
                };
                let better = match best {
                    None => true,
                    Some(b) => {
                        let ord = compare(&x, &ValRef::from(&*b));
                        if op == AccOp::Min {
                            ord.is_lt()
                        } else {
                            ord.is_gt()
                        }
                    }
                };
                if !better {
                    return Ok(0);
                }
                let new = x.to_bson();
                let grown = size_of_bson(&new);
                let old = best.replace(new).map_or(0, |o| size_of_bson(&o));
                Ok(grown.saturating_sub(old))
            }
            AccState::First(first) => {
                if first.is_some() {
                    return Ok(0);
                }
                let b = view.map_or(Bson::Null, |x| x.to_bson());
                let n = size_of_bson(&b);
                *first = Some(b);
                Ok(n)
            }
            AccState::Last(last) => {
                let b = view.map_or(Bson::Null, |x| x.to_bson());
                let grown = size_of_bson(&b).saturating_sub(size_of_bson(last));
                *last = b;
                Ok(grown)
            }
            AccState::Push(items) => {
                let Some(x) = view else { return Ok(0) };
                let b = x.to_bson();
                let n = size_of_bson(&b);
                items.push(b);
                Ok(n)
            }
            AccState::AddToSet(seen, items) => {
                let Some(x) = view else { return Ok(0) };
                let mut key = Vec::new();
                encode_value(&mut key, &x, false);
                if seen.contains(&key) {
                    return Ok(0);
                }
                let b = x.to_bson();
                let n = size_of_bson(&b) + key.len();
                seen.insert(key);
                items.push(b);
                Ok(n)
            }
            AccState::Count(c) => {
                *c += 1;
                Ok(0)
            }
            AccState::StdDev { n, mean, m2 } => {
                if let Some(ValRef::Number(x)) = view {
                    let x = num_f64(x);
                    *n += 1;
                    let delta = x - *mean;
                    *mean += delta / *n as f64;
                    *m2 += delta * (x - *mean);
                }
                Ok(0)
            }
            AccState::Merge(d) => match view {
                None | Some(ValRef::Null | ValRef::Undefined) => Ok(0),
                Some(ValRef::Document(doc)) => {
                    let mut grown = 0;
                    for (k, x) in doc.iter() {
                        let b = x.to_bson();
                        grown += k.len() + size_of_bson(&b);
                        d.insert(k.to_owned(), b);
                    }
                    Ok(grown)
                }
                Some(other) => Err(format!(
                    "$mergeObjects requires object inputs, got {}",
                    super::value::show(Some(other))
                )),
            },
        }
    }

    /// The accumulated result.
    pub(crate) fn result(self, op: AccOp) -> Bson {
        match self {
            AccState::Sum(t) => t.bson(),
            AccState::Avg(t, count) => {
                if count == 0 {
                    Bson::Null
                } else {
                    Bson::Double(t.f64() / count as f64)
                }
            }
            AccState::MinMax(b) => b.unwrap_or(Bson::Null),
            AccState::First(b) => b.unwrap_or(Bson::Null),
            AccState::Last(b) => b,
            AccState::Push(items) | AccState::AddToSet(_, items) => Bson::Array(items),
            AccState::Count(c) => int(c),
            AccState::StdDev { n, m2, .. } => {
                let samp = op == AccOp::StdDevSamp;
                if n == 0 || (samp && n < 2) {
                    Bson::Null
                } else {
                    let d = if samp { n - 1 } else { n };
                    Bson::Double((m2 / d as f64).sqrt())
                }
            }
            AccState::Merge(d) => Bson::Document(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_stay_exact_then_widen() {
        let mut t = Total::Int(0);
        t.add(Num::Int(i64::MAX));
        t.add(Num::Int(1));
        assert!(matches!(t, Total::Double(..)));
        let mut t = Total::Int(0);
        for _ in 0..10 {
            t.add(Num::Double(0.1));
        }
        assert_eq!(t.f64(), 1.0);
        let mut s = AccState::new(AccOp::StdDevPop);
        for x in [2, 4, 4, 4, 5, 5, 7, 9] {
            s.add(AccOp::StdDevPop, &Val::Own(Bson::Int32(x))).unwrap();
        }
        assert_eq!(s.result(AccOp::StdDevPop), Bson::Double(2.0));
    }
}
