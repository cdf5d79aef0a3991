//! Accumulator operators used as expressions: `$sum $avg $min $max
//! $stdDevPop $stdDevSamp` in `$project`, `$addFields`, ...
//!
//! With one operand that evaluates to an array they accumulate its elements;
//! otherwise they accumulate their operands (arrays among several operands
//! are values, not flattened). The accumulation itself is
//! [`crate::aggregate::accumulator`]'s, so `$group` and these forms agree.

use serde_json::Value;

use super::{operands, parse as parse_expr, Cx, EResult, Expr, PResult, Scope};
use crate::aggregate::accumulator::{AccOp, AccState};
use crate::aggregate::value::Val;
use crate::doc::ValRef;

/// `{$sum: ...}` and friends as an expression.
#[derive(Debug, Clone)]
pub(crate) struct AccumExpr {
    op: AccOp,
    args: Vec<Expr>,
}

/// Parses `name` if it is an accumulator usable as an expression.
pub(crate) fn parse(n: &str, arg: &Value, scope: &mut Scope) -> Option<PResult<Expr>> {
    let op = match n {
        "$sum" => AccOp::Sum,
        "$avg" => AccOp::Avg,
        "$min" => AccOp::Min,
        "$max" => AccOp::Max,
        "$stdDevPop" => AccOp::StdDevPop,
        "$stdDevSamp" => AccOp::StdDevSamp,
        "$push" | "$addToSet" | "$count" => {
            return Some(Err(format!(
                "{n} is an accumulator; it is allowed in $group and $bucket, not in expressions"
            )))
        }
        _ => return None,
    };
    let args = operands(arg)
        .into_iter()
        .map(|a| parse_expr(a, scope))
        .collect::<PResult<Vec<_>>>();
    Some(args.map(|args| Expr::Accum(Box::new(AccumExpr { op, args }))))
}

impl AccumExpr {
    pub(crate) fn eval<'a>(&'a self, cx: &mut Cx<'a>) -> EResult<Val<'a>> {
        let mut state = AccState::new(self.op);
        let mut add = |v: &Val<'_>| {
            // Numeric accumulators never refuse a value.
            let _ = state.add(self.op, v);
        };
        if let [single] = self.args.as_slice() {
            let v = single.eval(cx)?;
            match v.view() {
                Some(ValRef::Array(a)) => a.iter().for_each(|e| add(&Val::Ref(e))),
                _ => add(&v),
            }
        } else {
            for e in &self.args {
                add(&e.eval(cx)?);
            }
        }
        Ok(Val::Own(state.result(self.op)))
    }
}
