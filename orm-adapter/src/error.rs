//! [`OrmError`]: what the ORM layer reports, wrapping the engine's
//! [`collection_store::Error`] where a statement failed there.

use collection_store::Error as EngineError;

/// Result alias of the ORM layer.
pub type Result<T, E = OrmError> = std::result::Result<T, E>;

/// Everything the ORM layer can report. Whenever a flush or a driver batch
/// fails, nothing of it was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrmError {
    /// The engine refused a statement (bad filter, duplicate key, ...).
    #[error(transparent)]
    Engine(#[from] EngineError),

    /// Optimistic locking: the stored document's version is no longer the one
    /// this entity was loaded with (someone else changed it). Nothing of the
    /// flush was written; reload the entity and apply the change again.
    #[error("optimistic lock failed on {collection} {id}: the stored version is no longer {expected} (changed by someone else since it was loaded); nothing was written")]
    OptimisticLock {
        /// The collection.
        collection: String,
        /// The primary key, rendered as JSON.
        id: String,
        /// The version the entity was loaded with.
        expected: i64,
    },

    /// A managed entity's document no longer exists (deleted by someone else
    /// since it was loaded). Nothing of the flush was written.
    #[error(
        "{collection} {id} no longer exists (deleted since it was loaded); nothing was written"
    )]
    Missing {
        /// The collection.
        collection: String,
        /// The primary key, rendered as JSON.
        id: String,
    },

    /// A statement of a driver batch affected another number of documents than
    /// the batch required; the whole batch was rolled back.
    #[error("statement {index} of the batch ({what} on '{collection}') affected {actual} documents, {expected} required; the batch was rolled back")]
    Expectation {
        /// Position of the statement in the batch.
        index: usize,
        /// The statement kind (`update`, `delete`, `check`).
        what: &'static str,
        /// The collection.
        collection: String,
        /// Documents required.
        expected: u64,
        /// Documents affected.
        actual: u64,
    },

    /// A statement of a driver batch failed in the engine; the whole batch was
    /// rolled back.
    #[error("statement {index} of the batch ({what} on '{collection}') failed, the batch was rolled back: {source}")]
    Statement {
        /// Position of the statement in the batch.
        index: usize,
        /// The statement kind.
        what: &'static str,
        /// The collection.
        collection: String,
        /// What the engine reported.
        #[source]
        source: Box<EngineError>,
    },

    /// The driver does not support this operation (a read-only replica asked to
    /// write, for example).
    #[error("the {driver} driver cannot {operation}: {reason}")]
    Unsupported {
        /// The driver (`embedded`, `replica`, ...).
        driver: &'static str,
        /// What was asked.
        operation: &'static str,
        /// Why it cannot be done.
        reason: &'static str,
    },

    /// A sea-query expression has no equivalent in the document filter language.
    #[error("unsupported sea-query expression: {0}")]
    UnsupportedExpression(String),

    /// A savepoint name is unknown or already used.
    #[error("savepoint '{0}': {1}")]
    Savepoint(String, &'static str),

    /// An entity could not be turned into a document or back.
    #[error("entity of type {type_name}: {message}")]
    Serialization {
        /// The Rust type.
        type_name: &'static str,
        /// What went wrong.
        message: String,
    },

    /// The entity is not managed by this entity manager (load or persist it first).
    #[error("{0}")]
    NotManaged(String),

    /// Another instance with the same primary key is already managed by this
    /// entity manager (each document has one instance per entity manager).
    #[error("another instance of {collection} {id} is already managed by this entity manager; change that one (find_by_id returns it)")]
    IdentityConflict {
        /// The collection.
        collection: String,
        /// The primary key, rendered as JSON.
        id: String,
    },

    /// A replica's stored indexes differ from what the schema declares (a
    /// replica cannot build indexes; the primary must).
    #[error("replica collection '{collection}' lacks declared indexes {missing:?} (build them on the primary)")]
    SchemaMismatch {
        /// The collection.
        collection: String,
        /// Declared indexes that are missing or differ.
        missing: Vec<String>,
    },

    /// The blocking task that ran a driver operation failed (panicked or was
    /// cancelled at runtime shutdown).
    #[error("the task running this operation failed: {0}")]
    Task(String),
}

impl OrmError {
    pub(crate) fn serialization<T: ?Sized>(message: impl std::fmt::Display) -> OrmError {
        OrmError::Serialization {
            type_name: std::any::type_name::<T>(),
            message: message.to_string(),
        }
    }
}
