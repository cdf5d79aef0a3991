//! Filter documents parsed into a typed AST ([`Filter`]). All validation of a
//! filter happens here; the matcher ([`super::matcher`]) and the planner only
//! see well-formed trees.

use bson::Bson;
use regex::Regex;
use serde_json::{Map, Value};

use crate::doc::json::{bson_from_json, json_type_name, Context};
use crate::doc::FieldPath;
use crate::error::{Error, Result};

/// A parsed filter.
#[derive(Debug, Clone)]
pub enum Filter {
    /// Matches every document (`{}`).
    True,
    /// All sub-filters match.
    And(Vec<Filter>),
    /// At least one sub-filter matches.
    Or(Vec<Filter>),
    /// No sub-filter matches.
    Nor(Vec<Filter>),
    /// An operator applied to the values found at a path.
    Field {
        /// The dotted path.
        path: FieldPath,
        /// The operator.
        op: Op,
    },
}

/// Comparison operators with type bracketing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `$gt`
    Gt,
    /// `$gte`
    Gte,
    /// `$lt`
    Lt,
    /// `$lte`
    Lte,
}

/// Bitwise test operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitsOp {
    /// `$bitsAllSet`
    AllSet,
    /// `$bitsAnySet`
    AnySet,
    /// `$bitsAllClear`
    AllClear,
    /// `$bitsAnyClear`
    AnyClear,
}

/// One element of an `$in` / `$nin` list.
#[derive(Debug, Clone)]
pub enum InItem {
    /// Equality with a value.
    Value(Bson),
    /// A regular expression match.
    Regex(Box<RegexMatch>),
}

/// A compiled `$regex`.
#[derive(Debug, Clone)]
pub struct RegexMatch {
    /// The pattern as given.
    pub pattern: String,
    /// The options as given.
    pub options: String,
    /// The compiled expression.
    pub regex: Regex,
}

/// One element of `$all`.
#[derive(Debug, Clone)]
pub enum AllItem {
    /// Equality with a value (including element equality on arrays).
    Value(Bson),
    /// `{"$elemMatch": ...}`.
    ElemMatch(Box<ElemMatch>),
}

/// The condition of `$elemMatch` (and of `$pull` in updates).
#[derive(Debug, Clone)]
pub enum ElemMatch {
    /// Operators applied to the element itself: `{"$gte": 80, "$lt": 85}`.
    Value(Vec<Op>),
    /// A query applied to an element that is a document: `{"product": "x", "score": {"$gt": 8}}`.
    Document(Filter),
}

/// The BSON type selectors of `$type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeSel {
    /// `"double"` / 1
    Double,
    /// `"string"` / 2
    String,
    /// `"object"` / 3
    Object,
    /// `"array"` / 4
    Array,
    /// `"binData"` / 5
    BinData,
    /// `"undefined"` / 6
    Undefined,
    /// `"objectId"` / 7
    ObjectId,
    /// `"bool"` / 8
    Bool,
    /// `"date"` / 9
    Date,
    /// `"null"` / 10
    Null,
    /// `"regex"` / 11
    Regex,
    /// `"javascript"` / 13
    JavaScript,
    /// `"symbol"` / 14
    Symbol,
    /// `"int"` / 16
    Int,
    /// `"timestamp"` / 17
    Timestamp,
    /// `"long"` / 18
    Long,
    /// `"decimal"` / 19
    Decimal,
    /// `"minKey"` / -1
    MinKey,
    /// `"maxKey"` / 127
    MaxKey,
    /// `"number"`: any numeric type.
    Number,
}

/// An operator applied at a path.
#[derive(Debug, Clone)]
pub enum Op {
    /// `$eq` (and the implicit `{field: value}`).
    Eq(Bson),
    /// `$ne`.
    Ne(Bson),
    /// `$gt $gte $lt $lte`.
    Cmp(CmpOp, Bson),
    /// `$in`.
    In(Vec<InItem>),
    /// `$nin`.
    Nin(Vec<InItem>),
    /// `$exists`.
    Exists(bool),
    /// `$type`.
    Type(Vec<TypeSel>),
    /// `$size`.
    Size(u64),
    /// `$all`.
    All(Vec<AllItem>),
    /// `$elemMatch`.
    ElemMatch(Box<ElemMatch>),
    /// `$regex` (with `$options`).
    Regex(Box<RegexMatch>),
    /// `$mod: [divisor, remainder]`.
    Mod(i64, i64),
    /// The bitwise operators, with the bit positions tested.
    Bits(BitsOp, Vec<u32>),
    /// `$not`: the negation of all the operators it holds.
    Not(Vec<Op>),
}

