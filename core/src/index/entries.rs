//! Index keys of a document.
//!
//! An entry's key is `index id (u32 BE) ‖ enc(field 1) ‖ … ‖ enc(field n)`, followed
//! by the encoded primary key for non-unique indexes (so entries are distinct);
//! its value is the encoded primary key. A field that holds an array produces one
//! key per element (multikey; an empty array indexes as MinKey, below null,
//! which is where MongoDB sorts it); a missing field
//! indexes as null. At most one array may be crossed per key, as in MongoDB
//! ("cannot index parallel arrays").

use std::collections::BTreeSet;

use super::spec::CompiledIndex;
use crate::doc::path::array_index;
use crate::doc::{DocRef, ValRef};
use crate::error::{Error, Result};
use crate::keys::{encode_missing, encode_value};

/// The keys of one document in one index.
#[derive(Debug, Default)]
pub struct DocKeys {
    /// Full entry keys, sorted and distinct.
    pub keys: BTreeSet<Vec<u8>>,
    /// True when an array produced several keys.
    pub multikey: bool,
}

struct FieldValues<'a> {
    values: Vec<Option<ValRef<'a>>>,
    /// Path prefix of the first array crossed or reached, if any.
    array_at: Option<usize>,
}

fn walk<'a>(cur: ValRef<'a>, parts: &[String], depth: usize, out: &mut FieldValues<'a>) {
    let Some((head, rest)) = parts.split_first() else {
        match cur {
            ValRef::Array(a) => {
                out.array_at.get_or_insert(depth);
                let before = out.values.len();
                out.values.extend(a.iter().map(Some));
                if out.values.len() == before {
                    // An empty array sorts before null (as in MongoDB's sort
                    // order); MinKey's encoding keeps index order equal to it.
                    out.values.push(Some(ValRef::MinKey));
                }
            }
            other => out.values.push(Some(other)),
        }
        return;
    };
    match cur {
        ValRef::Document(d) => match d.get(head) {
            Some(child) => walk(child, rest, depth + 1, out),
            None => out.values.push(None),
        },
        ValRef::Array(arr) => {
            out.array_at.get_or_insert(depth);
            let before = out.values.len();
            if let Some(i) = array_index(head) {
                if let Some(elem) = arr.get(i) {
                    walk(elem, rest, depth + 1, out);
                }
            }
            for elem in arr.iter() {
                if let ValRef::Document(_) = elem {
                    walk(elem, parts, depth, out);
                }
            }
            if out.values.len() == before {
                out.values.push(None);
            }
        }
        _ => out.values.push(None),
    }
}

/// Computes the keys of `doc` in `ix`; `pk` is the encoded primary key.
pub fn keys_for(ix: &CompiledIndex, doc: DocRef<'_>, pk: &[u8]) -> Result<DocKeys> {
    let mut out = DocKeys::default();
    if let Some(p) = &ix.partial {
        if !p.matches(doc) {
            return Ok(out);
        }
    }
    let mut per_field = Vec::with_capacity(ix.fields.len());
    for (path, _) in &ix.fields {
        let mut fv = FieldValues {
            values: Vec::new(),
            array_at: None,
        };
        walk(ValRef::Document(doc), path.parts(), 0, &mut fv);
        per_field.push(fv);
    }
    if ix.meta.spec.sparse
        && per_field
            .iter()
            .all(|f| f.values.iter().all(Option::is_none))
    {
        return Ok(out);
    }
    // Parallel arrays: two fields that cross arrays at different places.
    let mut array_field: Option<(usize, &[String])> = None;
    for (i, f) in per_field.iter().enumerate() {
        if let Some(depth) = f.array_at {
            let prefix = &ix.fields[i].0.parts()[..depth.min(ix.fields[i].0.parts().len())];
            match array_field {
                None => array_field = Some((i, prefix)),
                Some((j, other)) if other != prefix => {
                    return Err(Error::InvalidDocument(format!(
                        "cannot index parallel arrays: fields '{}' and '{}' of index '{}' both hold arrays",
                        ix.fields[j].0,
                        ix.fields[i].0,
                        ix.meta.name()
                    )));
                }
                Some(_) => {}
            }
        }
    }
    out.multikey = per_field.iter().any(|f| f.values.len() > 1);
    let prefix = ix.meta.prefix();
    let mut partial_keys: Vec<Vec<u8>> = vec![prefix.to_vec()];
    for (f, (_, desc)) in per_field.iter().zip(&ix.fields) {
        let mut encoded: Vec<Vec<u8>> = f
            .values
            .iter()
            .map(|v| {
                let mut b = Vec::new();
                match v {
                    Some(v) => encode_value(&mut b, v, *desc),
                    None => encode_missing(&mut b, *desc),
                }
                b
            })
            .collect();
        encoded.sort();
        encoded.dedup();
        let mut next = Vec::with_capacity(partial_keys.len() * encoded.len());
        for k in &partial_keys {
            for e in &encoded {
                let mut key = k.clone();
                key.extend_from_slice(e);
                next.push(key);
            }
        }
        if next.len() > MAX_KEYS_PER_DOC {
            return Err(Error::InvalidDocument(format!(
                "document produces more than {MAX_KEYS_PER_DOC} keys in index '{}'",
                ix.meta.name()
            )));
        }
        partial_keys = next;
    }
    for mut k in partial_keys {
        if !ix.meta.spec.unique {
            k.extend_from_slice(pk);
        }
        out.keys.insert(k);
    }
    Ok(out)
}

/// The most keys one document may produce in one index.
pub const MAX_KEYS_PER_DOC: usize = 100_000;
