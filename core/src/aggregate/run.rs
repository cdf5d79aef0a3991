//! Running a parsed pipeline: build the stage chain (back to front, ending in
//! the caller's sink), let the source push the planned documents into it,
//! finish it (blocking stages emit), and collect the explain.

use std::cell::RefCell;
use std::sync::atomic::AtomicBool;

use heed::RoTxn;

use super::explain::StageExplain;
use super::parse::{Located, Pipeline, StageSpec};
use super::plan::run_source;
use super::stage::facet::FacetStage;
use super::stage::group::{BucketStage, GroupStage};
use super::stage::limit::{CountStage, LimitStage, SkipStage};
use super::stage::lookup::LookupStage;
use super::stage::matching::MatchStage;
use super::stage::shape::{ReplaceRootStage, ShapeStage};
use super::stage::sort::SortStage;
use super::stage::unwind::UnwindStage;
use super::stage::{Chain, Flow, Row, RunCx, Sink};
use crate::error::Result;
use crate::exec::read::Reads;
use crate::exec::read::Target;
use crate::exec::readset::ReadSet;
use crate::exec::TargetCache;
use crate::plan::{Explain, Plan};
use crate::query::filter::Filter;
use crate::storage::Store;

/// What a run reports when explaining.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    /// The source's plan and counters.
    pub(crate) source: Explain,
    /// Stages the source absorbed.
    pub(crate) absorbed: Vec<String>,
    /// Bytes held by the source's in-memory sort.
    pub(crate) sort_memory: Option<u64>,
    /// The remaining stages.
    pub(crate) stages: Vec<StageExplain>,
}

/// `$skip`s then a `$limit` right after a `$sort`: the documents it must keep.
fn top_k(rest: &[Located]) -> Option<u64> {
    let mut skipped = 0u64;
    for l in rest {
        match l.spec {
            StageSpec::Skip(n) => skipped = skipped.saturating_add(n),
            StageSpec::Limit(n) => return Some(skipped.saturating_add(n)),
            _ => return None,
        }
    }
    None
}

/// Builds the chain of `stages` ending in `sink`.
pub(crate) fn build<'p>(
    stages: &'p [Located],
    sink: Chain<'p>,
    memory_limit: usize,
    explain: bool,
) -> Chain<'p> {
    let mut next = sink;
    let mut i = stages.len();
    while i > 0 {
        i -= 1;
        let l = &stages[i];
        let label = &l.label;
        // `$lookup` then `$unwind` of its `as` field: one stage.
        if let (StageSpec::Unwind(u), Some(prev)) = (&l.spec, i.checked_sub(1).map(|p| &stages[p]))
        {
            if let StageSpec::Lookup(lk) = &prev.spec {
                if let Some(preserve) = u.coalesces_with(lk.as_path()) {
                    i -= 1;
                    next = Box::new(LookupStage::new(
                        lk,
                        &prev.label,
                        next,
                        explain,
                        Some(preserve),
                    ));
                    continue;
                }
            }
        }
        next = match &l.spec {
            StageSpec::Match(m) => Box::new(MatchStage::new(m, label, next)),
            StageSpec::Shape(s) => Box::new(ShapeStage::new(s, label, next)),
            StageSpec::ReplaceRoot(e) => Box::new(ReplaceRootStage::new(e, label, next)),
            StageSpec::Group(g) => Box::new(GroupStage::new(g, memory_limit, label, next)),
            StageSpec::Bucket(b) => Box::new(BucketStage::new(b, memory_limit, label, next)),
            StageSpec::Sort { spec } => {
                let top = top_k(&stages[i + 1..]);
                Box::new(SortStage::new(spec, top, memory_limit, label, next))
            }
            StageSpec::Skip(n) => Box::new(SkipStage::new(*n, label, next)),
            StageSpec::Limit(n) => Box::new(LimitStage::new(*n, label, next)),
            StageSpec::Count(f) => Box::new(CountStage::new(f, label, next)),
            StageSpec::Unwind(u) => Box::new(UnwindStage::new(u, label, next)),
            StageSpec::Lookup(lk) => Box::new(LookupStage::new(lk, label, next, explain, None)),
            StageSpec::Facet(f) => Box::new(FacetStage::new(f, memory_limit, explain, label, next)),
        };
    }
    next
}

