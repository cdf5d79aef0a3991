//! [`Aggregate`]: the aggregate statement builder, its typed view
//! [`AggregateAs`] and the streaming iterators.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::collection::{CollectionHandle, ExecSource};
use super::collection::{Executor, ExecutorExt};
use super::database::Database;
use crate::aggregate::{
    run_on, AggregateExplain, Flow, Pipeline, Report, Row, RunOn, DEFAULT_MEMORY_LIMIT,
};
use crate::doc::json::json_from_doc;
use crate::doc::DocRef;
use crate::error::{Error, Result};

/// An aggregation pipeline under construction. Nothing runs until
/// [`to_vec`](Self::to_vec), [`explain`](Self::explain) or iteration; a
/// malformed pipeline is reported then, before any document is read.
///
/// ```
/// # use collection_store::Database;
/// # use serde_json::json;
/// # fn main() -> collection_store::Result<()> {
/// # let dir = tempfile::tempdir()?;
/// # let db = Database::open(dir.path())?;
/// let sales = db.collection("sales")?;
/// sales.insert_many(vec![
///     json!({"_id": 1, "item": "abc", "price": 10, "quantity": 2}),
///     json!({"_id": 2, "item": "xyz", "price": 5, "quantity": 10}),
///     json!({"_id": 3, "item": "abc", "price": 10, "quantity": 10}),
/// ])?;
/// let totals = sales
///     .aggregate(json!([
///         {"$group": {"_id": "$item", "revenue": {"$sum": {"$multiply": ["$price", "$quantity"]}}}},
///         {"$sort": {"revenue": -1}},
///     ]))
///     .to_vec()?;
/// assert_eq!(totals, vec![json!({"_id": "abc", "revenue": 120}), json!({"_id": "xyz", "revenue": 50})]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Aggregate<X: ExecSource = Database> {
    coll: CollectionHandle<X>,
    pipeline: Value,
    memory_limit: usize,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Runs `pipeline` on collection `name` through `ex`.
#[allow(clippy::too_many_arguments)]
fn run_through(
    ex: &dyn Executor,
    name: &str,
    pipeline: &Pipeline,
    memory_limit: usize,
    now: i64,
    explain: bool,
    cancel: Option<&AtomicBool>,
    emit: &mut dyn FnMut(Row<'_>) -> Result<Flow>,
) -> Result<Option<Report>> {
    ex.read(|store, txn, reads| {
        let on = RunOn {
            store,
            txn,
            targets: ex.targets(),
            committed: ex.reads_committed(),
            memory_limit,
            now,
            explain,
            cancel,
        };
        run_on(on, reads, name, pipeline, &mut *emit)
    })
}

fn decode_err(collection: &str, doc: DocRef<'_>, message: String) -> Error {
    Error::Decode {
        collection: collection.to_owned(),
        id: doc
            .get("_id")
            .map(|v| crate::doc::json::json_from_val(v).to_string())
            .unwrap_or_else(|| "(no _id)".into()),
        path: String::new(),
        found: String::new(),
        message,
    }
}

/// Deserializes one output document into `T`.
fn decode_row<T: DeserializeOwned>(row: Row<'_>, collection: &str) -> Result<T> {
    match row {
        Row::Raw(r) => super::find::decode_as(r, None, collection, "_id"),
        Row::Buf(b) => super::find::decode_as(&b, None, collection, "_id"),
        Row::Own(d) => bson::deserialize_from_document::<T>(d.clone()).or_else(|first| {
            serde_json::from_value(json_from_doc(DocRef::Owned(&d)))
                .map_err(|_| decode_err(collection, DocRef::Owned(&d), first.to_string()))
        }),
    }
}

impl<X: ExecSource> Aggregate<X> {
    pub(crate) fn new(coll: CollectionHandle<X>, pipeline: Value) -> Self {
        Aggregate {
            coll,
            pipeline,
            memory_limit: DEFAULT_MEMORY_LIMIT,
        }
    }

    /// The bytes each blocking stage may hold ([`DEFAULT_MEMORY_LIMIT`] unless
    /// set); a stage that needs more fails with
    /// [`Error::MemoryLimitExceeded`] and nothing is returned.
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }

    fn run(
        &self,
        explain: bool,
        emit: &mut dyn FnMut(Row<'_>) -> Result<Flow>,
    ) -> Result<Option<Report>> {
        let pipeline = Pipeline::parse(&self.pipeline)?;
        run_through(
            self.coll.exec().executor(),
            self.coll.name(),
            &pipeline,
            self.memory_limit,
            now_ms(),
            explain,
            None,
            emit,
        )
    }

    /// Runs the pipeline and collects every output document.
    pub fn to_vec(self) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        self.run(false, &mut |row| {
            out.push(json_from_doc(row.doc()));
            Ok(Flow::More)
        })?;
        Ok(out)
    }

    /// Runs the pipeline and deserializes each output document into `T`
    /// (stored documents straight from their encoding). A document that does
    /// not fit `T` yields [`Error::Decode`] naming its `_id`.
    pub fn to_vec_as<T: DeserializeOwned>(self) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let name = self.coll.name().to_owned();
        self.run(false, &mut |row| {
            out.push(decode_row(row, &name)?);
            Ok(Flow::More)
        })?;
        Ok(out)
    }

    /// A typed view: its results (and iteration) are `T` values.
    pub fn aggregate_as<T: DeserializeOwned>(self) -> AggregateAs<T, X> {
        AggregateAs {
            agg: self,
            _marker: PhantomData,
        }
    }

    /// Runs the pipeline (discarding its output) and reports how each part ran:
    /// the source's plan (the index used by the leading `$match`/`$sort`, its
    /// bounds, keys and documents examined), the stages it absorbed, and per
    /// remaining stage what it did (for `$lookup`: the foreign plan).
    pub fn explain(self) -> Result<AggregateExplain> {
        let report = self.run(true, &mut |_| Ok(Flow::More))?;
        let r = report.ok_or_else(|| {
            Error::TransactionClosed("the pipeline did not produce an explain".into())
        })?;
        Ok(AggregateExplain {
            source: r.source,
            absorbed: r.absorbed,
            source_sort_memory: r.sort_memory,
            stages: r.stages,
        })
    }
}

