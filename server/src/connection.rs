//! One client connection: read a message, run it, write the reply, repeat.
//!
//! A malformed message (bad length, truncated or invalid BSON, unknown opcode,
//! garbage) closes this connection with a logged reason; other connections
//! are unaffected. Shutdown is noticed between requests, so a request in
//! flight always completes.

use std::sync::Arc;
use std::time::Duration;

use bson::doc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::commands;
use crate::errors::{code, CommandError};
use crate::monitor::names;
use crate::server::{ConnState, Shared};
use crate::wire::{self, decode_frame, Header, Request, HEADER_LEN};

/// Time allowed for the rest of a message once its header arrived.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Commands whose replies are never compressed (the compression spec's list).
const NEVER_COMPRESSED: &[&str] = &[
    "hello",
    "ismaster",
    "saslstart",
    "saslcontinue",
    "getnonce",
    "authenticate",
    "createuser",
    "updateuser",
];

/// Serves one connection until the client leaves, a protocol error, or shutdown.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    shared: Arc<Shared>,
    mut conn: ConnState,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut next_reply_id: i32 = 1;
    loop {
        let mut head = [0u8; HEADER_LEN];
        tokio::select! {
            r = stream.read_exact(&mut head) => {
                if r.is_err() {
                    return;
                }
            }
            _ = shutdown.changed() => return,
        }
        let Some(header) = Header::parse(&head) else {
            return;
        };
        let len = match header.checked_len() {
            Ok(l) => l,
            Err(e) => return protocol_error(&conn, &e.to_string()),
        };
        buf.clear();
        buf.extend_from_slice(&head);
        buf.resize(len, 0);
        match tokio::time::timeout(BODY_TIMEOUT, stream.read_exact(&mut buf[HEADER_LEN..])).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return protocol_error(&conn, "connection closed inside a message"),
            Err(_) => return protocol_error(&conn, "message body not received within 30 s"),
        }
        let frame = match decode_frame(&buf) {
            Ok(Some((frame, _))) => frame,
            Ok(None) => return protocol_error(&conn, "incomplete message"),
            Err(e) => return protocol_error(&conn, &e.to_string()),
        };
        let (db, cmd, legacy, more_to_come) = match frame.request {
            Request::Msg(m) => {
                let more = m.more_to_come();
                let db = m.body.get_str("$db").map(str::to_owned);
                match db {
                    Ok(db) => (db, m.body, false, more),
                    Err(_) => {
                        let e = CommandError::parse("OP_MSG command has no $db field");
                        if !write(
                            &mut stream,
                            &mut next_reply_id,
                            header.request_id,
                            false,
                            &e.to_reply(),
                            None,
                        )
                        .await
                        {
                            return;
                        }
                        continue;
                    }
                }
            }
            Request::Query(q) => {
                let name = q
                    .query
                    .keys()
                    .next()
                    .map(|k| k.to_ascii_lowercase())
                    .unwrap_or_default();
                let allowed = matches!(
                    name.as_str(),
                    "hello" | "ismaster" | "saslstart" | "saslcontinue"
                );
                match q.command_db() {
                    Some(db) if allowed => (db.to_owned(), q.query, true, false),
                    _ => {
                        let e = CommandError::new(
                            code::UNSUPPORTED_OP_QUERY_COMMAND,
                            format!("legacy OP_QUERY is accepted only for the handshake (hello, isMaster); '{name}' must be sent as OP_MSG"),
                        );
                        if !write(
                            &mut stream,
                            &mut next_reply_id,
                            header.request_id,
                            true,
                            &e.to_reply(),
                            None,
                        )
                        .await
                        {
                            return;
                        }
                        continue;
                    }
                }
            }
        };
        let name = cmd
            .keys()
            .next()
            .map(|k| k.to_ascii_lowercase())
            .unwrap_or_default();
        let compressor = frame
            .compressor
            .filter(|_| !NEVER_COMPRESSED.contains(&name.as_str()));
        let reply;
        (conn, reply) = match run_blocking(shared.clone(), conn, db, cmd).await {
            Some(v) => v,
            None => return,
        };
        if more_to_come {
            continue;
        }
        if !write(
            &mut stream,
            &mut next_reply_id,
            header.request_id,
            legacy,
            &reply,
            compressor,
        )
        .await
        {
            return;
        }
    }
}

/// Runs a command's blocking work. On a multi-threaded runtime it runs in
/// place (`block_in_place`: no hand-off to another thread, which costs more
/// than a point read); elsewhere on the blocking pool.
async fn run_blocking(
    shared: Arc<Shared>,
    mut conn: ConnState,
    db: String,
    cmd: bson::Document,
) -> Option<(ConnState, bson::Document)> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let work = move || {
        let reply = commands::execute(&shared, &mut conn, db, &cmd);
        (conn, reply)
    };
    let joined = if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
        let work = std::panic::AssertUnwindSafe(work);
        tokio::task::block_in_place(move || std::panic::catch_unwind(work))
            .map_err(|_| "a command panicked".to_owned())
    } else {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| e.to_string())
    };
    match joined {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!("{e}; closing the connection");
            None
        }
    }
}

async fn write<S: AsyncWrite + Unpin>(
    stream: &mut S,
    next_id: &mut i32,
    response_to: i32,
    legacy: bool,
    reply: &bson::Document,
    compressor: Option<wire::Compressor>,
) -> bool {
    let id = *next_id;
    *next_id = next_id.wrapping_add(1);
    let bytes = match wire::encode_reply(id, response_to, legacy, reply, compressor) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!("cannot encode a reply: {e}");
            let fallback = doc! {"ok": 0.0, "errmsg": format!("reply could not be encoded: {e}"), "code": code::INTERNAL_ERROR, "codeName": "InternalError"};
            match wire::encode_reply(id, response_to, legacy, &fallback, None) {
                Ok(b) => b,
                Err(_) => return false,
            }
        }
    };
    stream.write_all(&bytes).await.is_ok() && stream.flush().await.is_ok()
}

fn protocol_error(conn: &ConnState, reason: &str) {
    metrics::counter!(names::CONNECTIONS_CLOSED_BAD).increment(1);
    tracing::warn!(peer = %conn.peer, connection = conn.id, "closing connection: {reason}");
}
