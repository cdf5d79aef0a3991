//! `$sort` and the in-memory sort of the source: the query language's sort
//! keys ([`SortSpec::key_of`], arrays by their min/max element, missing as
//! null) with a tie-breaker, held under the stage's memory budget.
//!
//! A `$sort` directly followed by `$limit n` keeps only the best `n`
//! documents (it compacts whenever it holds `2n`), so a top-k needs memory for
//! `2n` documents whatever the input size. Equal keys keep their arrival order
//! (from the source: primary-key order, as `find` does).

use bson::raw::RawDocumentBuf;
use bson::Document;

use super::{drain, Budget, Chain, Flow, Label, Row, RunCx, Stage};
use crate::aggregate::explain::StageExplain;
use crate::aggregate::value::{size_of_bson, size_of_doc};
use crate::error::Result;
use crate::query::sort::{SortSpec, SortValue};

/// How equal sort keys are ordered.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Tie {
    /// Arrival order.
    Seq(u64),
    /// A document key (primary-key order).
    Key(Vec<u8>),
}

enum Held {
    Raw(RawDocumentBuf),
    Own(Document),
}

struct Entry {
    key: Vec<SortValue>,
    tie: Tie,
    doc: Held,
    size: usize,
}

fn key_size(key: &[SortValue]) -> usize {
    key.iter()
        .map(|k| match k {
            SortValue::EmptyArray => 8,
            SortValue::Value(b) => size_of_bson(b),
        })
        .sum()
}

/// Documents held for sorting.
pub(crate) struct Sorter<'s> {
    spec: &'s SortSpec,
    top: Option<usize>,
    rows: Vec<Entry>,
    budget: Budget,
    seq: u64,
}

impl<'s> Sorter<'s> {
    /// A sorter by `spec`, keeping the first `top` documents when given.
    pub(crate) fn new(spec: &'s SortSpec, top: Option<u64>, memory_limit: usize) -> Sorter<'s> {
        Sorter {
            spec,
            top: top.map(|t| usize::try_from(t).unwrap_or(usize::MAX)),
            rows: Vec::new(),
            budget: Budget::new(memory_limit),
            seq: 0,
        }
    }

    /// Adds a document; `tie` orders it among equal keys (arrival order when `None`).
    pub(crate) fn add(&mut self, row: Row<'_>, tie: Option<Vec<u8>>, label: &Label) -> Result<()> {
        if self.top == Some(0) {
            return Ok(());
        }
        let key = self.spec.key_of(row.doc());
        let tie = match tie {
            Some(k) => Tie::Key(k),
            None => {
                self.seq += 1;
                Tie::Seq(self.seq)
            }
        };
        let (doc, doc_size) = match row {
            Row::Raw(r) => (Held::Raw(r.to_owned()), r.as_bytes().len() + 16),
            Row::Buf(b) => {
                let n = b.as_bytes().len() + 16;
                (Held::Raw(b), n)
            }
            Row::Own(d) => {
                let n = size_of_doc(&d);
                (Held::Own(d), n)
            }
        };
        let size = doc_size + key_size(&key) + 48;
        self.budget.charge(size, label)?;
        self.rows.push(Entry {
            key,
            tie,
            doc,
            size,
        });
        if let Some(k) = self.top {
            if self.rows.len() >= k.saturating_mul(2).max(64) {
                self.compact(k);
            }
        }
        Ok(())
    }

    fn order(&mut self) {
        let spec = self.spec;
        self.rows.sort_unstable_by(|a, b| {
            spec.compare_keys(&a.key, &b.key)
                .then_with(|| a.tie.cmp(&b.tie))
        });
    }

    fn compact(&mut self, k: usize) {
        self.order();
        for e in self.rows.drain(k.min(self.rows.len())..) {
            self.budget.release(e.size);
        }
    }

    /// The most bytes held at once.
    pub(crate) fn peak(&self) -> usize {
        self.budget.peak()
    }

    /// Takes the documents out in order (at most `top`), skipping the first `skip`.
    pub(crate) fn take_sorted(&mut self, skip: u64) -> impl Iterator<Item = Row<'static>> {
        self.order();
        let top = self.top.unwrap_or(usize::MAX);
        let skip = usize::try_from(skip).unwrap_or(usize::MAX);
        let rows = std::mem::take(&mut self.rows);
        rows.into_iter().take(top).skip(skip).map(|e| match e.doc {
            Held::Raw(r) => Row::Buf(r),
            Held::Own(d) => Row::Own(d),
        })
    }
}

/// The running `$sort`.
pub(crate) struct SortStage<'p> {
    sorter: Sorter<'p>,
    label: &'p Label,
    next: Chain<'p>,
    limit: Option<u64>,
}

impl<'p> SortStage<'p> {
    /// A `$sort` (keeping the first `limit` when it is followed by `$limit`).
    pub(crate) fn new(
        spec: &'p SortSpec,
        limit: Option<u64>,
        memory_limit: usize,
        label: &'p Label,
        next: Chain<'p>,
    ) -> Self {
        SortStage {
            sorter: Sorter::new(spec, limit, memory_limit),
            label,
            next,
            limit,
        }
    }
}

impl Stage for SortStage<'_> {
    fn push(&mut self, row: Row<'_>, _rc: &RunCx<'_>) -> Result<Flow> {
        self.sorter.add(row, None, self.label)?;
        Ok(Flow::More)
    }

    fn finish(&mut self, rc: &RunCx<'_>) -> Result<()> {
        let rows = self.sorter.take_sorted(0);
        drain(rows, self.next.as_mut(), rc)
    }

    fn explain(&self, out: &mut Vec<StageExplain>) {
        let mut e = StageExplain::named(self.label.name);
        e.memory_peak = Some(self.sorter.peak() as u64);
        e.top_k = self.limit;
        out.push(e);
        self.next.explain(out);
    }
}
