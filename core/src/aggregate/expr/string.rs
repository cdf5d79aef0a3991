//! Strings: `$concat $substr $substrBytes $substrCP $toLower $toUpper
//! $strLenBytes $strLenCP $split $trim $ltrim $rtrim $indexOfBytes $indexOfCP
//! $strcasecmp $regexMatch $regexFind $regexFindAll $replaceOne $replaceAll`.
//!
//! Null rules follow MongoDB per operator: `$concat`, `$split`, `$trim`,
//! `$indexOf*` and `$replace*` give null for a null or missing input; `$substr*`,
//! `$toLower`, `$toUpper` and `$strcasecmp` treat it as the empty string (and
//! render numbers and dates as strings); `$strLen*` require a string.
//! `$toLower`/`$toUpper` and `$strcasecmp` are defined for ASCII letters only.
//! Regular expressions use the `regex` crate's syntax (no look-around or
//! back-references) with the options `i m s x`.

use bson::{Bson, Document};
use serde_json::Value;

use super::convert::coerce_to_string;
use super::{
    fail, fixed, object_args, parse as parse_expr, ranged, Cx, EResult, Expr, PResult, Scope,
};
use crate::aggregate::value::{int, show, Val};
use crate::doc::{Num, ValRef};
use crate::query::filter::{compile_regex, RegexMatch};

/// A string operator.
#[derive(Debug, Clone)]
pub(crate) struct Str {
    op: Op,
    args: Vec<Expr>,
    /// `$regex*`: the pattern compiled at parse time when it is a constant.
    regex: Option<Box<RegexMatch>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Concat,
    SubstrBytes,
    SubstrCp,
    ToLower,
    ToUpper,
    StrLenBytes,
    StrLenCp,
    Split,
    Trim,
    Ltrim,
    Rtrim,
    IndexOfBytes,
    IndexOfCp,
    StrCaseCmp,
    RegexMatch,
    RegexFind,
    RegexFindAll,
    ReplaceOne,
    ReplaceAll,
}

fn name(op: Op) -> &'static str {
    match op {
        Op::Concat => "$concat",
        Op::SubstrBytes => "$substrBytes",
        Op::SubstrCp => "$substrCP",
        Op::ToLower => "$toLower",
        Op::ToUpper => "$toUpper",
        Op::StrLenBytes => "$strLenBytes",
        Op::StrLenCp => "$strLenCP",
        Op::Split => "$split",
        Op::Trim => "$trim",
        Op::Ltrim => "$ltrim",
        Op::Rtrim => "$rtrim",
        Op::IndexOfBytes => "$indexOfBytes",
        Op::IndexOfCp => "$indexOfCP",
        Op::StrCaseCmp => "$strcasecmp",
        Op::RegexMatch => "$regexMatch",
        Op::RegexFind => "$regexFind",
        Op::RegexFindAll => "$regexFindAll",
        Op::ReplaceOne => "$replaceOne",
        Op::ReplaceAll => "$replaceAll",
    }
}

/// Parses `name` if it is a string operator.
pub(crate) fn parse(n: &str, arg: &Value, scope: &mut Scope) -> Option<PResult<Expr>> {
    let op = match n {
        "$concat" => Op::Concat,
        "$substr" | "$substrBytes" => Op::SubstrBytes,
        "$substrCP" => Op::SubstrCp,
        "$toLower" => Op::ToLower,
        "$toUpper" => Op::ToUpper,
        "$strLenBytes" => Op::StrLenBytes,
        "$strLenCP" => Op::StrLenCp,
        "$split" => Op::Split,
        "$trim" => Op::Trim,
        "$ltrim" => Op::Ltrim,
        "$rtrim" => Op::Rtrim,
        "$indexOfBytes" => Op::IndexOfBytes,
        "$indexOfCP" => Op::IndexOfCp,
        "$strcasecmp" => Op::StrCaseCmp,
        "$regexMatch" => Op::RegexMatch,
        "$regexFind" => Op::RegexFind,
        "$regexFindAll" => Op::RegexFindAll,
        "$replaceOne" => Op::ReplaceOne,
        "$replaceAll" => Op::ReplaceAll,
        _ => return None,
    };
    Some(parse_op(op, n, arg, scope).map(|s| Expr::Str(Box::new(s))))
}

