//! The unit of work's flush.
//!
//! 1. **Cascade persist.** Entities attached to references declared
//!    `cascade(persist)` (of new or touched entities) that this context does
//!    not manage yet are persisted, transitively.
//! 2. **Change sets.** New entities become inserts. Every entity changed
//!    through [`crate::Managed::write`] is diffed against its snapshot (what
//!    was loaded, or last flushed); nothing changed, nothing written;
//!    otherwise one update of `$set`/`$unset` on the changed paths, filtered
//!    by primary key (and version, when the type has a `#[document(version)]`
//!    field, which the update increments) and required to match exactly one
//!    document. Removed entities become deletes (version-checked likewise)
//!    that follow `cascade(remove)` relations inside the transaction.
//!    In [`crate::EntityManager::transactional`], unchanged versioned entities
//!    add a check that their version is still the one read.
//! 3. **Order.** Inserts are ordered so that an entity comes after the new
//!    entities it references (then in persist order; a reference cycle keeps
//!    persist order); then updates and checks in load order; then deletes,
//!    referrers before what they reference.
//! 4. **One transaction.** The statement list runs as one driver batch: every
//!    statement, or none. A failure maps back to the entity it concerns
//!    ([`OrmError::OptimisticLock`], [`OrmError::Missing`]); the context is then
//!    left as it was, so the caller can reload, retry or [`clear`](crate::EntityManager::clear).
//! 5. **Afterwards** snapshots become what was written, versions are bumped
//!    in the instances, removed (and cascade-deleted) entities leave the
//!    identity map.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{json, Value};
use tracing::Instrument;

use super::diff::diff;
use super::{Context, EntityManager, Entry, Key, State};
use crate::driver::{CascadeRule, Expect, OpOutcome, WriteOp};
use crate::entity::{Snapshot, Tracked};
use crate::error::{OrmError, Result};

/// What a flush wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Documents inserted.
    pub inserted: usize,
    /// Documents updated.
    pub updated: usize,
    /// Documents deleted, cascades included.
    pub deleted: usize,
    /// Versions validated (in [`EntityManager::transactional`]).
    pub checked: usize,
}

/// What a statement of the batch is for.
enum Target {
    Insert {
        key: Key,
        image: Value,
    },
    Update {
        key: Key,
        image: Value,
        version: Option<i64>,
    },
    Delete {
        key: Key,
        version: Option<i64>,
    },
    Check {
        key: Key,
        version: i64,
    },
}

/// A new or removed entity with its image, waiting to be ordered.
type Pending = (Key, Arc<dyn Tracked>, Value);

struct Plan {
    ops: Vec<WriteOp>,
    targets: Vec<Target>,
    /// Touched entities whose diff was empty.
    unchanged: Vec<Key>,
}

fn version_of(image: &Value, field: &str) -> Option<i64> {
    image.get(field).and_then(Value::as_i64)
}

fn snapshot_version(s: &Snapshot, field: &str) -> Option<i64> {
    match s {
        Snapshot::Raw(doc) => match doc.get(field).ok().flatten()? {
            bson::RawBsonRef::Int32(i) => Some(i64::from(i)),
            bson::RawBsonRef::Int64(i) => Some(i),
            _ => None,
        },
        Snapshot::Json(v) => version_of(v, field),
    }
}

/// Persists, transitively, the cascade-persist targets of new and touched entities.
fn cascade_persist(ctx: &mut Context) -> Result<()> {
    let mut work: Vec<Arc<dyn Tracked>> = ctx
        .entries
        .values()
        .filter(|e| matches!(e.state, State::New) || e.handle.touched())
        .map(|e| e.handle.clone())
        .collect();
    while let Some(h) = work.pop() {
        for t in h.cascade_persist_targets() {
            t.ensure_id()?;
            let key = t.key()?;
            match ctx.entries.get(&key) {
                Some(e) if e.handle.same(t.as_any()) => {}
                Some(_) => {
                    return Err(OrmError::IdentityConflict {
                        collection: t.collection_name().to_owned(),
                        id: key.1,
                    })
                }
                None => {
                    ctx.entries.insert(
                        key,
                        Entry {
                            handle: t.clone(),
                            state: State::New,
                        },
                    );
                    work.push(t);
                }
            }
        }
    }
    Ok(())
}

/// Orders `items` so that each comes after the items it depends on (by
/// position), keeping the given order otherwise; cycles keep the given order.
fn dependency_order(deps: &[Vec<usize>]) -> Vec<usize> {
    let n = deps.len();
    let mut indegree = vec![0usize; n];
    let mut dependents = vec![Vec::new(); n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            if d != i {
                indegree[i] += 1;
                dependents[d].push(i);
            }
        }
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut done = vec![false; n];
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let next = match ready.pop_first() {
            Some(i) => i,
            // A cycle: take the earliest remaining item.
            None => match (0..n).find(|&i| !done[i]) {
                Some(i) => i,
                None => break,
            },
        };
        if done[next] {
            continue;
        }
        done[next] = true;
        out.push(next);
        for &j in &dependents[next] {
            indegree[j] = indegree[j].saturating_sub(1);
            if indegree[j] == 0 && !done[j] {
                ready.insert(j);
            }
        }
    }
    out
}

