//! Stages that reshape each document: `$project`, `$addFields` (`$set`),
//! `$unset`, `$replaceRoot` (`$replaceWith`).
//!
//! A specification becomes a tree of paths ([`Tree`]): included, excluded or
//! computed fields and sub-documents (dotted keys and nested objects are the
//! same thing). `$project` is an inclusion projection (listed and computed
//! fields, `_id` unless excluded) or an exclusion projection (everything but
//! the listed fields); the two cannot be mixed except for `_id`. Included
//! fields keep their input order; computed fields follow in specification
//! order. `$addFields` keeps every field and sets the computed ones (an
//! existing field is replaced where it stands, a new one is appended; a
//! computed value that is missing, such as `$$REMOVE`, removes the field).
//! Paths through arrays apply to each document element. Every expression sees
//! the stage's input document (`$$ROOT`), not a partly built output.

use bson::{Bson, Document};
use serde_json::{Map, Value};

use super::{Chain, Flow, Label, Row, RunCx, Stage};
use crate::aggregate::explain::StageExplain;
use crate::aggregate::expr::{self, describe, path_parts, Cx, Expr, PResult, Scope};
use crate::doc::{ArrRef, DocRef, ValRef};
use crate::error::Result;

/// The field `$project` keeps unless told otherwise.
const ID: &str = "_id";

/// What a specification does with a path.
#[derive(Debug, Clone)]
enum Node {
    Include,
    Exclude,
    Computed(Expr),
    Sub(Tree),
}

/// The paths of a specification at one level, in specification order.
#[derive(Debug, Clone, Default)]
struct Tree {
    fields: Vec<(String, Node)>,
}

impl Tree {
    fn get(&self, k: &str) -> Option<&Node> {
        self.fields.iter().find(|(n, _)| n == k).map(|(_, v)| v)
    }

    fn insert(&mut self, parts: &[String], node: Node, key: &str) -> PResult<()> {
        let Some((head, rest)) = parts.split_first() else {
            return Ok(());
        };
        let collision =
            || format!("'{key}': path collision with another field of the specification");
        let pos = self.fields.iter().position(|(n, _)| n == head);
        if rest.is_empty() {
            if pos.is_some() {
                return Err(collision());
            }
            self.fields.push((head.clone(), node));
            return Ok(());
        }
        let idx = match pos {
            Some(i) => i,
            None => {
                self.fields.push((head.clone(), Node::Sub(Tree::default())));
                self.fields.len() - 1
            }
        };
        match &mut self.fields[idx].1 {
            Node::Sub(t) => t.insert(rest, node, key),
            _ => Err(collision()),
        }
    }

    fn has_computed(&self) -> bool {
        self.fields.iter().any(|(_, n)| match n {
            Node::Computed(_) => true,
            Node::Sub(t) => t.has_computed(),
            _ => false,
        })
    }
}

/// How a [`ShapeSpec`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Include,
    Exclude,
    AddFields,
}

/// A parsed `$project`, `$addFields`/`$set` or `$unset`.
#[derive(Debug, Clone)]
pub(crate) struct ShapeSpec {
    mode: Mode,
    tree: Tree,
    keep_id: bool,
}

/// Which stage is being parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShapeKind {
    /// `$project`.
    Project,
    /// `$addFields` / `$set`.
    AddFields,
}

fn flag(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        _ => None,
    }
}

fn is_nested_spec(m: &Map<String, Value>) -> bool {
    !m.is_empty() && !m.keys().any(|k| k.starts_with('$'))
}

