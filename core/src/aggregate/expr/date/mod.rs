//! Dates: `$year $month $dayOfMonth $hour $minute $second $millisecond
//! $dayOfWeek $dayOfYear $week $isoWeek $isoWeekYear $isoDayOfWeek
//! $dateToString $dateFromString $dateFromParts $dateToParts $dateAdd
//! $dateSubtract $dateDiff $dateTrunc`.
//!
//! Calendar arithmetic comes from the `time` crate; this file maps MongoDB's
//! operators, format specifiers (`%Y-%m-%dT%H:%M:%S.%LZ`, ...) and null rules
//! onto it. Time zones: `UTC`/`GMT`/`Z` and fixed offsets (`"+05:30"`,
//! `"-0800"`, `"+03"`); Olson names (`"Europe/Oslo"`) are refused because the
//! engine carries no time-zone database. Dates in the operators' inputs may be
//! dates, timestamps or ObjectIds, as in MongoDB.

use bson::{Bson, Document};
use serde_json::Value;
use time::{Date, Month, Weekday};

mod calendar;
mod format;

pub(crate) use calendar::Zone;
use calendar::{add_months, parts, to_ms, Parts, DAY_MS, EPOCH_JD};
use format::{check_format, has_offset};
pub(crate) use format::{format_date, parse_date};

use super::{
    describe, fail, object_args, operands, parse as parse_expr, Cx, EResult, Expr, PResult, Scope,
};
use crate::aggregate::value::{int, show, Val};
use crate::doc::{Num, ValRef};

/// A date part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Year,
    Month,
    DayOfMonth,
    Hour,
    Minute,
    Second,
    Millisecond,
    DayOfWeek,
    DayOfYear,
    Week,
    IsoWeek,
    IsoWeekYear,
    IsoDayOfWeek,
}

/// A calendar unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Year,
    Quarter,
    Month,
    Week,
    Day,
    Hour,
    Minute,
    Second,
    Millisecond,
}

fn unit_of(v: ValRef<'_>) -> Result<Unit, String> {
    Ok(match v {
        ValRef::String("year") => Unit::Year,
        ValRef::String("quarter") => Unit::Quarter,
        ValRef::String("month") => Unit::Month,
        ValRef::String("week") => Unit::Week,
        ValRef::String("day") => Unit::Day,
        ValRef::String("hour") => Unit::Hour,
        ValRef::String("minute") => Unit::Minute,
        ValRef::String("second") => Unit::Second,
        ValRef::String("millisecond") => Unit::Millisecond,
        other => {
            return Err(format!(
                "{} is not a date unit (year, quarter, month, week, day, hour, minute, second, millisecond)",
                show(Some(other))
            ))
        }
    })
}

fn weekday_of(v: ValRef<'_>) -> Result<Weekday, String> {
    let s = match v {
        ValRef::String(s) => s.to_ascii_lowercase(),
        other => {
            return Err(format!(
                "startOfWeek must be a day name, got {}",
                show(Some(other))
            ))
        }
    };
    Ok(match s.as_str() {
        "monday" | "mon" => Weekday::Monday,
        "tuesday" | "tue" => Weekday::Tuesday,
        "wednesday" | "wed" => Weekday::Wednesday,
        "thursday" | "thu" => Weekday::Thursday,
        "friday" | "fri" => Weekday::Friday,
        "saturday" | "sat" => Weekday::Saturday,
        "sunday" | "sun" => Weekday::Sunday,
        _ => return Err(format!("'{s}' is not a day of the week")),
    })
}

