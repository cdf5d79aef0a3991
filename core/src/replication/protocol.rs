//! The replication wire protocol (version 1): length-prefixed frames.
//!
//! Every frame is `u32 LE length | u8 type | payload`, where `length` counts the
//! type byte and the payload (so it is at least 1) and never exceeds
//! [`MAX_FRAME`]. All integers inside payloads are little-endian. The message
//! types and their payloads are listed on [`Message`] and in ARCHITECTURE.md.
//!
//! Decoding never panics: a short, oversized, unknown or inconsistent frame is
//! an [`Error::Protocol`].

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Lsn;
use crate::error::{Error, Result};

/// Protocol version spoken by this build.
pub const PROTOCOL_VERSION: u16 = 1;

/// Magic bytes at the start of the first message of a connection.
pub const MAGIC: [u8; 6] = *b"CSREPL";

/// Largest accepted frame (type byte + payload): 256 MiB. A single log entry
/// must fit in one frame with its 12-byte header.
pub const MAX_FRAME: usize = 256 << 20;

/// Largest uncompressed snapshot chunk a peer may announce: 4 MiB.
pub const MAX_SNAPSHOT_CHUNK: usize = 4 << 20;

/// Length of the random nonces exchanged during authentication.
pub const NONCE_LEN: usize = 32;

/// Length of an HMAC-SHA256 tag (and of a SHA-256 digest).
pub const MAC_LEN: usize = 32;

/// Error codes carried by [`Message::Error`].
pub mod code {
    /// The peer failed authentication.
    pub const UNAUTHORIZED: u16 = 1;
    /// The peer speaks another protocol version.
    pub const VERSION: u16 = 2;
    /// A malformed or unexpected message.
    pub const PROTOCOL: u16 = 3;
    /// The requested position cannot be served (for example the replica is
    /// ahead of the primary).
    pub const POSITION: u16 = 4;
    /// The primary failed internally (storage error); the replica retries.
    pub const INTERNAL: u16 = 5;
    /// The primary is shutting down.
    pub const SHUTDOWN: u16 = 6;
}

/// One protocol message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Type 0x01, replica → primary, first message:
    /// `magic[6] | version u16 | nonce[32]`.
    Hello {
        /// The replica's protocol version.
        version: u16,
        /// The replica's random challenge.
        nonce: [u8; NONCE_LEN],
    },
    /// Type 0x02, primary → replica: `version u16 | nonce[32] | proof[32]` where
    /// `proof = HMAC(secret, "cs-repl/1 primary" | replica nonce | primary nonce)`.
    Challenge {
        /// The primary's protocol version.
        version: u16,
        /// The primary's random challenge.
        nonce: [u8; NONCE_LEN],
        /// The primary's answer to the replica's challenge.
        proof: [u8; MAC_LEN],
    },
    /// Type 0x03, replica → primary: `proof[32]` where
    /// `proof = HMAC(secret, "cs-repl/1 replica" | replica nonce | primary nonce)`.
    Proof {
        /// The replica's answer to the primary's challenge.
        proof: [u8; MAC_LEN],
    },
    /// Type 0x04, primary → replica: authentication succeeded; `last_lsn u64`.
    AuthOk {
        /// The primary's last LSN.
        last_lsn: Lsn,
    },
    /// Type 0x05, either direction, then the sender closes: `code u16 | UTF-8 message`.
    Error {
        /// One of [`code`].
        code: u16,
        /// A message for a person.
        message: String,
    },
    /// Type 0x10, replica → primary: stream every entry with an LSN above `after`;
    /// `after u64 | crc u32`, where `crc` is the CRC-32C field of the replica's
    /// frame at `after`, so the primary can tell a replica whose history
    /// diverged from its own; 0 when `after` is 0 or the replica's log no longer
    /// holds that frame (installed from a snapshot, nothing applied since), and
    /// then the primary has nothing to compare.
    Follow {
        /// The replica's last applied LSN.
        after: Lsn,
        /// The checksum field (bytes 2..6) of the replica's log frame at `after`.
        crc: u32,
    },
    /// Type 0x11, primary → replica: `primary_last u64 | time_ms u64 | count u32 |
    /// count × (lsn u64 | len u32 | frame bytes)`: contiguous log entries as stored
    /// in the primary's log table (checksummed frames).
    Entries {
        /// The primary's last LSN when the batch was read.
        primary_last: Lsn,
        /// The primary's clock (ms since the Unix epoch).
        time_ms: u64,
        /// The entries, ascending and contiguous.
        frames: Vec<(Lsn, Vec<u8>)>,
    },
    /// Type 0x12, primary → replica when idle: `last_lsn u64 | time_ms u64`.
    Heartbeat {
        /// The primary's last LSN.
        last_lsn: Lsn,
        /// The primary's clock (ms since the Unix epoch).
        time_ms: u64,
    },
    /// Type 0x13, replica → primary: `applied u64`, sent after every durable apply
    /// and in answer to heartbeats.
    Ack {
        /// The replica's last durably applied LSN.
        applied: Lsn,
    },
    /// Type 0x20, primary → replica: a snapshot follows; `lsn u64 | size u64`
    /// (uncompressed bytes).
    SnapshotBegin {
        /// The LSN the snapshot contains.
        lsn: Lsn,
        /// Size of the snapshot file.
        size: u64,
    },
    /// Type 0x21, primary → replica: `raw_len u32 | zstd frame`, one independently
    /// compressed piece of the snapshot file (`raw_len` ≤ [`MAX_SNAPSHOT_CHUNK`]).
    SnapshotChunk {
        /// Uncompressed length of this chunk.
        raw_len: u32,
        /// zstd-compressed bytes.
        data: Vec<u8>,
    },
    /// Type 0x22, primary → replica: `sha256[32]` of the whole uncompressed file.
    SnapshotEnd {
        /// SHA-256 of the snapshot file.
        sha256: [u8; MAC_LEN],
    },
}

