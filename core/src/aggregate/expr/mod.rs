//! The aggregation expression language: parse (JSON → [`Expr`], all validation
//! here, variables resolved to slots) and evaluation against one document.
//!
//! ```text
//! "$a.b"            field path of the current document
//! "$$ROOT", "$$v.x" variables ($$ROOT = $$CURRENT, $$REMOVE, $$NOW, $let/$filter/$map/$reduce/$lookup bindings)
//! {"$op": args}     an operator; one file per family below
//! {"k": expr, ...}  an expression object; [expr, ...] an array; anything else a constant
//! ```
//!
//! Evaluation follows MongoDB's null/missing rules per operator; a field path
//! into a stored document borrows its bytes ([`Val::Ref`]), operators produce
//! owned values. Errors that depend on the data (`$add` on a string, division by
//! zero) are [`ExprError`]s, which the stage turns into [`crate::Error::TypeMismatch`].

pub(crate) mod accum;
pub(crate) mod arith;
pub(crate) mod array;
pub(crate) mod boolean;
pub(crate) mod compare;
pub(crate) mod cond;
pub(crate) mod convert;
pub(crate) mod date;
pub(crate) mod object;
pub(crate) mod string;

use bson::{Bson, Document};
use serde_json::{Map, Value};

use super::value::Val;
use crate::doc::json::{bson_from_json, Context};
use crate::doc::{ArrRef, DocRef, ValRef};

/// A parsed expression.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    /// A constant (literals, `$literal`, folded constant arrays).
    Const(Bson),
    /// A field path of the current document (`"$a.b"`).
    Path(Vec<String>),
    /// A variable, optionally followed by a path (`"$$ROOT.a"`).
    Var(Var, Vec<String>),
    /// `{field: expr, ...}`.
    Object(Vec<(String, Expr)>),
    /// `[expr, ...]`.
    Array(Vec<Expr>),
    /// `$let`.
    Let(Box<Let>),
    /// Arithmetic.
    Arith(Box<arith::Arith>),
    /// Comparison.
    Cmp(Box<compare::Cmp>),
    /// Boolean.
    Bool(Box<boolean::Bool>),
    /// Conditionals.
    Cond(Box<cond::Cond>),
    /// Strings.
    Str(Box<string::Str>),
    /// Arrays.
    Arr(Box<array::Arr>),
    /// Objects.
    Obj(Box<object::Obj>),
    /// Type conversion.
    Conv(Box<convert::Conv>),
    /// Dates.
    Date(Box<date::DateOp>),
    /// Accumulator operators used as expressions (`$sum: "$array"`).
    Accum(Box<accum::AccumExpr>),
}

/// A variable reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Var {
    /// `$$ROOT` / `$$CURRENT`.
    Root,
    /// `$$REMOVE`: evaluates to missing.
    Remove,
    /// `$$NOW`: the time the pipeline started.
    Now,
    /// A user variable, by slot.
    Slot(usize),
}

/// `{$let: {vars: {...}, in: expr}}`.
#[derive(Debug, Clone)]
pub(crate) struct Let {
    vars: Vec<Expr>,
    first_slot: usize,
    body: Expr,
}

/// Variable names in scope while parsing, in slot order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    names: Vec<String>,
}

impl Scope {
    /// A scope holding `names` (the `let` variables of enclosing `$lookup`s).
    pub(crate) fn with_names(names: Vec<String>) -> Scope {
        Scope { names }
    }

    /// The names in slot order.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    fn lookup(&self, name: &str) -> Option<usize> {
        self.names.iter().rposition(|n| n == name)
    }

    /// Binds `names` (in order) while `f` parses; returns the first slot and `f`'s result.
    pub(crate) fn bind<T>(
        &mut self,
        names: &[String],
        f: impl FnOnce(&mut Scope) -> PResult<T>,
    ) -> PResult<(usize, T)> {
        let first = self.names.len();
        self.names.extend(names.iter().cloned());
        let out = f(self);
        self.names.truncate(first);
        Ok((first, out?))
    }
}

