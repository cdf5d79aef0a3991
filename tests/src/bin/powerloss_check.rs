//! Checks crash images for the power-loss test (`tests/power_loss.rs`).
//!
//! `powerloss_check <jobs file>`: each line of the jobs file is a JSON
//! object `{dir, mode, acked_t, acked_g: [..], acked_k}`; for each, prints
//! one line `{dir, ok, problem?}`. It is run with `COLLECTION_STORE_BOOT_ID`
//! set to a new value, so it acts as if the machine had rebooted, as it would
//! after a power loss. A crash
//! of this process is a failure of the image being checked.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};

use collection_store::Database;
use serde_json::{json, Value};

fn check(job: &Value) -> Result<(), String> {
    let dir = std::path::Path::new(job["dir"].as_str().unwrap());
    let durable = job["mode"] != "none";
    let db = Database::open(dir).map_err(|e| format!("open: {e}"))?;
    let report = db.verify().map_err(|e| format!("verify: {e}"))?;
    if !report.is_ok() {
        return Err(format!("verify: {:?}", report.problems));
    }
    let ids = |name: &str| -> Result<BTreeSet<u64>, String> {
        let c = db.collection(name).map_err(|e| format!("{name}: {e}"))?;
        Ok(c.find(json!({}))
            .to_vec()
            .map_err(|e| format!("{name}: {e}"))?
            .iter()
            .filter_map(|d| d["_id"].as_u64())
            .collect())
    };
    let a = ids("a")?;
    let b = ids("b")?;
    if a != b {
        return Err(format!("a partial transaction: a has {a:?}, b has {b:?}"));
    }
    let m = a.len() as u64;
    if a.iter().copied().ne(1..=m) {
        return Err(format!("transactions present are not a prefix: {a:?}"));
    }
    let n = db
        .collection("meta")
        .and_then(|c| c.find_one(json!({"_id": "n"})))
        .map_err(|e| format!("meta: {e}"))?
        .map_or(0, |d| d["n"].as_u64().unwrap_or(0));
    if n != m {
        return Err(format!("meta.n is {n} with {m} transactions present"));
    }
    if durable {
        let acked = job["acked_t"].as_u64().unwrap_or(0);
        if m < acked {
            return Err(format!(
                "transaction {acked} was acknowledged; only {m} survived"
            ));
        }
        let g = db.collection("g").map_err(|e| format!("g: {e}"))?;
        for id in job["acked_g"].as_array().into_iter().flatten() {
            if g.get(id.clone()).map_err(|e| format!("g: {e}"))?.is_none() {
                return Err(format!("acknowledged insert {id} is missing"));
            }
        }
        let acked_k = job["acked_k"].as_u64().unwrap_or(0);
        let position = db
            .consumers()
            .map_err(|e| format!("consumers: {e}"))?
            .into_iter()
            .find(|(name, _)| name == "c")
            .map(|(_, lsn)| lsn);
        if acked_k > 0 && position.is_none_or(|p| p < acked_k) {
            return Err(format!(
                "the consumer's acknowledged position {acked_k} went back to {position:?}"
            ));
        }
    }
    // The recovered database takes writes and keeps them across a reopen.
    db.collection("a")
        .and_then(|c| c.insert_one(json!({"_id": "after"})))
        .map_err(|e| format!("write after recovery: {e}"))?;
    drop(db);
    let db = Database::open(dir).map_err(|e| format!("reopen: {e}"))?;
    let after = db
        .collection("a")
        .and_then(|c| c.get(json!("after")))
        .map_err(|e| format!("reopen: {e}"))?;
    if after.is_none() {
        return Err("the write after recovery is gone after a reopen".into());
    }
    let report = db
        .verify()
        .map_err(|e| format!("verify after reopen: {e}"))?;
    if !report.is_ok() {
        return Err(format!("verify after reopen: {:?}", report.problems));
    }
    Ok(())
}

fn main() {
    // The test runs this with COLLECTION_STORE_BOOT_ID set: another boot,
    // as after a power loss.
    let jobs = std::fs::File::open(std::env::args().nth(1).expect("a jobs file")).expect("jobs");
    let stdout = std::io::stdout();
    for line in std::io::BufReader::new(jobs).lines() {
        let job: Value = serde_json::from_str(&line.expect("line")).expect("a job");
        let result = check(&job);
        let mut out = stdout.lock();
        let line = match result {
            Ok(()) => json!({"dir": job["dir"], "ok": true}),
            Err(p) => json!({"dir": job["dir"], "ok": false, "problem": p}),
        };
        writeln!(out, "{line}").unwrap();
        out.flush().unwrap();
    }
}
