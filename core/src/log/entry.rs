//! One log entry: the operations of one committed logical transaction, and its
//! framed, checksummed byte form (format version 1, documented in ARCHITECTURE.md).
//!
//! ```text
//! frame   = version:u8 (=1) | flags:u8 | crc32c:u32 | lsn:u64 | time_ms:i64
//!           | op_count:u32 | ops_len:u32 | ops (zstd-compressed when flags & 1)
//! op      = kind:u8 | collection_len:u16 | collection (UTF-8) | body
//! ```
//! All integers little-endian; the CRC (Castagnoli) covers every byte after it.

use bson::raw::RawDocument;
use serde::de::DeserializeOwned;

use super::Lsn;
use crate::catalog::CollectionOptions;
use crate::error::{Error, Result};
use crate::index::IndexSpec;

/// The entry format written by this version.
pub const FORMAT_VERSION: u8 = 1;
/// Frame flag: the operations are zstd-compressed.
const FLAG_ZSTD: u8 = 1;
/// Length of the fixed frame header.
const HEADER_LEN: usize = 30;
/// Operations longer than this are compressed.
const COMPRESS_ABOVE: usize = 1024;
/// zstd level: the fastest, since compression runs inside the commit.
const ZSTD_LEVEL: i32 = 1;

/// What an operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// A document was inserted (also by an upsert).
    Insert = 1,
    /// A document was changed by update operators.
    Update = 2,
    /// A document was replaced.
    Replace = 3,
    /// A document was deleted.
    Delete = 4,
    /// A collection was created.
    CreateCollection = 5,
    /// A collection and its documents were dropped.
    DropCollection = 6,
    /// A secondary index was created.
    CreateIndex = 7,
    /// A secondary index was dropped.
    DropIndex = 8,
    /// A typed collection recorded its schema version.
    SchemaVersion = 9,
}

impl OpKind {
    fn from_byte(b: u8) -> Option<OpKind> {
        Some(match b {
            1 => OpKind::Insert,
            2 => OpKind::Update,
            3 => OpKind::Replace,
            4 => OpKind::Delete,
            5 => OpKind::CreateCollection,
            6 => OpKind::DropCollection,
            7 => OpKind::CreateIndex,
            8 => OpKind::DropIndex,
            9 => OpKind::SchemaVersion,
            _ => return None,
        })
    }

    /// The lower-case name used in change events (`"insert"`, `"dropIndex"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Insert => "insert",
            OpKind::Update => "update",
            OpKind::Replace => "replace",
            OpKind::Delete => "delete",
            OpKind::CreateCollection => "create",
            OpKind::DropCollection => "drop",
            OpKind::CreateIndex => "createIndex",
            OpKind::DropIndex => "dropIndex",
            OpKind::SchemaVersion => "schemaVersion",
        }
    }
}

/// One operation of a logged transaction, with what a follower needs to redo it.
#[derive(Debug, Clone, PartialEq)]
pub enum LogOp {
    /// A document write: insert, update or replace, with the full new document (BSON).
    Put {
        /// Insert, Update or Replace.
        kind: OpKind,
        /// The collection.
        collection: String,
        /// The complete document after the change, BSON-encoded.
        document: Vec<u8>,
    },
    /// A document deletion.
    Delete {
        /// The collection.
        collection: String,
        /// `{<primary key field>: <key>}`, BSON-encoded.
        key: Vec<u8>,
    },
    /// A collection was created with these options.
    CreateCollection {
        /// The collection.
        collection: String,
        /// Its options.
        options: CollectionOptions,
    },
    /// A collection was dropped.
    DropCollection {
        /// The collection.
        collection: String,
    },
    /// An index was created (and built over the documents present).
    CreateIndex {
        /// The collection.
        collection: String,
        /// The index specification (name filled in).
        spec: IndexSpec,
    },
    /// An index was dropped.
    DropIndex {
        /// The collection.
        collection: String,
        /// The index name.
        name: String,
    },
    /// A typed collection's schema version was recorded.
    SchemaVersion {
        /// The collection.
        collection: String,
        /// The version.
        version: u32,
    },
}

