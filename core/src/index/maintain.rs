//! Keeps index entries in step with document writes, inside the same write
//! transaction: only entries whose key changed are deleted or inserted, and
//! unique indexes are checked before anything is written.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::entries::keys_for;
use super::spec::CompiledIndex;
use crate::doc::json::json_from_val;
use crate::doc::{DocRef, ValRef};
use crate::error::{Error, Result};
use crate::query::matcher::visit;
use crate::storage::{Table, Wtx};

/// What one document write did to the indexes.
#[derive(Debug, Default)]
pub struct IndexDelta {
    /// Per index position: entries added minus entries removed.
    pub entry_deltas: Vec<i64>,
    /// Positions of indexes that became multikey.
    pub became_multikey: BTreeSet<usize>,
}

/// Renders the indexed fields of a document as JSON, for duplicate-key errors.
pub(crate) fn render_key(ix: &CompiledIndex, doc: DocRef<'_>) -> String {
    let mut map = Map::new();
    for (path, _) in &ix.fields {
        let mut first = Value::Null;
        visit(ValRef::Document(doc), path.parts(), &mut |v| {
            if let Some(v) = v {
                first = json_from_val(v);
            }
            true
        });
        map.insert(path.to_string(), first);
    }
    Value::Object(map).to_string()
}

/// Updates every index for a document changing from `old` to `new` (either may be absent).
pub fn apply(
    w: &mut Wtx<'_, '_>,
    indexes: &[CompiledIndex],
    pk: &[u8],
    old: Option<DocRef<'_>>,
    new: Option<DocRef<'_>>,
) -> Result<IndexDelta> {
    let mut delta = IndexDelta {
        entry_deltas: vec![0; indexes.len()],
        became_multikey: BTreeSet::new(),
    };
    let mut plans = Vec::with_capacity(indexes.len());
    for (pos, ix) in indexes.iter().enumerate() {
        let old_keys = match old {
            Some(d) => keys_for(ix, d, pk)?.keys,
            None => BTreeSet::new(),
        };
        let new_keys = match new {
            Some(d) => {
                let k = keys_for(ix, d, pk)?;
                if k.multikey && !ix.meta.multikey {
                    delta.became_multikey.insert(pos);
                }
                k.keys
            }
            None => BTreeSet::new(),
        };
        let added: Vec<Vec<u8>> = new_keys.difference(&old_keys).cloned().collect();
        let removed: Vec<Vec<u8>> = old_keys.difference(&new_keys).cloned().collect();
        // Check unique constraints before writing anything.
        if let (true, Some(doc)) = (ix.meta.spec.unique, new) {
            for k in &added {
                if let Some(existing) = w.get(Table::Indexes, k)? {
                    if existing != pk {
                        return Err(Error::DuplicateKey {
                            index: ix.meta.name(),
                            key: render_key(ix, doc),
                        });
                    }
                }
            }
        }
        plans.push((added, removed));
    }
    for (pos, (added, removed)) in plans.into_iter().enumerate() {
        for k in &removed {
            w.delete(Table::Indexes, k)?;
        }
        for k in &added {
            w.put(Table::Indexes, k, pk)?;
        }
        delta.entry_deltas[pos] = added.len() as i64 - removed.len() as i64;
    }
    Ok(delta)
}
