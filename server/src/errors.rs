//! MongoDB-style command errors: `{ok: 0, errmsg, code, codeName, errorLabels?}`.
//!
//! Codes and names are MongoDB's (`src/mongo/base/error_codes.yml`), so drivers
//! raise their usual exception types (pymongo's `DuplicateKeyError` for 11000,
//! `OperationFailure` with `.code` for the rest).

use bson::{doc, Document};

/// A command failure as drivers expect it.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandError {
    /// MongoDB's numeric error code.
    pub code: i32,
    /// The message shown to a person; names what was wrong and what is accepted.
    pub message: String,
    /// `errorLabels` (for example `TransientTransactionError`).
    pub labels: Vec<&'static str>,
    /// Extra fields merged into the error document (`keyPattern`, `keyValue`).
    pub extra: Option<Box<Document>>,
}

/// The result type of command handlers.
pub type CmdResult<T> = Result<T, CommandError>;

/// MongoDB error codes used by this server.
pub mod code {
    #![allow(missing_docs)]
    pub const INTERNAL_ERROR: i32 = 1;
    pub const BAD_VALUE: i32 = 2;
    pub const FAILED_TO_PARSE: i32 = 9;
    pub const UNAUTHORIZED: i32 = 13;
    pub const TYPE_MISMATCH: i32 = 14;
    pub const AUTHENTICATION_FAILED: i32 = 18;
    pub const ILLEGAL_OPERATION: i32 = 20;
    pub const NAMESPACE_NOT_FOUND: i32 = 26;
    pub const INDEX_NOT_FOUND: i32 = 27;
    pub const CURSOR_NOT_FOUND: i32 = 43;
    pub const NAMESPACE_EXISTS: i32 = 48;
    pub const COMMAND_NOT_FOUND: i32 = 59;
    pub const WRITE_CONCERN_FAILED: i32 = 64;
    pub const IMMUTABLE_FIELD: i32 = 66;
    pub const CANNOT_CREATE_INDEX: i32 = 67;
    pub const INVALID_NAMESPACE: i32 = 73;
    pub const INVALID_OPTIONS: i32 = 72;
    pub const INDEX_OPTIONS_CONFLICT: i32 = 85;
    pub const NO_SUCH_TRANSACTION: i32 = 251;
    pub const WRITE_CONFLICT: i32 = 112;
    pub const COMMAND_NOT_SUPPORTED: i32 = 115;
    pub const EXCEEDED_MEMORY_LIMIT: i32 = 146;
    pub const QUERY_EXCEEDED_MEMORY_LIMIT: i32 = 292;
    pub const BSON_OBJECT_TOO_LARGE: i32 = 10_334;
    pub const DUPLICATE_KEY: i32 = 11_000;
    pub const UNRECOGNIZED_PIPELINE_STAGE: i32 = 40_324;
    pub const TRANSACTION_TOO_OLD: i32 = 225;
    pub const EXCEEDED_TIME_LIMIT: i32 = 262;
    pub const MECHANISM_UNAVAILABLE: i32 = 334;
    pub const UNSUPPORTED_OP_QUERY_COMMAND: i32 = 352;
}

