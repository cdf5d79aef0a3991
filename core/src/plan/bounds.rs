//! Index bounds: which byte ranges of an index can hold the documents that a
//! predicate on one field matches. Bounds are always a superset of the matches
//! (the full filter is re-checked on every fetched document); [`Derived::exact`]
//! says when they are exactly the matches, which allows counting entries alone.

use bson::Bson;

use crate::doc::{type_rank, ValRef};
use crate::keys::{
    encode_missing, encode_value, prefix_successor, type_lower_bound, type_upper_bound,
};
use crate::query::filter::{CmpOp, InItem, Op};

/// A byte interval of encoded values of one field: `lo` inclusive, `hi`
/// exclusive (`None`: no upper end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    /// Inclusive lower end.
    pub lo: Vec<u8>,
    /// Exclusive upper end.
    pub hi: Option<Vec<u8>>,
}

impl Interval {
    fn is_empty(&self) -> bool {
        self.hi.as_ref().is_some_and(|h| h <= &self.lo)
    }

    fn intersect(&self, other: &Interval) -> Interval {
        let lo = self.lo.clone().max(other.lo.clone());
        let hi = match (&self.hi, &other.hi) {
            (Some(a), Some(b)) => Some(a.clone().min(b.clone())),
            (Some(a), None) | (None, Some(a)) => Some(a.clone()),
            (None, None) => None,
        };
        Interval { lo, hi }
    }
}

/// What a predicate allows for one index field.
#[derive(Debug, Clone)]
pub enum FieldBounds {
    /// Exactly these encoded values (sorted, distinct); allows extending a compound key.
    Points(Vec<Vec<u8>>),
    /// One interval of encoded values.
    Range(Interval),
}

/// Bounds plus a readable description, and whether they are exact.
#[derive(Debug, Clone)]
pub struct Derived {
    /// The bounds.
    pub bounds: FieldBounds,
    /// Human-readable intervals, for explain.
    pub describe: Vec<String>,
    /// True when every entry in the bounds satisfies the predicate.
    pub exact: bool,
}

fn point(v: &Bson, desc: bool) -> Vec<u8> {
    let mut b = Vec::new();
    encode_value(&mut b, &ValRef::from(v), desc);
    b
}

fn null_point(desc: bool) -> Vec<u8> {
    let mut b = Vec::new();
    encode_missing(&mut b, desc);
    b
}

fn show(v: &Bson) -> String {
    crate::doc::json::json_from_bson(v).to_string()
}

/// Values that index lookups cannot serve (whole-array and regex equality,
/// MinKey/MaxKey).
fn plain(v: &Bson) -> bool {
    !matches!(
        v,
        Bson::Array(_) | Bson::RegularExpression(_) | Bson::MinKey | Bson::MaxKey
    )
}

fn nullish(v: &Bson) -> bool {
    matches!(v, Bson::Null | Bson::Undefined)
}

