//! openraft's storage conformance suite against [`LogStore`] and
//! [`StateMachine`], and the state machine's own guarantees.

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;

use super::{LogStore, NodeId, StateMachine, TypeConfig};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = LogStore::open(&dir.path().join("raft")).expect("the log opens");
        let sm = StateMachine::open(dir.path()).expect("the state machine opens");
        Ok((dir, log, sm))
    }
}

#[test]
fn storage_conformance_suite() {
    Suite::test_all(Builder).unwrap();
}
