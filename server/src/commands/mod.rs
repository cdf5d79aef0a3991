//! Command dispatch: one file per command family, each a function from the
//! command document to the reply's fields (`ok` is added here). This module
//! also enforces authentication, maps `lsid`/`txnNumber` onto session
//! transactions and records every command's latency and error code.
//!
//! A database name is the part of a namespace before the first dot: the
//! MongoDB namespace `shop.orders` is the engine collection `shop.orders`.

pub mod aggregate;
pub mod args;
pub mod auth;
pub mod collections;
pub mod count;
pub mod databases;
pub mod delete;
pub mod distinct;
pub mod find;
pub mod find_and_modify;
pub mod handshake;
pub mod indexes;
pub mod insert;
pub mod sessions;
pub mod update;

use std::time::Instant;

use bson::{Bson, Document};

use crate::engine::Scope;
use crate::errors::{code, code_name, CmdResult, CommandError};
use crate::server::{ConnState, Shared};

/// Every command this server implements (also the metric labels).
pub const KNOWN: &[&str] = &[
    "hello",
    "isMaster",
    "ping",
    "buildInfo",
    "getParameter",
    "whatsmyuri",
    "hostInfo",
    "getCmdLineOpts",
    "connectionStatus",
    "serverStatus",
    "getLog",
    "saslStart",
    "saslContinue",
    "logout",
    "insert",
    "find",
    "getMore",
    "killCursors",
    "update",
    "delete",
    "findAndModify",
    "count",
    "distinct",
    "aggregate",
    "createIndexes",
    "listIndexes",
    "dropIndexes",
    "create",
    "drop",
    "listCollections",
    "listDatabases",
    "dropDatabase",
    "dbStats",
    "endSessions",
    "startSession",
    "refreshSessions",
    "killSessions",
    "killAllSessions",
    "commitTransaction",
    "abortTransaction",
];

/// Commands allowed before authentication.
const WITHOUT_AUTH: &[&str] = &[
    "hello",
    "ismaster",
    "ping",
    "buildinfo",
    "saslstart",
    "saslcontinue",
    "logout",
    "endsessions",
    "whatsmyuri",
];

/// One command being executed.
pub struct Request<'a> {
    /// Server-wide state.
    pub shared: &'a Shared,
    /// This connection's state.
    pub conn: &'a mut ConnState,
    /// The database (`$db`).
    pub db: String,
    /// The command document.
    pub cmd: &'a Document,
    /// The command name (first key).
    pub name: String,
    /// Where statements run (a session transaction or their own).
    pub scope: Scope,
}

impl Request<'_> {
    /// The engine collection for the collection named by the command's first field.
    pub fn collection(&self) -> CmdResult<String> {
        let coll = args::str_field(self.cmd, &self.name)?;
        args::engine_name(&self.db, coll)
    }

    /// `db.collection` for replies.
    pub fn namespace(&self) -> CmdResult<String> {
        self.collection()
    }
}

/// Runs a command; returns the reply document (never fails: errors become `ok: 0`).
pub fn execute(shared: &Shared, conn: &mut ConnState, db: String, cmd: &Document) -> Document {
    let start = Instant::now();
    let name = cmd.keys().next().cloned().unwrap_or_default();
    let result = run(shared, conn, db, cmd, &name);
    let elapsed = start.elapsed();
    let (reply, err) = match result {
        Ok(mut d) => {
            d.insert("ok", 1.0);
            (d, None)
        }
        Err(e) => {
            if e.code == code::INTERNAL_ERROR {
                tracing::error!(command = %name, "{}", e.message);
            } else {
                tracing::debug!(command = %name, code = e.code, "{}", e.message);
            }
            (e.to_reply(), Some((e.code, code_name(e.code))))
        }
    };
    // Write errors count as failures too.
    let err = err.or_else(|| {
        reply
            .get_array("writeErrors")
            .ok()
            .and_then(|a| a.first())
            .and_then(|e| e.as_document())
            .and_then(|e| e.get_i32("code").ok())
            .map(|c| (c, code_name(c)))
    });
    shared.monitor.record(&name, elapsed, err);
    reply
}

fn run(
    shared: &Shared,
    conn: &mut ConnState,
    db: String,
    cmd: &Document,
    name: &str,
) -> CmdResult<Document> {
    if name.is_empty() {
        return Err(CommandError::parse("empty command document"));
    }
    args::check_db_name(&db)?;
    let lower = name.to_ascii_lowercase();
    if shared.users.required() && conn.user.is_none() && !WITHOUT_AUTH.contains(&lower.as_str()) {
        return Err(CommandError::new(
            code::UNAUTHORIZED,
            format!("command {name} requires authentication"),
        ));
    }
    let txn = TxnFields::parse(cmd)?;
    let mut scope = Scope::Auto;
    let in_txn = txn.autocommit == Some(false)
        && !matches!(lower.as_str(), "committransaction" | "aborttransaction");
    if in_txn {
        let (lsid, n) = txn.require(name)?;
        let worker = if txn.start {
            shared.sessions.start(&shared.engine, &lsid, n)?
        } else {
            shared.sessions.current(&lsid, n)?
        };
        scope = Scope::Txn(worker);
    } else if txn.start {
        return Err(CommandError::bad_value(
            "startTransaction requires autocommit: false",
        ));
    }
    let mut req = Request {
        shared,
        conn,
        db,
        cmd,
        name: name.to_owned(),
        scope,
    };
    let out = dispatch(&mut req, &lower);
    if in_txn {
        let failed = match &out {
            Err(_) => true,
            Ok(d) => d.get_array("writeErrors").is_ok_and(|a| !a.is_empty()),
        };
        if failed {
            if let Some((lsid, n)) = txn.lsid.as_ref().zip(txn.number) {
                let _ = shared
                    .sessions
                    .abort(lsid, n, "a statement of the transaction failed");
            }
        }
    }
    out
}

