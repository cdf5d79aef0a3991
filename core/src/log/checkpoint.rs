//! The checkpoint record: which LMDB state is durable on disk and kept
//! intact (its pages cannot be reused while the checkpoint is current), the
//! LSN it holds, where the log goes on after it, its meta page, and the boot
//! it was taken in. Recovery after a power loss restores that meta page and
//! replays the log from there (see `write/checkpoint.rs`).
//!
//! The file `checkpoint` has two 4 KiB slots written alternately, each
//! fsynced; the valid slot with the higher sequence number is current, so a
//! torn write of one slot leaves the other.
//!
//! ```text
//! slot   magic "CSCKPT01" | seq u64 | boot id (36 bytes, UTF-8, zero padded)
//!        | lsn u64 | LMDB txn id u64 | WalPos (28 bytes) | meta length u16
//!        | meta page bytes | crc32c u32 of everything before it
//! ```

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::wal::WalPos;
use super::Lsn;
use crate::error::{Error, Result};
use crate::storage::meta::MetaPage;

const MAGIC: &[u8; 8] = b"CSCKPT01";
const SLOT: u64 = 4096;
const BOOT_LEN: usize = 36;

/// A durable, intact LMDB state and where the log continues after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Increases with every checkpoint written.
    pub seq: u64,
    /// The boot the writing process ran in.
    pub boot_id: String,
    /// The LSN the state holds.
    pub lsn: Lsn,
    /// The LMDB transaction that committed the state.
    pub txnid: u64,
    /// Where the log goes on.
    pub end: WalPos,
    /// The state's LMDB meta page.
    pub meta: MetaPage,
}

impl Checkpoint {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(SLOT as usize);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&self.seq.to_le_bytes());
        let mut boot = [0u8; BOOT_LEN];
        let id = self.boot_id.as_bytes();
        boot[..id.len().min(BOOT_LEN)].copy_from_slice(&id[..id.len().min(BOOT_LEN)]);
        b.extend_from_slice(&boot);
        b.extend_from_slice(&self.lsn.to_le_bytes());
        b.extend_from_slice(&self.txnid.to_le_bytes());
        b.extend_from_slice(&self.end.encode());
        b.extend_from_slice(&(self.meta.0.len() as u16).to_le_bytes());
        b.extend_from_slice(&self.meta.0);
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8], file: &Path) -> Option<Checkpoint> {
        let mut rest = b;
        let mut take = |n: usize| -> Option<&[u8]> {
            let (s, r) = (rest.get(..n)?, rest.get(n..)?);
            rest = r;
            Some(s)
        };
        if take(8)? != MAGIC {
            return None;
        }
        let u64_of = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap_or_default());
        let seq = u64_of(take(8)?);
        let boot = take(BOOT_LEN)?;
        let boot_id = String::from_utf8_lossy(boot)
            .trim_end_matches('\0')
            .to_owned();
        let lsn = u64_of(take(8)?);
        let txnid = u64_of(take(8)?);
        let end = WalPos::decode(take(WalPos::LEN)?).ok()?;
        let len = u16::from_le_bytes(take(2)?.try_into().ok()?) as usize;
        let meta = take(len)?.to_vec();
        let body_len = 8 + 8 + BOOT_LEN + 8 + 8 + WalPos::LEN + 2 + len;
        let crc = u32::from_le_bytes(take(4)?.try_into().ok()?);
        if crc != crc32c::crc32c(&b[..body_len]) {
            return None;
        }
        let meta = MetaPage::parse_saved(meta, file).ok()?;
        Some(Checkpoint {
            seq,
            boot_id,
            lsn,
            txnid,
            end,
            meta,
        })
    }
}

/// The checkpoint file of a log directory.
pub struct CheckpointFile {
    path: PathBuf,
    file: File,
}

impl CheckpointFile {
    /// Opens (creating) `dir/checkpoint`.
    pub fn open(dir: &Path) -> Result<CheckpointFile> {
        let path = dir.join("checkpoint");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        Ok(CheckpointFile { path, file })
    }

    /// Opens `dir/checkpoint` for reading only.
    pub fn open_read_only(dir: &Path) -> Result<CheckpointFile> {
        let path = dir.join("checkpoint");
        let file = File::open(&path)?;
        Ok(CheckpointFile { path, file })
    }

    /// The current checkpoint, if one was ever written.
    pub fn read(&self) -> Result<Option<Checkpoint>> {
        let mut best: Option<Checkpoint> = None;
        for slot in 0..2u64 {
            let mut b = vec![0u8; SLOT as usize];
            match self.file.read_exact_at(&mut b, slot * SLOT) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => continue,
                Err(e) => return Err(e.into()),
            }
            if let Some(c) = Checkpoint::decode(&b, &self.path) {
                if best.as_ref().is_none_or(|b| c.seq > b.seq) {
                    best = Some(c);
                }
            }
        }
        Ok(best)
    }

    /// Writes `c` durably into the slot its sequence number selects.
    pub fn write(&self, c: &Checkpoint) -> Result<()> {
        let mut b = c.encode();
        if b.len() > SLOT as usize {
            return Err(Error::Io(std::io::Error::other(
                "checkpoint record too large",
            )));
        }
        b.resize(SLOT as usize, 0);
        self.file.write_all_at(&b, (c.seq % 2) * SLOT)?;
        self.file.sync_data()?;
        Ok(())
    }
}

/// This machine's boot id (`/proc/sys/kernel/random/boot_id`), or the value
/// of `COLLECTION_STORE_BOOT_ID` when set (to make a process act as if the
/// machine had rebooted, e.g. a crash-image checker). Empty when unknown:
/// then every open after an unclean shutdown recovers from the checkpoint.
pub fn boot_id() -> String {
    if let Ok(v) = std::env::var("COLLECTION_STORE_BOOT_ID") {
        return v;
    }
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}
