//! Parsing of the stress tester's `--duration` and `--mix` arguments.

use std::time::Duration;

/// Parses `500ms`, `10s`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = if let Some(v) = s.strip_suffix("ms") {
        (v, 0.001)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix('m') {
        (v, 60.0)
    } else if let Some(v) = s.strip_suffix('h') {
        (v, 3_600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (examples: 500ms, 10s, 2m, 1h)"))?;
    if !v.is_finite() || v <= 0.0 || v * scale > 366.0 * 86_400.0 {
        return Err(format!(
            "'{s}' is not a positive duration of at most a year"
        ));
    }
    Ok(Duration::from_secs_f64(v * scale))
}

/// An operation kind of the mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// A get by `_id`, a lookup by email or an `age` range query (in turn).
    Read,
    /// `$inc score, $set age` on a random `_id`.
    Update,
    /// A new document (one in 20 reuses an existing email: expected duplicate key).
    Insert,
    /// `delete_one` of a random `_id`.
    Delete,
    /// A cross-collection transaction.
    Txn,
}

impl OpKind {
    /// Every kind, in report order.
    pub const ALL: [OpKind; 5] = [
        OpKind::Read,
        OpKind::Update,
        OpKind::Insert,
        OpKind::Delete,
        OpKind::Txn,
    ];

    /// The name used in `--mix` and in the summary.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Update => "update",
            OpKind::Insert => "insert",
            OpKind::Delete => "delete",
            OpKind::Txn => "txn",
        }
    }

    /// Index into [`OpKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Relative weights of the operation kinds.
#[derive(Clone, Debug, PartialEq)]
pub struct Mix {
    weights: [u32; 5],
}

impl Mix {
    /// The weight of `kind`.
    pub fn weight(&self, kind: OpKind) -> u32 {
        self.weights[kind.index()]
    }

    /// Sets the weight of `kind`.
    pub fn set(&mut self, kind: OpKind, w: u32) {
        self.weights[kind.index()] = w;
    }

    /// Picks a kind for a random number `r`.
    pub fn pick(&self, r: u64) -> OpKind {
        let total: u64 = self.weights.iter().map(|&w| u64::from(w)).sum();
        let mut x = r % total.max(1);
        for k in OpKind::ALL {
            let w = u64::from(self.weight(k));
            if x < w {
                return k;
            }
            x -= w;
        }
        OpKind::Read
    }

    /// `read=70,update=20,...` (for the summary).
    pub fn describe(&self) -> String {
        OpKind::ALL
            .iter()
            .filter(|k| self.weight(**k) > 0)
            .map(|k| format!("{}={}", k.name(), self.weight(*k)))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Parses `read=70,update=20,insert=5,delete=5[,txn=N]`.
pub fn parse_mix(s: &str) -> Result<Mix, String> {
    let mut mix = Mix { weights: [0; 5] };
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("'{part}' should look like read=70"))?;
        let kind = OpKind::ALL
            .into_iter()
            .find(|o| o.name() == k.trim())
            .ok_or_else(|| {
                format!("unknown operation '{k}' (read, update, insert, delete, txn)")
            })?;
        let w: u32 = v
            .trim()
            .parse()
            .map_err(|_| format!("weight '{v}' of {k} is not a whole number"))?;
        if w > 1_000_000 {
            return Err(format!("weight {w} of {k} is too large"));
        }
        mix.weights[kind.index()] = w;
    }
    if mix.weights.iter().all(|&w| w == 0) {
        return Err("the mix has no operation with a weight above 0".into());
    }
    Ok(mix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        for bad in ["", "s", "-1s", "abc", "0s", "1e30s", "NaNs"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mixes() {
        let m = parse_mix("read=70,update=20,insert=5,delete=5").unwrap();
        assert_eq!(m.weight(OpKind::Read), 70);
        assert_eq!(m.weight(OpKind::Txn), 0);
        assert_eq!(m.describe(), "read=70,update=20,insert=5,delete=5");
        let picks: Vec<OpKind> = (0..100).map(|r| m.pick(r)).collect();
        assert_eq!(picks.iter().filter(|k| **k == OpKind::Read).count(), 70);
        assert_eq!(picks.iter().filter(|k| **k == OpKind::Delete).count(), 5);
        for bad in ["", "read", "read=x", "foo=1", "read=0", "read=99999999"] {
            assert!(parse_mix(bad).is_err(), "{bad}");
        }
    }
}
