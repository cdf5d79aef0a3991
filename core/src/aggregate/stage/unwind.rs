//! `$unwind`: one output document per element of an array field, the field
//! replaced by the element (and `includeArrayIndex` set to its position).
//!
//! A field that holds a single non-array value unwinds to itself (index
//! null). Missing, null and empty arrays produce nothing unless
//! `preserveNullAndEmptyArrays` is true; then the document passes as is
//! (an empty array is removed, null stays, index null). The path walks
//! embedded documents only, not arrays.

use bson::Bson;
use serde_json::Value;

use super::{remove_path, set_path, Chain, Flow, Label, Row, RunCx, Stage};
use crate::aggregate::explain::StageExplain;
use crate::aggregate::expr::{describe, object_args, path_parts, PResult};
use crate::doc::{DocRef, ValRef};
use crate::error::Result;

/// A parsed `$unwind`.
#[derive(Debug, Clone)]
pub(crate) struct UnwindSpec {
    path: Vec<String>,
    index: Option<Vec<String>>,
    preserve: bool,
}

fn field_path(what: &str, v: &Value) -> PResult<Vec<String>> {
    match v {
        Value::String(s) if s.starts_with('$') && !s.starts_with("$$") => path_parts(&s[1..], s),
        other => Err(format!(
            "{what} must be a field path starting with '$' (\"$sizes\"), got {}",
            describe(other)
        )),
    }
}

impl UnwindSpec {
    /// Parses `"$path"` or `{path, includeArrayIndex, preserveNullAndEmptyArrays}`.
    pub(crate) fn parse(arg: &Value) -> PResult<UnwindSpec> {
        match arg {
            Value::String(_) => Ok(UnwindSpec {
                path: field_path("the path", arg)?,
                index: None,
                preserve: false,
            }),
            Value::Object(_) => {
                let m = object_args(
                    "$unwind",
                    arg,
                    &["path", "includeArrayIndex", "preserveNullAndEmptyArrays"],
                    &["path"],
                )?;
                let path = field_path("'path'", m["path"])?;
                let index = match m.get("includeArrayIndex") {
                    None => None,
                    Some(Value::String(s)) if !s.starts_with('$') => {
                        Some(path_parts(s, s).map_err(|e| format!("'includeArrayIndex': {e}"))?)
                    }
                    Some(other) => {
                        return Err(format!(
                        "'includeArrayIndex' must be a field name not starting with '$', got {}",
                        describe(other)
                    ))
                    }
                };
                let preserve = match m.get("preserveNullAndEmptyArrays") {
                    None => false,
                    Some(Value::Bool(b)) => *b,
                    Some(other) => {
                        return Err(format!(
                            "'preserveNullAndEmptyArrays' must be true or false, got {}",
                            describe(other)
                        ))
                    }
                };
                Ok(UnwindSpec {
                    path,
                    index,
                    preserve,
                })
            }
            other => Err(format!(
                "takes a field path (\"$sizes\") or an object with 'path', got {}",
                describe(other)
            )),
        }
    }
}

impl UnwindSpec {
    /// `Some(preserveNullAndEmptyArrays)` when this unwinds exactly `path`
    /// without `includeArrayIndex` (so a `$lookup` into `path` can run it).
    pub(crate) fn coalesces_with(&self, path: &[String]) -> Option<bool> {
        (self.path == path && self.index.is_none()).then_some(self.preserve)
    }
}

fn lookup<'a>(doc: DocRef<'a>, path: &[String]) -> Option<ValRef<'a>> {
    let (head, rest) = path.split_first()?;
    let v = doc.get(head)?;
    if rest.is_empty() {
        return Some(v);
    }
    match v {
        ValRef::Document(d) => lookup(d, rest),
        _ => None,
    }
}

/// The running `$unwind`.
pub(crate) struct UnwindStage<'p> {
    spec: &'p UnwindSpec,
    label: &'p Label,
    next: Chain<'p>,
}

impl<'p> UnwindStage<'p> {
    /// An `$unwind` feeding `next`.
    pub(crate) fn new(spec: &'p UnwindSpec, label: &'p Label, next: Chain<'p>) -> Self {
        UnwindStage { spec, label, next }
    }
}

impl Stage for UnwindStage<'_> {
    fn push(&mut self, row: Row<'_>, rc: &RunCx<'_>) -> Result<Flow> {
        let spec = self.spec;
        let doc = row.doc();
        let value = lookup(doc, &spec.path);
        let with_index = |d: &mut bson::Document, i: Option<usize>| {
            if let Some(ix) = &spec.index {
                set_path(d, ix, i.map_or(Bson::Null, |i| Bson::Int64(i as i64)));
            }
        };
        match value {
            Some(ValRef::Array(a)) if !a.is_empty() => {
                let base = doc.to_document();
                for (i, e) in a.iter().enumerate() {
                    let mut out = base.clone();
                    set_path(&mut out, &spec.path, e.to_bson());
                    with_index(&mut out, Some(i));
                    if self.next.push(Row::Own(out), rc)? == Flow::Stop {
                        return Ok(Flow::Stop);
                    }
                }
                Ok(Flow::More)
            }
            Some(ValRef::Array(_)) | Some(ValRef::Null | ValRef::Undefined) | None => {
                if !spec.preserve {
                    return Ok(Flow::More);
                }
                let mut out = doc.to_document();
                if matches!(value, Some(ValRef::Array(_))) {
                    remove_path(&mut out, &spec.path);
                }
                with_index(&mut out, None);
                self.next.push(Row::Own(out), rc)
            }
            Some(_) => {
                if spec.index.is_none() {
                    return self.next.push(row, rc);
                }
                let mut out = doc.to_document();
                with_index(&mut out, None);
                self.next.push(Row::Own(out), rc)
            }
        }
    }

    fn finish(&mut self, rc: &RunCx<'_>) -> Result<()> {
        self.next.finish(rc)
    }

    fn explain(&self, out: &mut Vec<StageExplain>) {
        out.push(StageExplain::named(self.label.name));
        self.next.explain(out);
    }
}
