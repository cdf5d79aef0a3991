//! Update documents (operators and replacements): parse and apply.
//!
//! An update is either a *replacement document* (no top-level `$` keys), which
//! replaces every field but the primary key, or an *operator document* such as
//! `{"$set": {"a.b": 1}, "$inc": {"n": 1}}`. All validation happens in
//! [`Update::parse`]; [`Update::apply`] only reports errors that depend on the
//! document being updated (type mismatches, integer overflow).
//!
//! Supported operators: `$set`, `$unset`, `$inc`, `$mul`, `$min`, `$max`,
//! `$rename`, `$currentDate`, `$setOnInsert`, `$push` (with `$each`,
//! `$position`, `$sort` and `$slice`), `$addToSet` (with `$each`), `$pop`,
//! `$pull` and `$pullAll`. Paths are dotted (`"a.b.0.c"`); missing intermediate
//! documents are created, numeric parts index into arrays. Positional
//! operators (`$`, `$[]`, `$[<identifier>]`) and `$bit` are not supported.
//!
//! Integer results are normalised: a result that fits 32 bits is stored as an
//! int32, otherwise as an int64 (or, when an operand was an unsigned 64-bit
//! value beyond `i64`, as an integral Decimal128); anything larger is an
//! [`Error::Overflow`]. Any double operand makes a double result.

use std::cmp::Ordering;

use bson::{Bson, Document};
use serde_json::Value;

use super::filter::{compile_regex, parse_elem_match, ElemMatch, Op};
use crate::doc::json::{
    bson_from_json, check_field_name, document_from_json, json_from_bson, json_type_name, Context,
};
use crate::doc::path::array_index;
use crate::doc::value::{decimal_from_i128, decimal_to_i128};
use crate::doc::{compare, values_equal, FieldPath, ValRef};
use crate::error::{Error, Result};

/// The operators accepted, in the order listed in error messages.
const OPERATORS: &[&str] = &[
    "$set",
    "$unset",
    "$inc",
    "$mul",
    "$min",
    "$max",
    "$rename",
    "$currentDate",
    "$setOnInsert",
    "$push",
    "$addToSet",
    "$pop",
    "$pull",
    "$pullAll",
];

/// The modifiers of `$push`.
const PUSH_MODIFIERS: &[&str] = &["$each", "$position", "$slice", "$sort"];

/// The most `null` elements added to reach an array index (MongoDB's limit).
const MAX_PADDING: usize = 1_500_000;

/// The primary-key field kept by replacements.
const ID_FIELD: &str = "_id";

/// A parsed update: a replacement document or a list of operators on paths.
#[derive(Debug, Clone)]
pub struct Update {
    kind: Kind,
}

/// What the update evaluation needs besides the document.
#[derive(Debug, Clone, Copy)]
pub struct ApplyContext {
    /// True when the update builds an upserted document: `$setOnInsert` applies.
    pub is_insert: bool,
    /// The time written by `$currentDate`.
    pub now: bson::DateTime,
}

#[derive(Debug, Clone)]
enum Kind {
    Replacement(Document),
    Operators(Vec<FieldOp>),
}

/// One operator applied at one path.
#[derive(Debug, Clone)]
struct FieldOp {
    path: FieldPath,
    action: Action,
}

#[derive(Debug, Clone)]
enum Action {
    Set(Bson),
    SetOnInsert(Bson),
    Unset,
    Inc(Arith),
    Mul(Arith),
    Min(Bson),
    Max(Bson),
    Rename(FieldPath),
    CurrentDate(DateKind),
    Push(Push),
    AddToSet(Vec<Bson>),
    Pop(PopEnd),
    Pull(PullCond),
    PullAll(Vec<Bson>),
}

impl Action {
    fn operator(&self) -> &'static str {
        match self {
            Action::Set(_) => "$set",
            Action::SetOnInsert(_) => "$setOnInsert",
            Action::Unset => "$unset",
            Action::Inc(_) => "$inc",
            Action::Mul(_) => "$mul",
            Action::Min(_) => "$min",
            Action::Max(_) => "$max",
            Action::Rename(_) => "$rename",
            Action::CurrentDate(_) => "$currentDate",
            Action::Push(_) => "$push",
            Action::AddToSet(_) => "$addToSet",
            Action::Pop(_) => "$pop",
            Action::Pull(_) => "$pull",
            Action::PullAll(_) => "$pullAll",
        }
    }
}

/// A number taking part in `$inc` / `$mul` arithmetic.
#[derive(Debug, Clone, Copy)]
enum Arith {
    Int(i128),
    Float(f64),
}

