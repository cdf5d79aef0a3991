//! Schema reconciliation: bringing a collection's stored indexes in line with
//! the indexes a [`Document`] type declares, and recording its schema version.

use std::fmt;

use crate::error::{Error, Result};
use crate::handles::collection::{CollectionHandle, ExecSource};
use crate::index::IndexSpec;

use super::Document;

/// What to do with stored indexes the schema does not declare.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaSync {
    /// Keep them and log a warning through `tracing` (the default): an index
    /// may have been created by hand, or by a newer version of the program.
    #[default]
    KeepUnknown,
    /// Drop them.
    DropUnknown,
    /// Do not reconcile at all (nothing is created, rebuilt, dropped or
    /// recorded), e.g. for a read-only database.
    Off,
}

/// One change made (or planned) to a collection's indexes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum IndexChange {
    /// A declared index was missing and is built.
    Create(IndexSpec),
    /// A stored index with a declared name has another definition (or a declared
    /// definition is stored under another name): the old one is dropped and the
    /// declared one built.
    Rebuild {
        /// The stored index's name.
        old: String,
        /// The declared specification.
        new: IndexSpec,
    },
    /// An undeclared index is dropped ([`SchemaSync::DropUnknown`]).
    Drop(String),
}

/// The changes that reconciling a collection needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncPlan {
    /// Index changes, drops first.
    pub changes: Vec<IndexChange>,
    /// Undeclared indexes that are kept (and warned about).
    pub kept_unknown: Vec<String>,
}

/// What opening a typed collection did to it.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct SyncReport {
    /// The collection.
    pub collection: String,
    /// Indexes built because they were missing.
    pub created: Vec<String>,
    /// Indexes dropped and built again with a changed specification.
    pub rebuilt: Vec<String>,
    /// Undeclared indexes dropped ([`SchemaSync::DropUnknown`]).
    pub dropped: Vec<String>,
    /// Undeclared indexes kept ([`SchemaSync::KeepUnknown`]).
    pub kept_unknown: Vec<String>,
    /// The schema version recorded before (None: never opened typed).
    pub previous_version: Option<u32>,
    /// The schema version recorded now.
    pub version: Option<u32>,
    /// True when nothing was reconciled: [`SchemaSync::Off`], a read-only
    /// database, or a collection recorded with a newer schema version.
    pub skipped: bool,
}

impl SyncReport {
    /// True when no index changed.
    pub fn unchanged(&self) -> bool {
        self.created.is_empty() && self.rebuilt.is_empty() && self.dropped.is_empty()
    }
}

type Progress = Box<dyn FnMut(&str, u64, u64)>;

/// Options for [`crate::Database::typed_with`] and [`crate::Transaction::typed_with`].
#[derive(Default)]
pub struct TypedOptions {
    pub(crate) sync: SchemaSync,
    pub(crate) progress: Option<Progress>,
}

impl fmt::Debug for TypedOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedOptions")
            .field("sync", &self.sync)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl TypedOptions {
    /// Default options: keep undeclared indexes, log build progress through `tracing`.
    pub fn new() -> Self {
        TypedOptions::default()
    }

    /// Sets the policy for undeclared indexes.
    pub fn sync(mut self, policy: SchemaSync) -> Self {
        self.sync = policy;
        self
    }

    /// Calls `f(index_name, documents_done, documents_total)` while indexes are built.
    pub fn on_progress(mut self, f: impl FnMut(&str, u64, u64) + 'static) -> Self {
        self.progress = Some(Box::new(f));
        self
    }
}

fn same_definition(a: &IndexSpec, b: &IndexSpec) -> bool {
    a.fields == b.fields && a.unique == b.unique && a.sparse == b.sparse && a.partial == b.partial
}

