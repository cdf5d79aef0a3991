//! Change streams over the log, and durable named consumers.
//!
//! A [`ChangeStream`] tails the `log` table from a position (an LSN): it reads
//! entries in committed snapshots, turns their operations into
//! [`ChangeEvent`]s, and sleeps until the next commit when it has caught up
//! (woken at once by commits of this process, by polling for other processes).
//! Nothing is buffered at commit time, so a slow watcher costs the writers
//! nothing; a watcher that falls behind the retained log gets
//! [`Error::LogTruncated`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bson::raw::RawDocument;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::database::Database;
use crate::doc::json::json_from_raw;
use crate::doc::DocRef;
use crate::error::{Error, Result};
use crate::log::{signal, state, LogEntry, LogOp, Lsn, OpKind};
use crate::query::filter::Filter;
use crate::write::commit::{Local, Work};

/// Entries read per snapshot while catching up.
const READ_BATCH: usize = 256;

/// One operation of a committed transaction, as seen by a change stream.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// The LSN of the transaction (the resume position once `last_in_entry`).
    pub lsn: Lsn,
    /// Commit time, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// Position of the operation inside its transaction.
    pub op_index: u32,
    /// True for the last event this stream delivers from the transaction:
    /// acknowledging `lsn` after handling it loses and repeats nothing.
    pub last_in_entry: bool,
    /// What happened.
    pub operation: OpKind,
    /// The collection.
    pub collection: String,
    /// The document's primary key (document operations).
    pub id: Option<Value>,
    /// The full document after the change (insert, update, replace).
    pub document: Option<Value>,
    /// For collection and index operations: the collection options, the
    /// index specification, the dropped index's name, or the schema version.
    pub detail: Option<Value>,
}

impl ChangeEvent {
    /// Decodes the full document into a Rust type.
    pub fn document_as<T: DeserializeOwned>(&self) -> Result<T> {
        let doc = self.document.clone().ok_or_else(|| Error::Decode {
            collection: self.collection.clone(),
            id: self.id.as_ref().map_or("?".into(), Value::to_string),
            message: format!("a {} event carries no document", self.operation.name()),
        })?;
        serde_json::from_value(doc).map_err(|e| Error::Decode {
            collection: self.collection.clone(),
            id: self.id.as_ref().map_or("?".into(), Value::to_string),
            message: e.to_string(),
        })
    }
}

/// What a stream delivers.
#[derive(Debug, Clone, Default)]
struct Selection {
    collection: Option<String>,
    filter: Option<Filter>,
    operations: Option<Vec<OpKind>>,
}

impl Selection {
    fn admits(&self, op: &LogOp) -> bool {
        if let Some(c) = &self.collection {
            if op.collection() != c {
                return false;
            }
        }
        if let Some(kinds) = &self.operations {
            if !kinds.contains(&op.kind()) {
                return false;
            }
        }
        match (&self.filter, op) {
            (None, _) => true,
            (Some(f), LogOp::Put { document, .. }) => {
                raw(document).is_some_and(|d| f.matches(DocRef::Raw(d)))
            }
            (Some(f), LogOp::Delete { key, .. }) => {
                raw(key).is_some_and(|d| f.matches(DocRef::Raw(d)))
            }
            (Some(_), _) => false,
        }
    }
}

fn raw(bytes: &[u8]) -> Option<&RawDocument> {
    RawDocument::from_bytes(bytes).ok()
}

fn first_value(doc: &RawDocument) -> Option<Value> {
    match json_from_raw(doc) {
        Value::Object(m) => m.into_iter().next().map(|(_, v)| v),
        _ => None,
    }
}

fn event(entry: &LogEntry, index: usize, op: &LogOp) -> ChangeEvent {
    let mut ev = ChangeEvent {
        lsn: entry.lsn,
        timestamp_ms: entry.timestamp_ms,
        op_index: index as u32,
        last_in_entry: false,
        operation: op.kind(),
        collection: op.collection().to_owned(),
        id: None,
        document: None,
        detail: None,
    };
    match op {
        LogOp::Put { document, .. } => {
            if let Some(d) = raw(document) {
                ev.id = first_value(d);
                ev.document = Some(json_from_raw(d));
            }
        }
        LogOp::Delete { key, .. } => ev.id = raw(key).and_then(first_value),
        LogOp::CreateCollection { options, .. } => ev.detail = serde_json::to_value(options).ok(),
        LogOp::CreateIndex { spec, .. } => ev.detail = serde_json::to_value(spec).ok(),
        LogOp::DropIndex { name, .. } => ev.detail = Some(Value::String(name.clone())),
        LogOp::SchemaVersion { version, .. } => ev.detail = Some(Value::from(*version)),
        LogOp::DropCollection { .. } => {}
    }
    ev
}

/// A change stream: a blocking iterator over the events of committed
/// transactions after a position, in commit order, each exactly once.
///
/// ```
/// # fn main() -> collection_store::Result<()> {
/// # let dir = tempfile::tempdir()?;
/// use collection_store::Database;
/// use serde_json::json;
///
/// let db = Database::open(dir.path())?;
/// let users = db.collection("users")?;
/// let mut stream = users.watch(json!({"age": {"$gte": 18}}))?;
/// users.insert_one(json!({"_id": 1, "age": 30}))?;
/// users.insert_one(json!({"_id": 2, "age": 9}))?;
/// let ev = stream.next().unwrap()?;
/// assert_eq!(ev.id, Some(json!(1)));
/// assert_eq!(ev.operation.name(), "insert");
/// # Ok(()) }
/// ```
pub struct ChangeStream {
    db: Database,
    position: Lsn,
    buffer: VecDeque<ChangeEvent>,
    select: Selection,
}

