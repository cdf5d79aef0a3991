//! Objects: `$mergeObjects` (later documents win; null and missing are
//! skipped), `$objectToArray`, `$arrayToObject` (from `[k, v]` pairs or
//! `{k, v}` documents; a repeated key keeps the last value), `$getField`.

use bson::{Bson, Document};
use serde_json::Value;

use super::{fail, object_args, parse as parse_expr, ranged, Cx, EResult, Expr, PResult, Scope};
use crate::aggregate::value::{show, Val};
use crate::doc::ValRef;

/// An object operator.
#[derive(Debug, Clone)]
pub(crate) enum Obj {
    /// `$mergeObjects`.
    Merge(Vec<Expr>),
    /// `$objectToArray`.
    ToArray(Expr),
    /// `$arrayToObject`.
    FromArray(Expr),
    /// `$getField`: the field name and the document (default `$$CURRENT`).
    GetField(Expr, Expr),
}

/// Parses `name` if it is an object operator.
pub(crate) fn parse(n: &str, arg: &Value, scope: &mut Scope) -> Option<PResult<Expr>> {
    let o = match n {
        "$mergeObjects" => ranged(n, arg, 0, usize::MAX, scope).map(Obj::Merge),
        "$objectToArray" => super::fixed(n, arg, 1, scope).map(|mut a| Obj::ToArray(a.remove(0))),
        "$arrayToObject" => super::fixed(n, arg, 1, scope).map(|mut a| Obj::FromArray(a.remove(0))),
        "$getField" => parse_get_field(arg, scope),
        _ => return None,
    };
    Some(o.map(|o| Expr::Obj(Box::new(o))))
}

fn parse_get_field(arg: &Value, scope: &mut Scope) -> PResult<Obj> {
    match arg {
        Value::Object(m) if m.contains_key("field") => {
            let m = object_args("$getField", arg, &["field", "input"], &["field"])?;
            let field = parse_expr(m["field"], scope)?;
            let input = match m.get("input") {
                Some(i) => parse_expr(i, scope)?,
                None => Expr::Var(super::Var::Root, Vec::new()),
            };
            Ok(Obj::GetField(field, input))
        }
        other => Ok(Obj::GetField(
            parse_expr(other, scope)?,
            Expr::Var(super::Var::Root, Vec::new()),
        )),
    }
}

impl Obj {
    pub(crate) fn eval<'a>(&'a self, cx: &mut Cx<'a>) -> EResult<Val<'a>> {
        match self {
            Obj::Merge(items) => {
                let mut out = Document::new();
                for e in items {
                    let v = e.eval(cx)?;
                    match v.view() {
                        None | Some(ValRef::Null | ValRef::Undefined) => {}
                        Some(ValRef::Document(d)) => {
                            for (k, x) in d.iter() {
                                out.insert(k.to_owned(), x.to_bson());
                            }
                        }
                        Some(other) => {
                            return fail(
                                "$mergeObjects",
                                format!(
                                    "$mergeObjects requires object inputs, got {}",
                                    show(Some(other))
                                ),
                            )
                        }
                    }
                }
                Ok(Val::Own(Bson::Document(out)))
            }
            Obj::ToArray(e) => {
                let v = e.eval(cx)?;
                match v.view() {
                    None | Some(ValRef::Null | ValRef::Undefined) => Ok(Val::NULL),
                    Some(ValRef::Document(d)) => Ok(Val::Own(Bson::Array(
                        d.iter()
                            .map(|(k, x)| {
                                let mut pair = Document::new();
                                pair.insert("k", k);
                                pair.insert("v", x.to_bson());
                                Bson::Document(pair)
                            })
                            .collect(),
                    ))),
                    Some(other) => fail(
                        "$objectToArray",
                        format!(
                            "$objectToArray requires a document input, got {}",
                            show(Some(other))
                        ),
                    ),
                }
            }
            Obj::FromArray(e) => {
                let v = e.eval(cx)?;
                match v.view() {
                    None | Some(ValRef::Null | ValRef::Undefined) => Ok(Val::NULL),
                    Some(ValRef::Array(a)) => {
                        let mut out = Document::new();
                        for item in a.iter() {
                            let (k, x) = pair(item)?;
                            if k.contains('\0') {
                                return fail(
                                    "$arrayToObject",
                                    "$arrayToObject: a key contains a NUL byte",
                                );
                            }
                            out.insert(k.to_owned(), x.to_bson());
                        }
                        Ok(Val::Own(Bson::Document(out)))
                    }
                    Some(other) => fail(
                        "$arrayToObject",
                        format!(
                            "$arrayToObject requires an array input, got {}",
                            show(Some(other))
                        ),
                    ),
                }
            }
            Obj::GetField(field, input) => {
                let f = field.eval(cx)?;
                let name = match f.view() {
                    Some(ValRef::String(s)) => s.to_owned(),
                    other => {
                        return fail(
                            "$getField",
                            format!("$getField: 'field' must be a string, got {}", show(other)),
                        )
                    }
                };
                let v = input.eval(cx)?;
                match v {
                    Val::Ref(ValRef::Document(d)) => {
                        Ok(d.get(&name).map_or(Val::Missing, Val::Ref))
                    }
                    Val::Own(Bson::Document(d)) => {
                        Ok(d.get(&name).cloned().map_or(Val::Missing, Val::Own))
                    }
                    Val::Missing => Ok(Val::Missing),
                    other if other.is_nullish() => Ok(Val::NULL),
                    other => fail(
                        "$getField",
                        format!(
                            "$getField: 'input' must be a document, got {}",
                            show(other.view())
                        ),
                    ),
                }
            }
        }
    }
}

fn pair<'v>(item: ValRef<'v>) -> EResult<(&'v str, ValRef<'v>)> {
    let bad = || {
        fail(
            "$arrayToObject",
            format!(
                "$arrayToObject takes [key, value] pairs or {{k, v}} documents, got {}",
                show(Some(item))
            ),
        )
    };
    match item {
        ValRef::Array(p) if p.len() == 2 => match (p.get(0), p.get(1)) {
            (Some(ValRef::String(k)), Some(v)) => Ok((k, v)),
            _ => bad(),
        },
        ValRef::Document(d) => {
            let mut it = d.iter();
            match (it.next(), it.next(), it.next()) {
                (Some(("k", ValRef::String(k))), Some(("v", v)), None) => Ok((k, v)),
                _ => bad(),
            }
        }
        _ => bad(),
    }
}
