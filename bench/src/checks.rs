//! The suite's honesty checks as pure functions of what a run observed, so
//! that each one can be shown to fail (see the tests below): the data
//! directory's filesystem, durable commits against the disk's fdatasync,
//! acknowledged inserts against the count, the order W5 ran in and W5's
//! answers against the generator.

use crate::data;
use crate::report::Check;

/// Filesystems on which `fdatasync` reaches no disk.
const MEMORY_FILESYSTEMS: [&str; 2] = ["tmpfs", "ramfs"];

/// The data directory is on a filesystem known to be a real one. A memory
/// filesystem fails, and so does one whose type could not be read: a
/// durable figure must not pass on a disk nobody identified.
pub fn filesystem(fs: &str) -> Check {
    let (ok, detail) = if fs.is_empty() || fs == "unknown" {
        (
            false,
            "the filesystem type could not be read (no /proc/mounts entry for the data \
             directory): whether fsync reaches a disk is not known"
                .to_owned(),
        )
    } else if MEMORY_FILESYSTEMS.contains(&fs) {
        (false, format!("{fs}: fsync is a no-op there"))
    } else {
        (true, fs.to_owned())
    };
    Check {
        engine: "all".into(),
        what: "data directory is on a real filesystem (fsync is not a no-op)".into(),
        ok,
        detail,
    }
}

/// A lone writer's durable commit (`W2/1` p50) is at least 0.3× the disk's
/// fdatasync p50 measured just before it. When the probe did not measure
/// anything the check fails: a comparison that could not be made is not a
/// pass. `None` when W2/1 has no latency (not run or failed: reported there).
pub fn commits_reach_disk(
    engine: &str,
    commit_p50_us: Option<f64>,
    fdatasync_p50_us: Option<f64>,
) -> Option<Check> {
    let p50 = commit_p50_us?;
    let (ok, detail) = match fdatasync_p50_us {
        Some(floor) => (
            p50 >= 0.3 * floor,
            format!("commit p50 {p50:.0} µs, fdatasync p50 {floor:.0} µs"),
        ),
        None => (
            false,
            format!(
                "commit p50 {p50:.0} µs, fdatasync p50 not measured (the probe failed; see \
                 W2/1's note): commits were not compared with the disk"
            ),
        ),
    };
    Some(Check {
        engine: engine.into(),
        what: "W2/1 commit p50 is at least 0.3× the disk's fdatasync p50 measured just before \
               (commits reach the disk)"
            .into(),
        ok,
        detail,
    })
}

/// After a W2 run, the collection holds exactly the documents it held
/// before plus the acknowledged inserts.
pub fn acknowledged_inserts_stored(
    engine: &str,
    workload: &str,
    before: u64,
    acknowledged: u64,
    after: u64,
) -> Check {
    Check {
        engine: engine.into(),
        what: format!("{workload}: every acknowledged insert is stored"),
        ok: after == before + acknowledged,
        detail: format!(
            "{before} + {acknowledged} acknowledged = {}, found {after}",
            before + acknowledged
        ),
    }
}

/// W5 ran as the engine's last step, after every other workload (W2's
/// inserts included), given the steps in the order the worker ran them.
pub fn w5_ran_last(engine: &str, steps: &[String], docs_then: &str) -> Check {
    let ok =
        steps.last().is_some_and(|s| s == "W5") && steps.iter().filter(|s| *s == "W5").count() == 1;
    Check {
        engine: engine.into(),
        what: "W5 ran last (range queries scan the collection), after W2's inserts".into(),
        ok,
        detail: format!(
            "steps in order: {}; {docs_then} documents then",
            steps.join(" → ")
        ),
    }
}

/// How many generated documents (`0..n`) have each age, for W5's answers.
#[derive(Clone, Debug)]
pub struct AgeCounts {
    counts: Vec<u64>,
}

impl AgeCounts {
    /// Counts the ages of documents `0..n` as the generator makes them.
    pub fn of_generated(n: u64) -> AgeCounts {
        let mut counts = vec![0u64; (data::MAX_AGE - data::MIN_AGE + 1) as usize];
        for i in 0..n as i64 {
            counts[(data::age(i) - data::MIN_AGE) as usize] += 1;
        }
        AgeCounts { counts }
    }

    fn count(&self, age: i32) -> u64 {
        if (data::MIN_AGE..=data::MAX_AGE).contains(&age) {
            self.counts[(age - data::MIN_AGE) as usize]
        } else {
            0
        }
    }

    /// The ages a query `lo <= age < hi`, sorted by age, limit `limit`
    /// returns over exactly these documents.
    pub fn expected(&self, lo: i32, hi: i32, limit: usize) -> Vec<i32> {
        let mut out = Vec::with_capacity(limit);
        for age in lo..hi {
            let take = (self.count(age) as usize).min(limit - out.len());
            out.extend(std::iter::repeat_n(age, take));
            if out.len() == limit {
                break;
            }
        }
        out
    }
}