/// A date operator.
#[derive(Debug, Clone)]
pub(crate) enum DateOp {
    /// `$year`, `$month`, ...
    Part(Part, Expr, Option<Expr>),
    /// `$dateToString`.
    ToString {
        date: Expr,
        format: Option<Expr>,
        zone: Option<Expr>,
        on_null: Option<Expr>,
    },
    /// `$dateFromString`.
    FromString {
        string: Expr,
        format: Option<Expr>,
        zone: Option<Expr>,
        on_error: Option<Expr>,
        on_null: Option<Expr>,
    },
    /// `$dateFromParts`: (name, expr) pairs, ISO form when `iso`.
    FromParts {
        parts: Vec<(&'static str, Expr)>,
        iso: bool,
        zone: Option<Expr>,
    },
    /// `$dateToParts`.
    ToParts {
        date: Expr,
        zone: Option<Expr>,
        iso: Option<Expr>,
    },
    /// `$dateAdd` (`negate` false) and `$dateSubtract`.
    Add {
        start: Expr,
        unit: Expr,
        amount: Expr,
        zone: Option<Expr>,
        negate: bool,
    },
    /// `$dateDiff`.
    Diff {
        start: Expr,
        end: Expr,
        unit: Expr,
        zone: Option<Expr>,
        start_of_week: Option<Expr>,
    },
    /// `$dateTrunc`.
    Trunc {
        date: Expr,
        unit: Expr,
        bin: Option<Expr>,
        zone: Option<Expr>,
        start_of_week: Option<Expr>,
    },
}

fn opt(
    m: &std::collections::HashMap<&str, &Value>,
    k: &str,
    scope: &mut Scope,
) -> PResult<Option<Expr>> {
    m.get(k).map(|v| parse_expr(v, scope)).transpose()
}

/// Checks constant arguments at parse time (formats, zones, units).
fn check_const(e: &Option<Expr>, check: impl Fn(ValRef<'_>) -> Result<(), String>) -> PResult<()> {
    if let Some(b) = e.as_ref().and_then(Expr::as_const) {
        let v = ValRef::from(b);
        if !v.is_nullish() {
            check(v)?;
        }
    }
    Ok(())
}

fn zone_check(v: ValRef<'_>) -> Result<(), String> {
    match v {
        ValRef::String(s) => Zone::parse(s).map(|_| ()),
        other => Err(format!(
            "timezone must be a string, got {}",
            show(Some(other))
        )),
    }
}

fn format_check(v: ValRef<'_>) -> Result<(), String> {
    match v {
        ValRef::String(s) => check_format(s),
        other => Err(format!(
            "format must be a string, got {}",
            show(Some(other))
        )),
    }
}

/// Parses `name` if it is a date operator.
pub(crate) fn parse(n: &str, arg: &Value, scope: &mut Scope) -> Option<PResult<Expr>> {
    let part = match n {
        "$year" => Some(Part::Year),
        "$month" => Some(Part::Month),
        "$dayOfMonth" => Some(Part::DayOfMonth),
        "$hour" => Some(Part::Hour),
        "$minute" => Some(Part::Minute),
        "$second" => Some(Part::Second),
        "$millisecond" => Some(Part::Millisecond),
        "$dayOfWeek" => Some(Part::DayOfWeek),
        "$dayOfYear" => Some(Part::DayOfYear),
        "$week" => Some(Part::Week),
        "$isoWeek" => Some(Part::IsoWeek),
        "$isoWeekYear" => Some(Part::IsoWeekYear),
        "$isoDayOfWeek" => Some(Part::IsoDayOfWeek),
        _ => None,
    };
    let op = if let Some(p) = part {
        parse_part(n, p, arg, scope)
    } else {
        match n {
            "$dateToString" => parse_to_string(arg, scope),
            "$dateFromString" => parse_from_string(arg, scope),
            "$dateFromParts" => parse_from_parts(arg, scope),
            "$dateToParts" => (|| {
                let m = object_args(n, arg, &["date", "timezone", "iso8601"], &["date"])?;
                let zone = opt(&m, "timezone", scope)?;
                check_const(&zone, zone_check).map_err(|e| format!("{n}: {e}"))?;
                Ok(DateOp::ToParts {
                    date: parse_expr(m["date"], scope)?,
                    zone,
                    iso: opt(&m, "iso8601", scope)?,
                })
            })(),
            "$dateAdd" | "$dateSubtract" => (|| {
                let m = object_args(
                    n,
                    arg,
                    &["startDate", "unit", "amount", "timezone"],
                    &["startDate", "unit", "amount"],
                )?;
                let unit = parse_expr(m["unit"], scope)?;
                check_const(&Some(unit.clone()), |v| unit_of(v).map(|_| ()))
                    .map_err(|e| format!("{n}: {e}"))?;
                let zone = opt(&m, "timezone", scope)?;
                check_const(&zone, zone_check).map_err(|e| format!("{n}: {e}"))?;
                Ok(DateOp::Add {
                    start: parse_expr(m["startDate"], scope)?,
                    unit,
                    amount: parse_expr(m["amount"], scope)?,
                    zone,
                    negate: n == "$dateSubtract",
                })
            })(),
            "$dateDiff" => (|| {
                let m = object_args(
                    n,
                    arg,
                    &["startDate", "endDate", "unit", "timezone", "startOfWeek"],
                    &["startDate", "endDate", "unit"],
                )?;
                let unit = parse_expr(m["unit"], scope)?;
                check_const(&Some(unit.clone()), |v| unit_of(v).map(|_| ()))
                    .map_err(|e| format!("{n}: {e}"))?;
                let zone = opt(&m, "timezone", scope)?;
                check_const(&zone, zone_check).map_err(|e| format!("{n}: {e}"))?;
                let start_of_week = opt(&m, "startOfWeek", scope)?;
                check_const(&start_of_week, |v| weekday_of(v).map(|_| ()))
                    .map_err(|e| format!("{n}: {e}"))?;
                Ok(DateOp::Diff {
                    start: parse_expr(m["startDate"], scope)?,
                    end: parse_expr(m["endDate"], scope)?,
                    unit,
                    zone,
                    start_of_week,
                })
            })(),
            "$dateTrunc" => (|| {
                let m = object_args(
                    n,
                    arg,
                    &["date", "unit", "binSize", "timezone", "startOfWeek"],
                    &["date", "unit"],
                )?;
                let unit = parse_expr(m["unit"], scope)?;
                check_const(&Some(unit.clone()), |v| unit_of(v).map(|_| ()))
                    .map_err(|e| format!("{n}: {e}"))?;
                let zone = opt(&m, "timezone", scope)?;
                check_const(&zone, zone_check).map_err(|e| format!("{n}: {e}"))?;
                let start_of_week = opt(&m, "startOfWeek", scope)?;
                check_const(&start_of_week, |v| weekday_of(v).map(|_| ()))
                    .map_err(|e| format!("{n}: {e}"))?;
                Ok(DateOp::Trunc {
                    date: parse_expr(m["date"], scope)?,
                    unit,
                    bin: opt(&m, "binSize", scope)?,
                    zone,
                    start_of_week,
                })
            })(),
            _ => return None,
        }
    };
    Some(op.map(|d| Expr::Date(Box::new(d))))
}

fn parse_part(n: &str, part: Part, arg: &Value, scope: &mut Scope) -> PResult<DateOp> {
    match arg {
        Value::Object(m) if m.contains_key("date") => {
            let m = object_args(n, arg, &["date", "timezone"], &["date"])?;
            let zone = opt(&m, "timezone", scope)?;
            check_const(&zone, zone_check).map_err(|e| format!("{n}: {e}"))?;
            Ok(DateOp::Part(part, parse_expr(m["date"], scope)?, zone))
        }
        _ => {
            let ops = operands(arg);
            if ops.len() != 1 {
                return Err(format!(
                    "{n} takes one date (or {{date, timezone}}), got {}",
                    describe(arg)
                ));
            }
            Ok(DateOp::Part(part, parse_expr(ops[0], scope)?, None))
        }
    }
}

fn parse_to_string(arg: &Value, scope: &mut Scope) -> PResult<DateOp> {
    let n = "$dateToString";
    let m = object_args(n, arg, &["date", "format", "timezone", "onNull"], &["date"])?;
    let format = opt(&m, "format", scope)?;
    check_const(&format, format_check).map_err(|e| format!("{n}: {e}"))?;
    let zone = opt(&m, "timezone", scope)?;
    check_const(&zone, zone_check).map_err(|e| format!("{n}: {e}"))?;
    Ok(DateOp::ToString {
        date: parse_expr(m["date"], scope)?,
        format,
        zone,
        on_null: opt(&m, "onNull", scope)?,
    })
}

fn parse_from_string(arg: &Value, scope: &mut Scope) -> PResult<DateOp> {
    let n = "$dateFromString";
    let m = object_args(
        n,
        arg,
        &["dateString", "format", "timezone", "onError", "onNull"],
        &["dateString"],
    )?;
    let format = opt(&m, "format", scope)?;
    check_const(&format, format_check).map_err(|e| format!("{n}: {e}"))?;
    let zone = opt(&m, "timezone", scope)?;
    check_const(&zone, zone_check).map_err(|e| format!("{n}: {e}"))?;
    Ok(DateOp::FromString {
        string: parse_expr(m["dateString"], scope)?,
        format,
        zone,
        on_error: opt(&m, "onError", scope)?,
        on_null: opt(&m, "onNull", scope)?,
    })
}

const CALENDAR: [&str; 7] = [
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "millisecond",
];
const ISO: [&str; 7] = [
    "isoWeekYear",
    "isoWeek",
    "isoDayOfWeek",
    "hour",
    "minute",
    "second",
    "millisecond",
];

fn parse_from_parts(arg: &Value, scope: &mut Scope) -> PResult<DateOp> {
    let n = "$dateFromParts";
    let iso = matches!(arg, Value::Object(m) if m.contains_key("isoWeekYear"));
    let names: &[&'static str; 7] = if iso { &ISO } else { &CALENDAR };
    let mut allowed: Vec<&str> = names.to_vec();
    allowed.push("timezone");
    let m = object_args(n, arg, &allowed, &[names[0]])?;
    let zone = opt(&m, "timezone", scope)?;
    check_const(&zone, zone_check).map_err(|e| format!("{n}: {e}"))?;
    let mut parts = Vec::new();
    for name in names.iter() {
        if let Some(v) = m.get(name) {
            parts.push((*name, parse_expr(v, scope)?));
        }
    }
    Ok(DateOp::FromParts { parts, iso, zone })
}

/// A date operand as milliseconds: dates, timestamps and ObjectIds; `None`
/// for null and missing.
fn date_ms(op: &'static str, v: Option<ValRef<'_>>) -> EResult<Option<i64>> {
    match v {
        None | Some(ValRef::Null | ValRef::Undefined) => Ok(None),
        Some(ValRef::DateTime(ms)) => Ok(Some(ms)),
        Some(ValRef::Timestamp { time, .. }) => Ok(Some(i64::from(time) * 1000)),
        Some(ValRef::ObjectId(o)) => Ok(Some(
            i64::from(u32::from_be_bytes([o[0], o[1], o[2], o[3]])) * 1000,
        )),
        Some(other) => fail(
            op,
            format!("{op} can't convert {} to a date", show(Some(other))),
        ),
    }
}

fn zone_of<'a>(op: &'static str, e: &'a Option<Expr>, cx: &mut Cx<'a>) -> EResult<Option<Zone>> {
    match e {
        None => Ok(Some(Zone::UTC)),
        Some(e) => {
            let v = e.eval(cx)?;
            match v.view() {
                None | Some(ValRef::Null | ValRef::Undefined) => Ok(None),
                Some(ValRef::String(s)) => Zone::parse(s).map(Some).or_else(|m| fail(op, m)),
                Some(other) => fail(
                    op,
                    format!("{op}: timezone must be a string, got {}", show(Some(other))),
                ),
            }
        }
    }
}

fn string_opt<'a>(
    op: &'static str,
    what: &str,
    e: &'a Option<Expr>,
    cx: &mut Cx<'a>,
) -> EResult<Option<Option<String>>> {
    match e {
        None => Ok(Some(None)),
        Some(e) => {
            let v = e.eval(cx)?;
            match v.view() {
                None | Some(ValRef::Null | ValRef::Undefined) => Ok(None),
                Some(ValRef::String(s)) => Ok(Some(Some(s.to_owned()))),
                Some(other) => fail(
                    op,
                    format!("{op}: {what} must be a string, got {}", show(Some(other))),
                ),
            }
        }
    }
}

fn whole(op: &'static str, what: &str, v: Option<ValRef<'_>>) -> EResult<Option<i64>> {
    match v {
        None | Some(ValRef::Null | ValRef::Undefined) => Ok(None),
        Some(ValRef::Number(Num::Int(i))) => Ok(Some(i)),
        Some(ValRef::Number(Num::Double(f))) if f.fract() == 0.0 && f.abs() < 9.2e18 => {
            Ok(Some(f as i64))
        }
        Some(other) => fail(
            op,
            format!("{op}: {what} must be an integer, got {}", show(Some(other))),
        ),
    }
}

fn unit_val<'a>(op: &'static str, e: &'a Expr, cx: &mut Cx<'a>) -> EResult<Option<Unit>> {
    let v = e.eval(cx)?;
    match v.view() {
        None | Some(ValRef::Null | ValRef::Undefined) => Ok(None),
        Some(u) => unit_of(u).map(Some).or_else(|m| fail(op, m)),
    }
}

