//! A structural walk of LMDB's B-trees that reads `data.mdb` with `pread`
//! and never dereferences the memory map, so a damaged file is reported, not
//! faulted on (LMDB itself trusts every page it follows: a bad page number
//! or node offset is a SIGBUS or SIGSEGV in the reading process).
//!
//! Every page reached is checked before anything in it is followed: its
//! number is inside the state's last page, it is reached once, its header
//! names itself and the expected kind (branch above the leaf level, leaf at
//! it), its node offsets and key and value sizes stay inside the page, its
//! keys are in order and inside the separators of its parent, and values
//! too large for a leaf name overflow pages that exist and say so. Each
//! tree's counts (pages by kind, entries) must match its `MDB_db` record,
//! and the free-page lists must name pages no tree uses.
//!
//! Page layout (LMDB 0.9, `mdb.c`, 64-bit): header `mp_pgno` u64, `mp_pad`
//! u16, `mp_flags` u16, `mp_lower` u16, `mp_upper` u16 (overflow pages: a u32
//! page count instead), then `mp_ptrs[]`, one u16 node offset per key,
//! growing up to `mp_lower`; nodes grow down from the page end to
//! `mp_upper`. A node: `mn_lo`, `mn_hi` u16 (leaf: data size; branch: child
//! page number together with `mn_flags`), `mn_flags` u16 (`F_BIGDATA` 1: the
//! data is the page number of an overflow page; `F_SUBDATA` 2: the data is
//! an `MDB_db` record; `F_DUPDATA` 4), `mn_ksize` u16, then key and data.

use std::cmp::Ordering;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::meta::{u16_at, u32_at, u64_at, MetaPage, Tree, NO_PAGE, TREE_BYTES};
use crate::error::{Error, Result};

const HEADER: usize = 16;
const NODE: usize = 8;
const P_BRANCH: u16 = 0x01;
const P_LEAF: u16 = 0x02;
const P_OVERFLOW: u16 = 0x04;
/// Flags that give a page its kind (`P_BRANCH`, `P_LEAF`, `P_OVERFLOW`,
/// `P_META`, `P_LEAF2`, `P_SUBP`).
const KIND: u16 = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40;
const F_BIGDATA: u16 = 0x01;
const F_SUBDATA: u16 = 0x02;
const F_DUPDATA: u16 = 0x04;
const MDB_DUPSORT: u16 = 0x04;
/// LMDB's cursor stack depth: no tree is deeper.
const MAX_DEPTH: u16 = 32;

/// What a walk found.
#[derive(Debug, Default, Clone)]
pub struct Findings {
    /// Problems, described for a person (at most the walk's limit).
    pub problems: Vec<String>,
    /// Problems found beyond the limit and not listed.
    pub unlisted: u64,
    /// Pages read.
    pub pages: u64,
}

impl Findings {
    /// True when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.unlisted == 0
    }
}

/// Which trees a walk descends into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Every page of every tree.
    Everything,
    /// Every page of the free-page tree, the main tree and the named tables
    /// except those listed, whose root page alone is checked (what opening
    /// reads, without reading the whole file).
    Except(&'static [&'static str]),
}

/// How a tree orders its keys.
#[derive(Clone, Copy)]
enum Order {
    /// LMDB's default: bytes, then length.
    Bytes,
    /// `MDB_INTEGERKEY`: native-endian unsigned integers.
    Integer,
}

impl Order {
    fn cmp(self, a: &[u8], b: &[u8]) -> Ordering {
        match self {
            Order::Integer if a.len() == 8 && b.len() == 8 => u64_at(a, 0).cmp(&u64_at(b, 0)),
            _ => a.cmp(b),
        }
    }
}

#[derive(Default)]
struct Counts {
    branch: u64,
    leaf: u64,
    overflow: u64,
    entries: u64,
}

/// A leaf entry kept for the caller: key, node flags, value.
type Entry = (Vec<u8>, u16, Vec<u8>);

struct Walker<'a> {
    file: &'a File,
    psize: usize,
    last_pg: u64,
    /// Whole pages in the file.
    in_file: u64,
    /// One bit per page: reached by a tree.
    used: Vec<u64>,
    limit: usize,
    found: Findings,
}

