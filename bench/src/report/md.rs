//! The Markdown rendering: engines as columns, the ratio to SQLite FULL beside
//! each figure, p50/p99 under it, then durability settings, checks and notes.

use std::fmt::Write;

use super::{fmt_num, Measurement, Report, Status};
use crate::engines::{label, BASELINE};
use crate::latency::fmt_us;

/// Engines that are durable products a user would pick instead (the
/// "who wins" column compares collection-store with these).
const DURABLE_PEERS: &[&str] = &["sqlite", "polodb"];

fn cell(report: &Report, m: Option<&Measurement>, notes: &mut Vec<String>) -> String {
    let Some(m) = m else {
        return "–".into();
    };
    let mut s = match (&m.status, m.value) {
        (Status::DidNotFinish, _) => format!("did not finish in {:.0} s", m.seconds),
        (Status::Failed, _) => "failed".into(),
        (Status::Skipped, _) => "skipped".into(),
        (_, Some(v)) => {
            let mut s = fmt_num(v);
            if m.engine != BASELINE {
                if let Some(r) = report.ratio(m) {
                    let _ = write!(s, " ({})", fmt_ratio(r));
                }
            }
            s
        }
        (_, None) => "–".into(),
    };
    if let (Some(p50), Some(p99)) = (m.p50_us, m.p99_us) {
        let _ = write!(
            s,
            "<br><sub>p50 {} · p99 {}</sub>",
            fmt_us(p50),
            fmt_us(p99)
        );
    }
    if let Some(note) = &m.note {
        notes.push(format!("{} on {}: {note}", m.workload, label(&m.engine)));
        let _ = write!(s, " [{}]", notes.len());
    }
    s
}

/// `2.10×`, `0.045×`, `0.00012×`: two significant digits below 0.1.
pub fn fmt_ratio(r: f64) -> String {
    if r >= 0.1 || r <= 0.0 {
        format!("{r:.2}×")
    } else {
        let digits = (-r.log10()).ceil() as usize + 1;
        format!("{r:.digits$}×")
    }
}

/// Who wins between collection-store and the best durable peer on this row.
fn verdict(report: &Report, workload: &str, higher_is_better: bool) -> String {
    let usable = |e: &str| {
        report
            .get(workload, e)
            .filter(|m| matches!(m.status, Status::Ok | Status::Capped))
            .and_then(|m| m.value)
    };
    let Some(cs) = usable("cs") else {
        return "–".into();
    };
    let best = DURABLE_PEERS
        .iter()
        .filter_map(|e| usable(e).map(|v| (*e, v)))
        .max_by(|a, b| {
            let o = a.1.total_cmp(&b.1);
            if higher_is_better {
                o
            } else {
                o.reverse()
            }
        });
    let Some((peer, v)) = best else {
        let dnf: Vec<&str> = DURABLE_PEERS
            .iter()
            .filter(|e| {
                report
                    .get(workload, e)
                    .is_some_and(|m| m.status == Status::DidNotFinish)
            })
            .map(|e| label(e))
            .collect();
        if dnf.is_empty() {
            return "–".into();
        }
        return format!("collection-store ({} did not finish)", dnf.join(", "));
    };
    let (win, factor) = if higher_is_better {
        (cs >= v, if cs >= v { cs / v } else { v / cs })
    } else {
        (cs <= v, if cs <= v { v / cs } else { cs / v })
    };
    if win {
        format!("collection-store, {factor:.2}× {}", label(peer))
    } else {
        format!("{}, {factor:.2}× collection-store", label(peer))
    }
}