fn parse_tree(
    kind: ShapeKind,
    map: &Map<String, Value>,
    top: bool,
    scope: &mut Scope,
    tree: &mut Tree,
    keep_id: &mut Option<bool>,
) -> PResult<()> {
    for (key, v) in map {
        let parts = path_parts(key, key).map_err(|m| format!("invalid field name: {m}"))?;
        let node = match (kind, v) {
            (ShapeKind::Project, v) if flag(v).is_some() => {
                let on = flag(v).unwrap_or(false);
                if top && key == ID {
                    *keep_id = Some(on);
                    continue;
                }
                if on {
                    Node::Include
                } else {
                    Node::Exclude
                }
            }
            (_, Value::Object(m)) if is_nested_spec(m) => {
                let mut sub = Tree::default();
                parse_tree(kind, m, false, scope, &mut sub, keep_id)?;
                Node::Sub(sub)
            }
            (ShapeKind::Project, Value::Object(m)) if m.is_empty() => {
                return Err(format!(
                    "'{key}': an empty object is not a valid $project value; use 1 to include, 0 to exclude or an expression"
                ))
            }
            (_, v) => Node::Computed(expr::parse(v, scope).map_err(|m| format!("'{key}': {m}"))?),
        };
        tree.insert(&parts, node, key)?;
    }
    Ok(())
}

fn count(tree: &Tree, include: &mut usize, exclude: &mut usize) {
    for (_, n) in &tree.fields {
        match n {
            Node::Include | Node::Computed(_) => *include += 1,
            Node::Exclude => *exclude += 1,
            Node::Sub(t) => count(t, include, exclude),
        }
    }
}

impl ShapeSpec {
    /// Parses `$project` or `$addFields`.
    pub(crate) fn parse(kind: ShapeKind, arg: &Value, scope: &mut Scope) -> PResult<ShapeSpec> {
        let Value::Object(map) = arg else {
            return Err(format!("takes an object of fields, got {}", describe(arg)));
        };
        if map.is_empty() {
            return Err("needs at least one field".into());
        }
        let mut tree = Tree::default();
        let mut keep_id = None;
        parse_tree(kind, map, true, scope, &mut tree, &mut keep_id)?;
        if kind == ShapeKind::AddFields {
            return Ok(ShapeSpec {
                mode: Mode::AddFields,
                tree,
                keep_id: true,
            });
        }
        let (mut inc, mut exc) = (0, 0);
        count(&tree, &mut inc, &mut exc);
        if inc > 0 && exc > 0 {
            return Err(if tree.has_computed() {
                "cannot use expressions or inclusions in an exclusion projection (only _id may be excluded \
                 beside included or computed fields; use $$REMOVE to drop a field conditionally)"
                    .into()
            } else {
                "cannot mix inclusion and exclusion in one $project (only _id may be excluded from an inclusion)"
                    .into()
            });
        }
        let mode = if inc > 0 || (exc == 0 && keep_id == Some(true)) {
            Mode::Include
        } else {
            Mode::Exclude
        };
        Ok(ShapeSpec {
            mode,
            tree,
            keep_id: keep_id.unwrap_or(true),
        })
    }

    /// Parses `$unset`: a field name or an array of them.
    pub(crate) fn parse_unset(arg: &Value) -> PResult<ShapeSpec> {
        let names: Vec<&str> = match arg {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) if !items.is_empty() => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s.as_str()),
                    other => Err(format!(
                        "takes field names (strings), got {}",
                        describe(other)
                    )),
                })
                .collect::<PResult<Vec<_>>>()?,
            other => {
                return Err(format!(
                    "takes a field name or a non-empty array of field names, got {}",
                    describe(other)
                ))
            }
        };
        let mut tree = Tree::default();
        let mut keep_id = true;
        for n in names {
            let parts = path_parts(n, n).map_err(|m| format!("invalid field name: {m}"))?;
            if n == ID {
                keep_id = false;
                continue;
            }
            tree.insert(&parts, Node::Exclude, n)?;
        }
        Ok(ShapeSpec {
            mode: Mode::Exclude,
            tree,
            keep_id,
        })
    }

    /// Applies the specification to one document.
    fn apply<'a>(&'a self, doc: DocRef<'_>, cx: &mut Cx<'a>) -> ApplyResult<Document> {
        match self.mode {
            Mode::Include => {
                let mut out = include(&self.tree, doc, cx, true, self.keep_id)?;
                if !self.keep_id {
                    out.remove(ID);
                }
                Ok(out)
            }
            Mode::Exclude => {
                let mut out = exclude(&self.tree, doc);
                if !self.keep_id {
                    out.remove(ID);
                }
                Ok(out)
            }
            Mode::AddFields => {
                let mut out = doc.to_document();
                add_fields(&self.tree, &mut out, cx)?;
                Ok(out)
            }
        }
    }
}

