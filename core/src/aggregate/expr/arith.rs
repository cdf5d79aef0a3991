//! Arithmetic: `$add $subtract $multiply $divide $mod $abs $ceil $floor $round
//! $trunc $sqrt $pow $exp $ln $log $log10`.
//!
//! MongoDB's rules: a `null` or missing operand gives `null`; integers stay
//! integers until a result overflows 64 bits (then it is a double); any double
//! operand makes the result a double; `$divide` always gives a double; dates
//! take part in `$add` (date + milliseconds) and `$subtract` (date − date is
//! milliseconds, date − number a date).

use bson::Bson;
use serde_json::Value;

use super::{fail, fixed, ranged, Cx, EResult, Expr, PResult, Scope};
use crate::aggregate::value::{int, show, to_f64, Val};
use crate::doc::{Num, ValRef};

/// An arithmetic operator and its operands.
#[derive(Debug, Clone)]
pub(crate) struct Arith {
    op: Op,
    args: Vec<Expr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Subtract,
    Multiply,
    Divide,
    Mod,
    Abs,
    Ceil,
    Floor,
    Round,
    Trunc,
    Sqrt,
    Pow,
    Exp,
    Ln,
    Log,
    Log10,
}

/// Parses `name` if it is an arithmetic operator.
pub(crate) fn parse(name: &str, arg: &Value, scope: &mut Scope) -> Option<PResult<Expr>> {
    let (op, args) = match name {
        "$add" => (Op::Add, ranged(name, arg, 0, usize::MAX, scope)),
        "$multiply" => (Op::Multiply, ranged(name, arg, 0, usize::MAX, scope)),
        "$subtract" => (Op::Subtract, fixed(name, arg, 2, scope)),
        "$divide" => (Op::Divide, fixed(name, arg, 2, scope)),
        "$mod" => (Op::Mod, fixed(name, arg, 2, scope)),
        "$pow" => (Op::Pow, fixed(name, arg, 2, scope)),
        "$log" => (Op::Log, fixed(name, arg, 2, scope)),
        "$abs" => (Op::Abs, fixed(name, arg, 1, scope)),
        "$ceil" => (Op::Ceil, fixed(name, arg, 1, scope)),
        "$floor" => (Op::Floor, fixed(name, arg, 1, scope)),
        "$sqrt" => (Op::Sqrt, fixed(name, arg, 1, scope)),
        "$exp" => (Op::Exp, fixed(name, arg, 1, scope)),
        "$ln" => (Op::Ln, fixed(name, arg, 1, scope)),
        "$log10" => (Op::Log10, fixed(name, arg, 1, scope)),
        "$round" => (Op::Round, ranged(name, arg, 1, 2, scope)),
        "$trunc" => (Op::Trunc, ranged(name, arg, 1, 2, scope)),
        _ => return None,
    };
    Some(args.map(|args| Expr::Arith(Box::new(Arith { op, args }))))
}

fn name(op: Op) -> &'static str {
    match op {
        Op::Add => "$add",
        Op::Subtract => "$subtract",
        Op::Multiply => "$multiply",
        Op::Divide => "$divide",
        Op::Mod => "$mod",
        Op::Abs => "$abs",
        Op::Ceil => "$ceil",
        Op::Floor => "$floor",
        Op::Round => "$round",
        Op::Trunc => "$trunc",
        Op::Sqrt => "$sqrt",
        Op::Pow => "$pow",
        Op::Exp => "$exp",
        Op::Ln => "$ln",
        Op::Log => "$log",
        Op::Log10 => "$log10",
    }
}

/// A number operand, `None` for null/missing; other types are an error.
fn number(op: Op, v: Option<ValRef<'_>>) -> EResult<Option<Num>> {
    match v {
        None | Some(ValRef::Null | ValRef::Undefined) => Ok(None),
        Some(ValRef::Number(n)) => Ok(Some(n)),
        Some(other) => fail(
            name(op),
            format!(
                "{} only supports numeric types, not {}",
                name(op),
                show(Some(other))
            ),
        ),
    }
}

