//! `aggregate`: until the engine has an aggregation pipeline, only the pipeline
//! drivers emit for `count_documents` runs (translated in
//! `crate::count_pipeline`); any other pipeline is refused with an error that
//! names the stage.

use bson::{Bson, Document};

use super::count::{clamp, count_in, int};
use super::{args, Request};
use crate::count_pipeline;
use crate::errors::{code, CmdResult, CommandError};

/// `aggregate`.
pub fn aggregate(r: &mut Request<'_>) -> CmdResult<Document> {
    args::refuse(r.cmd, &["collation"])?;
    if !matches!(r.cmd.get("aggregate"), Some(Bson::String(_))) {
        return Err(CommandError::new(
            code::COMMAND_NOT_SUPPORTED,
            "aggregate: database-level pipelines ({aggregate: 1}) are not supported",
        ));
    }
    let name = r.collection()?;
    let pipeline = args::doc_array(r.cmd, "pipeline")?;
    let plan = count_pipeline::translate(&pipeline)?;
    let n = count_in(r, &name, plan.filter.clone())?;
    let n = clamp(n, plan.skip, plan.limit);
    let batch = if n == 0 {
        Vec::new()
    } else {
        let mut d = Document::new();
        d.insert("_id", plan.group_id);
        d.insert(plan.output, int(n));
        vec![d]
    };
    Ok(args::cursor_reply("firstBatch", batch, 0, &name))
}
