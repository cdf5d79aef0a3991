//! Runs `tests/python/test_pymongo.py` (CRUD, cursors, indexes, bulk writes,
//! findAndModify, counting, transactions, authentication, bad input, garbage
//! bytes, 16 concurrent clients, SIGKILL + restart, TLS, compression, metrics)
//! against the real server binary with pymongo, a client nobody here wrote.
//!
//! The test creates a virtual environment under the target directory and
//! installs a pinned pymongo into it on first use; it skips (with a message)
//! only when `python3` is absent.

use std::path::{Path, PathBuf};
use std::process::Command;

const PYMONGO: &str = "pymongo==4.20.1";

fn python3() -> Option<PathBuf> {
    let out = Command::new("python3").arg("--version").output().ok()?;
    out.status.success().then(|| PathBuf::from("python3"))
}

fn venv(python: &Path) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pymongo-venv");
    let py = dir.join("bin").join("python");
    let has_pymongo = |py: &Path| {
        Command::new(py)
            .args([
                "-c",
                "import pymongo, sys; sys.exit(0 if pymongo.version == '4.20.1' else 1)",
            ])
            .status()
            .is_ok_and(|s| s.success())
    };
    if py.exists() && has_pymongo(&py) {
        return py;
    }
    let status = Command::new(python)
        .args(["-m", "venv", "--clear"])
        .arg(&dir)
        .status()
        .expect("run python3 -m venv");
    assert!(
        status.success(),
        "python3 -m venv failed (Debian: apt-get install python3-venv)"
    );
    let status = Command::new(&py)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            PYMONGO,
        ])
        .status()
        .expect("run pip");
    assert!(status.success(), "pip install {PYMONGO} failed");
    assert!(
        has_pymongo(&py),
        "pymongo is not importable after installing it"
    );
    py
}

#[test]
fn pymongo_suite() {
    let Some(python) = python3() else {
        eprintln!("SKIPPED pymongo_suite: python3 is not installed, so the pymongo client tests cannot run");
        return;
    };
    let py = venv(&python);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/test_pymongo.py");
    let out = Command::new(py)
        .arg(script)
        .env(
            "CS_SERVER_BIN",
            env!("CARGO_BIN_EXE_collection-store-server"),
        )
        .env("COLLECTION_STORE_LOG", "warn")
        .output()
        .expect("run the pymongo suite");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "the pymongo suite failed:\n{text}");
}
