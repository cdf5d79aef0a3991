//! `Database::verify`: a full integrity check of documents, indexes, counters
//! and the catalog, for users and for the crash tests.

use std::collections::{BTreeSet, HashSet};

use bson::raw::RawDocument;
use serde::{Deserialize, Serialize};

use crate::catalog::{self, Counter};
use crate::doc::{DocRef, ValRef};
use crate::error::Result;
use crate::exec::doc_key;
use crate::index::entries::keys_for;
use crate::index::spec::CompiledIndex;
use crate::log::state;
use crate::log::wal::Wal;
use crate::storage::{Store, Table};

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
    /// Every inconsistency found, described for a person; empty when healthy.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// True when no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

const MAX_PROBLEMS: usize = 100;

fn note(r: &mut VerifyReport, p: String) {
    if r.problems.len() < MAX_PROBLEMS {
        r.problems.push(p);
    }
}

/// Checks everything in one read snapshot.
pub fn verify(store: &Store, wal: &Wal) -> Result<VerifyReport> {
    let (_gate, txn) = store.read()?;
    let mut r = VerifyReport::default();
    let metas = catalog::list(store, &txn)?;
    let mut coll_prefixes = HashSet::new();
    let mut index_prefixes = HashSet::new();
    for meta in &metas {
        r.collections += 1;
        coll_prefixes.insert(meta.prefix());
        let indexes = CompiledIndex::compile_all(&meta.indexes)?;
        let mut expected: Vec<BTreeSet<Vec<u8>>> = vec![BTreeSet::new(); indexes.len()];
        let mut docs = 0u64;
        for item in store.table(Table::Docs).prefix_iter(&txn, &meta.prefix())? {
            let (key, bytes) = item?;
            docs += 1;
            let Ok(raw) = RawDocument::from_bytes(bytes) else {
                note(
                    &mut r,
                    format!("{}: undecodable document under key {key:02x?}", meta.name),
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
                        "{}: malformed element in document under key {key:02x?}",
                        meta.name
                    ),
                );
                continue;
            }
            match raw.get(meta.id_field()).ok().flatten() {
                Some(id) => {
                    if doc_key(meta, ValRef::from(id)) != key {
                        note(
                            &mut r,
                            format!(
                                "{}: document stored under a key that is not its primary key",
                                meta.name
                            ),
                        );
                    }
                }
                None => note(
                    &mut r,
                    format!(
                        "{}: document without primary key '{}'",
                        meta.name,
                        meta.id_field()
                    ),
                ),
            }
            for (i, ix) in indexes.iter().enumerate() {
                match keys_for(ix, DocRef::Raw(raw), &key[4..]) {
                    Ok(k) => expected[i].extend(k.keys),
                    Err(e) => note(
                        &mut r,
                        format!(
                            "{}: index '{}' cannot index a document: {e}",
                            meta.name, ix.name
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
        for (ix, want) in indexes.iter().zip(expected) {
            index_prefixes.insert(ix.meta.prefix());
            let mut found = 0u64;
            let mut missing = want.clone();
            for item in store
                .table(Table::Indexes)
                .prefix_iter(&txn, &ix.meta.prefix())?
            {
                let (key, pk) = item?;
                found += 1;
                if !missing.remove(key) {
                    note(
                        &mut r,
                        format!(
                            "{}: index '{}' has an entry no document produces",
                            meta.name, ix.name
                        ),
                    );
                    continue;
                }
                let mut doc = meta.prefix().to_vec();
                doc.extend_from_slice(pk);
                if store.table(Table::Docs).get(&txn, &doc)?.is_none() {
                    note(
                        &mut r,
                        format!(
                            "{}: index '{}' points to a missing document",
                            meta.name, ix.name
                        ),
                    );
                }
            }
            if !missing.is_empty() {
                note(
                    &mut r,
                    format!(
                        "{}: index '{}' lacks {} entries",
                        meta.name,
                        ix.name,
                        missing.len()
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
        for item in store.table(table).iter(&txn)? {
            let (key, _) = item?;
            let prefix: [u8; 4] = match key.get(..4).and_then(|p| p.try_into().ok()) {
                Some(p) => p,
                None => {
                    note(&mut r, format!("{what}: key shorter than its prefix"));
                    continue;
                }
            };
            if !owned.contains(&prefix) {
                note(
                    &mut r,
                    format!(
                        "{what} under id {} that no collection or index owns",
                        u32::from_be_bytes(prefix)
                    ),
                );
                break;
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