type ApplyResult<T> = std::result::Result<T, (String, expr::ExprError)>;

fn eval_into<'a>(e: &'a Expr, cx: &mut Cx<'a>, field: &str) -> ApplyResult<Option<Bson>> {
    e.eval(cx)
        .map(|v| v.into_bson())
        .map_err(|err| (field.to_owned(), err))
}

fn include<'a>(
    tree: &'a Tree,
    doc: DocRef<'_>,
    cx: &mut Cx<'a>,
    top: bool,
    keep_id: bool,
) -> ApplyResult<Document> {
    let mut out = Document::new();
    for (k, v) in doc.iter() {
        if top && k == ID {
            if keep_id {
                out.insert(k, v.to_bson());
            }
            continue;
        }
        match tree.get(k) {
            Some(Node::Include) => {
                out.insert(k, v.to_bson());
            }
            Some(Node::Sub(sub)) => match v {
                ValRef::Document(d) => {
                    out.insert(k, include(sub, d, cx, false, keep_id)?);
                }
                ValRef::Array(a) => {
                    out.insert(k, include_array(sub, a, cx, keep_id)?);
                }
                _ => {}
            },
            _ => {}
        }
    }
    // Computed fields (and sub-documents holding them) in specification order.
    for (k, node) in &tree.fields {
        match node {
            Node::Computed(e) => match eval_into(e, cx, k)? {
                Some(b) => {
                    out.insert(k.clone(), b);
                }
                None => {
                    out.remove(k);
                }
            },
            Node::Sub(sub) if sub.has_computed() && !out.contains_key(k) => {
                let empty = Document::new();
                let built = include(sub, DocRef::Owned(&empty), cx, false, keep_id)?;
                out.insert(k.clone(), built);
            }
            _ => {}
        }
    }
    Ok(out)
}

fn include_array<'a>(
    tree: &'a Tree,
    a: ArrRef<'_>,
    cx: &mut Cx<'a>,
    keep_id: bool,
) -> ApplyResult<Bson> {
    let mut items = Vec::new();
    for e in a.iter() {
        match e {
            ValRef::Document(d) => {
                items.push(Bson::Document(include(tree, d, cx, false, keep_id)?))
            }
            ValRef::Array(inner) => items.push(include_array(tree, inner, cx, keep_id)?),
            _ if tree.has_computed() => {
                let empty = Document::new();
                items.push(Bson::Document(include(
                    tree,
                    DocRef::Owned(&empty),
                    cx,
                    false,
                    keep_id,
                )?));
            }
            _ => {}
        }
    }
    Ok(Bson::Array(items))
}

fn exclude(tree: &Tree, doc: DocRef<'_>) -> Document {
    let mut out = Document::new();
    for (k, v) in doc.iter() {
        match tree.get(k) {
            Some(Node::Exclude) => {}
            Some(Node::Sub(sub)) => {
                out.insert(k, exclude_value(sub, v));
            }
            _ => {
                out.insert(k, v.to_bson());
            }
        }
    }
    out
}

fn exclude_value(tree: &Tree, v: ValRef<'_>) -> Bson {
    match v {
        ValRef::Document(d) => Bson::Document(exclude(tree, d)),
        ValRef::Array(a) => Bson::Array(a.iter().map(|e| exclude_value(tree, e)).collect()),
        other => other.to_bson(),
    }
}

