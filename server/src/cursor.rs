//! Cursors: what `find` (and `aggregate`) leave open for `getMore`.
//!
//! A cursor never holds an engine iterator (a live `FindIter` pins a read
//! snapshot and the map-resize gate) across requests. Two strategies:
//!
//! * **Keyset paging** (finds without a sort, or sorted by the primary key
//!   ascending, outside transactions): each batch re-runs the query restricted
//!   to primary keys after the last one returned. Results come in primary-key
//!   order, so a document that exists for the whole life of the cursor is
//!   returned exactly once; documents inserted or deleted meanwhile may or may
//!   not appear, as with MongoDB's default read concern. Because comparison
//!   operators are type-bracketed, `$gt` only continues within the type of the
//!   last key; when that run ends and the collection's largest key is of a
//!   higher type, one query over the higher key types continues (a collection
//!   scan, needed only for collections that mix key types).
//! * **Buffered** (sorted finds, and every cursor inside a transaction): the
//!   result is computed once and held as BSON, at most `max_buffered_bytes`
//!   per cursor (MongoDB's in-memory sort limit is 100 MiB); a larger result
//!   fails with `QueryExceededMemoryLimitNoDiskUseAllowed` (292).
//!
//! Cursors are closed after `timeout` without a `getMore`, and each connection
//! may hold at most `max_per_connection` of them.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bson::{doc, Bson, Document};

use crate::engine::{Access, Engine, FindSpec, Scope};
use crate::errors::{code, CmdResult, CommandError};

/// Largest reply batch in bytes (below `maxMessageSizeBytes` with one 16 MiB document to spare).
pub const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// Documents fetched per engine query while paging.
const CHUNK: u64 = 1024;

/// Cursor limits.
#[derive(Debug, Clone, Copy)]
pub struct CursorLimits {
    /// Idle time after which a cursor is closed.
    pub timeout: Duration,
    /// Open cursors per connection.
    pub max_per_connection: usize,
    /// Bytes a buffered cursor may hold.
    pub max_buffered_bytes: usize,
}

/// Where a cursor's documents come from.
pub enum Source {
    /// Keyset paging over the primary key.
    Paged(Box<Pager>),
    /// A computed result.
    Buffered(VecDeque<Document>),
}

/// An open cursor.
pub struct Cursor {
    /// `db.collection`, as reported in replies.
    pub ns: String,
    /// Its documents.
    pub source: Source,
    /// The connection that opened it.
    pub conn: i64,
    /// The user that opened it (`None` without authentication).
    pub user: Option<String>,
    last_used: Instant,
}

/// Keyset paging state.
pub struct Pager {
    /// Engine collection name.
    pub collection: String,
    /// The query's filter.
    pub filter: Document,
    /// The projection (with the primary key forced in when the user excluded it).
    pub projection: Option<Document>,
    /// Remove the primary key from results (the user's projection excluded it).
    pub strip_id: bool,
    /// Documents still to skip (only before the first result).
    pub skip: u64,
    /// Documents still allowed by the query's limit.
    pub remaining: Option<u64>,
    /// The primary-key field.
    pub id_field: String,
    last: Option<Bson>,
    done: bool,
}

impl Pager {
    /// Paging for a find. `projection` is the user's; the primary key is kept
    /// in results internally and removed afterwards when the user excluded it.
    pub fn new(
        collection: String,
        id_field: String,
        filter: Document,
        projection: Option<Document>,
        skip: u64,
        limit: Option<u64>,
    ) -> Pager {
        let mut strip_id = false;
        let projection = projection.and_then(|mut p| {
            if let Some(v) = p.get(&id_field) {
                if !truthy(v) {
                    p.remove(&id_field);
                    strip_id = true;
                }
            }
            (!p.is_empty()).then_some(p)
        });
        Pager {
            collection,
            filter,
            projection,
            strip_id,
            skip,
            remaining: limit,
            id_field,
            last: None,
            done: limit == Some(0),
        }
    }

    /// True when no documents are left.
    pub fn done(&self) -> bool {
        self.done
    }

