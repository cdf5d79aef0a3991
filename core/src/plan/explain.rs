//! The serializable description of a chosen plan and what running it cost.

use serde::{Deserialize, Serialize};

use super::{Access, Plan};

/// Counters gathered while a plan runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecStats {
    /// Secondary index entries read.
    pub keys_examined: u64,
    /// Documents fetched and tested against the filter.
    pub docs_examined: u64,
    /// Documents returned (after skip and limit).
    pub returned: u64,
}

/// Intervals scanned on one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldBoundsExplain {
    /// The field path.
    pub field: String,
    /// The intervals, e.g. `[30, +inf of its type]`.
    pub intervals: Vec<String>,
}

/// A plan as reported by `explain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explain {
    /// `IDHACK` (primary-key lookups), `IDSCAN` (primary-key ranges), `IXSCAN`,
    /// `COLLSCAN`, or `OR` (union of `branches`).
    pub stage: String,
    /// The index used (`_id_` for the primary key).
    pub index: Option<String>,
    /// The bounds per field.
    pub bounds: Vec<FieldBoundsExplain>,
    /// True when the walk is backwards.
    pub reverse: bool,
    /// True when the access order provides the requested sort (no in-memory sort).
    pub sort_by_index: bool,
    /// True when the results had to be sorted in memory.
    pub in_memory_sort: bool,
    /// True when a count was answered from index entries alone.
    pub covered: bool,
    /// The planner's estimate of entries or documents to examine.
    pub estimate: u64,
    /// Sub-plans of an `OR`.
    pub branches: Vec<Explain>,
    /// What running the plan cost (totals, including branches).
    pub stats: ExecStats,
}

impl Explain {
    /// Describes `plan`; `sorted` tells whether a sort was requested.
    pub fn of(plan: &Plan, sorted: bool) -> Explain {
        let (stage, reverse, branches) = match &plan.access {
            Access::CollScan { reverse } => ("COLLSCAN", *reverse, Vec::new()),
            Access::IdLookup { .. } => ("IDHACK", false, Vec::new()),
            Access::IdRange { reverse, .. } => ("IDSCAN", *reverse, Vec::new()),
            Access::IndexScan { reverse, .. } => ("IXSCAN", *reverse, Vec::new()),
            Access::Union(plans) => (
                "OR",
                false,
                plans.iter().map(|p| Explain::of(p, false)).collect(),
            ),
        };
        Explain {
            stage: stage.into(),
            index: plan.index_name.clone(),
            bounds: plan
                .bounds
                .iter()
                .map(|(f, i)| FieldBoundsExplain {
                    field: f.clone(),
                    intervals: i.clone(),
                })
                .collect(),
            reverse,
            sort_by_index: sorted && plan.ordered,
            in_memory_sort: sorted && !plan.ordered,
            covered: false,
            estimate: plan.estimate,
            branches,
            stats: ExecStats::default(),
        }
    }
}
