//! Crash recovery under SIGKILL, with real processes.
//!
//! Each cycle starts `crash_child` on the same database directory (so the
//! database accumulates across cycles). The child runs explicit
//! multi-collection transactions on [`TX_THREADS`] threads (transfers between
//! accounts that must keep a constant sum, plus an order and a ledger entry;
//! cancels that delete an order and refund; reassignments that move an order
//! to another user through the `orders.user` index; email swaps through the
//! unique `accounts.email` index, including a statement that violates it and
//! must fail alone; ledger pruning; deliberate rollbacks) and single
//! statements on [`GC_THREADS`] threads (group commit: atomic insert pairs,
//! upserts, deletes, and statements that must fail with a typed error). Every
//! acknowledged write is reported on a pipe. The parent SIGKILLs the child a
//! random 20–200 ms after its first acknowledged transaction and statement;
//! one cycle in ten 0–15 ms after spawn, inside setup and index builds; and
//! two in ten once every worker thread is blocked in the acknowledgement hook
//! after a durable commit (`CS_CRASH_HOLD_AFTER`), so that kills certainly
//! land between commits and their acknowledgements. Then it opens the
//! database and checks:
//!
//! - `Database::verify()` finds no problem (documents, index entries, counters);
//! - the ledger holds exactly the seqs `floor+1..=seq`: each committed
//!   transaction took the next seq, no gap, nothing from an aborted one;
//! - replaying the new ledger entries over the state verified in the previous
//!   cycle (an independent model in this file) gives exactly the accounts and
//!   orders found: a transaction is visible entirely or not at all, across
//!   `meta`, `accounts`, `orders` and `ledger`; the sum of balances is constant;
//! - every acknowledged transaction is in the ledger with its seq, and the
//!   accounts it reported (read inside the transaction) equal the model at
//!   that seq;
//! - each group-commit thread's documents equal the model after its
//!   acknowledged statements, optionally plus its one in-flight statement;
//!   failing statements returned the expected typed error and left nothing;
//! - queries through the indexes (`orders.user`, `accounts.email`,
//!   `events.key`) and `count` agree with the model;
//! - that each cycle checked what it was for: a randomly killed cycle at least
//!   one acknowledged transaction and statement; a cycle killed between
//!   commits and acknowledgements finds exactly the held transactions
//!   committed without acknowledgement and the held statements in flight and
//!   committed; over the run, every durability mode had both kinds of kill;
//! - the change log agrees with the data: a follower database in the parent
//!   applies the log entries that are new since the previous cycle and must
//!   then hold exactly the same collections, documents and indexes, at the
//!   same LSN (an entry commits with its data or not at all).
//!
//! Odd cycles keep the parent's handle open while the child runs and is
//! killed (so LMDB's lock file is shared: robust-mutex recovery of a writer
//! killed mid-commit, stale reader slots, map sizes set by another process);
//! even cycles close it first, so the child and the reopen are alone.
//! Durability cycles through Immediate, Batched and None (a process crash
//! must lose nothing acknowledged in any mode); some cycles start with a
//! 1 MiB map so that it grows while the child runs.
//!
//! Environment:
//! - `CS_CRASH_CYCLES`: kill cycles (default 100, about 12 s; e.g. `CS_CRASH_CYCLES=2000`
//!   for the long mode, about 4 minutes on 2 cores);
//! - `CS_CRASH_SEED`: replay a seed (printed at start and on failure; the kill
//!   timing still varies);
//! - `CS_CRASH_DIR`: use (and keep) this new or empty database directory
//!   instead of a temporary one;
//! - `CS_CRASH_KEEP_OPEN`: `always` / `never` overrides the odd/even rule;
//! - `CS_CRASH_CHILD`: path of the child binary (default: this package's `crash_child`).
//!
//! Run: `cargo test --release -p collection-store-tests --test crash_recovery -- --nocapture`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use collection_store::{Database, Error};
use collection_store_tests::crash::*;
use collection_store_tests::{clock_seed, Rng};
use serde_json::{json, Value};

type Check<T = ()> = Result<T, String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

fn db_err(what: &str) -> impl Fn(Error) -> String + '_ {
    move |e| format!("{what}: {e} ({e:?})")
}

fn int(v: &Value, field: &str) -> Check<i64> {
    v[field]
        .as_i64()
        .ok_or_else(|| format!("field '{field}' of {v} is not an integer"))
}

#[derive(Debug, Clone, PartialEq)]
struct Acct {
    balance: i64,
    email: String,
    last: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct Order {
    user: i64,
    to: i64,
    amount: i64,
    moves: i64,
}

/// What the database must hold, built from what was verified before plus the
/// new ledger entries and acknowledged statements.
#[derive(Debug, Clone, Default)]
struct Model {
    init: bool,
    seq: i64,
    floor: i64,
    /// The prune limit passed to the current child (the last verified seq).
    prune_limit: i64,
    accounts: BTreeMap<i64, Acct>,
    orders: BTreeMap<String, Order>,
    events: Vec<BTreeMap<String, Value>>,
    heads: Vec<Option<Value>>,
}

impl Model {
    fn new() -> Model {
        Model {
            events: vec![BTreeMap::new(); GC_THREADS as usize],
            heads: vec![None; GC_THREADS as usize],
            ..Model::default()
        }
    }

    fn initialize(&mut self) {
        self.init = true;
        self.seq = 0;
        self.floor = 0;
        self.accounts = (0..N_ACCOUNTS)
            .map(|i| {
                (
                    i,
                    Acct {
                        balance: INITIAL_BALANCE,
                        email: format!("user{i}@x"),
                        last: None,
                    },
                )
            })
            .collect();
    }

