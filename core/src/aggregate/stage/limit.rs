//! `$skip`, `$limit` and `$count`: counting stages. `$limit` answers
//! [`Flow::Stop`] once it has passed its documents, so the source stops
//! reading; `$count` emits one `{<name>: n}` document at the end (nothing when
//! no document arrived, as in MongoDB).

use bson::Document;

use super::{Chain, Flow, Label, Row, RunCx, Stage};
use crate::aggregate::explain::StageExplain;
use crate::aggregate::value::int;
use crate::error::Result;

/// The running `$skip`.
pub(crate) struct SkipStage<'p> {
    left: u64,
    label: &'p Label,
    next: Chain<'p>,
}

impl<'p> SkipStage<'p> {
    /// Skips `n` documents, then passes the rest to `next`.
    pub(crate) fn new(n: u64, label: &'p Label, next: Chain<'p>) -> Self {
        SkipStage {
            left: n,
            label,
            next,
        }
    }
}

impl Stage for SkipStage<'_> {
    fn push(&mut self, row: Row<'_>, rc: &RunCx<'_>) -> Result<Flow> {
        if self.left > 0 {
            self.left -= 1;
            return Ok(Flow::More);
        }
        self.next.push(row, rc)
    }
    fn finish(&mut self, rc: &RunCx<'_>) -> Result<()> {
        self.next.finish(rc)
    }
    fn explain(&self, out: &mut Vec<StageExplain>) {
        out.push(StageExplain::named(self.label.name));
        self.next.explain(out);
    }
}

/// The running `$limit`.
pub(crate) struct LimitStage<'p> {
    left: u64,
    label: &'p Label,
    next: Chain<'p>,
}

impl<'p> LimitStage<'p> {
    /// Passes at most `n` documents to `next`.
    pub(crate) fn new(n: u64, label: &'p Label, next: Chain<'p>) -> Self {
        LimitStage {
            left: n,
            label,
            next,
        }
    }
}

impl Stage for LimitStage<'_> {
    fn push(&mut self, row: Row<'_>, rc: &RunCx<'_>) -> Result<Flow> {
        if self.left == 0 {
            return Ok(Flow::Stop);
        }
        self.left -= 1;
        let flow = self.next.push(row, rc)?;
        Ok(if self.left == 0 { Flow::Stop } else { flow })
    }
    fn finish(&mut self, rc: &RunCx<'_>) -> Result<()> {
        self.next.finish(rc)
    }
    fn explain(&self, out: &mut Vec<StageExplain>) {
        out.push(StageExplain::named(self.label.name));
        self.next.explain(out);
    }
}

/// The running `$count`.
pub(crate) struct CountStage<'p> {
    field: &'p str,
    n: i64,
    label: &'p Label,
    next: Chain<'p>,
}

impl<'p> CountStage<'p> {
    /// Counts documents into `{field: n}`.
    pub(crate) fn new(field: &'p str, label: &'p Label, next: Chain<'p>) -> Self {
        CountStage {
            field,
            n: 0,
            label,
            next,
        }
    }
}

impl Stage for CountStage<'_> {
    fn push(&mut self, _row: Row<'_>, _rc: &RunCx<'_>) -> Result<Flow> {
        self.n += 1;
        Ok(Flow::More)
    }
    fn finish(&mut self, rc: &RunCx<'_>) -> Result<()> {
        if self.n > 0 {
            let mut d = Document::new();
            d.insert(self.field, int(self.n));
            self.next.push(Row::Own(d), rc)?;
        }
        self.next.finish(rc)
    }
    fn explain(&self, out: &mut Vec<StageExplain>) {
        out.push(StageExplain::named(self.label.name));
        self.next.explain(out);
    }
}
