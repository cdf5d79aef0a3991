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
use super::readset::{RangeRec, ReadSet};
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
        let indexes = CompiledIndex::compile_all(&meta.indexes)?;
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

/// Where a read records what it saw: nowhere (`None`, outside transactions)
/// or in the enclosing transaction's read set.
pub type Reads<'r> = Option<&'r mut ReadSet>;

/// Walks `plan`, calling `f` for every document matching `filter`, in the
/// plan's order, each document once, recording the walk in `reads`.
#[allow(clippy::too_many_arguments)]
pub fn run(
    store: &Store,
    txn: &RoTxn<'_>,
    t: &Target,
    plan: &Plan,
    filter: &Filter,
    stats: &mut ExecStats,
    reads: &mut Reads<'_>,
    f: &mut Visit<'_>,
) -> Result<()> {
    let mut seen = plan.may_repeat(&t.indexes).then(HashSet::new);
    let mut walk = Walk {
        store,
        txn,
        t,
        filter,
        stats,
        seen: &mut seen,
        reads,
        f,
    };
    walk.access(&plan.access)?;
    Ok(())
}

/// One execution of a plan: what every access path needs.
struct Walk<'w, 'r, 'v> {
    store: &'w Store,
    txn: &'w RoTxn<'w>,
    t: &'w Target,
    filter: &'w Filter,
    stats: &'w mut ExecStats,
    seen: &'w mut Option<HashSet<Vec<u8>>>,
    reads: &'w mut Reads<'r>,
    f: &'w mut Visit<'v>,
}