fn parse_op(op: Op, n: &str, arg: &Value, scope: &mut Scope) -> PResult<Str> {
    let mut regex = None;
    let args = match op {
        Op::Concat => ranged(n, arg, 0, usize::MAX, scope)?,
        Op::SubstrBytes | Op::SubstrCp => fixed(n, arg, 3, scope)?,
        Op::ToLower | Op::ToUpper | Op::StrLenBytes | Op::StrLenCp => fixed(n, arg, 1, scope)?,
        Op::Split | Op::StrCaseCmp => fixed(n, arg, 2, scope)?,
        Op::IndexOfBytes | Op::IndexOfCp => ranged(n, arg, 2, 4, scope)?,
        Op::Trim | Op::Ltrim | Op::Rtrim => {
            let m = object_args(n, arg, &["input", "chars"], &["input"])?;
            let mut a = vec![parse_expr(m["input"], scope)?];
            if let Some(c) = m.get("chars") {
                a.push(parse_expr(c, scope)?);
            }
            a
        }
        Op::RegexMatch | Op::RegexFind | Op::RegexFindAll => {
            let m = object_args(n, arg, &["input", "regex", "options"], &["input", "regex"])?;
            let input = parse_expr(m["input"], scope)?;
            let pattern = parse_expr(m["regex"], scope)?;
            let options = match m.get("options") {
                Some(o) => parse_expr(o, scope)?,
                None => Expr::Const(Bson::String(String::new())),
            };
            if let (Some(p), Some(o)) = (pattern.as_const(), options.as_const()) {
                regex = Some(Box::new(
                    regex_of(op, ValRef::from(p), ValRef::from(o))
                        .map_err(|e| e.message)?
                        .ok_or_else(|| format!("{n}: 'regex' cannot be null"))?,
                ));
            }
            vec![input, pattern, options]
        }
        Op::ReplaceOne | Op::ReplaceAll => {
            let m = object_args(
                n,
                arg,
                &["input", "find", "replacement"],
                &["input", "find", "replacement"],
            )?;
            vec![
                parse_expr(m["input"], scope)?,
                parse_expr(m["find"], scope)?,
                parse_expr(m["replacement"], scope)?,
            ]
        }
    };
    Ok(Str { op, args, regex })
}

/// Compiles a `$regex*` pattern (a string or a regex value) with options;
/// `None` when the pattern is null or missing.
fn regex_of(op: Op, pattern: ValRef<'_>, options: ValRef<'_>) -> EResult<Option<RegexMatch>> {
    let opts = match options {
        ValRef::String(s) => s.to_owned(),
        ValRef::Null | ValRef::Undefined => String::new(),
        other => {
            return fail(
                name(op),
                format!(
                    "{}: 'options' must be a string, got {}",
                    name(op),
                    show(Some(other))
                ),
            )
        }
    };
    let (p, o) = match pattern {
        ValRef::String(s) => (s.to_owned(), opts),
        ValRef::Regex { pattern, options } => {
            if !opts.is_empty() && !options.is_empty() {
                return fail(
                    name(op),
                    format!(
                        "{}: options given both in the regex and in 'options'",
                        name(op)
                    ),
                );
            }
            (
                pattern.to_owned(),
                if opts.is_empty() {
                    options.to_owned()
                } else {
                    opts
                },
            )
        }
        ValRef::Null | ValRef::Undefined => return Ok(None),
        other => {
            return fail(
                name(op),
                format!(
                    "{}: 'regex' must be a string or a regular expression, got {}",
                    name(op),
                    show(Some(other))
                ),
            )
        }
    };
    compile_regex(&p, &o)
        .map(Some)
        .map_err(|e| super::ExprError {
            operator: name(op),
            message: e.to_string(),
        })
}

fn string_arg<'v>(op: Op, what: &str, v: Option<ValRef<'v>>) -> EResult<Option<&'v str>> {
    match v {
        None | Some(ValRef::Null | ValRef::Undefined) => Ok(None),
        Some(ValRef::String(s) | ValRef::Symbol(s)) => Ok(Some(s)),
        Some(other) => fail(
            name(op),
            format!(
                "{} requires {what} to be a string, got {}",
                name(op),
                show(Some(other))
            ),
        ),
    }
}