fn week_start<'a>(
    op: &'static str,
    e: &'a Option<Expr>,
    cx: &mut Cx<'a>,
) -> EResult<Option<Weekday>> {
    match e {
        None => Ok(Some(Weekday::Sunday)),
        Some(e) => {
            let v = e.eval(cx)?;
            match v.view() {
                None | Some(ValRef::Null | ValRef::Undefined) => Ok(None),
                Some(w) => weekday_of(w).map(Some).or_else(|m| fail(op, m)),
            }
        }
    }
}

fn date_val(ms: i64) -> Val<'static> {
    Val::Own(Bson::DateTime(bson::DateTime::from_millis(ms)))
}

/// Days since the epoch of the local date.
fn epoch_days(d: Date) -> i64 {
    i64::from(d.to_julian_day()) - EPOCH_JD
}

/// The index of the week (starting on `start`) that holds local day `days`.
fn week_index(days: i64, start: Weekday) -> i64 {
    // 1970-01-01 was a Thursday; shift so that weeks begin on `start`.
    let thursday = i64::from(Weekday::Thursday.number_days_from_monday());
    let first = i64::from(start.number_days_from_monday());
    (days + thursday - first).div_euclid(7)
}

fn part_value(part: Part, p: Parts) -> i64 {
    let d = p.date;
    match part {
        Part::Year => i64::from(d.year()),
        Part::Month => i64::from(d.month() as u8),
        Part::DayOfMonth => i64::from(d.day()),
        Part::Hour => p.ms_of_day / 3_600_000,
        Part::Minute => p.ms_of_day / 60_000 % 60,
        Part::Second => p.ms_of_day / 1000 % 60,
        Part::Millisecond => p.ms_of_day % 1000,
        Part::DayOfWeek => i64::from(d.weekday().number_from_sunday()),
        Part::DayOfYear => i64::from(d.ordinal()),
        Part::Week => i64::from(d.sunday_based_week()),
        Part::IsoWeek => i64::from(d.iso_week()),
        Part::IsoWeekYear => i64::from(d.to_iso_week_date().0),
        Part::IsoDayOfWeek => i64::from(d.weekday().number_from_monday()),
    }
}

