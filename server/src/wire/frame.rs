//! Message framing: the 16-byte header, length checks, and `decode_frame`,
//! which returns `Ok(None)` until a whole message is buffered.

use super::{op_msg, op_query, read_i32, Frame, Request, MAX_MESSAGE_SIZE};
use super::{OP_COMPRESSED, OP_MSG, OP_QUERY};

/// Length of `MsgHeader`.
pub const HEADER_LEN: usize = 16;

/// `MsgHeader`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Total message length, header included.
    pub length: i32,
    /// The sender's id for this message.
    pub request_id: i32,
    /// The request this message answers (0 in requests).
    pub response_to: i32,
    /// The opcode.
    pub op_code: i32,
}

/// Why a message could not be decoded. Every variant closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The header's length is below 16 or above the message limit.
    #[error("message length {0} is outside 16..={max}", max = MAX_MESSAGE_SIZE)]
    BadLength(i64),
    /// A length inside the message exceeds a limit.
    #[error("a part of the message announces {0} bytes, above the limit")]
    TooLarge(usize),
    /// The message ended inside a field.
    #[error("message truncated inside {0}")]
    Truncated(&'static str),
    /// The opcode is not one this server accepts.
    #[error("unsupported opcode {0} (this server accepts OP_MSG 2013, OP_QUERY 2004 and OP_COMPRESSED 2012)")]
    UnsupportedOpcode(i32),
    /// Anything else that is not a valid message.
    #[error("{0}")]
    Malformed(String),
}

impl Header {
    /// Parses the first 16 bytes.
    pub fn parse(buf: &[u8]) -> Option<Header> {
        Some(Header {
            length: read_i32(buf, 0)?,
            request_id: read_i32(buf, 4)?,
            response_to: read_i32(buf, 8)?,
            op_code: read_i32(buf, 12)?,
        })
    }

    /// Checks the announced length; returns it as a byte count.
    pub fn checked_len(&self) -> Result<usize, FrameError> {
        let len = self.length as i64;
        if len < HEADER_LEN as i64 || len > MAX_MESSAGE_SIZE as i64 {
            return Err(FrameError::BadLength(len));
        }
        Ok(len as usize)
    }
}

/// Decodes one message from the front of `buf`. Returns `Ok(None)` while the
/// message is incomplete, else the frame and the number of bytes it used.
/// The announced length is checked before anything is allocated for it.
pub fn decode_frame(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
    let Some(header) = Header::parse(buf) else {
        return Ok(None);
    };
    let len = header.checked_len()?;
    if buf.len() < len {
        return Ok(None);
    }
    let msg = &buf[..len];
    let body = &msg[HEADER_LEN..];
    let (request, compressor) = match header.op_code {
        OP_COMPRESSED => {
            let (op, payload, c) = super::compression::unwrap(body)?;
            (
                decode_body(op, &payload, &payload_with_header(&header, op, &payload))?,
                Some(c),
            )
        }
        op => (decode_body(op, body, msg)?, None),
    };
    Ok(Some((
        Frame {
            header,
            request,
            compressor,
        },
        len,
    )))
}

/// A synthetic uncompressed message, used to verify an OP_MSG checksum that was
/// computed over the original (uncompressed) message.
fn payload_with_header(header: &Header, op: i32, payload: &[u8]) -> Vec<u8> {
    with_header(header.request_id, header.response_to, op, payload)
}

fn decode_body(op: i32, body: &[u8], whole: &[u8]) -> Result<Request, FrameError> {
    match op {
        OP_MSG => Ok(Request::Msg(op_msg::decode(body, whole)?)),
        OP_QUERY => Ok(Request::Query(op_query::decode(body)?)),
        other => Err(FrameError::UnsupportedOpcode(other)),
    }
}

/// Prefixes `body` with a header.
pub fn with_header(request_id: i32, response_to: i32, op_code: i32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&((HEADER_LEN + body.len()) as i32).to_le_bytes());
    out.extend_from_slice(&request_id.to_le_bytes());
    out.extend_from_slice(&response_to.to_le_bytes());
    out.extend_from_slice(&op_code.to_le_bytes());
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn msg(cmd: &bson::Document) -> Vec<u8> {
        let body = op_msg::encode_body(&cmd.to_vec().unwrap());
        with_header(7, 0, OP_MSG, &body)
    }

    #[test]
    fn incomplete_until_whole() {
        let bytes = msg(&doc! {"ping": 1, "$db": "admin"});
        for cut in 0..bytes.len() {
            assert_eq!(decode_frame(&bytes[..cut]).unwrap(), None, "cut at {cut}");
        }
        let (frame, used) = decode_frame(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(frame.header.request_id, 7);
        let Request::Msg(m) = frame.request else {
            panic!("expected OP_MSG")
        };
        assert_eq!(m.body.get_str("$db").unwrap(), "admin");
    }

    #[test]
    fn bad_lengths_are_errors_before_allocation() {
        let mut bytes = msg(&doc! {"ping": 1});
        bytes[0..4].copy_from_slice(&(-5i32).to_le_bytes());
        assert!(matches!(
            decode_frame(&bytes),
            Err(FrameError::BadLength(-5))
        ));
        bytes[0..4].copy_from_slice(&(i32::MAX).to_le_bytes());
        assert!(matches!(
            decode_frame(&bytes),
            Err(FrameError::BadLength(_))
        ));
        bytes[0..4].copy_from_slice(&(3i32).to_le_bytes());
        assert!(matches!(
            decode_frame(&bytes),
            Err(FrameError::BadLength(3))
        ));
    }

    #[test]
    fn unknown_opcode_and_truncated_bson() {
        let bytes = with_header(1, 0, 2010, &[0; 8]);
        assert!(matches!(
            decode_frame(&bytes),
            Err(FrameError::UnsupportedOpcode(2010))
        ));
        let mut body = op_msg::encode_body(&doc! {"ping": 1}.to_vec().unwrap());
        body.truncate(body.len() - 3);
        let bytes = with_header(1, 0, OP_MSG, &body);
        assert!(decode_frame(&bytes).is_err());
    }

    #[test]
    fn random_bytes_never_panic() {
        // A small deterministic generator: xorshift.
        let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let valid = msg(&doc! {"find": "c", "filter": {"a": 1}, "$db": "d"});
        for case in 0..20_000 {
            let mut bytes = if case % 2 == 0 {
                valid.clone()
            } else {
                (0..(next() % 96) as usize).map(|_| next() as u8).collect()
            };
            if !bytes.is_empty() {
                for _ in 0..(next() % 4) {
                    let i = (next() as usize) % bytes.len();
                    bytes[i] = next() as u8;
                }
            }
            let _ = decode_frame(&bytes);
        }
    }
}