/// MongoDB's name for a code (`codeName`).
pub fn code_name(code: i32) -> &'static str {
    match code {
        code::INTERNAL_ERROR => "InternalError",
        code::BAD_VALUE => "BadValue",
        code::FAILED_TO_PARSE => "FailedToParse",
        code::UNAUTHORIZED => "Unauthorized",
        code::TYPE_MISMATCH => "TypeMismatch",
        code::AUTHENTICATION_FAILED => "AuthenticationFailed",
        code::ILLEGAL_OPERATION => "IllegalOperation",
        code::NAMESPACE_NOT_FOUND => "NamespaceNotFound",
        code::INDEX_NOT_FOUND => "IndexNotFound",
        code::CURSOR_NOT_FOUND => "CursorNotFound",
        code::NAMESPACE_EXISTS => "NamespaceExists",
        code::COMMAND_NOT_FOUND => "CommandNotFound",
        code::WRITE_CONCERN_FAILED => "WriteConcernFailed",
        code::IMMUTABLE_FIELD => "ImmutableField",
        code::CANNOT_CREATE_INDEX => "CannotCreateIndex",
        code::INVALID_NAMESPACE => "InvalidNamespace",
        code::INVALID_OPTIONS => "InvalidOptions",
        code::INDEX_OPTIONS_CONFLICT => "IndexOptionsConflict",
        code::NO_SUCH_TRANSACTION => "NoSuchTransaction",
        code::WRITE_CONFLICT => "WriteConflict",
        code::COMMAND_NOT_SUPPORTED => "CommandNotSupported",
        code::EXCEEDED_MEMORY_LIMIT => "ExceededMemoryLimit",
        code::QUERY_EXCEEDED_MEMORY_LIMIT => "QueryExceededMemoryLimitNoDiskUseAllowed",
        code::BSON_OBJECT_TOO_LARGE => "BSONObjectTooLarge",
        code::DUPLICATE_KEY => "DuplicateKey",
        code::UNRECOGNIZED_PIPELINE_STAGE => "Location40324",
        code::TRANSACTION_TOO_OLD => "TransactionTooOld",
        code::EXCEEDED_TIME_LIMIT => "ExceededTimeLimit",
        code::MECHANISM_UNAVAILABLE => "MechanismUnavailable",
        code::UNSUPPORTED_OP_QUERY_COMMAND => "UnsupportedOpQueryCommand",
        _ => "UnknownError",
    }
}

impl CommandError {
    /// An error with `code` and `message`.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        CommandError {
            code,
            message: message.into(),
            labels: Vec::new(),
            extra: None,
        }
    }

    /// 2 BadValue.
    pub fn bad_value(message: impl Into<String>) -> Self {
        Self::new(code::BAD_VALUE, message)
    }

    /// 9 FailedToParse.
    pub fn parse(message: impl Into<String>) -> Self {
        Self::new(code::FAILED_TO_PARSE, message)
    }

    /// 14 TypeMismatch for a command field of the wrong BSON type.
    pub fn field_type(command: &str, field: &str, expected: &str) -> Self {
        Self::new(
            code::TYPE_MISMATCH,
            format!("{command}: field '{field}' must be {expected}"),
        )
    }

    /// Adds an error label.
    pub fn with_label(mut self, label: &'static str) -> Self {
        if !self.labels.contains(&label) {
            self.labels.push(label);
        }
        self
    }

    /// The reply document of a failed command.
    pub fn to_reply(&self) -> Document {
        let mut d = doc! {
            "ok": 0.0,
            "errmsg": self.message.clone(),
            "code": self.code,
            "codeName": code_name(self.code),
        };
        if let Some(extra) = &self.extra {
            for (k, v) in extra.iter() {
                d.insert(k.clone(), v.clone());
            }
        }
        if !self.labels.is_empty() {
            d.insert("errorLabels", self.labels.clone());
        }
        d
    }

    /// The entry of a `writeErrors` array.
    pub fn to_write_error(&self, index: usize) -> Document {
        let mut d = doc! {
            "index": index as i32,
            "code": self.code,
            "codeName": code_name(self.code),
            "errmsg": self.message.clone(),
        };
        if let Some(extra) = &self.extra {
            for (k, v) in extra.iter() {
                d.insert(k.clone(), v.clone());
            }
        }
        d
    }
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            code_name(self.code),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for CommandError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_has_numeric_ok_int32_code_and_name() {
        let e = CommandError::new(code::DUPLICATE_KEY, "dup").with_label("X");
        let r = e.to_reply();
        assert_eq!(r.get_f64("ok").unwrap(), 0.0);
        assert_eq!(r.get_i32("code").unwrap(), 11000);
        assert_eq!(r.get_str("codeName").unwrap(), "DuplicateKey");
        assert_eq!(r.get_str("errmsg").unwrap(), "dup");
        assert_eq!(r.get_array("errorLabels").unwrap().len(), 1);
    }
}
