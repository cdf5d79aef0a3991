//! `$facet`: runs several sub-pipelines over the same input and emits one
//! document holding each sub-pipeline's output as an array (empty arrays
//! when there was no input). Sub-pipelines may use any stage but `$facet`;
//! what they collect, all facets together, is charged to the stage's memory budget.

use std::cell::RefCell;
use std::rc::Rc;

use bson::{Bson, Document};
use serde_json::Value;

use super::{Budget, Chain, Flow, Label, Row, RunCx, Sink, Stage};
use crate::aggregate::explain::StageExplain;
use crate::aggregate::expr::{describe, Scope};
use crate::aggregate::parse::Located;
use crate::aggregate::run;
use crate::aggregate::value::size_of_docref;
use crate::error::Result;

/// A parsed `$facet`.
#[derive(Debug, Clone)]
pub(crate) struct FacetSpec {
    facets: Vec<(String, Vec<Located>)>,
}

impl FacetSpec {
    /// Parses `{name: [stages], ...}`.
    pub(crate) fn parse(arg: &Value, scope: &mut Scope, label: &Label) -> Result<FacetSpec> {
        let Value::Object(map) = arg else {
            return Err(label.invalid(format!(
                "$facet takes an object of named sub-pipelines, got {}",
                describe(arg)
            )));
        };
        if map.is_empty() {
            return Err(label.invalid("$facet needs at least one sub-pipeline"));
        }
        let mut facets = Vec::with_capacity(map.len());
        for (name, p) in map {
            if name.is_empty() || name.starts_with('$') || name.contains('.') {
                return Err(label.invalid(format!(
                    "'{name}' is not a valid facet name (no leading '$', no '.')"
                )));
            }
            let stages = crate::aggregate::parse::parse_stages(p, scope, Some(label), false)?;
            facets.push((name.clone(), stages));
        }
        Ok(FacetSpec { facets })
    }
}

/// The running `$facet`.
pub(crate) struct FacetStage<'p> {
    spec: &'p FacetSpec,
    chains: Vec<(Chain<'p>, bool)>,
    outputs: Vec<Rc<RefCell<Vec<Bson>>>>,
    label: &'p Label,
    next: Chain<'p>,
}

impl<'p> FacetStage<'p> {
    /// A `$facet` feeding `next`.
    pub(crate) fn new(
        spec: &'p FacetSpec,
        memory_limit: usize,
        explain: bool,
        label: &'p Label,
        next: Chain<'p>,
    ) -> Self {
        let shared = Rc::new(RefCell::new(Budget::new(memory_limit)));
        let mut chains = Vec::new();
        let mut outputs = Vec::new();
        for (_, stages) in &spec.facets {
            let out = Rc::new(RefCell::new(Vec::new()));
            let sink_out = out.clone();
            let total = shared.clone();
            let sink = Sink::new(move |r: Row<'_>| {
                let size = size_of_docref(r.doc());
                total.borrow_mut().charge(size, label)?;
                sink_out
                    .borrow_mut()
                    .push(Bson::Document(r.into_document()));
                Ok(Flow::More)
            });
            chains.push((
                run::build(stages, Box::new(sink), memory_limit, explain),
                true,
            ));
            outputs.push(out);
        }
        FacetStage {
            spec,
            chains,
            outputs,
            label,
            next,
        }
    }
}

fn view<'r>(row: &'r Row<'_>) -> Row<'r> {
    match row {
        Row::Raw(r) => Row::Raw(r),
        Row::Buf(b) => Row::Raw(b),
        Row::Own(d) => Row::Own(d.clone()),
    }
}

impl Stage for FacetStage<'_> {
    fn push(&mut self, row: Row<'_>, rc: &RunCx<'_>) -> Result<Flow> {
        let mut any = false;
        for (chain, open) in self.chains.iter_mut() {
            if !*open {
                continue;
            }
            if chain.push(view(&row), rc)? == Flow::Stop {
                *open = false;
            } else {
                any = true;
            }
        }
        Ok(if any { Flow::More } else { Flow::Stop })
    }

    fn finish(&mut self, rc: &RunCx<'_>) -> Result<()> {
        for (chain, _) in self.chains.iter_mut() {
            chain.finish(rc)?;
        }
        let mut d = Document::new();
        for ((name, _), out) in self.spec.facets.iter().zip(&self.outputs) {
            let docs = std::mem::take(&mut *out.borrow_mut());
            d.insert(name.clone(), Bson::Array(docs));
        }
        self.next.push(Row::Own(d), rc)?;
        self.next.finish(rc)
    }

    fn explain(&self, out: &mut Vec<StageExplain>) {
        let mut e = StageExplain::named(self.label.name);
        for ((name, _), (chain, _)) in self.spec.facets.iter().zip(&self.chains) {
            let mut sub = Vec::new();
            chain.explain(&mut sub);
            e.facets.push((name.clone(), sub));
        }
        out.push(e);
        self.next.explain(out);
    }
}
