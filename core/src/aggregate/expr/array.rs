//! Arrays: `$size $arrayElemAt $first $last $filter $map $reduce $in $slice
//! $concatArrays $isArray $reverseArray $range $indexOfArray $allElementsTrue
//! $anyElementTrue`.
//!
//! A null or missing array gives null (except `$size` and `$in`, which require
//! an array); any other non-array is an error naming what was found.

use bson::Bson;
use serde_json::Value;

use super::{
    check_var_name, describe, fail, fixed, object_args, parse as parse_expr, ranged, Cx, EResult,
    Expr, PResult, Scope,
};
use crate::aggregate::value::{compare_vals, int, show, Val};
use crate::doc::{Num, ValRef};

/// An array operator.
#[derive(Debug, Clone)]
pub(crate) enum Arr {
    /// Operators over evaluated arguments.
    Simple(Op, Vec<Expr>),
    /// `$filter`.
    Filter {
        input: Expr,
        slot: usize,
        cond: Expr,
        limit: Option<Expr>,
    },
    /// `$map`.
    Map {
        input: Expr,
        slot: usize,
        body: Expr,
    },
    /// `$reduce`: `$$value` is `slot`, `$$this` is `slot + 1`.
    Reduce {
        input: Expr,
        initial: Expr,
        slot: usize,
        body: Expr,
    },
}

/// The operators of [`Arr::Simple`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Size,
    ArrayElemAt,
    First,
    Last,
    In,
    Slice,
    ConcatArrays,
    IsArray,
    ReverseArray,
    Range,
    IndexOfArray,
    AllElementsTrue,
    AnyElementTrue,
}

fn name(op: Op) -> &'static str {
    match op {
        Op::Size => "$size",
        Op::ArrayElemAt => "$arrayElemAt",
        Op::First => "$first",
        Op::Last => "$last",
        Op::In => "$in",
        Op::Slice => "$slice",
        Op::ConcatArrays => "$concatArrays",
        Op::IsArray => "$isArray",
        Op::ReverseArray => "$reverseArray",
        Op::Range => "$range",
        Op::IndexOfArray => "$indexOfArray",
        Op::AllElementsTrue => "$allElementsTrue",
        Op::AnyElementTrue => "$anyElementTrue",
    }
}

/// Parses `name` if it is an array operator.
pub(crate) fn parse(n: &str, arg: &Value, scope: &mut Scope) -> Option<PResult<Expr>> {
    let simple = |op: Op, args: PResult<Vec<Expr>>| args.map(|a| Arr::Simple(op, a));
    let a = match n {
        "$size" => simple(Op::Size, fixed(n, arg, 1, scope)),
        "$arrayElemAt" => simple(Op::ArrayElemAt, fixed(n, arg, 2, scope)),
        // The argument is the array itself (`{$first: [1, 2]}` is 1), not an argument list.
        "$first" => simple(Op::First, parse_expr(arg, scope).map(|e| vec![e])),
        "$last" => simple(Op::Last, parse_expr(arg, scope).map(|e| vec![e])),
        "$in" => simple(Op::In, fixed(n, arg, 2, scope)),
        "$slice" => simple(Op::Slice, ranged(n, arg, 2, 3, scope)),
        "$concatArrays" => simple(Op::ConcatArrays, ranged(n, arg, 0, usize::MAX, scope)),
        "$isArray" => simple(Op::IsArray, fixed(n, arg, 1, scope)),
        "$reverseArray" => simple(Op::ReverseArray, fixed(n, arg, 1, scope)),
        "$range" => simple(Op::Range, ranged(n, arg, 2, 3, scope)),
        "$indexOfArray" => simple(Op::IndexOfArray, ranged(n, arg, 2, 4, scope)),
        "$allElementsTrue" => simple(Op::AllElementsTrue, fixed(n, arg, 1, scope)),
        "$anyElementTrue" => simple(Op::AnyElementTrue, fixed(n, arg, 1, scope)),
        "$filter" => parse_filter(arg, scope),
        "$map" => parse_map(arg, scope),
        "$reduce" => parse_reduce(arg, scope),
        _ => return None,
    };
    Some(a.map(|a| Expr::Arr(Box::new(a))))
}

fn var_name(op: &str, m: &std::collections::HashMap<&str, &Value>) -> PResult<String> {
    match m.get("as") {
        None => Ok("this".into()),
        Some(Value::String(s)) => {
            check_var_name(s)?;
            Ok(s.clone())
        }
        Some(other) => Err(format!(
            "{op}: 'as' must be a variable name, got {}",
            describe(other)
        )),
    }
}