impl Message {
    /// The frame type byte.
    pub fn type_byte(&self) -> u8 {
        match self {
            Message::Hello { .. } => 0x01,
            Message::Challenge { .. } => 0x02,
            Message::Proof { .. } => 0x03,
            Message::AuthOk { .. } => 0x04,
            Message::Error { .. } => 0x05,
            Message::Follow { .. } => 0x10,
            Message::Entries { .. } => 0x11,
            Message::Heartbeat { .. } => 0x12,
            Message::Ack { .. } => 0x13,
            Message::SnapshotBegin { .. } => 0x20,
            Message::SnapshotChunk { .. } => 0x21,
            Message::SnapshotEnd { .. } => 0x22,
        }
    }

    /// A short name for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Hello { .. } => "Hello",
            Message::Challenge { .. } => "Challenge",
            Message::Proof { .. } => "Proof",
            Message::AuthOk { .. } => "AuthOk",
            Message::Error { .. } => "Error",
            Message::Follow { .. } => "Follow",
            Message::Entries { .. } => "Entries",
            Message::Heartbeat { .. } => "Heartbeat",
            Message::Ack { .. } => "Ack",
            Message::SnapshotBegin { .. } => "SnapshotBegin",
            Message::SnapshotChunk { .. } => "SnapshotChunk",
            Message::SnapshotEnd { .. } => "SnapshotEnd",
        }
    }

    /// Encodes the whole frame (length prefix included).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.push(self.type_byte());
        match self {
            Message::Hello { version, nonce } => {
                out.extend_from_slice(&MAGIC);
                out.extend_from_slice(&version.to_le_bytes());
                out.extend_from_slice(nonce);
            }
            Message::Challenge {
                version,
                nonce,
                proof,
            } => {
                out.extend_from_slice(&version.to_le_bytes());
                out.extend_from_slice(nonce);
                out.extend_from_slice(proof);
            }
            Message::Proof { proof } => out.extend_from_slice(proof),
            Message::AuthOk { last_lsn } => out.extend_from_slice(&last_lsn.to_le_bytes()),
            Message::Error { code, message } => {
                out.extend_from_slice(&code.to_le_bytes());
                // Error texts are for people: keep them short.
                let mut end = message.len().min(4096);
                while !message.is_char_boundary(end) {
                    end -= 1;
                }
                out.extend_from_slice(&message.as_bytes()[..end]);
            }
            Message::Follow { after, crc } => {
                out.extend_from_slice(&after.to_le_bytes());
                out.extend_from_slice(&crc.to_le_bytes());
            }
            Message::Entries {
                primary_last,
                time_ms,
                frames,
            } => {
                let body: usize = frames.iter().map(|(_, f)| 12 + f.len()).sum();
                out.reserve(20 + body);
                out.extend_from_slice(&primary_last.to_le_bytes());
                out.extend_from_slice(&time_ms.to_le_bytes());
                let count = u32::try_from(frames.len())
                    .map_err(|_| Error::Protocol("too many entries in one batch".into()))?;
                out.extend_from_slice(&count.to_le_bytes());
                for (lsn, f) in frames {
                    out.extend_from_slice(&lsn.to_le_bytes());
                    let len = u32::try_from(f.len()).map_err(|_| {
                        Error::Protocol(format!("log entry {lsn} is larger than 4 GiB"))
                    })?;
                    out.extend_from_slice(&len.to_le_bytes());
                    out.extend_from_slice(f);
                }
            }
            Message::Heartbeat { last_lsn, time_ms } => {
                out.extend_from_slice(&last_lsn.to_le_bytes());
                out.extend_from_slice(&time_ms.to_le_bytes());
            }
            Message::Ack { applied } => out.extend_from_slice(&applied.to_le_bytes()),
            Message::SnapshotBegin { lsn, size } => {
                out.extend_from_slice(&lsn.to_le_bytes());
                out.extend_from_slice(&size.to_le_bytes());
            }
            Message::SnapshotChunk { raw_len, data } => {
                out.extend_from_slice(&raw_len.to_le_bytes());
                out.extend_from_slice(data);
            }
            Message::SnapshotEnd { sha256 } => out.extend_from_slice(sha256),
        }
        let len = out.len() - 4;
        if len > MAX_FRAME {
            return Err(Error::Protocol(format!(
                "{} message of {len} bytes exceeds the {MAX_FRAME}-byte frame limit",
                self.name()
            )));
        }
        out[..4].copy_from_slice(&(len as u32).to_le_bytes());
        Ok(out)
    }

    /// Decodes one frame body: `ty` is the type byte, `p` the payload.
    pub fn decode(ty: u8, p: &[u8]) -> Result<Message> {
        let mut r = Reader { p, ty };
        let msg = match ty {
            0x01 => {
                let magic = r.array::<6>()?;
                if magic != MAGIC {
                    return Err(Error::Protocol(
                        "not a collection-store replication peer (bad magic)".into(),
                    ));
                }
                Message::Hello {
                    version: r.u16()?,
                    nonce: r.array()?,
                }
            }
            0x02 => Message::Challenge {
                version: r.u16()?,
                nonce: r.array()?,
                proof: r.array()?,
            },
            0x03 => Message::Proof { proof: r.array()? },
            0x04 => Message::AuthOk { last_lsn: r.u64()? },
            0x05 => {
                let code = r.u16()?;
                let rest = r.rest();
                Message::Error {
                    code,
                    message: String::from_utf8_lossy(rest).into_owned(),
                }
            }
            0x10 => Message::Follow {
                after: r.u64()?,
                crc: r.u32()?,
            },
            0x11 => {
                let primary_last = r.u64()?;
                let time_ms = r.u64()?;
                let count = r.u32()? as usize;
                // Each entry needs at least 12 header bytes: bound the allocation
                // by what the payload can hold.
                if count > r.p.len() / 12 {
                    return Err(r.err(format!(
                        "announces {count} entries but holds only {} bytes",
                        r.p.len()
                    )));
                }
                let mut frames = Vec::with_capacity(count);
                let mut prev: Option<Lsn> = None;
                for _ in 0..count {
                    let lsn = r.u64()?;
                    let len = r.u32()? as usize;
                    let bytes = r.take(len)?.to_vec();
                    if lsn == 0 || prev.is_some_and(|p| p.checked_add(1) != Some(lsn)) {
                        return Err(r.err(format!(
                            "entries are not contiguous (LSN {lsn} after {prev:?})"
                        )));
                    }
                    prev = Some(lsn);
                    frames.push((lsn, bytes));
                }
                Message::Entries {
                    primary_last,
                    time_ms,
                    frames,
                }
            }
            0x12 => Message::Heartbeat {
                last_lsn: r.u64()?,
                time_ms: r.u64()?,
            },
            0x13 => Message::Ack { applied: r.u64()? },
            0x20 => Message::SnapshotBegin {
                lsn: r.u64()?,
                size: r.u64()?,
            },
            0x21 => {
                let raw_len = r.u32()?;
                if raw_len as usize > MAX_SNAPSHOT_CHUNK {
                    return Err(r.err(format!(
                        "chunk of {raw_len} bytes exceeds the {MAX_SNAPSHOT_CHUNK}-byte limit"
                    )));
                }
                Message::SnapshotChunk {
                    raw_len,
                    data: r.rest().to_vec(),
                }
            }
            0x22 => Message::SnapshotEnd { sha256: r.array()? },
            other => {
                return Err(Error::Protocol(format!(
                    "unknown message type 0x{other:02x}"
                )))
            }
        };
        if !r.p.is_empty() {
            return Err(Error::Protocol(format!(
                "{} message has {} trailing bytes",
                msg.name(),
                r.p.len()
            )));
        }
        Ok(msg)
    }
}