impl Walker<'_> {
    fn problem(&mut self, message: String) {
        if self.found.problems.len() < self.limit {
            self.found.problems.push(message);
        } else {
            self.found.unlisted += 1;
        }
    }

    /// Marks `pgno` used; false when it already was.
    fn mark(&mut self, pgno: u64) -> bool {
        let (word, bit) = ((pgno / 64) as usize, pgno % 64);
        let was = self.used[word] & (1 << bit) != 0;
        self.used[word] |= 1 << bit;
        !was
    }

    fn is_used(&self, pgno: u64) -> bool {
        self.used[(pgno / 64) as usize] & (1 << (pgno % 64)) != 0
    }

    fn in_range(&self, pgno: u64) -> bool {
        (2..=self.last_pg).contains(&pgno)
    }

    /// Reads `count` pages from `pgno` (bounds already checked).
    fn read(&mut self, pgno: u64, count: u64) -> std::result::Result<Vec<u8>, String> {
        if pgno + count > self.in_file {
            return Err(format!(
                "page {} lies past the end of the file ({} pages): the file was truncated",
                (pgno + count - 1).max(self.in_file),
                self.in_file
            ));
        }
        let mut buf = vec![0u8; count as usize * self.psize];
        self.found.pages += count;
        self.file
            .read_exact_at(&mut buf, pgno * self.psize as u64)
            .map_err(|e| format!("page {pgno} cannot be read: {e}"))?;
        Ok(buf)
    }

    /// Reads and checks one tree page at `level` (1 = root) of a tree of
    /// `depth` levels whose keys lie in `[low, high)`.
    #[allow(clippy::too_many_arguments)]
    fn page(
        &mut self,
        name: &str,
        pgno: u64,
        level: u16,
        depth: u16,
        low: Option<&[u8]>,
        high: Option<&[u8]>,
        order: Order,
        counts: &mut Counts,
        mut keep: Option<&mut Vec<Entry>>,
    ) {
        if !self.in_range(pgno) {
            let pages = self.last_pg + 1;
            self.problem(format!(
                "{name}: page {pgno} is outside the state's {pages} pages"
            ));
            return;
        }
        if !self.mark(pgno) {
            self.problem(format!("{name}: page {pgno} is reached twice"));
            return;
        }
        let p = match self.read(pgno, 1) {
            Ok(p) => p,
            Err(e) => return self.problem(format!("{name}: {e}")),
        };
        let named = u64_at(&p, 0);
        if named != pgno {
            return self.problem(format!(
                "{name}: page {pgno} holds the header of page {named} (moved or overwritten)"
            ));
        }
        let leaf = level == depth;
        let (kind, want) = if leaf {
            ("leaf", P_LEAF)
        } else {
            ("branch", P_BRANCH)
        };
        let flags = u16_at(&p, 10);
        if flags & KIND != want {
            return self.problem(format!(
                "{name}: page {pgno} should be a {kind} page (level {level} of {depth}) but has flags {flags:#06x}"
            ));
        }
        let (lower, upper) = (u16_at(&p, 12) as usize, u16_at(&p, 14) as usize);
        if lower < HEADER
            || !(lower - HEADER).is_multiple_of(2)
            || lower > upper
            || upper > self.psize
        {
            return self.problem(format!(
                "{name}: page {pgno} has impossible bounds (lower {lower}, upper {upper})"
            ));
        }
        let n = (lower - HEADER) / 2;
        if n == 0 {
            return self.problem(format!("{name}: {kind} page {pgno} holds no keys"));
        }
        if leaf {
            counts.leaf += 1;
        } else {
            counts.branch += 1;
        }
        let mut children: Vec<(u64, usize, usize)> = Vec::new();
        let mut prev: Option<(usize, usize)> = None;
        for i in 0..n {
            let off = u16_at(&p, HEADER + 2 * i) as usize;
            if off < upper || off + NODE > self.psize {
                return self.problem(format!(
                    "{name}: page {pgno} node {i} is at offset {off}, outside the node area {upper}..{}",
                    self.psize
                ));
            }
            let (lo, hi) = (u16_at(&p, off) as u64, u16_at(&p, off + 2) as u64);
            let nflags = u16_at(&p, off + 4);
            let ksize = u16_at(&p, off + 6) as usize;
            let kstart = off + NODE;
            let kend = kstart + ksize;
            if kend > self.psize {
                return self.problem(format!(
                    "{name}: page {pgno} node {i} has a {ksize}-byte key that runs past the page"
                ));
            }
            // A branch page's first key is never compared (it stands for
            // everything below the second).
            if leaf || i > 0 {
                let key = &p[kstart..kend];
                if let Some((a, b)) = prev {
                    if order.cmp(&p[a..b], key) != Ordering::Less {
                        return self.problem(format!(
                            "{name}: page {pgno} has keys out of order at node {i}"
                        ));
                    }
                }
                if low.is_some_and(|l| order.cmp(key, l) == Ordering::Less)
                    || high.is_some_and(|h| order.cmp(key, h) != Ordering::Less)
                {
                    return self.problem(format!(
                        "{name}: page {pgno} node {i} has a key outside the range its parent gives it"
                    ));
                }
                prev = Some((kstart, kend));
            }
            if !leaf {
                let child = lo | (hi << 16) | (u64::from(nflags) << 32);
                children.push((child, kstart, kend));
                continue;
            }
            counts.entries += 1;
            let dsize = (lo | (hi << 16)) as usize;
            if nflags & F_DUPDATA != 0 {
                return self.problem(format!(
                    "{name}: page {pgno} node {i} holds duplicate-sorted data, which this table never has"
                ));
            }
            let value = if nflags & F_BIGDATA != 0 {
                if kend + 8 > self.psize {
                    return self.problem(format!(
                        "{name}: page {pgno} node {i} names an overflow page past the page end"
                    ));
                }
                match self.overflow(name, u64_at(&p, kend), dsize, keep.is_some(), counts) {
                    Some(v) => v,
                    None => continue,
                }
            } else {
                if kend + dsize > self.psize {
                    return self.problem(format!(
                        "{name}: page {pgno} node {i} has a {dsize}-byte value that runs past the page"
                    ));
                }
                if keep.is_some() {
                    p[kend..kend + dsize].to_vec()
                } else {
                    Vec::new()
                }
            };
            if let Some(k) = keep.as_deref_mut() {
                k.push((p[kstart..kend].to_vec(), nflags, value));
            }
        }
        for (i, &(child, ks, ke)) in children.iter().enumerate() {
            let lo = if i == 0 { low } else { Some(&p[ks..ke]) };
            let hi = match children.get(i + 1) {
                Some(&(_, s, e)) => Some(&p[s..e]),
                None => high,
            };
            self.page(
                name,
                child,
                level + 1,
                depth,
                lo,
                hi,
                order,
                counts,
                keep.as_deref_mut(),
            );
        }
    }

    /// Checks the overflow pages of a `dsize`-byte value starting at
    /// `pgno`, reading the value when `read` is set.
    fn overflow(
        &mut self,
        name: &str,
        pgno: u64,
        dsize: usize,
        read: bool,
        counts: &mut Counts,
    ) -> Option<Vec<u8>> {
        let need = (dsize + HEADER).div_ceil(self.psize) as u64;
        if !self.in_range(pgno) {
            self.problem(format!(
                "{name}: overflow page {pgno} is outside the state's {} pages",
                self.last_pg + 1
            ));
            return None;
        }
        let head = match self.read(pgno, 1) {
            Ok(h) => h,
            Err(e) => {
                self.problem(format!("{name}: {e}"));
                return None;
            }
        };
        let flags = u16_at(&head, 10);
        let pages = u64::from(u32_at(&head, 12));
        if u64_at(&head, 0) != pgno || flags & KIND != P_OVERFLOW {
            self.problem(format!(
                "{name}: page {pgno} should start a {dsize}-byte overflow value but does not"
            ));
            return None;
        }
        if pages < need || pgno + pages - 1 > self.last_pg {
            self.problem(format!(
                "{name}: overflow page {pgno} claims {pages} pages for a {dsize}-byte value (needs {need}, state ends at page {})",
                self.last_pg
            ));
            return None;
        }
        for p in pgno..pgno + pages {
            if !self.mark(p) {
                self.problem(format!("{name}: overflow page {p} is reached twice"));
                return None;
            }
        }
        counts.overflow += pages;
        if !read {
            return Some(Vec::new());
        }
        match self.read(pgno, pages) {
            Ok(all) => Some(all[HEADER..HEADER + dsize].to_vec()),
            Err(e) => {
                self.problem(format!("{name}: {e}"));
                None
            }
        }
    }

    /// Walks one tree; `keep` collects its entries. False when damaged.
    fn tree(&mut self, name: &str, t: &Tree, keep: Option<&mut Vec<Entry>>) -> bool {
        let before = self.found.problems.len() as u64 + self.found.unlisted;
        if t.root == NO_PAGE {
            if t.depth != 0 || t.entries != 0 {
                self.problem(format!(
                    "{name}: the tree is empty but records {} entries in {} levels",
                    t.entries, t.depth
                ));
            }
            return self.clean_since(before);
        }
        if t.depth == 0 || t.depth > MAX_DEPTH {
            self.problem(format!("{name}: the tree records {} levels", t.depth));
            return false;
        }
        if t.flags & MDB_DUPSORT != 0 {
            self.problem(format!(
                "{name}: the tree is duplicate-sorted, which this table never is"
            ));
            return false;
        }
        let order = if t.flags & 0x08 != 0 {
            Order::Integer
        } else {
            Order::Bytes
        };
        let mut c = Counts::default();
        self.page(name, t.root, 1, t.depth, None, None, order, &mut c, keep);
        if self.clean_since(before)
            && (c.branch, c.leaf, c.overflow, c.entries)
                != (t.branch_pages, t.leaf_pages, t.overflow_pages, t.entries)
        {
            self.problem(format!(
                "{name}: found {} branch, {} leaf and {} overflow pages holding {} entries; the tree records {}, {}, {} and {}",
                c.branch, c.leaf, c.overflow, c.entries,
                t.branch_pages, t.leaf_pages, t.overflow_pages, t.entries
            ));
        }
        self.clean_since(before)
    }

    /// Checks the root page of a tree that is not walked.
    fn root_only(&mut self, name: &str, t: &Tree) {
        if t.root == NO_PAGE {
            return;
        }
        if t.depth == 0 || t.depth > MAX_DEPTH || !self.in_range(t.root) {
            return self.problem(format!(
                "{name}: the tree's root page {} ({} levels) is outside the state's {} pages",
                t.root,
                t.depth,
                self.last_pg + 1
            ));
        }
        match self.read(t.root, 1) {
            Ok(p) => {
                let want = if t.depth == 1 { P_LEAF } else { P_BRANCH };
                if u64_at(&p, 0) != t.root || u16_at(&p, 10) & KIND != want {
                    self.problem(format!(
                        "{name}: the tree's root page {} is not a tree page",
                        t.root
                    ));
                }
            }
            Err(e) => self.problem(format!("{name}: {e}")),
        }
    }

    fn clean_since(&self, before: u64) -> bool {
        self.found.problems.len() as u64 + self.found.unlisted == before
    }

    /// Reads each free-page list (`[count, pgno...]`) into a bitset: pages
    /// inside the state, each listed once, and (when `all_used`: every tree
    /// was walked) none a tree uses.
    fn free_lists(&mut self, lists: &[Entry], all_used: bool) -> Vec<u64> {
        let mut free = vec![0u64; self.used.len()];
        for (key, _, ids) in lists {
            let txn = if key.len() == 8 { u64_at(key, 0) } else { 0 };
            let count = if ids.len() >= 8 {
                u64_at(ids, 0)
            } else {
                u64::MAX
            };
            if !ids.len().is_multiple_of(8)
                || count.checked_add(1).and_then(|c| c.checked_mul(8)) != Some(ids.len() as u64)
            {
                self.problem(format!(
                    "free pages of transaction {txn}: a {}-byte list that does not hold the {count} pages it announces",
                    ids.len()
                ));
                continue;
            }
            for at in (8..ids.len()).step_by(8) {
                let pg = u64_at(ids, at);
                if !self.in_range(pg) {
                    self.problem(format!(
                        "free pages of transaction {txn}: page {pg} is outside the state's {} pages",
                        self.last_pg + 1
                    ));
                } else if all_used && self.is_used(pg) {
                    self.problem(format!(
                        "free pages of transaction {txn}: page {pg} is listed free but a tree uses it"
                    ));
                } else if free[(pg / 64) as usize] & (1 << (pg % 64)) != 0 {
                    self.problem(format!(
                        "free pages of transaction {txn}: page {pg} is listed free twice"
                    ));
                } else {
                    free[(pg / 64) as usize] |= 1 << (pg % 64);
                }
            }
        }
        free
    }
}