/// Parse result: errors are messages; the stage adds where they happened.
pub(crate) type PResult<T> = std::result::Result<T, String>;

/// A data-dependent evaluation failure.
#[derive(Debug, Clone)]
pub(crate) struct ExprError {
    /// The operator that failed.
    pub(crate) operator: &'static str,
    /// What went wrong.
    pub(crate) message: String,
}

/// Evaluation result.
pub(crate) type EResult<T> = std::result::Result<T, ExprError>;

/// Builds an [`ExprError`].
pub(crate) fn fail<T>(operator: &'static str, message: impl Into<String>) -> EResult<T> {
    Err(ExprError {
        operator,
        message: message.into(),
    })
}

/// What an expression is evaluated against.
pub(crate) struct Cx<'a> {
    /// The current document (`$$ROOT`, `$$CURRENT`, field paths).
    pub(crate) root: DocRef<'a>,
    /// Variables bound by enclosing `$lookup` stages (slots `0..base.len()`).
    pub(crate) base: &'a [Option<Bson>],
    /// Variables bound by `$let`, `$filter`, `$map`, `$reduce` (the following slots).
    pub(crate) local: Vec<Val<'a>>,
    /// `$$NOW`, milliseconds since the epoch.
    pub(crate) now: i64,
}

impl<'a> Cx<'a> {
    /// A context for one document.
    pub(crate) fn new(root: DocRef<'a>, base: &'a [Option<Bson>], now: i64) -> Cx<'a> {
        Cx {
            root,
            base,
            local: Vec::new(),
            now,
        }
    }

    /// Sets slot `slot` (which must be the next local slot or an existing one).
    pub(crate) fn set(&mut self, slot: usize, v: Val<'a>) {
        let i = slot - self.base.len();
        if i < self.local.len() {
            self.local[i] = v;
        } else {
            self.local.resize(i, Val::Missing);
            self.local.push(v);
        }
    }

    /// Forgets local slots from `slot` on.
    pub(crate) fn unbind(&mut self, slot: usize) {
        self.local.truncate(slot - self.base.len());
    }

    fn var(&self, slot: usize) -> Val<'a> {
        match self.base.get(slot) {
            Some(Some(b)) => Val::Ref(ValRef::from(b)),
            Some(None) => Val::Missing,
            None => self
                .local
                .get(slot - self.base.len())
                .cloned()
                .unwrap_or(Val::Missing),
        }
    }
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// Names of the JSON type, for messages.
pub(crate) fn describe(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 80 {
        let mut end = 77;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    format!("{} {s}", crate::doc::json::json_type_name(v))
}

/// Parses an expression.
pub(crate) fn parse(v: &Value, scope: &mut Scope) -> PResult<Expr> {
    match v {
        Value::String(s) => parse_string(s, scope),
        Value::Array(items) => {
            let exprs = items
                .iter()
                .map(|i| parse(i, scope))
                .collect::<PResult<Vec<_>>>()?;
            Ok(fold_array(exprs))
        }
        Value::Object(map) => parse_object(map, scope),
        other => constant(other),
    }
}

fn constant(v: &Value) -> PResult<Expr> {
    bson_from_json(v, Context::Operand)
        .map(Expr::Const)
        .map_err(|e| e.to_string())
}

fn fold_array(exprs: Vec<Expr>) -> Expr {
    if exprs.iter().all(|e| matches!(e, Expr::Const(_))) {
        Expr::Const(Bson::Array(
            exprs
                .into_iter()
                .map(|e| match e {
                    Expr::Const(b) => b,
                    _ => Bson::Null,
                })
                .collect(),
        ))
    } else {
        Expr::Array(exprs)
    }
}

/// Parses the parts of a field path after `$` (`a.b`).
pub(crate) fn path_parts(path: &str, original: &str) -> PResult<Vec<String>> {
    if path.is_empty() {
        return Err(format!(
            "'{original}' is not a valid field path; write \"$field\" or \"$field.sub\""
        ));
    }
    let parts: Vec<String> = path.split('.').map(str::to_owned).collect();
    for p in &parts {
        if p.is_empty() {
            return Err(format!(
                "field path '{original}' has an empty part (leading, trailing or doubled '.')"
            ));
        }
        if p.starts_with('$') {
            return Err(format!(
                "field path '{original}': a part cannot start with '$' ('{p}')"
            ));
        }
        if p.contains('\0') {
            return Err(format!("field path {original:?} contains a NUL byte"));
        }
    }
    Ok(parts)
}

/// Checks a user variable name: a lowercase ASCII letter or a non-ASCII
/// character first, then letters, digits and `_`.
pub(crate) fn check_var_name(name: &str) -> PResult<()> {
    let mut chars = name.chars();
    let ok_first = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || !c.is_ascii());
    let ok_rest = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii());
    if ok_first && ok_rest {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a valid variable name: it must start with a lowercase letter (or a non-ASCII character) \
             and contain only letters, digits and '_'"
        ))
    }
}

