//! Candidate plans and the choice between them.
//!
//! Cost rules (simple and predictable):
//! - an equality or `$in` on the primary key is a point lookup and always wins;
//! - every secondary index whose leading field is constrained yields a
//!   candidate; its estimate is the number of entries inside its bounds,
//!   counted up to [`PROBE_CAP`] (a unique index with equality on every field
//!   is estimated without probing); when the probe hits the cap the estimate is
//!   half the index's entry count (kept current by every write);
//! - an index (or the primary key order) that already yields the requested sort
//!   costs at most `skip + limit` when a limit is given, because the walk stops early;
//! - `$or` becomes a union of its branches' plans when every branch has one;
//! - the collection scan costs the collection's document count (or `skip + limit`
//!   when there is no filter and its order suits the sort);
//! - the cheapest plan wins; ties prefer point lookups, then indexes, then scans.

use std::collections::HashMap;

use heed::RoTxn;

use super::bounds::{combine, derive, Derived, FieldBounds};
use super::{Access, KeyRange, Plan};
use crate::catalog::{self, CollectionMeta, Counter};
use crate::error::Result;
use crate::index::spec::CompiledIndex;
use crate::keys::prefix_successor;
use crate::query::filter::{Filter, Op};
use crate::query::sort::SortSpec;
use crate::storage::{Store, Table};

/// Entries counted at most when estimating an index candidate.
pub const PROBE_CAP: u64 = 200;

/// Most point combinations a compound index expands to before the remaining
/// fields are left unbounded.
const MAX_POINTS: usize = 4096;

/// What the planner needs to know about the statement.
pub struct Request<'a> {
    /// The collection.
    pub meta: &'a CollectionMeta,
    /// Its indexes, compiled.
    pub indexes: &'a [CompiledIndex],
    /// The filter.
    pub filter: &'a Filter,
    /// The sort (empty: primary-key order is wanted).
    pub sort: &'a SortSpec,
    /// `skip + limit` when a limit is given.
    pub want: Option<u64>,
    /// Describe bounds for explain (costs formatting).
    pub explain: bool,
}

fn conjuncts<'f>(f: &'f Filter, out: &mut Vec<&'f Filter>) {
    match f {
        Filter::And(items) => items.iter().for_each(|i| conjuncts(i, out)),
        Filter::True => {}
        other => out.push(other),
    }
}

fn by_path<'f>(clauses: &[&'f Filter]) -> HashMap<&'f str, Vec<(usize, &'f Op)>> {
    let mut map: HashMap<&str, Vec<(usize, &Op)>> = HashMap::new();
    for (i, c) in clauses.iter().enumerate() {
        if let Filter::Field { path, op } = c {
            map.entry(path.as_str()).or_default().push((i, op));
        }
    }
    map
}

fn key(f: &Filter) -> String {
    format!("{f:?}")
}

/// Chooses a plan for the request.
pub fn choose(store: &Store, txn: &RoTxn<'_>, req: &Request<'_>) -> Result<Plan> {
    let mut candidates = Vec::new();
    let mut clauses = Vec::new();
    conjuncts(req.filter, &mut clauses);
    let groups = by_path(&clauses);

    if let Some(p) = id_plan(store, txn, req, &groups)? {
        candidates.push(p);
    }
    for pos in 0..req.indexes.len() {
        if let Some(p) = index_plan(store, txn, req, pos, &clauses, &groups)? {
            candidates.push(p);
        }
    }
    if let Some(p) = union_plan(store, txn, req, &clauses)? {
        candidates.push(p);
    }
    // A lookup of at most one key beats any scan: no need to count documents.
    if let Some(pos) = candidates.iter().position(|p| {
        p.estimate <= 1 && matches!(p.access, Access::IdLookup { .. } | Access::IndexScan { .. })
    }) {
        return Ok(candidates.swap_remove(pos));
    }
    let docs = catalog::count(store, txn, Counter::Docs(req.meta.id))?;
    let scan_order = collscan_order(req);
    let scan_cost = match (clauses.is_empty(), scan_order, req.want) {
        (true, Some(_), Some(w)) => w.min(docs),
        _ => docs,
    };
    let mut best = Plan::collscan(scan_order.unwrap_or(false), scan_order.is_some(), scan_cost);
    let mut best_cost = (scan_cost, 3u8);
    for p in candidates {
        let rank = match &p.access {
            Access::IdLookup { .. } => 0,
            Access::IdRange { .. } | Access::IndexScan { .. } => 1,
            _ => 2,
        };
        let mut cost = p.estimate;
        if p.ordered {
            if let Some(w) = req.want {
                cost = cost.min(w);
            }
        }
        if (cost, rank) < best_cost {
            best_cost = (cost, rank);
            best = p;
        }
    }
    Ok(best)
}

