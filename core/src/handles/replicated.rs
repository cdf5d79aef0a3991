//! The entry points of a replicated state machine (the cluster): apply a
//! batch of log entries together with the record of how far the log has
//! been applied, and read that record back — from the database, or from a
//! snapshot file written by [`Database::snapshot_to`].

use std::path::Path;

use super::database::Database;
use crate::error::{Error, Result};
use crate::exec::statement::{Command, Outcome};
use crate::storage::{Store, Table};
use crate::write::commit::{
    check_allowed, commit_batch, newest, Output, Replicated, Work, WriterMark,
};

/// Prefix every replicated-state record key must carry, so that no record
/// can overwrite the engine's own `meta` entries.
pub(crate) const RECORD_PREFIX: &[u8] = b"#r";

/// Per command of a replicated batch: its outcomes, or the error it failed with.
pub(crate) type CommandResults = Vec<std::result::Result<Vec<Outcome>, Error>>;

fn check_key(key: &[u8]) -> Result<()> {
    if key.len() <= RECORD_PREFIX.len() || !key.starts_with(RECORD_PREFIX) {
        return Err(Error::Replication(format!(
            "a replicated-state record key must start with {:?} and name something",
            String::from_utf8_lossy(RECORD_PREFIX)
        )));
    }
    Ok(())
}

impl Database {
    /// Applies `commands` (in order; `None` changes nothing) in one
    /// transaction of the commit loop that also writes `value` under `key`
    /// in the meta table, then makes it durable. A command that fails is
    /// undone alone and its error returned in its place; the record is
    /// written either way. Allowed on a database opened as a replica (as a
    /// cluster member's is, so that nothing but its log writes it).
    pub(crate) fn apply_replicated(
        &self,
        commands: Vec<Option<Command>>,
        key: &[u8],
        value: &[u8],
    ) -> Result<CommandResults> {
        check_key(key)?;
        let engine = &self.inner;
        let work = Work::Replicated(Replicated {
            commands,
            record: (key.to_vec(), value.to_vec()),
        });
        check_allowed(engine, &work)?;
        let mark = WriterMark::acquire(engine)?;
        let results = commit_batch(engine, &[&work], None);
        drop(mark);
        engine.make_durable(newest(&results))?;
        let result = results
            .into_iter()
            .next()
            .unwrap_or_else(|| Err(Error::TransactionClosed("the write did not run".into())));
        match result? {
            (Output::Replicated(per_command), lsn) => {
                engine.acknowledge(lsn)?;
                Ok(per_command)
            }
            (other, _) => Err(Error::TransactionClosed(format!(
                "the write path returned {other:?} for replicated entries"
            ))),
        }
    }

    /// The record stored under `key` (see [`Database::apply_replicated`]).
    pub(crate) fn replicated_record(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        read_record(&self.inner.store, key)
    }
}

/// The record stored under `key` in a snapshot file written by
/// [`Database::snapshot_to`].
pub(crate) fn snapshot_record(file: &Path, key: &[u8]) -> Result<Option<Vec<u8>>> {
    check_key(key)?;
    read_record(&Store::open_copy(file)?, key)
}

fn read_record(store: &Store, key: &[u8]) -> Result<Option<Vec<u8>>> {
    let (_g, txn) = store.read()?;
    Ok(store.table(Table::Meta).get(&txn, key)?.map(<[u8]>::to_vec))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::doc::json::document_from_json;
    use crate::exec::statement::Statement;
    use crate::{CollectionOptions, DatabaseOptions};

    fn insert(id: i64) -> Option<Command> {
        let doc = document_from_json(&json!({"_id": id, "v": id})).unwrap();
        Some(Command::single(
            Statement::Insert {
                collection: "c".into(),
                options: CollectionOptions::default(),
                documents: vec![doc],
            },
            1_000,
        ))
    }

    #[test]
    fn failed_command_is_undone_alone_and_the_record_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open_with(dir.path(), DatabaseOptions::default().replica(true)).unwrap();
        let out = db
            .apply_replicated(
                vec![insert(1), None, insert(1), insert(2)],
                b"#rapplied",
                b"4",
            )
            .unwrap();
        assert_eq!(out.len(), 4);
        assert!(out[0].is_ok() && out[1].is_ok() && out[3].is_ok());
        assert!(
            matches!(out[2], Err(Error::DuplicateKey { .. })),
            "{:?}",
            out[2]
        );
        assert_eq!(
            db.replicated_record(b"#rapplied").unwrap().as_deref(),
            Some(&b"4"[..])
        );
        assert_eq!(db.collection("c").unwrap().count(json!({})).unwrap(), 2);
        // Two commands changed data: two change-log entries, in order.
        let log = db.read_log(0, 10).unwrap();
        let inserted: Vec<u64> = log.iter().map(|e| e.lsn).collect();
        assert_eq!(inserted.len(), 2, "{log:?}");
        assert_eq!(inserted[1], inserted[0] + 1);
        // The application cannot write a replicated database directly.
        let err = db
            .collection("c")
            .unwrap()
            .insert_one(json!({"_id": 9}))
            .unwrap_err();
        assert!(matches!(err, Error::ReadOnly), "{err:?}");
    }

    #[test]
    fn the_record_travels_in_a_snapshot_and_keys_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path().join("db")).unwrap();
        db.apply_replicated(vec![insert(7)], b"#rx", b"seven")
            .unwrap();
        let file = dir.path().join("copy.mdb");
        db.snapshot_to(&file).unwrap();
        assert_eq!(
            snapshot_record(&file, b"#rx").unwrap().as_deref(),
            Some(&b"seven"[..])
        );
        assert_eq!(snapshot_record(&file, b"#ry").unwrap(), None);
        for bad in [&b"wal_end"[..], b"#r", b"next_collection_id"] {
            assert!(db.apply_replicated(vec![], bad, b"x").is_err());
            assert!(db.replicated_record(bad).is_err());
        }
    }
}