fn part_name(part: Part) -> &'static str {
    match part {
        Part::Year => "$year",
        Part::Month => "$month",
        Part::DayOfMonth => "$dayOfMonth",
        Part::Hour => "$hour",
        Part::Minute => "$minute",
        Part::Second => "$second",
        Part::Millisecond => "$millisecond",
        Part::DayOfWeek => "$dayOfWeek",
        Part::DayOfYear => "$dayOfYear",
        Part::Week => "$week",
        Part::IsoWeek => "$isoWeek",
        Part::IsoWeekYear => "$isoWeekYear",
        Part::IsoDayOfWeek => "$isoDayOfWeek",
    }
}

fn range(op: &'static str, r: Result<Parts, String>) -> EResult<Parts> {
    r.or_else(|m| fail(op, m))
}

impl DateOp {
    pub(crate) fn eval<'a>(&'a self, cx: &mut Cx<'a>) -> EResult<Val<'a>> {
        match self {
            DateOp::Part(part, date, zone) => {
                let op = part_name(*part);
                let v = date.eval(cx)?;
                let Some(ms) = date_ms(op, v.view())? else {
                    return Ok(Val::NULL);
                };
                let Some(z) = zone_of(op, zone, cx)? else {
                    return Ok(Val::NULL);
                };
                let p = range(op, parts(ms, z))?;
                Ok(Val::Own(int(part_value(*part, p))))
            }
            DateOp::ToString {
                date,
                format,
                zone,
                on_null,
            } => {
                let op = "$dateToString";
                let v = date.eval(cx)?;
                let Some(ms) = date_ms(op, v.view())? else {
                    return match on_null {
                        Some(e) => e.eval(cx),
                        None => Ok(Val::NULL),
                    };
                };
                let Some(fmt) = string_opt(op, "format", format, cx)? else {
                    return Ok(Val::NULL);
                };
                let Some(z) = zone_of(op, zone, cx)? else {
                    return Ok(Val::NULL);
                };
                let fmt = fmt.unwrap_or_else(|| "%Y-%m-%dT%H:%M:%S.%LZ".into());
                check_format(&fmt).or_else(|m| fail(op, m))?;
                let s = format_date(ms, &fmt, z).or_else(|m| fail(op, m))?;
                Ok(Val::Own(Bson::String(s)))
            }
            DateOp::FromString {
                string,
                format,
                zone,
                on_error,
                on_null,
            } => {
                let op = "$dateFromString";
                let v = string.eval(cx)?;
                let s = match v.view() {
                    None | Some(ValRef::Null | ValRef::Undefined) => {
                        return match on_null {
                            Some(e) => e.eval(cx),
                            None => Ok(Val::NULL),
                        }
                    }
                    Some(ValRef::String(s)) => s.to_owned(),
                    Some(other) => {
                        let message = format!(
                            "$dateFromString requires 'dateString' to be a string, got {}",
                            show(Some(other))
                        );
                        return match on_error {
                            Some(e) => e.eval(cx),
                            None => fail(op, message),
                        };
                    }
                };
                let Some(fmt) = string_opt(op, "format", format, cx)? else {
                    return Ok(Val::NULL);
                };
                let Some(z) = zone_of(op, zone, cx)? else {
                    return Ok(Val::NULL);
                };
                if zone.is_some() && has_offset(&s, fmt.as_deref()) {
                    return fail(
                        op,
                        format!("'{s}' carries its own time zone offset; it cannot be combined with a timezone argument"),
                    );
                }
                match parse_date(&s, fmt.as_deref(), z) {
                    Ok(ms) => Ok(date_val(ms)),
                    Err(m) => match on_error {
                        Some(e) => e.eval(cx),
                        None => fail(op, m),
                    },
                }
            }
            DateOp::FromParts { parts, iso, zone } => {
                let op = "$dateFromParts";
                let mut vals = [0i64; 7];
                let names: &[&str; 7] = if *iso { &ISO } else { &CALENDAR };
                let defaults = [0, 1, 1, 0, 0, 0, 0];
                for (i, name) in names.iter().enumerate() {
                    vals[i] = defaults[i];
                    if let Some((_, e)) = parts.iter().find(|(n, _)| n == name) {
                        let v = e.eval(cx)?;
                        match whole(op, name, v.view())? {
                            Some(x) => vals[i] = x,
                            None => return Ok(Val::NULL),
                        }
                    }
                }
                let Some(z) = zone_of(op, zone, cx)? else {
                    return Ok(Val::NULL);
                };
                if !(1..=9999).contains(&vals[0]) {
                    return fail(
                        op,
                        format!("{op}: '{}' must be between 1 and 9999", names[0]),
                    );
                }
                for (i, name) in names.iter().enumerate().skip(1) {
                    if !(-32768..=32767).contains(&vals[i]) {
                        return fail(
                            op,
                            format!("{op}: '{name}' must be between -32768 and 32767"),
                        );
                    }
                }
                let out = || -> Result<i64, String> {
                    let base = if *iso {
                        let y = i32::try_from(vals[0]).map_err(|e| e.to_string())?;
                        let monday = Date::from_iso_week_date(y, 1, Weekday::Monday)
                            .map_err(|e| e.to_string())?;
                        epoch_days(monday) + (vals[1] - 1) * 7 + (vals[2] - 1)
                    } else {
                        let jan = Date::from_calendar_date(vals[0] as i32, Month::January, 1)
                            .map_err(|e| e.to_string())?;
                        let first = add_months(jan, vals[1] - 1)?;
                        epoch_days(first) + vals[2] - 1
                    };
                    let tod = ((vals[3] * 60 + vals[4]) * 60 + vals[5]) * 1000 + vals[6];
                    Ok(base * DAY_MS + tod - z.offset_ms())
                };
                out().map(date_val).or_else(|m| fail(op, m))
            }
            DateOp::ToParts { date, zone, iso } => {
                let op = "$dateToParts";
                let v = date.eval(cx)?;
                let Some(ms) = date_ms(op, v.view())? else {
                    return Ok(Val::NULL);
                };
                let Some(z) = zone_of(op, zone, cx)? else {
                    return Ok(Val::NULL);
                };
                let iso = match iso {
                    None => false,
                    Some(e) => {
                        let v = e.eval(cx)?;
                        match v.view() {
                            Some(ValRef::Boolean(b)) => b,
                            None | Some(ValRef::Null) => false,
                            Some(other) => {
                                return fail(
                                    op,
                                    format!(
                                        "{op}: iso8601 must be a boolean, got {}",
                                        show(Some(other))
                                    ),
                                )
                            }
                        }
                    }
                };
                let p = range(op, parts(ms, z))?;
                let mut d = Document::new();
                let order: &[(&str, Part)] = if iso {
                    &[
                        ("isoWeekYear", Part::IsoWeekYear),
                        ("isoWeek", Part::IsoWeek),
                        ("isoDayOfWeek", Part::IsoDayOfWeek),
                    ]
                } else {
                    &[
                        ("year", Part::Year),
                        ("month", Part::Month),
                        ("day", Part::DayOfMonth),
                    ]
                };
                for (k, part) in order.iter().chain(
                    [
                        ("hour", Part::Hour),
                        ("minute", Part::Minute),
                        ("second", Part::Second),
                        ("millisecond", Part::Millisecond),
                    ]
                    .iter(),
                ) {
                    d.insert(*k, int(part_value(*part, p)));
                }
                Ok(Val::Own(Bson::Document(d)))
            }
            DateOp::Add {
                start,
                unit,
                amount,
                zone,
                negate,
            } => {
                let op = if *negate { "$dateSubtract" } else { "$dateAdd" };
                let v = start.eval(cx)?;
                let Some(ms) = date_ms(op, v.view())? else {
                    return Ok(Val::NULL);
                };
                let Some(u) = unit_val(op, unit, cx)? else {
                    return Ok(Val::NULL);
                };
                let a = amount.eval(cx)?;
                let Some(mut n) = whole(op, "amount", a.view())? else {
                    return Ok(Val::NULL);
                };
                if *negate {
                    n = n.checked_neg().ok_or_else(|| super::ExprError {
                        operator: op,
                        message: "amount out of range".into(),
                    })?;
                }
                let Some(z) = zone_of(op, zone, cx)? else {
                    return Ok(Val::NULL);
                };
                let fixed = |unit_ms: i64| -> EResult<Val<'a>> {
                    n.checked_mul(unit_ms)
                        .and_then(|d| ms.checked_add(d))
                        .map(date_val)
                        .ok_or_else(|| super::ExprError {
                            operator: op,
                            message: "the resulting date is out of range".into(),
                        })
                };
                match u {
                    Unit::Millisecond => fixed(1),
                    Unit::Second => fixed(1000),
                    Unit::Minute => fixed(60_000),
                    Unit::Hour => fixed(3_600_000),
                    Unit::Day => fixed(DAY_MS),
                    Unit::Week => fixed(7 * DAY_MS),
                    Unit::Month | Unit::Quarter | Unit::Year => {
                        let months = match u {
                            Unit::Month => Some(n),
                            Unit::Quarter => n.checked_mul(3),
                            _ => n.checked_mul(12),
                        };
                        let p = range(op, parts(ms, z))?;
                        let moved = months
                            .ok_or_else(|| "amount out of range".to_string())
                            .and_then(|m| add_months(p.date, m));
                        match moved {
                            Ok(d) => Ok(date_val(to_ms(d, p.ms_of_day, z))),
                            Err(m) => fail(op, m),
                        }
                    }
                }
            }
            DateOp::Diff {
                start,
                end,
                unit,
                zone,
                start_of_week,
            } => {
                let op = "$dateDiff";
                let s = start.eval(cx)?;
                let Some(a) = date_ms(op, s.view())? else {
                    return Ok(Val::NULL);
                };
                let e = end.eval(cx)?;
                let Some(b) = date_ms(op, e.view())? else {
                    return Ok(Val::NULL);
                };
                let Some(u) = unit_val(op, unit, cx)? else {
                    return Ok(Val::NULL);
                };
                let Some(z) = zone_of(op, zone, cx)? else {
                    return Ok(Val::NULL);
                };
                let Some(wd) = week_start(op, start_of_week, cx)? else {
                    return Ok(Val::NULL);
                };
                let (pa, pb) = (range(op, parts(a, z))?, range(op, parts(b, z))?);
                let (la, lb) = (a + z.offset_ms(), b + z.offset_ms());
                let months =
                    |p: Parts| i64::from(p.date.year()) * 12 + i64::from(p.date.month() as u8) - 1;
                let diff = match u {
                    Unit::Year => i64::from(pb.date.year()) - i64::from(pa.date.year()),
                    Unit::Quarter => months(pb).div_euclid(3) - months(pa).div_euclid(3),
                    Unit::Month => months(pb) - months(pa),
                    Unit::Week => {
                        week_index(epoch_days(pb.date), wd) - week_index(epoch_days(pa.date), wd)
                    }
                    Unit::Day => epoch_days(pb.date) - epoch_days(pa.date),
                    Unit::Hour => lb.div_euclid(3_600_000) - la.div_euclid(3_600_000),
                    Unit::Minute => lb.div_euclid(60_000) - la.div_euclid(60_000),
                    Unit::Second => lb.div_euclid(1000) - la.div_euclid(1000),
                    Unit::Millisecond => b - a,
                };
                Ok(Val::Own(Bson::Int64(diff)))
            }
            DateOp::Trunc {
                date,
                unit,
                bin,
                zone,
                start_of_week,
            } => {
                let op = "$dateTrunc";
                let v = date.eval(cx)?;
                let Some(ms) = date_ms(op, v.view())? else {
                    return Ok(Val::NULL);
                };
                let Some(u) = unit_val(op, unit, cx)? else {
                    return Ok(Val::NULL);
                };
                let bin = match bin {
                    None => 1,
                    Some(e) => {
                        let b = e.eval(cx)?;
                        match whole(op, "binSize", b.view())? {
                            None => return Ok(Val::NULL),
                            Some(n) if n >= 1 => n,
                            Some(_) => {
                                return fail(op, "$dateTrunc: binSize must be a positive integer")
                            }
                        }
                    }
                };
                let Some(z) = zone_of(op, zone, cx)? else {
                    return Ok(Val::NULL);
                };
                let Some(wd) = week_start(op, start_of_week, cx)? else {
                    return Ok(Val::NULL);
                };
                trunc(ms, u, bin, z, wd)
                    .map(date_val)
                    .or_else(|m| fail(op, m))
            }
        }
    }
}