    /// The next documents: at most `max_docs` (`None`: no count limit) and
    /// about `max_bytes`.
    pub fn next_batch(
        &mut self,
        engine: &Engine,
        max_docs: Option<u64>,
        max_bytes: usize,
    ) -> CmdResult<Vec<Document>> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while !self.done && bytes < max_bytes {
            let want = match max_docs {
                Some(m) => m.saturating_sub(out.len() as u64),
                None => CHUNK,
            };
            let k = want.min(CHUNK).min(self.remaining.unwrap_or(u64::MAX));
            if k == 0 {
                if self.remaining == Some(0) {
                    self.done = true;
                }
                break;
            }
            let filter = match &self.last {
                None => self.filter.clone(),
                Some(last) => and(
                    &self.filter,
                    doc! { &self.id_field: { "$gt": last.clone() } },
                ),
            };
            let bracketed = self.last.is_some();
            let mut rows = self.query(engine, filter, k)?;
            let got = rows.len() as u64;
            if got < k {
                // Unbracketed (first) query: everything was returned. Bracketed:
                // the run of the last key's type ended; continue with higher types.
                let anchor = rows
                    .last()
                    .and_then(|r| r.get(&self.id_field).cloned())
                    .or_else(|| self.last.clone());
                match anchor {
                    Some(anchor) if bracketed => {
                        let higher = self.higher_types(engine, &anchor)?;
                        if higher.is_empty() {
                            self.done = true;
                        } else {
                            let f = and(&self.filter, doc! { &self.id_field: { "$type": higher } });
                            let more = self.query(engine, f, k - got)?;
                            if (more.len() as u64) < k - got {
                                self.done = true;
                            }
                            rows.extend(more);
                        }
                    }
                    _ => self.done = true,
                }
            }
            for mut row in rows {
                self.last = row.get(&self.id_field).cloned();
                if self.strip_id {
                    row.remove(&self.id_field);
                }
                bytes += approx_size(&row);
                out.push(row);
                if let Some(r) = &mut self.remaining {
                    *r = r.saturating_sub(1);
                    if *r == 0 {
                        self.done = true;
                    }
                }
            }
            if max_docs.is_some_and(|m| out.len() as u64 >= m) {
                break;
            }
        }
        Ok(out)
    }

    fn query(&mut self, engine: &Engine, filter: Document, limit: u64) -> CmdResult<Vec<Document>> {
        let spec = FindSpec {
            filter,
            sort: None,
            projection: self.projection.clone(),
            skip: std::mem::take(&mut self.skip),
            limit: Some(limit),
        };
        find_in(engine, &self.collection, spec)
    }

    /// Type names above `last`'s type that the collection's largest key shows to exist.
    fn higher_types(&self, engine: &Engine, last: &Bson) -> CmdResult<Vec<&'static str>> {
        let id = self.id_field.clone();
        let spec = FindSpec {
            filter: Document::new(),
            sort: Some(doc! { &id: -1 }),
            projection: Some(doc! { &id: 1 }),
            skip: 0,
            limit: Some(1),
        };
        let max = find_in(engine, &self.collection, spec)?;
        let Some(max) = max.first().and_then(|d| d.get(&self.id_field)) else {
            return Ok(Vec::new());
        };
        let (r_last, r_max) = (type_rank(last), type_rank(max));
        if r_max <= r_last {
            return Ok(Vec::new());
        }
        Ok(TYPE_ORDER
            .iter()
            .filter(|(rank, _)| *rank > r_last && *rank <= r_max)
            .map(|(_, name)| *name)
            .collect())
    }
}

/// Runs a find outside any transaction; a missing collection yields nothing.
pub fn find_in(engine: &Engine, collection: &str, spec: FindSpec) -> CmdResult<Vec<Document>> {
    engine.with_coll(&Scope::Auto, collection, Access::Read, move |c| match c {
        Some(c) => c.find(&spec),
        None => Ok(Vec::new()),
    })
}

