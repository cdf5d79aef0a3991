//! The query planner: chooses how to find the documents a filter matches —
//! primary-key lookups, a secondary index scan over computed bounds (or a
//! union of them for `$or`), or a collection scan — and whether the access
//! order already satisfies the requested sort. See ARCHITECTURE.md for the cost rules.

pub mod bounds;
pub mod choose;
pub mod explain;

pub use choose::choose;
pub use explain::{ExecStats, Explain};

use crate::index::spec::CompiledIndex;

/// One byte range of a table, `lo` inclusive, `hi` exclusive (`None`: open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// Inclusive lower end.
    pub lo: Vec<u8>,
    /// Exclusive upper end.
    pub hi: Option<Vec<u8>>,
}

/// How documents are reached.
#[derive(Debug, Clone)]
pub enum Access {
    /// Every document of the collection, in primary-key order (or reversed).
    CollScan {
        /// Walk backwards.
        reverse: bool,
    },
    /// Point lookups of primary keys (full `docs` keys, sorted).
    IdLookup {
        /// The document keys.
        keys: Vec<Vec<u8>>,
    },
    /// Ranges of the primary key (in the `docs` table).
    IdRange {
        /// The ranges, sorted and disjoint.
        ranges: Vec<KeyRange>,
        /// Walk backwards.
        reverse: bool,
    },
    /// Ranges of a secondary index.
    IndexScan {
        /// Position of the index in the collection definition.
        index: usize,
        /// The ranges (full keys of the `indexes` table), sorted and disjoint.
        ranges: Vec<KeyRange>,
        /// Walk backwards.
        reverse: bool,
        /// When walking backwards, yield entries with equal keys in ascending
        /// primary-key order (as a stable sort would).
        ties_ascending: bool,
    },
    /// The union of several accesses (`$or`), deduplicated.
    Union(Vec<Plan>),
}

/// A chosen plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// How documents are reached.
    pub access: Access,
    /// True when documents arrive in the order the query's sort asks for (or,
    /// without a sort, in primary-key order), so no sort is needed and a limit
    /// can stop the walk early.
    pub ordered: bool,
    /// True when every document reached matches the filter (counts need not
    /// fetch documents; only set for single-range non-multikey index scans).
    pub exact: bool,
    /// Human-readable bounds per field, for explain.
    pub bounds: Vec<(String, Vec<String>)>,
    /// Name of the index used, for explain.
    pub index_name: Option<String>,
    /// Estimated entries or documents to examine.
    pub estimate: u64,
}

impl Plan {
    /// A collection scan.
    pub fn collscan(reverse: bool, ordered: bool, docs: u64) -> Plan {
        Plan {
            access: Access::CollScan { reverse },
            ordered,
            exact: false,
            bounds: Vec::new(),
            index_name: None,
            estimate: docs,
        }
    }

    /// True when the access can yield the same document more than once.
    pub fn may_repeat(&self, indexes: &[CompiledIndex]) -> bool {
        match &self.access {
            Access::IndexScan { index, .. } => indexes[*index].meta.multikey,
            Access::Union(_) => true,
            _ => false,
        }
    }
}
