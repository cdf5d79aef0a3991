//! `$lookup`: joins each input document with the documents of another
//! collection (or the same one) and stores them as an array field.
//!
//! Equality form `{from, localField, foreignField, as}`: the values at
//! `localField` (array elements individually; null when there are none)
//! become `{foreignField: {$in: values}}` on the foreign collection, planned
//! per input document, so an index on `foreignField` (or the primary key) is
//! used for the lookup. Pipeline form `{from, let, pipeline, as}` (optionally
//! with the equality fields too): the `let` variables are evaluated on the
//! input document and the pipeline runs on the foreign collection with them
//! bound; its leading `$match` is planned like a top-level one, and
//! `{$expr: {$eq: ["$field", "$$var"]}}` becomes an index lookup of the
//! variable's value. A foreign collection that does not exist joins nothing.
//! One document's joined array is limited to 16 MiB (and the memory limit).

use bson::Bson;
use serde_json::Value;

use bson::raw::{CStr, CString, RawArrayBuf, RawBsonRef, RawDocument, RawDocumentBuf};

use super::{remove_path, set_path, Budget, Chain, Flow, Label, Row, RunCx, Sink, Stage};
use crate::aggregate::explain::{LookupExplain, StageExplain};
use crate::aggregate::expr::{self, check_var_name, describe, object_args, Expr, Scope};
use crate::aggregate::parse::Pipeline;
use crate::aggregate::run;
use crate::aggregate::value::size_of_docref;
use crate::doc::{FieldPath, ValRef};
use crate::error::Result;
use crate::exec::read::Target;
use crate::plan::{ExecStats, Explain};
use crate::query::filter::{Filter, InItem, Op};
use crate::query::matcher::visit;

/// A parsed `$lookup`.
#[derive(Debug, Clone)]
pub(crate) struct LookupSpec {
    from: String,
    as_path: Vec<String>,
    /// `as` as a key of stored bytes, when it is a top-level field.
    as_key: Option<CString>,
    equality: Option<(FieldPath, FieldPath)>,
    lets: Vec<Expr>,
    /// The sub-pipeline (empty for the equality form).
    pipeline: Pipeline,
}

fn plain_path(what: &str, v: &Value) -> std::result::Result<FieldPath, String> {
    match v {
        Value::String(s) if !s.starts_with('$') => {
            FieldPath::parse(s).map_err(|e| format!("'{what}': {e}"))
        }
        other => Err(format!(
            "'{what}' must be a field name or dotted path (without '$'), got {}",
            describe(other)
        )),
    }
}

impl LookupSpec {
    /// Parses the argument of `$lookup`.
    pub(crate) fn parse(arg: &Value, scope: &mut Scope, label: &Label) -> Result<LookupSpec> {
        let bad = |m: String| label.invalid(m);
        let m = object_args(
            "$lookup",
            arg,
            &[
                "from",
                "localField",
                "foreignField",
                "as",
                "let",
                "pipeline",
            ],
            &["from", "as"],
        )
        .map_err(bad)?;
        let from = match m["from"] {
            Value::String(s) if !s.is_empty() => s.clone(),
            other => {
                return Err(bad(format!(
                    "'from' must be a collection name, got {}",
                    describe(other)
                )))
            }
        };
        let as_path = plain_path("as", m["as"]).map_err(bad)?.parts().to_vec();
        let equality = match (m.get("localField"), m.get("foreignField")) {
            (Some(l), Some(f)) => Some((
                plain_path("localField", l).map_err(bad)?,
                plain_path("foreignField", f).map_err(bad)?,
            )),
            (None, None) => None,
            _ => {
                return Err(bad(
                    "'localField' and 'foreignField' go together (give both or neither)".into(),
                ))
            }
        };
        let mut names = Vec::new();
        let mut lets = Vec::new();
        if let Some(l) = m.get("let") {
            let Value::Object(vars) = l else {
                return Err(bad(format!(
                    "'let' must be an object of variable definitions, got {}",
                    describe(l)
                )));
            };
            for (k, v) in vars {
                check_var_name(k).map_err(bad)?;
                names.push(k.clone());
                lets.push(expr::parse(v, scope).map_err(|e| bad(format!("'let.{k}': {e}")))?);
            }
        }
        let pipeline = match m.get("pipeline") {
            Some(p) => {
                let mut inner = Scope::with_names(
                    scope
                        .names()
                        .iter()
                        .cloned()
                        .chain(names.iter().cloned())
                        .collect(),
                );
                Some(Pipeline::parse_nested(p, &mut inner, label, true)?)
            }
            None => {
                if !names.is_empty() {
                    return Err(bad(
                        "'let' needs a 'pipeline' that uses the variables".into()
                    ));
                }
                None
            }
        };
        if equality.is_none() && pipeline.is_none() {
            return Err(bad(
                "give 'localField' and 'foreignField', or a 'pipeline' (or both)".into(),
            ));
        }
        let as_key = match as_path.as_slice() {
            [one] => CString::try_from(one.clone()).ok(),
            _ => None,
        };
        Ok(LookupSpec {
            from,
            as_key,
            as_path,
            equality,
            lets,
            pipeline: pipeline.unwrap_or_else(Pipeline::empty),
        })
    }
}

