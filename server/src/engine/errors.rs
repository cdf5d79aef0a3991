//! Engine errors as MongoDB command errors.

use collection_store::Error;

use crate::errors::{code, CommandError};

/// Maps an engine error to the MongoDB code drivers expect for the same failure.
pub fn command_error(e: Error) -> CommandError {
    let c = match &e {
        Error::InvalidFilter(_)
        | Error::InvalidSort(_)
        | Error::InvalidProjection(_)
        | Error::InvalidDocument(_)
        | Error::InvalidRegex { .. }
        | Error::Overflow { .. }
        | Error::InvalidConsumer(_) => code::BAD_VALUE,
        Error::InvalidUpdate(_) => code::FAILED_TO_PARSE,
        Error::DocumentTooLarge { .. } => code::BSON_OBJECT_TOO_LARGE,
        Error::TypeMismatch { .. } => code::TYPE_MISMATCH,
        Error::ImmutableField { .. } => code::IMMUTABLE_FIELD,
        Error::DuplicateKey { .. } => code::DUPLICATE_KEY,
        Error::InvalidCollection(_) => code::INVALID_NAMESPACE,
        Error::InvalidIndex(_) => code::CANNOT_CREATE_INDEX,
        Error::IndexNotFound(_) => code::INDEX_NOT_FOUND,
        Error::CollectionOptionsMismatch { .. } => code::NAMESPACE_EXISTS,
        Error::TransactionClosed(_) | Error::Aborted(_) => code::NO_SUCH_TRANSACTION,
        Error::TransactionInProgress => code::ILLEGAL_OPERATION,
        Error::WriteConflict => code::WRITE_CONFLICT,
        Error::ReadOnly => code::ILLEGAL_OPERATION,
        Error::NotReplicated { .. } => code::WRITE_CONCERN_FAILED,
        _ => code::INTERNAL_ERROR,
    };
    let mut err = CommandError::new(c, e.to_string());
    if c == code::WRITE_CONFLICT {
        err = err.with_label("TransientTransactionError");
    }
    err
}