fn parse_string(s: &str, scope: &mut Scope) -> PResult<Expr> {
    if let Some(var) = s.strip_prefix("$$") {
        let (name, rest) = match var.split_once('.') {
            Some((n, r)) => (n, Some(r)),
            None => (var, None),
        };
        let path = match rest {
            Some(r) => path_parts(r, s)?,
            None => Vec::new(),
        };
        let var = match name {
            "ROOT" | "CURRENT" => Var::Root,
            "REMOVE" => Var::Remove,
            "NOW" => Var::Now,
            "" => return Err(format!("'{s}' is not a valid variable reference")),
            _ => match scope.lookup(name) {
                Some(slot) => Var::Slot(slot),
                None if name.starts_with(|c: char| c.is_ascii_uppercase()) => {
                    return Err(format!(
                        "unknown system variable '$${name}'; supported are $$ROOT, $$CURRENT, $$REMOVE and $$NOW"
                    ))
                }
                None => return Err(format!("use of undefined variable '$${name}'")),
            },
        };
        return Ok(Expr::Var(var, path));
    }
    if let Some(path) = s.strip_prefix('$') {
        return Ok(Expr::Path(path_parts(path, s)?));
    }
    Ok(Expr::Const(Bson::String(s.to_owned())))
}

const EXTENDED_KEYS: &[&str] = &[
    "$date",
    "$oid",
    "$timestamp",
    "$binary",
    "$regularExpression",
    "$minKey",
    "$maxKey",
    "$numberLong",
    "$numberInt",
    "$numberDouble",
    "$numberDecimal",
];

fn parse_object(map: &Map<String, Value>, scope: &mut Scope) -> PResult<Expr> {
    let Some(first) = map.keys().next() else {
        return Ok(Expr::Const(Bson::Document(Document::new())));
    };
    if map.len() == 1 && EXTENDED_KEYS.contains(&first.as_str()) {
        return constant(&Value::Object(map.clone()));
    }
    if first.starts_with('$') {
        if map.len() > 1 {
            return Err(format!(
                "an operator expression takes exactly one field, the operator's name; got {}",
                describe(&Value::Object(map.clone()))
            ));
        }
        let arg = &map[first];
        return parse_operator(first, arg, scope);
    }
    let mut fields = Vec::with_capacity(map.len());
    for (k, v) in map {
        if k.starts_with('$') {
            return Err(format!(
                "field name '{k}' in an expression object starts with '$'; an operator must be the only field of its object"
            ));
        }
        if k.contains('.') {
            return Err(format!(
                "field name '{k}' in an expression object contains '.'; nest an object instead"
            ));
        }
        fields.push((k.clone(), parse(v, scope)?));
    }
    if fields.iter().all(|(_, e)| matches!(e, Expr::Const(_))) {
        let mut d = Document::new();
        for (k, e) in fields {
            if let Expr::Const(b) = e {
                d.insert(k, b);
            }
        }
        return Ok(Expr::Const(Bson::Document(d)));
    }
    Ok(Expr::Object(fields))
}