/// Dependencies among `items` (key, handle, image): item i depends on item j
/// when i references the document j is.
fn reference_deps(items: &[Pending]) -> Vec<Vec<usize>> {
    let mut index: HashMap<(&str, String), usize> = HashMap::new();
    for (i, (key, h, _)) in items.iter().enumerate() {
        index.insert((h.collection_name(), key.1.clone()), i);
    }
    items
        .iter()
        .map(|(_, h, image)| {
            h.referenced(image)
                .into_iter()
                .filter_map(|(coll, id)| index.get(&(coll, id.to_string())).copied())
                .collect()
        })
        .collect()
}

fn plan(ctx: &mut Context, validate_reads: bool) -> Result<Plan> {
    cascade_persist(ctx)?;
    let mut inserts = Vec::new();
    let mut deletes = Vec::new();
    let mut plan = Plan {
        ops: Vec::new(),
        targets: Vec::new(),
        unchanged: Vec::new(),
    };
    for (key, e) in &ctx.entries {
        let h = &e.handle;
        let coll = h.collection();
        let vf = h.version_field();
        match &e.state {
            State::New => {
                let mut image = h.current()?;
                if let (Some(vf), Value::Object(m)) = (vf, &mut image) {
                    m.insert(vf.to_owned(), Value::from(1));
                }
                inserts.push((key.clone(), h.clone(), image));
            }
            State::Clean(snap) if h.touched() => {
                let base = h.baseline(snap)?;
                let mut cur = h.current()?;
                let skip: Vec<&str> = vf.into_iter().collect();
                let changes = diff(&base, &cur, &skip);
                if changes.is_empty() {
                    plan.unchanged.push(key.clone());
                    continue;
                }
                let mut filter = EntityManager::id_filter(&coll, h.id_json()?);
                let version = vf.and_then(|vf| version_of(&base, vf));
                let extra = match (vf, version) {
                    (Some(vf), Some(v)) => {
                        filter[vf] = Value::from(v);
                        if let Value::Object(m) = &mut cur {
                            m.insert(vf.to_owned(), Value::from(v + 1));
                        }
                        Some(("$inc", json!({ vf: 1 })))
                    }
                    _ => None,
                };
                plan.ops.push(WriteOp::Update {
                    collection: coll,
                    filter,
                    update: changes.into_update(extra),
                    multi: false,
                    expect: Expect::Exactly(1),
                });
                plan.targets.push(Target::Update {
                    key: key.clone(),
                    image: cur,
                    version,
                });
            }
            State::Clean(snap) => {
                if let (true, Some(vf)) = (validate_reads, vf) {
                    if let Some(v) = snapshot_version(snap, vf) {
                        let mut filter = EntityManager::id_filter(&coll, h.id_json()?);
                        filter[vf] = Value::from(v);
                        plan.ops.push(WriteOp::Check {
                            collection: coll,
                            filter,
                            expect: Expect::Exactly(1),
                        });
                        plan.targets.push(Target::Check {
                            key: key.clone(),
                            version: v,
                        });
                    }
                }
            }
            State::Removed(snap) => {
                let base = h.baseline(snap)?;
                deletes.push((key.clone(), h.clone(), base));
            }
        }
    }
    // Inserts first (referenced before referrers), so that updates and
    // deletes see every new document.
    let deps = reference_deps(&inserts);
    let mut ordered: Vec<Option<Pending>> = inserts.into_iter().map(Some).collect();
    let mut head_ops = Vec::new();
    let mut head_targets = Vec::new();
    for i in dependency_order(&deps) {
        if let Some((key, h, image)) = ordered[i].take() {
            head_ops.push(WriteOp::Insert {
                collection: h.collection(),
                doc: image.clone(),
            });
            head_targets.push(Target::Insert { key, image });
        }
    }
    head_ops.append(&mut plan.ops);
    head_targets.append(&mut plan.targets);
    plan.ops = head_ops;
    plan.targets = head_targets;
    // Deletes last, referrers first.
    let deps = reference_deps(&deletes);
    let mut order = dependency_order(&deps);
    order.reverse();
    for i in order {
        let (key, h, base) = &deletes[i];
        let coll = h.collection();
        let vf = h.version_field();
        let mut filter = EntityManager::id_filter(&coll, h.id_json()?);
        let version = vf.and_then(|vf| version_of(base, vf));
        if let (Some(vf), Some(v)) = (vf, version) {
            filter[vf] = Value::from(v);
        }
        plan.ops.push(WriteOp::Delete {
            collection: coll,
            filter,
            multi: false,
            expect: Expect::Exactly(1),
            cascade: CascadeRule::from_relations(&h.relations()),
        });
        plan.targets.push(Target::Delete {
            key: key.clone(),
            version,
        });
    }
    Ok(plan)
}