/// Compares declared and stored index specifications (stored ones with their
/// names filled in, as [`CollectionHandle::list_indexes`] returns them).
pub fn plan_sync(
    declared: &[IndexSpec],
    stored: &[IndexSpec],
    policy: SchemaSync,
) -> Result<SyncPlan> {
    let mut plan = SyncPlan::default();
    if policy == SchemaSync::Off {
        return Ok(plan);
    }
    let mut names: Vec<String> = Vec::new();
    for d in declared {
        let n = d.index_name();
        if names.contains(&n) {
            return Err(Error::InvalidIndex(format!(
                "the schema declares two indexes named '{n}'"
            )));
        }
        names.push(n);
    }
    // Stored indexes claimed by a declared one (same name, or same definition).
    let mut claimed = vec![false; stored.len()];
    let mut drops = Vec::new();
    let mut builds = Vec::new();
    for (d, name) in declared.iter().zip(&names) {
        if let Some(i) = stored.iter().position(|s| s.index_name() == *name) {
            claimed[i] = true;
            if !same_definition(&stored[i], d) {
                drops.push(IndexChange::Rebuild {
                    old: name.clone(),
                    new: d.clone(),
                });
            }
            continue;
        }
        let renamed = stored.iter().enumerate().position(|(i, s)| {
            !claimed[i] && !names.contains(&s.index_name()) && same_definition(s, d)
        });
        match renamed {
            Some(i) => {
                claimed[i] = true;
                drops.push(IndexChange::Rebuild {
                    old: stored[i].index_name(),
                    new: d.clone(),
                });
            }
            None => builds.push(IndexChange::Create(d.clone())),
        }
    }
    for (i, s) in stored.iter().enumerate() {
        if claimed[i] {
            continue;
        }
        match policy {
            SchemaSync::DropUnknown => plan.changes.push(IndexChange::Drop(s.index_name())),
            _ => plan.kept_unknown.push(s.index_name()),
        }
    }
    plan.changes.extend(drops);
    plan.changes.extend(builds);
    Ok(plan)
}

/// Reconciles `coll` (a handle whose statements run inside one transaction, or
/// on their own) with `T`'s declared indexes and records `T::VERSION`. With
/// `dry_run`, returns `None` instead of changing anything when a change is
/// needed (so a caller can check in a read-only snapshot first).
pub(crate) fn sync<T: Document>(
    coll: &CollectionHandle<impl ExecSource>,
    options: &mut TypedOptions,
    dry_run: bool,
) -> Result<Option<SyncReport>> {
    let name = coll.name().to_owned();
    let mut report = SyncReport {
        collection: name.clone(),
        previous_version: coll.schema_version()?,
        ..SyncReport::default()
    };
    report.version = report.previous_version;
    if options.sync == SchemaSync::Off {
        report.skipped = true;
        return Ok(Some(report));
    }
    if let Some(v) = report.previous_version.filter(|v| *v > T::VERSION) {
        tracing::warn!(
            collection = %name,
            stored_version = v,
            schema_version = T::VERSION,
            "collection was last synchronised by a newer schema version; its indexes are left as they are"
        );
        report.skipped = true;
        return Ok(Some(report));
    }
    let plan = plan_sync(&T::indexes(), &coll.list_indexes()?, options.sync)?;
    if dry_run && (!plan.changes.is_empty() || report.previous_version != Some(T::VERSION)) {
        return Ok(None);
    }
    for unknown in &plan.kept_unknown {
        tracing::warn!(
            collection = %name,
            index = %unknown,
            "index is not declared by the schema; kept (open with SchemaSync::DropUnknown to drop it)"
        );
    }
    report.kept_unknown = plan.kept_unknown;
    for change in plan.changes {
        match change {
            IndexChange::Drop(ix) => {
                tracing::info!(collection = %name, index = %ix, "dropping index not declared by the schema");
                coll.drop_index(&ix)?;
                report.dropped.push(ix);
            }
            IndexChange::Rebuild { old, new } => {
                tracing::info!(collection = %name, index = %old, "index specification changed; rebuilding");
                coll.drop_index(&old)?;
                let built = build(coll, new, &mut options.progress)?;
                report.rebuilt.push(built);
            }
            IndexChange::Create(spec) => {
                let built = build(coll, spec, &mut options.progress)?;
                report.created.push(built);
            }
        }
    }
    if report.previous_version != Some(T::VERSION) {
        coll.set_schema_version(T::VERSION)?;
    }
    report.version = Some(T::VERSION);
    Ok(Some(report))
}

fn build(
    coll: &CollectionHandle<impl ExecSource>,
    spec: IndexSpec,
    progress: &mut Option<Progress>,
) -> Result<String> {
    let name = spec.index_name();
    let collection = coll.name().to_owned();
    tracing::info!(collection = %collection, index = %name, "building index");
    let built = coll.create_index_with_progress(spec, |done, total| match progress {
        Some(f) => f(&name, done, total),
        None => {
            tracing::debug!(collection = %collection, index = %name, done, total, "index build progress")
        }
    })?;
    tracing::info!(collection = %collection, index = %built, "index built");
    Ok(built)
}