/// Integer or double accumulation with MongoDB's widening.
#[derive(Clone, Copy)]
enum Acc {
    Int(i64),
    Double(f64),
}

impl Acc {
    fn of(n: Num) -> Acc {
        match n {
            Num::Int(i) => Acc::Int(i),
            Num::Big(b) => Acc::Double(b as f64),
            Num::Double(f) => Acc::Double(f),
        }
    }

    fn f64(self) -> f64 {
        match self {
            Acc::Int(i) => i as f64,
            Acc::Double(f) => f,
        }
    }

    fn add(self, n: Num) -> Acc {
        match (self, Acc::of(n)) {
            (Acc::Int(a), Acc::Int(b)) => match a.checked_add(b) {
                Some(s) => Acc::Int(s),
                None => Acc::Double(a as f64 + b as f64),
            },
            (a, b) => Acc::Double(a.f64() + b.f64()),
        }
    }

    fn mul(self, n: Num) -> Acc {
        match (self, Acc::of(n)) {
            (Acc::Int(a), Acc::Int(b)) => match a.checked_mul(b) {
                Some(s) => Acc::Int(s),
                None => Acc::Double(a as f64 * b as f64),
            },
            (a, b) => Acc::Double(a.f64() * b.f64()),
        }
    }

    fn bson(self) -> Bson {
        match self {
            Acc::Int(i) => int(i),
            Acc::Double(f) => Bson::Double(f),
        }
    }
}

fn date(ms: i64) -> Bson {
    Bson::DateTime(bson::DateTime::from_millis(ms))
}

/// Milliseconds to add to a date: doubles round to the nearest millisecond.
fn millis(op: Op, n: Num) -> EResult<i64> {
    match n {
        Num::Int(i) => Ok(i),
        Num::Big(_) => fail(name(op), "the number of milliseconds is out of range"),
        Num::Double(f) if f.is_finite() && f.abs() < 9.2e18 => Ok(f.round() as i64),
        Num::Double(_) => fail(name(op), "the number of milliseconds is not finite"),
    }
}

impl Arith {
    pub(crate) fn eval<'a>(&'a self, cx: &mut Cx<'a>) -> EResult<Val<'a>> {
        let op = self.op;
        let mut vals = Vec::with_capacity(self.args.len());
        for a in &self.args {
            vals.push(a.eval(cx)?);
        }
        let views: Vec<Option<ValRef<'_>>> = vals.iter().map(Val::view).collect();
        match op {
            Op::Add => add(&views),
            Op::Multiply => {
                let mut acc = Acc::Int(1);
                for v in &views {
                    match number(op, *v)? {
                        None => return Ok(Val::NULL),
                        Some(n) => acc = acc.mul(n),
                    }
                }
                Ok(acc.bson().into())
            }
            Op::Subtract => subtract(views[0], views[1]),
            Op::Divide => {
                let (Some(a), Some(b)) = (number(op, views[0])?, number(op, views[1])?) else {
                    return Ok(Val::NULL);
                };
                let d = to_f64(b);
                if d == 0.0 {
                    return fail("$divide", "can't $divide by zero");
                }
                Ok(Bson::Double(to_f64(a) / d).into())
            }
            Op::Mod => {
                let (Some(a), Some(b)) = (number(op, views[0])?, number(op, views[1])?) else {
                    return Ok(Val::NULL);
                };
                match (Acc::of(a), Acc::of(b)) {
                    (_, Acc::Int(0)) => fail("$mod", "can't $mod by zero"),
                    (Acc::Int(x), Acc::Int(y)) => Ok(int(x.wrapping_rem(y)).into()),
                    (x, y) => {
                        if y.f64() == 0.0 {
                            return fail("$mod", "can't $mod by zero");
                        }
                        Ok(Bson::Double(x.f64() % y.f64()).into())
                    }
                }
            }
            Op::Pow => {
                let (Some(a), Some(b)) = (number(op, views[0])?, number(op, views[1])?) else {
                    return Ok(Val::NULL);
                };
                pow(a, b)
            }
            Op::Log => {
                let (Some(a), Some(b)) = (number(op, views[0])?, number(op, views[1])?) else {
                    return Ok(Val::NULL);
                };
                let (x, base) = (to_f64(a), to_f64(b));
                if x <= 0.0 {
                    return fail("$log", "$log's argument must be a positive number");
                }
                if base <= 0.0 || base == 1.0 {
                    return fail(
                        "$log",
                        "$log's base must be a positive number not equal to 1",
                    );
                }
                Ok(Bson::Double(x.ln() / base.ln()).into())
            }
            Op::Round | Op::Trunc => {
                let Some(n) = number(op, views[0])? else {
                    return Ok(Val::NULL);
                };
                let place = match views.get(1) {
                    None => 0,
                    Some(p) => match number(op, *p)? {
                        None => return Ok(Val::NULL),
                        Some(Num::Int(i)) if (-20..100).contains(&i) => i,
                        Some(Num::Double(f)) if f.fract() == 0.0 && (-20.0..100.0).contains(&f) => {
                            f as i64
                        }
                        Some(_) => {
                            return fail(
                                name(op),
                                format!(
                                    "{} takes a whole number of places between -20 and 100",
                                    name(op)
                                ),
                            )
                        }
                    },
                };
                Ok(round(n, place, op == Op::Round).into())
            }
            _ => {
                let Some(n) = number(op, views[0])? else {
                    return Ok(Val::NULL);
                };
                unary(op, n)
            }
        }
    }
}

