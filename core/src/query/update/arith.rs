//! `$inc` / `$mul` arithmetic with MongoDB's integer normalisation, and `$currentDate`.

use bson::Bson;
use serde_json::Value;

use super::*;

/// Reads a stored number for arithmetic; `None` for anything else (including
/// Decimal128 values that are not integers written by collection-store).
pub(super) fn arith_of(b: &Bson) -> Option<Arith> {
    match b {
        Bson::Int32(i) => Some(Arith::Int(i128::from(*i))),
        Bson::Int64(i) => Some(Arith::Int(i128::from(*i))),
        Bson::Double(f) => Some(Arith::Float(*f)),
        Bson::Decimal128(d) => decimal_to_i128(d).map(Arith::Int),
        _ => None,
    }
}

pub(super) fn fits_i64(v: i128) -> bool {
    i64::try_from(v).is_ok()
}

pub(super) fn fits_u64(v: i128) -> bool {
    u64::try_from(v).is_ok()
}

pub(super) fn arith_operand(op: &str, path: &FieldPath, v: &Value) -> Result<Arith> {
    let b = operand_value(op, path.as_str(), v)?;
    match arith_of(&b) {
        Some(Arith::Int(i)) if !fits_i64(i) && !fits_u64(i) => Err(invalid(format!(
            "{op} '{path}': the integer operand {i} is outside the 64-bit range"
        ))),
        Some(n) => Ok(n),
        None => Err(invalid(format!(
            "{op} '{path}' takes a number (an integer or a double), such as {{\"{op}\": {{\"{path}\": 2}}}}; got {}",
            describe(v)
        ))),
    }
}

/// 1 or -1 (any JSON number equal to either), else `None`.
pub(super) fn sign(v: &Value) -> Option<i8> {
    let f = v.as_f64()?;
    if f == 1.0 {
        Some(1)
    } else if f == -1.0 {
        Some(-1)
    } else {
        None
    }
}

/// An integral JSON number (integral doubles accepted), saturated to `i64`.
pub(super) fn integer(v: &Value) -> Option<i64> {
    let Value::Number(n) = v else { return None };
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    if n.as_u64().is_some() {
        return Some(i64::MAX);
    }
    let f = n.as_f64()?;
    // `as` saturates at the i64 bounds.
    (f.is_finite() && f.fract() == 0.0).then_some(f as i64)
}

pub(super) fn parse_current_date(path: &FieldPath, v: &Value) -> Result<DateKind> {
    let kind = match v {
        Value::Bool(true) => Some(DateKind::Date),
        Value::Object(m) if m.len() == 1 => match m.get("$type").and_then(Value::as_str) {
            Some("date") => Some(DateKind::Date),
            Some("timestamp") => Some(DateKind::Timestamp),
            _ => None,
        },
        _ => None,
    };
    kind.ok_or_else(|| {
        invalid(format!(
            "$currentDate '{path}' takes true, {{\"$type\": \"date\"}} or {{\"$type\": \"timestamp\"}}; got {}",
            describe(v)
        ))
    })
}

/// Stores an integer result: int32 when it fits, else int64, else (only when
/// an operand was beyond `i64`) an integral Decimal128 up to `u64::MAX`.
pub(super) fn int_bson(v: i128, allow_big: bool) -> Option<Bson> {
    if let Ok(small) = i32::try_from(v) {
        Some(Bson::Int32(small))
    } else if let Ok(long) = i64::try_from(v) {
        Some(Bson::Int64(long))
    } else if allow_big && fits_u64(v) {
        Some(Bson::Decimal128(decimal_from_i128(v)))
    } else {
        None
    }
}

pub(super) fn arith_bson(n: Arith, at: &At<'_>) -> Result<Bson> {
    match n {
        Arith::Int(i) => int_bson(i, !fits_i64(i)).ok_or_else(|| at.overflow()),
        Arith::Float(f) => Ok(Bson::Double(f)),
    }
}

pub(super) fn arithmetic(cur: &Bson, by: Arith, multiply: bool, at: &At<'_>) -> Result<Bson> {
    let Some(x) = arith_of(cur) else {
        let note = if matches!(cur, Bson::Decimal128(_)) {
            " (only integral Decimal128 values are supported)"
        } else {
            ""
        };
        return Err(at.mismatch(format!(
            "Cannot apply {} to a value of non-numeric type {} ({}){note}",
            at.op,
            type_name(cur),
            render(cur)
        )));
    };
    match (x, by) {
        (Arith::Int(a), Arith::Int(b)) => {
            let r = if multiply {
                a.checked_mul(b)
            } else {
                a.checked_add(b)
            };
            let allow_big = !fits_i64(a) || !fits_i64(b);
            r.and_then(|r| int_bson(r, allow_big))
                .ok_or_else(|| at.overflow())
        }
        (a, b) => {
            let (a, b) = (a.as_f64(), b.as_f64());
            Ok(Bson::Double(if multiply { a * b } else { a + b }))
        }
    }
}

pub(super) fn current_date(kind: DateKind, now: bson::DateTime) -> Bson {
    match kind {
        DateKind::Date => Bson::DateTime(now),
        DateKind::Timestamp => {
            let secs = now.timestamp_millis().div_euclid(1000);
            let time = u32::try_from(secs.max(0)).unwrap_or(u32::MAX);
            Bson::Timestamp(bson::Timestamp { time, increment: 1 })
        }
    }
}
