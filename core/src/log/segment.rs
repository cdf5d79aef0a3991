//! One segment file of the write-ahead log: a preallocated file of
//! `size` bytes whose first 4 KiB hold a header and whose records follow
//! back to back.
//!
//! ```text
//! header (at 0)   magic "CSWAL\0\x01\0" | segment id u64 | first LSN u64 | size u64
//!                 | crc32c u32 of the preceding 32 bytes        (little-endian)
//! record          length u32 | epoch u32 | frame (length bytes, see entry.rs)
//! ```
//! Files are created full size by writing zeros (then fsynced, renamed into
//! place and the directory fsynced), and reused after their entries are no
//! longer needed, so appending a record overwrites allocated blocks: its
//! `fdatasync` carries no metadata. A header whose id is not the file's own
//! marks a file prepared or recycled for later use. Records end at the first
//! one that does not parse (zeros, a torn write, a checksum mismatch, an LSN
//! out of sequence, or an epoch lower than the one before — left over from
//! before a recovery).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

use super::Lsn;

/// Bytes reserved for the header at the start of every segment.
pub const HEADER_SIZE: u64 = 4096;
/// Bytes before each frame: length and epoch.
pub const RECORD_HEADER: usize = 8;
const MAGIC: &[u8; 8] = b"CSWAL\0\x01\0";
const HEADER_BYTES: usize = 36;

/// A segment's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The segment's id (its file name).
    pub id: u64,
    /// The LSN of its first record.
    pub first_lsn: Lsn,
    /// The file's size.
    pub size: u64,
}

impl Header {
    fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut b = [0u8; HEADER_BYTES];
        b[..8].copy_from_slice(MAGIC);
        b[8..16].copy_from_slice(&self.id.to_le_bytes());
        b[16..24].copy_from_slice(&self.first_lsn.to_le_bytes());
        b[24..32].copy_from_slice(&self.size.to_le_bytes());
        let crc = crc32c::crc32c(&b[..32]);
        b[32..36].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Header> {
        if b.len() < HEADER_BYTES || &b[..8] != MAGIC {
            return None;
        }
        let crc = u32::from_le_bytes(b[32..36].try_into().ok()?);
        if crc != crc32c::crc32c(&b[..32]) {
            return None;
        }
        let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default());
        Some(Header {
            id: u64_at(8),
            first_lsn: u64_at(16),
            size: u64_at(24),
        })
    }
}

/// The file name of segment `id`.
pub fn path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016x}.seg"))
}

/// The segment id a file name denotes.
pub fn id_of(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".seg")?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

/// Makes the directory entry changes in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Creates segment `id` of `size` bytes (zeros, written and fsynced, then
/// linked into place; the directory is fsynced). Nothing when a file of that
/// name exists with at least that size (prepared by someone else
/// meanwhile). A shorter one is replaced only when `replace_shorter` (the
/// writer about to start the segment, under LMDB's write lock, so nobody
/// writes it yet); preparing ahead never replaces anything.
pub fn prepare(dir: &Path, id: u64, size: u64, replace_shorter: bool) -> Result<()> {
    let target = path(dir, id);
    match std::fs::metadata(&target) {
        Ok(m) if m.len() >= size || !replace_shorter => return Ok(()),
        _ => {}
    }
    static PREPARES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = PREPARES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!("{id:016x}.tmp-{}-{n}", std::process::id()));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        let zeros = vec![0u8; 1 << 20];
        let mut left = size;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            f.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        f.sync_all()?;
    }
    let linked = if replace_shorter && std::fs::metadata(&target).is_ok() {
        // A shorter file (an oversized entry needs more): replace it. Only
        // the writer about to start the segment does this, under LMDB's
        // write lock: nobody writes the segment yet.
        std::fs::rename(&tmp, &target)
    } else {
        // Never replaces: a file that appeared meanwhile (prepared by
        // another thread, or already started) wins.
        std::fs::hard_link(&tmp, &target).and_then(|()| std::fs::remove_file(&tmp))
    };
    match linked {
        Ok(()) => {}
        // Someone else linked it first: theirs is as good.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let _ = std::fs::remove_file(&tmp);
        }
        Err(e) => return Err(e.into()),
    }
    sync_dir(dir)
}

/// Renames a segment that is no longer needed to `new_id`, for reuse (its
/// header no longer matches its name, so nothing in it is read), unless a
/// file of that name exists; then it is deleted. The directory is fsynced.
pub fn recycle(dir: &Path, old_id: u64, new_id: u64) -> Result<()> {
    match std::fs::hard_link(path(dir, old_id), path(dir, new_id)) {
        Ok(()) | Err(_) => {}
    }
    std::fs::remove_file(path(dir, old_id))?;
    sync_dir(dir)
}

/// Opens segment `id` for reading and writing.
pub fn open(dir: &Path, id: u64) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path(dir, id))
        .map_err(|e| {
            Error::Io(std::io::Error::new(
                e.kind(),
                format!("log segment {}: {e}", path(dir, id).display()),
            ))
        })
}

/// Reads segment `id`'s header: `None` when the file holds no header for
/// this id (prepared or recycled for later use).
pub fn read_header(file: &File, id: u64) -> Result<Option<Header>> {
    let mut b = [0u8; HEADER_BYTES];
    match file.read_exact_at(&mut b, 0) {
        Ok(()) => Ok(Header::decode(&b).filter(|h| h.id == id)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Writes the header that starts segment `header.id`.
pub fn write_header(file: &File, header: &Header) -> Result<()> {
    file.write_all_at(&header.encode(), 0)?;
    Ok(())
}

/// Appends `record`'s bytes for one frame to `out`.
pub fn encode_record(out: &mut Vec<u8>, epoch: u32, frame: &[u8]) -> Result<()> {
    let len = u32::try_from(frame.len())
        .map_err(|_| Error::Io(std::io::Error::other("log entry larger than 4 GiB")))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&epoch.to_le_bytes());
    out.extend_from_slice(frame);
    Ok(())
}

/// A record read back: its epoch and frame.
pub struct Record {
    /// The epoch it was written in.
    pub epoch: u32,
    /// The frame.
    pub frame: Vec<u8>,
}

/// Reads the record at `offset` if one fits in a file of `size` bytes
/// (`None`: zeros or garbage, the end of the log). The frame itself is not
/// checked here.
pub fn read_record(file: &File, offset: u64, size: u64) -> Result<Option<Record>> {
    if offset + RECORD_HEADER as u64 > size {
        return Ok(None);
    }
    let mut h = [0u8; RECORD_HEADER];
    file.read_exact_at(&mut h, offset)?;
    let len = u64::from(u32::from_le_bytes([h[0], h[1], h[2], h[3]]));
    let epoch = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    if len == 0 || offset + RECORD_HEADER as u64 + len > size {
        return Ok(None);
    }
    let mut frame = vec![0u8; len as usize];
    file.read_exact_at(&mut frame, offset + RECORD_HEADER as u64)?;
    Ok(Some(Record { epoch, frame }))
}
