//! `Database::verify`: a full integrity check of documents, indexes, counters
//! and the catalog, for users and for the crash tests.
//!
//! It runs in two steps on one read snapshot. First the B-trees of that
//! state are walked from the file with every page bounds-checked
//! (`storage/walk.rs`): the memory map is never followed into a damaged
//! page, so damage is reported rather than faulted on. Only when the walk is
//! clean are documents, indexes and counters read through LMDB.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use bson::raw::RawDocument;
use serde::{Deserialize, Serialize};

use crate::catalog::{self, CollectionMeta, Counter};
use crate::doc::{DocRef, ValRef};
use crate::error::Result;
use crate::exec::doc_key;
use crate::index::entries::keys_for;
use crate::index::spec::CompiledIndex;
use crate::log::state;
use crate::log::wal::Wal;
use crate::storage::{Store, Table};

/// Bytes as lowercase hex, for keys in problem descriptions.
fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Names the document stored under the encoded primary key `pk` for a
/// person: its `_id` when the document exists and decodes, else the key.
fn describe_pk(store: &Store, txn: &heed::RoTxn<'_>, meta: &CollectionMeta, pk: &[u8]) -> String {
    let mut key = meta.prefix().to_vec();
    key.extend_from_slice(pk);
    let id = store
        .table(Table::Docs)
        .get(txn, &key)
        .ok()
        .flatten()
        .and_then(|bytes| RawDocument::from_bytes(bytes).ok())
        .and_then(|raw| raw.get(meta.id_field()).ok().flatten())
        .and_then(|id| bson::Bson::try_from(id).ok());
    match id {
        Some(id) => format!("{} {id}", meta.id_field()),
        None => format!("primary key {} (no such document)", hex(pk)),
    }
}

/// What [`crate::Database::verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Collections checked.
    pub collections: u64,
    /// Documents checked.
    pub documents: u64,
    /// Index entries checked.
    pub index_entries: u64,
    /// Change-log entries checked.
    pub log_entries: u64,
    /// Every inconsistency found, described for a person; empty when
    /// healthy. At most [`VerifyReport::LISTED`] are listed.
    pub problems: Vec<String>,
    /// Problems found after the listing stopped (counted, not described).
    #[serde(default)]
    pub unlisted: u64,
    /// Pages of the data file walked by the structural check.
    #[serde(default)]
    pub pages: u64,
}

impl VerifyReport {
    /// How many problems are described before the listing stops.
    pub const LISTED: usize = 100;

    /// True when no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty() && self.unlisted == 0
    }
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_ok() {
            return write!(
                f,
                "ok: {} collections, {} documents, {} index entries, {} log entries, {} pages",
                self.collections, self.documents, self.index_entries, self.log_entries, self.pages
            );
        }
        writeln!(
            f,
            "{} problems:",
            self.problems.len() as u64 + self.unlisted
        )?;
        for p in &self.problems {
            writeln!(f, "- {p}")?;
        }
        if self.unlisted > 0 {
            writeln!(
                f,
                "(the listing stopped after {}; {} more were found)",
                self.problems.len(),
                self.unlisted
            )?;
        }
        Ok(())
    }
}

fn note(r: &mut VerifyReport, p: String) {
    if r.problems.len() < VerifyReport::LISTED {
        r.problems.push(p);
    } else {
        r.unlisted += 1;
    }
}

/// How many times a read snapshot is taken again when later commits
/// overwrote its meta page before the structural walk could read it.
const SNAPSHOT_ATTEMPTS: usize = 1000;

