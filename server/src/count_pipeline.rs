//! The one aggregation pipeline this server runs before the engine has
//! `collection.aggregate`: the shape drivers emit for `count_documents`
//! (pymongo, the Node.js and Rust drivers, mongosh's `countDocuments`),
//!
//! ```text
//! [{$match: f}, {$skip: n}?, {$limit: n}?, {$group: {_id: 1 | null, n: {$sum: 1}}}]
//! ```
//!
//! translated to a `count`. Replace this module with the engine's pipeline.

use bson::{Bson, Document};

use crate::commands::args::as_i64;
use crate::errors::{code, CmdResult, CommandError};

/// A pipeline translated to a count.
#[derive(Debug, Clone, PartialEq)]
pub struct CountPlan {
    /// The `$match` filter (empty when absent).
    pub filter: Document,
    /// `$skip`.
    pub skip: u64,
    /// `$limit`.
    pub limit: Option<u64>,
    /// The `_id` of the group (`1` or `null`).
    pub group_id: Bson,
    /// The output field of the `$sum` (`n` for the drivers).
    pub output: String,
}

/// MongoDB's stage names (so a misspelt one gets 40324, a real one 115).
const STAGES: &[&str] = &[
    "$addFields",
    "$bucket",
    "$bucketAuto",
    "$changeStream",
    "$collStats",
    "$count",
    "$currentOp",
    "$densify",
    "$documents",
    "$facet",
    "$fill",
    "$geoNear",
    "$graphLookup",
    "$group",
    "$indexStats",
    "$limit",
    "$listSessions",
    "$lookup",
    "$match",
    "$merge",
    "$out",
    "$project",
    "$redact",
    "$replaceRoot",
    "$replaceWith",
    "$sample",
    "$search",
    "$set",
    "$setWindowFields",
    "$skip",
    "$sort",
    "$sortByCount",
    "$unionWith",
    "$unset",
    "$unwind",
    "$vectorSearch",
];

fn unsupported(stage: &str, why: &str) -> CommandError {
    if STAGES.contains(&stage) {
        CommandError::new(
            code::COMMAND_NOT_SUPPORTED,
            format!(
                "aggregate: {why}; until the aggregation pipeline lands this server runs only the count_documents pipeline [{{$match}}, {{$skip}}?, {{$limit}}?, {{$group: {{_id: 1, n: {{$sum: 1}}}}}}]"
            ),
        )
    } else {
        CommandError::new(
            code::UNRECOGNIZED_PIPELINE_STAGE,
            format!("Unrecognized pipeline stage name: '{stage}'"),
        )
    }
}

fn count_arg(v: &Bson, stage: &str) -> CmdResult<u64> {
    match as_i64(v) {
        Some(n) if n >= 0 => Ok(n as u64),
        _ => Err(CommandError::bad_value(format!(
            "{stage} takes a non-negative integer"
        ))),
    }
}

/// Translates a pipeline, or explains why it cannot run yet.
pub fn translate(pipeline: &[Document]) -> CmdResult<CountPlan> {
    let mut plan = CountPlan {
        filter: Document::new(),
        skip: 0,
        limit: None,
        group_id: Bson::Null,
        output: String::new(),
    };
    let mut seen_group = false;
    for (i, stage) in pipeline.iter().enumerate() {
        if stage.len() != 1 {
            return Err(CommandError::new(
                code::FAILED_TO_PARSE,
                "a pipeline stage specification object must contain exactly one field",
            ));
        }
        let (name, arg) = stage
            .iter()
            .next()
            .map(|(k, v)| (k.as_str(), v))
            .unwrap_or(("", &Bson::Null));
        if seen_group {
            return Err(unsupported(
                name,
                &format!("stage {name} after $group is not supported"),
            ));
        }
        match name {
            "$match" if i == 0 => match arg {
                Bson::Document(d) => plan.filter = d.clone(),
                _ => {
                    return Err(CommandError::bad_value(
                        "the $match filter must be a document",
                    ))
                }
            },
            "$skip" if plan.limit.is_none() && plan.skip == 0 => {
                plan.skip = count_arg(arg, "$skip")?
            }
            "$limit" if plan.limit.is_none() => {
                plan.limit = Some(count_arg(arg, "$limit")?).filter(|l| *l > 0)
            }
            "$group" => {
                let Bson::Document(g) = arg else {
                    return Err(CommandError::bad_value(
                        "a group's fields must be specified in an object",
                    ));
                };
                plan.group_id = match g.get("_id") {
                    Some(v @ Bson::Null) => v.clone(),
                    Some(v) if as_i64(v) == Some(1) => v.clone(),
                    _ => {
                        return Err(unsupported(
                            name,
                            "$group is supported only with _id: 1 or null",
                        ))
                    }
                };
                let outputs: Vec<_> = g.iter().filter(|(k, _)| *k != "_id").collect();
                match outputs.as_slice() {
                    [(out, Bson::Document(acc))]
                        if acc.len() == 1 && acc.get("$sum").and_then(as_i64) == Some(1) =>
                    {
                        plan.output = (*out).clone()
                    }
                    _ => {
                        return Err(unsupported(
                            name,
                            "$group is supported only with one {$sum: 1} accumulator",
                        ))
                    }
                }
                seen_group = true;
            }
            "$match" | "$skip" | "$limit" => {
                return Err(unsupported(
                    name,
                    &format!("{name} is supported only in the count_documents order"),
                ))
            }
            other => {
                return Err(unsupported(
                    other,
                    &format!("stage {other} is not supported yet"),
                ))
            }
        }
    }
    if !seen_group {
        return Err(CommandError::new(
            code::COMMAND_NOT_SUPPORTED,
            "aggregate: only the count_documents pipeline is supported yet (it ends with {$group: {_id: 1, n: {$sum: 1}}}); use find for $match/$skip/$limit alone",
        ));
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn driver_shapes_translate() {
        let p = translate(&[
            doc! {"$match": {"a": 1}},
            doc! {"$skip": 2},
            doc! {"$limit": 5i64},
            doc! {"$group": {"_id": 1, "n": {"$sum": 1}}},
        ])
        .unwrap();
        assert_eq!(p.filter, doc! {"a": 1});
        assert_eq!((p.skip, p.limit, p.output.as_str()), (2, Some(5), "n"));
        let p = translate(&[
            doc! {"$match": {}},
            doc! {"$group": {"_id": Bson::Null, "n": {"$sum": 1}}},
        ])
        .unwrap();
        assert_eq!(p.group_id, Bson::Null);
    }

    #[test]
    fn other_pipelines_name_what_is_missing() {
        let e = translate(&[doc! {"$lookup": {}}]).unwrap_err();
        assert_eq!(e.code, code::COMMAND_NOT_SUPPORTED);
        assert!(e.message.contains("$lookup"));
        let e = translate(&[doc! {"$frobnicate": {}}]).unwrap_err();
        assert_eq!(e.code, code::UNRECOGNIZED_PIPELINE_STAGE);
        let e = translate(&[
            doc! {"$match": {}},
            doc! {"$group": {"_id": "$city", "n": {"$sum": 1}}},
        ])
        .unwrap_err();
        assert_eq!(e.code, code::COMMAND_NOT_SUPPORTED);
        let e = translate(&[doc! {"$match": {}}]).unwrap_err();
        assert_eq!(e.code, code::COMMAND_NOT_SUPPORTED);
        let e = translate(&[
            doc! {"$group": {"_id": 1, "n": {"$sum": 1}}},
            doc! {"$sort": {"n": 1}},
        ])
        .unwrap_err();
        assert!(e.message.contains("$sort"));
    }
}
