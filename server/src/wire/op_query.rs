//! Legacy `OP_QUERY` (accepted only for the handshake commands that older
//! drivers send before they know the server speaks `OP_MSG`) and its reply,
//! `OP_REPLY`.
//!
//! ```text
//! OP_QUERY: flags i32 | fullCollectionName cstring | numberToSkip i32 | numberToReturn i32 | query | [fields]
//! OP_REPLY: responseFlags i32 | cursorID i64 | startingFrom i32 | numberReturned i32 | documents
//! ```

use bson::Document;

use super::{read_cstring, read_document, read_i32, FrameError};

/// A decoded `OP_QUERY`.
#[derive(Debug, Clone, PartialEq)]
pub struct OpQuery {
    /// `fullCollectionName`, e.g. `admin.$cmd`.
    pub collection: String,
    /// The query document (the command).
    pub query: Document,
}

impl OpQuery {
    /// The database part of `collection` when it names a command namespace (`db.$cmd`).
    pub fn command_db(&self) -> Option<&str> {
        self.collection.strip_suffix(".$cmd")
    }
}

/// Decodes the part after the header.
pub fn decode(body: &[u8]) -> Result<OpQuery, FrameError> {
    read_i32(body, 0).ok_or(FrameError::Truncated("OP_QUERY flags"))?;
    let (collection, at) = read_cstring(body, 4)?;
    read_i32(body, at + 4).ok_or(FrameError::Truncated("OP_QUERY numberToReturn"))?;
    let (mut query, _) = read_document(body, at + 8)?;
    // Old drivers wrap the command as {$query: {...}, $readPreference: ...}.
    if let Ok(inner) = query.get_document("$query") {
        query = inner.clone();
    }
    Ok(OpQuery {
        collection: collection.to_owned(),
        query,
    })
}

/// The body of an `OP_REPLY` holding one document.
pub fn encode_reply_body(doc_bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(20 + doc_bytes.len());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0i64.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&1i32.to_le_bytes());
    out.extend_from_slice(doc_bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn decodes_handshake() {
        let mut body = 0i32.to_le_bytes().to_vec();
        body.extend(b"admin.$cmd\0");
        body.extend(0i32.to_le_bytes());
        body.extend((-1i32).to_le_bytes());
        body.extend(doc! {"isMaster": 1}.to_vec().unwrap());
        let q = decode(&body).unwrap();
        assert_eq!(q.command_db(), Some("admin"));
        assert_eq!(q.query.get_i32("isMaster").unwrap(), 1);
        assert!(decode(&body[..body.len() - 1]).is_err());
    }
}
