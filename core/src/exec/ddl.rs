//! DDL execution: creating and dropping collections, creating an index over
//! the documents a collection already holds (one pass, in batches, with
//! progress) and dropping one, recording a schema version. Each records its
//! change-log operation in `ops`.

use super::docs::raw_doc;
use crate::catalog::{self, CollectionMeta, CollectionOptions, Counter};
use crate::doc::DocRef;
use crate::error::{Error, Result};
use crate::index::entries::keys_for;
use crate::index::maintain::render_key;
use crate::index::spec::{CompiledIndex, IndexMeta, IndexSpec};
use crate::log::LogOp;
use crate::storage::{Table, Wtx};

const BATCH: usize = 4096;

fn same_definition(a: &IndexSpec, b: &IndexSpec) -> bool {
    a.fields == b.fields && a.unique == b.unique && a.sparse == b.sparse && a.partial == b.partial
}

/// The definition of collection `name`, created with `options` (and logged)
/// when it does not exist (then the flag is true); an existing one must have
/// the same options.
pub fn ensure_collection(
    w: &mut Wtx<'_, '_>,
    name: &str,
    options: Option<&CollectionOptions>,
    ops: &mut Vec<LogOp>,
) -> Result<(CollectionMeta, bool)> {
    let (meta, created) = catalog::get_or_create(w, name, options)?;
    if created {
        ops.push(LogOp::CreateCollection {
            collection: meta.name.clone(),
            options: meta.options.clone(),
        });
    }
    Ok((meta, created))
}

/// Drops collection `name` with its documents, index entries and counters.
/// Returns false when it did not exist.
pub fn drop_collection(w: &mut Wtx<'_, '_>, name: &str, ops: &mut Vec<LogOp>) -> Result<bool> {
    let Some(meta) = catalog::load(w.store(), w.ro(), name)? else {
        return Ok(false);
    };
    drop_all(w, &meta)?;
    let existed = catalog::remove(w, name)?;
    ops.push(LogOp::DropCollection {
        collection: name.to_owned(),
    });
    Ok(existed)
}

/// Records the schema version of a typed collection (logged only when it changes).
pub fn set_schema_version(
    w: &mut Wtx<'_, '_>,
    meta: &mut CollectionMeta,
    version: u32,
    ops: &mut Vec<LogOp>,
) -> Result<()> {
    if meta.schema_version == Some(version) {
        return Ok(());
    }
    meta.schema_version = Some(version);
    catalog::save(w, meta)?;
    ops.push(LogOp::SchemaVersion {
        collection: meta.name.clone(),
        version,
    });
    Ok(())
}

