//! Types and conversion: `$type $isNumber $convert $toString $toInt $toLong
//! $toDouble $toBool $toDate $toObjectId`.
//!
//! `$toX` is `$convert` with `to: X` and no `onError`/`onNull`: null and
//! missing give null, a value that cannot be converted is an error. Integers
//! convert to `int` only when they fit 32 bits; doubles truncate toward zero;
//! strings parse as base-10 numbers or ISO-8601 dates; dates convert to and
//! from milliseconds. Decimal128 arithmetic is not implemented, so `$toDecimal`
//! and `to: "decimal"` are refused.

use bson::oid::ObjectId;
use bson::Bson;
use serde_json::Value;

use super::date::{format_date, parse_date, Zone};
use super::{fail, fixed, object_args, parse as parse_expr, Cx, EResult, Expr, PResult, Scope};
use crate::aggregate::value::{show, type_name, Val};
use crate::doc::{Num, ValRef};

/// A conversion target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Double,
    String,
    ObjectId,
    Bool,
    Date,
    Int,
    Long,
}

fn target_name(t: Target) -> &'static str {
    match t {
        Target::Double => "double",
        Target::String => "string",
        Target::ObjectId => "objectId",
        Target::Bool => "bool",
        Target::Date => "date",
        Target::Int => "int",
        Target::Long => "long",
    }
}

/// A type or conversion operator (boxed inside [`Expr`], so variant sizes matter little).
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Conv {
    /// `$type`.
    Type(Expr),
    /// `$isNumber`.
    IsNumber(Expr),
    /// `$convert` / `$toX`.
    Convert {
        input: Expr,
        to: To,
        on_error: Option<Expr>,
        on_null: Option<Expr>,
    },
}

/// The `to` of `$convert`: known at parse time or computed.
#[derive(Debug, Clone)]
pub(crate) enum To {
    /// A constant target.
    Fixed(Target),
    /// An expression giving a type name or number.
    Computed(Expr),
}

fn target_of(v: ValRef<'_>) -> Result<Target, String> {
    let t = match v {
        ValRef::String(s) => match s {
            "double" => Some(Target::Double),
            "string" => Some(Target::String),
            "objectId" => Some(Target::ObjectId),
            "bool" => Some(Target::Bool),
            "date" => Some(Target::Date),
            "int" => Some(Target::Int),
            "long" => Some(Target::Long),
            "decimal" => {
                return Err(
                    "conversion to decimal is not supported (no Decimal128 arithmetic)".into(),
                )
            }
            _ => None,
        },
        ValRef::Number(Num::Int(i)) => match i {
            1 => Some(Target::Double),
            2 => Some(Target::String),
            7 => Some(Target::ObjectId),
            8 => Some(Target::Bool),
            9 => Some(Target::Date),
            16 => Some(Target::Int),
            18 => Some(Target::Long),
            19 => {
                return Err(
                    "conversion to decimal is not supported (no Decimal128 arithmetic)".into(),
                )
            }
            _ => None,
        },
        _ => None,
    };
    t.ok_or_else(|| {
        format!(
            "'{}' is not a conversion target; use \"double\", \"string\", \"objectId\", \"bool\", \"date\", \"int\" or \"long\"",
            crate::doc::json::json_from_val(v)
        )
    })
}

/// Parses `name` if it is a type or conversion operator.
pub(crate) fn parse(n: &str, arg: &Value, scope: &mut Scope) -> Option<PResult<Expr>> {
    let shorthand = |t: Target, scope: &mut Scope| -> PResult<Conv> {
        let mut a = fixed(n, arg, 1, scope)?;
        Ok(Conv::Convert {
            input: a.remove(0),
            to: To::Fixed(t),
            on_error: None,
            on_null: None,
        })
    };
    let c = match n {
        "$type" => fixed(n, arg, 1, scope).map(|mut a| Conv::Type(a.remove(0))),
        "$isNumber" => fixed(n, arg, 1, scope).map(|mut a| Conv::IsNumber(a.remove(0))),
        "$toString" => shorthand(Target::String, scope),
        "$toInt" => shorthand(Target::Int, scope),
        "$toLong" => shorthand(Target::Long, scope),
        "$toDouble" => shorthand(Target::Double, scope),
        "$toBool" => shorthand(Target::Bool, scope),
        "$toDate" => shorthand(Target::Date, scope),
        "$toObjectId" => shorthand(Target::ObjectId, scope),
        "$toDecimal" => Err("$toDecimal is not supported (no Decimal128 arithmetic)".into()),
        "$convert" => parse_convert(arg, scope),
        _ => return None,
    };
    Some(c.map(|c| Expr::Conv(Box::new(c))))
}