impl std::fmt::Debug for ChangeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeStream")
            .field("position", &self.position)
            .field("buffered", &self.buffer.len())
            .finish()
    }
}

impl ChangeStream {
    pub(crate) fn new(db: Database, after: Lsn) -> ChangeStream {
        ChangeStream {
            db,
            position: after,
            buffer: VecDeque::new(),
            select: Selection::default(),
        }
    }

    /// Only events of collection `name`.
    pub fn collection(mut self, name: &str) -> Self {
        self.select.collection = Some(name.to_owned());
        self
    }

    /// Only document events whose document (the full document after the
    /// change; for a delete, `{_id: key}`) matches `filter`, a MongoDB filter.
    /// With a filter, collection and index events are not delivered.
    pub fn filter(mut self, filter: &Value) -> Result<Self> {
        let empty = matches!(filter, Value::Object(m) if m.is_empty());
        self.select.filter = if empty {
            None
        } else {
            Some(Filter::parse(filter)?)
        };
        Ok(self)
    }

    /// Only events of these kinds.
    pub fn operations(mut self, kinds: impl IntoIterator<Item = OpKind>) -> Self {
        self.select.operations = Some(kinds.into_iter().collect());
        self
    }

    /// The LSN of the last transaction whose events were all delivered (or
    /// skipped by the selection): `watch_from(position)` continues from here.
    pub fn position(&self) -> Lsn {
        if let Some(first) = self.buffer.front() {
            first.lsn - 1
        } else {
            self.position
        }
    }

    /// Reads the entries committed after the position; false when there were none.
    fn fill(&mut self) -> Result<bool> {
        let engine = &self.db.inner;
        let store = &engine.store;
        let (_gate, txn) = store.read()?;
        if !state::newer_retained(store, &txn, self.position)? {
            return Ok(false);
        }
        let mut read = 0;
        let select = &self.select;
        let buffer = &mut self.buffer;
        let position = &mut self.position;
        let visited = state::visit_frames(
            store,
            &txn,
            &engine.wal,
            *position,
            None,
            &mut |lsn, frame| {
                let entry = match LogEntry::decode(lsn, frame) {
                    Ok(e) => e,
                    // Deliver what came before; the next read reports the damage.
                    Err(_) if read > 0 => return Ok(false),
                    Err(e) => return Err(e),
                };
                let before = buffer.len();
                for (i, op) in entry.ops.iter().enumerate() {
                    if select.admits(op) {
                        buffer.push_back(event(&entry, i, op));
                    }
                }
                if buffer.len() > before {
                    if let Some(last) = buffer.back_mut() {
                        last.last_in_entry = true;
                    }
                }
                *position = lsn;
                read += 1;
                Ok(read < READ_BATCH)
            },
        );
        match visited {
            // Deliver what came before; the next read reports the damage.
            Err(_) if read > 0 => Ok(true),
            Err(e) => Err(e),
            Ok(()) => Ok(true),
        }
    }

    /// The next event if one is committed already; never waits.
    pub fn try_next(&mut self) -> Result<Option<ChangeEvent>> {
        loop {
            if let Some(ev) = self.buffer.pop_front() {
                return Ok(Some(ev));
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// The next event, waiting up to `timeout` for one to be committed.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<ChangeEvent>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(ev) = self.try_next()? {
                return Ok(Some(ev));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let slice = deadline.min(now + signal::POLL_INTERVAL);
            self.db.inner.log.signal.wait_past(self.position, slice);
        }
    }
}

/// Blocks until the next event; an error (for example [`Error::LogTruncated`])
/// is yielded and the stream stays where it was.
impl Iterator for ChangeStream {
    type Item = Result<ChangeEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.next_timeout(Duration::from_secs(3600)) {
                Ok(Some(ev)) => return Some(Ok(ev)),
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// A durable named consumer: its acknowledged position is stored in the
/// database (so it survives restarts of both sides) and holds back log
/// retention up to the hard limits. See [`Database::consumer`].
#[derive(Debug, Clone)]
pub struct Consumer {
    db: Database,
    name: String,
}

impl Consumer {
    pub(crate) fn new(db: Database, name: String) -> Consumer {
        Consumer { db, name }
    }

    /// The consumer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The last acknowledged LSN.
    pub fn position(&self) -> Result<Lsn> {
        let store = &self.db.inner.store;
        let (_g, txn) = store.read()?;
        state::consumer_position(store, &txn, &self.name)?
            .ok_or_else(|| Error::InvalidConsumer(format!("consumer '{}' was dropped", self.name)))
    }

    /// A change stream from the acknowledged position.
    pub fn changes(&self) -> Result<ChangeStream> {
        Ok(ChangeStream::new(self.db.clone(), self.position()?))
    }

    /// Durably records that everything up to `lsn` is handled (acknowledge an
    /// event's `lsn` once its `last_in_entry` event is handled). Positions
    /// never move backwards.
    pub fn ack(&self, lsn: Lsn) -> Result<()> {
        let work = Work::Local(Local::AckConsumer(self.name.clone(), lsn));
        self.db.inner.submit(work)?;
        Ok(())
    }
}
