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
//!
//! Files: this one holds the update's shape, the parsing entry points, the
//! conflict check and the per-operator dispatch; `values` checks operands and
//! stored values; `arith` holds `$inc`/`$mul` arithmetic and `$currentDate`;
//! `path` walks and creates dotted paths; `array` holds the array operators
//! (`$push`, `$addToSet`, `$pop`, `$pull`, `$pullAll`).

mod arith;
mod array;
mod path;
#[cfg(test)]
mod tests;
mod values;

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

use arith::*;
use array::*;
use path::*;
use values::*;

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
