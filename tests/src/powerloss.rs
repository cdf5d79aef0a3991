//! The crash-image simulator: what a power loss at any moment could leave on
//! disk, built from a trace of every write, flush and namespace change a
//! workload made (recorded by `powerloss/shim.c`, an `LD_PRELOAD` library).
//!
//! The model (ext4-like, conservative):
//! - a file's data written before its last completed `fsync`/`fdatasync`
//!   (or through an `O_DSYNC` descriptor) is durable; of the writes after it,
//!   a random subset survives, applied in issue order (so every reordering is
//!   covered), and a surviving write may be torn: only some of its 512-byte
//!   sectors land;
//! - a namespace change (create, rename, link, unlink, mkdir) is durable once
//!   its directory was fsynced; of the later ones a random prefix survives
//!   (a journal commits them in order);
//! - writes to the file named `acks` in the traced directory are the
//!   workload's acknowledgements, in the same order as everything else: an
//!   acknowledgement before the crash point is a transaction the image must
//!   hold.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::Rng;

/// One traced call.
#[derive(Debug, Clone)]
pub enum Op {
    /// A file was opened (created when missing); `dsync`: every write through
    /// it is durable at once.
    Open {
        path: String,
        create: bool,
        truncate: bool,
        fd: i32,
        dsync: bool,
    },
    /// Bytes written at an offset.
    Write {
        path: String,
        offset: u64,
        data: Vec<u8>,
    },
    /// The file's data was flushed.
    Sync { path: String },
    /// The file was truncated (or extended) to a length.
    Truncate { path: String, len: u64 },
    /// `from` was renamed to `to`.
    Rename { from: String, to: String },
    /// `to` was linked to `from`'s file.
    Link { from: String, to: String },
    /// A name was removed.
    Unlink { path: String },
    /// A directory was created.
    Mkdir { path: String },
    /// A directory was fsynced: its namespace changes are durable.
    SyncDir { path: String },
}

const O_CREAT: i64 = 0o100;
const O_TRUNC: i64 = 0o1000;
const O_DSYNC: i64 = 0o10000;
const O_SYNC: i64 = 0o4010000;

/// Parses a trace written by the shim.
pub fn parse(bytes: &[u8]) -> Result<Vec<Op>, String> {
    let mut ops = Vec::new();
    let mut at = 0usize;
    let mut dsync_fds: HashMap<i32, bool> = HashMap::new();
    while at < bytes.len() {
        let h = bytes.get(at..at + 19).ok_or("truncated record header")?;
        let op = h[0];
        let fd = i32::from_le_bytes(h[1..5].try_into().unwrap());
        let off = i64::from_le_bytes(h[5..13].try_into().unwrap());
        let len = u32::from_le_bytes(h[13..17].try_into().unwrap()) as usize;
        let plen = u16::from_le_bytes(h[17..19].try_into().unwrap()) as usize;
        at += 19;
        let path = bytes.get(at..at + plen).ok_or("truncated path")?;
        at += plen;
        let data = bytes.get(at..at + len).ok_or("truncated data")?.to_vec();
        at += len;
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let two = || {
            let i = path.iter().position(|b| *b == 0).unwrap_or(path.len());
            (
                text(&path[..i]),
                text(path.get(i + 1..).unwrap_or_default()),
            )
        };
        ops.push(match op {
            b'O' => {
                let flags: i64 = text(&data).parse().map_err(|_| "bad open flags")?;
                let dsync = flags & O_DSYNC != 0 || flags & O_SYNC == O_SYNC;
                dsync_fds.insert(fd, dsync);
                Op::Open {
                    path: text(path),
                    create: flags & O_CREAT != 0,
                    truncate: flags & O_TRUNC != 0,
                    fd,
                    dsync,
                }
            }
            b'W' => Op::Write {
                path: text(path),
                offset: off as u64,
                data,
            },
            b'S' => Op::Sync { path: text(path) },
            b'T' => Op::Truncate {
                path: text(path),
                len: off as u64,
            },
            b'R' => {
                let (from, to) = two();
                Op::Rename { from, to }
            }
            b'L' => {
                let (from, to) = two();
                Op::Link { from, to }
            }
            b'U' => Op::Unlink { path: text(path) },
            b'M' => Op::Mkdir { path: text(path) },
            b'D' => Op::SyncDir { path: text(path) },
            other => return Err(format!("unknown trace op {other}")),
        });
    }
    Ok(ops)
}

/// A data change to a file.
#[derive(Debug, Clone)]
enum Change {
    Write { offset: u64, data: Vec<u8> },
    Truncate { len: u64 },
}