/// Maps a failed batch back to the entity it concerns.
fn entity_error(ctx: &Context, targets: &[Target], err: OrmError) -> OrmError {
    let OrmError::Expectation { index, .. } = &err else {
        return err;
    };
    let (key, version) = match targets.get(*index) {
        Some(Target::Update { key, version, .. } | Target::Delete { key, version }) => {
            (key, *version)
        }
        Some(Target::Check { key, version }) => (key, Some(*version)),
        _ => return err,
    };
    let collection = ctx
        .entries
        .get(key)
        .map(|e| e.handle.collection_name().to_owned())
        .unwrap_or_default();
    match version {
        Some(expected) => OrmError::OptimisticLock {
            collection,
            id: key.1.clone(),
            expected,
        },
        None => OrmError::Missing {
            collection,
            id: key.1.clone(),
        },
    }
}

fn apply(ctx: &mut Context, plan: Plan, outcomes: Vec<OpOutcome>) -> Result<FlushReport> {
    let mut report = FlushReport::default();
    for key in plan.unchanged {
        if let Some(e) = ctx.entries.get(&key) {
            e.handle.set_touched(false);
        }
    }
    let mut gone: Vec<(String, Value)> = Vec::new();
    for (target, outcome) in plan.targets.into_iter().zip(outcomes) {
        match target {
            Target::Insert { key, image } | Target::Update { key, image, .. } => {
                match outcome {
                    OpOutcome::Inserted(_) => report.inserted += 1,
                    _ => report.updated += 1,
                }
                if let Some(e) = ctx.entries.get_mut(&key) {
                    if e.handle.version_field().is_some() {
                        e.handle.replace(image.clone())?;
                    }
                    e.handle.set_touched(false);
                    e.state = State::Clean(Snapshot::Json(image));
                }
            }
            Target::Delete { key, .. } => {
                ctx.entries.shift_remove(&key);
                if let OpOutcome::Deleted(ids) = outcome {
                    report.deleted += ids.len();
                    gone.extend(ids);
                }
            }
            Target::Check { .. } => report.checked += 1,
        }
    }
    if !gone.is_empty() {
        let gone: std::collections::HashSet<(String, String)> = gone
            .into_iter()
            .map(|(c, id)| (c, id.to_string()))
            .collect();
        ctx.entries.retain(|key, e| {
            !gone.contains(&(e.handle.collection_name().to_owned(), key.1.clone()))
        });
    }
    Ok(report)
}

pub(super) async fn flush(em: &EntityManager) -> Result<FlushReport> {
    let mut plan = plan(&mut em.context().lock(), em.validates_reads())?;
    if plan.ops.is_empty() {
        return apply(&mut em.context().lock(), plan, Vec::new());
    }
    let (inserts, updates, deletes) = plan.ops.iter().fold((0, 0, 0), |(i, u, d), op| match op {
        WriteOp::Insert { .. } => (i + 1, u, d),
        WriteOp::Update { .. } => (i, u + 1, d),
        WriteOp::Delete { .. } => (i, u, d + 1),
        WriteOp::Check { .. } => (i, u, d),
    });
    let span = tracing::info_span!(
        "orm.flush",
        driver = em.driver().name(),
        statements = plan.ops.len(),
        inserts,
        updates,
        deletes
    );
    let ops = std::mem::take(&mut plan.ops);
    match em.driver().execute(ops).instrument(span.clone()).await {
        Ok(outcomes) => {
            let report = apply(&mut em.context().lock(), plan, outcomes)?;
            span.in_scope(|| tracing::debug!(?report, "flushed"));
            Ok(report)
        }
        Err(e) => {
            let e = entity_error(&em.context().lock(), &plan.targets, e);
            span.in_scope(|| tracing::debug!(error = %e, "flush failed; nothing written"));
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::dependency_order;

    #[test]
    fn dependencies_first_then_given_order() {
        // 0 depends on 2, 1 on nothing, 2 on 1.
        assert_eq!(dependency_order(&[vec![2], vec![], vec![1]]), vec![1, 2, 0]);
        assert_eq!(dependency_order(&[vec![], vec![], vec![]]), vec![0, 1, 2]);
        // A cycle keeps the given order.
        assert_eq!(dependency_order(&[vec![1], vec![0]]), vec![0, 1]);
    }
}
