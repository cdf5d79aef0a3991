//! The aggregation benchmark (`collection-store-bench agg`): three report
//! queries at N documents, collection-store's pipeline beside SQLite's SQL
//! over the same JSON documents (feature `sqlite`), each answer checked
//! against the document generator.
//!
//! | id | query | collection-store | SQLite |
//! |---|---|---|---|
//! | A1 | users per city with the average score | `$group` over every user | `GROUP BY` over `json_extract` |
//! | A2 | revenue per user city over every order | `$lookup` orders → users by `_id`, `$unwind`, `$group` | `JOIN` on the primary key, `GROUP BY` |
//! | A3 | users per city, ages 30..40 | `$match` on the `age` index, `$group` | `WHERE` on the `age` expression index, `GROUP BY` |
//!
//! Each query runs once to warm the cache, then repeatedly for `--seconds`
//! (at least 3 runs); the report gives the median time per query, the input
//! documents per second and the ratio to SQLite (above 1: collection-store
//! is faster).

pub mod cs;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::data;
use crate::engines::EResult;
use crate::machine::{self, MachineInfo};
use crate::workloads::log;

/// Lower and upper (exclusive) age of A3.
pub const AGE_RANGE: (i32, i32) = (30, 40);

/// One row of A1/A3: a city, its users, their average score.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CityUsers {
    /// The city.
    pub city: String,
    /// Users in it.
    pub users: u64,
    /// Their average score.
    pub avg_score: f64,
}

/// One row of A2: a city, the orders of its users and their total amount.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CityRevenue {
    /// The city.
    pub city: String,
    /// Orders placed by its users.
    pub orders: u64,
    /// Their total amount.
    pub revenue: f64,
}

/// An engine answering the three queries.
pub trait AggEngine {
    /// Engine id (`cs`, `sqlite`).
    fn id(&self) -> &'static str;
    /// Loads users `0..n` (indexes `email` unique and `age` in place) in
    /// transactions of `batch` documents.
    fn load_users(&self, n: u64, batch: u64) -> EResult<()>;
    /// Loads orders `0..m` of `users` users.
    fn load_orders(&self, m: u64, users: u64, batch: u64) -> EResult<()>;
    /// A1.
    fn users_by_city(&self) -> EResult<Vec<CityUsers>>;
    /// A2.
    fn revenue_by_city(&self) -> EResult<Vec<CityRevenue>>;
    /// A3.
    fn users_by_city_in_ages(&self, lo: i32, hi: i32) -> EResult<Vec<CityUsers>>;
}

/// Parameters of a run.
#[derive(Clone, Debug, Serialize)]
pub struct AggConfig {
    /// Users.
    pub docs: u64,
    /// Orders.
    pub orders: u64,
    /// Seconds measured per query and engine.
    pub seconds: f64,
    /// Engines.
    pub engines: Vec<String>,
    /// The command line.
    pub command: String,
}

/// One figure.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    /// `A1`, `A2`, `A3`.
    pub query: String,
    /// Engine id.
    pub engine: String,
    /// Runs measured.
    pub runs: usize,
    /// Median seconds per query.
    pub median_s: f64,
    /// Fastest run, seconds.
    pub min_s: f64,
    /// Input documents read per second at the median.
    pub docs_per_s: f64,
    /// Whether the answer matched the generator.
    pub correct: bool,
    /// What was wrong, if anything.
    pub note: Option<String>,
}

/// The whole run.
#[derive(Clone, Debug, Serialize)]
pub struct AggReport {
    /// Date (UTC).
    pub date: String,
    /// Time (UTC).
    pub time: String,
    /// The machine.
    pub machine: MachineInfo,
    /// Parameters.
    pub config: AggConfig,
    /// Load times per engine: (users docs/s, orders docs/s).
    pub load: BTreeMap<String, (f64, f64)>,
    /// Figures.
    pub figures: Vec<Figure>,
    /// Total seconds.
    pub total_seconds: f64,
}

