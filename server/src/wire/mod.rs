//! The MongoDB wire protocol: message framing and the three request opcodes
//! this server accepts (`OP_MSG`, legacy `OP_QUERY` for the handshake, and
//! `OP_COMPRESSED` around either). Decoding is pure (bytes in, messages out) so
//! it is tested without sockets; `connection.rs` owns the I/O.
//!
//! ```text
//! MsgHeader: messageLength i32 | requestID i32 | responseTo i32 | opCode i32   (little-endian)
//! ```

pub mod compression;
pub mod frame;
pub mod op_msg;
pub mod op_query;

pub use compression::Compressor;
pub use frame::{decode_frame, FrameError, Header, HEADER_LEN};
pub use op_msg::OpMsg;
pub use op_query::OpQuery;

/// `OP_REPLY` (legacy reply to `OP_QUERY`).
pub const OP_REPLY: i32 = 1;
/// `OP_QUERY` (legacy; accepted for the handshake only).
pub const OP_QUERY: i32 = 2004;
/// `OP_COMPRESSED`.
pub const OP_COMPRESSED: i32 = 2012;
/// `OP_MSG`.
pub const OP_MSG: i32 = 2013;

/// Largest BSON document accepted (16 MiB, announced as `maxBsonObjectSize`).
pub const MAX_BSON_OBJECT_SIZE: usize = 16 * 1024 * 1024;
/// Largest message accepted (announced as `maxMessageSizeBytes`).
pub const MAX_MESSAGE_SIZE: usize = 48_000_000;
/// Most documents in one write command (announced as `maxWriteBatchSize`).
pub const MAX_WRITE_BATCH_SIZE: usize = 100_000;

/// A decoded request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// An `OP_MSG` command.
    Msg(OpMsg),
    /// A legacy `OP_QUERY` command.
    Query(OpQuery),
}

/// One request as read from the socket: its header, the request, and the
/// compressor it arrived with (replies use the same one).
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The request's header.
    pub header: Header,
    /// The decoded request.
    pub request: Request,
    /// Set when the request came inside `OP_COMPRESSED`.
    pub compressor: Option<Compressor>,
}

/// Encodes a reply: `OP_MSG` for `OP_MSG` requests, `OP_REPLY` for `OP_QUERY`,
/// compressed with `compressor` when given.
pub fn encode_reply(
    request_id: i32,
    response_to: i32,
    legacy: bool,
    reply: &bson::Document,
    compressor: Option<Compressor>,
) -> std::io::Result<Vec<u8>> {
    let body = bson_bytes(reply)?;
    let (op, payload) = if legacy {
        (OP_REPLY, op_query::encode_reply_body(&body))
    } else {
        (OP_MSG, op_msg::encode_body(&body))
    };
    match compressor {
        Some(c) => {
            let packed = c.compress(&payload)?;
            let mut inner = Vec::with_capacity(9 + packed.len());
            inner.extend_from_slice(&op.to_le_bytes());
            inner.extend_from_slice(&(payload.len() as i32).to_le_bytes());
            inner.push(c.id());
            inner.extend_from_slice(&packed);
            Ok(frame::with_header(
                request_id,
                response_to,
                OP_COMPRESSED,
                &inner,
            ))
        }
        None => Ok(frame::with_header(request_id, response_to, op, &payload)),
    }
}

/// The BSON bytes of a document.
pub fn bson_bytes(doc: &bson::Document) -> std::io::Result<Vec<u8>> {
    doc.to_vec().map_err(std::io::Error::other)
}

/// Reads a little-endian i32 at `at`, if the slice is long enough.
pub(crate) fn read_i32(buf: &[u8], at: usize) -> Option<i32> {
    buf.get(at..at + 4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads a NUL-terminated UTF-8 string at `at`; returns it and the offset after the NUL.
pub(crate) fn read_cstring(buf: &[u8], at: usize) -> Result<(&str, usize), FrameError> {
    let rest = buf.get(at..).ok_or(FrameError::Truncated("cstring"))?;
    let end = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(FrameError::Truncated("cstring"))?;
    let s = std::str::from_utf8(&rest[..end])
        .map_err(|_| FrameError::Malformed("a cstring is not valid UTF-8".into()))?;
    Ok((s, at + end + 1))
}

/// Parses one BSON document starting at `at`; returns it and the offset after it.
pub(crate) fn read_document(buf: &[u8], at: usize) -> Result<(bson::Document, usize), FrameError> {
    let len = read_i32(buf, at).ok_or(FrameError::Truncated("document length"))?;
    if len < 5 {
        return Err(FrameError::Malformed(format!(
            "a BSON document announces {len} bytes (at least 5)"
        )));
    }
    let len = len as usize;
    if len > MAX_BSON_OBJECT_SIZE + 16 * 1024 {
        return Err(FrameError::TooLarge(len));
    }
    let bytes = buf
        .get(at..at + len)
        .ok_or(FrameError::Truncated("document"))?;
    let raw = bson::RawDocument::from_bytes(bytes)
        .map_err(|e| FrameError::Malformed(format!("invalid BSON document: {e}")))?;
    let doc = bson::Document::try_from(raw)
        .map_err(|e| FrameError::Malformed(format!("invalid BSON document: {e}")))?;
    Ok((doc, at + len))
}
