//! [`Find`]: the find statement builder and its streaming iterator.

use std::collections::VecDeque;

use heed::{RoTxn, WithoutTls};
use serde_json::Value;

use super::collection::{CollectionHandle, ExecSource, ExecutorExt};
use super::database::Database;
use crate::error::Result;
use crate::exec::read::{self as exec_read, Query};
use crate::plan::{Access, Explain};
use crate::query::filter::Filter;
use crate::query::projection::Projection;
use crate::query::sort::SortSpec;
use crate::storage::GateGuard;

/// A find statement under construction. Nothing runs until [`Find::to_vec`]
/// or iteration; malformed filters, sorts or projections are reported then.
#[derive(Debug, Clone)]
pub struct Find<X: ExecSource = Database> {
    coll: CollectionHandle<X>,
    filter: Value,
    sort: Option<Value>,
    skip: u64,
    limit: Option<u64>,
    projection: Option<Value>,
}

impl<X: ExecSource> Find<X> {
    pub(crate) fn new(coll: CollectionHandle<X>, filter: Value) -> Self {
        Find {
            coll,
            filter,
            sort: None,
            skip: 0,
            limit: None,
            projection: None,
        }
    }

    /// Orders results, e.g. `json!({"age": -1, "_id": 1})`. Without a sort,
    /// results come in primary-key order.
    pub fn sort(mut self, spec: Value) -> Self {
        self.sort = Some(spec);
        self
    }

    /// Skips the first `n` results.
    pub fn skip(mut self, n: u64) -> Self {
        self.skip = n;
        self
    }

    /// Returns at most `n` results; as in MongoDB, `limit(0)` means no limit.
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = if n == 0 { None } else { Some(n) };
        self
    }

    /// Shapes each result, e.g. `json!({"name": 1})` or `json!({"password": 0})`.
    pub fn projection(mut self, spec: Value) -> Self {
        self.projection = Some(spec);
        self
    }

    fn query(&self) -> Result<Query> {
        Ok(Query {
            filter: Filter::parse(&self.filter)?,
            sort: match &self.sort {
                Some(s) => SortSpec::parse(s)?,
                None => SortSpec::default(),
            },
            skip: self.skip,
            limit: self.limit,
            projection: match &self.projection {
                Some(p) => Projection::parse(p, self.coll.id_field())?,
                None => None,
            },
        })
    }

    /// Runs the statement and collects every result.
    pub fn to_vec(self) -> Result<Vec<Value>> {
        Ok(self.run(false)?.0)
    }

    /// Runs the statement and deserializes each result straight from its stored
    /// encoding into `T` (no intermediate JSON tree). A document that does not
    /// fit `T` yields [`crate::Error::Decode`] naming it.
    pub fn to_vec_as<T: serde::de::DeserializeOwned>(self) -> Result<Vec<T>> {
        let q = self.query()?;
        let coll = &self.coll;
        let id_field = coll.id_field().to_owned();
        coll.exec().executor().read(|store, txn, reads| {
            match coll.target_in(store, txn, reads)? {
                Some(t) => {
                    let name = t.meta.name.clone();
                    Ok(
                        exec_read::find_with(store, txn, &t, &q, false, reads, &mut |raw| {
                            decode_as(raw, q.projection.as_ref(), &name, &id_field)
                        })?
                        .0,
                    )
                }
                None => Ok(Vec::new()),
            }
        })
    }

    /// Runs the statement and reports the plan and what it cost.
    pub fn explain(self) -> Result<Explain> {
        let sorted = self.sort.is_some();
        Ok(self
            .run(true)?
            .1
            .unwrap_or_else(|| Explain::of(&crate::plan::Plan::collscan(false, true, 0), sorted)))
    }

    fn run(&self, explain: bool) -> Result<(Vec<Value>, Option<Explain>)> {
        let q = self.query()?;
        let coll = &self.coll;
        coll.exec().executor().read(|store, txn, reads| {
            match coll.target_in(store, txn, reads)? {
                Some(t) => exec_read::find(store, txn, &t, &q, explain, reads),
                None => Ok((Vec::new(), None)),
            }
        })
    }
}

/// Batch size of the streaming iterator.
const BATCH: usize = 256;

