//! Conditionals: `$cond` (object or array form), `$ifNull` (the first operand
//! that is neither null nor missing, else the last), `$switch` (the first branch
//! whose `case` is true, else `default`; no match and no default is an error).

use serde_json::Value;

use super::{
    describe, fail, object_args, operands, parse as parse_expr, Cx, EResult, Expr, PResult, Scope,
};
use crate::aggregate::value::Val;

/// A conditional operator.
#[derive(Debug, Clone)]
pub(crate) enum Cond {
    /// `$cond`.
    If {
        cond: Expr,
        then: Expr,
        otherwise: Expr,
    },
    /// `$ifNull`: the candidates, then the replacement.
    IfNull(Vec<Expr>),
    /// `$switch`.
    Switch {
        branches: Vec<(Expr, Expr)>,
        default: Option<Expr>,
    },
}

/// Parses `name` if it is a conditional operator.
pub(crate) fn parse(name: &str, arg: &Value, scope: &mut Scope) -> Option<PResult<Expr>> {
    let c = match name {
        "$cond" => parse_cond(arg, scope),
        "$ifNull" => {
            let ops = operands(arg);
            if ops.len() < 2 {
                Err(format!(
                    "$ifNull takes at least 2 arguments (expressions, then the replacement), got {}",
                    ops.len()
                ))
            } else {
                ops.into_iter()
                    .map(|o| parse_expr(o, scope))
                    .collect::<PResult<Vec<_>>>()
                    .map(Cond::IfNull)
            }
        }
        "$switch" => parse_switch(arg, scope),
        _ => return None,
    };
    Some(c.map(|c| Expr::Cond(Box::new(c))))
}

fn parse_cond(arg: &Value, scope: &mut Scope) -> PResult<Cond> {
    let (c, t, e) = match arg {
        Value::Array(items) if items.len() == 3 => (&items[0], &items[1], &items[2]),
        Value::Array(items) => {
            return Err(format!(
                "$cond takes [if, then, else] (3 arguments), got {}",
                items.len()
            ))
        }
        Value::Object(_) => {
            let m = object_args(
                "$cond",
                arg,
                &["if", "then", "else"],
                &["if", "then", "else"],
            )?;
            (m["if"], m["then"], m["else"])
        }
        other => {
            return Err(format!(
                "$cond takes {{if, then, else}} or [if, then, else], got {}",
                describe(other)
            ))
        }
    };
    Ok(Cond::If {
        cond: parse_expr(c, scope)?,
        then: parse_expr(t, scope)?,
        otherwise: parse_expr(e, scope)?,
    })
}

fn parse_switch(arg: &Value, scope: &mut Scope) -> PResult<Cond> {
    let m = object_args("$switch", arg, &["branches", "default"], &["branches"])?;
    let Value::Array(items) = m["branches"] else {
        return Err(format!(
            "$switch: 'branches' must be an array of {{case, then}} objects, got {}",
            describe(m["branches"])
        ));
    };
    if items.is_empty() {
        return Err("$switch needs at least one branch".into());
    }
    let mut branches = Vec::with_capacity(items.len());
    for b in items {
        let bm = object_args("a $switch branch", b, &["case", "then"], &["case", "then"])?;
        branches.push((
            parse_expr(bm["case"], scope)?,
            parse_expr(bm["then"], scope)?,
        ));
    }
    let default = match m.get("default") {
        Some(d) => Some(parse_expr(d, scope)?),
        None => None,
    };
    Ok(Cond::Switch { branches, default })
}

impl Cond {
    pub(crate) fn eval<'a>(&'a self, cx: &mut Cx<'a>) -> EResult<Val<'a>> {
        match self {
            Cond::If {
                cond,
                then,
                otherwise,
            } => {
                if cond.eval(cx)?.truthy() {
                    then.eval(cx)
                } else {
                    otherwise.eval(cx)
                }
            }
            Cond::IfNull(items) => {
                let (last, candidates) = match items.split_last() {
                    Some(x) => x,
                    None => return Ok(Val::NULL),
                };
                for e in candidates {
                    let v = e.eval(cx)?;
                    if !v.is_nullish() {
                        return Ok(v);
                    }
                }
                last.eval(cx)
            }
            Cond::Switch { branches, default } => {
                for (case, then) in branches {
                    if case.eval(cx)?.truthy() {
                        return then.eval(cx);
                    }
                }
                match default {
                    Some(d) => d.eval(cx),
                    None => fail(
                        "$switch",
                        "$switch could not find a matching branch for an input, and no default was specified",
                    ),
                }
            }
        }
    }
}
