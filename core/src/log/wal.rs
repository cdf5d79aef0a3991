//! The write-ahead log: segment files (see [`super::segment`]) holding one
//! framed entry per committed logical transaction, in LSN order. A commit
//! writes its frames here before LMDB commits; acknowledging it needs one
//! sequential flush of this log ([`Wal::sync_to`], shared by every commit
//! written before the flush started). Change streams, consumers and replicas
//! read it back ([`Wal::visit`]); recovery replays its tail
//! ([`Wal::scan_tail`]).
//!
//! Where the log ends is not kept here: it is the [`WalPos`] stored in LMDB
//! with the data (`log::state`), so every process appends at the right place
//! under LMDB's write lock, and a reader never reads past what LMDB shows as
//! committed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::entry::FrameHeader;
use super::segment::{self, Header, HEADER_SIZE, RECORD_HEADER};
use super::Lsn;
use crate::error::{Error, Result};

/// Where the next record goes, and what it will be numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalPos {
    /// The segment being written.
    pub segment: u64,
    /// The offset of the next record in it.
    pub offset: u64,
    /// The LSN of the next record.
    pub next_lsn: Lsn,
    /// The epoch records are written in (raised by every recovery, so
    /// records left beyond the recovered end are never read as new ones).
    pub epoch: u32,
}

impl WalPos {
    /// Encoded size.
    pub const LEN: usize = 28;

    /// The stored form.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[..8].copy_from_slice(&self.segment.to_be_bytes());
        b[8..16].copy_from_slice(&self.offset.to_be_bytes());
        b[16..24].copy_from_slice(&self.next_lsn.to_be_bytes());
        b[24..28].copy_from_slice(&self.epoch.to_be_bytes());
        b
    }

    /// Reads the stored form.
    pub fn decode(b: &[u8]) -> Result<WalPos> {
        if b.len() != Self::LEN {
            return Err(Error::Corrupt {
                location: "meta/wal_end".into(),
                message: format!("{} bytes, expected {}", b.len(), Self::LEN),
                lsn: None,
            });
        }
        let u64_at = |at: usize| u64::from_be_bytes(b[at..at + 8].try_into().unwrap_or_default());
        Ok(WalPos {
            segment: u64_at(0),
            offset: u64_at(8),
            next_lsn: u64_at(16),
            epoch: u32::from_be_bytes(b[24..28].try_into().unwrap_or_default()),
        })
    }

    /// The LSN of the newest record before this position (0: none).
    pub fn last_lsn(&self) -> Lsn {
        self.next_lsn - 1
    }
}

/// The size of a new log's first segment (later ones double up to the
/// configured segment size).
const FIRST_SEGMENT: u64 = 256 << 10;

/// The callback of [`Wal::visit_records`]: LSN, segment, record offset,
/// frame; false stops.
type RecordVisitor<'a> = dyn FnMut(Lsn, u64, u64, &[u8]) -> Result<bool> + 'a;

/// Records every this many are remembered per segment, to start reads near
/// the LSN asked for.
const SPARSE_EVERY: u64 = 64;

#[derive(Default)]
struct Index {
    /// Segments with a valid header: first LSN → (id, size).
    by_lsn: BTreeMap<Lsn, (u64, u64)>,
    /// Per segment, known (LSN, offset) pairs, ascending.
    sparse: BTreeMap<u64, BTreeMap<Lsn, u64>>,
}

#[derive(Default)]
struct SyncState {
    /// Newest LSN written by this process.
    written: Lsn,
    /// Newest LSN known durable.
    synced: Lsn,
    /// Segments written since their last flush.
    dirty: BTreeSet<u64>,
    /// A flush is running.
    running: bool,
    /// A flush failed: the log's durable state is unknown and nothing more
    /// may be acknowledged (the error latches until the database is reopened).
    failed: Option<Error>,
}