impl Walk<'_, '_, '_> {
    /// Whether this walk meets `key` for the first time (always, on plans
    /// that cannot repeat a document).
    fn first_visit(&mut self, key: &[u8]) -> bool {
        match self.seen.as_mut() {
            Some(s) => s.insert(key.to_vec()),
            None => true,
        }
    }

    /// Examines one document read from a range of the documents table;
    /// false when the callback asked to stop.
    fn doc(&mut self, key: &[u8], bytes: &[u8]) -> Result<bool> {
        if !self.first_visit(key) {
            return Ok(true);
        }
        self.stats.docs_examined += 1;
        self.examine(key, bytes)
    }

    /// Tests one document read from the documents table against the filter
    /// and hands it on when it matches; false when the callback asked to stop.
    fn examine(&mut self, key: &[u8], bytes: &[u8]) -> Result<bool> {
        let raw = raw_doc(bytes, &self.t.meta)?;
        if self.filter.matches(DocRef::Raw(raw)) {
            return (self.f)(key, raw);
        }
        Ok(true)
    }

    /// Fetches the document with `key` (recording the lookup) and examines
    /// it — unless this walk met it already (a multikey index holds one
    /// entry per array element): duplicates are dropped before the fetch.
    fn fetch(&mut self, key: &[u8]) -> Result<bool> {
        if !self.first_visit(key) {
            return Ok(true);
        }
        let docs = self.store.table(Table::Docs);
        let bytes = docs.get(self.txn, key)?;
        if let Some(r) = self.reads.as_deref_mut() {
            r.doc(&self.t.meta, key, bytes);
        }
        match bytes {
            Some(b) => {
                // Counted where the fetch happens, so that explain shows any
                // document fetched twice.
                self.stats.docs_examined += 1;
                self.examine(key, b)
            }
            None => Ok(true),
        }
    }

    /// Returns false when the callback asked to stop.
    fn access(&mut self, access: &Access) -> Result<bool> {
        match access {
            Access::CollScan { reverse } => {
                let prefix = self.t.meta.prefix();
                let range = KeyRange {
                    lo: prefix.to_vec(),
                    hi: prefix_successor(&prefix),
                };
                self.docs(&[range], *reverse)
            }
            Access::IdRange { ranges, reverse } => self.docs(ranges, *reverse),
            Access::IdLookup { keys } => {
                for key in keys {
                    if !self.fetch(key)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Access::IndexScan {
                index,
                ranges,
                reverse,
                ties_ascending,
            } => self.index(*index, ranges, *reverse, *ties_ascending),
            Access::Union(plans) => {
                for p in plans {
                    if !self.access(&p.access)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        }
    }

    fn recorder(&self, index: Option<&str>, r: &KeyRange, reverse: bool) -> Option<RangeRec> {
        self.reads
            .is_some()
            .then(|| RangeRec::start(&self.t.meta, index, &r.lo, r.hi.as_deref(), reverse))
    }

    fn record(&mut self, rec: Option<RangeRec>) {
        if let (Some(reads), Some(rec)) = (self.reads.as_deref_mut(), rec) {
            reads.range(rec);
        }
    }

    /// Walks ranges of the documents table.
    fn docs(&mut self, ranges: &[KeyRange], reverse: bool) -> Result<bool> {
        let docs = self.store.table(Table::Docs);
        let order: Box<dyn Iterator<Item = &KeyRange>> = if reverse {
            Box::new(ranges.iter().rev())
        } else {
            Box::new(ranges.iter())
        };
        for r in order {
            let mut rec = self.recorder(None, r, reverse);
            let b = bounds(r);
            let iter: KvIter<'_> = if reverse {
                Box::new(docs.rev_range(self.txn, &b)?)
            } else {
                Box::new(docs.range(self.txn, &b)?)
            };
            let mut go_on = true;
            for item in iter {
                let (key, bytes) = item?;
                if let Some(rec) = rec.as_mut() {
                    rec.item(key, bytes);
                }
                if !self.doc(key, bytes)? {
                    go_on = false;
                    break;
                }
            }
            if go_on {
                if let Some(rec) = rec.as_mut() {
                    rec.complete();
                }
            }
            self.record(rec);
            if !go_on {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Walks ranges of a secondary index, fetching each entry's document.
    fn index(
        &mut self,
        index: usize,
        ranges: &[KeyRange],
        reverse: bool,
        ties_ascending: bool,
    ) -> Result<bool> {
        let entries = self.store.table(Table::Indexes);
        let name = self.t.indexes.get(index).map(|ix| ix.name.clone());
        let order: Box<dyn Iterator<Item = &KeyRange>> = if reverse {
            Box::new(ranges.iter().rev())
        } else {
            Box::new(ranges.iter())
        };
        let mut doc_key = self.t.meta.prefix().to_vec();
        // Entries with equal keys, buffered to be yielded in ascending
        // primary-key order during a backward walk.
        let mut group: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut rec: Option<RangeRec> = None;
        let mut go_on = true;
        'ranges: for r in order {
            self.record(rec.take());
            rec = self.recorder(name.as_deref(), r, reverse);
            let b = bounds(r);
            let iter: KvIter<'_> = if reverse {
                Box::new(entries.rev_range(self.txn, &b)?)
            } else {
                Box::new(entries.range(self.txn, &b)?)
            };
            for item in iter {
                let (key, pk) = item?;
                self.stats.keys_examined += 1;
                if let Some(rec) = rec.as_mut() {
                    rec.item(key, pk);
                }
                if !ties_ascending {
                    doc_key.truncate(4);
                    doc_key.extend_from_slice(pk);
                    if !self.fetch(&doc_key)? {
                        go_on = false;
                        break 'ranges;
                    }
                    continue;
                }
                let tie_key = &key[..key.len().saturating_sub(pk.len())];
                if group.first().is_some_and(|(k, _)| k.as_slice() != tie_key) {
                    for (_, g) in group.drain(..).rev() {
                        doc_key.truncate(4);
                        doc_key.extend_from_slice(&g);
                        if !self.fetch(&doc_key)? {
                            go_on = false;
                            break 'ranges;
                        }
                    }
                }
                group.push((tie_key.to_vec(), pk.to_vec()));
            }
            if let Some(rec) = rec.as_mut() {
                rec.complete();
            }
        }
        if go_on {
            for (_, g) in group.drain(..).rev() {
                doc_key.truncate(4);
                doc_key.extend_from_slice(&g);
                if !self.fetch(&doc_key)? {
                    go_on = false;
                    break;
                }
            }
        }
        self.record(rec);
        Ok(go_on)
    }
}

type KvIter<'a> = Box<dyn Iterator<Item = heed::Result<(&'a [u8], &'a [u8])>> + 'a>;

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
        &mut None,
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
    reads: &mut Reads<'_>,
) -> Result<(Vec<Value>, Option<Explain>)> {
    find_with(store, txn, t, q, explain, reads, &mut |raw| {
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
    reads: &mut Reads<'_>,
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
            reads,
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
            reads,
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
    reads: &mut Reads<'_>,
) -> Result<(u64, Option<Explain>)> {
    let none = SortSpec::default();
    let mut stats = ExecStats::default();
    let (plan, covered, n) = if matches!(filter, Filter::True) {
        let n = catalog::count(store, txn, Counter::Docs(t.meta.id))?;
        if let Some(r) = reads.as_deref_mut() {
            r.count(&t.meta, n);
        }
        (Plan::collscan(false, true, n), true, n)
    } else {
        let plan = t.plan(store, txn, filter, &none, None, explain)?;
        match &plan.access {
            Access::IndexScan { ranges, index, .. } if plan.exact => {
                let n = match reads.as_deref_mut() {
                    None => count_in(store, txn, Table::Indexes, ranges, u64::MAX)?,
                    Some(r) => record_index_ranges(store, txn, t, *index, ranges, r)?,
                };
                stats.keys_examined = n;
                (plan, true, n)
            }
            _ => {
                let mut n = 0u64;
                run(
                    store,
                    txn,
                    t,
                    &plan,
                    filter,
                    &mut stats,
                    reads,
                    &mut |_, _| {
                        n += 1;
                        Ok(true)
                    },
                )?;
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
    reads: &mut Reads<'_>,
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
        reads,
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

/// Counts the entries of index ranges while recording them in a read set.
fn record_index_ranges(
    store: &Store,
    txn: &RoTxn<'_>,
    t: &Target,
    index: usize,
    ranges: &[KeyRange],
    reads: &mut ReadSet,
) -> Result<u64> {
    let name = t.indexes.get(index).map(|ix| ix.name.as_str());
    let entries = store.table(Table::Indexes);
    let mut n = 0;
    for r in ranges {
        let mut rec = RangeRec::start(&t.meta, name, &r.lo, r.hi.as_deref(), false);
        for item in entries.range(txn, &bounds(r))? {
            let (k, v) = item?;
            rec.item(k, v);
            n += 1;
        }
        rec.complete();
        reads.range(rec);
    }
    Ok(n)
}