fn parse_convert(arg: &Value, scope: &mut Scope) -> PResult<Conv> {
    let m = object_args(
        "$convert",
        arg,
        &["input", "to", "onError", "onNull"],
        &["input", "to"],
    )?;
    let input = parse_expr(m["input"], scope)?;
    let to_expr = parse_expr(m["to"], scope)?;
    let to = match to_expr.as_const() {
        Some(b) => To::Fixed(target_of(ValRef::from(b)).map_err(|e| format!("$convert: {e}"))?),
        None => To::Computed(to_expr),
    };
    let opt = |k: &str, scope: &mut Scope| -> PResult<Option<Expr>> {
        m.get(k).map(|v| parse_expr(v, scope)).transpose()
    };
    Ok(Conv::Convert {
        input,
        on_error: opt("onError", scope)?,
        on_null: opt("onNull", scope)?,
        to,
    })
}

impl Conv {
    pub(crate) fn eval<'a>(&'a self, cx: &mut Cx<'a>) -> EResult<Val<'a>> {
        match self {
            Conv::Type(e) => {
                let v = e.eval(cx)?;
                Ok(Val::Own(Bson::String(type_name(v.view()).into())))
            }
            Conv::IsNumber(e) => {
                let v = e.eval(cx)?;
                Ok(Val::Own(Bson::Boolean(matches!(
                    v.view(),
                    Some(ValRef::Number(_))
                ))))
            }
            Conv::Convert {
                input,
                to,
                on_error,
                on_null,
            } => {
                let v = input.eval(cx)?;
                if v.is_nullish() {
                    return match on_null {
                        Some(e) => e.eval(cx),
                        None => Ok(Val::NULL),
                    };
                }
                let target = match to {
                    To::Fixed(t) => *t,
                    To::Computed(e) => {
                        let tv = e.eval(cx)?;
                        match tv.view() {
                            Some(t) => match target_of(t) {
                                Ok(t) => t,
                                Err(m) => return fail("$convert", m),
                            },
                            None => return Ok(Val::NULL),
                        }
                    }
                };
                match convert(v.view(), target) {
                    Ok(b) => Ok(Val::Own(b)),
                    Err(message) => match on_error {
                        Some(e) => e.eval(cx),
                        None => fail("$convert", message),
                    },
                }
            }
        }
    }
}

fn unsupported(v: ValRef<'_>, t: Target) -> String {
    format!(
        "unsupported conversion from {} to {} (no onError value given)",
        show(Some(v)),
        target_name(t)
    )
}

fn overflow(v: ValRef<'_>, t: Target) -> String {
    format!(
        "converting {} to {} would overflow the target type (no onError value given)",
        show(Some(v)),
        target_name(t)
    )
}