    fn acct(&mut self, a: i64) -> Check<&mut Acct> {
        self.accounts
            .get_mut(&a)
            .ok_or_else(|| format!("no account {a} in the model"))
    }

    fn oldest_order(&self, user: Option<i64>) -> Option<(String, Order)> {
        self.orders
            .iter()
            .find(|(_, o)| user.is_none_or(|u| o.user == u))
            .map(|(k, o)| (k.clone(), o.clone()))
    }

    /// Applies one ledger entry, checking that what the child recorded is
    /// what the model computes from the state before it.
    fn apply_entry(&mut self, e: &Value) -> Check {
        let id = e["_id"]
            .as_str()
            .ok_or_else(|| format!("ledger entry without string _id: {e}"))?
            .to_string();
        let seq = int(e, "seq")?;
        ensure!(
            seq == self.seq + 1,
            "ledger entry {id} has seq {seq}, expected {}",
            self.seq + 1
        );
        let kind = e["kind"].as_str().unwrap_or("");
        match kind {
            "transfer" => {
                let (a, b, amt, x) = (int(e, "a")?, int(e, "b")?, int(e, "amt")?, int(e, "x")?);
                let bal_a = self.acct(a)?.balance;
                ensure!(
                    x == amt.min(bal_a),
                    "transfer {id}: moved {x}, but min(amt {amt}, balance {bal_a}) differs"
                );
                let acc = self.acct(a)?;
                acc.balance -= x;
                acc.last = Some(id.clone());
                let acc = self.acct(b)?;
                acc.balance += x;
                acc.last = Some(id.clone());
                ensure!(
                    !self.orders.contains_key(&id),
                    "transfer {id}: order exists twice"
                );
                self.orders.insert(
                    id.clone(),
                    Order {
                        user: a,
                        to: b,
                        amount: x,
                        moves: 0,
                    },
                );
            }
            "cancel" => {
                let a = int(e, "a")?;
                let global = e["global"].as_bool().unwrap_or(false);
                ensure!(
                    global == (self.orders.len() as u64 > ORDER_SOFT_CAP),
                    "cancel {id}: global={global} but the model has {} orders",
                    self.orders.len()
                );
                let cand = self.oldest_order(if global { None } else { Some(a) });
                match (&e["order"], cand) {
                    (Value::Null, None) => {}
                    (Value::Null, Some((o, _))) => {
                        return Err(format!("cancel {id}: found no order, model has {o}"))
                    }
                    (got, None) => {
                        return Err(format!("cancel {id}: cancelled {got}, model has none"))
                    }
                    (got, Some((o, ord))) => {
                        ensure!(
                            got.as_str() == Some(o.as_str()),
                            "cancel {id}: cancelled {got}, the oldest matching order is {o}"
                        );
                        let y = int(e, "y")?;
                        let bal_to = self.acct(ord.to)?.balance;
                        ensure!(
                            y == ord.amount.min(bal_to),
                            "cancel {id}: refund {y} != min({}, {bal_to})",
                            ord.amount
                        );
                        self.orders.remove(&o);
                        if ord.to != ord.user {
                            let acc = self.acct(ord.to)?;
                            acc.balance -= y;
                            acc.last = Some(id.clone());
                            let acc = self.acct(ord.user)?;
                            acc.balance += y;
                            acc.last = Some(id.clone());
                        }
                    }
                }
            }
            "reassign" => {
                let (a, c) = (int(e, "a")?, int(e, "c")?);
                let cand = self.oldest_order(Some(a));
                match (&e["order"], cand) {
                    (Value::Null, None) => {}
                    (Value::Null, Some((o, ord))) => ensure!(
                        ord.to == c,
                        "reassign {id}: did nothing, but order {o} of user {a} exists"
                    ),
                    (got, None) => {
                        return Err(format!("reassign {id}: moved {got}, model has none"))
                    }
                    (got, Some((o, ord))) => {
                        ensure!(
                            got.as_str() == Some(o.as_str()) && ord.to != c,
                            "reassign {id}: moved {got}, expected {o} (to {}, c {c})",
                            ord.to
                        );
                        let ord = self.orders.get_mut(&o).expect("present");
                        ord.user = c;
                        ord.moves += 1;
                    }
                }
            }
            "email" => {
                let (a, b) = (int(e, "a")?, int(e, "b")?);
                if e["swap"].as_bool() == Some(true) {
                    let ea = self.acct(a)?.email.clone();
                    let eb = self.acct(b)?.email.clone();
                    let acc = self.acct(a)?;
                    acc.email = eb;
                    acc.last = Some(id.clone());
                    let acc = self.acct(b)?;
                    acc.email = ea;
                    acc.last = Some(id.clone());
                } else {
                    let acc = self.acct(a)?;
                    acc.email = format!("u{a}-{id}@x");
                    acc.last = Some(id.clone());
                }
            }
            "prune" => {
                let (floor, deleted) = (int(e, "floor")?, int(e, "deleted")?);
                if floor > self.floor {
                    ensure!(
                        floor == (seq - LEDGER_KEEP).min(self.prune_limit)
                            && deleted == floor - self.floor,
                        "prune {id}: floor {floor}, deleted {deleted}; model floor {}, seq {seq}",
                        self.floor
                    );
                    self.floor = floor;
                } else {
                    ensure!(
                        floor == self.floor && deleted == 0,
                        "prune {id}: floor {floor}, deleted {deleted}; model floor {}",
                        self.floor
                    );
                }
            }
            other => return Err(format!("ledger entry {id} has unknown kind {other:?}")),
        }
        self.seq = seq;
        Ok(())
    }