fn parse_filter(arg: &Value, scope: &mut Scope) -> PResult<Arr> {
    let m = object_args(
        "$filter",
        arg,
        &["input", "as", "cond", "limit"],
        &["input", "cond"],
    )?;
    let input = parse_expr(m["input"], scope)?;
    let v = var_name("$filter", &m)?;
    let limit = match m.get("limit") {
        Some(l) => Some(parse_expr(l, scope)?),
        None => None,
    };
    let cond_spec = m["cond"];
    let (slot, cond) = scope.bind(&[v], |s| parse_expr(cond_spec, s))?;
    Ok(Arr::Filter {
        input,
        slot,
        cond,
        limit,
    })
}

fn parse_map(arg: &Value, scope: &mut Scope) -> PResult<Arr> {
    let m = object_args("$map", arg, &["input", "as", "in"], &["input", "in"])?;
    let input = parse_expr(m["input"], scope)?;
    let v = var_name("$map", &m)?;
    let body_spec = m["in"];
    let (slot, body) = scope.bind(&[v], |s| parse_expr(body_spec, s))?;
    Ok(Arr::Map { input, slot, body })
}

fn parse_reduce(arg: &Value, scope: &mut Scope) -> PResult<Arr> {
    let m = object_args(
        "$reduce",
        arg,
        &["input", "initialValue", "in"],
        &["input", "initialValue", "in"],
    )?;
    let input = parse_expr(m["input"], scope)?;
    let initial = parse_expr(m["initialValue"], scope)?;
    let body_spec = m["in"];
    let (slot, body) = scope.bind(&["value".into(), "this".into()], |s| {
        parse_expr(body_spec, s)
    })?;
    Ok(Arr::Reduce {
        input,
        initial,
        slot,
        body,
    })
}

/// The elements of an array value; `Err(Some(v))` for a non-array value,
/// `Err(None)` for null or missing.
pub(crate) fn elements<'a>(v: Val<'a>) -> Result<Vec<Val<'a>>, Option<Val<'a>>> {
    match v {
        Val::Missing => Err(None),
        Val::Ref(ValRef::Array(a)) => Ok(a.iter().map(Val::Ref).collect()),
        Val::Ref(r) if r.is_nullish() => Err(None),
        Val::Own(Bson::Array(items)) => Ok(items.into_iter().map(Val::Own).collect()),
        Val::Own(Bson::Null | Bson::Undefined) => Err(None),
        other => Err(Some(other)),
    }
}

fn array_or_null<'a>(op: Op, v: Val<'a>) -> EResult<Option<Vec<Val<'a>>>> {
    match elements(v) {
        Ok(items) => Ok(Some(items)),
        Err(None) => Ok(None),
        Err(Some(other)) => fail(
            name(op),
            format!("{} requires an array, got {}", name(op), show(other.view())),
        ),
    }
}

fn whole(op: Op, what: &str, v: &Val<'_>) -> EResult<i64> {
    match v.view() {
        Some(ValRef::Number(Num::Int(i))) => Ok(i),
        Some(ValRef::Number(Num::Double(f))) if f.fract() == 0.0 && f.abs() < 9.2e18 => {
            Ok(f as i64)
        }
        other => fail(
            name(op),
            format!(
                "{} requires {what} to be an integer, got {}",
                name(op),
                show(other)
            ),
        ),
    }
}

fn own(items: Vec<Val<'_>>) -> Bson {
    Bson::Array(items.into_iter().map(Val::into_bson_or_null).collect())
}