/// Iterator over the results of a [`Find`]. Without a sort, it streams in
/// batches over one read snapshot taken at the first call to `next`; with a
/// sort, or inside a transaction, it runs the statement once and then yields.
pub struct FindIter<X: ExecSource = Database> {
    state: IterState<X>,
}

enum IterState<X: ExecSource> {
    Pending(Box<Find<X>>),
    Streaming(Box<Stream>),
    Buffered(std::vec::IntoIter<Value>),
    Done,
}

struct Stream {
    // Field order matters: the snapshot ends before the gate opens.
    txn: RoTxn<'static, WithoutTls>,
    _gate: GateGuard,
    store_db: Database,
    meta: crate::catalog::CollectionMeta,
    query: Query,
    after: Option<Vec<u8>>,
    skipped: u64,
    returned: u64,
    buffer: VecDeque<Value>,
    exhausted: bool,
}

impl Stream {
    fn fill(&mut self) -> Result<()> {
        let store = &self.store_db.inner.store;
        let mut batch_left = BATCH;
        let mut last = None;
        let q = &self.query;
        let (skipped, returned, buffer) = (&mut self.skipped, &mut self.returned, &mut self.buffer);
        let mut reached_end = true;
        exec_read::scan_collection(
            store,
            &self.txn,
            &self.meta,
            &q.filter,
            self.after.as_deref(),
            &mut |key, raw| {
                last = Some(key.to_vec());
                if *skipped < q.skip {
                    *skipped += 1;
                } else {
                    buffer.push_back(exec_read::render(raw, q.projection.as_ref()));
                    *returned += 1;
                    if q.limit.is_some_and(|l| *returned >= l) {
                        return Ok(false);
                    }
                }
                batch_left -= 1;
                if batch_left == 0 {
                    reached_end = false;
                    return Ok(false);
                }
                Ok(true)
            },
        )?;
        if reached_end || q.limit.is_some_and(|l| self.returned >= l) {
            self.exhausted = true;
        }
        if last.is_some() {
            self.after = last;
        }
        Ok(())
    }
}

impl<X: ExecSource> IntoIterator for Find<X> {
    type Item = Result<Value>;
    type IntoIter = FindIter<X>;

    fn into_iter(self) -> FindIter<X> {
        FindIter {
            state: IterState::Pending(Box::new(self)),
        }
    }
}

impl<X: ExecSource> FindIter<X> {
    fn start(&mut self, find: Find<X>) -> Result<()> {
        let stream_db = match find.coll.exec().database() {
            Some(db) if find.sort.is_none() => Some(db.clone()),
            _ => None,
        };
        let Some(db) = stream_db else {
            self.state = IterState::Buffered(find.to_vec()?.into_iter());
            return Ok(());
        };
        let query = find.query()?;
        let (gate, txn) = db.inner.store.read_static()?;
        let Some(target) = find.coll.target_in(&db.inner.store, &txn, &mut None)? else {
            self.state = IterState::Done;
            return Ok(());
        };
        let meta = target.meta.clone();
        let want = query.limit.map(|l| l.saturating_add(query.skip));
        let plan = target.plan(
            &db.inner.store,
            &txn,
            &query.filter,
            &query.sort,
            want,
            false,
        )?;
        if !matches!(plan.access, Access::CollScan { reverse: false }) {
            // Index plans are short or need sorting: run them in this snapshot.
            let (rows, _) =
                exec_read::find(&db.inner.store, &txn, &target, &query, false, &mut None)?;
            self.state = IterState::Buffered(rows.into_iter());
            return Ok(());
        }
        self.state = IterState::Streaming(Box::new(Stream {
            txn,
            _gate: gate,
            store_db: db,
            meta,
            query,
            after: None,
            skipped: 0,
            returned: 0,
            buffer: VecDeque::new(),
            exhausted: false,
        }));
        Ok(())
    }
}

impl<X: ExecSource> Iterator for FindIter<X> {
    type Item = Result<Value>;