fn int_arg(op: Op, what: &str, v: Option<ValRef<'_>>) -> EResult<i64> {
    match v {
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

fn s(v: String) -> Val<'static> {
    Val::Own(Bson::String(v))
}

/// MongoDB's default `$trim` characters: whitespace and the NUL byte.
fn default_trim(c: char) -> bool {
    c == '\0' || c.is_whitespace()
}

impl Str {
    pub(crate) fn eval<'a>(&'a self, cx: &mut Cx<'a>) -> EResult<Val<'a>> {
        let op = self.op;
        let mut vals = Vec::with_capacity(self.args.len());
        for a in &self.args {
            vals.push(a.eval(cx)?);
        }
        let v: Vec<Option<ValRef<'_>>> = vals.iter().map(Val::view).collect();
        match op {
            Op::Concat => {
                let mut out = String::new();
                for x in &v {
                    match string_arg(op, "its arguments", *x)? {
                        None => return Ok(Val::NULL),
                        Some(t) => out.push_str(t),
                    }
                }
                Ok(s(out))
            }
            Op::SubstrBytes => {
                let text = coerce_to_string(name(op), v[0])?;
                let start = int_arg(op, "the start index", v[1])?;
                let len = int_arg(op, "the length", v[2])?;
                if start < 0 || start as usize >= text.len() {
                    return Ok(s(String::new()));
                }
                let start = start as usize;
                let end = if len < 0 {
                    text.len()
                } else {
                    start.saturating_add(len as usize).min(text.len())
                };
                if !text.is_char_boundary(start) || !text.is_char_boundary(end) {
                    return fail(
                        "$substrBytes",
                        "invalid range: the start or end index is in the middle of a UTF-8 character",
                    );
                }
                Ok(s(text[start..end].to_owned()))
            }
            Op::SubstrCp => {
                let text = coerce_to_string(name(op), v[0])?;
                let start = int_arg(op, "the start index", v[1])?;
                let count = int_arg(op, "the count", v[2])?;
                if start < 0 || count < 0 {
                    return fail(
                        "$substrCP",
                        "$substrCP takes a non-negative start index and count",
                    );
                }
                Ok(s(text
                    .chars()
                    .skip(start as usize)
                    .take(count as usize)
                    .collect()))
            }
            Op::ToLower => Ok(s(coerce_to_string(name(op), v[0])?.to_ascii_lowercase())),
            Op::ToUpper => Ok(s(coerce_to_string(name(op), v[0])?.to_ascii_uppercase())),
            Op::StrLenBytes | Op::StrLenCp => match v[0] {
                Some(ValRef::String(t) | ValRef::Symbol(t)) => {
                    Ok(Val::Own(int(if op == Op::StrLenBytes {
                        t.len() as i64
                    } else {
                        t.chars().count() as i64
                    })))
                }
                other => fail(
                    name(op),
                    format!(
                        "{} requires a string argument, got {}",
                        name(op),
                        show(other)
                    ),
                ),
            },
            Op::Split => {
                let Some(text) = string_arg(op, "the string to split", v[0])? else {
                    return Ok(Val::NULL);
                };
                let Some(delim) = string_arg(op, "the delimiter", v[1])? else {
                    return Ok(Val::NULL);
                };
                if delim.is_empty() {
                    return fail("$split", "$split requires a non-empty delimiter");
                }
                Ok(Val::Own(Bson::Array(
                    text.split(delim)
                        .map(|p| Bson::String(p.to_owned()))
                        .collect(),
                )))
            }
            Op::Trim | Op::Ltrim | Op::Rtrim => {
                let Some(text) = string_arg(op, "'input'", v[0])? else {
                    return Ok(Val::NULL);
                };
                let chars: Option<Vec<char>> = match v.get(1) {
                    None => None,
                    Some(c) => match string_arg(op, "'chars'", *c)? {
                        None => return Ok(Val::NULL),
                        Some(c) => Some(c.chars().collect()),
                    },
                };
                let pred = |c: char| match &chars {
                    None => default_trim(c),
                    Some(set) => set.contains(&c),
                };
                let out = match op {
                    Op::Trim => text.trim_matches(pred),
                    Op::Ltrim => text.trim_start_matches(pred),
                    _ => text.trim_end_matches(pred),
                };
                Ok(s(out.to_owned()))
            }
            Op::IndexOfBytes | Op::IndexOfCp => {
                let Some(text) = string_arg(op, "the string to search", v[0])? else {
                    return Ok(Val::NULL);
                };
                let Some(needle) = string_arg(op, "the substring", v[1])? else {
                    return fail(
                        name(op),
                        format!(
                            "{} requires the substring to be a string, got null",
                            name(op)
                        ),
                    );
                };
                let bound = |i: usize, what: &str| -> EResult<Option<usize>> {
                    match v.get(i) {
                        None => Ok(None),
                        Some(x) => {
                            let n = int_arg(op, what, *x)?;
                            if n < 0 {
                                return fail(
                                    name(op),
                                    format!("{} requires {what} to be non-negative", name(op)),
                                );
                            }
                            Ok(Some(n as usize))
                        }
                    }
                };
                let start = bound(2, "the start index")?.unwrap_or(0);
                let end = bound(3, "the end index")?;
                let found = if op == Op::IndexOfBytes {
                    let end = end.unwrap_or(text.len()).min(text.len());
                    if start > end {
                        None
                    } else {
                        text.as_bytes()[start..end]
                            .windows(needle.len().max(1))
                            .position(|w| w == needle.as_bytes())
                            .map(|p| p + start)
                            .or_else(|| needle.is_empty().then_some(start))
                    }
                } else {
                    let cps: Vec<char> = text.chars().collect();
                    let nd: Vec<char> = needle.chars().collect();
                    let end = end.unwrap_or(cps.len()).min(cps.len());
                    if start > end {
                        None
                    } else if nd.is_empty() {
                        Some(start)
                    } else {
                        cps[start..end]
                            .windows(nd.len())
                            .position(|w| w == nd.as_slice())
                            .map(|p| p + start)
                    }
                };
                Ok(Val::Own(int(found.map_or(-1, |p| p as i64))))
            }
            Op::StrCaseCmp => {
                let a = coerce_to_string(name(op), v[0])?.to_ascii_lowercase();
                let b = coerce_to_string(name(op), v[1])?.to_ascii_lowercase();
                Ok(Val::Own(Bson::Int32(match a.cmp(&b) {
                    std::cmp::Ordering::Less => -1,
                    std::cmp::Ordering::Equal => 0,
                    std::cmp::Ordering::Greater => 1,
                })))
            }
            Op::RegexMatch | Op::RegexFind | Op::RegexFindAll => {
                let compiled;
                let re = match &self.regex {
                    Some(r) => &**r,
                    None => {
                        let pattern = v[1].unwrap_or(ValRef::Null);
                        let options = v[2].unwrap_or(ValRef::Null);
                        compiled = regex_of(op, pattern, options)?;
                        match &compiled {
                            Some(r) => r,
                            None => return Ok(none_found(op)),
                        }
                    }
                };
                let Some(text) = string_arg(op, "'input'", v[0])? else {
                    return Ok(none_found(op));
                };
                Ok(regex_result(op, &re.regex, text))
            }
            Op::ReplaceOne | Op::ReplaceAll => {
                let mut parts = Vec::with_capacity(3);
                for (i, what) in ["'input'", "'find'", "'replacement'"].iter().enumerate() {
                    match string_arg(op, what, v[i])? {
                        None => return Ok(Val::NULL),
                        Some(t) => parts.push(t),
                    }
                }
                let out = if op == Op::ReplaceOne {
                    parts[0].replacen(parts[1], parts[2], 1)
                } else if parts[1].is_empty() {
                    // Matches between every character, as MongoDB.
                    let mut out = String::from(parts[2]);
                    for c in parts[0].chars() {
                        out.push(c);
                        out.push_str(parts[2]);
                    }
                    out
                } else {
                    parts[0].replace(parts[1], parts[2])
                };
                Ok(s(out))
            }
        }
    }
}

fn none_found(op: Op) -> Val<'static> {
    match op {
        Op::RegexMatch => Val::Own(Bson::Boolean(false)),
        Op::RegexFind => Val::NULL,
        _ => Val::Own(Bson::Array(Vec::new())),
    }
}

fn match_doc(text: &str, caps: &regex::Captures<'_>) -> Bson {
    let whole = caps.get(0).map_or("", |m| m.as_str());
    let start = caps.get(0).map_or(0, |m| m.start());
    let idx = text[..start].chars().count() as i64;
    let captures: Vec<Bson> = caps
        .iter()
        .skip(1)
        .map(|c| c.map_or(Bson::Null, |m| Bson::String(m.as_str().to_owned())))
        .collect();
    let mut d = Document::new();
    d.insert("match", whole);
    d.insert("idx", int(idx));
    d.insert("captures", captures);
    Bson::Document(d)
}

fn regex_result(op: Op, re: &regex::Regex, text: &str) -> Val<'static> {
    match op {
        Op::RegexMatch => Val::Own(Bson::Boolean(re.is_match(text))),
        Op::RegexFind => match re.captures(text) {
            Some(c) => Val::Own(match_doc(text, &c)),
            None => Val::NULL,
        },
        _ => Val::Own(Bson::Array(
            re.captures_iter(text)
                .map(|c| match_doc(text, &c))
                .collect(),
        )),
    }
}
