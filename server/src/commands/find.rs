//! `find`, `getMore`, `killCursors` (paging strategies: `cursor.rs`).

use std::collections::VecDeque;

use bson::{doc, Bson, Document};

use super::{args, Request};
use crate::cursor::{self, Pager, Source, MAX_BATCH_BYTES};
use crate::engine::{Access, FindSpec, Scope};
use crate::errors::{code, CmdResult, CommandError};

/// Documents in a first batch when the client gives no `batchSize`.
const DEFAULT_FIRST_BATCH: u64 = 101;

/// `find`.
pub fn find(r: &mut Request<'_>) -> CmdResult<Document> {
    args::refuse(
        r.cmd,
        &[
            "collation",
            "tailable",
            "awaitData",
            "min",
            "max",
            "returnKey",
            "showRecordId",
            "oplogReplay",
        ],
    )?;
    let name = r.collection()?;
    let filter = args::opt_doc(r.cmd, "filter")?.unwrap_or_default();
    let sort = args::opt_doc(r.cmd, "sort")?.filter(|s| !s.is_empty());
    let projection = args::opt_doc(r.cmd, "projection")?.filter(|p| !p.is_empty());
    let skip = args::opt_u64(r.cmd, "skip")?.unwrap_or(0);
    let raw_limit = args::opt_i64(r.cmd, "limit")?;
    let batch = args::opt_u64(r.cmd, "batchSize")?;
    let mut single = args::opt_bool(r.cmd, "singleBatch")?.unwrap_or(false);
    let limit = match raw_limit {
        Some(l) if l < 0 => {
            single = true;
            Some(l.unsigned_abs())
        }
        Some(0) | None => None,
        Some(l) => Some(l as u64),
    };
    let first = batch.unwrap_or(DEFAULT_FIRST_BATCH);
    let engine = &r.shared.engine;
    let id_field = engine.with_coll(&r.scope, &name, Access::Read, |c| {
        Ok(c.map(|c| c.id_field()))
    })?;
    let Some(id_field) = id_field else {
        return Ok(args::cursor_reply("firstBatch", Vec::new(), 0, &name));
    };
    let by_key = match &sort {
        None => true,
        Some(s) => s.len() == 1 && s.get(&id_field).and_then(args::as_i64) == Some(1),
    };
    let (docs, source) = if by_key && matches!(r.scope, Scope::Auto) {
        let mut pager = Pager::new(name.clone(), id_field, filter, projection, skip, limit);
        let docs = pager.next_batch(engine, Some(first), MAX_BATCH_BYTES)?;
        let more = !pager.done();
        (docs, more.then_some(Source::Paged(Box::new(pager))))
    } else {
        let spec = FindSpec {
            filter,
            sort,
            projection,
            skip,
            limit,
        };
        let all = engine.with_coll(&r.scope, &name, Access::Read, move |c| match c {
            Some(c) => c.find(&spec),
            None => Ok(Vec::new()),
        })?;
        let cap = r.shared.cursors.limits().max_buffered_bytes;
        let size: usize = all.iter().map(cursor::approx_size).sum();
        if size > cap {
            return Err(CommandError::new(
                code::QUERY_EXCEEDED_MEMORY_LIMIT,
                format!(
                    "the sorted result is {size} bytes, above the {cap}-byte limit for a buffered cursor; add a limit, a narrower filter, or sort by the primary key ascending (streamed)"
                ),
            ));
        }
        let mut buf: VecDeque<Document> = all.into();
        let docs = cursor::take_buffered(&mut buf, Some(first), MAX_BATCH_BYTES);
        let more = !buf.is_empty();
        (docs, more.then_some(Source::Buffered(buf)))
    };
    let id = match source {
        Some(source) if !single => {
            r.shared.cursors.check_room(r.conn.id)?;
            r.shared
                .cursors
                .open(name.clone(), source, r.conn.id, r.conn.user.clone())
        }
        _ => 0,
    };
    Ok(args::cursor_reply("firstBatch", docs, id, &name))
}

/// `getMore`.
pub fn get_more(r: &mut Request<'_>) -> CmdResult<Document> {
    let id = match r.cmd.get("getMore") {
        Some(Bson::Int64(i)) => *i,
        Some(v) => args::as_i64(v)
            .ok_or_else(|| CommandError::field_type("getMore", "getMore", "a cursor id (long)"))?,
        None => return Err(CommandError::parse("getMore: missing cursor id")),
    };
    let coll = args::str_field(r.cmd, "collection")?;
    let ns = args::engine_name(&r.db, coll)?;
    let batch = args::opt_u64(r.cmd, "batchSize")?.filter(|b| *b > 0);
    let cursors = &r.shared.cursors;
    let mut c = cursors.take(id, &ns, r.conn.user.as_deref())?;
    let result = match &mut c.source {
        Source::Paged(p) => p
            .next_batch(&r.shared.engine, batch, MAX_BATCH_BYTES)
            .map(|d| (d, p.done())),
        Source::Buffered(buf) => {
            let d = cursor::take_buffered(buf, batch, MAX_BATCH_BYTES);
            Ok((d, buf.is_empty()))
        }
    };
    match result {
        Ok((docs, done)) => {
            let out_id = if done {
                cursors.finished(&c);
                0
            } else {
                cursors.put_back(id, c);
                id
            };
            Ok(args::cursor_reply("nextBatch", docs, out_id, &ns))
        }
        Err(e) => {
            cursors.finished(&c);
            Err(e)
        }
    }
}

/// `killCursors`.
pub fn kill_cursors(r: &mut Request<'_>) -> CmdResult<Document> {
    let ns = r.collection()?;
    let ids: Vec<i64> = match r.cmd.get("cursors") {
        Some(Bson::Array(a)) => a.iter().filter_map(args::as_i64).collect(),
        _ => {
            return Err(CommandError::field_type(
                "killCursors",
                "cursors",
                "an array of cursor ids",
            ))
        }
    };
    let (killed, missing) = r.shared.cursors.kill(&ns, &ids);
    Ok(doc! {
        "cursorsKilled": killed,
        "cursorsNotFound": missing,
        "cursorsAlive": [],
        "cursorsUnknown": [],
    })
}
