//! Power loss, simulated: a workload runs under an `LD_PRELOAD` shim that
//! records every write, flush and namespace change it makes
//! (`tests/powerloss/shim.c`); crash images are built from that trace for
//! many crash points (`collection_store_tests::powerloss`: durable data
//! kept, a random subset of the rest applied, some writes torn, namespace
//! changes after the last directory fsync partly lost), and a checker process
//! opens each as after a reboot and checks it (`powerloss_check`): it opens,
//! `verify()` is clean, every transaction acknowledged before the crash point
//! is there (for `Durability::None`: the ones that are form a prefix),
//! nothing is partial, and it takes a write after recovery.
//!
//! `CS_POWERLOSS_IMAGES` sets the images per durability mode (default 50;
//! the long run in README uses 5,000 per mode), `CS_POWERLOSS_SEED` replays
//! a run. A control workload that acknowledges before committing must be
//! caught losing acknowledged transactions, or the check itself is broken.

use std::path::{Path, PathBuf};
use std::process::Command;

use collection_store_tests::powerloss::{acks, build_image, crash_points, parse, Op};
use collection_store_tests::{clock_seed, Rng};
use serde_json::{json, Value};

fn bin(name: &str) -> PathBuf {
    match name {
        "workload" => PathBuf::from(env!("CARGO_BIN_EXE_powerloss_workload")),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_powerloss_check")),
    }
}

/// Compiles the shim into `dir`.
fn shim(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("powerloss/shim.c");
    let out = dir.join("shim.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .args(["-ldl", "-lpthread"])
        .status()
        .expect("a C compiler (cc) to build the tracing shim");
    assert!(status.success(), "building the shim failed: {status:?}");
    out
}

/// Scratch space on tmpfs when there is one (images are many and small).
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().unwrap()
}

struct Run {
    root: PathBuf,
    ops: Vec<Op>,
    acks: Vec<(usize, String)>,
}

fn traced_run(shim: &Path, work: &Path, mode: &str, txns: u64, early: bool) -> Run {
    let root = work.join(format!("run-{mode}{}", if early { "-early" } else { "" }));
    std::fs::create_dir_all(&root).unwrap();
    let root = root.canonicalize().unwrap();
    let trace = work.join(format!("trace-{mode}-{early}"));
    let mut cmd = Command::new(bin("workload"));
    cmd.arg(&root).arg(mode).arg(txns.to_string());
    if early {
        cmd.arg("--ack-early");
    }
    let out = cmd
        .env("LD_PRELOAD", shim)
        .env("CS_TRACE_ROOT", &root)
        .env("CS_TRACE_OUT", &trace)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the traced workload failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let ops = parse(&std::fs::read(&trace).unwrap()).unwrap();
    let acks = acks(&ops, &root);
    assert!(
        acks.len() as u64 > txns,
        "the trace holds {} acknowledgements for {txns} transactions: the shim missed writes",
        acks.len()
    );
    assert!(
        ops.iter()
            .any(|o| matches!(o, Op::Sync { path } if path.ends_with(".seg"))),
        "the trace holds no log flush: the shim missed them"
    );
    Run { root, ops, acks }
}

/// What must survive a crash after the first `k` calls.
fn expectation(run: &Run, k: usize) -> Value {
    let mut t = 0u64;
    let mut g = Vec::new();
    let mut kk = 0u64;
    for (i, what) in &run.acks {
        if *i >= k {
            break;
        }
        if let Some(n) = what.strip_prefix('t') {
            t = t.max(n.parse().unwrap());
        } else if let Some(n) = what.strip_prefix('k') {
            kk = kk.max(n.parse().unwrap());
        } else {
            g.push(json!(what));
        }
    }
    json!({"acked_t": t, "acked_g": g, "acked_k": kk})
}

/// Builds `images` crash images of `run` and checks them; returns the
/// problems found (image, crash point, problem).
fn check_images(run: &Run, mode: &str, images: usize, seed: u64, work: &Path) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let points = crash_points(
        &run.ops,
        &run.acks.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        images,
        &mut rng,
    );
    let dir = work.join(format!("images-{mode}-{seed}"));
    let mut problems = Vec::new();
    // Build and check in batches, so that disk use stays small.
    for (batch, chunk) in points.chunks(25).enumerate() {
        let mut jobs = String::new();
        let mut where_: Vec<(String, usize)> = Vec::new();
        for (i, &k) in chunk.iter().enumerate() {
            let image = dir.join(format!("{batch}-{i}"));
            build_image(&run.ops, &run.root, k, &image, &mut rng, true).unwrap();
            let mut job = expectation(run, k);
            job["dir"] = json!(image.join("db").to_string_lossy());
            job["mode"] = json!(mode);
            jobs.push_str(&job.to_string());
            jobs.push('\n');
            where_.push((image.to_string_lossy().into_owned(), k));
        }
        let jobs_file = dir.join(format!("jobs-{batch}"));
        std::fs::write(&jobs_file, jobs).unwrap();
        let out = Command::new(bin("check"))
            .arg(&jobs_file)
            .env(
                "COLLECTION_STORE_BOOT_ID",
                format!("after-power-loss-{seed}-{batch}"),
            )
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let results: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        for (j, (image, k)) in where_.iter().enumerate() {
            match results.get(j) {
                Some(r) if r["ok"] == true => {}
                Some(r) => {
                    problems.push(format!("{image} (crash after call {k}): {}", r["problem"]))
                }
                None => problems.push(format!(
                    "{image} (crash after call {k}): the checker died ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                )),
            }
            if results.get(j).is_none() {
                break;
            }
        }
        if problems.is_empty() || std::env::var_os("CS_POWERLOSS_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
        }
    }
    problems
}

fn images_per_mode() -> usize {
    std::env::var("CS_POWERLOSS_IMAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
}

#[test]
fn crash_images_of_every_durability_mode_recover_with_every_acknowledged_transaction() {
    let work = scratch();
    let shim = shim(work.path());
    let seed = std::env::var("CS_POWERLOSS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(clock_seed);
    let images = images_per_mode();
    eprintln!("power loss: {images} images per mode, seed {seed} (CS_POWERLOSS_SEED)");
    let mut failures = Vec::new();
    for mode in ["immediate", "batched", "none"] {
        let run = traced_run(&shim, work.path(), mode, 120, false);
        let problems = check_images(&run, mode, images, seed, work.path());
        eprintln!(
            "  {mode}: {} calls traced, {} acknowledgements, {images} images, {} problems",
            run.ops.len(),
            run.acks.len(),
            problems.len()
        );
        for p in problems.iter().take(3) {
            eprintln!("    {p}");
        }
        failures.extend(problems.into_iter().map(|p| format!("[{mode}] {p}")));
    }
    if !failures.is_empty() && std::env::var_os("CS_POWERLOSS_KEEP").is_some() {
        eprintln!("kept {}", work.keep().display());
        panic!("{} crash images failed", failures.len());
    }
    assert!(
        failures.is_empty(),
        "{} crash images failed (seed {seed}):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn acknowledging_before_the_commit_is_caught() {
    // The control: if the checks could not fail, the test above proves nothing.
    let work = scratch();
    let shim = shim(work.path());
    let seed = clock_seed();
    let run = traced_run(&shim, work.path(), "immediate", 60, true);
    let problems = check_images(&run, "immediate", 60, seed, work.path());
    assert!(
        problems.iter().any(|p| p.contains("acknowledged")),
        "acknowledgements made before committing were never caught losing a transaction (seed {seed})"
    );
}