impl LookupSpec {
    /// The `as` field's path.
    pub(crate) fn as_path(&self) -> &[String] {
        &self.as_path
    }
}

/// The values of `path` in `doc` that an equality lookup searches for.
fn local_values(doc: crate::doc::DocRef<'_>, path: &FieldPath) -> Vec<Bson> {
    let mut values = Vec::new();
    visit(ValRef::Document(doc), path.parts(), &mut |v| {
        match v {
            Some(ValRef::Array(a)) => values.extend(a.iter().map(|e| e.to_bson())),
            Some(other) => values.push(other.to_bson()),
            None => {}
        }
        false
    });
    if values.is_empty() {
        values.push(Bson::Null);
    }
    values
}

fn equality_filter(path: &FieldPath, mut values: Vec<Bson>) -> Filter {
    let op = if values.len() == 1 {
        Op::Eq(values.pop().unwrap_or(Bson::Null))
    } else {
        Op::In(values.into_iter().map(InItem::Value).collect())
    };
    Filter::Field {
        path: path.clone(),
        op,
    }
}

/// The running `$lookup`.
pub(crate) struct LookupStage<'p> {
    spec: &'p LookupSpec,
    label: &'p Label,
    next: Chain<'p>,
    /// A following `$unwind` of the `as` field run here (`Some(preserve)`).
    unwind: Option<bool>,
    /// The foreign collection, resolved on first use (`Some(None)`: it does not exist).
    target: Option<Option<std::sync::Arc<Target>>>,
    runs: u64,
    first_plan: Option<Explain>,
    stats: ExecStats,
    pipeline_explain: Vec<StageExplain>,
    explain: bool,
}

impl<'p> LookupStage<'p> {
    /// A `$lookup` feeding `next`; `explain` collects plans and counters.
    /// `unwind` is `Some(preserveNullAndEmptyArrays)` when the next stage,
    /// an `$unwind` of the `as` field, is run here (one output per joined
    /// document, no array built).
    pub(crate) fn new(
        spec: &'p LookupSpec,
        label: &'p Label,
        next: Chain<'p>,
        explain: bool,
        unwind: Option<bool>,
    ) -> Self {
        LookupStage {
            spec,
            label,
            next,
            unwind,
            target: None,
            runs: 0,
            first_plan: None,
            stats: ExecStats::default(),
            pipeline_explain: Vec::new(),
            explain,
        }
    }

    fn joined(&mut self, row: &Row<'_>, rc: &RunCx<'_>) -> Result<Vec<Row<'static>>> {
        let spec = self.spec;
        if self.target.is_none() {
            let target = rc.targets.get(rc.store, rc.txn, &spec.from, rc.committed)?;
            if target.is_none() {
                rc.no_collection(&spec.from);
            }
            self.target = Some(target);
        }
        let doc = row.doc();
        let extra = spec
            .equality
            .as_ref()
            .map(|(local, foreign)| equality_filter(foreign, local_values(doc, local)));
        let mut vars = rc.vars.clone();
        for (i, e) in spec.lets.iter().enumerate() {
            let mut cx = rc.cx(doc);
            let v = e
                .eval(&mut cx)
                .map_err(|err| self.label.expr_error(&format!("let.{i}"), err))?;
            vars.push(v.into_bson());
        }
        let Some(Some(target)) = self.target.clone() else {
            return Ok(Vec::new());
        };
        let limit = rc.memory_limit.min(crate::MAX_DOCUMENT_SIZE);
        let mut budget = Budget::new(limit);
        let mut out = Vec::new();
        let label = self.label;
        let collect = |r: Row<'_>| -> Result<Flow> {
            budget.charge(size_of_docref(r.doc()), label)?;
            out.push(match r {
                Row::Raw(raw) => Row::Buf(raw.to_owned()),
                Row::Buf(b) => Row::Buf(b),
                Row::Own(d) => Row::Own(d),
            });
            Ok(Flow::More)
        };
        let sub_rc = rc.with_vars(vars);
        let explain = self.explain && self.runs == 0;
        let report = run::execute(
            &spec.pipeline,
            Some(&target),
            &sub_rc,
            extra,
            Box::new(Sink::new(collect)),
            self.explain,
            true,
        )?;
        self.runs += 1;
        if let Some(r) = report {
            let st = r.source.stats;
            self.stats.keys_examined += st.keys_examined;
            self.stats.docs_examined += st.docs_examined;
            self.stats.returned += st.returned;
            if explain {
                self.first_plan = Some(r.source);
                self.pipeline_explain = r.stages;
            }
        }
        Ok(out)
    }
}