impl Arr {
    pub(crate) fn eval<'a>(&'a self, cx: &mut Cx<'a>) -> EResult<Val<'a>> {
        match self {
            Arr::Simple(op, args) => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(a.eval(cx)?);
                }
                simple(*op, vals)
            }
            Arr::Filter {
                input,
                slot,
                cond,
                limit,
            } => {
                let Some(items) = array_or_null_named("$filter", input.eval(cx)?)? else {
                    return Ok(Val::NULL);
                };
                let limit = match limit {
                    None => usize::MAX,
                    Some(l) => {
                        let lv = l.eval(cx)?;
                        if lv.is_nullish() {
                            usize::MAX
                        } else {
                            let n = whole(Op::Slice, "'limit'", &lv).map_err(|mut e| {
                                e.operator = "$filter";
                                e.message = e.message.replace("$slice", "$filter");
                                e
                            })?;
                            if n < 1 {
                                return fail(
                                    "$filter",
                                    "$filter: 'limit' must be a positive integer",
                                );
                            }
                            n as usize
                        }
                    }
                };
                let mut out = Vec::new();
                for item in items {
                    if out.len() >= limit {
                        break;
                    }
                    cx.set(*slot, item.clone());
                    let keep = cond.eval(cx);
                    match keep {
                        Ok(k) if k.truthy() => out.push(item),
                        Ok(_) => {}
                        Err(e) => {
                            cx.unbind(*slot);
                            return Err(e);
                        }
                    }
                }
                cx.unbind(*slot);
                Ok(Val::Own(own(out)))
            }
            Arr::Map { input, slot, body } => {
                let Some(items) = array_or_null_named("$map", input.eval(cx)?)? else {
                    return Ok(Val::NULL);
                };
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    cx.set(*slot, item);
                    match body.eval(cx) {
                        Ok(v) => out.push(v.into_bson_or_null()),
                        Err(e) => {
                            cx.unbind(*slot);
                            return Err(e);
                        }
                    }
                }
                cx.unbind(*slot);
                Ok(Val::Own(Bson::Array(out)))
            }
            Arr::Reduce {
                input,
                initial,
                slot,
                body,
            } => {
                let Some(items) = array_or_null_named("$reduce", input.eval(cx)?)? else {
                    return Ok(Val::NULL);
                };
                let mut acc = initial.eval(cx)?;
                for item in items {
                    cx.set(*slot, acc);
                    cx.set(*slot + 1, item);
                    match body.eval(cx) {
                        Ok(v) => acc = Val::Own(v.into_bson_or_null()),
                        Err(e) => {
                            cx.unbind(*slot);
                            return Err(e);
                        }
                    }
                }
                cx.unbind(*slot);
                Ok(acc)
            }
        }
    }
}

fn array_or_null_named<'a>(op: &'static str, v: Val<'a>) -> EResult<Option<Vec<Val<'a>>>> {
    match elements(v) {
        Ok(items) => Ok(Some(items)),
        Err(None) => Ok(None),
        Err(Some(other)) => fail(
            op,
            format!("{op}: 'input' must be an array, got {}", show(other.view())),
        ),
    }
}

