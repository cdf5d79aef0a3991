//! What `Aggregate::explain` reports: the plan of the pipeline's source (its
//! first stage, with the stages it absorbed and what running it cost), then
//! one entry per remaining stage; a `$lookup` reports the plan of its foreign
//! lookups (index or scan, keys and documents examined over all lookups),
//! `$group`/`$sort`/`$bucket` the memory they held, `$facet` its sub-pipelines.

use serde::{Deserialize, Serialize};

use crate::plan::Explain;

/// An explained pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregateExplain {
    /// The plan of the source: how the leading `$match` (and an absorbed
    /// `$sort`/`$skip`/`$limit`) reached the documents, and what it examined.
    pub source: Explain,
    /// The stages the source ran (`["$match", "$sort", "$limit"]`), in order.
    pub absorbed: Vec<String>,
    /// Bytes held by the source's in-memory sort, when it needed one.
    pub source_sort_memory: Option<u64>,
    /// The remaining stages, in order.
    pub stages: Vec<StageExplain>,
}

/// One stage after the source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageExplain {
    /// The stage name (`$group`).
    pub stage: String,
    /// `$lookup`: how the foreign documents were found.
    pub lookup: Option<Box<LookupExplain>>,
    /// `$facet`: each sub-pipeline's stages.
    pub facets: Vec<(String, Vec<StageExplain>)>,
    /// Blocking stages: the most bytes held at once.
    pub memory_peak: Option<u64>,
    /// `$group`: the number of groups.
    pub groups: Option<u64>,
    /// `$sort` followed by `$limit`: the documents kept (top-k).
    pub top_k: Option<u64>,
}

impl StageExplain {
    /// An entry with only the stage name.
    pub(crate) fn named(name: &str) -> StageExplain {
        StageExplain {
            stage: name.to_owned(),
            ..StageExplain::default()
        }
    }
}

/// How a `$lookup` found the foreign documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupExplain {
    /// The foreign collection.
    pub from: String,
    /// The equality form's `localField`.
    pub local_field: Option<String>,
    /// The equality form's `foreignField`.
    pub foreign_field: Option<String>,
    /// How many input documents were looked up.
    pub lookups: u64,
    /// The plan of the first lookup (`IXSCAN` on the foreign index, `IDHACK`,
    /// or `COLLSCAN`), with `stats` summed over every lookup; `None` when no
    /// document reached the stage.
    pub plan: Option<Explain>,
    /// The sub-pipeline's stages after its source (pipeline form), as run
    /// for the first input document.
    pub pipeline: Vec<StageExplain>,
    /// True when the `$unwind` right after the `$lookup` runs inside it (one
    /// output per joined document; no array is built).
    pub unwinding: bool,
}