/// Creates the index `spec` on `meta`'s collection and fills it from the stored
/// documents. Returns false when an identical index already exists.
pub fn create_index(
    w: &mut Wtx<'_, '_>,
    meta: &mut CollectionMeta,
    spec: IndexSpec,
    progress: &mut dyn FnMut(u64, u64),
    ops: &mut Vec<LogOp>,
) -> Result<bool> {
    spec.validate()?;
    let name = spec.index_name();
    for existing in &meta.indexes {
        if existing.name() == name {
            if same_definition(&existing.spec, &spec) {
                return Ok(false);
            }
            return Err(Error::InvalidIndex(format!(
                "an index named '{name}' already exists with a different specification; drop it first"
            )));
        }
        if same_definition(&existing.spec, &spec) {
            return Err(Error::InvalidIndex(format!(
                "the same index already exists under the name '{}'",
                existing.name()
            )));
        }
    }
    let id = catalog::next_index_id(w)?;
    let mut ix_meta = IndexMeta {
        id,
        spec,
        multikey: false,
    };
    let mut ix = CompiledIndex::compile(&ix_meta)?;
    let total = catalog::count(w.store(), w.ro(), Counter::Docs(meta.id))?;
    let prefix = meta.prefix();
    let mut after: Option<Vec<u8>> = None;
    let mut done = 0u64;
    let mut entries = 0u64;
    progress(0, total);
    loop {
        let batch = read_batch(w, &prefix, after.as_deref())?;
        let Some((last, _)) = batch.last() else { break };
        after = Some(last.clone());
        for (key, bytes) in &batch {
            let doc = raw_doc(bytes, meta)?;
            let keys = keys_for(&ix, DocRef::Raw(doc), &key[4..])?;
            if keys.multikey && !ix.meta.multikey {
                ix.meta.multikey = true;
                ix_meta.multikey = true;
            }
            for k in keys.keys {
                if ix_meta.spec.unique {
                    if let Some(existing) = w.get(Table::Indexes, &k)? {
                        if existing != &key[4..] {
                            return Err(Error::DuplicateKey {
                                index: ix_meta.name(),
                                key: render_key(&ix, DocRef::Raw(doc)),
                            });
                        }
                        continue;
                    }
                }
                w.put(Table::Indexes, &k, &key[4..])?;
                entries += 1;
            }
        }
        done += batch.len() as u64;
        progress(done, total.max(done));
    }
    let mut logged = ix_meta.spec.clone();
    logged.name = Some(ix_meta.name());
    meta.indexes.push(ix_meta);
    catalog::save(w, meta)?;
    catalog::add_count(w, Counter::Entries(id), entries as i64)?;
    ops.push(LogOp::CreateIndex {
        collection: meta.name.clone(),
        spec: logged,
    });
    Ok(true)
}

fn read_batch(
    w: &Wtx<'_, '_>,
    prefix: &[u8; 4],
    after: Option<&[u8]>,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::with_capacity(BATCH);
    w.store()
        .scan_prefix(w.ro(), Table::Docs, prefix, after, &mut |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            Ok(out.len() < BATCH)
        })?;
    Ok(out)
}

/// Drops the index called `name`.
pub fn drop_index(
    w: &mut Wtx<'_, '_>,
    meta: &mut CollectionMeta,
    name: &str,
    ops: &mut Vec<LogOp>,
) -> Result<()> {
    let Some(pos) = meta.indexes.iter().position(|ix| ix.name() == name) else {
        if name == format!("{}_", meta.id_field()) {
            return Err(Error::InvalidIndex(
                "the primary key index cannot be dropped".into(),
            ));
        }
        return Err(Error::IndexNotFound(name.to_owned()));
    };
    let ix = meta.indexes.remove(pos);
    delete_prefix(w, Table::Indexes, &ix.prefix())?;
    catalog::clear_count(w, Counter::Entries(ix.id))?;
    catalog::save(w, meta)?;
    ops.push(LogOp::DropIndex {
        collection: meta.name.clone(),
        name: name.to_owned(),
    });
    Ok(())
}

/// Removes a collection's documents, index entries and counters (for dropping it).
pub fn drop_all(w: &mut Wtx<'_, '_>, meta: &CollectionMeta) -> Result<()> {
    let mut prefixes: Vec<(Table, [u8; 4])> = vec![(Table::Docs, meta.prefix())];
    prefixes.extend(meta.indexes.iter().map(|ix| (Table::Indexes, ix.prefix())));
    for (table, prefix) in prefixes {
        delete_prefix(w, table, &prefix)?;
    }
    catalog::clear_count(w, Counter::Docs(meta.id))?;
    for ix in &meta.indexes {
        catalog::clear_count(w, Counter::Entries(ix.id))?;
    }
    Ok(())
}

/// Deletes every key starting with `prefix`, in batches.
pub fn delete_prefix(w: &mut Wtx<'_, '_>, table: Table, prefix: &[u8]) -> Result<()> {
    loop {
        let keys: Vec<Vec<u8>> = w
            .store()
            .table(table)
            .prefix_iter(w.ro(), prefix)?
            .take(1024)
            .map(|r| r.map(|(k, _)| k.to_vec()))
            .collect::<std::result::Result<_, _>>()?;
        if keys.is_empty() {
            return Ok(());
        }
        for k in keys {
            w.delete(table, &k)?;
        }
    }
}
