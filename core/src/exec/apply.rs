//! Applying a [`Statement`]: the one function every write goes through —
//! single statements, group commit, transactions, and (next) a replicated
//! state machine. It reads no clock and generates no id: everything it needs
//! is in the statement.

use super::ddl;
use super::docs::{statement_id, WriteCtx};
use super::statement::{Outcome, Statement};
use super::write as exec_write;
use super::TargetCache;
use crate::catalog::{self, CollectionOptions};
use crate::error::{Error, Result};
use crate::log::LogOp;
use crate::storage::Wtx;

/// A progress callback: `(documents done, total)` while an index is built.
pub type Progress<'p> = Option<&'p mut dyn FnMut(u64, u64)>;

/// Borrows a progress callback for a shorter time.
pub fn reborrow<'s>(p: &'s mut Progress<'_>) -> Progress<'s> {
    match p {
        Some(f) => Some(&mut **f),
        None => None,
    }
}

/// What applying a statement may use besides the statement.
pub struct ApplyContext<'t, 'p> {
    /// Compiled collection definitions.
    pub targets: &'t TargetCache,
    /// Called while an index is built.
    pub progress: Progress<'p>,
}

impl<'t> ApplyContext<'t, 'static> {
    /// A context without a progress callback.
    pub fn new(targets: &'t TargetCache) -> Self {
        ApplyContext {
            targets,
            progress: None,
        }
    }
}

/// Resolves (re-creating it if it was dropped) a collection's definition for a write.
fn ctx_for_write(
    w: &mut Wtx<'_, '_>,
    targets: &TargetCache,
    name: &str,
    options: &CollectionOptions,
    ops: &mut Vec<LogOp>,
) -> Result<WriteCtx> {
    if let Some(t) = targets.get(w.store(), w.ro(), name, false)? {
        if t.meta.options == *options {
            return Ok(WriteCtx::from_target(&t));
        }
    }
    WriteCtx::new(ddl::ensure_collection(w, name, Some(options), ops)?.0)
}

/// Applies one statement in `w`, appending the change-log operations it made
/// to `ops`. On error the caller must undo `w` (the statement may have
/// written part of its effect) and discard `ops`.
pub fn apply(
    w: &mut Wtx<'_, '_>,
    statement: &Statement,
    cx: &mut ApplyContext<'_, '_>,
    ops: &mut Vec<LogOp>,
) -> Result<Outcome> {
    let targets = cx.targets;
    match statement {
        Statement::CreateCollection {
            collection,
            options,
        } => Ok(Outcome::Created(
            ddl::ensure_collection(w, collection, Some(options), ops)?.1,
        )),
        Statement::DropCollection { collection } => {
            Ok(Outcome::Dropped(ddl::drop_collection(w, collection, ops)?))
        }
        Statement::Insert {
            collection,
            options,
            documents,
        } => {
            let mut ctx = ctx_for_write(w, targets, collection, options, ops)?;
            for doc in documents {
                let id = statement_id(doc, &options.id_field)?;
                exec_write::insert(w, &mut ctx, id, doc)?;
            }
            ops.extend(ctx.finish(w)?.1);
            Ok(Outcome::Inserted(documents.len() as u64))
        }
        Statement::Update {
            collection,
            options,
            filter,
            update,
            mode,
        } => {
            let mut ctx = ctx_for_write(w, targets, collection, options, ops)?;
            let r = exec_write::update(w, &mut ctx, filter.get(), update.get(), mode)?;
            ops.extend(ctx.finish(w)?.1);
            Ok(Outcome::Updated(r))
        }
        Statement::Delete {
            collection,
            filter,
            multi,
        } => {
            let Some(t) = targets.get(w.store(), w.ro(), collection, false)? else {
                return Ok(Outcome::Deleted(0));
            };
            let mut ctx = WriteCtx::from_target(&t);
            let n = exec_write::delete(w, &mut ctx, filter.get(), *multi)?;
            ops.extend(ctx.finish(w)?.1);
            Ok(Outcome::Deleted(n))
        }
        Statement::CreateIndex {
            collection,
            options,
            spec,
        } => {
            let mut meta = ctx_for_write(w, targets, collection, options, ops)?
                .target
                .meta;
            let mut none = |_: u64, _: u64| {};
            let progress: &mut dyn FnMut(u64, u64) = match reborrow(&mut cx.progress) {
                Some(p) => p,
                None => &mut none,
            };
            let created = ddl::create_index(w, &mut meta, spec.clone(), progress, ops)?;
            Ok(Outcome::Created(created))
        }
        Statement::DropIndex {
            collection,
            options,
            name,
        } => {
            let mut meta = ctx_for_write(w, targets, collection, options, ops)?
                .target
                .meta;
            ddl::drop_index(w, &mut meta, name, ops)?;
            Ok(Outcome::Done)
        }
        Statement::SchemaVersion {
            collection,
            version,
        } => {
            let Some(mut meta) = catalog::load(w.store(), w.ro(), collection)? else {
                return Err(Error::InvalidCollection(format!(
                    "collection '{collection}' was dropped while its schema was synchronised"
                )));
            };
            ddl::set_schema_version(w, &mut meta, *version, ops)?;
            Ok(Outcome::Done)
        }
    }
}
