//! LMDB's two meta pages, read and written directly in `data.mdb`.
//!
//! A meta page is the root of one committed state: LMDB writes transaction
//! `t`'s meta into page `t % 2` and opens the state whose meta holds the
//! larger transaction id. With writes deferred between checkpoints (see
//! `write/checkpoint.rs`), a power loss can leave a meta page that points at
//! pages that never reached the disk; recovery then writes a checkpoint's
//! saved meta page into both slots, so LMDB opens the checkpoint's state,
//! whose pages are durable and were kept from reuse.
//!
//! Layout (LMDB 0.9, `mdb.c`): a 16-byte page header (`mp_pgno` u64,
//! `mp_pad` u16, `mp_flags` u16 with `P_META` = 0x08, `mp_lower`, `mp_upper`
//! u16), then `MDB_meta`: `mm_magic` u32 = 0xBEEFC0DE, `mm_version` u32 = 1,
//! `mm_address` u64, `mm_mapsize` u64, `mm_dbs[2]` (48 bytes each; the
//! first's `md_pad` is the page size), `mm_last_pg` u64, `mm_txnid` u64.
//! Integers are native-endian (this code runs where the file was written).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{Error, Result};

const HEADER: usize = 16;
const P_META: u16 = 0x08;
const MAGIC: u32 = 0xBEEF_C0DE;
const VERSION: u32 = 1;
const OFF_MAGIC: usize = HEADER;
const OFF_VERSION: usize = HEADER + 4;
const OFF_PSIZE: usize = HEADER + 4 + 4 + 8 + 8;
const OFF_LAST_PG: usize = HEADER + 4 + 4 + 8 + 8 + 2 * 48;
const OFF_TXNID: usize = OFF_LAST_PG + 8;
/// Bytes of a meta page that carry meaning (the rest of the page is unused).
pub const META_BYTES: usize = OFF_TXNID + 8;

/// The meaningful bytes of one meta page.
#[derive(Clone, PartialEq, Eq)]
pub struct MetaPage(pub Vec<u8>);

impl std::fmt::Debug for MetaPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaPage")
            .field("txnid", &self.txnid())
            .field("last_page", &self.last_page())
            .finish()
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(a)
}

impl MetaPage {
    /// Checks the bytes are an LMDB meta page for slot `slot`.
    pub fn parse(bytes: Vec<u8>, slot: u64, file: &Path) -> Result<MetaPage> {
        let bad = |what: &str| Error::Corrupt {
            location: file.display().to_string(),
            message: format!("meta page {slot} {what}"),
            lsn: None,
        };
        if bytes.len() < META_BYTES {
            return Err(bad("is truncated"));
        }
        if u64_at(&bytes, 0) != slot || u16_at(&bytes, 10) & P_META == 0 {
            return Err(bad("is not a meta page"));
        }
        if u32_at(&bytes, OFF_MAGIC) != MAGIC || u32_at(&bytes, OFF_VERSION) != VERSION {
            return Err(bad("has no LMDB magic or an unknown version"));
        }
        Ok(MetaPage(bytes[..META_BYTES].to_vec()))
    }

    /// Checks saved bytes (a checkpoint's copy): a meta page of slot 0 or 1.
    pub fn parse_saved(bytes: Vec<u8>, file: &Path) -> Result<MetaPage> {
        let slot = if bytes.len() >= 8 {
            u64_at(&bytes, 0)
        } else {
            u64::MAX
        };
        if slot > 1 {
            return Err(Error::Corrupt {
                location: file.display().to_string(),
                message: "the saved meta page names no meta slot".into(),
                lsn: None,
            });
        }
        MetaPage::parse(bytes, slot, file)
    }

    /// The transaction that committed this state.
    pub fn txnid(&self) -> u64 {
        u64_at(&self.0, OFF_TXNID)
    }

    /// The last page the state uses.
    pub fn last_page(&self) -> u64 {
        u64_at(&self.0, OFF_LAST_PG)
    }

    /// The page size the file was created with.
    pub fn page_size(&self) -> u64 {
        u64::from(u32_at(&self.0, OFF_PSIZE))
    }

    /// The same meta for the other slot (only the page number differs).
    fn for_slot(&self, slot: u64) -> Vec<u8> {
        let mut b = self.0.clone();
        b[..8].copy_from_slice(&slot.to_ne_bytes());
        b
    }
}

/// Reads meta page `slot` (0 or 1) of `data.mdb`. `page_size` is the size
/// the file was created with (4096 on this platform; read from slot 0).
pub fn read(file: &File, path: &Path, slot: u64, page_size: u64) -> Result<MetaPage> {
    let mut bytes = vec![0u8; META_BYTES];
    file.read_exact_at(&mut bytes, slot * page_size)
        .map_err(|e| Error::Corrupt {
            location: path.display().to_string(),
            message: format!("cannot read meta page {slot}: {e}"),
            lsn: None,
        })?;
    MetaPage::parse(bytes, slot, path)
}

/// Both meta pages of `data.mdb`, and which holds the newer state.
pub fn read_both(path: &Path) -> Result<(MetaPage, MetaPage)> {
    let file = File::open(path)?;
    let first = read(&file, path, 0, 0)?;
    let second = read(&file, path, 1, first.page_size())?;
    Ok((first, second))
}

/// The meta page of the committed state with transaction id `txnid`, if a
/// slot still holds it.
pub fn read_txn(path: &Path, txnid: u64) -> Result<Option<MetaPage>> {
    let (a, b) = read_both(path)?;
    Ok([a, b].into_iter().find(|m| m.txnid() == txnid))
}

/// Writes `meta` into both slots of `data.mdb` and makes it durable: the
/// next open sees exactly that state.
pub fn restore(path: &Path, meta: &MetaPage) -> Result<()> {
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    let psize = meta.page_size();
    for slot in 0..2u64 {
        file.write_all_at(&meta.for_slot(slot), slot * psize)?;
    }
    file.sync_all()?;
    Ok(())
}