impl LogOp {
    /// What the operation did.
    pub fn kind(&self) -> OpKind {
        match self {
            LogOp::Put { kind, .. } => *kind,
            LogOp::Delete { .. } => OpKind::Delete,
            LogOp::CreateCollection { .. } => OpKind::CreateCollection,
            LogOp::DropCollection { .. } => OpKind::DropCollection,
            LogOp::CreateIndex { .. } => OpKind::CreateIndex,
            LogOp::DropIndex { .. } => OpKind::DropIndex,
            LogOp::SchemaVersion { .. } => OpKind::SchemaVersion,
        }
    }

    /// The collection the operation applies to.
    pub fn collection(&self) -> &str {
        match self {
            LogOp::Put { collection, .. }
            | LogOp::Delete { collection, .. }
            | LogOp::CreateCollection { collection, .. }
            | LogOp::DropCollection { collection }
            | LogOp::CreateIndex { collection, .. }
            | LogOp::DropIndex { collection, .. }
            | LogOp::SchemaVersion { collection, .. } => collection,
        }
    }

    fn encode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        out.push(self.kind() as u8);
        put_str16(out, self.collection())?;
        match self {
            LogOp::Put { document, .. } => out.extend_from_slice(document),
            LogOp::Delete { key, .. } => out.extend_from_slice(key),
            LogOp::CreateCollection { options, .. } => put_json(out, options)?,
            LogOp::DropCollection { .. } => {}
            LogOp::CreateIndex { spec, .. } => put_json(out, spec)?,
            LogOp::DropIndex { name, .. } => put_str16(out, name)?,
            LogOp::SchemaVersion { version, .. } => out.extend_from_slice(&version.to_le_bytes()),
        }
        Ok(())
    }
}

fn put_str16(out: &mut Vec<u8>, s: &str) -> Result<()> {
    let len = u16::try_from(s.len())
        .map_err(|_| Error::InvalidCollection(format!("name too long for the log: {s}")))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_json<T: serde::Serialize>(out: &mut Vec<u8>, v: &T) -> Result<()> {
    let bytes = serde_json::to_vec(v).map_err(|e| Error::Io(std::io::Error::other(e)))?;
    let len = u32::try_from(bytes.len())
        .map_err(|_| Error::Io(std::io::Error::other("log operation too large")))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&bytes);
    Ok(())
}

/// A decoded log entry: one committed logical transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// Its log sequence number (the commit order; the first is 1).
    pub lsn: Lsn,
    /// Commit time, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The operations, in the order they were made.
    pub ops: Vec<LogOp>,
}

impl LogEntry {
    /// Encodes the entry as a frame.
    pub fn encode(&self) -> Result<Vec<u8>> {
        encode_frame(self.lsn, self.timestamp_ms, &self.ops)
    }

    /// Decodes and verifies a frame stored under `lsn`. Damage (checksum
    /// mismatch, truncated or malformed bytes, an LSN other than `lsn`) is
    /// reported as [`Error::Corrupt`] naming the LSN.
    pub fn decode(lsn: Lsn, frame: &[u8]) -> Result<LogEntry> {
        let header = FrameHeader::parse(lsn, frame)?;
        let ops_bytes = &frame[HEADER_LEN..];
        let owned;
        let ops_bytes: &[u8] = if header.flags & FLAG_ZSTD != 0 {
            owned = zstd::bulk::decompress(ops_bytes, header.ops_len as usize)
                .map_err(|e| corrupt(lsn, format!("cannot decompress: {e}")))?;
            &owned
        } else {
            ops_bytes
        };
        if ops_bytes.len() != header.ops_len as usize {
            return Err(corrupt(lsn, "operation bytes have the wrong length"));
        }
        let mut r = Reader {
            lsn,
            buf: ops_bytes,
        };
        let mut ops = Vec::with_capacity(header.op_count.min(1 << 16) as usize);
        for _ in 0..header.op_count {
            ops.push(r.op()?);
        }
        if !r.buf.is_empty() {
            return Err(corrupt(lsn, "trailing bytes after the last operation"));
        }
        Ok(LogEntry {
            lsn,
            timestamp_ms: header.timestamp_ms,
            ops,
        })
    }
}

/// The fixed header of a frame.
#[derive(Debug, Clone, Copy)]
pub struct FrameHeader {
    /// Frame flags.
    pub flags: u8,
    /// The entry's LSN.
    pub lsn: Lsn,
    /// Commit time, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// Number of operations.
    pub op_count: u32,
    /// Length of the (uncompressed) operations.
    pub ops_len: u32,
}

