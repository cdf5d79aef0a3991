//! `OP_MSG`: `flagBits u32 | sections | [CRC-32C]`.
//!
//! Section kind 0 is the command document; kind 1 is a document sequence
//! (`size i32 | identifier cstring | documents`), merged into the command as an
//! array under its identifier (`documents`, `updates`, `deletes`).

use bson::{Bson, Document};

use super::{read_cstring, read_document, read_i32, FrameError};

/// Flag bit 0: a CRC-32C of the message follows the sections.
pub const CHECKSUM_PRESENT: u32 = 1;
/// Flag bit 1: the sender will not wait for a reply (a `w: 0` write).
pub const MORE_TO_COME: u32 = 1 << 1;
/// Flag bit 16: the client accepts exhaust replies (ignored: never used).
pub const EXHAUST_ALLOWED: u32 = 1 << 16;

/// A decoded `OP_MSG`.
#[derive(Debug, Clone, PartialEq)]
pub struct OpMsg {
    /// The flag bits as sent.
    pub flags: u32,
    /// The command document with document sequences merged in.
    pub body: Document,
}

impl OpMsg {
    /// True when the client expects no reply.
    pub fn more_to_come(&self) -> bool {
        self.flags & MORE_TO_COME != 0
    }
}

/// Decodes the part after the header; `whole` is the complete message (for the checksum).
pub fn decode(body: &[u8], whole: &[u8]) -> Result<OpMsg, FrameError> {
    let flags = read_i32(body, 0).ok_or(FrameError::Truncated("OP_MSG flags"))? as u32;
    let required = flags & 0xFFFF;
    if required & !(CHECKSUM_PRESENT | MORE_TO_COME) != 0 {
        return Err(FrameError::Malformed(format!(
            "OP_MSG has unknown required flag bits {required:#x}"
        )));
    }
    let mut end = body.len();
    if flags & CHECKSUM_PRESENT != 0 {
        if end < 8 || whole.len() < 4 {
            return Err(FrameError::Truncated("OP_MSG checksum"));
        }
        end -= 4;
        let (covered, sum) = whole.split_at(whole.len() - 4);
        let expected = u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]);
        if crc32c::crc32c(covered) != expected {
            return Err(FrameError::Malformed("OP_MSG checksum mismatch".into()));
        }
    }
    let body = &body[..end];
    let mut at = 4;
    let mut command: Option<Document> = None;
    let mut sequences: Vec<(String, Vec<Bson>)> = Vec::new();
    while at < body.len() {
        let kind = body[at];
        at += 1;
        match kind {
            0 => {
                if command.is_some() {
                    return Err(FrameError::Malformed(
                        "OP_MSG has more than one kind-0 section".into(),
                    ));
                }
                let (doc, next) = read_document(body, at)?;
                command = Some(doc);
                at = next;
            }
            1 => {
                let size = read_i32(body, at).ok_or(FrameError::Truncated("section size"))?;
                if size < 5 || at + size as usize > body.len() {
                    return Err(FrameError::Malformed(format!(
                        "OP_MSG document sequence announces {size} bytes, {} remain",
                        body.len() - at
                    )));
                }
                let section_end = at + size as usize;
                let (id, mut p) = read_cstring(&body[..section_end], at + 4)?;
                let id = id.to_owned();
                let mut docs = Vec::new();
                while p < section_end {
                    let (doc, next) = read_document(&body[..section_end], p)?;
                    docs.push(Bson::Document(doc));
                    p = next;
                }
                sequences.push((id, docs));
                at = section_end;
            }
            other => {
                return Err(FrameError::Malformed(format!(
                    "OP_MSG section kind {other} is unknown (0 and 1 exist)"
                )))
            }
        }
    }
    let mut body = command.ok_or_else(|| {
        FrameError::Malformed("OP_MSG has no kind-0 section (the command document)".into())
    })?;
    for (id, docs) in sequences {
        if body.contains_key(&id) {
            return Err(FrameError::Malformed(format!(
                "OP_MSG field '{id}' is both in the command and in a document sequence"
            )));
        }
        body.insert(id, Bson::Array(docs));
    }
    Ok(OpMsg { flags, body })
}

/// The body of a reply: flags 0 and one kind-0 section.
pub fn encode_body(doc_bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + doc_bytes.len());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.push(0);
    out.extend_from_slice(doc_bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::with_header;
    use crate::wire::OP_MSG;
    use bson::doc;

    fn sequence(id: &str, docs: &[Document]) -> Vec<u8> {
        let mut payload = Vec::new();
        payload.extend_from_slice(id.as_bytes());
        payload.push(0);
        for d in docs {
            payload.extend_from_slice(&d.to_vec().unwrap());
        }
        let mut out = vec![1];
        out.extend_from_slice(&((payload.len() + 4) as i32).to_le_bytes());
        out.extend_from_slice(&payload);
        out
    }

    #[test]
    fn merges_document_sequences_in_any_order() {
        let cmd = doc! {"insert": "c", "$db": "d"};
        let mut body = 0u32.to_le_bytes().to_vec();
        body.extend(sequence("documents", &[doc! {"a": 1}, doc! {"a": 2}]));
        body.push(0);
        body.extend(cmd.to_vec().unwrap());
        let whole = with_header(1, 0, OP_MSG, &body);
        let m = decode(&body, &whole).unwrap();
        assert_eq!(m.body.get_array("documents").unwrap().len(), 2);
        assert_eq!(m.body.get_str("insert").unwrap(), "c");
    }

    #[test]
    fn checksum_is_verified() {
        let cmd = doc! {"ping": 1, "$db": "admin"};
        let mut body = CHECKSUM_PRESENT.to_le_bytes().to_vec();
        body.push(0);
        body.extend(cmd.to_vec().unwrap());
        body.extend([0; 4]);
        let mut whole = with_header(1, 0, OP_MSG, &body);
        let n = whole.len();
        let sum = crc32c::crc32c(&whole[..n - 4]);
        whole[n - 4..].copy_from_slice(&sum.to_le_bytes());
        let good = decode(&whole[16..], &whole).unwrap();
        assert_eq!(good.body.get_str("$db").unwrap(), "admin");
        whole[n - 1] ^= 0xFF;
        assert!(decode(&whole[16..], &whole).is_err());
    }

    #[test]
    fn rejects_unknown_required_flags_kinds_and_missing_body() {
        let cmd = doc! {"ping": 1}.to_vec().unwrap();
        let mut body = (1u32 << 3).to_le_bytes().to_vec();
        body.push(0);
        body.extend(&cmd);
        assert!(decode(&body, &[]).is_err());
        let mut body = 0u32.to_le_bytes().to_vec();
        body.push(7);
        body.extend(&cmd);
        assert!(decode(&body, &[]).is_err());
        let body = 0u32.to_le_bytes().to_vec();
        assert!(decode(&body, &[]).is_err());
        // exhaustAllowed (bit 16) is optional and accepted.
        let mut body = EXHAUST_ALLOWED.to_le_bytes().to_vec();
        body.push(0);
        body.extend(&cmd);
        assert!(decode(&body, &[]).is_ok());
    }
}