fn and(filter: &Document, extra: Document) -> Document {
    if filter.is_empty() {
        extra
    } else {
        doc! { "$and": [filter.clone(), extra] }
    }
}

fn truthy(v: &Bson) -> bool {
    match v {
        Bson::Boolean(b) => *b,
        Bson::Int32(i) => *i != 0,
        Bson::Int64(i) => *i != 0,
        Bson::Double(f) => *f != 0.0,
        _ => true,
    }
}

/// MongoDB's comparison order of types (for the types a primary key can have),
/// with the `$type` name of each.
const TYPE_ORDER: &[(u8, &str)] = &[
    (1, "minKey"),
    (2, "null"),
    (3, "number"),
    (4, "string"),
    (4, "symbol"),
    (5, "object"),
    (7, "binData"),
    (8, "objectId"),
    (9, "bool"),
    (10, "date"),
    (11, "timestamp"),
    (13, "dbPointer"),
    (14, "javascript"),
    (15, "javascriptWithScope"),
    (16, "maxKey"),
];

/// The rank of a value's type in MongoDB's cross-type order.
pub fn type_rank(v: &Bson) -> u8 {
    match v {
        Bson::MinKey => 1,
        Bson::Null | Bson::Undefined => 2,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => 3,
        Bson::String(_) | Bson::Symbol(_) => 4,
        Bson::Document(_) => 5,
        Bson::Array(_) => 6,
        Bson::Binary(_) => 7,
        Bson::ObjectId(_) => 8,
        Bson::Boolean(_) => 9,
        Bson::DateTime(_) => 10,
        Bson::Timestamp(_) => 11,
        Bson::RegularExpression(_) => 12,
        Bson::DbPointer(_) => 13,
        Bson::JavaScriptCode(_) => 14,
        Bson::JavaScriptCodeWithScope(_) => 15,
        Bson::MaxKey => 16,
    }
}

/// Approximate encoded size of a document (exact for what `to_vec` writes).
pub fn approx_size(d: &Document) -> usize {
    d.to_vec().map(|v| v.len()).unwrap_or(0)
}

/// Takes documents from a buffered result: at most `max_docs` and about `max_bytes`.
pub fn take_buffered(
    buf: &mut VecDeque<Document>,
    max_docs: Option<u64>,
    max_bytes: usize,
) -> Vec<Document> {
    let mut out = Vec::new();
    let mut bytes = 0;
    while let Some(d) = buf.front() {
        if max_docs.is_some_and(|m| out.len() as u64 >= m)
            || (bytes >= max_bytes && !out.is_empty())
        {
            break;
        }
        bytes += approx_size(d);
        if let Some(d) = buf.pop_front() {
            out.push(d);
        }
    }
    out
}

/// The open cursors of the server.
pub struct Cursors {
    limits: CursorLimits,
    open: Mutex<HashMap<i64, Cursor>>,
    /// Cursors checked out by a running `getMore` (so the count stays right).
    per_conn: Mutex<HashMap<i64, usize>>,
    next: AtomicI64,
}

impl Cursors {
    /// An empty registry.
    pub fn new(limits: CursorLimits) -> Cursors {
        Cursors {
            limits,
            open: Mutex::new(HashMap::new()),
            per_conn: Mutex::new(HashMap::new()),
            next: AtomicI64::new(1 + (std::process::id() as i64) * 1_000_000_007 % 1_000_000),
        }
    }

    /// The limits.
    pub fn limits(&self) -> CursorLimits {
        self.limits
    }