impl FrameHeader {
    /// Parses and checks a frame's header and checksum (not the operations).
    pub fn parse(lsn: Lsn, frame: &[u8]) -> Result<FrameHeader> {
        if frame.len() < HEADER_LEN {
            return Err(corrupt(
                lsn,
                format!("frame of {} bytes is too short", frame.len()),
            ));
        }
        if frame[0] != FORMAT_VERSION {
            return Err(corrupt(
                lsn,
                format!(
                    "unknown entry format version {} (this build reads {FORMAT_VERSION})",
                    frame[0]
                ),
            ));
        }
        let stored = u32::from_le_bytes(frame[2..6].try_into().unwrap_or_default());
        let actual = crc32c::crc32c(&frame[6..]);
        if stored != actual {
            return Err(corrupt(
                lsn,
                format!("checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"),
            ));
        }
        let u64_at =
            |at: usize| u64::from_le_bytes(frame[at..at + 8].try_into().unwrap_or_default());
        let u32_at =
            |at: usize| u32::from_le_bytes(frame[at..at + 4].try_into().unwrap_or_default());
        let header = FrameHeader {
            flags: frame[1],
            lsn: u64_at(6),
            timestamp_ms: u64_at(14) as i64,
            op_count: u32_at(22),
            ops_len: u32_at(26),
        };
        if header.lsn != lsn {
            return Err(corrupt(
                lsn,
                format!("the frame carries LSN {} instead", header.lsn),
            ));
        }
        if header.flags & !FLAG_ZSTD != 0 {
            return Err(corrupt(lsn, format!("unknown flags {:#04x}", header.flags)));
        }
        Ok(header)
    }
}

/// Encodes operations as a frame.
pub fn encode_frame(lsn: Lsn, timestamp_ms: i64, ops: &[LogOp]) -> Result<Vec<u8>> {
    let mut body = Vec::with_capacity(64 + ops.len() * 160);
    for op in ops {
        op.encode_into(&mut body)?;
    }
    let too_large = || {
        Error::Io(std::io::Error::other(
            "transaction too large for one log entry (4 GiB)",
        ))
    };
    let ops_len = u32::try_from(body.len()).map_err(|_| too_large())?;
    let op_count = u32::try_from(ops.len()).map_err(|_| too_large())?;
    let (flags, payload) = if body.len() > COMPRESS_ABOVE {
        let packed = zstd::bulk::compress(&body, ZSTD_LEVEL)?;
        if packed.len() < body.len() {
            (FLAG_ZSTD, packed)
        } else {
            (0, body)
        }
    } else {
        (0, body)
    };
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
    frame.push(FORMAT_VERSION);
    frame.push(flags);
    frame.extend_from_slice(&[0; 4]);
    frame.extend_from_slice(&lsn.to_le_bytes());
    frame.extend_from_slice(&timestamp_ms.to_le_bytes());
    frame.extend_from_slice(&op_count.to_le_bytes());
    frame.extend_from_slice(&ops_len.to_le_bytes());
    frame.extend_from_slice(&payload);
    let crc = crc32c::crc32c(&frame[6..]);
    frame[2..6].copy_from_slice(&crc.to_le_bytes());
    Ok(frame)
}

fn corrupt(lsn: Lsn, message: impl Into<String>) -> Error {
    Error::Corrupt {
        location: format!("log entry {lsn}"),
        message: message.into(),
        lsn: Some(lsn),
    }
}