fn parse_operator(name: &str, arg: &Value, scope: &mut Scope) -> PResult<Expr> {
    match name {
        "$literal" => return constant(arg),
        "$let" => return parse_let(arg, scope),
        "$function" | "$accumulator" | "$where" => {
            return Err(format!(
                "{name} is not supported: collection-store never executes code found in a query"
            ))
        }
        _ => {}
    }
    let parsed = arith::parse(name, arg, scope)
        .or_else(|| compare::parse(name, arg, scope))
        .or_else(|| boolean::parse(name, arg, scope))
        .or_else(|| cond::parse(name, arg, scope))
        .or_else(|| string::parse(name, arg, scope))
        .or_else(|| array::parse(name, arg, scope))
        .or_else(|| object::parse(name, arg, scope))
        .or_else(|| convert::parse(name, arg, scope))
        .or_else(|| date::parse(name, arg, scope))
        .or_else(|| accum::parse(name, arg, scope));
    match parsed {
        Some(r) => r,
        None => Err(format!(
            "unknown expression operator '{name}' (see the README's Aggregation section for the supported operators)"
        )),
    }
}

fn parse_let(arg: &Value, scope: &mut Scope) -> PResult<Expr> {
    let spec = object_args("$let", arg, &["vars", "in"], &["vars", "in"])?;
    let Value::Object(vars) = spec["vars"] else {
        return Err(format!(
            "$let: 'vars' must be an object of variable definitions, got {}",
            describe(spec["vars"])
        ));
    };
    let mut names = Vec::with_capacity(vars.len());
    let mut exprs = Vec::with_capacity(vars.len());
    for (k, v) in vars {
        check_var_name(k)?;
        names.push(k.clone());
        // Definitions see the enclosing scope, not each other.
        exprs.push(parse(v, scope)?);
    }
    let body_spec = spec["in"];
    let (first_slot, body) = scope.bind(&names, |s| parse(body_spec, s))?;
    Ok(Expr::Let(Box::new(Let {
        vars: exprs,
        first_slot,
        body,
    })))
}

/// The operands of an operator: the elements of an array argument, or the
/// argument itself.
pub(crate) fn operands(arg: &Value) -> Vec<&Value> {
    match arg {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// Parses `count` operands of `name` (an array, or one value when `count` is 1).
pub(crate) fn fixed(
    name: &str,
    arg: &Value,
    count: usize,
    scope: &mut Scope,
) -> PResult<Vec<Expr>> {
    let ops = operands(arg);
    if ops.len() != count {
        return Err(format!(
            "{name} takes exactly {count} argument{}, got {}",
            if count == 1 { "" } else { "s" },
            ops.len()
        ));
    }
    ops.into_iter().map(|o| parse(o, scope)).collect()
}

/// Parses between `min` and `max` operands of `name`.
pub(crate) fn ranged(
    name: &str,
    arg: &Value,
    min: usize,
    max: usize,
    scope: &mut Scope,
) -> PResult<Vec<Expr>> {
    let ops = operands(arg);
    if ops.len() < min || ops.len() > max {
        return Err(if max == usize::MAX {
            format!("{name} takes at least {min} arguments, got {}", ops.len())
        } else {
            format!("{name} takes {min} to {max} arguments, got {}", ops.len())
        });
    }
    ops.into_iter().map(|o| parse(o, scope)).collect()
}

/// The fields of an object-form operator argument, checking that every
/// `required` one is present and nothing outside `allowed` is.
pub(crate) fn object_args<'v>(
    name: &str,
    arg: &'v Value,
    allowed: &[&str],
    required: &[&str],
) -> PResult<std::collections::HashMap<&'v str, &'v Value>> {
    let Value::Object(map) = arg else {
        return Err(format!(
            "{name} takes an object with the fields {}, got {}",
            allowed.join(", "),
            describe(arg)
        ));
    };
    for k in map.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(format!(
                "{name} does not take a field '{k}'; its fields are {}",
                allowed.join(", ")
            ));
        }
    }
    for r in required {
        if !map.contains_key(*r) {
            return Err(format!("{name} needs the field '{r}'"));
        }
    }
    Ok(map.iter().map(|(k, v)| (k.as_str(), v)).collect())
}