    /// Applies the `k`-th statement of group-commit thread `g` in `cycle`;
    /// `reported` is its acknowledgement line, checked against the model.
    fn apply_gc(&mut self, cycle: u64, g: u64, k: u64, reported: Option<&Value>) -> Check {
        let n = gc_n(cycle, k);
        let gi = g as usize;
        let op = gc_op(k);
        let ok = |r: &Value| -> Check<Value> {
            match r.get("ok") {
                Some(Value::Bool(true)) => Ok(r["v"].clone()),
                _ => Err(format!(
                    "thread {g} statement {k} ({op:?}) should succeed, got {r}"
                )),
            }
        };
        let fails = |r: &Value, kind: &str, needle: &str| -> Check {
            ensure!(
                r["err"] == kind && r["msg"].as_str().unwrap_or("").contains(needle),
                "thread {g} statement {k} ({op:?}) should fail with {kind} mentioning {needle}, got {r}"
            );
            Ok(())
        };
        let events = &mut self.events[gi];
        match op {
            GcOp::InsertPair => {
                let ids = [format!("e{g}-{n}-a"), format!("e{g}-{n}-b")];
                if let Some(r) = reported {
                    let v = ok(r)?;
                    ensure!(v == json!(ids), "thread {g} statement {k}: inserted {v}");
                }
                for (id, part) in ids.iter().zip(["a", "b"]) {
                    ensure!(!events.contains_key(id), "thread {g}: {id} inserted twice");
                    events.insert(
                        id.clone(),
                        json!({"_id": id, "g": g, "n": n, "key": format!("k{g}-{n}-{part}")}),
                    );
                }
            }
            GcOp::Head => {
                let head = &mut self.heads[gi];
                if let Some(r) = reported {
                    let v = ok(r)?;
                    let expect = if head.is_some() {
                        json!([1, 1, null])
                    } else {
                        json!([0, 0, format!("h{g}")])
                    };
                    ensure!(
                        v == expect,
                        "thread {g} upsert {k}: result {v}, expected {expect}"
                    );
                }
                match head {
                    Some(h) => {
                        h["count"] = json!(int(h, "count")? + 1);
                        h["n"] = json!(n);
                    }
                    None => {
                        *head =
                            Some(json!({"_id": format!("h{g}"), "count": 1, "n": n, "label": "x"}))
                    }
                }
            }
            GcOp::Prune => {
                let doomed: Vec<String> = events
                    .iter()
                    .filter(|(_, d)| d["n"].as_i64().unwrap_or(0) < n - EVENT_WINDOW)
                    .map(|(id, _)| id.clone())
                    .collect();
                if let Some(r) = reported {
                    let v = ok(r)?;
                    ensure!(
                        v == json!(doomed.len()),
                        "thread {g} delete {k}: deleted {v}, model deletes {}",
                        doomed.len()
                    );
                }
                for id in doomed {
                    events.remove(&id);
                }
            }
            GcOp::DupId => {
                if let Some(r) = reported {
                    fails(r, "DuplicateKey", "'_id_'")?;
                }
            }
            GcOp::DupKey => {
                if let Some(r) = reported {
                    fails(r, "DuplicateKey", "'key_1'")?;
                }
            }
            GcOp::BadInc => {
                if let Some(r) = reported {
                    fails(r, "TypeMismatch", "label")?;
                }
            }
        }
        Ok(())
    }
}

fn acct_json(i: i64, a: &Acct) -> Value {
    json!({"_id": i, "balance": a.balance, "email": a.email, "last": a.last})
}

fn order_json(id: &str, o: &Order) -> Value {
    json!({"_id": id, "user": o.user, "to": o.to, "amount": o.amount, "moves": o.moves})
}

/// What one child reported before it died.
#[derive(Default)]
struct Report {
    ready: bool,
    acked: HashMap<String, (i64, Value)>,
    aborted: BTreeSet<String>,
    /// Per group-commit thread: intents (k) and acknowledgements (k -> line).
    intents: Vec<BTreeSet<u64>>,
    acks: Vec<BTreeMap<u64, Value>>,
    /// Threads whose commit was durable when the child held its acknowledgement.
    held: BTreeSet<String>,
    lines: Vec<String>,
    partial_tail: bool,
}

impl Report {
    fn parse(lines: Vec<String>, partial_tail: bool) -> Check<Report> {
        let mut r = Report {
            intents: vec![BTreeSet::new(); GC_THREADS as usize],
            acks: vec![BTreeMap::new(); GC_THREADS as usize],
            partial_tail,
            ..Report::default()
        };
        for line in &lines {
            let v: Value = serde_json::from_str(line)
                .map_err(|e| format!("child wrote a malformed line {line:?}: {e}"))?;
            match v["t"].as_str().unwrap_or("") {
                "ready" => r.ready = true,
                "ack" => {
                    let id = v["id"].as_str().unwrap_or("").to_string();
                    r.acked.insert(id, (int(&v, "seq")?, v["post"].clone()));
                }
                "aborted" => {
                    r.aborted.insert(v["id"].as_str().unwrap_or("").to_string());
                }
                "gi" => {
                    r.intents[int(&v, "g")? as usize].insert(int(&v, "k")? as u64);
                }
                "ga" => {
                    r.acks[int(&v, "g")? as usize].insert(int(&v, "k")? as u64, v.clone());
                }
                "held" => {
                    r.held
                        .insert(v["thread"].as_str().unwrap_or("?").to_string());
                }
                "bug" => return Err(format!("the child reported an engine bug: {}", v["msg"])),
                other => return Err(format!("unexpected line type {other:?}: {line}")),
            }
        }
        r.lines = lines;
        Ok(r)
    }
}

#[derive(Default, Debug, Clone)]
struct Stats {
    cycles: u64,
    acked_txns: u64,
    aborted_txns: u64,
    unacked_committed_txns: u64,
    gc_acked: u64,
    gc_inflight_committed: u64,
    gc_inflight_absent: u64,
    killed_before_ready: u64,
    lines_cut_by_kill: u64,
    commits_hidden_until_writer_recovery: u64,
    max_seq: i64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.cycles += o.cycles;
        self.acked_txns += o.acked_txns;
        self.aborted_txns += o.aborted_txns;
        self.unacked_committed_txns += o.unacked_committed_txns;
        self.gc_acked += o.gc_acked;
        self.gc_inflight_committed += o.gc_inflight_committed;
        self.gc_inflight_absent += o.gc_inflight_absent;
        self.killed_before_ready += o.killed_before_ready;
        self.lines_cut_by_kill += o.lines_cut_by_kill;
        self.commits_hidden_until_writer_recovery += o.commits_hidden_until_writer_recovery;
        self.max_seq = self.max_seq.max(o.max_seq);
    }
}

