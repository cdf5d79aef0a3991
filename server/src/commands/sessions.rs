//! `endSessions`, `startSession`, `commitTransaction`, `abortTransaction`.

use bson::{doc, Bson, Document};

use super::{args, session_id, Request};
use crate::errors::{CmdResult, CommandError};

fn lsid_and_number(r: &Request<'_>) -> CmdResult<(Vec<u8>, i64)> {
    let lsid = r
        .cmd
        .get_document("lsid")
        .map_err(|_| CommandError::bad_value(format!("{}: requires lsid", r.name)))
        .and_then(session_id)?;
    let n = r
        .cmd
        .get("txnNumber")
        .and_then(args::as_i64)
        .ok_or_else(|| CommandError::bad_value(format!("{}: requires txnNumber", r.name)))?;
    Ok((lsid, n))
}

/// `commitTransaction`.
pub fn commit_transaction(r: &mut Request<'_>) -> CmdResult<Document> {
    let (lsid, n) = lsid_and_number(r)?;
    r.shared.sessions.commit(&lsid, n)?;
    Ok(Document::new())
}

/// `abortTransaction`.
pub fn abort_transaction(r: &mut Request<'_>) -> CmdResult<Document> {
    let (lsid, n) = lsid_and_number(r)?;
    r.shared.sessions.abort(&lsid, n, "aborted by the client")?;
    Ok(Document::new())
}

/// `endSessions` / `killSessions`: aborts their open transactions.
pub fn end_sessions(r: &mut Request<'_>) -> CmdResult<Document> {
    let ids: Vec<Vec<u8>> = match r.cmd.iter().next().map(|(_, v)| v) {
        Some(Bson::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_document().and_then(|d| session_id(d).ok()))
            .collect(),
        _ => Vec::new(),
    };
    r.shared.sessions.end(&ids);
    Ok(Document::new())
}

/// `startSession`: a new session id.
pub fn start_session() -> Document {
    let mut id = [0u8; 16];
    let _ = getrandom::fill(&mut id);
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    doc! {
        "id": {"id": Bson::Binary(bson::Binary { subtype: bson::spec::BinarySubtype::Uuid, bytes: id.to_vec() })},
        "timeoutMinutes": 30,
    }
}