/// A typed aggregate statement ([`Aggregate::aggregate_as`]).
pub struct AggregateAs<T, X: ExecSource = Database> {
    agg: Aggregate<X>,
    _marker: PhantomData<fn() -> T>,
}

impl<T, X: ExecSource> std::fmt::Debug for AggregateAs<T, X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregateAs")
            .field("type", &std::any::type_name::<T>())
            .field("pipeline", &self.agg.pipeline)
            .finish()
    }
}

impl<T: DeserializeOwned, X: ExecSource> AggregateAs<T, X> {
    /// See [`Aggregate::memory_limit`].
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.agg = self.agg.memory_limit(bytes);
        self
    }

    /// Runs the pipeline; every output document deserialized into `T`.
    pub fn to_vec(self) -> Result<Vec<T>> {
        self.agg.to_vec_as()
    }

    /// See [`Aggregate::explain`].
    pub fn explain(self) -> Result<AggregateExplain> {
        self.agg.explain()
    }
}

impl<T: DeserializeOwned, X: ExecSource> IntoIterator for AggregateAs<T, X> {
    type Item = Result<T>;
    type IntoIter = AggregateAsIter<T, X>;

    fn into_iter(self) -> AggregateAsIter<T, X> {
        AggregateAsIter {
            collection: self.agg.coll.name().to_owned(),
            inner: self.agg.into_iter(),
            _marker: PhantomData,
        }
    }
}

/// Iterator over an [`AggregateAs`]'s results (see [`AggregateIter`]).
pub struct AggregateAsIter<T, X: ExecSource = Database> {
    collection: String,
    inner: AggregateIter<X>,
    _marker: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned, X: ExecSource> Iterator for AggregateAsIter<T, X> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        let v = match self.inner.next()? {
            Ok(v) => v,
            Err(e) => return Some(Err(e)),
        };
        let id = v
            .get("_id")
            .map(Value::to_string)
            .unwrap_or_else(|| "(no _id)".into());
        Some(crate::handles::find::decode_value(v, &self.collection, &id))
    }
}

/// Documents per message from the reader thread.
const BATCH: usize = 256;

enum Msg {
    Batch(Vec<Value>),
    Failed(Error),
    End,
}

