//! The catalog: collection definitions stored in the `catalog` table, keyed by
//! collection name, plus the id counter in the `meta` table.

use heed::RoTxn;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::index::IndexMeta;
use crate::storage::{Store, Table, Wtx};

/// Options fixed when a collection is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CollectionOptions {
    /// The primary key field (default `_id`; the original TypeScript store used `id`).
    pub id_field: String,
}

impl Default for CollectionOptions {
    fn default() -> Self {
        CollectionOptions {
            id_field: "_id".into(),
        }
    }
}

impl CollectionOptions {
    /// Options with a custom primary key field name.
    pub fn with_id_field(id_field: impl Into<String>) -> Self {
        CollectionOptions {
            id_field: id_field.into(),
        }
    }
}

/// A stored collection definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionMeta {
    /// Internal id; the 4-byte big-endian prefix of its keys.
    pub id: u32,
    /// The name.
    pub name: String,
    /// The options given at creation.
    pub options: CollectionOptions,
    /// Secondary indexes (the primary key index is implicit).
    #[serde(default)]
    pub indexes: Vec<IndexMeta>,
    /// Version of the typed schema last synchronised with this collection, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<u32>,
}

impl CollectionMeta {
    /// The key prefix of this collection's documents in the `docs` table.
    pub fn prefix(&self) -> [u8; 4] {
        self.id.to_be_bytes()
    }

    /// The primary key field name.
    pub fn id_field(&self) -> &str {
        &self.options.id_field
    }
}

const NEXT_COLLECTION_ID: &[u8] = b"next_collection_id";
const FORMAT_VERSION_KEY: &[u8] = b"format_version";
const NEXT_INDEX_ID: &[u8] = b"next_index_id";
const CATALOG_VERSION: &[u8] = b"catalog_version";
/// On-disk format version written at creation.
pub const FORMAT_VERSION: u32 = 1;

/// Checks a collection name.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |why: &str| Error::InvalidCollection(format!("collection name {name:?} {why}"));
    if name.is_empty() {
        return Err(bad("is empty"));
    }
    if name.len() > 255 {
        return Err(bad("is longer than 255 bytes"));
    }
    if name.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    if name.starts_with('$') {
        return Err(bad("starts with '$'"));
    }
    Ok(())
}

fn validate_options(opts: &CollectionOptions) -> Result<()> {
    crate::doc::json::check_field_name(&opts.id_field, &opts.id_field)
        .map_err(|m| Error::InvalidCollection(format!("id_field: {m}")))?;
    if opts.id_field.is_empty() {
        return Err(Error::InvalidCollection("id_field cannot be empty".into()));
    }
    Ok(())
}

/// Fails when `opts` is given and differs from the stored options.
pub fn check_options(meta: &CollectionMeta, opts: Option<&CollectionOptions>) -> Result<()> {
    match opts {
        Some(o) if *o != meta.options => Err(Error::CollectionOptionsMismatch {
            name: meta.name.clone(),
            message: format!(
                "stored id_field '{}', requested '{}'",
                meta.options.id_field, o.id_field
            ),
        }),
        _ => Ok(()),
    }
}

/// Reads a collection definition.
pub fn load(store: &Store, txn: &RoTxn<'_>, name: &str) -> Result<Option<CollectionMeta>> {
    let Some(bytes) = store.table(Table::Catalog).get(txn, name.as_bytes())? else {
        return Ok(None);
    };
    serde_json::from_slice(bytes)
        .map(Some)
        .map_err(|e| Error::Corrupt {
            location: format!("catalog entry '{name}'"),
            message: e.to_string(),
            lsn: None,
        })
}

/// Lists all collection definitions.
pub fn list(store: &Store, txn: &RoTxn<'_>) -> Result<Vec<CollectionMeta>> {
    let mut out = Vec::new();
    for item in store.table(Table::Catalog).iter(txn)? {
        let (key, bytes) = item?;
        out.push(serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
            location: format!("catalog entry '{}'", String::from_utf8_lossy(key)),
            message: e.to_string(),
            lsn: None,
        })?);
    }
    Ok(out)
}

