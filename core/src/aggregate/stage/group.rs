//! `$group` and `$bucket` (and `$sortByCount`, which parses into a `$group`
//! and a `$sort`): blocking stages that fold documents into groups.
//!
//! A group's key is the value of `_id` in the order-preserving key encoding
//! (`keys/`), so values MongoDB considers equal share a group: `1` and `1.0`,
//! `null` and missing. Groups come out in the order their first document
//! arrived (MongoDB leaves the order unspecified); `$bucket` emits its buckets
//! in boundary order, then the default bucket. Every group and accumulated
//! value is charged to the stage's memory budget.

use std::collections::HashMap;

use bson::{Bson, Document};
use serde_json::Value;

use super::{drain, Budget, Chain, Flow, Label, Row, RunCx, Stage};
use crate::aggregate::accumulator::{self, AccOp, AccSpec, AccState, STATE_BYTES};
use crate::aggregate::explain::StageExplain;
use crate::aggregate::expr::{self, describe, Expr, PResult, Scope};
use crate::aggregate::value::{show, size_of_bson, Val};
use crate::doc::{compare, type_rank, DocRef, ValRef};
use crate::error::{Error, Result};
use crate::keys::{encode_missing, encode_value};

/// A parsed `$group`.
#[derive(Debug, Clone)]
pub(crate) struct GroupSpec {
    /// The group key.
    pub(crate) id: Expr,
    /// The output fields.
    pub(crate) accs: Vec<AccSpec>,
}

fn check_output_field(name: &str) -> PResult<()> {
    if name.starts_with('$') || name.contains('.') || name.is_empty() || name.contains('\0') {
        return Err(format!(
            "'{name}' is not a valid output field name (no leading '$', no '.')"
        ));
    }
    Ok(())
}

fn parse_outputs(
    map: &serde_json::Map<String, Value>,
    skip: &str,
    scope: &mut Scope,
) -> PResult<Vec<AccSpec>> {
    let mut accs = Vec::new();
    for (k, v) in map {
        if k == skip {
            continue;
        }
        check_output_field(k)?;
        accs.push(accumulator::parse(k, v, scope)?);
    }
    Ok(accs)
}

impl GroupSpec {
    /// Parses the argument of `$group`.
    pub(crate) fn parse(arg: &Value, scope: &mut Scope) -> PResult<GroupSpec> {
        let Value::Object(map) = arg else {
            return Err(format!(
                "takes an object such as {{\"_id\": \"$city\", \"n\": {{\"$sum\": 1}}}}, got {}",
                describe(arg)
            ));
        };
        let id_spec = map.get("_id").ok_or_else(|| {
            "needs an '_id' field (the group key; null groups everything together)".to_string()
        })?;
        let id = expr::parse(id_spec, scope).map_err(|m| format!("'_id': {m}"))?;
        Ok(GroupSpec {
            id,
            accs: parse_outputs(map, "_id", scope)?,
        })
    }

    /// `{_id: expr, count: {$sum: 1}}` (`$sortByCount`).
    pub(crate) fn count_by(id: Expr) -> GroupSpec {
        GroupSpec {
            id,
            accs: vec![AccSpec {
                field: "count".into(),
                op: AccOp::Sum,
                arg: Expr::Const(Bson::Int32(1)),
            }],
        }
    }
}

/// Groups under construction.
struct Grouper<'p> {
    accs: &'p [AccSpec],
    index: HashMap<Vec<u8>, usize>,
    groups: Vec<(Vec<u8>, Bson, Vec<AccState>)>,
    budget: Budget,
}

impl<'p> Grouper<'p> {
    fn new(accs: &'p [AccSpec], memory_limit: usize) -> Self {
        Grouper {
            accs,
            index: HashMap::new(),
            groups: Vec::new(),
            budget: Budget::new(memory_limit),
        }
    }

