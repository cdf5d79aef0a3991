//! Planning: the start of a pipeline runs through the engine's planner and
//! executor instead of as stages.
//!
//! Leading `$match` stages (merged) become the filter of a find-like source;
//! when they hold no `$expr`, a `$sort` right after them and the `$skip` /
//! `$limit` stages after that are absorbed too. [`crate::plan::choose`] then
//! picks the access path (primary key, index range, index-provided sort with
//! early stop, `$or` union, or a scan) and [`crate::exec::read::run`] walks it,
//! re-checking the whole filter on each stored document. A sort the access
//! path does not provide is done here in memory (top-k when a limit is known)
//! under the memory limit; a skip or limit without a sort over an unordered
//! access path selects documents in primary-key order, as `find` does.
//!
//! An `$expr` stays a stage, but its `{$eq: ["$field", <constant or
//! $$variable>]}` conditions also become index bounds ([`Hint`]): inside a
//! `$lookup` pipeline the variable is known for each input document, so the
//! foreign collection is searched through its index.

use bson::Bson;

use super::expr::{Cx, Expr, Var};
use super::parse::{Located, StageSpec};
use super::stage::matching::MatchSpec;
use super::stage::sort::Sorter;
use super::stage::{Flow, Label, Row, RunCx, Stage};
use crate::doc::{DocRef, FieldPath};
use crate::error::Result;
use crate::exec::read::{self as exec_read, Target};
use crate::plan::{ExecStats, Explain};
use crate::query::filter::{Filter, Op};
use crate::query::sort::SortSpec;

/// `{$eq: ["$path", value]}` from an `$expr`: a superset condition the
/// planner can use once `value` is evaluated.
#[derive(Debug, Clone)]
pub(crate) struct Hint {
    path: FieldPath,
    value: Expr,
}

/// What the source of a pipeline does.
#[derive(Debug, Clone)]
pub(crate) struct SourceSpec {
    /// The merged filter of the leading `$match` stages.
    pub(crate) filter: Filter,
    /// An absorbed `$sort`.
    pub(crate) sort: SortSpec,
    /// Absorbed `$skip`s.
    pub(crate) skip: u64,
    /// Absorbed `$limit`s.
    pub(crate) limit: Option<u64>,
    /// Labels of the absorbed stages.
    pub(crate) absorbed: Vec<Label>,
    /// The absorbed `$sort`'s label (for memory errors).
    sort_label: Option<Label>,
    /// Index bounds derived from a leading `$expr`.
    hints: Vec<Hint>,
}

fn hints_of(e: &Expr, out: &mut Vec<Hint>) {
    match e {
        Expr::Cmp(c) => {
            if let Some((parts, other)) = c.path_equality() {
                let usable = match other {
                    Expr::Const(b) => !matches!(b, Bson::Array(_)),
                    Expr::Var(Var::Slot(_), _) => true,
                    _ => false,
                };
                if let (true, Ok(path)) = (usable, FieldPath::parse(&parts.join("."))) {
                    out.push(Hint {
                        path,
                        value: other.clone(),
                    });
                }
            }
        }
        Expr::Bool(b) => {
            if let Some(items) = b.and_operands() {
                items.iter().for_each(|i| hints_of(i, out));
            }
        }
        _ => {}
    }
}

impl SourceSpec {
    /// A source reading every document.
    fn all() -> SourceSpec {
        SourceSpec {
            filter: Filter::True,
            sort: SortSpec::default(),
            skip: 0,
            limit: None,
            absorbed: Vec::new(),
            sort_label: None,
            hints: Vec::new(),
        }
    }

    /// Takes the leading stages the source can run out of `stages`.
    pub(crate) fn absorb(stages: &mut Vec<Located>) -> SourceSpec {
        let mut src = SourceSpec::all();
        let mut filters = Vec::new();
        let mut exprs = Vec::new();
        let mut first_label = None;
        while let Some(Located {
            spec: StageSpec::Match(_),
            ..
        }) = stages.first()
        {
            let l = stages.remove(0);
            if let StageSpec::Match(m) = l.spec {
                filters.push(m.filter);
                exprs.extend(m.expr);
            }
            first_label.get_or_insert_with(|| l.label.clone());
            src.absorbed.push(l.label);
        }
        src.filter = match filters.len() {
            0 => Filter::True,
            1 => filters.pop().unwrap_or(Filter::True),
            _ => Filter::And(filters),
        };
        if !exprs.is_empty() {
            let cond = if exprs.len() == 1 {
                exprs.pop().unwrap_or(Expr::Const(Bson::Boolean(true)))
            } else {
                Expr::Bool(Box::new(super::expr::boolean::Bool::And(exprs)))
            };
            hints_of(&cond, &mut src.hints);
            let label = first_label.unwrap_or_else(|| Label::new(1, "$match", None));
            stages.insert(
                0,
                Located {
                    label,
                    spec: StageSpec::Match(MatchSpec {
                        filter: Filter::True,
                        expr: Some(cond),
                    }),
                },
            );
            return src;
        }
        if let Some(Located {
            spec: StageSpec::Sort { .. },
            ..
        }) = stages.first()
        {
            let l = stages.remove(0);
            if let StageSpec::Sort { spec, .. } = l.spec {
                src.sort = spec;
            }
            src.sort_label = Some(l.label.clone());
            src.absorbed.push(l.label);
        }
        loop {
            match stages.first().map(|l| &l.spec) {
                Some(StageSpec::Skip(n)) => {
                    let n = *n;
                    src.skip = src.skip.saturating_add(n);
                    src.limit = src.limit.map(|l| l.saturating_sub(n));
                }
                Some(StageSpec::Limit(n)) => {
                    let n = *n;
                    src.limit = Some(src.limit.map_or(n, |l| l.min(n)));
                }
                _ => break,
            }
            let l = stages.remove(0);
            src.absorbed.push(l.label);
        }
        src
    }