fn simple<'a>(op: Op, mut vals: Vec<Val<'a>>) -> EResult<Val<'a>> {
    match op {
        Op::Size => {
            let v = vals.pop().unwrap_or(Val::Missing);
            match v.view() {
                Some(ValRef::Array(a)) => Ok(Val::Own(int(a.len() as i64))),
                other => fail(
                    "$size",
                    format!(
                        "the argument to $size must be an array, got {}",
                        show(other)
                    ),
                ),
            }
        }
        Op::IsArray => {
            let v = vals.pop().unwrap_or(Val::Missing);
            Ok(Val::Own(Bson::Boolean(matches!(
                v.view(),
                Some(ValRef::Array(_))
            ))))
        }
        Op::First | Op::Last => {
            let v = vals.pop().unwrap_or(Val::Missing);
            if v.is_missing() {
                return Ok(Val::Missing);
            }
            let Some(items) = array_or_null(op, v)? else {
                return Ok(Val::NULL);
            };
            Ok(if op == Op::First {
                items.into_iter().next().unwrap_or(Val::Missing)
            } else {
                items.into_iter().next_back().unwrap_or(Val::Missing)
            })
        }
        Op::ArrayElemAt => {
            let idx = vals.pop().unwrap_or(Val::Missing);
            let arr = vals.pop().unwrap_or(Val::Missing);
            if idx.is_nullish() {
                return Ok(Val::NULL);
            }
            let Some(items) = array_or_null(op, arr)? else {
                return Ok(Val::NULL);
            };
            let i = whole(op, "the index", &idx)?;
            let pos = if i < 0 { items.len() as i64 + i } else { i };
            if pos < 0 || pos as usize >= items.len() {
                return Ok(Val::Missing);
            }
            Ok(items.into_iter().nth(pos as usize).unwrap_or(Val::Missing))
        }
        Op::In => {
            let arr = vals.pop().unwrap_or(Val::Missing);
            let x = vals.pop().unwrap_or(Val::Missing);
            match elements(arr) {
                Ok(items) => Ok(Val::Own(Bson::Boolean(
                    items.iter().any(|e| compare_vals(e, &x).is_eq()),
                ))),
                Err(other) => fail(
                    "$in",
                    format!(
                        "$in requires an array as its second argument, got {}",
                        show(other.as_ref().and_then(Val::view))
                    ),
                ),
            }
        }
        Op::Slice => {
            let mut it = vals.into_iter();
            let arr = it.next().unwrap_or(Val::Missing);
            let rest: Vec<Val<'a>> = it.collect();
            if rest.iter().any(Val::is_nullish) {
                return Ok(Val::NULL);
            }
            let Some(items) = array_or_null(op, arr)? else {
                return Ok(Val::NULL);
            };
            let len = items.len() as i64;
            let (start, count) = if rest.len() == 1 {
                let n = whole(op, "the count", &rest[0])?;
                if n >= 0 {
                    (0, n)
                } else {
                    ((len + n).max(0), -n)
                }
            } else {
                let p = whole(op, "the position", &rest[0])?;
                let n = whole(op, "the count", &rest[1])?;
                if n <= 0 {
                    return fail("$slice", "$slice: the count must be a positive integer");
                }
                let start = if p < 0 { (len + p).max(0) } else { p.min(len) };
                (start, n)
            };
            Ok(Val::Own(own(items
                .into_iter()
                .skip(start as usize)
                .take(count.max(0) as usize)
                .collect())))
        }
        Op::ConcatArrays => {
            let mut out = Vec::new();
            for v in vals {
                match array_or_null(op, v)? {
                    None => return Ok(Val::NULL),
                    Some(items) => out.extend(items.into_iter().map(Val::into_bson_or_null)),
                }
            }
            Ok(Val::Own(Bson::Array(out)))
        }
        Op::ReverseArray => {
            let v = vals.pop().unwrap_or(Val::Missing);
            let Some(mut items) = array_or_null(op, v)? else {
                return Ok(Val::NULL);
            };
            items.reverse();
            Ok(Val::Own(own(items)))
        }
        Op::Range => {
            let start = whole(op, "the start", &vals[0])?;
            let end = whole(op, "the end", &vals[1])?;
            let step = match vals.get(2) {
                Some(s) => whole(op, "the step", s)?,
                None => 1,
            };
            if step == 0 {
                return fail("$range", "$range requires a non-zero step");
            }
            let mut out = Vec::new();
            let mut i = start;
            while (step > 0 && i < end) || (step < 0 && i > end) {
                out.push(int(i));
                if out.len() > 10_000_000 {
                    return fail("$range", "$range would produce more than 10,000,000 values");
                }
                match i.checked_add(step) {
                    Some(n) => i = n,
                    None => break,
                }
            }
            Ok(Val::Own(Bson::Array(out)))
        }
        Op::IndexOfArray => {
            let mut it = vals.into_iter();
            let arr = it.next().unwrap_or(Val::Missing);
            let x = it.next().unwrap_or(Val::Missing);
            let bounds: Vec<Val<'a>> = it.collect();
            let Some(items) = array_or_null(op, arr)? else {
                return Ok(Val::NULL);
            };
            let start = match bounds.first() {
                Some(b) => whole(op, "the start index", b)?,
                None => 0,
            };
            let end = match bounds.get(1) {
                Some(b) => whole(op, "the end index", b)?,
                None => items.len() as i64,
            };
            if start < 0 || end < 0 {
                return fail(
                    "$indexOfArray",
                    "$indexOfArray requires non-negative indexes",
                );
            }
            let found = items
                .iter()
                .enumerate()
                .skip(start as usize)
                .take((end - start).max(0) as usize)
                .find(|(_, e)| compare_vals(e, &x).is_eq())
                .map_or(-1, |(i, _)| i as i64);
            Ok(Val::Own(int(found)))
        }
        Op::AllElementsTrue | Op::AnyElementTrue => {
            let v = vals.pop().unwrap_or(Val::Missing);
            let items = match elements(v) {
                Ok(items) => items,
                Err(other) => {
                    return fail(
                        name(op),
                        format!(
                            "{} requires an array, got {}",
                            name(op),
                            show(other.as_ref().and_then(Val::view))
                        ),
                    )
                }
            };
            let b = if op == Op::AllElementsTrue {
                items.iter().all(Val::truthy)
            } else {
                items.iter().any(Val::truthy)
            };
            Ok(Val::Own(Bson::Boolean(b)))
        }
    }
}