/// Derives bounds for one operator on a field with direction `desc`. `sparse`
/// indexes hold no entry for documents missing every indexed field, so
/// predicates that match missing fields cannot use them.
pub fn derive(op: &Op, desc: bool, sparse: bool, explain: bool) -> Option<Derived> {
    let say = |f: &dyn Fn() -> String| if explain { vec![f()] } else { Vec::new() };
    match op {
        Op::Eq(v) if nullish(v) => (!sparse).then(|| Derived {
            bounds: FieldBounds::Points(vec![null_point(desc)]),
            describe: say(&|| "[null, null]".into()),
            // Null entries also stand for missing fields, which {$eq: null} matches too.
            exact: true,
        }),
        Op::Eq(v) if plain(v) => Some(Derived {
            bounds: FieldBounds::Points(vec![point(v, desc)]),
            describe: say(&|| format!("[{0}, {0}]", show(v))),
            exact: true,
        }),
        Op::In(items) => {
            let mut points: Vec<(Vec<u8>, String)> = Vec::new();
            for item in items {
                match item {
                    InItem::Value(v) if nullish(v) => {
                        if sparse {
                            return None;
                        }
                        let text = if explain {
                            "[null, null]".to_string()
                        } else {
                            String::new()
                        };
                        points.push((null_point(desc), text));
                    }
                    InItem::Value(v) if plain(v) => {
                        let text = if explain {
                            format!("[{0}, {0}]", show(v))
                        } else {
                            String::new()
                        };
                        points.push((point(v, desc), text));
                    }
                    _ => return None,
                }
            }
            points.sort_by(|a, b| a.0.cmp(&b.0));
            points.dedup_by(|a, b| a.0 == b.0);
            let (points, texts): (Vec<_>, Vec<_>) = points.into_iter().unzip();
            Some(Derived {
                bounds: FieldBounds::Points(points),
                describe: if explain { texts } else { Vec::new() },
                exact: true,
            })
        }
        Op::Exists(false) if !sparse => Some(Derived {
            bounds: FieldBounds::Points(vec![null_point(desc)]),
            describe: say(&|| "[null, null]".into()),
            exact: false,
        }),
        Op::Cmp(c, v) if nullish(v) => match c {
            CmpOp::Gte | CmpOp::Lte if !sparse => Some(Derived {
                bounds: FieldBounds::Points(vec![null_point(desc)]),
                describe: say(&|| "[null, null]".into()),
                exact: true,
            }),
            CmpOp::Gt | CmpOp::Lt => Some(Derived {
                bounds: FieldBounds::Points(Vec::new()),
                describe: say(&|| "(empty)".into()),
                exact: true,
            }),
            _ => None,
        },
        Op::Cmp(c, v) if plain(v) => {
            let rank = type_rank(&ValRef::from(v));
            let enc = point(v, desc);
            let succ = prefix_successor(&enc);
            let t_lo = type_lower_bound(rank, desc);
            let t_hi = type_upper_bound(rank, desc);
            // In descending order larger values have smaller bytes.
            let wants_greater = matches!(c, CmpOp::Gt | CmpOp::Gte) != desc;
            let inclusive = matches!(c, CmpOp::Gte | CmpOp::Lte);
            let interval = if wants_greater {
                Interval {
                    lo: if inclusive { enc } else { succ.clone()? },
                    hi: Some(t_hi),
                }
            } else {
                Interval {
                    lo: t_lo,
                    hi: if inclusive { succ } else { Some(enc) },
                }
            };
            let text = if !explain {
                String::new()
            } else {
                match c {
                    CmpOp::Gt => format!("({}, +inf of its type]", show(v)),
                    CmpOp::Gte => format!("[{}, +inf of its type]", show(v)),
                    CmpOp::Lt => format!("[-inf of its type, {})", show(v)),
                    CmpOp::Lte => format!("[-inf of its type, {}]", show(v)),
                }
            };
            Some(Derived {
                bounds: FieldBounds::Range(interval),
                describe: say(&|| text.clone()),
                exact: true,
            })
        }
        _ => None,
    }
}

/// Combines the bounds of several predicates on the same field. On a multikey
/// index different elements may satisfy different predicates, so only the
/// first is used there; otherwise the bounds are intersected.
pub fn combine(all: Vec<Derived>, multikey: bool) -> Option<Derived> {
    let mut it = all.into_iter();
    let mut acc = it.next()?;
    if multikey {
        acc.exact = false;
        return Some(acc);
    }
    for d in it {
        acc.describe.extend(d.describe);
        acc.exact &= d.exact;
        acc.bounds = match (acc.bounds, d.bounds) {
            (FieldBounds::Points(a), FieldBounds::Points(b)) => {
                FieldBounds::Points(a.into_iter().filter(|p| b.contains(p)).collect())
            }
            (FieldBounds::Points(p), FieldBounds::Range(r))
            | (FieldBounds::Range(r), FieldBounds::Points(p)) => FieldBounds::Points(
                p.into_iter()
                    .filter(|x| *x >= r.lo && r.hi.as_ref().is_none_or(|h| x < h))
                    .collect(),
            ),
            (FieldBounds::Range(a), FieldBounds::Range(b)) => {
                let r = a.intersect(&b);
                if r.is_empty() {
                    FieldBounds::Points(Vec::new())
                } else {
                    FieldBounds::Range(r)
                }
            }
        };
    }
    Some(acc)
}