fn dispatch(r: &mut Request<'_>, lower: &str) -> CmdResult<Document> {
    match lower {
        "hello" => handshake::hello(r, false),
        "ismaster" => handshake::hello(r, true),
        "ping" => Ok(Document::new()),
        "buildinfo" => Ok(handshake::build_info()),
        "getparameter" => handshake::get_parameter(r),
        "whatsmyuri" => Ok(bson::doc! {"you": r.conn.peer.clone()}),
        "hostinfo" => Ok(handshake::host_info()),
        "getcmdlineopts" => Ok(bson::doc! {"argv": [], "parsed": {}}),
        "connectionstatus" => Ok(handshake::connection_status(r)),
        "serverstatus" => Ok(handshake::server_status(r)),
        "getlog" => Ok(bson::doc! {"totalLinesWritten": 0, "log": []}),
        "saslstart" => auth::sasl_start(r),
        "saslcontinue" => auth::sasl_continue(r),
        "logout" => {
            r.conn.user = None;
            Ok(Document::new())
        }
        "insert" => insert::insert(r),
        "find" => find::find(r),
        "getmore" => find::get_more(r),
        "killcursors" => find::kill_cursors(r),
        "update" => update::update(r),
        "delete" => delete::delete(r),
        "findandmodify" => find_and_modify::find_and_modify(r),
        "count" => count::count(r),
        "distinct" => distinct::distinct(r),
        "aggregate" => aggregate::aggregate(r),
        "createindexes" => indexes::create_indexes(r),
        "listindexes" => indexes::list_indexes(r),
        "dropindexes" | "deleteindexes" => indexes::drop_indexes(r),
        "create" => collections::create(r),
        "drop" => collections::drop(r),
        "listcollections" => collections::list_collections(r),
        "listdatabases" => databases::list_databases(r),
        "dropdatabase" => databases::drop_database(r),
        "dbstats" => databases::db_stats(r),
        "endsessions" | "killsessions" => sessions::end_sessions(r),
        "killallsessions" => {
            r.shared.sessions.abort_all();
            Ok(Document::new())
        }
        "startsession" => Ok(sessions::start_session()),
        "refreshsessions" => Ok(Document::new()),
        "committransaction" => sessions::commit_transaction(r),
        "aborttransaction" => sessions::abort_transaction(r),
        _ => Err(CommandError::new(
            code::COMMAND_NOT_FOUND,
            format!(
                "no such command: '{}' (collection-store-server implements: {})",
                r.name,
                KNOWN.join(", ")
            ),
        )),
    }
}

/// The transaction fields every command may carry.
struct TxnFields {
    lsid: Option<Vec<u8>>,
    number: Option<i64>,
    autocommit: Option<bool>,
    start: bool,
}

impl TxnFields {
    fn parse(cmd: &Document) -> CmdResult<TxnFields> {
        let lsid = match cmd.get("lsid") {
            Some(Bson::Document(d)) => Some(session_id(d)?),
            Some(_) => {
                return Err(CommandError::field_type(
                    "command",
                    "lsid",
                    "a document {id: UUID}",
                ))
            }
            None => None,
        };
        let number =
            match cmd.get("txnNumber") {
                Some(v) => Some(args::as_i64(v).ok_or_else(|| {
                    CommandError::field_type("command", "txnNumber", "an integer")
                })?),
                None => None,
            };
        let autocommit = match cmd.get("autocommit") {
            Some(Bson::Boolean(b)) => Some(*b),
            Some(_) => {
                return Err(CommandError::field_type(
                    "command",
                    "autocommit",
                    "a boolean",
                ))
            }
            None => None,
        };
        if autocommit == Some(true) {
            return Err(CommandError::bad_value(
                "autocommit may only be false (it starts or continues a transaction)",
            ));
        }
        let start = matches!(cmd.get("startTransaction"), Some(Bson::Boolean(true)));
        Ok(TxnFields {
            lsid,
            number,
            autocommit,
            start,
        })
    }

    fn require(&self, name: &str) -> CmdResult<(Vec<u8>, i64)> {
        match (&self.lsid, self.number) {
            (Some(l), Some(n)) => Ok((l.clone(), n)),
            _ => Err(CommandError::bad_value(format!(
                "{name}: a transaction statement needs lsid and txnNumber"
            ))),
        }
    }
}

/// The bytes of a session id document `{id: UUID}`.
pub fn session_id(d: &Document) -> CmdResult<Vec<u8>> {
    match d.get("id") {
        Some(Bson::Binary(b)) => Ok(b.bytes.clone()),
        _ => Err(CommandError::field_type("command", "lsid.id", "a UUID")),
    }
}