struct Expected {
    by_city: Vec<CityUsers>,
    revenue: Vec<CityRevenue>,
    in_ages: Vec<CityUsers>,
    in_ages_docs: u64,
}

fn by_city(rows: impl Iterator<Item = (String, f64)>) -> Vec<CityUsers> {
    let mut m: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for (c, s) in rows {
        let e = m.entry(c).or_default();
        e.0 += 1;
        e.1 += s;
    }
    m.into_iter()
        .map(|(city, (users, sum))| CityUsers {
            city,
            users,
            avg_score: sum / users as f64,
        })
        .collect()
}

fn expected(cfg: &AggConfig) -> Expected {
    let n = cfg.docs as i64;
    let by = by_city((0..n).map(|i| (data::city(i), data::score(i))));
    let (lo, hi) = AGE_RANGE;
    let in_range: Vec<i64> = (0..n)
        .filter(|&i| (lo..hi).contains(&data::age(i)))
        .collect();
    let in_ages = by_city(in_range.iter().map(|&i| (data::city(i), data::score(i))));
    let mut rev: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for j in 0..cfg.orders as i64 {
        let o = data::order(j, cfg.docs);
        let e = rev.entry(data::city(o.user)).or_default();
        e.0 += 1;
        e.1 += o.amount;
    }
    Expected {
        by_city: by,
        revenue: rev
            .into_iter()
            .map(|(city, (orders, revenue))| CityRevenue {
                city,
                orders,
                revenue,
            })
            .collect(),
        in_ages,
        in_ages_docs: in_range.len() as u64,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

fn check_users(mut got: Vec<CityUsers>, want: &[CityUsers]) -> Option<String> {
    got.sort_by(|a, b| a.city.cmp(&b.city));
    if got.len() != want.len() {
        return Some(format!("{} cities, expected {}", got.len(), want.len()));
    }
    for (g, w) in got.iter().zip(want) {
        if g.city != w.city || g.users != w.users || !close(g.avg_score, w.avg_score) {
            return Some(format!("{g:?}, expected {w:?}"));
        }
    }
    None
}

fn check_revenue(mut got: Vec<CityRevenue>, want: &[CityRevenue]) -> Option<String> {
    got.sort_by(|a, b| a.city.cmp(&b.city));
    if got.len() != want.len() {
        return Some(format!("{} cities, expected {}", got.len(), want.len()));
    }
    for (g, w) in got.iter().zip(want) {
        if g.city != w.city || g.orders != w.orders || !close(g.revenue, w.revenue) {
            return Some(format!("{g:?}, expected {w:?}"));
        }
    }
    None
}

fn measure<T>(seconds: f64, mut f: impl FnMut() -> EResult<T>) -> EResult<(Vec<Duration>, T)> {
    let first = f()?; // warm-up
    let budget = Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut times = Vec::new();
    let mut last = first;
    while times.len() < 3 || (started.elapsed() < budget && times.len() < 50) {
        let t = Instant::now();
        last = f()?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok((times, last))
}

fn figure(
    query: &str,
    engine: &str,
    times: &[Duration],
    input: u64,
    note: Option<String>,
) -> Figure {
    let median = times[times.len() / 2].as_secs_f64();
    Figure {
        query: query.into(),
        engine: engine.into(),
        runs: times.len(),
        median_s: median,
        min_s: times[0].as_secs_f64(),
        docs_per_s: input as f64 / median.max(1e-9),
        correct: note.is_none(),
        note,
    }
}

fn open(id: &str, dir: &Path) -> EResult<Box<dyn AggEngine>> {
    match id {
        "cs" => Ok(Box::new(cs::CsAgg::open(dir)?)),
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Box::new(sqlite::SqliteAgg::open(dir)?)),
        other => Err(crate::engines::err(format!(
            "engine '{other}' is not part of the aggregation benchmark in this build (cs, and sqlite with --features sqlite)"
        ))),
    }
}

/// Runs the benchmark; writes `<out>/<name>.md` and `.json`.
pub fn run(
    cfg: &AggConfig,
    out: &Path,
    name: Option<String>,
    data_dir: Option<PathBuf>,
) -> EResult<AggReport> {
    let parent = data_dir.unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&parent)?;
    std::fs::create_dir_all(out)?;
    let root = tempfile::Builder::new()
        .prefix("cs-agg-")
        .tempdir_in(&parent)?;
    let started = Instant::now();
    let (date, time) = machine::utc_now();
    let machine = MachineInfo::collect(root.path());
    log("computing the expected answers from the generator");
    let want = expected(cfg);
    let mut figures = Vec::new();
    let mut load = BTreeMap::new();
    for id in &cfg.engines {
        let dir = root.path().join(id);
        std::fs::create_dir_all(&dir)?;
        let engine = open(id, &dir)?;
        log(&format!(
            "== {id}: loading {} users and {} orders ==",
            cfg.docs, cfg.orders
        ));
        let t = Instant::now();
        engine.load_users(cfg.docs, 10_000)?;
        let users_rate = cfg.docs as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        engine.load_orders(cfg.orders, cfg.docs, 10_000)?;
        let orders_rate = cfg.orders as f64 / t.elapsed().as_secs_f64();
        load.insert(id.clone(), (users_rate, orders_rate));
        log(&format!("{id}: A1 users per city"));
        let (times, got) = measure(cfg.seconds, || engine.users_by_city())?;
        figures.push(figure(
            "A1",
            id,
            &times,
            cfg.docs,
            check_users(got, &want.by_city),
        ));
        log(&format!("{id}: A2 revenue per city ($lookup / JOIN)"));
        let (times, got) = measure(cfg.seconds, || engine.revenue_by_city())?;
        figures.push(figure(
            "A2",
            id,
            &times,
            cfg.orders,
            check_revenue(got, &want.revenue),
        ));
        log(&format!("{id}: A3 users per city in an indexed age range"));
        let (lo, hi) = AGE_RANGE;
        let (times, got) = measure(cfg.seconds, || engine.users_by_city_in_ages(lo, hi))?;
        figures.push(figure(
            "A3",
            id,
            &times,
            want.in_ages_docs,
            check_users(got, &want.in_ages),
        ));
        drop(engine);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let report = AggReport {
        date: date.clone(),
        time,
        machine,
        config: cfg.clone(),
        load,
        figures,
        total_seconds: started.elapsed().as_secs_f64(),
    };
    let name = name.unwrap_or_else(|| format!("{date}-aggregation"));
    let md = render(&report);
    std::fs::write(out.join(format!("{name}.md")), &md)?;
    std::fs::write(
        out.join(format!("{name}.json")),
        serde_json::to_string_pretty(&report)?,
    )?;
    println!("{md}");
    log(&format!(
        "report written to {}/{name}.{{md,json}}",
        out.display()
    ));
    Ok(report)
}

fn secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.1} ms", s * 1e3)
    }
}