/// Converts a present value to `t`.
fn convert(v: Option<ValRef<'_>>, t: Target) -> Result<Bson, String> {
    let Some(v) = v else { return Ok(Bson::Null) };
    match t {
        Target::Bool => Ok(Bson::Boolean(match v {
            ValRef::Boolean(b) => b,
            ValRef::Number(Num::Int(i)) => i != 0,
            ValRef::Number(Num::Big(b)) => b != 0,
            ValRef::Number(Num::Double(f)) => f != 0.0,
            _ => true,
        })),
        Target::Double => match v {
            ValRef::Boolean(b) => Ok(Bson::Double(if b { 1.0 } else { 0.0 })),
            ValRef::Number(Num::Int(i)) => Ok(Bson::Double(i as f64)),
            ValRef::Number(Num::Big(b)) => Ok(Bson::Double(b as f64)),
            ValRef::Number(Num::Double(f)) => Ok(Bson::Double(f)),
            ValRef::DateTime(ms) => Ok(Bson::Double(ms as f64)),
            ValRef::String(s) => parse_double(s)
                .map(Bson::Double)
                .ok_or_else(|| format!("failed to parse number '{s}' in $convert to double")),
            other => Err(unsupported(other, t)),
        },
        Target::Int | Target::Long => {
            let i = match v {
                ValRef::Boolean(b) => i64::from(b),
                ValRef::Number(Num::Int(i)) => i,
                ValRef::Number(Num::Big(_)) => return Err(overflow(v, t)),
                ValRef::Number(Num::Double(f)) => {
                    if !f.is_finite() || f.trunc().abs() >= 9.223_372_036_854_775e18 {
                        return Err(overflow(v, t));
                    }
                    f.trunc() as i64
                }
                ValRef::DateTime(ms) if t == Target::Long => ms,
                ValRef::String(s) => parse_int(s).ok_or_else(|| {
                    format!(
                        "failed to parse '{s}' as an integer in $convert to {}",
                        target_name(t)
                    )
                })?,
                other => return Err(unsupported(other, t)),
            };
            if t == Target::Int {
                match i32::try_from(i) {
                    Ok(small) => Ok(Bson::Int32(small)),
                    Err(_) => Err(overflow(v, t)),
                }
            } else {
                Ok(Bson::Int64(i))
            }
        }
        Target::String => coerce(v).map(Bson::String).ok_or_else(|| unsupported(v, t)),
        Target::Date => match v {
            ValRef::DateTime(ms) => Ok(Bson::DateTime(bson::DateTime::from_millis(ms))),
            ValRef::Number(Num::Int(i)) => Ok(Bson::DateTime(bson::DateTime::from_millis(i))),
            ValRef::Number(Num::Double(f)) if f.is_finite() && f.abs() < 9.2e18 => Ok(
                Bson::DateTime(bson::DateTime::from_millis(f.trunc() as i64)),
            ),
            ValRef::ObjectId(o) => {
                let secs = u32::from_be_bytes([o[0], o[1], o[2], o[3]]);
                Ok(Bson::DateTime(bson::DateTime::from_millis(
                    i64::from(secs) * 1000,
                )))
            }
            ValRef::Timestamp { time, .. } => Ok(Bson::DateTime(bson::DateTime::from_millis(
                i64::from(time) * 1000,
            ))),
            ValRef::String(s) => parse_date(s, None, Zone::UTC)
                .map(|ms| Bson::DateTime(bson::DateTime::from_millis(ms)))
                .map_err(|e| format!("$convert to date: {e}")),
            other => Err(unsupported(other, t)),
        },
        Target::ObjectId => match v {
            ValRef::ObjectId(o) => Ok(Bson::ObjectId(ObjectId::from_bytes(o))),
            ValRef::String(s) => ObjectId::parse_str(s)
                .map(Bson::ObjectId)
                .map_err(|_| format!("failed to parse objectId '{s}' in $convert (24 hex digits)")),
            other => Err(unsupported(other, t)),
        },
    }
}

fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_double(s: &str) -> Option<f64> {
    match s {
        "Infinity" | "inf" => return Some(f64::INFINITY),
        "-Infinity" | "-inf" => return Some(f64::NEG_INFINITY),
        "NaN" | "nan" => return Some(f64::NAN),
        _ => {}
    }
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    if ok {
        s.parse().ok()
    } else {
        None
    }
}

/// A double rendered as MongoDB does: integral values without a fraction.
pub(crate) fn double_string(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        format!("{f}")
    }
}

/// A value as a string (`$toString`'s rules); `None` when it has no string form.
fn coerce(v: ValRef<'_>) -> Option<String> {
    Some(match v {
        ValRef::String(s) | ValRef::Symbol(s) => s.to_owned(),
        ValRef::Boolean(b) => b.to_string(),
        ValRef::Number(Num::Int(i)) => i.to_string(),
        ValRef::Number(Num::Big(b)) => b.to_string(),
        ValRef::Number(Num::Double(f)) => double_string(f),
        ValRef::DateTime(ms) => format_date(ms, "%Y-%m-%dT%H:%M:%S.%LZ", Zone::UTC).ok()?,
        ValRef::ObjectId(o) => ObjectId::from_bytes(o).to_hex(),
        ValRef::Timestamp { time, increment } => format!("Timestamp({time}, {increment})"),
        _ => return None,
    })
}

/// The string form used by `$substr*`, `$toLower`, `$toUpper` and
/// `$strcasecmp`: null and missing are the empty string.
pub(crate) fn coerce_to_string(operator: &'static str, v: Option<ValRef<'_>>) -> EResult<String> {
    match v {
        None | Some(ValRef::Null | ValRef::Undefined) => Ok(String::new()),
        Some(x) => match coerce(x) {
            Some(s) => Ok(s),
            None => fail(
                operator,
                format!("{operator} cannot convert {} to a string", show(Some(x))),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_render_like_mongodb() {
        assert_eq!(double_string(2.0), "2");
        assert_eq!(double_string(2.5), "2.5");
        assert_eq!(double_string(-0.125), "-0.125");
        assert_eq!(parse_int("+12"), Some(12));
        assert_eq!(parse_int("1.5"), None);
        assert_eq!(parse_double("5e3"), Some(5000.0));
        assert_eq!(parse_double("0x10"), None);
    }
}