    /// Adds `doc` to the group `key` (created with `_id` = `id()` when new).
    fn add(
        &mut self,
        key: &[u8],
        id: impl FnOnce() -> Bson,
        doc: DocRef<'_>,
        rc: &RunCx<'_>,
        label: &Label,
    ) -> Result<()> {
        let pos = match self.index.get(key) {
            Some(p) => *p,
            None => {
                let id = id();
                let bytes = 2 * key.len() + size_of_bson(&id) + self.accs.len() * STATE_BYTES + 96;
                self.budget.charge(bytes, label)?;
                let states = self.accs.iter().map(|a| AccState::new(a.op)).collect();
                self.groups.push((key.to_vec(), id, states));
                self.index.insert(key.to_vec(), self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        let states = &mut self.groups[pos].2;
        let mut grown = 0;
        for (spec, state) in self.accs.iter().zip(states.iter_mut()) {
            if spec.op == AccOp::Count {
                let _ = state.add(spec.op, &Val::NULL);
                continue;
            }
            let mut cx = rc.cx(doc);
            let v = spec
                .arg
                .eval(&mut cx)
                .map_err(|e| label.expr_error(&spec.field, e))?;
            grown += state
                .add(spec.op, &v)
                .map_err(|message| Error::TypeMismatch {
                    operator: "$mergeObjects".into(),
                    path: spec.field.clone(),
                    message: format!("{message} (in {})", label.text()),
                })?;
        }
        if grown > 0 {
            self.budget.charge(grown, label)?;
        }
        Ok(())
    }

    /// The output documents, in group order.
    fn results(&mut self) -> impl Iterator<Item = Row<'static>> + '_ {
        let accs = self.accs;
        self.index.clear();
        std::mem::take(&mut self.groups)
            .into_iter()
            .map(move |(_, id, states)| {
                let mut d = Document::new();
                d.insert("_id", id);
                for (spec, state) in accs.iter().zip(states) {
                    d.insert(spec.field.clone(), state.result(spec.op));
                }
                Row::Own(d)
            })
    }
}

/// The running `$group`.
pub(crate) struct GroupStage<'p> {
    spec: &'p GroupSpec,
    grouper: Grouper<'p>,
    key: Vec<u8>,
    label: &'p Label,
    next: Chain<'p>,
    groups_out: u64,
}

impl<'p> GroupStage<'p> {
    /// A `$group` feeding `next`.
    pub(crate) fn new(
        spec: &'p GroupSpec,
        memory_limit: usize,
        label: &'p Label,
        next: Chain<'p>,
    ) -> Self {
        GroupStage {
            spec,
            grouper: Grouper::new(&spec.accs, memory_limit),
            key: Vec::new(),
            label,
            next,
            groups_out: 0,
        }
    }
}

impl Stage for GroupStage<'_> {
    fn push(&mut self, row: Row<'_>, rc: &RunCx<'_>) -> Result<Flow> {
        let doc = row.doc();
        let mut cx = rc.cx(doc);
        let id = self
            .spec
            .id
            .eval(&mut cx)
            .map_err(|e| self.label.expr_error("_id", e))?;
        self.key.clear();
        match id.view() {
            Some(v) => encode_value(&mut self.key, &v, false),
            None => encode_missing(&mut self.key, false),
        }
        let key = std::mem::take(&mut self.key);
        let out = self
            .grouper
            .add(&key, || id.into_bson_or_null(), doc, rc, self.label);
        self.key = key;
        out?;
        Ok(Flow::More)
    }

    fn finish(&mut self, rc: &RunCx<'_>) -> Result<()> {
        self.groups_out = self.grouper.groups.len() as u64;
        let rows = self.grouper.results();
        drain(rows, self.next.as_mut(), rc)
    }

    fn explain(&self, out: &mut Vec<StageExplain>) {
        let mut e = StageExplain::named(self.label.name);
        e.memory_peak = Some(self.grouper.budget.peak() as u64);
        e.groups = Some(self.groups_out);
        out.push(e);
        self.next.explain(out);
    }
}

/// A parsed `$bucket`.
#[derive(Debug, Clone)]
pub(crate) struct BucketSpec {
    group_by: Expr,
    boundaries: Vec<Bson>,
    default: Option<Bson>,
    accs: Vec<AccSpec>,
}

impl BucketSpec {
    /// Parses the argument of `$bucket`.
    pub(crate) fn parse(arg: &Value, scope: &mut Scope) -> PResult<BucketSpec> {
        let m = expr::object_args(
            "$bucket",
            arg,
            &["groupBy", "boundaries", "default", "output"],
            &["groupBy", "boundaries"],
        )?;
        let group_by = expr::parse(m["groupBy"], scope).map_err(|e| format!("'groupBy': {e}"))?;
        if !matches!(m["groupBy"], Value::String(s) if s.starts_with('$'))
            && !matches!(m["groupBy"], Value::Object(_))
        {
            return Err(format!(
                "'groupBy' must be a field path or an expression object, got {}",
                describe(m["groupBy"])
            ));
        }
        let Value::Array(items) = m["boundaries"] else {
            return Err(format!(
                "'boundaries' must be an array of at least two constant values, got {}",
                describe(m["boundaries"])
            ));
        };
        if items.len() < 2 {
            return Err("'boundaries' needs at least two values".into());
        }
        let mut boundaries = Vec::with_capacity(items.len());
        for b in items {
            match expr::parse(b, scope)? {
                Expr::Const(c) => boundaries.push(c),
                _ => {
                    return Err(format!(
                        "'boundaries' must be constants, got {}",
                        describe(b)
                    ))
                }
            }
        }
        for w in boundaries.windows(2) {
            let (a, b) = (ValRef::from(&w[0]), ValRef::from(&w[1]));
            if type_rank(&a) != type_rank(&b) {
                return Err(format!(
                    "'boundaries' must all be of the same type, got {} and {}",
                    show(Some(a)),
                    show(Some(b))
                ));
            }
            if !compare(&a, &b).is_lt() {
                return Err(
                    "'boundaries' must be sorted in ascending order, without repeats".into(),
                );
            }
        }
        let default = match m.get("default") {
            None => None,
            Some(d) => match expr::parse(d, scope)? {
                Expr::Const(c) => {
                    let v = ValRef::from(&c);
                    let lo = ValRef::from(&boundaries[0]);
                    let hi = ValRef::from(&boundaries[boundaries.len() - 1]);
                    let inside = type_rank(&v) == type_rank(&lo)
                        && !compare(&v, &lo).is_lt()
                        && compare(&v, &hi).is_lt();
                    if inside {
                        return Err(
                            "'default' must be below the lowest boundary, at or above the highest, or of another type"
                                .into(),
                        );
                    }
                    Some(c)
                }
                _ => return Err(format!("'default' must be a constant, got {}", describe(d))),
            },
        };
        let accs = match m.get("output") {
            None => vec![AccSpec {
                field: "count".into(),
                op: AccOp::Sum,
                arg: Expr::Const(Bson::Int32(1)),
            }],
            Some(Value::Object(o)) => parse_outputs(o, "", scope)?,
            Some(other) => {
                return Err(format!(
                    "'output' must be an object of accumulators, got {}",
                    describe(other)
                ))
            }
        };
        Ok(BucketSpec {
            group_by,
            boundaries,
            default,
            accs,
        })
    }

