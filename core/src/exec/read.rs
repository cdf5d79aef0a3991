//! Read statements: find (filter, sort, skip, limit, projection), count, distinct.

use std::ops::Bound;

use bson::raw::RawDocument;
use bson::Bson;
use heed::RoTxn;
use serde_json::Value;

use super::{doc_key, raw_doc};
use crate::catalog::CollectionMeta;
use crate::doc::json::{json_from_bson, json_from_raw};
use crate::doc::{compare, values_equal, DocRef, ValRef};
use crate::error::Result;
use crate::keys::prefix_successor;
use crate::query::filter::{Filter, Op};
use crate::query::matcher::visit;
use crate::query::projection::Projection;
use crate::query::sort::SortSpec;
use crate::storage::{Store, Table};

/// A parsed find statement.
#[derive(Debug, Clone)]
pub struct Query {
    /// The filter.
    pub filter: Filter,
    /// The sort (empty: primary key order).
    pub sort: SortSpec,
    /// Documents to skip.
    pub skip: u64,
    /// Maximum number of documents to return.
    pub limit: Option<u64>,
    /// The projection.
    pub projection: Option<Projection>,
}

/// When the filter pins the primary key to one value, that value.
fn id_equality<'f>(filter: &'f Filter, id_field: &str) -> Option<&'f Bson> {
    match filter {
        Filter::Field {
            path,
            op: Op::Eq(v),
        } if path.parts().len() == 1
            && path.as_str() == id_field
            && !matches!(v, Bson::Array(_) | Bson::RegularExpression(_)) =>
        {
            Some(v)
        }
        Filter::And(items) => items.iter().find_map(|f| id_equality(f, id_field)),
        _ => None,
    }
}

/// Calls `f(key, document)` for each document matching `filter`, in primary-key
/// order, starting after `after` (exclusive) when given, until `f` returns false.
pub fn scan(
    store: &Store,
    txn: &RoTxn<'_>,
    meta: &CollectionMeta,
    filter: &Filter,
    after: Option<&[u8]>,
    f: &mut dyn FnMut(&[u8], &RawDocument) -> Result<bool>,
) -> Result<()> {
    let docs = store.table(Table::Docs);
    if let Some(id) = id_equality(filter, meta.id_field()) {
        let key = doc_key(meta, ValRef::from(id));
        if after.is_some_and(|a| a >= key.as_slice()) {
            return Ok(());
        }
        if let Some(bytes) = docs.get(txn, &key)? {
            let raw = raw_doc(bytes, meta)?;
            if filter.matches(DocRef::Raw(raw)) {
                f(&key, raw)?;
            }
        }
        return Ok(());
    }
    let prefix = meta.prefix();
    let end = prefix_successor(&prefix);
    let lower = match after {
        Some(a) => Bound::Excluded(a),
        None => Bound::Included(&prefix[..]),
    };
    let upper = match &end {
        Some(e) => Bound::Excluded(e.as_slice()),
        None => Bound::Unbounded,
    };
    for item in docs.range(txn, &(lower, upper))? {
        let (key, bytes) = item?;
        let raw = raw_doc(bytes, meta)?;
        if filter.matches(DocRef::Raw(raw)) && !f(key, raw)? {
            break;
        }
    }
    Ok(())
}

/// Renders a stored document for the caller, applying the projection.
pub fn render(raw: &RawDocument, projection: Option<&Projection>) -> Value {
    match projection {
        Some(p) => p.apply(DocRef::Raw(raw)),
        None => json_from_raw(raw),
    }
}

/// Runs a find statement to completion.
pub fn find(
    store: &Store,
    txn: &RoTxn<'_>,
    meta: &CollectionMeta,
    q: &Query,
) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    if q.sort.is_empty() {
        let mut skipped = 0u64;
        if q.limit == Some(0) {
            return Ok(out);
        }
        scan(store, txn, meta, &q.filter, None, &mut |_, raw| {
            if skipped < q.skip {
                skipped += 1;
                return Ok(true);
            }
            out.push(render(raw, q.projection.as_ref()));
            Ok(q.limit.is_none_or(|l| (out.len() as u64) < l))
        })?;
        return Ok(out);
    }
    let mut rows = Vec::new();
    scan(store, txn, meta, &q.filter, None, &mut |_, raw| {
        rows.push((q.sort.key_of(DocRef::Raw(raw)), raw.as_bytes().to_vec()));
        Ok(true)
    })?;
    // Stable: documents with equal sort keys stay in primary-key order.
    rows.sort_by(|a, b| q.sort.compare_keys(&a.0, &b.0));
    let skip = usize::try_from(q.skip).unwrap_or(usize::MAX);
    let take = q
        .limit
        .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    for (_, bytes) in rows.into_iter().skip(skip).take(take) {
        out.push(render(raw_doc(&bytes, meta)?, q.projection.as_ref()));
    }
    Ok(out)
}

/// Counts matching documents.
pub fn count(
    store: &Store,
    txn: &RoTxn<'_>,
    meta: &CollectionMeta,
    filter: &Filter,
) -> Result<u64> {
    let mut n = 0u64;
    scan(store, txn, meta, filter, None, &mut |_, _| {
        n += 1;
        Ok(true)
    })?;
    Ok(n)
}

/// The distinct values of `path` among matching documents (array elements
/// counted individually), in the query language's sort order.
pub fn distinct(
    store: &Store,
    txn: &RoTxn<'_>,
    meta: &CollectionMeta,
    path: &crate::doc::FieldPath,
    filter: &Filter,
) -> Result<Vec<Value>> {
    let mut values: Vec<Bson> = Vec::new();
    scan(store, txn, meta, filter, None, &mut |_, raw| {
        visit(ValRef::Document(DocRef::Raw(raw)), path.parts(), &mut |v| {
            match v {
                Some(ValRef::Array(a)) => values.extend(a.iter().map(|e| e.to_bson())),
                Some(other) => values.push(other.to_bson()),
                None => {}
            }
            false
        });
        Ok(true)
    })?;
    values.sort_by(|a, b| compare(&ValRef::from(a), &ValRef::from(b)));
    values.dedup_by(|a, b| values_equal(&ValRef::from(&*a), &ValRef::from(&*b)));
    Ok(values.iter().map(json_from_bson).collect())
}