fn add<'a>(views: &[Option<ValRef<'_>>]) -> EResult<Val<'a>> {
    let mut acc = Acc::Int(0);
    let mut date_ms: Option<i64> = None;
    for v in views {
        match v {
            None | Some(ValRef::Null | ValRef::Undefined) => return Ok(Val::NULL),
            Some(ValRef::DateTime(ms)) => {
                if date_ms.is_some() {
                    return fail("$add", "only one date allowed in an $add expression");
                }
                date_ms = Some(*ms);
            }
            Some(ValRef::Number(n)) => acc = acc.add(*n),
            Some(other) => {
                return fail(
                    "$add",
                    format!(
                        "$add only supports numeric or date types, not {}",
                        show(Some(*other))
                    ),
                )
            }
        }
    }
    Ok(match date_ms {
        Some(ms) => {
            let n = match acc {
                Acc::Int(i) => Num::Int(i),
                Acc::Double(f) => Num::Double(f),
            };
            let delta = millis(Op::Add, n)?;
            match ms.checked_add(delta) {
                Some(t) => date(t).into(),
                None => return fail("$add", "date overflow"),
            }
        }
        None => acc.bson().into(),
    })
}

fn subtract<'a>(a: Option<ValRef<'_>>, b: Option<ValRef<'_>>) -> EResult<Val<'a>> {
    let nullish = |v: &Option<ValRef<'_>>| v.is_none_or(|x| x.is_nullish());
    if nullish(&a) || nullish(&b) {
        return Ok(Val::NULL);
    }
    match (a, b) {
        (Some(ValRef::DateTime(x)), Some(ValRef::DateTime(y))) => Ok(int(x.wrapping_sub(y)).into()),
        (Some(ValRef::DateTime(x)), Some(ValRef::Number(n))) => {
            let delta = millis(Op::Subtract, n)?;
            match x.checked_sub(delta) {
                Some(t) => Ok(date(t).into()),
                None => fail("$subtract", "date overflow"),
            }
        }
        (Some(ValRef::Number(x)), Some(ValRef::Number(y))) => match (Acc::of(x), Acc::of(y)) {
            (Acc::Int(p), Acc::Int(q)) => Ok(match p.checked_sub(q) {
                Some(d) => int(d),
                None => Bson::Double(p as f64 - q as f64),
            }
            .into()),
            (p, q) => Ok(Bson::Double(p.f64() - q.f64()).into()),
        },
        (x, y) => fail(
            "$subtract",
            format!("can't $subtract {} from {}", show(y), show(x)),
        ),
    }
}