fn bit(set: &[u64], pg: u64) -> bool {
    set[(pg / 64) as usize] & (1 << (pg % 64)) != 0
}

/// Walks the trees of the committed state `meta` describes in the file at
/// `path`, listing at most `limit` problems. Fails only when the file cannot
/// be opened; everything else found is a problem in the result.
pub fn structure(path: &Path, meta: &MetaPage, depth: Depth, limit: usize) -> Result<Findings> {
    let file = File::open(path).map_err(|e| Error::io_at(path, e))?;
    let len = file.metadata().map_err(|e| Error::io_at(path, e))?.len();
    let psize = meta.page_size();
    let mut found = Findings::default();
    if !(512..=65536).contains(&psize) || !psize.is_power_of_two() {
        found.problems.push(format!(
            "the meta page records a page size of {psize} bytes"
        ));
        return Ok(found);
    }
    // Pages past the end of the file are allowed only when free: LMDB may
    // allocate pages at the end and free them in the same transaction,
    // never writing them. Each one costs a bit below, so a state far larger
    // than its file is refused first.
    let in_file = len / psize;
    let state = meta.last_page().saturating_add(1);
    if state > in_file.saturating_mul(2).max(in_file + 1024) {
        found.problems.push(format!(
            "the file is {len} bytes ({in_file} pages of {psize} bytes), but its state (transaction {}) records {state} pages: it was truncated, or the meta page is damaged",
            meta.txnid()
        ));
        return Ok(found);
    }
    let (Some(free), Some(main)) = (meta.free_tree(), meta.main_tree()) else {
        found.problems.push("the meta page is too short".into());
        return Ok(found);
    };
    let mut w = Walker {
        file: &file,
        psize: psize as usize,
        last_pg: meta.last_page(),
        in_file,
        used: vec![0u64; (meta.last_page() / 64 + 1) as usize],
        limit: limit.max(1),
        found,
    };
    let mut lists = Vec::new();
    let free_ok = w.tree("free pages", &free, Some(&mut lists));
    let mut tables = Vec::new();
    if w.tree("main tree", &main, Some(&mut tables)) {
        for (name, flags, record) in &tables {
            let shown = String::from_utf8_lossy(name).into_owned();
            let tree = (flags & F_SUBDATA != 0 && record.len() == TREE_BYTES)
                .then(|| Tree::parse(record))
                .flatten();
            let Some(tree) = tree else {
                w.problem(format!(
                    "main tree: the entry '{shown}' is not a table record"
                ));
                continue;
            };
            match depth {
                Depth::Except(shallow) if shallow.contains(&shown.as_str()) => {
                    w.root_only(&shown, &tree)
                }
                _ => {
                    w.tree(&shown, &tree, None);
                }
            }
        }
    }
    if free_ok {
        let everything = depth == Depth::Everything && w.found.is_clean();
        let free = w.free_lists(&lists, everything);
        // What lies past the end of the file must be free.
        if let Some(pg) = (in_file.max(2)..state).find(|&pg| !bit(&free, pg)) {
            w.problem(format!(
                "the file is {len} bytes ({in_file} pages), but page {pg} of its state is not free: the file was truncated"
            ));
        }
        // Every page is a meta page, free, or in a tree (LMDB's own audit).
        if everything && w.found.is_clean() {
            let lost = (2..state)
                .filter(|&pg| !bit(&free, pg) && !w.is_used(pg))
                .count();
            if lost > 0 {
                w.problem(format!(
                    "{lost} pages of the state are neither free nor in a tree"
                ));
            }
        }
    }
    Ok(w.found)
}