/// How a cycle's child is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    /// 0-15 ms after spawn: inside setup and index builds.
    Early,
    /// A random 20-200 ms after the child acknowledged its first transaction
    /// and its first single statement.
    Random,
    /// Once every worker thread is blocked in the acknowledgement hook after
    /// a durable commit (`CS_CRASH_HOLD_AFTER`): every one of those commits
    /// is committed and unacknowledged when the kill lands.
    BetweenCommitAndAck,
}

/// What a whole run must show, per durability mode and in total.
#[derive(Default, Debug)]
struct Totals {
    all: Stats,
    per_mode: BTreeMap<&'static str, (Stats, BTreeMap<&'static str, u64>)>,
}
/// Checks the reopened database against the model and the child's report,
/// and advances the model to the verified state.
fn check_cycle(
    db: &Database,
    model: &mut Model,
    cycle: u64,
    rep: &Report,
    st: &mut Stats,
) -> Check {
    let report = db.verify().map_err(db_err("verify"))?;
    ensure!(
        report.is_ok(),
        "verify found problems: {:#?}",
        report.problems
    );

    let meta = db.collection("meta").map_err(db_err("meta"))?;
    let accounts = db.collection("accounts").map_err(db_err("accounts"))?;
    let orders = db.collection("orders").map_err(db_err("orders"))?;
    let ledger = db.collection("ledger").map_err(db_err("ledger"))?;
    let seq_doc = meta
        .find_one(json!({"_id": "seq"}))
        .map_err(db_err("read seq"))?;

    // --- transactions: replay the new ledger entries over the model.
    let prev_seq = model.seq;
    match &seq_doc {
        None => {
            ensure!(
                !model.init,
                "the seq document vanished (model seq {})",
                model.seq
            );
            for c in [&accounts, &orders, &ledger] {
                let n = c.count(json!({})).map_err(db_err("count"))?;
                ensure!(
                    n == 0,
                    "uninitialized database (no seq document) has {n} documents in {}: the init transaction is partially visible",
                    c.name()
                );
            }
            ensure!(
                rep.acked.is_empty(),
                "transactions were acknowledged but the seq document is missing"
            );
        }
        Some(sd) => {
            if !model.init {
                model.initialize();
            }
            let new_seq = int(sd, "seq")?;
            ensure!(
                new_seq >= prev_seq,
                "seq went backwards: {prev_seq} -> {new_seq}"
            );
            let entries = ledger
                .find(json!({"seq": {"$gt": prev_seq}}))
                .sort(json!({"seq": 1}))
                .to_vec()
                .map_err(db_err("read ledger"))?;
            ensure!(
                entries.len() as i64 == new_seq - prev_seq,
                "the seq document says {new_seq}, the ledger holds {} entries above {prev_seq} (first: {:?})",
                entries.len(),
                entries
                    .iter()
                    .take(20)
                    .map(|e| e["seq"].clone())
                    .collect::<Vec<_>>()
            );
            let mut seen = BTreeSet::new();
            let prefix = format!("c{cycle}w");
            for e in &entries {
                let id = e["_id"].as_str().unwrap_or("").to_string();
                ensure!(
                    id.starts_with(&prefix),
                    "ledger entry {id} (seq {}) does not belong to this cycle's child",
                    e["seq"]
                );
                ensure!(
                    !rep.aborted.contains(&id),
                    "transaction {id} was rolled back, yet its ledger entry is present"
                );
                model.apply_entry(e)?;
                match rep.acked.get(&id) {
                    Some((seq, post)) => {
                        ensure!(
                            *seq == model.seq,
                            "transaction {id} was acknowledged with seq {seq}, the ledger has {}",
                            model.seq
                        );
                        let post = post["accounts"].as_object().cloned().unwrap_or_default();
                        for (a, got) in post {
                            let a: i64 = a.parse().map_err(|_| format!("bad account key {a}"))?;
                            let want = acct_json(a, model.accounts.get(&a).expect("account"));
                            ensure!(
                                got == want,
                                "transaction {id} saw account {a} as {got} inside, the replay gives {want}"
                            );
                        }
                    }
                    None => st.unacked_committed_txns += 1,
                }
                seen.insert(id);
            }
            for (id, (seq, _)) in &rep.acked {
                ensure!(
                    seen.contains(id),
                    "LOST WRITE: transaction {id} was acknowledged (seq {seq}) but is not in the ledger (seqs {prev_seq}..{new_seq})"
                );
            }
            st.acked_txns += rep.acked.len() as u64;
            st.aborted_txns += rep.aborted.len() as u64;
            ensure!(
                int(sd, "floor")? == model.floor,
                "meta floor {} but model floor {}",
                sd["floor"],
                model.floor
            );
            let n_ledger = ledger.count(json!({})).map_err(db_err("count ledger"))?;
            ensure!(
                n_ledger as i64 == model.seq - model.floor,
                "ledger holds {n_ledger} entries, expected seq {} - floor {}",
                model.seq,
                model.floor
            );
            if n_ledger > 0 {
                let first = ledger
                    .find(json!({}))
                    .sort(json!({"seq": 1}))
                    .limit(1)
                    .to_vec()
                    .map_err(db_err("first ledger entry"))?;
                ensure!(
                    int(&first[0], "seq")? == model.floor + 1,
                    "oldest ledger entry has seq {}, expected {}",
                    first[0]["seq"],
                    model.floor + 1
                );
            }
        }
    }
    st.max_seq = model.seq;

    // --- full state of accounts and orders.
    let got_accounts = accounts
        .find(json!({}))
        .to_vec()
        .map_err(db_err("read accounts"))?;
    let want_accounts: Vec<Value> = model
        .accounts
        .iter()
        .map(|(i, a)| acct_json(*i, a))
        .collect();
    if model.init {
        let sum: i64 = got_accounts
            .iter()
            .map(|a| a["balance"].as_i64().unwrap_or(0))
            .sum();
        ensure!(
            sum == N_ACCOUNTS * INITIAL_BALANCE,
            "SUM INVARIANT VIOLATED: balances sum to {sum}, expected {}",
            N_ACCOUNTS * INITIAL_BALANCE
        );
    }
    ensure!(
        got_accounts == want_accounts,
        "accounts differ from the replay of the ledger:\n  db:    {got_accounts:?}\n  model: {want_accounts:?}"
    );
    let got_orders = orders
        .find(json!({}))
        .to_vec()
        .map_err(db_err("read orders"))?;
    let want_orders: Vec<Value> = model
        .orders
        .iter()
        .map(|(id, o)| order_json(id, o))
        .collect();
    ensure!(
        got_orders == want_orders,
        "orders differ from the replay of the ledger ({} in db, {} in model):\n  db:    {got_orders:?}\n  model: {want_orders:?}",
        got_orders.len(),
        want_orders.len()
    );
    ensure!(
        orders.count(json!({})).map_err(db_err("count"))? == model.orders.len() as u64
            && accounts.count(json!({})).map_err(db_err("count"))? == model.accounts.len() as u64,
        "count({{}}) disagrees with the documents"
    );
    // Index reads agree with the documents.
    for u in 0..N_ACCOUNTS {
        let mut got: Vec<String> = orders
            .find(json!({"user": u}))
            .to_vec()
            .map_err(db_err("orders by user"))?
            .iter()
            .map(|o| o["_id"].as_str().unwrap_or("").to_string())
            .collect();
        got.sort();
        let want: Vec<String> = model
            .orders
            .iter()
            .filter(|(_, o)| o.user == u)
            .map(|(id, _)| id.clone())
            .collect();
        ensure!(
            got == want,
            "orders.find({{user: {u}}}) returned {got:?}, expected {want:?}"
        );
        let n = orders
            .count(json!({"user": u}))
            .map_err(db_err("count by user"))?;
        ensure!(
            n == want.len() as u64,
            "orders.count({{user: {u}}}) = {n}, expected {}",
            want.len()
        );
    }
    for (i, a) in &model.accounts {
        let got = accounts
            .find(json!({"email": a.email}))
            .to_vec()
            .map_err(db_err("account by email"))?;
        ensure!(
            got.len() == 1 && got[0]["_id"] == json!(i),
            "accounts.find({{email: {:?}}}) returned {got:?}, expected account {i} only",
            a.email
        );
    }

    // --- group-commit threads.
    let events = db.collection("events").map_err(db_err("events"))?;
    let heads = db.collection("heads").map_err(db_err("heads"))?;
    for g in 0..GC_THREADS {
        let gi = g as usize;
        let acks = &rep.acks[gi];
        let intents = &rep.intents[gi];
        for (i, k) in acks.keys().enumerate() {
            ensure!(
                *k == i as u64,
                "thread {g}: acknowledgements are not contiguous: {:?}",
                acks.keys().collect::<Vec<_>>()
            );
            ensure!(
                intents.contains(k),
                "thread {g}: statement {k} acknowledged without intent"
            );
        }
        for (k, line) in acks {
            model.apply_gc(cycle, g, *k, Some(line))?;
        }
        st.gc_acked += acks.len() as u64;
        let next = acks.len() as u64;
        let inflight = intents.contains(&next);
        ensure!(
            intents.iter().all(|k| *k <= next),
            "thread {g}: intents beyond the next statement: {intents:?}"
        );
        let got: BTreeMap<String, Value> = events
            .find(json!({"g": g}))
            .to_vec()
            .map_err(db_err("events"))?
            .into_iter()
            .map(|d| (d["_id"].as_str().unwrap_or("").to_string(), d))
            .collect();
        let got_head = heads
            .find_one(json!({"_id": format!("h{g}")}))
            .map_err(db_err("heads"))?;
        let matches = |m: &Model| m.events[gi] == got && m.heads[gi] == got_head;
        if !matches(model) {
            let mut with = model.clone();
            if inflight {
                with.apply_gc(cycle, g, next, None)?;
            }
            ensure!(
                inflight && matches(&with),
                "thread {g}: events/head differ from the acknowledged statements{}:\n  db:    {:?} head {got_head:?}\n  model: {:?} head {:?}",
                if inflight {
                    format!(" (with or without in-flight statement {next}, {:?})", gc_op(next))
                } else {
                    String::new()
                },
                got.keys().collect::<Vec<_>>(),
                model.events[gi].keys().collect::<Vec<_>>(),
                model.heads[gi]
            );
            *model = with;
            st.gc_inflight_committed += 1;
        } else if inflight {
            st.gc_inflight_absent += 1;
        }
        for d in model.events[gi].values() {
            let n = events
                .count(json!({"key": d["key"].clone()}))
                .map_err(db_err("events by key"))?;
            ensure!(
                n == 1,
                "events.count({{key: {}}}) = {n}, expected 1",
                d["key"]
            );
        }
    }
    Ok(())
}