fn err(message: String) -> Error {
    Error::InvalidFilter(message)
}

/// The largest regex program accepted, in bytes of compiled size.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl Filter {
    /// Parses a filter document.
    pub fn parse(spec: &Value) -> Result<Filter> {
        match spec {
            Value::Object(map) => parse_object(map),
            other => Err(err(format!(
                "a filter must be a JSON object such as {{\"age\": {{\"$gte\": 18}}}}, got {}",
                json_type_name(other)
            ))),
        }
    }

    /// Top-level equality conditions (`{a: 1}`, `{a: {$eq: 1}}`, nested in `$and`),
    /// which an upsert copies into the document it inserts.
    pub fn equality_fields(&self) -> Vec<(&FieldPath, &Bson)> {
        let mut out = Vec::new();
        self.collect_equalities(&mut out);
        out
    }

    fn collect_equalities<'a>(&'a self, out: &mut Vec<(&'a FieldPath, &'a Bson)>) {
        match self {
            Filter::Field {
                path,
                op: Op::Eq(v),
            } => out.push((path, v)),
            Filter::And(items) => items.iter().for_each(|f| f.collect_equalities(out)),
            Filter::Or(items) if items.len() == 1 => items[0].collect_equalities(out),
            _ => {}
        }
    }
}

fn parse_object(map: &Map<String, Value>) -> Result<Filter> {
    let mut clauses = Vec::with_capacity(map.len());
    for (key, value) in map {
        if let Some(op) = key.strip_prefix('$') {
            clauses.push(parse_top_level(op, key, value)?);
        } else {
            let path = FieldPath::parse(key).map_err(err)?;
            parse_field(&path, value, &mut clauses)?;
        }
    }
    Ok(match clauses.len() {
        0 => Filter::True,
        1 => clauses.pop().unwrap_or(Filter::True),
        _ => Filter::And(clauses),
    })
}

