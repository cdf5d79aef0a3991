//! `$match`: the query language's filter ([`Filter`], parsed and evaluated by
//! `query/`), plus an optional top-level `$expr` (an aggregation expression,
//! true for the documents to keep).
//!
//! A `$match` at the start of a pipeline never runs as this stage: the source
//! plans its filter over the indexes (see `aggregate/plan.rs`); this stage
//! serves `$match` further down, and the `$expr` part of a leading one.

use serde_json::{Map, Value};

use super::{Chain, Flow, Label, Row, RunCx, Stage};
use crate::aggregate::explain::StageExplain;
use crate::aggregate::expr::{self, describe, Expr, Scope};
use crate::error::{Error, Result};
use crate::query::filter::Filter;

/// A parsed `$match`.
#[derive(Debug, Clone)]
pub(crate) struct MatchSpec {
    /// The filter (everything but `$expr`).
    pub(crate) filter: Filter,
    /// The `$expr` condition, if any.
    pub(crate) expr: Option<Expr>,
}

fn mentions_expr(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, x)| k == "$expr" || mentions_expr(x)),
        Value::Array(items) => items.iter().any(mentions_expr),
        _ => false,
    }
}

impl MatchSpec {
    /// Parses the argument of `$match`.
    pub(crate) fn parse(arg: &Value, scope: &mut Scope, label: &Label) -> Result<MatchSpec> {
        let Value::Object(map) = arg else {
            return Err(label.invalid(format!(
                "$match takes a filter object, got {}",
                describe(arg)
            )));
        };
        let mut rest = Map::new();
        let mut cond = None;
        for (k, v) in map {
            if k == "$expr" {
                cond =
                    Some(expr::parse(v, scope).map_err(|m| label.invalid(format!("$expr: {m}")))?);
            } else {
                if mentions_expr(v) {
                    return Err(label.invalid(
                        "$expr is supported at the top level of $match only ({\"$match\": {\"$expr\": ...}})",
                    ));
                }
                rest.insert(k.clone(), v.clone());
            }
        }
        let filter = Filter::parse(&Value::Object(rest)).map_err(|e| match e {
            Error::InvalidFilter(m) => Error::InvalidFilter(format!("in {}: {m}", label.text())),
            other => other,
        })?;
        Ok(MatchSpec { filter, expr: cond })
    }

    /// True when `doc` passes the filter and the `$expr`.
    pub(crate) fn matches(&self, row: &Row<'_>, rc: &RunCx<'_>, label: &Label) -> Result<bool> {
        let doc = row.doc();
        if !self.filter.matches(doc) {
            return Ok(false);
        }
        match &self.expr {
            None => Ok(true),
            Some(e) => {
                let mut cx = rc.cx(doc);
                e.eval(&mut cx)
                    .map(|v| v.truthy())
                    .map_err(|err| label.expr_error("$expr", err))
            }
        }
    }
}

/// The running `$match`.
pub(crate) struct MatchStage<'p> {
    spec: &'p MatchSpec,
    label: &'p Label,
    next: Chain<'p>,
}

impl<'p> MatchStage<'p> {
    /// A `$match` feeding `next`.
    pub(crate) fn new(spec: &'p MatchSpec, label: &'p Label, next: Chain<'p>) -> Self {
        MatchStage { spec, label, next }
    }
}

impl Stage for MatchStage<'_> {
    fn push(&mut self, row: Row<'_>, rc: &RunCx<'_>) -> Result<Flow> {
        if rc.cancelled() {
            return Ok(Flow::Stop);
        }
        if self.spec.matches(&row, rc, self.label)? {
            self.next.push(row, rc)
        } else {
            Ok(Flow::More)
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
