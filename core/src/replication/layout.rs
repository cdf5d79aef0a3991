//! On-disk layout of a replica directory.
//!
//! ```text
//! <dir>/CURRENT        name of the live generation ("gen-000001"), replaced atomically
//! <dir>/gen-000001/    the replica database (data.mdb, lock.mdb)
//! <dir>/incoming/      a snapshot being downloaded (removed on start)
//! ```
//! Installing a snapshot creates the next generation beside the live one and
//! switches `CURRENT` with an atomic rename, so readers holding a handle on the
//! old generation keep a consistent (older) view while new handles see the new
//! one, and a crash at any moment leaves one complete generation in use.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const CURRENT: &str = "CURRENT";
pub(crate) const INCOMING: &str = "incoming";

fn gen_name(n: u64) -> String {
    format!("gen-{n:06}")
}

fn parse_gen(name: &str) -> Option<u64> {
    name.strip_prefix("gen-")?.parse().ok()
}

/// The live generation's number and directory, creating generation 1 for a new
/// replica directory.
pub(crate) fn current(dir: &Path) -> Result<(u64, PathBuf)> {
    fs::create_dir_all(dir)?;
    let path = dir.join(CURRENT);
    match fs::read_to_string(&path) {
        Ok(s) => {
            let name = s.trim();
            let n = parse_gen(name).ok_or_else(|| {
                Error::Replication(format!(
                    "{} does not name a generation ('{name}'); is this a replica directory?",
                    path.display()
                ))
            })?;
            let gen = dir.join(name);
            if !gen.is_dir() {
                return Err(Error::Replication(format!(
                    "{} names {name}, which is missing",
                    path.display()
                )));
            }
            Ok((n, gen))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dir.join("data.mdb").exists() {
                return Err(Error::Replication(format!(
                    "{} holds a plain database, not a replica directory; use an empty directory",
                    dir.display()
                )));
            }
            let gen = dir.join(gen_name(1));
            fs::create_dir_all(&gen)?;
            set_current(dir, 1)?;
            Ok((1, gen))
        }
        Err(e) => Err(e.into()),
    }
}

/// The directory of generation `n`.
pub(crate) fn gen_dir(dir: &Path, n: u64) -> PathBuf {
    dir.join(gen_name(n))
}

/// Makes generation `n` the live one (atomic, durable).
pub(crate) fn set_current(dir: &Path, n: u64) -> Result<()> {
    let tmp = dir.join("CURRENT.tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        writeln!(f, "{}", gen_name(n))?;
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(CURRENT))?;
    sync_dir(dir)
}

/// Flushes a directory's entries (renames, creations).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Removes every generation but `keep`, and any partial download. Failures are
/// ignored (a later start retries).
pub(crate) fn cleanup(dir: &Path, keep: u64) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let stale = match parse_gen(&name) {
            Some(n) => n != keep,
            None => name == INCOMING,
        };
        if stale {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations() {
        let d = tempfile::tempdir().unwrap();
        let (n, g) = current(d.path()).unwrap();
        assert_eq!(n, 1);
        assert!(g.ends_with("gen-000001"));
        fs::create_dir_all(gen_dir(d.path(), 2)).unwrap();
        fs::create_dir_all(d.path().join(INCOMING)).unwrap();
        set_current(d.path(), 2).unwrap();
        assert_eq!(current(d.path()).unwrap().0, 2);
        cleanup(d.path(), 2);
        assert!(!gen_dir(d.path(), 1).exists());
        assert!(!d.path().join(INCOMING).exists());
        assert!(gen_dir(d.path(), 2).exists());
    }

    #[test]
    fn refuses_plain_database_dir() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("data.mdb"), b"x").unwrap();
        assert!(matches!(current(d.path()), Err(Error::Replication(_))));
    }
}