fn parse_top_level(op: &str, key: &str, value: &Value) -> Result<Filter> {
    match op {
        "and" | "or" | "nor" => {
            let items = match value {
                Value::Array(items) if !items.is_empty() => items,
                _ => {
                    return Err(err(format!(
                        "{key} takes a non-empty array of filter objects, got {}",
                        describe(value)
                    )))
                }
            };
            let parsed = items
                .iter()
                .map(|item| match item {
                    Value::Object(m) => parse_object(m),
                    other => Err(err(format!(
                        "every element of {key} must be a filter object, got {}",
                        json_type_name(other)
                    ))),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(match op {
                "and" => Filter::And(parsed),
                "or" => Filter::Or(parsed),
                _ => Filter::Nor(parsed),
            })
        }
        "comment" => Ok(Filter::True),
        "where" | "function" | "accumulator" => Err(err(format!(
            "{key} is not supported: collection-store never executes code found in a query"
        ))),
        "expr" | "text" | "jsonSchema" | "near" | "geoWithin" => Err(err(format!(
            "{key} is not supported; use the field operators ($eq, $gt, $in, $regex, ...) instead"
        ))),
        _ => Err(err(format!(
            "unknown top-level operator '{key}'; top-level operators are $and, $or, $nor and $comment"
        ))),
    }
}

fn describe(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 80 {
        let mut end = 77;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    format!("{} {s}", json_type_name(v))
}

/// True when `v` is an operator expression (`{"$gt": 1, ...}`) rather than a literal.
fn is_operator_object(map: &Map<String, Value>) -> bool {
    map.keys().next().is_some_and(|k| k.starts_with('$')) && !is_extended_literal(map)
}

fn is_extended_literal(map: &Map<String, Value>) -> bool {
    map.len() == 1
        && matches!(
            map.keys().next().map(String::as_str),
            Some(
                "$date"
                    | "$oid"
                    | "$timestamp"
                    | "$binary"
                    | "$regularExpression"
                    | "$minKey"
                    | "$maxKey"
                    | "$numberLong"
                    | "$numberDecimal"
            )
        )
}

fn literal(v: &Value) -> Result<Bson> {
    bson_from_json(v, Context::Operand)
}

fn parse_field(path: &FieldPath, value: &Value, out: &mut Vec<Filter>) -> Result<()> {
    match value {
        Value::Object(map) if is_operator_object(map) => {
            for op in parse_operators(path.as_str(), map)? {
                out.push(Filter::Field {
                    path: path.clone(),
                    op,
                });
            }
        }
        other => {
            let v = literal(other)?;
            let op = match v {
                Bson::RegularExpression(r) => Op::Regex(Box::new(compile_regex(
                    r.pattern.as_str(),
                    r.options.as_str(),
                )?)),
                v => Op::Eq(v),
            };
            out.push(Filter::Field {
                path: path.clone(),
                op,
            });
        }
    }
    Ok(())
}

/// Parses an operator expression such as `{"$gte": 1, "$lt": 5}` into its operators.
pub fn parse_operators(path: &str, map: &Map<String, Value>) -> Result<Vec<Op>> {
    let mut ops = Vec::with_capacity(map.len());
    let mut regex: Option<&Value> = None;
    let mut options: Option<&Value> = None;
    for (key, value) in map {
        let Some(name) = key.strip_prefix('$') else {
            return Err(err(format!(
                "'{path}': cannot mix operators and field names in one expression (found '{key}' beside operators); \
                 to match an embedded document exactly, write it without operators"
            )));
        };
        match name {
            "eq" => ops.push(Op::Eq(literal(value)?)),
            "ne" => ops.push(Op::Ne(literal(value)?)),
            "gt" => ops.push(Op::Cmp(CmpOp::Gt, literal(value)?)),
            "gte" => ops.push(Op::Cmp(CmpOp::Gte, literal(value)?)),
            "lt" => ops.push(Op::Cmp(CmpOp::Lt, literal(value)?)),
            "lte" => ops.push(Op::Cmp(CmpOp::Lte, literal(value)?)),
            "in" => ops.push(Op::In(parse_in_list(path, key, value)?)),
            "nin" => ops.push(Op::Nin(parse_in_list(path, key, value)?)),
            "exists" => ops.push(Op::Exists(truthy(path, key, value)?)),
            "type" => ops.push(Op::Type(parse_types(path, value)?)),
            "size" => ops.push(Op::Size(parse_size(path, value)?)),
            "all" => ops.push(Op::All(parse_all(path, value)?)),
            "elemMatch" => ops.push(Op::ElemMatch(Box::new(parse_elem_match(path, value)?))),
            "regex" => regex = Some(value),
            "options" => options = Some(value),
            "mod" => {
                let (d, r) = parse_mod(path, value)?;
                ops.push(Op::Mod(d, r));
            }
            "bitsAllSet" => ops.push(Op::Bits(BitsOp::AllSet, parse_bitmask(path, key, value)?)),
            "bitsAnySet" => ops.push(Op::Bits(BitsOp::AnySet, parse_bitmask(path, key, value)?)),
            "bitsAllClear" => ops.push(Op::Bits(BitsOp::AllClear, parse_bitmask(path, key, value)?)),
            "bitsAnyClear" => ops.push(Op::Bits(BitsOp::AnyClear, parse_bitmask(path, key, value)?)),
            "not" => ops.push(Op::Not(parse_not(path, value)?)),
            "where" => {
                return Err(err(
                    "$where is not supported: collection-store never executes code found in a query"
                        .into(),
                ))
            }
            _ => {
                return Err(err(format!(
                    "unknown operator '{key}' at '{path}'; field operators are $eq $ne $gt $gte $lt $lte $in $nin \
                     $exists $type $size $all $elemMatch $regex $options $mod $bitsAllSet $bitsAnySet \
                     $bitsAllClear $bitsAnyClear $not"
                )))
            }
        }
    }
    match (regex, options) {
        (Some(r), opts) => ops.push(Op::Regex(Box::new(parse_regex_operand(path, r, opts)?))),
        (None, Some(_)) => {
            return Err(err(format!("'{path}': $options needs a $regex beside it")));
        }
        (None, None) => {}
    }
    Ok(ops)
}

fn truthy(path: &str, key: &str, v: &Value) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => Ok(n.as_f64().is_some_and(|f| f != 0.0)),
        Value::Null => Ok(false),
        other => Err(err(format!(
            "'{path}': {key} takes true or false, got {}",
            describe(other)
        ))),
    }
}

fn parse_in_list(path: &str, key: &str, v: &Value) -> Result<Vec<InItem>> {
    let Value::Array(items) = v else {
        return Err(err(format!(
            "'{path}': {key} takes an array of values, got {}",
            describe(v)
        )));
    };
    items
        .iter()
        .map(|item| {
            if let Value::Object(m) = item {
                if is_operator_object(m) {
                    return Err(err(format!(
                        "'{path}': {key} cannot contain operator expressions such as {}",
                        describe(item)
                    )));
                }
            }
            Ok(match literal(item)? {
                Bson::RegularExpression(r) => InItem::Regex(Box::new(compile_regex(
                    r.pattern.as_str(),
                    r.options.as_str(),
                )?)),
                v => InItem::Value(v),
            })
        })
        .collect()
}

fn parse_types(path: &str, v: &Value) -> Result<Vec<TypeSel>> {
    match v {
        Value::Array(items) if !items.is_empty() => {
            items.iter().map(|i| parse_type(path, i)).collect()
        }
        Value::Array(_) => Err(err(format!("'{path}': $type needs at least one type"))),
        other => Ok(vec![parse_type(path, other)?]),
    }
}

fn parse_type(path: &str, v: &Value) -> Result<TypeSel> {
    let sel = match v {
        Value::String(s) => match s.as_str() {
            "double" => Some(TypeSel::Double),
            "string" => Some(TypeSel::String),
            "object" => Some(TypeSel::Object),
            "array" => Some(TypeSel::Array),
            "binData" => Some(TypeSel::BinData),
            "undefined" => Some(TypeSel::Undefined),
            "objectId" => Some(TypeSel::ObjectId),
            "bool" => Some(TypeSel::Bool),
            "date" => Some(TypeSel::Date),
            "null" => Some(TypeSel::Null),
            "regex" => Some(TypeSel::Regex),
            "javascript" => Some(TypeSel::JavaScript),
            "symbol" => Some(TypeSel::Symbol),
            "int" => Some(TypeSel::Int),
            "timestamp" => Some(TypeSel::Timestamp),
            "long" => Some(TypeSel::Long),
            "decimal" => Some(TypeSel::Decimal),
            "minKey" => Some(TypeSel::MinKey),
            "maxKey" => Some(TypeSel::MaxKey),
            "number" => Some(TypeSel::Number),
            _ => None,
        },
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 => match f as i64 {
                1 => Some(TypeSel::Double),
                2 => Some(TypeSel::String),
                3 => Some(TypeSel::Object),
                4 => Some(TypeSel::Array),
                5 => Some(TypeSel::BinData),
                6 => Some(TypeSel::Undefined),
                7 => Some(TypeSel::ObjectId),
                8 => Some(TypeSel::Bool),
                9 => Some(TypeSel::Date),
                10 => Some(TypeSel::Null),
                11 => Some(TypeSel::Regex),
                13 => Some(TypeSel::JavaScript),
                14 => Some(TypeSel::Symbol),
                16 => Some(TypeSel::Int),
                17 => Some(TypeSel::Timestamp),
                18 => Some(TypeSel::Long),
                19 => Some(TypeSel::Decimal),
                -1 => Some(TypeSel::MinKey),
                127 => Some(TypeSel::MaxKey),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    };
    sel.ok_or_else(|| {
        err(format!(
            "'{path}': $type got {}, which is not a BSON type alias (\"double\", \"string\", \"object\", \"array\", \
             \"bool\", \"null\", \"int\", \"long\", \"decimal\", \"number\", \"date\", ...) or type number",
            describe(v)
        ))
    })
}

fn whole_number(v: &Value) -> Option<i64> {
    let Value::Number(n) = v else { return None };
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    if f.fract() == 0.0 && f.abs() < 9.2e18 {
        Some(f as i64)
    } else {
        None
    }
}

fn parse_size(path: &str, v: &Value) -> Result<u64> {
    match whole_number(v) {
        Some(n) if n >= 0 => Ok(n as u64),
        _ => Err(err(format!(
            "'{path}': $size takes a non-negative whole number, got {}",
            describe(v)
        ))),
    }
}

fn parse_all(path: &str, v: &Value) -> Result<Vec<AllItem>> {
    let Value::Array(items) = v else {
        return Err(err(format!(
            "'{path}': $all takes an array, got {}",
            describe(v)
        )));
    };
    items
        .iter()
        .map(|item| match item {
            Value::Object(m) if m.len() == 1 && m.contains_key("$elemMatch") => Ok(
                AllItem::ElemMatch(Box::new(parse_elem_match(path, &m["$elemMatch"])?)),
            ),
            Value::Object(m) if is_operator_object(m) => Err(err(format!(
                "'{path}': $all elements are values or {{\"$elemMatch\": ...}}, got {}",
                describe(item)
            ))),
            other => Ok(AllItem::Value(literal(other)?)),
        })
        .collect()
}

/// Parses the operand of `$elemMatch`.
pub fn parse_elem_match(path: &str, v: &Value) -> Result<ElemMatch> {
    let Value::Object(map) = v else {
        return Err(err(format!(
            "'{path}': $elemMatch takes an object, got {}",
            describe(v)
        )));
    };
    let value_form = map.keys().next().is_some_and(|k| {
        k.starts_with('$') && !matches!(k.as_str(), "$and" | "$or" | "$nor" | "$comment")
    });
    if value_form {
        Ok(ElemMatch::Value(parse_operators(path, map)?))
    } else {
        Ok(ElemMatch::Document(parse_object(map)?))
    }
}

fn parse_mod(path: &str, v: &Value) -> Result<(i64, i64)> {
    let bad = || {
        err(format!(
            "'{path}': $mod takes [divisor, remainder] with a non-zero divisor, got {}",
            describe(v)
        ))
    };
    let Value::Array(items) = v else {
        return Err(bad());
    };
    if items.len() != 2 {
        return Err(bad());
    }
    let num = |x: &Value| -> Option<i64> {
        match x {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && f.abs() < 9.2e18)
                    .map(|f| f.trunc() as i64)
            }),
            _ => None,
        }
    };
    let d = num(&items[0]).ok_or_else(bad)?;
    let r = num(&items[1]).ok_or_else(bad)?;
    if d == 0 {
        return Err(bad());
    }
    Ok((d, r))
}

