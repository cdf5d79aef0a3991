//! `aggregate`: a collection's pipeline through the engine's aggregation
//! pipeline (`Collection::aggregate`), its result returned through a cursor
//! like a sorted `find`'s (`cursor.batchSize`, then `getMore`).
//!
//! Before the engine sees the pipeline, collection names inside it
//! (`$lookup.from`, also within `$lookup` and `$facet` sub-pipelines) become
//! engine names (`from: "users"` in database `shop` is `shop.users`), and a
//! stage name MongoDB does not know is refused with 40324, as mongod does. A
//! stage MongoDB knows but the engine does not run (`$out`, `$merge`,
//! `$sample`, ...) fails with 115 CommandNotSupported.

use bson::{doc, Bson, Document};

use super::find::{buffered_reply, DEFAULT_FIRST_BATCH};
use super::{args, Request};
use crate::engine::Access;
use crate::errors::{code, CmdResult, CommandError};

/// MongoDB's stage names (so a misspelt one gets 40324, a real one the
/// engine does not run gets 115).
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

/// `aggregate`.
pub fn aggregate(r: &mut Request<'_>) -> CmdResult<Document> {
    args::refuse(r.cmd, &["collation", "hint", "let"])?;
    if !matches!(r.cmd.get("aggregate"), Some(Bson::String(_))) {
        return Err(CommandError::new(
            code::COMMAND_NOT_SUPPORTED,
            "aggregate: database-level pipelines ({aggregate: 1}) are not supported",
        ));
    }
    let name = r.collection()?;
    let mut pipeline = args::doc_array(r.cmd, "pipeline")?;
    qualify(&r.db, &mut pipeline)?;
    let explain = args::opt_bool(r.cmd, "explain")?.unwrap_or(false);
    if explain {
        let plan = r
            .shared
            .engine
            .with_coll(&r.scope, &name, Access::Read, move |c| match c {
                Some(c) => c.explain_aggregate(&pipeline).map(Some),
                None => Ok(None),
            })?;
        return Ok(match plan {
            Some(plan) => doc! {"explainVersion": "1", "collectionStore": plan},
            None => doc! {"explainVersion": "1", "collectionStore": Bson::Null},
        });
    }
    let cursor = match r.cmd.get("cursor") {
        Some(Bson::Document(c)) => c.clone(),
        Some(_) => return Err(CommandError::field_type("aggregate", "cursor", "a document")),
        None => {
            return Err(CommandError::parse(
                "aggregate: the 'cursor' option is required, except for aggregate with the explain argument",
            ))
        }
    };
    let first = args::opt_u64(&cursor, "batchSize")?.unwrap_or(DEFAULT_FIRST_BATCH);
    let all = r
        .shared
        .engine
        .with_coll(&r.scope, &name, Access::Read, move |c| match c {
            Some(c) => c.aggregate(&pipeline),
            // A missing collection holds no documents; the pipeline still
            // runs (a $group over nothing returns nothing, as in MongoDB).
            None => Ok(Vec::new()),
        })?;
    buffered_reply(
        r,
        &name,
        all,
        first,
        false,
        "add a $limit, a narrower $match or a $project earlier in the pipeline",
    )
}

/// Checks stage names and turns collection names in `pipeline` into engine
/// names of database `db`.
fn qualify(db: &str, pipeline: &mut [Document]) -> CmdResult<()> {
    for stage in pipeline {
        // A stage has one field; anything else the engine reports by position.
        if stage.len() != 1 {
            continue;
        }
        let Some((name, arg)) = stage.iter_mut().next() else {
            continue;
        };
        if !STAGES.contains(&name.as_str()) {
            return Err(CommandError::new(
                code::UNRECOGNIZED_PIPELINE_STAGE,
                format!("Unrecognized pipeline stage name: '{name}'"),
            ));
        }
        match (name.as_str(), arg) {
            ("$lookup", Bson::Document(spec)) => {
                if let Some(Bson::String(from)) = spec.get_mut("from") {
                    *from = args::engine_name(db, from)?;
                }
                if let Some(Bson::Array(sub)) = spec.get_mut("pipeline") {
                    qualify_array(db, sub)?;
                }
            }
            ("$facet", Bson::Document(facets)) => {
                for (_, sub) in facets.iter_mut() {
                    if let Bson::Array(sub) = sub {
                        qualify_array(db, sub)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn qualify_array(db: &str, stages: &mut [Bson]) -> CmdResult<()> {
    for s in stages {
        if let Bson::Document(d) = s {
            qualify(db, std::slice::from_mut(d))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_names_become_engine_names_at_every_depth() {
        let mut p = vec![
            doc! {"$lookup": {"from": "users", "localField": "u", "foreignField": "_id", "as": "user"}},
            doc! {"$facet": {"a": [
                {"$lookup": {"from": "items", "as": "i", "pipeline": [
                    {"$lookup": {"from": "tags", "as": "t", "localField": "x", "foreignField": "y"}}
                ]}}
            ]}},
        ];
        qualify("shop", &mut p).unwrap();
        assert_eq!(
            p[0].get_document("$lookup")
                .unwrap()
                .get_str("from")
                .unwrap(),
            "shop.users"
        );
        let facet = p[1].get_document("$facet").unwrap().get_array("a").unwrap();
        let Bson::Document(outer) = &facet[0] else {
            panic!()
        };
        let outer = outer.get_document("$lookup").unwrap();
        assert_eq!(outer.get_str("from").unwrap(), "shop.items");
        let Bson::Document(inner) = &outer.get_array("pipeline").unwrap()[0] else {
            panic!()
        };
        assert_eq!(
            inner
                .get_document("$lookup")
                .unwrap()
                .get_str("from")
                .unwrap(),
            "shop.tags"
        );
    }

    #[test]
    fn unknown_stage_names_get_40324_also_in_sub_pipelines() {
        let e = qualify("d", &mut [doc! {"$bogus": {}}]).unwrap_err();
        assert_eq!(e.code, code::UNRECOGNIZED_PIPELINE_STAGE);
        let e = qualify("d", &mut [doc! {"$facet": {"a": [{"$nope": 1}]}}]).unwrap_err();
        assert_eq!(e.code, code::UNRECOGNIZED_PIPELINE_STAGE);
        qualify(
            "d",
            &mut [doc! {"$out": "x"}, doc! {"$sample": {"size": 1}}],
        )
        .unwrap();
    }

    #[test]
    fn bad_collection_names_in_lookup_are_refused() {
        let e = qualify("d", &mut [doc! {"$lookup": {"from": "system.x", "as": "y", "localField": "a", "foreignField": "b"}}])
            .unwrap_err();
        assert_eq!(e.code, code::INVALID_NAMESPACE);
    }
}
