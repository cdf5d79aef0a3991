//! The stress tester: many concurrent async clients (tokio tasks on
//! collection-store's `AsyncDatabase` / `AsyncCollection`) issuing a mix of
//! reads, updates, inserts, deletes and cross-collection transactions for a
//! fixed time, then `verify()` and invariant checks.
//!
//! **Expected errors** (counted, not fatal): `DuplicateKey` — one insert in
//! 20 deliberately reuses the email of an earlier document, so the unique
//! index must refuse it whenever that document still exists. An update or
//! delete that finds no document (it was deleted by another client) is a
//! success that matched nothing. **Everything else is unexpected** and makes
//! the run fail: any other error kind, a read that returns the wrong
//! document or an unsorted range, a `verify()` problem, or a broken
//! transaction invariant (the counter document, incremented by every
//! committed cross-collection transaction, must equal the number of
//! transaction documents, and both must equal the transactions the clients
//! saw committed).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use collection_store::{
    AsyncCollection, AsyncDatabase, DatabaseOptions, Durability, Error, IndexSpec,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::{json, Value};

use crate::data::{self, Rng};
use crate::latency::Latencies;
use crate::machine;

pub mod config;

use config::{Mix, OpKind};

/// The id of the counter document that every transaction increments.
pub const COUNTER_ID: &str = "txn-counter";

/// Durability mode for the stress database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DurabilityArg {
    /// `Durability::Immediate` (default).
    Immediate,
    /// `Durability::Batched { max_delay: 2 ms }`.
    Batched,
    /// `Durability::None`.
    None,
}

/// Parameters of a stress run.
#[derive(Clone, Debug)]
pub struct StressConfig {
    /// Concurrent clients (tokio tasks).
    pub clients: usize,
    /// How long clients issue operations.
    pub duration: Duration,
    /// Operation weights.
    pub mix: Mix,
    /// Collections to spread operations over (the first holds the counter,
    /// transactions insert into the last).
    pub collections: Vec<String>,
    /// Documents per collection before the clients start.
    pub seed_docs: u64,
    /// Database directory (a temporary one when `None`).
    pub dir: Option<PathBuf>,
    /// Durability mode.
    pub durability: DurabilityArg,
    /// Where to write the JSON summary.
    pub summary_json: Option<PathBuf>,
}

/// Per-kind statistics in the summary.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KindSummary {
    /// Operations issued.
    pub ops: u64,
    /// Operations that succeeded.
    pub ok: u64,
    /// Median latency, µs.
    pub p50_us: Option<f64>,
    /// 99th percentile, µs.
    pub p99_us: Option<f64>,
}

/// The outcome of `db.verify()`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifySummary {
    /// No problems found.
    pub ok: bool,
    /// Documents checked.
    pub documents: u64,
    /// Index entries checked.
    pub index_entries: u64,
    /// Problems (first 20).
    pub problems: Vec<String>,
}

/// What a stress run reports at the end (also written as JSON).
#[derive(Clone, Debug, Default, Serialize)]
pub struct StressSummary {
    /// Clients.
    pub clients: usize,
    /// Planned duration, seconds.
    pub duration_s: f64,
    /// Measured time from the first to the last operation, seconds.
    pub elapsed_s: f64,
    /// The mix used.
    pub mix: String,
    /// Collections.
    pub collections: Vec<String>,
    /// Durability mode.
    pub durability: String,
    /// Operations issued.
    pub total_ops: u64,
    /// Operations that succeeded.
    pub ok_ops: u64,
    /// Operations per second.
    pub ops_per_s: f64,
    /// ok / total.
    pub success_rate: f64,
    /// Expected errors by kind.
    pub expected_errors: BTreeMap<String, u64>,
    /// Unexpected errors by kind.
    pub unexpected_errors: BTreeMap<String, u64>,
    /// Errors of each kind per operation issued.
    pub error_rate_by_kind: BTreeMap<String, f64>,
    /// Latency over all operations, µs.
    pub p50_us: Option<f64>,
    /// 99th percentile, µs.
    pub p99_us: Option<f64>,
    /// 99.9th percentile, µs.
    pub p999_us: Option<f64>,
    /// Per operation kind.
    pub per_kind: BTreeMap<String, KindSummary>,
    /// Cross-collection transactions committed.
    pub txns_committed: u64,
    /// Peak resident set size (VmHWM), KiB.
    pub peak_rss_kib: Option<u64>,
    /// `db.verify()`.
    pub verify: VerifySummary,
    /// Transaction invariant held.
    pub invariant_ok: bool,
    /// What the invariant check found.
    pub invariant_detail: String,
    /// The run passed (verify ok, invariant ok, no unexpected error).
    pub passed: bool,
}