    /// The bucket of `v`: its index, or `len - 1` for the default bucket.
    fn bucket_of(&self, v: Option<ValRef<'_>>) -> Option<usize> {
        if let Some(v) = v {
            let lo = ValRef::from(&self.boundaries[0]);
            if type_rank(&v) == type_rank(&lo) {
                let upper = self
                    .boundaries
                    .partition_point(|b| !compare(&v, &ValRef::from(b)).is_lt());
                if upper > 0 && upper < self.boundaries.len() {
                    return Some(upper - 1);
                }
            }
        }
        self.default.as_ref().map(|_| self.boundaries.len() - 1)
    }
}

/// The running `$bucket`.
pub(crate) struct BucketStage<'p> {
    spec: &'p BucketSpec,
    grouper: Grouper<'p>,
    label: &'p Label,
    next: Chain<'p>,
}

impl<'p> BucketStage<'p> {
    /// A `$bucket` feeding `next`.
    pub(crate) fn new(
        spec: &'p BucketSpec,
        memory_limit: usize,
        label: &'p Label,
        next: Chain<'p>,
    ) -> Self {
        BucketStage {
            spec,
            grouper: Grouper::new(&spec.accs, memory_limit),
            label,
            next,
        }
    }
}

impl Stage for BucketStage<'_> {
    fn push(&mut self, row: Row<'_>, rc: &RunCx<'_>) -> Result<Flow> {
        let doc = row.doc();
        let mut cx = rc.cx(doc);
        let v = self
            .spec
            .group_by
            .eval(&mut cx)
            .map_err(|e| self.label.expr_error("groupBy", e))?;
        let Some(i) = self.spec.bucket_of(v.view()) else {
            return Err(Error::TypeMismatch {
                operator: "$bucket".into(),
                path: "groupBy".into(),
                message: format!(
                    "{} falls outside every bucket and no 'default' is given (in {})",
                    show(v.view()),
                    self.label.text()
                ),
            });
        };
        let spec = self.spec;
        let id = move || {
            if i + 1 == spec.boundaries.len() {
                spec.default.clone().unwrap_or(Bson::Null)
            } else {
                spec.boundaries[i].clone()
            }
        };
        self.grouper
            .add(&(i as u32).to_be_bytes(), id, doc, rc, self.label)?;
        Ok(Flow::More)
    }

    fn finish(&mut self, rc: &RunCx<'_>) -> Result<()> {
        self.grouper.groups.sort_by(|a, b| a.0.cmp(&b.0));
        let rows = self.grouper.results();
        drain(rows, self.next.as_mut(), rc)
    }

    fn explain(&self, out: &mut Vec<StageExplain>) {
        let mut e = StageExplain::named(self.label.name);
        e.memory_peak = Some(self.grouper.budget.peak() as u64);
        out.push(e);
        self.next.explain(out);
    }
}
