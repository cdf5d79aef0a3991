//! Checks `data.mdb` before LMDB maps it, so that a damaged file is refused
//! with [`Error::Corrupt`] instead of faulting the process on first use.
//!
//! LMDB itself checks only the meta pages' magic and version; it then maps
//! the file and follows whatever the newer meta page points at. A file that
//! is shorter than its state (truncated) faults with SIGBUS, a damaged page
//! on the path LMDB reads when opening with SIGSEGV, and a 0-byte file is
//! taken for a new database. Here, before the map exists:
//! - an existing empty file is refused (it is not a new database);
//! - both meta pages must parse (`meta.rs`), record a sane page size, and
//!   have roots inside their state; every page of the newest state past the
//!   end of the file must be free (LMDB may leave pages it allocated and
//!   freed in one transaction unwritten, so the file may be shorter than the
//!   state, but never by a page in use);
//! - the trees opening and recovery read (free pages, the main tree, the
//!   metadata, catalog and old log tables) are walked page by page
//!   (`walk.rs`); the documents' and indexes' trees, which opening does not
//!   read, have their root page checked. `Database::verify` walks those.
//!
//! Runs after recovery may have restored a checkpoint's meta page (see
//! `write/recovery.rs`), so it judges the state LMDB is about to open. When
//! another process commits meanwhile (the state moves under the walk), the
//! check starts again on the new state; it refuses only a state that stays
//! damaged.

use std::path::Path;

use super::meta::{self, MetaPage, NO_PAGE};
use super::walk::{self, Depth};
use crate::error::{Error, Result};

/// The tables whose trees opening does not read (root page checked only).
const SHALLOW: &[&str] = &["docs", "indexes"];

/// How many times a state that changed under the check is checked again.
const ATTEMPTS: usize = 5;

/// Problems listed in the error.
const LISTED: usize = 5;

fn corrupt(path: &Path, message: String) -> Error {
    Error::Corrupt {
        location: path.display().to_string(),
        message,
        lsn: None,
    }
}

/// Checks the data file at `path` before it is opened; a missing file is
/// fine (a new database is created).
pub fn before_open(path: &Path) -> Result<()> {
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io_at(path, e)),
    };
    if len == 0 {
        return Err(corrupt(
            path,
            "the file is empty (0 bytes): it is not a database, and it is not taken for a new one; \
             restore it from a backup, or remove it to start an empty database"
                .into(),
        ));
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (result, seen) = check_once(path);
        match result {
            Ok(()) => return Ok(()),
            Err(e) => {
                let now = newest_txnid(path);
                if attempt >= ATTEMPTS || now.is_none() || now != seen {
                    return Err(e);
                }
            }
        }
    }
}

fn newest_txnid(path: &Path) -> Option<u64> {
    meta::read_both(path)
        .ok()
        .map(|(a, b)| a.txnid().max(b.txnid()))
}

/// One check; also returns the newest transaction id it saw.
fn check_once(path: &Path) -> (Result<()>, Option<u64>) {
    let (a, b) = match meta::read_both(path) {
        Ok(both) => both,
        Err(e) => return (Err(e), None),
    };
    let seen = Some(a.txnid().max(b.txnid()));
    (check_metas(path, &a, &b), seen)
}

fn check_metas(path: &Path, a: &MetaPage, b: &MetaPage) -> Result<()> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io_at(path, e))?
        .len();
    for (slot, m) in [(0, a), (1, b)] {
        let psize = m.page_size();
        if !(512..=65536).contains(&psize) || !psize.is_power_of_two() {
            return Err(corrupt(
                path,
                format!("meta page {slot} records a page size of {psize} bytes"),
            ));
        }
        let pages = m.last_page().saturating_add(1);
        if pages < 2 || len < 2 * psize {
            return Err(corrupt(
                path,
                format!(
                    "the file is {len} bytes, but meta page {slot} (transaction {}) records a state of {pages} pages of {psize} bytes: the file was truncated or the meta page is damaged",
                    m.txnid()
                ),
            ));
        }
        for (what, tree) in [("free-page", m.free_tree()), ("main", m.main_tree())] {
            let root = tree.map_or(NO_PAGE, |t| t.root);
            if root != NO_PAGE && !(2..pages).contains(&root) {
                return Err(corrupt(
                    path,
                    format!("meta page {slot} records a {what} tree root at page {root}, outside its {pages} pages"),
                ));
            }
        }
    }
    // LMDB opens the state of the larger transaction id (slot 0 on a tie).
    let newest = if b.txnid() > a.txnid() { b } else { a };
    let found = walk::structure(path, newest, Depth::Except(SHALLOW), LISTED)?;
    if found.is_clean() {
        return Ok(());
    }
    let more = if found.unlisted > 0 {
        format!(" (and {} more)", found.unlisted)
    } else {
        String::new()
    };
    Err(corrupt(
        path,
        format!(
            "the state of transaction {} is damaged: {}{more}",
            newest.txnid(),
            found.problems.join("; ")
        ),
    ))
}
