//! `hello`/`isMaster`, `buildInfo`, `getParameter`, `hostInfo`, `serverStatus`,
//! `connectionStatus`: what drivers and shells ask while connecting.

use bson::{doc, Bson, Document};

use super::Request;
use crate::errors::CmdResult;
use crate::wire::{Compressor, MAX_BSON_OBJECT_SIZE, MAX_MESSAGE_SIZE, MAX_WRITE_BATCH_SIZE};

/// The MongoDB version reported (wire version 21 is MongoDB 7.0).
pub const COMPAT_VERSION: &str = "7.0.0";

/// `hello` (and legacy `isMaster` when `legacy`).
pub fn hello(r: &mut Request<'_>, legacy: bool) -> CmdResult<Document> {
    let mut d = Document::new();
    if legacy {
        d.insert("ismaster", true);
    } else {
        d.insert("isWritablePrimary", true);
    }
    d.insert("helloOk", true);
    d.insert("maxBsonObjectSize", MAX_BSON_OBJECT_SIZE as i32);
    d.insert("maxMessageSizeBytes", MAX_MESSAGE_SIZE as i32);
    d.insert("maxWriteBatchSize", MAX_WRITE_BATCH_SIZE as i32);
    d.insert("localTime", bson::DateTime::now());
    d.insert("logicalSessionTimeoutMinutes", 30);
    d.insert("connectionId", r.conn.id as i32);
    d.insert("minWireVersion", 0);
    d.insert("maxWireVersion", 21);
    d.insert("readOnly", false);
    if let Ok(offered) = r.cmd.get_array("compression") {
        let chosen: Vec<Compressor> = offered
            .iter()
            .filter_map(|v| v.as_str().and_then(Compressor::from_name))
            .collect();
        if !chosen.is_empty() {
            d.insert(
                "compression",
                chosen.iter().map(|c| c.name()).collect::<Vec<_>>(),
            );
        }
        r.conn.compressors = chosen;
    }
    if r.shared.users.required() && r.cmd.get_str("saslSupportedMechs").is_ok() {
        d.insert("saslSupportedMechs", vec!["SCRAM-SHA-256"]);
    }
    Ok(d)
}

/// `buildInfo`.
pub fn build_info() -> Document {
    doc! {
        "version": COMPAT_VERSION,
        "gitVersion": "collection-store",
        "versionArray": [7, 0, 0, 0],
        "bits": 64,
        "debug": false,
        "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE as i32,
        "storageEngines": ["collection-store"],
        "modules": [],
        "collectionStore": env!("CARGO_PKG_VERSION"),
    }
}

/// `getParameter`: `featureCompatibilityVersion` and the wire limits.
pub fn get_parameter(r: &Request<'_>) -> CmdResult<Document> {
    let all = matches!(r.cmd.get("getParameter"), Some(Bson::String(s)) if s == "*");
    let mut d = Document::new();
    let known = [
        (
            "featureCompatibilityVersion",
            Bson::Document(doc! {"version": "7.0"}),
        ),
        (
            "maxBsonObjectSize",
            Bson::Int32(MAX_BSON_OBJECT_SIZE as i32),
        ),
        (
            "cursorTimeoutMillis",
            Bson::Int64(r.shared.cursors.limits().timeout.as_millis() as i64),
        ),
        (
            "transactionLifetimeLimitSeconds",
            Bson::Int64(r.shared.config.transaction_lifetime.as_secs() as i64),
        ),
    ];
    for (k, v) in known {
        if all || r.cmd.contains_key(k) {
            d.insert(k, v);
        }
    }
    Ok(d)
}

/// `hostInfo`.
pub fn host_info() -> Document {
    doc! {
        "system": {
            "hostname": std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
            "numCores": std::thread::available_parallelism().map(|n| n.get() as i32).unwrap_or(1),
        },
        "os": {"type": std::env::consts::OS},
    }
}

/// `connectionStatus`.
pub fn connection_status(r: &Request<'_>) -> Document {
    let users: Vec<Bson> = r
        .conn
        .user
        .iter()
        .map(|u| Bson::Document(doc! {"user": u.clone(), "db": "admin"}))
        .collect();
    doc! {"authInfo": {"authenticatedUsers": users, "authenticatedUserRoles": []}}
}

/// `serverStatus` (a small subset).
pub fn server_status(r: &Request<'_>) -> Document {
    let s = r.shared;
    doc! {
        "host": std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
        "version": COMPAT_VERSION,
        "process": "collection-store-server",
        "uptime": s.monitor.uptime().as_secs_f64(),
        "localTime": bson::DateTime::now(),
        "connections": {
            "current": s.connections() as i64,
            "totalCreated": s.total_connections() as i64,
        },
        "metrics": {"cursor": {"open": {"total": s.cursors.len() as i64}}},
        "collectionStore": {"lastLsn": s.engine.last_lsn() as i64, "dataFileBytes": s.engine.file_size() as i64},
    }
}