fn parse_bitmask(path: &str, key: &str, v: &Value) -> Result<Vec<u32>> {
    let bad = || {
        err(format!(
            "'{path}': {key} takes a non-negative integer mask or an array of non-negative bit positions, got {}",
            describe(v)
        ))
    };
    match v {
        Value::Array(items) => {
            let mut positions = Vec::with_capacity(items.len());
            for item in items {
                match whole_number(item) {
                    Some(p) if (0..=u32::MAX as i64).contains(&p) => positions.push(p as u32),
                    _ => return Err(bad()),
                }
            }
            positions.sort_unstable();
            positions.dedup();
            Ok(positions)
        }
        other => match whole_number(other) {
            Some(m) if m >= 0 => Ok((0..64).filter(|b| (m as u64) >> b & 1 == 1).collect()),
            _ => Err(bad()),
        },
    }
}

fn parse_not(path: &str, v: &Value) -> Result<Vec<Op>> {
    match v {
        Value::Object(map) if map.len() == 1 && map.contains_key("$regularExpression") => {
            match literal(v)? {
                Bson::RegularExpression(r) => Ok(vec![Op::Regex(Box::new(compile_regex(
                    r.pattern.as_str(),
                    r.options.as_str(),
                )?))]),
                _ => Err(err(format!("'{path}': invalid $not operand"))),
            }
        }
        Value::Object(map) if is_operator_object(map) => parse_operators(path, map),
        other => Err(err(format!(
            "'{path}': $not takes an operator expression such as {{\"$gt\": 5}} or a regex, got {}",
            describe(other)
        ))),
    }
}

