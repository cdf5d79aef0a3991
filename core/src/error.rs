//! The error type: one enum whose variants a caller can match on.

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in collection-store.
///
/// Every variant carries a message meant for a person: it names the offending
/// operator, path or value and says what is accepted instead. Errors caused by
/// bad input never change stored data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A filter (query) document is malformed: unknown operator, wrong operand type, ...
    #[error("invalid filter: {0}")]
    InvalidFilter(String),
    /// An update document is malformed: unknown operator, mixed operators and fields,
    /// empty update, conflicting paths, ...
    #[error("invalid update: {0}")]
    InvalidUpdate(String),
    /// A sort specification is malformed.
    #[error("invalid sort: {0}")]
    InvalidSort(String),
    /// A projection specification is malformed.
    #[error("invalid projection: {0}")]
    InvalidProjection(String),
    /// An aggregation pipeline is malformed: unknown stage or expression operator,
    /// wrong operand, undefined variable, ... The message names the stage.
    #[error("invalid pipeline: {0}")]
    InvalidPipeline(String),
    /// A blocking aggregation stage (`$group`, `$sort` without an index, `$bucket`,
    /// `$facet`, ...) needed more memory than its limit. Nothing was returned.
    #[error("{stage} needs more than {limit} bytes of memory (the per-stage limit); filter or project documents earlier in the pipeline, or raise the limit with Aggregate::memory_limit")]
    MemoryLimitExceeded {
        /// The stage, with its position in the pipeline (`stage 2 ($group)`).
        stage: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// A document is not acceptable for storage (not an object, bad field name, ...).
    #[error("invalid document: {0}")]
    InvalidDocument(String),
    /// A regular expression in a filter does not compile.
    #[error("invalid regular expression /{pattern}/: {message}")]
    InvalidRegex {
        /// The pattern as given.
        pattern: String,
        /// What the regex compiler reported.
        message: String,
    },
    /// A document exceeds [`crate::MAX_DOCUMENT_SIZE`] once encoded.
    #[error("document is {size} bytes once encoded; the limit is {limit} bytes")]
    DocumentTooLarge {
        /// Encoded size of the document.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// An update operator met a value of the wrong type in a stored document
    /// (for example `$inc` on a string), or an aggregation expression could not
    /// be evaluated on a document (`$add` on a string, `$divide` by zero); then
    /// `path` names the stage and the output field. The statement changed nothing.
    #[error("cannot apply {operator} to field '{path}': {message}")]
    TypeMismatch {
        /// The update operator.
        operator: String,
        /// The dotted path.
        path: String,
        /// What was found instead.
        message: String,
    },
    /// An update tried to change the primary key of a document.
    #[error(
        "the primary key field '{field}' is immutable; performing this update would change it"
    )]
    ImmutableField {
        /// The id field name.
        field: String,
    },
    /// A document for a collection whose primary key is not `_id` (one declared
    /// with `#[document(id)] id` or [`CollectionOptions::with_id_field`]) carries
    /// an `_id` field. It would be stored as a plain field beside the real key,
    /// and typed reads of the collection would no longer agree with it.
    ///
    /// [`CollectionOptions::with_id_field`]: crate::CollectionOptions::with_id_field
    #[error(
        "this collection keeps its primary key in '{id_field}', not '_id': put the key in '{id_field}' (a document here may not have a field named '_id')"
    )]
    IdFieldMismatch {
        /// The collection's primary key field.
        id_field: String,
    },
    /// Integer arithmetic overflowed 64 bits.
    #[error("integer overflow applying {operator} to field '{path}'")]
    Overflow {
        /// The update operator.
        operator: String,
        /// The dotted path.
        path: String,
    },
    /// A unique constraint (the primary key or a unique index) was violated.
    #[error("duplicate key in index '{index}': {key}")]
    DuplicateKey {
        /// The index name (`_id_` for the primary key).
        index: String,
        /// The duplicate key, rendered as JSON.
        key: String,
    },
    /// A collection name or option is not acceptable.
    #[error("invalid collection: {0}")]
    InvalidCollection(String),
    /// An index specification is malformed or conflicts with an existing index.
    #[error("invalid index: {0}")]
    InvalidIndex(String),
    /// A durable consumer name or acknowledgement is not acceptable, or the
    /// consumer was dropped.
    #[error("invalid consumer: {0}")]
    InvalidConsumer(String),
    /// The named index does not exist.
    #[error("index '{0}' not found")]
    IndexNotFound(String),
    /// A collection was opened with options that differ from the stored ones.
    #[error("collection '{name}' exists with different options: {message}")]
    CollectionOptionsMismatch {
        /// The collection name.
        name: String,
        /// What differs.
        message: String,
    },
    /// Stored bytes failed validation (checksum mismatch, undecodable record).
    #[error("corrupt data in {location}: {message}")]
    Corrupt {
        /// Where the corruption was found (table and key).
        location: String,
        /// What is wrong.
        message: String,
        /// The log entry concerned, when the damage is in the change log.
        lsn: Option<u64>,
    },
    /// The change log no longer holds the entries asked for: retention removed
    /// them. A change stream must restart from a newer position; a replica or
    /// consumer must resynchronise from a snapshot.
    #[error("the change log no longer holds entry {requested}; the oldest retained entry is {first_available} (resume from a newer position or resynchronise from a snapshot)")]
    LogTruncated {
        /// The first LSN that was asked for.
        requested: u64,
        /// The oldest LSN still retained.
        first_available: u64,
    },
    /// Log entries were offered out of order: the next expected LSN is `expected`.
    #[error("log entries out of order: expected entry {expected}, got {found}")]
    LogGap {
        /// The LSN that must come next.
        expected: u64,
        /// The LSN that came.
        found: u64,
    },
    /// The transaction was already committed or rolled back, or a previous
    /// statement in it failed in a way that requires a rollback.
    #[error("transaction is no longer usable: {0}")]
    TransactionClosed(String),
    /// A write transaction is already open on this thread for this database;
    /// starting another would wait for itself forever.
    #[error("this thread already has an open write transaction on this database; run the statement through that transaction (tx.collection(...)) or finish it first")]
    TransactionInProgress,
    /// What a transaction read changed before it could be applied (a change
    /// set validated where it is applied, as in a replicated mode). Nothing of
    /// it was applied; run the transaction again.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Another process committed while this transaction was being moved to a
    /// larger memory map, so its reads may be stale. Nothing was committed; retry.
    #[error("write conflict: another process committed while the database map was growing; the transaction was rolled back, retry it")]
    WriteConflict,
    /// A stored document does not deserialize into the requested Rust type
    /// (written by an older schema or through the untyped API).
    #[error(
        "document {id} in collection '{collection}' does not fit the requested type{}: {message}",
        if path.is_empty() { String::new() } else { format!(" at field '{path}' (found {found})") }
    )]
    Decode {
        /// The collection.
        collection: String,
        /// The document's primary key, rendered as JSON.
        id: String,
        /// The dotted path of the field that does not fit (array elements
        /// by index, as in filters); empty when the document as a whole
        /// does not fit.
        path: String,
        /// The JSON type of the stored value at `path` (`string`, `number`,
        /// `object`, ...), or `missing`; empty when `path` is.
        found: String,
        /// What serde reported (for a wrong type: the type it expected).
        message: String,
    },
    /// The application aborted a transaction (return this from a
    /// `Database::transaction` closure to roll back with a reason).
    #[error("transaction aborted: {0}")]
    Aborted(String),
    /// The directory is already open in this process with a different
    /// value of `option`; one process shares one handle per directory, so
    /// open it with the same options (or clone the open handle).
    #[error("the database at {} is already open in this process with {option} = {open}; this open asked for {option} = {asked} (open it with the same options, or reuse the open handle)", path.display())]
    AlreadyOpen {
        /// The database directory.
        path: std::path::PathBuf,
        /// The option that differs (a field of `DatabaseOptions`).
        option: &'static str,
        /// Its value in the open handle.
        open: String,
        /// Its value in this open.
        asked: String,
    },
    /// The database was opened read-only.
    #[error("the database is read-only")]
    ReadOnly,
    /// An error reported by LMDB (a full disk arrives as [`Error::NoSpace`]).
    #[error("storage error: {0}")]
    Storage(heed::Error),
    /// An operating-system I/O error (a full disk arrives as [`Error::NoSpace`]).
    #[error("I/O error: {0}")]
    Io(std::io::Error),
    /// An operating-system I/O error on a named file or directory.
    #[error("I/O error on {}: {source}", path.display())]
    IoAt {
        /// The file or directory concerned.
        path: std::path::PathBuf,
        /// What the operating system reported.
        source: std::io::Error,
    },
    /// The disk (or the file system's quota) is full. Nothing of the failed
    /// write was committed; free space and retry.
    #[error("no space left on the device{}: {message}", path.as_ref().map(|p| format!(" holding {}", p.display())).unwrap_or_default())]
    NoSpace {
        /// The file or directory being written, when known.
        path: Option<std::path::PathBuf>,
        /// What failed.
        message: String,
    },
    /// A replication peer did not prove knowledge of the shared secret (or this
    /// side's secret is not the one the peer expects). Nothing was exchanged.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// A replication peer sent a malformed, oversized or unexpected message, or
    /// speaks another protocol version. The connection was closed.
    #[error("replication protocol error: {0}")]
    Protocol(String),
    /// A replication configuration or state problem (bad option, replica ahead of
    /// its primary, snapshot that does not verify, ...).
    #[error("replication: {0}")]
    Replication(String),
    /// Semi-synchronous replication: the write is committed and durable on this
    /// primary, but fewer replicas than required confirmed it in time. It was not
    /// rolled back; it will reach the replicas when they catch up.
    #[error("write committed locally at LSN {lsn} (durable on this primary, not rolled back) but confirmed by only {confirmed} of the {required} required replicas within {timeout_ms} ms")]
    NotReplicated {
        /// The LSN of the write's log entry.
        lsn: u64,
        /// Replicas that had durably applied it when the wait ended.
        confirmed: usize,
        /// Replicas required by the semi-synchronous configuration.
        required: usize,
        /// The configured wait.
        timeout_ms: u64,
    },
}