fn add_fields<'a>(tree: &'a Tree, out: &mut Document, cx: &mut Cx<'a>) -> ApplyResult<()> {
    for (k, node) in &tree.fields {
        match node {
            Node::Computed(e) => match eval_into(e, cx, k)? {
                // `insert` replaces an existing field where it stands.
                Some(b) => {
                    out.insert(k.clone(), b);
                }
                None => {
                    out.remove(k);
                }
            },
            Node::Sub(sub) => match out.get_mut(k) {
                Some(Bson::Document(d)) => add_fields(sub, d, cx)?,
                Some(Bson::Array(items)) => {
                    for item in items.iter_mut() {
                        if !matches!(item, Bson::Document(_)) {
                            *item = Bson::Document(Document::new());
                        }
                        if let Bson::Document(d) = item {
                            add_fields(sub, d, cx)?;
                        }
                    }
                }
                _ => {
                    let mut d = Document::new();
                    add_fields(sub, &mut d, cx)?;
                    out.insert(k.clone(), d);
                }
            },
            Node::Include | Node::Exclude => {}
        }
    }
    Ok(())
}

/// The running `$project` / `$addFields` / `$unset`.
pub(crate) struct ShapeStage<'p> {
    spec: &'p ShapeSpec,
    label: &'p Label,
    next: Chain<'p>,
}

impl<'p> ShapeStage<'p> {
    /// A reshaping stage feeding `next`.
    pub(crate) fn new(spec: &'p ShapeSpec, label: &'p Label, next: Chain<'p>) -> Self {
        ShapeStage { spec, label, next }
    }
}

impl Stage for ShapeStage<'_> {
    fn push(&mut self, row: Row<'_>, rc: &RunCx<'_>) -> Result<Flow> {
        let doc = row.doc();
        let mut cx = rc.cx(doc);
        let out = self
            .spec
            .apply(doc, &mut cx)
            .map_err(|(field, e)| self.label.expr_error(&field, e))?;
        drop(cx);
        self.next.push(Row::Own(out), rc)
    }

    fn finish(&mut self, rc: &RunCx<'_>) -> Result<()> {
        self.next.finish(rc)
    }

    fn explain(&self, out: &mut Vec<StageExplain>) {
        out.push(StageExplain::named(self.label.name));
        self.next.explain(out);
    }
}

/// The running `$replaceRoot` / `$replaceWith`.
pub(crate) struct ReplaceRootStage<'p> {
    expr: &'p Expr,
    label: &'p Label,
    next: Chain<'p>,
}

impl<'p> ReplaceRootStage<'p> {
    /// A `$replaceRoot` with `newRoot` = `expr`, feeding `next`.
    pub(crate) fn new(expr: &'p Expr, label: &'p Label, next: Chain<'p>) -> Self {
        ReplaceRootStage { expr, label, next }
    }
}

impl Stage for ReplaceRootStage<'_> {
    fn push(&mut self, row: Row<'_>, rc: &RunCx<'_>) -> Result<Flow> {
        let doc = row.doc();
        let mut cx = rc.cx(doc);
        let v = self
            .expr
            .eval(&mut cx)
            .map_err(|e| self.label.expr_error("newRoot", e))?;
        let out = match v.view() {
            Some(ValRef::Document(d)) => d.to_document(),
            other => {
                return Err(crate::Error::TypeMismatch {
                    operator: self.label.name.to_owned(),
                    path: "newRoot".into(),
                    message: format!(
                        "'newRoot' must evaluate to a document, but it gave {} (in {})",
                        crate::aggregate::value::show(other),
                        self.label.text()
                    ),
                })
            }
        };
        drop(cx);
        self.next.push(Row::Own(out), rc)
    }

    fn finish(&mut self, rc: &RunCx<'_>) -> Result<()> {
        self.next.finish(rc)
    }

    fn explain(&self, out: &mut Vec<StageExplain>) {
        out.push(StageExplain::named(self.label.name));
        self.next.explain(out);
    }
}
