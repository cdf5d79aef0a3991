//! `distinct`: `{distinct: coll, key, query}` → `{values}`.

use bson::{doc, Document};

use super::{args, Request};
use crate::engine::Access;
use crate::errors::CmdResult;

/// `distinct`.
pub fn distinct(r: &mut Request<'_>) -> CmdResult<Document> {
    args::refuse(r.cmd, &["collation"])?;
    let name = r.collection()?;
    let key = args::str_field(r.cmd, "key")?.to_owned();
    let query = args::opt_doc(r.cmd, "query")?.unwrap_or_default();
    let values = r
        .shared
        .engine
        .with_coll(&r.scope, &name, Access::Read, move |c| match c {
            Some(c) => c.distinct(&key, &query),
            None => Ok(Vec::new()),
        })?;
    Ok(doc! {"values": values})
}
