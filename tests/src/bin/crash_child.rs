//! Child process of `tests/crash_recovery.rs`: writes random multi-collection
//! transactions and group-committed single statements until it is killed,
//! reporting every acknowledged write on stdout (one JSON object a line).
//!
//! `crash_child <dir> <cycle> <seed> <immediate|batched|none> <initial_map_bytes|0> <prune_limit> [max_ops]`
//!
//! `prune_limit`: prune transactions never delete ledger entries above this seq
//! (the parent passes the last seq it verified, so it sees every entry once).
//!
//! Lines (see `collection_store_tests::crash` for the data model):
//! - `{"t":"ready"}` after setup (indexes, initial accounts);
//! - `{"t":"ack","id":T,"seq":s,"kind":..,"post":{"accounts":{..}}}` after a transaction
//!   committed, with the state of the accounts it touched as read inside it;
//! - `{"t":"aborted","id":T}` after a transaction deliberately rolled back;
//! - `{"t":"gi","g":g,"k":k}` before and `{"t":"ga","g":g,"k":k,..}` after the
//!   `k`-th single statement of group-commit thread `g` (`ok` + `v`, or `err` + `msg`);
//! - `{"t":"bug","msg":..}` when the engine did something it must not (then exit 3);
//! - `{"t":"done"}` when `max_ops` statements per thread ran (no kill);
//! - `{"t":"held","thread":name,"lsn":n}` (only with `CS_CRASH_HOLD_AFTER=n`):
//!   after `n` acknowledged commits, every later commit's acknowledgement
//!   hook (`Database::set_commit_waiter`, which runs once the commit is
//!   durable and before the writer returns) reports and blocks forever, so a
//!   kill is certain to land between a commit and its acknowledgement.
//!   Threads are named `tx<w>` and `gc<g>`.
//!
//! A reader thread checks in every snapshot that the balances keep their sum.

use std::path::PathBuf;
use std::sync::Arc;

use collection_store::{
    Database, DatabaseOptions, Error, IndexSpec, Result, Transaction, UpdateOptions,
};
use collection_store_tests::crash::*;
use collection_store_tests::{durability_from_str, emit, error_kind, Rng};
use serde_json::{json, Value};

fn bug(msg: String) -> ! {
    emit(&json!({"t": "bug", "msg": msg}));
    std::process::exit(3);
}

fn int(v: &Value, field: &str) -> i64 {
    v[field]
        .as_i64()
        .unwrap_or_else(|| bug(format!("field {field} of {v} is not an integer")))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 7 {
        eprintln!("usage: crash_child <dir> <cycle> <seed> <durability> <initial_map_bytes|0> <prune_limit> [max_ops]");
        std::process::exit(2);
    }
    let dir = PathBuf::from(&args[1]);
    let cycle: u64 = args[2].parse().expect("cycle");
    let seed: u64 = args[3].parse().expect("seed");
    let durability = durability_from_str(&args[4]);
    let map: usize = args[5].parse().expect("initial map bytes");
    let prune_limit: i64 = args[6].parse().expect("prune_limit");
    let max_ops: Option<u64> = args.get(7).map(|s| s.parse().expect("max_ops"));

    let mut opts = DatabaseOptions::default().durability(durability);
    if map > 0 {
        opts = opts.initial_map_size(map);
    }
    let db = Database::open_with(&dir, opts).unwrap_or_else(|e| bug(format!("open: {e}")));
    if let Err(e) = setup(&db, cycle) {
        bug(format!("setup: {e}"));
    }
    if let Some(after) = std::env::var("CS_CRASH_HOLD_AFTER")
        .ok()
        .map(|s| s.parse::<u64>().expect("CS_CRASH_HOLD_AFTER"))
    {
        hold_acknowledgements_after(&db, after);
    }
    emit(&json!({"t": "ready"}));

    let db = Arc::new(db);
    let mut handles = Vec::new();
    let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name)
            .spawn(f)
            .unwrap_or_else(|e| bug(format!("spawn: {e}")))
    };
    for w in 0..TX_THREADS {
        let db = db.clone();
        let rng = Rng::new(seed.wrapping_mul(31).wrapping_add(w));
        handles.push(spawn(
            format!("tx{w}"),
            Box::new(move || tx_worker(&db, cycle, w, rng, prune_limit, max_ops)),
        ));
    }
    for g in 0..GC_THREADS {
        let db = db.clone();
        handles.push(spawn(
            format!("gc{g}"),
            Box::new(move || gc_worker(&db, cycle, g, max_ops)),
        ));
    }
    {
        let db = db.clone();
        std::thread::spawn(move || reader(&db));
    }
    for h in handles {
        if h.join().is_err() {
            bug("a worker thread panicked".into());
        }
    }
    emit(&json!({"t": "done"}));
}