/// Shared counters the progress line reads.
#[derive(Default)]
struct Live {
    ops: AtomicU64,
    ok: AtomicU64,
    expected: AtomicU64,
    unexpected: AtomicU64,
}

/// Per-client results.
struct ClientOut {
    kinds: [KindCounts; 5],
    lat: Latencies,
    expected: BTreeMap<String, u64>,
    unexpected: BTreeMap<String, u64>,
    txns: u64,
}

#[derive(Default)]
struct KindCounts {
    ops: u64,
    ok: u64,
    lat: Option<Latencies>,
}

/// The variant name of an error (`DuplicateKey`, `Io`, ...).
pub fn error_kind(e: &Error) -> String {
    let dbg = format!("{e:?}");
    dbg.split(|c: char| !c.is_alphanumeric() && c != '_')
        .next()
        .unwrap_or("Unknown")
        .to_owned()
}

/// Whether an error kind is an expected outcome of the mix.
pub fn is_expected(kind: &str) -> bool {
    kind == "DuplicateKey"
}

struct Shared {
    db: AsyncDatabase,
    colls: Vec<AsyncCollection>,
    names: Vec<String>,
    next_id: Vec<AtomicI64>,
    mix: Mix,
    live: Live,
    deadline: Instant,
}

enum Outcome {
    Ok,
    Err(String),
}

fn classify(e: &Error) -> Outcome {
    Outcome::Err(error_kind(e))
}

async fn one_op(s: &Shared, client: usize, seq: u64, rng: &mut Rng, kind: OpKind) -> Outcome {
    let c = rng.below(s.colls.len() as u64) as usize;
    let coll = &s.colls[c];
    let top = s.next_id[c].load(Ordering::Relaxed).max(1) as u64;
    match kind {
        OpKind::Read => {
            let i = rng.below(top) as i64;
            match seq % 3 {
                0 => match coll.find_one(json!({"_id": i})).await {
                    Ok(Some(d))
                        if d["email"] != json!(data::email(i)) && d.get("dup").is_none() =>
                    {
                        Outcome::Err("ReadMismatch".into())
                    }
                    Ok(_) => Outcome::Ok,
                    Err(e) => classify(&e),
                },
                1 => match coll.find_one(json!({"email": data::email(i)})).await {
                    Ok(Some(d)) if d["_id"] != json!(i) && d.get("dup").is_none() => {
                        Outcome::Err("ReadMismatch".into())
                    }
                    Ok(_) => Outcome::Ok,
                    Err(e) => classify(&e),
                },
                _ => {
                    let lo = 18 + rng.below(59) as i64;
                    let r = coll
                        .find(json!({"age": {"$gte": lo, "$lt": lo + 5}}))
                        .sort(json!({"age": 1}))
                        .limit(20)
                        .to_vec()
                        .await;
                    match r {
                        Ok(docs) => {
                            let ages: Vec<i64> = docs
                                .iter()
                                .map(|d| d["age"].as_i64().unwrap_or(-1))
                                .collect();
                            let ok = ages.windows(2).all(|w| w[0] <= w[1])
                                && ages.iter().all(|a| (lo..lo + 5).contains(a));
                            if ok {
                                Outcome::Ok
                            } else {
                                Outcome::Err("ReadMismatch".into())
                            }
                        }
                        Err(e) => classify(&e),
                    }
                }
            }
        }
        OpKind::Update => {
            let i = rng.below(top) as i64;
            let age = 18 + rng.below(63) as i64;
            match coll
                .update_one(
                    json!({"_id": i}),
                    json!({"$inc": {"score": 1}, "$set": {"age": age}}),
                )
                .await
            {
                Ok(_) => Outcome::Ok,
                Err(e) => classify(&e),
            }
        }
        OpKind::Insert => {
            let id = s.next_id[c].fetch_add(1, Ordering::Relaxed);
            let mut doc = match serde_json::to_value(data::user(id)) {
                Ok(d) => d,
                Err(_) => return Outcome::Err("Serialize".into()),
            };
            if rng.below(20) == 0 {
                // Reuse an earlier document's email: the unique index must refuse it
                // while that document exists.
                doc["email"] = json!(data::email(rng.below(top) as i64));
                doc["dup"] = json!(true);
            }
            match coll.insert_one(doc).await {
                Ok(_) => Outcome::Ok,
                Err(e) => classify(&e),
            }
        }
        OpKind::Delete => {
            let i = rng.below(top) as i64;
            match coll.delete_one(json!({"_id": i})).await {
                Ok(_) => Outcome::Ok,
                Err(e) => classify(&e),
            }
        }
        OpKind::Txn => {
            let first = s.names[0].clone();
            let last = s.names[s.names.len() - 1].clone();
            let user = rng.below(top) as i64;
            let total = rng.below(10_000) as f64 / 100.0;
            let id = format!("t-{client}-{seq}");
            let r =
                s.db.transaction(move |tx| {
                    let counter = tx.collection(&first)?;
                    counter.update_one(json!({"_id": COUNTER_ID}), json!({"$inc": {"n": 1}}))?;
                    counter.update_one(json!({"_id": user}), json!({"$inc": {"orders": 1}}))?;
                    drop(counter);
                    let orders = tx.collection(&last)?;
                    orders.insert_one(json!({
                        "_id": id, "kind": "txn", "user": user, "total": total,
                        "email": format!("{id}@orders.example.com"),
                    }))?;
                    Ok(())
                })
                .await;
            match r {
                Ok(()) => Outcome::Ok,
                Err(e) => classify(&e),
            }
        }
    }
}

