//! Read statements: find (filter, sort, skip, limit, projection), count and
//! distinct, each planned (see [`crate::plan`]) and then executed: walk the
//! chosen access path, fetch documents, re-check the full filter, then sort,
//! skip, limit and project.

use std::collections::HashSet;
use std::ops::Bound;

use bson::raw::RawDocument;
use bson::Bson;
use heed::RoTxn;
use serde_json::Value;

use super::raw_doc;
use crate::catalog::{self, CollectionMeta, Counter};
use crate::doc::json::{json_from_bson, json_from_raw};
use crate::doc::{compare, values_equal, DocRef, FieldPath, ValRef};
use crate::error::Result;
use crate::index::spec::CompiledIndex;
use crate::keys::prefix_successor;
use crate::plan::choose::count_in;
use crate::plan::choose::Request;
use crate::plan::{choose, Access, ExecStats, Explain, KeyRange, Plan};
use crate::query::filter::Filter;
use crate::query::matcher::visit;
use crate::query::projection::Projection;
use crate::query::sort::SortSpec;
use crate::storage::{Store, Table};

/// A parsed find statement.
#[derive(Debug, Clone)]
pub struct Query {
    /// The filter.
    pub filter: Filter,
    /// The sort (empty: primary-key order).
    pub sort: SortSpec,
    /// Documents to skip.
    pub skip: u64,
    /// Maximum number of documents to return.
    pub limit: Option<u64>,
    /// The projection.
    pub projection: Option<Projection>,
}

/// A collection prepared for reading: definition and compiled indexes.
#[derive(Debug, Clone)]
pub struct Target {
    /// The definition.
    pub meta: CollectionMeta,
    /// Its indexes.
    pub indexes: Vec<CompiledIndex>,
}

impl Target {
    /// Compiles the collection's indexes.
    pub fn new(meta: CollectionMeta) -> Result<Target> {
        let indexes = CompiledIndex::compile_all(&meta)?;
        Ok(Target { meta, indexes })
    }

    /// Plans a statement.
    pub fn plan(
        &self,
        store: &Store,
        txn: &RoTxn<'_>,
        filter: &Filter,
        sort: &SortSpec,
        want: Option<u64>,
        explain: bool,
    ) -> Result<Plan> {
        choose(
            store,
            txn,
            &Request {
                meta: &self.meta,
                indexes: &self.indexes,
                filter,
                sort,
                want,
                explain,
            },
        )
    }
}

/// The callback of [`run`]: a document's key and bytes; return false to stop.
pub type Visit<'v> = dyn FnMut(&[u8], &RawDocument) -> Result<bool> + 'v;

fn bounds(r: &KeyRange) -> (Bound<&[u8]>, Bound<&[u8]>) {
    (
        Bound::Included(r.lo.as_slice()),
        match &r.hi {
            Some(h) => Bound::Excluded(h.as_slice()),
            None => Bound::Unbounded,
        },
    )
}

/// Walks `plan`, calling `f` for every document matching `filter`, in the
/// plan's order, each document once.
pub fn run(
    store: &Store,
    txn: &RoTxn<'_>,
    t: &Target,
    plan: &Plan,
    filter: &Filter,
    stats: &mut ExecStats,
    f: &mut Visit<'_>,
) -> Result<()> {
    let mut seen = plan.may_repeat(&t.indexes).then(HashSet::new);
    run_access(store, txn, t, &plan.access, filter, stats, &mut seen, f)?;
    Ok(())
}