struct Harness {
    dir: PathBuf,
    seed: u64,
    cycles: u64,
    keep_open: Option<bool>,
}

fn child_exe() -> String {
    std::env::var("CS_CRASH_CHILD")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_crash_child").to_string())
}

/// Applies `db`'s new log entries to `shadow` and checks that both hold the
/// same collections, documents and indexes at the same LSN.
fn follow_and_compare(db: &Database, shadow: &Database) -> Check {
    let last = db.last_lsn().map_err(db_err("last lsn"))?;
    loop {
        let after = shadow.last_lsn().map_err(db_err("follower lsn"))?;
        let frames = db
            .read_log_frames(after, 4 << 20)
            .map_err(db_err("read log"))?;
        if frames.is_empty() {
            break;
        }
        shadow
            .apply_log_frames(&frames)
            .map_err(db_err("apply log"))?;
    }
    let followed = shadow.last_lsn().map_err(db_err("follower lsn"))?;
    ensure!(
        followed == last,
        "follower at LSN {followed}, database at {last}"
    );
    let names = db.list_collections().map_err(db_err("collections"))?;
    let shadow_names = shadow.list_collections().map_err(db_err("collections"))?;
    ensure!(
        names == shadow_names,
        "collections differ: {names:?} vs {shadow_names:?}"
    );
    for name in &names {
        let a = db.collection(name).map_err(db_err("collection"))?;
        let b = shadow.collection(name).map_err(db_err("collection"))?;
        let docs =
            |c: &collection_store::Collection| c.find(json!({})).to_vec().map_err(db_err("scan"));
        let (da, db_) = (docs(&a)?, docs(&b)?);
        ensure!(
            da == db_,
            "collection '{name}': {} documents vs {} replayed from the log (first difference: {:?})",
            da.len(),
            db_.len(),
            da.iter().zip(&db_).find(|(x, y)| x != y)
        );
        let ix = |c: &collection_store::Collection| -> Check<Vec<String>> {
            Ok(c.list_indexes()
                .map_err(db_err("indexes"))?
                .into_iter()
                .map(|s| s.index_name())
                .collect())
        };
        ensure!(
            ix(&a)? == ix(&b)?,
            "collection '{name}': indexes differ from the log's"
        );
    }
    let report = shadow.verify().map_err(db_err("verify follower"))?;
    ensure!(report.is_ok(), "follower verify: {:?}", report.problems);
    Ok(())
}