impl Change {
    fn apply(&self, content: &mut Vec<u8>) {
        match self {
            Change::Write { offset, data } => {
                let end = *offset as usize + data.len();
                if content.len() < end {
                    content.resize(end, 0);
                }
                content[*offset as usize..end].copy_from_slice(data);
            }
            Change::Truncate { len } => content.resize(*len as usize, 0),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct File {
    durable: Vec<u8>,
    pending: Vec<Change>,
}

/// A namespace change (paths are absolute).
#[derive(Debug, Clone)]
enum Name {
    Create { path: String, file: usize },
    Rename { from: String, to: String },
    Link { from: String, to: String },
    Unlink { path: String },
    Mkdir { path: String },
}

impl Name {
    fn dirs(&self) -> Vec<String> {
        let parent = |p: &String| {
            Path::new(p)
                .parent()
                .map(|d| d.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        match self {
            Name::Create { path, .. } | Name::Unlink { path } | Name::Mkdir { path } => {
                vec![parent(path)]
            }
            Name::Rename { from, to } | Name::Link { from, to } => vec![parent(from), parent(to)],
        }
    }

    fn apply(&self, ns: &mut BTreeMap<String, Entry>) {
        match self {
            Name::Create { path, file } => {
                ns.insert(path.clone(), Entry::File(*file));
            }
            Name::Mkdir { path } => {
                ns.insert(path.clone(), Entry::Dir);
            }
            Name::Unlink { path } => {
                ns.remove(path);
                let prefix = format!("{path}/");
                ns.retain(|p, _| !p.starts_with(&prefix));
            }
            Name::Rename { from, to } => {
                let prefix = format!("{from}/");
                let moved: Vec<(String, Entry)> = ns
                    .iter()
                    .filter(|(p, _)| *p == from || p.starts_with(&prefix))
                    .map(|(p, e)| (p.clone(), *e))
                    .collect();
                let dest = format!("{to}/");
                ns.retain(|p, _| p != to && !p.starts_with(&dest));
                for (p, e) in moved {
                    ns.remove(&p);
                    let np = format!("{to}{}", &p[from.len()..]);
                    ns.insert(np, e);
                }
            }
            Name::Link { from, to } => {
                if let Some(e) = ns.get(from).copied() {
                    ns.insert(to.clone(), e);
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    File(usize),
    Dir,
}

/// The state of the simulated disk after the first `k` traced calls: what
/// is durable, and what is pending.
struct Disk {
    files: Vec<File>,
    /// Durable namespace.
    names: BTreeMap<String, Entry>,
    /// Namespace as the running process saw it.
    live: BTreeMap<String, Entry>,
    pending_names: Vec<Name>,
    dsync_paths: HashMap<String, bool>,
}

impl Disk {
    fn new() -> Disk {
        Disk {
            files: Vec::new(),
            names: BTreeMap::new(),
            live: BTreeMap::new(),
            pending_names: Vec::new(),
            dsync_paths: HashMap::new(),
        }
    }

    fn file_of(&self, path: &str) -> Option<usize> {
        match self.live.get(path) {
            Some(Entry::File(f)) => Some(*f),
            _ => None,
        }
    }

    fn name(&mut self, n: Name) {
        n.apply(&mut self.live);
        self.pending_names.push(n);
    }

    fn step(&mut self, op: &Op) {
        match op {
            Op::Open {
                path,
                create,
                truncate,
                dsync,
                ..
            } => {
                self.dsync_paths.insert(path.clone(), *dsync);
                if self.file_of(path).is_none() && *create {
                    self.files.push(File::default());
                    let file = self.files.len() - 1;
                    self.name(Name::Create {
                        path: path.clone(),
                        file,
                    });
                }
                if *truncate {
                    if let Some(f) = self.file_of(path) {
                        self.files[f].pending.push(Change::Truncate { len: 0 });
                    }
                }
            }
            Op::Write { path, offset, data } => {
                if let Some(f) = self.file_of(path) {
                    self.files[f].pending.push(Change::Write {
                        offset: *offset,
                        data: data.clone(),
                    });
                    if self.dsync_paths.get(path).copied().unwrap_or(false) {
                        self.sync(f);
                    }
                }
            }
            Op::Sync { path } => {
                if let Some(f) = self.file_of(path) {
                    self.sync(f);
                }
            }
            Op::Truncate { path, len } => {
                if let Some(f) = self.file_of(path) {
                    self.files[f].pending.push(Change::Truncate { len: *len });
                }
            }
            Op::Rename { from, to } => self.name(Name::Rename {
                from: from.clone(),
                to: to.clone(),
            }),
            Op::Link { from, to } => self.name(Name::Link {
                from: from.clone(),
                to: to.clone(),
            }),
            Op::Unlink { path } => self.name(Name::Unlink { path: path.clone() }),
            Op::Mkdir { path } => self.name(Name::Mkdir { path: path.clone() }),
            Op::SyncDir { path } => {
                // Journal order: everything pending up to the last change of
                // this directory becomes durable.
                if let Some(last) = self
                    .pending_names
                    .iter()
                    .rposition(|n| n.dirs().iter().any(|d| d == path))
                {
                    for n in self.pending_names.drain(..=last) {
                        n.apply(&mut self.names);
                    }
                }
            }
        }
    }

    fn sync(&mut self, f: usize) {
        let file = &mut self.files[f];
        for c in std::mem::take(&mut file.pending) {
            c.apply(&mut file.durable);
        }
    }

    /// A crash image: for every name the durable namespace (plus a random
    /// prefix of the pending changes) keeps, the durable content plus a
    /// random subset of the pending changes, some torn.
    fn image(&self, rng: &mut Rng, tear: bool) -> BTreeMap<String, Option<Vec<u8>>> {
        let mut names = self.names.clone();
        let keep = rng.range(0, self.pending_names.len() as u64 + 1) as usize;
        for n in &self.pending_names[..keep] {
            n.apply(&mut names);
        }
        let mut out = BTreeMap::new();
        for (path, entry) in names {
            match entry {
                Entry::Dir => {
                    out.insert(path, None);
                }
                Entry::File(f) => {
                    let file = &self.files[f];
                    let mut content = file.durable.clone();
                    for c in &file.pending {
                        if !rng.chance(1, 2) {
                            continue;
                        }
                        match c {
                            Change::Write { offset, data }
                                if tear && data.len() > 512 && rng.chance(1, 4) =>
                            {
                                // Some sectors of it.
                                for (i, chunk) in data.chunks(512).enumerate() {
                                    if rng.chance(1, 2) {
                                        Change::Write {
                                            offset: offset + (i * 512) as u64,
                                            data: chunk.to_vec(),
                                        }
                                        .apply(&mut content);
                                    }
                                }
                            }
                            c => c.apply(&mut content),
                        }
                    }
                    out.insert(path, Some(content));
                }
            }
        }
        out
    }
}

/// Acknowledgements found in a trace: (index of the call, text written).
pub fn acks(ops: &[Op], root: &Path) -> Vec<(usize, String)> {
    let ack_file = root.join("acks").to_string_lossy().into_owned();
    ops.iter()
        .enumerate()
        .filter_map(|(i, op)| match op {
            Op::Write { path, data, .. } if *path == ack_file => {
                Some((i, String::from_utf8_lossy(data).trim().to_owned()))
            }
            _ => None,
        })
        .collect()
}

/// Builds the crash image of a power loss after the first `k` calls of
/// `ops` into `dest` (which must not exist), mapping the traced root `root`
/// onto it. The acknowledgement file is left out.
pub fn build_image(
    ops: &[Op],
    root: &Path,
    k: usize,
    dest: &Path,
    rng: &mut Rng,
    tear: bool,
) -> std::io::Result<()> {
    let mut disk = Disk::new();
    disk.live
        .insert(root.to_string_lossy().into_owned(), Entry::Dir);
    disk.names = disk.live.clone();
    for op in &ops[..k] {
        disk.step(op);
    }
    let root_s = root.to_string_lossy().into_owned();
    std::fs::create_dir_all(dest)?;
    for (path, content) in disk.image(rng, tear) {
        let Some(rel) = path.strip_prefix(&root_s) else {
            continue;
        };
        let rel = rel.trim_start_matches('/');
        if rel.is_empty() || rel == "acks" {
            continue;
        }
        let target: PathBuf = dest.join(rel);
        match content {
            None => std::fs::create_dir_all(&target)?,
            Some(bytes) => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&target, bytes)?;
            }
        }
    }
    Ok(())
}

/// Crash points worth trying: just before and after every flush and every
/// acknowledgement (given as call indices), plus random points, `count` of
/// them in all.
pub fn crash_points(ops: &[Op], acks: &[usize], count: usize, rng: &mut Rng) -> Vec<usize> {
    let mut interesting: Vec<usize> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if matches!(op, Op::Sync { .. } | Op::SyncDir { .. }) {
            interesting.extend([i, i + 1]);
        }
    }
    for &i in acks {
        interesting.extend([i, i + 1]);
    }
    interesting.retain(|k| *k <= ops.len());
    (0..count)
        .map(|_| {
            if rng.chance(3, 4) && !interesting.is_empty() {
                interesting[rng.range(0, interesting.len() as u64) as usize]
            } else {
                rng.range(0, ops.len() as u64 + 1) as usize
            }
        })
        .collect()
}