/// Returns false when the callback asked to stop.
#[allow(clippy::too_many_arguments)]
fn run_access(
    store: &Store,
    txn: &RoTxn<'_>,
    t: &Target,
    access: &Access,
    filter: &Filter,
    stats: &mut ExecStats,
    seen: &mut Option<HashSet<Vec<u8>>>,
    f: &mut Visit<'_>,
) -> Result<bool> {
    let docs = store.table(Table::Docs);
    let mut visit_doc = |key: &[u8], bytes: &[u8], stats: &mut ExecStats| -> Result<bool> {
        if let Some(s) = seen.as_mut() {
            if !s.insert(key.to_vec()) {
                return Ok(true);
            }
        }
        stats.docs_examined += 1;
        let raw = raw_doc(bytes, &t.meta)?;
        if filter.matches(DocRef::Raw(raw)) {
            return f(key, raw);
        }
        Ok(true)
    };
    match access {
        Access::CollScan { reverse } => {
            let prefix = t.meta.prefix();
            let range = KeyRange {
                lo: prefix.to_vec(),
                hi: prefix_successor(&prefix),
            };
            walk_docs(store, txn, &[range], *reverse, stats, &mut visit_doc)
        }
        Access::IdRange { ranges, reverse } => {
            walk_docs(store, txn, ranges, *reverse, stats, &mut visit_doc)
        }
        Access::IdLookup { keys } => {
            for key in keys {
                if let Some(bytes) = docs.get(txn, key)? {
                    if !visit_doc(key, bytes, stats)? {
                        return Ok(false);
                    }
                }
            }
            Ok(true)
        }
        Access::IndexScan {
            ranges,
            reverse,
            ties_ascending,
            ..
        } => {
            let entries = store.table(Table::Indexes);
            let order: Box<dyn Iterator<Item = &KeyRange>> = if *reverse {
                Box::new(ranges.iter().rev())
            } else {
                Box::new(ranges.iter())
            };
            let mut doc_key = t.meta.prefix().to_vec();
            let mut visit_pk = |pk: &[u8], stats: &mut ExecStats| -> Result<bool> {
                doc_key.truncate(4);
                doc_key.extend_from_slice(pk);
                match docs.get(txn, &doc_key)? {
                    Some(bytes) => visit_doc(&doc_key, bytes, stats),
                    None => Ok(true),
                }
            };
            // Entries with equal keys, buffered to be yielded in ascending
            // primary-key order during a backward walk.
            let mut group: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            for r in order {
                let b = bounds(r);
                let iter: KvIter<'_> = if *reverse {
                    Box::new(entries.rev_range(txn, &b)?)
                } else {
                    Box::new(entries.range(txn, &b)?)
                };
                for item in iter {
                    let (key, pk) = item?;
                    stats.keys_examined += 1;
                    if !*ties_ascending {
                        if !visit_pk(pk, stats)? {
                            return Ok(false);
                        }
                        continue;
                    }
                    let tie_key = &key[..key.len().saturating_sub(pk.len())];
                    if group.first().is_some_and(|(k, _)| k.as_slice() != tie_key) {
                        for (_, g) in group.drain(..).rev() {
                            if !visit_pk(&g, stats)? {
                                return Ok(false);
                            }
                        }
                    }
                    group.push((tie_key.to_vec(), pk.to_vec()));
                }
            }
            for (_, g) in group.drain(..).rev() {
                if !visit_pk(&g, stats)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Access::Union(plans) => {
            for p in plans {
                if !run_access(store, txn, t, &p.access, filter, stats, seen, f)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    }
}

type KvIter<'a> = Box<dyn Iterator<Item = heed::Result<(&'a [u8], &'a [u8])>> + 'a>;

type DocVisitor<'a> = dyn FnMut(&[u8], &[u8], &mut ExecStats) -> Result<bool> + 'a;

fn walk_docs(
    store: &Store,
    txn: &RoTxn<'_>,
    ranges: &[KeyRange],
    reverse: bool,
    stats: &mut ExecStats,
    visit_doc: &mut DocVisitor<'_>,
) -> Result<bool> {
    let docs = store.table(Table::Docs);
    let order: Box<dyn Iterator<Item = &KeyRange>> = if reverse {
        Box::new(ranges.iter().rev())
    } else {
        Box::new(ranges.iter())
    };
    for r in order {
        let b = bounds(r);
        let iter: KvIter<'_> = if reverse {
            Box::new(docs.rev_range(txn, &b)?)
        } else {
            Box::new(docs.range(txn, &b)?)
        };
        for item in iter {
            let (key, bytes) = item?;
            if !visit_doc(key, bytes, stats)? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Calls `f(key, document)` for each document matching `filter`, in
/// primary-key order, starting after `after` (exclusive) when given, until `f`
/// returns false. A plain collection scan: used by streaming iterators.
pub fn scan_collection(
    store: &Store,
    txn: &RoTxn<'_>,
    meta: &CollectionMeta,
    filter: &Filter,
    after: Option<&[u8]>,
    f: &mut Visit<'_>,
) -> Result<()> {
    store.scan_prefix(
        txn,
        Table::Docs,
        &meta.prefix(),
        after,
        &mut |key, bytes| {
            let raw = raw_doc(bytes, meta)?;
            if filter.matches(DocRef::Raw(raw)) {
                return f(key, raw);
            }
            Ok(true)
        },
    )
}

/// Renders a stored document for the caller, applying the projection.
pub fn render(raw: &RawDocument, projection: Option<&Projection>) -> Value {
    match projection {
        Some(p) => p.apply(DocRef::Raw(raw)),
        None => json_from_raw(raw),
    }
}

/// Every matching document (key and bytes) in primary-key order, or just the
/// first one in that order.
pub fn matching_keys(
    store: &Store,
    txn: &RoTxn<'_>,
    t: &Target,
    filter: &Filter,
    first_only: bool,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let none = SortSpec::default();
    let plan = t.plan(store, txn, filter, &none, first_only.then_some(1), false)?;
    let mut out = Vec::new();
    let stop_early = first_only && plan.ordered;
    run(
        store,
        txn,
        t,
        &plan,
        filter,
        &mut ExecStats::default(),
        &mut |k, raw| {
            out.push((k.to_vec(), raw.as_bytes().to_vec()));
            Ok(!stop_early)
        },
    )?;
    if !plan.ordered {
        out.sort_by(|a, b| a.0.cmp(&b.0));
    }
    if first_only {
        out.truncate(1);
    }
    Ok(out)
}

/// Runs a find statement to completion; returns the results and the explain.
pub fn find(
    store: &Store,
    txn: &RoTxn<'_>,
    t: &Target,
    q: &Query,
    explain: bool,
) -> Result<(Vec<Value>, Option<Explain>)> {
    find_with(store, txn, t, q, explain, &mut |raw| {
        Ok(render(raw, q.projection.as_ref()))
    })
}

/// Runs a find statement, turning each result document into an `R` with `emit`
/// (the projection, if any, is `emit`'s business).
pub fn find_with<R>(
    store: &Store,
    txn: &RoTxn<'_>,
    t: &Target,
    q: &Query,
    explain: bool,
    emit: &mut dyn FnMut(&RawDocument) -> Result<R>,
) -> Result<(Vec<R>, Option<Explain>)> {
    let want = q.limit.map(|l| l.saturating_add(q.skip));
    let plan = t.plan(store, txn, &q.filter, &q.sort, want, explain)?;
    let mut stats = ExecStats::default();
    let mut out = Vec::new();
    if plan.ordered {
        let mut skipped = 0u64;
        run(
            store,
            txn,
            t,
            &plan,
            &q.filter,
            &mut stats,
            &mut |_, raw| {
                if skipped < q.skip {
                    skipped += 1;
                    return Ok(true);
                }
                out.push(emit(raw)?);
                Ok(q.limit.is_none_or(|l| (out.len() as u64) < l))
            },
        )?;
    } else {
        let mut rows: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        run(
            store,
            txn,
            t,
            &plan,
            &q.filter,
            &mut stats,
            &mut |k, raw| {
                rows.push((k.to_vec(), raw.as_bytes().to_vec()));
                Ok(true)
            },
        )?;
        // Primary-key order first, so that equal sort keys keep it (stable sort).
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        if !q.sort.is_empty() {
            let mut keyed = rows
                .into_iter()
                .map(|(k, bytes)| {
                    let sk = q.sort.key_of(DocRef::Raw(raw_doc(&bytes, &t.meta)?));
                    Ok((sk, k, bytes))
                })
                .collect::<Result<Vec<_>>>()?;
            keyed.sort_by(|a, b| q.sort.compare_keys(&a.0, &b.0));
            rows = keyed.into_iter().map(|(_, k, b)| (k, b)).collect();
        }
        let skip = usize::try_from(q.skip).unwrap_or(usize::MAX);
        let take = q
            .limit
            .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        for (_, bytes) in rows.into_iter().skip(skip).take(take) {
            out.push(emit(raw_doc(&bytes, &t.meta)?)?);
        }
    }
    stats.returned = out.len() as u64;
    let explained = explain.then(|| {
        let mut e = Explain::of(&plan, !q.sort.is_empty());
        e.stats = stats;
        e
    });
    Ok((out, explained))
}

/// Counts matching documents; returns the count and the explain.
pub fn count(
    store: &Store,
    txn: &RoTxn<'_>,
    t: &Target,
    filter: &Filter,
    explain: bool,
) -> Result<(u64, Option<Explain>)> {
    let none = SortSpec::default();
    let mut stats = ExecStats::default();
    let (plan, covered, n) = if matches!(filter, Filter::True) {
        let n = catalog::count(store, txn, Counter::Docs(t.meta.id))?;
        (Plan::collscan(false, true, n), true, n)
    } else {
        let plan = t.plan(store, txn, filter, &none, None, explain)?;
        match &plan.access {
            Access::IndexScan { ranges, .. } if plan.exact => {
                let n = count_in(store, txn, Table::Indexes, ranges, u64::MAX)?;
                stats.keys_examined = n;
                (plan, true, n)
            }
            _ => {
                let mut n = 0u64;
                run(store, txn, t, &plan, filter, &mut stats, &mut |_, _| {
                    n += 1;
                    Ok(true)
                })?;
                (plan, false, n)
            }
        }
    };
    stats.returned = n;
    let explained = explain.then(|| {
        let mut e = Explain::of(&plan, false);
        e.covered = covered;
        e.stats = stats;
        e
    });
    Ok((n, explained))
}

/// The distinct values of `path` among matching documents (array elements
/// counted individually), in the query language's sort order.
pub fn distinct(
    store: &Store,
    txn: &RoTxn<'_>,
    t: &Target,
    path: &FieldPath,
    filter: &Filter,
) -> Result<Vec<Value>> {
    let none = SortSpec::default();
    let plan = t.plan(store, txn, filter, &none, None, false)?;
    // Equal values of different types (1 and 1.0) keep the first one seen in
    // primary-key order, whatever the access path.
    let mut per_doc: Vec<(Vec<u8>, Vec<Bson>)> = Vec::new();
    run(
        store,
        txn,
        t,
        &plan,
        filter,
        &mut ExecStats::default(),
        &mut |key, raw| {
            let mut values = Vec::new();
            visit(ValRef::Document(DocRef::Raw(raw)), path.parts(), &mut |v| {
                match v {
                    Some(ValRef::Array(a)) => values.extend(a.iter().map(|e| e.to_bson())),
                    Some(other) => values.push(other.to_bson()),
                    None => {}
                }
                false
            });
            per_doc.push((key.to_vec(), values));
            Ok(true)
        },
    )?;
    if !plan.ordered {
        per_doc.sort_by(|a, b| a.0.cmp(&b.0));
    }
    let mut values: Vec<Bson> = per_doc.into_iter().flat_map(|(_, v)| v).collect();
    values.sort_by(|a, b| compare(&ValRef::from(a), &ValRef::from(b)));
    values.dedup_by(|a, b| values_equal(&ValRef::from(&*a), &ValRef::from(&*b)));
    Ok(values.iter().map(json_from_bson).collect())
}