/// `Some(reverse)` when a primary-key walk yields the requested order.
fn collscan_order(req: &Request<'_>) -> Option<bool> {
    match req.sort.fields.as_slice() {
        [] => Some(false),
        [f] if f.path.as_str() == req.meta.id_field() => Some(f.descending),
        _ => None,
    }
}

/// Counts entries of `table` inside `ranges`, stopping at `cap`.
pub fn count_in(
    store: &Store,
    txn: &RoTxn<'_>,
    table: Table,
    ranges: &[KeyRange],
    cap: u64,
) -> Result<u64> {
    let db = store.table(table);
    let mut n = 0;
    for r in ranges {
        let upper = match &r.hi {
            Some(h) => std::ops::Bound::Excluded(h.as_slice()),
            None => std::ops::Bound::Unbounded,
        };
        for item in db.range(txn, &(std::ops::Bound::Included(r.lo.as_slice()), upper))? {
            item?;
            n += 1;
            if n >= cap {
                return Ok(n);
            }
        }
    }
    Ok(n)
}

fn derive_all(
    ops: &[(usize, &Op)],
    desc: bool,
    sparse: bool,
    multikey: bool,
    explain: bool,
) -> Option<(Derived, Vec<usize>)> {
    let mut used = Vec::new();
    let mut all = Vec::new();
    for (i, op) in ops {
        if let Some(d) = derive(op, desc, sparse, explain) {
            used.push(*i);
            all.push(d);
            if multikey {
                break;
            }
        }
    }
    combine(all, multikey).map(|d| (d, used))
}

fn with_prefix(prefix: &[u8], b: &[u8]) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(b);
    k
}

/// Turns per-field bounds into key ranges under `prefix`.
fn ranges_from(prefix: &[u8], fields: &[FieldBounds]) -> Vec<KeyRange> {
    let mut points: Vec<Vec<u8>> = vec![prefix.to_vec()];
    for fb in fields {
        match fb {
            FieldBounds::Points(ps) => {
                if points.len().saturating_mul(ps.len()) > MAX_POINTS {
                    break;
                }
                points = points
                    .iter()
                    .flat_map(|p| ps.iter().map(move |x| with_prefix(p, x)))
                    .collect();
            }
            FieldBounds::Range(iv) => {
                return points
                    .iter()
                    .map(|p| KeyRange {
                        lo: with_prefix(p, &iv.lo),
                        hi: match &iv.hi {
                            Some(h) => Some(with_prefix(p, h)),
                            None => prefix_successor(p),
                        },
                    })
                    .collect();
            }
        }
    }
    points
        .into_iter()
        .map(|p| KeyRange {
            hi: prefix_successor(&p),
            lo: p,
        })
        .collect()
}

fn id_plan(
    store: &Store,
    txn: &RoTxn<'_>,
    req: &Request<'_>,
    groups: &HashMap<&str, Vec<(usize, &Op)>>,
) -> Result<Option<Plan>> {
    let Some(ops) = groups.get(req.meta.id_field()) else {
        return Ok(None);
    };
    let Some((d, _)) = derive_all(ops, false, false, false, req.explain) else {
        return Ok(None);
    };
    let prefix = req.meta.prefix();
    let bounds = if req.explain {
        vec![(req.meta.id_field().to_owned(), d.describe.clone())]
    } else {
        Vec::new()
    };
    let order = collscan_order(req);
    Ok(Some(match d.bounds {
        FieldBounds::Points(ps) => {
            let keys: Vec<Vec<u8>> = ps.iter().map(|p| with_prefix(&prefix, p)).collect();
            Plan {
                estimate: keys.len() as u64,
                access: Access::IdLookup { keys },
                ordered: order == Some(false),
                exact: false,
                bounds,
                index_name: Some(format!("{}_", req.meta.id_field())),
            }
        }
        FieldBounds::Range(_) => {
            let ranges = ranges_from(&prefix, &[d.bounds]);
            let estimate = count_in(store, txn, Table::Docs, &ranges, PROBE_CAP)?;
            Plan {
                estimate,
                access: Access::IdRange {
                    ranges,
                    reverse: order == Some(true),
                },
                ordered: order.is_some(),
                exact: false,
                bounds,
                index_name: Some(format!("{}_", req.meta.id_field())),
            }
        }
    }))
}

