//! [`DriverTransaction`]: a buffered transaction with savepoints.

use super::WriteOp;
use crate::error::{OrmError, Result};

/// A transaction begun with [`super::Driver::begin`]: statements are buffered
/// here and run, all or none, by [`super::Driver::commit`].
///
/// Savepoints are marks in the buffer: [`rollback_to`](Self::rollback_to)
/// discards the statements queued after the mark (they never reach the
/// store), [`release`](Self::release) forgets the mark and keeps them.
///
/// ```
/// use collection_store_orm::driver::{CollectionRef, DriverTransaction, WriteOp};
/// use serde_json::json;
///
/// let users = CollectionRef::new("users", "_id");
/// let insert = |id: i64| WriteOp::Insert { collection: users.clone(), doc: json!({"_id": id}) };
/// let mut tx = DriverTransaction::new();
/// tx.push(insert(1));
/// tx.savepoint("before_2").unwrap();
/// tx.push(insert(2));
/// tx.rollback_to("before_2").unwrap();
/// assert_eq!(tx.len(), 1);
/// ```
#[derive(Debug, Default)]
pub struct DriverTransaction {
    ops: Vec<WriteOp>,
    savepoints: Vec<(String, usize)>,
}

impl DriverTransaction {
    /// An empty transaction.
    pub fn new() -> Self {
        DriverTransaction::default()
    }

    /// Queues a statement.
    pub fn push(&mut self, op: WriteOp) {
        self.ops.push(op);
    }

    /// Queues statements.
    pub fn extend(&mut self, ops: impl IntoIterator<Item = WriteOp>) {
        self.ops.extend(ops);
    }

    /// Statements queued.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Marks the current position as savepoint `name` (names are unique
    /// among the savepoints in force).
    pub fn savepoint(&mut self, name: &str) -> Result<()> {
        if self.savepoints.iter().any(|(n, _)| n == name) {
            return Err(OrmError::Savepoint(name.to_owned(), "already exists"));
        }
        self.savepoints.push((name.to_owned(), self.ops.len()));
        Ok(())
    }

    fn position(&self, name: &str) -> Result<usize> {
        self.savepoints
            .iter()
            .rposition(|(n, _)| n == name)
            .ok_or_else(|| OrmError::Savepoint(name.to_owned(), "no such savepoint"))
    }

    /// Discards every statement queued since savepoint `name`, and the
    /// savepoints set after it; `name` stays in force (as in SQL).
    pub fn rollback_to(&mut self, name: &str) -> Result<()> {
        let i = self.position(name)?;
        let at = self.savepoints[i].1;
        self.ops.truncate(at);
        self.savepoints.truncate(i + 1);
        Ok(())
    }

    /// Forgets savepoint `name` (and those set after it), keeping the statements.
    pub fn release(&mut self, name: &str) -> Result<()> {
        let i = self.position(name)?;
        self.savepoints.truncate(i);
        Ok(())
    }

    /// The queued statements.
    pub fn into_ops(self) -> Vec<WriteOp> {
        self.ops
    }
}
