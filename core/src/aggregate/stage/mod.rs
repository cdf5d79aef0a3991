//! Pipeline execution: each stage is a push-based operator that receives one
//! document at a time and hands its output to the next stage.
//!
//! Streaming stages (`$match`, `$project`, `$unwind`, `$lookup`, `$limit`, ...)
//! pass documents on as they come; blocking stages (`$group`, `$sort`,
//! `$bucket`, `$facet`, `$count`) keep state, charge it to a per-stage memory
//! budget ([`Budget`]) and emit when their input ends ([`Stage::finish`]).
//! A stage that needs no more input (a satisfied `$limit`) answers
//! [`Flow::Stop`], which travels back to the source so the scan ends early.
//!
//! Documents from the source are views of the stored bytes ([`Row::Raw`]);
//! a stage that changes a document produces an owned one ([`Row::Own`]).

pub(crate) mod facet;
pub(crate) mod group;
pub(crate) mod limit;
pub(crate) mod lookup;
pub(crate) mod matching;
pub(crate) mod shape;
pub(crate) mod sort;
pub(crate) mod unwind;

use std::sync::atomic::{AtomicBool, Ordering};

use std::cell::RefCell;

use bson::raw::{RawDocument, RawDocumentBuf};
use bson::{Bson, Document};
use heed::RoTxn;

use super::explain::StageExplain;
use super::expr::{Cx, ExprError};
use crate::doc::DocRef;
use crate::error::{Error, Result};
use crate::exec::readset::ReadSet;
use crate::exec::TargetCache;
use crate::storage::Store;

/// A document flowing through the pipeline.
pub(crate) enum Row<'r> {
    /// A stored document, borrowed from the read snapshot.
    Raw(&'r RawDocument),
    /// A stored document copied out of the snapshot (held by a blocking stage).
    Buf(RawDocumentBuf),
    /// A document a stage built.
    Own(Document),
}

impl Row<'_> {
    /// A view of the document.
    pub(crate) fn doc(&self) -> DocRef<'_> {
        match self {
            Row::Raw(r) => DocRef::Raw(r),
            Row::Buf(b) => DocRef::Raw(b),
            Row::Own(d) => DocRef::Owned(d),
        }
    }

    /// The document, owned.
    pub(crate) fn into_document(self) -> Document {
        match self {
            Row::Raw(r) => DocRef::Raw(r).to_document(),
            Row::Buf(b) => DocRef::Raw(&b).to_document(),
            Row::Own(d) => d,
        }
    }
}

/// Whether a stage wants more input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Send more.
    More,
    /// No more input is needed.
    Stop,
}

/// Where a stage sits, for messages: `stage 2 ($group)`, or for a
/// sub-pipeline `stage 1 ($match) of the pipeline in stage 3 ($lookup)`.
#[derive(Debug, Clone)]
pub(crate) struct Label {
    /// The stage name as written (`$group`).
    pub(crate) name: &'static str,
    at: String,
}

impl Label {
    /// The label of stage `pos` (1-based) named `name`, inside `within` when nested.
    pub(crate) fn new(pos: usize, name: &'static str, within: Option<&Label>) -> Label {
        let at = match within {
            None => format!("stage {pos} ({name})"),
            Some(outer) => format!("stage {pos} ({name}) of the pipeline in {}", outer.at),
        };
        Label { name, at }
    }

    /// `stage 2 ($group)`.
    pub(crate) fn text(&self) -> String {
        self.at.clone()
    }

    /// Turns an expression failure into the error callers see.
    pub(crate) fn expr_error(&self, field: &str, e: ExprError) -> Error {
        Error::TypeMismatch {
            operator: e.operator.to_owned(),
            path: field.to_owned(),
            message: format!("{} (in {})", e.message, self.text()),
        }
    }

    /// A parse error of this stage.
    pub(crate) fn invalid(&self, message: impl std::fmt::Display) -> Error {
        Error::InvalidPipeline(format!("{}: {message}", self.text()))
    }
}

/// What stages run against: the read snapshot, variables of enclosing
/// `$lookup`s, the clock reading and the memory limit.
pub(crate) struct RunCx<'t> {
    /// The tables.
    pub(crate) store: &'t Store,
    /// The read view (a snapshot or the enclosing write transaction).
    pub(crate) txn: &'t RoTxn<'t>,
    /// Compiled collection definitions (to resolve `$lookup`'s `from`).
    pub(crate) targets: &'t TargetCache,
    /// True when `txn` is a committed snapshot (definitions may be cached).
    pub(crate) committed: bool,
    /// `$$NOW`, fixed for the whole run.
    pub(crate) now: i64,
    /// Bytes each blocking stage may hold.
    pub(crate) memory_limit: usize,
    /// `let` variables of enclosing `$lookup` stages, in slot order (`None`:
    /// bound to a missing field).
    pub(crate) vars: Vec<Option<Bson>>,
    /// Set when the consumer went away: sources stop.
    pub(crate) cancel: Option<&'t AtomicBool>,
    /// Where reads are recorded inside a transaction (None outside): each
    /// walk records into its own set, appended here when it ends, so that a
    /// `$lookup` running inside the source's walk records too.
    pub(crate) reads: Option<&'t RefCell<ReadSet>>,
}

