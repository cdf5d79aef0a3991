//! Creating an index over the documents a collection already holds (one pass,
//! in batches, with progress), and dropping one.

use super::entries::keys_for;
use super::spec::{CompiledIndex, IndexMeta, IndexSpec};
use crate::catalog::{self, CollectionMeta, Counter};
use crate::doc::DocRef;
use crate::error::{Error, Result};
use crate::exec::raw_doc;
use crate::storage::{Table, Wtx};

const BATCH: usize = 4096;

fn same_definition(a: &IndexSpec, b: &IndexSpec) -> bool {
    a.fields == b.fields && a.unique == b.unique && a.sparse == b.sparse && a.partial == b.partial
}

/// Creates the index `spec` on `meta`'s collection and fills it from the stored
/// documents. Returns false when an identical index already exists.
pub fn create(
    w: &mut Wtx<'_, '_>,
    meta: &mut CollectionMeta,
    spec: IndexSpec,
    progress: &mut dyn FnMut(u64, u64),
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
                                key: super::maintain::render_key(&ix, DocRef::Raw(doc)),
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
    w.log(crate::log::LogOp::CreateIndex {
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
pub fn drop(w: &mut Wtx<'_, '_>, meta: &mut CollectionMeta, name: &str) -> Result<()> {
    let Some(pos) = meta.indexes.iter().position(|ix| ix.name() == name) else {
        if name == format!("{}_", meta.id_field()) {
            return Err(Error::InvalidIndex(
                "the primary key index cannot be dropped".into(),
            ));
        }
        return Err(Error::IndexNotFound(name.to_owned()));
    };
    let ix = meta.indexes.remove(pos);
    crate::exec::write::delete_prefix(w, Table::Indexes, &ix.prefix())?;
    catalog::clear_count(w, Counter::Entries(ix.id))?;
    catalog::save(w, meta)?;
    w.log(crate::log::LogOp::DropIndex {
        collection: meta.name.clone(),
        name: name.to_owned(),
    });
    Ok(())
}