fn tail(lines: &[String], n: usize) -> String {
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Harness {
    fn run(&self) -> Check<Totals> {
        let shadow_dir = tempfile::tempdir().map_err(|e| format!("shadow dir: {e}"))?;
        let shadow = Database::open_with(
            shadow_dir.path(),
            collection_store::DatabaseOptions::default()
                .replica(true)
                .durability(collection_store::Durability::None),
        )
        .map_err(db_err("open the follower"))?;
        let mut model = Model::new();
        let mut totals = Totals::default();
        let mut rng = Rng::new(self.seed);
        let mut held: Option<Database> = None;
        for cycle in 0..self.cycles {
            let keep = self.keep_open.unwrap_or(cycle % 2 == 1);
            if keep && held.is_none() {
                held = Some(Database::open(&self.dir).map_err(db_err("open before child"))?);
            }
            if !keep {
                held = None;
            }
            let durability = ["immediate", "batched", "none"][(cycle % 3) as usize];
            let map = if cycle % 5 == 2 { 1 << 20 } else { 0 };
            let kill = match cycle % 10 {
                7 => Kill::Early,
                4 | 9 => Kill::BetweenCommitAndAck,
                _ => Kill::Random,
            };
            let child_seed = rng.next_u64();
            let delay = match kill {
                Kill::Early => Duration::from_millis(rng.range(0, 16)),
                Kill::Random => Duration::from_millis(rng.range(20, 201)),
                Kill::BetweenCommitAndAck => Duration::ZERO,
            };
            // Hold acknowledgements after a random number of them.
            let hold = (kill == Kill::BetweenCommitAndAck).then(|| rng.range(0, 40));
            let stderr_path = self.dir.with_extension(format!("child-{cycle}.stderr"));
            let ctx = format!(
                "cycle {cycle} (durability {durability}, map {map}, keep-open {keep}, kill {kill:?}, hold after {hold:?} acks, child seed {child_seed}, kill after {delay:?})"
            );
            let (rep, status) = self
                .run_child(
                    cycle,
                    child_seed,
                    durability,
                    map,
                    model.seq,
                    kill,
                    hold,
                    delay,
                    &stderr_path,
                )
                .map_err(|e| format!("{ctx}: {e}"))?;
            let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            let _ = std::fs::remove_file(&stderr_path);
            let fail = |e: String| {
                format!(
                    "{ctx}: {e}\n--- child exit: {status:?}\n--- child stderr:\n{stderr}\n--- last child lines:\n{}",
                    tail(&rep.lines, 15)
                )
            };
            if status.signal() != Some(9) {
                return Err(fail(format!(
                    "the child did not die by SIGKILL: {status:?}"
                )));
            }
            let mut st = Stats::default();
            if !rep.ready {
                st.killed_before_ready += 1;
            }
            st.lines_cut_by_kill += rep.partial_tail as u64;
            model.prune_limit = model.seq;
            let db = Database::open(&self.dir).map_err(|e| fail(format!("reopen: {e}")))?;
            if keep {
                // The handle stayed open while the child was killed. LMDB
                // readers of a live environment take the newest txnid from the
                // shared lock file, which a writer updates just after writing
                // the meta page: a child killed in between leaves a durable
                // commit that other processes do not see until the next
                // writer repairs the lock file (robust-mutex recovery). So the
                // view now must be consistent (checked on a copy of the
                // model), and the authoritative check follows a write
                // transaction that takes the writer lock and rolls back.
                let mut stale_model = model.clone();
                let mut scratch = Stats::default();
                check_cycle(&db, &mut stale_model, cycle, &rep, &mut scratch)
                    .map_err(|e| fail(format!("before writer recovery: {e}")))?;
                db.begin()
                    .map_err(|e| fail(format!("write transaction after the kill: {e}")))?
                    .rollback();
                check_cycle(&db, &mut model, cycle, &rep, &mut st)
                    .map_err(|e| fail(format!("after writer recovery: {e}")))?;
                if stale_model.seq != model.seq || stale_model.events != model.events {
                    st.commits_hidden_until_writer_recovery += 1;
                }
            } else {
                check_cycle(&db, &mut model, cycle, &rep, &mut st).map_err(fail)?;
            }
            follow_and_compare(&db, &shadow).map_err(|e| fail(format!("change log: {e}")))?;
            drop(db);
            st.cycles += 1;
            // What this cycle must have checked.
            match kill {
                Kill::Early => {}
                Kill::Random => {
                    if st.acked_txns == 0 || st.gc_acked == 0 {
                        return Err(fail(format!(
                            "the cycle checked no acknowledged transaction or statement: {st:?}"
                        )));
                    }
                }
                Kill::BetweenCommitAndAck => {
                    let tx = rep.held.iter().filter(|t| t.starts_with("tx")).count() as u64;
                    let gc = rep.held.iter().filter(|t| t.starts_with("gc")).count() as u64;
                    if st.unacked_committed_txns != tx || st.gc_inflight_committed != gc {
                        return Err(fail(format!(
                            "{tx} transactions and {gc} statements were committed and held \
                             unacknowledged ({:?}), but the checks found {} and {}",
                            rep.held, st.unacked_committed_txns, st.gc_inflight_committed
                        )));
                    }
                }
            }
            let kill_name = match kill {
                Kill::Early => "early",
                Kill::Random => "random",
                Kill::BetweenCommitAndAck => "between commit and ack",
            };
            let mode = totals.per_mode.entry(durability).or_default();
            mode.0.add(&st);
            *mode.1.entry(kill_name).or_default() += 1;
            totals.all.add(&st);
            let st = &totals.all;
            if st.cycles % 100 == 0 {
                eprintln!(
                    "  {} cycles, seq {}, {} transactions and {} statements acknowledged, data.mdb {} KiB",
                    st.cycles,
                    st.max_seq,
                    st.acked_txns,
                    st.gc_acked,
                    std::fs::metadata(self.dir.join("data.mdb"))
                        .map(|m| m.len() / 1024)
                        .unwrap_or(0)
                );
            }
        }
        Ok(totals)
    }

    #[allow(clippy::too_many_arguments)]
    fn run_child(
        &self,
        cycle: u64,
        seed: u64,
        durability: &str,
        map: usize,
        prune_limit: i64,
        kill: Kill,
        hold: Option<u64>,
        delay: Duration,
        stderr_path: &Path,
    ) -> Check<(Report, std::process::ExitStatus)> {
        let stderr = std::fs::File::create(stderr_path).map_err(|e| e.to_string())?;
        let mut command = Command::new(child_exe());
        if let Some(n) = hold {
            command.env("CS_CRASH_HOLD_AFTER", n.to_string());
        }
        let mut child = command
            .arg(&self.dir)
            .arg(cycle.to_string())
            .arg(seed.to_string())
            .arg(durability)
            .arg(map.to_string())
            .arg(prune_limit.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", child_exe()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => return false,
                    Ok(_) if buf.last() != Some(&b'\n') => return true, // cut by the kill
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf[..buf.len() - 1]).into_owned();
                        if tx.send(line).is_err() {
                            return false;
                        }
                    }
                }
            }
        });
        let mut lines = Vec::new();
        // Reads lines until `done(lines)` holds; fails when the child exits or
        // nothing satisfies it within 30 s (a hang guard, not a timing check).
        let mut read_until = |what: &str, done: &dyn Fn(&[String]) -> bool| -> Check {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !done(&lines) {
                match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(line) => lines.push(line),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if let Ok(Some(s)) = child.try_wait() {
                            lines.extend(rx.try_iter());
                            return Err(format!(
                                "the child exited before {what}: {s:?}; lines: {}",
                                tail(&lines, 10)
                            ));
                        }
                        if Instant::now() > deadline {
                            let _ = child.kill();
                            let _ = child.wait();
                            return Err(format!(
                                "hang: not {what} after 30 s; lines: {}",
                                tail(&lines, 10)
                            ));
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        return Err(format!("the child closed its output before {what}"))
                    }
                }
            }
            Ok(())
        };
        let has = |lines: &[String], t: &str| lines.iter().any(|l| l.contains(t));
        match kill {
            Kill::Early => {}
            Kill::Random => read_until(
                "ready with a first transaction and statement acknowledged",
                &|l| has(l, "\"ready\"") && has(l, "\"t\":\"ack\"") && has(l, "\"t\":\"ga\""),
            )?,
            Kill::BetweenCommitAndAck => {
                let workers = (TX_THREADS + GC_THREADS) as usize;
                read_until(
                    "holding every worker between a commit and its acknowledgement",
                    &|l| {
                        let held: BTreeSet<&str> = l
                            .iter()
                            .filter(|l| l.contains("\"t\":\"held\""))
                            .map(|l| l.as_str())
                            .filter_map(|l| l.split("\"thread\":\"").nth(1))
                            .filter_map(|r| r.split('"').next())
                            .collect();
                        held.len() == workers
                    },
                )?
            }
        }
        std::thread::sleep(delay);
        let exited_early = child.try_wait().map_err(|e| e.to_string())?;
        if exited_early.is_none() {
            child.kill().map_err(|e| format!("kill: {e}"))?;
        }
        let status = child.wait().map_err(|e| format!("wait: {e}"))?;
        let partial = reader.join().unwrap_or(false);
        lines.extend(rx.try_iter());
        let rep = Report::parse(lines.clone(), partial).map_err(|e| {
            format!(
                "{e}\n--- child exit: {status:?}\n--- last child lines:\n{}",
                tail(&lines, 15)
            )
        })?;
        Ok((rep, status))
    }
}

