//! Comparison: `$eq $ne $gt $gte $lt $lte $cmp`.
//!
//! Unlike query filters, expression comparisons are not type-bracketed: two
//! values of any types compare in the BSON order ([`crate::doc::compare`]),
//! and a missing field is *less* than `null` (`{$eq: ["$missing", null]}` is
//! false).

use std::cmp::Ordering;

use bson::Bson;
use serde_json::Value;

use super::{fixed, Cx, EResult, Expr, PResult, Scope};
use crate::aggregate::value::{compare_vals, Val};

/// A comparison of two expressions.
#[derive(Debug, Clone)]
pub(crate) struct Cmp {
    op: Op,
    lhs: Expr,
    rhs: Expr,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    Cmp,
}

/// Parses `name` if it is a comparison operator.
pub(crate) fn parse(name: &str, arg: &Value, scope: &mut Scope) -> Option<PResult<Expr>> {
    let op = match name {
        "$eq" => Op::Eq,
        "$ne" => Op::Ne,
        "$gt" => Op::Gt,
        "$gte" => Op::Gte,
        "$lt" => Op::Lt,
        "$lte" => Op::Lte,
        "$cmp" => Op::Cmp,
        _ => return None,
    };
    Some(fixed(name, arg, 2, scope).map(|mut args| {
        let rhs = args.pop().unwrap_or(Expr::Const(Bson::Null));
        let lhs = args.pop().unwrap_or(Expr::Const(Bson::Null));
        Expr::Cmp(Box::new(Cmp { op, lhs, rhs }))
    }))
}

impl Cmp {
    pub(crate) fn eval<'a>(&'a self, cx: &mut Cx<'a>) -> EResult<Val<'a>> {
        let a = self.lhs.eval(cx)?;
        let b = self.rhs.eval(cx)?;
        let ord = compare_vals(&a, &b);
        Ok(Val::Own(match self.op {
            Op::Eq => Bson::Boolean(ord == Ordering::Equal),
            Op::Ne => Bson::Boolean(ord != Ordering::Equal),
            Op::Gt => Bson::Boolean(ord == Ordering::Greater),
            Op::Gte => Bson::Boolean(ord != Ordering::Less),
            Op::Lt => Bson::Boolean(ord == Ordering::Less),
            Op::Lte => Bson::Boolean(ord != Ordering::Greater),
            Op::Cmp => Bson::Int32(match ord {
                Ordering::Less => -1,
                Ordering::Equal => 0,
                Ordering::Greater => 1,
            }),
        }))
    }

    /// `Some((path, other))` when this is `$eq` between a field path of the
    /// current document and another expression (the planner can look such a
    /// path up through an index once the other side is known).
    pub(crate) fn path_equality(&self) -> Option<(&[String], &Expr)> {
        if !matches!(self.op, Op::Eq) {
            return None;
        }
        match (&self.lhs, &self.rhs) {
            (Expr::Path(p), other) | (other, Expr::Path(p)) if !matches!(other, Expr::Path(_)) => {
                Some((p.as_slice(), other))
            }
            _ => None,
        }
    }
}