    /// The filter for one run: the absorbed filter, the evaluated hints and
    /// the caller's `extra` condition (a `$lookup`'s equality).
    pub(crate) fn filter_for(&self, rc: &RunCx<'_>, extra: Option<Filter>) -> Filter {
        let mut parts = Vec::new();
        if let Some(e) = extra {
            parts.push(e);
        }
        if !self.hints.is_empty() {
            let empty = bson::Document::new();
            for h in &self.hints {
                let mut cx: Cx<'_> = rc.cx(DocRef::Owned(&empty));
                let Ok(v) = h.value.eval(&mut cx) else {
                    continue;
                };
                let b = v.into_bson_or_null();
                if matches!(b, Bson::Array(_)) {
                    continue;
                }
                parts.push(Filter::Field {
                    path: h.path.clone(),
                    op: Op::Eq(b),
                });
            }
        }
        if parts.is_empty() {
            return self.filter.clone();
        }
        if !matches!(self.filter, Filter::True) {
            parts.push(self.filter.clone());
        }
        if parts.len() == 1 {
            parts.pop().unwrap_or(Filter::True)
        } else {
            Filter::And(parts)
        }
    }
}

/// What the source did, for explain.
#[derive(Debug, Clone)]
pub(crate) struct SourceRun {
    /// The plan, with what running it cost.
    pub(crate) explain: Option<Explain>,
    /// Bytes held by an in-memory sort.
    pub(crate) sort_memory: Option<u64>,
}

/// Plans `filter` with the source's sort over `t` and pushes the documents
/// into `head` (the first remaining stage). Without a sort, documents come in
/// the access path's order, or in primary-key order when `pk_order` is set
/// (a `$lookup`: its joined arrays then do not depend on the foreign indexes).
pub(crate) fn run_source(
    src: &SourceSpec,
    filter: &Filter,
    t: &Target,
    rc: &RunCx<'_>,
    head: &mut dyn Stage,
    explain: bool,
    pk_order: bool,
) -> Result<SourceRun> {
    let want = src.limit.map(|l| l.saturating_add(src.skip));
    let plan = t.plan(rc.store, rc.txn, filter, &src.sort, want, explain)?;
    let mut stats = ExecStats::default();
    let mut passed = 0u64;
    let buffered =
        !plan.ordered && (pk_order || !src.sort.is_empty() || src.skip > 0 || src.limit.is_some());
    let mut sort_memory = None;
    if src.limit == Some(0) {
        // Nothing to return; the plan is still reported.
    } else if !buffered {
        let mut skipped = 0u64;
        let mut walk = rc.walk_reads();
        exec_read::run(
            rc.store,
            rc.txn,
            t,
            &plan,
            filter,
            &mut stats,
            &mut walk.as_mut(),
            &mut |_, raw| {
                if rc.cancelled() {
                    return Ok(false);
                }
                if skipped < src.skip {
                    skipped += 1;
                    return Ok(true);
                }
                passed += 1;
                let flow = head.push(Row::Raw(raw), rc)?;
                Ok(flow == Flow::More && src.limit.is_none_or(|l| passed < l))
            },
        )?;
        rc.keep_reads(walk);
    } else {
        let label = src
            .sort_label
            .clone()
            .unwrap_or_else(|| Label::new(1, "$match", None));
        let mut sorter = Sorter::new(&src.sort, want, rc.memory_limit);
        let mut walk = rc.walk_reads();
        exec_read::run(
            rc.store,
            rc.txn,
            t,
            &plan,
            filter,
            &mut stats,
            &mut walk.as_mut(),
            &mut |key, raw| {
                if rc.cancelled() {
                    return Ok(false);
                }
                sorter.add(Row::Raw(raw), Some(key.to_vec()), &label)?;
                Ok(true)
            },
        )?;
        rc.keep_reads(walk);
        sort_memory = Some(sorter.peak() as u64);
        for row in sorter.take_sorted(src.skip) {
            passed += 1;
            if head.push(row, rc)? == Flow::Stop {
                break;
            }
        }
    }
    stats.returned = passed;
    let explain = explain.then(|| {
        let mut e = Explain::of(&plan, !src.sort.is_empty());
        e.stats = stats;
        e
    });
    Ok(SourceRun {
        explain,
        sort_memory,
    })
}