impl Arith {
    fn as_f64(self) -> f64 {
        match self {
            Arith::Int(i) => i as f64,
            Arith::Float(f) => f,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateKind {
    Date,
    Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PopEnd {
    First,
    Last,
}

#[derive(Debug, Clone)]
enum PullCond {
    /// Removes elements equal to the value.
    Equal(Bson),
    /// Removes elements satisfying the condition.
    Match(Box<ElemMatch>),
}

impl PullCond {
    fn matches(&self, element: &Bson) -> bool {
        match self {
            PullCond::Equal(v) => values_equal(&ValRef::from(element), &ValRef::from(v)),
            PullCond::Match(em) => em.matches_element(ValRef::from(element)),
        }
    }
}

#[derive(Debug, Clone)]
struct Push {
    each: Vec<Bson>,
    position: Option<i64>,
    sort: Option<PushSort>,
    slice: Option<i64>,
}

#[derive(Debug, Clone)]
enum PushSort {
    /// Whole elements; `true` = descending.
    Whole(bool),
    /// Element documents by fields; `true` = descending.
    Fields(Vec<(FieldPath, bool)>),
}

fn invalid(message: String) -> Error {
    Error::InvalidUpdate(message)
}

/// A short rendering of a JSON value for messages.
fn describe(v: &Value) -> String {
    format!("{} {}", json_type_name(v), truncate(v.to_string()))
}

fn truncate(mut s: String) -> String {
    if s.len() > 80 {
        let mut end = 77;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

/// A short rendering of a stored value for messages.
fn render(v: &Bson) -> String {
    truncate(json_from_bson(v).to_string())
}

fn render_array(a: &[Bson]) -> String {
    truncate(Value::Array(a.iter().map(json_from_bson).collect()).to_string())
}

/// MongoDB's name for the type of a value.
fn type_name(v: &Bson) -> &'static str {
    match v {
        Bson::Double(_) => "double",
        Bson::String(_) => "string",
        Bson::Array(_) => "array",
        Bson::Document(_) => "object",
        Bson::Boolean(_) => "bool",
        Bson::Null => "null",
        Bson::RegularExpression(_) => "regex",
        Bson::JavaScriptCode(_) | Bson::JavaScriptCodeWithScope(_) => "javascript",
        Bson::Int32(_) => "int",
        Bson::Int64(_) => "long",
        Bson::Timestamp(_) => "timestamp",
        Bson::Binary(_) => "binData",
        Bson::ObjectId(_) => "objectId",
        Bson::DateTime(_) => "date",
        Bson::Symbol(_) => "symbol",
        Bson::Decimal128(_) => "decimal",
        Bson::Undefined => "undefined",
        Bson::MaxKey => "maxKey",
        Bson::MinKey => "minKey",
        Bson::DbPointer(_) => "dbPointer",
    }
}

impl Update {
    /// Parses an update: either a replacement document (no top-level `$` keys) or an operator document.
    ///
    /// Every error is [`Error::InvalidUpdate`] (an invalid regular expression in a
    /// `$pull` condition is [`Error::InvalidRegex`]).
    pub fn parse(spec: &Value) -> Result<Update> {
        let Value::Object(map) = spec else {
            return Err(invalid(format!(
                "an update must be a JSON object: a replacement document such as {{\"name\": \"x\"}} \
                 or an operator document such as {{\"$set\": {{\"name\": \"x\"}}}}; got {}",
                describe(spec)
            )));
        };
        if map.is_empty() {
            return Err(invalid(
                "an update cannot be empty ({}); give a replacement document such as {\"name\": \"x\"} \
                 or operators such as {\"$set\": {\"name\": \"x\"}}"
                    .to_owned(),
            ));
        }
        let operator = map.keys().find(|k| k.starts_with('$'));
        let field = map.keys().find(|k| !k.starts_with('$'));
        match (operator, field) {
            (None, _) => Update::replacement_of(spec),
            (Some(op), Some(field)) => Err(invalid(format!(
                "an update cannot mix operators and field names at the top level (found operator '{op}' \
                 beside field '{field}'); use either a replacement document without '$' keys or only \
                 operators, such as {{\"$set\": {{\"{field}\": ...}}}}"
            ))),
            (Some(_), None) => {
                let mut ops = Vec::new();
                for (name, operand) in map {
                    parse_operator(name, operand, &mut ops)?;
                }
                check_conflicts(&ops)?;
                Ok(Update {
                    kind: Kind::Operators(ops),
                })
            }
        }
    }

    /// Builds a replacement update from a whole document (for `replace_one`).
    ///
    /// Unlike [`Update::parse`], the empty document `{}` is accepted (it replaces
    /// every field but the primary key). Top-level `$` keys are refused with a
    /// hint to use an operator update; other field names follow the stored-document
    /// rules. Every error is [`Error::InvalidUpdate`].
    pub fn replacement_of(doc: &Value) -> Result<Update> {
        let Value::Object(map) = doc else {
            return Err(invalid(format!(
                "a replacement must be a JSON object such as {{\"name\": \"x\"}}; got {}",
                describe(doc)
            )));
        };
        if let Some(op) = map.keys().find(|k| k.starts_with('$')) {
            return Err(invalid(format!(
                "a replacement document cannot contain update operators (found '{op}'); \
                 use update_one or update_many to apply operators"
            )));
        }
        let doc = document_from_json(doc).map_err(|e| match e {
            Error::InvalidDocument(m) => invalid(format!("replacement document: {m}")),
            other => other,
        })?;
        Ok(Update {
            kind: Kind::Replacement(doc),
        })
    }

    /// True when the update is a replacement document.
    pub fn is_replacement(&self) -> bool {
        matches!(self.kind, Kind::Replacement(_))
    }

    /// The replacement document, when the update is one.
    pub fn replacement(&self) -> Option<&Document> {
        match &self.kind {
            Kind::Replacement(d) => Some(d),
            Kind::Operators(_) => None,
        }
    }

    /// Applies the operators to `doc` in place. On Err, `doc` may be partially modified; the caller discards it.
    ///
    /// For a replacement, every field of `doc` is replaced by the replacement's
    /// fields; the original `_id` is kept (first) when the replacement has none.
    /// (Collections keyed by another field handle replacements themselves through
    /// [`Update::replacement`].)
    /// Operators are applied in the order they appear (their paths never overlap).
    pub fn apply(&self, doc: &mut Document, ctx: &ApplyContext) -> Result<()> {
        match &self.kind {
            Kind::Replacement(r) => {
                let mut out = Document::new();
                if !r.contains_key(ID_FIELD) {
                    if let Some(id) = doc.get(ID_FIELD) {
                        out.insert(ID_FIELD, id.clone());
                    }
                }
                for (k, v) in r {
                    out.insert(k.clone(), v.clone());
                }
                *doc = out;
                Ok(())
            }
            Kind::Operators(ops) => ops.iter().try_for_each(|op| op.apply(doc, ctx)),
        }
    }

    /// The dotted paths this update writes (for index maintenance and immutability checks), e.g. "a.b".
    ///
    /// Empty for replacements. `$rename` contributes its source and its target;
    /// `$setOnInsert` paths are included whether or not the update inserts.
    pub fn touched_paths(&self) -> Vec<&FieldPath> {
        match &self.kind {
            Kind::Replacement(_) => Vec::new(),
            Kind::Operators(ops) => {
                let mut out = Vec::with_capacity(ops.len());
                for op in ops {
                    out.push(&op.path);
                    if let Action::Rename(target) = &op.action {
                        out.push(target);
                    }
                }
                out
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

fn parse_operator(name: &str, operand: &Value, out: &mut Vec<FieldOp>) -> Result<()> {
    if !OPERATORS.contains(&name) {
        let hint = match name {
            "$bit" => " ($bit is not supported)",
            "$pushAll" => " ($pushAll was removed from MongoDB; use $push with $each)",
            _ => "",
        };
        return Err(invalid(format!(
            "unknown update operator '{name}'{hint}; the supported operators are {}",
            OPERATORS.join(", ")
        )));
    }
    let Value::Object(fields) = operand else {
        return Err(invalid(format!(
            "{name} takes an object mapping field paths to operands, such as {{\"{name}\": {{\"a.b\": ...}}}}; got {}",
            describe(operand)
        )));
    };
    for (dotted, v) in fields {
        let path = parse_path(name, dotted)?;
        let action = parse_action(name, &path, v)?;
        out.push(FieldOp { path, action });
    }
    Ok(())
}

/// Parses a path written by an update: no empty parts, no part starting with `$`.
fn parse_path(op: &str, dotted: &str) -> Result<FieldPath> {
    let path = FieldPath::parse(dotted).map_err(|m| invalid(format!("{op}: {m}")))?;
    for part in path.parts() {
        if part == "$" || part.starts_with("$[") {
            return Err(invalid(format!(
                "{op} '{dotted}': positional operators ($, $[] and $[<identifier>]) are not supported; \
                 address array elements by index (\"items.0.qty\") or use $push, $pull or $addToSet on the whole array"
            )));
        }
        if part.starts_with('$') {
            return Err(invalid(format!(
                "{op} '{dotted}': path part '{part}' starts with '$'; field names in stored documents cannot start with '$'"
            )));
        }
    }
    Ok(path)
}

fn parse_action(op: &str, path: &FieldPath, v: &Value) -> Result<Action> {
    Ok(match op {
        "$set" => Action::Set(stored_value(op, path.as_str(), v)?),
        "$setOnInsert" => Action::SetOnInsert(stored_value(op, path.as_str(), v)?),
        "$unset" => Action::Unset,
        "$inc" => Action::Inc(arith_operand(op, path, v)?),
        "$mul" => Action::Mul(arith_operand(op, path, v)?),
        "$min" => Action::Min(stored_value(op, path.as_str(), v)?),
        "$max" => Action::Max(stored_value(op, path.as_str(), v)?),
        "$rename" => match v {
            Value::String(target) => Action::Rename(parse_path(op, target)?),
            other => {
                return Err(invalid(format!(
                    "$rename '{path}' takes the new field path as a string, such as {{\"$rename\": {{\"{path}\": \"newName\"}}}}; got {}",
                    describe(other)
                )))
            }
        },
        "$currentDate" => Action::CurrentDate(parse_current_date(path, v)?),
        "$push" => Action::Push(parse_push(path, v)?),
        "$addToSet" => Action::AddToSet(parse_add_to_set(path, v)?),
        "$pop" => match sign(v) {
            Some(1) => Action::Pop(PopEnd::Last),
            Some(-1) => Action::Pop(PopEnd::First),
            _ => {
                return Err(invalid(format!(
                    "$pop '{path}' takes 1 (remove the last element) or -1 (remove the first element); got {}",
                    describe(v)
                )))
            }
        },
        "$pull" => Action::Pull(parse_pull(path, v)?),
        "$pullAll" => match v {
            Value::Array(items) => Action::PullAll(
                items
                    .iter()
                    .map(|x| operand_value(op, path.as_str(), x))
                    .collect::<Result<_>>()?,
            ),
            other => {
                return Err(invalid(format!(
                    "$pullAll '{path}' takes an array of the values to remove, such as {{\"$pullAll\": {{\"{path}\": [0, 5]}}}}; got {}",
                    describe(other)
                )))
            }
        },
        // parse_operator only passes known operators.
        other => {
            return Err(invalid(format!(
                "unknown update operator '{other}'; the supported operators are {}",
                OPERATORS.join(", ")
            )))
        }
    })
}

/// Converts an operand to BSON.
fn operand_value(op: &str, at: &str, v: &Value) -> Result<Bson> {
    bson_from_json(v, Context::Operand).map_err(|e| match e {
        Error::InvalidFilter(m) | Error::InvalidDocument(m) => invalid(format!("{op} '{at}': {m}")),
        other => other,
    })
}

/// Converts an operand that will be written into a document: embedded field
/// names must be legal in stored documents.
fn stored_value(op: &str, at: &str, v: &Value) -> Result<Bson> {
    let b = operand_value(op, at, v)?;
    check_stored(&b, at).map_err(|m| {
        invalid(format!(
            "{op} '{at}': the value would be stored in the document, but {m}"
        ))
    })?;
    Ok(b)
}

fn check_stored(b: &Bson, at: &str) -> std::result::Result<(), String> {
    match b {
        Bson::Document(d) => {
            for (k, v) in d {
                let here = format!("{at}.{k}");
                check_field_name(k, &here)?;
                check_stored(v, &here)?;
            }
        }
        Bson::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check_stored(v, &format!("{at}.{i}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Reads a stored number for arithmetic; `None` for anything else (including
/// Decimal128 values that are not integers written by collection-store).
fn arith_of(b: &Bson) -> Option<Arith> {
    match b {
        Bson::Int32(i) => Some(Arith::Int(i128::from(*i))),
        Bson::Int64(i) => Some(Arith::Int(i128::from(*i))),
        Bson::Double(f) => Some(Arith::Float(*f)),
        Bson::Decimal128(d) => decimal_to_i128(d).map(Arith::Int),
        _ => None,
    }
}

fn fits_i64(v: i128) -> bool {
    i64::try_from(v).is_ok()
}

fn fits_u64(v: i128) -> bool {
    u64::try_from(v).is_ok()
}

fn arith_operand(op: &str, path: &FieldPath, v: &Value) -> Result<Arith> {
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
fn sign(v: &Value) -> Option<i8> {
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
fn integer(v: &Value) -> Option<i64> {
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

fn parse_current_date(path: &FieldPath, v: &Value) -> Result<DateKind> {
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

fn parse_each(op: &str, path: &FieldPath, v: &Value) -> Result<Vec<Bson>> {
    match v {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, x)| stored_value(op, &format!("{path}.$each.{i}"), x))
            .collect(),
        other => Err(invalid(format!(
            "{op} '{path}': $each takes an array of values, such as {{\"$each\": [1, 2]}}; got {}",
            describe(other)
        ))),
    }
}

fn parse_push(path: &FieldPath, v: &Value) -> Result<Push> {
    let op = "$push";
    let modifiers = match v {
        Value::Object(m) if m.keys().any(|k| PUSH_MODIFIERS.contains(&k.as_str())) => m,
        _ => {
            return Ok(Push {
                each: vec![stored_value(op, path.as_str(), v)?],
                position: None,
                sort: None,
                slice: None,
            })
        }
    };
    if let Some(k) = modifiers
        .keys()
        .find(|k| !PUSH_MODIFIERS.contains(&k.as_str()))
    {
        return Err(invalid(format!(
            "$push '{path}': unrecognized field '{k}' beside the modifiers; the modifiers are $each, $position, $slice and $sort"
        )));
    }
    let Some(each) = modifiers.get("$each") else {
        return Err(invalid(format!(
            "$push '{path}': the modifiers $position, $slice and $sort require $each, such as \
             {{\"$push\": {{\"{path}\": {{\"$each\": [1], \"$slice\": -5}}}}}}"
        )));
    };
    let each = parse_each(op, path, each)?;
    let int_modifier = |name: &str| -> Result<Option<i64>> {
        match modifiers.get(name) {
            None => Ok(None),
            Some(x) => integer(x).map(Some).ok_or_else(|| {
                invalid(format!(
                    "$push '{path}': {name} takes an integer; got {}",
                    describe(x)
                ))
            }),
        }
    };
    let position = int_modifier("$position")?;
    let slice = int_modifier("$slice")?;
    let sort = modifiers
        .get("$sort")
        .map(|s| parse_push_sort(path, s))
        .transpose()?;
    Ok(Push {
        each,
        position,
        sort,
        slice,
    })
}

fn parse_push_sort(path: &FieldPath, v: &Value) -> Result<PushSort> {
    let bad = || {
        invalid(format!(
            "$push '{path}': $sort takes 1 (ascending), -1 (descending), or an object of field paths \
             to 1 or -1 such as {{\"score\": -1}} for arrays of documents; got {}",
            describe(v)
        ))
    };
    match v {
        Value::Number(_) => match sign(v) {
            Some(s) => Ok(PushSort::Whole(s < 0)),
            None => Err(bad()),
        },
        Value::Object(m) if !m.is_empty() => {
            let mut fields = Vec::with_capacity(m.len());
            for (k, dir) in m {
                let p = parse_path("$push $sort", k)?;
                let s = sign(dir).ok_or_else(bad)?;
                fields.push((p, s < 0));
            }
            Ok(PushSort::Fields(fields))
        }
        _ => Err(bad()),
    }
}

fn parse_add_to_set(path: &FieldPath, v: &Value) -> Result<Vec<Bson>> {
    let op = "$addToSet";
    if let Value::Object(m) = v {
        if let Some(each) = m.get("$each") {
            if let Some(k) = m.keys().find(|k| k.as_str() != "$each") {
                return Err(invalid(format!(
                    "$addToSet '{path}': found '{k}' beside $each; $addToSet accepts only the $each modifier"
                )));
            }
            return parse_each(op, path, each);
        }
    }
    Ok(vec![stored_value(op, path.as_str(), v)?])
}

fn parse_pull(path: &FieldPath, v: &Value) -> Result<PullCond> {
    let b = operand_value("$pull", path.as_str(), v)?;
    match b {
        Bson::Document(_) => match parse_elem_match(path.as_str(), v) {
            Ok(em) => Ok(PullCond::Match(Box::new(em))),
            Err(Error::InvalidFilter(m)) => {
                Err(invalid(format!("$pull condition for '{path}': {m}")))
            }
            Err(e) => Err(e),
        },
        // MongoDB treats a regular expression like a query: it removes matching strings.
        Bson::RegularExpression(r) => Ok(PullCond::Match(Box::new(ElemMatch::Value(vec![
            Op::Regex(Box::new(compile_regex(
                r.pattern.as_str(),
                r.options.as_str(),
            )?)),
        ])))),
        other => Ok(PullCond::Equal(other)),
    }
}

/// Rejects updates in which two paths are equal or one is a prefix of the other.
fn check_conflicts(ops: &[FieldOp]) -> Result<()> {
    let mut all: Vec<&FieldPath> = Vec::with_capacity(ops.len());
    for op in ops {
        all.push(&op.path);
        if let Action::Rename(target) = &op.action {
            if target == &op.path {
                return Err(invalid(format!(
                    "$rename: the source and target field must differ (both are '{target}')"
                )));
            }
            if target.overlaps(&op.path) {
                return Err(invalid(format!(
                    "$rename: the source '{}' and target '{target}' must not be on the same path",
                    op.path
                )));
            }
            all.push(target);
        }
    }
    // After sorting, any path that overlaps another also overlaps its successor.
    all.sort_by(|a, b| a.parts().cmp(b.parts()));
    for pair in all.windows(2) {
        if let [shorter, longer] = pair {
            if shorter.overlaps(longer) {
                return Err(invalid(format!(
                    "Updating the path '{longer}' would create a conflict at '{shorter}': \
                     an update may write each path once, and no written path may be a prefix of another"
                )));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Applying
// ---------------------------------------------------------------------------

/// The operator and path being applied, for error messages.
struct At<'p> {
    op: &'static str,
    path: &'p FieldPath,
}

impl At<'_> {
    fn mismatch(&self, message: String) -> Error {
        Error::TypeMismatch {
            operator: self.op.to_owned(),
            path: self.path.as_str().to_owned(),
            message,
        }
    }

    fn overflow(&self) -> Error {
        Error::Overflow {
            operator: self.op.to_owned(),
            path: self.path.as_str().to_owned(),
        }
    }

    /// The last part of the path.
    fn leaf(&self) -> &str {
        self.path.parts().last().map_or("", String::as_str)
    }

    /// The part naming the container of the leaf (empty at the top level).
    fn leaf_parent(&self) -> &str {
        let parts = self.path.parts();
        parts
            .len()
            .checked_sub(2)
            .and_then(|i| parts.get(i))
            .map_or("", String::as_str)
    }
}

/// The container holding the last part of a path.
enum Parent<'a> {
    Doc(&'a mut Document),
    Arr(&'a mut Vec<Bson>),
}

fn cannot_create(field: &str, parent_key: &str, element: &str) -> String {
    format!("Cannot create field '{field}' in element {{{parent_key}: {element}}}")
}

/// Grows `a` with nulls so that `index` is its length (the next push lands at `index`).
fn pad(a: &mut Vec<Bson>, index: usize, at: &At<'_>) -> Result<()> {
    let missing = index.saturating_sub(a.len());
    if missing > MAX_PADDING {
        return Err(at.mismatch(format!(
            "index {index} is {missing} elements past the end of the array; at most {MAX_PADDING} nulls may be added to reach an index"
        )));
    }
    if index > a.len() {
        a.resize(index, Bson::Null);
    }
    Ok(())
}

/// Walks to the container of the path's last part. With `create`, missing
/// intermediate documents are created (and arrays padded) and a scalar in the
/// way is an error; without it, `None` is returned instead. Unless
/// `through_arrays`, reaching into an array is an error.
fn find_parent<'a>(
    doc: &'a mut Document,
    at: &At<'_>,
    create: bool,
    through_arrays: bool,
) -> Result<Option<Parent<'a>>> {
    let parts = at.path.parts();
    let Some((_, inner)) = parts.split_last() else {
        return Ok(None);
    };
    let array_error = |key: &str| {
        at.mismatch(format!(
            "{} cannot move a field into or out of an array element ('{key}' is an array)",
            at.op
        ))
    };
    let mut cur = Parent::Doc(doc);
    let mut cur_key = "";
    for (i, part) in inner.iter().enumerate() {
        let next = parts.get(i + 1).map_or("", String::as_str);
        let child: &'a mut Bson = match cur {
            Parent::Doc(d) => {
                if !d.contains_key(part) {
                    if !create {
                        return Ok(None);
                    }
                    d.insert(part.clone(), Bson::Document(Document::new()));
                }
                match d.get_mut(part) {
                    Some(c) => c,
                    None => return Ok(None),
                }
            }
            Parent::Arr(a) => {
                if !through_arrays {
                    return Err(array_error(cur_key));
                }
                let Some(idx) = array_index(part) else {
                    if !create {
                        return Ok(None);
                    }
                    return Err(at.mismatch(cannot_create(part, cur_key, &render_array(a))));
                };
                if idx >= a.len() {
                    if !create {
                        return Ok(None);
                    }
                    pad(a, idx, at)?;
                    a.push(Bson::Document(Document::new()));
                }
                match a.get_mut(idx) {
                    Some(c) => c,
                    None => return Ok(None),
                }
            }
        };
        cur = match child {
            Bson::Document(d) => Parent::Doc(d),
            Bson::Array(a) => Parent::Arr(a),
            other => {
                if !create {
                    return Ok(None);
                }
                return Err(at.mismatch(cannot_create(next, part, &render(other))));
            }
        };
        cur_key = part;
    }
    if !through_arrays && matches!(cur, Parent::Arr(_)) {
        return Err(array_error(cur_key));
    }
    Ok(Some(cur))
}

fn leaf_mut<'a>(parent: &'a mut Parent<'_>, key: &str) -> Option<&'a mut Bson> {
    match parent {
        Parent::Doc(d) => d.get_mut(key),
        Parent::Arr(a) => array_index(key).and_then(|i| a.get_mut(i)),
    }
}

/// Stores `value` at `key` of the container (appending a new field to a
/// document; padding an array with nulls up to a numeric key).
fn put(parent: Parent<'_>, value: Bson, at: &At<'_>) -> Result<()> {
    let key = at.leaf();
    match parent {
        Parent::Doc(d) => {
            d.insert(key.to_owned(), value);
        }
        Parent::Arr(a) => {
            let Some(idx) = array_index(key) else {
                return Err(at.mismatch(cannot_create(key, at.leaf_parent(), &render_array(a))));
            };
            if let Some(slot) = a.get_mut(idx) {
                *slot = value;
            } else {
                pad(a, idx, at)?;
                a.push(value);
            }
        }
    }
    Ok(())
}

/// Calls `f` with the value at the path (`None` when missing; it may modify the
/// value in place) and stores the value `f` returns, if any. Without `create`,
/// a path that cannot be reached is a no-op and `f` is not called.
fn update_leaf(
    doc: &mut Document,
    at: &At<'_>,
    create: bool,
    f: impl FnOnce(Option<&mut Bson>) -> Result<Option<Bson>>,
) -> Result<()> {
    let Some(mut parent) = find_parent(doc, at, create, true)? else {
        return Ok(());
    };
    let new = match leaf_mut(&mut parent, at.leaf()) {
        Some(cur) => {
            if let Some(v) = f(Some(&mut *cur))? {
                *cur = v;
            }
            None
        }
        None => f(None)?,
    };
    match new {
        Some(v) => put(parent, v, at),
        None => Ok(()),
    }
}

fn not_array(v: &Bson) -> String {
    format!(
        "the field must be an array but is of type {} ({})",
        type_name(v),
        render(v)
    )
}

/// Stores an integer result: int32 when it fits, else int64, else (only when
/// an operand was beyond `i64`) an integral Decimal128 up to `u64::MAX`.
fn int_bson(v: i128, allow_big: bool) -> Option<Bson> {
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

fn arith_bson(n: Arith, at: &At<'_>) -> Result<Bson> {
    match n {
        Arith::Int(i) => int_bson(i, !fits_i64(i)).ok_or_else(|| at.overflow()),
        Arith::Float(f) => Ok(Bson::Double(f)),
    }
}

fn arithmetic(cur: &Bson, by: Arith, multiply: bool, at: &At<'_>) -> Result<Bson> {
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

fn current_date(kind: DateKind, now: bson::DateTime) -> Bson {
    match kind {
        DateKind::Date => Bson::DateTime(now),
        DateKind::Timestamp => {
            let secs = now.timestamp_millis().div_euclid(1000);
            let time = u32::try_from(secs.max(0)).unwrap_or(u32::MAX);
            Bson::Timestamp(bson::Timestamp { time, increment: 1 })
        }
    }
}

impl FieldOp {
    fn apply(&self, doc: &mut Document, ctx: &ApplyContext) -> Result<()> {
        let at = At {
            op: self.action.operator(),
            path: &self.path,
        };
        match &self.action {
            Action::Set(v) => update_leaf(doc, &at, true, |_| Ok(Some(v.clone()))),
            Action::SetOnInsert(v) => {
                if ctx.is_insert {
                    update_leaf(doc, &at, true, |_| Ok(Some(v.clone())))
                } else {
                    Ok(())
                }
            }
            Action::Unset => {
                match find_parent(doc, &at, false, true)? {
                    Some(Parent::Doc(d)) => {
                        d.remove(at.leaf());
                    }
                    Some(Parent::Arr(a)) => {
                        // MongoDB: $unset of an array element sets it to null.
                        if let Some(e) = array_index(at.leaf()).and_then(|i| a.get_mut(i)) {
                            *e = Bson::Null;
                        }
                    }
                    None => {}
                }
                Ok(())
            }
            Action::Inc(n) | Action::Mul(n) => {
                let multiply = matches!(self.action, Action::Mul(_));
                update_leaf(doc, &at, true, |cur| match cur {
                    Some(cur) => arithmetic(cur, *n, multiply, &at).map(Some),
                    None if multiply => Ok(Some(match n {
                        Arith::Int(_) => Bson::Int32(0),
                        Arith::Float(_) => Bson::Double(0.0),
                    })),
                    None => arith_bson(*n, &at).map(Some),
                })
            }
            Action::Min(v) | Action::Max(v) => {
                let replace_when = if matches!(self.action, Action::Min(_)) {
                    Ordering::Greater
                } else {
                    Ordering::Less
                };
                update_leaf(doc, &at, true, |cur| {
                    Ok(match cur {
                        Some(cur)
                            if compare(&ValRef::from(&*cur), &ValRef::from(v)) != replace_when =>
                        {
                            None
                        }
                        _ => Some(v.clone()),
                    })
                })
            }
            Action::CurrentDate(kind) => {
                update_leaf(doc, &at, true, |_| Ok(Some(current_date(*kind, ctx.now))))
            }
            Action::Rename(target) => {
                let value = match find_parent(doc, &at, false, false)? {
                    Some(Parent::Doc(d)) => d.remove(at.leaf()),
                    _ => None,
                };
                let Some(value) = value else {
                    return Ok(());
                };
                let to = At {
                    op: at.op,
                    path: target,
                };
                match find_parent(doc, &to, true, false)? {
                    Some(parent) => put(parent, value, &to),
                    None => Ok(()),
                }
            }
            Action::Push(push) => update_leaf(doc, &at, true, |cur| match cur {
                None => {
                    let mut items = Vec::new();
                    push.apply(&mut items);
                    Ok(Some(Bson::Array(items)))
                }
                Some(Bson::Array(items)) => {
                    push.apply(items);
                    Ok(None)
                }
                Some(other) => Err(at.mismatch(not_array(other))),
            }),
            Action::AddToSet(values) => update_leaf(doc, &at, true, |cur| match cur {
                None => {
                    let mut items = Vec::new();
                    add_to_set(&mut items, values);
                    Ok(Some(Bson::Array(items)))
                }
                Some(Bson::Array(items)) => {
                    add_to_set(items, values);
                    Ok(None)
                }
                Some(other) => Err(at.mismatch(not_array(other))),
            }),
            Action::Pop(end) => update_leaf(doc, &at, false, |cur| match cur {
                None => Ok(None),
                Some(Bson::Array(items)) => {
                    match end {
                        PopEnd::Last => {
                            items.pop();
                        }
                        PopEnd::First => {
                            if !items.is_empty() {
                                items.remove(0);
                            }
                        }
                    }
                    Ok(None)
                }
                Some(other) => Err(at.mismatch(not_array(other))),
            }),
            Action::Pull(cond) => update_leaf(doc, &at, false, |cur| match cur {
                None => Ok(None),
                Some(Bson::Array(items)) => {
                    items.retain(|e| !cond.matches(e));
                    Ok(None)
                }
                Some(other) => Err(at.mismatch(not_array(other))),
            }),
            Action::PullAll(values) => update_leaf(doc, &at, false, |cur| match cur {
                None => Ok(None),
                Some(Bson::Array(items)) => {
                    items.retain(|e| {
                        let e = ValRef::from(e);
                        !values.iter().any(|v| values_equal(&e, &ValRef::from(v)))
                    });
                    Ok(None)
                }
                Some(other) => Err(at.mismatch(not_array(other))),
            }),
        }
    }
}

fn add_to_set(items: &mut Vec<Bson>, values: &[Bson]) {
    for v in values {
        let candidate = ValRef::from(v);
        if !items
            .iter()
            .any(|e| values_equal(&ValRef::from(e), &candidate))
        {
            items.push(v.clone());
        }
    }
}

impl Push {
    fn apply(&self, items: &mut Vec<Bson>) {
        let len = items.len();
        let at = match self.position {
            None => len,
            Some(p) if p >= 0 => usize::try_from(p).unwrap_or(usize::MAX).min(len),
            Some(p) => len.saturating_sub(usize::try_from(p.unsigned_abs()).unwrap_or(usize::MAX)),
        };
        items.splice(at..at, self.each.iter().cloned());
        if let Some(sort) = &self.sort {
            sort.apply(items);
        }
        if let Some(n) = self.slice {
            let keep = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
            if n >= 0 {
                items.truncate(keep);
            } else if items.len() > keep {
                let drop = items.len() - keep;
                items.drain(..drop);
            }
        }
    }
}

/// The value at a sort path inside an array element (`null` when missing or
/// when the element is not a document).
fn sort_key<'a>(element: &'a Bson, path: &FieldPath) -> ValRef<'a> {
    let Bson::Document(_) = element else {
        return ValRef::Null;
    };
    let mut cur = element;
    for part in path.parts() {
        let next = match cur {
            Bson::Document(d) => d.get(part),
            Bson::Array(a) => array_index(part).and_then(|i| a.get(i)),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return ValRef::Null,
        }
    }
    ValRef::from(cur)
}

impl PushSort {
    fn compare(&self, x: &Bson, y: &Bson) -> Ordering {
        let directed = |o: Ordering, desc: bool| if desc { o.reverse() } else { o };
        match self {
            PushSort::Whole(desc) => directed(compare(&ValRef::from(x), &ValRef::from(y)), *desc),
            PushSort::Fields(fields) => {
                for (path, desc) in fields {
                    let o = directed(compare(&sort_key(x, path), &sort_key(y, path)), *desc);
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                Ordering::Equal
            }
        }
    }

    /// Stable sort. A merge sort on indices, so that no comparator can make it panic.
    fn apply(&self, items: &mut Vec<Bson>) {
        let mut order: Vec<usize> = (0..items.len()).collect();
        merge_sort(&mut order, &mut |a, b| match (items.get(a), items.get(b)) {
            (Some(x), Some(y)) => self.compare(x, y),
            _ => Ordering::Equal,
        });
        let mut slots: Vec<Option<Bson>> = items.drain(..).map(Some).collect();
        for i in order {
            if let Some(v) = slots.get_mut(i).and_then(Option::take) {
                items.push(v);
            }
        }
    }
}

/// A stable top-down merge sort of indices.
fn merge_sort(v: &mut Vec<usize>, cmp: &mut dyn FnMut(usize, usize) -> Ordering) {
    if v.len() <= 1 {
        return;
    }
    let mut right = v.split_off(v.len() / 2);
    merge_sort(v, cmp);
    merge_sort(&mut right, cmp);
    let left = std::mem::take(v);
    v.reserve(left.len() + right.len());
    let (mut l, mut r) = (left.into_iter().peekable(), right.into_iter().peekable());
    loop {
        let take_left = match (l.peek(), r.peek()) {
            (Some(&a), Some(&b)) => cmp(a, b) != Ordering::Greater,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_left { l.next() } else { r.next() };
        if let Some(x) = next {
            v.push(x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::json::json_from_doc;
    use crate::doc::DocRef;
    use serde_json::json;

    const NOW_MS: i64 = 1_700_000_000_123;

    fn ctx() -> ApplyContext {
        ApplyContext {
            is_insert: false,
            now: bson::DateTime::from_millis(NOW_MS),
        }
    }

    fn try_apply_with(update: Value, start: Value, c: &ApplyContext) -> Result<Document> {
        let u = Update::parse(&update)?;
        let mut d = document_from_json(&start).unwrap();
        u.apply(&mut d, c)?;
        Ok(d)
    }

    fn try_apply(update: Value, start: Value) -> Result<Document> {
        try_apply_with(update, start, &ctx())
    }

    fn apply(update: Value, start: Value) -> Document {
        try_apply(update, start).unwrap()
    }

    fn apply_json(update: Value, start: Value) -> Value {
        json_from_doc(DocRef::Owned(&apply(update, start)))
    }

    fn parse_err(update: Value) -> String {
        match Update::parse(&update) {
            Err(Error::InvalidUpdate(m)) => m,
            other => panic!("expected InvalidUpdate for {update}, got {other:?}"),
        }
    }

    fn mismatch(update: Value, start: Value) -> (String, String, String) {
        match try_apply(update.clone(), start) {
            Err(Error::TypeMismatch {
                operator,
                path,
                message,
            }) => (operator, path, message),
            other => panic!("expected TypeMismatch for {update}, got {other:?}"),
        }
    }

    fn overflow(update: Value, start: Value) -> (String, String) {
        match try_apply(update.clone(), start) {
            Err(Error::Overflow { operator, path }) => (operator, path),
            other => panic!("expected Overflow for {update}, got {other:?}"),
        }
    }

    // ---- parse errors --------------------------------------------------

    #[test]
    fn parse_rejects_non_objects() {
        for spec in [
            json!(1),
            json!("x"),
            json!([{"$set": {"a": 1}}]),
            json!(null),
        ] {
            let m = parse_err(spec);
            assert!(m.contains("must be a JSON object"), "{m}");
            assert!(m.contains("$set"), "{m}");
        }
    }

    #[test]
    fn parse_rejects_empty_update() {
        let m = parse_err(json!({}));
        assert!(m.contains("cannot be empty"), "{m}");
    }

    #[test]
    fn parse_rejects_mixed_operators_and_fields() {
        let m = parse_err(json!({"$set": {"a": 1}, "b": 2}));
        assert!(m.contains("cannot mix operators and field names"), "{m}");
        assert!(m.contains("'b'") && m.contains("'$set'"), "{m}");
    }

    #[test]
    fn parse_rejects_unknown_operators() {
        let m = parse_err(json!({"$frobnicate": {"a": 1}}));
        assert!(m.contains("unknown update operator '$frobnicate'"), "{m}");
        for op in OPERATORS {
            assert!(m.contains(op), "{m} should list {op}");
        }
        assert!(parse_err(json!({"$bit": {"a": {"and": 1}}})).contains("not supported"));
    }

    #[test]
    fn parse_rejects_non_object_operands() {
        for op in OPERATORS {
            let m = parse_err(json!({ *op: [1] }));
            assert!(m.contains("takes an object"), "{op}: {m}");
        }
    }

    #[test]
    fn empty_operand_is_a_no_op() {
        // MongoDB manual, $set: "Starting in MongoDB 5.0, mongod no longer raises an
        // error when you use an update operator like $set with an empty operand expression".
        assert_eq!(
            apply_json(json!({"$set": {}}), json!({"a": 1})),
            json!({"a": 1})
        );
    }

    #[test]
    fn parse_rejects_bad_inc_and_mul_operands() {
        for op in ["$inc", "$mul"] {
            for bad in [
                json!("1"),
                json!(null),
                json!(true),
                json!([1]),
                json!({"x": 1}),
            ] {
                let m = parse_err(json!({ op: {"a": bad} }));
                assert!(m.contains("takes a number"), "{op}: {m}");
            }
            let m = parse_err(json!({ op: {"a": {"$numberDecimal": "1.5"}} }));
            assert!(m.contains("takes a number"), "{m}");
        }
        // Extended JSON numbers are numbers.
        assert!(Update::parse(&json!({"$inc": {"a": {"$numberLong": "5"}}})).is_ok());
    }

    #[test]
    fn parse_rejects_bad_pop_operands() {
        for bad in [json!(0), json!(2), json!("1"), json!(null), json!(1.5)] {
            let m = parse_err(json!({"$pop": {"a": bad}}));
            assert!(m.contains("takes 1") && m.contains("-1"), "{m}");
        }
        assert!(Update::parse(&json!({"$pop": {"a": -1.0}})).is_ok());
    }

    #[test]
    fn parse_rejects_bad_current_date_operands() {
        for bad in [
            json!(false),
            json!(1),
            json!("date"),
            json!({"$type": "string"}),
            json!({"type": "date"}),
            json!({"$type": "date", "x": 1}),
        ] {
            let m = parse_err(json!({"$currentDate": {"a": bad}}));
            assert!(m.contains("takes true"), "{m}");
            assert!(m.contains("timestamp"), "{m}");
        }
    }

    #[test]
    fn parse_rejects_non_string_rename_targets() {
        let m = parse_err(json!({"$rename": {"a": 1}}));
        assert!(m.contains("as a string"), "{m}");
        let m = parse_err(json!({"$rename": {"a": "b..c"}}));
        assert!(m.contains("empty part"), "{m}");
        let m = parse_err(json!({"$rename": {"a": "$b"}}));
        assert!(m.contains("starts with '$'"), "{m}");
    }

    #[test]
    fn parse_rejects_bad_push_modifiers() {
        let cases = [
            (
                json!({"$each": [1], "$slice": 1.5}),
                "$slice takes an integer",
            ),
            (
                json!({"$each": [1], "$slice": "1"}),
                "$slice takes an integer",
            ),
            (
                json!({"$each": [1], "$position": "x"}),
                "$position takes an integer",
            ),
            (json!({"$each": [1], "$sort": 0}), "$sort takes 1"),
            (json!({"$each": [1], "$sort": "asc"}), "$sort takes 1"),
            (json!({"$each": [1], "$sort": {"a": 2}}), "$sort takes 1"),
            (json!({"$each": [1], "$sort": {}}), "$sort takes 1"),
            (json!({"$each": [1], "$sort": {"a..b": 1}}), "empty part"),
            (json!({"$each": [1], "$sort": {"$a": 1}}), "starts with '$'"),
            (json!({"$each": 1}), "$each takes an array"),
            (json!({"$slice": 1}), "require $each"),
            (json!({"$position": 0, "$sort": 1}), "require $each"),
            (
                json!({"$each": [1], "$bogus": 1}),
                "unrecognized field '$bogus'",
            ),
            (json!({"$each": [1], "x": 1}), "unrecognized field 'x'"),
        ];
        for (operand, want) in cases {
            let m = parse_err(json!({"$push": {"a": operand}}));
            assert!(m.contains(want), "{operand}: {m}");
        }
        // Integral doubles are integers.
        assert!(Update::parse(&json!({"$push": {"a": {"$each": [1], "$slice": -2.0}}})).is_ok());
    }

    #[test]
    fn parse_rejects_bad_add_to_set_and_pull_all_operands() {
        let m = parse_err(json!({"$addToSet": {"a": {"$each": 1}}}));
        assert!(m.contains("$each takes an array"), "{m}");
        let m = parse_err(json!({"$addToSet": {"a": {"$each": [1], "$slice": 1}}}));
        assert!(m.contains("only the $each modifier"), "{m}");
        let m = parse_err(json!({"$pullAll": {"a": 1}}));
        assert!(m.contains("takes an array"), "{m}");
    }

    #[test]
    fn parse_rejects_bad_pull_conditions() {
        let m = parse_err(json!({"$pull": {"a": {"$frob": 1}}}));
        assert!(m.contains("$pull condition for 'a'"), "{m}");
    }

    #[test]
    fn parse_rejects_invalid_paths() {
        for (path, want) in [
            ("", "cannot be empty"),
            ("a..b", "empty part"),
            (".a", "empty part"),
            ("a.", "empty part"),
            ("$foo", "starts with '$'"),
            ("a.$x", "starts with '$'"),
        ] {
            let m = parse_err(json!({"$set": {path: 1}}));
            assert!(m.contains(want), "{path}: {m}");
        }
        for path in ["a.$", "a.$[]", "a.$[elem].b", "$"] {
            let m = parse_err(json!({"$set": {path: 1}}));
            assert!(m.contains("positional operators"), "{path}: {m}");
            assert!(m.contains("not supported"), "{path}: {m}");
        }
    }

    #[test]
    fn parse_rejects_conflicting_paths() {
        let m = parse_err(json!({"$set": {"a": 1}, "$inc": {"a": 1}}));
        assert!(
            m.contains("Updating the path 'a' would create a conflict at 'a'"),
            "{m}"
        );
        let m = parse_err(json!({"$set": {"a.b": 1, "a": 2}}));
        assert!(
            m.contains("Updating the path 'a.b' would create a conflict at 'a'"),
            "{m}"
        );
        let m = parse_err(json!({"$unset": {"x.y.z": 1}, "$push": {"x.y": 1}}));
        assert!(m.contains("conflict at 'x.y'"), "{m}");
        // $rename's source and target both count.
        let m = parse_err(json!({"$rename": {"a": "b"}, "$set": {"b.c": 1}}));
        assert!(m.contains("conflict at 'b'"), "{m}");
        let m = parse_err(json!({"$rename": {"a.x": "b"}, "$set": {"a": 1}}));
        assert!(m.contains("conflict at 'a'"), "{m}");
        let m = parse_err(json!({"$rename": {"a": "a"}}));
        assert!(m.contains("must differ"), "{m}");
        let m = parse_err(json!({"$rename": {"a": "a.b"}}));
        assert!(m.contains("must not be on the same path"), "{m}");
        // Siblings and shared name prefixes do not conflict.
        assert!(Update::parse(
            &json!({"$set": {"a.b": 1, "a.c": 1, "ab": 1}, "$inc": {"a.bc": 1}})
        )
        .is_ok());
    }

    #[test]
    fn parse_rejects_values_with_illegal_stored_names() {
        let m = parse_err(json!({"$set": {"a": {"$x": 1}}}));
        assert!(m.contains("would be stored") && m.contains("'$x'"), "{m}");
        let m = parse_err(json!({"$set": {"a": [{"b.c": 1}]}}));
        assert!(m.contains("contains '.'"), "{m}");
        let m = parse_err(json!({"$setOnInsert": {"a": {"b": {"$y": 1}}}}));
        assert!(m.contains("'$y'"), "{m}");
        let m = parse_err(json!({"$push": {"a": {"$each": [{"$x": 1}]}}}));
        assert!(m.contains("'$x'"), "{m}");
        let m = parse_err(json!({"$addToSet": {"a": {"k.j": 1}}}));
        assert!(m.contains("contains '.'"), "{m}");
        let m = parse_err(json!({"$max": {"a": {"$x": 1}}}));
        assert!(m.contains("'$x'"), "{m}");
        // Extended JSON values are values, not field names.
        assert!(Update::parse(&json!({"$set": {"d": {"$date": "2024-01-31T12:00:00Z"}}})).is_ok());
    }

    #[test]
    fn replacement_documents() {
        let u = Update::parse(&json!({"name": "x", "n": 1})).unwrap();
        assert!(u.is_replacement());
        assert!(u.touched_paths().is_empty());
        assert_eq!(u.replacement().unwrap().get("n"), Some(&Bson::Int32(1)));
        // MongoDB manual, replaceOne: the replacement keeps the original _id.
        let mut d = document_from_json(&json!({"_id": 7, "old": true})).unwrap();
        u.apply(&mut d, &ctx()).unwrap();
        assert_eq!(
            json_from_doc(DocRef::Owned(&d)),
            json!({"_id": 7, "name": "x", "n": 1})
        );
        // Stored-document field-name rules apply.
        let m = parse_err(json!({"a": {"b.c": 1}}));
        assert!(
            m.contains("replacement document") && m.contains("contains '.'"),
            "{m}"
        );
        let ops = Update::parse(&json!({"$set": {"a": 1}})).unwrap();
        assert!(!ops.is_replacement());
        assert!(ops.replacement().is_none());
    }

    #[test]
    fn replacement_of_whole_documents() {
        let u = Update::replacement_of(&json!({})).unwrap();
        assert!(u.is_replacement());
        assert!(u.replacement().unwrap().is_empty());
        let u = Update::replacement_of(&json!({"a": {"b": [1]}})).unwrap();
        assert_eq!(
            json_from_doc(DocRef::Owned(u.replacement().unwrap())),
            json!({"a": {"b": [1]}})
        );
        let expect_invalid = |v: Value, want: &str| match Update::replacement_of(&v) {
            Err(Error::InvalidUpdate(m)) => assert!(m.contains(want), "{v}: {m}"),
            other => panic!("{v}: expected InvalidUpdate, got {other:?}"),
        };
        expect_invalid(json!({"$set": {"a": 1}}), "cannot contain update operators");
        expect_invalid(
            json!({"a": 1, "$inc": {"n": 1}}),
            "cannot contain update operators",
        );
        expect_invalid(json!([1]), "must be a JSON object");
        expect_invalid(json!({"a": {"$x": 1}}), "starts with '$'");
    }

    #[test]
    fn touched_paths_lists_written_paths() {
        let u = Update::parse(&json!({
            "$set": {"a.b": 1},
            "$rename": {"x": "y.z"},
            "$setOnInsert": {"c": 1}
        }))
        .unwrap();
        let paths: Vec<&str> = u.touched_paths().iter().map(|p| p.as_str()).collect();
        assert_eq!(paths, ["a.b", "x", "y.z", "c"]);
    }

    // ---- $set ------------------------------------------------------------

    #[test]
    fn set_top_level_and_in_place() {
        // MongoDB manual, $set: existing fields keep their position.
        let out = apply_json(json!({"$set": {"a": 5, "z": 1}}), json!({"a": 1, "b": 2}));
        assert_eq!(out, json!({"a": 5, "b": 2, "z": 1}));
        let keys: Vec<_> = out.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["a", "b", "z"]);
    }

    #[test]
    fn set_creates_intermediate_documents() {
        // MongoDB manual, $set: "If the field does not exist, $set will add a new field".
        let out = apply_json(json!({"$set": {"a.b.c": 1}}), json!({"a": {"x": 0}}));
        assert_eq!(out, json!({"a": {"x": 0, "b": {"c": 1}}}));
    }

    #[test]
    fn set_array_elements_and_padding() {
        // MongoDB manual, $set: "Set Elements in Arrays" with dot notation.
        assert_eq!(
            apply_json(json!({"$set": {"a.1": 9}}), json!({"a": [1, 2, 3]})),
            json!({"a": [1, 9, 3]})
        );
        assert_eq!(
            apply_json(json!({"$set": {"a.3": 9}}), json!({"a": [1]})),
            json!({"a": [1, null, null, 9]})
        );
        assert_eq!(
            apply_json(json!({"$set": {"a.2.b": 9}}), json!({"a": [{"b": 1}]})),
            json!({"a": [{"b": 1}, null, {"b": 9}]})
        );
        assert_eq!(
            apply_json(
                json!({"$set": {"a.0.b": 9}}),
                json!({"a": [{"b": 1, "c": 2}]})
            ),
            json!({"a": [{"b": 9, "c": 2}]})
        );
        // Numeric parts on documents are field names.
        assert_eq!(
            apply_json(json!({"$set": {"a.0": 9}}), json!({"a": {}})),
            json!({"a": {"0": 9}})
        );
    }

    #[test]
    fn set_refuses_huge_padding() {
        let (_, _, m) = mismatch(json!({"$set": {"a.99999999": 1}}), json!({"a": []}));
        assert!(m.contains("at most"), "{m}");
    }

    #[test]
    fn set_into_scalar_or_by_name_into_array_is_a_type_mismatch() {
        let (op, path, m) = mismatch(json!({"$set": {"a.b": 1}}), json!({"a": 1}));
        assert_eq!((op.as_str(), path.as_str()), ("$set", "a.b"));
        assert_eq!(m, "Cannot create field 'b' in element {a: 1}");
        let (_, _, m) = mismatch(json!({"$set": {"a.b.c": 1}}), json!({"a": {"b": null}}));
        assert_eq!(m, "Cannot create field 'c' in element {b: null}");
        let (_, _, m) = mismatch(json!({"$set": {"a.b": 1}}), json!({"a": [1, 2]}));
        assert_eq!(m, "Cannot create field 'b' in element {a: [1,2]}");
        let (_, _, m) = mismatch(json!({"$set": {"a.b.c": 1}}), json!({"a": [1, 2]}));
        assert_eq!(m, "Cannot create field 'b' in element {a: [1,2]}");
    }

    #[test]
    fn set_extended_json_values() {
        let d = apply(
            json!({"$set": {"d": {"$date": "2024-01-31T12:00:00Z"}}}),
            json!({}),
        );
        assert!(matches!(d.get("d"), Some(Bson::DateTime(_))));
    }

    // ---- $unset ----------------------------------------------------------

    #[test]
    fn unset_fields() {
        // MongoDB manual, $unset: "If the field does not exist, then $unset does nothing".
        assert_eq!(
            apply_json(
                json!({"$unset": {"a": "", "b.c": 1, "zz": 1}}),
                json!({"a": 1, "b": {"c": 2, "d": 3}})
            ),
            json!({"b": {"d": 3}})
        );
        assert_eq!(
            apply_json(json!({"$unset": {"a.b": ""}}), json!({"a": 5})),
            json!({"a": 5})
        );
        assert_eq!(
            apply_json(json!({"$unset": {"a.b": ""}}), json!({"a": [{"b": 1}]})),
            json!({"a": [{"b": 1}]})
        );
    }

    #[test]
    fn unset_array_element_sets_null() {
        // MongoDB manual, $unset: "If the field is an array element, $unset replaces it with null".
        assert_eq!(
            apply_json(json!({"$unset": {"a.1": ""}}), json!({"a": [1, 2, 3]})),
            json!({"a": [1, null, 3]})
        );
        assert_eq!(
            apply_json(json!({"$unset": {"a.7": ""}}), json!({"a": [1]})),
            json!({"a": [1]})
        );
        assert_eq!(
            apply_json(
                json!({"$unset": {"a.0.b": ""}}),
                json!({"a": [{"b": 1, "c": 2}]})
            ),
            json!({"a": [{"c": 2}]})
        );
    }

    // ---- $inc ------------------------------------------------------------

    #[test]
    fn inc_basic_missing_and_nested() {
        // MongoDB manual, $inc: "If the field does not exist, $inc creates the field
        // and sets the field to the specified value."
        let d = apply(
            json!({"$inc": {"a": 2, "b.c": -3, "n": 1}}),
            json!({"a": 5}),
        );
        assert_eq!(d.get("a"), Some(&Bson::Int32(7)));
        assert_eq!(
            json_from_doc(DocRef::Owned(&d)),
            json!({"a": 7, "b": {"c": -3}, "n": 1})
        );
        let d = apply(json!({"$inc": {"a.1": 10}}), json!({"a": [1, 2]}));
        assert_eq!(json_from_doc(DocRef::Owned(&d)), json!({"a": [1, 12]}));
    }

    #[test]
    fn inc_normalises_integer_results() {
        // Widening from int32 to int64 on overflow of 32 bits.
        let d = apply(json!({"$inc": {"a": 1}}), json!({"a": i32::MAX}));
        assert_eq!(d.get("a"), Some(&Bson::Int64(i64::from(i32::MAX) + 1)));
        // Narrowing back to int32 when the result fits.
        let d = apply(json!({"$inc": {"a": -1}}), json!({"a": 3_000_000_000i64}));
        assert_eq!(d.get("a"), Some(&Bson::Int64(2_999_999_999)));
        let d = apply(
            json!({"$inc": {"a": -2_999_999_999i64}}),
            json!({"a": 3_000_000_000i64}),
        );
        assert_eq!(d.get("a"), Some(&Bson::Int32(1)));
        let d = apply(json!({"$inc": {"a": {"$numberLong": "5"}}}), json!({}));
        assert_eq!(d.get("a"), Some(&Bson::Int32(5)));
    }

    #[test]
    fn inc_overflow() {
        let (op, path) = overflow(json!({"$inc": {"a.b": 1}}), json!({"a": {"b": i64::MAX}}));
        assert_eq!((op.as_str(), path.as_str()), ("$inc", "a.b"));
        overflow(json!({"$inc": {"a": i64::MIN}}), json!({"a": -1}));
    }

    #[test]
    fn inc_on_unsigned_64_bit_values() {
        // u64 values beyond i64 are stored as integral Decimal128 and stay exact.
        let d = apply(json!({"$inc": {"a": -1}}), json!({"a": u64::MAX}));
        assert_eq!(
            d.get("a"),
            Some(&Bson::Decimal128(decimal_from_i128(
                i128::from(u64::MAX) - 1
            )))
        );
        let d = apply(json!({"$inc": {"a": -1}}), json!({"a": 1u64 << 63}));
        assert_eq!(d.get("a"), Some(&Bson::Int64(i64::MAX)));
        let d = apply(json!({"$inc": {"a": u64::MAX}}), json!({"a": -5}));
        assert_eq!(
            d.get("a"),
            Some(&Bson::Decimal128(decimal_from_i128(
                i128::from(u64::MAX) - 5
            )))
        );
        let d = apply(json!({"$inc": {"a": u64::MAX}}), json!({}));
        assert_eq!(
            d.get("a"),
            Some(&Bson::Decimal128(decimal_from_i128(i128::from(u64::MAX))))
        );
        overflow(json!({"$inc": {"a": 1}}), json!({"a": u64::MAX}));
    }

    #[test]
    fn inc_with_doubles() {
        let d = apply(
            json!({"$inc": {"a": 0.5, "b": 1, "c": 1.5}}),
            json!({"a": 1, "b": 2.5}),
        );
        assert_eq!(d.get("a"), Some(&Bson::Double(1.5)));
        assert_eq!(d.get("b"), Some(&Bson::Double(3.5)));
        assert_eq!(d.get("c"), Some(&Bson::Double(1.5)));
        let d = apply(json!({"$inc": {"a": 1.0}}), json!({"a": 1}));
        assert_eq!(d.get("a"), Some(&Bson::Double(2.0)));
    }

    #[test]
    fn inc_non_numeric_field_is_a_type_mismatch() {
        // MongoDB manual, $inc: "Use of the $inc operator on a field with a null value
        // will generate an error."
        for start in [
            json!({"a": "x"}),
            json!({"a": null}),
            json!({"a": [1]}),
            json!({"a": {"b": 1}}),
        ] {
            let (op, path, m) = mismatch(json!({"$inc": {"a": 1}}), start);
            assert_eq!((op.as_str(), path.as_str()), ("$inc", "a"));
            assert!(m.contains("non-numeric type"), "{m}");
        }
        let (_, _, m) = mismatch(json!({"$inc": {"a.b": 1}}), json!({"a": "x"}));
        assert_eq!(m, "Cannot create field 'b' in element {a: \"x\"}");
    }

    // ---- $mul ------------------------------------------------------------

    #[test]
    fn mul_basic_and_missing() {
        // MongoDB manual, $mul: "If the field does not exist in a document, $mul creates
        // the field and sets the value to zero of the same numeric type as the multiplier."
        let d = apply(json!({"$mul": {"a": 3, "m": 5, "f": 2.5}}), json!({"a": 4}));
        assert_eq!(d.get("a"), Some(&Bson::Int32(12)));
        assert_eq!(d.get("m"), Some(&Bson::Int32(0)));
        assert_eq!(d.get("f"), Some(&Bson::Double(0.0)));
    }

    #[test]
    fn mul_mixed_types_normalisation_and_overflow() {
        // MongoDB manual, $mul: "Multiply Mixed Numeric Types".
        let d = apply(json!({"$mul": {"a": 1.5}}), json!({"a": 4}));
        assert_eq!(d.get("a"), Some(&Bson::Double(6.0)));
        let d = apply(json!({"$mul": {"a": 2}}), json!({"a": 2_000_000_000}));
        assert_eq!(d.get("a"), Some(&Bson::Int64(4_000_000_000)));
        let d = apply(json!({"$mul": {"a": 0}}), json!({"a": 4_000_000_000i64}));
        assert_eq!(d.get("a"), Some(&Bson::Int32(0)));
        let (op, _) = overflow(json!({"$mul": {"a": 2}}), json!({"a": i64::MAX}));
        assert_eq!(op, "$mul");
        let (_, _, m) = mismatch(json!({"$mul": {"a": 2}}), json!({"a": true}));
        assert!(m.contains("non-numeric type bool"), "{m}");
    }

    // ---- $min / $max -------------------------------------------------------

    #[test]
    fn min_and_max() {
        // MongoDB manual, $min: "updates the value of the field to a specified value if the
        // specified value is less than the current value of the field".
        let d = apply(
            json!({"$min": {"a": 3, "b": 30}, "$max": {"c": 3, "e": 30}}),
            json!({"a": 10, "b": 10, "c": 10, "e": 10}),
        );
        assert_eq!(
            json_from_doc(DocRef::Owned(&d)),
            json!({"a": 3, "b": 10, "c": 10, "e": 30})
        );
        // Missing fields are set to the operand.
        assert_eq!(
            apply_json(json!({"$min": {"x.y": 1}}), json!({})),
            json!({"x": {"y": 1}})
        );
        assert_eq!(
            apply_json(json!({"$max": {"x": 1}}), json!({})),
            json!({"x": 1})
        );
        // MongoDB manual, $min: "the comparison uses the BSON comparison order" (numbers < strings).
        assert_eq!(
            apply_json(json!({"$min": {"a": 5}}), json!({"a": "x"})),
            json!({"a": 5})
        );
        assert_eq!(
            apply_json(json!({"$max": {"a": 5}}), json!({"a": "x"})),
            json!({"a": "x"})
        );
        assert_eq!(
            apply_json(json!({"$min": {"a": null}}), json!({"a": 1})),
            json!({"a": null})
        );
        // Equal values keep the stored type.
        let d = apply(json!({"$min": {"a": 5.0}}), json!({"a": 5}));
        assert_eq!(d.get("a"), Some(&Bson::Int32(5)));
    }

    #[test]
    fn min_into_scalar_is_a_type_mismatch() {
        let (op, _, m) = mismatch(json!({"$min": {"a.b": 1}}), json!({"a": 1}));
        assert_eq!(op, "$min");
        assert!(m.contains("Cannot create field 'b'"), "{m}");
    }

    // ---- $rename ---------------------------------------------------------

    #[test]
    fn rename_fields() {
        // MongoDB manual, $rename.
        assert_eq!(
            apply_json(json!({"$rename": {"a": "b"}}), json!({"a": 1, "c": 2})),
            json!({"c": 2, "b": 1})
        );
        // "Rename a Field in an Embedded Document" and creating the target's parents.
        assert_eq!(
            apply_json(
                json!({"$rename": {"n.first": "x.y.fname"}}),
                json!({"n": {"first": "a", "last": "b"}})
            ),
            json!({"n": {"last": "b"}, "x": {"y": {"fname": "a"}}})
        );
        // "If the document already has a field with the <newName>, $rename removes that field".
        assert_eq!(
            apply_json(json!({"$rename": {"a": "b"}}), json!({"a": 1, "b": 2})),
            json!({"b": 1})
        );
        // "Rename a Field That Does Not Exist": no-op.
        assert_eq!(
            apply_json(json!({"$rename": {"q": "r"}}), json!({"a": 1})),
            json!({"a": 1})
        );
        assert_eq!(
            apply_json(json!({"$rename": {"q.w": "r"}}), json!({"q": 1})),
            json!({"q": 1})
        );
    }

    #[test]
    fn rename_through_arrays_is_a_type_mismatch() {
        // MongoDB manual, $rename: "$rename does not work on embedded documents in arrays".
        let (op, path, m) = mismatch(json!({"$rename": {"a.0": "b"}}), json!({"a": [1]}));
        assert_eq!((op.as_str(), path.as_str()), ("$rename", "a.0"));
        assert!(m.contains("array"), "{m}");
        mismatch(json!({"$rename": {"a.b": "c"}}), json!({"a": [{"b": 1}]}));
        let (_, path, _) = mismatch(json!({"$rename": {"x": "a.0"}}), json!({"x": 1, "a": [1]}));
        assert_eq!(path, "a.0");
        let (_, path, m) = mismatch(json!({"$rename": {"x": "a.b"}}), json!({"x": 1, "a": 5}));
        assert_eq!(path, "a.b");
        assert_eq!(m, "Cannot create field 'b' in element {a: 5}");
        // Renaming a whole array field is fine.
        assert_eq!(
            apply_json(json!({"$rename": {"a": "b"}}), json!({"a": [1]})),
            json!({"b": [1]})
        );
    }

    // ---- $currentDate ------------------------------------------------------

    #[test]
    fn current_date() {
        // MongoDB manual, $currentDate.
        let d = apply(
            json!({"$currentDate": {"d": true, "e": {"$type": "date"}, "t": {"$type": "timestamp"}, "x.y": true}}),
            json!({"d": 1}),
        );
        let now = bson::DateTime::from_millis(NOW_MS);
        assert_eq!(d.get("d"), Some(&Bson::DateTime(now)));
        assert_eq!(d.get("e"), Some(&Bson::DateTime(now)));
        assert_eq!(
            d.get("t"),
            Some(&Bson::Timestamp(bson::Timestamp {
                time: 1_700_000_000,
                increment: 1
            }))
        );
        assert_eq!(
            d.get_document("x").unwrap().get("y"),
            Some(&Bson::DateTime(now))
        );
    }

    // ---- $setOnInsert ------------------------------------------------------

    #[test]
    fn set_on_insert_only_when_inserting() {
        // MongoDB manual, $setOnInsert: "If an update operation with upsert: true results in an
        // insert of a document, then $setOnInsert assigns the specified values ... If the
        // update operation does not result in an insert, $setOnInsert does nothing."
        let spec = json!({"$set": {"a": 1}, "$setOnInsert": {"b.c": 2}});
        let inserting = ApplyContext {
            is_insert: true,
            now: bson::DateTime::from_millis(0),
        };
        let d = try_apply_with(spec.clone(), json!({}), &inserting).unwrap();
        assert_eq!(
            json_from_doc(DocRef::Owned(&d)),
            json!({"a": 1, "b": {"c": 2}})
        );
        assert_eq!(apply_json(spec, json!({})), json!({"a": 1}));
    }

    // ---- $push -------------------------------------------------------------

    #[test]
    fn push_appends_and_creates() {
        // MongoDB manual, $push: "If the field is absent in the document to update, $push adds
        // the array field with the value as its element."
        assert_eq!(
            apply_json(json!({"$push": {"a": 3}}), json!({"a": [1, 2]})),
            json!({"a": [1, 2, 3]})
        );
        assert_eq!(
            apply_json(json!({"$push": {"a.b": 1}}), json!({})),
            json!({"a": {"b": [1]}})
        );
        // "If the value is an array, $push appends the whole array as a single element."
        assert_eq!(
            apply_json(json!({"$push": {"a": [1, 2]}}), json!({"a": []})),
            json!({"a": [[1, 2]]})
        );
        assert_eq!(
            apply_json(json!({"$push": {"a.0": 1}}), json!({"a": [[0]]})),
            json!({"a": [[0, 1]]})
        );
    }

    #[test]
    fn push_on_non_array_is_a_type_mismatch() {
        // MongoDB manual, $push: "If the field is not an array, the operation will fail."
        let (op, path, m) = mismatch(json!({"$push": {"a": 1}}), json!({"a": 5}));
        assert_eq!((op.as_str(), path.as_str()), ("$push", "a"));
        assert!(m.contains("must be an array but is of type int"), "{m}");
    }

    #[test]
    fn push_each() {
        // MongoDB manual, $push: $each.
        assert_eq!(
            apply_json(
                json!({"$push": {"a": {"$each": [3, 4]}}}),
                json!({"a": [1]})
            ),
            json!({"a": [1, 3, 4]})
        );
        assert_eq!(
            apply_json(json!({"$push": {"a": {"$each": []}}}), json!({})),
            json!({"a": []})
        );
    }

    #[test]
    fn push_position() {
        // MongoDB manual, $push: $position.
        let start = json!({"a": [10, 20, 30]});
        let push = |pos: Value| json!({"$push": {"a": {"$each": [1, 2], "$position": pos}}});
        assert_eq!(
            apply_json(push(json!(0)), start.clone()),
            json!({"a": [1, 2, 10, 20, 30]})
        );
        assert_eq!(
            apply_json(push(json!(1)), start.clone()),
            json!({"a": [10, 1, 2, 20, 30]})
        );
        assert_eq!(
            apply_json(push(json!(99)), start.clone()),
            json!({"a": [10, 20, 30, 1, 2]})
        );
        // "$position: -1 ... inserts before the last element".
        assert_eq!(
            apply_json(push(json!(-1)), start.clone()),
            json!({"a": [10, 20, 1, 2, 30]})
        );
        assert_eq!(
            apply_json(push(json!(-99)), start.clone()),
            json!({"a": [1, 2, 10, 20, 30]})
        );
        assert_eq!(
            apply_json(push(json!(i64::MIN)), start),
            json!({"a": [1, 2, 10, 20, 30]})
        );
    }

    #[test]
    fn push_sort_whole_elements() {
        // MongoDB manual, $push: $sort "Sort Array Elements That Are Not Documents".
        assert_eq!(
            apply_json(
                json!({"$push": {"a": {"$each": [40, 60], "$sort": 1}}}),
                json!({"a": [89, 70, 100, 20]})
            ),
            json!({"a": [20, 40, 60, 70, 89, 100]})
        );
        assert_eq!(
            apply_json(
                json!({"$push": {"a": {"$each": [], "$sort": -1}}}),
                json!({"a": [2, "x", 3.5, null]})
            ),
            json!({"a": ["x", 3.5, 2, null]})
        );
    }

    #[test]
    fn push_sort_by_fields() {
        // MongoDB manual, $push: $sort "Sort Array of Documents by a Field in the Documents".
        let out = apply_json(
            json!({"$push": {"quizzes": {"$each": [{"id": 3, "score": 8}, {"id": 4, "score": 7}, {"id": 5, "score": 6}], "$sort": {"score": 1}}}}),
            json!({"quizzes": [{"id": 1, "score": 6}, {"id": 2, "score": 9}]}),
        );
        assert_eq!(
            out,
            json!({"quizzes": [{"id": 1, "score": 6}, {"id": 5, "score": 6}, {"id": 4, "score": 7}, {"id": 3, "score": 8}, {"id": 2, "score": 9}]})
        );
        // Dotted sort fields, descending, ties broken by the next field; missing = null.
        let out = apply_json(
            json!({"$push": {"a": {"$each": [], "$sort": {"k.v": -1, "n": 1}}}}),
            json!({"a": [{"n": 2, "k": {"v": 1}}, {"n": 1}, 7, {"n": 1, "k": {"v": 1}}, {"n": 0, "k": {"v": 5}}]}),
        );
        assert_eq!(
            out,
            json!({"a": [{"n": 0, "k": {"v": 5}}, {"n": 1, "k": {"v": 1}}, {"n": 2, "k": {"v": 1}}, 7, {"n": 1}]})
        );
    }

    #[test]
    fn push_slice() {
        // MongoDB manual, $push: $slice.
        let push = |n: i64| json!({"$push": {"a": {"$each": [80, 78, 86], "$slice": n}}});
        let start = json!({"a": [40, 50, 60]});
        assert_eq!(
            apply_json(push(-5), start.clone()),
            json!({"a": [50, 60, 80, 78, 86]})
        );
        assert_eq!(
            apply_json(push(3), start.clone()),
            json!({"a": [40, 50, 60]})
        );
        assert_eq!(apply_json(push(0), start.clone()), json!({"a": []}));
        assert_eq!(
            apply_json(push(100), start.clone()),
            json!({"a": [40, 50, 60, 80, 78, 86]})
        );
        assert_eq!(
            apply_json(push(i64::MIN), start.clone()),
            json!({"a": [40, 50, 60, 80, 78, 86]})
        );
        // "Use $slice with $each: [] to only slice the existing array."
        assert_eq!(
            apply_json(json!({"$push": {"a": {"$each": [], "$slice": 1}}}), start),
            json!({"a": [40]})
        );
    }

    #[test]
    fn push_all_modifiers_together() {
        // MongoDB manual, $push: "Use $push Operator with Multiple Modifiers".
        let out = apply_json(
            json!({"$push": {"quizzes": {
                "$each": [{"wk": 5, "score": 8}, {"wk": 6, "score": 7}, {"wk": 7, "score": 6}],
                "$sort": {"score": -1},
                "$slice": 3
            }}}),
            json!({"quizzes": [{"wk": 1, "score": 10}, {"wk": 2, "score": 8}, {"wk": 3, "score": 5}, {"wk": 4, "score": 6}]}),
        );
        assert_eq!(
            out,
            json!({"quizzes": [{"wk": 1, "score": 10}, {"wk": 2, "score": 8}, {"wk": 5, "score": 8}]})
        );
        // $position applies before $sort and $slice.
        let out = apply_json(
            json!({"$push": {"a": {"$each": [0], "$position": 0, "$slice": 2}}}),
            json!({"a": [5, 6, 7]}),
        );
        assert_eq!(out, json!({"a": [0, 5]}));
    }

    // ---- $addToSet ---------------------------------------------------------

    #[test]
    fn add_to_set() {
        // MongoDB manual, $addToSet.
        assert_eq!(
            apply_json(json!({"$addToSet": {"a": 2}}), json!({"a": [1, 2]})),
            json!({"a": [1, 2]})
        );
        assert_eq!(
            apply_json(json!({"$addToSet": {"a": 3}}), json!({"a": [1, 2]})),
            json!({"a": [1, 2, 3]})
        );
        // Equality is by value across numeric types, and whole for arrays and documents.
        assert_eq!(
            apply_json(json!({"$addToSet": {"a": 2.0}}), json!({"a": [1, 2]})),
            json!({"a": [1, 2]})
        );
        assert_eq!(
            apply_json(json!({"$addToSet": {"a": [1]}}), json!({"a": [1]})),
            json!({"a": [1, [1]]})
        );
        assert_eq!(
            apply_json(
                json!({"$addToSet": {"a": {"x": 1, "y": 2}}}),
                json!({"a": [{"x": 1, "y": 2}, {"y": 2, "x": 1}]})
            ),
            json!({"a": [{"x": 1, "y": 2}, {"y": 2, "x": 1}]})
        );
        // "If the field is absent ... $addToSet creates the array field".
        assert_eq!(
            apply_json(json!({"$addToSet": {"a.b": 1}}), json!({})),
            json!({"a": {"b": [1]}})
        );
    }

    #[test]
    fn add_to_set_each() {
        // MongoDB manual, $addToSet: $each.
        assert_eq!(
            apply_json(
                json!({"$addToSet": {"a": {"$each": [3, 1, 4, 4]}}}),
                json!({"a": [1, 2]})
            ),
            json!({"a": [1, 2, 3, 4]})
        );
        assert_eq!(
            apply_json(json!({"$addToSet": {"a": {"$each": [5, 5]}}}), json!({})),
            json!({"a": [5]})
        );
    }

    #[test]
    fn add_to_set_on_non_array_is_a_type_mismatch() {
        let (op, _, m) = mismatch(json!({"$addToSet": {"a": 1}}), json!({"a": "x"}));
        assert_eq!(op, "$addToSet");
        assert!(m.contains("must be an array but is of type string"), "{m}");
    }

    // ---- $pop --------------------------------------------------------------

    #[test]
    fn pop() {
        // MongoDB manual, $pop.
        assert_eq!(
            apply_json(json!({"$pop": {"a": 1}}), json!({"a": [1, 2, 3]})),
            json!({"a": [1, 2]})
        );
        assert_eq!(
            apply_json(json!({"$pop": {"a": -1}}), json!({"a": [1, 2, 3]})),
            json!({"a": [2, 3]})
        );
        assert_eq!(
            apply_json(json!({"$pop": {"a": -1}}), json!({"a": []})),
            json!({"a": []})
        );
        assert_eq!(
            apply_json(json!({"$pop": {"a.b": 1}}), json!({"x": 1})),
            json!({"x": 1})
        );
        let (op, _, m) = mismatch(json!({"$pop": {"a": 1}}), json!({"a": {"b": 1}}));
        assert_eq!(op, "$pop");
        assert!(m.contains("must be an array but is of type object"), "{m}");
    }

    // ---- $pull / $pullAll ---------------------------------------------------

    #[test]
    fn pull_values() {
        // MongoDB manual, $pull: "Remove All Items That Equal a Specified Value".
        assert_eq!(
            apply_json(
                json!({"$pull": {"fruits": "apple", "veg": "carrots"}}),
                json!({"fruits": ["apple", "pear", "apple"], "veg": ["carrots", "celery"]})
            ),
            json!({"fruits": ["pear"], "veg": ["celery"]})
        );
        // Arrays are removed only when equal as a whole.
        assert_eq!(
            apply_json(
                json!({"$pull": {"a": [1, 2]}}),
                json!({"a": [[1, 2], [2, 1], 1]})
            ),
            json!({"a": [[2, 1], 1]})
        );
    }

    #[test]
    fn pull_conditions() {
        // MongoDB manual, $pull: "Remove All Items That Match a Specified $pull Condition".
        assert_eq!(
            apply_json(
                json!({"$pull": {"votes": {"$gte": 6}}}),
                json!({"votes": [3, 5, 6, 7, 7, 8]})
            ),
            json!({"votes": [3, 5]})
        );
        // "Remove Items from an Array of Documents".
        assert_eq!(
            apply_json(
                json!({"$pull": {"results": {"score": 8, "item": "B"}}}),
                json!({"results": [{"item": "A", "score": 5}, {"item": "B", "score": 8}, {"item": "B", "score": 4}]})
            ),
            json!({"results": [{"item": "A", "score": 5}, {"item": "B", "score": 4}]})
        );
        // "Remove Documents from Nested Arrays".
        assert_eq!(
            apply_json(
                json!({"$pull": {"results": {"answers": {"$elemMatch": {"q": 2, "a": {"$gte": 8}}}}}}),
                json!({"results": [
                    {"item": "A", "answers": [{"q": 1, "a": 4}, {"q": 2, "a": 6}]},
                    {"item": "B", "answers": [{"q": 1, "a": 8}, {"q": 2, "a": 9}]}
                ]})
            ),
            json!({"results": [{"item": "A", "answers": [{"q": 1, "a": 4}, {"q": 2, "a": 6}]}]})
        );
        // $in on scalars.
        assert_eq!(
            apply_json(
                json!({"$pull": {"a": {"$in": ["x", 2]}}}),
                json!({"a": [1, 2, "x", "y"]})
            ),
            json!({"a": [1, "y"]})
        );
    }

    #[test]
    fn pull_regex_values_match_strings() {
        // MongoDB (pull_node.cc): a regular expression operand is applied as a query.
        assert_eq!(
            apply_json(
                json!({"$pull": {"a": {"$regularExpression": {"pattern": "^x", "options": ""}}}}),
                json!({"a": ["xa", "ya", "xb", 1]})
            ),
            json!({"a": ["ya", 1]})
        );
    }

    #[test]
    fn pull_missing_and_non_array() {
        assert_eq!(
            apply_json(json!({"$pull": {"a": 1}}), json!({"b": 1})),
            json!({"b": 1})
        );
        assert_eq!(
            apply_json(json!({"$pull": {"a.b.c": 1}}), json!({"a": 1})),
            json!({"a": 1})
        );
        let (op, path, m) = mismatch(json!({"$pull": {"a": 1}}), json!({"a": 1}));
        assert_eq!((op.as_str(), path.as_str()), ("$pull", "a"));
        assert!(m.contains("must be an array"), "{m}");
    }

    #[test]
    fn pull_all() {
        // MongoDB manual, $pullAll.
        assert_eq!(
            apply_json(
                json!({"$pullAll": {"scores": [0, 5]}}),
                json!({"scores": [0, 2, 5, 5, 1, 0]})
            ),
            json!({"scores": [2, 1]})
        );
        assert_eq!(
            apply_json(json!({"$pullAll": {"a": [1]}}), json!({})),
            json!({})
        );
        let (op, _, _) = mismatch(json!({"$pullAll": {"a": [1]}}), json!({"a": "s"}));
        assert_eq!(op, "$pullAll");
    }

    // ---- combinations and robustness -----------------------------------------

    #[test]
    fn several_operators_in_one_update() {
        let out = apply_json(
            json!({"$set": {"s": 1}, "$inc": {"n": 2}, "$unset": {"u": 1}, "$push": {"p": 3}, "$rename": {"r": "rr"}}),
            json!({"n": 1, "u": 0, "p": [], "r": "v"}),
        );
        assert_eq!(out, json!({"n": 3, "p": [3], "s": 1, "rr": "v"}));
    }

    mod no_panics {
        use super::*;
        use proptest::prelude::*;

        fn leaf() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(|i| json!(i)),
                any::<u64>().prop_map(|u| json!(u)),
                (-1.0e6f64..1.0e6).prop_map(|f| json!(f)),
                (-3i64..4).prop_map(|i| json!(i)),
                "[a-c$.0-9]{0,4}".prop_map(Value::String),
            ]
        }

        /// Values whose field names are legal in stored documents.
        fn plain_value() -> impl Strategy<Value = Value> {
            leaf().prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::vec((prop::sample::select(vec!["a", "b", "0"]), inner), 0..4)
                        .prop_map(|kv| Value::Object(
                            kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                        )),
                ]
            })
        }

        /// Any JSON, including `$` keys.
        fn json_value() -> impl Strategy<Value = Value> {
            let keys = vec![
                "a",
                "b",
                "0",
                "$each",
                "$sort",
                "$slice",
                "$position",
                "$gte",
                "$type",
                "$in",
                "$date",
            ];
            leaf().prop_recursive(3, 24, 4, move |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::vec((prop::sample::select(keys.clone()), inner), 0..4)
                        .prop_map(|kv| Value::Object(
                            kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                        )),
                ]
            })
        }

        fn path() -> impl Strategy<Value = String> {
            prop::sample::select(vec![
                "a", "b", "c", "0", "a.b", "a.0", "a.1.b", "b.0", "b.a", "a.b.c", "c.5", "a.$",
                "a..b",
            ])
            .prop_map(str::to_owned)
        }

        fn modifiers() -> impl Strategy<Value = Value> {
            let sort = prop::sample::select(vec![
                json!(1),
                json!(-1),
                json!({"a": 1}),
                json!({"b.0": -1}),
                json!(0),
            ]);
            (
                prop::collection::vec(plain_value(), 0..4),
                prop::option::of(-4i64..5),
                prop::option::of(-4i64..5),
                prop::option::of(sort),
            )
                .prop_map(|(each, slice, position, sort)| {
                    let mut m = serde_json::Map::new();
                    m.insert("$each".into(), Value::Array(each));
                    if let Some(s) = slice {
                        m.insert("$slice".into(), json!(s));
                    }
                    if let Some(p) = position {
                        m.insert("$position".into(), json!(p));
                    }
                    if let Some(s) = sort {
                        m.insert("$sort".into(), s);
                    }
                    Value::Object(m)
                })
        }

        fn operand() -> impl Strategy<Value = Value> {
            prop_oneof![
                4 => plain_value(),
                1 => json_value(),
                2 => modifiers(),
                1 => (-3i64..10).prop_map(|i| json!({"$gte": i})),
                1 => prop::sample::select(vec![json!(true), json!({"$type": "timestamp"})]),
                1 => path().prop_map(Value::String),
            ]
        }

        fn update() -> impl Strategy<Value = Value> {
            let op = prop::sample::select(OPERATORS.to_vec());
            prop::collection::vec((op, prop::collection::vec((path(), operand()), 1..3)), 1..3)
                .prop_map(|ops| {
                    Value::Object(
                        ops.into_iter()
                            .map(|(op, fields)| {
                                (op.to_owned(), Value::Object(fields.into_iter().collect()))
                            })
                            .collect(),
                    )
                })
        }

        fn stored_doc() -> impl Strategy<Value = Document> {
            prop::collection::vec(
                (
                    prop::sample::select(vec!["a", "b", "c", "0"]),
                    plain_value(),
                ),
                0..4,
            )
            .prop_map(|kv| {
                let map: serde_json::Map<String, Value> =
                    kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                document_from_json(&Value::Object(map)).unwrap_or_default()
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2048))]
            #[test]
            fn parse_and_apply_never_panic(spec in update(), doc in stored_doc(), is_insert in any::<bool>()) {
                if let Ok(u) = Update::parse(&spec) {
                    let mut d = doc.clone();
                    let c = ApplyContext { is_insert, now: bson::DateTime::from_millis(0) };
                    if u.apply(&mut d, &c).is_ok() {
                        // The result is a storable document.
                        prop_assert!(d.to_vec().is_ok());
                    }
                    let _ = u.touched_paths();
                }
            }

            #[test]
            fn arbitrary_json_never_panics(spec in json_value()) {
                let _ = Update::parse(&spec);
            }
        }
    }
}