/// A full disk or quota becomes [`Error::NoSpace`]; anything else [`Error::Io`].
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        if is_no_space(&e) {
            Error::NoSpace {
                path: None,
                message: e.to_string(),
            }
        } else {
            Error::Io(e)
        }
    }
}

/// LMDB's errors become [`Error::Storage`], except a full disk
/// ([`Error::NoSpace`]).
impl From<heed::Error> for Error {
    fn from(e: heed::Error) -> Error {
        match e {
            heed::Error::Io(io) if is_no_space(&io) => Error::NoSpace {
                path: None,
                message: io.to_string(),
            },
            other => Error::Storage(other),
        }
    }
}

impl Error {
    /// An I/O error on `path`: [`Error::NoSpace`] when the disk is full,
    /// otherwise [`Error::IoAt`].
    pub fn io_at(path: impl Into<std::path::PathBuf>, e: std::io::Error) -> Error {
        let path = path.into();
        if is_no_space(&e) {
            Error::NoSpace {
                path: Some(path),
                message: e.to_string(),
            }
        } else {
            Error::IoAt { path, source: e }
        }
    }
}

/// True when `e` says the disk or quota is full (`ENOSPC`, `EDQUOT`).
pub(crate) fn is_no_space(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(28) | Some(122))
        || e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
}

