//! `delete`: `{delete: coll, deletes: [{q, limit: 0|1}], ordered}` → `{n, writeErrors?}`.

use bson::{doc, Bson, Document};

use super::{args, Request};
use crate::engine::Access;
use crate::errors::{CmdResult, CommandError};

/// `delete`.
pub fn delete(r: &mut Request<'_>) -> CmdResult<Document> {
    let name = r.collection()?;
    let ordered = args::opt_bool(r.cmd, "ordered")?.unwrap_or(true);
    let raw = args::doc_array(r.cmd, "deletes")?;
    let (n, errors) = r
        .shared
        .engine
        .with_coll(&r.scope, &name, Access::Read, move |c| {
            let mut n = 0u64;
            let mut errors = Vec::new();
            let Some(c) = c else { return Ok((n, errors)) };
            for (i, d) in raw.iter().enumerate() {
                let res = args::refuse(d, &["collation"]).and_then(|_| {
                    let filter = args::opt_doc(d, "q")?.unwrap_or_default();
                    let multi = match args::opt_i64(d, "limit")? {
                        Some(0) | None => true,
                        Some(1) => false,
                        Some(other) => {
                            return Err(CommandError::bad_value(format!(
                                "delete: limit must be 0 or 1, got {other}"
                            )))
                        }
                    };
                    c.delete(&filter, multi)
                });
                match res {
                    Ok(k) => n += k,
                    Err(e) => {
                        errors.push(Bson::Document(e.to_write_error(i)));
                        if ordered {
                            break;
                        }
                    }
                }
            }
            Ok((n, errors))
        })?;
    let mut reply = doc! {"n": n as i64};
    if !errors.is_empty() {
        reply.insert("writeErrors", errors);
    }
    Ok(reply)
}
