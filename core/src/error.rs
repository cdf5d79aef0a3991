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
    /// (for example `$inc` on a string). The statement changed nothing.
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
        "document {id} in collection '{collection}' does not fit the requested type: {message}"
    )]
    Decode {
        /// The collection.
        collection: String,
        /// The document's primary key, rendered as JSON.
        id: String,
        /// What serde reported.
        message: String,
    },
    /// The application aborted a transaction (return this from a
    /// `Database::transaction` closure to roll back with a reason).
    #[error("transaction aborted: {0}")]
    Aborted(String),
    /// The database was opened read-only.
    #[error("the database is read-only")]
    ReadOnly,
    /// An error reported by LMDB.
    #[error("storage error: {0}")]
    Storage(#[from] heed::Error),
    /// An operating-system I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
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
                message,
            } => Decode {
                collection: collection.clone(),
                id: id.clone(),
                message: message.clone(),
            },
            Aborted(m) => Aborted(m.clone()),
            ReadOnly => ReadOnly,
            Storage(e) => Storage(copy_heed(e)),
            Io(e) => Io(copy_io(e)),
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