/// After `after` acknowledged commits, blocks every later acknowledgement
/// forever (reporting it first): those commits are durable, never acknowledged.
fn hold_acknowledgements_after(db: &Database, after: u64) {
    let seen = std::sync::atomic::AtomicU64::new(0);
    db.set_commit_waiter(Some(Arc::new(move |lsn| {
        if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= after {
            let thread = std::thread::current().name().unwrap_or("?").to_string();
            emit(&json!({"t": "held", "thread": thread, "lsn": lsn}));
            loop {
                std::thread::park();
            }
        }
        Ok(())
    })));
}

fn setup(db: &Database, cycle: u64) -> Result<()> {
    db.collection("accounts")?
        .create_index(IndexSpec::new([("email", 1)]).unique())?;
    let orders = db.collection("orders")?;
    if cycle % 4 == 1 {
        // Rebuild the index over existing orders (a kill may land in the build).
        match orders.drop_index("user_1") {
            Ok(()) | Err(Error::IndexNotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    orders.create_index(IndexSpec::new([("user", 1)]))?;
    db.collection("ledger")?
        .create_index(IndexSpec::new([("seq", 1)]).unique())?;
    let events = db.collection("events")?;
    events.create_index(IndexSpec::new([("key", 1)]).unique())?;
    events.create_index(IndexSpec::new([("g", 1), ("n", 1)]))?;
    db.transaction(|tx| {
        let meta = tx.collection("meta")?;
        if meta.find_one(json!({"_id": "seq"}))?.is_some() {
            return Ok(());
        }
        let accounts = tx.collection("accounts")?;
        let docs = (0..N_ACCOUNTS)
            .map(|i| {
                json!({"_id": i, "balance": INITIAL_BALANCE, "email": format!("user{i}@x"), "last": null})
            })
            .collect();
        accounts.insert_many(docs)?;
        meta.insert_one(json!({"_id": "seq", "seq": 0, "floor": 0}))?;
        Ok(())
    })
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Transfer,
    Cancel,
    Reassign,
    Email,
    Prune,
    Abort,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Transfer => "transfer",
            Kind::Cancel => "cancel",
            Kind::Reassign => "reassign",
            Kind::Email => "email",
            Kind::Prune => "prune",
            Kind::Abort => "abort",
        }
    }
}

/// Random parameters of one transaction, chosen before it starts.
struct Params {
    a: i64,
    b: i64,
    amt: i64,
    swap: bool,
    prune_limit: i64,
}

fn tx_worker(
    db: &Database,
    cycle: u64,
    w: u64,
    mut rng: Rng,
    prune_limit: i64,
    max_ops: Option<u64>,
) {
    let orders = db
        .collection("orders")
        .unwrap_or_else(|e| bug(format!("{e}")));
    for k in 0.. {
        if max_ops.is_some_and(|m| k >= m) {
            return;
        }
        let id = format!("c{cycle}w{w}k{k}");
        let r = rng.range(0, 100);
        let kind = match r {
            0..=44 => Kind::Transfer,
            45..=61 => Kind::Cancel,
            62..=73 => Kind::Reassign,
            74..=86 => Kind::Email,
            87..=91 => Kind::Prune,
            _ => Kind::Abort,
        };
        // Keep the number of orders around ORDER_SOFT_CAP: above it, transfers
        // (which add an order) become cancels (which delete the oldest one).
        let kind = match kind {
            Kind::Transfer if orders.count(json!({})).unwrap_or(0) > ORDER_SOFT_CAP => Kind::Cancel,
            k => k,
        };
        let a = rng.range(0, N_ACCOUNTS as u64) as i64;
        let mut b = rng.range(0, N_ACCOUNTS as u64 - 1) as i64;
        if b >= a {
            b += 1;
        }
        let p = Params {
            a,
            b,
            amt: rng.range(1, 300) as i64,
            swap: rng.chance(1, 2),
            prune_limit,
        };
        let res = db.transaction(|tx| run_tx(tx, &id, kind, &p));
        match (kind, res) {
            (Kind::Abort, Err(Error::Aborted(_))) => {
                emit(&json!({"t": "aborted", "id": id}));
            }
            (Kind::Abort, other) => bug(format!("abort transaction {id} returned {other:?}")),
            (_, Ok((seq, post))) => {
                emit(&json!({"t": "ack", "id": id, "seq": seq, "kind": kind.name(), "post": post}))
            }
            (_, Err(e)) => bug(format!("transaction {id} ({}) failed: {e:?}", kind.name())),
        }
    }
}

fn account(tx: &Transaction<'_>, a: i64) -> Result<Value> {
    tx.collection("accounts")?
        .find_one(json!({"_id": a}))?
        .ok_or_else(|| Error::Aborted(format!("account {a} is missing")))
}

/// Adds `delta` to the balance of `a` and marks it touched by `id`.
fn credit(tx: &Transaction<'_>, a: i64, delta: i64, id: &str) -> Result<()> {
    let r = tx.collection("accounts")?.update_one(
        json!({"_id": a}),
        json!({"$inc": {"balance": delta}, "$set": {"last": id}}),
    )?;
    if r.matched_count != 1 {
        bug(format!(
            "{id}: update of account {a} matched {}",
            r.matched_count
        ));
    }
    Ok(())
}

fn oldest_order(tx: &Transaction<'_>, filter: Value) -> Result<Option<Value>> {
    Ok(tx
        .collection("orders")?
        .find(filter)
        .sort(json!({"_id": 1}))
        .limit(1)
        .to_vec()?
        .into_iter()
        .next())
}

/// One transaction; returns its seq and the touched accounts as read inside it.
fn run_tx(tx: &Transaction<'_>, id: &str, kind: Kind, p: &Params) -> Result<(i64, Value)> {
    let meta = tx.collection("meta")?;
    let seq_doc = meta
        .find_one(json!({"_id": "seq"}))?
        .ok_or_else(|| Error::Aborted("seq document missing".into()))?;
    let seq = int(&seq_doc, "seq") + 1;
    let floor = int(&seq_doc, "floor");
    meta.update_one(json!({"_id": "seq"}), json!({"$inc": {"seq": 1}}))?;
    let accounts = tx.collection("accounts")?;
    let orders = tx.collection("orders")?;
    let ledger = tx.collection("ledger")?;
    let mut touched: Vec<i64> = Vec::new();
    let entry = match kind {
        Kind::Transfer | Kind::Abort => {
            let bal_a = int(&account(tx, p.a)?, "balance");
            let x = p.amt.min(bal_a);
            credit(tx, p.a, -x, id)?;
            credit(tx, p.b, x, id)?;
            orders
                .insert_one(json!({"_id": id, "user": p.a, "to": p.b, "amount": x, "moves": 0}))?;
            touched.extend([p.a, p.b]);
            json!({"kind": "transfer", "a": p.a, "b": p.b, "amt": p.amt, "x": x})
        }
        Kind::Cancel => {
            let global = orders.count(json!({}))? > ORDER_SOFT_CAP;
            let filter = if global {
                json!({})
            } else {
                json!({"user": p.a})
            };
            match oldest_order(tx, filter)? {
                None => json!({"kind": "cancel", "a": p.a, "global": global, "order": null}),
                Some(o) => {
                    let n = orders.delete_one(json!({"_id": o["_id"].clone()}))?;
                    if n != 1 {
                        bug(format!("{id}: delete of order {} deleted {n}", o["_id"]));
                    }
                    let user = int(&o, "user");
                    let to = int(&o, "to");
                    let bal_to = int(&account(tx, to)?, "balance");
                    let y = int(&o, "amount").min(bal_to);
                    if to != user {
                        credit(tx, to, -y, id)?;
                        credit(tx, user, y, id)?;
                        touched.extend([to, user]);
                    }
                    json!({"kind": "cancel", "a": p.a, "global": global, "order": o["_id"], "y": y})
                }
            }
        }
        Kind::Reassign => match oldest_order(tx, json!({"user": p.a}))? {
            Some(o) if int(&o, "to") != p.b => {
                let r = orders.update_one(
                    json!({"_id": o["_id"].clone(), "user": p.a}),
                    json!({"$set": {"user": p.b}, "$inc": {"moves": 1}}),
                )?;
                if r.modified_count != 1 {
                    bug(format!(
                        "{id}: reassign of {} modified {}",
                        o["_id"], r.modified_count
                    ));
                }
                json!({"kind": "reassign", "a": p.a, "c": p.b, "order": o["_id"]})
            }
            _ => json!({"kind": "reassign", "a": p.a, "c": p.b, "order": null}),
        },
        Kind::Email => {
            let old_a = account(tx, p.a)?["email"].clone();
            let old_b = account(tx, p.b)?["email"].clone();
            // A statement that violates the unique index fails alone; the
            // transaction goes on as if it never ran.
            match accounts.update_one(json!({"_id": p.a}), json!({"$set": {"email": old_b}})) {
                Err(Error::DuplicateKey { index, .. }) if index == "email_1" => {}
                other => bug(format!("{id}: duplicate email update returned {other:?}")),
            }
            if p.swap {
                let tmp = format!("tmp-{id}");
                accounts.update_one(json!({"_id": p.a}), json!({"$set": {"email": tmp}}))?;
                accounts.update_one(
                    json!({"_id": p.b}),
                    json!({"$set": {"email": old_a, "last": id}}),
                )?;
                accounts.update_one(
                    json!({"_id": p.a}),
                    json!({"$set": {"email": old_b, "last": id}}),
                )?;
                touched.extend([p.a, p.b]);
            } else {
                accounts.update_one(
                    json!({"_id": p.a}),
                    json!({"$set": {"email": format!("u{}-{id}@x", p.a), "last": id}}),
                )?;
                touched.push(p.a);
            }
            json!({"kind": "email", "a": p.a, "b": p.b, "swap": p.swap})
        }
        Kind::Prune => {
            let new_floor = (seq - LEDGER_KEEP).min(p.prune_limit);
            if new_floor > floor {
                let n = ledger.delete_many(json!({"seq": {"$lte": new_floor}}))?;
                meta.update_one(json!({"_id": "seq"}), json!({"$set": {"floor": new_floor}}))?;
                json!({"kind": "prune", "floor": new_floor, "deleted": n})
            } else {
                json!({"kind": "prune", "floor": floor, "deleted": 0})
            }
        }
    };
    let mut entry = entry;
    entry["_id"] = json!(id);
    entry["seq"] = json!(seq);
    ledger.insert_one(entry)?;
    if let Kind::Abort = kind {
        return Err(Error::Aborted("deliberate rollback".into()));
    }
    let mut post = serde_json::Map::new();
    for a in touched {
        post.insert(a.to_string(), account(tx, a)?);
    }
    Ok((seq, json!({ "accounts": post })))
}

fn gc_worker(db: &Database, cycle: u64, g: u64, max_ops: Option<u64>) {
    let events = db
        .collection("events")
        .unwrap_or_else(|e| bug(format!("{e}")));
    let heads = db
        .collection("heads")
        .unwrap_or_else(|e| bug(format!("{e}")));
    for k in 0.. {
        if max_ops.is_some_and(|m| k >= m) {
            return;
        }
        let n = gc_n(cycle, k);
        emit(&json!({"t": "gi", "g": g, "k": k}));
        let doc = |n: i64, part: &str, key: String| json!({"_id": format!("e{g}-{n}-{part}"), "g": g, "n": n, "key": key});
        let res: Result<Value> = match gc_op(k) {
            GcOp::InsertPair => events
                .insert_many(vec![
                    doc(n, "a", format!("k{g}-{n}-a")),
                    doc(n, "b", format!("k{g}-{n}-b")),
                ])
                .map(Value::from),
            GcOp::Head => heads
                .update_one_with(
                    json!({"_id": format!("h{g}")}),
                    json!({"$inc": {"count": 1}, "$set": {"n": n}, "$setOnInsert": {"label": "x"}}),
                    UpdateOptions::upsert(),
                )
                .map(|r| json!([r.matched_count, r.modified_count, r.upserted_id])),
            GcOp::Prune => events
                .delete_many(json!({"g": g, "n": {"$lt": n - EVENT_WINDOW}}))
                .map(Value::from),
            GcOp::DupId => events
                .insert_one(doc(n - 1, "a", format!("k{g}-{n}-dupid")))
                .map(|v| json!(v)),
            GcOp::DupKey => events
                .insert_one(doc(n, "z", format!("k{g}-{}-a", n - 2)))
                .map(|v| json!(v)),
            GcOp::BadInc => heads
                .update_one(
                    json!({"_id": format!("h{g}")}),
                    json!({"$inc": {"label": 1}}),
                )
                .map(|r| json!([r.matched_count, r.modified_count])),
        };
        match res {
            Ok(v) => emit(&json!({"t": "ga", "g": g, "k": k, "ok": true, "v": v})),
            Err(e) => emit(
                &json!({"t": "ga", "g": g, "k": k, "err": error_kind(&e), "msg": e.to_string()}),
            ),
        }
    }
}

/// Reads all accounts in one snapshot, over and over: the balances must
/// always sum to the constant (snapshot isolation while transactions commit).
fn reader(db: &Database) {
    let accounts = db
        .collection("accounts")
        .unwrap_or_else(|e| bug(format!("{e}")));
    loop {
        let all = accounts
            .find(json!({}))
            .to_vec()
            .unwrap_or_else(|e| bug(format!("reader: {e:?}")));
        let sum: i64 = all.iter().map(|a| int(a, "balance")).sum();
        if all.len() as i64 != N_ACCOUNTS || sum != N_ACCOUNTS * INITIAL_BALANCE {
            bug(format!(
                "reader saw {} accounts summing to {sum} in one snapshot",
                all.len()
            ));
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}