impl RunCx<'_> {
    /// A fresh set for one walk's reads (None outside transactions).
    pub(crate) fn walk_reads(&self) -> Option<ReadSet> {
        self.reads.map(|_| ReadSet::default())
    }

    /// Keeps a walk's reads.
    pub(crate) fn keep_reads(&self, walk: Option<ReadSet>) {
        if let (Some(cell), Some(mut w)) = (self.reads, walk) {
            cell.borrow_mut().append(&mut w);
        }
    }

    /// Records that collection `name` did not exist.
    pub(crate) fn no_collection(&self, name: &str) {
        if let Some(cell) = self.reads {
            cell.borrow_mut().no_collection(name);
        }
    }
}

impl<'t> RunCx<'t> {
    /// An expression context over `doc`.
    pub(crate) fn cx<'a>(&'a self, doc: DocRef<'a>) -> Cx<'a> {
        Cx::new(doc, &self.vars, self.now)
    }

    /// The same context with `vars` bound (a `$lookup` sub-pipeline).
    pub(crate) fn with_vars(&self, vars: Vec<Option<Bson>>) -> RunCx<'t> {
        RunCx {
            store: self.store,
            txn: self.txn,
            targets: self.targets,
            committed: self.committed,
            now: self.now,
            memory_limit: self.memory_limit,
            vars,
            cancel: self.cancel,
            reads: self.reads,
        }
    }

    /// True when the run should stop.
    pub(crate) fn cancelled(&self) -> bool {
        self.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
    }
}

/// A pipeline operator.
pub(crate) trait Stage {
    /// Takes one input document.
    fn push(&mut self, row: Row<'_>, rc: &RunCx<'_>) -> Result<Flow>;
    /// The input ended: emit what is held, then finish the next stage.
    fn finish(&mut self, rc: &RunCx<'_>) -> Result<()>;
    /// Appends this stage's explain (and the following stages') to `out`.
    fn explain(&self, out: &mut Vec<StageExplain>);
}

/// A boxed stage chain.
pub(crate) type Chain<'p> = Box<dyn Stage + 'p>;

/// The end of a chain: hands each document to a callback.
pub(crate) struct Sink<'o> {
    emit: Box<dyn FnMut(Row<'_>) -> Result<Flow> + 'o>,
}

impl<'o> Sink<'o> {
    /// A sink calling `emit` for every output document.
    pub(crate) fn new(emit: impl FnMut(Row<'_>) -> Result<Flow> + 'o) -> Sink<'o> {
        Sink {
            emit: Box::new(emit),
        }
    }
}

impl Stage for Sink<'_> {
    fn push(&mut self, row: Row<'_>, _rc: &RunCx<'_>) -> Result<Flow> {
        (self.emit)(row)
    }
    fn finish(&mut self, _rc: &RunCx<'_>) -> Result<()> {
        Ok(())
    }
    fn explain(&self, _out: &mut Vec<StageExplain>) {}
}

/// A blocking stage's memory account.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    used: usize,
    limit: usize,
    peak: usize,
}

impl Budget {
    /// An empty account with `limit` bytes.
    pub(crate) fn new(limit: usize) -> Budget {
        Budget {
            used: 0,
            limit,
            peak: 0,
        }
    }

    /// Charges `bytes`; fails once the total exceeds the limit.
    pub(crate) fn charge(&mut self, bytes: usize, label: &Label) -> Result<()> {
        self.used = self.used.saturating_add(bytes);
        self.peak = self.peak.max(self.used);
        if self.used > self.limit {
            return Err(Error::MemoryLimitExceeded {
                stage: label.text(),
                limit: self.limit,
            });
        }
        Ok(())
    }

    /// Returns `bytes` to the account.
    pub(crate) fn release(&mut self, bytes: usize) {
        self.used = self.used.saturating_sub(bytes);
    }

    /// The most bytes held at once.
    pub(crate) fn peak(&self) -> usize {
        self.peak
    }
}

/// Emits `rows` into `next` until it stops, then finishes it.
pub(crate) fn drain<'r>(
    rows: impl IntoIterator<Item = Row<'r>>,
    next: &mut dyn Stage,
    rc: &RunCx<'_>,
) -> Result<()> {
    for row in rows {
        if next.push(row, rc)? == Flow::Stop {
            break;
        }
    }
    next.finish(rc)
}

// ---------------------------------------------------------------------------
// Dotted paths in owned documents
// ---------------------------------------------------------------------------

/// Sets the dotted `path` in `doc`, creating (or replacing non-document)
/// intermediate fields with documents.
pub(crate) fn set_path(doc: &mut Document, path: &[String], value: Bson) {
    let Some((head, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        doc.insert(head.clone(), value);
        return;
    }
    if !matches!(doc.get(head), Some(Bson::Document(_))) {
        doc.insert(head.clone(), Bson::Document(Document::new()));
    }
    if let Some(Bson::Document(sub)) = doc.get_mut(head) {
        set_path(sub, rest, value);
    }
}

/// Removes the dotted `path` from `doc` (a missing path is no error).
pub(crate) fn remove_path(doc: &mut Document, path: &[String]) {
    let Some((head, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        doc.remove(head);
        return;
    }
    if let Some(Bson::Document(sub)) = doc.get_mut(head) {
        remove_path(sub, rest);
    }
}
