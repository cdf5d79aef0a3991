//! `collection-store-bench`: the benchmark suite (default) and the stress
//! tester (`stress`).
//!
//! ```text
//! cargo run --release -p collection-store-bench [--features peers] -- \
//!     [--engines cs,sqlite,sqlite-normal,polodb,lmdb-raw] [--workloads w1,...,w8] \
//!     [--docs N] [--seconds S] [--out DIR]
//! cargo run --release -p collection-store-bench -- stress --clients 64 --duration 60s \
//!     --mix read=70,update=20,insert=5,delete=5 [--collections users,orders]
//! cargo run --release -p collection-store-bench -- reopen --docs 1000000 --cycles 5
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use collection_store_bench::engines::{self, ALL_ENGINES};
use collection_store_bench::reopen;
use collection_store_bench::stress::{self, config, DurabilityArg, StressConfig};
use collection_store_bench::suite::{self, SuiteRun};
use collection_store_bench::workloads::{SuiteConfig, WorkloadId};

#[derive(Parser)]
#[command(
    name = "collection-store-bench",
    about = "collection-store beside SQLite, PoloDB and raw LMDB (benchmark suite), and a stress tester",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    suite: SuiteArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// Concurrent async clients issuing a mix of operations, then verify().
    Stress(StressArgs),
    /// Open time after SIGKILL of a writer process under load (as after a
    /// process crash, and as after a power loss).
    Reopen(ReopenArgs),
}

#[derive(Args)]
struct ReopenArgs {
    /// Documents loaded before the kill cycles.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    docs: u64,
    /// Kill-and-reopen cycles.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    cycles: u64,
    /// Durable writer threads in the killed process.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1_024))]
    writers: u64,
    /// The writer runs between half of this and this long before the kill (seconds).
    #[arg(long, default_value_t = 3.0, value_parser = positive_secs)]
    load_seconds: f64,
    /// Where the database goes (default: the system temp dir; a real disk).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Internal: run as the writer child on this directory.
    #[arg(long, hide = true)]
    child: Option<PathBuf>,
    /// Internal: the child's cycle number (keeps its ids apart).
    #[arg(long, hide = true, default_value_t = 0)]
    cycle: u64,
}

#[derive(Args)]
struct SuiteArgs {
    /// Engines (columns), comma-separated. Default: every engine in this build.
    #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(ALL_ENGINES))]
    engines: Vec<String>,
    /// Workloads, comma-separated (W1 always runs: it loads the data). Default: all.
    #[arg(long, value_delimiter = ',', value_enum)]
    workloads: Vec<WorkloadId>,
    /// Documents to load (N).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    docs: u64,
    /// Seconds measured per per-operation workload.
    #[arg(long, default_value_t = 5.0, value_parser = positive_secs)]
    seconds: f64,
    /// Warm-up seconds before each read workload.
    #[arg(long, default_value_t = 1.0, value_parser = non_negative_secs)]
    warmup: f64,
    /// Writer counts of W2.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1usize, 8, 64],
          value_parser = clap::value_parser!(usize))]
    writers: Vec<usize>,
    /// Documents per W1 transaction.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    batch: u64,
    /// Updates per W7 transaction.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    updates_per_txn: u64,
    /// A step still running this many seconds after its planned time is
    /// reported as "did not finish" and the engine's remaining workloads are skipped.
    #[arg(long, default_value_t = 120.0, value_parser = positive_secs)]
    hard_cap: f64,
    /// Output folder for the report (Markdown, JSON, SVG).
    #[arg(long, default_value = "bench-report")]
    out: PathBuf,
    /// Base name of the report files (default: <date>-suite).
    #[arg(long)]
    name: Option<String>,
    /// Where the engines' data directories go (default: the system temp dir;
    /// it must be a real disk, not tmpfs, for durable figures to mean anything).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Args)]
struct StressArgs {
    /// Concurrent clients (tokio tasks).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    clients: u64,
    /// How long to run (500ms, 10s, 2m, 1h).
    #[arg(long, default_value = "60s", value_parser = config::parse_duration)]
    duration: Duration,
    /// Operation weights: read, update, insert, delete, txn.
    #[arg(long, default_value = "read=70,update=20,insert=5,delete=5", value_parser = config::parse_mix)]
    mix: config::Mix,
    /// Share of operations that are cross-collection transactions, in percent,
    /// added to the mix unless it names `txn` itself.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=95))]
    txn_percent: u32,
    /// Collections (the first holds the transaction counter, transactions
    /// insert into the last).
    #[arg(long, value_delimiter = ',', default_values_t = vec!["users".to_string(), "orders".to_string()])]
    collections: Vec<String>,
    /// Documents per collection before the clients start.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    seed_docs: u64,
    /// Database directory (default: a temporary directory, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Durability mode of the database.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Immediate)]
    durability: DurabilityArg,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    summary_json: Option<PathBuf>,
}