#[test]
fn sigkill_cycles_keep_acknowledged_transactions_and_atomicity() {
    let cycles: u64 = std::env::var("CS_CRASH_CYCLES")
        .ok()
        .map(|s| s.parse().expect("CS_CRASH_CYCLES must be a number"))
        .unwrap_or(100);
    let seed: u64 = std::env::var("CS_CRASH_SEED")
        .ok()
        .map(|s| s.parse().expect("CS_CRASH_SEED must be a number"))
        .unwrap_or_else(clock_seed);
    let keep_open = match std::env::var("CS_CRASH_KEEP_OPEN").as_deref() {
        Ok("always") => Some(true),
        Ok("never") => Some(false),
        _ => None,
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = match std::env::var("CS_CRASH_DIR") {
        Ok(d) => PathBuf::from(d),
        Err(_) => tmp.path().join("db"),
    };
    assert!(
        std::fs::read_dir(&dir).map_or(true, |mut d| d.next().is_none()),
        "{} must be a new or empty directory (the model starts from an empty database)",
        dir.display()
    );
    eprintln!(
        "crash test: {cycles} cycles, seed {seed} (CS_CRASH_SEED), dir {}",
        dir.display()
    );
    let h = Harness {
        dir: dir.clone(),
        seed,
        cycles,
        keep_open,
    };
    let start = Instant::now();
    match h.run() {
        Ok(totals) => {
            let st = &totals.all;
            eprintln!(
                "crash test passed in {:.1?}: {st:?}, database {} KiB",
                start.elapsed(),
                std::fs::metadata(dir.join("data.mdb"))
                    .map(|m| m.len() / 1024)
                    .unwrap_or(0)
            );
            assert_eq!(st.cycles, cycles);
            // The test is only meaningful if the children got work done, and
            // kills landed between commits and acknowledgements, in every mode.
            for (mode, (ms, kills)) in &totals.per_mode {
                eprintln!("  {mode}: {kills:?} cycles, {ms:?}");
                let random = kills.get("random").copied().unwrap_or(0);
                assert!(
                    ms.acked_txns >= random && ms.gc_acked >= random,
                    "mode {mode}: too little work acknowledged: {ms:?}"
                );
                if kills.contains_key("between commit and ack") {
                    assert!(
                        ms.unacked_committed_txns > 0 && ms.gc_inflight_committed > 0,
                        "mode {mode}: no kill landed between a commit and its acknowledgement: {ms:?}"
                    );
                }
            }
            if cycles >= 30 {
                for mode in ["immediate", "batched", "none"] {
                    assert!(
                        totals.per_mode.get(mode).is_some_and(|(_, k)| {
                            k.contains_key("between commit and ack") && k.contains_key("random")
                        }),
                        "mode {mode} missed a kind of kill: {:?}",
                        totals.per_mode
                    );
                }
            }
        }
        Err(e) => {
            let kept = tmp.keep();
            panic!(
                "crash test failed (seed {seed}; database kept in {}):\n{e}",
                kept.display()
            );
        }
    }
}