/// Runs `pipeline` over `target` (no documents when the collection does not
/// exist), `extra` narrowing the source, into `sink`. `lookup` marks a
/// `$lookup`'s sub-pipeline: `extra` is its equality, and the source yields
/// primary-key order (see [`run_source`]).
pub(crate) fn execute<'p>(
    pipeline: &'p Pipeline,
    target: Option<&Target>,
    rc: &RunCx<'_>,
    extra: Option<Filter>,
    sink: Chain<'p>,
    explain: bool,
    lookup: bool,
) -> Result<Option<Report>> {
    let mut chain = build(&pipeline.stages, sink, rc.memory_limit, explain);
    let src = &pipeline.source;
    let ran = match target {
        Some(t) => {
            let filter = src.filter_for(rc, extra);
            Some(run_source(
                src,
                &filter,
                t,
                rc,
                chain.as_mut(),
                explain,
                lookup,
            )?)
        }
        None => None,
    };
    chain.finish(rc)?;
    if !explain {
        return Ok(None);
    }
    let mut stages = Vec::new();
    chain.explain(&mut stages);
    let sorted = !src.sort.is_empty();
    let (source, sort_memory) = match ran {
        Some(r) => (
            r.explain
                .unwrap_or_else(|| Explain::of(&Plan::collscan(false, true, 0), sorted)),
            r.sort_memory,
        ),
        None => (Explain::of(&Plan::collscan(false, true, 0), sorted), None),
    };
    Ok(Some(Report {
        source,
        absorbed: src.absorbed.iter().map(|l| l.name.to_owned()).collect(),
        sort_memory,
        stages,
    }))
}

/// Where and how a pipeline runs: the read view, the read set of the
/// enclosing transaction (None outside one), the compiled collection
/// definitions, and the run's settings.
pub(crate) struct RunOn<'a> {
    /// The tables.
    pub(crate) store: &'a Store,
    /// The read view.
    pub(crate) txn: &'a RoTxn<'a>,
    /// Compiled collection definitions.
    pub(crate) targets: &'a TargetCache,
    /// True when `txn` is a committed snapshot.
    pub(crate) committed: bool,
    /// Bytes each blocking stage may hold.
    pub(crate) memory_limit: usize,
    /// `$$NOW`.
    pub(crate) now: i64,
    /// Report how the run went.
    pub(crate) explain: bool,
    /// Set when the consumer went away.
    pub(crate) cancel: Option<&'a AtomicBool>,
}

/// Runs `pipeline` on collection `name`, handing every output document to
/// `emit`, recording what it read in `reads`.
pub(crate) fn run_on(
    on: RunOn<'_>,
    reads: &mut Reads<'_>,
    name: &str,
    pipeline: &Pipeline,
    emit: &mut dyn FnMut(Row<'_>) -> Result<Flow>,
) -> Result<Option<Report>> {
    let target = on.targets.get(on.store, on.txn, name, on.committed)?;
    let recorded = reads.as_ref().map(|_| RefCell::new(ReadSet::default()));
    if let (None, Some(r)) = (&target, recorded.as_ref()) {
        r.borrow_mut().no_collection(name);
    }
    let rc = RunCx {
        store: on.store,
        txn: on.txn,
        targets: on.targets,
        committed: on.committed,
        now: on.now,
        memory_limit: on.memory_limit,
        vars: Vec::new(),
        cancel: on.cancel,
        reads: recorded.as_ref(),
    };
    let sink = Sink::new(&mut *emit);
    let report = execute(
        pipeline,
        target.as_deref(),
        &rc,
        None,
        Box::new(sink),
        on.explain,
        false,
    );
    if let (Some(r), Some(cell)) = (reads.as_deref_mut(), recorded) {
        r.append(&mut cell.into_inner());
    }
    report
}