    /// Number of open cursors.
    pub fn len(&self) -> usize {
        self.open.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// True when no cursor is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fails when connection `conn` already holds the maximum of cursors.
    pub fn check_room(&self, conn: i64) -> CmdResult<()> {
        let n = self
            .per_conn
            .lock()
            .ok()
            .and_then(|m| m.get(&conn).copied())
            .unwrap_or(0);
        if n >= self.limits.max_per_connection {
            return Err(CommandError::new(
                code::EXCEEDED_MEMORY_LIMIT,
                format!(
                    "this connection already has {n} open cursors (the limit): exhaust them or close them with killCursors first"
                ),
            ));
        }
        Ok(())
    }

    /// Registers a cursor; returns its id.
    pub fn open(&self, ns: String, source: Source, conn: i64, user: Option<String>) -> i64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.per_conn.lock() {
            *m.entry(conn).or_default() += 1;
        }
        if let Ok(mut m) = self.open.lock() {
            m.insert(
                id,
                Cursor {
                    ns,
                    source,
                    conn,
                    user,
                    last_used: Instant::now(),
                },
            );
        }
        metrics::gauge!(crate::monitor::names::CURSORS).set(self.len() as f64);
        id
    }

    /// Takes a cursor out for a `getMore` (put it back with [`Cursors::put_back`]).
    pub fn take(&self, id: i64, ns: &str, user: Option<&str>) -> CmdResult<Cursor> {
        let mut m = self
            .open
            .lock()
            .map_err(|_| CommandError::new(code::INTERNAL_ERROR, "cursor registry poisoned"))?;
        match m.get(&id) {
            Some(c) if c.ns == ns && c.user.as_deref() == user => {}
            Some(c) if c.ns != ns => {
                return Err(CommandError::new(
                    code::BAD_VALUE,
                    format!("cursor {id} belongs to namespace {}, not {ns}", c.ns),
                ))
            }
            _ => {
                return Err(CommandError::new(
                    code::CURSOR_NOT_FOUND,
                    format!("cursor id {id} not found (exhausted, killed or timed out)"),
                ))
            }
        }
        m.remove(&id).ok_or_else(|| {
            CommandError::new(code::CURSOR_NOT_FOUND, format!("cursor id {id} not found"))
        })
    }

    /// Returns a cursor after a `getMore` that left documents in it.
    pub fn put_back(&self, id: i64, mut c: Cursor) {
        c.last_used = Instant::now();
        if let Ok(mut m) = self.open.lock() {
            m.insert(id, c);
        }
    }

    /// Forgets a cursor taken out and exhausted.
    pub fn finished(&self, c: &Cursor) {
        self.release(c.conn);
    }

    fn release(&self, conn: i64) {
        if let Ok(mut m) = self.per_conn.lock() {
            if let Some(n) = m.get_mut(&conn) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&conn);
                }
            }
        }
        metrics::gauge!(crate::monitor::names::CURSORS).set(self.len() as f64);
    }

    /// Kills cursors by id; returns (killed, not found).
    pub fn kill(&self, ns: &str, ids: &[i64]) -> (Vec<i64>, Vec<i64>) {
        let mut killed = Vec::new();
        let mut missing = Vec::new();
        for &id in ids {
            let removed = self.open.lock().ok().and_then(|mut m| {
                if m.get(&id).is_some_and(|c| c.ns == ns) {
                    m.remove(&id)
                } else {
                    None
                }
            });
            match removed {
                Some(c) => {
                    self.release(c.conn);
                    killed.push(id);
                }
                None => missing.push(id),
            }
        }
        (killed, missing)
    }

    /// Kills every cursor on a namespace (its collection was dropped).
    pub fn kill_namespace(&self, ns: &str) {
        self.remove_where(|c| c.ns == ns);
    }

    /// Closes cursors idle for longer than the timeout; returns how many.
    pub fn reap(&self) -> usize {
        let timeout = self.limits.timeout;
        self.remove_where(|c| c.last_used.elapsed() > timeout)
    }

    fn remove_where(&self, pred: impl Fn(&Cursor) -> bool) -> usize {
        let removed: Vec<Cursor> = match self.open.lock() {
            Ok(mut m) => {
                let ids: Vec<i64> = m
                    .iter()
                    .filter(|(_, c)| pred(c))
                    .map(|(id, _)| *id)
                    .collect();
                ids.into_iter().filter_map(|id| m.remove(&id)).collect()
            }
            Err(_) => Vec::new(),
        };
        for c in &removed {
            self.release(c.conn);
        }
        removed.len()
    }
}