struct Reader<'a> {
    lsn: Lsn,
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(corrupt(self.lsn, "operation truncated"));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn str16(&mut self) -> Result<String> {
        let n = self.u16()? as usize;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| corrupt(self.lsn, "name is not UTF-8"))
    }

    fn json<T: DeserializeOwned>(&mut self) -> Result<T> {
        let n = self.u32()? as usize;
        let b = self.take(n)?;
        serde_json::from_slice(b).map_err(|e| corrupt(self.lsn, format!("bad definition: {e}")))
    }

    fn bson(&mut self) -> Result<Vec<u8>> {
        let Some(len) = self.buf.get(..4) else {
            return Err(corrupt(self.lsn, "document truncated"));
        };
        let n = i32::from_le_bytes([len[0], len[1], len[2], len[3]]);
        let n = usize::try_from(n).map_err(|_| corrupt(self.lsn, "negative document length"))?;
        let b = self.take(n)?;
        RawDocument::from_bytes(b)
            .map_err(|e| corrupt(self.lsn, format!("undecodable document: {e}")))?;
        Ok(b.to_vec())
    }

    fn op(&mut self) -> Result<LogOp> {
        let k = self.take(1)?[0];
        let kind = OpKind::from_byte(k)
            .ok_or_else(|| corrupt(self.lsn, format!("unknown operation kind {k}")))?;
        let collection = self.str16()?;
        Ok(match kind {
            OpKind::Insert | OpKind::Update | OpKind::Replace => LogOp::Put {
                kind,
                collection,
                document: self.bson()?,
            },
            OpKind::Delete => LogOp::Delete {
                collection,
                key: self.bson()?,
            },
            OpKind::CreateCollection => LogOp::CreateCollection {
                collection,
                options: self.json()?,
            },
            OpKind::DropCollection => LogOp::DropCollection { collection },
            OpKind::CreateIndex => LogOp::CreateIndex {
                collection,
                spec: self.json()?,
            },
            OpKind::DropIndex => LogOp::DropIndex {
                collection,
                name: self.str16()?,
            },
            OpKind::SchemaVersion => LogOp::SchemaVersion {
                collection,
                version: self.u32()?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(n: usize) -> Vec<u8> {
        let mut d = bson::Document::new();
        d.insert("_id", n as i64);
        d.insert("text", "x".repeat(n));
        d.to_vec().unwrap()
    }

    fn sample(big: usize) -> LogEntry {
        LogEntry {
            lsn: 42,
            timestamp_ms: 1_700_000_000_000,
            ops: vec![
                LogOp::CreateCollection {
                    collection: "users".into(),
                    options: CollectionOptions::default(),
                },
                LogOp::Put {
                    kind: OpKind::Insert,
                    collection: "users".into(),
                    document: doc(big),
                },
                LogOp::Delete {
                    collection: "users".into(),
                    key: doc(0),
                },
                LogOp::CreateIndex {
                    collection: "users".into(),
                    spec: IndexSpec::new([("a", 1)]),
                },
                LogOp::DropIndex {
                    collection: "users".into(),
                    name: "a_1".into(),
                },
                LogOp::SchemaVersion {
                    collection: "users".into(),
                    version: 3,
                },
                LogOp::DropCollection {
                    collection: "users".into(),
                },
            ],
        }
    }

    #[test]
    fn round_trips_plain_and_compressed() {
        for big in [10, 5000] {
            let e = sample(big);
            let f = e.encode().unwrap();
            assert_eq!(f[1] & FLAG_ZSTD != 0, big > 1000, "compression flag");
            assert_eq!(LogEntry::decode(42, &f).unwrap(), e);
        }
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        for big in [10, 5000] {
            let f = sample(big).encode().unwrap();
            for i in 0..f.len() {
                let mut g = f.clone();
                g[i] ^= 0x20;
                match LogEntry::decode(42, &g) {
                    Err(Error::Corrupt { lsn: Some(42), .. }) => {}
                    other => panic!("byte {i}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn truncation_and_wrong_lsn_are_corruption() {
        let f = sample(10).encode().unwrap();
        for n in 0..f.len() {
            assert!(
                LogEntry::decode(42, &f[..n]).is_err(),
                "prefix of {n} bytes"
            );
        }
        assert!(matches!(
            LogEntry::decode(43, &f),
            Err(Error::Corrupt { lsn: Some(43), .. })
        ));
    }

    #[test]
    fn random_bytes_never_panic() {
        use proptest::prelude::*;
        proptest!(|(bytes in proptest::collection::vec(any::<u8>(), 0..256))| {
            let _ = LogEntry::decode(1, &bytes);
            // A valid header with random operations.
            let mut f = encode_frame(1, 0, &[]).unwrap();
            f.truncate(HEADER_LEN);
            f[22..26].copy_from_slice(&3u32.to_le_bytes());
            f[26..30].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
            f.extend_from_slice(&bytes);
            let crc = crc32c::crc32c(&f[6..]);
            f[2..6].copy_from_slice(&crc.to_le_bytes());
            let _ = LogEntry::decode(1, &f);
        });
    }
}