/// The CRC-32C field of a stored log frame (bytes 2..6, see the change-log
/// entry format), or 0 for a frame too short to have one.
pub fn frame_crc(frame: &[u8]) -> u32 {
    match frame.get(2..6) {
        Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        None => 0,
    }
}

/// Decodes the first frame of `buf`: `Ok(None)` when `buf` does not hold a
/// whole frame yet, otherwise the message and the bytes it used.
pub fn decode_frame(buf: &[u8]) -> Result<Option<(Message, usize)>> {
    let Some(head) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    check_len(len)?;
    let Some(body) = buf.get(4..4 + len) else {
        return Ok(None);
    };
    let msg = Message::decode(body[0], &body[1..])?;
    Ok(Some((msg, 4 + len)))
}

fn check_len(len: usize) -> Result<()> {
    if len == 0 {
        return Err(Error::Protocol("empty frame (length 0)".into()));
    }
    if len > MAX_FRAME {
        return Err(Error::Protocol(format!(
            "frame of {len} bytes exceeds the {MAX_FRAME}-byte limit"
        )));
    }
    Ok(())
}

struct Reader<'a> {
    p: &'a [u8],
    ty: u8,
}

impl<'a> Reader<'a> {
    fn err(&self, what: String) -> Error {
        Error::Protocol(format!("message type 0x{:02x}: {what}", self.ty))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.p.len() < n {
            return Err(self.err(format!(
                "truncated: needs {n} more bytes, {} left",
                self.p.len()
            )));
        }
        let (a, b) = self.p.split_at(n);
        self.p = b;
        Ok(a)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.p)
    }
}