async fn client(s: Arc<Shared>, client: usize) -> ClientOut {
    let mut rng = Rng::new(0xABCD_0000 + client as u64);
    let mut out = ClientOut {
        kinds: Default::default(),
        lat: Latencies::new(),
        expected: BTreeMap::new(),
        unexpected: BTreeMap::new(),
        txns: 0,
    };
    let mut seq = 0u64;
    while Instant::now() < s.deadline {
        let kind = s.mix.pick(rng.next_u64());
        seq += 1;
        let t = Instant::now();
        let outcome = one_op(&s, client, seq, &mut rng, kind).await;
        let d = t.elapsed();
        out.lat.record(d);
        let k = &mut out.kinds[kind.index()];
        k.ops += 1;
        k.lat.get_or_insert_with(Latencies::new).record(d);
        s.live.ops.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Outcome::Ok => {
                k.ok += 1;
                if kind == OpKind::Txn {
                    out.txns += 1;
                }
                s.live.ok.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Err(kind) if is_expected(&kind) => {
                *out.expected.entry(kind).or_default() += 1;
                s.live.expected.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Err(kind) => {
                *out.unexpected.entry(kind).or_default() += 1;
                s.live.unexpected.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    out
}

async fn setup(
    cfg: &StressConfig,
    dir: &std::path::Path,
) -> Result<(AsyncDatabase, Vec<AsyncCollection>), Error> {
    let durability = match cfg.durability {
        DurabilityArg::Immediate => Durability::Immediate,
        DurabilityArg::Batched => Durability::Batched {
            max_delay: Duration::from_millis(2),
        },
        DurabilityArg::None => Durability::None,
    };
    let db =
        AsyncDatabase::open_with(dir, DatabaseOptions::default().durability(durability)).await?;
    let mut colls = Vec::new();
    for name in &cfg.collections {
        let c = db.collection(name).await?;
        c.create_index(IndexSpec::new([("email", 1)]).unique())
            .await?;
        c.create_index(IndexSpec::new([("age", 1)])).await?;
        let mut i = 0;
        while i < cfg.seed_docs {
            let end = (i + 10_000).min(cfg.seed_docs);
            let docs = (i as i64..end as i64)
                .map(|j| serde_json::to_value(data::user(j)))
                .collect::<Result<Vec<Value>, _>>()
                .map_err(|e| Error::InvalidDocument(e.to_string()))?;
            c.insert_many(docs).await?;
            i = end;
        }
        colls.push(c);
    }
    colls[0]
        .insert_one(json!({"_id": COUNTER_ID, "n": 0, "email": "counter@example.com"}))
        .await?;
    Ok((db, colls))
}

fn progress_line(live: &Live, started: Instant) -> String {
    let ops = live.ops.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    format!(
        "{:>5.0} s  ops {}  ({:.0}/s)  ok {}  expected errors {}  unexpected {}",
        secs,
        ops,
        ops as f64 / secs,
        live.ok.load(Ordering::Relaxed),
        live.expected.load(Ordering::Relaxed),
        live.unexpected.load(Ordering::Relaxed)
    )
}

/// Runs the stress test; returns the summary (`passed` says whether the run
/// succeeded) or an error that kept it from running at all.
pub fn run(cfg: &StressConfig) -> Result<StressSummary, String> {
    if cfg.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    if cfg.collections.is_empty() {
        return Err("--collections needs at least one name".into());
    }
    let tmp;
    let dir = match &cfg.dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
            d.clone()
        }
        None => {
            tmp = tempfile::Builder::new()
                .prefix("cs-stress-")
                .tempdir()
                .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
            tmp.path().to_path_buf()
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start tokio: {e}"))?;
    rt.block_on(run_async(cfg, &dir))
}

async fn run_async(cfg: &StressConfig, dir: &std::path::Path) -> Result<StressSummary, String> {
    eprintln!(
        "stress: {} clients for {:.0?}, mix {}, collections {}, seeding {} documents each in {}",
        cfg.clients,
        cfg.duration,
        cfg.mix.describe(),
        cfg.collections.join(","),
        cfg.seed_docs,
        dir.display()
    );
    let (db, colls) = setup(cfg, dir)
        .await
        .map_err(|e| format!("setup failed: {e}"))?;
    let started = Instant::now();
    let shared = Arc::new(Shared {
        db: db.clone(),
        colls,
        names: cfg.collections.clone(),
        next_id: cfg
            .collections
            .iter()
            .map(|_| AtomicI64::new(cfg.seed_docs as i64))
            .collect(),
        mix: cfg.mix.clone(),
        live: Live::default(),
        deadline: started + cfg.duration,
    });
    let tasks: Vec<_> = (0..cfg.clients)
        .map(|c| tokio::spawn(client(shared.clone(), c)))
        .collect();
    // Live progress line.
    let tty = std::io::stderr().is_terminal();
    let pb = if tty {
        let pb = ProgressBar::new_spinner();
        pb.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Some(pb)
    } else {
        None
    };
    let done = Arc::new(Mutex::new(false));
    let ticker = {
        let shared = shared.clone();
        let pb = pb.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut last_print = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if done.lock().map(|d| *d).unwrap_or(true) {
                    break;
                }
                let line = progress_line(&shared.live, started);
                match &pb {
                    Some(pb) => pb.set_message(line),
                    None if last_print.elapsed() >= Duration::from_secs(5) => {
                        eprintln!("{line}");
                        last_print = Instant::now();
                    }
                    None => {}
                }
            }
        })
    };
    let mut outs = Vec::new();
    let mut panicked = 0u64;
    for t in tasks {
        match t.await {
            Ok(o) => outs.push(o),
            Err(_) => panicked += 1,
        }
    }
    let elapsed = started.elapsed();
    if let Ok(mut d) = done.lock() {
        *d = true;
    }
    let _ = ticker.await;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    eprintln!("{}", progress_line(&shared.live, started));

    let mut s = StressSummary {
        clients: cfg.clients,
        duration_s: cfg.duration.as_secs_f64(),
        elapsed_s: elapsed.as_secs_f64(),
        mix: cfg.mix.describe(),
        collections: cfg.collections.clone(),
        durability: format!("{:?}", cfg.durability),
        ..Default::default()
    };
    let mut all = Latencies::new();
    let mut kinds: Vec<(u64, u64, Latencies)> = (0..5).map(|_| (0, 0, Latencies::new())).collect();
    for o in &outs {
        all.merge(&o.lat);
        for (i, k) in o.kinds.iter().enumerate() {
            kinds[i].0 += k.ops;
            kinds[i].1 += k.ok;
            if let Some(l) = &k.lat {
                kinds[i].2.merge(l);
            }
        }
        for (k, v) in &o.expected {
            *s.expected_errors.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.unexpected {
            *s.unexpected_errors.entry(k.clone()).or_default() += v;
        }
        s.txns_committed += o.txns;
    }
    if panicked > 0 {
        s.unexpected_errors
            .insert("ClientPanicked".into(), panicked);
    }
    for (kind, (ops, ok, lat)) in OpKind::ALL.iter().zip(kinds) {
        if ops > 0 {
            s.per_kind.insert(
                kind.name().into(),
                KindSummary {
                    ops,
                    ok,
                    p50_us: lat.quantile_us(0.5),
                    p99_us: lat.quantile_us(0.99),
                },
            );
        }
        s.total_ops += ops;
        s.ok_ops += ok;
    }
    s.ops_per_s = s.total_ops as f64 / elapsed.as_secs_f64().max(1e-9);
    s.success_rate = if s.total_ops == 0 {
        0.0
    } else {
        s.ok_ops as f64 / s.total_ops as f64
    };
    for (k, v) in s.expected_errors.iter().chain(s.unexpected_errors.iter()) {
        s.error_rate_by_kind
            .insert(k.clone(), *v as f64 / s.total_ops.max(1) as f64);
    }
    s.p50_us = all.quantile_us(0.5);
    s.p99_us = all.quantile_us(0.99);
    s.p999_us = all.quantile_us(0.999);

    // Transaction invariant: counter == transaction documents == committed.
    let counter = shared.colls[0].find_one(json!({"_id": COUNTER_ID})).await;
    let txn_docs = shared.colls[shared.colls.len() - 1]
        .count(json!({"kind": "txn"}))
        .await;
    match (counter, txn_docs) {
        (Ok(Some(c)), Ok(n)) => {
            let cn = c["n"].as_u64().unwrap_or(u64::MAX);
            s.invariant_ok = cn == n && n == s.txns_committed;
            s.invariant_detail = format!(
                "counter {cn}, transaction documents {n}, transactions committed {}",
                s.txns_committed
            );
        }
        (c, n) => {
            s.invariant_ok = false;
            s.invariant_detail =
                format!("could not read the invariant: counter {c:?}, documents {n:?}");
        }
    }
    match db.verify().await {
        Ok(r) => {
            s.verify = VerifySummary {
                ok: r.is_ok(),
                documents: r.documents,
                index_entries: r.index_entries,
                problems: r.problems.iter().take(20).cloned().collect(),
            };
        }
        Err(e) => {
            s.verify = VerifySummary {
                ok: false,
                problems: vec![format!("verify failed: {e}")],
                ..Default::default()
            };
        }
    }
    s.peak_rss_kib = machine::peak_rss_kib();
    s.passed = s.verify.ok && s.invariant_ok && s.unexpected_errors.is_empty() && s.total_ops > 0;
    Ok(s)
}

/// The summary as text for people.
pub fn render(s: &StressSummary) -> String {
    use crate::latency::fmt_us;
    use crate::report::fmt_num;
    let us = |v: Option<f64>| v.map(fmt_us).unwrap_or_else(|| "–".into());
    let mut out = String::new();
    out += &format!(
        "stress: {} clients, {:.1} s, mix {}, collections {}, durability {}\n",
        s.clients,
        s.elapsed_s,
        s.mix,
        s.collections.join(","),
        s.durability
    );
    out += &format!(
        "total operations {} ({}/s), succeeded {} ({:.3}%), cross-collection transactions committed {}\n",
        fmt_num(s.total_ops as f64),
        fmt_num(s.ops_per_s),
        fmt_num(s.ok_ops as f64),
        s.success_rate * 100.0,
        fmt_num(s.txns_committed as f64)
    );
    out += &format!(
        "latency p50 {}  p99 {}  p99.9 {}\n",
        us(s.p50_us),
        us(s.p99_us),
        us(s.p999_us)
    );
    for (k, v) in &s.per_kind {
        out += &format!(
            "  {k:<7} {:>10} ops  {:>10} ok  p50 {:>9}  p99 {:>9}\n",
            fmt_num(v.ops as f64),
            fmt_num(v.ok as f64),
            us(v.p50_us),
            us(v.p99_us)
        );
    }
    let errs = |m: &BTreeMap<String, u64>| {
        if m.is_empty() {
            "none".to_string()
        } else {
            m.iter()
                .map(|(k, v)| {
                    format!(
                        "{k} {v} ({:.3}%)",
                        *v as f64 * 100.0 / s.total_ops.max(1) as f64
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    out += &format!("expected errors: {}\n", errs(&s.expected_errors));
    out += &format!("unexpected errors: {}\n", errs(&s.unexpected_errors));
    out += &format!(
        "peak RSS: {}\n",
        s.peak_rss_kib
            .map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
            .unwrap_or_else(|| "unknown".into())
    );
    out += &format!(
        "verify: {} ({} documents, {} index entries{})\n",
        if s.verify.ok { "ok" } else { "FAILED" },
        s.verify.documents,
        s.verify.index_entries,
        if s.verify.problems.is_empty() {
            String::new()
        } else {
            format!("; {}", s.verify.problems.join("; "))
        }
    );
    out += &format!(
        "transaction invariant: {} ({})\n",
        if s.invariant_ok { "ok" } else { "FAILED" },
        s.invariant_detail
    );
    out += &format!("result: {}\n", if s.passed { "PASSED" } else { "FAILED" });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds() {
        let e = Error::DuplicateKey {
            index: "email_1".into(),
            key: "\"x\"".into(),
        };
        assert_eq!(error_kind(&e), "DuplicateKey");
        assert!(is_expected(&error_kind(&e)));
        assert_eq!(
            error_kind(&Error::InvalidFilter("x".into())),
            "InvalidFilter"
        );
        assert!(!is_expected("InvalidFilter"));
    }
}