fn copy_io(e: &std::io::Error) -> std::io::Error {
    match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::new(e.kind(), e.to_string()),
    }
}

fn copy_heed(e: &heed::Error) -> heed::Error {
    match e {
        heed::Error::Io(io) => heed::Error::Io(copy_io(io)),
        heed::Error::Mdb(m) => heed::Error::Mdb(*m),
        heed::Error::Encoding(b) => heed::Error::Encoding(b.to_string().into()),
        heed::Error::Decoding(b) => heed::Error::Decoding(b.to_string().into()),
        heed::Error::EnvAlreadyOpened => heed::Error::EnvAlreadyOpened,
    }
}

/// A copy with the same variant, fields and message: one failure that
/// concerns several callers (every member of a failed group commit) reaches
/// each of them as the error it is. I/O errors keep their kind and OS error
/// code; boxed encoder errors keep their message.
impl Clone for Error {
    fn clone(&self) -> Self {
        use Error::*;
        match self {
            InvalidFilter(m) => InvalidFilter(m.clone()),
            InvalidUpdate(m) => InvalidUpdate(m.clone()),
            InvalidSort(m) => InvalidSort(m.clone()),
            InvalidProjection(m) => InvalidProjection(m.clone()),
            InvalidPipeline(m) => InvalidPipeline(m.clone()),
            MemoryLimitExceeded { stage, limit } => MemoryLimitExceeded {
                stage: stage.clone(),
                limit: *limit,
            },
            InvalidDocument(m) => InvalidDocument(m.clone()),
            InvalidRegex { pattern, message } => InvalidRegex {
                pattern: pattern.clone(),
                message: message.clone(),
            },
            DocumentTooLarge { size, limit } => DocumentTooLarge {
                size: *size,
                limit: *limit,
            },
            TypeMismatch {
                operator,
                path,
                message,
            } => TypeMismatch {
                operator: operator.clone(),
                path: path.clone(),
                message: message.clone(),
            },
            ImmutableField { field } => ImmutableField {
                field: field.clone(),
            },
            IdFieldMismatch { id_field } => IdFieldMismatch {
                id_field: id_field.clone(),
            },
            Overflow { operator, path } => Overflow {
                operator: operator.clone(),
                path: path.clone(),
            },
            DuplicateKey { index, key } => DuplicateKey {
                index: index.clone(),
                key: key.clone(),
            },
            InvalidCollection(m) => InvalidCollection(m.clone()),
            InvalidIndex(m) => InvalidIndex(m.clone()),
            InvalidConsumer(m) => InvalidConsumer(m.clone()),
            IndexNotFound(m) => IndexNotFound(m.clone()),
            CollectionOptionsMismatch { name, message } => CollectionOptionsMismatch {
                name: name.clone(),
                message: message.clone(),
            },
            Corrupt {
                location,
                message,
                lsn,
            } => Corrupt {
                location: location.clone(),
                message: message.clone(),
                lsn: *lsn,
            },
            LogTruncated {
                requested,
                first_available,
            } => LogTruncated {
                requested: *requested,
                first_available: *first_available,
            },
            LogGap { expected, found } => LogGap {
                expected: *expected,
                found: *found,
            },
            TransactionClosed(m) => TransactionClosed(m.clone()),
            TransactionInProgress => TransactionInProgress,
            Conflict(m) => Conflict(m.clone()),
            WriteConflict => WriteConflict,
            Decode {
                collection,
                id,
                path,
                found,
                message,
            } => Decode {
                collection: collection.clone(),
                id: id.clone(),
                path: path.clone(),
                found: found.clone(),
                message: message.clone(),
            },
            Aborted(m) => Aborted(m.clone()),
            AlreadyOpen {
                path,
                option,
                open,
                asked,
            } => AlreadyOpen {
                path: path.clone(),
                option,
                open: open.clone(),
                asked: asked.clone(),
            },
            ReadOnly => ReadOnly,
            Storage(e) => Storage(copy_heed(e)),
            Io(e) => Io(copy_io(e)),
            IoAt { path, source } => IoAt {
                path: path.clone(),
                source: copy_io(source),
            },
            NoSpace { path, message } => NoSpace {
                path: path.clone(),
                message: message.clone(),
            },
            Unauthorized(m) => Unauthorized(m.clone()),
            Protocol(m) => Protocol(m.clone()),
            Replication(m) => Replication(m.clone()),
            NotReplicated {
                lsn,
                confirmed,
                required,
                timeout_ms,
            } => NotReplicated {
                lsn: *lsn,
                confirmed: *confirmed,
                required: *required,
                timeout_ms: *timeout_ms,
            },
        }
    }
}