fn positive_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "'{s}' is not a number of seconds between 0 and 86400"
        )),
    }
}

fn non_negative_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=3_600.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a number of seconds between 0 and 3600"
        )),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    match cli.cmd {
        Some(Cmd::Stress(a)) => run_stress(a),
        Some(Cmd::Reopen(a)) => run_reopen(a),
        None => run_suite(cli.suite, command),
    }
}

fn run_suite(a: SuiteArgs, args: String) -> ExitCode {
    let engines = if a.engines.is_empty() {
        ALL_ENGINES
            .iter()
            .filter(|e| engines::is_built(e))
            .map(|e| e.to_string())
            .collect()
    } else {
        a.engines
    };
    let mut workloads = a.workloads;
    if workloads.is_empty() {
        workloads = vec![
            WorkloadId::W1,
            WorkloadId::W2,
            WorkloadId::W3,
            WorkloadId::W4,
            WorkloadId::W5,
            WorkloadId::W6,
            WorkloadId::W7,
            WorkloadId::W8,
        ];
    }
    if a.writers.contains(&0) || a.writers.iter().any(|w| *w > 4_096) {
        eprintln!("error: --writers takes counts between 1 and 4096");
        return ExitCode::from(2);
    }
    let features = if cfg!(all(feature = "sqlite", feature = "polodb")) {
        " --features peers"
    } else if cfg!(feature = "sqlite") {
        " --features sqlite"
    } else if cfg!(feature = "polodb") {
        " --features polodb"
    } else {
        ""
    };
    let run = SuiteRun {
        engines,
        config: SuiteConfig {
            docs: a.docs,
            batch: a.batch as usize,
            seconds: a.seconds,
            warmup: a.warmup,
            writers: a.writers,
            updates_per_txn: a.updates_per_txn as usize,
            hard_cap: a.hard_cap,
            workloads,
        },
        out: a.out,
        name: a.name,
        data_dir: a.data_dir,
        command: format!("cargo run --release -p collection-store-bench{features} -- {args}")
            .trim_end_matches(" -- ")
            .to_string(),
    };
    match suite::run(&run) {
        Ok((_, true)) => ExitCode::SUCCESS,
        Ok((_, false)) => {
            eprintln!("some checks failed or a workload failed: see the report");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_stress(a: StressArgs) -> ExitCode {
    let mut mix = a.mix;
    if mix.weight(config::OpKind::Txn) == 0 && a.txn_percent > 0 {
        let total: u32 = config::OpKind::ALL.iter().map(|k| mix.weight(*k)).sum();
        let w =
            (f64::from(total) * f64::from(a.txn_percent) / f64::from(100 - a.txn_percent)).round();
        mix.set(config::OpKind::Txn, (w as u32).max(1));
    }
    let mut collections: Vec<String> = Vec::new();
    for c in a.collections {
        if !c.is_empty() && !collections.contains(&c) {
            collections.push(c);
        }
    }
    let cfg = StressConfig {
        clients: a.clients as usize,
        duration: a.duration,
        mix,
        collections,
        seed_docs: a.seed_docs,
        dir: a.dir,
        durability: a.durability,
        summary_json: a.summary_json,
    };
    match stress::run(&cfg) {
        Ok(summary) => {
            print!("{}", stress::render(&summary));
            if let Some(path) = &cfg.summary_json {
                let written = serde_json::to_string_pretty(&summary)
                    .map_err(|e| e.to_string())
                    .and_then(|j| std::fs::write(path, j).map_err(|e| e.to_string()));
                if let Err(e) = written {
                    eprintln!("error: cannot write {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            }
            if summary.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_reopen(a: ReopenArgs) -> ExitCode {
    if let Some(dir) = &a.child {
        return match reopen::child(dir, a.writers as usize, a.cycle) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        };
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot find this program to start the writer: {e}");
            return ExitCode::from(2);
        }
    };
    match reopen::run(
        &exe,
        a.data_dir.as_deref(),
        a.docs,
        a.cycles as usize,
        a.writers as usize,
        Duration::from_secs_f64(a.load_seconds),
    ) {
        Ok(r) => {
            let (c50, cmax) = reopen::p50_max(&r.after_crash_ms);
            let (p50, pmax) = reopen::p50_max(&r.after_power_loss_ms);
            println!(
                "reopen after SIGKILL under write load, N = {} documents, {} cycles, {} writes acknowledged by the killed writers",
                r.docs, r.cycles, r.acknowledged
            );
            println!(
                "  as after a process crash: open + first read p50 {c50:.1} ms, max {cmax:.1} ms"
            );
            println!("  as after a power loss (checkpoint restored, log replayed): p50 {p50:.1} ms, max {pmax:.1} ms");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