/// True when every top-level clause of the partial filter appears among the
/// query's top-level clauses, so every matching document is in the index.
fn implies(partial: &Filter, clauses: &[&Filter]) -> bool {
    let mut needed = Vec::new();
    conjuncts(partial, &mut needed);
    let have: Vec<String> = clauses.iter().map(|c| key(c)).collect();
    needed.iter().all(|n| have.contains(&key(n)))
}

fn index_plan(
    store: &Store,
    txn: &RoTxn<'_>,
    req: &Request<'_>,
    pos: usize,
    clauses: &[&Filter],
    groups: &HashMap<&str, Vec<(usize, &Op)>>,
) -> Result<Option<Plan>> {
    let ix = &req.indexes[pos];
    let spec = &ix.meta.spec;
    let mut consumed: std::collections::BTreeSet<usize> = std::collections::BTreeSet::new();
    if let Some(pf) = &ix.partial {
        if !implies(pf, clauses) {
            return Ok(None);
        }
        let mut needed = Vec::new();
        conjuncts(pf, &mut needed);
        let needed: Vec<String> = needed.iter().map(|n| key(n)).collect();
        consumed.extend(
            clauses
                .iter()
                .enumerate()
                .filter(|(_, c)| needed.contains(&key(c)))
                .map(|(i, _)| i),
        );
    }
    let multikey = ix.meta.multikey;
    let mut field_bounds = Vec::new();
    let mut describe = Vec::new();
    let mut exact = !multikey;
    let mut single_points = 0usize;
    let mut counting_points = true;
    for (path, desc) in &ix.fields {
        let Some(ops) = groups.get(path.as_str()) else {
            break;
        };
        let Some((d, used)) = derive_all(ops, *desc, spec.sparse, multikey, req.explain) else {
            break;
        };
        exact &= d.exact && used.len() == ops.len();
        consumed.extend(used);
        if req.explain {
            describe.push((path.to_string(), d.describe.clone()));
        }
        let is_range = matches!(d.bounds, FieldBounds::Range(_));
        if counting_points {
            match &d.bounds {
                FieldBounds::Points(p) if p.len() == 1 => single_points += 1,
                _ => counting_points = false,
            }
        }
        field_bounds.push(d.bounds);
        if is_range {
            break;
        }
    }
    let prefix = ix.meta.prefix();
    let sort_walk = sort_order(req, ix, single_points);
    let sort_reverse = sort_walk.map(|(r, _)| r);
    if field_bounds.is_empty() {
        // No predicate on the leading field: usable only to deliver the sort,
        // and only if every document is in the index.
        if spec.sparse || sort_reverse.is_none() || req.sort.is_empty() {
            return Ok(None);
        }
    }
    // Expanding point combinations is capped; bounds beyond the cap are not
    // applied (the remaining fields are scanned), so they are no longer exact.
    let mut combos = 1usize;
    for (i, fb) in field_bounds.iter().enumerate() {
        if let FieldBounds::Points(p) = fb {
            combos = combos.saturating_mul(p.len().max(1));
            if combos > MAX_POINTS {
                field_bounds.truncate(i);
                exact = false;
                break;
            }
        }
    }
    let ranges = ranges_from(&prefix, &field_bounds);
    exact &= consumed.len() == clauses.len() && ranges.len() <= 1 && !field_bounds.is_empty();
    let all_points = single_points == ix.fields.len();
    let ordered = match sort_reverse {
        Some(_) if !req.sort.is_empty() => !multikey,
        _ => req.sort.is_empty() && !multikey && all_points && ranges.len() == 1,
    };
    let estimate = if spec.unique && all_points {
        1
    } else if let (true, Some(w)) = (ordered, req.want) {
        // The walk stops after `want` matches; no need to count.
        w
    } else {
        let n = count_in(store, txn, Table::Indexes, &ranges, PROBE_CAP)?;
        if n >= PROBE_CAP {
            // Unknown beyond the probe: assume each bounded field halves the index.
            let entries = catalog::count(store, txn, Counter::Entries(ix.meta.id))?;
            let shift = field_bounds.len().clamp(1, 16) as u32;
            (entries >> shift).max(PROBE_CAP)
        } else {
            n
        }
    };
    Ok(Some(Plan {
        access: Access::IndexScan {
            index: pos,
            ranges,
            reverse: sort_reverse.unwrap_or(false) && ordered,
            // Walking backwards, entries with equal keys come in descending
            // primary-key order; restore ascending order unless the sort asks
            // for the primary key descending.
            ties_ascending: sort_walk.is_some_and(|(r, id_tail)| r && !id_tail)
                && ordered
                && !spec.unique,
        },
        ordered,
        exact,
        bounds: describe,
        index_name: Some(ix.name.clone()),
        estimate,
    }))
}