fn pow<'a>(a: Num, b: Num) -> EResult<Val<'a>> {
    if let (Acc::Int(base), Acc::Int(exp)) = (Acc::of(a), Acc::of(b)) {
        if base == 0 && exp < 0 {
            return fail(
                "$pow",
                "$pow cannot take a base of 0 and a negative exponent",
            );
        }
        if exp >= 0 {
            if let Ok(e) = u32::try_from(exp) {
                if let Some(p) = base.checked_pow(e) {
                    return Ok(int(p).into());
                }
            }
            return Ok(Bson::Double((base as f64).powf(exp as f64)).into());
        }
        // Negative exponents of integers: 1 and -1 stay integers.
        if base == 1 {
            return Ok(int(1).into());
        }
        if base == -1 {
            return Ok(int(if exp % 2 == 0 { 1 } else { -1 }).into());
        }
        return Ok(Bson::Double((base as f64).powf(exp as f64)).into());
    }
    let (x, y) = (to_f64(a), to_f64(b));
    if x == 0.0 && y < 0.0 {
        return fail(
            "$pow",
            "$pow cannot take a base of 0 and a negative exponent",
        );
    }
    Ok(Bson::Double(x.powf(y)).into())
}

fn unary<'a>(op: Op, n: Num) -> EResult<Val<'a>> {
    let acc = Acc::of(n);
    Ok(match op {
        Op::Abs => match acc {
            Acc::Int(i) => match i.checked_abs() {
                Some(a) => int(a),
                None => return fail("$abs", "can't take $abs of the smallest 64-bit integer"),
            },
            Acc::Double(f) => Bson::Double(f.abs()),
        },
        Op::Ceil => match acc {
            Acc::Int(i) => int(i),
            Acc::Double(f) => Bson::Double(f.ceil()),
        },
        Op::Floor => match acc {
            Acc::Int(i) => int(i),
            Acc::Double(f) => Bson::Double(f.floor()),
        },
        Op::Sqrt => {
            let f = acc.f64();
            if f < 0.0 {
                return fail(
                    "$sqrt",
                    "$sqrt's argument must be greater than or equal to 0",
                );
            }
            Bson::Double(f.sqrt())
        }
        Op::Exp => Bson::Double(acc.f64().exp()),
        Op::Ln => {
            let f = acc.f64();
            if f <= 0.0 {
                return fail("$ln", "$ln's argument must be a positive number");
            }
            Bson::Double(f.ln())
        }
        Op::Log10 => {
            let f = acc.f64();
            if f <= 0.0 {
                return fail("$log10", "$log10's argument must be a positive number");
            }
            Bson::Double(f.log10())
        }
        _ => Bson::Null,
    }
    .into())
}

/// `$round` (half to even, as MongoDB) or `$trunc` at `place` decimal places;
/// integers stay integers.
fn round(n: Num, place: i64, half_even: bool) -> Bson {
    match Acc::of(n) {
        Acc::Int(i) => {
            if place >= 0 {
                return int(i);
            }
            let Some(unit) = 10i64.checked_pow((-place) as u32) else {
                return int(0);
            };
            let q = i / unit;
            let r = i % unit;
            let mut out = q;
            if half_even {
                let twice = r.unsigned_abs().saturating_mul(2);
                let unit_u = unit.unsigned_abs();
                let up = twice > unit_u || (twice == unit_u && q % 2 != 0);
                if up {
                    out += i.signum();
                }
            }
            match out.checked_mul(unit) {
                Some(v) => int(v),
                None => Bson::Double(out as f64 * unit as f64),
            }
        }
        Acc::Double(f) => {
            if !f.is_finite() {
                return Bson::Double(f);
            }
            let scale = 10f64.powi(place as i32);
            let x = f * scale;
            let r = if half_even {
                x.round_ties_even()
            } else {
                x.trunc()
            };
            let out = r / scale;
            // Dividing can reintroduce representation noise; prefer the shortest
            // decimal rendering with `place` digits when it parses back.
            if place > 0 {
                if let Ok(p) = format!("{out:.prec$}", prec = place as usize).parse::<f64>() {
                    return Bson::Double(p);
                }
            }
            Bson::Double(out)
        }
    }
}