/// Renders the report; `svg_name` is the chart's file name beside it.
pub fn render(report: &Report, svg_name: &str) -> String {
    let mut out = String::new();
    let m = &report.machine;
    let c = &report.config;
    let _ = writeln!(
        out,
        "# Benchmark suite: collection-store beside SQLite, PoloDB and raw LMDB\n"
    );
    let _ = writeln!(
        out,
        "- Date: {} {} UTC. Documents: N = {}. Total run time {:.0} s.",
        report.date,
        report.time,
        fmt_num(c.docs as f64),
        report.total_seconds
    );
    let _ = writeln!(
        out,
        "- Machine: {} cores ({}), {:.1} GiB RAM, Linux {}, data on {} \
         (4 KiB overwrite + fdatasync, the floor of any durable commit: p50 {}, p99 {}); \
         load average at start {}.",
        m.cores,
        m.cpu_model,
        m.memory_gib,
        m.kernel,
        m.filesystem,
        m.fsync_p50_text(),
        crate::machine::fmt_measured(m.fsync_p99_us),
        m.load_average
    );
    let _ = writeln!(out, "- Build: {}, release profile.", m.rustc);
    let _ = writeln!(out, "- Command: `{}`", c.command);
    let _ = writeln!(
        out,
        "- Documents `{{_id, name, email, age 18..80, city (50 values), tags 0-4 strings, score}}` \
         (about 130 bytes as JSON), the same for every engine, with the same two indexes: \
         `email` unique and `age`.\n- Per-operation workloads run {} s each after {} s of \
         warm-up; every engine reads a warm cache (a full scan precedes the reads). \
         Figures are operations per second unless the unit says otherwise; \
         `(x×)` is the ratio to SQLite FULL (higher is better except for W8).\n",
        c.seconds, c.warmup_seconds
    );

    let engines: Vec<&str> = report.engines.iter().map(|e| e.id.as_str()).collect();
    let mut notes = Vec::new();
    let _ = write!(out, "| workload | unit |");
    for e in &engines {
        let _ = write!(out, " {} |", label(e));
    }
    let _ = writeln!(out, " who wins (collection-store vs durable peers) |");
    let _ = write!(out, "|---|---|");
    for _ in &engines {
        let _ = write!(out, "---:|");
    }
    let _ = writeln!(out, "---|");
    for w in &report.workloads {
        let _ = write!(out, "| {} {} | {} |", w.id, w.title, w.unit);
        for e in &engines {
            let _ = write!(out, " {} |", cell(report, report.get(&w.id, e), &mut notes));
        }
        let _ = writeln!(out, " {} |", verdict(report, &w.id, w.higher_is_better));
    }
    let _ = writeln!(out);
    if !notes.is_empty() {
        for (i, n) in notes.iter().enumerate() {
            let _ = writeln!(out, "{}. {n}", i + 1);
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "Columns: SQLite NORMAL does not fsync its commits (not durable against power loss) and \
         raw LMDB is hand-written storage code without a document layer (the limit of the \
         storage collection-store is built on); neither is a durable document database a user \
         would pick instead, so the last column compares collection-store with SQLite FULL and \
         PoloDB only.\n"
    );
    let _ = writeln!(out, "![ops/s per workload and engine]({svg_name})\n");

    let _ = writeln!(out, "## Durability of each engine\n");
    for e in &report.engines {
        let _ = writeln!(out, "- **{}**: {}", e.label, e.durability);
    }
    let _ = writeln!(out);

    let _ = writeln!(out, "## Checks\n");
    let failed = report.checks.iter().filter(|c| !c.ok).count();
    let _ = writeln!(
        out,
        "{} checks, {} failed. Every engine's data is checked after loading (document count, \
         1,000 sample reads compared field by field with the generator, 100 email lookups), \
         every scan's match count against the generator, every range answer for order and \
         bounds, and the document count after the write workloads.\n",
        report.checks.len(),
        failed
    );
    let _ = writeln!(out, "| engine | check | result |");
    let _ = writeln!(out, "|---|---|---|");
    for c in &report.checks {
        let _ = writeln!(
            out,
            "| {} | {} | {} {} |",
            label(&c.engine),
            c.what,
            if c.ok { "ok" } else { "**FAILED**" },
            c.detail
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "## Workloads\n");
    let _ = writeln!(
        out,
        "- W1: load N documents, {} per durable transaction, indexes in place; latency is per transaction.\n\
         - W2/k: single-document durable insert transactions from k concurrent writers \
         (collection-store: k tokio tasks on `AsyncCollection`, 1 writer: the sync API; others: \
         k threads, one connection or handle each).\n\
         - W3: get by `_id` of a random document, decoded into a Rust struct.\n\
         - W4: the document with `email == x` (unique index), decoded.\n\
         - W5: `age` in [a, a+5), sorted by `age`, limit 20, decoded.\n\
         - W6: `city == \"city07\" && score > 500` over all documents (no index applies); \
         the figure is documents scanned per second.\n\
         - W7: `$inc` of `score` on the document found by `email`, {} updates per durable \
         transaction; the figure is updates per second, latency is per transaction.\n\
         - W8: bytes on disk per document after W1 (SQLite after a WAL checkpoint).",
        c.batch, c.updates_per_txn
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios() {
        assert_eq!(fmt_ratio(2.104), "2.10×");
        assert_eq!(fmt_ratio(0.045), "0.045×");
        assert_eq!(fmt_ratio(0.00012), "0.00012×");
    }
}