/// Iterator over an [`Aggregate`]'s output.
///
/// On a [`Database`] collection the pipeline runs on a reader thread over
/// one read snapshot taken at the first call to `next`, sending documents in
/// batches through a bounded channel: output streams as it is produced, and
/// memory stays bounded for streaming pipelines. Dropping the iterator stops
/// the reader. Inside a transaction (whose read view is bound to its thread)
/// the pipeline runs once at the first `next`, then yields.
pub struct AggregateIter<X: ExecSource = Database> {
    state: IterState<X>,
}

enum IterState<X: ExecSource> {
    Pending(Box<Aggregate<X>>),
    Buffered(std::vec::IntoIter<Value>),
    Streaming {
        rx: Receiver<Msg>,
        buffer: VecDeque<Value>,
        cancel: Arc<AtomicBool>,
    },
    Done,
}

impl<X: ExecSource> IntoIterator for Aggregate<X> {
    type Item = Result<Value>;
    type IntoIter = AggregateIter<X>;

    fn into_iter(self) -> AggregateIter<X> {
        AggregateIter {
            state: IterState::Pending(Box::new(self)),
        }
    }
}

impl<X: ExecSource> AggregateIter<X> {
    fn start(agg: Aggregate<X>) -> Result<IterState<X>> {
        let Some(db) = agg.coll.exec().database().cloned() else {
            return Ok(IterState::Buffered(agg.to_vec()?.into_iter()));
        };
        let pipeline = Pipeline::parse(&agg.pipeline)?;
        let (tx, rx) = sync_channel::<Msg>(2);
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = cancel.clone();
        let name = agg.coll.name().to_owned();
        let memory_limit = agg.memory_limit;
        let now = now_ms();
        let spawned = std::thread::Builder::new()
            .name("cs-aggregate".into())
            .spawn(move || {
                let mut batch = Vec::with_capacity(BATCH);
                let outcome = run_through(
                    &db,
                    &name,
                    &pipeline,
                    memory_limit,
                    now,
                    false,
                    Some(&stop),
                    &mut |row| {
                        batch.push(json_from_doc(row.doc()));
                        if batch.len() >= BATCH {
                            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                            if tx.send(Msg::Batch(full)).is_err() {
                                stop.store(true, Ordering::Relaxed);
                                return Ok(Flow::Stop);
                            }
                        }
                        Ok(Flow::More)
                    },
                );
                let last = match outcome {
                    Ok(_) => {
                        if !batch.is_empty() {
                            let _ = tx.send(Msg::Batch(batch));
                        }
                        Msg::End
                    }
                    Err(e) => Msg::Failed(e),
                };
                let _ = tx.send(last);
            });
        match spawned {
            Ok(_) => Ok(IterState::Streaming {
                rx,
                buffer: VecDeque::new(),
                cancel,
            }),
            // No thread to spare: run here and yield from memory.
            Err(_) => Ok(IterState::Buffered(agg.to_vec()?.into_iter())),
        }
    }
}

impl<X: ExecSource> Iterator for AggregateIter<X> {
    type Item = Result<Value>;

    fn next(&mut self) -> Option<Result<Value>> {
        loop {
            match &mut self.state {
                IterState::Pending(_) => {
                    let IterState::Pending(agg) =
                        std::mem::replace(&mut self.state, IterState::Done)
                    else {
                        return None;
                    };
                    match Self::start(*agg) {
                        Ok(s) => self.state = s,
                        Err(e) => return Some(Err(e)),
                    }
                }
                IterState::Buffered(it) => return it.next().map(Ok),
                IterState::Streaming { rx, buffer, .. } => {
                    if let Some(v) = buffer.pop_front() {
                        return Some(Ok(v));
                    }
                    match rx.recv() {
                        Ok(Msg::Batch(b)) => buffer.extend(b),
                        Ok(Msg::End) => {
                            self.state = IterState::Done;
                            return None;
                        }
                        Ok(Msg::Failed(e)) => {
                            self.state = IterState::Done;
                            return Some(Err(e));
                        }
                        Err(_) => {
                            self.state = IterState::Done;
                            return Some(Err(Error::TransactionClosed(
                                "the pipeline's reader thread ended before finishing".into(),
                            )));
                        }
                    }
                }
                IterState::Done => return None,
            }
        }
    }
}

impl<X: ExecSource> Drop for AggregateIter<X> {
    fn drop(&mut self) {
        if let IterState::Streaming { cancel, .. } = &self.state {
            cancel.store(true, Ordering::Relaxed);
        }
    }
}