// ---------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------

impl Expr {
    /// A constant expression's value.
    pub(crate) fn as_const(&self) -> Option<&Bson> {
        match self {
            Expr::Const(b) => Some(b),
            _ => None,
        }
    }

    /// Evaluates the expression.
    pub(crate) fn eval<'a>(&'a self, cx: &mut Cx<'a>) -> EResult<Val<'a>> {
        match self {
            Expr::Const(b) => Ok(Val::Ref(ValRef::from(b))),
            Expr::Path(parts) => Ok(walk(Val::Ref(ValRef::Document(cx.root)), parts)),
            Expr::Var(var, parts) => {
                let base = match var {
                    Var::Root => Val::Ref(ValRef::Document(cx.root)),
                    Var::Remove => Val::Missing,
                    Var::Now => Val::Own(Bson::DateTime(bson::DateTime::from_millis(cx.now))),
                    Var::Slot(s) => cx.var(*s),
                };
                Ok(walk(base, parts))
            }
            Expr::Object(fields) => {
                let mut d = Document::new();
                for (k, e) in fields {
                    if let Some(b) = e.eval(cx)?.into_bson() {
                        d.insert(k.clone(), b);
                    }
                }
                Ok(Val::Own(Bson::Document(d)))
            }
            Expr::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for e in items {
                    // Missing elements become null, as in MongoDB.
                    out.push(e.eval(cx)?.into_bson_or_null());
                }
                Ok(Val::Own(Bson::Array(out)))
            }
            Expr::Let(l) => {
                let vals = l
                    .vars
                    .iter()
                    .map(|e| e.eval(cx))
                    .collect::<EResult<Vec<_>>>()?;
                for (i, v) in vals.into_iter().enumerate() {
                    cx.set(l.first_slot + i, v);
                }
                let out = l.body.eval(cx);
                cx.unbind(l.first_slot);
                out
            }
            Expr::Arith(a) => a.eval(cx),
            Expr::Cmp(c) => c.eval(cx),
            Expr::Bool(b) => b.eval(cx),
            Expr::Cond(c) => c.eval(cx),
            Expr::Str(s) => s.eval(cx),
            Expr::Arr(a) => a.eval(cx),
            Expr::Obj(o) => o.eval(cx),
            Expr::Conv(c) => c.eval(cx),
            Expr::Date(d) => d.eval(cx),
            Expr::Accum(a) => a.eval(cx),
        }
    }
}

/// Follows an expression field path: through documents by name, and through
/// arrays by applying the rest of the path to every element (collecting the
/// results that are not missing into a new array). No numeric array indexes.
pub(crate) fn walk<'a>(start: Val<'a>, parts: &[String]) -> Val<'a> {
    if parts.is_empty() {
        return start;
    }
    match start {
        Val::Missing => Val::Missing,
        Val::Ref(v) => walk_ref(v, parts),
        Val::Own(b) => match walk_ref(ValRef::from(&b), parts) {
            Val::Ref(v) => Val::Own(v.to_bson()),
            Val::Own(x) => Val::Own(x),
            Val::Missing => Val::Missing,
        },
    }
}

fn walk_ref<'a>(v: ValRef<'a>, parts: &[String]) -> Val<'a> {
    let Some((head, rest)) = parts.split_first() else {
        return Val::Ref(v);
    };
    match v {
        ValRef::Document(d) => match d.get(head) {
            Some(child) => walk_ref(child, rest),
            None => Val::Missing,
        },
        ValRef::Array(a) => Val::Own(Bson::Array(walk_array(a, parts))),
        _ => Val::Missing,
    }
}

fn walk_array(a: ArrRef<'_>, parts: &[String]) -> Vec<Bson> {
    let mut out = Vec::new();
    for e in a.iter() {
        match e {
            ValRef::Document(_) => {
                if let Some(b) = walk_ref(e, parts).into_bson() {
                    out.push(b);
                }
            }
            ValRef::Array(inner) => out.push(Bson::Array(walk_array(inner, parts))),
            _ => {}
        }
    }
    out
}
