//! Write statements against an embedded [`Database`]: atomic batches of
//! [`WriteOp`]s (one engine transaction, following cascades inside it) and
//! per-document `insert_many`. Runs on the calling thread; the drivers call
//! it through [`super::off_thread`].

use std::collections::HashMap;

use collection_store::{CollectionOptions, Database, Error, Transaction, TxCollection};
use serde_json::{json, Value};

use super::{CascadeRule, CollectionRef, Expect, InsertMode, InsertReport, OpOutcome, WriteOp};
use crate::error::{OrmError, Result};

/// Runs `ops` in one engine transaction: all of them, or (on the first
/// failure or unmet expectation) none.
pub(crate) fn run(db: &Database, ops: Vec<WriteOp>) -> Result<Vec<OpOutcome>> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    let mut failure: Option<OrmError> = None;
    let res = db.transaction(|tx| {
        let mut batch = Batch {
            tx,
            handles: HashMap::new(),
        };
        let mut out = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            match batch.op(index, op) {
                Ok(o) => out.push(o),
                Err(e) => {
                    failure = Some(e);
                    return Err(Error::Aborted(format!("statement {index} failed")));
                }
            }
        }
        Ok(out)
    });
    match res {
        Ok(out) => Ok(out),
        Err(e) => Err(failure.take().unwrap_or(OrmError::Engine(e))),
    }
}

struct Batch<'t, 'db> {
    tx: &'t Transaction<'db>,
    handles: HashMap<String, TxCollection<'t>>,
}

fn check(index: usize, op: &WriteOp, expect: Expect, actual: u64) -> Result<()> {
    match expect {
        Expect::Exactly(n) if n != actual => Err(OrmError::Expectation {
            index,
            what: op.what(),
            collection: op.collection().name.to_string(),
            expected: n,
            actual,
        }),
        _ => Ok(()),
    }
}

impl<'t> Batch<'t, '_> {
    fn coll(&mut self, c: &CollectionRef) -> collection_store::Result<TxCollection<'t>> {
        if let Some(h) = self.handles.get(c.name.as_ref()) {
            return Ok(h.clone());
        }
        let h = self.tx.collection_with(
            &c.name,
            CollectionOptions::with_id_field(c.id_field.as_ref()),
        )?;
        self.handles.insert(c.name.to_string(), h.clone());
        Ok(h)
    }

    fn op(&mut self, index: usize, op: &WriteOp) -> Result<OpOutcome> {
        let failed = |source: Error| OrmError::Statement {
            index,
            what: op.what(),
            collection: op.collection().name.to_string(),
            source: Box::new(source),
        };
        match op {
            WriteOp::Insert { collection, doc } => {
                let id = self
                    .coll(collection)
                    .and_then(|c| c.insert_one(doc.clone()))
                    .map_err(failed)?;
                Ok(OpOutcome::Inserted(id))
            }
            WriteOp::Update {
                collection,
                filter,
                update,
                multi,
                expect,
            } => {
                let r = self
                    .coll(collection)
                    .and_then(|c| {
                        if *multi {
                            c.update_many(filter.clone(), update.clone())
                        } else {
                            c.update_one(filter.clone(), update.clone())
                        }
                    })
                    .map_err(failed)?;
                check(index, op, *expect, r.matched_count)?;
                Ok(OpOutcome::Updated {
                    matched: r.matched_count,
                    modified: r.modified_count,
                })
            }
            WriteOp::Delete {
                collection,
                filter,
                multi,
                expect,
                cascade,
            } => {
                let mut deleted = Vec::new();
                let n = self
                    .delete(collection, filter.clone(), *multi, cascade, &mut deleted)
                    .map_err(failed)?;
                check(index, op, *expect, n)?;
                Ok(OpOutcome::Deleted(deleted))
            }
            WriteOp::Check {
                collection,
                filter,
                expect,
            } => {
                let n = self
                    .coll(collection)
                    .and_then(|c| c.count(filter.clone()))
                    .map_err(failed)?;
                check(index, op, *expect, n)?;
                Ok(OpOutcome::Checked(n))
            }
        }
    }

    /// Deletes the matching documents of `c` and, recursively, what their
    /// cascades reach; records every deleted key; returns how many of `c`.
    fn delete(
        &mut self,
        c: &CollectionRef,
        filter: Value,
        multi: bool,
        cascade: &[CascadeRule],
        deleted: &mut Vec<(String, Value)>,
    ) -> collection_store::Result<u64> {
        let coll = self.coll(c)?;
        let ids: Vec<Value> = coll
            .find(filter)
            .projection(json!({ c.id_field.as_ref(): 1 }))
            .limit(if multi { 0 } else { 1 })
            .to_vec()?
            .into_iter()
            .filter_map(|mut d| d.get_mut(c.id_field.as_ref()).map(Value::take))
            .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let n = coll.delete_many(json!({ c.id_field.as_ref(): {"$in": ids} }))?;
        for rule in cascade {
            let next = CascadeRule::from_relations(&(rule.next)());
            let child_filter = json!({ rule.foreign_path.as_str(): {"$in": ids} });
            self.delete(&rule.child, child_filter, true, &next, deleted)?;
        }
        deleted.extend(ids.into_iter().map(|id| (c.name.to_string(), id)));
        Ok(n)
    }
}

/// Inserts `docs` into `c` in one transaction, each in its own statement, so
/// that every failure is reported with its document's position.
pub(crate) fn insert_many(
    db: &Database,
    c: &CollectionRef,
    docs: Vec<Value>,
    mode: InsertMode,
) -> Result<InsertReport> {
    let mut report = InsertReport::default();
    let tx = db.begin()?;
    {
        let coll = tx.collection_with(
            &c.name,
            CollectionOptions::with_id_field(c.id_field.as_ref()),
        )?;
        let mut stopped = false;
        for (i, doc) in docs.into_iter().enumerate() {
            if stopped {
                report.not_attempted.push(i);
                continue;
            }
            match coll.insert_one(doc) {
                Ok(id) => report.inserted.push((i, id)),
                Err(e) => {
                    report.failed.push((i, OrmError::Engine(e)));
                    stopped = mode == InsertMode::Ordered;
                }
            }
        }
    }
    if mode == InsertMode::Atomic && !report.failed.is_empty() {
        tx.rollback();
        report.rolled_back = report.inserted.drain(..).map(|(i, _)| i).collect();
        return Ok(report);
    }
    tx.commit()?;
    Ok(report)
}