fn parse_regex_operand(path: &str, pattern: &Value, options: Option<&Value>) -> Result<RegexMatch> {
    let opts = match options {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(err(format!(
                "'{path}': $options takes a string of flags (i, m, s, x), got {}",
                describe(other)
            )))
        }
    };
    match pattern {
        Value::String(p) => compile_regex(p, &opts),
        Value::Object(_) => match literal(pattern)? {
            Bson::RegularExpression(r) => {
                let o = if opts.is_empty() {
                    r.options.as_str().to_owned()
                } else {
                    opts
                };
                compile_regex(r.pattern.as_str(), &o)
            }
            _ => Err(err(format!(
                "'{path}': $regex takes a pattern string, got {}",
                describe(pattern)
            ))),
        },
        other => Err(err(format!(
            "'{path}': $regex takes a pattern string, got {}",
            describe(other)
        ))),
    }
}

/// Compiles a regular expression with MongoDB's option letters `i m s x`.
///
/// The syntax is that of the `regex` crate (Perl-like, without look-around or
/// back-references); matching is unanchored, as in MongoDB.
pub fn compile_regex(pattern: &str, options: &str) -> Result<RegexMatch> {
    let mut builder = regex::RegexBuilder::new(pattern);
    builder.size_limit(REGEX_SIZE_LIMIT);
    for c in options.chars() {
        match c {
            'i' => builder.case_insensitive(true),
            'm' => builder.multi_line(true),
            's' => builder.dot_matches_new_line(true),
            'x' => builder.ignore_whitespace(true),
            'u' => &mut builder,
            other => {
                return Err(Error::InvalidRegex {
                    pattern: pattern.to_owned(),
                    message: format!(
                        "unknown option '{other}'; supported options are i, m, s and x"
                    ),
                })
            }
        };
    }
    let regex = builder.build().map_err(|e| Error::InvalidRegex {
        pattern: pattern.to_owned(),
        message: e.to_string(),
    })?;
    Ok(RegexMatch {
        pattern: pattern.to_owned(),
        options: options.to_owned(),
        regex,
    })
}
