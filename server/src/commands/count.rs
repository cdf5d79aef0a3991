//! `count`: `{count: coll, query, skip, limit}` → `{n}`.

use bson::{doc, Document};

use super::{args, Request};
use crate::engine::Access;
use crate::errors::CmdResult;

/// Applies skip and limit to a count, as `count` does.
pub fn clamp(n: u64, skip: u64, limit: Option<u64>) -> u64 {
    let n = n.saturating_sub(skip);
    limit.map_or(n, |l| n.min(l))
}

/// An integer reply field: int32 when it fits, as mongod answers.
pub fn int(n: u64) -> bson::Bson {
    match i32::try_from(n) {
        Ok(i) => bson::Bson::Int32(i),
        Err(_) => bson::Bson::Int64(n as i64),
    }
}

/// Counts documents matching `filter` in collection `name` (0 when missing).
pub fn count_in(r: &Request<'_>, name: &str, filter: Document) -> CmdResult<u64> {
    r.shared
        .engine
        .with_coll(&r.scope, name, Access::Read, move |c| match c {
            Some(c) => c.count(&filter),
            None => Ok(0),
        })
}

/// `count`.
pub fn count(r: &mut Request<'_>) -> CmdResult<Document> {
    args::refuse(r.cmd, &["collation"])?;
    let name = r.collection()?;
    let query = args::opt_doc(r.cmd, "query")?.unwrap_or_default();
    let skip = args::opt_u64(r.cmd, "skip")?.unwrap_or(0);
    let limit = args::opt_i64(r.cmd, "limit")?
        .filter(|l| *l != 0)
        .map(|l| l.unsigned_abs());
    let n = r
        .shared
        .engine
        .with_coll(&r.scope, &name, Access::Read, move |c| match c {
            Some(c) => c.count(&query),
            None => Ok(0),
        })?;
    Ok(doc! {"n": int(clamp(n, skip, limit))})
}