/// The log of one database directory.
pub struct Wal {
    dir: PathBuf,
    segment_size: u64,
    /// `durable`: the newest LSN some process flushed (8 bytes; shared
    /// through the page cache, never flushed itself: it only tells other
    /// processes of this boot what is durable).
    durable_file: Option<File>,
    /// Segments below this one were flushed by a checkpoint; a flush covers
    /// every segment from it on, whoever wrote them.
    flushed_below: std::sync::atomic::AtomicU64,
    /// Flush rounds run by [`Wal::sync_to`] (each acknowledges everything
    /// written before it started).
    flushes: std::sync::atomic::AtomicU64,
    files: Mutex<BTreeMap<u64, Arc<File>>>,
    index: Mutex<Index>,
    sync: Mutex<SyncState>,
    synced_cv: Condvar,
    preparing: Arc<AtomicBool>,
}

impl Wal {
    /// Opens the log in `dir` (creating the directory when `create`; a
    /// missing directory is an empty log otherwise); new segments are
    /// `segment_size` bytes.
    pub fn open(dir: &Path, segment_size: u64, create: bool) -> Result<Wal> {
        if create {
            std::fs::create_dir_all(dir)?;
        }
        let durable_file = if create {
            Some(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(dir.join("durable"))?,
            )
        } else {
            File::open(dir.join("durable")).ok()
        };
        let wal = Wal {
            dir: dir.to_path_buf(),
            segment_size: segment_size.max(HEADER_SIZE * 2),
            durable_file,
            flushed_below: std::sync::atomic::AtomicU64::new(0),
            flushes: std::sync::atomic::AtomicU64::new(0),
            files: Mutex::new(BTreeMap::new()),
            index: Mutex::new(Index::default()),
            sync: Mutex::new(SyncState::default()),
            synced_cv: Condvar::new(),
            preparing: Arc::new(AtomicBool::new(false)),
        };
        if !dir.exists() {
            return Ok(wal);
        }
        if create {
            for entry in std::fs::read_dir(dir)? {
                let name = entry?.file_name();
                let name = name.to_string_lossy();
                if name.contains(".tmp-") {
                    // An interrupted preparation.
                    let _ = std::fs::remove_file(dir.join(name.as_ref()));
                }
            }
        }
        wal.refresh()?;
        Ok(wal)
    }

    /// Whether the log reaches `end`: its segment exists and was started
    /// (a copied `data.mdb` — a snapshot — names a segment of another
    /// directory's log).
    pub fn holds(&self, end: WalPos) -> bool {
        let Ok(file) = self.file(end.segment) else {
            return false;
        };
        matches!(segment::read_header(&file, end.segment), Ok(Some(h)) if h.first_lsn <= end.next_lsn)
    }