/// Checks everything in one read snapshot.
pub fn verify(store: &Store, wal: &Wal) -> Result<VerifyReport> {
    let mut r = VerifyReport::default();
    let mut attempts = 0;
    let (_gate, txn) = loop {
        let (gate, txn) = store.read()?;
        if let Some(found) = store.structure(&txn, VerifyReport::LISTED)? {
            r.pages = found.pages;
            if !found.is_clean() {
                r.problems = found.problems;
                r.unlisted = found.unlisted;
                r.problems.insert(
                    0,
                    "the data file's B-trees are damaged: documents, indexes and the log were not checked"
                        .into(),
                );
                return Ok(r);
            }
            break (gate, txn);
        }
        attempts += 1;
        if attempts >= SNAPSHOT_ATTEMPTS {
            return Err(crate::error::Error::Conflict(
                "commits kept overwriting the state verify() was reading; retry when writes are fewer"
                    .into(),
            ));
        }
    };
    let metas = catalog::list(store, &txn)?;
    let mut coll_prefixes = HashSet::new();
    let mut index_prefixes = HashSet::new();
    for meta in &metas {
        r.collections += 1;
        coll_prefixes.insert(meta.prefix());
        let indexes = CompiledIndex::compile_all(&meta.indexes)?;
        // Per index: every entry key the documents produce -> the primary key
        // it must hold.
        let mut expected: Vec<BTreeMap<Vec<u8>, Vec<u8>>> = vec![BTreeMap::new(); indexes.len()];
        let mut docs = 0u64;
        for item in store.table(Table::Docs).prefix_iter(&txn, &meta.prefix())? {
            let (key, bytes) = item?;
            docs += 1;
            let Ok(raw) = RawDocument::from_bytes(bytes) else {
                note(
                    &mut r,
                    format!(
                        "{}: undecodable document under key {}",
                        meta.name,
                        hex(&key[4..])
                    ),
                );
                continue;
            };
            if raw
                .iter_elements()
                .any(|e| e.and_then(|e| e.value()).is_err())
            {
                note(
                    &mut r,
                    format!(
                        "{}: malformed element in document under key {}",
                        meta.name,
                        hex(&key[4..])
                    ),
                );
                continue;
            }
            match raw.get(meta.id_field()).ok().flatten() {
                Some(id) => {
                    if doc_key(meta, ValRef::from(id)) != key {
                        let shown = bson::Bson::try_from(id)
                            .map(|b| b.to_string())
                            .unwrap_or_else(|_| "?".into());
                        note(
                            &mut r,
                            format!(
                                "{}: document {} {shown} is stored under key {}, not under its primary key",
                                meta.name,
                                meta.id_field(),
                                hex(&key[4..])
                            ),
                        );
                    }
                }
                None => note(
                    &mut r,
                    format!(
                        "{}: document without primary key '{}' under key {}",
                        meta.name,
                        meta.id_field(),
                        hex(&key[4..])
                    ),
                ),
            }
            for (i, ix) in indexes.iter().enumerate() {
                match keys_for(ix, DocRef::Raw(raw), &key[4..]) {
                    Ok(k) => expected[i].extend(k.keys.into_iter().map(|k| (k, key[4..].to_vec()))),
                    Err(e) => note(
                        &mut r,
                        format!(
                            "{}: index '{}' cannot index document {}: {e}",
                            meta.name,
                            ix.name,
                            describe_pk(store, &txn, meta, &key[4..])
                        ),
                    ),
                }
            }
        }
        r.documents += docs;
        let counted = catalog::count(store, &txn, Counter::Docs(meta.id))?;
        if counted != docs {
            note(
                &mut r,
                format!(
                    "{}: document counter says {counted}, found {docs}",
                    meta.name
                ),
            );
        }
        for (ix, mut missing) in indexes.iter().zip(expected) {
            index_prefixes.insert(ix.meta.prefix());
            let mut found = 0u64;
            for item in store
                .table(Table::Indexes)
                .prefix_iter(&txn, &ix.meta.prefix())?
            {
                let (key, pk) = item?;
                found += 1;
                match missing.remove(key) {
                    None => note(
                        &mut r,
                        format!(
                            "{}: index '{}' has an entry no document produces (key {}, pointing to {})",
                            meta.name,
                            ix.name,
                            hex(&key[4..]),
                            describe_pk(store, &txn, meta, pk)
                        ),
                    ),
                    Some(want) if want != pk => note(
                        &mut r,
                        format!(
                            "{}: index '{}' entry {} points to {} but belongs to {}",
                            meta.name,
                            ix.name,
                            hex(&key[4..]),
                            describe_pk(store, &txn, meta, pk),
                            describe_pk(store, &txn, meta, &want)
                        ),
                    ),
                    Some(_) => {}
                }
            }
            if let Some((key, pk)) = missing.iter().next() {
                note(
                    &mut r,
                    format!(
                        "{}: index '{}' lacks {} entries (the first: key {} of {})",
                        meta.name,
                        ix.name,
                        missing.len(),
                        hex(&key[4..]),
                        describe_pk(store, &txn, meta, pk)
                    ),
                );
            }
            r.index_entries += found;
            let counted = catalog::count(store, &txn, Counter::Entries(ix.meta.id))?;
            if counted != found {
                note(
                    &mut r,
                    format!(
                        "{}: index '{}' counter says {counted}, found {found}",
                        meta.name, ix.name
                    ),
                );
            }
        }
    }
    // Orphans: keys under prefixes no catalog entry owns.
    for (table, owned, what) in [
        (Table::Docs, &coll_prefixes, "documents"),
        (Table::Indexes, &index_prefixes, "index entries"),
    ] {
        let mut reported = HashSet::new();
        for item in store.table(table).iter(&txn)? {
            let (key, _) = item?;
            let prefix: [u8; 4] = match key.get(..4).and_then(|p| p.try_into().ok()) {
                Some(p) => p,
                None => {
                    note(
                        &mut r,
                        format!("{what}: key {} is shorter than its prefix", hex(key)),
                    );
                    continue;
                }
            };
            if !owned.contains(&prefix) && reported.insert(prefix) {
                note(
                    &mut r,
                    format!(
                        "{what} under id {} that no collection or index owns (the first: key {})",
                        u32::from_be_bytes(prefix),
                        hex(key)
                    ),
                );
            }
        }
    }
    verify_log(store, &txn, wal, &mut r)?;
    Ok(r)
}

/// Every retained log entry is present, in sequence, and decodes (checksum,
/// format), and the format-1 log table is empty.
fn verify_log(store: &Store, txn: &heed::RoTxn<'_>, wal: &Wal, r: &mut VerifyReport) -> Result<()> {
    if store.table(Table::Log).len(txn)? > 0 {
        note(r, "log: the format-1 log table still holds entries".into());
    }
    let (first, last) = state::bounds(store, txn)?;
    if last == 0 || first > last {
        return Ok(());
    }
    let mut expect = first;
    let visited = wal.visit(first - 1, last, &mut |lsn, frame| {
        if let Err(e) = crate::log::LogEntry::decode(lsn, frame) {
            note(r, format!("log: {e}"));
        }
        r.log_entries += 1;
        expect = lsn + 1;
        Ok(true)
    });
    if let Err(e) = visited {
        note(r, format!("log: {e}"));
    }
    if expect <= last {
        note(
            r,
            format!("log: entries {expect}..{last} are missing or unreadable"),
        );
    }
    Ok(())
}
