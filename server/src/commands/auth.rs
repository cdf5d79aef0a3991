//! `saslStart` / `saslContinue` for SCRAM-SHA-256 (see `auth/scram.rs`).

use bson::spec::BinarySubtype;
use bson::{doc, Binary, Bson, Document};

use super::Request;
use crate::auth::scram;
use crate::errors::{code, CmdResult, CommandError};
use crate::server::ScramState;

fn payload(cmd: &Document) -> CmdResult<Vec<u8>> {
    match cmd.get("payload") {
        Some(Bson::Binary(b)) => Ok(b.bytes.clone()),
        Some(Bson::String(s)) => Ok(s.as_bytes().to_vec()),
        _ => Err(CommandError::field_type(
            "saslStart",
            "payload",
            "binary data",
        )),
    }
}

fn bin(bytes: &[u8]) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes: bytes.to_vec(),
    })
}

fn failed(r: &Request<'_>, user: &str, why: &str) -> CommandError {
    metrics::counter!(crate::monitor::names::AUTH_FAILURES).increment(1);
    tracing::warn!(peer = %r.conn.peer, user, "authentication failed: {why}");
    CommandError::new(code::AUTHENTICATION_FAILED, "Authentication failed.")
}

/// `saslStart`.
pub fn sasl_start(r: &mut Request<'_>) -> CmdResult<Document> {
    let mechanism = r.cmd.get_str("mechanism").unwrap_or("");
    if mechanism != "SCRAM-SHA-256" {
        return Err(CommandError::new(
            code::MECHANISM_UNAVAILABLE,
            format!("mechanism '{mechanism}' is not available; this server supports SCRAM-SHA-256"),
        ));
    }
    let skip_empty = r
        .cmd
        .get_document("options")
        .ok()
        .and_then(|o| o.get_bool("skipEmptyExchange").ok())
        .unwrap_or(false);
    let users = &r.shared.users;
    let nonce = scram::new_nonce();
    let (conv, server_first) = scram::start(&payload(r.cmd)?, |u| users.get(u).cloned(), &nonce)
        .map_err(|e| failed(r, "", &e.to_string()))?;
    r.conn.scram = Some(ScramState::AwaitFinal(Box::new(conv), skip_empty));
    Ok(doc! {"conversationId": 1, "done": false, "payload": bin(server_first.as_bytes())})
}

/// `saslContinue`.
pub fn sasl_continue(r: &mut Request<'_>) -> CmdResult<Document> {
    match r.conn.scram.take() {
        Some(ScramState::AwaitFinal(conv, skip_empty)) => match conv.finish(&payload(r.cmd)?) {
            Ok(server_final) => {
                if skip_empty {
                    r.conn.user = Some(conv.user.clone());
                    tracing::info!(peer = %r.conn.peer, user = %conv.user, "authenticated");
                    Ok(
                        doc! {"conversationId": 1, "done": true, "payload": bin(server_final.as_bytes())},
                    )
                } else {
                    r.conn.scram = Some(ScramState::AwaitEmpty(conv.user.clone()));
                    Ok(
                        doc! {"conversationId": 1, "done": false, "payload": bin(server_final.as_bytes())},
                    )
                }
            }
            Err(e) => Err(failed(r, &conv.user.clone(), &e.to_string())),
        },
        Some(ScramState::AwaitEmpty(user)) => {
            tracing::info!(peer = %r.conn.peer, user = %user, "authenticated");
            r.conn.user = Some(user);
            Ok(doc! {"conversationId": 1, "done": true, "payload": bin(&[])})
        }
        None => Err(failed(r, "", "saslContinue without saslStart")),
    }
}