    /// Ids of the segment files present (started or not), ascending.
    pub fn segment_ids(&self) -> Result<Vec<u64>> {
        let mut ids = Vec::new();
        if !self.dir.exists() {
            return Ok(ids);
        }
        for entry in std::fs::read_dir(&self.dir)? {
            if let Some(id) = segment::id_of(&entry?.file_name().to_string_lossy()) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// Re-reads which segments exist and where each starts (other processes
    /// start segments too).
    fn refresh(&self) -> Result<()> {
        let mut found = BTreeMap::new();
        for id in self.segment_ids()? {
            let file = self.file(id)?;
            if let Some(h) = segment::read_header(&file, id)? {
                found.insert(h.first_lsn, (id, h.size));
            }
        }
        let mut ix = self.index.lock();
        let live: BTreeSet<u64> = found.values().map(|(id, _)| *id).collect();
        ix.sparse.retain(|id, _| live.contains(id));
        for (first, (id, _)) in &found {
            ix.sparse
                .entry(*id)
                .or_default()
                .insert(*first, HEADER_SIZE);
        }
        ix.by_lsn = found;
        Ok(())
    }

    fn file(&self, id: u64) -> Result<Arc<File>> {
        let mut files = self.files.lock();
        if let Some(f) = files.get(&id) {
            return Ok(f.clone());
        }
        let f = Arc::new(segment::open(&self.dir, id)?);
        files.insert(id, f.clone());
        Ok(f)
    }

    fn forget(&self, id: u64) {
        self.files.lock().remove(&id);
        let mut ix = self.index.lock();
        ix.by_lsn.retain(|_, (s, _)| *s != id);
        ix.sparse.remove(&id);
    }

    /// Starts a new segment whose first record will be `next_lsn` (a new
    /// database, or one whose log does not reach its state: a snapshot
    /// copy). Returns where to append.
    pub fn start(&self, next_lsn: Lsn, epoch: u32) -> Result<WalPos> {
        let id = self.segment_ids()?.last().map_or(1, |last| last + 1);
        self.begin_segment(id, next_lsn, FIRST_SEGMENT.min(self.segment_size))?;
        Ok(WalPos {
            segment: id,
            offset: HEADER_SIZE,
            next_lsn,
            epoch,
        })
    }

    fn begin_segment(&self, id: u64, first_lsn: Lsn, size: u64) -> Result<()> {
        segment::prepare(&self.dir, id, size, true)?;
        self.files.lock().remove(&id);
        let file = self.file(id)?;
        let header = Header {
            id,
            first_lsn,
            size,
        };
        segment::write_header(&file, &header)?;
        self.sync.lock().dirty.insert(id);
        let mut ix = self.index.lock();
        ix.by_lsn.retain(|_, (s, _)| *s != id);
        ix.by_lsn.insert(first_lsn, (id, size));
        ix.sparse
            .entry(id)
            .or_default()
            .insert(first_lsn, HEADER_SIZE);
        Ok(())
    }

    fn size_of(&self, id: u64) -> Result<u64> {
        if let Some((_, size)) = self.index.lock().by_lsn.values().find(|(s, _)| *s == id) {
            return Ok(*size);
        }
        Ok(self.file(id)?.metadata()?.len())
    }

    /// Writes `frames` (consecutive LSNs from `at.next_lsn`) at `at`,
    /// starting a new segment when they do not fit. Returns the position
    /// after them. Nothing is durable before [`Wal::sync_to`].
    pub fn append(&self, at: WalPos, frames: &[(Lsn, &[u8])]) -> Result<WalPos> {
        let Some(&(first, _)) = frames.first() else {
            return Ok(at);
        };
        if let Some(e) = &self.sync.lock().failed {
            return Err(e.clone());
        }
        debug_assert_eq!(first, at.next_lsn);
        let mut buf = Vec::with_capacity(frames.iter().map(|(_, f)| f.len() + RECORD_HEADER).sum());
        let mut offsets = Vec::with_capacity(frames.len());
        for (lsn, frame) in frames {
            offsets.push((*lsn, buf.len() as u64));
            segment::encode_record(&mut buf, at.epoch, frame)?;
        }
        let current = self.size_of(at.segment)?;
        let (id, offset) = if at.offset + buf.len() as u64 <= current {
            (at.segment, at.offset)
        } else {
            let id = at.segment + 1;
            let size = self.next_size(current).max(HEADER_SIZE + buf.len() as u64);
            self.begin_segment(id, first, size)?;
            (id, HEADER_SIZE)
        };
        self.file(id)?.write_all_at(&buf, offset)?;
        let last = frames[frames.len() - 1].0;
        {
            let mut st = self.sync.lock();
            st.written = st.written.max(last);
            st.dirty.insert(id);
        }
        {
            let mut ix = self.index.lock();
            let sparse = ix.sparse.entry(id).or_default();
            for (lsn, rel) in offsets {
                if lsn % SPARSE_EVERY == 0 || lsn == first {
                    sparse.insert(lsn, offset + rel);
                }
            }
        }
        let end = offset + buf.len() as u64;
        let size = self.size_of(id)?;
        if end > size / 2 {
            self.prepare_ahead(id + 1, self.next_size(size));
        }
        Ok(WalPos {
            segment: id,
            offset: end,
            next_lsn: last + 1,
            epoch: at.epoch,
        })
    }

    /// The size of the segment after one of `size` bytes: doubling from
    /// [`FIRST_SEGMENT`] up to the configured size, so that a small database
    /// keeps a small log.
    fn next_size(&self, size: u64) -> u64 {
        size.saturating_mul(2)
            .clamp(FIRST_SEGMENT, self.segment_size.max(FIRST_SEGMENT))
    }

    /// Prepares segment `id` on a background thread (once at a time), so
    /// that switching to it costs no file creation on the commit path.
    fn prepare_ahead(&self, id: u64, size: u64) {
        if segment::path(&self.dir, id).exists() || self.preparing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (dir, flag) = (self.dir.clone(), self.preparing.clone());
        let spawned = std::thread::Builder::new()
            .name("cs-wal-prepare".into())
            .spawn(move || {
                if let Err(e) = segment::prepare(&dir, id, size, false) {
                    tracing::warn!(error = %e, segment = id, "could not prepare a log segment ahead of time");
                }
                flag.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.preparing.store(false, Ordering::Release);
        }
    }

    /// Makes every record up to `lsn` that this process wrote durable: one
    /// `fdatasync` per written segment, shared by every caller waiting when
    /// it starts. A failed flush latches: this and every later call fails.
    pub fn sync_to(&self, lsn: Lsn) -> Result<()> {
        let mut st = self.sync.lock();
        loop {
            if let Some(e) = &st.failed {
                return Err(e.clone());
            }
            if st.synced >= lsn || st.written < lsn && st.dirty.is_empty() {
                return Ok(());
            }
            if st.running {
                self.synced_cv.wait(&mut st);
                continue;
            }
            st.running = true;
            let target = st.written;
            let dirty: BTreeSet<u64> = std::mem::take(&mut st.dirty);
            drop(st);
            // Every segment since the last checkpoint may hold records of
            // other processes that precede ours: flush them all, so that
            // everything up to `target` is durable, not just our records.
            let from = self.flushed_below.load(Ordering::Acquire);
            let to = dirty.last().copied().unwrap_or(0);
            let mut ids: BTreeSet<u64> = dirty;
            ids.extend((from.max(1)..=to).filter(|id| segment::path(&self.dir, *id).exists()));
            let result = ids
                .iter()
                .try_for_each(|id| self.file(*id).and_then(|f| Ok(f.sync_data()?)));
            if result.is_ok() {
                self.publish_durable(target);
            }
            self.flushes.fetch_add(1, Ordering::Relaxed);
            st = self.sync.lock();
            st.running = false;
            match result {
                Ok(()) => st.synced = st.synced.max(target),
                Err(e) => {
                    tracing::error!(error = %e, "flushing the log failed; no further write can be acknowledged until the database is reopened");
                    st.failed = Some(e);
                }
            }
            self.synced_cv.notify_all();
        }
    }

    /// Flushes segments `from..=to` whoever wrote them (a checkpoint covers
    /// other processes' records too).
    pub fn sync_segments(&self, from: u64, to: u64) -> Result<()> {
        for id in from..=to {
            if segment::path(&self.dir, id).exists() {
                self.file(id)?.sync_data()?;
            }
        }
        Ok(())
    }

    /// How many flush rounds acknowledged commits so far.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// The newest LSN this process made durable (0: none yet).
    #[cfg_attr(not(feature = "replication"), allow(dead_code))]
    pub fn synced(&self) -> Lsn {
        self.sync.lock().synced
    }

    /// Records that everything up to `lsn`, in segments before `segment`
    /// and in it, is durable (a checkpoint flushed them).
    pub fn mark_synced(&self, lsn: Lsn, segment: u64) {
        {
            let mut st = self.sync.lock();
            st.synced = st.synced.max(lsn);
            st.written = st.written.max(lsn);
        }
        self.flushed_below.fetch_max(segment, Ordering::AcqRel);
        self.publish_durable(lsn);
    }

    /// Tells other processes that everything up to `lsn` is durable.
    fn publish_durable(&self, lsn: Lsn) {
        if let Some(f) = &self.durable_file {
            if self.shared_durable() < lsn {
                let _ = f.write_all_at(&lsn.to_le_bytes(), 0);
            }
        }
    }

    /// The newest LSN any process of this boot made durable (as it told).
    pub fn shared_durable(&self) -> Lsn {
        let mut b = [0u8; 8];
        match &self.durable_file {
            Some(f) if f.read_exact_at(&mut b, 0).is_ok() => u64::from_le_bytes(b),
            _ => 0,
        }
    }

    /// The segment holding `lsn` and the nearest known record at or before it.
    fn locate(&self, lsn: Lsn) -> Option<(u64, u64, Lsn, u64)> {
        let ix = self.index.lock();
        let (_, &(id, size)) = ix.by_lsn.range(..=lsn).next_back()?;
        let (known, offset) = ix
            .sparse
            .get(&id)
            .and_then(|s| s.range(..=lsn).next_back().map(|(l, o)| (*l, *o)))?;
        Some((id, size, known, offset))
    }

    /// Calls `f(lsn, frame)` for the frames after `after` up to `last`
    /// (which must be committed), in order, until `f` returns false. Every
    /// frame is checked (checksum, LSN, epoch); damage is [`Error::Corrupt`]
    /// naming the LSN.
    pub fn visit(
        &self,
        after: Lsn,
        last: Lsn,
        f: &mut dyn FnMut(Lsn, &[u8]) -> Result<bool>,
    ) -> Result<()> {
        self.visit_records(after, last, &mut |lsn, _, _, frame| f(lsn, frame))
    }

    /// Where the frame of `lsn` is stored: its segment file and the offset
    /// of the frame (after its record header).
    pub fn frame_location(&self, lsn: Lsn) -> Result<(PathBuf, u64)> {
        let mut found = None;
        self.visit_records(lsn - 1, lsn, &mut |_, id, offset, _| {
            found = Some((segment::path(&self.dir, id), offset + RECORD_HEADER as u64));
            Ok(false)
        })?;
        found.ok_or_else(|| missing(lsn))
    }

    /// [`Wal::visit`], also telling each frame's segment and record offset.
    fn visit_records(&self, after: Lsn, last: Lsn, f: &mut RecordVisitor<'_>) -> Result<()> {
        let want = after + 1;
        if want > last {
            return Ok(());
        }
        let located = match self.locate(want) {
            Some(l) => Some(l),
            None => {
                self.refresh()?;
                self.locate(want)
            }
        };
        let Some((mut id, mut size, mut lsn, mut offset)) = located else {
            return Err(missing(want));
        };
        let mut file = self.file(id)?;
        let mut epoch = 0u32;
        let mut seen = 0u64;
        while lsn <= last {
            let record = match segment::read_record(&file, offset, size)? {
                Some(r) => r,
                None => {
                    // The rest of this segment is unused: the log goes on in the next.
                    let next = id + 1;
                    let (nsize, first) = match self.next_header(next)? {
                        Some(h) => (h.size, h.first_lsn),
                        None => return Err(missing(lsn)),
                    };
                    if first != lsn {
                        return Err(missing(lsn));
                    }
                    id = next;
                    size = nsize;
                    offset = HEADER_SIZE;
                    file = self.file(id)?;
                    continue;
                }
            };
            FrameHeader::parse(lsn, &record.frame)?;
            if record.epoch < epoch {
                return Err(Error::Corrupt {
                    location: format!("log entry {lsn}"),
                    message: "written before a recovery the entries before it come after".into(),
                    lsn: Some(lsn),
                });
            }
            epoch = record.epoch;
            let here = offset;
            offset += (RECORD_HEADER + record.frame.len()) as u64;
            seen += 1;
            if lsn % SPARSE_EVERY == 0 && seen > 1 {
                self.index
                    .lock()
                    .sparse
                    .entry(id)
                    .or_default()
                    .insert(lsn, here);
            }
            if lsn >= want && !f(lsn, id, here, &record.frame)? {
                return Ok(());
            }
            lsn += 1;
        }
        Ok(())
    }

    fn next_header(&self, id: u64) -> Result<Option<Header>> {
        if !segment::path(&self.dir, id).exists() {
            return Ok(None);
        }
        let file = self.file(id)?;
        let h = segment::read_header(&file, id)?;
        if let Some(h) = h {
            let mut ix = self.index.lock();
            ix.by_lsn.insert(h.first_lsn, (id, h.size));
            ix.sparse
                .entry(id)
                .or_default()
                .insert(h.first_lsn, HEADER_SIZE);
        }
        Ok(h)
    }

    /// Reads the records that follow `from` for as long as they parse and
    /// continue the sequence (recovery: what was written after the state
    /// LMDB holds), calling `f(lsn, frame)` for each. Returns the position
    /// after the last one.
    pub fn scan_tail(
        &self,
        from: WalPos,
        f: &mut dyn FnMut(Lsn, &[u8]) -> Result<()>,
    ) -> Result<WalPos> {
        let mut pos = from;
        let mut file = self.file(pos.segment)?;
        let mut size = self.size_of(pos.segment)?;
        loop {
            let record = match segment::read_record(&file, pos.offset, size)? {
                Some(r) => Some(r),
                None => match self.next_header(pos.segment + 1)? {
                    Some(h) if h.first_lsn == pos.next_lsn => {
                        pos.segment += 1;
                        pos.offset = HEADER_SIZE;
                        size = h.size;
                        file = self.file(pos.segment)?;
                        continue;
                    }
                    _ => None,
                },
            };
            let Some(record) = record else {
                return Ok(pos);
            };
            if record.epoch < pos.epoch || FrameHeader::parse(pos.next_lsn, &record.frame).is_err()
            {
                return Ok(pos);
            }
            f(pos.next_lsn, &record.frame)?;
            pos.offset += (RECORD_HEADER + record.frame.len()) as u64;
            pos.next_lsn += 1;
            pos.epoch = record.epoch;
        }
    }

    /// Removes segments whose records all come before `keep_from` (never
    /// the one holding it): the newest removed one is renamed for reuse when
    /// no segment is prepared beyond `current`, the others are deleted.
    pub fn release_before(&self, keep_from: Lsn, current: u64) -> Result<()> {
        let starts: Vec<(Lsn, u64)> = {
            self.refresh()?;
            let ix = self.index.lock();
            ix.by_lsn.iter().map(|(l, (id, _))| (*l, *id)).collect()
        };
        // A segment is done when the next one starts at or before keep_from.
        let mut done = Vec::new();
        for pair in starts.windows(2) {
            let ((_, id), (next_first, _)) = (pair[0], pair[1]);
            if next_first <= keep_from && id < current {
                done.push(id);
            }
        }
        let mut spare = !segment::path(&self.dir, current + 1).exists();
        for id in done.into_iter().rev() {
            self.forget(id);
            if spare {
                segment::recycle(&self.dir, id, current + 1)?;
                spare = false;
            } else {
                std::fs::remove_file(segment::path(&self.dir, id))?;
            }
        }
        Ok(())
    }

    /// Bytes of log kept from the segment holding `lsn` on (an estimate for retention).
    pub fn bytes_from(&self, lsn: Lsn) -> u64 {
        let ix = self.index.lock();
        let Some((&first, _)) = ix.by_lsn.range(..=lsn).next_back() else {
            return 0;
        };
        ix.by_lsn.range(first..).map(|(_, (_, size))| *size).sum()
    }
}

fn missing(lsn: Lsn) -> Error {
    Error::Corrupt {
        location: format!("log entry {lsn}"),
        message: "the log has no such entry although the database holds it".into(),
        lsn: Some(lsn),
    }
}