/// Returns the definition of `name` and whether it was created now (with
/// `opts`, or the defaults). When it exists and `opts` is given, the options
/// must match.
pub fn get_or_create(
    w: &mut Wtx<'_, '_>,
    name: &str,
    opts: Option<&CollectionOptions>,
) -> Result<(CollectionMeta, bool)> {
    validate_name(name)?;
    if let Some(meta) = load(w.store(), w.ro(), name)? {
        check_options(&meta, opts)?;
        return Ok((meta, false));
    }
    let options = opts.cloned().unwrap_or_default();
    validate_options(&options)?;
    let next = match w.get(Table::Meta, NEXT_COLLECTION_ID)? {
        Some(b) if b.len() == 4 => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        Some(_) => {
            return Err(Error::Corrupt {
                location: "meta/next_collection_id".into(),
                message: "expected 4 bytes".into(),
                lsn: None,
            })
        }
        None => 1,
    };
    let id_after = next
        .checked_add(1)
        .ok_or_else(|| Error::InvalidCollection("collection id space exhausted".into()))?;
    w.put(Table::Meta, NEXT_COLLECTION_ID, &id_after.to_be_bytes())?;
    if w.get(Table::Meta, FORMAT_VERSION_KEY)?.is_none() {
        w.put(
            Table::Meta,
            FORMAT_VERSION_KEY,
            &FORMAT_VERSION.to_be_bytes(),
        )?;
    }
    let meta = CollectionMeta {
        id: next,
        name: name.to_owned(),
        options,
        indexes: Vec::new(),
        schema_version: None,
    };
    save(w, &meta)?;
    Ok((meta, true))
}

/// Writes a collection definition.
pub fn save(w: &mut Wtx<'_, '_>, meta: &CollectionMeta) -> Result<()> {
    let bytes = serde_json::to_vec(meta).map_err(|e| Error::Io(std::io::Error::other(e)))?;
    w.put(Table::Catalog, meta.name.as_bytes(), &bytes)?;
    bump_version(w)
}

/// The catalog version: changes with every change of any collection
/// definition, so cached definitions can be validated with one read.
pub fn version(store: &Store, txn: &RoTxn<'_>) -> Result<u64> {
    Ok(match store.table(Table::Meta).get(txn, CATALOG_VERSION)? {
        Some(b) if b.len() == 8 => {
            u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        }
        _ => 0,
    })
}

fn bump_version(w: &mut Wtx<'_, '_>) -> Result<()> {
    let v = version(w.store(), w.ro())?.wrapping_add(1);
    w.put(Table::Meta, CATALOG_VERSION, &v.to_be_bytes())
}

/// Allocates an id for a new index.
pub fn next_index_id(w: &mut Wtx<'_, '_>) -> Result<u32> {
    let next = match w.get(Table::Meta, NEXT_INDEX_ID)? {
        Some(b) if b.len() == 4 => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        Some(_) => {
            return Err(Error::Corrupt {
                location: "meta/next_index_id".into(),
                message: "expected 4 bytes".into(),
                lsn: None,
            })
        }
        None => 1,
    };
    let after = next
        .checked_add(1)
        .ok_or_else(|| Error::InvalidIndex("index id space exhausted".into()))?;
    w.put(Table::Meta, NEXT_INDEX_ID, &after.to_be_bytes())?;
    Ok(next)
}

/// Statistics counters kept in the `meta` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Counter {
    /// Documents in a collection (by collection id).
    Docs(u32),
    /// Entries in an index (by index id).
    Entries(u32),
}

impl Counter {
    fn key(self) -> [u8; 6] {
        let (tag, id) = match self {
            Counter::Docs(id) => (b'c', id),
            Counter::Entries(id) => (b'i', id),
        };
        let b = id.to_be_bytes();
        [b'#', tag, b[0], b[1], b[2], b[3]]
    }
}

/// Reads a counter (0 when never written).
pub fn count(store: &Store, txn: &RoTxn<'_>, c: Counter) -> Result<u64> {
    Ok(match store.table(Table::Meta).get(txn, &c.key())? {
        Some(b) if b.len() == 8 => {
            u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        }
        _ => 0,
    })
}

/// Adds `delta` to a counter.
pub fn add_count(w: &mut Wtx<'_, '_>, c: Counter, delta: i64) -> Result<()> {
    if delta == 0 {
        return Ok(());
    }
    let cur = count(w.store(), w.ro(), c)?;
    let new = (cur as i64).saturating_add(delta).max(0) as u64;
    w.put(Table::Meta, &c.key(), &new.to_be_bytes())
}

/// Removes a counter.
pub fn clear_count(w: &mut Wtx<'_, '_>, c: Counter) -> Result<()> {
    w.delete(Table::Meta, &c.key())?;
    Ok(())
}

/// Removes a collection definition. Returns false when it did not exist.
pub fn remove(w: &mut Wtx<'_, '_>, name: &str) -> Result<bool> {
    let existed = w.delete(Table::Catalog, name.as_bytes())?;
    bump_version(w)?;
    Ok(existed)
}