/// `row` with its top-level field `key` set to `value` (in place when it
/// exists), or removed when `value` is `None`, as stored bytes.
fn with_raw_field(
    row: &RawDocument,
    key: &CStr,
    value: Option<RawBsonRef<'_>>,
) -> Result<RawDocumentBuf> {
    let bad = |e: bson::error::Error| crate::Error::Corrupt {
        location: "a document in a $lookup".into(),
        message: e.to_string(),
        lsn: None,
    };
    let mut out = RawDocumentBuf::new();
    let mut placed = false;
    for el in row.iter_elements() {
        let el = el.map_err(bad)?;
        if el.key() == key {
            if let (false, Some(v)) = (placed, value) {
                out.append(key, v);
            }
            placed = true;
            continue;
        }
        out.append(el.key(), el.value().map_err(bad)?);
    }
    if let (false, Some(v)) = (placed, value) {
        out.append(key, v);
    }
    Ok(out)
}

fn raw_of<'r>(row: &'r Row<'_>) -> Option<&'r RawDocument> {
    match row {
        Row::Raw(r) => Some(r),
        Row::Buf(b) => Some(b),
        Row::Own(_) => None,
    }
}

impl LookupStage<'_> {
    /// `row` with the `as` field set to `value` (`None`: removed).
    fn output(&self, row: &Row<'_>, value: Option<Joined<'_>>) -> Result<Row<'static>> {
        if let (Some(raw), Some(key)) = (raw_of(row), &self.spec.as_key) {
            let raw_value = match &value {
                None => Some(None),
                Some(Joined::One(j)) => raw_of(j).map(|d| Some(RawBsonRef::Document(d))),
                Some(Joined::All(_)) => None,
            };
            if let Some(v) = raw_value {
                return Ok(Row::Buf(with_raw_field(raw, key, v)?));
            }
            if let Some(Joined::All(items)) = &value {
                if items.iter().all(|j| raw_of(j).is_some()) {
                    let mut arr = RawArrayBuf::new();
                    for j in items.iter() {
                        if let Some(d) = raw_of(j) {
                            arr.push(RawBsonRef::Document(d));
                        }
                    }
                    return Ok(Row::Buf(with_raw_field(
                        raw,
                        key,
                        Some(RawBsonRef::Array(&arr)),
                    )?));
                }
            }
        }
        let mut doc = row.doc().to_document();
        match value {
            None => {
                // What `$lookup` then `$unwind` leave: the field set to [] and
                // removed again (intermediate documents stay).
                set_path(&mut doc, &self.spec.as_path, Bson::Array(Vec::new()));
                remove_path(&mut doc, &self.spec.as_path);
            }
            Some(Joined::One(j)) => set_path(
                &mut doc,
                &self.spec.as_path,
                Bson::Document(j.doc().to_document()),
            ),
            Some(Joined::All(items)) => set_path(
                &mut doc,
                &self.spec.as_path,
                Bson::Array(
                    items
                        .iter()
                        .map(|j| Bson::Document(j.doc().to_document()))
                        .collect(),
                ),
            ),
        }
        Ok(Row::Own(doc))
    }
}

/// What goes into the `as` field.
enum Joined<'j> {
    /// One joined document (`$lookup` + `$unwind`).
    One(&'j Row<'static>),
    /// The array of all of them.
    All(&'j [Row<'static>]),
}

impl Stage for LookupStage<'_> {
    fn push(&mut self, row: Row<'_>, rc: &RunCx<'_>) -> Result<Flow> {
        let joined = self.joined(&row, rc)?;
        match self.unwind {
            None => {
                let out = self.output(&row, Some(Joined::All(&joined)))?;
                self.next.push(out, rc)
            }
            Some(preserve) => {
                if joined.is_empty() {
                    if !preserve {
                        return Ok(Flow::More);
                    }
                    let out = self.output(&row, None)?;
                    return self.next.push(out, rc);
                }
                for j in &joined {
                    let out = self.output(&row, Some(Joined::One(j)))?;
                    if self.next.push(out, rc)? == Flow::Stop {
                        return Ok(Flow::Stop);
                    }
                }
                Ok(Flow::More)
            }
        }
    }

    fn finish(&mut self, rc: &RunCx<'_>) -> Result<()> {
        self.next.finish(rc)
    }

    fn explain(&self, out: &mut Vec<StageExplain>) {
        let mut e = StageExplain::named(self.label.name);
        let mut plan = self.first_plan.clone();
        if let Some(p) = plan.as_mut() {
            p.stats = self.stats;
        }
        e.lookup = Some(Box::new(LookupExplain {
            from: self.spec.from.clone(),
            local_field: self.spec.equality.as_ref().map(|(l, _)| l.to_string()),
            foreign_field: self.spec.equality.as_ref().map(|(_, f)| f.to_string()),
            lookups: self.runs,
            plan,
            pipeline: self.pipeline_explain.clone(),
            unwinding: self.unwind.is_some(),
        }));
        out.push(e);
        if self.unwind.is_some() {
            out.push(StageExplain::named("$unwind"));
        }
        self.next.explain(out);
    }
}