/// Largest frame accepted from a peer that has not authenticated yet, and from
/// a replica (which only sends small messages): 8 KiB.
pub const MAX_SMALL_FRAME: usize = 8 << 10;

/// Reads one message of at most [`MAX_FRAME`] bytes. A clean end of stream
/// before the first byte of a frame is reported as an `UnexpectedEof` I/O error.
pub async fn read_message<R: AsyncRead + Unpin>(r: &mut R) -> Result<Message> {
    read_message_max(r, MAX_FRAME).await
}

/// Reads one message of at most `max` bytes (type byte and payload).
pub async fn read_message_max<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Message> {
    let mut head = [0u8; 4];
    r.read_exact(&mut head).await?;
    let len = u32::from_le_bytes(head) as usize;
    check_len(len)?;
    if len > max {
        return Err(Error::Protocol(format!(
            "frame of {len} bytes exceeds the {max}-byte limit for this stage of the connection"
        )));
    }
    let mut ty = [0u8; 1];
    r.read_exact(&mut ty).await?;
    // Grow the buffer as bytes arrive instead of trusting the announced length
    // up front: a peer announcing 256 MiB and sending nothing costs nothing.
    let mut body = Vec::with_capacity((len - 1).min(1 << 20));
    let got = r.take((len - 1) as u64).read_to_end(&mut body).await?;
    if got != len - 1 {
        return Err(Error::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("connection closed inside a {len}-byte frame"),
        )));
    }
    Message::decode(ty[0], &body)
}