const TITLES: [(&str, &str); 3] = [
    ("A1", "users per city with the average score (`$group` / `GROUP BY`)"),
    ("A2", "revenue per user city over all orders (`$lookup` + `$unwind` + `$group` / `JOIN` + `GROUP BY`)"),
    ("A3", "users per city, ages 30–39 (`$match` on the `age` index + `$group` / indexed `WHERE` + `GROUP BY`)"),
];

/// The Markdown report.
pub fn render(r: &AggReport) -> String {
    use std::fmt::Write;
    let m = &r.machine;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Aggregation benchmark: collection-store beside SQLite\n"
    );
    let _ = writeln!(
        s,
        "- Date: {} {} UTC. Users: N = {}, orders: {}. Total run time {:.0} s.",
        r.date,
        r.time,
        crate::report::fmt_num(r.config.docs as f64),
        crate::report::fmt_num(r.config.orders as f64),
        r.total_seconds
    );
    let _ = writeln!(
        s,
        "- Machine: {} cores ({}), {:.1} GiB RAM, Linux {}, data on {}; load average at start {}.",
        m.cores, m.cpu_model, m.memory_gib, m.kernel, m.filesystem, m.load_average
    );
    let _ = writeln!(s, "- Build: {}, release profile.", m.rustc);
    let _ = writeln!(s, "- Command: `{}`", r.config.command);
    let _ = writeln!(
        s,
        "- Data: the suite's users `{{_id, name, email, age 18..80, city (50 values), tags, score}}` with the \
         suite's indexes (`email` unique, `age`), and orders `{{_id, user, amount}}` referring to a user's `_id`; \
         SQLite stores both as JSON text (`users(id INTEGER PRIMARY KEY, doc TEXT)` with the same two expression \
         indexes, `orders(id INTEGER PRIMARY KEY, doc TEXT)`). Every answer is checked against the generator.\n"
    );
    let _ = writeln!(
        s,
        "Each query ran once to warm the cache, then repeatedly for {} s (at least 3 runs). Figures: median time per \
         query, input documents per second at the median, and the ratio SQLite time / collection-store time \
         (above 1: collection-store is faster; the goal is ≥ 1).\n",
        r.config.seconds
    );
    let _ = writeln!(
        s,
        "| query | collection-store | SQLite | ratio | goal ≥ 1× |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---|");
    for (q, title) in TITLES {
        let get = |e: &str| r.figures.iter().find(|f| f.query == q && f.engine == e);
        let cell = |f: Option<&Figure>| match f {
            Some(f) => format!(
                "{}<br><sub>{} docs/s · {} runs{}</sub>",
                secs(f.median_s),
                crate::report::fmt_num(f.docs_per_s),
                f.runs,
                if f.correct { "" } else { " · WRONG ANSWER" }
            ),
            None => "not run".into(),
        };
        let (c, l) = (get("cs"), get("sqlite"));
        let ratio = match (c, l) {
            (Some(c), Some(l)) => Some(l.median_s / c.median_s),
            _ => None,
        };
        let _ = writeln!(
            s,
            "| {q} {title} | {} | {} | {} | {} |",
            cell(c),
            cell(l),
            ratio.map_or("–".into(), |x| format!("{x:.2}×")),
            match ratio {
                Some(x) if x >= 1.0 => "met".to_string(),
                Some(x) => format!("**missed** (SQLite {:.2}× faster)", 1.0 / x),
                None => "–".into(),
            }
        );
    }
    let _ = writeln!(
        s,
        "\nLoad (10,000 documents per durable transaction, indexes in place):\n"
    );
    let _ = writeln!(s, "| engine | users docs/s | orders docs/s |");
    let _ = writeln!(s, "|---|---:|---:|");
    for (e, (u, o)) in &r.load {
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            crate::engines::label(e),
            crate::report::fmt_num(*u),
            crate::report::fmt_num(*o)
        );
    }
    let wrong: Vec<&Figure> = r.figures.iter().filter(|f| !f.correct).collect();
    let _ = writeln!(
        s,
        "\nChecks: {} answers compared with the generator, {} wrong.",
        r.figures.len(),
        wrong.len()
    );
    for f in wrong {
        let _ = writeln!(
            s,
            "- {} on {}: {}",
            f.query,
            f.engine,
            f.note.clone().unwrap_or_default()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_engines_agree_with_the_generator_on_a_small_run() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut engines = vec!["cs".to_string()];
        if cfg!(feature = "sqlite") {
            engines.push("sqlite".into());
        }
        let cfg = AggConfig {
            docs: 3_000,
            orders: 5_000,
            seconds: 0.01,
            engines,
            command: "test".into(),
        };
        let r = run(&cfg, &out, Some("t".into()), Some(dir.path().to_path_buf())).unwrap();
        assert_eq!(r.figures.len(), 3 * cfg.engines.len());
        for f in &r.figures {
            assert!(f.correct, "{f:?}");
        }
        assert!(std::fs::read_to_string(out.join("t.md"))
            .unwrap()
            .contains("| A2 "));
    }
}