/// `Some(reverse)` when walking the index yields the requested sort, given that
/// the first `eq_prefix` fields are pinned to one value each.
/// Returns `(reverse, id_tail)`: whether to walk backwards and whether the sort
/// ends with an explicit primary-key field.
fn sort_order(req: &Request<'_>, ix: &CompiledIndex, eq_prefix: usize) -> Option<(bool, bool)> {
    if req.sort.is_empty() || ix.meta.multikey {
        return None;
    }
    let pinned: Vec<&str> = ix.fields[..eq_prefix]
        .iter()
        .map(|(p, _)| p.as_str())
        .collect();
    let mut sort = req.sort.fields.iter().peekable();
    while sort
        .peek()
        .is_some_and(|f| pinned.contains(&f.path.as_str()))
    {
        sort.next();
    }
    let mut reverse: Option<bool> = None;
    let mut id_tail = false;
    let mut fields = ix.fields[eq_prefix..].iter();
    for f in sort {
        match fields.next() {
            Some((path, desc)) if path == &f.path => {
                let r = f.descending != *desc;
                if *reverse.get_or_insert(r) != r {
                    return None;
                }
            }
            // A trailing primary key: entries of a non-unique index end with it.
            None if f.path.as_str() == req.meta.id_field() && !ix.meta.spec.unique && !id_tail => {
                id_tail = true;
                let r = f.descending;
                if *reverse.get_or_insert(r) != r {
                    return None;
                }
            }
            _ => return None,
        }
    }
    // Equal sort keys must keep primary-key order: that holds only when no
    // further index field orders the ties (entries end with the primary key).
    if fields.next().is_some() {
        return None;
    }
    Some((reverse.unwrap_or(false), id_tail))
}

fn union_plan(
    store: &Store,
    txn: &RoTxn<'_>,
    req: &Request<'_>,
    clauses: &[&Filter],
) -> Result<Option<Plan>> {
    let Some(Filter::Or(branches)) = clauses.iter().find(|c| matches!(c, Filter::Or(_))) else {
        return Ok(None);
    };
    let none = SortSpec::default();
    let mut plans = Vec::new();
    let mut estimate = 0u64;
    for b in branches {
        let sub = Request {
            meta: req.meta,
            indexes: req.indexes,
            filter: b,
            sort: &none,
            want: None,
            explain: req.explain,
        };
        let p = choose(store, txn, &sub)?;
        if matches!(p.access, Access::CollScan { .. }) {
            return Ok(None);
        }
        estimate = estimate.saturating_add(p.estimate);
        plans.push(p);
    }
    Ok(Some(Plan {
        access: Access::Union(plans),
        ordered: false,
        exact: false,
        bounds: Vec::new(),
        index_name: None,
        estimate,
    }))
}