/// Writes one message and flushes.
/// Tells the peer why the session ends (best effort: a write failure is
/// ignored, the session is over either way).
pub async fn send_error<W: AsyncWrite + Unpin>(w: &mut W, code: u16, message: impl Into<String>) {
    let msg = Message::Error {
        code,
        message: message.into(),
    };
    let _ = write_message(w, &msg).await;
}

/// Writes one message and flushes it.
pub async fn write_message<W: AsyncWrite + Unpin>(w: &mut W, msg: &Message) -> Result<()> {
    let bytes = msg.encode()?;
    w.write_all(&bytes).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Message> {
        vec![
            Message::Hello {
                version: 1,
                nonce: [7; 32],
            },
            Message::Challenge {
                version: 1,
                nonce: [1; 32],
                proof: [2; 32],
            },
            Message::Proof { proof: [3; 32] },
            Message::AuthOk { last_lsn: 42 },
            Message::Error {
                code: code::UNAUTHORIZED,
                message: "no".into(),
            },
            Message::Follow { after: 9, crc: 3 },
            Message::Entries {
                primary_last: 12,
                time_ms: 99,
                frames: vec![(10, vec![1, 2, 3]), (11, vec![]), (12, vec![9; 100])],
            },
            Message::Entries {
                primary_last: 0,
                time_ms: 0,
                frames: vec![],
            },
            Message::Heartbeat {
                last_lsn: 5,
                time_ms: 6,
            },
            Message::Ack { applied: 77 },
            Message::SnapshotBegin { lsn: 3, size: 4096 },
            Message::SnapshotChunk {
                raw_len: 10,
                data: vec![5; 7],
            },
            Message::SnapshotEnd { sha256: [8; 32] },
        ]
    }

    #[test]
    fn round_trip() {
        for m in samples() {
            let bytes = m.encode().unwrap();
            let (back, used) = decode_frame(&bytes).unwrap().unwrap();
            assert_eq!(used, bytes.len());
            assert_eq!(back, m);
            // Every strict prefix is "not yet complete", never an error or a panic.
            for cut in 0..bytes.len() {
                assert!(decode_frame(&bytes[..cut]).unwrap().is_none());
            }
        }
    }

    #[test]
    fn malformed_frames_are_typed_errors() {
        let bad: Vec<Vec<u8>> = vec![
            vec![0, 0, 0, 0],                                   // length 0
            (MAX_FRAME as u32 + 1).to_le_bytes().to_vec(),      // oversized
            vec![1, 0, 0, 0, 0x7f],                             // unknown type
            vec![2, 0, 0, 0, 0x13, 1],                          // truncated Ack
            vec![10, 0, 0, 0, 0x13, 1, 0, 0, 0, 0, 0, 0, 0, 9], // trailing byte
            {
                // Entries announcing more entries than it holds.
                let mut v = vec![0u8; 4];
                v.push(0x11);
                v.extend_from_slice(&[0; 16]);
                v.extend_from_slice(&u32::MAX.to_le_bytes());
                let len = (v.len() - 4) as u32;
                v[..4].copy_from_slice(&len.to_le_bytes());
                v
            },
            {
                // Hello with a bad magic.
                let mut v = Message::Hello {
                    version: 1,
                    nonce: [0; 32],
                }
                .encode()
                .unwrap();
                v[5] = b'X';
                v
            },
        ];
        for b in bad {
            match decode_frame(&b) {
                Err(Error::Protocol(_)) => {}
                other => panic!("{b:?}: expected a protocol error, got {other:?}"),
            }
        }
        // Non-contiguous entries.
        let m = Message::Entries {
            primary_last: 3,
            time_ms: 0,
            frames: vec![(1, vec![]), (3, vec![])],
        };
        assert!(matches!(
            decode_frame(&m.encode().unwrap()),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn oversized_chunk_refused() {
        let m = Message::SnapshotChunk {
            raw_len: MAX_SNAPSHOT_CHUNK as u32 + 1,
            data: vec![],
        };
        assert!(matches!(
            decode_frame(&m.encode().unwrap()),
            Err(Error::Protocol(_))
        ));
    }

    proptest::proptest! {
        // 2,000 cases by default; PROPTEST_CASES raises it for long runs.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)
        ))]

        /// Random bytes never panic the decoder: each gives "not whole yet",
        /// a frame of exactly its announced length, or a protocol error.
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            check_decoded(&bytes, decode_frame(&bytes))?;
        }

        /// Random payloads behind every known type byte never panic either:
        /// a message that encodes back to the same payload, or a protocol error.
        #[test]
        fn random_payloads_never_panic(
            ty in proptest::sample::select(vec![1u8, 2, 3, 4, 5, 0x10, 0x11, 0x12, 0x13, 0x20, 0x21, 0x22]),
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            let mut frame = ((payload.len() + 1) as u32).to_le_bytes().to_vec();
            frame.push(ty);
            frame.extend_from_slice(&payload);
            match Message::decode(ty, &payload) {
                Ok(m) => check_round_trip(&m, &frame)?,
                Err(Error::Protocol(_)) => {}
                Err(e) => proptest::prop_assert!(false, "type {ty:#x}: not a protocol error: {e:?}"),
            }
        }

        /// Mutating one byte of a valid frame gives a message or a typed error.
        #[test]
        fn mutated_frames_never_panic(which in 0usize..13, pos in 0usize..400, val in proptest::prelude::any::<u8>()) {
            let mut bytes = samples()[which % 13].encode().unwrap();
            let i = pos % bytes.len();
            bytes[i] = val;
            let decoded = decode_frame(&bytes);
            if i >= 4 {
                // The length is intact: the frame is whole.
                proptest::prop_assert!(!matches!(decoded, Ok(None)), "byte {i}: {decoded:?}");
            }
            check_decoded(&bytes, decoded)?;
        }
    }

    /// What `decode_frame(buf)` may answer: not whole yet (fewer bytes than
    /// announced), a message using exactly the announced length that encodes
    /// back to those bytes, or `Error::Protocol` — never another error kind.
    fn check_decoded(
        buf: &[u8],
        decoded: Result<Option<(Message, usize)>>,
    ) -> std::result::Result<(), proptest::test_runner::TestCaseError> {
        let announced = buf
            .get(..4)
            .map(|h| 4 + u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize);
        match decoded {
            Ok(None) => proptest::prop_assert!(
                announced.is_none_or(|n| buf.len() < n),
                "a whole frame ({} of {announced:?} bytes) was reported as incomplete",
                buf.len()
            ),
            Ok(Some((m, used))) => {
                proptest::prop_assert_eq!(Some(used), announced);
                check_round_trip(&m, &buf[..used])?;
            }
            Err(Error::Protocol(_)) => {}
            Err(e) => proptest::prop_assert!(false, "not a protocol error: {e:?}"),
        }
        Ok(())
    }

    /// A decoded message encodes back to the frame it came from (an error
    /// message's text is decoded lossily, so only its code is compared).
    fn check_round_trip(
        m: &Message,
        frame: &[u8],
    ) -> std::result::Result<(), proptest::test_runner::TestCaseError> {
        let again = m.encode().unwrap();
        match m {
            Message::Error { .. } => proptest::prop_assert_eq!(&again[4..7], &frame[4..7]),
            _ => proptest::prop_assert_eq!(&again[..], frame, "decoded as {:?}", m),
        }
        Ok(())
    }

    #[test]
    fn async_read_rejects_truncation() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let bytes = Message::Ack { applied: 5 }.encode().unwrap();
            let mut ok = &bytes[..];
            assert_eq!(
                read_message(&mut ok).await.unwrap(),
                Message::Ack { applied: 5 }
            );
            let mut short = &bytes[..bytes.len() - 1];
            assert!(matches!(read_message(&mut short).await, Err(Error::Io(_))));
            // A huge announced length with no body: an error, not an allocation.
            let mut huge: &[u8] = &[0xff, 0xff, 0xff, 0x0f, 0x11];
            assert!(read_message(&mut huge).await.is_err());
            // Small-frame stages refuse big frames before reading them.
            let big = Message::Entries {
                primary_last: 1,
                time_ms: 0,
                frames: vec![(1, vec![0; MAX_SMALL_FRAME])],
            }
            .encode()
            .unwrap();
            let mut r = &big[..];
            assert!(matches!(
                read_message_max(&mut r, MAX_SMALL_FRAME).await,
                Err(Error::Protocol(_))
            ));
        });
    }
}