/// Checks one W5 answer. With `exact`, the collection holds the generated
/// documents only and the answer must be exactly the ages
/// [`AgeCounts::expected`] gives. Otherwise (inserts happened since the load)
/// it must be sorted, in range, no longer than `limit`, and at least as long
/// as the answer over the loaded documents alone.
pub fn w5_answer(
    loaded: &AgeCounts,
    exact: bool,
    (lo, hi, limit): (i32, i32, usize),
    ages: &[i32],
) -> Result<(), String> {
    let want = loaded.expected(lo, hi, limit);
    let fail = |why: &str| -> Result<(), String> {
        Err(format!(
            "age range [{lo}, {hi}) limit {limit} returned ages {ages:?}: {why} (over the loaded \
             documents alone: {want:?})"
        ))
    };
    if exact {
        return if ages == want.as_slice() {
            Ok(())
        } else {
            fail("not the expected answer")
        };
    }
    if !ages.windows(2).all(|w| w[0] <= w[1]) {
        return fail("not sorted");
    }
    if !ages.iter().all(|a| (lo..hi).contains(a)) {
        return fail("out of range");
    }
    if ages.len() > limit {
        return fail("more than the limit");
    }
    if ages.len() < want.len() {
        return fail("fewer than the loaded documents alone give");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_and_unknown_filesystems_fail() {
        assert!(filesystem("ext4").ok);
        assert!(filesystem("overlay").ok);
        assert!(!filesystem("tmpfs").ok);
        assert!(!filesystem("ramfs").ok);
        let unknown = filesystem("unknown");
        assert!(!unknown.ok);
        assert!(unknown.detail.contains("not known"), "{}", unknown.detail);
        assert!(!filesystem("").ok);
    }

    #[test]
    fn a_failed_fdatasync_probe_fails_the_disk_check() {
        let measured = commits_reach_disk("cs", Some(900.0), Some(1_000.0)).unwrap();
        assert!(measured.ok, "{}", measured.detail);
        let too_fast = commits_reach_disk("cs", Some(20.0), Some(1_000.0)).unwrap();
        assert!(!too_fast.ok, "{}", too_fast.detail);
        let no_probe = commits_reach_disk("cs", Some(900.0), None).unwrap();
        assert!(!no_probe.ok);
        assert!(
            no_probe.detail.contains("not measured"),
            "{}",
            no_probe.detail
        );
        assert!(commits_reach_disk("cs", None, Some(1_000.0)).is_none());
    }

    #[test]
    fn a_lost_or_invented_insert_fails() {
        assert!(acknowledged_inserts_stored("cs", "W2/1", 2_000, 50, 2_050).ok);
        let lost = acknowledged_inserts_stored("cs", "W2/1", 2_000, 50, 2_049);
        assert!(!lost.ok);
        assert_eq!(lost.detail, "2000 + 50 acknowledged = 2050, found 2049");
        assert!(!acknowledged_inserts_stored("cs", "W2/8", 2_000, 50, 2_051).ok);
    }

    #[test]
    fn w5_not_last_fails() {
        let steps = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(w5_ran_last("polodb", &steps(&["W1", "W3", "W2/1", "W5"]), "9").ok);
        assert!(!w5_ran_last("polodb", &steps(&["W1", "W5", "W2/1"]), "9").ok);
        assert!(!w5_ran_last("polodb", &steps(&["W1", "W5", "W2/1", "W5"]), "9").ok);
        assert!(!w5_ran_last("polodb", &steps(&[]), "9").ok);
    }

    #[test]
    fn w5_answers_are_checked_at_small_n() {
        let counts = AgeCounts::of_generated(2_000);
        // Every generated age is in 18..=80 and the counts add up.
        assert_eq!((18..=80).map(|a| counts.count(a)).sum::<u64>(), 2_000);
        let q = (30, 35, 20);
        let want = counts.expected(30, 35, 20);
        assert_eq!(want.len(), 20, "2,000 documents hold 20 in five ages");
        assert!(w5_answer(&counts, true, q, &want).is_ok());
        // An empty answer fails at 2,000 documents, in both modes.
        assert!(w5_answer(&counts, true, q, &[]).is_err());
        assert!(w5_answer(&counts, false, q, &[]).is_err());
        // A short, unsorted or out-of-range answer fails.
        assert!(w5_answer(&counts, true, q, &want[..19]).is_err());
        let mut unsorted = want.clone();
        unsorted[0] = 31;
        assert!(w5_answer(&counts, false, q, &unsorted).is_err());
        let mut outside = want.clone();
        outside[19] = 35;
        assert!(w5_answer(&counts, false, q, &outside).is_err());
        // Exact mode: a sorted in-range answer with the wrong ages fails.
        let shifted = vec![34; 20];
        assert!(w5_answer(&counts, true, q, &shifted).is_err());
        assert!(w5_answer(&counts, false, q, &shifted).is_ok());
    }

    #[test]
    fn w5_expected_answer_at_tiny_n() {
        // Two documents: the answer holds at most two ages.
        let counts = AgeCounts::of_generated(2);
        let (a0, a1) = (data::age(0), data::age(1));
        let (lo, hi) = (a0.min(a1), a0.max(a1) + 1);
        let mut both = vec![a0, a1];
        both.sort();
        assert_eq!(counts.expected(lo, hi, 20), both);
        assert!(w5_answer(&counts, true, (lo, hi, 20), &both).is_ok());
        assert!(w5_answer(&counts, true, (lo, hi, 20), &both[..1]).is_err());
    }
}
