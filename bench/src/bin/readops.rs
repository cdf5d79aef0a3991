//! Runs a fixed number of one read workload's operations against
//! collection-store, for counting instructions per operation with callgrind.
//!
//! ```text
//! readops load DIR N            # N benchmark documents into DIR (outside the profiler)
//! readops run DIR w3|w4|w5 OPS N  # OPS operations of one workload over those N documents
//! ```
//!
//! The operations are the suite's own (`Engine::get`, `find_by_email`,
//! `age_range` with limit 20, keys drawn the same way). Instructions per
//! operation are the difference between two `run`s with different `OPS`
//! divided by the difference in `OPS`, so opening the database and the
//! process's start cancel out:
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=w3.1k readops run DIR w3 1000 100000
//! valgrind --tool=callgrind --callgrind-out-file=w3.11k readops run DIR w3 11000 100000
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use collection_store_bench::data::{self, Rng};
use collection_store_bench::engines::{self, EResult, Engine};

fn load(dir: PathBuf, n: i64) -> EResult<()> {
    let engine = engines::open("cs", &dir)?;
    let mut i = 0;
    while i < n {
        let end = (i + 10_000).min(n);
        let docs: Vec<_> = (i..end).map(data::user).collect();
        engine.bulk_insert(&docs)?;
        i = end;
    }
    println!("{} documents", engine.count()?);
    Ok(())
}

fn run(dir: PathBuf, workload: &str, ops: u64, n: u64) -> EResult<()> {
    let engine = engines::open("cs", &dir)?;
    let mut rng = Rng::new(7);
    let mut checksum = 0i64;
    for _ in 0..ops {
        checksum = checksum.wrapping_add(one(&*engine, workload, &mut rng, n)?);
    }
    println!("{workload}: {ops} operations, checksum {checksum}");
    Ok(())
}

fn one(engine: &dyn Engine, workload: &str, rng: &mut Rng, n: u64) -> EResult<i64> {
    match workload {
        "w3" => {
            let i = rng.below(n) as i64;
            match engine.get(i)? {
                Some(u) if u.id == i => Ok(u.age as i64),
                other => Err(engines::err(format!("get({i}) returned {other:?}"))),
            }
        }
        "w4" => {
            let i = rng.below(n) as i64;
            match engine.find_by_email(&data::email(i))? {
                Some(id) if id == i => Ok(id),
                other => Err(engines::err(format!("email of {i} returned {other:?}"))),
            }
        }
        "w5" => {
            let lo = 18 + rng.below(59) as i32;
            let ages = engine.age_range(lo, lo + 5, 20)?;
            if ages.len() != 20 && n >= 10_000 {
                return Err(engines::err(format!("age range {lo} returned {ages:?}")));
            }
            Ok(ages.iter().map(|&a| a as i64).sum())
        }
        other => Err(engines::err(format!("unknown workload {other}"))),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |s: &String| s.parse::<u64>().map_err(|e| engines::err(e.to_string()));
    let result = match args.as_slice() {
        [cmd, dir, n] if cmd == "load" => num(n).and_then(|n| load(dir.into(), n as i64)),
        [cmd, dir, w, ops, n] if cmd == "run" => {
            num(ops).and_then(|ops| num(n).and_then(|n| run(dir.into(), w, ops, n)))
        }
        _ => Err(engines::err(
            "usage: readops load DIR N | readops run DIR w3|w4|w5 OPS N",
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
