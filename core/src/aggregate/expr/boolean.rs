//! Boolean: `$and $or $not`, with MongoDB's truthiness (false, 0, null and
//! missing are false; everything else, including empty strings and arrays,
//! is true). `$and` and `$or` stop at the first operand that decides.

use bson::Bson;
use serde_json::Value;

use super::{fixed, ranged, Cx, EResult, Expr, PResult, Scope};
use crate::aggregate::value::Val;

/// A boolean operator.
#[derive(Debug, Clone)]
pub(crate) enum Bool {
    /// `$and`.
    And(Vec<Expr>),
    /// `$or`.
    Or(Vec<Expr>),
    /// `$not`.
    Not(Expr),
}

/// Parses `name` if it is a boolean operator.
pub(crate) fn parse(name: &str, arg: &Value, scope: &mut Scope) -> Option<PResult<Expr>> {
    let b = match name {
        "$and" => ranged(name, arg, 0, usize::MAX, scope).map(Bool::And),
        "$or" => ranged(name, arg, 0, usize::MAX, scope).map(Bool::Or),
        "$not" => fixed(name, arg, 1, scope).map(|mut a| Bool::Not(a.remove(0))),
        _ => return None,
    };
    Some(b.map(|b| Expr::Bool(Box::new(b))))
}

impl Bool {
    /// The operands of an `$and`, if this is one.
    pub(crate) fn and_operands(&self) -> Option<&[Expr]> {
        match self {
            Bool::And(items) => Some(items),
            _ => None,
        }
    }

    pub(crate) fn eval<'a>(&'a self, cx: &mut Cx<'a>) -> EResult<Val<'a>> {
        let b = match self {
            Bool::And(items) => {
                let mut all = true;
                for e in items {
                    if !e.eval(cx)?.truthy() {
                        all = false;
                        break;
                    }
                }
                all
            }
            Bool::Or(items) => {
                let mut any = false;
                for e in items {
                    if e.eval(cx)?.truthy() {
                        any = true;
                        break;
                    }
                }
                any
            }
            Bool::Not(e) => !e.eval(cx)?.truthy(),
        };
        Ok(Val::Own(Bson::Boolean(b)))
    }
}