    fn next(&mut self) -> Option<Result<Value>> {
        loop {
            match &mut self.state {
                IterState::Pending(_) => {
                    let IterState::Pending(find) =
                        std::mem::replace(&mut self.state, IterState::Done)
                    else {
                        return None;
                    };
                    if let Err(e) = self.start(*find) {
                        self.state = IterState::Done;
                        return Some(Err(e));
                    }
                }
                IterState::Buffered(it) => return it.next().map(Ok),
                IterState::Streaming(s) => {
                    if let Some(v) = s.buffer.pop_front() {
                        return Some(Ok(v));
                    }
                    if s.exhausted {
                        self.state = IterState::Done;
                        return None;
                    }
                    if let Err(e) = s.fill() {
                        self.state = IterState::Done;
                        return Some(Err(e));
                    }
                }
                IterState::Done => return None,
            }
        }
    }
}

/// Deserializes a stored document (after the projection, if any) into `T`.
pub(crate) fn decode_as<T: serde::de::DeserializeOwned>(
    raw: &bson::raw::RawDocument,
    projection: Option<&crate::query::projection::Projection>,
    collection: &str,
    id_field: &str,
) -> Result<T> {
    match projection {
        // Straight from the stored bytes through the direct deserializer; what
        // it declines takes the general path below.
        None => match crate::doc::de::from_slice(raw.as_bytes()) {
            Ok(v) => Ok(v),
            Err(crate::doc::de::Declined) => decode_general(raw, collection, id_field),
        },
        Some(p) => {
            let v = p.apply(crate::doc::DocRef::Raw(raw));
            decode_value(v, collection, &document_id(raw, id_field))
        }
    }
}

/// The general decoding path (and the reference the direct deserializer is
/// tested against): `bson`'s deserializer; what it refuses (integers beyond
/// i64, stored as an integral Decimal128, and documents that do not fit `T`)
/// takes the JSON route, which renders such integers as u64 and names the
/// field that does not fit.
pub(crate) fn decode_general<T: serde::de::DeserializeOwned>(
    raw: &bson::raw::RawDocument,
    collection: &str,
    id_field: &str,
) -> Result<T> {
    bson::deserialize_from_slice(raw.as_bytes()).or_else(|_| {
        decode_value(
            crate::doc::json::json_from_raw(raw),
            collection,
            &document_id(raw, id_field),
        )
    })
}

/// The primary key of `raw` as JSON text, for error messages.
fn document_id(raw: &bson::raw::RawDocument, id_field: &str) -> String {
    raw.get(id_field)
        .ok()
        .flatten()
        .map(|v| crate::doc::json::json_from_val(crate::doc::ValRef::from(v)).to_string())
        .unwrap_or_else(|| "(no id)".into())
}

/// The JSON type of `v` as one word: `null`, `boolean`, `number`,
/// `string`, `array`, `object`.
pub(crate) fn json_kind(v: &serde_json::Value) -> &'static str {
    let name = crate::doc::json::json_type_name(v);
    name.strip_prefix("an ")
        .or_else(|| name.strip_prefix("a "))
        .unwrap_or(name)
}

/// Deserializes a document given as JSON into `T`; the error names the
/// field that does not fit and what it holds ([`crate::Error::Decode`]).
pub(crate) fn decode_value<T: serde::de::DeserializeOwned>(
    v: serde_json::Value,
    collection: &str,
    id: &str,
) -> Result<T> {
    serde_path_to_error::deserialize(&v).map_err(|e| {
        use serde_path_to_error::Segment;
        let parts: Vec<String> = e
            .path()
            .iter()
            .map(|s| match s {
                Segment::Seq { index } => index.to_string(),
                Segment::Map { key } => key.clone(),
                Segment::Enum { variant } => variant.clone(),
                Segment::Unknown => "?".into(),
            })
            .collect();
        let found = if parts.is_empty() {
            String::new()
        } else {
            let mut at = Some(&v);
            for p in &parts {
                at = at.and_then(|v| match v {
                    serde_json::Value::Object(m) => m.get(p),
                    serde_json::Value::Array(a) => p.parse::<usize>().ok().and_then(|i| a.get(i)),
                    _ => None,
                });
            }
            at.map_or("missing".to_string(), |v| json_kind(v).to_string())
        };
        crate::Error::Decode {
            collection: collection.to_owned(),
            id: id.to_owned(),
            path: parts.join("."),
            found,
            message: e.into_inner().to_string(),
        }
    })
}