/// `$dateTrunc`: bins of `bin` units counted from 2000-01-01T00:00 local time
/// (for weeks: from the first `start` day on or after it), as MongoDB does.
fn trunc(ms: i64, u: Unit, bin: i64, z: Zone, start: Weekday) -> Result<i64, String> {
    let p = parts(ms, z)?;
    let reference = Date::from_calendar_date(2000, Month::January, 1).map_err(|e| e.to_string())?;
    match u {
        Unit::Year | Unit::Quarter | Unit::Month => {
            let per = match u {
                Unit::Year => 12,
                Unit::Quarter => 3,
                _ => 1,
            } * bin;
            let months =
                (i64::from(p.date.year()) - 2000) * 12 + i64::from(p.date.month() as u8) - 1;
            let floored = months.div_euclid(per) * per;
            let d = add_months(reference, floored)?;
            Ok(to_ms(d, 0, z))
        }
        Unit::Week => {
            let mut first = reference;
            while first.weekday() != start {
                first = first.next_day().ok_or("date out of range")?;
            }
            let days = epoch_days(p.date) - epoch_days(first);
            let per = 7 * bin;
            let floored = days.div_euclid(per) * per;
            Ok((epoch_days(first) + floored) * DAY_MS - z.offset_ms())
        }
        _ => {
            let unit_ms = match u {
                Unit::Day => DAY_MS,
                Unit::Hour => 3_600_000,
                Unit::Minute => 60_000,
                Unit::Second => 1000,
                _ => 1,
            };
            let per = unit_ms.checked_mul(bin).ok_or("binSize too large")?;
            let ref_local = epoch_days(reference) * DAY_MS;
            let local = ms + z.offset_ms();
            let floored = ref_local + (local - ref_local).div_euclid(per) * per;
            Ok(floored - z.offset_ms())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        parse_date(s, None, Zone::UTC).unwrap()
    }

    #[test]
    fn parses_and_formats_round_trip() {
        let t = ms("2014-01-01T08:15:39.736Z");
        assert_eq!(t, 1_388_564_139_736);
        assert_eq!(
            format_date(t, "%Y-%m-%dT%H:%M:%S.%LZ", Zone::UTC).unwrap(),
            "2014-01-01T08:15:39.736Z"
        );
        assert_eq!(ms("1970-01-01"), 0);
        assert_eq!(ms("1969-12-31T23:59:59.999Z"), -1);
        assert_eq!(
            ms("2017-02-08T12:10:40.787+0530"),
            ms("2017-02-08T06:40:40.787Z")
        );
        assert!(parse_date("2017-02-30", None, Zone::UTC).is_err());
        assert!(parse_date("yesterday", None, Zone::UTC).is_err());
        assert_eq!(
            parse_date("15-06-2018", Some("%d-%m-%Y"), Zone::UTC).unwrap(),
            ms("2018-06-15")
        );
    }

    #[test]
    fn zones_and_months() {
        assert_eq!(Zone::parse("+05:30").unwrap().minutes, 330);
        assert_eq!(Zone::parse("-0800").unwrap().minutes, -480);
        assert!(Zone::parse("Europe/Oslo")
            .unwrap_err()
            .contains("not supported"));
        let jan31 = Date::from_calendar_date(2021, Month::January, 31).unwrap();
        assert_eq!(add_months(jan31, 1).unwrap().day(), 28);
        assert_eq!(
            week_index(0, Weekday::Sunday),
            week_index(2, Weekday::Sunday)
        );
        assert_ne!(
            week_index(2, Weekday::Sunday),
            week_index(3, Weekday::Sunday)
        );
    }
}
